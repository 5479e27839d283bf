"""An issuer reached at an internal URL (``Issuer(internal_url=)``): the token and
introspection endpoints are called there, but a client assertion's ``aud`` (RFC 7523 §3) and a
DPoP proof's ``htu`` (RFC 9449 §4.2) name them as the issuer does, its public URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from oauthguard import Introspection, Issuer, ResourceServer
from oauthguard.exchange import TokenExchange
from oauthguard.testing import DPoPKey

pytestmark = pytest.mark.anyio

PUBLIC = "https://idp.example.com/realms/demo"
INTERNAL = "http://keycloak:8080/realms/demo"
METADATA = {
    "issuer": PUBLIC,
    "jwks_uri": PUBLIC + "/certs",
    "token_endpoint": PUBLIC + "/token",
    "introspection_endpoint": PUBLIC + "/introspect",
}
ISSUED = {
    "access_token": "downstream-token",
    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    "token_type": "Bearer",
    "expires_in": 60,
}
INTROSPECTED = {"active": True, "iss": PUBLIC, "aud": "https://api.test/", "exp": 4102444800}


class InternalIssuer:
    """The issuer's answers, only at its internal URL; the requests it got."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if not url.startswith(INTERNAL):
            return httpx.Response(404)
        if "/.well-known/" in url:
            return httpx.Response(200, json=METADATA)
        if url == INTERNAL + "/certs":
            return httpx.Response(200, json={"keys": []})
        if url == INTERNAL + "/token":
            return httpx.Response(200, json=ISSUED)
        if url == INTERNAL + "/introspect":
            return httpx.Response(200, json=INTROSPECTED)
        return httpx.Response(404)

    def form_to(self, path: str) -> dict[str, list[str]]:
        [request] = [r for r in self.requests if str(r.url) == INTERNAL + path]
        return parse_qs(request.content.decode())

    def header_to(self, path: str, name: str) -> str:
        [request] = [r for r in self.requests if str(r.url) == INTERNAL + path]
        return request.headers[name]


def assertion_audience(form: dict[str, list[str]], key: Any) -> Any:
    claims = pyjwt.decode(
        form["client_assertion"][0],
        key.public_key(),
        algorithms=["ES256"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )
    return claims["aud"]


def issuer() -> Issuer:
    return Issuer(PUBLIC, internal_url=INTERNAL, allow_http=True)


async def test_the_exchange_calls_the_internal_url_and_names_the_public_endpoint() -> None:
    served, key, dpop = InternalIssuer(), ec.generate_private_key(ec.SECP256R1()), DPoPKey()
    async with httpx.AsyncClient(transport=httpx.MockTransport(served)) as http:
        exchange = TokenExchange(
            issuer(),
            client_id="mcp-server",
            auth_method="private_key_jwt",
            private_key=key,
            dpop_key=dpop,
            http_client=http,
        )
        exchanged = await exchange.token_for("subject-token", resource="https://orders.test/")
    assert exchanged.access_token == "downstream-token"
    assert assertion_audience(served.form_to("/token"), key) == PUBLIC + "/token"
    proof = served.header_to("/token", "dpop")
    assert pyjwt.decode(proof, options={"verify_signature": False})["htu"] == PUBLIC + "/token"


async def test_introspection_calls_the_internal_url_and_names_the_public_endpoint() -> None:
    served, key = InternalIssuer(), ec.generate_private_key(ec.SECP256R1())
    async with httpx.AsyncClient(transport=httpx.MockTransport(served)) as http:
        server = ResourceServer(
            resource="https://api.test/",
            authorization_servers=issuer(),
            introspection=Introspection(
                client_id="api", auth_method="private_key_jwt", private_key=key
            ),
            http_client=http,
        )
        token = await server.verify("an-opaque-token")
    assert token.issuer == PUBLIC
    assert assertion_audience(served.form_to("/introspect"), key) == PUBLIC + "/introspect"
