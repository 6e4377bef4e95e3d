"""Stale locks of a local state backend: removed only when their process is gone from this
machine (tests/e2e/test_concurrency.py kills a real apply and checks the next one completes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from mlplane.compiler.deploy import locks


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def _lock(root: Path, name: str, body: object) -> Path:
    directory = root / ".pulumi" / "locks" / "organization" / "shop" / "shop-dev"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    (directory / f"{name}.json.attrs").write_text("{}", encoding="utf-8")
    return path


def test_only_a_dead_process_of_this_machine_loses_its_lock(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = _lock(tmp_path, "a", {"pid": _dead_pid(), "hostname": host, "timestamp": "t"})
    _lock(tmp_path, "b", {"pid": os.getpid(), "hostname": host, "timestamp": "t"})
    _lock(tmp_path, "c", {"pid": _dead_pid(), "hostname": "another-machine", "timestamp": "t"})
    _lock(tmp_path, "d", {"pid": "1", "hostname": host})
    _lock(tmp_path, "e", ["not", "a", "lock"])
    (dead.parent / "f.json").write_text("{", encoding="utf-8")
    found = locks.stale_locks(tmp_path.as_uri(), "shop", "shop-dev")
    assert [lock.path for lock in found] == [dead]
    locks.remove(found[0])
    assert not dead.exists() and not dead.with_name("a.json.attrs").exists()
    assert sorted(p.name for p in dead.parent.glob("*.json")) == [
        "b.json",
        "c.json",
        "d.json",
        "e.json",
        "f.json",
    ]


def test_remote_backends_and_links_are_never_touched(tmp_path: Path) -> None:
    host = socket.gethostname()
    real = _lock(tmp_path / "real", "a", {"pid": _dead_pid(), "hostname": host})
    link_root = tmp_path / "linked"
    link = _lock(link_root, "x", {})
    link.unlink()
    link.symlink_to(real)
    assert locks.stale_locks(link_root.as_uri(), "shop", "shop-dev") == []
    assert locks.stale_locks("s3://bucket/state", "shop", "shop-dev") == []
    assert locks.stale_locks(tmp_path.as_uri(), "*", "*") == []


def test_a_killed_process_not_yet_reaped_holds_no_lock(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # until it has exited (a zombie: nobody has waited for it)
            state = Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0]
            if state == "Z":
                break
            time.sleep(0.05)
        lock = _lock(tmp_path, "z", {"pid": child.pid, "hostname": socket.gethostname()})
        assert [
            found.path for found in locks.stale_locks(tmp_path.as_uri(), "shop", "shop-dev")
        ] == [lock]
    finally:
        child.wait()


def test_empty_checkpoint_attributes_are_found_for_repair(tmp_path: Path) -> None:
    """A run killed while writing leaves an empty attribute file beside the checkpoint, which
    the engine cannot read; only the stack's own empty ones are named."""
    stacks = tmp_path / ".pulumi" / "stacks" / "shop"
    stacks.mkdir(parents=True)
    (stacks / "shop-dev.json").write_text("{}", encoding="utf-8")
    (stacks / "shop-dev.json.attrs").write_text("", encoding="utf-8")
    (stacks / "shop-dev.json.bak.attrs").write_text('{"user.content_type": "x"}', "utf-8")
    (stacks / "shop-prod.json.attrs").write_text("", encoding="utf-8")
    found = locks.empty_attributes(tmp_path.as_uri(), "shop", "shop-dev")
    assert found == [stacks / "shop-dev.json.attrs"]
    assert locks.empty_attributes("s3://bucket/state", "shop", "shop-dev") == []
    assert locks.empty_attributes(tmp_path.as_uri(), "*", "*") == []
