"""The bound on a whole harness run. Every wait in a harness has its own timeout, but a call
that has none (a socket read, a libtorrent call, a child that ignores SIGTERM) could still
stall Tools/test for ever; the watchdog turns that into one failure and the closing line."""

import os
import threading

from .procs import Proc


class Watchdog:
    """After `seconds`, from its own thread: counts a failed check "watchdog", runs `cleanup`
    (by default: kill every Proc), prints the closing `N passed, M failed` line and exits 1
    at once with os._exit, since the main thread may be the one that is stuck. start() it
    when the run begins and cancel() it in the run's `finally`."""

    def __init__(self, seconds, results, cleanup=Proc.kill_all):
        self.seconds = seconds
        self.results = results
        self.cleanup = cleanup
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True

    def _expire(self):
        self.results.fail("watchdog", "the whole run exceeded %d s" % self.seconds)
        try:
            self.cleanup()
        finally:
            print(self.results.summary(), flush=True)
            os._exit(1)

    def start(self):
        self.timer.start()
        return self

    def cancel(self):
        self.timer.cancel()
