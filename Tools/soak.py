#!/usr/bin/python3
"""Soak: `webseed seed` with its gateway under churn for a long time; fails if its memory or
descriptors keep growing.

  Tools/soak [--minutes 30] [--webseed PATH] [--work DIR] [--http-clients 300] [--leechers 3]

Run it through Tools/soak (Tools/ on PYTHONPATH, Debian's Python, matplotlib installed when
missing). Loopback only, `--offline`, every wait bounded. The site is hostile_peers' (~40 files,
~8 MB, some of 1-2 MB; webseedtest.hostile) plus 300 small pages. During the load phase:

- HTTP: `--http-clients` threads, each opening a keep-alive connection, making 1-20 requests
  (full GETs of a page or a big file, single ranges, HEAD, If-None-Match, missing paths; some
  responses abandoned half read), closing, and starting again after a pause. Every body is
  compared with the source: one wrong byte fails the soak.
- libtorrent: `--leechers` slots, each starting ltpeer leechers one after another (from the
  magnet or the .torrent); about half are killed (SIGKILL or SIGTERM) after 0.5-4 s, the rest
  download to the end and their files are compared with the source (a difference fails).
- hostile peers (webseedtest.hostile, the peers of Tools/interop/hostile_peers.py): rounds of
  garbage and truncated handshakes, unknown hashes, absurd length prefixes, bad requests with
  and without BEP 6, BEP 52 hash requests, ut_metadata and a peer that never reads; every
  fourth round also 500 connections that never handshake. Their checks are logged and counted
  (a check that misses its time on a loaded machine is reported, it does not fail the soak).

Every second the seeder's VmRSS (/proc/PID/status), its open descriptors (/proc/PID/fd: all,
sockets, files) and its TCP connections (/proc/net/tcp{,6} rows whose inode is one of its
sockets, not LISTEN) are sampled. After the load phase the load stops and the soak waits (up
to 60 s) for the seeder to close what it no longer needs.

"Keeps growing" (the criterion; FAIL if any holds):
- RSS: the median of the last third of the load phase exceeds the median of the middle third
  by more than 2 MB + 2% (the first third is warm-up: allocator arenas, caches, buffers). A
  leak of 1.6 KB per closed peer connection (fixed in PeerHandler) grew it by 6.8 MB (+9%)
  between the thirds of a 30-minute run; with the fix, a 20-minute run stayed within 0.5 MB;
- descriptors: the median of the last third exceeds the middle third's by more than 10% + 10;
- after the cool-down: the seeder's sockets are not back to its idle baseline (+2), its other
  descriptors exceed the baseline by more than its data-file cache (min(files, 128)) + 4, or
  it still has TCP connections that are not listening (+2);
- and: the seeder exits or does not exit 0 on SIGTERM, a wrong byte over HTTP, a finished
  leecher whose files differ.

Writes artifacts/soak.md (summary), artifacts/soak.png (plot), artifacts/soak.csv (samples);
logs under WORK/logs. Prints the summary; exits 1 on FAIL.
"""

import argparse
import http.client
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

from webseedtest.hostile import (FLOOD_N, HOST, Ctx, Seeder, check_fast_requests, check_flood,
                                 check_garbage, check_hash_requests, check_non_reader,
                                 check_nonfast_requests, check_truncated, check_unknown_hash,
                                 check_ut_metadata, make_len_prefix_check, make_site)
from webseedtest.content import write_files
from webseedtest.launchers import leech_outcome, lt_leech_argv
from webseedtest.procs import Proc, open_descriptors
from webseedtest.results import Results, _line
from webseedtest.torrent import Torrent
from webseedtest.trees import compare_tree, fresh_dirs

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
MB = 1024 * 1024


def say(*a):
    print(*a, file=sys.stderr, flush=True)


class LoggedResults(Results):
    """Results whose lines go to a log file instead of stdout (the hostile rounds' checks)."""

    def __init__(self, path):
        super().__init__()
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()
        self.failures = []

    def _w(self, word, what, detail):
        with self.lock:
            self.f.write("%s %s\n" % (time.strftime("%H:%M:%S"), _line(word, what, detail)))

    def ok(self, what, detail=""):
        with self.lock:
            self.passed += 1
        self._w("ok", what, detail)

    def fail(self, what, detail="", more=()):
        with self.lock:
            self.failed += 1
            self.failures.append("%s: %s" % (what, detail))
        self._w("FAIL", what, detail)

    def info(self, what, detail=""):
        self._w("info", what, detail)


# ---------------------------------------------------------------------------------------------
# the site

def soak_site(root):
    """hostile_peers' site plus 300 small pages (200 B - 24 KB); same bytes on every run."""
    files = make_site(os.path.join(root, "_tmp"))
    shutil.rmtree(os.path.join(root, "_tmp"), ignore_errors=True)
    rnd = random.Random(20261205)
    for i in range(300):
        size = rnd.choice([rnd.randrange(200, 2000), rnd.randrange(2000, 24000)])
        body = ("<!doctype html><title>page %d</title>\n" % i).encode() + rnd.randbytes(size)
        files["pages/%02d/page-%03d.html" % (i % 12, i)] = body
    write_files(root, files)
    return files


# ---------------------------------------------------------------------------------------------
# the seeder's figures

def tcp_connections(inodes):
    """(connected, close_wait) among the TCP sockets with these inodes: every state but LISTEN,
    and CLOSE_WAIT (the peer closed, the seeder did not) on its own."""
    conns = close_wait = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) > 9 and cols[9] in inodes and cols[3] != "0A":
                        conns += 1
                        if cols[3] == "08":
                            close_wait += 1
        except OSError:
            pass
    return conns, close_wait


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Sampler(threading.Thread):
    """One sample a second: (t, VmRSS kB, fds, sockets, files, tcp conns, close_wait)."""

    def __init__(self, seeder, t0):
        super().__init__(daemon=True)
        self.seeder = seeder
        self.t0 = t0
        self.samples = []
        self.stop = threading.Event()

    def sample(self):
        rss = self.seeder.status_kb("VmRSS")
        f = open_descriptors(self.seeder.pid)
        if rss is None or f is None:
            return None
        conns, cw = tcp_connections(f[3])
        s = (round(time.monotonic() - self.t0, 2), rss, f[0], f[1], f[2], conns, cw)
        self.samples.append(s)
        return s

    def run(self):
        nxt = time.monotonic()
        while not self.stop.is_set() and self.seeder.alive():
            self.sample()
            nxt += 1.0
            self.stop.wait(max(0.0, nxt - time.monotonic()))


# ---------------------------------------------------------------------------------------------
# load: HTTP clients

class HttpStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.connections = 0
        self.abandoned = 0
        self.status = {}
        self.errors = {}
        self.wrong = []

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def count(self, table, key):
        with self.lock:
            d = getattr(self, table)
            d[key] = d.get(key, 0) + 1


def http_client(port, files, etags, stop, stats, seed):
    rnd = random.Random(seed)
    pages = [k for k in files if k.startswith("pages/")] + ["index.html"]
    others = [k for k in files if not k.startswith("pages/")]
    while not stop.is_set():
        c = http.client.HTTPConnection(HOST, port, timeout=20)
        stats.add(connections=1)
        try:
            for _ in range(rnd.randint(1, 20)):
                if stop.is_set():
                    break
                rel = rnd.choice(pages) if rnd.random() < 0.85 else rnd.choice(others)
                data = files[rel]
                kind = rnd.random()
                headers = {}
                method = "GET"
                want_status, want = 200, data
                path = "/" + rel
                if kind < 0.10:
                    method, want = "HEAD", b""
                elif kind < 0.30 and len(data) > 10:
                    a = rnd.randrange(len(data))
                    b = rnd.randrange(a, min(len(data), a + 300000))
                    headers["Range"] = "bytes=%d-%d" % (a, b)
                    want_status, want = 206, data[a:b + 1]
                elif kind < 0.40 and rel in etags:
                    headers["If-None-Match"] = etags[rel]
                    want_status, want = 304, b""
                elif kind < 0.45:
                    path = "/missing/%d.html" % rnd.randrange(1000)
                    want_status, want = 404, None
                c.request(method, path, headers=headers)
                r = c.getresponse()
                if method == "GET" and want_status in (200, 206) and len(want) > 65536 \
                        and rnd.random() < 0.2:
                    r.read(rnd.randrange(1, 65536))       # abandon it half read
                    stats.add(requests=1, abandoned=1)
                    stats.count("status", r.status)
                    break
                body = r.read()
                stats.add(requests=1, bytes=len(body))
                stats.count("status", r.status)
                if r.status == 200 and method == "GET" and rel in files and "ETag" not in headers:
                    et = r.getheader("ETag")
                    if et:
                        etags.setdefault(rel, et)
                if r.status != want_status:
                    stats.count("errors", "%s %s -> %d (want %d)" % (
                        method, "range" if "Range" in headers else "inm" if headers else "plain",
                        r.status, want_status))
                    if r.status >= 500 or r.status == 0:
                        break
                elif want is not None and body != want:
                    stats.wrong.append("%s %s %s: %d bytes, want %d" % (method, path, headers,
                                                                         len(body), len(want)))
                if r.getheader("Connection", "").lower() == "close":
                    break
                stop.wait(rnd.uniform(0.3, 2.5))     # a client's pace, not a synchronisation
        except Exception as e:  # noqa: BLE001 - counted: a client error is a figure, not a crash
            if not stop.is_set():
                stats.count("errors", type(e).__name__)
        finally:
            c.close()
        stop.wait(rnd.uniform(0.2, 2.0))


# ---------------------------------------------------------------------------------------------
# load: libtorrent leechers joining and leaving

class LeechStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.started = self.killed = self.finished = self.identical = self.resumed = 0
        self.problems = []
        self.other = {}

    def add(self, key, n=1):
        with self.lock:
            setattr(self, key, getattr(self, key) + n)


def leech_slot(slot, magnet, torrent, port, site, name, work, stop, stats):
    rnd = random.Random(1000 + slot)
    n = 0
    while not stop.is_set():
        n += 1
        save = os.path.join(work, "leech", "%d-%d" % (slot, n))
        logdir = os.path.join(work, "logs", "leech")
        source = magnet if rnd.random() < 0.5 else torrent
        argv = lt_leech_argv(source, save, 120, os.path.join(logdir, "lt-%d-%d.log" % (slot, n)),
                             peers=["%s:%d" % (HOST, port)],
                             # libtorrent 2.0.8's own race (see ltpeer): resumed as a user would
                             extra=["--resume-on-inconsistent-hashes", "3"])
        p = Proc("leech-%d-%d" % (slot, n), argv, logdir)
        stats.add("started")
        if rnd.random() < 0.5:
            stop.wait(rnd.uniform(0.5, 4.0))          # leaves after a while (churn)
            p.stop(signal.SIGKILL if rnd.random() < 0.5 else signal.SIGTERM, timeout=10)
            stats.add("killed")
        else:
            ev, rc = leech_outcome(p, 150)
            p.end()
            kind = (ev or {}).get("event")
            stats.add("resumed", len((ev or {}).get("inconsistent_hashes_resumed") or []))
            if kind == "finished":
                stats.add("finished")
                ok, summary, _ = compare_tree(site, os.path.join(save, name))
                if ok:
                    stats.add("identical")
                else:
                    with stats.lock:
                        stats.problems.append("leecher %d-%d: %s" % (slot, n, summary))
            else:
                with stats.lock:
                    k = "%s (exit %s)" % (kind or "no outcome", rc)
                    stats.other[k] = stats.other.get(k, 0) + 1
        shutil.rmtree(save, ignore_errors=True)
        # drop the finished Proc from Proc.ALL so the list does not grow for the whole soak
        if p in Proc.ALL:
            Proc.ALL.remove(p)
        stop.wait(rnd.uniform(1.0, 4.0))


# ---------------------------------------------------------------------------------------------
# load: hostile peers

class HostileStats:
    def __init__(self):
        self.rounds = 0
        self.floods = 0


def hostile_loop(ctx, stop, stats):
    rnd = random.Random(77)
    checks = [check_garbage, check_truncated, check_unknown_hash,
              make_len_prefix_check(0xFFFFFFFF), make_len_prefix_check(0x7FFFFFFF),
              check_fast_requests, check_nonfast_requests, check_hash_requests,
              check_ut_metadata, check_non_reader]
    while not stop.is_set():
        ctx.fresh()
        stats.rounds += 1
        ths = [threading.Thread(target=f, args=(ctx,), daemon=True) for f in checks]
        if stats.rounds % 4 == 0:
            stats.floods += 1
            ths.append(threading.Thread(target=check_flood, args=(ctx,), daemon=True))
        for th in ths:
            th.start()
        deadline = time.monotonic() + 60
        for th in ths:
            th.join(max(0.0, deadline - time.monotonic()))
        if any(th.is_alive() for th in ths):
            ctx.r.fail("hostile round %d finished within 60 s" % stats.rounds, "still running")
            for th in ths:
                th.join(30)
        stop.wait(rnd.uniform(5.0, 15.0))


# ---------------------------------------------------------------------------------------------
# verdict, plot, summary

def med(xs):
    return statistics.median(xs) if xs else None


def thirds(samples, t_start, t_end):
    span = (t_end - t_start) / 3.0
    mid = [s for s in samples if t_start + span <= s[0] < t_start + 2 * span]
    last = [s for s in samples if t_start + 2 * span <= s[0] <= t_end]
    return mid, last


def plot(samples, marks, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return "no plot: %s" % e
    t = [s[0] / 60.0 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True)
    axes[0].plot(t, [s[1] / 1024.0 for s in samples], color="tab:blue", lw=0.8)
    axes[0].set_ylabel("VmRSS (MB)")
    axes[1].plot(t, [s[2] for s in samples], color="tab:green", lw=0.8, label="all descriptors")
    axes[1].plot(t, [s[3] for s in samples], color="tab:orange", lw=0.8, label="sockets")
    axes[1].plot(t, [s[4] for s in samples], color="tab:gray", lw=0.8, label="files")
    axes[1].set_ylabel("open descriptors")
    axes[1].legend(loc="upper left", fontsize=8)
    axes[2].plot(t, [s[5] for s in samples], color="tab:red", lw=0.8, label="TCP (not LISTEN)")
    axes[2].plot(t, [s[6] for s in samples], color="tab:purple", lw=0.8, label="CLOSE_WAIT")
    axes[2].set_ylabel("TCP connections")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[2].set_xlabel("minutes since the seeder was ready")
    for ax in axes:
        ax.grid(alpha=0.3)
        for x, label, style in marks:
            ax.axvline(x / 60.0, color="k", ls=style, lw=0.7)
    for x, label, style in marks:
        axes[0].annotate(label, (x / 60.0, 1.0), xycoords=("data", "axes fraction"),
                         fontsize=7, rotation=90, va="top", ha="right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--webseed", help="the binary (default: swift build's debug build, built now)")
    ap.add_argument("--work", default="/tmp/webseed-soak")
    ap.add_argument("--artifacts", default=os.path.join(REPO, "artifacts"))
    ap.add_argument("--http-clients", type=int, default=300)
    ap.add_argument("--leechers", type=int, default=3)
    ap.add_argument("--note", default="", help="a line for the summary (what else ran meanwhile)")
    args = ap.parse_args()

    if args.webseed:
        binary = os.path.abspath(args.webseed)
    else:
        say("soak: swift build (debug)")
        if subprocess.run(["swift", "build", "--product", "webseed"], cwd=REPO,
                          stdout=subprocess.DEVNULL, timeout=3600).returncode != 0:
            say("soak: swift build failed")
            return 1
        out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPO, timeout=600,
                             stdout=subprocess.PIPE).stdout.decode().strip()
        binary = os.path.join(out, "webseed")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    fresh_dirs(work, ("state", "logs", "leech"))
    os.makedirs(args.artifacts, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 16384), hard), hard))
    duration = args.minutes * 60
    wall0 = time.time()
    load0 = open("/proc/loadavg").read().split()[:3]

    site = os.path.join(work, "site")
    files = soak_site(site)
    say("soak: site of %d files, %.1f MB; %s for %.0f min" % (
        len(files), sum(map(len, files.values())) / MB, binary, args.minutes))

    seeder = Seeder("seeder", [binary, "seed", site, "--listen", "%s:0" % HOST, "--gateway",
                               "%s:0" % HOST, "--offline", "--state-dir",
                               os.path.join(work, "state"), "--json"],
                    os.path.join(work, "logs"), cwd=work)
    # every later wait is bounded by its own timeout; this one bounds the whole run
    watchdog = threading.Timer(duration + 900, lambda: (say("soak: watchdog expired"),
                                                        Proc.kill_all(), os._exit(1)))
    watchdog.daemon = True
    watchdog.start()
    failures = []
    try:
        ready = seeder.wait_for("ready", 120)
        site_ev = seeder.wait_for("site", 1)
        gw = seeder.wait_for("gateway", 5)
        listening = seeder.wait_for("listening", 1)
        if not (ready and site_ev and gw and listening):
            say("soak: the seeder did not start: " + "\n".join(seeder.log_tail(10)))
            return 1
        port, gport = int(listening["port"]), int(gw["port"])
        tpath = site_ev["torrent"]
        if not os.path.isabs(tpath):
            tpath = os.path.join(work, tpath)
        t = Torrent(tpath)

        # idle baseline, then the load
        t0 = time.monotonic()
        sampler = Sampler(seeder, t0)
        base = sampler.sample()
        base_fds = open_descriptors(seeder.pid)
        cpu0 = cpu_seconds(seeder.pid)
        sampler.start()
        say("soak: seeder ready (peer port %d, gateway %d); idle VmRSS %.1f MB, fds %d "
            "(sockets %d)" % (port, gport, base[1] / 1024, base[2], base[3]))

        stop = threading.Event()
        hstats, lstats, xstats = HttpStats(), LeechStats(), HostileStats()
        etags = {}
        ctx = Ctx(LoggedResults(os.path.join(work, "logs", "hostile.log")))
        ctx.port, ctx.t, ctx.files, ctx.seeder = port, t, files, seeder
        threads = []
        for i in range(args.leechers):
            threads.append(threading.Thread(target=leech_slot, daemon=True, args=(
                i, site_ev["magnet"], tpath, port, site, t.name, work, stop, lstats)))
        threads.append(threading.Thread(target=hostile_loop, args=(ctx, stop, xstats),
                                        daemon=True))
        clients = [threading.Thread(target=http_client, daemon=True,
                                    args=(gport, files, etags, stop, hstats, i))
                   for i in range(args.http_clients)]
        for th in threads:
            th.start()
        for i, th in enumerate(clients):          # ramp up over ~10 s
            th.start()
            stop.wait(10.0 / max(1, len(clients)))
        t_load = time.monotonic() - t0
        last_report = 0.0
        while time.monotonic() - t0 < duration and seeder.alive():
            stop.wait(5)
            el = time.monotonic() - t0
            if el - last_report >= 60 and sampler.samples:
                last_report = el
                s = sampler.samples[-1]
                say("soak: %4.1f min: VmRSS %.1f MB, fds %d (sockets %d), tcp %d; %d HTTP "
                    "requests, %d leechers, %d hostile rounds" % (
                        el / 60, s[1] / 1024, s[2], s[3], s[5], hstats.requests, lstats.started,
                        xstats.rounds))
        t_stop = time.monotonic() - t0
        say("soak: load stops")
        stop.set()
        for th in clients + threads:
            th.join(max(0.5, t0 + t_stop + 180 - time.monotonic()))
        still = sum(th.is_alive() for th in clients + threads)
        for p in list(Proc.ALL):   # leechers still running; not the seeder
            if p is not seeder:
                p.kill()

        # cool-down: the seeder closes what it no longer needs
        deadline = time.monotonic() + 60
        end = open_descriptors(seeder.pid)
        while time.monotonic() < deadline and seeder.alive():
            end = open_descriptors(seeder.pid)
            conns = tcp_connections(end[3])[0] if end else 0
            if end and end[1] <= base_fds[1] and conns == 0:
                break
            time.sleep(0.5)    # polling real state, bounded by the deadline
        sampler.stop.set()
        sampler.join(3)
        final = sampler.sample() if seeder.alive() else None
        t_end = time.monotonic() - t0
        cpu1 = cpu_seconds(seeder.pid)
        hwm = seeder.status_kb("VmHWM")

        # verdict
        samples = sampler.samples
        load = [s for s in samples if t_load <= s[0] <= t_stop]
        mid, last = thirds(load, t_load, t_stop)
        rows = []

        def grow(name, idx, scale, slack_abs, slack_rel, unit):
            m, l = med([s[idx] for s in mid]), med([s[idx] for s in last])
            if m is None or l is None:
                failures.append("%s: too few samples" % name)
                return
            allowed = m * (1 + slack_rel) + slack_abs * scale
            ok = l <= allowed
            rows.append((name, base[idx] / scale, m / scale, l / scale,
                         max(s[idx] for s in load) / scale,
                         final[idx] / scale if final else None,
                         ("≤ %s %s" % (fmt(allowed / scale), unit)).strip(), "yes" if ok else "NO"))
            if not ok:
                failures.append("%s keeps growing: median of the last third %s %s > %s allowed "
                                "(middle third %s)" % (name, fmt(l / scale), unit,
                                                        fmt(allowed / scale), fmt(m / scale)))

        grow("VmRSS (MB)", 1, 1024.0, 2, 0.02, "MB")
        grow("descriptors", 2, 1.0, 10, 0.10, "")
        grow("sockets", 3, 1.0, 10, 0.10, "")
        grow("TCP connections", 5, 1.0, 10, 0.10, "")
        cache = min(len(files), 128)
        if not final:
            failures.append("the seeder exited during the soak (status %s)" % seeder.p.poll())
        else:
            if final[3] > base[3] + 2:
                failures.append("sockets after the cool-down %d > idle %d + 2" % (final[3], base[3]))
            if final[2] - final[3] > base[2] - base[3] + cache + 4:
                failures.append("non-socket descriptors after the cool-down %d > idle %d + %d "
                                "(data-file cache) + 4" % (final[2] - final[3], base[2] - base[3],
                                                           cache))
            if final[5] > 2:
                failures.append("TCP connections after the cool-down: %d" % final[5])
        if hstats.wrong:
            failures.append("HTTP: %d wrong bodies, e.g. %s" % (len(hstats.wrong), hstats.wrong[0]))
        if lstats.problems:
            failures.append("leechers: %d differ, e.g. %s" % (len(lstats.problems),
                                                             lstats.problems[0]))
        rc = None
        if seeder.alive():
            rc, took = seeder.stop(signal.SIGTERM, 15)
            if rc != 0:
                failures.append("seeder's exit on SIGTERM: %s" % rc)
        if still:
            failures.append("%d load threads did not end within 180 s" % still)

        # plot, csv, summary
        png = os.path.join(args.artifacts, "soak.png")
        verdict = "PASS" if not failures else "FAIL"
        marks = [(t_load, "load", "--"), (t_load + (t_stop - t_load) / 3, "1/3", ":"),
                 (t_load + 2 * (t_stop - t_load) / 3, "2/3", ":"), (t_stop, "load stops", "--")]
        perr = plot(samples, marks, png, "webseed soak %s: %.0f min, %d HTTP clients, %d leecher "
                    "slots, hostile rounds — %s" % (time.strftime("%Y-%m-%d", time.gmtime(wall0)),
                                                    args.minutes, args.http_clients,
                                                    args.leechers, verdict))
        with open(os.path.join(args.artifacts, "soak.csv"), "w") as f:
            f.write("t_s,vmrss_kb,fds,sockets,files,tcp,close_wait\n")
            for s in samples:
                f.write(",".join(str(x) for x in s) + "\n")
        load1 = open("/proc/loadavg").read().split()[:3]
        md = []
        md.append("# Soak: `webseed seed` with its gateway under churn\n")
        md.append("%s → %s UTC, %.1f min of load (%d samples at 1 Hz), then %.0f s of cool-down. "
                  "Binary `%s`. Load average %s at the start, %s at the end (2 cores)%s.\n" % (
                      time.strftime("%Y-%m-%d %H:%M", time.gmtime(wall0)),
                      time.strftime("%H:%M", time.gmtime()), (t_stop - t_load) / 60,
                      len(samples), t_end - t_stop, binary, "/".join(load0), "/".join(load1),
                      "; " + args.note if args.note else ""))
        md.append("**%s**%s\n" % (verdict, "" if not failures else ": " + "; ".join(failures)))
        md.append("| figure | idle | median, middle third | median, last third | max | after cool-down | allowed (last third) | holds |")
        md.append("|---|---|---|---|---|---|---|---|")
        for r in rows:
            md.append("| %s | " % r[0] + " | ".join(fmt(x) for x in r[1:6]) + " | %s | %s |" % r[6:])
        md.append("")
        md.append("Peak RSS (VmHWM) %s MB; seeder CPU %s s over the run; exit on SIGTERM: %s." % (
            fmt(hwm / 1024 if hwm else None), fmt(cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None), rc))
        md.append("")
        md.append("Load: HTTP — %d clients, %d connections, %d requests (%d abandoned half read), "
                  "%.1f MB of bodies, statuses %s, errors %s, wrong bodies %d. libtorrent — %d "
                  "leechers started, %d killed while downloading, %d finished (%d identical), "
                  "other outcomes %s, %d resumed after libtorrent 2.0.8's inconsistent-hashes "
                  "race. Hostile — %d rounds (%d with %d never-handshaking "
                  "connections), %d checks passed, %d failed%s.\n" % (
                      args.http_clients, hstats.connections, hstats.requests, hstats.abandoned,
                      hstats.bytes / MB, dict(sorted(hstats.status.items())),
                      dict(sorted(hstats.errors.items(), key=lambda kv: -kv[1])[:6]) or "none",
                      len(hstats.wrong), lstats.started, lstats.killed, lstats.finished,
                      lstats.identical, lstats.other or "none", lstats.resumed, xstats.rounds, xstats.floods,
                      FLOOD_N, ctx.r.passed, ctx.r.failed,
                      " (e.g. %s)" % "; ".join(ctx.r.failures[:3]) if ctx.r.failures else ""))
        md.append("Criterion: the first third of the load phase is warm-up. RSS keeps growing if "
                  "the median of the last third exceeds the middle third's by more than 2 MB + 2%; "
                  "descriptors, sockets and TCP connections if by more than 10 + 10%. After the "
                  "cool-down the seeder's sockets must be back at the idle count (+2), its other "
                  "descriptors within its data-file cache (min(files, 128)) + 4 of idle, and no TCP "
                  "connection left but the listeners (+2). A wrong HTTP body, a finished leecher "
                  "with different files, or a seeder that exits or does not exit 0 on SIGTERM "
                  "also fails. Hostile checks that miss their time are counted, not failed.\n")
        md.append("Plot: `%s`%s; samples: `%s`; logs: `%s`." % (
            os.path.relpath(png, REPO), " (" + perr + ")" if perr else "",
            os.path.relpath(os.path.join(args.artifacts, "soak.csv"), REPO),
            os.path.join(work, "logs")))
        text = "\n".join(md) + "\n"
        with open(os.path.join(args.artifacts, "soak.md"), "w") as f:
            f.write(text)
        print(text, flush=True)
        return 0 if not failures else 1
    finally:
        watchdog.cancel()
        Proc.kill_all()


def fmt(x):
    if x is None:
        return "–"
    if isinstance(x, float) and x != int(x):
        return "%.1f" % x
    return "%d" % x


if __name__ == "__main__":
    sys.exit(main())
