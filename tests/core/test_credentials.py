"""RFC 6750 §2.1 credentials, parsed strictly (unit level; see test_middleware for HTTP)."""

from __future__ import annotations

import pytest

from oauthguard._wire.credentials import extract
from oauthguard._wire.errors import InvalidRequest, InvalidToken, MissingCredentials

TOKEN = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def auth(value: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"api.test"), (b"authorization", value)]


@pytest.mark.parametrize("scheme", [b"Bearer", b"bearer", b"BEARER", b"bEaReR"])
def test_the_scheme_is_case_insensitive(scheme: bytes) -> None:
    credentials = extract(auth(scheme + b" " + TOKEN), b"", 16384)
    assert (credentials.scheme, credentials.token) == ("Bearer", TOKEN.decode())


@pytest.mark.parametrize("token", [b"abc", b"a-b.c_d~e+f/g", b"abc=", b"abc=="])
def test_every_b64token_character_is_accepted(token: bytes) -> None:
    assert extract(auth(b"Bearer " + token), b"", 16384).token == token.decode()


def test_no_authorization_header_is_missing_credentials() -> None:
    with pytest.raises(MissingCredentials):
        extract([(b"host", b"api.test")], b"", 16384)


@pytest.mark.parametrize("value", [b"Basic dXNlcjpwYXNz", b'Digest username="x"', b"Token"])
def test_another_scheme_is_missing_credentials(value: bytes) -> None:
    with pytest.raises(MissingCredentials):
        extract(auth(value), b"", 16384)


def test_two_authorization_headers_are_an_invalid_request() -> None:
    headers = auth(b"Bearer " + TOKEN) + [(b"authorization", b"Bearer " + TOKEN)]
    with pytest.raises(InvalidRequest, match="more than one Authorization header"):
        extract(headers, b"", 16384)


@pytest.mark.parametrize("value", [b"Bearer", b"Bearer ", b"bearer   "])
def test_bearer_without_a_token_is_an_invalid_request(value: bytes) -> None:
    with pytest.raises(InvalidRequest, match="needs a token"):
        extract(auth(value), b"", 16384)


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer abc def",
        b"Bearer abc,def",
        b'Bearer "abc"',
        b"Bearer a=b",
        b"Bearer \xc3\xa4bc",
        b"Bearer abc\tdef",
        b"Bearer\tabc",
        b"Bearer =abc",
    ],
)
def test_a_malformed_value_is_an_invalid_request(value: bytes) -> None:
    with pytest.raises(InvalidRequest):
        extract(auth(value), b"", 16384)


def test_a_query_token_alone_is_never_taken() -> None:
    with pytest.raises(MissingCredentials):
        extract([], b"access_token=" + TOKEN, 16384)


@pytest.mark.parametrize("name", [b"access_token", b"access%5Ftoken", b"%61ccess_token"])
def test_a_query_token_with_a_header_token_is_an_invalid_request(name: bytes) -> None:
    # The parameter name is percent-decoded, as the app's query parser does (RFC 3986 §2.1).
    with pytest.raises(InvalidRequest, match="query string"):
        extract(auth(b"Bearer " + TOKEN), b"x=1&" + name + b"=" + TOKEN, 16384)


def test_a_query_parameter_that_merely_mentions_access_token_is_fine() -> None:
    credentials = extract(auth(b"Bearer " + TOKEN), b"q=access_token", 16384)
    assert credentials.token == TOKEN.decode()


def test_a_token_over_the_limit_is_invalid_without_parsing() -> None:
    # Not even a b64token: it is refused for its length before anything looks inside.
    with pytest.raises(InvalidToken, match="longer than 100 bytes"):
        extract(auth(b"Bearer " + b"!" * 101), b"", 100)
    assert extract(auth(b"Bearer " + b"a" * 100), b"", 100).token == "a" * 100
