"""Bencoding for the harnesses and benches: a small strict decoder, a canonical encoder, and the
raw bytes of a torrent's info dict (what its info hashes are computed over, so they are taken
as they are in the file, never re-encoded). check_create.py keeps its own decoder: it is the
check that webseed's torrents are canonical."""

import hashlib


def bdecode(data, i=0):
    """(value, index after it); strict enough for our own torrents and peers' dicts."""
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    if c.isdigit():
        j = data.index(b":", i)
        n = int(data[i:j])
        if j + 1 + n > len(data):
            raise ValueError("string runs past the end")
        return data[j + 1:j + 1 + n], j + 1 + n
    raise ValueError("bad bencoding at %d" % i)


def bencode(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError(type(v))


def info_span(raw):
    """The raw bytes of the top-level info dict, exactly as in the file."""
    assert raw[:1] == b"d"
    i = 1
    while raw[i:i + 1] != b"e":
        k, i = bdecode(raw, i)
        start = i
        _, i = bdecode(raw, i)
        if k == b"info":
            return raw[start:i]
    raise ValueError("no info dict")


def info_hashes(path):
    """(v2 hex or None, v1 hex or None) of a .torrent file, judged by its info dict's keys."""
    with open(path, "rb") as f:
        info = info_span(f.read())
    v2 = hashlib.sha256(info).hexdigest() if b"12:meta versioni2e" in info else None
    v1 = hashlib.sha1(info).hexdigest() if b"6:pieces" in info else None
    return v2, v1
