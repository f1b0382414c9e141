"""Byte-for-byte comparison of a downloaded tree with its source: a client's own "complete" is
never trusted (INTEROP.md: uTP over loopback once completed with wrong pieces)."""

import os


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
