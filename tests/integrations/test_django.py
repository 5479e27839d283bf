"""The guard in front of a real Django ASGI app over real HTTP: views read the token from the
ASGI scope, ``@token_required(...)`` requires scopes per view (sync, async, class-based), and
every refusal is the guard's own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import django
import httpx
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        ROOT_URLCONF="django_urls",
        ALLOWED_HOSTS=["127.0.0.1"],
        SECRET_KEY="tests only",
        DEBUG=False,
        INSTALLED_APPS=[],
        MIDDLEWARE=["oauthguard.django.RefusalMiddleware"],
    )
    django.setup()

# Imported once the settings are configured.
import django_urls
from django.core.asgi import get_asgi_application
from django.test import RequestFactory
from loopback import serve_nodelay
from support import assert_refused

from oauthguard import AccessToken, ConfigurationError, OAuthGuard, ResourceServer, require
from oauthguard.django import token_required
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.test/api"
METADATA = "https://api.test/.well-known/oauth-protected-resource/api"


def guarded(issuer: TestIssuer) -> OAuthGuard:
    """An asgi.py: the guard around Django's ASGI application."""
    server = ResourceServer(
        resource=RESOURCE, authorization_servers=[issuer.issuer], http_client=issuer.http_client()
    )
    return OAuthGuard(
        get_asgi_application(),
        server,
        public_paths=["/health", "/public/*"],
        rules={"/api/ruled": require("orders:read")},
    )


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
def base(issuer: TestIssuer) -> Iterator[str]:
    with serve_nodelay(guarded(issuer)) as url:
        yield url


def bearer(issuer: TestIssuer, scope: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(audience=RESOURCE, scope=scope)}"}


def refusal_parts(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (without the server's own) and body: what must equal the guard's."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in ("date", "server")]
    return response.status_code, sorted(headers), response.content


VIEWS = [
    ("GET", "/api/orders", "orders:read"),  # sync function view
    ("POST", "/api/orders/new", "orders:write"),  # async view, token_required(Requirement)
    ("GET", "/api/reports", "reports:read admin"),  # any_scopes
    ("GET", "/api/admin", "admin"),  # class-based view, decorated dispatch
    ("GET", "/api/async-admin", "admin"),  # async method of a class-based view
]


def test_no_token_is_the_guards_401(base: str) -> None:
    params = assert_refused(httpx.get(base + "/api/orders"), 401, None)
    assert params == {"resource_metadata": METADATA}


@pytest.mark.parametrize(("method", "path", "needed"), VIEWS)
def test_missing_scope_is_403_naming_the_views_scopes(
    base: str, issuer: TestIssuer, method: str, path: str, needed: str
) -> None:
    refused = httpx.request(method, base + path, headers=bearer(issuer, "other"))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == needed
    assert params["resource_metadata"] == METADATA


@pytest.mark.parametrize(("method", "path", "needed"), VIEWS)
def test_a_good_token_reaches_the_view_which_reads_it(
    base: str, issuer: TestIssuer, method: str, path: str, needed: str
) -> None:
    scope = needed.split()[-1]
    response = httpx.request(method, base + path, headers=bearer(issuer, scope))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "user-1", "scopes": [scope]}


def test_a_view_without_the_decorator_reads_the_token(base: str, issuer: TestIssuer) -> None:
    response = httpx.get(base + "/api/me", headers=bearer(issuer, "x"))
    assert response.json() == {"sub": "user-1", "scopes": ["x"]}


def test_a_decorators_refusal_is_exactly_the_guards_own(base: str, issuer: TestIssuer) -> None:
    """The same need, refused by the guard's path rule and by ``@token_required``: the same
    status, headers (WWW-Authenticate, Cache-Control, Content-Type...) and body."""
    headers = bearer(issuer, "other")
    by_rule = httpx.get(base + "/api/ruled", headers=headers)
    by_view = httpx.get(base + "/api/orders", headers=headers)
    assert by_rule.status_code == 403
    assert refusal_parts(by_view) == refusal_parts(by_rule)


@pytest.mark.parametrize("path", ["/api/by-hand", "/api/by-hand-async"])
def test_a_guard_error_raised_by_a_view_is_the_guards_refusal(
    base: str, issuer: TestIssuer, path: str
) -> None:
    """With ``RefusalMiddleware``; Django alone would answer 500."""
    params = assert_refused(
        httpx.get(base + path, headers=bearer(issuer)), 403, "insufficient_scope"
    )
    assert params["scope"] == "orders:own"


def test_public_paths_are_reachable_without_a_token(base: str) -> None:
    assert httpx.get(base + "/health").json() == {"auth": None}
    document = httpx.get(base + "/.well-known/oauth-protected-resource/api")
    assert document.json()["resource"] == RESOURCE


def test_the_decorator_on_a_public_path_still_refuses(base: str, issuer: TestIssuer) -> None:
    """On a public path the guard reads no token, so a decorated view there never runs."""
    for headers in ({}, bearer(issuer, "admin")):
        params = assert_refused(httpx.get(base + "/public/page", headers=headers), 401, None)
        assert params["scope"] == "admin"


def test_without_the_guard_in_front_a_decorated_view_fails_closed(
    caplog: pytest.LogCaptureFixture, issuer: TestIssuer
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="django.request"),
        serve_nodelay(get_asgi_application()) as url,
    ):
        response = httpx.get(url + "/api/orders", headers=bearer(issuer, "orders:read"))
        # Without the guard no path is public: access_token() never says "no token here".
        anonymous = httpx.get(url + "/health")
    assert response.status_code == 500
    assert "user-1" not in response.text and "Traceback" not in response.text
    assert "needs OAuthGuard in front of the app" in caplog.text
    assert anonymous.status_code == 500
    assert "access_token(request) at '/health' needs OAuthGuard in front" in caplog.text


def test_over_wsgi_a_decorated_view_fails_closed() -> None:
    request = RequestFactory().get("/api/orders")
    with pytest.raises(ConfigurationError, match="served over ASGI with OAuthGuard in front"):
        django_urls.list_orders(request)
    with pytest.raises(ConfigurationError, match="served over ASGI"):
        django_urls.me(request)


def test_token_required_takes_require_arguments_or_a_requirement_not_both() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        token_required(require("a"), max_age=5)
    with pytest.raises(ConfigurationError, match="scopes"):
        token_required(django_urls.me)  # type: ignore[arg-type]

    def view(request: Any) -> Any:
        """A view."""

    assert token_required("a")(view).__doc__ == "A view."


class ListScopes:
    """A verifier whose tokens carry their scopes as a list, not a set: a view's check of
    them fails, unexpectedly."""

    async def verify(self, token: str) -> AccessToken:
        scopes: Any = ["orders:read"]
        return AccessToken("user-1", None, scopes, (RESOURCE,), None, None)


def test_a_failure_while_checking_is_a_503_never_a_pass() -> None:
    server = ResourceServer(
        resource=RESOURCE, authorization_servers=["https://issuer.test"], verifier=ListScopes()
    )
    with serve_nodelay(OAuthGuard(get_asgi_application(), server)) as url:
        response = httpx.get(url + "/api/orders", headers={"Authorization": "Bearer opaque"})
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"


def test_clients_and_claims_are_403_with_no_scope_unless_scopes_miss_too(
    base: str, issuer: TestIssuer
) -> None:
    def sent(scope: str, **claims: Any) -> dict[str, str]:
        token = issuer.token(audience=RESOURCE, scope=scope, claims=claims)
        return {"Authorization": f"Bearer {token}"}

    url = base + "/api/console"
    params = assert_refused(httpx.get(url, headers=sent("orders:read")), 403, "insufficient_scope")
    assert "scope" not in params
    assert params["error_description"] == (
        "the token's client 'test-client' is not one of 'console'; the token has no claim 'tenant'"
    )
    refused = httpx.get(url, headers=sent("other", client_id="console", tenant=1))
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == "orders:read"
    assert params["error_description"] == (
        "this operation needs the scopes: orders:read; the token's claim 'tenant' does not "
        "hold 'acme'"
    )
    ok = httpx.get(url, headers=sent("orders:read", client_id="console", tenant="acme"))
    assert ok.status_code == 200, ok.text
    # RFC 8693 §4.1: only the named actor may act for the subject
    good = {"client_id": "console", "tenant": "acme"}
    acted = httpx.get(url, headers=sent("orders:read", **good, act={"sub": "mcp-server"}))
    assert acted.status_code == 200, acted.text
    other = httpx.get(url, headers=sent("orders:read", **good, act={"sub": "intruder"}))
    params = assert_refused(other, 403, "insufficient_scope")
    assert "intruder" in params["error_description"] and "scope" not in params


def test_token_required_validates_roles_clients_and_claims() -> None:
    with pytest.raises(ConfigurationError, match="roles"):
        token_required(roles="")
    with pytest.raises(ConfigurationError, match="claims"):
        token_required(claims={"tenant": {"id": 1}})
    with pytest.raises(ConfigurationError, match="not both"):
        token_required(require("a"), roles="admin")
