"""Helpers for Tools/bench/dht: webseed DHT processes on loopback, their JSON events, the ideal
routing-table size of a BEP 5 node in a known network, percentiles.

Nothing here talks to anything but 127.0.0.1; every wait is bounded by its caller."""

import json
import math
import signal
import subprocess
import threading
import time

from . import benchhost

LIVE = set()  # every child started through here (ended by stop_all / the caller's finally)


def spawn(argv, **kw):
    """benchhost.spawn, the child kept in LIVE for stop_all."""
    p = benchhost.spawn(argv, **kw)
    LIVE.add(p)
    return p


def stop_all():
    """Ends every child still running: SIGTERM, then SIGKILL 5 s later. Only our own children."""
    procs = [p for p in list(LIVE) if p.poll() is None]
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + 5
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    LIVE.clear()


class Proc:
    """A `webseed dht …` process whose stdout (JSON lines) is read by a thread; every event is
    kept with the perf_counter time at which the script read it ("_t")."""

    def __init__(self, argv, name, errlog):
        self.name = name
        self.argv = argv
        self.events = []
        self.cond = threading.Condition()
        self.err = open(errlog, "ab")
        self.t0 = time.perf_counter()
        self.p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err)
        self.pid = self.p.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            t = time.perf_counter()
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                obj = {"event": "?", "raw": line.decode(errors="replace").strip()}
            obj["_t"] = t
            with self.cond:
                self.events.append(obj)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "<eof>", "_t": time.perf_counter()})
            self.cond.notify_all()

    def wait_for(self, pred, timeout):
        """First event e with pred(e), waiting up to timeout s; None on timeout or end of output."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                    if e.get("event") == "<eof>":
                        return None
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))

    def select(self, name):
        with self.cond:
            return [e for e in self.events if e.get("event") == name]

    def alive(self):
        return self.p.poll() is None

    def stderr_tail(self, n=300):
        try:
            with open(self.err.name, "rb") as f:
                return f.read().decode(errors="replace").strip()[-n:]
        except OSError:
            return ""

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after timeout; returns None for a clean exit, else what happened."""
        what = None
        t = time.perf_counter()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                what = "killed: still running %d s after SIGTERM" % timeout
        self.stop_s = time.perf_counter() - t
        self.reader.join(2)
        self.err.close()
        LIVE.discard(self.p)
        if what is None and self.p.returncode not in (0, -signal.SIGTERM):
            what = "exit status %s after SIGTERM" % self.p.returncode
        return what


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
