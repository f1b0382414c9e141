"""Minimal bencode reader: enough to find the raw bytes of a torrent's info dict."""

import hashlib


def _skip(b, i):
    """Returns the index just past the bencoded value starting at b[i]."""
    c = b[i:i + 1]
    if c == b"i":
        return b.index(b"e", i) + 1
    if c in (b"l", b"d"):
        i += 1
        while b[i:i + 1] != b"e":
            i = _skip(b, i)
        return i + 1
    colon = b.index(b":", i)
    return colon + 1 + int(b[i:colon])


def _string(b, i):
    colon = b.index(b":", i)
    n = int(b[i:colon])
    return b[colon + 1:colon + 1 + n], colon + 1 + n


def info_bytes(torrent):
    """Raw bencoded info dict of a .torrent file's bytes."""
    if torrent[:1] != b"d":
        raise ValueError("not a bencoded dictionary")
    i = 1
    while torrent[i:i + 1] != b"e":
        key, i = _string(torrent, i)
        end = _skip(torrent, i)
        if key == b"info":
            return torrent[i:end]
        i = end
    raise ValueError("no info dict")


def info_hashes(path):
    """(v2 hex or None, v1 hex or None) of a .torrent file, judged by its info keys."""
    with open(path, "rb") as f:
        info = info_bytes(f.read())
    has_v2 = b"12:meta versioni2e" in info
    has_v1 = b"6:pieces" in info
    v2 = hashlib.sha256(info).hexdigest() if has_v2 else None
    v1 = hashlib.sha1(info).hexdigest() if has_v1 else None
    return v2, v1
