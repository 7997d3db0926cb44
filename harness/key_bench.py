"""Keys minted and listed through the key service against the stand-in Kubernetes API:
`python -m harness.key_bench [--keys N]` (`make key-bench` runs 10,000).

Prints the time per mint and per list, what the service's memory grows by per key, the
bytes each key's Secret takes, and what Authorino holds per key by `authorino_bytes_per_key`.
The service runs as its own process (components/access/key_service/server.py); the stand-in
(tests/support/kube_api.py) runs in this one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.key_service import NAMESPACE, key_service
from tests.support.kube_api import kube_api

MAX_KEYS = 5


def authorino_bytes_per_key(secret_bytes: int, evaluators_matching: int, authconfigs: int) -> int:
    """What every Authorino replica holds per key: one k8s.Secret copy in each apiKey
    evaluator whose selector matches it, in each AuthConfig (Kuadrant/authorino@v0.26.2
    pkg/evaluators/identity/api_key.go: `secrets map[string]k8s.Secret`, filled by
    appendK8sSecretBasedIdentity), plus one in the controller-runtime informer cache, which
    holds every Secret the process can see (Kuadrant/authorino@v0.26.2 main.go sets no cache
    filter). With one apiKey rule per tier a key matches one evaluator per AuthConfig."""
    return secret_bytes * (1 + evaluators_matching * authconfigs)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass(frozen=True)
class Result:
    keys: int
    mint_ms: float
    list_ms: float
    admin_list_s: float
    rss_growth_bytes_per_key: float
    rss_after_admin_list_mib: float
    secret_bytes: int


def run(keys: int) -> Result:
    """Mint `keys` keys (MAX_KEYS per user), then list each user's keys and every key."""
    users = [f"user-{n:05d}" for n in range(-(-keys // MAX_KEYS))]
    tiers = {"bench": {"maxKeys": MAX_KEYS, "maxLifetimeDays": 90}}
    with (
        kube_api() as kube,
        tempfile.TemporaryDirectory() as tmp,
        key_service(kube, Path(tmp), tiers) as service,
    ):
        before = _rss_kib(service.process.pid)
        start = time.perf_counter()
        for n in range(keys):
            reply = service.call(
                "POST", "/v1/api-keys", {"name": f"k{n}"}, user=users[n // MAX_KEYS], tier="bench"
            )
            assert reply.status == 201, reply
        minted = time.perf_counter() - start
        start = time.perf_counter()
        for user in users:
            assert service.call("GET", "/v1/api-keys", user=user, tier="bench").status == 200
        listed = time.perf_counter() - start
        # Before the admin list, whose one large response the allocator keeps afterwards.
        after = _rss_kib(service.process.pid)
        start = time.perf_counter()
        every = service.call("GET", "/v1/admin/api-keys", user="root", admin=True)
        admin_listed = time.perf_counter() - start
        assert len(every.body["data"]) == keys
        peak = _rss_kib(service.process.pid)
        stored = kube.store.secrets(NAMESPACE)
        secret_bytes = round(sum(len(json.dumps(s)) for s in stored) / len(stored))
    return Result(
        keys=keys,
        mint_ms=minted / keys * 1000,
        list_ms=listed / len(users) * 1000,
        admin_list_s=admin_listed,
        rss_growth_bytes_per_key=(after - before) * 1024 / keys,
        rss_after_admin_list_mib=peak / 1024,
        secret_bytes=secret_bytes,
    )


def report(result: Result, authconfigs: int) -> str:
    held = authorino_bytes_per_key(result.secret_bytes, 1, authconfigs)
    return "\n".join(
        [
            f"keys: {result.keys} ({MAX_KEYS} per user)",
            f"mint: {result.mint_ms:.2f} ms per key",
            f"list own keys: {result.list_ms:.2f} ms per user",
            f"admin list of every key: {result.admin_list_s:.2f} s",
            f"service memory growth over mints and lists: {result.rss_growth_bytes_per_key:.0f} bytes per key"
            " (RSS; the service keeps nothing per key)",
            f"service RSS after one admin list of every key: {result.rss_after_admin_list_mib:.1f} MiB",
            f"Secret per key: {result.secret_bytes} bytes as JSON (the stand-in adds no managedFields)",
            f"Authorino per key per replica, {authconfigs} AuthConfig(s): {held} bytes;"
            f" {held * result.keys / 2**20:.1f} MiB for these keys",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--authconfigs", type=int, default=1, help="AuthConfigs holding the apiKey rules")
    args = parser.parse_args()
    print(report(run(args.keys), args.authconfigs))


if __name__ == "__main__":
    main()
