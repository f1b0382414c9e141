"""libtorrent peers for the interop harness (Debian python3-libtorrent 2.0.8, /usr/bin/python3),
run as `python3 -m webseedtest.ltpeer COMMAND ...` (procs.program("ltpeer")).

  ltpeer seed SOURCE... [--data DIR] [--listen HOST:PORT] [--state-dir DIR] [--json] [--offline]
      A stand-in for `webseed seed` with the same command line and JSON lines: plain TCP only
      (no uTP, encrypted handshakes refused), DHT/LSD/UPnP/NAT-PMP off, no trackers, no PEX.
      SOURCE is a directory (packaged here as a hybrid torrent with libtorrent's creator) or a
      .torrent file whose files are in --data DIR (DIR is the torrent's root directory).
      Prints {"event":"listening"...}, one {"event":"site"...} per source, {"event":"ready"}
      once every torrent is checked and seeding, {"event":"uploaded","bytes":N} (payload bytes
      sent so far, all torrents; at most every 0.25 s, only when it changed; at once, with
      "asked": true, after each SIGUSR1) and, on SIGTERM/SIGINT,
      {"event":"stopped","uploaded":N} before it exits 0.

  ltpeer leech --save DIR (--magnet URI | --torrent FILE) [--peer HOST:PORT]... [--default-settings]
                  [--timeout S] [--log FILE]
      Downloads one torrent from the given peers and prints JSON lines with timings relative to
      adding the torrent: metadata, first_byte, finished (then removes the torrent so that every
      file is closed, and exits 0), or error (the torrent stopped with an error) / timeout
      (exit 1). TCP only unless
      --default-settings (libtorrent's defaults: uTP first, then encrypted TCP, then plaintext).
      Every alert (with the peer log: the messages sent and received) goes to --log.
      --dht-node HOST:PORT (repeatable) turns on a private DHT (see loopback_dht_settings) that
      knows only those nodes, so a magnet without x.pe can find its peers through the DHT;
      the torrent is announced (get_peers + announce_peer) every --dht-announce-interval
      seconds (default 5, instead of libtorrent's 15 min: a DHT of two or three nodes on
      loopback learns of a new peer only by looking again). With it the leecher also prints
      {"event":"dht_reply","t","peers":N} (a DHT node answered with N peers) and
      {"event":"peer","t","peer":"HOST:PORT","direction":"out"|"in"} for each connection.

  ltpeer seed ... --dht [--dht-bootstrap HOST:PORT]...
      The seeder with a private DHT node on its listening port (off without these options):
      prints {"event":"dht","node_id","host","port"}, and once the node knows another node
      announces every torrent (force_dht_announce) at once and again at 5 s, 30 s, 2 min,
      then every 15 min, printing {"event":"dht_announce","t":S} each time.

  ltpeer dht [--listen HOST:PORT] [--dht-bootstrap HOST:PORT]... [--state-dir DIR]
                [--offline] [--json] [--lookup HASH]... [--announce HASH:PORT]...
                [--exit-after-lookups] [--timeout S]
      A stand-in for `webseed dht` (/work/notes/dht-contract.md) with its JSON lines (always
      printed): dht, dht_nodes (every 5 s), dht_announced ("nodes": null: libtorrent does not
      say how many nodes took the announce), dht_peers, lookup_done, stopped. HASH is 40 hex
      or a magnet (its btih and truncated btmh). libtorrent 2.0.8's Python bindings cannot
      call session.dht_announce, so --announce adds the hash as a metadata-less torrent and
      forces its DHT announce: the port announced is the node's own listening port (give
      --listen HOST:PORT with PORT the port to announce). Lookups are dht_get_peers, after
      the node knows another node and every 5 s until found. An announce_peer another node
      sends to this one prints {"event":"dht_announce_received","hash","peer":"IP:PORT"}
      (the address it came from and the port it announced).
"""

import argparse
import base64
import faulthandler
import os
import signal
import sys
import time

import libtorrent as lt

from .ltsession import (OFFLINE, PLAINTEXT, TCP_ONLY, emit, hashes_of, new_session, split_hostport,
                        wait_alerts, wait_listen)

DHT_ALERTS = (lt.alert.category_t.dht_notification | lt.alert.category_t.dht_operation_notification
              | lt.alert.category_t.stats_notification)


def loopback_dht_settings():
    """The DHT on, for a private DHT on loopback: no routers (dht_bootstrap_nodes="" also stops
    libtorrent contacting its built-in ones; nodes are given with add_dht_node), and the
    restrictions that keep several nodes of one address or /24, and loopback or private
    addresses, out of the routing table and out of searches lifted (where this libtorrent
    has the setting). LSD, UPnP and NAT-PMP stay off (OFFLINE)."""
    s = {"enable_dht": True, "dht_bootstrap_nodes": ""}
    have = lt.default_settings()
    for k in ("dht_restrict_routing_ips", "dht_restrict_search_ips", "dht_ignore_dark_internet"):
        if k in have:
            s[k] = False
    return s


class DhtNodeCount:
    """The size of a session's DHT routing table (the dht.dht_nodes counter), asked for with
    post_session_stats at most every 0.5 s; feed every alert to on_alert."""

    def __init__(self, ses):
        self.ses = ses
        self.nodes = 0
        self.asked = 0.0

    def tick(self):
        if time.time() - self.asked >= 0.5:
            self.asked = time.time()
            self.ses.post_session_stats()

    def on_alert(self, al):
        if isinstance(al, lt.session_stats_alert):
            self.nodes = al.values.get("dht.dht_nodes", self.nodes)
            return True
        return False


def dht_node_id(ses, timeout=3.0):
    """The session's DHT node id (40 hex) from its saved DHT state, or None."""
    import warnings
    deadline = time.time() + timeout
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                st = ses.dht_state()
            ids = st.get(b"node-id") if isinstance(st, dict) else None
            if ids:
                first = ids[0] if isinstance(ids, list) else ids
                if len(first) >= 20:
                    return bytes(first[:20]).hex()
        except Exception:
            pass
        if time.time() >= deadline:
            return None
        time.sleep(0.05)


def add_dht_nodes(ses, nodes):
    for n in nodes:
        ses.add_dht_node(split_hostport(n))


INCONSISTENT_HASHES = 217   # errors::torrent_inconsistent_hashes in libtorrent 2.0
cat = lt.alert.category_t


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
    ap.add_argument("--dht", action="store_true", help="run a private DHT node (see the module doc)")
    ap.add_argument("--dht-bootstrap", action="append", default=[], metavar="HOST:PORT")
    a = ap.parse_args(argv)
    dht = a.dht or bool(a.dht_bootstrap)

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
    settings.update(PLAINTEXT)
    settings.update({
        "listen_interfaces": "%s:%d" % (host, port),
        "allow_multiple_connections_per_ip": True,
        "unchoke_slots_limit": -1,
        "user_agent": "webseed-standin (libtorrent %s)" % lt.__version__,
        "alert_mask": cat.error_notification | cat.status_notification | cat.peer_notification
                      | cat.connect_notification | cat.storage_notification,
    })
    if dht:
        settings.update(loopback_dht_settings())
        settings["alert_mask"] |= DHT_ALERTS
    ses = new_session(settings)
    if dht:
        add_dht_nodes(ses, a.dht_bootstrap)
    dht_count = DhtNodeCount(ses) if dht else None

    listen_port = wait_listen(ses, "ltpeer seed", stopped=lambda: stop[0])
    if not listen_port:
        return 1
    emit({"event": "listening", "host": host, "port": listen_port})
    if dht:
        emit({"event": "dht", "node_id": dht_node_id(ses), "host": host, "port": listen_port})

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
    joined_at = None
    announce_at = [0, 5, 30, 120]    # seconds after joining; then every 15 min
    t_start = time.time()
    while not stop[0]:
        wait_alerts(ses, 200)
        if dht_count is not None:
            dht_count.tick()
            if joined_at is None and dht_count.nodes > 0:
                joined_at = time.time()
            if joined_at is not None and time.time() - joined_at >= announce_at[0]:
                announce_at.pop(0)
                if not announce_at:
                    announce_at.append(time.time() - joined_at + 900)
                for h in handles:
                    h.force_dht_announce()
                emit({"event": "dht_announce", "t": round(time.time() - t_start, 3)})
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
            if dht_count is not None and dht_count.on_alert(al):
                continue
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
    ap.add_argument("--dht-node", action="append", default=[], metavar="HOST:PORT",
                    help="a private DHT that knows only these nodes (see the module doc)")
    ap.add_argument("--dht-announce-interval", type=int, default=5, metavar="S")
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
    if a.dht_node:
        settings.update(loopback_dht_settings())
        settings["dht_announce_interval"] = a.dht_announce_interval
        settings["alert_mask"] |= cat.dht_notification | cat.dht_operation_notification
    ses = new_session(settings)
    add_dht_nodes(ses, a.dht_node)
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
        wait_alerts(ses, 100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.block_finished_alert):
                if first_byte is None:
                    first_byte = rel()
                    emit({"event": "first_byte", "t": first_byte})
                    log.write("%.3f first block finished: %s\n" % (first_byte, al.message()))
                continue
            log.write("%.3f %s: %s\n" % (rel(), type(al).__name__, al.message()))
            if a.dht_node:
                if isinstance(al, lt.dht_reply_alert):
                    emit({"event": "dht_reply", "t": rel(), "peers": al.num_peers})
                elif isinstance(al, (lt.peer_connect_alert, lt.incoming_connection_alert)):
                    emit({"event": "peer", "t": rel(), "peer": "%s:%d" % tuple(al.endpoint),
                          "direction": "in" if isinstance(al, lt.incoming_connection_alert) else "out"})
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
        wait_alerts(ses, 200)
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


# ---------------------------------------------------------------------------------------
# dht (a stand-in for `webseed dht`)
# ---------------------------------------------------------------------------------------

def dht_hashes(text):
    """A lookup or announce target: 40 hex, or a magnet (its btih and truncated btmh), as a
    list of 20-byte hashes."""
    if text.lower().startswith("magnet:"):
        ih = lt.parse_magnet_uri(text).info_hashes
        out = []
        if ih.has_v1():
            out.append(ih.v1.to_bytes())
        if ih.has_v2():
            out.append(ih.v2.to_bytes()[:20])
        if not out:
            raise ValueError("no info hash in %r" % text)
        return out
    raw = bytes.fromhex(text)
    if len(raw) != 20:
        raise ValueError("not 40 hex: %r" % text)
    return [raw]


def dht_main(argv):
    ap = argparse.ArgumentParser(prog="ltpeer.py dht")
    ap.add_argument("--listen", default="0.0.0.0:6881")
    ap.add_argument("--dht-bootstrap", action="append", default=[], metavar="HOST:PORT")
    ap.add_argument("--state-dir")
    ap.add_argument("--offline", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--lookup", action="append", default=[], metavar="HASH")
    ap.add_argument("--announce", action="append", default=[], metavar="HASH:PORT")
    ap.add_argument("--exit-after-lookups", action="store_true")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args(argv)
    try:
        lookups = [dht_hashes(x) for x in a.lookup]
        announces = [(dht_hashes(x.rpartition(":")[0]), int(x.rpartition(":")[2])) for x in a.announce]
    except ValueError as e:
        ap.error(str(e))

    stop = [False]

    def on_signal(signum, frame):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host, port = split_hostport(a.listen)
    settings = dict(OFFLINE)
    settings.update(TCP_ONLY)
    settings.update(PLAINTEXT)
    settings.update(loopback_dht_settings())
    settings.update({
        "listen_interfaces": "%s:%d" % (host, port),
        "alert_mask": cat.error_notification | cat.status_notification | DHT_ALERTS,
    })
    ses = new_session(settings)
    add_dht_nodes(ses, a.dht_bootstrap)
    count = DhtNodeCount(ses)
    listen_port = wait_listen(ses, "ltpeer dht", stopped=lambda: stop[0])
    if not listen_port:
        return 1
    emit({"event": "dht", "node_id": dht_node_id(ses), "host": host, "port": listen_port})

    handles = []
    tmp = a.state_dir or os.path.join("/tmp", "ltpeer-dht-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    for hashes, aport in announces:
        if aport != listen_port:
            sys.stderr.write("ltpeer dht: announces its own port %d, not %d\n" % (listen_port, aport))
        for h in hashes:
            # one metadata-less torrent per 20-byte hash: its DHT announce is this hash's
            atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + h.hex())
            atp.save_path = tmp
            atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
            handles.append((ses.add_torrent(atp), h.hex()))

    t0 = time.time()
    joined_at = None
    announce_at = [0, 5, 30, 120]
    found = {}                      # hash hex -> set of "ip:port"
    done = set()
    wanted = [[h.hex() for h in hs] for hs in lookups]
    last_lookup = 0.0
    last_count = 0.0
    lookup_deadline = t0 + a.timeout
    rc = 0
    timed_out = False
    while not stop[0]:
        wait_alerts(ses, 100)
        count.tick()
        now = time.time()
        if joined_at is None and (count.nodes > 0 or now - t0 > 3):
            joined_at = now
        if now - last_count >= 5:
            last_count = now
            emit({"event": "dht_nodes", "count": count.nodes})
        if joined_at is not None and announces and now - joined_at >= announce_at[0]:
            announce_at.pop(0)
            if not announce_at:
                announce_at.append(now - joined_at + 900)
            for h, x in handles:
                h.force_dht_announce()
                emit({"event": "dht_announced", "hash": x, "nodes": None})
        pending = [hs for hs in wanted if not any(x in done for x in hs)]
        if joined_at is not None and pending and now < lookup_deadline and now - last_lookup >= 5:
            last_lookup = now
            for hs in pending:
                for x in hs:
                    ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(x)))
        for al in ses.pop_alerts():
            if count.on_alert(al):
                continue
            if isinstance(al, lt.dht_announce_alert):
                # Another node's announce_peer reached this one: who, for what, which port.
                emit({"event": "dht_announce_received", "hash": al.info_hash.to_bytes().hex(),
                      "peer": "%s:%d" % (al.ip, al.port)})
            elif isinstance(al, lt.dht_get_peers_reply_alert):
                x = al.info_hash.to_bytes().hex()
                got = {"%s:%d" % tuple(p) for p in al.peers()}
                new = got - found.setdefault(x, set())
                if new and any(x in hs for hs in wanted):
                    found[x] |= new
                    emit({"event": "dht_peers", "hash": x, "peers": sorted(found[x])})
                    if x not in done:
                        done.add(x)
                        emit({"event": "lookup_done", "hash": x, "found": len(found[x])})
        pending = [hs for hs in wanted if not any(x in done for x in hs)]
        if wanted and not pending and a.exit_after_lookups:
            break
        if pending and now >= lookup_deadline:
            if not timed_out:
                timed_out = True
                for hs in pending:
                    for x in hs:
                        emit({"event": "lookup_done", "hash": x, "found": 0})
            if a.exit_after_lookups:
                rc = 1
                break
    emit({"event": "stopped"})
    ses.pause()
    del ses
    return rc


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("seed", "leech", "dht"):
        sys.stderr.write(__doc__)
        return 2
    if sys.argv[1] == "seed":
        return seed_main(sys.argv[2:])
    if sys.argv[1] == "dht":
        return dht_main(sys.argv[2:])
    return leech_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
