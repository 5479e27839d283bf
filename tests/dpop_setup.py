"""A DPoP-protected app driven in-process with an injected clock, for the DPoP tests."""

from __future__ import annotations

from typing import Any

import httpx
from guards import build_guard
from proofs import ClientKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/mcp"
URL = "https://api.test/mcp"


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def whoami(request: Request) -> Response:
    token = request.auth
    return JSONResponse(
        {"scheme": token.scheme, "jkt": token.jkt, "sub": token.subject},
        headers={"cache-control": "public, max-age=60"},
    )


def protected_app(issuer: TestIssuer, clock: Clock, **options: Any) -> Starlette:
    app = Starlette(
        routes=[Route("/mcp", whoami, methods=["GET", "POST"]), Route("/a/{rest:path}", whoami)]
    )
    options.setdefault("resource", RESOURCE)
    app.add_middleware(
        build_guard,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        clock=clock,
        **options,
    )
    return app


class Setup:
    """An issuer, a client key, a clock and a protected app with the given guard options."""

    def __init__(
        self, issuer: TestIssuer | None = None, clock: Clock | None = None, **options: Any
    ) -> None:
        self.clock = clock or Clock()
        self.issuer = issuer or TestIssuer(algorithms=("ES256",))
        self.key = ClientKey()
        self.app = protected_app(self.issuer, self.clock, **options)

    def client(
        self, base_url: str = "https://api.test", peer: tuple[str, int] = ("127.0.0.1", 50000)
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=peer), base_url=base_url
        )

    def token(self, bound: bool = True, **claims: Any) -> str:
        jkt = self.key.thumbprint if bound else None
        return self.issuer.token(
            audience=RESOURCE,
            scope="read",
            alg="ES256",
            now=self.clock.now,
            jkt=jkt,
            claims=claims or None,
        )

    def proof(self, token: str | None, method: str = "GET", url: str = URL, **options: Any) -> str:
        return self.key.proof(method, url, now=self.clock.now, token=token, **options)

    async def call(
        self,
        token: str,
        proof: str | list[str] | None,
        *,
        scheme: str = "DPoP",
        method: str = "GET",
        path: str = "/mcp",
        client: httpx.AsyncClient | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        sent = [("authorization", f"{scheme} {token}")]
        proofs = [proof] if isinstance(proof, str) else proof or []
        sent += [("dpop", value) for value in proofs]
        sent += headers or []
        if client is not None:
            return await client.request(method, path, headers=sent)
        async with self.client() as fresh:
            return await fresh.request(method, path, headers=sent)
