// webseed verified mode: a small bencode decoder for the info dict the worker checks.
// Bounded before it allocates: every length is checked against the bytes left, nesting and
// item counts have limits. Byte strings come back as Uint8Array views (no copies), integers
// as numbers (refused beyond 2^53), dicts as Maps keyed by their keys' UTF-8 text, which must
// be valid and strictly sorted (as BEP 3 requires); `binaryKeys`: keys as text of one
// character per byte (a torrent's piece layers are keyed by hashes).

const BENCODE_MAX_DEPTH = 64;
const BENCODE_MAX_ITEMS = 1000000;

class BencodeError extends Error {}

function bdecode(bytes, binaryKeys = false) {
  const utf8 = new TextDecoder(binaryKeys ? "latin1" : "utf-8", { fatal: true });
  let pos = 0;
  let items = 0;

  function fail(why) { throw new BencodeError(why + " at byte " + pos); }

  function digits(end) {
    const start = pos;
    while (pos < bytes.length && bytes[pos] !== end) {
      if (bytes[pos] < 0x30 || bytes[pos] > 0x39) fail("bad digit");
      if (pos - start >= 16) fail("number too long");
      pos++;
    }
    if (pos >= bytes.length) fail("truncated number");
    if (pos === start) fail("empty number");
    if (bytes[start] === 0x30 && pos - start > 1) fail("leading zero");
    let n = 0;
    for (let i = start; i < pos; i++) n = n * 10 + (bytes[i] - 0x30);
    pos++; // the end mark
    return n;
  }

  function value(depth) {
    if (depth > BENCODE_MAX_DEPTH) fail("nested too deeply");
    if (++items > BENCODE_MAX_ITEMS) fail("too many items");
    if (pos >= bytes.length) fail("truncated");
    const c = bytes[pos];
    if (c === 0x69) { // i
      pos++;
      const negative = bytes[pos] === 0x2d;
      if (negative) pos++;
      const n = digits(0x65);
      if (negative && n === 0) fail("negative zero");
      if (n > Number.MAX_SAFE_INTEGER) fail("integer too large");
      return negative ? -n : n;
    }
    if (c === 0x6c) { // l
      pos++;
      const list = [];
      while (pos < bytes.length && bytes[pos] !== 0x65) list.push(value(depth + 1));
      if (pos >= bytes.length) fail("truncated list");
      pos++;
      return list;
    }
    if (c === 0x64) { // d
      pos++;
      const dict = new Map();
      let last = null;
      while (pos < bytes.length && bytes[pos] !== 0x65) {
        if (bytes[pos] < 0x30 || bytes[pos] > 0x39) fail("dict key is not a string");
        const raw = string();
        if (last !== null && compareBytes(last, raw) >= 0) fail("dict keys not sorted");
        last = raw;
        let key;
        try { key = utf8.decode(raw); } catch { fail("dict key is not UTF-8"); }
        dict.set(key, value(depth + 1));
      }
      if (pos >= bytes.length) fail("truncated dict");
      pos++;
      return dict;
    }
    if (c >= 0x30 && c <= 0x39) return string();
    fail("unexpected byte " + c);
  }

  function string() {
    const n = digits(0x3a);
    if (n > bytes.length - pos) fail("string longer than the data");
    const s = bytes.subarray(pos, pos + n);
    pos += n;
    return s;
  }

  const v = value(0);
  if (pos !== bytes.length) fail("trailing data");
  return v;
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
