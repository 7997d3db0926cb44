"""The gateway's Lua filter against the decoders the model servers really use.

The filter decides whether a request is a stream and, if so, makes it ask for usage. The
servers decide for themselves: the simulator with Go's encoding/json (case-insensitive keys,
long s (U+017F) for s, the last duplicate, `null` ignored for a bool), vLLM with json.loads and pydantic
(exact keys, the last duplicate, lax booleans). Each generated body goes through the real
filter in LuaJIT and, before and after, through both decoders:

- a body that spells `stream`, `stream_options` or `include_usage` other than exactly, as
  Go's decoder still reads it, or gives one twice, is refused with 400 in OpenAI's error
  shape (the servers would read different streams from it);
- otherwise, whatever the simulator reads as a stream carries usage after the filter; a
  body either server accepts, it still accepts after the filter, and vLLM reads the same
  stream; and a body neither server reads as a stream passes byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from tests.serving.test_request_body import OPENAI_ERROR_KEYS, Request, _run


class _StreamOptions(BaseModel):
    """vLLM's StreamOptions (vllm-project/vllm@v0.31.0 vllm/entrypoints/openai/generate/base/protocol.py)."""

    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = True
    continuous_usage_stats: bool | None = False


class _VllmChatRequest(BaseModel):
    """The fields of vLLM's ChatCompletionRequest that the filter reads or writes
    (vllm-project/vllm@v0.31.0 vllm/entrypoints/openai/chat_completion/protocol.py:
    OpenAIBaseModel allows extra fields; `stream: bool | None = False`; validate_stream_options
    refuses stream_options without a stream)."""

    model_config = ConfigDict(extra="allow")
    messages: list[dict[str, Any]]
    model: str | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = 1
    stream: bool | None = False
    stream_options: _StreamOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def validate_stream_options(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("stream_options") and not data.get("stream"):
            raise ValueError("Stream options can only be defined when `stream=True`.")
        return data


def vllm_request(body: bytes) -> _VllmChatRequest | None:
    """The request as vLLM reads the body (FastAPI's json.loads, then pydantic), or None
    when vLLM refuses it."""
    try:
        return _VllmChatRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return None


def _vllm(body: bytes) -> tuple[bool, bool]:
    """(accepted, stream) as vLLM reads the body."""
    request = vllm_request(body)
    return request is not None, bool(request and request.stream)


LONG_S = "\u017f"  # folds to s in Go, as the Kelvin sign to k
STREAM = ["stream", "Stream", "STREAM", "sTrEaM", f"{LONG_S}tream", "\\u017ftream", "stre\\u0061m",
          "\\u0053tream", "stream "]  # fmt: skip
OPTIONS = ["stream_options", "Stream_Options", "STREAM_OPTIONS", f"{LONG_S}tream_options",
           f"stream_option{LONG_S}", "stream_\\u006fptions", "streamoptions"]  # fmt: skip
INCLUDE = ["include_usage", "Include_Usage", "INCLUDE_USAGE", f"include_u{LONG_S}age", "include_u\\u017fage",
           "includeusage", "include_usage\\u0000"]  # fmt: skip
BOOLS = ["true", "false", "null", "1", '"true"']


def _options(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.2:
        return rng.choice(["null", "{}", '"yes"'])
    members = [
        f'"{rng.choice(INCLUDE if rng.random() < 0.15 else INCLUDE[:1])}": {rng.choice(BOOLS)}'
        for _ in range(rng.choice([1, 1, 1, 1, 2]))
    ]
    if rng.random() < 0.3:
        members.append('"continuous_usage_stats": true')
    rng.shuffle(members)
    return "{" + ", ".join(members) + "}"


def _body(rng: random.Random) -> bytes:
    """A chat request whose stream members are spelled, repeated and valued every way."""
    members = ['"model": "m"', '"messages": [{"role": "user", "content": "Stream \\"stream\\": true"}]']
    spell = 0.12  # share of re-spelled keys
    for _ in range(rng.choice([0, 1, 1, 1, 1, 1, 2, 3])):
        key = rng.choice(STREAM) if rng.random() < spell else "stream"
        members.append(f'"{key}": {rng.choice(["true", "true", *BOOLS])}')
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
        key = rng.choice(OPTIONS) if rng.random() < spell else "stream_options"
        members.append(f'"{key}": {_options(rng)}')
    if rng.random() < 0.2:
        members.append('"n": 2')
    rng.shuffle(members)
    separator = rng.choice([", ", ",", ",\n  "])
    return ("{" + separator.join(members) + "}").encode()


def _ambiguous(keys: dict[str, list[str]]) -> bool:
    return any(len(found) > 1 or any(k != name for k in found) for name, found in keys.items())


def test_every_spelling_and_duplicate_is_read_as_the_servers_read_it(
    luajit: str, simulator_decoder: Callable[[list[bytes]], list[dict[str, Any]]], tmp_path: Path
) -> None:
    rng = random.Random(26)
    named = [
        b'{"model": "m", "messages": [], "Stream": true}',
        b'{"model": "m", "messages": [], "STREAM": true}',
        f'{{"model": "m", "messages": [], "{LONG_S}tream": true}}'.encode(),
        b'{"model": "m", "messages": [], "stream": true, "Stream_Options": {"include_usage": false}}',
        b'{"model": "m", "messages": [], "stream": true, "stream_options": {"include_u\\u017fage": false}}',
        b'{"model": "m", "messages": [], "stream": true, "stream": null}',
        b'{"model": "m", "messages": [], "stream": true, "stream_options": {}, "stream_options": null}',
    ]
    bodies = named + [_body(rng) for _ in range(1500)]
    results = _run(luajit, [Request(b) for b in bodies], tmp_path)
    before, after = simulator_decoder(bodies), simulator_decoder([r.body for r in results])
    refused = rewritten = 0
    for body, result, go_in, go_out in zip(bodies, results, before, after, strict=True):
        if _ambiguous(go_in["keys"]):
            refused += 1
            assert result.reply is not None, f"not refused: {body!r}"
            status, content_type, error = result.reply
            assert (status, content_type) == ("400", "application/json"), body
            assert set(error["error"]) == OPENAI_ERROR_KEYS
            assert error["error"]["type"] == "invalid_request_error"
            continue
        assert result.reply is None, f"refused: {body!r} {result.reply}"
        rewritten += result.body != body
        if go_out["ok"] and go_out["stream"]:
            assert go_out["usage"], f"the simulator streams without usage: {body!r} -> {result.body!r}"
        # (a malformed include_usage made true is a fix, not a break)
        assert go_out["ok"] or not go_in["ok"], f"the simulator refuses it now: {body!r} -> {result.body!r}"
        vllm_in, vllm_out = _vllm(body), _vllm(result.body)
        assert vllm_out == vllm_in or not vllm_in[0], f"vLLM's reading changed: {body!r} -> {result.body!r}"
        if not (go_in["ok"] and go_in["stream"]) and not vllm_in[1]:
            assert result.body == body, f"changed a request that must pass: {body!r}"
            assert result.length == ""
    # the generator must exercise both paths
    assert refused > 300, refused
    assert rewritten > 150, rewritten
