"""Token exchange (RFC 8693) against panva's ``oidc-provider``: its token endpoint, client
authentication, keys and JWT access tokens are its own; only the grant handler registered
with ``registerGrantType`` in tests/interop/provider.mjs is test code (a policy per client,
``act`` naming the exchanging client)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from oidc_provider import (
    JWT_RESOURCE,
    OTHER_JWT_RESOURCE,
    AuthorizationServer,
    jose_header,
    jose_part,
    running_provider,
)

from oauthguard import ResourceServer, TemporarilyUnavailable
from oauthguard.exchange import ExchangeRefused, TokenExchange

pytestmark = [pytest.mark.node, pytest.mark.anyio]


@pytest.fixture(scope="module")
def provider() -> Iterator[AuthorizationServer]:
    with running_provider() as server:
        yield server


def exchange_at(
    provider: AuthorizationServer, client_id: str = "exchanger", **settings: object
) -> TokenExchange:
    auth = "client_secret_post" if client_id.endswith("-post") else "client_secret_basic"
    options: dict[str, object] = {
        "client_id": client_id,
        "client_secret": f"{client_id}-secret",
        "auth_method": auth,
    }
    options.update(settings)
    return TokenExchange(provider.issuer, **options)  # type: ignore[arg-type]


async def verified_by(provider: AuthorizationServer, resource: str, token: str) -> object:
    async with ResourceServer(resource=resource, authorization_servers=provider.issuer) as server:
        return await server.verify(token)


@pytest.mark.parametrize("client_id", ["exchanger", "exchanger-post"])
async def test_its_token_is_exchanged_for_one_the_other_resource_accepts(
    provider: AuthorizationServer, client_id: str
) -> None:
    subject_token = provider.token("rs256-client", resource=JWT_RESOURCE, scope="read")
    caller = await verified_by(provider, JWT_RESOURCE, subject_token)
    async with exchange_at(provider, client_id) as exchange:
        exchanged = await exchange.token_for(caller, resource=OTHER_JWT_RESOURCE, scope="read")
        again = await exchange.token_for(caller, resource=OTHER_JWT_RESOURCE, scope="read")
    assert again is exchanged and exchange.calls == 1
    assert (exchanged.token_type, exchanged.scope) == ("Bearer", "read")
    assert jose_header(exchanged.access_token)["typ"] == "at+jwt"  # its own RFC 9068 token
    seen = await verified_by(provider, OTHER_JWT_RESOURCE, exchanged.access_token)
    assert seen.subject == "rs256-client"  # type: ignore[attr-defined]
    assert seen.audience == (OTHER_JWT_RESOURCE,)  # type: ignore[attr-defined]
    assert seen.actor is not None and seen.actor.subject == client_id  # type: ignore[attr-defined]
    assert jose_part(exchanged.access_token, 1)["client_id"] == client_id


async def test_its_refusals_are_exchange_refused(provider: AuthorizationServer) -> None:
    subject_token = provider.token("rs256-client", resource=JWT_RESOURCE, scope="read")
    async with exchange_at(provider) as exchange:
        with pytest.raises(ExchangeRefused) as target:
            await exchange.token_for(subject_token, resource=JWT_RESOURCE)
        with pytest.raises(ExchangeRefused) as scope:
            await exchange.token_for(subject_token, resource=OTHER_JWT_RESOURCE, scope="write")
        with pytest.raises(ExchangeRefused) as grant:
            await exchange.token_for(subject_token[:-4] + "AAAA", resource=OTHER_JWT_RESOURCE)
    assert (target.value.code, scope.value.code, grant.value.code) == (
        "invalid_target",
        "invalid_scope",
        "invalid_grant",
    )
    assert all(error.status == 403 for error in (target.value, scope.value, grant.value))


async def test_a_client_not_allowed_the_grant_is_refused(provider: AuthorizationServer) -> None:
    subject_token = provider.token("rs256-client", resource=JWT_RESOURCE)
    async with exchange_at(provider, "rs256-client") as exchange:
        with pytest.raises(ExchangeRefused) as refused:
            await exchange.token_for(subject_token, resource=OTHER_JWT_RESOURCE)
    # oidc-provider names it invalid_request (RFC 6749 §5.2 would say unauthorized_client).
    assert refused.value.code == "invalid_request"
    assert refused.value.server_description == "requested grant type is not allowed for this client"


async def test_credentials_it_refuses_are_a_503(provider: AuthorizationServer) -> None:
    subject_token = provider.token("rs256-client", resource=JWT_RESOURCE)
    async with exchange_at(provider, client_secret="wrong") as exchange:
        with pytest.raises(TemporarilyUnavailable) as failed:
            await exchange.token_for(subject_token, resource=OTHER_JWT_RESOURCE)
    assert not isinstance(failed.value, ExchangeRefused)
    assert failed.value.description.endswith("refused our client credentials")


def test_its_metadata_names_the_token_endpoint_we_discover(provider: AuthorizationServer) -> None:
    metadata = httpx.get(f"{provider.issuer}/.well-known/openid-configuration").json()
    assert metadata["token_endpoint"] == f"{provider.issuer}/token"
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in metadata["grant_types_supported"]
