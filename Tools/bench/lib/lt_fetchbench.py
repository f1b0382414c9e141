"""Worker run as subprocesses by Tools/bench/fetch: the libtorrent 2.0.8 seeder both downloaders
fetch from, and the libtorrent 2.0.8 downloader webseed is measured against.

usage (/usr/bin/python3, Debian's python3-libtorrent):
  lt_fetchbench.py seed TORRENT DATA_DIR [--listen HOST:PORT] [--resume FILE]
      Seeds TORRENT whose files are in DATA_DIR (the torrent's root directory, named like the
      torrent): plain TCP only (no uTP, encrypted handshakes refused both ways), nothing leaves
      the host (no DHT/LSD/UPnP/NAT-PMP/trackers/PEX), otherwise libtorrent's default settings.
      With --resume FILE the fast-resume data saved by an earlier start is used (and written
      after the first full check), so later starts skip hashing. Prints JSON lines like
      lt_seedbench.py seed: listening, site, ready. Exits 0 on SIGTERM/SIGINT.

  lt_fetchbench.py leech --save DIR --torrent FILE --peer HOST:PORT [--timeout S]
      Downloads one torrent (TCP only, plaintext, offline, otherwise default settings) and
      prints JSON lines: {"event":"finished", "t": add_torrent -> torrent finished in seconds,
      "cpu": user+sys CPU seconds of this process (all threads, getrusage) over the same window,
      "cpu_before": CPU it used before add_torrent (interpreter, import, session), ...}; then
      flushes, removes the torrent (closing every file) and prints closed. Exit 0 on success,
      1 on timeout/error.
"""

import argparse
import os
import resource
import signal
import sys
import time

import libtorrent as lt

from lt_seedbench import OFFLINE, TCP_ONLY, emit, new_session, split_hostport, wait_listen

PLAINTEXT = {"out_enc_policy": int(lt.enc_policy.pe_disabled), "in_enc_policy": int(lt.enc_policy.pe_disabled)}
cat = lt.alert.category_t


def own_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def hwm_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------------

def seed_main(argv):
    ap = argparse.ArgumentParser(prog="lt_fetchbench.py seed")
    ap.add_argument("torrent")
    ap.add_argument("data")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--resume")
    a = ap.parse_args(argv)

    stop = [False]

    def on_signal(signum, frame):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host, port = split_hostport(a.listen)
    settings = dict(OFFLINE)
    settings.update(TCP_ONLY)
    settings.update(PLAINTEXT)
    settings.update({
        "listen_interfaces": "%s:%d" % (host, port),
        "allow_multiple_connections_per_ip": True,
        "alert_mask": cat.error_notification | cat.status_notification | cat.storage_notification,
    })
    ses = new_session(settings)
    listen_port = wait_listen(ses)
    if not listen_port:
        return 1
    emit({"event": "listening", "host": host, "port": listen_port})

    ti = lt.torrent_info(a.torrent)
    data = os.path.abspath(a.data)
    if ti.name() != os.path.basename(data):
        sys.stderr.write("lt_fetchbench seed: DATA_DIR must be named like the torrent (%r)\n" % ti.name())
        return 2
    atp = None
    if a.resume and os.path.exists(a.resume):
        try:
            with open(a.resume, "rb") as f:
                atp = lt.read_resume_data(f.read())
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("lt_fetchbench seed: ignoring resume data: %s\n" % e)
            atp = None
    if atp is None:
        atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = os.path.dirname(data)
    atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    ih = ti.info_hashes()
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
    emit({"event": "site", "name": ti.name(), "v2_infohash": v2, "v1_infohash": v1,
          "torrent": os.path.abspath(a.torrent)})

    ready = False
    deadline = time.time() + 600
    while not stop[0]:
        ses.wait_for_alert(250)
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                sys.stderr.write("lt_fetchbench seed: %s\n" % al.message())
            elif isinstance(al, lt.save_resume_data_alert) and a.resume:
                tmp = a.resume + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(lt.write_resume_data_buf(al.params))
                os.replace(tmp, a.resume)
        if not ready:
            st = h.status()
            if st.is_seeding:
                ready = True
                if a.resume:
                    h.save_resume_data(lt.torrent_handle.save_info_dict)
                emit({"event": "ready", "checked": not (a.resume and os.path.exists(a.resume))})
            elif time.time() > deadline:
                sys.stderr.write("lt_fetchbench seed: data not verified in time (%s %.3f)\n" % (st.state, st.progress))
                return 1
    ses.pause()
    del ses
    return 0


# ---------------------------------------------------------------------------------------

def leech_main(argv):
    ap = argparse.ArgumentParser(prog="lt_fetchbench.py leech")
    ap.add_argument("--save", required=True)
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args(argv)

    settings = dict(OFFLINE)
    settings.update(TCP_ONLY)
    settings.update(PLAINTEXT)
    settings.update({"listen_interfaces": "127.0.0.1:0",
                     "alert_mask": cat.error_notification | cat.status_notification | cat.storage_notification})
    ses = new_session(settings)
    wait_listen(ses, 5)
    os.makedirs(a.save, exist_ok=True)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = os.path.abspath(a.save)
    atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    peers = [split_hostport(p) for p in a.peer]

    cpu0 = own_cpu()
    t0 = time.perf_counter()
    h = ses.add_torrent(atp)
    for p in peers:
        h.connect_peer(p)

    def rel():
        return time.perf_counter() - t0

    finished = cpu = None
    errors = []
    hash_failures = 0
    deadline = t0 + a.timeout
    last_connect = last_status = time.perf_counter()
    while time.perf_counter() < deadline and finished is None:
        ses.wait_for_alert(50)
        for al in ses.pop_alerts():
            if isinstance(al, lt.torrent_finished_alert) and finished is None:
                finished, cpu = rel(), own_cpu() - cpu0
            elif isinstance(al, lt.hash_failed_alert):
                hash_failures += 1
            elif isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                errors.append(al.message())
        now = time.perf_counter()
        if finished is None and now - last_status >= 0.1:
            last_status = now
            st = h.status()
            if st.is_seeding:
                finished, cpu = rel(), own_cpu() - cpu0
            elif peers and st.num_peers == 0 and now - last_connect > 2:
                last_connect = now
                for p in peers:
                    h.connect_peer(p)
    st = h.status()
    emit({"event": "finished" if finished is not None else "timeout",
          "t": finished if finished is not None else rel(), "cpu": cpu, "cpu_before": cpu0,
          "payload_downloaded": st.total_payload_download, "total_download": st.total_download,
          "hash_failures": hash_failures, "errors": errors[-5:], "hwm_kb": hwm_kb()})
    # Flush and close every file before the caller compares them.
    h.flush_cache()
    fdeadline = time.time() + 30
    flushed = False
    while time.time() < fdeadline and not flushed:
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.cache_flushed_alert):
                flushed = True
    ses.remove_torrent(h)
    rdeadline = time.time() + 30
    removed = False
    while time.time() < rdeadline and not removed:
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.torrent_removed_alert):
                removed = True
    emit({"event": "closed", "removed": removed, "t": rel()})
    ses.pause()
    del ses
    return 0 if finished is not None and removed else 1


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("seed", "leech"):
        sys.stderr.write(__doc__)
        return 2
    if sys.argv[1] == "seed":
        return seed_main(sys.argv[2:])
    return leech_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
