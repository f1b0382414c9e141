"""What verified mode (`--verify-in-browser`) costs a visitor: the sample site's page load in
headless Chromium through the verifying service worker against the plain gateway, and the
worker's verification throughput on a 100 MB file.

usage: Tools/bench/verified [--webseed BIN] [--runs N] [--tput-runs N] [--size-mb N] [--only load,tput]
                            [--sample DIR] [--out FILE]

Without --webseed it first builds webseed with `swift build -c release --product webseed` and
uses that binary (a debug binary only checks that the script works). Chromium is Debian's
(/usr/lib/chromium), headless, driven over its DevTools pipe by Tools/interop/verified_browser.py's
driver: a dead proxy for anything not on loopback, sites at http://<site-id>.localhost:PORT/.
Every webseed here runs `seed DIR --offline --no-dht --listen 127.0.0.1:0 --gateway 127.0.0.1:0`,
the verified ones with `--verify-in-browser` too; a plain and a verified seeder of the same
folder run side by side, and the runs alternate between them (which goes first alternating too).
Each run waits for the machine to be idle first.

  load  Samples/site. Each run: a fresh Chromium profile ("first visit"), then a reload in the
        same tab ("repeat visit", Page.reload, the HTTP cache on in both modes). Two clocks,
        read from the page's Navigation and Resource Timing over CDP, both from the start of
        the first navigation (its performance.timeOrigin, kept in sessionStorage by a script
        Chromium runs in every new document):
          load      the load event of the page as shown (loadEventEnd);
          complete  every file the page uses in: the latest of loadEventEnd and the
                    responseEnd of every same-origin resource the page fetched (stylesheet,
                    scripts, images, the favicon of its <link rel=icon>, and assets.json,
                    which js/app.js fetches after load and lists). In verified mode a
                    response's end is the worker handing over bytes it has verified, so
                    this is "every file verified".
        Beside them, verified mode's bootstrap on a first visit: from the first navigation's
        start to the start of the page the worker serves after the bootstrap's reload.
        A run counts only when the page is the sample page in full (js/app.js ran and listed
        assets.json) and, in verified mode, the page is controlled by the worker, whose
        status lists the page's files verified and nothing refused.
        First visit in verified mode includes the bootstrap: the gateway's bootstrap page,
        registering and activating /.webseed/sw.js, the bootstrap's reload, then the worker
        fetching the info dict and piece layers and every file, checking each with WebCrypto
        (the page and the files it names are fetched and verified while the bootstrap
        reloads: the bootstrap tells the installing worker the page's address).
        Repeat visit: plain mode serves the subresources from Chromium's HTTP cache (the
        gateway sends `immutable`; the page itself is revalidated); in verified mode every
        request goes to the worker, which answers from the verified files it holds in
        memory (or, if Chromium stopped it between the visits, from its Cache Storage,
        trusted without hashing again as the worker wrote it after verifying).
        Medians of --runs (default 5) per mode; target: verified/plain <= 1.3x for each clock.
  tput  a site made in the bench's work folder: index.html and big.bin, --size-mb (default 100)
        MB of random bytes (MB = 10^6 bytes throughout). Each run, in a fresh profile: load
        the site's / (in verified mode, wait until the worker controls it), then time, in the
        page, `fetch('/big.bin')` and reading its body stream to the end (performance.now()
        around it; every byte counted; the worker must report big.bin verified, nothing
        refused). Verified: the worker fetches the file from the gateway in spans (1 MiB,
        then 4 MiB, two ahead of the page's reading) and checks each piece against the
        file's piece layer (fetched and checked against the pieces root first, inside the
        timed fetch) before passing it on; files this large are not kept in Cache Storage. Plain: the same fetch answered by the gateway alone
        (which verifies on its side), so the worker's cost is the difference.
        Beside them, on the same machine: `openssl speed -evp sha256 -bytes 16384 -seconds 3`
        (one process, so one core: the SHA-256 of BitTorrent v2's 16 KiB blocks), and
        WebCrypto in a page of the same Chromium hashing 64 MiB as 16 KiB blocks one digest
        at a time (crypto.subtle.digest, awaited in turn).
        Medians of --tput-runs (default 3) per mode. The issue sets no target for this
        figure; the table shows it beside the two hashing rates.

Writes the table to --out (default artifacts/bench/verified.md) with the runs as JSON beside it.
Loopback only; every wait is bounded; each Chromium's process group is killed after its run.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

from verified_browser import LOADED, PAGE_FILES, STATUS  # noqa: E402
from webseedtest.chromium import Browser, CDPError  # noqa: E402
from webseedtest.benchhost import (REPO, JsonProc, TargetTable, bench_workdir, build_release, cpu_model,  # noqa: E402
                                   end_children_at_exit, fmt_ms, git_head, log, med, require_binary, wait_idle,
                                   write_report)

MODES = ["plain", "verified"]
GOAL = 1.3
START_TIMEOUT = 300   # seconds for a seeder to hash its folder and say ready (100 MB, release)
LOAD_TIMEOUT = 60     # seconds for a page to be complete
READ_TIMEOUT = 600    # seconds for the big file to be read through

# Run in every new document: the first document of the tab keeps its timeOrigin.
KEEP_T0 = ("try { if (!sessionStorage.getItem('bench-t0')) sessionStorage.setItem('bench-t0', String(performance.timeOrigin)); }"
           " catch (e) {}")
# The sample page in full (verified_browser's LOADED, less the worker for plain mode), its load
# event over, and this a document loaded after `window.benchOld` was set in the previous one.
LOADED_PLAIN = LOADED.replace("navigator.serviceWorker.controller && ", "")
FINISHED = " && !window.benchOld && performance.getEntriesByType('navigation')[0].loadEventEnd > 0"
# Both clocks, in ms from the first navigation's start.
CLOCKS = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const t0 = Number(sessionStorage.getItem('bench-t0'));
  const res = performance.getEntriesByType('resource').filter((e) => new URL(e.name).origin === location.origin);
  const last = Math.max(nav.loadEventEnd, ...res.map((e) => e.responseEnd));
  return {load: performance.timeOrigin + nav.loadEventEnd - t0, complete: performance.timeOrigin + last - t0,
          navigationType: nav.type, documentStart: performance.timeOrigin - t0,
          resources: res.map((e) => [new URL(e.name).pathname, Math.round(e.responseEnd), e.transferSize])};
})()"""
PAGE_PATHS = [f for f in PAGE_FILES if f != "favicon.svg"]
VERIFIED_OK = STATUS + ".then((s) => ({ok: %s.every((f) => s.verified[f] > 0) && s.refused.length === 0, status: s}))" % (
    "[" + ",".join("'%s'" % f for f in PAGE_PATHS) + "]")
READ_BIG = """(async () => {
  const t = performance.now();
  const r = await fetch('/big.bin');
  const reader = r.body.getReader();
  let n = 0;
  for (;;) { const s = await reader.read(); if (s.done) break; n += s.value.length; }
  return {status: r.status, bytes: n, ms: performance.now() - t};
})()"""
WEBCRYPTO = """(async () => {
  const buf = new Uint8Array(64 << 20);
  for (let o = 0; o < buf.length; o += 65536) crypto.getRandomValues(buf.subarray(o, o + 65536));
  const t = performance.now();
  for (let o = 0; o < buf.length; o += 16384) await crypto.subtle.digest('SHA-256', buf.subarray(o, o + 16384));
  return {bytes: buf.length, ms: performance.now() - t};
})()"""
BIG_INDEX = b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>big</title></head><body><p id=\"big\">big.bin</p></body></html>\n"


class Seed(JsonProc):
    """`webseed seed DIR --offline --no-dht … --json`, plain or verified; .url(path) on its gateway."""

    def __init__(self, args, folder, mode, work):
        name = "%s-%s" % (os.path.basename(folder), mode)
        argv = [args.webseed, "seed", folder, "--offline", "--no-dht", "--listen", "127.0.0.1:0",
                "--gateway", "127.0.0.1:0", "--state-dir", os.path.join(work, "state-" + name), "--json"]
        if mode == "verified":
            argv.append("--verify-in-browser")
        self.mode = mode
        super().__init__(argv, os.path.join(work, "seed-%s.stderr" % name))

    def start(self):
        site, gw, _ = self.need(["site", "gateway", "ready"], START_TIMEOUT, "webseed seed (%s)" % self.mode)
        self.site_id = site["site_id"]
        self.port = gw["port"]

    def url(self, path="/"):
        return "http://%s.localhost:%d%s" % (self.site_id, self.port, path)


def browser(work, name):
    profile = os.path.join(work, "profile-" + name)
    shutil.rmtree(profile, ignore_errors=True)
    b = Browser(profile, os.path.join(work, "logs"), name)
    b.open_page()
    return b


def links_of(sample):
    import json
    with open(os.path.join(sample, "assets.json")) as f:
        return len(json.load(f)["files"])


def load_run(seed, work, name, links):
    """One first visit and one repeat visit; {first: clocks, repeat: clocks} or {error}."""
    b = browser(work, name)
    out = {}
    try:
        b.send("Page.addScriptToEvaluateOnNewDocument", {"source": KEEP_T0})
        page = (LOADED if seed.mode == "verified" else LOADED_PLAIN) % links
        for visit in ("first", "repeat"):
            if visit == "first":
                b.navigate(seed.url())
            else:
                b.evaluate("window.benchOld = true; sessionStorage.removeItem('bench-t0'); true")
                b.send("Page.reload", {})
            if not b.wait_for(page + FINISHED, LOAD_TIMEOUT):
                return {"error": "%s visit: the sample page was not complete within %d s" % (visit, LOAD_TIMEOUT)}
            clocks = b.evaluate(CLOCKS)
            if seed.mode == "verified":
                v = b.wait_for(VERIFIED_OK + ".then((x) => x.ok && x)", 10) or b.evaluate(VERIFIED_OK)
                if not v["ok"]:
                    return {"error": "%s visit: the worker did not verify every file: %s" % (visit, str(v["status"])[:300])}
                clocks["worker"] = {k: v["status"].get(k) for k in ("fromMemory", "fromCache", "fromNetwork")}
            out[visit] = clocks
        return out
    except CDPError as e:
        return {"error": "CDP: %s" % e}
    finally:
        b.close()


def tput_run(seed, work, name, size):
    """The page reads big.bin through; {mbps, ms} or {error}."""
    b = browser(work, name)
    try:
        b.navigate(seed.url())
        ready = "document.readyState === 'complete' && !!document.getElementById('big')"
        if seed.mode == "verified":
            ready = "navigator.serviceWorker.controller && " + ready
        if not b.wait_for(ready, LOAD_TIMEOUT):
            return {"error": "the big site's page did not load within %d s" % LOAD_TIMEOUT}
        got = b.evaluate(READ_BIG, timeout=READ_TIMEOUT)
        if got["status"] != 200 or got["bytes"] != size:
            return {"error": "read %s" % got}
        if seed.mode == "verified":
            s = b.evaluate(STATUS)
            if not s["verified"].get("big.bin") or s["refused"]:
                return {"error": "the worker did not verify big.bin: %s" % str(s)[:300]}
        return {"ms": got["ms"], "mbps": size / 1e6 / (got["ms"] / 1000)}
    except CDPError as e:
        return {"error": "CDP: %s" % e}
    finally:
        b.close()


def openssl_sha256():
    """MB/s of `openssl speed -evp sha256 -bytes 16384 -seconds 3` (one process)."""
    out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "3"],
                         capture_output=True, text=True, timeout=120).stdout
    for line in out.splitlines():
        m = re.match(r"^\s*sha256\s+([0-9.]+)k\s*$", line, re.I)
        if m:
            return float(m.group(1)) * 1000 / 1e6
    return None


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def ratio(v, p):
    return v / p if v and p else None


def fmt_ratio(x):
    return "n/a" if x is None else "%.2f×" % x


def case_load(args, work, table, data):
    links = links_of(args.sample)
    seeds = {m: Seed(args, args.sample, m, work) for m in MODES}
    for s in seeds.values():
        s.start()
    runs = {m: [] for m in MODES}
    for i in range(args.runs):
        for m in (MODES if i % 2 == 0 else MODES[::-1]):
            busy = wait_idle()
            r = load_run(seeds[m], work, "load-%s-%d" % (m, i), links)
            r["busy_before"] = busy
            log("  load %s run %d: %s" % (m, i + 1, r.get("error") or "first %.0f/%.0f ms, repeat %.0f/%.0f ms" % (
                r["first"]["load"], r["first"]["complete"], r["repeat"]["load"], r["repeat"]["complete"])))
            runs[m].append(r)
    for s in seeds.values():
        s.stop()
    data["load"] = runs
    for visit in ("first", "repeat"):
        for clock in ("load", "complete"):
            p = med([r[visit][clock] for r in runs["plain"] if "error" not in r])
            v = med([r[visit][clock] for r in runs["verified"] if "error" not in r])
            x = ratio(v, p)
            n = min(sum("error" not in r for r in runs[m]) for m in MODES)
            table.row("load, %s visit" % visit, "%s (median of %d)" % (clock, n),
                      "plain %s, verified %s (%s)" % (fmt_ms(p), fmt_ms(v), fmt_ratio(x)),
                      "≤ %.1f×" % GOAL, x is not None and x <= GOAL and n == args.runs)
        if visit == "first":
            boot = med([r["first"]["documentStart"] for r in runs["verified"] if "error" not in r])
            table.row("load, first visit", "of which verified mode's bootstrap (until the reloaded page starts)", fmt_ms(boot))


def case_tput(args, work, table, data):
    site = os.path.join(work, "bigsite")
    os.makedirs(site)
    size = args.size_mb * 1000 * 1000
    with open(os.path.join(site, "index.html"), "wb") as f:
        f.write(BIG_INDEX)
    with open(os.path.join(site, "big.bin"), "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 22)
            f.write(os.urandom(n))
            left -= n
    seeds = {m: Seed(args, site, m, work) for m in MODES}
    for s in seeds.values():
        s.start()
    runs = {m: [] for m in MODES}
    for i in range(args.tput_runs):
        for m in (MODES if i % 2 == 0 else MODES[::-1]):
            busy = wait_idle()
            r = tput_run(seeds[m], work, "tput-%s-%d" % (m, i), size)
            r["busy_before"] = busy
            log("  tput %s run %d: %s" % (m, i + 1, r.get("error") or "%.0f MB/s (%.0f ms)" % (r["mbps"], r["ms"])))
            runs[m].append(r)
    wait_idle()
    b = browser(work, "webcrypto")
    try:
        b.navigate(seeds["plain"].url())  # a secure context (localhost) for crypto.subtle
        b.wait_for("document.readyState === 'complete' && !!document.getElementById('big')", LOAD_TIMEOUT)
        wc = b.evaluate(WEBCRYPTO, timeout=READ_TIMEOUT)
        webcrypto = wc["bytes"] / 1e6 / (wc["ms"] / 1000)
    except CDPError as e:
        log("  webcrypto: %s" % e)
        webcrypto = None
    finally:
        b.close()
    for s in seeds.values():
        s.stop()
    wait_idle()
    ossl = openssl_sha256()
    data["tput"] = {"runs": runs, "webcrypto_mbps": webcrypto, "openssl_mbps": ossl, "size": size}
    p = med([r["mbps"] for r in runs["plain"] if "error" not in r])
    v = med([r["mbps"] for r in runs["verified"] if "error" not in r])
    fmt = lambda x: "n/a" if x is None else "{:,.0f} MB/s".format(x)  # noqa: E731
    n = min(sum("error" not in r for r in runs[m]) for m in MODES)
    table.row("%d MB file" % args.size_mb, "fetch + read in the page, verified (median of %d)" % n, fmt(v))
    table.row("%d MB file" % args.size_mb, "fetch + read in the page, plain gateway (median of %d)" % n,
              "%s (verified is %s of it)" % (fmt(p), "n/a" if not (p and v) else "%.0f%%" % (100 * v / p)))
    table.row("SHA-256, 16 KiB blocks", "WebCrypto in a page, one digest at a time", fmt(webcrypto))
    table.row("SHA-256, 16 KiB blocks", "`openssl speed -evp sha256 -bytes 16384`, one core",
              "%s (verified fetch is %s of it)" % (fmt(ossl), "n/a" if not (ossl and v) else "%.0f%%" % (100 * v / ossl)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--webseed")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tput-runs", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--only", default="load,tput")
    ap.add_argument("--sample", default=os.path.join(REPO, "Samples", "site"))
    ap.add_argument("--out", default=os.path.join(REPO, "artifacts", "bench", "verified.md"))
    args = ap.parse_args()
    cases = [c for c in args.only.split(",") if c]
    for c in cases:
        if c not in ("load", "tput"):
            sys.exit("verified: unknown case %r (load, tput)" % c)
    end_children_at_exit()
    args.webseed = os.path.abspath(args.webseed) if args.webseed else build_release()
    require_binary(args.webseed)
    args.sample = os.path.abspath(args.sample)
    work = bench_workdir("verified")
    table = TargetTable()
    data = {"commit": git_head(), "binary": args.webseed, "cpu": cpu_model(), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_start": load_average()}
    if "load" in cases:
        case_load(args, work, table, data)
    if "tput" in cases:
        case_tput(args, work, table, data)
    data["load_average_end"] = load_average()
    lines = ["# Verified mode: page load and verification throughput (%s)" % data["commit"], "",
             "`Tools/bench/verified --runs %d --tput-runs %d`, %s, %s, %d cores (load average %s at the start, %s at the end; "
             "each run waits for idle CPUs first); headless Chromium; load clocks from the first navigation's start." % (
                 args.runs, args.tput_runs, data["date"], data["cpu"], data["cores"], data["load_average_start"], data["load_average_end"]),
             ""] + TargetTable.HEADER + table.rows
    write_report(args.out, lines, data)
    return 0 if table.all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
