"""Seeded fuzzing of how ``MCPAuth`` finds the tools a body calls: whatever the spelling
(escapes, batches, duplicated members, names inside arguments), a body that calls a tool out
of the token's reach is always parsed, never passed on unread."""

from __future__ import annotations

import json
import random
from typing import Any

from oauthguard.mcp import may_name, tools_called

ROUNDS = 3000
TOOLS = ["admin", "whoami", "a/b", 'say "hi"', "back\\slash", "été", "日本", "\u2028", "x"]
OUT_OF_REACH = ["admin", 'say "hi"', "été", "a/b", "back\\slash", "\u2028"]
NEEDLES = [json.dumps(name, ensure_ascii=False).encode() for name in OUT_OF_REACH]


def spell(rng: random.Random, text: str) -> str:
    """A JSON string literal for ``text``: mostly as a client writes it, otherwise with
    characters escaped at random."""
    if rng.random() < 0.7:
        return json.dumps(text, ensure_ascii=rng.random() < 0.2)
    out = []
    for char in text:
        plain = json.dumps(char, ensure_ascii=False)[1:-1]  # escaped only where JSON must
        choice = rng.randrange(6)
        if choice == 0:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else plain)
        elif choice == 1 and char == "/":
            out.append("\\/")
        else:
            out.append(plain)
    return '"' + "".join(out) + '"'


def message(rng: random.Random) -> str:
    """One JSON-RPC message as text: a tools/call or another method, tool names in odd
    places, members sometimes given twice."""
    method = spell(rng, rng.choice(["tools/call", "tools/call", "tools/list", "ping"]))
    name = spell(rng, rng.choice(TOOLS))
    decoy = spell(rng, rng.choice(TOOLS))
    members = [
        '"jsonrpc": "2.0"',
        f'"id": {rng.randrange(100)}',
        f'"method": {method}',
        f'"params": {{"name": {name}, "arguments": {{"about": {decoy}}}}}',
    ]
    if rng.random() < 0.2:  # a duplicated member: the last one counts, for us as for the SDK
        members.insert(rng.randrange(len(members)), f'"method": {spell(rng, "ping")}')
    rng.shuffle(members)
    return "{" + ", ".join(members) + "}"


def body(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        text = "[" + ", ".join(message(rng) for _ in range(rng.randrange(1, 4))) + "]"
    else:
        text = message(rng)
    return text.encode()


def calls_out_of_reach(parsed: Any) -> bool:
    return any(name in OUT_OF_REACH for name in parsed)


def test_a_call_of_a_tool_out_of_reach_is_never_passed_unread() -> None:
    rng = random.Random(8259)
    calls = skipped = 0
    for _ in range(ROUNDS):
        raw = body(rng)
        names = tools_called(raw)
        if calls_out_of_reach(names):
            calls += 1
            assert may_name(raw, NEEDLES), raw
        elif not may_name(raw, NEEDLES):
            skipped += 1
    # The fuzzing reached both sides: real calls, and bodies rightly passed on unread.
    assert calls > ROUNDS // 10 and skipped > ROUNDS // 50
