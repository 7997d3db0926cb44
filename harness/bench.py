"""Median time to evaluate each stack under mocks: `python -m harness.bench [--runs N]`.

Also a synthetic `dev` with many simulator models (`--models N`, default 50), to show how
evaluation time and resource count grow with the catalog.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from typing import Any

from harness.program import evaluate, stack_config, stack_names


def median_seconds(stack: str, runs: int, config: Mapping[str, Any] | None = None) -> tuple[float, int]:
    """Median wall time of `runs` evaluations, and how many resources one declares."""
    evaluate(stack, config)  # imports and first-run caches are not what is measured
    times = []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = evaluate(stack, config)
        times.append(time.perf_counter() - start)
        if result.error is not None:
            raise SystemExit(f"{stack}: {result.error}")
        count = len(result.resources)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()
    for stack in stack_names():
        seconds, count = median_seconds(stack, args.runs)
        print(f"{stack:>12}: median {seconds * 1000:7.1f} ms over {args.runs} runs, {count} resources")
    catalog = [{"name": f"m{i}", "host": f"m{i}", "runtime": "simulator"} for i in range(args.models)]
    synthetic = {**stack_config("dev"), "maas:models": catalog}
    seconds, count = median_seconds("dev", args.runs, synthetic)
    label = f"dev+{args.models}m"
    print(f"{label:>12}: median {seconds * 1000:7.1f} ms over {args.runs} runs, {count} resources")


if __name__ == "__main__":
    main()
