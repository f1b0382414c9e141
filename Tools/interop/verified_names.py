#!/usr/bin/python3
"""Verified mode for names in a real browser: headless Chromium (the DevTools driver of
verified_browser.py) opens a key-named site at http://<name>.localhost:PORT/ through a
service worker that checks the name's signed BEP 44 item against the key in the address
before it uses the site the item names, and never moves to a lower seq.

Setup, all on 127.0.0.1 with --offline, joined only through --dht-bootstrap:
  B  `webseed dht`: a DHT node of its own, the publishers' bootstrap.
  O  the owner: `webseed seed SITE --key K --watch --grace 120 --gateway 127.0.0.1:0
     --verify-in-browser --dht-bootstrap B`; SITE's index.html says "version N".
  F  a forger: the same with another key K2 and a site saying "forged"; its gateway gives
     an item validly signed by K2 (what someone holding another key can make).
  P  a proxy of this harness between Chromium and O's gateway: passes everything on, or
     changes the name's item (/.webseed/item) as a case says; requests for F's site id go
     to F's gateway (so a worker that took F's item would render F's site).

Cases (each with a fresh Chromium profile):
  a  the site opens verified (the worker in charge, "version 1", the worker's status names
     seq 1 and the site of O's first version, index.html verified); /.webseed/item is the
     item, no-store, readable by other origins; O publishes version 2 while the page is
     open (a file edited: name_published seq 2) and the next navigation shows "version 2",
     verified, from seq 2's site.
  b  after a visit at the current seq, a byte of the item's v2 hash changed (signature
     left): the navigation shows the refusal page naming the signed item and its
     signature; no version of the site and nothing of F's is rendered.
  c  the same with the item's seq raised by one digit (signature left): refused.
  d  after a visit at seq >= 2, the item of seq 1 (captured from O's gateway, validly
     signed) is replayed: the kept newer version is still served, and the worker's status
     lists the older item as refused.
  e  an item signed by K2 naming F's site: refused as signed for another key; the same
     item with k set to the name's key: refused by its signature. A fresh profile given
     K2's item on its first visit renders nothing of F's site either.
  f  G, `webseed gateway --verify-in-browser --dht-bootstrap B`, follows the name on the DHT
     (the item it found, kept with the version it serves): through it the site opens
     verified at the current version.
  g  offline: after a visit, the proxy drops every connection unanswered (no gateway): the
     next navigation still shows the kept version, from the worker's Cache Storage.

Usage:
  PYTHONPATH=Tools /usr/bin/python3 Tools/interop/verified_names.py --webseed .build/debug/webseed \\
      --work /tmp/webseed-vnames [--artifacts artifacts/test] [--only a,b]

Loopback only; every wait is bounded; Chromium's process group is killed after each case.
One ok/FAIL line per check, last line "N passed, M failed"; exit status 1 if any failed.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import subprocess
import sys


from webseedtest.chromium import Browser, CDPError  # noqa: E402
from webseedtest.bencode import bdecode as bdecode_at, bencode  # noqa: E402
from webseedtest.cases import add_only, chosen_cases  # noqa: E402
from webseedtest.httpproxy import RewritingProxy  # noqa: E402
from webseedtest.procs import Proc  # noqa: E402
from webseedtest.results import Results  # noqa: E402

ALL_CASES = ["a", "b", "c", "d", "e", "f", "g"]
START = 60      # seconds for a process to say it is up / a publish to happen
LOAD = 60       # seconds for a page to reach the state a case waits for
ITEM = "/.webseed/item"
ITEM_WHAT = "the name's signed item"

# The page of one version of the site, once the worker rendered it: its version text.
SHOWN = ("navigator.serviceWorker.controller && document.readyState === 'complete'"
         " && document.getElementById('version') && document.getElementById('version').textContent")
REFUSED = ("document.getElementById('webseed-refusal') && {file: document.getElementById('webseed-refusal').dataset.file,"
           " reason: document.getElementById('webseed-refusal').dataset.reason,"
           " version: !!document.getElementById('version'), body: document.body.innerText}")
STATUS = "fetch('/.webseed/status').then((r) => r.json())"


def bdecode(data):
    return bdecode_at(data)[0]


def write(path, text):
    """Writes a file by rename, as editors save."""
    tmp = path + ".tmp-save"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def make_site(path, text):
    os.makedirs(path, exist_ok=True)
    write(os.path.join(path, "index.html"),
          "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><link rel=\"stylesheet\" href=\"site.css\"><title>names</title></head>"
          "<body><h1 id=\"version\">%s</h1><p><a href=\"about.html\">about</a></p></body></html>\n" % text)
    write(os.path.join(path, "site.css"), "h1 { color: rgb(200, 0, 0) }\n")
    write(os.path.join(path, "about.html"), "<p>about this site</p>\n" * 20)


def key_new(ws, path):
    p = subprocess.run([ws, "key", "new", path, "--json"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("webseed key new failed: " + p.stderr.strip())
    return json.loads(p.stdout)


def get(port, path, host):
    """(status, headers, body) of a GET to 127.0.0.1:port with that Host."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def site_label(v2hex):
    return base64.b32encode(bytes.fromhex(v2hex)).decode().rstrip("=").lower()


class NameProxy(RewritingProxy):
    """Forwards every request to O's gateway (`upstream_port`), or to F's for F's site id
    (`routes`: host label -> port). `item(body)` may replace the body of the name's item (None: unchanged); counts
    the items it changed. `dead = True`: every connection closed unanswered."""

    def __init__(self, upstream, routes):
        self.upstream_port = upstream
        self.item = lambda body: None
        self.changed = 0
        super().__init__(lambda host: routes.get(host.split(".")[0], self.upstream_port))
        self.rewrite = self._rewrite

    def _rewrite(self, path, status, body):
        if path != ITEM or status != 200:
            return None
        replaced = self.item(body)
        if replaced is not None:
            self.changed += 1
        return replaced


def flip_v2(item):
    """The item with one byte of its value's v2 hash changed, signature left as it was."""
    at = item.index(b"2:v232:") + 7 + 16
    b = bytearray(item)
    b[at] ^= 0x01
    return bytes(b)


def raise_seq(item):
    """The item with its seq's last digit changed (2 -> 3 ...), signature left as it was."""
    start = item.index(b"3:seqi") + 6
    end = item.index(b"e", start)
    b = bytearray(item)
    b[end - 1] = ord("0") + (b[end - 1] - ord("0") + 1) % 10
    return bytes(b)


def with_key(item, key):
    """The item with k set to `key` (its signature left as it was)."""
    d = bdecode(item)
    d[b"k"] = key
    return bencode(d)


class Harness:
    def __init__(self, args, r, owner, forger):
        self.args = args
        self.r = r
        self.owner = owner        # Proc of O
        self.logdir = os.path.join(args.work, "logs")
        self.site = os.path.join(args.work, "site")
        self.forger_item = forger["item"]
        self.version = 1          # the version O publishes now

    def browser(self, case):
        b = Browser(os.path.join(self.args.work, "profile-" + case), self.logdir, case)
        b.open_page()
        return b

    def url(self, path="/"):
        return "http://%s.localhost:%d%s" % (self.name, self.proxy.port, path)

    def current_item(self):
        status, _, body = get(self.gw_port, ITEM, "%s.localhost" % self.name)
        return body if status == 200 else None

    def publish(self, n):
        """O publishes version n (index.html edited): its name_published event, or None."""
        mark = len(self.owner.events)
        write(os.path.join(self.site, "index.html"), open(os.path.join(self.site, "index.html")).read().replace(
            "version %d<" % self.version, "version %d<" % n))
        _, ev = self.owner.wait_event(lambda e: e.get("event") == "name_published" and e.get("seq") == n, START, mark)
        if ev is not None:
            self.version = n
            self.published[n] = ev
        return ev

    def shows(self, b, path, version, what):
        """Navigates to path and checks the worker rendered `version` from the seq's site."""
        b.navigate(self.url(path))
        got = b.wait_for(SHOWN)
        if not self.r.check(got == "version %d" % version, what, "shown %r; the page: %r" % (got, self.text(b))):
            return False
        status = b.evaluate(STATUS)
        ev = self.published[version]
        name = status.get("name") or {}
        return self.r.check(name.get("seq") == str(ev["seq"]) and name.get("site") == site_label(ev["v2_infohash"])
                            and status["verified"].get("index.html", 0) > 0,
                            what + ": verified by the worker (seq %d, its site, index.html checked)" % ev["seq"],
                            json.dumps({"name": name, "verified": status.get("verified"), "refused": status.get("refused")})[:400])

    def refused(self, b, path, reason_pattern, what):
        b.navigate(self.url(path))
        got = b.wait_for(REFUSED)
        ok = (got is not None and got["file"] == ITEM_WHAT and reason_pattern in got["reason"] and not got["version"]
              and "forged" not in got["body"])
        return self.r.check(ok, what, repr(got)[:300] if got else "the page: %r" % self.text(b))

    @staticmethod
    def text(b):
        """The page's text as rendered (for a failure's detail)."""
        try:
            return (b.evaluate("document.body ? document.body.innerText : ''") or "")[:200]
        except CDPError as e:
            return str(e)

    def case_a(self):
        b = self.browser("a")
        try:
            if not self.shows(b, "/", 1, "a: the key-named site opens in verified mode showing version 1"):
                return
            script = b.evaluate("navigator.serviceWorker.controller.scriptURL")
            self.r.check(script.endswith("/.webseed/sw.js"), "a: the page is controlled by /.webseed/sw.js", script)
            color = b.evaluate("getComputedStyle(document.getElementById('version')).color")
            self.r.check(color == "rgb(200, 0, 0)", "a: the stylesheet came through the worker", color)
            status, headers, body = get(self.gw_port, ITEM, "%s.localhost" % self.name)
            d = bdecode(body) if status == 200 else {}
            self.r.check(status == 200 and d.get(b"seq") == 1 and d.get(b"k") == self.key and headers.get("cache-control") == "no-store"
                         and headers.get("access-control-allow-origin") == "*",
                         "a: /.webseed/item is the name's signed item (seq 1, its key), no-store, readable by other origins",
                         "%s %r" % (status, headers))
            ev = self.publish(2)
            if not self.r.check(ev is not None, "a: the owner publishes version 2 while the page is open (name_published seq 2)",
                                more=self.owner.log_tail(8)):
                return
            self.shows(b, "/", 2, "a: the next navigation shows version 2")
            b.screenshot(os.path.join(self.args.artifacts, "verified-names-a.png"))
        finally:
            b.close()

    def updated(self):
        """Makes sure the name is past seq 1 (case a does it while a page is open)."""
        return self.version >= 2 or self.publish(2) is not None

    def forged(self, case, change, reason, what):
        if not self.r.check(self.updated(), "%s: the name is at seq 2 or more" % case, more=self.owner.log_tail(8)):
            return
        b = self.browser(case)
        try:
            if not self.shows(b, "/", self.version, "%s: a first visit shows version %d" % (case, self.version)):
                return
            self.proxy.item = change
            self.refused(b, "/about.html", reason, "%s: %s: the navigation shows the refusal naming the signed item" % (case, what))
            self.r.check(self.proxy.changed > 0, "%s: the proxy changed the item on the way" % case)
        finally:
            b.close()

    def case_b(self):
        self.forged("b", flip_v2, "signature does not match", "a byte of v2 changed")

    def case_c(self):
        self.forged("c", raise_seq, "signature does not match", "seq raised")

    def case_d(self):
        if not self.r.check(self.updated(), "d: the name is at seq 2 or more", more=self.owner.log_tail(8)):
            return
        b = self.browser("d")
        try:
            if not self.shows(b, "/", self.version, "d: a first visit shows version %d" % self.version):
                return
            self.proxy.item = lambda body: self.item1
            if not self.shows(b, "/?replayed", self.version, "d: with the seq 1 item replayed, the kept version %d is still served" % self.version):
                return
            refused = [x for x in b.evaluate(STATUS)["refused"] if x["file"] == ITEM_WHAT]
            self.r.check(any("older item (seq 1)" in x["reason"] for x in refused) and self.proxy.changed > 0,
                         "d: the worker lists the replayed older item as refused", repr(refused))
        finally:
            b.close()

    def case_e(self):
        self.forged("e", lambda body: self.forger_item, "signed for another key", "an item signed by another key")
        self.proxy.item = lambda body: None
        self.forged("e2", lambda body: with_key(self.forger_item, self.key), "signature does not match",
                    "another key's item with k set to the name's key")
        self.proxy.item = lambda body: self.forger_item
        b = self.browser("e3")
        try:
            b.navigate(self.url("/"))
            got = b.wait_for(REFUSED)
            self.r.check(got is not None and got["file"] == ITEM_WHAT and "another key" in got["reason"] and "forged" not in got["body"],
                         "e: a first visit given another key's item renders the refusal, nothing of its site",
                         repr(got)[:300] if got else "the page: %r" % self.text(b))
        finally:
            b.close()


    def case_g(self):
        b = self.browser("g")
        try:
            if not self.shows(b, "/", self.version, "g: a first visit shows version %d" % self.version):
                return
            self.proxy.asked = []
            self.proxy.dead = True
            self.shows(b, "/?offline", self.version, "g: with no gateway answering, the next navigation shows the kept version %d" % self.version)
            self.r.check(ITEM in self.proxy.asked, "g: the worker asked for the item and got no answer", repr(self.proxy.asked))
        finally:
            b.close()

    def case_f(self):
        G = Proc("G", [self.args.webseed, "gateway", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--offline", "--json",
                       "--verify-in-browser", "--dht-bootstrap", self.boot, "--name-refresh", "1", "--timeout", "30",
                       "--state-dir", os.path.join(self.args.work, "state-G")], self.logdir)
        try:
            ev = G.wait_for("gateway", START)
            if not self.r.check(ev is not None, "f: G, a gateway following names on the DHT, is up", more=G.log_tail(5)):
                return
            self.proxy.upstream_port = ev["port"]
            b = self.browser("f")
            try:
                self.shows(b, "/", self.version, "f: through G the key-named site opens verified at version %d" % self.version)
            finally:
                b.close()
        finally:
            G.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--artifacts", default=None)
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    cases = chosen_cases(ap, args, ALL_CASES)
    ws = args.webseed = os.path.abspath(args.webseed)
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    args.artifacts = os.path.abspath(args.artifacts or os.path.join(args.work, "artifacts"))
    os.makedirs(args.artifacts, exist_ok=True)
    logdir = os.path.join(args.work, "logs")
    r = Results()
    try:
        B = Proc("B", [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", os.path.join(args.work, "state-B")], logdir)
        ev = B.wait_for("dht", START)
        if not r.check(ev is not None, "B, the DHT's bootstrap node, is up", more=B.log_tail(5)):
            print(r.summary())
            return 1
        boot = "127.0.0.1:%d" % ev["port"]

        def seeder(name, site, key):
            return Proc(name, [ws, "seed", site, "--key", key, "--watch", "--grace", "120", "--listen", "127.0.0.1:0",
                               "--gateway", "127.0.0.1:0", "--verify-in-browser", "--offline", "--dht-bootstrap", boot,
                               "--state-dir", os.path.join(args.work, "state-" + name), "--json"], logdir)

        site = os.path.join(args.work, "site")
        make_site(site, "version 1")
        key = key_new(ws, os.path.join(args.work, "owner.key"))
        forged_site = os.path.join(args.work, "forged")
        make_site(forged_site, "forged")
        key_new(ws, os.path.join(args.work, "forger.key"))
        O = seeder("O", site, os.path.join(args.work, "owner.key"))
        F = seeder("F", forged_site, os.path.join(args.work, "forger.key"))
        gw, fgw = O.wait_for("gateway", START), F.wait_for("gateway", START)
        pub1 = O.wait_event(lambda e: e.get("event") == "name_published" and e.get("seq") == 1, START)[1]
        fpub = F.wait_event(lambda e: e.get("event") == "name_published", START)[1]
        if not r.check(gw and fgw and pub1 and fpub, "O and F seed with --verify-in-browser and publish their names (name_published seq 1)",
                       more=O.log_tail(8) + F.log_tail(8)):
            print(r.summary())
            return 1
        status, _, forger_item = get(fgw["port"], ITEM, "%s.localhost" % fpub["name"])
        h = Harness(args, r, O, {"item": forger_item, "label": site_label(fpub["v2_infohash"])})
        h.name = pub1["name"]
        h.key = bytes.fromhex(key["public_key"])
        h.gw_port = gw["port"]
        h.boot = boot
        h.published = {1: pub1}
        h.item1 = h.current_item()
        r.check(status == 200 and h.item1 is not None and bdecode(h.item1).get(b"seq") == 1,
                "the items of both names are served at /.webseed/item", "%s, %d and %d bytes" % (status, len(forger_item), len(h.item1 or b"")))
        for case in cases:
            h.proxy = NameProxy(gw["port"], {site_label(fpub["v2_infohash"]): fgw["port"]})
            try:
                getattr(h, "case_" + case)()
            except (CDPError, OSError, KeyError, TypeError, ValueError) as e:
                r.fail("%s: the case ran to its end" % case, "%s: %s" % (type(e).__name__, e))
            finally:
                h.proxy.stop()
        O.stop()
        F.stop()
        B.stop()
    finally:
        Proc.kill_all()
    print(r.summary())
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
