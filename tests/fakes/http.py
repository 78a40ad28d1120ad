"""A tiny threaded HTTP server base for fakes; subclasses implement ``handle``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Response = tuple[int, dict[str, str], bytes]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: dozens of workers' threads connecting at once overflow it,
    # and a connection the kernel then drops fails a push that never reached the fake.
    request_queue_size = 128


class FakeServer:
    def __init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffer each response into one send: headers and body written separately meet Nagle's
            # algorithm and delayed ACKs on keep-alive connections, adding ~40 ms to every request.
            wbufsize = 64 * 1024

            def _serve(self, method: str) -> None:
                fake.peers.append(self.client_address[:2])
                fake.current.peer = self.client_address[:2]
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.handle(
                    method, parts.path, parse_qs(parts.query), body, dict(self.headers.items())
                )
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client went away (it was killed): nothing to answer

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def log_message(self, *args: Any) -> None:
                pass

        # The client address of every request, in order: requests on one kept-alive connection share one.
        self.peers: list[tuple[str, int]] = []
        self.current = threading.local()  # .peer: the client address of the request this thread serves
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        raise NotImplementedError
