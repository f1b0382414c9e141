#!/usr/bin/env python3
"""The gateway's /metrics page, scraped as Prometheus would.

  PYTHONPATH=Tools /usr/bin/python3 Tools/tests/gateway_metrics.py --webseed .build/debug/webseed

Starts `webseed seed Samples/site --offline --listen 127.0.0.1:0 --gateway 127.0.0.1:0 --json`,
fetches files of the site through the gateway, then GETs /metrics with `Host: localhost:PORT`
(the gateway's own origin): Prometheus' text format with every `webseed_` metric and its type,
the site's counters labelled with its site id, the pieces verified at start, and the HTTP
requests counted by status (the 200s and the 404 just made). On the site's origins
(`<id>.localhost:PORT`, and `127.0.0.1:PORT` where the single site is served at the root)
`/metrics` is the site's own path, never the metrics. SIGTERM then exits 0.

Loopback only; every wait is bounded; the child is killed in `finally`. Prints `ok …` / `FAIL …`
lines and last `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import http.client
import os
import re
import shutil
import sys
import tempfile

from webseedtest.procs import Proc
from webseedtest.results import Results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "Samples", "site")
# name: (type, labels)
METRICS = {
    "webseed_peers": ("gauge", ""),
    "webseed_dht_nodes": ("gauge", ""),
    "webseed_uploaded_bytes_total": ("counter", "site"),
    "webseed_downloaded_bytes_total": ("counter", "site"),
    "webseed_pieces_verified_total": ("counter", ""),
    "webseed_hash_failures_total": ("counter", ""),
    "webseed_bans_total": ("counter", ""),
    "webseed_http_requests_total": ("counter", "status"),
}


def get(port, host, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def samples(text):
    """{(name, labels text): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def scrape(r, port, site_id):
    with open(os.path.join(SAMPLE, "index.html"), "rb") as f:
        index = f.read()
    origin = "%s.localhost:%d" % (site_id, port)
    status, _, body = get(port, origin, "/index.html")
    r.check(status == 200 and body == index, "index.html through the gateway", "status %d" % status)
    status, _, _ = get(port, origin, "/no-such-file.js")
    r.check(status == 404, "a missing file is a 404", "status %d" % status)

    status, ctype, body = get(port, "localhost:%d" % port, "/metrics")
    text = body.decode("utf-8", "replace")
    r.check(status == 200 and ctype.startswith("text/plain; version=0.0.4"), "GET /metrics on the gateway's origin",
            "status %d, %s" % (status, ctype))
    values = samples(text)
    for name, (kind, label) in METRICS.items():
        typed = ("# TYPE %s %s" % (name, kind)) in text.splitlines()
        present = any(n == name and (label in labels if label else labels == "") for n, labels in values)
        r.check(typed and present, "%s is a %s%s" % (name, kind, " labelled %s" % label if label else ""), text[:2000] if not typed else "")
    site = '{site="%s"}' % site_id
    r.check(values.get(("webseed_uploaded_bytes_total", site)) == 0, "uploaded bytes counted per site id (0: no peer yet)")
    r.check(values.get(("webseed_pieces_verified_total", ""), 0) > 0, "pieces verified at start are counted")
    ok = values.get(("webseed_http_requests_total", '{status="200"}'), 0)
    r.check(ok >= 1, "HTTP requests with status 200 are counted", "%s" % ok)
    r.check(values.get(("webseed_http_requests_total", '{status="404"}'), 0) >= 1, "the 404 is counted with its status")
    # Scraped again, the first scrape is counted too.
    _, _, body = get(port, "localhost:%d" % port, "/metrics")
    again = samples(body.decode("utf-8", "replace")).get(("webseed_http_requests_total", '{status="200"}'), 0)
    r.check(again == ok + 1, "each scrape is one more 200", "%s then %s" % (ok, again))

    for host in (origin, "127.0.0.1:%d" % port):
        status, _, body = get(port, host, "/metrics")
        r.check(status == 404 and b"webseed_" not in body, "/metrics on %s is the site's path, not metrics" % host,
                "status %d" % status)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--webseed", required=True)
    args = parser.parse_args()
    r = Results()
    work = tempfile.mkdtemp(prefix="webseed-metrics-")
    cmd = [args.webseed, "seed", SAMPLE, "--offline", "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0",
           "--json", "--state-dir", os.path.join(work, "state")]
    proc = Proc("seed", cmd, os.path.join(work, "logs"))
    try:
        ready = proc.wait_for("ready", 120)
        gateway, site = proc.wait_for("gateway", 1), proc.wait_for("site", 1)
        if r.check(ready is not None and gateway is not None and site is not None, "the seeder is ready"):
            scrape(r, gateway["port"], site["site_id"])
        rc, _ = proc.stop(timeout=30)
        r.check(rc == 0, "SIGTERM: exit status 0", "exit %s" % rc)
    finally:
        proc.end()
        shutil.rmtree(work, ignore_errors=True)
    print(r.summary())
    sys.exit(r.exit_status())


if __name__ == "__main__":
    main()
