"""What a planned change of a model's serving workload does to its pods (the plan's
``Target.redeploy``, see ``compiler/plan/redeploy.py``).

A serving workload (Deployment, StatefulSet, DaemonSet, Argo Rollout) whose pod template changes
(the config hash of the ConfigMap the pods read, an image, the environment, a mounted Secret's
or ConfigMap's name) restarts its pods, by the model's rollout; a replaced one is deleted and
created again, every pod at once.
"""

from __future__ import annotations

from mlplane.compiler.core.plugins import ServingChange
from mlplane.targets.kubernetes.serving import CONFIG_HASH_ANNOTATION

WORKLOADS = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:argoproj.io/v1alpha1:Rollout",
    }
)
_TEMPLATE = ("spec", "template")
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"


def redeploy(change: ServingChange) -> str | None:
    if change.type not in WORKLOADS:
        return None
    if change.action == "replace":
        return "pods replaced: the workload is deleted and created again, every pod at once"
    reasons = [
        _template_reason(path[len(_TEMPLATE) :])
        for path in change.paths
        if path[: len(_TEMPLATE)] == _TEMPLATE
    ]
    if not reasons:
        return None
    return f"pods restart ({', '.join(dict.fromkeys(reasons))}; {_rollout(change)})"


def _rollout(change: ServingChange) -> str:
    """The model's rollout, or for a DaemonSet (the edge profile, ``edge.py``) its real one:
    a percentage of the edge nodes, one per site, at a time."""
    if change.type != DAEMON_SET:
        return change.rollout
    spec = change.inputs.get("spec")
    strategy = spec.get("updateStrategy") if isinstance(spec, dict) else None
    rolling = strategy.get("rollingUpdate") if isinstance(strategy, dict) else None
    at_once = rolling.get("maxUnavailable") if isinstance(rolling, dict) else None
    if not isinstance(at_once, str) or not at_once.endswith("%"):
        return change.rollout
    return f"{at_once.removesuffix('%')} % of the sites at a time"


def _template_reason(path: tuple[str | int, ...]) -> str:
    """What a pod-template path is, in a reviewer's words."""
    if path[:3] == ("metadata", "annotations", CONFIG_HASH_ANNOTATION):
        return "config hash"
    leaf = [p for p in path if isinstance(p, str)]
    if len(path) >= 4 and path[1] in ("containers", "initContainers"):
        field = path[3]
        if field == "image":
            return "image"
        if field in ("env", "envFrom"):
            return "env"
    if "secret" in leaf or "secretName" in leaf:
        return "mounted secret"
    if "configMap" in leaf:
        return "mounted config"
    return "pod template"
