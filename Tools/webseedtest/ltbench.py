"""libtorrent 2.0.8 seeder and downloaders the benches run as subprocesses (Tools/bench/seed
and Tools/bench/fetch), each in its own process so that its CPU and memory are its own.

usage: /usr/bin/python3 -m webseedtest.ltbench COMMAND ...  (PYTHONPATH=Tools; Debian's
python3-libtorrent)
  seed TORRENT DATA_DIR [--listen HOST:PORT] [--resume FILE] [--default-settings] [--plaintext]
      Seeds TORRENT whose files are in DATA_DIR (the torrent's root directory, named like the
      torrent). TCP only, nothing leaves the host (no DHT/LSD/UPnP/NAT-PMP/trackers/PEX) unless
      --default-settings (then uTP and encryption stay as shipped; still offline); --plaintext
      also refuses encrypted handshakes both ways. With --resume FILE the fast-resume data
      saved by an earlier start is used (and written after the first full check), so later
      starts skip hashing, like webseed's resume record. Prints JSON lines like `webseed seed
      --json`: listening, site (with a magnet), ready, and resume_saved once the fast-resume
      data is written. Exits 0 on SIGTERM/SIGINT.

  leech --save DIR (--torrent FILE | --magnet URI) [--peer HOST:PORT]...
        [--default-settings] [--plaintext] [--first-byte-only] [--timeout S]
      Downloads one torrent and prints JSON lines with times relative to add_torrent:
      first_byte, metadata, finished; then removes the torrent (closing every file) and prints
      closed. Exit 0 on success, 1 on timeout/error. (bench/seed's downloader.)

  fetch --save DIR --torrent FILE --peer HOST:PORT [--timeout S]
      The downloader webseed get is measured against (bench/fetch): TCP only, plaintext,
      offline, otherwise default settings. Prints {"event":"finished", "t": add_torrent ->
      torrent finished in seconds, "cpu": user+sys CPU seconds of this process (all threads,
      getrusage) over the same window, "cpu_before": CPU it used before add_torrent
      (interpreter, import, session), ...}; then flushes, removes the torrent (closing every
      file) and prints closed. Exit 0 on success, 1 on timeout/error.
"""

import argparse
import os
import resource
import signal
import sys
import time

import libtorrent as lt

from .ltsession import (OFFLINE, PLAINTEXT, TCP_ONLY, emit, hashes_of, new_session, split_hostport,
                        wait_listen)

cat = lt.alert.category_t


def close_torrent(ses, h):
    """Flushes and removes the torrent, so every file is written and closed before the caller
    compares them (it also waits for this process to exit); True once it is removed."""
    h.flush_cache()
    deadline = time.time() + 30
    flushed = False
    while time.time() < deadline and not flushed:
        ses.wait_for_alert(200)
        flushed = any(isinstance(al, lt.cache_flushed_alert) for al in ses.pop_alerts())
    ses.remove_torrent(h)
    deadline = time.time() + 30
    removed = False
    while time.time() < deadline and not removed:
        ses.wait_for_alert(200)
        removed = any(isinstance(al, lt.torrent_removed_alert) for al in ses.pop_alerts())
    return removed


# ---------------------------------------------------------------------------------------

def seed_main(argv):
    ap = argparse.ArgumentParser(prog="ltbench seed")
    ap.add_argument("torrent")
    ap.add_argument("data")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--resume")
    ap.add_argument("--default-settings", action="store_true")
    ap.add_argument("--plaintext", action="store_true", help="refuse encrypted handshakes")
    a = ap.parse_args(argv)

    stop = [False]

    def on_signal(signum, frame):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host, port = split_hostport(a.listen)
    settings = dict(OFFLINE)
    if not a.default_settings:
        settings.update(TCP_ONLY)
    if a.plaintext:
        settings.update(PLAINTEXT)
    settings.update({
        "listen_interfaces": "%s:%d" % (host, port),
        "allow_multiple_connections_per_ip": True,
        "alert_mask": cat.error_notification | cat.status_notification | cat.storage_notification,
    })
    ses = new_session(settings)
    listen_port = wait_listen(ses, "ltbench seed")
    if not listen_port:
        return 1
    emit({"event": "listening", "host": host, "port": listen_port})

    ti = lt.torrent_info(a.torrent)
    data = os.path.abspath(a.data)
    if ti.name() != os.path.basename(data):
        sys.stderr.write("ltbench seed: DATA_DIR must be named like the torrent (%r)\n" % ti.name())
        return 2
    atp = None
    if a.resume and os.path.exists(a.resume):
        try:
            with open(a.resume, "rb") as f:
                atp = lt.read_resume_data(f.read())
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("ltbench seed: ignoring resume data: %s\n" % e)
            atp = None
    if atp is None:
        atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = os.path.dirname(data)
    atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    v1, v2 = hashes_of(ti)
    xts = []
    if v1:
        xts.append("xt=urn:btih:" + v1)
    if v2:
        xts.append("xt=urn:btmh:1220" + v2)
    magnet = "magnet:?" + "&".join(xts) + "&dn=" + ti.name() + "&x.pe=%s:%d" % (host, listen_port)
    emit({"event": "site", "name": ti.name(), "v2_infohash": v2, "v1_infohash": v1,
          "magnet": magnet, "torrent": os.path.abspath(a.torrent)})

    ready = False
    deadline = time.time() + 600
    while not stop[0]:
        ses.wait_for_alert(250)
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                sys.stderr.write("ltbench seed: %s\n" % al.message())
            elif isinstance(al, lt.save_resume_data_alert) and a.resume:
                tmp = a.resume + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(lt.write_resume_data_buf(al.params))
                os.replace(tmp, a.resume)
                emit({"event": "resume_saved"})
        if not ready:
            st = h.status()
            if st.is_seeding:
                ready = True
                if a.resume:
                    h.save_resume_data(lt.torrent_handle.save_info_dict)
                emit({"event": "ready", "checked": not (a.resume and os.path.exists(a.resume))})
            elif time.time() > deadline:
                sys.stderr.write("ltbench seed: data not verified in time (%s %.3f)\n" % (st.state, st.progress))
                return 1
    ses.pause()
    del ses
    return 0


# ---------------------------------------------------------------------------------------

def leech_main(argv):
    ap = argparse.ArgumentParser(prog="ltbench leech")
    ap.add_argument("--save", required=True)
    ap.add_argument("--torrent")
    ap.add_argument("--magnet")
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--default-settings", action="store_true")
    ap.add_argument("--plaintext", action="store_true", help="no encrypted handshake attempts")
    ap.add_argument("--first-byte-only", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args(argv)
    if bool(a.magnet) == bool(a.torrent):
        ap.error("give exactly one of --magnet and --torrent")

    settings = dict(OFFLINE)
    if not a.default_settings:
        settings.update(TCP_ONLY)
    if a.plaintext:
        settings.update(PLAINTEXT)
    mask = cat.error_notification | cat.status_notification | cat.storage_notification
    if a.first_byte_only:
        mask |= cat.block_progress_notification
    settings.update({"listen_interfaces": "127.0.0.1:0", "alert_mask": mask})
    ses = new_session(settings)
    wait_listen(ses, "ltbench", 5)
    os.makedirs(a.save, exist_ok=True)
    if a.magnet:
        atp = lt.parse_magnet_uri(a.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = os.path.abspath(a.save)
    atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    peers = [split_hostport(p) for p in a.peer]

    t0 = time.perf_counter()
    h = ses.add_torrent(atp)
    for p in peers:
        h.connect_peer(p)

    def rel():
        return time.perf_counter() - t0

    first_byte = metadata = None
    finished = None
    errors = []
    hash_failures = 0
    deadline = t0 + a.timeout
    last_connect = time.perf_counter()
    poll = 0.01 if a.first_byte_only else 0.1
    last_status = 0.0
    while time.perf_counter() < deadline and finished is None:
        ses.wait_for_alert(int(poll * 1000))
        for al in ses.pop_alerts():
            if isinstance(al, (lt.block_finished_alert, lt.piece_finished_alert)):
                if first_byte is None:
                    first_byte = rel()
            elif isinstance(al, lt.metadata_received_alert):
                metadata = rel()
            elif isinstance(al, lt.torrent_finished_alert):
                finished = rel()
            elif isinstance(al, lt.hash_failed_alert):
                hash_failures += 1
            elif isinstance(al, (lt.torrent_error_alert, lt.file_error_alert, lt.metadata_failed_alert)):
                errors.append(al.message())
        now = time.perf_counter()
        if a.first_byte_only or now - last_status >= 0.1 or finished is None and now - last_status >= poll:
            last_status = now
            st = h.status()
            if first_byte is None and st.total_payload_download > 0:
                first_byte = rel()
            if finished is None and st.is_seeding:
                finished = rel()
            if peers and finished is None and st.num_peers == 0 and now - last_connect > 2:
                last_connect = now
                for p in peers:
                    h.connect_peer(p)
        if a.first_byte_only and first_byte is not None:
            break
    if first_byte is not None:
        emit({"event": "first_byte", "t": first_byte, "metadata": metadata})
    st = h.status()
    out = {"event": "finished" if finished is not None else ("stopped" if a.first_byte_only and first_byte is not None else "timeout"),
           "t": finished if finished is not None else rel(), "first_byte": first_byte, "metadata": metadata,
           "payload_downloaded": st.total_payload_download, "total_download": st.total_download,
           "hash_failures": hash_failures, "errors": errors[-5:]}
    emit(out)
    removed = close_torrent(ses, h)
    emit({"event": "closed", "removed": removed})
    ses.pause()
    del ses
    ok = (finished is not None or (a.first_byte_only and first_byte is not None)) and removed
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------

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


def fetch_main(argv):
    ap = argparse.ArgumentParser(prog="ltbench fetch")
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
    wait_listen(ses, "ltbench", 5)
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
    removed = close_torrent(ses, h)
    emit({"event": "closed", "removed": removed, "t": rel()})
    ses.pause()
    del ses
    return 0 if finished is not None and removed else 1


COMMANDS = {"seed": seed_main, "leech": leech_main, "fetch": fetch_main}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
