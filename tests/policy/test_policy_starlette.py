"""require(...) as a Starlette decorator: functions, HTTPEndpoint, WebSocket, Router, Mount."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from guards import build_guard
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint, WebSocketEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, Router, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from support import assert_refused, challenge, serve

from oauthguard import ConfigurationError, require
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/api"
METADATA = "https://api.test/.well-known/oauth-protected-resource/api"


@require("orders:write")
async def create_order(request: Request) -> Response:
    return JSONResponse({"sub": request.auth.subject})


@require(scopes=["orders:read"])
def list_orders(request: Request) -> Response:
    return JSONResponse({"orders": [], "sub": request.auth.subject})


@require(any_scopes="reports:read admin")
async def reports(request: Request) -> Response:
    return PlainTextResponse("reports")


class Orders(HTTPEndpoint):
    @require("orders:read")
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("read")

    @require("orders:write")
    def delete(self, request: Request) -> Response:
        return PlainTextResponse("deleted")


@require("admin")
class Admin(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("admin")


@require("chat")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.auth.subject}")
    await websocket.close()


@require("chat")
class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_text(data)


async def open_page(request: Request) -> Response:
    return PlainTextResponse("open")


def build_app(issuer: TestIssuer, **guard: Any) -> Starlette:
    sub_router = Router(routes=[Route("/orders", create_order, methods=["POST"])])
    sub_app = Starlette(routes=[Route("/orders", list_orders)])
    app = Starlette(
        routes=[
            Route("/api/orders", create_order, methods=["POST"]),
            Route("/api/orders", list_orders, methods=["GET"]),
            Route("/api/reports", reports),
            Route("/api/class", Orders),
            Route("/api/admin", Admin),
            WebSocketRoute("/api/chat", chat),
            WebSocketRoute("/api/echo", Echo),
            Mount("/api/router", app=sub_router),
            Mount("/api/sub", app=sub_app),
            Route("/public/page", require("admin")(open_page)),
        ]
    )
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        public_paths=["/public/*"],
        **guard,
    )
    return app


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def client(issuer: TestIssuer) -> TestClient:
    return TestClient(build_app(issuer), base_url="https://api.test")


def bearer(issuer: TestIssuer, scope: str | None = None, **claims: Any) -> dict[str, str]:
    token = issuer.token(audience=RESOURCE, scope=scope, claims=claims or None)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("POST", "/api/orders", "orders:write"),  # async function
        ("GET", "/api/orders", "orders:read"),  # sync function
        ("GET", "/api/class", "orders:read"),  # HTTPEndpoint async method
        ("DELETE", "/api/class", "orders:write"),  # HTTPEndpoint sync method
        ("GET", "/api/admin", "admin"),  # decorated HTTPEndpoint class
        ("POST", "/api/router/orders", "orders:write"),  # Router mounted
        ("GET", "/api/sub/orders", "orders:read"),  # Starlette sub-app mounted
    ],
)
def test_missing_scope_is_403_naming_the_scope(
    client: TestClient, issuer: TestIssuer, method: str, path: str, needed: str
) -> None:
    refused = client.request(method, path, headers=bearer(issuer, "other"))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == needed
    assert params["resource_metadata"] == METADATA
    allowed = client.request(method, path, headers=bearer(issuer, f"other {needed}"))
    assert allowed.status_code == 200, allowed.text


def test_scope_claim_forms_string_scp_array_and_scp_string(
    client: TestClient, issuer: TestIssuer
) -> None:
    for claims in (
        {"scope": "orders:write"},
        {"scp": ["x", "orders:write"]},
        {"scp": "x orders:write"},
    ):
        ok = client.post("/api/orders", headers=bearer(issuer, **claims))
        assert ok.status_code == 200, claims
    for claims in ({"scope": "orders:writer"}, {"scp": ["orders"]}, {"scp": "x"}):
        assert_refused(
            client.post("/api/orders", headers=bearer(issuer, **claims)), 403, "insufficient_scope"
        )


def test_invalid_scope_claim_is_invalid_token(client: TestClient, issuer: TestIssuer) -> None:
    refused = client.post("/api/orders", headers=bearer(issuer, scp=[1, 2]))
    assert_refused(refused, 401, "invalid_token")


def test_any_scopes_needs_one_of_them(client: TestClient, issuer: TestIssuer) -> None:
    assert client.get("/api/reports", headers=bearer(issuer, "admin")).status_code == 200
    assert client.get("/api/reports", headers=bearer(issuer, "reports:read")).status_code == 200
    params = assert_refused(
        client.get("/api/reports", headers=bearer(issuer, "reports")), 403, "insufficient_scope"
    )
    assert params["scope"] == "reports:read admin"


def test_no_token_is_the_plain_401_before_any_endpoint(client: TestClient) -> None:
    params = assert_refused(client.post("/api/orders"), 401, None)
    assert params == {"resource_metadata": METADATA}


def test_decorator_on_a_public_path_still_needs_a_token(
    client: TestClient, issuer: TestIssuer
) -> None:
    params = assert_refused(client.get("/public/page", headers=bearer(issuer, "admin")), 401, None)
    assert params["scope"] == "admin"


def test_websocket_function_endpoint(client: TestClient, issuer: TestIssuer) -> None:
    with client.websocket_connect("/api/chat", headers=bearer(issuer, "chat")) as ws:
        assert ws.receive_text() == "hello user-1"
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/api/chat", headers=bearer(issuer, "read")),
    ):
        pass
    params = assert_refused(denied.value, 403, "insufficient_scope")
    assert params["scope"] == "chat"


def test_websocket_endpoint_class(client: TestClient, issuer: TestIssuer) -> None:
    with client.websocket_connect("/api/echo", headers=bearer(issuer, "chat")) as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/api/echo", headers=bearer(issuer, "read")),
    ):
        pass
    assert_refused(denied.value, 403, "insufficient_scope")


def test_websocket_over_real_http_gets_the_challenge(issuer: TestIssuer) -> None:
    """Over uvicorn the refused handshake is an HTTP 403 with the guard's challenge."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with serve(build_app(issuer)) as base:
        url = base.replace("http://", "ws://") + "/api/chat"
        with connect(url, additional_headers=bearer(issuer, "chat")) as ws:
            assert ws.recv(timeout=5) == "hello user-1"
        with pytest.raises(InvalidStatus) as denied:
            connect(url, additional_headers=bearer(issuer, "read"))
    response = denied.value.response
    assert response.status_code == 403
    assert response.headers["cache-control"] == "no-store"
    bearer_challenge, dpop_challenge = response.headers["www-authenticate"].split(", DPoP ")
    assert bearer_challenge == (
        'Bearer error="insufficient_scope", error_description="this operation needs the '
        f'scopes: chat", scope="chat", resource_metadata="{METADATA}"'
    )
    assert "error=" not in dpop_challenge  # RFC 9449 §7.2: the error goes in the scheme used
    assert 'scope="chat"' in dpop_challenge


def test_require_without_the_guard_fails_closed() -> None:
    app = Starlette(routes=[Route("/x", create_order, methods=["POST"])])
    client = TestClient(app)
    with pytest.raises(ConfigurationError, match="needs the OAuthGuard middleware"):
        client.post("/x")


def test_decorating_a_non_endpoint_is_a_clear_error() -> None:
    @require("a")
    def not_an_endpoint(value: int) -> int:
        return value

    with pytest.raises(TypeError, match="decorates Starlette endpoints"):
        not_an_endpoint(1)
    with pytest.raises(TypeError, match="decorates endpoints and ASGI apps"):
        require("a")(42)


def test_uvicorn_end_to_end(issuer: TestIssuer) -> None:
    with serve(build_app(issuer)) as base:
        refused = httpx.post(base + "/api/orders", headers=bearer(issuer, "read"))
        params = assert_refused(refused, 403, "insufficient_scope")
        assert params["scope"] == "orders:write"
        assert challenge(refused)["Bearer"]["resource_metadata"] == METADATA
        ok = httpx.post(base + "/api/orders", headers=bearer(issuer, "orders:write"))
        assert ok.json() == {"sub": "user-1"}


def test_guard_error_raised_by_the_app_gets_the_guards_response(issuer: TestIssuer) -> None:
    from starlette.responses import StreamingResponse

    from oauthguard import InsufficientScope

    async def by_hand(request: Request) -> Response:
        raise InsufficientScope("only the owner may do this", scope="orders:own")

    async def too_late(request: Request) -> Response:
        async def body() -> Any:
            yield b"partial"
            raise InsufficientScope("too late to refuse")

        return StreamingResponse(body())

    app = Starlette(routes=[Route("/by-hand", by_hand), Route("/too-late", too_late)])
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    client = TestClient(app, base_url="https://api.test")
    params = assert_refused(
        client.get("/by-hand", headers=bearer(issuer)), 403, "insufficient_scope"
    )
    assert params["scope"] == "orders:own"
    # Once the response has started the error cannot become a refusal: it propagates
    # (Starlette's error handling reports it as a handled exception after the start).
    with pytest.raises((InsufficientScope, RuntimeError)):
        client.get("/too-late", headers=bearer(issuer))


class _ListScopesVerifier:
    """A custom verifier with a bug: its tokens' scopes are a list, not a frozenset."""

    async def verify(self, token: str) -> Any:
        from oauthguard import AccessToken

        return AccessToken(
            subject="u",
            client_id="c",
            scopes=["read"],  # type: ignore[arg-type]
            audience=("https://api.test/mcp",),
            issuer="https://issuer.test",
            expires_at=None,
        )


@pytest.mark.parametrize("use", ["decorator", "fastapi"])
def test_a_failure_inside_a_requirement_is_a_503_never_a_500(use: str) -> None:
    if use == "decorator":

        @require("read")
        async def endpoint(request: Request) -> Response:
            return PlainTextResponse("reached")

        inner: Any = Starlette(routes=[Route("/x", endpoint)])
    else:
        from fastapi import Depends, FastAPI

        inner = FastAPI()

        @inner.get("/x")
        async def read(token: Any = Depends(require("read"))) -> str:  # noqa: B008
            return "reached"

    app = build_guard(
        inner,
        resource="https://api.test/mcp",
        authorization_servers="https://issuer.test",
        verifier=_ListScopesVerifier(),
    )
    client = TestClient(app, base_url="https://api.test", raise_server_exceptions=False)
    response = client.get("/x", headers={"authorization": "Bearer abc"})
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert "reached" not in response.text
