"""``KeySet``: caching, kid-miss refetch with cooldown, stale-if-error, single-flight."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from apps import NOW, RESOURCE, Clock
from cryptography.hazmat.primitives.asymmetric import ec

from oauthguard._http.fetch import MAX_DOCUMENT_BYTES
from oauthguard._jose.b64 import b64url_encode
from oauthguard._verify.discovery import AuthorizationServers
from oauthguard._verify.jwt import JWTVerifier
from oauthguard._verify.keys import KeySet, parse_jwks
from oauthguard._verify.trust import IssuerDirectory, TokenRules, TrustedIssuer
from oauthguard._wire.errors import TemporarilyUnavailable
from oauthguard.testing import TestIssuer, public_jwk

pytestmark = pytest.mark.anyio

ISSUER = "https://issuer.test"
JWKS_URI = "https://issuer.test/jwks"
SIGNER = TestIssuer(ISSUER, algorithms=("RS256", "ES256"))


class JWKSServer:
    """The issuer's JWKS endpoint, whose behaviour the test changes as it goes."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = SIGNER.jwks()["keys"]
        self.mode = "ok"
        self.cache_control: str | None = None
        self.fetches = 0
        #: How many chunks of a streamed body the client pulled.
        self.chunks_read = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.mode == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "500":
            return httpx.Response(500, text="internal error")
        if self.mode == "html":
            return httpx.Response(
                200, text="<html>login</html>", headers={"content-type": "text/html"}
            )
        if self.mode == "bad json":
            return httpx.Response(200, text='{"keys": [', headers={"content-type": "json"})
        if self.mode == "nested":
            return httpx.Response(200, text="[" * 5000 + "]" * 5000)
        if self.mode == "no usable keys":
            return httpx.Response(200, json={"keys": BROKEN_KEYS})
        if self.mode == "not a jwks":
            return httpx.Response(200, json={"issuer": ISSUER})
        if self.mode == "oversized":  # declared by Content-Length
            return httpx.Response(200, content=padded_jwks(self.keys, MAX_DOCUMENT_BYTES + 1))
        if self.mode == "oversized stream":  # chunked: only the bytes read tell
            return httpx.Response(200, content=self._chunks(padded_jwks(self.keys, 4 << 20)))
        headers = {"cache-control": self.cache_control} if self.cache_control else {}
        return httpx.Response(200, json={"keys": self.keys}, headers=headers)

    async def _chunks(self, body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), CHUNK):
            self.chunks_read += 1
            yield body[start : start + CHUNK]


CHUNK = 64 * 1024


def padded_jwks(keys: list[dict[str, Any]], size: int) -> bytes:
    """A valid JWKS of exactly ``size`` bytes (whitespace is valid JSON)."""
    document = json.dumps({"keys": keys}).encode()
    return document[:-1] + b" " * (size - len(document)) + b"}"


def key_set(server: JWKSServer, clock: Clock, **options: Any) -> KeySet:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    options.setdefault("jwks_uri", JWKS_URI)
    return KeySet(ISSUER, http, clock, AuthorizationServers(http, clock), **options)


RSA_KID = SIGNER.default_kid["RS256"]


async def test_keys_are_fetched_once_and_served_from_memory_while_fresh() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock)
    assert keys.cached(RSA_KID) is None
    [key] = await keys.get(RSA_KID)
    assert key.kid == RSA_KID and key.kty == "RSA"
    assert keys.cached(RSA_KID) == [key]
    clock.advance(599)
    assert keys.cached(RSA_KID) == [key]
    assert server.fetches == 1


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [
        (None, 600),
        ("public, max-age=120", 120),
        ("max-age=5", 60),
        ("max-age=10", 60),
        ("max-age=999999999", 86400),
        ("no-store", 600),
        ('max-age="300"', 300),
    ],
)
async def test_the_ttl_comes_from_cache_control_within_bounds(
    cache_control: str | None, ttl: float
) -> None:
    server, clock = JWKSServer(), Clock()
    server.cache_control = cache_control
    keys = key_set(server, clock, cache_ttl=600)
    await keys.get(RSA_KID)
    clock.advance(ttl - 1)
    assert keys.cached(RSA_KID) is not None
    clock.advance(1)
    assert keys.cached(RSA_KID) is None
    await keys.get(RSA_KID)
    assert server.fetches == 2


async def test_the_default_ttl_is_the_configured_one() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, cache_ttl=90)
    await keys.get(RSA_KID)
    clock.advance(89)
    assert keys.cached(RSA_KID) is not None
    clock.advance(1)
    assert keys.cached(RSA_KID) is None


async def test_an_unknown_kid_refetches_at_once_then_once_per_cooldown() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, refresh_cooldown=30)
    await keys.get(RSA_KID)
    assert await keys.get("unknown-1") == []
    assert server.fetches == 2
    assert await keys.get("unknown-2") == []
    clock.advance(29)
    assert await keys.get("unknown-3") == []
    assert server.fetches == 2
    clock.advance(1)
    assert await keys.get("unknown-4") == []
    assert server.fetches == 3


async def test_a_rotated_key_is_picked_up_immediately() -> None:
    issuer = TestIssuer(ISSUER, algorithms=("RS256",))
    server, clock = JWKSServer(), Clock()
    server.keys = issuer.jwks()["keys"]
    keys = key_set(server, clock)
    await keys.get(issuer.default_kid["RS256"])
    new_kid = issuer.rotate("RS256")
    server.keys = issuer.jwks()["keys"]
    [key] = await keys.get(new_kid)
    assert key.kid == new_kid
    assert server.fetches == 2


async def test_a_flood_of_random_kids_refetches_at_most_once_per_cooldown() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, refresh_cooldown=30)
    await keys.get(RSA_KID)

    async def flood() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(1000):
                tasks.start_soon(keys.get, secrets.token_hex(8))

    await flood()
    assert server.fetches == 2
    clock.advance(10)
    await flood()
    assert server.fetches == 2
    clock.advance(20)
    await flood()
    assert server.fetches == 3
    assert keys.cached(RSA_KID) is not None


FAILURES = [
    "timeout",
    "refused",
    "500",
    "html",
    "bad json",
    "nested",
    "not a jwks",
    "no usable keys",
    "oversized",
    "oversized stream",
]


@pytest.mark.parametrize("failure", FAILURES)
async def test_last_good_keys_serve_up_to_max_stale_while_the_fetch_fails(
    failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, cache_ttl=600, refresh_cooldown=30, max_stale=3600)
    await keys.get(RSA_KID)
    server.mode = failure
    clock.advance(600)
    with caplog.at_level("WARNING", logger="oauthguard"):
        assert [k.kid for k in await keys.get(RSA_KID)] == [RSA_KID]
    assert "cannot fetch the JWKS" in caplog.text
    assert server.fetches == 2
    # While failing, the issuer is asked again only after the cooldown.
    clock.advance(29)
    assert keys.cached(RSA_KID) is not None
    clock.advance(1)
    assert await keys.get(RSA_KID)
    assert server.fetches == 3
    # Past ttl + max_stale the old keys are no longer trusted.
    clock.advance(3600 - 30)
    with pytest.raises(TemporarilyUnavailable):
        await keys.get(RSA_KID)


async def test_keys_come_back_when_the_issuer_recovers() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock)
    await keys.get(RSA_KID)
    server.mode = "500"
    clock.advance(600)
    await keys.get(RSA_KID)
    server.mode = "ok"
    server.cache_control = "max-age=900"
    clock.advance(30)
    await keys.get(RSA_KID)
    clock.advance(899)
    assert keys.cached(RSA_KID) is not None
    assert server.fetches == 3


@pytest.mark.parametrize("failure", FAILURES)
async def test_no_keys_ever_is_temporarily_unavailable_and_retried_after_cooldown(
    failure: str,
) -> None:
    server, clock = JWKSServer(), Clock()
    server.mode = failure
    keys = key_set(server, clock, refresh_cooldown=30)
    with pytest.raises(TemporarilyUnavailable) as first:
        await keys.get(RSA_KID)
    assert (first.value.status, first.value.retry_after) == (503, 30)
    clock.advance(10)
    with pytest.raises(TemporarilyUnavailable) as second:
        await keys.get(RSA_KID)
    assert second.value.retry_after == 20
    assert server.fetches == 1
    server.mode = "ok"
    clock.advance(20)
    assert await keys.get(RSA_KID)
    assert server.fetches == 2


def bad_ec_point() -> dict[str, Any]:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "off-curve", "ES256")
    jwk["y"] = b64url_encode(b"\x01" * 32)
    return jwk


BROKEN_KEYS: list[Any] = [
    "not an object",
    {"kty": "oct", "kid": "oct", "k": b64url_encode(b"secret")},
    {"kty": "RSA", "kid": "rsa-garbage", "n": "!!!", "e": "AQAB"},
    {"kty": "RSA", "kid": "rsa-missing-e", "n": "AQAB"},
    {"kty": "EC", "kid": "ec-unknown-curve", "crv": "P-999", "x": "AA", "y": "AA"},
    bad_ec_point(),
    {"kty": "OKP", "kid": "okp-x25519", "crv": "X25519", "x": b64url_encode(b"\x09" * 32)},
    {**public_jwk(SIGNER.private_key("RS256"), "enc-key"), "use": "enc"},
    {**public_jwk(SIGNER.private_key("RS256"), "ops"), "key_ops": ["encrypt"]},
    {**public_jwk(SIGNER.private_key("RS256"), "private"), "d": "AQAB"},
    {**public_jwk(SIGNER.private_key("RS256")), "kid": 7},
    {"kid": "no-kty"},
]


async def test_invalid_keys_are_skipped_and_the_rest_used(caplog: pytest.LogCaptureFixture) -> None:
    server, clock = JWKSServer(), Clock()
    server.keys = BROKEN_KEYS + SIGNER.jwks()["keys"]
    keys = key_set(server, clock)
    with caplog.at_level("WARNING", logger="oauthguard"):
        usable = await keys.get(None)
    assert sorted(str(k.kid) for k in usable) == sorted(SIGNER.keys)
    assert caplog.text.count("skipping JWKS key") == len(BROKEN_KEYS)


def test_parse_jwks_refuses_a_document_without_keys() -> None:
    for document in ({}, [], {"keys": {}}, "keys"):
        with pytest.raises(ValueError):
            parse_jwks(document)
    assert parse_jwks(json.loads('{"keys": []}')) == []


async def test_concurrent_cold_requests_cause_one_discovery_and_one_jwks_fetch() -> None:
    issuer = TestIssuer(ISSUER, algorithms=("RS256",))
    gate = anyio.Event()
    seen: list[str] = []
    inner = issuer.transport()

    class Gated(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path)
            await gate.wait()
            return await inner.handle_async_request(request)

    http = httpx.AsyncClient(transport=Gated())
    clock = Clock()
    servers = AuthorizationServers(http, clock)
    trusted = TrustedIssuer(
        ISSUER, KeySet(ISSUER, http, clock, servers), TokenRules(frozenset({RESOURCE}))
    )
    verifier = JWTVerifier(IssuerDirectory([trusted]), algorithms=["RS256"], clock=clock)
    tokens = [issuer.token(audience=RESOURCE, subject=f"user-{n}", now=NOW) for n in range(100)]
    subjects: list[str | None] = []

    async def check(token: str) -> None:
        subjects.append((await verifier.verify(token)).subject)

    async with anyio.create_task_group() as tasks:
        for token in tokens:
            tasks.start_soon(check, token)
        for _ in range(20):
            await anyio.sleep(0)
        gate.set()
    assert sorted(subjects) == sorted(f"user-{n}" for n in range(100))
    assert seen == ["/.well-known/oauth-authorization-server", "/jwks"]


@pytest.mark.parametrize("mode", ["oversized", "oversized stream"])
async def test_an_oversized_jwks_is_a_failed_fetch_logged_with_the_url_and_limit(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, clock = JWKSServer(), Clock()
    server.mode = mode
    keys = key_set(server, clock)
    with (
        caplog.at_level("WARNING", logger="oauthguard"),
        pytest.raises(TemporarilyUnavailable) as refused,
    ):
        await keys.get(RSA_KID)
    assert refused.value.status == 503
    assert JWKS_URI in caplog.text
    assert f"limit of {MAX_DOCUMENT_BYTES} bytes" in caplog.text
    # The read stopped just past the cap, not at the end of the 4 MiB body.
    assert server.chunks_read <= MAX_DOCUMENT_BYTES // CHUNK + 1


async def test_a_jwks_of_exactly_the_limit_is_read() -> None:
    body = padded_jwks(SIGNER.jwks()["keys"], MAX_DOCUMENT_BYTES)
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    )
    clock = Clock()
    keys = KeySet(ISSUER, http, clock, AuthorizationServers(http, clock), jwks_uri=JWKS_URI)
    assert [k.kid for k in await keys.get(RSA_KID)] == [RSA_KID]


async def test_an_unknown_kid_whose_refetch_fails_is_temporarily_unavailable() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, refresh_cooldown=30)
    await keys.get(RSA_KID)
    server.mode = "refused"  # the issuer goes down just as it rotates
    with pytest.raises(TemporarilyUnavailable) as refused:
        await keys.get("rotated-in")
    assert (refused.value.status, refused.value.retry_after) == (503, 30)
    assert "kid" in refused.value.description
    assert server.fetches == 2
    # Tokens under the known keys still pass on the last good keys.
    assert [k.kid for k in await keys.get(RSA_KID)] == [RSA_KID]
    # Within the cooldown the issuer is not asked again, and the answer stays 503.
    clock.advance(10)
    with pytest.raises(TemporarilyUnavailable) as again:
        await keys.get("rotated-in")
    assert again.value.retry_after == 20
    assert server.fetches == 2
    # The issuer is back with the new key: the next refetch finds it.
    issuer = TestIssuer(ISSUER, algorithms=("RS256",))
    server.mode, server.keys = "ok", issuer.jwks()["keys"]
    clock.advance(20)
    [key] = await keys.get(issuer.default_kid["RS256"])
    assert key.kid == issuer.default_kid["RS256"]
    assert server.fetches == 3


async def test_an_unknown_kid_after_a_successful_refetch_stays_unknown_in_the_cooldown() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, refresh_cooldown=30)
    await keys.get(RSA_KID)
    assert await keys.get("unknown-1") == []  # refetched, and the JWKS has no such kid
    server.mode = "refused"
    clock.advance(29)
    assert await keys.get("unknown-2") == []  # skipped by the cooldown: still a plain miss
    assert server.fetches == 2


async def test_an_unknown_kid_when_the_ttl_refresh_fails_is_temporarily_unavailable() -> None:
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, cache_ttl=600, refresh_cooldown=30)
    await keys.get(RSA_KID)
    server.mode = "500"
    clock.advance(600)
    with pytest.raises(TemporarilyUnavailable) as refused:
        await keys.get("rotated-in")
    assert refused.value.retry_after == 30
    assert server.fetches == 2
    assert await keys.get(RSA_KID)


async def test_a_jwks_dripped_slower_than_the_timeout_is_a_failed_fetch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = json.dumps(SIGNER.jwks()).encode()

    async def drip() -> AsyncIterator[bytes]:
        for start in range(0, len(body), len(body) // 50):  # ~0.5 s in all
            await anyio.sleep(0.01)
            yield body[start : start + len(body) // 50]

    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=drip()))
    )
    clock = Clock()
    keys = KeySet(
        ISSUER, http, clock, AuthorizationServers(http, clock), jwks_uri=JWKS_URI, timeout=0.1
    )
    with caplog.at_level("WARNING", logger="oauthguard"), pytest.raises(TemporarilyUnavailable):
        await keys.get(RSA_KID)
    assert "no whole response within 0.1 s" in caplog.text


@pytest.mark.parametrize("issuer_up", [True, False])
async def test_requests_for_an_unknown_kid_during_its_refetch_wait_for_it(issuer_up: bool) -> None:
    issuer = TestIssuer(ISSUER, algorithms=("RS256",))
    server, clock = JWKSServer(), Clock()
    server.keys = issuer.jwks()["keys"]
    gate = anyio.Event()

    async def gated(request: httpx.Request) -> httpx.Response:
        if server.fetches:
            await gate.wait()
        return await server(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(gated))
    keys = KeySet(ISSUER, http, clock, AuthorizationServers(http, clock), jwks_uri=JWKS_URI)
    await keys.get(issuer.default_kid["RS256"])
    new_kid = issuer.rotate("RS256")
    server.keys = issuer.jwks()["keys"]
    if not issuer_up:
        server.mode = "refused"
    outcomes: list[str] = []

    async def ask() -> None:
        try:
            outcomes.append(str([key.kid for key in await keys.get(new_kid)]))
        except TemporarilyUnavailable:
            outcomes.append("503")

    async with anyio.create_task_group() as tasks:
        for _ in range(3):  # the first refetches; the others come within its cooldown
            tasks.start_soon(ask)
        for _ in range(20):
            await anyio.sleep(0)
        gate.set()
    assert outcomes == ([str([new_kid])] if issuer_up else ["503"]) * 3
    assert server.fetches == 2


async def test_a_jwks_uri_that_is_no_url_is_a_failed_fetch_retried_after_the_cooldown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # httpx refuses a URL with a control character before any request (InvalidURL, which
    # is no HTTPError): a 503 with the cooldown, not an unexpected error on every request.
    server, clock = JWKSServer(), Clock()
    keys = key_set(server, clock, jwks_uri=JWKS_URI + "#\n", refresh_cooldown=30)
    with pytest.raises(TemporarilyUnavailable) as refused:
        await keys.get(RSA_KID)
    assert refused.value.retry_after == 30
    assert "cannot be requested" in caplog.text
    assert server.fetches == 0
