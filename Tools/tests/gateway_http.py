#!/usr/bin/env python3
"""The HTTP gateway of `webseed seed` as browsers and attackers talk to it.

  python3 Tools/tests/gateway_http.py --webseed .build/debug/webseed [--keep]

Two seeders run, each with `--listen 127.0.0.1:0 --gateway 127.0.0.1:0 --offline --json` and a
private --state-dir: A serves Samples/site alone (so the single-site root form applies), B serves
Samples/site and a fixture generated here (a 3 MiB file for ranges, a folder without index.html
whose names need escaping — `a&b<c>.txt`, `space name.html`, `<img … onerror=…>.txt`, `#frag?q.txt`,
`%41.txt`, `x:y.txt`, … —, a file with an unknown extension, symlinks leading out of the site).
Files with a known secret are placed OUTSIDE the fixture (its parent, a sibling `fx-site-evil/`).

(1) HTTP semantics, requests written by hand on raw sockets: GET and HEAD (same headers, no body),
every file of Samples/site compared byte for byte with its Content-Type (+ charset for text),
Content-Length, strong ETag = "<pieces root>", Cache-Control immutable on hash-addressed URLs,
nosniff, Accept-Ranges; `/` → index.html, `/dir` → 301 `/dir/` (query kept), a folder's
index.html, missing paths → the site's 404.html with 404 (a plain 404 for the fixture), folder
listings (names HTML-escaped, every link followed back to the file's bytes, nothing but the
torrent's entries), If-None-Match → 304, Range 206 (a-b, a-, -n, clamped), 416 `bytes */len`,
multi-range and malformed → 200 whole file, If-Range, other methods → 405 with Allow, keep-alive
(several requests on one connection), the URL forms (`<id>.localhost`, `/site/<id or hex>/` in place
for a non-loopback Host, 301 to `http://<id>.localhost:PORT/…` for loopback Hosts, the single-site
root with no-cache), sites isolated from each other, the status page and /api/status.
(2) Hostile requests: `..` in every encoding, encoded slashes and backslashes, overlong UTF-8, NUL,
absolute-form and `//` paths, symlinks out of the site, a file added after start, a 100 KB URL,
huge and very many headers, malformed and overflowing Range headers, unknown and malformed site
ids, garbage request lines, pipelining, a client dribbling its request one byte per second (others
must not wait), a client that does not read, and 1,000 concurrent connections (at most --max-connections, 512,
served; the others closed as they are accepted). Each must be
answered with 400/404/414/431 (Range cases: 200/206/416 with correct bytes) or the connection
closed; never a crash, and after all of them both gateways still serve index.html. The secret
must appear in no response body at all.

Loopback only; every wait is bounded; every child is killed in `finally`. Prints `ok …` / `FAIL …`
/ `info …` lines and last `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import errno
import html.parser
import json
import os
import random
import re
import resource
import select
import selectors
import shutil
import socket
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

from webseedtest.procs import Proc, run
from webseedtest.results import Results

R = Results()
SAMPLE = os.path.join(ROOT, "Samples", "site")
SECRET = "webseed-gateway-secret-%016x" % random.getrandbits(64)
# Bytes that must never come out of the gateway: the secret beside the fixture, the system's
# password file, the repository's README (two levels above Samples/site), any torrent file.
MARKERS = [SECRET.encode(), b"root:x:0:0:", b"webseed publishes a website as a BitTorrent", b"12:piece layers"]
HOSTILE_OK = (400, 404, 414, 431)
IMMUTABLE = "public, max-age=31536000, immutable"
PHASE = ["semantics"]
SEEN = {"semantics": 0, "hostile": 0}
LEAKS = []             # (phase, request, marker)
NO_NOSNIFF = {"semantics": [], "hostile": []}


# ---------------------------------------------------------------------------------------------
# HTTP on raw sockets

class Closed(Exception):
    """The connection ended (EOF or reset) before any byte of a response."""


class Partial(Exception):
    """The connection ended in the middle of a response, or the response is not valid HTTP."""


class Response:
    def __init__(self, version, status, reason, headers, head):
        self.version, self.status, self.reason, self.headers, self.head = version, status, reason, headers, head
        self.body = b""

    def get(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None

    def count(self, name):
        return sum(1 for k, _ in self.headers if k.lower() == name.lower())

    def __repr__(self):
        hs = "; ".join("%s: %s" % (k, v[:100]) for k, v in self.headers)
        return "%d %s [%s] body %d bytes %r" % (self.status, self.reason, hs, len(self.body), self.body[:100])


def parse_response(buf, head=False, eof=False):
    """(Response, bytes consumed) when buf starts with a whole response; None when more bytes are
    needed (at eof: never, a close-delimited body ends there). Raises Partial when not HTTP."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > (1 << 20):
            raise Partial("no end of response head in 1 MiB")
        if len(buf) >= 5 and not bytes(buf[:5]) == b"HTTP/"[:len(buf[:5])]:
            raise Partial("not an HTTP response: %r" % bytes(buf[:80]))
        return None
    head_bytes = bytes(buf[:end])
    lines = head_bytes.split(b"\r\n")
    m = re.match(rb"HTTP/(1\.[01]) ([1-5][0-9][0-9])(?: (.*))?$", lines[0])
    if not m:
        raise Partial("bad status line %r" % lines[0][:100])
    headers = []
    for line in lines[1:]:
        if b":" not in line or line[:1] in (b" ", b"\t"):
            raise Partial("bad header line %r" % line[:100])
        k, v = line.split(b":", 1)
        headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
    r = Response(m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"), headers, head_bytes)
    pos = end + 4
    if head or r.status in (204, 304) or r.status < 200:
        return r, pos
    te = r.get("transfer-encoding")
    if te is not None:
        if te.lower() != "chunked":
            raise Partial("Transfer-Encoding %r" % te)
        body = bytearray()
        p = pos
        while True:
            le = buf.find(b"\r\n", p)
            if le < 0:
                return None
            try:
                size = int(bytes(buf[p:le]).split(b";")[0].strip(), 16)
            except ValueError:
                raise Partial("bad chunk size %r" % bytes(buf[p:le])[:40])
            p = le + 2
            if size == 0:
                t = buf.find(b"\r\n", p)
                while t >= 0 and t != p:  # trailer fields
                    p = t + 2
                    t = buf.find(b"\r\n", p)
                if t < 0:
                    return None
                r.body = bytes(body)
                return r, t + 2
            if len(buf) < p + size + 2:
                return None
            body += buf[p:p + size]
            if bytes(buf[p + size:p + size + 2]) != b"\r\n":
                raise Partial("chunk not followed by CRLF")
            p += size + 2
    cl = r.get("content-length")
    if cl is not None:
        if r.count("content-length") != 1 or not cl.isdigit():
            raise Partial("bad Content-Length %r" % cl)
        n = int(cl)
        if len(buf) - pos < n:
            return None
        r.body = bytes(buf[pos:pos + n])
        return r, pos + n
    if not eof:
        return None
    r.body = bytes(buf[pos:])
    r.close_delimited = True
    return r, len(buf)


def note(r, label):
    """Every response the gateway gives passes here: no marker in any body, nosniff everywhere."""
    phase = PHASE[0]
    SEEN[phase] += 1
    for m in MARKERS:
        if m in r.body or m in r.head:
            LEAKS.append((phase, label, m.decode(errors="replace")))
    # The HTTP parser's own "400, Connection: close, Content-Length: 0" to a request it cannot
    # parse has no body and no type, so there is nothing to sniff; every other response must
    # carry nosniff.
    bodiless_parse_error = r.status == 400 and not r.body and r.get("content-type") is None
    if (r.get("x-content-type-options") or "").lower() != "nosniff" and not bodiless_parse_error:
        NO_NOSNIFF[phase].append("%s → %d" % (label, r.status))


class Conn:
    def __init__(self, port, timeout=10, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.label = "?"

    def send(self, data):
        first = data.split(b"\r\n", 1)[0]
        self.label = "".join(c if 32 <= ord(c) < 127 else "\\x%02x" % ord(c) for c in first[:100].decode("latin-1")) + (
            " …(%d bytes)" % len(first) if len(first) > 100 else "")
        self.s.settimeout(self.timeout)
        self.s.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("no complete response in time (%d bytes so far: %r)" % (len(self.buf), bytes(self.buf[:120])))
        self.s.settimeout(left)
        try:
            d = self.s.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError("no complete response in time (%d bytes so far: %r)" % (len(self.buf), bytes(self.buf[:120])))
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if d:
            self.buf += d
        else:
            self.eof = True

    def response(self, head=False, timeout=None):
        deadline = time.time() + (self.timeout if timeout is None else timeout)
        while True:
            got = parse_response(self.buf, head, self.eof)
            if got:
                r, n = got
                del self.buf[:n]
                note(r, self.label)
                return r
            if self.eof:
                if self.buf:
                    raise Partial("connection closed inside a response: %d bytes %r" % (len(self.buf), bytes(self.buf[:160])))
                raise Closed("connection closed without a response")
            self._fill(deadline)

    def closed_by_peer(self, wait=0.0):
        """True if the server closed the connection (EOF or reset) within `wait` seconds."""
        r, _, _ = select.select([self.s], [], [], wait)
        if not r:
            return False
        try:
            d = self.s.recv(1 << 16, socket.MSG_PEEK)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return d == b""

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def build(method, target, host, headers=(), version="HTTP/1.1"):
    if isinstance(target, str):
        target = target.encode("latin-1")
    out = method.encode() + b" " + target + b" " + version.encode() + b"\r\n"
    if host is not None:
        out += b"Host: " + host.encode() + b"\r\n"
    for k, v in headers:
        out += k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else v.encode("latin-1")) + b"\r\n"
    return out + b"\r\n"


def fetch(port, target, host, method="GET", headers=(), timeout=10):
    c = Conn(port, timeout)
    try:
        c.send(build(method, target, host, headers))
        return c.response(head=(method == "HEAD"))
    finally:
        c.close()


def qpath(rel):
    return "/" + urllib.parse.quote(rel, safe="/")


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            return next(k for k in range(i, min(n, i + 4096)) if a[k] != b[k])
    return n


def body_problem(got, want):
    if got == want:
        return None
    return "body differs: %d bytes, want %d, first difference at byte %d" % (len(got), len(want), first_diff(got, want))


def ctype_problem(name, ct):
    base = name.rstrip("/").rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[1].lower() if "." in base else ""
    if ct is None:
        return "no Content-Type"
    parts = [p.strip().lower().replace(" ", "") for p in ct.split(";")]
    mime, utf8 = parts[0], "charset=utf-8" in parts[1:]
    want = {"html": (("text/html",), True), "css": (("text/css",), True), "txt": (("text/plain",), True),
            "csv": (("text/csv",), True), "js": (("text/javascript", "application/javascript"), True),
            "json": (("application/json",), None), "svg": (("image/svg+xml",), None), "png": (("image/png",), False)}
    mimes, charset = want.get(ext, (("application/octet-stream",), False))
    if mime not in mimes or (charset is True and not utf8) or (charset is False and utf8):
        return "Content-Type %r for %r (want %s%s)" % (ct, base, " or ".join(mimes), "; charset=utf-8" if charset else "")
    return None


def header_problems(r, want):
    """want: {header: exact value, or a callable returning an error string or None}."""
    out = []
    for k, v in want.items():
        got = r.get(k)
        if callable(v):
            e = v(got)
            if e:
                out.append("%s: %s" % (k, e))
        elif got != v:
            out.append("%s: %r (want %r)" % (k, got, v))
    return out


def safe(fn, what):
    """Runs one group of checks; an exception is one failure, and the other groups still run."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 — a test harness reports whatever went wrong
        R.fail(what, "%s: %s" % (type(e).__name__, e))


# ---------------------------------------------------------------------------------------------
# Seeders

class Gateway:
    def __init__(self, name, ws, sources, work):
        self.name = name
        self.state = os.path.join(work, "state-" + name)
        argv = [ws, "seed", *sources, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--offline",
                "--state-dir", self.state, "--json"]
        self.proc = Proc(name, argv, os.path.join(work, "logs"))
        self.port = None
        self.sites = {}
        self.event = None
        _, ready = self.proc.wait_event(lambda e: e.get("event") == "ready", 180)
        _, gw = self.proc.wait_event(lambda e: e.get("event") == "gateway", 5 if ready else 0)
        if not ready or not gw:
            raise RuntimeError("seeder %s: no %s event" % (name, "ready" if not ready else "gateway"))
        self.event = gw
        self.port = gw["port"]
        for _, e in self.proc.event_times(lambda e: e.get("event") == "site"):
            self.sites[e["name"]] = e

    def origin(self, site):
        return "%s.localhost:%d" % (self.sites[site]["site_id"], self.port)


def torrent_files(ws, torrent):
    rc, out = run([ws, "info", torrent, "--json"], 60)
    if rc != 0:
        raise RuntimeError("webseed info failed: %s" % out[-300:])
    info = json.loads(out)
    return {f["path"]: f for f in info["files"]}


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# The fixture

NODIR_NAMES = ["a&b<c>.txt", "space name.html", "<img src=x onerror=alert(1)>.txt", "#frag?q.txt", "%41.txt",
               "\"dq'sq.txt", "x:y.txt", "ünïcødé.txt", "plus+semi;eq=.txt"]


def make_fixture(work):
    fx = os.path.join(work, "fx-site")
    os.makedirs(os.path.join(fx, "nodir", "sub"))
    files = {
        "index.html": b"<!doctype html><meta charset=utf-8><title>fixture</title><p>fixture index</p>\n",
        "big.bin": os.urandom(3 * 1024 * 1024 + 12345),
        "blob.xyz123": b"opaque\x00\x01\x02 bytes with an extension nobody knows\n",
        "space name.html": b"<!doctype html><p>a name with a space</p>\n",
        "nodir/sub/inner.txt": b"inner file\n",
    }
    for n in NODIR_NAMES:
        files["nodir/" + n] = ("content of %s\n" % n).encode()
    for rel, data in files.items():
        with open(os.path.join(fx, rel), "wb") as f:
            f.write(data)
    secret = ("%s\n" % SECRET).encode()
    with open(os.path.join(work, "secret.txt"), "wb") as f:
        f.write(secret)
    os.makedirs(os.path.join(work, "fx-site-evil"))
    with open(os.path.join(work, "fx-site-evil", "secret.txt"), "wb") as f:
        f.write(secret)
    # Symlinks leading out of the site: `create` skips them; the gateway must never follow them.
    os.symlink("../../secret.txt", os.path.join(fx, "nodir", "link.txt"))
    os.symlink("..", os.path.join(fx, "linkdir"))
    return fx, files


# ---------------------------------------------------------------------------------------------
# (1) semantics

def check_file(gw, host, path, want, root, cache, what):
    r = fetch(gw.port, path, host)
    name = path.split("?")[0]
    name = name + "index.html" if name.endswith("/") else name
    p = [x for x in [body_problem(r.body, want), ctype_problem(name, r.get("content-type"))] if x]
    if r.status != 200:
        p.insert(0, "status %d" % r.status)
    if r.get("content-length") != str(len(want)):
        p.append("Content-Length %r (want %d)" % (r.get("content-length"), len(want)))
    want_h = {"X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes"}
    if cache:
        want_h["Cache-Control"] = cache
    if root:
        want_h["ETag"] = '"%s"' % root
    p += header_problems(r, want_h)
    R.check(not p, what, "%d bytes, %s" % (len(r.body), r.get("content-type")) if not p else "; ".join(p), more=[repr(r)] if p else ())
    return r


def redirect_check(gw, host, target, want, what, status=301):
    """want: the absolute URL the Location header (absolute or relative) must lead to."""
    r = fetch(gw.port, target, host)
    loc = r.get("location")
    got = urllib.parse.urljoin("http://%s%s" % (host, target), loc) if loc is not None else None
    norm = lambda u: re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), u or "")
    R.check(r.status == status and norm(got) == norm(want) and r.count("location") == 1, what, "%d → %s" % (r.status, loc),
            more=["want %d with a Location leading to %s" % (status, want), repr(r)])


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []      # (href, text)
        self.tags = []
        self.attrs = []
        self.text = []
        self._a = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [k for k, _ in attrs]
        if tag == "a":
            self._a = [dict(attrs).get("href"), ""]

    def handle_endtag(self, tag):
        if tag == "a" and self._a is not None:
            self.links.append(tuple(self._a))
            self._a = None

    def handle_data(self, data):
        self.text.append(data)
        if self._a is not None:
            self._a[1] += data


URL_PATH_CHARS = re.compile(r"^[A-Za-z0-9\-._~%/!$&'()*+,;=:@]*$")


def listing_check(gw, host, folder, entries, files, what):
    """folder: '/nodir/'; entries: {name (dirs end in '/'): relative path in the site}. Every entry
    is linked, with its name as text, through a percent-encoded href that leads back to the file."""
    r = fetch(gw.port, qpath(folder.strip("/")) + "/", host)
    p = []
    if r.status != 200:
        p.append("status %d" % r.status)
    ct = (r.get("content-type") or "").lower().replace(" ", "")
    if not ct.startswith("text/html") or "charset=utf-8" not in ct:
        p.append("Content-Type %r" % r.get("content-type"))
    doc = Links()
    doc.feed(r.body.decode("utf-8", errors="replace"))
    doc.close()
    if "img" in doc.tags or "onerror" in doc.attrs or "script" in doc.tags:
        p.append("markup from a file name was not escaped (tags %s)" % sorted(set(doc.tags)))
    text = "".join(doc.text)
    base = "http://%s%s" % (host, qpath(folder.strip("/")) + "/")
    for name, rel in entries.items():
        if name.rstrip("/") not in text:
            p.append("name %r not shown" % name)
        found = None
        for href, _ in doc.links:
            if not href:
                continue
            u = urllib.parse.urlsplit(urllib.parse.urljoin(base, href))
            if u.scheme == "http" and u.netloc == host and urllib.parse.unquote(u.path, errors="strict") == "/" + rel:
                found = (href, u)
                break
        if not found:
            p.append("no link leading to %r (links: %s)" % (rel, [h for h, _ in doc.links][:20]))
            continue
        href, u = found
        if not URL_PATH_CHARS.match(href):
            p.append("href %r is not percent-encoded" % href)
        if not name.endswith("/"):
            got = fetch(gw.port, u.path + ("?" + u.query if u.query else ""), host)
            if got.status != 200 or got.body != files[rel]:
                p.append("following %r: %d %r" % (href, got.status, got.body[:60]))
    R.check(not p, what, "%d entries linked, escaped, followed" % len(entries) if not p else "; ".join(p[:6]),
            more=[repr(r)[:600]] if p else ())
    return doc


def json_strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from json_strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from json_strings(x)


def semantics_sample(gw, files):
    sid = gw.sites["site"]["site_id"]
    v2 = gw.sites["site"]["v2_infohash"]
    host = gw.origin("site")
    port = gw.port
    R.check(gw.event.get("url") == "http://localhost:%d/" % port and gw.event.get("host") == "127.0.0.1", "gateway event",
            json.dumps(gw.event))
    R.check(gw.sites["site"].get("gateway_url") == "http://%s.localhost:%d/" % (sid, port), "site event carries gateway_url",
            str(gw.sites["site"].get("gateway_url")))
    disk = {rel: read(os.path.join(SAMPLE, rel)) for rel in files}

    for rel, f in sorted(files.items()):
        safe(lambda: check_file(gw, host, qpath(rel), disk[rel], f["pieces_root"], IMMUTABLE,
                                "GET %s on <id>.localhost: 200, identical bytes, type, ETag, immutable, nosniff" % qpath(rel)),
             "GET %s" % rel)
    index = disk["index.html"]
    iroot = files["index.html"]["pieces_root"]

    def root():
        check_file(gw, host, "/", index, iroot, IMMUTABLE, "GET / on <id>.localhost serves index.html")
        check_file(gw, host, "/docs/guide/intro/", disk["docs/guide/intro/index.html"],
                   files["docs/guide/intro/index.html"]["pieces_root"], IMMUTABLE, "GET /docs/guide/intro/ serves its index.html")
        check_file(gw, host, "/index.html?cache-buster=1", index, iroot, IMMUTABLE, "a query string is ignored")
    safe(root, "index")

    def head():
        g = fetch(port, "/index.html", host)
        c = Conn(port)
        try:
            c.send(build("HEAD", "/index.html", host))
            h = c.response(head=True)
            c.send(build("GET", "/css/site.css", host))
            after = c.response()
        finally:
            c.close()
        strip = lambda r: sorted((k.lower(), v) for k, v in r.headers if k.lower() not in ("date", "connection", "keep-alive"))
        R.check(h.status == 200 and strip(h) == strip(g), "HEAD has the same status and headers as GET",
                more=["GET  %r" % g, "HEAD %r" % h])
        R.check(after.status == 200 and after.body == disk["css/site.css"], "HEAD sends no body (the next response on the "
                "connection parses)", more=[repr(after)])
        c = Conn(port)
        try:
            c.send(build("HEAD", "/missing.html", host) + build("GET", "/favicon.svg", host))
            h404 = c.response(head=True)
            after = c.response()
        finally:
            c.close()
        R.check(h404.status == 404 and after.status == 200 and after.body == disk["favicon.svg"],
                "HEAD of a missing path: 404, no body", more=[repr(h404), repr(after)])
    safe(head, "HEAD")

    def redirects():
        redirect_check(gw, host, "/docs", "http://%s/docs/" % host, "/docs → 301 /docs/")
        redirect_check(gw, host, "/docs?x=1&y=%20", "http://" + host + "/docs/?x=1&y=%20", "/docs?x=1 → 301 /docs/?x=1 (query kept)")
        redirect_check(gw, host, "/docs/guide/intro", "http://%s/docs/guide/intro/" % host,
                       "/docs/guide/intro → 301 /docs/guide/intro/")
        redirect_check(gw, host, "/.well-known", "http://%s/.well-known/" % host,
                       "/.well-known → 301 /.well-known/ (dot folders are content)")
    safe(redirects, "redirects")

    def missing():
        want = disk["404.html"]
        for target in ["/nope.html", "/a/b/c/missing", "/docs/guide/intro/missing.css", "/index.html/x"]:
            r = fetch(port, target, host)
            p = [x for x in [body_problem(r.body, want), ctype_problem("404.html", r.get("content-type"))] if x]
            R.check(r.status == 404 and not p, "GET %s → the site's 404.html with 404" % target, "; ".join(p),
                    more=[repr(r)])
    safe(missing, "404")

    def listings():
        listing_check(gw, host, "/downloads/", {"data.csv": "downloads/data.csv", "notes.txt": "downloads/notes.txt"}, disk,
                      "/downloads/ (no index.html) → a listing whose links lead to the files")
        listing_check(gw, host, "/docs/", {"café.txt": "docs/café.txt", "guide/": "docs/guide/"}, disk,
                      "/docs/ → a listing with café.txt percent-encoded and the guide/ folder")
        listing_check(gw, host, "/assets/", {"empty.txt": "assets/empty.txt", "fonts/": "assets/fonts/"}, disk,
                      "/assets/ → a listing with an empty file and a folder")
    safe(listings, "listings")

    def conditional():
        tag = '"%s"' % iroot
        r = fetch(port, "/index.html", host, headers=[("If-None-Match", tag)])
        R.check(r.status == 304 and r.body == b"" and r.get("etag") == tag, "If-None-Match with the ETag → 304, no body, ETag",
                more=[repr(r)])
        c = Conn(port)
        try:
            c.send(build("GET", "/", host, [("If-None-Match", tag)]))
            r1 = c.response()
            c.send(build("GET", "/js/app.js", host))
            r2 = c.response()
        finally:
            c.close()
        R.check(r1.status == 304 and r2.status == 200 and r2.body == disk["js/app.js"],
                "304 for / sends no body (the next response on the connection parses)", more=[repr(r1), repr(r2)])
        r = fetch(port, "/index.html", host, headers=[("If-None-Match", '"%s"' % ("0" * 64))])
        R.check(r.status == 200 and r.body == index, "If-None-Match with another ETag → 200", more=[repr(r)])
        r = fetch(port, "/index.html", host, headers=[("If-None-Match", '"xyz", %s' % tag)])
        R.check(r.status == 304, "If-None-Match with a list holding the ETag → 304", more=[repr(r)])
        r = fetch(port, "/index.html", host, "HEAD", headers=[("If-None-Match", tag)])
        R.check(r.status == 304, "HEAD with If-None-Match → 304", more=[repr(r)])
        r = fetch(port, "/index.html", host, headers=[("If-None-Match", tag), ("Range", "bytes=0-9")])
        R.check(r.status == 304, "If-None-Match match wins over Range → 304", more=[repr(r)])
        proot = files["images/photo.png"]["pieces_root"]
        r = fetch(port, "/images/photo.png", host, headers=[("If-None-Match", '"%s"' % iroot)])
        R.check(r.status == 200 and r.body == disk["images/photo.png"] and r.get("etag") == '"%s"' % proot,
                "another file's ETag does not match → 200", more=[repr(r)])
    safe(conditional, "conditional")

    def ranges_png():
        data = disk["images/photo.png"]
        n = len(data)
        for spec, a, b in [("bytes=0-99", 0, 99), ("bytes=16380-32790", 16380, 32790), ("bytes=100000-", 100000, n - 1),
                           ("bytes=-1000", n - 1000, n - 1)]:
            r = fetch(port, "/images/photo.png", host, headers=[("Range", spec)])
            p = []
            if r.status != 206:
                p.append("status %d" % r.status)
            if r.get("content-range") != "bytes %d-%d/%d" % (a, b, n):
                p.append("Content-Range %r" % r.get("content-range"))
            if r.body != data[a:b + 1]:
                p.append(body_problem(r.body, data[a:b + 1]))
            R.check(not p, "photo.png Range %s → 206, bytes %d-%d" % (spec, a, b), "; ".join(p), more=[repr(r)])
        r = fetch(port, "/assets/empty.txt", host, headers=[("Range", "bytes=0-0")])
        R.check(r.status == 416 and r.get("content-range") == "bytes */0", "Range on an empty file → 416 bytes */0",
                more=[repr(r)])
        r = fetch(port, "/missing.png", host, headers=[("Range", "bytes=0-10")])
        R.check(r.status == 404 and r.body == disk["404.html"], "Range on a missing path → 404 with the whole 404.html",
                more=[repr(r)])
    safe(ranges_png, "ranges on photo.png")

    def methods():
        for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
            r = fetch(port, "/index.html", host, m, headers=[("Content-Length", "0")])
            allow = {x.strip().upper() for x in (r.get("allow") or "").split(",")}
            R.check(r.status == 405 and {"GET", "HEAD"} <= allow and not (allow - {"GET", "HEAD"}) and SECRET.encode() not in r.body,
                    "%s → 405 with Allow: GET, HEAD" % m, more=[repr(r)])
    safe(methods, "methods")

    def keepalive():
        c = Conn(port)
        p = []
        try:
            steps = [("GET", "/index.html", [], 200, index), ("HEAD", "/css/site.css", [], 200, b""),
                     ("GET", "/nope", [], 404, disk["404.html"]), ("GET", "/", [("If-None-Match", '"%s"' % iroot)], 304, b""),
                     ("GET", "/images/photo.png", [("Range", "bytes=10-19")], 206, disk["images/photo.png"][10:20]),
                     ("GET", "/docs", [], 301, None), ("GET", "/js/app.js", [], 200, disk["js/app.js"]),
                     ("GET", "/images/photo.png", [], 200, disk["images/photo.png"]), ("GET", "/downloads/", [], 200, None),
                     ("GET", qpath("docs/café.txt"), [], 200, disk["docs/café.txt"])]
            for m, t, hs, st, body in steps:
                c.send(build(m, t, host, hs))
                r = c.response(head=(m == "HEAD"))
                if r.status != st or (body is not None and r.body != body):
                    p.append("%s %s → %r" % (m, t, r))
                if "close" in (r.get("connection") or "").lower():
                    p.append("%s %s answered with Connection: close" % (m, t))
                    break
        finally:
            c.close()
        R.check(not p, "keep-alive: %d requests (GET, HEAD, 404, 304, 206, 301, listing) on one connection" % len(steps),
                "; ".join(p))
    safe(keepalive, "keep-alive")

    def url_forms():
        ex = "example.test"
        check_file(gw, ex, "/site/%s/" % sid, index, iroot, IMMUTABLE, "/site/<id>/ with Host example.test: index.html in place")
        check_file(gw, ex, "/site/%s/css/site.css" % sid, disk["css/site.css"], files["css/site.css"]["pieces_root"], IMMUTABLE,
                   "/site/<id>/css/site.css with Host example.test: in place")
        check_file(gw, ex, "/site/%s/index.html" % v2, index, iroot, IMMUTABLE,
                   "/site/<64-hex v2 hash>/index.html with Host example.test: in place")
        r = fetch(port, "/site/%s/missing" % sid, ex)
        R.check(r.status == 404 and r.body == disk["404.html"], "/site/<id>/missing with Host example.test → the site's 404.html",
                more=[repr(r)])
        redirect_check(gw, ex, "/site/%s/docs" % sid, "http://%s/site/%s/docs/" % (ex, sid),
                       "/site/<id>/docs with Host example.test → 301 /site/<id>/docs/")
        for lh in ["127.0.0.1:%d" % port, "localhost:%d" % port, "[::1]:%d" % port]:
            redirect_check(gw, lh, "/site/%s/css/site.css" % sid, "http://%s.localhost:%d/css/site.css" % (sid, port),
                           "/site/<id>/css/site.css with Host %s → 301 http://<id>.localhost:%d/css/site.css" % (lh, port))
        redirect_check(gw, "127.0.0.1:%d" % port, "/site/%s/" % v2, "http://%s.localhost:%d/" % (sid, port),
                       "/site/<64-hex>/ with Host 127.0.0.1 → 301 http://<site id>.localhost:PORT/")
        redirect_check(gw, "127.0.0.1:%d" % port, "/site/%s/docs/caf%%C3%%A9.txt" % sid,
                       "http://%s.localhost:%d/docs/caf%%C3%%A9.txt" % (sid, port),
                       "/site/<id>/docs/caf%C3%A9.txt with Host 127.0.0.1 → 301 keeps the encoded path")
        # One site: any Host but "localhost" is that site's root, revalidated (no-cache).
        for h in ["127.0.0.1:%d" % port, "example.test"]:
            check_file(gw, h, "/", index, iroot, "no-cache", "single site: / with Host %s → index.html, no-cache" % h)
            check_file(gw, h, "/images/photo.png", disk["images/photo.png"], files["images/photo.png"]["pieces_root"], "no-cache",
                       "single site: /images/photo.png with Host %s → no-cache" % h)
        r = fetch(port, "/nope", "127.0.0.1:%d" % port)
        R.check(r.status == 404 and r.body == disk["404.html"], "single site: a missing path → the site's 404.html", more=[repr(r)])
        redirect_check(gw, "127.0.0.1:%d" % port, "/docs", "http://127.0.0.1:%d/docs/" % port, "single site: /docs → 301 /docs/")
    safe(url_forms, "URL forms")

    safe(lambda: status_page(gw, [sid]), "status page")


def status_page(gw, sids):
    port = gw.port
    r = fetch(port, "/", "localhost:%d" % port)
    ct = (r.get("content-type") or "").lower()
    R.check(r.status == 200 and ct.startswith("text/html") and r.get("cache-control") == "no-store"
            and all(s.encode() in r.body for s in sids),
            "status page at Host localhost:%d: HTML, no-store, names every site" % port, more=[repr(r)[:400]])
    r = fetch(port, "/api/status", "localhost:%d" % port)
    try:
        doc = json.loads(r.body)
        strings = list(json_strings(doc))
    except ValueError:
        doc, strings = None, []
    R.check(r.status == 200 and (r.get("content-type") or "").lower().startswith("application/json")
            and r.get("cache-control") == "no-store" and all(any(s in x for x in strings) for s in sids),
            "/api/status: JSON, no-store, lists every site", more=[repr(r)[:600]])


def semantics_fixture(gw, files, disk):
    port = gw.port
    host = gw.origin("fx-site")
    shost = gw.origin("site")
    big = disk["big.bin"]
    n = len(big)
    broot = files["big.bin"]["pieces_root"]

    def basics():
        check_file(gw, host, "/", disk["index.html"], files["index.html"]["pieces_root"], IMMUTABLE,
                   "second site: / on its own origin serves its index.html")
        check_file(gw, host, "/big.bin", big, broot, IMMUTABLE, "big.bin (%d bytes, %d pieces) byte for byte" % (n, -(-n // 16384)))
        check_file(gw, host, "/blob.xyz123", disk["blob.xyz123"], files["blob.xyz123"]["pieces_root"], IMMUTABLE,
                   "an unknown extension → application/octet-stream")
        check_file(gw, host, "/space%20name.html", disk["space name.html"], files["space name.html"]["pieces_root"], IMMUTABLE,
                   "/space%20name.html → `space name.html`")
        check_file(gw, host, "/nodir/a%26b%3Cc%3E.txt", disk["nodir/a&b<c>.txt"], files["nodir/a&b<c>.txt"]["pieces_root"],
                   IMMUTABLE, "/nodir/a%26b%3Cc%3E.txt → `a&b<c>.txt`")
        check_file(gw, host, "/nodir/%2541.txt", disk["nodir/%41.txt"], files["nodir/%41.txt"]["pieces_root"], IMMUTABLE,
                   "/nodir/%2541.txt → `%41.txt` (decoded once)")
        r = fetch(port, "/nope.html", host)
        R.check(r.status == 404 and b"webseed sample" not in r.body, "a site without 404.html: plain 404, not another site's page",
                more=[repr(r)])
        r = fetch(port, "/big.bin", shost)
        R.check(r.status == 404 and r.body == read(os.path.join(SAMPLE, "404.html")),
                "sites are isolated: the fixture's big.bin on the sample's origin → the sample's 404", more=[repr(r)])
        r = fetch(port, "/", shost)
        R.check(r.status == 200 and r.body == read(os.path.join(SAMPLE, "index.html")), "the sample on its origin beside it",
                more=[repr(r)])
    safe(basics, "fixture basics")

    def listing():
        entries = {name: "nodir/" + name for name in NODIR_NAMES}
        entries["sub/"] = "nodir/sub/"
        listing_check(gw, host, "/nodir/", entries, disk,
                      "/nodir/ listing: %d hostile names escaped, links percent-encoded and followed" % len(NODIR_NAMES))
        listing_check(gw, host, "/nodir/sub/", {"inner.txt": "nodir/sub/inner.txt"}, disk, "/nodir/sub/ listing")
    safe(listing, "fixture listing")

    def ranges():
        def one(spec, a, b, what, extra=()):
            r = fetch(port, "/big.bin", host, headers=[("Range", spec), *extra])
            p = []
            if r.status != 206:
                p.append("status %d" % r.status)
            if r.get("content-range") != "bytes %d-%d/%d" % (a, b, n):
                p.append("Content-Range %r (want bytes %d-%d/%d)" % (r.get("content-range"), a, b, n))
            if r.get("content-length") != str(b - a + 1):
                p.append("Content-Length %r" % r.get("content-length"))
            bp = body_problem(r.body, big[a:b + 1])
            if bp:
                p.append(bp)
            p += header_problems(r, {"ETag": '"%s"' % broot})
            R.check(not p, what, "; ".join(p), more=[repr(r)] if p else ())

        def whole(spec, what, extra=()):
            hs = [("Range", spec)] if spec is not None else []
            r = fetch(port, "/big.bin", host, headers=[*hs, *extra])
            bp = body_problem(r.body, big)
            R.check(r.status == 200 and not bp and r.get("content-range") is None, what, bp or "",
                    more=[repr(r)] if r.status != 200 or bp else ())

        one("bytes=0-99", 0, 99, "Range bytes=0-99 → 206")
        one("bytes=16383-16384", 16383, 16384, "Range across a piece boundary → 206")
        one("bytes=1000000-2100000", 1000000, 2100000, "Range over 67 pieces → 206")
        one("bytes=3000000-", 3000000, n - 1, "Range bytes=a- → 206 to the end")
        one("bytes=-500", n - 500, n - 1, "Range bytes=-500 → the last 500 bytes")
        one("bytes=%d-%d" % (n - 1, n - 1), n - 1, n - 1, "Range of the last byte → 206")
        one("bytes=100-%d" % (n + 5000), 100, n - 1, "Range past the end is clamped → 206")
        one("bytes=-%d" % (n + 100), 0, n - 1, "a suffix longer than the file → 206 whole file")
        for spec in ["bytes=%d-" % n, "bytes=%d-%d" % (n + 10, n + 20)]:
            r = fetch(port, "/big.bin", host, headers=[("Range", spec)])
            R.check(r.status == 416 and r.get("content-range") == "bytes */%d" % n, "Range %s → 416 bytes */%d" % (spec, n),
                    more=[repr(r)])
        whole("bytes=0-1,5-9", "two ranges → 200 whole file")
        whole("bytes=0-99,200-299,400-499", "three ranges → 200 whole file")
        for spec in ["bytes=abc", "bytes=5-3", "bytes 0-5", "items=0-5", "bytes=", "bytes=--5", "bytes=0x10-0x20"]:
            whole(spec, "malformed Range %r → 200 whole file" % spec)
        r = fetch(port, "/big.bin", host, "HEAD", headers=[("Range", "bytes=10-19")])
        R.check(r.status == 206 and r.get("content-range") == "bytes 10-19/%d" % n and r.get("content-length") == "10",
                "HEAD with Range → 206 headers, no body", more=[repr(r)])
        one("bytes=10-19", 10, 19, "If-Range with the ETag → 206", extra=[("If-Range", '"%s"' % broot)])
        whole("bytes=10-19", "If-Range with another ETag → 200 whole file", extra=[("If-Range", '"%s"' % ("1" * 64))])
        whole("bytes=10-19", "If-Range with a date → 200 whole file", extra=[("If-Range", "Wed, 21 Oct 2015 07:28:00 GMT")])
        whole("bytes=10-19", "If-Range with the weak ETag → 200 whole file", extra=[("If-Range", 'W/"%s"' % broot)])
        # A range on a keep-alive connection, then a whole file: lengths must be right.
        c = Conn(port)
        try:
            c.send(build("GET", "/big.bin", host, [("Range", "bytes=5-1000004")]))
            r1 = c.response()
            c.send(build("GET", "/index.html", host))
            r2 = c.response()
        finally:
            c.close()
        R.check(r1.status == 206 and r1.body == big[5:1000005] and r2.status == 200 and r2.body == disk["index.html"],
                "a 1 MB range then another request on the same connection", more=[repr(r1), repr(r2)])
    safe(ranges, "ranges")

    safe(lambda: status_page(gw, [gw.sites["site"]["site_id"], gw.sites["fx-site"]["site_id"]]), "status page (two sites)")


# ---------------------------------------------------------------------------------------------
# (2) hostile requests

def hostile(port, what, data, allowed=HOSTILE_OK, timeout=10, judge=None):
    """Sends raw bytes; passes when the answer's status is allowed (or `judge` says so) or the
    connection is closed without an answer. A hang, a garbled answer or a leak fails."""
    try:
        c = Conn(port, timeout)
    except OSError as e:
        R.fail(what, "cannot connect: %s" % e)
        return None
    r = None
    sent = "sent"
    try:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            sent = "closed while sending"
        except socket.timeout:
            sent = "server stopped reading"
        finally:
            c.label = what
        try:
            r = c.response(timeout=timeout)
        except Closed:
            R.ok(what, "connection closed (%s)" % sent)
            return None
        except (Partial, TimeoutError) as e:
            R.fail(what, "%s (%s)" % (e, sent))
            return None
    finally:
        c.close()
    leaked = [m.decode(errors="replace") for m in MARKERS if m in r.body]
    if leaked:
        R.fail(what, "LEAK: response contains %s" % leaked, more=[repr(r)])
    elif judge is not None:
        err = judge(r)
        R.check(err is None, what, "%d" % r.status if err is None else err, more=[repr(r)] if err else ())
    else:
        R.check(r.status in allowed, what, "%d" % r.status, more=["want one of %s or a closed connection" % (allowed,), repr(r)])
    return r


TRAVERSALS = [
    "/../secret.txt", "/../../secret.txt", "/../fx-site-evil/secret.txt", "/nodir/../../secret.txt",
    "/%2e%2e/secret.txt", "/%2E%2e/secret.txt", "/%2e%2E/%2E%2E/secret.txt", "/.%2e/secret.txt", "/%2e./secret.txt",
    "/%2e%2e/fx-site-evil/secret.txt", "/..%2fsecret.txt", "/..%2f..%2fsecret.txt", "/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/..%2f..%2fetc/passwd", "/%2fetc%2fpasswd", "/nodir%2f..%2f..%2fsecret.txt", "/\\..\\secret.txt", "/..\\secret.txt",
    "/nodir\\..\\..\\secret.txt", "/%5c..%5csecret.txt", "/..%5c..%5csecret.txt", "/%5C%2e%2e%5Csecret.txt",
    "/%c0%ae%c0%ae/secret.txt", "/%c0%ae%c0%ae%c0%afsecret.txt", "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%f0%80%80%ae%f0%80%80%ae/secret.txt", "/%c0%2e%c0%2e/secret.txt", "/..%c0%afsecret.txt", "/..%u2216secret.txt",
    "/%252e%252e/secret.txt", "/%25%32%65%25%32%65/secret.txt", "/index.html%00", "/index.html%00.txt", "/%00",
    "/nodir/%00/../../secret.txt", "/%ff/index.html", "/%zz", "/%", "/%2", "//etc/passwd", "///etc/passwd",
    "//../secret.txt", "/./index.html", "/%2e/index.html", "/nodir/./a%26b%3Cc%3E.txt", "/..", "/%2e%2e", "/nodir/..",
    "/..;/secret.txt", "/nodir/link.txt", "/linkdir/secret.txt", "/linkdir/", "/linkdir/fx-site-evil/secret.txt",
    "/~/secret.txt", "/%7e/../secret.txt",
]


def hostile_all(ws, A, B, disk, sample_disk, fx):
    fx_id = B.sites["fx-site"]["site_id"]
    fx_host = B.origin("fx-site")
    port = B.port

    # Paths on the fixture's own origin (its secret is one level up, beside it).
    for t in TRAVERSALS:
        hostile(port, "traversal %s on <id>.localhost" % t, build("GET", t, fx_host))
    for t in ["/..%2f..%2fsecret.txt", "/%2e%2e/%2e%2e/secret.txt", "/../../secret.txt", "/%c0%ae%c0%ae/secret.txt",
              "/..\\..\\secret.txt", "/%00/x", "/nodir/link.txt"]:
        hostile(port, "traversal /site/<id>%s with Host example.test" % t, build("GET", "/site/%s%s" % (fx_id, t), "example.test"))
        # A loopback Host is redirected to the site's origin: only a valid path may be (contract: bad paths → 400).
        valid = t == "/nodir/link.txt"
        want = "http://%s%s" % (fx_host, t)
        hostile(port, "traversal /site/<id>%s with Host 127.0.0.1 → %s" % (t, "404 or 301 to its origin" if valid else "400/404, not a redirect"),
                build("GET", "/site/%s%s" % (fx_id, t), "127.0.0.1:%d" % port),
                judge=lambda r, valid=valid, want=want: None if r.status in (400, 404) or (
                    valid and r.status == 301 and r.get("location") == want) else "status %d, Location %r" % (r.status, r.get("location")))
    # Header injection through the redirect: an encoded CR LF must not become a header.
    for t in ["/site/%s/%%0d%%0aSet-Cookie:%%20injected=1" % fx_id, "/docs%0d%0aSet-Cookie:%20injected=1"]:
        for h in ["127.0.0.1:%d" % port, B.origin("site")]:
            hostile(port, "CR LF injection %s with Host %s" % (t.replace(fx_id, "<id>"), h.split(":")[0][:20]), build("GET", t, h),
                    judge=lambda r, t=t, h=h: "a header was injected: %r" % r.head if r.get("set-cookie") else (
                        None if r.status in HOSTILE_OK or (r.status == 301 and t.startswith("/site/") and r.get("location") ==
                                                           "http://%s%s" % (fx_host, t[len("/site/") + len(fx_id):]))
                        else "status %d, Location %r" % (r.status, r.get("location"))))
    sid = B.sites["site"]["site_id"]
    hostile(port, "/site/<sample id>/../<fixture id>/index.html (escaping one site into another)",
            build("GET", "/site/%s/../%s/index.html" % (sid, fx_id), "example.test"))
    hostile(port, "/site/<id>/%2e%2e/%2e%2e/%2e%2e/etc/passwd", build("GET", "/site/%s/%%2e%%2e/%%2e%%2e/%%2e%%2e/etc/passwd" % fx_id,
                                                                    "example.test"))
    # Absolute-form request targets.
    for t in ["http://%s/../secret.txt" % fx_host, "http://%s/%%2e%%2e/%%2e%%2e/secret.txt" % fx_host,
              "http://evil.test/../../etc/passwd", "http://127.0.0.1:%d/site/%s/../../secret.txt" % (port, fx_id),
              "file:///etc/passwd", "http://%s@evil.test/../secret.txt" % fx_host, "*"]:
        hostile(port, "absolute-form %s" % t, build("GET", t, fx_host))
    # The single-site root of A (Samples/site): the repository README is two levels up.
    a_host = "127.0.0.1:%d" % A.port
    for t in ["/../../README.md", "/%2e%2e/%2e%2e/README.md", "/..%2f..%2fREADME.md", "/%2e%2e%5c%2e%2e%5cREADME.md",
              "/..\\..\\README.md", "//etc/passwd", "/%c0%ae%c0%ae/%c0%ae%c0%ae/README.md", "/site/../../README.md"]:
        hostile(A.port, "single-site root: %s" % t, build("GET", t, a_host))

    # A file added under the site after start is not in the torrent: never served, never listed.
    with open(os.path.join(fx, "nodir", "late.txt"), "wb") as f:
        f.write(("late %s\n" % SECRET).encode())
    hostile(port, "a file added to the site directory after start → 404", build("GET", "/nodir/late.txt", fx_host))

    def listing_only_torrent():
        r = fetch(port, "/nodir/", fx_host)
        bad = [n for n in [b"late.txt", b"link.txt"] if n in r.body]
        R.check(r.status == 200 and not bad, "the /nodir/ listing shows only the torrent's entries (not %s)" % bad,
                more=[repr(r)[:400]])
    safe(listing_only_torrent, "listing vs disk")

    # Sizes.
    hostile(port, "a 100 KB URL → 414 or closed", build("GET", "/" + "a" * 100_000, fx_host), allowed=(414, 400))
    hostile(port, "a 9 KB URL → 414 or closed", build("GET", "/" + "b" * 9_000, fx_host), allowed=(414,))
    hostile(port, "a 100 KB header → 431 or closed", build("GET", "/index.html", fx_host, [("X-Big", "x" * 100_000)]),
            allowed=(431, 400))
    hostile(port, "10,000 headers → 431 or closed",
            build("GET", "/index.html", fx_host, [("X-H%d" % i, "v") for i in range(10_000)]), allowed=(431, 400))
    hostile(port, "a 1 MB header value (sent while the server may stop reading)",
            build("GET", "/index.html", fx_host, [("X-Huge", "y" * 1_000_000)]), allowed=(431, 400))
    hostile(port, "a 100 KB header name", build("GET", "/index.html", fx_host, [("X" * 100_000, "v")]), allowed=(431, 400))

    # Site ids (B has two sites, so no single-site fallback applies).
    good = B.sites["fx-site"]["site_id"]
    v2 = B.sites["fx-site"]["v2_infohash"]
    v1 = B.sites["fx-site"]["v1_infohash"]
    unknown = "".join(random.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(52))
    bad_ids = {"51 characters": good[:-1], "53 characters": good + "a", "non-base32 (1, 0, 8)": "1" + good[1:-2] + "08",
               "unknown but well-formed": unknown, "empty": "", "punctuation": good[:-1] + "-",
               "with a dot": good[:26] + "." + good[26:], "percent-encoded": "%" + good[:-1].replace("a", "%61", 1)}
    for what, bad in bad_ids.items():
        hostile(port, "Host <%s id>.localhost → 404" % what, build("GET", "/index.html", "%s.localhost:%d" % (bad, port)),
                allowed=(404, 400))
    for what, bad in {**bad_ids, "uppercase": good.upper(), "64-hex not a known hash": "%064x" % random.getrandbits(256),
                      "63-hex": v2[:-1], "65-hex": v2 + "0", "the v1 hash (40 hex)": v1, "non-hex 64": "g" * 64}.items():
        if not bad or "%" in bad:
            continue
        for h in ["example.test", "127.0.0.1:%d" % port]:
            hostile(port, "/site/<%s>/index.html with Host %s → 404" % (what, h.split(":")[0]),
                    build("GET", "/site/%s/index.html" % bad, h), allowed=(404, 400))

    def uppercase_host():
        r = fetch(port, "/index.html", "%s.LOCALHOST:%d" % (good.upper(), port))
        ok = r.status in (400, 404) or (r.status == 200 and r.body == disk["index.html"])
        R.check(ok, "Host <ID IN UPPERCASE>.LOCALHOST → 404, or the same site (host names are case-insensitive)", "%d" % r.status,
                more=[repr(r)])
    safe(uppercase_host, "uppercase host")
    hostile(port, "two Host headers naming two sites → 400",
            build("GET", "/index.html", fx_host, [("Host", B.origin("site"))]), allowed=(400,))

    # Range headers an attacker writes: the answer is the whole file, a correct part, or 416.
    big = disk["big.bin"]
    n = len(big)

    def range_judge(r):
        if r.status == 200:
            return body_problem(r.body, big)
        if r.status == 416:
            return None if r.get("content-range") == "bytes */%d" % n else "416 with Content-Range %r" % r.get("content-range")
        if r.status == 206:
            m = re.match(r"bytes (\d+)-(\d+)/(\d+)$", r.get("content-range") or "")
            if not m or int(m.group(3)) != n:
                return "206 with Content-Range %r" % r.get("content-range")
            a, b = int(m.group(1)), int(m.group(2))
            return body_problem(r.body, big[a:b + 1])
        return "status %d" % r.status
    too_big = (400, 431)   # a header this long may be refused as a whole
    for spec, also in [("bytes=0-18446744073709551616", ()), ("bytes=18446744073709551615-", ()), ("bytes=-18446744073709551616", ()),
                       ("bytes=9223372036854775807-9223372036854775808", ()), ("bytes=-9223372036854775808", ()),
                       ("bytes=99999999999999999999999999-", ()), ("bytes=0--1", ()), ("bytes=-0", ()), ("bytes=-", ()),
                       ("bytes=1-2,", ()), ("bytes=,", ()), ("bytes=" + "0-0," * 1500, too_big),
                       ("bytes=" + ",".join("%d-%d" % (i * 10, i * 10 + 4) for i in range(500)), too_big),
                       ("bytes=" + "1" * 5000 + "-", too_big), ("bytes=\x00-5", (400,)), ("bytes=1-2;3-4", ()), ("bytes=+1-+2", ()),
                       ("bytes=1 - 2", ()), ("BYTES=0-9", ()), ("bytes=0-9, 20-29", ()), ("bytes=\xff\xfe0-9", (400,))]:
        hostile(port, "Range %r" % (spec[:50] + ("…" if len(spec) > 50 else "")),
                build("GET", "/big.bin", fx_host, [("Range", spec.encode("latin-1"))]),
                judge=lambda r, also=also: None if r.status in also else range_judge(r))
    hostile(port, "two Range headers", build("GET", "/big.bin", fx_host, [("Range", "bytes=0-9"), ("Range", "bytes=20-29")]),
            judge=lambda r: None if r.status == 400 else range_judge(r))

    # Request lines and framing.
    tls = bytes.fromhex("16030100a5010000a10303") + os.urandom(32) + b"\x00" * 40
    hb = fx_host.encode()
    errors = HOSTILE_OK + (405, 501, 505)
    # lenient: RFC 9112 also lets a server parse these (answering the fixture's index.html).
    for what, data, lenient in [
            ("a TLS ClientHello", tls, False), ("binary garbage", bytes(range(256)) + b"\r\n\r\n", False),
            ("an HTTP/0.9 request", b"GET /index.html\r\n\r\n", False),
            ("HTTP/2.0 in the request line", build("GET", "/", fx_host, version="HTTP/2.0"), True),
            ("HTTP/9.9 in the request line", build("GET", "/", fx_host, version="HTTP/9.9"), True),
            ("a header line without a colon", b"GET / HTTP/1.1\r\nHost: " + hb + b"\r\nnocolon\r\n\r\n", False),
            ("a space before the colon", b"GET / HTTP/1.1\r\nHost : " + hb + b"\r\n\r\n", False),
            ("a request line with double spaces", b"GET  /  HTTP/1.1\r\nHost: " + hb + b"\r\n\r\n", True),
            ("a raw space in the path", b"GET /space name.html HTTP/1.1\r\nHost: " + hb + b"\r\n\r\n", False),
            ("a raw NUL in the path", b"GET /index.html\x00 HTTP/1.1\r\nHost: " + hb + b"\r\n\r\n", False),
            ("a raw CR in a header value", b"GET / HTTP/1.1\r\nHost: " + hb + b"\r\nX: a\rb\r\n\r\n", True),
            ("Content-Length and Transfer-Encoding on a GET",
             build("GET", "/", fx_host, [("Content-Length", "4"), ("Transfer-Encoding", "chunked")]) + b"0\r\n\r\n", True),
            ("a negative Content-Length", build("GET", "/", fx_host, [("Content-Length", "-1")]), False),
            ("an absurd Content-Length", build("GET", "/", fx_host, [("Content-Length", "9" * 30)]), False)]:
        hostile(port, what, data, judge=lambda r, lenient=lenient: None if r.status in errors or (
            lenient and r.status == 200 and r.body == disk["index.html"]) else "status %d (want one of %s%s)" % (
            r.status, errors, " or 200 with index.html" if lenient else ""))

    def pipelined():
        c = Conn(port)
        got = []
        try:
            c.send(build("GET", "/index.html", fx_host) + build("GET", "/nodir/sub/inner.txt", fx_host) + build("GET", "/nope", fx_host))
            for want in [(200, disk["index.html"]), (200, disk["nodir/sub/inner.txt"]), (404, None)]:
                try:
                    r = c.response()
                except Closed:
                    break
                got.append((r.status == want[0] and (want[1] is None or r.body == want[1]), r))
        finally:
            c.close()
        R.check(all(ok for ok, _ in got), "three pipelined requests: answered in order (or the connection closed)",
                "%d answered" % len(got), more=[repr(r) for _, r in got])
    safe(pipelined, "pipelining")

    safe(lambda: slow_client(B, fx_host, disk), "slow client")
    safe(lambda: slow_reader(B, fx_host, disk), "slow reader")
    safe(lambda: thousand(A, A.origin("site"), sample_disk["index.html"]), "1,000 connections")

    # Still standing.
    for gw, host, body in [(A, A.origin("site"), sample_disk["index.html"]), (B, fx_host, disk["index.html"])]:
        def standing():
            r = fetch(gw.port, "/", host)
            R.check(gw.proc.alive() and r.status == 200 and r.body == body,
                    "after everything, the %s gateway is alive and serves index.html" % gw.name, more=[repr(r)] + gw.proc.log_tail(8))
        safe(standing, "standing " + gw.name)


# A gateway that let one client block others would leave these requests waiting until that client
# is done (never, while it dribbles): the bound only has to be far below that, and loose enough for
# a loaded machine.
QUICK = 5.0


def timed_index(port, host, want):
    t = time.time()
    try:
        r = fetch(port, "/index.html", host, timeout=10)
        good = r.status == 200 and r.body == want
    except (OSError, Closed, Partial):
        good = False
    return time.time() - t, good


def slow_client(gw, host, disk, seconds=30):
    """Sends its request one byte per second for up to `seconds` (never completing it); meanwhile
    others are served at once. Either the gateway closes it (a header deadline), or, sending the
    rest at once, it is answered."""
    c = Conn(gw.port, 10)
    req = build("GET", "/index.html", host)
    sent, closed_early, times, bad = 0, False, [], 0
    try:
        t0 = time.time()
        while time.time() - t0 < seconds and sent < len(req) - 1:
            try:
                c.s.send(req[sent:sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed_early = True
                break
            if c.closed_by_peer(0):
                closed_early = True
                break
            took, good = timed_index(gw.port, host, disk["index.html"])
            times.append(took)
            bad += not good
            # the pacing of the slow client is the test's input, not a synchronisation
            time.sleep(max(0.0, t0 + sent - time.time()))
        R.check(times and max(times) < QUICK and bad == 0,
                "while a client dribbles its request (1 byte/s, %d bytes), %d other requests are answered at once" % (sent, len(times)),
                "slowest %.3f s" % (max(times) if times else -1), more=["%d bad or unanswered" % bad])
        if closed_early:
            R.ok("the dribbling client is closed by the gateway", "after %d bytes" % sent)
            return
        try:
            c.send(req[sent:])
            r = c.response(timeout=10)
            R.check(r.status in (200, 400, 408) and (r.status != 200 or r.body == disk["index.html"]),
                    "the dribbling client, finishing its request, is answered (or closed)", "%d after %d paced bytes" % (r.status, sent),
                    more=[repr(r)])
        except (Closed, BrokenPipeError, ConnectionResetError):
            R.ok("the dribbling client is closed by the gateway", "after %d bytes" % sent)
        except (Partial, TimeoutError) as e:
            R.fail("the dribbling client is answered or closed within 10 s of finishing its request", str(e))
    finally:
        c.close()


def slow_reader(gw, host, disk):
    """Asks for 3 MB and reads nothing: the others must not wait for it."""
    c = Conn(gw.port, 10, rcvbuf=4096)
    try:
        c.send(build("GET", "/big.bin", host))
        times = []
        for _ in range(5):
            took, good = timed_index(gw.port, host, disk["index.html"])
            times.append((took, good))
        R.check(all(g for _, g in times) and max(t for t, _ in times) < QUICK,
                "a client that never reads a 3 MB answer does not hold up others", "slowest %.3f s" % max(t for t, _ in times))
    finally:
        c.close()


# `seed --max-connections`' default: connections open at once.
MAX_CONNECTIONS = 512


def thousand(gw, host, want, n=1000, connect_limit=30, limit=120):
    """Opens n connections at once, and only when every one is connected (or refused) sends a GET
    on each: all n are open together at the gateway. Each must be answered (200, identical) or
    refused cleanly (refused, reset or closed before any byte, or 503/429), and no more than
    MAX_CONNECTIONS answered: the others were closed as they were accepted."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(need, hard), hard))
    req = build("GET", "/index.html", host, [("Connection", "close")])
    sel = selectors.DefaultSelector()
    outcomes = {}
    t0 = time.time()
    states = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", gw.port))
        if err not in (0, errno.EINPROGRESS):
            outcomes[i] = ("refused", errno.errorcode.get(err, str(err)))
            s.close()
            continue
        st = {"i": i, "s": s, "phase": "connecting", "buf": bytearray()}
        states.append(st)
        sel.register(s, selectors.EVENT_WRITE, st)

    def finish(st, kind, detail=""):
        outcomes[st["i"]] = (kind, detail)
        sel.unregister(st["s"])
        st["s"].close()

    def readable(st):
        s = st["s"]
        try:
            d = s.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            d = b""
        if st["phase"] == "connected":   # nothing asked yet
            finish(st, "refused" if not d else "bad", "closed while idle" if not d else "unasked bytes %r" % d[:60])
            return
        if d:
            st["buf"] += d
        try:
            got = parse_response(st["buf"], eof=not d)
        except Partial as e:
            finish(st, "bad", str(e))
            return
        if got:
            r = got[0]
            if r.status == 200 and r.body == want:
                finish(st, "answered")
            elif r.status in (503, 429):
                finish(st, "refused", "%d" % r.status)
            else:
                finish(st, "bad", repr(r)[:200])
        elif not d:
            finish(st, "refused" if not st["buf"] else "bad", "closed" if not st["buf"] else "closed inside a response")

    # Phase 1: every connection open (or refused).
    deadline = t0 + connect_limit
    while any(st["phase"] == "connecting" and st["i"] not in outcomes for st in states) and time.time() < deadline:
        for key, _ in sel.select(timeout=0.5):
            st = key.data
            if st["phase"] == "connecting":
                err = st["s"].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish(st, "refused", errno.errorcode.get(err, str(err)))
                else:
                    st["phase"] = "connected"
                    sel.modify(st["s"], selectors.EVENT_READ, st)
            else:
                readable(st)
    # Phase 1b: connected here does not mean accepted there (the kernel's queue). The gateway
    # closes what it accepts beyond its limit: wait until it has closed that many (bounded).
    while (sum(1 for kind, _ in outcomes.values() if kind == "refused") < n - MAX_CONNECTIONS
           and time.time() < deadline):
        for key, _ in sel.select(timeout=0.5):
            if key.data["phase"] == "connected":
                readable(key.data)
    open_at_once = sum(1 for st in states if st["phase"] == "connected" and st["i"] not in outcomes)
    still_connecting = sum(1 for st in states if st["phase"] == "connecting" and st["i"] not in outcomes)
    # Phase 2: a GET on each, then every answer.
    for st in states:
        if st["phase"] == "connected" and st["i"] not in outcomes:
            try:
                if st["s"].send(req) != len(req):
                    finish(st, "bad", "short send")
                    continue
            except OSError as e:
                finish(st, "refused", errno.errorcode.get(e.errno, str(e)))
                continue
            st["phase"] = "sent"
    deadline = time.time() + limit
    while any(st["phase"] == "sent" and st["i"] not in outcomes for st in states) and time.time() < deadline:
        for key, _ in sel.select(timeout=0.5):
            st = key.data
            if st["phase"] == "sent":
                readable(st)
    pending = [st for st in states if st["i"] not in outcomes]
    for st in pending:
        sel.unregister(st["s"])
        st["s"].close()
    sel.close()
    kinds = {}
    for kind, detail in outcomes.values():
        kinds.setdefault(kind, []).append(detail)
    answered, refused, bad = len(kinds.get("answered", [])), len(kinds.get("refused", [])), kinds.get("bad", [])
    took = time.time() - t0
    reasons = sorted(set(kinds.get("refused", [])))
    R.check(not bad and not pending and answered > 0,
            "%d connections open at once, then a GET on each: all answered (200, identical) or refused cleanly" % n,
            "%d open together, %d answered, %d refused (%s), %d bad, %d unanswered (%d never connected) after %.1f s" % (
                open_at_once, answered, refused, ", ".join(reasons[:5]) or "-", len(bad), len(pending), still_connecting, took),
            more=bad[:5])
    R.check(0 < answered <= MAX_CONNECTIONS and answered + refused == n,
            "with %d connections open at once, at most %d (--max-connections) are served, the rest closed at once"
            % (n, MAX_CONNECTIONS), "%d answered, %d refused" % (answered, refused))
    took, good = timed_index(gw.port, host, want)
    R.check(good and gw.proc.alive(), "after 1,000 connections a normal request works", "%.3f s" % took)


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    ws = os.path.abspath(args.webseed)
    work = tempfile.mkdtemp(prefix="webseed-gateway-")
    gateways = []
    try:
        fx, fx_disk = make_fixture(work)
        try:
            A = Gateway("A", ws, [SAMPLE], work)
            gateways.append(A)
            B = Gateway("B", ws, [SAMPLE, fx], work)
            gateways.append(B)
        except RuntimeError as e:
            R.fail("seeders start with --gateway 127.0.0.1:0 and report it", str(e),
                   more=[l for p in Proc.ALL for l in p.log_tail(10)])
            return
        R.ok("seeders start with --gateway 127.0.0.1:0", "A on %d, B on %d" % (A.port, B.port))
        a_files = torrent_files(ws, A.sites["site"]["torrent"])
        fx_files = torrent_files(ws, B.sites["fx-site"]["torrent"])
        sample_disk = {rel: read(os.path.join(SAMPLE, rel)) for rel in a_files}
        R.check(set(fx_files) == set(fx_disk), "the fixture's torrent holds exactly the files written (symlinks skipped)",
                str(sorted(set(fx_files) ^ set(fx_disk))))

        semantics_sample(A, a_files)
        semantics_fixture(B, fx_files, fx_disk)
        R.check(not NO_NOSNIFF["semantics"], "X-Content-Type-Options: nosniff on all %d responses above" % SEEN["semantics"],
                "missing on %d" % len(NO_NOSNIFF["semantics"]), more=NO_NOSNIFF["semantics"][:12])

        PHASE[0] = "hostile"
        hostile_all(ws, A, B, fx_disk, sample_disk, fx)
        R.check(not NO_NOSNIFF["hostile"], "X-Content-Type-Options: nosniff on all %d responses to hostile requests" %
                SEEN["hostile"], "missing on %d" % len(NO_NOSNIFF["hostile"]), more=NO_NOSNIFF["hostile"][:12])
        R.check(not LEAKS, "no response body or head holds the secret from outside the site, /etc/passwd, the README or a "
                "torrent (%d responses)" % sum(SEEN.values()), "; ".join("%s %s: %s" % x for x in LEAKS[:8]))
        for gw in gateways:
            rc, took = gw.proc.stop()
            R.check(rc == 0, "seeder %s with its gateway stops on SIGTERM with exit 0" % gw.name, "%.1f s" % took,
                    more=gw.proc.log_tail(8))
    finally:
        for gw in gateways:
            if gw.proc.alive():
                gw.proc.stop(timeout=5)
        Proc.kill_all()
        if args.keep:
            print("info work directory kept: %s" % work, flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
        print(R.summary(), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0 if R.failed == 0 and R.passed > 0 else 1)
