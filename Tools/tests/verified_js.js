// Unit tests of verified mode's browser code (Sources/Gateway/Browser/*.js) under node: the
// bencode decoder, BEP 52 Merkle roots against Tests/Fixtures/vectors.json and libtorrent's
// own v2 torrents, the info dict parser, path and range rules. Node's WebCrypto hashes as
// the browser's does. One ok/FAIL line per check; last line "N passed, M failed".
//
//   node Tools/tests/verified_js.js [--fixtures Tests/Fixtures]
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const nodeCrypto = require("crypto");

const root = path.resolve(__dirname, "..", "..");
const fixturesArg = process.argv.indexOf("--fixtures");
const fixtures = fixturesArg > 0 ? process.argv[fixturesArg + 1] : path.join(root, "Tests", "Fixtures");
const browser = path.join(root, "Sources", "Gateway", "Browser");

// The worker's library files in one context, as the gateway concatenates them.
const context = vm.createContext({ crypto: globalThis.crypto || nodeCrypto.webcrypto, TextDecoder, TextEncoder, console,
  WEBSEED_MIME: { text: { html: "text/html", css: "text/css" }, binary: { png: "image/png" } } });
// names.js uses the worker's refusals (sw.js, which needs a worker to run, is not loaded).
vm.runInContext("class Refusal extends Error { constructor(file, reason) { super(file + ': ' + reason); this.file = file; this.reason = reason; } }\n" +
  "class Unavailable extends Refusal {}", context);
for (const f of ["bencode.js", "merkle.js", "site.js", "names.js"]) vm.runInContext(fs.readFileSync(path.join(browser, f), "utf8"), context, { filename: f });
const js = (name) => vm.runInContext(name, context);

let passed = 0, failed = 0;
function check(ok, what, detail) {
  if (ok) { passed++; console.log("ok " + what); } else { failed++; console.log("FAIL " + what + (detail ? ": " + detail : "")); }
}
function throws(f, pattern, what) {
  try { f(); check(false, what, "did not throw"); } catch (e) { check(pattern.test(e.message), what, e.message); }
}
const bytes = (s) => new TextEncoder().encode(s);
const hex = (b) => Buffer.from(b).toString("hex");

/// data(seed, n) of vectors.json: SHA256(seed:0) ‖ SHA256(seed:1) ‖ … cut to n bytes.
function vectorData(seed, n) {
  const out = Buffer.alloc(n);
  for (let i = 0, o = 0; o < n; i++, o += 32) nodeCrypto.createHash("sha256").update(seed + ":" + i).digest().copy(out, o);
  return new Uint8Array(out);
}

/// The span [start, end) of the value at `pos` in bencoded bytes (to find a torrent's info dict).
function span(b, pos) {
  const c = b[pos];
  if (c === 0x69) return [pos, b.indexOf(0x65, pos) + 1];
  if (c === 0x6c || c === 0x64) {
    let p = pos + 1;
    while (b[p] !== 0x65) p = span(b, p)[1];
    return [pos, p + 1];
  }
  const colon = b.indexOf(0x3a, pos);
  return [pos, colon + 1 + Number(Buffer.from(b.subarray(pos, colon)).toString())];
}
function infoBytes(torrent) {
  const key = Buffer.from("4:info");
  const at = Buffer.from(torrent).indexOf(key);
  const [s, e] = span(torrent, at + key.length);
  return torrent.subarray(s, e);
}

async function main() {
  const bdecode = js("bdecode");

  // bencode
  const d = bdecode(bytes("d1:ai-42e1:bl3:xyzi0eee"));
  check(d.get("a") === -42 && new TextDecoder().decode(d.get("b")[0]) === "xyz" && d.get("b")[1] === 0, "bencode: dict, list, integers, strings");
  throws(() => bdecode(bytes("d1:bi1e1:ai2ee")), /not sorted/, "bencode: unsorted keys refused");
  throws(() => bdecode(bytes("d1:ai1e1:ai2ee")), /not sorted/, "bencode: duplicate keys refused");
  throws(() => bdecode(bytes("i-0e")), /negative zero/, "bencode: -0 refused");
  throws(() => bdecode(bytes("i03e")), /leading zero/, "bencode: leading zero refused");
  throws(() => bdecode(bytes("i99999999999999999e")), /too (large|long)/, "bencode: integer beyond 2^53 refused");
  throws(() => bdecode(bytes("4294967295:x")), /longer than the data/, "bencode: a string longer than the data is refused before allocation");
  throws(() => bdecode(bytes("l".repeat(100) + "e".repeat(100))), /deeply/, "bencode: nesting limit");
  throws(() => bdecode(bytes("i1ei2e")), /trailing/, "bencode: trailing data refused");
  throws(() => bdecode(Uint8Array.from("d3:\xff\xfe\xfdi1ee", (c) => c.charCodeAt(0))), /UTF-8/, "bencode: non-UTF-8 key refused");
  throws(() => bdecode(bytes("l1:a")), /truncated/, "bencode: truncated list refused");
  throws(() => bdecode(new Uint8Array(0)), /truncated/, "bencode: empty input refused");

  // Merkle roots of the shared vectors (files of one piece or less, and files of many pieces
  // through their piece layer).
  const vectors = JSON.parse(fs.readFileSync(path.join(fixtures, "vectors.json"), "utf8"));
  for (const v of vectors) {
    for (const f of v.files) {
      if (f.length === 0) continue;
      const data = vectorData(f.seed, f.length);
      let got;
      if (f.length <= v.piece_length) {
        got = await js("smallFileRoot")(data);
      } else {
        const layer = [];
        for (let o = 0; o < data.length; o += v.piece_length) layer.push(await js("pieceHash")(data.subarray(o, o + v.piece_length), v.piece_length));
        got = await js("layerRoot")(layer, v.piece_length);
      }
      check(hex(got) === v.pieces_roots[f.path], "merkle: pieces root of " + v.label + " " + f.path, hex(got));
    }
  }

  // libtorrent's own v2 torrents: info hash, files, piece layers against their roots.
  const torrent = (n) => new Uint8Array(fs.readFileSync(path.join(fixtures, "libtorrent", n)));
  const multi = torrent("v2_multipiece_file.torrent");
  const top = bdecode(multi, true);
  const info = js("parseInfo")(infoBytes(multi));
  const layers = top.get("piece layers");
  let layersOK = info.files.length > 0;
  for (const f of info.files) {
    if (f.length <= info.pieceLength) continue;
    const raw = layers.get(new TextDecoder("latin1").decode(f.root));
    const got = raw === undefined ? null : await js("layerRoot")(js("splitLayer")(raw), info.pieceLength);
    layersOK = layersOK && got !== null && hex(got) === hex(f.root);
  }
  check(layersOK, "merkle: v2_multipiece_file.torrent's piece layers add up to their pieces roots");
  check(info.files.some((f) => f.length > info.pieceLength), "parse: v2_multipiece_file.torrent has a file of several pieces");

  const bad = torrent("v2_invalid_piece_layer_root.torrent");
  const badInfo = js("parseInfo")(infoBytes(bad));
  const badLayers = bdecode(bad.subarray(0, span(bad, 0)[1]), true).get("piece layers"); // the file ends in a stray byte
  let mismatch = false;
  for (const f of badInfo.files) {
    const raw = badLayers.get(new TextDecoder("latin1").decode(f.root));
    if (ArrayBuffer.isView(raw) && raw.length % 32 === 0) {
      const got = await js("layerRoot")(js("splitLayer")(raw), badInfo.pieceLength);
      mismatch = mismatch || hex(got) !== hex(f.root);
    }
  }
  check(mismatch, "merkle: v2_invalid_piece_layer_root.torrent's layer does not add up to its root");

  const v2 = torrent("v2.torrent");
  const v2info = js("parseInfo")(infoBytes(v2));
  check(v2info.pieceLength >= 16384 && v2info.files.every((f) => f.length === 0 || f.root.length === 32), "parse: v2.torrent's files and roots");
  throws(() => js("parseInfo")(infoBytes(torrent("v2_no_power2_piece.torrent"))), /piece length/, "parse: a piece length not a power of two is refused");
  throws(() => js("parseInfo")(bytes("d4:name1:a12:piece lengthi16384ee")), /v2/, "parse: an info dict without meta version 2 is refused");
  throws(() => js("parseInfo")(bytes("d9:file treed2:..d0:d6:lengthi1e11:pieces root32:" + "x".repeat(32) + "eee12:meta versioni2e4:name1:a12:piece lengthi16384ee")),
    /path component/, "parse: a '..' path component is refused");

  // Site ids in host names.
  const id32 = js("siteIdFromHost")("a".repeat(52) + ".localhost");
  check(id32 !== null && id32.every((b) => b === 0), "site id: base32 label decodes");
  const idHex = js("siteIdFromHost")("ff".repeat(32) + ".localhost");
  check(idHex !== null && idHex.every((b) => b === 255), "site id: hex label decodes");
  check(js("siteIdFromHost")("A".repeat(52) + ".localhost") === null, "site id: uppercase is not a site id");
  check(js("siteIdFromHost")("a".repeat(51) + "b.localhost") === null, "site id: non-zero trailing bits refused");
  check(js("siteIdFromHost")("a".repeat(52) + ".example.com") === null, "site id: only <id>.localhost");

  // Paths and matches, as the gateway's SitePath and SiteIndex.
  const seg = js("pathSegments");
  check(JSON.stringify(seg("/docs/caf%C3%A9.txt")) === JSON.stringify(["docs", "café.txt"]), "path: percent-decoded once");
  check(JSON.stringify(seg("/a/")) === JSON.stringify(["a", ""]), "path: trailing slash");
  for (const [p, why] of [["/a/../b", /'\.'/], ["/%2e%2e/x", /'\.'/], ["/a%2fb", /encoded/], ["/a\\b", /\\/], ["/a%00", /NUL/], ["//a", /'\.'/], ["/%zz", /malformed/], ["/%ff", /UTF-8/]]) {
    throws(() => seg(p), why, "path: " + p + " refused");
  }
  const files = new (js("SiteFiles"))([
    { path: ["index.html"], name: "index.html", length: 1 }, { path: ["404.html"], name: "404.html", length: 1 },
    { path: ["docs", "guide", "index.html"], name: "docs/guide/index.html", length: 1 }, { path: ["docs", "a.txt"], name: "docs/a.txt", length: 5 },
  ]);
  const m = (p, spa) => JSON.stringify(files.match(seg(p), null, spa || false));
  check(m("/") === JSON.stringify({ file: 0, found: true }), "match: / is index.html");
  check(m("/docs/guide") === JSON.stringify({ redirect: "guide/" }), "match: a folder without / moves");
  check(m("/docs/guide/") === JSON.stringify({ file: 2, found: true }), "match: a folder's index.html");
  check(files.match(seg("/docs/"), null, false).listing === "docs", "match: a folder without index.html is listed");
  check(m("/nope") === JSON.stringify({ file: 1, found: false }), "match: a missing path is the site's 404.html");
  check(m("/app/route", true) === JSON.stringify({ file: 0, found: true }), "match: spa serves index.html for extensionless paths");
  check(js("encodeSegment")("café a") === "caf%C3%A9%20a", "path: segments encoded as the gateway does");

  // Ranges, as ByteRange.parse.
  const r = (h, n) => JSON.stringify(js("parseRange")(h, n));
  check(r("bytes=0-9", 100) === JSON.stringify({ start: 0, end: 10 }), "range: first bytes");
  check(r("bytes=-10", 100) === JSON.stringify({ start: 90, end: 100 }), "range: suffix");
  check(r("bytes=90-", 100) === JSON.stringify({ start: 90, end: 100 }), "range: open end");
  check(r("bytes=200-", 100) === '"unsatisfiable"', "range: beyond the end");
  check(r("bytes=0-1,5-6", 100) === "null" && r("junk", 100) === "null" && r("bytes=9-2", 100) === "null", "range: several or malformed mean the whole file");
  check(js("mimeType")("a/b.HTML") === "text/html; charset=utf-8" && js("mimeType")("x.png") === "image/png" && js("mimeType")("noext") === "application/octet-stream",
    "mime: from the gateway's table");

  // The files a page loads, fetched ahead while the bootstrap reloads it.
  const links = js("pageLinks");
  const page = '<link rel="stylesheet" href="css/site.css"><link rel=icon href=favicon.svg><script src=\'js/app.js\'></script>' +
    '<a href="other.html">x</a><img alt="a" src="images/a.png"><img src="images/a.png"><script>var s = "<img src=x.png>";</script>';
  check(JSON.stringify(links(page, 10)) === JSON.stringify(["css/site.css", "favicon.svg", "js/app.js", "images/a.png", "x.png"]),
    "page links: stylesheets, icons, scripts and images once each, not links to pages", JSON.stringify(links(page, 10)));
  check(links(page, 2).length === 2 && links("<img src=" + "a".repeat(5000) + ">", 10).length === 0 && links("<img", 10).length === 0,
    "page links: bounded in number and tag length, unfinished tags ignored");

  await names();

  console.log(passed + " passed, " + failed + " failed");
  process.exitCode = failed ? 1 : 0;
}

/// Names (names.js): BEP 44's test vectors, items signed here by node's own Ed25519, and
/// hostile items.
async function names() {
  const refusal = async (f) => { try { await f(); return "accepted"; } catch (e) { return e.reason || e.message; } };
  const bepKey = Buffer.from("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548", "hex");
  check(hex(js("nameKeyFromHost")("k-o77yjec2sgjwgz6acnqiamie7esdf7gzassdkemhnx24347h4vea.localhost")) === hex(bepKey),
    "names: the key of a k- host label (SiteName's form)");
  check(js("nameKeyFromHost")("k-o77yjec2sgjwgz6acnqiamie7esdf7gzassdkemhnx24347h4veb.localhost") === null &&
    js("nameKeyFromHost")("o77yjec2sgjwgz6acnqiamie7esdf7gzassdkemhnx24347h4vea.localhost") === null &&
    js("nameKeyFromHost")("k-o77yjec2sgjwgz6acnqiamie7esdf7gzassdkemhnx24347h4vea.example.com") === null,
    "names: non-zero trailing bits, a site id, another domain are no name");
  const id = new Uint8Array(32).map((_, i) => i * 7 + 1);
  check(hex(js("siteIdFromHost")(js("base32Encode")(id) + ".localhost")) === hex(id), "names: a v2 hash to its site id label and back");

  // BEP 44's vectors: the signed bytes, unsalted and salted, verified with WebCrypto.
  const hello = bytes("12:Hello World!");
  const vector = (salt, sig) => ({ key: bepKey, salt: bytes(salt), seq: 1n, seqText: "1", sig: Buffer.from(sig, "hex"), value: hello });
  const plainItem = vector("", "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01");
  const saltItem = vector("foobar", "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08");
  check(Buffer.from(js("signedBytes")(plainItem)).toString() === "3:seqi1e1:v12:Hello World!", "names: signed bytes of an unsalted item (BEP 44)");
  check(Buffer.from(js("signedBytes")(saltItem)).toString() === "4:salt6:foobar3:seqi1e1:v12:Hello World!", "names: signed bytes of a salted item (BEP 44)");
  check(await refusal(() => js("verifyItem")(plainItem, bepKey)) === "accepted", "names: BEP 44's unsalted vector verifies");
  check(await refusal(() => js("verifyItem")(saltItem, bepKey)) === "accepted", "names: BEP 44's salted vector verifies");
  check(/signature/.test(await refusal(() => js("verifyItem")({ ...plainItem, seqText: "2", seq: 2n }, bepKey))), "names: the vector with another seq is refused");
  check(/signature/.test(await refusal(() => js("verifyItem")({ ...saltItem, salt: bytes("foobaz") }, bepKey))), "names: the vector with another salt is refused");

  // Items as the gateway sends them (ResolvedItemFile.encode: k, salt, seq, sig, v), signed by node.
  const pair = () => {
    const { publicKey, privateKey } = nodeCrypto.generateKeyPairSync("ed25519");
    return { key: new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(12)), privateKey };
  };
  const owner = pair(), other = pair();
  const record = (v2) => Buffer.concat([bytes("d2:ih20:"), new Uint8Array(20).fill(9), bytes("2:v232:"), v2, bytes("e")]);
  const str = (b) => Buffer.concat([bytes(b.length + ":"), b]);
  const item = (signer, seq, v2, { salt = new Uint8Array(0), key = signer.key } = {}) => {
    const value = record(v2);
    const signed = Buffer.concat([salt.length ? Buffer.concat([bytes("4:salt"), str(salt)]) : Buffer.alloc(0), bytes("3:seqi" + seq + "e1:v"), value]);
    const sig = nodeCrypto.sign(null, signed, signer.privateKey);
    return new Uint8Array(Buffer.concat([bytes("d1:k"), str(key), bytes("4:salt"), str(salt), bytes("3:seqi" + seq + "e3:sig"), str(sig), bytes("1:v"), value, bytes("e")]));
  };
  const parse = (b) => js("parseItem")(b);
  const siteA = new Uint8Array(32).fill(0xa1), siteB = new Uint8Array(32).fill(0xb2);
  const good = item(owner, 5, siteA);
  const parsed = parse(good);
  check(parsed.seq === 5n && hex(parsed.v2) === hex(siteA) && hex(parsed.key) === hex(owner.key), "names: an item's seq, key and v2");
  check(await refusal(() => js("verifyItem")(parsed, owner.key)) === "accepted", "names: an item signed by the name's key verifies");
  check(await refusal(() => js("verifyItem")(parse(item(owner, 6, siteB, { salt: bytes("site") })), owner.key)) === "accepted", "names: a salted item verifies");
  const flip = (b, at) => { const c = new Uint8Array(b); c[at] ^= 1; return c; };
  const vAt = Buffer.from(good).indexOf("2:v232:") + 7;
  check(/signature does not match/.test(await refusal(async () => js("verifyItem")(parse(flip(good, vAt)), owner.key))), "names: a byte of v2 changed: refused");
  const seqAt = Buffer.from(good).indexOf("3:seqi5e") + 6;
  const seqChanged = new Uint8Array(good); seqChanged[seqAt] = 0x39;
  check(/signature does not match/.test(await refusal(async () => js("verifyItem")(parse(seqChanged), owner.key))), "names: seq changed: refused");
  check(/another key/.test(await refusal(async () => js("verifyItem")(parse(item(other, 9, siteB)), owner.key))), "names: an item of another key: refused");
  check(/signature does not match/.test(await refusal(async () => js("verifyItem")(parse(item(other, 9, siteB, { key: owner.key })), owner.key))),
    "names: the name's key with another key's signature: refused");

  // Never a lower seq; one seq names one value.
  const choose = (kept, fetched) => js("chooseItem")(kept && parse(kept), parse(fetched));
  const newer = item(owner, 7, siteB);
  check(choose(null, good).keep && choose(good, newer).keep && hex(choose(good, newer).use.v2) === hex(siteB), "names: a first or higher seq is used and kept");
  const stale = choose(newer, good);
  check(!stale.keep && hex(stale.use.v2) === hex(siteB) && /older item \(seq 5\).*seq 7/.test(stale.stale), "names: a lower seq is refused, the kept version stays");
  check(!choose(good, good).keep && !choose(good, good).stale, "names: the same item again changes nothing");
  check(/forgery or a fork/.test(await refusal(() => choose(good, item(owner, 5, siteB)))), "names: one seq naming another site: refused");

  // Hostile items: each refused with a reason, none throws anything else.
  const hostile = {
    "truncated": good.subarray(0, good.length - 3),
    "a string longer than the item": bytes("d1:k99999999:"),
    "trailing bytes": Buffer.concat([good, bytes("x")]),
    "unsorted keys": bytes("d1:v1:x1:k1:xe"),
    "a list": bytes("le"),
    "over 4 KiB": new Uint8Array(5000).fill(0x64),
    "a leading zero": bytes("d3:seqi05ee"),
    "seq past 2^63": Buffer.concat([bytes("d1:k"), str(owner.key), bytes("3:seqi9223372036854775808e3:sig"), str(new Uint8Array(64)), bytes("1:v"), record(siteA), bytes("e")]),
    "a value without v2": Buffer.concat([bytes("d1:k"), str(owner.key), bytes("3:seqi1e3:sig"), str(new Uint8Array(64)), bytes("1:vd2:ih20:"), new Uint8Array(20), bytes("ee")]),
    "a short key": Buffer.concat([bytes("d1:k"), str(owner.key.subarray(1)), bytes("3:seqi1e3:sig"), str(new Uint8Array(64)), bytes("1:v"), record(siteA), bytes("e")]),
    "nested too deeply": Buffer.concat([bytes("d1:v"), bytes("l".repeat(100)), bytes("e".repeat(100)), bytes("e")]),
  };
  for (const [what, b] of Object.entries(hostile)) {
    let got;
    try { parse(new Uint8Array(b)); got = "accepted"; } catch (e) { got = e instanceof js("ItemError") ? "refused" : "threw " + e; }
    check(got === "refused", "names: hostile item refused: " + what, got);
  }
}

main().catch((e) => { console.log("FAIL crashed: " + (e && e.stack || e)); console.log(passed + " passed, " + (failed + 1) + " failed"); process.exitCode = 1; });
