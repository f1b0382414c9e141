"""Hostile peers written by hand against `webseed seed`, shared by Tools/interop/hostile_peers.py
(which runs each once beside a libtorrent download and checks the outcome) and Tools/soak.py
(which runs them again and again for the whole soak). Every fake peer writes its protocol bytes
by hand (struct.pack), never with webseed's code, and comes from its own loopback address.

A check is a function of one `Ctx`: `ctx.r` (a `Results` its verdicts go to), `ctx.port` (the
seeder's peer port), `ctx.t` (the seeded `Torrent`), `ctx.files` (relative path -> bytes of the
source, for comparing served blocks), `ctx.seeder` (the seeder's `Proc`), and the events
`non_reader_stalled`, `probe_done`, `flood_opened`, `flood_done` (`Ctx.fresh` makes them).
`make_site` writes hostile_peers' site: ~40 files, ~8 MB, the same bytes on every run."""

import errno
import hashlib
import itertools
import os
import random
import select
import socket
import struct
import threading
import time

from .bencode import bdecode, bencode
from .content import write_files
from .peerwire import (BITFIELD, BLOCK, EXTENDED, HASH_REJECT, HASH_REQUEST, HASHES,
                       HAVE_ALL, INTERESTED, PAD, PIECE, PSTR, REJECT, REQUEST, UNCHOKE,
                       Closed, log2, msg, next_pow2)
from .procs import Proc, open_descriptors

HOST = "127.0.0.1"
FLOOD_N = 500


def guarded(name):
    """Run a check function in a thread; an unexpected exception is a failed check."""
    def deco(fn):
        def run(*a, **kw):
            try:
                fn(*a, **kw)
            except Exception as e:  # noqa: BLE001 - reported as a failure
                a[0].r.check(False, name, "exception %s: %s" % (type(e).__name__, e))
        return run
    return deco


# ---------------------------------------------------------------------------------------------
# site and torrent model

def make_site(root):
    """~40 files, ~8 MB, a few of 1-2 MB, nested directories; same bytes on every run."""
    rnd = random.Random(20240601)
    files = {}
    files["index.html"] = b"<!doctype html><title>hostile</title><p>hello</p>\n"
    files["big/video-a.bin"] = rnd.randbytes(2 * 1024 * 1024 - 12345)
    files["big/video-b.bin"] = rnd.randbytes(1536 * 1024 + 7)
    files["big/sub/archive.bin"] = rnd.randbytes(1024 * 1024 + 1)
    files["big/sub/poster.bin"] = rnd.randbytes(1200 * 1024)
    files["edge/one-byte.txt"] = b"x"
    files["edge/one-block.bin"] = rnd.randbytes(BLOCK)
    files["edge/block-plus-one.bin"] = rnd.randbytes(BLOCK + 1)
    dirs = ["assets/css", "assets/js", "assets/img/icons", "docs/a/b/c", "docs", "blog/2024/06"]
    n = 0
    while len(files) < 40:
        d = dirs[n % len(dirs)]
        size = rnd.choice([rnd.randrange(100, 4000), rnd.randrange(4000, 80000),
                           rnd.randrange(80000, 250000)])
        files["%s/file-%02d.dat" % (d, n)] = rnd.randbytes(size)
        n += 1
    write_files(root, files)
    return files


def merkle_layers(leaves, width, pad):
    """All layers of a tree over `leaves` padded to `width` with `pad`, bottom first."""
    layer = list(leaves) + [pad[0]] * (width - len(leaves))
    layers = [layer]
    h = 0
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
        layers.append(layer)
        h += 1
    return layers


# ---------------------------------------------------------------------------------------------
# a peer written by hand

class Timeout(Exception):
    pass


def handshake_bytes(ih20, fast=False, ext=False, v2bit=False, peer_id=None):
    res = bytearray(8)
    if ext:
        res[5] |= 0x10
    if fast:
        res[7] |= 0x04
    if v2bit:
        res[7] |= 0x10
    pid = peer_id or (b"-HP0001-" + os.urandom(6).hex().encode()[:12])
    return PSTR + bytes(res) + ih20 + pid


def request_msg(index, begin, length, mid=REQUEST):
    return msg(mid, struct.pack(">III", index, begin, length))


# Each hand-written peer comes from its own loopback address, as peers on the Internet do: the
# seeder keeps at most 8 handshaken connections per address, and the checks run side by side.
_sources = itertools.count()
_sources_lock = threading.Lock()


def next_source():
    with _sources_lock:
        n = next(_sources) % 60000
        return "127.1.%d.%d" % (n // 250, n % 250 + 1)


class Conn:
    def __init__(self, port, rcvbuf=None, timeout=5.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.bind((next_source(), 0))
        self.s.connect((HOST, port))
        self.buf = bytearray()
        self.received = 0
        self.log = []            # ids of messages read, for details

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, data):
        self.s.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(65536)
        except socket.timeout:
            raise Timeout()
        except (ConnectionResetError, BrokenPipeError):
            raise Closed("reset")
        if not chunk:
            raise Closed("eof")
        self.received += len(chunk)
        self.buf += chunk

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def handshake(self, ih20, deadline, **kw):
        self.send(handshake_bytes(ih20, **kw))
        hs = self.read_exact(68, deadline)
        if hs[:20] != PSTR:
            raise ValueError("bad handshake reply %r" % hs[:20])
        return hs[20:28], hs[28:48], hs[48:68]

    def read_msg(self, deadline):
        n = struct.unpack(">I", self.read_exact(4, deadline))[0]
        if n == 0:
            return None, b""
        if n > 4 * 1024 * 1024:
            raise ValueError("absurd message length %d from seeder" % n)
        body = self.read_exact(n, deadline)
        self.log.append(body[0])
        return body[0], body[1:]

    def wait_for(self, pred, deadline):
        """Read messages until pred(id, payload) is true; returns (id, payload)."""
        while True:
            mid, payload = self.read_msg(deadline)
            if mid is not None and pred(mid, payload):
                return mid, payload

    def wait_closed(self, deadline):
        """True (and how) once the seeder closes; False on deadline. Drains whatever arrives."""
        try:
            while True:
                self._fill(deadline)
                self.buf.clear()
        except Closed as e:
            return True, str(e)
        except Timeout:
            return False, "still open"
        except OSError as e:
            return True, "error %s" % e


# ---------------------------------------------------------------------------------------------
# the seeder process and its /proc figures

class Seeder(Proc):
    """`webseed seed`, with the /proc figures the checks bound."""

    def fds(self):
        """(total, sockets, regular files) open in the seeder, or None once it is gone."""
        f = open_descriptors(self.pid)
        return f and f[:3]


class Monitor(threading.Thread):
    """Samples the seeder's RSS and fd counts every 50 ms."""

    def __init__(self, seeder):
        super().__init__(daemon=True)
        self.seeder = seeder
        self.stop = threading.Event()
        self.max_rss = 0
        self.max_fds = (0, 0, 0)
        self.max_socks = 0

    def run(self):
        while not self.stop.is_set() and self.seeder.alive():
            rss = self.seeder.status_kb("VmRSS")
            if rss:
                self.max_rss = max(self.max_rss, rss)
            f = self.seeder.fds()
            if f:
                if f[0] > self.max_fds[0]:
                    self.max_fds = f
                self.max_socks = max(self.max_socks, f[1])
            self.stop.wait(0.05)


# ---------------------------------------------------------------------------------------------
# the checks

class Ctx:
    """What the checks share (see the module's docstring)."""

    def __init__(self, r=None):
        self.r = r
        self.fresh()

    def fresh(self):
        """New events for one more round of the checks that wait for each other."""
        self.non_reader_stalled = threading.Event()
        self.probe_done = threading.Event()
        self.flood_opened = threading.Event()
        self.flood_done = threading.Event()
        return self


def expect_close_after(ctx, name, setup, payload, limit, handshake_ih=None, **hs):
    """Connect, optionally handshake, send `payload`, expect the seeder to close within `limit` s."""
    c = Conn(ctx.port)
    try:
        if handshake_ih is not None:
            c.handshake(handshake_ih, time.monotonic() + 5, **hs)
        if setup:
            setup(c)
        t0 = time.monotonic()
        if payload:
            c.send(payload)
        closed, how = c.wait_closed(t0 + limit)
        ctx.r.check(closed, name, "%s after %.2f s (%d bytes received)"
                % ("closed (%s)" % how if closed else "NOT closed", time.monotonic() - t0,
                   c.received))
    finally:
        c.close()


@guarded("garbage instead of a handshake: closed")
def check_garbage(ctx):
    rnd = random.Random(7)
    data = bytes([0x55]) + rnd.randbytes(67)
    expect_close_after(ctx, "garbage instead of a handshake: closed", None, data, 3.0)


@guarded("handshake truncated after 30 bytes: closed by the handshake timeout")
def check_truncated(ctx):
    data = handshake_bytes(ctx.t.v1)[:30]
    expect_close_after(ctx, "handshake truncated after 30 bytes: closed by the handshake timeout",
                       None, data, 13.0)


@guarded("handshake with an unknown info hash: closed")
def check_unknown_hash(ctx):
    name = "handshake with an unknown info hash: closed"
    c = Conn(ctx.port)
    try:
        t0 = time.monotonic()
        c.send(handshake_bytes(hashlib.sha1(b"nobody seeds this").digest(), fast=True, ext=True))
        closed, how = c.wait_closed(t0 + 3.0)
        ctx.r.check(closed and c.received == 0, name, "%s after %.2f s, %d bytes received (want 0)"
                % ("closed (%s)" % how if closed else "NOT closed", time.monotonic() - t0,
                   c.received))
    finally:
        c.close()


def make_len_prefix_check(prefix):
    name = "length prefix 0x%08X after the handshake: closed" % prefix

    @guarded(name)
    def run(ctx):
        expect_close_after(ctx, name, None, struct.pack(">I", prefix) + b"\x07" * 64, 5.0,
                           handshake_ih=ctx.t.v1, fast=True, ext=True)
    return run


def bad_requests(ctx):
    t = ctx.t
    pl = t.piece_length
    return [
        ("piece index out of range (= num_pieces %d)" % t.num_pieces, (t.num_pieces, 0, BLOCK)),
        ("piece index 0xFFFFFFFF", (0xFFFFFFFF, 0, BLOCK)),
        ("begin+length past the piece", (0, pl - BLOCK // 2, BLOCK)),
        ("length 32768", (0, 0, 32768)),
        ("length 0", (0, 0, 0)),
    ]


def wait_unchoke(c, deadline):
    try:
        c.wait_for(lambda m, p: m == UNCHOKE, deadline)
        return True
    except Timeout:
        return False


def expected_block(ctx, piece, begin, length):
    """The bytes of (piece, begin, length) from the source files (v2 layout, zero padding)."""
    t = ctx.t
    for rel, flen, _root, first in t.files:
        n = -(-flen // t.piece_length)
        if flen and first <= piece < first + n:
            off = (piece - first) * t.piece_length + begin
            data = ctx.files[rel][off:off + length]
            return data + b"\0" * (length - len(data))
    return None


@guarded("BEP 6 peer: bad requests rejected")
def check_fast_requests(ctx):
    c = Conn(ctx.port)
    try:
        dl = time.monotonic() + 5
        _res, ih, _pid = c.handshake(ctx.t.v1, dl, fast=True, ext=True)
        first = c.wait_for(lambda m, p: m != EXTENDED, dl)[0]
        ctx.r.check(first == HAVE_ALL, "BEP 6 peer: seeder's first message is HAVE ALL",
                "got id %s" % first)
        c.send(msg(INTERESTED))
        unchoked = wait_unchoke(c, time.monotonic() + 10)
        for what, (i, b, n) in bad_requests(ctx):
            c.send(request_msg(i, b, n))
            want = struct.pack(">III", i, b, n)
            try:
                mid, p = c.wait_for(lambda m, p: m in (REJECT, PIECE), time.monotonic() + 5)
                ok = mid == REJECT and p == want
                detail = "REJECT" if ok else "got id %d payload %s" % (mid, p[:12].hex())
            except (Timeout, Closed) as e:
                ok, detail = False, "no REJECT (%s)" % ("timeout" if isinstance(e, Timeout) else
                                                        "connection closed: %s" % e)
            ctx.r.check(ok, "BEP 6 peer: %s -> REJECT" % what, detail)
        # the connection must still serve a valid request
        big = max(ctx.t.files, key=lambda f: f[1])
        piece, begin = big[3] + 1, 0
        c.send(request_msg(piece, begin, BLOCK))
        try:
            mid, p = c.wait_for(lambda m, p: m in (REJECT, PIECE), time.monotonic() + 5)
            good = mid == PIECE and p[:8] == struct.pack(">II", piece, begin) and \
                p[8:] == expected_block(ctx, piece, begin, BLOCK)
            detail = "piece %d block 0 %s%s" % (piece, "matches the source" if good else
                                                  "WRONG (id %d, %d bytes)" % (mid, len(p)),
                                                  "" if unchoked else " (never unchoked)")
        except (Timeout, Closed) as e:
            good, detail = False, "no answer: %s%s" % (type(e).__name__,
                                                       "" if unchoked else " (never unchoked)")
        ctx.r.check(good, "BEP 6 peer: still served after the rejects", detail)
    finally:
        c.close()


@guarded("non-BEP 6 peer: bad requests close the connection")
def check_nonfast_requests(ctx):
    # handshake every connection first, then misbehave on one at a time
    conns = []
    try:
        for what, req in bad_requests(ctx):
            c = Conn(ctx.port)
            conns.append((what, req, c))
            dl = time.monotonic() + 5
            c.handshake(ctx.t.v1, dl)
            first = c.wait_for(lambda m, p: True, dl)
            if len(conns) == 1:
                nbytes = -(-ctx.t.num_pieces // 8)
                full = bytes([0xFF] * (ctx.t.num_pieces // 8)) + \
                    (bytes([(0xFF << (8 - ctx.t.num_pieces % 8)) & 0xFF])
                     if ctx.t.num_pieces % 8 else b"")
                ctx.r.check(first[0] == BITFIELD and first[1] == full and len(full) == nbytes,
                        "non-BEP 6 peer: seeder's first message is a full bitfield",
                        "got id %s, %d bytes" % (first[0], len(first[1])))
        for what, (i, b, n), c in conns:
            c.send(msg(INTERESTED))
            unchoked = wait_unchoke(c, time.monotonic() + 10)
            t0 = time.monotonic()
            c.send(request_msg(i, b, n))
            closed, how = c.wait_closed(t0 + 5)
            ctx.r.check(closed, "non-BEP 6 peer: %s -> connection closed" % what,
                    "%s after %.2f s%s" % ("closed (%s)" % how if closed else "NOT closed",
                                           time.monotonic() - t0,
                                           "" if unchoked else " (was never unchoked)"))
            c.close()
    finally:
        for _w, _r, c in conns:
            c.close()


def hash_req(root, base, index, length, proof):
    return root + struct.pack(">IIII", base, index, length, proof)


@guarded("BEP 52 hash requests")
def check_hash_requests(ctx):
    t = ctx.t
    c = Conn(ctx.port)
    try:
        dl = time.monotonic() + 5
        _res, ih, _pid = c.handshake(t.v2[:20], dl, fast=True, ext=True)
        ctx.r.check(ih == t.v2[:20], "v2 handshake: seeder answers with the truncated v2 hash",
                ih.hex())
        big_rel, big_len, root, _first = max(t.files, key=lambda f: f[1])
        bpp = t.piece_length // BLOCK
        base = log2(bpp)
        npieces = -(-big_len // t.piece_length)
        nblocks = -(-big_len // BLOCK)
        L = log2(next_pow2(nblocks))
        width_pieces = next_pow2(npieces)
        assert big_len > t.piece_length, "largest file fits in one piece (piece length %d)" % \
            t.piece_length

        # our own tree from the source bytes; must agree with the torrent
        data = ctx.files[big_rel]
        leaves = [hashlib.sha256(data[i:i + BLOCK]).digest() for i in range(0, big_len, BLOCK)]
        tree = merkle_layers(leaves, next_pow2(nblocks), PAD)
        layer = t.layers.get(root, b"")
        torrent_layer = [layer[i:i + 32] for i in range(0, len(layer), 32)]
        ctx.r.check(tree[-1][0] == root and tree[base][:npieces] == torrent_layer,
                "torrent's pieces root and piece layer match the source bytes",
                "%s, %d piece hashes" % (big_rel, len(torrent_layer)))

        def ask(req, deadline_s=5):
            c.send(msg(HASH_REQUEST, req))
            return c.wait_for(lambda m, p: m in (HASHES, HASH_REJECT), time.monotonic() + deadline_s)

        bad = [
            ("base layer 40", hash_req(root, 40, 0, 2, 0)),
            ("index past the layer", hash_req(root, base, width_pieces, 2, 0)),
            ("index 0xFFFFFFF0", hash_req(root, base, 0xFFFFFFF0, 2, 0)),
            ("length 0", hash_req(root, base, 0, 0, 0)),
            ("length 100000", hash_req(root, base, 0, 100000, 0)),
            ("proof layers 99", hash_req(root, base, 0, 2, 99)),
            ("unknown pieces root", hash_req(hashlib.sha256(b"unknown").digest(), base, 0, 2, 0)),
        ]
        for what, req in bad:
            try:
                mid, p = ask(req)
                ok = mid == HASH_REJECT and p == req
                detail = "hash reject" if ok else "got id %d, %d bytes" % (mid, len(p))
            except (Timeout, Closed) as e:
                ok, detail = False, "no answer (%s)" % e.__class__.__name__
            ctx.r.check(ok, "hash request, %s -> hash reject with the same header" % what, detail)

        def good(what, index, length, proof, base_layer):
            req = hash_req(root, base_layer, index, length, proof)
            k = (length - 1).bit_length()
            layers = tree[base_layer:]
            want = layers[0][index:index + length]
            want += [PAD[base_layer]] * (length - len(want))
            for j in range(k, proof + 1):
                want.append(layers[j][(index >> j) ^ 1])
            try:
                mid, p = ask(req)
                got = [p[48 + i:48 + i + 32] for i in range(0, len(p) - 48, 32)]
                ok = mid == HASHES and p[:48] == req and got == want
                detail = "%d hashes (%d uncles) match" % (len(want), len(want) - length) if ok \
                    else "got id %d with %d hashes, want %d%s" % (
                        mid, len(got), len(want),
                        "" if mid != HASHES or len(got) != len(want) else
                        ", first difference at #%d" % next(i for i in range(len(want))
                                                           if got[i] != want[i]))
            except (Timeout, Closed) as e:
                ok, detail = False, "no answer (%s)" % e.__class__.__name__
            ctx.r.check(ok, "valid hash request, %s" % what, detail)

        good("piece layer of %s (base %d, %d pieces, length %d, full proof)"
             % (big_rel, base, npieces, width_pieces), 0, width_pieces, L - base - 1, base)
        good("2 piece hashes + uncles up to the root", 2, 2, L - base - 1, base)
        good("leaf layer blocks 4-7 + uncles up to the root", 4, 4, L - 1, 0)
    finally:
        c.close()


@guarded("ut_metadata")
def check_ut_metadata(ctx):
    t = ctx.t
    c = Conn(ctx.port)
    try:
        dl = time.monotonic() + 5
        c.handshake(t.v1, dl, ext=True, fast=True)
        c.send(msg(EXTENDED, b"\x00" + bencode({"m": {"ut_metadata": 3}, "v": "hostile 0.1"})))
        _mid, p = c.wait_for(lambda m, p: m == EXTENDED and p[:1] == b"\x00", dl)
        hs, _ = bdecode(p, 1)
        their = hs.get(b"m", {}).get(b"ut_metadata")
        ctx.r.check(bool(their) and hs.get(b"metadata_size") == len(t.info_bytes),
                "ut_metadata: extension handshake advertises it with metadata_size",
                "ut_metadata id %s, metadata_size %s, info dict %d bytes"
                % (their, hs.get(b"metadata_size"), len(t.info_bytes)))
        if not their:
            return

        def ask(piece):
            c.send(msg(EXTENDED, bytes([their]) + bencode({"msg_type": 0, "piece": piece})))
            _m, p = c.wait_for(lambda m, p: m == EXTENDED and p[:1] == b"\x03",
                               time.monotonic() + 5)
            d, end = bdecode(p, 1)
            return d, p[end:]

        try:
            d, tailb = ask(0)
            want = t.info_bytes[:BLOCK]
            ok = d.get(b"msg_type") == 1 and d.get(b"piece") == 0 and \
                d.get(b"total_size") == len(t.info_bytes) and tailb == want
            detail = "total_size %s, %d bytes%s" % (d.get(b"total_size"), len(tailb),
                                                     " match the info dict" if ok else
                                                     " (dict %r)" % d)
        except (Timeout, Closed) as e:
            ok, detail = False, "no answer (%s)" % e.__class__.__name__
        ctx.r.check(ok, "ut_metadata: piece 0 is the info dict", detail)
        try:
            d, tailb = ask(9999)
            ok = d.get(b"msg_type") == 2 and d.get(b"piece") == 9999 and not tailb
            detail = "dict %r, %d trailing bytes" % (d, len(tailb))
        except (Timeout, Closed) as e:
            ok, detail = False, "no answer (%s)" % e.__class__.__name__
        ctx.r.check(ok, "ut_metadata: piece 9999 -> reject (msg_type 2)", detail)
    finally:
        c.close()


def probe(ctx, name):
    """A well-behaved peer: handshake, interested, one block, within bounded time."""
    t0 = time.monotonic()
    c = Conn(ctx.port)
    try:
        dl = time.monotonic() + 5
        c.handshake(ctx.t.v1, dl, fast=True)
        hs_t = time.monotonic() - t0
        c.send(msg(INTERESTED))
        big = max(ctx.t.files, key=lambda f: f[1])
        piece = big[3] + 3
        c.wait_for(lambda m, p: m == UNCHOKE, dl + 5)
        c.send(request_msg(piece, 0, BLOCK))
        mid, p = c.wait_for(lambda m, p: m in (PIECE, REJECT), time.monotonic() + 5)
        ok = mid == PIECE and p[8:] == expected_block(ctx, piece, 0, BLOCK)
        ctx.r.check(ok, name, "handshake answered in %.2f s, block %s after %.2f s"
                % (hs_t, "correct" if ok else "NOT served (id %d)" % mid, time.monotonic() - t0))
    except (Timeout, Closed, OSError) as e:
        ctx.r.check(False, name, "%s after %.2f s" % (e.__class__.__name__ + (" " + str(e) if str(e)
                                                                              else ""),
                                                   time.monotonic() - t0))
    finally:
        c.close()


@guarded("peer that never reads")
def check_non_reader(ctx):
    name = "peer that never reads (200 requests, SO_RCVBUF 4096, 10 s)"
    c = Conn(ctx.port, rcvbuf=4096)
    try:
        dl = time.monotonic() + 5
        c.handshake(ctx.t.v1, dl)
        c.send(msg(INTERESTED))
        unchoked = wait_unchoke(c, time.monotonic() + 10)
        reqs = []
        for rel, flen, _root, first in sorted(ctx.t.files, key=lambda f: -f[1]):
            for off in range(0, flen - BLOCK + 1, BLOCK):
                p, b = divmod(off, ctx.t.piece_length)
                reqs.append(request_msg(first + p, b, BLOCK))
                if len(reqs) == 200:
                    break
            if len(reqs) == 200:
                break
        c.s.setblocking(False)
        data = b"".join(reqs)
        sent = 0
        t_stall = time.monotonic()
        ctx.non_reader_stalled.set()
        # never read again; keep the requests going in as far as the seeder takes them
        while time.monotonic() < t_stall + 10:
            if sent < len(data):
                try:
                    sent += c.s.send(data[sent:])
                except BlockingIOError:
                    pass
                except OSError:
                    break
            if not ctx.probe_done.is_set() and time.monotonic() > t_stall + 1.5:
                probe(ctx, "well-behaved peer served while another peer stalls its reads")
                ctx.probe_done.set()
            time.sleep(0.05)
        tcp_state = c.s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        states = {1: "still open", 7: "reset by the seeder", 8: "closed by the seeder"}
        ctx.r.check(ctx.seeder.alive(), name, "seeder alive; %d/%d request bytes accepted; %s; "
                "connection %s" % (sent, len(data), "unchoked" if unchoked else "NEVER unchoked",
                                   states.get(tcp_state, "in TCP state %d" % tcp_state)))
    finally:
        ctx.probe_done.set()
        c.close()


@guarded("500 connections that never handshake")
def check_flood(ctx):
    name = "%d connections that never handshake: all closed by the seeder" % FLOOD_N
    socks = []
    poller = select.poll()
    state = {}               # fd -> [sock, t_open, t_connected, t_closed, how]
    t_start = time.monotonic()
    for _ in range(FLOOD_N):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((HOST, ctx.port))
        now = time.monotonic()
        st = [s, now, None, None, None]
        if err == 0:
            st[2] = now
            poller.register(s.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        elif err == errno.EINPROGRESS:
            poller.register(s.fileno(), select.POLLOUT | select.POLLIN | select.POLLERR |
                            select.POLLHUP)
        else:
            st[3], st[4] = now, "connect error %s" % errno.errorcode.get(err, err)
        state[s.fileno()] = st
        socks.append(s)
    t_opened = time.monotonic()
    ctx.flood_opened.set()
    deadline = t_opened + 15
    open_n = sum(1 for st in state.values() if st[3] is None)
    probe_started = False
    while open_n and time.monotonic() < deadline:
        if not probe_started and time.monotonic() > t_opened + 1.0:
            probe_started = True
            threading.Thread(target=guarded("probe during flood")(probe), daemon=True,
                             args=(ctx, "well-behaved peer served while %d idle connections are "
                                        "open" % FLOOD_N)).start()
        for fd, ev in poller.poll(200):
            st = state[fd]
            if st[3] is not None:
                continue
            s = st[0]
            if st[2] is None and ev & select.POLLOUT:
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    st[3], st[4] = time.monotonic(), "connect error %s" % errno.errorcode.get(e, e)
                    poller.unregister(fd)
                    open_n -= 1
                    continue
                st[2] = time.monotonic()
                poller.modify(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
                if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    continue
            try:
                chunk = s.recv(4096)
                if chunk:
                    st.append(len(chunk))
                    continue
                how = "eof"
            except BlockingIOError:
                continue
            except OSError as e:
                how = "reset" if e.errno == errno.ECONNRESET else str(e)
            st[3], st[4] = time.monotonic(), how
            poller.unregister(fd)
            open_n -= 1
    for s in socks:
        s.close()
    lifetimes = sorted(st[3] - st[1] for st in state.values() if st[3] is not None)
    connect_errors = sum(1 for st in state.values() if (st[4] or "").startswith("connect"))
    never_connected = sum(1 for st in state.values() if st[2] is None)
    got_data = sum(1 for st in state.values() if len(st) > 5)
    fast_n = sum(1 for x in lifetimes if x < 2)
    timeout_n = sum(1 for x in lifetimes if 8 <= x <= 13)
    detail = ("opened in %.2f s; closed %d/%d (%d within 2 s = displaced, %d at 8-13 s = handshake "
              "timeout, longest %.2f s); still open at the deadline: %d; connect errors %d, "
              "never connected %d; %d got bytes"
              % (t_opened - t_start, len(lifetimes), FLOOD_N, fast_n, timeout_n,
                 lifetimes[-1] if lifetimes else 0, open_n, connect_errors, never_connected,
                 got_data))
    ctx.r.check(open_n == 0 and connect_errors == 0 and never_connected == 0 and
            lifetimes and lifetimes[-1] <= 13.5, name, detail)
    ctx.flood_done.set()
