"""BitTorrent peer-wire basics for the harnesses' hand-written peers (BEP 3, BEP 6 fast
extension, BEP 10 extension protocol, BEP 52 hash messages) and the v2 Merkle padding."""

import hashlib
import struct

BLOCK = 16384
PSTR = b"\x13BitTorrent protocol"

# message ids
CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL = range(9)
HAVE_ALL, HAVE_NONE, REJECT, ALLOWED_FAST = 14, 15, 16, 17
EXTENDED, HASH_REQUEST, HASHES, HASH_REJECT = 20, 21, 22, 23

PAD = [b"\0" * 32]
"""PAD[k]: the root of a Merkle subtree of 2**k zero leaves (BEP 52 pads every tree with them)."""
for _ in range(48):
    PAD.append(hashlib.sha256(PAD[-1] + PAD[-1]).digest())


class Closed(Exception):
    """The connection ended (or was ended) while a message was expected."""


def msg(mid, payload=b""):
    """A length-prefixed message."""
    return struct.pack(">IB", 1 + len(payload), mid) + payload


def next_pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def log2(n):
    """log2 of a power of two."""
    return n.bit_length() - 1
