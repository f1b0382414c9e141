"""libtorrent 2.0.8 session basics shared by the libtorrent programs the harnesses and benches
run (ltpeer: stand-in seeder, leecher and DHT node; ltbench: the benches' seeder and
downloaders). Needs /usr/bin/python3 (Debian's python3-libtorrent)."""

import json
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
"""Nothing leaves the host: no DHT routers, LSD, UPnP or NAT-PMP (INTEROP.md)."""

TCP_ONLY = {"enable_outgoing_utp": False, "enable_incoming_utp": False}
"""libtorrent tries uTP first; against a TCP-only peer the fallback costs seconds."""

PLAINTEXT = {"out_enc_policy": int(lt.enc_policy.pe_disabled),
             "in_enc_policy": int(lt.enc_policy.pe_disabled)}
"""No encrypted handshakes either way (webseed speaks plaintext only)."""


def tracker_settings(listen):
    """A session that finds peers only through trackers (offline otherwise, TCP, plaintext),
    announcing to every tracker and tier, several connections per address allowed (the
    harnesses put every peer on 127.0.0.1), with tracker alerts on."""
    s = dict(OFFLINE)
    s.update(TCP_ONLY)
    s.update(PLAINTEXT)
    s.update({"listen_interfaces": listen, "allow_multiple_connections_per_ip": True,
              "announce_to_all_tiers": True, "announce_to_all_trackers": True,
              "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
              | lt.alert.category_t.tracker_notification})
    return s


def emit(obj):
    """One JSON line on stdout, like webseed's --json output, flushed for the harness's reader."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def new_session(settings):
    """A session without the default plugins (no ut_pex), so a peer only ever talks to the
    peers it is given."""
    ses = lt.session(settings, 0)
    ses.add_extension("ut_metadata")
    ses.add_extension("smart_ban")
    return ses


def hashes_of(ti_or_handle):
    """(v1 hex or None, v2 hex or None)."""
    ih = ti_or_handle.info_hashes()
    v2 = ih.v2.to_bytes().hex() if ih.has_v2() else None
    v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
    return v1, v2


def wait_alerts(ses, ms):
    """Waits for alerts to pop. libtorrent 2.0.8's Python wait_for_alert() turns the alert at
    the front of the queue into a Python object after releasing the session's lock; if
    libtorrent posts alerts meanwhile and the queue grows, that alert has moved and the
    conversion reads freed memory (seen: segfaults in libstdc++'s __dynamic_cast in sessions
    whose alerts come fast — the DHT on, or peer logging with eight leechers at once, where a
    leecher process dying this way looked like a frozen download). So every session just
    sleeps between pop_alerts() calls (at most 50 ms)."""
    time.sleep(min(ms, 50) / 1000.0)


def wait_listen(ses, who, timeout=20.0, stopped=lambda: False):
    """The TCP port the session listens on once libtorrent says so (within timeout s, or until
    stopped()), else None after saying why on stderr (`who`: the program)."""
    deadline = time.time() + timeout
    while time.time() < deadline and not stopped():
        wait_alerts(ses, 200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.listen_succeeded_alert) and al.socket_type == lt.socket_type_t.tcp:
                return al.port
            if isinstance(al, lt.listen_failed_alert):
                sys.stderr.write("%s: listen failed: %s\n" % (who, al.message()))
                return None
    port = ses.listen_port()
    if not port:
        sys.stderr.write("%s: not listening\n" % who)
    return port or None
