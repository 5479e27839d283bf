"""The tools a POST body calls, on every transport the SDK serves (the handshake revisions
read bodies with ``pydantic_core.from_json``, 2026-07-28 with ``json.loads``): a body the
tool check cannot read with certainty may call every tool, so a token without every tool's
scopes is refused with the whole scope set, and the tool never runs. Through the real SDK
app, with uvicorn on loopback; one keep-alive client a module sends every request."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from mcp_support import Notes, notes_server
from mcp_types import CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from support import assert_refused

VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
EVERY_SCOPE = "notes:read notes:write"


@pytest.fixture(scope="module")
def notes() -> Iterator[Notes]:
    with notes_server(json_response=True) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # uvicorn serves from its own thread, so blocking calls reach it; one client keeps its
    # connection, where a client a request paid for a TLS context and a connect each time.
    with httpx.Client() as client:
        yield client


def call(
    version: str,
    name: str = '"add_note"',
    *,
    method: str = '"tools/call"',
    params: str = "",
    arguments: str = '{"text": "hi"}',
) -> str:
    """A tools/call as JSON text, as a client of ``version`` writes it (2026-07-28: with the
    envelope in ``params._meta``); ``name``, ``method``, ``arguments`` are JSON text, and
    ``params`` more members of ``params``."""
    meta = ""
    if version in MODERN_PROTOCOL_VERSIONS:
        envelope = {PROTOCOL_VERSION_META_KEY: version, CLIENT_CAPABILITIES_META_KEY: {}}
        meta = ', "_meta": ' + json.dumps(envelope)
    return (
        f'{{"jsonrpc": "2.0", "id": 1, "method": {method}, '
        f'"params": {{"name": {name}, "arguments": {arguments}{params}{meta}}}}}'
    )


def headers(version: str, token: str, tool: str | None = "add_note") -> dict[str, str]:
    """What a client of ``version`` sends with a tools/call of ``tool`` (2026-07-28: the
    Mcp-Method and Mcp-Name headers, unless ``tool`` is None)."""
    sent = {
        "authorization": f"Bearer {token}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": version,
    }
    if version in MODERN_PROTOCOL_VERSIONS and tool is not None:
        sent |= {"mcp-method": "tools/call", "mcp-name": tool}
    return sent


def nested(depth: int) -> str:
    return '{"meta": ' + "[" * depth + "]" * depth + "}"


#: Bodies that call ``add_note`` to at least one parser, but not in plain strict JSON.
UNREAD: dict[str, Callable[[str], bytes]] = {
    "UTF-8 BOM": lambda v: codecs.BOM_UTF8 + call(v).encode(),
    "UTF-16 LE": lambda v: call(v).encode("utf-16-le"),
    "UTF-16 BE": lambda v: call(v).encode("utf-16-be"),
    "UTF-16 with BOM": lambda v: call(v).encode("utf-16"),
    "UTF-32 LE": lambda v: call(v).encode("utf-32-le"),
    "UTF-32 BE": lambda v: call(v).encode("utf-32-be"),
    "UTF-32 with BOM": lambda v: call(v).encode("utf-32"),
    "lone surrogate, escaped": lambda v: call(v, arguments='{"text": "\\ud800"}').encode(),
    "lone surrogate, escaped, in a name": lambda v: call(v, params=', "x\\udc00": 1').encode(),
    "lone surrogate, raw": lambda v: call(v, arguments='{"text": "\ud800"}').encode(
        "utf-8", "surrogatepass"
    ),
    "nesting deeper than the interpreter's limit": lambda v: call(
        v, arguments=nested(100_000)
    ).encode(),
    "duplicate name, first is the tool": lambda v: call(
        v, '"add_note", "name": "list_notes"'
    ).encode(),
    "duplicate name, last is the tool": lambda v: call(
        v, '"list_notes", "name": "add_note"'
    ).encode(),
    "duplicate method": lambda v: call(v, method='"ping", "method": "tools/call"').encode(),
    "NaN": lambda v: call(v, arguments='{"meta": NaN}').encode(),
}

#: Bodies read with certainty that call ``add_note``.
READ: dict[str, Callable[[str], bytes]] = {
    "plain": lambda v: call(v).encode(),
    "escaped name": lambda v: call(v, '"add\\u005fnote"').encode(),
    "nesting deeper than pydantic's limit": lambda v: call(v, arguments=nested(300)).encode(),
    "batch": lambda v: ("[" + call(v, '"list_notes"') + ", " + call(v) + "]").encode(),
}


def post(http: httpx.Client, notes: Notes, body: bytes, sent: dict[str, str]) -> httpx.Response:
    return http.post(notes.url, content=body, headers=sent)


def refused_and_not_run(notes: Notes, response: httpx.Response) -> None:
    params = assert_refused(response, 403, "insufficient_scope")
    assert params["scope"] == EVERY_SCOPE
    assert notes.added == [], "the tool ran"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", list(UNREAD))
def test_a_body_not_read_with_certainty_may_call_every_tool(
    http: httpx.Client, notes: Notes, version: str, variant: str
) -> None:
    body = UNREAD[variant](version)
    notes.added.clear()
    for tool in ("add_note", None):  # with the headers a client sends, and without
        response = post(http, notes, body, headers(version, notes.reader, tool))
        refused_and_not_run(notes, response)
        assert "may call any tool" in response.json()["error_description"]
    # With every tool's scopes the guard lets the SDK answer, whatever it makes of the body.
    answered = post(http, notes, body, headers(version, notes.writer))
    assert answered.status_code not in (401, 403) and answered.status_code < 500


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", list(READ))
def test_a_body_read_with_certainty_needs_its_tools_scopes(
    http: httpx.Client, notes: Notes, version: str, variant: str
) -> None:
    notes.added.clear()
    for tool in ("add_note", None):
        response = post(http, notes, READ[variant](version), headers(version, notes.reader, tool))
        refused_and_not_run(notes, response)


@pytest.mark.parametrize("version", VERSIONS)
def test_plain_calls_in_reach_are_served(http: httpx.Client, notes: Notes, version: str) -> None:
    # The strict reading refuses nothing a client writes: the tool in reach runs.
    for body in (call(version, '"list_notes"'), call(version, '"list_\\u006eotes"')):
        response = post(http, notes, body.encode(), headers(version, notes.reader, "list_notes"))
        assert response.status_code == 200 and "a note" in response.text, response.text
    notes.added.clear()
    ran = post(http, notes, call(version).encode(), headers(version, notes.writer))
    assert ran.status_code == 200 and notes.added == ["hi"], ran.text


def test_the_reviewed_request_is_refused_and_the_tool_does_not_run(
    http: httpx.Client, notes: Notes
) -> None:
    # A notes:read token, MCP-Protocol-Version 2026-07-28, a UTF-8 BOM before the call.
    notes.added.clear()
    body = b"\xef\xbb\xbf" + call("2026-07-28").encode()
    response = post(http, notes, body, headers("2026-07-28", notes.reader))
    refused_and_not_run(notes, response)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_charset_is_not_what_the_body_is_read_in(
    http: httpx.Client, notes: Notes, version: str
) -> None:
    # The SDK ignores the charset parameter and so does the check: UTF-8 is read as UTF-8.
    notes.added.clear()
    sent = headers(version, notes.reader) | {"content-type": "application/json; charset=utf-16"}
    refused_and_not_run(notes, post(http, notes, call(version).encode(), sent))
    unread = call(version).encode("utf-16")
    refused_and_not_run(notes, post(http, notes, unread, sent))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_chunked_body_is_read_whole(http: httpx.Client, notes: Notes, version: str) -> None:
    for body in (call(version).encode(), codecs.BOM_UTF8 + call(version).encode()):

        def chunks(raw: bytes = body) -> Iterator[bytes]:
            for start in range(0, len(raw), 5):
                yield raw[start : start + 5]

        notes.added.clear()
        response = http.post(notes.url, content=chunks(), headers=headers(version, notes.reader))
        refused_and_not_run(notes, response)


def test_a_body_over_the_limit_is_refused_and_not_run(http: httpx.Client, notes: Notes) -> None:
    notes.added.clear()
    padding = json.dumps({"text": "x" * (4 * 1024 * 1024)})
    for version in ("2025-06-18", "2026-07-28"):
        body = call(version, arguments=padding).encode()
        response = post(http, notes, body, headers(version, notes.reader))
        assert response.status_code == 413 and notes.added == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", ['"Tools/Call"', '"tools/call "', '"tools/call\\u0000"'])
def test_a_method_spelled_otherwise_calls_no_tool(
    http: httpx.Client, notes: Notes, version: str, method: str
) -> None:
    # The SDK matches methods exactly, as the check does: the SDK answers, nothing runs.
    notes.added.clear()
    body = call(version, method=method).encode()
    response = post(http, notes, body, headers(version, notes.reader, None))
    assert response.status_code not in (401, 403) and response.status_code < 500
    assert notes.added == []
