"""RFC 8414 authorization server metadata, with OIDC Discovery as fallback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from apps import Clock

from oauthguard._http.fetch import MAX_DOCUMENT_BYTES
from oauthguard._verify.discovery import AuthorizationServers, metadata_urls
from oauthguard._wire.errors import TemporarilyUnavailable

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("issuer", "urls"),
    [
        (
            "https://as.test",
            [
                "https://as.test/.well-known/oauth-authorization-server",
                "https://as.test/.well-known/openid-configuration",
            ],
        ),
        (
            "https://as.test/",
            [
                "https://as.test/.well-known/oauth-authorization-server",
                "https://as.test/.well-known/openid-configuration",
            ],
        ),
        (
            "https://as.test/tenant/1",
            [
                "https://as.test/.well-known/oauth-authorization-server/tenant/1",
                "https://as.test/.well-known/openid-configuration/tenant/1",
                "https://as.test/tenant/1/.well-known/openid-configuration",
            ],
        ),
        (
            "https://as.test/tenant/",
            [
                "https://as.test/.well-known/oauth-authorization-server/tenant",
                "https://as.test/.well-known/openid-configuration/tenant",
                "https://as.test/tenant/.well-known/openid-configuration",
            ],
        ),
        (
            "http://127.0.0.1:8080/realms/x",
            [
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server/realms/x",
                "http://127.0.0.1:8080/.well-known/openid-configuration/realms/x",
                "http://127.0.0.1:8080/realms/x/.well-known/openid-configuration",
            ],
        ),
    ],
)
def test_metadata_urls_path_insert_then_fall_back_to_oidc(issuer: str, urls: list[str]) -> None:
    assert metadata_urls(issuer) == urls


class MetadataServer:
    """Serves one document at one URL; 404 elsewhere; records what was asked."""

    def __init__(self, url: str, document: dict[str, Any]) -> None:
        self.url, self.document = url, document
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(str(request.url))
        if str(request.url) == self.url:
            return httpx.Response(200, json=self.document)
        return httpx.Response(404, text="not found")


def servers(server: MetadataServer, clock: Clock | None = None) -> AuthorizationServers:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AuthorizationServers(http, clock or Clock())


@pytest.mark.parametrize(
    ("issuer", "served_at"),
    [
        ("https://as.test", "https://as.test/.well-known/oauth-authorization-server"),
        ("https://as.test", "https://as.test/.well-known/openid-configuration"),
        ("https://as.test/tenant", "https://as.test/.well-known/oauth-authorization-server/tenant"),
        ("https://as.test/tenant", "https://as.test/.well-known/openid-configuration/tenant"),
        ("https://as.test/tenant", "https://as.test/tenant/.well-known/openid-configuration"),
        ("https://as.test/tenant/", "https://as.test/tenant/.well-known/openid-configuration"),
        ("https://as.test/", "https://as.test/.well-known/openid-configuration"),
    ],
)
async def test_the_metadata_is_found_where_the_issuer_serves_it(
    issuer: str, served_at: str
) -> None:
    document = {"issuer": issuer, "jwks_uri": "https://as.test/keys"}
    server = MetadataServer(served_at, document)
    found = servers(server)
    assert await found.get(issuer) == document
    assert server.asked[-1] == served_at
    assert server.asked == metadata_urls(issuer)[: len(server.asked)]
    assert await found.get(issuer) == document
    assert len(server.asked) == metadata_urls(issuer).index(served_at) + 1


@pytest.mark.parametrize(
    "claimed", ["https://evil.test", "https://as.test/", "https://AS.test", None]
)
async def test_a_document_for_another_issuer_is_refused(
    claimed: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    server = MetadataServer(
        "https://as.test/.well-known/oauth-authorization-server",
        {"issuer": claimed, "jwks_uri": "https://as.test/keys"},
    )
    with caplog.at_level("WARNING", logger="oauthguard"), pytest.raises(TemporarilyUnavailable):
        await servers(server).get("https://as.test")
    assert "is not 'https://as.test'" in caplog.text


@pytest.mark.parametrize(
    ("jwks_uri", "accepted"),
    [
        ("http://as.test/keys", False),
        ("ftp://as.test/keys", False),
        ("/keys", False),
        (42, False),
        ("https://as.test/keys", True),
        ("http://127.0.0.1:9/keys", True),
        ("http://localhost:9/keys", True),
        ("http://[::1]:9/keys", True),
    ],
)
async def test_a_non_https_jwks_uri_is_refused_except_on_loopback(
    jwks_uri: Any, accepted: bool
) -> None:
    document = {"issuer": "https://as.test", "jwks_uri": jwks_uri}
    found = servers(
        MetadataServer("https://as.test/.well-known/oauth-authorization-server", document)
    )
    if accepted:
        assert (await found.get("https://as.test"))["jwks_uri"] == jwks_uri
    else:
        with pytest.raises(TemporarilyUnavailable):
            await found.get("https://as.test")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(200, text="<html></html>"),
        httpx.Response(200, json=["issuer"]),
        httpx.Response(200, text="[" * 5000),
    ],
)
async def test_a_broken_metadata_response_is_temporarily_unavailable(
    response: httpx.Response,
) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response))
    with pytest.raises(TemporarilyUnavailable):
        await AuthorizationServers(http, Clock()).get("https://as.test")


async def test_a_failed_discovery_is_retried_only_after_a_pause() -> None:
    clock = Clock()
    server = MetadataServer(
        "https://as.test/.well-known/oauth-authorization-server", {"issuer": "https://other.test"}
    )
    found = servers(server, clock)
    with pytest.raises(TemporarilyUnavailable):
        await found.get("https://as.test")
    asked = len(server.asked)
    clock.advance(10)
    with pytest.raises(TemporarilyUnavailable) as again:
        await found.get("https://as.test")
    assert len(server.asked) == asked
    assert again.value.retry_after == 20
    server.document = {"issuer": "https://as.test", "jwks_uri": "https://as.test/k"}
    clock.advance(20)
    assert (await found.get("https://as.test"))["jwks_uri"] == "https://as.test/k"


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
async def test_an_unreachable_issuer_is_asked_once_not_at_every_fallback_url(
    error: type[httpx.TransportError],
) -> None:
    asked: list[str] = []

    def unreachable(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        raise error("no answer", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(unreachable))
    with pytest.raises(TemporarilyUnavailable):
        await AuthorizationServers(http, Clock()).get("https://as.test/tenant")
    assert asked == ["https://as.test/.well-known/oauth-authorization-server/tenant"]


async def test_the_metadata_is_discovered_again_after_max_age_and_kept_while_failing() -> None:
    clock = Clock()
    url = "https://as.test/.well-known/oauth-authorization-server"
    server = MetadataServer(url, {"issuer": "https://as.test", "jwks_uri": "https://as.test/1"})
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    found = AuthorizationServers(http, clock, max_age=3600, retry_after=30)
    assert (await found.get("https://as.test"))["jwks_uri"] == "https://as.test/1"
    server.document = {"issuer": "https://as.test", "jwks_uri": "https://as.test/2"}
    clock.advance(3599)
    assert (await found.get("https://as.test"))["jwks_uri"] == "https://as.test/1"
    clock.advance(1)
    assert (await found.get("https://as.test"))["jwks_uri"] == "https://as.test/2"
    assert len(server.asked) == 2
    server.url = "https://as.test/gone"
    clock.advance(3600)
    assert (await found.get("https://as.test"))["jwks_uri"] == "https://as.test/2"
    clock.advance(10)
    assert (await found.get("https://as.test"))["jwks_uri"] == "https://as.test/2"
    assert len(server.asked) == 2 + len(metadata_urls("https://as.test"))
    assert found.cached("https://as.test") == server.document


def oversized_metadata(streamed: bool) -> bytes | AsyncIterator[bytes]:
    """Valid metadata just over the cap, as one body or as a chunked stream."""
    document = json.dumps({"issuer": "https://as.test", "jwks_uri": "https://as.test/k"})
    body = document[:-1].encode() + b" " * (MAX_DOCUMENT_BYTES - len(document) + 1) + b"}"
    if not streamed:
        return body

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return chunks()


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_oversized_metadata_document_is_a_failed_fetch(
    streamed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def too_large(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=oversized_metadata(streamed))

    http = httpx.AsyncClient(transport=httpx.MockTransport(too_large))
    with caplog.at_level("WARNING", logger="oauthguard"), pytest.raises(TemporarilyUnavailable):
        await AuthorizationServers(http, Clock()).get("https://as.test")
    for url in metadata_urls("https://as.test"):
        assert (
            f"{url}: the response is larger than the limit of {MAX_DOCUMENT_BYTES} bytes"
            in caplog.text
        )
