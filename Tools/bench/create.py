"""Benchmark `webseed create` against libtorrent 2.0.8's torrent creator.

usage: Tools/bench/create [--webseed BIN] [--corpus-dir DIR] [--quick] [--runs N]
                          [--only site:v2,big:v2,...] [--out FILE]

Builds three deterministic corpora (site ~150 MB / 2,000 files, big 1 GiB, small 20,000
files) under $WEBSEED_BENCH_DIR or /tmp/webseed-bench (reused when their stamp matches),
runs both creators as subprocesses on a warm page cache, compares their info hashes,
measures `openssl speed` as the hashing ceiling and writes a markdown table to
artifacts/bench-create.md (artifacts/bench-create-quick.md for --quick). Needs
/usr/bin/python3 (Debian's python3-libtorrent).

What is timed, so that each side is timed as its user meets it:
  webseed     `webseed create …` as a user runs it: wall time from spawn to exit (its own
              process start-up included), peak RSS from wait4.
  libtorrent  the creator's work inside its process (webseedtest/ltcreate.py: listing,
              hashing and writing the torrent, from after `import libtorrent` to the file
              written), so Python's start-up and the import (tens of milliseconds) do not
              count against it. Its wall time is shown beside it for information.
The ratio is libtorrent's work time / webseed's wall time. Thread scaling: webseed with
`--threads 1` and `--threads 2` on the site and big corpora (v2), wall time; target: 2
threads ≥ 1.7× as fast as 1.
Hashing floor: Tools/bench/hashfloor.c (built with cc; skipped, and said so, when cc or
libssl-dev is missing) hashes the big file as webseed does and nothing else, timed by its
own clock, so the report tells the machine's share of the gap to `openssl speed` from
webseed's.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))

from webseedtest import bencode, corpus
from webseedtest.benchhost import (KIB, MIB, corpus_root, cpu_model, fmt_pl, log, machine_busy,
                                   wait_idle, warm, write_report)
from webseedtest.procs import program

RSS_LIMIT_MB = 64.0
BIG_RATE_TARGET = 0.85
THREADS_TARGET = 1.7

# corpus, mode, piece length, target ratio (libtorrent s / webseed s) or None (informational)
CASES = [
    ("site", "v2", 64 * KIB, 2.0),
    ("site", "hybrid", 64 * KIB, 2.0),
    ("big", "v2", 1 * MIB, 2.0),
    ("big", "hybrid", 1 * MIB, 2.0),
    ("small", "v2", 16 * KIB, 3.0),
    ("small", "hybrid", 16 * KIB, 2.5),
]


OTHER_CPU = []  # CPU seconds other processes used during each measured run


def measure(argv):
    """Runs argv; returns (wall s, peak RSS KiB, exit code, stdout, stderr)."""
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        b0 = machine_busy()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        b1 = machine_busy()
        OTHER_CPU.append((wall, max(0.0, (b1 - b0) - (ru.ru_utime + ru.ru_stime))))
        p.returncode = os.waitstatus_to_exitcode(status)
        so.seek(0)
        se.seek(0)
        return wall, ru.ru_maxrss, p.returncode, so.read().decode(errors="replace"), se.read().decode(errors="replace")


def fmt_s(x):
    return "%.3f" % x if x is not None else "–"


def openssl_speed(ncores, seconds):
    argv = ["openssl", "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", str(seconds)]
    if ncores > 1:
        argv += ["-multi", str(ncores)]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    for line in reversed(out.strip().splitlines()):
        m = re.match(r"^\s*\S+\s+([\d.]+)k\s*$", line)
        if m:
            return float(m.group(1)) * 1000 / 1e6  # 'k' is 1000 bytes/s -> MB/s
    raise RuntimeError("could not parse openssl speed output:\n" + out)


def hashing_floor(path, outdir, runs, idle):
    """Builds and runs Tools/bench/hashfloor.c on `path`; returns (median seconds, None) or
    (None, why it was not measured)."""
    exe = os.path.join(outdir, "hashfloor")
    source = os.path.join(REPO, "Tools", "bench", "hashfloor.c")
    try:
        build = subprocess.run(["cc", "-O2", "-o", exe, source, "-lcrypto", "-lpthread"], capture_output=True, text=True)
    except OSError as e:
        return None, "no C compiler: %s" % e
    if build.returncode != 0:
        return None, "cc could not build Tools/bench/hashfloor.c: " + (build.stderr.strip().splitlines() or ["?"])[-1][:160]
    times = []
    for _ in range(runs):
        idle()
        out = subprocess.run([exe, path, str(os.cpu_count() or 1)], capture_output=True, text=True)
        if out.returncode != 0:
            return None, "hashfloor failed: " + out.stderr.strip()[-160:]
        times.append(float(out.stdout.split()[0]))
        log("  hashing floor, big: %.3f s" % times[-1])
    return statistics.median(times), None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", default=os.path.join(REPO, ".build", "release", "webseed"))
    ap.add_argument("--corpus-dir", default=os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench"))
    ap.add_argument("--quick", action="store_true", help="1 run, corpora scaled down ~10x (smoke test)")
    ap.add_argument("--runs", type=int, help="runs per tool and case (default 3, --quick 1)")
    ap.add_argument("--only", help="comma-separated cases, e.g. site:v2,small:hybrid")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-create[-quick].md)")
    ap.add_argument("--busy", action="store_true",
                    help="time at once on a busy machine: no waiting for idle CPUs and no retries of "
                         "disturbed runs (both tools still alternate within each case; the report says so)")
    args = ap.parse_args()
    idle = (lambda: 0.0) if args.busy else wait_idle

    runs = args.runs or (1 if args.quick else 3)
    scale = 0.1 if args.quick else 1.0
    root = corpus_root(args.corpus_dir, "quick" if args.quick else "full")
    outdir = os.path.join(os.path.dirname(root), "out")
    os.makedirs(outdir, exist_ok=True)
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-create%s.md" % ("-quick" if args.quick else ""))

    binary = os.path.abspath(args.webseed)
    if not os.access(binary, os.X_OK):
        sys.exit("bench: webseed binary %s not found (build it: swift build -c release)" % binary)
    if subprocess.run([binary, "create", "--help"], capture_output=True).returncode != 0:
        sys.exit("bench: `%s create --help` failed" % binary)

    cases = CASES
    if args.only:
        want = set(args.only.split(","))
        cases = [c for c in CASES if "%s:%s" % (c[0], c[1]) in want]
        if not cases:
            sys.exit("bench: --only matched no case")

    # 1. Corpora.
    dirs, sizes, counts = {}, {}, {}
    for name in sorted({c[0] for c in cases}, key=["site", "big", "small"].index):
        d, files = corpus.ensure(root, name, scale, log=log)
        dirs[name], sizes[name], counts[name] = d, sum(s for _, s in files), len(files)

    # 2. Timings.
    load_before = os.getloadavg()
    results = []
    for (name, mode, pl, target) in cases:
        d = dirs[name]
        log("case %s %s, piece length %s: warming page cache ..." % (name, mode, fmt_pl(pl)))
        warm(d)
        busy = idle()
        ws_out = os.path.join(outdir, "%s-%s.webseed.torrent" % (name, mode))
        lt_out = os.path.join(outdir, "%s-%s.libtorrent.torrent" % (name, mode))
        ws_argv = [binary, "create", d, "-o", ws_out, "--force", "--piece-length", str(pl), "--json"]
        if mode == "v2":
            ws_argv.append("--v2-only")
        lt_argv = program("ltcreate") + [d, str(pl), mode, lt_out]
        r = {"corpus": name, "mode": mode, "piece_length": pl, "target": target,
             "size": sizes[name], "files": counts[name],
             "ws_wall": [], "ws_rss": [], "lt_wall": [], "lt_rss": [], "lt_inproc": [],
             "ws_error": None, "lt_error": None, "notes": [], "busy_before": busy}
        if busy > 0.15:
            r["notes"].append("machine was busy (%.0f%% CPU) when this case started" % (100 * busy))
        for i in range(runs):
            # Alternate which tool goes first so neither always gets the "second" slot.
            order = [("lt", lt_argv, lt_out), ("ws", ws_argv, ws_out)]
            if i % 2:
                order.reverse()
            for tool, argv, out in order:
                if r[tool + "_error"]:
                    continue
                if os.path.exists(out):
                    os.unlink(out)
                for attempt in range(4):
                    wall, rss, rc, so, se = measure(argv)
                    w, other = OTHER_CPU[-1]
                    disturbed = other > max(0.1, 0.15 * w * (os.cpu_count() or 1))
                    if not disturbed or rc != 0 or args.busy:
                        break
                    log("  (other processes used %.1f CPU-s during this %.2f s run%s)"
                        % (other, w, "; retrying" if attempt < 3 else ""))
                    if attempt < 3:
                        wait_idle()
                if disturbed and rc == 0:
                    r["disturbed"] = r.get("disturbed", 0) + 1
                if rc != 0:
                    msg = (se.strip().splitlines() or ["exit %d" % rc])[-1]
                    r[tool + "_error"] = "exit %d: %s" % (rc, msg[:200])
                    log("  %s FAILED: %s" % (tool, r[tool + "_error"]))
                    continue
                r[tool + "_wall"].append(wall)
                r[tool + "_rss"].append(rss)
                if tool == "lt":
                    try:
                        r["lt_inproc"].append(json.loads(so.strip().splitlines()[-1]))
                    except (ValueError, IndexError):
                        pass
                else:
                    try:
                        obj, end = json.JSONDecoder().raw_decode(so.lstrip())
                        r["ws_json"] = obj
                        if so.lstrip()[end:].strip():
                            note = "webseed --json printed more than one JSON object on stdout"
                            if note not in r["notes"]:
                                r["notes"].append(note)
                    except ValueError:
                        note = "webseed --json stdout is not JSON"
                        if note not in r["notes"]:
                            r["notes"].append(note)
                log("  %-9s run %d: %.3f s, peak RSS %.1f MB" % ("libtorrent" if tool == "lt" else "webseed", i + 1, wall, rss / 1024))
        # Correctness guard: same info hashes at the same piece length.
        r["match"] = None
        if not r["ws_error"] and not r["lt_error"]:
            try:
                ws_v2, ws_v1 = bencode.info_hashes(ws_out)
                lt_v2, lt_v1 = bencode.info_hashes(lt_out)
                r["ws_v2"], r["ws_v1"], r["lt_v2"], r["lt_v1"] = ws_v2, ws_v1, lt_v2, lt_v1
                r["match"] = ws_v2 == lt_v2 and (mode == "v2" or ws_v1 == lt_v1)
                if mode == "v2" and ws_v1:
                    r["notes"].append("--v2-only output has v1 pieces")
                j = r.get("ws_json") or {}
                if j.get("v2_infohash") not in (None, ws_v2):
                    r["notes"].append("--json v2_infohash differs from the written file's")
                if mode == "hybrid" and j.get("v1_infohash") not in (None, ws_v1):
                    r["notes"].append("--json v1_infohash differs from the written file's")
                if j.get("piece_length") not in (None, pl):
                    r["notes"].append("--json piece_length %s != %d" % (j.get("piece_length"), pl))
                if j.get("files") not in (None, counts[name]):
                    r["notes"].append("--json files %s != %d" % (j.get("files"), counts[name]))
                if j.get("size") not in (None, sizes[name]):
                    r["notes"].append("--json size %s != %d" % (j.get("size"), sizes[name]))
                if not r["match"]:
                    log("  WARNING: info hashes differ: webseed v2 %s v1 %s / libtorrent v2 %s v1 %s"
                        % (ws_v2, ws_v1, lt_v2, lt_v1))
            except Exception as e:  # noqa: BLE001
                r["notes"].append("hash check failed: %s" % e)
        if r.get("disturbed"):
            r["notes"].append("%d run(s) shared the CPUs with other processes%s"
                              % (r["disturbed"], " (--busy: not retried)" if args.busy else " even after retries"))
        for n in r["notes"]:
            log("  note: " + n)
        results.append(r)

    # 3. Thread scaling: webseed alone, v2, one and two hashing threads.
    threads = []
    for (name, pl) in [("site", 64 * KIB), ("big", 1 * MIB)]:
        if name not in dirs:
            continue
        out = os.path.join(outdir, "%s-threads.webseed.torrent" % name)
        t = {"corpus": name, "piece_length": pl, "one": None, "two": None, "speedup": None}
        walls = {1: [], 2: []}
        warm(dirs[name])
        for i in range(runs):
            for n in ((1, 2) if i % 2 == 0 else (2, 1)):
                idle()
                wall, _, rc, _, se = measure([binary, "create", dirs[name], "-o", out, "--force", "--v2-only",
                                              "--piece-length", str(pl), "--threads", str(n)])
                if rc != 0:
                    sys.exit("bench: webseed create --threads %d failed: %s" % (n, se.strip()[-200:]))
                walls[n].append(wall)
                log("  threads %d, %s v2: %.3f s" % (n, name, wall))
        t["one"], t["two"] = statistics.median(walls[1]), statistics.median(walls[2])
        t["speedup"] = t["one"] / t["two"] if t["two"] else None
        threads.append(t)

    # 4. Hashing ceiling.
    secs = 1 if args.quick else 3
    log("openssl speed sha256 (%d s each) ..." % secs)
    ossl1 = ossl2 = 0.0
    for _ in range(1 if args.quick else 2):  # best of two: a ceiling, so keep the undisturbed figure
        idle()
        ossl1 = max(ossl1, openssl_speed(1, secs))
        idle()
        ossl2 = max(ossl2, openssl_speed(2, secs))

    # 4b. Hashing floor: the big file hashed as webseed hashes it, and nothing else.
    floor = floor_note = None
    if "big" in dirs:
        big_file = os.path.join(dirs["big"], sorted(os.listdir(dirs["big"]))[0])  # its one file
        floor, floor_note = hashing_floor(big_file, outdir, runs, idle)

    load_after = os.getloadavg()

    # 5. Report.
    lines = []
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines.append("### `webseed create` vs libtorrent 2.0.8%s" % (" (QUICK smoke run, corpora scaled ~10x down)" if args.quick else ""))
    lines.append("")
    lines.append("%s; %s, %d cores; median of %d run%s per tool on a warm page cache. webseed: wall time of "
                 "`webseed create` (spawn to exit); libtorrent: its creator's work timed inside its process "
                 "(after `import libtorrent`; its process wall time, Python start-up included, in its own column). "
                 "Peak RSS of each process.%s"
                 % (now, cpu_model(), os.cpu_count(), runs, "s" if runs > 1 else "",
                    " Run with --busy: timed on a busy machine without waiting for idle CPUs; ratios compare "
                    "the tools within this run, absolute times and the openssl ceiling are not an idle machine's."
                    if args.busy else ""))
    lines.append("Corpora: " + "; ".join("%s = %d files, %.1f MB" % (n, counts[n], sizes[n] / 1e6) for n in dirs) + ".")
    lines.append("")
    lines.append("| corpus | mode | piece length | libtorrent s (work) | webseed s | ratio (libtorrent/webseed) | target | met? "
                 "| libtorrent wall s | webseed peak RSS MB | libtorrent peak RSS MB | same info hash |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst_rss = (0.0, None)
    all_met = True
    footnotes = []
    for r in results:
        # libtorrent's work inside its process (import excluded); its wall time for information.
        lt_work = [x["work_s"] for x in r["lt_inproc"] if "work_s" in x]
        lt_s = statistics.median(lt_work) if lt_work and not r["lt_error"] else None
        lt_wall = statistics.median(r["lt_wall"]) if r["lt_wall"] and not r["lt_error"] else None
        r["lt_wall_median"] = lt_wall
        ws_s = statistics.median(r["ws_wall"]) if r["ws_wall"] and not r["ws_error"] else None
        ratio = lt_s / ws_s if lt_s and ws_s else None
        r["lt_median"], r["ws_median"], r["ratio"] = lt_s, ws_s, ratio
        ws_rss = max(r["ws_rss"]) / 1024 if r["ws_rss"] else None
        lt_rss = max(r["lt_rss"]) / 1024 if r["lt_rss"] else None
        if ws_rss is not None and ws_rss > worst_rss[0]:
            worst_rss = (ws_rss, "%s %s" % (r["corpus"], r["mode"]))
        if r["target"] is None:
            target, met = "(info)", "–"
        else:
            target = "≥ %.1f×" % r["target"]
            ok = ratio is not None and ratio >= r["target"]
            met = "yes" if ok else "**no**"
            all_met &= ok
        if r["match"] is None:
            match = "n/a"
        elif r["match"]:
            match = "yes"
        else:
            match = "**NO (warning)**"
        for n in r["notes"]:
            footnotes.append(n)
            match += " [%d]" % len(footnotes)
        ws_cell = "%.3f" % ws_s if ws_s else "FAIL: " + (r["ws_error"] or "?")
        lt_cell = "%.3f" % lt_s if lt_s else "FAIL: " + (r["lt_error"] or "?")
        ws_rss_cell = "n/a" if ws_rss is None else ("%.1f" % ws_rss + (" **(> 64)**" if ws_rss > RSS_LIMIT_MB else ""))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["corpus"], r["mode"], fmt_pl(r["piece_length"]), lt_cell, ws_cell,
            "%.2f×" % ratio if ratio else "–", target, met,
            "%.3f" % lt_wall if lt_wall else "–", ws_rss_cell,
            "n/a" if lt_rss is None else "%.1f" % lt_rss, match))
    lines.append("")
    for i, n in enumerate(footnotes, 1):
        lines.append("[%d] %s  " % (i, n))
    if footnotes:
        lines.append("")
    spreads = []
    for r in results:
        lt_work = [x["work_s"] for x in r["lt_inproc"] if "work_s" in x]
        if lt_work and r["ws_wall"]:
            spreads.append("%s %s: libtorrent %.3f–%.3f, webseed %.3f–%.3f"
                           % (r["corpus"], r["mode"], min(lt_work), max(lt_work), min(r["ws_wall"]), max(r["ws_wall"])))
    if spreads:
        lines.append("Spread (fastest–slowest of %d runs, s): %s." % (runs, "; ".join(spreads)))
    lines.append("Load average (1, 5, 15 min) when the timings began: %.2f, %.2f, %.2f; when they ended: %.2f, %.2f, %.2f."
                 % (load_before + load_after))
    lines.append("Hashing ceiling: `openssl speed -evp sha256 -bytes 16384 -seconds %d` (best of %d) = %.0f MB/s on 1 core, %.0f MB/s with `-multi 2`."
                 % (secs, 1 if args.quick else 2, ossl1, ossl2))
    big = next((r for r in results if r["corpus"] == "big" and r["mode"] == "v2"), None)
    summary = {}
    if big and big.get("ws_median"):
        rate = big["size"] / big["ws_median"] / 1e6
        pct = rate / ossl2
        summary["big_v2_rate_mbs"] = rate
        summary["big_v2_pct_openssl2"] = pct
        ok = pct >= BIG_RATE_TARGET
        all_met &= ok
        lines.append("webseed big v2 hashing rate: %.0f MB/s = %.0f%% of openssl 2-core (target ≥ %d%%: %s)%s."
                     % (rate, 100 * pct, 100 * BIG_RATE_TARGET, "yes" if ok else "**no**",
                        "; libtorrent: %.0f MB/s" % (big["size"] / big["lt_median"] / 1e6) if big.get("lt_median") else ""))
    if big and big.get("lt_median"):
        # What 2× libtorrent on the big file asks of SHA-256: its bytes hashed at twice
        # libtorrent's rate, start-up and the Merkle tree included.
        need = 2 * big["size"] / big["lt_median"] / 1e6
        summary["big_v2_2x_needs_pct_openssl2"] = need / ossl2
        lines.append("2× libtorrent on big v2 (%.3f s / 2 = %.3f s for %.1f MB) needs %.0f MB/s = %.0f%% of openssl 2-core."
                     % (big["lt_median"], big["lt_median"] / 2, big["size"] / 1e6, need, 100 * need / ossl2))
    if floor and big and big.get("ws_median"):
        rate = big["size"] / floor / 1e6
        summary["big_floor_s"] = floor
        summary["big_floor_pct_openssl2"] = rate / ossl2
        lines.append("Hashing floor of the big file (Tools/bench/hashfloor.c: %d threads hashing 4 MiB mappings as 16 KiB "
                     "blocks and nothing else, timed by its own clock, median of %d): %.3f s = %.0f MB/s = %.0f%% of openssl "
                     "2-core; webseed's whole command (start-up, tree and torrent included) takes %.2f× the floor's time."
                     % (os.cpu_count() or 1, runs, floor, rate, 100 * rate / ossl2, big["ws_median"] / floor))
    elif floor_note:
        lines.append("Hashing floor of the big file: not measured (%s)." % floor_note)
    if worst_rss[1]:
        ok = worst_rss[0] <= RSS_LIMIT_MB
        all_met &= ok
        lines.append("webseed peak RSS ≤ %d MB on every corpus: %s (largest %.1f MB, %s)."
                     % (RSS_LIMIT_MB, "yes" if ok else "**no**", worst_rss[0], worst_rss[1]))
    imports = [x["import_s"] for r in results for x in r["lt_inproc"]]
    if imports:
        lines.append("Left out of libtorrent's work time: Python start-up and `import libtorrent` (the import alone: median %.3f s)."
                     % statistics.median(imports))
    for t in threads:
        ok = t["speedup"] is not None and t["speedup"] >= THREADS_TARGET
        all_met &= ok
        lines.append("webseed `--threads 2` vs `--threads 1`, %s v2 (%s pieces): %s s vs %s s = %s (target ≥ %.1f×: %s)."
                     % (t["corpus"], fmt_pl(t["piece_length"]), fmt_s(t["two"]), fmt_s(t["one"]),
                        "%.2f×" % t["speedup"] if t["speedup"] else "–", THREADS_TARGET, "yes" if ok else "**no**"))
    lines.append("All targets met: %s." % ("yes" if all_met else "**no**"))
    write_report(md_path, lines, {"quick": args.quick, "runs": runs, "openssl_mbs": {"1": ossl1, "2": ossl2},
                                  "summary": summary, "cases": results, "threads": threads})
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
