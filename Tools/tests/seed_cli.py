#!/usr/bin/python3
"""`webseed seed` as a user runs it: state directory reuse, resume records, --recheck, files
changed before start and while seeding (through the gateway), port fallback, --peer (connecting out to a listening libtorrent),
argument errors and graceful shutdown. Loopback only; every wait is bounded.

Usage: PYTHONPATH=Tools /usr/bin/python3 Tools/tests/seed_cli.py --webseed .build/debug/webseed
Needs Debian's python3-libtorrent (for --peer). Last line: `N passed, M failed`.
"""
import argparse, http.client, os, shutil, signal, subprocess, sys, tempfile, time

import libtorrent as lt

from webseedtest.ltsession import OFFLINE, TCP_ONLY
from webseedtest.procs import Proc
from webseedtest.results import Results

R = Results()


class Seeder(Proc):
    """A running `webseed seed --json`, waited for until it is ready; its events read as they come."""

    started = 0

    def __init__(self, ws, args, logdir, timeout=30):
        Seeder.started += 1
        super().__init__("seed-%d" % Seeder.started, [ws, "seed", *args, "--json"], logdir)
        if self.wait_for("ready", timeout) is None:
            self.kill()
            raise RuntimeError("seeder not ready: %s" % self.log_tail(8))

    def event(self, kind):
        with self.cond:
            return [e for _, e in self.events if e.get("event") == kind]

    def terminate(self, timeout=10):
        """SIGTERM; (exit status or None if it had to be killed, everything it printed)."""
        code, _ = self.stop(signal.SIGTERM, timeout)
        return code, "\n".join(line for _, line in self.lines)


def one_line_error(ws, args, needle):
    p = subprocess.run([ws, "seed", *args], capture_output=True, text=True, timeout=60)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    return p.returncode != 0 and len(lines) == 1 and lines[0].startswith("webseed: error:") and needle in lines[0], f"{p.returncode} {p.stderr!r}"


def state_directory_faults(ws, work, site, logs):
    """Issue 16, findings 3 (dht.state) and 7: what is found in the state directory never
    hangs start, never gives a raw error dump, and never swaps the site for another torrent."""
    # A FIFO as dht.state: a warning and a fresh DHT node, not a start blocked in open().
    fifo_state = os.path.join(work, "state-fifo")
    os.makedirs(fifo_state)
    os.mkfifo(os.path.join(fifo_state, "dht.state"))
    try:
        s = Seeder(ws, [site, "--listen", "127.0.0.1:0", "--offline", "--state-dir", fifo_state], logs, timeout=30)
    except RuntimeError as e:
        R.check(False, "a FIFO as dht.state does not block start", more=[str(e)[-300:]])
    else:
        warnings = [e["message"] for e in s.event("warning")]
        R.check(any("dht.state" in w and "not a regular file" in w for w in warnings), "a FIFO as dht.state does not block start",
                more=[str(warnings)])
        code, rest = s.terminate()
        R.check(code == 0, "and SIGTERM stops that seeder", more=[str(code), rest[-300:]])

    # resume/ or sites/ being a plain file: one line naming it.
    for sub in ["resume", "sites"]:
        bad = os.path.join(work, "state-" + sub)
        os.makedirs(bad)
        with open(os.path.join(bad, sub), "w") as f:
            f.write("x")
        ok, d = one_line_error(ws, [site, "--listen", "127.0.0.1:0", "--offline", "--state-dir", bad],
                               f"{bad}/{sub} is a file, not a directory")
        R.check(ok and "Error Domain" not in d and "NSCocoa" not in d, f"{sub}/ as a plain file is a one-line error naming it", more=[d])

    # The kept site.torrent replaced by another valid torrent: packaged again, with a warning.
    swap_state = os.path.join(work, "state-swap")
    common = ["--listen", "127.0.0.1:0", "--offline", "--state-dir", swap_state]
    s = Seeder(ws, [site, *common], logs)
    first = s.event("site")[0]
    s.terminate()
    other = os.path.join(work, "other")
    os.makedirs(other)
    with open(os.path.join(other, "x.txt"), "w") as f:
        f.write("another site")
    subprocess.run([ws, "create", other, "-o", first["torrent"], "--force"], check=True, capture_output=True, timeout=60)
    s = Seeder(ws, [site, *common], logs)
    again = s.event("site")[0]
    warnings = [e["message"] for e in s.event("warning")]
    R.check(again["v2_infohash"] == first["v2_infohash"] and again["name"] == first["name"],
            "a replaced site.torrent is not seeded in the site's place", more=[str((first, again))])
    R.check(len(s.event("packaged")) == 1 and any("not the torrent packaged" in w for w in warnings),
            "it is packaged again, with a warning", more=[str(warnings)])
    s.terminate()

    # A FIFO in place of a file kept for the packaged site: read without blocking, the site
    # packaged again (which renames over the FIFO) with a warning naming it.
    site_dir = os.path.dirname(first["torrent"])
    for name in ["site.torrent", "fingerprint", "infohash"]:
        kept = os.path.join(site_dir, name)
        os.remove(kept)
        os.mkfifo(kept)
        try:
            s = Seeder(ws, [site, *common], logs, timeout=30)
        except RuntimeError as e:
            R.check(False, f"a FIFO as sites/<key>/{name} does not block start", more=[str(e)[-300:]])
            continue
        warnings = [e["message"] for e in s.event("warning")]
        R.check(len(s.event("packaged")) == 1 and any(kept in w and "not a regular file" in w for w in warnings),
                f"a FIFO as sites/<key>/{name}: packaged again, with a warning naming it", more=[str(warnings)])
        R.check(s.event("site")[0]["v2_infohash"] == first["v2_infohash"], f"and the same site is seeded ({name})")
        s.terminate()

    # A FIFO in place of the resume record: one warning naming it, every file hashed again.
    record = os.path.join(swap_state, "resume", first["v2_infohash"] + ".resume")
    os.remove(record)
    os.mkfifo(record)
    try:
        s = Seeder(ws, [site, *common], logs, timeout=30)
    except RuntimeError as e:
        R.check(False, "a FIFO as the resume record does not block start", more=[str(e)[-300:]])
    else:
        warnings = [e["message"] for e in s.event("warning")]
        v = s.event("verified")
        R.check(sum(record in w and "hashed again" in w for w in warnings) == 1 and v and v[0]["hashed_files"] == 2,
                "a FIFO as the resume record: one warning naming it, every file hashed again", more=[str((warnings, v))])
        s.terminate()


def http_get(port, path):
    """(status, body) of GET path from the gateway at 127.0.0.1:port."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def changed_while_seeding(ws, work, logs):
    """Files appended to, truncated, rewritten at the same size or renamed over (by a file of
    the same size) while `seed --gateway` runs:
    the gateway answers 502 naming the file (never old or new bytes), the seeder warns once
    per file, and the files left alone are served as before."""
    live = os.path.join(work, "live")
    os.makedirs(live)
    original = {name: os.urandom(size) for name, size in
                [("grow.js", 50_000), ("shrink.css", 40_000), ("edit.html", 30_000), ("swap.svg", 10_000), ("keep.txt", 20_000)]}
    for name, data in original.items():
        with open(os.path.join(live, name), "wb") as f:
            f.write(data)

    def at(name):
        return os.path.join(live, name)

    s = Seeder(ws, [live, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--offline",
                    "--state-dir", os.path.join(work, "state-live")], logs)
    try:
        gw = s.wait_for("gateway", 10)
        if not R.check(gw is not None, "seed --gateway says where its gateway listens", more=[s.log_tail(8)]):
            return
        port = gw["port"]
        served = {name: http_get(port, "/" + name) for name in original}
        R.check(all(served[n] == (200, original[n]) for n in original), "before any change, every file is served as it verified",
                more=[str({n: (st, len(b)) for n, (st, b) in served.items()})])
        with open(at("grow.js"), "ab") as f:
            f.write(b"/* appended */")
        with open(at("shrink.css"), "r+b") as f:
            f.truncate(30_000)
        with open(at("edit.html"), "r+b") as f:
            f.seek(20_000)
            f.write(bytes([original["edit.html"][20_000] ^ 0xFF]))
        with open(at("swap.svg.new"), "wb") as f:
            f.write(os.urandom(10_000))
        os.replace(at("swap.svg.new"), at("swap.svg"))
        for name in ["grow.js", "shrink.css", "edit.html", "swap.svg"]:
            answers = [http_get(port, "/" + name) for _ in range(3)]
            on_disk = open(at(name), "rb").read()
            clean = all(st == 502 and name.encode() in body and b"changed on disk" in body and len(body) < 1000
                        and original[name][:64] not in body and on_disk[:64] not in body for st, body in answers)
            R.check(clean, f"{name} changed while seeding: 502 naming it, none of its bytes",
                    more=[str([(st, body[:200]) for st, body in answers])])
        R.check(http_get(port, "/keep.txt") == (200, original["keep.txt"]), "an unchanged file is still served")
    finally:
        code, _ = s.terminate()
    # Everything the seeder printed is in once it stopped: one event per changed file.
    changed = sorted(e.get("path") for e in s.event("file_changed"))
    R.check(code == 0 and changed == ["edit.html", "grow.js", "shrink.css", "swap.svg"],
            "one file_changed event per changed file, naming it", more=[str((code, changed))])
    R.check(not any("changed while it was being hashed" in line for _, line in s.lines) and
            "changed while it was being hashed" not in open(s.err_path, errors="replace").read(),
            "a truncated file is a change, not a read error")

    # Without --json: one warning line on stderr for a file appended to while seeding.
    p = Proc("seed-text", [ws, "seed", live, "--listen", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--offline",
                           "--state-dir", os.path.join(work, "state-live-text")], logs)
    answers, port = [], None
    try:
        deadline = time.time() + 60
        while time.time() < deadline and port is None:
            with p.cond:
                for _, line in p.lines:
                    if line.startswith("gateway  http://localhost:"):
                        port = int(line.split("http://localhost:", 1)[1].split("/", 1)[0])
                p.cond.wait(0.2)
        if port is not None:
            with open(at("keep.txt"), "ab") as f:
                f.write(b"more")
            answers = [http_get(port, "/keep.txt")[0] for _ in range(2)]
    finally:
        p.stop(signal.SIGTERM, 10)
    warnings = [l for l in open(p.err_path, errors="replace").read().splitlines() if "keep.txt" in l]
    R.check(answers == [502, 502] and len(warnings) == 1 and warnings[0].startswith("webseed: warning:")
            and "keep.txt changed on disk since it was verified; its pieces are no longer served" in warnings[0],
            "text output: one warning line naming the file", more=[str((port, answers, warnings))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    args = ap.parse_args()
    ws = os.path.abspath(args.webseed)
    work = tempfile.mkdtemp(prefix="webseed-seedcli-")
    try:
        site = os.path.join(work, "site")
        os.makedirs(os.path.join(site, "css"))
        with open(os.path.join(site, "index.html"), "wb") as f:
            f.write(os.urandom(70_000))
        with open(os.path.join(site, "css", "a.css"), "wb") as f:
            f.write(b"body{}")
        state = os.path.join(work, "state")
        logs = os.path.join(work, "logs")
        common = ["--listen", "127.0.0.1:0", "--offline", "--state-dir", state]

        s = Seeder(ws, [site, *common], logs)
        R.check(len(s.event("packaged")) == 1, "first start packages the directory", more=[str(s.events)])
        port = s.event("listening")[0]["port"]
        site_event = s.event("site")[0]
        R.check(f"x.pe=127.0.0.1:{port}" in site_event["magnet"], "magnet carries x.pe for the listening address", more=[str(site_event)])
        torrent = site_event["torrent"]
        R.check(torrent.startswith(state) and os.path.exists(torrent), "the torrent is kept in the state directory", more=[str(torrent)])
        code, rest = s.terminate()
        R.check(code == 0 and '"stopped"' in rest, "SIGTERM exits 0 and says it stopped", more=[str((code, rest))])

        s = Seeder(ws, [site, *common], logs)
        v = s.event("verified")
        R.check(not s.event("packaged") and v and v[0]["hashed_files"] == 0 and v[0]["resumed_files"] == 2, "second start reuses the torrent and the resume record (no hashing)", more=[str(s.events)])
        R.check(s.event("site")[0]["v2_infohash"] == site_event["v2_infohash"], "same site, same info hash")
        # Port fallback: a second seeder asked for the first one's port takes the next.
        busy = s.event("listening")[0]["port"]
        t = Seeder(ws, [site, "--listen", f"127.0.0.1:{busy}", "--offline", "--state-dir", os.path.join(work, "state2")], logs)
        got = t.event("listening")[0]["port"]
        R.check(got == busy + 1 or (busy < got <= busy + 10), "a taken port falls through to the next one", more=[str((busy, got))])
        t.terminate()
        s.terminate()

        s = Seeder(ws, [torrent, "--data", site, *common, "--recheck"], logs)
        v = s.event("verified")[0]
        R.check(v["hashed_files"] == 2 and v["pieces"] == v["of"], "--recheck hashes everything again", more=[str(v)])
        s.terminate()

        # A file changed before start: named in a warning, its pieces withheld, the rest served.
        with open(os.path.join(site, "index.html"), "r+b") as f:
            f.seek(100)
            f.write(b"X")
        s = Seeder(ws, [torrent, "--data", site, *common], logs)
        v = s.event("verified")[0]
        warnings = [e["message"] for e in s.event("warning")]
        R.check(v["pieces"] < v["of"] and any("index.html" in w for w in warnings) and any("index.html" in p for p in v["problems"]), "a changed file is named and its pieces are not served", more=[str((v, warnings))])
        s.terminate()

        changed_while_seeding(ws, work, logs)

        # --peer: webseed connects out to a libtorrent that is waiting with an empty directory.
        with open(os.path.join(site, "index.html"), "r+b") as f:
            f.seek(100)
            f.write(b"\0")
        fresh = os.path.join(work, "fresh")
        shutil.copytree(site, fresh)
        with open(os.path.join(fresh, "index.html"), "wb") as f:
            f.write(os.urandom(70_000))
        dl = os.path.join(work, "dl")
        os.makedirs(dl)
        sess = lt.session(dict(OFFLINE, **TCP_ONLY, listen_interfaces="127.0.0.1:0"))
        lport = sess.listen_port()
        fresh_torrent = os.path.join(work, "fresh.torrent")
        subprocess.run([ws, "create", fresh, "-o", fresh_torrent], check=True, capture_output=True, timeout=60)
        p = lt.add_torrent_params()
        p.ti = lt.torrent_info(fresh_torrent)
        p.save_path = dl
        h = sess.add_torrent(p)  # waiting, with nothing, before webseed starts
        s = Seeder(ws, [fresh_torrent, "--data", fresh, "--listen", "127.0.0.1:0", "--offline", "--state-dir", os.path.join(work, "state3"),
                        "--peer", f"127.0.0.1:{lport}"], logs)
        deadline = time.time() + 40
        while time.time() < deadline and not h.status().is_seeding:
            time.sleep(0.05)
        done = h.status().is_seeding
        sess.remove_torrent(h)
        del h, sess  # closes libtorrent's files, flushing its write cache
        same = done and all(
            open(os.path.join(fresh, r), "rb").read() == open(os.path.join(dl, "fresh", r), "rb").read() for r in ["index.html", "css/a.css"])
        R.check(same, "--peer: libtorrent, listening with nothing, receives the site from webseed's outgoing connection")
        s.terminate()

        # On a terminal: the status line (peers, upload rate, total) is drawn and redrawn.
        tty_state = os.path.join(work, "state-tty")
        log = os.path.join(work, "tty.log")
        term = subprocess.Popen(["script", "-qfec", f"exec {ws} seed {site} --listen 127.0.0.1:0 --offline --state-dir {tty_state}", log],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        drawn = 0
        deadline = time.time() + 15
        while time.time() < deadline and drawn < 2:
            if os.path.exists(log):
                with open(log, "rb") as f:
                    drawn = f.read().count(b"\x1b[Kpeers 0  up ")
            time.sleep(0.1)
        subprocess.run(["pkill", "-TERM", "-P", str(term.pid)], timeout=10)  # webseed runs as script's child
        try:
            term.wait(10)
        except subprocess.TimeoutExpired:
            term.kill()
        with open(log, "rb") as f:
            text = f.read()
        R.check(drawn >= 2 and b"stopped" in text, "on a terminal the status line is drawn and redrawn, and SIGTERM still stops it", more=[str((drawn, text[-300:]))])

        state_directory_faults(ws, work, site, logs)

        ok, d = one_line_error(ws, [torrent], "--data")
        R.check(ok, "a .torrent without --data is a one-line error", more=[str(d)])
        ok, d = one_line_error(ws, [site, "--listen", "nonsense", "--offline", "--state-dir", state], "invalid --listen")
        R.check(ok, "an invalid --listen is a one-line error", more=[str(d)])
        ok, d = one_line_error(ws, [site, "--max-connections", "0", "--offline", "--state-dir", state], "--max-connections must be")
        R.check(ok, "--max-connections 0 is a one-line error", more=[str(d)])
        ok, d = one_line_error(ws, [os.path.join(work, "nope"), "--offline", "--state-dir", state], "no such file")
        R.check(ok, "a missing source is a one-line error", more=[str(d)])
        junk = os.path.join(work, "junk.torrent")
        with open(junk, "wb") as f:
            f.write(b"d4:infoi3ee")
        ok, d = one_line_error(ws, [junk, "--data", site, "--offline", "--state-dir", state], "not a valid torrent")
        R.check(ok, "an invalid torrent is a one-line error", more=[str(d)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(R.summary())
    sys.exit(R.exit_status())


if __name__ == "__main__":
    main()
