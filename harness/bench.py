"""Median time to evaluate each stack under mocks, and how it grows: `python -m harness.bench`.

Besides every stack file, synthetic `dev` variants show growth with the catalog (50
models; then 50 models by 10 tiers, every other model restricted to some tiers; then 20
pooled models by 10 tiers) and with users (5, 100, 1,000): resources per model and per user
stay fixed, the policy objects do not grow with users, the AuthPolicy's rules grow with
restricted models, not with models times tiers, and pooled models add one objective per
tier each.

First it prints what Kuadrant would generate for synthetic catalogs of 20, 50 and 100
models at 3 and 10 tiers (maas_policies/kuadrant_size.py): the wasm config's EnvoyFilter,
the largest AuthConfig and Limitador's limits ConfigMap, each against its cap.

Last, 1,000 users of 10 tiers on 20 models (some restricted, some with a quota of their own,
some tiers with budgets) against the SDK's floor: the CPU time the same SDK under the same
mocks takes to declare as many one-key ConfigMaps (`versus_floor`), and the ratio.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi_kubernetes as k8s

from harness.program import Evaluation, evaluate, stack_config, stack_names
from maas_policies import kuadrant_size


def median_seconds(
    stack: str, runs: int, config: Mapping[str, Any] | None = None
) -> tuple[float, int, int, int]:
    """Median wall time of `runs` evaluations, resources declared, Kuadrant objects among
    them, and the AuthPolicy's authorization rules."""
    evaluate(stack, config)  # imports and first-run caches are not what is measured
    times = []
    count = policies = rules = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = evaluate(stack, config)
        times.append(time.perf_counter() - start)
        if result.error is not None:
            raise SystemExit(f"{stack}: {result.error}")
        count = len(result.resources)
        policies = policy_objects(result)
        rules = sum(
            len(r.inputs["spec"]["rules"].get("authorization", {})) for r in result.objects("AuthPolicy")
        )
    return statistics.median(times), count, policies, rules


def policy_objects(result: Evaluation) -> int:
    """Kuadrant's objects declared: RateLimitPolicy, TokenRateLimitPolicy, AuthPolicy and the rest."""
    return len([r for r in result.objects() if "kuadrant.io/" in r.inputs["apiVersion"]])


def crowded(users: int, models: int = 20, tiers: int = 10) -> dict[str, Any]:
    """`dev` with `users` users spread over `tiers` tiers and `models` simulators: every other
    model restricted to the upper tiers, every fourth with its own quota in its lowest tier,
    tokens limited per minute and per day, the upper half of the tiers priced with a daily
    budget (a day: what `dev`'s Prometheus keeps)."""
    names = [f"t{i}" for i in range(tiers)]
    table = [
        {"name": name, "requests": {"limit": 10 * (i + 1), "window": "1m"},
         "tokens": [{"limit": 1000 * (i + 1), "window": "1m"}, {"limit": 100_000 * (i + 1), "window": "24h"}]}
        for i, name in enumerate(names)
    ]  # fmt: skip
    listed: list[dict[str, Any]] = []
    for i in range(models):
        entry: dict[str, Any] = {"name": f"m{i}", "host": f"m{i}", "runtime": "simulator"}
        allowed = names[i % tiers :] if i % 2 else names
        if i % 2:
            entry["tiers"] = allowed
        if i % 4 == 1:
            own = {"requests": {"limit": 2, "window": "1m"}, "tokens": {"limit": 500, "window": "1m"}}
            entry["limits"] = {allowed[0]: own}
        listed.append(entry)
    paying = names[tiers // 2 :]
    prices = {
        "currency": "USD",
        "tiers": {name: {"perThousandTokens": 0.001 * (i + 1)} for i, name in enumerate(paying)},
        "budgets": {
            "tiers": {name: [{"amount": 10.0 * (i + 1), "window": "24h"}] for i, name in enumerate(paying)}
        },
    }
    return {
        **stack_config("dev"),
        "maas:models": listed,
        "maas:tiers": table,
        "maas:users": [{"name": f"user{i}", "tier": names[i % tiers]} for i in range(users)],
        "maas:prices": prices,
    }


def floor(count: int) -> Callable[[], None]:
    """A program that declares `count` ConfigMaps of one key each: what the SDK charges per
    resource and nothing a program adds. Each is a custom resource of the provider SDK the
    program uses, so it pays the whole registration: the resource's constructor and
    `register_resource` (pulumi/pulumi@v3.272.0 sdk/python/lib/pulumi/runtime/resource.py
    `register_resource`, `prepare_resource`: stack trace, URN, inputs serialized, outputs
    resolved) and the mock monitor's round trip (pulumi/pulumi@v3.272.0
    sdk/python/lib/pulumi/runtime/mocks.py `MockMonitor.RegisterResource`: inputs decoded, the
    mocks' `new_resource`, state encoded), recorded by harness/program.py as the program's are.
    A ComponentResource would skip the provider's half (no `new_resource`, no outputs to
    resolve), while the program's resources are nearly all custom."""

    def program() -> None:
        for index in range(count):
            k8s.core.v1.ConfigMap(f"floor-{index}", data={"key": "value"})

    return program


@dataclass(frozen=True)
class Versus:
    """Median CPU seconds of the program and of the floor for as many resources."""

    seconds: float
    floor_seconds: float
    resources: int
    policies: int

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_seconds


def versus_floor(config: Mapping[str, Any], runs: int) -> Versus:
    """The program for `dev` with `config`, and the floor for as many resources, run in turns
    `runs` times each after one of each unmeasured (imports, first-run caches). CPU time, not
    wall time: on shared cores other jobs' load shows in wall time and differs from turn to
    turn; the SDK's executor threads are this process's, so their time counts."""
    result = evaluate("dev", config)
    if result.error is not None:
        raise SystemExit(f"dev: {result.error}")
    count, policies = len(result.resources), policy_objects(result)
    del result
    trivial = floor(count)
    evaluate("dev", config, main=trivial)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for is_floor in (False, True):
            gc.collect()  # the previous run's garbage is not this run's cost
            start = time.process_time()
            found = evaluate("dev", config, main=trivial if is_floor else None)
            times[is_floor].append(time.process_time() - start)
            if found.error is not None or len(found.resources) != count:
                raise SystemExit(f"dev: {found.error or f'{len(found.resources)} resources, not {count}'}")
            del found
    return Versus(statistics.median(times[False]), statistics.median(times[True]), count, policies)


def catalog(models: int, tiers: int, stack: str = "dev", both_listeners: bool = False) -> dict[str, Any]:
    """`stack`'s config with a synthetic catalog: `models` simulators, `tiers` tiers; with
    `both_listeners`, served on HTTP and HTTPS."""
    table = [
        {"name": f"tier{i}", "requests": {"limit": 10 * (i + 1), "window": "1m"},
         "tokens": {"limit": 1000 * (i + 1), "window": "1m"}}
        for i in range(tiers)
    ]  # fmt: skip
    listed = [{"name": f"model{i}", "host": f"model{i}", "runtime": "simulator"} for i in range(models)]
    config = {
        **stack_config(stack),
        "maas:models": listed,
        "maas:tiers": table,
        # one user: a stack nobody could call is refused
        "maas:users": [{"name": "user0", "tier": "tier0"}],
        "maas:prices": {},
    }
    if both_listeners:
        config["maas:gateway"] = {"https": {"enabled": True, "only": False}}
    return config


def sizes(stack: str, config: Mapping[str, Any] | None = None) -> kuadrant_size.Estimate:
    """Kuadrant's generated configuration for the stack's one gateway."""
    result = evaluate(stack, config)
    if result.error is not None:
        raise SystemExit(f"{stack}: {result.error}")
    (found,) = kuadrant_size.estimate(r.inputs for r in result.objects()).values()
    return found


def _percent(size: int, cap: int) -> str:
    return f"{size:>10,} B {100 * size / cap:5.1f}%"


def print_sizes() -> None:
    print("Kuadrant's generated configuration on HTTP and HTTPS, stored, and its share of the cap:")
    print(
        f"{'catalog':>12}  {'wasm config (1.5 MiB)':>22}  {'largest AuthConfig':>22}  {'limits (1 MiB)':>22}"
    )
    for models in (20, 50, 100):
        for tiers in (3, 10):
            found = sizes("dev", catalog(models, tiers, both_listeners=True))
            label = f"{models} x {tiers}"
            print(
                f"{label:>12}  {_percent(found.wasm_config_bytes, kuadrant_size.ETCD_OBJECT_CAP)}"
                f"  {_percent(found.auth_config_bytes, kuadrant_size.ETCD_OBJECT_CAP)}"
                f"  {_percent(found.limits_bytes, kuadrant_size.CONFIGMAP_CAP)}"
            )


def _scenarios(runs: int, models: int) -> list[tuple[str, str, Mapping[str, Any] | None, int]]:
    dev = stack_config("dev")
    catalog = [{"name": f"m{i}", "host": f"m{i}", "runtime": "simulator"} for i in range(models)]
    found: list[tuple[str, str, Mapping[str, Any] | None, int]] = [(s, s, None, runs) for s in stack_names()]
    found.append((f"dev+{models}models", "dev", {**dev, "maas:models": catalog}, runs))
    tiers = [
        {"name": f"t{i}", "requests": {"limit": 10 * (i + 1), "window": "1m"},
         "tokens": {"limit": 1000 * (i + 1), "window": "1m"}}
        for i in range(10)
    ]  # fmt: skip
    names = [t["name"] for t in tiers]
    restricted = [{**m, "tiers": names[i % 10 :]} if i % 2 else m for i, m in enumerate(catalog)]
    # One user: a stack nobody could call is refused (StackConfig.cross_problems).
    one_user = [{"name": "user0", "tier": "t0"}]
    wide = {**dev, "maas:models": restricted, "maas:tiers": tiers, "maas:users": one_user, "maas:prices": {}}
    found.append((f"dev+{models}models-10tiers", "dev", wide, runs))
    # Pooled models: a picker, a pool and one objective per tier each.
    pooled = [{**m, "scheduling": "pool"} for m in catalog[:20]]
    found.append(("dev+20pooled-10tiers", "dev", {**wide, "maas:models": pooled}, runs))
    for users in (5, 100, 1000):
        listed = [{"name": f"user{i}", "tier": "free"} for i in range(users)]
        found.append(
            (f"dev+{users}users", "dev", {**dev, "maas:users": listed}, max(3, runs // (users // 100 + 1)))
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()
    print_sizes()
    for label, stack, config, runs in _scenarios(args.runs, args.models):
        seconds, count, policies, rules = median_seconds(stack, runs, config)
        print(
            f"{label:>24}: median {seconds * 1000:8.1f} ms over {runs:2} runs, "
            f"{count:5} resources, {policies} Kuadrant policy objects, {rules} authorization rules"
        )
    found = versus_floor(crowded(1000), max(3, args.runs // 5))
    print(
        f"{'dev+1000users-20models-10tiers':>24}: median {found.seconds * 1000:8.1f} ms CPU, "
        f"{found.resources:5} resources, {found.policies} Kuadrant policy objects; the SDK's floor "
        f"({found.resources} one-key ConfigMaps) {found.floor_seconds * 1000:.1f} ms CPU: {found.ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
