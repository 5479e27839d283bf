"""Every example the documentation includes from ``docs_src/`` runs.

The quickstarts are served with uvicorn on loopback, with a ``TestIssuer`` on loopback as
their authorization server (the example's ``https://as.example.com`` is replaced by its URL;
nothing else of the example changes), and asked over real HTTP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import assert_refused, free_port, serve
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from oauthguard.testing import TestIssuer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs_src"
AS_IN_EXAMPLES = "https://as.example.com"


def load(name: str, issuer: str = AS_IN_EXAMPLES) -> dict[str, Any]:
    """The example's module namespace, run with ``issuer`` as its authorization server."""
    path = EXAMPLES / name
    source = path.read_text(encoding="utf-8").replace(AS_IN_EXAMPLES, issuer)
    # A module in sys.modules, as an import makes it: frameworks resolve its annotations there.
    module = types.ModuleType(f"docs_src.{path.stem}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module.__dict__


@contextlib.contextmanager
def served(name: str, app_name: str = "app", **issuer_options: Any) -> Iterator[Any]:
    """The example's app on loopback, and its TestIssuer; yields (issuer, client)."""
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", **issuer_options)
    app = load(name, issuer.issuer)[app_name]
    with (
        serve(issuer.app, port=port),
        serve(app) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        yield issuer, client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_starlette_quickstart() -> None:
    with served("starlette_quickstart.py") as (issuer, client):
        resource = "https://api.example.com/orders"
        assert_refused(client.get("/orders"), 401, None)
        token = issuer.token(audience=resource, scope="orders:read")
        response = client.get("/orders", headers=bearer(token))
        assert response.status_code == 200 and response.json() == {"reader": "user-1"}
        other = issuer.token(audience=resource, scope="orders:write")
        assert_refused(client.get("/orders", headers=bearer(other)), 403, "insufficient_scope")
        foreign = issuer.token(audience="https://other.example.com", scope="orders:read")
        assert_refused(client.get("/orders", headers=bearer(foreign)), 401, "invalid_token")


def test_the_fastapi_quickstart() -> None:
    with served("fastapi_quickstart.py", app_name="api") as (issuer, client):
        resource = "https://api.example.com/orders"
        assert client.get("/docs").status_code == 200  # public
        schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
        flow = next(iter(schemes.values()))["flows"]["authorizationCode"]
        assert flow["authorizationUrl"].startswith(issuer.issuer)
        assert_refused(client.post("/orders"), 401, None)
        token = issuer.token(audience=resource, scope="orders:write")
        response = client.post("/orders", headers=bearer(token))
        assert response.status_code == 200 and response.json() == {"by": "user-1"}
        reader = issuer.token(audience=resource, scope="orders:read")
        assert_refused(client.post("/orders", headers=bearer(reader)), 403, "insufficient_scope")


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def rpc(method: str, params: dict[str, Any], call_id: int = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": call_id, "method": method, "params": params})


def test_the_mcp_quickstart() -> None:
    with served("mcp_quickstart.py") as (issuer, client):
        resource = "https://notes.example.com/mcp"
        initialize = rpc(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "docs", "version": "1"},
            },
        )
        unauthenticated = client.post("/mcp", content=initialize, headers=MCP_HEADERS)
        params = assert_refused(unauthenticated, 401, None)
        assert params == {
            "scope": "notes:read",
            "resource_metadata": "https://notes.example.com/.well-known/oauth-protected-resource/mcp",
        }
        reader = {**MCP_HEADERS, **bearer(issuer.token(audience=resource, scope="notes:read"))}
        assert client.post("/mcp", content=initialize, headers=reader).status_code == 200
        call = rpc("tools/call", {"name": "add_note", "arguments": {"text": "hi"}}, 2)
        refused = client.post("/mcp", content=call, headers=reader)
        assert assert_refused(refused, 403, "insufficient_scope")["scope"] == (
            "notes:read notes:write"
        )


def test_the_testing_example_passes() -> None:
    load("testing_your_app.py")["test_orders_need_a_valid_token"]()


def test_the_examples_built_at_import_answer_without_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DPOP_NONCE_SECRET", "a" * 32)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: no token
    monkeypatch.setenv("INTROSPECTION_SECRET", "s3cret")
    monkeypatch.setenv("INTROSPECTION_CACHE_SECRET", "b" * 32)
    for name, scheme in (("deploying_redis.py", "DPoP"), ("behind_a_proxy.py", "Bearer")):
        with served(name) as (_, client):
            assert_refused(client.get("/orders"), 401, None, scheme)
            if name == "deploying_redis.py":  # started: the issuer's keys are in hand
                assert client.get("/ready").json() == {"status": "ready"}


def test_the_logging_example_gives_the_guard_logger_a_handler() -> None:
    logger = logging.getLogger("oauthguard")
    handlers, level = list(logger.handlers), logger.level
    try:
        load("logging_setup.py")
        assert logger.level == logging.INFO and len(logger.handlers) == len(handlers) + 1
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_uvicorn_with_the_log_config_shows_why_a_token_was_refused() -> None:
    # A token that is no JWT is refused before anything is fetched from the issuer.
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES)]
    command += ["starlette_quickstart:app", "--port", str(port)]
    command += ["--log-config", str(EXAMPLES / "logging.yaml")]
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/orders", headers=bearer("not-a-jwt"), timeout=5
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "no uvicorn"
                time.sleep(0.005)
        assert_refused(response, 401, "invalid_token")
    finally:
        # Killed, not stopped: the log is written as each request is refused, and uvicorn's
        # own shutdown (~0.2 s) is not what this test is about.
        server.kill()
        _, log = server.communicate(timeout=10)
    assert "INFO oauthguard: refused GET '/orders': the token is not a JWT" in log
    assert "; see https://oauthguard.readthedocs.io/en/latest/troubleshooting/#invalid_token" in log


def test_the_policy_requirements_are_built() -> None:
    requirements = load("policy_requirements.py")
    assert "roles" in repr(requirements["CLERKS"]) and "clerk" in repr(requirements["CLERKS"])


def test_the_path_rules() -> None:
    with served("path_rules.py") as (issuer, client):
        resource = "https://api.example.com/orders"

        def token(scope: str) -> dict[str, str]:
            return bearer(issuer.token(audience=resource, scope=scope))

        assert client.get("/orders", headers=token("orders:read")).status_code == 200
        refused = client.post("/orders", headers=token("orders:read"))
        assert assert_refused(refused, 403, "insufficient_scope")["scope"] == "orders:write"
        assert client.post("/orders", headers=token("orders:write")).status_code == 200
        assert_refused(
            client.get("/admin/users", headers=token("orders:read")), 403, "insufficient_scope"
        )
        assert client.get("/admin/users", headers=token("admin")).status_code == 200


def test_the_step_up_example() -> None:
    with served("step_up.py") as (issuer, client):
        resource, now = "https://api.example.com/payments", time.time()
        weak = issuer.token(audience=resource, scope="payments:write", claims={"acr": "pwd"})
        params = assert_refused(
            client.post("/transfer", headers=bearer(weak)), 401, "insufficient_user_authentication"
        )
        assert params["acr_values"] == "urn:example:mfa" and params["max_age"] == "300"
        claims = {"acr": "urn:example:mfa", "auth_time": int(now) - 10}
        strong = issuer.token(audience=resource, scope="payments:write", claims=claims)
        assert client.post("/transfer", headers=bearer(strong)).status_code == 200


def test_the_dpop_settings_refuse_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPOP_NONCE_SECRET", "a" * 32)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # a Bearer token never reaches it
    with served("dpop_settings.py") as (issuer, client):
        token = issuer.token(audience="https://api.example.com/mcp")
        assert_refused(client.get("/mcp", headers=bearer(token)), 401, "invalid_token", "DPoP")


def test_the_dpop_proof_example_passes() -> None:
    load("dpop_proofs.py")["test_a_dpop_bound_token_with_its_proof"]()


def test_the_introspection_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTROSPECTION_SECRET", "s3cret-of-the-orders-api")
    with served("introspection_settings.py") as (issuer, client):
        issuer.register_client(client_id="orders-api", client_secret="s3cret-of-the-orders-api")
        opaque = issuer.opaque_token(audience="https://api.example.com/orders")
        response = client.get("/orders", headers=bearer(opaque))
        assert response.status_code == 200 and response.json() == {"subject": "user-1"}


def test_the_settings_overview_is_built() -> None:
    with served("settings_overview.py") as (_, client):
        assert client.get("/health").status_code == 404  # public, and no such route
        assert_refused(client.get("/admin"), 401, None)


@pytest.mark.anyio
async def test_the_resource_server_without_asgi() -> None:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}")
    who_sent = load("without_asgi.py", issuer.issuer)["who_sent"]
    token = issuer.token(audience="https://api.example.com/orders")
    with serve(issuer.app, port=port):
        found = await who_sent(
            "https://api.example.com/orders", {"Authorization": f"Bearer {token}"}
        )
    assert found.subject == "user-1"


def test_fastapi_security_scopes_and_router_dependencies() -> None:
    with served("fastapi_security_scopes.py", app_name="api") as (issuer, client):
        resource = "https://api.example.com/orders"

        def token(scope: str) -> dict[str, str]:
            return bearer(issuer.token(audience=resource, scope=scope))

        refused = client.get("/reports", headers=token("reports"))
        assert assert_refused(refused, 403, "insufficient_scope")["scope"] == "audit reports"
        assert client.get("/reports", headers=token("reports audit")).status_code == 200
        assert_refused(
            client.get("/v1/orders", headers=token("reports")), 403, "insufficient_scope"
        )
        assert client.get("/v1/orders", headers=token("v1")).status_code == 200


def test_the_mcp_layers() -> None:
    with served("mcp_layers.py") as (issuer, client):
        resource = "https://notes.example.com/mcp"
        initialize = rpc(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "d"}},
        )
        params = assert_refused(
            client.post("/mcp", content=initialize, headers=MCP_HEADERS), 401, None
        )
        assert params["scope"] == "notes:read"
        reader = {**MCP_HEADERS, **bearer(issuer.token(audience=resource, scope="notes:read"))}
        assert client.post("/mcp", content=initialize, headers=reader).status_code == 200
        call = rpc("tools/call", {"name": "add_note", "arguments": {"text": "hi"}}, 2)
        assert_refused(client.post("/mcp", content=call, headers=reader), 403, "insufficient_scope")


def test_the_starlette_endpoints() -> None:
    with served("starlette_endpoints.py") as (issuer, client):
        resource = "https://api.example.com/orders"

        def token(scope: str) -> dict[str, str]:
            return bearer(issuer.token(audience=resource, scope=scope))

        assert client.post("/orders/new", headers=token("orders:write")).status_code == 200
        assert_refused(
            client.post("/orders/new", headers=token("orders:read")), 403, "insufficient_scope"
        )
        assert client.get("/orders", headers=token("orders:read")).json() == {"reader": "user-1"}
        assert_refused(
            client.get("/admin", headers=token("orders:read")), 403, "insufficient_scope"
        )
        assert client.get("/admin", headers=token("admin")).status_code == 200
        url = str(client.base_url).replace("http://", "ws://") + "/chat"
        with connect(url, additional_headers=token("chat")) as chat:
            assert chat.recv() == "hello user-1"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=token("orders:read"))
        assert refused.value.response.status_code == 403


def test_the_litestar_app() -> None:
    # Litestar's app gives the root logger a queue handler at INFO when it starts; left on,
    # it would take every later test's records and write them out at the run's end, onto
    # pytest's closed capture ("--- Logging error ---", a thousand times over).
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        check_the_litestar_app()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def check_the_litestar_app() -> None:
    with served("litestar_app.py") as (issuer, client):
        resource = "https://api.example.com/orders"
        reader = bearer(issuer.token(audience=resource, scope="orders:read"))
        assert client.get("/orders", headers=reader).json() == {"by": "user-1"}
        other = bearer(issuer.token(audience=resource, scope="orders:write"))
        assert_refused(client.get("/orders", headers=other), 403, "insufficient_scope")


@pytest.mark.anyio
async def test_the_testing_issuer_example_passes() -> None:
    await load("testing_the_authorization_server.py")[
        "test_the_issuer_is_an_authorization_server_too"
    ]()


def test_several_resources() -> None:
    with served("several_resources.py") as (issuer, client):

        def token(audience: str) -> dict[str, str]:
            return bearer(issuer.token(audience=f"https://api.example.com/{audience}"))

        for path in ("mcp", "billing", "reports"):
            metadata = client.get(f"/.well-known/oauth-protected-resource/{path}").json()
            assert metadata["resource"] == f"https://api.example.com/{path}"
        assert client.get("/billing", headers=token("billing")).status_code == 200
        params = assert_refused(client.get("/billing", headers=token("mcp")), 401, "invalid_token")
        assert params["resource_metadata"].endswith("/oauth-protected-resource/billing")
        assert client.get("/stats", headers=token("reports")).status_code == 200
        assert_refused(client.get("/stats", headers=token("mcp")), 401, "invalid_token")
        assert client.get("/mcp", headers=token("mcp")).status_code == 200


def test_the_sdk_auth_with_our_verifier() -> None:
    with served("mcp_sdk_auth.py") as (issuer, client):
        initialize = rpc(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "d"}},
        )
        assert client.post("/mcp", content=initialize, headers=MCP_HEADERS).status_code == 401
        foreign = bearer(issuer.token(audience="https://other.example.com", scope="notes:read"))
        refused = client.post("/mcp", content=initialize, headers={**MCP_HEADERS, **foreign})
        assert refused.status_code == 401
        token = issuer.token(audience="https://notes.example.com/mcp", scope="notes:read")
        reader = {**MCP_HEADERS, **bearer(token)}
        assert client.post("/mcp", content=initialize, headers=reader).status_code == 200
