"""Requests counted by outcome, refusal code, scheme and route template; new tokens timed;
never a token, a subject or a path with an identifier in an attribute."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from oauthguard import require
from oauthguard.testing import TestIssuer

if TYPE_CHECKING:
    from telemetry_setup import Recorded

RESOURCE = "https://api.test/orders"
SUBJECT = "subject-5b9e21c4"
ORDER_PATH = "/orders/8812734"
REQUESTS = "oauthguard.requests"
VERIFICATION = "oauthguard.token.verification.duration"


async def order(request: Request) -> Response:
    return JSONResponse({"order": request.path_params["order_id"]})


@require("orders:write")
async def change_order(request: Request) -> Response:
    return JSONResponse({"changed": True})


@require(acr_values="urn:example:mfa")
async def refund(request: Request) -> Response:
    return JSONResponse({"refunded": True})


def client_for(issuer: TestIssuer, **options: object) -> TestClient:
    app = Starlette(
        routes=[
            Route("/orders/{order_id}", order, methods=["GET"]),
            Route("/orders/{order_id}", change_order, methods=["POST"]),
            Route("/orders/{order_id}/refund", refund, methods=["POST"]),
        ]
    )
    guard = build_guard(
        app,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        **options,
    )
    return TestClient(guard, base_url="https://api.test")


def assert_nothing_identifying(recorded: Recorded, *secrets: str) -> None:
    values = list(recorded.attribute_values())
    assert values, "nothing was recorded"
    for secret in secrets:
        for value in values:
            assert secret not in value, f"{value!r} holds {secret!r}"


def test_accepted_requests_are_counted_with_issuer_scheme_and_route_template(
    recorded: Recorded,
) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    client = client_for(issuer)
    token = issuer.token(audience=RESOURCE, subject=SUBJECT, scope="orders:read")
    for _ in range(3):  # one new token, then two cache hits
        assert client.get(ORDER_PATH, headers={"authorization": f"Bearer {token}"}).is_success

    assert recorded.new(REQUESTS) == {
        frozenset(
            {
                "oauthguard.outcome": "accepted",
                "oauthguard.scheme": "Bearer",
                "oauthguard.issuer": issuer.issuer,
                "http.route": "/orders/{order_id}",
            }.items()
        ): 3
    }
    assert recorded.count(VERIFICATION, oauthguard_issuer=issuer.issuer) == 1  # the new one
    assert recorded.count("oauthguard.metadata.fetches", oauthguard_result="ok") == 1
    assert recorded.count("oauthguard.jwks.fetches", oauthguard_result="ok") == 1
    assert_nothing_identifying(recorded, token, token.split(".")[1], SUBJECT, "8812734")


def dpop_bound(issuer: TestIssuer) -> str:
    from oauthguard.testing import DPoPKey

    return issuer.token(audience=RESOURCE, subject=SUBJECT, jkt=DPoPKey().thumbprint)


@pytest.mark.parametrize(
    ("kind", "status", "error", "scheme"),
    [
        ("no token", 401, "missing_credentials", None),
        ("expired", 401, "invalid_token", "Bearer"),
        ("bad signature", 401, "invalid_token", "Bearer"),
        ("two authorization headers", 400, "invalid_request", None),
        ("DPoP-bound token as Bearer", 401, "invalid_token", "Bearer"),
        ("DPoP without a proof", 401, "invalid_dpop_proof", "DPoP"),
        ("scope the route needs", 403, "insufficient_scope", "Bearer"),
        ("stronger authentication", 401, "insufficient_user_authentication", "Bearer"),
    ],
)
def test_each_refusal_is_counted_with_its_error_code_and_scheme(
    recorded: Recorded, kind: str, status: int, error: str, scheme: str | None
) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    client = client_for(issuer, dpop="allowed")
    token = issuer.token(audience=RESOURCE, subject=SUBJECT, scope="orders:read")
    method, path, headers = "GET", ORDER_PATH, [("authorization", f"Bearer {token}")]
    if kind == "no token":
        headers = []
    elif kind == "expired":
        token = issuer.token(audience=RESOURCE, subject=SUBJECT, expires_in=-3600)
        headers = [("authorization", f"Bearer {token}")]
    elif kind == "bad signature":
        token = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)
        headers = [("authorization", f"Bearer {token}")]
    elif kind == "two authorization headers":
        headers = headers * 2
    elif kind == "DPoP-bound token as Bearer":
        token = dpop_bound(issuer)
        headers = [("authorization", f"Bearer {token}")]
    elif kind == "DPoP without a proof":
        token = dpop_bound(issuer)
        headers = [("authorization", f"DPoP {token}")]
    elif kind == "scope the route needs":
        method = "POST"
    else:
        method, path = "POST", ORDER_PATH + "/refund"
    response = client.request(method, path, headers=headers)
    assert response.status_code == status, response.text

    expected = {"oauthguard.outcome": "refused", "error.type": error}
    if scheme is not None:
        expected["oauthguard.scheme"] = scheme
    if method == "POST":  # refused by require(...) in the app: its route is known
        expected["http.route"] = "/orders/{order_id}" + ("/refund" if "refund" in path else "")
    assert recorded.new(REQUESTS) == {frozenset(expected.items()): 1}  # never also accepted
    assert_nothing_identifying(recorded, token, SUBJECT, "8812734")


def test_a_failed_verification_is_timed_with_its_error_code(recorded: Recorded) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    client = client_for(issuer)
    token = issuer.token(audience="https://elsewhere.test", subject=SUBJECT)
    assert client.get(ORDER_PATH, headers={"authorization": f"Bearer {token}"}).status_code == 401
    assert recorded.new(VERIFICATION) == {frozenset({"error.type": "invalid_token"}.items()): 1}


def test_public_paths_and_the_metadata_document_are_not_counted(recorded: Recorded) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    client = client_for(issuer, public_paths=["/orders/*"])
    assert client.get(ORDER_PATH).status_code == 200
    assert client.get("/.well-known/oauth-protected-resource/orders").status_code == 200
    assert recorded.new(REQUESTS) == {}


def test_verification_times_fall_in_buckets_made_for_seconds(recorded: Recorded) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    client = client_for(issuer)
    token = issuer.token(audience=RESOURCE, subject=SUBJECT)
    assert client.get(ORDER_PATH, headers={"authorization": f"Bearer {token}"}).is_success
    [point] = [
        point
        for name, attributes, point in recorded.recorder.points()
        if name == VERIFICATION and ("oauthguard.issuer", issuer.issuer) in attributes
    ]
    assert point.explicit_bounds[:3] == (0.0001, 0.00025, 0.0005)
    assert point.max < 5  # seconds, not milliseconds


def test_a_counter_keeps_at_most_its_series_and_counts_the_rest_as_overflow() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from oauthguard._telemetry import Metrics, Tally

    reader = InMemoryMetricReader()
    metrics = Metrics.of(MeterProvider(metric_readers=[reader]))
    for n in range(Tally.MAX_SERIES + 5):
        metrics.accepted("Bearer", "https://issuer.test", f"/route-{n}")
    data = reader.get_metrics_data()
    assert data is not None
    [points] = [
        metric.data.data_points
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == REQUESTS
    ]
    assert len(points) == Tally.MAX_SERIES + 1
    [overflow] = [p for p in points if dict(p.attributes or {}).get("otel.metric.overflow")]
    assert overflow.value == 5
