"""Helpers for Tools/bench/dht: webseed DHT processes on loopback, their JSON events, the ideal
routing-table size of a BEP 5 node in a known network, percentiles.

Nothing here talks to anything but 127.0.0.1; every wait is bounded by its caller."""

import math
import signal

from . import benchhost


class Proc(benchhost.JsonProc):
    """A `webseed dht …` process (benchhost.JsonProc) with a name; SIGTERM ending it is a clean
    stop too."""

    CLEAN_EXITS = (0, -signal.SIGTERM)

    def __init__(self, argv, name, errlog):
        self.name = name
        self.argv = argv
        super().__init__(argv, errlog)


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB, 'Threads': n} of a live process, or {}."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def common_prefix_bits(a, b):
    x = a ^ b
    return 160 if x == 0 else 160 - x.bit_length()


def ideal_table_size(own, others, k=8):
    """How many of `others` (ints) a BEP 5 routing table with K=k buckets, only the bucket
    holding `own` splitting (webseed's RoutingTable), holds when it knows every one of them:
    buckets 0..d-1 (ids sharing exactly i leading bits with `own`) hold min(k, n_i), the last
    one all ids sharing >= d bits, d the smallest depth at which those fit in one bucket."""
    counts = [0] * 161
    for o in others:
        if o != own:
            counts[common_prefix_bits(own, o)] += 1
    total = sum(counts)
    d, tail = 0, total
    while tail > k and d < 160:
        tail -= counts[d]
        d += 1
    return sum(min(k, counts[i]) for i in range(d)) + tail


def percentile(xs, q):
    """Nearest-rank percentile (q in 0..100) of xs; inf counts as a value (a lookup that failed)."""
    s = sorted(xs)
    if not s:
        return None
    return s[max(0, math.ceil(q / 100.0 * len(s)) - 1)]


def median(xs):
    s = sorted(xs)
    if not s:
        return None
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
