"""Worker run as a subprocess by Tools/bench/create: libtorrent 2.0.8's torrent creator.

usage: /usr/bin/python3 -m webseedtest.ltcreate DIR PIECE_LENGTH v2|hybrid OUT  (PYTHONPATH=Tools)
Prints one JSON line of in-process times: import_s (Python's `import libtorrent`), scan_s,
hash_s, work_s (the creator's whole work: listing, hashing, writing the file; what
Tools/bench/create compares with `webseed create`) and total_s (work plus import).
"""

import json
import os
import sys
import time

t0 = time.perf_counter()
import libtorrent as lt  # noqa: E402

t_import = time.perf_counter() - t0


def main():
    d, pl, mode, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    d = os.path.abspath(d)
    t1 = time.perf_counter()
    fs = lt.file_storage()
    lt.add_files(fs, d)
    flags = lt.create_torrent.v2_only if mode == "v2" else 0
    ct = lt.create_torrent(fs, pl, flags=flags)
    t2 = time.perf_counter()
    lt.set_piece_hashes(ct, os.path.dirname(d))
    t3 = time.perf_counter()
    data = lt.bencode(ct.generate())
    with open(out, "wb") as f:
        f.write(data)
    t4 = time.perf_counter()
    print(json.dumps({"import_s": t_import, "scan_s": t2 - t1, "hash_s": t3 - t2,
                      "work_s": t4 - t1, "total_s": t4 - t0, "files": fs.num_files()}))


if __name__ == "__main__":
    main()
