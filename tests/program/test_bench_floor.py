"""Kuadrant's policy objects stay O(tiers + models) as users and the catalog grow: the bench's
1,000 users of 10 tiers on 20 models (harness/bench.py `crowded`) declare as many as 5 users do.

How evaluation compares with the SDK's floor for as many resources is what `make bench`
prints (harness/bench.py `versus_floor`), not a test: issue 30 asks for 1.5x, and it measured
1.59-1.8x (CPU medians of 2,157 resources: 5.9-6.9 s against 3.7-4.2 s for as many one-key
ConfigMaps), linear in users. The gap is the garbage collector (3.5-4.0 s against 2.1 s) over
the Output of four futures the SDK makes per output property (pulumi/pulumi@v3.272.0
sdk/python/lib/pulumi/runtime/rpc.py `transfer_properties`): 21 per stack-file user (a
RandomPassword's 14, a Secret's 7) against 12 for two ConfigMaps."""

from __future__ import annotations

from harness.bench import crowded, policy_objects
from harness.program import evaluate


def _evaluated(users: int, models: int = 20, tiers: int = 10) -> tuple[int, int]:
    """(resources, Kuadrant objects) of `dev` crowded so."""
    result = evaluate("dev", crowded(users, models, tiers))
    assert result.error is None, result.error
    return len(result.resources), policy_objects(result)


def test_policy_objects_do_not_grow_with_users_and_at_most_linearly_with_tiers_and_models() -> None:
    resources, thousand = _evaluated(1000)
    assert resources > 2000  # a key and its Secret per user
    _, few_users = _evaluated(5)
    assert thousand == few_users
    # 2 models of 2 tiers -> 20 of 10: at most (20 + 10) / (2 + 2) times the objects; one per
    # model and tier would be 50 times as many.
    _, small = _evaluated(5, 2, 2)
    assert few_users <= small * (20 + 10) / (2 + 2), (small, few_users)
