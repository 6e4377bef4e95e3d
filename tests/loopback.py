"""Loopback HTTP servers that stand in for what a test's real servers talk to: a scrape target
serving series in Prometheus's text format, a webhook that records what it is sent.

Each is a ``ThreadingHTTPServer`` on ``127.0.0.1`` (a port the kernel picks), served in a
daemon thread for the block of :func:`serving`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def scrape_target(exposition: Callable[[], str]) -> ThreadingHTTPServer:
    """A server answering every GET with ``exposition()``, as a Prometheus client would."""

    class Handler(_Quiet):
        def do_GET(self) -> None:
            body = exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def webhook(posted: list[tuple[str, Any]]) -> ThreadingHTTPServer:
    """A server appending ``(path, JSON body)`` to ``posted`` for every POST, answering 200."""

    class Handler(_Quiet):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            posted.append((self.path, json.loads(self.rfile.read(length) or b"null")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def address(server: ThreadingHTTPServer) -> str:
    """``127.0.0.1:PORT``."""
    return f"127.0.0.1:{server.server_address[1]}"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve in a daemon thread for the block, then shut down and close."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
