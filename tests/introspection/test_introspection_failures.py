"""Introspection outages (503, never 200 or 500), RFC 9701 signed responses, configuration."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from guards import build_guard
from introspection_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESOURCE,
    Clock,
    IntrospectionServer,
    active,
    assert_unavailable,
    bearer,
    guarded,
)
from starlette.applications import Starlette
from support import assert_refused, free_port

from oauthguard import ConfigurationError, Introspection, OAuthGuard
from oauthguard._http.fetch import MAX_DOCUMENT_BYTES

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(server: IntrospectionServer) -> IntrospectionServer:
    """The shared introspection server, knowing an active ``opaque-1``."""
    active(server, "opaque-1", time.time())
    return server


# -- outages (RFC 7662 §2.1: we cannot get an answer) ---------------------------------------
async def test_a_closed_port_is_unavailable_and_the_log_names_the_setting(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/introspect"
    async with guarded(server, endpoint=closed) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "unreachable")
    assert "ConnectError" in caplog.text and "Introspection(endpoint=)" in caplog.text


async def test_an_answer_slower_than_timeout_is_unavailable(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.delay = 2
    async with guarded(server, timeout=0.05) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "timed out")
    assert "no answer within 0.05s" in caplog.text and "Introspection(timeout=)" in caplog.text


@pytest.mark.parametrize(
    ("mode", "says", "logged"),
    [
        ("500", "answered HTTP 500", "HTTP 500"),
        ("503", "answered HTTP 503", "HTTP 503"),
        ("400", "answered HTTP 400", "HTTP 400"),
        ("403", "answered HTTP 403", "client_secret="),  # a token we may not introspect
        ("404", "answered HTTP 404", "HTTP 404"),
        ("429", "answered HTTP 429", "HTTP 429"),
        ("redirect", "answered HTTP 307", "HTTP 307"),
        ("html", "did not answer JSON", "not a JSON object"),
        ("empty", "answered without 'active'", "no boolean 'active' member"),
    ],
)
async def test_broken_answers_are_unavailable(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture, mode: str, says: str, logged: str
) -> None:
    server.mode = mode
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, says)
    assert logged in caplog.text and server.endpoint in caplog.text


async def test_a_redirect_is_never_followed_even_by_a_following_client(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.mode = "redirect"
    async with guarded(server, follow_redirects=True) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "answered HTTP 307")
    assert server.calls == 1 and "HTTP 307" in caplog.text


@pytest.mark.parametrize("members", [{"active": "true"}, {"active": 1}, {"active": None}])
async def test_an_active_member_that_is_not_a_boolean_is_unavailable(
    server: IntrospectionServer, members: dict[str, Any]
) -> None:
    server.responses["opaque-1"] = members
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "without 'active'")


@pytest.mark.parametrize("sub", ["\ud800", "a\udfffb"])
async def test_an_answer_with_a_lone_surrogate_is_unavailable(
    server: IntrospectionServer, sub: str
) -> None:
    """RFC 8259 §8.2: no string of characters; the app could not encode it again."""
    server.mode = "escaped"
    active(server, "opaque-1", time.time(), sub=sub)
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "did not answer JSON")


@pytest.mark.parametrize("mode", ["escaped", "bom", "utf-8"])
async def test_a_utf8_answer_with_a_bom_or_any_character_is_read(
    server: IntrospectionServer, mode: str
) -> None:
    server.mode = mode
    active(server, "opaque-1", time.time(), sub="\U0001f600 caf\u00e9")
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "\U0001f600 caf\u00e9"


async def test_wrong_client_credentials_are_unavailable_not_invalid_token(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with guarded(server, client_secret="wrong") as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "refused the resource server's credentials")
    assert "HTTP 401" in caplog.text and "client_secret=" in caplog.text
    assert "wrong" not in caplog.text and CLIENT_SECRET not in caplog.text
    assert "opaque-1" not in caplog.text  # only the token's SHA-256 prefix is ever logged


async def test_failures_are_not_cached(server: IntrospectionServer) -> None:
    server.mode = "500"
    clock = Clock()
    async with guarded(server, clock=clock) as (client, _):
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 503
        server.mode = "normal"
        clock.advance(5)  # past the pause after an outage
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
    assert server.calls == 2


# -- the size of the answer: read streamed, at most 1 MiB, decompressed no further ----------
@pytest.mark.parametrize("mode", ["huge", "gzip-bomb"])
async def test_an_answer_past_the_size_cap_is_unavailable_and_logged(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    server.mode = mode
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "sent a response we cannot read")
    assert f"token introspection at {server.endpoint} failed" in caplog.text
    assert f"larger than the limit of {MAX_DOCUMENT_BYTES} bytes" in caplog.text


async def test_an_answer_gzipped_though_not_asked_for_is_read(server: IntrospectionServer) -> None:
    server.mode = "gzip"
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "user-7"
    assert server.accept_encodings == ["identity"]


async def test_metadata_without_an_introspection_endpoint_is_unavailable(
    server: IntrospectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.issuer.extra_metadata = {"introspection_endpoint": None}
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "names no introspection endpoint")
    assert "Introspection(endpoint=)" in caplog.text
    assert server.calls == 0


# -- RFC 9701 signed responses ---------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        {},
        {"signed_claims": {"aud": RESOURCE}},
        {"signed_claims": {"aud": ["https://elsewhere.test", CLIENT_ID]}},
        {"signed_header": {"typ": "Application/Token-Introspection+JWT"}},
    ],
)
async def test_a_signed_response_is_asked_for_and_verified(
    server: IntrospectionServer, change: dict[str, dict[str, Any]]
) -> None:
    for name, value in change.items():
        setattr(server, name, value)
    async with guarded(server, jwt_response=True) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
        unknown = await client.get("/mcp", headers=bearer("opaque-2"))
    assert response.status_code == 200, response.text
    assert response.json()["claims"] == server.responses["opaque-1"]
    assert server.accepts[0] == "application/token-introspection+jwt"
    assert_refused(unknown, 401, "invalid_token")  # a signed {"active": false}


@pytest.mark.parametrize(
    ("change", "logged"),
    [
        ({"signing_key": "other"}, "signature does not verify"),
        ({"signed_header": {"typ": "JWT"}}, "typ"),
        ({"signed_header": {"typ": "at+jwt"}}, "typ"),
        ({"signed_header": {"alg": "HS256"}, "signing_key": b"secret"}, "alg"),
        ({"signed_claims": {"aud": "someone-else"}}, "aud"),
        ({"signed_claims": {"iss": "https://evil.test"}}, "iss"),
        ({"signed_claims": {"iat": int(time.time()) - 3600}}, "iat"),
        ({"signed_claims": {"iat": None}}, "iat"),
        ({"signed_claims": {"iat": "now"}}, "iat"),
        ({"signed_claims": {"token_introspection": None}}, "token_introspection"),
    ],
)
async def test_a_signed_response_that_does_not_verify_is_unavailable(
    server: IntrospectionServer,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    logged: str,
) -> None:
    for name, value in change.items():
        if value == "other":
            value = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        setattr(server, name, value)
    async with guarded(server, jwt_response=True) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "does not verify")
    assert "RFC 9701 response refused" in caplog.text and logged in caplog.text


async def test_a_plain_json_answer_to_a_signed_request_is_unavailable(
    server: IntrospectionServer,
) -> None:
    server.mode = "json-only"  # a server that does not implement RFC 9701
    async with guarded(server, jwt_response=True) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert_unavailable(response, "does not verify")


# -- configuration --------------------------------------------------------------------------
def _guard(**arguments: Any) -> OAuthGuard:
    arguments.setdefault("authorization_servers", ["https://as.test"])
    return build_guard(Starlette(), resource=RESOURCE, **arguments)


def _introspection(**settings: Any) -> Introspection:
    return Introspection(**{"client_id": CLIENT_ID, "client_secret": "x", **settings})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {
                "authorization_servers": ["https://a.test", "https://b.test"],
                "introspection": "settings",
            },
            "several authorization servers",
        ),
        ({"introspection": {"client_id": "x"}}, "must be oauthguard.Introspection"),
        ({"introspection": "settings", "verifier": "custom"}, "not both"),
    ],
)
def test_guard_configuration_errors(arguments: dict[str, Any], message: str) -> None:
    if arguments.get("introspection") == "settings":
        arguments["introspection"] = _introspection()
    if arguments.get("verifier") == "custom":
        arguments["verifier"] = _guard().server.verifier
    with pytest.raises(ConfigurationError, match=message):
        _guard(**arguments)


def test_a_token_format_is_auto_or_opaque() -> None:
    assert _introspection(token_format="opaque").token_format == "opaque"
    with pytest.raises(ConfigurationError, match=r"Introspection\(token_format=...\) must be"):
        _introspection(token_format="paseto")


def test_several_authorization_servers_work_with_an_explicit_endpoint() -> None:
    guard = _guard(
        authorization_servers=["https://a.test", "https://b.test"],
        introspection=_introspection(endpoint="https://a.test/introspect"),
    )
    assert (
        guard.server.introspection is not None and guard.server.introspection.token_format == "auto"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"client_id": ""}, "client_id"),
        ({"endpoint": "http://as.example/introspect"}, "https URL"),
        ({"auth_method": "tls_client_auth"}, "auth_method"),
        ({"client_secret": None}, "needs client_secret"),
        ({"auth_method": "private_key_jwt", "client_secret": None}, "needs private_key"),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"},
            "use auth_method='private_key_jwt'",
        ),
        (
            {"auth_method": "private_key_jwt", "private_key": "-----BEGIN PRIVATE KEY-----\nnope"},
            "not an unencrypted PEM",
        ),
        (
            {
                "auth_method": "private_key_jwt",
                "private_key": {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            },
            "public key",
        ),
        ({"auth_method": "private_key_jwt", "private_key": {"kty": "oct", "d": "c2VjcmV0"}}, "kty"),
        ({"auth_method": "private_key_jwt", "private_key": "{not json"}, "not valid JSON"),
        ({"auth_method": "private_key_jwt", "private_key": 42}, "got int"),
        (
            {
                "auth_method": "private_key_jwt",
                "private_key": rsa.generate_private_key(public_exponent=65537, key_size=1024),
            },
            "2048",
        ),
        ({"cache_ttl": -1}, "cache_ttl"),
        ({"negative_cache_ttl": "5"}, "negative_cache_ttl"),
        ({"timeout": 0}, "timeout"),
        ({"cache_size": 1.5}, "cache_size"),
    ],
)
def test_introspection_settings_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _introspection(**settings)


def test_secrets_stay_out_of_the_repr() -> None:
    settings = _introspection(client_secret="hunter2")
    assert "hunter2" not in repr(settings) and CLIENT_ID in repr(settings)
