"""Names and labels of the Kubernetes target, derived only from spec names.

Logical names (the graph's, hence Pulumi's) and Kubernetes object names are pure functions of
spec names, so they never change between builds and a rename in the spec is the only thing that
renames a resource. Every generated name is checked against the Kubernetes limit of its kind in
``checks.py``; the suffixes here are chosen so that the schema's 40-character names fit.
"""

from __future__ import annotations

import re

from mlplane.compiler.core import ir
from mlplane.schema import formats

SYSTEM_COMPONENT_TYPE = "mlplane:index:System"
MODEL_COMPONENT_TYPE = "mlplane:index:Model"

MANAGED_BY = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
VERSION_LABEL = "app.kubernetes.io/version"
SYSTEM_LABEL = "mlplane.dev/system"
ENVIRONMENT_LABEL = "mlplane.dev/environment"
SLA_LABEL = "mlplane.dev/sla"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace (immutable): the safe way to select one by name."""

SERVING = "serving"
TRAINING = "training"
BATCH = "batch"
PREVIEW = "preview"

CONTAINER_PORT_NAME = "http"

_ENV_UNSAFE = re.compile(r"[^A-Z0-9_]")


def system_component(system: ir.System) -> str:
    return f"{system.name}-system"


def model_component(model: str) -> str:
    return f"{model}-model"


def logical(owner: str, suffix: str) -> str:
    """A logical name: the owner's spec name, then what the resource is (``scorer-deployment``)."""
    return f"{owner}-{suffix}"


def training(model: str) -> str:
    return f"{model}-training"


def preview_service(model: str) -> str:
    return f"{model}-preview"


def analysis_template(model: str) -> str:
    return f"{model}-slo"


def data_sources_config(model: str) -> str:
    return f"{model}-data-sources"


def tls_secret(model: str) -> str:
    return f"{model}-tls"


def env_var(*parts: str) -> str:
    """An environment variable name from spec names (DNS labels): upper case, ``-`` to ``_``."""
    return _ENV_UNSAFE.sub("_", "_".join(parts).upper())


def system_labels(system: ir.System) -> dict[str, str]:
    """The user's labels, then the labels mlplane owns (which win, so selectors stay ours)."""
    return {
        **system.labels,
        MANAGED_BY: "mlplane",
        SYSTEM_LABEL: system.name,
        ENVIRONMENT_LABEL: system.environment.name,
    }


def selector(model: str, component: str) -> dict[str, str]:
    """The immutable pod selector of one workload of a model."""
    return {NAME_LABEL: model, COMPONENT_LABEL: component}


def workload_labels(system: ir.System, model: ir.Model, component: str) -> dict[str, str]:
    labels = {**system_labels(system), **selector(model.name, component)}
    if formats.LABEL_VALUE_RE.match(model.version) and len(model.version) <= 63:
        labels[VERSION_LABEL] = model.version
    return labels
