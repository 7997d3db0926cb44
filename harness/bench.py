"""Median time to evaluate each stack under mocks: `python -m harness.bench [--runs N]`."""

from __future__ import annotations

import argparse
import statistics
import time

from harness.program import evaluate, stack_names


def median_seconds(stack: str, runs: int) -> tuple[float, int]:
    """Median wall time of `runs` evaluations, and how many resources one declares."""
    evaluate(stack)  # imports and first-run caches are not what is measured
    times = []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = evaluate(stack)
        times.append(time.perf_counter() - start)
        if result.error is not None:
            raise SystemExit(f"{stack}: {result.error}")
        count = len(result.resources)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for stack in stack_names():
        seconds, count = median_seconds(stack, args.runs)
        print(f"{stack:>8}: median {seconds * 1000:7.1f} ms over {args.runs} runs, {count} resources")


if __name__ == "__main__":
    main()
