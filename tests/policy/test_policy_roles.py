"""require(roles=, clients=, claims=) over HTTP: as a Starlette decorator, as a path rule,
as a FastAPI dependency (Depends and Security): a miss is 403 insufficient_scope whose
challenge names no scope unless scopes are missing too, the same in every place."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Security
from guards import build_guard
from role_tokens import RoleTokens
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from support import assert_refused, serve

from oauthguard import AccessToken, require

RESOURCE = "https://api.test/"
METADATA = "https://api.test/.well-known/oauth-protected-resource"
ROLE_MISS = (
    'Bearer error="insufficient_scope", error_description="the token lacks the role '
    f'\'admin\'", resource_metadata="{METADATA}", '
    f'DPoP algs="ES256 EdDSA RS256 PS256", resource_metadata="{METADATA}"'
)


@require(roles="admin")
async def admin(request: Request) -> Response:
    return PlainTextResponse(f"admin {request.auth.subject}")


@require("orders:write", roles="clerk", clients=["web", "cli"])
def orders(request: Request) -> Response:
    return PlainTextResponse("ordered")


@require(claims={"tenant": "acme", "realm_access.roles": "ops"})
async def tenant(request: Request) -> Response:
    return PlainTextResponse("acme")


async def echo(request: Request) -> Response:
    return PlainTextResponse("reached")


def fastapi_app() -> FastAPI:
    api = FastAPI()

    @api.get("/admin")
    async def admin_dependency(
        token: AccessToken = Depends(require(roles="admin")),  # noqa: B008
    ) -> str:
        return token.subject or ""

    @api.get("/orders")
    async def orders_security(
        token: AccessToken = Security(require(roles="clerk"), scopes=["orders:write"]),  # noqa: B008
    ) -> str:
        return "ordered"

    @api.get("/tenant")
    async def tenant_dependency(
        token: AccessToken = Depends(require(claims={"tenant": "acme"})),  # noqa: B008
    ) -> str:
        return "acme"

    return api


RULES: dict[Any, Any] = {
    "/ruled/admin": require(roles="admin"),
    "/ruled/orders": require("orders:write", roles="clerk", clients=["web", "cli"]),
    "/ruled/tenant": require(claims={"tenant": "acme", "realm_access.roles": "ops"}),
    "/api": require("api"),
}


@pytest.fixture(scope="module")
def tokens() -> RoleTokens:
    return RoleTokens(RESOURCE)


def make_app(tokens: RoleTokens) -> Any:
    app = Starlette(
        routes=[
            Route("/admin", admin),
            Route("/orders", orders),
            Route("/tenant", tenant),
            Route("/ruled/{rest:path}", echo),
            Route("/api/admin", admin),
        ]
    )
    return guarded(app, tokens)


def guarded(app: Any, tokens: RoleTokens) -> Any:
    return build_guard(
        app,
        resource=RESOURCE,
        authorization_servers="https://issuer.test",
        verifier=tokens,
        rules=RULES,
    )


class Clients:
    """The Starlette app, and the FastAPI one for paths under ``/fastapi``."""

    def __init__(self, tokens: RoleTokens, **options: Any) -> None:
        self.starlette = TestClient(make_app(tokens), base_url="https://api.test", **options)
        api = guarded(fastapi_app(), tokens)
        self.fastapi = TestClient(api, base_url="https://api.test", **options)

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        if path.startswith("/fastapi/"):
            return self.fastapi.get(path.removeprefix("/fastapi"), headers=headers)
        return self.starlette.get(path, headers=headers)


@pytest.fixture(scope="module")
def client(tokens: RoleTokens) -> Clients:
    return Clients(tokens)


#: The same requirement in each place: decorator, path rule, FastAPI dependency.
ADMIN = ["/admin", "/ruled/admin", "/fastapi/admin"]
ORDERS = ["/orders", "/ruled/orders", "/fastapi/orders"]
TENANT = ["/tenant", "/ruled/tenant"]


@pytest.mark.parametrize("path", ADMIN)
def test_a_missing_role_is_403_with_no_scope_in_the_challenge(
    client: Clients, tokens: RoleTokens, path: str
) -> None:
    refused = client.get(path, headers=tokens.bearer("anything", roles=["clerk"]))
    assert_refused(refused, 403, "insufficient_scope")
    assert refused.headers["www-authenticate"] == ROLE_MISS
    assert refused.json() == {
        "error": "insufficient_scope",
        "error_description": "the token lacks the role 'admin'",
    }
    ok = client.get(path, headers=tokens.bearer(roles=["admin"]))
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", ORDERS)
def test_with_scopes_missing_too_the_challenge_names_them(
    client: Clients, tokens: RoleTokens, path: str
) -> None:
    refused = client.get(
        path, headers=tokens.bearer("orders:read", roles=["admin"], client_id="web")
    )
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == "orders:write"
    assert params["error_description"] == (
        "this operation needs the scopes: orders:write; the token lacks the role 'clerk'"
    )
    # With the scopes, the role alone: no scope to step up to.
    refused = client.get(
        path, headers=tokens.bearer("orders:write", roles=["admin"], client_id="web")
    )
    params = assert_refused(refused, 403, "insufficient_scope")
    assert "scope" not in params
    assert params["error_description"] == "the token lacks the role 'clerk'"
    # Only the scope missing: as before.
    refused = client.get(
        path, headers=tokens.bearer("orders:read", roles=["clerk"], client_id="web")
    )
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == "orders:write"
    ok = client.get(path, headers=tokens.bearer("orders:write", roles=["clerk"], client_id="cli"))
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", ["/orders", "/ruled/orders"])
def test_a_client_not_allowed_is_403_naming_it(
    client: Clients, tokens: RoleTokens, path: str
) -> None:
    for client_id, description in (
        ("other", "the token's client 'other' is not one of 'web', 'cli'"),
        (
            None,
            "the token names no client (client_id, azp, cid or appid); this operation is "
            "for 'web', 'cli'",
        ),
    ):
        sent = tokens.bearer("orders:write", roles=["clerk"], client_id=client_id)
        params = assert_refused(client.get(path, headers=sent), 403, "insufficient_scope")
        assert params["error_description"] == description
        assert "scope" not in params


@pytest.mark.parametrize("path", [*TENANT, "/fastapi/tenant"])
def test_claims_of_the_wrong_json_type_never_pass(
    client: Clients, tokens: RoleTokens, path: str
) -> None:
    good = {"tenant": "acme", "realm_access": {"roles": ["ops"]}}
    assert client.get(path, headers=tokens.bearer(claims=good)).status_code == 200
    for claims in (
        {"tenant": 1, "realm_access": {"roles": ["ops"]}},
        {"tenant": ["acme"], "realm_access": {"roles": "ops"}},  # array: holds "acme"
        {"tenant": {"acme": True}, "realm_access": {"roles": ["ops"]}},
        {"tenant": "acme", "realm_access": ["roles"]},
        {"tenant": "acme", "realm_access": {"roles": {"ops": True}}},
        {"tenant": "acme", "realm_access": {"roles": [["ops"]]}},
        {"tenant": "acme"},
        {},
    ):
        response = client.get(path, headers=tokens.bearer(claims=claims))
        if path == "/fastapi/tenant" and claims.get("tenant") in ("acme", ["acme"]):
            assert response.status_code == 200  # needs the tenant alone
            continue
        if claims == {"tenant": ["acme"], "realm_access": {"roles": "ops"}}:
            assert response.status_code == 200  # an array holding it; a string equal to it
            continue
        params = assert_refused(response, 403, "insufficient_scope")
        assert "scope" not in params, claims
        assert "the token" in params["error_description"] and "claim" in params["error_description"]


def test_fastapi_security_scopes_and_roles(client: Clients, tokens: RoleTokens) -> None:
    refused = client.get("/fastapi/orders", headers=tokens.bearer(roles=["admin"]))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == "orders:write"
    refused = client.get("/fastapi/orders", headers=tokens.bearer("orders:write"))
    assert "scope" not in assert_refused(refused, 403, "insufficient_scope")
    ok = client.get("/fastapi/orders", headers=tokens.bearer("orders:write", roles=["clerk"]))
    assert ok.status_code == 200


def test_an_unauthenticated_request_to_a_role_only_rule_names_no_scope(
    client: Clients,
) -> None:
    params = assert_refused(client.get("/ruled/admin"), 401, None)
    assert params == {"resource_metadata": METADATA}
    params = assert_refused(client.get("/ruled/orders"), 401, None)
    assert params == {"scope": "orders:write", "resource_metadata": METADATA}


def test_a_rule_with_scopes_and_a_decorator_with_a_role(
    client: Clients, tokens: RoleTokens
) -> None:
    # The rule's scope is met, the decorator's role is not: no scope in the challenge.
    refused = client.get("/api/admin", headers=tokens.bearer("api", roles=["clerk"]))
    assert refused.headers["www-authenticate"] == ROLE_MISS
    refused = client.get("/api/admin", headers=tokens.bearer("other", roles=["admin"]))
    assert assert_refused(refused, 403, "insufficient_scope")["scope"] == "api"
    assert client.get("/api/admin", headers=tokens.bearer("api", roles=["admin"])).text == (
        "admin user-1"
    )


def test_a_client_id_with_quotes_and_line_breaks_never_breaks_the_header(
    tokens: RoleTokens,
) -> None:
    hostile = 'x", error="none\r\nSet-Cookie: a=1\r\n\r\n<html>' + "é" * 300
    with serve(make_app(tokens)) as url:
        for path in ("/orders", "/ruled/orders"):
            sent = tokens.bearer("orders:write", roles=["clerk"], client_id=hostile)
            response = httpx.get(url + path, headers=sent)
            params = assert_refused(response, 403, "insufficient_scope")
            assert "set-cookie" not in response.headers
            assert params["error"] == "insufficient_scope"
            description = params["error_description"]
            # RFC 6750 §3: no '"' and no '\\' in an error_description.
            assert description.startswith("the token's client 'x', error='none/r/nSet-Cookie")
            assert description.endswith("...' is not one of 'web', 'cli'")
            assert len(description) < 400


def test_a_token_whose_roles_are_not_a_set_is_503_never_a_pass(tokens: RoleTokens) -> None:
    token = tokens.issue("api")
    tokens.tokens[token] = AccessToken(
        "u",
        "app",
        frozenset({"api"}),
        (RESOURCE,),
        None,
        None,
        roles="admin",  # type: ignore[arg-type]
    )
    client = Clients(tokens, raise_server_exceptions=False)
    for path in ("/admin", "/ruled/admin", "/fastapi/admin"):
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503, (path, response.text)
        assert response.json()["error"] == "temporarily_unavailable"
