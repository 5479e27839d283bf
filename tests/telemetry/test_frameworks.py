"""Route templates and single counts where other frameworks route: Litestar's
``path_template`` and FastAPI's route, refusals inside the app counted once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.testclient import TestClient

from oauthguard import OAuthGuard, ResourceServer
from oauthguard.testing import TestIssuer

if TYPE_CHECKING:
    from telemetry_setup import Recorded

RESOURCE = "https://api.test/api"


def server_of(issuer: TestIssuer) -> ResourceServer:
    return ResourceServer(
        resource=RESOURCE, authorization_servers=[issuer.issuer], http_client=issuer.http_client()
    )


def expected(outcome: str, route: str, **more: str) -> frozenset[tuple[str, str]]:
    attributes = {"oauthguard.outcome": outcome, "oauthguard.scheme": "Bearer", **more}
    return frozenset({**attributes, "http.route": route}.items())


def test_litestar_path_templates_and_its_refusals_counted_once(recorded: Recorded) -> None:
    from litestar import Litestar, get

    from oauthguard import GuardError
    from oauthguard.litestar import refusal_response, requires

    @get("/api/orders/{order_id:int}", guards=[requires("orders:read")], sync_to_thread=False)
    def order(order_id: int) -> dict[str, Any]:
        return {"order": order_id}

    issuer = TestIssuer(algorithms=("RS256",))
    app = Litestar([order], exception_handlers={GuardError: refusal_response})
    client = TestClient(OAuthGuard(app, server_of(issuer)), base_url="https://api.test")
    reader = issuer.token(audience=RESOURCE, scope="orders:read")
    other = issuer.token(audience=RESOURCE, scope="profile")
    assert client.get("/api/orders/9921", headers={"authorization": f"Bearer {reader}"}).is_success
    refused = client.get("/api/orders/9921", headers={"authorization": f"Bearer {other}"})
    assert refused.status_code == 403

    route = "/api/orders/{order_id}"  # Litestar gives its template without the type
    assert recorded.new("oauthguard.requests") == {
        expected("accepted", route, **{"oauthguard.issuer": issuer.issuer}): 1,
        expected("refused", route, **{"error.type": "insufficient_scope"}): 1,
    }


def test_fastapi_route_templates_and_its_refusals_counted_once(recorded: Recorded) -> None:
    from fastapi import Depends, FastAPI

    from oauthguard import require

    api = FastAPI()

    @api.get("/api/orders/{order_id}", dependencies=[Depends(require("orders:read"))])
    async def order(order_id: int) -> Any:
        return {"order": order_id}

    issuer = TestIssuer(algorithms=("RS256",))
    client = TestClient(OAuthGuard(api, server_of(issuer)), base_url="https://api.test")
    reader = issuer.token(audience=RESOURCE, scope="orders:read")
    other = issuer.token(audience=RESOURCE, scope="profile")
    assert client.get("/api/orders/9921", headers={"authorization": f"Bearer {reader}"}).is_success
    refused = client.get("/api/orders/9921", headers={"authorization": f"Bearer {other}"})
    assert refused.status_code == 403

    route = "/api/orders/{order_id}"
    assert recorded.new("oauthguard.requests") == {
        expected("accepted", route, **{"oauthguard.issuer": issuer.issuer}): 1,
        expected("refused", route, **{"error.type": "insufficient_scope"}): 1,
    }
