"""Startup and readiness: the warning of a one-process default, failing startup without
keys when asked (and uvicorn's default lifespan mode seeing it), the readiness check."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from apps import RESOURCE, Clock, bearer, client, guard
from guards import build_guard
from starlette.applications import Starlette
from support import free_port, serve

from oauthguard import (
    JWT,
    ConfigurationError,
    DPoP,
    MemoryReplayStore,
    ResourceServer,
    StartupError,
)
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio
ONE_PROCESS = "protects one process only"


def down() -> str:
    """An issuer URL on loopback where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def served_by_an_issuer(dpop: DPoP | str | None) -> ResourceServer:
    issuer = TestIssuer()
    return ResourceServer(
        resource=RESOURCE,
        authorization_servers=issuer.issuer,
        dpop=dpop,
        http_client=issuer.http_client(),
    )


# -- the unsafe default says so -------------------------------------------------------------
@pytest.mark.parametrize("dpop", [None, "allowed", "required"])
async def test_dpop_without_a_replay_store_warns_once_at_startup(
    dpop: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    server = served_by_an_issuer(dpop)
    with caplog.at_level(logging.WARNING, logger="oauthguard"):
        async with server:
            await server.warm()  # a second startup says nothing more
    warnings = [r for r in caplog.records if ONE_PROCESS in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "RedisReplayStore" in warnings[0].getMessage()


@pytest.mark.parametrize("explicit", ["memory store", "disabled"])
async def test_an_explicit_memory_store_or_no_dpop_says_nothing(
    explicit: str, caplog: pytest.LogCaptureFixture
) -> None:
    dpop = DPoP(replay_store=MemoryReplayStore()) if explicit == "memory store" else "disabled"
    server = served_by_an_issuer(dpop)
    with caplog.at_level(logging.WARNING, logger="oauthguard"):
        async with server:
            pass
    assert ONE_PROCESS not in caplog.text


# -- failing startup without keys ---------------------------------------------------------
async def test_startup_fails_when_asked_and_no_issuers_keys_come() -> None:
    server = ResourceServer(
        resource=RESOURCE,
        authorization_servers=[down(), down()],
        jwt=JWT(require_keys_at_startup=True),
        limits=None,
    )
    with pytest.raises(StartupError, match="no issuer's signing keys could be fetched"):
        async with server:
            raise AssertionError("unreachable")  # pragma: no cover
    assert server.http.is_closed  # the failed entry closed what it opened


async def test_by_default_startup_goes_on_without_keys() -> None:
    async with ResourceServer(resource=RESOURCE, authorization_servers=down()) as server:
        assert not await server.ready()


async def test_one_issuer_with_keys_is_enough_to_start() -> None:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}")
    with serve(issuer.app, port=port):
        server = ResourceServer(
            resource=RESOURCE,
            authorization_servers=[issuer.issuer, down()],
            jwt=JWT(require_keys_at_startup=True),
        )
        async with server:
            assert not await server.ready()  # keys in hand for one issuer of two


def test_the_option_is_a_boolean() -> None:
    with pytest.raises(ConfigurationError, match="require_keys_at_startup"):
        JWT(require_keys_at_startup="yes")  # type: ignore[arg-type]


async def run_uvicorn(app: object) -> uvicorn.Server:
    """uvicorn as ``uvicorn app:app`` runs it (``lifespan="auto"``), until it stops."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port()))
    with pytest.raises(SystemExit) as stopped, anyio.fail_after(20):  # serving: it never stops
        await server.serve()
    assert stopped.value.code == 3  # uvicorn's STARTUP_FAILURE
    return server


async def test_uvicorns_default_lifespan_mode_stops_on_the_failed_startup(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    app = build_guard(
        Starlette(),
        resource=RESOURCE,
        authorization_servers=[down()],
        require_keys_at_startup=True,
    )
    with caplog.at_level(logging.INFO):
        server = await run_uvicorn(app)
    assert not server.started
    assert "no issuer's signing keys could be fetched" in caplog.text
    assert "Application startup failed. Exiting." in capfd.readouterr().err  # uvicorn's log


async def test_uvicorns_default_lifespan_mode_serves_on_after_a_lifespan_that_raises() -> None:
    """Why the guard sends ``lifespan.startup.failed`` itself: an exception out of an app's
    lifespan is read by ``lifespan="auto"`` as lifespan being unsupported."""

    async def raising(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("no keys")

    with serve(raising) as url:  # started: it answers, though its startup raised
        assert httpx.get(url).status_code == 500


# -- readiness ----------------------------------------------------------------------------
def test_readiness_answers_200_with_keys_and_no_configuration() -> None:
    issuer = TestIssuer()
    app = guard(issuer, readiness_path="/ready", public_paths=[])
    with client(app) as api:
        ready = api.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}
        assert ready.headers["cache-control"] == "no-store"
        assert api.head("/ready").content == b""
        assert api.post("/ready").status_code == 405
        assert api.get("/mcp").status_code == 401  # only that path needs no token
        token = issuer.token(audience=RESOURCE)
        assert api.get("/mcp", headers=bearer(token)).status_code == 200


def test_readiness_answers_503_until_the_keys_come() -> None:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}")
    clock = Clock()
    app = build_guard(
        Starlette(),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        readiness_path="/ready",
        clock=clock,
    )
    with client(app) as api:
        unready = api.get("/ready")
        assert unready.status_code == 503
        assert unready.json() == {"status": "unavailable"}  # no issuer, no URL, no reason
        assert int(unready.headers["retry-after"]) > 0
        with serve(issuer.app, port=port):
            assert api.get("/ready").status_code == 503  # the issuer is asked once per cooldown
            clock.advance(31)
            assert api.get("/ready").status_code == 200  # no request came: the check fetched


@pytest.mark.parametrize(
    "path", ["ready", "/a/../ready", "/.well-known/oauth-protected-resource/mcp"]
)
def test_the_readiness_path_is_a_normal_path_of_its_own(path: str) -> None:
    issuer = TestIssuer()
    with pytest.raises(ConfigurationError, match="readiness_path"):
        guard(issuer, readiness_path=path)


async def test_ready_without_asgi_and_with_a_verifier_of_ones_own() -> None:
    issuer = TestIssuer()
    async with ResourceServer(
        resource=RESOURCE, authorization_servers=issuer.issuer, http_client=issuer.http_client()
    ) as server:
        assert await server.ready()

    class Refusing:
        async def verify(self, token: str) -> object:
            raise AssertionError("unused")  # pragma: no cover

    custom = ResourceServer(resource=RESOURCE, authorization_servers=down(), verifier=Refusing())
    assert await custom.ready()  # nothing of ours to wait for


class FailingJWKS:
    """The issuer, whose JWKS answers 503 once ``failing`` is set; its fetches counted."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer, self.failing, self.fetches = issuer, False, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/jwks":
            self.fetches += 1
            if self.failing:
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.issuer.app(scope, receive, send)


async def test_readiness_asks_an_issuer_whose_keys_aged_out_once_per_cooldown() -> None:
    # An orchestrator (or anyone) calling the readiness path while the issuer is down must
    # not turn each call into a fetch of its keys, however old the last good ones are.
    issuer, clock = TestIssuer("https://issuer.test"), Clock()
    jwks = FailingJWKS(issuer)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=jwks))
    jwt = JWT(keys_ttl=600, keys_refresh_cooldown=30, keys_max_stale=3600)
    async with ResourceServer(
        resource=RESOURCE, authorization_servers=issuer.issuer, jwt=jwt, http_client=http,
        clock=clock,
    ) as server:  # fmt: skip
        assert await server.ready() and jwks.fetches == 1
        jwks.failing = True
        clock.advance(600 + 3600)  # past keys_ttl and keys_max_stale: no keys to use
        assert not await server.ready()
        assert jwks.fetches == 2
        for _ in range(5):
            assert not await server.ready()
        assert jwks.fetches == 2  # within the cooldown: not asked again
        clock.advance(30)
        assert not await server.ready()
        assert jwks.fetches == 3
        jwks.failing = False
        clock.advance(30)
        assert await server.ready() and jwks.fetches == 4
    await http.aclose()


async def test_readiness_is_served_behind_a_root_path_as_the_app_routes_it() -> None:
    # uvicorn --root-path /api: the path holds the root path, the app routes without it
    issuer = TestIssuer()
    app = guard(issuer, readiness_path="/ready", public_paths=[])
    transport = httpx.ASGITransport(app=app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as api:
        ready = await api.get("/api/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}
        assert (await api.get("/api/mcp")).status_code == 401  # still only that path
        assert (await api.get("/api/readyz")).status_code == 401
