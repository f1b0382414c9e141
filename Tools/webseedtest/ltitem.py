"""libtorrent 2.0.8 resolving a BEP 44 mutable item from a fresh session, timed inside its own
process: Tools/bench/update's reference for `webseed dht --get-item`.

usage: /usr/bin/python3 -m webseedtest.ltitem --dht-bootstrap HOST:PORT --key HEX
                                              [--salt TEXT] [--want-seq N] [--timeout S] [--stay]

A fresh session on 127.0.0.1:0 (LSD, UPnP, NAT-PMP off; no routers, dht_bootstrap_nodes="";
the loopback restrictions lifted as in ltpeer.loopback_dht_settings). Once its DHT runs
(session.is_dht_running()), the node given is added (add_dht_node): that moment is "ready",
the zero of every time printed, and {"event":"ready"} says so. The first
dht_get_mutable_item is called at once. Each get ends with an authoritative
dht_mutable_item_alert (libtorrent checked the signature); one with a seq below --want-seq
(seq 0: nothing found, as when the routing table was still empty) is followed at once by
the next get, one get at a time, until --timeout. Alerts are popped every 0.5 ms (not
wait_for_alert, see ltsession.wait_alerts), so each time read may be up to about 0.5 ms late.

Prints JSON lines:
  {"event":"ready"}
  {"event":"item_first","seq","ms","get_ms"}  the first alert with seq >= --want-seq, often
      non-authoritative (one node's answer); ms from ready, get_ms from the call of the get
      it answered.
  {"event":"item","found":true,"seq","ms","get_ms","gets"}  the first authoritative alert with
      seq >= --want-seq: the get's traversal has ended and this is the highest seq the closest
      nodes hold (what `webseed dht --get-item` reports); gets = how many were called.
  {"event":"item","found":false,"seq","ms","gets"}  --timeout passed first.
Exit 0 if found, 1 if not; with --stay the session stays up as a DHT node after a found
item, until SIGTERM (then exit 0).
"""

import argparse
import signal
import sys
import time

import libtorrent as lt

from .ltpeer import loopback_dht_settings
from .ltsession import OFFLINE, emit, new_session, split_hostport

POLL_S = 0.0005


def stay(ses):
    """Keeps the session up (a DHT node answering others) until SIGTERM."""
    stop = [False]

    def on_signal(signum, frame):
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    while not stop[0]:
        ses.pop_alerts()
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(prog="ltitem")
    ap.add_argument("--dht-bootstrap", required=True, metavar="HOST:PORT")
    ap.add_argument("--key", required=True, help="the public key, 64 hex digits")
    ap.add_argument("--salt", default="")
    ap.add_argument("--want-seq", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--stay", action="store_true", help="after a found item, stay up as a DHT node until SIGTERM")
    a = ap.parse_args()
    try:
        key = bytes.fromhex(a.key)
        assert len(key) == 32
    except (ValueError, AssertionError):
        sys.stderr.write("ltitem: --key must be 64 hex digits\n")
        return 2
    salt = a.salt.encode()

    settings = dict(OFFLINE)
    settings.update(loopback_dht_settings())
    have = lt.default_settings()
    if "dht_prefer_verified_node_ids" in have:
        settings["dht_prefer_verified_node_ids"] = False
    if "dht_block_ratelimit" in have:
        settings["dht_block_ratelimit"] = 1000
    settings["listen_interfaces"] = "127.0.0.1:0"
    settings["alert_mask"] = lt.alert.category_t.dht_notification | lt.alert.category_t.dht_operation_notification
    ses = new_session(settings)
    deadline = time.perf_counter() + a.timeout
    while not ses.is_dht_running():
        if time.perf_counter() > deadline:
            sys.stderr.write("ltitem: the session's DHT did not start within %.0f s\n" % a.timeout)
            return 1
        time.sleep(0.001)
    ses.add_dht_node(split_hostport(a.dht_bootstrap))
    t0 = time.perf_counter()
    emit({"event": "ready"})

    def ms(t):
        return round((t - t0) * 1000, 2)

    gets = 1
    t_get = time.perf_counter()
    ses.dht_get_mutable_item(key, salt)
    first = False
    best = 0
    while time.perf_counter() < deadline:
        for al in ses.pop_alerts():
            if not isinstance(al, lt.dht_mutable_item_alert):
                continue
            now = time.perf_counter()
            best = max(best, al.seq)
            if al.seq >= a.want_seq and not first:
                first = True
                emit({"event": "item_first", "seq": al.seq, "ms": ms(now), "get_ms": round((now - t_get) * 1000, 2),
                      "authoritative": al.authoritative})
            if al.authoritative:
                if al.seq >= a.want_seq:
                    emit({"event": "item", "found": True, "seq": al.seq, "ms": ms(now),
                          "get_ms": round((now - t_get) * 1000, 2), "gets": gets})
                    if a.stay:
                        stay(ses)
                    return 0
                gets += 1
                t_get = time.perf_counter()
                ses.dht_get_mutable_item(key, salt)
        time.sleep(POLL_S)
    emit({"event": "item", "found": False, "seq": best, "ms": ms(time.perf_counter()), "gets": gets})
    return 1


if __name__ == "__main__":
    sys.exit(main())
