"""The gateway's Lua filter, run in LuaJIT (Envoy's Lua runtime) on request bodies.

Every streamed request must leave the gateway with `stream_options.include_usage: true`
(else the simulator's stream carries no usage and the token limits count nothing), and
every other request must pass byte for byte. The oracle is Python's json module, which
reads duplicate keys and escapes as the servers' decoders do.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.serving.gateway import STREAM_USAGE_LUA

RUNNER = Path(__file__).parent / "lua" / "run_filter.lua"


def _run(luajit: str, requests: list[tuple[str, bytes]], tmp_path: Path) -> list[tuple[bytes, str]]:
    for i, (method, body) in enumerate(requests):
        (tmp_path / f"{i}.method").write_text(method)
        (tmp_path / f"{i}.body").write_bytes(body)
    done = subprocess.run(
        [luajit, str(RUNNER), str(STREAM_USAGE_LUA), str(tmp_path), str(len(requests))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [
        ((tmp_path / f"{i}.out").read_bytes(), (tmp_path / f"{i}.length").read_text())
        for i in range(len(requests))
    ]


def _expected(body: bytes) -> Any:
    """What the model server must receive, decoded; None: the body must pass unchanged."""
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict) or request.get("stream") is not True:
        return None
    options = request.get("stream_options")
    if options is None:
        request["stream_options"] = {"include_usage": True}
    elif isinstance(options, dict):
        if options.get("include_usage") is True:
            return None
        options["include_usage"] = True
    else:
        return None
    return request


def _check(luajit: str, cases: list[bytes], tmp_path: Path) -> None:
    for body, (out, length) in zip(cases, _run(luajit, [("POST", b) for b in cases], tmp_path), strict=True):
        expected = _expected(body)
        if expected is None:
            assert out == body, f"changed a request that must pass: {body!r} -> {out!r}"
            assert length == ""
        else:
            assert json.loads(out) == expected, f"{body!r} -> {out!r}"
            assert length == str(len(out)), "content-length must follow the new body"


CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({**CHAT, "stream": True}),
        json.dumps({**CHAT, "stream": True}, indent=2),
        json.dumps({"stream": True, **CHAT}, separators=(",", ":")),
        '\n {"stream" :\ttrue , "model":"m"}\r\n',
        json.dumps({**CHAT, "stream": True, "stream_options": {}}),
        json.dumps({**CHAT, "stream": True, "stream_options": None}),
        json.dumps({**CHAT, "stream": True, "stream_options": {"include_usage": False}}),
        json.dumps(
            {
                **CHAT,
                "stream": True,
                "stream_options": {"continuous_usage_stats": True, "include_usage": None},
            }
        ),
        json.dumps({**CHAT, "stream": True, "stream_options": {"continuous_usage_stats": True}}),
        '{"stream": false, "model": "m", "stream": true}',
        '{"stream": true, "stream_options": {"include_usage": true}, "stream_options": {}}',
        '{"stre\\u0061m": true, "model": "m"}',
        '{"stream": true, "stream_options": {"include_us\\u0061ge": false}}',
        json.dumps(
            {
                "model": "m",
                "messages": [{"role": "user", "content": 'a "}{[ \\" \u00e9 \U0001f600'}],
                "stream": True,
            }
        ),
        json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": 'a "}{[ \\" \u00e9'}], "stream": True},
            ensure_ascii=False,
        ),
    ],
)
def test_a_streamed_request_leaves_the_gateway_asking_for_usage(
    luajit: str, body: str, tmp_path: Path
) -> None:
    assert _expected(body.encode()) is not None
    _check(luajit, [body.encode()], tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(CHAT),
        json.dumps({**CHAT, "stream": False}),
        json.dumps({**CHAT, "stream": "true"}),
        json.dumps({**CHAT, "stream": 1}),
        json.dumps({**CHAT, "stream": True, "stream_options": {"include_usage": True}}),
        json.dumps({**CHAT, "stream": True, "stream_options": "yes"}),
        '{"stream": true, "model": "m", "stream": false}',
        # decoys: "stream" inside strings and nested objects, not at the top
        json.dumps({"model": "m", "messages": [{"role": "user", "content": '{"stream": true}'}]}),
        json.dumps({"model": "m", "tools": [{"parameters": {"stream": True}}]}),
        json.dumps([{"stream": True}]),
        '{"stream": true',
        '{"stream": true} trailing',
        '{"stream": true,}',
        "not json",
    ],
)
def test_every_other_request_passes_byte_for_byte(luajit: str, body: str, tmp_path: Path) -> None:
    assert _expected(body.encode()) is None
    _check(luajit, [body.encode()], tmp_path)


def test_gets_and_empty_bodies_are_not_touched(luajit: str, tmp_path: Path) -> None:
    streamed = json.dumps({**CHAT, "stream": True}).encode()
    (get, _), (empty, _) = _run(luajit, [("GET", streamed), ("POST", b"")], tmp_path)
    assert get == streamed
    assert empty == b""


def _value(rng: random.Random, depth: int) -> Any:
    kinds = ["str", "num", "bool", "null"] + (["obj", "list"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(['"stream": true', "}{][", 'quote " and \\ slash', "é\u2028😀", "stream", ""])
    if kind == "num":
        return rng.choice([0, -1, 3.5, 1e21, 12345678901234567890])
    if kind == "bool":
        return rng.choice([True, False])
    if kind == "null":
        return None
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        rng.choice(["stream", "stream_options", "include_usage", "model", "x"]): _value(rng, depth + 1)
        for _ in range(rng.randint(0, 3))
    }


def _request(rng: random.Random) -> bytes:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": _value(rng, 2)}]}
    for _ in range(rng.randint(0, 4)):
        body[rng.choice(["stream", "stream_options", "n", "tools", "user"])] = rng.choice(
            [True, False, None, {}, {"include_usage": rng.choice([True, False])}, _value(rng, 1)]
        )
    if rng.random() < 0.5:
        body["stream"] = True
    encoded = json.dumps(
        body,
        indent=rng.choice([None, 1, "\t"]),
        separators=rng.choice([(",", ":"), (", ", ": "), (" ,", " : ")]),
        ensure_ascii=rng.choice([True, False]),
    )
    return encoded.encode()


def test_a_thousand_generated_requests(luajit: str, tmp_path: Path) -> None:
    rng = random.Random(20261128)
    cases = [_request(rng) for _ in range(1000)]
    assert sum(_expected(c) is not None for c in cases) > 100, "the generator must produce streams to force"
    _check(luajit, cases, tmp_path)
