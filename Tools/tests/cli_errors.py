#!/usr/bin/env python3
"""User errors of `webseed create/info/verify/key`: each must give exactly one readable line on
stderr, a non-zero exit, no traceback, and leave nothing half-written behind.

Usage: PYTHONPATH=Tools python3 Tools/tests/cli_errors.py --webseed .build/debug/webseed
Prints `ok …`/`FAIL …` per case and a closing `N passed, M failed` line.
"""
import argparse, os, shutil, subprocess, sys, tempfile

from webseedtest.bencode import bencode
from webseedtest.results import Results

R = Results()


def run(cmd, user=None, cwd=None):
    if user is not None:
        cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups", "--"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=120)
    return p.returncode, p.stdout, p.stderr


def expect_error(name, cmd, needle, user=None, out_dir=None):
    before = set(os.listdir(out_dir)) if out_dir else None
    code, out, err = run(cmd, user=user)
    lines = [l for l in err.splitlines() if l.strip()]
    error_lines = [l for l in lines if l.startswith("webseed: error:")]
    ok = code != 0 and len(error_lines) == 1 and needle.lower() in error_lines[0].lower() \
        and "Traceback" not in err and "Fatal error" not in err and len([l for l in lines if "error" in l.lower()]) == 1
    detail = f"exit {code}, stderr: {err.strip()!r}"
    if ok and out_dir is not None:
        after = set(os.listdir(out_dir))
        ok = after == before
        detail = f"files appeared: {sorted(after - before)}"
    R.check(ok, name, more=[detail])


# What a terminal must never be handed from a torrent, a magnet or a peer: C0 (ESC, BEL, CR,
# NUL, LF, …), DEL, C1 (U+009B is CSI), line/paragraph separators and bidi controls.
HOSTILE = "\x1b]0;owned\x07\x1b[2J\r\x00\n\x7f\u009b\u2028\u2029\u202e"


def raw_controls(text):
    """The characters of `text` a terminal would act on (line ends of the output itself aside)."""
    return [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029\u061c\u200e\u200f"
                                              or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069)]


def untrusted_text(ws, work):
    """Finding 5 of issue 16: `info` and error lines show what a torrent or magnet says, escaped."""
    def torrent(path, top, info=None):
        info = info or {"name": "plain", "length": 1, "piece length": 16384, "pieces": b"\0" * 20}
        with open(path, "wb") as f:
            f.write(bencode(dict(top, info=info)))
        return path

    hostile = torrent(os.path.join(work, "hostile.torrent"),
                      {"announce": "http://t.example/" + HOSTILE, "announce-list": [["http://t.example/" + HOSTILE]],
                       "comment": "c" + HOSTILE, "created by": "b" + HOSTILE, "url-list": ["http://w.example/" + HOSTILE]},
                      {"name": "n" + HOSTILE, "length": 1, "piece length": 16384, "pieces": b"\0" * 20})
    code, out, err = run([ws, "info", hostile])
    R.check(code == 0 and not raw_controls(out) and not raw_controls(err), "info escapes control characters of a torrent's fields",
            more=[repr(out[:600]), repr(err[:300])])
    R.check("c\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}\\u{0}\\u{a}\\u{7f}\\u{9b}\\u{2028}\\u{2029}\\u{202e}" in out,
            "escaped characters are shown as \\u{…}", more=[repr(out[:600])])
    R.check(all(l.startswith(("torrent ", "  ", "    ")) for l in out.splitlines()), "no field starts a line of its own",
            more=[repr(out[:600])])
    code, out, _ = run([ws, "info", hostile, "--json"])
    import json
    parsed = json.loads(out) if code == 0 else {}
    R.check(code == 0 and not raw_controls(out) and parsed.get("comment") == "c" + HOSTILE,
            "info --json escapes them as \\uXXXX and keeps the text", more=[repr(out[:600])])

    # A path with a newline: one warning line per path, not two.
    multi = torrent(os.path.join(work, "paths.torrent"), {}, {
        "name": "site", "piece length": 16384, "pieces": b"\0" * 20,
        "files": [{"length": 1, "path": ["a\nwebseed: error: forged"]}, {"length": 1, "path": ["b\x1b[2J"]}]})
    code, out, err = run([ws, "info", multi])
    # (The parser turns the control characters into `_`, as libtorrent does; either way no
    # line may start with text the torrent chose.)
    R.check(code == 0 and not raw_controls(out + err) and not any(l.startswith("webseed: error:") for l in err.splitlines()),
            "a file name with a newline stays on its line", more=[repr(out[:400]), repr(err[:400])])

    # A file name with a newline in an error: one line.
    missing = os.path.join(work, "two\nlines\x1b[2J.torrent")
    code, _, err = run([ws, "info", missing])
    R.check(code != 0 and len(err.splitlines()) == 1 and "no such file" in err and not raw_controls(err),
            "an error naming a file with a newline is one line", more=[repr(err)])

    # Magnet fields, percent-decoded.
    magnet = ("magnet:?xt=urn:btih:" + "a" * 40 + "&dn=x%1b]0;owned%07%0a%0d%00%e2%80%ae%c2%9b"
              "&tr=http://t.example/%0aforged%1b[2J&ws=http://w.example/%1b[2J&x.pe=1.2.3.4:5%0a")
    code, out, err = run([ws, "info", magnet])
    R.check(code == 0 and not raw_controls(out + err) and "x\\u{1b}]0;owned\\u{7}\\u{a}\\u{d}\\u{0}\\u{202e}\\u{9b}" in out,
            "info escapes a magnet's percent-decoded fields", more=[repr(out), repr(err)])
    code, _, err = run([ws, "info", "magnet:?xt=urn:sha1:%0a%1b[2Jabc"])
    R.check(code != 0 and len(err.splitlines()) == 1 and not raw_controls(err), "a magnet error is one escaped line", more=[repr(err)])

    # Creation dates: shown as dates only in years 1970–9999.
    for value in [2**63 - 1, -10**12, 253402300800]:
        t = torrent(os.path.join(work, "date.torrent"), {"creation date": value})
        code, out, err = run([ws, "info", t])
        line = next((l for l in out.splitlines() if l.startswith("  created ")), "")
        R.check(code == 0 and line == f"  created       {value} (seconds since 1970; not a date in 1970–9999)",
                f"creation date {value} is shown as the number it is", more=[repr(line), err])
    t = torrent(os.path.join(work, "date.torrent"), {"creation date": 1700000000})
    code, out, _ = run([ws, "info", t])
    R.check("  created       2023-11-14T22:13:20Z" in out.splitlines(), "a sane creation date is still a date", more=[repr(out)])


def key_files(ws, work):
    """Issue 13 point 1: `webseed key new/show`. A key is written 0600 and never over a file;
    a key others can read is refused with one line naming the fix (as ssh does)."""
    import json, re, stat
    keys = os.path.join(work, "keys")
    os.makedirs(keys)
    path = os.path.join(keys, "site.key")
    code, out, err = run([ws, "key", "new", path, "--json"])
    made = json.loads(out) if code == 0 else {}
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else None
    R.check(code == 0 and mode == 0o600 and err == "", "key new writes a 0600 key", more=[f"exit {code}, mode {mode and oct(mode)}", err])
    pk = made.get("public_key", "")
    R.check(re.fullmatch(r"[0-9a-f]{64}", pk) is not None and made.get("magnet") == "magnet:?xs=urn:btpk:" + pk,
            "key new --json gives public_key (64 hex) and the BEP 46 magnet", more=[out])
    name = made.get("name", "")
    R.check(re.fullmatch(r"k-[a-z2-7]{52}", name) is not None and len(name) <= 63, "the name is one lowercase DNS label of 54 characters",
            more=[name])
    with open(path) as f:
        pem = f.read()
    R.check(pem.startswith("-----BEGIN PRIVATE KEY-----\n"), "the key file is PKCS#8 PEM", more=[pem[:40]])
    code, out, _ = run([ws, "key", "show", path, "--json"])
    R.check(code == 0 and json.loads(out) == made, "key show prints what key new printed", more=[out])
    code, out, _ = run([ws, "key", "show", path])
    R.check(code == 0 and f"  name        {name}" in out.splitlines(), "key show prints text", more=[out])
    if shutil.which("openssl"):
        p = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], capture_output=True, timeout=30)
        R.check(p.returncode == 0 and p.stdout[-32:].hex() == pk, "openssl reads the key file and finds the same public key",
                more=[p.stderr.decode(errors="replace")])

    before = open(path, "rb").read()
    expect_error("key new over an existing file", [ws, "key", "new", path], "already exists")
    R.check(open(path, "rb").read() == before, "the existing key is untouched")
    for m in [0o644, 0o640, 0o604]:
        os.chmod(path, m)
        expect_error(f"key show on a key of mode {oct(m)}", [ws, "key", "show", path], f"chmod 600 {path}")
    state = os.path.join(keys, "state")
    dht = [ws, "dht", "--offline", "--listen", "127.0.0.1:0", "--state-dir", state]
    expect_error("dht --put-item with a key others can read", dht + ["--put-item", path], f"chmod 600 {path}")
    os.chmod(path, 0o600)
    expect_error("dht --get-item with a short key", dht + ["--get-item", "abcd"], "invalid --get-item")
    expect_error("dht --put-item with a value over 1000 bytes", dht + ["--put-item", path, "--item-value", "x" * 1000],
                 "larger than 1000")
    junk = os.path.join(keys, "junk.key")
    with open(junk, "w") as f:
        f.write("not a key")
    os.chmod(junk, 0o600)
    expect_error("key show on a file that is no key", [ws, "key", "show", junk], "not an unencrypted PEM private key")
    expect_error("key show on a missing file", [ws, "key", "show", os.path.join(keys, "none.key")], "no such file")
    expect_error("key new in a missing directory", [ws, "key", "new", os.path.join(keys, "none", "k.key")], "no such file",
                 out_dir=keys)
    rsa = os.path.join(keys, "rsa.key")
    if shutil.which("openssl") and subprocess.run(["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                                   "-out", rsa], capture_output=True, timeout=60).returncode == 0:
        os.chmod(rsa, 0o600)
        expect_error("key show on an EC key", [ws, "key", "show", rsa], "not an Ed25519 key")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--webseed", required=True)
    args = ap.parse_args()
    ws = os.path.abspath(args.webseed)
    work = tempfile.mkdtemp(prefix="webseed-cli-")
    os.chmod(work, 0o755)
    try:
        site = os.path.join(work, "site")
        os.makedirs(os.path.join(site, "assets"))
        with open(os.path.join(site, "index.html"), "w") as f:
            f.write("<h1>hi</h1>")
        with open(os.path.join(site, "assets", "app.js"), "w") as f:
            f.write("1")

        expect_error("missing directory", [ws, "create", os.path.join(work, "nope")], "no such file", out_dir=work)
        os.makedirs(os.path.join(work, "empty", "sub"))
        expect_error("empty directory", [ws, "create", os.path.join(work, "empty")], "holds no files", out_dir=work)
        expect_error("file instead of directory", [ws, "create", os.path.join(site, "index.html")], "not a directory", out_dir=work)
        expect_error("output inside the directory", [ws, "create", site, "-o", os.path.join(site, "x.torrent")],
                     "inside the directory", out_dir=site)
        for bad in ["1000", "0", "8K", "48K", "1G", "abc", "-16K"]:
            expect_error(f"invalid --piece-length {bad}", [ws, "create", site, "-o", os.path.join(work, "p.torrent"),
                                                           f"--piece-length={bad}"], "piece-length", out_dir=work)
        expect_error("option value that looks like an option", [ws, "create", site, "--piece-length", "-16K"], "piece-length", out_dir=work)
        expect_error("unknown option", [ws, "create", site, "--frobnicate"], "unknown option", out_dir=work)
        expect_error("missing argument", [ws, "create"], "missing expected argument", out_dir=work)
        expect_error("unknown command", [ws, "launch"], "unexpected argument", out_dir=work)
        expect_error("invalid --name", [ws, "create", site, "--name", "../evil", "-o", os.path.join(work, "n.torrent")],
                     "invalid --name", out_dir=work)

        out = os.path.join(work, "site.torrent")
        code, stdout, err = run([ws, "create", site, "--json"])
        R.check(code == 0 and os.path.exists(out), "create writes <dir>.torrent beside the directory", more=[err])
        R.check(err.strip() == "", "no progress output when not on a terminal", more=[repr(err)])
        # On a terminal (script(1) gives the command a pty): a progress bar, cleared at the end.
        tty = subprocess.run(["script", "-qec", f"exec {ws} create {site} -o {os.path.join(work, 'tty.torrent')}", "/dev/null"],
                             capture_output=True, text=True, timeout=60)
        R.check(tty.returncode == 0 and "hashing [" in tty.stdout and "\x1b[K" in tty.stdout
              and "packaged" in tty.stdout, "a progress bar on a terminal", more=[repr(tty.stdout[-300:])])
        with open(out, "rb") as f:
            first = f.read()
        expect_error("existing output without --force", [ws, "create", site], "already exists", out_dir=work)
        with open(out, "rb") as f:
            R.check(f.read() == first, "the existing torrent is untouched")
        code, _, err = run([ws, "create", site, "--force", "--comment", "again"])
        R.check(code == 0, "--force overwrites", more=[err])

        # Names that are not UTF-8.
        bad = os.path.join(work, "badname")
        os.makedirs(bad)
        with open(os.path.join(bad.encode(), b"caf\xe9.txt"), "w") as f:
            f.write("x")
        expect_error("name that is not UTF-8", [ws, "create", bad, "-o", os.path.join(work, "b.torrent")], "not valid UTF-8", out_dir=work)

        # Two names that differ only in Unicode normalization are one file on macOS/Windows.
        norm = os.path.join(work, "normalization")
        os.makedirs(norm)
        for name in ["caf\u00e9.txt", "cafe\u0301.txt"]:
            with open(os.path.join(norm, name), "w") as f:
                f.write(name)
        expect_error("names differing only in Unicode normalization", [ws, "create", norm, "-o", os.path.join(work, "u.torrent")],
                     "appears twice", out_dir=work)

        # Symlinks: skipped with a warning, and never followed out of the directory.
        linked = os.path.join(work, "linked")
        shutil.copytree(site, linked)
        os.symlink(os.path.join(work, "secret.txt"), os.path.join(linked, "leak.txt"))
        with open(os.path.join(work, "secret.txt"), "w") as f:
            f.write("secret")
        code, stdout, err = run([ws, "create", linked, "-o", os.path.join(work, "l.torrent"), "--json"])
        R.check(code == 0 and err.count("webseed: warning:") == 1 and "leak.txt" in err, "symlink skipped with one warning", more=[err])
        code, stdout, err = run([ws, "create", linked, "-o", os.path.join(work, "l2.torrent"), "--follow-symlinks", "--json"])
        code2, info, _ = run([ws, "info", os.path.join(work, "l2.torrent"), "--json"])
        R.check(code == 0 and "secret" not in info and "points outside" in err, "--follow-symlinks never leaves the directory", more=[err])

        # Unreadable file and directory: needs a user that permissions apply to.
        if os.geteuid() == 0:
            unread = os.path.join(work, "unreadable")
            shutil.copytree(site, unread)
            os.chmod(os.path.join(unread, "index.html"), 0o000)
            outdir = os.path.join(work, "out-nobody")
            os.makedirs(outdir)
            os.chmod(outdir, 0o777)
            expect_error("unreadable file", [ws, "create", unread, "-o", os.path.join(outdir, "u.torrent")], "cannot read",
                         user=65534, out_dir=outdir)
            os.chmod(os.path.join(unread, "index.html"), 0o644)
            os.chmod(os.path.join(unread, "assets"), 0o000)
            expect_error("unreadable directory", [ws, "create", unread, "-o", os.path.join(outdir, "u.torrent")], "cannot read",
                         user=65534, out_dir=outdir)
            os.chmod(os.path.join(unread, "assets"), 0o755)
            ro = os.path.join(work, "readonly")
            os.makedirs(ro)
            os.chmod(ro, 0o555)
            expect_error("output directory not writable", [ws, "create", site, "-o", os.path.join(ro, "x.torrent")],
                         "cannot write", user=65534, out_dir=ro)
        else:
            R.check(False, "unreadable-file cases need root to switch user (run as root)", more=["not run"])

        # info and verify.
        junk = os.path.join(work, "junk.torrent")
        with open(junk, "wb") as f:
            f.write(b"<html>not a torrent</html>")
        expect_error("info on a non-torrent", [ws, "info", junk], "not a valid torrent")
        with open(junk, "wb") as f:
            f.write(first[: len(first) // 2])
        expect_error("info on a truncated torrent", [ws, "info", junk], "not a valid torrent")
        expect_error("info on a missing file", [ws, "info", os.path.join(work, "missing.torrent")], "no such file")
        expect_error("info on a malformed magnet", [ws, "info", "magnet:?xt=urn:btih:123"], "urn:btih needs")
        expect_error("info on an unknown magnet topic", [ws, "info", "magnet:?xt=urn:sha1:abc"], "unsupported magnet topic")
        code, stdout, err = run([ws, "verify", out, site])
        R.check(code == 0 and "ok:" in stdout, "verify passes on the source", more=[stdout + err])
        copy = os.path.join(work, "copy")
        shutil.copytree(site, copy)
        with open(os.path.join(copy, "index.html"), "w") as f:
            f.write("<h1>HI</h1>")
        os.remove(os.path.join(copy, "assets", "app.js"))
        code, stdout, err = run([ws, "verify", out, copy])
        R.check(code == 1 and "content differs: index.html" in stdout and "missing: assets/app.js" in stdout, "verify names each differing file and exits 1", more=[stdout + err])
        expect_error("verify against a missing directory", [ws, "verify", out, os.path.join(work, "none")], "not a directory")
        untrusted_text(ws, work)
        key_files(ws, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(R.summary())
    sys.exit(R.exit_status())


if __name__ == "__main__":
    main()
