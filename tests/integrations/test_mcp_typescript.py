"""The MCP TypeScript SDK's client (``@modelcontextprotocol/sdk``) logs in to an MCP server
protected by oauthguard and steps up for a tool's scope, over loopback HTTP.

The client script is tests/mcp_ts/client.mjs; its locked packages are installed with
``npm ci`` when missing (``.ci/run`` does it up front).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_support import Servers, mcp_servers
from support import npm_installed

pytestmark = pytest.mark.node

CLIENT = Path(__file__).resolve().parents[1] / "mcp_ts"


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with mcp_servers() as running:
        yield running


def run_client(url: str, *tools: str) -> dict[str, object]:
    npm_installed(CLIENT, "@modelcontextprotocol/sdk")
    result = subprocess.run(
        ["node", str(CLIENT / "client.mjs"), url, *tools],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_typescript_client_logs_in_and_steps_up(servers: Servers) -> None:
    answer = run_client(servers.guarded, "whoami", "admin")
    statuses = answer["statuses"]
    assert isinstance(statuses, list)
    assert statuses[:4] == [
        "POST /mcp 401",
        "GET /.well-known/oauth-protected-resource/mcp 200",
        "GET /.well-known/oauth-authorization-server 200",
        "POST /register 201",
    ], statuses
    assert "POST /mcp 403" in statuses and statuses[-1] == "POST /mcp 200"
    first, second = answer["authorizations"]  # type: ignore[misc]
    # The client read scope from our 401 and then the 403 (it reads challenge parameters
    # only from a value that starts with "Bearer ").
    assert first["scope"] == "mcp:tools" and first["resource"] == servers.guarded
    assert second["scope"] == "mcp:tools mcp:admin"
    results = answer["results"]
    assert isinstance(results, dict)
    me = json.loads(results["whoami"])
    assert me["subject"] == "user-1" and me["scopes"] == ["mcp:tools"]
    assert me["client_id"] == first["client_id"] and me["resource"] == servers.guarded
    assert results["admin"] == "admin done"
