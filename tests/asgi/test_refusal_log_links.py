"""Each refusal's log line ends with the troubleshooting section that explains it."""

from __future__ import annotations

import logging

import pytest
from apps import RESOURCE, bearer, client
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from oauthguard import InsufficientScope, InvalidRequest, InvalidToken, MissingCredentials, require
from oauthguard.testing import TestIssuer


@require("orders:write")
async def write(request: Request) -> PlainTextResponse:
    return PlainTextResponse("written")


def test_refusals_by_the_guard_and_by_require_name_their_docs_section(
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer = TestIssuer("https://issuer.test")
    app = build_guard(
        Starlette(routes=[Route("/orders", write)]),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    narrow = issuer.token(audience=RESOURCE, scope="orders:read")
    expired = issuer.token(audience=RESOURCE, expires_in=-60)
    with caplog.at_level(logging.INFO, logger="oauthguard"), client(app) as api:
        api.get("/orders")  # no token
        api.get("/orders", headers=bearer(expired))  # the guard's own check of the token
        api.get("/a//b")  # a path not in normal form
        api.get("/orders", headers=bearer(narrow))  # require(...) inside the app
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]
    assert len(lines) == 4
    assert lines[0].endswith(f"no credentials; see {MissingCredentials.docs}")
    assert "the token has expired" in lines[1]
    assert lines[1].endswith(f"; see {InvalidToken.docs}")
    assert lines[2].endswith(f"; see {InvalidRequest.docs}")
    assert lines[3].endswith(f"; see {InsufficientScope.docs}")
    assert InsufficientScope.docs.endswith("/troubleshooting/#insufficient_scope")
