"""TestIssuer answers cross-origin requests from browser pages of registered origins only."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oauthguard.testing import TestIssuer
from oauthguard.testing._cors import origin_of

pytestmark = pytest.mark.anyio

HOST = "https://issuer.test"
ISSUER = HOST + "/tenant"
APP = "http://127.0.0.1:8000"
RESOURCE = APP + "/orders"
OTHER = "http://127.0.0.1:8001"
# What Swagger UI's token request asks for in its preflight.
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-requested-with",
}
PATHS = [
    "/.well-known/oauth-authorization-server/tenant",
    "/tenant/.well-known/openid-configuration",
    "/tenant/jwks",
]


@pytest.fixture
def issuer() -> TestIssuer:
    issuer = TestIssuer(ISSUER)
    issuer.register_swagger_client(APP + "/", client_id="swagger")
    return issuer


@pytest.fixture
async def http(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=issuer.transport(), base_url=HOST) as client:
        yield client


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def varies_on_origin(response: httpx.Response) -> bool:
    values = ",".join(response.headers.get_list("vary")).lower().split(",")
    return "origin" in [value.strip() for value in values]


async def swagger_token(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    """What Swagger UI does: authorization code with PKCE, then the token request from the
    page (``origin``), with the extra parameters in the token URL's query."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect = APP + "/docs/oauth2-redirect"
    authorized = await http.get(
        "/tenant/authorize",
        params={
            "response_type": "code",
            "client_id": "swagger",
            "redirect_uri": redirect,
            "scope": "orders:read",
            "state": "s",
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
            "resource": RESOURCE,
        },
    )
    assert authorized.status_code == 302, authorized.text
    assert not cors_headers(authorized)  # a navigation, not a CORS request
    code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
    return await http.post(
        "/tenant/token",
        params={"resource": RESOURCE},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "swagger",
            "redirect_uri": redirect,
            "code_verifier": verifier,
        },
        headers={"Origin": origin, "X-Requested-With": "XMLHttpRequest"},
    )


async def test_preflight_from_a_registered_origin_is_allowed(http: httpx.AsyncClient) -> None:
    response = await http.options("/tenant/token", headers={"Origin": APP, **PREFLIGHT})
    assert response.status_code == 204
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == APP  # echoed, never "*"
    assert "POST" in headers["access-control-allow-methods"].split(", ")
    allowed = headers["access-control-allow-headers"].lower().split(", ")
    assert {"content-type", "x-requested-with", "authorization", "dpop"} <= set(allowed)
    assert int(headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in headers  # no cookies to send
    assert varies_on_origin(response)


async def test_token_response_to_a_registered_origin_can_be_read(
    http: httpx.AsyncClient,
) -> None:
    response = await swagger_token(http, APP)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP
    assert varies_on_origin(response)
    assert response.json()["token_type"] == "Bearer"
    assert "refresh_token" not in response.json()  # Swagger UI's client has none


async def test_a_refused_token_request_is_readable_too(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/tenant/token", data={"grant_type": "authorization_code"}, headers={"Origin": APP}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert response.headers["access-control-allow-origin"] == APP
    exposed = response.headers["access-control-expose-headers"].lower().split(", ")
    assert "www-authenticate" in exposed


@pytest.mark.parametrize("path", PATHS)
async def test_metadata_and_keys_are_readable_from_a_registered_origin(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path, headers={"Origin": APP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert varies_on_origin(response)


@pytest.mark.parametrize(
    "origin", [OTHER, "http://localhost:8000", "https://127.0.0.1:8000", "null", APP + "/"]
)
async def test_an_unregistered_origin_gets_no_cors_headers(
    http: httpx.AsyncClient, origin: str
) -> None:
    preflight = await http.options("/tenant/token", headers={"Origin": origin, **PREFLIGHT})
    assert preflight.status_code == 403
    assert "allow_origin" in preflight.text  # names the fix
    assert not cors_headers(preflight)
    token = await swagger_token(http, origin)
    assert token.status_code == 200  # the server answers; the browser keeps it from the page
    assert not cors_headers(token)
    assert varies_on_origin(token)
    for path in PATHS:
        assert not cors_headers(await http.get(path, headers={"Origin": origin}))


async def test_no_origin_no_cors_headers(http: httpx.AsyncClient) -> None:
    response = await http.get(PATHS[0])
    assert response.status_code == 200 and not cors_headers(response)


@pytest.mark.parametrize("path", ["/tenant/authorize", "/tenant/introspect"])
async def test_endpoints_a_page_never_calls_send_no_cors_headers(
    http: httpx.AsyncClient, path: str
) -> None:
    preflight = await http.options(path, headers={"Origin": APP, **PREFLIGHT})
    assert preflight.status_code == 405 and not cors_headers(preflight)
    response = await http.post(path, headers={"Origin": APP})
    assert not cors_headers(response)


async def test_an_origin_allowed_later_counts_at_once(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    before = await http.options("/tenant/token", headers={"Origin": OTHER, **PREFLIGHT})
    assert before.status_code == 403
    assert issuer.allow_origin(OTHER + "/docs") == OTHER
    after = await http.options("/tenant/token", headers={"Origin": OTHER, **PREFLIGHT})
    assert after.status_code == 204
    assert after.headers["access-control-allow-origin"] == OTHER


def test_swagger_client_is_public_with_the_docs_redirect(issuer: TestIssuer) -> None:
    client = issuer.server.clients["swagger"]
    assert client.auth_method == "none" and client.secret is None
    assert client.redirect_uris == (APP + "/docs/oauth2-redirect",)
    assert client.grant_types == ("authorization_code",)
    assert issuer.cors_origins == {APP}
    issuer.register_swagger_client("https://api.test/v1", redirect_path="/api-docs/redirect")
    assert issuer.server.clients["swagger-ui"].redirect_uris == (
        "https://api.test/v1/api-docs/redirect",
    )
    assert "https://api.test" in issuer.cors_origins


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("HTTP://LocalHost:80/docs", "http://localhost"),
        ("https://api.test:443", "https://api.test"),
        ("https://api.test:8443/x?y#z", "https://api.test:8443"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
    ],
)
def test_origin_of_serializes_as_a_browser_does(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["null", "file:///docs", "ftp://h.test", "/docs", "http://"])
def test_origin_of_refuses_what_has_no_http_origin(url: str) -> None:
    with pytest.raises(ValueError, match="not an http or https URL"):
        origin_of(url)
