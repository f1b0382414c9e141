#!/usr/bin/python3
"""The webseed gateway as a tracker: real clients find each other, and the gateway, through its
`GET /announce` (BEP 3, compact BEP 23, peers6 BEP 7), with no DHT, LSD, PEX or UPnP anywhere,
no peer given and no other tracker. Every webseed here runs with --offline: its tracker is on
this host, so it works offline.

The site's hybrid torrent names the gateway's own origin as its only tracker,
http://127.0.0.1:G/announce, where `webseed seed` serves the site (its one site is at the root
of that host, and an announce there is the tracker's). The gateway lists itself (its peer port)
as a seeder of the sites it holds.

  a  a `webseed gateway` holding the site by its v2 magnet alone (no data, no peer source of
     its own) is the tracker: libtorrent seeds the site (given the .torrent); qBittorrent-nox,
     given only the .torrent, downloads from it: libtorrent's connection alerts name qBittorrent
     (peer id -qB…), and the files are compared after qBittorrent shut down
  b  aria2c 1.37 (only tracker: the gateway, over HTTP) downloads the hybrid's v1 side from
     webseed, which the gateway named (the only seeder); files compared (pads under .pad/ all
     zero)
  c  libtorrent alone, given a magnet whose only source is tr=the gateway, finds webseed
     itself through it and downloads; a raw announce shows the gateway lists exactly its own
     peer port
  d  Transmission 3.00 (v1-only .torrent made with libtorrent's creator, tracker
     http://10.78.0.1:G/announce) in a pair of network namespaces made here: `webseed seed
     --offline` on 10.78.0.1 (its own tracker client skips that non-loopback tracker; the
     gateway still lists itself), transmission-cli on 10.78.0.2 finds it through /announce and
     downloads; files compared; namespaces deleted
  e  hostile announces, each answered with a bencoded failure reason (or a bounded answer)
     while the gateway keeps serving: no/short/long info_hash, an unknown hash, bad
     percent-encoding, a repeated key, 100 parameters, a 3 KB query, numwant=100000, POST;
     then 10,000 announces from as many fake ports: every answer holds at most the per-address
     bound of peers and stays small, webseed is still listed, `/api/status` counts the
     announces (and a bounded number of peers kept), and a file of the site still answers
  f  IPv6: `webseed seed --listen '*:0'` (peers on 0.0.0.0 and [::]), its gateway on [::1]: an
     IPv6 announce is answered with webseed at [::1] in `peers6` (BEP 7) and nothing in
     `peers`; libtorrent listening on [::1], whose only source is the gateway, downloads
  g  `webseed gateway` holding a site it fetches (its .torrent given; tracker: the gateway
     itself): a libtorrent seeder announces there, the gateway's own tracker client finds it
     through its own /announce and fetches the whole site; the gateway then lists itself as
     a seeder, and once the libtorrent seeder is gone a libtorrent leecher downloads from it

Usage: /usr/bin/python3 Tools/interop/gateway_tracker.py --webseed .build/debug/webseed --work DIR [--only a,b,...]
Needs root for d (network namespaces) and Tools/setup (qbittorrent-nox, transmission-cli,
aria2c in /opt/webseed-venv). Loopback and the test's namespaces only.
One `ok`/`FAIL` line per check; ends with `N passed, M failed`.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("gateway_tracker: cannot import libtorrent; run with /usr/bin/python3 after Tools/setup\n")
    sys.exit(2)

from webseedtest.bencode import bdecode
from webseedtest.cases import add_only, chosen_cases
from webseedtest.clients import ARIA2C, QBittorrent, TransmissionCli, aria2_argv
from webseedtest.ltsession import new_session, tracker_settings as lt_settings, wait_alerts
from webseedtest.netns import NetnsPair
from webseedtest.procs import Proc, free_port, poll, tail
from webseedtest.results import Results
from webseedtest.torrents import create, v1_torrent
from webseedtest.tracker import compact_peers, escaped
from webseedtest.trees import compare_tree, fresh_dirs

r = Results()

CLIENT_TIMEOUT = 60
"""Seconds a client download may take: every wait below is bounded by it or by less."""

PER_ADDRESS = 16
"""TrackerTable.Limits.peersPerAddress: entries one address keeps in one torrent."""


def make_site(root, tag):
    os.makedirs(os.path.join(root, "css"), exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>the origin is the tracker (%s)</h1>\n" % tag)
    with open(os.path.join(root, "css", "site.css"), "w") as f:
        f.write("h1 { color: teal }\n" * 50)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(700_000))


class Gateway:
    """`webseed seed` of one torrent with its gateway on HOST:PORT (and --offline)."""

    def __init__(self, args, name, torrent, site, host, port, work, prefix=(), listen=None):
        self.host, self.port = host, port
        self.proc = Proc(name, list(prefix) + [
            args.webseed, "seed", torrent, "--data", site, "--offline", "--no-dht", "--listen", listen or host + ":0",
            "--gateway", "%s:%d" % (host, port), "--state-dir", os.path.join(work, "state-" + name), "--json"], work)
        self.ready = self.proc.wait_for("ready", 30) is not None
        listening = self.proc.wait_for("listening", 1) or {}
        self.peer_port = listening.get("port")
        gw = self.proc.wait_for("gateway", 1) or {}
        self.gateway_port = gw.get("port")

    def stop(self):
        self.proc.stop()


def announce(host, port, query, method="GET", conn=None, path="/announce", host_header=None):
    """(status, body bytes) of one request to /announce?query (on conn when given; Host is
    HOST:PORT unless host_header says otherwise)."""
    own = conn is None
    c = conn or http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request(method, path + ("?" + query if query is not None else ""),
                  headers={"Host": host_header} if host_header else {})
        resp = c.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            c.close()


def query(info_hash, port, left=0, peer_id=b"-PY0001-abcdefghijkl", more=""):
    return "info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1%s" % (
        escaped(info_hash), escaped(peer_id), port, left, more)


def failure(body):
    try:
        d = bdecode(body)[0]
    except Exception:
        return None
    f = d.get(b"failure reason") if isinstance(d, dict) else None
    return f.decode(errors="replace") if f is not None else None


# ---------------------------------------------------------------------------------------

def lt_seeder(torrent, save_parent):
    """A libtorrent session seeding `torrent` (data under save_parent/<name>), announcing only to
    the torrent's tracker, with alerts about its connections. Returns (session, handle, listen
    port) once it is seeding and has had a tracker reply, or (session, handle, None)."""
    settings = lt_settings("127.0.0.1:0")
    settings["alert_mask"] |= lt.alert.category_t.connect_notification | lt.alert.category_t.peer_notification
    ses = new_session(settings)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_parent
    h = ses.add_torrent(atp)
    replied = False
    deadline = time.time() + 30
    while time.time() < deadline and not (replied and h.status().is_seeding):
        wait_alerts(ses, 100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.tracker_reply_alert):
                replied = True
    return ses, h, (ses.listen_port() if replied and h.status().is_seeding else None)


def lt_leech(magnet, save, listen="127.0.0.1:0"):
    """A libtorrent leecher of `magnet` (its trackers only). Returns (finished?, {"ip:port" of
    every peer it tried}): taken from its peer_connect alerts, so a peer it left as soon as
    both were seeds still counts."""
    settings = lt_settings(listen)
    settings["alert_mask"] |= lt.alert.category_t.connect_notification
    ses = new_session(settings)
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = save
    h = ses.add_torrent(atp)
    deadline = time.time() + CLIENT_TIMEOUT
    peers = set()
    done = False
    while time.time() < deadline and not done:
        wait_alerts(ses, 100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.peer_connect_alert):
                ip, port = al.endpoint
                peers.add(("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port))
        st = h.status()
        done = st.has_metadata and st.is_seeding
    ses.remove_torrent(h)
    # Deleting the session waits for its shutdown, which closes (flushes) the files it wrote.
    del ses
    return done, peers


def case_qbt(args):
    """a: libtorrent seeds, qBittorrent downloads; they meet through the /announce of a
    `webseed gateway` that holds the site by its v2 magnet alone (no data, no peer source of
    its own), so libtorrent is the only seeder qBittorrent can learn of."""
    if not shutil.which("qbittorrent-nox"):
        r.fail("a: qbittorrent-nox is installed", "run Tools/setup")
        return
    work = os.path.join(args.work, "a")
    site = os.path.join(work, "site")
    make_site(site, "a")
    port = free_port()
    tracker = "http://127.0.0.1:%d/announce" % port
    torrent = os.path.join(work, "site.torrent")
    info = create(args.webseed, site, torrent, [tracker])
    v2short = bytes.fromhex(info["v2_infohash"][:40])
    gw = Proc("gateway-a", [args.webseed, "gateway", "magnet:?xt=urn:btmh:1220%s&dn=site" % info["v2_infohash"],
                            "--listen", "127.0.0.1:%d" % port, "--peer-listen", "127.0.0.1:0", "--offline", "--no-dht",
                            "--state-dir", os.path.join(work, "state"), "--json"], work)
    ses = h = q = None
    try:
        if not r.check(gw.wait_for("ready", 30) is not None, "a: webseed gateway --offline holds the site by its v2 magnet, tracker %s"
                       % tracker, more=gw.log_tail(8)):
            return
        ses, h, lt_port = lt_seeder(torrent, work)
        if not r.check(lt_port is not None, "a: libtorrent seeds the site and the gateway answered its announce"):
            return
        # Its announce is in the gateway's table now: a raw announce names it.
        _, peers = compact_peers(announce("127.0.0.1", port, query(v2short, 1, left=1))[1])
        r.check(peers is not None and "127.0.0.1:%d" % lt_port in peers,
                "a: the gateway lists libtorrent (127.0.0.1:%d) for the truncated v2 hash" % lt_port, "answer %s" % peers)
        announce("127.0.0.1", port, query(v2short, 1, left=1, more="&event=stopped"))  # not a peer
        q = QBittorrent(work, os.path.join(work, "logs"))
        version = q.start()
        if not r.check(version is not None, "a: qBittorrent's Web API is up", "version %s" % version, more=q.log_lines(10)):
            return
        q.set_preferences(enable_multi_connections_from_same_ip=True)
        prefs = q.preferences()
        want = {"dht": False, "lsd": False, "pex": False, "upnp": False, "enable_multi_connections_from_same_ip": True}
        got = {k: prefs.get(k) for k in want}
        if not r.check(got == want, "a: qBittorrent has DHT, LSD, PeX and UPnP off", str(got)):
            return
        dl = os.path.join(work, "qbt-dl")
        q.add_torrent(torrent, dl)
        hashes = {info["v1_infohash"], info["v2_infohash"][:40]}
        # Loopback transfers end within milliseconds: qBittorrent (peer id -qB…) is recognised
        # in libtorrent's alerts about each connection (a disconnect names the peer id too)
        # and in its peer list.
        from_qbt = set()

        def done():
            for al in ses.pop_alerts():
                if isinstance(al, (lt.peer_connect_alert, lt.peer_disconnected_alert)) and al.pid.to_bytes().startswith(b"-qB"):
                    from_qbt.add("%s:%d" % tuple(al.endpoint))
            for pi in h.get_peer_info():
                if pi.pid.to_bytes().startswith(b"-qB"):
                    from_qbt.add("%s:%d" % tuple(pi.ip))
            mine = [t for t in q.torrents() if t.get("hash") in hashes]
            if mine and mine[0].get("progress") == 1 and mine[0].get("amount_left", 1) == 0:
                return mine[0]
            return "exited" if not q.proc.alive() else None
        t0 = time.time()
        t = poll(done, CLIENT_TIMEOUT, interval=0.05)
        ok = isinstance(t, dict)
        trackers = [(x.get("url"), x.get("status"), x.get("msg")) for x in q.trackers(t["hash"])] if ok else []
        r.check(ok, "a: qBittorrent, given only the .torrent, completed", "%.1fs; trackers %s" % (time.time() - t0, trackers),
                more=[] if ok else q.log_lines(15) + gw.log_tail(6))
        r.check(bool(from_qbt), "a: libtorrent (127.0.0.1:%d) and qBittorrent were connected: they found each other through the gateway"
                % lt_port, "libtorrent's connections from qBittorrent: %s" % sorted(from_qbt))
        q.stop()
        q = None
        if ok:
            same, summary, problems = compare_tree(site, os.path.join(dl, "site"))
            r.check(same, "a: the files qBittorrent wrote equal the site", summary, more=problems[:3])
    finally:
        if q is not None:
            q.stop()
        gw.stop()
        if ses is not None:
            ses.remove_torrent(h)
            del ses


def case_aria2(args, gw, p):
    """b: aria2c, whose only tracker is the gateway, downloads from webseed."""
    if not os.access(ARIA2C, os.X_OK):
        r.fail("b: aria2c 1.37 is installed", "%s not found: run Tools/setup" % ARIA2C)
        return
    work = os.path.join(args.work, "b")
    os.makedirs(work, exist_ok=True)
    save = os.path.join(work, "aria2-dl")
    log = os.path.join(work, "aria2.log")
    argv = aria2_argv(ARIA2C, p["torrent"], save, p["tracker"], free_port(), log)
    argv.insert(1, "--interface=127.0.0.1")
    argv.insert(1, "--no-conf")
    before = len(gw.proc.event_times(lambda e: e.get("event") == "peer_connected"))
    t0 = time.time()
    aria = Proc("aria2c-b", argv, work)
    rc = aria.wait(CLIENT_TIMEOUT)
    if rc is None:
        aria.stop(timeout=3)
    r.check(rc == 0, "b: aria2c found webseed through the gateway's /announce and completed",
            "exit %s after %.1fs" % (rc, time.time() - t0),
            more=[] if rc == 0 else ["[aria2 log] " + l for l in tail(log, 20, grep=("ERROR", "WARN", "NOTICE", "racker"))]
            + gw.proc.log_tail(6))
    after = len(gw.proc.event_times(lambda e: e.get("event") == "peer_connected"))
    r.check(after > before, "b: aria2c connected to webseed, which the gateway named (no other seeder is running)",
            "%d peer_connected events during the download" % (after - before))
    if rc == 0:
        same, summary, problems = compare_tree(p["site"], os.path.join(save, "site"))
        r.check(same, "b: the files aria2c wrote equal the site (BEP 47 pads under .pad/ all zero)", summary, more=problems[:3])


def case_self(args, gw, p):
    """c: libtorrent, with only the gateway as tracker, finds webseed itself and downloads."""
    _, peers = compact_peers(announce("127.0.0.1", gw.port, query(bytes.fromhex(p["v2"][:40]), 2, left=1))[1])
    want = "127.0.0.1:%d" % gw.peer_port
    r.check(peers is not None and want in peers, "c: the gateway lists webseed's own peer port (%s) for the truncated v2 hash"
            % want, "answer %s" % peers)
    announce("127.0.0.1", gw.port, query(bytes.fromhex(p["v2"][:40]), 2, left=1, more="&event=stopped"))  # not a peer
    work = os.path.join(args.work, "c")
    os.makedirs(work, exist_ok=True)
    magnet = "magnet:?xt=urn:btih:%s&tr=%s" % (p["v1"], urllib.parse.quote(p["tracker"], safe=""))
    done, peers_seen = lt_leech(magnet, os.path.join(work, "lt"))
    r.check(done and want in peers_seen, "c: libtorrent found webseed (%s) through the gateway alone and downloaded the site" % want,
            "finished=%s peers %s" % (done, sorted(peers_seen)))
    if done:
        same, summary, problems = compare_tree(p["site"], os.path.join(work, "lt", "site"))
        r.check(same, "c: the files libtorrent wrote equal the site", summary, more=problems[:3])
    saw = [e.get("address", "") for _, e in gw.proc.event_times(lambda e: e.get("event") == "peer_connected")]
    r.check(any(a.startswith("127.0.0.1:") for a in saw), "c: webseed saw a peer connect", "peer_connected %s" % saw[:4])


def compact_peers6(body):
    """["[ip]:port", …] of an answer's peers6."""
    import ipaddress
    p = bdecode(body)[0].get(b"peers6", b"")
    return ["[%s]:%d" % (ipaddress.IPv6Address(p[i:i + 16]), p[i + 16] << 8 | p[i + 17]) for i in range(0, len(p) - 17, 18)]


def case_ipv6(args):
    """f: everything on ::1: the gateway answers an IPv6 client with itself in peers6 (BEP 7),
    and libtorrent on ::1, whose only source is that tracker, downloads from webseed."""
    work = os.path.join(args.work, "f")
    site = os.path.join(work, "site")
    make_site(site, "f")
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    port = s6.getsockname()[1]
    s6.close()
    tracker = "http://[::1]:%d/announce" % port
    torrent = os.path.join(work, "site.torrent")
    info = create(args.webseed, site, torrent, [tracker])
    # Peers on both families (*: 0.0.0.0 and [::] on one port): the gateway names the IPv6 one,
    # at the address the client reached.
    gw = Gateway(args, "seed-f", torrent, site, "[::1]", port, work, listen="*:0")
    try:
        if not r.check(gw.ready and gw.gateway_port == port and gw.peer_port,
                       "f: webseed seed --offline taking peers on *:PORT, its gateway on %s" % tracker, more=gw.proc.log_tail(8)):
            return
        want = "[::1]:%d" % gw.peer_port
        status, body = announce("::1", port, query(bytes.fromhex(info["v1_infohash"]), 6881, left=1))
        d, v4 = compact_peers(body)
        v6 = compact_peers6(body) if v4 is not None else None
        r.check(status == 200 and v4 == [] and v6 == [want], "f: an IPv6 announce is answered with webseed (%s) in peers6, none in peers"
                % want, "peers %s peers6 %s" % (v4, v6))
        announce("::1", port, query(bytes.fromhex(info["v1_infohash"]), 6881, left=1, more="&event=stopped"))  # not a peer
        magnet = "magnet:?xt=urn:btih:%s&tr=%s" % (info["v1_infohash"], urllib.parse.quote(tracker, safe=""))
        done, seen = lt_leech(magnet, os.path.join(work, "lt"), listen="[::1]:0")
        r.check(done and want in seen, "f: libtorrent on ::1 found webseed (%s) through the gateway's peers6 and downloaded" % want,
                "finished=%s peers %s" % (done, sorted(seen)))
        if done:
            same, summary, problems = compare_tree(site, os.path.join(work, "lt", "site"))
            r.check(same, "f: the files libtorrent wrote equal the site", summary, more=problems[:3])
    finally:
        gw.stop()


def case_fetching_gateway(args):
    """g: a `webseed gateway` holding a site it fetches: the torrent names the gateway as its
    only tracker; a libtorrent seeder announces there; the gateway's own tracker client
    announces to itself, learns the seeder and fetches the site; then a libtorrent leecher,
    whose only source is the gateway, is sent both and downloads."""
    work = os.path.join(args.work, "g")
    site = os.path.join(work, "site")
    make_site(site, "g")
    port = free_port()
    tracker = "http://127.0.0.1:%d/announce" % port
    torrent = os.path.join(work, "site.torrent")
    info = create(args.webseed, site, torrent, [tracker])
    v1 = bytes.fromhex(info["v1_infohash"])
    ses, h, lt_port = None, None, None
    gw = Proc("gateway-g", [args.webseed, "gateway", torrent, "--listen", "127.0.0.1:%d" % port, "--peer-listen", "127.0.0.1:0",
                            "--offline", "--no-dht", "--state-dir", os.path.join(work, "state"), "--json"], work)
    try:
        ready = gw.wait_for("ready", 30) is not None
        peer_port = (gw.wait_for("listening", 1) or {}).get("port")
        if not r.check(ready and peer_port, "g: webseed gateway --offline holds the site (fetched) and its tracker on %s" % tracker,
                       more=gw.log_tail(8)):
            return
        ses, h, lt_port = lt_seeder(torrent, work)
        if not r.check(lt_port is not None, "g: a libtorrent seeder announced to the gateway"):
            return

        def fetched():
            s, body = announce("127.0.0.1", port, None, path="/api/status", host_header="localhost:%d" % port)
            sites = json.loads(body).get("sites", []) if s == 200 else []
            return bool(sites) and sites[0].get("bytes", 0) > 0 and sites[0].get("verified") == sites[0].get("bytes")
        got = poll(fetched, CLIENT_TIMEOUT)
        r.check(got, "g: the gateway fetched the whole site from the seeder it learnt through its own /announce",
                more=gw.log_tail(8))
        own = "127.0.0.1:%d" % peer_port
        d, peers = compact_peers(announce("127.0.0.1", port, query(v1, 6881, left=1))[1])
        r.check(peers is not None and own in peers and "127.0.0.1:%d" % lt_port in peers and d.get(b"complete") == 2,
                "g: the gateway lists itself (%s, now a seeder) and the libtorrent seeder" % own,
                "answer %s, complete %s" % (peers, d.get(b"complete")))
        announce("127.0.0.1", port, query(v1, 6881, left=1, more="&event=stopped"))  # not a peer
        ses.remove_torrent(h)  # the gateway is now the only seeder
        magnet = "magnet:?xt=urn:btih:%s&tr=%s" % (info["v1_infohash"], urllib.parse.quote(tracker, safe=""))
        done, seen = lt_leech(magnet, os.path.join(work, "lt"))
        r.check(done and own in seen, "g: a libtorrent leecher downloaded from the gateway (%s), the only seeder left" % own,
                "finished=%s peers %s" % (done, sorted(seen)))
        if done:
            same, summary, problems = compare_tree(site, os.path.join(work, "lt", "site"))
            r.check(same, "g: the files libtorrent wrote equal the site", summary, more=problems[:3])
    finally:
        gw.stop()
        if ses is not None:
            del ses


NS_GATEWAY_PORT = 8080


def case_transmission(args):
    """d: Transmission in the client namespace finds `webseed seed --offline` in the seeder
    namespace through the gateway's /announce (v1-only torrent: no site, still tracked)."""
    if os.geteuid() != 0:
        r.fail("d: network namespaces", "needs root")
        return
    if not shutil.which("transmission-cli"):
        r.fail("d: transmission-cli is installed", "run Tools/setup")
        return
    work = os.path.join(args.work, "d")
    site = os.path.join(work, "site")
    make_site(site, "d")
    ns = NetnsPair()
    tracker = "http://%s:%d/announce" % (ns.seeder_ip, NS_GATEWAY_PORT)
    torrent = os.path.join(work, "site.torrent")
    v1 = v1_torrent(site, torrent, tracker)
    gw = c = None
    try:
        try:
            ns.create()
        except Exception as e:
            r.fail("d: network namespaces created", str(e))
            return
        sp, cp = ns.exec_prefix(ns.seeder_ns), ns.exec_prefix(ns.client_ns)
        gw = Gateway(args, "seed-d", torrent, site, ns.seeder_ip, NS_GATEWAY_PORT, work, prefix=sp)
        if not r.check(gw.ready and gw.gateway_port == NS_GATEWAY_PORT, "d: webseed seed --offline with its gateway on %s" % tracker,
                       more=gw.proc.log_tail(8)):
            return
        skipped = {e.get("url") for _, e in gw.proc.event_times(lambda e: e.get("event") == "tracker_skipped")}
        r.check(skipped == {tracker}, "d: with --offline webseed's own tracker client skips the namespace's tracker address",
                "skipped %s" % sorted(skipped))
        rc, body = run_bytes(sp + ["curl", "-s", "--noproxy", "*", "--max-time", "3",
                                   "http://%s:%d/announce?%s" % (ns.seeder_ip, NS_GATEWAY_PORT, query(bytes.fromhex(v1), 9, left=1))], 10)
        _, peers = compact_peers(body) if rc == 0 and body else ({}, None)
        want = "%s:%d" % (ns.seeder_ip, gw.peer_port)
        r.check(peers == [want], "d: the gateway answers for the v1-only torrent with webseed itself (%s)" % want, "answer %s" % peers)
        c = TransmissionCli(cp, ns.client_ip, work, work, "d", 51413)
        c.start(torrent)
        done = poll(lambda: c.finished() or (not c.proc.alive() and "exited"), CLIENT_TIMEOUT)
        took = time.time() - c.t0
        lines = [] if done is True else c.progress_lines()
        rc, _ = c.stop()
        c = None
        r.check(done is True, "d: Transmission 3.00 found webseed through the gateway's /announce and completed",
                "%.1fs (transmission-cli exit %s)" % (took, rc), more=lines + gw.proc.log_tail(6))
        addrs = [e.get("address", "") for _, e in gw.proc.event_times(lambda e: e.get("event") == "peer_connected")]
        r.check(any(a.startswith(ns.client_ip + ":") for a in addrs), "d: webseed saw Transmission connect from %s" % ns.client_ip,
                "peer_connected %s" % addrs[:4])
        if done is True:
            same, summary, problems = compare_tree(site, os.path.join(work, "downloads-d", "site"), missing_empty_ok=True)
            r.check(same, "d: the files Transmission wrote equal the site", summary, more=problems[:3])
    finally:
        if c is not None:
            c.stop()
        if gw is not None:
            gw.stop()
        Proc.kill_all()
        problems = ns.delete()
        r.check(not problems, "d: network namespaces deleted", "; ".join(problems) or "%s, %s" % (ns.seeder_ns, ns.client_ns))


def run_bytes(argv, timeout):
    import subprocess
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired:
        return None, b""


def case_hostile(args, gw, p):
    """e: hostile announces get bounded answers; the gateway keeps serving."""
    v1 = bytes.fromhex(p["v1"])
    host, port = "127.0.0.1", gw.port
    base = query(v1, 7, left=1)
    cases = [
        ("no info_hash", "peer_id=%s&port=1&left=0" % escaped(b"x" * 20), 400, "no info_hash"),
        ("a 19-byte info_hash", query(v1[:19], 1), 400, "info_hash is 19 bytes, not 20"),
        ("the full 32-byte v2 hash", query(bytes.fromhex(p["v2"]), 1), 400, "info_hash is 32 bytes, not 20"),
        ("an unknown hash", query(b"\x07" * 20, 1), 200, "this gateway holds no site with info hash " + "07" * 20),
        ("bad percent-encoding", base.replace("info_hash=%", "info_hash=%G"), 400, "info_hash is not percent-encoded correctly"),
        ("a repeated key", base + "&port=9", 400, "port is given more than once"),
        ("100 parameters", base + "&x=1" * 100, 400, "more than 32 query parameters"),
        ("a 3 KB query", base + "&pad=" + "a" * 3000, 400, None),
        ("port 0", query(v1, 0), 400, "port is not a number in 1…65535"),
        ("a negative left", query(v1, 1).replace("left=0", "left=-1"), 400, "left is not a byte count"),
        ("no query at all", None, 400, "no info_hash"),
    ]
    # On the gateway's own origin (localhost): at the root of 127.0.0.1 the one site is
    # served, and there only a request with an info_hash is an announce.
    origin = "localhost:%d" % port
    for what, q, status, reason in cases:
        got_status, body = announce(host, port, q, host_header=origin)
        why = failure(body)
        r.check(got_status == status and why is not None and (reason is None or why == reason) and len(body) < 300,
                "e: %s is refused: %d with a bencoded failure reason" % (what, status),
                "got %s %r" % (got_status, body[:120]))
    s, body = announce(host, port, query(v1, 3, left=1, more="&numwant=100000"))
    d, peers = compact_peers(body)
    r.check(s == 200 and peers is not None and len(peers) <= 50, "e: numwant=100000 gets at most 50 peers",
            "%s peers, %d bytes" % (None if peers is None else len(peers), len(body)))
    s, body = announce(host, port, base, method="POST", host_header=origin)
    r.check(s == 405, "e: POST /announce is 405", "got %s" % s)

    # 10,000 announces from as many fake ports, on one kept-alive connection.
    conn = http.client.HTTPConnection(host, port, timeout=10)
    largest, most, errors = 0, 0, 0
    t0 = time.time()
    try:
        for fake in range(20_000, 30_000):
            s, body = announce(host, port, query(v1, fake, left=1, peer_id=b"-FLOOD0-%012d" % fake), conn=conn)
            _, peers = compact_peers(body) if s == 200 else ({}, None)
            if peers is None:
                errors += 1
                continue
            largest = max(largest, len(body))
            most = max(most, len(peers))
    finally:
        conn.close()
    took = time.time() - t0
    # Peers: webseed (listed by the gateway, and its own announce), libtorrent's of case a
    # if it ran, and at most PER_ADDRESS - 1 other fake ports of 127.0.0.1.
    r.check(errors == 0 and most <= PER_ADDRESS + 2 and largest <= 120 + 6 * (PER_ADDRESS + 2),
            "e: 10,000 announces from fake ports: every answer holds at most %d peers and at most %d bytes"
            % (PER_ADDRESS + 2, 120 + 6 * (PER_ADDRESS + 2)),
            "most %d peers, largest %d bytes, %d refused, %.1fs" % (most, largest, errors, took))
    _, peers = compact_peers(announce(host, port, query(v1, 4, left=1))[1])
    want = "127.0.0.1:%d" % gw.peer_port
    r.check(peers is not None and want in peers, "e: after the flood webseed itself is still listed", "answer %s" % peers)
    s, body = announce(host, port, None, path="/api/status", host_header=origin)
    tracker = json.loads(body).get("tracker", {}) if s == 200 else {}
    site_id = p["site_id"]
    r.check(tracker.get("announces", {}).get(site_id, 0) >= 10_000 and 0 < tracker.get("peers", 0) <= 3 * PER_ADDRESS,
            "e: the status API still answers; it counts the site's announces and the peers kept stay bounded",
            "status %s, tracker %s" % (s, tracker))
    s, index = announce(host, port, None, path="/index.html")
    r.check(s == 200 and b"the origin is the tracker" in index, "e: the site is still served at the root", "got %s" % s)
    r.check(gw.proc.alive(), "e: webseed is still running")


# ---------------------------------------------------------------------------------------

ALL_CASES = ["a", "b", "c", "d", "e", "f", "g"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    cases = chosen_cases(ap, args, ALL_CASES)
    args.webseed = os.path.abspath(args.webseed)
    args.work = os.path.abspath(args.work)
    os.umask(0o022)
    os.makedirs(args.work, exist_ok=True)
    fresh_dirs(args.work, ALL_CASES + ["loop"], make=())
    t0 = time.time()
    loop = os.path.join(args.work, "loop")
    site = os.path.join(loop, "site")
    make_site(site, "loopback")
    port = free_port()
    tracker = "http://127.0.0.1:%d/announce" % port
    torrent = os.path.join(loop, "site.torrent")
    info = create(args.webseed, site, torrent, [tracker])
    p = {"site": site, "torrent": torrent, "tracker": tracker, "v1": info["v1_infohash"], "v2": info["v2_infohash"],
         "site_id": info["site_id"]}
    if "a" in cases:
        case_qbt(args)
    if set(cases) & {"b", "c", "e"}:
        gw = Gateway(args, "seed", torrent, site, "127.0.0.1", port, loop)
        try:
            if r.check(gw.ready and gw.gateway_port == port and gw.peer_port,
                       "webseed seed --offline serves the site and its tracker on 127.0.0.1:%d" % port,
                       "gateway port %s, peer port %s" % (gw.gateway_port, gw.peer_port), more=gw.proc.log_tail(8)):
                if "b" in cases:
                    case_aria2(args, gw, p)
                if "c" in cases:
                    case_self(args, gw, p)
                if "e" in cases:
                    case_hostile(args, gw, p)
        finally:
            gw.stop()
    if "d" in cases:
        case_transmission(args)
    if "f" in cases:
        case_ipv6(args)
    if "g" in cases:
        case_fetching_gateway(args)
    Results.info("total time", "%.1fs" % (time.time() - t0))
    print(r.summary())
    return r.exit_status()


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        Proc.kill_all()
