"""Every preset argument is checked when the preset is called: a ``ConfigurationError``
naming the argument and the fix, never an issuer that silently accepts nothing."""

from __future__ import annotations

from typing import Any

import pytest

from oauthguard import ConfigurationError, providers

GUID = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: providers.auth0(""), r"auth0\(domain=\.\.\.\) must be a host name"),
        (lambda: providers.auth0("https://x.auth0.com/api"), "has a path"),
        (lambda: providers.auth0("http://x.auth0.com"), "plain http"),
        (lambda: providers.auth0("x.auth0.com?a=1"), "without query"),
        (lambda: providers.auth0("x.auth0.com", audience=""), r"auth0\(audience=\.\.\.\)"),
        (lambda: providers.auth0("x.auth0.com", roles_claim="roles"), "namespace"),
        (lambda: providers.entra("", tenant=GUID), r"Application \(client\) ID"),
        (lambda: providers.entra(GUID), "tenant="),
        (lambda: providers.entra(GUID, tenants=[]), "at least one tenant"),
        (lambda: providers.entra(GUID, tenants=["common"]), r"Directory \(tenant\) ID"),
        (
            lambda: providers.entra(GUID, tenant=GUID, authority="login.microsoftonline.com/x"),
            "path",
        ),
        (lambda: providers.entra(GUID, tenant=GUID, app_id_uri=" "), "app_id_uri"),
        (lambda: providers.okta("example.okta.com", server=""), "org authorization server"),
        (lambda: providers.okta("example.okta.com", server="a/b"), r"okta\(server=\.\.\.\)"),
        (lambda: providers.okta("example.okta.com", audience=""), r"okta\(audience=\.\.\.\)"),
        (lambda: providers.keycloak("kc.example.com", realm=""), "realm"),
        (lambda: providers.keycloak("kc.example.com", realm="a/b"), "realm"),
        (lambda: providers.keycloak("kc.example.com", "demo", client_id="a.b"), "dot"),
        (lambda: providers.keycloak("http://kc:8080", "demo"), "allow_http=True"),
        (lambda: providers.keycloak("kc.example.com", "demo", internal_url="ftp://kc"), "https"),
        (lambda: providers.cognito("eu-west-1_Abc", client_ids="x", region="eu"), "region"),
        (lambda: providers.cognito("eu-west-1_Abc", client_ids=[""]), "client_ids"),
        (lambda: providers.cognito("eu-west-1", client_ids="x"), "user pool ID"),
    ],
)
def test_a_wrong_argument_is_named_with_its_fix(call: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        call()


def test_each_preset_builds_its_providers_issuer_identifier() -> None:
    assert providers.auth0("example.us.auth0.com").url == "https://example.us.auth0.com/"
    assert providers.auth0("https://login.example.com/").url == "https://login.example.com/"
    assert providers.okta("example.okta.com", server="aus1").url == (
        "https://example.okta.com/oauth2/aus1"
    )
    legacy = providers.keycloak("https://sso.example.com/auth", realm="demo")
    assert legacy.url == "https://sso.example.com/auth/realms/demo"
    assert legacy.roles_claims == ("realm_access.roles",) and legacy.audiences == ()
    kc = providers.keycloak("https://sso.example.com", realm="demo", client_id="orders-api")
    assert kc.roles_claims == ("realm_access.roles", "resource_access.orders-api.roles")
    assert kc.audiences == ("orders-api",) and kc.discovery == "oidc"
    auth0 = providers.auth0("example.us.auth0.com", audience="https://api.example.com")
    assert (auth0.discovery, auth0.scopes_claims) == ("oidc", ("scope", "permissions"))


def test_plain_http_off_loopback_names_the_opt_in_only_where_there_is_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="serves https only"):
        providers.okta("http://okta.internal")
    with pytest.raises(ConfigurationError, match="allow_http=True"):
        providers.keycloak("http://keycloak:8080", realm="demo")
    monkeypatch.setenv("OAUTHGUARD_INSECURE_HTTP", "1")  # the process-wide opt-in
    assert providers.keycloak("http://keycloak:8080", realm="demo").url == (
        "http://keycloak:8080/realms/demo"
    )
