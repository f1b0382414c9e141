"""Deterministic content for the harnesses: the byte stream of shared/vectors.json and the
content sets (the sample site, a bundle of awkward names and sizes) that seed_clients and
get_seeders seed and download."""

import hashlib
import os
import shutil

from .trees import list_files

MIB = 1024 * 1024


def gen_data(seed, n):
    """data(seed, n) of shared/vectors.json: first n bytes of SHA256(seed:0) ‖ SHA256(seed:1) ‖ …"""
    out = bytearray()
    i = 0
    seed = str(seed)
    while len(out) < n:
        out += hashlib.sha256(("%s:%d" % (seed, i)).encode()).digest()
        i += 1
    return bytes(out[:n])


def bundle_files():
    """About 60 files, deterministic content (SHA-256 stream of a seed). No two names differ
    only in case: libtorrent treats such siblings (a file `A` beside a directory `a/`) as
    duplicates and saves the file as `A.1`."""
    f = [
        ("index.html", 2827), ("404.html", 1114), ("favicon.ico", 1150), ("robots.txt", 40),
        ("empty.txt", 0),
        ("assets/app.js", 70000), ("assets/app.js.map", 150001), ("assets/style.css", 5000),
        ("assets/fonts/inter.woff2", 98000), ("assets/fonts/inter-bold.woff2", 101000),
        ("assets/img/hero.jpg", MIB + 17), ("assets/img/logo.svg", 860),
        ("assets.json", 1176), ("assets-legacy/app.js", 17000), ("assets-legacy.js", 576),
        ("a.txt", 100), ("a/b.txt", 20000), ("a-b", 300), ("a.b/c", 50), ("B", 1),
        ("media/intro.webm", 3 * MIB - 5), ("media/podcast.mp3", 2 * MIB + 12345),
        ("docs/café.txt", 229), ("docs/read me.txt", 61),
        ("docs/api/v1/index.html", 4100), ("docs/api/v1/endpoints.json", 9000),
        ("deep/a/b/c/d/e/f/leaf.txt", 10),
        ("data/exact-16k.bin", 16384), ("data/16k-plus-1.bin", 16385),
        ("data/exact-32k.bin", 32768), ("data/one-byte", 1),
    ]
    for i in range(10):
        f.append(("assets/img/icons/icon-%02d.png" % i, 300 + i * 397))
    for i in range(1, 6):
        f.append(("docs/guide/setup/step-%d.html" % i, 1000 + i * 731))
    for i in range(8):
        f.append(("blog/2024/%02d/post.html" % (i + 1), 3000 + i * 1500))
    for i in range(6):
        f.append(("data/table-%d.csv" % i, 200 + i * 5000))
    return f


def write_generated(root, files, tag):
    """Writes `files` ((path, size) pairs) under a fresh `root`, each file's bytes
    gen_data("<tag>:<path>", size)."""
    if os.path.exists(root):
        shutil.rmtree(root)
    for rel, size in files:
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(gen_data(tag + ":" + rel, size) if size else b"")


def layers_files():
    """160 files of 2 to 5 pieces at 16 KiB (each needs its own piece layer, one BEP 52 hash
    request), more than a downloader keeps outstanding at one peer, and an index.html."""
    f = [("index.html", 1500)]
    for i in range(160):
        f.append(("pages/%03d/page.bin" % i, 16385 + (i * 7919) % (4 * 16384)))
    return f


class ContentSet:
    """A directory of files a harness seeds and downloads, with its files' sizes."""

    def __init__(self, label, path):
        self.label = label
        self.path = os.path.abspath(path)
        self.name = os.path.basename(self.path)
        self.files = list_files(self.path)

    def describe(self):
        return "%s (%d files, %d bytes)" % (self.label, len(self.files), sum(self.files.values()))


def content_sets(wanted, sample, work):
    """The sets named in `wanted` ("sample,bundle,layers"): the sample site as it is, the
    bundle and the many-layers set written afresh under work/content."""
    sets = []
    names = [s for s in wanted.split(",") if s]
    if "sample" in names:
        sets.append(ContentSet("sample", sample))
    if "bundle" in names:
        write_generated(os.path.join(work, "content", "bundle"), bundle_files(), "bundle")
        sets.append(ContentSet("bundle", os.path.join(work, "content", "bundle")))
    if "layers" in names:
        write_generated(os.path.join(work, "content", "layers"), layers_files(), "layers")
        sets.append(ContentSet("layers", os.path.join(work, "content", "layers")))
    return sets


def write_files(root, files):
    """Writes {relative path: bytes} under root, removing whatever root held before."""
    shutil.rmtree(root, ignore_errors=True)
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
