"""Benchmark `webseed get` against libtorrent 2.0.8 as downloaders, both fetching the same torrent
from the same libtorrent 2.0.8 seeder over TCP loopback.

usage: Tools/bench/fetch [--webseed BIN] [--libtorrent-only] [--corpus-dir DIR] [--quick] [--runs N]
                         [--only big,small] [--save-dir DIR] [--out FILE]

Without --webseed it first builds webseed with `swift build -c release --product webseed` and
uses that binary; --webseed BIN skips the build (a debug binary only checks that the script
works: its figures mean nothing). --libtorrent-only measures the libtorrent downloader alone
(the reference figures; webseed is still needed for `create`).

Corpora are Tools/bench/create's (webseedtest/corpus.py: big = one 1 GiB file, small = 20,000 files of
100 B-8 KiB) under $WEBSEED_BENCH_DIR or /tmp/webseed-bench; --quick uses the ~10x smaller ones
and 1 run. One torrent per corpus is made with `webseed create DIR` (hybrid, default piece
length: 1 MiB for big, 16 KiB for small) and served by

  seeder      webseedtest/ltbench.py seed --plaintext: a libtorrent session in its own process, plain TCP only
              (no uTP; encrypted handshakes refused), offline (no DHT/LSD/UPnP/NAT-PMP/PEX),
              otherwise default settings. A fresh seeder process for every download; its
              fast-resume data comes from an untimed first start, so it does not re-hash.

and downloaded, into a fresh empty directory (on tmpfs, /dev/shm, by default: disk writeback
and ext4 inode allocation would otherwise add noise; --save-dir to change), by

  webseed     `webseed get X.torrent -o DIR --peer 127.0.0.1:PORT --offline --listen 127.0.0.1:0
              --state-dir S --exit-when-done --json`, S a fresh empty directory. Time = spawn to
              exit of the process; CPU = its user+sys and peak RSS = its ru_maxrss, both from
              wait4 (the whole process: start-up, metadata, writing, closing, exit).
  libtorrent  webseedtest/ltbench.py fetch: a libtorrent session in its own process, TCP only,
              plaintext, offline, otherwise default settings; the .torrent added and
              connect_peer to the seeder. Time = add_torrent to torrent finished, CPU =
              getrusage(RUSAGE_SELF) of the process over the same window, both measured inside
              it: Python start-up, `import libtorrent`, creating the session and, after
              finishing, flushing and closing the files are left out. Its spawn-to-exit time,
              whole-process CPU and ru_maxrss are shown for information.

So the comparison is stacked against webseed (its start-up and shutdown count, libtorrent's do
not); a ratio that meets its target here would meet it by any fairer clock.

The page cache cannot be dropped on a shared machine, so instead everything runs warm: the
source files are read once before each case (the seeder serves them from the page cache for
both downloaders alike), and each downloader does one untimed warm-up download per case
(binaries, libraries and the seeder path are then warm for both). Then --runs (default 3)
measured downloads per downloader, alternating which one goes first (webseed first in odd
runs, libtorrent first in even ones); the tables show the median. Before each run the script
waits (bounded) for the machine to be idle and retries runs that other processes disturbed.

Every download (warm-up included) is checked byte for byte (like cmp) against its source, and
the output directory must hold exactly the torrent's files, nothing more: a wrong or partial
download fails the case instead of scoring.

Cases and targets (ratio = webseed / libtorrent):
  1 big    download time <= 1.0x; CPU s/GiB <= 1.0x; webseed peak RSS <= 100 MB (the largest of
           every webseed run: warm-up, measured runs and retries alike: a memory bound is a bound)
  2 small  download time <= 0.5x
For information: throughput, both processes' whole-life time and CPU, the seeder's CPU and how
busy its busiest thread was (when it is near 100% the seeder, not the downloader, sets the pace).

Prints a markdown table and writes it to artifacts/bench-fetch.md (bench-fetch-quick.md for
--quick, bench-fetch-libtorrent[-quick].md for --libtorrent-only) plus a .json beside it.
Exit 1 if a target is missed or a download fails or is wrong. Needs /usr/bin/python3 (Debian's
python3-libtorrent). Only loopback networking.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))

from webseedtest import corpus
from webseedtest.benchhost import (GIB, HZ, LIVE, MIB, Seeder, binary_stamp, build_release,
                                   corpus_root, cpu_model, download_root, end_children_at_exit,
                                   fmt_pl, git_head, log, machine_busy, med, one_at_a_time,
                                   require_binary, spawn, wait_binary, wait_idle, warm,
                                   write_report)
from webseedtest.procs import LT_PYTHON, program

RSS_LIMIT_MB = 100.0
DOWNLOAD_TIMEOUT = 300

# name, corpus, targets
CASES = [
    ("big", "big", {"time": 1.0, "cpu": 1.0, "rss": RSS_LIMIT_MB}),
    ("small", "small", {"time": 0.5}),
]
KINDS = {"ws": "webseed", "lt": "libtorrent"}
# ---------------------------------------------------------------------------------------
# Machine state
# ---------------------------------------------------------------------------------------

def thread_cpus(pid):
    """{tid: utime+stime seconds} of every thread of a live process ({} if it is gone)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / HZ
    return out


def same_bytes(a, b):
    """True if files a and b have the same bytes (what cmp checks)."""
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            x = fa.read(4 * MIB)
            y = fb.read(4 * MIB)
            if x != y:
                return False
            if not x:
                return True


# ---------------------------------------------------------------------------------------
# The seeder
# ---------------------------------------------------------------------------------------

def lt_seeder(torrent, data, resume, errlog):
    """The libtorrent seeder both downloaders fetch from: plain TCP only, offline."""
    return Seeder("libtorrent", program("ltbench") + ["seed", torrent, data, "--listen", "127.0.0.1:0",
                                                     "--resume", resume, "--plaintext"], errlog)


# ---------------------------------------------------------------------------------------
# Downloaders
# ---------------------------------------------------------------------------------------

def run_child(argv, timeout):
    """Runs argv to its end; returns (wall s, user+sys s, ru_maxrss KiB, exit code, stdout, stderr, killed)."""
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        p = spawn([argv[0], "--help"] if argv[0] != LT_PYTHON else [LT_PYTHON, "-c", ""], stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)  # not timed: waits out a relink (ETXTBSY), warms exec
        p.wait()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se)
        LIVE.add(p)
        reaped = [False]
        killed = [False]

        def kill():
            if not reaped[0]:
                killed[0] = True
                os.kill(p.pid, signal.SIGKILL)
        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        reaped[0] = True
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        LIVE.discard(p)
        so.seek(0)
        se.seek(0)
        return (wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, p.returncode,
                so.read().decode(errors="replace"), se.read().decode(errors="replace"), killed[0])


def json_lines(text):
    out, junk = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError
            out.append(obj)
        except ValueError:
            junk += 1
    return out, junk


def verify(out_dir, src_dir, files):
    """Compares every source file with its download byte for byte and looks for files that
    should not be there; returns a list of problems (empty = identical trees)."""
    bad = []
    for rel, size in files:
        p = os.path.join(out_dir, rel)
        try:
            got = os.path.getsize(p)
            if got != size:
                bad.append("%s has %d bytes, not %d" % (rel, got, size))
            elif not same_bytes(p, os.path.join(src_dir, rel)):
                bad.append("%s differs" % rel)
        except OSError as e:
            bad.append("%s: %s" % (rel, e.strerror))
        if len(bad) >= 5:
            bad.append("...")
            return bad
    want = {rel for rel, _ in files}
    extra = []
    for dirpath, _, names in os.walk(out_dir):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), out_dir)
            if rel not in want:
                extra.append(rel)
    parent = os.path.dirname(out_dir)
    extra += ["../" + n for n in os.listdir(parent) if n != os.path.basename(out_dir)]
    if extra:
        bad.append("files that are not the torrent's: %s%s" % (", ".join(sorted(extra)[:5]),
                                                              " ..." if len(extra) > 5 else ""))
    return bad


def downloader_argv(kind, binary, torrent, port, out, state):
    """The command line of one download into out (the torrent's root directory)."""
    if kind == "ws":
        return [binary, "get", torrent, "-o", out, "--peer", "127.0.0.1:%d" % port, "--offline",
                "--listen", "127.0.0.1:0", "--state-dir", state, "--exit-when-done", "--json"]
    return program("ltbench") + ["fetch", "--save", os.path.dirname(out), "--torrent", torrent,
            "--peer", "127.0.0.1:%d" % port, "--timeout", str(DOWNLOAD_TIMEOUT)]


def measure(kind, argv, seeder):
    b0 = machine_busy()
    own0 = os.times()
    c0 = seeder.cpu()
    th0 = thread_cpus(seeder.pid)
    wall, cpu, maxrss, rc, so, se, killed = run_child(argv, DOWNLOAD_TIMEOUT + 60)
    th1 = thread_cpus(seeder.pid)
    c1 = seeder.cpu()
    b1 = machine_busy()
    own1 = os.times()
    own = (own1.user - own0.user) + (own1.system - own0.system)
    seeder_cpu = (c1 - c0) if c0 is not None and c1 is not None else None
    busiest = max([c - th0.get(t, 0.0) for t, c in th1.items()], default=None)
    r = {"wall": wall, "proc_cpu": cpu, "rss_mb": maxrss / 1024, "rc": rc, "seeder_cpu": seeder_cpu,
         "seeder_thread": busiest, "seeder_thread_share": busiest / wall if busiest is not None else None,
         "other_cpu": max(0.0, (b1 - b0) - (seeder_cpu or 0.0) - cpu - own), "error": None, "notes": []}
    events, junk = json_lines(so)
    last_err = (se.strip().splitlines() or [""])[-1][:300]
    if killed:
        r["error"] = "killed after %d s (last line on stdout: %s; on stderr: %s)" % (
            DOWNLOAD_TIMEOUT + 60, json.dumps(events[-1])[:200] if events else "none", last_err or "none")
        return r
    if kind == "ws":
        r["time"], r["cpu"] = wall, cpu
        if junk:
            r["notes"].append("webseed get --json printed %d line(s) that are not JSON objects on stdout" % junk)
        complete = [e for e in events if e.get("event") == "complete"]
        r["complete"] = complete[-1] if complete else None
        r["events"] = sorted({e.get("event", "?") for e in events})
        if rc != 0:
            r["error"] = "exit %d: %s" % (rc, last_err or "(nothing on stderr)")
        elif not complete:
            r["error"] = "exit 0 without a complete event (events: %s)" % ", ".join(r["events"])
        else:
            r["complete_seconds"] = complete[-1].get("seconds")
        if se.strip() and rc == 0:
            r["notes"].append("webseed get exited 0 but wrote to stderr: %s" % last_err)
    else:
        fin = [e for e in events if e.get("event") in ("finished", "timeout")]
        closed = [e for e in events if e.get("event") == "closed"]
        if not fin:
            r["error"] = "exit %d, no result: %s" % (rc, last_err)
            return r
        f = fin[-1]
        r["time"], r["cpu"] = f["t"], f.get("cpu")
        r["cpu_before"] = f.get("cpu_before")
        r["closed_t"] = closed[-1]["t"] if closed else None
        if f["event"] != "finished":
            r["error"] = "timed out after %.0f s (%d payload bytes)" % (f["t"], f.get("payload_downloaded", 0))
        elif f.get("hash_failures"):
            r["error"] = "%d hash failures" % f["hash_failures"]
        elif rc != 0:
            r["error"] = "exit %d: %s" % (rc, last_err)
    return r


# ---------------------------------------------------------------------------------------

def main():
    end_children_at_exit()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", help="use this binary instead of building one with swift build -c release")
    ap.add_argument("--libtorrent-only", action="store_true",
                    help="measure the libtorrent downloader alone (reference figures, no targets)")
    ap.add_argument("--corpus-dir", default=os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench"))
    ap.add_argument("--quick", action="store_true", help="1 run, corpora scaled down ~10x (smoke test)")
    ap.add_argument("--runs", type=int, help="measured runs per downloader and case (default 3, --quick 1)")
    ap.add_argument("--only", help="comma-separated cases: big,small")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-fetch[-libtorrent][-quick].md)")
    ap.add_argument("--save-dir", help="where the downloaders' fresh output directories go (default: a "
                    "directory in /dev/shm when that tmpfs has room, else next to the corpora)")
    args = ap.parse_args()

    runs = args.runs or (1 if args.quick else 3)
    scale = 0.1 if args.quick else 1.0
    root = corpus_root(args.corpus_dir, "quick" if args.quick else "full")
    os.makedirs(os.path.dirname(root), exist_ok=True)
    kinds = ["lt"] if args.libtorrent_only else ["ws", "lt"]
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-fetch%s%s.md"
                                       % ("-libtorrent" if args.libtorrent_only else "", "-quick" if args.quick else ""))

    cases = CASES
    if args.only:
        want = set(args.only.split(","))
        cases = [c for c in CASES if c[0] in want]
        if not cases:
            sys.exit("bench: --only matched no case")

    if subprocess.run([LT_PYTHON, "-c", "import libtorrent"], capture_output=True).returncode != 0:
        sys.exit("bench: %s cannot import libtorrent (apt-get install python3-libtorrent)" % LT_PYTHON)
    binary = os.path.abspath(args.webseed) if args.webseed else build_release()
    require_binary(binary)
    for sub in ["create"] + ([] if args.libtorrent_only else ["get"]):
        p = spawn([binary, sub, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate()
        if p.returncode != 0 or ("USAGE: webseed %s " % sub) not in out:  # else it printed the top-level help
            sys.exit("bench: `%s %s --help` does not show `webseed %s`'s usage: this binary has no `%s`"
                     % (binary, sub, sub, sub))
    stamp0 = binary_stamp(binary)
    head = git_head()

    # One benchmark at a time: a second one would share the CPUs and the work directories.
    one_at_a_time(os.path.join(os.path.dirname(root), "bench-fetch.lock"), "fetch")
    work = os.path.join(os.path.dirname(root), "fetch-work")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    need = max(sum(sz for _, sz in corpus.LAYOUTS[c[1]](scale)) for c in cases)
    save_root = download_root(args.save_dir, work, need, "fetch")
    log("downloads go to %s" % save_root)

    # 1. Corpora and torrents.
    dirs, files_of, torrents, pls = {}, {}, {}, {}
    for (case, cname, _) in cases:
        d, files = corpus.ensure(root, cname, scale, log=log)
        dirs[cname], files_of[cname] = d, files
        out = os.path.join(work, "%s.torrent" % cname)
        p = spawn([binary, "create", d, "-o", out, "--force", "--json"], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
        so, se = p.communicate()
        if p.returncode != 0:
            sys.exit("bench: webseed create failed: %s" % se.strip()[-300:])
        try:
            pls[cname] = json.loads(so).get("piece_length")
        except ValueError:
            pls[cname] = None
        torrents[cname] = out

    # 2. Measurements.
    results = []
    for (case, cname, targets) in cases:
        d = dirs[cname]
        torrent = torrents[cname]
        files = files_of[cname]
        size = sum(s for _, s in files)
        log("case %s: %s (%d files, %.1f MB), %s pieces, hybrid"
            % (case, cname, len(files), size / 1e6, fmt_pl(pls[cname]) if pls[cname] else "? "))
        warm(d)
        r = {"case": case, "corpus": cname, "piece_length": pls[cname], "size": size, "files": len(files),
             "targets": targets, "notes": [], "by": {}}
        for k in kinds:
            r["by"][k] = {"time": [], "cpu": [], "wall": [], "proc_cpu": [], "rss": [], "rss_all": [], "seeder_cpu": [],
                          "seeder_thread": [], "seeder_thread_share": [],
                          "complete_seconds": [], "cpu_before": [], "closed_t": [], "warmup": None,
                          "error": None, "disturbed": 0}
        resume = os.path.join(work, "%s-seeder.resume" % case)
        errlog = os.path.join(work, "%s-seeder.stderr" % case)
        try:  # first start: hashes the data once and leaves the fast-resume data behind
            s = lt_seeder(torrent, d, resume, errlog)
            t, _, _ = s.start()
            s.wait_event("resume_saved", 60)  # or the next starts hash again
            e = s.stop()
            if e:
                r["notes"].append("seeder, first start: %s" % e)
            log("  seeder first start (hashing): ready after %.2f s" % t)
        except RuntimeError as e:
            for k in kinds:
                r["by"][k]["error"] = "seeder: %s" % e
            log("  seeder FAILED: %s" % e)

        def one(k, label):
            """One verified download by k; returns its measurements (error set on failure)."""
            save = os.path.join(save_root, k)
            state = os.path.join(work, "state-ws")
            for p in (save, state):
                if os.path.exists(p):
                    shutil.rmtree(p)
            os.makedirs(save)
            if k == "ws":
                os.makedirs(state)
            try:
                s = lt_seeder(torrent, d, resume, errlog)
                _, port, _ = s.start()
            except RuntimeError as e:
                return {"error": "seeder: %s" % e, "notes": []}
            out = os.path.join(save, os.path.basename(d))
            if k == "ws":
                wait_binary(binary)
            m = measure(k, downloader_argv(k, binary, torrent, port, out, state), s)
            r["by"][k]["rss_all"].append(m["rss_mb"])
            e = s.stop()
            if e:
                m["notes"].append("seeder: %s" % e)
            if not m["error"]:
                bad = verify(out, d, files)
                if bad:
                    m["error"] = "wrong download: " + "; ".join(bad)
            if k == "ws" and not m["error"] and m.get("complete"):
                c = m["complete"]
                if c.get("files") not in (None, len(files)) or c.get("bytes") not in (None, size):
                    m["notes"].append("webseed's complete event says %s files / %s bytes, not %d / %d"
                                      % (c.get("files"), c.get("bytes"), len(files), size))
            shutil.rmtree(save, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
            for n in m["notes"]:
                n = "%s: %s" % (KINDS[k], n)
                if n not in r["notes"]:
                    r["notes"].append(n)
            if m["error"]:
                log("  %-10s %s FAILED: %s" % (KINDS[k], label, m["error"]))
            else:
                log("  %-10s %s: %.3f s (%.0f MB/s), CPU %.2f s, process %.3f s / %.2f CPU-s / peak RSS %.1f MB, "
                    "seeder CPU %.2f s%s"
                    % (KINDS[k], label, m["time"], size / m["time"] / 1e6, m["cpu"] or -1, m["wall"], m["proc_cpu"],
                       m["rss_mb"], m["seeder_cpu"] or -1,
                       ", other processes %.2f CPU-s" % m["other_cpu"] if m["other_cpu"] > 0.1 else ""))
            return m

        # Untimed warm-up download by each.
        for k in kinds:
            b = r["by"][k]
            if b["error"]:
                continue
            wait_idle()
            m = one(k, "warm-up")
            b["warmup"] = m.get("time")
            if m["error"]:
                b["error"] = "warm-up: " + m["error"][:400]
        for i in range(runs):
            order = kinds if i % 2 == 0 else list(reversed(kinds))
            for k in order:
                b = r["by"][k]
                if b["error"]:
                    continue
                for attempt in range(4):
                    subprocess.run(["sync"])
                    wait_idle()
                    m = one(k, "run %d" % (i + 1))
                    if m["error"]:
                        b["error"] = m["error"][:400]
                        break
                    disturbed = m["other_cpu"] > max(0.25, 0.06 * m["wall"] * (os.cpu_count() or 1))
                    if disturbed:
                        log("  (other processes used %.1f CPU-s during this %.2f s run%s)"
                            % (m["other_cpu"], m["wall"], "; retrying" if attempt < 3 else ""))
                        if attempt < 3:
                            continue
                        b["disturbed"] += 1
                    for key in ("time", "cpu", "wall", "proc_cpu", "seeder_cpu", "seeder_thread", "seeder_thread_share",
                                "complete_seconds", "cpu_before", "closed_t"):
                        b[key].append(m.get(key))
                    b["rss"].append(m["rss_mb"])
                    break
        for k in kinds:
            if r["by"][k]["disturbed"]:
                r["notes"].append("%s: %d run(s) shared the CPUs with other processes even after retries"
                                  % (KINDS[k], r["by"][k]["disturbed"]))
        results.append(r)

    # 3. Report.
    stamp1 = binary_stamp(binary)
    all_ok = True
    lines = []
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rel_bin = os.path.relpath(binary, REPO) if binary.startswith(REPO + os.sep) else binary
    debug = os.sep + "debug" + os.sep in binary
    lines.append("### %s a libtorrent 2.0.8 seeder%s"
                 % ("libtorrent 2.0.8 downloading from" if args.libtorrent_only else
                    "`webseed get` vs libtorrent 2.0.8, both downloading from",
                    " (QUICK smoke run, corpora scaled ~10x down)" if args.quick else ""))
    lines.append("")
    lines.append("%s; %s, %d cores; median of %d run%s per downloader after one untimed warm-up download each, "
                 "alternating which goes first; warm page cache; TCP over loopback, plaintext; a fresh seeder "
                 "process (webseedtest/ltbench.py fetch: TCP only, offline, otherwise default settings) for each download; "
                 "fresh empty output directory in %s; every download compared byte for byte with its source. "
                 "Torrents by `webseed create` (hybrid, default piece length)."
                 % (now, cpu_model(), os.cpu_count(), runs, "s" if runs > 1 else "",
                    "tmpfs" if save_root.startswith("/dev/shm/") else save_root))
    if not args.libtorrent_only:
        lines.append("webseed: `webseed get X.torrent -o DIR --peer 127.0.0.1:PORT --offline --listen 127.0.0.1:0 "
                     "--state-dir FRESH --exit-when-done --json`, timed from spawn to exit, CPU = user+sys and "
                     "peak RSS = ru_maxrss of the whole process (wait4). libtorrent: time and CPU (getrusage) from "
                     "add_torrent to torrent finished inside its process, so its Python start-up, session set-up "
                     "and final flush/close are not counted (webseed's are). Binary: %s, built %s (repository at %s)."
                     % (rel_bin, datetime.datetime.fromtimestamp(stamp0[0]).strftime("%Y-%m-%d %H:%M:%S")
                        if stamp0 else "?", head))
    else:
        lines.append("libtorrent: time and CPU (getrusage) from add_torrent to torrent finished inside its process; "
                     "spawn → exit, whole-process CPU and ru_maxrss (wait4) for information.")
    lines.append("")
    if args.libtorrent_only:
        lines.append("| case | metric | libtorrent |")
        lines.append("|---|---|---|")
    else:
        lines.append("| case | metric | libtorrent | webseed | webseed / libtorrent | target | met? |")
        lines.append("|---|---|---|---|---|---|---|")
    footnotes = []
    if debug and not args.libtorrent_only:
        footnotes.append("**DEBUG build of webseed**: these figures only show that the script works; "
                         "measure a release build (run without --webseed)")
    if stamp1 != stamp0 and not args.libtorrent_only:
        footnotes.append("the webseed binary was replaced while this ran (rebuilt at %s): the figures may mix two builds"
                         % (datetime.datetime.fromtimestamp(stamp1[0]).strftime("%H:%M:%S") if stamp1 else "?"))

    def cell(v, fmt="%.3f"):
        return "n/a" if v is None else fmt % v

    def row(label, metric, lt_v, ws_v, fmt, ratio_target=None, abs_target=None, lt_err=None, ws_err=None):
        nonlocal all_ok
        ratio = ws_v / lt_v if (ws_v is not None and lt_v) else None
        met = "–"
        tcell = "(info)"
        if args.libtorrent_only:
            ws_cell = ""
        else:
            ws_cell = "FAIL: " + ws_err if ws_err else cell(ws_v, fmt)
            if ratio_target is not None:
                tcell = "≤ %.1f×" % ratio_target
                ok = ratio is not None and ratio <= ratio_target
                met = "yes" if ok else "**no**"
                all_ok &= ok
            elif abs_target is not None:
                tcell = abs_target[0]
                ok = ws_v is not None and ws_v <= abs_target[1]
                met = "yes" if ok else "**no**"
                all_ok &= ok
        lt_cell = "FAIL: " + lt_err if lt_err else cell(lt_v, fmt)
        if args.libtorrent_only:
            lines.append("| %s | %s | %s |" % (label, metric, lt_cell))
            return
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, metric, lt_cell, ws_cell, "%.2f×" % ratio if ratio is not None else "–", tcell, met))

    for r in results:
        for k in kinds:
            b = r["by"][k]
            for key in ("time", "cpu", "wall", "proc_cpu", "seeder_cpu", "seeder_thread", "seeder_thread_share",
                        "complete_seconds", "cpu_before", "closed_t"):
                b[key + "_median"] = med(b[key])
            b["rss_max"] = max([x for x in b["rss_all"] if x is not None], default=None)
            if b["error"]:
                all_ok = False
        lt_ = r["by"]["lt"]
        ws = r["by"].get("ws") or dict.fromkeys(lt_)  # --libtorrent-only: an empty column
        we, le = ws["error"], lt_["error"]
        gib = r["size"] / GIB
        tg = r["targets"]
        if r["case"] == "big":
            label = "1 big (%.0f MiB, %s pieces)" % (r["size"] / MIB, fmt_pl(r["piece_length"]) if r["piece_length"] else "?")
        else:
            label = "2 small (%d files, %.0f MB, %s pieces)" % (r["files"], r["size"] / 1e6,
                                                                fmt_pl(r["piece_length"]) if r["piece_length"] else "?")
        row(label, "download time, s", lt_["time_median"], ws["time_median"], "%.3f", ratio_target=tg.get("time"),
            lt_err=le, ws_err=we)
        tp = lambda b: r["size"] / b["time_median"] / 1e6 if b.get("time_median") else None  # noqa: E731
        row("", "throughput, MB/s", tp(lt_), tp(ws), "%.0f")
        per_gib = lambda b: b["cpu_median"] / gib if b.get("cpu_median") is not None else None  # noqa: E731
        if r["case"] == "big":
            row("", "downloader CPU, s/GiB", per_gib(lt_), per_gib(ws), "%.2f", ratio_target=tg.get("cpu"),
                lt_err=le, ws_err=we)
            row("", "downloader peak RSS (largest of every run, warm-up and retries too), MB", lt_["rss_max"],
                ws["rss_max"], "%.1f", abs_target=("≤ %.0f MB" % tg["rss"], tg["rss"]), lt_err=le, ws_err=we)
        else:
            row("", "downloader CPU, s", lt_["cpu_median"], ws["cpu_median"], "%.2f")
            row("", "downloader peak RSS (largest of every run), MB", lt_["rss_max"], ws["rss_max"], "%.1f")
        row("", "downloader process spawn → exit, s", lt_["wall_median"], ws["wall_median"], "%.3f")
        row("", "downloader process CPU (whole life), s", lt_["proc_cpu_median"], ws["proc_cpu_median"], "%.2f")
        row("", "seeder CPU during the download, s", lt_["seeder_cpu_median"], ws["seeder_cpu_median"], "%.2f")
        pct = lambda b: 100 * b["seeder_thread_share_median"] if b.get("seeder_thread_share_median") is not None else None  # noqa: E731
        row("", "seeder's busiest thread, % of the download process's life", pct(lt_), pct(ws), "%.0f")
        floor = med([r["by"][k]["seeder_thread_median"] for k in kinds])
        if floor and lt_["time_median"] and tg.get("time") and floor / lt_["time_median"] > 0.8 * tg["time"]:
            footnotes.append("%s: the seeder's busiest thread alone needs about %.1f CPU-s per download (median; %.0f%% "
                             "of webseed's time, %.0f%% of libtorrent's), so no downloader can get this torrent from "
                             "this seeder much faster than %.1f s = %.2f× libtorrent's time: the seeder, not the "
                             "downloader, bounds the ≤ %.1f× target here"
                             % (r["case"], floor, pct(ws) or 0, pct(lt_) or 0, floor, floor / lt_["time_median"],
                                tg["time"]))
        for k in kinds:
            xs = r["by"][k]["rss_all"]
            if len(xs) > 1:
                footnotes.append("%s: %s peak RSS per run (warm-up first, then every measured run and retry): %s MB"
                                 % (r["case"], KINDS[k], ", ".join("%.0f" % x for x in xs)))
        if "ws" in r["by"] and ws["complete_seconds_median"] is not None:
            footnotes.append("%s: webseed's own `complete` event reports %.3f s (median)"
                             % (r["case"], ws["complete_seconds_median"]))
        if lt_["cpu_before_median"] is not None and lt_["closed_t_median"] is not None:
            footnotes.append("%s: libtorrent's process used %.2f CPU-s before add_torrent (Python, import, session) "
                             "and closed its files %.3f s after add_torrent (medians); neither is in its time/CPU rows"
                             % (r["case"], lt_["cpu_before_median"], lt_["closed_t_median"]))
        warm_parts = ["%s %.3f s" % (KINDS[k], r["by"][k]["warmup"]) for k in kinds if r["by"][k]["warmup"]]
        if warm_parts:
            footnotes.append("%s: untimed warm-up downloads: %s" % (r["case"], ", ".join(warm_parts)))
        for n in r["notes"]:
            footnotes.append("%s: %s" % (r["case"], n))
    lines.append("")
    for i, n in enumerate(footnotes, 1):
        lines.append("[%d] %s  " % (i, n))
    if footnotes:
        lines.append("")
    lines.append("Peak RSS counts file-backed pages too: libtorrent 2.0 writes through mmap, so its ru_maxrss "
                 "includes the pages of the output it touched (about the whole file in case 1).")
    lines.append("")
    if args.libtorrent_only:
        lines.append("Reference run only (no webseed): every download %s." % ("verified" if all_ok else "**did not** succeed"))
    else:
        lines.append("All targets met: %s." % ("yes" if all_ok else "**no**"))
    write_report(md_path, lines, {"quick": args.quick, "runs": runs, "webseed": binary,
                                  "libtorrent_only": args.libtorrent_only, "cases": results})
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
