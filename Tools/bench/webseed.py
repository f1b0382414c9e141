"""Benchmark downloading from a BEP 19 web seed: `webseed get` against libtorrent 2.0.8, both
fetching the ~150 MB site corpus (Tools/bench/create's `site`: ~2,000 files) from the same
Debian nginx, its only source, over TCP loopback.

usage: Tools/bench/webseed [--webseed BIN] [--corpus-dir DIR] [--quick] [--runs N] [--out FILE]

Without --webseed it builds webseed with `swift build -c release --product webseed` (a debug
binary only checks that the script works). The corpus lives under $WEBSEED_BENCH_DIR or
/tmp/webseed-bench (--quick: the ~10x smaller one, 1 run). The torrent is made with
`webseed create DIR --web-seed http://127.0.0.1:PORT/` (hybrid, default piece length); nginx
(a private config in the work directory: sendfile, keep-alive, access log off) serves the
corpus's parent directory on 127.0.0.1.

  webseed     `webseed get X.torrent -o DIR --offline --listen 127.0.0.1:0 --state-dir S
              --exit-when-done --json`: spawn to exit of the process.
  libtorrent  webseedtest/ltbench.py fetch: a libtorrent session in its own process (offline,
              default settings otherwise, so its web seed support as shipped), the .torrent
              added with no peer; add_torrent to torrent finished, timed inside the process
              (its start-up and shutdown left out).

Everything runs warm (the corpus is read once; one untimed warm-up download each), then --runs
(default 3) measured downloads per downloader, alternating which goes first; the table shows
the median. Every download is compared byte for byte with the corpus: a wrong one fails.
Target: webseed's time <= libtorrent's (ratio <= 1.0). Writes artifacts/bench-webseed[-quick].md
and a .json beside it. Exit 1 if the target is missed or a download fails. Loopback only.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

from webseedtest import corpus
from webseedtest.benchhost import (REPO, JsonProc, build_release, corpus_root, download_root, end_children_at_exit,
                                   git_head, log, med, one_at_a_time, require_binary, warm, write_report)
from webseedtest.httpbench import Nginx
from webseedtest.procs import program
from webseedtest.trees import compare_tree


def measure(kind, binary, torrent, out, state, errlog):
    """One download; returns (seconds, error or None)."""
    if kind == "ws":
        argv = [binary, "get", torrent, "-o", out, "--offline", "--listen", "127.0.0.1:0",
                "--state-dir", state, "--exit-when-done", "--json"]
    else:
        argv = program("ltbench") + ["fetch", "--torrent", torrent, "--save", os.path.dirname(out), "--timeout", "600"]
    t0 = time.perf_counter()
    p = JsonProc(argv, errlog)
    try:
        p.p.wait(900)
    except subprocess.TimeoutExpired:
        p.stop()
        return None, "still running after 900 s"
    wall = time.perf_counter() - t0
    p.reader.join(5)
    if kind == "ws":
        done = p.select("complete")
        if p.p.returncode != 0 or not done:
            return None, "exit %s, %s (see %s)" % (p.p.returncode, "complete" if done else "no complete event", errlog)
        return wall, None
    done = p.select("finished")
    if not done:
        return None, "no finished event (exit %s; see %s)" % (p.p.returncode, errlog)
    return done[0]["t"], None


def main():
    end_children_at_exit()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", help="use this binary instead of building one with swift build -c release")
    ap.add_argument("--corpus-dir", default=os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench"))
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--quick", action="store_true", help="1 run, the ~10x smaller corpus (smoke test)")
    ap.add_argument("--runs", type=int, help="measured runs per downloader (default 3, --quick 1)")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-webseed[-quick].md)")
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    scale = 0.1 if args.quick else 1.0
    root = corpus_root(args.corpus_dir, "quick" if args.quick else "full")
    os.makedirs(os.path.dirname(root), exist_ok=True)
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-webseed%s.md" % ("-quick" if args.quick else ""))

    binary = os.path.abspath(args.webseed) if args.webseed else build_release()
    require_binary(binary)
    one_at_a_time(os.path.join(os.path.dirname(root), "bench-webseed.lock"), "webseed")
    work = os.path.join(os.path.dirname(root), "webseed-work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    d, files = corpus.ensure(root, "site", scale, log=log)
    size = sum(s for _, s in files)
    save_root = download_root(None, work, size, "webseed")
    nginx = Nginx(args.nginx, [os.path.dirname(d)], work)
    port = nginx.start()[0]
    try:
        torrent = os.path.join(work, "site.torrent")
        r = subprocess.run([binary, "create", d, "-o", torrent, "--force", "--json",
                            "--web-seed", "http://127.0.0.1:%d/" % port], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: webseed create failed: %s" % r.stderr.strip()[-300:])
        log("site: %d files, %.1f MB; nginx on 127.0.0.1:%d" % (len(files), size / 1e6, port))
        warm(d)
        times = {"ws": [], "lt": []}
        errors = []
        for i in range(runs + 1):  # run 0 is the untimed warm-up
            order = ["ws", "lt"] if i % 2 else ["lt", "ws"]
            for k in order:
                save = os.path.join(save_root, k)
                state = os.path.join(work, "state-ws")
                for p in (save, state):
                    shutil.rmtree(p, ignore_errors=True)
                os.makedirs(save)
                out = os.path.join(save, os.path.basename(d))
                t, err = measure(k, binary, torrent, out, state, os.path.join(work, "%s-%d.stderr" % (k, i)))
                if err is None:
                    ok, summary, problems = compare_tree(d, out)
                    if not ok:
                        err = "wrong download: %s %s" % (summary, problems[:3])
                if err:
                    errors.append("%s run %d: %s" % (k, i, err))
                    log("  %s run %d FAILED: %s" % (k, i, err))
                    continue
                log("  %s run %d%s: %.2f s" % (k, i, " (warm-up)" if i == 0 else "", t))
                if i > 0:
                    times[k].append(t)
    finally:
        nginx.stop()
    ws, lt = med(times["ws"]), med(times["lt"])
    ratio = ws / lt if ws and lt else None
    met = ratio is not None and ratio <= 1.0 and not errors
    lines = ["# web seed download: webseed vs libtorrent 2.0.8 (%s, %s)" % (git_head(), time.strftime("%Y-%m-%d")),
             "",
             "site corpus: %d files, %.1f MB, from one nginx on 127.0.0.1 (its only source); median of %d runs"
             % (len(files), size / 1e6, runs),
             "",
             "| | webseed | libtorrent | ratio | target | |",
             "|---|---|---|---|---|---|",
             "| download time | %s | %s | %s | <= 1.0x | %s |" % (
                 "%.2f s" % ws if ws else "-", "%.2f s" % lt if lt else "-",
                 "%.2fx" % ratio if ratio else "-", "met" if met else "MISSED"),
             "| throughput | %s | %s | | | |" % (
                 "%.0f MB/s" % (size / 1e6 / ws) if ws else "-", "%.0f MB/s" % (size / 1e6 / lt) if lt else "-")]
    lines += ["", "errors: " + "; ".join(errors)] if errors else []
    write_report(md_path, lines, {"times": times, "size": size, "files": len(files), "errors": errors, "ratio": ratio})
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
