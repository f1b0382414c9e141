#!/usr/bin/python3
"""webseed and a real tracker: Debian's opentracker (HTTP and UDP on one loopback port) and
libtorrent 2.0.8 finding each other through it, with no DHT and no peer given.

opentracker is built in whitelist mode (INTEROP.md): the harness writes its config
(listen.tcp_udp, access.whitelist /wl.txt, tracker.rootdir) and whitelists the hashes of
the site's torrents (the v1 hash and the truncated v2 hash, each its own swarm).

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

Usage: /usr/bin/python3 Tools/interop/trackers.py --webseed .build/debug/webseed --work DIR
Loopback only. One `ok`/`FAIL` line per check; ends with `N passed, M failed`.
"""

import argparse
import json
import os
import shutil
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
from webseedtest.ltsession import OFFLINE, TCP_ONLY, PLAINTEXT, new_session, wait_alerts
from webseedtest.procs import Proc, free_port, poll, run
from webseedtest.results import Results
from webseedtest.trees import compare_tree

r = Results()


def make_site(root):
    os.makedirs(os.path.join(root, "css"), exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>through a tracker</h1>\n")
    with open(os.path.join(root, "css", "site.css"), "w") as f:
        f.write("h1 { color: teal }\n" * 50)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(700_000))


def create(webseed, site, out, trackers):
    argv = [webseed, "create", site, "-o", out, "--json"]
    for t in trackers:
        argv += ["--tracker", t]
    rc, out = run(argv, 60)
    if rc != 0:
        raise SystemExit("create failed: %s" % out)
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


class OpenTracker:
    def __init__(self, work, port, hashes):
        self.root = os.path.join(work, "ot-root")
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "wl.txt"), "w") as f:
            f.write("".join(h + "\n" for h in hashes))
        conf = os.path.join(work, "opentracker.conf")
        with open(conf, "w") as f:
            f.write("listen.tcp_udp 127.0.0.1:%d\naccess.whitelist /wl.txt\ntracker.rootdir %s\n" % (port, self.root))
        self.port = port
        self.proc = Proc("opentracker", ["opentracker", "-f", conf], work)
        self.http = "http://127.0.0.1:%d/announce" % port
        self.udp = "udp://127.0.0.1:%d" % port
        if not poll(lambda: self.scrape("00" * 20) is not None, 10):
            raise SystemExit("opentracker did not start: %s" % open(self.proc.err_path).read())

    def scrape(self, hash_hex):
        """{complete, incomplete, downloaded} for the hash, {} if unknown, None if unreachable."""
        q = "".join("%%%02X" % b for b in bytes.fromhex(hash_hex))
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/scrape?info_hash=%s" % (self.port, q), timeout=3).read()
        except OSError:
            return None
        files = bdecode(body)[0].get(b"files", {})
        entry = files.get(bytes.fromhex(hash_hex), {})
        return {k.decode(): v for k, v in entry.items()}

    def stop(self):
        self.proc.stop()


def lt_settings(listen):
    s = dict(OFFLINE)
    s.update(TCP_ONLY)
    s.update(PLAINTEXT)
    s.update({"listen_interfaces": listen, "allow_multiple_connections_per_ip": True,
              "announce_to_all_tiers": True, "announce_to_all_trackers": True,
              "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
              | lt.alert.category_t.tracker_notification})
    return s


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
    seeder.stop()
    _, stopped = seeder.wait_event(lambda e: e.get("event") == "tracker_announced" and e.get("announce") == "stopped", 5)
    r.check(stopped is not None, "%s: on SIGTERM webseed told the tracker stopped" % label)
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.webseed = os.path.abspath(args.webseed)
    if shutil.which("opentracker") is None:
        r.fail("opentracker is installed", "run Tools/setup (Debian package opentracker)")
        return r.exit_status()
    site = os.path.join(args.work, "site")
    make_site(site)
    port = free_port()
    # The hashes are the same whatever tracker a torrent names (trackers are outside info).
    probe = create(args.webseed, site, os.path.join(args.work, "probe.torrent"), [])
    v1, v2short = probe["v1_infohash"], probe["v2_infohash"][:40]
    ot = OpenTracker(args.work, port, [v1, v2short])
    try:
        case_seed(args, r, "a", ot.http, [v1, v2short], ot)
        r.check(poll(lambda: (ot.scrape(v1) or {}).get("complete", 1) == 0, 5),
                "a: after stopped, a scrape shows no seeder of the v1 hash", "scrape %s" % ot.scrape(v1))
        case_seed(args, r, "b", ot.udp, [v1, v2short], ot)
        case_get(args, r, ot, probe)
        case_refused(args, r, ot)
        case_offline(args, r)
    finally:
        ot.stop()
    print(r.summary())
    return r.exit_status()


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


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        Proc.kill_all()
