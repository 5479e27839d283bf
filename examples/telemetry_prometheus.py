"""A guarded API whose oauthguard metrics Prometheus scrapes, through OpenTelemetry.

oauthguard records through the OpenTelemetry API only; the application picks the SDK and
the exporter, here OpenTelemetry's Prometheus exporter, served on a port of its own so the
metrics stay off the public API.

Install:       pip install '.[prometheus,demo]'   (an SDK and the exporter, and uvicorn)
Run the demo:  python examples/telemetry_prometheus.py   (a local TestIssuer; prints curl
               commands and the metrics URL)
In production: OAUTHGUARD_RESOURCE=https://api.example.com/orders \\
               OAUTHGUARD_ISSUER=https://as.example.com METRICS_PORT=9464 \\
               uvicorn examples.telemetry_prometheus:app
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import OAuthGuard, require


def configure_metrics(service: str = "orders-api") -> None:
    """The application's choice, made once per process: an SDK whose reader Prometheus
    scrapes. oauthguard binds its instruments to it when it next leaves the hot path."""
    reader = PrometheusMetricReader()
    resource = Resource.create({"service.name": service})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


ORDERS = {"1": {"id": 1, "item": "coffee"}}


@require("orders:read")
async def list_orders(request: Request) -> JSONResponse:
    return JSONResponse({"orders": list(ORDERS.values())})


@require("orders:read")  # a refusal here is counted with http.route "/orders/{order_id}"
async def order(request: Request) -> JSONResponse:
    found = ORDERS.get(request.path_params["order_id"])
    return JSONResponse(found or {"error": "not found"}, status_code=200 if found else 404)


def build(resource: str, issuer: str, metrics_port: int = 9464) -> Starlette:
    """The API behind the guard; its lifespan serves ``/metrics`` on ``metrics_port``
    (loopback only here: put it where your Prometheus, and only it, can reach it)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server, thread = start_http_server(metrics_port, addr="127.0.0.1")
        try:
            yield
        finally:
            server.shutdown()
            thread.join(5)

    routes = [Route("/orders", list_orders), Route("/orders/{order_id}", order)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(OAuthGuard, resource=resource, authorization_servers=[issuer])
    return app


configure_metrics()
app = build(
    os.environ.get("OAUTHGUARD_RESOURCE", "http://127.0.0.1:8000/orders"),
    os.environ.get("OAUTHGUARD_ISSUER", "http://127.0.0.1:9000"),
    int(os.environ.get("METRICS_PORT", "9464")),
)


def demo() -> None:
    from _demo import free_port, run_demo

    metrics_port = free_port()
    run_demo(
        lambda resource, issuer: build(resource, issuer, metrics_port),
        "/orders",
        ["orders:read", "orders:write"],
        lambda issuer, port: (
            f"Metrics (Prometheus):             http://127.0.0.1:{metrics_port}/metrics"
        ),
    )


if __name__ == "__main__":
    demo()
