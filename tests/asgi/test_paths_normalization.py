"""Paths that an app or a proxy resolves to another path never escape a path rule, a
resource's audience or a public prefix: real ``StaticFiles`` under ``Mount``, served by
uvicorn on loopback, with request targets sent byte for byte as written (``curl
--path-as-is``), with and without ``--root-path``."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from guards import build_guard
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from support import assert_refused, serve

from oauthguard import OAuthGuard, require
from oauthguard._asgi.types import Receive, Scope, Send
from oauthguard.testing import TestIssuer

SECRET = "the admin's secret"
INVOICE = "invoice 2024-001: 1000 EUR"
FILES = {
    "public/hello.txt": "hello",
    "private/secret.txt": SECRET,
    "billing/invoice.txt": INVOICE,
}

#: Request targets StaticFiles resolves to /static/private/secret.txt, and the ones that
#: would reach it on a server or a file system that reads '\', NUL, ';', a trailing '.' or a
#: second round of percent-decoding the way some do.
TO_PRIVATE = [
    "/static/public/../private/secret.txt",
    "/static/public/%2e%2e/private/secret.txt",
    "/static/public/%2E%2E/private/secret.txt",
    "/static/public/.%2e/private/secret.txt",
    "/static/public/%2e./private/secret.txt",
    "/static//private/secret.txt",
    "//static/private/secret.txt",
    "/static/./private/secret.txt",
    "/static/%2e/private/secret.txt",
    "/static/private/./secret.txt",
    "/static/private/../private/secret.txt",
    "/static/public%2f..%2fprivate/secret.txt",
    "/static/public%2F%2E%2E%2Fprivate/secret.txt",
    "/static%2fprivate/secret.txt",
    "/static/public\\..\\private/secret.txt",
    "/static/public%5c..%5cprivate/secret.txt",
    "/static/public%5C..%5Cprivate/secret.txt",
    "/static/private%00/secret.txt",
    "/static/private/secret.txt%00",
    "/static/private%0a/secret.txt",
    "/static/private./secret.txt",
    "/static/private%20/secret.txt",
    "/static/private;x/secret.txt",
    "/static/private%3bx/secret.txt",
    "/static/public/%252e%252e/private/secret.txt",
    "/static/public/%2e%2e/private/secret.txt?download=1",
]
#: Targets StaticFiles resolves to the other resource's file.
TO_BILLING = [
    "/static/public/../billing/invoice.txt",
    "/static/public/%2e%2e/billing/invoice.txt",
    "/static//billing/invoice.txt",
    "/static/./billing/invoice.txt",
    "/static/public%2f..%2fbilling/invoice.txt",
]


async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("connected")
    await websocket.close()


class UppercasingApp:
    """An ASGI app that acts on the method upper-cased, as some frameworks do."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan support
        deleted = scope["method"].upper() == "DELETE"
        body = b"deleted" if deleted else b"kept"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("static")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def resources(root_path: str) -> tuple[str, str]:
    """The default resource and the billing resource, named by their public URLs."""
    return f"https://api.test{root_path}/static", f"https://api.test{root_path}/static/billing"


def static_app(issuer: TestIssuer, directory: Path, root_path: str) -> OAuthGuard:
    default, billing = resources(root_path)
    app = Starlette(
        routes=[
            Mount("/static", StaticFiles(directory=directory)),
            WebSocketRoute("/ws/{name}", echo_socket),
        ]
    )
    return build_guard(
        app,
        resource=default,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        rules={"/static/private": require("admin")},
        resources=[billing],
    )


@pytest.fixture(scope="module", params=["", "/api"], ids=["no-root-path", "root-path"])
def site(request: pytest.FixtureRequest, issuer: TestIssuer, directory: Path) -> Iterator[Any]:
    root_path: str = request.param
    with serve(static_app(issuer, directory, root_path), root_path=root_path) as base:
        yield base, root_path


def send_as_is(base: str, target: str, headers: dict[str, str], method: str = "GET") -> Any:
    """Send ``target`` byte for byte as the request target (no client-side resolution or
    encoding), and read the response."""
    parts = urlsplit(base)
    headers = {"Host": "api.test", "Connection": "close", **headers}
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = http.client.HTTPResponse(sock)
        response.begin()
        return httpx.Response(
            response.status, headers=response.getheaders(), content=response.read()
        )


def bearer(issuer: TestIssuer, audience: str, scope: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(audience=audience, scope=scope)}"}


@pytest.mark.parametrize("target", TO_PRIVATE)
def test_a_path_that_resolves_elsewhere_never_escapes_a_path_rule(
    site: Any, issuer: TestIssuer, target: str
) -> None:
    base, root_path = site
    default, _ = resources(root_path)
    response = send_as_is(base, target, bearer(issuer, default, "read"))
    assert SECRET not in response.text
    params = assert_refused(response, 400, "invalid_request")
    assert "the path is not in normal form" in params["error_description"]


@pytest.mark.parametrize("target", TO_BILLING)
def test_a_path_that_resolves_elsewhere_never_escapes_a_resources_audience(
    site: Any, issuer: TestIssuer, target: str
) -> None:
    base, root_path = site
    default, _ = resources(root_path)
    response = send_as_is(base, target, bearer(issuer, default, "admin"))
    assert INVOICE not in response.text
    assert_refused(response, 400, "invalid_request")


@pytest.mark.parametrize("target", ["/static/public/../private/secret.txt", "/static//x"])
def test_no_token_gets_the_same_400(site: Any, target: str) -> None:
    base, _ = site
    assert_refused(send_as_is(base, target, {}), 400, "invalid_request")


def test_paths_in_normal_form_are_served_and_guarded_as_before(
    site: Any, issuer: TestIssuer
) -> None:
    base, root_path = site
    default, billing = resources(root_path)
    user, admin = bearer(issuer, default, "read"), bearer(issuer, default, "admin")
    hello = send_as_is(base, "/static/public/hello.txt", user)
    assert (hello.status_code, hello.text) == (200, "hello")
    assert_refused(send_as_is(base, "/static/private/secret.txt", user), 403, "insufficient_scope")
    secret = send_as_is(base, "/static/private/secret.txt", admin)
    assert (secret.status_code, secret.text) == (200, SECRET)
    assert_refused(send_as_is(base, "/static/billing/invoice.txt", admin), 401, "invalid_token")
    invoice = send_as_is(base, "/static/billing/invoice.txt", bearer(issuer, billing))
    assert (invoice.status_code, invoice.text) == (200, INVOICE)
    assert_refused(send_as_is(base, "/static/private/secret.txt", {}), 401, None)


def test_percent_encoded_unreserved_characters_are_matched_decoded(
    site: Any, issuer: TestIssuer
) -> None:
    # RFC 3986 §6.2.2.2: %70 is "p", so /static/%70rivate is /static/private, for the rule too.
    base, root_path = site
    default, _ = resources(root_path)
    user = bearer(issuer, default, "read")
    for target in ("/static/%70rivate/secret.txt", "/static/private/%73ecret.txt"):
        response = send_as_is(base, target, user)
        assert SECRET not in response.text
        assert_refused(response, 403, "insufficient_scope")
    hello = send_as_is(base, "/static/public/%68ello.txt", user)
    assert (hello.status_code, hello.text) == (200, "hello")
    invoice = send_as_is(base, "/static/%62illing/invoice.txt", bearer(issuer, default, "admin"))
    assert INVOICE not in invoice.text
    assert_refused(invoice, 401, "invalid_token")


def websocket_upgrade(base: str, target: str, headers: dict[str, str]) -> Any:
    """The server's answer to a WebSocket handshake for ``target``, sent as is."""
    handshake = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    parts = urlsplit(base)
    lines = [f"GET {target} HTTP/1.1", "Host: api.test"]
    lines += [f"{name}: {value}" for name, value in {**handshake, **headers}.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = b"" if response.status == 101 else response.read()
        return httpx.Response(response.status, headers=response.getheaders(), content=body)


@pytest.mark.parametrize("target", ["/ws/./x", "/ws//x", "/ws/%2e%2e/x", "/ws/a%2fb"])
def test_a_websocket_on_a_path_not_in_normal_form_is_refused_before_accept(
    site: Any, issuer: TestIssuer, target: str
) -> None:
    base, root_path = site
    default, _ = resources(root_path)
    token = bearer(issuer, default)
    assert websocket_upgrade(base, "/ws/x", token).status_code == 101  # the handshake works
    assert_refused(websocket_upgrade(base, target, token), 400, "invalid_request")


@pytest.fixture(scope="module")
def uppercasing(issuer: TestIssuer) -> Iterator[str]:
    default = "https://api.test/orders"
    guard = build_guard(
        UppercasingApp(),
        resource=default,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        rules={("DELETE", "/orders"): require("orders:delete")},
    )
    with serve(guard) as base:
        yield base


@pytest.mark.parametrize("method", ["delete", "Delete", "dELETE"])
def test_a_method_not_in_upper_case_never_escapes_a_method_rule(
    uppercasing: str, issuer: TestIssuer, method: str
) -> None:
    user = bearer(issuer, "https://api.test/orders", "orders:read")
    response = send_as_is(uppercasing, "/orders", user, method=method)
    assert response.text != "deleted"
    params = assert_refused(response, 400, "invalid_request")
    assert "method" in params["error_description"]
    refused = send_as_is(uppercasing, "/orders", user, method="DELETE")
    assert_refused(refused, 403, "insufficient_scope")
    assert send_as_is(uppercasing, "/orders", user, method="GET").text == "kept"
