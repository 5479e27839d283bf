"""A key that leaves the issuer's JWKS takes the tokens it verified with it (no cached pass)."""

import httpx
from apps import Clock
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from support import Switchable, assert_refused

from oauthguard import OAuthGuard
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/data"


async def data(request: Request) -> Response:
    return JSONResponse({"client_id": request.auth.client_id})


def guarded(issuer: TestIssuer) -> tuple[OAuthGuard, TestClient]:
    guard = build_guard(
        Starlette(routes=[Route("/data", data)]),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        jwks_refresh_cooldown=0,
    )
    return guard, TestClient(guard, base_url="https://api.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_cached_token_is_refused_once_rotation_removed_its_key() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    guard, client = guarded(issuer)
    old = issuer.token(audience=RESOURCE)
    assert client.get("/data", headers=bearer(old)).status_code == 200
    assert len(guard.server.tokens) == 1

    issuer.rotate("RS256")
    new = issuer.token(audience=RESOURCE)
    assert client.get("/data", headers=bearer(new)).status_code == 200  # kid miss: refetch
    refused = client.get("/data", headers=bearer(old))
    params = assert_refused(refused, 401, "invalid_token")
    assert params["error_description"] == "no signing key of the issuer matches the token's kid"


def test_a_key_added_to_the_jwks_keeps_verified_tokens_cached() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    guard, client = guarded(issuer)
    old = issuer.token(audience=RESOURCE)
    assert client.get("/data", headers=bearer(old)).status_code == 200

    issuer.add_key("ES256")
    new = issuer.token(audience=RESOURCE, alg="ES256")
    assert client.get("/data", headers=bearer(new)).status_code == 200  # kid miss: refetch
    assert len(guard.server.tokens) == 2
    jwks_fetches = [r for r in issuer.requests if r.url.path == "/jwks"]
    assert len(jwks_fetches) == 2
    assert client.get("/data", headers=bearer(old)).status_code == 200


def timed(issuer: TestIssuer, clock: Clock, transport: Switchable) -> TestClient:
    guard = build_guard(
        Starlette(routes=[Route("/data", data)]),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=httpx.AsyncClient(transport=transport),
        clock=clock,
    )
    return TestClient(guard, base_url="https://api.test")


def test_a_cached_token_is_verified_again_once_its_issuers_keys_are_due() -> None:
    """No new token need come to make the guard see its key left the JWKS."""
    clock = Clock()
    issuer = TestIssuer(algorithms=("RS256",), clock=clock)
    transport = Switchable(issuer)
    client = timed(issuer, clock, transport)
    token = issuer.token(audience=RESOURCE, expires_in=10**7)  # it says: for months
    assert client.get("/data", headers=bearer(token)).status_code == 200
    issuer.rotate("RS256")  # its key is gone from the JWKS
    clock.advance(issuer.jwks_max_age - 1)  # the keys are still fresh: the cache answers
    assert client.get("/data", headers=bearer(token)).status_code == 200
    assert [r.url.path for r in issuer.requests].count("/jwks") == 1
    clock.advance(2)  # the keys are due: the token is verified again, with the new JWKS
    params = assert_refused(client.get("/data", headers=bearer(token)), 401, "invalid_token")
    assert params["error_description"] == "no signing key of the issuer matches the token's kid"
    assert [r.url.path for r in issuer.requests].count("/jwks") == 2


def test_a_cached_token_is_unavailable_once_its_keys_are_past_keys_max_stale() -> None:
    clock = Clock()
    issuer = TestIssuer(algorithms=("RS256",), clock=clock)
    transport = Switchable(issuer)
    client = timed(issuer, clock, transport)
    token = issuer.token(audience=RESOURCE, expires_in=10**7)
    assert client.get("/data", headers=bearer(token)).status_code == 200
    transport.down = True
    clock.advance(issuer.jwks_max_age + 60)  # due, unreachable: the last good keys serve
    assert client.get("/data", headers=bearer(token)).status_code == 200
    clock.advance(86400)  # past keys_max_stale (a day): no keys to verify it with
    response = client.get("/data", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
