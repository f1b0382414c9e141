#!/usr/bin/python3
"""Hostile peers against `webseed seed`, while a real libtorrent leecher downloads the site.

  /usr/bin/python3 Tools/interop/hostile_peers.py --webseed .build/debug/webseed --work /tmp/hostile

Loopback only. Every fake peer writes its protocol bytes by hand (struct.pack), never with
webseed's code; the peers and the site are in webseedtest.hostile, shared with Tools/soak.
Phase 1 (with a rate-limited libtorrent download running): bad handshakes, bad length prefixes,
bad requests with and without BEP 6, BEP 52 hash requests (bad and good), BEP 9 ut_metadata, a
peer that never reads. Phase 2 (download still running): 500 connections
that never handshake. Then: download byte-identical, seeder alive, peak RSS, fds back to the
idle baseline, exit 0 on SIGTERM.

Prints one `ok ...` / `FAIL ...` line per check, `info ...` lines with figures, and last
`N passed, M failed`; exits 1 on any failure.
"""

import argparse
import hashlib
import os
import signal
import sys
import threading
import time

import libtorrent as lt

from webseedtest.hostile import (HOST, Ctx, Monitor, Seeder, check_fast_requests, check_flood,
                                 check_garbage, check_hash_requests, check_non_reader,
                                 check_nonfast_requests, check_truncated, check_unknown_hash,
                                 check_ut_metadata, make_len_prefix_check, make_site)
from webseedtest.ltsession import OFFLINE, TCP_ONLY
from webseedtest.results import Results
from webseedtest.torrent import Torrent
from webseedtest.trees import fresh_dirs
from webseedtest.watchdog import Watchdog

RSS_LIMIT_MB = 100
LT_RATE = 320 * 1024           # libtorrent download limit, so the download spans both phases


R = Results()


# ---------------------------------------------------------------------------------------------
# libtorrent downloader

def lt_session():
    s = dict(OFFLINE, **TCP_ONLY)
    s.update({
        "listen_interfaces": "127.0.0.1:0",
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
        | lt.alert.category_t.peer_notification,
    })
    return lt.session(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    binary = os.path.abspath(args.webseed)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    fresh_dirs(work, ("state", "dl", "logs"))
    t_begin = time.monotonic()

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))

    ctx = Ctx(R)
    site = os.path.join(work, "site")
    ctx.files = make_site(site)
    total = sum(len(v) for v in ctx.files.values())
    R.info("site", "%d files, %d bytes" % (len(ctx.files), total))

    seeder = Seeder("seeder", [binary, "seed", site, "--listen", "%s:0" % HOST, "--offline",
                               "--state-dir", os.path.join(work, "state"), "--json"],
                    os.path.join(work, "logs"), cwd=work)
    ctx.seeder = seeder

    wd = Watchdog(150, R).start()

    def finish():
        seeder.kill()
        print(R.summary(), flush=True)
        wd.cancel()
        sys.exit(1 if R.failed else 0)

    ready = seeder.wait_for("ready", 60)
    site_ev = seeder.wait_for("site", 0.1)
    if not R.check(ready is not None and site_ev is not None, "seeder ready",
                   "pid %d" % seeder.pid if ready else "no ready event within 60 s (exit %s; see %s)"
                   % (seeder.p.poll(), os.path.join(work, "logs", "seeder.stderr"))):
        finish()
    listening = seeder.wait_for("listening", 0.1)
    ctx.port = int((listening or {}).get("port") or site_ev["magnet"].rsplit(":", 1)[1])
    tpath = site_ev["torrent"]
    if not os.path.isabs(tpath):
        tpath = os.path.join(work, tpath)
    ctx.t = Torrent(tpath)
    R.check(ctx.t.v2.hex() == site_ev["v2_infohash"] and ctx.t.v1.hex() == site_ev["v1_infohash"],
            "site event hashes match the torrent's info dict",
            "port %d, piece length %d, %d pieces, info dict %d bytes"
            % (ctx.port, ctx.t.piece_length, ctx.t.num_pieces, len(ctx.t.info_bytes)))

    # idle baseline
    base_fds = seeder.fds()
    base_rss = seeder.status_kb("VmRSS")
    R.info("seeder idle", "fds %d (sockets %d, files %d), VmRSS %d kB"
           % (base_fds[0], base_fds[1], base_fds[2], base_rss))
    mon = Monitor(seeder)
    mon.start()

    # libtorrent leecher, rate limited so that it runs through both phases
    ses = lt_session()
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(tpath)
    atp.save_path = os.path.join(work, "dl")
    h = ses.add_torrent(atp)
    h.set_download_limit(LT_RATE)
    h.connect_peer((HOST, ctx.port))
    lt_log = open(os.path.join(work, "logs", "libtorrent.log"), "w")
    t_lt = time.monotonic()
    lt_state = {"done": None, "error": None}

    def pump_lt():
        for a in ses.pop_alerts():
            lt_log.write("%.2f %s: %s\n" % (time.monotonic() - t_lt, a.what(), a.message()))
            if isinstance(a, lt.torrent_error_alert):
                lt_state["error"] = a.message()
        st = h.status()
        if lt_state["done"] is None and st.is_seeding:
            lt_state["done"] = time.monotonic() - t_lt
        return st

    # wait until libtorrent has its connection before starting the hostile peers
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and pump_lt().num_peers == 0:
        time.sleep(0.05)
    R.info("libtorrent connected", "after %.2f s, %d peers" % (time.monotonic() - t_lt,
                                                              h.status().num_peers))

    phase1 = [check_garbage, check_truncated, check_unknown_hash,
              make_len_prefix_check(0xFFFFFFFF), make_len_prefix_check(0x7FFFFFFF),
              check_fast_requests, check_nonfast_requests, check_hash_requests,
              check_ut_metadata]
    threads = [threading.Thread(target=f, args=(ctx,), daemon=True) for f in phase1]
    non_reader = threading.Thread(target=check_non_reader, args=(ctx,), daemon=True)
    for th in threads:
        th.start()
    non_reader.start()

    def join_pumping(ths, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(th.is_alive() for th in ths):
            pump_lt()
            time.sleep(0.05)
        return not any(th.is_alive() for th in ths)

    # phase 2 starts once every phase-1 peer is done (so that none of them is displaced)
    # and the stalled peer's probe ran
    if not join_pumping(threads, 40):
        R.check(False, "phase 1 checks finished in time", "still running after 40 s")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not ctx.probe_done.is_set():
        pump_lt()
        time.sleep(0.05)
    flood = threading.Thread(target=check_flood, args=(ctx,), daemon=True)
    st = pump_lt()
    R.info("phase 2 starts", "libtorrent at %.1f%% (%s)" % (st.progress * 100,
                                                           "done" if lt_state["done"] else
                                                           "still downloading"))
    flood.start()
    if not join_pumping([flood, non_reader], 40):
        R.check(False, "phase 2 checks finished in time", "still running after 40 s")

    # the download: complete and byte-identical
    h.set_download_limit(-1)
    deadline = t_lt + 90
    while time.monotonic() < deadline and lt_state["done"] is None and lt_state["error"] is None:
        pump_lt()
        time.sleep(0.1)
    st = h.status()
    R.check(lt_state["done"] is not None, "libtorrent download completes",
            "after %.2f s" % lt_state["done"] if lt_state["done"] else
            "%.1f%% after %.0f s, error %s, %d peers (see %s)"
            % (st.progress * 100, time.monotonic() - t_lt, lt_state["error"], st.num_peers,
               os.path.join(work, "logs", "libtorrent.log")))
    ses.remove_torrent(h)
    deadline = time.monotonic() + 10
    removed = False
    while time.monotonic() < deadline and not removed:
        for a in ses.pop_alerts():
            lt_log.write("%.2f %s: %s\n" % (time.monotonic() - t_lt, a.what(), a.message()))
            removed = removed or isinstance(a, lt.torrent_removed_alert)
        if not removed:
            ses.wait_for_alert(200)
    del h
    del ses            # closes libtorrent's connection to the seeder
    lt_log.close()
    if lt_state["done"] is not None:
        bad = []
        for rel, data in ctx.files.items():
            p = os.path.join(work, "dl", ctx.t.name, rel)
            try:
                got = open(p, "rb").read()
            except OSError as e:
                got = None
                bad.append("%s (%s)" % (rel, e.strerror))
                continue
            if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
                bad.append("%s (%d bytes, want %d)" % (rel, len(got), len(data)))
        R.check(not bad, "downloaded files are byte-identical to the source",
                "%d files" % len(ctx.files) if not bad else "; ".join(bad[:5]))

    # the seeder after the storm
    R.check(seeder.alive(), "seeder still running after the hostile peers",
            "" if seeder.alive() else "exited with %s" % seeder.p.poll())
    deadline = time.monotonic() + 15
    f = seeder.fds()
    while time.monotonic() < deadline and f and f[1] > base_fds[1]:
        time.sleep(0.1)
        f = seeder.fds()
    mon.stop.set()
    mon.join(2)
    if f:
        # the seeder keeps up to 128 data files open (PieceReader's descriptor cache)
        other, base_other = f[0] - f[1], base_fds[0] - base_fds[1]
        R.check(f[1] <= base_fds[1] and other <= base_other + min(len(ctx.files), 128) + 4,
                "seeder's fds return to the idle baseline (sockets exactly, + cached data files)",
                "now %d (sockets %d, files %d), idle %d (sockets %d, files %d), peak %d "
                "(sockets %d)" % (f[0], f[1], f[2], base_fds[0], base_fds[1], base_fds[2],
                                  mon.max_fds[0], mon.max_socks))
    R.check(mon.max_socks <= base_fds[1] + 200 + 10, "seeder's sockets stay near max-peers (200)",
            "peak sockets sampled %d (idle %d)" % (mon.max_socks, base_fds[1]))
    hwm = seeder.status_kb("VmHWM")
    if hwm is not None:
        R.check(hwm < RSS_LIMIT_MB * 1024, "seeder's peak RSS under %d MB" % RSS_LIMIT_MB,
                "VmHWM %.1f MB (idle VmRSS %.1f MB, max sampled VmRSS %.1f MB)"
                % (hwm / 1024, base_rss / 1024, mon.max_rss / 1024))

    # graceful exit
    if seeder.alive():
        rc, took = seeder.stop(signal.SIGTERM, 10)
        R.check(rc == 0, "seeder exits 0 on SIGTERM",
                "exit %s after %.2f s" % (rc, took) if rc is not None
                else "still running 10 s after SIGTERM")
    R.info("runtime", "%.1f s; logs in %s" % (time.monotonic() - t_begin,
                                              os.path.join(work, "logs")))
    finish()


if __name__ == "__main__":
    main()
