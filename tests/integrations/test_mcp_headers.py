"""What else decides the tool an MCP request calls: the 2026-07-28 ``Mcp-Method`` /
``Mcp-Name`` headers (a tool named there needs its scopes whatever the body says), the
``MCP-Protocol-Version`` a request names (a revision the check does not know may call any
tool), what the guard keeps and reads around the body, and WebSockets, whose messages it
does not read."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from guards import build_guard
from mcp.shared.inbound import NAME_BEARING_METHODS
from mcp_support import Notes, notes_server
from mcp_types import methods
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    MODERN_PROTOCOL_VERSIONS,
)
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from support import assert_refused, free_port, serve
from test_mcp_bodies import VERSIONS, call, headers, post, refused_and_not_run
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from oauthguard import OAuthGuard
from oauthguard._wire.challenge import parse_challenges
from oauthguard.mcp import COVERED_PROTOCOL_VERSIONS, MCPAuth, protect
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/mcp"
ISSUER = TestIssuer("https://issuer.test")


@pytest.fixture(scope="module")
def notes() -> Iterator[Notes]:
    with notes_server(json_response=True) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One keep-alive client for the module's requests to the notes server (its own thread).
    with httpx.Client() as client:
        yield client


def sentinel(name: str) -> str:
    """``name`` in the header form the SDK decodes (``=?base64?...?=``)."""
    return f"=?base64?{base64.b64encode(name.encode()).decode()}?="


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("named", "called"),
    [
        ("add_note", "list_notes"),  # the header names the tool out of reach
        ("list_notes", "add_note"),  # the body does
        (sentinel("add_note"), "list_notes"),  # the header, as the SDK decodes it
        ("=?base64?not base64!?=", "list_notes"),  # a header the SDK cannot decode
    ],
)
def test_a_tool_named_in_a_header_or_the_body_needs_its_scopes(
    http: httpx.Client, notes: Notes, version: str, named: str, called: str
) -> None:
    notes.added.clear()
    sent = headers(version, notes.reader) | {"mcp-method": "tools/call", "mcp-name": named}
    response = post(http, notes, call(version, f'"{called}"').encode(), sent)
    refused_and_not_run(notes, response)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_copy_of_a_header_counts(http: httpx.Client, notes: Notes, version: str) -> None:
    notes.added.clear()
    body = call(version, '"list_notes"').encode()
    base = headers(version, notes.reader, None)
    for extra in (
        [("mcp-name", "list_notes"), ("mcp-name", "add_note")],
        [("mcp-method", "prompts/get"), ("mcp-method", "tools/call"), ("mcp-name", "add_note")],
    ):
        response = http.post(notes.url, content=body, headers=[*base.items(), *extra])
        refused_and_not_run(notes, response)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_name_for_another_method_is_no_tool(
    http: httpx.Client, notes: Notes, version: str
) -> None:
    # prompts/get's Mcp-Name is a prompt's: the guard lets the SDK answer it.
    body = call(version, '"add_note"', method='"prompts/get"').encode()
    sent = headers(version, notes.reader) | {"mcp-method": "prompts/get"}
    response = post(http, notes, body, sent)
    assert response.status_code not in (401, 403) and response.status_code < 500


@pytest.mark.parametrize("unknown", ["2099-01-01", "2025-6-18", ""])
def test_a_revision_the_check_does_not_know_may_call_every_tool(
    http: httpx.Client, notes: Notes, unknown: str
) -> None:
    notes.added.clear()
    body = call("2026-07-28", '"list_notes"').encode()
    for version in ([unknown], ["2025-06-18", unknown], [unknown, "2026-07-28"]):
        sent = [
            *headers("2026-07-28", notes.reader, "list_notes").items(),
            *(("mcp-protocol-version", v) for v in version),
        ]
        response = http.post(notes.url, content=body, headers=sent)
        refused_and_not_run(notes, response)


def test_every_revision_the_sdk_serves_is_one_the_check_reads() -> None:
    # An SDK that serves a revision the check was not written for fails here: its wire
    # format must be read before the README can say it is covered.
    served = {*KNOWN_PROTOCOL_VERSIONS, *HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS}
    served |= {version for _, version in methods.CLIENT_REQUESTS}
    assert served <= COVERED_PROTOCOL_VERSIONS, served - COVERED_PROTOCOL_VERSIONS
    # Only tools/call runs a tool, and Mcp-Name names a tool for it alone.
    assert {m for m, _ in methods.CLIENT_REQUESTS if m.startswith("tools/")} == {
        "tools/call",
        "tools/list",
    }
    assert dict(NAME_BEARING_METHODS) == {
        "tools/call": "name",
        "prompts/get": "name",
        "resources/read": "uri",
    }


async def reached(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("reached")(scope, receive, send)


def guard(inner: MCPAuth, **options: Any) -> OAuthGuard:
    return build_guard(
        inner,
        resource=RESOURCE,
        authorization_servers=ISSUER.issuer,
        http_client=ISSUER.http_client(),
        **options,
    )


@pytest.mark.anyio
async def test_what_a_token_reaches_is_worked_out_for_each_guard() -> None:
    # One MCPAuth behind two guards: only the first lets "tools:all" imply "mcp:admin".
    inner = MCPAuth(reached, tool_scopes={"admin": "mcp:admin"})
    lenient = guard(inner, scope_implies={"tools:all": {"mcp:admin"}})
    strict = guard(inner)
    token = ISSUER.token(audience=RESOURCE, scope="tools:all")
    sent = {"authorization": f"Bearer {token}"}
    body = call("2025-06-18", '"admin"').encode()
    for app, allowed in ((lenient, True), (strict, False), (lenient, True)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="https://api.test"
        ) as http:
            response = await http.post("/mcp", content=body, headers=sent)
        if allowed:
            assert response.text == "reached"
        else:
            assert assert_refused(response, 403, "insufficient_scope")["scope"] == "mcp:admin"


async def asgi_post(app: Any, messages: list[dict[str, Any]], headers: list[Any]) -> list[Any]:
    """POST to ``app`` at the ASGI level; ``messages`` are what ``receive`` hands it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "query_string": b"",
        "headers": headers,
        "scheme": "https",
        "server": ("api.test", 443),
    }
    await app(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_a_body_the_client_did_not_finish_never_reaches_the_app() -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await reached(scope, receive, send)

    guarded = guard(MCPAuth(app, tool_scopes={"admin": "mcp:admin"}))
    token = ISSUER.token(audience=RESOURCE, scope="mcp:tools")
    authorization = [(b"authorization", f"Bearer {token}".encode())]
    whole = call("2025-06-18", '"whoami"').encode()
    for parts in ([whole[:20]], []):
        messages = [{"type": "http.request", "body": part, "more_body": True} for part in parts]
        messages.append({"type": "http.disconnect"})
        assert await asgi_post(guarded, messages, authorization) == []
    assert seen == []


@pytest.mark.anyio
async def test_a_failure_while_reading_the_calls_is_a_503_never_a_pass() -> None:
    guarded = guard(MCPAuth(reached, tool_scopes={"admin": "mcp:admin"}))
    token = ISSUER.token(audience=RESOURCE, scope="mcp:tools")
    # A server that hands over a header value as text, not bytes.
    broken = [(b"authorization", f"Bearer {token}".encode()), (b"mcp-name", "admin")]
    body = [{"type": "http.request", "body": b"{}", "more_body": False}]
    sent = await asgi_post(guarded, body, broken)
    assert sent[0]["status"] == 503
    assert b"temporarily_unavailable" in sent[1]["body"] and b"reached" not in sent[1]["body"]


@pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated")
def test_a_websocket_may_carry_any_call_so_it_needs_every_tools_scopes() -> None:
    # The SDK serves MCP over HTTP alone, and MCPAuth does not read WebSocket messages: an
    # app that takes WebSockets at the endpoint gets them only with every tool's scopes.
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("accepted")
        await websocket.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    issuer = TestIssuer("https://issuer.test")
    app = protect(
        Starlette(routes=[WebSocketRoute("/mcp", echo)]),
        resource=url,
        authorization_servers=issuer.issuer,
        scopes="notes:read",
        tool_scopes={"add_note": "notes:write"},
        http_client=issuer.http_client(),
    )
    reader = issuer.token(audience=url, scope="notes:read")
    writer = issuer.token(audience=url, scope="notes:read notes:write")
    with serve(app, port=port):
        ws_url = url.replace("http://", "ws://")
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, additional_headers={"authorization": f"Bearer {reader}"})
        assert refused.value.response.status_code == 403
        params = dict(parse_challenges(refused.value.response.headers["WWW-Authenticate"]))
        assert params["Bearer"]["error"] == "insufficient_scope"
        assert params["Bearer"]["scope"] == "notes:read notes:write"
        with connect(ws_url, additional_headers={"authorization": f"Bearer {writer}"}) as ws:
            assert ws.recv(timeout=5) == "accepted"
