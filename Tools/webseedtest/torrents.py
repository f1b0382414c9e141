"""Making the torrents the harnesses and benches use: `webseed create` (its JSON summary) and,
for clients that refuse hybrids, a v1-only torrent from libtorrent's creator (Debian's
python3-libtorrent; imported only when asked for)."""

import json
import os

from .procs import run


def create(webseed, site, out, trackers=(), more=()):
    """`webseed create SITE -o OUT --json` with a `--tracker` per tracker (and `more`
    arguments); returns its summary (hashes, magnet, site id). Exits the harness if it fails."""
    argv = [webseed, "create", site, "-o", out, "--json"]
    for t in trackers:
        argv += ["--tracker", t]
    rc, text = run(argv + list(more), 60)
    if rc != 0:
        raise SystemExit("create failed: %s" % text)
    return json.loads([l for l in text.splitlines() if l.startswith("{")][-1])


def v1_torrent(site, out, tracker):
    """A v1-only .torrent of `site` (libtorrent's creator; Transmission 3.00 refuses hybrids)
    whose only tracker is `tracker`; returns its v1 hash."""
    import libtorrent as lt
    fs = lt.file_storage()
    lt.add_files(fs, site)
    ct = lt.create_torrent(fs, 0, flags=lt.create_torrent.v1_only)
    ct.add_tracker(tracker)
    lt.set_piece_hashes(ct, os.path.dirname(site))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return lt.torrent_info(out).info_hashes().v1.to_bytes().hex()
