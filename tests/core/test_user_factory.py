"""``user_factory``: what ``request.user`` is, built once per verified token."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from guards import build_guard
from starlette.requests import Request
from starlette.responses import JSONResponse

from oauthguard import AccessToken, ConfigurationError, OAuthGuard
from oauthguard.testing import DPoPKey, TestIssuer

pytestmark = pytest.mark.anyio

RESOURCE = "https://api.test/mcp"


class Principal:
    """An application's own user object."""

    def __init__(self, token: AccessToken, raw: str) -> None:
        self.token, self.raw = token, raw
        self.is_authenticated = True


class Factory:
    def __init__(self) -> None:
        self.calls: list[tuple[AccessToken, str]] = []

    def __call__(self, token: AccessToken, raw: str) -> Principal:
        self.calls.append((token, raw))
        return Principal(token, raw)


async def whoami(scope: Any, receive: Any, send: Any) -> None:
    request = Request(scope, receive)
    user = request.user
    await JSONResponse(
        {
            "type": type(user).__name__,
            "id": id(user),
            "auth_is_token": getattr(user, "token", None) is request.auth,
            "scheme": request.auth.scheme,
        }
    )(scope, receive, send)


def guard(issuer: TestIssuer, **options: Any) -> OAuthGuard:
    return build_guard(
        whoami,
        resource=RESOURCE,
        authorization_servers=issuer.issuer,
        http_client=issuer.http_client(),
        **options,
    )


async def get(app: OAuthGuard, authorization: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="https://api.test"
    ) as http:
        return await http.get("/mcp", headers={"authorization": authorization, **headers})


async def test_the_default_user_is_an_authenticated_user_of_the_token() -> None:
    issuer = TestIssuer()
    token = issuer.token(audience=RESOURCE)
    body = (await get(guard(issuer), f"Bearer {token}")).json()
    assert body["type"] == "AuthenticatedUser" and body["auth_is_token"]


async def test_a_factory_is_called_once_per_token_not_per_request() -> None:
    issuer, factory = TestIssuer(), Factory()
    app = guard(issuer, user_factory=factory)
    first, second = issuer.token(audience=RESOURCE), issuer.token(audience=RESOURCE)
    bodies = [(await get(app, f"Bearer {t}")).json() for t in (first, first, second)]
    assert [b["type"] for b in bodies] == ["Principal"] * 3
    assert bodies[0]["id"] == bodies[1]["id"] != bodies[2]["id"]
    assert all(b["auth_is_token"] for b in bodies)
    assert [raw for _, raw in factory.calls] == [first, second]


async def test_a_dpop_request_gets_a_user_of_the_dpop_bound_token() -> None:
    issuer, factory, key = TestIssuer(), Factory(), DPoPKey()
    app = guard(issuer, user_factory=factory)
    token = issuer.token(audience=RESOURCE, jkt=key.thumbprint)
    for _ in range(2):
        proof = key.proof("GET", RESOURCE, token=token)
        body = (await get(app, f"DPoP {token}", dpop=proof)).json()
        assert body == {**body, "type": "Principal", "auth_is_token": True, "scheme": "DPoP"}
    assert factory.calls[-1][0].scheme == "DPoP" and factory.calls[-1][1] == token


async def test_a_failing_factory_is_a_503_never_a_500_or_a_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer = TestIssuer()

    def broken(token: AccessToken, raw: str) -> Any:
        raise RuntimeError(f"no user for {raw}")

    token = issuer.token(audience=RESOURCE)
    with caplog.at_level(logging.ERROR, logger="oauthguard"):
        response = await get(guard(issuer, user_factory=broken), f"Bearer {token}")
    assert response.status_code == 503 and "retry-after" in response.headers
    assert response.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert "RuntimeError" in caplog.text and token not in caplog.text


def test_a_factory_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match=r"user_factory=\.\.\.\) must be a callable"):
        guard(TestIssuer(), user_factory="users.load")
