from guards import build_guard
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from oauthguard._wire.challenge import parse_challenges
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/mcp"


def make_client(issuer: TestIssuer) -> TestClient:
    @requires("read")
    async def hello(request: Request) -> Response:
        return JSONResponse({"sub": request.auth.subject, "user": request.user.display_name})

    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    return TestClient(app, base_url="https://api.test")


def test_valid_token_passes_and_missing_token_gets_the_plain_challenge() -> None:
    issuer = TestIssuer()
    client = make_client(issuer)
    refused = client.get("/mcp")
    assert refused.status_code == 401
    metadata = "https://api.test/.well-known/oauth-protected-resource/mcp"
    # DPoP is allowed by default: the Bearer challenge first, then DPoP (RFC 9449 §7.2).
    assert parse_challenges(refused.headers["www-authenticate"]) == [
        ("Bearer", {"resource_metadata": metadata}),
        ("DPoP", {"algs": "ES256 EdDSA RS256 PS256", "resource_metadata": metadata}),
    ]
    token = issuer.token(audience=RESOURCE, scope="read")
    ok = client.get("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json() == {"sub": "user-1", "user": "user-1"}
