"""Two throw-away network namespaces joined by a veth pair, for clients that ignore peers
on 127/8 (Transmission). Nothing else is routed: the namespaces have no default route
and no link to the host's network, so traffic only flows between them."""

import os
import subprocess


class NetnsPair:
    def __init__(self, tag=None, subnet="10.78.0"):
        tag = tag or str(os.getpid())
        self.seeder_ns = "wsd-s-" + tag
        self.client_ns = "wsd-c-" + tag
        self.veth_s = ("wsvs" + tag)[:15]
        self.veth_c = ("wsvc" + tag)[:15]
        self.seeder_ip = subnet + ".1"
        self.client_ip = subnet + ".2"
        self.created = []

    def _ip(self, *args):
        p = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=10)
        if p.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args), p.stdout.decode(errors="replace").strip()))

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
