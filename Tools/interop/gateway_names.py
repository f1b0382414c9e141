#!/usr/bin/env python3
"""A gateway follows a site's name (issue 13, points 3, 5 and 8) on a private loopback DHT.

  python3 Tools/interop/gateway_names.py --webseed .build/debug/webseed --work /tmp/gw-names

Processes (all on 127.0.0.1, `--offline`, joined only through --dht-bootstrap):
  B   `webseed dht`: the DHT's bootstrap node (it stores items like every node).
  S1  `webseed seed v1/`, S2 `webseed seed v2/`: two versions of one small site; v2 changes
      index.html, keeps same.js and adds new.html.
  P   `webseed dht --put-item KEY --item-site TORRENT --item-seq N`: the publisher, one short
      process per item (a key made with `webseed key new`).
  G   `webseed gateway --dht-bootstrap B --name-refresh 1 --timeout 20`: the gateway under test.
  F   a fake DHT node written here (plain UDP, items signed here with python3-cryptography):
      the only DHT node of a second gateway G2 (`--peer S1 --peer S2` finds the sites), so the
      items G2 sees are exactly the ones F answers, which a real DHT would never let through
      (its nodes keep the highest seq).

Checks:
  first     http://<name>.localhost:PORT/ serves v1 (the first request waits for the lookup
            and the torrent), name_resolved seq 1; Cache-Control revalidates (not immutable),
            the ETag is the file's pieces root; /name/<name>/x on localhost moves to the name's
            origin; the site-id address stays immutable.
  update    S2 seeds v2, P puts seq 2: name_switched 1 -> 2, / serves v2, new.html appears,
            same.js answers 304 to v1's ETag; /api/status lists the name with seq 2 and v2's id.
  never     P puts seq 3 naming a torrent nobody seeds: name_refused torrent_never_appeared;
            v2 still served.
  mismatch  P puts seq 4 with v1's v2 hash but another ih: name_refused torrent_mismatch; v2
            still served.
  lower     P puts seq 1 again: the DHT's nodes refuse it (they hold seq 4), and G, having
            looked again since (its last_resolved moves on), still serves v2.
  fake      G2 over F: F answers seq 2 (v2) -> served; seq 1 (v1) -> name_refused older_seq;
            seq 2 naming v1 -> name_refused same_seq_other_content; a forged seq 9 (its
            signature over other bytes) -> dht_item_refused naming F; each time v2 stays.
            Then F answers nothing (no DHT): v2 stays.

Every wait is bounded (a watchdog on top); processes are stopped at the end. One `ok ...` /
`FAIL ...` line per check and a last `N passed, M failed`; exit 1 if any check failed.
"""

import argparse
import calendar
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from cryptography.hazmat.primitives import serialization

from webseedtest.bencode import bencode, bdecode
from webseedtest.procs import Proc, poll
from webseedtest.results import Results
from webseedtest.watchdog import Watchdog

R = Results()
START = 30
SWITCH = 60
REVALIDATE = "max-age=10, must-revalidate"


def run(argv, timeout=60):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv[:3]), p.stderr.strip()))
    return p.stdout


def write_site(root, files):
    shutil.rmtree(root, ignore_errors=True)
    for path, data in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)


def http_get(port, host, path, headers=None):
    """(status, headers dict with lowercase names, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path, headers=dict({"Host": host}, **(headers or {})))
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def status_api(port):
    _, _, body = http_get(port, "localhost:%d" % port, "/api/status")
    return json.loads(body)


class Network:
    def __init__(self, ws, work, logdir):
        self.ws, self.work, self.logdir = ws, work, logdir
        self.n = 0

    def state(self, name):
        d = os.path.join(self.work, "state-" + name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    def seed(self, name, directory, bootstrap):
        p = Proc(name, [self.ws, "seed", directory, "--listen", "127.0.0.1:0", "--no-gateway", "--offline", "--json",
                        "--dht-bootstrap", "127.0.0.1:%d" % bootstrap, "--state-dir", self.state(name)], self.logdir)
        site = p.wait_for("site", START)
        listening = p.wait_for("listening", START)
        if site is None or listening is None:
            raise RuntimeError("%s did not start: %s" % (name, p.log_tail(5)))
        return p, site, listening["port"]

    def put(self, key, torrent, seq, bootstrap, ih=None):
        """Puts a site record item with `webseed dht --put-item`; returns its dht_item_put event."""
        self.n += 1
        name = "put-%d-seq%d" % (self.n, seq)
        argv = [self.ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", self.state(name),
                "--dht-bootstrap", "127.0.0.1:%d" % bootstrap, "--put-item", key, "--item-site", torrent, "--item-seq", str(seq)]
        if ih:
            argv += ["--item-ih", ih]
        p = Proc(name, argv, self.logdir)
        ev = p.wait_for("dht_item_put", START + 10)
        p.stop(timeout=5)
        return ev


class FakeNode:
    """A DHT node that answers every query with its id, a token and no nodes, and a `get` for
    the name's target with the item set by the test (or none)."""

    def __init__(self, host="127.0.0.71"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.id = hashlib.sha1(b"gateway_names fake node").digest()
        self.target = None
        self.item = None       # the fields of the item answered for `target`
        self.gets = 0          # get queries for the item's target since it was set
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def set_item(self, target, fields):
        """Answers `get` for `target` with `fields` (k, seq, sig, v) from now on; None: no item."""
        with self.lock:
            self.target = target
            self.item = fields
            self.gets = 0

    def wait_gets(self, n, timeout):
        """Until n get queries for the target have been answered since set_item (bounded)."""
        deadline = time.time() + timeout
        with self.cond:
            while self.gets < n and time.time() < deadline:
                self.cond.wait(0.2)
            return self.gets >= n

    def _serve(self):
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                m, _ = bdecode(data)
            except Exception:
                continue
            if not isinstance(m, dict) or m.get(b"y") != b"q":
                continue
            r = {b"id": self.id, b"nodes": b"", b"token": b"fake-token"}
            a = m.get(b"a") or {}
            counted = False
            with self.lock:
                if m.get(b"q") == b"get" and self.target and a.get(b"target") == self.target:
                    r.update(self.item or {})
                    counted = True
            self.sock.sendto(bencode({b"t": m.get(b"t", b""), b"y": b"r", b"r": r}), addr)
            if counted:
                with self.cond:
                    self.gets += 1
                    self.cond.notify_all()

    def close(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()


def signed_buffer(seq, v):
    return b"3:seqi%de1:v" % seq + bencode(v)


def record(site_event):
    """The item value webseed puts for a seeded site: {ih: v1 hash, v2: v2 hash}."""
    return {b"ih": bytes.fromhex(site_event["v1_infohash"]), b"v2": bytes.fromhex(site_event["v2_infohash"])}


def wait_name_event(g, name, kinds, start, timeout):
    return g.wait_event(lambda e: e.get("event") in kinds and e.get("name") == name, timeout, start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", default="/tmp/webseed-gateway-names")
    args = ap.parse_args()
    ws = os.path.abspath(args.webseed)
    shutil.rmtree(args.work, ignore_errors=True)
    logdir = os.path.join(args.work, "logs")
    os.makedirs(logdir)
    watchdog = Watchdog(600, R)
    watchdog.start()
    fake = None
    try:
        fake = scenario(ws, args.work, logdir)
    except Exception as e:  # a step the rest needs failed: say so, once
        R.fail("the run went through", repr(e))
    finally:
        if fake:
            fake.close()
        Proc.kill_all()
        watchdog.cancel()
    print(R.summary())
    sys.exit(R.exit_status())


def scenario(ws, work, logdir):
    net = Network(ws, work, logdir)
    B = Proc("B", [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", net.state("B")], logdir)
    ev = B.wait_for("dht", START)
    if not R.check(ev is not None, "B, the bootstrap node, is up", more=B.log_tail(5)):
        return None
    boot = ev["port"]

    key = os.path.join(work, "site.key")
    info = json.loads(run([ws, "key", "new", key, "--json"]))
    name = info["name"]
    with open(key, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    public = bytes.fromhex(info["public_key"])
    target = hashlib.sha1(public).digest()

    same = os.urandom(3000)
    v1 = os.path.join(work, "v1")
    v2 = os.path.join(work, "v2")
    v3 = os.path.join(work, "v3")
    write_site(v1, {"index.html": b"<h1>version 1</h1>", "same.js": same})
    write_site(v2, {"index.html": b"<h1>version 2</h1>", "same.js": same, "new.html": b"new in 2"})
    write_site(v3, {"index.html": b"<h1>never seeded</h1>"})
    t3 = os.path.join(work, "v3.torrent")
    run([ws, "create", v3, "-o", t3])
    check_cli(ws, work, name, info["public_key"], key)

    S1, site1, port1 = net.seed("S1", v1, boot)
    R.ok("S1 seeds version 1", site1["site_id"])

    ev = net.put(key, site1["torrent"], 1, boot)
    if not R.check(ev is not None and ev.get("sent_to", 0) >= 1, "the publisher puts seq 1 (version 1)", repr(ev)):
        return None

    G = Proc("G", [ws, "gateway", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--offline", "--json",
                   "--dht-bootstrap", "127.0.0.1:%d" % boot, "--name-refresh", "1", "--timeout", "20",
                   "--state-dir", net.state("G")], logdir)
    ev = G.wait_for("gateway", START)
    if not R.check(ev is not None, "G, the gateway, is up", more=G.log_tail(5)):
        return None
    port = ev["port"]
    host = "%s.localhost:%d" % (name, port)

    # first: the first request waits for the lookup and the torrent.
    status, headers, body = http_get(port, host, "/")
    R.check(status == 200 and body == b"<h1>version 1</h1>", "first: http://<name>.localhost/ serves version 1",
            "%d %r" % (status, body[:60]), more=G.log_tail(10))
    _, ev = wait_name_event(G, name, ("name_resolved",), 0, 5)
    R.check(ev is not None and ev.get("seq") == 1 and ev.get("site_id") == site1["site_id"] and ev.get("from_seq") is None,
            "first: name_resolved with seq 1 and version 1's site id", repr(ev))
    R.check(headers.get("cache-control") == REVALIDATE, "first: a name's answer revalidates (%s), not immutable" % REVALIDATE,
            repr(headers.get("cache-control")))
    status, headers1, _ = http_get(port, host, "/same.js")
    etag1 = headers1.get("etag")
    R.check(status == 200 and etag1 and len(etag1) == 66, "first: the ETag is the file's pieces root", repr(etag1))
    status, headers, _ = http_get(port, "localhost:%d" % port, "/name/%s/same.js?x=1" % name)
    R.check(status == 301 and headers.get("location") == "http://%s/same.js?x=1" % host,
            "first: /name/<name>/… on localhost moves to the name's origin", "%d %r" % (status, headers.get("location")))
    status, headers, _ = http_get(port, "%s.localhost:%d" % (site1["site_id"], port), "/")
    R.check(status == 200 and "immutable" in headers.get("cache-control", ""), "first: the site-id address stays immutable",
            repr(headers.get("cache-control")))

    # update: version 2 under seq 2.
    S2, site2, port2 = net.seed("S2", v2, boot)
    mark = len(G.events)
    ev = net.put(key, site2["torrent"], 2, boot)
    R.check(ev is not None and ev.get("sent_to", 0) >= 1, "update: the publisher puts seq 2 (version 2)", repr(ev))
    _, ev = wait_name_event(G, name, ("name_switched", "name_refused"), mark, SWITCH)
    R.check(ev is not None and ev.get("event") == "name_switched" and ev.get("seq") == 2 and ev.get("from_seq") == 1
            and ev.get("site_id") == site2["site_id"], "update: name_switched from seq 1 to seq 2", repr(ev), more=G.log_tail(10))
    serves_v2(port, host, "update")
    status, _, body = http_get(port, host, "/new.html")
    R.check(status == 200 and body == b"new in 2", "update: new.html, only in version 2, is served", "%d" % status)
    status, headers, body = http_get(port, host, "/same.js", {"If-None-Match": etag1 or ""})
    R.check(status == 304 and not body, "update: same.js, unchanged, answers 304 to version 1's ETag", "%d" % status)
    # Files are kept by pieces root: version 2's same.js is version 1's file, linked, not fetched again.
    gw_state = os.path.join(net.work, "state-G", "gateway")  # net.state() would empty it
    old_js = os.path.join(gw_state, site1["site_id"], "same.js")
    new_js = os.path.join(gw_state, site2["site_id"], "same.js")
    same_inode = os.path.exists(old_js) and os.path.exists(new_js) and os.stat(old_js).st_ino == os.stat(new_js).st_ino
    R.check(same_inode, "update: version 2's unchanged same.js is version 1's file (one inode), not downloaded again",
            "%s / %s" % (os.path.exists(old_js), os.path.exists(new_js)))
    st = status_api(port)
    entry = next((n for n in st.get("names", []) if n.get("name") == name), None)
    R.check(entry is not None and entry.get("seq") == 2 and entry.get("site_id") == site2["site_id"] and entry.get("last_resolved"),
            "update: /api/status lists the name with seq 2, version 2's site id and when it was resolved", repr(entry))

    # never: an item naming a torrent nobody seeds.
    mark = len(G.events)
    net.put(key, t3, 3, boot)
    _, ev = wait_name_event(G, name, ("name_switched", "name_refused"), mark, SWITCH)
    R.check(ev is not None and ev.get("event") == "name_refused" and ev.get("code") == "torrent_never_appeared",
            "never: a torrent that never appears is refused (name_refused torrent_never_appeared)", repr(ev), more=G.log_tail(10))
    serves_v2(port, host, "never")

    # mismatch: version 1's v2 hash under another ih.
    mark = len(G.events)
    net.put(key, site1["torrent"], 4, boot, ih="00" * 20)
    _, ev = wait_name_event(G, name, ("name_switched", "name_refused"), mark, SWITCH)
    R.check(ev is not None and ev.get("event") == "name_refused" and ev.get("code") == "torrent_mismatch",
            "mismatch: a torrent that does not match the item is refused (name_refused torrent_mismatch)", repr(ev), more=G.log_tail(10))
    serves_v2(port, host, "mismatch")

    # lower: the DHT's nodes keep seq 4; G looks again and keeps version 2.
    ev = net.put(key, site1["torrent"], 1, boot)
    R.check(ev is not None and ev.get("found_seq") == 4, "lower: the nodes hold seq 4 and refuse a put of seq 1", repr(ev))
    t_put = time.time()

    def resolved_since_put():
        e = next((n for n in status_api(port).get("names", []) if n.get("name") == name), {})
        at = e.get("last_resolved")
        return at is not None and calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) > t_put

    R.check(poll(resolved_since_put, 20, 0.5), "lower: G resolved the name again after the put (last_resolved moved on)")
    serves_v2(port, host, "lower")

    # fake: a second gateway whose only DHT node is F.
    fake = FakeNode()
    v2_record = record(site2)
    v2_item = {b"k": public, b"seq": 2, b"v": v2_record, b"sig": private.sign(signed_buffer(2, v2_record))}
    fake.set_item(target, v2_item)
    G2 = Proc("G2", [ws, "gateway", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--offline", "--json",
                     "--dht-bootstrap", "%s:%d" % fake.address, "--peer", "127.0.0.1:%d" % port1, "--peer", "127.0.0.1:%d" % port2,
                     "--name-refresh", "1", "--timeout", "10", "--state-dir", net.state("G2"), name], logdir)
    ev = G2.wait_for("gateway", START)
    if not R.check(ev is not None, "fake: G2 is up, following the name given on its command line", more=G2.log_tail(5)):
        return fake
    port_2 = ev["port"]
    host2 = "%s.localhost:%d" % (name, port_2)
    _, ev = wait_name_event(G2, name, ("name_resolved", "name_refused"), 0, SWITCH)
    R.check(ev is not None and ev.get("event") == "name_resolved" and ev.get("seq") == 2,
            "fake: G2 resolves seq 2 from F", repr(ev), more=G2.log_tail(10))
    serves_v2(port_2, host2, "fake")

    v1_record = record(site1)
    for seq, value, code, what in [(1, v1_record, "older_seq", "a lower seq"),
                                   (2, v1_record, "same_seq_other_content", "the same seq with other content")]:
        mark = len(G2.events)
        fake.set_item(target, {b"k": public, b"seq": seq, b"v": value, b"sig": private.sign(signed_buffer(seq, value))})
        _, ev = wait_name_event(G2, name, ("name_switched", "name_refused"), mark, SWITCH)
        R.check(ev is not None and ev.get("event") == "name_refused" and ev.get("code") == code,
                "fake: %s is refused (name_refused %s)" % (what, code), repr(ev), more=G2.log_tail(10))
        serves_v2(port_2, host2, "fake, after %s" % what)

    mark = len(G2.events)
    forged = {b"k": public, b"seq": 9, b"v": v1_record, b"sig": private.sign(signed_buffer(8, v1_record))}
    fake.set_item(target, forged)
    _, ev = G2.wait_event(lambda e: e.get("event") == "dht_item_refused", SWITCH, mark)
    R.check(ev is not None and ev.get("from") == "%s:%d" % fake.address and ev.get("target") == target.hex()
            and "signature" in ev.get("reason", ""),
            "fake: a forged newer item (seq 9) is an event naming F (dht_item_refused)", repr(ev), more=G2.log_tail(10))
    fake.set_item(target, forged)  # counts its gets afresh
    R.check(fake.wait_gets(3, 20), "fake: G2 kept looking the name up at F")
    moved = [e for _, e in G2.events[mark:] if e.get("event") in ("name_switched", "name_resolved")]
    R.check(not moved, "fake: the forged item moved nothing", repr(moved))
    serves_v2(port_2, host2, "fake, after the forged item")

    # No item in the DHT any more (as with no DHT reachable): version 2 stays, and it is no refusal.
    mark = len(G2.events)
    fake.set_item(target, None)
    R.check(fake.wait_gets(3, 20), "fake: G2 looked the name up three times finding nothing")
    said = [e for _, e in G2.events[mark:] if e.get("event") in ("name_switched", "name_resolved", "name_refused")]
    R.check(not said, "fake: finding no item is neither a switch nor a refusal while a version is served", repr(said))
    serves_v2(port_2, host2, "fake, with no item in the DHT")

    for p, what in [(G2, "G2"), (G, "G"), (S2, "S2"), (S1, "S1"), (B, "B")]:
        rc, _ = p.stop(timeout=10)
        R.check(rc == 0, "%s exits 0 on SIGTERM" % what, "exit %r" % (rc,))
    return fake


def check_cli(ws, work, name, public_hex, key):
    """Bad names and options: one clear line on stderr, a non-zero exit, nothing started."""
    gw = [ws, "gateway", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--offline", "--state-dir",
          os.path.join(work, "state-cli")]
    dht = [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--state-dir", os.path.join(work, "state-cli-dht"),
           "--put-item", key]
    cases = [
        (gw + ["k-abc"], "invalid name 'k-abc'"),
        (gw + [name[:-1] + "1"], "invalid name"),
        (gw + ["magnet:?xs=urn:btpk:%s&s=626c6f67" % public_hex], "without a salt"),
        (gw + ["--no-dht", name], "drop --no-dht"),
        (gw + ["--name-refresh", "0"], "--name-refresh must be between"),
        (dht + ["--item-site", os.path.join(work, "missing.torrent")], "missing.torrent"),
        (dht + ["--item-site", os.path.join(work, "v3.torrent"), "--item-ih", "zz"], "invalid --item-ih"),
    ]
    for argv, want in cases:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        lines = p.stderr.strip().splitlines()
        R.check(p.returncode != 0 and len(lines) == 1 and want in lines[0],
                "cli: %s is refused in one line" % " ".join(argv[argv.index("--state-dir") + 2:]),
                "exit %d: %r" % (p.returncode, p.stderr.strip()[:200]))


def serves_v2(port, host, case):
    status, headers, body = http_get(port, host, "/")
    R.check(status == 200 and body == b"<h1>version 2</h1>" and headers.get("cache-control") == REVALIDATE,
            "%s: version 2 is served" % case, "%d %r" % (status, body[:60]))


if __name__ == "__main__":
    main()
