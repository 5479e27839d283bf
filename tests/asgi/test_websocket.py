"""WebSocket connections on protected paths: authenticated like HTTP, refused before accept."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from apps import RESOURCE, bearer, client, guard
from starlette.testclient import WebSocketDenialResponse
from support import assert_refused, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from oauthguard._wire.challenge import parse_challenges
from oauthguard.testing import TestIssuer

ISSUER = TestIssuer(algorithms=("RS256",))
METADATA = "https://api.test/.well-known/oauth-protected-resource/mcp"


# uvicorn's legacy implementation (--ws websockets) warns that it is deprecated; deployments
# may still name it, so refusals are checked on it as well as on its successor.
pytestmark = pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated")


@pytest.fixture(scope="module", params=["websockets", "websockets-sansio"])
def ws_url(request: pytest.FixtureRequest) -> Any:
    with serve(guard(ISSUER), ws=request.param) as base:
        yield base.replace("http://", "ws://") + "/ws"


def test_a_valid_token_is_accepted_over_real_websockets(ws_url: str) -> None:
    with connect(ws_url, additional_headers=bearer(ISSUER.token(audience=RESOURCE))) as ws:
        assert ws.recv(timeout=5) == "hello user-1"


def refusal(ws_url: str, headers: dict[str, str]) -> Any:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers=headers, open_timeout=5)
    return refused.value.response


def test_no_token_is_a_401_challenge_before_accept(ws_url: str) -> None:
    response = refusal(ws_url, {})
    assert response.status_code == 401
    challenges = dict(parse_challenges(response.headers["WWW-Authenticate"]))
    assert challenges["Bearer"] == {"resource_metadata": METADATA}
    assert response.headers["Cache-Control"] == "no-store"


def test_a_bad_token_is_a_401_invalid_token_before_accept(ws_url: str) -> None:
    expired = ISSUER.token(audience=RESOURCE, expires_in=-3600)
    response = refusal(ws_url, bearer(expired))
    assert response.status_code == 401
    params = dict(parse_challenges(response.headers["WWW-Authenticate"]))["Bearer"]
    assert params["error"] == "invalid_token"
    assert json.loads(response.body)["error_description"] == params["error_description"]


def test_two_authorization_headers_are_a_400_before_accept(ws_url: str) -> None:
    from websockets.datastructures import Headers

    token = ISSUER.token(audience=RESOURCE)
    headers = Headers([("Authorization", f"Bearer {token}")] * 2)
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers=headers, open_timeout=5)
    assert refused.value.response.status_code == 400


def test_the_test_client_gets_the_denial_response() -> None:
    api = client(guard(ISSUER))
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        api.websocket_connect("/ws", headers=bearer("not-a-jwt")),
    ):
        pass  # pragma: no cover - never accepted
    assert_refused(refused.value, 401, "invalid_token")
    with api.websocket_connect("/ws", headers=bearer(ISSUER.token(audience=RESOURCE))) as ws:
        assert ws.receive_text() == "hello user-1"


def test_without_the_denial_extension_the_socket_is_closed_with_1008() -> None:
    app = guard(ISSUER)
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": [(b"host", b"api.test")],
        "scheme": "wss",
        "server": ("api.test", 443),
        "subprotocols": [],
        "asgi": {"version": "3.0"},
    }
    anyio.run(app, scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert incoming == []  # the connect message was consumed before closing
