"""A TCP relay on 127.0.0.1 for the harnesses: each accepted connection is joined to
`upstream`, bytes flow both ways, half-closes are passed on. Subclasses decide when a
connection may reach upstream (`before_upstream`) and how fast bytes from upstream may come
(`allowance` / `give_back`)."""

import select
import socket

from .tcpserver import TcpServer


class TcpRelay(TcpServer):
    buffer_cap = 1 << 20     # bytes waiting for one side before reading the other stops
    poll = 0.2               # select timeout, seconds (short when a rate limit refills)

    def __init__(self, upstream):
        self.upstream = upstream
        self.connections = 0
        self.bytes_down = 0          # bytes from upstream
        super().__init__("127.0.0.1")

    # hooks
    def before_upstream(self):
        """Called on the connection's thread before connecting upstream; False drops it."""
        return True

    def allowance(self, want):
        """How many bytes may be read from upstream now (at most `want`)."""
        return want

    def give_back(self, n):
        """`n` bytes of an allowance were not read."""

    def serve(self, c, addr):
        with self.lock:
            self.connections += 1
        u = None
        try:
            if not self.before_upstream() or self.stop_ev.is_set():
                return
            u = socket.create_connection(self.upstream, timeout=5)
            with self.lock:
                self.socks.append(u)
            c.setblocking(False)
            u.setblocking(False)
            self._pump(c, u)
        except OSError:
            pass
        finally:
            for s in (c, u):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def _pump(self, c, u):
        pending = {c: bytearray(), u: bytearray()}     # bytes waiting to be written to key
        other = {c: u, u: c}
        eof = set()
        while not self.stop_ev.is_set():
            rl = [s for s in (c, u) if s not in eof and len(pending[other[s]]) < self.buffer_cap]
            wl = [s for s in (c, u) if pending[s]]
            if not rl and not wl:
                break
            r, wr, _ = select.select(rl, wl, [], self.poll)
            for s in r:
                n = (1 << 16) if s is c else self.allowance(1 << 16)
                if n <= 0:
                    continue
                try:
                    data = s.recv(n)
                except BlockingIOError:
                    if s is u:
                        self.give_back(n)
                    continue
                except OSError:
                    data = b""
                if s is u:
                    self.give_back(n - len(data))
                    with self.lock:
                        self.bytes_down += len(data)
                if not data:
                    eof.add(s)
                    if not pending[other[s]]:
                        try:
                            other[s].shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                    continue
                pending[other[s]] += data
            for s in wr:
                try:
                    k = s.send(pending[s])
                except BlockingIOError:
                    continue
                except OSError:
                    return
                del pending[s][:k]
                if not pending[s] and other[s] in eof:
                    try:
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            if len(eof) == 2 and not pending[c] and not pending[u]:
                break
