"""A ConfigurationError names the argument, the reason and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from oauthguard import ConfigurationError, ResourceServer, require

ISSUER = "https://as.example.com"
RESOURCE = "https://api.example.com/orders"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: require(audience=1), r"require\(audience=\.\.\.\) .* like 'https://"),
        (lambda: require(max_age=-1), r"require\(max_age=\.\.\.\) .* like 300\), got -1"),
        (
            lambda: ResourceServer(resource=RESOURCE, authorization_servers=[ISSUER, ISSUER]),
            r"authorization_servers: an issuer is given twice; list each issuer once",
        ),
        (
            lambda: ResourceServer(resource=RESOURCE, authorization_servers=ISSUER, user_factory=1),
            r"ResourceServer\(user_factory=\.\.\.\) must be a callable",
        ),
    ],
)
def test_the_message_names_argument_reason_and_fix(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_a_keyword_require_does_not_take_is_refused_not_ignored() -> None:
    # The keywords are typed (a TypedDict), but only a type checker reads types: at run time
    # a misspelt one would otherwise be dropped, and the operation left open to any token.
    options: dict[str, Any] = {"scope": "orders:write"}
    with pytest.raises(ConfigurationError) as raised:
        require(**options)
    assert str(raised.value) == (
        "require(...) takes no scope (the scopes are the first argument, or scopes=); its "
        "keyword arguments are scopes, acr_values, actors, any_scopes, audience, claims, "
        "clients, max_age, roles"
    )
    with pytest.raises(ConfigurationError, match=r"takes no role, rolse; its keyword"):
        require("orders:read", **{"rolse": ["admin"], "role": "admin"})


def test_the_framework_idioms_refuse_a_keyword_require_does_not_take() -> None:
    pytest.importorskip("django")
    pytest.importorskip("litestar")
    from oauthguard.django import token_required
    from oauthguard.litestar import requires

    options: dict[str, Any] = {"clients_ids": ["web"]}
    for idiom in (token_required, requires):
        with pytest.raises(ConfigurationError, match="takes no clients_ids"):
            idiom(**options)
