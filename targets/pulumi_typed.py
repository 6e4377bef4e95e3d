"""Printing the inputs of an SDK with typed args classes (pulumi_aws) as those classes.

Pulumi's engine, and its mock runtime, take any dictionary key: an input misspelled inside a
plain dictionary (``{"varientName": ...}``) is sent as it is and fails, if at all, only in the
cloud. So every nested object input of an AWS resource is printed as the SDK's typed class
(``pulumi_aws.sagemaker.EndpointConfigurationProductionVariantArgs(variant_name=...)``) and
lists of objects as lists of such calls: Python itself then rejects an unknown keyword with a
``TypeError`` when the program runs, and the printer rejects it before, with the path of the
input (:class:`~mlplane.targets.pulumi_literals.ProgramError`), because the table of each class's
inputs (``targets/pulumi_aws_classes.py``, generated from the installed SDK) is explicit.

The graph holds inputs in Pulumi's wire form (camelCase keys), the program uses the SDK's
keywords (snake_case, from the same table: never derived from the key by string rules). Scalars
are checked against the SDK's declared type; ``$secret``, ``$ref`` and ``$json`` markers and None
(absent) are accepted wherever a value may go, since they only exist at run time.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core.diagnostics import format_path
from mlplane.targets import pulumi_aws_classes as aws
from mlplane.targets.pulumi_literals import (
    INDENT,
    LINE_WIDTH,
    ProgramError,
    Reference,
    call,
    is_marker,
    literal,
    scalar,
)

InputPath = tuple[str | int, ...]
"""Where an input sits below the resource's inputs: ``("rules", 0, "expiration")``."""
_SCALAR_TYPES: Mapping[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


@dataclass(frozen=True, slots=True)
class TypedPrinter:
    """Prints the inputs of one resource; ``module`` is the SDK's import name (``pulumi_aws``)."""

    module: str
    resource: str
    """The resource's logical name, for error messages."""
    refs: Reference

    def arguments(
        self, args: str, value: Mapping[str, Any], indent: int, path: InputPath = ()
    ) -> list[str]:
        """``keyword=value`` for each entry of ``value``, an instance of args class ``args``,
        sorted by keyword, laid out for a line indented by ``indent``."""
        fields = aws.TYPES[args]
        self._check_keys(args, value, path)
        arguments: list[str] = []
        for key in sorted(value, key=lambda k: fields[k][0]):
            keyword, container, item = fields[key]
            column = indent + len(keyword) + 1
            printed = self.value(container, item, value[key], indent, column, (*path, key))
            arguments.append(f"{keyword}={printed}")
        return arguments

    def value(
        self, container: str, item: str, value: Any, indent: int, column: int, path: InputPath
    ) -> str:
        """One input of shape (``container``, ``item``), see ``pulumi_aws_classes``."""
        if value is None or is_marker(value):
            return literal(value, indent, column, self.refs)
        if container == "list":
            return self._sequence(item, value, indent, column, path)
        if container == "map":
            return self._mapping(item, value, indent, column, path)
        return self._one(item, value, indent, column, path)

    def _one(self, item: str, value: Any, indent: int, column: int, path: InputPath) -> str:
        if item not in aws.TYPES:
            self._check_scalar(item, value, path)
            return literal(value, indent, column, self.refs)
        if not isinstance(value, Mapping):
            raise self._error(path, f"must be an object ({item}), not {_kind(value)}")
        arguments = self.arguments(item, value, indent + len(INDENT), path)
        return call(f"{self.module}.{item}", arguments, indent, column)

    def _sequence(self, item: str, value: Any, indent: int, column: int, path: InputPath) -> str:
        if not isinstance(value, list | tuple):
            raise self._error(path, f"must be a list, not {_kind(value)}")
        inner = indent + len(INDENT)
        elements = [
            self.value("one", item, element, inner, inner, (*path, i))
            for i, element in enumerate(value)
        ]
        return _display("[", "]", elements, indent, column)

    def _mapping(self, item: str, value: Any, indent: int, column: int, path: InputPath) -> str:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self._error(path, f"must be a mapping with string keys, not {_kind(value)}")
        inner = indent + len(INDENT)
        entries = []
        for key in sorted(value):
            prefix = f"{scalar(key)}: "
            printed = self.value("one", item, value[key], inner, inner + len(prefix), (*path, key))
            entries.append(prefix + printed)
        return _display("{", "}", entries, indent, column)

    def _check_keys(self, args: str, value: Mapping[str, Any], path: InputPath) -> None:
        fields = aws.TYPES[args]
        for key in value:
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self._error((*path, str(key)), f"{args} takes no input {key!r}{hint}")
        missing = [k for k in aws.REQUIRED.get(args, ()) if value.get(k) is None]
        if missing:
            raise self._error(path, f"{args} requires the inputs {missing}")

    def _check_scalar(self, item: str, value: Any, path: InputPath) -> None:
        allowed = _SCALAR_TYPES.get(item)
        if allowed is None:  # "any"
            return
        wrong_bool = isinstance(value, bool) and item != "bool"
        if wrong_bool or not isinstance(value, allowed):
            raise self._error(
                path, f"must be {'an' if item == 'int' else 'a'} {item}, not {_kind(value)}"
            )

    def _error(self, path: InputPath, message: str) -> ProgramError:
        where = format_path(path) or "inputs"
        return ProgramError(f"{self.resource!r}, input {where}: {message}")


def _display(opening: str, closing: str, elements: Sequence[str], indent: int, column: int) -> str:
    """A list or dict display: on one line when it fits, else one element per line."""
    flat = opening + ", ".join(elements) + closing
    if "\n" not in flat and column + len(flat) <= LINE_WIDTH:
        return flat
    pad = " " * (indent + len(INDENT))
    return "\n".join(
        [opening, *(f"{pad}{element}," for element in elements), " " * indent + closing]
    )


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!a}"
