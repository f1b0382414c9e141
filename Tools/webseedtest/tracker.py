"""A minimal HTTP tracker (BEP 3 / BEP 23 compact) that answers every announce with a fixed
peer list. The harness gives it to clients that have no way to be told a peer directly
(aria2, Transmission). It never contacts anything; it only answers. As a process it runs as
`python3 -m webseedtest.tracker` (procs.program("tracker")).

  tracker --listen HOST --peer [INFOHASH=]HOST:PORT...   (a process, e.g. in a namespace)
      prints {"event":"listening","host":...,"port":...} then serves until SIGTERM.
  Tracker(host, peers).start() / .url / .stop()        (in-process, in a thread)

Also what a client of any tracker needs: `escaped` (a hash or peer id in a query) and
`compact_peers` (the peers of a compact answer).
"""

import argparse
import json
import signal
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .bencode import bdecode, bencode as _bencode


def escaped(b):
    """Bytes as a query value: every byte %-escaped."""
    return "".join("%%%02X" % x for x in b)


def compact_peers(body):
    """(dict, ["ip:port", …]) of a bencoded answer; (dict, None) for a failure."""
    d = bdecode(body)[0]
    if b"failure reason" in d:
        return d, None
    p = d.get(b"peers", b"")
    out = ["%d.%d.%d.%d:%d" % (p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4] << 8 | p[i + 5]) for i in range(0, len(p) - 5, 6)]
    return d, out


def _compact(peers):
    out = b""
    for host, port in peers:
        out += socket.inet_aton(host) + struct.pack(">H", port)
    return out


class Tracker:
    def __init__(self, host, peers, log=None, peers_by_hash=None):
        self.host = host
        self.peers = list(peers)       # [(ip, port)] for any info hash not in peers_by_hash
        self.peers_by_hash = dict(peers_by_hash or {})   # {info hash hex (40): [(ip, port)]}
        self.announces = []            # (client address, query dict) of every announce
        self.log = log
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                u = urlsplit(self.path)
                q = parse_qs(u.query, keep_blank_values=True, encoding="latin-1")
                if u.path.endswith("/announce"):
                    tracker.announces.append((self.client_address, q))
                    ih = q.get("info_hash", [""])[0].encode("latin-1").hex()
                    peers = tracker.peers_by_hash.get(ih, tracker.peers)
                    body = _bencode({"interval": 1800, "min interval": 1800, "complete": 1,
                                     "incomplete": 0, "peers": _compact(peers)})
                elif u.path.endswith("/scrape"):
                    body = _bencode({"files": {}})
                else:
                    body = _bencode({"failure reason": "unknown path"})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                if tracker.log:
                    tracker.log.write("tracker: %s %s\n" % (self.client_address[0], fmt % args))
                    tracker.log.flush()

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d/announce" % (host, self.port)
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="HOST (a port given is ignored: any free one)")
    ap.add_argument("--peer", action="append", default=[],
                    help="HOST:PORT (for every torrent) or INFOHASH=HOST:PORT (for that torrent)")
    a = ap.parse_args()
    host = a.listen.rpartition(":")[0] if ":" in a.listen else a.listen
    peers, by_hash = [], {}
    for p in a.peer:
        ih, eq, p = p.rpartition("=")
        h, _, port = p.rpartition(":")
        (by_hash.setdefault(ih.lower(), []) if eq else peers).append((h, int(port)))
    t = Tracker(host, peers, log=sys.stderr, peers_by_hash=by_hash)
    signal.signal(signal.SIGTERM, lambda s, f: threading.Thread(target=t.server.shutdown).start())
    sys.stdout.write(json.dumps({"event": "listening", "host": host, "port": t.port}) + "\n")
    sys.stdout.flush()
    t.server.serve_forever()
    t.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
