#!/usr/bin/python3
"""Peer exchange (BEP 11, ut_pex) between webseed and libtorrent 2.0.8 on loopback, and
hostile ut_pex messages.

  a  webseed learns a peer through PEX alone and downloads from it: libtorrent seeder L1
     (127.0.0.21, makes no outgoing connections) holds the site; libtorrent L2 (127.0.0.22,
     upload mode: it never downloads a byte) is connected to L1. `webseed get` is given only
     --peer L2. It completes only by learning L1 from L2's ut_pex: its `pex_peers` event
     from L2 names L1, it connects to L1's listening address, the files are identical, and
     L2 still has no piece.
  b  libtorrent learns a webseed peer through webseed: `webseed get` X (127.0.0.31) waits
     with no peer; `webseed get` G (127.0.0.32) is given --peer X; libtorrent L
     (127.0.0.33) is connected to G only. L's peer list gets X's listening address, with
     PEX as its source.
  c  hostile ut_pex senders beside an honest webseed seeder, all given to one `webseed get`:
     a message of 5,000 peers (preceded by the getter's own address and the sender's:
     at most 50 taken, neither of those two, the rest counted as refused; the connection
     stays open), one over 64 KiB, one that is not a dictionary, one whose `added` has a
     wrong length, and a flood of four messages (each of these four: webseed closes the
     connection). The download completes and the files are identical. Every fake also
     checks that webseed's extension handshake offers ut_pex and tells its port (`p`).
  d  a private torrent (BEP 27): `webseed seed` of it does not offer ut_pex in its
     extension handshake (read by a hand-written peer), while the public torrent of (c)
     does.

Every webseed runs with --offline --no-dht --listen 127.0.0.x:0; libtorrent sessions have
DHT, LSD, UPnP and NAT-PMP off, TCP only, plaintext, ut_pex on. Addresses named in hostile
messages are on 127/8 with a port nothing listens on. Prints `ok`/`FAIL` lines and
`N passed, M failed`.

Usage: PYTHONPATH=Tools /usr/bin/python3 Tools/interop/pex.py --webseed .build/debug/webseed --work DIR [--only a,b,c,d]
"""

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("pex: cannot import libtorrent; run with /usr/bin/python3 (python3-libtorrent)\n")
    sys.exit(2)

from webseedtest.bencode import bdecode, bencode
from webseedtest.cases import add_only, chosen_cases
from webseedtest.content import gen_data, write_files
from webseedtest.ltsession import OFFLINE, PLAINTEXT, TCP_ONLY, wait_alerts
from webseedtest.peerwire import EXTENDED, PSTR, msg
from webseedtest.procs import free_port, Proc, poll, run
from webseedtest.results import Results
from webseedtest.tcpserver import TcpServer
from webseedtest.trees import compare_tree
from webseedtest.watchdog import Watchdog

ALL_CASES = ["a", "b", "c", "d"]
GET_WALL = 90
SITE = {"index.html": gen_data("pex-index", 3000), "app.js": gen_data("pex-app", 700_000),
        "img/big.bin": gen_data("pex-big", 1_500_000), "empty.txt": b""}


# ---- libtorrent --------------------------------------------------------------------------

def lt_session(host, **extra):
    """A loopback session with ut_pex on (and ut_metadata), listening on host:0."""
    s = dict(OFFLINE)
    s.update(TCP_ONLY)
    s.update(PLAINTEXT)
    s.update({"listen_interfaces": "%s:0" % host, "allow_multiple_connections_per_ip": True,
              "close_redundant_connections": False,
              "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification})
    s.update(extra)
    ses = lt.session(s, 0)
    ses.add_extension("ut_metadata")
    ses.add_extension("ut_pex")
    return ses


def lt_port(ses, timeout=20):
    port = poll(lambda: ses.listen_port(), timeout, 0.05)
    return port or None


def lt_add(ses, torrent, save, upload_mode=False):
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    if upload_mode:
        flags |= lt.torrent_flags.upload_mode
    atp.flags = flags
    os.makedirs(save, exist_ok=True)
    return ses.add_torrent(atp)


def peer_endpoints(h):
    """[(ip, port, source flags)] of a torrent's connections."""
    try:
        return [(p.ip[0], p.ip[1], p.source) for p in h.get_peer_info()]
    except RuntimeError:
        return []


# ---- webseed -----------------------------------------------------------------------------

def webseed_get(args, name, torrent, out, host, peers, timeout=60, exit_when_done=True):
    argv = [args.webseed, "get", torrent, "-o", out, "--offline", "--no-dht", "--listen", "%s:0" % host,
            "--state-dir", os.path.join(args.work, "state-" + name), "--json", "--timeout", str(timeout)]
    if exit_when_done:
        argv.append("--exit-when-done")
    for p in peers:
        argv += ["--peer", p]
    return Proc(name, argv, os.path.join(args.work, "logs"))


def listening_port(proc, timeout=30):
    ev = proc.wait_for("listening", timeout)
    return int(ev["port"]) if ev else None


def create(r, args, src, out, private=False):
    argv = [args.webseed, "create", src, "-o", out, "--json", "--force"] + (["--private"] if private else [])
    rc, text = run(argv, 120)
    return r.check(rc == 0 and os.path.isfile(out), "create %s torrent" % ("private" if private else "hybrid"),
                   "" if rc == 0 else text.strip()[-300:])


def finish_get(r, what, proc, src, out):
    rc = proc.wait(GET_WALL)
    proc.end()
    done = proc.wait_for("complete", 0)
    same, summary, _ = compare_tree(src, out)
    r.check(rc == 0 and done is not None and same, what,
            "exit %s, %s" % (rc, summary), more=[] if rc == 0 and same else proc.log_tail(12))
    return rc == 0 and same


# ---- case a ------------------------------------------------------------------------------

def case_a(r, args, src, torrent):
    l1 = lt_session("127.0.0.21", seeding_outgoing_connections=False)
    l2 = lt_session("127.0.0.22")
    p1, p2 = lt_port(l1), lt_port(l2)
    if not r.check(p1 and p2, "a: libtorrent L1 and L2 listen", "L1 %s, L2 %s" % (p1, p2)):
        return
    h1 = lt_add(l1, torrent, os.path.dirname(src))
    h2 = lt_add(l2, torrent, os.path.join(args.work, "a-l2"), upload_mode=True)
    seeding = poll(lambda: h1.status().is_seeding, 60, 0.1)
    if not r.check(seeding, "a: L1 verified the site and seeds it"):
        return
    h2.connect_peer(("127.0.0.21", p1))
    linked = poll(lambda: any(ip == "127.0.0.21" and port == p1 for ip, port, _ in peer_endpoints(h2)), 30, 0.1)
    if not r.check(linked, "a: L2 is connected to L1"):
        return
    out = os.path.join(args.work, "a-out")
    g = webseed_get(args, "a-get", torrent, out, "127.0.0.1", ["127.0.0.22:%d" % p2])
    ok = finish_get(r, "a: webseed get given only L2 completes; files identical", g, src, out)
    l1_addr, l2_addr = "127.0.0.21:%d" % p1, "127.0.0.22:%d" % p2
    told = [e for _, e in g.event_times(lambda e: e.get("event") == "pex_peers")]
    r.check(any(e.get("from") == l2_addr and l1_addr in e.get("peers", []) for e in told),
            "a: webseed learned L1 from L2's ut_pex (pex_peers)", json.dumps(told)[:300])
    connected = [e.get("address") for _, e in g.event_times(lambda e: e.get("event") == "peer_connected")]
    r.check(l1_addr in connected, "a: webseed connected to L1's listening address", "connected: %s" % connected)
    pieces = h2.status().num_pieces
    r.check(ok and pieces == 0, "a: L2 holds no piece: every byte came from L1", "L2 pieces: %d, L1 uploaded %d bytes"
            % (pieces, h1.status().total_payload_upload))


# ---- case b ------------------------------------------------------------------------------

def case_b(r, args, src, torrent):
    x = webseed_get(args, "b-x", torrent, os.path.join(args.work, "b-x"), "127.0.0.31", [], timeout=120, exit_when_done=False)
    xp = listening_port(x)
    if not r.check(xp, "b: webseed X listens", "" if xp else "no listening event"):
        return
    g = webseed_get(args, "b-g", torrent, os.path.join(args.work, "b-g"), "127.0.0.32", ["127.0.0.31:%d" % xp],
                    timeout=120, exit_when_done=False)
    gp = listening_port(g)
    x_addr = "127.0.0.31:%d" % xp
    linked = g.wait_event(lambda e: e.get("event") == "peer_connected" and e.get("address") == x_addr, 30)[1]
    if not r.check(gp and linked, "b: webseed G is connected to X", "" if linked else "no peer_connected %s" % x_addr,
                   more=[] if linked else g.log_tail(8)):
        return
    ses = lt_session("127.0.0.33")
    h = lt_add(ses, torrent, os.path.join(args.work, "b-lt"))
    h.connect_peer(("127.0.0.32", gp))

    def learned():
        for ip, port, source in peer_endpoints(h):
            if ip == "127.0.0.31" and port == xp:
                return source
        return None
    source = poll(learned, 30, 0.1)
    peers = peer_endpoints(h)
    r.check(source is not None and source & lt.peer_info.pex, "b: libtorrent learned webseed X from webseed G's ut_pex",
            "L's peers: %s (pex source flag %d)" % ([(ip, port, s) for ip, port, s in peers], lt.peer_info.pex),
            more=g.log_tail(6))
    del ses
    for p in (g, x):
        p.stop()


# ---- hostile peers (c, d) ----------------------------------------------------------------

class FakePeer(TcpServer):
    """Answers a handshake for any hash, offers ut_pex, reads webseed's extension handshake
    and then plays `mode` with ut_pex messages. Records what it saw in `seen`."""

    def __init__(self, host, mode, own=None):
        self.mode = mode
        self.own = own          # (ip, port) the getter listens on, for mode "5000"
        self.seen = {"ext": None, "closed_after": None, "closed_at": None, "sent": 0}
        self.done = threading.Event()
        super().__init__(host)

    def serve(self, s, addr):
        try:
            s.settimeout(15)
            hs = self.read_exact(s, 68)
            if not hs.startswith(PSTR):
                return
            reserved = bytearray(8)
            reserved[5] = 0x10   # BEP 10
            s.sendall(PSTR + bytes(reserved) + hs[28:48] + b"-FK0001-pexpexpexpex")
            s.sendall(msg(EXTENDED, b"\x00" + bencode({b"m": {b"ut_pex": 7}, b"v": b"fake pex peer"})))
            ext = self.read_extension_handshake(s)
            self.seen["ext"] = ext
            theirs = ext.get(b"m", {}).get(b"ut_pex") if isinstance(ext, dict) else None
            if not theirs:
                return
            self.play(s, theirs)
        except (OSError, ValueError):
            pass
        finally:
            self.done.set()

    def read_exact(self, s, n):
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def read_message(self, s):
        (n,) = struct.unpack(">I", self.read_exact(s, 4))
        if n > 1 << 20:
            raise ValueError("message too long")
        return self.read_exact(s, n) if n else b""

    def read_extension_handshake(self, s):
        while True:
            m = self.read_message(s)
            if len(m) >= 2 and m[0] == EXTENDED and m[1] == 0:
                return bdecode(m[2:])[0]

    def send_pex(self, s, theirs, payload):
        s.sendall(msg(EXTENDED, bytes([theirs]) + payload))
        self.seen["sent"] += 1

    def play(self, s, theirs):
        if self.mode == "5000":
            own_ip, own_port = self.own
            compact = socket.inet_aton(own_ip) + struct.pack(">H", own_port)
            compact += socket.inet_aton(self.address.split(":")[0]) + struct.pack(">H", self.port)
            for i in range(5000):
                compact += bytes([127, 1 + i // 65536 % 200, i // 256 % 256, i % 256]) + struct.pack(">H", 1)
            self.send_pex(s, theirs, bencode({b"added": compact, b"added.f": b"\x10" * (len(compact) // 6), b"dropped": b""}))
            self.wait_closed(s, keep=True)
            return
        if self.mode == "huge":
            self.send_pex(s, theirs, bencode({b"added": b"\x7f\x00\x00\x05\x00\x01" * 12000}))
        elif self.mode == "notdict":
            self.send_pex(s, theirs, b"li1ei2ee")
        elif self.mode == "badlength":
            self.send_pex(s, theirs, bencode({b"added": b"\x7f\x00\x00\x05\x00\x01\x02"}))
        elif self.mode == "flood":
            for _ in range(4):
                self.send_pex(s, theirs, bencode({b"added": b"", b"dropped": b""}))
        self.wait_closed(s, keep=False)

    def wait_closed(self, s, keep):
        """Reads until webseed closes the connection (recorded), or until stopped."""
        t0 = time.time()
        s.settimeout(0.5)
        while not self.stop_ev.is_set() and (keep or time.time() - t0 < 15):
            try:
                if not s.recv(65536):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            return
        self.seen["closed_at"] = time.time()
        self.seen["closed_after"] = round(time.time() - t0, 2)


def start_seed(args, name, torrent, data, host):
    p = Proc(name, [args.webseed, "seed", torrent, "--data", data, "--listen", "%s:0" % host, "--offline", "--no-dht",
                    "--state-dir", os.path.join(args.work, "state-" + name), "--json"], os.path.join(args.work, "logs"))
    ready = p.wait_for("ready", 60)
    ev = p.wait_for("listening", 1)
    return p, (int(ev["port"]) if ready and ev else None)


def case_c(r, args, src, torrent):
    seed, sp = start_seed(args, "c-seed", torrent, src, "127.0.0.40")
    if not r.check(sp, "c: honest webseed seeder ready", more=[] if sp else seed.log_tail(6)):
        return
    getter_port = free_port("127.0.0.1")
    many = FakePeer("127.0.0.41", "5000", own=("127.0.0.1", getter_port))
    fakes = [many] + [FakePeer("127.0.0.%d" % (42 + i), m) for i, m in enumerate(["huge", "notdict", "badlength", "flood"])]
    out = os.path.join(args.work, "c-out")
    argv_peers = [f.address for f in fakes] + ["127.0.0.40:%d" % sp]
    g = Proc("c-get", [args.webseed, "get", torrent, "-o", out, "--offline", "--no-dht", "--listen", "127.0.0.1:%d" % getter_port,
                       "--state-dir", os.path.join(args.work, "state-c-get"), "--json", "--timeout", "60",
                       "--exit-when-done"] + sum([["--peer", p] for p in argv_peers], []), os.path.join(args.work, "logs"))
    for f in fakes[1:]:
        f.done.wait(20)
    finish_get(r, "c: the download completes beside hostile ut_pex senders; files identical", g, src, out)
    for f in fakes:
        ext = f.seen["ext"] if isinstance(f.seen["ext"], dict) else {}
        offered = ext.get(b"m", {}).get(b"ut_pex")
        r.check(offered and ext.get(b"p") == getter_port, "c: webseed's extension handshake to %s offers ut_pex and p" % f.mode,
                "m.ut_pex %r, p %r" % (offered, ext.get(b"p")))
    for f in fakes[1:]:
        r.check(f.seen["sent"] > 0 and f.seen["closed_after"] is not None, "c: webseed closes the %s ut_pex sender" % f.mode,
                "sent %d, closed after %s s" % (f.seen["sent"], f.seen["closed_after"]))
    closes = {e.get("address"): e.get("reason") for _, e in g.event_times(lambda e: e.get("event") == "peer_closed")}
    for f in fakes[1:]:
        Results.info("c: webseed's peer_closed for the %s sender" % f.mode, repr(closes.get(f.address)))
    told = [e for _, e in g.event_times(lambda e: e.get("event") == "pex_peers" and e.get("from") == many.address)]
    own = "127.0.0.1:%d" % getter_port
    e = told[0] if told else {}
    peers = e.get("peers", [])
    r.check(len(told) == 1 and 0 < len(peers) <= 50 and own not in peers and many.address not in peers
            and e.get("refused", 0) >= 4950,
            "c: of 5,000 peers at most 50 are taken, not ourselves nor the sender, the rest refused",
            "%d events, %d peers, refused %s" % (len(told), len(peers), e.get("refused")))
    completed = [t for t, e in g.events if e.get("event") == "complete"]
    closed = many.seen["closed_at"]
    r.check(completed and (closed is None or closed >= completed[0]),
            "c: the 5,000-peer sender's connection stays open while the download runs",
            "closed %s s after the download completed" % (round(closed - completed[0], 2) if closed and completed else None))
    for f in fakes:
        f.stop()
    seed.stop()


def case_d(r, args, src, private_torrent):
    seed, sp = start_seed(args, "d-seed", private_torrent, src, "127.0.0.50")
    if not r.check(sp, "d: webseed seeds the private torrent", more=[] if sp else seed.log_tail(6)):
        return
    from webseedtest.bencode import info_hashes
    v1, v2 = info_hashes(private_torrent)
    s = socket.create_connection(("127.0.0.50", sp), timeout=10)
    try:
        reserved = bytearray(8)
        reserved[5] = 0x10
        s.sendall(PSTR + bytes(reserved) + bytes.fromhex(v2)[:20] + b"-FK0001-privatepexpe")
        s.sendall(msg(EXTENDED, b"\x00" + bencode({b"m": {b"ut_pex": 7}})))
        probe = FakePeer.__new__(FakePeer)
        hs = probe.read_exact(s, 68)
        ext = probe.read_extension_handshake(s)
        r.check(hs[28:48] == bytes.fromhex(v2)[:20] and b"ut_pex" not in ext.get(b"m", {}) and b"ut_metadata" in ext.get(b"m", {}),
                "d: a private torrent's extension handshake does not offer ut_pex", "m: %r" % ext.get(b"m"))
    except (OSError, ValueError) as e:
        r.fail("d: a private torrent's extension handshake does not offer ut_pex", str(e))
    finally:
        s.close()
    seed.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    args.webseed = os.path.abspath(args.webseed)
    cases = chosen_cases(ap, args, ALL_CASES)
    r = Results()
    dog = Watchdog(480, r).start()
    try:
        src = os.path.join(args.work, "site")
        write_files(src, SITE)
        torrent = os.path.join(args.work, "site.torrent")
        private = os.path.join(args.work, "private.torrent")
        if create(r, args, src, torrent) and create(r, args, src, private, private=True):
            for c in cases:
                {"a": case_a, "b": case_b, "c": case_c, "d": lambda r, a, s, t: case_d(r, a, s, private)}[c](r, args, src, torrent)
    finally:
        dog.cancel()
        Proc.kill_all()
    print(r.summary())
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
