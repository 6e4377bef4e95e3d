"""The sandbox of organisation policies in Rego (compiler/policy/rego.py, rego_worker.py).

Each attack of the hostile corpus ``tests/rego_hostile/*.rego`` is loaded next to the compliant
spec and must end in the diagnostic its ``# expect: CODE [BUILT-IN]`` comment names, on that
line (at the reference's first character for a forbidden built-in) — never in a traceback, an
exit code 3, or output outside the diagnostics. The judge tests at the end ask OPA itself.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.core.diagnostics import Diagnostics, code_info
from mlplane.compiler.policy import rego
from mlplane.compiler.policy.rego import (
    RegoPolicies,
    forbidden_calls,
    references,
    to_policy_input,
)
from tests.hypothesis_profiles import examples
from tests.test_policies import COMPLIANT, ROOT, TODAY, compile_text, describe, run_cli
from tests.test_policies_rego import POLICIES, rego_spec

HOSTILE = Path(__file__).parent / "rego_hostile"
CASES = sorted(HOSTILE.glob("*.rego"))
EXPECT = re.compile(r"# expect: (?P<code>[a-z-]+(?:\|[a-z-]+)*)(?: (?P<name>[a-z0-9_.]+))?")
"""``# expect: CODE [BUILT-IN]``; ``CODE|CODE``: whichever limit the machine reaches first."""


def compile_with(tmp_path: Path, policy: Path | str, **options: Any) -> CompileResult:
    org = tmp_path / "org"
    org.mkdir(exist_ok=True)
    text = policy.read_text(encoding="utf-8") if isinstance(policy, Path) else policy
    (org / "p.rego").write_text(text, encoding="utf-8")
    return compile_text(tmp_path, COMPLIANT, policy_dirs=[org], **options)


def expectations(text: str) -> set[tuple[int, int, str, str]]:
    """(line, column, code, built-in) of every ``# expect:`` comment; the column is the
    built-in's first character on that line, 1 when no built-in is named."""
    found = set()
    for number, line in enumerate(text.splitlines(), 1):
        for match in EXPECT.finditer(line):
            name = match["name"] or ""
            call = re.search(rf'(?<![\w."]){name.split(".")[0]}\s*[.\[(]', line) if name else None
            column = call.start() + 1 if call else 1
            found.add((number, column, match["code"], name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_hostile_policies_end_in_located_diagnostics(
    tmp_path: Path, case: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rego, "CPU_SECONDS", 1)
    result = compile_with(tmp_path, case)
    expected = expectations(case.read_text(encoding="utf-8"))
    got = set()
    for diagnostic in result.diagnostics:
        code_info(diagnostic.code)  # registered
        assert diagnostic.location is not None, describe(result)
        assert diagnostic.location.file.endswith("p.rego"), describe(result)
        named = next((name for *_, name in expected if name and name in diagnostic.message), "")
        column = diagnostic.location.column if named else 1
        line, code = diagnostic.location.line, diagnostic.code
        where = (line, column, named)
        code = next(
            (c for at, col, c, n in expected if (at, col, n) == where and code in c.split("|")),
            code,
        )
        got.add((line, column, code, named))
    assert got == expected, describe(result)


def test_forbidden_builtins_are_refused_before_anything_runs(tmp_path: Path) -> None:
    result = compile_with(tmp_path, HOSTILE / "env.rego")
    (error,) = result.diagnostics
    assert error.code == "rego-forbidden-builtin"
    assert "opa.runtime is not allowed" in error.message and "environment" in error.message
    assert "PATH" not in error.message  # nothing was evaluated


def test_the_sandbox_process_has_no_environment_even_if_the_scan_were_fooled() -> None:
    sandbox = rego._Sandbox()
    try:
        module = "package mlplane.env\nimport rego.v1\nenv := opa.runtime().env\n"
        assert sandbox.call({"op": "load", "modules": [["m0", module]]}, 60)["ok"]
        assert sandbox.call({"op": "input", "input": {}}, 60)["ok"]
        reply = sandbox.call({"op": "query", "query": "data.mlplane.env.env", "cpu": 5}, 60)
        assert reply["ok"] and reply["result"] == {}, reply
    finally:
        sandbox.close()
    assert sandbox.process.returncode is not None


LOCKED = """
import os, socket, sys
from mlplane.compiler.policy import rego_worker
kept = rego_worker._lock_in()  # its descriptors stay open, as in the worker
for attempt in (lambda: open("/etc/hostname", "rb"), lambda: socket.socket()):
    try:
        attempt()
    except OSError:
        continue
    sys.exit(1)  # opened: not locked in
sys.exit(0)
"""


def test_the_sandbox_can_open_no_file_and_no_socket() -> None:
    completed = subprocess.run(
        [sys.executable, "-I", "-c", LOCKED], capture_output=True, timeout=60, check=False
    )
    assert completed.returncode == 0


def test_time_now_ns_is_the_start_of_today(tmp_path: Path) -> None:
    policy = (
        "package mlplane.clock\nimport rego.v1\n"
        'warn contains {"msg": sprintf("%v", [time.now_ns()]), "path": "metadata"} if { true }\n'
    )
    result = compile_with(tmp_path, policy)
    midnight = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC)
    assert {d.message for d in result.diagnostics} == {str(int(midnight.timestamp()) * 10**9)}, (
        describe(result)
    )
    undated = compile_with(tmp_path, policy, today=None)
    (error,) = undated.diagnostics
    assert (error.code, error.location and error.location.line) == ("rego-forbidden-builtin", 3)
    assert "pass --today" in error.message


@pytest.mark.slow
def test_a_runaway_policy_is_stopped_by_its_cpu_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rego, "CPU_SECONDS", 1)
    start = time.process_time(), time.perf_counter()
    result = compile_with(tmp_path, HOSTILE / "runaway.rego")
    (error,) = result.diagnostics
    assert error.code == "rego-timeout" and "1 s of CPU time" in error.message, describe(result)
    # stopped once: the second environment does not ask the module again
    assert time.process_time() - start[0] < 5


def test_a_policy_past_the_memory_limit_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rego, "MEMORY_BYTES", 128 << 20)
    policy = (
        "package mlplane.memory\nimport rego.v1\n"
        "big := count([x | some x in numbers.range(1, 50000000)])\n"
    )
    result = compile_with(tmp_path, policy)
    (error,) = result.diagnostics
    assert error.code in {"rego-error", "rego-timeout"}, describe(result)
    assert error.location is not None and error.location.line == 1


def test_deeply_nested_policy_text_is_a_located_error(tmp_path: Path) -> None:
    depth = 20_000
    policy = "package mlplane.deep\nimport rego.v1\nx := " + "[" * depth + "]" * depth + "\n"
    result = compile_with(tmp_path, policy)
    assert result.diagnostics.has_errors, describe(result)
    assert all(d.code.startswith("rego-") for d in result.diagnostics), describe(result)
    assert all(
        d.location is not None and d.location.file.endswith("p.rego") for d in result.diagnostics
    )


@pytest.mark.parametrize("fmt", ["json", "sarif", "github", "text"])
def test_print_never_reaches_the_output_raw(tmp_path: Path, fmt: str) -> None:
    org = tmp_path / "org"
    org.mkdir()
    (org / "p.rego").write_text((HOSTILE / "print.rego").read_text(encoding="utf-8"))
    completed = run_cli(
        "validate",
        "examples/llm-rag",
        "--policy",
        str(org),
        "--format",
        fmt,
        "--today",
        "2026-01-01",
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert not any(line.startswith("::error") for line in output.splitlines()), output
    assert "\x1b" not in output and "forged" in output
    if fmt in ("json", "sarif"):
        json.loads(completed.stdout)


def test_trace_is_no_longer_an_internal_error() -> None:
    completed = run_cli(
        "validate", "examples/llm-rag", "--policy", str(HOSTILE / "trace.rego"), "--format", "json"
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    codes = {d["code"] for d in json.loads(completed.stdout)["diagnostics"]}
    assert "rego-forbidden-builtin" in codes and "rego-error" not in codes


# --- the reference reader: comments and strings cannot hide or fake a call ---------------------------

FILLER = st.one_of(
    st.just(" "),
    st.just("\n"),
    st.builds(lambda s: f"# {s} opa.runtime() trace(1)\n", st.text("abc .()[]\"'`", max_size=8)),
    st.builds(lambda s: json.dumps(s + " http.send({})"), st.text(max_size=8)),
    st.builds(lambda s: f'`{s} rand.intn("a", 1)`', st.text('abc\n ."', max_size=8)),
    st.sampled_from(["input.opa.runtime", "x.http.send", "data.trace", "x := 1", "{", "}"]),
)
CALLS = st.sampled_from(
    ["opa.runtime()", 'opa["runtime"]()', "opa . runtime()", "trace(x)", "rand.intn(`a`, 2)",
     "http.send({})", "opa[\n`runtime`\n]()"]
)  # fmt: skip


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(FILLER, max_size=12), st.lists(CALLS, max_size=3), st.randoms())
def test_references_find_exactly_the_calls(
    filler: list[str], calls: list[str], shuffle: random.Random
) -> None:
    pieces = [*filler, *(f" {call} " for call in calls)]
    shuffle.shuffle(pieces)
    text = "\n".join(pieces)
    found = forbidden_calls(text, TODAY)
    assert len(found) == len(calls), (text, found)
    for name, _, offset in found:
        assert text[offset:].startswith(name.split(".")[0])


def test_references_read_dotted_and_bracketed_forms() -> None:
    text = 'a := time.now_ns()\nb := input.opa.runtime\nc := x["y"].z # opa.runtime()\n'
    assert [name for name, _ in references(text)] == [
        "a", "time.now_ns", "b", "input.opa.runtime", "c", "x.y.z",
    ]  # fmt: skip


# --- byte mutations of the example policies: a diagnostic or a result, never a traceback ---------


@pytest.mark.parametrize("seed", range(6))
def test_mutated_example_policies(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    source = bytearray((POLICIES / "no-public-pii.rego").read_bytes())
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(source))
        choice = rng.random()
        if choice < 0.4:
            source[at : at + 1] = bytes([rng.choice(b'{}[]()."`#\n x:=')])
        elif choice < 0.7:
            del source[at : at + rng.randint(1, 20)]
        else:
            source[at:at] = rng.choice([b" opa.runtime() ", b" print(input) ", b"[" * 50])
    text = source.decode("utf-8", "replace")
    result = compile_with(tmp_path, text)
    for diagnostic in result.diagnostics:
        code_info(diagnostic.code)
        assert diagnostic.location is not None, describe(result)


# --- judge: OPA decides the example policies as regopy does -------------------------------------------


def _regopy_decisions(policies: RegoPolicies, document: dict[str, Any]) -> dict[str, Any]:
    policies._input, policies._sent = document, False
    decided = {}
    for module in policies.modules:
        value = policies._query(module, Diagnostics()) or {}
        decided[module.package] = {key: _canonical(value.get(key, [])) for key in ("deny", "warn")}
    return decided


def _canonical(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def _opa_decisions(
    opa: str, policies: RegoPolicies, document: dict[str, Any], tmp_path: Path
) -> dict[str, Any]:
    (tmp_path / "input.json").write_text(json.dumps(document), encoding="utf-8")
    decided = {}
    for module in policies.modules:
        completed = subprocess.run(
            [opa, "eval", "--format", "json", "--input", str(tmp_path / "input.json"),
             "--data", str(POLICIES), f"data.{module.package}"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        value = json.loads(completed.stdout)["result"][0]["expressions"][0]["value"]
        decided[module.package] = {key: _canonical(value.get(key, [])) for key in ("deny", "warn")}
    return decided


def _systems(tmp_path: Path) -> list[tuple[str, Any]]:
    found = []
    for example in sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir()):
        result = compile_spec(example, today=TODAY)
        found += [(f"{example.name}/{name}", s) for name, s in sorted(result.systems.items())]
    (tmp_path / "mlplane.yaml").write_text(rego_spec(), encoding="utf-8")
    violating = compile_spec(tmp_path / "mlplane.yaml", today=TODAY)
    found += [(f"violating/{name}", s) for name, s in sorted(violating.systems.items())]
    return found


@pytest.mark.judge
def test_opa_decides_the_example_policies_as_regopy_does(opa: str, tmp_path: Path) -> None:
    policies = RegoPolicies.load(sorted(POLICIES.glob("*.rego")), Diagnostics(), TODAY)
    try:
        decided_any = False
        for name, system in _systems(tmp_path):
            document = to_policy_input(system)
            ours = _regopy_decisions(policies, document)
            theirs = _opa_decisions(opa, policies, document, tmp_path)
            assert ours == theirs, name
            decided_any |= any(v for sets in ours.values() for v in sets.values())
        assert decided_any  # the violating spec makes both policies decide something
    finally:
        policies.close()


@pytest.mark.judge
def test_every_nondeterministic_opa_builtin_is_forbidden(opa: str) -> None:
    completed = subprocess.run(
        [opa, "capabilities", "--current"], capture_output=True, text=True, timeout=120, check=True
    )
    builtins = json.loads(completed.stdout)["builtins"]
    nondeterministic = {b["name"] for b in builtins if b.get("nondeterministic")}
    assert nondeterministic - {"time.now_ns"} <= set(rego._FORBIDDEN)
    assert "time.now_ns" in nondeterministic  # answered with --today instead
