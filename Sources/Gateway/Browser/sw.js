// webseed verified mode: the service worker that answers every request of a site's origin.
// It trusts only the site id in the hostname: the info dict must hash to it, each file's
// piece layer must add up to the file's pieces root, and each piece (or whole small file)
// must hash to its place in the tree before a byte of it reaches the page. Verified bytes
// are kept in Cache Storage under the hash they were checked against, so a site visited
// before loads with every source gone; small files are also held in memory while the worker
// runs, so most answers need no await beyond the first.
// The gateway writes WEBSEED_MIME (its content types), WEBSEED_SPA and WEBSEED_SOURCES above
// this script.

const CACHE_NAME = "webseed-verified-1";
const SPAN = 1 << 20;              // files up to this size are fetched and served whole
const STREAM_SPAN = 4 << 20;       // bytes asked for at once when a larger file is streamed
const STREAM_AHEAD = 2;            // spans fetched and verified ahead of the page's reading
const HELD_LIMIT = 32 << 20;       // verified bytes held in memory at most (files up to SPAN)
const LINKS_AHEAD = 32;            // files a page loads, fetched while the bootstrap reloads it
const INFO_LIMIT = 64 << 20;       // the most an info dict may be
const CACHE_LIMIT = 64 << 20;      // larger files are verified but not kept
const FETCH_TIMEOUT = 30000;       // ms for one request to a source

/// Bytes that failed verification: never passed on.
class Refusal extends Error {
  constructor(file, reason) { super(file + ": " + reason); this.file = file; this.reason = reason; }
}
/// Bytes no source could give (offline, or every source failing). `answered`: a source
/// answered, with an error status (it does not hold them), rather than not at all.
class Unavailable extends Error {
  constructor(file, reason, answered = false) { super(file + ": " + reason); this.file = file; this.reason = reason; this.answered = answered; }
}

const stats = { verified: {}, refused: [], unavailable: [], fromMemory: 0, fromCache: 0, fromNetwork: 0, bySource: {}, badSources: [] };

self.addEventListener("install", (event) => {
  site().catch(() => {}); // the info dict starts loading while the worker activates
  event.waitUntil(self.skipWaiting());
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
// The bootstrap page names the address it is about to reload: that page and the files it
// loads are fetched and verified while the browser activates the worker and reloads.
self.addEventListener("message", (event) => {
  const data = event.data;
  if (data && typeof data.ahead === "string" && data.ahead.length <= 8192) event.waitUntil(ahead(data.ahead).catch(() => {}));
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return; // not this site's bytes: the browser's own way
  if (url.pathname === "/.webseed/status") return event.respondWith(statusResponse());
  if (url.pathname.startsWith("/.webseed/")) return; // the gateway's verified-mode routes
  event.respondWith(answer(event.request, url));
});

/// Adds to one of the status lists, which keep their last 100 entries.
function record(list, entry) {
  list.push(entry);
  if (list.length > 100) list.shift();
}

function statusResponse() {
  return new Response(JSON.stringify(stats), { headers: { "Content-Type": "application/json", "Cache-Control": "no-store" } });
}

// MARK: the site

let loading = null, loadingLabel = null;
/// The site this origin serves now (names.js: a name's origin may move to a newer version
/// at a navigation).
async function site(navigation = false) {
  const { id, label } = await originSite(navigation);
  if (!loading || loadingLabel !== label) {
    loadingLabel = label;
    loading = loadSite(id).catch((e) => { loading = null; throw e; });
  }
  return loading;
}

async function loadSite(id) {
  const info = await verifiedBytes("/.webseed/info/" + toHex(id), "/.webseed/info", "the info dict", INFO_LIMIT, null, async (bytes) => {
    if (!equalBytes(await sha256(bytes), id)) throw new Refusal("the info dict", "its SHA-256 is not the site id in the address");
  });
  let parsed;
  try { parsed = parseInfo(info); } catch (e) { throw new Refusal("the info dict", e.message); }
  // The web seeds are needed only when the gateways fail: asked for now, awaited then.
  const seeds = webSeeds().catch(() => []);
  return { info: parsed, index: new SiteFiles(parsed.files), layers: new Map(), webSeeds: seeds };
}

/// The torrent's web seeds (BEP 19 URLs, outside the info dict: hints, not trusted), as the
/// gateway lists them, or as kept from an earlier visit.
async function webSeeds() {
  const key = "/.webseed/webseeds";
  let bytes = null;
  try { bytes = await fetchBytes(key, "the web seeds", 65536, null); } catch { bytes = await readCache(key); }
  if (!bytes) return [];
  let list;
  try { list = JSON.parse(new TextDecoder().decode(bytes)); } catch { return []; }
  if (!Array.isArray(list)) return [];
  await writeCache(key, bytes);
  return list.filter((u) => typeof u === "string" && /^https?:\/\//i.test(u)).slice(0, 16);
}

/// Where a web seed holds a file (BEP 19): a URL ending in "/" is followed by the torrent's
/// name, then, for a torrent of several files, the file's path.
function webSeedURL(s, seed, file) {
  const base = seed.endsWith("/") ? seed + encodeSegment(s.info.name) : seed;
  const single = s.info.files.length === 1 && file.path.length === 1 && file.path[0] === s.info.name;
  return single ? base : base + fileURL(file);
}

/// A file's piece layer (its pieces' hashes), checked against its pieces root; null for a
/// file of one piece or less.
function layer(s, file) {
  const pieceLength = s.info.pieceLength;
  if (file.length <= pieceLength) return Promise.resolve(null);
  const key = toHex(file.root);
  if (!s.layers.has(key)) {
    const count = Math.ceil(file.length / pieceLength);
    const path = "/.webseed/layer/" + key;
    const loaded = verifiedBytes(path, path, file.name, count * 32, count * 32, async (bytes) => {
      const hashes = splitLayer(bytes);
      if (!equalBytes(await layerRoot(hashes, pieceLength), file.root)) throw new Refusal(file.name, "its piece layer does not match its pieces root");
    }).then(splitLayer);
    loaded.catch(() => s.layers.delete(key));
    s.layers.set(key, loaded);
  }
  return s.layers.get(key);
}

// MARK: bytes, from memory, Cache Storage or the network, always verified

/// The bytes kept under `cacheKey`, or else from `url` on the network, verified, then kept.
/// `expected`: their exact length when known. Every key names the hash its bytes were
/// verified against (the site id, a pieces root), and only this worker writes this cache
/// after verifying, so kept bytes are not hashed again: a new torrent on this origin never
/// reads an old torrent's entry, and the threat verified mode answers is the network and the
/// gateway, not the visitor's own storage.
async function verifiedBytes(cacheKey, url, what, limit, expected, verify, s = null, file = null) {
  const cached = await readCache(cacheKey);
  if (cached && (expected === null || cached.length === expected)) {
    stats.fromCache++;
    return cached;
  }
  const bytes = await fromSources(url, what, limit, null, expected, verify, s, file);
  await writeCache(cacheKey, bytes);
  return bytes;
}

/// Where a site's bytes come from, in order: the gateway this worker came from, then the
/// sources its operator lists (WEBSEED_SOURCES; "{site}" stands for the site id). A listed
/// source that sent bytes that failed verification is not asked again while this worker
/// runs. The worker's own gateway is always asked (it served the worker itself): a wrong
/// byte from it fails that request, and the next source is tried.
const badSources = new Set();
function sources() {
  const label = siteLabel();
  return [ownSource()].concat(WEBSEED_SOURCES.map((t) => t.replaceAll("{site}", label).replace(/\/+$/, "")));
}

/// `path` (with `range`) from the first source that gives bytes passing `verify`. For a
/// file's bytes (`file` and its site `s` given), the torrent's web seeds come last.
async function fromSources(path, what, limit, range, expected, verify, s = null, file = null) {
  let refusal = null, unavailable = null;
  const candidates = sources().map((source) => ({ source, url: source + path }));
  const gateways = candidates.length;
  for (let n = 0; ; n++) {
    if (n === gateways && file) {
      for (const seed of await s.webSeeds) candidates.push({ source: seed, url: webSeedURL(s, seed, file) });
    }
    if (n >= candidates.length) break;
    const { source, url } = candidates[n];
    if (badSources.has(source)) continue;
    let bytes;
    try {
      bytes = await fetchBytes(url, what, limit, range);
      if (expected !== null && bytes.length !== expected) throw new Refusal(what, "the source sent " + bytes.length + " bytes where " + expected + " were expected");
      await verify(bytes);
    } catch (e) {
      if (e instanceof Refusal) {
        if (source !== ownSource()) badSources.add(source);
        record(stats.badSources, { source, file: e.file, reason: e.reason });
        refusal = refusal || e;
      } else if (e instanceof Unavailable) {
        unavailable = unavailable || e;
      } else {
        throw e;
      }
      continue;
    }
    stats.fromNetwork++;
    stats.bySource[source] = (stats.bySource[source] || 0) + 1;
    return bytes;
  }
  throw refusal || unavailable || new Unavailable(what, "every source sent bytes that failed verification earlier");
}

/// The body of a GET of `url` (with `range`: {start, end}), at most `limit` bytes.
async function fetchBytes(url, what, limit, range) {
  const headers = range ? { Range: "bytes=" + range.start + "-" + (range.end - 1) } : {};
  let response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(FETCH_TIMEOUT) });
  } catch (e) {
    throw new Unavailable(what, "no source answered (" + e.message + ")");
  }
  if (response.status !== (range ? 206 : 200)) {
    throw new Unavailable(what, "the source answered " + response.status + (range ? " to a range request" : ""), true);
  }
  const declared = Number(response.headers.get("Content-Length"));
  if (declared > limit) {
    response.body.cancel();
    throw new Refusal(what, "the source sent more bytes than expected");
  }
  const reader = response.body.getReader();
  const parts = [];
  let total = 0;
  for (;;) {
    let step;
    try { step = await reader.read(); } catch (e) { throw new Unavailable(what, "the transfer broke off (" + e.message + ")"); }
    if (step.done) break;
    total += step.value.length;
    if (total > limit) {
      reader.cancel();
      throw new Refusal(what, "the source sent more bytes than expected");
    }
    parts.push(step.value);
  }
  return concat(parts, total);
}

function concat(parts, total) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

let opened = null;
function cache() {
  if (!opened) opened = caches.open(CACHE_NAME).catch((e) => { opened = null; throw e; });
  return opened;
}

async function readCache(key) {
  try {
    const r = await (await cache()).match(key);
    return r ? new Uint8Array(await r.arrayBuffer()) : null;
  } catch { return null; }
}

async function isKept(key) {
  try { return (await (await cache()).match(key)) !== undefined; } catch { return false; }
}

async function writeCache(key, bytes) {
  if (bytes.length > CACHE_LIMIT) return;
  try {
    await (await cache()).put(key, new Response(bytes));
  } catch { /* storage full or refused: served anyway, not kept */ }
}

function fileURL(file) {
  return "/" + file.path.map(encodeSegment).join("/");
}

/// Checks the bytes of pieces [first, first + n) of `file` (`bytes` starts at piece `first`).
async function checkPieces(s, file, hashes, first, bytes) {
  const pieceLength = s.info.pieceLength;
  const checks = [];
  for (let o = 0, i = first; o < bytes.length; o += pieceLength, i++) {
    const piece = bytes.subarray(o, Math.min(o + pieceLength, bytes.length));
    checks.push(pieceHash(piece, pieceLength).then((h) => {
      if (!equalBytes(h, hashes[i])) throw new Refusal(file.name, "piece " + i + " does not match its hash");
    }));
  }
  await Promise.all(checks);
}

/// Whole verified files of up to SPAN bytes, held while the worker runs: pieces root (hex) →
/// promise of the bytes, least recently used first. Requests for a file being fetched share
/// that fetch.
const held = new Map();
const heldSizes = new Map();
let heldBytes = 0;

/// A whole file, verified: from memory, else from Cache Storage, else from the sources.
function wholeFile(s, file) {
  if (file.length === 0) return Promise.resolve(new Uint8Array(0));
  const key = toHex(file.root);
  const known = held.get(key);
  if (known) {
    held.delete(key);
    held.set(key, known);
    if (heldSizes.has(key)) stats.fromMemory++;
    return known;
  }
  const loading = loadWholeFile(s, file);
  if (file.length > SPAN) return loading;
  held.set(key, loading);
  loading.then(() => {
    if (held.get(key) !== loading) return;
    heldSizes.set(key, file.length);
    heldBytes += file.length;
    for (const k of held.keys()) {
      if (heldBytes <= HELD_LIMIT) break;
      if (!heldSizes.has(k)) continue;
      heldBytes -= heldSizes.get(k);
      heldSizes.delete(k);
      held.delete(k);
    }
  }, () => { if (held.get(key) === loading) held.delete(key); });
  return loading;
}

async function loadWholeFile(s, file) {
  const hashes = await layer(s, file);
  const bytes = await verifiedBytes("/.webseed/file/" + toHex(file.root), fileURL(file), file.name, file.length, file.length, async (b) => {
    if (hashes) await checkPieces(s, file, hashes, 0, b);
    else if (!equalBytes(await smallFileRoot(b), file.root)) throw new Refusal(file.name, "its bytes do not match its pieces root");
  }, s, file);
  return bytes;
}

/// Pieces [first, end) of a large file, fetched in one request and verified.
async function pieceSpan(s, file, hashes, first, end) {
  const pieceLength = s.info.pieceLength;
  const range = { start: first * pieceLength, end: Math.min(end * pieceLength, file.length) };
  const length = range.end - range.start;
  const bytes = await fromSources(fileURL(file), file.name, length, range, length, (b) => checkPieces(s, file, hashes, first, b), s, file);
  note(file, bytes.length);
  return bytes;
}

function note(file, n) {
  stats.verified[file.name] = (stats.verified[file.name] || 0) + n;
}

// MARK: answers

/// The file of the site a same-origin address names (as a request for it is answered), or null.
function fileAt(s, url) {
  try {
    const m = s.index.match(pathSegments(url.pathname), url.search ? url.search.slice(1) : null, WEBSEED_SPA);
    return m.file !== undefined ? s.info.files[m.file] : null;
  } catch { return null; }
}

/// Fetches and verifies ahead (into memory) the page at `href` and the files it loads, as the
/// bootstrap reloads it. Failures here are only a missed head start: the page's own requests
/// fetch again and report.
async function ahead(href) {
  const url = new URL(href, self.location.origin);
  if (url.origin !== self.location.origin) return;
  const s = await site();
  const page = fileAt(s, url);
  if (!page || page.length > SPAN) return;
  const bytes = await wholeFile(s, page);
  if (!mimeType(page.name).startsWith("text/html")) return;
  const links = pageLinks(new TextDecoder().decode(bytes), LINKS_AHEAD).map((l) => {
    try { return new URL(l, url); } catch { return null; }
  });
  await Promise.allSettled(links.map((u) => {
    const file = u && u.origin === self.location.origin ? fileAt(s, u) : null;
    return file && file.length <= SPAN ? wholeFile(s, file) : null;
  }));
}

async function answer(request, url) {
  const navigation = request.mode === "navigate";
  let what = url.pathname;
  try {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" } });
    }
    const s = await site(navigation);
    let segments;
    try { segments = pathSegments(url.pathname); } catch (e) {
      return new Response("bad path: " + e.message + "\n", { status: 400, headers: { "Content-Type": "text/plain; charset=utf-8" } });
    }
    const m = s.index.match(segments, url.search ? url.search.slice(1) : null, WEBSEED_SPA);
    if (m.redirect !== undefined) return Response.redirect(new URL(m.redirect, url).href, 301);
    if (m.listing !== undefined) return html(200, listing(m.listing, m.entries));
    if (m.notFound) return new Response("not found\n", { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" } });
    const file = s.info.files[m.file];
    what = file.name;
    return await serveFile(s, file, request, m.found ? 200 : 404);
  } catch (e) {
    if (e instanceof Refusal) {
      record(stats.refused, { file: e.file, reason: e.reason, url: url.pathname });
      return navigation ? html(502, refusalPage(e)) : Response.error();
    }
    if (e instanceof Unavailable) {
      record(stats.unavailable, { file: e.file, reason: e.reason, url: url.pathname });
      return navigation ? html(503, unavailablePage(e)) : Response.error();
    }
    record(stats.refused, { file: what, reason: String(e && e.message || e), url: url.pathname });
    return navigation ? html(500, refusalPage(new Refusal(what, String(e && e.message || e)))) : Response.error();
  }
}

async function serveFile(s, file, request, status) {
  const headers = {
    "Content-Type": mimeType(file.name),
    "X-Content-Type-Options": "nosniff",
    "Accept-Ranges": "bytes",
    "ETag": '"' + (file.root ? toHex(file.root) : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") + '"',
  };
  let range = status === 200 ? parseRange(request.headers.get("Range"), file.length) : null;
  const ifRange = request.headers.get("If-Range");
  if (ifRange !== null && ifRange.trim() !== headers.ETag) range = null;
  if (range === "unsatisfiable") {
    return new Response("range not satisfiable\n", { status: 416, headers: { "Content-Range": "bytes */" + file.length, "Content-Type": "text/plain; charset=utf-8" } });
  }
  let code = status;
  let start = 0, end = file.length;
  if (range) {
    code = 206;
    start = range.start;
    end = range.end;
    headers["Content-Range"] = "bytes " + start + "-" + (end - 1) + "/" + file.length;
  }
  headers["Content-Length"] = String(end - start);
  const body = request.method === "HEAD" ? null : undefined;

  // Small files, and files already kept, come whole; larger ones stream piece by piece,
  // the first span verified before the status goes out.
  const kept = file.length > SPAN && file.length <= CACHE_LIMIT && await isKept("/.webseed/file/" + toHex(file.root));
  if (file.length <= SPAN || kept) {
    const bytes = await wholeFile(s, file);
    if (bytes.length) note(file, bytes.length);
    return new Response(body === null ? null : bytes.subarray(start, end), { status: code, headers });
  }
  const stream = await pieceStream(s, file, start, end);
  return new Response(body === null ? null : stream, { status: code, headers });
}

/// Bytes [start, end) of a large file as a stream of verified spans: the first of SPAN bytes
/// (the status goes out once it verified), then STREAM_SPAN at a time. While the page reads
/// one span, the next STREAM_AHEAD are being fetched and verified, so the network and the
/// hashing overlap with the page's reading. The whole file, read through, is kept for
/// offline use.
async function pieceStream(s, file, start, end) {
  const hashes = await layer(s, file);
  const pieceLength = s.info.pieceLength;
  const lastPiece = Math.ceil(end / pieceLength);
  let piece = Math.floor(start / pieceLength);
  let size = SPAN;
  const keep = start === 0 && end === file.length && file.length <= CACHE_LIMIT ? [] : null;
  const queue = [];
  function ask() {
    while (piece < lastPiece && queue.length <= STREAM_AHEAD) {
      const first = piece;
      const until = Math.min(first + Math.max(1, Math.floor(size / pieceLength)), lastPiece);
      piece = until;
      size = STREAM_SPAN;
      const span = pieceSpan(s, file, hashes, first, until).then((bytes) => ({ first, bytes }));
      span.catch(() => {});  // a span asked for ahead and never read is no unhandled rejection
      queue.push(span);
    }
  }
  async function next() {
    ask();
    const current = queue.shift();
    const { first, bytes } = await current;
    if (keep) keep.push(bytes);
    const from = Math.max(start - first * pieceLength, 0);
    const to = Math.min(end - first * pieceLength, bytes.length);
    return bytes.subarray(from, to);
  }
  const firstChunk = await next();
  let cancelled = false;
  return new ReadableStream({
    start(controller) { controller.enqueue(firstChunk); },
    async pull(controller) {
      if (cancelled) return;
      if (queue.length === 0) {
        controller.close();
        if (keep) await writeCache("/.webseed/file/" + toHex(file.root), concat(keep, file.length));
        return;
      }
      try {
        controller.enqueue(await next());
      } catch (e) {
        record(stats.refused, { file: file.name, reason: e.reason || String(e), url: fileURL(file) });
        controller.error(e);
      }
    },
    cancel() { cancelled = true; piece = lastPiece; },
  });
}

// MARK: pages

function html(status, text) {
  return new Response(text, { status, headers: { "Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store" } });
}

function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function page(title, id, e, text) {
  return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escapeHTML(title) + "</title>" +
    "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#111}code{background:#eee;padding:0 .2em}</style></head>" +
    "<body><main id=\"" + id + "\" data-file=\"" + escapeHTML(e.file) + "\" data-reason=\"" + escapeHTML(e.reason) + "\">" +
    "<h1>" + escapeHTML(title) + "</h1><p><code>" + escapeHTML(e.file) + "</code>: " + escapeHTML(e.reason) + ".</p><p>" + text + "</p></main></body></html>";
}

function refusalPage(e) {
  const trust = nameKeyFromHost(self.location.hostname)
    ? "the key in the address, which signs each version of this site"
    : "the site id in the address";
  return page("webseed refused this page", "webseed-refusal", e,
    "This site is served in verified mode: your browser checks every byte against " + trust + ". " +
    "These bytes did not match, so they were not shown. Whoever sent them (the gateway, or something on the way) " +
    "sent something other than what the site's author published.");
}

function unavailablePage(e) {
  if (e.answered) {
    return page("Not available", "webseed-unavailable", e,
      "The sources of this site answered, but none of them holds this page (a gateway keeps only the versions " +
      "of a site it still serves), and it was not kept from an earlier visit. Pages visited before still load.");
  }
  return page("Not available offline", "webseed-unavailable", e,
    "No source of this site can be reached, and this page was not kept from an earlier visit. " +
    "Pages visited before still load.");
}

function listing(folder, entries) {
  const title = "/" + folder + (folder ? "/" : "");
  const rows = entries.map((e) => "<li><a href=\"" + encodeSegment(e.name) + (e.isFolder ? "/" : "") + "\">" +
    escapeHTML(e.name) + (e.isFolder ? "/" : "") + "</a>" + (e.isFolder ? "" : " " + e.size + " bytes") + "</li>").join("");
  return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Index of " + escapeHTML(title) + "</title></head>" +
    "<body><h1>Index of " + escapeHTML(title) + "</h1><ul>" + rows + "</ul></body></html>";
}
