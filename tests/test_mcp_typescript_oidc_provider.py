"""The MCP TypeScript SDK's client (``@modelcontextprotocol/sdk``, tests/mcp_ts) against an MCP
server protected by oauthguard whose authorization server is panva's ``oidc-provider``
(tests/interop/provider.mjs), over loopback HTTP: as a machine client
(tests/mcp_ts/client_credentials.mjs) with the client credentials grant, the tools see the
RFC 9068 JWT access tokens oidc-provider issued for the MCP endpoint.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.shared.auth import OAuthToken
from support import npm_installed

from tests.mcp_oidc_provider import Setup, assert_issued_by, guarded_by_provider

MCP_TS = Path(__file__).resolve().parent / "mcp_ts"  # the TypeScript SDK's client scripts


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with guarded_by_provider() as running:
        yield running


def test_typescript_client_credentials(setup: Setup) -> None:
    """The TypeScript SDK's client (tests/mcp_ts) as a machine client of oidc-provider."""
    npm_installed(MCP_TS, "@modelcontextprotocol/sdk")
    completed = subprocess.run(
        ["node", "client_credentials.mjs", setup.endpoint, setup.provider.issuer, "mcp-client",
         "mcp-client-secret", "mcp:tools mcp:admin", "whoami", "admin"],
        cwd=MCP_TS, capture_output=True, text=True, timeout=60, check=False)
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
