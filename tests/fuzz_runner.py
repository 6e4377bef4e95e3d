"""Fuzzing support: the checks every fuzz case must pass, byte-level mutators, and the worker.

The only acceptable outcomes of compiling any input are success or located diagnostics
(docs/quality.md): no exception, every diagnostic with a registered code and a location inside the
spec, every renderer working on the result, and ``explain`` working on every success.

Run as a script, this module is the *worker* of ``tests/test_fuzz.py``: it mutates the
example specs byte by byte (seeded, so every case is reproducible from its number), runs the
checks on each case and prints one JSON line per failure and a summary line at the end. The
test starts it with an address-space limit (``RLIMIT_AS``, set in ``preexec_fn``), so that
every case runs under a memory limit while thousands of cases share one process:

    python tests/fuzz_runner.py --shard 0 --shards 4 --cases 2400 --out DIR
    python tests/fuzz_runner.py --cases 2400 --seed 0 --only 1234 --out DIR   # one case again

Why a flat 512 MiB: measured on Linux x86-64, the address space of a Python 3.11 process that
has imported pydantic, PyYAML and mlplane and fuzzed thousands of cases peaks at 50 to 65 MiB
(``VmPeak``), so the 512 MiB that docs/quality.md asks for is far from tight at start-up (no need
for "baseline + 512 MiB") and leaves over 440 MiB to a single case. The worker checks at start that the limit is in force (an
allocation of the limit's size must raise ``MemoryError``) and reports its ``VmPeak`` at the end.
A ``MemoryError`` in a case is a failure like any other exception.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplane.compiler.build.pipeline import CompileResult, compile_spec, environment_names
from mlplane.compiler.cli.explain import effective_data, explain_json, explain_yaml, keep_ci_of
from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostic, Location, Severity, code_info
from mlplane.compiler.frontend.document import display_name
from mlplane.compiler.frontend.loader import load_bytes
from mlplane.compiler.render.dispatch import RENDERERS, RenderOptions, render
from mlplane.schema.models import MLSystem

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SPEC_SUFFIXES = (".yaml", ".yml")

MEMORY_LIMIT = 512 * 2**20
"""Address space a fuzz case may use (RLIMIT_AS of the worker; headroom in process)."""
CASE_SECONDS = 10
"""A case running longer than this is a failure (docs/quality.md: bounded time)."""


class FuzzFailure(AssertionError):
    """A case broke a property (as opposed to an exception escaping from mlplane)."""


# --- the spec of a case ----------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One example spec file, with the spec directory it belongs to."""

    path: Path
    """The file that gets mutated."""
    spec_dir: Path
    """Its directory; every ``*.yaml``/``*.yml`` file there is part of the same spec."""
    siblings: tuple[str, ...]
    """File names of the whole spec (this file included), sorted."""

    @property
    def multi_file(self) -> bool:
        return len(self.siblings) > 1

    @property
    def label(self) -> str:
        return self.path.relative_to(EXAMPLES).as_posix()


def discover_examples(root: Path = EXAMPLES) -> list[Example]:
    """Every ``*.yaml``/``*.yml`` file under ``root`` (examples are added all the time)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        siblings = tuple(
            sorted(
                p.name
                for p in path.parent.iterdir()
                if p.suffix in SPEC_SUFFIXES and p.is_file() and not p.name.startswith(".")
            )
        )
        found.append(Example(path, path.parent, siblings))
    return found


class CaseDir:
    """A private copy of an example's spec directory in which one file is replaced per case.

    The whole directory is copied (Rego policy files and all), so that an unmutated case compiles
    exactly as the example does. ``target`` is what gets compiled: the file itself, or the
    directory when the spec is split over several files.
    """

    def __init__(self, example: Example, where: Path) -> None:
        self.example = example
        self.root = where
        if where.exists():
            shutil.rmtree(where)
        shutil.copytree(example.spec_dir, where, symlinks=False)
        self.file = where / example.path.name
        self.original = example.path.read_bytes()
        self.target = where if example.multi_file else self.file

    def sibling_texts(self) -> dict[str, str]:
        """Display name -> text of every spec file (for the bounds of locations)."""
        return {
            display_name(self.root / name): _text_of((self.root / name).read_bytes())
            for name in self.example.siblings
        }

    @contextlib.contextmanager
    def mutated(self, data: bytes) -> Iterator[None]:
        self.file.write_bytes(data)
        try:
            yield
        finally:
            self.file.write_bytes(self.original)


def _text_of(data: bytes) -> str:
    """The text whose lines locations count (as the loader: BOM dropped, LF ends a line)."""
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


# --- the checks --------------------------------------------------------------------------------


def check(condition: object, message: str) -> None:
    if not condition:
        raise FuzzFailure(message)


Lines = Mapping[str, Sequence[str]]
"""Display name -> the file's lines, split as the loader counts them."""


def lines_of(texts: Mapping[str, str]) -> Lines:
    return {name: text.split("\n") for name, text in texts.items()}


def check_location(
    location: Location | None, files: Lines, what: str, end_of_stream: bool = False
) -> None:
    """``location`` lies inside one of ``files``: line 1 to the last line (the empty line after
    a final line break included), column 1 to one past the end of the line."""
    check(location is not None, f"{what} has no location")
    assert location is not None
    check(
        location.file in files,
        f"{what} points at {location.file!r}, not at a file of the spec ({sorted(files)})",
    )
    lines = files[location.file]
    del end_of_stream  # the loader clamps end-of-stream errors into the file now
    check(
        1 <= location.line <= len(lines),
        f"{what} is on line {location.line} of a file with {len(lines)} lines",
    )
    width = len(lines[location.line - 1])
    check(
        1 <= location.column <= width + 1,
        f"{what} is at column {location.column} of line {location.line}, {width} characters long",
    )


def check_diagnostics(diagnostics: Sequence[Diagnostic], texts: Mapping[str, str]) -> None:
    """Registered code, a message, and a location (and related locations) inside the spec."""
    files = lines_of(texts)
    for diagnostic in diagnostics:
        what = f"diagnostic [{diagnostic.code}] {diagnostic.message!r}"
        try:
            code_info(diagnostic.code)
        except KeyError:
            raise FuzzFailure(f"{what} has an unregistered code") from None
        check(isinstance(diagnostic.message, str) and diagnostic.message, f"{what}: no message")
        check(isinstance(diagnostic.severity, Severity), f"{what}: bad severity")
        end_of_stream = diagnostic.code == codes.YAML_SYNTAX
        check_location(diagnostic.location, files, what, end_of_stream)
        for related in diagnostic.related:
            check_location(related.location, files, f"related note {related.message!r} of {what}")


def check_renderers(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str]) -> None:
    """Every format renders; machine formats parse; nothing unsafe reaches a terminal."""
    ordered = sorted(diagnostics, key=Diagnostic.sort_key)
    for fmt in RENDERERS:
        out = render(fmt, ordered, sources, RenderOptions())
        check(isinstance(out, str), f"renderer {fmt} returned {type(out).__name__}")
        if fmt in ("json", "sarif"):
            check(out.isascii(), f"{fmt} output is not ASCII")
            document = json.loads(out)
            if fmt == "json":
                check(
                    len(document["diagnostics"]) == len(ordered),
                    f"json output has {len(document['diagnostics'])} of {len(ordered)} diagnostics",
                )
        else:
            bad = _UNSAFE_OUTPUT.search(out)
            check(bad is None, f"{fmt} output contains the raw character {bad and bad.group()!r}")
    render("text", ordered, sources, RenderOptions(color=True, summary=False))


# Raw characters that must never reach a terminal or a log viewer from the human formats.
_UNSAFE_OUTPUT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\U000e0000-\U000e007f]"
)


def check_load(data: bytes, name: str) -> None:
    """``load_bytes`` alone: data and positions, or at least one located error."""
    loaded, problems = load_bytes(data, name)
    texts = {name: _text_of(data)}
    check_diagnostics(problems, texts)
    files = lines_of(texts)
    if loaded is None:
        check(
            any(d.severity is Severity.ERROR for d in problems),
            "load_bytes returned no data and no error",
        )
        return
    check(not problems, "load_bytes returned data and diagnostics")
    check(isinstance(loaded.data, dict), f"load_bytes returned a {type(loaded.data).__name__}")
    for table in (loaded.values, loaded.keys):
        for path, location in table.items():
            check_location(location, files, f"the position of {path!r}")


def check_compile(target: Path, texts: Mapping[str, str]) -> CompileResult:
    """The whole pipeline on ``target``: success with a system model per environment, or
    at least one error; located diagnostics; renderers; ``explain`` on success."""
    result = compile_spec(target)
    diagnostics = result.sorted_diagnostics()
    check_diagnostics(diagnostics, texts)
    if result.ok:
        check(result.document is not None, "success without a document")
        assert result.document is not None
        environments = environment_names(result.document)
        check(environments, "success without an environment")
        check(
            sorted(result.systems) == environments,
            f"system models for {sorted(result.systems)}, environments {environments}",
        )
        check_explain(result)
    else:
        check(any(d.severity is Severity.ERROR for d in diagnostics), "failure without an error")
    check_renderers(diagnostics, result.sources)
    return result


def check_explain(result: CompileResult) -> None:
    """``explain`` renders every environment, and its YAML reads back as the effective spec."""
    assert result.document is not None
    for name, effective in result.effective.items():
        explain_json(effective.spec, effective.document, name)
        explain_yaml(effective.spec, effective.document, result.document, name, True)
        text = explain_yaml(effective.spec, effective.document, result.document, name, False)
        loaded, problems = load_bytes(text.encode(), "explain.yaml")
        check(
            loaded is not None,
            f"explain output for {name!r} does not load: "
            + "; ".join(d.one_line() for d in problems[:3]),
        )
        assert loaded is not None
        expected = effective_data(effective.spec, effective.document)
        environments = expected.get("environments", {})
        if name in environments:
            kept = {k: v for k, v in environments[name].items() if k != "overrides"}
            expected["environments"] = {name: kept}
            keep_ci_of(expected, name)
        check(loaded.data == expected, f"explain output for {name!r} reads back differently")
        try:
            MLSystem.model_validate(loaded.data)
        except ValueError as error:
            raise FuzzFailure(f"explain output for {name!r} does not validate: {error}") from None


def check_case(case: CaseDir, data: bytes) -> CompileResult:
    """Every check of one mutated file: the loader alone, then the whole pipeline."""
    check_load(data, display_name(case.file))
    with case.mutated(data):
        return check_compile(case.target, case.sibling_texts())


# --- limits ------------------------------------------------------------------------------------


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``CaseTimeout`` in the main thread after ``seconds`` (no-op where unsupported)."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"case took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def address_space() -> int | None:
    """This process's current address space in bytes (Linux), else None."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_address_space() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return None


@contextlib.contextmanager
def memory_limit(extra: int = MEMORY_LIMIT) -> Iterator[None]:
    """Lower the soft ``RLIMIT_AS`` to the current address space plus ``extra`` for the block
    (for cases run inside the test process); a no-op where the limit cannot be measured."""
    try:
        import resource
    except ImportError:
        yield
        return
    current = address_space()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if current is None:
        yield
        return
    wanted = current + extra
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY:
        wanted = min(wanted, soft)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def limit_address_space(limit: int = MEMORY_LIMIT) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the child's address space at ``limit`` bytes."""

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# --- byte-level mutation -------------------------------------------------------------------------

_SPECIALS: tuple[bytes, ...] = (
    b"&a ", b"*a", b"&anchor [1, 2]", b"<<: *a\n", b"!!str ", b"!!binary ", b"!Ref ",
    b"!!python/object/apply:os.system ['id']", b"!<tag:yaml.org,2002:str> ",
    b"{", b"}", b"[", b"]", b"{}", b"[]", b": ", b":", b"- ", b"-", b"? ", b"?", b",", b"#",
    b"'", b'"', b"|", b"|-\n", b">", b"\\", b"%", b"@", b"`", b"!", b"&", b"*",
    b"\t", b"\n", b"\r", b"\r\n", b"\x00", b"\x1b[31m", b"\x7f", b"\xff", b"\xfe\xff", b"\xc3",
    b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    "\u202e".encode(), "\u2066".encode(), "\u200b".encode(), "\ufeff".encode(),
    "\u2028".encode(), "\x85".encode(), "\ufffe".encode(), "\U000e0041".encode(),
    "é".encode(), "\U0001d518".encode(), "ﬁ".encode(), "а".encode(),  # Cyrillic a
    b"%YAML 1.1\n", b"%TAG ! tag:x,2024:\n", b"---\n", b"...\n", b"--- ", b"\n---\na: 1\n",
    b"~", b"null", b"true", b"yes", b"no", b"on", b"off", b"0755", b"0o17", b"0x1F", b"0b101",
    b"1e400", b"-1e400", b".nan", b".inf", b"-.inf", b"12:30", b"1.10", b"1_000", b"-0",
    b"9" * 31, b"9" * 400, b"-1", b"0", b"99.999", b"2**64",
    b'"\\u202e"', b'"\\x00"', b'"\\ud83d"', b'"\\U0001F600"', b'"\\N"', b'"\\e"', b'"\\',
    b"${{ secrets.X }}", b"{{ .Value }}", b"$(curl x)", b"AKIAIOSFODNN7EXAMPLE",
    b"-----BEGIN PRIVATE KEY-----", b"password: hunter2\n", b"$ref: http://x/y\n",
    b"include: /etc/passwd\n", b"../../etc", b"class", b"__init__", b"Fraud_Model",
    b"x\"); import os #", b"'''", b"models.", b"dataSources.", b"*",
)  # fmt: skip

_VALUES: tuple[bytes, ...] = (
    b"~", b"null", b"true", b"false", b"yes", b"on", b"0", b"-1", b"1", b"3", b"100", b"150",
    b"65536", b"1e400", b".nan", b".inf", b"0.5", b"99.9", b'"3"', b'""', b"''", b"[]", b"{}",
    b"[a, b]", b"{a: 1}", b"5 minutes", b"2GB", b"two", b"mars-1", b"latest", b"-lead",
    b"my..bucket", b"Fraud_Model", b"class", b"scorer", b"dev", b"prod", b"s3://b/p",
    b"vault://a/b", b"env:X", b"models.scorer", b"dataSources.x", b"0 3 * * 0", b"61 * * * *",
    b"2027-02-30", b"30d", b"0s", b"100ms", b"500m", b"1Gi", b"ghcr.io/acme/x:latest",
    b"x" * 2000, b"a" * 64, b"${{ github.token }}", b"{{ .Labels }}",
)  # fmt: skip

_SCALAR = re.compile(rb"(?<=: )[^\s#{}\[\],&*!|>'\"][^\n#{}\[\],]*")
_KEY = re.compile(rb"^( *(?:- )?)([A-Za-z][A-Za-z0-9_.-]*):", re.MULTILINE)


def _special(rng: random.Random) -> bytes:
    roll = rng.randrange(12)
    if roll == 0:  # very long runs
        return rng.choice((b"a", b"9", b" ", b"\n", b"- ", b"x: 1\n")) * rng.choice(
            (100, 5_000, 70_000)
        )
    if roll == 1:  # deep flow nesting
        return rng.choice((b"[", b"{a: ", b"[{", b"{? ")) * rng.choice((60, 65, 200, 30_000))
    if roll == 2:  # deep block nesting
        depth = rng.choice((10, 63, 64, 65, 200))
        return b"\n" + b"".join(b" " * i + b"k:\n" for i in range(depth)) + b" " * depth + b"v\n"
    return rng.choice(_SPECIALS)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _mutate_once(data: bytes, rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    """One random change to ``data``."""
    size = len(data)
    at = rng.randrange(size + 1)
    op = rng.randrange(18)
    if op == 0 and size:  # flip a bit
        at = min(at, size - 1)
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
    if op == 1 and size:  # replace a byte
        at = min(at, size - 1)
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    if op == 2:  # insert random bytes
        return data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
    if op == 3:  # delete a range
        return data[:at] + data[at + rng.choice((1, 1, 2, 5, 16, 200)) :]
    if op in (4, 5):  # insert a YAML special anywhere
        return data[:at] + _special(rng) + data[at:]
    if op == 6:  # insert a YAML special at the start of a line or after a key
        lines = _lines(data)
        index = rng.randrange(len(lines))
        line = lines[index]
        cut = line.find(b": ") + 2 if b": " in line and rng.random() < 0.5 else 0
        lines[index] = line[:cut] + _special(rng) + line[cut:]
        return b"\n".join(lines)
    if op == 7:  # duplicate a line
        lines = _lines(data)
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])
        return b"\n".join(lines)
    if op == 8:  # delete a line
        lines = _lines(data)
        del lines[rng.randrange(len(lines))]
        return b"\n".join(lines)
    if op == 9:  # swap two lines
        lines = _lines(data)
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if op == 10:  # re-indent a line
        lines = _lines(data)
        index = rng.randrange(len(lines))
        if rng.random() < 0.5:
            lines[index] = b" " * rng.choice((1, 2, 4)) + lines[index]
        else:
            lines[index] = lines[index][rng.choice((1, 2)) :]
        return b"\n".join(lines)
    if op == 11:  # duplicate a block of lines (duplicate keys, repeated entries)
        lines = _lines(data)
        start = rng.randrange(len(lines))
        end = min(len(lines), start + rng.randint(1, 12))
        return b"\n".join(lines[:end] + lines[start:end] + lines[end:])
    if op == 12:  # replace a scalar value
        matches = list(_SCALAR.finditer(data))
        if matches:
            match = rng.choice(matches)
            return data[: match.start()] + rng.choice(_VALUES) + data[match.end() :]
    if op == 13:  # rename a key
        matches = list(_KEY.finditer(data))
        if matches:
            match = rng.choice(matches)
            return data[: match.start(2)] + _renamed(match.group(2), rng) + data[match.end(2) :]
    if op == 14:  # truncate
        return data[:at]
    if op == 15 and corpus:  # splice a chunk of some example in
        donor = rng.choice(corpus)
        start = rng.randrange(len(donor) + 1)
        chunk = donor[start : start + rng.choice((8, 64, 400))]
        return data[:at] + chunk + data[at:]
    if op == 16:  # whole-file transformations
        return _transform(data, rng)
    if op == 17 and size:  # move a chunk
        end = min(size, at + rng.randint(1, 100))
        chunk, rest = data[at:end], data[:at] + data[end:]
        where = rng.randrange(len(rest) + 1)
        return rest[:where] + chunk + rest[where:]
    return data[:at] + _special(rng) + data[at:]


def _renamed(key: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(6)
    if choice == 0 and len(key) > 1:
        index = rng.randrange(len(key))
        return key[:index] + key[index + 1 :]
    if choice == 1:
        return key + rng.choice((b"s", b"x", b"_", b"-1"))
    if choice == 2:
        return key.upper()
    if choice == 3:
        return re.sub(rb"([A-Z])", lambda m: b"_" + m.group(1).lower(), key)
    if choice == 4:
        return rng.choice((b"$ref", b"include", b"<<", b"replica", b"metadata", b"models"))
    return rng.choice((b"1", b"true", b"null", b"'quoted'", b'"a\\tb"', b"[a]", b"? x"))


def _transform(data: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(7)
    if choice == 0:
        return data.replace(b"\n", b"\r\n")
    if choice == 1:
        return b"\xef\xbb\xbf" + data
    if choice == 2:
        return data.decode("utf-8", errors="replace").encode("latin-1", errors="replace")
    if choice == 3:
        return data.replace(b"  ", b"\t")
    if choice == 4:
        return data.replace(b"\n", b"\r")
    if choice == 5:
        return data.decode("utf-8", errors="replace").encode("utf-16")
    return data + b"\n---\n" + data


def mutate(data: bytes, rng: random.Random, corpus: Sequence[bytes] = ()) -> bytes:
    """One to four random changes (mostly one) to ``data``."""
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        data = _mutate_once(data, rng, corpus)
    return data


def spec_groups(examples: Sequence[Example]) -> list[list[Example]]:
    """The examples grouped by spec directory, in a stable order."""
    groups: dict[Path, list[Example]] = {}
    for example in examples:
        groups.setdefault(example.spec_dir, []).append(example)
    return [groups[key] for key in sorted(groups)]


# --- the worker ------------------------------------------------------------------------------------


def _describe(error: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)
    return {
        "type": type(error).__name__,
        "error": str(error)[:2000],
        "where": [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames[-6:]],
    }


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def _check_memory_limit(expected: int) -> str | None:
    """Why the address-space limit is not in force, or None when it is."""
    try:
        import resource
    except ImportError:
        return "the resource module is unavailable"
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != expected:
        return f"RLIMIT_AS is {soft}, expected {expected}"
    try:
        bytearray(expected)
    except MemoryError:
        return None
    return f"an allocation of {expected} bytes succeeded under RLIMIT_AS={expected}"


def run_worker(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--cases", type=int, required=True, help="cases over all shards")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="where failing inputs go")
    parser.add_argument("--memory-limit", type=int, default=None, help="expected RLIMIT_AS")
    parser.add_argument("--only", type=int, default=None, help="run this case number alone")
    options = parser.parse_args(arguments)

    if options.memory_limit is not None:
        problem = _check_memory_limit(options.memory_limit)
        if problem is not None:
            _emit({"fatal": f"memory limit not in force: {problem}"})
            return 2
    examples = discover_examples()
    if not examples:
        _emit({"fatal": f"no *.yaml files under {EXAMPLES.name}/"})
        return 2
    options.out.mkdir(parents=True, exist_ok=True)
    work = options.out / f"work-{options.shard}"
    work.mkdir(exist_ok=True)
    os.chdir(work)  # display names become short relative paths such as e0/mlplane.yaml
    cases = {e: CaseDir(e, Path(f"e{i}")) for i, e in enumerate(examples)}
    corpus = [e.path.read_bytes() for e in examples]

    ran = failed = succeeded = slowest_ms = 0
    seen: Counter[str] = Counter()
    started = time.perf_counter()
    specs = spec_groups(examples)
    numbers = range(options.shard, options.cases, options.shards)
    for number in numbers if options.only is None else [options.only]:
        group = specs[number % len(specs)]  # each spec gets its share, whatever its file count
        rng = random.Random(f"mlplane-fuzz:{options.seed}:{number}:{group[0].spec_dir.name}")
        example = rng.choice(group)
        case = cases[example]
        data = mutate(case.original, rng, corpus)
        ran += 1
        began = time.perf_counter()
        try:
            with time_limit(CASE_SECONDS):
                result = check_case(case, data)
        except Exception as error:  # MemoryError, RecursionError, FuzzFailure, CaseTimeout ...
            failed += 1
            saved = options.out / f"case-{options.seed}-{number}-{example.path.stem}.yaml"
            saved.write_bytes(data)
            _emit(
                {
                    "case": number,
                    "seed": options.seed,
                    "example": example.label,
                    "input": saved.name,
                    **_describe(error),
                }
            )
            continue
        slowest_ms = max(slowest_ms, round((time.perf_counter() - began) * 1000))
        succeeded += result.ok
        seen.update(d.code for d in result.diagnostics)
    _emit(
        {
            "summary": {
                "shard": options.shard,
                "cases": ran,
                "failed": failed,
                "compiled": succeeded,
                "codes": dict(sorted(seen.items())),
                "seconds": round(time.perf_counter() - started, 2),
                "slowest_ms": slowest_ms,
                "peak_mib": math.ceil((peak_address_space() or 0) / 2**20),
            }
        }
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_worker())
