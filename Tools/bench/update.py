"""Benchmark a site's stable name (BEP 44 + BEP 46) on a 200-node loopback DHT: how fast a fresh
node resolves a name (webseed against libtorrent 2.0.8 in the same run), how soon a saved file
is served under the name, and what an update of 1 file of a 2,000-file site downloads.

usage: Tools/bench/update [--binary BIN] [--runs N] [--readers-stay] [--updates U]
                          [--only resolve,serve,bytes] [--layout PxM] [--scale S] [--seed N]
                          [--out FILE]

Without --binary (alias --webseed) it first builds webseed with `swift build -c release
--product webseed` and uses that binary; a debug binary only checks that the script works.

The network is Tools/bench/dht's (webseedtest/dhtnet.py: --layout, default 4x50 = P
processes of `webseed dht --nodes M`, chained into one network of 200 nodes), waited for
until it has converged (bounded by 120 s; a network that does not converge is a row that
fails, and the rest is measured anyway). Everything runs on 127.0.0.1 with --offline and
--dht-bootstrap 127.0.0.1:PORT, PORT a random network node (chosen with --seed), so nothing
ever leaves the host.

1. resolve: a name's item as a fresh node finds it, webseed against libtorrent.
   `webseed key new` makes a key; `webseed dht --put-item KEY --item-value V --item-seq 1`
   puts an item, then another process puts seq 2 (a site that was updated once: the readers
   must find the higher seq); each waits for {"event":"dht_item_put"} with sent_to >= 1 and
   stays up (a publisher keeps running). Then N runs (--runs, default 15); each run is a
   pair, both joining the network through the same random node, in alternating order
   (webseed first in runs 1, 3, 5, …, libtorrent first in the others), one process at a time, the
   machine waited for to go idle (up to 30 s) before each pair:
     webseed     a fresh `webseed dht --listen 127.0.0.1:0 --offline --json --state-dir FRESH
                 --dht-bootstrap 127.0.0.1:PORT --get-item KEYHEX`; its {"event":"dht_item"}
                 carries "ms". In WebseedKit/DHTItems.swift that clock starts when the
                 command's DHT session starts the get (DHTSession.run, just before its
                 {"event":"ready"} line), right after its node started and sent its first
                 query to the bootstrap node: it INCLUDES the join (a get asked for before
                 the node's first contact waits for it). A get that finds nothing is
                 retried every second, and "ms" counts those retries too. The item is the highest valid seq of the closest
                 nodes, reported when the lookup has ended.
     libtorrent  a fresh 2.0.8 session (webseedtest/ltitem.py, /usr/bin/python3): once its
                 DHT runs, add_dht_node(the same PORT), then dht_get_mutable_item at once and
                 again at once after every answer without the item; "ms" from add_dht_node to
                 the first AUTHORITATIVE dht_mutable_item_alert carrying seq 2 (the get's
                 traversal has ended: the same thing webseed reports), timed inside its process.
   So both clocks run from "this node's DHT is up and knows the bootstrap node" to "the item
   of the highest seq found, lookup ended", inside each process (no start-up of the process or
   the interpreter, no pipe). Two small biases remain, in opposite directions: webseed's clock
   starts when its session (the engine's last service) starts the get, after its DHT service
   has started and sent its first query to the bootstrap node (in webseed's favour); and
   libtorrent's alerts are read by polling every 0.5 ms (up to about 0.5 ms against it).
   That is the comparison the goal (webseed's median <= libtorrent's) is judged on. Shown beside it for information: libtorrent's first alert with
   seq 2 (one node's answer, before its lookup ends), the time of libtorrent's last get call
   alone (its "get_ms": what the get costs once the routing table had nodes), how many gets
   it called, and webseed's spawn -> dht_item line as the bench read it.
   Each reader is stopped once it has its answer, so it leaves the network (churn, as in
   Tools/bench/dht): later lookups that query a departed reader wait for that query to time
   out or turn slow before they end, on both sides (webseed: a query is slow after three round
   trips as the node measures them, 10 ms to 0.5 s; libtorrent: its own timeouts).
   With --readers-stay every reader stays up as a DHT node until the case ends (no churn).
   A webseed process that shows no {"event":"dht"} line within 5 s (Tools/bench/dht: its UDP
   port could not be bound) is counted (target: none), stopped and replaced by a new one.

2. serve: save-to-serve latency under `seed --watch`. A small site in DIR; `webseed seed DIR
   --key K --watch --offline --dht-bootstrap …` and a separate `webseed gateway --offline
   --dht-bootstrap … --name-refresh 1`; the site's name is `webseed key show K --json`'s
   "name". The script polls http://NAME.localhost:PORT/page.html (connection to 127.0.0.1,
   every 20 ms, bounded) until it serves the first version, then U times (--updates,
   default 5): waits for the machine to go idle, rewrites page.html in place with new bytes
   (open, write, close: a plain save) and times from just before the write to the first
   response carrying exactly the new bytes (bounded by 30 s). Goal: median <= 3 s (the
   watch's debounce, packaging, the put, the gateway's next look, the new metadata and the
   bytes all count). Where the time went: the save -> the seeder's {"event":"name_published"}
   of the new seq (the item reached DHT nodes) and -> the gateway's {"event":"name_switched"},
   as the bench read those lines.

3. bytes: what an update of 1 file of a 2,000-file site downloads. The 2,000-file site of
   Tools/bench/create (webseedtest/corpus.py "site": mostly small pages, scripts and styles,
   some images, a few large media files; --scale shrinks it for a smoke run), copied into a
   work directory and seeded with `seed --key K --watch`. `webseed get NAME -o OUT
   --exit-when-done` puts the first version in OUT ({"event":"name_updated"}); then `webseed
   get NAME -o OUT --name-refresh 1` follows the name from the same state directory (it takes
   up the version in place, printing name_updated for it with nothing to fetch), one page of
   about 10 KB is edited (a line inserted in its middle), and the follower's next name_updated
   (a higher seq) says what it downloaded: "downloaded", the payload bytes fetched for that
   version. The reference is the changed file's size + the new torrent's info dict
   (`webseed create` of the changed directory, checked to have the v2 info hash the follower
   resolved); goal (issue 13: "no more than that file plus the new metadata, plus 5%"):
   (payload + info dict) / (file + info dict) <= 1.05. OUT is then compared with the site
   byte for byte.

Cases 2 and 3 need `seed --key/--watch`, `gateway --name-refresh` and `get --name-refresh`;
with a binary that does not show them in --help each is reported as SKIPPED (its row says
so, it does not count as met, and the exit status is 3).

Prints a markdown table (case / metric / value / target / met?) and writes it to
artifacts/bench-update.md plus a .json beside it. Exit 0 if every case ran and met its
target, 1 if a target was missed, 3 if all that ran met their targets but a case was
skipped. Every wait is bounded; every child process is ended (SIGTERM, then SIGKILL) in a
finally.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))

from webseedtest import corpus, dhtnet, trees
from webseedtest.bencode import info_hashes, info_span
from webseedtest.benchhost import (binary_stamp, build_release, cpu_model, end_children, git_head, log,
                                   bench_workdir, require_binary, spawn, wait_idle, write_report)
from webseedtest.benchhost import JsonProc, TargetTable, fmt_ms
from webseedtest.dhtnet import Proc, median
from webseedtest.procs import program

CASES = ["resolve", "serve", "bytes"]
CONVERGE_TIMEOUT = 120.0
PUT_TIMEOUT = 30.0
NODE_UP_TIMEOUT = 5.0       # spawn -> a single node's {"event":"dht"} line, at most
GET_TIMEOUT = 30.0          # one resolve, either side
SERVE_TIMEOUT = 30.0        # a save -> the gateway serving it, at most
FIRST_SERVE_TIMEOUT = 120.0  # the first version under the name, at most
POLL_S = 0.02
DOWNLOAD_TIMEOUT = 600.0
TARGET_SERVE_S = 3.0
TARGET_BYTES_RATIO = 1.05
INF = float("inf")


# ---------------------------------------------------------------------------------------
# The binary
# ---------------------------------------------------------------------------------------

def help_text(binary, *cmd):
    p = spawn([binary] + list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate(timeout=60)
    return out if p.returncode == 0 else ""


def check_binary(binary):
    """Exits unless the binary has `dht --get-item/--put-item/--nodes` and `key new`; returns
    which of the options cases 2 and 3 need it has: {"serve": [missing…], "bytes": [missing…]}."""
    require_binary(binary)
    dht = help_text(binary, "dht", "--help-hidden")
    missing = [o for o in ("--get-item", "--put-item", "--item-value", "--item-seq", "--nodes", "--dht-bootstrap",
                           "--offline") if o not in dht]
    if not dht or missing:
        sys.exit("bench: `%s dht --help-hidden` does not show %s: this binary cannot run this bench"
                 % (binary, ", ".join(missing) or "`webseed dht`'s usage"))
    if "USAGE: webseed key new" not in help_text(binary, "key", "new", "--help"):
        sys.exit("bench: this binary has no `webseed key new`")
    seed, gateway, get = (help_text(binary, c, "--help") for c in ("seed", "gateway", "get"))
    need_seed = [("seed " + o) for o in ("--key", "--watch") if o not in seed]
    return {"serve": need_seed + ["gateway --name-refresh"] * ("--name-refresh" not in gateway),
            "bytes": need_seed + ["get --name-refresh"] * ("--name-refresh" not in get)}


def key_new(binary, path):
    """`webseed key new PATH --json`: {"public_key", "name", "magnet"}."""
    p = subprocess.run([binary, "key", "new", path, "--json"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit("bench: webseed key new failed: %s" % p.stderr.strip()[-300:])
    k = json.loads(p.stdout.strip().splitlines()[-1])
    shown = subprocess.run([binary, "key", "show", path, "--json"], capture_output=True, text=True, timeout=60)
    if shown.returncode != 0 or json.loads(shown.stdout.strip().splitlines()[-1]).get("name") != k.get("name"):
        raise SystemExit("bench: `webseed key show --json` does not print the name `key new` printed")
    return k


# ---------------------------------------------------------------------------------------
# Single DHT nodes joining the network
# ---------------------------------------------------------------------------------------

def single_argv(binary, state, bootstrap, extra):
    return [binary, "dht", "--listen", "127.0.0.1:0", "--offline", "--json", "--state-dir", state,
            "--dht-bootstrap", "127.0.0.1:%d" % bootstrap] + extra


def is_node_up(e):
    return e.get("event") == "dht" and "port" in e


def start_single(binary, work, name, bootstrap, extra, incidents):
    """A single-node `webseed dht` process whose DHT node is up; one that shows no `dht` line
    within NODE_UP_TIMEOUT s (Tools/bench/dht: its UDP port could not be bound) is recorded in
    `incidents`, stopped and replaced (up to 3 tries)."""
    for attempt in range(3):
        tag = name if attempt == 0 else "%s-retry%d" % (name, attempt)
        proc = Proc(single_argv(binary, os.path.join(work, tag), bootstrap, extra), tag,
                    os.path.join(work, tag + ".stderr"))
        if proc.wait_for(is_node_up, NODE_UP_TIMEOUT) is not None:
            return proc
        incidents.append({"process": tag, "what": "no `dht` line in %.0f s (%s): %s" % (
            NODE_UP_TIMEOUT, "running" if proc.alive() else "exit %s" % proc.p.poll(), proc.stderr_tail(200))})
        log("  %s: %s; starting another" % (tag, incidents[-1]["what"]))
        proc.stop()
    raise SystemExit("bench: %s: three processes in a row without a DHT node" % name)


def put_item(binary, work, name, bootstrap, keyfile, value, seq, incidents):
    """A publisher process that put the item (sent_to >= 1) and keeps running; raises if not."""
    p = start_single(binary, work, name, bootstrap, ["--put-item", keyfile, "--item-value", value,
                                                      "--item-seq", str(seq)], incidents)
    e = p.wait_for(lambda e: e.get("event") == "dht_item_put", PUT_TIMEOUT + 5)
    if e is None or not e.get("sent_to"):
        raise SystemExit("bench: %s: the put of seq %d reached no node (%s); stderr: %s"
                         % (name, seq, e, p.stderr_tail()))
    log("  %s: seq %d put to %d nodes, %.2f s after spawn" % (name, seq, e["sent_to"], e["_t"] - p.t0))
    return p, e


# ---------------------------------------------------------------------------------------
# 1. resolve
# ---------------------------------------------------------------------------------------

def resolve_webseed(binary, work, tag, keyhex, bootstrap, want_seq, incidents, stay=None):
    """One fresh `webseed dht --get-item` (whose DHT node came up: start_single) to its dht_item
    line; then stopped, or with `stay` (a list) kept running as a DHT node and added to it."""
    proc = start_single(binary, work, "get-%s" % tag, bootstrap, ["--get-item", keyhex], incidents)
    state = os.path.join(work, proc.name)
    r = {"bootstrap": bootstrap, "ms": INF, "spawn_ms": INF, "error": None}
    e = proc.wait_for(lambda e: e.get("event") == "dht_item", GET_TIMEOUT + 10)
    if e is None:
        r["error"] = "no dht_item line in %.0f s: %s" % (GET_TIMEOUT + 10, proc.stderr_tail(200))
    elif not e.get("found") or e.get("seq") != want_seq:
        r["error"] = "dht_item found %s, seq %s (want seq %d)" % (e.get("found"), e.get("seq"), want_seq)
    else:
        r["ms"] = float(e["ms"])
        r["spawn_ms"] = (e["_t"] - proc.t0) * 1000
        ready = proc.select("ready")
        if ready:
            r["ready_line_ms"] = (e["_t"] - ready[0]["_t"]) * 1000
    if stay is not None and r["error"] is None:
        stay.append(proc)
        return r
    stop = proc.stop()
    if stop:
        r["stop"] = stop
    shutil.rmtree(state, ignore_errors=True)
    return r


def resolve_libtorrent(work, tag, keyhex, bootstrap, want_seq, stay=None):
    """One fresh libtorrent session (webseedtest/ltitem) to its item line; then stopped, or
    with `stay` (a list) kept running as a DHT node and added to it."""
    argv = program("ltitem") + ["--dht-bootstrap", "127.0.0.1:%d" % bootstrap, "--key", keyhex,
                                "--want-seq", str(want_seq), "--timeout", str(GET_TIMEOUT)]
    if stay is not None:
        argv.append("--stay")
    proc = JsonProc(argv, os.path.join(work, "lt-%s.stderr" % tag))
    r = {"bootstrap": bootstrap, "ms": INF, "first_ms": INF, "get_ms": None, "gets": None, "error": None}
    e = proc.wait_for(lambda e: e.get("event") == "item", GET_TIMEOUT + 15)
    first = proc.select("item_first")
    if e is None:
        r["error"] = "no item line in %.0f s: %s" % (GET_TIMEOUT + 15, proc.stderr_tail(200))
    elif not e.get("found"):
        r["error"] = "not found in %.0f s (highest seq seen %s, %s gets)" % (GET_TIMEOUT, e.get("seq"), e.get("gets"))
    else:
        r.update(ms=float(e["ms"]), get_ms=e.get("get_ms"), gets=e.get("gets"))
        if first:
            r["first_ms"] = float(first[0]["ms"])
    if stay is not None and r["error"] is None:
        stay.append(proc)
        return r
    proc.stop()
    return r


def case_resolve(args, binary, work, rng, ports, incidents, res):
    key = key_new(binary, os.path.join(work, "resolve.key"))
    keyfile = os.path.join(work, "resolve.key")
    keyhex = key["public_key"]
    res["resolve_key"] = key
    # A value the size of a SiteRecord's (d2:ih20:…2:v232:…e, 66 bytes).
    value = "webseed bench/update: a site record stand-in, version %d, 66 bytes.."
    pubs = []
    for seq in (1, 2):
        p, e = put_item(binary, work, "put-%d" % seq, rng.choice(ports), keyfile, value % seq, seq, incidents)
        pubs.append(p)
        res.setdefault("puts", []).append({"seq": seq, "sent_to": e["sent_to"], "s": e["_t"] - p.t0})
    runs = []
    stay = [] if args.readers_stay else None
    warm_port = rng.choice(ports)
    log("  warm-up (untimed): webseed, then libtorrent, through port %d" % warm_port)
    resolve_webseed(binary, work, "warmup", keyhex, warm_port, 2, incidents)
    resolve_libtorrent(work, "warmup", keyhex, warm_port, 2)
    for i in range(args.runs):
        boot = rng.choice(ports)
        busy = wait_idle(30.0, 0.25)
        order = ["webseed", "libtorrent"] if i % 2 == 0 else ["libtorrent", "webseed"]
        pair = {"run": i + 1, "bootstrap": boot, "first": order[0], "busy_before": busy}
        for side in order:
            if side == "webseed":
                pair["webseed"] = resolve_webseed(binary, work, str(i), keyhex, boot, 2, incidents, stay)
            else:
                pair["libtorrent"] = resolve_libtorrent(work, str(i), keyhex, boot, 2, stay)
        w, lt = pair["webseed"], pair["libtorrent"]
        log("  run %2d (%s first, port %d): webseed %s, libtorrent %s" % (
            i + 1, order[0], boot,
            w["error"] or "%.0f ms (spawn -> line %.0f ms)" % (w["ms"], w["spawn_ms"]),
            lt["error"] or "%.0f ms (first alert %.0f ms, last get %.0f ms, %s gets)"
            % (lt["ms"], lt["first_ms"], lt["get_ms"] or 0, lt["gets"])))
        runs.append(pair)
    res["resolve"] = runs
    for p in stay or []:
        p.stop()
    for p in pubs:
        e = p.stop()
        if e:
            res["odd"].append("%s: %s" % (p.name, e))


# ---------------------------------------------------------------------------------------
# 2. serve, 3. bytes: a site published under a name
# ---------------------------------------------------------------------------------------

def http_get(port, host, path, timeout=5.0):
    """(status, body) of GET http://host:port/path sent to 127.0.0.1, or (None, error text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": "%s:%d" % (host, port)})
        r = c.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)
    finally:
        c.close()


def poll_served(port, host, path, want, timeout, t0=None):
    """Polls every POLL_S until GET returns 200 with exactly `want`; (seconds since t0 (default:
    now) or None, polls, last (status, body prefix))."""
    t0 = time.perf_counter() if t0 is None else t0
    polls = 0
    last = None
    while time.perf_counter() - t0 < timeout:
        status, body = http_get(port, host, path)
        polls += 1
        if status == 200 and body == want:
            return time.perf_counter() - t0, polls, last
        last = (status, body[:80] if isinstance(body, bytes) else body)
        time.sleep(POLL_S)
    return None, polls, last


def start_seeder(binary, work, tag, site, keyfile, bootstrap):
    state = os.path.join(work, "%s-seed-state" % tag)
    p = JsonProc([binary, "seed", site, "--key", keyfile, "--watch", "--offline", "--dht-bootstrap",
                  "127.0.0.1:%d" % bootstrap, "--listen", "127.0.0.1:0", "--no-gateway", "--state-dir", state,
                  "--json"], os.path.join(work, "%s-seed.stderr" % tag))
    if p.wait_event("ready", 600) is None:
        raise SystemExit("bench: %s: `webseed seed --key --watch` did not become ready (exit %s): %s"
                         % (tag, p.p.poll(), p.stderr_tail()))
    return p


def page_bytes(version, size=10 * 1024):
    head = ("<!doctype html><title>version %d</title><p>bench/update, version %d</p>\n" % (version, version)).encode()
    filler = random.Random(version).randbytes(size)
    return head + filler.hex().encode()[:size - len(head)]


def case_serve(args, binary, work, rng, ports, res):
    site = os.path.join(work, "serve-site")
    os.makedirs(os.path.join(site, "css"))
    with open(os.path.join(site, "index.html"), "w") as f:
        f.write("<!doctype html><title>bench/update</title><a href=page.html>page</a>\n")
    with open(os.path.join(site, "css", "site.css"), "w") as f:
        f.write("body { font-family: sans-serif }\n" * 40)
    with open(os.path.join(site, "page.html"), "wb") as f:
        f.write(page_bytes(0))
    keyfile = os.path.join(work, "serve.key")
    name = key_new(binary, keyfile)["name"]
    seeder = start_seeder(binary, work, "serve", site, keyfile, rng.choice(ports))
    gw = JsonProc([binary, "gateway", "--offline", "--dht-bootstrap", "127.0.0.1:%d" % rng.choice(ports),
                   "--name-refresh", "1", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0",
                   "--state-dir", os.path.join(work, "serve-gateway-state"), "--json"],
                  os.path.join(work, "serve-gateway.stderr"))
    e = gw.wait_event("gateway", 60)
    if e is None:
        raise SystemExit("bench: `webseed gateway` printed no gateway line in 60 s (exit %s): %s"
                         % (gw.p.poll(), gw.stderr_tail()))
    port = int(e["port"])
    host = "%s.localhost" % name
    t, polls, last = poll_served(port, host, "/page.html", page_bytes(0), FIRST_SERVE_TIMEOUT)
    out = {"name": name, "first_s": t, "updates": []}
    res["serve"] = out
    if t is None:
        out["error"] = "the gateway never served the first version in %.0f s (last answer %r); gateway: %s" % (
            FIRST_SERVE_TIMEOUT, last, gw.stderr_tail(200))
        return
    log("  first version served under %s after %.1f s" % (host, t))
    for u in range(1, args.updates + 1):
        busy = wait_idle(30.0, 0.25)
        new = page_bytes(u)
        t0 = time.perf_counter()
        with open(os.path.join(site, "page.html"), "wb") as f:
            f.write(new)
        t, polls, last = poll_served(port, host, "/page.html", new, SERVE_TIMEOUT, t0)
        # When the seeder put the new version's item (its first put reaching a node after the
        # save), and when the gateway switched to it.
        put = [e for e in seeder.select("name_published") + seeder.select("name_put")
               if e["_t"] > t0 and e.get("sent_to")]
        put.sort(key=lambda e: e["_t"])
        switched = [e for e in gw.select("name_switched") if e["_t"] > t0]
        out["updates"].append({"update": u, "s": t if t is not None else INF, "polls": polls, "busy_before": busy,
                               "put_s": put[0]["_t"] - t0 if put else None, "seq": put[0].get("seq") if put else None,
                               "switched_s": switched[0]["_t"] - t0 if switched else None,
                               "error": None if t is not None else "not served in %.0f s (last answer %r)"
                               % (SERVE_TIMEOUT, last)})
        log("  update %d: %s" % (u, "served after %.2f s (item put after %s, gateway switched after %s, %d polls)"
                                 % (t, "%.2f s" % (put[0]["_t"] - t0) if put else "?",
                                    "%.2f s" % (switched[0]["_t"] - t0) if switched else "?", polls) if t is not None
                                 else out["updates"][-1]["error"]))
    for p, what in ((gw, "gateway"), (seeder, "seeder")):
        e = p.stop()
        if e:
            res["odd"].append("serve %s: %s" % (what, e))


def info_dict_size(binary, work, site):
    """(size of the info dict, v2 hash) of `webseed create SITE`'s torrent, or (None, None)."""
    out = os.path.join(work, "bytes-after.torrent")
    p = subprocess.run([binary, "create", site, "-o", out, "--force", "--json"], capture_output=True, text=True,
                       timeout=900)
    if p.returncode != 0:
        log("  webseed create failed: %s" % p.stderr.strip()[-300:])
        return None, None
    with open(out, "rb") as f:
        size = len(info_span(f.read()))
    return size, info_hashes(out)[0]


def case_bytes(args, binary, work, rng, ports, res):
    src, files = corpus.ensure(os.path.realpath(os.environ.get("WEBSEED_BENCH_DIR", "/tmp/webseed-bench")),
                               "site", args.scale, log=log)
    site = os.path.join(work, "bytes-site")
    shutil.copytree(src, site)
    # A page of about 10 KB: the file edited.
    pages = sorted((s, p) for p, s in files if p.endswith(".html") and 8 * 1024 <= s <= 12 * 1024)
    changed = pages[len(pages) // 2][1] if pages else sorted(files)[0][0]
    out = {"files": len(files), "site_bytes": sum(s for _, s in files), "changed": changed}
    res["bytes"] = out
    keyfile = os.path.join(work, "bytes.key")
    name = key_new(binary, keyfile)["name"]
    seeder = start_seeder(binary, work, "bytes", site, keyfile, rng.choice(ports))
    dest = os.path.join(work, "bytes-out")
    state = os.path.join(work, "bytes-get-state")

    def get(extra, tag):
        return JsonProc([binary, "get", name, "-o", dest, "--offline", "--dht-bootstrap",
                         "127.0.0.1:%d" % rng.choice(ports), "--listen", "127.0.0.1:0", "--state-dir", state,
                         "--json"] + extra, os.path.join(work, "bytes-%s.stderr" % tag))

    def fail(what, *procs):
        out["error"] = what
        for p in procs + (seeder,):
            p.stop()

    # The first version, by a get that exits once it is in place.
    first = get(["--exit-when-done"], "first")
    placed = first.wait_event("name_updated", DOWNLOAD_TIMEOUT)
    if placed is None:
        return fail("the first `webseed get %s --exit-when-done` put no version in place in %.0f s: %s"
                    % (name, DOWNLOAD_TIMEOUT, first.stderr_tail(300)), first)
    first.wait_event("stopped", 30)
    first.stop()
    seq0 = placed["seq"]
    out["first_seq"], out["first_downloaded"] = seq0, placed.get("downloaded")
    log("  first version (seq %d) in place: %s bytes downloaded" % (seq0, placed.get("downloaded")))

    # A follower started on that directory: it takes up the version in place (nothing to fetch).
    follower = get(["--name-refresh", "1"], "follow")
    if follower.wait_for(lambda e: e.get("event") == "name_updated" and e.get("seq") == seq0, 120) is None:
        return fail("the following `webseed get %s --name-refresh 1` did not take up seq %d in 120 s: %s"
                    % (name, seq0, follower.stderr_tail(300)), follower)
    out["follower_start_downloaded"] = [e.get("downloaded") for e in follower.select("name_updated")]

    path = os.path.join(site, changed)
    with open(path, "rb") as f:
        before = f.read()
    new = before[:len(before) // 2] + b"<p>edited by bench/update</p>\n" + before[len(before) // 2:]
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        f.write(new)
    out["changed_size"] = len(new)
    ev = follower.wait_for(lambda e: e.get("event") == "name_updated" and e.get("seq", 0) > seq0, 120)
    if ev is None:
        return fail("the follower put no newer version in place within 120 s of the change: %s"
                    % follower.stderr_tail(300), follower)
    out["update_s"] = ev["_t"] - t0
    out["update_event"] = {k: v for k, v in ev.items() if k != "_t"}
    out["update_bytes"], out["counted_by"] = int(ev["downloaded"]), "name_updated.downloaded"
    resolved = [e.get("v2_infohash") for e in follower.select("name_resolved") if e.get("seq") == ev["seq"]]
    follower.stop()
    seeder_stop = seeder.stop()
    if seeder_stop:
        res["odd"].append("bytes seeder: %s" % seeder_stop)
    out["info_bytes"], created_v2 = info_dict_size(binary, work, site)
    out["v2_matches"] = bool(created_v2) and created_v2 in resolved
    ok, summary, _ = trees.compare_tree(site, dest)
    out["tree_ok"], out["tree_summary"] = ok, summary


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", "--webseed", dest="binary",
                    help="use this webseed binary instead of building one with swift build -c release")
    ap.add_argument("--runs", type=int, default=15, help="resolve: runs, each webseed and libtorrent (default 15)")
    ap.add_argument("--readers-stay", action="store_true",
                    help="resolve: keep each fresh reader running as a DHT node until the end, instead of stopping "
                         "it once it found the item (no churn)")
    ap.add_argument("--updates", type=int, default=5, help="serve: saves timed (default 5)")
    ap.add_argument("--only", help="comma-separated cases: " + ",".join(CASES))
    ap.add_argument("--layout", default="4x50", help="PxM: P processes of M nodes each (default 4x50)")
    ap.add_argument("--scale", type=float, default=1.0, help="bytes: the site's scale (1.0: ~2,000 files)")
    ap.add_argument("--seed", type=int, default=1, help="seed for the choice of bootstrap nodes")
    ap.add_argument("--out", help="markdown output (default artifacts/bench-update.md)")
    args = ap.parse_args()
    try:
        P, M = (int(x) for x in args.layout.lower().split("x"))
        assert P >= 1 and M >= 3
    except (ValueError, AssertionError):
        sys.exit("bench: --layout must be PxM with P >= 1, M >= 3 (e.g. 4x50)")
    cases = CASES if not args.only else args.only.split(",")
    bad = [c for c in cases if c not in CASES]
    if bad or args.runs < 1 or args.updates < 1 or not 0 < args.scale <= 1:
        sys.exit("bench: unknown case %s (cases: %s); --runs and --updates at least 1, 0 < --scale <= 1"
                 % (",".join(bad) or "-", ",".join(CASES)))
    md_path = args.out or os.path.join(REPO, "artifacts", "bench-update.md")
    rng = random.Random(args.seed)

    binary = os.path.abspath(args.binary) if args.binary else build_release()
    missing = check_binary(binary)
    stamp0 = binary_stamp(binary)
    head = git_head()

    work = bench_workdir("update")

    res = {"layout": [P, M], "webseed": binary, "seed": args.seed, "cases": cases, "readers_stay": args.readers_stay,
           "skipped": {}, "odd": []}
    try:
        net, nodes, res["net_up_s"] = dhtnet.start_network(binary, work, P, M)
        ports = [n[2] for n in nodes]
        log("network: %d processes x %d nodes up in %.2f s" % (P, M, res["net_up_s"]))
        res.update(dhtnet.wait_converged(net, [n[3] for n in nodes], CONVERGE_TIMEOUT))
        incidents = res["nodht"] = []
        for case in cases:
            if missing.get(case):
                res["skipped"][case] = missing[case]
                log("%s: SKIPPED: this webseed has no %s" % (case, ", ".join(missing[case])))
                continue
            log("%s ..." % case)
            {"resolve": lambda: case_resolve(args, binary, work, rng, ports, incidents, res),
             "serve": lambda: case_serve(args, binary, work, rng, ports, res),
             "bytes": lambda: case_bytes(args, binary, work, rng, ports, res)}[case]()
        dead = [p.name for p in net if not p.alive()]
        if dead:
            res["odd"].append("network process(es) %s exited during the bench" % ", ".join(dead))
    finally:
        end_children()
    if binary_stamp(binary) != stamp0:
        res["odd"].append("the webseed binary was replaced while this ran: the figures may mix two builds")
    status, lines = report(args, binary, stamp0, head, P, M, res)
    write_report(md_path, lines, res)
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("kept %s (state dirs and every process's stderr) for a look" % work)
    return status


def report(args, binary, stamp0, head, P, M, res):
    table = TargetTable()
    row = table.row

    def fms(x):
        return fmt_ms(x, INF)

    notes = []
    conv = res.get("converged_s")
    row("network", "layout", "%d × `webseed dht --nodes %d` = %d nodes" % (P, M, P * M))
    row("network", "converged (smallest table ≥ %d, average ≥ %.0f%% of ideal %.1f)"
        % (res.get("need_min", 0), 100 * dhtnet.CONVERGED_AVG_SHARE, res.get("ideal_avg", 0)),
        "after %.0f s (average %.1f, smallest %s)" % (conv, res.get("table_avg", 0), res.get("table_min"))
        if conv is not None else "not within %.0f s" % CONVERGE_TIMEOUT, "≤ %.0f s" % CONVERGE_TIMEOUT,
        conv is not None)

    if "resolve" in res:
        runs = res["resolve"]
        w = [r["webseed"]["ms"] for r in runs]
        lt = [r["libtorrent"]["ms"] for r in runs]
        wf = [x for x in w if x != INF]
        lf = [x for x in lt if x != INF]
        puts = res.get("puts", [])
        row("resolve", "item put (seq 1, then seq 2)", ", ".join("seq %d to %d nodes" % (p["seq"], p["sent_to"])
                                                                  for p in puts))
        row("resolve", "fresh nodes that found seq 2: webseed / libtorrent", "%d / %d of %d each"
            % (len(wf), len(lf), len(runs)), "all", len(wf) == len(runs) and len(lf) == len(runs))
        mw, ml = median(w), median(lt)
        row("resolve", "**webseed**: DHT up → item (seq 2, lookup ended), its `ms`, median (min–max)",
            "%s (%s–%s)" % (fms(mw), fms(min(w)), fms(max(w))))
        row("resolve", "**libtorrent 2.0.8**: DHT up → authoritative `dht_mutable_item_alert` seq 2, median (min–max)",
            "%s (%s–%s)" % (fms(ml), fms(min(lt)), fms(max(lt))))
        ratio = mw / ml if mw not in (None, INF) and ml not in (None, INF, 0) else None
        row("resolve", "**webseed / libtorrent** (medians)", "%.2f×" % ratio if ratio is not None else "n/a",
            "≤ 1.00×", ratio is not None and ratio <= 1.0)
        lfirst = [r["libtorrent"]["first_ms"] for r in runs]
        mlf = median(lfirst)
        row("resolve", "libtorrent: DHT up → first alert with seq 2 (one node's answer, before its lookup ended), "
            "median (min–max); webseed's median / this", "%s (%s–%s); %s" % (
                fms(mlf), fms(min(lfirst)), fms(max(lfirst)),
                "%.1f×" % (mw / mlf) if mw not in (None, INF) and mlf not in (None, INF, 0) else "n/a"))
        gm = [r["libtorrent"]["get_ms"] for r in runs if r["libtorrent"]["get_ms"] is not None]
        gs = [r["libtorrent"]["gets"] for r in runs if r["libtorrent"]["gets"] is not None]
        row("resolve", "libtorrent: its last get call → that alert, median; gets called per resolve, median",
            "%s; %s" % (fms(median(gm)), "%g" % median(gs) if gs else "n/a"))
        row("resolve", "webseed: spawn → `dht_item` line read by the bench (process start-up and pipe too), median",
            fms(median([r["webseed"]["spawn_ms"] for r in runs])))
        inc = res.get("nodht") or []
        row("resolve", "webseed processes whose DHT node never started (no `dht` line in %.0f s; each replaced by a "
            "new process)" % NODE_UP_TIMEOUT, "%d of %d" % (len(inc), 3 + len(runs) + len(inc)), "none", not inc)
        wins = sum(1 for r in runs if r["webseed"]["ms"] < r["libtorrent"]["ms"])
        notes.append("resolve: webseed was faster in %d of %d pairs (same bootstrap node, alternating order)"
                     % (wins, len(runs)))
        tail = [r["libtorrent"] for r in runs if r["libtorrent"]["ms"] != INF and r["libtorrent"]["first_ms"] != INF
                and r["libtorrent"]["ms"] - r["libtorrent"]["first_ms"] >= 1000]
        if tail:
            notes.append("resolve: in %d of %d runs libtorrent's first alert with seq 2 came within %s but its "
                         "authoritative one (lookup ended) %s later (median): its get waits for every node it "
                         "queried to answer or time out%s"
                         % (len(tail), len(runs), fms(max(t["first_ms"] for t in tail)),
                            fms(median([t["ms"] - t["first_ms"] for t in tail])),
                            "" if res.get("readers_stay") else ", and the fresh readers of earlier runs, which had "
                            "left, are still in the network's routing tables (churn, as in Tools/bench/dht)"))
        slow = [x for x in wf if x >= 1000]
        if slow:
            notes.append("resolve: %d of %d webseed resolves took ≥ 1 s (%s), the others %s or less. A get that "
                         "finds nothing is tried again 1 s later (WebseedKit/DHTItems.swift), so a miss lands on that "
                         "grid; its events do not say why the first get missed"
                         % (len(slow), len(runs), ", ".join(fms(x) for x in slow[:6]),
                            fms(max([x for x in wf if x < 1000], default=0))))
        again = [r["libtorrent"]["gets"] for r in runs if (r["libtorrent"]["gets"] or 0) >= 2]
        if again:
            notes.append("resolve: libtorrent's first get also came back empty (its routing table was still empty) "
                         "in %d of %d runs; the harness calls the next get as soon as that answer is read, as a "
                         "program resolving a name would" % (len(again), len(runs)))
        for r in runs:
            for side in ("webseed", "libtorrent"):
                if r[side]["error"]:
                    notes.append("resolve run %d, %s (bootstrap port %d): %s" % (r["run"], side, r["bootstrap"],
                                                                                r[side]["error"]))
        busy = [r["busy_before"] for r in runs]
        if busy and max(busy) > 0.25:
            notes.append("resolve: the machine was up to %.0f%% busy before a pair after waiting up to 30 s for it "
                         "to go idle" % (100 * max(busy)))

    if "serve" in res.get("skipped", {}):
        row("serve", "save → a separate gateway serves the new bytes under the name",
            "SKIPPED: this webseed has no %s" % ", ".join(res["skipped"]["serve"]), "≤ %.0f s" % TARGET_SERVE_S)
    elif "serve" in res:
        s = res["serve"]
        if s.get("error"):
            row("serve", "first version served under the name", s["error"], "served", False)
        else:
            row("serve", "first version served under the name (seeder and gateway started together)",
                "after %.1f s" % s["first_s"])
            ts = [u["s"] for u in s["updates"]]
            m = median(ts)
            row("serve", "**save → a separate gateway (`--name-refresh 1`) serves the new bytes**, median (min–max) "
                "of %d saves" % len(ts), "%.2f s (%.2f–%.2f s)" % (m, min(ts), max(ts)) if m != INF else "∞",
                "≤ %.0f s" % TARGET_SERVE_S, m <= TARGET_SERVE_S)
            pt = [u["put_s"] for u in s["updates"] if u["put_s"] is not None]
            row("serve", "of which: save → the seeder's item of the new seq reached DHT nodes (`name_published`: the "
                "watch's debounce, packaging, the put), median", "%.2f s (%d of %d saves)" % (median(pt), len(pt), len(ts))
                if pt else "n/a (no name_published seen)")
            sw = [u["switched_s"] for u in s["updates"] if u["switched_s"] is not None]
            row("serve", "of which: save → the gateway's `name_switched` to it (its next look, the new metadata "
                "verified against the item), median", "%.2f s (%d of %d saves)" % (median(sw), len(sw), len(ts))
                if sw else "n/a (no name_switched seen)")
            for u in s["updates"]:
                if u["error"]:
                    notes.append("serve: save %d: %s" % (u["update"], u["error"]))

    if "bytes" in res.get("skipped", {}):
        row("bytes", "bytes downloaded for a 1-of-2,000-file update / (file + new info dict)",
            "SKIPPED: this webseed has no %s" % ", ".join(res["skipped"]["bytes"]), "≤ %.2f×" % TARGET_BYTES_RATIO)
    elif "bytes" in res:
        b = res["bytes"]
        row("bytes", "site; first version (seq %s) downloaded by `get NAME -o DIR --exit-when-done`"
            % b.get("first_seq", "?"), "%d files, %.1f MB; %s bytes" % (
                b["files"], b["site_bytes"] / 1e6, "{:,}".format(b["first_downloaded"])
                if b.get("first_downloaded") is not None else "?"))
        if b.get("error"):
            row("bytes", "update followed", b["error"], "followed", False)
        else:
            size, info, got = b["changed_size"], b.get("info_bytes"), b["update_bytes"]
            row("bytes", "changed `%s` (%s bytes) → follower's `name_updated` seq %s (%s file(s) changed)" % (
                b["changed"], "{:,}".format(size), b["update_event"].get("seq"), b["update_event"].get("changed")),
                "in place %.2f s after the save" % b["update_s"])
            row("bytes", "payload downloaded for the update (`name_updated` \"downloaded\") / the changed file",
                "{:,} / {:,} = {:.3f}×".format(got, size, got / size))
            ratio = (got + info) / (size + info) if info else None
            row("bytes", "**(payload + new info dict) / (changed file + new info dict)**",
                "({:,} + {:,}) / ({:,} + {:,}) = {}".format(got, info or 0, size, info or 0,
                                                            "%.3f×" % ratio if ratio else "n/a (no info dict)"),
                "≤ %.2f×" % TARGET_BYTES_RATIO, ratio is not None and ratio <= TARGET_BYTES_RATIO)
            row("bytes", "new info dict measured on the right torrent (`webseed create` of the changed directory has "
                "the v2 hash the follower resolved)", "yes" if b.get("v2_matches") else "**no**", "yes",
                bool(b.get("v2_matches")))
            row("bytes", "follower's directory equals the changed site byte for byte", b.get("tree_summary", "?"), "yes",
                bool(b.get("tree_ok")))
            notes.append("bytes: webseed's `downloaded` counts piece payload only; the new info dict is added at its "
                         "size (a peer cannot send less of it), BEP 52 hash replies and message framing are not "
                         "counted (Tools/interop/get_names.py counts every byte through a relay)")

    for x in (res.get("nodht") or [])[:3]:
        notes.append("`%s`: %s" % (x["process"], x["what"]))
    notes += res.get("odd", [])
    if os.sep + "debug" + os.sep in binary:
        notes.append("**DEBUG build of webseed**: these figures only show that the script works")
    if "resolve" in res and args.runs < 15:
        notes.append("**only %d resolve runs**: a smoke run" % args.runs)

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rel_bin = os.path.relpath(binary, REPO) if binary.startswith(REPO + os.sep) else binary
    lines = ["### webseed names: resolving, save-to-serve and update bytes on a %d-node loopback DHT" % (P * M), ""]
    lines.append("%s; %s, %d cores; everything on 127.0.0.1 and --offline. Network: %d × `webseed dht --nodes %d` "
                 "(Tools/bench/dht's). Resolve: an item put at seq 1 then 2; %d pairs of fresh nodes joining "
                 "through the same random network node, alternating which goes first: `webseed dht --get-item` "
                 "(its `ms`, from its get starting as its node comes up, join included) against a fresh libtorrent "
                 "2.0.8 session (from add_dht_node to the authoritative alert, gets repeated at once until one "
                 "finds seq 2), both clocks inside the process; %s. Binary: %s, built %s (repository at %s); seed %d."
                 % (now, cpu_model(), os.cpu_count(), P, M, args.runs,
                    "every reader stayed up as a DHT node (--readers-stay)" if args.readers_stay else
                    "each reader left the network once it had its answer (churn)", rel_bin,
                    datetime.datetime.fromtimestamp(stamp0[0]).strftime("%Y-%m-%d %H:%M:%S") if stamp0 else "?",
                    head, args.seed))
    lines += [""] + TargetTable.HEADER + table.rows + [""]
    for i, n in enumerate(notes, 1):
        lines.append("[%d] %s  " % (i, n))
    if notes:
        lines.append("")
    skipped = sorted(res.get("skipped", {}))
    lines.append("All targets met: %s%s." % ("yes" if table.all_ok and not skipped else "**no**" if not table.all_ok else
                                              "not known",
                                              " (skipped: %s)" % ", ".join(skipped) if skipped else ""))
    return (1 if not table.all_ok else 3 if skipped else 0), lines


if __name__ == "__main__":
    sys.exit(main())
