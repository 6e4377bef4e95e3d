"""The e2e tier: the real Pulumi engine and Kubernetes provider against a local control plane.

`make e2e` starts the cluster (tools/e2e/up.sh writes .e2e/env), runs `pytest -m e2e tests/e2e`
and stops it. Every test works in a git repository of its own (a copy of an example, committed),
so the applied-state record, the local state backend and `plan --base` behave as in a user's
repository; the cluster is shared, so the tests run one after the other and each leaves its
namespace deleted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV_FILE = ROOT / ".e2e" / "env"
EXAMPLE_NAMES = ("fraud-scoring", "llm-rag", "recsys-gpu")
COMMAND_TIMEOUT = 900
"""Seconds one mlplane or kubectl command may take before the test fails."""


def cluster_environ() -> dict[str, str]:
    """The process environment plus the exports of .e2e/env (PATH with the built engine first)."""
    environ = dict(os.environ)
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("export "):
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        words = shlex.split(value)
        text = words[0] if words else ""
        environ[name] = text.replace("$PATH", os.environ.get("PATH", ""))
    environ.pop("PULUMI_BACKEND_URL", None)  # each repository's spec names its own backend
    environ["PULUMI_K8S_DELETE_UNREACHABLE"] = "false"
    return environ


@pytest.fixture(scope="session")
def e2e_env() -> Iterator[dict[str, str]]:
    """The cluster's environment, also installed in this process (for in-process engine calls)."""
    if not ENV_FILE.is_file():
        message = "no e2e cluster: run `make e2e` (or `make e2e-up` first)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    environ = cluster_environ()
    with process_environ(environ):
        yield environ


@contextmanager
def process_environ(environ: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by ``environ`` for the block, then restored."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Repo:
    """A user's repository: a copy of an example, committed, driven through the CLI."""

    path: Path
    env: dict[str, str]

    def git(self, *args: str) -> str:
        identity = ("-c", "user.name=mlplane e2e", "-c", "user.email=e2e@mlplane.invalid")
        done = subprocess.run(
            ["git", *identity, *args], cwd=self.path, capture_output=True, text=True, check=True
        )
        return done.stdout

    def commit(self, message: str) -> None:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)

    def mlplane(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "mlplane", *args],
            check=False,
            cwd=self.path,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        if expect is not None and done.returncode != expect:
            pytest.fail(
                f"mlplane {' '.join(args)} exited {done.returncode}, expected {expect}\n"
                f"--- stdout (tail)\n{done.stdout[-6000:]}\n--- stderr (tail)\n{done.stderr[-4000:]}"
            )
        return done

    @property
    def spec_file(self) -> Path:
        return self.path / "mlplane.yaml"

    def spec(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.spec_file.read_text(encoding="utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")

    def stack_resources(self, system: str, environment: str) -> list[dict[str, Any]]:
        """The resources recorded in the stack's state (the local file backend of the spec)."""
        stack = f"{system}-{environment}"
        state = self.path / ".mlplane" / "state" / ".pulumi" / "stacks" / system / f"{stack}.json"
        if not state.is_file():
            return []
        checkpoint = json.loads(state.read_text(encoding="utf-8"))
        deployment = checkpoint.get("checkpoint", {}).get("latest") or {}
        return list(deployment.get("resources") or [])


def dev_context(path: Path) -> str | None:
    """The kube context the spec's dev environment names (in whichever file holds it)."""
    for file in sorted(path.glob("*.yaml")):
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
        environments = document.get("environments") if isinstance(document, dict) else None
        if isinstance(environments, dict) and "dev" in environments:
            context = (environments["dev"].get("kubernetes") or {}).get("context")
            return str(context) if context else None
    return None


def kubeconfig_for(context: str, env: dict[str, str], directory: Path) -> Path:
    """A kubeconfig whose context ``context`` (the name the spec uses, as on a user's machine)
    is the e2e cluster."""
    config = yaml.safe_load(Path(env["KUBECONFIG"]).read_text(encoding="utf-8"))
    target = config["contexts"][0]["context"]
    config["contexts"] = [{"name": context, "context": target}]
    config["current-context"] = context
    path = directory / f"kubeconfig-{context}"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def new_repo(example: str, tmp_path: Path, env: dict[str, str]) -> Repo:
    path = tmp_path / example
    shutil.copytree(EXAMPLES / example, path)
    context = dev_context(path)
    if context is not None:
        env = {**env, "KUBECONFIG": str(kubeconfig_for(context, env, tmp_path))}
    repo = Repo(path, env)
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.commit(f"{example} as in the examples")
    return repo


@pytest.fixture
def repo_factory(e2e_env: dict[str, str], tmp_path: Path) -> Any:
    def make(example: str) -> Repo:
        return new_repo(example, tmp_path, e2e_env)

    return make


def kubectl(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["kubectl", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    if check and done.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def kubectl_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    loaded = json.loads(kubectl(env, *args, "-o", "json").stdout)
    assert isinstance(loaded, dict)
    return loaded


def namespace_gone(env: dict[str, str], namespace: str, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kubectl(env, "get", "namespace", namespace, check=False).returncode != 0:
            return True
        time.sleep(1)
    return False


def delete_namespace(env: dict[str, str], namespace: str) -> None:
    kubectl(env, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
    assert namespace_gone(env, namespace), f"namespace {namespace} was not deleted in time"


def wait_workloads_ready(env: dict[str, str], namespace: str, timeout: float = 240) -> list[str]:
    """Wait until every Deployment and Rollout has all its replicas ready (pods admitted by Pod
    Security and Running/Ready on the kwok nodes); returns the workloads seen."""
    deadline = time.monotonic() + timeout
    waiting: list[str] = []
    while time.monotonic() < deadline:
        waiting, seen = [], []
        for kind in ("deployments.apps", "rollouts.argoproj.io"):
            for item in kubectl_json(env, "get", kind, "-n", namespace)["items"]:
                name = f"{item['kind']}/{item['metadata']['name']}"
                seen.append(name)
                wanted = item.get("spec", {}).get("replicas", 1)
                ready = item.get("status", {}).get("readyReplicas", 0)
                if ready < max(wanted, 1):
                    waiting.append(f"{name} ({ready}/{wanted} ready)")
        if not waiting:
            return sorted(seen)
        time.sleep(2)
    events = kubectl(env, "get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
    pytest.fail(
        f"workloads in {namespace} not ready after {timeout:.0f}s: {', '.join(waiting)}\n"
        f"events:\n{events.stdout[-4000:]}"
    )


def engine_preview(repo: Repo, environment: str = "dev") -> dict[str, str]:
    """What the real engine's preview would do to the repository's working tree, as
    ``{logical name: create|update|replace|delete}`` (the stack and provider resources left out):
    the same rebuilt project, stack and backend that ``mlplane apply`` would use."""
    from mlplane.compiler.deploy import engine, stack

    def report(result: object) -> None:
        pytest.fail(f"the build failed: {result}")

    with process_environ(repo.env), stack.rebuilt(repo.path, environment, report) as built:
        workspace = stack.workspace_for(built, repo.path, os.environ)
        outcome = engine.open_stack(workspace).preview(lambda _line: None)
    assert outcome.ok, f"the engine's preview failed: {outcome.message}"
    steps: dict[str, str] = {}
    for urn, op in outcome.steps:
        kind = urn.split("::")[2].rsplit("$", 1)[-1]
        if kind == "pulumi:pulumi:Stack" or kind.startswith("pulumi:providers:"):
            continue
        steps[urn.rsplit("::", 1)[-1]] = op
    return steps


def plan_actions(repo: Repo, *args: str) -> dict[str, str]:
    """``{logical name: action}`` of ``mlplane plan --format json`` (changed resources only)."""
    done = repo.mlplane("plan", "--env", "dev", "--format", "json", *args)
    plan = json.loads(done.stdout)
    return {change["name"]: change["action"] for change in plan["resources"]}


_SUMMARY = re.compile(
    r"^\s*(\+-|[+~-])\s*(\d+) (to create|to update|to delete|to replace|created|updated|deleted|replaced)",
    re.M,
)


def engine_changes(output: str) -> list[str]:
    """The change counts of the engine's ``Resources:`` summaries in a command's output."""
    return [" ".join(match.group(1, 2, 3)) for match in _SUMMARY.finditer(output)]


def system_name(repo: Repo) -> str:
    out = repo.path / "build"
    repo.mlplane("build", "--env", "dev", "--out", str(out))
    project = yaml.safe_load((out / "pulumi" / "Pulumi.yaml").read_text(encoding="utf-8"))
    return str(project["name"])


def declared_resources(repo: Repo) -> set[tuple[str, str]]:
    graph = json.loads((repo.path / "build" / "resources.json").read_text(encoding="utf-8"))
    return {(r["type"], r["name"]) for r in graph["resources"]}


def recorded_resources(repo: Repo, system: str) -> set[tuple[str, str]]:
    found = set()
    for resource in repo.stack_resources(system, "dev"):
        kind = resource["type"]
        if kind == "pulumi:pulumi:Stack" or kind.startswith("pulumi:providers:"):
            continue
        found.add((kind, resource["urn"].rsplit("::", 1)[-1]))
    return found


def dev_namespace(repo: Repo) -> str:
    graph = json.loads((repo.path / "build" / "resources.json").read_text(encoding="utf-8"))
    return next(
        str(r["inputs"]["metadata"]["name"])
        for r in graph["resources"]
        if r["type"] == "kubernetes:core/v1:Namespace"
    )
