"""Opaque tokens through RFC 7662 introspection, against a real endpoint on loopback."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from guards import build_guard
from introspection_server import (
    CLIENT_ID,
    RESOURCE,
    Clock,
    IntrospectionServer,
    active,
    bearer,
    guarded,
)
from proofs import ClientKey, stored_rsa_keys
from starlette.applications import Starlette
from support import assert_refused

from oauthguard import AccessToken
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio


# -- client authentication (RFC 7662 §2.1) ------------------------------------------------
async def test_client_secret_basic_form_encodes_id_and_secret(server: IntrospectionServer) -> None:
    active(server, "opaque-1", time.time())
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 200, response.text
    assert server.auth_failures == []
    [form] = server.forms
    assert form == {"token": "opaque-1", "token_type_hint": "access_token"}


async def test_client_secret_post_sends_the_credentials_in_the_form(
    server: IntrospectionServer,
) -> None:
    server.auth_method = "client_secret_post"
    active(server, "opaque-1", time.time())
    async with guarded(server, auth_method="client_secret_post") as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 200, response.text
    assert server.forms[0]["client_id"] == CLIENT_ID


_CLIENT_KEYS = itertools.cycle(stored_rsa_keys("rsa-2048-clients"))


def _rsa() -> rsa.RSAPrivateKey:
    """A client's RSA key: the two stored test keys in turn (two calls, two keys)."""
    return next(_CLIENT_KEYS)


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _private_jwk(key: Any) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    return {**json.loads(RSAAlgorithm.to_jwk(key)), "kid": "rs-key-1"}


@pytest.mark.parametrize("form", ["cryptography", "pem", "jwk", "jwk-json", "ec", "ed25519"])
async def test_private_key_jwt_assertions_verify_and_are_fresh(
    server: IntrospectionServer, form: str
) -> None:
    keys = {
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }
    key: Any = keys.get(form, _rsa)()
    given: Any = {
        "ec": lambda: _pem(key),
        "ed25519": lambda: key,
        "cryptography": lambda: key,
        "pem": lambda: _pem(key),
        "jwk": lambda: _private_jwk(key),
        "jwk-json": lambda: json.dumps(_private_jwk(key)),
    }[form]()
    server.auth_method, server.client_public_key = "private_key_jwt", key.public_key()
    now = time.time()
    active(server, "opaque-1", now)
    active(server, "opaque-2", now)
    async with guarded(server, auth_method="private_key_jwt", private_key=given) as (client, _):
        first = await client.get("/mcp", headers=bearer("opaque-1"))
        second = await client.get("/mcp", headers=bearer("opaque-2"))
    assert (first.status_code, second.status_code) == (200, 200), server.auth_failures
    assert len(set(server.jtis)) == 2  # RFC 7523 §3: a fresh jti for every assertion
    assert server.forms[0]["client_id"] == CLIENT_ID


async def test_private_key_jwt_with_a_key_the_server_does_not_know_is_unavailable(
    server: IntrospectionServer,
) -> None:
    server.auth_method, server.client_public_key = "private_key_jwt", _rsa().public_key()
    active(server, "opaque-1", time.time())
    async with guarded(server, auth_method="private_key_jwt", private_key=_rsa()) as (c, _):
        response = await c.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 503
    assert server.auth_failures and "Signature" in server.auth_failures[0]


# -- the response (RFC 7662 §2.2) -----------------------------------------------------------
async def test_an_active_token_becomes_the_same_access_token_type(
    server: IntrospectionServer,
) -> None:
    now = time.time()
    active(server, "opaque-1", now, username="ann")
    async with guarded(server) as (client, guard):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
        token = await guard.server.verify("opaque-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sub"] == "user-7" and body["client_id"] == "app-3"
    assert body["scopes"] == ["read", "write"] and body["issuer"] == server.base
    assert body["audience"] == [RESOURCE] and body["expires_at"] == int(now + 3600)
    assert body["claims"] == server.responses["opaque-1"]  # claims are the members
    assert isinstance(token, AccessToken)


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"active": False}, "not active"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"aud": "https://other.test/api"}, "not meant for this resource"),
        ({"aud": ["https://other.test/api", "https://third.test"]}, "not meant for this resource"),
        ({"iss": "https://evil.test"}, "issuer is not trusted"),
        ({"iss": ["x"]}, "issuer is not trusted"),
        ({"scope": 7}, "scope"),
        ({"exp": "tomorrow"}, "exp"),
        ({"cnf": {"jkt": 12}}, "cnf"),
        ({"cnf": "bound"}, "cnf"),
        ({"sub": 7}, "sub claim is not a string"),
        ({"client_id": ["app-3"]}, "client_id claim is not a string"),
    ],
)
async def test_refused_members_are_invalid_token(
    server: IntrospectionServer, members: dict[str, Any], reason: str
) -> None:
    active(server, "opaque-1", time.time(), **members)
    if members == {"active": False}:
        server.responses["opaque-1"] = {"active": False}
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    params = assert_refused(response, 401, "invalid_token")
    assert reason in params["error_description"]
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")


async def test_unknown_tokens_are_inactive(server: IntrospectionServer) -> None:
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("never-issued"))
    assert_refused(response, 401, "invalid_token")


async def test_members_without_aud_iss_or_exp_pass_unless_aud_is_required(
    server: IntrospectionServer,
) -> None:
    clock = Clock()
    active(server, "opaque-1", clock.now, aud=None, iss=None, exp=None)
    async with guarded(server, clock=clock, cache_ttl=60) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
        assert response.status_code == 200, response.text
        assert response.json()["expires_at"] is None
        clock.advance(59)
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        assert server.calls == 1  # no exp: kept for cache_ttl only
        clock.advance(2)
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        assert server.calls == 2
    async with guarded(server, require_aud=True) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
    assert "aud" in assert_refused(response, 401, "invalid_token")["error_description"]


# -- DPoP binding (RFC 9449 §6.2, §7.2) -----------------------------------------------------
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.mark.parametrize(
    "binding", [{"cnf": {"jkt": JKT}}, {"token_type": "DPoP"}, {"token_type": "dpop"}]
)
async def test_a_dpop_bound_opaque_token_sent_as_bearer_is_refused(
    server: IntrospectionServer, binding: dict[str, Any]
) -> None:
    active(server, "opaque-1", time.time(), **binding)
    async with guarded(server) as (client, guard):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
        cached = await client.get("/mcp", headers=bearer("opaque-1"))
        token = await guard.server.verify("opaque-1")
    for refused in (response, cached):
        assert "DPoP" in assert_refused(refused, 401, "invalid_token")["error_description"]
    assert token.jkt == binding.get("cnf", {}).get("jkt")
    assert token.claims.get("token_type") == binding.get("token_type")


@pytest.mark.parametrize(
    ("cnf", "says"),
    [
        ({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, "a client certificate"),
        (
            {
                "jwk": {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                }
            },
            "a key (jwk)",
        ),
    ],
)
async def test_an_opaque_token_bound_by_a_method_we_cannot_check_is_refused(
    server: IntrospectionServer, cnf: dict[str, Any], says: str
) -> None:
    active(server, "opaque-1", time.time(), cnf=cnf)
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer("opaque-1"))
        cached = await client.get("/mcp", headers=bearer("opaque-1"))
    for refused in (response, cached):
        description = assert_refused(refused, 401, "invalid_token")["error_description"]
        assert f"bound to {says}" in description and "cannot check" in description
    assert server.calls == 1  # the refusal is cached like any inactive answer


def _dpop(key: ClientKey, token: str) -> dict[str, str]:
    return {
        "authorization": f"DPoP {token}",
        "dpop": key.proof("GET", RESOURCE, now=time.time(), token=token),
    }


async def test_a_dpop_bound_opaque_token_passes_with_a_proof_of_its_key(
    server: IntrospectionServer,
) -> None:
    key, thief = ClientKey("ES256"), ClientKey("ES256")
    active(server, "opaque-1", time.time(), cnf={"jkt": key.thumbprint}, token_type="DPoP")
    async with guarded(server) as (client, _):
        first = await client.get("/mcp", headers=_dpop(key, "opaque-1"))
        again = await client.get("/mcp", headers=_dpop(key, "opaque-1"))  # cached, new proof
        stolen = await client.get("/mcp", headers=_dpop(thief, "opaque-1"))
        unproven = await client.get("/mcp", headers={"authorization": "DPoP opaque-1"})
    assert (first.status_code, again.status_code) == (200, 200), first.text
    assert first.json()["jkt"] == key.thumbprint
    assert_refused(stolen, 401, "invalid_token", scheme="DPoP")
    assert_refused(unproven, 401, "invalid_dpop_proof", scheme="DPoP")
    assert server.calls == 1


async def test_a_dpop_token_type_without_cnf_cannot_be_proven(server: IntrospectionServer) -> None:
    key = ClientKey("ES256")
    active(server, "opaque-1", time.time(), token_type="DPoP")
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=_dpop(key, "opaque-1"))
    assert (
        "cnf.jkt"
        in assert_refused(response, 401, "invalid_token", scheme="DPoP")["error_description"]
    )


# -- caching (RFC 7662 §4) and coalescing ---------------------------------------------------
async def test_a_cached_token_is_introspected_once(server: IntrospectionServer) -> None:
    active(server, "opaque-1", time.time())
    async with guarded(server) as (client, _):
        for _ in range(10):
            assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
    assert server.calls == 1


async def test_inactive_results_are_cached_for_negative_cache_ttl(
    server: IntrospectionServer,
) -> None:
    clock = Clock()
    async with guarded(server, clock=clock, negative_cache_ttl=5) as (client, _):
        for _ in range(5):
            assert_refused(await client.get("/mcp", headers=bearer("junk")), 401, "invalid_token")
        assert server.calls == 1
        clock.advance(5.1)
        active(server, "junk", clock.now)  # the answer can change once the entry is gone
        assert (await client.get("/mcp", headers=bearer("junk"))).status_code == 200
    assert server.calls == 2


async def test_revocation_is_seen_after_cache_ttl_even_with_a_distant_exp(
    server: IntrospectionServer,
) -> None:
    clock = Clock()
    active(server, "opaque-1", clock.now)  # exp in an hour
    async with guarded(server, clock=clock, cache_ttl=60) as (client, guard):
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        server.responses["opaque-1"] = {"active": False}  # revoked at the server
        clock.advance(59)
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        assert server.calls == 1
        clock.advance(2)
        assert_refused(await client.get("/mcp", headers=bearer("opaque-1")), 401, "invalid_token")
        assert server.calls == 2
        assert len(guard.server.tokens) == 0  # the guard's own cache let it go too


async def test_a_positive_entry_never_outlives_exp(server: IntrospectionServer) -> None:
    clock = Clock()
    active(server, "opaque-1", clock.now, exp=int(clock.now) + 10)
    async with guarded(server, clock=clock, cache_ttl=60) as (client, _):
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        clock.advance(9)
        assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
        assert server.calls == 1
        clock.advance(2)
        server.responses["opaque-1"] = {"active": False}
        assert_refused(await client.get("/mcp", headers=bearer("opaque-1")), 401, "invalid_token")
    assert server.calls == 2


async def test_cache_ttl_zero_asks_every_time(server: IntrospectionServer) -> None:
    active(server, "opaque-1", time.time())
    async with guarded(server, cache_ttl=0) as (client, _):
        for _ in range(3):
            assert (await client.get("/mcp", headers=bearer("opaque-1"))).status_code == 200
    assert server.calls == 3


async def test_the_cache_is_bounded(server: IntrospectionServer) -> None:
    now = time.time()
    for index in range(5):
        active(server, f"opaque-{index}", now)
    async with guarded(server, cache_size=2) as (_, guard):
        verifier = guard.server.verifier.introspection  # type: ignore[attr-defined]
        for index in range(5):
            await verifier.verify(f"opaque-{index}")
        await verifier.verify("opaque-4")
        assert server.calls == 5
        await verifier.verify("opaque-0")  # evicted: asked again
    assert server.calls == 6


async def test_concurrent_requests_with_one_token_share_one_call(
    server: IntrospectionServer,
) -> None:
    active(server, "opaque-1", time.time())
    server.delay = 0.2
    statuses: list[int] = []
    async with guarded(server) as (client, _):

        async def call() -> None:
            statuses.append((await client.get("/mcp", headers=bearer("opaque-1"))).status_code)

        async with anyio.create_task_group() as tasks:
            for _ in range(100):
                tasks.start_soon(call)
    assert statuses == [200] * 100
    assert server.calls == 1


# -- which tokens are introspected (token_format) -------------------------------------------
async def test_auto_introspects_a_jwt_of_an_unknown_issuer(server: IntrospectionServer) -> None:
    foreign = TestIssuer("https://other-issuer.test").token(audience=RESOURCE)
    active(server, foreign, time.time())
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer(foreign))
    assert response.status_code == 200, response.text
    assert server.calls == 1


async def test_auto_verifies_a_jwt_of_our_issuer_locally(server: IntrospectionServer) -> None:
    ours = server.issuer.token(audience=RESOURCE, scope="read")
    forged = server.issuer.token(audience=RESOURCE)[:-8] + "AAAAAAAA"
    async with guarded(server) as (client, _):
        response = await client.get("/mcp", headers=bearer(ours))
        refused = await client.get("/mcp", headers=bearer(forged))
    assert response.status_code == 200, response.text
    assert response.json()["scopes"] == ["read"]
    assert_refused(refused, 401, "invalid_token")
    assert server.calls == 0  # never introspected, not even when it fails


async def test_opaque_format_introspects_every_token(server: IntrospectionServer) -> None:
    ours = server.issuer.token(audience=RESOURCE)
    async with guarded(server, token_format="opaque") as (client, _):
        response = await client.get("/mcp", headers=bearer(ours))
    assert_refused(response, 401, "invalid_token")  # the server does not know it
    assert server.calls == 1


async def test_the_protected_resource_metadata_is_unchanged(server: IntrospectionServer) -> None:
    plain = build_guard(Starlette(), resource=RESOURCE, authorization_servers=[server.base])
    transport = httpx.ASGITransport(app=plain)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as other:
        expected = await other.get("/.well-known/oauth-protected-resource/mcp")
    async with guarded(server) as (client, _):
        response = await client.get("/.well-known/oauth-protected-resource/mcp")
        missing = await client.get("/mcp")
    assert response.json() == expected.json()
    assert response.json()["authorization_servers"] == [server.base]
    assert_refused(missing, 401, None)
    assert server.calls == 0
