"""Printing a resource graph as a readable Pulumi Python program (``__main__.py``).

Target-neutral: it works for any graph whose type tokens have a row in
``targets/pulumi_classes.py`` (Kubernetes and AWS). The program is what a platform
engineer reviews in a pull request and runs with ``pulumi up``, so it is printed to be read:

- imports only ``pulumi`` and the SDK packages the graph needs;
- one ``pulumi.ComponentResource`` subclass per component type token, so ``pulumi preview``
  shows a tree (system -> model -> resources);
- one statement per resource, in the graph's order (a parent, dependency, provider or
  referenced resource that sorts later is moved up, so every name is defined before it is
  used), with its options spelled out (``provider=aws_1`` for an explicit provider resource);
- inputs as plain literals laid out one field per line (``targets/pulumi_literals.py``): no
  string formatting of spec text, no f-strings, no spec text in comments or identifiers
  (variables are named from the type token and a counter: ``deployment_2``);
- options that are only a parent and dependencies, the options of nearly every resource, as
  ``opts=child(model_3, namespace_1)`` (:data:`CHILD_FUNCTION`, defined once in the program);
- for an SDK with typed args classes (pulumi_aws), keyword arguments whose nested objects are
  the SDK's ``*Args`` classes, all the way down (``targets/pulumi_typed.py``), so Python rejects
  a misspelled input when the program runs and the printer before;
- secret inputs read from the stack's secret config, never written into the program; outputs of
  other resources (``$ref``) read as attributes (``bucket_1.arn``), and policy documents
  (``$json``) as ``pulumi.Output.json_dumps(...)`` of a literal;
- the ``metadata`` and ``spec`` of each Kubernetes object (:data:`DATA_INPUTS`) read from the
  build's resource graph, ``resources.json`` next to the project directory, when the caller asks
  for it (``mlplane build`` does), as ``**inputs_of('<name>')``: on the 1,000-model benchmark they
  are most of the program's syntax tree, loading them as JSON costs a fraction of compiling them
  as literals, and the graph already holds them, so no second copy is written; reviewers read
  them in ``manifests/``.

``tests/test_pulumi_program.py`` runs the printed program under Pulumi's mock runtime and checks
that it registers exactly the graph: same type tokens, names, parents, options and inputs.

Printing is pure (no I/O); an inconsistent graph or an unknown token raises
:class:`~mlplane.targets.pulumi_literals.ProgramError` (a bug in a target, not a user's mistake).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import partial

from mlplane.compiler.core import resource_texts
from mlplane.compiler.core.graph import GRAPH_FILE, Resource, ResourceGraph, ResourceOptions
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.provenance import header_line
from mlplane.targets.pulumi_classes import (
    EXPORTS,
    component_kind,
    keyword_of,
    python_class,
    variable_stem,
)
from mlplane.targets.pulumi_literals import (
    CONFIG_VARIABLE,
    INDENT,
    LINE_WIDTH,
    ProgramError,
    Reference,
    call,
    has_json_document,
    has_marker,
    literal,
    resource_secret_keys,
    scalar,
)
from mlplane.targets.pulumi_typed import TypedPrinter

DOCSTRING = '''"""The Pulumi program of one mlplane system in one environment.

Printed by `mlplane build` from the resource graph (resources.json, next to this project): every
value is a literal constant, except the metadata and spec of each Kubernetes object, which are
read from that resources.json (manifests/ shows the same objects as YAML), and resources are
created in the graph's order. `child(parent, *depends_on)` is the options of a resource that
sets only those. Secret inputs are read from the stack's secret config:
`pulumi config set --secret KEY VALUE`.
"""'''

_COMPONENT_CLASS = '''class {kind}(pulumi.ComponentResource):
    """Groups child resources, so that `pulumi preview` shows them as a tree."""

    def __init__(
        self,
        name: str,
        props: dict[str, object],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__({token}, name, props, opts)
        self.register_outputs({{}})'''


CHILD = "child"
CHILD_FUNCTION = f'''def {CHILD}(parent: pulumi.Resource, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
    """The options of a resource created below `parent`, after the resources `depends_on`."""
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None)'''
"""The one function of the program: most resources set only a parent and dependencies, and
``opts=child(model_3, namespace_1)`` is half the syntax tree of
``opts=pulumi.ResourceOptions(parent=model_3, depends_on=[namespace_1])``, which CPython
compiles once per resource (~14,000 on the 1,000-model benchmark)."""

GRAPH_PATH = f"../{GRAPH_FILE}"
"""Where the program finds the build's resource graph, relative to its own directory: the
project directory ``pulumi/`` sits next to ``resources.json`` in the output of ``mlplane build``,
which writes, checks (``--check``) and replaces both together."""

DATA_VARIABLE = "INPUTS"
DATA_FUNCTION = "inputs_of"

DATA_INPUTS = ("metadata", "spec")
DATA_TYPES = "kubernetes:"
"""The inputs that :func:`print_program` reads from the resource graph rather than printing them
as literals: the ``metadata`` and ``spec`` of every Kubernetes object (type token prefix
:data:`DATA_TYPES`), unless they hold a marker. The program passes them as
``**inputs_of('<name>')`` (both, or the one the object has), or ``**inputs_of('<name>', 'spec')``
when the other holds a marker and is printed (an unknown keyword would stop the program with a
``TypeError``). The Kubernetes SDK takes both as plain mappings, printed or loaded alike (nothing
typed is lost: typed ``*Args`` classes are printed for pulumi_aws only); the object's logical
name, type, other inputs, parent and options stay in the program, and ``manifests/`` shows the
same objects as YAML for review. On the 1,000-model benchmark (~14,400 resources) the
all-literal program is 56 MB, which CPython compiles in 4.2 s of CPU with 1.8 GB; with the specs
alone moved out it was 11.5 MB, compiled in 1.25 s with 570 MB; with the metadata too and
:data:`CHILD_FUNCTION` it is 3.7 MB, compiled in 0.6-0.9 s with 190 MB
(``benchmarks/scale_bench.py --program-only``). The values were first written to a data file
of the program's own (48 MB on that benchmark), a second copy of what ``resources.json`` holds,
the SLO rules included; reading the graph writes them once."""

_DATA_PREAMBLE = (
    "import json\nimport pathlib",
    f"{DATA_VARIABLE} = {{\n"
    "    resource['name']: resource['inputs']\n"
    "    for resource in json.loads(\n"
    f"        (pathlib.Path(__file__).parent / {GRAPH_PATH!r}).read_text(encoding='utf-8')\n"
    "    )['resources']\n"
    "}",
    f"def {DATA_FUNCTION}(name: str, *keys: str) -> dict[str, object]:\n"
    f'    """The inputs `keys` of the resource `name` in {GRAPH_FILE} (default: metadata, spec)."""\n'
    f"    held = {DATA_VARIABLE}[name]\n"
    f"    return {{key: held[key] for key in keys or {DATA_INPUTS!r} if key in held}}",
)
"""The imports, the graph's inputs by resource name, and the function that picks them."""


def print_program(graph: ResourceGraph, system: System, read_graph: bool = False) -> str:
    """The ``__main__.py`` of ``graph``; ``system`` only names the spec in the header.

    With ``read_graph``, the inputs :data:`DATA_INPUTS` of the types :data:`DATA_TYPES` names
    are read from the graph's JSON (:data:`GRAPH_PATH`, which the caller writes: ``mlplane
    build`` writes ``resources.json``) rather than printed, each when it holds no marker
    (secrets, references and JSON documents are always printed); without it, the program holds
    every value.
    """
    order = creation_order(graph)
    variables = variable_names(order)
    refs = _references(order, variables)
    exports = _exports(order, variables)
    modules = sdk_modules(order)
    if not exports and not any(_uses_pulumi(r) for r in order):
        modules = tuple(m for m in modules if m != "pulumi")  # else ruff: F401 unused import
    moved: list[str] | None = [] if read_graph else None
    statements = "\n".join(_statement(r, variables, refs, moved) for r in order)
    blocks = [
        "\n".join([f"# {header_line(system)}", DOCSTRING]),
        *(_DATA_PREAMBLE[:1] if moved else ()),
        "\n".join(f"import {module}" for module in modules),
        *(_DATA_PREAMBLE[1:2] if moved else ()),
    ]
    if any(resource_secret_keys(r) for r in order):
        blocks.append(f"{CONFIG_VARIABLE} = pulumi.Config()")
    blocks += _component_classes(order)
    if any(_is_child(r) for r in order):
        blocks.append(CHILD_FUNCTION)
    if moved:
        blocks += _DATA_PREAMBLE[2:]
    blocks.append(statements)
    blocks += ["\n".join(exports)]
    return _joined([block for block in blocks if block])


def _uses_pulumi(resource: Resource) -> bool:
    """Whether the statement of ``resource`` (or what it needs) names the ``pulumi`` module:
    a component class, ``pulumi.ResourceOptions``, ``pulumi.Config`` or a ``$json`` document."""
    if resource.component or resource.parent or resource.depends_on:
        return True
    inputs = dict(resource.inputs)
    return (
        resource.options != ResourceOptions()
        or bool(resource_secret_keys(resource))
        or has_json_document(inputs)
    )


def _joined(blocks: Sequence[str]) -> str:
    """PEP 8 spacing: two blank lines around a class, one between other blocks."""
    text = blocks[0]
    for before, block in itertools.pairwise(blocks):
        classy = before.startswith(("class ", "def ")) or block.startswith(("class ", "def "))
        text += ("\n\n\n" if classy else "\n\n") + block
    return text + "\n"


def creation_order(graph: ResourceGraph) -> list[Resource]:
    """The graph's order, except that what a resource needs (parent, dependencies, provider,
    referenced resources: ``ResourceGraph.needs``) always comes first.

    A stable topological sort (Kahn's algorithm, ties broken by graph position): for the usual
    graph, whose components sort first, it is exactly the graph's order.
    """
    position = {r.name: i for i, r in enumerate(graph.resources)}
    waiting_on = {r.name: set(graph.needs[r.name]) for r in graph.resources}
    dependents: dict[str, list[str]] = {r.name: [] for r in graph.resources}
    for name, needs in waiting_on.items():
        for need in needs:
            if need not in position:
                raise ProgramError(f"{name!r} refers to unknown resource {need!r}")
            dependents[need].append(name)
    ready = [position[name] for name, needs in waiting_on.items() if not needs]
    heapq.heapify(ready)
    order: list[Resource] = []
    while ready:
        resource = graph.resources[heapq.heappop(ready)]
        order.append(resource)
        for dependent in dependents[resource.name]:
            waiting_on[dependent].discard(resource.name)
            if not waiting_on[dependent]:
                heapq.heappush(ready, position[dependent])
    if len(order) != len(graph.resources):
        stuck = sorted(name for name, needs in waiting_on.items() if needs)
        raise ProgramError(f"resources depend on each other in a cycle: {stuck}")
    return order


def variable_names(order: Sequence[Resource]) -> dict[str, str]:
    """Logical name -> Python variable (``deployment_1``, ``deployment_2`` ...).

    Named from the type token and a per-kind counter in creation order, never from the spec:
    an identifier made of spec text could collide, shadow a builtin or smuggle a homoglyph.
    """
    counters: Counter[str] = Counter()
    variables: dict[str, str] = {}
    for resource in order:
        stem = variable_stem(resource.type)
        counters[stem] += 1
        variables[resource.name] = f"{stem}_{counters[stem]}"
    return variables


def sdk_modules(resources: Iterable[Resource]) -> tuple[str, ...]:
    """The modules the program imports: ``pulumi`` and the SDKs of the resources, sorted."""
    modules = {"pulumi"}
    modules.update(python_class(r.type).module for r in resources if not r.component)
    return tuple(sorted(modules))


def _component_classes(order: Sequence[Resource]) -> list[str]:
    classes: dict[str, str] = {}
    for resource in order:
        if not resource.component:
            continue
        kind = component_kind(resource.type)
        known = classes.setdefault(kind, resource.type)
        if known != resource.type:
            raise ProgramError(f"component tokens {known!r} and {resource.type!r} share a kind")
    return [
        _COMPONENT_CLASS.format(kind=kind, token=scalar(token)) for kind, token in classes.items()
    ]


def _references(order: Sequence[Resource], variables: Mapping[str, str]) -> Reference:
    """Prints a ``$ref`` marker as ``<variable>.<attribute>``, for outputs the class table lists."""
    types = {r.name: (r.type, r.component) for r in order}

    def expression(name: str, output: str) -> str:
        token, component = types[name]
        attribute = None if component else python_class(token).outputs.get(output)
        if attribute is None:
            raise ProgramError(
                f"a reference reads output {output!r} of {name!r}, which {token} lacks"
            )
        return f"{variables[name]}.{attribute}"

    return expression


def _statement(
    resource: Resource,
    variables: Mapping[str, str],
    refs: Reference,
    moved: list[str] | None = None,
) -> str:
    """``variable = Class(name, ...inputs..., opts=...)``."""
    callee, arguments = _arguments(resource, refs, moved)
    options = _options(resource, variables)
    if options:
        arguments.append(f"opts={options}")
    return f"{variables[resource.name]} = {call(callee, arguments, 0)}"


def _arguments(
    resource: Resource, refs: Reference, moved: list[str] | None = None
) -> tuple[str, list[str]]:
    """The callee and the arguments (``opts`` aside) of the statement of ``resource``.

    Unless its inputs refer to another resource (whose variable they print), they are a function
    of the resource alone: inside ``resource_texts.reusing`` (a build) they are asked of it by
    the resource's name, so that a build taking an earlier one's texts does not print them
    again. Their text: whether the inputs are read from the graph, then each argument, joined
    by NULs (:data:`_SEPARATOR`)."""
    if not resource_texts.active():
        return _printed(resource, refs, moved)
    kind = ARGUMENTS_READ if moved is not None else ARGUMENTS_PRINTED
    printed: list[tuple[str, list[str], bool]] = []  # when printed here: no text to read back
    compute = partial(_own_arguments, resource, kind, printed)
    try:
        text = resource_texts.text_of(kind, resource.name, compute)
    except _Refers:  # printed again with the references, and not recorded
        return _printed(resource, refs, moved)
    if printed:
        callee, arguments, read = printed[0]
    else:
        head, *arguments = text.split(_SEPARATOR)
        callee, read = _callee(resource), head == _READ
    if read and moved is not None:
        moved.append(resource.name)
    return callee, arguments


def _callee(resource: Resource) -> str:
    return component_kind(resource.type) if resource.component else python_class(resource.type).path


ARGUMENTS_READ = "pulumi-program-arguments-read"
ARGUMENTS_PRINTED = "pulumi-program-arguments-printed"
"""The kinds (``resource_texts``) of a resource's statement arguments (:func:`_arguments`), with
the graph's inputs read from ``resources.json`` or printed."""


_SEPARATOR = "\0"
"""Joins a statement's arguments in their text: never in a printed argument, whose literals
escape every control character (a text that held one would not be kept)."""
_READ, _PRINTED = "read", "printed"


class _Refers(Exception):
    """The inputs refer to another resource (the arguments depend on its variable's name), or
    the arguments cannot be kept as one text."""


def _refusing(name: str, output: str) -> str:
    raise _Refers(name, output)


def _own_arguments(
    resource: Resource, kind: str, printed: list[tuple[str, list[str], bool]]
) -> str:
    """The text of :func:`_arguments`, printed without references (:class:`_Refers`); what
    was printed is put in ``printed`` too."""
    moved: list[str] | None = [] if kind == ARGUMENTS_READ else None
    callee, arguments = _printed(resource, _refusing, moved)
    printed.append((callee, arguments, bool(moved)))
    text = _SEPARATOR.join([_READ if moved else _PRINTED, *arguments])
    if text.count(_SEPARATOR) != len(arguments):
        raise _Refers(resource.name)
    return text


def _printed(
    resource: Resource, refs: Reference, moved: list[str] | None = None
) -> tuple[str, list[str]]:
    """The callee and the arguments (``opts`` aside) of the statement of ``resource``."""
    if resource.component:
        callee = component_kind(resource.type)
        return callee, [
            scalar(resource.name),
            literal(dict(resource.inputs), len(INDENT), refs=refs),
        ]
    return _custom_arguments(resource, refs, moved)


def _custom_arguments(
    resource: Resource, refs: Reference, moved: list[str] | None = None
) -> tuple[str, list[str]]:
    """The class and arguments of a custom resource; with ``moved``, the inputs read from the
    graph are passed as ``**inputs_of(...)`` and the resource's name is appended to it."""
    cls = python_class(resource.type)
    readable = DATA_INPUTS if moved is not None and resource.type.startswith(DATA_TYPES) else ()
    arguments = [scalar(resource.name)]
    read: list[str] = []
    if cls.args is not None:
        printer = TypedPrinter(cls.module, resource.name, refs)
        return cls.path, arguments + printer.arguments(cls.args, resource.inputs, len(INDENT))
    if cls.custom_resource:
        arguments += [f"{keyword_of(k)}={scalar(v)}" for k, v in sorted(cls.implied.items())]
    for key, value in sorted(resource.inputs.items(), key=lambda item: keyword_of(item[0])):
        if key in cls.implied:
            if not isinstance(value, str) or value != cls.implied[key]:
                raise ProgramError(
                    f"{resource.name!r}: input {key!r} must be {cls.implied[key]!r} for "
                    f"{resource.type}, not {value!r}"
                )
            continue
        if key not in cls.inputs:
            raise ProgramError(
                f"{resource.name!r}: {cls.path} takes no input {key!r} (it takes {list(cls.inputs)})"
            )
        keyword = keyword_of(key)
        if key in readable and not has_marker(value):
            read.append(key)
            continue
        prefix = len(INDENT) + len(keyword) + 1
        arguments.append(f"{keyword}={literal(value, len(INDENT), prefix, refs)}")
    if read:
        assert moved is not None
        moved.append(resource.name)
        everything = read == [key for key in DATA_INPUTS if key in resource.inputs]
        keys = [] if everything else [scalar(key) for key in read]
        arguments.append(f"**{DATA_FUNCTION}({', '.join([scalar(resource.name), *keys])})")
    return cls.path, arguments


def _options(resource: Resource, variables: Mapping[str, str]) -> str:
    """``pulumi.ResourceOptions(...)`` with the non-default options, or "" when none are set;
    ``child(parent, *depends_on)`` (:data:`CHILD_FUNCTION`) when those are all it sets."""
    needed = sorted(variables[name] for name in resource.depends_on)
    indent, prefix = len(INDENT), len(INDENT) + len("opts=")
    if _is_child(resource):
        assert resource.parent is not None
        return call(CHILD, [variables[resource.parent], *needed], indent, prefix)
    fields: list[str] = []
    if resource.parent is not None:
        fields.append(f"parent={variables[resource.parent]}")
    if needed:
        fields.append(f"depends_on=[{', '.join(needed)}]")
    if resource.options.provider is not None:
        fields.append(f"provider={variables[resource.options.provider]}")
    fields += _option_fields(resource.options)
    if not fields:
        return ""
    return call("pulumi.ResourceOptions", fields, indent, prefix)


def _is_child(resource: Resource) -> bool:
    """Whether the options of ``resource`` are a parent and maybe dependencies, nothing else."""
    return resource.parent is not None and resource.options == ResourceOptions()


def _option_fields(options: ResourceOptions) -> list[str]:
    depth = len(INDENT) * 2
    fields = [
        f"{name}=True"
        for name in ("protect", "retain_on_delete", "delete_before_replace")
        if getattr(options, name)
    ]
    for name in ("ignore_changes", "additional_secret_outputs"):
        values: tuple[str, ...] = getattr(options, name)
        if values:
            fields.append(f"{name}={literal(list(values), depth, depth + len(name) + 1)}")
    return fields


def _exports(order: Sequence[Resource], variables: Mapping[str, str]) -> list[str]:
    """``pulumi.export`` of the outputs listed in ``EXPORTS`` (namespace, service names)."""
    lines: list[str] = []
    for token, (output, single) in sorted(EXPORTS.items(), key=lambda item: item[1][0]):
        found = sorted((r for r in order if r.type == token), key=lambda r: r.name)
        if not found:
            continue
        if single and len(found) == 1:
            value = f"{variables[found[0].name]}.metadata.name"
        else:
            value = _mapping_expression(
                [(scalar(r.name), f"{variables[r.name]}.metadata.name") for r in found]
            )
        lines.append(call("pulumi.export", [scalar(output), value], 0))
    return lines


def _mapping_expression(entries: Sequence[tuple[str, str]]) -> str:
    """A dict display of printed keys and expressions, one entry per line when long."""
    flat = "{" + ", ".join(f"{key}: {value}" for key, value in entries) + "}"
    if len(INDENT) + len(flat) <= LINE_WIDTH:
        return flat
    pad = " " * (len(INDENT) * 2)
    lines = [f"{pad}{key}: {value}," for key, value in entries]
    return "\n".join(["{", *lines, INDENT + "}"])
