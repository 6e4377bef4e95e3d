"""``mlplane build`` of several environments in one process, and incremental writes.

Several environments share one compile and are lowered in forked workers
(``compiler/build/environments.py``): the bytes must be those of one build per environment,
whatever the number of workers; a failing environment leaves every output as it was. A rebuild
writes only the files whose bytes changed and keeps the others (same inode, same mtime), and
``--check`` stays exact (a hand-edit is never mistaken for a current file).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlplane.compiler.build import environments
from mlplane.compiler.build.outputs import MANIFEST, RESOURCES, build, build_many
from mlplane.compiler.cli.main import cli
from tests.test_build import snapshot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KUBERNETES_ENVS = ["dev", "prod"]


@pytest.fixture
def recsys(tmp_path: Path) -> Path:
    directory = tmp_path / "recsys"
    shutil.copytree(EXAMPLES / "recsys-gpu", directory)
    return directory


def _stats(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (inode, mtime in ns) of every file below ``root``."""
    found: dict[str, tuple[int, int]] = {}
    for directory, _, files in os.walk(root):
        for name in files:
            status = os.lstat(Path(directory, name))
            found[Path(directory, name).relative_to(root).as_posix()] = (
                status.st_ino,
                status.st_mtime_ns,
            )
    return found


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_several_environments_give_the_bytes_of_one_build_each(
    recsys: Path, tmp_path: Path, workers: int
) -> None:
    for env in KUBERNETES_ENVS:
        assert build(recsys, env, tmp_path / "single" / env).ok
    compiled, results = build_many(
        recsys, KUBERNETES_ENVS, lambda env: tmp_path / "many" / env, workers=workers
    )
    assert compiled.ok and [r.environment for r in results] == KUBERNETES_ENVS
    for env, result in zip(KUBERNETES_ENVS, results, strict=True):
        assert result.ok and set(result.written) == set(result.files)
        assert snapshot(tmp_path / "many" / env) == snapshot(tmp_path / "single" / env)


@pytest.mark.slow
def test_all_envs_builds_every_environment_below_out(recsys: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    runner = CliRunner()
    written = runner.invoke(cli, ["build", str(recsys), "--all-envs", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in out.iterdir()) == ["dev", "prod", "prod-aws"]
    checked = runner.invoke(
        cli, ["build", str(recsys), "--all-envs", "--out", str(out), "--check", "--format", "json"]
    )
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["status"] == "current"
    assert [b["environment"] for b in report["builds"]] == ["dev", "prod", "prod-aws"]


def test_env_and_all_envs_are_exclusive(recsys: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(cli, ["build", str(recsys), "--all-envs", "--env", "dev"])
    neither = runner.invoke(cli, ["build", str(recsys)])
    assert both.exit_code == neither.exit_code == 2


def test_one_failing_environment_changes_no_output(recsys: Path, tmp_path: Path) -> None:
    outs = {env: tmp_path / "out" / env for env in KUBERNETES_ENVS}
    _, first = build_many(recsys, KUBERNETES_ENVS, outs.__getitem__, workers=1)
    assert all(r.ok for r in first)
    before = snapshot(tmp_path / "out")
    spec = recsys / "mlplane.yaml"
    text = spec.read_text(encoding="utf-8")
    # prod's overlay now names a model the base lacks, incompletely: prod fails, dev does not.
    broken = text.replace("  prod:\n", "  prod:\n    overrides: {models: {ghost: {}}}\n", 1)
    assert broken != text
    spec.write_text(broken, encoding="utf-8")
    compiled, results = build_many(recsys, KUBERNETES_ENVS, outs.__getitem__, workers=1)
    assert not compiled.ok and not any(r.ok for r in results)
    assert snapshot(tmp_path / "out") == before


def test_a_rebuild_keeps_every_unchanged_file(recsys: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    assert build(recsys, "dev", out).ok
    before = _stats(out)
    again = build(recsys, "dev", out)
    assert again.ok and again.written == ()
    assert _stats(out) == before


def test_a_one_model_change_rewrites_only_that_models_files(recsys: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    assert build(recsys, "dev", out).ok
    before = _stats(out)
    spec = recsys / "mlplane.yaml"
    text = spec.read_text(encoding="utf-8")
    dev_ranker = (  # dev's overlay of the ranker, just before prod's section
        'replicas: {min: 1, max: 2}\n            resources: {cpu: "2", memory: 8Gi, gpu: 0}\n'
        "          training: null\n  prod:"
    )
    changed = text.replace(dev_ranker, dev_ranker.replace("max: 2", "max: 3"), 1)
    assert changed != text
    spec.write_text(changed, encoding="utf-8")
    result = build(recsys, "dev", out)
    assert result.ok
    after = _stats(out)
    rewritten = {path for path in after if after[path] != before.get(path)}
    assert rewritten == set(result.written)
    ranker = {path for path in rewritten if "ranker" in path}
    assert ranker, rewritten  # the model's own files changed
    assert rewritten - ranker <= {
        MANIFEST,
        RESOURCES,
        "pulumi/__main__.py",
    }
    assert len(rewritten) < len(after) / 2


def test_check_still_sees_a_hand_edit_of_a_kept_file(recsys: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    assert build(recsys, "dev", out).ok
    assert build(recsys, "dev", out).written == ()
    edited = out / "pulumi" / "Pulumi.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")
    checked = build(recsys, "dev", out, check=True)
    assert ("pulumi/Pulumi.yaml", "hand-edited") in checked.findings
    rebuilt = build(recsys, "dev", out)
    assert "pulumi/Pulumi.yaml" in rebuilt.written
    assert build(recsys, "dev", out, check=True).findings == ()


def test_a_file_with_another_link_is_written_afresh(recsys: Path, tmp_path: Path) -> None:
    """A kept file becomes the same inode in the new tree: one that another path also names
    (which could change it behind the output's back) is written instead."""
    out = tmp_path / "dev"
    assert build(recsys, "dev", out).ok
    os.link(out / RESOURCES, tmp_path / "elsewhere.json")
    again = build(recsys, "dev", out)
    assert again.written == (RESOURCES,)
    assert not (out / RESOURCES).samefile(tmp_path / "elsewhere.json")


def test_three_environments_on_two_cores_get_a_process_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dealt one per core, two cores would end when one process had built two environments;
    a process each, the three share both cores (``environments.processes``)."""
    dealt: list[tuple[int, int]] = []
    real = environments.spread

    def spread(items: Any, workers: int, work: Any) -> Any:
        dealt.append((len(items), workers))
        return real(items, workers, work)

    monkeypatch.setattr(environments, "spread", spread)
    spec = tmp_path / "fraud"
    shutil.copytree(EXAMPLES / "fraud-scoring", spec)
    names = ["dev", "edge", "prod"]
    _, results = build_many(spec, names, lambda env: tmp_path / "out" / env, workers=1)
    assert [r.ok for r in results] == [True, True, True]
    assert dealt == [(3, 2)]  # two workers beside this process
