"""A FastAPI API protected by oauthguard.

Run the demo:  python examples/fastapi_app.py   (a local TestIssuer; prints curl commands)
In production: OAUTHGUARD_RESOURCE=https://api.example.com/orders \\
               OAUTHGUARD_ISSUER=https://as.example.com uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from oauthguard import AccessToken, OAuthGuard


def scopes(*needed: str) -> Any:
    """A dependency: the validated token, which must carry ``needed``."""
    def check(request: Request) -> AccessToken:
        token: AccessToken = request.auth
        if not token.has_scopes(*needed):
            raise HTTPException(403, f"needs scopes {' '.join(needed)}")
        return token
    return Depends(check)


def build(resource: str, issuer: str) -> FastAPI:
    api = FastAPI(title="Orders")
    orders: list[dict[str, Any]] = [{"id": 1, "item": "coffee"}]

    @api.get("/orders")
    async def list_orders(token: Annotated[AccessToken, scopes("orders:read")]) -> Any:
        return {"orders": orders, "reader": token.subject}

    @api.post("/orders", status_code=201)
    async def add_order(item: str, token: Annotated[AccessToken, scopes("orders:write")]) -> Any:
        orders.append({"id": len(orders) + 1, "item": item, "by": token.subject})
        return orders[-1]

    api.add_middleware(OAuthGuard, resource=resource, authorization_servers=[issuer],
                       public_paths=["/docs", "/openapi.json"],
                       scopes_supported=["orders:read", "orders:write"])
    return api


app = build(os.environ.get("OAUTHGUARD_RESOURCE", "http://127.0.0.1:8000/orders"),
            os.environ.get("OAUTHGUARD_ISSUER", "http://127.0.0.1:9000"))


def demo() -> None:
    from _demo import curl_lines, free_port, serve

    from oauthguard.testing import TestIssuer

    port, issuer_port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}")
    resource = f"http://127.0.0.1:{port}/orders"

    def ready() -> str:
        calls = curl_lines(issuer, resource, resource, ["orders:read", "orders:write"])
        return (f"Authorization server (TestIssuer): {issuer.issuer}\n"
                f"Protected API:                    {resource}\n\n{calls}\nReady.")

    asyncio.run(serve([(issuer.app, issuer_port), (build(resource, issuer.issuer), port)],
                      ready))


if __name__ == "__main__":
    try:
        demo()
    except KeyboardInterrupt:
        pass
