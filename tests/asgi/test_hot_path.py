"""The per-request building blocks made fast: strict base64url, the b64token check, the
verified-token cache and the remembered JWT headers. Fast must not mean laxer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from guards import build_guard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support import assert_refused

from oauthguard import InvalidRequest, InvalidToken, MissingCredentials
from oauthguard._http.cache import ExpiringCache
from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard._verify.jwt import HEADER_CACHE_SIZE, JWTVerifier, json_segment, split_jws
from oauthguard._wire.credentials import Credentials, KnownHeaders, extract, is_b64token
from oauthguard.testing import TestIssuer, sign_jws

RESOURCE = "https://api.test/mcp"


# -- base64url (RFC 7515 §2) -------------------------------------------------------------
@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\xff\xfe", b"any carnal pleas", bytes(range(256))]
)
def test_base64url_round_trips(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


@pytest.mark.parametrize(
    "text",
    [
        "ab+c",  # standard alphabet, not URL-safe
        "ab/c",
        "abc=",  # padding is not part of base64url in JWS
        "ab==",
        "ab\nc",  # whitespace
        "ab c",
        "ab.c",
        "a\x00bc",
        "a",  # a length no encoding produces
        "abcde",
        "é" * 4,  # not ASCII
        "ab*c",
    ],
)
def test_base64url_refuses_everything_outside_the_alphabet(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_base64url_decodes_url_safe_characters() -> None:
    assert b64url_decode("-_-_") == b"\xfb\xff\xbf"


# -- RFC 6750 §2.1 b64token ---------------------------------------------------------------
@pytest.mark.parametrize("value", [b"abc", b"a-._~+/z", b"abc=", b"abc==", b"A9"])
def test_b64token_accepts_the_rfc6750_alphabet_and_trailing_equals(value: bytes) -> None:
    assert is_b64token(value)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"=",
        b"==",
        b"a=b",
        b"a b",
        b"a,b",
        b'a"b',
        b"a\tb",
        b"\xc3\xa9",
        b"a\x00",
        b"a*b",
        b"=abc",
    ],
)
def test_b64token_refuses_other_bytes(value: bytes) -> None:
    assert not is_b64token(value)


@pytest.mark.parametrize("value", [b"Bearer\tabc", b"bearer,abc", b"DPoP\x00abc"])
def test_our_scheme_run_into_the_token_is_an_invalid_request(value: bytes) -> None:
    with pytest.raises(InvalidRequest, match="must be followed by a space"):
        extract([(b"authorization", value)], b"", 1024)


@pytest.mark.parametrize(
    "value", [b"Bearerx abc", b"Basic abc", b"Bearer-x abc", b"\tabc", b"DPoPs abc", b""]
)
def test_another_scheme_is_no_credentials(value: bytes) -> None:
    with pytest.raises(MissingCredentials):
        extract([(b"authorization", value)], b"", 1024)


@pytest.mark.parametrize(
    "value", [b"Bearer abc", b"BEARER   abc", b"  bearer abc  ", b"\tBearer abc"]
)
def test_the_scheme_is_read_whatever_its_case_and_surrounding_spaces(value: bytes) -> None:
    assert extract([(b"authorization", value)], b"", 1024) == ("Bearer", "abc", ())


def test_extract_returns_immutable_credentials() -> None:
    credentials = extract([(b"authorization", b"bearer abc.def.ghi")], b"", 1024)
    assert credentials == Credentials("Bearer", "abc.def.ghi", ())
    with pytest.raises(AttributeError):
        credentials.token = "other"  # type: ignore[misc]


def test_a_known_header_is_read_as_its_token_and_a_near_one_as_itself() -> None:
    known = KnownHeaders(8)
    token = "eyJ" + "x" * 40
    known.add(b"Bearer " + token.encode(), token)
    assert extract([(b"authorization", b"Bearer " + token.encode())], b"", 1024, known) == (
        "Bearer",
        token,
        (),
    )
    # The same last bytes, another header: read and checked as any other.
    same_tail = "eyJy" + "x" * 39
    read = extract([(b"authorization", b"Bearer " + same_tail.encode())], b"", 1024, known)
    assert read.token == same_tail
    for value in (b"Bearer a,b" + b"x" * 40, b"Bearer \x01" + token.encode()):
        with pytest.raises(InvalidRequest):
            extract([(b"authorization", value)], b"", 1024, known)
    with pytest.raises(InvalidToken):  # the size limit holds for what is not known
        extract([(b"authorization", b"Bearer " + same_tail.encode())], b"", 16, known)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_a_header_value_in_a_buffer_is_read_as_bytes_are(kind: Callable[[bytes], bytes]) -> None:
    known = KnownHeaders(8)
    known.add(b"Bearer abc", "abc")
    for value in (b"Bearer abc", b"Bearer other", b"bearer  other ", b"DPoP other"):
        read = extract([(b"authorization", kind(value))], b"", 1024, known)
        assert read == extract([(b"authorization", value)], b"", 1024, known)
    with pytest.raises(InvalidRequest):
        extract([(b"authorization", kind(b"Bearer a,b"))], b"", 1024, known)


def test_known_headers_are_bounded_oldest_out_first() -> None:
    known = KnownHeaders(2)
    tokens = [f"{i}" + "x" * 30 + f"{i}" for i in range(3)]
    for token in tokens:
        known.add(b"Bearer " + token.encode(), token)
    assert len(known) == 2
    header = (b"Bearer " + tokens[0].encode())[-24:]
    assert known.get(header) is None
    assert known.get((b"Bearer " + tokens[2].encode())[-24:]) is not None
    unkept = KnownHeaders(2)
    unkept.add(bytearray(b"Bearer " + tokens[0].encode()), tokens[0])  # type: ignore[arg-type]
    assert len(unkept) == 0  # a buffer might be reused: only bytes are kept, by reference
    none = KnownHeaders(0)  # no cache of verified tokens, nothing kept
    none.add(b"Bearer " + tokens[0].encode(), tokens[0])
    assert len(none) == 0


@pytest.mark.anyio
async def test_a_cached_token_does_not_vouch_for_a_different_one(
    issuer: TestIssuer, client: httpx.AsyncClient
) -> None:
    token = issuer.token(audience=RESOURCE)
    for value in (token, token + ",", token + " x", token + "\u00e9"):
        header = f"Bearer {value}".encode()
        response = await client.get("/mcp", headers={"authorization": header})
        if value == token:
            assert response.status_code == 200
        else:
            assert_refused(response, 400, "invalid_request")


# -- the verified-token cache -------------------------------------------------------------
def test_cache_drops_the_oldest_entry_when_full() -> None:
    cache: ExpiringCache[int] = ExpiringCache(3)
    for number in range(100):
        cache.put(f"token-{number}", number, expires_at=1000, now=0)
    assert len(cache) == 3
    assert [cache.get(f"token-{n}", 0) for n in (96, 97, 98, 99)] == [None, 97, 98, 99]


def test_cache_refreshing_an_entry_evicts_nothing() -> None:
    cache: ExpiringCache[str] = ExpiringCache(2)
    cache.put("a", "first", expires_at=1000, now=0)
    cache.put("b", "b", expires_at=1000, now=0)
    cache.put("a", "second", expires_at=1000, now=0)
    assert (cache.get("a", 0), cache.get("b", 0), len(cache)) == ("second", "b", 2)


def test_cache_entries_expire_and_leave() -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    cache.put("a", "value", expires_at=100, now=0)
    cache.put("stale", "value", expires_at=50, now=50)  # already expired: not kept
    assert cache.get("a", 99.9) == "value"
    assert cache.get("a", 100) is None
    assert len(cache) == 0


def test_cache_of_size_zero_keeps_nothing() -> None:
    cache: ExpiringCache[str] = ExpiringCache(0)
    cache.put("a", "value", expires_at=100, now=0)
    assert cache.get("a", 0) is None


# -- remembered JWT headers ------------------------------------------------------------------
@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer(algorithms=("RS256",))


@pytest.fixture
async def verifier(issuer: TestIssuer) -> AsyncIterator[JWTVerifier]:
    guard = build_guard(
        PlainTextResponse("ok"),
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
    )
    assert isinstance(guard.server.verifier, JWTVerifier)
    yield guard.server.verifier
    await guard.server.http.aclose()


def tamper(token: str, **claims: object) -> str:
    """The token with its payload changed and its signature kept."""
    head, _, signature = token.split(".")
    _, payload, _, _ = split_jws(token)
    forged = sign_jws(json_segment(head), {**payload, **claims}, None, alg="none")
    return forged + signature


@pytest.mark.anyio
async def test_a_header_is_remembered_only_after_its_signature_verified(
    issuer: TestIssuer, verifier: JWTVerifier
) -> None:
    forged = tamper(issuer.token(audience=RESOURCE, headers={"x-forged": 1}), sub="admin")
    with pytest.raises(InvalidToken, match="signature"):
        await verifier.verify(forged)
    assert verifier._headers == {}
    token = issuer.token(audience=RESOURCE)
    await verifier.verify(token)
    assert list(verifier._headers) == [token.split(".")[0]]


@pytest.mark.anyio
async def test_a_remembered_header_skips_no_other_check(
    issuer: TestIssuer, verifier: JWTVerifier
) -> None:
    await verifier.verify(issuer.token(audience=RESOURCE))
    with pytest.raises(InvalidToken, match="signature"):
        await verifier.verify(tamper(issuer.token(audience=RESOURCE), sub="admin"))
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(issuer.token(audience=RESOURCE, now=time.time() - 3600))
    with pytest.raises(InvalidToken, match="aud"):
        await verifier.verify(issuer.token(audience="https://other.test"))
    other_key = TestIssuer(algorithms=("RS256",)).private_key()
    head, payload, _ = issuer.token(audience=RESOURCE).split(".")
    signed_elsewhere = sign_jws(json_segment(head), split_jws(f"{head}.{payload}.")[1], other_key)
    with pytest.raises(InvalidToken, match="signature"):
        await verifier.verify(signed_elsewhere)
    assert len(verifier._headers) == 1


@pytest.mark.anyio
async def test_remembered_headers_are_bounded(issuer: TestIssuer, verifier: JWTVerifier) -> None:
    heads = []
    for number in range(HEADER_CACHE_SIZE + 8):
        token = issuer.token(audience=RESOURCE, headers={"x-n": number})
        await verifier.verify(token)
        heads.append(token.split(".")[0])
    assert len(verifier._headers) == HEADER_CACHE_SIZE
    assert list(verifier._headers) == heads[-HEADER_CACHE_SIZE:]


# -- through the middleware -------------------------------------------------------------------
async def hello(request: Request) -> Response:
    return PlainTextResponse(request.auth.subject)


@pytest.fixture
async def client(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=[issuer.issuer],
        http_client=issuer.http_client(),
        token_cache_size=2,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as http:
        yield http


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value", ["Bearer a=b.c.d", "Bearer a,b", "Bearer abc\u00e9", "Bearer ===", "Bearer a*b"]
)
async def test_a_token_outside_the_b64token_alphabet_is_a_bad_request(
    client: httpx.AsyncClient, value: str
) -> None:
    response = await client.get("/mcp", headers={"authorization": value.encode("utf-8")})
    params = assert_refused(response, 400, "invalid_request")
    assert "RFC 6750" in params["error_description"]


@pytest.mark.anyio
async def test_segments_that_are_not_base64url_are_invalid_tokens(
    issuer: TestIssuer, client: httpx.AsyncClient
) -> None:
    head, payload, signature = issuer.token(audience=RESOURCE).split(".")
    for bad in (
        f"{head}.{payload}.{signature}==",
        f"{head}+.{payload}.{signature}",
        f"{head}.{payload[:-1]}/.{signature}",
        f"{head}.{payload}x.{signature}",
    ):
        response = await client.get("/mcp", headers={"authorization": f"Bearer {bad}"})
        params = assert_refused(response, 401, "invalid_token")
        assert "well-formed" in params["error_description"]


@pytest.mark.anyio
async def test_evicted_tokens_are_verified_again(
    issuer: TestIssuer, client: httpx.AsyncClient
) -> None:
    tokens = [issuer.token(audience=RESOURCE, subject=f"user-{n}") for n in range(5)]
    for _ in range(2):  # the cache holds two: every token is evicted and checked again
        for number, token in enumerate(tokens):
            response = await client.get("/mcp", headers={"authorization": f"Bearer {token}"})
            assert (response.status_code, response.text) == (200, f"user-{number}")
    expired = issuer.token(audience=RESOURCE, now=time.time() - 3600)
    response = await client.get("/mcp", headers={"authorization": f"Bearer {expired}"})
    assert_refused(response, 401, "invalid_token")
