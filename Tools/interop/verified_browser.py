#!/usr/bin/python3
"""Verified mode in a real browser: headless Chromium, driven over the DevTools protocol,
loads sites from `webseed seed --verify-in-browser` through a service worker that checks
every byte against the site id in the address.

Setup: a copy of Samples/site plus big/ten.bin (10 MiB of deterministic bytes), seeded by
  webseed seed SITE --listen 127.0.0.1:0 --gateway 127.0.0.1:0 --offline --verify-in-browser
      --state-dir S --json
and a proxy of this harness on 127.0.0.1 between Chromium and the gateway, which passes
everything on unchanged or flips one byte of the responses a case names. Chromium loads
http://<site-id>.localhost:PROXYPORT/ (such names resolve to loopback by themselves; every
other request dies at the dead proxy 127.0.0.1:9). Each case has a fresh profile.

Cases:
  a  the sample site: the bootstrap installs the worker, which serves the page (marker and
     "loaded" body of js/app.js, the stylesheet's background, the photo decoded); the
     worker's /.webseed/status shows no refusal and the page's files verified; every file
     of the site fetched through the worker is byte-identical to the source (SHA-256); a
     Range request answers 206 with the right bytes; a site's own service worker
     registration is refused and the verifying worker stays in charge.
  b  10 MiB file streamed: fetched through the worker in several chunks, its SHA-256 the
     source's, and the worker counted every byte verified.
  c  a byte of index.html flipped on the way: the navigation shows the refusal page naming
     index.html, the sample's marker never appears.
  d  a byte of css/site.css flipped: the page loads, the stylesheet is not applied (the
     refused request failed), the worker lists css/site.css as refused.
  e  a byte of the info dict flipped: the refusal page names the info dict.
  f  a byte of big/ten.bin's piece layer flipped: fetching the file fails, the worker names
     it and the layer as refused, the rest of the site loads.
  g  offline: after a first visit of /, Chromium is closed, the proxy stopped (no source
     left) and the profile's HTTP caches deleted; a new Chromium on the same profile loads
     / in full from the worker's Cache Storage, and a page never visited
     (/docs/guide/intro/) says it is not available offline.
  i  a source sending one byte more than a file holds (css/site.css) or one byte less
     (js/app.js), Content-Length to match: both refused, the page rendered without them.
  j  web seeds: nginx (Debian's, a private config on loopback, CORS header on) serves the
     site's folder; a torrent of the site made with --web-seed pointing at it is seeded by a
     second `webseed seed TORRENT --data SITE --verify-in-browser`. After a first visit
     through a proxy, the proxy stops; pages never visited load from nginx, verified (its
     access log shows the requests; the worker counts them under the web seed).
  h  several sources: the seeder lists two more (--verify-source), both proxies of this
     harness (answering 502 in the other cases, so there the gateway is the one source): first one that flips a byte of every file, then one in front of a second
     gateway (webseed gateway MAGNET --peer SEEDER --verify-in-browser). After a first visit
     the first gateway's proxy stops; a page never visited then loads from the second
     gateway, the tampering source is named as refused and is not asked for the next file.

Usage:
  PYTHONPATH=Tools /usr/bin/python3 Tools/interop/verified_browser.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-verified [--artifacts artifacts/test] [--only a,c]

Loopback only; every wait is bounded; Chromium's process group is killed after each case.
One ok/FAIL line per check, last line "N passed, M failed"; exit status 1 if any failed.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.parse

from webseedtest.cases import add_only, chosen_cases
from webseedtest.chromium import Browser, CDPError
from webseedtest.httpproxy import RewritingProxy
from webseedtest.httpbench import ensure_tools, wait_port
from webseedtest.procs import Proc
from webseedtest.results import Results

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_CASES = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
EVENT_TIMEOUT = 60     # seconds for the seeder to announce itself
BG = "rgb(15, 23, 42)"  # css/site.css: html { background: #0f172a }
MARKER = "webseed-sample-ok"
TEN_MIB = 10 << 20


def ten_mib():
    """10 MiB: SHA256("ten:0") ‖ SHA256("ten:1") ‖ …"""
    out = bytearray()
    i = 0
    while len(out) < TEN_MIB:
        out += hashlib.sha256(b"ten:%d" % i).digest()
        i += 1
    return bytes(out[:TEN_MIB])


def site_files(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(filenames):
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root).replace(os.sep, "/")] = f.read()
    return out


# ---------------------------------------------------------------------------------------
# The proxy between Chromium and the gateway
# ---------------------------------------------------------------------------------------

class TamperingProxy(RewritingProxy):
    """Forwards every request to the gateway on `upstream_port`; `tamper(path)` says what to
    do to a 200/206 answer's body: nothing (None, False), flip its middle byte (True), add a
    byte ("grow") or drop its last ("cut"). Records the paths it changed in `flipped`."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.tamper = lambda path: False
        self.flipped = []
        super().__init__(lambda host: self.upstream_port)
        self.rewrite = self._rewrite

    def _rewrite(self, path, status, body):
        how = self.tamper(path) if body and status in (200, 206) else None
        if not how:
            return None
        b = bytearray(body)
        if how == "grow":
            b += b"x"
        elif how == "cut":
            del b[-1]
        else:
            b[len(b) // 2] ^= 0x01
        self.flipped.append(path)
        return bytes(b)


# The sample page in full: the worker in charge, js/app.js ran and listed every file of
# assets.json (its fetch() answered), the marker's text.
LOADED = ("navigator.serviceWorker.controller && document.readyState === 'complete' && document.body"
          " && document.body.dataset.webseed === 'loaded' && document.querySelectorAll('#file-list li a').length === %d"
          " && document.getElementById('webseed-marker') && document.getElementById('webseed-marker').textContent")
REFUSED = ("document.getElementById('webseed-refusal') && {file: document.getElementById('webseed-refusal').dataset.file,"
           " reason: document.getElementById('webseed-refusal').dataset.reason, marker: !!document.getElementById('webseed-marker')}")
UNAVAILABLE = ("document.getElementById('webseed-unavailable') && {file: document.getElementById('webseed-unavailable').dataset.file,"
               " reason: document.getElementById('webseed-unavailable').dataset.reason}")
STATUS = "fetch('/.webseed/status').then((r) => r.json())"
# What the sample page loads (its favicon too, which the browser asks for when it likes).
PAGE_FILES = ["index.html", "css/site.css", "js/app.js", "images/logo.svg", "images/photo.png", "assets.json", "favicon.svg"]
PAGE_VERIFIED = STATUS + ".then((s) => %s.every((f) => s.verified[f] > 0) && s)" % json.dumps(PAGE_FILES)
SHA256_OF = ("(async (path, init) => { const r = await fetch(path, init || {}); const buf = await r.arrayBuffer();"
             " const h = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));"
             " return {status: r.status, length: buf.byteLength, type: r.headers.get('Content-Type'),"
             " sha256: [...h].map((b) => b.toString(16).padStart(2, '0')).join('')}; })")
RANGE_OF_TEN = SHA256_OF + "('/big/ten.bin', {headers: {Range: 'bytes=5000000-7000000'}})"
FAILS = "(async (path) => { try { await (await fetch(path)).arrayBuffer(); return 'loaded'; } catch (e) { return 'failed: ' + e.message; } })"


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

class Harness:
    def __init__(self, args, r):
        self.args = args
        self.r = r
        self.logdir = os.path.join(args.work, "logs")

    def browser(self, case, profile=None):
        profile = profile or os.path.join(self.args.work, "profile-" + case)
        b = Browser(profile, self.logdir, case)
        b.open_page()
        return b

    def site_url(self, path="/"):
        return "http://%s.localhost:%d%s" % (self.site_id, self.proxy.port, path)

    def loaded(self, b, what):
        """Waits for the sample page served by the worker; True if it came."""
        b.navigate(self.site_url())
        got = b.wait_for(LOADED % self.links)
        return self.r.check(got == MARKER, what, "marker %r" % got)

    def case_a(self):
        b = self.browser("a")
        try:
            if not self.loaded(b, "a: the sample site loads through the verifying worker (bootstrap, worker, marker, app.js ran and listed assets.json)"):
                return
            b.screenshot(os.path.join(self.args.artifacts, "verified-a.png"))
            script = b.evaluate("navigator.serviceWorker.controller.scriptURL")
            self.r.check(script.endswith("/.webseed/sw.js"), "a: the page is controlled by /.webseed/sw.js", script)
            bg = b.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            self.r.check(bg == BG, "a: the stylesheet is applied", bg)
            photo = b.wait_for("(() => { const i = document.querySelector('img[src*=\"photo\"]'); return i && i.complete && i.naturalWidth; })()", 20)
            self.r.check(bool(photo), "a: the photo is decoded", "naturalWidth %r" % photo)
            status = b.wait_for(PAGE_VERIFIED, 20) or b.evaluate(STATUS)
            missing = [f for f in PAGE_FILES if f not in status["verified"]]
            self.r.check(not status["refused"] and not missing, "a: the worker verified the page's files and refused nothing",
                         "verified %s; refused %s; missing %s" % (sorted(status["verified"]), status["refused"], missing))
            wrong = []
            for rel, data in sorted(self.files.items()):
                got = b.evaluate("%s(%s)" % (SHA256_OF, json.dumps("/" + urllib.parse.quote(rel))), timeout=60)
                if got["status"] != 200 or got["sha256"] != hashlib.sha256(data).hexdigest():
                    wrong.append("%s: %s" % (rel, got))
            self.r.check(not wrong, "a: every file of the site (%d) fetched through the worker is the source's" % len(self.files),
                         "; ".join(wrong[:5]))
            src = self.files["images/photo.png"][1000:1100]
            got = b.evaluate("%s('/images/photo.png', {headers: {Range: 'bytes=1000-1099'}})" % SHA256_OF)
            self.r.check(got["status"] == 206 and got["sha256"] == hashlib.sha256(src).hexdigest(), "a: a Range request answers 206 with the right bytes", str(got))
            nf = b.evaluate("fetch('/no/such/page').then(async (r) => ({status: r.status, text: await r.text()}))")
            self.r.check(nf["status"] == 404 and nf["text"].encode() == self.files["404.html"], "a: a missing path is the site's 404.html, 404", str(nf["status"]))
            moved = b.evaluate("fetch('/docs/guide', {redirect: 'manual'}).then((r) => r.type + ' ' + r.status)")
            followed = b.evaluate("fetch('/docs/guide').then((r) => r.url)")
            self.r.check(followed == self.site_url("/docs/guide/"), "a: a folder without its / moves to it", "%s → %s" % (moved, followed))
            own = b.evaluate("navigator.serviceWorker.register('/js/app.js', {scope: '/'}).then(() => 'registered', (e) => 'refused: ' + e.message)")
            still = b.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => (r.active || r.waiting || r.installing).scriptURL)")
            self.r.check(own.startswith("refused") and still.endswith("/.webseed/sw.js"),
                         "a: the site's own service worker is refused; the verifying worker stays", "%s; %s" % (own, still))
        finally:
            b.close()

    def case_b(self):
        b = self.browser("b")
        try:
            if not self.loaded(b, "b: the site loads through the worker"):
                return
            got = b.evaluate(RANGE_OF_TEN, timeout=60)
            self.r.check(got["status"] == 206 and got["sha256"] == self.ten_range,
                         "b: a Range request across pieces of the 10 MiB file answers 206 with the right bytes (streamed)", str(got))
            got = b.evaluate("""(async () => {
                const r = await fetch('/big/ten.bin'); const reader = r.body.getReader(); const parts = []; let n = 0;
                for (;;) { const s = await reader.read(); if (s.done) break; parts.push(s.value); n += s.value.length; }
                const all = new Uint8Array(n); let o = 0; for (const p of parts) { all.set(p, o); o += p.length; }
                const h = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
                return {status: r.status, chunks: parts.length, length: n, sha256: [...h].map((b) => b.toString(16).padStart(2, '0')).join('')};
            })()""", timeout=120)
            want = hashlib.sha256(self.files["big/ten.bin"]).hexdigest()
            self.r.check(got["status"] == 200 and got["length"] == TEN_MIB and got["sha256"] == want,
                         "b: a 10 MiB file through the worker is the source's", str(got))
            self.r.check(got["chunks"] > 1, "b: it arrives in several verified chunks (streamed)", "%d chunks" % got["chunks"])
            kept = b.wait_for("caches.open('webseed-verified-1').then((c) => c.match('/.webseed/file/' + %s)).then((r) => !!r)" % json.dumps(self.ten_root), 20)
            got = b.evaluate(RANGE_OF_TEN, timeout=60)
            self.r.check(kept and got["status"] == 206 and got["sha256"] == self.ten_range,
                         "b: read through once, it is kept; a Range request answers 206 from the kept copy", str(got))
            status = b.evaluate(STATUS)
            self.r.check(status["verified"].get("big/ten.bin", 0) >= TEN_MIB and not status["refused"],
                         "b: the worker verified all of it", "%s bytes verified, refused %s" % (status["verified"].get("big/ten.bin"), status["refused"]))
        finally:
            b.close()

    def refused_navigation(self, case, tamper, what, file):
        self.proxy.tamper = tamper
        self.proxy.flipped = []
        b = self.browser(case)
        try:
            b.navigate(self.site_url())
            got = b.wait_for(REFUSED)
            b.screenshot(os.path.join(self.args.artifacts, "verified-%s.png" % case))
            self.r.check(bool(self.proxy.flipped), "%s: the proxy flipped a byte of %s" % (case, what), ", ".join(sorted(set(self.proxy.flipped))))
            self.r.check(got is not None and got["file"] == file and not got["marker"],
                         "%s: the refusal page shows, naming %s, and nothing of the site is rendered" % (case, file), str(got))
        finally:
            b.close()
            self.proxy.tamper = lambda path: False

    def case_c(self):
        self.refused_navigation("c", lambda p: p == "/index.html", "index.html", "index.html")

    def case_e(self):
        self.refused_navigation("e", lambda p: p == "/.webseed/info", "the info dict", "the info dict")

    def case_d(self):
        self.proxy.tamper = lambda p: p == "/css/site.css"
        self.proxy.flipped = []
        b = self.browser("d")
        try:
            b.navigate(self.site_url())
            got = b.wait_for("document.body && document.body.dataset.webseed === 'loaded' && document.readyState === 'complete' && 'loaded'")
            self.r.check(got == "loaded" and "/css/site.css" in self.proxy.flipped, "d: with a byte of css/site.css flipped, the page still loads",
                         "flipped %s" % self.proxy.flipped)
            bg = b.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            self.r.check(bg != BG, "d: the tampered stylesheet is not applied", bg)
            fails = b.evaluate("%s('/css/site.css')" % FAILS)
            status = b.evaluate(STATUS)
            refused = [x for x in status["refused"] if x["file"] == "css/site.css"]
            self.r.check(fails.startswith("failed") and refused, "d: fetching it fails; the worker names it refused",
                         "%s; %s" % (fails, refused[:1]))
        finally:
            b.close()
            self.proxy.tamper = lambda path: False

    def case_f(self):
        # big/ten.bin's layer only, so the rest of the site loads.
        self.proxy.tamper = lambda p: p == "/.webseed/layer/" + self.ten_root
        self.proxy.flipped = []
        b = self.browser("f")
        try:
            if not self.loaded(b, "f: with piece layers tampered, the rest of the site still loads"):
                return
            fails = b.evaluate("%s('/big/ten.bin')" % FAILS, timeout=60)
            status = b.evaluate(STATUS)
            refused = [x for x in status["refused"] if x["file"] == "big/ten.bin"]
            self.r.check(bool(self.proxy.flipped), "f: the proxy flipped a byte of a piece layer", ", ".join(self.proxy.flipped))
            self.r.check(fails.startswith("failed") and refused and "piece layer" in refused[0]["reason"],
                         "f: big/ten.bin is refused for its piece layer; no byte of it reaches the page", "%s; %s" % (fails, refused[:1]))
        finally:
            b.close()
            self.proxy.tamper = lambda path: False

    def case_g(self):
        profile = os.path.join(self.args.work, "profile-g")
        b = self.browser("g", profile)
        try:
            first = self.loaded(b, "g: first visit loads") and self.r.check(
                b.wait_for(PAGE_VERIFIED, 20) is not None, "g: the worker verified (and kept) every file of the page", ", ".join(PAGE_FILES))
        finally:
            b.close()
        if not first:
            return
        self.proxy.stop()
        self.proxy_stopped = True
        for d in ("Cache", "Code Cache"):
            shutil.rmtree(os.path.join(profile, "Default", d), ignore_errors=True)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse()
            reachable = True
        except OSError:
            reachable = False
        self.r.check(not reachable, "g: the proxy (the only source) is stopped and the HTTP caches deleted")
        b = self.browser("g2", profile)
        try:
            self.loaded(b, "g: with every source gone, the site visited before loads in full (marker, app.js ran)")
            bg = b.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            self.r.check(bg == BG, "g: its stylesheet is applied offline", bg)
            status = b.wait_for(PAGE_VERIFIED, 20) or b.evaluate(STATUS)
            self.r.check(status["fromCache"] > 0 and status["fromNetwork"] == 0 and not status["refused"] and not status["unavailable"],
                         "g: every byte came from the worker's Cache Storage, verified again", json.dumps(status)[:300])
            b.navigate(self.site_url("/docs/guide/intro/"))
            got = b.wait_for(UNAVAILABLE)
            self.r.check(got is not None and got["file"] == "docs/guide/intro/index.html",
                         "g: a page never visited says it is not available offline", str(got))
        finally:
            b.close()

    def case_i(self):
        self.proxy.tamper = lambda p: {"/css/site.css": "grow", "/js/app.js": "cut"}.get(p)
        b = self.browser("i")
        try:
            b.navigate(self.site_url())
            # (the marker is js/app.js's doing: it must not appear)
            got = b.wait_for("navigator.serviceWorker.controller && document.readyState === 'complete'"
                             " && !document.getElementById('webseed-bootstrap') && document.querySelector('h1') && document.querySelector('h1').textContent")
            status = b.wait_for(STATUS + ".then((s) => s.refused.length >= 2 && s)", 20) or b.evaluate(STATUS)
            reasons = {x["file"]: x["reason"] for x in status["refused"]}
            self.r.check(got == "webseed sample" and sorted(set(self.proxy.flipped)) == ["/css/site.css", "/js/app.js"],
                         "i: the page renders with a stylesheet one byte long and a script one byte short on the way",
                         "heading %r; changed %s" % (got, self.proxy.flipped))
            ran = b.evaluate("(document.body.dataset.webseed || 'no') + (document.getElementById('webseed-marker') ? ' marker' : '')")
            bg = b.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            self.r.check("more bytes" in reasons.get("css/site.css", "") and "bytes where" in reasons.get("js/app.js", "")
                         and ran == "no" and bg != BG, "i: both are refused for their length; neither the script ran nor the stylesheet applied",
                         "%s; script ran: %s; background %s; status %s" % (reasons, ran, bg, json.dumps(status)[:600]))
        finally:
            b.close()
            self.proxy.tamper = lambda path: False

    def case_j(self):
        args = self.args
        try:
            binary = ensure_tools(["nginx"])["nginx"]  # Debian's nginx, installed without starting it
        except (RuntimeError, subprocess.CalledProcessError) as e:
            self.r.fail("j: nginx is installed", str(e))
            return
        nginx, port = start_nginx(binary, args.work, os.path.join(args.work, "nginx"), self.logdir)
        if not self.r.check(nginx is not None, "j: nginx serves the site's folder on loopback"):
            return
        seed2 = None
        try:
            torrent = os.path.join(args.work, "webseeded.torrent")
            site = os.path.join(args.work, "site")
            made = subprocess.run([args.webseed, "create", site, "--web-seed", "http://127.0.0.1:%d/" % port, "-o", torrent],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if not self.r.check(made.returncode == 0, "j: webseed create --web-seed http://127.0.0.1:%d/" % port,
                                more=made.stdout.decode(errors="replace").splitlines()[-8:]):
                return
            seed2 = Proc("seed2", [args.webseed, "seed", torrent, "--data", site, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0",
                                   "--offline", "--verify-in-browser", "--state-dir", os.path.join(args.work, "state-j"), "--json"], self.logdir)
            gw = seed2.wait_for("gateway", EVENT_TIMEOUT)
            ready = seed2.wait_for("ready", EVENT_TIMEOUT)
            if not self.r.check(gw is not None and ready is not None, "j: the torrent with a web seed is seeded", more=seed2.log_tail(8)):
                return
            self.proxy.upstream_port = gw["port"]
            b = self.browser("j")
            try:
                if not self.loaded(b, "j: the site loads through the worker"):
                    return
                b.wait_for(PAGE_VERIFIED, 20)
                self.proxy.stop()
                self.proxy_stopped = True
                seed = "http://127.0.0.1:%d/" % port
                for rel in ("docs/guide/intro/index.html", "downloads/data.csv"):
                    got = b.evaluate("%s(%s)" % (SHA256_OF, json.dumps("/" + urllib.parse.quote(rel))), timeout=60)
                    self.r.check(got["status"] == 200 and got["sha256"] == hashlib.sha256(self.files[rel]).hexdigest(),
                                 "j: with the gateway gone, %s (never visited) loads from the web seed, verified" % rel, str(got))
                status = b.evaluate(STATUS)
                with open(os.path.join(args.work, "nginx", "access.log")) as f:
                    log = f.read()
                self.r.check(status["bySource"].get(seed) == 2 and "GET /site/docs/guide/intro/index.html" in log and "GET /site/downloads/data.csv" in log,
                             "j: nginx served them (its access log), the worker counted them under the web seed", json.dumps(status["bySource"]))
            finally:
                b.close()
        finally:
            if seed2:
                seed2.stop()
            nginx.stop()

    def case_h(self):
        """Several sources (see the module's text); self.fallback and self.liar are the proxies the
        seeder lists, in front of the second gateway and of the first one."""
        r = self.r
        self.liar.tamper = lambda p: not p.startswith("/.webseed/")
        self.liar.serving = self.fallback.serving = True
        b = self.browser("h")
        try:
            if not self.loaded(b, "h: the site loads from the first gateway"):
                return
            b.wait_for(PAGE_VERIFIED, 20)
            self.proxy.stop()
            self.proxy_stopped = True
            intro = self.files["docs/guide/intro/index.html"]
            got = b.evaluate("%s('/docs/guide/intro/')" % SHA256_OF, timeout=120)
            r.check(got["status"] == 200 and got["sha256"] == hashlib.sha256(intro).hexdigest(),
                    "h: with the first gateway dead, a page never visited loads from the second", str(got))
            status = b.evaluate(STATUS)
            liar, fallback = "http://%s.localhost:%d" % (self.site_id, self.liar.port), "http://%s.localhost:%d" % (self.site_id, self.fallback.port)
            r.check(any(x["source"] == liar for x in status["badSources"]) and status["bySource"].get(fallback, 0) > 0 and not status["refused"],
                    "h: the source that sent a wrong byte is named; the second gateway's bytes verified",
                    "bad %s; by source %s" % (status["badSources"], status["bySource"]))
            before = len(self.liar.asked)
            data = self.files["downloads/data.csv"]
            got = b.evaluate("%s('/downloads/data.csv')" % SHA256_OF, timeout=120)
            after = b.evaluate(STATUS)["bySource"].get(fallback, 0)
            r.check(got["status"] == 200 and got["sha256"] == hashlib.sha256(data).hexdigest() and len(self.liar.asked) == before
                    and after == status["bySource"].get(fallback, 0) + 1,
                    "h: the next file comes from the second gateway; the lying source is not asked again",
                    "%s; the liar was asked %s" % (got, self.liar.asked[before:]))
        finally:
            b.close()
            self.liar.tamper = lambda path: False
            self.liar.serving = self.fallback.serving = False


NGINX_CONF = """\
%(user)s
worker_processes 1;
daemon off;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events { worker_connections 256; }
http {
    types { text/html html; text/css css; text/javascript js; text/plain txt; text/csv csv; }
    default_type application/octet-stream;
    access_log %(prefix)s/access.log;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
        add_header Access-Control-Allow-Origin * always;
    }
}
"""


def start_nginx(binary, root, prefix, logdir):
    """Debian's nginx in the foreground on a free loopback port serving `root`; (proc, port)."""
    os.makedirs(prefix, exist_ok=True)
    for _ in range(5):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"user": "user root;" if os.geteuid() == 0 else "", "prefix": prefix, "port": port, "root": root})
        proc = Proc("nginx", [binary, "-p", prefix, "-c", conf, "-e", os.path.join(prefix, "error.log")], logdir)
        if wait_port(port, 10, proc.p):
            return proc, port
        proc.kill()  # the port was taken in between: another
    return None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--artifacts", default=None)
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    cases = chosen_cases(ap, args, ALL_CASES)
    args.webseed = os.path.abspath(args.webseed)
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    args.artifacts = os.path.abspath(args.artifacts or os.path.join(args.work, "artifacts"))
    os.makedirs(args.artifacts, exist_ok=True)
    r = Results()
    h = Harness(args, r)

    site = os.path.join(args.work, "site")
    shutil.copytree(args.sample, site)
    os.makedirs(os.path.join(site, "big"))
    with open(os.path.join(site, "big", "ten.bin"), "wb") as f:
        f.write(ten_mib())
    h.files = site_files(site)
    h.links = len(json.loads(h.files["assets.json"])["files"])
    h.ten_range = hashlib.sha256(h.files["big/ten.bin"][5000000:7000001]).hexdigest()

    # The sources the seeder's worker falls back on (h): proxies whose upstreams are set once
    # the gateways behind them run.
    h.liar = TamperingProxy(0)
    h.fallback = TamperingProxy(0)
    h.liar.serving = h.fallback.serving = False  # sources off but in case h
    seed = Proc("seed", [args.webseed, "seed", site, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--offline",
                         "--verify-in-browser", "--state-dir", os.path.join(args.work, "state"), "--json",
                         "--verify-source", "http://{site}.localhost:%d" % h.liar.port,
                         "--verify-source", "http://{site}.localhost:%d" % h.fallback.port], h.logdir)
    try:
        site_ev = seed.wait_for("site", EVENT_TIMEOUT)
        gw = seed.wait_for("gateway", EVENT_TIMEOUT)
        ready = seed.wait_for("ready", EVENT_TIMEOUT)
        if not r.check(site_ev and gw and ready, "webseed seed --verify-in-browser: site, gateway and ready events",
                       more=seed.log_tail(12)):
            print(r.summary())
            return 1
        h.site_id = site_ev["site_id"]
        h.liar.upstream_port = gw["port"]
        conn = http.client.HTTPConnection("127.0.0.1", gw["port"], timeout=30)
        conn.request("HEAD", "/big/ten.bin", headers={"Host": "%s.localhost" % h.site_id})
        h.ten_root = conn.getresponse().getheader("ETag", "").strip('"')  # its pieces root
        conn.close()
        if "h" in cases:
            listening = seed.wait_for("listening", EVENT_TIMEOUT)
            second = Proc("gateway2", [args.webseed, "gateway", site_ev["magnet"], "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
                                       "--peer", "127.0.0.1:%d" % listening["port"], "--offline", "--verify-in-browser",
                                       "--state-dir", os.path.join(args.work, "state2"), "--json"], h.logdir)
            gw2 = second.wait_for("gateway", EVENT_TIMEOUT)
            if r.check(gw2 is not None, "h: a second gateway (webseed gateway MAGNET --peer SEEDER --verify-in-browser) runs", more=second.log_tail(8)):
                h.fallback.upstream_port = gw2["port"]
            else:
                cases = [c for c in cases if c != "h"]
        for case in cases:
            h.proxy = TamperingProxy(gw["port"])
            h.proxy_stopped = False
            try:
                getattr(h, "case_" + case)()
            except (CDPError, OSError, KeyError, TypeError) as e:
                r.fail("%s: the case ran to its end" % case, "%s: %s" % (type(e).__name__, e))
            finally:
                if not h.proxy_stopped:
                    h.proxy.stop()
        h.liar.stop()
        h.fallback.stop()
        seed.stop()
    finally:
        Proc.kill_all()
    print(r.summary())
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
