"""A TCP listener for the harnesses' fake peers and relays: each accepted connection is served
on its own thread, and stop() closes the listener and every socket so that those threads end
at once (their blocking calls fail) instead of lingering after a case."""

import socket
import threading


class TcpServer:
    """Listens on HOST:0 (`port`, `address`); a subclass sets its own fields, calls this
    __init__ last (the accept thread starts here) and implements serve(sock, addr). Sockets
    it opens itself go in `socks` (under `lock`) so stop() closes them too."""

    def __init__(self, host="127.0.0.1", backlog=64):
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.socks = []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, 0))
        self.ls.listen(backlog)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.address = "%s:%d" % (host, self.port)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def serve(self, sock, addr):
        raise NotImplementedError

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                s, addr = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.socks.append(s)
            threading.Thread(target=self.serve, args=(s, addr), daemon=True).start()

    def stop(self):
        self.stop_ev.set()
        try:
            self.ls.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        self.thread.join(3)
