"""``TestIssuer(profile=...)``: metadata at each provider's paths, tokens in its shapes."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from oauthguard._jose.b64 import b64url_decode
from oauthguard._verify.jwt import split_jws
from oauthguard.testing import Auth0Profile, KeycloakProfile, Profile, TestIssuer

BASE = "http://127.0.0.1:8080"


def issuer(profile: str | Profile) -> TestIssuer:
    return TestIssuer(BASE, profile=profile, algorithms=("RS256",))


def statuses(issuer: TestIssuer, paths: list[str]) -> dict[str, Any]:
    """What the issuer answers at each path: the status, and the document's issuer."""

    async def fetch() -> dict[str, Any]:
        answers: dict[str, Any] = {}
        async with issuer.http_client() as http:
            for path in paths:
                response = await http.get(BASE + path)
                body = response.json() if response.status_code == 200 else {}
                answers[path] = (response.status_code, body.get("issuer", body.get("keys")))
        return answers

    return anyio.run(fetch)


@pytest.mark.parametrize(
    ("profile", "iss", "served", "absent"),
    [
        (
            "auth0",
            BASE + "/",
            ["/.well-known/openid-configuration"],
            ["/.well-known/oauth-authorization-server"],
        ),
        (
            "keycloak",
            BASE + "/realms/test",
            ["/realms/test/.well-known/openid-configuration"],
            ["/.well-known/oauth-authorization-server/realms/test", "/realms/other/.well-known/"],
        ),
        (
            "okta",
            BASE + "/oauth2/default",
            [
                "/oauth2/default/.well-known/oauth-authorization-server",
                "/.well-known/oauth-authorization-server/oauth2/default",
                "/oauth2/default/.well-known/openid-configuration",
            ],
            ["/.well-known/openid-configuration"],
        ),
        (
            "cognito",
            BASE + "/us-east-1_TestPool1",
            ["/us-east-1_TestPool1/.well-known/openid-configuration"],
            ["/.well-known/oauth-authorization-server/us-east-1_TestPool1"],
        ),
    ],
)
def test_metadata_is_served_only_at_the_providers_paths(
    profile: str, iss: str, served: list[str], absent: list[str]
) -> None:
    stand_in = issuer(profile)
    assert stand_in.issuer == iss
    answers = statuses(stand_in, [*served, *absent])
    assert all(answers[path] == (200, iss) for path in served), answers
    assert all(answers[path][0] == 404 for path in absent), answers


def test_entra_serves_each_tenants_document_and_the_multi_tenant_one() -> None:
    stand_in = issuer("entra")
    tenant = "11111111-2222-3333-4444-555555555555"
    answers = statuses(
        stand_in,
        [
            f"/{tenant}/v2.0/.well-known/openid-configuration",
            "/common/v2.0/.well-known/openid-configuration",
            "/organizations/v2.0/.well-known/openid-configuration",
        ],
    )
    assert list(answers.values()) == [
        (200, f"{BASE}/{tenant}/v2.0"),
        (200, BASE + "/{tenantid}/v2.0"),  # literally, as Entra's multi-tenant document
        (200, BASE + "/{tenantid}/v2.0"),
    ]
    keys = statuses(stand_in, ["/common/discovery/v2.0/keys", f"/{tenant}/discovery/keys"])
    assert all(status == 200 and len(found) == 1 for status, found in keys.values())


def test_the_jwks_is_at_the_providers_path_and_keycloak_lists_an_encryption_key() -> None:
    stand_in = issuer("keycloak")
    path = "/realms/test/protocol/openid-connect/certs"
    assert stand_in.jwks_uri == BASE + path
    (status, keys) = statuses(stand_in, [path])[path]
    assert status == 200
    assert [key["use"] for key in keys] == ["sig", "enc"]
    assert keys[1]["alg"] == "RSA-OAEP"
    assert stand_in.encryption_key is not None and stand_in.encryption_key[0] == keys[1]["kid"]


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _, _ = split_jws(token)
    return header, payload


def test_keycloak_tokens_put_roles_in_realm_and_client_access() -> None:
    stand_in = issuer(KeycloakProfile(realm="demo", client_id="orders-api"))
    header, claims = claims_of(
        stand_in.access_token(scopes=["orders:read"], roles=["clerk"], client_roles=["audit"])
    )
    assert header["typ"] == "JWT" and header["kid"] in stand_in.keys
    assert claims["iss"] == BASE + "/realms/demo"
    assert (claims["typ"], claims["azp"], claims["aud"]) == (
        "Bearer",
        "web-app",
        ["orders-api", "account"],
    )
    assert "clerk" in claims["realm_access"]["roles"]
    assert claims["resource_access"]["orders-api"] == {"roles": ["audit"]}
    assert claims["scope"] == "orders:read"
    _, id_claims = claims_of(stand_in.id_token())
    assert (id_claims["typ"], id_claims["aud"]) == ("ID", "web-app")


def test_each_profile_puts_scopes_and_roles_where_its_provider_does() -> None:
    scopes, roles = ["read", "write"], ["admin"]
    shapes = {}
    for name in ("auth0", "entra", "okta", "cognito"):
        shapes[name] = claims_of(issuer(name).access_token(scopes=scopes, roles=roles))
    assert shapes["auth0"][1]["scope"] == "read write"
    assert shapes["auth0"][1]["https://oauthguard.test/roles"] == roles
    assert (shapes["entra"][1]["scp"], shapes["entra"][1]["roles"]) == ("read write", roles)
    assert (shapes["okta"][1]["scp"], shapes["okta"][1]["groups"]) == (scopes, roles)
    assert (shapes["cognito"][1]["scope"], shapes["cognito"][1]["cognito:groups"]) == (
        "read write",
        roles,
    )
    assert "aud" not in shapes["cognito"][1] and shapes["cognito"][1]["token_use"] == "access"
    assert "typ" not in shapes["okta"][0] and "typ" not in shapes["cognito"][0]


def test_auth0_permissions_and_the_rfc9068_dialect() -> None:
    _, claims = claims_of(issuer("auth0").access_token(scopes=["openid"], permissions=["a:b"]))
    assert claims["permissions"] == ["a:b"]
    assert claims["aud"] == ["https://api.example.com", BASE + "/userinfo"]
    header, claims = claims_of(issuer(Auth0Profile(rfc9068=True)).access_token())
    assert header["typ"] == "at+jwt" and "client_id" in claims and "azp" not in claims


def test_entra_v1_other_tenant_and_graph_tokens() -> None:
    stand_in = issuer("entra")
    other = "11111111-2222-3333-4444-555555555555"
    _, v1 = claims_of(stand_in.access_token(version=1, tenant=other))
    assert (v1["iss"], v1["tid"], v1["ver"]) == (f"{BASE}/{other}/", other, "1.0")
    assert v1["aud"] == "api://6e74172b-be56-4843-9ff4-e66a39bb12e3" and "appid" in v1
    graph = stand_in.access_token(graph=True)
    head = json.loads(b64url_decode(graph.split(".")[0]))
    assert isinstance(head["nonce"], str)
    assert claims_of(graph)[1]["aud"] == "00000003-0000-0000-c000-000000000000"


def test_an_unknown_profile_or_option_is_refused() -> None:
    with pytest.raises(ValueError, match="profile must be one of"):
        TestIssuer(BASE, profile="ping")
    with pytest.raises(TypeError, match="no option 'tenant'"):
        issuer("okta").access_token(tenant="x")
    with pytest.raises(ValueError, match="need TestIssuer"):
        TestIssuer(BASE).access_token()


def test_the_token_endpoint_issues_tokens_in_the_providers_shape() -> None:
    stand_in = issuer("keycloak")
    client_id, secret = stand_in.register_client(grant_types=["client_credentials"])

    async def grant() -> dict[str, Any]:
        async with stand_in.http_client() as http:
            response = await http.post(
                stand_in.issuer + "/token",
                data={"grant_type": "client_credentials", "scope": "orders:read"},
                auth=(client_id, secret or ""),
            )
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

    _, claims = claims_of(anyio.run(grant)["access_token"])
    assert (claims["typ"], claims["azp"], claims["scope"]) == ("Bearer", client_id, "orders:read")
    assert claims["iss"] == BASE + "/realms/test"
