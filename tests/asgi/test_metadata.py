"""RFC 9728 protected-resource metadata: its URL, its document, CORS."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from apps import client
from guards import build_guard
from starlette.applications import Starlette

from oauthguard._asgi.metadata import metadata_path, metadata_url


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("https://h.test/mcp", "https://h.test/.well-known/oauth-protected-resource/mcp"),
        ("https://h.test/mcp/", "https://h.test/.well-known/oauth-protected-resource/mcp"),
        ("https://h.test/a/b", "https://h.test/.well-known/oauth-protected-resource/a/b"),
        ("https://h.test", "https://h.test/.well-known/oauth-protected-resource"),
        ("https://h.test/", "https://h.test/.well-known/oauth-protected-resource"),
        ("https://h.test:8443/mcp", "https://h.test:8443/.well-known/oauth-protected-resource/mcp"),
        ("https://h.test/api?v=1", "https://h.test/.well-known/oauth-protected-resource/api?v=1"),
    ],
)
def test_the_well_known_segment_is_inserted_between_host_and_path(resource: str, url: str) -> None:
    assert metadata_url(resource) == url
    assert metadata_path(resource) == urlsplit(url).path


def protected(resource: str, **options: Any) -> Any:
    guard = build_guard(
        Starlette(),
        resource=resource,
        authorization_servers=["https://as.test", "https://as2.test/t"],
        **options,
    )
    return client(guard)


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ("https://api.test/mcp", "/.well-known/oauth-protected-resource/mcp"),
        ("https://api.test/mcp/", "/.well-known/oauth-protected-resource/mcp"),
        ("https://api.test", "/.well-known/oauth-protected-resource"),
        ("https://api.test/", "/.well-known/oauth-protected-resource"),
    ],
)
def test_the_document_is_served_at_its_path_with_the_identical_resource(
    resource: str, path: str
) -> None:
    response = protected(resource).get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == {
        "resource": resource,
        "authorization_servers": ["https://as.test", "https://as2.test/t"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"],
    }
    # Zero-valued fields are omitted: false dpop_bound_access_tokens_required, no scopes.
    assert protected(resource, dpop="disabled").get(path).json() == {
        "resource": resource,
        "authorization_servers": ["https://as.test", "https://as2.test/t"],
        "bearer_methods_supported": ["header"],
    }


def test_optional_fields_appear_when_configured() -> None:
    api = protected(
        "https://api.test/mcp",
        scopes_supported=["read", "write"],
        resource_name="Orders API",
        resource_documentation="https://api.test/docs",
    )
    document = api.get("/.well-known/oauth-protected-resource/mcp").json()
    assert document["scopes_supported"] == ["read", "write"]
    assert document["resource_name"] == "Orders API"
    assert document["resource_documentation"] == "https://api.test/docs"
    assert next(iter(document)) == "resource"


def test_the_challenge_points_at_the_document() -> None:
    api = protected("https://api.test/mcp")
    refused = api.get("/mcp")
    assert refused.status_code == 401
    url = "https://api.test/.well-known/oauth-protected-resource/mcp"
    assert refused.headers["www-authenticate"].startswith(f'Bearer resource_metadata="{url}"')
    assert "WWW-Authenticate" in refused.headers["access-control-expose-headers"]
    assert api.get(url).json()["resource"] == "https://api.test/mcp"


def test_cors_preflight_is_answered() -> None:
    response = protected("https://api.test/mcp").options(
        "/.well-known/oauth-protected-resource/mcp",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "mcp-protocol-version"
    assert response.content == b""


def test_head_gives_the_headers_without_the_body() -> None:
    api = protected("https://api.test/mcp")
    get = api.get("/.well-known/oauth-protected-resource/mcp")
    head = api.head("/.well-known/oauth-protected-resource/mcp")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(method: str) -> None:
    response = protected("https://api.test/mcp").request(
        method, "/.well-known/oauth-protected-resource/mcp"
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


def test_the_metadata_of_another_path_is_not_served_and_needs_a_token() -> None:
    response = protected("https://api.test/mcp").get("/.well-known/oauth-protected-resource")
    assert response.status_code == 401
