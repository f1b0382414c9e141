"""Benchmark `webseed seed` against a libtorrent 2.0.8 seeder, both serving the same torrent
to the same libtorrent 2.0.8 leecher over TCP loopback.

usage: Tools/bench/seed [--webseed BIN] [--corpus-dir DIR] [--quick] [--runs N]
                        [--only big,small,site8,ttfb,site,sitemag,repeat10] [--out FILE]

Corpora are Tools/bench/create's (webseedtest/corpus.py: big = one 1 GiB file, small = 20,000 files
of 100 B-8 KiB, site = ~150 MB / 2,000 files) under $WEBSEED_BENCH_DIR or /tmp/webseed-bench;
--quick uses the ~10x smaller ones and 1 run. One torrent per corpus is made with
`webseed create DIR --piece-length PL` (hybrid; 1 MiB pieces for big, 16 KiB for small,
64 KiB for site) and served by

  webseed     `webseed seed X.torrent --data DIR --listen 127.0.0.1:0 --offline --state-dir S
              --json`, ready at {"event":"ready"}; S is made by a warm-up start (not timed) so
              every measured start uses the resume record
  libtorrent  webseedtest/ltbench.py seed: a libtorrent session in its own process, TCP only
              (no uTP), offline, otherwise default settings; its fast-resume data is saved by
              a warm-up start too, so it does not re-hash either

Each run starts a fresh seeder process and then the downloader(s): webseedtest/ltbench.py leech,
a libtorrent 2.0.8 session in its own process, TCP only, plaintext handshake (the encrypted
handshake's fallback is case 4's subject), fresh empty save directory (on tmpfs, /dev/shm, by
default: disk writeback and ext4 inode allocation otherwise dominate the small-file case and
add noise; --save-dir to change), the .torrent file added and connect_peer to the seeder. Download time runs from add_torrent to torrent_finished /
is_seeding inside the leecher; then the leecher flushes, removes the torrent and exits, and
every downloaded file is compared (SHA-256) with its source. Seeder CPU is utime+stime of the
seeder process (/proc/PID/stat) from just before the leechers start to the moment the last
one finished, per GiB of payload served; peak RSS is the seeder's VmHWM.

Cases and targets:
  1 big    download time webseed <= 0.8x libtorrent's; seeder CPU s/GiB <= 0.5x
  2 small  download time webseed <= 0.33x libtorrent's
  3 site8  site served to eight leechers at once: webseed peak RSS <= 64 MB
  4 ttfb   time to first payload byte from the site's v2 magnet (urn:btmh + x.pe from the
           seeder's site event) with libtorrent's DEFAULT settings (uTP first, encryption
           enabled; only DHT/LSD/UPnP/NAT-PMP off): webseed <= 1 s. References: the TCP-only
           libtorrent seeder and a libtorrent seeder with default settings.
  5 site     the site (~2,000 files) to one leecher from the hybrid .torrent: download time
             webseed <= 0.8x libtorrent's; seeder CPU s/GiB <= 0.5x
  6 sitemag  the same from the site's v2 magnet (urn:btmh + dn + x.pe: metadata and piece
             layers come over the wire; TCP only, plaintext): same targets
  7 repeat10  ten libtorrent leechers with DEFAULT settings, one after another (each its own
           process, each starting when the one before has its first byte), all from 127.0.0.1,
           each fetching Samples/site from the v2 magnet (urn:btmh + x.pe) of one
           `webseed seed Samples/site` (fresh state dir): time to metadata (add_torrent →
           metadata_received_alert inside the leecher) of each. Target: every one <= 0.6 s, the
           first and the tenth alike (a client whose uTP SYN gets no connect-back waits for
           libtorrent's TCP fallback: about 1.5 s). webseed only; --runs sequences.

Median of 3 runs (--runs). Waits (bounded) for the machine to be idle before each run and
retries runs that other processes disturbed. Prints a markdown table and writes it to
artifacts/bench-seed.md (artifacts/bench-seed-quick.md for --quick) plus a .json beside it.
Exit 1 if a target is missed or a download is wrong. Needs /usr/bin/python3 (Debian's
python3-libtorrent). Only loopback networking.
"""

import argparse
import datetime
import json
import os
import selectors
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))

from webseedtest import corpus
from webseedtest.benchhost import (GIB, HZ, KIB, LIVE, MIB, Seeder, binary_stamp, corpus_root,
                                   cpu_model, download_root, end_children_at_exit, fmt_pl, git_head,
                                   log, machine_busy, med, one_at_a_time, proc_cpu, sha256_file,
                                   wait_binary, wait_idle, warm, write_report)
from webseedtest.procs import LT_PYTHON, program

RSS_LIMIT_MB = 64.0
TTFB_LIMIT_S = 1.0
REPEAT_LIMIT_S = 0.6
REPEAT_N = 10
SAMPLE = os.path.join(REPO, "Samples", "site")

# name, corpus, piece length, leechers
CASES = [
    ("big", "big", 1 * MIB, 1),
    ("small", "small", 16 * KIB, 1),
    ("site8", "site", 64 * KIB, 8),
    ("ttfb", "site", 64 * KIB, 1),
    ("site", "site", 64 * KIB, 1),
    ("sitemag", "site", 64 * KIB, 1),
]
SEEDERS = {"ws": "webseed", "lt": "libtorrent", "ltd": "libtorrent (defaults: uTP + encryption)"}


# ---------------------------------------------------------------------------------------
# Machine state
# ---------------------------------------------------------------------------------------

def proc_max_thread_cpu(pid):
    """CPU seconds of the busiest thread of a live process, or None."""
    best = None
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        c = (int(fields[11]) + int(fields[12])) / HZ
        best = c if best is None else max(best, c)
    return best


# ---------------------------------------------------------------------------------------
# Seeders
# ---------------------------------------------------------------------------------------

def seeder_argv(kind, binary, torrent, data, state):
    if kind == "ws":
        return [binary, "seed", torrent, "--data", data, "--listen", "127.0.0.1:0", "--offline",
                "--state-dir", state, "--json"]
    argv = program("ltbench") + ["seed", torrent, data, "--listen", "127.0.0.1:0", "--resume",
            os.path.join(state, "lt.resume")]
    if kind == "ltd":
        argv.append("--default-settings")
    return argv


def v2_magnet(magnet):
    """The seeder's magnet reduced to its urn:btmh xt, dn and x.pe."""
    q = magnet.split("?", 1)[1]
    keep = []
    for part in q.split("&"):
        k, _, v = part.partition("=")
        if (k == "xt" and v.startswith("urn:btmh:")) or k in ("dn", "x.pe"):
            keep.append(part)
    return "magnet:?" + "&".join(keep)


# ---------------------------------------------------------------------------------------
# Leechers
# ---------------------------------------------------------------------------------------

def run_leechers(n, save_dirs, extra, seeder, timeout):
    """Starts n leecher processes; returns a dict of measurements (or raises)."""
    b0 = machine_busy()
    own0 = os.times()
    c0 = seeder.cpu()
    t0 = time.perf_counter()
    procs = []
    sel = selectors.DefaultSelector()
    for i in range(n):
        argv = program("ltbench") + ["leech", "--save", save_dirs[i]] + extra
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        LIVE.add(p)
        procs.append(p)
        sel.register(p.stdout, selectors.EVENT_READ, i)
    bufs = [b""] * n
    events = [[] for _ in range(n)]
    done = [None] * n  # the finished/stopped/timeout event
    done_at = [None] * n
    c1 = b1 = t_all = None
    lt_cpu = 0.0
    lt_thread = 0.0
    deadline = time.time() + timeout
    open_fds = n
    while open_fds and time.time() < deadline:
        for key, _ in sel.select(timeout=0.5):
            i = key.data
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_fds -= 1
                continue
            bufs[i] += chunk
            while b"\n" in bufs[i]:
                line, bufs[i] = bufs[i].split(b"\n", 1)
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                events[i].append(e)
                if e.get("event") in ("finished", "stopped", "timeout") and done[i] is None:
                    done[i] = e
                    done_at[i] = time.perf_counter() - t0
                    if all(d is not None for d in done) and c1 is None:
                        # Every leecher has its data: the transfer window ends here.
                        c1 = seeder.cpu()
                        b1 = machine_busy()
                        t_all = time.perf_counter() - t0
                        for p in procs:
                            c = proc_cpu(p.pid)
                            lt_cpu += c or 0.0
                            lt_thread = max(lt_thread, proc_max_thread_cpu(p.pid) or 0.0)
    sel.close()
    errs = []
    for i, p in enumerate(procs):
        try:
            p.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            errs.append("leecher %d killed at the time limit" % i)
        LIVE.discard(p)
        stderr = p.stderr.read().decode(errors="replace").strip()
        p.stderr.close()
        p.stdout.close()
        if p.returncode != 0:
            errs.append("leecher %d exit %s: %s" % (i, p.returncode, (stderr.splitlines() or [""])[-1][:200]))
        d = done[i]
        if d is None or d.get("event") == "timeout":
            errs.append("leecher %d did not finish: %s" % (i, json.dumps(d)[:300] if d else "no result"))
        elif d.get("hash_failures"):
            errs.append("leecher %d saw %d hash failures" % (i, d["hash_failures"]))
    if c1 is None:
        c1, b1, t_all = seeder.cpu(), machine_busy(), time.perf_counter() - t0
    own1 = os.times()
    own = (own1.user - own0.user) + (own1.system - own0.system)
    seeder_cpu = (c1 - c0) if c0 is not None and c1 is not None else None
    other = max(0.0, (b1 - b0) - (seeder_cpu or 0.0) - lt_cpu - own)
    return {"results": done, "done_at": done_at, "t_all": t_all, "seeder_cpu": seeder_cpu,
            "leecher_cpu": lt_cpu, "leecher_thread_cpu": lt_thread, "other_cpu": other, "errors": errs}


def repeat_case(binary, work, save_root, runs):
    """Case 5: REPEAT_N default-settings leechers one after another from one webseed seeder of
    Samples/site. Returns {"metadata": [[s per leecher] per run], "first_byte": [...], "error"}."""
    r = {"metadata": [], "first_byte": [], "error": None}
    for i in range(runs):
        state = os.path.join(work, "state-repeat-%d" % i)
        os.makedirs(state)
        wait_idle()
        wait_binary(binary)
        try:
            s = Seeder("ws", [binary, "seed", SAMPLE, "--listen", "127.0.0.1:0", "--offline", "--state-dir", state,
                              "--json"], os.path.join(work, "repeat-ws.stderr"))
            _, _, magnet = s.start()
        except RuntimeError as e:
            r["error"] = str(e)
            break
        meta, fb = [], []
        try:
            for j in range(REPEAT_N):
                sd = os.path.join(save_root, "repeat-%d" % j)
                shutil.rmtree(sd, ignore_errors=True)
                m = run_leechers(1, [sd], ["--magnet", v2_magnet(magnet), "--default-settings", "--first-byte-only",
                                           "--timeout", "60"], s, 90)
                shutil.rmtree(sd, ignore_errors=True)
                if m["errors"]:
                    raise RuntimeError("leecher %d of %d: %s" % (j + 1, REPEAT_N, "; ".join(m["errors"])[:300]))
                meta.append(m["results"][0].get("metadata"))
                fb.append(m["results"][0].get("first_byte"))
        except RuntimeError as e:
            r["error"] = str(e)
        finally:
            s.stop()
        if r["error"]:
            log("  repeat10 FAILED: %s" % r["error"])
            break
        r["metadata"].append(meta)
        r["first_byte"].append(fb)
        log("  repeat10 run %d: time to metadata %s s" % (i + 1, ", ".join("%.3f" % x if x is not None else "?"
                                                                       for x in meta)))
    return r


def verify(save_dir, name, src_hashes):
    """Compares every source file with its download; returns a list of problems."""
    bad = []
    for rel, digest in src_hashes.items():
        p = os.path.join(save_dir, name, rel)
        try:
            if sha256_file(p) != digest:
                bad.append("%s differs" % rel)
        except OSError as e:
            bad.append("%s: %s" % (rel, e.strerror))
        if len(bad) >= 5:
            bad.append("...")
            break
    return bad


# ---------------------------------------------------------------------------------------

def main():
    end_children_at_exit()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", default=os.path.join(REPO, ".build", "release", "webseed"))
    ap.add_argument("--corpus-dir", default=os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench"))
    ap.add_argument("--quick", action="store_true", help="1 run, corpora scaled down ~10x (smoke test)")
    ap.add_argument("--runs", type=int, help="runs per seeder and case (default 3, --quick 1)")
    ap.add_argument("--only", help="comma-separated cases: big,small,site8,ttfb,site,sitemag,repeat10")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-seed[-quick].md)")
    ap.add_argument("--save-dir", help="where the leechers' fresh save directories go (default: a directory "
                    "in /dev/shm when that tmpfs has room, so disk writeback and ext4 inode allocation "
                    "do not blur the seeders' figures; else next to the corpora)")
    args = ap.parse_args()

    runs = args.runs or (1 if args.quick else 3)
    scale = 0.1 if args.quick else 1.0
    root = corpus_root(args.corpus_dir, "quick" if args.quick else "full")
    os.makedirs(os.path.dirname(root), exist_ok=True)
    # One benchmark at a time: a second one would share the CPUs and the work directories.
    one_at_a_time(os.path.join(os.path.dirname(root), "bench-seed.lock"), "seed")
    work = os.path.join(os.path.dirname(root), "seed-work")
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-seed%s.md" % ("-quick" if args.quick else ""))

    binary = os.path.abspath(args.webseed)
    for _ in range(30):  # the release binary may be replaced while we start
        if os.access(binary, os.X_OK):
            break
        time.sleep(2)
    if not os.access(binary, os.X_OK):
        sys.exit("bench: webseed binary %s not found (build it: swift build -c release)" % binary)
    if subprocess.run([binary, "seed", "--help"], capture_output=True).returncode != 0:
        sys.exit("bench: `%s seed --help` failed" % binary)
    stamp0 = binary_stamp(binary)
    head = git_head()
    if subprocess.run([LT_PYTHON, "-c", "import libtorrent"], capture_output=True).returncode != 0:
        sys.exit("bench: %s cannot import libtorrent (apt-get install python3-libtorrent)" % LT_PYTHON)

    cases = CASES
    repeat = True
    if args.only:
        want = set(args.only.split(","))
        cases = [c for c in CASES if c[0] in want]
        repeat = "repeat10" in want
        if not cases and not repeat:
            sys.exit("bench: --only matched no case")

    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    need = 0
    for (case, cname, _, n) in cases:
        need = max(need, n * sum(sz for _, sz in corpus.LAYOUTS[cname](scale)))
    save_root = download_root(args.save_dir, work, need, "seed")
    log("leechers save into %s" % save_root)

    # 1. Corpora, torrents, source hashes.
    dirs, files_of, torrents, src_hashes = {}, {}, {}, {}
    for cname in sorted({c[1] for c in cases}, key=["site", "big", "small"].index):
        d, files = corpus.ensure(root, cname, scale, log=log)
        dirs[cname], files_of[cname] = d, files
    for (case, cname, pl, _) in cases:
        key = (cname, pl)
        if key in torrents:
            continue
        out = os.path.join(work, "%s-%d.torrent" % (cname, pl))
        r = subprocess.run([binary, "create", dirs[cname], "--piece-length", str(pl), "-o", out, "--force"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: webseed create failed: %s" % r.stderr.strip()[-300:])
        torrents[key] = out
        if cname not in src_hashes:
            log("hashing %s source files for verification ..." % cname)
            src_hashes[cname] = {rel: sha256_file(os.path.join(dirs[cname], rel)) for rel, _ in files_of[cname]}

    # 2. Measurements.
    results = []
    for (case, cname, pl, nleech) in cases:
        d = dirs[cname]
        torrent = torrents[(cname, pl)]
        size = sum(s for _, s in files_of[cname])
        kinds = ["ws", "lt", "ltd"] if case == "ttfb" else ["ws", "lt"]
        log("case %s: %s (%d files, %.1f MB), %s pieces, %d leecher%s"
            % (case, cname, len(files_of[cname]), size / 1e6, fmt_pl(pl), nleech, "s" if nleech > 1 else ""))
        warm(d)
        r = {"case": case, "corpus": cname, "piece_length": pl, "leechers": nleech, "size": size,
             "files": len(files_of[cname]), "notes": [], "by": {}}
        states = {}
        for k in kinds:
            st = os.path.join(work, "state-%s-%s" % (case, k))
            os.makedirs(st)
            states[k] = st
            r["by"][k] = {"time": [], "t_all": [], "first_byte": [], "metadata": [], "cpu_per_gib": [],
                          "leecher_cpu": [], "leecher_thread": [], "seeder_cpu": [],
                          "rss": [], "start": [], "first_start": None, "error": None, "disturbed": 0}
            # Warm-up start: hashes the data once and leaves the resume record behind.
            if k == "ws":
                wait_binary(binary)
            try:
                s = Seeder(k, seeder_argv(k, binary, torrent, d, st), os.path.join(work, "%s-%s.stderr" % (case, k)))
                t, _, _ = s.start()
                r["by"][k]["first_start"] = t
                r["by"][k]["first_start_rss"] = s.hwm_mb()
                if k != "ws":
                    s.wait_event("resume_saved", 60)  # or the next starts hash again
                e = s.stop()
                if e:
                    r["notes"].append("%s, warm-up start: %s" % (SEEDERS[k], e))
                log("  %-10s warm-up start (hashing): ready after %.2f s" % (SEEDERS[k].split(" ")[0], t))
            except RuntimeError as e:
                r["by"][k]["error"] = str(e)
                log("  %s FAILED: %s" % (SEEDERS[k], e))
        for i in range(runs):
            order = kinds if i % 2 == 0 else list(reversed(kinds))
            for k in order:
                b = r["by"][k]
                if b["error"]:
                    continue
                for attempt in range(4):
                    subprocess.run(["sync"])
                    wait_idle()
                    save_dirs = [os.path.join(save_root, "dl-%d" % j) for j in range(nleech)]
                    for sd in save_dirs:
                        if os.path.exists(sd):
                            shutil.rmtree(sd)
                    if k == "ws":
                        wait_binary(binary)
                    try:
                        s = Seeder(k, seeder_argv(k, binary, torrent, d, states[k]),
                                   os.path.join(work, "%s-%s.stderr" % (case, k)))
                        t_start, port, magnet = s.start()
                    except RuntimeError as e:
                        b["error"] = str(e)
                        break
                    if case == "ttfb":
                        extra = ["--magnet", v2_magnet(magnet), "--default-settings", "--first-byte-only",
                                 "--timeout", "60"]
                    elif case == "sitemag":
                        extra = ["--magnet", v2_magnet(magnet), "--plaintext", "--timeout", "600"]
                    else:
                        extra = ["--torrent", torrent, "--peer", "127.0.0.1:%d" % port, "--plaintext",
                                 "--timeout", "600"]
                    m = run_leechers(nleech, save_dirs, extra, s, 900)
                    rss = s.hwm_mb()
                    e = s.stop()
                    if e:
                        note = "%s, measured run: %s" % (SEEDERS[k], e)
                        if note not in r["notes"]:
                            r["notes"].append(note)
                    errs = list(m["errors"])
                    if not errs and case != "ttfb":
                        for j, sd in enumerate(save_dirs):
                            bad = verify(sd, os.path.basename(d), src_hashes[cname])
                            if bad:
                                errs.append("leecher %d: wrong data: %s" % (j, "; ".join(bad)))
                    for sd in save_dirs:
                        shutil.rmtree(sd, ignore_errors=True)
                    if errs:
                        b["error"] = "; ".join(errs)[:400]
                        log("  %s FAILED: %s" % (SEEDERS[k], b["error"]))
                        break
                    wall = m["t_all"]
                    disturbed = m["other_cpu"] > max(0.25, 0.06 * wall * (os.cpu_count() or 1))
                    if disturbed:
                        log("  (other processes used %.1f CPU-s during this %.2f s run%s)"
                            % (m["other_cpu"], wall, "; retrying" if attempt < 3 else ""))
                        if attempt < 3:
                            continue
                        b["disturbed"] += 1
                    res = m["results"]
                    times = [x["t"] for x in res]
                    fb = [x["first_byte"] for x in res]
                    b["time"].append(med(times))
                    b["t_all"].append(wall)
                    b["first_byte"].append(med(fb))
                    b["metadata"].append(med([x.get("metadata") for x in res]))
                    b["rss"].append(rss)
                    b["start"].append(t_start)
                    b["leecher_cpu"].append(m["leecher_cpu"])
                    b["leecher_thread"].append(m["leecher_thread_cpu"])
                    b["seeder_cpu"].append(m["seeder_cpu"])
                    served = size * nleech
                    if m["seeder_cpu"] is not None and case != "ttfb":
                        b["cpu_per_gib"].append(m["seeder_cpu"] / (served / GIB))
                    if case == "ttfb":
                        log("  %-10s run %d: first byte %.3f s (metadata %s s), seeder start %.2f s"
                            % (SEEDERS[k].split(" ")[0] + ("-def" if k == "ltd" else ""), i + 1, fb[0],
                               "%.3f" % res[0]["metadata"] if res[0].get("metadata") is not None else "?", t_start))
                    else:
                        log("  %-10s run %d: download %.3f s (%s%.0f MB/s), all done %.3f s, first byte %.3f s, "
                            "seeder CPU %.2f s (%.2f s/GiB), leecher CPU %.2f s, peak RSS %.1f MB, seeder start %.2f s"
                            % (SEEDERS[k], i + 1, med(times), "median of %d, " % nleech if nleech > 1 else "",
                               size / med(times) / 1e6, wall, med(fb), m["seeder_cpu"] or -1,
                               b["cpu_per_gib"][-1] if b["cpu_per_gib"] else -1, m["leecher_cpu"], rss or -1, t_start))
                    break
        for k in kinds:
            if r["by"][k]["disturbed"]:
                r["notes"].append("%s: %d run(s) shared the CPUs with other processes even after retries"
                                  % (SEEDERS[k], r["by"][k]["disturbed"]))
        results.append(r)

    repeat_r = None
    if repeat:
        log("case repeat10: %d libtorrent leechers (default settings) one after another, Samples/site v2 magnet"
            % REPEAT_N)
        repeat_r = repeat_case(binary, work, save_root, runs)

    # 3. Report.
    stamp1 = binary_stamp(binary)
    all_met = True
    lines = []
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines.append("### `webseed seed` vs a libtorrent 2.0.8 seeder%s"
                 % (" (QUICK smoke run, corpora scaled ~10x down)" if args.quick else ""))
    lines.append("")
    lines.append("%s; %s, %d cores; median of %d run%s per seeder; TCP over loopback; downloader: libtorrent 2.0.8 "
                 "(own process, TCP only, plaintext, fresh save dir in %s, .torrent + connect_peer); every download "
                 "verified by SHA-256 against the source. Download time = add_torrent → torrent finished in the "
                 "leecher. Seeder CPU = user+sys of the seeder process during the transfer, per GiB served. "
                 "Peak RSS = seeder's VmHWM (the start-up uses the resume record made by an untimed warm-up start). "
                 "webseed: %s, built %s (repository at %s)."
                 % (now, cpu_model(), os.cpu_count(), runs, "s" if runs > 1 else "",
                    "tmpfs" if save_root.startswith("/dev/shm/") else save_root,
                    os.path.relpath(binary, REPO) if binary.startswith(REPO + os.sep) else binary,
                    datetime.datetime.fromtimestamp(stamp0[0]).strftime("%Y-%m-%d %H:%M:%S") if stamp0 else "?",
                    head))
    lines.append("")
    lines.append("| case | metric | libtorrent seeder | webseed | webseed / libtorrent | target | met? |")
    lines.append("|---|---|---|---|---|---|---|")
    footnotes = []
    if stamp1 != stamp0:
        footnotes.append("the webseed binary was replaced while this ran (rebuilt at %s): the figures may mix two builds"
                         % (datetime.datetime.fromtimestamp(stamp1[0]).strftime("%H:%M:%S") if stamp1 else "?"))

    def cell(v, fmt="%.3f"):
        return "n/a" if v is None else fmt % v

    def row(label, metric, lt_v, ws_v, fmt, target=None, ratio_target=None, abs_target=None, lt_err=None, ws_err=None):
        nonlocal all_met
        ratio = ws_v / lt_v if (ws_v is not None and lt_v) else None
        met = "–"
        tcell = "(info)"
        if ratio_target is not None:
            tcell = "≤ %.2g×" % ratio_target
            ok = ratio is not None and ratio <= ratio_target
            met = "yes" if ok else "**no**"
            all_met &= ok
        elif abs_target is not None:
            tcell = abs_target[0]
            ok = ws_v is not None and ws_v <= abs_target[1]
            met = "yes" if ok else "**no**"
            all_met &= ok
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, metric, "FAIL: " + lt_err if lt_err else cell(lt_v, fmt),
            "FAIL: " + ws_err if ws_err else cell(ws_v, fmt),
            "%.2f×" % ratio if ratio is not None else "–", tcell, met))

    for r in results:
        ws, lt_ = r["by"]["ws"], r["by"]["lt"]
        we, le = ws["error"], lt_["error"]
        if we or le:
            all_met = False
        mb = r["size"] / 1e6
        if r["case"] == "ttfb":
            label = "4 ttfb: site v2 magnet, leecher with libtorrent defaults"
        elif r["case"] == "site8":
            label = "3 site (%d files, %.0f MB) to 8 leechers at once" % (r["files"], mb)
        elif r["case"] == "big":
            label = "1 big (%.0f MiB, %s pieces)" % (r["size"] / MIB, fmt_pl(r["piece_length"]))
        elif r["case"] == "site":
            label = "5 site (%d files, %.0f MB, %s pieces), hybrid .torrent" % (r["files"], mb, fmt_pl(r["piece_length"]))
        elif r["case"] == "sitemag":
            label = "6 site (%d files, %.0f MB), v2 magnet (metadata and layers over the wire)" % (r["files"], mb)
        else:
            label = "2 small (%d files, %.0f MB, %s pieces)" % (r["files"], mb, fmt_pl(r["piece_length"]))
        for k in ("ws", "lt", "ltd"):
            if k not in r["by"]:
                continue
            b = r["by"][k]
            for key in ("time", "t_all", "first_byte", "metadata", "cpu_per_gib", "rss", "start",
                        "leecher_cpu", "leecher_thread", "seeder_cpu"):
                b[key + "_median"] = med(b[key])
            b["rss_max"] = max([x for x in b["rss"] if x is not None], default=None)
        if r["case"] == "ttfb":
            row(label, "time to first payload byte, s", lt_["first_byte_median"], ws["first_byte_median"], "%.3f",
                abs_target=("≤ %.0f s" % TTFB_LIMIT_S, TTFB_LIMIT_S), lt_err=le, ws_err=we)
            row("", "time to metadata, s", lt_["metadata_median"], ws["metadata_median"], "%.3f", lt_err=le, ws_err=we)
            ltd = r["by"]["ltd"]
            lines.append("| | reference: libtorrent seeder with default settings (uTP + encryption on) | "
                         "first byte %s s, metadata %s s | | | | |"
                         % ("FAIL: " + ltd["error"] if ltd["error"] else cell(ltd["first_byte_median"]),
                            cell(ltd["metadata_median"])))
        elif r["case"] == "site8":
            row(label, "seeder peak RSS, MB", lt_["rss_max"], ws["rss_max"], "%.1f",
                abs_target=("≤ %.0f MB" % RSS_LIMIT_MB, RSS_LIMIT_MB), lt_err=le, ws_err=we)
            row("", "all 8 downloads done (from spawning the leechers), s", lt_["t_all_median"], ws["t_all_median"], "%.3f")
            row("", "per-leecher download time (median of 8), s", lt_["time_median"], ws["time_median"], "%.3f")
            row("", "seeder CPU, s/GiB served", lt_["cpu_per_gib_median"], ws["cpu_per_gib_median"], "%.2f")
            row("", "CPU of the 8 leechers together (incl. start-up), s", lt_["leecher_cpu_median"], ws["leecher_cpu_median"], "%.2f")
        else:
            tgt = 0.33 if r["case"] == "small" else 0.8
            row(label, "download time, s", lt_["time_median"], ws["time_median"], "%.3f", ratio_target=tgt,
                lt_err=le, ws_err=we)
            tp = lambda b: r["size"] / b["time_median"] / 1e6 if b["time_median"] else None  # noqa: E731
            row("", "throughput, MB/s", tp(lt_), tp(ws), "%.0f")
            row("", "seeder CPU, s/GiB served", lt_["cpu_per_gib_median"], ws["cpu_per_gib_median"], "%.2f",
                ratio_target=None if r["case"] == "small" else 0.5)
            row("", "seeder peak RSS, MB", lt_["rss_max"], ws["rss_max"], "%.1f")
            row("", "leecher CPU (incl. start-up), s", lt_["leecher_cpu_median"], ws["leecher_cpu_median"], "%.2f")
            row("", "leecher: add_torrent → first payload byte, s", lt_["first_byte_median"], ws["first_byte_median"], "%.3f")
        if r["case"] in ("big", "small") and not we and not le:
            parts = []
            for k, b in (("ws", ws), ("lt", lt_)):
                if not (b["t_all_median"] and b["seeder_cpu_median"] is not None and b["leecher_cpu_median"]):
                    continue
                w = b["t_all_median"]
                parts.append("%s: seeder %.2f + leecher %.2f CPU-s in %.2f s (%.0f%% of %d cores); the leecher's "
                             "busiest thread %.2f s (%.0f%% of the time)"
                             % (SEEDERS[k], b["seeder_cpu_median"], b["leecher_cpu_median"], w,
                                100 * (b["seeder_cpu_median"] + b["leecher_cpu_median"]) / (w * (os.cpu_count() or 1)),
                                os.cpu_count() or 1, b["leecher_thread_median"] or 0,
                                100 * (b["leecher_thread_median"] or 0) / w))
            if parts:
                footnotes.append("%s, CPU while downloading (medians; leecher CPU includes its start-up): %s"
                                 % (r["case"], "; ".join(parts)))
        for n in r["notes"]:
            footnotes.append("%s: %s" % (r["case"], n))
    if repeat_r is not None:
        seqs = repeat_r["metadata"]
        err = repeat_r["error"]
        firsts = [q[0] for q in seqs if q and q[0] is not None]
        tenths = [q[-1] for q in seqs if len(q) == REPEAT_N and q[-1] is not None]
        worst = [max(x for x in q if x is not None) for q in seqs if q and any(x is not None for x in q)]
        if err or not seqs or any(x is None for q in seqs for x in q):
            all_met = False
        label = "7 repeat10: %d leechers with libtorrent defaults one after another from 127.0.0.1, Samples/site v2 magnet" \
            % REPEAT_N
        row(label, "time to metadata of the 1st, s", None, med(firsts), "%.3f",
            abs_target=("≤ %.1f s" % REPEAT_LIMIT_S, REPEAT_LIMIT_S), ws_err=err)
        row("", "time to metadata of the 10th, s", None, med(tenths), "%.3f",
            abs_target=("≤ %.1f s" % REPEAT_LIMIT_S, REPEAT_LIMIT_S), ws_err=err)
        row("", "slowest of the %d, s" % REPEAT_N, None, med(worst), "%.3f",
            abs_target=("≤ %.1f s" % REPEAT_LIMIT_S, REPEAT_LIMIT_S), ws_err=err)
        for n, q in enumerate(seqs, 1):
            footnotes.append("repeat10, run %d, time to metadata of leechers 1–%d: %s s; first byte: %s s" % (
                n, REPEAT_N, ", ".join("%.3f" % x if x is not None else "?" for x in q),
                ", ".join("%.3f" % x if x is not None else "?" for x in repeat_r["first_byte"][n - 1])))
    lines.append("")
    lines.append("Seeder start-up (spawn → ready; first = hashing the data with no resume record, then median of the "
                 "measured starts that used it):")
    lines.append("")
    lines.append("| case | webseed first | webseed warm | libtorrent first | libtorrent warm |")
    lines.append("|---|---|---|---|---|")
    for r in results:
        ws, lt_ = r["by"]["ws"], r["by"]["lt"]
        lines.append("| %s | %s | %s | %s | %s |" % (r["case"], cell(ws["first_start"], "%.2f s"), cell(ws["start_median"], "%.2f s"),
                                                    cell(lt_["first_start"], "%.2f s"), cell(lt_["start_median"], "%.2f s")))
    lines.append("")
    for i, n in enumerate(footnotes, 1):
        lines.append("[%d] %s  " % (i, n))
    if footnotes:
        lines.append("")
    lines.append("Peak RSS counts file-backed pages too: libtorrent 2.0 reads through mmap, so its VmHWM includes the "
                 "page cache it touched (about the whole 1 GiB file in case 1). Leecher times include libtorrent's "
                 "start: it connects to the peer on its second tick, about 0.5 s after add_torrent, whoever seeds.")
    lines.append("")
    lines.append("All targets met: %s." % ("yes" if all_met else "**no**"))
    write_report(md_path, lines, {"quick": args.quick, "runs": runs, "webseed": binary, "cases": results,
                                  "repeat10": repeat_r})
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
