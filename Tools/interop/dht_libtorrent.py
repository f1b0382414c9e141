#!/usr/bin/python3
"""webseed's DHT node and libtorrent's find each other's peers on a private DHT on loopback
(/work/notes/dht-contract.md; BEP 5, PROTOCOL.md §8).

Every libtorrent session here is Debian's python3-libtorrent 2.0.8 (/usr/bin/python3): TCP
only, plaintext, LSD, UPnP and NAT-PMP off, and a DHT that knows no router
(dht_bootstrap_nodes="") and only the nodes given to add_dht_node, with
dht_restrict_routing_ips, dht_restrict_search_ips and dht_ignore_dark_internet off (else
libtorrent keeps loopback nodes, and several nodes on one address, out of its routing table
and its searches); see webseedtest/ltpeer.py loopback_dht_settings. Every webseed runs with
--offline (no public routers) and joins only through the --dht-bootstrap nodes given. The
content is the sample site; every download is compared byte for byte with it.

Cases:
  ref  libtorrent only, the reference (validates the settings and gives a reference time):
       a libtorrent DHT node N (127.0.0.31), a libtorrent seeder S (127.0.0.32, its own
       hybrid torrent of the sample) that knows only N and announces on it (the harness waits
       until N reports S's announce_peer for the truncated v2 hash), and a libtorrent leecher
       (webseedtest/ltpeer.py leech --dht-node N) given only the v2 magnet (xt=urn:btmh, dn; no
       x.pe) downloads the site.
  a    a libtorrent leecher that knows ONLY the DHT node of
         webseed seed SAMPLE --listen 127.0.0.1:0 --no-gateway --offline --state-dir D --json
       (which knows nobody: a DHT of two nodes), given only the seeder's v2 magnet (btmh, dn,
       no x.pe), finds the seeder through the DHT and downloads the site. In a DHT of two
       nodes, each learns of the other's peer only when it looks again, so the leecher
       announces (get_peers + announce_peer) every 5 s (ltpeer.py --dht-announce-interval).
       Then the seeder must exit 0 on SIGTERM.
  a2   the same, but the webseed seeder joins through a libtorrent DHT node H
       (--dht-bootstrap H) and the leecher still knows only the seeder's node: the seeder's
       announce must reach H (H reports announce_peer for the truncated v2 hash with the
       seeder's port), and the leecher must find the seeder by following the nodes webseed's
       node returns.
  b    webseed get MAGNET -o DIR --offline --listen 127.0.0.1:0 --dht-bootstrap N
           --state-dir G --exit-when-done --json --timeout 60
       knowing only the libtorrent DHT node N, with S announced there as in ref, finds S and
       downloads. Checks: exit 0 within 90 s, a `complete` event, the files; and its --json
       events: `dht` on its listening port, `dht_peers` naming S.
  c    a network: 20 `webseed dht --listen 127.0.0.1XX:0 --offline --json --state-dir S`
       processes on 127.0.0.100-119, each --dht-bootstrap'ed from ONE earlier node chosen at
       random (--seed), 19 of them with --lookup HASH --timeout 60, and 3 libtorrent sessions
       (127.0.0.150-152), each add_dht_node'd to one of those nodes. Then the last node joins
       (through one random earlier node) with --announce HASH:PORT: its dht_announced must
       say at least one node took it. Every lookup node must print `dht_peers` with
       127.0.0.119:PORT and `lookup_done` with found >= 1, and every libtorrent session must
       get 127.0.0.119:PORT in a dht_get_peers reply (asked every 2 s), within 75 s. Then a
       newcomer, `webseed dht --dht-bootstrap <random node> --lookup HASH
       --exit-after-lookups --timeout 60`, must find it and exit 0. Info lines: when each
       node found it (after the announcer started), the convergence time, routing-table
       sizes, exit statuses on SIGTERM.
       The lookup nodes stay in the DHT after finding the peer: with --exit-after-lookups on
       all of them (--churn), each leaves as soon as it found it, and a node whose routing
       table holds only departed nodes, and that no live node knows, can never find it (seen
       in about one run in six: a node far from the hash with 10 departed nodes in its
       table; a libtorrent session whose only node had left); that measures the order of
       departures more than webseed. The newcomer case runs only without --churn.

Usage:
  /usr/bin/python3 Tools/interop/dht_libtorrent.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-dht [--only ref,a,a2,b,c] [--seed N]
  --standin   libtorrent stand-ins (webseedtest/ltpeer.py seed --dht, leech --dht-node, dht) in place
              of every webseed process: validates the harness itself (checks on webseed-only
              JSON events are then skipped)

Loopback only; every wait is bounded (no sleeping as synchronisation); every child process
is killed and every libtorrent session closed at the end. One `ok ...` / `FAIL ...` line per
check, `info ...` lines with timings, and a last line `N passed, M failed`; exit status 1 if
any check failed.
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import statistics
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("dht_libtorrent: cannot import libtorrent; run with /usr/bin/python3 "
                     "after Tools/setup (python3-libtorrent)\n")
    sys.exit(2)

from webseedtest.cases import add_only, chosen_cases
from webseedtest.launchers import lt_leech_argv
from webseedtest.ltpeer import loopback_dht_settings, make_hybrid
from webseedtest.ltsession import new_session, OFFLINE, TCP_ONLY, wait_alerts
from webseedtest.procs import EventList, free_port, poll, Proc, program
from webseedtest.results import Results
from webseedtest.trees import compare_tree, fresh_dirs

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
ALL_CASES = ["ref", "a", "a2", "b", "c"]
DL_TIMEOUT = 60        # downloaders' own --timeout
WALL = 90              # the harness's bound on one download
START = 20             # seconds for a process or session to be up
LOOKUP_TIMEOUT = 60    # webseed dht --timeout in case c
cat = lt.alert.category_t


def addr(host, port):
    return "%s:%d" % (host, port)


def magnet_v2(v2, name):
    """A v2 magnet with nothing but the btmh and the name: no x.pe, no tracker."""
    return "magnet:?xt=urn:btmh:1220%s&dn=%s" % (v2, urllib.parse.quote(name))


def is_hex40(s):
    return isinstance(s, str) and re.fullmatch(r"[0-9a-f]{40}", s) is not None


def fmt_t(t):
    return "-" if t is None else "%.2fs" % t


# ---------------------------------------------------------------------------------------
# In-process libtorrent sessions
# ---------------------------------------------------------------------------------------

class LtNode(EventList):
    """A libtorrent 2.0.8 session on HOST:0 with a private DHT (webseedtest/ltpeer.py settings), its
    alerts popped by a thread: the interesting ones become events (dicts, with their arrival
    time) that wait_event waits for, as Proc does for a child's JSON lines; every alert goes
    to LOGDIR/NAME.alerts."""

    ALL = []

    def __init__(self, name, host, logdir, nodes=()):
        settings = dict(OFFLINE)
        settings.update(TCP_ONLY)
        settings.update(loopback_dht_settings())
        settings.update({
            "listen_interfaces": "%s:0" % host,
            "in_enc_policy": int(lt.enc_policy.pe_disabled),
            "out_enc_policy": int(lt.enc_policy.pe_disabled),
            "allow_multiple_connections_per_ip": True,
            "alert_mask": cat.error_notification | cat.status_notification | cat.peer_notification
                          | cat.connect_notification | cat.storage_notification
                          | cat.dht_notification | cat.dht_operation_notification
                          | cat.stats_notification,
        })
        self.name = name
        self.host = host
        self.ses = new_session(settings)
        super().__init__()
        self.nodes = 0           # DHT routing table size (dht.dht_nodes)
        self.port = None
        self.log = open(os.path.join(logdir, name + ".alerts"), "w", buffering=1)
        self._stop = False
        self._keep = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        LtNode.ALL.append(self)
        for n in nodes:
            self.ses.add_dht_node(n)

    def _pump(self):
        asked = 0.0
        while not self._stop:
            wait_alerts(self.ses, 50)     # not wait_for_alert: see webseedtest/ltsession.py
            if time.time() - asked >= 0.5:
                asked = time.time()
                self.ses.post_session_stats()
            for al in self.ses.pop_alerts():
                if isinstance(al, lt.session_stats_alert):
                    self.nodes = al.values.get("dht.dht_nodes", self.nodes)
                    continue
                if isinstance(al, (lt.stats_alert, lt.session_stats_header_alert)):
                    continue
                now = time.time()
                try:
                    self.log.write("%.3f %s: %s\n" % (now - self.t0, type(al).__name__, al.message()))
                except ValueError:
                    pass
                ev = None
                if isinstance(al, lt.listen_succeeded_alert) and al.socket_type == lt.socket_type_t.tcp:
                    ev = {"event": "listening", "port": al.port}
                    self.port = al.port
                elif isinstance(al, lt.listen_failed_alert):
                    ev = {"event": "listen_failed", "message": al.message()}
                elif isinstance(al, lt.dht_announce_alert):
                    ev = {"event": "dht_announce", "hash": al.info_hash.to_bytes().hex(),
                          "peer": addr(str(al.ip), al.port)}
                elif isinstance(al, lt.dht_get_peers_reply_alert):
                    ev = {"event": "dht_peers", "hash": al.info_hash.to_bytes().hex(),
                          "peers": [addr(p[0], p[1]) for p in al.peers()]}
                elif isinstance(al, lt.incoming_connection_alert):
                    ev = {"event": "peer", "peer": addr(*al.endpoint), "direction": "in"}
                elif isinstance(al, lt.peer_connect_alert):
                    ev = {"event": "peer", "peer": addr(*al.endpoint), "direction": "out"}
                if ev is not None:
                    with self.cond:
                        self.events.append((now, ev))
                        self.cond.notify_all()

    def first_time(self, pred):
        """Arrival time (absolute) of the first event matching pred, or None."""
        with self.cond:
            for t, e in self.events:
                if pred(e):
                    return t
        return None

    def wait_port(self, timeout=START):
        _, ev = self.wait_event(lambda e: e["event"] in ("listening", "listen_failed"), timeout)
        if ev is None or ev["event"] != "listening":
            return None
        return ev["port"]

    def seed(self, torrent, save_path):
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
        # Python keeps the last reference: the session's threads never drop a Python object
        # without the GIL (libtorrent issue #580).
        self._keep.append(atp.ti)
        atp.save_path = save_path
        atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        return self.ses.add_torrent(atp)

    def close(self):
        if self._stop:
            return
        self._stop = True
        self._thread.join(5)
        try:
            self.ses.pause()
        except Exception:
            pass
        self.ses = None
        self._keep = []
        self.log.close()

    @classmethod
    def close_all(cls):
        for n in cls.ALL:
            n.close()


def announced_on(node, hashes, peer, timeout, nudge=None):
    """Waits until `node` reports an announce_peer for one of `hashes` naming `peer`
    (HOST:PORT); calls nudge() (a forced re-announce) every 3 s meanwhile. Returns
    (seconds waited, [hashes announced]) or (None, [])."""
    t0 = time.time()
    last = 0.0

    def seen():
        nonlocal last
        if nudge is not None and time.time() - last >= 3:
            last = time.time()
            nudge()
        with node.cond:
            return sorted({e["hash"] for _, e in node.events
                           if e["event"] == "dht_announce" and e["hash"] in hashes and e["peer"] == peer})
    got = poll(seen, timeout, 0.1)
    return (time.time() - t0, got) if got else (None, [])


# ---------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------

def finish(p, wall):
    """Waits up to `wall` seconds for a child that exits by itself; SIGTERM (then SIGKILL)
    if it overran. Returns (exit status or None, seconds)."""
    rc = p.wait(wall)
    took = time.time() - p.t0
    if rc is None:
        p.stop(signal.SIGTERM, timeout=5)
    else:
        p.stop(timeout=1)
    return rc, took


def events(p, name=None):
    """[(seconds since the child started, event)] of a Proc, optionally of one kind."""
    return p.event_times(lambda e: name is None or e.get("event") == name)


def first(p, name, pred=lambda e: True):
    for t, e in events(p, name):
        if pred(e):
            return t, e
    return None, None


def leech_proc(name, magnet, save, dht_nodes, logdir):
    extra = [a for n in dht_nodes for a in ("--dht-node", n)]
    return Proc(name, lt_leech_argv(magnet, save, DL_TIMEOUT, os.path.join(logdir, name + ".alerts"),
                                    extra=extra), logdir)


def check_leech(r, what, p, rc, took, src, dst):
    """The libtorrent leecher exited 0 with a `finished` summary, and the files are the
    source's."""
    t_end, summ = first(p, None, lambda e: e.get("event") in ("finished", "error", "timeout"))
    t_meta, _ = first(p, "metadata")
    peers = [e for _, e in events(p, "peer")]
    replies = events(p, "dht_reply")
    first_reply = next((t for t, e in replies if e.get("peers")), None)
    ok = rc == 0 and summ is not None and summ.get("event") == "finished"
    cmp_ok, cmp_summary, problems = compare_tree(src, dst) if ok else (False, "", [])
    timing = "after the leecher started: first DHT reply with peers %s, metadata %s, %s %s; " \
        "connections %s" % (
        fmt_t(first_reply), fmt_t(t_meta), (summ or {}).get("event", "end"), fmt_t(t_end),
        ", ".join("%s %s" % (e.get("direction"), e.get("peer")) for e in peers[:4]) or "none")
    if not ok:
        r.fail(what, "leecher exit %s after %.1fs, %s (%s)" % (
            rc if rc is not None else "none (killed)", took,
            (summ or {}).get("event", "no summary"), timing),
            more=["summary: %s" % summ] + p.log_tail(8))
        return False
    return r.check(cmp_ok, what, "%s; %s" % (cmp_summary, timing), more=problems[:10])


def seed_argv(args, host, state, bootstrap=()):
    if args.standin:
        argv = program("ltpeer") + ["seed", args.sample, "--listen", host + ":0", "--state-dir", state,
                "--json", "--offline", "--dht"]
    else:
        argv = [args.webseed, "seed", args.sample, "--listen", host + ":0", "--no-gateway",
                "--offline", "--state-dir", state, "--json"]
    for b in bootstrap:
        argv += ["--dht-bootstrap", b]
    return argv


def wait_seed(r, what, p, host, timeout):
    """The seeder's listening, site, ready and dht events (contract: the DHT node on the TCP
    port's number). Returns dict(port, dht_port, v2, v1, name) or None after a FAIL."""
    deadline = time.time() + timeout
    problems = []
    _, lis = p.wait_event(lambda e: e.get("event") == "listening", timeout)
    _, rdy = p.wait_event(lambda e: e.get("event") == "ready", max(0.1, deadline - time.time()))
    _, dht = p.wait_event(lambda e: e.get("event") == "dht", max(0.1, deadline - time.time()))
    _, site = p.wait_event(lambda e: e.get("event") == "site", 0.1)
    if lis is None:
        problems.append("no listening event")
    if rdy is None:
        problems.append("no ready event")
    if site is None or not site.get("v2_infohash"):
        problems.append("no site event with a v2_infohash")
    if dht is None:
        problems.append("no {\"event\":\"dht\"} (a DHT node) within %ds" % timeout)
    else:
        if lis is not None and dht.get("port") != lis.get("port"):
            problems.append("dht port %r is not the listening port %r" % (dht.get("port"), lis.get("port")))
        if dht.get("host") != host:
            problems.append("dht host %r, listening on %s" % (dht.get("host"), host))
        if not is_hex40(dht.get("node_id")):
            problems.append("dht node_id %r is not 40 hex" % dht.get("node_id"))
    if problems:
        r.fail(what, "; ".join(problems) + " (exit %s)" % p.p.poll(), more=p.log_tail(12))
        return None
    r.ok(what, "TCP and DHT on %s:%d, node id %s…, ready after %.2fs" % (
        host, lis["port"], dht["node_id"][:12], time.time() - p.t0))
    return {"port": lis["port"], "dht_port": dht["port"], "v2": site["v2_infohash"],
            "v1": site.get("v1_infohash"), "name": site.get("name")}


def stop_seed(r, what, p):
    if not p.alive():
        r.fail(what, "the seeder had already exited (status %s)" % p.wait(1), more=p.log_tail(12))
        p.stop(timeout=1)
        return
    rc, took = p.stop(timeout=5)
    r.check(rc == 0, what, "SIGTERM: exit %s after %.2fs" % (rc if rc is not None else "none (killed)", took),
            more=[] if rc == 0 else p.log_tail(10))


def seed_announces(p):
    """'dht_announced at 0.4s (8 nodes), 5.4s (8 nodes)' from a webseed seeder's events."""
    out = []
    for t, e in events(p, "dht_announced") + events(p, "dht_announce"):
        out.append("%.1fs%s" % (t, " (%s, %s nodes)" % ((e.get("hash") or "")[:8], e.get("nodes"))
                                 if "nodes" in e else ""))
    return ", ".join(out[:8]) or "none"


# ---------------------------------------------------------------------------------------
# ref and b: a libtorrent seeder announced on a libtorrent DHT node
# ---------------------------------------------------------------------------------------

def lt_swarm(r, args, tag, logdir):
    """A libtorrent DHT node N and a seeder S that knows only N, S's announce seen at N.
    Returns (N, S, meta) or None after a FAIL."""
    N = LtNode("lt-dht-" + tag, "127.0.0.31", logdir)
    np_ = N.wait_port()
    S = LtNode("lt-seed-" + tag, "127.0.0.32", logdir, nodes=[("127.0.0.31", np_ or 1)])
    sp = S.wait_port()
    if not np_ or not sp:
        r.fail("%s libtorrent DHT node and seeder listen" % tag, "ports %s, %s" % (np_, sp))
        return None
    h = S.seed(args.torrent, os.path.dirname(args.sample))
    seeding = poll(lambda: h.status().is_seeding, START, 0.1)
    joined = poll(lambda: S.nodes > 0, START, 0.1)
    v1, v2 = args.hashes
    hashes = [v2[:40]] + ([v1] if v1 else [])
    waited, got = announced_on(N, hashes, addr(S.host, sp), START, nudge=h.force_dht_announce) \
        if seeding and joined else (None, [])
    if not r.check(bool(got) and v2[:40] in got,
                   "%s libtorrent seeder announced on the libtorrent DHT node" % tag,
                   "seeding %s, joined %s, N saw announce_peer for %s from %s after %s" % (
                       bool(seeding), bool(joined),
                       " and ".join("v1" if x == v1 else "truncated v2" for x in got) or "nothing",
                       addr(S.host, sp), fmt_t(waited))):
        return None
    return N, S, {"v1": v1, "v2": v2, "seeder": addr(S.host, sp), "dht": addr(N.host, np_)}


def case_ref_b(r, args, tag, logdir, work):
    webseed = tag == "b" and not args.standin
    try:
        sw = lt_swarm(r, args, tag, logdir)
        if sw is None:
            return
        N, S, meta = sw
        magnet = magnet_v2(meta["v2"], args.site_name)
        if not webseed:
            save = os.path.join(work, "dl", tag)
            shutil.rmtree(save, ignore_errors=True)
            p = leech_proc("lt-leech-" + tag, magnet, save, [meta["dht"]], logdir)
            rc, took = finish(p, WALL)
            check_leech(r, "%s libtorrent leecher (knows only the libtorrent DHT node, btmh magnet) "
                        "downloads from the libtorrent seeder" % tag, p, rc, took, args.sample,
                        os.path.join(save, args.site_name))
            return
        out = os.path.join(work, "dl", tag)
        state = os.path.join(work, "state", "get-" + tag)
        for d in (out, state):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(state)
        p = Proc("webseed-get-" + tag, [args.webseed, "get", magnet, "-o", out, "--offline",
                                         "--listen", "127.0.0.1:0", "--dht-bootstrap", meta["dht"],
                                         "--state-dir", state, "--exit-when-done", "--json",
                                         "--timeout", str(DL_TIMEOUT)], logdir)
        rc, took = finish(p, WALL)
        t_dht, dht = first(p, "dht")
        t_lis, lis = first(p, "listening")
        found = [(t, e) for t, e in events(p, "dht_peers")
                 if meta["seeder"] in (e.get("peers") or [])]
        t_meta, _ = first(p, "metadata")
        t_done, done = first(p, "complete")
        timing = "dht %s, dht_peers naming the seeder %s, metadata %s, complete %s, exit after %.1fs" % (
            fmt_t(t_dht), fmt_t(found[0][0] if found else None), fmt_t(t_meta), fmt_t(t_done), took)
        what = "b webseed get (knows only a libtorrent DHT node, btmh magnet) downloads from the " \
               "libtorrent seeder"
        if rc != 0 or done is None:
            r.fail(what, "exit %s, complete event %s; %s" % (
                rc if rc is not None else "none (killed)", done is not None, timing), more=p.log_tail(15))
        else:
            ok, summary, problems = compare_tree(args.sample, out)
            r.check(ok, what, "%s; %s" % (summary, timing), more=problems[:10])
        problems = []
        if dht is None:
            problems.append("no dht event")
        else:
            if lis is not None and dht.get("port") != lis.get("port"):
                problems.append("dht port %r is not the listening port %r" % (dht.get("port"), lis.get("port")))
            if not is_hex40(dht.get("node_id")):
                problems.append("dht node_id %r" % dht.get("node_id"))
        if not found:
            got = ["%s %s" % (e.get("hash"), e.get("peers")) for _, e in events(p, "dht_peers")]
            problems.append("no dht_peers event naming %s (got %s)" % (meta["seeder"], got[:4] or "none"))
        elif found[0][1].get("hash") not in (meta["v2"][:40], meta["v1"]):
            problems.append("dht_peers hash %r is neither the truncated v2 nor the v1 hash" % found[0][1].get("hash"))
        r.check(not problems, "b webseed get's --json: dht on its listening port, dht_peers names the "
                "libtorrent seeder", "; ".join(problems) or "dht %s, dht_peers %s → %s" % (
                    addr(dht.get("host"), dht.get("port")), found[0][1].get("hash")[:12] + "…",
                    found[0][1].get("peers")), more=[] if not problems else p.log_tail(10))
    finally:
        for n in list(LtNode.ALL):
            if n.name.endswith("-" + tag):
                n.close()


# ---------------------------------------------------------------------------------------
# a and a2: a libtorrent leecher that knows only webseed seed's DHT node
# ---------------------------------------------------------------------------------------

def case_a(r, args, tag, logdir, work):
    H = None
    boot = []
    seeder = "ltpeer.py seed --dht" if args.standin else "webseed seed"
    if tag == "a2":
        H = LtNode("lt-dht-a2", "127.0.0.1", logdir)
        hp = H.wait_port()
        if not r.check(bool(hp), "a2 libtorrent DHT node listens", "port %s" % hp):
            H.close()
            return
        boot = [addr("127.0.0.1", hp)]
    state = os.path.join(work, "state", "seed-" + tag)
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(state)
    p = Proc("seed-" + tag, seed_argv(args, "127.0.0.1", state, boot), logdir)
    try:
        info = wait_seed(r, "%s %s starts with a DHT node%s" % (
            tag, seeder, " (joining through the libtorrent node)" if H else " (knowing no other node)"),
            p, "127.0.0.1", START)
        if info is None:
            return
        me = addr("127.0.0.1", info["port"])
        if H is not None:
            hashes = [info["v2"][:40]] + ([info["v1"]] if info.get("v1") else [])
            waited, got = announced_on(H, hashes, me, 30)
            r.check(info["v2"][:40] in got, "a2 %s announces its torrent on the libtorrent DHT node" % seeder,
                    "the libtorrent node saw announce_peer for %s from %s %s after the seeder was ready; "
                    "seeder's announces: %s" % (" and ".join(
                        "v1" if x == info.get("v1") else "truncated v2" for x in got) or "nothing", me,
                        fmt_t(waited), seed_announces(p)),
                    more=[] if got else p.log_tail(10))
        save = os.path.join(work, "dl", tag)
        shutil.rmtree(save, ignore_errors=True)
        L = leech_proc("lt-leech-" + tag, magnet_v2(info["v2"], info["name"] or args.site_name), save,
                       [addr("127.0.0.1", info["dht_port"])], logdir)
        rc, took = finish(L, WALL)
        check_leech(r, "%s libtorrent leecher (knows only %s's DHT node, btmh magnet) downloads the "
                    "site from it" % (tag, seeder), L, rc, took, args.sample,
                    os.path.join(save, info["name"] or args.site_name))
        Results.info("%s seeder's DHT announces" % tag, seed_announces(p))
    finally:
        stop_seed(r, "%s %s exits 0 on SIGTERM" % (tag, seeder), p)
        if H is not None:
            H.close()


# ---------------------------------------------------------------------------------------
# c: a network of webseed dht nodes and libtorrent sessions
# ---------------------------------------------------------------------------------------

def dht_argv(args, host, port, state, bootstrap, extra):
    if args.standin:
        argv = program("ltpeer") + ["dht"]
    else:
        argv = [args.webseed, "dht"]
    argv += ["--listen", addr(host, port), "--offline", "--json", "--state-dir", state]
    for b in bootstrap:
        argv += ["--dht-bootstrap", b]
    return argv + list(extra)


def found_at(p, target, expect):
    """Arrival time (absolute) of a child's first dht_peers event for `target` naming
    `expect`, or None."""
    with p.cond:
        for t, e in p.events:
            if e.get("event") == "dht_peers" and str(e.get("hash", "")).lower() == target \
                    and expect in (e.get("peers") or []):
                return t
    return None


def lookup_problems(p, target, expect, rc, need_exit):
    """What a lookup node's events and exit status lack (contract: dht_peers naming the
    announced peer, lookup_done with found >= 1; with --exit-after-lookups, exit 0)."""
    with p.cond:
        evs = [e for _, e in p.events]
    out = []
    if need_exit and rc != 0:
        out.append("exit %s" % (rc if rc is not None else "none (still running)"))
    if found_at(p, target, expect) is None:
        other = [e.get("peers") for e in evs if e.get("event") == "dht_peers"]
        out.append("no dht_peers naming %s%s" % (expect, " (got %s)" % other[:2] if other else ""))
    done = [e for e in evs if e.get("event") == "lookup_done" and str(e.get("hash", "")).lower() == target]
    if not done or not isinstance(done[-1].get("found"), int) or done[-1]["found"] < 1:
        out.append("lookup_done %s" % (done[-1] if done else "missing"))
    return out


def case_c(r, args, logdir, work):
    rng = random.Random(args.seed)
    n, m = args.nodes, args.lt_sessions
    hosts = ["127.0.0.%d" % (100 + i) for i in range(n + 1)]      # + the late joiner
    lt_hosts = ["127.0.0.%d" % (150 + j) for j in range(m)]
    target = hashlib.sha1(b"webseed dht interop %d" % args.seed).hexdigest()
    ann = n - 1
    ann_port = free_port(hosts[ann])
    expect = addr(hosts[ann], ann_port)
    kind = "ltpeer.py dht" if args.standin else "webseed dht"
    lookup_args = ["--lookup", target, "--timeout", str(LOOKUP_TIMEOUT)]
    if args.churn:
        lookup_args.append("--exit-after-lookups")
    nodes = []       # dict(i, host, port, parent, proc)
    lts = []         # dict(j, node, parent, found_at, last_ask)
    late = None
    t_net = time.time()

    def start_node(i, parent, extra, port=0, name=None):
        boot = [addr(nodes[parent]["host"], nodes[parent]["port"])] if parent is not None else []
        state = os.path.join(work, "state", "c-%02d" % i)
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(state)
        p = Proc(name or "c-node-%02d" % i, dht_argv(args, hosts[i], port, state, boot, extra), logdir)
        _, ev = p.wait_event(lambda e: e.get("event") == "dht", START)
        if ev is None or not isinstance(ev.get("port"), int):
            r.fail("c network up", "%s node %d (%s, bootstrap %s) printed no dht event within %ds "
                   "(exit %s)" % (kind, i, hosts[i], boot, START, p.p.poll()), more=p.log_tail(10))
            p.stop(timeout=2)
            return None
        return {"i": i, "host": hosts[i], "port": ev["port"], "parent": parent, "proc": p,
                "node_id": ev.get("node_id")}

    try:
        for i in range(n):
            parent = rng.randrange(i) if i > 0 else None
            if i == ann:
                # The libtorrent sessions join before the hash is announced.
                for j in range(m):
                    k = rng.randrange(n - 1)
                    node = LtNode("c-lt-%d" % j, lt_hosts[j], logdir,
                                  nodes=[(nodes[k]["host"], nodes[k]["port"])])
                    if not node.wait_port():
                        r.fail("c network up", "libtorrent session %d is not listening" % j)
                        return
                    lts.append({"j": j, "node": node, "parent": k, "found_at": None, "last_ask": 0.0})
                x = start_node(i, parent, ["--announce", "%s:%d" % (target, ann_port)],
                               port=ann_port if args.standin else 0)
            else:
                x = start_node(i, parent, lookup_args)
            if x is None:
                return
            nodes.append(x)
        t_up = time.time()
        r.ok("c network up", "%d %s nodes (node %d announces %s… as %s; the others look it up%s) and "
             "%d libtorrent sessions in %.1fs; joined through: %s; libtorrent via %s" % (
                 n, kind, ann, target[:12], expect,
                 " and leave once found" if args.churn else " and stay", m, t_up - t_net,
                 " ".join("%d<%d" % (x["i"], x["parent"]) for x in nodes[1:]),
                 " ".join("lt%d<%d" % (x["j"], x["parent"]) for x in lts)))

        # Wait until every node found it (or, with --churn, every lookup node exited).
        announcer = nodes[ann]["proc"]
        lookers = [x for x in nodes if x["i"] != ann]
        sha = lt.sha1_hash(bytes.fromhex(target))
        deadline = time.time() + LOOKUP_TIMEOUT + 15

        def all_done():
            now = time.time()
            for x in lts:
                if x["found_at"] is None:
                    x["found_at"] = x["node"].first_time(
                        lambda e: e["event"] == "dht_peers" and e["hash"] == target and expect in e["peers"])
                if x["found_at"] is None and now - x["last_ask"] >= 2:
                    x["last_ask"] = now
                    x["node"].ses.dht_get_peers(sha)
            ws_done = all((not x["proc"].alive()) if args.churn else
                          (found_at(x["proc"], target, expect) is not None or not x["proc"].alive())
                          for x in lookers)
            return ws_done and all(x["found_at"] for x in lts)
        poll(all_done, deadline - time.time(), 0.1)

        # The announce taken by other nodes (contract: after joining, again at 5 s and 30 s).
        def taken(e):
            return e.get("event") == "dht_announced" and str(e.get("hash", "")).lower() == target and (
                (isinstance(e.get("nodes"), int) and e["nodes"] >= 1) or args.standin)
        announcer.wait_event(taken, max(0.1, announcer.t0 + 40 - time.time()))
        with announcer.cond:
            anns = [(t, e) for t, e in announcer.events
                    if e.get("event") == "dht_announced" and str(e.get("hash", "")).lower() == target]
        k_nodes = [e.get("nodes") for _, e in anns]
        t_taken = next((t for t, e in anns if taken(e)), None)
        r.check(t_taken is not None,
                "c %s --announce: dht_announced for the hash, taken by at least one node" % kind,
                "dht_announced %d times at %s after the announcer started, nodes %s" % (
                    len(anns), ", ".join("%.1fs" % (t - announcer.t0) for t, _ in anns[:6]), k_nodes[:6])
                if anns else "no dht_announced event for %s" % target,
                more=[] if t_taken else announcer.log_tail(10))
        stored = []
        for x in lts:
            t = x["node"].first_time(lambda e: e["event"] == "dht_announce" and e["hash"] == target
                                     and e["peer"] == expect)
            if t is not None:
                stored.append("lt%d %.1fs" % (x["j"], t - announcer.t0))
        Results.info("c announce_peer from the announcer received by libtorrent sessions",
                     ", ".join(stored) or "none (none of them among the nodes closest to the hash)")

        # Each lookup node; times from the announcer's start.
        ref = announcer.t0
        times = []
        problems = []
        more = []
        for x in lookers:
            p = x["proc"]
            rc = p.wait(2) if args.churn else p.p.poll()
            hit = found_at(p, target, expect)
            what = lookup_problems(p, target, expect, rc, args.churn)
            if what:
                problems.append("node %d (%s, via %s): %s" % (x["i"], x["host"], x["parent"], ", ".join(what)))
                more += p.log_tail(5)
            if hit is not None:
                times.append(hit - ref)
            Results.info("c node %02d %s (joined via node %s)" % (x["i"], x["host"], x["parent"]),
                         "found %s %s after the announcer started (%s after it started)%s" % (
                             expect, fmt_t(hit - ref) if hit else "never",
                             fmt_t(hit - p.t0) if hit else "-", ", exit %s" % rc if args.churn else ""))
        r.check(not problems, "c every %s lookup node found the announced peer%s" % (
                    kind, " and exited 0" if args.churn else ""),
                "%d of %d" % (len(lookers) - len(problems), len(lookers)) +
                ("; " + "; ".join(problems[:6]) if problems else ""), more=more[:40])

        lt_problems = []
        for x in lts:
            node = x["node"]
            f = x["found_at"]
            if f is None:
                with node.cond:
                    replies = [e for _, e in node.events if e["event"] == "dht_peers" and e["hash"] == target]
                lt_problems.append("lt%d (via node %d): not found; %d replies, peers %s, routing table %d" % (
                    x["j"], x["parent"], len(replies), [e["peers"] for e in replies if e["peers"]][:2],
                    node.nodes))
            else:
                times.append(f - ref)
            Results.info("c libtorrent %d %s (joined via node %d)" % (x["j"], node.host, x["parent"]),
                         "found %s %s after the announcer started, routing table %d nodes" % (
                             expect, fmt_t(f - ref) if f else "never", node.nodes))
        r.check(not lt_problems, "c every libtorrent session found the announced peer (dht_get_peers)",
                "; ".join(lt_problems) or "%d of %d" % (len(lts), len(lts)))
        if times:
            Results.info("c convergence", "%d of %d nodes found it; the last %.2fs after the announcer "
                         "started (its first announce taken by a node: %s), median %.2fs (webseed "
                         "lookups repeat every 5 s, the libtorrent sessions ask every 2 s); the "
                         "network took %.1fs to start" % (
                             len(times), len(lookers) + len(lts), max(times),
                             fmt_t(t_taken - ref) if t_taken else "never", statistics.median(times),
                             t_up - t_net))
        # Routing-table sizes: each node's dht_nodes events come every 5 s; wait (bounded) for
        # one after the one at its start.
        poll(lambda: all(len(events(x["proc"], "dht_nodes")) >= 2 for x in nodes if x["proc"].alive()),
             max(0.1, max(x["proc"].t0 for x in nodes) + 7 - time.time()), 0.2)
        sizes = {}
        for x in nodes:
            c = [e.get("count") for _, e in events(x["proc"], "dht_nodes") if isinstance(e.get("count"), int)]
            if c:
                sizes[x["i"]] = max(c)
        if sizes:
            v = list(sizes.values())
            Results.info("c routing tables", "largest dht_nodes count of %d nodes: min %d, median %d, "
                         "max %d; announcer %s; libtorrent sessions %s" % (
                             len(v), min(v), statistics.median(v), max(v), sizes.get(ann),
                             [x["node"].nodes for x in lts]))

        # The announcer leaves; a newcomer with --exit-after-lookups must still find the peer,
        # now only in the other nodes' stores.
        rc, took = announcer.stop(timeout=5)
        Results.info("c announcer", "SIGTERM: exit %s after %.2fs" % (rc, took))
        if not args.churn:
            parent = rng.randrange(n - 1)
            late = start_node(n, parent, lookup_args + ["--exit-after-lookups"], name="c-late")
            if late is not None:
                p = late["proc"]
                rc = p.wait(LOOKUP_TIMEOUT + 15)
                hit = found_at(p, target, expect)
                what = lookup_problems(p, target, expect, rc, True)
                r.check(not what, "c after the announcer left, a newcomer (%s --lookup "
                        "--exit-after-lookups, joining through node %d) finds the stored peer and "
                        "exits 0" % (kind, parent),
                        "; ".join(what) or "found %s %s after it started, exit 0 after %.2fs" % (
                            expect, fmt_t(hit - p.t0), time.time() - p.t0),
                        more=p.log_tail(8) if what else [])
        stops = {}
        for x in nodes:
            if x["proc"].alive():
                rc, _ = x["proc"].stop(timeout=5)
                stops[rc] = stops.get(rc, 0) + 1
        Results.info("c SIGTERM", "exit statuses of the %d nodes still running: %s" % (
            sum(stops.values()), ", ".join("%s × %d" % (k, v) for k, v in sorted(stops.items(), key=str))))
    finally:
        for x in nodes + ([late] if late else []):
            x["proc"].stop(timeout=3)
        for x in lts:
            x["node"].close()


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", default=os.path.join(ROOT, ".build", "debug", "webseed"))
    ap.add_argument("--sample", default=os.path.join(ROOT, "Samples", "site"))
    ap.add_argument("--work", default="/tmp/webseed-dht")
    add_only(ap, ALL_CASES)
    ap.add_argument("--standin", action="store_true", help="libtorrent stand-ins instead of webseed")
    ap.add_argument("--seed", type=int, default=1, help="random seed of case c's topology")
    ap.add_argument("--nodes", type=int, default=20, help="case c: dht nodes (at most 40)")
    ap.add_argument("--lt-sessions", type=int, default=3, help="case c: libtorrent sessions (at most 10)")
    ap.add_argument("--churn", action="store_true",
                    help="case c: the lookup nodes run with --exit-after-lookups (each leaves the DHT "
                         "once it found the peer; see the module doc)")
    args = ap.parse_args()
    os.umask(0o022)
    cases = chosen_cases(ap, args, ALL_CASES)
    if not 2 <= args.nodes <= 40 or not 0 <= args.lt_sessions <= 10:
        ap.error("--nodes 2..40, --lt-sessions 0..10")
    args.webseed = os.path.abspath(args.webseed)
    args.sample = os.path.abspath(args.sample)
    args.work = os.path.abspath(args.work)
    args.site_name = os.path.basename(args.sample)
    if not args.standin and not os.access(args.webseed, os.X_OK):
        ap.error("no webseed binary at %s (give --webseed BIN)" % args.webseed)
    fresh_dirs(args.work, ("logs", "state", "dl", "torrents"), make=("logs", "torrents"))
    logdir = os.path.join(args.work, "logs")

    print("# %s; libtorrent %s; cases %s; work %s" % (
        "libtorrent stand-ins (webseedtest/ltpeer.py)" if args.standin else "webseed " + args.webseed,
        lt.__version__, ",".join(cases), args.work), flush=True)
    r = Results()
    t0 = time.time()
    try:
        if any(c in cases for c in ("ref", "b")):
            # The libtorrent seeder's torrent: libtorrent's own hybrid of the sample.
            args.torrent = os.path.join(args.work, "torrents", args.site_name + ".torrent")
            make_hybrid(args.sample, args.torrent)
            ih = lt.torrent_info(args.torrent).info_hashes()
            args.hashes = (ih.v1.to_bytes().hex() if ih.has_v1() else None, ih.v2.to_bytes().hex())
        for c in cases:
            if c in ("ref", "b"):
                case_ref_b(r, args, c, logdir, args.work)
            elif c in ("a", "a2"):
                case_a(r, args, c, logdir, args.work)
            elif c == "c":
                case_c(r, args, logdir, args.work)
    finally:
        Proc.kill_all()
        LtNode.close_all()
    Results.info("total time", "%.1fs; logs in %s" % (time.time() - t0, logdir))
    print(r.summary())
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
