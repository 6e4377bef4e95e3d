"""Loader speed against bare libyaml event iteration (the floor no event-walking loader can beat).

The loader must stay within ~1.5x of ``for _ in yaml.parse(text, Loader=CSafeLoader): pass``;
anything slower means per-event work crept into the hot loop. Run:

    python benchmarks/loader_bench.py [--entries 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import yaml

from mlplane.compiler.frontend.loader import load_bytes

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _model(i: int) -> str:
    """One realistic model entry: nested mappings, flow and block lists, numbers, quoted text."""
    return f"""\
  model-{i:04d}:
    framework: lightgbm
    version: "4.2.{i}"
    artifact: s3://models/fraud/model-{i:04d}/4.2.0/
    image: ghcr.io/acme/fraud-scorer@sha256:{i:064x}
    runtime: generic
    description: 'Real-time card fraud scoring, variant {i}'
    inputs: [fraud-features, card-transactions, merchant-profile-{i % 7}]
    serving:
      replicas: {{min: 2, max: {8 + i % 5}}}
      autoscaling: {{metric: cpu, target: 70}}
      resources: {{cpu: "1", memory: 2Gi}}
      rollout: {{strategy: canary, steps: [10, 50], pause: 10m}}
      exposure: internal
    explainability: {{required: true, method: shap}}
    monitoring:
      drift:
        method: psi
        threshold: 0.2
        features:
          - amount
          - merchant_category
          - country
    training:
      schedule: "0 3 * * 0"
      image: ghcr.io/acme/fraud-train@sha256:{i:064x}
      resources: {{cpu: "4", memory: 8Gi}}
    labels:
      team: risk-ml
      tier: gold
"""


def make_spec(entries: int) -> bytes:
    """A spec with ``entries`` models (1,000 give about 1 MB)."""
    head = "apiVersion: mlplane.dev/v1\nkind: MLSystem\nmetadata:\n  name: bench\nmodels:\n"
    return (head + "".join(_model(i) for i in range(entries))).encode("utf-8")


def _best_of(functions: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best time of each function; runs are interleaved so that load from other processes
    on the machine affects all of them alike."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeat):
        for label, function in functions.items():
            start = time.perf_counter()
            function()
            best[label] = min(best[label], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--context", action="store_true", help="also time PyYAML's C compose and C load"
    )
    args = parser.parse_args()
    data = make_spec(args.entries)
    text = data.decode("utf-8")

    def bare() -> None:
        for _ in yaml.parse(text, Loader=_LOADER):
            pass

    def loader() -> None:
        loaded, diagnostics = load_bytes(data, "bench.yaml")
        assert loaded is not None, diagnostics

    functions: dict[str, Callable[[], object]] = {
        "bare event iteration": bare,
        "load_bytes": loader,
    }
    if args.context:
        functions["yaml.compose (C)"] = lambda: yaml.compose(text, Loader=_LOADER)
        functions["yaml.load (C)"] = lambda: yaml.load(text, Loader=_LOADER)
    best = _best_of(functions, args.repeat)
    floor = best["bare event iteration"]
    print(f"spec size: {len(data) / 1_048_576:.2f} MiB ({args.entries} models)")
    for label, seconds in best.items():
        print(f"{label:<22} {seconds * 1000:8.1f} ms  {seconds / floor:5.2f}x")


if __name__ == "__main__":
    main()
