#!/usr/bin/python3
"""webseed and real BitTorrent clients finding each other through a real tracker, Debian's
opentracker (HTTP and UDP on one port), with no DHT, LSD, PEX or UPnP anywhere, no peer
given and no tracker of the harness's own.

opentracker is built in whitelist mode (INTEROP.md): the harness writes its config
(listen.tcp_udp, access.whitelist /wl.txt, tracker.rootdir) and whitelists the hashes of
the torrents before it starts (the v1 hash and the truncated v2 hash, each its own swarm).
Cases f-k each use their own site (the shared one plus a file naming the case), hence their
own swarms: no peer of an earlier case is ever in them, and the tracker's counts are theirs.

  a  `webseed seed` of a torrent whose only tracker is opentracker over HTTP: it announces
     both hashes (`tracker_announced`, started); a libtorrent leecher given only the v1
     magnet with that `tr=` finds webseed through the tracker and downloads the site;
     after SIGTERM webseed tells the tracker `stopped` (a scrape shows no seeder left)
  b  the same over UDP (BEP 15): webseed announces; libtorrent finds it and downloads
  c  a libtorrent seeder announcing to opentracker; `webseed get MAGNET` (v2 magnet whose
     only source is `tr=udp://…`, --no-dht) finds it through the tracker and completes
     (files identical), and says `completed` to the tracker
  d  a torrent opentracker does not list: `tracker_failed` carries opentracker's reason
  e  --offline with a tracker elsewhere (192.0.2.1, TEST-NET): `tracker_skipped`, and no
     announce is tried
  f  qBittorrent-nox 4.5.2 downloads from `webseed seed` (hybrid .torrent, tracker over
     HTTP): webseed announces first, then qBittorrent (own profile, TCP only, DHT/LSD/PeX/
     UPnP off, several connections per IP allowed through its Web API and read back) is
     given the .torrent and nothing else; its first announce names webseed. Files compared
     after qBittorrent has shut down
  g  qBittorrent seeds (the site in its save path, checked on add) over UDP; once a scrape
     shows it as a seeder of both hashes, `webseed get` of the v2 magnet (only `tr=`) must
     connect to qBittorrent's port, complete and write identical files
  h  aria2c 1.37 (/opt/webseed-venv) downloads the hybrid's v1 side from `webseed seed`;
     --bt-exclude-tracker='*' drops the torrent's trackers and --bt-tracker (added after
     that removal, so kept) names opentracker over HTTP. Not UDP: aria2 speaks to UDP
     trackers only through its DHT socket ("--enable-dht … also enables UDP tracker
     support") and its DHT stays off. Pads land under .pad/ and must be zeros
  i  aria2c seeds the v1 side (a copy of the site with zero-filled pad files,
     --check-integrity, bound to 127.0.0.1) announcing over HTTP; once a scrape lists it,
     `webseed get` of the hybrid .torrent must connect to aria2's port and complete (files
     identical, no .pad/ written)
  j  Transmission 3.00 (transmission-cli; v1-only .torrent made with libtorrent's creator:
     it refuses hybrids) in a pair of network namespaces made here (it ignores peers on
     127/8): opentracker and `webseed seed` on 10.78.0.1 in the seeder namespace, the client
     on 10.78.0.2. webseed announces over HTTP first, then Transmission downloads
  k  Transmission seeds (the site in its download directory; it verifies it) over UDP; once a
     scrape lists it, `webseed get` of the v1 .torrent on 10.78.0.1 must connect to
     10.78.0.2:<its port> and complete. In the namespaces webseed runs without --offline
     (which keeps only loopback trackers; 10.78.0.1 is not one) but with --no-dht, --no-lsd
     (and --no-upnp for seed); the namespaces have no route anywhere else and are deleted
     at the end (checked)

Every client is started after the peer it must find is listed by the tracker (its own
announce seen, or a scrape), because a client's next announce comes only after the
tracker's interval (about 30 minutes): its first announce must already name the other side.
Every wait is bounded (60 s for a client).

Usage: /usr/bin/python3 Tools/interop/trackers.py --webseed .build/debug/webseed --work DIR [--only a,f,...]
Needs root for j and k (network namespaces) and Tools/setup (opentracker, qbittorrent-nox,
transmission-cli, aria2c in /opt/webseed-venv). Loopback and the test's namespaces only.
One `ok`/`FAIL` line per check; ends with `N passed, M failed`.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("trackers: cannot import libtorrent; run with /usr/bin/python3 after Tools/setup\n")
    sys.exit(2)

from webseedtest.bencode import bdecode
from webseedtest.cases import add_only, chosen_cases
from webseedtest.clients import ARIA2C, QBittorrent, TransmissionCli, aria2_argv, aria2_seeder_argv
from webseedtest.ltsession import new_session, tracker_settings as lt_settings, wait_alerts
from webseedtest.netns import NetnsPair
from webseedtest.procs import Proc, free_port, poll, tail
from webseedtest.results import Results
from webseedtest.torrents import create, v1_torrent
from webseedtest.tracker import compact_peers, escaped
from webseedtest.trees import compare_tree, fresh_dirs

r = Results()


def make_site(root):
    os.makedirs(os.path.join(root, "css"), exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>through a tracker</h1>\n")
    with open(os.path.join(root, "css", "site.css"), "w") as f:
        f.write("h1 { color: teal }\n" * 50)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(700_000))


class OpenTracker:
    """Debian's opentracker on HOST:PORT (HTTP and UDP), whitelisting `hashes`; with `prefix`
    (`ip netns exec NS`) it runs inside that namespace, and scrapes are made from there."""

    def __init__(self, work, port, hashes, host="127.0.0.1", prefix=(), name="opentracker"):
        self.root = os.path.join(work, name + "-root")
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "wl.txt"), "w") as f:
            f.write("".join(h + "\n" for h in hashes))
        conf = os.path.join(work, name + ".conf")
        with open(conf, "w") as f:
            f.write("listen.tcp_udp %s:%d\naccess.whitelist /wl.txt\ntracker.rootdir %s\n" % (host, port, self.root))
        self.host = host
        self.port = port
        self.prefix = list(prefix)
        self.proc = Proc(name, self.prefix + ["opentracker", "-f", conf], work)
        self.http = "http://%s:%d/announce" % (host, port)
        self.udp = "udp://%s:%d" % (host, port)
        if not poll(lambda: self.scrape("00" * 20) is not None, 10):
            raise SystemExit("opentracker did not start: %s" % open(self.proc.err_path).read())

    def scrape(self, hash_hex):
        """{complete, incomplete, downloaded} for the hash, {} if unknown, None if unreachable."""
        url = "http://%s:%d/scrape?info_hash=%s" % (self.host, self.port, escaped(bytes.fromhex(hash_hex)))
        if self.prefix:
            rc, body = run_bytes(self.prefix + ["curl", "-s", "--noproxy", "*", "--max-time", "3", url], 10)
            if rc != 0 or not body:
                return None
        else:
            try:
                body = urllib.request.urlopen(url, timeout=3).read()
            except OSError:
                return None
        files = bdecode(body)[0].get(b"files", {})
        entry = files.get(bytes.fromhex(hash_hex), {})
        return {k.decode(): v for k, v in entry.items()}

    def seeders(self, hash_hex):
        return (self.scrape(hash_hex) or {}).get("complete", 0)

    def peers(self, hash_hex):
        """The peers ("ip:port") opentracker hands a new leecher of the hash (HTTP, loopback
        only), None if unreachable. The asking peer (port 9) says stopped at once, so it is
        not kept."""
        url = "http://%s:%d/announce?info_hash=%s&peer_id=%s&port=9&uploaded=0&downloaded=0&left=1&compact=1" \
            % (self.host, self.port, escaped(bytes.fromhex(hash_hex)), escaped(b"-WT0001-" + os.urandom(12)))
        try:
            body = urllib.request.urlopen(url + "&numwant=200", timeout=3).read()
            urllib.request.urlopen(url + "&event=stopped", timeout=3).read()
        except OSError:
            return None
        return compact_peers(body)[1]

    def stop(self):
        self.proc.stop()


def free_tcp_udp_port(host="127.0.0.1", tries=50):
    """A port free for both TCP and UDP on host (opentracker binds both; procs.free_port only
    asks TCP, and a UDP socket of some other process once held the port it gave)."""
    for _ in range(tries):
        port = free_port(host)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise SystemExit("no port free for both TCP and UDP on %s" % host)


def run_bytes(argv, timeout):
    """(exit status or None, stdout bytes) of argv."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired:
        return None, b""


def lt_download(magnet, save, timeout):
    """libtorrent leecher of `magnet` (its trackers only); (finished?, tracker replies seen)."""
    ses = new_session(lt_settings("127.0.0.1:0"))
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = save
    h = ses.add_torrent(atp)
    replies = 0
    deadline = time.time() + timeout
    done = False
    while time.time() < deadline and not done:
        wait_alerts(ses, 100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.tracker_reply_alert):
                replies += 1
        st = h.status()
        done = st.has_metadata and st.is_seeding
    ses.remove_torrent(h)
    time.sleep(0.5)  # lets libtorrent close the files it wrote before they are compared
    del ses
    return done, replies


def case_seed(args, r, label, tracker, hashes, ot):
    work = os.path.join(args.work, label)
    os.makedirs(work)
    site = os.path.join(args.work, "site")
    torrent = os.path.join(work, "site.torrent")
    info = create(args.webseed, site, torrent, [tracker])
    seeder = Proc("seed-" + label, [args.webseed, "seed", torrent, "--data", site, "--offline", "--no-dht", "--no-gateway",
                                    "--listen", "127.0.0.1:0", "--state-dir", os.path.join(work, "state"), "--json"], work)
    ready = seeder.wait_for("ready", 30)
    r.check(ready is not None, "%s: webseed seed is ready" % label)
    announced = set()
    for h in hashes:
        _, ev = seeder.wait_event(lambda e, h=h: e.get("event") == "tracker_announced" and e.get("hash") == h
                                  and e.get("announce") == "started", 15)
        if ev:
            announced.add(h)
    r.check(announced == set(hashes), "%s: webseed announced started for the v1 and the truncated v2 hash" % label,
            "got %s" % sorted(announced))
    magnet = "magnet:?xt=urn:btih:%s&tr=%s" % (info["v1_infohash"], tracker)
    save = os.path.join(work, "lt")
    done, replies = lt_download(magnet, save, 60)
    r.check(done and replies > 0, "%s: libtorrent found webseed through %s and downloaded the site" % (label, tracker),
            "finished=%s tracker replies=%d" % (done, replies))
    if done:
        same, summary, problems = compare_tree(site, os.path.join(save, "site"))
        r.check(same, "%s: the files libtorrent wrote equal the site" % label, summary, more=problems[:3])
    # Over HTTP the tracker is asked who it hands out: webseed's own address, until it stops.
    # (A scrape cannot tell: the libtorrent leecher may still count as a seeder there, when
    # its own stopped announce, sent as its session closes, has not reached opentracker.)
    listening = seeder.wait_for("listening", 1) or {}
    me = "127.0.0.1:%s" % listening.get("port")
    if tracker == ot.http:
        listed = ot.peers(hashes[0]) or []
        r.check(me in listed, "%s: opentracker hands out webseed's address %s" % (label, me), "peers %s" % listed)
    seeder.stop()
    _, stopped = seeder.wait_event(lambda e: e.get("event") == "tracker_announced" and e.get("announce") == "stopped", 5)
    r.check(stopped is not None, "%s: on SIGTERM webseed told the tracker stopped" % label)
    if tracker == ot.http:
        gone = poll(lambda: me not in (ot.peers(hashes[0]) or [me]), 5)
        r.check(gone, "%s: after stopped, opentracker no longer hands out webseed's address" % label, "peers %s" % ot.peers(hashes[0]))
    return info


def case_get(args, r, ot, probe):
    """c: a libtorrent seeder announces to opentracker over HTTP; webseed gets from it via UDP."""
    work = os.path.join(args.work, "c")
    os.makedirs(work)
    site = os.path.join(args.work, "site")
    torrent = os.path.join(work, "site.torrent")
    create(args.webseed, site, torrent, [ot.http])
    ses = new_session(lt_settings("127.0.0.1:0"))
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = args.work  # the torrent's name is "site": its files are args.work/site/…
    h = ses.add_torrent(atp)
    announced = False
    deadline = time.time() + 20
    while time.time() < deadline and not announced:
        wait_alerts(ses, 100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.tracker_reply_alert):
                announced = True
    r.check(announced and h.status().is_seeding, "c: the libtorrent seeder announced to opentracker")
    magnet = "magnet:?xt=urn:btmh:1220%s&dn=site&tr=%s" % (probe["v2_infohash"], ot.udp)
    out = os.path.join(work, "got")
    getter = Proc("get-c", [args.webseed, "get", magnet, "-o", out, "--offline", "--no-dht", "--listen", "127.0.0.1:0",
                            "--state-dir", os.path.join(work, "state"), "--exit-when-done", "--json", "--timeout", "30"], work)
    # The libtorrent session is kept alive (its alerts drained) while webseed downloads.
    deadline = time.time() + 60
    while time.time() < deadline and getter.alive():
        wait_alerts(ses, 100)
        ses.pop_alerts()
    rc = getter.wait(5)
    r.check(rc == 0, "c: webseed get found the libtorrent seeder through the UDP tracker and completed", "exit %s" % rc)
    if rc == 0:
        same, summary, problems = compare_tree(site, out)
        r.check(same, "c: the files webseed wrote equal the site", summary, more=problems[:3])
    _, done = getter.wait_event(lambda e: e.get("event") == "tracker_announced" and e.get("announce") == "completed", 1)
    r.check(done is not None, "c: webseed told the tracker completed")
    joined = {e.get("hash") for _, e in getter.event_times(lambda e: e.get("event") == "tracker_announced" and e.get("announce") == "started")}
    r.check(joined == {probe["v1_infohash"], probe["v2_infohash"][:40]},
            "c: from a v2 magnet, webseed joined the hybrid's v1 swarm too once the metadata named it", "announced %s" % sorted(joined))
    ses.remove_torrent(h)
    del ses


def case_refused(args, r, ot):
    """d: a torrent opentracker does not list: its refusal reaches the user."""
    work = os.path.join(args.work, "d")
    other = os.path.join(work, "other")
    os.makedirs(other)
    with open(os.path.join(other, "index.html"), "w") as f:
        f.write("not whitelisted\n")
    torrent = os.path.join(work, "other.torrent")
    create(args.webseed, other, torrent, [ot.http])
    seeder = Proc("seed-d", [args.webseed, "seed", torrent, "--data", other, "--offline", "--no-dht", "--no-gateway",
                             "--listen", "127.0.0.1:0", "--state-dir", os.path.join(work, "state"), "--json"], work)
    _, ev = seeder.wait_event(lambda e: e.get("event") == "tracker_failed", 20)
    r.check(ev is not None and "not authorized" in ev.get("error", ""),
            "d: the tracker's refusal is a tracker_failed event with its reason", str(ev))
    seeder.stop()


def case_offline(args, r):
    """e: --offline keeps webseed off trackers elsewhere."""
    work = os.path.join(args.work, "e")
    os.makedirs(work)
    torrent = os.path.join(work, "far.torrent")
    create(args.webseed, os.path.join(args.work, "site"), torrent, ["http://192.0.2.1:6969/announce", "udp://192.0.2.1:6969"])
    seeder = Proc("seed-e", [args.webseed, "seed", torrent, "--data", os.path.join(args.work, "site"), "--offline", "--no-dht",
                             "--no-gateway", "--listen", "127.0.0.1:0", "--state-dir", os.path.join(work, "state"), "--json"], work)
    seeder.wait_for("ready", 30)
    skipped = {e.get("url") for _, e in seeder.event_times(lambda e: e.get("event") == "tracker_skipped")}
    r.check(skipped == {"http://192.0.2.1:6969/announce", "udp://192.0.2.1:6969"}, "e: --offline skips trackers elsewhere",
            "skipped %s" % sorted(skipped))
    seeder.stop()
    tried = seeder.event_times(lambda e: e.get("event") in ("tracker_announced", "tracker_failed"))
    r.check(not tried, "e: no announce was tried", str(tried[:2]))


# ---------------------------------------------------------------------------------------
# Real clients through opentracker: qBittorrent (f, g), aria2 (h, i), Transmission (j, k)
# ---------------------------------------------------------------------------------------

CLIENT_TIMEOUT = 60
"""Seconds a client download (or a client's start as a seeder) may take: every wait below is
bounded by it or by less."""


def case_site(args, tag):
    """The site for case `tag`, in a directory named `site` (the torrents' name) under the
    case's own directory, with one file naming the case: each case is its own swarm (its own
    hashes), so no peer of an earlier case is ever in it and the tracker's counts are this
    case's alone."""
    site = os.path.join(args.work, tag, "site")
    make_site(site)
    with open(os.path.join(site, "case.txt"), "w") as f:
        f.write("case %s\n" % tag)
    return site


class Prepared:
    """A case's site and torrent, made before the tracker starts (it must whitelist them)."""

    def __init__(self, args, tag, tracker, v1_only=False):
        self.tag = tag
        self.work = os.path.join(args.work, tag)
        self.site = case_site(args, tag)
        self.torrent = os.path.join(self.work, "site.torrent")
        self.tracker = tracker
        if v1_only:
            self.v1 = v1_torrent(self.site, self.torrent, tracker)
            self.v2 = None
            self.hashes = [self.v1]
        else:
            info = create(args.webseed, self.site, self.torrent, [tracker])
            self.v1, self.v2 = info["v1_infohash"], info["v2_infohash"]
            self.hashes = [self.v1, self.v2[:40]]


def wait_announced(r, what, proc, hashes, timeout=15):
    """Checks that webseed announced `started` for each hash (its tracker_announced events)."""
    got = set()
    for h in hashes:
        _, ev = proc.wait_event(lambda e, h=h: e.get("event") == "tracker_announced" and e.get("hash") == h
                                and e.get("announce") == "started", timeout)
        if ev:
            got.add(h)
    failed = [e for _, e in proc.event_times(lambda e: e.get("event") == "tracker_failed")]
    return r.check(got == set(hashes), what, "announced %d of %d hashes" % (len(got), len(hashes)),
                   more=[str(e) for e in failed[:3]] + ([] if got == set(hashes) else proc.log_tail(6)))


def start_webseed_seed(args, p, listen_host, extra, prefix=()):
    return Proc("seed-" + p.tag, list(prefix) + [
        args.webseed, "seed", p.torrent, "--data", p.site, "--no-dht", "--no-gateway", "--listen",
        listen_host + ":0", "--state-dir", os.path.join(p.work, "seed-state"), "--json"] + list(extra), p.work)


def start_webseed_get(args, p, source, out, listen_host, extra, prefix=()):
    return Proc("get-" + p.tag, list(prefix) + [
        args.webseed, "get", source, "-o", out, "--no-dht", "--listen", listen_host + ":0",
        "--state-dir", os.path.join(p.work, "get-state"), "--exit-when-done", "--json",
        "--timeout", "30"] + list(extra), p.work)


def check_get(r, p, getter, out, peer_host, peer_port, who):
    """A `webseed get` that found `who` through the tracker: it exits 0 within the deadline,
    its peer_connected events name who's address (learnt only from the tracker: no peer is
    given, no DHT/LSD/PEX anywhere), and the files it wrote equal the site."""
    rc = getter.wait(CLIENT_TIMEOUT)
    getter.stop(timeout=3)   # (already exited, or killed) its output is then read to the end
    peers = sorted({e.get("address") for _, e in getter.event_times(lambda e: e.get("event") == "peer_connected")})
    want = "%s:%d" % (peer_host, peer_port)
    announced = [e.get("hash") for _, e in getter.event_times(
        lambda e: e.get("event") == "tracker_announced" and e.get("announce") == "started")]
    r.check(rc == 0 and want in peers, "%s: webseed get found %s (%s) through the tracker and completed" % (p.tag, who, want),
            "exit %s; peers connected %s; announced started for %d hash(es)" % (rc, peers, len(announced)),
            more=[] if rc == 0 else getter.log_tail(8))
    if rc == 0:
        same, summary, problems = compare_tree(p.site, out)
        r.check(same, "%s: the files webseed get wrote equal the site" % p.tag, summary, more=problems[:3])


def check_seen(r, p, seeder, host, who):
    """`webseed seed` printed a peer_connected event for a connection from `host` (the client's
    address; the port is its outgoing one)."""
    addrs = [e.get("address", "") for _, e in seeder.event_times(lambda e: e.get("event") == "peer_connected")]
    r.check(any(a.startswith(host + ":") for a in addrs), "%s: webseed seed saw %s connect from %s" % (p.tag, who, host),
            "peer_connected %s" % addrs[:4])


def qbittorrent(r, p):
    """qBittorrent-nox with its own profile (clients.QBittorrent: TCP only, no DHT/LSD/PeX/UPnP,
    no country lookups) plus several connections per IP (everyone here is 127.0.0.1; a
    libtorrent that first connects to itself refuses the real peer otherwise, INTEROP.md). The
    preferences are read back and checked. Returns the QBittorrent, or None."""
    if not shutil.which("qbittorrent-nox"):
        r.fail("%s: qbittorrent-nox is installed" % p.tag, "run Tools/setup")
        return None
    q = QBittorrent(p.work, os.path.join(p.work, "logs"))
    version = q.start()
    if not r.check(version is not None, "%s: qBittorrent's Web API is up" % p.tag, "version %s" % version,
                   more=q.proc.log_tail(10) + q.log_lines(10)):
        q.stop()
        return None
    q.set_preferences(enable_multi_connections_from_same_ip=True)
    prefs = q.preferences()
    want = {"dht": False, "lsd": False, "pex": False, "upnp": False, "enable_multi_connections_from_same_ip": True}
    got = {k: prefs.get(k) for k in want}
    if not r.check(got == want, "%s: qBittorrent has DHT, LSD, PeX and UPnP off and allows several connections per IP"
                   % p.tag, str(got)):
        q.stop()
        return None
    return q


def qbt_torrent(q, p):
    """qBittorrent's entry for the case's torrent (it names a hybrid by either hash), or None."""
    want = {p.v1, (p.v2 or "")[:40]}
    for t in q.torrents():
        if t.get("hash") in want:
            return t
    return None


def case_qbt_leech(args, r, ot, p):
    """f: webseed seeds (announced first); qBittorrent, given only the .torrent (its one
    tracker is opentracker over HTTP), finds webseed through the tracker and downloads."""
    seeder = start_webseed_seed(args, p, "127.0.0.1", ["--offline"])
    q = None
    try:
        if not wait_announced(r, "f: webseed seed announced started for both hashes", seeder, p.hashes):
            return
        before = {h: ot.scrape(h) for h in p.hashes}
        q = qbittorrent(r, p)
        if q is None:
            return
        dl = os.path.join(p.work, "qbt-dl")
        q.add_torrent(p.torrent, dl)
        t0 = time.time()

        def complete():
            t = qbt_torrent(q, p)
            if t is not None and t.get("progress") == 1 and t.get("amount_left", 1) == 0:
                return t
            if not q.proc.alive():
                return "exited"
            return None
        t = poll(complete, CLIENT_TIMEOUT)
        done = isinstance(t, dict)
        h = (qbt_torrent(q, p) or {}).get("hash")
        trackers = [(x.get("url"), x.get("status"), x.get("msg")) for x in q.trackers(h)] if h else []
        r.check(done, "f: qBittorrent found webseed through the tracker and completed",
                "%.1fs; tracker swarm before it started %s; qBittorrent's trackers %s" % (
                    time.time() - t0, before, trackers),
                more=[] if done else ["[qbt] %s" % qbt_torrent(q, p), "[qbt peers] %s" % (q.peers(h) if h else {})]
                + q.log_lines(15) + seeder.log_tail(6))
        check_seen(r, p, seeder, "127.0.0.1", "qBittorrent")
        q.stop()   # qBittorrent closes (flushes) its files on the way out
        q = None
        if done:
            same, summary, problems = compare_tree(p.site, os.path.join(dl, "site"))
            r.check(same, "f: the files qBittorrent wrote equal the site", summary, more=problems[:3])
    finally:
        if q is not None:
            q.stop()
        seeder.stop()


def case_qbt_seed(args, r, ot, p):
    """g: qBittorrent seeds (the site already in its save path; it checks it) and announces to
    opentracker over UDP; once the tracker lists it as a seeder of both hashes, `webseed get`
    of the v2 magnet whose only source is that tracker finds it and completes."""
    q = qbittorrent(r, p)
    if q is None:
        return
    try:
        dl = os.path.join(p.work, "qbt-dl")
        shutil.copytree(p.site, os.path.join(dl, "site"))
        q.add_torrent(p.torrent, dl)

        def listed():
            t = qbt_torrent(q, p)
            if t is None or t.get("progress") != 1:
                return None
            return all(ot.seeders(h) >= 1 for h in p.hashes)
        ok = poll(listed, CLIENT_TIMEOUT)
        r.check(ok, "g: qBittorrent checked the site, seeds it and the tracker lists it as a seeder of both hashes",
                "scrape %s" % {h[:8]: ot.scrape(h) for h in p.hashes},
                more=[] if ok else ["[qbt] %s" % qbt_torrent(q, p)] + q.log_lines(15))
        if not ok:
            return
        magnet = "magnet:?xt=urn:btmh:1220%s&dn=site&tr=%s" % (p.v2, p.tracker)
        out = os.path.join(p.work, "got")
        getter = start_webseed_get(args, p, magnet, out, "127.0.0.1", ["--offline"])
        check_get(r, p, getter, out, "127.0.0.1", q.bt_port, "qBittorrent")
    finally:
        q.stop()


def case_aria2_leech(args, r, ot, p):
    """h: webseed seeds (announced first); aria2c, whose only tracker is opentracker over HTTP
    (--bt-exclude-tracker='*' --bt-tracker=…), joins the hybrid's v1 swarm and downloads.
    HTTP, not UDP: aria2 speaks to UDP trackers only through its DHT socket (--enable-dht
    "also enables UDP tracker support"), and its DHT stays off here."""
    if not os.access(ARIA2C, os.X_OK):
        r.fail("h: aria2c 1.37 is installed", "%s not found: run Tools/setup" % ARIA2C)
        return
    seeder = start_webseed_seed(args, p, "127.0.0.1", ["--offline"])
    try:
        if not wait_announced(r, "h: webseed seed announced started for both hashes", seeder, p.hashes):
            return
        save = os.path.join(p.work, "aria2-dl")
        log = os.path.join(p.work, "aria2.log")
        argv = aria2_argv(ARIA2C, p.torrent, save, p.tracker, free_port(), log)
        argv.insert(1, "--interface=127.0.0.1")
        argv.insert(1, "--no-conf")
        t0 = time.time()
        aria = Proc("aria2c-h", argv, p.work)
        rc = aria.wait(CLIENT_TIMEOUT)
        if rc is None:
            aria.stop(timeout=3)
        announces = tail(log, 5, grep=("announce", "Tracker", "tracker"))
        r.check(rc == 0, "h: aria2c found webseed through the tracker and completed",
                "exit %s after %.1fs" % (rc, time.time() - t0),
                more=[] if rc == 0 else ["[aria2 log] " + l for l in tail(log, 20, grep=("ERROR", "WARN", "NOTICE", "racker"))]
                + seeder.log_tail(6))
        check_seen(r, p, seeder, "127.0.0.1", "aria2c")
        if rc == 0:
            same, summary, problems = compare_tree(p.site, os.path.join(save, "site"))
            r.check(same, "h: the files aria2c wrote equal the site (BEP 47 pads under .pad/ all zero)",
                    summary, more=problems[:3] + announces)
    finally:
        seeder.stop()


def case_aria2_seed(args, r, ot, p):
    """i: aria2c seeds the hybrid's v1 side (a copy of the site with zero-filled pad files;
    --check-integrity first) announcing to opentracker over HTTP; once the tracker lists it,
    `webseed get` of the hybrid .torrent (its only tracker is opentracker) finds it in the v1
    swarm and completes."""
    if not os.access(ARIA2C, os.X_OK):
        r.fail("i: aria2c 1.37 is installed", "%s not found: run Tools/setup" % ARIA2C)
        return
    parent = os.path.join(p.work, "aria2-data")
    shutil.copytree(p.site, os.path.join(parent, "site"))
    ti = lt.torrent_info(p.torrent)
    fs = ti.files()
    for k in range(fs.num_files()):
        if fs.file_flags(k) & lt.file_storage.flag_pad_file:
            path = os.path.join(parent, fs.file_path(k))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(fs.file_size(k))
    port = free_port()
    log = os.path.join(p.work, "aria2-seed.log")
    aria = Proc("aria2c-i", aria2_seeder_argv(ARIA2C, p.torrent, parent, p.tracker, "127.0.0.1", port, log), p.work)
    try:
        def listed():
            if not aria.alive():
                return "exited"
            return ot.seeders(p.v1) >= 1 or None
        ok = poll(listed, CLIENT_TIMEOUT)
        verified = "Verification finished successfully" in open(log, errors="replace").read() if os.path.exists(log) else False
        r.check(ok is True and verified, "i: aria2c verified the site, seeds it and the tracker lists it as a seeder of the v1 hash",
                "scrape %s; verified %s" % (ot.scrape(p.v1), verified),
                more=[] if ok is True else ["[aria2 log] " + l for l in tail(log, 15, grep=("ERROR", "WARN", "NOTICE", "racker"))]
                + aria.log_tail(5))
        if ok is not True:
            return
        out = os.path.join(p.work, "got")
        getter = start_webseed_get(args, p, p.torrent, out, "127.0.0.1", ["--offline"])
        check_get(r, p, getter, out, "127.0.0.1", port, "aria2c")
        if os.path.isdir(out):
            r.check(not os.path.exists(os.path.join(out, ".pad")), "i: webseed get wrote no .pad/ files")
    finally:
        aria.stop(timeout=10)


def case_transmission(args, r, preps):
    """j, k: in a pair of throw-away network namespaces (Transmission ignores peers on 127/8):
    opentracker and webseed in the seeder namespace on its address, transmission-cli in the
    client namespace. webseed runs there without --offline, which keeps only loopback
    trackers (the namespace's 10.78.0.1 is not one); --no-dht, --no-lsd, --no-upnp instead,
    and the namespaces have no route anywhere else."""
    if os.geteuid() != 0:
        r.fail("j/k: network namespaces", "needs root")
        return
    if not shutil.which("transmission-cli"):
        r.fail("j/k: transmission-cli is installed", "run Tools/setup")
        return
    ns = NetnsPair()
    ot = None
    try:
        try:
            ns.create()
        except Exception as e:
            r.fail("j/k: network namespaces created", str(e))
            return
        sp, cp = ns.exec_prefix(ns.seeder_ns), ns.exec_prefix(ns.client_ns)
        try:
            ot = OpenTracker(args.work, NS_TRACKER_PORT, [h for p in preps.values() for h in p.hashes],
                             host=ns.seeder_ip, prefix=sp, name="opentracker-ns")
        except SystemExit as e:
            r.fail("j/k: opentracker starts on %s:%d in the seeder namespace" % (ns.seeder_ip, NS_TRACKER_PORT), str(e))
            return
        if "j" in preps:
            case_transmission_leech(args, r, ns, sp, cp, preps["j"])
        if "k" in preps:
            case_transmission_seed(args, r, ns, sp, cp, ot, preps["k"])
    finally:
        if ot is not None:
            ot.stop()
        Proc.kill_all()   # anything of ours left in the namespaces
        problems = ns.delete()
        r.check(not problems, "j/k: network namespaces deleted", "; ".join(problems) or
                "%s, %s" % (ns.seeder_ns, ns.client_ns))


NS_TRACKER_PORT = 6969
"""opentracker's port inside the seeder namespace (a fresh namespace: nothing else there)."""


def case_transmission_leech(args, r, ns, sp, cp, p):
    """j: webseed seeds the v1 .torrent on 10.78.0.1 (announced first, over HTTP);
    transmission-cli on 10.78.0.2 finds it through the tracker and downloads."""
    seeder = start_webseed_seed(args, p, ns.seeder_ip, ["--no-lsd", "--no-upnp"], prefix=sp)
    c = None
    try:
        if not wait_announced(r, "j: webseed seed (namespace %s) announced started" % ns.seeder_ip, seeder, p.hashes):
            return
        c = TransmissionCli(cp, ns.client_ip, p.work, p.work, "j", 51413)
        c.start(p.torrent)
        done = poll(lambda: c.finished() or (not c.proc.alive() and "exited"), CLIENT_TIMEOUT)
        took = time.time() - c.t0
        lines = [] if done is True else c.progress_lines()
        rc, _ = c.stop()
        c = None
        r.check(done is True, "j: Transmission 3.00 found webseed through the tracker and completed",
                "%.1fs (transmission-cli exit %s)" % (took, rc), more=lines + seeder.log_tail(6))
        check_seen(r, p, seeder, ns.client_ip, "Transmission")
        if done is True:
            same, summary, problems = compare_tree(p.site, os.path.join(p.work, "downloads-j", "site"),
                                                   missing_empty_ok=True)
            r.check(same, "j: the files Transmission wrote equal the site", summary, more=problems[:3])
    finally:
        if c is not None:
            c.stop()
        seeder.stop()


def case_transmission_seed(args, r, ns, sp, cp, ot, p):
    """k: transmission-cli seeds the v1 .torrent on 10.78.0.2 (the site already in its download
    directory; it verifies it) announcing over UDP; once the tracker lists it, `webseed get`
    of that .torrent on 10.78.0.1 finds it and completes."""
    c = TransmissionCli(cp, ns.client_ip, p.work, p.work, "k", 51414)
    shutil.copytree(p.site, os.path.join(c.dl, "site"))
    c.start(p.torrent)
    try:
        ok = poll(lambda: (not c.proc.alive() and "exited") or ot.seeders(p.v1) >= 1 or None, CLIENT_TIMEOUT)
        r.check(ok is True, "k: Transmission verified the site, seeds it and the tracker lists it as a seeder",
                "after %.1fs; scrape %s" % (time.time() - c.t0, ot.scrape(p.v1)),
                more=[] if ok is True else c.progress_lines())
        if ok is not True:
            return
        out = os.path.join(p.work, "got")
        getter = start_webseed_get(args, p, p.torrent, out, ns.seeder_ip, ["--no-lsd"], prefix=sp)
        check_get(r, p, getter, out, ns.client_ip, 51414, "Transmission")
    finally:
        c.stop()


# ---------------------------------------------------------------------------------------

ALL_CASES = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


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
    if shutil.which("opentracker") is None:
        r.fail("opentracker is installed", "run Tools/setup (Debian package opentracker)")
        return r.exit_status()
    os.makedirs(args.work, exist_ok=True)
    fresh_dirs(args.work, ALL_CASES + ["site", "opentracker-root", "opentracker-ns-root"], make=())
    for n in ("probe.torrent",):
        if os.path.exists(os.path.join(args.work, n)):
            os.unlink(os.path.join(args.work, n))
    t0 = time.time()
    site = os.path.join(args.work, "site")
    make_site(site)
    port = free_tcp_udp_port()
    # The hashes are the same whatever tracker a torrent names (trackers are outside info).
    probe = create(args.webseed, site, os.path.join(args.work, "probe.torrent"), [])
    v1, v2short = probe["v1_infohash"], probe["v2_infohash"][:40]
    http, udp = "http://127.0.0.1:%d/announce" % port, "udp://127.0.0.1:%d" % port
    ns_http, ns_udp = "http://%s:%d/announce" % (NetnsPair().seeder_ip, NS_TRACKER_PORT), \
        "udp://%s:%d" % (NetnsPair().seeder_ip, NS_TRACKER_PORT)
    plan = {"f": (http, False), "g": (udp, False), "h": (http, False), "i": (http, False),
            "j": (ns_http, True), "k": (ns_udp, True)}
    preps = {c: Prepared(args, c, plan[c][0], v1_only=plan[c][1]) for c in cases if c in plan}
    loop_hashes = [v1, v2short] + [h for c, p in preps.items() if c not in ("j", "k") for h in p.hashes]
    try:
        ot = OpenTracker(args.work, port, loop_hashes)
    except SystemExit as e:
        r.fail("opentracker starts on 127.0.0.1:%d" % port, str(e))
        print(r.summary())
        return r.exit_status()
    try:
        if "a" in cases:
            case_seed(args, r, "a", ot.http, [v1, v2short], ot)
        if "b" in cases:
            case_seed(args, r, "b", ot.udp, [v1, v2short], ot)
        if "c" in cases:
            case_get(args, r, ot, probe)
        if "d" in cases:
            case_refused(args, r, ot)
        if "e" in cases:
            case_offline(args, r)
        if "f" in cases:
            case_qbt_leech(args, r, ot, preps["f"])
        if "g" in cases:
            case_qbt_seed(args, r, ot, preps["g"])
        if "h" in cases:
            case_aria2_leech(args, r, ot, preps["h"])
        if "i" in cases:
            case_aria2_seed(args, r, ot, preps["i"])
    finally:
        ot.stop()
    ns_preps = {c: p for c, p in preps.items() if c in ("j", "k")}
    if ns_preps:
        case_transmission(args, r, ns_preps)
    Results.info("total time", "%.1fs" % (time.time() - t0))
    print(r.summary())
    return r.exit_status()


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        Proc.kill_all()
