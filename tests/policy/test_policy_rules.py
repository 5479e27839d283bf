"""Path rules on the guard, scope hierarchy, step-up (RFC 9470) and configuration errors."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from support import assert_refused, challenge, serve

from oauthguard import ConfigurationError, require
from oauthguard._http.paths import PathTable
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/"
METADATA = "https://api.test/.well-known/oauth-protected-resource"
NOW = 1_800_000_000.0


async def echo(request: Request) -> Response:
    return PlainTextResponse(f"{request.method} {request.url.path}")


async def mcp_app(scope: Any, receive: Any, send: Any) -> None:
    """A mounted ASGI app that cannot be decorated (as an MCP server is)."""
    await PlainTextResponse("mcp")(scope, receive, send)


async def admin_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("admin")
    await websocket.close()


@require("orders:delete")
async def delete_order(request: Request) -> Response:
    return PlainTextResponse("deleted")


RULES = {
    "/api": require("api"),
    "/api/r": require("r"),
    ("POST", "/api/r"): require("r:write"),
    ("GET", "/api/r/x"): require("rx:read"),
    "/admin/": require("admin"),
    "/mcp": require(any_scopes="mcp:tools mcp:admin"),
    "/step": require(acr_values="urn:mfa phr", max_age=300),
    "/recent": require(max_age=60),
    "/orders": require("orders"),
}


def make_client(issuer: TestIssuer, rules: Any = RULES, **guard: Any) -> TestClient:
    routes = [
        Route(path, echo, methods=["GET", "POST", "PUT"])
        for path in (
            "/api/r",
            "/api/rx",
            "/api/r/x",
            "/api/r/x/y",
            "/api/other",
            "/admin",
            "/admin/x",
            "/step",
            "/recent",
            "/free",
            "/orders",
        )
    ]
    routes += [
        Route("/orders/{id}", delete_order, methods=["DELETE"]),
        Mount("/mcp", mcp_app),
        WebSocketRoute("/admin/ws", admin_socket),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        rules=rules,
        **{"clock": lambda: NOW, **guard},
    )
    return TestClient(app, base_url="https://api.test")


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def client(issuer: TestIssuer) -> TestClient:
    return make_client(issuer)


def auth(issuer: TestIssuer, scope: str | None = None, **claims: Any) -> dict[str, str]:
    token = issuer.token(audience=RESOURCE, scope=scope, claims=claims or None, now=NOW)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/api/r", "r"),
        ("GET", "/api/r/x/y", "rx:read"),  # longest prefix, method-specific
        ("PUT", "/api/r/x", "r"),  # no PUT rule at /api/r/x: falls back to /api/r
        ("POST", "/api/r", "r:write"),  # method beats method-less at the same prefix
        ("POST", "/api/r/x", "r:write"),
        ("HEAD", "/api/r/x", "rx:read"),  # HEAD is guarded like GET
        ("GET", "/api/rx", "api"),  # whole segments: /api/r does not cover /api/rx
        ("GET", "/api/other", "api"),
        ("GET", "/admin", "admin"),  # a rule given with a trailing slash
        ("GET", "/admin/x", "admin"),
    ],
)
def test_rules_longest_whole_segment_prefix_and_method(
    client: TestClient, issuer: TestIssuer, method: str, path: str, needed: str
) -> None:
    others = "api r r:write rx:read admin".replace(needed, "").split()
    refused = client.request(method, path, headers=auth(issuer, " ".join(others)))
    assert refused.status_code == 403
    if method != "HEAD":
        params = assert_refused(refused, 403, "insufficient_scope")
        assert params["scope"] == needed
        assert params["resource_metadata"] == METADATA
    assert client.request(method, path, headers=auth(issuer, needed)).status_code == 200


def test_paths_without_a_rule_need_only_a_valid_token(
    client: TestClient, issuer: TestIssuer
) -> None:
    assert client.get("/free", headers=auth(issuer)).status_code == 200
    assert_refused(client.get("/free"), 401, None)


def test_unauthenticated_request_to_a_rule_is_401_with_its_scope(
    client: TestClient, issuer: TestIssuer
) -> None:
    params = assert_refused(client.post("/api/r"), 401, None)
    assert params == {"scope": "r:write", "resource_metadata": METADATA}
    expired = issuer.token(audience=RESOURCE, scope="r:write", now=NOW - 3600)
    params = assert_refused(
        client.post("/api/r", headers={"Authorization": f"Bearer {expired}"}), 401, "invalid_token"
    )
    assert params["scope"] == "r:write"


def test_rules_name_the_paths_the_app_routes_behind_a_root_path(issuer: TestIssuer) -> None:
    # uvicorn --root-path /api puts the root_path in scope["path"] ("/api/admin/x") and
    # Starlette routes without it ("/admin/x"): the /admin rule applies, not the /api one.
    with serve(make_client(issuer).app, root_path="/api") as url:
        refused = httpx.get(url + "/admin/x", headers=auth(issuer, "api"))
        assert assert_refused(refused, 403, "insufficient_scope")["scope"] == "admin"
        ok = httpx.get(url + "/admin/x", headers=auth(issuer, "admin"))
        assert ok.status_code == 200 and ok.text == "GET /api/admin/x"
        # A rule for the full path (protect() makes one from the resource URL) applies
        # where no rule covers the routed path: /free is /api/free in full.
        free = httpx.get(url + "/free", headers=auth(issuer, "r"))
        assert assert_refused(free, 403, "insufficient_scope")["scope"] == "api"


def test_websocket_paths_follow_method_less_rules(client: TestClient, issuer: TestIssuer) -> None:
    with client.websocket_connect("/admin/ws", headers=auth(issuer, "admin")) as ws:
        assert ws.receive_text() == "admin"
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/admin/ws", headers=auth(issuer, "api")),
    ):
        pass
    assert assert_refused(denied.value, 403, "insufficient_scope")["scope"] == "admin"
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/admin/ws"):
        pass
    assert assert_refused(denied.value, 401, None)["scope"] == "admin"


def test_mounted_app_that_cannot_be_decorated(client: TestClient, issuer: TestIssuer) -> None:
    assert client.get("/mcp/", headers=auth(issuer, "mcp:admin")).text == "mcp"
    params = assert_refused(
        client.get("/mcp/", headers=auth(issuer, "read")), 403, "insufficient_scope"
    )
    assert params["scope"] == "mcp:tools mcp:admin"


def test_rule_and_decorator_both_apply_and_the_challenge_names_both(
    client: TestClient, issuer: TestIssuer
) -> None:
    params = assert_refused(
        client.delete("/orders/1", headers=auth(issuer, "orders:delete")), 403, "insufficient_scope"
    )
    assert params["scope"] == "orders"
    params = assert_refused(
        client.delete("/orders/1", headers=auth(issuer, "orders")), 403, "insufficient_scope"
    )
    assert params["scope"] == "orders orders:delete"
    ok = client.delete("/orders/1", headers=auth(issuer, "orders orders:delete"))
    assert ok.text == "deleted"


def test_behind_a_root_path_a_decorator_names_the_rule_the_guard_applied(
    issuer: TestIssuer,
) -> None:
    # /orders is /api/orders in full: the decorator's 403 names the /orders rule's scopes
    # (the rule the guard applied), not the /api rule's.
    with serve(make_client(issuer).app, root_path="/api") as url:
        refused = httpx.delete(url + "/orders/1", headers=auth(issuer, "orders"))
        assert assert_refused(refused, 403, "insufficient_scope")["scope"] == "orders orders:delete"


def test_scope_hierarchy_is_opt_in_and_transitive(issuer: TestIssuer) -> None:
    rules = {"/api/r": require("read write"), "/admin": require("audit")}
    plain = make_client(issuer, rules)
    assert_refused(plain.get("/api/r", headers=auth(issuer, "admin")), 403, "insufficient_scope")
    implied = make_client(
        issuer, rules, scope_implies={"root": ["admin"], "admin": {"read", "write"}}
    )
    assert implied.get("/api/r", headers=auth(issuer, "admin")).status_code == 200
    assert implied.get("/api/r", headers=auth(issuer, "root")).status_code == 200
    params = assert_refused(
        implied.get("/api/r", headers=auth(issuer, "read")), 403, "insufficient_scope"
    )
    assert params["scope"] == "read write"  # the challenge names what the route declares
    assert_refused(implied.get("/admin", headers=auth(issuer, "root")), 403, "insufficient_scope")


def test_step_up_old_auth_time(client: TestClient, issuer: TestIssuer) -> None:
    old = auth(issuer, acr="urn:mfa", auth_time=NOW - 301)
    params = assert_refused(
        client.get("/step", headers=old), 401, "insufficient_user_authentication"
    )
    assert params["acr_values"] == "urn:mfa phr"
    assert params["max_age"] == "300"
    assert params["resource_metadata"] == METADATA
    params = assert_refused(
        client.get("/recent", headers=auth(issuer, auth_time=NOW - 61)),
        401,
        "insufficient_user_authentication",
    )
    assert params["max_age"] == "60" and "acr_values" not in params
    recent = auth(issuer, acr="phr", auth_time=NOW - 300)
    assert client.get("/step", headers=recent).status_code == 200
    skewed = auth(issuer, acr="phr", auth_time=NOW + 300)  # a clock a little ahead of ours
    assert client.get("/step", headers=skewed).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"acr": "urn:pwd", "auth_time": NOW},  # wrong acr
        {"auth_time": NOW},  # no acr
        {"acr": ["urn:mfa"], "auth_time": NOW},  # not a string
        {"acr": "urn:mfa"},  # no auth_time with max_age
        {"acr": "urn:mfa", "auth_time": "now"},  # auth_time not a number
        {"acr": "urn:mfa", "auth_time": True},
        {"acr": "urn:mfa", "auth_time": -(10**400)},  # beyond float range
        {"acr": "urn:mfa", "auth_time": NOW + 301},  # ahead of the clock: no recent login
        {"acr": "urn:mfa", "auth_time": (NOW - 10**6) * 1000},  # milliseconds, long ago
        {"acr": "urn:mfa", "auth_time": 10**30},
        {"acr": "urn:mfa", "auth_time": 10**400},  # beyond float range, ahead
    ],
)
def test_step_up_refusals(client: TestClient, issuer: TestIssuer, claims: Any) -> None:
    params = assert_refused(
        client.get("/step", headers=auth(issuer, **claims)), 401, "insufficient_user_authentication"
    )
    assert params["acr_values"] == "urn:mfa phr"


def test_path_table_matching_cost_does_not_grow_with_segments() -> None:
    table = PathTable([(None, "/a", 1), ("GET", "/a/b", 2), (None, "/", 0)])
    assert table.match("GET", "/a/b" + "/x" * 10_000) == 2
    assert table.match("POST", "/a/b/c") == 1
    assert table.match("GET", "/ab") == 0
    assert table.match(None, "/a") == 1
    lower = PathTable([("post", "/orders", 1)])
    assert lower.match("POST", "/orders/9") == 1 and lower.match("GET", "/orders") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rules": {"admin": require("a")}}, "must be a string starting with '/'"),
        ({"rules": {"/a*": require("a")}}, "no wildcards"),
        ({"rules": {"/a": "admin"}}, "must be require"),
        ({"rules": {("P0ST", "/a"): require("a")}}, "is not an HTTP method"),
        ({"rules": {"/a": require("a"), "/a/": require("b")}}, "given twice"),
        ({"rules": ["/a"]}, "rules must be a dict"),
        ({"scope_implies": {"admin": "re\\ad"}}, "not a valid value"),
        ({"scope_implies": ["admin"]}, "scope_implies must be a dict"),
        ({"resources": ["https://other.test/"]}, "have the same path"),
        ({"resources": ["ftp://api.test/x"]}, "https URL"),
        ({"resources": [""]}, "non-empty strings"),
    ],
)
def test_configuration_errors(issuer: TestIssuer, kwargs: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_guard(Starlette(), resource=RESOURCE, authorization_servers=[issuer.issuer], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scopes": 'a "b"'}, "not a valid value"),
        ({"scopes": 5}, "must be a string or an iterable"),
        ({"any_scopes": [None]}, "not a valid value"),
        ({"max_age": -1}, "non-negative integer"),
        ({"max_age": True}, "non-negative integer"),
        ({"audience": ""}, "resource identifier"),
    ],
)
def test_require_argument_errors(kwargs: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        require(**kwargs)


def test_repr_says_what_is_required() -> None:
    assert (
        repr(require("a b", any_scopes=["c"], max_age=5))
        == "require('a b', any_scopes='c', max_age=5)"
    )


def test_dpop_token_refusals_go_in_the_dpop_challenge(issuer: TestIssuer) -> None:
    """RFC 9449 §7.1: a refusal by a rule or a decorator names its error in the challenge of
    the scheme the token came with; the Bearer challenge stays plain."""
    from oauthguard.testing import DPoPKey

    key = DPoPKey()
    client = make_client(issuer, clock=time.time)
    for method, path, needed in (
        ("GET", "/admin/x", "admin"),
        ("DELETE", "/orders/1", "orders orders:delete"),
    ):
        token = issuer.token(audience=RESOURCE, scope="orders", jkt=key.thumbprint)
        refused = client.request(
            method,
            path,
            headers={
                "Authorization": f"DPoP {token}",
                "DPoP": key.proof(method, f"https://api.test{path}", token=token),
            },
        )
        params = assert_refused(refused, 403, "insufficient_scope", scheme="DPoP")
        assert params["scope"] == needed
        assert "error" not in challenge(refused)["Bearer"]


def test_a_rule_refusal_names_its_scopes_then_its_any_scopes(issuer: TestIssuer) -> None:
    rule = require("r w", any_scopes="x y")
    assert rule.challenge_scope == "r w x y"
    strict = make_client(issuer, rules={"/api": rule})
    for granted in ("r w", "r x", "x y"):
        refused = strict.get("/api/other", headers=auth(issuer, granted))
        params = assert_refused(refused, 403, "insufficient_scope")
        assert params["scope"] == "r w x y"
    assert strict.get("/api/other", headers=auth(issuer, "r w y")).status_code == 200
