#!/usr/bin/env python3
"""webseed against BAD UPnP routers (notes/upnp-contract.md, issue 7).

  /usr/bin/python3 Tools/interop/upnp_fake.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/upnp-fake

Builds three throw-away network namespaces (webseedtest/netns.py RouterLab, no firewall): router
(10.77.0.1 on lan0), lan (10.77.0.2, default route via the router), wan. In the router
namespace runs a fake UPnP Internet Gateway Device written here (webseedtest/fake_igd.py: SSDP on
239.255.255.250:1900, the device description and SOAP control of WANIPConnection:1 with a
mapping table), one per case, each on its own HTTP port. webseed always runs in the lan
namespace:

  ip netns exec LAN webseed seed SAMPLE --listen 0.0.0.0:6881 --no-gateway --json
      --state-dir WORK/state --dht-bootstrap 10.77.0.1:6999 [--upnp-lease 4]

(never --offline: it turns port mapping off). Cases, in order:

  fake        the fake in GOOD mode is realistic enough for miniupnpc's own client:
              `upnpc -s`, `upnpc -a 10.77.0.2 7000 7000 TCP 60`, `upnpc -l`,
              `upnpc -d 7000 TCP` (in the lan namespace) all succeed and the fake's table
              follows. This validates the fake before webseed meets it.
  help        `webseed seed --help` lists --upnp-lease (else the webseed cases are skipped).
  silent      no fake at all (nothing answers SSDP, nothing on NAT-PMP's port):
              port_mapping_failed reason no_router, method/router null, within 15 s; the
              message says "no UPnP or NAT-PMP router found" and to forward the port by hand.
  text        the same without --json: exactly one line (stdout or stderr) starting
              "port mapping:" or "webseed: warning: port mapping:", explaining it.
  malformed-truncated / -garbage / -notigd
              SSDP answers, the description is cut inside the WANIPConnection service /
              not XML / a well-formed MediaServer (no WAN services): a port_mapping_failed
              (no_router; for the truncated one, where libminiupnpc still reports a "not
              connected IGD", no_router or no_answer), never a port_mapping.
  soap_fault  AddPortMapping answers UPnPError 501 ActionFailed: reason refused, method
              upnp, router = the description URL, the message has 501.
  conflict    AddPortMapping always answers 718 ConflictInMappingEntry: reason refused, the
              message has 718, webseed tried more than one external port but a bounded
              number (at most 16 per protocol) and none after giving up.
  disappears  GOOD mode with --upnp-lease 4: port_mapping (method upnp, router, external
              1.2.3.4, local 10.77.0.2, TCP and UDP 6881, leases <= 4, in the fake's table
              too; the site magnet has x.pe=1.2.3.4:PORT) and a port_mapping_renewed; then
              the fake is killed (SIGKILL: SSDP and HTTP gone): port_mapping_failed reason
              lost within 15 s, its message one line with the cause; SIGTERM still ends
              webseed within 10 s, with no port_mapping_removed (no router confirmed it).
  stall       SSDP and the description fine, every SOAP POST accepted and never answered:
              a port_mapping_failed reason no_answer within 40 s, no port_mapping; the
              magnet is printed after at most 10 s even though the outcome comes later.
  stall-sigterm-first / stall-sigterm-mapping
              the same fake; SIGTERM sent while a SOAP call is held open (the first one,
              with libminiupnpc discovery's GetStatusInfo; then, if the stall case saw one, the
              first call after it: GetExternalIPAddress, GetSpecificPortMappingEntry …):
              exit 0 within 8 s (the contract's 5 s wait for the router at shutdown, plus
              3 s) and a stopped event. While the later call is held, a BitTorrent
              handshake to webseed is answered (router calls never block peers).

In every webseed case: the site and ready events came, after the first port-mapping
outcome (or, in the stall case, after webseed's 10 s cap on waiting for it); after the failure webseed still seeds, proved by a
BitTorrent handshake from inside the lan namespace to 10.77.0.2:PORT with the site's v1
(else truncated v2) info hash, answered with webseed's handshake for the same hash; SIGTERM
ends it with exit 0 within 10 s and a stopped event.

Bounded waits everywhere (a 290 s watchdog on top); children are killed and the namespaces
deleted at the end, also on errors. Prints `ok ...` / `FAIL ...` / `info ...` lines and last
`N passed, M failed`; exits 1 if any check failed.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

from webseedtest.netns import RouterLab
from webseedtest.procs import poll, Proc, program
from webseedtest.results import Results
from webseedtest.watchdog import Watchdog

R = Results()
PY = sys.executable or "/usr/bin/python3"
ROUTER_IP = RouterLab.ROUTER_LAN
LAN_IP = RouterLab.LAN_IP
EXTERNAL_IP = RouterLab.EXTERNAL_IP
DHT_BOOTSTRAP = "%s:6999" % ROUTER_IP
WATCHDOG = 290

OUTCOME_BOUND = 15          # first outcome (contract: <= ~8 s); silent: ~15 s
STALL_BOUND = 40            # a router that never answers SOAP
LOST_BOUND = 15             # renewals every 2 s, then the failure
STOP_BOUND = 10             # SIGTERM -> exit
STALL_STOP_BOUND = 8        # SIGTERM during a held SOAP call: the contract's 5 s wait for
                            # the router at shutdown, plus 3 s
STOP_GRACE = 10             # ... and how much longer a slow exit is waited for, to measure it
SITE_BOUND = 15             # site/ready after the outcome
START_CAP = 10              # webseed prints the magnet after the first outcome or this many seconds
MAX_ADDS_PER_PROTO = 16     # conflict: "a bounded number of candidates"

HANDSHAKE = r"""
import json, socket, sys, time
host, port, ih = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
out = {"ok": False}
try:
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(5)
    s.sendall(b"\x13BitTorrent protocol" + bytes(8) + ih + b"-UF0001-upnpfake0001")
    buf = b""
    deadline = time.time() + 5
    while len(buf) < 68 and time.time() < deadline:
        d = s.recv(68 - len(buf))
        if not d:
            break
        buf += d
    s.close()
    out["got"] = len(buf)
    out["pstr_ok"] = buf[:20] == b"\x13BitTorrent protocol"
    out["infohash"] = buf[28:48].hex()
    out["peer_id"] = repr(buf[48:68])
    out["ok"] = len(buf) == 68 and out["pstr_ok"] and buf[28:48] == ih
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
"""


class Skip(Exception):
    pass


class Ctx:
    def __init__(self, args):
        self.binary = os.path.abspath(args.webseed)
        self.sample = os.path.abspath(args.sample)
        self.work = os.path.abspath(args.work)
        self.state = os.path.join(self.work, "state")
        self.logs = os.path.join(self.work, "logs")
        self.lab = None
        self.http_port = 5554
        self.infohash = None        # hex, 40 chars: v1 or truncated v2
        self.seed_port = 6881
        self.later_stall_actions = []   # SOAP actions after GetStatusInfo held in the stall case

    def next_port(self):
        self.http_port += 1
        return self.http_port


# ---------------------------------------------------------------------------------------
# helpers

def events_of(proc, pred=None):
    """Snapshot of (absolute time, event) pairs of a Proc."""
    with proc.cond:
        evs = list(proc.events)
    return [(t, e) for t, e in evs if pred is None or pred(e)]


def index_of(proc, name):
    with proc.cond:
        for i, (_, e) in enumerate(proc.events):
            if e.get("event") == name:
                return i
    return None


def start_fake(ctx, case, mode, variant=None):
    port = ctx.next_port()
    argv = ctx.lab.exec_prefix(ctx.lab.router) + program("fake_igd", PY) + ["--mode", mode, "--ip", ROUTER_IP,
                                                  "--port", str(port), "--external", EXTERNAL_IP]
    if variant:
        argv += ["--variant", variant]
    f = Proc("fake-" + case, argv, ctx.logs, cwd=ctx.work)
    _, ev = f.wait_event(lambda e: e.get("event") == "ready", 10)
    if ev is None:
        R.fail("%s: the fake IGD starts (mode %s)" % (case, mode), more=f.log_tail(10))
        f.stop(signal.SIGKILL, 3)
        raise Skip()
    f.location = ev["location"]
    return f


def fake_summary(f):
    """'SSDP 1 (IGD:1), GET /rootDesc.xml 1, GetStatusInfo 1 (0), AddPortMapping 8 (718) …'"""
    counts = {}
    order = []

    def bump(key):
        if key not in counts:
            order.append(key)
            counts[key] = 0
        counts[key] += 1
    for _, e in events_of(f):
        k = e.get("event")
        if k == "ssdp":
            bump("M-SEARCH %s" % e.get("st", "").replace("urn:schemas-upnp-org:", ""))
        elif k == "http":
            bump("%s %s -> %s" % (e.get("method"), e.get("path"), e.get("status")))
        elif k == "soap":
            bump("%s -> %s" % (e.get("action"), e.get("status") or "ok"))
        elif k == "stalled":
            bump("%s stalled" % e.get("action"))
        elif k == "stall_end":
            bump("stall ended (%s, held %ss)" % (e.get("how"), e.get("held")))
    return ", ".join("%s x%d" % (k, counts[k]) for k in order) or "nothing"


def start_webseed(ctx, case, extra=(), json_mode=True):
    argv = ctx.lab.exec_prefix(ctx.lab.lan) + [
        ctx.binary, "seed", ctx.sample, "--listen", "0.0.0.0:6881", "--no-gateway"]
    if json_mode:
        argv.append("--json")
    argv += ["--state-dir", ctx.state, "--dht-bootstrap", DHT_BOOTSTRAP] + list(extra)
    R.info("%s: webseed" % case, " ".join(argv[4:]))
    return Proc("webseed-" + case, argv, ctx.logs, cwd=ctx.work)


def is_outcome(e):
    return e.get("event") in ("port_mapping", "port_mapping_failed")


def wait_outcome(w, timeout):
    i, ev = w.wait_event(is_outcome, timeout)
    took = None
    if ev is not None:
        took = next(t for t, e in events_of(w) if e is ev) - w.t0
    return i, ev, took


def one_line(msg):
    return isinstance(msg, str) and msg.strip() != "" and "\n" not in msg and "\r" not in msg


def describe_event(ev):
    if ev is None:
        return "none"
    return json.dumps(ev)[:400]


def check_failed(case, w, ev, took, bound, reasons, needles, method="any", router="any", needle_text=None):
    """The first outcome is a port_mapping_failed with a reason in `reasons`, within bound;
    its message is one line and (case-insensitively) contains every string in needles."""
    ok = (ev is not None and ev.get("event") == "port_mapping_failed" and ev.get("reason") in reasons
          and took is not None and took <= bound)
    R.check(ok, "%s: port_mapping_failed, reason %s, within %d s" % (case, " or ".join(reasons), bound),
            "after %.1f s: %s" % (took, describe_event(ev)) if ev is not None else
            "no port_mapping / port_mapping_failed within %d s (exit %s)" % (bound, w.p.poll()),
            more=[] if ok else w.log_tail(12))
    if ev is None:
        return False
    problems = []
    if method != "any" and ev.get("method") != method:
        problems.append("method %r, expected %r" % (ev.get("method"), method))
    if router != "any" and ev.get("router") != router:
        problems.append("router %r, expected %r" % (ev.get("router"), router))
    for k in ("reason", "method", "router", "message"):
        if k not in ev:
            problems.append("no %r field" % k)
    msg = ev.get("message")
    if not one_line(msg):
        problems.append("message is not one non-empty line: %r" % (msg,))
    else:
        low = msg.lower()
        missing = [n for n in needles if n.lower() not in low]
        if missing:
            problems.append("message does not mention %s" % ", ".join(repr(m) for m in missing))
    R.check(not problems, "%s: the failure names its cause in one line (%s)" % (
        case, needle_text or ", ".join(needles) or "fields method/router/message"),
        "message %r%s" % (msg, ("; " + "; ".join(problems)) if problems else ""))
    return ok


def check_no_mapping_claimed(case, w, f=None):
    claims = events_of(w, lambda e: e.get("event") in ("port_mapping", "port_mapping_renewed"))
    table = []
    if f is not None:
        soaps = events_of(f, lambda e: e.get("event") == "soap" and "table" in e)
        table = soaps[-1][1]["table"] if soaps else []
    R.check(not claims and not table, "%s: no mapping claimed (and none in the fake's table)" % case,
            "claims: %s; fake's table: %s" % ([e for _, e in claims][:2], table))


def handshake(ctx, port, ih_hex):
    argv = ctx.lab.exec_prefix(ctx.lab.lan) + [PY, "-c", HANDSHAKE, LAN_IP, str(port), ih_hex]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        out = p.stdout.decode(errors="replace").strip().splitlines()
        return json.loads(out[-1]) if out else {"ok": False, "error": "no output"}
    except Exception as e:
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}


def site_infohash(site):
    v1 = site.get("v1_infohash") if site else None
    if isinstance(v1, str) and re.fullmatch(r"[0-9a-f]{40}", v1):
        return v1, "v1"
    v2 = site.get("v2_infohash") if site else None
    if isinstance(v2, str) and re.fullmatch(r"[0-9a-f]{64}", v2):
        return v2[:40], "truncated v2"
    m = re.search(r"xt=urn:btih:([0-9a-fA-F]{40})", (site or {}).get("magnet", ""))
    if m:
        return m.group(1).lower(), "v1 (magnet)"
    return None, None


def check_seeding(ctx, case, w, outcome_idx, capped=False):
    """site and ready came (after the outcome, or with capped=True after the 10 s start-up cap
    on waiting for it, when the outcome takes longer); a handshake from the lan namespace
    after the failure is answered."""
    _, site = w.wait_event(lambda e: e.get("event") == "site", SITE_BOUND)
    _, ready = w.wait_event(lambda e: e.get("event") == "ready", SITE_BOUND)
    _, lis = w.wait_event(lambda e: e.get("event") == "listening", 1)
    si, ri = index_of(w, "site"), index_of(w, "ready")
    evs = events_of(w)

    def at(k):
        return " at %.1f s" % (evs[k][0] - w.t0) if k is not None and k < len(evs) else ""
    problems = []
    if site is None:
        problems.append("no site event")
    if ready is None:
        problems.append("no ready event")
    if capped and outcome_idx is not None and si is not None and si < outcome_idx:
        # webseed waits at most 10 s for the first outcome before printing the magnet.
        if evs[si][0] - w.t0 < START_CAP - 0.5:
            problems.append("site came at %.1f s, before the outcome and before the %d s cap" % (evs[si][0] - w.t0, START_CAP))
    elif outcome_idx is not None and si is not None and si < outcome_idx:
        problems.append("site (#%d%s) came before the first port-mapping outcome (#%d%s)" % (
            si, at(si), outcome_idx, at(outcome_idx)))
    if si is not None and ri is not None and ri < si:
        problems.append("ready came before site")
    R.check(not problems, "%s: site and ready events, after the first port-mapping outcome" % case,
            "; ".join(problems) or "outcome #%s, site #%s, ready #%s" % (outcome_idx, si, ri),
            more=[] if not problems else w.log_tail(8))
    port = lis.get("port") if lis and isinstance(lis.get("port"), int) else 6881
    ih, kind = site_infohash(site)
    if ih is None:
        ih, kind = ctx.infohash, "from an earlier run"
    else:
        ctx.infohash = ih
    if ih is None:
        R.fail("%s: webseed still seeds (handshake)" % case, "no info hash known")
        return
    hs = handshake(ctx, port, ih)
    R.check(hs.get("ok") and w.alive(),
            "%s: webseed still seeds after the failure: BitTorrent handshake from the lan namespace answered" % case,
            "%s:%d, %s hash %s…: %s%s" % (LAN_IP, port, kind, ih[:12], json.dumps(hs),
                                         "" if w.alive() else " (webseed exited: %s)" % w.p.poll()),
            more=[] if hs.get("ok") else w.log_tail(8))


def check_stop(case, w, note="", bound=None):
    """SIGTERM: exit 0 within bound (default STOP_BOUND) and a stopped event. A slower exit
    is waited for up to STOP_GRACE more seconds, so that the report says how long it took."""
    bound = bound or STOP_BOUND
    if not w.alive():
        R.fail("%s: SIGTERM -> exit 0 within %d s, stopped event" % (case, bound),
               "webseed had already exited (status %s)" % w.p.poll(), more=w.log_tail(12))
        w.stop(signal.SIGTERM, 1)
        return
    n_before = len(events_of(w))
    t = time.time()
    try:
        w.p.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    rc = w.wait(bound + STOP_GRACE)
    took = time.time() - t
    w.stop(signal.SIGKILL, 3)      # closes the logs; kills it if it is still there
    stopped = index_of(w, "stopped")
    after = [e for _, e in events_of(w) if e.get("event", "").startswith("port_mapping")]
    tailing = [e.get("event") + ("(%s)" % e.get("reason") if e.get("reason") else "") for e in after[-2:]]
    late = [e.get("event") for _, e in events_of(w)[n_before:] if e.get("event") in ("site", "ready")]
    ok = rc == 0 and took <= bound and stopped is not None
    R.check(ok, "%s: SIGTERM -> exit 0 within %d s, stopped event%s" % (case, bound, note),
            "exit %s after %.2f s, stopped event %s; last port-mapping events: %s%s" % (
                rc if rc is not None else "none (killed after %d s)" % (bound + STOP_GRACE), took,
                "yes" if stopped is not None else "NO", ", ".join(tailing) or "none",
                "; announced after the SIGTERM: %s" % ", ".join(late) if late else ""),
            more=[] if ok else w.log_tail(12))


def stop_fake(f):
    if f is not None and f.alive():
        f.stop(signal.SIGTERM, 3)


# ---------------------------------------------------------------------------------------
# cases

@contextlib.contextmanager
def fake_and_webseed(ctx, case, mode, variant=None, extra=(), json_mode=True):
    """A fake router in `mode`, then webseed behind it; both gone at the end, whatever happens."""
    f = start_fake(ctx, case, mode, variant)
    w = None
    try:
        w = start_webseed(ctx, case, extra=extra, json_mode=json_mode)
        yield f, w
    finally:
        if w is not None:
            w.kill()
        stop_fake(f)


def case_fake(ctx):
    """The fake in GOOD mode against miniupnpc's own client."""
    f = start_fake(ctx, "upnpc", "good")
    try:
        lab = ctx.lab

        def upnpc(*a):
            t = time.time()
            out = lab.run(lab.lan, ["upnpc"] + list(a), timeout=30, check=False)
            return out, time.time() - t

        def table(action, since):
            """The fake's table as of its `action` call (its log line may trail upnpc's exit)."""
            f.wait_event(lambda e: e.get("event") == "soap" and e.get("action") == action, 5, since)
            soaps = events_of(f, lambda e: e.get("event") == "soap" and "table" in e)
            return soaps[-1][1]["table"] if soaps else []
        out, took = upnpc("-s")
        R.check("Found valid IGD : http://%s:%d/ctl/IPConn" % (ROUTER_IP, ctx.http_port) in out
                and "ExternalIPAddress = %s" % EXTERNAL_IP in out and "Status : Connected" in out
                and "Local LAN ip address : %s" % LAN_IP in out,
                "fake: `upnpc -s` finds it as a valid, connected IGD with external address %s" % EXTERNAL_IP,
                "%.1f s" % took, more=out.strip().splitlines()[-12:])
        n = len(events_of(f))
        out, took = upnpc("-a", LAN_IP, "7000", "7000", "TCP", "60")
        t = table("AddPortMapping", n)
        R.check(re.search(r"external %s:7000 TCP is redirected to internal %s:7000 \(duration=(59|60)\)"
                          % (re.escape(EXTERNAL_IP), re.escape(LAN_IP)), out) is not None
                and any(m["protocol"] == "TCP" and m["external_port"] == 7000 and m["client"] == LAN_IP
                        and m["internal_port"] == 7000 and m["lease"] == 60 for m in t),
                "fake: `upnpc -a %s 7000 7000 TCP 60` maps (AddPortMapping + GetSpecificPortMappingEntry)" % LAN_IP,
                "table %s" % t, more=out.strip().splitlines()[-6:])
        out, took = upnpc("-l")
        R.check(re.search(r"\b0 TCP\s+7000->%s:7000\s+'libminiupnpc' '' (5\d|60)" % re.escape(LAN_IP), out)
                and "GetGenericPortMappingEntry() returned 713 (SpecifiedArrayIndexInvalid)" in out,
                "fake: `upnpc -l` lists the mapping (GetGenericPortMappingEntry, then 713 at the end)",
                more=out.strip().splitlines()[-5:])
        n = len(events_of(f))
        out, took = upnpc("-d", "7000", "TCP")
        t = table("DeletePortMapping", n)
        R.check("UPNP_DeletePortMapping() returned : 0" in out and not t,
                "fake: `upnpc -d 7000 TCP` deletes it", "table now %s" % t, more=out.strip().splitlines()[-4:])
        out, took = upnpc("-l")
        R.check(" 0 TCP" not in out and "returned 713" in out, "fake: `upnpc -l` then lists nothing",
                more=out.strip().splitlines()[-4:])
        R.info("fake: calls seen", fake_summary(f))
    finally:
        stop_fake(f)


def case_help(ctx):
    out = ctx.lab.run(ctx.lab.lan, [ctx.binary, "seed", "--help"], timeout=30, check=False)
    has = "--upnp-lease" in out
    R.check(has, "help: `webseed seed --help` lists --upnp-lease (the port-mapping build)",
            "" if has else "not listed: this webseed has no port mapping yet",
            more=[] if has else out.strip().splitlines()[-6:])
    return has


def case_silent(ctx):
    case = "silent"
    w = start_webseed(ctx, case)
    try:
        i, ev, took = wait_outcome(w, OUTCOME_BOUND)
        check_failed(case, w, ev, took, OUTCOME_BOUND, ["no_router"],
                     ["no UPnP or NAT-PMP router found", "by hand"], method=None, router=None,
                     needle_text='"no UPnP or NAT-PMP router found", forward … by hand')
        if ev is not None:
            msg = ev.get("message") or ""
            R.check("6881" in msg and "forward" in msg.lower(),
                    "%s: the message says which port to forward (6881)" % case, repr(msg))
        check_no_mapping_claimed(case, w)
        check_seeding(ctx, case, w, i)
        check_stop(case, w)
    finally:
        w.kill()


def read_text(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def case_text(ctx):
    case = "text"
    w = start_webseed(ctx, case, json_mode=False)
    prefixes = ("port mapping:", "webseed: warning: port mapping:")
    try:
        def lines():
            with w.cond:
                out = [l for _, l in w.lines]
            err = read_text(w.err_path).splitlines()
            return ([("stdout", l) for l in out if l.startswith(prefixes)]
                    + [("stderr", l) for l in err if l.startswith(prefixes)])
        got = poll(lines, OUTCOME_BOUND, 0.2)
        took = time.time() - w.t0
        R.check(bool(got), "%s: a \"port mapping: …\" line within %d s (no --json)" % (case, OUTCOME_BOUND),
                "after %.1f s" % took if got else "none", more=[] if got else w.log_tail(10))
        # still seeding: a handshake (the info hash from the JSON runs; the port from the text)
        with w.cond:
            out = [l for _, l in w.lines]
        port = 6881
        for l in out + read_text(w.err_path).splitlines():
            m = re.search(r"listening on \S+:(\d+)", l)
            if m:
                port = int(m.group(1))
                break
        if got and ctx.infohash:
            hs = handshake(ctx, port, ctx.infohash)
            R.check(hs.get("ok") and w.alive(), "%s: webseed still seeds (handshake answered)" % case,
                    "%s:%d: %s" % (LAN_IP, port, json.dumps(hs)))
        rc, took = w.stop(signal.SIGTERM, STOP_BOUND)
        R.check(rc == 0, "%s: SIGTERM -> exit 0 within %d s" % (case, STOP_BOUND),
                "exit %s after %.2f s" % (rc, took), more=[] if rc == 0 else w.log_tail(10))
        final = lines()
        streams = sorted(set(s for s, _ in final))
        ok = len(final) == 1
        line = final[0][1] if final else ""
        R.check(ok, "%s: exactly one \"port mapping:\" line for the whole run" % case,
                "%d: %s" % (len(final), "; ".join("[%s] %s" % x for x in final)[:500]))
        R.check(ok and "no UPnP or NAT-PMP router found".lower() in line.lower() and "by hand" in line.lower(),
                "%s: the line explains the failure (no router found; forward the port by hand)" % case,
                repr(line))
        R.info("%s: the port mapping line went to" % case, ", ".join(streams) or "nowhere")
        other = [l for _, l in [("o", x) for x in out] + [("e", x) for x in read_text(w.err_path).splitlines()]
                 if "port mapping" in l.lower() and not l.startswith(prefixes)]
        if other:
            R.info("%s: other lines mentioning port mapping" % case, "; ".join(other)[:300])
    finally:
        w.kill()


def case_malformed(ctx, variant):
    case = "malformed-" + variant
    with fake_and_webseed(ctx, case, "malformed", variant) as (f, w):
        i, ev, took = wait_outcome(w, OUTCOME_BOUND)
        reasons = ["no_router", "no_answer"] if variant == "truncated" else ["no_router"]
        needles = ["no UPnP or NAT-PMP router found"] if (ev or {}).get("reason") == "no_router" else []
        check_failed(case, w, ev, took, OUTCOME_BOUND, reasons, needles)
        # The fake logs a request after answering it: its line may trail webseed's outcome.
        f.wait_event(lambda e: e.get("event") == "http" and e.get("path") == "/rootDesc.xml", 5)
        got_ssdp = events_of(f, lambda e: e.get("event") == "ssdp" and e.get("answered"))
        got_desc = events_of(f, lambda e: e.get("event") == "http" and e.get("path") == "/rootDesc.xml")
        R.check(bool(got_ssdp) and bool(got_desc),
                "%s: webseed met the broken description (its M-SEARCH answered, rootDesc.xml fetched)" % case,
                fake_summary(f))
        check_no_mapping_claimed(case, w, f)
        check_seeding(ctx, case, w, i)
        check_stop(case, w)


def soap_calls(f, action=None):
    return events_of(f, lambda e: e.get("event") == "soap" and (action is None or e.get("action") == action))


def case_soap_fault(ctx):
    case = "soap_fault"
    with fake_and_webseed(ctx, case, "soap_fault") as (f, w):
        i, ev, took = wait_outcome(w, OUTCOME_BOUND)
        check_failed(case, w, ev, took, OUTCOME_BOUND, ["refused"], ["501"], method="upnp", router=f.location,
                     needle_text="501, method upnp, router %s" % f.location)
        f.wait_event(lambda e: e.get("event") == "soap" and e.get("action") == "AddPortMapping", 5)
        adds = soap_calls(f, "AddPortMapping")
        R.check(len(adds) >= 1, "%s: webseed asked AddPortMapping (and got 501)" % case, fake_summary(f))
        check_no_mapping_claimed(case, w, f)
        check_seeding(ctx, case, w, i)
        check_stop(case, w)


def case_conflict(ctx):
    case = "conflict"
    with fake_and_webseed(ctx, case, "conflict_always") as (f, w):
        i, ev, took = wait_outcome(w, OUTCOME_BOUND + 10)
        check_failed(case, w, ev, took, OUTCOME_BOUND + 10, ["refused"], ["718"], method="upnp", router=f.location,
                     needle_text="718, method upnp, router %s" % f.location)
        t_fail = next((t for t, e in events_of(w) if e is ev), None)
        check_no_mapping_claimed(case, w, f)
        check_seeding(ctx, case, w, i)
        adds = soap_calls(f, "AddPortMapping")
        by_proto = {}
        for _, e in adds:
            a = e.get("args", {})
            by_proto.setdefault(a.get("NewProtocol", "?"), []).append(a.get("NewExternalPort"))
        R.info("%s: AddPortMapping external ports tried" % case,
               "; ".join("%s: %s" % (k, ", ".join(v)) for k, v in sorted(by_proto.items())) or "none")
        most = max((len(v) for v in by_proto.values()), default=0)
        distinct = max((len(set(v)) for v in by_proto.values()), default=0)
        R.check(distinct >= 2 and most <= MAX_ADDS_PER_PROTO,
                "%s: webseed moved to other external ports, a bounded number (2..%d per protocol)" % (
                    case, MAX_ADDS_PER_PROTO),
                "at most %d AddPortMapping per protocol, %d distinct ports" % (most, distinct))
        if t_fail is not None:
            late = [e for t, e in adds if t > t_fail + 1.0]
            R.check(not late, "%s: no AddPortMapping after giving up (until SIGTERM, %.1f s later)" % (
                case, time.time() - t_fail), "%d late" % len(late))
        check_stop(case, w)
        R.info("%s: calls seen" % case, fake_summary(f))


def case_disappears(ctx):
    case = "disappears"
    with fake_and_webseed(ctx, case, "good", extra=["--upnp-lease", "4"]) as (f, w):
        i, ev, took = wait_outcome(w, OUTCOME_BOUND)
        mapped = ev is not None and ev.get("event") == "port_mapping"
        R.check(mapped, "%s: port_mapping within %d s (GOOD router)" % (case, OUTCOME_BOUND),
                "after %.1f s: %s" % (took, describe_event(ev)) if ev else "no outcome",
                more=[] if mapped else w.log_tail(12) + ["fake: " + fake_summary(f)])
        if not mapped:
            check_stop(case, w)
            return
        _, lis = w.wait_event(lambda e: e.get("event") == "listening", 1)
        port = lis.get("port", 6881) if lis else 6881
        maps = ev.get("mappings") or []
        tcp = next((m for m in maps if m.get("protocol") == "TCP"), None)
        udp = next((m for m in maps if m.get("protocol") == "UDP"), None)
        problems = []
        for k, want in (("method", "upnp"), ("router", f.location), ("external_address", EXTERNAL_IP),
                        ("local_address", LAN_IP)):
            if ev.get(k) != want:
                problems.append("%s %r, expected %r" % (k, ev.get(k), want))
        for name, m in (("TCP", tcp), ("UDP", udp)):
            if m is None:
                problems.append("no %s mapping" % name)
                continue
            if m.get("internal_port") != port:
                problems.append("%s internal_port %r, expected %d" % (name, m.get("internal_port"), port))
            if not isinstance(m.get("external_port"), int):
                problems.append("%s external_port %r" % (name, m.get("external_port")))
            if not (isinstance(m.get("lease"), int) and 0 < m["lease"] <= 4):
                problems.append("%s lease %r, expected 1..4" % (name, m.get("lease")))
        R.check(not problems, "%s: the port_mapping event's fields (upnp, router URL, %s, %s, TCP+UDP %d, lease <= 4)"
                % (case, EXTERNAL_IP, LAN_IP, port), "; ".join(problems) or json.dumps(maps))
        def holds_both(table):
            return all(any(t["protocol"] == m["protocol"] and t["external_port"] == m.get("external_port")
                           and t["client"] == LAN_IP and t["internal_port"] == m.get("internal_port")
                           and t["lease"] == 4 for t in table) for m in (tcp, udp) if m)
        # The fake's log line for the last call may trail webseed's event: wait for it (bounded).
        _, e = f.wait_event(lambda e: e.get("event") == "soap" and holds_both(e.get("table") or []), 5)
        soaps = soap_calls(f)
        table = (e or (soaps[-1][1] if soaps else {})).get("table", [])
        in_table = holds_both(table)
        R.check(in_table and tcp and udp, "%s: the fake's table holds both mappings for %s, lease 4" % (case, LAN_IP),
                json.dumps(table))
        _, site = w.wait_event(lambda e: e.get("event") == "site", SITE_BOUND)
        xpe = "x.pe=%s:%s" % (EXTERNAL_IP, tcp.get("external_port") if tcp else "?")
        R.check(site is not None and xpe in (site.get("magnet") or ""),
                "%s: the site magnet has %s" % (case, xpe), (site or {}).get("magnet", "no site event"))
        _, ren = w.wait_event(lambda e: e.get("event") == "port_mapping_renewed", 6, start=i + 1)
        R.check(ren is not None, "%s: port_mapping_renewed within 6 s (lease 4 -> renew every ~2 s)" % case,
                "%d renewals so far" % len(events_of(w, lambda e: e.get("event") == "port_mapping_renewed")))
        # the router goes away
        n = len(events_of(w))
        t_kill = time.time()
        f.stop(signal.SIGKILL, 5)
        R.info("%s: fake killed (SIGKILL) %.1f s after webseed started" % (case, t_kill - w.t0),
               "calls seen: " + fake_summary(f))
        _, lost = w.wait_event(lambda e: e.get("event") == "port_mapping_failed", LOST_BOUND, start=n)
        t_lost = next((t for t, e in events_of(w) if e is lost), None)
        ok = lost is not None and lost.get("reason") == "lost"
        R.check(ok, "%s: port_mapping_failed reason lost within %d s of the router vanishing" % (case, LOST_BOUND),
                "after %.1f s: %s" % (t_lost - t_kill, describe_event(lost)) if lost else
                "nothing within %d s (exit %s)" % (LOST_BOUND, w.p.poll()),
                more=[] if ok else w.log_tail(10))
        if lost is not None:
            msg = lost.get("message")
            words = ("answer", "respond", "reach", "refused", "connect", "lost", "gone", "time")
            R.check(one_line(msg) and lost.get("method") == "upnp" and lost.get("router") == f.location
                    and any(x in (msg or "").lower() for x in words),
                    "%s: the lost event names the router (method upnp, router URL) and the cause in one line" % case,
                    "method %r, router %r, message %r (cause: one of %s)" % (
                        lost.get("method"), lost.get("router"), msg, "/".join(words)))
        check_seeding(ctx, case, w, i)
        check_stop(case, w, " (deletions against a dead router are bounded)")
        removed = [e for t, e in events_of(w) if t > t_kill and e.get("event") == "port_mapping_removed"]
        R.check(not removed, "%s: no port_mapping_removed after the router died (nothing could confirm it)" % case,
                json.dumps(removed[0])[:300] if removed else "none")


def case_stall(ctx):
    case = "stall"
    with fake_and_webseed(ctx, case, "stall") as (f, w):
        i, ev, took = wait_outcome(w, STALL_BOUND)
        check_failed(case, w, ev, took, STALL_BOUND, ["no_answer"], [])
        stalls = events_of(f, lambda e: e.get("event") == "stalled")
        ctx.later_stall_actions = sorted(set(e.get("action") for _, e in stalls) - {"GetStatusInfo"})
        R.check(bool(stalls), "%s: webseed's SOAP calls were held (the case is real)" % case, fake_summary(f))
        check_no_mapping_claimed(case, w)
        check_seeding(ctx, case, w, i, capped=True)
        check_stop(case, w)
        R.info("%s: calls seen" % case, fake_summary(f))


def case_stall_sigterm(ctx, later):
    """SIGTERM while the fake holds a SOAP call open: the first one (later=False; with
    libminiupnpc, discovery's GetStatusInfo), or the first one after discovery's
    GetStatusInfo (later=True: GetExternalIPAddress, GetSpecificPortMappingEntry …), when
    the stall case saw webseed make one."""
    case = "stall-sigterm-" + ("mapping" if later else "first")
    if later and not ctx.later_stall_actions:
        R.info("%s: skipped" % case, "in the stall case webseed made no SOAP call after GetStatusInfo")
        return
    with fake_and_webseed(ctx, case, "stall") as (f, w):
        if later:
            pred = lambda e: e.get("event") == "stalled" and e.get("action") != "GetStatusInfo"  # noqa: E731
        else:
            pred = lambda e: e.get("event") == "stalled"  # noqa: E731
        _, st = f.wait_event(pred, 25)
        if st is None:
            R.fail("%s: a SOAP call %sis held open by the fake within 25 s" % (
                case, "other than GetStatusInfo " if later else ""), fake_summary(f), more=w.log_tail(8))
            check_stop(case, w)
            return
        if later and ctx.infohash:
            # The router call is held open right now: peers must still be served.
            lis = [e for _, e in events_of(w) if e.get("event") == "listening"]
            port = lis[0]["port"] if lis and isinstance(lis[0].get("port"), int) else 6881
            hs = handshake(ctx, port, ctx.infohash)
            still = len(events_of(f, lambda e: e.get("event") == "stalled")) - len(
                events_of(f, lambda e: e.get("event") == "stall_end"))
            R.check(hs.get("ok") and still > 0,
                    "%s: a peer's handshake is answered while %s is still held (router calls never block peers)"
                    % (case, st.get("action")), "%s; calls still open after it: %d" % (json.dumps(hs), still),
                    more=[] if hs.get("ok") else w.log_tail(8))
        t_sig = time.time()
        open_calls = len(events_of(f, lambda e: e.get("event") == "stalled")) - len(
            events_of(f, lambda e: e.get("event") == "stall_end"))
        R.info("%s: SIGTERM while %s is held" % (case, st.get("action")),
               "%d call(s) open, %.1f s after webseed started" % (open_calls, t_sig - w.t0))
        check_stop(case, w, " while %s is stalled" % st.get("action"), bound=STALL_STOP_BOUND)
        R.info("%s: events" % case,
               ", ".join(e.get("event") + ("(%s)" % e["reason"] if e.get("reason") else "")
                         for _, e in events_of(w)))
        R.info("%s: calls seen" % case, fake_summary(f))


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="webseed's port mapping against bad UPnP routers")
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    ctx = Ctx(args)
    os.makedirs(ctx.work, exist_ok=True)
    shutil.rmtree(ctx.logs, ignore_errors=True)
    os.makedirs(ctx.logs)
    os.makedirs(ctx.state, exist_ok=True)
    if os.geteuid() != 0:
        R.fail("setup: network namespaces need root")
        print(R.summary(), flush=True)
        sys.exit(1)

    cleaned = threading.Lock()
    clean_done = threading.Event()

    def cleanup():
        if not cleaned.acquire(blocking=False):
            clean_done.wait(30)
            return
        try:
            Proc.kill_all()
            if ctx.lab is not None:
                problems = ctx.lab.delete()
                if problems:
                    R.fail("cleanup: namespaces deleted", "; ".join(problems))
        finally:
            clean_done.set()

    wd = Watchdog(WATCHDOG, R, cleanup).start()
    t_start = time.time()

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)

    only = set(x for x in args.only.split(",") if x)
    cases = [("fake", case_fake), ("silent", case_silent), ("text", case_text),
             ("malformed-truncated", lambda c: case_malformed(c, "truncated")),
             ("malformed-garbage", lambda c: case_malformed(c, "garbage")),
             ("malformed-notigd", lambda c: case_malformed(c, "notigd")),
             ("soap_fault", case_soap_fault), ("conflict", case_conflict),
             ("disappears", case_disappears), ("stall", case_stall),
             ("stall-sigterm-first", lambda c: case_stall_sigterm(c, False)),
             ("stall-sigterm-mapping", lambda c: case_stall_sigterm(c, True))]
    try:
        ctx.lab = RouterLab(tag=str(os.getpid()), firewall=False)
        ctx.lab.create()
        R.info("lab", "namespaces %s (router %s), %s (lan %s), %s" % (
            ctx.lab.router, ROUTER_IP, ctx.lab.lan, LAN_IP, ctx.lab.wan))
        has_feature = None
        for name, fn in cases:
            if only and name not in only:
                continue
            if name != "fake" and has_feature is None:
                has_feature = case_help(ctx)
            if name != "fake" and not has_feature:
                R.info("%s: skipped" % name, "webseed has no port mapping")
                continue
            t0 = time.time()
            try:
                fn(ctx)
            except Skip:
                pass
            except Exception as ex:
                R.fail("%s: harness error %s: %s" % (name, type(ex).__name__, ex),
                       more=traceback.format_exc().splitlines()[-8:])
            finally:
                # nothing of this case may outlive it
                for p in Proc.ALL:
                    if p.alive():
                        p.kill()
            R.info("case %s" % name, "%.1f s" % (time.time() - t0))
    except KeyboardInterrupt:
        R.fail("interrupted")
    except Exception as ex:
        R.fail("harness error %s: %s" % (type(ex).__name__, ex), more=traceback.format_exc().splitlines()[-8:])
    finally:
        wd.cancel()
        cleanup()
        R.info("total", "%.1f s; logs in %s" % (time.time() - t_start, ctx.logs))
        print(R.summary(), flush=True)
    sys.exit(1 if R.failed else 0)


if __name__ == "__main__":
    main()
