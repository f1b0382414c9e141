// webseed verified mode: names. On a name's origin (`k-<key>.localhost`) the worker trusts
// only the Ed25519 public key in the hostname. It asks the gateway for the name's signed
// BEP 44 item (`/.webseed/item`), checks the signature over BEP 44's signed bytes with that
// key, and only then uses the site whose v2 info hash the item's value names (verified as a
// site id is: the info dict must hash to it). Its bytes come from that site's own origin
// (`<site-id>.localhost`, hash-addressed, so a newer version never mixes in).
// It never moves to a lower seq: the highest verified item is kept in Cache Storage; an
// older one is refused and the kept version served, and the same seq naming another value
// (a forgery or a fork) is refused. Every navigation asks for the current item, so a version
// published while a page is open shows at the next navigation; other requests use the
// version of the last navigation.
// On a site id's origin, the site is the one the hostname names, from that origin.

const NAME_ITEM_PATH = "/.webseed/item";
const NAME_ITEM_LIMIT = 4096;      // bytes: more than BEP 44 allows (a 1,000-byte value, a 64-byte salt)
const NAME_ITEM_TIMEOUT = 5000;    // ms for the gateway to send the item (then the kept one serves)
const NAME_ITEM_WHAT = "the name's signed item";

/// The 32-byte Ed25519 public key a name's origin names (`k-` and 52 base32 characters), or null.
function nameKeyFromHost(hostname) {
  const m = /^k-([a-z2-7]{52})\.localhost\.?$/.exec(hostname);
  return m ? base32Decode(m[1], 32) : null;
}

/// RFC 4648 base32 (lowercase, no padding) to `n` bytes; null if the label is not that.
function base32Decode(label, n) {
  const out = new Uint8Array(n);
  let buffer = 0, bits = 0, i = 0;
  for (const c of label) {
    const d = BASE32.indexOf(c);
    if (d < 0) return null;
    buffer = ((buffer << 5) | d) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      if (i === n) return null;
      out[i++] = (buffer >> (bits - 8)) & 255;
      bits -= 8;
    }
  }
  if (i !== n || (buffer & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/// Bytes as RFC 4648 base32, lowercase, no padding (a site id's host label).
function base32Encode(bytes) {
  let out = "", buffer = 0, bits = 0;
  for (const b of bytes) {
    buffer = ((buffer << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) { out += BASE32[(buffer >> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

class ItemError extends Error {}

/// The end of the bencoded value at `pos` (bounded: lengths checked against the bytes left,
/// nesting limited); throws ItemError on anything malformed.
function bencodedEnd(bytes, pos, depth = 0) {
  if (depth > 32 || pos >= bytes.length) throw new ItemError("truncated or nested too deeply");
  const c = bytes[pos];
  if (c === 0x69) {
    const e = bytes.indexOf(0x65, pos);
    if (e < 0 || !/^-?(0|[1-9][0-9]{0,18})$/.test(latin1(bytes.subarray(pos + 1, e)))) throw new ItemError("bad integer");
    return e + 1;
  }
  if (c === 0x6c || c === 0x64) {
    let p = pos + 1;
    while (p < bytes.length && bytes[p] !== 0x65) p = bencodedEnd(bytes, p, depth + 1);
    if (p >= bytes.length) throw new ItemError("truncated");
    return p + 1;
  }
  const colon = bytes.indexOf(0x3a, pos);
  if (colon < 0 || !/^(0|[1-9][0-9]{0,5})$/.test(latin1(bytes.subarray(pos, colon)))) throw new ItemError("bad string length");
  const end = colon + 1 + Number(latin1(bytes.subarray(pos, colon)));
  if (end > bytes.length) throw new ItemError("string longer than the data");
  return end;
}

function latin1(b) { return String.fromCharCode(...b); }

/// A BEP 44 mutable item as the gateway sends it (a bencoded dict of k, salt, seq, sig, v):
/// {key, salt, seq (BigInt), seqText, sig, value (v's bencoded bytes), v2 (32 bytes)}.
/// Throws ItemError on anything else. Nothing is trusted yet: see verifyItem.
function parseItem(bytes) {
  if (bytes.length > NAME_ITEM_LIMIT) throw new ItemError("the item is larger than BEP 44 allows");
  if (bytes[0] !== 0x64) throw new ItemError("the item is not a dict");
  const raw = {};
  let pos = 1, last = null;
  while (pos < bytes.length && bytes[pos] !== 0x65) {
    const keyEnd = bencodedEnd(bytes, pos);
    if (bytes[pos] < 0x30 || bytes[pos] > 0x39) throw new ItemError("a dict key is not a string");
    const key = latin1(bytes.subarray(bytes.indexOf(0x3a, pos) + 1, keyEnd));
    if (last !== null && key <= last) throw new ItemError("the item's keys are not sorted");
    last = key;
    const end = bencodedEnd(bytes, keyEnd);
    raw[key] = bytes.subarray(keyEnd, end);
    pos = end;
  }
  if (pos !== bytes.length - 1) throw new ItemError("the item does not end where its dict ends");
  const string = (name, min, max) => {
    const r = raw[name];
    if (!r || r[0] < 0x30 || r[0] > 0x39) throw new ItemError("no " + name + " string");
    const s = r.subarray(r.indexOf(0x3a) + 1);
    if (s.length < min || s.length > max) throw new ItemError(name + " has " + s.length + " bytes");
    return s;
  };
  const key = string("k", 32, 32);
  const sig = string("sig", 64, 64);
  const salt = raw.salt ? string("salt", 0, 64) : new Uint8Array(0);
  if (!raw.seq || raw.seq[0] !== 0x69) throw new ItemError("no seq integer");
  const seqText = latin1(raw.seq.subarray(1, raw.seq.length - 1));
  const seq = BigInt(seqText);
  if (seq > 0x7fffffffffffffffn || seq < -0x8000000000000000n) throw new ItemError("seq is not a 64-bit integer");
  const value = raw.v;
  if (!value) throw new ItemError("no value");
  if (value.length > 1000) throw new ItemError("the value is larger than BEP 44 allows");
  let record;
  try { record = bdecode(value); } catch (e) { throw new ItemError("the value: " + e.message); }
  const v2 = record instanceof Map ? record.get("v2") : null;
  if (!(ArrayBuffer.isView(v2) && v2.length === 32)) throw new ItemError("the value names no v2 info hash");
  return { key, salt, seq, seqText, sig, value, v2 };
}

/// The bytes BEP 44 signs: `4:salt<len>:<salt>` when salted, `3:seqi<seq>e1:v<bencoded v>`.
function signedBytes(item) {
  const enc = new TextEncoder();
  const parts = [];
  if (item.salt.length > 0) parts.push(enc.encode("4:salt" + item.salt.length + ":"), item.salt);
  parts.push(enc.encode("3:seqi" + item.seqText + "e1:v"), item.value);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/// Checks that `item` is signed by `key` (the hostname's); throws a Refusal naming why not.
async function verifyItem(item, key) {
  if (!equalBytes(item.key, key)) throw new Refusal(NAME_ITEM_WHAT, "it is signed for another key than the one in the address");
  let ok = false;
  try {
    const publicKey = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, item.sig, signedBytes(item));
  } catch (e) {
    throw new Refusal(NAME_ITEM_WHAT, "its signature cannot be checked here (" + e.message + ")");
  }
  if (!ok) throw new Refusal(NAME_ITEM_WHAT, "its signature does not match the key in the address");
}

/// Which of two verified items a name serves: the kept one (highest seen, or null) or the
/// one just fetched. {use, keep: true when `fetched` becomes the kept one, stale: a reason
/// when `fetched` was older}; throws a Refusal when both have one seq and differ.
function chooseItem(kept, fetched) {
  if (!kept || fetched.seq > kept.seq) return { use: fetched, keep: true, stale: null };
  if (fetched.seq === kept.seq) {
    if (equalBytes(fetched.value, kept.value) && equalBytes(fetched.salt, kept.salt)) return { use: kept, keep: false, stale: null };
    throw new Refusal(NAME_ITEM_WHAT, "seq " + fetched.seqText + " names another site than the item of the same seq seen before (a forgery or a fork)");
  }
  return { use: kept, keep: false, stale: "an older item (seq " + fetched.seqText + ") than the one seen before (seq " + kept.seqText + ") was refused" };
}

// MARK: the worker's site, for this origin

let nameItem = null;        // the item served now (verified), once read or fetched
let nameAsking = null;      // the item request under way, shared by navigations at once
let siteSource = null;      // {id, origin, label} of the site served now

/// The site this origin serves now: {id (32 bytes), origin (where its bytes are), label}.
/// On a name's origin, a navigation asks the gateway for the current item first.
async function originSite(navigation) {
  const key = nameKeyFromHost(self.location.hostname);
  if (!key) {
    const id = siteIdFromHost(self.location.hostname);
    if (!id) throw new Refusal("the site", "the address names no site id");
    siteSource = { id, origin: self.location.origin, label: self.location.hostname.split(".")[0] };
    return siteSource;
  }
  if (!nameItem) nameItem = await keptItem(key);
  if (navigation || !nameItem) {
    if (!nameAsking) nameAsking = askItem(key).finally(() => { nameAsking = null; });
    await nameAsking;
  }
  const label = base32Encode(nameItem.v2);
  const port = self.location.port ? ":" + self.location.port : "";
  siteSource = { id: nameItem.v2, origin: self.location.protocol + "//" + label + ".localhost" + port, label };
  stats.name = { seq: nameItem.seqText, site: label };
  return siteSource;
}

/// The item kept from an earlier visit, checked again (null if none, or if it fails).
async function keptItem(key) {
  const bytes = await readCache(NAME_ITEM_PATH);
  if (!bytes) return null;
  try {
    const item = parseItem(bytes);
    await verifyItem(item, key);
    return item;
  } catch {
    await deleteCache(NAME_ITEM_PATH);
    return null;
  }
}

/// Fetches the current item and decides (chooseItem) what the name serves; with no answer
/// from the gateway, the kept item serves (offline).
async function askItem(key) {
  let bytes;
  try {
    const response = await fetch(NAME_ITEM_PATH, { cache: "no-store", signal: AbortSignal.timeout(NAME_ITEM_TIMEOUT) });
    if (response.status !== 200) throw new Unavailable(NAME_ITEM_WHAT, "the gateway answered " + response.status, true);
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    if (nameItem) return;
    throw e instanceof Unavailable ? e : new Unavailable(NAME_ITEM_WHAT, "the gateway did not answer (" + e.message + ")");
  }
  let item;
  try { item = parseItem(bytes); } catch (e) { throw new Refusal(NAME_ITEM_WHAT, e.message); }
  await verifyItem(item, key);
  const choice = chooseItem(nameItem, item);
  if (choice.stale) record(stats.refused, { file: NAME_ITEM_WHAT, reason: choice.stale, url: NAME_ITEM_PATH });
  if (choice.keep) await writeCache(NAME_ITEM_PATH, bytes);
  nameItem = choice.use;
}

/// Where this origin's site bytes come from first (the gateway this worker came from).
function ownSource() { return siteSource ? siteSource.origin : self.location.origin; }

/// The site id's host label of the site served now.
function siteLabel() { return siteSource ? siteSource.label : self.location.hostname.split(".")[0]; }
