"""``providers.cognito`` against a Cognito-shaped ``TestIssuer`` over loopback.

Token shapes from the Amazon Cognito Developer Guide: "Understanding the access token"
(https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html:
no ``aud``, ``token_use: access``, ``client_id``, ``scope``, ``cognito:groups``, a header of
``kid`` and ``alg`` only), "Understanding the identity (ID) token"
(https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html:
``aud`` the app client, ``token_use: id``) and "Verifying a JSON Web Token"
(https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html:
issuer ``https://cognito-idp.{region}.amazonaws.com/{userPoolId}``, keys at
``/{userPoolId}/.well-known/jwks.json``, check ``token_use`` and ``client_id``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_setup import Stack, provider_stack, refusal_logs, refused

from oauthguard import ConfigurationError, providers
from oauthguard.testing import CognitoProfile

POOL = "eu-west-1_AbCdEf123"
CLIENT = "4example23456789abcdefghij"
PROFILE = CognitoProfile(user_pool_id=POOL, client_id=CLIENT)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with provider_stack(
        PROFILE, lambda base: providers.cognito(f"{base}/{POOL}", client_ids=[CLIENT])
    ) as running:
        yield running


def test_an_access_token_without_aud_is_accepted_with_its_groups(stack: Stack) -> None:
    token = stack.issuer.access_token(scopes=["orders:read"], roles=["clerks"])
    response = stack.get("/me", token)
    assert response.status_code == 200, response.text
    assert (response.json()["roles"], response.json()["client_id"]) == (["clerks"], CLIENT)
    assert stack.get("/orders", token).status_code == 200


def test_a_machine_token_with_resource_server_scopes(stack: Stack) -> None:
    token = stack.issuer.access_token(subject=CLIENT, scopes=["orders/read", "orders:read"])
    assert stack.get("/orders", token).status_code == 200


def test_an_access_token_with_an_aud_must_name_this_resource(stack: Stack) -> None:
    token = stack.issuer.access_token(audience="https://other.example.com")
    assert "aud" in refused(stack.get("/me", token))


def test_an_id_token_is_refused_as_one_and_the_log_says_what_to_send(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="oauthguard"):
        response = stack.get("/me", stack.issuer.id_token())
    assert "Cognito ID token" in refused(response)
    assert "AccessToken" in refusal_logs(caplog.records)


def test_another_app_clients_token_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(client_id="7other23456789abcdefghij")
    assert "7other23456789abcdefghij" in refused(stack.get("/me", token))


def test_another_pool_is_not_trusted(stack: Stack) -> None:
    other = stack.issuer.base_url + "/eu-west-1_Other9999"
    assert "issuer" in refused(stack.get("/me", stack.issuer.access_token(claims={"iss": other})))


def test_a_token_use_neither_access_nor_id_is_refused(stack: Stack) -> None:
    token = stack.issuer.access_token(claims={"token_use": None})
    assert "token_use" in refused(stack.get("/me", token))


def test_discovery_and_keys_at_the_pools_paths(stack: Stack) -> None:
    stack.get("/me", stack.issuer.access_token())
    assert f"/{POOL}/.well-known/openid-configuration" in stack.issuer.served
    assert f"/{POOL}/.well-known/jwks.json" in stack.issuer.served


def test_the_region_comes_from_the_pool_id() -> None:
    issuer = providers.cognito(POOL, client_ids=CLIENT)
    assert issuer.url == f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"
    assert (issuer.audience_required, issuer.clients) == (False, (CLIENT,))
    with pytest.raises(ConfigurationError, match="region"):
        providers.cognito(POOL, client_ids=CLIENT, region="us-east-1")
    with pytest.raises(ConfigurationError, match="user pool ID"):
        providers.cognito("AbCdEf123", client_ids=CLIENT)
    with pytest.raises(ConfigurationError, match="client_ids"):
        providers.cognito(POOL, client_ids=[])
