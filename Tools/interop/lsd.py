#!/usr/bin/python3
"""Local service discovery (BEP 14) between webseed and libtorrent 2.0.8 on one LAN: two
network namespaces joined by a bridge (webseedtest/lanbridge.py), no DHT, no tracker, no
peer given: the only way to find each other is the multicast announce.

  a  webseed seed (host 1) announces its site; a libtorrent leecher with LSD on (host 2),
     given only the v1 magnet, finds it and downloads the site (files identical); webseed's
     announce is seen on the wire (the capture counts its packets to 239.192.152.143:6771)
  b  webseed get (host 1) of the v2 magnet waits; a libtorrent seeder with LSD on starts
     on host 2 and announces; webseed finds it (`lsd_peer`) and completes (files identical)
  c  webseed seed --offline, and webseed seed --no-lsd: a capture on host 1's interface for
     the whole run counts zero packets to UDP port 6771 (IPv4 or IPv6)
  d  a flood on the LAN: webseed get (host 1) waits for the site; from a second address of
     host 2 (10.79.0.3) a flooder first sends webseed's own announce back (its cookie: it
     must not take itself for a peer), then 2,000 announces of the wanted torrent on closed
     ports, 2,000 packets of junk and 200 oversized ones. webseed takes in at most 10
     announces a minute from that address and none of its own; then a libtorrent seeder on
     host 2's own address announces and webseed finds it and completes (files identical)

webseed runs without --offline here (inside the namespaces nothing can leave), with --no-dht
and --no-upnp. Needs root. Prints `ok`/`FAIL` lines and `N passed, M failed`.

Usage: /usr/bin/python3 Tools/interop/lsd.py --webseed .build/debug/webseed --work DIR
Internal roles (run inside a namespace by the harness): --role lt-leech|lt-seed|capture|flood.
"""

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from webseedtest.procs import Proc
from webseedtest.results import Results
from webseedtest.torrents import create
from webseedtest.trees import compare_tree


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---- roles run inside a namespace ----------------------------------------------------

def lt_session(listen):
    import libtorrent as lt
    from webseedtest.ltsession import OFFLINE, PLAINTEXT, TCP_ONLY, new_session
    s = dict(OFFLINE)
    s.update(TCP_ONLY)
    s.update(PLAINTEXT)
    s.update({"enable_lsd": True, "listen_interfaces": listen,
              "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
              | lt.alert.category_t.peer_notification})
    return new_session(s)


def role_lt(a):
    import libtorrent as lt
    ses = lt_session(a.listen)
    if a.role == "lt-leech":
        atp = lt.parse_magnet_uri(a.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save
    h = ses.add_torrent(atp)
    emit({"event": "added"})
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.time() + a.timeout
    said = False
    while time.time() < deadline and not stop:
        time.sleep(0.05)
        for al in ses.pop_alerts():
            if isinstance(al, lt.peer_connect_alert) or isinstance(al, lt.incoming_connection_alert):
                emit({"event": "peer", "peer": "%s:%d" % tuple(al.endpoint)})
        st = h.status()
        if st.is_seeding and not said:
            said = True
            emit({"event": "seeding"})
            if a.role == "lt-leech":
                break
    ses.remove_torrent(h)
    time.sleep(0.5)
    emit({"event": "done", "seeding": said})
    return 0


def role_capture(a):
    """Counts UDP packets to port 6771 on `iface` (in and out; with --source, only those
    from these addresses) until SIGTERM."""
    sources = {socket.inet_pton(socket.AF_INET6 if ":" in x else socket.AF_INET, x) for x in a.source}
    ETH_P_ALL = 3
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    s.settimeout(0.2)
    count = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    emit({"event": "capturing"})
    while not stop:
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        if len(frame) < 14:
            continue
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0800 and frame[23] == 17:
            ihl = (frame[14] & 15) * 4
            port = struct.unpack("!H", frame[14 + ihl + 2:14 + ihl + 4])[0]
            src = frame[26:30]
        elif ethertype == 0x86DD and frame[20] == 17:
            port = struct.unpack("!H", frame[54 + 2:54 + 4])[0]
            src = frame[22:38]
        else:
            continue
        if port == 6771 and (not sources or src in sources):
            count += 1
    emit({"event": "captured", "lsd_packets": count})
    return 0


def role_flood(a):
    """Waits for one announce on the IPv4 group (webseed's own, sent at its start), sends it
    back to the group from `--source`, then floods the group from there."""
    group = ("239.192.152.143", 6771)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind(("", 6771))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton(group[0]) + socket.inet_aton(a.source[0]))
    emit({"event": "listening"})
    rx.settimeout(a.timeout)
    try:
        own, _ = rx.recvfrom(2048)
    except socket.timeout:
        emit({"event": "no_announce"})
        return 1
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind((a.source[0], 0))
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a.source[0]))
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sent = 0
    tx.sendto(own, group)
    sent += 1
    for port in range(1, 2001):
        m = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: %d\r\nInfohash: %s\r\ncookie: flood\r\n\r\n\r\n" % (port, a.magnet)
        tx.sendto(m.encode(), group)
        tx.sendto(os.urandom(1 + port % 1400), group)
        sent += 2
    for _ in range(200):
        tx.sendto(b"BT-SEARCH * HTTP/1.1\r\n" + b"Infohash: " + b"0" * 60000 + b"\r\n\r\n", group)
        sent += 1
    emit({"event": "flooded", "packets": sent, "own": own.decode(errors="replace")})
    return 0


# ---- the harness ----------------------------------------------------------------------

def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + argv


def role_argv(role, *more):
    return ["/usr/bin/python3", os.path.abspath(__file__), "--role", role] + list(more)


def make_site(root):
    os.makedirs(os.path.join(root, "img"), exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>found on the LAN</h1>\n")
    with open(os.path.join(root, "img", "photo.bin"), "wb") as f:
        f.write(os.urandom(500_000))


def capture(lan, work, name, sources=()):
    more = []
    for x in sources:
        more += ["--source", x]
    p = Proc(name, in_ns(lan.hosts[0], role_argv("capture", "--iface", lan.iface, *more)), work)
    p.wait_for("capturing", 10)
    return p


def captured(p):
    p.stop()
    ev = p.wait_for("captured", 5)
    return ev["lsd_packets"] if ev else None


def webseed_argv(args, ns_work, *more):
    return [args.webseed] + list(more) + ["--no-dht", "--state-dir", os.path.join(ns_work, "state"), "--json"]


def case_a(args, r, lan, info):
    work = os.path.join(args.work, "a")
    os.makedirs(work)
    cap = capture(lan, work, "capture-a", sources=(lan.ipv4[0], lan.ipv6[0]))
    leech = Proc("lt-leech", in_ns(lan.hosts[1], role_argv(
        "lt-leech", "--listen", lan.ipv4[1] + ":6881", "--save", os.path.join(work, "lt"),
        "--magnet", "magnet:?xt=urn:btih:" + info["v1_infohash"], "--timeout", "90")), work)
    r.check(leech.wait_for("added", 20) is not None, "a: the libtorrent leecher runs on host 2")
    seeder = Proc("seed-a", in_ns(lan.hosts[0], webseed_argv(
        args, work, "seed", args.torrent, "--data", args.site, "--listen", lan.ipv4[0] + ":6881", "--no-upnp", "--no-gateway")), work)
    r.check(seeder.wait_for("ready", 30) is not None, "a: webseed seed is ready on host 1")
    ev = leech.wait_for("seeding", 90)
    r.check(ev is not None, "a: libtorrent found webseed through local discovery and downloaded the site")
    if ev:
        same, summary, problems = compare_tree(args.site, os.path.join(work, "lt", "site"))
        r.check(same, "a: the files libtorrent wrote equal the site", summary, more=problems[:3])
    n = captured(cap)
    r.check(n is not None and n > 0, "a: webseed's announces are on the wire (the capture works)", "%s packets from host 1" % n)
    seeder.stop()
    leech.stop()


def case_b(args, r, lan, info):
    work = os.path.join(args.work, "b")
    os.makedirs(work)
    out = os.path.join(work, "got")
    getter = Proc("get-b", in_ns(lan.hosts[0], webseed_argv(
        args, work, "get", "magnet:?xt=urn:btmh:1220%s&dn=site" % info["v2_infohash"], "-o", out,
        "--listen", lan.ipv4[0] + ":6881", "--exit-when-done", "--timeout", "60")), work)
    # The getter runs before the seeder starts: it must hear the announce libtorrent sends at start.
    r.check(getter.wait_for("listening", 20) is not None, "b: webseed get listens on host 1")
    seeder = Proc("lt-seed", in_ns(lan.hosts[1], role_argv(
        "lt-seed", "--listen", lan.ipv4[1] + ":6881", "--save", os.path.dirname(args.site), "--torrent", args.torrent,
        "--timeout", "120")), work)
    r.check(seeder.wait_for("seeding", 30) is not None, "b: the libtorrent seeder runs on host 2")
    _, found = getter.wait_event(lambda e: e.get("event") == "lsd_peer", 90)
    r.check(found is not None and found.get("peer", "").startswith(lan.ipv4[1] + ":"),
            "b: webseed heard libtorrent's local discovery announce", str(found))
    rc = getter.wait(90)
    r.check(rc == 0, "b: webseed get completed from the libtorrent seeder it found", "exit %s" % rc)
    if rc == 0:
        same, summary, problems = compare_tree(args.site, out)
        r.check(same, "b: the files webseed wrote equal the site", summary, more=problems[:3])
    seeder.stop()


def case_c(args, r, lan, info):
    for label, extra in (("--offline", ["--offline"]), ("--no-lsd", ["--no-lsd", "--no-upnp"])):
        work = os.path.join(args.work, "c" + label)
        os.makedirs(work)
        cap = capture(lan, work, "capture-c")
        seeder = Proc("seed-c", in_ns(lan.hosts[0], webseed_argv(
            args, work, "seed", args.torrent, "--data", args.site, "--listen", lan.ipv4[0] + ":6881", "--no-gateway", *extra)), work)
        ready = seeder.wait_for("ready", 30)
        # Case a shows announces leave within a moment of `ready`; wait well past that.
        seeder.wait_event(lambda e: False, 5)
        seeder.stop()
        n = captured(cap)
        r.check(ready is not None and n == 0, "c: webseed seed %s sends no local discovery packet" % label, "%s packets" % n)


def case_d(args, r, lan, info):
    work = os.path.join(args.work, "d")
    os.makedirs(work)
    flooder_ip = "10.79.0.3"
    subprocess.run(["ip", "-n", lan.hosts[1], "addr", "add", flooder_ip + "/24", "dev", lan.iface], check=True, timeout=10)
    flooder = Proc("flooder", in_ns(lan.hosts[1], role_argv(
        "flood", "--source", flooder_ip, "--magnet", info["v2_infohash"][:40], "--timeout", "30")), work)
    r.check(flooder.wait_for("listening", 10) is not None, "d: the flooder listens on host 2")
    out = os.path.join(work, "got")
    getter = Proc("get-d", in_ns(lan.hosts[0], webseed_argv(
        args, work, "get", "magnet:?xt=urn:btmh:1220%s&dn=site" % info["v2_infohash"], "-o", out,
        "--listen", lan.ipv4[0] + ":6881", "--exit-when-done", "--timeout", "60")), work)
    flooded = flooder.wait_for("flooded", 40)
    r.check(flooded is not None and "6881" in flooded.get("own", ""),
            "d: the flooder sent webseed's own announce back, then %s packets" % (flooded or {}).get("packets"))
    # The seeder starts only once the flood is out: webseed must still hear it.
    seeder = Proc("lt-seed-d", in_ns(lan.hosts[1], role_argv(
        "lt-seed", "--listen", lan.ipv4[1] + ":6881", "--save", os.path.dirname(args.site), "--torrent", args.torrent,
        "--timeout", "120")), work)
    rc = getter.wait(90)
    r.check(rc == 0, "d: webseed get completed from the libtorrent seeder despite the flood", "exit %s" % rc,
            more=getter.log_tail())
    if rc == 0:
        same, summary, problems = compare_tree(args.site, out)
        r.check(same, "d: the files webseed wrote equal the site", summary, more=problems[:3])
    heard = [e for _, e in getter.event_times(lambda e: e.get("event") == "lsd_peer")]
    from_flood = [e for e in heard if e.get("peer", "").startswith(flooder_ip + ":")]
    r.check(len(from_flood) <= 10, "d: at most 10 announces a minute were taken in from the flooding address",
            "%d of 2,001" % len(from_flood))
    r.check(not any(e.get("peer", "").endswith(":6881") for e in from_flood),
            "d: webseed's own announce, sent back to it, was not taken for a peer")
    r.check(any(e.get("peer", "").startswith(lan.ipv4[1] + ":") for e in heard), "d: the seeder's announce was heard")
    seeder.stop()
    flooder.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed")
    ap.add_argument("--work")
    ap.add_argument("--role")
    ap.add_argument("--listen")
    ap.add_argument("--save")
    ap.add_argument("--magnet")
    ap.add_argument("--torrent")
    ap.add_argument("--iface")
    ap.add_argument("--source", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    if a.role in ("lt-leech", "lt-seed"):
        return role_lt(a)
    if a.role == "capture":
        return role_capture(a)
    if a.role == "flood":
        return role_flood(a)
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces)")
    from webseedtest.lanbridge import LanBridge
    r = Results()
    a.webseed = os.path.abspath(a.webseed)
    a.work = os.path.abspath(a.work)
    a.site = os.path.join(a.work, "site")
    make_site(a.site)
    a.torrent = os.path.join(a.work, "site.torrent")
    info = create(a.webseed, a.site, a.torrent)
    lan = LanBridge().create()
    try:
        case_a(a, r, lan, info)
        case_b(a, r, lan, info)
        case_c(a, r, lan, info)
        case_d(a, r, lan, info)
    finally:
        Proc.kill_all()
        problems = lan.delete()
        r.check(not problems, "the namespaces were removed", "; ".join(problems))
    print(r.summary())
    return r.exit_status()


if __name__ == "__main__":
    sys.exit(main())
