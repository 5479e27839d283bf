"""The tests of ``oauthguard.providers``: a provider stand-in and a guarded app, both on
uvicorn over loopback, the guard configured with only the preset under test."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import assert_refused, free_port, serve

from oauthguard import Issuer, OAuthGuard, require
from oauthguard.testing import Profile, TestIssuer

RESOURCE = "https://api.example.com"


async def whoami(request: Request) -> Response:
    """What the app sees of the token: its client, scopes and roles."""
    token = request.auth
    return JSONResponse(
        {
            "subject": token.subject,
            "client_id": token.client_id,
            "issuer": token.issuer,
            "scopes": sorted(token.scopes),
            "roles": sorted(token.roles),
        }
    )


@require("orders:read")
async def orders(request: Request) -> Response:
    return JSONResponse({"orders": []})


@dataclass
class Stack:
    """A provider stand-in and an app guarded by its preset, both listening on loopback."""

    issuer: TestIssuer
    preset: Issuer | tuple[Issuer, ...]
    api: str  # the guarded app's base URL

    def get(self, path: str, token: str | None) -> httpx.Response:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        return httpx.get(self.api + path, headers=headers, timeout=10)


@contextlib.contextmanager
def provider_stack(
    profile: str | Profile,
    preset: Callable[[str], Issuer | tuple[Issuer, ...]],
    *,
    resource: str = RESOURCE,
    issuer_base: str | None = None,
) -> Iterator[Stack]:
    """``profile``'s stand-in on a free port, and an app guarded by ``preset(base)`` (the
    preset built with the stand-in's base URL in place of the provider's)."""
    port = free_port()
    base = issuer_base or f"http://127.0.0.1:{port}"
    issuer = TestIssuer(base, profile=profile, algorithms=("RS256",))
    configured = preset(f"http://127.0.0.1:{port}" if issuer_base is None else base)
    servers = list(configured) if isinstance(configured, tuple) else [configured]
    app = Starlette(routes=[Route("/me", whoami), Route("/orders", orders)])
    guarded = OAuthGuard(app, resource=resource, authorization_servers=servers)
    with serve(issuer.app, port=port), serve(guarded) as api:
        yield Stack(issuer, configured, api)


def refusal_logs(records: list[logging.LogRecord]) -> str:
    """The guard's log lines, joined: where a refusal's diagnostics and fix appear."""
    return "\n".join(r.getMessage() for r in records if r.name.startswith("oauthguard"))


def description(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body.get("error_description", ""))


def refused(response: httpx.Response) -> str:
    """The description of a 401 ``invalid_token`` refusal (checked as every refusal is)."""
    assert_refused(response, 401, "invalid_token")
    return description(response)
