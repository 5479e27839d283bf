"""``providers.entra`` against an Entra-shaped ``TestIssuer`` over loopback.

Token shapes from the Microsoft identity platform documentation: "Access token claims
reference" (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference:
``aud`` the API's client ID (v2) or its App ID URI (v1), ``iss`` ``…/{tid}/v2.0`` or
``https://sts.windows.net/{tid}/``, ``azp``/``appid``, ``scp`` a space-separated string,
``roles`` an array, ``tid``, ``ver``), "Access tokens in the Microsoft identity platform"
(https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens:
``accessTokenAcceptedVersion``, the multi-tenant metadata whose ``issuer`` is
``…/{tenantid}/v2.0``, the common keys ``/common/discovery/v2.0/keys``, Microsoft Graph
tokens not to be validated by your API)
and "ID token claims reference"
(https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference:
``aud`` the signing-in app, a ``nonce``, no ``azp``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_setup import Stack, provider_stack, refusal_logs, refused

from oauthguard import ConfigurationError, ResourceServer, providers
from oauthguard.testing import EntraProfile

TENANT = "9f4c1a52-8d3e-4b7a-a1c6-2e5f7d9b0c31"
OTHER = "11111111-2222-3333-4444-555555555555"
API = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
PROFILE = EntraProfile(tenant=TENANT, client_id=API)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with provider_stack(
        PROFILE, lambda base: providers.entra(API, tenant=TENANT, authority=base)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def both_versions() -> Iterator[Stack]:
    with provider_stack(
        PROFILE,
        lambda base: providers.entra(API, tenant=TENANT, authority=base, versions=(1, 2)),
    ) as running:
        yield running


def test_a_v2_token_is_accepted_with_scp_and_app_roles(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["orders:read"], roles=["Orders.Admin"])
    response = stack.get("/me", token)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert (seen["scopes"], seen["roles"]) == (["orders:read"], ["Orders.Admin"])
    assert seen["client_id"] == PROFILE.caller_id  # azp: the calling app
    assert stack.get("/orders", token).status_code == 200


def test_the_app_id_uri_is_an_audience_too(stack: Stack) -> None:
    token = stack.issuer.access_token(audience=f"api://{API}", scopes=["orders:read"])
    assert stack.get("/orders", token).status_code == 200


def test_an_app_only_token_has_roles_and_no_scp(stack: Stack) -> None:
    token = stack.issuer.access_token(roles=["Orders.Read.All"])
    seen = stack.get("/me", token).json()
    assert (seen["scopes"], seen["roles"]) == ([], ["Orders.Read.All"])


def test_an_id_token_is_refused_as_one(stack: Stack) -> None:
    for token in (stack.issuer.id_token(), stack.issuer.id_token(audience=API)):
        assert "Entra ID token" in refused(stack.get("/me", token))


def test_a_graph_token_is_refused_as_one(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="oauthguard"):
        response = stack.get("/me", stack.issuer.access_token(graph=True))
    assert "Microsoft Graph" in refused(response)
    assert "Microsoft Graph token was sent" in refusal_logs(caplog.records)


def test_a_v1_token_where_v2_is_configured_is_refused_and_the_log_names_the_manifest(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="oauthguard"):
        response = stack.get("/me", stack.issuer.access_token(version=1))
    assert "issuer" in refused(response)
    assert "accessTokenAcceptedVersion" in refusal_logs(caplog.records)


def test_both_versions_accept_a_v1_token_by_its_own_issuer(both_versions: Stack) -> None:
    token = both_versions.issuer.access_token(version=1, scopes=["orders:read"])
    assert both_versions.get("/orders", token).status_code == 200
    assert f"/{TENANT}/discovery/keys" in both_versions.issuer.served
    token = both_versions.issuer.access_token(scopes=["orders:read"])
    assert both_versions.get("/orders", token).status_code == 200


def test_another_tenant_is_not_trusted(stack: Stack) -> None:
    assert "issuer" in refused(stack.get("/me", stack.issuer.access_token(tenant=OTHER)))


def test_a_tid_that_is_not_the_issuers_tenant_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(claims={"tid": OTHER})
    assert "tid" in refused(stack.get("/me", token))


def test_a_wrong_audience_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(audience="api://another-api")
    assert "aud" in refused(stack.get("/me", token))


def test_discovery_at_the_tenants_v2_document(stack: Stack) -> None:
    stack.get("/me", stack.issuer.access_token())
    assert f"/{TENANT}/v2.0/.well-known/openid-configuration" in stack.issuer.served


def test_a_multi_tenant_api_accepts_the_listed_tenants_with_the_common_keys() -> None:
    with provider_stack(
        PROFILE, lambda base: providers.entra(API, tenants=[TENANT, OTHER], authority=base)
    ) as running:
        for tenant in (TENANT, OTHER):
            token = running.issuer.access_token(tenant=tenant, scopes=["orders:read"])
            assert running.get("/orders", token).status_code == 200
        stranger = running.issuer.access_token(tenant="22222222-2222-3333-4444-555555555555")
        assert "issuer" in refused(running.get("/me", stranger))
        assert "/common/discovery/v2.0/keys" in running.issuer.served


def test_configuration_errors_name_the_argument_and_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="Directory \\(tenant\\) ID"):
        providers.entra(API, tenant="contoso.onmicrosoft.com")
    with pytest.raises(ConfigurationError, match="Directory \\(tenant\\) ID"):
        providers.entra(API, tenant="common")
    with pytest.raises(ConfigurationError, match="not both"):
        providers.entra(API, tenant=TENANT, tenants=[OTHER])
    with pytest.raises(ConfigurationError, match="Application \\(client\\) ID"):
        providers.entra("api://orders", tenant=TENANT)
    with pytest.raises(ConfigurationError, match="versions"):
        providers.entra(API, tenant=TENANT, versions=(3,))  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match=r"v1\.0 issuer of this cloud"):
        providers.entra(
            API, tenant=TENANT, authority="https://login.example.cloud", versions=(1, 2)
        )


def test_national_clouds_and_the_v1_issuer() -> None:
    v2, v1 = providers.entra(API, tenant=TENANT, versions=(2, 1))
    assert v2.url == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert v1.url == f"https://sts.windows.net/{TENANT}/"
    china = providers.entra(API, tenant=TENANT, authority="https://login.chinacloudapi.cn")
    assert china.url == f"https://login.chinacloudapi.cn/{TENANT}/v2.0"
    assert set(v2.audiences) == {API, f"api://{API}"}


def test_both_versions_go_in_authorization_servers_beside_other_issuers() -> None:
    both = providers.entra(API, tenant=TENANT, versions=(1, 2))
    server = ResourceServer(
        resource="https://api.example.com", authorization_servers=[both, "https://as.example.com"]
    )
    assert [issuer.url for issuer in server.issuers] == [
        both[0].url,
        both[1].url,
        "https://as.example.com",
    ]
    with pytest.raises(ConfigurationError, match="given twice"):
        ResourceServer(resource="https://api.example.com", authorization_servers=[both, both[0]])


@pytest.mark.parametrize("tid", ["v2.0", ""])
def test_a_tid_that_is_only_part_of_the_issuer_is_refused(stack: Stack, tid: str) -> None:
    token = stack.issuer.access_token(claims={"tid": tid})
    assert "tid" in refused(stack.get("/me", token))
