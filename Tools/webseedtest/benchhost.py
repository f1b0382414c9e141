"""The machine a bench runs on, and the bench's own housekeeping, shared by Tools/bench/*.py.
This machine is shared and busy: benches wait for it to be idle before each measured run,
read CPU and memory figures from /proc, and end every child they started even when they
stop early."""

import atexit
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

from .procs import proc_status_kb

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
HZ = os.sysconf("SC_CLK_TCK")
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

LIVE = set()   # child processes (Popen) to end if the bench stops early
CLEANUP = []   # directories to remove at exit
_LOCKS = []    # one_at_a_time's lock files, open until exit


def log(*a):
    """Progress goes to stderr; stdout is the bench's table."""
    print(*a, file=sys.stderr, flush=True)


def fmt_pl(n):
    return "%d MiB" % (n // MIB) if n >= MIB and n % MIB == 0 else "%d KiB" % (n // KIB)


def med(xs):
    """Median of the values that are not None, or None."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------
# Children and clean-up
# ---------------------------------------------------------------------------------------

def end_children():
    """Ends every process in LIVE (SIGTERM, SIGKILL 10 s later) and removes CLEANUP."""
    # SIGTERM first: nginx's master then ends its workers, webseed shuts down cleanly.
    for p in list(LIVE):
        if p.poll() is None:
            p.terminate()
    for p in list(LIVE):
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for d in CLEANUP:
        shutil.rmtree(d, ignore_errors=True)


def end_children_at_exit():
    """At exit (SIGTERM included) ends every process in LIVE and removes CLEANUP."""
    atexit.register(end_children)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def spawn(argv, **kw):
    """Popen, retried for up to 2 minutes while the binary is being relinked (ETXTBSY)."""
    deadline = time.time() + 120
    while True:
        try:
            return subprocess.Popen(argv, **kw)
        except OSError as e:
            if e.errno != errno.ETXTBSY or time.time() > deadline:
                raise
            time.sleep(1)


def corpus_root(corpus_dir, sub):
    """corpus_dir/sub, which must lie outside the repository (corpora are large)."""
    root = os.path.realpath(os.path.join(os.path.abspath(corpus_dir), sub))
    if root == REPO or root.startswith(REPO + os.sep):
        sys.exit("bench: corpus dir %s is inside the repository; pick one outside it" % root)
    return root


def write_report(md_path, lines, data):
    """Prints the markdown table and writes it to md_path, with the figures behind it (data) as
    JSON beside it."""
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(md_path), exist_ok=True)
    with open(md_path, "w") as f:
        f.write(text)
    with open(os.path.splitext(md_path)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1, default=str)
    log("wrote %s" % md_path)


def download_root(chosen, work, need, name):
    """An empty directory for downloads, removed at exit: `chosen` if given, else tmpfs
    (/dev/shm/webseed-bench-NAME) when it has room for 1.5 x `need` bytes + 2 GiB (disk
    writeback and ext4 inode allocation would add noise), else WORK/downloads."""
    root = chosen
    if not root:
        root = os.path.join(work, "downloads")
        try:
            st = os.statvfs("/dev/shm")
            if st.f_bavail * st.f_frsize > 1.5 * need + 2 * GIB:
                root = "/dev/shm/webseed-bench-%s" % name
        except OSError:
            pass
    root = os.path.abspath(root)
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    CLEANUP.append(root)
    return root


def one_at_a_time(lock_path, name):
    """Holds an exclusive lock for the rest of the bench's life: a second bench would share
    the CPUs and the work directories."""
    lock = open(lock_path, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another Tools/bench/%s is running; waiting for it to finish ..." % name)
        fcntl.flock(lock, fcntl.LOCK_EX)
    _LOCKS.append(lock)


# ---------------------------------------------------------------------------------------
# The binary and the tree it was built from
# ---------------------------------------------------------------------------------------

def bench_workdir(name):
    """A fresh work folder for bench `name` under $WEBSEED_BENCH_DIR (default
    /tmp/webseed-bench), after taking that bench's lock (one run of it at a time)."""
    root = os.path.realpath(os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench"))
    os.makedirs(root, exist_ok=True)
    one_at_a_time(os.path.join(root, "bench-%s.lock" % name), name)
    work = os.path.join(root, "%s-work" % name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    return work


def build_release():
    """The binary a user installs: a release build with the Swift runtime linked in (README,
    "Running as a service")."""
    log("building webseed: swift build -c release --static-swift-stdlib --product webseed ...")
    r = subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "webseed"], cwd=REPO,
                       stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0:
        sys.exit("bench: swift build -c release failed (exit %d)" % r.returncode)
    out = subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path"], cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("bench: swift build --show-bin-path failed: %s" % out.stderr.strip()[-300:])
    return os.path.join(out.stdout.strip(), "webseed")


def binary_stamp(binary):
    """(mtime, size), to notice a binary rebuilt during the bench."""
    try:
        st = os.stat(binary)
        return (st.st_mtime, st.st_size)
    except OSError:
        return None


def wait_binary(binary, timeout=120):
    """The release binary may be replaced while a rebuild links it: wait for it to be back."""
    deadline = time.time() + timeout
    while not os.access(binary, os.X_OK) and time.time() < deadline:
        time.sleep(1)


def require_binary(binary):
    """Waits (up to a minute) for a binary being relinked; exits the bench if it never comes."""
    wait_binary(binary, 60)
    if not os.access(binary, os.X_OK):
        sys.exit("bench: webseed binary %s not found" % binary)


def git_head():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+uncommitted changes" if dirty else "")
    except OSError:
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


# ---------------------------------------------------------------------------------------
# CPU, memory and page cache
# ---------------------------------------------------------------------------------------

def stat_cpu():
    """(total, idle + iowait) clock ticks of all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def busy_between(a, b):
    """Busy fraction of all CPUs between two stat_cpu() snapshots."""
    return 1.0 - (b[1] - a[1]) / max(1, b[0] - a[0])


def machine_busy():
    """Busy CPU seconds of the whole machine so far."""
    total, idle = stat_cpu()
    return (total - idle) / HZ


def cpu_busy(interval=0.5):
    """Fraction of all CPU time spent busy (by anyone) over the next interval seconds."""
    a = stat_cpu()
    time.sleep(interval)
    return busy_between(a, stat_cpu())


def wait_idle(max_wait=120.0, threshold=0.15):
    """Waits (up to max_wait s) until other processes leave the CPUs alone; returns the last
    busy fraction (a bench notes it beside its figures)."""
    deadline = time.time() + max_wait
    busy = cpu_busy()
    warned = False
    while busy > threshold and time.time() < deadline:
        if not warned:
            with open("/proc/loadavg") as f:
                la = f.read().split()[0]
            log("  machine busy (%.0f%% CPU, load %s); waiting for it to go idle ..." % (100 * busy, la))
            warned = True
        busy = cpu_busy(2.0)
    return busy


def proc_cpu(pid):
    """utime+stime seconds of a live process (all its threads), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(4 * MIB)
            if not b:
                return h.hexdigest()
            h.update(b)


def warm(d):
    """Reads every file under d once, so every tool measured starts from a warm page cache."""
    buf = bytearray(4 * MIB)
    for dirpath, _, names in os.walk(d):
        for n in names:
            with open(os.path.join(dirpath, n), "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass


# ---------------------------------------------------------------------------------------
# Children printing JSON lines
# ---------------------------------------------------------------------------------------

class TargetTable:
    """The rows of a bench's markdown table (case, metric, value, target, met?); `all_ok`
    turns false at the first row whose target was missed."""

    HEADER = ["| case | metric | value | target | met? |", "|---|---|---|---|---|"]

    def __init__(self):
        self.rows = []
        self.all_ok = True

    def row(self, case, metric, value, target="–", met=None):
        if met is None:
            m = "–"
        else:
            m = "yes" if met else "**no**"
            self.all_ok &= bool(met)
        self.rows.append("| %s | %s | %s | %s | %s |" % (case, metric, value, target, m))


def fmt_ms(x, inf=float("inf")):
    """A duration in ms for a table: "n/a" when unknown, "∞ (not found)" for `inf`."""
    return "n/a" if x is None else ("∞ (not found)" if x == inf else "{:,.0f} ms".format(x))


class JsonProc:
    """A child printing JSON lines (`webseed … --json`, ltbench), read by a thread as they come;
    each event gets "_t", the perf_counter time at which the bench read it (compare with t0,
    taken just before the spawn, or with other processes' events). Waits are bounded and
    end early at the end of its output."""

    CLEAN_EXITS = (0,)

    def __init__(self, argv, errlog):
        self.events = []
        self.cond = threading.Condition()
        self.err = open(errlog, "ab")
        self.t0 = time.perf_counter()
        self.t0_unix = time.time()
        self.p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err)
        LIVE.add(self.p)
        self.pid = self.p.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            t = time.perf_counter()
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                obj = {"event": "?", "raw": line.decode(errors="replace").strip()}
            obj["_t"] = t
            with self.cond:
                self.events.append(obj)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "<eof>", "_t": time.perf_counter()})
            self.cond.notify_all()

    def wait_for(self, pred, timeout):
        """First event e with pred(e), waiting up to timeout s; None on timeout or end of output."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                    if e.get("event") == "<eof>":
                        return None
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))

    def wait_event(self, name, timeout):
        return self.wait_for(lambda e: e.get("event") == name, timeout)

    def need(self, names, timeout, what):
        """Waits for every event in names; returns them or stops the process and raises."""
        got = []
        deadline = time.time() + timeout
        for n in names:
            e = self.wait_event(n, max(0.0, deadline - time.time()))
            if e is None:
                self.stop()
                raise RuntimeError("%s printed no %r event within %d s (exit %s; see %s)"
                                   % (what, n, timeout, self.p.returncode, self.err.name))
            got.append(e)
        return got

    def select(self, name):
        with self.cond:
            return [e for e in self.events if e.get("event") == name]

    def alive(self):
        return self.p.poll() is None

    def cpu(self):
        return proc_cpu(self.pid)

    def hwm_mb(self):
        kb = proc_status_kb(self.pid, "VmHWM")
        return kb / 1024 if kb is not None else None

    def stderr_tail(self, n=300):
        try:
            with open(self.err.name, "rb") as f:
                return f.read().decode(errors="replace").strip()[-n:]
        except OSError:
            return ""

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after timeout; returns None for a clean exit, else what happened."""
        what = None
        t = time.perf_counter()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                what = "killed: still running %d s after SIGTERM" % timeout
        self.stop_s = time.perf_counter() - t
        self.reader.join(2)
        self.err.close()
        LIVE.discard(self.p)
        if what is None and self.p.returncode not in self.CLEAN_EXITS:
            what = "exit status %s after SIGTERM" % self.p.returncode
        return what


class Seeder(JsonProc):
    """A seeder (`webseed seed --json` or `ltbench seed`) the benches download from."""

    def __init__(self, kind, argv, errlog):
        self.kind = kind
        super().__init__(argv, errlog)

    def start(self, timeout=900):
        """Waits for ready; returns (seconds from spawn to ready, port, magnet) or raises."""
        ready = self.wait_event("ready", timeout)
        t = time.perf_counter() - self.t0
        if ready is None:
            self.stop()
            raise RuntimeError("%s seeder did not become ready (exit %s); see %s"
                               % (self.kind, self.p.returncode, self.err.name))
        lst = self.wait_event("listening", 1)
        site = self.wait_event("site", 1)
        if not lst or not site:
            self.stop()
            raise RuntimeError("%s seeder printed no listening/site event" % self.kind)
        return t, int(lst["port"]), site.get("magnet")
