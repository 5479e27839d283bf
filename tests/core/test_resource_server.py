"""``ResourceServer`` on its own: no ASGI app, no middleware, real HTTP to the issuer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from support import assert_refused, free_port, serve
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.sync.client import connect

from oauthguard import (
    AccessToken,
    DPoP,
    GuardError,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    OAuthGuard,
    ResourceServer,
    TemporarilyUnavailable,
)
from oauthguard.testing import DPoPKey, TestIssuer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """A TestIssuer served by uvicorn on loopback: discovery and keys over real HTTP."""
    port = free_port()
    test_issuer = TestIssuer(f"http://127.0.0.1:{port}", algorithms=("RS256", "ES256"))
    with serve(test_issuer.app, port=port):
        yield test_issuer


API = "https://api.test/orders"


async def token_from(issuer: TestIssuer, key: DPoPKey) -> str:
    """A DPoP-bound token from the issuer's token endpoint (client credentials, RFC 9449 §5)."""
    client_id, secret = issuer.register_client(grant_types=["client_credentials"])
    token_url = f"{issuer.issuer}/token"
    async with httpx.AsyncClient() as http:
        response = await http.post(
            token_url,
            data={"grant_type": "client_credentials", "resource": API, "scope": "orders:read"},
            auth=(client_id, secret or ""),
            headers={"dpop": key.proof("POST", token_url)},
        )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    token: str = response.json()["access_token"]
    return token


async def test_a_plain_asyncio_program_authenticates_a_dpop_request(issuer: TestIssuer) -> None:
    key = DPoPKey()
    token = await token_from(issuer, key)
    url = f"{API}?page=2"
    async with ResourceServer(
        resource=API, authorization_servers=issuer.issuer, dpop="required"
    ) as server:
        headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", API, token=token)}
        verified = await server.authenticate("GET", url, headers)
        assert verified.scheme == "DPoP" and verified.jkt == key.thumbprint
        assert verified.scopes == frozenset({"orders:read"})
        # The same proof again is a replay (RFC 9449 §11.1); a proof for another URL is refused.
        with pytest.raises(InvalidDPoPProof, match="already used"):
            await server.authenticate("GET", url, headers)
        other = {**headers, "DPoP": key.proof("GET", "https://api.test/admin", token=token)}
        with pytest.raises(InvalidDPoPProof, match="htu"):
            await server.authenticate("GET", url, other)
        with pytest.raises(MissingCredentials):
            await server.authenticate("GET", url, {})
        # Headers as pairs keep repeats: two Authorization headers are a malformed request.
        twice = [("authorization", f"DPoP {token}"), ("Authorization", f"DPoP {token}")]
        with pytest.raises(GuardError, match="more than one Authorization"):
            await server.authenticate("GET", url, twice)
    assert server.http.is_closed  # the client it made is closed on exit


async def test_a_refusal_carries_what_an_adapter_renders(issuer: TestIssuer) -> None:
    async with ResourceServer(resource=API, authorization_servers=issuer.issuer) as server:
        with pytest.raises(GuardError) as raised:
            await server.authenticate("GET", API, {"authorization": "Bearer not.a.jwt"})
    assert (raised.value.status, raised.value.error) == (401, "invalid_token")


def test_a_websocket_message_handler_verifies_the_tokens_in_its_messages(
    issuer: TestIssuer,
) -> None:
    """A WebSocket server (no ASGI) whose clients send their token in a message."""
    good = issuer.token(audience=API, scope="orders:read")
    foreign = issuer.token(audience="https://other.test/api")
    answers: list[str] = []
    ready, done = threading.Event(), threading.Event()
    port = free_port()

    async def handler(connection: ServerConnection, server: ResourceServer) -> None:
        async for message in connection:
            token = json.loads(message)["access_token"]
            try:
                verified = await server.verify(token)
                await connection.send(f"hello {verified.subject}")
            except GuardError as error:
                await connection.send(f"refused: {error.error}")

    async def run() -> None:
        server = ResourceServer(resource=API, authorization_servers=issuer.issuer)
        async with server, ws_serve(lambda c: handler(c, server), "127.0.0.1", port):
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        with connect(f"ws://127.0.0.1:{port}") as socket:
            for token in (good, foreign, "garbage"):
                socket.send(json.dumps({"access_token": token}))
                answers.append(str(socket.recv(timeout=10)))
    finally:
        done.set()
        thread.join(10)
    assert answers == ["hello user-1", "refused: invalid_token", "refused: invalid_token"]


async def test_one_user_per_verified_token_for_bearer_and_dpop() -> None:
    """One cache entry per token: the user is built once, whatever the scheme."""
    issuer = TestIssuer("https://issuer.test", algorithms=("ES256",))
    built: list[tuple[AccessToken, str]] = []

    def user_factory(token: AccessToken, raw: str) -> object:
        built.append((token, raw))
        return object()

    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse(str(id(request.user)))

    key = DPoPKey()
    bearer = issuer.token(audience=API, alg="ES256")
    bound = issuer.token(audience=API, alg="ES256", jkt=key.thumbprint)
    server = ResourceServer(
        resource=API,
        authorization_servers=issuer.issuer,
        dpop=DPoP(),
        http_client=issuer.http_client(),
        user_factory=user_factory,
    )
    app = OAuthGuard(Starlette(routes=[Route("/orders", endpoint)]), server)
    users: dict[str, set[str]] = {"bearer": set(), "dpop": set()}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="https://api.test"
    ) as http:
        for _ in range(5):
            plain = await http.get("/orders", headers={"authorization": f"Bearer {bearer}"})
            proof = key.proof("GET", API, token=bound)
            dpop = await http.get(
                "/orders", headers={"authorization": f"DPoP {bound}", "dpop": proof}
            )
            assert plain.status_code == dpop.status_code == 200, dpop.text
            users["bearer"].add(plain.text)
            users["dpop"].add(dpop.text)
        # A DPoP-bound token sent as Bearer is refused (RFC 9449 §7.2), and builds no user.
        refused = await http.get("/orders", headers={"authorization": f"Bearer {bound}"})
        assert_refused(refused, 401, "invalid_token")
    assert [raw for _, raw in built] == [bearer, bound]
    assert [token.scheme for token, _ in built] == ["Bearer", "DPoP"]
    assert len(users["bearer"]) == len(users["dpop"]) == 1


async def test_lifespan_shutdown_closes_the_client_the_server_made() -> None:
    server = ResourceServer(resource=API, authorization_servers="https://issuer.test")
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    server.warm = _no_warm  # type: ignore[method-assign]  # no issuer to reach here
    await OAuthGuard(app, server)({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert server.http.is_closed
    given = httpx.AsyncClient()
    borrowed = ResourceServer(
        resource=API, authorization_servers="https://i.test", http_client=given
    )
    await borrowed.aclose()
    assert not given.is_closed  # a client the caller gave stays the caller's
    await given.aclose()


async def _no_warm() -> None:
    return None


@pytest.mark.parametrize(
    "path", ["/orders/../admin", "/orders//x", "/orders/%2e%2e/admin", "/a%2Fb"]
)
async def test_a_url_whose_path_is_not_in_normal_form_is_refused(path: str) -> None:
    server = ResourceServer(resource=API, authorization_servers="https://issuer.test")
    with pytest.raises(GuardError) as raised:
        await server.authenticate("GET", f"https://api.test{path}", {"authorization": "Bearer x"})
    assert (raised.value.status, raised.value.error) == (400, "invalid_request")
    await server.aclose()


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("https://[::1/orders", {"authorization": "Bearer x"}),  # no URI
        ("https://api.test/ordérs", {"authorization": "Bearer x"}),  # an IRI, not a URI
        ("https://api.test/orders?q=é", {"authorization": "Bearer x"}),
        (API, {"authorization": "Bearer tökén"}),  # wider than a header can be
        (API, [("authorization", "Bearer x"), ("x-name", "\u2028")]),
    ],
)
async def test_a_request_that_is_no_http_request_is_a_400(url: str, headers: Any) -> None:
    server = ResourceServer(resource=API, authorization_servers="https://issuer.test")
    with pytest.raises(GuardError) as raised:
        await server.authenticate("GET", url, headers)
    assert (raised.value.status, raised.value.error) == (400, "invalid_request")
    await server.aclose()


async def test_the_path_of_the_url_picks_the_resource_whose_audience_the_token_needs() -> None:
    issuer = TestIssuer("https://issuer.test")
    billing = "https://api.test/billing"
    async with ResourceServer(
        resource=API,
        authorization_servers=issuer.issuer,
        resources=[billing],
        http_client=issuer.http_client(),
    ) as server:
        ours = {"authorization": f"Bearer {issuer.token(audience=API)}"}
        theirs = {"authorization": f"Bearer {issuer.token(audience=billing)}"}
        assert (await server.authenticate("GET", f"{API}/7", ours)).audience == (API,)
        assert (await server.authenticate("GET", f"{billing}/7", theirs)).audience == (billing,)
        # Spelled with an encoded unreserved character, the path is still billing's.
        for url, headers in ((f"{billing}/7", ours), ("https://api.test/%62illing", ours)):
            with pytest.raises(GuardError, match=r"not meant for https://api\.test/billing"):
                await server.authenticate("GET", url, headers)
        with pytest.raises(GuardError, match=r"not meant for https://api\.test/orders"):
            await server.authenticate("GET", f"{API}/7", theirs)


def test_the_server_and_the_guard_take_at_most_twelve_keywords() -> None:
    import inspect

    for built in (ResourceServer, OAuthGuard):
        parameters = inspect.signature(built).parameters
        keywords = [name for name in parameters if name not in ("self", "app")]
        assert len(keywords) <= 12, (built.__name__, keywords)


class Counting:
    """A verifier of the app's own that accepts every token, counting what it is handed."""

    def __init__(self, fails: bool = False) -> None:
        self.seen: list[str] = []
        self.fails = fails

    async def verify(self, token: str) -> AccessToken:
        self.seen.append(token)
        if self.fails:
            raise KeyError("a bug in the verifier")
        expires = time.time() + 3600  # kept in the cache until then
        return AccessToken("alice", "c", frozenset(), (API,), "https://issuer.test", expires)


def counting_server(verifier: Counting) -> ResourceServer:
    return ResourceServer(
        resource=API, authorization_servers="https://issuer.test", verifier=verifier
    )


@pytest.mark.parametrize(
    ("token", "description"),
    [
        (b"abc", "the token is not a string but bytes"),
        (None, "the token is not a string but NoneType"),
        ("a b", "the token is not a b64token (RFC 6750 2.1)"),
        ("abc\n", "the token is not a b64token (RFC 6750 2.1)"),
        ("t\u00f6ken", "the token is not a b64token (RFC 6750 2.1)"),
        ("", "the token is not a b64token (RFC 6750 2.1)"),
        ("a" * 16385, "the token is longer than 16384 bytes"),
    ],
)
async def test_verify_refuses_what_a_header_could_not_carry_before_any_verifier(
    token: Any, description: str
) -> None:
    # A token an SDK read from a header its own way, or one from a WebSocket message, gets
    # the checks a header's token gets: no verifier (or introspection endpoint) sees it.
    verifier = Counting()
    with pytest.raises(InvalidToken) as refused:
        await counting_server(verifier).verify(token)
    assert refused.value.description == description
    assert verifier.seen == []


async def test_verify_answers_an_unexpected_failure_with_a_503_and_logs_no_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = Counting(fails=True)
    with pytest.raises(TemporarilyUnavailable):
        await counting_server(verifier).verify("secret-token-value")
    assert "KeyError" in caplog.text and "secret-token-value" not in caplog.text


@pytest.mark.parametrize(
    "header", ["Bearer tok-1", "bearer tok-1", "Bearer  tok-1", "Bearer tok-1 \t", " Bearer tok-1"]
)
async def test_a_cached_token_is_read_from_every_header_form_it_was_read_from_before(
    header: str,
) -> None:
    verifier = Counting()
    server = counting_server(verifier)
    assert (await server.verify("tok-1")).subject == "alice"
    token = await server.authenticate("GET", API, {"authorization": header})
    assert token.raw == "tok-1" and verifier.seen == ["tok-1"]


@pytest.mark.parametrize(
    ("url", "headers", "refusal"),
    [
        (API, {"authorization": "Bearer tok-1x"}, None),  # another token, verified itself
        (API, {"authorization": "Bearer tok-1 x"}, InvalidRequest),  # not a b64token
        (API, {"authorization": "Bearertok-1"}, MissingCredentials),  # another scheme
        (API + "?access_token=tok-1", {"authorization": "Bearer tok-1"}, InvalidRequest),
        (API, {"authorization": "Bearer tok-1", "dpop": "x.y.z"}, InvalidRequest),
    ],
    ids=["longer", "space-inside", "no-space", "query-too", "dpop-header-with-bearer"],
)
async def test_a_request_near_a_cached_token_is_read_as_itself(
    url: str, headers: dict[str, str], refusal: type[GuardError] | None
) -> None:
    verifier = Counting()
    server = counting_server(verifier)
    await server.verify("tok-1")
    if refusal is None:
        assert (await server.authenticate("GET", url, headers)).raw == "tok-1x"
    else:
        with pytest.raises(refusal):
            await server.authenticate("GET", url, headers)
    assert verifier.seen in (["tok-1"], ["tok-1", "tok-1x"])


LONG = "eyJ" + "A" * 60  # longer than the part of a header its lookup reads


@pytest.mark.parametrize(
    ("header", "refusal"),
    [
        ("Bearer " + LONG, None),
        ("Bearer eyJB" + "A" * 59, None),  # the same last bytes, another token
        ("Bearer \x01" + LONG[1:], InvalidRequest),
        ("DPoP " + LONG, InvalidDPoPProof),  # the cached token, another scheme
    ],
    ids=["as-verified", "another-token", "not-a-b64token", "other-scheme"],
)
async def test_a_header_ending_like_a_known_one_is_read_as_itself(
    header: str, refusal: type[GuardError] | None
) -> None:
    verifier = Counting()
    server = counting_server(verifier)
    for known in (0, 1):  # verified (its header not kept), then sent again: kept
        await server.authenticate("GET", API, {"authorization": "Bearer " + LONG})
        assert len(server.known_headers) == known
    if refusal is None:
        assert (await server.authenticate("GET", API, {"authorization": header})).raw == (
            header.removeprefix("Bearer ")
        )
    else:
        with pytest.raises(refusal):
            await server.authenticate("GET", API, {"authorization": header})
    other = header.removeprefix("Bearer ")
    assert verifier.seen == ([LONG, other] if refusal is None and other != LONG else [LONG])


@pytest.mark.parametrize(
    "url",
    [
        "/mcp",  # relative: no origin a proof could be bound to
        "api.test/mcp",
        "ftp://api.test/mcp",
        "https://evil@api.test/mcp",  # userinfo
        "https://api.test\\@evil/mcp",
        "https:///mcp",
        "https://api.test/mcp#/admin",  # a fragment: what follows would go unread
        "https://api.test/other#",
        "https://ap\ti.test/m\ncp",  # what urlsplit would drop without a word
        " https://api.test/mcp",
    ],
)
async def test_a_url_that_is_no_absolute_request_uri_is_an_invalid_request(url: str) -> None:
    server = counting_server(Counting())
    with pytest.raises(InvalidRequest):
        await server.authenticate("GET", url, {"authorization": "Bearer tok-1"})


@pytest.mark.parametrize(
    "url",
    [
        "https://api.test/mcp",
        "https://[::1]:8443/mcp",
        "HTTP://api.test/mcp?a=1",
        "wss://api.test/mcp",
    ],
)
async def test_absolute_request_uris_are_read(url: str) -> None:
    server = counting_server(Counting())
    token = await server.authenticate("GET", url, {"authorization": "Bearer tok-1"})
    assert token.raw == "tok-1"


@pytest.mark.parametrize("headers", [None, [("authorization", "Bearer tok-1", "x")], [("a",)], 5])
async def test_headers_that_are_not_name_value_pairs_are_an_invalid_request(headers: Any) -> None:
    server = counting_server(Counting())
    with pytest.raises(InvalidRequest, match="not \\(name, value\\) pairs"):
        await server.authenticate("GET", API, headers)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
async def test_header_values_in_any_bytes_like_object_are_read(kind: Any) -> None:
    server = counting_server(Counting())
    headers = [(b"authorization", kind(b"Bearer tok-1"))]
    assert (await server.authenticate("GET", API, headers)).raw == "tok-1"
