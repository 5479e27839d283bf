"""DPoP-bound exchanged tokens (RFC 9449 §5) and ``ExchangeAuth``, which sends each
downstream request with the exchanged token and a fresh proof."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from exchange_setup import CLIENT_ID, CLIENT_SECRET, DOWNSTREAM, Setup, exchange_setup
from oidc_provider import jose_part
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauthguard import DPoP, DPoPNonces, OAuthGuard, ResourceServer, TemporarilyUnavailable
from oauthguard.exchange import ExchangeAuth, ExchangeRefused, TokenExchange
from oauthguard.testing import DPoPKey

pytestmark = pytest.mark.anyio


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    async with exchange_setup() as made:
        made.clock.now = time.time()  # DPoP proofs carry the real time
        yield made


def downstream(setup: Setup, dpop: DPoP) -> httpx.AsyncClient:
    """The downstream API behind a guard that takes DPoP-bound tokens only."""

    async def orders(request: Request) -> Response:
        return JSONResponse({"scheme": request.auth.scheme, "sub": request.auth.subject})

    server = ResourceServer(
        resource=DOWNSTREAM,
        authorization_servers=setup.issuer.issuer,
        http_client=setup.http,
        dpop=dpop,
    )
    app = OAuthGuard(Starlette(routes=[Route("/api", orders)]), server)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://orders.test")


async def test_a_dpop_key_gets_a_token_bound_to_it(setup: Setup) -> None:
    key = DPoPKey()
    caller = await setup.caller()
    token = await setup.exchange(dpop_key=key).token_for(caller, resource=DOWNSTREAM)
    [request] = [r for r in setup.issuer.requests if r.url.path == "/token"]
    assert jose_part(request.headers["dpop"], 1)["htu"] == "https://issuer.test/token"
    assert token.token_type == "DPoP" and token.dpop_key is key
    assert jose_part(token.access_token, 1)["cnf"] == {"jkt": key.thumbprint}


async def test_exchange_auth_sends_the_bound_token_with_a_fresh_proof_each_time(
    setup: Setup,
) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(dpop_key=DPoPKey())
    async with downstream(setup, DPoP(mode="required")) as api:
        api.auth = ExchangeAuth(exchange, caller, resource=DOWNSTREAM)
        first = await api.get("/api")
        second = await api.get("/api")  # a replayed proof would be refused
    assert first.status_code == second.status_code == 200, first.text
    assert first.json() == {"scheme": "DPoP", "sub": "alice"}
    assert exchange.calls == 1
    proofs = {r.headers["dpop"] for r in (first.request, second.request)}
    assert len(proofs) == 2


async def test_exchange_auth_answers_the_apis_nonce_challenge(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(dpop_key=DPoPKey())
    nonces = DPoPNonces(secret="exchange test nonce secret, 32 bytes", lifetime=300)
    async with downstream(setup, DPoP(mode="required", nonces=nonces)) as api:
        api.auth = ExchangeAuth(exchange, caller, resource=DOWNSTREAM)
        response = await api.get("/api")
    assert response.status_code == 200, response.text
    assert "nonce" in jose_part(response.request.headers["dpop"], 1)


async def test_exchange_auth_sends_a_bearer_token_as_bearer(setup: Setup) -> None:
    caller = await setup.caller()
    async with downstream(setup, DPoP()) as api:
        api.auth = ExchangeAuth(setup.exchange(), caller, resource=DOWNSTREAM)
        response = await api.get("/api")
    assert response.json() == {"scheme": "Bearer", "sub": "alice"}
    assert "dpop" not in response.request.headers


def test_exchange_auth_needs_an_async_client() -> None:
    auth = ExchangeAuth(
        TokenExchange(token_endpoint="https://as.test/token", client_id="c", client_secret="s"),
        "token",
        resource=DOWNSTREAM,
    )
    with httpx.Client(auth=auth) as client, pytest.raises(RuntimeError, match="AsyncClient"):
        client.get("https://orders.test/api")


async def test_the_token_endpoints_dpop_nonce_is_used_on_one_retry() -> None:
    proofs: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        proofs.append(jose_part(request.headers["dpop"], 1))
        if len(proofs) == 1:  # RFC 9449 §8: the server asks for its nonce
            return httpx.Response(
                400, json={"error": "use_dpop_nonce"}, headers={"dpop-nonce": "n-1"}
            )
        body = {
            "access_token": "bound",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "DPoP",
            "expires_in": 60,
        }
        return httpx.Response(200, content=json.dumps(body))

    exchange = TokenExchange(
        token_endpoint="https://as.test/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        dpop_key=DPoPKey(),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    token = await exchange.token_for("subject", resource=DOWNSTREAM)
    assert token.token_type == "DPoP"
    assert "nonce" not in proofs[0] and proofs[1]["nonce"] == "n-1"
    assert exchange.calls == 2


@pytest.mark.parametrize("code", ["use_dpop_nonce", "invalid_dpop_proof"])
async def test_a_token_endpoint_refusing_our_proofs_is_a_503_after_one_retry(code: str) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)  # a fresh nonce with every refusal: no end of retries to ask
        return httpx.Response(400, json={"error": code}, headers={"dpop-nonce": f"n-{len(sent)}"})

    exchange = TokenExchange(
        token_endpoint="https://as.test/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        dpop_key=DPoPKey(),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    # RFC 9449 §8 / §5: our proof, not the caller's token, is what the server refuses
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for("subject", resource=DOWNSTREAM)
    assert not isinstance(failed.value, ExchangeRefused) and failed.value.status == 503
    assert exchange.calls == len(sent) <= 2
