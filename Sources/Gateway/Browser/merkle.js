// webseed verified mode: BEP 52 Merkle trees with WebCrypto's SHA-256.
// A file's tree has one leaf per 16 KiB block (the last block hashed as it is, shorter);
// leaves beyond the end of the file are 32 zero bytes. A piece's hash is the root of its
// pieceLength / 16 KiB leaves; a file's pieces root is the root of its piece layer, padded
// with the root of a piece made of zero leaves. A file of one piece or less has no layer:
// its pieces root is the root of its leaves padded to the next power of two.

const BLOCK = 16384;
const ZERO_HASH = new Uint8Array(32);

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function hashPair(a, b) {
  const both = new Uint8Array(64);
  both.set(a, 0);
  both.set(b, 32);
  return sha256(both);
}

function nextPowerOfTwo(n) {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/// The root of `hashes` padded to `width` (a power of two) with `pad`, a hash of that level.
async function merkleRoot(hashes, width, pad) {
  if (hashes.length > width) throw new Error("more hashes than the tree holds");
  let level = hashes.slice();
  let padding = pad;
  for (let w = width; w > 1; w /= 2) {
    const up = [];
    for (let i = 0; i < w; i += 2) {
      if (i >= level.length) break;
      up.push(hashPair(level[i], i + 1 < level.length ? level[i + 1] : padding));
    }
    level = await Promise.all(up);
    padding = await hashPair(padding, padding);
  }
  return level.length ? level[0] : padding;
}

/// The hash of a subtree of `leaves` zero leaves (a power of two).
async function zeroRoot(leaves) {
  let h = ZERO_HASH;
  for (let w = leaves; w > 1; w /= 2) h = await hashPair(h, h);
  return h;
}

async function leafHashes(bytes) {
  const out = [];
  for (let o = 0; o < bytes.length; o += BLOCK) out.push(sha256(bytes.subarray(o, Math.min(o + BLOCK, bytes.length))));
  return Promise.all(out);
}

/// The layer hash of one piece's bytes (the last piece of a file may be shorter).
async function pieceHash(bytes, pieceLength) {
  return merkleRoot(await leafHashes(bytes), pieceLength / BLOCK, ZERO_HASH);
}

/// The pieces root of a whole file of at most one piece.
async function smallFileRoot(bytes) {
  const leaves = await leafHashes(bytes);
  return merkleRoot(leaves, nextPowerOfTwo(leaves.length), ZERO_HASH);
}

/// The pieces root a piece layer (its hashes, in order) adds up to.
async function layerRoot(layer, pieceLength) {
  return merkleRoot(layer, nextPowerOfTwo(layer.length), await zeroRoot(pieceLength / BLOCK));
}

/// A piece layer's bytes as its 32-byte hashes.
function splitLayer(bytes) {
  const out = [];
  for (let o = 0; o < bytes.length; o += 32) out.push(bytes.subarray(o, o + 32));
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toHex(bytes) {
  let s = "";
  for (const b of bytes) s += (b < 16 ? "0" : "") + b.toString(16);
  return s;
}
