#!/usr/bin/python3
"""IPv6 as a first-class path (BEP 32 DHT, listeners on both families): webseed and
libtorrent find each other over ::1 only, through the DHT and through a tracker, and
download from each other.

Every libtorrent session is Debian's python3-libtorrent 2.0.8 (/usr/bin/python3) listening
on [::1]:0 only (listen_interfaces), TCP only, plaintext, LSD, UPnP and NAT-PMP off, a DHT
with no router (dht_bootstrap_nodes "") that knows only the node given with add_dht_node,
and is given no peer. Every webseed runs with --offline and joins only through the
--dht-bootstrap node given (if any). The content is the sample site; every download is compared byte
for byte with it. Needs ::1 on lo (checked first: `ip -6 addr show lo`).

Cases:
  dual   webseed seed SAMPLE --listen '*:0' (the default's form): TCP and the DHT answer on
         both 127.0.0.1 and ::1 on the one port. A raw BEP 32 find_node over IPv6 with
         want [n6] gets `nodes6` (38-byte entries, the asker among them: it just queried)
         and no `nodes`; a find_node over IPv4 without want gets `nodes` and no `nodes6`;
         one over IPv4 with want [n4, n6] gets both. A TCP connection succeeds on each family.
  mismatch  webseed seed --listen 127.0.0.1:0 --dht-bootstrap [::1]:9: the node cannot
         reach an IPv6 node, and says so in one `warning` event; it keeps running.
  find   webseed seed SAMPLE --listen '[::1]:0' --offline (a DHT of one node). A libtorrent
         leecher on [::1] that knows only that node (add_dht_node(("::1", PORT))), given only
         the v2 magnet (btmh, dn; no x.pe), finds webseed through the DHT over IPv6 and
         downloads the site; its peer is webseed's [::1] address.
         find*: the same with --listen '*:0' (the default's form): a wildcard socket learns
         the address a get_peers came to (packet info) and answers with it.
  any    the default listener's form over a DHT of three: a libtorrent DHT node N on [::1];
         webseed seed --listen '*:0' --dht-bootstrap [::1]:N announces to N over IPv6; a
         libtorrent leecher on [::1] that knows only N finds webseed there (in N's store,
         from webseed's announce_peer) and downloads.
  get    a libtorrent seeder on [::1] with its own hybrid torrent of the sample; webseed get
         MAGNET --listen '[::1]:0' --dht-bootstrap [::1]:SEEDER --offline (the seeder's node
         the only one it knows) finds the seeder through the DHT over IPv6 and downloads;
         its dht_peers event names the seeder's [::1] address.
  tracker  Debian's opentracker here is built IPv4-only ("V4 Tracker is V4 only!" on -i ::1),
         so the tracker is a stand-in: Swarm6Tracker below, an HTTP tracker on [::1] that
         keeps who announced each info hash (the address it came from, the port it gave) and
         answers the others with BEP 7 `peers6`. No DHT anywhere.
         t1: webseed seed --listen '*:0' (the default's form) --tracker http://[::1]:T/announce
             announces over IPv6;
             a libtorrent leecher on [::1] given a magnet whose only source is tr= (no DHT,
             no x.pe) finds webseed there and downloads.
         t2: a libtorrent seeder on [::1] announcing to it; webseed get MAGNET (tr= only)
             --listen '[::1]:0' finds it there and downloads.
         webseed's own tracker over IPv6 (the gateway's /announce answering `peers6`, a
         libtorrent on [::1] whose only source it is) is case f of gateway_tracker.py.

Usage:
  /usr/bin/python3 Tools/interop/ipv6.py --webseed .build/debug/webseed --sample Samples/site \\
      --work /tmp/webseed-ipv6 [--only dual,mismatch,find,any,get,tracker]

Loopback only; every wait is bounded (no sleeping as synchronisation); every child process
is stopped and every libtorrent session closed at the end. One `ok ...` / `FAIL ...` line per
check, and a last line `N passed, M failed`; exit status 1 if any check failed.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("ipv6: cannot import libtorrent; run with /usr/bin/python3 after Tools/setup\n")
    sys.exit(2)

from webseedtest.bencode import bdecode, bencode
from webseedtest.cases import add_only, chosen_cases
from webseedtest.ltpeer import loopback_dht_settings, make_hybrid
from webseedtest.ltsession import new_session, OFFLINE, PLAINTEXT, TCP_ONLY, wait_alerts
from webseedtest.procs import poll, Proc
from webseedtest.results import Results
from webseedtest.trees import compare_tree, fresh_dirs

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ALL_CASES = ["dual", "mismatch", "find", "any", "get", "tracker"]
START = 20     # seconds for a process or session to be up
WALL = 90      # the bound on one download
cat = lt.alert.category_t


def v6addr(host, port):
    return "[%s]:%d" % (host, port)


def magnet_v2(v2, name):
    """A v2 magnet with nothing but the btmh and the name: no x.pe, no tracker."""
    return "magnet:?xt=urn:btmh:1220%s&dn=%s" % (v2, urllib.parse.quote(name))


class LtSession:
    """A libtorrent 2.0.8 session on [::1]:0 only, with a private DHT knowing `dht_node`
    (host, port) alone; its alerts are popped by a thread and logged to LOGDIR/NAME.alerts;
    peers it connected to or that connected to it are collected."""

    ALL = []

    def __init__(self, name, logdir, dht_node=None):
        settings = dict(OFFLINE)
        settings.update(TCP_ONLY)
        settings.update(PLAINTEXT)
        settings.update(loopback_dht_settings())
        settings.update({
            "listen_interfaces": "[::1]:0",
            "alert_mask": cat.error_notification | cat.status_notification | cat.peer_notification
                          | cat.connect_notification | cat.dht_notification,
        })
        self.ses = new_session(settings)
        self.port = None
        self.peers = set()          # addresses of every peer connection, either way
        self.outgoing = set()       # [host]:port of the peers it connected to
        self.dht_replies = 0        # peers the DHT gave its torrents (dht_reply_alert)
        self.dht_peers = set()
        self.cond = threading.Condition()
        self.log = open(os.path.join(logdir, name + ".alerts"), "w", buffering=1)
        self._keep = []
        self._stop = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        LtSession.ALL.append(self)
        if dht_node:
            self.ses.add_dht_node(dht_node)

    def _pump(self):
        t0 = time.time()
        while not self._stop:
            wait_alerts(self.ses, 50)
            for al in self.ses.pop_alerts():
                try:
                    self.log.write("%.3f %s: %s\n" % (time.time() - t0, type(al).__name__, al.message()))
                except ValueError:
                    pass
                with self.cond:
                    if isinstance(al, lt.listen_succeeded_alert) and al.socket_type == lt.socket_type_t.tcp:
                        self.port = al.port
                    elif isinstance(al, lt.incoming_connection_alert):
                        self.peers.add(al.endpoint[0])
                    elif isinstance(al, lt.peer_connect_alert):
                        self.peers.add(al.endpoint[0])
                        self.outgoing.add(v6addr(*al.endpoint))
                    elif isinstance(al, lt.dht_reply_alert):
                        self.dht_replies += al.num_peers
                    elif isinstance(al, lt.dht_get_peers_reply_alert):
                        self.dht_peers.update(v6addr(p[0], p[1]) for p in al.peers())
                    self.cond.notify_all()

    def wait_port(self):
        return poll(lambda: self.port, START, 0.05)

    def add(self, atp, save_path):
        atp.save_path = save_path
        atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        self._keep.append(atp)
        return self.ses.add_torrent(atp)

    def close(self):
        if self._stop:
            return
        self._stop = True
        self._thread.join(5)
        try:
            self.ses.pause()
        except Exception:
            pass
        self.ses = None
        self._keep = []
        self.log.close()

    @classmethod
    def close_all(cls):
        for s in cls.ALL:
            s.close()


def krpc(family, host, port, query, timeout=5.0):
    """Sends one KRPC query over UDP of `family` and returns the decoded reply (or None)."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(bencode(query), (host, port))
        data, _ = s.recvfrom(65536)
        reply, _ = bdecode(data)
        return reply
    except (socket.timeout, OSError, ValueError) as e:
        return {"error": str(e)}
    finally:
        s.close()


def find_node(want=None):
    args = {b"id": os.urandom(20), b"target": os.urandom(20)}
    if want:
        args[b"want"] = want
    return {b"t": b"v6", b"y": b"q", b"q": b"find_node", b"a": args}


def start_seed(r, args, what, listen, logdir, name, extra=()):
    state = os.path.join(args.work, "state", name)
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(state)
    p = Proc(name, [args.webseed, "seed", args.sample, "--listen", listen, "--no-gateway", "--offline",
                    "--state-dir", state, "--json"] + list(extra), logdir)
    _, lis = p.wait_event(lambda e: e.get("event") == "listening", START)
    _, dht = p.wait_event(lambda e: e.get("event") == "dht", START)
    _, site = p.wait_event(lambda e: e.get("event") == "site", START)
    if lis is None or dht is None or site is None or not site.get("v2_infohash"):
        r.fail(what, "listening %s, dht %s, site %s (exit %s)" % (lis, dht, site, p.p.poll()), more=p.log_tail(12))
        p.stop(timeout=2)
        return None, None
    return p, {"port": lis["port"], "dht_port": dht["port"], "v2": site["v2_infohash"]}


def stop_seed(r, what, p):
    rc, took = p.stop(timeout=5)
    r.check(rc == 0, what, "SIGTERM: exit %s after %.2fs" % (rc, took), more=[] if rc == 0 else p.log_tail(10))


def case_dual(r, args, logdir):
    p, s = start_seed(r, args, "dual webseed seed --listen '*:0' is up", "*:0", logdir, "seed-dual")
    if p is None:
        return
    try:
        port = s["dht_port"]
        r.check(port == s["port"], "dual the DHT shares the peer port", "TCP %d, DHT %d" % (s["port"], port))
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            c = socket.socket(family, socket.SOCK_STREAM)
            c.settimeout(5)
            try:
                c.connect((host, s["port"]))
                r.ok("dual TCP connect to %s" % v6addr(host, s["port"]) if ":" in host else
                     "dual TCP connect to %s:%d" % (host, s["port"]))
            except OSError as e:
                r.fail("dual TCP connect to %s port %d" % (host, s["port"]), str(e))
            finally:
                c.close()

        reply = krpc(socket.AF_INET6, "::1", port, find_node([b"n6"]))
        body = reply.get(b"r") if isinstance(reply, dict) else None
        n6 = body.get(b"nodes6") if isinstance(body, dict) else None
        r.check(isinstance(n6, bytes) and len(n6) >= 38 and len(n6) % 38 == 0 and b"nodes" not in body,
                "dual find_node over IPv6 with want [n6] is answered with nodes6 (BEP 32)",
                "nodes6 %s bytes, nodes %s" % (len(n6) if isinstance(n6, bytes) else n6,
                                                "present" if isinstance(body, dict) and b"nodes" in body else "absent")
                if body is not None else "reply %r" % reply)
        if isinstance(n6, bytes) and len(n6) >= 38:
            entries = [n6[i:i + 38] for i in range(0, len(n6), 38)]
            ips = [socket.inet_ntop(socket.AF_INET6, e[20:36]) for e in entries]
            r.check("::1" in ips, "dual the nodes6 entries are IPv6 nodes (the asker at ::1 among them)",
                    ", ".join(ips))

        reply = krpc(socket.AF_INET, "127.0.0.1", port, find_node())
        body = reply.get(b"r") if isinstance(reply, dict) else None
        r.check(isinstance(body, dict) and isinstance(body.get(b"nodes"), bytes) and b"nodes6" not in body,
                "dual find_node over IPv4 without want is answered with nodes only",
                "keys %s" % sorted(k.decode() for k in body) if isinstance(body, dict) else "reply %r" % reply)
        reply = krpc(socket.AF_INET, "127.0.0.1", port, find_node([b"n4", b"n6"]))
        body = reply.get(b"r") if isinstance(reply, dict) else None
        n6 = body.get(b"nodes6") if isinstance(body, dict) else None
        r.check(isinstance(body, dict) and isinstance(body.get(b"nodes"), bytes) and isinstance(n6, bytes)
                and len(n6) >= 38 and len(n6) % 38 == 0,
                "dual find_node over IPv4 with want [n4, n6] gets nodes and nodes6 (the IPv6 asker known)",
                "nodes %s bytes, nodes6 %s bytes" % (len(body.get(b"nodes", b"")), len(n6 or b""))
                if isinstance(body, dict) else "reply %r" % reply)
    finally:
        stop_seed(r, "dual the seeder exits 0 on SIGTERM", p)


def case_mismatch(r, args, logdir):
    p, s = start_seed(r, args, "mismatch webseed seed --listen 127.0.0.1:0 --dht-bootstrap [::1]:9 is up",
                      "127.0.0.1:0", logdir, "seed-mismatch", extra=["--dht-bootstrap", "[::1]:9"])
    if p is None:
        return
    try:
        _, w = p.wait_event(lambda e: e.get("event") == "warning" and "[::1]:9" in e.get("message", ""), 5)
        r.check(w is not None and "IPv4 only" in w["message"],
                "mismatch an IPv6 bootstrap node for an IPv4-only DHT node is one warning line",
                w["message"] if w else "no warning naming [::1]:9", more=[] if w else p.log_tail(8))
    finally:
        stop_seed(r, "mismatch the seeder exits 0 on SIGTERM", p)


def wait_download(h, nudge_every=3.0):
    """Until the torrent is seeding (bounded by WALL), forcing a DHT announce (which is also a
    get_peers) every few seconds: in a DHT of two nodes each finds the other's peer only by
    asking again."""
    last = [0.0]

    def done():
        if time.time() - last[0] >= nudge_every:
            last[0] = time.time()
            h.force_dht_announce()
        return h.status().is_seeding
    t0 = time.time()
    ok = poll(done, WALL, 0.1)
    return ok, time.time() - t0


def case_find(r, args, logdir):
    for listen in ("[::1]:0", "*:0"):
        find_through(r, args, logdir, listen)


def find_through(r, args, logdir, listen):
    tag, slug = ("find", "find") if listen == "[::1]:0" else ("find*", "find-any")
    p, s = start_seed(r, args, "%s webseed seed --listen '%s' is up" % (tag, listen), listen, logdir, "seed-" + slug)
    if p is None:
        return
    try:
        leech = LtSession("lt-leech-" + slug, logdir, dht_node=("::1", s["dht_port"]))
        if not leech.wait_port():
            r.fail("%s libtorrent leecher listens on [::1]" % tag)
            return
        save = os.path.join(args.work, "dl", slug)
        shutil.rmtree(save, ignore_errors=True)
        os.makedirs(save)
        atp = lt.parse_magnet_uri(magnet_v2(s["v2"], args.site_name))
        h = leech.add(atp, save)
        ok, took = wait_download(h)
        me = v6addr("::1", s["port"])
        with leech.cond:
            peers, outgoing, replies = sorted(leech.peers), sorted(leech.outgoing), leech.dht_replies
        what = "%s a libtorrent leecher on [::1] that knows only webseed's DHT node finds it over IPv6 and downloads" % tag
        if not ok:
            r.fail(what, "not seeding after %.1fs; peers from the DHT %d; peers %s; state %s" % (
                took, replies, peers, h.status().state), more=p.log_tail(10))
        else:
            same, summary, problems = compare_tree(args.sample, os.path.join(save, args.site_name))
            r.check(same, what, "%s; %.1fs" % (summary, took), more=problems[:10])
        r.check(replies >= 1 and me in outgoing,
                "%s libtorrent got peers from the DHT and connected out to webseed's IPv6 address" % tag,
                "%d peers in dht_reply alerts; outgoing connections %s (webseed at %s)" % (replies, outgoing, me))
        r.check(peers == ["::1"], "%s libtorrent's only peer was on ::1" % tag, "peers %s" % peers)
    finally:
        stop_seed(r, "%s the seeder exits 0 on SIGTERM" % tag, p)


def case_any(r, args, logdir):
    node = LtSession("lt-dht-any", logdir)
    np_ = node.wait_port()
    if not np_:
        r.fail("any libtorrent DHT node listens on [::1]")
        return
    p, s = start_seed(r, args, "any webseed seed --listen '*:0' --dht-bootstrap [::1]:N is up", "*:0", logdir,
                      "seed-any", extra=["--dht-bootstrap", v6addr("::1", np_)])
    if p is None:
        return
    try:
        leech = LtSession("lt-leech-any", logdir, dht_node=("::1", np_))
        if not leech.wait_port():
            r.fail("any libtorrent leecher listens on [::1]")
            return
        save = os.path.join(args.work, "dl", "any")
        shutil.rmtree(save, ignore_errors=True)
        os.makedirs(save)
        h = leech.add(lt.parse_magnet_uri(magnet_v2(s["v2"], args.site_name)), save)
        ok, took = wait_download(h)
        me = v6addr("::1", s["port"])
        with leech.cond:
            outgoing, replies = sorted(leech.outgoing), leech.dht_replies
        what = ("any a libtorrent leecher on [::1] that knows only a libtorrent DHT node finds webseed "
                "(default-form listener, announced over IPv6) and downloads")
        if not ok:
            r.fail(what, "not seeding after %.1fs; peers from the DHT %d; outgoing %s; state %s" % (
                took, replies, outgoing, h.status().state), more=p.log_tail(10))
        else:
            same, summary, problems = compare_tree(args.sample, os.path.join(save, args.site_name))
            r.check(same, what, "%s; %.1fs" % (summary, took), more=problems[:10])
        r.check(me in outgoing, "any libtorrent connected out to webseed's IPv6 address from the DHT",
                "outgoing connections %s (webseed at %s)" % (outgoing, me))
    finally:
        stop_seed(r, "any the seeder exits 0 on SIGTERM", p)


def case_get(r, args, logdir):
    seeder = LtSession("lt-seed-get", logdir)
    sp = seeder.wait_port()
    if not sp:
        r.fail("get libtorrent seeder listens on [::1]")
        return
    ti = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = ti
    h = seeder.add(atp, os.path.dirname(args.sample))
    if not poll(lambda: h.status().is_seeding, START, 0.1):
        r.fail("get libtorrent seeder checks the sample", "state %s" % h.status().state)
        return
    ih = ti.info_hashes()
    magnet = magnet_v2(ih.v2.to_bytes().hex(), args.site_name)
    out = os.path.join(args.work, "dl", "get")
    state = os.path.join(args.work, "state", "get")
    for d in (out, state):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(state)
    p = Proc("webseed-get", [args.webseed, "get", magnet, "-o", out, "--offline", "--listen", "[::1]:0",
                             "--dht-bootstrap", v6addr("::1", sp), "--state-dir", state,
                             "--exit-when-done", "--json", "--timeout", "60"], logdir)
    # The seeder announces to the nodes it knows; webseed's node is one once it joined
    # through the seeder's. Its announce is nudged until the download ends (bounded).
    last = [0.0]

    def ended():
        if time.time() - last[0] >= 3:
            last[0] = time.time()
            h.force_dht_announce()
        return not p.alive()
    poll(ended, WALL, 0.1)
    rc = p.wait(1)
    if rc is None:
        p.stop(signal.SIGTERM, timeout=5)
    me = v6addr("::1", sp)
    found = [e for _, e in p.event_times(lambda e: e.get("event") == "dht_peers")]
    names = sorted({x for e in found for x in (e.get("peers") or [])})
    done = p.event_times(lambda e: e.get("event") == "complete")
    what = "get webseed get --listen [::1] knowing only the libtorrent seeder's DHT node finds it over IPv6 and downloads"
    if rc != 0 or not done:
        r.fail(what, "exit %s, complete %s, dht_peers %s" % (rc, bool(done), names), more=p.log_tail(15))
    else:
        same, summary, problems = compare_tree(args.sample, out)
        r.check(same, what, "%s; after %.1fs" % (summary, time.time() - p.t0), more=problems[:10])
    r.check(me in names, "get its dht_peers named the seeder's IPv6 address", "%s among %s" % (me, names))


class Swarm6Tracker:
    """An HTTP tracker on [::1] (a stand-in: opentracker here is IPv4-only): every announce is
    kept per info hash as (source address, port parameter); the answer names the others in
    BEP 7 `peers6` (and an empty `peers`). `announcers[hash hex]` is what it heard."""

    def __init__(self):
        self.announcers = {}
        self.lock = threading.Lock()
        tracker = self

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query, keep_blank_values=True, encoding="latin-1")
                ih = q.get("info_hash", [""])[0].encode("latin-1").hex()
                me = (self.client_address[0], int(q.get("port", ["0"])[0] or 0))
                with tracker.lock:
                    swarm = tracker.announcers.setdefault(ih, [])
                    if me not in swarm and me[1] > 0:
                        swarm.append(me)
                    others = [p for p in swarm if p != me]
                peers6 = b"".join(socket.inet_pton(socket.AF_INET6, h) + p.to_bytes(2, "big") for h, p in others)
                body = bencode({"interval": 5, "min interval": 1, "complete": len(others), "incomplete": 0,
                                "peers": b"", "peers6": peers6})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *a):
                pass

        self.server = Server(("::1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://[::1]:%d/announce" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def heard(self, port):
        with self.lock:
            return sorted(h[:8] for h, peers in self.announcers.items() if ("::1", port) in peers)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def no_dht_session(name, logdir):
    s = LtSession(name, logdir)
    s.ses.apply_settings({"enable_dht": False})
    return s


def case_tracker(r, args, logdir):
    tracker = Swarm6Tracker()
    try:
        # t1: libtorrent finds webseed.
        p, s = start_seed(r, args, "t1 webseed seed --listen '*:0' --tracker http://[::1]:T/announce is up",
                          "*:0", logdir, "seed-tracker", extra=["--tracker", tracker.url])
        if p is not None:
            try:
                heard = poll(lambda: tracker.heard(s["port"]), START, 0.1)
                r.check(bool(heard), "t1 webseed announced to the tracker over IPv6 with its port",
                        "hashes %s from [::1]:%d" % (heard, s["port"]))
                leech = no_dht_session("lt-leech-tracker", logdir)
                if not leech.wait_port():
                    r.fail("t1 libtorrent leecher listens on [::1]")
                else:
                    save = os.path.join(args.work, "dl", "t1")
                    shutil.rmtree(save, ignore_errors=True)
                    os.makedirs(save)
                    magnet = magnet_v2(s["v2"], args.site_name) + "&tr=" + urllib.parse.quote(tracker.url, safe="")
                    h = leech.add(lt.parse_magnet_uri(magnet), save)
                    ok = poll(lambda: h.status().is_seeding, WALL, 0.1)
                    me = v6addr("::1", s["port"])
                    with leech.cond:
                        outgoing = sorted(leech.outgoing)
                    what = "t1 a libtorrent leecher on [::1] (no DHT; the magnet's tr= only) finds webseed through the tracker and downloads"
                    if not ok:
                        r.fail(what, "not seeding; outgoing %s; state %s" % (outgoing, h.status().state), more=p.log_tail(10))
                    else:
                        same, summary, problems = compare_tree(args.sample, os.path.join(save, args.site_name))
                        r.check(same, what, summary, more=problems[:10])
                    r.check(me in outgoing, "t1 libtorrent connected out to webseed's IPv6 address from the tracker",
                            "outgoing %s (webseed at %s)" % (outgoing, me))
            finally:
                stop_seed(r, "t1 the seeder exits 0 on SIGTERM", p)

        # t2: webseed finds libtorrent.
        seeder = no_dht_session("lt-seed-tracker", logdir)
        sp = seeder.wait_port()
        if not sp:
            r.fail("t2 libtorrent seeder listens on [::1]")
            return
        ti = lt.torrent_info(args.torrent)
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.trackers = [tracker.url]
        h = seeder.add(atp, os.path.dirname(args.sample))
        if not poll(lambda: h.status().is_seeding, START, 0.1):
            r.fail("t2 libtorrent seeder checks the sample", "state %s" % h.status().state)
            return
        h.force_reannounce()
        heard = poll(lambda: tracker.heard(sp), START, 0.1)
        if not r.check(bool(heard), "t2 the libtorrent seeder announced to the tracker", "hashes %s" % heard):
            return
        magnet = magnet_v2(ti.info_hashes().v2.to_bytes().hex(), args.site_name) + "&tr=" + urllib.parse.quote(tracker.url, safe="")
        out = os.path.join(args.work, "dl", "t2")
        state = os.path.join(args.work, "state", "t2")
        for d in (out, state):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(state)
        g = Proc("webseed-get-tracker", [args.webseed, "get", magnet, "-o", out, "--offline", "--listen", "[::1]:0",
                                         "--state-dir", state, "--exit-when-done", "--json", "--timeout", "60"], logdir)
        rc = g.wait(WALL)
        if rc is None:
            g.stop(signal.SIGTERM, timeout=5)
        what = "t2 webseed get --listen [::1] (the magnet's tr= only) finds the libtorrent seeder through the tracker and downloads"
        done = g.event_times(lambda e: e.get("event") == "complete")
        if rc != 0 or not done:
            r.fail(what, "exit %s, complete %s" % (rc, bool(done)), more=g.log_tail(15))
        else:
            same, summary, problems = compare_tree(args.sample, out)
            r.check(same, what, "%s; after %.1fs" % (summary, time.time() - g.t0), more=problems[:10])
    finally:
        tracker.stop()


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", default=os.path.join(ROOT, ".build", "debug", "webseed"))
    ap.add_argument("--sample", default=os.path.join(ROOT, "Samples", "site"))
    ap.add_argument("--work", default="/tmp/webseed-ipv6")
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    os.umask(0o022)
    cases = chosen_cases(ap, args, ALL_CASES)
    args.webseed = os.path.abspath(args.webseed)
    args.sample = os.path.abspath(args.sample)
    args.work = os.path.abspath(args.work)
    args.site_name = os.path.basename(args.sample)
    if not os.access(args.webseed, os.X_OK):
        ap.error("no webseed binary at %s (give --webseed BIN)" % args.webseed)
    fresh_dirs(args.work, ("logs", "state", "dl", "torrents"), make=("logs", "torrents", "state", "dl"))
    logdir = os.path.join(args.work, "logs")
    print("# webseed %s; libtorrent %s; cases %s; work %s" % (args.webseed, lt.__version__, ",".join(cases), args.work),
          flush=True)
    r = Results()
    if not r.check(have_ipv6_loopback(), "::1 is usable on this host",
                   subprocess.run(["ip", "-6", "addr", "show", "lo"], capture_output=True, text=True).stdout.strip()
                   .replace("\n", " ")):
        print(r.summary())
        return 1
    try:
        if "get" in cases or "tracker" in cases:
            args.torrent = os.path.join(args.work, "torrents", args.site_name + ".torrent")
            make_hybrid(args.sample, args.torrent)
        for c in cases:
            {"dual": case_dual, "mismatch": case_mismatch, "find": case_find, "any": case_any, "get": case_get,
             "tracker": case_tracker}[c](r, args, logdir)
    finally:
        Proc.kill_all()
        LtSession.close_all()
    print(r.summary())
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
