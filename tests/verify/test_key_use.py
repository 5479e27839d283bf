"""Keys of a JWKS that are not for signatures never verify one: ``use: "enc"`` (RFC 7517
§4.2) and ``key_ops`` without ``verify`` (§4.3), as Keycloak publishes its RSA-OAEP key
beside its signing keys."""

from __future__ import annotations

from typing import Any

import pytest
from apps import NOW, RESOURCE, Clock, bearer, client, guard
from support import assert_refused

from oauthguard.testing import TestIssuer, public_jwk, sign_jws


def issuer_with(extra: dict[str, Any]) -> tuple[TestIssuer, Any]:
    """An issuer whose JWKS also holds one more key, with ``extra`` members; that key's
    private half."""
    issuer = TestIssuer(algorithms=("RS256",))
    issuer.add_key("RS256", "extra-key")
    _, private = issuer.keys.pop("extra-key")
    issuer.default_kid["RS256"] = next(iter(issuer.keys))
    issuer.extra_jwks.append({**public_jwk(private, "extra-key", "RS256"), **extra})
    return issuer, private


def signed_with(issuer: TestIssuer, private: Any) -> str:
    claims = {
        "iss": issuer.issuer,
        "sub": "user-1",
        "aud": RESOURCE,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
    }
    return sign_jws({"alg": "RS256", "typ": "at+jwt", "kid": "extra-key"}, claims, private)


@pytest.mark.parametrize(
    "extra",
    [
        {"use": "enc"},
        {"use": "enc", "key_ops": ["verify"]},
        {"key_ops": ["encrypt", "wrapKey"]},
        {"key_ops": "verify"},  # §4.3: an array, never a string
        {"key_ops": []},
        {"use": "SIG"},  # §4.2: case-sensitive
    ],
)
def test_a_key_that_is_not_for_signatures_never_verifies_one(extra: dict[str, Any]) -> None:
    issuer, private = issuer_with(extra)
    api = client(guard(issuer, Clock()))
    params = assert_refused(
        api.get("/mcp", headers=bearer(signed_with(issuer, private))), 401, "invalid_token"
    )
    assert params["error_description"] == "no signing key of the issuer matches the token's kid"
    good = issuer.token(audience=RESOURCE, now=NOW)
    assert api.get("/mcp", headers=bearer(good)).status_code == 200


@pytest.mark.parametrize(
    "extra", [{}, {"use": "sig"}, {"key_ops": ["verify"]}, {"use": "sig", "key_ops": ["verify"]}]
)
def test_a_signing_key_verifies(extra: dict[str, Any]) -> None:
    issuer, private = issuer_with(extra)
    api = client(guard(issuer, Clock()))
    assert api.get("/mcp", headers=bearer(signed_with(issuer, private))).status_code == 200
