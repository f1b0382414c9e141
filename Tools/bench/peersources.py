"""How long a download waits for its first peer when a tracker or local discovery (BEP 14) is
the only way to find one: webseed against libtorrent 2.0.8, side by side in one run.

usage: Tools/bench/peersources [--webseed BIN] [--runs N] [--only tracker,lsd] [--out FILE]

Without --webseed it first builds webseed with `swift build -c release --product webseed` and
uses that binary (a debug binary only checks that the script works). Needs root for the lsd
case (network namespaces). Nothing leaves this host: the tracker case is on loopback, the
LSD case inside two namespaces joined by a bridge (webseedtest/lanbridge.py), which reach
nothing else.

The swarm: a small generated site (index.html and a 300 kB file) as a hybrid torrent, seeded
by one libtorrent 2.0.8 session that runs for the whole case (TCP, plaintext, several
connections per address allowed, no DHT/UPnP/NAT-PMP, no PEX). Each downloader is given only
the hybrid magnet (`xt=urn:btih:<v1>&xt=urn:btmh:<v2>`, plus `tr=` in the tracker case): the
metadata has to come from a peer found through that one source. Every run is a fresh
downloader process on a fresh listen port (the seeder never holds an old entry for it) with
an empty state directory; webseed and libtorrent alternate, which goes first alternating too.

  tracker  Debian's opentracker on 127.0.0.1 (whitelist mode, both hashes listed) and the
           seeder announcing to it over HTTP (the seeder's announce is seen by a scrape before
           the first run). Downloaders: `webseed get MAGNET --offline --no-dht --listen
           127.0.0.1:0 --json` and a libtorrent session with the same magnet.
  lsd      the seeder on host 1 with LSD on; downloaders on host 2: `webseed get MAGNET
           --no-dht --listen 10.79.0.2:0 --json` (not --offline, which turns local
           discovery off; the namespaces reach nothing) and a libtorrent session with LSD on.
           A downloader announces its torrent when it starts (both do); the seeder hears it
           and connects, or the downloader hears the seeder's next announce.

Two clocks per run, both from the downloader's start:
  peer      the first peer connection: webseed's first `peer_connected` event (its
            handshake done); libtorrent: the first poll (every 2 ms) at which the torrent's
            status counts a connected peer.
  metadata  the info dict received and checked: webseed's `metadata` event; libtorrent's
            metadata_received_alert (polled every 2 ms).
webseed is timed as the command a user runs, from spawn (exec, dynamic loading and the Swift
runtime count against it); libtorrent inside its own process, from just before its session is
made (the Python interpreter and `import libtorrent` do not count). Medians of --runs (default
8) runs per engine; a run that finds no peer within 30 s counts as ∞.

There is no target in the issue for these two figures (only "side by side"); the table says
which engine is faster and by how much. Writes the table to --out (default
artifacts/bench/peersources.md) with the runs as JSON beside it.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from webseedtest.torrents import create
from webseedtest.benchhost import (REPO, JsonProc, TargetTable, bench_workdir, build_release, end_children_at_exit,
                                   fmt_ms, git_head, log, med, require_binary, wait_idle, write_report)

RUN_TIMEOUT = 30.0
INF = float("inf")


# ---- libtorrent roles (run as their own processes, in a namespace for lsd) ---------------

def lt_settings(listen, lsd):
    import libtorrent as lt
    from webseedtest.ltsession import OFFLINE, PLAINTEXT, TCP_ONLY
    s = dict(OFFLINE)
    s.update(TCP_ONLY)
    s.update(PLAINTEXT)
    s.update({"listen_interfaces": listen, "enable_lsd": lsd, "allow_multiple_connections_per_ip": True,
              "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
              | lt.alert.category_t.tracker_notification})
    return s


def role_seed(a):
    import libtorrent as lt
    from webseedtest.ltsession import emit, new_session, wait_listen
    ses = new_session(lt_settings(a.listen, a.lsd))
    port = wait_listen(ses, "peersources seeder")
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save
    h = ses.add_torrent(atp)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    said = False
    deadline = time.time() + 3600
    while not stop and time.time() < deadline:
        time.sleep(0.05)
        for al in ses.pop_alerts():
            if isinstance(al, lt.tracker_reply_alert):
                emit({"event": "tracker_reply"})
        if not said and h.status().is_seeding:
            said = True
            emit({"event": "seeding", "port": port})
    return 0


def role_first(a):
    """One libtorrent downloader: times (ms from just before the session is made) its first
    connected peer and its metadata, then leaves."""
    import libtorrent as lt
    from webseedtest.ltsession import emit, new_session
    t0 = time.perf_counter()
    ses = new_session(lt_settings(a.listen, a.lsd))
    atp = lt.parse_magnet_uri(a.magnet)
    atp.save_path = a.save
    h = ses.add_torrent(atp)
    peer = metadata = None
    deadline = t0 + RUN_TIMEOUT
    while time.perf_counter() < deadline and (peer is None or metadata is None):
        time.sleep(0.002)
        for al in ses.pop_alerts():
            if isinstance(al, lt.metadata_received_alert) and metadata is None:
                metadata = (time.perf_counter() - t0) * 1000
        if peer is None and h.status().num_peers > 0:
            peer = (time.perf_counter() - t0) * 1000
        if metadata is None and h.status().has_metadata:
            metadata = (time.perf_counter() - t0) * 1000
    emit({"event": "result", "peer_ms": peer, "metadata_ms": metadata})
    ses.remove_torrent(h)
    return 0


# ---- the bench -----------------------------------------------------------------------------

def make_site(root):
    os.makedirs(root)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>first peer</h1>\n")
    with open(os.path.join(root, "data.bin"), "wb") as f:
        f.write(os.urandom(300_000))


def role_argv(role, *more):
    return ["/usr/bin/python3", os.path.abspath(__file__), "--role", role] + list(more)


def run_webseed(args, prefix, work, i, magnet, extra):
    state = os.path.join(work, "ws-state-%d" % i)
    out = os.path.join(work, "ws-out-%d" % i)
    p = JsonProc(prefix + [args.webseed, "get", magnet, "-o", out, "--state-dir", state, "--no-dht", "--json",
                           "--timeout", "60"] + extra, os.path.join(work, "webseed-%d.err" % i))
    peer = p.wait_event("peer_connected", RUN_TIMEOUT)
    meta = p.wait_event("metadata", max(0.1, RUN_TIMEOUT - (time.perf_counter() - p.t0)))
    p.stop()
    if not peer or not meta:
        with open(os.path.join(work, "webseed-%d.events" % i), "w") as f:
            f.write("".join(json.dumps(e) + "\n" for e in p.events))
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return ((peer["_t"] - p.t0) * 1000 if peer else INF, (meta["_t"] - p.t0) * 1000 if meta else INF)


def run_libtorrent(prefix, work, i, magnet, listen, lsd):
    save = os.path.join(work, "lt-out-%d" % i)
    p = JsonProc(prefix + role_argv("first", "--listen", listen, "--magnet", magnet, "--save", save)
                 + (["--lsd"] if lsd else []), os.path.join(work, "lt-%d.err" % i))
    res = p.wait_event("result", RUN_TIMEOUT + 15)
    p.stop()
    shutil.rmtree(save, ignore_errors=True)
    if not res:
        return INF, INF
    return (res["peer_ms"] if res["peer_ms"] is not None else INF,
            res["metadata_ms"] if res["metadata_ms"] is not None else INF)


def measure(args, name, work, ws_one, lt_one):
    runs = {"webseed": [], "libtorrent": []}
    wait_idle()
    for i in range(args.runs):
        order = [("webseed", ws_one), ("libtorrent", lt_one)]
        if i % 2:
            order.reverse()
        for engine, one in order:
            peer, meta = one(i)
            runs[engine].append({"peer_ms": peer, "metadata_ms": meta})
            log("%s run %d %s: peer %s, metadata %s" % (name, i + 1, engine, fmt_ms(peer), fmt_ms(meta)))
    return runs


def case_tracker(args, work):
    from webseedtest.procs import free_port
    sys.path.insert(0, os.path.join(REPO, "Tools", "interop"))
    from trackers import OpenTracker, free_tcp_udp_port
    site = os.path.join(work, "site")
    make_site(site)
    port = free_tcp_udp_port()
    torrent = os.path.join(work, "site.torrent")
    info = create(args.webseed, site, torrent, ["http://127.0.0.1:%d/announce" % port])
    ot = OpenTracker(work, port, [info["v1_infohash"], info["v2_infohash"][:40]])
    seeder = JsonProc(role_argv("seed", "--listen", "127.0.0.1:%d" % free_port(), "--torrent", torrent,
                                "--save", work), os.path.join(work, "seeder.err"))
    if not seeder.wait_event("seeding", 60) or not poll_seeders(ot, info["v1_infohash"]):
        sys.exit("peersources: the libtorrent seeder did not announce to opentracker (see %s)" % seeder.err.name)
    magnet = "magnet:?xt=urn:btih:%s&xt=urn:btmh:1220%s&dn=site&tr=%s" % (info["v1_infohash"], info["v2_infohash"], ot.http)
    runs = measure(args, "tracker", work,
                   lambda i: run_webseed(args, [], work, i, magnet, ["--offline", "--listen", "127.0.0.1:0"]),
                   lambda i: run_libtorrent([], work, i, magnet, "127.0.0.1:0", False))
    seeder.stop()
    ot.stop()
    return runs


def poll_seeders(ot, v1, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ot.seeders(v1) >= 1:
            return True
        time.sleep(0.2)
    return False


def case_lsd(args, work):
    from webseedtest.lanbridge import LanBridge
    site = os.path.join(work, "site")
    make_site(site)
    torrent = os.path.join(work, "site.torrent")
    info = create(args.webseed, site, torrent)
    lan = LanBridge().create()
    try:
        ns1, ns2 = (["ip", "netns", "exec", h] for h in lan.hosts)
        seeder = JsonProc(ns1 + role_argv("seed", "--listen", lan.ipv4[0] + ":6881", "--torrent", torrent,
                                          "--save", work, "--lsd"), os.path.join(work, "seeder.err"))
        if not seeder.wait_event("seeding", 60):
            sys.exit("peersources: the libtorrent seeder did not start (see %s)" % seeder.err.name)
        magnet = "magnet:?xt=urn:btih:%s&xt=urn:btmh:1220%s&dn=site" % (info["v1_infohash"], info["v2_infohash"])
        runs = measure(args, "lsd", work,
                       lambda i: run_webseed(args, ns2, work, i, magnet, ["--listen", lan.ipv4[1] + ":0"]),
                       lambda i: run_libtorrent(ns2, work, i, magnet, lan.ipv4[1] + ":0", True))
        seeder.stop()
    finally:
        problems = lan.delete()
        if problems:
            log("peersources: namespaces: %s" % "; ".join(problems))
    return runs


def summary(table, case, runs):
    for metric, key in (("first peer connected", "peer_ms"), ("metadata received", "metadata_ms")):
        ws = med([r[key] for r in runs["webseed"]])
        lt = med([r[key] for r in runs["libtorrent"]])
        ratio = "%.2f×" % (ws / lt) if ws not in (None, INF) and lt not in (None, INF, 0) else "n/a"
        table.row(case, metric + " (median of %d)" % len(runs["webseed"]),
                  "webseed %s, libtorrent %s (%s)" % (fmt_ms(ws), fmt_ms(lt), ratio))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--webseed")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--only", default="tracker,lsd")
    ap.add_argument("--out", default=os.path.join(REPO, "artifacts", "bench", "peersources.md"))
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--listen", help=argparse.SUPPRESS)
    ap.add_argument("--torrent", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    ap.add_argument("--magnet", help=argparse.SUPPRESS)
    ap.add_argument("--lsd", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "seed":
        return role_seed(args)
    if args.role == "first":
        return role_first(args)
    cases = [c for c in args.only.split(",") if c]
    if "lsd" in cases and os.geteuid() != 0:
        sys.exit("peersources: the lsd case needs root (network namespaces)")
    end_children_at_exit()
    args.webseed = os.path.abspath(args.webseed) if args.webseed else build_release()
    require_binary(args.webseed)
    work = bench_workdir("peersources")
    table = TargetTable()
    data = {"commit": git_head(), "binary": args.webseed, "runs": {}}
    for case in cases:
        fn = {"tracker": case_tracker, "lsd": case_lsd}.get(case)
        if fn is None:
            sys.exit("peersources: unknown case %r (tracker, lsd)" % case)
        d = os.path.join(work, case)
        os.makedirs(d)
        runs = fn(args, d)
        data["runs"][case] = runs
        summary(table, case, runs)
    lines = ["# Peer sources: time to the first peer (%s)" % data["commit"], "",
             "`Tools/bench/peersources --runs %d`; webseed timed from spawn, libtorrent 2.0.8 from just "
             "before its session is made." % args.runs, ""] + TargetTable.HEADER + table.rows
    write_report(args.out, lines, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
