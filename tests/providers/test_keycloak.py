"""``providers.keycloak`` against a Keycloak-shaped ``TestIssuer`` over loopback.

Token shapes from Keycloak's documentation: the Server Administration Guide, "OpenID
Connect" clients, "Audience support" (https://www.keycloak.org/docs/latest/server_admin/#audience-support:
``aud`` holds ``account`` unless an audience mapper adds the API, ``azp`` the client that asked)
and "Role scope mappings" (https://www.keycloak.org/docs/latest/server_admin/#_role_scope_mappings:
realm roles in ``realm_access.roles``, a client's in ``resource_access.{client}.roles``); the
``typ`` claim ``Bearer`` / ``ID`` of access and ID tokens, and the JWKS at
``/realms/{realm}/protocol/openid-connect/certs`` listing an RSA-OAEP key with ``use: "enc"``
(https://www.keycloak.org/docs/latest/securing_apps/#_oidc, endpoints).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_setup import Stack, description, provider_stack, refusal_logs, refused
from support import assert_refused, free_port, serve

from oauthguard import OAuthGuard, providers
from oauthguard.testing import KeycloakProfile, TestIssuer, sign_jws

PROFILE = KeycloakProfile(realm="demo", client_id="orders-api", caller_id="web-app")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with provider_stack(
        PROFILE, lambda base: providers.keycloak(base, realm="demo", client_id="orders-api")
    ) as running:
        yield running


def test_an_access_token_is_accepted_with_realm_and_client_roles(stack: Stack) -> None:
    token = stack.issuer.access_token(
        scopes=["orders:read", "profile"], roles=["clerk"], client_roles=["auditor"]
    )
    response = stack.get("/me", token)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["issuer"] == stack.issuer.issuer
    assert {"clerk", "auditor", "offline_access"} <= set(seen["roles"])
    assert seen["client_id"] == "web-app"  # azp: the client that asked
    assert stack.get("/orders", token).status_code == 200


def test_the_scope_a_route_requires_is_checked(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["profile"])
    params = assert_refused(stack.get("/orders", token), 403, "insufficient_scope")
    assert params["scope"] == "orders:read"


def test_another_clients_roles_are_not_this_apis_roles(stack: Stack) -> None:
    token = stack.issuer.access_token(claims={"resource_access": {"billing": {"roles": ["x"]}}})
    assert "x" not in stack.get("/me", token).json()["roles"]


def test_an_id_token_is_refused_as_one(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    for token in (stack.issuer.id_token(), stack.issuer.id_token(audience=["orders-api"])):
        with caplog.at_level("INFO", logger="oauthguard"):
            response = stack.get("/me", token)  # aud the signing-in client, or even the API
        assert_refused(response, 401, "invalid_token")
        assert "Keycloak ID token" in description(response)
    assert "Audience mapper" not in refusal_logs(caplog.records)  # no fix for another kind


def test_a_refresh_token_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(claims={"typ": "Refresh"})
    response = stack.get("/me", token)
    assert_refused(response, 401, "invalid_token")
    assert "not a Keycloak access token" in description(response)


def test_the_default_account_audience_is_refused_and_the_log_explains_the_mapper(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    token = stack.issuer.access_token(audience="account")
    with caplog.at_level("INFO", logger="oauthguard"):
        response = stack.get("/me", token)
    assert_refused(response, 401, "invalid_token")
    assert "aud" in description(response)
    logged = refusal_logs(caplog.records)
    assert "Keycloak's default audience" in logged and "Audience mapper" in logged
    assert token not in logged


def test_another_realm_is_not_trusted(stack: Stack) -> None:
    other = stack.issuer.access_token(claims={"iss": stack.issuer.base_url + "/realms/other"})
    response = stack.get("/me", other)
    assert_refused(response, 401, "invalid_token")
    assert "issuer" in description(response)


def test_a_signature_by_the_encryption_key_never_verifies(stack: Stack) -> None:
    assert stack.issuer.encryption_key is not None
    kid, key = stack.issuer.encryption_key
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    _, claims = _claims(stack.issuer.access_token())
    response = stack.get("/me", sign_jws(header, claims, key))
    assert_refused(response, 401, "invalid_token")


def test_discovery_reads_the_realms_openid_configuration(stack: Stack) -> None:
    paths = list(stack.issuer.served)
    assert "/realms/demo/.well-known/openid-configuration" in paths
    assert "/realms/demo/protocol/openid-connect/certs" in paths
    assert not any("oauth-authorization-server" in path for path in paths)


def test_a_container_issuer_is_reached_at_its_internal_url_over_http() -> None:
    """docker compose: tokens name ``http://keycloak:8080/realms/demo`` (the name the
    browser used), the API reaches the same Keycloak at another address."""
    port = free_port()
    public = "http://keycloak:8080"
    issuer = TestIssuer(public, profile=PROFILE, algorithms=("RS256",))
    preset = providers.keycloak(
        public,
        realm="demo",
        client_id="orders-api",
        internal_url=f"http://127.0.0.1:{port}",
        allow_http=True,
    )
    from provider_setup import RESOURCE, orders, whoami
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/me", whoami), Route("/orders", orders)])
    guarded = OAuthGuard(app, resource=RESOURCE, authorization_servers=[preset])
    with serve(issuer.app, port=port), serve(guarded) as api:
        running = Stack(issuer, preset, api)
        token = issuer.access_token(scopes=["orders:read"], roles=["clerk"])
        response = running.get("/me", token)
        assert response.status_code == 200, response.text
        assert response.json()["issuer"] == "http://keycloak:8080/realms/demo"
        assert running.get("/orders", token).status_code == 200


def test_an_http_issuer_off_loopback_needs_the_opt_in() -> None:
    with pytest.raises(Exception, match="allow_http"):
        providers.keycloak("http://keycloak:8080", realm="demo", client_id="orders-api")


def _claims(token: str) -> tuple[dict[str, object], dict[str, object]]:
    from oauthguard._verify.jwt import split_jws

    header, claims, _, _ = split_jws(token)
    return header, claims


def test_a_strangers_token_is_not_trusted_whatever_its_shape(stack: Stack) -> None:
    """The provider's checks judge only tokens of its own issuer, or ones its explain
    recognizes: a token of some other issuer is refused as such."""
    stranger = TestIssuer("https://idp.example.net", algorithms=("RS256",))
    response = stack.get("/me", stranger.token(audience="orders-api"))
    assert refused(response) == "the token's issuer is not trusted"


def test_clients_limit_the_callers_by_azp() -> None:
    with provider_stack(
        PROFILE,
        lambda base: providers.keycloak(
            base, realm="demo", client_id="orders-api", clients=["web-app"]
        ),
    ) as limited:
        assert limited.get("/me", limited.issuer.access_token()).status_code == 200
        other = limited.issuer.access_token(client_id="batch-job")
        assert "'batch-job'" in refused(limited.get("/me", other))
