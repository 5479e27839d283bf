"""Which tools an MCP request may call, read so that no request means one tool here and
another to the SDK.

The SDK reads a POST body with a different parser per transport (``pydantic_core.from_json``
for the handshake revisions, ``json.loads`` on the bytes for 2026-07-28, which also takes a
UTF-8 BOM, UTF-16 and UTF-32 and lone surrogates), and on 2026-07-28 it trusts the
``Mcp-Method`` / ``Mcp-Name`` headers to agree with the body. So the body is read here by a
parser stricter than all of them: RFC 8259 JSON in plain UTF-8 and nothing else. Whatever it
does not read with certainty may call every tool (``None`` below), and the tools the headers
name count as well as the body's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, Final

from mcp.shared.inbound import decode_header_value

from oauthguard._asgi.types import Message, Receive
from oauthguard._jose.jsonobj import has_lone_surrogate
from oauthguard._wire.errors import ConfigurationError, GuardError, TemporarilyUnavailable
from oauthguard._wire.redaction import redacted_traceback

logger = logging.getLogger("oauthguard")

#: The MCP protocol revisions whose requests are read here: the ``initialize`` handshake
#: revisions and 2026-07-28. A request naming another revision may call every tool.
COVERED_PROTOCOL_VERSIONS: Final = frozenset(
    ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
)

_COVERED: Final = frozenset(version.encode() for version in COVERED_PROTOCOL_VERSIONS)
#: Methods whose ``Mcp-Name`` header names something other than a tool (a prompt, a URI).
_NOT_TOOL_NAMES: Final = frozenset((b"prompts/get", b"resources/read"))
_VERSION, _METHOD, _NAME = b"mcp-protocol-version", b"mcp-method", b"mcp-name"
_ROUTING: Final = frozenset((_VERSION, _METHOD, _NAME))


#: Why a request that may call any tool needs every tool's scopes (the 403's description).
UNREAD: Final = "the request may call any tool (what it calls is not read with certainty)"


class _Ambiguous(ValueError):
    """A body two conforming parsers may read differently (RFC 8259 §4: duplicate names)."""


def tools_requested(
    headers: Iterable[tuple[bytes, bytes]], body: bytes, needles: Iterable[bytes]
) -> list[str] | None:
    """The tools a request may call, None for any: those its MCP headers name, and those
    its body calls when it may name one of ``needles`` (the tools out of the token's reach).
    """
    named = header_tools(headers)
    if named is None or not may_name(body, needles):
        return named
    called = tools_called(body)
    return None if called is None else named + called


def may_name(body: bytes, needles: Iterable[bytes]) -> bool:
    """Whether a request body may hold one of the strings ``needles`` (each JSON-encoded in
    UTF-8, quotes included).

    RFC 8259 §7: a string without escapes is its characters as they are, so a body in UTF-8
    with no backslash holds a string only where its UTF-8 form appears; a body with one could
    spell it otherwise, and a body in another encoding holds no UTF-8 form at all. RFC 8259
    §8.1 allows no BOM, but ``json.loads`` takes one and sniffs UTF-16/32 (RFC 4627 §3) from
    NUL bytes: JSON text in UTF-16 or UTF-32 always holds a NUL byte (its structural
    characters are ASCII), and every BOM starts with NUL or a byte above 0x7F, which no JSON
    text in UTF-8 starts with. Such bodies may name anything.
    """
    if b"\\" in body or b"\x00" in body or body[:1] >= b"\x80":
        return True
    return any(map(body.__contains__, needles))


def tools_called(body: bytes) -> list[str] | None:
    """Names of the tools a JSON-RPC message (or batch) calls, ``[]`` for anything that
    calls none, or ``None`` when the body is not read with certainty: it may call any tool.

    Read with certainty: strict UTF-8 without BOM (RFC 8259 §8.1), RFC 8259 JSON with no
    NaN/Infinity, no duplicate member names (§4) and no lone surrogate escapes (§8.2), within
    the interpreter's nesting limit. Every SDK parser reads such a body as this does, or
    refuses it.
    """
    try:
        text = body.decode("utf-8")  # strict: no surrogates, no invalid sequences
    except UnicodeDecodeError:
        return None
    if text[:1] == "\ufeff" or has_lone_surrogate(text):
        return None
    try:
        message = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, _Ambiguous, too many digits
        return None
    return _calls_in(message)


def header_tools(headers: Iterable[tuple[bytes, bytes]]) -> list[str] | None:
    """The tools a request's MCP headers name, or ``None`` when they may name any.

    MCP 2026-07-28 (transports, request headers): ``Mcp-Name`` carries the ``tools/call``'s
    tool, plain or in the ``=?base64?...?=`` form the SDK decodes; every copy counts, as
    sent and decoded, unless ``Mcp-Method`` names only methods whose ``Mcp-Name`` is not a
    tool. A revision in ``MCP-Protocol-Version`` this module does not know, or an
    ``Mcp-Name`` the SDK cannot decode, may name any tool.
    """
    names, methods = [], []
    for key, value in headers:
        if key not in _ROUTING:  # names as the SDK and Starlette match them: as sent
            continue
        if key == _VERSION:
            if value not in _COVERED:
                return None
        elif key == _METHOD:
            methods.append(value)
        else:
            names.append(value.decode("latin-1"))  # as Starlette reads header values
    if not names or (methods and _NOT_TOOL_NAMES.issuperset(methods)):
        return []
    decoded = [decode_header_value(name) for name in names]
    if None in decoded:
        return None
    return [*names, *(name for name in decoded if name is not None)]


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """RFC 8259 §4: names within an object SHOULD be unique; with duplicates, parsers differ
    on which one counts, so such a body is not read."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _Ambiguous("duplicate member name")
    return members


def _no_constant(name: str) -> Any:
    """RFC 8259 §6: NaN and Infinity are not JSON numbers."""
    raise _Ambiguous(f"{name} is not JSON")


def _calls_in(message: Any) -> list[str]:
    """The tool of each ``tools/call`` request in a message or batch (JSON-RPC 2.0 §4, §6);
    a call whose name is not a string is one the SDK refuses."""
    names = []
    for item in message if isinstance(message, list) else (message,):
        if isinstance(item, dict) and item.get("method") == "tools/call":
            params = item.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names


def tool_name(name: object) -> str:
    """A ``tool_scopes`` key: a tool's name, which a JSON body spells in UTF-8."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("a tool name must be a non-empty string")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("a tool name must be valid Unicode (no lone surrogates)") from None
    return name


def unexpected_failure(exc: Exception, path: object, token: str | None) -> GuardError:
    """Log a failure to work out the tools a request calls (``token`` redacted); the 503
    that answers it: never a 500, never a pass."""
    logger.error(
        "unexpected error while checking the tools a request to %r calls\n%s",
        path,
        redacted_traceback(exc, token),
    )
    return TemporarilyUnavailable("the request could not be checked; try again later")


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than ``limit``; ``ClientGone``
    when the client disconnects first."""
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # the usual case: one message
        return body if len(body) <= limit else None
    chunks, size = [], 0
    while message["type"] == "http.request":
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()
    # Never a part for the whole: the app would act on a body the client did not finish.
    raise ClientGone


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
