"""Benchmark webseed's mainline DHT (BEP 5): lookups in a 200-node network and memory per node,
everything on loopback and --offline.

usage: Tools/bench/dht [--webseed BIN] [--layout PxM] [--hashes K] [--lookups L]
                       [--converge-timeout S] [--seed N] [--out FILE]

Without --webseed it first builds webseed with `swift build -c release --product webseed` and
uses that binary; --webseed BIN skips the build (a debug binary only checks that the script
works: its figures mean nothing).

The network (--layout, default 4x50): P processes of `webseed dht --nodes M --listen
127.0.0.1:0 --offline --json` (M DHT nodes on one event loop, each with its own UDP socket,
node i joining through node i-1). Process 0's node 0 has no bootstrap; process p's node 0
joins through the last node of process p-1, so the P chains make one network of P x M = 200
nodes. Both 4 x 50 and 1 x 200 converge here, at the first 5 s report (debug build: 4 x 50
average table 36-40 of an ideal 44, smallest 25-29; 1 x 200: 43 of 44, smallest 31-38). 4 x 50
is the default because it spreads the 200 nodes over four event loops (four processes, like
four machines), so one busy thread does not answer for the whole network, and it comes up in
about 1 s where 1 x 200 takes about 7 s (one loop binds 200 sockets one after another while the
nodes already made keep it busy); --layout 1x200 measures the other one. Memory per node is
then taken from 50-node processes. Two reference processes join the network at the same time
through random network nodes: a 1-node `webseed dht` and a `webseed dht --nodes 2` (memory).

Converged = every network process's latest {"event":"dht_nodes"} report (every 5 s: average and
smallest routing-table size of its nodes) shows min >= 20 and the average over the network
>= 75% of the ideal average, the ideal computed from the node ids (webseedtest/dhtnet.py: the size of a
K=8 BEP 5 table that knows every other node). Bounded by --converge-timeout (default 120 s);
a network that does not converge fails that row, and the rest is measured anyway.

Announces: K (default 20) random info hashes (seeded by --seed), each announced by its own
process, `webseed dht --listen 127.0.0.1:0 --offline --json --dht-bootstrap 127.0.0.1:P
--announce HASH:PORT` with P a random network node and PORT = 40000 + i (a TCP port nothing
listens on: only the address matters), so the announces enter the network at 20 different
places. The script waits (up to 30 s) for each to report {"event":"dht_announced"} with
nodes >= 1; the announcers keep running (as members of the network) until the end.

Every single-node process (reference, announcers, lookups) must print its {"event":"dht"} line
(its DHT node is up) within 5 s of spawn. One that prints {"event":"ready"} but no such line
has no DHT node at all (seen in about 1 in 100 processes: `webseed dht --listen HOST:0` binds
TCP on a free port, then UDP on the same number, and when that UDP port is already taken the
failure is silent); it is counted (target: none), stopped and replaced by a new process, so
the figures below come from nodes that run.

Lookups: L (default 60, 3 per hash) one after another, each from a FRESH single-node process,
`webseed dht --listen 127.0.0.1:0 --offline --json --state-dir <fresh empty> --dht-bootstrap
127.0.0.1:P --lookup HASH --exit-after-lookups --timeout 30`, P a random network node (one
untimed warm-up lookup first). A lookup counts as found only if its peers include the
announcer's address (127.0.0.1:PORT); one that finds nothing (or something else) counts as
infinitely slow in the percentiles. Each lookup process exits after finding its peer, so the
network sees churn: nodes that joined, answered a few queries and left (as on the real DHT).
Three clocks per lookup:

  wall   spawn -> the script reads the {"event":"dht_peers"} line: process start-up (exec,
         dynamic loading, the Swift runtime, ~tens of ms), the join, the lookup, and the pipe.
  node   the node's {"event":"dht"} line (printed when its socket is up; the lookup is issued
         on the same event loop right after) -> the dht_peers line: the join and the lookup.
  ms     webseed's own "ms" in dht_peers: time since the get_peers round that found the peer
         started. A lookup runs in rounds (0, 2, 5, 10 s after it starts, then every 5 s,
         until found), so "ms" does NOT count the join, any wait before the first round, or
         the rounds that found nothing.
  The report also shows node clock - ms: node up -> start of the round that found the peer.

The TARGETS (median <= 200 ms, 95th percentile <= 1 s, "from the lookup starting to its first
peer") are compared with WALL: for a fresh process the lookup starts when it is asked for,
i.e. at spawn (as for `webseed get MAGNET`), and the join is part of what the user waits for.
"ms" would leave out exactly the join and any wait for a round, so it is shown for
information only (it is the cost of one get_peers round on a node that has joined). "wall"
also counts process start-up, which is not the lookup's doing; it is shown separately (spawn
-> the dht line) and the "node" clock without it, so a reader can subtract it. This is the
conservative choice, as in Tools/bench/fetch: a figure that meets the target by this clock
meets it by any fairer one.

Memory per node = (RSS of a network process with M nodes - RSS of the 1-node reference
process) / (M - 1), VmRSS from /proc read at the same moment after the lookups (tables full,
peers stored), the largest of the P network processes. Target <= 1 MB. For information:
the same against the `--nodes 2` reference, (RSS_M - RSS_2) / (M - 2), which cancels whatever the
single-node code path (`webseed dht` without --nodes: the peer-wire Seeder around the node)
costs on top of the --nodes path; peak RSS (VmHWM) and the announcers' RSS.

Prints a markdown table (case / metric / value / target / met?) and writes it to
artifacts/bench-dht.md plus a .json beside it. Exit 1 if a target is missed. Only loopback
networking (127.0.0.1), never the public DHT routers (--offline everywhere); every wait is
bounded and every child process is ended (SIGTERM, then SIGKILL) in a finally.
"""

import argparse
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))

from webseedtest import dhtnet
from webseedtest.benchhost import (LIVE, binary_stamp, build_release, busy_between, cpu_model,
                                   end_children, git_head, log, bench_workdir, proc_cpu,
                                   require_binary, spawn, stat_cpu, wait_idle, write_report, TargetTable, fmt_ms)
from webseedtest.dhtnet import CONVERGED_AVG_SHARE, CONVERGED_MIN, Proc, median, net_argv, percentile

TARGET_MEDIAN_MS = 200.0
TARGET_P95_MS = 1000.0
TARGET_MEM_MB = 1.0
ANNOUNCE_TIMEOUT = 30.0
LOOKUP_TIMEOUT = 30         # webseed's own --timeout
LOOKUP_KILL = 45.0          # the script's bound on one lookup process
NODE_UP_TIMEOUT = 5.0       # spawn -> a single node's {"event":"dht"} line, at most
PORT_BASE = 40000
INF = float("inf")


def check_binary(binary):
    require_binary(binary)
    p = spawn([binary, "dht", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate()
    missing = [o for o in ("--lookup", "--announce", "--exit-after-lookups", "--dht-bootstrap", "--offline")
               if o not in out]
    if p.returncode != 0 or "USAGE: webseed dht " not in out or missing:
        sys.exit("bench: `%s dht --help` does not show `webseed dht`'s usage%s: this binary has no (complete) "
                 "`webseed dht`" % (binary, " (missing %s)" % ", ".join(missing) if missing else ""))


def single_argv(binary, state, bootstrap, extra):
    return [binary, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", state,
            "--dht-bootstrap", "127.0.0.1:%d" % bootstrap] + extra


def diagnose(proc):
    """What a process that did not do what was expected printed and is doing (for the report)."""
    evs = [{k: v for k, v in e.items() if k != "_t"} for e in proc.select("dht") + proc.select("ready")
           + proc.select("dht_nodes") + proc.select("dht_announced") + proc.select("?")]
    alive = proc.alive()
    parts = ["%s after %.1f s" % ("still running" if alive else "exited with status %s" % proc.p.returncode,
                                  time.perf_counter() - proc.t0),
             "stdout: %s" % (json.dumps(evs)[:600] if evs else "nothing")]
    if alive:
        st = dhtnet.proc_status(proc.pid)
        wchan = []
        try:
            for tid in sorted(os.listdir("/proc/%d/task" % proc.pid)):
                with open("/proc/%d/task/%s/wchan" % (proc.pid, tid)) as f:
                    wchan.append(f.read().strip() or "0")
        except OSError:
            pass
        parts.append("%s threads (waiting in: %s), %.1f CPU-s" % (st.get("Threads", "?"), ", ".join(sorted(set(wchan))),
                                                                  proc_cpu(proc.pid) or 0))
    tail = proc.stderr_tail(300)
    parts.append("stderr: %s" % (tail or "nothing"))
    return "; ".join(parts)


def is_node_up(e):
    return e.get("event") == "dht" and "port" in e


def no_dht_reason(proc):
    """Why a single-node process shows no {"event":"dht"} line NODE_UP_TIMEOUT s after spawn."""
    ready = proc.select("ready")
    if ready and proc.alive():
        return ("its DHT node never started: `ready` after %.0f ms but no `dht` line in %.0f s, no error, no "
                "warning (the UDP socket on the TCP listener's port number could not be bound?)"
                % ((ready[0]["_t"] - proc.t0) * 1000, NODE_UP_TIMEOUT))
    return "no `dht` line in %.0f s (%s); stderr: %s" % (
        NODE_UP_TIMEOUT, "running" if proc.alive() else "exit %s" % proc.p.returncode, proc.stderr_tail(200) or "nothing")


def start_single(binary, work, name, bootstrap, extra, incidents):
    """A single-node `webseed dht` process whose DHT node is up (its `dht` line seen); one that
    shows no such line within NODE_UP_TIMEOUT s is recorded in `incidents`, stopped and
    replaced by a fresh one (up to 3 tries)."""
    for attempt in range(3):
        tag = name if attempt == 0 else "%s-retry%d" % (name, attempt)
        state = os.path.join(work, tag)
        proc = Proc(single_argv(binary, state, bootstrap, extra), tag, os.path.join(work, tag + ".stderr"))
        if proc.wait_for(is_node_up, NODE_UP_TIMEOUT) is not None:
            return proc
        incidents.append({"process": tag, "argv": " ".join(proc.argv[1:]), "what": no_dht_reason(proc)})
        log("  %s: %s; starting another" % (tag, incidents[-1]["what"]))
        proc.stop()
    raise SystemExit("bench: %s: three processes in a row without a DHT node" % name)


def run_lookup(binary, work, tag, h, port, bootstrap):
    """One fresh lookup process to its end; returns its measurements."""
    state = os.path.join(work, "lookup-%s" % tag)
    os.makedirs(state)
    argv = single_argv(binary, state, bootstrap, ["--lookup", h, "--exit-after-lookups",
                                                  "--timeout", str(LOOKUP_TIMEOUT)])
    proc = Proc(argv, "lookup-%s" % tag, os.path.join(work, "lookup-%s.stderr" % tag))
    t0 = proc.t0
    killed = [False]
    reaped = [False]

    def kill():
        if not reaped[0]:
            killed[0] = True
            try:
                os.kill(proc.pid, 9)
            except OSError:
                pass
    timer = threading.Timer(LOOKUP_KILL, kill)
    timer.start()
    nodht = None
    if proc.wait_for(is_node_up, NODE_UP_TIMEOUT) is None:
        nodht = no_dht_reason(proc)
        kill()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        # Already reaped by a poll() elsewhere (subprocess): its exit code is known, its
        # rusage is not.
        ru = None
        code = proc.p.wait()
    reaped[0] = True
    t_exit = time.perf_counter()
    timer.cancel()
    proc.p.returncode = code
    proc.reader.join(5)
    proc.err.close()
    LIVE.discard(proc.p)
    want = "127.0.0.1:%d" % port
    r = {"hash": h, "bootstrap": bootstrap, "exit": proc.p.returncode, "killed": killed[0],
         "exit_ms": (t_exit - t0) * 1000, "maxrss_kb": ru.ru_maxrss if ru else None, "cpu_s": (ru.ru_utime + ru.ru_stime) if ru else None,
         "wall_ms": INF, "node_ms": INF, "ms": INF, "start_ms": None, "peers": None, "wrong": None, "error": None}
    up = [e for e in proc.select("dht") if "port" in e]
    if up:
        r["start_ms"] = (up[0]["_t"] - t0) * 1000
    found = [e for e in proc.select("dht_peers") if e.get("hash", "").lower() == h]
    if nodht:
        r["error"] = r["nodht"] = nodht
    elif found:
        first = found[0]
        r["peers"] = first.get("peers")
        if want in (first.get("peers") or []):
            r["wall_ms"] = (first["_t"] - t0) * 1000
            r["node_ms"] = (first["_t"] - up[0]["_t"]) * 1000 if up else INF
            r["ms"] = float(first.get("ms", INF))
        else:
            r["wrong"] = first.get("peers")
            r["error"] = "first peers %s do not include the announcer %s" % (first.get("peers"), want)
    else:
        r["error"] = "no dht_peers (exit %s%s): %s" % (proc.p.returncode, ", killed" if killed[0] else "",
                                                       proc.stderr_tail(200))
    shutil.rmtree(state, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webseed", help="use this binary instead of building one with swift build -c release")
    ap.add_argument("--layout", default="4x50", help="PxM: P processes of M nodes each (default 4x50; 1x200 also works)")
    ap.add_argument("--hashes", type=int, default=20, help="K hashes announced, each from its own process (default 20)")
    ap.add_argument("--lookups", type=int, default=60, help="L lookups from fresh processes (default 60, at least 50)")
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1, help="seed for the hashes and the choice of bootstrap nodes")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-dht.md)")
    args = ap.parse_args()
    try:
        P, M = (int(x) for x in args.layout.lower().split("x"))
        assert P >= 1 and M >= 3
    except (ValueError, AssertionError):
        sys.exit("bench: --layout must be PxM with P >= 1, M >= 3 (e.g. 4x50)")
    if args.lookups < 1 or args.hashes < 1:
        sys.exit("bench: --lookups and --hashes must be at least 1")
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-dht.md")
    rng = random.Random(args.seed)

    binary = os.path.abspath(args.webseed) if args.webseed else build_release()
    check_binary(binary)
    stamp0 = binary_stamp(binary)
    head = git_head()

    work = bench_workdir("dht")

    res = {"layout": [P, M], "webseed": binary, "seed": args.seed, "notes": [], "odd": []}
    try:
        run(args, binary, work, rng, P, M, res)
    finally:
        end_children()
    stamp1 = binary_stamp(binary)
    if stamp1 != stamp0:
        res["odd"].append("the webseed binary was replaced while this ran: the figures may mix two builds")
    ok, lines = report(args, binary, stamp0, head, P, M, res)
    write_report(md_path, lines, res)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("kept %s (state dirs and every process's stderr) for a look" % work)
    return 0 if ok else 1


def run(args, binary, work, rng, P, M, res):
    # 1. The network.
    net, nodes, res["net_up_s"] = dhtnet.start_network(binary, work, P, M)
    ports = [n[2] for n in nodes]
    log("network: %d processes x %d nodes up in %.2f s" % (P, M, res["net_up_s"]))

    incidents = res["nodht"] = []
    ref1 = start_single(binary, work, "ref1", rng.choice(ports), [], incidents)
    ref2 = Proc(net_argv(binary, 2, os.path.join(work, "ref2"), rng.choice(ports)), "ref2",
                os.path.join(work, "ref2.stderr"))
    ids = [n[3] for n in nodes]
    for r in (ref1, ref2):
        e = r.wait_for(lambda e: e.get("event") == "dht" and "node_id" in e, 30)
        if e is None:
            raise SystemExit("bench: reference process %s did not start: %s" % (r.name, r.stderr_tail()))
        ids += [int(x["node_id"], 16) for x in r.select("dht") if "node_id" in x]

    # 2. Convergence.
    res.update(dhtnet.wait_converged(net, ids, args.converge_timeout, others=(ref1, ref2)))
    res["rss_converged_kb"] = [dhtnet.proc_status(p.pid).get("VmRSS") for p in net]

    # 3. Announces, each from its own process joining at a random network node.
    hashes = ["%040x" % rng.getrandbits(160) for _ in range(args.hashes)]
    announcers = []
    for i, h in enumerate(hashes):
        boot = rng.choice(ports)
        a = start_single(binary, work, "ann-%d" % i, boot, ["--announce", "%s:%d" % (h, PORT_BASE + i)], incidents)
        a.boot = boot
        announcers.append(a)
    ann = []
    t_ann = time.perf_counter()
    for i, (h, a) in enumerate(zip(hashes, announcers)):
        left = max(0.1, ANNOUNCE_TIMEOUT - (time.perf_counter() - t_ann))
        e = a.wait_for(lambda e: e.get("event") == "dht_announced" and e.get("nodes", 0) >= 1, left)
        evs = a.select("dht_announced")
        ann.append({"hash": h, "port": PORT_BASE + i, "bootstrap": a.boot,
                    "nodes": e.get("nodes") if e else None,
                    "s": (e["_t"] - a.t0) if e else None,
                    "rounds": [x.get("nodes") for x in evs]})
        if e is None:
            ann[-1]["diagnosis"] = diagnose(a)
            log("  announcer %d (%s) did not announce to any node in %.0f s: %s" % (i, h, ANNOUNCE_TIMEOUT,
                                                                                  ann[-1]["diagnosis"]))
    res["announces"] = ann
    ok_ann = [x for x in ann if x["nodes"]]
    log("announces: %d/%d reached nodes (median %g nodes, %s s after spawn)"
        % (len(ok_ann), len(ann), median([x["nodes"] for x in ok_ann]),
           "%.2f" % median([x["s"] for x in ok_ann]) if ok_ann else "?"))

    # 4. Lookups from fresh processes, once other processes leave the CPUs alone (bounded).
    res["busy_before_lookups"] = wait_idle(60.0, 0.25)
    busy0 = stat_cpu()
    netcpu0 = [proc_cpu(p.pid) or 0 for p in net]
    t_l0 = time.perf_counter()
    warm = run_lookup(binary, work, "warmup", hashes[0], PORT_BASE, rng.choice(ports))
    if warm.get("nodht"):
        incidents.append({"process": "lookup-warmup", "argv": "dht --lookup", "what": warm["nodht"]})
    res["warmup"] = warm
    log("  warm-up lookup: wall %.0f ms%s" % (warm["wall_ms"], " (%s)" % warm["error"] if warm["error"] else ""))
    lookups = []
    for i in range(args.lookups):
        k = i % len(hashes)
        boot = rng.choice(ports)
        r = run_lookup(binary, work, str(i), hashes[k], PORT_BASE + k, boot)
        for attempt in range(1, 3):
            if not r.get("nodht"):
                break
            incidents.append({"process": "lookup-%d" % i, "argv": "dht --lookup %s (bootstrap port %d)" % (hashes[k], boot),
                              "what": r["nodht"]})
            log("  lookup %2d: %s; running it again in a new process" % (i + 1, r["nodht"]))
            r = run_lookup(binary, work, "%d-retry%d" % (i, attempt), hashes[k], PORT_BASE + k, boot)
        lookups.append(r)
        log("  lookup %2d: %s" % (i + 1, "wall %.0f ms, node %.0f ms, ms %.1f, start-up %.0f ms, exit %.0f ms"
                                  % (r["wall_ms"], r["node_ms"], r["ms"], r["start_ms"] or -1, r["exit_ms"])
                                  if not r["error"] else "FAILED: " + r["error"]))
    res["lookups"] = lookups
    res["lookup_phase_s"] = time.perf_counter() - t_l0
    res["machine_busy_lookups"] = busy_between(busy0, stat_cpu())
    res["net_cpu_lookups_s"] = sum((proc_cpu(p.pid) or 0) - c for p, c in zip(net, netcpu0))

    # 5. Memory, every process read at the same moment.
    res["rss_net"] = [dhtnet.proc_status(p.pid) for p in net]
    res["rss_ref1"] = dhtnet.proc_status(ref1.pid)
    res["rss_ref2"] = dhtnet.proc_status(ref2.pid)
    res["rss_ann"] = [dhtnet.proc_status(a.pid) for a in announcers]
    res["tables_end"] = [(p.select("dht_nodes") or [{}])[-1].get("count") for p in net]
    res["tables_end_min"] = [(p.select("dht_nodes") or [{}])[-1].get("min") for p in net]

    # 6. Stop everything; a process that ignores SIGTERM is worth knowing about.
    res["stop_s"] = {}
    for p in net + [ref1, ref2] + announcers:
        e = p.stop()
        res["stop_s"][p.name] = p.stop_s
        if e:
            res["odd"].append("%s: %s" % (p.name, e))


def report(args, binary, stamp0, head, P, M, res):
    table = TargetTable()
    row = table.row

    def fms(x):
        return fmt_ms(x, INF)

    n_ann = len(res.get("announces", []))
    total = P * M + 1 + 2 + n_ann
    row("network", "layout", "%d × `webseed dht --nodes %d` = %d nodes (+ 3 reference nodes and %d announcers = %d)"
        % (P, M, P * M, n_ann, total))
    conv = res.get("converged_s")
    hist = res.get("convergence_history", [])
    row("network", "routing tables when measured: average / smallest (ideal average / smallest)",
        "%.1f / %s (%.1f / %d)" % (res.get("table_avg", 0), res.get("table_min", "?"), res.get("ideal_avg", 0),
                                   res.get("ideal_min", 0)))
    row("network", "converged (smallest table ≥ %d and average ≥ %.0f%% of ideal)"
        % (res.get("need_min", CONVERGED_MIN), 100 * CONVERGED_AVG_SHARE),
        ("at the first report, %.0f s after the network was up" if len(hist) == 1 else "after %.0f s") % conv
        if conv is not None else "not within %.0f s" % args.converge_timeout,
        "≤ %.0f s" % args.converge_timeout, conv is not None)
    ann = res.get("announces", [])
    ok_ann = [a for a in ann if a["nodes"]]
    row("announce", "hashes announced (each from its own process)", "%d / %d, stored on %s nodes (median; fewest %s)"
        % (len(ok_ann), len(ann), "%g" % median([a["nodes"] for a in ok_ann]) if ok_ann else "–",
           min([a["nodes"] for a in ok_ann]) if ok_ann else "–"), "all", len(ok_ann) == len(ann) and ann)
    lk = res.get("lookups", [])
    found = [r for r in lk if not r["error"]]
    row("lookup (fresh process)", "lookups that found the announcer's address", "%d / %d" % (len(found), len(lk)),
        "all", len(found) == len(lk) and len(lk) > 0)
    inc = res.get("nodht") or []
    n_single = 1 + len(ann) + len(lk) + (1 if res.get("warmup") else 0) + len(inc)
    row("all single-node processes", "whose DHT node never started (no `dht` line in %.0f s; each replaced by a new "
        "process)" % NODE_UP_TIMEOUT, "%d of %d" % (len(inc), n_single), "none", not inc)
    wall = [r["wall_ms"] for r in lk]
    med_w, p95_w = median(wall), percentile(wall, 95)
    row("lookup (fresh process)", "**spawn → first peer (wall)**, median", fms(med_w), "≤ %.0f ms" % TARGET_MEDIAN_MS,
        med_w is not None and med_w <= TARGET_MEDIAN_MS)
    row("lookup (fresh process)", "**spawn → first peer (wall)**, 95th percentile", fms(p95_w),
        "≤ {:,.0f} ms".format(TARGET_P95_MS), p95_w is not None and p95_w <= TARGET_P95_MS)
    nd = [r["node_ms"] for r in lk]
    row("lookup (fresh process)", "node up (its `dht` line) → first peer, median / p95", "%s / %s"
        % (fms(median(nd)), fms(percentile(nd, 95))))
    ms = [r["ms"] for r in lk]
    row("lookup (fresh process)", "webseed's `ms` (from the start of the get_peers round that found it), median / p95",
        "%s / %s" % ("n/a" if median(ms) is None else ("%.1f ms" % median(ms) if median(ms) != INF else fms(INF)),
                     "n/a" if percentile(ms, 95) is None else ("%.1f ms" % percentile(ms, 95)
                                                               if percentile(ms, 95) != INF else fms(INF))))
    gap = [r["node_ms"] - r["ms"] for r in found if r["ms"] != INF and r["node_ms"] != INF]
    row("lookup (fresh process)", "node up → start of the get_peers round that found the peer (node clock − `ms`), "
        "median / p95", "%s / %s" % (fms(median(gap)), fms(percentile(gap, 95))))
    su = [r["start_ms"] for r in lk if r["start_ms"] is not None]
    row("lookup (fresh process)", "process start-up (spawn → its `dht` line), median", fms(median(su)))
    row("lookup (fresh process)", "spawn → exit (`--exit-after-lookups`), median", fms(median([r["exit_ms"] for r in lk])))
    rss_lk = [r["maxrss_kb"] / 1024 for r in lk if r["maxrss_kb"] is not None]
    if rss_lk:
        row("lookup (fresh process)", "peak RSS of a lookup process (ru_maxrss), median", "%.1f MB" % median(rss_lk))

    net = res.get("rss_net") or []
    r1 = (res.get("rss_ref1") or {}).get("VmRSS")
    r2 = (res.get("rss_ref2") or {}).get("VmRSS")
    rn = [s.get("VmRSS") for s in net if s.get("VmRSS")]
    if rn and r1:
        big = max(rn)
        per = (big - r1) / (M - 1) / 1024
        row("memory", "RSS of a %d-node process (largest of %d) / of a 1-node `webseed dht`" % (M, len(rn)),
            "%.1f MB / %.1f MB" % (big / 1024, r1 / 1024))
        row("memory", "**per node** = (RSS₍%d₎ − RSS₍1₎) / %d" % (M, M - 1), "%.3f MB (%.0f KiB)" % (per, per * 1024),
            "≤ %.0f MB" % TARGET_MEM_MB, per <= TARGET_MEM_MB)
        if r2:
            row("memory", "cross-check: RSS of `--nodes 2`; (RSS₍%d₎ − RSS₍2₎) / %d" % (M, M - 2),
                "%.1f MB; %.0f KiB" % (r2 / 1024, (big - r2) / (M - 2)))
        hwm = [s.get("VmHWM") for s in net if s.get("VmHWM")]
        ra = [s.get("VmRSS") for s in res.get("rss_ann", []) if s.get("VmRSS")]
        row("memory", "peak RSS (VmHWM) of the %d-node processes, largest; announcers' RSS, median"
            % M, "%.1f MB; %.1f MB" % (max(hwm) / 1024 if hwm else 0, median(ra) / 1024 if ra else 0))
    else:
        row("memory", "per node", "n/a (no RSS read)", "≤ %.0f MB" % TARGET_MEM_MB, False)

    notes = []
    debug = os.sep + "debug" + os.sep in binary
    if len(lk) < 50:
        notes.append("**only %d lookups** (fewer than 50): a smoke run, the percentiles are rough" % len(lk))
    if debug:
        notes.append("**DEBUG build of webseed**: these figures only show that the script works; measure a release "
                     "build (run without --webseed)")
    lag = [(r["node_ms"] - r["ms"]) for r in found if r["ms"] != INF and r["node_ms"] != INF]
    if lag and median(lag) > 1500:
        notes.append("the get_peers round that found the peer started %.2f s (median; %.2f–%.2f s) after the fresh "
                     "node came up: the lookup's first round, issued as the node starts, found nothing (its routing "
                     "table was still empty), and the next round runs 2 s later. `ms` counts from that later round "
                     "only, so it leaves the join and the wait out (%.1f ms median against %.0f ms by the node's "
                     "clock)" % (median(lag) / 1000, min(lag) / 1000, max(lag) / 1000, median(ms), median(nd)))
    elif lag and median(lag) > 50:
        notes.append("the get_peers round that found the peer started %.0f ms (median; %.0f–%.0f ms) after the fresh "
                     "node came up (its join, and the wait until the lookup was started)%s; `ms` leaves that out "
                     "(%.1f ms median against %.0f ms by the node's clock)"
                     % (median(lag), min(lag), max(lag),
                        ": about one period of webseed's 250 ms DHT timer, i.e. the round started at the first timer "
                        "tick after the join had put a node in the table rather than when that happened"
                        if 230 <= median(lag) <= 300 else "", median(ms), median(nd)))
    quick = [r for r in found if r["ms"] != INF and r["node_ms"] - r["ms"] < 500]
    if lag and median(lag) > 1500 and quick:
        notes.append("in %d of %d lookups the first round already found the peer (the bootstrap node's reply "
                     "had reached the fresh node before the lookup's first round started): wall %s, node clock %s "
                     "(median of those): what a lookup takes here when the join is not followed by a wait"
                     % (len(quick), len(lk), fms(median([r["wall_ms"] for r in quick])),
                        fms(median([r["node_ms"] for r in quick]))))
    if hist:
        notes.append("routing tables while converging (s after the last network process started: average, smallest): "
                     + "; ".join("%.0f s: %.1f, %d" % h for h in hist))
    if res.get("tables_end"):
        notes.append("routing tables after the lookups (per network process: average / smallest): "
                     + ", ".join("%s/%s" % (a, b) for a, b in zip(res["tables_end"], res["tables_end_min"])))
    if ann:
        first_rounds = [a["rounds"][0] for a in ann if a["rounds"]]
        if first_rounds and max(first_rounds) == 0:
            notes.append("every announcer's first round reported `dht_announced` with nodes 0 (issued before the "
                         "join had put any node in its table); the nodes ≥ 1 announce came from a later round, "
                         "%.1f s after spawn (median)" % (median([a["s"] for a in ok_ann]) if ok_ann else 0))
    if (res.get("busy_before_lookups") or 0) > 0.25:
        notes.append("the machine was still %.0f%% busy (other processes) when the lookups started, after waiting up "
                     "to 60 s for it to go idle" % (100 * res["busy_before_lookups"]))
    if res.get("machine_busy_lookups") is not None:
        notes.append("during the lookups (%.0f s) the machine's CPUs were %.0f%% busy; the network processes used "
                     "%.1f CPU-s" % (res.get("lookup_phase_s", 0), 100 * res["machine_busy_lookups"],
                                     res.get("net_cpu_lookups_s", 0)))
    if len(found) >= 20:
        h1 = [r["wall_ms"] for r in lk[:len(lk) // 2]]
        h2 = [r["wall_ms"] for r in lk[len(lk) // 2:]]
        notes.append("churn: wall median of the first half of the lookups %s, of the second half %s (every earlier "
                     "lookup node has left the network by then)" % (fms(median(h1)), fms(median(h2))))
    for a in ann:
        if not a["nodes"]:
            notes.append("announcer of %s (bootstrap port %d) never reported an announce to ≥ 1 node within %.0f s: %s"
                         % (a["hash"], a["bootstrap"], ANNOUNCE_TIMEOUT, a.get("diagnosis", "?")))
    bad = [r for r in lk if r["error"]]
    for r in bad[:5]:
        notes.append("lookup of %s (bootstrap port %d) failed: %s" % (r["hash"], r["bootstrap"], r["error"]))
    if len(bad) > 5:
        notes.append("… and %d more failed lookups (see the .json)" % (len(bad) - 5))
    for x in inc[:3]:
        notes.append("`webseed %s` (%s): %s" % (x["argv"], x["process"], x["what"]))
    if len(inc) > 3:
        notes.append("… and %d more processes without a DHT node (see the .json)" % (len(inc) - 3))
    stops = res.get("stop_s") or {}
    if stops:
        slow = sorted(stops.items(), key=lambda kv: -kv[1])[:3]
        notes.append("SIGTERM → exit at the end: median %.2f s, slowest %s"
                     % (median(list(stops.values())), ", ".join("%s %.2f s" % kv for kv in slow)))
    notes += res.get("odd", [])

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rel_bin = os.path.relpath(binary, REPO) if binary.startswith(REPO + os.sep) else binary
    lines = ["### webseed DHT: %d-node loopback network, lookups from fresh nodes, memory per node" % (P * M), ""]
    lines.append("%s; %s, %d cores; everything on 127.0.0.1 and --offline. Network: %d process%s of `webseed dht "
                 "--nodes %d` (chained: each process's node 0 joins through the previous process's last node). "
                 "%d random hashes, each announced by its own `webseed dht --announce HASH:PORT` process joining "
                 "at a random network node. %d lookups one after another, each from a fresh `webseed dht --lookup "
                 "HASH --exit-after-lookups` process (fresh state dir) joining at a random network node; found = its "
                 "first peers include the announcer's address. **Targets are compared with wall time from the "
                 "lookup process's spawn to its first `dht_peers` line**: the lookup starts when it is asked for, "
                 "so its join counts; this clock also includes process start-up (shown separately). webseed's own "
                 "`ms` counts only from the get_peers round that succeeded and is shown for information. Memory: "
                 "VmRSS read at the same moment after the lookups. Binary: %s, built %s (repository at %s); seed %d."
                 % (now, cpu_model(), os.cpu_count(), P, "es" if P > 1 else "", M, len(ann), len(lk), rel_bin,
                    datetime.datetime.fromtimestamp(stamp0[0]).strftime("%Y-%m-%d %H:%M:%S") if stamp0 else "?",
                    head, args.seed))
    lines += [""] + TargetTable.HEADER + table.rows + [""]
    for i, n in enumerate(notes, 1):
        lines.append("[%d] %s  " % (i, n))
    if notes:
        lines.append("")
    lines.append("All targets met: %s." % ("yes" if table.all_ok else "**no**"))
    return table.all_ok, lines


if __name__ == "__main__":
    sys.exit(main())
