"""Check results of a harness: one `ok ...` / `FAIL ...` line per check as it happens and the
closing `N passed, M failed` line that Tools/test adds up (its `count` reads the last such
line of each stage's log)."""

import threading

_LOCK = threading.Lock()
"""Checks also run on helper threads (hostile_peers' probes): one lock keeps the counts right
and each line whole."""


def _line(word, what, detail):
    return "%s %s%s" % (word, what, (": " + detail) if detail else "")


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def ok(self, what, detail=""):
        with _LOCK:
            self.passed += 1
            print(_line("ok", what, detail), flush=True)

    def fail(self, what, detail="", more=()):
        """A failed check; `more` (log tails and the like) is printed indented below it."""
        with _LOCK:
            self.failed += 1
            print(_line("FAIL", what, detail), flush=True)
            for line in more:
                print("    " + line, flush=True)

    def check(self, cond, what, detail="", more=()):
        """ok or fail by cond; returns cond so a harness can stop when a step it needs failed."""
        if cond:
            self.ok(what, detail)
        else:
            self.fail(what, detail, more)
        return cond

    def skip(self, what, detail=""):
        """A check that could not be made here (counted apart: neither passed nor failed)."""
        with _LOCK:
            self.skipped += 1
            print(_line("skip", what, detail), flush=True)

    @staticmethod
    def info(what, detail=""):
        """A line for the reader (timings, versions, notes); not a check."""
        with _LOCK:
            print(_line("info", what, detail), flush=True)

    def summary(self):
        """The closing line, `N passed, M failed` (`, K skipped` when some were)."""
        line = "%d passed, %d failed" % (self.passed, self.failed)
        return line + (", %d skipped" % self.skipped if self.skipped else "")

    def exit_status(self):
        return 1 if self.failed else 0
