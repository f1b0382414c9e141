"""Headless Chromium (Debian's `chromium`) driven over its DevTools protocol with no extra
packages: --remote-debugging-pipe, commands on fd 3, answers and events on fd 4, each message
JSON ending in NUL. One fresh profile and HOME per Browser; nothing leaves loopback (a dead
proxy for every other host, names resolved only for localhost). Used by the verified-mode
tests (Tools/interop/verified_browser.py, verified_names.py) and Tools/bench/verified."""

import base64
import json
import os
import signal
import subprocess
import threading
import time

# Debian's /usr/bin/chromium is a shell wrapper that sources /etc/chromium.d; the binary itself.
CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking",
    "--proxy-server=127.0.0.1:9",           # a dead proxy: anything not on loopback fails there
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1",
    "--dns-prefetch-disable", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--safebrowsing-disable-auto-update", "--no-pings", "--disable-breakpad", "--disable-crash-reporter",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
    "--password-store=basic", "--use-mock-keychain", "--disable-gpu", "--disable-dev-shm-usage",
    "--mute-audio", "--hide-scrollbars", "--window-size=1280,1800",
]

# ---------------------------------------------------------------------------------------
# Chromium over the DevTools protocol (--remote-debugging-pipe: commands on fd 3, answers
# and events on fd 4, each message JSON ending in NUL)
# ---------------------------------------------------------------------------------------

class CDPError(Exception):
    pass


class Browser:
    def __init__(self, profile, logdir, name):
        os.makedirs(logdir, exist_ok=True)
        home = os.path.join(os.path.dirname(profile), "home-" + name)
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "TZ": "UTC",
               "XDG_CONFIG_HOME": os.path.join(home, ".config"), "XDG_CACHE_HOME": os.path.join(home, ".cache")}
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def wire():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.err = open(os.path.join(logdir, "chromium-%s.stderr" % name), "wb")
        self.p = subprocess.Popen([CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"],
                                  stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err, env=env,
                                  close_fds=False, preexec_fn=wire, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.next_id = 0
        self.answers = {}
        self.cond = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.session = None

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                if "id" in m:
                    with self.cond:
                        self.answers[m["id"]] = m
                        self.cond.notify_all()

    def send(self, method, params=None, timeout=30, session=True):
        with self.cond:
            self.next_id += 1
            i = self.next_id
        msg = {"id": i, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self.cond:
            while i not in self.answers:
                left = deadline - time.time()
                if left <= 0 or self.closed:
                    raise CDPError("%s: no answer within %ds" % (method, timeout))
                self.cond.wait(left)
            m = self.answers.pop(i)
        if "error" in m:
            raise CDPError("%s: %s" % (method, m["error"].get("message")))
        return m.get("result", {})

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression, timeout=30):
        """The value of an expression in the page (promises awaited)."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CDPError("page: %s" % r["exceptionDetails"].get("exception", {}).get("description", r["exceptionDetails"].get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, condition, timeout=60):
        """The first truthy value of a JS expression, checked in the page as it changes, within
        timeout seconds; None if it never held. (Navigations replace the page's context: an
        evaluation cut off by one is tried again in the next.)"""
        waiter = ("new Promise((resolve) => { const t0 = Date.now(); (async function tick() { let v = null;"
                  " try { v = await (%s); } catch (e) { v = null; }"
                  " if (v || Date.now() - t0 > 2000) resolve(v || null); else setTimeout(tick, 25); })(); })") % condition
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                v = self.evaluate(waiter, timeout=max(1, deadline - time.time()))
            except CDPError:
                v = None
                if self.closed:
                    return None
            if v:
                return v
        return None

    def screenshot(self, path):
        try:
            data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
        except CDPError:
            pass

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=10)
        except (CDPError, OSError):
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.err.close()
