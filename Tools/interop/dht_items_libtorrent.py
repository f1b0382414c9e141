#!/usr/bin/python3
"""BEP 44 items between webseed's DHT and libtorrent (issue 13, points 6 and 7), on a
private DHT on loopback. Debian's libtorrent 2.0.8 (/usr/bin/python3); every session has LSD,
UPnP, NAT-PMP off and knows no router (dht_bootstrap_nodes=""), only the nodes given; webseed
runs `webseed dht --offline`, which contacts nobody it was not given.

Cases:
  store  webseed stores for libtorrent. A webseed node W (`webseed dht --listen
         127.0.0.1:0 --offline --json`). For each salt ("" and "site"): a libtorrent session P
         that knows only W puts a mutable item (dht_put_mutable_item) signed by a key made with
         `webseed key new` (libtorrent takes the 64-byte expanded key: SHA-512 of the seed,
         clamped); its dht_put_alert must report W took it. P is closed, so W is the only node
         holding the item; a second session R that knows only W gets it
         (dht_get_mutable_item): libtorrent checks the signature itself, and the alert must
         carry seq 1 and the value. Then P puts an update (libtorrent goes to seq 2 by itself),
         and a fresh R must read seq 2 and the new value.
  read   webseed reads what libtorrent put. A libtorrent node L (a session on 127.0.0.44 that
         knows nobody); for each salt, a session P that knows only L puts a mutable item there;
         then `webseed dht --dht-bootstrap L --get-item KEY[:SALT]` must print dht_item with
         found, seq 1 and the value (webseed checked the signature), and again seq 2 after
         P's update.
  publish  libtorrent reads what webseed put. `webseed dht --dht-bootstrap L --put-item
         FILE --item-value V [--item-salt S] [--item-seq N]` must print dht_item_put with
         sent_to >= 1; a session R that knows only L gets the item (libtorrent checks the
         signature) with that seq and value; then seq 2 with a new value.
  wire   webseed's put/get handlers against an independent signer (python3-cryptography),
         datagram by datagram from a UDP socket: a valid put is answered, a get returns the
         item whose signature verifies in Python, and each refusal has its BEP 44 code: bad
         token 203, value over 1000 bytes 205, bad signature 206, salt over 64 bytes 207, cas
         mismatch 301, lower seq 302, equal seq with another value 302; after the refusals
         the item is unchanged.

Usage:
  /usr/bin/python3 Tools/interop/dht_items_libtorrent.py --webseed .build/debug/webseed \\
      --work /tmp/webseed-items [--only store,wire,read,publish]

Loopback only; every wait is bounded; the webseed process is stopped and every libtorrent
session closed at the end. One `ok ...` / `FAIL ...` line per check, and a last line
`N passed, M failed`; exit status 1 if any check failed.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("dht_items_libtorrent: cannot import libtorrent; run with /usr/bin/python3 "
                     "after Tools/setup (python3-libtorrent)\n")
    sys.exit(2)

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives import serialization

from webseedtest.bencode import bencode, bdecode
from webseedtest.ltpeer import loopback_dht_settings
from webseedtest.ltsession import new_session, OFFLINE, wait_alerts
from webseedtest.procs import Proc
from webseedtest.results import Results

R = Results()
ALL_CASES = ["store", "wire", "read", "publish"]
START = 20
WAIT = 30


# ---------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------

def webseed_key(ws, path):
    """A key made by `webseed key new`: (seed, public key) as bytes."""
    p = subprocess.run([ws, "key", "new", path, "--json"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("webseed key new failed: " + p.stderr.strip())
    public = bytes.fromhex(json.loads(p.stdout)["public_key"])
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    derived = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    R.check(derived == public, "the key file's seed gives the public key webseed printed", more=[public.hex(), derived.hex()])
    return seed, public


def expanded(seed):
    """libtorrent's 64-byte private key: SHA-512 of the seed, clamped (ref10 layout)."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


def signed_buffer(salt, seq, v):
    out = b""
    if salt:
        out += b"4:salt%d:" % len(salt) + salt
    return out + b"3:seqi%de1:v" % seq + bencode(v)


# ---------------------------------------------------------------------------------------
# libtorrent sessions
# ---------------------------------------------------------------------------------------

def lt_session(host, node):
    settings = dict(OFFLINE)
    settings.update(loopback_dht_settings())
    have = lt.default_settings()
    for k in ("dht_prefer_verified_node_ids",):
        if k in have:
            settings[k] = False
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


def pump_until(ses, pred, timeout, log):
    """Pops alerts until pred(alert) is true (returns that alert) or timeout (None)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        wait_alerts(ses, 100)
        for a in ses.pop_alerts():
            try:
                log.write("%.3f %s: %s\n" % (time.time(), type(a).__name__, a.message()))
            except Exception:
                pass
            if pred(a):
                return a
    return None


def lt_put(host, node, priv, pub, data, salt, log, want_seq):
    """One session that knows only `node` puts; returns (num_success, seq) of its put alert
    (retried while the session's DHT is still empty)."""
    ses = lt_session(host, node)
    try:
        deadline = time.time() + WAIT
        last = (0, None)
        while time.time() < deadline:
            ses.dht_put_mutable_item(priv, pub, data, salt)
            a = pump_until(ses, lambda a: isinstance(a, lt.dht_put_alert), 10, log)
            if a is not None:
                last = (a.num_success, a.seq)
                if a.num_success >= 1 and a.seq == want_seq:
                    return last
        return last
    finally:
        del ses


def lt_get(host, node, pub, salt, want_seq, log):
    """A session that knows only `node` gets the item; returns the last dht_mutable_item_alert
    (seq, message) seen, waiting for one with want_seq."""
    ses = lt_session(host, node)
    try:
        deadline = time.time() + WAIT
        last = None
        while time.time() < deadline:
            ses.dht_get_mutable_item(pub, salt)
            a = pump_until(ses, lambda a: isinstance(a, lt.dht_mutable_item_alert), 10, log)
            if a is not None:
                last = (a.seq, a.message(), a.authoritative)
                if a.seq == want_seq:
                    return last
        return last
    finally:
        del ses


def case_store(ws, work, node, logdir):
    log = open(os.path.join(logdir, "store.alerts"), "w", buffering=1)
    seed, pub = webseed_key(ws, os.path.join(work, "store.key"))
    priv = expanded(seed)
    for salt in [b"", b"site"]:
        tag = "salt %r" % salt.decode()
        for seq, data in [(1, b"first version"), (2, b"second version")]:
            ok, got_seq = lt_put("127.0.0.41", node, priv, pub, data, salt, log, seq)
            R.check(ok >= 1 and got_seq == seq, "store %s: libtorrent's put of seq %d reached webseed's node" % (tag, seq),
                    more=["num_success %s, seq %s" % (ok, got_seq)])
            got = lt_get("127.0.0.42", node, pub, salt, seq, log)
            text = data.decode()
            R.check(got is not None and got[0] == seq and text in got[1],
                    "store %s: libtorrent reads seq %d back from webseed's node alone (signature checked by libtorrent)" % (tag, seq),
                    more=[repr(got)])


# ---------------------------------------------------------------------------------------
# read and publish: a libtorrent node in the middle
# ---------------------------------------------------------------------------------------

def lt_node(host):
    """A libtorrent session that is a DHT node and knows nobody; (session, (host, port))."""
    ses = lt_session(host, None)
    deadline = time.time() + START
    while time.time() < deadline and not ses.listen_port():
        time.sleep(0.05)
    return ses, (host, ses.listen_port())


def webseed_dht(ws, work, logdir, name, node, extra):
    state = os.path.join(work, "state-" + name)
    shutil.rmtree(state, ignore_errors=True)
    return Proc(name, [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", state,
                       "--dht-bootstrap", "%s:%d" % node] + extra, logdir)


def case_read(ws, work, logdir):
    log = open(os.path.join(logdir, "read.alerts"), "w", buffering=1)
    L, node = lt_node("127.0.0.44")
    try:
        seed, pub = webseed_key(ws, os.path.join(work, "read.key"))
        priv = expanded(seed)
        for salt in [b"", b"site"]:
            tag = "salt %r" % salt.decode()
            for seq, data in [(1, b"put by libtorrent"), (2, b"updated by libtorrent")]:
                ok, got_seq = lt_put("127.0.0.45", node, priv, pub, data, salt, log, seq)
                R.check(ok >= 1 and got_seq == seq, "read %s: libtorrent put seq %d on libtorrent's node" % (tag, seq),
                        more=["num_success %s, seq %s" % (ok, got_seq)])
                spec = pub.hex() + (":" + salt.decode() if salt else "")
                p = webseed_dht(ws, work, logdir, "read-%s-%d" % (salt.decode() or "nosalt", seq), node, ["--get-item", spec])
                ev = p.wait_for("dht_item", 40)
                p.stop(timeout=5)
                R.check(ev is not None and ev.get("found") is True and ev.get("seq") == seq
                        and ev.get("value") == bencode(data).hex(),
                        "read %s: webseed reads seq %d from libtorrent's node, signature checked" % (tag, seq),
                        more=[repr(ev)] + (p.log_tail(5) if ev is None else []))
    finally:
        del L


def case_publish(ws, work, logdir):
    log = open(os.path.join(logdir, "publish.alerts"), "w", buffering=1)
    L, node = lt_node("127.0.0.46")
    try:
        key = os.path.join(work, "publish.key")
        _, pub = webseed_key(ws, key)
        for salt in [b"", b"site"]:
            tag = "salt %r" % salt.decode()
            for seq, data in [(1, "put by webseed"), (2, "updated by webseed")]:
                extra = ["--put-item", key, "--item-value", data, "--item-seq", str(seq)]
                if salt:
                    extra += ["--item-salt", salt.decode()]
                p = webseed_dht(ws, work, logdir, "publish-%s-%d" % (salt.decode() or "nosalt", seq), node, extra)
                ev = p.wait_for("dht_item_put", 40)
                p.stop(timeout=5)
                R.check(ev is not None and ev.get("sent_to", 0) >= 1 and ev.get("seq") == seq,
                        "publish %s: webseed put seq %d on libtorrent's node" % (tag, seq),
                        more=[repr(ev)] + (p.log_tail(5) if ev is None else []))
                got = lt_get("127.0.0.47", node, pub, salt, seq, log)
                R.check(got is not None and got[0] == seq and data in got[1],
                        "publish %s: libtorrent reads webseed's seq %d (signature checked by libtorrent)" % (tag, seq),
                        more=[repr(got)])
    finally:
        del L


# ---------------------------------------------------------------------------------------
# wire: datagram by datagram
# ---------------------------------------------------------------------------------------

class Wire:
    def __init__(self, node):
        self.node = node
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.43", 0))
        self.sock.settimeout(3)
        self.id = hashlib.sha1(b"wire asker").digest()
        self.t = 0

    def ask(self, q, a):
        self.t += 1
        t = b"%02d" % (self.t % 100)
        a = dict(a, id=self.id)
        self.sock.sendto(bencode({b"t": t, b"y": b"q", b"q": q, b"a": a}), self.node)
        deadline = time.time() + 3
        while time.time() < deadline:
            try:
                data, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                return None
            m, _ = bdecode(data)
            if isinstance(m, dict) and m.get(b"t") == t:
                return m
        return None

    def token(self):
        m = self.ask(b"get", {b"target": os.urandom(20)})
        return (m or {}).get(b"r", {}).get(b"token", b"")

    def put(self, key, seq, v, salt=b"", cas=None, sig=None, token=None, pub=None):
        a = {b"token": self.token() if token is None else token, b"v": v, b"seq": seq,
             b"k": pub or key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
             b"sig": sig or key.sign(signed_buffer(salt, seq, v))}
        if salt:
            a[b"salt"] = salt
        if cas is not None:
            a[b"cas"] = cas
        m = self.ask(b"put", a)
        if m is None:
            return "no answer"
        if m.get(b"y") == b"r":
            return None
        return (m.get(b"e") or [None])[0]


def case_wire(node):
    w = Wire(node)
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    salt = b"wire"
    target = hashlib.sha1(pub + salt).digest()
    R.check(w.put(key, 5, b"five", salt) is None, "wire: a valid put (seq 5, salt) is answered")
    m = w.ask(b"get", {b"target": target}) or {}
    r = m.get(b"r", {})
    try:
        Ed25519PublicKey.from_public_bytes(r.get(b"k", b"")).verify(r.get(b"sig", b""), signed_buffer(salt, r.get(b"seq", -1), r.get(b"v")))
        verified = True
    except Exception:
        verified = False
    R.check(r.get(b"v") == b"five" and r.get(b"seq") == 5 and verified and len(r.get(b"token", b"")) > 0,
            "wire: get returns the item and its signature verifies in Python", more=[repr(r)[:300]])
    m = w.ask(b"get", {b"target": target, b"seq": 5}) or {}
    r = m.get(b"r", {})
    R.check(r.get(b"seq") == 5 and b"v" not in r, "wire: get with seq 5 gets the seq alone", more=[repr(r)[:300]])
    cases = [
        ("a token never issued", dict(token=b"12345678"), 203),
        ("a random 8-byte token", dict(token=os.urandom(8)), 203),
        ("a value of 1001 bytes bencoded", dict(v=b"a" * 997), 205),
        ("a signature over another value", dict(v=b"six", sig=key.sign(signed_buffer(salt, 6, b"other"))), 206),
        ("a salt of 65 bytes", dict(salt=b"s" * 65), 207),
        ("cas 4 against stored seq 5", dict(seq=6, v=b"six", cas=4), 301),
        ("seq 4 below the stored 5", dict(seq=4, v=b"four"), 302),
        ("seq 5 again with another value", dict(seq=5, v=b"other five"), 302),
    ]
    for name, change, code in cases:
        args = dict(seq=6, v=b"six", salt=salt)
        args.update(change)
        got = w.put(key, **args)
        R.check(got == code, "wire: %s is refused with %d" % (name, code), more=["got %r" % (got,)])
    m = w.ask(b"get", {b"target": target}) or {}
    R.check(m.get(b"r", {}).get(b"v") == b"five", "wire: after the refusals the item is still seq 5", more=[repr(m)[:300]])
    R.check(w.put(key, 6, b"six", salt, cas=5) is None, "wire: seq 6 with cas 5 replaces it")
    m = w.ask(b"get", {b"target": target}) or {}
    R.check(m.get(b"r", {}).get(b"v") == b"six", "wire: get returns seq 6", more=[repr(m)[:300]])
    immutable = b"Hello World!"
    m = w.ask(b"put", {b"token": w.token(), b"v": immutable})
    R.check(m is not None and m.get(b"y") == b"r", "wire: an immutable put is answered")
    m = w.ask(b"get", {b"target": bytes.fromhex("e5f96f6f38320f0f33959cb4d3d656452117aadb")}) or {}
    R.check(m.get(b"r", {}).get(b"v") == immutable, "wire: BEP 44's immutable vector is served under its target")


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--work", default="/tmp/webseed-items")
    ap.add_argument("--only", default=",".join(ALL_CASES))
    args = ap.parse_args()
    ws = os.path.abspath(args.webseed)
    cases = [c for c in args.only.split(",") if c]
    shutil.rmtree(args.work, ignore_errors=True)
    logdir = os.path.join(args.work, "logs")
    state = os.path.join(args.work, "state")
    os.makedirs(logdir)
    os.makedirs(state)
    p = Proc("webseed-dht", [ws, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", state], logdir)
    try:
        ev = p.wait_for("dht", START)
        if ev is None or not isinstance(ev.get("port"), int):
            R.fail("webseed dht is up", "no dht event within %ds" % START, more=p.log_tail(10))
        else:
            node = ("127.0.0.1", ev["port"])
            R.ok("webseed dht is up", "on %s:%d" % node)
            if "wire" in cases:
                case_wire(node)
            if "store" in cases:
                case_store(ws, args.work, node, logdir)
        if "read" in cases:
            case_read(ws, args.work, logdir)
        if "publish" in cases:
            case_publish(ws, args.work, logdir)
        rc, _ = p.stop(timeout=10)
        R.check(rc == 0, "webseed dht exits 0 on SIGTERM", more=["exit %r" % (rc,)])
    finally:
        Proc.kill_all()
    print(R.summary())
    sys.exit(R.exit_status())


if __name__ == "__main__":
    main()
