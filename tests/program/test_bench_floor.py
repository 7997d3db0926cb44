"""Kuadrant's policy objects stay O(tiers + models) as users and the catalog grow: the bench's
1,000 users of 10 tiers on 20 models (harness/bench.py `crowded`) declare as many as 5 users do.

How evaluation compares with the SDK's floor for as many resources is what `make bench` prints
(harness/bench.py `versus_floor`), not a test: issue 30 asks for 1.5x, and it measures
1.66-1.79x (CPU medians of 5-7 turns of 2,157 resources on two shared cores: 7.7-8.3 s against
4.3-4.8 s for as many one-key ConfigMaps), linear in users. 1.5x is about what these resources
alone cost the SDK: a program that declares the same RandomPassword and Secret per user with
the same inputs and nothing else (no config, parent or depends_on; its other resources one-key
ConfigMaps) takes 1.46-1.53x. Per user the SDK makes an Output of four futures per output
property (pulumi/pulumi@v3.272.0 sdk/python/lib/pulumi/runtime/rpc.py `transfer_properties`),
21 (a RandomPassword's 14, a Secret's 7) against 12 for two ConfigMaps, and serializes a
Secret's labels and annotations; the collector is half the gap (4.8 s against 3.0 s: 8 full
passes a run against 6, about 0.45 s each). The program's own code takes under 0.1 s
(cProfile); over the same resources it adds 12-18%: its other 155 resources (0.28 s over the
floor at one user), five more frames in each resource's stack trace (pulumi/pulumi@v3.272.0
sdk/python/lib/pulumi/runtime/resource.py `_get_stack_trace`) and one more full pass. Without
the keys' depends_on, their namespace Output or the apiKeys export it moves within the noise
(0.3 s)."""

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
