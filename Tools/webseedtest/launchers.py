"""Peers the harnesses start as child processes: a seeder (`webseed seed`, or ltpeer's libtorrent
stand-in with the same command line and JSON lines) waited for until it listens and is ready,
and ltpeer's libtorrent leecher with its outcome."""

import os
import signal
import time

from .procs import Proc, program


class Seeder:
    """`webseed seed ...` (or the libtorrent stand-in with the same CLI) as a child process."""

    def __init__(self, args, name, sources, listen_host, state_dir, logdir, data=None, prefix=()):
        if args.seeder == "libtorrent":
            argv = program("ltpeer") + ["seed"]
        else:
            argv = [args.webseed, "seed"]
        argv += list(sources)
        if data:
            argv += ["--data", data]
        argv += ["--listen", "%s:0" % listen_host, "--offline", "--state-dir", state_dir, "--json"]
        os.makedirs(state_dir, exist_ok=True)
        self.argv = list(prefix) + argv
        self.proc = Proc(name, self.argv, logdir)
        self.host = listen_host
        self.port = None
        self.sites = {}
        self.ready_after = None
        self.problem = None

    def wait_ready(self, timeout):
        t0 = time.time()
        i, ev = self.proc.wait_event(lambda e: e.get("event") == "listening", timeout)
        if ev is None:
            self.problem = "no {\"event\":\"listening\"} within %ds (exit %s)" % (
                timeout, self.proc.p.poll())
            return False
        self.port = ev.get("port")
        if ev.get("host") not in (None, self.host):
            self.problem = "listening on %r, asked %s" % (ev.get("host"), self.host)
        left = max(1, timeout - (time.time() - t0))
        j, ready = self.proc.wait_event(lambda e: e.get("event") == "ready", left, i)
        for _, e in self.proc.event_times(lambda e: e.get("event") == "site"):
            self.sites[e.get("name")] = e
        if ready is None:
            self.problem = "no {\"event\":\"ready\"} within %ds (exit %s)" % (
                timeout, self.proc.p.poll())
            return False
        self.ready_after = time.time() - self.proc.t0
        return True

    def stop(self, r, what):
        if not self.proc.alive():
            rc = self.proc.wait(1)
            r.fail(what, "the seeder had already exited (status %s) before SIGTERM" % rc,
                   more=self.proc.log_tail(15))
            self.proc.stop(timeout=1)
            return
        rc, took = self.proc.stop(timeout=5)
        r.check(rc == 0, what, "SIGTERM: exit %s after %.2fs" % (
            rc if rc is not None else "none (killed)", took),
            more=[] if rc == 0 else self.proc.log_tail(10))


def honest_seeder(r, ws, torrent, data, work):
    """`webseed seed TORRENT --data DATA` on 127.0.0.1, offline, state in WORK/seed-state and logs
    in WORK/logs: the honest peer beside get's fake ones. Checks (on r) that it is ready within
    60 s; returns (its Proc, its port, or None when it is not ready)."""
    seeder = Proc("seeder", [ws, "seed", torrent, "--data", data, "--listen", "127.0.0.1:0", "--offline",
                             "--state-dir", os.path.join(work, "seed-state"), "--json"],
                  os.path.join(work, "logs"), cwd=work)
    ready = seeder.wait_for("ready", 60)
    listening = seeder.wait_for("listening", 0.1)
    ok = r.check(ready is not None and listening is not None, "honest seeder ready",
                 "" if ready else "no ready event within 60 s", more=() if ready else seeder.log_tail(6))
    return seeder, int(listening["port"]) if ok else None


def lt_leech_argv(source, save, timeout, log, peers=(), extra=()):
    """ltpeer leech of `source` (a magnet, or a .torrent path) into save, every alert and the
    peer log going to `log`; the leecher gives up after timeout seconds."""
    argv = program("ltpeer") + ["leech", "--save", save, "--timeout", str(timeout), "--log", log]
    argv += ["--magnet", source] if source.startswith("magnet:") else ["--torrent", source]
    for p in peers:
        argv += ["--peer", p]
    return argv + list(extra)


def leech_outcome(p, timeout):
    """(its finished / error / timeout event or None, exit status or None) of an ltpeer leecher,
    waiting up to timeout s for the event and 20 s more for the exit. One that overran its own
    deadline is asked for its Python stacks (faulthandler on SIGUSR1), then killed."""
    _, ev = p.wait_event(lambda e: e.get("event") in ("finished", "error", "timeout"), timeout)
    rc = p.wait(20)
    if rc is None:
        try:
            p.p.send_signal(signal.SIGUSR1)
        except ProcessLookupError:
            pass
        p.wait(1)
        p.kill()
    return ev, rc
