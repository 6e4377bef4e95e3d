"""What a pod may write: ``/tmp`` scratch on disk and a memory-backed ``/dev/shm``, sized to the
workload (``targets/kubernetes/storage.py``).

The sizes are read back from the lowered objects as quantities (``formats.parse_memory``), the
refusal of a ``/dev/shm`` that leaves the process no memory is checked at its spec line, and
the manifests of a spec using every setting are judged by ``kubernetes-validate --strict`` and
``checkov``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics, Severity
from mlplane.schema import formats
from mlplane.targets.kubernetes import codes, emit_manifests, lower, pods, storage
from tests.judges import checkov_failed, checkov_kubernetes
from tests.specs import BASE, write_spec
from tests.test_kubernetes_network import compiled, lowered

GIB = 2**30
MIB = 2**20

TRAINED = BASE.replace(
    "slas:\n",
    f"""  ranker:
    framework: pytorch
    version: "2.3.0"
    image: ghcr.io/acme/ranker@sha256:{"cd" * 32}
    serving:
      resources: {{cpu: 500m, memory: 1Gi}}
    training:
      schedule: "0 3 * * *"
      image: ghcr.io/acme/ranker-train@sha256:{"ef" * 32}
      resources: {{cpu: "2", memory: 8Gi, gpu: 1}}
slas:
""",
)
TRAINING_RESOURCES = '      resources: {cpu: "2", memory: 8Gi, gpu: 1}\n'
SCORER_RESOURCES = "      resources: {cpu: 500m, memory: 1Gi}\n"


def with_training(resources: str) -> str:
    assert TRAINING_RESOURCES in TRAINED
    return TRAINED.replace(TRAINING_RESOURCES, f"      resources: {resources}\n")


def with_scorer(resources: str, runtime: str = "") -> str:
    assert SCORER_RESOURCES in TRAINED
    text = TRAINED.replace(SCORER_RESOURCES, f"      resources: {resources}\n")
    if runtime:
        model = "  scorer:\n    framework: sklearn\n"
        text = text.replace(model, model + f"    runtime: {runtime}\n")
        text = text.replace(
            "      replicas: {min: 2, max: 4}\n",
            "      replicas: {min: 2, max: 4}\n      port: 8000\n",
        )
    return text


def pod_spec(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (body,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if kind == "CronJob":
        spec: dict[str, Any] = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = body["spec"]["template"]["spec"]
    return spec


def training_pod(text: str, tmp_path: Path) -> dict[str, Any]:
    objects, _ = lowered(compiled(tmp_path, text))
    return pod_spec(objects, "CronJob", "ranker-training")


def serving_pod(text: str, tmp_path: Path) -> dict[str, Any]:
    objects, _ = lowered(compiled(tmp_path, text))
    kind = next(o["kind"] for o in objects if o["metadata"]["name"] == "scorer")
    return pod_spec(objects, kind, "scorer")


def sizes(spec: dict[str, Any]) -> dict[str, int | None]:
    """The pod's memory limit, ``/tmp``, ``/dev/shm`` (None: not mounted) and ephemeral storage
    (requests equal limits), in bytes."""
    volumes = {v["name"]: v["emptyDir"] for v in spec["volumes"] if "emptyDir" in v}
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert requests["ephemeral-storage"] == limits["ephemeral-storage"]
    tmp = volumes[mounts["/tmp"]]
    assert "medium" not in tmp, "scratch is on the node's disk"
    shm = volumes.get(mounts.get("/dev/shm", ""))
    if shm is not None:
        assert shm["medium"] == "Memory"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    return {
        "memory": formats.parse_memory(limits["memory"]),
        "tmp": formats.parse_memory(tmp["sizeLimit"]),
        "shm": formats.parse_memory(shm["sizeLimit"]) if shm is not None else None,
        "ephemeral": formats.parse_memory(limits["ephemeral-storage"]),
    }


# --- the size rule --------------------------------------------------------------------------


def resources(
    memory: int | None, gpu: int = 0, shm: int | None = None, scratch: int | None = None
) -> ir.Resources:
    return ir.Resources(
        cpu_millis=None,
        memory_bytes=memory,
        gpu=gpu,
        cpu=None,
        memory=f"{memory // MIB}Mi" if memory else None,
        shm_bytes=shm,
        scratch_bytes=scratch,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # GPU job: shm is half the memory, scratch the memory
        (resources(8 * GIB, gpu=1), storage.Storage(scratch=8 * GIB, shm=4 * GIB)),
        # CPU job: no shm, scratch at least 1 GiB
        (resources(512 * MIB), storage.Storage(scratch=GIB, shm=None)),
        # the spec's sizes win, also asking a CPU job's shm
        (
            resources(4 * GIB, shm=GIB, scratch=100 * GIB),
            storage.Storage(scratch=100 * GIB, shm=GIB),
        ),
        (resources(16 * GIB, gpu=2, shm=12 * GIB), storage.Storage(scratch=16 * GIB, shm=12 * GIB)),
    ],
)
def test_a_job_gets_scratch_of_its_memory_and_shm_when_it_has_a_gpu(
    given: ir.Resources, expected: storage.Storage
) -> None:
    memory = storage.memory_of(given, pods.TRAINING_DEFAULTS)
    assert storage.job_storage(given, memory) == expected


def test_the_default_memory_sizes_a_job_without_one() -> None:
    given = resources(None, gpu=1)
    memory = storage.memory_of(given, pods.TRAINING_DEFAULTS)
    assert memory == formats.parse_memory(pods.TRAINING_DEFAULTS.memory) == 2 * GIB
    assert storage.job_storage(given, memory) == storage.Storage(scratch=2 * GIB, shm=GIB)


def test_quantities_are_whole_gibibytes_or_mebibytes_rounded_up() -> None:
    assert storage.quantity(4 * GIB) == "4Gi"
    assert storage.quantity(1536 * MIB) == "1536Mi"
    assert storage.quantity(10**9) == "954Mi"  # 953.67 MiB, never less than asked
    assert storage.quantity(10**9 // 2) == "477Mi"


# --- training pods --------------------------------------------------------------------------


def test_gpu_training_pods_get_memory_backed_shm_and_scratch_sized_to_the_job(
    tmp_path: Path,
) -> None:
    found = sizes(training_pod(TRAINED, tmp_path))
    assert found == {"memory": 8 * GIB, "tmp": 8 * GIB, "shm": 4 * GIB, "ephemeral": 9 * GIB}


def test_cpu_training_pods_get_scratch_but_no_shm(tmp_path: Path) -> None:
    found = sizes(training_pod(with_training("{cpu: 500m, memory: 512Mi}"), tmp_path))
    assert found == {"memory": 512 * MIB, "tmp": GIB, "shm": None, "ephemeral": 2 * GIB}


def test_the_spec_sets_a_training_job_s_shm_and_scratch(tmp_path: Path) -> None:
    text = with_training('{cpu: "8", memory: 32Gi, gpu: 4, shm: 24Gi, scratch: 200Gi}')
    found = sizes(training_pod(text, tmp_path))
    assert found == {"memory": 32 * GIB, "tmp": 200 * GIB, "shm": 24 * GIB, "ephemeral": 201 * GIB}


# --- serving pods ---------------------------------------------------------------------------


def test_a_cpu_server_keeps_the_runtime_s_shm_and_1_gib_of_scratch(tmp_path: Path) -> None:
    found = sizes(serving_pod(TRAINED, tmp_path))
    assert found == {"memory": GIB, "tmp": GIB, "shm": None, "ephemeral": 2 * GIB}


def test_a_gpu_server_gets_shm_of_half_its_memory(tmp_path: Path) -> None:
    found = sizes(serving_pod(with_scorer("{cpu: 500m, memory: 6Gi, gpu: 1}"), tmp_path))
    assert found == {"memory": 6 * GIB, "tmp": GIB, "shm": 3 * GIB, "ephemeral": 2 * GIB}


def test_a_triton_server_gets_shm_without_a_gpu(tmp_path: Path) -> None:
    text = with_scorer("{cpu: 500m, memory: 4Gi}", runtime="triton")
    found = sizes(serving_pod(text, tmp_path))
    assert found == {"memory": 4 * GIB, "tmp": GIB, "shm": 2 * GIB, "ephemeral": 2 * GIB}


def test_the_spec_sets_a_server_s_shm_and_scratch(tmp_path: Path) -> None:
    text = with_scorer("{cpu: 500m, memory: 4Gi, shm: 1Gi, scratch: 10Gi}")
    found = sizes(serving_pod(text, tmp_path))
    assert found == {"memory": 4 * GIB, "tmp": 10 * GIB, "shm": GIB, "ephemeral": 11 * GIB}


# --- the refusal ----------------------------------------------------------------------------


def validated(tmp_path: Path, text: str) -> CompileResult:
    """Compiled as ``mlplane validate`` compiles: with what each target refuses."""
    return compile_spec(write_spec(tmp_path, text), check_targets=True)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize("shm", ["8Gi", "9Gi", "8192Mi"])
def test_shm_as_large_as_the_memory_limit_is_refused_at_its_line(tmp_path: Path, shm: str) -> None:
    text = with_training(
        "\n".join(["", "        memory: 8Gi", f"        shm: {shm}", "        gpu: 1"])
    )
    result = validated(tmp_path, text)
    refused = [d for d in result.sorted_diagnostics() if d.code == codes.SHM_EXCEEDS_MEMORY]
    assert refused, [d.one_line() for d in result.sorted_diagnostics()]
    assert not result.ok
    for diagnostic in refused:
        assert diagnostic.severity is Severity.ERROR
        assert diagnostic.location is not None
        assert diagnostic.location.line == line_of(text, f"shm: {shm}")
        assert [r.location.line for r in diagnostic.related] == [line_of(text, "memory: 8Gi")]
        assert "training.resources.shm of model 'ranker'" in diagnostic.message


def test_shm_below_the_memory_limit_is_accepted(tmp_path: Path) -> None:
    text = with_training("{memory: 8Gi, shm: 8191Mi, gpu: 1}")
    result = validated(tmp_path, text)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]


def test_shm_is_compared_with_the_default_memory_when_none_is_given(tmp_path: Path) -> None:
    text = with_scorer("{cpu: 500m, shm: 1Gi}")
    result = validated(tmp_path, text)
    (refused, *_) = [d for d in result.sorted_diagnostics() if d.code == codes.SHM_EXCEEDS_MEMORY]
    assert "512Mi (the default)" in refused.message
    assert refused.related == ()
    assert refused.location is not None
    assert refused.location.line == line_of(text, "shm: 1Gi")


def test_the_refusal_is_made_on_the_lowered_system_too(tmp_path: Path) -> None:
    """Overrides are resolved per environment: prod may give too little memory for its shm."""
    text = with_training("{memory: 8Gi, shm: 4Gi, gpu: 1}").replace(
        "            replicas: {min: 3, max: 9}\n",
        "            replicas: {min: 3, max: 9}\n"
        "        ranker:\n          training:\n            resources: {memory: 4Gi}\n",
    )
    result = validated(tmp_path, text)
    refused = [d for d in result.sorted_diagnostics() if d.code == codes.SHM_EXCEEDS_MEMORY]
    assert len(refused) == 1, [d.one_line() for d in result.sorted_diagnostics()]
    assert "memory limit is 4Gi" in refused[0].message
    assert refused[0].location is not None
    assert refused[0].location.line == line_of(text, "shm: 4Gi")
    assert [r.location.line for r in refused[0].related] == [line_of(text, "{memory: 4Gi}")]


# --- judges ---------------------------------------------------------------------------------

JUDGED = with_scorer("{cpu: 500m, memory: 4Gi, shm: 1Gi, scratch: 10Gi, gpu: 1}").replace(
    TRAINING_RESOURCES,
    '      resources: {cpu: "8", memory: 32Gi, gpu: 4, shm: 24Gi, scratch: 200Gi}\n',
)


def emitted(tmp_path: Path) -> Path:
    system = compiled(tmp_path, JUDGED, "prod")
    found = Diagnostics()
    graph = lower(system, found)
    assert graph is not None
    out = tmp_path / "out"
    for name, body in emit_manifests(system, graph).items():
        if not name.endswith(".yaml"):
            continue
        documents = [d for d in yaml.safe_load_all(body) if d]
        kept = [d for d in documents if d["kind"] in ("Deployment", "CronJob", "NetworkPolicy")]
        if kept:
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump_all(kept), encoding="utf-8")
    return out


@pytest.mark.judge
def test_pods_with_shm_and_scratch_pass_kubernetes_validate(
    tmp_path: Path, kubernetes_validate: str
) -> None:
    files = sorted(map(str, emitted(tmp_path).rglob("*.yaml")))
    done = subprocess.run(
        [kubernetes_validate, "--strict", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "resource deployment/scorer" in output
    assert "resource cronjob/ranker-training" in output


@pytest.mark.judge
def test_pods_with_shm_and_scratch_pass_checkov(tmp_path: Path, checkov: str) -> None:
    out = emitted(tmp_path)
    reports = checkov_kubernetes(checkov, out)
    assert checkov_failed(reports) == []
    judged = {p["resource"].split(".")[0] for r in reports for p in r["results"]["passed_checks"]}
    assert {"Deployment", "CronJob"} <= judged, judged
