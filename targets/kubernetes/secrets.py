"""Secrets: every reference becomes the object that fetches it, never a value.

- ``vault://``, ``aws-sm://``, ``gcp-sm://``, ``azure-kv://``: an external-secrets.io
  ``ExternalSecret`` read through a ``ClusterSecretStore`` whose name this module documents
  (``store_name``); the operator writes a Secret of the same name.
- ``k8s://NAMESPACE/NAME#KEY``: the existing Secret is referenced, nothing is created; it must
  live in the environment's namespace, because a pod can mount Secrets of its own namespace only.
- ``env:NAME``: a Secret whose value is the Pulumi secret config key named after the spec's
  secret (``pulumi config set --secret <name>``), as a ``{"$secret": key}`` marker; the SDK
  marks a Secret's ``data`` and ``stringData`` outputs secret by itself.

Pods mount each secret read-only as the file ``/var/run/secrets/mlplane/<secret>/value`` and get
its path in ``<SECRET>_FILE``: files rather than environment variables, because values in the
environment leak into crash dumps, ``/proc`` and child processes (checkov CKV_K8S_35).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.graph import secret_ref
from mlplane.targets.kubernetes import codes, names
from mlplane.targets.kubernetes.context import Lowering
from mlplane.targets.kubernetes.pods import PodInputs

EXTERNAL_SECRETS_API = "external-secrets.io/v1"
"""v1 since external-secrets 0.16; v1beta1 is no longer served."""
DATA_KEY = "value"
MOUNT_ROOT = "/var/run/secrets/mlplane"
REFRESH_INTERVAL = "1h"
SECRET_FILE_MODE = 0o440


@dataclass(frozen=True, slots=True)
class RemoteRef:
    store: str
    key: str
    property: str | None


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where a pod finds one spec secret: a Secret name and the key inside it."""

    secret_name: str
    key: str
    resource: str | None
    """The logical name of the resource that creates the Secret (None for k8s:// references)."""


def store_name(secret: ir.Secret) -> RemoteRef:
    """The ClusterSecretStore and remote key of an external reference.

    Vault and AWS Secrets Manager use one store each (``mlplane-vault``, ``mlplane-aws-sm``);
    a GCP store is bound to one project and an Azure store to one vault, so their names carry
    it (``mlplane-gcp-sm-<project>``, ``mlplane-azure-kv-<vault>``). ``#KEY`` selects a
    property of a structured secret.
    """
    body = secret.ref.split("://", 1)[1]
    if secret.scheme in ("gcp-sm", "azure-kv"):
        owner, name = body.split("/", 1)
        return RemoteRef(f"mlplane-{secret.scheme}-{owner.lower()}", name, None)
    key, _, prop = body.partition("#")
    return RemoteRef(f"mlplane-{secret.scheme}", key, prop or None)


def used_secrets(system: ir.System) -> list[ir.Secret]:
    """Secrets some model reads, in name order (the receivers' secrets: ``alerting.py``)."""
    wanted = sorted({name for model in system.models.values() for name in model.secrets})
    return [system.security.secrets[name] for name in wanted if name in system.security.secrets]


def lower_secrets(lowering: Lowering, parent: str) -> dict[str, SecretSource]:
    sources: dict[str, SecretSource] = {}
    for secret in used_secrets(lowering.system):
        source = _lower_one(lowering, secret, parent)
        if source is not None:
            sources[secret.name] = source
    return sources


def _lower_one(lowering: Lowering, secret: ir.Secret, parent: str) -> SecretSource | None:
    if secret.scheme == "k8s":
        return _existing(lowering, secret)
    if secret.scheme == "env":
        return _from_config(lowering, secret, parent)
    return _external(lowering, secret, parent)


def check_namespace(lowering: Lowering, secret: ir.Secret) -> bool:
    """Whether a ``k8s://`` secret a model reads is in the models' namespace (else refused at
    its definition; ``checks.check_spec`` reports it before lowering)."""
    namespace = secret.ref.removeprefix("k8s://").partition("/")[0]
    if namespace == lowering.namespace:
        return True
    lowering.diagnostics.error(
        codes.SECRET_NAMESPACE,
        f"secret {secret.name!r} refers to a Secret in namespace {namespace!r}, but the "
        f"models run in {lowering.namespace!r}; pods can only mount Secrets of their own "
        "namespace",
        secret.origin.location,
        secret.origin.path,
        hint=f"copy the Secret into {lowering.namespace!r} and refer to it there",
    )
    return False


def _existing(lowering: Lowering, secret: ir.Secret) -> SecretSource | None:
    rest = secret.ref.removeprefix("k8s://").partition("/")[2]
    name, _, key = rest.partition("#")
    if not check_namespace(lowering, secret):
        return None
    lowering.claim("Secret", name, secret.origin)
    return SecretSource(name, key, None)


def _metadata(lowering: Lowering, name: str, namespace: str | None) -> dict[str, Any]:
    metadata = lowering.metadata(name, names.system_labels(lowering.system))
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _from_config(
    lowering: Lowering,
    secret: ir.Secret,
    parent: str,
    namespace: str | None = None,
    prefix: str = "",
) -> SecretSource:
    logical = names.logical(secret.name, f"{prefix}secret")
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(lowering, secret.name, namespace),
        "type": "Opaque",
        "stringData": {DATA_KEY: secret_ref(secret.name)},
    }
    lowering.add(logical, body, secret.origin, parent, claim=namespace is None)
    return SecretSource(secret.name, DATA_KEY, logical)


def lower_in(
    lowering: Lowering, secret: ir.Secret, parent: str, namespace: str, prefix: str
) -> SecretSource:
    """The object that fetches ``secret`` (not a ``k8s://`` reference) into the Secret
    ``secret.name`` of ``namespace`` (another namespace than the environment's: the monitoring
    namespace), with logical names starting ``<secret>-<prefix>``."""
    if secret.scheme == "env":
        return _from_config(lowering, secret, parent, namespace, prefix)
    return _external(lowering, secret, parent, namespace, prefix)


def _external(
    lowering: Lowering,
    secret: ir.Secret,
    parent: str,
    namespace: str | None = None,
    prefix: str = "",
) -> SecretSource:
    remote = store_name(secret)
    remote_ref: dict[str, Any] = {"key": remote.key}
    if remote.property is not None:
        remote_ref["property"] = remote.property
    body = {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": _metadata(lowering, secret.name, namespace),
        "spec": {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": remote.store},
            "target": {"name": secret.name, "creationPolicy": "Owner"},
            "data": [{"secretKey": DATA_KEY, "remoteRef": remote_ref}],
        },
    }
    logical = names.logical(secret.name, f"{prefix}externalsecret")
    lowering.add(logical, body, secret.origin, parent, claim=namespace is None)
    if namespace is None:
        lowering.claim("Secret", secret.name, secret.origin)
    return SecretSource(secret.name, DATA_KEY, logical)


def mount_secrets(
    model: ir.Model, sources: dict[str, SecretSource], inputs: PodInputs
) -> tuple[str, ...]:
    """Mount the model's secrets into ``inputs``; returns the resources the pod waits for."""
    needs: list[str] = []
    for name in model.secrets:
        source = sources.get(name)
        if source is not None:
            _mount_one(name, source, inputs)
            needs += [source.resource] if source.resource is not None else []
    return tuple(needs)


def _mount_one(name: str, source: SecretSource, inputs: PodInputs) -> None:
    """A read-only file ``<MOUNT_ROOT>/<name>/value`` and its path in an environment variable."""
    volume = f"secret-{name}"
    directory = f"{MOUNT_ROOT}/{name}"
    inputs.volumes.append(
        {
            "name": volume,
            "secret": {
                "secretName": source.secret_name,
                "defaultMode": SECRET_FILE_MODE,
                "items": [{"key": source.key, "path": DATA_KEY}],
            },
        }
    )
    inputs.mounts.append({"name": volume, "mountPath": directory, "readOnly": True})
    variable = names.env_var("mlplane-secret", name, "file")
    inputs.env.append({"name": variable, "value": f"{directory}/{DATA_KEY}"})
