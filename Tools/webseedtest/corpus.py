"""Deterministic benchmark corpora for `Tools/bench/create`.

Every corpus is described by a list of (relative path, size) built from a seeded
random.Random, and its file contents come from a second seeded stream
(random.Random(seed).randbytes), so two runs on any machine produce byte-identical
trees. Contents are pseudo-random (incompressible), never zeros.

Names are chosen so that no entry's name is a prefix of a sibling's name (e.g. no
directory `a` next to a file `a.txt` or `a-b`), which would trigger libtorrent
2.0.8's hybrid file-order bug; `check_names` enforces it.
"""

import json
import os
import random
import shutil
import time

GENERATOR_VERSION = 1
KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

WORDS = (
    "alpha bravo cedar delta ember fjord grove harbor island jasper kelp lumen "
    "meadow nova orbit prairie quartz river summit tundra umber valley willow "
    "xenon yonder zephyr amber birch cobalt dune echo flint glacier haze iris "
    "juniper karst lagoon mesa nectar opal pine quill reef sable thorn"
).split()


def _slug(rng, words=3):
    return "-".join(rng.choice(WORDS) for _ in range(words))


def _loguniform(rng, lo, hi):
    import math
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class _Names:
    """Unique names per directory, rejecting prefix-of-sibling collisions."""

    def __init__(self):
        self.by_dir = {}

    def ok(self, parent, name):
        sib = self.by_dir.setdefault(parent, set())
        for s in sib:
            if s == name or s.startswith(name) or name.startswith(s):
                return False
        return True

    def add(self, parent, name):
        self.by_dir.setdefault(parent, set()).add(name)


def _add_path(names, files_seen, path):
    """Registers every component of path; returns False on a name clash."""
    parts = path.split("/")
    parent = ""
    new = []
    for p in parts:
        key = (parent, p)
        if key not in files_seen:
            if not names.ok(parent, p):
                return False
            new.append(key)
        parent = parent + "/" + p if parent else p
    for (par, p) in new:
        names.add(par, p)
        files_seen.add((par, p))
    return True


def site_layout(scale):
    """~2,000 files / ~150 MB at scale 1.0 (mostly small text, some images, a few big media)."""
    rng = random.Random(0x5173)
    names = _Names()
    seen = set()
    out = []

    def add(path, size):
        if _add_path(names, seen, path):
            out.append((path, max(1, size)))
            return True
        return False

    def n(count):
        return max(1, int(round(count * scale)))

    text_size = lambda: _loguniform(rng, 600, 40 * KIB)
    # Top-level pages.
    for f in ("index.html", "about.html", "contact.html", "robots.txt", "sitemap.xml",
              "favicon.ico", "manifest.json", "feed.xml", "notfound.html"):
        add(f, text_size())
    # Blog posts: blog/YYYY/MM/slug/index.html (+ an image now and then).
    posts = n(520)
    i = 0
    while i < posts:
        y = 2015 + rng.randrange(10)
        m = 1 + rng.randrange(12)
        slug = "%s-%04d" % (_slug(rng), i)
        base = "blog/%d/%02d/%s" % (y, m, slug)
        if not add(base + "/index.html", text_size()):
            continue
        if rng.random() < 0.25:
            add(base + "/cover-%04d.jpg" % i, _loguniform(rng, 50 * KIB, 500 * KIB))
        i += 1
    # Documentation: docs/<section>/<page>.html plus md sources.
    sections = ["guide", "reference", "tutorials", "api", "howto", "faq"]
    for k in range(n(640)):
        sec = sections[k % len(sections)]
        sub = "part%02d" % (k % 9)
        add("docs/%s/%s/page-%04d.html" % (sec, sub, k), text_size())
    # Scripts and styles.
    for k in range(n(260)):
        add("assets/js/chunk-%05d-%08x.js" % (k, rng.getrandbits(32)), _loguniform(rng, 800, 120 * KIB))
    for k in range(n(90)):
        add("assets/css/style-%04d-%08x.css" % (k, rng.getrandbits(32)), _loguniform(rng, 500, 60 * KIB))
    for k in range(n(60)):
        add("assets/icons/icon-%04d.svg" % k, _loguniform(rng, 300, 6 * KIB))
    # Image galleries.
    exts = ["jpg", "jpg", "jpg", "png", "webp"]
    for k in range(n(250)):
        album = "album-%02d" % (k % 15)
        add("images/gallery/%s/img-%05d.%s" % (album, k, rng.choice(exts)),
            _loguniform(rng, 50 * KIB, 500 * KIB))
    # Fonts: many woff2 of tens of KB, and a couple of big CJK fonts.
    for k in range(n(16)):
        add("fonts/family-%02d/font-%02d.woff2" % (k // 4, k), _loguniform(rng, 20 * KIB, 300 * KIB))
    for k in range(n(2)):
        add("fonts/cjk/noto-cjk-%d.woff2" % k, rng.randrange(3 * MIB, 6 * MIB))
    # Videos.
    for k in range(n(6)):
        add("media/video/clip-%02d.mp4" % k, rng.randrange(3 * MIB, 8 * MIB))
    # Downloads.
    for k in range(n(20)):
        add("downloads/file-%03d.%s" % (k, rng.choice(["pdf", "zip"])), _loguniform(rng, 100 * KIB, 2 * MIB))
    return out


def big_layout(scale):
    size = GIB if scale >= 1.0 else 128 * MIB
    return [("movie.mkv", size)]


def small_layout(scale):
    """20,000 files of 100 B – 8 KiB at scale 1.0, in dirs of 50 files, two levels."""
    rng = random.Random(0x5A11)
    count = max(100, int(round(20000 * scale)))
    out = []
    exts = ["html", "json", "txt", "js", "css", "svg"]
    for k in range(count):
        d1 = "group-%02d" % (k // 1000)
        d2 = "set-%03d" % ((k // 50) % 20)
        out.append(("%s/%s/item-%05d.%s" % (d1, d2, k, rng.choice(exts)), rng.randint(100, 8 * KIB)))
    return out


LAYOUTS = {"site": site_layout, "big": big_layout, "small": small_layout}
SEEDS = {"site": 101, "big": 202, "small": 303}


def check_names(files):
    names = _Names()
    seen = set()
    for path, _ in files:
        if not _add_path(names, seen, path):
            raise ValueError("name clash (prefix of a sibling) at %s" % path)


def ensure(root, corpus, scale, log=print):
    """Creates root/corpus (unless a complete stamped copy exists); returns (dir, files)."""
    files = LAYOUTS[corpus](scale)
    check_names(files)
    d = os.path.join(root, corpus)
    stamp_path = os.path.join(root, corpus + ".stamp")
    stamp = {"generator": GENERATOR_VERSION, "corpus": corpus, "scale": scale,
             "files": len(files), "size": sum(s for _, s in files)}
    try:
        with open(stamp_path) as f:
            if json.load(f) == stamp and os.path.isdir(d):
                return d, files
    except (OSError, ValueError):
        pass
    log("generating corpus %s: %d files, %.1f MB in %s ..." % (corpus, len(files), stamp["size"] / 1e6, d))
    t0 = time.time()
    if os.path.lexists(stamp_path):
        os.unlink(stamp_path)
    if os.path.lexists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    data = random.Random(SEEDS[corpus])
    made = set()
    for path, size in files:
        full = os.path.join(d, path)
        parent = os.path.dirname(full)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        with open(full, "wb") as f:
            left = size
            while left > 0:
                n = min(left, 8 * MIB)
                f.write(data.randbytes(n))
                left -= n
    with open(stamp_path, "w") as f:
        json.dump(stamp, f)
    log("  done in %.1f s" % (time.time() - t0))
    return d, files
