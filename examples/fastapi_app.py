"""A FastAPI API protected by oauthguard.

Run the demo:  python examples/fastapi_app.py   (a local TestIssuer; prints curl commands
               and the Swagger UI page, whose Authorize button logs in at the TestIssuer)
In production: OAUTHGUARD_RESOURCE=https://api.example.com/orders \\
               OAUTHGUARD_ISSUER=https://as.example.com uvicorn examples.fastapi_app:app
Without internet: SWAGGER_UI_DIST=path/to/node_modules/swagger-ui-dist serves Swagger UI's
               files from there instead of a CDN.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from oauthguard import AccessToken, Metadata, OAuthGuard, require
from oauthguard.fastapi import describe_security

# The dependency returns the validated token; a refusal is the guard's 401/403 challenge.
Reader = Annotated[AccessToken, Depends(require("orders:read"))]
Writer = Annotated[AccessToken, Depends(require("orders:write"))]
DOCS_CLIENT = "swagger-ui"  # a public client registered at the authorization server


def build(resource: str, issuer: str) -> FastAPI:
    assets = os.environ.get("SWAGGER_UI_DIST")
    api = FastAPI(title="Orders", docs_url=None if assets else "/docs")
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
        public_paths=["/docs", "/docs/*", "/openapi.json"],
        metadata=Metadata(scopes_supported=("orders:read", "orders:write")),
    )
    # Swagger UI's Authorize button: the authorization code flow from the issuer's metadata,
    # asking for a token for this API (RFC 8707 resource; Auth0 reads audience instead).
    describe_security(
        api, client_id=DOCS_CLIENT, resource=resource, authorization_params={"audience": resource}
    )
    if assets:
        self_hosted_swagger_ui(api, assets)
    return api


def self_hosted_swagger_ui(api: FastAPI, assets: str) -> None:
    """Serve /docs with Swagger UI's files from ``assets`` (FastAPI's way to self-host them)."""
    api.mount("/docs/assets", StaticFiles(directory=assets), name="swagger-ui")

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Orders - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            init_oauth=api.swagger_ui_init_oauth,  # what describe_security set
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @api.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


app = build(
    os.environ.get("OAUTHGUARD_RESOURCE", "http://127.0.0.1:8000/orders"),
    os.environ.get("OAUTHGUARD_ISSUER", "http://127.0.0.1:9000"),
)


def demo() -> None:
    from _demo import run_demo

    from oauthguard.testing import TestIssuer

    def swagger_client(issuer: TestIssuer, port: int) -> str:
        # A public PKCE client for Swagger UI, its origin allowed to call /token (CORS).
        issuer.register_swagger_client(f"http://127.0.0.1:{port}", client_id=DOCS_CLIENT)
        return f"Swagger UI (Authorize logs in):   http://127.0.0.1:{port}/docs\n"

    run_demo(build, "/orders", ["orders:read", "orders:write"], swagger_client)


if __name__ == "__main__":
    demo()
