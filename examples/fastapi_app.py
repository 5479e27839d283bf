"""A FastAPI API protected by oauthguard.

Run the demo:  python examples/fastapi_app.py   (a local TestIssuer; prints curl commands)
In production: OAUTHGUARD_RESOURCE=https://api.example.com/orders \\
               OAUTHGUARD_ISSUER=https://as.example.com uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from oauthguard import AccessToken, Metadata, OAuthGuard, require
from oauthguard.fastapi import describe_security

# The dependency returns the validated token; a refusal is the guard's 401/403 challenge.
Reader = Annotated[AccessToken, Depends(require("orders:read"))]
Writer = Annotated[AccessToken, Depends(require("orders:write"))]
DOCS_CLIENT = "swagger-ui"  # a public client registered at the authorization server


def build(resource: str, issuer: str) -> FastAPI:
    api = FastAPI(title="Orders")
    orders: list[dict[str, Any]] = [{"id": 1, "item": "coffee"}]

    @api.get("/orders")
    async def list_orders(token: Reader) -> Any:
        return {"orders": orders, "reader": token.subject}

    @api.post("/orders", status_code=201)
    async def add_order(item: str, token: Writer) -> Any:
        orders.append({"id": len(orders) + 1, "item": item, "by": token.subject})
        return orders[-1]

    api.add_middleware(
        OAuthGuard,
        resource=resource,
        authorization_servers=[issuer],
        public_paths=["/docs*", "/openapi.json"],
        metadata=Metadata(scopes_supported=("orders:read", "orders:write")),
    )
    # Swagger UI's Authorize button: the authorization code flow from the issuer's metadata.
    describe_security(api, client_id=DOCS_CLIENT, resource=resource)
    return api


app = build(
    os.environ.get("OAUTHGUARD_RESOURCE", "http://127.0.0.1:8000/orders"),
    os.environ.get("OAUTHGUARD_ISSUER", "http://127.0.0.1:9000"),
)


def demo() -> None:
    from _demo import run_demo

    from oauthguard.testing import TestIssuer

    def swagger_client(issuer: TestIssuer, port: int) -> str:
        issuer.register_client(
            client_id=DOCS_CLIENT,
            auth_method="none",
            redirect_uris=[f"http://127.0.0.1:{port}/docs/oauth2-redirect"],
        )
        return f"Swagger UI (Authorize logs in):   http://127.0.0.1:{port}/docs\n"

    run_demo(build, "/orders", ["orders:read", "orders:write"], swagger_client)


if __name__ == "__main__":
    demo()
