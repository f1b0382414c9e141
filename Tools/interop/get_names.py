#!/usr/bin/python3
"""`webseed get` and `webseed info` on a site name (issue 13, points 3, 4 and 8), on a
private DHT on loopback: one `webseed dht` node B that every other process bootstraps from
(`--offline --dht-bootstrap B`), so nothing leaves this host.

A seeder S (`webseed seed --no-dht`) seeds every version of the test sites; it is reachable
only through a counting TCP relay (`get --peer RELAY`), so the relay's byte count is
everything `get` received from peers: metadata, hash replies and pieces. The name's items
are put on B with `webseed dht --put-item KEY --item-bencoded HEX --item-seq N` (the value
is a site record, `d2:ih20:…2:v232:…e`, built here from the torrent S wrote).

Cases:
  bad input  get/info on a name with --no-dht, a bad --name-refresh or --timeout, a
            --item-bencoded that is not hex or not bencode: one line, non-zero exit.
  unknown   `info` on a name nobody published: one line on stderr, non-zero exit.
  follow    `info k-…` prints seq 1 and the site's hashes; `get k-… -o DIR` (no
            --exit-when-done, --name-refresh 1) puts v1 in DIR (DIR equals v1 exactly:
            same files, same bytes, nothing else); the item moves to seq 2 (one file edited,
            one removed, one added) and DIR follows: it equals v2 exactly, the unchanged
            file keeps its inode and mtime, the removed one is gone, no staging files are
            left in DIR; `info` prints seq 2; `get --exit-when-done` into a fresh DIR exits 0
            with v2 there.
  refuse    then an item at seq 3 naming v1's v2 hash with a wrong `ih` (the torrent does
            not match the item): get says name_refused (torrent_mismatch, seq 3) and DIR
            still equals v2, every file with its inode and mtime unchanged.
  restart   get is stopped; the item moves to seq 4 naming v1 again; the same get command
            (same DIR and state directory, --exit-when-done) brings DIR to v1's content from
            what it recorded, the shared file untouched.
  never     an item naming a torrent no peer has: get --timeout 5 says name_refused
            (torrent_never_appeared), exits non-zero with one line, and puts nothing in DIR.
  salt      an item put with a salt is read by `info` on the btpk magnet with `&s=`, and
            not without it.
  bytes     a 2,000-file site (small generated files) and a second version with 1 file
            changed: after v1 is in place, the relay counts what the update to v2 fetched;
            it must be at most (the changed file + the v2 metadata) + 5%, and name_updated
            must say 1 file changed and no more payload than that file.

Usage:
  /usr/bin/python3 Tools/interop/get_names.py --webseed .build/debug/webseed --work /tmp/webseed-names

Every wait is bounded; every process is stopped at the end. One `ok ...` / `FAIL ...` line
per check, then `N passed, M failed`; exit status 1 if any check failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

from webseedtest.bencode import bencode, bdecode, info_span
from webseedtest.procs import Proc
from webseedtest.relay import TcpRelay
from webseedtest.results import Results
from webseedtest.watchdog import Watchdog

R = Results()
WAIT = 60


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tree(root):
    """Relative path -> bytes of every entry under root (folders excluded; anything that
    is not a regular file is listed as such)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            out[rel] = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else "not a regular file"
    return out


def same_tree(a, b):
    ta, tb = tree(a), tree(b)
    diff = sorted(set(ta) ^ set(tb)) + sorted(k for k in set(ta) & set(tb) if ta[k] != tb[k])
    return not diff, diff[:10]


def identities(root):
    return {rel: (os.lstat(os.path.join(root, rel)).st_ino, os.lstat(os.path.join(root, rel)).st_mtime_ns) for rel in tree(root)}


def new_key(ws, path):
    p = subprocess.run([ws, "key", "new", path, "--json"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("webseed key new failed: " + p.stderr.strip())
    return json.loads(p.stdout)


def record_hex(torrent):
    """The site record naming a torrent: BEP 46's ih (v1 hash of a hybrid, else the v2 hash
    truncated) and the v2 hash, bencoded, in hex."""
    import hashlib
    info = info_span(open(torrent, "rb").read())
    v2 = hashlib.sha256(info).digest()
    ih = hashlib.sha1(info).digest() if b"6:pieces" in info else v2[:20]
    return bencode({b"ih": ih, b"v2": v2}).hex(), ih, v2, len(info)


def put_item(ws, work, logdir, node, keyfile, value_hex, seq, tag):
    p = Proc("put-" + tag, [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", os.path.join(work, "put-" + tag),
                            "--dht-bootstrap", "%s:%d" % node, "--put-item", keyfile, "--item-bencoded", value_hex,
                            "--item-seq", str(seq)], logdir)
    try:
        ev = p.wait_for("dht_item_put", WAIT)
        R.check(ev is not None and ev.get("sent_to", 0) >= 1, "%s: the item (seq %d) was put on the private DHT" % (tag, seq),
                more=[json.dumps(ev)] + p.log_tail())
    finally:
        p.stop()


def info(ws, work, node, name, timeout=30):
    p = subprocess.run([ws, "info", name, "--json", "--offline", "--listen", "127.0.0.1:0", "--dht-bootstrap", "%s:%d" % node,
                        "--state-dir", os.path.join(work, "info"), "--timeout", str(timeout)], capture_output=True, text=True, timeout=90)
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    found = [o for o in objs if o.get("event") == "name_info"]
    return p.returncode, (found[0] if found else None), p.stderr.strip()


def get_proc(ws, work, logdir, node, relay, name, out, tag, extra=(), state=None):
    return Proc("get-" + tag, [ws, "get", name, "-o", out, "--json", "--offline", "--listen", "127.0.0.1:0",
                               "--dht-bootstrap", "%s:%d" % node, "--peer", "127.0.0.1:%d" % relay.port,
                               "--name-refresh", "1", "--state-dir", os.path.join(work, "get-" + (state or tag))] + list(extra), logdir)


def updated(p, seq, start=0):
    i, ev = p.wait_event(lambda e: e.get("event") == "name_updated" and e.get("seq") == seq, WAIT, start)
    return i, ev


def case_unknown(ws, work, node):
    key = new_key(ws, os.path.join(work, "nobody.key"))
    p = subprocess.run([ws, "info", key["name"], "--offline", "--listen", "127.0.0.1:0", "--dht-bootstrap", "%s:%d" % node,
                        "--state-dir", os.path.join(work, "info-nobody"), "--timeout", "3"], capture_output=True, text=True, timeout=60)
    lines = p.stderr.strip().splitlines()
    R.check(p.returncode != 0 and len(lines) == 1 and "no DHT node holds an item" in lines[0],
            "info on a name nobody published: one line, non-zero exit", more=["exit %d" % p.returncode] + lines[:5])


def case_bad_input(ws, work):
    key = new_key(ws, os.path.join(work, "cli.key"))
    name, keyfile = key["name"], os.path.join(work, "cli.key")
    for argv, want in [(["get", name, "--no-dht"], "DHT"), (["get", key["magnet"], "--no-dht"], "DHT"),
                       (["get", name, "--name-refresh", "0"], "--name-refresh"), (["info", name, "--no-dht"], "DHT"),
                       (["info", name, "--timeout", "0"], "--timeout"),
                       (["dht", "--offline", "--put-item", keyfile, "--item-bencoded", "zz"], "--item-bencoded"),
                       (["dht", "--offline", "--put-item", keyfile, "--item-bencoded", "6c"], "--item-bencoded")]:
        p = subprocess.run([ws] + argv + ["--state-dir", os.path.join(work, "cli")], capture_output=True, text=True, timeout=30)
        lines = p.stderr.strip().splitlines()
        R.check(p.returncode != 0 and len(lines) == 1 and want in lines[0], "bad input refused with one line: %s" % " ".join({name: "K-NAME", key["magnet"]: "BTPK-MAGNET"}.get(a, a) for a in argv),
                more=["exit %d" % p.returncode] + lines[:5])


def case_never_appears(ws, work, logdir, node, seeder_port):
    key = new_key(ws, os.path.join(work, "ghost.key"))
    import hashlib
    ghost = bencode({b"ih": hashlib.sha1(b"ghost").digest(), b"v2": hashlib.sha256(b"ghost").digest()}).hex()
    put_item(ws, work, logdir, node, os.path.join(work, "ghost.key"), ghost, 1, "ghost-seq1")
    relay = TcpRelay(("127.0.0.1", seeder_port))
    out = os.path.join(work, "out-ghost")
    p = get_proc(ws, work, logdir, node, relay, key["name"], out, "ghost", ["--timeout", "5"])
    try:
        rc = p.wait(WAIT)
        p.end()
        _, ev = p.wait_event(lambda e: e.get("event") == "name_refused", 1)
        err = open(p.err_path).read().strip().splitlines()
        R.check(rc not in (0, None) and ev is not None and ev["code"] == "torrent_never_appeared" and ev["seq"] == 1,
                "an item naming a torrent that never appears: name_refused torrent_never_appeared, non-zero exit",
                more=["exit %s" % rc, json.dumps(ev)] + err[-3:])
        R.check(len(err) >= 1 and "did not appear" in err[-1], "its last line says the torrent did not appear", more=err[-3:])
        R.check(not os.path.exists(out) or not tree(out), "nothing was put in DIR")
    finally:
        p.stop()
        relay.stop()


def case_salt(ws, work, logdir, node, sites):
    key = new_key(ws, os.path.join(work, "salted.key"))
    v1hex, _, v1v2, _ = record_hex(sites["v1"])
    p = Proc("put-salted", [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", os.path.join(work, "put-salted"),
                            "--dht-bootstrap", "%s:%d" % node, "--put-item", os.path.join(work, "salted.key"), "--item-bencoded", v1hex,
                            "--item-salt", "blog", "--item-seq", "5"], logdir)
    try:
        ev = p.wait_for("dht_item_put", WAIT)
        R.check(ev is not None and ev.get("sent_to", 0) >= 1, "salt: the salted item was put", more=p.log_tail())
    finally:
        p.stop()
    magnet = key["magnet"] + "&s=" + b"blog".hex()
    rc, got, err = info(ws, work, node, magnet)
    R.check(rc == 0 and got is not None and got["seq"] == 5 and got["salt"] == b"blog".hex() and got["v2_infohash"] == v1v2.hex(),
            "info on a btpk magnet with a salt reads the salted item", more=[json.dumps(got), err])
    rc, got, err = info(ws, work, node, key["name"], timeout=3)
    R.check(rc != 0 and got is None, "the same key without the salt names nothing", more=[json.dumps(got), err])


def case_follow_and_refuse(ws, work, logdir, node, seeder_port, sites):
    key = new_key(ws, os.path.join(work, "site.key"))
    keyfile, name = os.path.join(work, "site.key"), key["name"]
    v1hex, _, v1v2, _ = record_hex(sites["v1"])
    v2hex, _, v2v2, _ = record_hex(sites["v2"])
    put_item(ws, work, logdir, node, keyfile, v1hex, 1, "follow-seq1")
    rc, got, err = info(ws, work, node, name)
    R.check(rc == 0 and got is not None and got["seq"] == 1 and got["v2_infohash"] == v1v2.hex()
            and got["magnet"].startswith("magnet:?"), "info %s: seq 1 and v1's v2 hash" % name[:12], more=[json.dumps(got), err])
    relay = TcpRelay(("127.0.0.1", seeder_port))
    out = os.path.join(work, "out")
    p = get_proc(ws, work, logdir, node, relay, name, out, "follow")
    try:
        i, ev = updated(p, 1)
        R.check(ev is not None, "get follows %s: v1 is in DIR (name_updated seq 1)" % name[:12], more=p.log_tail())
        if ev is None:
            return
        ok, diff = same_tree(os.path.join(work, "v1"), out)
        R.check(ok, "DIR equals v1 exactly", more=diff)
        before = identities(out)
        put_item(ws, work, logdir, node, keyfile, v2hex, 2, "follow-seq2")
        i, ev = updated(p, 2, i + 1)
        R.check(ev is not None and ev["changed"] == 2 and ev["removed"] == 1,
                "DIR follows the name to seq 2: 2 files changed or new, 1 removed", more=[json.dumps(ev)] + p.log_tail())
        if ev is None:
            return
        ok, diff = same_tree(os.path.join(work, "v2"), out)
        R.check(ok, "DIR equals v2 exactly (no staging or temporary files left)", more=diff)
        after = identities(out)
        R.check(after.get("same.txt") == before.get("same.txt"), "the unchanged file keeps its inode and mtime",
                more=[str(before.get("same.txt")), str(after.get("same.txt"))])
        R.check(after.get("sub/deep.txt") == before.get("sub/deep.txt"), "an unchanged file in a folder keeps its inode and mtime")
        R.check(not os.path.exists(os.path.join(out, "gone.txt")), "the file v2 no longer has is deleted")
        rc, got, err = info(ws, work, node, name)
        R.check(rc == 0 and got is not None and got["seq"] == 2 and got["v2_infohash"] == v2v2.hex(), "info: seq 2 and v2's v2 hash",
                more=[json.dumps(got), err])
        once = os.path.join(work, "out-once")
        q = get_proc(ws, work, logdir, node, relay, name, once, "once", ["--exit-when-done"])
        rc = q.wait(WAIT)
        q.end()
        ok, diff = same_tree(os.path.join(work, "v2"), once)
        R.check(rc == 0 and ok, "get --exit-when-done on the name exits 0 once the newest version (v2) is in a fresh DIR",
                more=["exit %s" % rc] + diff + q.log_tail())

        # refuse: seq 3 names v1's torrent by its v2 hash but with another ih.
        forged = bencode({b"ih": b"\x07" * 20, b"v2": v1v2}).hex()
        put_item(ws, work, logdir, node, keyfile, forged, 3, "refuse-seq3")
        _, ev = p.wait_event(lambda e: e.get("event") == "name_refused" and e.get("seq") == 3, WAIT, i + 1)
        R.check(ev is not None and ev["code"] == "torrent_mismatch", "an item whose torrent does not match is refused (name_refused torrent_mismatch)",
                more=[json.dumps(ev)] + p.log_tail())
        ok, diff = same_tree(os.path.join(work, "v2"), out)
        R.check(ok and identities(out) == after, "after the refusal DIR still equals v2, every file untouched", more=diff)
        R.check(p.alive(), "get keeps running after a refusal")
        p.stop()

        # restart: while get is stopped the name moves back to v1's content (seq 4); the same
        # command again brings DIR there, leaving the file both versions share untouched.
        put_item(ws, work, logdir, node, keyfile, v1hex, 4, "restart-seq4")
        q = get_proc(ws, work, logdir, node, relay, name, out, "restart", ["--exit-when-done"], state="follow")
        rc = q.wait(WAIT)
        q.end()
        _, ev = q.wait_event(lambda e: e.get("event") == "name_updated", 1)
        ok, diff = same_tree(os.path.join(work, "v1"), out)
        R.check(rc == 0 and ok and ev is not None and ev["seq"] == 4 and ev["changed"] == 2 and ev["removed"] == 1,
                "restarted, get brings DIR from v2 to seq 4 (v1's content): 2 changed or put back, 1 removed",
                more=["exit %s" % rc, json.dumps(ev)] + diff + q.log_tail())
        R.check(identities(out).get("same.txt") == after.get("same.txt"), "the file both versions share keeps its inode and mtime across the restart")
    finally:
        p.stop()
        relay.stop()


def case_bytes(ws, work, logdir, node, seeder_port, sites, changed_size):
    key = new_key(ws, os.path.join(work, "big.key"))
    keyfile, name = os.path.join(work, "big.key"), key["name"]
    b1hex, _, _, _ = record_hex(sites["big1"])
    b2hex, _, _, info2 = record_hex(sites["big2"])
    put_item(ws, work, logdir, node, keyfile, b1hex, 1, "bytes-seq1")
    relay = TcpRelay(("127.0.0.1", seeder_port))
    out = os.path.join(work, "out-big")
    p = get_proc(ws, work, logdir, node, relay, name, out, "bytes")
    try:
        i, ev = updated(p, 1)
        R.check(ev is not None and ev["files"] == 2000, "bytes: v1 of the 2,000-file site is in DIR", more=[json.dumps(ev)] + p.log_tail())
        if ev is None:
            return
        base = relay.bytes_down
        put_item(ws, work, logdir, node, keyfile, b2hex, 2, "bytes-seq2")
        i, ev = updated(p, 2, i + 1)
        fetched = relay.bytes_down - base
        R.check(ev is not None and ev["changed"] == 1 and ev["removed"] == 0, "bytes: the update to v2 changed 1 file",
                more=[json.dumps(ev)] + p.log_tail())
        if ev is None:
            return
        R.check(ev["downloaded"] <= changed_size, "bytes: name_updated's payload is at most the changed file (%d <= %d bytes)"
                % (ev["downloaded"], changed_size))
        limit = (changed_size + info2) * 1.05
        R.check(fetched <= limit, "bytes: the update fetched %d bytes from peers, within (1 changed file %d + metadata %d) + 5%% = %d"
                % (fetched, changed_size, info2, limit))
        ok, diff = same_tree(os.path.join(work, "big2"), out)
        R.check(ok, "bytes: DIR equals v2 of the 2,000-file site", more=diff)
    finally:
        p.stop()
        relay.stop()


def make_sites(work):
    v1 = os.path.join(work, "v1")
    write(os.path.join(v1, "index.html"), b"<h1>version one</h1>\n")
    write(os.path.join(v1, "same.txt"), b"unchanged across versions\n" * 100)
    write(os.path.join(v1, "sub/deep.txt"), bytes(range(256)) * 300)
    write(os.path.join(v1, "gone.txt"), b"only in v1\n")
    v2 = os.path.join(work, "v2")
    shutil.copytree(v1, v2)
    write(os.path.join(v2, "index.html"), b"<h1>version two, edited</h1>\n")
    os.unlink(os.path.join(v2, "gone.txt"))
    write(os.path.join(v2, "new/added.txt"), b"new in v2\n" * 50)
    big1 = os.path.join(work, "big1")
    for n in range(2000):
        write(os.path.join(big1, "d%02d/f%04d.txt" % (n % 40, n)), (b"file %d " % n) * (100 + n % 300))
    big2 = os.path.join(work, "big2")
    shutil.copytree(big1, big2)
    changed = os.path.join(big2, "d07/f0007.txt")
    write(changed, b"the one changed file, a little longer now " * 100)
    return {"v1": v1, "v2": v2, "big1": big1, "big2": big2}, os.path.getsize(changed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    ws = os.path.abspath(a.webseed)
    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    logdir = os.path.join(work, "logs")
    dog = Watchdog(600, R).start()
    procs = []
    try:
        dirs, changed_size = make_sites(work)
        b = Proc("dht-b", [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", os.path.join(work, "b")], logdir)
        procs.append(b)
        ev = b.wait_for("dht", 20)
        if ev is None:
            R.fail("the bootstrap DHT node started", more=b.log_tail())
            return
        node = ("127.0.0.1", ev["port"])
        s = Proc("seeder", [ws, "seed", dirs["v1"], dirs["v2"], dirs["big1"], dirs["big2"], "--listen", "127.0.0.1:0", "--offline",
                            "--no-dht", "--no-gateway", "--json", "--state-dir", os.path.join(work, "seed")], logdir)
        procs.append(s)
        ready = s.wait_for("ready", 120)
        listening = s.wait_for("listening", 1)
        site_events = [e for _, e in s.events if e.get("event") == "site"]
        if ready is None or listening is None or len(site_events) != 4:
            R.fail("the seeder is ready with 4 sites", more=s.log_tail())
            return
        by_name = {e["name"]: e["torrent"] for e in site_events}
        sites = {k: by_name[os.path.basename(v)] for k, v in dirs.items()}
        case_bad_input(ws, work)
        case_unknown(ws, work, node)
        case_follow_and_refuse(ws, work, logdir, node, listening["port"], sites)
        case_never_appears(ws, work, logdir, node, listening["port"])
        case_salt(ws, work, logdir, node, sites)
        case_bytes(ws, work, logdir, node, listening["port"], sites, changed_size)
    finally:
        for p in procs:
            p.stop()
        dog.cancel()
    print(R.summary())
    sys.exit(R.exit_status())


if __name__ == "__main__":
    main()
