"""Every way a token exchange fails, with what the caller sees: the authorization server's
refusals (RFC 8693 §2.2.2, RFC 6749 §5.2) as ``ExchangeRefused`` (403 through the guard),
no usable answer as ``TemporarilyUnavailable`` (503), bad settings as ``ConfigurationError``.

The answers no real server gives on purpose (malformed, failing) come from an
``httpx.MockTransport``: this is a unit test of our own HTTP client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from exchange_setup import CLIENT_ID, CLIENT_SECRET, DOWNSTREAM, MCP, Clock, Setup, exchange_setup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import assert_refused

from oauthguard import ConfigurationError, OAuthGuard, ResourceServer, TemporarilyUnavailable
from oauthguard.exchange import ExchangeRefused, TokenExchange
from oauthguard.testing import DPoPKey

pytestmark = pytest.mark.anyio

ENDPOINT = "https://as.test/token"


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    async with exchange_setup(
        lambda issuer: issuer.register_client(client_id="stranger", client_secret="s3cret")
    ) as made:
        yield made


# -- the authorization server refuses -----------------------------------------------------
@pytest.mark.parametrize(
    ("target", "scope", "code"),
    [
        ("https://payroll.test/api", None, "invalid_target"),  # not in the client's policy
        (DOWNSTREAM, "orders:delete", "invalid_scope"),
    ],
)
async def test_a_target_or_scope_the_policy_refuses_is_exchange_refused(
    setup: Setup, target: str, scope: str | None, code: str
) -> None:
    caller = await setup.caller()
    with pytest.raises(ExchangeRefused) as refused:
        await setup.exchange().token_for(caller, resource=target, scope=scope)
    error = refused.value
    assert (error.code, error.status, error.error) == (code, 403, "insufficient_scope")
    assert error.description.startswith(
        f"the authorization server refused to exchange the token for {target}: {code} ("
    )


async def test_an_expired_subject_token_is_invalid_grant(setup: Setup) -> None:
    expired = setup.issuer.token(subject="alice", audience=MCP, expires_in=-10)
    with pytest.raises(ExchangeRefused) as refused:
        await setup.exchange().token_for(expired, resource=DOWNSTREAM)
    assert refused.value.code == "invalid_grant"


async def test_a_client_without_an_exchange_policy_is_unauthorized_client(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(client_id="stranger", client_secret="s3cret")
    with pytest.raises(ExchangeRefused) as refused:
        await exchange.token_for(caller, resource=DOWNSTREAM)
    assert refused.value.code == "unauthorized_client"


async def test_wrong_client_credentials_are_a_503_not_the_callers_fault(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(client_secret="wrong")
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for(caller, resource=DOWNSTREAM)
    assert failed.value.status == 503
    assert failed.value.description == (
        "the token could not be exchanged: the token endpoint refused our client credentials"
    )


async def test_refusals_are_not_cached(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange()
    for _ in range(2):
        with pytest.raises(ExchangeRefused):
            await exchange.token_for(caller, resource="https://payroll.test/api")
    assert exchange.calls == 2


# -- through the guard: 403 and 503 ---------------------------------------------------------
def guarded_route(setup: Setup, exchange: TokenExchange, target: str) -> OAuthGuard:
    async def orders(request: Request) -> Response:
        token = await exchange.token_for(request.auth, resource=target)
        return JSONResponse({"token_type": token.token_type})

    server = ResourceServer(
        resource=MCP,
        authorization_servers=setup.issuer.issuer,
        http_client=setup.http,
        clock=setup.clock,
    )
    return OAuthGuard(Starlette(routes=[Route("/mcp", orders)]), server)


async def _get(app: OAuthGuard, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://mcp.test") as client:
        return await client.get("/mcp", headers={"Authorization": f"Bearer {token}"})


async def test_a_refusal_that_escapes_to_the_guard_is_a_403(setup: Setup) -> None:
    app = guarded_route(setup, setup.exchange(), "https://payroll.test/api")
    token = setup.issuer.token(subject="alice", audience=MCP)
    response = await _get(app, token)
    params = assert_refused(response, 403, "insufficient_scope")
    assert params["error_description"].startswith(
        "the authorization server refused to exchange the token for https://payroll.test/api: "
        "invalid_target"
    )
    assert "scope" not in params  # no scope the client could ask for helps


async def test_no_answer_that_escapes_to_the_guard_is_a_503_with_retry_after(setup: Setup) -> None:
    exchange = TokenExchange(
        token_endpoint=ENDPOINT,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        http_client=mock(lambda request: httpx.Response(502)),
    )
    app = guarded_route(setup, exchange, DOWNSTREAM)
    response = await _get(app, setup.issuer.token(subject="alice", audience=MCP))
    assert response.status_code == 503
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "the token could not be exchanged: the token endpoint answered "
        "HTTP 502",
    }
    assert response.headers["retry-after"] == "5"


# -- no usable answer ---------------------------------------------------------------------
def mock(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def answering(status: int = 200, body: Any = None, **headers: str) -> httpx.AsyncClient:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return mock(lambda request: httpx.Response(status, content=content, headers=headers))


ACCESS = "urn:ietf:params:oauth:token-type:access_token"
GOOD = {
    "access_token": "downstream-token",
    "issued_token_type": ACCESS,
    "token_type": "Bearer",
    "expires_in": 60,
}


def with_expires_in(number: str) -> bytes:
    """A good answer whose expires_in is ``number`` as written in the JSON text."""
    return json.dumps({**GOOD, "expires_in": 60}).replace("60", number).encode()


def exchange_with(http: httpx.AsyncClient, **settings: Any) -> TokenExchange:
    options: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    options.update(settings)
    return TokenExchange(token_endpoint=ENDPOINT, http_client=http, clock=Clock(), **options)


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


@pytest.mark.parametrize(
    ("http", "summary"),
    [
        (mock(_raise(httpx.ConnectError("refused"))), "is unreachable"),
        (mock(_raise(httpx.ReadTimeout("slow"))), "timed out"),
        (answering(500, {}, **{"retry-after": "30"}), "answered HTTP 500"),
        (answering(429, {}), "answered HTTP 429"),
        (answering(400, b"<html>bad</html>"), "answered HTTP 400"),
        (answering(401, {"error": "invalid_client"}), "refused our client credentials"),
        (answering(400, {"error": "invalid_client"}), "refused our client credentials"),
        # an error code no RFC names, long enough to fill a header: no code we can pass on
        (answering(400, {"error": "invalid_" + "x" * 100_000}), "answered HTTP 400"),
        (answering(400, {"error": "temporarily_unavailable"}), "answered temporarily_unavailable"),
        (answering(200, b"not json"), "sent a malformed answer"),
        (answering(200, ["a", "list"]), "sent a malformed answer"),
        (answering(200, {**GOOD, "access_token": None}), "sent a malformed answer"),
        (answering(200, {**GOOD, "access_token": "a b\n"}), "sent a malformed answer"),
        # RFC 6750 §2.1: what cannot go in an Authorization header as one b64token, each
        # reader of that header would split its own way
        (answering(200, {**GOOD, "access_token": "a b"}), "sent a malformed answer"),
        (answering(200, {**GOOD, "access_token": "a, Basic Zm9v"}), "sent a malformed answer"),
        (answering(200, {**GOOD, "issued_token_type": None}), "sent a malformed answer"),
        (
            answering(
                200, {**GOOD, "issued_token_type": "urn:ietf:params:oauth:token-type:id_token"}
            ),
            "sent a malformed answer",
        ),
        # not a string, nor hashable: no TypeError out of the check of its type
        (answering(200, {**GOOD, "issued_token_type": [ACCESS]}), "sent a malformed answer"),
        (answering(200, {**GOOD, "issued_token_type": {}}), "sent a malformed answer"),
        (answering(200, {**GOOD, "token_type": "mac"}), "sent a malformed answer"),
        (answering(200, {**GOOD, "token_type": "DPoP"}), "sent a malformed answer"),  # no key
        (answering(200, {**GOOD, "expires_in": "soon"}), "sent a malformed answer"),
        (answering(200, {**GOOD, "expires_in": 0}), "sent a malformed answer"),
        # Python's json reads these (RFC 8259 §6 has no such numbers): no OverflowError, no
        # token expiring never
        (answering(200, with_expires_in("1" + "0" * 400)), "sent a malformed answer"),
        (answering(200, with_expires_in("1e999")), "sent a malformed answer"),
        (answering(200, with_expires_in("Infinity")), "sent a malformed answer"),
        (answering(200, with_expires_in("NaN")), "sent a malformed answer"),
        (answering(200, {**GOOD, "scope": 'a "b"'}), "sent a malformed answer"),
        (answering(200, b"x" * (1024 * 1024 + 1)), "sent a response we cannot read"),
    ],
)
async def test_no_usable_answer_is_temporarily_unavailable(
    http: httpx.AsyncClient, summary: str, caplog: pytest.LogCaptureFixture
) -> None:
    exchange = exchange_with(http)
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for("subject-token-0123456789", resource=DOWNSTREAM)
    assert not isinstance(failed.value, ExchangeRefused)
    assert failed.value.status == 503
    assert failed.value.description == (
        f"the token could not be exchanged: the token endpoint {summary}"
    )
    assert "subject-token-0123456789" not in caplog.text


async def test_retry_after_of_a_failing_endpoint_is_passed_on() -> None:
    exchange = exchange_with(answering(503, {}, **{"retry-after": "42"}))
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for("subject", resource=DOWNSTREAM)
    assert failed.value.retry_after == 42


@pytest.mark.parametrize(
    ("retry_after", "passed_on"),
    [("9999999999999", 300), ("Fri, 31 Dec 9999 23:59:59 GMT", 300), ("soon", 5)],
)
async def test_retry_after_beyond_any_pause_is_bounded(retry_after: str, passed_on: int) -> None:
    exchange = exchange_with(answering(503, {}, **{"retry-after": retry_after}))
    with pytest.raises(TemporarilyUnavailable) as failed:
        await exchange.token_for("subject", resource=DOWNSTREAM)
    assert failed.value.retry_after == passed_on


async def test_a_refusal_keeps_the_servers_code_description_and_claims_bounded() -> None:
    body = {
        "error": "interaction_required",
        "error_description": "AADSTS50079: MFA\r\nrequired " + "x" * 1000,
        "claims": '{"access_token":{"acr":{"essential":true}}}',
    }
    exchange = exchange_with(answering(400, body))
    with pytest.raises(ExchangeRefused) as refused:
        await exchange.token_for("subject", resource=DOWNSTREAM)
    error = refused.value
    assert error.code == "interaction_required"
    assert error.server_description.startswith("AADSTS50079: MFArequired xx")
    assert len(error.server_description) == 300
    assert error.claims == body["claims"]


@pytest.mark.parametrize(
    "claims",
    ['{"access_token":{}}\r\nSet-Cookie: a=b', '{"access_token":{"acr":"\u00e9"}}', 7],
)
async def test_a_claims_challenge_a_header_cannot_carry_is_dropped(claims: object) -> None:
    # Entra's claims challenge goes back to the client, in a header: printable ASCII only
    body = {"error": "interaction_required", "claims": claims}
    exchange = exchange_with(answering(400, body))
    with pytest.raises(ExchangeRefused) as refused:
        await exchange.token_for("subject", resource=DOWNSTREAM)
    assert refused.value.claims is None


async def test_an_answer_without_expires_in_is_used_once_not_cached() -> None:
    answer = {key: value for key, value in GOOD.items() if key != "expires_in"}
    exchange = exchange_with(answering(200, answer))
    for _ in range(2):
        token = await exchange.token_for("subject", resource=DOWNSTREAM)
    assert token.expires_at is None and exchange.calls == 2


async def test_metadata_without_a_token_endpoint_is_a_503(setup: Setup) -> None:
    setup.issuer.extra_metadata["token_endpoint"] = None
    with pytest.raises(TemporarilyUnavailable) as failed:
        await setup.exchange().token_for("subject", resource=DOWNSTREAM)
    assert failed.value.description == (
        "the token could not be exchanged: the token endpoint is not named in the issuer's metadata"
    )


# -- settings and calls that cannot work ----------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "needs the issuer"),
        ({"token_endpoint": "http://as.example.com/token"}, "token_endpoint"),
        ({"issuer": "ftp://as.test"}, "https URL"),
        ({"issuer": 42}, "issuer URL or an Issuer"),
        ({"token_endpoint": ENDPOINT, "client_id": ""}, "client_id"),
        ({"token_endpoint": ENDPOINT, "auth_method": "tls_client_auth"}, "auth_method"),
        ({"token_endpoint": ENDPOINT, "client_secret": None}, "client_secret"),
        ({"token_endpoint": ENDPOINT, "private_key": "pem"}, "private_key"),
        (
            {"token_endpoint": ENDPOINT, "auth_method": "private_key_jwt", "client_secret": None},
            "private_key",
        ),
        ({"token_endpoint": ENDPOINT, "subject_token_type": "saml"}, "subject_token_type"),
        ({"token_endpoint": ENDPOINT, "requested_token_type": 3}, "requested_token_type"),
        ({"token_endpoint": ENDPOINT, "actor_token": 7}, "actor_token"),
        ({"token_endpoint": ENDPOINT, "dpop_key": object()}, "dpop_key"),
        ({"token_endpoint": ENDPOINT, "cache_size": -1}, "cache_size"),
        ({"token_endpoint": ENDPOINT, "cache_margin": float("nan")}, "cache_margin"),
        ({"token_endpoint": ENDPOINT, "timeout": 0}, "timeout"),
        ({"token_endpoint": ENDPOINT, "clock": "now"}, "clock"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_built(
    settings: dict[str, Any], named: str
) -> None:
    options: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    options.update(settings)
    with pytest.raises(ConfigurationError) as refused:
        TokenExchange(options.pop("issuer", None), **options)
    assert named in str(refused.value)


def test_an_entra_issuer_takes_no_dpop_key() -> None:
    from oauthguard import providers

    entra = providers.entra("6e74172b-be56-4843-9ff4-e66a39bb12e3", tenant=TENANT)
    with pytest.raises(ConfigurationError, match="binds no DPoP key"):
        TokenExchange(entra, client_id=CLIENT_ID, client_secret="s", dpop_key=DPoPKey())


TENANT = "9f4c1a52-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("call", "named"),
    [
        ({}, "needs resource="),
        ({"resource": ""}, "resource"),
        ({"audience": ["a b"]}, "audience"),
        ({"resource": DOWNSTREAM, "scope": 'a"b'}, "scope"),
        ({"resource": DOWNSTREAM, "scope": []}, "scope"),
    ],
)
async def test_calls_that_cannot_work_are_configuration_errors(
    call: dict[str, Any], named: str
) -> None:
    exchange = exchange_with(answering(200, GOOD))
    with pytest.raises(ConfigurationError, match=named):
        await exchange.token_for("subject", **call)
    assert exchange.calls == 0


async def test_a_subject_without_a_token_string_is_refused() -> None:
    exchange = exchange_with(answering(200, GOOD))
    with pytest.raises(ConfigurationError, match="carries no token string"):
        await exchange.token_for(object(), resource=DOWNSTREAM)


async def test_private_key_jwt_sends_a_fresh_assertion_for_the_token_endpoint() -> None:
    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    forms: list[dict[str, list[str]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        from urllib.parse import parse_qs

        forms.append(parse_qs(request.content.decode()))
        assert "authorization" not in request.headers
        return httpx.Response(200, content=json.dumps(GOOD).encode())

    exchange = exchange_with(
        mock(answer), auth_method="private_key_jwt", private_key=key, client_secret=None
    )
    await exchange.token_for("first", resource=DOWNSTREAM)
    await exchange.token_for("second", resource=DOWNSTREAM)
    assertions = [form["client_assertion"][0] for form in forms]
    assert forms[0]["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    claims = [
        pyjwt.decode(
            a,
            key.public_key(),
            algorithms=["ES256"],
            audience=ENDPOINT,
            options={"verify_iat": False, "verify_exp": False},  # the injected clock's time
        )
        for a in assertions
    ]
    # RFC 7523 §3: iss = sub = client_id, aud = the token endpoint, a new jti each time.
    assert {(c["iss"], c["sub"]) for c in claims} == {(CLIENT_ID, CLIENT_ID)}
    assert claims[0]["jti"] != claims[1]["jti"]
    assert claims[0]["exp"] - claims[0]["iat"] == 60


def test_no_secret_of_the_settings_is_in_a_repr() -> None:
    exchange = exchange_with(
        answering(200, GOOD), client_secret="client-secret-42", actor_token="actor-token-42"
    )
    shown = repr(exchange) + repr(exchange.exchanger.policy)
    assert "client-secret-42" not in shown and "actor-token-42" not in shown
