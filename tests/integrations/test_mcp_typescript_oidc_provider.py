"""The MCP TypeScript SDK's client (``@modelcontextprotocol/sdk``, tests/mcp_ts) against an MCP
server protected by oauthguard whose authorization server is panva's ``oidc-provider``
(tests/interop/provider.mjs), over loopback HTTP.

With the authorization code grant (tests/mcp_ts/authorization_code.mjs) the client discovers
oidc-provider through our RFC 9728 metadata, registers with it (RFC 7591) and sends the user to
it with PKCE; ``ProviderBrowser`` is that user, over the script's stdio: it signs in and
consents on oidc-provider's development pages and hands back the redirect. As a machine client
(tests/mcp_ts/client_credentials.mjs) it uses the client credentials grant. Either way the tools
see the RFC 9068 JWT access tokens oidc-provider issued for the MCP endpoint.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.shared.auth import OAuthToken
from mcp_oidc_provider import ProviderBrowser, Setup, assert_issued_by, guarded_by_provider
from support import npm_installed

pytestmark = [pytest.mark.anyio, pytest.mark.node]

MCP_TS = Path(__file__).resolve().parents[1] / "mcp_ts"  # the TypeScript SDK's client scripts


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with guarded_by_provider() as running:
        yield running


async def typescript_code_flow(
    setup: Setup, browser: ProviderBrowser, *args: str
) -> dict[str, Any]:
    """tests/mcp_ts/authorization_code.mjs (the TypeScript SDK's client) with ``args`` after
    the endpoint and the issuer; ``browser`` is its user agent. What it printed at the end."""
    npm_installed(MCP_TS, "@modelcontextprotocol/sdk")
    command = ["node", "authorization_code.mjs", setup.endpoint, setup.provider.issuer, *args]
    answer: dict[str, Any] = {}
    with tempfile.TemporaryFile() as stderr, anyio.fail_after(60):
        async with await anyio.open_process(command, cwd=MCP_TS, stderr=stderr) as node:
            assert node.stdin is not None and node.stdout is not None
            stdout = BufferedByteReceiveStream(node.stdout)
            while not answer:
                try:
                    line = json.loads(await stdout.receive_until(b"\n", 1 << 20))
                except anyio.IncompleteRead:  # it ended without its answer
                    break
                if "authorize" in line:
                    landed = await browser.follow(line["authorize"])
                    await node.stdin.send(landed.encode() + b"\n")
                else:
                    answer = line
        stderr.seek(0)
        assert node.returncode == 0 and answer, stderr.read().decode(errors="replace")
    return answer


async def test_typescript_authorization_code_with_registration_login_and_consent(
    setup: Setup,
) -> None:
    browser = ProviderBrowser("dave")
    answer = await typescript_code_flow(setup, browser, "whoami")
    assert answer["statuses"][:6] == [
        "POST /mcp 401",
        "GET /.well-known/oauth-protected-resource/mcp 200",  # names oidc-provider
        "GET /.well-known/oauth-authorization-server 200",  # oidc-provider's metadata
        "POST /reg 201",  # RFC 7591 at its registration endpoint
        "POST /token 200",  # the code and the PKCE verifier
        "POST /mcp 200",
    ], answer["statuses"]
    assert browser.pages == ["login", "consent"]
    [asked] = browser.authorizations
    assert asked == answer["authorizations"][0]
    # The scope of our 401 and the resource of our metadata, for a public PKCE client.
    assert (asked["scope"], asked["resource"]) == ("mcp:tools", setup.endpoint)
    assert asked["code_challenge_method"] == "S256"
    client = answer["client"]
    assert asked["client_id"] == client["client_id"] and "client_secret" not in client
    assert (client["token_endpoint_auth_method"], client["scope"]) == ("none", "mcp:tools")
    [whoami] = answer["results"]
    me = json.loads(whoami)
    assert_issued_by(setup, me, OAuthToken.model_validate(answer["tokens"]))
    assert me["subject"] == "dave" and me["client_id"] == client["client_id"]
    assert me["scopes"] == ["mcp:tools"]


async def test_typescript_step_up_to_a_tool_scope_at_the_provider(setup: Setup) -> None:
    browser = ProviderBrowser("erin")  # with the client registered ahead (mcp-app)
    answer = await typescript_code_flow(
        setup, browser, "--client", "mcp-app:mcp-app-secret", "whoami", "admin", "whoami"
    )
    statuses = answer["statuses"]
    assert "POST /reg 201" not in statuses
    # Our 403 insufficient_scope named the whole set; the client went back to oidc-provider.
    stepped = statuses.index("POST /mcp 403")
    assert statuses[stepped : stepped + 3] == [
        "POST /mcp 403",
        "POST /token 200",
        "POST /mcp 200",
    ], statuses
    first, second = browser.authorizations
    assert first["scope"] == "mcp:tools" and second["scope"] == "mcp:tools mcp:admin"
    assert first["client_id"] == second["client_id"] == "mcp-app"
    assert browser.pages == ["login", "consent"] * 2
    before, admin, after = answer["results"]
    assert json.loads(before)["scopes"] == ["mcp:tools"] and admin == "admin done"
    me = json.loads(after)
    assert_issued_by(setup, me, OAuthToken.model_validate(answer["tokens"]))
    assert me["subject"] == "erin" and me["client_id"] == "mcp-app"
    assert me["scopes"] == ["mcp:admin", "mcp:tools"]


async def test_typescript_registered_client_is_held_to_the_scope_it_registered_with(
    setup: Setup,
) -> None:
    # Like the Python SDK, this SDK registers with the scope of the first challenge (and asks
    # for that same scope); oidc-provider then refuses that client the step-up scope.
    browser = ProviderBrowser("frank")
    answer = await typescript_code_flow(setup, browser, "whoami", "admin")
    assert answer["client"]["scope"] == "mcp:tools"
    whoami, admin = answer["results"]
    assert json.loads(whoami)["scopes"] == ["mcp:tools"]
    assert "authorization refused: invalid_scope" in admin["error"], admin
    assert answer["statuses"][-1] == "POST /mcp 403", answer["statuses"]
    assert browser.authorizations[1]["scope"] == "mcp:tools mcp:admin"
    [refusal] = browser.refusals
    assert (refusal["error"], refusal["scope"]) == ("invalid_scope", "mcp:admin")
    assert refusal["iss"] == setup.provider.issuer


async def test_typescript_client_gets_no_refresh_token_from_the_provider(setup: Setup) -> None:
    # Registered for the refresh_token grant, the client still asks for exactly the scope of
    # our 401; oidc-provider issues refresh tokens only for offline_access, which this SDK
    # (unlike the Python one) does not add, so its user signs in again when the token expires.
    browser = ProviderBrowser("grace")
    answer = await typescript_code_flow(setup, browser, "--refresh-token", "whoami")
    assert answer["client"]["grant_types"] == ["authorization_code", "refresh_token"]
    [asked] = browser.authorizations
    assert asked["scope"] == "mcp:tools"
    assert "refresh_token" not in answer["tokens"] and answer["tokens"]["scope"] == "mcp:tools"
    [whoami] = answer["results"]
    assert_issued_by(setup, json.loads(whoami), OAuthToken.model_validate(answer["tokens"]))


async def test_typescript_client_holding_a_token_for_another_mcp_server_logs_in(
    setup: Setup,
) -> None:
    # oidc-provider's token for another MCP server: our 401 invalid_token (aud) leads the client
    # through our metadata to oidc-provider for a token for this endpoint.
    elsewhere = setup.provider.token("mcp-client", resource=setup.elsewhere, scope="mcp:tools")
    browser = ProviderBrowser("heidi")
    answer = await typescript_code_flow(setup, browser, "--token", elsewhere, "whoami")
    assert answer["statuses"][:6] == [
        "POST /mcp 401",
        "GET /.well-known/oauth-protected-resource/mcp 200",
        "GET /.well-known/oauth-authorization-server 200",
        "POST /reg 201",
        "POST /token 200",
        "POST /mcp 200",
    ], answer["statuses"]
    [asked] = browser.authorizations
    assert (asked["scope"], asked["resource"]) == ("mcp:tools", setup.endpoint)
    assert answer["tokens"]["access_token"] != elsewhere
    [whoami] = answer["results"]
    me = json.loads(whoami)
    assert_issued_by(setup, me, OAuthToken.model_validate(answer["tokens"]))
    assert me["subject"] == "heidi"


def test_typescript_client_credentials(setup: Setup) -> None:
    """The TypeScript SDK's client (tests/mcp_ts) as a machine client of oidc-provider."""
    npm_installed(MCP_TS, "@modelcontextprotocol/sdk")
    completed = subprocess.run(
        [
            "node",
            "client_credentials.mjs",
            setup.endpoint,
            setup.provider.issuer,
            "mcp-client",
            "mcp-client-secret",
            "mcp:tools mcp:admin",
            "whoami",
            "admin",
        ],
        cwd=MCP_TS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["statuses"][:5] == [
        "POST /mcp 401",
        "GET /.well-known/oauth-protected-resource/mcp 200",
        "GET /.well-known/oauth-authorization-server 200",
        "POST /token 200",
        "POST /mcp 200",
    ], answer["statuses"]
    me = json.loads(answer["results"]["whoami"])
    assert_issued_by(setup, me, OAuthToken(access_token=answer["token"]))
    assert me["subject"] == me["client_id"] == "mcp-client"
    assert me["scopes"] == ["mcp:admin", "mcp:tools"]
    assert answer["results"]["admin"] == "admin done"
