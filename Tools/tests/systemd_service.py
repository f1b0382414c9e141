#!/usr/bin/env python3
"""webseed as a systemd service (Type=notify), without systemd.

  PYTHONPATH=Tools /usr/bin/python3 Tools/tests/systemd_service.py --webseed .build/debug/webseed

(1) The notify protocol: this script binds an AF_UNIX datagram socket, as systemd does, and
starts the unit's own ExecStart (contrib/systemd/webseed.service), moved onto loopback and a
scratch directory (`webseed seed --state-dir TMP --gateway 127.0.0.1:0 Samples/site --offline
--listen 127.0.0.1:0 --json`), with NOTIFY_SOCKET pointing at it. The first datagram must be READY=1 with a STATUS= line, and
at the moment it arrives the peer port must accept a TCP connection and the gateway must answer
HTTP (that is what systemd promises the units ordered after webseed). SIGTERM must then bring
STOPPING=1 and exit status 0, and nothing else is sent.
(2) The unit: contrib/systemd/webseed.service, copied with ExecStart pointing at the binary
under test, passes `systemd-analyze verify`.

Loopback only; every wait is bounded; the child is killed in `finally`. Prints `ok …` / `FAIL …`
lines and last `N passed, M failed`; exits 1 on any failure.
"""

import argparse
import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from webseedtest.procs import Proc
from webseedtest.results import Results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "Samples", "site")
UNIT = os.path.join(ROOT, "contrib", "systemd", "webseed.service")


def receive(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode("utf-8", "replace")
    except socket.timeout:
        return None


def http_status(port, host):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def unit_command(webseed, work):
    """The unit's own ExecStart, moved onto loopback and this script's directories."""
    with open(UNIT) as f:
        line = next(l for l in f if l.startswith("ExecStart="))
    moved = {"/usr/local/bin/webseed": webseed, "/var/lib/webseed": os.path.join(work, "state"),
             "0.0.0.0:8080": "127.0.0.1:0", "/srv/webseed/site": SAMPLE}
    cmd = [moved.get(a, a) for a in shlex.split(line[len("ExecStart="):])]
    return cmd + ["--offline", "--listen", "127.0.0.1:0", "--json"]


def notify_protocol(r, webseed, work):
    path = os.path.join(work, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    cmd = unit_command(webseed, work)
    Results.info(" ".join(cmd))
    proc = Proc("seed", cmd, os.path.join(work, "logs"), env=env)
    try:
        ready = receive(sock, 120)
        if not r.check(ready is not None and ready.split("\n")[0] == "READY=1", "the first datagram is READY=1", repr(ready)):
            return
        status = [line for line in ready.split("\n") if line.startswith("STATUS=")]
        r.check(len(status) == 1 and "seeding 1 site" in status[0], "READY=1 comes with a STATUS= line", repr(ready))
        # The lines before READY=1 were written before it was sent; the reader may lag a little.
        listening, gateway = proc.wait_for("listening", 5), proc.wait_for("gateway", 5)
        r.check(proc.wait_for("ready", 5) is not None, "the ready event came before READY=1")
        if not r.check(listening is not None and gateway is not None, "listening and gateway events before READY=1"):
            return
        try:
            socket.create_connection(("127.0.0.1", listening["port"]), timeout=5).close()
            peer_ok = True
        except OSError as e:
            peer_ok = False
            Results.info("peer port", str(e))
        r.check(peer_ok, "at READY=1 the peer port accepts a TCP connection")
        try:
            code = http_status(gateway["port"], "localhost:%d" % gateway["port"])
        except OSError as e:
            code = str(e)
        r.check(code == 200, "at READY=1 the gateway answers HTTP", "status %s" % code)
        r.check(receive(sock, 1) is None, "nothing more is sent while it runs")

        proc.p.send_signal(signal.SIGTERM)
        stopping = receive(sock, 20)
        r.check(stopping is not None and stopping.split("\n")[0] == "STOPPING=1", "SIGTERM: STOPPING=1", repr(stopping))
        rc = proc.wait(30)
        r.check(rc == 0, "SIGTERM: exit status 0", "exit %s\n%s" % (rc, "\n".join(proc.log_tail())))
        r.check(receive(sock, 0.5) is None, "nothing after STOPPING=1")
    finally:
        proc.end()
        sock.close()


def unit_verifies(r, webseed, work):
    analyze = shutil.which("systemd-analyze")
    if not r.check(analyze is not None, "systemd-analyze is installed (Debian's systemd package)"):
        return
    with open(UNIT) as f:
        text = f.read()
    r.check("Type=notify" in text, "the unit is Type=notify")
    unit = os.path.join(work, "webseed.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/local/bin/webseed", os.path.abspath(webseed)))
    out = subprocess.run([analyze, "verify", unit], capture_output=True, text=True, timeout=60)
    r.check(out.returncode == 0 and "webseed.service" not in out.stdout + out.stderr,
            "systemd-analyze verify accepts the unit", (out.stdout + out.stderr).strip()[-500:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--webseed", required=True)
    args = parser.parse_args()
    r = Results()
    work = tempfile.mkdtemp(prefix="webseed-systemd-")
    try:
        notify_protocol(r, args.webseed, work)
        unit_verifies(r, args.webseed, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(r.summary())
    sys.exit(r.exit_status())


if __name__ == "__main__":
    main()
