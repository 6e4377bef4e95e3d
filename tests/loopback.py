"""Loopback servers for tests that run real servers: HTTP servers that stand in for what those
talk to (a scrape target serving series in Prometheus's text format, a webhook that records what
it is sent), :func:`running`, a real server's process for the block of a ``with``, and
:func:`prometheus`, the real Prometheus server so run.

Each HTTP server is a ``ThreadingHTTPServer`` on ``127.0.0.1`` (a port the kernel picks), served
in a daemon thread for the block of :func:`serving`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.judges import free_port, require_judge


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


@contextmanager
def running(command: list[str], log: Path, ready: str, env: dict[str, str]) -> Iterator[None]:
    """A server process, until the block ends; waits for its ``ready`` URL."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(ready, timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                    pytest.fail(f"{command[0]} did not become ready:\n{text}")
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def prometheus_config(rule_files: list[Path], target: str, alertmanager: str | None = None) -> str:
    """A Prometheus configuration that loads ``rule_files``, scrapes ``target`` every second
    (its labels kept as served, as a Pushgateway or a scrape with ``honor_labels`` would),
    evaluates every second and, given one, sends alerts to ``alertmanager`` (``host:port``)."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": "served", "honor_labels": True, "static_configs": [{"targets": [target]}]}
        ],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return json.dumps(config)  # JSON is YAML


def offline_environment() -> dict[str, str]:
    """The environment of a real server a test starts: its HTTP clients go through a proxy on a
    closed loopback port, so nothing leaves the machine (Go never proxies loopback addresses,
    so the test's own servers are reached directly)."""
    closed = f"http://127.0.0.1:{free_port()}"
    return {"PATH": "/usr/bin:/bin", "HTTP_PROXY": closed, "HTTPS_PROXY": closed}


@contextmanager
def prometheus(
    directory: Path, rule_files: list[Path], target: str, alertmanager: str | None = None
) -> Iterator[str]:
    """A real Prometheus (the judge ``prometheus``) on loopback for the block, configured by
    :func:`prometheus_config` (its configuration, data and log under ``directory``): its URL."""
    binary = require_judge("prometheus")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = directory / "prometheus.yaml"
    config.write_text(prometheus_config(rule_files, target, alertmanager), encoding="utf-8")
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(command, directory / "prometheus.log", f"{url}/-/ready", offline_environment()):
        yield url


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector Prometheus (``http://host:port``) answers for ``expr``: each series'
    ``metric`` (its labels) and ``value`` (``[time, "number"]``)."""
    body = urllib.parse.urlencode({"query": expr}).encode()
    with urllib.request.urlopen(f"{prometheus}/api/v1/query", body, timeout=10) as answer:
        loaded = json.load(answer)
    assert loaded["status"] == "success", loaded
    assert loaded["data"]["resultType"] == "vector", loaded
    result: list[dict[str, Any]] = loaded["data"]["result"]
    return result
