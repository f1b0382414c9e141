#!/usr/bin/python3
"""BEP 19 web seeds: `webseed get` and `webseed gateway` download a site from Debian's nginx
serving its parent directory (the torrent's url-list, a magnet's ws=, --web-seed), alone and
beside a libtorrent seeder, and drop web seeds that answer wrong while the download completes
from the others.

  PYTHONPATH=Tools /usr/bin/python3 Tools/interop/get_webseeds.py --webseed .build/debug/webseed --work /tmp/ws
  … --only a,c

Loopback only: nginx (config, pid and logs in the work directory), the hostile web seeds (one
Python HTTP server, one path prefix per misbehaviour) and ltpeer's libtorrent seeder all listen
on 127.0.0.1; every webseed runs with --offline.

Cases (fresh -o and --state-dir each):
  a  nginx alone: `get TORRENT` whose url-list is nginx's URL → complete, byte-identical, no
     web seed dropped; the site's name and one file name need percent-encoding (a space, ü).
  b  beside libtorrent: the same torrent, plus --peer a libtorrent seeder → complete,
     byte-identical, the libtorrent peer was connected.
  c  hostile web seeds beside nginx behind a relay held to SLOW_RATE (so the download outlasts
     the stall timeout whatever nginx's own pace):
     one flips a byte of every answer, one answers 404, one sends headers and then nothing, one
     sends endless data, one sends more than asked, one redirects to itself, one redirects off
     this host (not followed: --offline). Each was asked,
     each is dropped with a web_seed_dropped event saying why (the byte flipper banned by its
     URL: peer_banned), the download completes byte-identical from nginx, nginx is not dropped.
  d  --web-seed on a torrent without url-list → complete; with --offline a web seed off this
     host is skipped (web_seed_skipped).
  e  a magnet whose only source is its ws=: the metadata cannot come from a web seed, and the
     one-line error says so.
  f  `webseed gateway TORRENT` (url-list nginx) serves a file of the site, byte-identical.
  g  a web seed that is down at first (a relay to nginx that closes every connection) is
     dropped with retry_in (--web-seed-retry 1); once the relay passes connections through,
     it is tried again and the download completes from it alone, byte-identical.

Prints `ok …` / `FAIL …` lines and last `N passed, M failed`; exits 1 on failure.
"""

import argparse
import http.client
import http.server
import json
import os
import random
import shutil
import socketserver
import threading
import time
import urllib.parse

from webseedtest.cases import add_only, chosen_cases
from webseedtest.httpbench import Nginx
from webseedtest.procs import Proc, program, run
from webseedtest.relay import TcpRelay
from webseedtest.results import Results
from webseedtest.trees import compare_tree
from webseedtest.watchdog import Watchdog

R = Results()
CASES = ["a", "b", "c", "d", "e", "f", "g"]
SITE_NAME = "my site"
# Hostile seeds run beside nginx reached through a relay that passes at most this many bytes a
# second from it, in all: the download then takes about twice the stall timeout (--timeout 15 → 5 s).
SLOW_RATE = 1 << 20
HOSTILE = ["flip", "missing", "stall", "endless", "long", "loop", "away"]


def make_site(root):
    """About 12 MB in 60 files, names with a space and a non-ASCII letter, an empty file."""
    rnd = random.Random(20251205)
    files = {"index.html": b"<!doctype html><title>web seeds</title>" * 500,
             "css/site style.css": bytes(rnd.getrandbits(8) for _ in range(30_000)),
             "img/\u00fcber.bin": rnd.randbytes(3_000_000),
             "data/big.bin": rnd.randbytes(7_000_000),
             "empty.txt": b""}
    for i in range(55):
        files["pages/p%02d.html" % i] = rnd.randbytes(rnd.randint(1, 60_000))
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return files


# ---------------------------------------------------------------------------------------------
# hostile web seeds: /MODE/<site name>/<path> answers for www/<site name>/<path>


class Hostile(http.server.BaseHTTPRequestHandler):
    www = None
    asked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def log_message(self, *_):
        pass

    def do_GET(self):
        parts = self.path.split("/", 2)
        mode = parts[1] if len(parts) > 2 else ""
        with self.lock:
            self.asked[mode] = self.asked.get(mode, 0) + 1
        if mode == "missing" or mode not in HOSTILE:
            return self.answer(404, b"not here")
        if mode == "away":  # off this host: with --offline, never followed
            self.send_response(307)
            self.send_header("Location", "http://example.org/%s" % parts[2])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = os.path.join(self.www, urllib.parse.unquote(parts[2]))
        rng = self.headers.get("Range", "")
        if not rng.startswith("bytes=") or not os.path.isfile(path):
            return self.answer(400, b"bad request")
        first, last = (int(x) for x in rng[6:].split("-"))
        with open(path, "rb") as f:
            f.seek(first)
            data = f.read(last + 1 - first)
        self.send_response(206)
        if mode == "endless":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)  # what was asked, right, and then more without end
            chunk = b"\x5a" * 65536
            while not self.stop.is_set():
                self.wfile.write(chunk)  # ends when webseed hangs up (BrokenPipeError)
            return
        if mode == "flip":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if mode == "long":
            data += b"\x00" * (1 << 20)
        self.send_header("Content-Range", "bytes %d-%d/%d" % (first, first + len(data) - 1, os.path.getsize(path)))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "stall":
            self.wfile.flush()
            self.stop.wait(120)
            return
        self.wfile.write(data)

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HostileServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # webseed hanging up on an endless answer is the point


class SlowRelay(TcpRelay):
    """A relay whose bytes from upstream, over all its connections, come at most at `rate` a second."""
    poll = 0.02

    def __init__(self, upstream, rate):
        self.rate = rate
        self.tokens = 0.0
        self.last = time.monotonic()
        super().__init__(upstream)

    def allowance(self, want):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate / 10, self.tokens + (now - self.last) * self.rate)
            self.last = now
            n = int(min(want, self.tokens))
            self.tokens -= n
        if n == 0:
            time.sleep(0.01)  # nothing allowed yet: wait for the bucket instead of spinning
        return n

    def give_back(self, n):
        with self.lock:
            self.tokens += n


class DownRelay(TcpRelay):
    """A relay that closes every connection while `down` is set, as a server that is down."""

    def __init__(self, upstream):
        self.down = threading.Event()
        self.down.set()
        super().__init__(upstream)

    def before_upstream(self):
        return not self.down.is_set()


# ---------------------------------------------------------------------------------------------


class Ctx:
    pass


def get(ctx, key, source, extra=(), timeout=30, expect_ok=True):
    """`webseed get SOURCE` in WORK/cases/KEY; returns (exit status, its events, the Proc, out)."""
    cdir = os.path.join(ctx.work, "cases", key)
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(cdir)
    out = os.path.join(cdir, "out")
    argv = [ctx.ws, "get", source, "-o", out, "--listen", "127.0.0.1:0", "--offline",
            "--state-dir", os.path.join(cdir, "state"), "--json", "--exit-when-done",
            "--timeout", str(timeout)] + list(extra)
    p = Proc("get-" + key, argv, cdir, cwd=cdir, env=dict(os.environ, HOME=os.path.join(cdir, "home")))
    rc = p.wait(180)
    p.end()
    return rc, [e for _t, e in p.events], p, out


def check_complete(key, rc, events, p, out, ctx):
    complete = [e for e in events if e.get("event") == "complete"]
    R.check(rc == 0 and complete, "%s: webseed get exits 0 with a complete event" % key,
            "exit %s%s" % (rc, ", %.2f s" % complete[0]["seconds"] if complete else ", no complete event"),
            more=[] if rc == 0 and complete else p.log_tail(12))
    ok, summary, problems = compare_tree(ctx.site, out)
    R.check(ok, "%s: the download is byte-identical to the site" % key, summary, more=problems[:8])


def dropped(events):
    return [e for e in events if e.get("event") == "web_seed_dropped"]


def create(ctx, name, web_seeds):
    path = os.path.join(ctx.work, name)
    argv = [ctx.ws, "create", ctx.site, "-o", path, "--force", "--piece-length", "65536", "--json"]
    for w in web_seeds:
        argv += ["--web-seed", w]
    rc, outp = run(argv, 120)
    if not R.check(rc == 0, "webseed create %s" % name, outp.strip()[-300:] if rc else ""):
        raise RuntimeError("no torrent")
    return path


def case_a(ctx):
    rc, events, p, out = get(ctx, "a", ctx.torrent)
    check_complete("a", rc, events, p, out, ctx)
    R.check(not dropped(events), "a: nginx is not dropped", "%s" % dropped(events)[:2])


def case_b(ctx):
    seed_dir = os.path.join(ctx.work, "cases", "b-seed")
    shutil.rmtree(seed_dir, ignore_errors=True)
    lt = Proc("lt-seed", program("ltpeer") + ["seed", ctx.torrent, "--data", ctx.site, "--listen", "127.0.0.1:0",
                                              "--offline", "--state-dir", os.path.join(seed_dir, "state"), "--json"],
              seed_dir)
    try:
        listening = lt.wait_for("listening", 60)
        ready = lt.wait_for("ready", 60)
        if not R.check(listening is not None and ready is not None, "b: libtorrent seeder ready", "",
                       more=lt.log_tail(8)):
            return
        peer = "127.0.0.1:%d" % listening["port"]
        rc, events, p, out = get(ctx, "b", ctx.torrent, ["--peer", peer])
        check_complete("b", rc, events, p, out, ctx)
        connected = [e for e in events if e.get("event") == "peer_connected" and e.get("address") == peer]
        R.check(connected, "b: the libtorrent seeder %s was connected beside nginx" % peer,
                "peer events: %s" % [e for e in events if e.get("event", "").startswith("peer")][:3])
        R.check(not dropped(events), "b: nginx is not dropped", "%s" % dropped(events)[:2])
    finally:
        lt.stop()


def case_c(ctx):
    with Hostile.lock:
        Hostile.asked.clear()
    base = "http://127.0.0.1:%d/" % ctx.hostile_port
    seeds = ["%s%s/" % (base, m) for m in HOSTILE]
    torrent = create(ctx, "hostile.torrent", [ctx.slow_url] + seeds)
    rc, events, p, out = get(ctx, "c", torrent, timeout=15)
    check_complete("c", rc, events, p, out, ctx)
    drops = {e.get("url"): e.get("reason", "") for e in dropped(events)}
    banned = {e.get("address"): e.get("reason", "") for e in events if e.get("event") == "peer_banned"}
    want = {"flip": "banned: ", "missing": "HTTP 404 for ", "stall": "sent nothing for 5 s",
            "endless": "sent more than the ", "long": "sent more than the ", "loop": "redirects in a cycle",
            "away": "redirected to http://example.org/"}
    for mode, url in zip(HOSTILE, seeds):
        R.check(Hostile.asked.get(mode, 0) > 0, "c: the %s web seed was asked" % mode,
                "%d GETs" % Hostile.asked.get(mode, 0))
        reason = drops.get(url)
        R.check(reason is not None and reason.startswith(want[mode]),
                "c: the %s web seed is dropped (web_seed_dropped: %s…)" % (mode, want[mode]),
                "reason: %r" % reason)
    R.check(seeds[0] in banned, "c: the byte flipper is banned by its URL (peer_banned)",
            "reason: %r" % banned.get(seeds[0]))
    R.check(ctx.slow_url not in drops and ctx.slow_url not in banned, "c: nginx is neither dropped nor banned",
            "%r" % (drops.get(ctx.slow_url) or banned.get(ctx.slow_url)))


def case_d(ctx):
    rc, events, p, out = get(ctx, "d", ctx.plain_torrent,
                             ["--web-seed", ctx.nginx_url, "--web-seed", "http://example.org/mirror/"])
    check_complete("d", rc, events, p, out, ctx)
    skipped = [e for e in events if e.get("event") == "web_seed_skipped"]
    R.check([e.get("url") for e in skipped] == ["http://example.org/mirror/"]
            and skipped[0].get("reason", "").startswith("--offline"),
            "d: with --offline a web seed off this host is skipped", "%s" % skipped[:2])


def case_e(ctx):
    magnet = "%s&ws=%s" % (ctx.magnet, urllib.parse.quote(ctx.nginx_url, safe=""))
    rc, events, p, out = get(ctx, "e", magnet, timeout=3)
    with open(p.err_path, errors="replace") as f:
        err = f.read()
    R.check(rc not in (0, None) and "web seeds cannot send a magnet's metadata" in err,
            "e: a magnet with only ws= fails, saying a web seed cannot send its metadata",
            "exit %s: %s" % (rc, err.strip().splitlines()[-1:] if err.strip() else "no stderr"))


def case_f(ctx):
    cdir = os.path.join(ctx.work, "cases", "f")
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(cdir)
    g = Proc("gateway", [ctx.ws, "gateway", ctx.torrent, "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
                         "--offline", "--state-dir", os.path.join(cdir, "state"), "--json"],
             cdir, cwd=cdir, env=dict(os.environ, HOME=os.path.join(cdir, "home")))
    try:
        site = g.wait_for("gateway_site", 60)
        gw = g.wait_for("gateway", 60)
        if not R.check(site is not None and gw is not None, "f: the gateway serves the site", "", more=g.log_tail(8)):
            return
        rel = "img/\u00fcber.bin"
        conn = http.client.HTTPConnection("127.0.0.1", gw["port"], timeout=60)
        conn.request("GET", "/" + urllib.parse.quote(rel), headers={"Host": "%s.localhost:%d" % (site["site_id"], gw["port"])})
        resp = conn.getresponse()
        body = resp.read()
        with open(os.path.join(ctx.site, rel), "rb") as f:
            want = f.read()
        R.check(resp.status == 200 and body == want, "f: a file fetched through the gateway from nginx is byte-identical",
                "HTTP %d, %d bytes of %d" % (resp.status, len(body), len(want)), more=[] if body == want else g.log_tail(8))
        R.check(not [e for e in g.events if e[1].get("event") == "web_seed_dropped"], "f: nginx is not dropped")
    finally:
        g.stop()


def case_g(ctx):
    cdir = os.path.join(ctx.work, "cases", "g")
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(cdir)
    relay = DownRelay(ctx.nginx_addr)
    out = os.path.join(cdir, "out")
    p = Proc("get-g", [ctx.ws, "get", ctx.plain_torrent, "-o", out, "--listen", "127.0.0.1:0", "--offline",
                       "--state-dir", os.path.join(cdir, "state"), "--json", "--exit-when-done", "--timeout", "30",
                       "--web-seed", "http://127.0.0.1:%d/" % relay.port, "--web-seed-retry", "1"],
             cdir, cwd=cdir, env=dict(os.environ, HOME=os.path.join(cdir, "home")))
    try:
        drop = p.wait_for("web_seed_dropped", 30)
        R.check(drop is not None and drop.get("retry_in") == 1, "g: a web seed that is down is dropped, to be tried again in 1 s",
                "%s" % drop, more=[] if drop else p.log_tail(8))
        relay.down.clear()
        rc = p.wait(60)
        events = [e for _t, e in p.events]
        check_complete("g", rc, events, p, out, ctx)
        R.check(len(dropped(events)) == 1 and relay.connections > 1,
                "g: tried again once it is up, and the download came from it",
                "%d drops, %d connections to the relay" % (len(dropped(events)), relay.connections))
    finally:
        p.end()
        relay.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    add_only(ap, CASES)
    args = ap.parse_args()
    cases = chosen_cases(ap, args, CASES)
    ctx = Ctx()
    ctx.ws = os.path.abspath(args.webseed)
    ctx.work = os.path.abspath(args.work)
    os.makedirs(ctx.work, exist_ok=True)
    wd = Watchdog(900, R).start()
    nginx = slow = server = None
    try:
        www = os.path.join(ctx.work, "www")
        shutil.rmtree(www, ignore_errors=True)
        ctx.site = os.path.join(www, SITE_NAME)
        files = make_site(ctx.site)
        R.info("site", "%d files, %d bytes" % (len(files), sum(map(len, files.values()))))
        nginx = Nginx(args.nginx, [www], ctx.work)
        port = nginx.start()[0]
        ctx.nginx_url = "http://127.0.0.1:%d/" % port
        ctx.nginx_addr = ("127.0.0.1", port)
        slow = SlowRelay(("127.0.0.1", port), SLOW_RATE)
        ctx.slow_url = "http://127.0.0.1:%d/" % slow.port
        Hostile.www = www
        server = HostileServer(("127.0.0.1", 0), Hostile)
        ctx.hostile_port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ctx.torrent = create(ctx, "site.torrent", [ctx.nginx_url])
        ctx.plain_torrent = create(ctx, "plain.torrent", [])
        rc, outp = run([ctx.ws, "info", ctx.torrent, "--json"], 30)
        info = json.loads(outp.strip().splitlines()[-1])
        ctx.magnet = info.get("magnet", "").split("&ws=")[0]
        for c in cases:
            print("-- case %s" % c, flush=True)
            globals()["case_" + c](ctx)
    except Exception as e:  # noqa: BLE001 - a bug here is a failure, with its summary line
        import traceback
        traceback.print_exc()
        R.fail("harness", "exception %s: %s" % (type(e).__name__, e))
    finally:
        Hostile.stop.set()
        if server:
            server.shutdown()
        if slow:
            slow.stop()
        if nginx:
            nginx.stop()
        Proc.kill_all()
        wd.cancel()
    print(R.summary())
    raise SystemExit(R.exit_status())


if __name__ == "__main__":
    main()
