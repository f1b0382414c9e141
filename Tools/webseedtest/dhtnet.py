"""Helpers for Tools/bench/dht and Tools/bench/update: webseed DHT processes on loopback, their
JSON events, the loopback network both benches measure on (start_network, wait_converged), the
ideal routing-table size of a BEP 5 node in a known network, percentiles.

Nothing here talks to anything but 127.0.0.1; every wait is bounded."""

import math
import os
import signal
import time

from . import benchhost

CONVERGED_MIN = 20          # smallest routing table in the network
CONVERGED_AVG_SHARE = 0.75  # average table / ideal average


class Proc(benchhost.JsonProc):
    """A `webseed dht …` process (benchhost.JsonProc) with a name; SIGTERM ending it is a clean
    stop too."""

    CLEAN_EXITS = (0, -signal.SIGTERM)

    def __init__(self, argv, name, errlog):
        self.name = name
        self.argv = argv
        super().__init__(argv, errlog)


def node_events(proc):
    """The {"event":"dht"} lines of a process's nodes (those that carry the node's port)."""
    return [e for e in proc.select("dht") if "port" in e]


def net_argv(binary, m, state, bootstrap):
    """`webseed dht --nodes M` on loopback, --offline, joining through 127.0.0.1:bootstrap."""
    argv = [binary, "dht", "--nodes", str(m), "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", state]
    if bootstrap:
        argv += ["--dht-bootstrap", "127.0.0.1:%d" % bootstrap]
    return argv


def start_network(binary, work, P, M):
    """The network: P processes of `webseed dht --nodes M` (M DHT nodes on one event loop, each
    with its own UDP socket, node i joining through node i-1). Process 0's node 0 has no
    bootstrap; process p's node 0 joins through the last node of process p-1, so the P chains
    make one network of P x M nodes. Returns (processes, nodes as (process, node, UDP port,
    node id as int), seconds until the last node was up); raises SystemExit if a process does
    not bring up its nodes within 60 s."""
    net = []
    t_start = time.perf_counter()
    for p in range(P):
        boot = node_events(net[-1])[-1]["port"] if net else None
        proc = Proc(net_argv(binary, M, os.path.join(work, "net-%d" % p), boot), "net-%d" % p,
                    os.path.join(work, "net-%d.stderr" % p))
        if proc.wait_for(lambda e: e.get("event") == "dht" and e.get("node") == M - 1, 60) is None:
            raise SystemExit("bench: `webseed dht --nodes %d` (process %d) did not bring up its %d nodes in 60 s "
                             "(exit %s): %s" % (M, p, M, proc.p.poll(), proc.stderr_tail()))
        net.append(proc)
    up_s = time.perf_counter() - t_start
    nodes = [(p, e["node"], e["port"], int(e["node_id"], 16)) for p, proc in enumerate(net) for e in node_events(proc)]
    if len(nodes) != P * M:
        raise SystemExit("bench: expected %d network nodes, the processes reported %d" % (P * M, len(nodes)))
    return net, nodes, up_s


def wait_converged(net, ids, timeout, others=()):
    """Waits (up to timeout s) until the network has converged: every process in `net`'s latest
    {"event":"dht_nodes"} report (every 5 s: average and smallest routing-table size of its
    nodes) shows min >= need_min and the average over the network >= CONVERGED_AVG_SHARE of
    the ideal average, computed from the node ids (`ids`: the network's first, then any other
    node that joined, such as reference processes). `others` are processes that must stay
    alive meanwhile. Returns {"ideal_avg", "ideal_min", "need_min", "converged_s" (None if
    not converged), "convergence_history" [(s, average, smallest)], "table_avg",
    "table_min"}; raises SystemExit if a process exits."""
    n = sum(len(node_events(p)) for p in net)
    ideal = [ideal_table_size(i, ids) for i in ids[:n]]
    res = {"ideal_avg": sum(ideal) / len(ideal), "ideal_min": min(ideal)}
    # min >= 20 in a 200-node network (ideal smallest table ~36-40); less in a small network
    res["need_min"] = min(CONVERGED_MIN, max(1, int(0.6 * res["ideal_min"])))
    t_all = time.perf_counter()
    deadline = time.time() + timeout
    res["converged_s"] = None
    history = []
    last_seen = None
    while time.time() < deadline:
        dead = [p.name for p in list(net) + list(others) if not p.alive()]
        if dead:
            raise SystemExit("bench: %s exited during convergence: %s" % (", ".join(dead), net[0].stderr_tail()))
        latest = []
        for proc in net:
            rep = [e for e in proc.select("dht_nodes") if e["_t"] > t_all - 0.01 and "min" in e]
            latest.append(rep[-1] if rep else None)
        if all(latest):
            key = tuple(e["_t"] for e in latest)
            if key != last_seen:
                last_seen = key
                avg = sum(e["count"] for e in latest) / len(latest)
                mn = min(e["min"] for e in latest)
                t = time.perf_counter() - t_all
                history.append((round(t, 1), avg, mn))
                benchhost.log("  t=%5.1f s: routing tables avg %.1f (ideal %.1f), min %d (ideal min %d)"
                              % (t, avg, res["ideal_avg"], mn, res["ideal_min"]))
                res["table_avg"], res["table_min"] = avg, mn
                if mn >= res["need_min"] and avg >= CONVERGED_AVG_SHARE * res["ideal_avg"]:
                    res["converged_s"] = t
                    break
        time.sleep(0.5)
    res["convergence_history"] = history
    benchhost.log("network %s" % ("converged after %.1f s" % res["converged_s"] if res["converged_s"] is not None
                                  else "did NOT converge within %.0f s" % timeout))
    return res


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
