#!/usr/bin/python3
"""webseed's UPnP / NAT-PMP port mapping against a real router: miniupnpd 2.3.1 (nftables)
in throw-away network namespaces (webseedtest/netns.py RouterLab), per /work/notes/upnp-contract.md.

    lan 10.77.0.2 (webseed) -- 10.77.0.1 router (miniupnpd) 1.2.3.4 -- 1.2.3.5 wan (libtorrent)

Every case gets fresh namespaces and a fresh miniupnpd; webseed runs in the LAN namespace
(`ip netns exec LAN webseed seed SAMPLE --listen 0.0.0.0:6881 --no-gateway --json
--state-dir WORK/state/CASE --dht-bootstrap 10.77.0.1:6999`, never --offline), the router's
state is read with `upnpc -u http://10.77.0.1:5555/rootDesc.xml -l` (in the LAN) and
`nft list chain inet filter prerouting_miniupnpd` (in the router).

  a  mapping: the port_mapping event (method upnp, router, external 1.2.3.4, local
     10.77.0.2, TCP and UDP internal 6881 -> external 6881, lease 3600); `upnpc -l` lists
     both; the router's DNAT rules for TCP and UDP to 10.77.0.2:6881; the site event comes
     after it and its magnet has x.pe=1.2.3.4:<external TCP port>
  b  a libtorrent 2.0.8 leecher in the WAN namespace (1.2.3.5; TCP only, DHT/LSD/UPnP/NAT-PMP
     off), given only that magnet, downloads the sample site through the router; every file
     compared byte for byte; webseed's peer_connected shows 1.2.3.5
  c  SIGTERM: exit 0, port_mapping_removed before stopped, then no mapping in `upnpc -l`
     and no DNAT rule
  d  renewal (--upnp-lease 6): after three leases the mappings are still listed with a
     remaining lease <= 6, at least two port_mapping_renewed events came
  e  conflict (miniupnpd secure_mode=no): another LAN host (10.77.0.99) owns external TCP
     6881 before webseed starts; webseed's TCP mapping gets another external port (internal
     6881), the magnet's x.pe names it, a WAN leecher downloads through it; the other host's
     mapping survives the download and webseed's shutdown; webseed's DHT node joins through
     a libtorrent DHT node on the WAN side, which receives its announce_peer from
     1.2.3.4:<that external port>
  f  NAT-PMP only (miniupnpd enable_upnp=no, enable_natpmp=yes): port_mapping method natpmp,
     DNAT rule for TCP 6881; after SIGTERM port_mapping_removed and the rule is gone
  g  `webseed gateway --listen 127.0.0.1:0 --peer-listen 0.0.0.0:6881 --json`: port_mapping;
     /api/status (fetched inside the LAN namespace) has peer_address 1.2.3.4:6881 and
     port_mapping.method upnp; the HTML status page shows 1.2.3.4; SIGTERM removes the mappings
  r  the router restarts (miniupnpd killed, its nftables chains flushed, started again) and
     holds nothing: webseed (--upnp-lease 20) maps both ports again at its next renewal
  h  --no-upnp: ready with no port_mapping* event, nothing mapped, no SSDP/SOAP request
  o  the same with --offline (which turns port mapping off too)
     reached miniupnpd
  i  text mode: exactly one "port mapping: " line (with 1.2.3.4 and 6881) before "ready"

After every case the namespaces are deleted and RouterLab.delete() must report no problem.

Usage (root; Debian's python3-libtorrent, miniupnpd-nftables, miniupnpc, natpmpc, nftables, curl):
  /usr/bin/python3 Tools/interop/upnp_router.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-upnp [--only a,b,c,...]
  --standin   run webseedtest/upnp_standin.py (upnpc/natpmpc + a libtorrent seeder, same CLI and events)
              instead of webseed: validates the harness itself

Prints one `ok ...` / `FAIL ...` line per check (with log tails on failures), `info ...`
lines, and ends with `N passed, M failed`; exit status 1 if any check failed. Logs
(webseed stdout/stderr, miniupnpd -d output, leecher alerts) are under WORK/logs.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

from webseedtest.cases import add_only, chosen_cases
from webseedtest.launchers import leech_outcome, lt_leech_argv
from webseedtest.netns import RouterLab
from webseedtest.procs import poll, Proc, program, run, tail
from webseedtest.results import Results
from webseedtest.trees import compare_tree, fresh_dirs

ALL_CASES = ["a", "b", "c", "d", "r", "e", "f", "g", "h", "o", "i"]
DESC = "http://10.77.0.1:5555/rootDesc.xml"
PORT = 6881
EXT = RouterLab.EXTERNAL_IP
LAN_IP = RouterLab.LAN_IP
WAN_IP = RouterLab.WAN_IP
OTHER_HOST = "10.77.0.99"
BOOT = "10.77.0.1:6999"
OUTCOME = 20        # s: wait for the first port-mapping outcome
FIRST_OUTCOME = 10  # s: checked bound for it (contract: <= ~8 s after start)
READY = 40          # s: ready after start
STOP = 10           # s: exit after SIGTERM (contract: at most 5 s for the deletions)
LEECH = 45          # s: the WAN leecher's own deadline
DHT_ANNOUNCE = 30   # s: webseed's first announce reaches the WAN-side DHT node
DHT_NODE_PORT = 6999
LABS = []
# A mapping's "lease" may be what the router reports back (GetSpecificPortMappingEntry gives
# the remaining seconds): up to LEASE_SLACK s below the lease asked is accepted and noted.
LEASE_SLACK = 0
LEASE_NOTES = []


def is_pm(e):
    return str(e.get("event", "")).startswith("port_mapping")


def ev_is(name):
    return lambda e: e.get("event") == name


# ---------------------------------------------------------------------------------------
# The router
# ---------------------------------------------------------------------------------------

class Lab:
    """Fresh namespaces and a fresh miniupnpd (its -d output in LOGDIR/miniupnpd-CASE.stderr)."""

    def __init__(self, args, case, upnp=True, natpmp=False, secure=True):
        self.case = case
        self.net = RouterLab(tag="%d%s" % (os.getpid() % 100000, case))
        LABS.append(self)
        self.mupnpd = None
        self.closed = False
        self.net.create()
        self.settle()
        conf = os.path.join(args.work, "miniupnpd-%s.conf" % case)
        self.argv = self.net.miniupnpd_config(conf, natpmp=natpmp, upnp=upnp, secure=secure)
        self.marker = "HTTP listening on port" if upnp else "Listening for NAT-PMP"
        self.logdir = args.logdir
        self.start_daemon("miniupnpd-" + case)

    def start_daemon(self, name):
        self.mupnpd = Proc(name, self.argv, self.logdir)
        if not poll(lambda: not self.mupnpd.alive() or self.marker in self.log_text(), 10, 0.05) \
                or not self.mupnpd.alive():
            raise RuntimeError("miniupnpd did not start (%r not in its log): %s" % (
                self.marker, " | ".join(self.log_tail(8))))

    def reboot_router(self):
        """A router that loses power: miniupnpd killed, its rules gone, a fresh one started."""
        self.mupnpd.stop(sig=signal.SIGKILL, timeout=5)
        for chain in ("miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"):
            self.net.run(self.net.router, ["nft", "flush", "chain", "inet", "filter", chain])
        self.start_daemon("miniupnpd-%s-rebooted" % self.case)

    def settle(self, bound=8):
        """Waits (bounded) until no address in the three namespaces is still tentative (IPv6
        duplicate address detection on the fresh veths takes about 2 s; libtorrent, listening
        on 0.0.0.0, skips an interface until then)."""
        t = time.time()

        def settled():
            for ns in (self.net.router, self.net.lan, self.net.wan):
                rc, out = run(["ip", "-n", ns, "addr"], 5)
                if rc != 0 or "tentative" in out:
                    return False
            return True
        if not poll(settled, bound, 0.1):
            raise RuntimeError("addresses in the namespaces still tentative after %d s" % bound)
        self.settled_after = time.time() - t

    def log_text(self):
        try:
            with open(self.mupnpd.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=14):
        if not self.mupnpd:
            return []
        noise = ("is not a IGD pinhole", "table_cb(", "Host: 10.77.0.1", "CACHE-CONTROL", "USN:", "EXT:",
                 "SERVER:", "OPT:", "01-NLS", "BOOTID", "CONFIGID", "LOCATION:", "ST: urn", "level=0",
                 "ifindex =")
        lines = [l for l in tail(self.mupnpd.err_path, 400) if l.strip() and not any(x in l for x in noise)]
        return ["[miniupnpd] " + l for l in lines[-n:]]

    def upnpc(self, args, timeout=15):
        rc, out = run(self.net.exec_prefix(self.net.lan) + ["upnpc", "-u", DESC] + list(args), timeout)
        return rc, out

    def mappings(self):
        """`upnpc -l` in the LAN: list of dicts protocol, external, client, internal, desc, lease."""
        rc, out = self.upnpc(["-l"])
        rows = []
        for l in out.splitlines():
            m = re.match(r"\s*\d+\s+(TCP|UDP)\s+(\d+)->([\d.]+):(\d+)\s+'([^']*)'\s+'([^']*)'\s+(\d+)", l)
            if m:
                rows.append({"protocol": m.group(1), "external": int(m.group(2)), "client": m.group(3),
                             "internal": int(m.group(4)), "desc": m.group(5), "lease": int(m.group(7))})
        if "ExternalIPAddress" not in out:
            raise RuntimeError("upnpc -l could not talk to the IGD: %s" % out.strip()[-300:])
        return rows

    def dnat_rules(self):
        """The router's prerouting_miniupnpd DNAT rules: list of (protocol, dport, to_ip, to_port)."""
        out = self.net.run(self.net.router, ["nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"])
        rules = []
        for l in out.splitlines():
            m = re.search(r"dnat ip to ([\d.]+):(\d+)", l)
            if not m:
                continue
            proto = "TCP" if "@nh,72,8 0x6 " in l or "tcp dport" in l else \
                "UDP" if "@nh,72,8 0x11 " in l or "udp dport" in l else "?"
            d = re.search(r"dport (\d+)", l)
            rules.append((proto, int(d.group(1)) if d else None, m.group(1), int(m.group(2))))
        return rules

    def close(self):
        """Stops miniupnpd and deletes the namespaces; returns a list of problems."""
        if self.closed:
            return []
        self.closed = True
        problems = []
        if self.mupnpd:
            rc, took = self.mupnpd.stop(timeout=5)
            if rc is None:
                problems.append("miniupnpd did not exit within 5 s of SIGTERM (killed)")
        problems += self.net.delete()
        return problems


def fmt_rows(rows):
    return ", ".join("%s %d->%s:%d %r lease %d" % (x["protocol"], x["external"], x["client"], x["internal"],
                                                   x["desc"], x["lease"]) for x in rows) or "none"


def fmt_rules(rules):
    return ", ".join("%s dport %s -> %s:%d" % r for r in rules) or "none"


# ---------------------------------------------------------------------------------------
# webseed (or the stand-in) in the LAN namespace
# ---------------------------------------------------------------------------------------

def binary(args):
    return program("upnp_standin") if args.standin else [args.webseed]


def start_seed(args, lab, name, extra=(), json_mode=True):
    state = os.path.join(args.work, "state", name)
    os.makedirs(state, exist_ok=True)
    argv = lab.net.exec_prefix(lab.net.lan) + binary(args) + [
        "seed", args.sample, "--listen", "0.0.0.0:%d" % PORT, "--no-gateway", "--state-dir", state,
        "--dht-bootstrap", BOOT] + (["--json"] if json_mode else []) + list(extra)
    Results.info(name, " ".join(argv[4:]))
    return Proc(name, argv, args.logdir)


@contextlib.contextmanager
def lab_and_seed(r, args, case, name, lab=None, **seed):
    """Fresh namespaces and miniupnpd for `case`, then `webseed seed` in the LAN; both gone at
    the end (the lab's deletion is itself a check), whatever happens."""
    the_lab = Lab(args, case, **(lab or {}))
    ws = None
    try:
        ws = start_seed(args, the_lab, name, **seed)
        yield the_lab, ws
    finally:
        if ws:
            ws.stop(timeout=STOP)
        close_lab(r, the_lab)


def start_gateway(args, lab, name):
    state = os.path.join(args.work, "state", name)
    os.makedirs(state, exist_ok=True)
    argv = lab.net.exec_prefix(lab.net.lan) + binary(args) + [
        "gateway", "--listen", "127.0.0.1:0", "--peer-listen", "0.0.0.0:%d" % PORT, "--json",
        "--state-dir", state, "--dht-bootstrap", BOOT]
    Results.info(name, " ".join(argv[4:]))
    return Proc(name, argv, args.logdir)


def logs(proc, lab, n=12):
    return (proc.log_tail(n) if proc else []) + (lab.log_tail(n) if lab else [])


def event_time(proc, idx):
    with proc.cond:
        return proc.events[idx][0]


def wait_outcome(r, what, proc, lab):
    """The first port-mapping outcome; (index, event, seconds after start) or (None, None, None)."""
    i, ev = proc.wait_event(is_pm, OUTCOME)
    if ev is None:
        r.fail(what, "no port_mapping* event within %d s of the start (exit %s)" % (OUTCOME, proc.p.poll()),
               more=logs(proc, lab))
        return None, None, None
    t = event_time(proc, i) - proc.t0
    if ev.get("event") != "port_mapping":
        r.fail(what, "first outcome after %.1fs is %s, not port_mapping" % (t, json.dumps(ev)[:400]),
               more=logs(proc, lab))
        return None, None, None
    return i, ev, t


def mapping_problems(ev, method, router, lease, tcp_ext=None, udp=True):
    """Problems of a port_mapping(_renewed) event's fields. tcp_ext: the expected external TCP
    port, or ("not", N) for any port but N, or None for any."""
    p = []
    if ev.get("method") != method:
        p.append("method %r, expected %r" % (ev.get("method"), method))
    rt = ev.get("router")
    if not isinstance(rt, str) or not (rt == router or (router.endswith("/") and rt.startswith(router))):
        p.append("router %r, expected %s%s" % (rt, router, "…" if router.endswith("/") else ""))
    if ev.get("external_address") != EXT:
        p.append("external_address %r, expected %s" % (ev.get("external_address"), EXT))
    if ev.get("local_address") != LAN_IP:
        p.append("local_address %r, expected %s" % (ev.get("local_address"), LAN_IP))
    maps = ev.get("mappings")
    if not isinstance(maps, list):
        return p + ["mappings %r is not a list" % (maps,)]
    for proto in ("TCP", "UDP") if udp else ("TCP",):
        ms = [m for m in maps if isinstance(m, dict) and m.get("protocol") == proto]
        if len(ms) != 1:
            p.append("%d %s mappings (expected 1)" % (len(ms), proto))
            continue
        m = ms[0]
        if m.get("internal_port") != PORT:
            p.append("%s internal_port %r, expected %d" % (proto, m.get("internal_port"), PORT))
        x = m.get("external_port")
        if not isinstance(x, int) or not 1 <= x <= 65535:
            p.append("%s external_port %r" % (proto, x))
        elif proto == "TCP" and isinstance(tcp_ext, int) and x != tcp_ext:
            p.append("TCP external_port %d, expected %d" % (x, tcp_ext))
        elif proto == "TCP" and isinstance(tcp_ext, tuple) and x == tcp_ext[1]:
            p.append("TCP external_port %d, must differ from %d" % (x, tcp_ext[1]))
        got = m.get("lease")
        if lease is not None and not (isinstance(got, int) and lease - LEASE_SLACK <= got <= lease):
            p.append("%s lease %r, expected %d" % (proto, got, lease))
        elif lease is not None and got != lease:
            LEASE_NOTES.append("%s %s %s: %d (asked %d)" % (ev.get("event"), ev.get("method"), proto, got, lease))
    return p


def ext_ports(ev):
    out = {}
    for m in ev.get("mappings") or []:
        if isinstance(m, dict) and m.get("protocol") in ("TCP", "UDP"):
            out[m["protocol"]] = m.get("external_port")
    return out


def fmt_maps(ev):
    return ", ".join("%s %s->%s lease %s" % (m.get("protocol"), m.get("external_port"), m.get("internal_port"),
                                             m.get("lease"))
                     for m in ev.get("mappings") or [] if isinstance(m, dict)) or "no mappings"


def magnet_pe(magnet):
    q = magnet.split("?", 1)[1] if "?" in magnet else ""
    return [v for k, v in urllib.parse.parse_qsl(q, keep_blank_values=True) if k == "x.pe"]


def check_router_has(r, what, lab, expect_rows, expect_rules, proc, lease_max=None, lease_min=None,
                     absent_rows=(), absent_rules=()):
    """`upnpc -l` has each (protocol, external, client, internal) in expect_rows and none of
    absent_rows (None fields match anything); nft has each rule of expect_rules."""
    try:
        rows = lab.mappings()
        rules = lab.dnat_rules()
    except Exception as e:
        r.fail(what, "cannot read the router's state: %s" % e, more=logs(proc, lab))
        return None, None
    p = []

    def match(row, want):
        return all(w is None or w == g for w, g in zip(want, (row["protocol"], row["external"], row["client"],
                                                                row["internal"])))
    for want in expect_rows:
        hit = [x for x in rows if match(x, want)]
        if not hit:
            p.append("upnpc -l lacks %s %s->%s:%s" % want)
        for x in hit:
            if lease_max is not None and x["lease"] > lease_max:
                p.append("%s %d remaining lease %d > %d" % (x["protocol"], x["external"], x["lease"], lease_max))
            if lease_min is not None and x["lease"] < lease_min:
                p.append("%s %d remaining lease %d < %d" % (x["protocol"], x["external"], x["lease"], lease_min))
    for want in absent_rows:
        for x in rows:
            if match(x, want):
                p.append("upnpc -l still lists %s %d->%s:%d" % (x["protocol"], x["external"], x["client"],
                                                                x["internal"]))
    for want in expect_rules:
        if not any(all(w is None or w == g for w, g in zip(want, rule)) for rule in rules):
            p.append("no DNAT rule %s dport %s -> %s:%s" % want)
    for want in absent_rules:
        for rule in rules:
            if all(w is None or w == g for w, g in zip(want, rule)):
                p.append("DNAT rule still there: %s dport %s -> %s:%d" % rule)
    r.check(not p, what, "; ".join(p) + " (upnpc -l: %s; nft: %s)" % (fmt_rows(rows), fmt_rules(rules))
            if p else "upnpc -l: %s; nft: %s" % (fmt_rows(rows), fmt_rules(rules)),
            more=logs(proc, lab) if p else [])
    return rows, rules


def check_site(r, what, proc, lab, pm_idx, tcp_ext):
    """The site event comes after the port_mapping event (index pm_idx) and its magnet has
    x.pe=EXT:tcp_ext; then ready. Returns the site event or None."""
    i, site = proc.wait_event(ev_is("site"), READY)
    if site is None:
        r.fail(what, "no site event within %d s (exit %s)" % (READY, proc.p.poll()), more=logs(proc, lab))
        return None
    pe = magnet_pe(site.get("magnet") or "")
    want = "%s:%s" % (EXT, tcp_ext)
    p = []
    if pm_idx is not None and i < pm_idx:
        p.append("site event came before port_mapping")
    if want not in pe:
        p.append("magnet's x.pe %s lacks %s" % (pe, want))
    r.check(not p, what, "; ".join(p) + ": magnet %s" % (site.get("magnet") or "")[:300] if p else
            "site after port_mapping (%.1fs after start), x.pe %s" % (event_time(proc, i) - proc.t0, pe),
            more=logs(proc, lab) if p else [])
    j, ready = proc.wait_event(ev_is("ready"), READY, i)
    if ready is None:
        r.fail(what + ": ready", "no ready event after the site within %d s (exit %s)" % (READY, proc.p.poll()),
               more=logs(proc, lab))
        return None
    return site


def leech_through_router(r, what, args, lab, proc, site, tag):
    """A libtorrent leecher in the WAN namespace, given only the site's magnet; every file
    compared with the sample; webseed's peer_connected shows the WAN address."""
    save = os.path.join(args.work, "dl", tag)
    shutil.rmtree(save, ignore_errors=True)
    os.makedirs(save)
    alerts = os.path.join(args.logdir, "leech-%s.alerts" % tag)
    argv = lab.net.exec_prefix(lab.net.wan) + lt_leech_argv(
        site["magnet"], save, LEECH, alerts,
        extra=["--listen", "%s:6881" % WAN_IP, "--resume-on-inconsistent-hashes", "3"])
    p = Proc("leech-" + tag, argv, args.logdir)
    t0 = time.time()
    ev, rc = leech_outcome(p, LEECH + 20)
    took = time.time() - t0
    if ev is not None and ev.get("event") == "finished" and rc == 0:
        ok, summary, problems = compare_tree(args.sample, os.path.join(save, site.get("name") or args.site_name))
    else:
        ok, summary, problems = False, "download did not finish: %s (exit %s)" % (
            json.dumps(ev)[:400] if ev else "no result", rc), []
    more = []
    if not ok:
        more = problems[:10] + p.log_tail(5) + ["[leecher alerts] " + l for l in tail(
            alerts, 15, grep=("connect", "CONNECT", "error", "ERROR", "disconnect", "metadata"))] + logs(proc, lab, 8)
    r.check(ok, what, "%s in %.1fs from magnet x.pe %s" % (summary, took, magnet_pe(site["magnet"])), more)
    if ev and ev.get("inconsistent_hashes_resumed"):
        Results.info(what, "libtorrent 2.0.8's torrent_inconsistent_hashes race (PR #8846) cleared and "
                     "resumed %d time(s)" % len(ev["inconsistent_hashes_resumed"]))
    peers = [e.get("address") for _, e in proc.event_times(ev_is("peer_connected"))]
    hosts = {str(a).rpartition(":")[0].strip("[]") for a in peers}
    r.check(WAN_IP in hosts and hosts <= {WAN_IP},
            what + ": webseed's peer_connected shows the WAN peer %s" % WAN_IP,
            "peer_connected addresses: %s" % (peers or "none"), more=[] if WAN_IP in hosts else logs(proc, lab, 8))
    return ok


def stop_and_check_removed(r, what, proc, lab, expect_maps=True):
    """SIGTERM; exit 0 within STOP s; port_mapping_removed (with the mappings) before stopped."""
    if not proc.alive():
        r.fail(what, "exited (status %s) before SIGTERM" % proc.p.poll(), more=logs(proc, lab))
        proc.stop(timeout=1)
        return False
    n_before = len(proc.events)
    rc, took = proc.stop(timeout=STOP)
    with proc.cond:
        evs = [e for _, e in proc.events]
    i_rm = next((k for k, e in enumerate(evs) if e.get("event") == "port_mapping_removed"), None)
    i_st = next((k for k, e in enumerate(evs) if e.get("event") == "stopped"), None)
    p = []
    if rc != 0:
        p.append("exit %s" % ("none (killed after %d s)" % STOP if rc is None else rc))
    if expect_maps:
        if i_rm is None:
            fails = [e for e in evs[n_before:] if e.get("event") == "port_mapping_failed"]
            p.append("no port_mapping_removed event" + (" (%s)" % json.dumps(fails[0])[:300] if fails else ""))
        elif i_st is not None and i_rm > i_st:
            p.append("port_mapping_removed came after stopped")
        last = [e for e in evs[:n_before] if e.get("event") in ("port_mapping", "port_mapping_renewed")]
        if i_rm is not None and last:
            rm, pm = evs[i_rm], last[-1]
            for k in ("method", "router"):
                if rm.get(k) != pm.get(k):
                    p.append("port_mapping_removed %s %r, mapped with %r" % (k, rm.get(k), pm.get(k)))

            def keyset(e):
                return sorted((m.get("protocol"), m.get("internal_port"), m.get("external_port"))
                              for m in e.get("mappings") or [] if isinstance(m, dict))
            if keyset(rm) != keyset(pm):
                p.append("port_mapping_removed mappings %s, mapped %s" % (keyset(rm), keyset(pm)))
        if i_st is None:
            p.append("no stopped event")
    if p:
        detail = "; ".join(p)
    elif expect_maps:
        detail = "exit 0 after %.2fs; port_mapping_removed (%s) before stopped" % (took, fmt_maps(evs[i_rm]))
    else:
        detail = "exit 0 after %.2fs" % took
    r.check(not p, what, detail, more=logs(proc, lab) if p else [])
    return not p


# ---------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------

def case_abc(r, args, cases):
    with lab_and_seed(r, args, "a", "ws-a") as (lab, ws):
        i, pm, t = wait_outcome(r, "a port_mapping event", ws, lab)
        if pm is None:
            return
        p = mapping_problems(pm, "upnp", DESC, 3600, tcp_ext=PORT)
        ports = ext_ports(pm)
        if ports.get("UDP") not in (None, PORT):
            p.append("UDP external_port %s, expected %d (free)" % (ports.get("UDP"), PORT))
        if t > FIRST_OUTCOME:
            p.append("came %.1fs after start (contract: <= ~8 s)" % t)
        r.check(not p, "a port_mapping event: upnp, %s, %s, %s, TCP and UDP %d->%d, lease 3600" % (
            DESC, EXT, LAN_IP, PORT, PORT), "; ".join(p) + ": " + json.dumps(pm)[:500] if p else
            "%.1fs after start: %s" % (t, fmt_maps(pm)), more=logs(ws, lab) if p else [])
        tcp, udp = ports.get("TCP"), ports.get("UDP")
        check_router_has(r, "a router: upnpc -l lists TCP and UDP to %s:%d, nft has their DNAT rules" % (
            LAN_IP, PORT), lab, [("TCP", tcp, LAN_IP, PORT), ("UDP", udp, LAN_IP, PORT)],
            [("TCP", tcp, LAN_IP, PORT), ("UDP", udp, LAN_IP, PORT)], ws, lease_max=3600, lease_min=3500)
        site = check_site(r, "a site event after port_mapping, magnet x.pe=%s:%s" % (EXT, tcp), ws, lab, i, tcp)
        if "b" in cases and site is not None:
            leech_through_router(r, "b WAN leecher (%s) downloads the site through the router" % WAN_IP,
                                 args, lab, ws, site, "b")
        if "c" in cases:
            stop_and_check_removed(r, "c SIGTERM: exit 0, port_mapping_removed before stopped", ws, lab)
            check_router_has(r, "c after shutdown: upnpc -l lists nothing, no DNAT rule", lab, [], [], ws,
                             absent_rows=[(None, None, None, None)], absent_rules=[(None, None, None, None)])


def case_d(r, args):
    lease = 6
    with lab_and_seed(r, args, "d", "ws-d", extra=["--upnp-lease", str(lease)]) as (lab, ws):
        i, pm, t = wait_outcome(r, "d port_mapping event", ws, lab)
        if pm is None:
            return
        p = mapping_problems(pm, "upnp", DESC, lease)
        r.check(not p, "d port_mapping event with lease %d" % lease, "; ".join(p) if p else fmt_maps(pm),
                more=logs(ws, lab) if p else [])
        ports = ext_ports(pm)
        t_map = event_time(ws, i)
        # Time must pass (three leases); it is spent watching webseed's events, and a lapse of
        # two leases without a renewal ends the wait early.
        want = 3 * lease + 1
        last, stalled = i, None
        while time.time() < t_map + want:
            left = t_map + want - time.time()
            j, ev = ws.wait_event(is_pm, min(left, 2 * lease), last + 1)
            if ev is not None:
                last = j
            elif time.time() < t_map + want - 0.05:
                stalled = "no port_mapping* event for %.0f s (exit %s)" % (
                    time.time() - event_time(ws, last), ws.p.poll())
                break
        elapsed = time.time() - t_map
        renewed = ws.event_times(ev_is("port_mapping_renewed"))
        failed = ws.event_times(ev_is("port_mapping_failed"))
        rp = []
        if stalled:
            rp.append(stalled)
        if len(renewed) < 2:
            rp.append("%d port_mapping_renewed events" % len(renewed))
        if failed:
            rp.append("port_mapping_failed: %s" % json.dumps(failed[0][1])[:300])
        if not ws.alive():
            rp.append("webseed exited (status %s)" % ws.p.poll())
        again = ws.event_times(ev_is("port_mapping"))
        if len(again) != 1:
            rp.append("%d port_mapping events (nothing changed: expected only the first)" % len(again))
        bad = [e for _, e in renewed if mapping_problems(e, "upnp", DESC, lease) or ext_ports(e) != ports]
        if bad:
            rp.append("a renewal's fields differ: %s (%s)" % (
                json.dumps(bad[0])[:300], "; ".join(mapping_problems(bad[0], "upnp", DESC, lease))))
        gaps = [b[0] - a[0] for a, b in zip([(t_map - ws.t0, None)] + renewed[:-1], renewed)]
        r.check(not rp, "d %.1fs (%.1f leases of %d s) after mapping: at least two port_mapping_renewed" % (
            elapsed, elapsed / lease, lease),
            "; ".join(rp) if rp else "%d renewals at %s s after start (gaps %s s)" % (
                len(renewed), ", ".join("%.1f" % x for x, _ in renewed[:10]),
                ", ".join("%.1f" % g for g in gaps[:10])), more=logs(ws, lab) if rp else [])
        check_router_has(r, "d after %.1fs: upnpc -l still lists both mappings, remaining lease <= %d" % (
            time.time() - t_map, lease), lab,
            [("TCP", ports.get("TCP"), LAN_IP, PORT), ("UDP", ports.get("UDP"), LAN_IP, PORT)],
            [("TCP", ports.get("TCP"), LAN_IP, PORT), ("UDP", ports.get("UDP"), LAN_IP, PORT)], ws,
            lease_max=lease, lease_min=1)
        stop_and_check_removed(r, "d SIGTERM: exit 0, port_mapping_removed before stopped", ws, lab)


def case_e(r, args):
    lab = Lab(args, "e", secure=False)
    ws = node = None
    other = (("TCP", PORT, OTHER_HOST, PORT),)
    try:
        rc, out = lab.upnpc(["-e", "other-host", "-a", OTHER_HOST, str(PORT), str(PORT), "TCP", "600"])
        if "is redirected to internal %s:%d" % (OTHER_HOST, PORT) not in out:
            r.fail("e setup: %s owns external TCP %d" % (OTHER_HOST, PORT), out.strip()[-300:], lab.log_tail())
            return
        # A libtorrent DHT node on the WAN side: webseed joins through it, and its announces
        # must name the external port the router gave, not the local one.
        node = Proc("lt-dht-e", lab.net.exec_prefix(lab.net.wan) + program("ltpeer") + [
            "dht", "--listen", "%s:%d" % (WAN_IP, DHT_NODE_PORT), "--offline", "--json",
            "--state-dir", os.path.join(args.work, "state", "lt-dht-e")], args.logdir)
        _, up = node.wait_event(ev_is("dht"), READY)
        if up is None:
            r.fail("e setup: a libtorrent DHT node on the WAN side", "no dht event", node.log_tail())
            return
        ws = start_seed(args, lab, "ws-e", extra=["--dht-bootstrap", "%s:%d" % (WAN_IP, DHT_NODE_PORT)])
        i, pm, t = wait_outcome(r, "e port_mapping event", ws, lab)
        if pm is None:
            return
        p = mapping_problems(pm, "upnp", DESC, 3600, tcp_ext=("not", PORT))
        r.check(not p, "e port_mapping: TCP internal %d on an external port other than %d (taken by %s)" % (
            PORT, PORT, OTHER_HOST), "; ".join(p) + ": " + json.dumps(pm)[:400] if p else
            "%.1fs after start: %s" % (t, fmt_maps(pm)), more=logs(ws, lab) if p else [])
        ports = ext_ports(pm)
        tcp = ports.get("TCP")
        check_router_has(r, "e router: webseed's TCP %s->%s:%d and the other host's TCP %d->%s:%d" % (
            tcp, LAN_IP, PORT, PORT, OTHER_HOST, PORT), lab,
            [("TCP", tcp, LAN_IP, PORT), ("UDP", ports.get("UDP"), LAN_IP, PORT)] + list(other),
            [("TCP", tcp, LAN_IP, PORT), ("TCP", PORT, OTHER_HOST, PORT)], ws)
        site = check_site(r, "e site event after port_mapping, magnet x.pe=%s:%s" % (EXT, tcp), ws, lab, i, tcp)
        if site is not None:
            leech_through_router(r, "e WAN leecher downloads through external port %s" % tcp, args, lab, ws,
                                 site, "e")
        check_router_has(r, "e after the download: the other host's mapping is still there", lab, other,
                         [("TCP", PORT, OTHER_HOST, PORT)], ws)
        if site is not None:
            hashes = {h for h in (str(site.get("v2_infohash") or "")[:40], site.get("v1_infohash")) if h}
            want = "%s:%s" % (EXT, tcp)
            _, ann = node.wait_event(lambda e: e.get("event") == "dht_announce_received" and e.get("hash") in hashes,
                                     DHT_ANNOUNCE)
            got = sorted({e.get("peer") for _, e in node.event_times(lambda e: e.get("event") == "dht_announce_received")})
            r.check(ann is not None and ann.get("peer") == want,
                    "e the WAN-side libtorrent DHT node receives webseed's announce_peer naming %s (the mapped port)" % want,
                    "first: %s; all peers announced: %s" % (json.dumps(ann), got), more=[] if ann else node.log_tail(8))
        stop_and_check_removed(r, "e SIGTERM: exit 0, port_mapping_removed before stopped", ws, lab)
        check_router_has(r, "e after shutdown: webseed's mappings gone, the other host's still there", lab, other,
                         [("TCP", PORT, OTHER_HOST, PORT)], ws, absent_rows=[(None, None, LAN_IP, None)],
                         absent_rules=[(None, None, LAN_IP, None)])
    finally:
        if ws:
            ws.stop(timeout=STOP)
        if node:
            node.stop(timeout=STOP)
        close_lab(r, lab)


def case_f(r, args):
    with lab_and_seed(r, args, "f", "ws-f", lab=dict(upnp=False, natpmp=True)) as (lab, ws):
        i, pm, t = wait_outcome(r, "f port_mapping event (NAT-PMP)", ws, lab)
        if pm is None:
            return
        p = mapping_problems(pm, "natpmp", RouterLab.ROUTER_LAN, 3600, udp=False)
        if t > FIRST_OUTCOME:
            p.append("came %.1fs after start (contract: <= ~8 s: SSDP 2 s + NAT-PMP ~2 s)" % t)
        r.check(not p, "f port_mapping: natpmp, router %s, %s, TCP internal %d" % (RouterLab.ROUTER_LAN, EXT, PORT),
                "; ".join(p) + ": " + json.dumps(pm)[:400] if p else "%.1fs after start: %s" % (t, fmt_maps(pm)),
                more=logs(ws, lab) if p else [])
        ports = ext_ports(pm)
        try:
            rules = lab.dnat_rules()
        except Exception as e:
            rules = []
            Results.info("f nft", str(e))
        want = [("TCP", ports.get("TCP"), LAN_IP, PORT)] + (
            [("UDP", ports.get("UDP"), LAN_IP, PORT)] if "UDP" in ports else [])
        miss = [w for w in want if w not in rules]
        r.check(not miss, "f router: DNAT rule for TCP %s -> %s:%d%s" % (
            ports.get("TCP"), LAN_IP, PORT, " and UDP" if "UDP" in ports else ""),
            ("missing %s; " % miss if miss else "") + "nft: %s" % fmt_rules(rules), more=logs(ws, lab) if miss else [])
        check_site(r, "f site event after port_mapping, magnet x.pe=%s:%s" % (EXT, ports.get("TCP")), ws, lab, i,
                   ports.get("TCP"))
        stop_and_check_removed(r, "f SIGTERM: exit 0, port_mapping_removed before stopped", ws, lab)
        rules = lab.dnat_rules()
        left = [x for x in rules if x[2] == LAN_IP]
        r.check(not left, "f after shutdown: no DNAT rule", "nft: %s" % fmt_rules(rules),
                more=lab.log_tail() if left else [])


def http_get(lab, port, path):
    """GET http://localhost:PORT/PATH from inside the LAN namespace: (status, body)."""
    rc, out = run(lab.net.exec_prefix(lab.net.lan) + [
        "curl", "-sS", "--noproxy", "*", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}",
        "http://localhost:%d%s" % (port, path)], 10)
    body, _, code = (out or "").rpartition("\n")
    return (int(code) if code.strip().isdigit() else None), body


def case_g(r, args):
    lab = Lab(args, "g")
    ws = None
    try:
        ws = start_gateway(args, lab, "ws-g")
        _, gw = ws.wait_event(ev_is("gateway"), READY)
        i, pm, t = wait_outcome(r, "g gateway: port_mapping event", ws, lab)
        if pm is None:
            return
        p = mapping_problems(pm, "upnp", DESC, 3600, tcp_ext=PORT)
        r.check(not p, "g gateway: port_mapping event (upnp, TCP and UDP %d)" % PORT,
                "; ".join(p) + ": " + json.dumps(pm)[:400] if p else "%.1fs after start: %s" % (t, fmt_maps(pm)),
                more=logs(ws, lab) if p else [])
        if gw is None or not isinstance(gw.get("port"), int):
            r.fail("g gateway event", "no gateway event with a port: %s" % gw, more=logs(ws, lab))
            return
        port = gw["port"]
        ports = ext_ports(pm)
        seen = {}

        def status_ok():
            code, body = http_get(lab, port, "/api/status")
            seen["code"], seen["body"] = code, body
            try:
                st = json.loads(body)
            except ValueError:
                return False
            seen["st"] = st
            return st.get("peer_address") == "%s:%d" % (EXT, PORT) and \
                (st.get("port_mapping") or {}).get("method") == "upnp"
        ok = poll(status_ok, 3, 0.3)
        st = seen.get("st") or {}
        pmj = st.get("port_mapping") if isinstance(st.get("port_mapping"), dict) else {}
        p = []
        if not ok:
            p.append("peer_address %r, port_mapping %r (HTTP %s%s)" % (
                st.get("peer_address"), st.get("port_mapping"), seen.get("code"),
                "" if st else ", body %r" % seen.get("body", "")[:200]))
        else:
            if pmj.get("external_address") != EXT:
                p.append("port_mapping.external_address %r" % pmj.get("external_address"))
            if pmj.get("tcp") != ports.get("TCP") or pmj.get("udp") != ports.get("UDP"):
                p.append("port_mapping tcp %r udp %r, the event says %s" % (pmj.get("tcp"), pmj.get("udp"), ports))
        r.check(not p, "g /api/status: peer_address %s:%d, port_mapping.method upnp" % (EXT, PORT),
                "; ".join(p) if p else "peer_address %s, port_mapping %s" % (st.get("peer_address"), json.dumps(pmj)),
                more=logs(ws, lab) if p else [])
        code, body = http_get(lab, port, "/")
        r.check(code == 200 and EXT in body, "g status page http://localhost:%d/ shows %s" % (port, EXT),
                "HTTP %s, %d bytes%s" % (code, len(body), "" if EXT in body else ", no %s in it: %r" % (
                    EXT, re.sub(r"\s+", " ", body)[:300])), more=logs(ws, lab) if code != 200 else [])
        stop_and_check_removed(r, "g SIGTERM: exit 0, port_mapping_removed before stopped", ws, lab)
        check_router_has(r, "g after shutdown: upnpc -l lists nothing, no DNAT rule", lab, [], [], ws,
                         absent_rows=[(None, None, None, None)], absent_rules=[(None, None, None, None)])
    finally:
        if ws:
            ws.stop(timeout=STOP)
        close_lab(r, lab)


def case_off(r, args, case, flag):
    """h, o: with --no-upnp or --offline nothing reaches the router."""
    tag = "%s %s" % (case, flag)
    with lab_and_seed(r, args, case, "ws-" + case, lab=dict(natpmp=True), extra=[flag]) as (lab, ws):
        i, ready = ws.wait_event(ev_is("ready"), READY)
        if ready is None:
            r.fail(tag + ": ready", "no ready event within %d s (exit %s)" % (READY, ws.p.poll()),
                   more=logs(ws, lab))
            return
        t_ready = event_time(ws, i) - ws.t0
        # Anything port-mapping related that would come soon after ready.
        ws.wait_event(is_pm, 3, i + 1)
        pms = ws.event_times(is_pm)
        r.check(not pms, tag + ": ready (%.1fs after start) and no port_mapping* event" % t_ready,
                "%d port_mapping* events: %s" % (len(pms), json.dumps(pms[0][1])[:300]) if pms else
                "events: %s" % ", ".join(sorted({str(e.get('event')) for _, e in ws.event_times(lambda e: True)})),
                more=logs(ws, lab) if pms else [])
        heard = [l for l in lab.log_text().splitlines()
                 if ("M-SEARCH from %s" % LAN_IP) in l or ("HTTP REQUEST from [::ffff:%s]" % LAN_IP) in l
                 or "AddPortMapping" in l or ("NAT-PMP request received from %s" % LAN_IP) in l]
        r.check(not heard, tag + ": no SSDP, SOAP or NAT-PMP request reached miniupnpd",
                "%d: %s" % (len(heard), heard[:3]) if heard else "")
        check_router_has(r, tag + ": upnpc -l lists nothing, no DNAT rule", lab, [], [], ws,
                         absent_rows=[(None, None, None, None)], absent_rules=[(None, None, None, None)])
        stop_and_check_removed(r, tag + ": SIGTERM, exit 0", ws, lab, expect_maps=False)


def case_r(r, args):
    """The router restarts and forgets every mapping: webseed maps again at its next renewal."""
    lease = 20
    with lab_and_seed(r, args, "r", "ws-r", extra=["--upnp-lease", str(lease)]) as (lab, ws):
        i, pm, t = wait_outcome(r, "r port_mapping event", ws, lab)
        if pm is None:
            return
        ports = ext_ports(pm)
        want_rows = [("TCP", ports.get("TCP"), LAN_IP, PORT), ("UDP", ports.get("UDP"), LAN_IP, PORT)]
        check_router_has(r, "r before the restart: both mappings", lab, want_rows, [want_rows[0]], ws)
        # Restart right after a renewal, so that the next one (10 s later) cannot meet the
        # router half restarted.
        k, _ = ws.wait_event(ev_is("port_mapping_renewed"), lease, i + 1)
        if k is None:
            r.fail("r a first renewal", "none within %d s" % lease, more=logs(ws, lab))
            return
        lab.reboot_router()
        t_reboot = time.time()
        check_router_has(r, "r the restarted router holds no mapping", lab, [], [], ws,
                         absent_rows=[(None, None, None, None)], absent_rules=[(None, None, None, None)])
        n_before = k + 1
        # webseed renews every lease/2 = 10 s; the next one must put both mappings back.
        j, ev = ws.wait_event(lambda e: e.get("event") in ("port_mapping_renewed", "port_mapping"), lease, n_before)
        r.check(ev is not None and ext_ports(ev) == ports,
                "r webseed maps again on the restarted router at its next renewal, same ports",
                "%s %.1f s after the restart: %s" % (ev.get("event"), time.time() - t_reboot, fmt_maps(ev))
                if ev else "no renewal within %d s" % lease, more=[] if ev else logs(ws, lab))
        check_router_has(r, "r after the renewal: both mappings and the DNAT rule are back", lab, want_rows,
                         [want_rows[0]], ws)
        stop_and_check_removed(r, "r SIGTERM: exit 0, port_mapping_removed before stopped", ws, lab)


def case_h(r, args):
    case_off(r, args, "h", "--no-upnp")


def case_o(r, args):
    case_off(r, args, "o", "--offline")


def case_i(r, args):
    with lab_and_seed(r, args, "i", "ws-i", json_mode=False) as (lab, ws):

        def ready_idx():
            with ws.cond:
                return next((k + 1 for k, (_, l) in enumerate(ws.lines) if l.strip() == "ready"
                             or l.startswith("ready ")), None) or (not ws.alive() and -1)
        k = poll(ready_idx, READY, 0.1)
        with ws.cond:
            lines = [l for _, l in ws.lines]
        if not k or k < 0:
            r.fail("i text mode: ready line", "no \"ready\" line within %d s (exit %s)" % (READY, ws.p.poll()),
                   more=logs(ws, lab))
            return
        before = lines[:k - 1]
        pml = [l for l in before if l.startswith("port mapping: ")]
        ok = len(pml) == 1 and EXT in pml[0] and str(PORT) in pml[0]
        r.check(ok, "i text mode: exactly one \"port mapping: \" line with %s and %d before \"ready\"" % (EXT, PORT),
                ("%d such lines: %s" % (len(pml), pml[:3]) if len(pml) != 1 else pml[0]),
                more=[] if ok else ["[stdout] " + l for l in before[-15:]] + lab.log_tail())
        stop_and_check_removed(r, "i text mode: SIGTERM, exit 0", ws, lab, expect_maps=False)
        with ws.cond:
            after = [l for _, l in ws.lines[k:] if "port mapping" in l]
        if after:
            Results.info("i text mode: after ready", " | ".join(after[:3]))
        check_router_has(r, "i after shutdown: upnpc -l lists nothing, no DNAT rule", lab, [], [], ws,
                         absent_rows=[(None, None, None, None)], absent_rules=[(None, None, None, None)])


def close_lab(r, lab):
    problems = lab.close()
    r.check(not problems, "%s namespaces and miniupnpd gone (RouterLab.delete)" % lab.case,
            "; ".join(problems))


# ---------------------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webseed", default=os.path.join(ROOT, ".build", "debug", "webseed"))
    ap.add_argument("--sample", default=os.path.join(ROOT, "Samples", "site"))
    ap.add_argument("--work", default="/tmp/webseed-upnp")
    add_only(ap, ALL_CASES)
    ap.add_argument("--standin", action="store_true",
                    help="webseedtest/upnp_standin.py instead of webseed (validates the harness)")
    args = ap.parse_args()
    cases = chosen_cases(ap, args, ALL_CASES)
    args.webseed = os.path.abspath(args.webseed)
    args.sample = os.path.abspath(args.sample)
    args.work = os.path.abspath(args.work)
    args.site_name = os.path.basename(args.sample)
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces)")
    missing = [t for t in ("miniupnpd", "upnpc", "nft", "curl", "ip") if not shutil.which(t)]
    if missing:
        ap.error("missing tools: %s (Tools/setup installs them)" % ", ".join(missing))
    if not os.path.isdir(args.sample):
        ap.error("no sample directory %s" % args.sample)
    os.umask(0o022)
    fresh_dirs(args.work, ("logs", "state", "dl"), make=("logs",))
    args.logdir = os.path.join(args.work, "logs")

    def on_term(signum, frame):
        raise Interrupted("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.signal(signal.SIGINT, on_term)

    print("# %s; cases %s; work %s" % ("stand-in webseedtest/upnp_standin.py" if args.standin else "webseed " + args.webseed,
                                        ",".join(cases), args.work), flush=True)
    r = Results()
    t0 = time.time()
    try:
        if not args.standin:
            rc, out = run([args.webseed, "seed", "--help"], 20)
            if rc is None or "--upnp-lease" not in out:
                r.fail("webseed binary with port mapping", "%s seed --help does not list --upnp-lease%s" % (
                    args.webseed, "" if rc is not None else " (timed out)"))
                cases = []
        for c in cases:
            if c in ("a", "b", "c"):
                if c == next(x for x in cases if x in ("a", "b", "c")):
                    run_case(r, case_abc, args, cases)
            else:
                run_case(r, globals()["case_" + c], args)
    except (KeyboardInterrupt, Interrupted) as e:
        r.fail("run interrupted", str(e) or "Ctrl-C")
    finally:
        Proc.kill_all()
        for lab in LABS:
            try:
                problems = lab.close()
            except Exception as e:
                problems = [str(e)]
            if problems:
                print("cleanup %s: %s" % (lab.case, "; ".join(problems)), flush=True)
    if LEASE_NOTES:
        Results.info("leases reported below the lease asked (accepted, within %d s)" % LEASE_SLACK,
                     "%d times, e.g. %s" % (len(LEASE_NOTES), "; ".join(sorted(set(LEASE_NOTES))[:4])))
    Results.info("total time", "%.1fs; logs in %s" % (time.time() - t0, args.logdir))
    print(r.summary(), flush=True)
    return 1 if r.failed else 0


def run_case(r, fn, args, *extra):
    t = time.time()
    try:
        fn(r, args, *extra)
    except (KeyboardInterrupt, Interrupted):
        raise
    except Exception as e:
        import traceback
        r.fail("%s raised %s" % (fn.__name__, type(e).__name__), str(e)[:400],
               more=traceback.format_exc().splitlines()[-6:])
    Results.info(fn.__name__, "%.1fs" % (time.time() - t))


if __name__ == "__main__":
    sys.exit(main())
