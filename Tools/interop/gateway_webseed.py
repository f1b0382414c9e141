#!/usr/bin/python3
"""The gateway as a BEP 19 web seed: real BitTorrent clients download a site with a webseed
gateway as their only source, and every file is compared byte for byte with its source.

The site is Samples/site plus files added here: a 3 MiB file (many pieces, so ranges start
and end inside files and pieces span files), names that need percent-encoding in a URL
(space, `#`, `?`, `&`, `+`, `%`, non-ASCII) in nested folders, and the sample's empty file.
`webseed seed SITE --listen 127.0.0.1:0 --gateway 127.0.0.1:0 --offline --json` packages it
as a hybrid torrent; its `site` event must give `web_seed` = http://127.0.0.1:PORT/ws/<site-id>/,
as /api/status does. The torrent given to the clients is the seeder's with that URL added as
`url-list` (outside the info dict: both info hashes must stay the same). No client is told
about any peer: no trackers, DHT, LSD or PEX.

  a  libtorrent 2.0.8 (TCP only, no peers) downloads the whole site from the web seed; the
     seeder sees no peer connection, and the gateway answered 206s
  b  aria2c 1.37 (PyPI wheel; the v1 side of the hybrid, pad files requested as files: they
     must be zeros) likewise; its log shows no connection to the seeder's peer port
  c  HTTP directly: Range 206 + Content-Range, HEAD, 416, If-None-Match 304, 404 for unknown
     paths, sites, folders and the torrent name left out, a pad file's zeros, CORS headers and
     preflight, 405, the base without "/" moved, the same bytes for a non-loopback Host
  d  `webseed gateway TORRENT --peer SEEDER` holds a site it fetches from the seeder (whose
     peer_connected event shows it came): its `gateway_site` event gives the web seed, and
     libtorrent downloads the whole site from that web seed, started as soon as the gateway is
     ready (what is not fetched yet is waited for, as for a browser)
  e  a file changed on disk after the seeder verified it: the web seed answers 502 naming it
     (never its bytes), and the seeder reports file_changed
  f  a single-file torrent (a hybrid made by libtorrent's creator, seeded with `seed ONE.torrent
     --data DIR`): its web seed serves the file at <base><name>; libtorrent and aria2c download it

Usage:
  PYTHONPATH=Tools /usr/bin/python3 Tools/interop/gateway_webseed.py --webseed .build/debug/webseed \\
      --sample Samples/site --work /tmp/webseed-gwwebseed [--only a,b,...]

Loopback only; every wait is bounded; every child is killed at the end. Prints `ok …` /
`FAIL …` / `info …` lines and last `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import hashlib
import http.client
import os
import re
import shutil
import sys
import time
import urllib.parse

try:
    import libtorrent as lt
except ImportError:
    sys.stderr.write("gateway_webseed: cannot import libtorrent; run with /usr/bin/python3 after Tools/setup\n")
    sys.exit(2)

from webseedtest.bencode import bdecode, bencode, info_span
from webseedtest.cases import add_only, chosen_cases
from webseedtest.clients import ARIA2C
from webseedtest.content import gen_data
from webseedtest.ltsession import OFFLINE, PLAINTEXT, TCP_ONLY
from webseedtest.procs import Proc, free_port, poll, tail
from webseedtest.results import Results
from webseedtest.trees import check_comparator, compare_tree
from webseedtest.watchdog import Watchdog

ALL_CASES = ["a", "b", "c", "d", "e", "f"]
R = Results()
ODD = "files/dir with space/report #1 (final)?&+%.txt"
UNICODE = "files/ünïcode/名前.txt"
BIG = "media/big.bin"


# ---------------------------------------------------------------------------------------
# The site, the seeder, the torrent with its url-list

def make_site(sample, root):
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(sample, root)
    extra = {BIG: gen_data(7, 3 * 1024 * 1024 + 12345), ODD: gen_data(8, 70001), UNICODE: gen_data(9, 333)}
    for rel, data in extra.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    empties = [rel for rel in walk(root) if os.path.getsize(os.path.join(root, rel)) == 0]
    return empties


def walk(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/"))
    return sorted(out)


def with_url_list(src, dst, url):
    """src's torrent with `url-list` = [url] at the top level; the info dict's bytes copied as
    they are (so neither info hash can change)."""
    raw = open(src, "rb").read()
    top, end = bdecode(raw)
    assert end == len(raw)
    info = info_span(raw)
    top[b"url-list"] = [url.encode()]
    out = b"d"
    for k in sorted(top):
        out += bencode(k) + (info if k == b"info" else bencode(top[k]))
    out += b"e"
    with open(dst, "wb") as f:
        f.write(out)
    return hashlib.sha256(info_span(out)).hexdigest() == hashlib.sha256(info).hexdigest()


def start_seeder(ws, site, work):
    p = Proc("seeder", [ws, "seed", site, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--offline",
                        "--state-dir", os.path.join(work, "seed-state"), "--json"], os.path.join(work, "logs"), cwd=work)
    ready = p.wait_for("ready", 120)
    return p, ready


def request(port, method, path, headers=None, host=None, timeout=30):
    """(status, {lowercased header: value}, body) of one request on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Host": host or "127.0.0.1:%d" % port}
    h.update(headers or {})
    c.request(method, path, headers=h)
    r = c.getresponse()
    body = r.read()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, body)
    c.close()
    return out


def metric(port, status):
    """webseed_http_requests_total{status} of the gateway, 0 when not yet counted."""
    _, _, body = request(port, "GET", "/metrics", host="localhost:%d" % port)
    m = re.search(r'webseed_http_requests_total\{status="%d"\} (\d+)' % status, body.decode())
    return int(m.group(1)) if m else 0


def peer_connections(seeder):
    return [e for _, e in seeder.event_times(lambda e: e.get("event") == "peer_connected")]


# ---------------------------------------------------------------------------------------
# Clients

def lt_download(torrent, save, timeout=180):
    """libtorrent 2.0.8 downloading `torrent` into save with no peers at all (its url-list is
    its one source): (finished, seconds, a few web-seed alerts for the log)."""
    settings = dict(OFFLINE)
    settings.update(TCP_ONLY)
    settings.update(PLAINTEXT)
    settings.update({"listen_interfaces": "127.0.0.1:%d" % free_port(), "enable_incoming_tcp": True,
                     "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification})
    ses = lt.session(settings)
    ti = lt.torrent_info(torrent)
    t0 = time.time()
    h = ses.add_torrent({"ti": ti, "save_path": save})
    notes = []

    def done():
        for al in ses.pop_alerts():
            if isinstance(al, (lt.url_seed_alert, lt.file_error_alert, lt.torrent_error_alert)):
                notes.append(al.message()[:200])
        return h.status().is_seeding

    finished = poll(done, timeout, interval=0.1)
    took = time.time() - t0
    ses.remove_torrent(h)
    poll(lambda: any(isinstance(a, lt.torrent_removed_alert) for a in ses.pop_alerts()), 10, 0.05)
    # The session ends with this call (nothing else holds it): its files are closed, all on
    # disk, before the caller compares them.
    return finished, took, notes[-8:]


def aria2_download(torrent, out, logdir, name="aria2c", timeout=180):
    log = os.path.join(logdir, name + ".log")
    argv = [ARIA2C, "--no-conf", "--dir=" + out, "--enable-dht=false", "--enable-dht6=false",
            "--enable-peer-exchange=false", "--bt-enable-lpd=false", "--disable-ipv6=true",
            "--bt-exclude-tracker=*", "--seed-time=0", "--listen-port=%d" % free_port(),
            "--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
            "--log=" + log, "--log-level=info", "--allow-overwrite=true", "--auto-file-renaming=false",
            "--max-tries=3", "--retry-wait=1", torrent]
    t0 = time.time()
    p = Proc(name, argv, logdir)
    rc = p.wait(timeout)
    if rc is None:
        p.kill()
    return rc, time.time() - t0, log


# ---------------------------------------------------------------------------------------
# Cases

def case_a(ctx):
    save = os.path.join(ctx.work, "lt")
    shutil.rmtree(save, ignore_errors=True)
    before, peers = metric(ctx.gw, 206), len(peer_connections(ctx.seeder))
    finished, took, notes = lt_download(ctx.torrent, save)
    ok, summary, _ = compare_tree(ctx.site, os.path.join(save, ctx.name)) if finished else (False, "not finished", [])
    R.check(finished and ok, "a libtorrent 2.0.8 downloads the site from the web seed alone",
            "%s in %.1fs" % (summary, took), more=notes)
    served = metric(ctx.gw, 206) - before
    R.check(served > 0, "a the gateway answered libtorrent's ranges", "%d more 206 answers" % served)
    R.check(len(peer_connections(ctx.seeder)) == peers, "a no peer connected to the seeder's peer port",
            "%s" % peer_connections(ctx.seeder)[peers:][:3])


def case_b(ctx):
    out = os.path.join(ctx.work, "aria2")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    peers = len(peer_connections(ctx.seeder))
    rc, took, log = aria2_download(ctx.torrent, out, os.path.join(ctx.work, "logs"))
    ok, summary, _ = compare_tree(ctx.site, os.path.join(out, ctx.name)) if rc == 0 else (False, "aria2c exit %s" % rc, [])
    R.check(rc == 0 and ok, "b aria2c 1.37 downloads the site from the web seed alone (pads as zeros)",
            "%s in %.1fs" % (summary, took), more=tail(log, 12, grep="ERROR|WARN|error"))
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    asked = len(re.findall(r"GET /ws/%s/" % ctx.site_id, text))
    peer_port = ":%d" % ctx.peer_port
    reached = [l for l in text.splitlines() if "Connecting to 127.0.0.1" in l and l.rstrip().endswith(peer_port)]
    came = len(peer_connections(ctx.seeder)) - peers
    R.check(asked > 0 and not reached and came == 0, "b aria2c used only the web seed",
            "%d GETs under /ws/<site-id>/, %d connects to the peer port, %d peer events" % (asked, len(reached), came))


def case_c(ctx):
    gw, base = ctx.gw, "/ws/%s/%s/" % (ctx.site_id, urllib.parse.quote(ctx.name))
    big = open(os.path.join(ctx.site, BIG), "rb").read()
    quoted = base + urllib.parse.quote(BIG)
    st, h, body = request(gw, "GET", quoted, {"Range": "bytes=1000000-2000000"})
    R.check(st == 206 and h.get("content-range") == "bytes 1000000-2000000/%d" % len(big) and body == big[1000000:2000001],
            "c Range → 206 with Content-Range and exactly those bytes", "%s %s, %d bytes" % (st, h.get("content-range"), len(body)))
    R.check(h.get("access-control-allow-origin") == "*" and h.get("content-type") == "application/octet-stream"
            and h.get("content-security-policy") == "sandbox" and "immutable" in (h.get("cache-control") or ""),
            "c CORS for any origin, octet-stream in a sandbox, immutable", str({k: h.get(k) for k in (
                "access-control-allow-origin", "content-type", "content-security-policy", "cache-control")}))
    st, h2, body = request(gw, "HEAD", quoted)
    R.check(st == 200 and body == b"" and h2.get("content-length") == str(len(big)) and h2.get("etag") == h.get("etag"),
            "c HEAD: the GET's headers, no body", "%s length %s" % (st, h2.get("content-length")))
    st, _, body = request(gw, "GET", quoted, {"If-None-Match": h.get("etag") or "-"})
    R.check(st == 304 and body == b"", "c If-None-Match with the ETag → 304", str(st))
    st, h3, _ = request(gw, "GET", quoted, {"Range": "bytes=%d-" % (len(big) + 5)})
    R.check(st == 416 and h3.get("content-range") == "bytes */%d" % len(big), "c a range past the end → 416", str(st))
    odd = open(os.path.join(ctx.site, ODD), "rb").read()
    st, _, body = request(gw, "GET", base + urllib.parse.quote(ODD), host="seed.example.org")
    R.check(st == 200 and body == odd, "c a name needing percent-encoding, for a non-loopback Host, in place",
            "%s %d bytes" % (st, len(body)))
    st, _, body = request(gw, "GET", base + "assets/empty.txt")
    R.check(st == 200 and body == b"", "c the empty file → 200 with no bytes", str(st))
    pads = [e for e in ctx.v1_files if e.get(b"attr", b"").find(b"p") >= 0]
    if pads:
        pad = pads[0]
        pad_path = "/".join(urllib.parse.quote(c.decode()) for c in pad[b"path"])
        st, _, body = request(gw, "GET", base + pad_path)
        R.check(st == 200 and body == b"\0" * pad[b"length"], "c a BEP 47 pad file → its zeros",
                "%s %s, %d bytes" % (st, pad_path, len(body)))
    else:
        R.fail("c a BEP 47 pad file → its zeros", "the hybrid torrent has no pad file")
    for what, path in (("an unknown path", base + "missing.js"), ("a folder", base + "files/"),
                       ("the path without the torrent's name", "/ws/%s/index.html" % ctx.site_id),
                       ("an unknown site", "/ws/%s/%s/index.html" % ("a" * 52, urllib.parse.quote(ctx.name)))):
        st, h, body = request(gw, "GET", path)
        R.check(st == 404 and b"<html" not in body.lower(), "c %s → 404, not a page" % what, "%s %r" % (st, body[:80]))
    st, h, _ = request(gw, "OPTIONS", quoted, {"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "range"})
    R.check(st == 204 and h.get("access-control-allow-origin") == "*" and "Range" in (h.get("access-control-allow-headers") or ""),
            "c a CORS preflight is granted GET/HEAD with Range", "%s %s" % (st, h.get("access-control-allow-headers")))
    st, h, _ = request(gw, "POST", quoted)
    R.check(st == 405 and h.get("allow") == "GET, HEAD, OPTIONS", "c POST → 405 with Allow", "%s %s" % (st, h.get("allow")))
    st, h, _ = request(gw, "GET", "/ws/%s" % ctx.site_id)
    R.check(st == 301 and h.get("location") == "/ws/%s/" % ctx.site_id, "c the base without its slash → 301 to it",
            "%s %s" % (st, h.get("location")))
    st, _, body = request(gw, "GET", base + "%2e%2e/%2e%2e/etc/passwd")
    R.check(st == 400 and b"root:" not in body, "c `..` in the path → 400", str(st))
    st, _, _ = request(gw, "GET", base + "a" * 9000)
    R.check(st == 414, "c a 9,000-byte path → 414", str(st))
    if pads:
        st, h, body = request(gw, "GET", base + pad_path, {"Range": "bytes=100-99999999999999999"})
        R.check(st == 206 and body == b"\0" * (pad[b"length"] - 100), "c a range far past a pad's end is clamped to it",
                "%s %s, %d bytes" % (st, h.get("content-range"), len(body)))
    st, _, body = request(gw, "GET", quoted, {"Range": "bytes=0-0"})
    R.check(st == 206 and body == big[:1], "c the web seed still serves after all of these", str(st))


def case_d(ctx):
    work = os.path.join(ctx.work, "gateway")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    peers = len(peer_connections(ctx.seeder))
    g = Proc("gateway", [ctx.ws, "gateway", ctx.seed_torrent, "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
                         "--peer", "127.0.0.1:%d" % ctx.peer_port, "--offline", "--state-dir", os.path.join(work, "state"),
                         "--json"], os.path.join(ctx.work, "logs"), cwd=work)
    try:
        ready = g.wait_for("ready", 60)
        gev = g.wait_for("gateway", 1)
        sev = g.wait_for("gateway_site", 1)
        want = "http://127.0.0.1:%s/ws/%s/" % (gev and gev.get("port"), ctx.site_id)
        if not R.check(ready is not None and sev is not None and sev.get("web_seed") == want,
                       "d webseed gateway's gateway_site event gives the site's web seed", "%s" % (sev and sev.get("web_seed")),
                       more=g.log_tail(8)):
            return
        torrent = os.path.join(work, "site-via-gateway.torrent")
        with_url_list(ctx.seed_torrent, torrent, want)
        save = os.path.join(work, "lt")
        finished, took, notes = lt_download(torrent, save)
        ok, summary, _ = compare_tree(ctx.site, os.path.join(save, ctx.name)) if finished else (False, "not finished", [])
        R.check(finished and ok, "d libtorrent downloads the site from a gateway that fetches it from the swarm",
                "%s in %.1fs" % (summary, took), more=notes + g.log_tail(6))
        came = peer_connections(ctx.seeder)[peers:]
        R.check(len(came) > 0, "d the gateway fetched the site from the seeder", "%d peer connections to the seeder" % len(came))
    finally:
        rc, _ = g.stop(timeout=10)
        R.check(rc == 0, "d the gateway exits 0 on SIGTERM", "exit %s" % rc)


def case_e(ctx):
    path = os.path.join(ctx.site, BIG)
    with open(path, "r+b") as f:
        f.seek(2 * 1024 * 1024)
        old = f.read(1)
        f.seek(2 * 1024 * 1024)
        f.write(bytes([old[0] ^ 0xFF]))
    changed = open(path, "rb").read()
    url = "/ws/%s/%s/%s" % (ctx.site_id, urllib.parse.quote(ctx.name), urllib.parse.quote(BIG))
    st, _, body = request(ctx.gw, "GET", url, {"Range": "bytes=2000000-2200000"})
    R.check(st == 502 and b"changed on disk" in body and changed[2000000:2200001] not in body,
            "e a file changed on disk → 502 naming it, none of its bytes", "%s %r" % (st, body[:120]))
    _, ev = ctx.seeder.wait_event(lambda e: e.get("event") == "file_changed", 10)
    R.check(ev is not None and ev.get("path") == BIG, "e the seeder reports file_changed", str(ev))


def case_f(ctx):
    work = os.path.join(ctx.work, "single")
    shutil.rmtree(work, ignore_errors=True)
    data = os.path.join(work, "data")
    os.makedirs(data)
    name = "one file #1.bin"
    src = os.path.join(data, name)
    with open(src, "wb") as f:
        f.write(gen_data(11, 1024 * 1024 + 777))
    fs = lt.file_storage()
    lt.add_files(fs, src)
    ct = lt.create_torrent(fs, 0, flags=0)
    lt.set_piece_hashes(ct, data)
    torrent = os.path.join(work, "one.torrent")
    with open(torrent, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    p = Proc("seeder-single", [ctx.ws, "seed", torrent, "--data", data, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0",
                               "--offline", "--state-dir", os.path.join(work, "state"), "--json"], os.path.join(ctx.work, "logs"), cwd=work)
    try:
        ready = p.wait_for("ready", 60)
        site, gw = p.wait_for("site", 1), p.wait_for("gateway", 1)
        if not R.check(ready is not None and site is not None and gw is not None and site.get("web_seed"),
                       "f the single-file seeder is ready with a web seed", str(site and site.get("web_seed")), more=p.log_tail(8)):
            return
        ws = site["web_seed"]
        with_url = os.path.join(work, "one-with-url-list.torrent")
        with_url_list(torrent, with_url, ws)
        st, _, body = request(gw["port"], "GET", urllib.parse.urlsplit(ws).path + urllib.parse.quote(name), {"Range": "bytes=5-9"})
        whole = open(src, "rb").read()
        R.check(st == 206 and body == whole[5:10], "f the file is at <base><name>", "%s %r" % (st, body[:20]))
        save = os.path.join(work, "lt")
        finished, took, notes = lt_download(with_url, save)
        got = open(os.path.join(save, name), "rb").read() if finished and os.path.exists(os.path.join(save, name)) else None
        R.check(got == whole, "f libtorrent downloads the single-file torrent from the web seed alone",
                "%s in %.1fs" % ("identical" if got == whole else "differs or missing", took), more=notes)
        out = os.path.join(work, "aria2")
        os.makedirs(out)
        rc, took, log = aria2_download(with_url, out, os.path.join(ctx.work, "logs"), name="aria2c-single")
        got = open(os.path.join(out, name), "rb").read() if rc == 0 and os.path.exists(os.path.join(out, name)) else None
        R.check(got == whole, "f aria2c downloads the single-file torrent from the web seed alone",
                "exit %s, %s in %.1fs" % (rc, "identical" if got == whole else "differs or missing", took),
                more=tail(log, 12, grep="ERROR|WARN|error"))
        R.check(not peer_connections(p), "f no peer connected to the single-file seeder", str(peer_connections(p)[:3]))
    finally:
        rc, _ = p.stop(timeout=10)
        R.check(rc == 0, "f the single-file seeder exits 0 on SIGTERM", "exit %s" % rc)


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--work", required=True)
    add_only(ap, ALL_CASES)
    args = ap.parse_args()
    # In this order whatever --only says: e changes a file of the site the others download.
    cases = [c for c in ALL_CASES if c in chosen_cases(ap, args, ALL_CASES)]
    os.makedirs(args.work, exist_ok=True)
    dog = Watchdog(900, R).start()
    ctx = Ctx()
    ctx.ws, ctx.work = os.path.abspath(args.webseed), os.path.abspath(args.work)
    ctx.site = os.path.join(ctx.work, "site")
    ctx.name = "site"
    seeder = None
    try:
        check_comparator(R, ctx.work)
        empties = make_site(args.sample, ctx.site)
        Results.info("site", "%d files, empty: %s" % (len(walk(ctx.site)), ", ".join(empties) or "none"))
        seeder, ready = start_seeder(ctx.ws, ctx.site, ctx.work)
        ctx.seeder = seeder
        site = seeder.wait_for("site", 1)
        gw = seeder.wait_for("gateway", 1)
        listening = seeder.wait_for("listening", 1)
        if not R.check(ready is not None and site is not None and gw is not None and listening is not None,
                       "the seeder is ready", more=seeder.log_tail(10)):
            return
        ctx.gw, ctx.peer_port, ctx.site_id = gw["port"], listening["port"], site["site_id"]
        ctx.seed_torrent = site["torrent"]
        want = "http://127.0.0.1:%d/ws/%s/" % (ctx.gw, ctx.site_id)
        R.check(site.get("web_seed") == want, "seed's site event gives the web seed", "%s" % site.get("web_seed"))
        st, _, body = request(ctx.gw, "GET", "/api/status", host="localhost:%d" % ctx.gw)
        R.check(st == 200 and ('"web_seed":"%s"' % want).encode() in body, "/api/status gives web_seed", "%s" % st)
        ctx.torrent = os.path.join(ctx.work, "site-with-url-list.torrent")
        R.check(with_url_list(ctx.seed_torrent, ctx.torrent, want), "url-list added outside the info dict, hashes unchanged")
        ti = lt.torrent_info(ctx.torrent)
        ctx.name = ti.name()
        R.check([w["url"] for w in ti.web_seeds()] == [want] and ti.info_hashes().has_v1() and ti.info_hashes().has_v2(),
                "libtorrent reads the hybrid torrent's url-list", str(ti.web_seeds()))
        info, _ = bdecode(info_span(open(ctx.torrent, "rb").read()))
        ctx.v1_files = info.get(b"files", [])
        for c in cases:
            globals()["case_" + c](ctx)
    finally:
        if seeder is not None:
            rc, _ = seeder.stop(timeout=10)
            R.check(rc == 0, "the seeder exits 0 on SIGTERM", "exit %s" % rc)
        Proc.kill_all()
        dog.cancel()
    print(R.summary())
    sys.exit(0 if R.failed == 0 else 1)


if __name__ == "__main__":
    main()
