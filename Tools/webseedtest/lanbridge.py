"""Two throw-away network namespaces on one LAN: each joined by a veth pair to a bridge in a
third namespace, the way two machines share an office switch. Nothing is linked to the
host's network, so multicast (BEP 14's local discovery) stays among them. IPv4 10.79.0.0/24
and IPv6 fd79::/64; duplicate address detection is off so IPv6 addresses work at once,
and the bridge floods multicast (no snooping, which without a querier could hold it back)."""

import os
import subprocess

from .netns import Namespaces


class LanBridge(Namespaces):
    def __init__(self, tag=None):
        super().__init__()
        tag = tag or str(os.getpid())
        self.bridge = "wsl-b-" + tag
        self.hosts = ["wsl-1-" + tag, "wsl-2-" + tag]
        self.ipv4 = ["10.79.0.1", "10.79.0.2"]
        self.ipv6 = ["fd79::1", "fd79::2"]
        self.iface = "lan0"

    def _sysctl(self, ns, *settings):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw"] + list(settings), check=True, timeout=10,
                       stdout=subprocess.DEVNULL)

    def create(self):
        for ns in [self.bridge] + self.hosts:
            self._ip("netns", "add", ns)
            self.created.append(ns)
            self._ip("-n", ns, "link", "set", "lo", "up")
        self._ip("-n", self.bridge, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        self._ip("-n", self.bridge, "link", "set", "br0", "up")
        for i, ns in enumerate(self.hosts):
            self._sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            port = "port%d" % i
            # The pair is made inside the bridge's namespace, one end moved to the host's: never in the real host.
            self._ip("-n", self.bridge, "link", "add", port, "type", "veth", "peer", "name", self.iface, "netns", ns)
            self._ip("-n", self.bridge, "link", "set", port, "master", "br0")
            self._ip("-n", self.bridge, "link", "set", port, "up")
            self._ip("-n", ns, "addr", "add", self.ipv4[i] + "/24", "dev", self.iface)
            self._ip("-n", ns, "addr", "add", self.ipv6[i] + "/64", "dev", self.iface, "nodad")
            self._ip("-n", ns, "link", "set", self.iface, "up")
        return self
