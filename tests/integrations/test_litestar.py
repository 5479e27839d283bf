"""The guard in front of a real Litestar app over real HTTP: handlers read the token Litestar
reads from the ASGI scope (``request.auth``), routes require scopes with Litestar guards, and
every refusal is the guard's own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Router, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from support import assert_refused, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from oauthguard import (
    AccessToken,
    ConfigurationError,
    GuardError,
    InsufficientScope,
    OAuthGuard,
    ResourceServer,
    require,
)
from oauthguard._wire.tokens import AuthenticatedUser
from oauthguard.litestar import refusal_response, requires
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/api"
METADATA = "https://api.test/.well-known/oauth-protected-resource/api"
PUBLIC = ["/health", "/public/*"]

TokenRequest = Request[AuthenticatedUser, AccessToken, State]


def seen(request: TokenRequest) -> dict[str, Any]:
    """What a handler saw of the token: Litestar's accessors and the raw scope agree."""
    assert request.scope["auth"] is request.auth
    return {
        "sub": request.auth.subject,
        "scopes": sorted(request.auth.scopes),
        "user": request.user.display_name,
    }


@get("/api/orders", guards=[requires("orders:read")])
async def list_orders(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@post(
    "/api/orders", guards=[requires(require("orders:write"))], status_code=200, sync_to_thread=False
)
def create_order(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@get("/api/reports", guards=[requires(any_scopes="reports:read admin")])
async def reports(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@get(
    "/api/console",
    guards=[requires("orders:read", clients="console", claims={"tier": 2}, actors="mcp-server")],
)
async def console(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@get("/api/me")
async def me(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@get("/api/ruled")
async def ruled(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@get("/users")
async def admin_users(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@get("/api/by-hand")
async def by_hand() -> None:
    raise InsufficientScope("only the owner may do this", scope="orders:own")


@get("/health")
async def health(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"auth": request.auth, "authenticated": request.user.is_authenticated}


@get("/public/page", guards=[requires("admin")])
async def public_page(request: TokenRequest) -> dict[str, Any]:
    return seen(request)


@websocket("/api/chat", guards=[requires("chat")])
async def chat(socket: WebSocket[AuthenticatedUser, AccessToken, State]) -> None:
    await socket.accept()
    await socket.send_text(f"hello {socket.auth.subject}")
    await socket.close()


@websocket("/api/room")
async def room(socket: WebSocket[AuthenticatedUser, AccessToken, State]) -> None:
    await socket.accept()
    await socket.send_text(f"hello {socket.auth.subject}")
    await socket.close()


HANDLERS = [list_orders, create_order, reports, console, me, ruled, by_hand, health, public_page]
RULES = {"/api/ruled": require("orders:read"), "/api/room": require("chat")}


def litestar_app(answer_refusals: bool = True, **options: Any) -> Litestar:
    """The app, with the exception handler that answers refusals unless told otherwise."""
    admin = Router("/api/admin", route_handlers=[admin_users], guards=[requires("admin")])
    answers = {GuardError: refusal_response} if answer_refusals else {}
    # Litestar's default logging config replaces the root logger's handlers at startup
    # (pytest's capture among them); the guard logs to "oauthguard" either way.
    return Litestar(
        [*HANDLERS, admin, chat, room], exception_handlers=answers, logging_config=None, **options
    )


def resource_server(issuer: TestIssuer) -> ResourceServer:
    return ResourceServer(
        resource=RESOURCE, authorization_servers=[issuer.issuer], http_client=issuer.http_client()
    )


def wrapped(issuer: TestIssuer, **options: Any) -> OAuthGuard:
    """The documented setup: the guard around the whole Litestar app."""
    app = litestar_app(**options)
    return OAuthGuard(app, resource_server(issuer), public_paths=PUBLIC, rules=RULES)


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def base(issuer: TestIssuer) -> Iterator[str]:
    with serve(wrapped(issuer)) as url:
        yield url


def bearer(issuer: TestIssuer, scope: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(audience=RESOURCE, scope=scope)}"}


def assert_unavailable(response: httpx.Response) -> None:
    """The guard's 503 for a failure while checking: retry later, nothing of the app's."""
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"


def refusal_parts(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (without the server's own) and body: what must equal the guard's."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in ("date", "server")]
    return response.status_code, sorted(headers), response.content


def test_no_token_is_the_guards_401(base: str) -> None:
    params = assert_refused(httpx.get(base + "/api/orders"), 401, None)
    assert params == {"resource_metadata": METADATA}


def test_a_good_token_reaches_the_handler_which_reads_it(base: str, issuer: TestIssuer) -> None:
    for method, path, scope in [
        ("GET", "/api/orders", "orders:read"),
        ("POST", "/api/orders", "orders:write"),
        ("GET", "/api/reports", "admin"),
        ("GET", "/api/admin/users", "admin"),
        ("GET", "/api/me", "x"),
    ]:
        response = httpx.request(method, base + path, headers=bearer(issuer, scope))
        assert response.status_code == 200, (path, response.text)
        assert response.json() == {
            "sub": "user-1",
            "scopes": sorted(scope.split()),
            "user": "user-1",
        }


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/api/orders", "orders:read"),  # async handler
        ("POST", "/api/orders", "orders:write"),  # sync handler, requires(Requirement)
        ("GET", "/api/reports", "reports:read admin"),  # any_scopes
        ("GET", "/api/admin/users", "admin"),  # a guard on a Router
    ],
)
def test_missing_scope_is_403_naming_the_routes_scopes(
    base: str, issuer: TestIssuer, method: str, path: str, needed: str
) -> None:
    refused = httpx.request(method, base + path, headers=bearer(issuer, "other"))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == needed
    assert params["resource_metadata"] == METADATA


def test_a_route_guards_refusal_is_exactly_the_guards_own(base: str, issuer: TestIssuer) -> None:
    """The same need, refused by the guard's path rule and by a Litestar route guard: the
    same status, headers (WWW-Authenticate, Cache-Control, Content-Type...) and body."""
    headers = bearer(issuer, "other")
    by_rule = httpx.get(base + "/api/ruled", headers=headers)
    by_route = httpx.get(base + "/api/orders", headers=headers)
    assert by_rule.status_code == 403
    assert refusal_parts(by_route) == refusal_parts(by_rule)


def test_a_guard_error_raised_by_a_handler_is_the_guards_refusal(
    base: str, issuer: TestIssuer
) -> None:
    params = assert_refused(
        httpx.get(base + "/api/by-hand", headers=bearer(issuer)), 403, "insufficient_scope"
    )
    assert params["scope"] == "orders:own"


def test_public_paths_are_reachable_without_a_token(base: str, issuer: TestIssuer) -> None:
    assert httpx.get(base + "/health").json() == {"auth": None, "authenticated": False}
    document = httpx.get(base + "/.well-known/oauth-protected-resource/api")
    assert document.json()["resource"] == RESOURCE


def test_a_route_guard_on_a_public_path_still_refuses(base: str, issuer: TestIssuer) -> None:
    """On a public path the guard reads no token, so a route guard there never passes."""
    for headers in ({}, bearer(issuer, "admin")):
        params = assert_refused(httpx.get(base + "/public/page", headers=headers), 401, None)
        assert params["scope"] == "admin"


def test_websocket_handlers_read_the_token(base: str, issuer: TestIssuer) -> None:
    url = base.replace("http://", "ws://")
    for path in ("/api/chat", "/api/room"):
        with connect(url + path, additional_headers=bearer(issuer, "chat")) as ws:
            assert ws.recv(timeout=5) == "hello user-1"


def test_websocket_refused_by_a_route_guard_is_closed_before_accept(
    base: str, issuer: TestIssuer
) -> None:
    """Litestar answers a guard's error on a WebSocket only with a close (1008 here), which
    the server sends as a bare 403: the handler never runs."""
    url = base.replace("http://", "ws://") + "/api/chat"
    with pytest.raises(InvalidStatus) as denied:
        connect(url, additional_headers=bearer(issuer, "read"))
    assert denied.value.response.status_code == 403
    assert "www-authenticate" not in denied.value.response.headers


def test_websocket_route_guard_closes_with_policy_violation(issuer: TestIssuer) -> None:
    """The close code the server does not show: 1008 (RFC 6455 §7.4.1), not Litestar's 4500."""
    client = TestClient(wrapped(issuer), base_url="https://api.test")
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/api/chat", headers=bearer(issuer, "read")),
    ):
        pass
    assert closed.value.code == 1008


def test_websocket_refused_by_a_path_rule_gets_the_challenge(base: str, issuer: TestIssuer) -> None:
    url = base.replace("http://", "ws://") + "/api/room"
    with pytest.raises(InvalidStatus) as denied:
        connect(url, additional_headers=bearer(issuer, "read"))
    response = denied.value.response
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="chat"' in response.headers["www-authenticate"]


def test_as_litestar_middleware(issuer: TestIssuer) -> None:
    """``DefineMiddleware(OAuthGuard, ...)`` checks the routes Litestar matched."""
    guard = DefineMiddleware(
        OAuthGuard, server=resource_server(issuer), public_paths=PUBLIC, rules=RULES
    )
    app = litestar_app(middleware=[guard])
    with serve(app) as url:
        assert_refused(httpx.get(url + "/api/orders"), 401, None)
        params = assert_refused(
            httpx.get(url + "/api/orders", headers=bearer(issuer, "x")), 403, "insufficient_scope"
        )
        assert params["scope"] == "orders:read"
        ok = httpx.get(url + "/api/orders", headers=bearer(issuer, "orders:read"))
        assert ok.json()["sub"] == "user-1"
        assert httpx.get(url + "/health").json()["auth"] is None
        ruled_refusal = httpx.get(url + "/api/ruled", headers=bearer(issuer, "x"))
        assert_refused(ruled_refusal, 403, "insufficient_scope")


def test_a_route_guard_without_the_guard_in_front_fails_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = litestar_app()
    with caplog.at_level(logging.ERROR, logger="oauthguard"), serve(app) as url:
        response = httpx.get(url + "/api/orders")
    assert response.status_code == 500
    assert "user-1" not in response.text and "Traceback" not in response.text
    assert "needs OAuthGuard in front of the app" in caplog.text


def test_without_the_exception_handlers_a_refusal_fails_closed_and_says_why(
    issuer: TestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    app = OAuthGuard(litestar_app(answer_refusals=False), resource_server(issuer))
    with caplog.at_level(logging.ERROR, logger="oauthguard"), serve(app) as url:
        refused = httpx.get(url + "/api/orders", headers=bearer(issuer, "x"))
        allowed = httpx.get(url + "/api/orders", headers=bearer(issuer, "orders:read"))
    assert refused.status_code == 500
    assert "user-1" not in refused.text
    assert "exception_handlers={GuardError: oauthguard.litestar.refusal_response}" in caplog.text
    assert allowed.status_code == 200


def test_requires_takes_require_arguments_or_a_requirement_not_both() -> None:
    assert repr(requires("a b", max_age=5)) == "requires(require('a b', max_age=5))"
    assert requires(require("a")).requirement.scopes == ("a",)
    with pytest.raises(ConfigurationError, match="not both"):
        requires(require("a"), max_age=5)
    with pytest.raises(ConfigurationError, match="scopes"):
        requires(42)  # type: ignore[arg-type]


class ListScopes:
    """A verifier whose tokens carry their scopes as a list, not a set: a route's check of
    them fails, unexpectedly."""

    async def verify(self, token: str) -> AccessToken:
        scopes: Any = ["orders:read"]
        return AccessToken("user-1", None, scopes, (RESOURCE,), None, None)


def test_a_failure_while_checking_is_a_503_never_a_pass() -> None:
    server = ResourceServer(
        resource=RESOURCE, authorization_servers=["https://issuer.test"], verifier=ListScopes()
    )
    app = OAuthGuard(litestar_app(), server)
    with serve(app) as url:
        response = httpx.get(url + "/api/orders", headers={"Authorization": "Bearer opaque"})
    assert_unavailable(response)


def test_clients_and_claims_are_403_with_no_scope_unless_scopes_miss_too(
    base: str, issuer: TestIssuer
) -> None:
    def sent(scope: str, **claims: Any) -> dict[str, str]:
        token = issuer.token(audience=RESOURCE, scope=scope, claims=claims)
        return {"Authorization": f"Bearer {token}"}

    url = base + "/api/console"
    refused = httpx.get(url, headers=sent("orders:read", client_id="console", tier="2"))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert "scope" not in params
    assert params["error_description"] == "the token's claim 'tier' does not hold 2"
    params = assert_refused(httpx.get(url, headers=sent("x")), 403, "insufficient_scope")
    assert params["scope"] == "orders:read"
    assert params["error_description"].startswith(
        "this operation needs the scopes: orders:read; the token's client 'test-client'"
    )
    ok = httpx.get(url, headers=sent("orders:read", client_id="console", tier=2.0))
    assert ok.status_code == 200, ok.text
    # RFC 8693 §4.1: only the named actor may act for the subject
    good = {"client_id": "console", "tier": 2}
    acted = httpx.get(url, headers=sent("orders:read", **good, act={"sub": "mcp-server"}))
    assert acted.status_code == 200, acted.text
    other = httpx.get(url, headers=sent("orders:read", **good, act={"sub": "intruder"}))
    params = assert_refused(other, 403, "insufficient_scope")
    assert "intruder" in params["error_description"] and "scope" not in params


def test_requires_validates_roles_clients_and_claims() -> None:
    with pytest.raises(ConfigurationError, match="clients"):
        requires(clients=[7])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="not both"):
        requires(require("a"), claims={"tier": 2})


def test_a_refusal_in_a_mount_names_the_resource_of_the_path_the_guard_matched(
    issuer: TestIssuer,
) -> None:
    """A Litestar mount rewrites the ASGI path before its guards refuse: the challenge still
    points at the metadata of the resource the request's path belongs to (RFC 9728)."""
    from litestar import asgi

    billing = "https://api.test/billing"

    @asgi("/billing", is_mount=True, guards=[requires("billing:write")])
    async def invoices(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = Litestar(
        [invoices], exception_handlers={GuardError: refusal_response}, logging_config=None
    )
    server = ResourceServer(
        resource=RESOURCE,
        resources=[billing],
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    client = TestClient(OAuthGuard(app, server), base_url="https://api.test")
    token = issuer.token(audience=billing, scope="other")
    response = client.get("/billing/invoices/7", headers={"Authorization": f"Bearer {token}"})
    params = assert_refused(response, 403, "insufficient_scope")
    assert params["resource_metadata"] == (
        "https://api.test/.well-known/oauth-protected-resource/billing"
    )
