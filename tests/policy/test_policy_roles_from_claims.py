"""require(roles=...) end to end with JWTs from TestIssuer: the issuer's roles claims
(``Issuer(roles_claims=...)``, Keycloak-shaped nested paths) fill ``AccessToken.roles``, and
the decorator, the path rule, the FastAPI dependency and an MCP tool check them alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from guards import build_guard
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from support import assert_refused, free_port, serve

from oauthguard import AccessToken, Issuer, require
from oauthguard.mcp import protect
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/"
ISSUER = TestIssuer("https://idp.test/realms/demo")
ROLES_CLAIMS = ("realm_access.roles", "resource_access.orders-api.roles")


@require("orders:write", roles="clerk")
async def decorated(request: Request) -> Response:
    return PlainTextResponse("ordered")


async def ruled(request: Request) -> Response:
    return PlainTextResponse("ruled")


def guarded(app: Any) -> Any:
    return build_guard(
        app,
        resource=RESOURCE,
        authorization_servers=[Issuer(ISSUER.issuer, roles_claims=ROLES_CLAIMS)],
        http_client=ISSUER.http_client(),
        rules={"/ruled": require("orders:write", roles="clerk")},
    )


def fastapi_app() -> FastAPI:
    api = FastAPI()

    @api.post("/orders")
    async def orders(
        token: AccessToken = Depends(require("orders:write", roles="clerk")),  # noqa: B008
    ) -> str:
        return "ordered"

    return api


@pytest.fixture(scope="module")
def clients() -> dict[str, TestClient]:
    starlette = Starlette(
        routes=[
            Route("/orders", decorated, methods=["POST"]),
            Route("/ruled", ruled, methods=["POST"]),
        ]
    )
    return {
        "decorator": TestClient(guarded(starlette), base_url="https://api.test"),
        "rule": TestClient(guarded(starlette), base_url="https://api.test"),
        "fastapi": TestClient(guarded(fastapi_app()), base_url="https://api.test"),
    }


PATHS = {"decorator": "/orders", "rule": "/ruled", "fastapi": "/orders"}


def post(clients: dict[str, TestClient], use: str, **claims: Any) -> httpx.Response:
    token = ISSUER.token(
        audience=RESOURCE, scope=claims.pop("scope", "orders:write"), claims=claims
    )
    return clients[use].post(PATHS[use], headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("use", list(PATHS))
def test_roles_from_the_issuers_claims_meet_require_roles(
    clients: dict[str, TestClient], use: str
) -> None:
    assert post(clients, use, realm_access={"roles": ["clerk"]}).status_code == 200
    nested = {"orders-api": {"roles": ["clerk"]}}
    assert post(clients, use, resource_access=nested).status_code == 200
    refused = post(clients, use, realm_access={"roles": ["user"]})
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["error_description"] == "the token lacks the role 'clerk'"
    assert "scope" not in params
    # Another client's roles are not this API's.
    other = {"other-api": {"roles": ["clerk"]}}
    assert_refused(post(clients, use, resource_access=other), 403, "insufficient_scope")
    # The scope missing too: named.
    refused = post(clients, use, scope="orders:read", realm_access={"roles": ["user"]})
    assert assert_refused(refused, 403, "insufficient_scope")["scope"] == "orders:write"


@pytest.mark.parametrize("use", list(PATHS))
@pytest.mark.parametrize(
    "realm_access",
    [
        {"roles": 5},  # a number where an array is expected
        {"roles": {"clerk": True}},  # an object where an array is expected
        {"roles": [["clerk"]]},
        {"roles": [True]},
        ["clerk"],  # an array where an object is expected
    ],
)
def test_a_roles_claim_of_the_wrong_json_type_never_passes(
    clients: dict[str, TestClient], use: str, realm_access: Any
) -> None:
    response = post(clients, use, realm_access=realm_access)
    assert response.status_code in (401, 403), response.text
    assert_refused(response, response.status_code, response.json()["error"])


@pytest.mark.anyio
async def test_an_mcp_tool_that_needs_a_role_from_the_token() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    server = MCPServer("x")

    @server.tool()
    def admin() -> str:
        return "done"

    app = protect(
        server.streamable_http_app(stateless_http=True, json_response=True),
        resource=url,
        authorization_servers=Issuer(ISSUER.issuer, roles_claims=ROLES_CLAIMS),
        scopes="mcp:tools",
        tool_scopes={"admin": require(roles="admin")},
        http_client=ISSUER.http_client(),
    )
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "admin"}}'
    sent = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2025-06-18",
    }
    with serve(app, port=port):
        async with httpx.AsyncClient() as http:
            for roles, status in ((["user"], 403), (["admin"], 200)):
                token = ISSUER.token(
                    audience=url, scope="mcp:tools", claims={"realm_access": {"roles": roles}}
                )
                response = await http.post(
                    url, content=body, headers=sent | {"authorization": f"Bearer {token}"}
                )
                assert response.status_code == status, response.text
                if status == 403:
                    params = assert_refused(response, 403, "insufficient_scope")
                    assert params["error_description"] == "the token lacks the role 'admin'"
                    assert "scope" not in params
