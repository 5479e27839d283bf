"""Seeded fuzzing of how ``MCPAuth`` finds the tools a body calls, against the SDK's own
parsers (``json.loads`` for 2026-07-28, ``pydantic_core.from_json`` for the handshake
revisions): whatever the spelling (escapes, encodings, BOMs, surrogates, batches, duplicated
members, names inside arguments), a call either parser reads of a tool out of the token's
reach is always parsed, never passed on unread, and is seen or taken as a call of any tool."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pydantic_core
import pytest

from oauthguard._mcp.calls import header_tools, may_name, tools_called

ROUNDS = 4000
TOOLS = ["admin", "whoami", "a/b", 'say "hi"', "back\\slash", "été", "日本", "\u2028", "x", "😀x"]
OUT_OF_REACH = ["admin", 'say "hi"', "été", "a/b", "back\\slash", "\u2028", "😀x"]
NEEDLES = [json.dumps(name, ensure_ascii=False).encode() for name in OUT_OF_REACH]
#: The parsers the SDK reads a POST body with, called as it calls them.
SDK_PARSERS: list[Callable[[bytes], Any]] = [json.loads, pydantic_core.from_json]


def spell(rng: random.Random, text: str) -> str:
    """A JSON string literal for ``text``: mostly as a client writes it, otherwise with
    characters escaped at random, now and then with a lone surrogate escape."""
    if rng.random() < 0.6:
        return json.dumps(text, ensure_ascii=rng.random() < 0.2)
    out = []
    for char in text:
        plain = json.dumps(char, ensure_ascii=False)[1:-1]  # escaped only where JSON must
        choice = rng.randrange(8)
        if choice == 0:
            out.append(json.dumps(char)[1:-1])  # \uXXXX, a surrogate pair beyond the BMP
        elif choice == 1 and char == "/":
            out.append("\\/")
        elif choice == 2 and rng.random() < 0.05:
            out.append(plain + rng.choice(["\\ud800", "\\udc00", "\\uDBFF", "\\\\ud800"]))
        else:
            out.append(plain)
    return '"' + "".join(out) + '"'


def message(rng: random.Random) -> str:
    """One JSON-RPC message as text: a tools/call or another method, tool names in odd
    places, members sometimes given twice, arguments sometimes deep."""
    method = spell(rng, rng.choice(["tools/call", "tools/call", "tools/list", "ping"]))
    name = spell(rng, rng.choice(TOOLS))
    decoy = spell(rng, rng.choice(TOOLS))
    depth = rng.choice([1] * 12 + [200, 300, 1100])
    arguments = f'{{"about": {decoy}, "deep": {"[" * depth}{"]" * depth}}}'
    params = [f'"name": {name}', f'"arguments": {arguments}']
    if rng.random() < 0.15:  # parsers differ on which duplicate counts
        params.insert(rng.randrange(3), f'"name": {spell(rng, rng.choice(TOOLS))}')
    members = [
        '"jsonrpc": "2.0"',
        f'"id": {rng.randrange(100)}',
        f'"method": {method}',
        f'"params": {{{", ".join(params)}}}',
    ]
    if rng.random() < 0.15:
        members.insert(rng.randrange(len(members)), f'"method": {spell(rng, "ping")}')
    rng.shuffle(members)
    return "{" + ", ".join(members) + "}"


def encode(rng: random.Random, text: str) -> bytes:
    """``text`` as bytes: mostly UTF-8, otherwise with a BOM, in UTF-16/32 with or without
    one, or with surrogates written raw."""
    if rng.random() < 0.7:
        return text.encode()
    picked = rng.choice(
        ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "raw"]
    )
    if picked == "raw":  # each \ud800 escape as the (invalid UTF-8) bytes it stands for
        return text.replace("\\ud800", "\ud800").encode("utf-8", "surrogatepass")
    return text.encode(picked, "surrogatepass")


def body(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        text = "[" + ", ".join(message(rng) for _ in range(rng.randrange(1, 4))) + "]"
    else:
        text = message(rng)
    return encode(rng, text)


def calls_in(message: Any) -> list[str]:
    items = message if isinstance(message, list) else [message]
    return [
        item["params"]["name"]
        for item in items
        if isinstance(item, dict)
        and item.get("method") == "tools/call"
        and isinstance(item.get("params"), dict)
        and isinstance(item["params"].get("name"), str)
    ]


def sdk_calls(raw: bytes) -> set[str]:
    """The tools any of the SDK's parsers reads the body to call."""
    names: set[str] = set()
    for parse in SDK_PARSERS:
        try:
            names.update(calls_in(parse(raw)))
        except (ValueError, RecursionError):
            pass
    return names


def test_a_call_the_sdk_reads_of_a_tool_out_of_reach_is_never_missed() -> None:
    rng = random.Random(8259)
    calls = skipped = read = unread = 0
    for _ in range(ROUNDS):
        raw = body(rng)
        seen = tools_called(raw)
        if seen is None:
            unread += 1
        else:
            read += 1
        out_of_reach = sdk_calls(raw) & set(OUT_OF_REACH)
        if out_of_reach:
            calls += 1
            assert may_name(raw, NEEDLES), raw
            assert seen is None or out_of_reach <= set(seen), raw
        elif not may_name(raw, NEEDLES):
            skipped += 1
    # The fuzzing reached every side: real calls, bodies rightly passed on unread, bodies
    # read with certainty and bodies that may call any tool.
    assert calls > ROUNDS // 20 and skipped > ROUNDS // 50, (calls, skipped, read, unread)
    assert read > ROUNDS // 4 and unread > ROUNDS // 4, (calls, skipped, read, unread)


def test_plain_bodies_are_read_as_the_sdk_reads_them() -> None:
    # The strict reading refuses nothing a client writes: UTF-8, escapes, surrogate pairs.
    rng = random.Random(7159)
    for _ in range(500):
        text = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": rng.choice(TOOLS), "arguments": {"x": rng.choice(TOOLS)}},
            },
            ensure_ascii=rng.random() < 0.5,
        )
        raw = text.encode()
        assert (
            tools_called(raw) == calls_in(json.loads(raw)) == calls_in(pydantic_core.from_json(raw))
        )


@pytest.mark.parametrize(
    ("text", "lone"),
    [
        ('"\\ud83d\\ude00"', False),  # a pair, as ensure_ascii writes beyond the BMP
        ('"\\uD83D\\uDE00 \\u00e9 \\n"', False),
        ('"\\ud800"', True),
        ('"\\udc00"', True),
        ('"\\ude00\\ud83d"', True),  # low before high: two lone halves
        ('"\\ud800\\ud83d\\ude00"', True),  # a lone high, then a pair
        ('"\\\\\\ud800"', True),  # an escaped backslash, then an escape
        ('"\\\\ud83d\\ude00"', True),  # an escaped backslash, text, then a lone low half
        ('"\\\\ud800"', False),  # an escaped backslash, then text
        ('"ud800"', False),
    ],
)
def test_lone_surrogate_escapes_are_found(text: str, lone: bool) -> None:
    body = ('{"method": "tools/call", "params": {"name": "admin", "x": ' + text + "}}").encode()
    assert (tools_called(body) is None) is lone
    assert may_name(body, NEEDLES)


@pytest.mark.parametrize(
    "codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_a_body_not_in_plain_utf8_may_name_anything(codec: str) -> None:
    # No backslash and no UTF-8 form of the tool's name, yet json.loads reads the call.
    body = '{"method": "tools/call", "params": {"name": "admin"}}'.encode(codec)
    assert b"\\" not in body and (NEEDLES[0] not in body or codec == "utf-8-sig")
    assert calls_in(json.loads(body)) == ["admin"]
    assert may_name(body, NEEDLES) and tools_called(body) is None


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ([], []),
        ([(b"mcp-name", b"admin")], ["admin", "admin"]),
        ([(b"Mcp-Name", b"admin")], []),  # as the SDK reads names: lowercase, as ASGI sends
        ([(b"mcp-name", b"=?base64?YWRtaW4=?=")], ["=?base64?YWRtaW4=?=", "admin"]),
        ([(b"mcp-name", b"=?base64?YWRtaW4?=")], None),  # not canonical base64: undecodable
        ([(b"mcp-method", b"prompts/get"), (b"mcp-name", b"admin")], []),
        ([(b"mcp-method", b"resources/read"), (b"mcp-name", b"admin")], []),
        ([(b"mcp-method", b"Prompts/Get"), (b"mcp-name", b"admin")], ["admin", "admin"]),
        ([(b"mcp-protocol-version", b"2025-11-25")], []),
        ([(b"mcp-protocol-version", b"2026-07-28"), (b"mcp-name", b"x")], ["x", "x"]),
        ([(b"mcp-protocol-version", b"2027-01-01")], None),
    ],
)
def test_the_tools_mcp_headers_name(headers: list[tuple[bytes, bytes]], named: Any) -> None:
    assert header_tools(headers) == named
