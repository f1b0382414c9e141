"""Child processes the harnesses start (webseed, libtorrent peers, clients): their output
logged and read as timed JSON events, every wait bounded, and all of them killed at the end
even when a harness fails half way."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

LT_PYTHON = "/usr/bin/python3"
"""The interpreter with Debian's libtorrent binding (python3-libtorrent); `python3` on PATH
(pyenv) has none."""


def program(module, python=LT_PYTHON):
    """argv that runs one of this package's programs (ltpeer, tracker, fake_igd, ...) as a
    module: the package is found through PYTHONPATH, which the entry point (Tools/test or a
    bench wrapper) set and every child inherits."""
    return [python, "-m", "%s.%s" % (__package__, module)]


def tail(path, n=20, grep=None, width=240):
    """Last n lines of a text file (optionally only lines containing one of `grep`)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4 * 1024 * 1024))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError as e:
        return ["(cannot read %s: %s)" % (path, e)]
    if grep:
        lines = [l for l in lines if any(g in l for g in grep)]
    return [l[:width] for l in lines[-n:]]


class EventList:
    """Events (dicts) stamped with their arrival time, appended by a reader thread and
    waited for with a timeout. `t0` is when the source started."""

    def __init__(self):
        self.t0 = time.time()
        self.events = []         # (time, dict)
        self.cond = threading.Condition()

    def finished(self):
        """True once no more events can come (then waits end early)."""
        return False

    def wait_event(self, pred, timeout, start=0):
        """First event (index >= start) matching pred, waiting up to timeout seconds;
        returns (index, event) or (None, None) on timeout or when no more can come."""
        deadline = time.time() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.events):
                    if pred(self.events[i][1]):
                        return i, self.events[i][1]
                    i += 1
                left = deadline - time.time()
                if left <= 0 or (self.finished() and i >= len(self.events)):
                    return None, None
                self.cond.wait(min(left, 0.5))

    def wait_for(self, name, timeout):
        """The first {"event": name} within timeout seconds, or None."""
        return self.wait_event(lambda e: e.get("event") == name, timeout)[1]

    def event_times(self, pred):
        with self.cond:
            return [(t - self.t0, e) for t, e in self.events if pred(e)]


class Proc(EventList):
    """A child process whose stdout is read line by line (JSON lines are parsed) by a
    thread, each line stamped with its arrival time; stdout and stderr also go to log
    files. All waits take a timeout."""

    ALL = []

    def __init__(self, name, argv, logdir, cwd=None, env=None, stdin=subprocess.DEVNULL):
        self.name = name
        self.argv = list(argv)
        os.makedirs(logdir, exist_ok=True)
        self.out_path = os.path.join(logdir, name + ".stdout")
        self.err_path = os.path.join(logdir, name + ".stderr")
        self.err_file = open(self.err_path, "wb")
        self.out_file = open(self.out_path, "w")
        super().__init__()
        self.lines = []          # (time, text); JSON object lines are events too
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.err_file,
                                  stdin=stdin, cwd=cwd, env=env)
        Proc.ALL.append(self)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            now = time.time()
            self.out_file.write("%.3f %s\n" % (now - self.t0, line))
            self.out_file.flush()
            obj = None
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
            with self.cond:
                self.lines.append((now, line))
                if isinstance(obj, dict):
                    self.events.append((now, obj))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def status_kb(self, key):
        return proc_status_kb(self.pid, key)

    def finished(self):
        return not self.reader.is_alive()

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Sends sig and waits; returns (exit status or None, seconds taken). Kills the
        process (SIGKILL) if it did not exit in time."""
        t = time.time()
        if self.alive():
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
        rc = self.wait(timeout)
        took = time.time() - t
        self.end()
        return rc, took

    def kill(self):
        if self.alive():
            try:
                self.p.kill()
            except ProcessLookupError:
                pass
            self.wait(5)

    def end(self):
        """Kills it if it still runs, then waits (briefly) for its output to be read to the end
        and closes its logs: its lines and events are then complete."""
        self.kill()
        self.reader.join(3)
        self._close()

    def _close(self):
        for f in (self.err_file, self.out_file):
            try:
                f.close()
            except Exception:
                pass

    def log_tail(self, n=15):
        out = ["[%s stderr] %s" % (self.name, l) for l in tail(self.err_path, n)]
        out += ["[%s stdout] %s" % (self.name, l) for l in tail(self.out_path, n)]
        return out

    @classmethod
    def kill_all(cls):
        for p in cls.ALL:
            if p.alive():
                try:
                    p.p.terminate()
                except ProcessLookupError:
                    pass
        for p in cls.ALL:
            if p.alive() and p.wait(3) is None:
                p.kill()
            p._close()


def proc_status_kb(pid, key):
    """A kB figure (VmRSS, VmHWM, ...) of /proc/PID/status, or None once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run(argv, timeout, **kw):
    """subprocess.run with a timeout; returns (returncode or None, stdout+stderr text)."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, **kw)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return None, (e.output or b"").decode(errors="replace") + "\n(timed out after %ss)" % timeout


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def poll(cond, timeout, interval=0.2):
    """Calls cond() until it returns a true value or timeout seconds pass; returns the last
    value. Each call is itself a check of real state (no sleeping as synchronisation)."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(min(interval, max(0.0, deadline - time.time())))


def open_descriptors(pid):
    """(total, sockets, regular files, socket inodes) of /proc/PID/fd, or None once the process
    is gone (a descriptor closed while it is read is skipped)."""
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except OSError:
        return None
    total = socks = files = 0
    inodes = set()
    for n in names:
        try:
            t = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        total += 1
        if t.startswith("socket:["):
            socks += 1
            inodes.add(t[8:-1])
        elif t.startswith("/"):
            files += 1
    return total, socks, files, inodes
