"""Helpers for Tools/bench/gateway: the tools it needs (wrk, nginx, chromium), a private nginx,
wrk runs read through a Lua `done` hook, and page loads timed in headless Chromium.

Everything listens on and connects to 127.0.0.1 (and *.localhost, which resolves to it) only.
"""

import atexit
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
WRK_LUA = os.path.join(HERE, "wrk_report.lua")

# tool -> (where to look, Debian package)
TOOLS = {
    "wrk": (["wrk", "/usr/bin/wrk"], "wrk"),
    "nginx": (["nginx", "/usr/sbin/nginx"], "nginx"),
    "chromium": (["/usr/lib/chromium/chromium", "chromium", "chromium-browser"], "chromium"),
}


def find_tool(name):
    for c in TOOLS[name][0]:
        p = c if os.path.isabs(c) else shutil.which(c)
        if p and os.access(p, os.X_OK):
            return p
    return None


def ensure_tools(names, log=print):
    """{tool: path} for every name, installing the missing ones with apt-get first.

    Services are not started by the install: when the machine has no /usr/sbin/policy-rc.d,
    one that denies every start (exit 101, Debian's mechanism for chroots and containers) is in
    place for the duration of apt-get, so installing nginx does not leave a daemon on port 80."""
    missing = [n for n in names if not find_tool(n)]
    if missing:
        pkgs = [TOOLS[n][1] for n in missing]
        sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if sudo is None:
            raise RuntimeError("%s missing and not root: apt-get install %s" % (", ".join(missing), " ".join(pkgs)))
        log("installing %s (apt-get install --no-install-recommends) ..." % " ".join(pkgs))
        policy = "/usr/sbin/policy-rc.d"
        made_policy = False
        if not os.path.exists(policy):
            subprocess.run(sudo + ["sh", "-c", "printf '#!/bin/sh\\nexit 101\\n' > %s && chmod 755 %s"
                                   % (policy, policy)], check=True)
            made_policy = True
        try:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            inst = sudo + ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q",
                           "--no-install-recommends"] + pkgs
            r = subprocess.run(inst, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:  # stale package lists: update once and retry
                subprocess.run(sudo + ["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-q"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                r = subprocess.run(inst, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                raise RuntimeError("apt-get install %s failed: %s" % (" ".join(pkgs), r.stderr.strip()[-400:]))
        finally:
            if made_policy:
                subprocess.run(sudo + ["rm", "-f", policy])
    out = {}
    for n in names:
        p = find_tool(n)
        if not p:
            raise RuntimeError("%s not found even after installing %s" % (n, TOOLS[n][1]))
        out[n] = p
    return out


def tool_version(name, path):
    try:
        if name == "nginx":
            r = subprocess.run([path, "-v"], capture_output=True, text=True)
            return (r.stderr or r.stdout).strip().split("/")[-1]
        if name == "wrk":
            r = subprocess.run([path, "-v"], capture_output=True, text=True)
            return (r.stdout or r.stderr).strip().split()[1].split("/")[-1].split("-")[0]
        if name == "chromium":
            r = subprocess.run([path, "--version"], capture_output=True, text=True)
            return r.stdout.strip().split()[1]
    except (OSError, IndexError):
        pass
    return "?"


def free_port():
    """A loopback TCP port that was free a moment ago (nginx cannot listen on port 0 and tell)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def tree_pids(pid):
    """A process and its direct children (nginx: master + workers)."""
    pids = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return pids


def pin_tree(pid, cpus):
    """Every thread of a process and of its direct children may run on `cpus` only (threads
    they start later inherit it)."""
    for p in tree_pids(pid):
        try:
            tids = [int(t) for t in os.listdir("/proc/%d/task" % p)]
        except OSError:
            continue
        for t in tids:
            try:
                os.sched_setaffinity(t, cpus)
            except OSError:
                pass  # a thread that has just ended


def proc_tree_cpu(pid, hz=os.sysconf("SC_CLK_TCK")):
    """utime+stime seconds of a process and its direct children (nginx: master + workers)."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / hz
    return total


# ---------------------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------------------

NGINX_CONF = """\
# Tools/bench/gateway: private nginx, not a daemon, everything under its own prefix.
%(user)s
worker_processes auto;
daemon off;
master_process on;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events {
    worker_connections 4096;
}
http {
    include %(mime)s;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path %(prefix)s/tmp/body;
    proxy_temp_path %(prefix)s/tmp/proxy;
    fastcgi_temp_path %(prefix)s/tmp/fastcgi;
    uwsgi_temp_path %(prefix)s/tmp/uwsgi;
    scgi_temp_path %(prefix)s/tmp/scgi;
%(servers)s
}
"""

NGINX_SERVER = """\
    server {
        listen 127.0.0.1:%(port)d;
        server_name _;
        root %(root)s;
    }
"""


class Nginx:
    """Debian's nginx with a private config and prefix in a temp dir, in the foreground
    (daemon off), serving each of `roots` (a list of directories) on its own loopback port."""

    def __init__(self, binary, roots, workdir):
        self.binary = binary
        self.prefix = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        os.makedirs(os.path.join(self.prefix, "tmp"))
        self.p = None
        self.roots = roots
        self.ports = []
        self.conf = os.path.join(self.prefix, "nginx.conf")

    def start(self, attempts=5):
        mime = "/etc/nginx/mime.types"
        for _ in range(attempts):
            self.ports = [free_port() for _ in self.roots]
            servers = "".join(NGINX_SERVER % {"port": port, "root": root} for port, root in zip(self.ports, self.roots))
            with open(self.conf, "w") as f:
                f.write(NGINX_CONF % {
                    # Workers run as root so they can read any directory the benchmark names
                    # (as root, nginx would otherwise switch them to nobody).
                    "user": "user root;" if os.geteuid() == 0 else "",
                    "prefix": self.prefix, "servers": servers,
                    "mime": mime if os.path.exists(mime) else os.path.join(self.prefix, "mime.types")})
            if not os.path.exists(mime):
                with open(os.path.join(self.prefix, "mime.types"), "w") as f:
                    f.write("types { text/html html; text/css css; application/javascript js; }\n")
            self.err = open(os.path.join(self.prefix, "stderr"), "ab")
            self.p = subprocess.Popen([self.binary, "-p", self.prefix, "-c", self.conf, "-e",
                                       os.path.join(self.prefix, "error.log")],
                                      stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
            if all(wait_port(port, 10, self.p) for port in self.ports):
                return self.ports
            self.stop()  # a port was taken in between: try others
        raise RuntimeError("nginx did not start; see %s/error.log" % self.prefix)

    def cpu(self):
        return proc_tree_cpu(self.p.pid) if self.p and self.p.poll() is None else None

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.p:
            self.err.close()
        self.p = None


# ---------------------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------------------

def wrk(binary, url, threads, connections, duration, timeout_s=10, cpu_of=None, cpus=None):
    """Runs wrk; returns the dict its Lua `done` hook prints (requests, bytes, duration_us, errors
    {connect, read, write, status, timeout}, latency percentiles in us) plus rps, bytes_per_s and,
    with cpu_of (a function returning a server's CPU seconds), server_cpu over the run. cpus: the
    CPUs wrk may run on (all by default)."""
    argv = [binary, "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--timeout", "%ds" % timeout_s,
            "-s", WRK_LUA, url]
    c0 = cpu_of() if cpu_of else None
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=duration + 60,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    c1 = cpu_of() if cpu_of else None
    rep = None
    for line in r.stdout.splitlines():
        if line.startswith("WRKJSON "):
            rep = json.loads(line[len("WRKJSON "):])
    if r.returncode != 0 or rep is None:
        raise RuntimeError("wrk failed (exit %d): %s" % (r.returncode, (r.stderr or r.stdout).strip()[-300:]))
    secs = rep["duration_us"] / 1e6
    rep["rps"] = rep["requests"] / secs
    rep["bytes_per_s"] = rep["bytes"] / secs
    rep["server_cpu"] = (c1 - c0) if (c0 is not None and c1 is not None) else None
    rep["argv"] = " ".join(argv[:-3] + [argv[-1]])
    return rep


# ---------------------------------------------------------------------------------------
# Page loads in headless Chromium
# ---------------------------------------------------------------------------------------

# The harness page. The parser-blocking <script src="go.js"> is answered only once the
# benchmark has the server to measure ready (for a fresh gateway: spawned *after* the browser is
# up, so it cannot use the browser's start-up time to get ahead); go.js sets TARGET. Then the
# clock starts, the target page is loaded in an iframe, and the iframe's load event (the page's
# own load event: HTML, style sheets, scripts, images) stops it. An iframe added while the
# harness is still loading delays the harness's load event, and --dump-dom prints the DOM only
# after that, with the result in it.
HARNESS_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>page-load harness</title></head>
<body>
<pre id="result">pending</pre>
<script src="go.js"></script>
<script>var HOLD_MS = %(hold_ms)d;</script>
<script>
(function () {
  var out = document.getElementById("result");
  var f = document.createElement("iframe");
  var t0 = performance.now();
  f.onload = function () {
    var t1 = performance.now();
    // load_ms on the page's monotonic clock; t0/t1 also as Unix time in ms (timeOrigin + now),
    // to line the page's clock up with the benchmark's (same machine, same wall clock).
    out.textContent = "RESULT " + JSON.stringify({load_ms: t1 - t0, t0_unix_ms: performance.timeOrigin + t0,
                                                  t1_unix_ms: performance.timeOrigin + t1});
    // Hold the harness's load event (and so the DOM dump and the browser's exit) a while
    // longer, so that what the page does after its load event (js/app.js's fetch of
    // assets.json) can finish and be checked in the NetLog; the clock has already stopped.
    var hold = new Image();
    hold.src = "hold.gif?ms=" + HOLD_MS;
    document.body.appendChild(hold);
  };
  f.src = TARGET;
  document.body.appendChild(f);
})();
</script>
</body></html>
"""


GIF_1X1 = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


class Harness:
    """A loopback HTTP server for the harness page; `arm(fn)` sets what answers go.js:
    fn() is called when the browser asks for it and returns the URL to load; `answered` is the
    Unix time just after it returned."""

    def __init__(self, hold_ms=1000):
        self.fn = None
        self.hold_ms = hold_ms
        self.answered = None
        harness = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/go.js"):
                    try:
                        url = harness.fn()
                        harness.answered = time.time()
                        body = ("var TARGET = %s;\n" % json.dumps(url)).encode()
                    except Exception as e:  # noqa: BLE001 (reported in the page)
                        harness.error = str(e)
                        body = b"var TARGET = 'about:blank';\n"
                    ctype = "application/javascript"
                elif self.path.startswith("/hold.gif"):
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                    time.sleep(min(10.0, int(q.get("ms", ["0"])[0]) / 1000))
                    body, ctype = GIF_1X1, "image/gif"
                elif self.path in ("/", "/harness.html"):
                    body, ctype = (HARNESS_HTML % {"hold_ms": harness.hold_ms}).encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, addr: None  # e.g. the browser hung up early
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/harness.html" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.error = None

    def arm(self, fn):
        self.fn = fn
        self.answered = None
        self.error = None

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chromium_argv(binary, profile, netlog=None):
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
            "--disable-breakpad", "--no-pings", "--metrics-recording-only", "--mute-audio",
            "--disable-dev-shm-usage", "--no-proxy-server",
            # Nothing leaves the machine: every name but the loopback ones fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1"]
    if netlog:
        argv.append("--log-net-log=" + netlog)
    return argv


def netlog_requests(path):
    """Every URL request in a Chromium NetLog file, in start order: dicts with url, status (None
    if no response), start, headers and end (ms on the NetLog clock: request created, response
    headers read, request gone) and bytes (body bytes read). None if the file is unreadable."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    try:
        log = json.loads(text)
    except ValueError:  # cut short (the browser was killed): close it
        try:
            log = json.loads(text.rstrip().rstrip(",") + "]}")
        except ValueError:
            return None
    types = {v: k for k, v in log.get("constants", {}).get("logEventTypes", {}).items()}
    reqs = {}
    for e in log.get("events", []):
        t = types.get(e.get("type"))
        src = e.get("source", {}).get("id")
        p = e.get("params") or {}
        try:
            at = float(e.get("time"))
        except (TypeError, ValueError):
            continue
        if t == "REQUEST_ALIVE":
            r = reqs.setdefault(src, {"url": None, "status": None, "start": None, "headers": None, "end": None,
                                      "bytes": 0})
            if e.get("phase") == 1:
                r["start"] = at
                r["url"] = p.get("url", r["url"])
            elif e.get("phase") == 2:
                r["end"] = at
        elif src in reqs:
            r = reqs[src]
            if t == "URL_REQUEST_START_JOB" and "url" in p and r["url"] is None:
                r["url"] = p["url"]
            elif t == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS" and p.get("headers"):
                try:
                    r["status"] = int(p["headers"][0].split()[1])
                except (IndexError, ValueError):
                    pass
                r["headers"] = at
            elif t == "URL_REQUEST_JOB_FILTERED_BYTES_READ":
                r["bytes"] += int(p.get("byte_count", 0))
    return sorted((r for r in reqs.values() if r["url"]), key=lambda r: r["start"] or 0)


BROWSERS = set()  # process groups of running browsers


@atexit.register
def _end_browsers():
    for pgid in list(BROWSERS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def run_browser(argv, timeout):
    """Runs Chromium in its own process group (so a time-out ends its helper processes too);
    returns (exit code, stdout, stderr) or raises on time-out."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    BROWSERS.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise RuntimeError("chromium did not finish within %d s" % timeout)
    finally:
        try:  # helpers that outlived the browser
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        BROWSERS.discard(p.pid)
    return p.returncode, out, err


def page_load(binary, harness, target_fn, workdir, timeout=60):
    """Loads target_fn()'s URL in a fresh headless Chromium (fresh profile: empty cache) through
    the harness. Returns {load_ms, wall_s, requests (netlog_requests)} or raises."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    netlog = os.path.join(profile, "netlog.json")
    harness.arm(target_fn)
    argv = chromium_argv(binary, profile, netlog) + ["--dump-dom", harness.url]
    t0 = time.perf_counter()
    try:
        rc, out, err = run_browser(argv, timeout)
    except RuntimeError:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    wall = time.perf_counter() - t0
    reqs = netlog_requests(netlog)
    shutil.rmtree(profile, ignore_errors=True)
    if harness.error:
        raise RuntimeError(harness.error)
    res = None
    for line in out.splitlines():
        i = line.find("RESULT {")
        if i >= 0:
            res = json.loads(line[i + len("RESULT "):].split("<")[0].replace("&quot;", '"'))
    if res is None:
        raise RuntimeError("chromium printed no result (exit %d): %s" % (rc, err.strip()[-300:]))
    res["wall_s"] = wall
    res["answered_unix_ms"] = 1000 * harness.answered if harness.answered else None
    res["requests"] = reqs or []
    return res


def render_check(binary, url, workdir, budget_ms=5000, timeout=60):
    """The DOM of url after Chromium ran its scripts (virtual time budget), for checking that the
    page works: returns the DOM text."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    argv = chromium_argv(binary, profile) + ["--virtual-time-budget=%d" % budget_ms, "--dump-dom", url]
    try:
        return run_browser(argv, timeout)[1]
    finally:
        shutil.rmtree(profile, ignore_errors=True)
