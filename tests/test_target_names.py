"""``compiler/`` knows no built-in target by name: what it must know of a target comes through
the plug-in seam (``compiler/core/plugins.py``), so a third-party target needs no edit there.

The check reads the code, not the prose: every identifier (names, attributes, parameters,
keywords, definitions, imports; split at ``_`` and camel case) and every string literal that is
not a docstring. Docstrings and comments may name a target as an example.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from mlplane.compiler.core import plugins

ROOT = Path(__file__).resolve().parent.parent
COMPILER = ROOT / "compiler"

ALLOWED: dict[tuple[str, str], str] = {
    ("core/redact.py", "an AWS access key id"): "a credential shape the redactor masks in any "
    "output, whatever the target: AWS keys leak from any CI log",
    ("frontend/scan.py", "aws"): "a secret reference scheme (aws-sm://) offered in a hint: the "
    "language's secret references, not a target",
    ("policy/rego.py", "providers.aws.sign_req"): "the name of an OPA built-in that organisation "
    "policies may not call (it reads the clock)",
    ("core/codes.py", "kubernetes"): "the language's quantity and label formats are "
    "Kubernetes' own (schema/formats.py), checked for every target",
    (
        "frontend/ci_checks.py",
        "the AWS role CI assumes is in another account than the environment",
    ): (
        "the role CI assumes is an AWS IAM role in the ci: section's language (schema/ci.py "
        "ROLE_KEY), whatever the environment's target"
    ),
    ("cli/starter.py", "target: kubernetes"): "the starter spec `mlplane init` writes is a "
    "spec, and the language names its targets",
}
"""(module below ``compiler/``, the literal or word) -> why it may name a target."""


def _words(identifier: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", identifier).replace("_", " ")
    return {word.lower() for word in spaced.split()}


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of the module, its classes and functions, and the
    attribute docstrings (a string statement right after an assignment)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for statement in body:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                found.add(id(statement.value))
    return found


def _identifiers(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, (ast.arg, ast.keyword)) and node.arg:
        yield node.arg
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, ast.alias):
        yield node.name
        if node.asname:
            yield node.asname
    elif isinstance(node, ast.ImportFrom) and node.module:
        yield from node.module.split(".")


def mentions(source: str, names: frozenset[str]) -> list[tuple[int, str]]:
    """``(line, identifier or literal)`` of every mention of one of ``names`` in ``source``."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    pattern = re.compile(rf"\b({'|'.join(sorted(names))})\b", re.IGNORECASE)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        found += [(line, word) for word in _identifiers(node) if _words(word) & names]
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and id(node) not in docstrings and pattern.search(str(node.value)):
            found.append((line, str(node.value)))
    return found


def _allowed(module: str, text: str) -> bool:
    return any(
        module == where and (text == what or what in _words(text) or what in text.lower())
        for where, what in ALLOWED
    )


def test_compiler_names_no_built_in_target() -> None:
    names = frozenset(plugins.targets())
    assert {"kubernetes", "aws"} <= names, "the built-in targets are installed"
    found = []
    for path in sorted(COMPILER.rglob("*.py")):
        module = path.relative_to(COMPILER).as_posix()
        for line, text in mentions(path.read_text(encoding="utf-8"), names):
            if not _allowed(module, text):
                found.append(f"compiler/{module}:{line}: {text[:80]!r}")
    assert not found, "compiler/ names a built-in target:\n" + "\n".join(found)


def test_every_allowance_is_still_needed() -> None:
    """An allowance whose mention is gone is dropped, so the list stays short and true."""
    names = frozenset(plugins.targets())
    for module, what in ALLOWED:
        source = (COMPILER / module).read_text(encoding="utf-8")
        texts = [text for _, text in mentions(source, names)]
        assert any(_allowed(module, text) for text in texts), (module, what)


def test_the_check_sees_code_and_skips_prose() -> None:
    source = (
        '"""Lowered by the aws target."""\n'
        "def f(env):\n"
        '    """On kubernetes, ..."""\n'
        "    region = env.aws.region\n"
        '    return "kubernetes" if region else kube_aws_thing\n'
        "x = 1\n"
        '"""x is the aws count."""\n'
    )
    found = mentions(source, frozenset({"aws", "kubernetes"}))
    assert sorted(found) == [(4, "aws"), (5, "kube_aws_thing"), (5, "kubernetes")]
