"""Shared fixtures: one session-scoped fixture per external judge (see tests/judges.py).

Each fixture returns the judge's executable path, or skips the test (fails it under CI=true)
when the judge is missing.
"""

from __future__ import annotations

import pytest

import tests.hypothesis_profiles  # noqa: F401  (registers the fast profile before it is loaded)
from tests.judges import require_judge


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_judge("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_judge("amtool")


@pytest.fixture(scope="session")
def checkov() -> str:
    return require_judge("checkov")


@pytest.fixture(scope="session")
def zizmor() -> str:
    return require_judge("zizmor")


@pytest.fixture(scope="session")
def check_jsonschema() -> str:
    return require_judge("check-jsonschema")


@pytest.fixture(scope="session")
def kubernetes_validate() -> str:
    return require_judge("kubernetes-validate")


@pytest.fixture(scope="session")
def opa() -> str:
    return require_judge("opa")


@pytest.fixture(scope="session")
def actionlint() -> str:
    return require_judge("actionlint")


@pytest.fixture(autouse=True)
def _private_cache_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mlplane plan`` keeps its cache secret under ``$XDG_CACHE_HOME``: never the home
    directory of whoever runs the tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture
def cache_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each plan cache read (``PlanCache.read_raw``, which every read goes through)
    was a hit, in order."""
    from mlplane.compiler.plan.cache import PlanCache, RawHit

    found: list[bool] = []
    original = PlanCache.read_raw

    def spy(self: PlanCache, key: str) -> RawHit | None:
        hit = original(self, key)
        found.append(hit is not None)
        return hit

    monkeypatch.setattr(PlanCache, "read_raw", spy)
    return found
