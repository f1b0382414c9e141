"""Benchmark webseed's HTTP gateway against nginx, everything on loopback.

usage: Tools/bench/gateway [--webseed BIN] [--nginx-only] [--quick] [--runs N] [--duration S]
                           [--only rps,big,ttfb,page] [--ttfb-corpus] [--corpus-dir DIR] [--out FILE]

Without --webseed it first builds webseed with `swift build -c release --product webseed` and
uses that binary; --webseed BIN skips the build (a debug binary only checks that the script
works: its figures mean nothing). --nginx-only measures nginx alone (the reference figures; no
webseed needed, no targets).

Tools: wrk, Debian's nginx and Debian's chromium. The script installs whichever is missing
with `apt-get install --no-install-recommends` (as root or through sudo -n; when the machine has
no /usr/sbin/policy-rc.d, one that forbids starting services is in place during the install, so
the nginx package does not leave a daemon on port 80).

Servers:
  webseed   `webseed seed DIR --listen 127.0.0.1:0 --gateway 127.0.0.1:0 --offline --state-dir S
            --json`: one site, served at the root for a Host that is not "localhost", so the URL
            is http://127.0.0.1:PORT/<file> (PORT from its {"event":"gateway"} line).
  nginx     Debian's nginx in the foreground (daemon off) with a private config and prefix in a
            temp dir (webseedtest/httpbench.py): worker_processes auto, sendfile on, tcp_nopush on,
            keep-alive (keepalive_requests 1000000, so it never closes a wrk connection), access_log
            off, Debian's mime.types; otherwise defaults (no open_file_cache, as Debian ships it).
            Serving the same directories from disk (the page cache: files are read once first).
Before measuring, every file is fetched once from each server and compared (SHA-256) with its
source, and the status must be 200: a server that answers wrongly fails the case.

Cases and targets (the corpus, two files made deterministically under $WEBSEED_BENCH_DIR or
/tmp/webseed-bench/gateway: file-4k.bin of 4,096 B and file-100m.bin of 100 MiB):
  1 rps   4 KiB file with keep-alive: requests/s from `wrk -t2 -c32 -d5s` (2 threads,
          32 connections, 5 s; each server gets one untimed 2 s warm-up run first). The median
          of --runs runs (default 3) per server, alternating which server goes first.
          Target: webseed >= 0.5x nginx.
  2 big   100 MiB file: throughput (bytes wrk read per second) from `wrk -t2 -c4 -d5s`, same
          protocol. Targets: webseed >= 0.9x nginx's throughput, and webseed's server CPU per GB
          served <= 3x nginx's (the median run's of each), the latter judged pinned: the server's
          threads on one CPU and `wrk -t1 -c4` on the other, a run each, same protocol. Unpinned,
          both cores are full and Linux counts the loopback's receive work (the TCP input of
          every segment the server sends) to whichever process it interrupts, so the server's
          share moves with scheduling: nginx's own figure moved between 0.08 and 0.23 s per GB
          from one run to the next. Pinned, it is always the sender's, for both servers alike.
          The unpinned figure is shown too. For information: one connection (`wrk -t1 -c1 -d5s`).
  Any wrk error (connect/read/write/timeout or a status >= 400) or fewer bytes than
  requests x file size fails the case. Server CPU (utime+stime of the webseed process or of
  nginx's master and workers, from /proc) over each run is shown per request / per GB served.
  wrk and the server share the machine's cores (this is loopback), the same for both servers;
  wrk copies every byte it reads, so in case 2 the client's share is large and the server CPU
  per GB is the figure that shows each server's own cost.

  3 ttfb  A gateway that holds nothing, `webseed gateway MAGNET --listen 127.0.0.1:0
          --peer-listen 127.0.0.1:0 --peer 127.0.0.1:SEEDPORT --offline --state-dir <fresh>
          --json`, MAGNET the v2 magnet (urn:btmh + dn; no x.pe: the peer comes from --peer) of
          `webseed seed Samples/site` running on loopback (one seeder, started once, warm). A
          gateway may start fetching a magnet given on its command line at once, before it
          announces anything (today's does, and announces the site, "gateway_site", once it has
          the metadata), so "GET sent → first byte" could leave the metadata out. The clock so
          starts at the gateway's spawn: as soon as its {"event":"gateway"} line gives the HTTP
          port, the script connects and sends `GET / HTTP/1.1` with Host:
          <site-id>.localhost:PORT (the site id computed from the magnet: base32 of the v2 info
          hash), and time = spawn → the first response byte: process start, metadata exchange
          and the first piece of index.html are all inside it. The body must be
          Samples/site/index.html with status 200, and the gateway's gateway_site event must
          name the same site and URL. Median of --ttfb-runs (default 7) fresh gateways, each with
          a fresh empty state dir. Target: <= 300 ms. For information: GET sent → first byte
          (also against nginx and against the seeder's own gateway, which holds the site), and
          in how many runs the site was announced before the GET went out.
          --ttfb-corpus adds case 3b: the same on the generated ~2,000-file site (webseedtest.corpus
          "site", 2,002 files / 152 MB, made once under $WEBSEED_BENCH_DIR/full like Tools/bench/create's)
          served by its own `webseed seed`; index.html of that site must come back. Same target; it
          shows whether anything on the path to the first byte grows with the site's file count.
          It also adds case 3c: the same site seeded by libtorrent 2.0.8 (`ltpeer seed`, its own
          torrent of the directory), for information: how a fresh gateway fares with another
          client's pace for the metadata and the layers.

  4 page  The whole sample page (Samples/site/index.html with its style sheet, images, scripts)
          in headless Chromium from a fresh gateway like case 3's. Chromium cannot time a page
          from its command line, and the wall time of `chromium --dump-dom` is mostly the
          browser's own start-up (most of its ~0.8 s here), so the page times itself: Chromium
          opens a small harness page from a loopback server in this script (webseedtest/httpbench.py); its
          parser-blocking <script src="go.js"> is answered only once the script has spawned the
          fresh gateway (i.e. after the browser is up, so the gateway gets no head start) and
          seen its "gateway" event, and tells the page the site's URL
          (http://<site-id>.localhost:PORT/). The harness then starts a clock (performance.now()),
          loads that URL in an iframe and stops the clock at the iframe's load event = the
          sample page's own load event (HTML, CSS, both scripts, both images: everything but the
          assets.json that js/app.js fetches after DOMContentLoaded). Like case 3, the figure
          runs from the gateway's spawn: the page reports its clock as Unix time
          (performance.timeOrigin + now), the script took the Unix time at the spawn (same
          machine, same clock; checked against the sum of the parts, within 5 ms), so
          spawn → load event = the gateway's start-up + answering go.js and the browser running
          it + the page's own load. The iframe holds up the harness's own load event, after
          which --dump-dom prints the DOM with the figure in it (an image the harness requests
          at that point, answered 1 s later, holds the browser that long for what the page does
          after its load event; the clock has stopped by then).
          A fresh profile (empty cache) per load. Chromium's NetLog (--log-net-log) gives, for
          information, the time from the page's first request to the end of its last one
          (assets.json included) and is checked: every request of index.html's style sheets,
          images and scripts and assets.json must appear with status 200. After each load
          every file of the site is fetched from that gateway and compared with its source, and
          once (first fresh gateway, and nginx) the page is rendered with --virtual-time-budget to
          see that js/app.js ran and listed the files from assets.json. Median of --page-runs
          (default 5) fresh gateways, rotating which server's load goes first.
          Target: <= 1 s. References, on the page's own clock (same harness, fresh profile):
          nginx serving Samples/site under a *.localhost name (a cross-site iframe, as the
          gateway's is, so both pay for the same out-of-process frame) and the seeder's own
          gateway. Chromium is run from /usr/lib/chromium/chromium (without Debian's wrapper
          flags), headless, no sandbox, background networking off and a --host-resolver-rules
          that resolves only localhost, *.localhost and 127.0.0.1: nothing leaves the machine.

Before each measured run the script waits (bounded) for the machine to be idle and retries (up
to 3 times) wrk runs that other processes disturbed. Prints a markdown table and writes it to
artifacts/bench-gateway.md (bench-gateway-quick.md for --quick, bench-gateway-nginx[-quick].md
for --nginx-only) plus a .json beside it. --quick: 2 s wrk runs, 1 run each, 3 ttfb and 2 page
loads (a smoke run). Exit 1 if a target is missed or a case fails. Only loopback networking.
"""

import argparse
import base64
import datetime
import hashlib
import html.parser
import http.client
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))

from webseedtest import corpus
from webseedtest import httpbench as hb
from webseedtest.procs import program
from webseedtest.benchhost import (KIB, LIVE, MIB, JsonProc, binary_stamp, build_release,
                                   corpus_root, cpu_model, end_children_at_exit, git_head, log,
                                   machine_busy, med, one_at_a_time, require_binary, sha256_file,
                                   spawn, wait_binary, wait_idle, warm, write_report)

SITE = os.path.join(REPO, "Samples", "site")

SMALL = ("file-4k.bin", 4 * KIB)
BIG = ("file-100m.bin", 100 * MIB)
FILES_SEED = 0x6A7E
FILES_VERSION = 1

WRK_SMALL = (2, 32)   # threads, connections
WRK_BIG = (2, 4)
WRK_ONE = (1, 1)
WRK_PINNED = (1, 4)   # case 2 pinned: the server on CPU 0, wrk on CPU 1
WARMUP_S = 2

RPS_TARGET = 0.5      # webseed / nginx, at least
BIG_TARGET = 0.9      # webseed / nginx, at least
BIG_CPU_TARGET = 3.0  # webseed / nginx server CPU per GB, at most
TTFB_TARGET_MS = 300  # at most
PAGE_TARGET_MS = 1000  # at most
HOLD_MS = 1000        # case 4: how long the harness keeps the browser after the page's load event

CASES = ["rps", "big", "ttfb", "page"]
SERVERS = {"ws": "webseed", "ng": "nginx"}


def fmt(v, f):
    return "n/a" if v is None else f % v


# ---------------------------------------------------------------------------------------
# Machine state
# ---------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------------------

def ensure_files(root):
    """root/files with SMALL and BIG (pseudo-random bytes from a seeded stream, so every run and
    machine has the same files), unless a complete stamped copy exists; returns the directory."""
    d = os.path.join(root, "files")
    stamp_path = os.path.join(root, "files.stamp")
    stamp = {"generator": FILES_VERSION, "files": [list(SMALL), list(BIG)]}
    try:
        with open(stamp_path) as f:
            if json.load(f) == stamp and all(os.path.getsize(os.path.join(d, n)) == s for n, s in (SMALL, BIG)):
                return d
    except (OSError, ValueError):
        pass
    log("generating %s and %s in %s ..." % (SMALL[0], BIG[0], d))
    if os.path.lexists(stamp_path):
        os.unlink(stamp_path)
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    rng = random.Random(FILES_SEED)
    for name, size in (SMALL, BIG):
        with open(os.path.join(d, name), "wb") as f:
            left = size
            while left:
                n = min(left, 8 * MIB)
                f.write(rng.randbytes(n))
                left -= n
    with open(stamp_path, "w") as f:
        json.dump(stamp, f)
    return d


def site_files(d):
    """[relative path] of every file under d, '/'-separated."""
    out = []
    for dirpath, _, names in os.walk(d):
        for n in names:
            out.append(os.path.relpath(os.path.join(dirpath, n), d).replace(os.sep, "/"))
    return sorted(out)


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and (a.get("rel") or "").lower() == "stylesheet" and a.get("href"):
            self.refs.append(a["href"])
        elif tag in ("img", "script") and a.get("src"):
            self.refs.append(a["src"])


def page_paths(site):
    """The URL paths a load of the sample page must request: / and what index.html links as style
    sheet, image or script, plus assets.json (fetched by js/app.js)."""
    p = _Refs()
    with open(os.path.join(site, "index.html"), encoding="utf-8") as f:
        p.feed(f.read())
    paths = {"/", "/assets.json"}
    for r in p.refs:
        u = urllib.parse.urlsplit(r)
        if not u.scheme and not u.netloc:
            paths.add(urllib.parse.urljoin("/", u.path))
    return paths


# ---------------------------------------------------------------------------------------
# HTTP client side
# ---------------------------------------------------------------------------------------

def get_digest(port, host, path, timeout=120):
    """GET path from 127.0.0.1:port with Host: host; returns (status, body length, SHA-256 hex)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": host, "User-Agent": "webseed-bench"})
        r = c.getresponse()
        h = hashlib.sha256()
        n = 0
        while True:
            b = r.read(1 * MIB)
            if not b:
                break
            h.update(b)
            n += len(b)
        return r.status, n, h.hexdigest()
    finally:
        c.close()


def check_served(port, host, src_dir, rels):
    """Fetches every rels from the server and compares it with its source; returns problems."""
    bad = []
    for rel in rels:
        path = "/" + urllib.parse.quote(rel)
        try:
            status, n, digest = get_digest(port, host, path)
        except (OSError, http.client.HTTPException) as e:
            bad.append("%s: %s" % (path, e))
            continue
        if status != 200:
            bad.append("%s: status %d" % (path, status))
        elif digest != sha256_file(os.path.join(src_dir, rel)):
            bad.append("%s: %d bytes that differ from the source" % (path, n))
        if len(bad) >= 5:
            bad.append("...")
            break
    return bad


def first_byte(port, host, path, timeout=30):
    """Times GET path (fresh TCP connection, Connection: close): returns {t0, t1, t2 (perf_counter
    just before connect(), at the first response byte, at the end), first_ms, total_ms (from t0),
    status, body}."""
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: webseed-bench\r\nAccept: */*\r\n"
                   "Connection: close\r\n\r\n" % (path, host)).encode())
        first = s.recv(65536)
        t1 = time.perf_counter()
        chunks = [first]
        while first:
            b = s.recv(1 * MIB)
            if not b:
                break
            chunks.append(b)
        t2 = time.perf_counter()
    finally:
        s.close()
    data = b"".join(chunks)
    if not data:
        raise RuntimeError("connection closed without a response")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        body = out
    return {"t0": t0, "t1": t1, "t2": t2, "first_ms": 1000 * (t1 - t0), "total_ms": 1000 * (t2 - t0),
            "status": status, "body": body}


# ---------------------------------------------------------------------------------------
# webseed processes
# ---------------------------------------------------------------------------------------

def v2_magnet(magnet):
    """The seeder's magnet reduced to its urn:btmh xt and dn (the peer is given with --peer)."""
    q = magnet.split("?", 1)[1]
    keep = [part for part in q.split("&")
            if part.startswith("xt=urn:btmh:") or part.startswith("dn=")]
    return "magnet:?" + "&".join(keep)


def site_id_of(magnet):
    """The site id of a v2 magnet: the 52-character lowercase base32 of its v2 info hash."""
    for part in magnet.split("?", 1)[1].split("&"):
        if part.startswith("xt=urn:btmh:1220"):
            return base64.b32encode(bytes.fromhex(part[len("xt=urn:btmh:1220"):])).decode().lower().rstrip("=")
    raise ValueError("no v2 (urn:btmh) hash in %s" % magnet)


class FreshGateway:
    """`webseed gateway MAGNET …` with a fresh empty state dir, fetching from one seeder. Ready as
    soon as it has announced its HTTP port (the "gateway" event): the site's URL is known from the
    magnet, so nothing waits for the gateway to announce the site (which it may do only once it
    has the metadata)."""

    def __init__(self, binary, magnet, seed_port, work, n):
        self.state = tempfile.mkdtemp(prefix="gw-state-", dir=work)
        self.site_id = site_id_of(magnet)
        wait_binary(binary)
        self.ws = JsonProc([binary, "gateway", magnet, "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
                           "--peer", "127.0.0.1:%d" % seed_port, "--offline", "--state-dir", self.state, "--json"],
                          os.path.join(work, "gateway-%d.stderr" % n))
        self.spawned = self.ws.t0            # perf_counter just before the spawn
        self.spawned_unix = self.ws.t0_unix  # the same as Unix time
        gw, = self.ws.need(["gateway"], 60, "webseed gateway")
        self.port_ms = 1000 * (gw["_t"] - self.spawned)  # spawn -> HTTP port announced
        self.port = int(gw["port"])
        self.host = "%s.localhost:%d" % (self.site_id, self.port)
        self.url = "http://%s/" % self.host

    def site_ms(self, timeout=30):
        """ms from spawn to the gateway_site event, checked against the URL made from the magnet."""
        e = self.ws.wait_event("gateway_site", timeout)
        if e is None:
            raise RuntimeError("the gateway printed no gateway_site event within %d s" % timeout)
        if e.get("site_id") != self.site_id or urllib.parse.urlsplit(e.get("url", "")).netloc != self.host:
            raise RuntimeError("gateway_site event %s does not match site %s at %s" % (json.dumps(e), self.site_id,
                                                                                       self.host))
        return 1000 * (e["_t"] - self.spawned)

    def stop(self):
        self.ws.stop()
        shutil.rmtree(self.state, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Cases 1 and 2: wrk
# ---------------------------------------------------------------------------------------

def wrk_case(tools, servers, name, size, conf, duration, runs, pids=None):
    """Runs wrk against every server: one untimed warm-up each, then runs, alternating which
    server goes first, retrying runs disturbed by other processes. servers: {kind: (port, cpu_fn)}.
    pids ({kind: pid}): pin each server's threads to CPU 0 for its runs (back to every CPU after)
    and wrk to CPU 1. Returns {kind: {"runs": [report], "error": str or None, "disturbed": n}}."""
    threads, conns = conf
    kinds = list(servers)
    out = {k: {"runs": [], "error": None, "disturbed": 0} for k in kinds}
    every_cpu = os.sched_getaffinity(0)
    first, second = sorted(every_cpu)[:2] if len(every_cpu) >= 2 else (None, None)

    def one(k, secs):
        port, cpu_fn = servers[k]
        url = "http://127.0.0.1:%d/%s" % (port, name)
        if pids:
            hb.pin_tree(pids[k], {first})
        try:
            rep = hb.wrk(tools["wrk"], url, threads, conns, secs, cpu_of=cpu_fn, cpus={second} if pids else None)
        finally:
            if pids:
                hb.pin_tree(pids[k], every_cpu)
        e = rep["errors"]
        errs = sum(e.values())
        if errs:
            raise RuntimeError("wrk saw errors: %s" % ", ".join("%s %d" % kv for kv in e.items() if kv[1]))
        if rep["requests"] == 0 or rep["bytes"] < rep["requests"] * size:
            raise RuntimeError("%d bytes for %d responses of a %d-byte file" % (rep["bytes"], rep["requests"], size))
        return rep

    for k in kinds:
        try:
            one(k, WARMUP_S)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            out[k]["error"] = str(e)
            log("  %s FAILED: %s" % (SERVERS[k], e))
    for i in range(runs):
        order = kinds if i % 2 == 0 else list(reversed(kinds))
        for k in order:
            if out[k]["error"]:
                continue
            for attempt in range(4):
                wait_idle()
                b0, own0 = machine_busy(), os.times()
                ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                try:
                    rep = one(k, duration)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    out[k]["error"] = str(e)
                    log("  %s FAILED: %s" % (SERVERS[k], e))
                    break
                ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                b1, own1 = machine_busy(), os.times()
                wrk_cpu = (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime)
                own = (own1.user - own0.user) + (own1.system - own0.system)
                other = max(0.0, (b1 - b0) - (rep["server_cpu"] or 0.0) - wrk_cpu - own)
                rep["wrk_cpu"] = wrk_cpu
                rep["other_cpu"] = other
                if other > max(0.3, 0.05 * duration * (os.cpu_count() or 1)):
                    log("  (other processes used %.1f CPU-s during this %d s run%s)"
                        % (other, duration, "; retrying" if attempt < 3 else ""))
                    if attempt < 3:
                        continue
                    out[k]["disturbed"] += 1
                out[k]["runs"].append(rep)
                log("  %-8s run %d: %8.0f req/s, %7.1f MB/s, server CPU %.2f s, wrk CPU %.2f s, latency p50 %.2f ms"
                    " p99 %.2f ms" % (SERVERS[k], i + 1, rep["rps"], rep["bytes_per_s"] / 1e6,
                                      rep["server_cpu"] or -1, wrk_cpu, rep["latency_us"]["p50"] / 1000,
                                      rep["latency_us"]["p99"] / 1000))
                break
    for k in kinds:
        r = out[k]["runs"]
        out[k]["rps"] = med([x["rps"] for x in r])
        out[k]["bytes_per_s"] = med([x["bytes_per_s"] for x in r])
        out[k]["cpu_per_req_us"] = med([1e6 * x["server_cpu"] / x["requests"] for x in r
                                        if x["server_cpu"] is not None])
        out[k]["cpu_per_gb"] = med([x["server_cpu"] / (x["bytes"] / 1e9) for x in r if x["server_cpu"] is not None])
        out[k]["p50_ms"] = med([x["latency_us"]["p50"] / 1000 for x in r])
        out[k]["p99_ms"] = med([x["latency_us"]["p99"] / 1000 for x in r])
    return out


# ---------------------------------------------------------------------------------------
# Case 3: time to first byte from a fresh gateway
# ---------------------------------------------------------------------------------------

def start_seeder(argv, stderr, events, what, errors, error_key, to_src):
    """Spawns a seeder and waits for `events`; returns (process, to_src(*events)) or, with
    errors[error_key] set and the process stopped, (None, None)."""
    seeder = None
    try:
        seeder = JsonProc(argv, stderr)
        src = to_src(*seeder.need(events, 600, what))
        return seeder, src
    except (RuntimeError, KeyError, TypeError) as e:
        errors[error_key] = str(e)
        log("  %s FAILED: %s" % (what, e))
        if seeder:
            seeder.stop()
        return None, None


def start_site_seeder(binary, site_dir, label, tag, work, errors, error_key):
    """`webseed seed site_dir` on loopback with its own gateway; returns (process, src) or (None, None)
    with errors[error_key] set."""
    def to_src(_ready, lst, site, gw):
        src = {"magnet": v2_magnet(site["magnet"]), "seed_port": int(lst["port"]), "held_port": int(gw["port"]),
               "held_url": site["gateway_url"]}
        log("seeder of %s on 127.0.0.1:%d, its gateway at %s; magnet %s"
            % (label, src["seed_port"], src["held_url"], src["magnet"]))
        return src
    return start_seeder([binary, "seed", site_dir, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--offline",
                         "--state-dir", tempfile.mkdtemp(prefix="seed-%s-" % tag, dir=work), "--json"],
                        os.path.join(work, "seed-%s.stderr" % tag), ["ready", "listening", "site", "gateway"],
                        "webseed seed (%s)" % label, errors, error_key, to_src)


def start_lt_seeder(site_dir, label, work, errors, error_key):
    """libtorrent seeding site_dir on loopback (`ltpeer seed`); returns (process, src) or (None, None)
    with errors[error_key] set. src has no gateway of its own."""
    def to_src(lst, site, _ready):
        src = {"magnet": v2_magnet(site["magnet"]), "seed_port": int(lst["port"])}
        log("libtorrent seeder of %s on 127.0.0.1:%d; magnet %s" % (label, src["seed_port"], src["magnet"]))
        return src
    return start_seeder(program("ltpeer") + ["seed", site_dir, "--listen", "127.0.0.1:0", "--offline", "--json",
                                             "--state-dir", tempfile.mkdtemp(prefix="ltseed-", dir=work)],
                        os.path.join(work, "ltseed.stderr"), ["listening", "site", "ready"],
                        "ltpeer seed (%s)" % label, errors, error_key, to_src)


def ttfb_case(binary, src, ng_site, work, n, site_dir=SITE):
    """src: the seeder ({magnet, seed_port, held_port, held_url}) or None (nginx only); ng_site: nginx's
    (port, host) serving site_dir, or None (no nginx reference)."""
    index = open(os.path.join(site_dir, "index.html"), "rb").read()
    r = {"ws": [], "ws_get": [], "ws_port": [], "ws_total": [], "ws_site": [], "ws_site_first": 0, "ng": [], "held": [],
         "error": None}
    for i in range(n if src else 0):
        wait_idle()
        g = None
        try:
            g = FreshGateway(binary, src["magnet"], src["seed_port"], work, i)
            m = first_byte(g.port, g.host, "/")
            if m["status"] != 200 or m["body"] != index:
                raise RuntimeError("GET / answered %d with %d bytes that are not index.html"
                                   % (m["status"], len(m["body"])))
            spawn_ms = 1000 * (m["t1"] - g.spawned)
            sent_ms = 1000 * (m["t0"] - g.spawned)
            site_ms = g.site_ms()
            r["ws"].append(spawn_ms)
            r["ws_get"].append(m["first_ms"])
            r["ws_total"].append(1000 * (m["t2"] - g.spawned))
            r["ws_port"].append(sent_ms)
            r["ws_site"].append(site_ms)
            r["ws_site_first"] += site_ms < sent_ms
            log("  fresh gateway %d: first byte %.1f ms after spawn (GET sent at %.1f ms, answered %.1f ms later); "
                "site announced at %.1f ms" % (i + 1, spawn_ms, sent_ms, m["first_ms"], site_ms))
        except (RuntimeError, OSError) as e:
            r["error"] = str(e)
            log("  webseed gateway FAILED: %s" % e)
            break
        finally:
            if g:
                g.stop()
    refs = [("ng", ng_site[0], ng_site[1])] if ng_site else []
    if src and "held_port" in src:
        refs.append(("held", src["held_port"], urllib.parse.urlsplit(src["held_url"]).netloc))
    for k, port, host in refs:
        for i in range(n):
            m = first_byte(port, host, "/")
            if m["status"] != 200 or m["body"] != index:
                r["%s_error" % k] = "GET / answered %d" % m["status"]
                break
            r[k].append(m["first_ms"])
    log("  references, GET → first byte (median): nginx %s ms, the seeder's own gateway %s ms"
        % (fmt(med(r["ng"]), "%.2f"), fmt(med(r["held"]), "%.2f")))
    return r


# ---------------------------------------------------------------------------------------
# Case 4: the sample page in headless Chromium
# ---------------------------------------------------------------------------------------

def page_case(chromium, binary, src, ng_site, work, n):
    """Loads the sample page n times from each of: a fresh gateway, nginx and the seeder's own
    gateway (rotating which goes first); checks every load (NetLog), every fresh gateway's files
    and, once each, that the page renders with its scripts run."""
    want = page_paths(SITE)
    rels = site_files(SITE)
    with open(os.path.join(SITE, "assets.json")) as f:
        n_assets = len(json.load(f).get("files", []))
    harness = hb.Harness(hold_ms=HOLD_MS)
    ng_url = "http://%s/" % ng_site[1]
    r = {"error": None, "render": {}}
    kinds = ["ws", "ng", "held"] if src else ["ng"]
    for k in kinds:
        r[k], r[k + "_net"], r[k + "_wall"] = [], [], []
    r["ws_page"], r["ws_gap"], r["ws_site_first"] = [], [], 0
    names = {"ws": "webseed (fresh gateway)", "ng": "nginx", "held": "webseed (seeder's gateway)"}

    def load(target_fn, origin_of):
        """One page load; returns (load ms, network ms, chromium wall s) after checking the NetLog."""
        for attempt in range(3):
            try:
                res = hb.page_load(chromium, harness, target_fn, work)
                break
            except RuntimeError as e:
                if attempt == 2:
                    raise
                log("  (chromium: %s; again)" % e)
        origin = origin_of()
        reqs = [q for q in res["requests"] if q["url"].startswith(origin + "/")]
        seen = {}
        for q in reqs:
            seen.setdefault(urllib.parse.urlsplit(q["url"]).path, q["status"])
        missing = sorted(p for p in want if p not in seen)
        wrong = sorted("%s %s" % (p, s if s is not None else "(no response %d ms after the load event)" % harness.hold_ms)
                       for p, s in seen.items() if p in want and s != 200)
        if missing or wrong:
            raise RuntimeError("page load from %s: %s%s" % (origin, "missing " + ", ".join(missing) if missing else "",
                                                            "; not 200: " + ", ".join(wrong) if wrong else ""))
        net = max(q["end"] or q["start"] for q in reqs) - min(q["start"] for q in reqs)
        return res, net, res["wall_s"] - harness.hold_ms / 1000

    def render_ok(url):
        dom = hb.render_check(chromium, url, work)
        listed = sum(1 for rel in rels if ">%s</a>" % rel in dom)
        return ("webseed-sample-ok" in dom and listed >= n_assets), listed

    for i in range(n):
        order = kinds[i % len(kinds):] + kinds[:i % len(kinds)]
        for k in order:
            if r.get(k + "_error") or (k == "ws" and r["error"]):
                continue
            wait_idle()
            box = {}

            def start_gateway():
                if box.get("g"):  # a retried load: never two gateways at once
                    box["g"].stop()
                box["g"] = FreshGateway(binary, src["magnet"], src["seed_port"], work, 100 + i)
                return box["g"].url
            try:
                if k == "ng":
                    res, net, wall = load(lambda: ng_url, lambda: ng_url.rstrip("/"))
                    ms = res["load_ms"]
                elif k == "held":
                    res, net, wall = load(lambda: src["held_url"], lambda: src["held_url"].rstrip("/"))
                    ms = res["load_ms"]
                else:
                    res, net, wall = load(start_gateway, lambda: box["g"].url.rstrip("/"))
                    g = box["g"]
                    # From the gateway's spawn to the page's load event, on the wall clock that the
                    # benchmark and the browser share (the page reports performance.timeOrigin + now).
                    ms = res["t1_unix_ms"] - 1000 * g.spawned_unix
                    gap = res["t0_unix_ms"] - res["answered_unix_ms"]
                    if not -5 <= gap <= 1000 or abs(ms - (1000 * (res["answered_unix_ms"] / 1000 - g.spawned_unix)
                                                         + gap + res["load_ms"])) > 5:
                        raise RuntimeError("the browser's clock and the benchmark's disagree (go.js answered → "
                                           "page clock start %.1f ms)" % gap)
                    site_ms = g.site_ms()
                    r["ws_site_first"] += site_ms < res["answered_unix_ms"] - 1000 * g.spawned_unix
                    bad = check_served(g.port, g.host, SITE, rels)
                    if bad:
                        raise RuntimeError("the fresh gateway served wrong files: %s" % "; ".join(bad))
                    if "ws" not in r["render"]:
                        r["render"]["ws"] = render_ok(g.url)
                    r["ws_page"].append(res["load_ms"])
                    r["ws_gap"].append(res["answered_unix_ms"] - 1000 * g.spawned_unix + gap)
                r[k].append(ms)
                r[k + "_net"].append(net)
                r[k + "_wall"].append(wall)
                if k == "ws":
                    log("  %-27s load %d: spawn → load event %4.0f ms (spawn → page clock start %.0f ms, then the "
                        "page's own load %.0f ms), all requests done %4.0f ms (chromium wall %.2f s)"
                        % (names[k], i + 1, ms, r["ws_gap"][-1], res["load_ms"], net, wall))
                else:
                    log("  %-27s load %d: load event %4.0f ms, all requests done %4.0f ms (chromium wall %.2f s)"
                        % (names[k], i + 1, ms, net, wall))
            except RuntimeError as e:
                if k == "ws":
                    r["error"] = str(e)
                else:
                    r[k + "_error"] = str(e)
                log("  %s FAILED: %s" % (names[k], e))
            finally:
                if box.get("g"):
                    box["g"].stop()
    r["render"]["ng"] = render_ok(ng_url)
    harness.close()
    return r


# ---------------------------------------------------------------------------------------

def main():
    end_children_at_exit()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", help="use this binary instead of building one with swift build -c release")
    ap.add_argument("--nginx-only", action="store_true", help="measure nginx alone (reference figures, no targets)")
    ap.add_argument("--corpus-dir", default=os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench"))
    ap.add_argument("--quick", action="store_true", help="2 s wrk runs, 1 run each, 3 ttfb and 2 page loads")
    ap.add_argument("--runs", type=int, help="wrk runs per server and case (default 3, --quick 1)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 5, --quick 2)")
    ap.add_argument("--ttfb-runs", type=int, help="fresh gateways for case 3 (default 7, --quick 3)")
    ap.add_argument("--page-runs", type=int, help="page loads per server for case 4 (default 5, --quick 2)")
    ap.add_argument("--only", help="comma-separated cases: " + ",".join(CASES))
    ap.add_argument("--ttfb-corpus", action="store_true",
                    help="case 3 also on the generated ~2,000-file site (webseedtest.corpus 'site', the one "
                         "Tools/bench/create uses, under CORPUS_DIR/full)")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-gateway[-nginx][-quick].md)")
    args = ap.parse_args()

    runs = args.runs or (1 if args.quick else 3)
    duration = args.duration or (2 if args.quick else 5)
    ttfb_runs = args.ttfb_runs or (3 if args.quick else 7)
    page_runs = args.page_runs or (2 if args.quick else 5)
    cases = CASES
    if args.only:
        cases = [c for c in CASES if c in set(args.only.split(","))]
        if not cases:
            sys.exit("bench: --only matched no case")
    root = corpus_root(args.corpus_dir, "gateway")
    os.makedirs(root, exist_ok=True)
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-gateway%s%s.md"
                                       % ("-nginx" if args.nginx_only else "", "-quick" if args.quick else ""))
    # One benchmark at a time: a second one would share the CPUs and the work directory.
    one_at_a_time(os.path.join(root, "bench-gateway.lock"), "gateway")

    try:
        tools = hb.ensure_tools(["wrk", "nginx"] + (["chromium"] if "page" in cases else []), log=log)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        sys.exit("bench: %s" % e)
    versions = {t: hb.tool_version(t, p) for t, p in tools.items()}

    binary = None
    stamp0 = None
    if not args.nginx_only:
        binary = os.path.abspath(args.webseed) if args.webseed else build_release()
        require_binary(binary)
        for sub, flag in (("seed", "--gateway"), ("gateway", "--peer-listen")):
            p = spawn([binary, sub, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out, _ = p.communicate()
            if p.returncode != 0 or ("USAGE: webseed %s " % sub) not in out or flag not in out:
                sys.exit("bench: `%s %s --help` shows no %s: this binary has no HTTP gateway yet"
                         % (binary, sub, flag))
        stamp0 = binary_stamp(binary)
    head = git_head()
    kinds = ["ng"] if args.nginx_only else ["ws", "ng"]

    work = os.path.join(root, "work")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    files_dir = ensure_files(root)
    warm(files_dir)
    warm(SITE)
    corpus_site, corpus_files = None, 0
    if args.ttfb_corpus and "ttfb" in cases and not args.nginx_only:
        corpus_site, layout = corpus.ensure(corpus_root(args.corpus_dir, "full"), "site", 1.0, log=log)
        corpus_files = len(layout)
        warm(corpus_site)

    nginx = hb.Nginx(tools["nginx"], [files_dir, SITE], work)
    try:
        ng_files_port, ng_site_port = nginx.start()
    except RuntimeError as e:
        sys.exit("bench: %s" % e)
    LIVE.add(nginx.p)
    log("nginx %s on 127.0.0.1:%d (files) and :%d (Samples/site), prefix %s"
        % (versions["nginx"], ng_files_port, ng_site_port, nginx.prefix))
    results = {"cases": {}}
    errors = {}

    # Cases 1 and 2.
    if "rps" in cases or "big" in cases:
        servers = {"ng": (ng_files_port, nginx.cpu)}
        bad = check_served(ng_files_port, "127.0.0.1:%d" % ng_files_port, files_dir, [SMALL[0], BIG[0]])
        if bad:
            sys.exit("bench: nginx serves the files wrongly: %s" % "; ".join(bad))
        ws_files = None
        if not args.nginx_only:
            try:
                ws_files = JsonProc([binary, "seed", files_dir, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0",
                                    "--offline", "--state-dir", tempfile.mkdtemp(prefix="seed-files-", dir=work),
                                    "--json"], os.path.join(work, "seed-files.stderr"))
                ready, gw = ws_files.need(["ready", "gateway"], 600, "webseed seed (files)")
                port = int(gw["port"])
                bad = check_served(port, "127.0.0.1:%d" % port, files_dir, [SMALL[0], BIG[0]])
                if bad:
                    raise RuntimeError("webseed serves the files wrongly: %s" % "; ".join(bad))
                servers = {"ws": (port, ws_files.cpu), "ng": (ng_files_port, nginx.cpu)}
                log("webseed seed: gateway on 127.0.0.1:%d (ready %.2f s after spawn)" % (port, ready["_t"] - ws_files.t0))
            except RuntimeError as e:
                errors["ws-files"] = str(e)
                log("  webseed FAILED: %s" % e)
                if ws_files:
                    ws_files.stop()
                ws_files = None
        if "rps" in cases:
            log("case 1: %s (%d B), keep-alive, wrk -t%d -c%d -d%ds, %d run%s" % (
                SMALL[0], SMALL[1], WRK_SMALL[0], WRK_SMALL[1], duration, runs, "s" if runs > 1 else ""))
            results["cases"]["rps"] = wrk_case(tools, servers, SMALL[0], SMALL[1], WRK_SMALL, duration, runs)
        if "big" in cases:
            log("case 2: %s (%d MiB), wrk -t%d -c%d -d%ds" % (BIG[0], BIG[1] // MIB, WRK_BIG[0], WRK_BIG[1], duration))
            results["cases"]["big"] = wrk_case(tools, servers, BIG[0], BIG[1], WRK_BIG, duration, runs)
            log("case 2, one connection: wrk -t%d -c%d -d%ds" % (WRK_ONE[0], WRK_ONE[1], duration))
            results["cases"]["big1"] = wrk_case(tools, servers, BIG[0], BIG[1], WRK_ONE, duration, runs)
            if len(os.sched_getaffinity(0)) >= 2:
                log("case 2, pinned: the server on CPU 0, wrk -t%d -c%d -d%ds on CPU 1" % (WRK_PINNED[0], WRK_PINNED[1], duration))
                pids = {"ng": nginx.p.pid}
                if ws_files:
                    pids["ws"] = ws_files.pid
                results["cases"]["big_pinned"] = wrk_case(tools, servers, BIG[0], BIG[1], WRK_PINNED, duration, runs, pids=pids)
        if ws_files:
            results["ws_files_rss_mb"] = ws_files.hwm_mb()
            ws_files.stop()

    # Cases 3 and 4: one seeder of Samples/site.
    seeder = src = None
    if ("ttfb" in cases or "page" in cases) and not args.nginx_only:
        seeder, src = start_site_seeder(binary, SITE, "Samples/site", "site", work, errors, "seeder")
    ng_site = (ng_site_port, "nginx-ref.localhost:%d" % ng_site_port)
    if "ttfb" in cases:
        log("case 3: GET / from a fresh gateway (magnet + 1 seeder), %d gateways" % ttfb_runs)
        results["cases"]["ttfb"] = ttfb_case(binary, src, ng_site, work, ttfb_runs)
    if "ttfb" in cases and corpus_site and not args.nginx_only:
        site_label = "the %d-file site" % corpus_files
        for key, who, error_key, start in (
                ("ttfb_corpus", "3b", "corpus-seeder",
                 lambda: start_site_seeder(binary, corpus_site, site_label, "corpus", work, errors, "corpus-seeder")),
                ("ttfb_lt", "3c", "lt-seeder", lambda: start_lt_seeder(corpus_site, site_label, work, errors, "lt-seeder"))):
            c_seeder, c_src = start()
            log("case %s: GET / from a fresh gateway of %s (magnet + 1 %s seeder), %d gateways"
                % (who, site_label, "libtorrent" if key == "ttfb_lt" else "webseed", ttfb_runs))
            results["cases"][key] = ttfb_case(binary, c_src, None, work, ttfb_runs, site_dir=corpus_site)
            if c_src is None:
                results["cases"][key]["error"] = errors.get(error_key, "no seeder")
            if c_seeder:
                c_seeder.stop()
    if "page" in cases:
        log("case 4: the sample page in headless Chromium %s, %d loads" % (versions.get("chromium", "?"), page_runs))
        results["cases"]["page"] = page_case(tools["chromium"], binary, src, ng_site, work, page_runs)
    for k in ("ttfb", "page"):
        if k in results["cases"] and src is None and not args.nginx_only:
            results["cases"][k]["error"] = errors.get("seeder", "no seeder")

    if seeder:
        seeder.stop()
    LIVE.discard(nginx.p)
    nginx.stop()

    # Report.
    stamp1 = binary_stamp(binary) if binary else None
    all_met = True
    lines = []
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines.append("### webseed's HTTP gateway vs nginx%s%s" % (" (nginx only: reference figures)" if args.nginx_only else "",
                                                             " (QUICK smoke run)" if args.quick else ""))
    lines.append("")
    lines.append("%s; %s, %d cores; loopback; nginx %s (private config: worker_processes auto, sendfile, keep-alive, "
                 "access_log off), wrk %s, Chromium %s (headless, fresh profile per load). wrk runs: %d s, median of %d "
                 "per server, alternating order; server CPU from /proc. %s"
                 % (now, cpu_model(), os.cpu_count() or 1, versions["nginx"], versions["wrk"],
                    versions.get("chromium", "–"), duration, runs,
                    "" if args.nginx_only else "webseed: %s, built %s (repository at %s)." % (
                        os.path.relpath(binary, REPO) if binary.startswith(REPO + os.sep) else binary,
                        datetime.datetime.fromtimestamp(stamp0[0]).strftime("%Y-%m-%d %H:%M:%S") if stamp0 else "?",
                        head)))
    lines.append("")
    lines.append("| case | metric | webseed | nginx | webseed / nginx | target | met? |")
    lines.append("|---|---|---|---|---|---|---|")
    footnotes = []
    if stamp1 != stamp0:
        footnotes.append("the webseed binary was replaced while this ran: the figures may mix two builds")

    def cell(v, fmt):
        return "n/a" if v is None else fmt % v

    def row(label, metric, ws_v, ng_v, fmt, ratio_min=None, abs_max=None, ws_err=None, ng_err=None, ratio=True,
            ratio_max=None):
        nonlocal all_met
        ratio = ws_v / ng_v if (ratio and ws_v is not None and ng_v) else None
        tcell, met = "(info)", "–"
        if not args.nginx_only and ratio_min is not None:
            tcell = "≥ %.2g× nginx" % ratio_min
            ok = ratio is not None and ratio >= ratio_min and not ws_err
            met = "yes" if ok else "**no**"
            all_met &= ok
        elif not args.nginx_only and ratio_max is not None:
            tcell = "≤ %.2g× nginx" % ratio_max
            ok = ratio is not None and ratio <= ratio_max and not ws_err
            met = "yes" if ok else "**no**"
            all_met &= ok
        elif not args.nginx_only and abs_max is not None:
            tcell = "≤ %s" % abs_max[0]
            ok = ws_v is not None and ws_v <= abs_max[1] and not ws_err
            met = "yes" if ok else "**no**"
            all_met &= ok
        elif args.nginx_only and ratio_max is not None:
            tcell = "≤ %.2g× nginx" % ratio_max
        elif args.nginx_only and (ratio_min is not None or abs_max is not None):
            tcell = "≥ %.2g× nginx" % ratio_min if ratio_min is not None else "≤ %s" % abs_max[0]
        wcell = "–" if args.nginx_only else ("FAIL: " + ws_err if ws_err else cell(ws_v, fmt))
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, metric, wcell, "FAIL: " + ng_err if ng_err else ("–" if ng_v is None else fmt % ng_v),
            "%.2f×" % ratio if ratio is not None else "–", tcell, met))

    def runs_note(label, xs, fmt):
        if xs:
            footnotes.append("%s, every run: %s" % (label, ", ".join(fmt % x for x in xs)))

    c = results["cases"]
    if "rps" in c:
        ws, ng = c["rps"].get("ws", {}), c["rps"]["ng"]
        we = None if args.nginx_only else (ws.get("error") or errors.get("ws-files"))
        if we or ng["error"]:
            all_met = False
        label = "1 %s B file, keep-alive (wrk -t%d -c%d, %d s)" % (format(SMALL[1], ","), WRK_SMALL[0], WRK_SMALL[1], duration)
        row(label, "requests/s", ws.get("rps"), ng["rps"], "%.0f", ratio_min=RPS_TARGET, ws_err=we, ng_err=ng["error"])
        row("", "server CPU per request, µs", ws.get("cpu_per_req_us"), ng["cpu_per_req_us"], "%.1f")
        pair = lambda b: "%s / %s" % (cell(b.get("p50_ms"), "%.2f"), cell(b.get("p99_ms"), "%.2f"))  # noqa: E731
        lines.append("| | wrk latency p50 / p99, ms | %s | %s | | (info) | – |"
                     % ("–" if args.nginx_only else pair(ws), pair(ng)))
        for k in kinds:
            runs_note("case 1, %s requests/s" % SERVERS[k], [x["rps"] for x in c["rps"].get(k, {}).get("runs", [])], "%.0f")
    if "big" in c:
        ws, ng = c["big"].get("ws", {}), c["big"]["ng"]
        ws1, ng1 = c["big1"].get("ws", {}), c["big1"]["ng"]
        we = None if args.nginx_only else (ws.get("error") or errors.get("ws-files"))
        if we or ng["error"]:
            all_met = False
        mbs = lambda v: v / 1e6 if v is not None else None  # noqa: E731
        label = "2 %d MiB file (wrk -t%d -c%d, %d s)" % (BIG[1] // MIB, WRK_BIG[0], WRK_BIG[1], duration)
        row(label, "throughput, MB/s", mbs(ws.get("bytes_per_s")), mbs(ng["bytes_per_s"]), "%.0f", ratio_min=BIG_TARGET,
            ws_err=we, ng_err=ng["error"])
        pinned = c.get("big_pinned")
        # The CPU target is judged pinned when that ran (see the header): unpinned, where
        # Linux counts the loopback's receive work moves between the server and wrk.
        row("", "server CPU per GB served, s" + (" (unpinned)" if pinned else ""), ws.get("cpu_per_gb"), ng["cpu_per_gb"],
            "%.3f", ratio_max=None if pinned else BIG_CPU_TARGET, ws_err=we, ng_err=ng["error"])
        if pinned:
            wp, np_ = pinned.get("ws", {}), pinned["ng"]
            wpe = None if args.nginx_only else (wp.get("error") or errors.get("ws-files"))
            if wpe or np_["error"]:
                all_met = False
            row("", "server CPU per GB served, pinned (server on one CPU, wrk -t%d -c%d on the other), s"
                % WRK_PINNED, wp.get("cpu_per_gb"), np_["cpu_per_gb"], "%.3f", ratio_max=BIG_CPU_TARGET,
                ws_err=wpe, ng_err=np_["error"])
            row("", "throughput, pinned, MB/s", mbs(wp.get("bytes_per_s")), mbs(np_["bytes_per_s"]), "%.0f",
                ws_err=wpe, ng_err=np_["error"])
            for k in kinds:
                runs_note("case 2 pinned, %s server CPU per GB" % SERVERS[k],
                          [x["server_cpu"] / (x["bytes"] / 1e9) for x in pinned.get(k, {}).get("runs", [])
                           if x["server_cpu"] is not None], "%.3f")
        row("", "one connection (wrk -t1 -c1), MB/s", mbs(ws1.get("bytes_per_s")), mbs(ng1["bytes_per_s"]), "%.0f",
            ws_err=ws1.get("error") if not args.nginx_only else None, ng_err=ng1["error"])
        for k in kinds:
            runs_note("case 2, %s MB/s" % SERVERS[k], [x["bytes_per_s"] / 1e6 for x in c["big"].get(k, {}).get("runs", [])],
                      "%.0f")
        if results.get("ws_files_rss_mb"):
            footnotes.append("cases 1–2: webseed seed's peak RSS (VmHWM) %.1f MB" % results["ws_files_rss_mb"])
    if "ttfb" in c:
        r = c["ttfb"]
        we = None if args.nginx_only else r["error"]
        if we or r.get("ng_error"):
            all_met = False
        row("3 fresh gateway (magnet + 1 seeder), GET / via <site-id>.localhost, median of %d" % ttfb_runs,
            "gateway spawn → first byte of GET / (metadata included), ms", med(r["ws"]), None, "%.1f",
            abs_max=("%d ms" % TTFB_TARGET_MS, TTFB_TARGET_MS), ws_err=we, ratio=False)
        row("", "GET sent (as soon as the HTTP port was announced) → first byte, ms", med(r["ws_get"]), med(r["ng"]),
            "%.2f", ng_err=r.get("ng_error"), ratio=False)
        if not args.nginx_only:
            row("", "gateway spawn → HTTP port announced (GET sent), ms", med(r["ws_port"]), None, "%.1f", ratio=False)
            row("", "gateway spawn → end of index.html, ms", med(r["ws_total"]), None, "%.1f", ratio=False)
            row("", "reference: the seeder's own gateway (holds the site), GET → first byte, ms", med(r["held"]), None,
                "%.2f", ws_err=r.get("held_error"), ratio=False)
            if r["ws"]:
                footnotes.append("case 3: the gateway announced the site (gateway_site, i.e. it had the metadata) before "
                                 "the GET was sent in %d of %d runs: GET → first byte leaves (some of) the metadata "
                                 "out, so the target is checked from the spawn" % (r["ws_site_first"], len(r["ws"])))
        runs_note("case 3, fresh gateways' spawn → first byte (ms)", r["ws"], "%.1f")
    if "ttfb_corpus" in c:
        r = c["ttfb_corpus"]
        if r["error"]:
            all_met = False
        row("3b fresh gateway of the %s-file generated site (magnet + 1 seeder), GET /, median of %d"
            % (format(corpus_files, ","), ttfb_runs),
            "gateway spawn → first byte of GET / (metadata included), ms", med(r["ws"]), None, "%.1f",
            abs_max=("%d ms" % TTFB_TARGET_MS, TTFB_TARGET_MS), ws_err=r["error"], ratio=False)
        row("", "gateway spawn → gateway_site announced (metadata in), ms", med(r["ws_site"]), None, "%.1f",
            ratio=False)
        row("", "reference: the seeder's own gateway (holds the site), GET → first byte, ms", med(r["held"]), None,
            "%.2f", ws_err=r.get("held_error"), ratio=False)
        runs_note("case 3b, fresh gateways' spawn → first byte (ms)", r["ws"], "%.1f")
    if "ttfb_lt" in c:
        r = c["ttfb_lt"]
        if r["error"]:
            all_met = False
        row("3c the same site from a libtorrent 2.0.8 seeder (magnet + 1 seeder), GET /, median of %d" % ttfb_runs,
            "gateway spawn → first byte of GET / (metadata included), ms", med(r["ws"]), None, "%.1f",
            ws_err=r["error"], ratio=False)
        row("", "gateway spawn → gateway_site announced (metadata in), ms", med(r["ws_site"]), None, "%.1f",
            ratio=False)
        runs_note("case 3c, fresh gateways' spawn → first byte (ms)", r["ws"], "%.1f")
    if "page" in c:
        r = c["page"]
        we = None if args.nginx_only else r["error"]
        if we or r.get("ng_error"):
            all_met = False
        row("4 sample page in headless Chromium from a fresh gateway, median of %d" % page_runs,
            "gateway spawn → the page's load event (metadata included), ms", med(r.get("ws", [])), None, "%.0f",
            abs_max=("%d ms" % PAGE_TARGET_MS, PAGE_TARGET_MS), ws_err=we, ratio=False)
        row("", "the page's own clock: iframe created → load event, ms", med(r.get("ws_page", [])), med(r["ng"]), "%.0f",
            ng_err=r.get("ng_error"), ratio=False)
        if not args.nginx_only:
            row("", "gateway spawn → page clock started (HTTP port announced, go.js answered and run), ms",
                med(r["ws_gap"]), None, "%.0f", ratio=False)
        row("", "page's first request → its last response done (NetLog; incl. assets.json), ms", med(r.get("ws_net", [])),
            med(r["ng_net"]), "%.0f", ratio=False)
        if not args.nginx_only:
            row("", "reference: the seeder's own gateway (holds the site), the page's own clock, ms", med(r["held"]),
                None, "%.0f", ws_err=r.get("held_error"), ratio=False)
            row("", "chromium --dump-dom wall time less the hold (browser start-up + harness + page), s",
                med(r["ws_wall"]), med(r["ng_wall"]), "%.2f", ratio=False)
            if r.get("ws"):
                footnotes.append("case 4: the gateway announced the site before go.js was answered in %d of %d runs"
                                 % (r["ws_site_first"], len(r["ws"])))
        runs_note("case 4, fresh gateways' spawn → load event (ms)", r.get("ws", []), "%.0f")
        runs_note("case 4, nginx page load, the page's own clock (ms)", r["ng"], "%.0f")
        for k, (ok, listed) in r["render"].items():
            if not ok:
                all_met = False
            footnotes.append("case 4, rendered from %s: js/app.js ran and listed %d files from assets.json: %s"
                             % ("a fresh gateway" if k == "ws" else "nginx", listed, "yes" if ok else "**no**"))
    for k in kinds:
        for cname in ("rps", "big", "big1"):
            if cname in c and c[cname].get(k, {}).get("disturbed"):
                footnotes.append("case %s: %d %s run(s) shared the CPUs with other processes even after retries"
                                 % (cname, c[cname][k]["disturbed"], SERVERS[k]))
    lines.append("")
    for i, n in enumerate(footnotes, 1):
        lines.append("[%d] %s  " % (i, n))
    if footnotes:
        lines.append("")
    lines.append("Ratios: webseed / nginx (requests/s and MB/s: higher is better; CPU: lower is better). Cases 3–4 "
                 "have absolute targets, timed from "
                 "the spawn of a gateway that holds nothing (so its start-up and the metadata count); nginx and the "
                 "seeder's own gateway are references. Case 4's page load is the sample page's own load event in a "
                 "cross-site iframe of a harness page, the gateway spawned only once the browser was up; see the "
                 "header of Tools/bench/gateway.")
    lines.append("")
    if args.nginx_only:
        lines.append("Reference run (nginx only): no targets checked.")
    else:
        lines.append("All targets met: %s." % ("yes" if all_met else "**no**"))
    write_report(md_path, lines, {"quick": args.quick, "runs": runs, "duration": duration, "webseed": binary,
                                  "versions": versions, "errors": errors, **results})
    shutil.rmtree(work, ignore_errors=True)
    return 0 if (all_met or args.nginx_only) else 1


if __name__ == "__main__":
    sys.exit(main())
