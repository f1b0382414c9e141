"""A fake UPnP Internet Gateway Device (IGD:1, WANIPConnection:1) for the port-mapping
harness (Tools/interop/upnp_fake.py), run as `python3 -m webseedtest.fake_igd` (procs.program).
Run it only inside the router network namespace:

  fake_igd --mode MODE [--variant V] --ip 10.77.0.1 --port 5555 [--external 1.2.3.4]

It answers SSDP M-SEARCH (UDP 1900, joined to 239.255.255.250 on --ip) with
LOCATION http://IP:PORT/rootDesc.xml, serves the device description and SCPDs, and
answers SOAP control of WANIPConnection:1 (GetStatusInfo, GetExternalIPAddress,
GetConnectionTypeInfo, GetNATRSIPStatus, AddPortMapping, GetSpecificPortMappingEntry,
DeletePortMapping, GetGenericPortMappingEntry) and WANCommonInterfaceConfig:1
(GetCommonLinkProperties, GetTotal*) from a mapping table, the way miniupnpd does.

Modes:
  good             a well-behaved router (leases expire; other clients' ports answer 718)
  malformed        SSDP answers, the description is broken: --variant truncated (cut
                   inside the WANIPConnection service), garbage (not XML), notigd (a
                   well-formed MediaServer description, no WAN services)
  soap_fault       AddPortMapping answers UPnPError 501 ActionFailed; the rest is good
  conflict_always  AddPortMapping answers 718 ConflictInMappingEntry whatever the port
                   (GetSpecificPortMappingEntry says 714 NoSuchEntryInArray)
  stall            SSDP and the description are fine; every SOAP POST is read in full,
                   then never answered (the connection stays open until the client closes)

Reports one JSON object per stdout line: ready, ssdp, http, soap (action, args, status,
the table after it), stalled, stall_end. SIGTERM/SIGINT end it at once.
"""

import argparse
import email.utils
import http.server
import json
import math
import os
import select
import signal
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET

SSDP_GROUP = "239.255.255.250"
SSDP_PORT = 1900
UUID = "7ab5ce1e-77a0-4b7e-9e1c-0000f00dcafe"
IGD = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
WAN_DEVICE = "urn:schemas-upnp-org:device:WANDevice:1"
WAN_CONN_DEVICE = "urn:schemas-upnp-org:device:WANConnectionDevice:1"
L3F = "urn:schemas-upnp-org:service:Layer3Forwarding:1"
CIF = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"
WANIP = "urn:schemas-upnp-org:service:WANIPConnection:1"
SERVER = "Linux/6.1 UPnP/1.1 webseed-fake-igd/1.0"

OUT = threading.Lock()
T0 = time.time()


def emit(obj):
    obj.setdefault("t", round(time.time() - T0, 3))
    with OUT:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------------------------------
# documents

def root_description(base):
    return """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<URLBase>%(base)s</URLBase>
<device>
<deviceType>%(igd)s</deviceType>
<friendlyName>webseed fake router</friendlyName>
<manufacturer>webseed</manufacturer>
<manufacturerURL>http://example.invalid/</manufacturerURL>
<modelDescription>fake IGD for tests</modelDescription>
<modelName>fake_igd</modelName>
<modelNumber>1</modelNumber>
<serialNumber>00000001</serialNumber>
<UDN>uuid:%(uuid)s</UDN>
<serviceList>
<service>
<serviceType>%(l3f)s</serviceType>
<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId>
<SCPDURL>/L3F.xml</SCPDURL>
<controlURL>/ctl/L3F</controlURL>
<eventSubURL>/evt/L3F</eventSubURL>
</service>
</serviceList>
<deviceList>
<device>
<deviceType>%(wandev)s</deviceType>
<friendlyName>WANDevice</friendlyName>
<manufacturer>webseed</manufacturer>
<modelName>WAN Device</modelName>
<UDN>uuid:%(uuid)s-1</UDN>
<serviceList>
<service>
<serviceType>%(cif)s</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<SCPDURL>/WANCfg.xml</SCPDURL>
<controlURL>/ctl/CmnIfCfg</controlURL>
<eventSubURL>/evt/CmnIfCfg</eventSubURL>
</service>
</serviceList>
<deviceList>
<device>
<deviceType>%(wanconn)s</deviceType>
<friendlyName>WANConnectionDevice</friendlyName>
<manufacturer>webseed</manufacturer>
<modelName>WAN Connection Device</modelName>
<UDN>uuid:%(uuid)s-2</UDN>
<serviceList>
<service>
<serviceType>%(wanip)s</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<SCPDURL>/WANIPCn.xml</SCPDURL>
<controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
</service>
</serviceList>
</device>
</deviceList>
</device>
</deviceList>
<presentationURL>%(base)s</presentationURL>
</device>
</root>
""" % {"base": base, "igd": IGD, "uuid": UUID, "l3f": L3F, "wandev": WAN_DEVICE, "cif": CIF,
       "wanconn": WAN_CONN_DEVICE, "wanip": WANIP}


def not_igd_description(base):
    return """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>
<friendlyName>webseed fake media server</friendlyName>
<manufacturer>webseed</manufacturer>
<modelName>fake_igd notigd</modelName>
<UDN>uuid:%(uuid)s</UDN>
<serviceList>
<service>
<serviceType>urn:schemas-upnp-org:service:ContentDirectory:1</serviceType>
<serviceId>urn:upnp-org:serviceId:ContentDirectory</serviceId>
<SCPDURL>/ContentDir.xml</SCPDURL>
<controlURL>/ctl/ContentDir</controlURL>
<eventSubURL>/evt/ContentDir</eventSubURL>
</service>
<service>
<serviceType>urn:schemas-upnp-org:service:ConnectionManager:1</serviceType>
<serviceId>urn:upnp-org:serviceId:ConnectionManager</serviceId>
<SCPDURL>/ConnMgr.xml</SCPDURL>
<controlURL>/ctl/ConnMgr</controlURL>
<eventSubURL>/evt/ConnMgr</eventSubURL>
</service>
</serviceList>
<presentationURL>%(base)s</presentationURL>
</device>
</root>
""" % {"base": base, "uuid": UUID}


def truncated_description(base):
    """The real description cut inside the WANIPConnection service, after its serviceType and
    in the middle of its controlURL (the Content-Length says this is all there is)."""
    full = root_description(base)
    cut = full.index("<controlURL>/ctl/IPConn") + len("<controlURL>/ctl/IP")
    return full[:cut]


GARBAGE = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR <root <device <<<> &&& ]]> <serviceType>"
           b"urn:schemas-upnp-org:service:WANIPConnection:1</serviceList>\x00\xff\xfe" + bytes(range(256)) * 4)


def scpd(actions):
    acts = "".join("<action><name>%s</name></action>" % a for a in actions)
    return ('<?xml version="1.0"?>\n<scpd xmlns="urn:schemas-upnp-org:service-1-0">'
            "<specVersion><major>1</major><minor>0</minor></specVersion>"
            "<actionList>%s</actionList><serviceStateTable></serviceStateTable></scpd>\n" % acts)


WANIP_ACTIONS = ["SetConnectionType", "GetConnectionTypeInfo", "RequestConnection", "ForceTermination",
                 "GetStatusInfo", "GetNATRSIPStatus", "GetGenericPortMappingEntry",
                 "GetSpecificPortMappingEntry", "AddPortMapping", "DeletePortMapping",
                 "GetExternalIPAddress"]
CIF_ACTIONS = ["GetCommonLinkProperties", "GetTotalBytesSent", "GetTotalBytesReceived",
               "GetTotalPacketsSent", "GetTotalPacketsReceived"]
L3F_ACTIONS = ["GetDefaultConnectionService", "SetDefaultConnectionService"]

UPNP_ERRORS = {
    401: "Invalid Action", 402: "Invalid Args", 501: "ActionFailed", 606: "Action not authorized",
    713: "SpecifiedArrayIndexInvalid", 714: "NoSuchEntryInArray", 715: "WildCardNotPermittedInSrcIP",
    716: "WildCardNotPermittedInExtPort", 718: "ConflictInMappingEntry",
    724: "SamePortValuesRequired", 725: "OnlyPermanentLeasesSupported",
    726: "RemoteHostOnlySupportsWildcard", 727: "ExternalPortOnlySupportsWildcard",
}


def soap_envelope(inner):
    return ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>%s</s:Body></s:Envelope>\r\n'
            % inner)


def soap_response(service, action, out):
    args = "".join("<%s>%s</%s>" % (k, v, k) for k, v in out)
    return soap_envelope('<u:%sResponse xmlns:u="%s">%s</u:%sResponse>' % (action, service, args, action))


def soap_fault(code):
    return soap_envelope(
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
        '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode>'
        "<errorDescription>%s</errorDescription></UPnPError></detail></s:Fault>"
        % (code, UPNP_ERRORS.get(code, "Error")))


def local(tag):
    return tag.rsplit("}", 1)[-1]


def parse_soap(body):
    """(action element's local name, {arg: text}) from a SOAP request body."""
    root = ET.fromstring(body)
    envelope_body = next((c for c in root if local(c.tag) == "Body"), None)
    if envelope_body is None or len(envelope_body) == 0:
        raise ValueError("no SOAP Body")
    act = envelope_body[0]
    return local(act.tag), {local(c.tag): (c.text or "").strip() for c in act}


# ---------------------------------------------------------------------------------------
# the router

class Router:
    def __init__(self, mode, variant, ip, port, external):
        self.mode = mode
        self.variant = variant
        self.ip = ip
        self.port = port
        self.external = external
        self.base = "http://%s:%d/" % (ip, port)
        self.location = "http://%s:%d/rootDesc.xml" % (ip, port)
        self.lock = threading.Lock()
        self.table = []     # dicts: remote, ext, proto, int_port, client, enabled, desc, lease, expires
        self.started = time.time()
        self.sent = 0

    # --- table --------------------------------------------------------------------------
    def _expire(self):
        now = time.time()
        self.table = [m for m in self.table if m["lease"] == 0 or m["expires"] > now]

    def _find(self, ext, proto):
        for m in self.table:
            if m["ext"] == ext and m["proto"] == proto:
                return m
        return None

    def table_json(self):
        return [{"protocol": m["proto"], "external_port": m["ext"], "client": m["client"],
                 "internal_port": m["int_port"], "lease": m["lease"], "description": m["desc"]}
                for m in self.table]

    # --- SOAP ---------------------------------------------------------------------------
    def handle(self, service, action, args, peer):
        """(HTTP status, body) for one SOAP action."""
        with self.lock:
            self._expire()
            code, out = self._dispatch(service, action, args, peer)
        if code:
            return 500, soap_fault(code), code
        return 200, soap_response(service, action, out), 0

    def _dispatch(self, service, action, a, peer):
        if service == CIF:
            if action == "GetCommonLinkProperties":
                return 0, [("NewWANAccessType", "Ethernet"), ("NewLayer1UpstreamMaxBitRate", "100000000"),
                           ("NewLayer1DownstreamMaxBitRate", "100000000"), ("NewPhysicalLinkStatus", "Up")]
            if action in ("GetTotalBytesSent", "GetTotalBytesReceived", "GetTotalPacketsSent",
                          "GetTotalPacketsReceived"):
                name = "New" + action[3:]
                return 0, [(name, "12345")]
            return 401, None
        if service == L3F:
            if action == "GetDefaultConnectionService":
                return 0, [("NewDefaultConnectionService", "uuid:%s-2:WANConnectionDevice:1,"
                            "urn:upnp-org:serviceId:WANIPConn1" % UUID)]
            return 401, None
        if service != WANIP:
            return 401, None
        if action == "GetStatusInfo":
            return 0, [("NewConnectionStatus", "Connected"), ("NewLastConnectionError", "ERROR_NONE"),
                       ("NewUptime", str(int(time.time() - self.started) + 1000))]
        if action == "GetExternalIPAddress":
            return 0, [("NewExternalIPAddress", self.external)]
        if action == "GetConnectionTypeInfo":
            return 0, [("NewConnectionType", "IP_Routed"), ("NewPossibleConnectionTypes", "IP_Routed")]
        if action == "GetNATRSIPStatus":
            return 0, [("NewRSIPAvailable", "0"), ("NewNATEnabled", "1")]
        if action == "AddPortMapping":
            return self._add(a, peer)
        if action == "GetSpecificPortMappingEntry":
            try:
                ext = int(a.get("NewExternalPort", ""))
            except ValueError:
                return 402, None
            proto = a.get("NewProtocol", "").upper()
            if proto not in ("TCP", "UDP"):
                return 402, None
            if self.mode == "conflict_always":
                return 714, None
            m = self._find(ext, proto)
            if m is None:
                return 714, None
            left = 0 if m["lease"] == 0 else max(1, math.ceil(m["expires"] - time.time()))
            return 0, [("NewInternalPort", str(m["int_port"])), ("NewInternalClient", m["client"]),
                       ("NewEnabled", "1"), ("NewPortMappingDescription", m["desc"]),
                       ("NewLeaseDuration", str(left))]
        if action == "GetGenericPortMappingEntry":
            try:
                i = int(a.get("NewPortMappingIndex", ""))
            except ValueError:
                return 402, None
            if i < 0 or i >= len(self.table):
                return 713, None
            m = self.table[i]
            left = 0 if m["lease"] == 0 else max(1, math.ceil(m["expires"] - time.time()))
            return 0, [("NewRemoteHost", ""), ("NewExternalPort", str(m["ext"])), ("NewProtocol", m["proto"]),
                       ("NewInternalPort", str(m["int_port"])), ("NewInternalClient", m["client"]),
                       ("NewEnabled", "1"), ("NewPortMappingDescription", m["desc"]),
                       ("NewLeaseDuration", str(left))]
        if action == "DeletePortMapping":
            try:
                ext = int(a.get("NewExternalPort", ""))
            except ValueError:
                return 402, None
            proto = a.get("NewProtocol", "").upper()
            m = self._find(ext, proto)
            if m is None:
                return 714, None
            if m["client"] != peer:
                return 606, None
            self.table.remove(m)
            return 0, []
        return 401, None

    def _add(self, a, peer):
        try:
            ext = int(a.get("NewExternalPort", ""))
            iport = int(a.get("NewInternalPort", ""))
            lease = int(a.get("NewLeaseDuration", "0") or "0")
        except ValueError:
            return 402, None
        proto = a.get("NewProtocol", "").upper()
        client = a.get("NewInternalClient", "")
        if proto not in ("TCP", "UDP") or not (0 < iport < 65536) or not (0 <= ext < 65536) or lease < 0:
            return 402, None
        if self.mode == "soap_fault":
            return 501, None
        if self.mode == "conflict_always":
            return 718, None
        if a.get("NewRemoteHost", ""):
            return 726, None
        if ext == 0:
            return 716, None
        if client != peer:           # miniupnpd's secure_mode
            return 718, None
        m = self._find(ext, proto)
        if m is not None and m["client"] != client:
            return 718, None
        if m is None:
            m = {"ext": ext, "proto": proto}
            self.table.append(m)
        m.update({"int_port": iport, "client": client, "desc": a.get("NewPortMappingDescription", ""),
                  "lease": lease, "expires": time.time() + lease})
        return 0, []


# ---------------------------------------------------------------------------------------
# HTTP

def make_handler(router):
    services = {"/ctl/IPConn": WANIP, "/ctl/CmnIfCfg": CIF, "/ctl/L3F": L3F}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = SERVER
        sys_version = ""

        def log_message(self, *args):
            pass

        def _send(self, status, body, ctype='text/xml; charset="utf-8"', extra=()):
            if isinstance(body, str):
                body = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            status, body = 200, None
            if path == "/rootDesc.xml":
                if router.mode == "malformed":
                    body = {"truncated": lambda: truncated_description(router.base).encode(),
                            "garbage": lambda: GARBAGE,
                            "notigd": lambda: not_igd_description(router.base).encode()}[router.variant]()
                else:
                    body = root_description(router.base)
            elif path == "/WANIPCn.xml" and router.mode != "malformed":
                body = scpd(WANIP_ACTIONS)
            elif path == "/WANCfg.xml" and router.mode != "malformed":
                body = scpd(CIF_ACTIONS)
            elif path == "/L3F.xml" and router.mode != "malformed":
                body = scpd(L3F_ACTIONS)
            else:
                status, body = 404, "<html><body><h1>404 Not Found</h1></body></html>"
            emit({"event": "http", "method": "GET", "path": self.path, "status": status,
                  "from": self.client_address[0], "bytes": len(body)})
            self._send(status, body, ctype='text/xml; charset="utf-8"' if status == 200 else "text/html")

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
            soapaction = (self.headers.get("SOAPAction") or "").strip().strip('"')
            service, _, action = soapaction.partition("#")
            peer = self.client_address[0]
            if path not in services:
                emit({"event": "http", "method": "POST", "path": self.path, "status": 404, "from": peer,
                      "soapaction": soapaction})
                self._send(404, "<html><body><h1>404 Not Found</h1></body></html>", ctype="text/html")
                return
            args = {}
            try:
                body_action, args = parse_soap(body)
                if not action:
                    action = body_action
            except (ET.ParseError, ValueError) as e:
                emit({"event": "soap", "action": action, "args": {}, "status": 402, "from": peer,
                      "error": "unreadable body: %s" % e})
                self._send(500, soap_fault(402))
                return
            if router.mode == "stall":
                self._stall(action, args, peer)
                return
            if services[path] != service:
                status, resp, code = 500, soap_fault(401), 401
            else:
                status, resp, code = router.handle(service, action, args, peer)
            with router.lock:
                table = router.table_json()
            emit({"event": "soap", "action": action, "args": args, "status": code, "from": peer,
                  "path": path, "table": table})
            self._send(status, resp, extra=(("EXT", ""),))

        def _stall(self, action, args, peer):
            t = time.time()
            emit({"event": "stalled", "action": action, "args": args, "from": peer})
            sock = self.connection
            how = "gave up after 120 s"
            try:
                while time.time() - t < 120:
                    r, _, _ = select.select([sock], [], [], 1.0)
                    if r:
                        data = sock.recv(4096)
                        if not data:
                            how = "closed by the client"
                            break
            except OSError as e:
                how = "socket error: %s" % e
            emit({"event": "stall_end", "action": action, "held": round(time.time() - t, 2), "how": how})
            self.close_connection = True

        def do_SUBSCRIBE(self):
            emit({"event": "http", "method": "SUBSCRIBE", "path": self.path, "status": 412,
                  "from": self.client_address[0]})
            self._send(412, "", ctype="text/plain")

    return H


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


# ---------------------------------------------------------------------------------------
# SSDP

def ssdp_answers(st):
    """The (ST, USN) pairs an IGD:1 answers an M-SEARCH for st with."""
    usn_root = "uuid:%s" % UUID
    everything = [("upnp:rootdevice", usn_root + "::upnp:rootdevice"),
                  (usn_root, usn_root),
                  (IGD, usn_root + "::" + IGD),
                  (WAN_DEVICE, usn_root + "-1::" + WAN_DEVICE),
                  (WAN_CONN_DEVICE, usn_root + "-2::" + WAN_CONN_DEVICE),
                  (L3F, usn_root + "::" + L3F),
                  (CIF, usn_root + "-1::" + CIF),
                  (WANIP, usn_root + "-2::" + WANIP)]
    if st == "ssdp:all":
        return everything
    return [x for x in everything if x[0] == st]


def ssdp_loop(router, sock):
    while True:
        try:
            data, addr = sock.recvfrom(8192)
        except OSError:
            return
        text = data.decode("latin-1", errors="replace")
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        if not lines or not lines[0].upper().startswith("M-SEARCH"):
            continue
        headers = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if sep:
                headers[k.strip().upper()] = v.strip()
        st = headers.get("ST", "")
        if headers.get("MAN", "").strip('"') != "ssdp:discover":
            emit({"event": "ssdp", "st": st, "from": "%s:%d" % addr, "answered": 0, "note": "no MAN ssdp:discover"})
            continue
        answers = ssdp_answers(st)
        for ast, usn in answers:
            msg = ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nDATE: %s\r\nEXT:\r\nLOCATION: %s\r\n"
                   "SERVER: %s\r\nST: %s\r\nUSN: %s\r\nBOOTID.UPNP.ORG: 1\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n"
                   % (email.utils.formatdate(usegmt=True), router.location, SERVER, ast, usn))
            try:
                sock.sendto(msg.encode(), addr)
            except OSError:
                pass
        emit({"event": "ssdp", "st": st, "from": "%s:%d" % addr, "answered": len(answers)})


def ssdp_socket(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", SSDP_PORT))
    mreq = socket.inet_aton(SSDP_GROUP) + socket.inet_aton(ip)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", required=True, choices=["good", "malformed", "soap_fault", "conflict_always", "stall"])
    ap.add_argument("--variant", default="garbage", choices=["truncated", "garbage", "notigd"])
    ap.add_argument("--ip", default="10.77.0.1")
    ap.add_argument("--port", type=int, default=5555)
    ap.add_argument("--external", default="1.2.3.4")
    a = ap.parse_args()

    def bye(*_):
        with OUT:
            sys.stdout.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)

    router = Router(a.mode, a.variant, a.ip, a.port, a.external)
    httpd = Server((a.ip, a.port), make_handler(router))
    sock = ssdp_socket(a.ip)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    threading.Thread(target=ssdp_loop, args=(router, sock), daemon=True).start()
    emit({"event": "ready", "mode": a.mode, "variant": a.variant if a.mode == "malformed" else None,
          "location": router.location, "pid": os.getpid()})
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
