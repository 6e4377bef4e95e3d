"""Where an environment's Kubeflow Pipelines API is (``environments.<env>.kubernetes.kubeflow``):
``mlplane apply`` registers the recurring runs of ``training.engine: kubeflow`` there."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from mlplane.schema import formats
from mlplane.schema.base import Spec
from mlplane.schema.types import fail, service_url_parts

KFP_ENDPOINT_LIMIT = 512
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_endpoint(value: str) -> str:
    parts = service_url_parts(
        value,
        "the Kubeflow Pipelines endpoint names its host, port and path, and the token comes "
        "from MLPLANE_KUBEFLOW_TOKEN",
    )
    if (
        parts is None
        or not parts.hostname
        or parts.query
        or parts.fragment
        or len(value) > KFP_ENDPOINT_LIMIT
        or any(ch.isspace() or ord(ch) < 32 for ch in value)
        or parts.scheme not in ("http", "https")
    ):
        raise fail(
            "invalid-uri",
            f"invalid Kubeflow Pipelines endpoint {formats.quote(value)}: write "
            "https://HOST[:PORT][/PATH], such as https://kubeflow.example.com/pipeline",
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise fail(
            "invalid-uri",
            f"the Kubeflow Pipelines endpoint {formats.quote(value)} is plain http on a host "
            "other than this machine: the token would cross the network in clear; use https "
            "(http is accepted only for a loopback address, as kubectl port-forward gives)",
        )
    return value


KfpEndpoint = Annotated[
    str,
    AfterValidator(_check_endpoint),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": KFP_ENDPOINT_LIMIT,
            "pattern": r"^https?://[^/?#@\s]+(/[^?#\s]*)?$",
            "description": "The Kubeflow Pipelines API: https://HOST[:PORT][/PATH] "
            "(http only on a loopback address).",
        }
    ),
]


class KubernetesKubeflow(Spec):
    """The Kubeflow Pipelines API of the environment's cluster."""

    endpoint: KfpEndpoint
    """The base URL of the KFP REST API (``/apis/v2beta1`` is below it), as kfp.Client's
    host: https://HOST/pipeline behind Kubeflow's gateway, or http://127.0.0.1:8888 through
    kubectl port-forward to the ml-pipeline Service. mlplane apply registers the recurring
    runs of training.engine: kubeflow there, with the bearer token in the environment
    variable MLPLANE_KUBEFLOW_TOKEN when it is set."""
