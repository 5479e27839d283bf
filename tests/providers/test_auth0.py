"""``providers.auth0`` against an Auth0-shaped ``TestIssuer`` over loopback.

Token shapes from Auth0's documentation: "Access Token Profiles"
(https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles: issuer
``https://{domain}/`` with its slash, ``aud`` the API identifier and ``/userinfo``, ``azp``
or, in the RFC 9068 dialect, ``client_id`` and ``typ: at+jwt``), "Enable Role-Based Access
Control for APIs" (https://auth0.com/docs/get-started/apis/enable-role-based-access-control-for-apis:
``permissions`` beside ``scope`` with "Add Permissions in the Access Token"), "ID Token
Structure" (https://auth0.com/docs/secure/tokens/id-tokens/id-token-structure: ``aud`` the
client, a ``nonce``, no ``azp``) and "Get Access Tokens"
(https://auth0.com/docs/secure/tokens/access-tokens/get-access-tokens: without an
``audience`` the token is for ``/userinfo`` only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from provider_setup import RESOURCE, Stack, provider_stack, refusal_logs, refused
from support import assert_refused

from oauthguard import providers
from oauthguard._jose.b64 import b64url_encode
from oauthguard.testing import Auth0Profile

ROLES = "https://api.example.com/roles"
PROFILE = Auth0Profile(audience=RESOURCE, roles_claim=ROLES)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with provider_stack(
        PROFILE, lambda base: providers.auth0(base, audience=RESOURCE, roles_claim=ROLES)
    ) as running:
        yield running


def test_permissions_are_united_with_scope(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["openid", "profile"], permissions=["orders:read"])
    response = stack.get("/orders", token)
    assert response.status_code == 200, response.text
    assert stack.get("/me", token).json()["scopes"] == ["openid", "orders:read", "profile"]


def test_an_rbac_token_without_the_permission_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["openid"], permissions=["orders:write"])
    params = assert_refused(stack.get("/orders", token), 403, "insufficient_scope")
    assert params["scope"] == "orders:read"


def test_roles_from_a_namespaced_claim(stack: Stack) -> None:
    token = stack.issuer.access_token(roles=["clerk"])
    assert stack.get("/me", token).json()["roles"] == ["clerk"]


def test_the_rfc9068_dialect_is_accepted_too(stack: Stack) -> None:
    rfc9068 = Auth0Profile(audience=RESOURCE, rfc9068=True)
    token = stack.issuer.token(
        audience=RESOURCE,
        scope="orders:read",
        claims={"client_id": "spa", "iss": stack.issuer.issuer},
        headers={"typ": "at+jwt"},
    )
    assert rfc9068.rfc9068 and stack.get("/orders", token).status_code == 200


def test_an_id_token_is_refused_as_one(stack: Stack) -> None:
    for token in (stack.issuer.id_token(), stack.issuer.id_token(audience=RESOURCE)):
        assert "Auth0 ID token" in refused(stack.get("/me", token))


def test_a_token_requested_without_audience_is_refused_and_the_fix_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    userinfo_only = stack.issuer.access_token(audience=stack.issuer.base_url + "/userinfo")
    with caplog.at_level("INFO", logger="oauthguard"):
        response = stack.get("/me", userinfo_only)
    assert_refused(response, 401, "invalid_token")
    assert "audience=" in refusal_logs(caplog.records)


def test_an_encrypted_token_for_userinfo_is_refused_and_the_fix_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Without an audience Auth0 returns an encrypted (JWE) token for its /userinfo."""
    header = {"alg": "dir", "enc": "A256GCM", "iss": stack.issuer.issuer}
    head = b64url_encode(json.dumps(header).encode())
    jwe = f"{head}..{'a' * 16}.{'b' * 40}.{'c' * 22}"
    with caplog.at_level("INFO", logger="oauthguard"):
        assert "encrypted" in refused(stack.get("/me", jwe))
    logged = refusal_logs(caplog.records)
    assert "audience=" in logged and "/userinfo" in logged and jwe not in logged


def test_a_wrong_audience_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(audience="https://other-api.example.com")
    assert "aud" in refused(stack.get("/me", token))


def test_another_tenant_is_not_trusted(stack: Stack) -> None:
    token = stack.issuer.access_token(claims={"iss": "https://other.eu.auth0.com/"})
    assert "issuer" in refused(stack.get("/me", token))


def test_discovery_is_openid_connect_only(stack: Stack) -> None:
    stack.get("/me", stack.issuer.access_token())
    paths = list(stack.issuer.served)
    assert "/.well-known/openid-configuration" in paths and "/.well-known/jwks.json" in paths
    assert not any("oauth-authorization-server" in path for path in paths)
