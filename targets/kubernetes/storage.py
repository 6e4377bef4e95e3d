"""Scratch space and shared memory of a pod, sized to its workload.

The root filesystem of every pod is read-only (``pods.py``), so a workload writes only to:

* ``/tmp``: an ``emptyDir`` on the node's disk (``resources.scratch``; by default a training
  job's memory, at least 1 GiB, and 1 GiB for a server). The container requests and limits that
  much ``ephemeral-storage`` plus :data:`LOG_ROOM_BYTES` for its logs, so the scheduler places
  the pod where the disk has room and the kubelet evicts it only past what it asked for.
* ``/dev/shm``: an ``emptyDir`` with ``medium: Memory`` (a tmpfs), given to GPU pods and Triton
  servers by default and to any pod whose spec sets ``resources.shm``. Without it the container
  runtime mounts a 64 MiB ``/dev/shm``, which breaks PyTorch data loader workers (they pass
  batches through it), NCCL between the GPUs of one pod, and Triton's Python backend (whose
  documentation runs the server with ``--shm-size=1g``). Pages written there are charged to the
  pod's memory limit (a memory-backed ``emptyDir`` holds at most the smaller of its
  ``sizeLimit`` and the containers' memory limits), so its default is half the memory, the
  share Linux gives a tmpfs, and a ``resources.shm`` that leaves no memory to the process is
  refused at its line (``kubernetes-shm-exceeds-memory``).

Helpers take the workload's :class:`~mlplane.compiler.core.ir.Resources` and the memory the pod
really gets (the spec's or the target's default), so every pod-building module (serving,
training, scheduled jobs) sizes its storage the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Related, SpecPath
from mlplane.schema import formats
from mlplane.targets.kubernetes import codes, pods, servers
from mlplane.targets.kubernetes.context import Lowering

MIB = 2**20
GIB = 2**30
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"  # noqa: S108 (a mount point in the pod, not a temporary file)
SHM_SHARE = 2
"""The default ``/dev/shm`` holds 1/SHM_SHARE of the pod's memory."""
MIN_TRAINING_SCRATCH_BYTES = GIB
"""A training job's default scratch is its memory, never less than this."""
SERVING_SCRATCH_BYTES = GIB
LOG_ROOM_BYTES = GIB
"""Ephemeral storage a container asks beyond its scratch: its logs."""
SHM_RUNTIMES = frozenset({servers.TRITON.runtime})
"""Servers that exchange tensors through ``/dev/shm`` even without a GPU."""


@dataclass(frozen=True, slots=True)
class Storage:
    """What one pod may write: ``scratch`` bytes on disk, ``shm`` bytes of memory-backed
    ``/dev/shm`` (None: the container runtime's own 64 MiB)."""

    scratch: int
    shm: int | None


def quantity(size: int) -> str:
    """Bytes as a quantity: whole GiB when exact, else MiB rounded up."""
    if size % GIB == 0:
        return f"{size // GIB}Gi"
    return f"{-(-size // MIB)}Mi"


def _rounded(size: int) -> int:
    """The bytes :func:`quantity` writes for ``size``."""
    return -(-size // MIB) * MIB


def memory_of(resources: ir.Resources, defaults: pods.Quantities) -> int:
    """The memory limit the pod gets: the spec's, or the target's default."""
    if resources.memory_bytes is not None:
        return resources.memory_bytes
    size = formats.parse_memory(defaults.memory)
    assert size is not None, defaults.memory
    return size


def default_shm(memory: int) -> int:
    return memory // SHM_SHARE


def job_storage(resources: ir.Resources, memory: int) -> Storage:
    """A batch job's storage (training, scheduled jobs): scratch is its memory, at least
    1 GiB; ``/dev/shm`` for GPU jobs or when the spec asks."""
    scratch = resources.scratch_bytes or max(memory, MIN_TRAINING_SCRATCH_BYTES)
    shm = resources.shm_bytes
    if shm is None and resources.gpu > 0:
        shm = default_shm(memory)
    return Storage(scratch, shm)


def serving_storage(model: ir.Model, memory: int) -> Storage:
    """A model server's storage: 1 GiB of scratch; ``/dev/shm`` for GPU servers and the
    runtimes in :data:`SHM_RUNTIMES`, or when the spec asks."""
    resources = model.serving.resources
    shm = resources.shm_bytes
    if shm is None and (resources.gpu > 0 or model.runtime in SHM_RUNTIMES):
        shm = default_shm(memory)
    return Storage(resources.scratch_bytes or SERVING_SCRATCH_BYTES, shm)


def apply(spec: dict[str, Any], storage: Storage) -> None:
    """Size the pod's ``/tmp``, request its ``ephemeral-storage`` and mount ``/dev/shm``.

    ``spec`` is a pod spec from :func:`pods.pod_spec` (its first container is the workload)."""
    main = spec["containers"][0]
    for volume in spec["volumes"]:
        if volume["name"] == pods.TMP_VOLUME:
            volume["emptyDir"]["sizeLimit"] = quantity(storage.scratch)
    disk = quantity(_rounded(storage.scratch) + LOG_ROOM_BYTES)
    for amounts in (main["resources"]["requests"], main["resources"]["limits"]):
        amounts["ephemeral-storage"] = disk
    if storage.shm is not None:
        shm = {"medium": "Memory", "sizeLimit": quantity(storage.shm)}
        spec["volumes"].insert(1, {"name": SHM_VOLUME, "emptyDir": shm})
        main["volumeMounts"].insert(1, {"name": SHM_VOLUME, "mountPath": SHM_PATH})


def check_storage(lowering: Lowering) -> None:
    """Every ``resources.shm`` leaves memory to the process that uses it."""
    for model in lowering.system.models.values():
        check_shm(lowering, model.name, "serving", model.serving.resources, pods.SERVING_DEFAULTS)
        if model.training is not None:
            resources = model.training.resources
            check_shm(lowering, model.name, "training", resources, pods.TRAINING_DEFAULTS)


def check_shm(
    lowering: Lowering,
    model: str,
    part: str,
    resources: ir.Resources,
    defaults: pods.Quantities,
) -> None:
    """A memory-backed ``/dev/shm`` is charged to the pod's memory limit: one as large as the
    limit leaves nothing to the process, which the kernel then kills as out of memory.
    ``part`` is the section of model ``model`` the resources belong to (``serving``, ...)."""
    if resources.shm_bytes is None:
        return
    memory = memory_of(resources, defaults)
    if _rounded(resources.shm_bytes) < memory:
        return
    shm_path: SpecPath = ("models", model, part, "resources", "shm")
    memory_path: SpecPath = ("models", model, part, "resources", "memory")
    given = resources.memory is not None
    limit = resources.memory if given else f"{defaults.memory} (the default)"
    related = (
        (Related(lowering.location(memory_path), "the memory limit it is charged to"),)
        if given and memory_path in lowering.system.origins
        else ()
    )
    lowering.diagnostics.error(
        codes.SHM_EXCEEDS_MEMORY,
        f"{part}.resources.shm of model {model!r} is {quantity(resources.shm_bytes)}, but the "
        f"pod's memory limit is {limit}: a memory-backed /dev/shm is charged to that limit and "
        "would leave the process no memory",
        lowering.location(shm_path),
        shm_path,
        hint=f"set shm below the memory limit (such as {quantity(default_shm(memory))}, half of "
        "it), or raise memory to the process's working set plus its shared memory",
        related=related,
    )
