"""An HTTP/1.1 proxy on 127.0.0.1 that stands between a browser and a webseed gateway and
may change what the gateway answers: the man in the middle of the verified-mode tests."""

import http.client
import http.server
import socket
import socketserver
import sys
import threading


class RewritingProxy:
    """Forwards each GET and HEAD to the port `upstream(host)` names (host: the request's
    Host header), reads the whole answer, and passes on the body `rewrite(path, status, body)`
    returns (None: the body unchanged), with Content-Length to match. Records every path
    asked for (`asked`, query cut). `serving = False`: every request answers 502; `dead =
    True`: every connection is closed unanswered. stop() also cuts the open connections."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.rewrite = lambda path, status, body: None
        self.asked = []
        self.serving = True
        self.dead = False
        self.connections = set()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                with proxy.lock:
                    proxy.connections.add(self.connection)

            def finish(self):
                with proxy.lock:
                    proxy.connections.discard(self.connection)
                super().finish()

            def do_GET(self):
                self.forward()

            def do_HEAD(self):
                self.forward()

            def forward(self):
                path = self.path.split("?")[0]
                proxy.asked.append(path)
                if proxy.dead:
                    self.close_connection = True
                    return
                if not proxy.serving:
                    self.send_error(502, "proxy: this source is off")
                    return
                port = proxy.upstream(self.headers.get("Host", ""))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive", "proxy-connection")}
                try:
                    conn.request(self.command, self.path, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    self.send_error(502, "proxy: %s" % e)
                    return
                finally:
                    conn.close()
                replaced = proxy.rewrite(path, resp.status, body)
                if replaced is not None:
                    body = replaced
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # A browser hanging up (reset, broken pipe) is no error of the proxy's; any
                # other exception (a rewrite hook failing) is printed.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Stops listening and cuts every open connection (kept-alive ones too): dead."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for c in self.connections:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
