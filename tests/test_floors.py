"""Inside ``compiler/`` every import points down a floor (docs/architecture.md, the floors table):
a module may import a ``mlplane.compiler.<sub>`` of its own floor or of a lower one, never of a
higher one. Every module is parsed with ``ast`` and every import statement in it is read, those
inside functions and ``TYPE_CHECKING`` blocks included (an import deferred to call time still
ties the floors together), relative imports resolved against the module's package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPILER = ROOT / "compiler"
PACKAGE = "mlplane.compiler"

FLOORS = {
    "core": 1,
    "frontend": 2,
    "render": 2,
    "policy": 3,
    "build": 4,
    "plan": 5,
    "report": 5,
    "deploy": 5,
    "cli": 6,
}
"""docs/architecture.md's table: subpackage of ``compiler/`` -> its floor."""


@dataclass(frozen=True)
class Import:
    """One imported ``mlplane.compiler`` module (or subpackage) and the line that imports it."""

    line: int
    end_line: int
    module: str


def module_name(path: Path) -> str:
    """The dotted name of a module of ``compiler/`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(COMPILER).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def imports(source: str, name: str, is_package: bool) -> Iterator[Import]:
    """Every ``mlplane.compiler`` module that the module ``name`` (its ``source``) imports,
    wherever the statement stands; ``from P import N`` yields ``P.N`` (N may be a subpackage or
    a module of P)."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, node.end_lineno or node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            for alias in node.names:
                yield Import(node.lineno, node.end_lineno or node.lineno, f"{base}.{alias.name}")


def _absolute(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def floor_of(module: str) -> int | None:
    """The floor of a ``mlplane.compiler.<sub>...`` module; None for anything else (and for the
    ``mlplane.compiler`` package itself, which holds no code)."""
    parts = module.split(".")
    if parts[:2] != PACKAGE.split(".") or len(parts) < 3:
        return None
    if parts[2] not in FLOORS:
        raise AssertionError(f"{module}: compiler/{parts[2]}/ has no floor in the table")
    return FLOORS[parts[2]]


def violations(path: Path) -> list[str]:
    """Each import of the module at ``path`` that reaches a higher floor."""
    source = path.read_text(encoding="utf-8")
    name, where = module_name(path), path.relative_to(ROOT).as_posix()
    return up_a_floor(source, name, path.name == "__init__.py", where)


def up_a_floor(source: str, name: str, is_package: bool, where: str) -> list[str]:
    """Each import of the module ``name`` (``source``) that reaches a higher floor than its own,
    as ``where:line: ...``."""
    own = floor_of(name)
    if own is None:
        return []
    found = []
    lines = source.splitlines()
    for item in imports(source, name, is_package):
        floor = floor_of(item.module)
        if floor is not None and floor > own:
            text = " ".join(" ".join(lines[item.line - 1 : item.end_line]).split())
            found.append(
                f"{where}:{item.line}: floor {own} imports {item.module} (floor {floor}): {text}"
            )
    return found


MODULES = sorted(COMPILER.rglob("*.py"))


def test_every_subpackage_of_the_compiler_has_a_floor() -> None:
    subpackages = {p.parent.name for p in COMPILER.glob("*/__init__.py")}
    assert subpackages == set(FLOORS)


def test_modules_are_found() -> None:
    assert len(MODULES) > 50
    assert COMPILER / "build" / "cache.py" in MODULES


def test_every_import_points_down_a_floor() -> None:
    found = [problem for path in MODULES for problem in violations(path)]
    assert not found, "imports up a floor:\n" + "\n".join(found)


def test_an_import_up_a_floor_is_found_wherever_it_stands() -> None:
    """The check itself: module-level, deferred, relative and ``import a.b`` forms are read."""
    source = (
        "from mlplane.compiler.core import graph\n"
        "from mlplane.compiler.plan.cache import Hit\n"
        "def later() -> None:\n"
        "    import mlplane.compiler.cli.main\n"
        "    from ..report import build\n"
        "    from . import outputs\n"
        "    from .. import deploy\n"
    )
    found = up_a_floor(source, "mlplane.compiler.build.probe", False, "probe.py")
    assert [line.split(":")[1] for line in found] == ["2", "4", "5", "7"]
    assert "floor 4 imports mlplane.compiler.plan.cache.Hit (floor 5)" in found[0]
    assert found[1].endswith("import mlplane.compiler.cli.main")
    assert "mlplane.compiler.report.build (floor 5)" in found[2]
    assert "mlplane.compiler.deploy (floor 5)" in found[3]
    assert up_a_floor(source, "mlplane.compiler.cli.probe", False, "probe.py") == []


@pytest.mark.parametrize(
    ("package", "module", "level", "expected"),
    [
        ("mlplane.compiler.plan", "cache", 1, "mlplane.compiler.plan.cache"),
        ("mlplane.compiler.plan", "core.ir", 2, "mlplane.compiler.core.ir"),
        ("mlplane.compiler.plan", None, 2, "mlplane.compiler"),
        ("mlplane.compiler.plan", "mlplane.compiler.core", 0, "mlplane.compiler.core"),
    ],
)
def test_relative_imports_resolve(
    package: str, module: str | None, level: int, expected: str
) -> None:
    assert _absolute(package, module, level) == expected
