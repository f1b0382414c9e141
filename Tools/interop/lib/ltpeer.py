#!/usr/bin/python3
"""libtorrent peers for the interop harness (Debian python3-libtorrent 2.0.8, /usr/bin/python3).

  ltpeer.py seed SOURCE... [--data DIR] [--listen HOST:PORT] [--state-dir DIR] [--json] [--offline]
      A stand-in for `webseed seed` with the same command line and JSON lines: plain TCP only
      (no uTP, encrypted handshakes refused), DHT/LSD/UPnP/NAT-PMP off, no trackers, no PEX.
      SOURCE is a directory (packaged here as a hybrid torrent with libtorrent's creator) or a
      .torrent file whose files are in --data DIR (DIR is the torrent's root directory).
      Prints {"event":"listening"...}, one {"event":"site"...} per source, {"event":"ready"}
      once every torrent is checked and seeding, {"event":"uploaded","bytes":N} (payload bytes
      sent so far, all torrents; at most every 0.25 s, only when it changed; at once, with
      "asked": true, after each SIGUSR1) and, on SIGTERM/SIGINT,
      {"event":"stopped","uploaded":N} before it exits 0.

  ltpeer.py leech --save DIR (--magnet URI | --torrent FILE) [--peer HOST:PORT]... [--default-settings]
                  [--timeout S] [--log FILE]
      Downloads one torrent from the given peers and prints JSON lines with timings relative to
      adding the torrent: metadata, first_byte, finished (then removes the torrent so that every
      file is closed, and exits 0), or error (the torrent stopped with an error) / timeout
      (exit 1). TCP only unless
      --default-settings (libtorrent's defaults: uTP first, then encrypted TCP, then plaintext).
      Every alert (with the peer log: the messages sent and received) goes to --log.
"""

import argparse
import base64
import faulthandler
import json
import os
import signal
import sys
import time

import libtorrent as lt

OFFLINE = {
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "dht_bootstrap_nodes": "",
}
TCP_ONLY = {"enable_outgoing_utp": False, "enable_incoming_utp": False}
INCONSISTENT_HASHES = 217   # errors::torrent_inconsistent_hashes in libtorrent 2.0
cat = lt.alert.category_t


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=False) + "\n")
    sys.stdout.flush()


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def new_session(settings):
    # No default plugins: no ut_pex, so leechers only ever talk to the seeder under test.
    ses = lt.session(settings, 0)
    ses.add_extension("ut_metadata")
    ses.add_extension("smart_ban")
    return ses


def hashes_of(ti_or_handle):
    ih = ti_or_handle.info_hashes()
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
    return v1, v2


# ---------------------------------------------------------------------------------------
# seed
# ---------------------------------------------------------------------------------------

def make_hybrid(src, out_path):
    fs = lt.file_storage()
    lt.add_files(fs, src)
    ct = lt.create_torrent(fs, 0, flags=0)
    lt.set_piece_hashes(ct, os.path.dirname(src))
    data = lt.bencode(ct.generate())
    with open(out_path, "wb") as f:
        f.write(data)


def seed_main(argv):
    ap = argparse.ArgumentParser(prog="ltpeer.py seed")
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--data")
    ap.add_argument("--listen", default="0.0.0.0:6881")
    ap.add_argument("--state-dir", default=None)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--offline", action="store_true")
    ap.add_argument("--recheck", action="store_true")
    a = ap.parse_args(argv)

    stop = [False]

    def on_signal(signum, frame):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    asked = [False]

    def on_usr1(signum, frame):
        asked[0] = True
    signal.signal(signal.SIGUSR1, on_usr1)

    host, port = split_hostport(a.listen)
    state = os.path.abspath(a.state_dir or os.path.join(os.getcwd(), ".ltpeer-state"))
    os.makedirs(state, exist_ok=True)
    settings = dict(OFFLINE)
    settings.update(TCP_ONLY)
    settings.update({
        "listen_interfaces": "%s:%d" % (host, port),
        "in_enc_policy": int(lt.enc_policy.pe_disabled),
        "out_enc_policy": int(lt.enc_policy.pe_disabled),
        "allow_multiple_connections_per_ip": True,
        "unchoke_slots_limit": -1,
        "user_agent": "webseed-standin (libtorrent %s)" % lt.__version__,
        "alert_mask": cat.error_notification | cat.status_notification | cat.peer_notification
                      | cat.connect_notification | cat.storage_notification,
    })
    ses = new_session(settings)

    listen_port = None
    deadline = time.time() + 20
    while listen_port is None and time.time() < deadline and not stop[0]:
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.listen_succeeded_alert) and al.socket_type == lt.socket_type_t.tcp:
                listen_port = al.port
            elif isinstance(al, lt.listen_failed_alert):
                sys.stderr.write("ltpeer seed: listen failed: %s\n" % al.message())
                return 1
    if listen_port is None:
        listen_port = ses.listen_port()
    if not listen_port:
        sys.stderr.write("ltpeer seed: not listening\n")
        return 1
    emit({"event": "listening", "host": host, "port": listen_port})

    handles = []
    for src in a.sources:
        src = os.path.abspath(src)
        if os.path.isdir(src):
            name = os.path.basename(src)
            tpath = os.path.join(state, name + ".torrent")
            make_hybrid(src, tpath)
            save = os.path.dirname(src)
        else:
            tpath = src
            if not a.data:
                sys.stderr.write("ltpeer seed: a .torrent source needs --data DIR\n")
                return 2
            data = os.path.abspath(a.data)
            save = os.path.dirname(data)
        ti = lt.torrent_info(tpath)
        if not os.path.isdir(src) and ti.name() != os.path.basename(os.path.abspath(a.data)):
            sys.stderr.write("ltpeer seed: --data must end in the torrent's name %r\n" % ti.name())
            return 2
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = save
        atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        h = ses.add_torrent(atp)
        handles.append(h)
        v1, v2 = hashes_of(ti)
        xts = []
        if v2:
            xts.append("xt=urn:btmh:1220" + v2)
        if v1:
            xts.append("xt=urn:btih:" + v1)
        magnet = "magnet:?" + "&".join(xts) + "&dn=" + ti.name() + "&x.pe=%s:%d" % (host, listen_port)
        site_id = base64.b32encode(bytes.fromhex(v2)).decode().lower().rstrip("=") if v2 else None
        emit({"event": "site", "name": ti.name(), "v2_infohash": v2, "v1_infohash": v1,
              "site_id": site_id, "magnet": magnet, "torrent": tpath})

    ready = False
    deadline = time.time() + 300
    uploaded, uploaded_at = 0, 0.0

    def total_uploaded():
        return sum(h.status().total_payload_upload for h in handles)
    while not stop[0]:
        ses.wait_for_alert(200)
        if asked[0]:
            asked[0] = False
            uploaded, uploaded_at = total_uploaded(), time.time()
            emit({"event": "uploaded", "bytes": uploaded, "asked": True})
        elif time.time() - uploaded_at >= 0.25:
            uploaded_at = time.time()
            up = total_uploaded()
            if up != uploaded:
                uploaded = up
                emit({"event": "uploaded", "bytes": up})
        for al in ses.pop_alerts():
            if isinstance(al, lt.peer_connect_alert):
                emit({"event": "peer_connected", "peer": "%s:%d" % tuple(al.endpoint)})
            elif isinstance(al, lt.incoming_connection_alert):
                emit({"event": "peer_connected", "peer": "%s:%d" % tuple(al.endpoint)})
            elif isinstance(al, lt.peer_disconnected_alert):
                emit({"event": "peer_closed", "peer": "%s:%d" % tuple(al.endpoint),
                      "reason": al.error.message()})
            elif isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                sys.stderr.write("ltpeer seed: %s\n" % al.message())
        if not ready:
            if all(h.status().is_seeding for h in handles):
                ready = True
                emit({"event": "ready"})
            elif time.time() > deadline:
                sys.stderr.write("ltpeer seed: local data not verified in time: %s\n" % [
                    (h.status().state, h.status().progress) for h in handles])
                return 1
    emit({"event": "stopped", "uploaded": total_uploaded()})
    ses.pause()
    del ses
    return 0


# ---------------------------------------------------------------------------------------
# leech
# ---------------------------------------------------------------------------------------

def leech_main(argv):
    ap = argparse.ArgumentParser(prog="ltpeer.py leech")
    ap.add_argument("--save", required=True)
    ap.add_argument("--magnet")
    ap.add_argument("--torrent")
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--default-settings", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--log")
    ap.add_argument("--resume-on-inconsistent-hashes", type=int, default=0, metavar="N",
                    help="up to N times, clear libtorrent 2.0.8's spurious "
                         "torrent_inconsistent_hashes error and resume (see below)")
    a = ap.parse_args(argv)
    if bool(a.magnet) == bool(a.torrent):
        ap.error("give exactly one of --magnet and --torrent")

    # Line-buffered: a leecher that hangs and is killed still leaves its log.
    log = open(a.log, "w", buffering=1) if a.log else open(os.devnull, "w")
    # `kill -USR1 PID` prints every thread's Python stack to stderr (the harness does this
    # before killing a leecher that overran its time).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = dict(OFFLINE)
    if not a.default_settings:
        settings.update(TCP_ONLY)
        # reconnect to the seeder at once after a resume (default: not within 60 s)
        settings["min_reconnect_time"] = 1
    settings.update({
        "listen_interfaces": a.listen,
        "alert_queue_size": 100000,
        "alert_mask": cat.error_notification | cat.status_notification | cat.peer_notification
                      | cat.connect_notification | cat.storage_notification
                      | cat.block_progress_notification | cat.peer_log_notification
                      | cat.torrent_log_notification,
    })
    ses = new_session(settings)
    os.makedirs(a.save, exist_ok=True)
    if a.magnet:
        atp = lt.parse_magnet_uri(a.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = os.path.abspath(a.save)
    atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    t0 = time.time()
    h = ses.add_torrent(atp)
    peers = [split_hostport(p) for p in a.peer]
    for p in peers:
        h.connect_peer(p)
    # The magnet's x.pe peers: libtorrent connects to them by itself; they are only
    # reconnected by hand after a resume (below), so that timings stay libtorrent's own.
    magnet_peers = [tuple(p) for p in (atp.peers or [])]
    emit({"event": "added", "t": 0.0, "settings": "default" if a.default_settings else "tcp-only"})

    def rel():
        return round(time.time() - t0, 3)

    got_meta = atp.ti is not None if not a.magnet else False
    first_byte = None
    finished = False
    hash_failures = 0
    errors = []
    reasons = {}
    deadline = t0 + a.timeout
    last_reconnect = time.time()
    stopped_by_error = False
    inconsistent = []
    while time.time() < deadline and not finished:
        ses.wait_for_alert(100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.block_finished_alert):
                if first_byte is None:
                    first_byte = rel()
                    emit({"event": "first_byte", "t": first_byte})
                    log.write("%.3f first block finished: %s\n" % (first_byte, al.message()))
                continue
            log.write("%.3f %s: %s\n" % (rel(), type(al).__name__, al.message()))
            if isinstance(al, lt.metadata_received_alert):
                got_meta = True
                emit({"event": "metadata", "t": rel()})
            elif isinstance(al, lt.torrent_finished_alert):
                finished = True
            elif isinstance(al, lt.hash_failed_alert):
                hash_failures += 1
            elif isinstance(al, lt.peer_disconnected_alert):
                r = al.error.message()
                reasons[r] = reasons.get(r, 0) + 1
            elif (isinstance(al, lt.torrent_error_alert) and al.error.value() == INCONSISTENT_HASHES
                  and al.error.category().name() == "libtorrent"
                  and len(inconsistent) < a.resume_on_inconsistent_hashes):
                # libtorrent 2.0.8 race: add_hashes() reports a piece that passed its hash
                # check but is not yet written to disk as "passed but not had" and stops
                # the torrent (fixed upstream, libtorrent PR #8846). A user would press
                # resume; so do we, and the files are compared byte for byte anyway.
                inconsistent.append(rel())
                h.clear_error()
                h.resume()
                peers += [p for p in magnet_peers if p not in peers]
                emit({"event": "inconsistent_hashes_resumed", "t": rel()})
            elif isinstance(al, (lt.torrent_error_alert, lt.file_error_alert,
                                 lt.metadata_failed_alert)):
                errors.append(al.message())
        if errors and h.status().errc.value() != 0:
            stopped_by_error = True
            break   # the torrent stopped with an error: it will not finish by itself
        st = h.status()
        if st.is_seeding or st.is_finished and st.has_metadata and st.progress >= 1:
            finished = True
        # Reconnect to the given peers if nothing is connected (the first attempt may
        # have been refused while the torrent was still starting).
        if not finished and st.num_peers == 0 and time.time() - last_reconnect > 2 and peers:
            last_reconnect = time.time()
            for p in peers:
                h.connect_peer(p)
            log.write("%.3f reconnecting to %s\n" % (rel(), peers))
    st = h.status()
    summary = {"event": "finished" if finished else "error" if stopped_by_error else "timeout",
               "t": rel(),
               "metadata": got_meta, "first_byte": first_byte,
               "payload_downloaded": st.total_payload_download, "total_wanted": st.total_wanted,
               "progress": round(st.progress, 4), "state": str(st.state),
               "hash_failures": hash_failures, "disconnects": reasons, "errors": errors[-5:],
               "inconsistent_hashes_resumed": inconsistent}
    if finished:
        name = h.torrent_file().name() if h.torrent_file() else None
        summary["name"] = name
        v1, v2 = hashes_of(h)
        summary["v1"], summary["v2"] = v1, v2
    # Close every file before the caller compares them.
    ses.remove_torrent(h)
    rdeadline = time.time() + 15
    removed = False
    while time.time() < rdeadline and not removed:
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            log.write("%.3f %s: %s\n" % (rel(), type(al).__name__, al.message()))
            if isinstance(al, lt.torrent_removed_alert):
                removed = True
    summary["removed"] = removed
    emit(summary)
    log.close()
    ses.pause()
    del ses
    return 0 if finished and removed else 1


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("seed", "leech"):
        sys.stderr.write(__doc__)
        return 2
    if sys.argv[1] == "seed":
        return seed_main(sys.argv[2:])
    return leech_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
