"""Byte-for-byte comparison of a downloaded tree with its source: a client's own "complete" is
never trusted (INTEROP.md: uTP over loopback once completed with wrong pieces)."""

import os
import shutil


def fresh_dirs(root, names, make=None):
    """Removes root/NAME for each of names (what an earlier run left behind) and creates those
    named in `make` (by default all of them) afresh, empty."""
    for n in names:
        shutil.rmtree(os.path.join(root, n), ignore_errors=True)
    for n in names if make is None else make:
        os.makedirs(os.path.join(root, n))


def list_files(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            p = os.path.join(dirpath, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            out[os.path.relpath(p, root).replace(os.sep, "/")] = os.path.getsize(p)
    return out


def _first_difference(a, b, chunk=1 << 20):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            x = fa.read(chunk)
            y = fb.read(chunk)
            if x != y:
                n = min(len(x), len(y))
                i = next((k for k in range(n) if x[k] != y[k]), n)
                return off + i
            if not x:
                return None
            off += len(x)


def _all_zero(path, chunk=1 << 20):
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return True
            if b.count(0) != len(b):
                return False


def compare_tree(src, dst, missing_empty_ok=False):
    """Compares every regular file under src with the same path under dst, byte for byte.
    Files under dst/.pad/ (BEP 47 pad files written by clients that treat them as real
    files) are not part of the comparison but must hold only zeros. Returns
    (ok, summary, problems)."""
    problems = []
    notes = []
    if not os.path.isdir(dst):
        return False, "no download directory %s" % dst, ["%s does not exist" % dst]
    want = list_files(src)
    got = list_files(dst)
    same = 0
    nbytes = 0
    for rel in sorted(want):
        size = want[rel]
        if rel not in got:
            if size == 0 and missing_empty_ok:
                notes.append("empty file not created: %s" % rel)
                continue
            problems.append("missing: %s (%d bytes)" % (rel, size))
            continue
        if got[rel] != size:
            problems.append("size differs: %s source %d, downloaded %d" % (rel, size, got[rel]))
            continue
        off = _first_difference(os.path.join(src, rel), os.path.join(dst, rel))
        if off is not None:
            problems.append("content differs: %s at byte %d (file %d bytes)" % (rel, off, size))
            continue
        same += 1
        nbytes += size
    pads = 0
    for rel in sorted(got):
        if rel in want:
            continue
        if rel.startswith(".pad/"):
            if not _all_zero(os.path.join(dst, rel)):
                problems.append("pad file with non-zero bytes: %s" % rel)
            pads += 1
            continue
        problems.append("unexpected file: %s (%d bytes)" % (rel, got[rel]))
    summary = "%d files, %d bytes identical" % (same, nbytes)
    if pads:
        summary += ", %d pad files all zeros" % pads
    if notes:
        summary += "; " + "; ".join(notes)
    if problems:
        summary = "%d problem(s): %s" % (len(problems), "; ".join(problems[:4])) + (
            " …" if len(problems) > 4 else "")
    return not problems, summary, problems


def check_comparator(r, work):
    """The comparison must see a changed byte, a missing (empty) file, an extra file and a
    pad file that is not zeros; and accept a faithful copy with zero pads."""
    base = os.path.join(work, "self-check")
    shutil.rmtree(base, ignore_errors=True)
    src, bad, good = (os.path.join(base, d) for d in ("src", "bad", "good"))
    files = {"a.bin": (bytes(range(251)) * 20)[:5000], "d/e.txt": b"", "d/f.txt": b"f" * 70}
    for root in (src, bad, good):
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
    for root, pad in ((bad, b"\0\0\1"), (good, b"\0" * 3)):
        os.makedirs(os.path.join(root, ".pad"))
        with open(os.path.join(root, ".pad", "3"), "wb") as f:
            f.write(pad)
    with open(os.path.join(bad, "a.bin"), "r+b") as f:
        f.seek(4321)
        f.write(b"\xff" if files["a.bin"][4321] != 0xff else b"\0")
    os.unlink(os.path.join(bad, "d", "e.txt"))
    with open(os.path.join(bad, "extra"), "wb") as f:
        f.write(b"x")
    ok_good, _, p_good = compare_tree(src, good)
    ok_bad, _, p_bad = compare_tree(src, bad)
    want = ["content differs: a.bin at byte 4321", "missing: d/e.txt", "unexpected file: extra",
            "pad file with non-zero bytes: .pad/3"]
    seen = [w for w in want if any(p.startswith(w) for p in p_bad)]
    r.check(ok_good and not ok_bad and seen == want, "harness comparator self-check",
            "a faithful copy passes; a changed byte, a missing empty file, an extra file and a "
            "non-zero pad are each reported" if seen == want and ok_good else
            "good copy: %s; bad copy reported %s" % (p_good, p_bad))
    shutil.rmtree(base, ignore_errors=True)
