"""Run a printed Pulumi program under Pulumi's mock runtime and record what it registers.

Pulumi's official unit-test mechanism (``pulumi.runtime.set_mocks``) replaces the engine with
an in-process mock, so the program runs exactly as under ``pulumi up`` up to the point where the
engine would act, without the Pulumi CLI, a cluster or credentials. This script is run in a
subprocess per program, because the Pulumi runtime keeps global state (settings, the root stack,
config) that must not leak from one program into the next:

    python tests/pulumi_mock.py PROGRAM_DIR --project NAME --stack NAME --out FILE [--secret KEY]

It writes one JSON record per registered resource (the root stack excepted), sorted by name::

    {"type": ..., "name": ..., "custom": bool, "parent": <logical name or null>,
     "dependsOn": [logical names], "options": {..., "provider": <logical name or null>},
     "inputs": {...}, "secretPaths": [[...]]}

The mock gives every resource deterministic outputs (:func:`mock_outputs`): each output the class
table lists echoes the input of that name, or else is ``arn:mock:<type>:<name>`` for ``arn`` and
``<name>-<output>`` for any other; the id is ``<name>-id``. So a program that reads another
resource's output (a ``$ref`` marker) sends a value the comparison can predict.

What the mock hands over is what the SDK sent to the engine, after the SDK's own changes; the
comparison with the graph (``tests/pulumi_roundtrip.py``) undoes none of them silently:
- secret values arrive wrapped in Pulumi's secret signature; they are unwrapped here and the
  path of every wrapper is listed in ``secretPaths``;
- each ``--secret KEY`` is set as secret config ``<project>:KEY`` with the value ``secret:KEY``;
- ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` are unset: pulumi_aws's provider would otherwise send
  the build machine's region as an input the graph never had.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import threading
from pathlib import Path
from typing import Any

SECRET_VALUE_PREFIX = "secret:"
AMBIENT_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def mock_id(name: str) -> str:
    return f"{name}-id"


def mock_output(token: str, name: str, inputs: dict[str, Any], output: str) -> Any:
    """The value the mock gives output ``output`` of resource ``name`` (see the module doc)."""
    if output == "id":
        return mock_id(name)
    if output in inputs:
        return inputs[output]
    return f"arn:mock:{token}:{name}" if output == "arn" else f"{name}-{output}"


def mock_outputs(token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Every output of the class table's row for ``token`` (components and unknown rows: none)."""
    from mlplane.targets.pulumi_classes import CLASSES

    row = CLASSES.get(token)
    outputs = {} if row is None else {o: mock_output(token, name, inputs, o) for o in row.outputs}
    outputs.pop("id", None)  # the id travels beside the outputs, not among them
    return {**inputs, **outputs}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("program", type=Path)
    parser.add_argument("--project", required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--secret", action="append", default=[])
    return parser.parse_args(argv)


def _unwrap(value: Any, path: list[Any], secrets: list[list[Any]]) -> Any:
    """``value`` without Pulumi's secret wrappers; their paths are appended to ``secrets``."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            secrets.append(path)
            return _unwrap(value.get("value"), path, secrets)
        return {k: _unwrap(v, [*path, k], secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, [*path, i], secrets) for i, v in enumerate(value)]
    return value


def run(program: Path, project: str, stack: str, secrets: list[str]) -> list[dict[str, Any]]:
    """Run ``program/__main__.py`` under mocks; the registrations it made, sorted by name."""
    import pulumi
    from pulumi.runtime import mocks, rpc

    records: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    stacks: set[str] = set()
    lock = threading.Lock()  # the SDK registers resources from a thread pool

    class StateMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            outputs = mock_outputs(args.typ, args.name, dict(args.inputs))
            return (mock_id(args.name) if args.custom else None), outputs

        def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
            raise AssertionError(f"the program called a provider function: {args.token}")

    class RecordingMonitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            urn = self.make_urn(request.parent, request.type, request.name)
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            with lock:
                if request.type == "pulumi:pulumi:Stack":
                    stacks.add(urn)
                    return response
                names[urn] = request.name
                record = _request_record(request, names, stacks)
                found: list[list[Any]] = []
                record["inputs"] = _unwrap(rpc.deserialize_properties(request.object), [], found)
                record["secretPaths"] = found
                records.append(record)
            return response

    for variable in AMBIENT_VARIABLES:
        os.environ.pop(variable, None)
    config = {f"{project}:{key}": SECRET_VALUE_PREFIX + key for key in secrets}
    pulumi.runtime.set_all_config(config, secret_keys=sorted(config))
    state = StateMocks()
    pulumi.runtime.set_mocks(
        state, project=project, stack=stack, preview=False, monitor=RecordingMonitor(state)
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator] # awaits every registration
    def run_program() -> None:
        runpy.run_path(str(program / "__main__.py"), run_name="__main__")

    run_program()
    return sorted(records, key=lambda record: str(record["name"]))


def _request_record(request: Any, names: dict[str, str], stacks: set[str]) -> dict[str, Any]:
    top_level = not request.parent or request.parent in stacks
    return {
        "type": request.type,
        "name": request.name,
        "custom": bool(request.custom),
        "parent": None if top_level else names[request.parent],
        "dependsOn": sorted(names[urn] for urn in request.dependencies),
        "options": {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "ignoreChanges": list(request.ignoreChanges),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "provider": _provider_name(request.provider, names),
        },
    }


def _provider_name(reference: str, names: dict[str, str]) -> str | None:
    """The logical name of the provider in a ``<urn>::<id>`` reference; None for the default."""
    if not reference:
        return None
    urn = reference.rsplit("::", 1)[0]
    return names.get(urn, f"<unregistered {urn}>")


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    records = run(arguments.program, arguments.project, arguments.stack, arguments.secret)
    arguments.out.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
