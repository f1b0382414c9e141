#!/usr/bin/python3
"""A real browser loads the sample site through webseed's HTTP gateway, and corrupted data is
never sent (/work/notes/gateway-contract.md).

Browser cases (headless Chromium from Debian's `chromium` package, one fresh profile and HOME
per run, loopback only; see CHROMIUM_FLAGS):

  a  the seeder's own gateway:
       webseed seed SAMPLE --listen 127.0.0.1:0 --gateway 127.0.0.1:0 --offline --state-dir S --json
     Chromium loads the site event's gateway_url, http://<site-id>.localhost:PORT/ (Chromium
     resolves *.localhost to loopback by itself).
  b  a separate gateway holding nothing, fetching on demand from that webseed seeder:
       webseed gateway MAGNET --listen 127.0.0.1:0 --peer-listen 127.0.0.1:0
           --peer 127.0.0.1:SEEDPORT --offline --state-dir G --json
     Chromium loads its gateway_site event's url.
  c  the same with a libtorrent 2.0.8 seeder (webseedtest/ltpeer.py seed: its own hybrid torrent of the
     sample, made by libtorrent's creator; for the sample its info hash is webseed's).
  b and c also check that the seeder uploaded payload over the peer wire (the webseed
  seeder's `stopped` event; ltpeer's `uploaded` answer to SIGUSR1).

  For each: Chromium runs with --dump-dom and --screenshot (artifacts/test/gateway-X.png).
  Checks: the DOM holds <p id="webseed-marker">webseed-sample-ok</p>, <body data-webseed=
  "loaded"> and the "status-ok" line (js/app.js ran), and as many file-list links as
  assets.json lists (fetch() through the gateway worked); the screenshot's corner has the
  stylesheet's background colour #0f172a (CSS applied) and tens of thousands of distinct
  colours (the noisy photo is drawn: without it the page has about 3,700); every file of the
  sample, requested through the same gateway URL afterwards, is byte-identical to the source.
  One more check at the end: Chromium's net logs show no TCP connection beyond loopback (its
  background requests die at the dead proxy 127.0.0.1:9) and no UDP datagram sent beyond
  loopback.

Corruption case (d), on the seeder's own gateway, with a generated site (index.html,
media/big1.bin and big3.bin of about 2 MB and big2.bin of 12 MB, random bytes) seeded as in (a):
  d1 corrupt big1.bin (one byte in the middle flipped, size kept), then GET it: the response
     must be a 5xx whose body names the file, or be cut off short of Content-Length; and the
     bytes received must be a prefix of the original (the wrong byte never arrives). Then the
     same GET once more (the gateway may know by then).
  d2 the same file, a Range request for 100 bytes around the corrupted byte.
  d3 big3.bin corrupted the same way but with its mtime put back (only its hashes can tell).
  d4 a response already streaming: GET big2.bin with a 16 KiB receive buffer, read 64 KiB,
     flip a byte 64 KiB before its end, then read the rest: the contract says the connection
     is cut off before Content-Length; what happened is reported (an `info` line), and the
     check is that every byte received is the original one. (12 MB, more than any socket send
     buffer holds, so that a gateway that streams from disk has not read the end yet.)
  Then the seeder still serves index.html, and exits 0 on SIGTERM.

Usage:
  /usr/bin/python3 Tools/interop/gateway_browser.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-gwbrowser [--artifacts artifacts/test] [--only a,b,c,d]

Loopback only; every wait is bounded; every child (Chromium's whole process group too) is
killed at the end. One `ok ...` / `FAIL ...` line per check, `info ...` lines, and a last line
`N passed, M failed`; exit status 1 if any check failed.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

from webseedtest.cases import add_only, chosen_cases
from webseedtest.procs import Proc, program, tail
from webseedtest.results import Results
from webseedtest.trees import fresh_dirs

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ALL_CASES = ["a", "b", "c", "d"]

# Debian's /usr/bin/chromium is a shell wrapper that sources /etc/chromium.d (Google API keys,
# --enable-remote-extensions, --load-extension=…): run the browser binary itself instead.
CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",                         # we run as root
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--proxy-server=127.0.0.1:9",           # a dead proxy: anything not on loopback fails there
    # and should a request bypass the proxy, no name but the loopback ones resolves
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1",
    "--dns-prefetch-disable",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--safebrowsing-disable-auto-update",
    "--no-pings",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1800",
    # After the load event, let timers and fetch() run (virtual time stands still while a
    # request is pending, so a slow gateway is waited for; the real time is bounded below).
    "--virtual-time-budget=10000",
]
CHROMIUM_WALL = 120        # seconds for one Chromium run
EVENT_TIMEOUT = 60         # seconds for a seeder / gateway to announce itself
HTTP_TIMEOUT = 60          # socket timeout of the harness's own HTTP requests
HTTP_TOTAL = 120           # and the most one response may take in all
BG = (0x0f, 0x17, 0x2a)    # css/site.css: html { background: var(--bg) } = #0f172a
MIN_COLOURS = 20000        # the sample page with its photo: ~64,000; without: ~3,700
MARKER = '<p id="webseed-marker">webseed-sample-ok</p>'
KIB = 1024


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

def site_files(root):
    """{relative path: bytes} of every regular file under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(filenames):
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root).replace(os.sep, "/")] = f.read()
    return out


def url_path(rel):
    return "/" + urllib.parse.quote(rel, safe="/")


def http_get(port, host, path, headers=None, timeout=HTTP_TIMEOUT, total=HTTP_TOTAL):
    """GET http://HOST/PATH from 127.0.0.1:PORT. Returns (status, headers dict (lower-case
    names), body bytes, cut) where cut is True when the body ended (connection closed, reset,
    or `total` seconds passed) before the announced length; status None and the error text as
    body if there was no response."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    deadline = time.time() + total
    try:
        h = {"Host": host, "Accept-Encoding": "identity"}
        h.update(headers or {})
        try:
            c.request("GET", path, headers=h)
            resp = c.getresponse()
        except (OSError, http.client.HTTPException) as e:
            return None, {}, ("%s: %s" % (type(e).__name__, e)).encode(), False
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        chunks, cut = [], False
        try:
            while time.time() < deadline:
                d = resp.read(65536)
                if not d:
                    break
                chunks.append(d)
            else:
                cut = True
        except http.client.IncompleteRead as e:
            chunks.append(e.partial)
            cut = True
        except (OSError, http.client.HTTPException):
            cut = True
        body = b"".join(chunks)
        length = hdrs.get("content-length", "")
        if length.isdigit() and len(body) < int(length):
            cut = True
        return resp.status, hdrs, body, cut
    finally:
        c.close()


class RawResponse:
    """One GET on a raw socket, read at the harness's pace (for the in-flight corruption)."""

    def __init__(self, port, host, path, rcvbuf=None, timeout=HTTP_TIMEOUT, extra=""):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.deadline = time.time() + HTTP_TOTAL
        self.s.connect(("127.0.0.1", port))
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n%s"
                        "Connection: close\r\n\r\n" % (path, host, extra)).encode())
        self.buf = b""
        self.status = None
        self.headers = {}
        self.body = b""
        self.length = None
        self.eof = False
        self.error = None

    def _recv(self):
        if time.time() > self.deadline:
            self.error = "still reading after %ds" % HTTP_TOTAL
            self.eof = True
            return b""
        try:
            d = self.s.recv(65536)
        except OSError as e:   # timeout, reset
            self.error = "%s: %s" % (type(e).__name__, e)
            self.eof = True
            return b""
        if not d:
            self.eof = True
        return d

    def read_head(self):
        while b"\r\n\r\n" not in self.buf and not self.eof:
            self.buf += self._recv()
        if b"\r\n\r\n" not in self.buf:
            return False
        head, _, self.body = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        for l in lines[1:]:
            k, _, v = l.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "content-length" in self.headers and self.headers["content-length"].isdigit():
            self.length = int(self.headers["content-length"])
        return True

    def read_body(self, upto=None):
        """Reads until `upto` body bytes (or Content-Length) arrived, or the connection ended."""
        want = upto if upto is not None else self.length
        while not self.eof and (want is None or len(self.body) < want):
            self.body += self._recv()
        if self.length is not None and len(self.body) > self.length:
            self.body = self.body[:self.length]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def decode_png(data):
    """(width, height, bytes per pixel, rows) of an 8-bit, non-interlaced RGB/RGBA PNG
    (what Chromium's --screenshot writes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, []
    w = h = depth = ctype = inter = None
    while pos + 8 <= len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        typ, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
    if depth != 8 or inter != 0 or ctype not in (2, 6):
        raise ValueError("unsupported PNG: depth %s, colour type %s, interlace %s" % (depth, ctype, inter))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            for x in range(stride):
                line[x] = (line[x] + prev[x]) & 255
        elif f == 3:
            for x in range(stride):
                line[x] = (line[x] + ((line[x - bpp] if x >= bpp else 0) + prev[x]) // 2) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def is_loopback_host(host):
    host = (host or "").strip("[]").lower()
    return host in ("localhost", "::1") or host.endswith(".localhost") or host.startswith("127.")


def addr_host(address):
    return str(address).rpartition(":")[0].strip("[]")


# ---------------------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------------------

class BrowserRun:
    """One headless Chromium run: --dump-dom and --screenshot of one URL, with its own
    profile, HOME and net log under work/chromium/NAME."""

    NETLOGS = []

    def __init__(self, args, name, url, shot):
        self.name = name
        self.url = url
        self.shot = shot
        self.dir = os.path.join(args.work, "chromium", name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "home"))
        self.profile = os.path.join(self.dir, "profile")
        self.netlog = os.path.join(self.dir, "netlog.json")
        self.err_path = os.path.join(self.dir, "stderr.log")
        self.dom_path = os.path.join(self.dir, "dom.html")
        self.argv = [args.chromium] + CHROMIUM_FLAGS + [
            "--user-data-dir=" + self.profile, "--log-net-log=" + self.netlog,
            "--screenshot=" + shot, "--dump-dom", url]
        self.rc = None
        self.dom = ""
        self.took = None
        self.timed_out = False

    def run(self):
        if os.path.exists(self.shot):
            os.unlink(self.shot)
        home = os.path.join(self.dir, "home")
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
               "XDG_CONFIG_HOME": os.path.join(home, ".config"),
               "XDG_CACHE_HOME": os.path.join(home, ".cache"), "TZ": "UTC"}
        t0 = time.time()
        with open(self.err_path, "wb") as err:
            p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=err,
                                 stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            try:
                try:
                    out, _ = p.communicate(timeout=CHROMIUM_WALL)
                except subprocess.TimeoutExpired:
                    self.timed_out = True
                    os.killpg(p.pid, signal.SIGKILL)
                    out, _ = p.communicate(timeout=10)
                self.rc = p.returncode
            finally:
                # the browser's helpers (zygote, renderer, GPU, network service) share its
                # process group: none may outlive the run
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
        self.took = time.time() - t0
        self.dom = (out or b"").decode(errors="replace")
        with open(self.dom_path, "w") as f:
            f.write(self.dom)
        BrowserRun.NETLOGS.append(self.netlog)
        return self

    def problem(self):
        if self.timed_out:
            return "Chromium still running after %ds (killed)" % CHROMIUM_WALL
        if self.rc != 0:
            return "Chromium exit status %s" % self.rc
        return None

    def log_tail(self, n=8):
        lines = [l for l in tail(self.err_path, 200) if "dbus" not in l]
        return ["[chromium stderr] " + l for l in lines[-n:]]


def check_page(r, label, b, expected_links):
    """The DOM and screenshot of the sample's index page as Chromium saw it."""
    what = "%s Chromium renders the sample (JS ran: marker, data-webseed, status line)" % label
    bad = b.problem()
    dom = b.dom
    found = {
        "marker": MARKER in dom,
        "data-webseed": bool(re.search(r'<body[^>]*\bdata-webseed="loaded"', dom)),
        "status-ok": bool(re.search(r'<p[^>]*\bid="js-status"[^>]*\bclass="status status-ok"', dom)
                          or re.search(r'<p[^>]*\bclass="status status-ok"[^>]*\bid="js-status"', dom)),
    }
    missing = [k for k, v in found.items() if not v]
    detail = bad or ("%s missing from the DOM (%d bytes)" % (", ".join(missing), len(dom)) if missing else
                     "in %.1fs: %s" % (b.took, ", ".join(found)))
    more = [] if not (bad or missing) else b.log_tail() + ["[dom] " + dom[-300:].replace("\n", " ")]
    r.check(not bad and not missing, what, detail, more=more)

    m = re.search(r'<ul id="file-list"[^>]*>(.*?)</ul>', dom, re.S)
    links = len(re.findall(r"<li><a ", m.group(1))) if m else 0
    r.check(links == expected_links, "%s fetch() of assets.json through the gateway: file list drawn" % label,
            "%d of %d links" % (links, expected_links),
            more=[] if links == expected_links else ["[file-list] " + (m.group(1)[:300] if m else "no <ul id=file-list>")])

    what = "%s screenshot: stylesheet applied and the photo drawn" % label
    try:
        with open(b.shot, "rb") as f:
            w, h, bpp, rows = decode_png(f.read())
    except (OSError, ValueError, zlib.error) as e:
        r.fail(what, "no usable screenshot at %s: %s" % (b.shot, e), more=b.log_tail())
        return
    corner = tuple(rows[4][4 * bpp:4 * bpp + 3])
    colours = set()
    for row in rows:
        for x in range(0, len(row), bpp):
            colours.add(row[x:x + 3])
    ok_bg = max(abs(a - c) for a, c in zip(corner, BG)) <= 2
    ok_photo = len(colours) >= MIN_COLOURS
    r.check(ok_bg and ok_photo, what, "%s: %dx%d, corner #%02x%02x%02x (CSS background #%02x%02x%02x%s), "
            "%d distinct colours (%s %d: photo %s)" % (
                os.path.relpath(b.shot, ROOT) if b.shot.startswith(ROOT) else b.shot, w, h, *corner, *BG,
                "" if ok_bg else ": NOT APPLIED", len(colours), ">=" if ok_photo else "<", MIN_COLOURS,
                "drawn" if ok_photo else "MISSING"))


def check_files_via_gateway(r, label, port, host, files):
    """Every file of the site, requested from the gateway, is byte-identical to the source."""
    problems = []
    nbytes = 0
    for rel, data in sorted(files.items()):
        st, hdrs, body, cut = http_get(port, host, url_path(rel))
        if st != 200:
            problems.append("%s: status %s%s" % (rel, st, (" " + body[:120].decode(errors="replace")) if st is None else ""))
        elif cut or body != data:
            problems.append("%s: %d bytes%s, source %d, differ%s" % (
                rel, len(body), " (cut off)" if cut else "", len(data),
                next((" at byte %d" % i for i in range(min(len(body), len(data))) if body[i] != data[i]), "")))
        else:
            nbytes += len(data)
    r.check(not problems, "%s every file via http://%s/ byte-identical to the source" % (label, host),
            "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "") if problems else
            "%d files, %d bytes" % (len(files), nbytes))


def check_netlogs(r):
    """Across every Chromium run: no TCP connection attempt and no UDP datagram beyond loopback."""
    tcp_out, udp_sent, probes, proxied, unreadable = [], [], set(), 0, []
    for path in BrowserRun.NETLOGS:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            unreadable.append("%s: %s" % (path, e))
            continue
        d = None
        for suffix in ("", "]}", "{}]}"):   # a run that was killed leaves the log unterminated
            try:
                d = json.loads(text + suffix)
                break
            except ValueError:
                continue
        if d is None:
            unreadable.append(path)
            continue
        types = {v: k for k, v in d.get("constants", {}).get("logEventTypes", {}).items()}
        udp_remote = {}
        events = d.get("events", [])
        for e in events:
            t = types.get(e.get("type"))
            p = e.get("params") or {}
            src = e.get("source", {}).get("id")
            if t == "TCP_CONNECT_ATTEMPT" and "address" in p:
                if not is_loopback_host(addr_host(p["address"])):
                    tcp_out.append(p["address"])
                elif p["address"] == "127.0.0.1:9":
                    proxied += 1
            elif t == "UDP_CONNECT" and "address" in p:
                udp_remote[src] = p["address"]
        for e in events:
            src = e.get("source", {}).get("id")
            if types.get(e.get("type")) == "UDP_BYTES_SENT" and src in udp_remote:
                a = udp_remote[src]
                if not is_loopback_host(addr_host(a)):
                    udp_sent.append(a)
        probes.update(a for a in udp_remote.values() if not is_loopback_host(addr_host(a)))
    ok = not tcp_out and not udp_sent and not unreadable and BrowserRun.NETLOGS
    r.check(ok, "Chromium stayed on loopback (net logs of %d runs)" % len(BrowserRun.NETLOGS),
            "TCP beyond loopback: %s; UDP datagrams beyond loopback: %s; %s%d connection attempts to the "
            "dead proxy 127.0.0.1:9 (Chromium's own background requests); UDP connect() without "
            "datagrams (IPv6 reachability probe): %s" % (
                sorted(set(tcp_out)) or "none", sorted(set(udp_sent)) or "none",
                ("unreadable logs: %s; " % unreadable) if unreadable else "", proxied,
                sorted(probes) or "none"))


# ---------------------------------------------------------------------------------------
# Processes under test
# ---------------------------------------------------------------------------------------

def wait_events(proc, names, timeout):
    """{name: first event of that name} for each name, waiting up to timeout in all; the
    missing ones are absent."""
    deadline = time.time() + timeout
    got = {}
    for n in names:
        _, ev = proc.wait_event(lambda e, n=n: e.get("event") == n, max(0.1, deadline - time.time()))
        if ev is not None:
            got[n] = ev
    return got


def start_webseed_seed(r, args, label, source, state, logdir):
    """`webseed seed SOURCE --gateway 127.0.0.1:0 …`; returns (proc, info) where info has
    seed_port, gateway_port, site (its site event), or (proc, None) after a FAIL line."""
    argv = [args.webseed, "seed", source, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0",
            "--offline", "--state-dir", state, "--json"]
    os.makedirs(state, exist_ok=True)
    proc = Proc("seed-" + label, argv, logdir)
    got = wait_events(proc, ["listening", "site", "gateway", "ready"], EVENT_TIMEOUT)
    what = "%s webseed seed --gateway 127.0.0.1:0: listening, site, gateway and ready events" % label
    missing = [n for n in ("listening", "site", "gateway", "ready") if n not in got]
    problems = []
    if missing:
        problems.append("no %s event within %ds (exit %s)" % ("/".join(missing), EVENT_TIMEOUT, proc.p.poll()))
    site, gw = got.get("site", {}), got.get("gateway", {})
    if gw and not (isinstance(gw.get("port"), int) and gw.get("port") > 0):
        problems.append("gateway event without a port: %s" % gw)
    if site and not re.fullmatch(r"[a-z2-7]{52}", str(site.get("site_id"))):
        problems.append("site_id %r is not 52 base32 characters" % site.get("site_id"))
    want_url = "http://%s.localhost:%s/" % (site.get("site_id"), gw.get("port"))
    if site and gw and site.get("gateway_url") != want_url:
        problems.append("site event gateway_url %r, expected %r" % (site.get("gateway_url"), want_url))
    if not r.check(not problems, what, "; ".join(problems) or "peers on 127.0.0.1:%d, gateway %s, site %s" % (
            got["listening"]["port"], gw.get("url"), site.get("gateway_url")),
            more=proc.log_tail(12) if problems else []):
        return proc, None
    return proc, {"seed_port": got["listening"]["port"], "gateway_port": gw["port"], "site": site}


def start_webseed_gateway(r, args, label, magnet, peer, state, logdir):
    argv = [args.webseed, "gateway", magnet, "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
            "--peer", peer, "--offline", "--state-dir", state, "--json"]
    os.makedirs(state, exist_ok=True)
    proc = Proc("gateway-" + label, argv, logdir)
    got = wait_events(proc, ["gateway", "gateway_site"], EVENT_TIMEOUT)
    problems = []
    missing = [n for n in ("gateway", "gateway_site") if n not in got]
    if missing:
        problems.append("no %s event within %ds (exit %s)" % ("/".join(missing), EVENT_TIMEOUT, proc.p.poll()))
    gw, gs = got.get("gateway", {}), got.get("gateway_site", {})
    if gw and gs:
        want = "http://%s.localhost:%s/" % (gs.get("site_id"), gw.get("port"))
        if gs.get("url") != want:
            problems.append("gateway_site url %r, expected %r" % (gs.get("url"), want))
    if not r.check(not problems, "%s webseed gateway MAGNET --peer %s: gateway and gateway_site events" % (label, peer),
                   "; ".join(problems) or "gateway %s, site %s (name %r)" % (gw.get("url"), gs.get("url"), gs.get("name")),
                   more=proc.log_tail(12) if problems else []):
        return proc, None
    return proc, {"gateway_port": gw["port"], "site_id": gs["site_id"], "url": gs["url"]}


def stop_checked(r, proc, what):
    if proc is None:
        return
    if not proc.alive():
        rc = proc.wait(1)
        r.fail(what, "had already exited (status %s) before SIGTERM" % rc, more=proc.log_tail(12))
        proc.stop(timeout=1)
        return
    rc, took = proc.stop(timeout=10)
    r.check(rc == 0, what, "SIGTERM: exit %s after %.2fs" % (rc if rc is not None else "none (killed)", took),
            more=[] if rc == 0 else proc.log_tail(12))


def stored_note(state, site_id):
    d = os.path.join(state, "gateway", site_id or "?")
    if not os.path.isdir(d):
        return "%s does not exist" % d
    n = sum(len(fs) for _, _, fs in os.walk(d))
    return "%d files under %s" % (n, d)


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

def browse(r, args, label, url, gateway_port, files, expected_links):
    shot = os.path.join(args.artifacts, "gateway-%s.png" % label)
    b = BrowserRun(args, "gateway-" + label, url, shot).run()
    check_page(r, label, b, expected_links)
    host = urllib.parse.urlsplit(url).netloc
    check_files_via_gateway(r, label, gateway_port, host, files)


def cases_webseed(r, args, cases, files, links, logdir):
    """a (the seeder's gateway) and b (a separate gateway fetching from it)."""
    seed, info = start_webseed_seed(r, args, "a", args.sample, os.path.join(args.work, "state", "seed-a"), logdir)
    gw = None
    fetched = False
    try:
        if info is None:
            return
        if "a" in cases:
            browse(r, args, "a", info["site"]["gateway_url"], info["gateway_port"], files, links)
        if "b" in cases:
            state = os.path.join(args.work, "state", "gateway-b")
            gw, ginfo = start_webseed_gateway(r, args, "b", info["site"]["magnet"],
                                              "127.0.0.1:%d" % info["seed_port"], state, logdir)
            if ginfo is not None:
                r.check(ginfo["site_id"] == info["site"]["site_id"], "b gateway's site id is the seeder's",
                        "%s vs %s" % (ginfo["site_id"], info["site"]["site_id"]))
                browse(r, args, "b", ginfo["url"], ginfo["gateway_port"], files, links)
                Results.info("b gateway store", stored_note(state, ginfo["site_id"]))
                fetched = True
            stop_checked(r, gw, "b webseed gateway stops")
            gw = None
    finally:
        if gw is not None:
            gw.stop(timeout=5)
        stop_checked(r, seed, "a webseed seed (with its gateway) stops")
    if fetched:
        st = seed.event_times(lambda e: e.get("event") == "stopped")
        sent = st[-1][1].get("uploaded") if st else None
        r.check(isinstance(sent, int) and sent > 0, "b the data came over the peer wire from the webseed seeder",
                "it uploaded %s payload bytes (the sample is %d bytes)" % (sent, sum(map(len, files.values()))))


def lt_uploaded(proc, timeout=10):
    """Payload bytes the libtorrent seeder sent so far: asked with SIGUSR1, answered with
    {"event":"uploaded","asked":true}; None if it did not answer in time."""
    with proc.cond:
        start = len(proc.events)
    try:
        proc.p.send_signal(signal.SIGUSR1)
    except ProcessLookupError:
        return None
    _, ev = proc.wait_event(lambda e: e.get("event") == "uploaded" and e.get("asked"), timeout, start)
    return ev.get("bytes") if ev else None


def case_c(r, args, files, links, logdir):
    state = os.path.join(args.work, "state", "lt-c")
    os.makedirs(state, exist_ok=True)
    lt = Proc("lt-seed-c", program("ltpeer") + ["seed", args.sample, "--listen", "127.0.0.1:0", "--state-dir", state,
                            "--offline", "--json"], logdir)
    gw = None
    try:
        got = wait_events(lt, ["listening", "site", "ready"], EVENT_TIMEOUT)
        if not r.check(len(got) == 3, "c libtorrent seeder (ltpeer.py seed, libtorrent's own hybrid torrent) ready",
                       "peers on 127.0.0.1:%s, site %s" % (got.get("listening", {}).get("port"),
                                                           got.get("site", {}).get("site_id"))
                       if len(got) == 3 else "events %s within %ds (exit %s)" % (sorted(got), EVENT_TIMEOUT, lt.p.poll()),
                       more=[] if len(got) == 3 else lt.log_tail(12)):
            return
        gstate = os.path.join(args.work, "state", "gateway-c")
        gw, ginfo = start_webseed_gateway(r, args, "c", got["site"]["magnet"],
                                          "127.0.0.1:%d" % got["listening"]["port"], gstate, logdir)
        if ginfo is not None:
            r.check(ginfo["site_id"] == got["site"]["site_id"], "c gateway's site id is libtorrent's torrent's",
                    "%s vs %s" % (ginfo["site_id"], got["site"]["site_id"]))
            browse(r, args, "c", ginfo["url"], ginfo["gateway_port"], files, links)
            Results.info("c gateway store", stored_note(gstate, ginfo["site_id"]))
            sent = lt_uploaded(lt)
            r.check(isinstance(sent, int) and sent > 0, "c the data came over the peer wire from libtorrent",
                    "it uploaded %s payload bytes (the sample is %d bytes)" % (sent, sum(map(len, files.values()))))
        stop_checked(r, gw, "c webseed gateway stops")
        gw = None
    finally:
        if gw is not None:
            gw.stop(timeout=5)
        lt.stop(timeout=5)


# --- d: corruption ----------------------------------------------------------------------

BIG = 2 * 1024 * 1024 + 12345     # ~2 MB, not a multiple of any piece length
# big2.bin, corrupted while it streams, is bigger than the most a socket's send buffer can
# hold (net.ipv4.tcp_wmem: 4 MiB): a gateway reading it as it sends cannot have read its end yet
BIG_STREAM = 12 * 1024 * 1024 + 4321


def write_corruption_site(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "media"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!DOCTYPE html><title>corruption</title><p>three big files</p>\n")
    originals = {}
    for i in (1, 2, 3):
        data = random.Random(1000 + i).randbytes(BIG_STREAM if i == 2 else BIG)
        rel = "media/big%d.bin" % i
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        originals[rel] = data
    return originals


def flip_byte(path, offset, keep_mtime=False):
    """Overwrites one byte in place (size kept); returns (old, new) byte values."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)[0]
        new = old ^ 0xFF
        f.seek(offset)
        f.write(bytes([new]))
        f.flush()
        os.fsync(f.fileno())
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return old, new


def first_difference(got, want):
    """Offset of the first byte where got differs from want (compared over got's length;
    got longer than want counts as a difference at len(want)), or None."""
    n = min(len(got), len(want))
    for k in range(0, n, 65536):
        e = min(k + 65536, n)
        if got[k:e] != want[k:e]:
            return next(i for i in range(k, e) if got[i] != want[i])
    return None if len(got) <= len(want) else len(want)


def byte_at(data, i):
    return "0x%02x" % data[i] if i < len(data) else "past the end"


def judge(r, label, rel, original, offset, status, headers, body, cut, what_req="GET"):
    """Two checks on one response to a request for a corrupted file: no wrong byte arrived,
    and the response was refused (5xx naming the file) or cut off short of Content-Length."""
    if status in (200, 206):
        start = 0
        if status == 206:
            m = re.match(r"bytes (\d+)-(\d+)/(\d+)", headers.get("content-range", ""))
            start = int(m.group(1)) if m else 0
        want = original[start:]
        diff = first_difference(body, want)
        if diff is None:
            r.ok("%s no corrupted byte sent" % label, "%s -> %d%s: %d bytes received, all original" % (
                what_req, status, (" " + headers.get("content-range", "")) if status == 206 else "", len(body)))
        else:
            r.fail("%s no corrupted byte sent" % label, "%s -> %d: %d bytes received; byte %d of the file is "
                   "%s, the original is %s%s" % (
                       what_req, status, len(body), start + diff, byte_at(body, diff), byte_at(want, diff),
                       " (the corrupted byte)" if start + diff == offset else ""))
    else:
        r.ok("%s no corrupted byte sent" % label, "%s -> %s: no file bytes" % (what_req, status))
    what = "%s refused: 5xx naming the file, or cut off short of Content-Length" % label
    length = headers.get("content-length")
    if status is not None and 500 <= status <= 599:
        text = body.decode(errors="replace")
        name = os.path.basename(rel)
        r.check(name in text, what, "status %d, body %r" % (status, text.strip()[:160]))
    elif status in (200, 206):
        short = cut or (length is not None and length.isdigit() and len(body) < int(length))
        r.check(short, what, "status %d, Content-Length %s, %d bytes received, then the connection %s" % (
            status, length, len(body), "closed (cut off)" if short else
            "completed: every byte was sent although byte %d had changed on disk" % offset))
    else:
        r.fail(what, "status %s, body %r" % (status, body[:160]))


def case_d(r, args, logdir):
    site = os.path.join(args.work, "content", "corrupt-site")
    originals = write_corruption_site(site)
    seed, info = start_webseed_seed(r, args, "d", site, os.path.join(args.work, "state", "seed-d"), logdir)
    try:
        if info is None:
            return
        port = info["gateway_port"]
        host = "%s.localhost:%d" % (info["site"]["site_id"], port)
        st, _, body, _ = http_get(port, host, "/")
        r.check(st == 200 and b"three big files" in body, "d gateway serves the generated site's index.html",
                "status %s, %d bytes" % (st, len(body)))

        # d1: corrupted before the request
        rel = "media/big1.bin"
        off = BIG // 2
        old, new = flip_byte(os.path.join(site, rel), off)
        Results.info("d1 corrupted", "%s byte %d: 0x%02x -> 0x%02x (size kept, mtime changed)" % (rel, off, old, new))
        st, hdrs, body, cut = http_get(port, host, url_path(rel))
        judge(r, "d1 corrupted, then requested:", rel, originals[rel], off, st, hdrs, body, cut)
        st, hdrs, body, cut = http_get(port, host, url_path(rel))
        judge(r, "d1 the same request again:", rel, originals[rel], off, st, hdrs, body, cut)

        # d2: a Range request around the corrupted byte of the same file
        a, b = off - 50, off + 49
        st, hdrs, body, cut = http_get(port, host, url_path(rel), headers={"Range": "bytes=%d-%d" % (a, b)})
        judge(r, "d2 Range bytes=%d-%d over the corrupted byte:" % (a, b), rel, originals[rel], off,
              st, hdrs, body, cut, what_req="GET Range: bytes=%d-%d" % (a, b))

        # d3: size and mtime kept: only the hashes can tell
        rel3 = "media/big3.bin"
        off3 = BIG // 2 + 777
        old, new = flip_byte(os.path.join(site, rel3), off3, keep_mtime=True)
        Results.info("d3 corrupted", "%s byte %d: 0x%02x -> 0x%02x (size and mtime kept)" % (rel3, off3, old, new))
        st, hdrs, body, cut = http_get(port, host, url_path(rel3))
        judge(r, "d3 corrupted (mtime kept), then requested:", rel3, originals[rel3], off3, st, hdrs, body, cut)

        # d4: corrupted while the response is streaming
        rel2 = "media/big2.bin"
        off2 = BIG_STREAM - 64 * KIB
        resp = RawResponse(port, host, url_path(rel2), rcvbuf=16 * KIB)
        try:
            head = resp.read_head()
            if not r.check(head and resp.status == 200, "d4 streaming GET %s starts with 200" % rel2,
                           "status %s, Content-Length %s" % (resp.status, resp.length) if head else
                           "no response head (%s)" % (resp.error or "connection closed")):
                return
            resp.read_body(64 * KIB)
            got_before = len(resp.body)
            old, new = flip_byte(os.path.join(site, rel2), off2)
            Results.info("d4 corrupted mid-response", "%s byte %d: 0x%02x -> 0x%02x after %d body bytes had "
                         "been read (client receive buffer 16 KiB)" % (rel2, off2, old, new, got_before))
            resp.read_body()
        finally:
            resp.close()
        body = resp.body
        cut = resp.length is not None and len(body) < resp.length
        diff = first_difference(body, originals[rel2])
        r.check(diff is None, "d4 corrupted mid-response: no corrupted byte sent",
                "%d of %d bytes received, all original" % (len(body), resp.length or -1) if diff is None else
                "byte %d: got %s, original %s" % (diff, byte_at(body, diff), byte_at(originals[rel2], diff)))
        if cut:
            outcome = "cut off after %d of %s bytes (%s), as the contract says" % (
                len(body), resp.length, resp.error or "connection closed")
        else:
            outcome = ("all %s bytes arrived, identical to the original: the gateway had read and "
                       "verified the end of the file before the byte changed" % resp.length)
        Results.info("d4 what happened", outcome)

        changed = [e.get("path") for _, e in seed.event_times(lambda e: e.get("event") == "file_changed")]
        Results.info("d seeder file_changed events", ", ".join(map(str, changed)) or "none")
        st, _, body, _ = http_get(port, host, "/")
        r.check(st == 200 and b"three big files" in body, "d after the corruption the gateway still serves index.html",
                "status %s, %d bytes" % (st, len(body)), more=[] if st == 200 else seed.log_tail(10))
    finally:
        stop_checked(r, seed, "d webseed seed (with its gateway) stops")


# ---------------------------------------------------------------------------------------

def chromium_version(path):
    try:
        p = subprocess.run([path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
        return p.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unknown (%s)" % e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", default=os.path.join(ROOT, ".build", "debug", "webseed"))
    ap.add_argument("--sample", default=os.path.join(ROOT, "Samples", "site"))
    ap.add_argument("--work", default="/tmp/webseed-gwbrowser")
    ap.add_argument("--artifacts", default=os.path.join(ROOT, "artifacts", "test"))
    ap.add_argument("--chromium", default=CHROMIUM)
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    os.umask(0o022)
    cases = chosen_cases(ap, args, ALL_CASES)
    args.webseed = os.path.abspath(args.webseed)
    args.sample = os.path.abspath(args.sample)
    args.work = os.path.abspath(args.work)
    args.artifacts = os.path.abspath(args.artifacts)
    if not os.access(args.webseed, os.X_OK):
        ap.error("no webseed binary at %s (give --webseed BIN)" % args.webseed)
    fresh_dirs(args.work, ("logs", "state", "chromium", "content"), make=("logs",))
    logdir = os.path.join(args.work, "logs")
    os.makedirs(args.artifacts, exist_ok=True)

    r = Results()
    version = chromium_version(args.chromium)
    print("# %s; webseed %s; cases %s; work %s" % (version, args.webseed, ",".join(cases), args.work), flush=True)
    if not os.access(args.chromium, os.X_OK) or not version.startswith("Chromium"):
        r.fail("Chromium present", "%s: %s (Tools/setup installs Debian's chromium)" % (args.chromium, version))
        print(r.summary())
        return 1

    files = site_files(args.sample)
    with open(os.path.join(args.sample, "assets.json")) as f:
        links = len(json.load(f)["files"])
    t0 = time.time()
    try:
        if "a" in cases or "b" in cases:
            cases_webseed(r, args, cases, files, links, logdir)
        if "c" in cases:
            case_c(r, args, files, links, logdir)
        if BrowserRun.NETLOGS:
            check_netlogs(r)
        if "d" in cases:
            case_d(r, args, logdir)
    finally:
        Proc.kill_all()
    Results.info("total time", "%.1fs; logs in %s, screenshots in %s" % (time.time() - t0, logdir, args.artifacts))
    print(r.summary())
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
