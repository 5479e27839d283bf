# ruff: noqa: B008 (FastAPI declares dependencies in argument defaults)
"""require(...) as a FastAPI dependency, and the OpenAPI OAuth 2 scheme."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Security, WebSocket
from fastapi.security import SecurityScopes
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient, WebSocketDenialResponse
from support import assert_refused

from oauthguard import AccessToken, ConfigurationError, require
from oauthguard.fastapi import SCHEME_NAME, describe_security, oauth2_flows
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/"
METADATA = "https://api.test/.well-known/oauth-protected-resource"
PUBLIC = ["/docs*", "/openapi.json"]

Writer = Annotated[AccessToken, Depends(require("orders:write"))]


def make_api(issuer: TestIssuer, **guard: Any) -> FastAPI:
    api = FastAPI()
    router = APIRouter(prefix="/v1", dependencies=[Depends(require("v1"))])

    @api.post("/orders")
    async def create(token: Writer) -> dict[str, Any]:
        return {"sub": token.subject, "scopes": sorted(token.scopes)}

    @api.get("/orders")
    def list_orders(token: AccessToken = Depends(require("orders:read"))) -> dict[str, Any]:
        return {"sub": token.subject}

    @api.get("/reports")
    async def reports(
        token: AccessToken = Security(require("reports"), scopes=["audit"]),
    ) -> dict[str, Any]:
        return {"sub": token.subject}

    async def tenant(
        security_scopes: SecurityScopes, token: AccessToken = Security(require("tenant"))
    ) -> str:
        return token.subject or ""

    @api.get("/tenants")
    async def tenants(user: str = Security(tenant, scopes=["tenants:list"])) -> dict[str, Any]:
        return {"user": user}

    @api.get("/step")
    async def step(
        token: AccessToken = Depends(require(acr_values="urn:mfa", max_age=60)),
    ) -> dict[str, Any]:
        return {"acr": token.claims["acr"]}

    @router.get("/items")
    def items() -> list[str]:
        return []

    @api.websocket("/ws")
    async def ws(websocket: WebSocket, token: AccessToken = Depends(require("chat"))) -> None:
        await websocket.accept()
        await websocket.send_text(token.subject or "")
        await websocket.close()

    api.include_router(router)
    api.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        public_paths=PUBLIC,
        scopes_supported=["orders:read", "orders:write"],
        **guard,
    )
    describe_security(api, client_id="swagger-ui", resource=RESOURCE)
    return api


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def client(issuer: TestIssuer) -> TestClient:
    return TestClient(make_api(issuer), base_url="https://api.test")


def auth(issuer: TestIssuer, scope: str | None = None, **claims: Any) -> dict[str, str]:
    token = issuer.token(audience=RESOURCE, scope=scope, claims=claims or None)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "granted", "needed"),
    [
        ("POST", "/orders", "read", "orders:write"),  # async endpoint, Annotated
        ("GET", "/orders", "read", "orders:read"),  # sync endpoint
        ("GET", "/reports", "reports", "audit reports"),  # Security(..., scopes=[...])
        ("GET", "/reports", "audit", "audit reports"),
        ("GET", "/tenants", "tenant", "tenants:list tenant"),  # SecurityScopes merged in
        ("GET", "/v1/items", "x", "v1"),  # router dependency
    ],
)
def test_dependency_refuses_with_the_guards_response(
    client: TestClient, issuer: TestIssuer, method: str, path: str, granted: str, needed: str
) -> None:
    refused = client.request(method, path, headers=auth(issuer, granted))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert set(params["scope"].split()) == set(needed.split())
    assert params["resource_metadata"] == METADATA
    assert "detail" not in refused.json()
    ok = client.request(method, path, headers=auth(issuer, needed))
    assert ok.status_code == 200, ok.text


def test_dependency_returns_the_access_token(client: TestClient, issuer: TestIssuer) -> None:
    ok = client.post("/orders", headers=auth(issuer, "orders:write extra"))
    assert ok.json() == {"sub": "user-1", "scopes": ["extra", "orders:write"]}


def test_step_up_from_a_dependency(client: TestClient, issuer: TestIssuer) -> None:
    refused = client.get("/step", headers=auth(issuer, acr="urn:pwd", auth_time=0))
    params = assert_refused(refused, 401, "insufficient_user_authentication")
    assert params["acr_values"] == "urn:mfa" and params["max_age"] == "60"
    # An auth_time beyond float range is refused by the dependency too, never a 500.
    ancient = auth(issuer, acr="urn:mfa", auth_time=-(10**400))
    assert_refused(client.get("/step", headers=ancient), 401, "insufficient_user_authentication")


def test_websocket_dependency(client: TestClient, issuer: TestIssuer) -> None:
    with client.websocket_connect("/ws", headers=auth(issuer, "chat")) as ws:
        assert ws.receive_text() == "user-1"
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/ws", headers=auth(issuer, "read")),
    ):
        pass
    assert_refused(denied.value, 403, "insufficient_scope")


def test_fastapi_and_starlette_give_byte_identical_challenges(
    client: TestClient, issuer: TestIssuer
) -> None:
    @require("orders:write")
    async def create(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(routes=[Route("/orders", create, methods=["POST"])])
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    starlette = TestClient(app, base_url="https://api.test")
    headers = auth(issuer, "read")
    from_fastapi = client.post("/orders", headers=headers)
    from_starlette = starlette.post("/orders", headers=headers)
    assert from_fastapi.status_code == from_starlette.status_code == 403
    assert from_fastapi.content == from_starlette.content
    assert from_fastapi.headers.raw == from_starlette.headers.raw


def test_openapi_has_the_scheme_from_the_issuers_metadata(
    client: TestClient, issuer: TestIssuer
) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"][SCHEME_NAME]
    flow = scheme["flows"]["authorizationCode"]
    assert scheme["type"] == "oauth2"
    assert flow["authorizationUrl"] == issuer.metadata()["authorization_endpoint"]
    assert flow["tokenUrl"] == issuer.metadata()["token_endpoint"]
    assert set(flow["scopes"]) == {
        "orders:read",
        "orders:write",
        "reports",
        "audit",
        "tenant",
        "tenants:list",
        "v1",
    }
    paths = document["paths"]
    assert paths["/orders"]["post"]["security"] == [{SCHEME_NAME: ["orders:write"]}]
    assert paths["/orders"]["get"]["security"] == [{SCHEME_NAME: ["orders:read"]}]
    assert paths["/reports"]["get"]["security"] == [{SCHEME_NAME: ["audit", "reports"]}]
    assert paths["/tenants"]["get"]["security"] == [{SCHEME_NAME: ["tenants:list", "tenant"]}]
    assert paths["/v1/items"]["get"]["security"] == [{SCHEME_NAME: ["v1"]}]
    assert paths["/step"]["get"]["security"] == [{SCHEME_NAME: []}]


def test_swagger_ui_and_openapi_are_public_while_operations_are_not(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert '"usePkceWithAuthorizationCodeGrant": true' in docs.text
    assert '"clientId": "swagger-ui"' in docs.text
    assert '"resource": "https://api.test/"' in docs.text
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert_refused(client.get("/orders"), 401, None)


def test_openapi_asked_for_before_discovery_is_not_cached_incomplete(issuer: TestIssuer) -> None:
    api = make_api(issuer)
    early = api.openapi()
    assert early["components"]["securitySchemes"][SCHEME_NAME]["flows"] == {}
    client = TestClient(api, base_url="https://api.test")
    flows = client.get("/openapi.json").json()["components"]["securitySchemes"][SCHEME_NAME]
    assert flows["flows"]["authorizationCode"]["tokenUrl"] == "https://issuer.test/token"


def test_openapi_is_503_while_the_issuer_is_unreachable() -> None:
    issuer = TestIssuer()
    api = make_api(issuer)
    issuer.app.router.routes.clear()  # the issuer answers 404 to metadata requests
    client = TestClient(api, base_url="https://api.test")
    refused = client.get("/openapi.json")
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    assert refused.json()["error"] == "temporarily_unavailable"


def test_decorator_on_a_fastapi_endpoint_that_takes_the_request(issuer: TestIssuer) -> None:
    api = FastAPI()

    @api.get("/x")
    @require("x")
    async def x(request: Request) -> dict[str, str]:
        return {"sub": request.auth.subject}

    api.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    client = TestClient(api, base_url="https://api.test")
    assert client.get("/x", headers=auth(issuer, "x")).json() == {"sub": "user-1"}
    params = assert_refused(client.get("/x", headers=auth(issuer, "y")), 403, "insufficient_scope")
    assert params["scope"] == "x"


def test_dependency_on_a_public_path_is_a_401_with_the_scope(issuer: TestIssuer) -> None:
    api = FastAPI()

    @api.get("/open/x")
    async def x(token: AccessToken = Depends(require("x"))) -> dict[str, str]:
        return {}

    api.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        public_paths=["/open/*"],
    )
    params = assert_refused(TestClient(api).get("/open/x"), 401, None)
    assert params["scope"] == "x"


def test_dependency_without_the_guard_fails_closed() -> None:
    api = FastAPI()

    @api.get("/x")
    async def x(token: AccessToken = Depends(require("x"))) -> dict[str, str]:
        return {}

    with pytest.raises(ConfigurationError, match="needs the OAuthGuard middleware"):
        TestClient(api).get("/x")


@pytest.mark.parametrize(
    ("metadata", "flows"),
    [
        (
            {"authorization_endpoint": "https://as/a", "token_endpoint": "https://as/t"},
            {
                "authorizationCode": {
                    "authorizationUrl": "https://as/a",
                    "tokenUrl": "https://as/t",
                    "scopes": {"s": ""},
                }
            },
        ),
        (
            {"token_endpoint": "https://as/t"},
            {"clientCredentials": {"tokenUrl": "https://as/t", "scopes": {"s": ""}}},
        ),
        ({"authorization_endpoint": "https://as/a"}, {}),
        ({"authorization_endpoint": 5, "token_endpoint": ["x"]}, {}),
    ],
)
def test_flows_from_authorization_server_metadata(
    metadata: dict[str, Any], flows: dict[str, Any]
) -> None:
    assert oauth2_flows(metadata, ["s", "s"]) == flows


def test_guard_wrapped_around_the_app_answers_dependency_refusals(
    issuer: TestIssuer, client: TestClient
) -> None:
    """``build_guard(api, ...)`` puts the app's error handling inside the guard; a refusal
    from a dependency is still the guard's response, never a 500."""
    api = FastAPI()

    @api.post("/orders")
    async def create(token: Writer) -> dict[str, Any]:
        return {}

    @api.websocket("/ws")
    async def ws(websocket: WebSocket, token: AccessToken = Depends(require("chat"))) -> None:
        await websocket.accept()

    wrapped = build_guard(
        api,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    outside = TestClient(wrapped, base_url="https://api.test", raise_server_exceptions=False)
    headers = auth(issuer, "read")
    refused, expected = (
        outside.post("/orders", headers=headers),
        client.post("/orders", headers=headers),
    )
    assert refused.status_code == 403
    assert refused.headers.raw == expected.headers.raw
    assert refused.content == expected.content
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        outside.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert assert_refused(denied.value, 403, "insufficient_scope")["scope"] == "chat"


def test_describe_security_needs_the_openapi_route() -> None:
    with pytest.raises(ConfigurationError, match="OpenAPI route"):
        describe_security(FastAPI(openapi_url=None))


def test_require_works_without_fastapi_installed() -> None:
    import subprocess
    import sys

    code = (
        "import sys, inspect; sys.modules['fastapi'] = None\n"
        "from oauthguard import require\n"
        "r = require('a')\n"
        "assert str(inspect.signature(r)).startswith('(*args')\n"
        "assert 'fastapi' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "ok", result.stderr


def items_api() -> FastAPI:
    api = FastAPI()

    @api.get("/items")
    async def items(token: Annotated[AccessToken, Depends(require("items:read"))]) -> Any:
        return {"sub": token.subject}

    return api


def wrapped_in_cors(api: FastAPI) -> Any:
    from starlette.middleware.cors import CORSMiddleware

    return CORSMiddleware(api, allow_origins=["*"])


def mounted(api: FastAPI) -> Any:
    from starlette.routing import Mount

    return Starlette(routes=[Mount("/sub", api)])


def started(api: Any) -> Any:
    api.middleware_stack = api.build_middleware_stack()
    return wrapped_in_cors(api)


@pytest.mark.parametrize(
    ("inside", "path"),
    [(wrapped_in_cors, "/items"), (mounted, "/sub/items"), (started, "/items")],
    ids=["behind-cors-middleware", "mounted-sub-app", "started-behind-middleware"],
)
def test_a_dependency_refuses_with_the_guards_response_inside_other_apps(
    issuer: TestIssuer, inside: Any, path: str
) -> None:
    """Each FastAPI app answers its endpoints' errors itself: the guard's handler reaches it
    past middleware and in what an app mounts, or its refusals would be 500s."""
    guard = build_guard(
        inside(items_api()),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    client = TestClient(guard, base_url="https://api.test")
    params = assert_refused(
        client.get(path, headers=auth(issuer, "other")), 403, "insufficient_scope"
    )
    assert params["scope"] == "items:read"
    assert client.get(path, headers=auth(issuer, "items:read")).status_code == 200
