"""``providers.okta`` against an Okta-shaped ``TestIssuer`` over loopback.

Token shapes from Okta's documentation: "Validate access tokens"
(https://developer.okta.com/docs/guides/validate-access-tokens/: custom authorization server
issuer ``https://{domain}/oauth2/{server}``, ``aud`` its Audience, ``cid`` the client, ``scp``
an array; the org authorization server's access tokens are not for your APIs), "Authorization
servers" (https://developer.okta.com/docs/concepts/auth-servers/), the OpenID Connect & OAuth
2.0 API's token claims (https://developer.okta.com/docs/reference/api/oidc/#token-claims:
ID tokens with ``aud`` the client and no ``cid``, ``jti`` ``ID.``/``AT.``) and its metadata
at ``/oauth2/{server}/.well-known/oauth-authorization-server``
(https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/tag/CustomAS/).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_setup import Stack, provider_stack, refusal_logs, refused
from support import assert_refused

from oauthguard import ConfigurationError, providers
from oauthguard.testing import OktaProfile

PROFILE = OktaProfile(server="aus1a2b3c4", audience="api://orders")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with provider_stack(
        PROFILE, lambda base: providers.okta(base, server="aus1a2b3c4", audience="api://orders")
    ) as running:
        yield running


def test_an_access_token_with_an_scp_array_and_groups(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["orders:read", "openid"], roles=["Everyone"])
    response = stack.get("/me", token)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert (seen["scopes"], seen["roles"]) == (["openid", "orders:read"], ["Everyone"])
    assert seen["client_id"] == PROFILE.client_id  # cid
    assert stack.get("/orders", token).status_code == 200


def test_a_missing_scope_is_a_403(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["openid"])
    assert assert_refused(stack.get("/orders", token), 403, "insufficient_scope")["scope"] == (
        "orders:read"
    )


def test_an_id_token_is_refused_as_one(stack: Stack) -> None:
    for token in (stack.issuer.id_token(), stack.issuer.id_token(audience="api://orders")):
        assert "Okta ID token" in refused(stack.get("/me", token))


def test_another_authorization_servers_token_is_not_trusted(stack: Stack) -> None:
    other = stack.issuer.access_token(claims={"iss": stack.issuer.base_url + "/oauth2/default"})
    assert "issuer" in refused(stack.get("/me", other))


def test_a_wrong_audience_is_refused_and_the_log_names_the_setting(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    token = stack.issuer.access_token(audience="api://default")
    with caplog.at_level("INFO", logger="oauthguard"):
        assert "aud" in refused(stack.get("/me", token))
    assert "Audience" in refusal_logs(caplog.records)


def test_discovery_at_the_authorization_servers_rfc8414_path(stack: Stack) -> None:
    stack.get("/me", stack.issuer.access_token())
    assert "/.well-known/oauth-authorization-server/oauth2/aus1a2b3c4" in stack.issuer.served
    assert "/oauth2/aus1a2b3c4/v1/keys" in stack.issuer.served


def test_the_org_authorization_server_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match="Okta's own APIs"):
        providers.okta("example.okta.com", server=None)
    with pytest.raises(ConfigurationError, match="has a path"):
        providers.okta("https://example.okta.com/oauth2/default")
    assert providers.okta("example.okta.com").url == "https://example.okta.com/oauth2/default"
