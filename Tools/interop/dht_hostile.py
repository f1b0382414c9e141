#!/usr/bin/env python3
"""Hostile datagrams against webseed's DHT node (BEP 5; PROTOCOL.md §8; notes/dht-contract.md).

  python3 Tools/interop/dht_hostile.py --webseed .build/debug/webseed --work /tmp/dht-hostile

Starts `webseed dht --listen 127.0.0.1:0 --offline --dht-bootstrap B --json` and talks to it
from hand-written fake DHT nodes: plain UDP sockets bound to different loopback addresses
(127.0.0.x, 127.0.1.x), every datagram bencoded by Tools/webseedtest/bencode.py or written
byte by byte, never with webseed's code. Loopback only.

Checks, in order:
  bootstrap   B (127.0.0.9), the node's only bootstrap node, answers the node's find_node
              with: a reply under another transaction id, a malformed reply (nodes of 25
              bytes, an id of 19), a reply with the right transaction id from the wrong address
              (listing D, 127.0.0.12), and then a valid reply listing C (127.0.0.10) plus nodes
              at the node's own address, 0.0.0.0 and 224.0.0.1. The node must query C and never
              D; the odd addresses must not hurt it (it answers pings at the end).
  good        ping -> our id, the t echoed and BEP 42 `ip`; find_node -> compact nodes that
              include the fakes that pinged it; BEP 43 `ro: 1` queriers are answered and kept
              out of the table; get_peers -> token + nodes; an announce from 127.0.0.5 is then
              returned to 127.0.0.6 as 127.0.0.5:PORT; implied_port uses the source port;
              unknown keys are ignored; a 1,500-byte query is still answered.
  malformed   bencoding that is not canonical or not bencoding at all: dropped (or 203); a
              uTP SYN gets at most the peer port's 20-byte ST_RESET.
  keys        missing or wrong-typed keys: 203 with our t when `t` and `y: q` are readable,
              dropped when they are not (an integer beyond 64 bits: 203 or dropped).
  methods     unknown methods (pong, GET, puts, sample_infohashes, "", binary, PING): 204.
  tokens      announce_peer with a bad token (altered, empty, 100 bytes): 203, not stored; a
              token got from 127.0.0.2 used from 127.0.0.3: 203, not stored (the same token from
              127.0.0.2: accepted); port 0: not stored; a top-level `ip` claiming another
              address is not what gets stored.
  oversize    datagrams of 1,501, 2,000, 8,000 and 65,000 bytes: dropped.
  unsolicited replies and errors under transaction ids never sent: ignored (no answer, their
              nodes never queried, their ids not in find_node answers).
  amplify     60 peers announced for one hash, then the smallest get_peers (scrape, t of 0
              bytes) and find_node: every reply of the whole run is at most 8 x its query
              (the worst ratio is reported).
  flood       5,000 pings from 127.0.0.66 in about 2 s: answers capped per second, while
              127.0.0.67 keeps getting answers; the flooder is answered again afterwards.
  end         the node still answers a ping; VmRSS before and after (< 100 MB); the fakes that
              should never be queried were not; exit 0 on SIGTERM.
  poison      a node of its own per case, whose bootstrap node answers its find_node with one
              node at 127.0.0.1:0, or at 255.255.255.255:6881 (addresses a UDP socket cannot
              send to): the node must still answer pings afterwards.

Every wait is bounded (a 150 s watchdog on top); the child is killed at the end whatever
happens. Prints one `ok ...` / `FAIL ...` line per check, `info ...` lines with figures, and
last `N passed, M failed`; exits 1 if any check failed.
"""

import argparse
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback

from webseedtest.bencode import bdecode, bencode
from webseedtest.procs import Proc
from webseedtest.results import Results
from webseedtest.trees import fresh_dirs
from webseedtest.watchdog import Watchdog

R = Results()
HOST = "127.0.0.1"
RSS_LIMIT_MB = 100
MAX_AMPLIFICATION = 8.0
FLOOD_N = 5000
FLOOD_SECONDS = 2.0
# The node's per-address cap (DHTNodeCore.Configuration: 50 datagrams/s, bursts of 100).
# The checks allow twice that, so they catch a missing cap, not a retuned one.
RATE, BURST = 50, 100

AMP = []            # (ratio, query bytes, reply bytes, case)
REPLY_SIZES = []    # every reply size seen


def compact(ip, port):
    return socket.inet_aton(ip) + struct.pack(">H", port)


def uncompact(b):
    return "%s:%d" % (socket.inet_ntoa(b[:4]), struct.unpack(">H", b[4:6])[0])


def decode(raw):
    """A whole datagram as one bencoded value, or None."""
    try:
        v, i = bdecode(raw)
    except (ValueError, IndexError, TypeError):
        return None
    return v if i == len(raw) else None


def describe(msg):
    if not isinstance(msg, dict):
        return repr(msg)[:160]
    y = msg.get(b"y")
    if y == b"e":
        return "error %r" % (msg.get(b"e"),)
    if y == b"r":
        return "response keys %s" % sorted(k.decode(errors="replace") for k in (msg.get(b"r") or {}))
    return repr(msg)[:160]


class Fake:
    """A fake DHT node: one UDP socket on its own loopback address. Datagrams the node sends
    it that are queries (the node explores and refreshes its table) are counted and skipped
    while waiting for replies."""

    def __init__(self, ip, node, name=""):
        self.ip = ip
        self.name = name or ip
        self.node = node
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.s.bind((ip, 0))
        self.port = self.s.getsockname()[1]
        self.id = os.urandom(20)
        self.n = 0
        self.node_queries = []

    def tid(self):
        self.n += 1
        return struct.pack(">H", self.n & 0xFFFF)

    def close(self):
        self.s.close()

    def send(self, raw):
        self.s.sendto(raw, self.node)

    def recv(self, timeout):
        """Next datagram from the node that is not a query: (raw, decoded) or (None, None)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None, None
            raw, addr = self.s.recvfrom(70000)
            if addr != self.node:
                continue
            msg = decode(raw)
            if isinstance(msg, dict) and msg.get(b"y") == b"q":
                self.node_queries.append(msg)
                continue
            return raw, msg

    def ask(self, raw, t, case, timeout=2.0):
        """Sends raw and waits for the datagram echoing transaction id t; returns the decoded
        reply or None. Records the reply/query size ratio."""
        self.send(raw)
        deadline = time.monotonic() + timeout
        while True:
            got, msg = self.recv(max(0.0, deadline - time.monotonic()))
            if got is None:
                return None
            if isinstance(msg, dict) and msg.get(b"t") == t:
                AMP.append((len(got) / len(raw), len(raw), len(got), case))
                REPLY_SIZES.append(len(got))
                return msg

    def query(self, q, args, case, t=None, extra=None, timeout=2.0):
        t = self.tid() if t is None else t
        a = {b"id": self.id}
        a.update(args)
        m = {b"t": t, b"y": b"q", b"q": q, b"a": a}
        if extra:
            m.update(extra)
        return self.ask(bencode(m), t, case, timeout)

    def ping(self, case="ping", timeout=2.0):
        return self.query(b"ping", {}, case, timeout=timeout)

    def barrier(self, raw, case):
        """Sends raw, then a ping: whatever the node sends back before the ping's reply is
        its answer to raw (it handles one socket's datagrams in order). Returns (answers,
        barrier answered)."""
        self.send(raw)
        bt = b"zz" + self.tid()
        ping = bencode({b"t": bt, b"y": b"q", b"q": b"ping", b"a": {b"id": self.id}})
        self.send(ping)
        answers = []
        deadline = time.monotonic() + 3
        while True:
            got, msg = self.recv(max(0.0, deadline - time.monotonic()))
            if got is None:
                return answers, False
            if isinstance(msg, dict) and msg.get(b"t") == bt:
                AMP.append((len(got) / len(ping), len(ping), len(got), "ping"))
                return answers, True
            AMP.append((len(got) / max(1, len(raw)), len(raw), len(got), case))
            REPLY_SIZES.append(len(got))
            answers.append((got, msg))


def is_error(msg, code, t):
    return (isinstance(msg, dict) and msg.get(b"y") == b"e" and msg.get(b"t") == t
            and isinstance(msg.get(b"e"), list) and len(msg[b"e"]) == 2 and msg[b"e"][0] == code
            and isinstance(msg[b"e"][1], bytes))


def is_response(msg, node_id, t):
    return (isinstance(msg, dict) and msg.get(b"y") == b"r" and msg.get(b"t") == t
            and isinstance(msg.get(b"r"), dict) and msg[b"r"].get(b"id") == node_id)


def values_of(msg):
    if not (isinstance(msg, dict) and isinstance(msg.get(b"r"), dict)):
        return None
    v = msg[b"r"].get(b"values")
    if v is None:
        return []
    return [uncompact(x) if isinstance(x, bytes) and len(x) == 6 else repr(x) for x in v]


def nodes_of(msg):
    """[(id, "ip:port")] of a reply's nodes, or None when there is no valid `nodes`."""
    if not (isinstance(msg, dict) and isinstance(msg.get(b"r"), dict)):
        return None
    n = msg[b"r"].get(b"nodes")
    if not isinstance(n, bytes) or len(n) % 26:
        return None
    return [(n[i:i + 20], uncompact(n[i + 20:i + 26])) for i in range(0, len(n), 26)]


def near_id(node_id, bits):
    """A random id sharing exactly `bits` leading bits with node_id (bits < 160)."""
    n = int.from_bytes(node_id, "big")
    r = random.getrandbits(160 - bits - 1)
    flip = 1 << (160 - bits - 1)
    keep = n >> (160 - bits) << (160 - bits)
    own_next = n & flip
    return (keep | (flip ^ own_next) | r).to_bytes(20, "big")


class Responder(threading.Thread):
    """A fake node that answers the node's queries in a thread: `handler(msg, raw)` returns
    the datagrams to send back (to the node), as (bytes, from_socket) pairs."""

    def __init__(self, fake, handler):
        super().__init__(daemon=True)
        self.fake = fake
        self.handler = handler
        self.queries = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stop.is_set():
            try:
                r, _, _ = select.select([self.fake.s], [], [], 0.2)
                if not r:
                    continue
                raw, addr = self.fake.s.recvfrom(70000)
            except (OSError, ValueError):
                return
            msg = decode(raw)
            if not (isinstance(msg, dict) and msg.get(b"y") == b"q"):
                continue
            with self.lock:
                self.queries.append((time.monotonic(), addr, len(raw), msg))
            for data, sock in self.handler(msg, raw, addr):
                try:
                    sock.sendto(data, addr)
                except OSError:
                    pass

    def count(self):
        with self.lock:
            return len(self.queries)


# ---------------------------------------------------------------------------------------
# checks

def check_bootstrap(ctx):
    """B is the node's bootstrap node; it answers the node's first find_node with hostile replies
    and then a valid one."""
    ok = ctx.b_first.wait(8)
    if not R.check(ok, "bootstrap: the node sends find_node to its --dht-bootstrap node",
                   "%d queries within 8 s" % ctx.b_resp.count()):
        return
    _, addr, size, q = ctx.b_resp.queries[0]
    a = q.get(b"a") if isinstance(q.get(b"a"), dict) else {}
    R.check(q.get(b"q") == b"find_node" and a.get(b"id") == ctx.node_id
            and isinstance(a.get(b"target"), bytes) and len(a[b"target"]) == 20 and size <= 1024
            and addr == ctx.node,
            "bootstrap: its query is a well-formed find_node from the node's id",
            "%d bytes, target %s our id, from %s:%d"
            % (size, "=" if a.get(b"target") == ctx.node_id else "!=", addr[0], addr[1]))
    # C must be queried (the valid reply was followed) ...
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and ctx.c_resp.count() == 0:
        time.sleep(0.05)
    R.check(ctx.c_resp.count() > 0, "bootstrap: the node follows the nodes of the valid reply (queries C)",
            "C queried %d times" % ctx.c_resp.count())
    # ... and D (listed only in the reply from the wrong address) is checked at the end.


def bootstrap_handler(ctx):
    sent = {"first": False}

    def handler(msg, raw, addr):
        t = msg.get(b"t", b"")
        q = msg.get(b"q")
        b = ctx.b
        if q == b"find_node" and not sent["first"]:
            sent["first"] = True
            # The node may ask before its "dht" line has been read here; the reply names it.
            ctx.node_known.wait(10)
            tid = t
            node_id = msg[b"a"][b"id"]
            out = []
            # 1. a reply under another transaction id (never sent by the node)
            other = bytes([tid[0] ^ 0x55]) + tid[1:] if tid else b"\x01"
            out.append((bencode({b"t": other, b"y": b"r", b"r": {b"id": b.id, b"nodes": b""}}), b.s))
            # 2. malformed: nodes of 25 bytes
            out.append((bencode({b"t": tid, b"y": b"r", b"r": {b"id": b.id, b"nodes": os.urandom(25)}}), b.s))
            # 3. malformed: id of 19 bytes
            out.append((bencode({b"t": tid, b"y": b"r", b"r": {b"id": b.id[:19], b"nodes": b""}}), b.s))
            # 4. the right transaction id from the wrong address, listing D
            dn = ctx.d.id + compact(ctx.d.ip, ctx.d.port)
            out.append((bencode({b"t": tid, b"y": b"r", b"r": {b"id": b.id, b"nodes": dn}}), ctx.wrong.s))
            # 5. the valid reply: C, the node itself under another id, 0.0.0.0, a multicast address
            #    (port 0 and the broadcast address get a node of their own: check_poison)
            #    (C's id is the closest of all to the node's, so C is in the first wave)
            def near(k):
                return node_id[:17] + bytes([node_id[17] ^ k, random.getrandbits(8), random.getrandbits(8)])
            ctx.c.id = node_id[:19] + bytes([node_id[19] ^ 1])
            nodes = ctx.c.id + compact(ctx.c.ip, ctx.c.port)
            nodes += near(1) + compact(HOST, ctx.node[1])
            nodes += near(2) + compact("0.0.0.0", 9)
            nodes += near(3) + compact("224.0.0.1", 6881)
            out.append((bencode({b"t": tid, b"y": b"r", b"r": {b"id": b.id, b"nodes": nodes}}), b.s))
            ctx.b_first.set()
            return out
        return [(plain_answer(msg, b.id), b.s)]
    return handler


def plain_answer(msg, my_id):
    t = msg.get(b"t", b"")
    q = msg.get(b"q")
    r = {b"id": my_id}
    if q in (b"find_node", b"get_peers"):
        r[b"nodes"] = b""
    if q == b"get_peers":
        r[b"token"] = b"tok"
    return bencode({b"t": t, b"y": b"r", b"r": r})


def check_good(ctx):
    f = Fake("127.0.0.7", ctx.node)
    ctx.fakes.append(f)
    t = f.tid()
    raw = bencode({b"t": t, b"y": b"q", b"q": b"ping", b"a": {b"id": f.id}})
    m = f.ask(raw, t, "ping")
    R.check(is_response(m, ctx.node_id, t), "good: ping is answered with the node's id and our t", describe(m))
    ip = m.get(b"ip") if isinstance(m, dict) else None
    R.check(ip == compact(f.ip, f.port), "good: the ping reply carries BEP 42 ip = our address",
            uncompact(ip) if isinstance(ip, bytes) and len(ip) == 6 else repr(ip))

    # a few more nodes ping it; find_node must return compact nodes among which are they
    others = [Fake("127.0.0.%d" % (40 + i), ctx.node) for i in range(5)]
    ctx.fakes.extend(others)
    # the one we look for shares 96 bits with the node's id: a bucket of its own, never full
    others[0].id = near_id(ctx.node_id, 96)
    answered = sum(1 for o in others if o.ping() is not None)
    m = f.query(b"find_node", {b"target": others[0].id}, "find_node")
    ns = nodes_of(m)
    known = {(o.id, "%s:%d" % (o.ip, o.port)) for o in others}
    got = set(ns or [])
    R.check(ns is not None and len(ns) >= 1 and len(ns) <= 8 and (others[0].id, "%s:%d" % (others[0].ip, others[0].port)) in got,
            "good: find_node answers compact nodes (26 bytes each) including the target's pinger",
            "%s nodes, %d of the %d pingers (%d answered)" % (len(ns) if ns is not None else "no valid",
                                                              len(got & known), len(others), answered))

    # BEP 43: a read-only querier is answered but not put in the routing table
    ro = Fake("127.0.0.8", ctx.node)
    ctx.fakes.append(ro)
    ro.id = near_id(ctx.node_id, 80)   # were it added, its bucket would have room
    t = ro.tid()
    m = ro.ask(bencode({b"t": t, b"y": b"q", b"q": b"ping", b"ro": 1, b"a": {b"id": ro.id}}), t, "ping ro")
    m2 = f.query(b"find_node", {b"target": ro.id}, "find_node")
    ns = nodes_of(m2) or []
    R.check(is_response(m, ctx.node_id, t) and ro.id not in [n[0] for n in ns],
            "good: BEP 43 ro:1 ping is answered and the read-only node is not in find_node answers",
            "%s; find_node for its id: %d nodes" % (describe(m), len(ns)))

    # get_peers for an unknown hash: token + nodes
    h = os.urandom(20)
    m = f.query(b"get_peers", {b"info_hash": h}, "get_peers")
    r = m.get(b"r") if isinstance(m, dict) else None
    R.check(isinstance(r, dict) and isinstance(r.get(b"token"), bytes) and len(r[b"token"]) > 0
            and nodes_of(m) is not None and b"values" not in r,
            "good: get_peers for an unknown hash answers a token and nodes", describe(m))

    # announce from 127.0.0.5, found by 127.0.0.6
    a5, a6 = Fake("127.0.0.5", ctx.node), Fake("127.0.0.6", ctx.node)
    ctx.fakes += [a5, a6]
    h = os.urandom(20)
    port = 51413
    m = a5.query(b"get_peers", {b"info_hash": h}, "get_peers")
    token = (m.get(b"r") or {}).get(b"token") if isinstance(m, dict) else None
    t = a5.tid()
    m = a5.query(b"announce_peer", {b"info_hash": h, b"port": port, b"token": token or b""}, "announce_peer", t=t)
    R.check(is_response(m, ctx.node_id, t), "good: announce_peer with the token from get_peers is accepted", describe(m))
    m = a6.query(b"get_peers", {b"info_hash": h}, "get_peers")
    vals = values_of(m)
    R.check(vals is not None and "127.0.0.5:%d" % port in vals and isinstance((m.get(b"r") or {}).get(b"token"), bytes),
            "good: get_peers from 127.0.0.6 returns 127.0.0.5:%d as a value (and a token)" % port,
            "values %s" % vals)

    # implied_port: the announce's source port is stored
    a24, obs = Fake("127.0.0.24", ctx.node), Fake("127.0.0.27", ctx.node)
    ctx.fakes += [a24, obs]
    h = os.urandom(20)
    m = a24.query(b"get_peers", {b"info_hash": h}, "get_peers")
    token = (m.get(b"r") or {}).get(b"token") if isinstance(m, dict) else b""
    t = a24.tid()
    m = a24.query(b"announce_peer", {b"info_hash": h, b"port": 0, b"implied_port": 1, b"token": token}, "announce_peer", t=t)
    vals = values_of(obs.query(b"get_peers", {b"info_hash": h}, "get_peers"))
    R.check(is_response(m, ctx.node_id, t) and vals == ["127.0.0.24:%d" % a24.port],
            "good: announce_peer with implied_port=1 (port 0) stores the UDP source port",
            "%s; values %s (source port %d)" % (describe(m), vals, a24.port))

    # unknown keys are ignored; t of 16 bytes is echoed
    t = b"T" * 16
    raw = bencode({b"t": t, b"y": b"q", b"q": b"ping", b"zz": b"x", b"v": b"XX01",
                   b"a": {b"id": f.id, b"unknown": [1, {b"k": b"v"}]}})
    m = f.ask(raw, t, "ping extra keys")
    R.check(is_response(m, ctx.node_id, t), "good: unknown keys are ignored and a 16-byte t is echoed", describe(m))

    # the largest datagram read (1,500 bytes) and BEP 5's 1,024 are answered
    for size in (1024, 1500):
        t = f.tid()
        raw = padded_ping(f.id, t, size)
        m = f.ask(raw, t, "ping %d bytes" % size)
        R.check(len(raw) == size and is_response(m, ctx.node_id, t),
                "good: a %d-byte ping is answered" % size, describe(m))


def padded_ping(my_id, t, size):
    """A valid ping of exactly `size` bytes (an unknown `pad` key in `a`)."""
    n = max(0, size - 80)
    for _ in range(20):
        raw = bencode({b"t": t, b"y": b"q", b"q": b"ping", b"a": {b"id": my_id, b"pad": b"p" * n}})
        if len(raw) == size:
            return raw
        n += size - len(raw)
        n = max(0, n)
    return raw


def check_malformed(ctx):
    f = Fake("127.0.0.13", ctx.node)
    ctx.fakes.append(f)
    fid = f.id
    ping = bencode({b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": fid}})
    rnd = random.Random(5)
    cases = [
        ("an empty datagram", b""),
        ("'d' alone", b"d"),
        ("an empty dict", b"de"),
        ("text", b"hello, DHT"),
        ("a truncated ping", ping[:-1]),
        ("a ping cut in its id", ping[:20]),
        ("a ping followed by junk", ping + b"junk"),
        ("two pings in one datagram", ping + ping),
        ("keys out of order", b"d1:y1:q1:t2:aa1:q4:ping1:ad2:id20:" + fid + b"ee"),
        ("a duplicated key", b"d1:ad2:id20:" + fid + b"e1:q4:ping1:t2:aa1:t2:bb1:y1:qe"),
        ("an integer with a leading zero", b"d1:ad2:id20:" + fid + b"e1:q4:ping1:t2:aa1:y1:q1:zi01ee"),
        ("i-0e", b"d1:ad2:id20:" + fid + b"e1:q4:ping1:t2:aa1:y1:q1:zi-0ee"),
        ("an integer of 400 digits", b"d1:ad2:id20:" + fid + b"e1:q4:ping1:t2:aa1:y1:q1:zi" + b"9" * 400 + b"ee"),
        ("a string longer than the datagram", b"d1:t2:aa1:y1:q1:q4:ping1:a99999999999999999999:x"),
        ("a string length of 5 with 2 bytes", b"d1:t5:aa1:y1:qe"),
        ("a negative string length", b"d1:t-2:aa1:y1:qe"),
        ("an integer key", b"di1ei2ee"),
        ("lists nested 500 deep", b"d1:a" + b"l" * 500 + b"e" * 500 + b"1:q4:ping1:t2:aa1:y1:qe"),
        ("dicts nested 60 deep", b"d1:ad2:id20:" + fid + b"1:x" + b"d1:x" * 60 + b"i1e" + b"e" * 60
         + b"e1:q4:ping1:t2:aa1:y1:qe"),
        ("a bencoded list", b"l1:t2:aa1:y1:qe"),
        ("a bare integer", b"i42e"),
        ("NUL bytes", b"\x00" * 64),
        ("random bytes after 'd' (1)", b"d" + bytes(rnd.getrandbits(8) for _ in range(200))),
        ("random bytes after 'd' (2)", b"d" + bytes(rnd.getrandbits(8) for _ in range(700))),
        ("a uTP data packet", struct.pack(">BBHIIIHH", 0x01, 0, 1234, 0, 0, 0x100000, 1, 0) + b"d1:t"),
    ]
    for name, raw in cases:
        answers, alive = f.barrier(raw, "malformed: " + name)
        okay = alive and all(is_error(m, 203, m.get(b"t") if isinstance(m, dict) else None) for _, m in answers) \
            and len(answers) <= 1
        what = "dropped" if not answers else "; ".join(describe(m) for _, m in answers)
        R.check(okay, "malformed bencode: %s -> dropped or 203" % name,
                what + ("" if alive else "; the ping after it was not answered"))
    # the peer port's UDP side also answers uTP SYNs (UTPResponder: ST_RESET, same size)
    syn = struct.pack(">BBHIIIHH", 0x41, 0, 1234, 0, 0, 0x100000, 1, 0)
    answers, alive = f.barrier(syn, "uTP SYN")
    R.check(alive and len(answers) <= 1 and all(len(raw) <= len(syn) and raw[:1] == b"\x31" for raw, _ in answers),
            "malformed: a uTP SYN gets at most a uTP ST_RESET of its own size",
            "; ".join("%d bytes %s" % (len(raw), raw[:4].hex()) for raw, _ in answers) or "no answer")


def check_keys(ctx):
    f = Fake("127.0.0.14", ctx.node)
    g = Fake("127.0.0.28", ctx.node)
    ctx.fakes += [f, g]
    i20 = os.urandom(20)
    tok = b"\x00" * 8

    def q(method, args, **top):
        m = {b"t": None, b"y": b"q", b"q": method, b"a": args}
        for k, v in top.items():
            if v is None:
                m.pop(k.encode(), None)
            else:
                m[k.encode()] = v
        return m

    def with_id(**kw):
        d = {b"id": f.id}
        d.update({k.encode(): v for k, v in kw.items()})
        return d

    error_cases = [
        ("no a", q(b"ping", None, a=None)),
        ("a is a string", q(b"ping", b"x" * 20)),
        ("a is a list", q(b"ping", [f.id])),
        ("no a.id", q(b"ping", {})),
        ("a.id of 19 bytes", q(b"ping", {b"id": f.id[:19]})),
        ("a.id of 21 bytes", q(b"ping", {b"id": f.id + b"x"})),
        ("a.id an integer", q(b"ping", {b"id": 5})),
        ("q an integer", q(7, with_id())),
        ("q a list", q([b"ping"], with_id())),
        ("find_node without target", q(b"find_node", with_id())),
        ("find_node target of 10 bytes", q(b"find_node", with_id(target=i20[:10]))),
        ("find_node want a string", q(b"find_node", with_id(target=i20, want=b"n4"))),
        ("get_peers without info_hash", q(b"get_peers", with_id())),
        ("get_peers info_hash an integer", q(b"get_peers", with_id(info_hash=1))),
        ("get_peers want [1]", q(b"get_peers", with_id(info_hash=i20, want=[1]))),
        ("get_peers noseed=2", q(b"get_peers", with_id(info_hash=i20, noseed=2))),
        ("announce_peer without token", q(b"announce_peer", with_id(info_hash=i20, port=6881))),
        ("announce_peer without port", q(b"announce_peer", with_id(info_hash=i20, token=tok))),
        ("announce_peer port a string", q(b"announce_peer", with_id(info_hash=i20, port=b"6881", token=tok))),
        ("announce_peer port 70000", q(b"announce_peer", with_id(info_hash=i20, port=70000, token=tok))),
        ("announce_peer port -1", q(b"announce_peer", with_id(info_hash=i20, port=-1, token=tok))),
        ("announce_peer implied_port=2", q(b"announce_peer", with_id(info_hash=i20, port=6881, implied_port=2, token=tok))),
        ("announce_peer token an integer", q(b"announce_peer", with_id(info_hash=i20, port=6881, token=8))),
        ("announce_peer info_hash of 40 hex", q(b"announce_peer", with_id(info_hash=i20.hex().encode(), port=6881, token=tok))),
        ("ro=5", q(b"ping", with_id(), ro=5)),
        ("ip of 5 bytes", q(b"ping", with_id(), ip=b"\x7f\x00\x00\x01\x00")),
        ("v an integer", q(b"ping", with_id(), v=3)),
    ]
    for i, (name, m) in enumerate(error_cases):
        s = f if i < len(error_cases) // 2 else g   # two addresses: well inside each one's rate
        t = s.tid()
        m[b"t"] = t
        if m.get(b"a") is None:
            m.pop(b"a", None)
        raw = bencode(m)
        reply = s.ask(raw, t, "keys: " + name)
        R.check(is_error(reply, 203, t), "keys: %s -> error 203 with our t" % name, describe(reply))

    # an integer beyond 64 bits is valid bencoding, but a decoder may refuse it as such: 203 or dropped
    t = g.tid()
    raw = bencode({b"t": t, b"y": b"q", b"q": b"announce_peer",
                   b"a": {b"id": g.id, b"info_hash": i20, b"port": 1 << 64, b"token": tok}})
    answers, alive = g.barrier(raw, "keys: port 2^64")
    R.check(alive and len(answers) <= 1 and all(is_error(m, 203, t) for _, m in answers),
            "keys: announce_peer port 2^64 -> error 203 or dropped",
            "; ".join(describe(m) for _, m in answers) or "dropped")

    drop_cases = [
        ("no t", {b"y": b"q", b"q": b"ping", b"a": {b"id": f.id}}),
        ("t an integer", {b"t": 12, b"y": b"q", b"q": b"ping", b"a": {b"id": f.id}}),
        ("t of 17 bytes", {b"t": b"T" * 17, b"y": b"q", b"q": b"ping", b"a": {b"id": f.id}}),
        ("t a dict", {b"t": {b"a": b"b"}, b"y": b"q", b"q": b"ping", b"a": {b"id": f.id}}),
        ("no y", {b"t": b"aa", b"q": b"ping", b"a": {b"id": f.id}}),
        ("y = x", {b"t": b"aa", b"y": b"x", b"q": b"ping", b"a": {b"id": f.id}}),
        ("y an integer", {b"t": b"aa", b"y": 1, b"q": b"ping", b"a": {b"id": f.id}}),
        ("y = qq", {b"t": b"aa", b"y": b"qq", b"q": b"ping", b"a": {b"id": f.id}}),
    ]
    h = Fake("127.0.0.29", ctx.node)
    ctx.fakes.append(h)
    for name, m in drop_cases:
        answers, alive = h.barrier(bencode(m), "keys: " + name)
        R.check(alive and not answers, "keys: %s -> dropped" % name,
                ("; ".join(describe(x) for _, x in answers) or "no answer") + ("" if alive else "; barrier ping unanswered"))


def check_methods(ctx):
    f = Fake("127.0.0.15", ctx.node)
    ctx.fakes.append(f)
    for name in (b"pong", b"GET", b"puts", b"sample_infohashes", b"vote", b"", b"\xff\xfe\x00", b"PING",
                 b"ping ", b"x" * 200):
        t = f.tid()
        raw = bencode({b"t": t, b"y": b"q", b"q": name, b"a": {b"id": f.id, b"target": os.urandom(20)}})
        m = f.ask(raw, t, "unknown method")
        R.check(is_error(m, 204, t), "methods: unknown method %r -> error 204 with our t" % name[:24], describe(m))
    # without any arguments at all
    t = f.tid()
    m = f.ask(bencode({b"t": t, b"y": b"q", b"q": b"frobnicate"}), t, "unknown method")
    R.check(is_error(m, 204, t), "methods: unknown method without a -> error 204", describe(m))


def get_token(fake, h, case="get_peers"):
    m = fake.query(b"get_peers", {b"info_hash": h}, case)
    r = m.get(b"r") if isinstance(m, dict) else None
    return r.get(b"token") if isinstance(r, dict) else None


def check_tokens(ctx):
    obs = Fake("127.0.0.4", ctx.node, "observer")
    ctx.fakes.append(obs)

    # bad tokens
    f = Fake("127.0.0.19", ctx.node)
    ctx.fakes.append(f)
    h = os.urandom(20)
    good = get_token(f, h) or b"\x00" * 8
    bad = [("altered", bytes([good[0] ^ 1]) + good[1:]), ("empty", b""), ("100 bytes", good * 13),
           ("random", os.urandom(len(good)))]
    for name, tok in bad:
        t = f.tid()
        m = f.query(b"announce_peer", {b"info_hash": h, b"port": 6881, b"token": tok}, "announce bad token", t=t)
        R.check(is_error(m, 203, t), "tokens: announce_peer with a bad token (%s) -> error 203" % name, describe(m))
    vals = values_of(obs.query(b"get_peers", {b"info_hash": h}, "get_peers"))
    R.check(vals == [], "tokens: nothing announced with bad tokens is stored", "values %s" % vals)

    # a token got from 127.0.0.2 used from 127.0.0.3
    a2, a3 = Fake("127.0.0.2", ctx.node), Fake("127.0.0.3", ctx.node)
    ctx.fakes += [a2, a3]
    h = os.urandom(20)
    tok2 = get_token(a2, h)
    t = a3.tid()
    m = a3.query(b"announce_peer", {b"info_hash": h, b"port": 6883, b"token": tok2 or b""}, "announce stolen token", t=t)
    R.check(tok2 is not None and is_error(m, 203, t),
            "tokens: a token got from 127.0.0.2 used from 127.0.0.3 -> error 203", describe(m))
    # also with implied_port, and with 127.0.0.3's own token for another hash
    t = a3.tid()
    m = a3.query(b"announce_peer", {b"info_hash": h, b"port": 0, b"implied_port": 1, b"token": tok2 or b""},
                 "announce stolen token", t=t)
    R.check(is_error(m, 203, t), "tokens: the stolen token with implied_port=1 -> error 203", describe(m))
    vals = values_of(obs.query(b"get_peers", {b"info_hash": h}, "get_peers"))
    R.check(vals == [], "tokens: 127.0.0.3 is not stored with 127.0.0.2's token", "values %s" % vals)
    t = a2.tid()
    m = a2.query(b"announce_peer", {b"info_hash": h, b"port": 6882, b"token": tok2 or b""}, "announce", t=t)
    vals = values_of(obs.query(b"get_peers", {b"info_hash": h}, "get_peers"))
    R.check(is_response(m, ctx.node_id, t) and vals == ["127.0.0.2:6882"],
            "tokens: the same token from 127.0.0.2 itself is accepted and stored",
            "%s; values %s" % (describe(m), vals))

    # port 0 (without implied_port): never stored
    p0 = Fake("127.0.0.18", ctx.node)
    ctx.fakes.append(p0)
    h = os.urandom(20)
    tok = get_token(p0, h) or b""
    replies = []
    for args in ({b"port": 0}, {b"port": 0, b"implied_port": 0}):
        a = {b"info_hash": h, b"token": tok}
        a.update(args)
        t = p0.tid()
        replies.append(describe(p0.query(b"announce_peer", a, "announce port 0", t=t)))
    vals = values_of(obs.query(b"get_peers", {b"info_hash": h}, "get_peers"))
    R.check(vals == [], "tokens: announce_peer with port 0 is not stored (get_peers from 127.0.0.4 has no values)",
            "replies: %s; values %s" % (" / ".join(replies), vals))

    # a top-level ip claiming another address: the source address is what counts
    w = Fake("127.0.0.23", ctx.node)
    ctx.fakes.append(w)
    h = os.urandom(20)
    tok = get_token(w, h) or b""
    t = w.tid()
    m = w.query(b"announce_peer", {b"info_hash": h, b"port": 6884, b"token": tok}, "announce claiming ip", t=t,
                extra={b"ip": compact("10.9.8.7", 6884)})
    vals = values_of(obs.query(b"get_peers", {b"info_hash": h}, "get_peers"))
    R.check(vals is not None and not any(v.startswith("10.9.8.7") for v in vals),
            "tokens: an announce whose ip field claims 10.9.8.7 does not store 10.9.8.7",
            "%s; values %s" % (describe(m), vals))


def check_oversize(ctx):
    f = Fake("127.0.0.16", ctx.node)
    ctx.fakes.append(f)
    for size in (1501, 2000, 8000, 65000):
        t = f.tid()
        raw = padded_ping(f.id, t, size)
        answers, alive = f.barrier(raw, "oversize")
        R.check(len(raw) == size and alive and not answers, "oversize: a valid ping of %d bytes is dropped" % size,
                ("; ".join(describe(m) for _, m in answers) or "no answer") + ("" if alive else "; barrier unanswered"))
    # an oversize unknown method: dropped too (no 204)
    t = f.tid()
    raw = bencode({b"t": t, b"y": b"q", b"q": b"nope", b"a": {b"id": f.id, b"pad": b"x" * 1600}})
    answers, alive = f.barrier(raw, "oversize")
    R.check(alive and not answers, "oversize: a %d-byte unknown method is dropped (no 204)" % len(raw),
            "; ".join(describe(m) for _, m in answers) or "no answer")


def check_unsolicited(ctx):
    f = Fake("127.0.0.17", ctx.node)
    ctx.fakes.append(f)
    e = ctx.e
    en = e.id + compact(e.ip, e.port)
    cases = [
        ("a find_node reply", {b"t": os.urandom(2), b"y": b"r", b"r": {b"id": f.id, b"nodes": en}}),
        ("a get_peers reply with values", {b"t": os.urandom(2), b"y": b"r",
                                         b"r": {b"id": f.id, b"token": b"tk", b"nodes": en, b"values": [compact(e.ip, e.port)]}}),
        ("a ping reply", {b"t": os.urandom(4), b"y": b"r", b"r": {b"id": e.id}}),
        ("a reply with an empty t", {b"t": b"", b"y": b"r", b"r": {b"id": f.id, b"nodes": en}}),
        ("an error 201", {b"t": os.urandom(2), b"y": b"e", b"e": [201, b"A Generic Error Ocurred"]}),
        ("an error with a bad body", {b"t": os.urandom(2), b"y": b"e", b"e": b"oops"}),
        ("a reply without r", {b"t": os.urandom(2), b"y": b"r"}),
    ]
    for name, m in cases:
        answers, alive = f.barrier(bencode(m), "unsolicited")
        R.check(alive and not answers, "unsolicited: %s to a query never sent is ignored" % name,
                ("; ".join(describe(x) for _, x in answers) or "no answer") + ("" if alive else "; barrier unanswered"))
    # its nodes were not learnt: find_node for E's id does not return E
    m = f.query(b"find_node", {b"target": e.id}, "find_node")
    ns = nodes_of(m)
    R.check(ns is not None and e.id not in [n[0] for n in ns],
            "unsolicited: the node listed there is not in find_node answers", "%s nodes" % (len(ns) if ns is not None else "no"))


def check_amplification(ctx):
    """Many values for one hash, then the smallest queries that return the most."""
    h = os.urandom(20)
    stored = 0
    for i in range(60):
        a = Fake("127.0.1.%d" % (i + 1), ctx.node)
        tok = get_token(a, h, "get_peers (amplify setup)")
        if tok is not None:
            m = a.query(b"announce_peer", {b"info_hash": h, b"port": 7000 + i, b"token": tok}, "announce (amplify setup)")
            stored += is_response(m, ctx.node_id, m.get(b"t") if isinstance(m, dict) else None)
        a.close()
    f = Fake("127.0.0.26", ctx.node)
    ctx.fakes.append(f)
    results = []
    for name, t, extra in (("get_peers", b"", {}), ("get_peers scrape", b"", {b"scrape": 1}),
                           ("get_peers noseed", b"", {b"noseed": 1}), ("get_peers want n4 n6", b"", {b"want": [b"n4", b"n6"]})):
        a = {b"id": f.id, b"info_hash": h}
        a.update(extra)
        raw = bencode({b"t": t, b"y": b"q", b"q": b"get_peers", b"a": a})
        m = f.ask(raw, t, "amplify: " + name)
        vals = values_of(m)
        if m is not None:
            last = AMP[-1]
            results.append("%s %d->%d bytes (x%.2f, %d values)" % (name, last[1], last[2], last[0], len(vals or [])))
        else:
            results.append("%s: no answer" % name)
    raw = bencode({b"t": b"", b"y": b"q", b"q": b"find_node", b"a": {b"id": f.id, b"target": os.urandom(20)}})
    m = f.ask(raw, b"", "amplify: find_node")
    if m is not None:
        last = AMP[-1]
        results.append("find_node %d->%d bytes (x%.2f, %d nodes)" % (last[1], last[2], last[0], len(nodes_of(m) or [])))
    R.info("amplify", "%d of 60 announces stored; %s" % (stored, "; ".join(results)))
    R.check(stored >= 50 and len(results) == 5 and all("no answer" not in r for r in results),
            "amplify: the node answers small get_peers/find_node for a hash with %d peers" % stored)


def check_flood(ctx):
    fl = Fake("127.0.0.66", ctx.node, "flooder")
    by = Fake("127.0.0.67", ctx.node, "bystander")
    ctx.fakes += [fl, by]
    arrivals = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                r, _, _ = select.select([fl.s], [], [], 0.1)
                if r:
                    raw, addr = fl.s.recvfrom(70000)
                    msg = decode(raw)
                    if isinstance(msg, dict) and msg.get(b"y") == b"r":
                        arrivals.append(time.monotonic())
                        AMP.append((len(raw) / flood_len, flood_len, len(raw), "flood ping"))
            except OSError:
                return
    ping0 = bencode({b"t": b"\x00\x00", b"y": b"q", b"q": b"ping", b"a": {b"id": fl.id}})
    flood_len = len(ping0)
    rt = threading.Thread(target=reader, daemon=True)
    rt.start()

    by_results = []

    def bystander():
        # one ping every 100 ms during the flood, each retried up to 3 times (loopback UDP
        # can drop when the node's socket buffer fills; webseed must not)
        while not stop.is_set() and not flood_done.is_set():
            t0 = time.monotonic()
            m = None
            for _ in range(3):
                m = by.ping("bystander ping", timeout=0.3)
                if m is not None:
                    break
            by_results.append((t0, m is not None, time.monotonic() - t0))
            time.sleep(0.1)
    flood_done = threading.Event()
    bt = threading.Thread(target=bystander, daemon=True)
    bt.start()

    t_start = time.monotonic()
    for i in range(FLOOD_N):
        t = struct.pack(">H", i)
        fl.send(bencode({b"t": t, b"y": b"q", b"q": b"ping", b"a": {b"id": fl.id}}))
        # paced: FLOOD_N in FLOOD_SECONDS
        target = t_start + FLOOD_SECONDS * (i + 1) / FLOOD_N
        d = target - time.monotonic()
        if d > 0.001:
            time.sleep(d)
    t_sent = time.monotonic()
    time.sleep(0.5)            # late answers to the last datagrams
    flood_done.set()
    bt.join(5)
    stop.set()
    rt.join(2)
    elapsed = t_sent - t_start
    n = len(arrivals)
    # the most answers within any 1-second window
    peak = 0
    j = 0
    for i in range(n):
        while arrivals[i] - arrivals[j] > 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    R.info("flood", "%d pings from 127.0.0.66 in %.2f s: %d answered (%.1f%%), at most %d in any second"
           % (FLOOD_N, elapsed, n, 100.0 * n / FLOOD_N, peak))
    allowed = 2 * (BURST + RATE * (elapsed + 0.5))
    R.check(0 < n <= allowed, "flood: answers to one address are capped",
            "%d of %d answered (cap %d/s, burst %d; at most %d allowed here)" % (n, FLOOD_N, RATE, BURST, allowed))
    R.check(peak <= 2 * (BURST + RATE), "flood: at most %d answers in any one second" % (2 * (BURST + RATE)),
            "peak %d" % peak)
    answered = sum(1 for _, a, _ in by_results if a)
    slow = max((d for _, _, d in by_results), default=0)
    R.check(len(by_results) >= 5 and answered == len(by_results),
            "flood: another address (127.0.0.67) is answered during the flood",
            "%d of %d pings answered (3 tries of 0.3 s each), slowest %.2f s" % (answered, len(by_results), slow))
    # the flooder is not banned for good: its budget refills
    time.sleep(2.5)
    m = None
    for _ in range(3):
        m = fl.ping("ping after flood", timeout=1)
        if m is not None:
            break
    R.check(is_response(m, ctx.node_id, m.get(b"t") if isinstance(m, dict) else None),
            "flood: the flooding address is answered again 2.5 s later", describe(m))


def check_poison(binary, work, name, ip, port, n):
    """A node of its own, bootstrapped through a fake that answers its find_node with one
    node at ip:port (the closest to it, so queried at once). The node must go on answering."""
    b = Fake("127.0.0.%d" % (31 + 2 * n), ("127.0.0.1", 9), "poisoner")
    asker = Fake("127.0.0.%d" % (32 + 2 * n), ("127.0.0.1", 9), "asker")
    proc = None
    try:
        proc = Proc("poison-%d" % n, [binary, "dht", "--listen", "%s:0" % HOST, "--offline", "--json",
                                      "--dht-bootstrap", "%s:%d" % (b.ip, b.port),
                                      "--state-dir", os.path.join(work, "state-poison-%d" % n)],
                    os.path.join(work, "logs"), cwd=work)
        _, ev = proc.wait_event(lambda e: e.get("event") == "dht", 20)
        if ev is None:
            R.fail("poison: %s: the node starts" % name, more=proc.log_tail())
            return
        node = (HOST, ev["port"])
        b.node = asker.node = node
        before = asker.ping("poison ping", timeout=2)
        # the node's bootstrap find_node (it is sent as soon as the node starts)
        q, addr = None, None
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            r, _, _ = select.select([b.s], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            raw, addr = b.s.recvfrom(70000)
            m = decode(raw)
            if isinstance(m, dict) and m.get(b"q") == b"find_node" and isinstance(m.get(b"a"), dict):
                q = m
                break
        if q is None:
            R.fail("poison: %s: the node sends find_node to its bootstrap node" % name)
            return
        nid = q[b"a"].get(b"id", b"\0" * 20)
        odd = nid[:19] + bytes([nid[19] ^ 1]) + compact(ip, port)
        b.s.sendto(bencode({b"t": q.get(b"t", b""), b"y": b"r", b"r": {b"id": b.id, b"nodes": odd}}), addr)
        # the node queries ip:port at once; give it a moment, then it must still answer
        time.sleep(0.5)
        after = None
        for _ in range(3):
            after = asker.ping("poison ping", timeout=1)
            if after is not None:
                break
        R.check(before is not None and after is not None and proc.alive(),
                "poison: a find_node reply naming a node at %s does not cut the node off" % name,
                "answers a ping before: %s, after: %s%s" % (before is not None, after is not None,
                                                            "" if proc.alive() else " (process exited)"))
    finally:
        if proc is not None:
            proc.stop(signal.SIGTERM, 5)
        b.close()
        asker.close()


# ---------------------------------------------------------------------------------------

class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    binary = os.path.abspath(args.webseed)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    fresh_dirs(work, ("state", "logs"))
    random.seed(1)

    ctx = Ctx()
    ctx.fakes = []
    node_proc = None
    responders = []

    wd = Watchdog(150, R).start()

    try:
        # the fake bootstrap node and the fakes it names, bound before the node starts
        placeholder = ("127.0.0.1", 9)
        ctx.b = Fake("127.0.0.9", placeholder, "B")
        ctx.c = Fake("127.0.0.10", placeholder, "C")
        ctx.wrong = Fake("127.0.0.11", placeholder, "wrong-source")
        ctx.d = Fake("127.0.0.12", placeholder, "D")
        ctx.e = Fake("127.0.0.25", placeholder, "E")
        ctx.b_first = threading.Event()
        ctx.node_known = threading.Event()  # the node's port, from its "dht" line
        ctx.b_resp = Responder(ctx.b, bootstrap_handler(ctx))
        ctx.c_resp = Responder(ctx.c, lambda m, raw, addr: [(plain_answer(m, ctx.c.id), ctx.c.s)])
        ctx.d_resp = Responder(ctx.d, lambda m, raw, addr: [])
        ctx.e_resp = Responder(ctx.e, lambda m, raw, addr: [])
        responders = [ctx.b_resp, ctx.c_resp, ctx.d_resp, ctx.e_resp]
        for r in responders:
            r.start()

        argv = [binary, "dht", "--listen", "%s:0" % HOST, "--offline", "--json",
                "--dht-bootstrap", "%s:%d" % (ctx.b.ip, ctx.b.port),
                "--state-dir", os.path.join(work, "state")]
        R.info("node", " ".join(argv))
        node_proc = Proc("node", argv, os.path.join(work, "logs"), cwd=work)
        _, ev = node_proc.wait_event(lambda e: e.get("event") == "dht", 20)
        if not R.check(ev is not None and isinstance(ev.get("port"), int) and ev["port"] > 0,
                       "the node starts and reports its UDP port",
                       "port %s, id %s" % (ev.get("port"), ev.get("node_id")) if ev else "no dht event in 20 s",
                       more=[] if ev else node_proc.log_tail()):
            return
        ctx.node = (HOST, ev["port"])
        ctx.node_id = bytes.fromhex(ev["node_id"])
        ctx.node_known.set()
        for f in (ctx.b, ctx.c, ctx.wrong, ctx.d, ctx.e):
            f.node = ctx.node
        ctx.e.id = near_id(ctx.node_id, 64)   # were it learnt, its bucket would have room
        time.sleep(0.3)
        rss_before = node_proc.status_kb("VmRSS")
        R.info("node idle", "pid %d, VmRSS %s kB" % (node_proc.pid, rss_before))

        peak = {"rss": rss_before or 0}
        mon_stop = threading.Event()

        def monitor():
            while not mon_stop.is_set():
                v = node_proc.status_kb("VmRSS")
                if v:
                    peak["rss"] = max(peak["rss"], v)
                mon_stop.wait(0.2)
        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()

        sections = [("bootstrap", check_bootstrap), ("good", check_good), ("malformed", check_malformed),
                    ("keys", check_keys), ("methods", check_methods), ("tokens", check_tokens),
                    ("oversize", check_oversize), ("unsolicited", check_unsolicited),
                    ("amplify", check_amplification), ("flood", check_flood)]
        for name, fn in sections:
            t0 = time.monotonic()
            try:
                fn(ctx)
            except Exception as ex:  # a harness error is a failed check, and the run goes on
                R.fail("%s: harness error %s: %s" % (name, type(ex).__name__, ex),
                       more=traceback.format_exc().splitlines()[-6:])
            R.info("section %s" % name, "%.2f s" % (time.monotonic() - t0))

        # the end
        last = Fake("127.0.0.30", ctx.node, "final")
        ctx.fakes.append(last)
        m = None
        for _ in range(3):
            m = last.ping("final ping", timeout=1)
            if m is not None:
                break
        R.check(node_proc.alive() and is_response(m, ctx.node_id, m.get(b"t") if isinstance(m, dict) else None),
                "end: the node still answers a ping", describe(m), more=[] if m else node_proc.log_tail())
        mon_stop.set()
        mon.join(2)
        rss_after = node_proc.status_kb("VmRSS")
        R.info("memory", "VmRSS before %s kB, peak %s kB, after %s kB" % (rss_before, peak["rss"], rss_after))
        R.check(rss_after is not None and rss_after < RSS_LIMIT_MB * 1024 and peak["rss"] < RSS_LIMIT_MB * 1024,
                "end: VmRSS stays under %d MB" % RSS_LIMIT_MB,
                "before %.1f MB, peak %.1f MB, after %.1f MB" % ((rss_before or 0) / 1024, peak["rss"] / 1024,
                                                                 (rss_after or 0) / 1024))
        R.check(ctx.d_resp.count() == 0, "end: the node never queried D (named only by a reply from the wrong address)",
                "%d queries" % ctx.d_resp.count())
        R.check(ctx.e_resp.count() == 0, "end: the node never queried E (named only by unsolicited replies)",
                "%d queries" % ctx.e_resp.count())
        worst = max(AMP, default=(0, 0, 0, "none"))
        R.info("amplification", "%d replies matched to queries; worst x%.2f (%d -> %d bytes, %s); largest reply %d bytes"
               % (len(AMP), worst[0], worst[1], worst[2], worst[3], max(REPLY_SIZES, default=0)))
        R.check(len(AMP) > 100 and worst[0] <= MAX_AMPLIFICATION,
                "end: every reply is at most %d x its query" % MAX_AMPLIFICATION,
                "worst x%.2f (%s: %d -> %d bytes)" % (worst[0], worst[3], worst[1], worst[2]))
        R.check(max(REPLY_SIZES, default=0) <= 1500, "end: every reply fits in 1,500 bytes",
                "largest %d bytes" % max(REPLY_SIZES, default=0))
        nq = sum(len(f.node_queries) for f in ctx.fakes)
        R.info("node queries", "queries from the node seen by the fakes while they waited: %d; "
               "B got %d, C got %d" % (nq, ctx.b_resp.count(), ctx.c_resp.count()))
        rc, took = node_proc.stop(signal.SIGTERM, 5)
        R.check(rc == 0, "end: the node exits 0 on SIGTERM", "exit %s after %.2f s" % (rc, took),
                more=[] if rc == 0 else node_proc.log_tail())

        # nodes at addresses a UDP socket cannot send to, each against a node of its own
        for n, (name, ip, port) in enumerate((("127.0.0.1:0 (port 0)", "127.0.0.1", 0),
                                              ("255.255.255.255:6881 (broadcast)", "255.255.255.255", 6881))):
            try:
                check_poison(binary, work, name, ip, port, n)
            except Exception as ex:
                R.fail("poison: harness error %s: %s" % (type(ex).__name__, ex))
    finally:
        for r in responders:
            r.stop.set()
        Proc.kill_all()
        for f in ctx.fakes + [getattr(ctx, k) for k in ("b", "c", "wrong", "d", "e") if hasattr(ctx, k)]:
            try:
                f.close()
            except OSError:
                pass
        wd.cancel()
        print(R.summary(), flush=True)
    sys.exit(1 if R.failed else 0)


if __name__ == "__main__":
    main()
