"""Generate ``targets/pulumi_aws_classes.py``: the pulumi_aws classes the program printer uses.

The printer must print every AWS input as the SDK's typed ``*Args`` class, because Pulumi's mock
runtime (and the engine) accept any dictionary key: only the typed classes turn a misspelled
argument into a ``TypeError``. Which class takes which input comes from the installed SDK, read
here once, never guessed from strings at print time:

- the class of a type token from the SDK's own resource registry (what ``pulumi import`` uses to
  construct a resource from its token), so a token the SDK does not register fails here;
- the resource's args class from the ``args:`` parameter of its ``__init__`` overload (in
  ``pulumi_aws.s3`` that is ``BucketVersioningInitArgs``: ``BucketVersioningArgs`` is the inline
  type of ``Bucket.versioning``);
- each input's wire name, keyword and type from ``pulumi.input_type`` metadata (the
  ``pulumi.getter(name=...)`` of every property and its type hint), recursively for nested
  ``*Args`` classes;
- each resource's outputs from its ``pulumi.getter`` properties (what a ``$ref`` may name).

Usage: ``python tools/gen_aws_classes.py`` rewrites the module; ``--check`` exits 1 when the
committed module differs from what the installed SDK gives (the drift test runs the same
comparison). To support another AWS resource, add its token to ``TOKENS`` and regenerate.
"""

from __future__ import annotations

import argparse
import collections.abc
import enum
import inspect
import json
import sys
import typing
from collections.abc import Iterator, Mapping
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "targets" / "pulumi_aws_classes.py"
TOKENS = (
    "pulumi:providers:aws",
    "aws:appautoscaling/policy:Policy",
    "aws:appautoscaling/target:Target",
    "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm",
    "aws:cloudwatch/dashboard:Dashboard",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:kms/alias:Alias",
    "aws:kms/key:Key",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLogging:BucketLogging",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:sagemaker/endpoint:Endpoint",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "aws:sagemaker/model:Model",
    "aws:sagemaker/pipeline:Pipeline",
    "aws:scheduler/schedule:Schedule",
    "aws:sns/topic:Topic",
    "aws:sns/topicPolicy:TopicPolicy",
    "aws:sns/topicSubscription:TopicSubscription",
)
"""Exactly the tokens the AWS target emits (sorted after the provider)."""

SCALARS: Mapping[type, str] = {str: "str", int: "int", float: "float", bool: "bool"}
Field = tuple[str, str, str]
"""(keyword, container, item): container "one", "list" or "map"; item a scalar name or an
args class path."""


class GenerationError(RuntimeError):
    """The SDK has a token or a type shape this generator does not know how to describe."""


def resource_class(token: str) -> type:
    """The SDK class registered for ``token`` (its resource registry, not string guessing)."""
    from pulumi.runtime import rpc

    import_module("pulumi_aws")
    if token.startswith("pulumi:providers:"):
        for registered_package in rpc._RESOURCE_PACKAGES.get(token.rsplit(":", 1)[1], []):
            info = registered_package.pkg_info  # type: ignore[attr-defined]
            if info["token"] == token:
                return typing.cast(type, getattr(import_module(info["fqn"]), info["class"]))
        raise GenerationError(f"the SDK registers no provider {token!r}")
    package, module, _ = token.split(":")
    for registered in rpc._RESOURCE_MODULES.get(f"{package}:{module}", []):
        name = registered.mod_info["classes"].get(token)  # type: ignore[attr-defined]
        if name is not None:
            fqn = registered.mod_info["fqn"]  # type: ignore[attr-defined]
            return typing.cast(type, getattr(import_module(fqn), name))
    raise GenerationError(f"the SDK registers no resource {token!r}")


def args_class(cls: type) -> type:
    """The ``args:`` type of the resource's ``__init__`` overload (``...InitArgs`` or ``...Args``)."""
    for overload in typing.get_overloads(cls.__init__):  # type: ignore[misc]
        hint = overload.__annotations__.get("args")
        if isinstance(hint, str):
            hint = vars(sys.modules[cls.__module__])[hint]
        if typing.get_origin(hint) is typing.Union:  # a provider's ``args`` is optional
            hint = next(m for m in typing.get_args(hint) if m is not type(None))
        if isinstance(hint, type):
            return hint
    raise GenerationError(f"{cls.__qualname__} has no __init__ overload taking args")


def public_path(cls: type) -> str:
    """``s3.BucketVersioningInitArgs``: where the program reaches ``cls`` below ``pulumi_aws``.

    The innermost package (not a module file) of ``cls.__module__`` that exports it:
    ``pulumi_aws.s3.bucket_versioning`` -> ``pulumi_aws.s3``, ``pulumi_aws.provider`` ->
    ``pulumi_aws``."""
    parts = cls.__module__.split(".")
    for end in range(len(parts), 0, -1):
        package = import_module(".".join(parts[:end]))
        if hasattr(package, "__path__") and getattr(package, cls.__name__, None) is cls:
            return ".".join([*parts[1:end], cls.__name__])
    raise GenerationError(f"no package of {cls.__module__} exports {cls.__name__}")


def shape(hint: Any) -> tuple[str, Any]:
    """("one" | "list" | "map", item type) of an unwrapped input type hint."""
    from pulumi import _types

    origin = typing.get_origin(hint)
    if origin in (collections.abc.Sequence, list):
        return "list", _item(typing.get_args(hint)[0])
    if origin in (collections.abc.Mapping, dict):
        key, value = typing.get_args(hint)
        if key is not str:
            raise GenerationError(f"map with non-string keys: {hint!r}")
        return "map", _item(value)
    return "one", _item(_types.unwrap_type(hint))


def _item(hint: Any) -> Any:
    """The element type: unwrap ``Input[T]``. A str enum counts as str, and so does a union of
    str and an args class (``sns.TopicPolicy.policy`` takes JSON text or a ``PolicyDocumentArgs``):
    the graph gives policy documents as ``$json`` markers, which print as JSON text."""
    from pulumi import _types

    item = _types.unwrap_type(hint)
    if typing.get_origin(item) is typing.Union:
        members = {m for m in typing.get_args(item) if _plain(m)}
        if str in members and all(m is str or _str_like(m) for m in members):
            return str
    if isinstance(item, type) and issubclass(item, enum.Enum) and issubclass(item, str):
        return str
    if typing.get_origin(item) is not None:
        raise GenerationError(f"nested container {hint!r} has no printer shape")
    return item


def _plain(member: Any) -> bool:
    """Not the ``Awaitable``/``Output``/``None`` members that ``Input[...]`` adds to a union."""
    from pulumi import Output

    origin = typing.get_origin(member)
    return member is not type(None) and origin not in (collections.abc.Awaitable, Output)


def _str_like(member: Any) -> bool:
    from pulumi import _types

    if not isinstance(member, type):
        return False
    return issubclass(member, enum.Enum) or _types.is_input_type(member)


def item_name(item: Any, pending: list[type]) -> str:
    from pulumi import _types

    if item is typing.Any:
        return "any"
    if item in SCALARS:
        return SCALARS[item]
    if isinstance(item, type) and _types.is_input_type(item):
        pending.append(item)
        return public_path(item)
    raise GenerationError(f"input type {item!r} has no printer shape")


def fields_of(cls: type, pending: list[type]) -> dict[str, Field]:
    """Wire name -> (keyword, container, item) of one ``pulumi.input_type`` class."""
    from pulumi import _types

    keywords = {wire: python for python, wire in _types.input_type_py_to_pulumi_names(cls).items()}
    fields: dict[str, Field] = {}
    for wire, hint in sorted(_types.input_type_types(cls).items()):
        container, item = shape(hint)
        fields[wire] = (keywords[wire], container, item_name(item, pending))
    return fields


def outputs_of(cls: type) -> dict[str, str]:
    """Wire name -> attribute of every output property of a resource class (plus ``id``)."""
    from pulumi import _types

    names = {wire: python for python, wire in _types.resource_py_to_pulumi_names(cls).items()}
    return dict(sorted({**names, "id": "id"}.items()))


Tables = tuple[
    dict[str, tuple[str, str]],
    dict[str, dict[str, str]],
    dict[str, dict[str, Field]],
    dict[str, tuple[str, ...]],
]


def required_of(cls: type) -> tuple[str, ...]:
    """Wire names of the inputs that ``cls.__init__`` requires (keyword-only, no default)."""
    from pulumi import _types

    wires = _types.input_type_py_to_pulumi_names(cls)
    parameters = inspect.signature(cls).parameters.values()
    return tuple(
        sorted(
            wires[p.name] for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty
        )
    )


def collect() -> Tables:
    """(resources, outputs, types, required) for ``TOKENS``, each sorted."""
    resources: dict[str, tuple[str, str]] = {}
    outputs: dict[str, dict[str, str]] = {}
    types: dict[str, dict[str, Field]] = {}
    required: dict[str, tuple[str, ...]] = {}
    pending: list[type] = []
    for token in TOKENS:
        cls = resource_class(token)
        args = args_class(cls)
        resources[token] = (public_path(cls), public_path(args))
        outputs[token] = outputs_of(cls)
        pending.append(args)
    while pending:
        cls = pending.pop()
        path = public_path(cls)
        if path not in types:
            types[path] = fields_of(cls, pending)
            required[path] = required_of(cls)
    if set(types) & {*SCALARS.values(), "any"}:
        raise GenerationError("a class path collides with a scalar name")
    return (
        dict(sorted(resources.items())),
        dict(sorted(outputs.items())),
        dict(sorted(types.items())),
        {path: names for path, names in sorted(required.items()) if names},
    )


HEADER = '''"""The pulumi_aws classes the Pulumi program printer uses. GENERATED: DO NOT EDIT.

Written by ``tools/gen_aws_classes.py`` from pulumi-aws {version} (the SDK installed by the
``test`` extra); ``tests/test_pulumi_aws_classes.py`` fails while this file differs from what the
installed SDK gives. ``targets/pulumi_classes.py`` turns these tables into rows of its class table.

- ``RESOURCES``: type token -> (resource class, its args class), as paths below ``pulumi_aws``.
- ``OUTPUTS``: type token -> {{output wire name: attribute}}, what a ``$ref`` marker may name.
- ``TYPES``: args class -> {{input wire name: (keyword, container, item)}}; container is "one",
  "list" or "map" (string keys); item is a scalar ("str", "int", "float", "bool", "any") or an
  args class, itself a key of ``TYPES``.
- ``REQUIRED``: args class -> the input wire names its constructor requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SDK_VERSION: Final = {version_literal}
'''


def render() -> str:
    resources, outputs, types, required = collect()
    sdk = version("pulumi-aws")
    lines = [HEADER.format(version=sdk, version_literal=_q(sdk))]
    lines.append("RESOURCES: Final[Mapping[str, tuple[str, str]]] = {")
    lines += [f"    {_q(token)}: {_tuple(pair)}," for token, pair in resources.items()]
    lines += ["}", "", "OUTPUTS: Final[Mapping[str, Mapping[str, str]]] = {"]
    for token, names in outputs.items():
        lines.append(f"    {_q(token)}: {{")
        lines += [f"        {_q(wire)}: {_q(python)}," for wire, python in names.items()]
        lines.append("    },")
    lines += ["}", "", "TYPES: Final[Mapping[str, Mapping[str, tuple[str, str, str]]]] = {"]
    for path, fields in types.items():
        lines.append(f"    {_q(path)}: {{")
        lines += [f"        {_q(wire)}: {_tuple(field)}," for wire, field in fields.items()]
        lines.append("    },")
    lines += ["}", "", "REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {"]
    lines += [f"    {_q(path)}: {_tuple(names)}," for path, names in required.items()]
    lines.append("}")
    return "\n".join(_ascii(lines)) + "\n"


def _q(text: str) -> str:
    """A double-quoted literal (the project's style); SDK names are plain ASCII identifiers."""
    return json.dumps(text)


def _tuple(items: tuple[str, ...]) -> str:
    text = ", ".join(_q(item) for item in items)
    return f"({text},)" if len(items) == 1 else f"({text})"


def _ascii(lines: list[str]) -> Iterator[str]:
    for line in lines:
        if not line.isascii():
            raise GenerationError(f"non-ASCII text in the SDK metadata: {line!a}")
        yield line


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the module is stale")
    arguments = parser.parse_args(argv)
    text = render()
    if arguments.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text
        if stale:
            print(f"{OUTPUT.name} is stale: run python tools/gen_aws_classes.py", file=sys.stderr)
        return 1 if stale else 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
