"""Requests with many headers: the guard reads each header once, with constant work, and
stops at the second Authorization or DPoP header (RFC 6750 §3.1, RFC 9449 §4.3).

The cost is checked by counting the headers read (a header list that counts its items, an
input like any other), never by timing; benchmarks/ measures the time.
"""

from __future__ import annotations

import http.client
import importlib.util
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from dpop_setup import Setup
from inprocess import messages_of
from support import assert_refused, serve

from oauthguard._dpop.htu import parse_networks, request_uri
from oauthguard._dpop.nonces import nonce_headers
from oauthguard._wire.credentials import extract
from oauthguard._wire.errors import InvalidDPoPProof, InvalidRequest, MissingCredentials

pytestmark = pytest.mark.anyio

FLOOD = 60_000
PROOF = b"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"


class CountingHeaders(list[tuple[bytes, bytes]]):
    """A header list that counts how many of its items were read."""

    reads = 0

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for item in super().__iter__():
            self.reads += 1
            yield item


def headers(*items: tuple[bytes, bytes]) -> CountingHeaders:
    return CountingHeaders(items)


@pytest.mark.parametrize("dpop", [True, False])
def test_two_dpop_headers_end_the_read_of_a_flood(dpop: bool) -> None:
    flood = headers(*[(b"dpop", b"x")] * FLOOD, (b"authorization", b"DPoP abc"))
    if dpop:
        with pytest.raises(InvalidDPoPProof, match="more than one DPoP header"):
            extract(flood, b"", 16384, dpop=True)
        assert flood.reads == 2
    else:  # DPoP headers mean nothing here: skipped, one pass, the token read
        assert extract(flood, b"", 16384).token == "abc"
        assert flood.reads == FLOOD + 1


def test_two_authorization_headers_end_the_read_of_a_flood() -> None:
    flood = headers(*[(b"authorization", b"Bearer abc")] * FLOOD)
    with pytest.raises(InvalidRequest, match="more than one Authorization header"):
        extract(flood, b"", 16384, dpop=True)
    assert flood.reads == 2


def test_other_headers_are_each_read_once() -> None:
    flood = headers(
        *[(b"x-padding", b"x")] * FLOOD, (b"dpop", PROOF), (b"authorization", b"DPoP abc")
    )
    credentials = extract(flood, b"", 16384, dpop=True)
    assert credentials == ("DPoP", "abc", (PROOF,))
    assert flood.reads == FLOOD + 2
    with pytest.raises(MissingCredentials):
        extract(headers(*[(b"x-padding", b"x")] * FLOOD), b"", 16384, dpop=True)


def _scope(items: CountingHeaders, client: str = "127.0.0.1") -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "https",
        "method": "GET",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "root_path": "",
        "query_string": b"",
        "headers": items,
        "server": ("api.test", 443),
        "client": (client, 50000),
    }


class CountingValue(bytes):
    """A header value that counts how often it is decoded."""

    decoded = 0

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        CountingValue.decoded += 1
        return super().decode(encoding, errors)


def test_the_request_uri_reads_each_header_once() -> None:
    forwarded = [(b"forwarded", b"for=10.0.0.1, for=10.0.0.1")] * FLOOD
    flood = headers((b"host", b"api.test"), *forwarded, (b"forwarded", b"for=1.2.3.4;host=x"))
    assert request_uri(_scope(flood), ()) == "https://api.test/mcp"
    assert flood.reads <= FLOOD + 2  # with no trusted proxy, the first Host header ends it
    networks = parse_networks(["10.0.0.0/8"])
    flood = headers((b"host", b"api.test"), *forwarded, (b"forwarded", b"for=1.2.3.4;host=x"))
    assert request_uri(_scope(flood, client="10.0.0.1"), networks) == "https://x/mcp"
    assert flood.reads == FLOOD + 2


@pytest.mark.parametrize("separate", [True, False])
def test_forwarded_elements_a_client_sent_are_not_read_past_an_untrusted_for(
    separate: bool,
) -> None:
    # RFC 7239 §5: our proxy (trusted) appends the element naming the client it saw; what
    # the client sent before it is left unread, however long.
    client = b"for=10.0.0.1;host=evil.test"
    if separate:
        sent = [CountingValue(client) for _ in range(FLOOD)]
    else:
        sent = [CountingValue(b", ".join([client] * FLOOD))]
    ours = CountingValue(b"for=203.0.113.7;proto=https;host=api.example")
    items = [(b"host", b"internal:8000"), *[(b"forwarded", value) for value in sent]]
    CountingValue.decoded = 0
    scope = _scope(headers(*items, (b"forwarded", ours)), client="10.0.0.1")
    networks = parse_networks(["10.0.0.0/8"])
    assert request_uri(scope, networks) == "https://api.example/mcp"
    assert CountingValue.decoded == 1  # our proxy's element only


async def _asgi_status(app: Any, scope: dict[str, Any]) -> tuple[int, dict[bytes, bytes]]:
    sent = await messages_of(app, scope)
    return sent[0]["status"], dict(sent[0]["headers"])


@pytest.mark.parametrize("authorization", [None, b"Bearer abc", b"DPoP abc"])
async def test_the_guard_stops_at_the_second_dpop_header(authorization: bytes | None) -> None:
    setup = Setup()
    given = [(b"authorization", authorization)] if authorization else []
    flood = headers((b"host", b"api.test"), *[(b"dpop", b"x")] * FLOOD, *given)
    status, sent = await _asgi_status(setup.app, _scope(flood))
    assert status == 401
    assert b'error="invalid_dpop_proof"' in sent[b"www-authenticate"]
    assert flood.reads == 3


async def test_a_guard_without_dpop_reads_a_dpop_flood_once_and_ignores_it() -> None:
    setup = Setup(dpop="disabled")
    flood = headers((b"host", b"api.test"), *[(b"dpop", b"x")] * FLOOD)
    status, sent = await _asgi_status(setup.app, _scope(flood))
    assert status == 401
    assert sent[b"www-authenticate"].startswith(b"Bearer ")
    assert b"error=" not in sent[b"www-authenticate"]
    assert flood.reads == FLOOD + 1


def _http_implementation() -> dict[str, Any]:
    """httptools when installed (it takes any number of headers), else h11 allowed to."""
    if importlib.util.find_spec("httptools") is not None:
        return {"http": "httptools"}
    return {"http": "h11", "h11_max_incomplete_event_size": 4 * 1024 * 1024}


def _get_mcp(base: str, header_lines: bytes) -> httpx.Response:
    """GET /mcp on a socket of its own, ``header_lines`` written as they are. The flood is
    built once as bytes: httpx and h11 spent ~0.2 s of CPU a request normalizing sixty
    thousand headers in Python, the server's work under test being a fraction of that."""
    address = urlsplit(base)
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        head = f"GET /mcp HTTP/1.1\r\nhost: {address.netloc}\r\n".encode()
        sock.sendall(head + header_lines + b"\r\n")
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read())


@pytest.mark.parametrize("authorization", [None, b"Bearer abc"])
def test_sixty_thousand_dpop_headers_over_uvicorn_are_one_refusal(
    authorization: bytes | None,
) -> None:
    setup = Setup()
    sent = b"dpop: x\r\n" * FLOOD
    if authorization is not None:
        sent += b"authorization: " + authorization + b"\r\n"
    with serve(setup.app, **_http_implementation()) as base:
        response = _get_mcp(base, sent)
        assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
        assert "more than one DPoP header" in response.json()["error_description"]
        assert _get_mcp(base, b"").status_code == 401  # the server goes on serving


def test_the_apps_exposed_headers_are_joined_once_with_ours() -> None:
    app_headers = [(b"Access-Control-Expose-Headers", f"X-{n}".encode()) for n in range(1000)]
    headers = nonce_headers([*app_headers, (b"cache-control", b"max-age=60")], "n0nce")
    assert headers[:2] == [(b"dpop-nonce", b"n0nce"), (b"cache-control", b"no-store")]
    [(name, exposed)] = headers[2:]
    assert name == b"access-control-expose-headers"
    names = [f"X-{n}" for n in range(1000)]
    assert exposed.decode().split(", ") == [*names, "DPoP-Nonce", "WWW-Authenticate"]
