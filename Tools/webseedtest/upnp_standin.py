"""A stand-in for webseed's port mapping (/work/notes/upnp-contract.md), to validate the
upnp_router.py harness itself before (or besides) webseed: the same command lines and the
same JSON events / text lines, with the mapping done by the miniupnpc command-line tools
(`upnpc`, `natpmpc`) and the seeding by a libtorrent seeder (webseedtest/ltpeer.py seed, plain TCP,
no DHT). Runs as `python3 -m webseedtest.upnp_standin` (procs.program), only inside the
test's network namespaces.

  upnp_standin seed SOURCE --listen HOST:PORT [--no-gateway] [--json] [--state-dir D]
                  [--no-upnp] [--upnp-lease S] [--dht-bootstrap HOST:PORT]...
  upnp_standin gateway --listen HOST:PORT --peer-listen HOST:PORT [--json] [--state-dir D]
                  [--no-upnp] [--upnp-lease S] [--dht-bootstrap HOST:PORT]...
      (gateway: only the status page and /api/status; no peer port is actually served)

Events: listening, port_mapping, port_mapping_renewed, port_mapping_failed,
port_mapping_removed, site (x.pe = the external address and TCP port), ready,
peer_connected ("address"), gateway, stopped.
"""

import argparse
import http.server
import json
import re
import signal
import subprocess
import sys
import threading

from .procs import program

OUT = threading.Lock()


def die_with_parent():
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG


def run(argv, timeout=10):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, ""


class Mapper:
    """UPnP IGD through upnpc, else NAT-PMP through natpmpc."""

    def __init__(self, lease, tcp, udp):
        self.lease = lease
        self.want = [("TCP", tcp)] + ([("UDP", udp)] if udp else [])
        self.method = self.router = self.control = self.external = self.local = None
        self.maps = []      # dicts protocol, internal_port, external_port, lease

    def discover(self):
        rc, out = run(["upnpc", "-s"], timeout=10)
        m = re.search(r"Found valid IGD : (\S+)", out)
        if m:
            self.method = "upnp"
            d = re.search(r"desc: (\S+)", out)
            self.router = d.group(1) if d else m.group(1)
            self.local = re.search(r"Local LAN ip address : (\S+)", out).group(1)
            self.external = re.search(r"ExternalIPAddress = (\S+)", out).group(1)
            return True
        rc, out = run(["ip", "-4", "route", "show", "default"])
        m = re.search(r"via (\S+)", out)
        if not m:
            return False
        gw = m.group(1)
        rc, out = run(["natpmpc", "-g", gw], timeout=8)
        m = re.search(r"Public IP address : (\S+)", out)
        if not m:
            return False
        self.method, self.router, self.external = "natpmp", gw, m.group(1)
        rc, out = run(["ip", "-4", "route", "get", gw])
        m = re.search(r"src (\S+)", out)
        self.local = m.group(1) if m else None
        return True

    def _add(self, proto, internal, external):
        if self.method == "upnp":
            rc, out = run(["upnpc", "-u", self.router, "-e", "webseed-standin", "-a", self.local,
                           str(internal), str(external), proto, str(self.lease)])
            m = re.search(r"external \S+:(\d+) %s is redirected to internal \S+:(\d+)" % proto, out)
            if m:
                return int(m.group(1))
            if "718" in out:
                return "conflict"
            return None
        rc, out = run(["natpmpc", "-g", self.router, "-a", str(external), str(internal),
                       proto.lower(), str(self.lease)], timeout=8)
        m = re.search(r"Mapped public port (\d+) protocol %s to local port (\d+)" % proto, out)
        return int(m.group(1)) if m else None

    def map(self, renew=False):
        """Maps (or renews) every wanted port; returns an error text or None."""
        new = []
        for proto, internal in self.want:
            old = next((x for x in self.maps if x["protocol"] == proto), None)
            cands = [old["external_port"]] if old else [internal + k for k in range(0, 20)]
            got = None
            for c in cands:
                got = self._add(proto, internal, c)
                if got != "conflict":
                    break
            if not isinstance(got, int):
                return "%s %d not mapped (%s)" % (proto, internal, got)
            new.append({"protocol": proto, "internal_port": internal, "external_port": got,
                        "lease": self.lease})
        self.maps = new
        return None

    def remove(self):
        for x in self.maps:
            if self.method == "upnp":
                run(["upnpc", "-u", self.router, "-d", str(x["external_port"]), x["protocol"]])
            else:
                run(["natpmpc", "-g", self.router, "-a", str(x["external_port"]),
                     str(x["internal_port"]), x["protocol"].lower(), "0"], timeout=8)

    def fields(self):
        return {"method": self.method, "router": self.router, "external_address": self.external,
                "local_address": self.local, "mappings": self.maps}


class Out:
    def __init__(self, json_mode):
        self.json = json_mode

    def __call__(self, obj, text=None):
        with OUT:
            if self.json:
                sys.stdout.write(json.dumps(obj) + "\n")
            elif text is not None:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()


def mapping_text(m):
    parts = ["%s %d → %s:%d" % (x["protocol"], x["external_port"], m.local, x["internal_port"])
             for x in m.maps]
    return "port mapping: %s router %s maps %s %s (lease %d s)" % (
        "UPnP" if m.method == "upnp" else "NAT-PMP", m.router, m.external, ", ".join(parts), m.lease)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("seed", "gateway"):
        sys.stderr.write(__doc__)
        return 2
    cmd = sys.argv[1]
    ap = argparse.ArgumentParser(prog="upnp_standin.py " + cmd)
    if cmd == "seed":
        ap.add_argument("sources", nargs="+")
    else:
        ap.add_argument("--peer-listen", default="0.0.0.0:6881")
    ap.add_argument("--listen", default="0.0.0.0:6881")
    ap.add_argument("--no-gateway", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--state-dir", default="/tmp/upnp-standin")
    ap.add_argument("--no-upnp", action="store_true")
    ap.add_argument("--upnp-lease", type=int, default=3600)
    ap.add_argument("--dht-bootstrap", action="append", default=[])
    a = ap.parse_args(sys.argv[2:])
    emit = Out(a.json)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    child = None
    peer_port = int((a.listen if cmd == "seed" else a.peer_listen).rpartition(":")[2])
    if cmd == "seed":
        child = subprocess.Popen(program("ltpeer", sys.executable) + ["seed"] + a.sources +
                                 ["--listen", a.listen, "--state-dir", a.state_dir, "--json", "--offline"],
                                 stdout=subprocess.PIPE, preexec_fn=die_with_parent)
        first = json.loads(child.stdout.readline())
        peer_port = first["port"]
        emit(first, "listening on %s:%d" % (first["host"], first["port"]))
    mapper = None
    if not a.no_upnp:
        mapper = Mapper(a.upnp_lease, peer_port, peer_port)
        if not mapper.discover():
            emit({"event": "port_mapping_failed", "reason": "no_router", "method": None, "router": None,
                  "message": "no UPnP or NAT-PMP router found"},
                 "port mapping: no UPnP or NAT-PMP router found")
            mapper = None
        else:
            err = mapper.map()
            if err:
                emit({"event": "port_mapping_failed", "reason": "refused", "method": mapper.method,
                      "router": mapper.router, "message": err}, "port mapping: " + err)
                mapper = None
            else:
                ev = {"event": "port_mapping"}
                ev.update(mapper.fields())
                emit(ev, mapping_text(mapper))

    def renew():
        while not stop.wait(mapper.lease / 2.0):
            err = mapper.map(renew=True)
            ev = {"event": "port_mapping_renewed"} if not err else {
                "event": "port_mapping_failed", "reason": "lost", "message": err}
            ev.update(mapper.fields())
            emit(ev)
    if mapper:
        threading.Thread(target=renew, daemon=True).start()

    server = None
    if cmd == "gateway":
        host, _, port = a.listen.rpartition(":")

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                tcp = next((x["external_port"] for x in mapper.maps if x["protocol"] == "TCP"), None) if mapper else None
                udp = next((x["external_port"] for x in mapper.maps if x["protocol"] == "UDP"), None) if mapper else None
                st = {"sites": [], "peer_address": "%s:%d" % (mapper.external, tcp) if mapper else None,
                      "port_mapping": {"method": mapper.method, "external_address": mapper.external,
                                       "tcp": tcp, "udp": udp} if mapper else None}
                if self.path == "/api/status":
                    body, ctype = json.dumps(st).encode(), "application/json"
                else:
                    body = ("<html><body><h1>gateway</h1><p>peers reach this gateway at %s</p></body></html>"
                            % st["peer_address"]).encode()
                    ctype = "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        server = http.server.ThreadingHTTPServer((host, int(port)), H)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        gport = server.server_address[1]
        emit({"event": "gateway", "host": host, "port": gport, "url": "http://localhost:%d/" % gport},
             "gateway  http://localhost:%d/ (status)" % gport)
        emit({"event": "ready", "offline": False}, "ready")
    else:
        def pump():
            for raw in child.stdout:
                e = json.loads(raw)
                if e["event"] == "site":
                    tcp = next((x["external_port"] for x in mapper.maps if x["protocol"] == "TCP"), None) if mapper else None
                    e["magnet"] = re.sub(r"&x\.pe=[^&]*", "", e["magnet"])
                    if tcp:
                        e["magnet"] += "&x.pe=%s:%d" % (mapper.external, tcp)
                    emit(e, "seeding %s\n  magnet   %s" % (e["name"], e["magnet"]))
                elif e["event"] == "ready":
                    emit({"event": "ready", "offline": False}, "ready")
                elif e["event"] == "peer_connected":
                    emit({"event": "peer_connected", "address": e["peer"], "site": "?", "v2": True})
        threading.Thread(target=pump, daemon=True).start()

    stop.wait()
    if mapper:
        mapper.remove()
        ev = {"event": "port_mapping_removed", "method": mapper.method, "router": mapper.router,
              "mappings": mapper.maps}
        emit(ev, "port mapping: removed")
    if server:
        server.shutdown()
    if child:
        child.terminate()
        child.wait(10)
    emit({"event": "stopped", "uploaded": 0}, "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
