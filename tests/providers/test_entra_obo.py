"""Entra's on-behalf-of flow behind ``TokenExchange.token_for`` for a ``providers.entra``
issuer. No real Entra here: a loopback server answers as Entra's v2.0 endpoints do
(discovery per tenant, ``/{tenant}/oauth2/v2.0/token`` with the JWT bearer grant and
``requested_token_use=on_behalf_of``, AADSTS errors), and the tests hold the request shape
Microsoft documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import serve

from oauthguard import AccessToken, TemporarilyUnavailable, providers
from oauthguard._verify.trust import TENANT_CACHE_SIZE
from oauthguard.exchange import JWT_BEARER_GRANT, ExchangeRefused, TokenExchange

pytestmark = pytest.mark.anyio

API = "6e74172b-be56-4843-9ff4-e66a39bb12e3"  # the MCP server's app (the exchanging client)
HOME = "9f4c1a52-0000-4000-8000-000000000001"
GUEST = "9f4c1a52-0000-4000-8000-000000000002"
GRAPH = "https://graph.microsoft.com"
MFA_CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}'


@dataclass
class EntraStandIn:
    """Entra's v2.0 discovery and token endpoints, as far as on-behalf-of goes."""

    base: str = ""
    forms: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{tid}/v2.0/.well-known/openid-configuration", self.metadata),
                Route("/{tid}/oauth2/v2.0/token", self.token, methods=["POST"]),
            ]
        )

    async def metadata(self, request: Request) -> Response:
        tid = request.path_params["tid"]
        return JSONResponse(
            {
                "issuer": f"{self.base}/{tid}/v2.0",
                "token_endpoint": f"{self.base}/{tid}/oauth2/v2.0/token",
                "jwks_uri": f"{self.base}/{tid}/discovery/v2.0/keys",
            }
        )

    async def token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        self.forms.append((request.path_params["tid"], form))
        if form.get("client_secret") != ["app-secret"]:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid secret"},
                status_code=401,
            )
        [scope] = form["scope"]
        if scope.startswith("api://mfa-protected"):
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "AADSTS50076: you must use multi-factor authentication"
                    " to access 'api://mfa-protected'.\r\nTrace ID: 0c1d",
                    "error_codes": [50076],
                    "suberror": "basic_action",
                    "claims": MFA_CLAIMS,
                },
                status_code=400,
            )
        return JSONResponse(  # Entra's answer: no issued_token_type
            {
                "token_type": "Bearer",
                "scope": f"{GRAPH}/User.Read {GRAPH}/Mail.Read",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": "eyJ0eXAiOiJKV1QifQ.graph-token.sig",
                "refresh_token": "0.AAAA-refresh",
            }
        )


@pytest.fixture
def entra() -> Iterator[EntraStandIn]:
    stand_in = EntraStandIn()
    with serve(stand_in.app()) as base:
        stand_in.base = base
        yield stand_in


def exchange_at(entra: EntraStandIn, **preset: Any) -> TokenExchange:
    preset = preset or {"tenant": HOME}
    issuer = providers.entra(API, authority=entra.base, **preset)
    return TokenExchange(
        issuer, client_id=API, client_secret="app-secret", auth_method="client_secret_post"
    )


async def test_the_request_is_entras_on_behalf_of_grant(entra: EntraStandIn) -> None:
    exchange = exchange_at(entra)
    token = await exchange.token_for("the-callers-token", resource=GRAPH, scope="User.Read")
    [(tenant, form)] = entra.forms
    assert tenant == HOME
    assert form == {
        "grant_type": [JWT_BEARER_GRANT],
        "assertion": ["the-callers-token"],
        "requested_token_use": ["on_behalf_of"],
        "scope": [f"{GRAPH}/User.Read"],
        "client_id": [API],
        "client_secret": ["app-secret"],
    }
    assert token.access_token == "eyJ0eXAiOiJKV1QifQ.graph-token.sig"
    assert (token.token_type, token.issued_token_type) == (
        "Bearer",
        "urn:ietf:params:oauth:token-type:access_token",
    )
    assert token.scope == f"{GRAPH}/User.Read {GRAPH}/Mail.Read"
    await exchange.aclose()


async def test_no_scope_asks_for_every_permission_granted(entra: EntraStandIn) -> None:
    exchange = exchange_at(entra)
    await exchange.token_for("t", resource="api://orders-api")
    await exchange.token_for("t", resource="api://orders-api", scope="api://other/x read")
    assert [form["scope"] for _, form in entra.forms] == [
        ["api://orders-api/.default"],
        ["api://other/x api://orders-api/read"],
    ]
    await exchange.aclose()


async def test_a_multi_tenant_preset_exchanges_in_the_callers_tenant(entra: EntraStandIn) -> None:
    exchange = exchange_at(entra, tenants=[HOME, GUEST])
    caller = AccessToken(
        "alice", API, frozenset(), (API,), None, None, {"tid": GUEST}, raw="guest-token"
    )
    await exchange.token_for(caller, resource=GRAPH)
    [(tenant, form)] = entra.forms
    assert tenant == GUEST and form["assertion"] == ["guest-token"]
    with pytest.raises(ExchangeRefused, match="names no tenant"):
        await exchange.token_for("no-tid-here", resource=GRAPH)
    stranger = AccessToken(
        "eve", API, frozenset(), (API,), None, None, {"tid": API}, raw="stranger-token"
    )
    with pytest.raises(ExchangeRefused, match="not one of the issuer's"):
        await exchange.token_for(stranger, resource=GRAPH)
    assert len(entra.forms) == 1  # neither reached Entra
    await exchange.aclose()


async def test_a_tenants_function_that_fails_refuses_the_exchange(
    entra: EntraStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    def tenant_directory(tid: str) -> bool:
        raise LookupError("the tenant directory is down")

    exchange = exchange_at(entra, tenants=tenant_directory)
    caller = AccessToken(
        "alice", API, frozenset(), (API,), None, None, {"tid": GUEST}, raw="guest-token"
    )
    # fail closed, as the guard does: a tenant the function cannot judge is not allowed
    with pytest.raises(ExchangeRefused, match="not one of the issuer's"):
        await exchange.token_for(caller, resource=GRAPH)
    assert entra.forms == [] and "tenant directory is down" in caplog.text
    await exchange.aclose()


async def test_the_tenants_whose_metadata_is_kept_are_bounded_in_number() -> None:
    """An API open to every tenant (tenants= a function saying yes) keeps the token
    endpoints of at most TENANT_CACHE_SIZE of them, as the guard keeps their keys."""
    fetched: list[str] = []

    def entra(request: httpx.Request) -> httpx.Response:
        [tenant] = [part for part in request.url.path.split("/") if part.startswith("tenant-")]
        if request.method == "GET":
            fetched.append(tenant)  # one discovery document per tenant, its first URL
            base = f"https://login.test/{tenant}"
            return httpx.Response(
                200, json={"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/token"}
            )
        return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer"})

    issuer = providers.entra(API, authority="https://login.test", tenants=lambda tid: True)
    exchange = TokenExchange(
        issuer,
        client_id=API,
        client_secret="app-secret",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(entra)),
    )
    tenants = [f"tenant-{n}" for n in range(TENANT_CACHE_SIZE + 1)] + ["tenant-0"]
    for tid in tenants:
        caller = AccessToken("alice", API, frozenset(), (API,), None, None, {"tid": tid}, raw=tid)
        await exchange.token_for(caller, resource=GRAPH)
    assert fetched == tenants  # tenant-0's metadata was let go, and fetched again
    await exchange.aclose()


async def test_entras_refusal_keeps_its_code_and_claims_challenge(entra: EntraStandIn) -> None:
    exchange = exchange_at(entra)
    with pytest.raises(ExchangeRefused) as refused:
        await exchange.token_for("t", resource="api://mfa-protected")
    error = refused.value
    assert error.code == "invalid_grant"
    assert error.server_description.startswith("AADSTS50076: you must use multi-factor")
    assert "\r" not in error.server_description and "\n" not in error.server_description
    assert json.loads(error.claims or "") == json.loads(MFA_CLAIMS)
    await exchange.aclose()


async def test_a_wrong_secret_is_a_503_for_the_caller(entra: EntraStandIn) -> None:
    issuer = providers.entra(API, authority=entra.base, tenant=HOME)
    exchange = TokenExchange(
        issuer, client_id=API, client_secret="stale", auth_method="client_secret_post"
    )
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for("t", resource=GRAPH)
    assert failed.value.description == (
        "the token could not be exchanged: the token endpoint refused our client credentials"
    )
    await exchange.aclose()


async def test_entra_exchanges_for_one_api_at_a_time(entra: EntraStandIn) -> None:
    from oauthguard import ConfigurationError

    exchange = exchange_at(entra)
    with pytest.raises(ConfigurationError, match="one resource"):
        await exchange.token_for("t", resource=[GRAPH, "api://orders"])
    await exchange.aclose()
