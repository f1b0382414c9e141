#!/usr/bin/env python3
"""`webseed get` as a user runs it, when things go wrong: bad input, SIGKILL at random moments
followed by resume, and a full disk.

  python3 Tools/tests/get_cli.py --webseed .build/debug/webseed [--seed N] [--keep]
                                 [--only bad-input|sigkill|disk-full|terminal]

(a) Bad input: exactly one `error: ` line on stderr (`webseed: error: ` accepted), a non-zero
    exit, quickly, and nothing written outside DIR (the case's cwd and a private HOME are
    compared before and after): malformed magnet, unknown magnet topic, .torrent files that
    fail validation, a missing file, metadata that never arrives (a fake peer that answers the
    handshake and then says nothing; --timeout 3; the message says "metadata"), no reachable
    peer (--timeout 3), -o naming a directory that holds a file not in the torrent (left
    untouched), -o naming a regular file.
(b) SIGKILL and resume: an honest `webseed seed` of a generated ~8 MB site (16 KiB pieces)
    behind a rate-limited relay on 127.0.0.1; `webseed get --json --exit-when-done` is killed
    with SIGKILL at random moments (a random delay, after a random number of progress events,
    or once a random amount more is verified) at least 12 times and restarted on the same -o
    and --state-dir (sometimes from the magnet, sometimes with --recheck); then it must
    complete, the tree must be byte-identical (webseedtest/trees.py compare_tree: no stray files
    either), restarts must report `resumed` events with pieces > 0 (some from the resume
    record), --recheck runs must take nothing from the record, and runs on the finished
    directory (with and without --recheck) must find every piece. The relay's rate follows
    what is left, so that the kills spread over the download. The random seed is printed
    (--seed repeats a run's choices).
(c) Disk full: `webseed get` in a private mount namespace (unshare -m) whose -o is on a 1 MiB
    tmpfs, downloading the 8 MB site through a relay at 384 KiB/s (so that progress events
    come before the disk is full): exit 1, one `error:` line saying "No space left", no
    progress event claiming more verified bytes than fit, nothing written to the real
    directory under the mount point. If the namespace cannot be set up, that is a failure.
(d) Progress on a terminal: `webseed get` (no --json) under `script -qfec "exec …"` (a pty;
    `exec`, so that script's child is webseed itself whatever $SHELL is), fed through a relay
    so that the download takes about 4 s: the log shows the progress line
    ("\r\x1b[K<verified> / <total>  <rate>/s  peers <n> ETA <s> s") drawn at least twice, with
    "peers" and "ETA", then the "complete:" line; exit 0 and a byte-identical tree. The same
    with stdout a pipe: no "\x1b[K" at all, the "complete:" line, a byte-identical tree.

Loopback only; every wait is bounded; every child is killed in `finally`. Prints `ok …` /
`FAIL …` / `info …` lines and last `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import hashlib
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from webseedtest.bencode import bdecode, bencode, info_span
from webseedtest.content import write_files
from webseedtest.launchers import honest_seeder
from webseedtest.peerwire import BLOCK, PSTR
from webseedtest.procs import free_port, Proc, run
from webseedtest.relay import TcpRelay
from webseedtest.tcpserver import TcpServer
from webseedtest.results import Results
from webseedtest.trees import compare_tree
from webseedtest.watchdog import Watchdog

R = Results()
KILLS = 12
ERROR_RE = re.compile(r"^(webseed: )?error: ")
WARNING_RE = re.compile(r"^(webseed: )?warning: ")


# ---------------------------------------------------------------------------------------------
# torrents

def magnet_of(torrent_path, name):
    info = info_span(open(torrent_path, "rb").read())
    return "magnet:?xt=urn:btih:%s&xt=urn:btmh:1220%s&dn=%s" % (
        hashlib.sha1(info).hexdigest(), hashlib.sha256(info).hexdigest(), name)


def make_site(root):
    """~8 MB in 32 files (4 of 1-1.5 MB), nested; the same bytes on every run."""
    rnd = random.Random(8_000_001)
    files = {"index.html": b"<!doctype html><title>get</title><p>resume me</p>\n"}
    for rel in ["media/intro.webm", "media/talk.webm", "downloads/data.bin", "img/panorama.jpg"]:
        files[rel] = rnd.randbytes(rnd.randrange(1_000_000, 1_500_001))
    dirs = ["css", "js", "img", "img/icons", "docs/guide", "blog/2025/01"]
    n = 0
    while len(files) < 32:
        size = rnd.choice([rnd.randrange(1, 5000), rnd.randrange(5000, 100_000),
                           rnd.randrange(100_000, 320_000)])
        files["%s/part-%02d.dat" % (dirs[n % len(dirs)], n)] = rnd.randbytes(size)
        n += 1
    write_files(root, files)
    return sum(len(d) for d in files.values())


# ---------------------------------------------------------------------------------------------
# a peer that answers the handshake and then says nothing; a rate-limited relay

class SilentPeer(TcpServer):
    def __init__(self, host):
        self.handshakes = 0
        super().__init__(host, backlog=16)

    def serve(self, s, addr):
        s.settimeout(0.2)
        buf = b""
        try:
            while not self.stop_ev.is_set():
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                if len(buf) < 68:
                    buf += chunk
                    if len(buf) >= 68:
                        if buf[:20] != PSTR:
                            return
                        with self.lock:
                            self.handshakes += 1
                        reserved = bytearray(8)
                        reserved[5] |= 0x10      # extension protocol: then never a word of it
                        reserved[7] |= 0x04
                        s.sendall(PSTR + bytes(reserved) + buf[28:48] + b"-SI0001-" +
                                  os.urandom(6).hex().encode())
        except OSError:
            pass
        finally:
            s.close()


class Relay(TcpRelay):
    """127.0.0.1:0 -> upstream; bytes from upstream are limited to `rate` bytes/s in all
    (None: unlimited), shared by every connection; the rate can be changed while running."""

    buffer_cap = 1 << 18
    poll = 0.02

    def __init__(self, upstream, rate):
        self.rate = rate
        self.tokens = 0.0
        self.t_fill = time.monotonic()
        super().__init__(upstream)

    def allowance(self, want):
        with self.lock:
            if self.rate is None:
                return want
            now = time.monotonic()
            self.tokens = min(self.tokens + (now - self.t_fill) * self.rate,
                              max(BLOCK, self.rate * 0.05))
            self.t_fill = now
            n = int(min(want, self.tokens))
            self.tokens -= n
            return n

    def give_back(self, n):
        with self.lock:
            self.tokens += n


# ---------------------------------------------------------------------------------------------
# helpers

def snapshot(root, exclude):
    """{relative path: (kind, size, mtime_ns)} under root, skipping the `exclude` paths."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in exclude]
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if p in exclude:
                continue
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = ("d" if n in dirnames else "f", st.st_size,
                                             st.st_mtime_ns)
    return out


def stderr_lines(text):
    return [l for l in text.splitlines() if l.strip()]


def one_error_line(err):
    """(the error line or None, why not)."""
    lines = stderr_lines(err)
    errors = [l for l in lines if ERROR_RE.match(l)]
    others = [l for l in lines if not ERROR_RE.match(l) and not WARNING_RE.match(l)]
    if len(errors) != 1 or others:
        return None, "%d error lines, %d other lines on stderr" % (len(errors), len(others))
    return errors[0], ""


class Ctx:
    pass


def get_argv(ctx, source, out, state, *extra):
    return [ctx.ws, "get", source, "-o", out, "--listen", "127.0.0.1:0", "--offline",
            "--state-dir", state, *extra]


# ---------------------------------------------------------------------------------------------
# (a) bad input

def expect_error(ctx, slug, what, source, extra, needles, limit, prepare=None, dir_untouched=False,
                 also=None):
    cdir = os.path.join(ctx.work, "a", slug)
    out = os.path.join(cdir, "out")
    state = os.path.join(cdir, "state")
    for d in ("cwd", "home"):
        os.makedirs(os.path.join(cdir, d))
    if prepare:
        prepare(out)
    before = snapshot(cdir, {out, state})
    out_before = snapshot(out, set()) if os.path.isdir(out) else None
    t0 = time.monotonic()
    try:
        p = subprocess.run(get_argv(ctx, source, out, state, *extra), capture_output=True,
                           text=True, timeout=limit + 30, cwd=os.path.join(cdir, "cwd"),
                           env=dict(os.environ, HOME=os.path.join(cdir, "home")))
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = None, (e.stderr or b"").decode(errors="replace") if isinstance(
            e.stderr, bytes) else (e.stderr or "")
    took = time.monotonic() - t0
    line, why = one_error_line(err)
    problems = []
    if rc is None:
        problems.append("still running after %d s (killed)" % (limit + 30))
    elif rc == 0:
        problems.append("exit 0")
    if line is None:
        problems.append(why)
    elif needles and not any(n.lower() in line.lower() for n in needles):
        problems.append("the error does not mention %s" % " or ".join(repr(n) for n in needles))
    if took > limit:
        problems.append("took %.1f s (limit %d s)" % (took, limit))
    after = snapshot(cdir, {out, state})
    if after != before:
        changed = sorted(set(after) ^ set(before) | {k for k in after if k in before and
                                                     after[k] != before[k]})
        problems.append("written outside DIR: %s" % changed[:5])
    if dir_untouched:
        now = snapshot(out, set()) if os.path.isdir(out) else None
        if now != out_before:
            problems.append("DIR changed: before %s, after %s" % (sorted(out_before or {}),
                                                                  sorted(now or {})))
    if also:
        problems += also()
    R.check(not problems, "bad input, %s: one error line, exit non-zero, nothing written" % what,
            "exit %s after %.2f s: %s" % (rc, took, line) if not problems else
            "; ".join(problems) + " | exit %s after %.2f s, stderr %r" % (rc, took, err[-400:]))
    return line


def bad_input(ctx):
    raw = open(ctx.torrent, "rb").read()
    meta, _ = bdecode(raw)
    baddir = os.path.join(ctx.work, "bad-torrents")
    os.makedirs(baddir)

    def write(name, data):
        p = os.path.join(baddir, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    truncated = write("truncated.torrent", raw[:len(raw) // 2])
    m = dict(meta)
    m[b"info"] = dict(meta[b"info"])
    m[b"info"][b"piece length"] = 20000
    odd_pl = write("piece-length-20000.torrent", bencode(m))
    m = dict(meta)
    layers = dict(meta[b"piece layers"])
    k = sorted(layers)[0]
    layers[k] = bytes([layers[k][0] ^ 1]) + layers[k][1:]
    m[b"piece layers"] = layers
    bad_layer = write("bad-piece-layer.torrent", bencode(m))

    expect_error(ctx, "malformed-magnet", "malformed magnet (urn:btih with 3 hex digits)",
                 "magnet:?xt=urn:btih:123", [], ["magnet"], 5)
    expect_error(ctx, "magnet-sha1", "magnet with an unknown topic (urn:sha1)",
                 "magnet:?xt=urn:sha1:YNCKHTQCWBTRNJIV4WNAE52SJUQCZO5C&dn=x", [], ["magnet"], 5)
    expect_error(ctx, "magnet-no-xt", "magnet without xt", "magnet:?dn=site", [], ["magnet"], 5)
    expect_error(ctx, "web-seed-retry", "--web-seed-retry 100000", ctx.torrent, ["--web-seed-retry", "100000"], ["--web-seed-retry must be"], 5)
    expect_error(ctx, "truncated", "truncated .torrent", truncated, [], ["not a valid torrent"], 5)
    expect_error(ctx, "piece-length", ".torrent with piece length 20000", odd_pl, [],
                 ["not a valid torrent"], 5)
    expect_error(ctx, "piece-layer", ".torrent whose piece layer does not match its root",
                 bad_layer, [], ["not a valid torrent"], 5)
    expect_error(ctx, "missing", "nonexistent .torrent file",
                 os.path.join(ctx.work, "no-such.torrent"), [],
                 ["no such file", "not a magnet link or a .torrent file", "does not exist",
                  "not found"], 5)

    silent = SilentPeer("127.0.0.5")
    try:
        expect_error(ctx, "no-metadata", "metadata never arrives (a peer that handshakes, then "
                     "nothing; --timeout 3)", ctx.magnet,
                     ["--peer", silent.address, "--timeout", "3"], ["metadata"], 15,
                     also=lambda: [] if silent.handshakes else
                     ["the silent peer was never contacted (the case proves nothing)"])
        R.info("silent peer", "%d handshakes answered" % silent.handshakes)
    finally:
        silent.stop()
    closed = "127.0.0.1:%d" % free_port()
    expect_error(ctx, "no-peers", "no reachable peer (--peer %s, --timeout 3)" % closed,
                 ctx.torrent, ["--peer", closed, "--timeout", "3"], ["peer"], 15)
    expect_error(ctx, "magnet-no-peers", "magnet with no peer at all (--offline, --timeout 3)",
                 ctx.magnet, ["--timeout", "3"], ["peer", "metadata"], 15)

    def stranger(out):
        os.makedirs(os.path.join(out, "css"))
        with open(os.path.join(out, "stranger.txt"), "w") as f:
            f.write("not part of the torrent\n")
    expect_error(ctx, "foreign-dir", "-o holds stranger.txt, which is not in the torrent "
                 "(a live seeder is given)", ctx.torrent,
                 ["--peer", ctx.seed_addr, "--timeout", "5"], ["stranger.txt"], 10,
                 prepare=stranger, dir_untouched=True)

    def regular_file(out):
        with open(out, "w") as f:
            f.write("a file, not a directory\n")
    def file_kept():
        try:
            with open(os.path.join(ctx.work, "a", "out-is-file", "out")) as f:
                if f.read() == "a file, not a directory\n":
                    return []
        except OSError as e:
            return ["the file named by -o is gone (%s)" % e.strerror]
        return ["the file named by -o was changed"]
    expect_error(ctx, "out-is-file", "-o names a regular file", ctx.torrent,
                 ["--peer", ctx.seed_addr, "--timeout", "5"], [], 10, prepare=regular_file,
                 also=file_kept)


# ---------------------------------------------------------------------------------------------
# (b) SIGKILL and resume

def kill_and_resume(ctx, rng):
    bdir = os.path.join(ctx.work, "b")
    out = os.path.join(bdir, "out")
    state = os.path.join(bdir, "state")
    logs = os.path.join(bdir, "logs")
    os.makedirs(os.path.join(bdir, "home"))
    env = dict(os.environ, HOME=os.path.join(bdir, "home"))
    relay = Relay(("127.0.0.1", ctx.seed_port), 256 * 1024)
    runs = []            # dicts describing each run
    kills = 0
    total = ctx.site_size
    done = 0             # best estimate of the bytes already verified on disk
    problems = []
    try:
        attempt = 0
        completed_early = False
        while kills < KILLS and attempt < 40:
            attempt += 1
            use_magnet = attempt > 1 and rng.random() < 0.25
            recheck = attempt > 1 and rng.random() < 0.15
            extra = ["--peer", relay.address, "--json", "--exit-when-done", "--timeout", "20"]
            if recheck:
                extra.append("--recheck")
            argv = get_argv(ctx, ctx.magnet if use_magnet else ctx.torrent, out, state, *extra)
            mode = rng.choice(["delay", "progress", "verified"])
            # Keep the kills spread over the whole download: a run lasts at most ~3 s before
            # its kill, so the relay lets through about a share of what is left per 2 s.
            kills_left = KILLS - kills
            remaining = max(total - done, BLOCK)
            with relay.lock:
                relay.rate = int(min(2 << 20, max(24 * 1024, remaining / (kills_left + 2) / 2.0)))
            p = Proc("run%02d" % attempt, argv, logs, cwd=bdir, env=env)
            t0 = time.monotonic()
            try:
                if mode == "delay":
                    d = rng.uniform(0.02, 1.5)
                    how = "after %.2f s" % d
                    rc = p.wait(d)
                elif mode == "progress":
                    k = rng.randint(1, 2)
                    seen = 0
                    idx = 0
                    deadline = time.monotonic() + 20
                    while seen < k and time.monotonic() < deadline and p.alive():
                        i, ev = p.wait_event(lambda e: e.get("event") == "progress",
                                             deadline - time.monotonic(), start=idx)
                        if ev is None:
                            break
                        seen += 1
                        idx = i + 1
                    d = rng.uniform(0, 0.4)
                    how = "%.2f s after progress event %d" % (d, seen)
                    rc = p.wait(d)
                else:
                    target = done + int(rng.uniform(0.1, 0.8) * remaining / (kills_left + 1))
                    p.wait_event(lambda e: e.get("event") == "progress" and
                                 e.get("verified", 0) >= target, 20)
                    d = rng.uniform(0, 0.2)
                    how = "%.2f s after verified >= %d" % (d, target)
                    rc = p.wait(d)
                killed = rc is None
                if killed:
                    os.kill(p.pid, signal.SIGKILL)
                    rc = p.wait(10)
                    kills += 1
            finally:
                p.end()
            took = time.monotonic() - t0
            evs = [e for _t, e in p.events]
            resumed = [e for e in evs if e.get("event") == "resumed"]
            progress = [e for e in evs if e.get("event") == "progress"]
            complete = [e for e in evs if e.get("event") == "complete"]
            if progress:
                done = max(done, progress[-1].get("verified", 0))
            if resumed and resumed[0].get("of"):
                done = max(done, int(total * resumed[0].get("pieces", 0) / resumed[0]["of"]))
            with open(p.err_path, errors="replace") as f:
                err = f.read()
            r = {"n": attempt, "killed": killed, "rc": rc, "magnet": use_magnet,
                 "recheck": recheck, "resumed": resumed[0] if resumed else None,
                 "verified": progress[-1].get("verified") if progress else None,
                 "complete": bool(complete), "err": err.strip()}
            runs.append(r)
            res = r["resumed"]
            R.info("run %02d" % attempt, "%s%s, relay %d KiB/s, %s %s; %s; last progress %s"
                   % ("magnet" if use_magnet else ".torrent", ", --recheck" if recheck else "",
                      relay.rate // 1024,
                      "SIGKILL" if killed else "exited %s by itself" % rc, how if killed else
                      "after %.2f s" % took,
                      "resumed %s/%s pieces (from record %s, rechecked %s)"
                      % (res.get("pieces"), res.get("of"), res.get("from_record"),
                         res.get("rechecked")) if res else "no resumed event",
                      "%s of %s bytes verified" % (r["verified"], total)
                      if r["verified"] is not None else "none"))
            if not killed:
                if rc == 0 and complete:
                    completed_early = True
                    break
                problems.append("run %d exited %s by itself: %s" % (attempt, rc, err.strip()[-300:]))
        R.check(kills >= KILLS, "SIGKILL: webseed get killed at random moments >= %d times" % KILLS,
                "%d kills in %d runs%s" % (kills, attempt, ", then it completed before the next"
                                           " kill" if completed_early else ""))
        R.check(not problems, "SIGKILL: no restart failed on its own", "; ".join(problems[:3]))

        # the last run: nothing in the way
        with relay.lock:
            relay.rate = None
        p = Proc("final", get_argv(ctx, ctx.torrent, out, state, "--peer", relay.address, "--json",
                                    "--exit-when-done", "--timeout", "30"), logs, cwd=bdir, env=env)
        try:
            rc = p.wait(180)
        finally:
            p.end()
        evs = [e for _t, e in p.events]
        resumed = [e for e in evs if e.get("event") == "resumed"]
        complete = [e for e in evs if e.get("event") == "complete"]
        if resumed:
            runs.append({"n": "final", "resumed": resumed[0], "recheck": False})
        R.check(rc == 0 and complete, "SIGKILL: the final restart completes (exit 0, complete "
                "event)", "exit %s; resumed %s; complete %s" % (
                    rc, resumed[0] if resumed else None, complete[0] if complete else None),
                more=[] if rc == 0 and complete else p.log_tail(10))
        ok, summary, probs = compare_tree(ctx.site, out)
        R.check(ok, "SIGKILL: the tree is byte-identical to the source (no stray files)", summary,
                more=probs[:8])
        reused = [r for r in runs[1:] if r.get("resumed") and (r["resumed"].get("pieces") or 0) > 0]
        recorded = [r for r in reused if (r["resumed"].get("from_record") or 0) > 0]
        R.check(reused and recorded, "SIGKILL: restarts report resumed events with pieces > 0, "
                "some of them taken from the resume record",
                "%d of %d restarts re-used pieces, %d from the record; e.g. %s" % (
                    len(reused), len(runs) - 1, len(recorded),
                    (recorded or reused)[0]["resumed"] if reused else None))
        bad = [r for r in runs if r.get("resumed") and
               not (0 <= (r["resumed"].get("pieces") or 0) <= (r["resumed"].get("of") or 0))]
        R.check(not bad, "SIGKILL: every resumed event has 0 <= pieces <= of",
                "%s" % [r["resumed"] for r in bad[:3]])
        # once more on the finished directory, trusting the record, then with --recheck:
        # every piece is found, nothing is fetched
        for label, extra in (("again", []), ("again-recheck", ["--recheck"])):
            p = Proc(label, get_argv(ctx, ctx.torrent, out, state, "--peer", relay.address,
                                     "--json", "--exit-when-done", "--timeout", "30", *extra),
                     logs, cwd=bdir, env=env)
            try:
                rc = p.wait(60)
            finally:
                p.end()
            evs = [e for _t, e in p.events]
            resumed = [e for e in evs if e.get("event") == "resumed"]
            res = resumed[0] if resumed else {}
            if extra:
                runs.append({"n": label, "resumed": res or None, "recheck": True})
            ok2, summary2, _ = compare_tree(ctx.site, out)
            R.check(rc == 0 and res and res.get("pieces") == res.get("of") and ok2,
                    "SIGKILL: a run on the finished directory%s finds every piece and exits 0"
                    % (" with --recheck" if extra else ""),
                    "exit %s, resumed %s; %s" % (rc, res or None, summary2))
        rechecked = [r for r in runs if r.get("recheck") and r.get("resumed")]
        wrong = [r for r in rechecked if r["resumed"].get("from_record")]
        R.check(rechecked and not wrong,
                "SIGKILL: --recheck runs take nothing from the resume record (from_record 0)",
                "%d --recheck runs with a resumed event%s" % (
                    len(rechecked), "; from_record: %s" % [r["resumed"] for r in wrong[:2]]
                    if wrong else ""))
    finally:
        relay.stop()
        R.info("relay", "%d bytes relayed from the seeder" % relay.bytes_down)


# ---------------------------------------------------------------------------------------------
# (c) disk full

def disk_full(ctx):
    cdir = os.path.join(ctx.work, "c")
    mnt = os.path.join(cdir, "mnt")
    state = os.path.join(cdir, "state")
    os.makedirs(mnt)
    os.makedirs(os.path.join(cdir, "home"))
    name = "disk full: a private 1 MiB tmpfs (unshare -m, mount -t tmpfs -o size=1m) can be set up"
    if not shutil.which("unshare"):
        R.fail(name, "unshare is not installed (util-linux)")
        return
    rc, outp = run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs -o size=1m webseed-full "$1" && stat -f -c "%b %S" "$1"',
                    "sh", mnt], 20)
    try:
        blocks, bsize = map(int, outp.split())
        capacity = blocks * bsize
    except ValueError:
        capacity = None
    if not R.check(rc == 0 and capacity, name, "capacity %s bytes" % capacity if capacity else
                   "exit %s: %s" % (rc, outp.strip()[-300:])):
        return
    script = ('mount -t tmpfs -o size=1m webseed-full "$1" || { echo "tmpfs setup failed" >&2; '
              'exit 97; }; shift; exec "$@"')
    # through a relay at 384 KiB/s, so that progress events come before the disk is full
    relay = Relay(("127.0.0.1", ctx.seed_port), 384 * 1024)
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", mnt,
            *get_argv(ctx, ctx.torrent, os.path.join(mnt, "out"), state, "--peer", relay.address,
                      "--json", "--exit-when-done", "--timeout", "20")]
    p = Proc("diskfull", argv, os.path.join(cdir, "logs"), cwd=cdir,
             env=dict(os.environ, HOME=os.path.join(cdir, "home")))
    t0 = time.monotonic()
    try:
        rc = p.wait(90)
    finally:
        p.end()
        relay.stop()
    took = time.monotonic() - t0
    with open(p.err_path, errors="replace") as f:
        err = f.read()
    evs = [e for _t, e in p.events]
    if rc == 97:
        R.fail(name + " (for the download)", err.strip())
        return
    line, why = one_error_line(err)
    R.check(rc == 1 and line is not None and "no space left" in line.lower(),
            "disk full: exit 1 with one error line saying 'No space left'",
            "exit %s after %.2f s: %s" % (rc, took, line or why + " " + repr(err[-300:])),
            more=[] if rc == 1 and line else p.log_tail(6))
    verified = [e.get("verified", 0) for e in evs if e.get("event") == "progress"]
    complete = [e for e in evs if e.get("event") == "complete"]
    R.check(not complete and all(v <= capacity for v in verified),
            "disk full: no progress event claims more verified bytes than fit (%d) and no "
            "complete event" % capacity,
            "%d progress events, most verified %s%s" % (len(verified), max(verified, default=None),
                                                        "; COMPLETE event" if complete else ""))
    leaked = os.listdir(mnt)
    R.check(not leaked, "disk full: nothing was written under the mount point outside the "
            "namespace", "%s" % leaked[:5])


# ---------------------------------------------------------------------------------------------
# (d) progress on a terminal

def format_bytes(n):
    """What Output.swift formatBytes prints (one decimal, rounded half away from zero)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    v, u = float(n), 0
    while v >= 1024 and u < len(units) - 1:
        v /= 1024
        u += 1
    if u == 0:
        return "%d B" % n
    tenths = int(v * 10 + 0.5)
    return "%d.%d %s" % (tenths // 10, tenths % 10, units[u])


PROGRESS_RE = re.compile(rb"\r\x1b\[K([0-9.]+ (?:B|KiB|MiB|GiB|TiB)) / ([0-9.]+ (?:B|KiB|MiB|GiB|"
                         rb"TiB))  ([0-9.]+ (?:B|KiB|MiB|GiB|TiB))/s  peers (\d+)( ETA (\d+) s)?")


def children_of(pid):
    """Pids whose parent is pid (read from /proc; for killing script's child by its id)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def terminal(ctx):
    ddir = os.path.join(ctx.work, "d")
    logs = os.path.join(ddir, "logs")
    os.makedirs(os.path.join(ddir, "home"))
    env = dict(os.environ, HOME=os.path.join(ddir, "home"))
    total = ctx.site_size
    # about 4 s for the whole download, so that the once-a-second line is drawn about 3 times
    relay = Relay(("127.0.0.1", ctx.seed_port), int(total / 4.0))
    try:
        if not shutil.which("script"):
            R.fail("terminal: script(1) is installed (util-linux)", "not found")
            return
        out = os.path.join(ddir, "out-tty")
        log = os.path.join(ddir, "tty.log")
        argv = get_argv(ctx, ctx.torrent, out, os.path.join(ddir, "state-tty"), "--peer",
                        relay.address, "--exit-when-done", "--timeout", "60")
        p = Proc("tty", ["script", "-qfec", "exec " + " ".join(shlex.quote(a) for a in argv),
                         log], logs, cwd=ddir, env=env)
        t0 = time.monotonic()
        try:
            rc = p.wait(120)
        finally:
            for pid in children_of(p.pid):     # webseed, if script is still there
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.end()
        took = time.monotonic() - t0
        try:
            with open(log, "rb") as f:
                text = f.read()
        except OSError:
            text = b""
        draws = PROGRESS_RE.findall(text)
        etas = [d for d in draws if d[4]]
        R.check(rc == 0 and b"complete: " in text,
                "terminal: webseed get under script(1) exits 0 and prints the 'complete:' line",
                "exit %s after %.1f s" % (rc, took), more=[] if rc == 0 else
                [repr(l)[:240] for l in text.splitlines()[-6:]] + p.log_tail(4))
        totals = sorted({d[1].decode() for d in draws})
        R.check(len(draws) >= 2 and etas and totals == [format_bytes(total)],
                "terminal: the progress line '\\r\\x1b[K<verified> / <total>  <rate>/s  peers <n> "
                "ETA <s> s' is drawn and redrawn (at least twice), with peers and ETA",
                "%d draws, %d with ETA, totals %s (expected %s); e.g. %r" % (
                    len(draws), len(etas), totals, format_bytes(total),
                    b"%s / %s  %s/s  peers %s%s" % (etas or draws)[-1][:5] if draws else None),
                more=[] if draws else [repr(text[-300:])])
        ok, summary, probs = compare_tree(ctx.site, out)
        R.check(ok, "terminal: the tree is byte-identical to the source", summary,
                more=probs[:8])

        # stdout a pipe (no --json): no line is drawn in place
        out = os.path.join(ddir, "out-pipe")
        p = Proc("pipe", get_argv(ctx, ctx.torrent, out, os.path.join(ddir, "state-pipe"),
                                  "--peer", relay.address, "--exit-when-done", "--timeout", "60"),
                 logs, cwd=ddir, env=env)
        t0 = time.monotonic()
        try:
            rc = p.wait(120)
        finally:
            p.end()
        took = time.monotonic() - t0
        with p.cond:
            lines = [l for _t, l in p.lines]
        drawn = [l for l in lines if "\x1b[K" in l]
        complete = [l for l in lines if l.startswith("complete: ")]
        # a download shorter than a progress tick would prove nothing
        R.check(rc == 0 and complete and not drawn and took >= 2,
                "terminal: with stdout a pipe, no progress line is drawn (no \\x1b[K) and the "
                "'complete:' line is printed",
                "exit %s after %.1f s, %d stdout lines, %d with \\x1b[K%s" % (
                    rc, took, len(lines), len(drawn), "; e.g. %r" % drawn[0][:120] if drawn else
                    ""), more=[] if rc == 0 else p.log_tail(6))
        ok, summary, probs = compare_tree(ctx.site, out)
        R.check(ok, "terminal: with stdout a pipe, the tree is byte-identical to the source",
                summary, more=probs[:8])
    finally:
        relay.stop()


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--seed", type=int, default=None, help="random seed for the kill moments")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", choices=["bad-input", "sigkill", "disk-full", "terminal"],
                    action="append")
    args = ap.parse_args()
    ctx = Ctx()
    ctx.ws = os.path.abspath(args.webseed)
    ctx.work = tempfile.mkdtemp(prefix="webseed-getcli-")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    R.info("random seed", "%d (repeat with --seed %d); work directory %s" % (seed, seed, ctx.work))
    t_begin = time.monotonic()
    seeder = None

    wd = Watchdog(900, R).start()
    try:
        rc, outp = run(["sh", "-c", '"$0" get --help 2>&1', ctx.ws], 30)
        if not R.check(rc == 0 and "webseed get" in outp, "webseed get exists",
                       "exit %s: %s" % (rc, outp.strip().splitlines()[:1])):
            return
        ctx.site = os.path.join(ctx.work, "site")
        size = ctx.site_size = make_site(ctx.site)
        ctx.torrent = os.path.join(ctx.work, "site.torrent")
        rc, outp = run([ctx.ws, "create", ctx.site, "-o", ctx.torrent, "--piece-length", "16384",
                        "--json"], 120)
        if not R.check(rc == 0, "webseed create makes the 8 MB site's torrent",
                       "%d bytes" % size if rc == 0 else outp[-300:]):
            return
        ctx.magnet = magnet_of(ctx.torrent, "site")
        seeder, ctx.seed_port = honest_seeder(R, ctx.ws, ctx.torrent, ctx.site, ctx.work)
        if ctx.seed_port is None:
            return
        ctx.seed_addr = "127.0.0.1:%d" % ctx.seed_port
        parts = args.only or ["bad-input", "sigkill", "disk-full", "terminal"]
        for part, fn in (("bad-input", lambda: bad_input(ctx)),
                         ("sigkill", lambda: kill_and_resume(ctx, rng)),
                         ("disk-full", lambda: disk_full(ctx)),
                         ("terminal", lambda: terminal(ctx))):
            if part not in parts:
                continue
            print("-- %s" % part, flush=True)
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported as a failure
                import traceback
                traceback.print_exc()
                R.fail("%s ran" % part, "exception %s: %s" % (type(e).__name__, e))
        R.check(seeder.alive(), "honest seeder still running at the end",
                "" if seeder.alive() else "exit %s" % seeder.p.poll())
    finally:
        if seeder is not None:
            seeder.stop()
        Proc.kill_all()
        wd.cancel()
        R.info("runtime", "%.1f s" % (time.monotonic() - t_begin))
        if not args.keep:
            shutil.rmtree(ctx.work, ignore_errors=True)
        print(R.summary(), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(1 if R.failed else 0)
