"""Several resources on one app (RFC 9728 §3, RFC 8707 §2): one document each, the right
``resource_metadata`` in each challenge, tokens only for the resource of the path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support import assert_refused, serve

from oauthguard import require
from oauthguard.testing import TestIssuer

MCP = "https://api.test/mcp"
BILLING = "https://api.test/billing"
REPORTS = "https://api.test/reports"
WELL_KNOWN = "https://api.test/.well-known/oauth-protected-resource"


async def echo(request: Request) -> Response:
    return PlainTextResponse(f"{request.url.path} {' '.join(request.auth.audience)}")


@require(audience=REPORTS)
async def cross(request: Request) -> Response:
    return PlainTextResponse("cross")


def make_app(issuer: TestIssuer) -> Starlette:
    app = Starlette(
        routes=[
            Route(path, echo)
            for path in (
                "/mcp",
                "/mcp/tools",
                "/billing",
                "/billing/invoices",
                "/reports/x",
                "/health",
                "/stats/daily",
            )
        ]
        + [Route("/mcp/cross", cross)]
    )
    app.add_middleware(
        build_guard,
        resource=MCP,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        resources=[BILLING],
        rules={
            "/billing/invoices": require("invoices"),
            "/reports": require(audience=REPORTS),
            "/stats": require(audience=REPORTS),
        },
    )
    return app


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def base(issuer: TestIssuer) -> Any:
    with serve(make_app(issuer)) as url:
        yield url


def auth(issuer: TestIssuer, audience: str | list[str], scope: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(audience=audience, scope=scope)}"}


@pytest.mark.parametrize(
    ("resource", "suffix"), [(MCP, "/mcp"), (BILLING, "/billing"), (REPORTS, "/reports")]
)
def test_one_metadata_document_per_resource(
    base: str, issuer: TestIssuer, resource: str, suffix: str
) -> None:
    document = httpx.get(base + "/.well-known/oauth-protected-resource" + suffix).json()
    assert document["resource"] == resource
    assert document["authorization_servers"] == [issuer.issuer]


@pytest.mark.parametrize(
    ("path", "resource", "suffix"),
    [
        ("/mcp/tools", MCP, "/mcp"),
        ("/health", MCP, "/mcp"),
        ("/billing/invoices", BILLING, "/billing"),
        ("/reports/x", REPORTS, "/reports"),
        ("/stats/daily", REPORTS, "/reports"),
    ],
)  # a rule's audience claims its path
def test_each_path_gets_its_resources_tokens_and_challenge(
    base: str, issuer: TestIssuer, path: str, resource: str, suffix: str
) -> None:
    params = assert_refused(httpx.get(base + path), 401, None)
    assert params["resource_metadata"] == WELL_KNOWN + suffix
    ok = httpx.get(base + path, headers=auth(issuer, resource, "invoices"))
    assert ok.status_code == 200, ok.text
    other = BILLING if resource != BILLING else MCP
    params = assert_refused(
        httpx.get(base + path, headers=auth(issuer, other, "invoices")), 401, "invalid_token"
    )
    assert params["resource_metadata"] == WELL_KNOWN + suffix
    assert resource in params["error_description"]


def test_scope_refusal_points_at_the_paths_resource(base: str, issuer: TestIssuer) -> None:
    refused = httpx.get(base + "/billing/invoices", headers=auth(issuer, BILLING, "read"))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == "invoices"
    assert params["resource_metadata"] == WELL_KNOWN + "/billing"


def test_tokens_for_unknown_audiences_are_refused(base: str, issuer: TestIssuer) -> None:
    refused = httpx.get(base + "/mcp", headers=auth(issuer, "https://api.test/elsewhere"))
    assert_refused(refused, 401, "invalid_token")


def test_require_audience_narrows(base: str, issuer: TestIssuer) -> None:
    params = assert_refused(
        httpx.get(base + "/mcp/cross", headers=auth(issuer, MCP)), 401, "invalid_token"
    )
    assert REPORTS in params["error_description"]
    both = httpx.get(base + "/mcp/cross", headers=auth(issuer, [MCP, REPORTS]))
    assert both.text == "cross"


def test_a_rule_cannot_claim_another_resources_path(issuer: TestIssuer) -> None:
    from oauthguard import ConfigurationError

    with pytest.raises(ConfigurationError, match="is the path of the resource"):
        build_guard(
            Starlette(),
            resource=MCP,
            authorization_servers=[issuer.issuer],
            rules={"/mcp": require(audience=BILLING)},
        )
