#!/usr/bin/python3
"""Trackers that misbehave cost only their own announce: `webseed get` given one honest
tracker and many hostile ones completes from the seeder the honest one names, says what each
hostile one did (`tracker_failed` with a reason), and never follows a tracker off this host
under --offline.

Everything runs inside a network namespace made here with only its loopback up, so even a
regression that followed a redirect elsewhere could not send a packet off this machine.

  the swarm   `webseed seed` of a small site (--offline, no DHT), on 127.0.0.1
  trackers    one Python process (`--role tracker`) serving, on one HTTP port:
                good      the seeder and the getter's own address (compact peers)
                huge      a 1 MB body (more than any tracker answer may be)
                endless   a body that never ends (no Content-Length, bytes until the getter hangs up)
                silent    reads the request and never answers
                loop      redirects to itself
                away      redirects to 192.0.2.1 (TEST-NET): refused under --offline
                garbage   200 with a body that is not bencode
                flood     10,000 compact peers on closed ports: read, but only the first 500
              and on a UDP port: every packet answered with 16 bytes of junk (BEP 15 misread)
  the getter  `webseed get TORRENT --offline --no-dht --listen 127.0.0.1:P --tracker URL ...`
              (each --tracker its own tier, so all are asked at once)

Checks: the getter completes and its files equal the site; it connected to the seeder and
never to itself; every hostile tracker has a `tracker_failed` with a readable reason (the
redirect off the host names --offline, the redirect loop the redirect limit, the oversized
and endless bodies the size limit, the silent one the time limit); the flood is read up to
500 peers and the download does not wait on them; the getter and the seeder stop
cleanly on SIGTERM. Needs root (the namespace). Prints `ok`/`FAIL` lines and
`N passed, M failed`.

Usage: /usr/bin/python3 Tools/tests/hostile_trackers.py --webseed .build/debug/webseed [--work DIR]
"""

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from webseedtest.bencode import bencode
from webseedtest.procs import Proc, run
from webseedtest.results import Results
from webseedtest.trees import compare_tree

HOSTILE = ["huge", "endless", "silent", "loop", "away", "garbage"]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---- the tracker role (inside the namespace) -------------------------------------------

def compact(peers):
    return b"".join(socket.inet_aton(h) + struct.pack(">H", p) for h, p in peers)


def role_tracker(a):
    good_peers = [(h, int(p)) for h, _, p in (x.rpartition(":") for x in a.peer)]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            kind = self.path.split("/")[1] if self.path.startswith("/") else ""
            emit({"event": "asked", "kind": kind})
            if kind == "good":
                self.reply(200, bencode({"interval": 1800, "peers": compact(good_peers)}))
            elif kind == "huge":
                self.reply(200, b"d8:intervali1800e5:peers" + b"9" * (1 << 20))
            elif kind == "endless":
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"x" * 65536
                deadline = time.time() + 60
                try:
                    while time.time() < deadline:
                        self.wfile.write(chunk)
                except OSError:
                    emit({"event": "hung_up", "kind": kind})
                self.close_connection = True
            elif kind == "silent":
                time.sleep(40)
                self.close_connection = True
            elif kind == "loop":
                self.reply(302, b"", [("Location", "/loop/announce")])
            elif kind == "away":
                self.reply(302, b"", [("Location", "http://192.0.2.1/announce")])
            elif kind == "garbage":
                self.reply(200, b"this is not bencode at all")
            elif kind == "flood":
                peers = [("127.0.%d.%d" % (2 + i // 250, 1 + i % 250), 1) for i in range(10_000)]
                self.reply(200, bencode({"interval": 1800, "peers": compact(peers)}))
            else:
                self.reply(404, b"")

        def log_message(self, fmt, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))

    def junk():
        while True:
            data, addr = udp.recvfrom(2048)
            emit({"event": "asked", "kind": "udp"})
            udp.sendto(os.urandom(16), addr)

    threading.Thread(target=junk, daemon=True).start()
    emit({"event": "listening", "http": http.server_address[1], "udp": udp.getsockname()[1]})
    http.serve_forever()
    return 0


# ---- the harness ---------------------------------------------------------------------------

def free_port_in(ns):
    """A free TCP port inside the namespace (asked there: its port space is its own)."""
    rc, out = run(["ip", "netns", "exec", ns, sys.executable, "-c",
                   "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"], 10)
    return int(out.strip())


def make_site(root):
    os.makedirs(os.path.join(root, "img"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>hostile trackers</h1>\n")
    with open(os.path.join(root, "img", "photo.bin"), "wb") as f:
        f.write(os.urandom(400_000))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed")
    ap.add_argument("--work")
    ap.add_argument("--role")
    ap.add_argument("--peer", action="append", default=[])
    a = ap.parse_args()
    if a.role == "tracker":
        return role_tracker(a)
    if os.geteuid() != 0:
        ap.error("needs root (a network namespace)")
    r = Results()
    webseed = os.path.abspath(a.webseed)
    work = os.path.abspath(a.work) if a.work else tempfile.mkdtemp(prefix="webseed-hostiletrackers-")
    site = os.path.join(work, "site")
    make_site(site)
    torrent = os.path.join(work, "site.torrent")
    rc, out = run([webseed, "create", site, "-o", torrent, "--json"], 60)
    if rc != 0:
        raise SystemExit("create failed: %s" % out)

    ns = "wsht-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
    inns = ["ip", "netns", "exec", ns]
    try:
        seeder = Proc("seeder", inns + [webseed, "seed", torrent, "--data", site, "--offline", "--no-dht", "--no-gateway",
                                        "--listen", "127.0.0.1:0", "--state-dir", os.path.join(work, "seed-state"), "--json"], work)
        listening = seeder.wait_for("listening", 30)
        r.check(seeder.wait_for("ready", 30) is not None and listening is not None, "the seeder is ready")
        seeder_addr = "127.0.0.1:%d" % listening["port"]
        getter_port = free_port_in(ns)
        self_addr = "127.0.0.1:%d" % getter_port
        tracker = Proc("trackers", inns + [sys.executable, os.path.abspath(__file__), "--role", "tracker",
                                           "--peer", seeder_addr, "--peer", self_addr], work)
        ports = tracker.wait_for("listening", 20)
        r.check(ports is not None, "the hostile trackers listen")
        urls = {k: "http://127.0.0.1:%d/%s/announce" % (ports["http"], k) for k in ["good", "flood"] + HOSTILE}
        urls["udp"] = "udp://127.0.0.1:%d" % ports["udp"]
        argv = [webseed, "get", torrent, "-o", os.path.join(work, "got"), "--offline", "--no-dht",
                "--listen", self_addr, "--state-dir", os.path.join(work, "get-state"), "--json"]
        for u in urls.values():
            argv += ["--tracker", u]
        getter = Proc("getter", inns + argv, work)

        _, done = getter.wait_event(lambda e: e.get("event") == "complete", 60)
        r.check(done is not None, "webseed get completed from the seeder the honest tracker named",
                more=getter.log_tail())
        if done:
            same, summary, problems = compare_tree(site, os.path.join(work, "got"))
            r.check(same, "the files written equal the site", summary, more=problems[:3])
        _, good = getter.wait_event(lambda e: e.get("event") == "tracker_announced" and e.get("url") == urls["good"], 5)
        r.check(good is not None and good.get("peers") == 2, "the honest tracker's answer was read", str(good))

        def failed(kind, within):
            return getter.wait_event(lambda e: e.get("event") == "tracker_failed" and e.get("url") == urls[kind], within)[1]

        # The silent tracker takes the announce timeout (10 s) to fail; the others fail at once.
        expect = {"away": "not on this host", "loop": "redirects", "huge": "over 64 KiB", "endless": "over 64 KiB",
                  "silent": "no answer in time", "udp": "no answer in time"}
        for kind in HOSTILE + ["udp"]:
            ev = failed(kind, 20)
            reason = ev.get("error", "") if ev else ""
            want = expect.get(kind)
            r.check(ev is not None and (want is None or want in reason),
                    "the %s tracker failed on its own (tracker_failed)" % kind, reason[:160])
        _, flood = getter.wait_event(lambda e: e.get("event") == "tracker_announced" and e.get("url") == urls["flood"], 5)
        r.check(flood is not None and flood.get("peers") == 500, "the flood's answer was read up to 500 peers",
                str(flood and flood.get("peers")))
        asked = {e.get("kind") for _, e in tracker.event_times(lambda e: e.get("event") == "asked")}
        r.check(set(HOSTILE) | {"good", "udp", "flood"} <= asked, "every tracker was asked", "asked: %s" % sorted(asked))

        peers = {e.get("address") for _, e in getter.event_times(lambda e: e.get("event") == "peer_connected")}
        r.check(seeder_addr in peers, "the getter connected to the seeder", "connected: %s" % sorted(peers)[:5])
        r.check(self_addr not in peers, "the getter never connected to its own address")
        flood = [p for p in peers if p.startswith("127.0.") and p.endswith(":1")]
        r.check(not flood, "no connection to the flood's closed ports was counted as a peer", str(flood[:3]))

        rc, _ = getter.stop()
        r.check(rc == 0, "the getter stops cleanly on SIGTERM", "exit %s" % rc, more=getter.log_tail())
        rc, _ = seeder.stop()
        r.check(rc == 0, "the seeder stops cleanly on SIGTERM", "exit %s" % rc)
        tracker.stop()
    finally:
        Proc.kill_all()
        subprocess.run(["ip", "netns", "del", ns], timeout=10)
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    print(r.summary())
    return r.exit_status()


if __name__ == "__main__":
    sys.exit(main())
