"""A Starlette API protected by oauthguard.

Run the demo:  python examples/starlette_app.py   (a local TestIssuer; prints curl commands)
In production: OAUTHGUARD_RESOURCE=https://api.example.com/orders \\
               OAUTHGUARD_ISSUER=https://as.example.com uvicorn examples.starlette_app:app
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import Metadata, OAuthGuard, require

ORDERS = [{"id": 1, "item": "coffee"}]


@require("orders:read")  # refusals are the guard's: 403 insufficient_scope with the challenge
async def list_orders(request: Request) -> JSONResponse:
    return JSONResponse({"orders": ORDERS, "reader": request.auth.subject})


@require("orders:write")
async def add_order(request: Request) -> JSONResponse:
    order = {"id": len(ORDERS) + 1, "item": (await request.json()).get("item", "?")}
    ORDERS.append(order)
    return JSONResponse(order, status_code=201)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def build(resource: str, issuer: str) -> Starlette:
    """The app, behind the guard: every path needs a token except /health."""
    app = Starlette(
        routes=[
            Route("/orders", list_orders, methods=["GET"]),
            Route("/orders", add_order, methods=["POST"]),
            Route("/health", health),
        ]
    )
    app.add_middleware(
        OAuthGuard,
        resource=resource,
        authorization_servers=[issuer],
        public_paths=["/health"],
        metadata=Metadata(scopes_supported=("orders:read", "orders:write")),
    )
    return app


app = build(
    os.environ.get("OAUTHGUARD_RESOURCE", "http://127.0.0.1:8000/orders"),
    os.environ.get("OAUTHGUARD_ISSUER", "http://127.0.0.1:9000"),
)


def demo() -> None:
    from _demo import run_demo

    run_demo(build, "/orders", ["orders:read", "orders:write"])


if __name__ == "__main__":
    demo()
