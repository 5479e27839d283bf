"""The request flow of ``OAuthGuard``: credentials, refusals, request.auth, logs, the cache."""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

import anyio
import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, guard
from cryptography.hazmat.primitives.asymmetric import ec
from guards import build_guard
from inprocess import InProcessClient
from support import Switchable, assert_refused

from oauthguard import AccessToken, InvalidToken, OAuthGuard
from oauthguard.testing import TestIssuer, sign_jws

# Every request here runs in process (inprocess.py): the guard's flow is tested, not a transport.

ISSUER = TestIssuer(algorithms=("RS256", "ES256"))


def good(**options: Any) -> str:
    options.setdefault("scope", "read write")
    return ISSUER.token(audience=RESOURCE, now=NOW, **options)


@pytest.fixture
def api() -> Any:
    return InProcessClient(guard(ISSUER, Clock()))


# -- credentials (RFC 6750 §2.1) ---------------------------------------------------------------


def test_no_credentials_is_401_without_error(api: Any) -> None:
    params = assert_refused(api.get("/mcp"), 401, None)
    assert params == {
        "resource_metadata": "https://api.test/.well-known/oauth-protected-resource/mcp"
    }


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Negotiate abc", "Token abc"])
def test_another_scheme_is_401_without_error(api: Any, value: str) -> None:
    assert_refused(api.get("/mcp", headers={"Authorization": value}), 401, None)


def test_the_scheme_is_case_insensitive(api: Any) -> None:
    response = api.get("/mcp", headers={"Authorization": f"bEARER {good()}"})
    assert response.status_code == 200
    assert response.json()["scheme"] == "Bearer"


def test_two_authorization_headers_are_400_invalid_request(api: Any) -> None:
    response = api.get(
        "/mcp",
        headers=[("Authorization", f"Bearer {good()}"), ("Authorization", f"Bearer {good()}")],
    )
    params = assert_refused(response, 400, "invalid_request")
    assert "more than one Authorization header" in params["error_description"]


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "bearer    "])
def test_bearer_with_no_token_is_400_invalid_request(api: Any, value: str) -> None:
    assert_refused(api.get("/mcp", headers={"Authorization": value}), 400, "invalid_request")


@pytest.mark.parametrize(
    "value",
    ["Bearer a b", "Bearer a,b", 'Bearer "abc"', "Bearer\tabc", "Bearer =abc", "Bearer abc=def"],
)
def test_a_malformed_value_is_400_invalid_request(api: Any, value: str) -> None:
    assert_refused(api.get("/mcp", headers={"Authorization": value}), 400, "invalid_request")


def test_a_query_string_token_alone_is_never_accepted(api: Any) -> None:
    assert_refused(api.get("/mcp", params={"access_token": good()}), 401, None)


def test_a_query_string_token_with_a_header_token_is_400(api: Any) -> None:
    response = api.get("/mcp", params={"access_token": good()}, headers=bearer(good()))
    params = assert_refused(response, 400, "invalid_request")
    assert "query string" in params["error_description"]


def test_a_form_body_token_is_never_accepted(api: Any) -> None:
    response = api.post("/mcp", data={"access_token": good()})
    assert_refused(response, 401, None)


class Counting:
    """A TokenVerifier that counts the calls it passes on to the real one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def verify(self, token: str) -> AccessToken:
        self.calls += 1
        result: AccessToken = await self.inner.verify(token)
        return result


def counting_guard(clock: Clock, **options: Any) -> tuple[OAuthGuard, Counting]:
    counter = Counting(guard(ISSUER, clock).server.verifier)
    return guard(ISSUER, clock, verifier=counter, **options), counter


@pytest.mark.parametrize("size", [16 * 1024 + 1, 200_000])
def test_an_oversized_token_is_401_invalid_token_without_parsing(size: int) -> None:
    app, counter = counting_guard(Clock())
    oversized = "A" * size
    params = assert_refused(
        InProcessClient(app).get("/mcp", headers=bearer(oversized)), 401, "invalid_token"
    )
    assert "longer than 16384 bytes" in params["error_description"]
    assert counter.calls == 0


def test_a_200_kb_header_of_junk_is_refused_the_same_way(api: Any) -> None:
    junk = ("Bearer " + "\u00e9!" * 100_000).encode("latin-1")
    response = api.get("/mcp", headers={"Authorization": junk})
    assert_refused(response, 401, "invalid_token")


def test_max_token_bytes_is_configurable() -> None:
    token = good()
    small = InProcessClient(guard(ISSUER, Clock(), max_token_bytes=len(token) - 1))
    params = assert_refused(small.get("/mcp", headers=bearer(token)), 401, "invalid_token")
    assert f"longer than {len(token) - 1} bytes" in params["error_description"]
    exact = InProcessClient(guard(ISSUER, Clock(), max_token_bytes=len(token)))
    assert exact.get("/mcp", headers=bearer(token)).status_code == 200


# -- what the application sees ----------------------------------------------------------------


def test_request_auth_and_request_user_describe_the_token(api: Any) -> None:
    response = api.get("/mcp", headers=bearer(good(scope="read  write")))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "user-1",
        "client_id": "test-client",
        "scopes": ["read", "write"],
        "roles": [],
        "audience": [RESOURCE],
        "issuer": ISSUER.issuer,
        "expires_at": NOW + 300,
        "scheme": "Bearer",
        "user": "user-1",
        "authenticated": True,
    }


@pytest.mark.parametrize("claims", [{"scp": ["read", "write"]}, {"scp": "read write"}])
def test_scopes_come_from_scope_or_scp(api: Any, claims: dict[str, Any]) -> None:
    token = ISSUER.token(audience=RESOURCE, now=NOW, claims=claims)
    assert api.get("/mcp", headers=bearer(token)).json()["scopes"] == ["read", "write"]


def test_a_scope_claim_of_the_wrong_type_is_invalid(api: Any) -> None:
    token = ISSUER.token(audience=RESOURCE, now=NOW, claims={"scope": {"read": True}})
    assert_refused(api.get("/mcp", headers=bearer(token)), 401, "invalid_token")


def test_starlette_requires_keeps_working(api: Any) -> None:
    assert api.get("/read", headers=bearer(good(scope="read"))).text == "read ok"
    assert api.get("/read", headers=bearer(good(scope="write"))).status_code == 403


def test_public_paths_exact_and_prefix_need_no_token() -> None:
    api = InProcessClient(guard(ISSUER, Clock(), public_paths=["/health", "/docs/*"]))
    assert api.get("/health").json() == {"authenticated": False}
    assert api.get("/docs/a/b").json() == {"authenticated": False}
    assert_refused(api.get("/health/x"), 401, None)
    assert_refused(api.get("/mcp"), 401, None)
    # A bad token on a public path does not matter: the path needs none.
    assert api.get("/health", headers={"Authorization": "Bearer x y"}).status_code == 200


async def status_of(app: Any, path: str, root_path: str = "") -> int:
    """Call the app with an ASGI scope as a server builds it (an HTTP client would resolve
    dot segments itself, and puts no root_path)."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "scheme": "https",
        "http_version": "1.1",
        "headers": [(b"host", b"api.test")],
        "server": ("api.test", 443),
    }
    await app(scope, receive, send)
    status: int = messages[0]["status"]
    return status


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/docs/../mcp", "/docs/./../mcp", "/docs/a/..", "/docs/."])
async def test_a_public_prefix_never_covers_dot_segments(path: str) -> None:
    app = guard(ISSUER, Clock(), public_paths=["/docs/*"])
    assert await status_of(app, path) == 400  # not in normal form: refused before matching


@pytest.mark.anyio
async def test_public_paths_name_the_paths_the_app_routes_behind_a_root_path() -> None:
    # uvicorn --root-path /api puts the root path in scope["path"]; the app routes /docs.
    app = guard(ISSUER, Clock(), public_paths=["/health", "/docs/*"])
    assert await status_of(app, "/api/health", root_path="/api") == 200
    assert await status_of(app, "/api/docs/x", root_path="/api") == 200
    assert await status_of(app, "/api/mcp", root_path="/api") == 401
    assert await status_of(app, "/apix/health", root_path="/api") == 401
    assert await status_of(app, "/api/health", root_path="") == 401


# -- failures inside the guard and in the app -------------------------------------------------


class CertificateBound:
    """A custom verifier whose tokens are bound to a client certificate (RFC 8705)."""

    async def verify(self, token: str) -> AccessToken:
        return AccessToken(
            subject="u",
            client_id="c",
            scopes=frozenset(),
            audience=(),
            issuer=None,
            expires_at=NOW + 60,
            claims={"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9lt"}},
        )


def test_a_custom_verifiers_certificate_bound_token_is_refused_as_bearer() -> None:
    api = InProcessClient(guard(ISSUER, Clock(), verifier=CertificateBound()))
    params = assert_refused(api.get("/mcp", headers=bearer("opaque")), 401, "invalid_token")
    assert "client certificate (x5t#S256)" in params["error_description"]


class Exploding:
    async def verify(self, token: str) -> AccessToken:
        raise RuntimeError(f"database password is hunter2; token {token}")


def test_a_verifier_that_raises_is_503_never_500_never_a_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = InProcessClient(guard(ISSUER, Clock(), verifier=Exploding()))
    token = good()
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        response = api.get("/mcp", headers=bearer(token))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "temporarily_unavailable"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    # The log has the traceback for the operator, with the token replaced by its digest.
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text
    assert hashlib.sha256(token.encode()).hexdigest()[:12] in caplog.text
    for part in token.split("."):
        assert part not in caplog.text


class ReturnsNothing:
    async def verify(self, token: str) -> Any:
        return None


def test_a_verifier_that_returns_garbage_is_503() -> None:
    api = InProcessClient(guard(ISSUER, Clock(), verifier=ReturnsNothing()))
    assert api.get("/mcp", headers=bearer(good())).status_code == 503


def test_an_exception_of_the_app_itself_is_the_apps_own_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = guard(ISSUER, Clock())
    with (
        caplog.at_level(logging.INFO, logger="oauthguard"),
        pytest.raises(RuntimeError, match="the application itself failed"),
    ):
        InProcessClient(app).get("/boom", headers=bearer(good()))
    assert "refused" not in caplog.text
    response = InProcessClient(app, raise_server_exceptions=False).get(
        "/boom", headers=bearer(good())
    )
    assert response.status_code == 500
    assert "www-authenticate" not in response.headers


def test_no_keys_at_all_is_503_with_retry_after_never_401() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    api = InProcessClient(guard(ISSUER, Clock(), http_client=http))
    for _ in range(2):
        response = api.get("/mcp", headers=bearer(good()))
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["error"] == "temporarily_unavailable"
        assert "www-authenticate" not in response.headers
        assert response.headers["cache-control"] == "no-store"


# -- logs -------------------------------------------------------------------------------------


def test_logs_say_why_with_a_digest_and_never_the_token(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    expired = good(expires_in=-100)
    wrong_aud = ISSUER.token(audience="https://else.test", now=NOW)
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        api.get("/mcp")
        api.get("/mcp", headers=bearer(expired))
        api.get("/mcp", headers=bearer(wrong_aud))
        api.get("/mcp", headers=bearer(good()))
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3
    assert "no credentials" in refusals[0]
    assert "expired" in refusals[1]
    assert hashlib.sha256(expired.encode()).hexdigest()[:12] in refusals[1]
    assert "aud" in refusals[2]
    for token in (expired, wrong_aud, good()):
        for part in token.split("."):
            assert part not in caplog.text


def test_a_path_cannot_forge_log_lines(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        assert api.get("/mcp%0Arefused GET /admin: forged").status_code == 400
    [refusal] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "\n" not in refusal
    assert "'/mcp\\nrefused GET /admin: forged'" in refusal


# -- the cache of verified tokens and the hot path --------------------------------------------


def test_a_repeated_token_is_verified_once() -> None:
    app, counter = counting_guard(Clock())
    api, token = InProcessClient(app), good()
    for _ in range(5):
        assert api.get("/mcp", headers=bearer(token)).status_code == 200
    assert counter.calls == 1


def test_a_cached_token_is_refused_once_it_expires() -> None:
    clock = Clock()
    app, counter = counting_guard(clock)
    api, token = InProcessClient(app), good(expires_in=60)
    assert api.get("/mcp", headers=bearer(token)).status_code == 200
    clock.advance(60 + 29)  # still within the leeway
    assert api.get("/mcp", headers=bearer(token)).status_code == 200
    assert counter.calls == 1
    clock.advance(1)
    params = assert_refused(api.get("/mcp", headers=bearer(token)), 401, "invalid_token")
    assert "expired" in params["error_description"]
    assert counter.calls == 2


def test_the_cache_is_bounded() -> None:
    app, counter = counting_guard(Clock(), token_cache_size=3)
    api = InProcessClient(app)
    tokens = [good(subject=f"user-{n}") for n in range(5)]
    for token in tokens:
        assert api.get("/mcp", headers=bearer(token)).status_code == 200
    assert len(app.server.tokens) == 3
    api.get("/mcp", headers=bearer(tokens[0]))  # evicted first, so verified again
    assert counter.calls == 6


def test_refused_tokens_are_not_cached() -> None:
    app, counter = counting_guard(Clock())
    api, token = InProcessClient(app), good(claims={"aud": "https://else.test"})
    for _ in range(2):
        assert_refused(api.get("/mcp", headers=bearer(token)), 401, "invalid_token")
    assert counter.calls == 2
    assert len(app.server.tokens) == 0


def test_a_cache_size_of_zero_disables_the_cache() -> None:
    app, counter = counting_guard(Clock(), token_cache_size=0)
    api, token = InProcessClient(app), good()
    for _ in range(3):
        assert api.get("/mcp", headers=bearer(token)).status_code == 200
    assert counter.calls == 3


def test_once_keys_are_cached_fresh_tokens_need_no_io() -> None:
    issuer = TestIssuer(algorithms=("RS256", "ES256"))
    api = InProcessClient(guard(issuer, Clock()))
    first = issuer.token(audience=RESOURCE, now=NOW)
    assert api.get("/mcp", headers=bearer(first)).status_code == 200
    fetched = len(issuer.requests)
    for alg in ("RS256", "ES256", "RS256"):
        fresh = issuer.token(audience=RESOURCE, now=NOW, alg=alg)
        assert api.get("/mcp", headers=bearer(fresh)).status_code == 200
    assert len(issuer.requests) == fetched == 2


def test_other_scope_types_pass_through_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    wrapped = build_guard(app, resource=RESOURCE, authorization_servers=[ISSUER.issuer])
    import anyio

    async def call() -> None:
        await wrapped({"type": "custom"}, None, None)  # type: ignore[arg-type]

    anyio.run(call)
    assert seen == ["custom"]


def test_an_invalid_token_error_from_a_custom_verifier_is_its_own_refusal() -> None:
    class Refusing:
        async def verify(self, token: str) -> AccessToken:
            raise InvalidToken('revoked: caf"e\\')

    api = InProcessClient(guard(ISSUER, Clock(), verifier=Refusing()))
    params = assert_refused(api.get("/mcp", headers=bearer(good())), 401, "invalid_token")
    # RFC 6750 §3: no '"' and no '\\' in an error_description.
    assert params["error_description"] == "revoked: caf'e/"


def test_a_description_with_characters_a_header_cannot_carry_reads_the_same_in_the_body() -> None:
    class Refusing:
        async def verify(self, token: str) -> AccessToken:
            raise InvalidToken("r\u00e9voqu\u00e9\r\nX-Injected: 1")

    api = InProcessClient(guard(ISSUER, Clock(), verifier=Refusing()))
    response = api.get("/mcp", headers=bearer(good()))
    params = assert_refused(response, 401, "invalid_token")
    assert params["error_description"] == "rvoquX-Injected: 1"
    assert "x-injected" not in response.headers


def test_a_flood_of_random_kids_through_the_guard_refetches_once() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    attacker = ec.generate_private_key(ec.SECP256R1())
    api = InProcessClient(guard(issuer, Clock()))
    assert (
        api.get("/mcp", headers=bearer(issuer.token(audience=RESOURCE, now=NOW))).status_code == 200
    )
    payload = {"iss": issuer.issuer, "aud": RESOURCE, "exp": NOW + 60, "sub": "x"}
    for _ in range(200):
        forged = sign_jws({"alg": "ES256", "kid": secrets.token_hex(8)}, payload, attacker)
        params = assert_refused(api.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
        assert "no signing key" in params["error_description"]
    assert [r.url.path for r in issuer.requests].count("/jwks") == 2


@pytest.mark.anyio
async def test_concurrent_cold_requests_share_one_discovery_and_one_jwks_fetch() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    gate, inner = anyio.Event(), issuer.transport()

    class Gated(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await gate.wait()
            return await inner.handle_async_request(request)

    app = guard(issuer, Clock(), http_client=httpx.AsyncClient(transport=Gated()))
    tokens = [issuer.token(audience=RESOURCE, subject=f"user-{n}", now=NOW) for n in range(100)]
    statuses: list[int] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api.test"
    ) as http:

        async def call(token: str) -> None:
            statuses.append((await http.get("/mcp", headers=bearer(token))).status_code)

        async with anyio.create_task_group() as tasks:
            for token in tokens:
                tasks.start_soon(call, token)
            for _ in range(200):  # every request reaches the shared fetch before it answers
                await anyio.sleep(0)
            gate.set()
    assert statuses == [200] * 100
    assert [r.url.path for r in issuer.requests] == [
        "/.well-known/oauth-authorization-server",
        "/jwks",
    ]


def test_a_rotated_kid_while_the_issuer_is_down_is_503_not_401() -> None:
    issuer, clock = TestIssuer(algorithms=("RS256",)), Clock()
    transport = Switchable(issuer)
    api = InProcessClient(guard(issuer, clock, http_client=httpx.AsyncClient(transport=transport)))
    before = issuer.token(audience=RESOURCE, now=NOW)
    assert api.get("/mcp", headers=bearer(before)).status_code == 200
    issuer.rotate("RS256")
    transport.down = True
    rotated = issuer.token(audience=RESOURCE, now=NOW, subject="user-2")
    for _ in range(2):  # the refetch it triggered failed; then within the cooldown
        response = api.get("/mcp", headers=bearer(rotated))
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["cache-control"] == "no-store"
    transport.down = False
    clock.advance(30)
    assert api.get("/mcp", headers=bearer(rotated)).json()["subject"] == "user-2"


def test_an_unknown_kid_after_a_successful_refetch_is_401_in_the_cooldown() -> None:
    issuer, clock = TestIssuer(algorithms=("RS256",)), Clock()
    transport = Switchable(issuer)
    api = InProcessClient(guard(issuer, clock, http_client=httpx.AsyncClient(transport=transport)))
    assert (
        api.get("/mcp", headers=bearer(issuer.token(audience=RESOURCE, now=NOW))).status_code == 200
    )
    unknown = issuer.token(audience=RESOURCE, now=NOW, headers={"kid": "unknown-1"})
    assert_refused(api.get("/mcp", headers=bearer(unknown)), 401, "invalid_token")
    transport.down = True  # not asked again within the cooldown, so it does not matter
    clock.advance(10)
    other = issuer.token(audience=RESOURCE, now=NOW, headers={"kid": "unknown-2"})
    params = assert_refused(api.get("/mcp", headers=bearer(other)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]
    assert [r.url.path for r in issuer.requests].count("/jwks") == 2


def guarding(app: Any) -> OAuthGuard:
    """``app`` behind a guard trusting ``ISSUER``."""
    return build_guard(
        app,
        resource=RESOURCE,
        authorization_servers=[ISSUER.issuer],
        http_client=ISSUER.http_client(),
        clock=Clock(),
    )


def test_a_guard_error_from_a_plain_asgi_app_is_refused_until_its_response_starts() -> None:
    from oauthguard import InsufficientScope

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise InsufficientScope("only the owner may do this", scope="orders:own")

    wrapped = guarding(app)
    api = InProcessClient(wrapped)
    params = assert_refused(api.get("/mcp", headers=bearer(good())), 403, "insufficient_scope")
    assert params["scope"] == "orders:own"
    # Once the response has started the error cannot become a refusal: it propagates.
    with pytest.raises(InsufficientScope):
        api.get("/late", headers=bearer(good()))


@pytest.mark.parametrize("started", [False, True], ids=["not-started", "already-started"])
def test_a_guard_error_from_a_starlette_endpoint_is_refused_started_app_or_not(
    started: bool,
) -> None:
    """A Starlette app builds its exception handlers into its middleware when it starts and
    ignores any added to it later: the guard's goes to that middleware then."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from oauthguard import InsufficientScope

    async def owner_only(request: Request) -> Any:
        raise InsufficientScope("only the owner may do this", scope="orders:own")

    app = Starlette(routes=[Route("/mcp", owner_only)])
    if started:
        assert InProcessClient(app).get("/other").status_code == 404
    wrapped = guarding(app)
    assert wrapped._app_answers_refusals
    api = InProcessClient(wrapped)
    params = assert_refused(api.get("/mcp", headers=bearer(good())), 403, "insufficient_scope")
    assert params["scope"] == "orders:own"


def test_an_app_whose_routes_cannot_be_read_yet_still_gets_a_guard() -> None:
    from starlette.responses import PlainTextResponse

    class NotReady:
        @property
        def routes(self) -> Any:
            raise RuntimeError("routes not ready")

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await PlainTextResponse("ok")(scope, receive, send)

    api = InProcessClient(guarding(NotReady()))
    assert api.get("/mcp", headers=bearer(good())).status_code == 200
