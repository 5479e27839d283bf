from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from oauthguard import OAuthGuard, ResourceServer, require
from oauthguard.testing import TestIssuer


@require("orders:read")
async def orders(request: Request) -> JSONResponse:
    return JSONResponse({"reader": request.auth.subject})


def test_orders_need_a_valid_token() -> None:
    issuer = TestIssuer("https://issuer.test")  # keys, metadata and a JWKS, in process
    server = ResourceServer(
        resource="https://api.test/orders",
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),  # the guard reaches the issuer without a network
    )
    app = OAuthGuard(Starlette(routes=[Route("/orders", orders)]), server)
    client = TestClient(app, base_url="https://api.test")

    token = issuer.token(audience="https://api.test/orders", scope="orders:read")
    response = client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200

    expired = issuer.token(audience="https://api.test/orders", expires_in=-60)
    response = client.get("/orders", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
