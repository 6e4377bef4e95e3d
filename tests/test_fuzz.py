"""Fuzzing the loader and the whole pipeline: the only acceptable outcomes are success or
diagnostics (docs/quality.md). Every case passes the checks of ``tests/fuzz_runner.py``: no
exception escapes; the result is a success with a system model for every environment, or has
at least one error; every diagnostic has a registered code and a location inside the spec file
(line and column included); every renderer renders it; ``explain`` works on every success and
its YAML reads back as the effective spec.

Four sources of cases, each case under a memory limit:

- byte-level mutation of every example file (``test_byte_mutations``): seeded flips, inserts,
  deletions, line shuffles and YAML specials, run by worker subprocesses that each hold
  thousands of cases under ``RLIMIT_AS`` (see the module docstring of ``fuzz_runner``);
- Hypothesis over specs generated from the schema's own models, with valid and invalid field
  names and values of every type (``test_generated_specs``);
- Hypothesis over the examples' data with leaves replaced and keys deleted or renamed
  (``test_mutated_example_data``). Hypothesis cases run in the test process, each under a soft
  ``RLIMIT_AS`` of its current address space plus 512 MiB (``fuzz_runner.memory_limit``);
- a few mutated specs through ``mlplane validate`` itself (``test_cli``).

Environment: ``MLPLANE_FUZZ_QUICK=1`` runs a small profile (for local edit-test loops);
``MLPLANE_FUZZ_SEED=N`` explores other byte mutations (the default seed 0 is what CI runs);
``MLPLANE_FUZZ_CASES=N`` sets the number of byte-mutation cases. A failing byte-mutation case
is reported with its number and seed, and its input is saved next to the worker's output.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mlplane.compiler.frontend.document import display_name
from mlplane.compiler.frontend.loader import load_bytes
from mlplane.compiler.frontend.overlay import OVERRIDABLE
from mlplane.schema import models as schema_models
from mlplane.schema.models import MLSystem, Overrides
from tests import fuzz_runner
from tests.fuzz_runner import (
    CASE_SECONDS,
    MEMORY_LIMIT,
    CaseDir,
    Example,
    check_compile,
    check_load,
    discover_examples,
    limit_address_space,
    memory_limit,
    time_limit,
)

pytestmark = pytest.mark.slow
"""Thousands of cases under memory limits: part of make test, left out of make test-fast."""

QUICK = os.environ.get("MLPLANE_FUZZ_QUICK") == "1"
SEED = int(os.environ.get("MLPLANE_FUZZ_SEED", "0"))
BYTE_CASES = int(os.environ.get("MLPLANE_FUZZ_CASES", "240" if QUICK else "2400"))
SHARDS = 4
"""Byte-mutation workers; pytest-xdist spreads them over the cores."""
GENERATED_EXAMPLES = 50 if QUICK else 300
MUTATED_EXAMPLES = 50 if QUICK else 400
CLI_CASES = 20

EXAMPLES = discover_examples()
RUNNER = Path(fuzz_runner.__file__)

FUZZ = settings(
    deadline=None,  # a case compiles a whole spec; timing varies with the machine's load
    derandomize=True,  # the same cases on every run, so CI is reproducible
    database=None,  # nothing to replay: derandomized runs find the same examples again
    print_blob=True,
    # The strategies build whole specs on purpose (large, deep data) and each example runs the
    # whole pipeline, so Hypothesis' generation-speed and data-size health checks do not apply.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def test_examples_are_discovered() -> None:
    assert EXAMPLES, "no *.yaml files under examples/"


# --- byte-level mutation, in worker subprocesses under RLIMIT_AS ------------------------------


@pytest.mark.parametrize("shard", range(SHARDS))
def test_byte_mutations(shard: int, tmp_path: Path, record_property: Any) -> None:
    expected = len(range(shard, BYTE_CASES, SHARDS))
    command = [
        sys.executable,
        str(RUNNER),
        f"--shard={shard}",
        f"--shards={SHARDS}",
        f"--cases={BYTE_CASES}",
        f"--seed={SEED}",
        f"--out={tmp_path}",
        f"--memory-limit={MEMORY_LIMIT}",
    ]
    try:
        worker = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"},
            preexec_fn=limit_address_space(MEMORY_LIMIT),
            timeout=max(120, expected * CASE_SECONDS // 20),
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the fuzz worker timed out; the last case's files are in {tmp_path}: {error}")
    records = [json.loads(line) for line in worker.stdout.splitlines() if line.startswith("{")]
    fatal = [record["fatal"] for record in records if "fatal" in record]
    failures = [record for record in records if "case" in record]
    summaries = [record["summary"] for record in records if "summary" in record]
    assert not fatal, fatal
    assert not failures, _report_failures(failures, tmp_path)
    assert worker.returncode == 0 and summaries, (
        f"worker exited with {worker.returncode} (a negative code is a signal: a crash in C "
        f"code); the input it died on is in {tmp_path}/work-{shard}\n{worker.stderr[-4000:]}"
    )
    summary = summaries[0]
    assert summary["cases"] == expected
    assert summary["peak_mib"] * 2**20 <= MEMORY_LIMIT
    record_property("fuzz_cases", summary["cases"])
    print(
        f"byte mutation shard {shard}: {summary['cases']} cases, "
        f"{summary['compiled']} compiled, {len(summary['codes'])} distinct codes, "
        f"peak {summary['peak_mib']} MiB of {MEMORY_LIMIT // 2**20} MiB, "
        f"{summary['seconds']} s"
    )


def _report_failures(failures: list[dict[str, Any]], out: Path) -> str:
    lines = [f"{len(failures)} fuzz cases failed (inputs saved in {out}):"]
    for failure in failures[:20]:
        lines.append(
            f"  case {failure['case']} (seed {failure['seed']}, {failure['example']}, "
            f"input {failure['input']}): {failure['type']}: {failure['error'][:300]}"
            f"\n    at {' <- '.join(reversed(failure['where']))}"
        )
    return "\n".join(lines)


# --- Hypothesis: shared -----------------------------------------------------------------------


def _leaf_pools() -> tuple[dict[str, list[str]], list[str], list[Any]]:
    """Strings the examples use, by the key they are written under; entry names; all leaves."""
    by_key: dict[str, set[str]] = {}
    names: set[str] = {"dev", "prod", "staging"}
    leaves: list[Any] = []
    for example in EXAMPLES:
        loaded, _ = load_bytes(example.path.read_bytes(), example.label)
        if loaded is None:
            continue
        stack: list[tuple[str, Any]] = [("", loaded.data)]
        while stack:
            key, node = stack.pop()
            if isinstance(node, dict):
                if key in ("models", "dataSources", "slas", "environments", "secrets"):
                    names.update(node)
                stack.extend(node.items())
            elif isinstance(node, list):
                stack.extend((key, item) for item in node)
            else:
                leaves.append(node)
                if isinstance(node, str):
                    by_key.setdefault(key, set()).add(node)
    return {k: sorted(v) for k, v in by_key.items()}, sorted(names), leaves


STRINGS_BY_KEY, NAMES, LEAVES = _leaf_pools()
ALL_STRINGS = sorted({s for values in STRINGS_BY_KEY.values() for s in values})
SCHEMA_MODELS = [
    model
    for model in vars(schema_models).values()
    if isinstance(model, type) and issubclass(model, BaseModel) and model.model_fields
]
ALL_FIELDS = sorted(
    {field.alias or name for model in SCHEMA_MODELS for name, field in model.model_fields.items()}
)

INTERESTING: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 3, 100, 150, 65536, 2**31, 2**63, -(2**63), 10**30, 10**40,
    0.5, -0.0, 99.9, 1e300, math.inf, -math.inf, math.nan, "", " ", "yes", "no", "on", "0755",
    "1.10", "12:30", "3", "~", "null", "5 minutes", "2GB", "two", "mars-1", "latest", "-lead",
    "my..bucket", "Fraud_Model", "fraud_model", "class", "__init__", "x" * 64, "a" * 5000,
    "${{ secrets.X }}", "{{ .Value }}", "$(curl x)", "x\"); import os #", "a\rimport os", "'''",
    "trailing\\", "../../etc", "/etc/passwd", "AKIAIOSFODNN7EXAMPLE", "hunter2",
    "-----BEGIN PRIVATE KEY-----", "\u202e", "a\u200bb", "\x00", "\x1b[31m", "é", "\U0001f600",
    "models.scorer", "dataSources.*", "*", "0.0.0.0/0", "ghcr.io/acme/x:latest", "s3://b/p",
    "vault://a/b", "env:X", "0 3 * * 0", "61 * * * *", "2027-02-30", "30d", "0s", "100ms",
    "500m", "1Gi", [], {}, [None], {"a": 1}, [[[]]], {"": {}},
)  # fmt: skip

PRINTABLE = st.characters(exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp", "Co", "Cn"))
TEXT = st.one_of(*[st.text(PRINTABLE, max_size=30)] * 4, st.text(max_size=30))
"""Any Unicode text; four times in five without control, format and unassigned characters
(the loader rejects those before anything else would see the spec)."""
KEYS = st.one_of(
    st.sampled_from(ALL_FIELDS),
    *[st.text(PRINTABLE, max_size=10)] * 4,
    st.sampled_from((1, True, None, 1.5, "<<", "${{ x }}", "")),
)

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from(INTERESTING),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=10,
)
"""Any value of any type, strings of any Unicode, numbers out of any range."""


@st.composite
def serialized(draw: st.DrawFn, data: Any) -> bytes:
    """``data`` as YAML (block or flow) or as JSON, which is YAML too."""
    style = draw(st.sampled_from(("block", "block", "flow", "json")))
    if style == "json":
        text = json.dumps(
            data,
            ensure_ascii=draw(st.booleans()),
            indent=draw(st.sampled_from((None, 1, 2))),
            allow_nan=True,
        )
    else:
        text = yaml.safe_dump(
            data,
            sort_keys=False,
            allow_unicode=draw(st.booleans()),
            default_flow_style=style == "flow",
            width=draw(st.sampled_from((80, 2**20))),
        )
    return text.encode("utf-8", errors="surrogatepass")


def _run_case(name: str, data: bytes, target: Path, texts: dict[str, str]) -> None:
    """The checks of one Hypothesis case (file ``name`` holds ``data``; ``target`` is the
    spec to compile), under the same limits as a byte-mutation case."""
    with memory_limit(), time_limit(CASE_SECONDS):
        check_load(data, name)
        check_compile(target, texts)


# --- Hypothesis over generated specs ----------------------------------------------------------


class _Generator:
    """Draws a spec shaped by the schema's models: the real field names (most of the time),
    values of the declared type (most of the time) and junk of any type where ``junk`` says."""

    def __init__(self, draw: st.DrawFn, junk: int) -> None:
        self.draw = draw
        self.junk = junk

    def chance(self, percent: int) -> bool:
        return percent > 0 and self.draw(st.integers(0, 99)) < percent

    def model(self, model: type[BaseModel], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        fields = list(model.model_fields.items())
        # One draw picks the optional fields (each one half of the time); required fields are
        # all there unless a junk roll drops one.
        chosen = self.draw(st.integers(0, 2 ** len(fields) - 1)) if fields else 0
        dropped = -1
        if fields and self.chance(self.junk):
            dropped = self.draw(st.integers(0, len(fields) - 1))
        for index, (name, field) in enumerate(fields):
            wanted = field.is_required() or chosen >> index & 1
            if wanted and index != dropped:
                key = field.alias or name
                annotation = field.annotation
                if model is Overrides:  # an overlay holds (part of) a real section
                    annotation = _field_annotation(MLSystem, key)
                out[key] = self.value(annotation, key, depth + 1)
        while self.chance(self.junk):
            out[self.wrong_key(model)] = self.draw(JUNK)
        return out

    def wrong_key(self, model: type[BaseModel]) -> Any:
        fields = sorted(field.alias or name for name, field in model.model_fields.items())
        choice = self.draw(st.integers(0, 3))
        if choice == 0 and fields:
            key = self.draw(st.sampled_from(fields))
            return key[:-1] if len(key) > 1 else key + "s"
        if choice == 1:
            return self.draw(st.sampled_from(ALL_FIELDS))
        if choice == 2:
            return self.draw(st.sampled_from(("$ref", "include", "<<", "replica", "x-extra", "")))
        return self.draw(KEYS)

    def value(self, annotation: Any, key: str, depth: int) -> Any:
        if depth > 10 or self.chance(self.junk):
            return self.draw(JUNK)
        if key == "indicator" and self.chance(30):
            return "availability"
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.value(args[0], key, depth)
        if origin in (typing.Union, types.UnionType):
            if type(None) in args and self.chance(5):
                return None
            members = [arg for arg in args if arg is not type(None)]
            chosen = members[0] if len(members) == 1 else self.draw(st.sampled_from(members))
            return self.value(chosen, key, depth)
        if origin is Literal:
            return self.draw(st.sampled_from(args))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation, depth)
        if origin is dict:
            count = self.draw(st.integers(0, 3))
            return {self.name(key): self.value(args[1], key, depth + 1) for _ in range(count)}
        if origin is list:
            count = self.draw(st.integers(0, 3))
            return [self.value(args[0], key, depth + 1) for _ in range(count)]
        if annotation is str:
            return self.string(key)
        if annotation is bool:
            return self.draw(st.booleans())
        if annotation is int:
            if self.chance(self.junk):
                return self.draw(st.integers() | st.sampled_from((2**63, -1, 10**40)))
            return self.draw(st.integers(0, 100))
        if annotation is float:
            if self.chance(self.junk):
                return self.draw(st.floats(allow_nan=True, allow_infinity=True))
            return self.draw(st.floats(0, 100))
        return self.draw(JUNK)  # Any

    def string(self, key: str) -> str:
        pool = STRINGS_BY_KEY.get(key)
        if not self.chance(self.junk):
            return self.draw(st.sampled_from(pool or ALL_STRINGS))
        if self.chance(50):
            return self.draw(st.sampled_from(ALL_STRINGS + NAMES))
        return self.draw(TEXT)

    def name(self, key: str) -> Any:
        if not self.chance(self.junk):
            return self.draw(st.sampled_from(NAMES))
        if self.chance(60):
            return self.draw(st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9]", fullmatch=True))
        return self.draw(KEYS)


def _field_annotation(model: type[BaseModel], alias: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field.annotation
    return Any


@st.composite
def generated_specs(draw: st.DrawFn) -> bytes:
    junk = draw(st.sampled_from((0, 0, 2, 10, 40)))
    spec = _Generator(draw, junk).model(MLSystem, 0)
    return draw(serialized(spec))


def test_generated_specs(tmp_path: Path, record_property: Any) -> None:
    spec_file = tmp_path / "mlplane.yaml"
    name = display_name(spec_file)
    ran = []

    @settings(FUZZ, max_examples=GENERATED_EXAMPLES)
    @given(data=generated_specs())
    def case(data: bytes) -> None:
        ran.append(data)
        spec_file.write_bytes(data)
        _run_case(name, data, spec_file, {name: data.decode("utf-8", errors="replace")})

    case()
    _print_count("generated specs", len(ran), record_property)


def _print_count(what: str, cases: int, record_property: Any) -> None:
    """Shown with ``-rP`` (or ``-s`` without xdist); also in JUnit XML as ``fuzz_cases``."""
    record_property("fuzz_cases", cases)
    print(f"{what}: {cases} cases")


# --- Hypothesis over the examples' data, mutated ----------------------------------------------


def _example_data() -> list[tuple[Example, dict[str, Any]]]:
    out = []
    for example in EXAMPLES:
        loaded, _ = load_bytes(example.path.read_bytes(), example.label)
        if loaded is not None:
            out.append((example, loaded.data))
    return out


EXAMPLE_DATA = _example_data()


def _entries(data: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key or index) of every entry, depth first."""
    stack = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield node, key
            if isinstance(value, dict | list) and value:
                stack.append(value)


def _mapping_paths(data: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every path of mapping keys under the sections an overlay may change."""
    paths: list[tuple[str, ...]] = []
    stack = [((key,), value) for key, value in data.items() if key in OVERRIDABLE]
    while stack:
        path, node = stack.pop()
        paths.append(path)
        if isinstance(node, dict):
            stack.extend(((*path, str(key)), value) for key, value in node.items())
    return sorted(paths)


OVERRIDE_PATHS = sorted({path for _, data in EXAMPLE_DATA for path in _mapping_paths(data)})
OPERATIONS = ("replace", "replace", "delete", "rename", "add", "copy", "override", "override")


def _override(draw: st.DrawFn, data: dict[str, Any]) -> None:
    """Set a value somewhere in an environment's overlay (any value, at a real path)."""
    environments = data.get("environments")
    if not isinstance(environments, dict) or not environments:
        return
    environment = environments[draw(st.sampled_from(sorted(environments, key=str)))]
    if not isinstance(environment, dict):
        return
    node = environment.setdefault("overrides", {})
    *parents, last = draw(st.sampled_from(OVERRIDE_PATHS))
    for key in parents:
        if not isinstance(node, dict):
            return
        child = node.get(key)
        node = child if isinstance(child, dict) else node.setdefault(key, {})
    if isinstance(node, dict):
        node[last] = draw(st.none() | st.sampled_from(LEAVES) | st.sampled_from(INTERESTING) | JUNK)


@st.composite
def mutated_example_data(draw: st.DrawFn) -> tuple[Example, bytes]:
    example, original = draw(st.sampled_from(EXAMPLE_DATA))
    data = copy.deepcopy(original)
    for _ in range(draw(st.sampled_from((1, 1, 1, 2, 3)))):
        entries = list(_entries(data))
        if not entries:
            break
        container, key = draw(st.sampled_from(entries))
        operation = draw(st.sampled_from(OPERATIONS))
        if operation == "override":
            _override(draw, data)
        elif operation == "delete":
            del container[key]
        elif operation == "rename" and isinstance(container, dict):
            new = draw(
                st.sampled_from(ALL_FIELDS) | st.sampled_from(NAMES) | st.just(str(key)[:-1]) | TEXT
            )
            container[new] = container.pop(key)
        elif operation == "add" and isinstance(container, dict):
            container[draw(KEYS)] = draw(JUNK)
        elif operation == "copy":  # a real value, in the wrong place
            container[key] = copy.deepcopy(draw(st.sampled_from(LEAVES)))
        else:
            container[key] = draw(st.sampled_from(INTERESTING) | JUNK | st.sampled_from(LEAVES))
    return example, draw(serialized(data))


def test_mutated_example_data(tmp_path: Path, record_property: Any) -> None:
    case_dirs = {
        example: CaseDir(example, tmp_path / f"e{i}") for i, example in enumerate(EXAMPLES)
    }
    ran = []

    @settings(FUZZ, max_examples=MUTATED_EXAMPLES)
    @given(case=mutated_example_data())
    def case(case: tuple[Example, bytes]) -> None:
        example, data = case
        ran.append(example)
        spec = case_dirs[example]
        with spec.mutated(data):
            _run_case(display_name(spec.file), data, spec.target, spec.sibling_texts())

    case()
    _print_count("mutated example data", len(ran), record_property)


# --- the command line -------------------------------------------------------------------------


def _mlplane() -> list[str]:
    script = Path(sys.executable).with_name("mlplane")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from mlplane.compiler.cli.main import main; main()"]


def test_cli(tmp_path: Path) -> None:
    """Mutated specs through ``mlplane validate``: exit 0 or 1, never a traceback."""
    formats = ("text", "json", "sarif", "github")
    corpus = [example.path.read_bytes() for example in EXAMPLES]
    runs = []
    for number in range(CLI_CASES):
        example = EXAMPLES[number % len(EXAMPLES)]
        case = CaseDir(example, tmp_path / f"case-{number}")
        rng = random.Random(f"mlplane-fuzz-cli:{SEED}:{number}")
        case.file.write_bytes(fuzz_runner.mutate(case.original, rng, corpus))
        runs.append((case, formats[number % len(formats)]))

    def validate(run: tuple[CaseDir, str]) -> subprocess.CompletedProcess[str]:
        case, fmt = run
        return subprocess.run(
            [*_mlplane(), "validate", case.target.name, f"--format={fmt}"],
            capture_output=True,
            text=True,
            cwd=case.target.parent,
            env={**os.environ, "NO_COLOR": "1", "MLPLANE_DEBUG": ""},
            preexec_fn=limit_address_space(MEMORY_LIMIT),
            timeout=60,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(validate, runs))
    for (case, fmt), result in zip(runs, results, strict=True):
        where = f"{case.example.label} mutated in {case.root} (--format={fmt})"
        assert result.returncode in (0, 1), f"{where}: exit {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr, f"{where}:\n{result.stderr}"
        assert "internal error" not in result.stderr, f"{where}:\n{result.stderr}"
        if fmt in ("json", "sarif"):
            json.loads(result.stdout)
