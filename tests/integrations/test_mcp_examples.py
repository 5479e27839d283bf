"""examples/mcp_server.py, starlette_app.py and fastapi_app.py, run as a newcomer runs them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp_support import Browser, call, code_provider, connect
from support import assert_refused

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running(name: str) -> Iterator[str]:
    """Start ``examples/<name>``; yields what it printed up to ``Ready.``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.strip() == "Ready.":
                break
        else:
            pytest.fail(f"{name} exited early: {process.stderr.read() if process.stderr else ''}")
        yield "".join(lines)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
        assert "Traceback" not in errors, errors
        assert process.returncode == 0, errors  # every server stopped, at once


@pytest.mark.anyio
async def test_mcp_server_example_logs_in_and_steps_up() -> None:
    with running("mcp_server.py") as out:
        endpoint = re.search(r"MCP endpoint \(protected\): +(\S+)", out)
        assert endpoint is not None, out
        url = endpoint.group(1)
        browser = Browser()
        async with connect(url, code_provider(url, browser)) as client:
            notes = await call(client, "list_notes")
            assert notes == ["oauthguard protects this server"]
            assert browser.authorizations[0]["scope"] == "notes:read"
            result = await client.call_tool("add_note", {"text": "hello"})
            assert not result.is_error
            assert browser.authorizations[1]["scope"].split() == ["notes:read", "notes:write"]
            assert "hello (by user-1)" in await call(client, "list_notes")


@pytest.mark.parametrize("name", ["starlette_app.py", "fastapi_app.py"])
def test_api_examples_refuse_then_serve(name: str) -> None:
    with running(name) as out:
        api = re.search(r"Protected API: +(\S+)", out)
        tokens = re.findall(r"Bearer (\S+)'", out)
        assert api is not None and len(tokens) == 2, out
        url, (read, write) = api.group(1), tokens
        with httpx.Client() as http:
            params = assert_refused(http.get(url), 401, None)
            assert params["resource_metadata"].endswith(
                "/.well-known/oauth-protected-resource/orders"
            )
            listed = http.get(url, headers={"Authorization": f"Bearer {read}"})
            assert listed.status_code == 200 and listed.json()["reader"] == "alice"
            refused = http.post(
                url,
                params={"item": "tea"},
                json={"item": "tea"},
                headers={"Authorization": f"Bearer {read}"},
            )
            params = assert_refused(refused, 403, "insufficient_scope")
            assert params["scope"] == "orders:write"
            added = http.post(
                url,
                params={"item": "tea"},
                json={"item": "tea"},
                headers={"Authorization": f"Bearer {write}"},
            )
            assert added.status_code == 201 and added.json()["item"] == "tea"
            if name == "fastapi_app.py":  # Swagger UI logs in at the example's issuer
                issuer = re.search(r"Authorization server \(TestIssuer\): +(\S+)", out)
                assert issuer is not None
                document = http.get(url.replace("/orders", "/openapi.json")).json()
                assert f'"{issuer.group(1)}/authorize"' in json.dumps(document)
                # ... and its page may exchange the code at the issuer's token endpoint.
                origin = url.removesuffix("/orders")
                preflight = http.options(
                    issuer.group(1) + "/token",
                    headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                )
                assert preflight.status_code == 204
                assert preflight.headers["access-control-allow-origin"] == origin


@pytest.mark.anyio
async def test_mcp_downstream_example_calls_the_api_with_an_exchanged_token() -> None:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    with running("mcp_downstream.py") as out:
        endpoint = re.search(r"MCP endpoint \(protected\): +(\S+)", out)
        api = re.search(r"Orders API \(downstream\): +(\S+)", out)
        token = re.search(r"valid 5 minutes\):\n +(\S+)", out)
        assert endpoint is not None and api is not None and token is not None, out
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(endpoint.group(1), http_client=http)) as client,
        ):
            result = await client.call_tool("my_orders", {})
    assert not result.is_error, result
    assert result.structured_content == {
        "orders": [{"id": "o-1", "owner": "alice"}],
        "seen_by_the_api": {"aud": [api.group(1)], "sub": "alice", "actor": "mcp-server"},
    }
