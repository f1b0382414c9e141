#!/usr/bin/python3
"""Lying peers against `webseed get`: each lie is told by a fake peer written by hand from the
protocol (BEP 3, 6, 9, 10, 52), next to an honest `webseed seed`; the download must still
complete, byte-identical, and webseed must ban the liar.

  /usr/bin/python3 Tools/interop/get_liars.py --webseed .build/debug/webseed --work /tmp/liars
  /usr/bin/python3 Tools/interop/get_liars.py --webseed … --work … --self-test
      (only the fake peer against libtorrent: honest mode must serve it, each lie must be
       caught by it; needs no `webseed get`)

Loopback only. The fake peer listens on its own address (127.0.0.5, .6, .7, .8: webseed bans
by IP) and has every piece (have-all, unchoked at once, answers at once). The honest seeder is
reached through a relay on 127.0.0.1 that holds each connection until the liar has told its
lie (at most GATE_MAX s), so that webseed is certain to ask the liar first and no case can
pass without the lie having been told; the relay then passes bytes both ways untouched.

Cases (one `webseed get --json --exit-when-done` each, fresh -o and --state-dir):
  corrupt-blocks   .torrent; every PIECE the liar sends has one byte flipped
  wrong-hashes     magnet; the liar serves the true metadata but answers every BEP 52 hash
                   request with one hash changed (the proof no longer leads to the root)
  wrong-metadata   magnet; the liar serves an info dict of the same size that is not the one
                   the magnet names (one byte of a pieces root changed)
  unrequested      .torrent; on its first request the liar first sends a garbage PIECE for a
                   piece nobody asked it for; webseed must drop the connection (BEP 6:
                   grounds for closing) and never write the garbage
Each: the liar was asked (request / hash request / metadata request), exit 0 with a complete
event, the tree is byte-identical (webseedtest/trees.py compare_tree), a peer_banned event names the
liar's address (for unrequested: banned or closed), and the honest seeder is never banned.

Prints `ok …` / `FAIL …` / `info …` lines and last `N passed, M failed`; exits 1 on failure.
"""

import argparse
import hashlib
import os
import random
import shutil
import socket
import struct
import sys
import threading
import time

from webseedtest.bencode import bdecode, bencode
from webseedtest.content import write_files
from webseedtest.launchers import honest_seeder, lt_leech_argv
from webseedtest.peerwire import (BITFIELD, BLOCK, EXTENDED, HASH_REJECT, HASH_REQUEST, HASHES,
                                  HAVE_ALL, INTERESTED, PAD, PIECE, PSTR, REJECT, REQUEST, UNCHOKE,
                                  Closed, log2, msg, next_pow2)
from webseedtest.procs import Proc, run
from webseedtest.relay import TcpRelay
from webseedtest.tcpserver import TcpServer
from webseedtest.results import Results
from webseedtest.torrent import Torrent
from webseedtest.trees import compare_tree
from webseedtest.watchdog import Watchdog

GATE_MAX = 8.0              # the honest seeder is held back at most this long per case
OUR_UT_METADATA = 3         # the id webseed must use to send ut_metadata to the fake peer


R = Results()


# ---------------------------------------------------------------------------------------------
# the torrent, the source bytes and their Merkle trees


class Source(Torrent):
    """A .torrent and the directory holding its files: what a seeder knows, computed here from
    the bytes (every file's full Merkle tree) and checked against the torrent's pieces roots and
    piece layers."""

    def __init__(self, torrent_path, data_dir):
        super().__init__(torrent_path)
        self.bpp = self.piece_length // BLOCK
        self.piece_base = log2(self.bpp)
        self.trees = {}        # root -> [layer 0 (leaves), layer 1, ..., [root]]
        self.problems = []
        files = []             # (rel, length, root, first_piece, data)
        for rel, length, root, first in self.files:
            with open(os.path.join(data_dir, rel), "rb") as f:
                data = f.read()
            if len(data) != length:
                self.problems.append("%s: %d bytes on disk, %d in the torrent" % (rel, len(data), length))
            files.append((rel, length, root, first, data))
        self.files = files
        self.by_piece = {}
        for f in self.files:
            rel, length, root, first, data = f
            if not length:
                continue
            for p in range(first, first + -(-length // self.piece_length)):
                self.by_piece[p] = f
            leaves = [hashlib.sha256(data[o:o + BLOCK]).digest() for o in range(0, length, BLOCK)]
            width = next_pow2(len(leaves))
            layer = leaves + [PAD[0]] * (width - len(leaves))
            tree = [layer]
            while len(layer) > 1:
                layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest()
                         for i in range(0, len(layer), 2)]
                tree.append(layer)
            if tree[-1][0] != root:
                self.problems.append("%s: Merkle root of the bytes differs from the torrent's "
                                     "pieces root" % rel)
            if length > self.piece_length:
                want = b"".join(tree[self.piece_base][:-(-length // self.piece_length)])
                if self.layers.get(root) != want:
                    self.problems.append("%s: piece layer differs from the torrent's" % rel)
            self.trees[root] = tree

    def block(self, index, begin, length):
        """Bytes of (piece, begin, length) in the v2 layout (zeros past a file's end), or None
        when the range is not inside one piece."""
        f = self.by_piece.get(index)
        if f is None or length <= 0 or length > BLOCK or begin < 0 or \
                begin + length > self.piece_length:
            return None
        off = (index - f[3]) * self.piece_length + begin
        data = f[4][off:off + length]
        return data + b"\0" * (length - len(data))

    def hashes(self, root, base, index, length, proof):
        """The BEP 52 answer to a hash request (base hashes, then uncles bottom-up; PROTOCOL.md
        §2.7), or None when it must be rejected."""
        tree = self.trees.get(root)
        if tree is None:
            return None
        L = len(tree) - 1
        if not (base < L and 1 <= length <= 8192 and index + length <= len(tree[base])
                and proof <= L - base - 1):
            return None
        out = list(tree[base][index:index + length])
        out += [PAD[base]] * (length - len(out))
        k = (length - 1).bit_length()
        for j in range(k, proof + 1):
            layer = tree[base + j]
            out.append(layer[(index >> j) ^ 1])
        return out

    def magnet(self, peers=()):
        xt = []
        if self.v1:
            xt.append("xt=urn:btih:" + self.v1.hex())
        xt.append("xt=urn:btmh:1220" + self.v2.hex())
        return "magnet:?" + "&".join(xt) + "&dn=" + self.name + "".join(
            "&x.pe=%s" % p for p in peers)


def make_site(root, seed=20250114):
    """20 files, 8 of them 200-600 KB, nested directories; the same bytes on every run."""
    rnd = random.Random(seed)
    files = {"index.html": b"<!doctype html><title>liars</title><p>hello</p>\n"}
    big = ["media/a.bin", "media/b.bin", "media/sub/c.bin", "js/app.js", "js/vendor.js",
           "css/site.css", "img/hero.jpg", "img/team.jpg"]
    for rel in big:
        files[rel] = rnd.randbytes(rnd.randrange(200_000, 600_001))
    small_dirs = ["", "css", "js", "img/icons", "docs/a/b", "docs"]
    n = 0
    while len(files) < 20:
        d = small_dirs[n % len(small_dirs)]
        size = rnd.choice([rnd.randrange(1, 2000), rnd.randrange(2000, 40_000), BLOCK,
                           BLOCK + 1, 2 * BLOCK])
        files[(d + "/" if d else "") + "page-%02d.dat" % n] = rnd.randbytes(size)
        n += 1
    write_files(root, files)
    return files


# ---------------------------------------------------------------------------------------------
# the fake peer

class Wire:
    def __init__(self, sock, stop):
        self.s = sock
        self.stop = stop
        self.buf = bytearray()
        self.s.settimeout(0.25)

    def read_exact(self, n, deadline=None):
        while len(self.buf) < n:
            if self.stop.is_set():
                raise Closed("stopped")
            if deadline is not None and time.monotonic() > deadline:
                raise Closed("timeout")
            try:
                chunk = self.s.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("eof")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_msg(self):
        n = struct.unpack(">I", self.read_exact(4))[0]
        if n == 0:
            return None, b""
        if n > (1 << 20):
            raise Closed("message length %d" % n)
        body = self.read_exact(n)
        return body[0], body[1:]

    def send(self, data):
        self.s.settimeout(10)
        try:
            self.s.sendall(data)
        except OSError as e:
            raise Closed(str(e))
        finally:
            self.s.settimeout(0.25)


class FakePeer(TcpServer):
    """Listens on HOST:0 and serves every connection for one torrent. Modes:
      honest       serves metadata, hashes and pieces truthfully
      corrupt      every PIECE has one byte flipped
      wronghash    every HASHES answer has its first hash changed
      badmeta      serves an info dict of the same size that does not match the info hash
      unrequested  on the first request of a connection, first sends a garbage PIECE for a
                   piece that was not requested on it
      silent       answers the BT handshake, then says nothing
    `lied` is set once the mode's lie has been sent (for honest: once anything was served)."""

    MODES = ("honest", "corrupt", "wronghash", "badmeta", "unrequested", "silent")

    def __init__(self, host, src, mode, log_path):
        assert mode in self.MODES
        self.host = host
        self.src = src
        self.mode = mode
        self.lied = threading.Event()
        self.n = {k: 0 for k in ("connections", "handshakes", "wrong_hash_handshakes", "requests",
                                 "pieces_sent", "rejects_sent", "hash_requests", "hashes_sent",
                                 "hash_rejects_sent", "metadata_requests", "metadata_sent",
                                 "unrequested_sent", "closed_by_remote", "interested")}
        self.handshake_kinds = set()
        self.log_f = open(log_path, "w", buffering=1)
        self.t0 = time.monotonic()
        meta = src.info_bytes
        if mode == "badmeta":
            i = meta.index(b"11:pieces root32:") + len(b"11:pieces root32:")
            meta = meta[:i] + bytes([meta[i] ^ 0xFF]) + meta[i + 1:]
            assert len(meta) == len(src.info_bytes) and meta != src.info_bytes
        self.metadata = meta
        super().__init__(host)

    def count(self, key, k=1):
        with self.lock:
            self.n[key] += k
            return self.n[key]

    def log(self, text):
        with self.lock:
            try:
                self.log_f.write("%.3f %s\n" % (time.monotonic() - self.t0, text))
            except ValueError:
                pass

    def stop(self):
        super().stop()
        with self.lock:
            self.log_f.close()

    def summary(self):
        with self.lock:
            keys = ["connections", "handshakes", "requests", "pieces_sent", "hash_requests",
                    "hashes_sent", "metadata_requests", "metadata_sent", "unrequested_sent",
                    "closed_by_remote"]
            return ", ".join("%s %d" % (k.replace("_", " "), self.n[k]) for k in keys if self.n[k])

    def serve(self, s, addr):
        self.count("connections")
        who = "%s:%d" % addr
        w = Wire(s, self.stop_ev)
        try:
            self._session(w, who)
        except Closed as e:
            if str(e) in ("eof",) or "reset" in str(e).lower():
                self.count("closed_by_remote")
            self.log("%s closed: %s" % (who, e))
        except Exception as e:  # noqa: BLE001 - a bug in the fake peer must show in its log
            self.log("%s fake peer error %s: %s" % (who, type(e).__name__, e))
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _session(self, w, who):
        src = self.src
        hs = w.read_exact(68, time.monotonic() + 10)
        if hs[:20] != PSTR:
            self.log("%s: not a BitTorrent handshake: %s" % (who, hs[:20].hex()))
            return
        reserved, ih = hs[20:28], hs[28:48]
        if ih == src.v2[:20]:
            kind, reply_ih, v2conn = "v2", src.v2[:20], True
        elif src.v1 and ih == src.v1:
            if reserved[7] & 0x10:
                kind, reply_ih, v2conn = "v1+upgrade", src.v2[:20], True
            else:
                kind, reply_ih, v2conn = "v1", src.v1, False
        else:
            self.count("wrong_hash_handshakes")
            self.log("%s: unknown info hash %s" % (who, ih.hex()))
            return
        self.count("handshakes")
        with self.lock:
            self.handshake_kinds.add(kind)
        fast = bool(reserved[7] & 0x04)
        ext = bool(reserved[5] & 0x10)
        self.log("%s: handshake %s, reserved %s (fast %s, ext %s); answering with the %s hash"
                 % (who, kind, reserved.hex(), fast, ext, "v2" if v2conn else "v1"))
        ours = bytearray(8)
        ours[5] |= 0x10
        ours[7] |= 0x04
        w.send(PSTR + bytes(ours) + reply_ih + b"-LY0001-" + os.urandom(6).hex().encode())
        if self.mode == "silent":
            while True:
                w.read_exact(1)
                w.buf.clear()
        their_ut = None
        if ext:
            w.send(msg(EXTENDED, b"\0" + bencode({
                "m": {"ut_metadata": OUR_UT_METADATA}, "metadata_size": len(self.metadata),
                "v": "get_liars %s" % self.mode, "reqq": 2000, "upload_only": 1})))
        if fast:
            w.send(msg(HAVE_ALL))
        else:
            nbytes = -(-src.num_pieces // 8)
            bits = bytearray(b"\xff" * nbytes)
            if src.num_pieces % 8:
                bits[-1] = (0xFF << (8 - src.num_pieces % 8)) & 0xFF
            w.send(msg(BITFIELD, bytes(bits)))
        w.send(msg(UNCHOKE))
        requested = set()
        sent_unrequested = False
        while True:
            mid, p = w.read_msg()
            if mid is None:
                continue
            if mid == INTERESTED:
                self.count("interested")
                w.send(msg(UNCHOKE))
            elif mid == REQUEST and len(p) == 12:
                index, begin, length = struct.unpack(">III", p)
                n = self.count("requests")
                if n <= 5:
                    self.log("%s: request %d %d %d" % (who, index, begin, length))
                requested.add(index)
                if self.mode == "unrequested" and not sent_unrequested:
                    other = next(j for j in ((index + src.num_pieces // 2 + k) % src.num_pieces
                                             for k in range(src.num_pieces))
                                 if j not in requested)
                    garbage = bytes([0xA5]) * BLOCK
                    w.send(msg(PIECE, struct.pack(">II", other, 0) + garbage))
                    sent_unrequested = True
                    self.count("unrequested_sent")
                    self.log("%s: sent an unrequested PIECE %d (garbage)" % (who, other))
                    self.lied.set()
                data = src.block(index, begin, length)
                if data is None:
                    if fast:
                        w.send(msg(REJECT, p))
                        self.count("rejects_sent")
                    continue
                if self.mode == "corrupt":
                    k = (index * 7919 + begin) % len(data)
                    data = data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:]
                w.send(msg(PIECE, struct.pack(">II", index, begin) + data))
                self.count("pieces_sent")
                if self.mode in ("corrupt", "honest"):
                    self.lied.set()
            elif mid == HASH_REQUEST and len(p) == 48:
                root = p[:32]
                base, index, length, proof = struct.unpack(">IIII", p[32:])
                n = self.count("hash_requests")
                if n <= 10:
                    self.log("%s: hash request root %s.. base %d index %d length %d proof %d"
                             % (who, root[:4].hex(), base, index, length, proof))
                hashes = src.hashes(root, base, index, length, proof) if v2conn else None
                if hashes is None:
                    w.send(msg(HASH_REJECT, p))
                    self.count("hash_rejects_sent")
                    self.log("%s: hash reject" % who)
                    continue
                if self.mode == "wronghash":
                    hashes[0] = bytes([hashes[0][0] ^ 0xFF]) + hashes[0][1:]
                w.send(msg(HASHES, p + b"".join(hashes)))
                self.count("hashes_sent")
                if self.mode in ("wronghash", "honest"):
                    self.lied.set()
            elif mid == EXTENDED and p[:1] == b"\0":
                try:
                    d, _ = bdecode(p, 1)
                    their_ut = d.get(b"m", {}).get(b"ut_metadata")
                    self.log("%s: extension handshake, their ut_metadata id %s, v %r"
                             % (who, their_ut, d.get(b"v")))
                except (ValueError, AttributeError) as e:
                    self.log("%s: bad extension handshake: %s" % (who, e))
            elif mid == EXTENDED and p[:1] == bytes([OUR_UT_METADATA]):
                d, _ = bdecode(p, 1)
                if d.get(b"msg_type") != 0:
                    continue
                piece = d.get(b"piece", -1)
                self.count("metadata_requests")
                self.log("%s: metadata request piece %s" % (who, piece))
                if not their_ut:
                    self.log("%s: metadata request without a ut_metadata id of theirs" % who)
                    continue
                if not isinstance(piece, int) or piece < 0 or piece * BLOCK >= len(self.metadata):
                    w.send(msg(EXTENDED, bytes([their_ut]) + bencode(
                        {"msg_type": 2, "piece": piece if isinstance(piece, int) else 0})))
                    continue
                w.send(msg(EXTENDED, bytes([their_ut]) + bencode(
                    {"msg_type": 1, "piece": piece, "total_size": len(self.metadata)})
                    + self.metadata[piece * BLOCK:(piece + 1) * BLOCK]))
                self.count("metadata_sent")
                if self.mode in ("badmeta", "honest"):
                    self.lied.set()
            # everything else (have, not interested, cancel, other extensions, ...) is ignored


# ---------------------------------------------------------------------------------------------
# the relay that holds the honest seeder back until the liar has lied

class GatedRelay(TcpRelay):
    """Listens on 127.0.0.1:0 and relays each connection to the honest seeder once `gate` is
    set, or GATE_MAX s after the relay started, whichever comes first."""

    def __init__(self, upstream, gate, gate_max=GATE_MAX):
        self.gate = gate
        self.t0 = time.monotonic()
        self.deadline = self.t0 + gate_max
        self.released = None        # (seconds after start, "lie told" | "gate timeout")
        super().__init__(upstream)

    def before_upstream(self):
        while not self.stop_ev.is_set():
            left = self.deadline - time.monotonic()
            if self.gate.is_set() or left <= 0:
                break
            self.gate.wait(min(left, 0.2))
        if self.stop_ev.is_set():
            return False
        with self.lock:
            if self.released is None:
                self.released = (time.monotonic() - self.t0,
                                 "lie told" if self.gate.is_set() else "gate timeout")
        return True


# ---------------------------------------------------------------------------------------------
# cases

CASES = [
    # key, liar ip, mode, source, what the liar must have been asked, title
    ("corrupt-blocks", "127.0.0.5", "corrupt", "torrent", "requests",
     "(a) corrupt blocks (one byte flipped in every PIECE)"),
    ("wrong-hashes", "127.0.0.6", "wronghash", "magnet", "hash_requests",
     "(b) wrong hashes (every hash answer has one hash changed)"),
    ("wrong-metadata", "127.0.0.7", "badmeta", "magnet", "metadata_requests",
     "(c) metadata that does not match the info hash"),
    ("unrequested", "127.0.0.8", "unrequested", "torrent", "unrequested_sent",
     "(d) a garbage PIECE that was never requested"),
]


def addr_is(address, ip):
    return isinstance(address, str) and (address == ip or address.startswith(ip + ":"))


def run_case(ctx, key, ip, mode, source_kind, asked_key, title):
    cdir = os.path.join(ctx.work, "cases", key)
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(cdir)
    out = os.path.join(cdir, "out")
    state = os.path.join(cdir, "state")
    liar = relay = p = None
    print("-- %s" % title, flush=True)
    try:
        liar = FakePeer(ip, ctx.src, mode, os.path.join(cdir, "liar.log"))
        relay = GatedRelay(("127.0.0.1", ctx.seed_port), liar.lied)
        source = ctx.torrent if source_kind == "torrent" else ctx.src.magnet()
        argv = [ctx.ws, "get", source, "-o", out, "--peer", liar.address, "--peer", relay.address,
                "--listen", "127.0.0.1:0", "--offline", "--state-dir", state, "--json",
                "--exit-when-done", "--timeout", "30"]
        t0 = time.monotonic()
        p = Proc("get-" + key, argv, cdir, cwd=cdir,
                 env=dict(os.environ, HOME=os.path.join(cdir, "home")))
        rc = p.wait(120)
        took = time.monotonic() - t0
        p.end()
        events = [e for _t, e in p.events]
        asked = liar.n[asked_key]
        what = {"requests": "block requests", "hash_requests": "hash requests",
                "metadata_requests": "metadata requests",
                "unrequested_sent": "unrequested pieces sent"}[asked_key]
        R.check(asked > 0, "%s: the liar was asked (%s > 0)" % (key, what),
                "%s; honest seeder released after %s" % (
                    liar.summary() or "nothing at all",
                    "%.2f s (%s)" % relay.released if relay.released else "never"),
                more=[] if asked else p.log_tail(8))
        complete = [e for e in events if e.get("event") == "complete"]
        R.check(rc == 0 and complete, "%s: webseed get exits 0 with a complete event" % key,
                "exit %s after %.2f s%s" % (rc, took, "" if complete else ", no complete event"),
                more=[] if rc == 0 and complete else p.log_tail(12))
        ok, summary, problems = compare_tree(ctx.site, out)
        R.check(ok, "%s: downloaded tree is byte-identical to the source" % key, summary,
                more=problems[:8])
        banned = [e for e in events if e.get("event") == "peer_banned"]
        liar_banned = [e for e in banned if addr_is(e.get("address"), ip)]
        if mode == "unrequested":
            closed = [e for e in events if e.get("event") == "peer_closed"
                      and addr_is(e.get("address"), ip)]
            R.check(liar_banned or closed,
                    "%s: the liar is banned or disconnected (peer_banned / peer_closed naming %s)"
                    % (key, ip),
                    "; ".join("%s: %s" % (e["event"], e.get("reason")) for e in
                              (liar_banned or closed)[:2]) or
                    "events for it: %s" % [e for e in events if addr_is(e.get("address"), ip)][:4])
        else:
            R.check(liar_banned, "%s: a peer_banned event names the liar %s" % (key, ip),
                    "reason: %r" % liar_banned[0].get("reason") if liar_banned else
                    "peer_banned events: %s; events naming the liar: %s" % (
                        banned[:3], [e for e in events if addr_is(e.get("address"), ip)][:4]))
        honest_banned = [e for e in banned if addr_is(e.get("address"), "127.0.0.1")]
        R.check(not honest_banned, "%s: the honest seeder (127.0.0.1) is not banned" % key,
                "%s" % honest_banned[:2] if honest_banned else "")
        R.info("%s" % key, "liar: %s; relay: %d connections, %d bytes from the seeder"
               % (liar.summary(), relay.connections, relay.bytes_down))
    except Exception as e:  # noqa: BLE001 - reported as a failure
        R.fail("%s: case ran" % key, "exception %s: %s" % (type(e).__name__, e))
    finally:
        if p is not None:
            p.end()
        if liar is not None:
            liar.stop()
        if relay is not None:
            relay.stop()


def lt_leech(ctx, name, liar_mode, ip, source_kind, timeout):
    """libtorrent (ltpeer.py leech) downloads from the fake peer alone; returns (summary
    dict or None, leecher Proc, fake peer)."""
    cdir = os.path.join(ctx.work, "selftest", name)
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(cdir)
    liar = FakePeer(ip, ctx.src, liar_mode, os.path.join(cdir, "fakepeer.log"))
    p = None
    try:
        argv = lt_leech_argv(ctx.src.magnet() if source_kind == "magnet" else ctx.torrent,
                             os.path.join(cdir, "dl"), timeout, os.path.join(cdir, "libtorrent.log"),
                             [liar.address], ["--resume-on-inconsistent-hashes", "3"])
        p = Proc("leech", argv, cdir)
        p.wait(timeout + 30)
        p.end()
        summaries = [e for _t, e in p.events if e.get("event") in ("finished", "error", "timeout")]
        return (summaries[-1] if summaries else None), p, liar, os.path.join(cdir, "dl")
    finally:
        if p is not None:
            p.end()
        liar.stop()


def self_test(ctx, lies_too):
    """The fake peer's honest mode serves libtorrent from a magnet (metadata, hash requests,
    pieces); with lies_too, libtorrent must catch each lie."""
    s, p, fp, dl = lt_leech(ctx, "honest", "honest", "127.0.0.9", "magnet", 60)
    ok = s is not None and s.get("event") == "finished"
    same, summary, problems = compare_tree(ctx.site, os.path.join(dl, ctx.src.name)) if ok else \
        (False, "", [])
    R.check(ok and same and fp.n["metadata_sent"] and fp.n["hashes_sent"] and fp.n["pieces_sent"],
            "self-test: the fake peer (honest mode) serves libtorrent from a magnet "
            "(metadata, hash requests, pieces), files identical",
            "%s; fake peer: %s; handshakes %s" % (summary if ok else s, fp.summary(),
                                                  sorted(fp.handshake_kinds)),
            more=problems[:5] + ([] if ok else p.log_tail(6)))
    if not lies_too:
        return
    s, p, fp, _ = lt_leech(ctx, "corrupt", "corrupt", "127.0.0.10", "torrent", 8)
    R.check(s is not None and s.get("hash_failures", 0) > 0 and s.get("event") != "finished",
            "self-test: libtorrent sees hash failures from the corrupt mode",
            "%s; fake peer: %s" % (s, fp.summary()))
    s, p, fp, dl = lt_leech(ctx, "wronghash", "wronghash", "127.0.0.11", "magnet", 8)
    with open(os.path.join(os.path.dirname(dl), "libtorrent.log"), errors="replace") as f:
        invalid = f.read().count("invalid hashes")
    R.check(s is not None and s.get("event") != "finished" and fp.n["hashes_sent"] > 0 and
            invalid > 0, "self-test: libtorrent rejects the wrong-hashes mode's answers",
            "%d 'invalid hashes' errors in its log; %s; fake peer: %s" % (invalid, s, fp.summary()))
    s, p, fp, _ = lt_leech(ctx, "badmeta", "badmeta", "127.0.0.12", "magnet", 8)
    R.check(s is not None and not s.get("metadata") and fp.n["metadata_sent"] > 0,
            "self-test: libtorrent rejects the wrong metadata",
            "%s; fake peer: %s" % (s, fp.summary()))


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--piece-length", default="16384")
    ap.add_argument("--only", action="append", default=[], help="run only these cases")
    ap.add_argument("--self-test", action="store_true",
                    help="only check the fake peer against libtorrent (honest mode and lies)")
    args = ap.parse_args()
    ctx = Ctx()
    ctx.ws = os.path.abspath(args.webseed)
    ctx.work = os.path.abspath(args.work)
    os.makedirs(ctx.work, exist_ok=True)
    t_begin = time.monotonic()
    seeder = None

    wd = Watchdog(600, R).start()
    try:
        ctx.site = os.path.join(ctx.work, "site")
        files = make_site(ctx.site)
        ctx.torrent = os.path.join(ctx.work, "site.torrent")
        rc, outp = run([ctx.ws, "create", ctx.site, "-o", ctx.torrent, "--force",
                        "--piece-length", args.piece_length, "--json"], 120)
        if not R.check(rc == 0, "webseed create makes the site's torrent", outp.strip()[-300:]
                       if rc else "%d files, %d bytes" % (len(files),
                                                          sum(map(len, files.values())))):
            return
        ctx.src = Source(ctx.torrent, ctx.site)
        R.check(not ctx.src.problems and ctx.src.num_pieces > 100,
                "the fake peer's Merkle trees agree with the torrent (roots and piece layers)",
                "; ".join(ctx.src.problems[:3]) or "%d files, %d pieces of %d bytes, "
                "info dict %d bytes" % (len(ctx.src.files), ctx.src.num_pieces,
                                        ctx.src.piece_length, len(ctx.src.info_bytes)))
        if args.self_test:
            self_test(ctx, lies_too=True)
            return
        self_test(ctx, lies_too=False)

        rc, helptext = run([ctx.ws, "get", "--help"], 30)
        if not R.check(rc == 0 and "webseed get" in helptext, "webseed get exists",
                       "exit %s: %s" % (rc, helptext.strip().splitlines()[:1])):
            return

        seeder, ctx.seed_port = honest_seeder(R, ctx.ws, ctx.torrent, ctx.site, ctx.work)
        if ctx.seed_port is None:
            return
        for case in CASES:
            if args.only and case[0] not in args.only:
                continue
            run_case(ctx, *case)
        R.check(seeder.alive(), "honest seeder still running after every case",
                "" if seeder.alive() else "exit %s" % seeder.p.poll())
    except Exception as e:  # noqa: BLE001 - a bug here is a failure, with its summary line
        import traceback
        traceback.print_exc()
        R.fail("harness", "exception %s: %s" % (type(e).__name__, e))
    finally:
        if seeder is not None:
            seeder.stop()
        Proc.kill_all()
        wd.cancel()
        R.info("runtime", "%.1f s; logs under %s" % (time.monotonic() - t_begin, ctx.work))
        print(R.summary(), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(1 if R.failed else 0)
