"""``TestIssuer``: the local issuer our tests and our users' tests rely on."""

from __future__ import annotations

import json

import anyio
import pytest

from oauthguard._jose.b64 import b64url_decode
from oauthguard.testing import TestIssuer, sign_jws

ISSUER = TestIssuer("https://as.test/tenant", algorithms=("RS256", "ES256", "EdDSA"))


def parts(token: str) -> tuple[dict[str, object], dict[str, object], bytes]:
    head, body, signature = token.split(".")
    return (
        json.loads(b64url_decode(head)),
        json.loads(b64url_decode(body)),
        b64url_decode(signature),
    )


def test_it_generates_a_key_of_each_algorithm_in_its_jwks() -> None:
    keys = {key["alg"]: key for key in ISSUER.jwks()["keys"]}
    assert (keys["RS256"]["kty"], keys["ES256"]["crv"], keys["EdDSA"]["crv"]) == (
        "RSA",
        "P-256",
        "Ed25519",
    )
    assert all(key["use"] == "sig" and key["kid"] for key in keys.values())
    assert not any("d" in key for key in keys.values())


def test_it_serves_metadata_and_jwks_in_process_and_records_requests() -> None:
    issuer = TestIssuer("https://as.test/tenant", algorithms=("RS256",))

    async def fetch() -> tuple[dict[str, object], ...]:
        async with issuer.http_client() as http:
            rfc8414 = await http.get(
                "https://as.test/.well-known/oauth-authorization-server/tenant"
            )
            oidc = await http.get("https://as.test/tenant/.well-known/openid-configuration")
            jwks = await http.get(rfc8414.json()["jwks_uri"])
            assert jwks.headers["cache-control"] == "public, max-age=300"
            return rfc8414.json(), oidc.json(), jwks.json()

    metadata, oidc, jwks = anyio.run(fetch)
    assert metadata == oidc
    assert metadata["issuer"] == "https://as.test/tenant"
    assert metadata["jwks_uri"] == "https://as.test/tenant/jwks"
    assert jwks == issuer.jwks()
    assert [r.url.path for r in issuer.requests] == [
        "/.well-known/oauth-authorization-server/tenant",
        "/tenant/.well-known/openid-configuration",
        "/tenant/jwks",
    ]


def test_tokens_carry_the_claims_and_headers_asked_for() -> None:
    token = ISSUER.token(
        audience=["a", "b"],
        scope="read",
        alg="ES256",
        now=1000,
        expires_in=60,
        claims={"jti": None, "acr": "2"},
        headers={"typ": "JWT", "jku": "https://x.test"},
    )
    header, claims, signature = parts(token)
    assert header == {
        "alg": "ES256",
        "typ": "JWT",
        "kid": ISSUER.default_kid["ES256"],
        "jku": "https://x.test",
    }
    assert claims == {
        "iss": "https://as.test/tenant",
        "sub": "user-1",
        "client_id": "test-client",
        "iat": 1000,
        "exp": 1060,
        "aud": ["a", "b"],
        "scope": "read",
        "acr": "2",
    }
    assert len(signature) == 64


def test_sign_jws_signs_exactly_what_it_is_given() -> None:
    unsigned = sign_jws({"alg": "none"}, {"sub": "x"}, None)
    assert unsigned.endswith(".") and parts(unsigned)[0] == {"alg": "none"}
    raw = sign_jws({"alg": "HS256", "kid": "k"}, b"not json", b"secret")
    assert b64url_decode(raw.split(".")[1]) == b"not json"


def test_rotation_replaces_the_default_key() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    old = issuer.default_kid["RS256"]
    new = issuer.rotate("RS256")
    assert [key["kid"] for key in issuer.jwks()["keys"]] == [new]
    assert parts(issuer.token())[0]["kid"] == new != old


def test_a_token_for_an_algorithm_without_a_key_says_how_to_get_one() -> None:
    with pytest.raises(ValueError, match="no PS256 key"):
        TestIssuer(algorithms=("RS256",)).token(alg="PS256")


def test_a_key_pool_hands_out_its_keys_in_turn_and_rotation_changes_the_key() -> None:
    from oauthguard.testing import KeyPool

    pool = KeyPool(size=2)
    first, second = TestIssuer(key_pool=pool), TestIssuer(key_pool=pool)
    key_of = lambda issuer: issuer.keys[issuer.default_kid["RS256"]][1]  # noqa: E731
    assert key_of(first) is not key_of(second)
    third = TestIssuer(key_pool=pool)
    assert key_of(third) is key_of(first)  # the pool's size, then in turn
    before = key_of(third)
    third.rotate("RS256")
    assert key_of(third) is not before
    with pytest.raises(ValueError, match="at least two"):
        KeyPool(size=1)
