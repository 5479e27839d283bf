from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from oauthguard import OAuthGuard, ResourceServer
from oauthguard.testing import DPoPKey, TestIssuer

RESOURCE = "https://api.test/mcp"


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"scheme": request.auth.scheme, "jkt": request.auth.jkt})


def test_a_dpop_bound_token_with_its_proof() -> None:
    issuer = TestIssuer("https://issuer.test")
    server = ResourceServer(
        resource=RESOURCE, authorization_servers=[issuer.issuer], http_client=issuer.http_client()
    )
    client = TestClient(OAuthGuard(Starlette(routes=[Route("/mcp", whoami)]), server))

    key = DPoPKey()  # the client's key; the token is bound to its thumbprint (cnf.jkt)
    token = issuer.token(audience=RESOURCE, jkt=key.thumbprint)
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof("GET", "https://api.test/mcp", token=token),
    }
    response = client.get("https://api.test/mcp", headers=headers)
    assert response.json() == {"scheme": "DPoP", "jkt": key.thumbprint}
    replayed = client.get("https://api.test/mcp", headers=headers)  # a proof is used once
    assert replayed.status_code == 401
