// webseed verified mode: a site as the worker sees it. The site id comes from the hostname,
// the file list from the info dict (once its SHA-256 is the id), and requests resolve to
// files by the plain gateway's rules (SiteIndex.match, SitePath, ByteRange, MIME).

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/// The 32-byte v2 info hash a site origin's first label names (52 base32 characters or 64
/// hex digits, lowercase), or null.
function siteIdFromHost(hostname) {
  const m = /^([a-z2-7]{52}|[0-9a-f]{64})\.localhost\.?$/.exec(hostname);
  if (!m) return null;
  const label = m[1];
  const out = new Uint8Array(32);
  if (label.length === 64) {
    for (let i = 0; i < 32; i++) out[i] = parseInt(label.substr(i * 2, 2), 16);
    return out;
  }
  let buffer = 0, bits = 0, n = 0;
  for (const c of label) {
    buffer = (buffer << 5) | BASE32.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out[n++] = (buffer >> (bits - 8)) & 255;
      bits -= 8;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) return null; // non-zero trailing bits
  return out;
}

class InfoError extends Error {}

/// The files of a v2 info dict: [{path: [..], name: "a/b", length, root (Uint8Array|null)}],
/// sorted by path as the file tree is. Refuses what a v2 info dict may not hold.
function parseInfo(infoBytes) {
  const info = bdecode(infoBytes);
  if (!(info instanceof Map)) throw new InfoError("the info dict is not a dict");
  if (info.get("meta version") !== 2) throw new InfoError("not a v2 torrent");
  const pieceLength = info.get("piece length");
  if (!Number.isInteger(pieceLength) || pieceLength < BLOCK || pieceLength > (1 << 28) || (pieceLength & (pieceLength - 1)) !== 0) {
    throw new InfoError("bad piece length");
  }
  const tree = info.get("file tree");
  if (!(tree instanceof Map)) throw new InfoError("no file tree");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const files = [];
  function walk(node, path) {
    if (path.length > 64) throw new InfoError("file tree too deep");
    for (const [key, child] of node) {
      if (!(child instanceof Map)) throw new InfoError("bad file tree entry");
      if (key === "") {
        if (path.length === 0) throw new InfoError("a file without a name");
        const length = child.get("length");
        if (!Number.isInteger(length) || length < 0) throw new InfoError("bad length of " + path.join("/"));
        const attr = child.get("attr");
        if (ArrayBuffer.isView(attr) && (attr.includes(0x6c) || attr.includes(0x70))) continue; // symlinks, padding
        const root = child.get("pieces root");
        if (length > 0 && !(ArrayBuffer.isView(root) && root.length === 32)) throw new InfoError("no pieces root for " + path.join("/"));
        files.push({ path, name: path.join("/"), length, root: length > 0 ? root : null });
        continue;
      }
      if (key === "." || key === ".." || key.includes("/") || key.includes("\\") || key.includes("\0")) {
        throw new InfoError("bad path component");
      }
      walk(child, path.concat([key]));
    }
  }
  walk(tree, []);
  const nameBytes = info.get("name");
  const name = ArrayBuffer.isView(nameBytes) ? utf8.decode(nameBytes) : "";
  return { name, pieceLength, files };
}

/// A site's files by path and its folders with their entries (for listings).
class SiteFiles {
  constructor(files) {
    this.files = new Map();
    this.folders = new Map([["", new Map()]]);
    files.forEach((f, i) => {
      this.files.set(f.name, i);
      let parent = "";
      f.path.forEach((part, depth) => {
        const last = depth === f.path.length - 1;
        this.folders.get(parent).set(part, { name: part, isFolder: !last, size: last ? f.length : 0 });
        parent = parent ? parent + "/" + part : part;
        if (!last && !this.folders.has(parent)) this.folders.set(parent, new Map());
      });
    });
  }

  /// What `segments` (as pathSegments decodes them) names, as the plain gateway decides:
  /// {file: i, found: true|false} (false: the site's 404.html), {listing: folder, entries},
  /// {redirect: location} (a folder without its "/"), or {notFound: true}.
  match(segments, query, spa) {
    const path = segments.filter((s) => s !== "").join("/");
    const lastSegment = segments[segments.length - 1];
    if (lastSegment === "") {
      const i = this.files.get(path ? path + "/index.html" : "index.html");
      if (i !== undefined) return { file: i, found: true };
      const entries = this.folders.get(path);
      if (entries) return { listing: path, entries: [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
    } else if (this.files.has(path)) {
      return { file: this.files.get(path), found: true };
    } else if (this.folders.has(path)) {
      return { redirect: encodeSegment(lastSegment) + "/" + (query !== null ? "?" + query : "") };
    }
    if (spa && !(lastSegment || "").includes(".") && this.files.has("index.html")) return { file: this.files.get("index.html"), found: true };
    if (this.files.has("404.html")) return { file: this.files.get("404.html"), found: false };
    return { notFound: true };
  }
}

class PathError extends Error {}

/// The decoded segments of a URL path (a trailing "" when it ends in "/"), refused as the
/// gateway's SitePath refuses them: dot segments, encoded separators, backslash, NUL, "//",
/// malformed escapes, invalid UTF-8.
function pathSegments(raw) {
  if (raw.length > 8192) throw new PathError("the path is too long");
  if (raw[0] !== "/") throw new PathError("the path must start with /");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const out = [];
  const parts = raw.slice(1).split("/");
  parts.forEach((part, n) => {
    if (part === "" && n < parts.length - 1) throw new PathError("'.' and '..' are not allowed in paths");
    if (part.includes("\\")) throw new PathError("'\\' is not allowed in paths");
    const bytes = [];
    for (let i = 0; i < part.length; i++) {
      const c = part.charCodeAt(i);
      if (c === 0x25) {
        const v = /^[0-9a-fA-F]{2}$/.test(part.substr(i + 1, 2)) ? parseInt(part.substr(i + 1, 2), 16) : -1;
        if (v < 0) throw new PathError("malformed percent-encoding");
        if (v === 0x2f) throw new PathError("an encoded '/' is not allowed in paths");
        if (v === 0x5c) throw new PathError("'\\' is not allowed in paths");
        if (v === 0) throw new PathError("NUL is not allowed in paths");
        bytes.push(v);
        i += 2;
      } else if (c === 0) {
        throw new PathError("NUL is not allowed in paths");
      } else {
        bytes.push(...new TextEncoder().encode(part[i]));
      }
    }
    let text;
    try { text = utf8.decode(new Uint8Array(bytes)); } catch { throw new PathError("the path is not valid UTF-8"); }
    if (text === "." || text === "..") throw new PathError("'.' and '..' are not allowed in paths");
    out.push(text);
  });
  return out;
}

/// A path segment percent-encoded as the gateway encodes it (unreserved characters kept).
function encodeSegment(segment) {
  let out = "";
  for (const b of new TextEncoder().encode(segment)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
  }
  return out;
}

/// One byte range of a Range header, as the gateway reads it: {start, end} (end exclusive),
/// "unsatisfiable", or null (the whole file: no header, several ranges, or malformed).
function parseRange(header, length) {
  if (!header || header.length > 256) return null;
  const h = header.trim();
  if (!h.toLowerCase().startsWith("bytes=")) return null;
  const spec = h.slice(6).trim();
  if (spec.includes(",") || !spec.includes("-")) return null;
  const dash = spec.indexOf("-");
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  const number = (s) => (/^[0-9]{1,15}$/.test(s) ? Number(s) : null);
  if (first === "") {
    const n = number(last);
    if (n === null) return null;
    if (n === 0 || length === 0) return "unsatisfiable";
    return { start: Math.max(0, length - n), end: length };
  }
  const a = number(first);
  if (a === null) return null;
  let b = length - 1;
  if (last !== "") {
    const v = number(last);
    if (v === null || v < a) return null;
    b = Math.min(v, length - 1);
  }
  if (a >= length) return "unsatisfiable";
  return { start: a, end: b + 1 };
}

/// The content type of a path, from the gateway's own table (WEBSEED_MIME, which the gateway
/// writes at the top of the worker's script).
function mimeType(path) {
  const name = path.split("/").pop();
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return "application/octet-stream";
  const ext = name.slice(dot + 1).toLowerCase();
  if (Object.hasOwn(WEBSEED_MIME.text, ext)) return WEBSEED_MIME.text[ext] + "; charset=utf-8";
  return Object.hasOwn(WEBSEED_MIME.binary, ext) ? WEBSEED_MIME.binary[ext] : "application/octet-stream";
}

/// The URLs (as written, at most `limit`) of what an HTML page loads as it opens: stylesheets
/// and icons (`<link href>`), scripts, images and media (`src`). Links to other pages
/// (`<a href>`) are not among them. A quick scan, not a parser: it only chooses what to fetch
/// ahead, never what is served.
function pageLinks(html, limit) {
  const out = [];
  const tag = /<(link|script|img|source|video|audio)\b([^>]{0,2000})>/gi;
  for (let m; out.length < limit && (m = tag.exec(html)) !== null;) {
    const attribute = m[1].toLowerCase() === "link" ? "href" : "src";
    const value = new RegExp("\\s" + attribute + "\\s*=\\s*(?:\"([^\"]*)\"|'([^']*)'|([^\\s\"'>]+))", "i").exec(m[2]);
    const url = value && (value[1] ?? value[2] ?? value[3]);
    if (url && !out.includes(url)) out.push(url);
  }
  return out;
}
