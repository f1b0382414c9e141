"""A v2 (or hybrid) .torrent as the harnesses' hand-written peers see it: its info dict's raw
bytes and hashes, and its files in tree order with the piece each starts at (BEP 52: every
file starts a piece of its own)."""

import hashlib

from .bencode import bdecode, info_span


class Torrent:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.meta, _ = bdecode(self.raw)
        self.info_bytes = info_span(self.raw)
        self.info = self.meta[b"info"]
        self.v2 = hashlib.sha256(self.info_bytes).digest()
        self.v1 = hashlib.sha1(self.info_bytes).digest() if b"pieces" in self.info else None
        self.name = self.info[b"name"].decode()
        self.piece_length = self.info[b"piece length"]
        self.layers = self.meta.get(b"piece layers", {})
        self.files = []          # (relpath, length, pieces root, first piece) in tree order
        piece = 0

        def walk(node, prefix):
            nonlocal piece
            for k in sorted(node):
                v = node[k]
                if b"" in v and isinstance(v[b""], dict) and b"length" in v[b""]:
                    length = v[b""][b"length"]
                    self.files.append(("/".join(prefix + [k.decode()]), length,
                                       v[b""].get(b"pieces root"), piece))
                    piece += -(-length // self.piece_length)
                else:
                    walk(v, prefix + [k.decode()])
        walk(self.info[b"file tree"], [])
        self.num_pieces = piece
