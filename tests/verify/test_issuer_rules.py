"""Each issuer's own rules, over real HTTP on loopback: its audiences beside the resource's
(never another issuer's), the clients its tokens must be issued to, an optional ``aud``,
its provider checks after the standard ones, and what a refusal's log line says."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, client, inner_app
from guards import build_guard
from support import assert_refused, free_port, serve

from oauthguard import InvalidToken, Issuer
from oauthguard.testing import TestIssuer

BILLING = "https://api.test/billing"


@pytest.fixture(scope="module")
def issuers() -> Iterator[tuple[TestIssuer, TestIssuer]]:
    """Two issuers, each served by uvicorn on its own loopback port."""
    with ExitStack() as stack:
        pair = []
        for path in ("/a", "/b"):
            port = free_port()
            issuer = TestIssuer(f"http://127.0.0.1:{port}{path}", algorithms=("RS256",))
            stack.enter_context(serve(issuer.app, port=port))
            pair.append(issuer)
        yield pair[0], pair[1]


def api(*servers: str | Issuer, **options: Any) -> Any:
    return client(
        build_guard(
            inner_app(),
            resource=RESOURCE,
            authorization_servers=list(servers),
            clock=Clock(),
            # no pooled connection: each TestClient request runs in an event loop of its own
            http_client=httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)),
            **options,
        )
    )


def get(app: Any, issuer: TestIssuer, path: str = "/mcp", **token: Any) -> httpx.Response:
    token.setdefault("audience", RESOURCE)
    response: httpx.Response = app.get(path, headers=bearer(issuer.token(now=NOW, **token)))
    return response


def test_an_issuers_audiences_are_accepted_beside_the_resources_own_and_only_for_it(
    issuers: tuple[TestIssuer, TestIssuer],
) -> None:
    a, b = issuers
    app = api(Issuer(a.issuer, audiences=("api://a",)), Issuer(b.issuer, audiences=("api://b",)))
    assert get(app, a, audience="api://a").status_code == 200
    assert get(app, a).status_code == 200
    assert get(app, b, audience=["other", "api://b"]).status_code == 200
    for issuer, audience in ((a, "api://b"), (b, "api://a")):
        refused = get(app, issuer, audience=audience)
        params = assert_refused(refused, 401, "invalid_token")
        assert params["error_description"] == "the token is not meant for this resource (aud)"


def test_an_issuers_audience_counts_for_the_default_resource_on_its_path_only(
    issuers: tuple[TestIssuer, TestIssuer],
) -> None:
    a, b = issuers
    app = api(Issuer(a.issuer, audiences=("api://a",)), b.issuer, resources=[BILLING])
    assert get(app, a, audience="api://a").status_code == 200
    refused = assert_refused(get(app, a, "/billing", audience="api://a"), 401, "invalid_token")
    assert refused["error_description"] == f"the token is not meant for {BILLING} (aud)"
    assert get(app, a, "/billing", audience=BILLING).status_code == 404  # passed; no route
    assert_refused(get(app, b, audience="api://a"), 401, "invalid_token")


def test_the_token_must_be_issued_to_one_of_the_issuers_clients(
    issuers: tuple[TestIssuer, TestIssuer],
) -> None:
    a, b = issuers
    app = api(Issuer(a.issuer, clients=("orders-api", "orders-cli")), b.issuer)
    keycloak_shaped = {"client_id": None, "azp": "orders-api"}
    assert get(app, a, claims=keycloak_shaped).status_code == 200
    assert get(app, a, claims={"client_id": "orders-cli"}).status_code == 200
    params = assert_refused(get(app, a), 401, "invalid_token")
    assert params["error_description"] == (
        "the token was issued to the client 'test-client', which is not allowed here"
    )
    params = assert_refused(get(app, a, claims={"client_id": None}), 401, "invalid_token")
    assert (
        params["error_description"]
        == "the token was issued to no client, which is not allowed here"
    )
    assert get(app, b).status_code == 200  # the other issuer names no clients


def test_audience_required_false_passes_a_token_without_aud_but_not_one_with_another(
    issuers: tuple[TestIssuer, TestIssuer],
) -> None:
    a, b = issuers
    app = api(Issuer(a.issuer, audience_required=False), b.issuer)
    assert get(app, a, audience=None).status_code == 200
    assert_refused(get(app, a, audience="someone-else"), 401, "invalid_token")
    assert_refused(get(app, a, audience=[]), 401, "invalid_token")
    assert_refused(get(app, b, audience=None), 401, "invalid_token")


def test_checks_run_after_the_standard_checks_and_refuse_with_their_description(
    issuers: tuple[TestIssuer, TestIssuer],
) -> None:
    a, _ = issuers
    seen: list[Mapping[str, Any]] = []

    def access_tokens_only(header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        seen.append(claims)
        if claims.get("token_use") != "access":
            raise InvalidToken("the token is an ID token, not an access token (token_use)")

    app = api(Issuer(a.issuer, checks=(access_tokens_only,), clients=("test-client",)))
    assert get(app, a, claims={"token_use": "access"}).status_code == 200
    params = assert_refused(get(app, a, claims={"token_use": "id"}), 401, "invalid_token")
    assert params["error_description"] == (
        "the token is an ID token, not an access token (token_use)"
    )
    assert len(seen) == 2
    expired = {"token_use": "id", "exp": int(NOW) - 3600}
    for refused in (
        get(app, a, claims=expired),
        get(app, a, audience="someone-else"),
        get(app, a, claims={"client_id": "other"}),
        get(app, a, claims={"token_use": "id"}, headers={"kid": "unknown"}),
    ):
        assert_refused(refused, 401, "invalid_token")
    assert len(seen) == 2  # none of those reached the provider's check


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]


def test_a_refusals_log_names_what_the_token_carried_and_what_was_expected(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = issuers
    app = api(Issuer(a.issuer, clients=("orders-api",), audiences=("api://a",)), b.issuer)
    token = a.token(now=NOW, audience="account", claims={"client_id": None, "azp": "orders-api"})
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        assert_refused(app.get("/mcp", headers=bearer(token)), 401, "invalid_token")
    [line] = refusals(caplog)
    kid = a.default_kid["RS256"]
    assert f"iss={a.issuer!r} aud='account' azp='orders-api' kid={kid!r}" in line
    assert f"expected aud one of ['api://a', {RESOURCE!r}], client one of ['orders-api']" in line
    assert token not in line and token.split(".")[1] not in line
    assert "token sha256:" in line


def test_an_untrusted_issuers_log_names_the_issuers_expected(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = issuers
    app = api(a.issuer)
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        params = assert_refused(get(app, b), 401, "invalid_token")
    assert params["error_description"] == "the token's issuer is not trusted"
    [line] = refusals(caplog)
    assert f"iss={b.issuer!r}" in line
    assert f"expected iss one of [{a.issuer!r}]" in line


def test_values_from_the_token_are_bounded_and_escaped_in_the_log(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = issuers
    app = api(a.issuer)
    forged = "x\nrefused GET '/admin': granted " + "y" * 500
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        assert_refused(
            get(app, a, audience=[forged] * 10, claims={"azp": {"deep": forged}}),
            401,
            "invalid_token",
        )
    [line] = refusals(caplog)
    assert "\n" not in line
    assert "y" * 100 not in line
    assert len(line) < 1500
    assert "..." in line


def test_explain_adds_the_fix_to_the_log_line_and_never_changes_the_answer(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = issuers

    def keycloak_fix(header: Mapping[str, Any], claims: Mapping[str, Any], why: str) -> str | None:
        if claims.get("aud") == "account":
            return "add an audience mapper for the client\nto the client scope"
        return None

    def broken(header: Mapping[str, Any], claims: Mapping[str, Any], why: str) -> str | None:
        raise RuntimeError("explain is broken")

    app = api(Issuer(a.issuer, explain=keycloak_fix), Issuer(b.issuer, explain=broken))
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        assert_refused(get(app, a, audience="account"), 401, "invalid_token")
        assert_refused(get(app, b, audience="account"), 401, "invalid_token")
        assert get(app, a).status_code == 200
    first, second = refusals(caplog)
    assert first.endswith(
        f"; fix: add an audience mapper for the client?to the client scope; see {InvalidToken.docs}"
    )
    assert "fix:" not in second


def test_an_untrusted_issuer_is_explained_by_any_issuer_that_knows_it(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = issuers

    def other_version(header: Mapping[str, Any], claims: Mapping[str, Any], why: str) -> str | None:
        if claims.get("iss") == b.issuer:
            return "this is a token of the other endpoint; set accessTokenAcceptedVersion"
        return None

    app = api(Issuer(a.issuer, explain=other_version))
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        assert_refused(get(app, b), 401, "invalid_token")
    [line] = refusals(caplog)
    assert line.endswith(
        "fix: this is a token of the other endpoint; set accessTokenAcceptedVersion"
        f"; see {InvalidToken.docs}"
    )


@pytest.mark.parametrize("claim", ["aud", "iss", "client_id"])
def test_a_deeply_nested_claim_is_refused_as_invalid_token_not_as_a_failure(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture, claim: str
) -> None:
    a, _ = issuers
    nested: Any = "x"
    for _ in range(800):  # within what JSON parsing takes, beyond a recursive log line
        nested = [nested]
    app = api(Issuer(a.issuer))
    # no signature needs to verify: the issuer is refused (or the aud) before any key is used
    token = a.token(now=NOW, audience="someone-else", claims={claim: nested})
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        assert_refused(app.get("/mcp", headers=bearer(token)), 401, "invalid_token")
    assert "<list>" in refusals(caplog)[0]


def test_a_check_that_fails_unexpectedly_refuses_the_token_cleanly(
    issuers: tuple[TestIssuer, TestIssuer], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = issuers

    def broken(header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        if claims["token_use"] != "access":  # a claim this check took for granted
            raise InvalidToken("not an access token")

    app = api(Issuer(a.issuer, checks=(broken,)))
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        params = assert_refused(get(app, a), 401, "invalid_token")
        assert get(app, a, claims={"token_use": "access"}).status_code == 200
    assert params["error_description"] == "the token could not be checked by its issuer's rules"
    assert "Issuer(checks=...) failed" in caplog.text
