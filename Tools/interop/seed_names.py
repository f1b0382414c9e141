#!/usr/bin/python3
"""Publishing a site under its stable name (issue 13, points 2 and 7): `webseed seed DIR
--key FILE` puts a BEP 44 item naming its torrent, and libtorrent 2.0.8 reads it, on a
private DHT on loopback. Every libtorrent session has LSD, UPnP, NAT-PMP off and knows no
router, only the node given; webseed runs with --offline and --dht-bootstrap, so it
contacts nobody else.

The DHT: a libtorrent session L on 127.0.0.61 that knows nobody. Each webseed seeder
knows only L; each reader is a fresh libtorrent session on 127.0.0.62 that knows only L
and calls dht_get_mutable_item. libtorrent raises dht_mutable_item_alert only for an item
whose signature it verified; the test verifies the alert's signature again in Python
(python3-cryptography) over BEP 44's signed buffer `3:seqi<seq>e1:v<value>` where value is
`d2:ih20:<v1 hash>2:v232:<v2 hash>e` computed here from the .torrent file webseed wrote:
the signature holds only if the item names exactly that torrent.

Cases:
  publish  `seed SITE --key K`: name_published with seq 1, the name and magnet of
           `webseed key show`, sent_to >= 1; libtorrent reads seq 1 naming the torrent.
  restart  the seeder stopped and its state directory removed: started again on the same
           site, it re-puts seq 1 (the DHT's item already names this torrent); on a changed
           site with the state directory removed again, it publishes seq 2, above the DHT's,
           and libtorrent reads seq 2 naming the new torrent.
  watch    `seed SITE --key K --watch --grace 20`: seq 1 read by libtorrent, the site served
           at the root of the seeder's own gateway; a file is edited (saved by rename, as
           editors do): a new version is packaged and name_published seq 2 follows (bounded
           wait), the old version still answers a peer's handshake, libtorrent reads seq 2
           naming the new torrent and the gateway serves the new bytes; once the grace
           period is over (site_retired) the old version's hash is refused; then a file
           is removed and seq 3 follows.
  refuse   a key file of mode 0644, --watch without --key, --key with two sources, with
           --no-dht, with --offline and no --dht-bootstrap, --watch with the state directory
           inside the watched one: one line on stderr, exit status non-zero, nothing published.

Usage:
  /usr/bin/python3 Tools/interop/seed_names.py --webseed .build/debug/webseed \\
      --work /tmp/webseed-names [--only publish,restart,watch,refuse]

Loopback only; every wait is bounded; processes are stopped and sessions closed at the end.
One `ok ...` / `FAIL ...` line per check, and a last line `N passed, M failed`; exit
status 1 if any check failed.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("seed_names: cannot import libtorrent; run with /usr/bin/python3 after Tools/setup (python3-libtorrent)\n")
    sys.exit(2)

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from webseedtest.bencode import bencode
from webseedtest.ltpeer import loopback_dht_settings
from webseedtest.ltsession import new_session, OFFLINE, wait_alerts
from webseedtest.procs import Proc
from webseedtest.results import Results
from webseedtest.torrent import Torrent

R = Results()
ALL_CASES = ["refuse", "publish", "restart", "watch"]
START = 30
WAIT = 40


def lt_session(host, node):
    settings = dict(OFFLINE)
    settings.update(loopback_dht_settings())
    have = lt.default_settings()
    if "dht_prefer_verified_node_ids" in have:
        settings["dht_prefer_verified_node_ids"] = False
    if "dht_block_ratelimit" in have:
        settings["dht_block_ratelimit"] = 1000
    settings.update({
        "listen_interfaces": "%s:0" % host,
        "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.error_notification
                      | lt.alert.category_t.dht_operation_notification,
    })
    ses = new_session(settings)
    if node is not None:
        ses.add_dht_node(node)
    return ses


def lt_node(host):
    """A libtorrent session that is a DHT node and knows nobody; (session, (host, port))."""
    ses = lt_session(host, None)
    deadline = time.time() + START
    while time.time() < deadline and not ses.listen_port():
        wait_alerts(ses, 50)
        ses.pop_alerts()
    return ses, (host, ses.listen_port())


def lt_get(node, pub, want_seq, log):
    """A fresh session that knows only `node` gets the item of `pub`; returns the last
    (seq, signature, key) seen, waiting up to WAIT s for one with want_seq."""
    ses = lt_session("127.0.0.62", node)
    try:
        deadline = time.time() + WAIT
        last = None
        while time.time() < deadline:
            ses.dht_get_mutable_item(pub, b"")
            end = min(deadline, time.time() + 5)
            while time.time() < end:
                wait_alerts(ses, 100)
                for a in ses.pop_alerts():
                    log.write("%.3f %s: %s\n" % (time.time(), type(a).__name__, a.message()))
                    if isinstance(a, lt.dht_mutable_item_alert):
                        last = (a.seq, bytes(a.signature), bytes(a.key))
                        if a.seq == want_seq:
                            return last
        return last
    finally:
        del ses


def record_value(torrent_path):
    """The item value webseed must publish for this torrent: BEP 46's ih (v1 hash of the
    hybrid) and the v2 hash, as a bencoded dictionary."""
    t = Torrent(torrent_path)
    return bencode({b"ih": t.v1, b"v2": t.v2}), t


def check_read(node, pub, seq, torrent_path, what, log):
    """libtorrent reads `seq` and its signature verifies over the value naming the torrent."""
    value, t = record_value(torrent_path)
    got = lt_get(node, pub, seq, log)
    verified = False
    if got is not None and got[0] == seq:
        try:
            Ed25519PublicKey.from_public_bytes(pub).verify(got[1], b"3:seqi%de1:v" % seq + value)
            verified = True
        except Exception:
            verified = False
    R.check(got is not None and got[0] == seq and got[2] == pub and verified,
            "%s: libtorrent reads seq %d (signature checked by libtorrent), and it verifies in Python over the value naming %s"
            % (what, seq, t.v2.hex()[:16]),
            more=["got %r" % (got[:1] if got else None,)])


def key_new(ws, path):
    p = subprocess.run([ws, "key", "new", path, "--json"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("webseed key new failed: " + p.stderr.strip())
    return json.loads(p.stdout)


def write(path, text):
    """Writes a file by rename, as editors save."""
    tmp = path + ".tmp-save"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def make_site(path, variant):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.join(path, "css"))
    write(os.path.join(path, "index.html"), "<h1>site %s</h1>\n" % variant)
    write(os.path.join(path, "css", "site.css"), "body { color: black } /* %s */\n" % variant)
    write(os.path.join(path, "about.html"), "<p>about</p>\n" * 50)


def seeder(ws, logdir, name, site, key, state, node, extra=(), gateway=False):
    return Proc(name, [ws, "seed", site, "--key", key, "--listen", "127.0.0.1:0", "--offline", "--json",
                       "--gateway" if gateway else "--no-gateway"] + (["127.0.0.1:0"] if gateway else [])
                + ["--state-dir", state, "--dht-bootstrap", "%s:%d" % node] + list(extra), logdir)


def handshake(port, info_hash):
    """A BitTorrent handshake for info_hash: the info hash the seeder answers with, or None
    when it closes the connection instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"\x13BitTorrent protocol" + bytes(8) + info_hash + b"-XX0001-names0000001")
        got = b""
        try:
            while len(got) < 68:
                more = c.recv(68 - len(got))
                if not more:
                    return None
                got += more
        except OSError:
            return None
        return got[28:48]


def http_get(port, path, host=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError as e:
        return None, str(e).encode()


def published(p, seq, timeout):
    """The first name_published event with this seq (None after timeout)."""
    return p.wait_event(lambda e: e.get("event") == "name_published" and e.get("seq") == seq, timeout)[1]


def site_event(p, v2hex, timeout):
    return p.wait_event(lambda e: e.get("event") == "site" and e.get("v2_infohash") == v2hex, timeout)[1]


def case_refuse(ws, work, logdir):
    site = os.path.join(work, "refuse-site")
    make_site(site, "refuse")
    key = os.path.join(work, "refuse.key")
    key_new(ws, key)
    os.chmod(key, 0o644)
    ok_key = os.path.join(work, "refuse-ok.key")
    key_new(ws, ok_key)
    state = os.path.join(work, "refuse-state")
    dht = ["--offline", "--dht-bootstrap", "127.0.0.1:9"]
    runs = [
        ("a key file of mode 0644", [site, "--key", key] + dht, "chmod 600"),
        ("--watch without --key", [site, "--watch"] + dht, "--key"),
        ("--key with two sources", [site, site, "--key", ok_key] + dht, "exactly one"),
        ("--key with --no-dht", [site, "--key", ok_key, "--offline", "--no-dht"], "--no-dht"),
        ("--key with --offline and no --dht-bootstrap", [site, "--key", ok_key, "--offline"], "--dht-bootstrap"),
        ("--watch keeping its state inside the watched directory", [site, "--key", ok_key, "--watch"] + dht, "--state-dir"),
    ]
    for what, args, word in runs:
        inside = "state inside" in what
        argv = [ws, "seed"] + args + ["--no-gateway", "--listen", "127.0.0.1:0",
                                      "--state-dir", os.path.join(site, ".state") if inside else state]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        R.check(p.returncode != 0 and len(lines) == 1 and word in lines[0] and "name_published" not in p.stdout,
                "refuse: %s is refused with one line and a non-zero exit" % what,
                more=["exit %s" % p.returncode] + lines[:3])


def case_publish_and_restart(ws, work, logdir, node, log, cases):
    site = os.path.join(work, "site")
    make_site(site, "one")
    key = os.path.join(work, "publish.key")
    shown = key_new(ws, key)
    pub = bytes.fromhex(shown["public_key"])
    state = os.path.join(work, "state-publish")
    p = seeder(ws, logdir, "publish", site, key, state, node)
    ev = published(p, 1, WAIT)
    site1 = p.wait_for("site", 5)
    p.stop(timeout=10)
    R.check(ev is not None and ev.get("name") == shown["name"] and ev.get("magnet") == shown["magnet"] and ev.get("sent_to", 0) >= 1,
            "publish: name_published seq 1 with the key's name and magnet, put to at least one node",
            more=[repr(ev)] + (p.log_tail(8) if ev is None else []))
    if ev is None or site1 is None:
        return
    torrent1 = os.path.join(work, "one.torrent")
    shutil.copy(site1["torrent"], torrent1)
    R.check(ev.get("v2_infohash") == site1.get("v2_infohash") and ev.get("ih") == site1.get("v1_infohash"),
            "publish: the item names the seeded torrent (ih = its v1 hash, v2 = its v2 hash)", more=[repr(site1)])
    check_read(node, pub, 1, torrent1, "publish", log)
    if "restart" not in cases:
        return

    shutil.rmtree(state)
    p = seeder(ws, logdir, "restart-same", site, key, state, node)
    ev = p.wait_event(lambda e: e.get("event") == "name_published", WAIT)[1]
    p.stop(timeout=10)
    R.check(ev is not None and ev.get("seq") == 1 and ev.get("v2_infohash") == site1["v2_infohash"],
            "restart: with its state directory removed, the same site is put again at the DHT's seq 1",
            more=[repr(ev)] + (p.log_tail(8) if ev is None else []))

    shutil.rmtree(state)
    make_site(site, "two")
    p = seeder(ws, logdir, "restart-changed", site, key, state, node)
    ev = p.wait_event(lambda e: e.get("event") == "name_published", WAIT)[1]
    site2 = p.wait_for("site", 5)
    p.stop(timeout=10)
    R.check(ev is not None and ev.get("seq") == 2 and site2 is not None and ev.get("v2_infohash") == site2["v2_infohash"]
            and site2["v2_infohash"] != site1["v2_infohash"],
            "restart: with its state directory removed, a changed site is published at seq 2, above the DHT's 1",
            more=[repr(ev)] + (p.log_tail(8) if ev is None else []))
    if ev is not None and site2 is not None:
        check_read(node, pub, 2, site2["torrent"], "restart", log)


def case_watch(ws, work, logdir, node, log):
    site = os.path.join(work, "watched")
    make_site(site, "watched one")
    key = os.path.join(work, "watch.key")
    pub = bytes.fromhex(key_new(ws, key)["public_key"])
    state = os.path.join(work, "state-watch")
    p = seeder(ws, logdir, "watch", site, key, state, node, ["--watch", "--grace", "20"], gateway=True)
    try:
        listening = p.wait_for("listening", START)
        gw = p.wait_for("gateway", START)
        port = gw["port"] if gw else 0
        R.check(http_get(port, "/index.html") == (200, b"<h1>site watched one</h1>\n"), "watch: the seeder's gateway serves the site at its root")
        ev1 = published(p, 1, WAIT)
        R.check(ev1 is not None, "watch: seq 1 is published", more=p.log_tail(8) if ev1 is None else [])
        if ev1 is None:
            return
        torrent1 = os.path.join(work, "watch1.torrent")
        shutil.copy(site_event(p, ev1["v2_infohash"], 5)["torrent"], torrent1)
        check_read(node, pub, 1, torrent1, "watch (before the edit)", log)

        write(os.path.join(site, "index.html"), "<h1>edited</h1>\n")
        ev2 = published(p, 2, WAIT)
        R.check(ev2 is not None and ev2.get("v2_infohash") != ev1["v2_infohash"],
                "watch: an edit saved by rename is packaged and published as seq 2", more=[repr(ev2)] + p.log_tail(8))
        if ev2 is None:
            return
        old = bytes.fromhex(ev1["v2_infohash"])[:20]
        R.check(handshake(listening["port"], old) == old, "watch: during its grace period the old version still answers peers")
        s2 = site_event(p, ev2["v2_infohash"], 5)
        R.check(s2 is not None, "watch: the new version is seeded (a site event names it)")
        if s2 is not None:
            check_read(node, pub, 2, s2["torrent"], "watch (after the edit)", log)
        R.check(http_get(port, "/index.html") == (200, b"<h1>edited</h1>\n"),
                "watch: the seeder's gateway serves the new version at its root once it is published")
        own = "%s.localhost:%d" % (ev2["name"], port)
        R.check(http_get(port, "/index.html", host=own) == (200, b"<h1>edited</h1>\n"),
                "watch: the seeder's gateway serves the new version at http://<name>.localhost/ too")
        retired = p.wait_event(lambda e: e.get("event") == "site_retired" and e.get("site_id") == ev1["site_id"], WAIT)[1]
        R.check(retired is not None, "watch: the replaced version is retired after its grace period", more=p.log_tail(5))
        R.check(handshake(listening["port"], old) is None, "watch: once retired, the old version's hash is refused")

        os.remove(os.path.join(site, "about.html"))
        ev3 = published(p, 3, WAIT)
        R.check(ev3 is not None and ev3.get("v2_infohash") not in (ev1["v2_infohash"], ev2["v2_infohash"]),
                "watch: a removed file is published as seq 3", more=[repr(ev3)] + p.log_tail(8))
        if ev3 is not None:
            s3 = site_event(p, ev3["v2_infohash"], 5)
            if s3 is not None:
                t3 = Torrent(s3["torrent"])
                R.check(all("about.html" not in f[0] for f in t3.files), "watch: seq 3's torrent no longer has the removed file")
    finally:
        rc, _ = p.stop(timeout=10)
        R.check(rc == 0, "watch: the seeder exits 0 on SIGTERM", more=["exit %r" % (rc,)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", default="/tmp/webseed-names")
    ap.add_argument("--only", default=",".join(ALL_CASES))
    args = ap.parse_args()
    ws = os.path.abspath(args.webseed)
    cases = [c for c in args.only.split(",") if c]
    shutil.rmtree(args.work, ignore_errors=True)
    logdir = os.path.join(args.work, "logs")
    os.makedirs(logdir)
    log = open(os.path.join(logdir, "alerts"), "w", buffering=1)
    L = None
    try:
        if "refuse" in cases:
            case_refuse(ws, args.work, logdir)
        if any(c in cases for c in ("publish", "restart", "watch")):
            L, node = lt_node("127.0.0.61")
            R.check(node[1] > 0, "libtorrent's DHT node is up", "on %s:%d" % node)
            if "publish" in cases or "restart" in cases:
                case_publish_and_restart(ws, args.work, logdir, node, log, cases)
            if "watch" in cases:
                case_watch(ws, args.work, logdir, node, log)
    finally:
        Proc.kill_all()
        del L
    print(R.summary())
    sys.exit(R.exit_status())


if __name__ == "__main__":
    main()
