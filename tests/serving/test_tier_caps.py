"""Each tier's caps on what one request may ask for, enforced by the gateway's Lua filter in
its second place (after authentication, reading the tier Authorino sets), after its first.

Run in LuaJIT on generated requests, then read by the servers' own decoders (the
simulator's Go request type, vLLM's pydantic model, tests/serving/test_stream_decoders.py):
a request either gets 400 in OpenAI's shape or reaches the server asking for at most the
tier's tokens and choices, whatever it sent (absent, null, over the cap, a string, a float,
re-spelled, repeated).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.config import Rate, TierConfig
from components.names import MODEL_HEADER, TIER_HEADER
from components.pins.upstream import FAIRNESS_HEADER
from components.serving.gateway import COMPLETIONS_DEFAULT_MAX_TOKENS, tier_caps_source
from tests.serving.test_request_body import CATALOG, CHAT, OPENAI_ERROR_KEYS, Request, Result, _run
from tests.serving.test_stream_decoders import vllm_request
from tests.support.configs import simulator

TIERS = (
    TierConfig(name="free", requests=(Rate(limit=5, window="1m"),), tokens=(Rate(limit=10_000, window="1m"),),
               maxTokens=100, maxChoices=1),
    TierConfig(name="gold", requests=(Rate(limit=5, window="1m"),), tokens=(Rate(limit=10_000, window="1m"),),
               maxTokens=2000, maxChoices=3),
)  # fmt: skip
CAPS = {t.name: (t.max_tokens, t.max_choices) for t in TIERS}
SMALLEST = (100, 1)
HOST = "small.maas.local:8000"
# The first place's catalog (test_request_body.CATALOG, simulators), and a vLLM model.
VLLM = simulator("big", servedModelName="org/big").model_copy(update={"runtime": "vllm"})
MODELS = (*CATALOG, VLLM)


def _capped(luajit: str, tmp_path: Path, requests: list[Request]) -> list[Result]:
    """Both places of the filter, as Envoy runs them: before authentication, then after it."""
    first = _run(luajit, requests, tmp_path / "first")
    passed = [
        Request(result.body, path=request.path, host=request.host, headers=request.headers)
        for request, result in zip(requests, first, strict=True)
    ]
    second = _run(luajit, passed, tmp_path / "second", tier_caps_source(TIERS, MODELS))
    return [a if a.reply else b for a, b in zip(first, second, strict=True)]


def _tier(name: str | None) -> tuple[tuple[str, str], ...]:
    return ((TIER_HEADER, name),) if name else ()


def _refused(result: Result, code: str) -> None:
    assert result.reply is not None, result.body
    status, content_type, error = result.reply
    assert (status, content_type) == ("400", "application/json")
    assert set(error["error"]) == OPENAI_ERROR_KEYS
    assert error["error"]["code"] == code


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("tier", "extra", "expected"),
    [
        ("free", {}, 100),
        ("gold", {}, 2000),
        (None, {}, 100),  # no tier header: the smallest caps
        ("free", {"max_tokens": None}, 100),
        ("gold", {"max_tokens": 2000}, 2000),
        ("gold", {"max_completion_tokens": 5}, 5),
        ("gold", {"n": 3}, 2000),
    ],
)
def test_a_chat_request_within_the_caps_reaches_the_server_capped(
    luajit: str, dirs: Path, tier: str | None, extra: dict[str, Any], expected: int
) -> None:
    body = json.dumps({**CHAT, **extra}).encode()
    (result,) = _capped(luajit, dirs, [Request(body, host=HOST, headers=_tier(tier))])
    assert result.reply is None
    sent = json.loads(result.body)
    assert sent.get("max_completion_tokens") or sent["max_tokens"] == expected


@pytest.mark.parametrize(
    ("tier", "extra"),
    [
        ("free", {"max_tokens": 101}),
        ("gold", {"max_tokens": 2001}),
        ("gold", {"max_completion_tokens": 10**9}),
        ("free", {"n": 2}),
        ("gold", {"n": 4}),
        (None, {"max_tokens": 2000}),
        ("gold", {"max_tokens": "100"}),  # vLLM's pydantic would read 100
        ("gold", {"max_tokens": 100.0}),
        ("gold", {"max_tokens": -1}),
    ],
)
def test_a_request_over_its_tiers_caps_is_refused(
    luajit: str, dirs: Path, tier: str | None, extra: dict[str, Any]
) -> None:
    body = json.dumps({**CHAT, **extra}).encode()
    (result,) = _capped(luajit, dirs, [Request(body, host=HOST, headers=_tier(tier))])
    _refused(result, "over_tier_cap")


def test_completions_get_the_endpoints_default_and_embeddings_pass(luajit: str, dirs: Path) -> None:
    prompt = {"model": "m", "prompt": "Hi"}
    completions = json.dumps(prompt).encode()
    only_chat_field = json.dumps({**prompt, "max_completion_tokens": 50}).encode()
    embeddings = json.dumps({"model": "m", "input": "Hi"}).encode()
    gold = _tier("gold")
    filled, still_filled, passed = _capped(
        luajit,
        dirs,
        [
            Request(completions, host=HOST, path="/v1/completions", headers=gold),
            Request(only_chat_field, host=HOST, path="/v1/completions", headers=gold),
            Request(embeddings, host=HOST, path="/v1/embeddings", headers=gold),
        ],
    )
    assert json.loads(filled.body)["max_tokens"] == COMPLETIONS_DEFAULT_MAX_TOKENS
    # /v1/completions reads max_tokens only: max_completion_tokens does not bound it
    assert json.loads(still_filled.body)["max_tokens"] == COMPLETIONS_DEFAULT_MAX_TOKENS
    assert passed.body == embeddings


def _value(rng: random.Random, cap: int) -> str:
    if rng.random() < 0.7:
        return rng.choice(["null", "0", "1", str(cap - 1), str(cap)])
    return rng.choice([str(cap + 1), "1000000", '"50"', "50.0", "-1", "1e2"])


def _body(rng: random.Random, tokens: int, choices: int) -> bytes:
    members = ['"model": "m"', '"messages": [{"role": "user", "content": "max_tokens"}]']
    spellings = {
        "max_tokens": ["max_tokens", "Max_Tokens", "MAX_TOKENS", "max_token\u017f"],
        "max_completion_tokens": ["max_completion_tokens", "Max_Completion_Tokens"],
        "n": ["n", "N"],
    }
    for name, options in spellings.items():
        for _ in range(rng.choice([0, 0, 1, 1, 1, 1, 2])):
            key = rng.choice(options) if rng.random() < 0.15 else name
            members.append(f'"{key}": {_value(rng, choices if name == "n" else tokens)}')
    rng.shuffle(members)
    return ("{" + ", ".join(members) + "}").encode()


def test_no_generated_request_reaches_a_server_over_its_tiers_caps(
    luajit: str, simulator_decoder: Callable[[list[bytes]], list[dict[str, Any]]], dirs: Path
) -> None:
    rng = random.Random(2026)
    tiers = [rng.choice([*CAPS, None]) for _ in range(800)]
    bodies = [_body(rng, *CAPS.get(tier or "", SMALLEST)) for tier in tiers]
    requests = [Request(b, host=HOST, headers=_tier(t)) for b, t in zip(bodies, tiers, strict=True)]
    results = _capped(luajit, dirs, requests)
    read = simulator_decoder([r.body for r in results])
    served = 0
    for tier, body, result, go in zip(tiers, bodies, results, read, strict=True):
        tokens, choices = CAPS.get(tier or "", SMALLEST)
        if result.reply is not None:
            assert result.reply[2]["error"]["code"] in {"over_tier_cap", "invalid_stream_parameters"}, body
            continue
        served += 1
        if go["ok"]:
            assert go["max_tokens"] is not None, (body, result.body)
            assert go["max_tokens"] <= tokens, (body, result.body)
            assert go["n"] is None or go["n"] <= choices, (body, result.body)
        vllm = vllm_request(result.body)
        if vllm is not None:
            # as vLLM has read the two fields: `is not None`, and `or`
            for asked in (
                vllm.max_tokens if vllm.max_completion_tokens is None else vllm.max_completion_tokens,
                vllm.max_completion_tokens or vllm.max_tokens,
            ):
                assert asked is not None, (body, result.body)
                assert asked <= tokens, (body, result.body)
            assert (vllm.n or 1) <= choices, (body, result.body)
    assert served > 150, served


@pytest.mark.parametrize(
    ("model", "headers", "salt"),
    [
        ("org/big", ((FAIRNESS_HEADER, 'alice "a"'),), 'user:alice "a"'),  # a pooled vLLM model: the user
        ("org/big", (), "tier:gold"),  # not pooled: no user at the gateway, the tier
        ("org/small-model", ((FAIRNESS_HEADER, "alice"),), None),  # the simulator has no prefix cache
    ],
)
def test_vllms_prefix_cache_is_salted_per_user_whatever_the_client_sends(
    luajit: str, tmp_path: Path, model: str, headers: tuple[tuple[str, str], ...], salt: str | None
) -> None:
    """The salt is the gateway's: a client's own cache_salt (another user's, say) is replaced."""
    body = json.dumps({**CHAT, "max_tokens": 10, "cache_salt": "user:bob"}).encode()
    request = Request(body, host=HOST, headers=((TIER_HEADER, "gold"), (MODEL_HEADER, model), *headers))
    (result,) = _run(luajit, [request], tmp_path, tier_caps_source(TIERS, MODELS))
    assert result.reply is None
    read = vllm_request(result.body)
    assert read is not None
    assert read.model_extra is not None
    assert read.model_extra["cache_salt"] == (salt or "user:bob")
