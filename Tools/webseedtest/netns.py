"""Throw-away network namespaces for the interop tests. Nothing in them is linked to the
host's network, so traffic only flows between them.

NetnsPair: two namespaces joined by a veth pair, for clients that ignore peers on 127/8
(Transmission); no default route. RouterLab: a home network (router, LAN, WAN) for the
UPnP/NAT-PMP tests."""

import os
import subprocess


class Namespaces:
    """Throw-away network namespaces this object created (`created`), deleted together."""

    def __init__(self):
        self.created = []

    def _ip(self, *args):
        p = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=10)
        if p.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args), p.stdout.decode(errors="replace").strip()))

    def exec_prefix(self, ns):
        return ["ip", "netns", "exec", ns]

    def pids(self):
        out = []
        for ns in self.created:
            p = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=10)
            out += [int(x) for x in p.stdout.split()]
        return out

    def delete(self):
        """Deletes the namespaces (their veth ends go with them). Returns a list of
        problems (empty when all went well)."""
        problems = []
        left = self.pids()
        if left:
            problems.append("processes still in the namespaces: %s" % left)
        for ns in reversed(self.created):
            try:
                self._ip("netns", "del", ns)
            except Exception as e:
                problems.append(str(e))
        self.created = []
        return problems


class NetnsPair(Namespaces):
    """Two namespaces joined by a veth pair (see the module's docstring)."""

    def __init__(self, tag=None, subnet="10.78.0"):
        super().__init__()
        tag = tag or str(os.getpid())
        self.seeder_ns = "wsd-s-" + tag
        self.client_ns = "wsd-c-" + tag
        self.veth_s = ("wsvs" + tag)[:15]
        self.veth_c = ("wsvc" + tag)[:15]
        self.seeder_ip = subnet + ".1"
        self.client_ip = subnet + ".2"

    def create(self):
        for ns in (self.seeder_ns, self.client_ns):
            self._ip("netns", "add", ns)
            self.created.append(ns)
        # The pair is created directly inside the namespaces: never in the host's.
        self._ip("-n", self.seeder_ns, "link", "add", self.veth_s, "type", "veth",
                 "peer", "name", self.veth_c, "netns", self.client_ns)
        self._ip("-n", self.seeder_ns, "addr", "add", self.seeder_ip + "/24", "dev", self.veth_s)
        self._ip("-n", self.client_ns, "addr", "add", self.client_ip + "/24", "dev", self.veth_c)
        for ns, dev in ((self.seeder_ns, self.veth_s), (self.client_ns, self.veth_c)):
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "link", "set", dev, "up")
        return self


ROUTER_RULESET = """
table inet filter {
  chain miniupnpd {}
  chain prerouting_miniupnpd {}
  chain postrouting_miniupnpd {}
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" accept
    jump miniupnpd
  }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" masquerade
  }
}
"""


class RouterLab(Namespaces):
    """Three throw-away namespaces shaped like a home network, for UPnP/NAT-PMP tests:

        lan (10.77.0.2, lan1) -- (lan0, 10.77.0.1) router (wan0, 1.2.3.4/32) -- (wan1, 1.2.3.5/32) wan

    The router forwards LAN traffic out (masquerade) and WAN traffic in only through the
    chains a UPnP daemon fills (`inet filter`: miniupnpd, prerouting_miniupnpd,
    postrouting_miniupnpd). The WAN addresses exist only inside these namespaces; nothing
    is linked to the host's network, so SSDP multicasts and all other traffic stay here."""

    LAN_NET = "10.77.0.0/24"
    ROUTER_LAN = "10.77.0.1"
    LAN_IP = "10.77.0.2"
    EXTERNAL_IP = "1.2.3.4"
    WAN_IP = "1.2.3.5"

    def __init__(self, tag=None, firewall=True):
        super().__init__()
        tag = tag or str(os.getpid())
        self.router = "wsu-r-" + tag
        self.lan = "wsu-l-" + tag
        self.wan = "wsu-w-" + tag
        self.firewall = firewall

    def create(self):
        for ns in (self.router, self.lan, self.wan):
            self._ip("netns", "add", ns)
            self.created.append(ns)
            self._ip("-n", ns, "link", "set", "lo", "up")
        # veth pairs are made inside the namespaces: never in the host's.
        self._ip("-n", self.router, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1", "netns", self.lan)
        self._ip("-n", self.router, "link", "add", "wan0", "type", "veth", "peer", "name", "wan1", "netns", self.wan)
        self._ip("-n", self.router, "addr", "add", self.ROUTER_LAN + "/24", "dev", "lan0")
        self._ip("-n", self.lan, "addr", "add", self.LAN_IP + "/24", "dev", "lan1")
        self._ip("-n", self.router, "addr", "add", self.EXTERNAL_IP + "/32", "dev", "wan0")
        self._ip("-n", self.wan, "addr", "add", self.WAN_IP + "/32", "dev", "wan1")
        for ns, dev in ((self.router, "lan0"), (self.router, "wan0"), (self.lan, "lan1"), (self.wan, "wan1")):
            self._ip("-n", ns, "link", "set", dev, "up")
        self._ip("-n", self.router, "route", "add", self.WAN_IP + "/32", "dev", "wan0")
        self._ip("-n", self.wan, "route", "add", self.EXTERNAL_IP + "/32", "dev", "wan1")
        self._ip("-n", self.lan, "route", "add", "default", "via", self.ROUTER_LAN)
        self.run(self.router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        if self.firewall:
            p = subprocess.run(self.exec_prefix(self.router) + ["nft", "-f", "-"], input=ROUTER_RULESET.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            if p.returncode != 0:
                raise RuntimeError("nft: " + p.stdout.decode(errors="replace").strip())
        return self

    def run(self, ns, argv, timeout=20, check=True):
        """Runs argv inside namespace ns; returns its output (stdout and stderr) as text."""
        p = subprocess.run(self.exec_prefix(ns) + list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise RuntimeError("%s (in %s) exited %d: %s" % (" ".join(argv), ns, p.returncode, out.strip()))
        return out

    def miniupnpd_config(self, path, http_port=5555, natpmp=False, upnp=True, secure=True):
        """Writes a miniupnpd configuration for this lab and returns the command line (with a
        pid file of its own beside `path`: miniupnpd refuses to start while another
        instance's default pid file names a live process, even in another namespace)."""
        with open(path, "w") as f:
            f.write("\n".join([
                "ext_ifname=wan0", "listening_ip=lan0", "http_port=%d" % http_port,
                "enable_upnp=%s" % ("yes" if upnp else "no"),
                "enable_natpmp=%s" % ("yes" if natpmp else "no"),
                "secure_mode=%s" % ("yes" if secure else "no"),
                "system_uptime=yes", "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
                "allow 1024-65535 %s 1024-65535" % self.LAN_NET,
                "deny 0-65535 0.0.0.0/0 0-65535", ""]))
        return self.exec_prefix(self.router) + ["miniupnpd", "-d", "-f", path, "-P", path + ".pid"]
