"""The key benchmark (harness/key_bench.py) at a small N, and Authorino's per-key formula."""

from __future__ import annotations

from harness import key_bench


def test_authorino_holds_one_copy_per_matching_evaluator_per_authconfig_plus_the_cache() -> None:
    assert key_bench.authorino_bytes_per_key(1000, evaluators_matching=1, authconfigs=1) == 2000
    assert key_bench.authorino_bytes_per_key(1000, evaluators_matching=1, authconfigs=3) == 4000
    assert key_bench.authorino_bytes_per_key(1000, evaluators_matching=2, authconfigs=3) == 7000


def test_bench_mints_and_lists_through_the_service() -> None:
    result = key_bench.run(12)
    assert result.keys == 12
    assert result.mint_ms > 0
    assert result.list_ms > 0
    # A key's Secret: labels, annotations and the key itself, well under a KiB.
    assert 500 < result.secret_bytes < 1500
    text = key_bench.report(result, authconfigs=2)
    assert f"{key_bench.authorino_bytes_per_key(result.secret_bytes, 1, 2)} bytes" in text
