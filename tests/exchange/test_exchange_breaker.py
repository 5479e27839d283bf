"""A failing token endpoint pauses the exchanges (the circuit breaker of
``oauthguard._http.breaker``): requests get a 503 at once instead of each waiting out the
failure, and one probe at a time finds out when the endpoint is back.

Failures no request can cause (unreachable, our credentials refused, 429) pause at once;
those one odd request could cause (a 5xx, a timeout, garbage) only when three different
requests in a row meet them. Refusals about the caller's token are answers: they never
pause. The endpoint is an ``httpx.MockTransport`` (a unit test of our own HTTP client)
and time an injected clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from exchange_setup import CLIENT_ID, CLIENT_SECRET, DOWNSTREAM, Clock

from oauthguard import AccessToken, TemporarilyUnavailable, providers
from oauthguard.exchange import ExchangeRefused, TokenExchange

pytestmark = pytest.mark.anyio

ACCESS = "urn:ietf:params:oauth:token-type:access_token"
GOOD = {"access_token": "downstream", "issued_token_type": ACCESS, "token_type": "Bearer"}


class Endpoint:
    """A token endpoint answering what ``answer`` says; it counts the calls it gets."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.answer(request)


def status(code: int, body: object = None, **headers: str) -> Callable[..., httpx.Response]:
    content = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    return lambda request: httpx.Response(code, content=content, headers=headers)


def good(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={**GOOD, "expires_in": 60})


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer")


def exchange_at(endpoint: Endpoint, clock: Clock) -> TokenExchange:
    return TokenExchange(
        token_endpoint="https://as.test/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handle)),
        clock=clock,
    )


async def failure(exchange: TokenExchange, subject: str | AccessToken) -> TemporarilyUnavailable:
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for(subject, resource=DOWNSTREAM)
    assert not isinstance(failed.value, ExchangeRefused)
    return failed.value


@pytest.mark.parametrize(
    ("answer", "summary"),
    [
        (unreachable, "is unreachable"),
        (status(401, {"error": "invalid_client"}), "refused our client credentials"),
        (status(429), "answered HTTP 429"),
        (status(400, {"error": "temporarily_unavailable"}), "answered temporarily_unavailable"),
    ],
)
async def test_a_failure_no_request_can_cause_pauses_at_once(
    answer: Callable[..., httpx.Response], summary: str
) -> None:
    endpoint, clock = Endpoint(answer), Clock()
    exchange = exchange_at(endpoint, clock)
    first = await failure(exchange, "subject-1")
    assert first.description == f"the token could not be exchanged: the token endpoint {summary}"
    paused = await failure(exchange, "subject-2")
    assert endpoint.calls == 1  # the second never reached the endpoint
    assert paused.description == (
        f"the token could not be exchanged: the token endpoint {summary}, and exchanges are paused"
    )
    assert paused.status == 503 and paused.retry_after >= 1


async def test_the_pause_ends_with_a_probe_that_closes_the_breaker_when_it_succeeds() -> None:
    endpoint, clock = Endpoint(unreachable), Clock()
    exchange = exchange_at(endpoint, clock)
    await failure(exchange, "subject-1")
    clock.now += 0.4
    await failure(exchange, "subject-2")  # still paused
    assert endpoint.calls == 1
    endpoint.answer = good
    clock.now += 0.2  # past the first pause: one probe goes through
    assert (await exchange.token_for("subject-3", resource=DOWNSTREAM)).access_token
    assert (await exchange.token_for("subject-4", resource=DOWNSTREAM)).access_token
    assert endpoint.calls == 3


async def test_a_failed_probe_pauses_again_for_twice_as_long() -> None:
    endpoint, clock = Endpoint(unreachable), Clock()
    exchange = exchange_at(endpoint, clock)
    await failure(exchange, "subject-1")
    clock.now += 0.6
    await failure(exchange, "subject-2")  # the probe fails: paused for 1 s
    clock.now += 0.6
    await failure(exchange, "subject-3")
    assert endpoint.calls == 2
    clock.now += 0.5
    await failure(exchange, "subject-4")
    assert endpoint.calls == 3


@pytest.mark.parametrize("answer", [status(500), status(502), timing_out, status(200, ["x"])])
async def test_one_subject_token_the_server_fails_on_never_pauses_the_others(
    answer: Callable[..., httpx.Response],
) -> None:
    endpoint, clock = Endpoint(answer), Clock()
    exchange = exchange_at(endpoint, clock)
    for _ in range(5):
        await failure(exchange, "odd-subject")
    assert endpoint.calls == 5
    endpoint.answer = good
    assert (await exchange.token_for("another-subject", resource=DOWNSTREAM)).access_token


@pytest.mark.parametrize("answer", [status(500), timing_out, status(400, b"<html>")])
async def test_failures_on_three_different_requests_pause(
    answer: Callable[..., httpx.Response],
) -> None:
    endpoint, clock = Endpoint(answer), Clock()
    exchange = exchange_at(endpoint, clock)
    for n in range(3):
        await failure(exchange, f"subject-{n}")
    assert endpoint.calls == 3
    paused = await failure(exchange, "subject-3")
    assert endpoint.calls == 3
    assert paused.description.endswith(", and exchanges are paused")


async def test_refusals_about_the_callers_token_never_pause() -> None:
    endpoint, clock = Endpoint(status(400, {"error": "invalid_grant"})), Clock()
    exchange = exchange_at(endpoint, clock)
    for n in range(5):
        with pytest.raises(ExchangeRefused):
            await exchange.token_for(f"subject-{n}", resource=DOWNSTREAM)
    assert endpoint.calls == 5


async def test_the_pause_lasts_as_long_as_retry_after_asks() -> None:
    endpoint, clock = Endpoint(status(503, None, **{"retry-after": "20"})), Clock()
    exchange = exchange_at(endpoint, clock)
    for n in range(3):
        await failure(exchange, f"subject-{n}")
    clock.now += 15
    paused = await failure(exchange, "subject-3")
    assert endpoint.calls == 3
    assert paused.retry_after == 5
    endpoint.answer = good
    clock.now += 6
    assert (await exchange.token_for("subject-4", resource=DOWNSTREAM)).access_token


async def test_one_tenants_failing_endpoint_pauses_no_other_tenant() -> None:
    """A multi-tenant Entra issuer exchanges in each caller's tenant, at its own token
    endpoint: each has a breaker of its own."""
    home, guest = "9f4c1a52-0000-4000-8000-000000000001", "9f4c1a52-0000-4000-8000-000000000002"
    calls: list[str] = []

    def entra(request: httpx.Request) -> httpx.Response:
        tenant = next(part for part in request.url.path.split("/") if part.startswith("9f4c"))
        if ".well-known" in request.url.path:
            base = "https://login.test"
            return httpx.Response(
                200,
                json={
                    "issuer": f"{base}/{tenant}/v2.0",
                    "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                    "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                },
            )
        calls.append(tenant)
        if tenant == guest:
            return httpx.Response(401, json={"error": "invalid_client"})
        return httpx.Response(200, json={**GOOD, "token_type": "Bearer", "expires_in": 60})

    api = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
    exchange = TokenExchange(
        providers.entra(api, authority="https://login.test", tenants=[home, guest]),
        client_id=api,
        client_secret="app-secret",
        auth_method="client_secret_post",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(entra)),
        clock=Clock(),
    )

    def caller(tenant: str, n: int) -> AccessToken:
        claims = {"tid": tenant}
        return AccessToken("alice", api, frozenset(), (api,), None, None, claims, raw=f"t{n}")

    for n in range(2):
        await failure(exchange, caller(guest, n))  # the second one: paused
    assert calls == [guest]
    token = await exchange.token_for(caller(home, 2), resource="https://graph.microsoft.com")
    assert token.access_token == "downstream" and calls == [guest, home]
