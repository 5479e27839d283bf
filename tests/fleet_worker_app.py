"""The app each uvicorn worker runs in the many-workers tests (``uvicorn --workers N``).

``create_app`` reads its settings from the environment: ``FLEET_ISSUER`` (the issuer's URL),
``FLEET_MODE`` (``introspection``: opaque tokens introspected, answers shared through
``FLEET_REDIS``; ``dpop``: DPoP-bound JWTs, proofs recorded in ``FLEET_REDIS``, or in this
process's memory without it). Every response says which worker made it (``x-worker-pid``),
refusals included.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauthguard import DPoP, Introspection, OAuthGuard, ResourceServer
from oauthguard.redis import RedisIntrospectionCache, RedisReplayStore

RESOURCE = "https://api.test/mcp"
CLIENT_ID, CLIENT_SECRET = "fleet-resource-server", "fleet-secret"
CACHE_SECRET = "the fleet's shared cache secret"


async def whoami(request: Request) -> Response:
    return JSONResponse({"pid": os.getpid(), "sub": request.auth.subject})


class WorkerPid:
    """Puts this process's pid on every response."""

    def __init__(self, app: OAuthGuard) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        async def send_with_pid(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-worker-pid", self.pid)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_pid)


def server() -> ResourceServer:
    issuer, redis_url = os.environ["FLEET_ISSUER"], os.environ.get("FLEET_REDIS")
    if os.environ["FLEET_MODE"] == "introspection":
        shared = (
            RedisIntrospectionCache.from_url(redis_url, secret=CACHE_SECRET) if redis_url else None
        )
        introspection = Introspection(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_format="opaque",
            shared_cache=shared,
        )
        return ResourceServer(
            resource=RESOURCE, authorization_servers=issuer, introspection=introspection
        )
    store = RedisReplayStore.from_url(redis_url) if redis_url else None
    dpop = DPoP(mode="required", public_origin="https://api.test", replay_store=store)
    return ResourceServer(resource=RESOURCE, authorization_servers=issuer, dpop=dpop)


def create_app() -> WorkerPid:
    return WorkerPid(OAuthGuard(Starlette(routes=[Route("/mcp", whoami)]), server()))
