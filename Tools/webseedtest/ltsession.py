"""libtorrent 2.0.8 session basics shared by the libtorrent programs the harnesses and benches
run (ltpeer: stand-in seeder, leecher and DHT node; ltbench: the benches' seeder and
downloaders). Needs /usr/bin/python3 (Debian's python3-libtorrent)."""

import json
import sys

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
