"""The Pulumi project around the printed program: ``Pulumi.yaml``, the stack file, pins.

``mlplane build`` writes these next to ``__main__.py`` under ``pulumi/`` so that the output is a
complete project: ``cd build/dev/pulumi && pulumi stack select dev && pulumi up``.

- ``Pulumi.yaml``: the project (named after the system), Python runtime with a project-local
  ``venv`` (Pulumi creates it and installs ``requirements.txt`` on first use), the state backend
  when the environment names one that does not live inside the output (see
  ``_RELATIVE_FILE_BACKEND``).
- ``Pulumi.<env>.yaml``: the stack's plain config, such as ``kubernetes:context``. Secret config
  is never written: the program reads each secret with ``config.require_secret``, which stops
  ``pulumi up`` with the missing key's name until someone runs ``pulumi config set --secret KEY``
  (or an Automation API caller passes it). A rebuild rewrites this file, so set secrets from a
  secret manager in the deploying job rather than by hand.
- ``requirements.txt``: the exact SDK versions mlplane is tested with (:data:`SDK_PINS`; a test
  asserts they equal the versions installed by the ``test`` extra), only of the SDKs the program
  imports (``pulumi-aws`` when the graph has AWS tokens), so ``pulumi up`` runs the
  program against the SDK that the mock round-trip test ran it against. Not read from the build
  machine: the output must not depend on what happens to be installed there.
- ``.gitignore``: keeps Pulumi's ``venv/`` out of a committed build output.

The program reads the ``metadata`` and ``spec`` of each Kubernetes object from the build's
resource graph, ``../resources.json`` (``DATA_INPUTS`` in ``targets/pulumi_program.py``), rather
than holding them as literals, so that it compiles quickly and writes no second copy of them:
the project is complete within the build's output, which ``mlplane build`` writes, checks and
replaces as one tree.

All YAML is built as data and dumped once by the project's YAML writer
(``compiler/core/yamltext.py``: ASCII, sorted keys here, read back before it is returned); spec
text only ever appears as a YAML scalar, quoted by the writer, never in a comment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mlplane.compiler.core import yamltext
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.ir import System
from mlplane.compiler.core.provenance import header_line
from mlplane.schema.formats import PORTABLE_NAME
from mlplane.targets.pulumi_literals import ProgramError
from mlplane.targets.pulumi_program import print_program, sdk_modules

PROJECT_DIR = "pulumi"
VIRTUALENV = "venv"
DESCRIPTION_LIMIT = 200

SDK_PINS: Mapping[str, str] = MappingProxyType(
    {
        "pulumi": "3.260.0",
        "pulumi-aws": "7.51.1",
        "pulumi-kubernetes": "4.25.0",
    }
)
"""Distribution -> the exact version mlplane's tests ran the printed programs with."""

SDK_DISTRIBUTIONS: Mapping[str, str] = MappingProxyType(
    {"pulumi": "pulumi", "pulumi_kubernetes": "pulumi-kubernetes", "pulumi_aws": "pulumi-aws"}
)
"""Import name -> distribution, for the modules a printed program may import."""

PROVIDER_CONFIG: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "pulumi_kubernetes": (("kubernetes:context", "kube_context"),),
        "pulumi_aws": (("aws:region", "aws_region"),),
    }
)
"""SDK module -> (stack config key, attribute of the environment's target settings) pairs it
needs (``targets/kubernetes/settings.py``, ``targets/aws/settings.py``)."""

_RELATIVE_FILE_BACKEND = re.compile(r"file://(?![/~])")
"""``file://.mlplane/state``: relative to where ``pulumi`` runs, i.e. inside the build output,
which a rebuild replaces (the build refuses to delete files it did not write, so the next build
would stop). Such a backend is not written: log in with ``pulumi login file://<directory>``
outside the output instead. ``file:///abs``, ``file://~/...`` and object stores are written."""


class PulumiEmitter:
    """The Pulumi project of any graph, as files below ``pulumi/`` (pure, no I/O)."""

    name = "pulumi"

    def emit(self, system: System, graph: ResourceGraph) -> Mapping[str, str]:
        stack = graph.environment
        if not PORTABLE_NAME.fullmatch(stack):
            raise ProgramError(f"environment {stack!r} is not a valid Pulumi stack name")
        modules = sdk_modules(graph)
        return {
            f"{PROJECT_DIR}/__main__.py": print_program(graph, system, read_graph=True),
            f"{PROJECT_DIR}/Pulumi.yaml": project_file(system),
            f"{PROJECT_DIR}/Pulumi.{stack}.yaml": stack_file(system, modules),
            f"{PROJECT_DIR}/requirements.txt": requirements(system, modules),
            f"{PROJECT_DIR}/.gitignore": gitignore(system),
        }


EMITTER = PulumiEmitter()
"""The entry point of group ``mlplane.emitters`` (see ``pyproject.toml``)."""


def project_file(system: System) -> str:
    """``Pulumi.yaml``."""
    project: dict[str, Any] = {
        "name": system.name,
        "description": _description(system),
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": VIRTUALENV}},
    }
    backend = system.environment.state
    if backend and not _RELATIVE_FILE_BACKEND.match(backend):
        project["backend"] = {"url": backend}
    return _yaml(system, project)


def stack_file(system: System, modules: tuple[str, ...]) -> str:
    """``Pulumi.<env>.yaml``: plain provider config from the environment; never a secret."""
    config: dict[str, str] = {}
    for module in modules:
        for key, attribute in PROVIDER_CONFIG.get(module, ()):
            value = getattr(system.environment.target_settings, attribute, None)
            if value:
                config[key] = value
    return _yaml(system, {"config": config})


def requirements(system: System, modules: tuple[str, ...]) -> str:
    """``requirements.txt`` with the tested SDK pins of the modules the program imports."""
    lines = [f"# {header_line(system)}"]
    for module in modules:
        distribution = SDK_DISTRIBUTIONS[module]
        version = SDK_PINS.get(distribution)
        if version is None:
            raise ProgramError(f"no tested version of {distribution} is pinned in SDK_PINS")
        lines.append(f"{distribution}=={version}")
    return "\n".join(lines) + "\n"


def gitignore(system: System) -> str:
    """``.gitignore``: what ``pulumi up`` creates inside the project directory."""
    return f"# {header_line(system)}\n/{VIRTUALENV}/\n__pycache__/\n"


def _description(system: System) -> str:
    text = " ".join((system.description or "").split())
    if len(text) > DESCRIPTION_LIMIT:
        text = text[: DESCRIPTION_LIMIT - 3].rstrip() + "..."
    return text or f"The mlplane system {system.name}"


def _yaml(system: System, data: Mapping[str, Any]) -> str:
    return yamltext.dump(_sorted(data), [header_line(system)], check=True)


def _sorted(data: Any) -> Any:
    """``data`` with every mapping's keys in sorted order (the files are small and read back)."""
    if isinstance(data, Mapping):
        return {key: _sorted(data[key]) for key in sorted(data)}
    return data
