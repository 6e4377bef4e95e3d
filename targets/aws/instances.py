"""vCPUs of a SageMaker instance type, for CPU target tracking.

SageMaker publishes an endpoint instance's ``CPUUtilization`` (namespace
``/aws/sagemaker/Endpoints``) as the *sum* over its vCPUs, each 0-100 %: a 4-vCPU instance
reports 0-400 %. The spec's ``autoscaling: {metric: cpu, target: T}`` means T % of the
instance's CPU capacity (as on Kubernetes, where it is T % of the requested CPU), so the
target-tracking value is ``T × vCPUs``.

The vCPU count follows EC2's size names, which SageMaker's ``ml.`` types reuse: ``large`` 2,
``xlarge`` 4, ``<n>xlarge`` 4n (``ml.c5.9xlarge`` 36, ``ml.m5.24xlarge`` 96), and ``medium`` 2
for the burstable ``t2``/``t3`` families. Any other size (``medium`` of another family,
``small``, ``metal``) is not guessed: CPU autoscaling on it is refused (``aws-autoscaling-metric``).
"""

from __future__ import annotations

import re

_XLARGE = re.compile(r"^([1-9][0-9]*)?xlarge$")
_BURSTABLE = frozenset({"t2", "t3"})


def vcpus(instance_type: str | None) -> int | None:
    """The vCPUs of ``ml.<family>.<size>``, or None when the size does not say."""
    parts = (instance_type or "").split(".")
    if len(parts) != 3 or parts[0] != "ml":
        return None
    family, size = parts[1], parts[2]
    if size == "large":
        return 2
    if size == "medium" and family in _BURSTABLE:
        return 2
    match = _XLARGE.match(size)
    if match is None:
        return None
    return 4 * int(match.group(1) or 1)
