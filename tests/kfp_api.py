"""A loopback HTTP server speaking the part of the Kubeflow Pipelines v2beta1 REST API that
``mlplane apply`` uses to register recurring runs.

Its contract is the official generated client's (``kfp_server_api``): each request body is
decoded into the generated model of that call and refused (HTTP 400) when it holds a field the
model does not know or documents as output only, or misses one the server needs, and each
response is one of those models
serialised by the generated client itself, so a request or response shape the real client does
not produce or read fails here. It is not a Kubeflow Pipelines API server and does not claim
to behave like one beyond that contract (no real KFP API server has been run against mlplane).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api
from kfp_server_api import models

API = "/apis/v2beta1"
RUN_OUTPUT_ONLY = frozenset({"recurring_run_id", "created_at", "updated_at", "namespace"})
"""Fields of ``V2beta1RecurringRun`` the generated model documents as output only."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any = None


@dataclass
class KfpState:
    """What the server holds, and what it was asked."""

    prefix: str = ""
    experiments: dict[str, Any] = field(default_factory=dict)
    pipelines: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, list[Any]] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    """(method, path below the API root) → (status, message) answered instead."""
    raw: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    """(method, path below the API root) → (status, headers, body) sent as they are: what a
    gateway, a sign-in page or a hostile server may answer in the API's place."""
    page_size_cap: int = 200
    ignores_filter: bool = False
    """List experiments as a server that does not apply the list filter (every experiment of
    the namespace, page by page)."""
    drip: dict[tuple[str, str], tuple[bytes, float]] = field(default_factory=dict)
    """(method, path below the API root) → (body, pause): the body sent a byte at a time,
    ``pause`` seconds apart, as a server that never stalls long enough to time out."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_pipeline(self, name: str, namespace: str, versions: list[str]) -> str:
        """A Pipeline and its PipelineVersions as the Kubernetes-native API lists them."""
        pipeline_id = str(uuid.uuid4())
        self.pipelines[pipeline_id] = models.V2beta1Pipeline(
            pipeline_id=pipeline_id, name=name, display_name=name, namespace=namespace
        )
        self.versions[pipeline_id] = [
            models.V2beta1PipelineVersion(
                pipeline_id=pipeline_id,
                pipeline_version_id=str(uuid.uuid4()),
                name=version,
                display_name=version,
            )
            for version in versions
        ]
        return pipeline_id

    def version_id(self, name: str) -> str:
        for versions in self.versions.values():
            for version in versions:
                if version.name == name:
                    return str(version.pipeline_version_id)
        raise KeyError(name)

    def changes(self) -> list[tuple[str, str]]:
        """The requests that changed something: (method, path below the API root)."""
        return [(r.method, r.path) for r in self.requests if r.method in ("POST", "DELETE")]


_CLIENT = kfp_server_api.ApiClient()


def decode(body: bytes, model: str) -> Any:
    """``body`` as the generated client reads a ``model`` (it ignores unknown fields; the
    handler checks those itself)."""
    return _CLIENT.deserialize(SimpleNamespace(data=body.decode("utf-8")), model)


def encode(value: Any) -> bytes:
    return json.dumps(_CLIENT.sanitize_for_serialization(value)).encode("utf-8")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _known(body: dict[str, Any], model: type) -> None:
    unknown = set(body) - set(model.attribute_map.values())
    if unknown:
        raise _Refused(400, f"unknown fields {sorted(unknown)} in {model.__name__}")


def _page(items: list[Any], query: dict[str, str], cap: int) -> tuple[list[Any], str]:
    size = min(int(query.get("page_size") or 20), cap)
    start = int(query.get("page_token") or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _equals(query: dict[str, str]) -> dict[str, str]:
    """The EQUALS predicates of a list filter, decoded with the generated Filter model."""
    if not query.get("filter"):
        return {}
    parsed = decode(query["filter"].encode("utf-8"), "V2beta1Filter")
    found = {}
    for predicate in parsed.predicates or ():
        if predicate.operation not in ("EQUALS", 1):
            raise _Refused(400, f"unsupported filter operation {predicate.operation!r}")
        found[predicate.key] = predicate.string_value
    return found


class _Handler(BaseHTTPRequestHandler):
    state: KfpState

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        del format, args

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        root = self.state.prefix + API
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not parts.path.startswith(root):
            self._answer(404, {"error": "not found", "code": 5, "message": "not found"})
            return
        path = parts.path[len(root) :]
        request = Request(method, path, query, self.headers.get("Authorization"))
        try:
            with self.state.lock:
                request.body = json.loads(raw) if raw else None
                self.state.requests.append(request)
                dripped = self.state.drip.get((method, path))
                planted = self.state.raw.get((method, path))
                if planted is not None:
                    self._send(*planted)
                    return
            if dripped is not None:
                self._drip(*dripped)
                return
            with self.state.lock:
                failure = self.state.failures.get((method, path))
                if failure is not None:
                    raise _Refused(*failure)
                status, answer = 200, self._route(method, path, query, request.body, raw)
        except _Refused as refused:
            status = refused.status
            answer = {"error": refused.message, "code": 3, "message": refused.message}
        self._answer(status, answer)

    def _answer(self, status: int, answer: Any) -> None:
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode("utf-8")
        self._send(status, {"Content-Type": "application/json"}, payload)

    def _drip(self, payload: bytes, pause: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            for index in range(len(payload)):
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes) -> bytes:
        state = self.state
        segments = path.strip("/").split("/")
        if method == "GET" and segments == ["experiments"]:
            wanted = {} if state.ignores_filter else _equals(query)
            found = [
                e
                for e in state.experiments.values()
                if all(getattr(e, k) == v for k, v in wanted.items())
                and e.namespace == query.get("namespace", "")
            ]
            items, token = _page(found, query, state.page_size_cap)
            return encode(
                models.V2beta1ListExperimentsResponse(
                    experiments=items, total_size=len(found), next_page_token=token
                )
            )
        if method == "POST" and segments == ["experiments"]:
            _known(body, models.V2beta1Experiment)
            made = decode(raw, "V2beta1Experiment")
            if not made.display_name:
                raise _Refused(400, "an experiment needs a display_name")
            made.experiment_id = str(uuid.uuid4())
            state.experiments[made.experiment_id] = made
            return encode(made)
        if method == "GET" and segments[:2] == ["pipelines", "names"] and len(segments) == 3:
            for pipeline in state.pipelines.values():
                if pipeline.name == segments[2] and pipeline.namespace == query.get("namespace"):
                    return encode(pipeline)
            raise _Refused(404, f"pipeline {segments[2]} not found")
        if method == "GET" and segments[0] == "pipelines" and segments[2:] == ["versions"]:
            if segments[1] not in state.versions:
                raise _Refused(404, f"pipeline {segments[1]} not found")
            items, token = _page(state.versions[segments[1]], query, state.page_size_cap)
            return encode(
                models.V2beta1ListPipelineVersionsResponse(
                    pipeline_versions=items, next_page_token=token
                )
            )
        if method == "GET" and segments == ["recurringruns"]:
            found = [
                r
                for r in state.runs.values()
                if r.experiment_id == query.get("experiment_id")
                and r.namespace == query.get("namespace")
            ]
            items, token = _page(found, query, state.page_size_cap)
            return encode(
                models.V2beta1ListRecurringRunsResponse(
                    recurring_runs=items, total_size=len(found), next_page_token=token
                )
            )
        if method == "POST" and segments == ["recurringruns"]:
            return encode(self._create_run(body, raw))
        if method == "DELETE" and segments[0] == "recurringruns" and len(segments) == 2:
            if state.runs.pop(segments[1], None) is None:
                raise _Refused(404, f"recurring run {segments[1]} not found")
            return b"{}"
        raise _Refused(404, f"no route {method} {path}")

    def _create_run(self, body: Any, raw: bytes) -> Any:
        state = self.state
        _known(body, models.V2beta1RecurringRun)
        given = sorted(set(body) & RUN_OUTPUT_ONLY)
        if given:
            raise _Refused(400, f"output-only fields {given} in a recurring run to create")
        run = decode(raw, "V2beta1RecurringRun")
        if run.experiment_id not in state.experiments:
            raise _Refused(400, f"experiment {run.experiment_id} not found")
        run.namespace = state.experiments[run.experiment_id].namespace
        reference = run.pipeline_version_reference
        if reference is None or reference.pipeline_id not in state.versions:
            raise _Refused(400, "a recurring run needs a known pipeline_version_reference")
        if reference.pipeline_version_id not in {
            v.pipeline_version_id for v in state.versions[reference.pipeline_id]
        }:
            raise _Refused(400, f"pipeline version {reference.pipeline_version_id} not found")
        cron = run.trigger.cron_schedule.cron if run.trigger and run.trigger.cron_schedule else ""
        if len(cron.split()) != 6:
            raise _Refused(400, f"cron {cron!r} is not six fields (seconds first)")
        run.recurring_run_id = str(uuid.uuid4())
        run.status = "ENABLED" if run.mode == "ENABLE" else "DISABLED"
        state.runs[run.recurring_run_id] = run
        return run


@contextmanager
def serving(
    prefix: str = "", tls: tuple[Path, Path] | None = None
) -> Iterator[tuple[str, KfpState]]:
    """A server on a free loopback port: (its base URL, its state); over TLS with ``tls``'s
    (certificate, key) files."""
    state = KfpState(prefix=prefix)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}{prefix}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
