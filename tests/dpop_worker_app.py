"""The app each uvicorn worker process runs in the multi-worker DPoP replay test.

``create_app`` reads the issuer and the Redis URL from the environment.
"""

from __future__ import annotations

import os

from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauthguard.redis import RedisReplayStore


async def whoami(request: Request) -> Response:
    return JSONResponse({"pid": os.getpid(), "scheme": request.auth.scheme})


async def health(request: Request) -> Response:
    return JSONResponse({"pid": os.getpid()})


def create_app() -> Starlette:
    app = Starlette(routes=[Route("/mcp", whoami), Route("/health", health)])
    app.add_middleware(
        build_guard,
        resource="https://api.test/mcp",
        authorization_servers=[os.environ["DPOP_TEST_ISSUER"]],
        public_paths=["/health"],
        replay_store=RedisReplayStore.from_url(os.environ["DPOP_TEST_REDIS"]),
        trusted_proxies=["127.0.0.1"],
    )
    return app
