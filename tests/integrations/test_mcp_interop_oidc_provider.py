"""The real ``mcp`` client against an MCP server protected by oauthguard whose authorization
server is panva's ``oidc-provider`` (tests/interop/provider.mjs), over loopback HTTP.

Nothing here is ours but the guard: the SDK client discovers oidc-provider through our RFC 9728
metadata, registers with it (RFC 7591), signs in on its development login and consent pages
(driven like a browser by ``ProviderBrowser``) or uses the client credentials grant, and
calls tools with the RFC 9068 JWT access tokens it issues for the MCP endpoint. The
TypeScript SDK's client does the same in tests/test_mcp_typescript_oidc_provider.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import (
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp_oidc_provider import (
    REDIRECT_URI,
    AuthorizationRefused,
    ProviderBrowser,
    Setup,
    assert_issued_by,
    guarded_by_provider,
)
from mcp_support import INITIALIZE, MCP_HEADERS, Storage, call, connect
from oidc_provider import jose_part
from support import assert_refused

pytestmark = [pytest.mark.anyio, pytest.mark.node]


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with guarded_by_provider() as running:
        yield running


def code_provider(
    endpoint: str, browser: ProviderBrowser, storage: Storage | None = None
) -> OAuthClientProvider:
    """The SDK's authorization-code provider; it registers itself unless ``storage`` holds
    a client already."""
    metadata = OAuthClientMetadata(redirect_uris=[REDIRECT_URI], client_name="oauthguard tests")
    return OAuthClientProvider(
        endpoint, metadata, storage or Storage(), browser.redirect, browser.callback
    )


def credentials_provider(setup: Setup, storage: Storage) -> ClientCredentialsOAuthProvider:
    return ClientCredentialsOAuthProvider(
        setup.endpoint, storage, "mcp-client", "mcp-client-secret", issuer=setup.provider.issuer
    )


async def test_authorization_code_with_registration_login_and_consent(setup: Setup) -> None:
    browser, storage, log = ProviderBrowser("alice"), Storage(), []
    async with connect(
        setup.endpoint, code_provider(setup.endpoint, browser, storage), log
    ) as client:
        me = await call(client, "whoami")
    assert log[:6] == [
        "POST /mcp 401",
        "GET /.well-known/oauth-protected-resource/mcp 200",  # names oidc-provider
        "GET /.well-known/oauth-authorization-server 200",  # oidc-provider's metadata
        "POST /reg 201",  # RFC 7591 at its registration endpoint
        "POST /token 200",
        "POST /mcp 200",
    ], log
    assert browser.pages == ["login", "consent"]
    [asked] = browser.authorizations
    # The SDK adds offline_access, which oidc-provider advertises, for a refresh token.
    assert (asked["resource"], asked["scope"]) == (setup.endpoint, "mcp:tools offline_access")
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert storage.client is not None and asked["client_id"] == storage.client.client_id
    assert_issued_by(setup, me, storage.tokens)
    assert me["subject"] == "alice" and me["client_id"] == storage.client.client_id
    assert me["scopes"] == ["mcp:tools"]


async def test_step_up_to_a_tool_scope_at_the_provider(setup: Setup) -> None:
    # A client registered ahead, with no scope restriction (the next test shows why).
    storage = Storage()
    storage.client = OAuthClientInformationFull(
        client_id="mcp-app",
        client_secret="mcp-app-secret",
        redirect_uris=[REDIRECT_URI],
        token_endpoint_auth_method="client_secret_basic",
    )
    browser, log = ProviderBrowser("bob"), []
    async with connect(
        setup.endpoint, code_provider(setup.endpoint, browser, storage), log
    ) as client:
        assert (await call(client, "whoami"))["scopes"] == ["mcp:tools"]
        log.clear()
        assert await call(client, "admin") == "admin done"
        me = await call(client, "whoami")
    # Our 403 insufficient_scope named the whole set; the client asked oidc-provider for it.
    assert log[:3] == ["POST /mcp 403", "POST /token 200", "POST /mcp 200"], log
    assert {"mcp:tools", "mcp:admin"} <= set(browser.authorizations[1]["scope"].split())
    assert_issued_by(setup, me, storage.tokens)
    assert me["subject"] == "bob" and me["client_id"] == "mcp-app"
    assert me["scopes"] == ["mcp:admin", "mcp:tools"]


async def test_a_registered_client_is_held_to_the_scope_it_registered_with(setup: Setup) -> None:
    # The SDK registers with the scope of the first challenge (RFC 7591 §2 "scope");
    # oidc-provider then refuses that client any further scope (invalid_scope), so the step-up
    # our 403 asks for ends at the provider. Clients registered ahead step up (test above).
    browser, storage, log = ProviderBrowser("carol"), Storage(), []
    with pytest.raises(ExceptionGroup) as raised:
        async with connect(
            setup.endpoint, code_provider(setup.endpoint, browser, storage), log
        ) as client:
            assert (await call(client, "whoami"))["scopes"] == ["mcp:tools"]
            log.clear()
            await call(client, "admin")
    assert raised.group_contains(AuthorizationRefused), raised.value
    assert log == ["POST /mcp 403"], log
    assert storage.client is not None and storage.client.scope is not None
    assert "mcp:admin" not in storage.client.scope.split()
    [refusal] = browser.refusals
    assert (refusal["error"], refusal["scope"]) == ("invalid_scope", "mcp:admin")
    assert refusal["iss"] == setup.provider.issuer


async def test_client_credentials_and_step_up(setup: Setup) -> None:
    storage, log = Storage(), []
    async with connect(setup.endpoint, credentials_provider(setup, storage), log) as client:
        me = await call(client, "whoami")
        first = log[:5]
        log.clear()
        assert await call(client, "admin") == "admin done"
        stepped_up = await call(client, "whoami")
    assert first == [
        "POST /mcp 401",
        "GET /.well-known/oauth-protected-resource/mcp 200",
        "GET /.well-known/oauth-authorization-server 200",
        "POST /token 200",
        "POST /mcp 200",
    ], first
    assert me["subject"] == me["client_id"] == "mcp-client" and me["scopes"] == ["mcp:tools"]
    # The tool's 403 names the whole scope set; the client asks for it at the token endpoint.
    assert log[:3] == ["POST /mcp 403", "POST /token 200", "POST /mcp 200"], log
    assert_issued_by(setup, stepped_up, storage.tokens)
    assert stepped_up["client_id"] == "mcp-client"
    assert stepped_up["scopes"] == ["mcp:admin", "mcp:tools"]


async def test_its_token_for_another_mcp_server_is_refused(setup: Setup) -> None:
    token = setup.provider.token("mcp-client", resource=setup.elsewhere, scope="mcp:tools")
    claims = jose_part(token, 1)
    assert (claims["iss"], claims["aud"]) == (setup.provider.issuer, setup.elsewhere)
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            setup.endpoint,
            json=INITIALIZE,
            headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
        )
        params = assert_refused(refused, 401, "invalid_token")
        assert params["error_description"] == "the token is not meant for this resource (aud)"
        # A challenge the client can act on: Bearer first, the endpoint's scope, and metadata
        # that leads to oidc-provider.
        assert refused.headers["www-authenticate"].startswith("Bearer ")
        assert params["scope"] == "mcp:tools"
        document = (await http.get(params["resource_metadata"])).json()
        assert document["resource"] == setup.endpoint
        assert document["authorization_servers"] == [setup.provider.issuer]
    # The SDK client holding that token acts on it: a token for this endpoint, then the call.
    storage, log = Storage(OAuthToken(access_token=token, expires_in=300)), []
    async with connect(setup.endpoint, credentials_provider(setup, storage), log) as client:
        me = await call(client, "whoami")
    assert log[:2] == ["POST /mcp 401", "GET /.well-known/oauth-protected-resource/mcp 200"]
    assert storage.tokens is not None and storage.tokens.access_token != token
    assert_issued_by(setup, me, storage.tokens)
