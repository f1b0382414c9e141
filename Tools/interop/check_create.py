#!/usr/bin/python3
"""libtorrent checks webseed's torrents.

Builds deterministic test directories, runs `webseed create` on each of them (hybrid and
--v2-only, automatic and explicit piece lengths) and checks the result with libtorrent
(Debian's python3-libtorrent 2.0.8, importable only from /usr/bin/python3):

  json      the --json summary is complete and consistent
  load      libtorrent loads the .torrent; its v2 (and v1) info hashes, piece length,
            piece count and non-pad file list (tree order, sizes, alignment) match
  recheck   libtorrent hashes the directory against the torrent (SHA-256 Merkle roots and,
            for hybrids, SHA-1 pieces): every piece must pass
  ref       an independent creator in this script (written from BEP 52/47) builds the
            same info dict
  ltcreate  libtorrent's own creator builds the same info dict (--v2-only and hybrid;
            skipped when libtorrent cannot load the hybrid it made itself, as 2.1.1 does
            for names like a.txt next to a/; 2.0.8 writes tree order and is fine)
  det       creating again from a copy (other creation order, new mtimes) gives the
            same info hashes and the same .torrent bytes

Usage:
  /usr/bin/python3 Tools/interop/check_create.py --webseed .build/release/webseed \
      --sample Samples/site --work /tmp/webseed-interop
  --webseed stub        use this script's reference creator in place of webseed
                        (self-test of the harness)
  --self-test           check the reference creator against shared vectors.json, then exit

Prints one `ok ...` / `FAIL ...` line per check and ends with `N passed, M failed`.
Exit status 1 if any check failed.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

try:
    import libtorrent as lt
except ImportError:  # pragma: no cover
    sys.stderr.write("check_create: cannot import libtorrent; run with /usr/bin/python3 "
                     "after Tools/setup (python3-libtorrent)\n")
    sys.exit(2)

from webseedtest.bencode import bencode
from webseedtest.content import gen_data
from webseedtest.ltsession import OFFLINE
from webseedtest.peerwire import BLOCK, next_pow2
from webseedtest.results import Results
from webseedtest.trees import list_files


# ---------------------------------------------------------------------------------------
# Bencode
# ---------------------------------------------------------------------------------------

class BDecodeError(Exception):
    pass


def bdecode(data, notes=None):
    """Decodes bencoded bytes. Returns (value, info_span) where info_span is the (start,
    end) of the top-level dict's b'info' value, or None. Non-canonical encodings are
    appended to `notes` (a list) when given, otherwise raise."""
    info_span = [None]

    def problem(msg):
        if notes is None:
            raise BDecodeError(msg)
        notes.append(msg)

    def dec(i, depth):
        if depth > 100:
            raise BDecodeError("too deep")
        if i >= len(data):
            raise BDecodeError("truncated")
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            s = data[i + 1:j]
            if not s or s == b"-" or (s.startswith(b"0") and s != b"0") or s.startswith(b"-0"):
                problem("non-canonical integer at %d: %r" % (i, s))
            return int(s), j + 1
        if c == b"l":
            i += 1
            out = []
            while data[i:i + 1] != b"e":
                v, i = dec(i, depth + 1)
                out.append(v)
            return out, i + 1
        if c == b"d":
            i += 1
            out = {}
            prev = None
            while data[i:i + 1] != b"e":
                k, i = dec(i, depth + 1)
                if not isinstance(k, bytes):
                    raise BDecodeError("dict key is not a string at %d" % i)
                if prev is not None and k <= prev:
                    problem("dict keys not sorted/unique: %r after %r" % (k, prev))
                prev = k
                start = i
                v, i = dec(i, depth + 1)
                if depth == 0 and k == b"info":
                    info_span[0] = (start, i)
                out[k] = v
            return out, i + 1
        if c.isdigit():
            j = data.index(b":", i)
            s = data[i:j]
            if s.startswith(b"0") and s != b"0":
                problem("non-canonical string length at %d" % i)
            n = int(s)
            if j + 1 + n > len(data):
                raise BDecodeError("truncated string")
            return data[j + 1:j + 1 + n], j + 1 + n
        raise BDecodeError("bad byte %r at %d" % (c, i))

    try:
        v, end = dec(0, 0)
    except (ValueError, IndexError) as e:
        raise BDecodeError(str(e))
    if end != len(data):
        problem("%d trailing bytes" % (len(data) - end))
    return v, info_span[0]


def info_bytes_of(torrent_bytes):
    _, span = bdecode(torrent_bytes, notes=[])
    if span is None:
        raise BDecodeError("no info dict")
    return torrent_bytes[span[0]:span[1]]


def show(v, indent=0, key=None):
    """Readable dump of a decoded bencode value (long binary strings summarised)."""
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        if all(not isinstance(x, (dict, list)) for x in v.values()) or (
                len(v) == 1 and b"" in v and isinstance(v[b""], dict)):
            return "{" + ", ".join("%s: %s" % (_s(k), show(v[k], indent + 1, k))
                                   for k in sorted(v)) + "}"
        lines = ["{"]
        for k in sorted(v):
            lines.append("%s  %s: %s" % (pad, _s(k), show(v[k], indent + 1, k)))
        lines.append(pad + "}")
        return "\n".join(lines)
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v):
            return "[" + ", ".join(show(x, indent + 1) for x in v) + "]"
        return "[\n" + "\n".join(pad + "  " + show(x, indent + 1) for x in v) + "\n" + pad + "]"
    if isinstance(v, bytes):
        if key in (b"pieces", b"pieces root") or not _printable(v):
            if len(v) <= 32:
                return "<%s>" % v.hex()
            return "<%d bytes sha256=%s… starts %s…>" % (
                len(v), hashlib.sha256(v).hexdigest()[:16], v[:20].hex())
        return repr(v.decode())
    return repr(v)


def _printable(b):
    try:
        s = b.decode()
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() for ch in s)


def _s(k):
    return repr(k.decode()) if _printable(k) else "<%s>" % k.hex()


def diff_paths(a, b, path=""):
    """Lists where two decoded values differ."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = "%s/%s" % (path, k.decode(errors="backslashreplace"))
            if k not in a:
                out.append("%s: only in libtorrent/reference: %s" % (p, show(b[k])))
            elif k not in b:
                out.append("%s: only in webseed: %s" % (p, show(a[k])))
            else:
                out += diff_paths(a[k], b[k], p)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append("%s: list length webseed=%d other=%d" % (path or "/", len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff_paths(x, y, "%s[%d]" % (path, i))
    elif a != b:
        out.append("%s: webseed=%s other=%s" % (path or "/", show(a), show(b)))
    return out


# ---------------------------------------------------------------------------------------
# Deterministic content and test directories
# ---------------------------------------------------------------------------------------

def write_tree(root, files):
    """files: list of (relative path, seed or None, length). Mode 0644 files, 0755 dirs."""
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root, mode=0o755)
    for rel, seed, length in files:
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
        with open(p, "wb") as f:
            f.write(gen_data(seed, length) if length else b"")
        os.chmod(p, 0o644)


class Dataset:
    def __init__(self, label, path, piece_lengths):
        self.label = label
        self.path = path
        self.piece_lengths = piece_lengths   # None = auto


def deep_tree_files(seed=20240601, count=200):
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.ABC"
    dirs = [""]
    for _ in range(40):
        parent = rng.choice(dirs)
        if parent.count("/") >= 5:
            continue
        name = rng.choice("abcdefghijklmnopqrstuvwxyz") + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        d = (parent + "/" + name).lstrip("/")
        if d not in dirs:
            dirs.append(d)
    files, used = [], set(dirs)
    while len(files) < count:
        d = rng.choice(dirs)
        name = rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        rel = (d + "/" + name).lstrip("/")
        if rel in used or any(x.startswith(rel + "/") for x in dirs):
            continue
        used.add(rel)
        r = rng.random()
        size = 0 if r < 0.08 else rng.randint(1, 200 * 1024)
        files.append((rel, "deep%d" % len(files), size))
    return files


def build_datasets(work, sample):
    base = os.path.join(work, "sites")
    os.makedirs(base, exist_ok=True)
    ds = []

    def add(label, dirname, files, pls):
        path = os.path.join(base, label, dirname)
        write_tree(path, files)
        ds.append(Dataset(label, path, pls))

    add("tricky", "tricky-names", [
        ("a.txt", "t1", 100), ("a/x", "t2", 20000), ("a-b", "t3", 300), ("B", "t4", 40000),
        ("assets/app.js", "t5", 70000), ("assets/style.css", "t6", 5000),
        ("assets.json", "t7", 1176), ("js/main.js", "t8", 33000),
        ("js-legacy/main.js", "t9", 17000), ("js-legacy.js", "t10", 576),
        ("index.html", "t11", 2827), ("read me.txt", "t12", 61),
    ], [None, 16384])
    add("empties", "empty-files", [
        ("000-empty", None, 0), ("1-small", "e1", 512), ("2-empty", None, 0),
        ("3-large", "e3", 51200), ("4-dir/empty-in-dir", None, 0), ("4-dir/real", "e4", 16384),
        ("5-mid-empty", None, 0), ("6-real", "e6", 70001), ("zzz-empty-1", None, 0),
        ("zzz-empty-2", None, 0),
    ], [None, 16384])
    add("boundaries", "piece-boundaries", [
        ("one-byte", "b0", 1), ("p16k", "b1", 16384), ("p16k-plus-1", "b2", 16385),
        ("p64k", "b3", 65536), ("p64k-plus-1", "b4", 65537), ("p64k-minus-1", "b5", 65535),
        ("two-blocks", "b6", 32768), ("z-one-byte", "b7", 1),
    ], [None, 16384, 65536])
    add("large", "large-file", [("data/blob.bin", "large", 30 * 1024 * 1024)],
        [None, 16384, 1 << 20])
    add("unicode", "unicode-names", [
        ("café.txt", "u1", 229), ("日本語/ファイル.txt", "u2", 3000),
        ("Ünïcødé/straße.bin", "u3", 20000), ("emoji-😀.txt", "u4", 10),
        ("naïve/résumé.html", "u5", 40000),
    ], [None, 16384])
    add("deep", "deep-tree", deep_tree_files(), [None, 32768])
    if sample:
        sample = os.path.abspath(sample)
        if os.path.isdir(sample):
            ds.append(Dataset("sample", sample, [None, 16384]))
        else:
            ds.append(Dataset("sample", sample, []))
    return ds


def tree_order(paths):
    """File-tree order (BEP 52): depth-first, keys sorted bytewise at every level."""
    return sorted(paths, key=lambda p: tuple(c.encode("utf-8", "surrogateescape")
                                             for c in p.split("/")))


# ---------------------------------------------------------------------------------------
# Reference creator (independent of webseed and libtorrent; from BEP 52 / BEP 47)
# ---------------------------------------------------------------------------------------

def _sha256(b):
    return hashlib.sha256(b).digest()


def merkle(data, piece_length):
    """Returns (pieces root, piece layer bytes or b'') of one non-empty file."""
    leaves = [_sha256(data[i:i + BLOCK]) for i in range(0, len(data), BLOCK)]
    width = next_pow2(len(leaves))
    layer = leaves + [b"\0" * 32] * (width - len(leaves))
    bpp = piece_length // BLOCK
    height, piece_layer = 1, None
    if len(leaves) <= bpp:
        piece_layer = b""
    while True:
        if piece_layer is None and height == bpp:
            piece_layer = b"".join(layer[:-(-len(data) // piece_length)])
        if len(layer) == 1:
            break
        layer = [_sha256(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
        height *= 2
    return layer[0], piece_layer


def ref_create(root, piece_length, hybrid, name=None):
    """Builds the torrent for directory `root` (multi-file layout: the tree root holds the
    directory's contents). Hybrid: v1 `files` in tree order, a BEP 47 pad file right after
    each non-empty file whose end is unaligned, including the last (so empty files follow
    the pad; this is what libtorrent 2.0.8's and 2.1.1's creators write and what
    vectors.json holds). Returns the .torrent bytes."""
    name = name or os.path.basename(os.path.normpath(root))
    files = list_files(root)
    order = tree_order(files)
    return _ref_build(name, [(p.split("/"), _read(os.path.join(root, p))) for p in order],
                      piece_length, hybrid, single=False)


def _read(p):
    with open(p, "rb") as f:
        return f.read()


def _ref_build(name, entries, piece_length, hybrid, single):
    tree, layers, v1files, stream, offset = {}, {}, [], [], 0
    for comps, data in entries:
        node = tree
        for c in comps[:-1]:
            node = node.setdefault(c.encode(), {})
        props = {b"length": len(data)}
        if data:
            root, layer = merkle(data, piece_length)
            props[b"pieces root"] = root
            if layer:
                layers[root] = layer
        node[comps[-1].encode()] = {b"": props}
        v1files.append({b"length": len(data), b"path": [c.encode() for c in comps]})
        stream.append(data)
        offset += len(data)
        if hybrid and not single and data and offset % piece_length:
            padn = piece_length - offset % piece_length
            v1files.append({b"attr": b"p", b"length": padn, b"path": [b".pad", str(padn).encode()]})
            stream.append(b"\0" * padn)
            offset += padn
    if hybrid and not single and offset % piece_length:
        padn = piece_length - offset % piece_length
        v1files.append({b"attr": b"p", b"length": padn, b"path": [b".pad", str(padn).encode()]})
        stream.append(b"\0" * padn)
    info = {b"file tree": tree, b"meta version": 2, b"name": name.encode(),
            b"piece length": piece_length}
    if hybrid:
        blob = b"".join(stream)
        info[b"pieces"] = b"".join(hashlib.sha1(blob[i:i + piece_length]).digest()
                                   for i in range(0, len(blob), piece_length))
        if single:
            info[b"length"] = len(entries[0][1])
        else:
            info[b"files"] = v1files
    t = {b"info": info}
    if layers:
        t[b"piece layers"] = layers
    return bencode(t)


def auto_piece_length(total):
    # Only used by the stub; webseed has its own rule.
    pl = 16384
    while total // pl > 1500 and pl < (1 << 24):
        pl *= 2
    return pl


def self_test(vectors_path):
    """Checks the reference creator against shared/vectors.json."""
    vectors = json.load(open(vectors_path))
    res = []
    for c in vectors:
        entries = [(f["path"].split("/"), gen_data(f["seed"], f["length"]) if f["length"] else b"")
                   for f in c["files"]]
        order = tree_order([f["path"] for f in c["files"]])
        if order != c["file_tree_order"]:
            res.append((False, "%s tree order %s != %s" % (c["label"], order, c["file_tree_order"])))
        entries.sort(key=lambda e: order.index("/".join(e[0])))
        single = len(c["files"]) == 1 and "/" not in c["files"][0]["path"] and c["name"] == c["files"][0]["path"]
        for hybrid in (False, True):
            t = _ref_build(c["name"], entries, c["piece_length"], hybrid, single)
            ib = info_bytes_of(t)
            want = c["hybrid_tail_padded"] if hybrid else c["v2_only"]
            got = {"v2_infohash": hashlib.sha256(ib).hexdigest()}
            if hybrid:
                got["v1_infohash"] = hashlib.sha1(ib).hexdigest()
            ok = all(got[k] == want[k] for k in got)
            res.append((ok, "%s %s %s" % (c["label"], "hybrid" if hybrid else "v2-only",
                                           got if not ok else "")))
    return res


# ---------------------------------------------------------------------------------------
# libtorrent helpers
# ---------------------------------------------------------------------------------------

def lt_hashes(ti):
    ih = ti.info_hashes()
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
    return v1, v2, ih.has_v1(), ih.has_v2()


def lt_files(ti):
    """libtorrent's non-pad files: list of (path relative to the torrent name, size, offset)."""
    fs = ti.files()
    name = ti.name()
    out = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        p = fs.file_path(i).replace(os.sep, "/")
        if p.startswith(name + "/"):
            p = p[len(name) + 1:]
        out.append((p, fs.file_size(i), fs.file_offset(i)))
    return out


def lt_create(dirpath, piece_length, v2_only):
    """Torrent from libtorrent's own creator; returns bytes (raises on error)."""
    fs = lt.file_storage()
    lt.add_files(fs, dirpath)
    flags = lt.create_torrent.v2_only if v2_only else 0
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(dirpath)))
    return lt.bencode(ct.generate())


class Rechecker:
    """One libtorrent session, offline, that hashes a directory against a torrent."""

    def __init__(self):
        s = dict(OFFLINE)
        s.update({
            "listen_interfaces": "127.0.0.1:0",
            "alert_mask": lt.alert.category_t.status_notification
                          | lt.alert.category_t.error_notification
                          | lt.alert.category_t.storage_notification,
        })
        self.ses = lt.session(s)

    def check(self, torrent_path, save_path, timeout=300):
        ti = lt.torrent_info(torrent_path)
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = save_path
        atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        h = self.ses.add_torrent(atp)
        deadline = time.time() + timeout
        checked, err = False, None
        while time.time() < deadline and not checked and err is None:
            self.ses.wait_for_alert(500)
            for a in self.ses.pop_alerts():
                if isinstance(a, lt.torrent_checked_alert) and a.handle == h:
                    checked = True
                elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)) and a.handle == h:
                    err = a.message()
        st = h.status()
        bad = [i for i, have in enumerate(st.pieces) if not have]
        self.ses.remove_torrent(h)
        # Wait for the removal so the same info hash can be added again.
        end = time.time() + 10
        while time.time() < end and self.ses.find_torrent(ti.info_hashes().get_best()).is_valid():
            self.ses.wait_for_alert(100)
            self.ses.pop_alerts()
        if err:
            return False, "libtorrent error: %s" % err
        if not checked:
            return False, "timed out after %ds" % timeout
        if bad or not st.is_seeding:
            return False, "%d of %d pieces fail libtorrent's hash check (first: %s)" % (
                len(bad), ti.num_pieces(), bad[:10])
        return True, "%d pieces verified" % ti.num_pieces()


# ---------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------

def run_create(webseed, dirpath, out, v2_only, piece_length, extra=()):
    """Runs `webseed create`; returns (json dict or None, error text)."""
    if webseed == "stub":
        files = list_files(dirpath)
        pl = piece_length or auto_piece_length(sum(files.values()))
        t = ref_create(dirpath, pl, not v2_only)
        with open(out, "wb") as f:
            f.write(t)
        ib = info_bytes_of(t)
        v2 = hashlib.sha256(ib).hexdigest()
        v1 = None if v2_only else hashlib.sha1(ib).hexdigest()
        info, _ = bdecode(ib)
        return {"torrent": os.path.abspath(out), "name": os.path.basename(dirpath),
                "hybrid": not v2_only, "v2_infohash": v2, "v1_infohash": v1,
                "site_id": base64.b32encode(bytes.fromhex(v2)).decode().lower().rstrip("="),
                "files": len(files), "size": sum(files.values()), "piece_length": pl,
                "pieces": sum(-(-s // pl) for s in files.values()),
                "magnet": "magnet:?xt=urn:btmh:1220" + v2 + ("" if v1 is None else "&xt=urn:btih:" + v1)}, ""
    cmd = [webseed, "create", dirpath, "-o", out, "--json", "--force"]
    if v2_only:
        cmd.append("--v2-only")
    if piece_length:
        cmd += ["--piece-length", str(piece_length)]
    cmd += list(extra)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timed out: %s" % " ".join(cmd)
    err = p.stderr.decode(errors="replace").strip()
    if p.returncode != 0:
        return None, "exit %d: %s | %s" % (p.returncode, " ".join(cmd), err[-500:])
    try:
        j = json.loads(p.stdout.decode())
    except ValueError as e:
        return None, "stdout is not one JSON object (%s): %r" % (e, p.stdout[:300])
    if not isinstance(j, dict):
        return None, "JSON is not an object: %r" % p.stdout[:300]
    return j, err


DUMPS_LEFT = [4]


def print_info_diff(label, ours_bytes, other_bytes, other_name):
    a, _ = bdecode(ours_bytes, notes=[])
    b, _ = bdecode(other_bytes, notes=[])
    print("    --- differences (webseed vs %s) ---" % other_name)
    lines = diff_paths(a, b)
    for line in lines[:40]:
        print("    " + line)
    if len(lines) > 40:
        print("    … %d more" % (len(lines) - 40))
    if DUMPS_LEFT[0] <= 0:
        print("    (full dumps printed for the first mismatches only)")
        return
    DUMPS_LEFT[0] -= 1
    print("    --- webseed info dict (%s) ---" % label)
    print("\n".join("    " + l for l in show(a).splitlines()))
    print("    --- %s info dict ---" % other_name)
    print("\n".join("    " + l for l in show(b).splitlines()))


def check_json(r, what, j, ds_files, v2_only, piece_length, out):
    problems = []
    need = ["torrent", "name", "hybrid", "v2_infohash", "v1_infohash", "site_id", "files",
            "size", "piece_length", "pieces", "magnet"]
    missing = [k for k in need if k not in j]
    if missing:
        problems.append("missing keys %s" % missing)
    if j.get("hybrid") is not (not v2_only):
        problems.append("hybrid=%r" % j.get("hybrid"))
    v2 = j.get("v2_infohash") or ""
    v1 = j.get("v1_infohash")
    if not (isinstance(v2, str) and len(v2) == 64):
        problems.append("v2_infohash=%r" % v2)
    if v2_only and v1 is not None:
        problems.append("v1_infohash=%r for --v2-only" % v1)
    if not v2_only and not (isinstance(v1, str) and len(v1) == 40):
        problems.append("v1_infohash=%r" % v1)
    if piece_length and j.get("piece_length") != piece_length:
        problems.append("piece_length=%r, asked %d" % (j.get("piece_length"), piece_length))
    pl = j.get("piece_length")
    if not isinstance(pl, int) or pl < 16384 or pl & (pl - 1):
        problems.append("piece_length=%r not a power of two >= 16 KiB" % pl)
    if j.get("files") != len(ds_files):
        problems.append("files=%r, directory has %d" % (j.get("files"), len(ds_files)))
    if j.get("size") != sum(ds_files.values()):
        problems.append("size=%r, directory has %d" % (j.get("size"), sum(ds_files.values())))
    if isinstance(pl, int) and pl > 0:
        want_pieces = sum(-(-s // pl) for s in ds_files.values())
        if j.get("pieces") != want_pieces:
            problems.append("pieces=%r, expected %d" % (j.get("pieces"), want_pieces))
    if len(v2) == 64:
        sid = base64.b32encode(bytes.fromhex(v2)).decode().lower().rstrip("=")
        if j.get("site_id") != sid:
            problems.append("site_id=%r, expected %s" % (j.get("site_id"), sid))
        mag = j.get("magnet") or ""
        if ("xt=urn:btmh:1220" + v2) not in mag:
            problems.append("magnet lacks xt=urn:btmh:1220<v2>: %r" % mag[:200])
        if v1 and ("xt=urn:btih:" + v1) not in mag.lower():
            problems.append("magnet lacks xt=urn:btih:<v1>: %r" % mag[:200])
    if os.path.abspath(j.get("torrent") or "") != os.path.abspath(out):
        problems.append("torrent=%r, asked %s" % (j.get("torrent"), out))
    return r.check(not problems, what + " json", "; ".join(problems) or
                   "v2=%s pl=%s pieces=%s" % (v2[:16], pl, j.get("pieces")))


def check_load(r, what, out, j, ds_files, v2_only):
    try:
        ti = lt.torrent_info(out)
    except Exception as e:  # libtorrent raises RuntimeError with its error message
        r.fail(what + " load", "libtorrent refuses the torrent: %s" % e)
        return None
    problems = []
    v1, v2, has_v1, has_v2 = lt_hashes(ti)
    if not has_v2 or v2 != j.get("v2_infohash"):
        problems.append("v2 libtorrent=%s ours=%s" % (v2, j.get("v2_infohash")))
    if v2_only and has_v1:
        problems.append("libtorrent sees a v1 hash %s in a --v2-only torrent" % v1)
    if not v2_only and (not has_v1 or v1 != j.get("v1_infohash")):
        problems.append("v1 libtorrent=%s ours=%s" % (v1, j.get("v1_infohash")))
    if ti.piece_length() != j.get("piece_length"):
        problems.append("piece length libtorrent=%d ours=%r" % (ti.piece_length(), j.get("piece_length")))
    if ti.num_pieces() != j.get("pieces"):
        problems.append("pieces libtorrent=%d ours=%r" % (ti.num_pieces(), j.get("pieces")))
    if ti.name() != j.get("name"):
        problems.append("name libtorrent=%r ours=%r" % (ti.name(), j.get("name")))
    files = lt_files(ti)
    got = [(p, s) for p, s, _ in files]
    want = [(p, ds_files[p]) for p in tree_order(ds_files)]
    if got != want:
        gs, ws = set(got), set(want)
        if gs == ws:
            problems.append("file order differs from tree order: libtorrent %s" % [p for p, _ in got][:12])
        else:
            problems.append("files only in torrent %s; only in directory %s" % (
                sorted(gs - ws)[:8], sorted(ws - gs)[:8]))
    pl = ti.piece_length()
    unaligned = [p for p, s, off in files if s > 0 and off % pl]
    if unaligned:
        problems.append("non-empty files not piece-aligned: %s" % unaligned[:8])
    r.check(not problems, what + " load", "; ".join(problems) or
            "libtorrent v2=%s v1=%s, %d files" % (v2[:16], (v1 or "-")[:12], len(files)))
    return ti


def check_creator(r, what, out, dirpath, pl, v2_only, lt_dir):
    """libtorrent's own creator vs webseed's torrent, same directory and piece length."""
    tag = "ltcreate"
    try:
        lt_bytes = lt_create(dirpath, pl, v2_only)
    except Exception as e:
        r.skip("%s %s" % (what, tag), "libtorrent's creator failed: %s" % e)
        return
    if not v2_only:
        try:  # libtorrent's hybrid creator may write torrents that it cannot load itself
            lt.torrent_info(lt.bdecode(lt_bytes))
        except Exception as e:
            r.skip("%s %s" % (what, tag), "libtorrent cannot load its own hybrid: %s" % e)
            return
    with open(os.path.join(lt_dir, os.path.basename(out)), "wb") as f:
        f.write(lt_bytes)
    ours = info_bytes_of(open(out, "rb").read())
    theirs = info_bytes_of(lt_bytes)
    same = ours == theirs
    r.check(same, "%s %s" % (what, tag), "libtorrent %s= webseed (v2 %s)" % (
        "=" if same else "!", hashlib.sha256(theirs).hexdigest()[:16]))
    if not same:
        print_info_diff(what, ours, theirs, "libtorrent 2.0.8 create_torrent")


def check_ref(r, what, out, dirpath, pl, v2_only, name):
    ours = info_bytes_of(open(out, "rb").read())
    ref = info_bytes_of(ref_create(dirpath, pl, not v2_only, name))
    same = ours == ref
    r.check(same, what + " ref", "reference creator %s= webseed" % ("=" if same else "!"))
    if not same:
        print_info_diff(what, ours, ref, "reference creator")


def check_torrent_file(r, what, out):
    data = open(out, "rb").read()
    notes = []
    try:
        t, span = bdecode(data, notes)
    except BDecodeError as e:
        r.fail(what + " bencode", str(e))
        return
    problems = list(notes)
    if not isinstance(t, dict) or span is None:
        problems.append("no info dict")
    r.check(not problems, what + " bencode", "; ".join(problems) or
            "canonical; top-level keys %s, info keys %s" % (
                sorted(k.decode() for k in t), sorted(k.decode() for k in t[b"info"])))


def copy_reordered(src, dst):
    """Copies src to dst creating files in reverse tree order, then gives every file and
    directory a new mtime."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    files = list_files(src)
    os.makedirs(dst, mode=0o755)
    for rel in reversed(tree_order(files)):
        p = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), p)
        os.chmod(p, 0o644)
    t = time.time() + 3600
    for i, (dirpath, dirnames, filenames) in enumerate(os.walk(dst)):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (t + i, t + i))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", help="webseed binary, or 'stub' for the reference creator")
    ap.add_argument("--sample", help="sample site directory (e.g. Samples/site)")
    ap.add_argument("--work", default="/tmp/webseed-check-create")
    ap.add_argument("--only", action="append", help="run only these dataset labels")
    ap.add_argument("--no-lt-hybrid-creator", action="store_true",
                    help="skip comparisons with libtorrent's hybrid creator")
    ap.add_argument("--self-test", action="store_true",
                    help="check the reference creator against shared vectors.json and exit")
    ap.add_argument("--vectors", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..", "..", "shared", "vectors.json"))
    args = ap.parse_args()
    os.umask(0o022)
    r = Results()

    if args.self_test:
        for ok, what in self_test(args.vectors):
            r.check(ok, "reference-creator vector " + what)
        print(r.summary())
        return r.exit_status()

    if not args.webseed:
        ap.error("--webseed is required")
    webseed = args.webseed if args.webseed == "stub" else os.path.abspath(args.webseed)
    work = os.path.abspath(args.work)
    out_dir = os.path.join(work, "out")
    lt_dir = os.path.join(work, "libtorrent-created")
    for d in (out_dir, lt_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    print("# libtorrent %s, webseed %s, work %s" % (lt.__version__, webseed, work), flush=True)

    datasets = build_datasets(work, args.sample)
    if args.only:
        datasets = [d for d in datasets if d.label in args.only]
    rechecker = Rechecker()

    for ds in datasets:
        if not os.path.isdir(ds.path):
            r.fail("%s" % ds.label, "directory %s does not exist" % ds.path)
            continue
        ds_files = list_files(ds.path)
        name = os.path.basename(os.path.normpath(ds.path))
        first = {}
        for pl in ds.piece_lengths:
            for v2_only in (False, True):
                mode = "v2-only" if v2_only else "hybrid"
                what = "%s %s pl=%s" % (ds.label, mode, pl or "auto")
                out = os.path.join(out_dir, "%s-%s-%s.torrent" % (ds.label, mode, pl or "auto"))
                j, err = run_create(webseed, ds.path, out, v2_only, pl)
                if j is None:
                    r.fail(what + " create", err)
                    continue
                r.ok(what + " create", "exit 0" + ("; stderr: " + err[-200:] if err else ""))
                check_json(r, what, j, ds_files, v2_only, pl, out)
                if not os.path.isfile(out):
                    r.fail(what + " output", "%s was not written" % out)
                    continue
                check_torrent_file(r, what, out)
                ti = check_load(r, what, out, j, ds_files, v2_only)
                if ti is not None:
                    ok, detail = rechecker.check(out, os.path.dirname(os.path.abspath(ds.path)))
                    r.check(ok, what + " recheck", detail)
                real_pl = j.get("piece_length")
                if isinstance(real_pl, int):
                    check_ref(r, what, out, ds.path, real_pl, v2_only, j.get("name") or name)
                    if v2_only or not args.no_lt_hybrid_creator:
                        check_creator(r, what, out, ds.path, real_pl, v2_only, lt_dir)
                if pl is None:
                    first[v2_only] = (j, open(out, "rb").read())

        # Determinism: a copy made in another order, with other mtimes, same basename.
        if not first:
            continue
        copy = os.path.join(work, "copies", ds.label, name)
        copy_reordered(ds.path, copy)
        for v2_only, (j0, bytes0) in sorted(first.items()):
            mode = "v2-only" if v2_only else "hybrid"
            what = "%s %s pl=auto det" % (ds.label, mode)
            out = os.path.join(out_dir, "%s-%s-auto-copy.torrent" % (ds.label, mode))
            j, err = run_create(webseed, copy, out, v2_only, None)
            if j is None:
                r.fail(what, err)
                continue
            problems = []
            for k in ("v2_infohash", "v1_infohash", "piece_length", "pieces"):
                if j.get(k) != j0.get(k):
                    problems.append("%s %r != %r" % (k, j.get(k), j0.get(k)))
            if not problems and open(out, "rb").read() != bytes0:
                problems.append(".torrent bytes differ although the info hashes agree")
            r.check(not problems, what, "; ".join(problems) or "same hashes and bytes from a reordered, touched copy")

    print(r.summary())
    return r.exit_status()


if __name__ == "__main__":
    sys.exit(main())
