"""Bad configuration raises ``ConfigurationError`` at construction, naming the argument."""

from __future__ import annotations

from typing import Any

import pytest
from guards import build_guard
from starlette.applications import Starlette

from oauthguard import ConfigurationError

GOOD: dict[str, Any] = {
    "resource": "https://api.test/mcp",
    "authorization_servers": ["https://as.test"],
}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"resource": "/mcp"}, "resource"),
        ({"resource": "api.test/mcp"}, "resource"),
        ({"resource": "https://api.test/mcp#frag"}, "resource"),
        ({"resource": "https://api.test/mcp#"}, "resource"),
        ({"resource": "http://api.test/mcp"}, "resource"),
        ({"resource": "ftp://api.test/mcp"}, "resource"),
        ({"resource": 42}, "resource"),
        ({"authorization_servers": []}, "authorization_servers"),
        ({"authorization_servers": ["http://as.test"]}, "authorization_servers"),
        ({"authorization_servers": ["as.test"]}, "authorization_servers"),
        ({"authorization_servers": ["https://as.test?tenant=1"]}, "authorization_servers"),
        ({"authorization_servers": ["https://as.test#x"]}, "authorization_servers"),
        ({"authorization_servers": [""]}, "authorization_servers"),
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"algorithms": ["RS256", "none"]}, "algorithms"),
        ({"algorithms": ["RS256", "HS512"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"algorithms": ["rs256"]}, "algorithms"),
        (
            {
                "jwks_uri": "https://as.test/jwks",
                "authorization_servers": ["https://a.test", "https://b.test"],
            },
            "jwks_uri",
        ),
        ({"jwks_uri": "http://as.test/jwks"}, "jwks_uri"),
        ({"public_paths": ["health"]}, "public_paths"),
        ({"public_paths": ["/a*b"]}, "public_paths"),
        ({"public_paths": [""]}, "public_paths"),
        ({"leeway": -1}, "leeway"),
        ({"leeway": "30"}, "leeway"),
        ({"jwks_cache_ttl": -5}, "jwks_cache_ttl"),
        ({"jwks_refresh_cooldown": None}, "jwks_refresh_cooldown"),
        ({"jwks_max_stale": True}, "jwks_max_stale"),
        ({"max_token_bytes": 10}, "max_token_bytes"),
        ({"max_token_bytes": 1.5}, "max_token_bytes"),
        ({"token_cache_size": -1}, "token_cache_size"),
        ({"audiences": [""]}, "audiences"),
        ({"scopes_supported": [1]}, "scopes_supported"),
        ({"scopes_claim": [None]}, "scopes_claim"),
        ({"resource_name": ""}, "resource_name"),
        ({"resource_name": "line\nbreak"}, "resource_name"),
        ({"resource_documentation": "docs"}, "resource_documentation"),
        ({"realm": 'a"\r\n'}, "realm"),
        ({"http_timeout": 0}, "http_timeout"),
    ],
)
def test_bad_configuration_names_the_argument(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        build_guard(Starlette(), **{**GOOD, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"resource": "http://127.0.0.1:8000/mcp"},
        {"resource": "http://localhost/mcp"},
        {"resource": "https://api.test/"},
        {"authorization_servers": "https://as.test"},
        {"authorization_servers": ["http://127.0.0.1:9000/realms/x", "https://as.test/"]},
        {"algorithms": ["ES256"]},
        {"algorithms": "EdDSA"},
        {"jwks_uri": "https://as.test/jwks"},
        {"public_paths": ["/health", "/docs/*", "/*"]},
        {"audiences": "urn:api"},
        {"resource_name": "My API", "resource_documentation": "https://api.test/docs"},
    ],
)
def test_good_configuration_is_accepted(changes: dict[str, Any]) -> None:
    build_guard(Starlette(), **{**GOOD, **changes})


def test_the_settings_are_normalised() -> None:
    config = build_guard(
        Starlette(), **GOOD, audiences="urn:api", algorithms="ES256", scopes_claim="scp"
    ).config
    assert config.audiences == frozenset({"urn:api"})
    assert config.algorithms == ("ES256",)
    assert config.scopes_claim == ("scp",)
    default = build_guard(Starlette(), **GOOD).config
    assert default.audiences == frozenset({GOOD["resource"]})
    assert (
        default.leeway,
        default.jwks_cache_ttl,
        default.jwks_refresh_cooldown,
        default.jwks_max_stale,
        default.max_token_bytes,
        default.token_cache_size,
        default.http_timeout,
    ) == (30, 600, 30, 86400, 16384, 10_000, 5.0)
