"""The governance report (``mlplane report``) on the large generated spec, measured in one run.

    python benchmarks/report_bench.py [--models 1000] [--sources 2000] [--repeat 3]
                                      [--formats html,markdown,json] [--json]

Rows, each the best of ``--repeat`` runs in wall-clock seconds with the CPU seconds of that run
(the command's process and the workers it forked and waited for), with the 1-minute load
average before it (on a busy machine the report forks no worker: there is no free core):

* ``mlplane validate`` of the same spec, the floor every report pays (the report compiles the
  spec as validate does);
* ``mlplane report`` of every environment (the default without ``--env``) in each format, and
  ``--env prod`` alone in HTML; each in a new interpreter, end to end, as a user runs it;
* the report's own parts, timed in this process on one compile: compiling and judging the
  spec (``judge_reports``), then per environment the target's checks, building the report
  model (``ReportRun.report``) and rendering it in each format;
* the size of each environment's file, and the cost per model.

Every repeated run must write the same bytes (the report is deterministic), and the reports
rendered in forked workers must equal those rendered in this process; otherwise the benchmark
stops. Not a timed test: nothing fails on a threshold.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_spec  # noqa: E402

from mlplane.compiler.build.pipeline import target_of  # noqa: E402
from mlplane.compiler.core import plugins  # noqa: E402
from mlplane.compiler.core.diagnostics import Diagnostics  # noqa: E402
from mlplane.compiler.policy.engine import installed_rules  # noqa: E402
from mlplane.compiler.report.html import render_html  # noqa: E402
from mlplane.compiler.report.json_format import render_json  # noqa: E402
from mlplane.compiler.report.markdown import render_markdown  # noqa: E402
from mlplane.compiler.report.run import judge_reports, render_reports  # noqa: E402

TODAY = "2030-01-01"
"""Waiver expiry is judged against a fixed date, so no figure depends on the clock."""
RENDER = {"html": render_html, "markdown": render_markdown, "json": render_json}
EXTENSION = {"html": "html", "markdown": "md", "json": "json"}


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def cli_run(args: Sequence[str], out: Path, repeat: int) -> dict[str, Any]:
    """``mlplane ARGS --out OUT`` in a new interpreter, best of ``repeat``: wall and CPU seconds
    of the fastest run, the load average before it, and the bytes of each file written (every
    run must write the same bytes)."""
    best: dict[str, Any] = {"seconds": float("inf")}
    files: dict[str, bytes] | None = None
    for _ in range(repeat):
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), _cpu()
        subprocess.run(
            [sys.executable, "-m", "mlplane", *args, "--out", str(out)],
            check=True,
            capture_output=True,
            env={**os.environ, "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
        )
        seconds, used = time.perf_counter() - start, _cpu() - cpu
        written = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        if files is not None and written != files:
            raise SystemExit(f"mlplane {' '.join(args)}: two runs wrote different bytes")
        files = written
        if seconds < best["seconds"]:
            best = {"seconds": seconds, "cpu_seconds": used, "load_average": load}
    best["sizes"] = {name: len(data) for name, data in (files or {}).items()}
    return best


def validate_run(spec: Path, repeat: int) -> dict[str, Any]:
    best: dict[str, Any] = {"seconds": float("inf")}
    for _ in range(repeat):
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), _cpu()
        subprocess.run(
            [sys.executable, "-m", "mlplane", "validate", str(spec), "--today", TODAY],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        seconds, used = time.perf_counter() - start, _cpu() - cpu
        if seconds < best["seconds"]:
            best = {"seconds": seconds, "cpu_seconds": used, "load_average": load}
    return best


def _cpu_of(action: Callable[[], object]) -> tuple[float, Any]:
    start = _cpu()
    value = action()
    return _cpu() - start, value


def parts(spec: Path, formats: Sequence[str]) -> dict[str, Any]:
    """CPU seconds of the report's parts in this process, the cyclic collector paused as in
    the command; and a check that forked workers render the same bytes as this process."""
    today = date.fromisoformat(TODAY)
    enabled = gc.isenabled()
    gc.disable()
    try:
        judged_s, run = _cpu_of(lambda: judge_reports(spec, None, today=today))
        assert run.ok, [d.one_line() for d in run.compiled.sorted_diagnostics()[:3]]
        rules = installed_rules()
        found: dict[str, Any] = {"judge_cpu_seconds": judged_s, "environments": {}}
        for name in sorted(run.findings):
            checked_s, _ = _cpu_of(lambda n=name: _check(run.compiled.systems[n]))
            built_s, report = _cpu_of(lambda n=name: run.report(n, rules))
            row: dict[str, Any] = {"checks_cpu_seconds": checked_s, "build_cpu_seconds": built_s}
            for fmt in formats:
                row[f"{fmt}_cpu_seconds"], _ = _cpu_of(lambda f=fmt, r=report: RENDER[f](r))
            found["environments"][name] = row
        here = render_reports(run, render_html, workers=0)
        forked = render_reports(run, render_html, workers=len(here) - 1)
        if forked != here:
            raise SystemExit("reports rendered in forked workers differ from this process's")
    finally:
        if enabled:
            gc.enable()
    return found


def _check(system: Any) -> Diagnostics:
    """The target's checks of one environment, as the report runs them before building it."""
    found = Diagnostics()
    target = target_of(system, found)
    if target is not None:
        plugins.check_target(target, system, found)
    assert not found.has_errors, [d.one_line() for d in found.sorted()[:3]]
    return found


def measure(models: int, sources: int, repeat: int, formats: Sequence[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlplane-report-bench-") as directory:
        work = Path(directory)
        spec = work / "spec"
        spec.mkdir()
        (spec / "mlplane.yaml").write_text(generate_spec(models, sources, 0), encoding="utf-8")
        figures: dict[str, Any] = {
            "models": models,
            "sources": sources,
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
            "validate": validate_run(spec, repeat),
            "report": {},
        }
        for fmt in formats:
            out = work / f"out-{fmt}"
            out.mkdir()
            args = ["report", str(spec), "--today", TODAY, "--format", fmt]
            figures["report"][f"all, {fmt}"] = cli_run(args, out, repeat)
        out = work / "out-prod"
        out.mkdir()
        args = ["report", str(spec), "--today", TODAY, "--env", "prod"]
        figures["report"]["prod, html"] = cli_run(args, out, repeat)
        figures["parts"] = parts(spec, formats)
        return figures


def summary(figures: dict[str, Any]) -> str:
    models = figures["models"]
    validate = figures["validate"]
    lines = [
        f"mlplane report, {models} models / {figures['sources']} data sources, "
        f"{figures['cores']} cores (best of runs; CPU includes forked workers)",
        "",
        "| command | wall | CPU | per model (CPU) | x validate (CPU) | load | largest file |",
        "|---|---|---|---|---|---|---|",
        _row("validate", validate, validate, models),
    ]
    for label, timing in figures["report"].items():
        lines.append(_row(f"report {label}", timing, validate, models))
    lines += ["", "| part (CPU seconds, this process) | " + " | ".join(_columns(figures)) + " |"]
    lines.append("|---|" + "---|" * len(_columns(figures)))
    for name, row in figures["parts"]["environments"].items():
        cells = " | ".join(f"{row[c]:.2f}" for c in _keys(figures))
        lines.append(f"| {name} | {cells} |")
    lines.append(
        f"\ncompile and policies of every environment (judge_reports): "
        f"{figures['parts']['judge_cpu_seconds']:.2f} s CPU"
    )
    return "\n".join(lines) + "\n"


def _keys(figures: dict[str, Any]) -> list[str]:
    first = next(iter(figures["parts"]["environments"].values()))
    return list(first)


def _columns(figures: dict[str, Any]) -> list[str]:
    return [key.removesuffix("_cpu_seconds") for key in _keys(figures)]


def _row(label: str, timing: dict[str, Any], validate: dict[str, Any], models: int) -> str:
    sizes = timing.get("sizes", {})
    largest = f"{max(sizes.values()) / 1e6:.1f} MB" if sizes else "-"
    return (
        f"| {label} | {timing['seconds']:.2f} s | {timing['cpu_seconds']:.2f} s | "
        f"{timing['cpu_seconds'] / models * 1e3:.2f} ms | "
        f"{timing['cpu_seconds'] / validate['cpu_seconds']:.2f} | "
        f"{timing['load_average']:.1f} | {largest} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="html,markdown,json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    unknown = sorted(set(formats) - set(RENDER))
    if unknown:
        parser.error(f"unknown format(s): {', '.join(unknown)}")
    figures = measure(args.models, args.sources, args.repeat, formats)
    print(json.dumps(figures, indent=2, sort_keys=True) if args.json else summary(figures), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
