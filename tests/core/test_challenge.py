"""RFC 6750 §3 challenges: building, escaping, parsing, and the refusal responses."""

from __future__ import annotations

import json

import pytest

from oauthguard._wire.challenge import Challenger, build_challenge, parse_challenges, quote
from oauthguard._wire.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    TemporarilyUnavailable,
)

METADATA = "https://api.test/.well-known/oauth-protected-resource/mcp"


def headers_of(response: tuple[int, list[tuple[bytes, bytes]], bytes]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in response[1]}


def test_quotes_and_backslashes_are_escaped_and_parse_back() -> None:
    description = 'the "kid" C:\\keys\\a is unknown'
    header = build_challenge("Bearer", {"error": "invalid_token", "error_description": description})
    assert header == (
        'Bearer error="invalid_token", error_description="the \\"kid\\" C:\\\\keys\\\\a is unknown"'
    )
    assert parse_challenges(header) == [
        ("Bearer", {"error": "invalid_token", "error_description": description})
    ]


def test_an_error_description_holds_only_what_rfc_6750_allows() -> None:
    """RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E, so no '"' and no '\\' (which quoting
    would allow); the JSON body says the same."""
    error = InvalidToken('the "kid" C:\\keys\\a is unknown\r\n')
    status, headers, body = Challenger(METADATA).response(error)
    challenge = headers_of((status, headers, body))["www-authenticate"]
    (_, params), *_ = parse_challenges(challenge)
    assert params["error_description"] == "the 'kid' C:/keys/a is unknown"
    assert json.loads(body)["error_description"] == params["error_description"]
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in params["error_description"])


def test_control_characters_are_dropped_so_no_header_can_be_injected() -> None:
    assert quote("bad\r\nSet-Cookie: x=1\x00\x7f") == '"badSet-Cookie: x=1"'


def test_no_credentials_gives_a_challenge_without_error() -> None:
    status, _, body = response = Challenger(METADATA).response(MissingCredentials())
    headers = headers_of(response)
    assert status == 401
    assert headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA}"'
    assert headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/json"
    assert "WWW-Authenticate" in headers["access-control-expose-headers"]
    assert json.loads(body)["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidToken("the token has expired"), 401),
        (InvalidRequest("the request has more than one Authorization header"), 400),
        (InsufficientScope("the token lacks scope read", scope="read"), 403),
    ],
)
def test_an_error_is_in_the_challenge_and_in_the_json_body(
    error: InvalidToken, status: int
) -> None:
    response = Challenger(METADATA, realm="api").response(error)
    headers = headers_of(response)
    [(scheme, params)] = parse_challenges(headers["www-authenticate"])
    assert (scheme, response[0]) == ("Bearer", status)
    assert headers["www-authenticate"].startswith('Bearer realm="api", error=')
    assert params["error"] == error.error
    assert params["error_description"] == error.description
    assert params["resource_metadata"] == METADATA
    assert json.loads(response[2]) == {"error": error.error, "error_description": error.description}
    assert headers["cache-control"] == "no-store"
    assert int(headers["content-length"]) == len(response[2])


def test_the_scope_of_insufficient_scope_is_in_the_challenge() -> None:
    response = Challenger(METADATA).response(InsufficientScope("needs more", scope="a b"))
    [(_, params)] = parse_challenges(headers_of(response)["www-authenticate"])
    assert params["scope"] == "a b"


def test_an_empty_scope_of_the_error_leaves_out_the_rules_scope() -> None:
    # A role, client or claim missing: no scope grants it, so none is named (RFC 6750 §3.1).
    challenger = Challenger(METADATA)
    error = InsufficientScope("the token lacks the role 'admin'", scope="")
    assert challenger.header(error, scope="orders:read") == (
        'Bearer error="insufficient_scope", error_description="the token lacks the role '
        f'\'admin\'", resource_metadata="{METADATA}"'
    )
    named = InsufficientScope("needs orders:write", scope="orders:write")
    assert 'scope="orders:write"' in challenger.header(named, scope="orders:read")
    assert 'scope="orders:read"' in challenger.header(MissingCredentials(), scope="orders:read")


def test_temporarily_unavailable_is_503_with_retry_after_and_no_challenge() -> None:
    response = Challenger(METADATA).response(TemporarilyUnavailable("keys down", retry_after=7))
    headers = headers_of(response)
    assert response[0] == 503
    assert headers["retry-after"] == "7"
    assert "www-authenticate" not in headers
    assert json.loads(response[2])["error"] == "temporarily_unavailable"


def test_the_same_refusal_gives_byte_identical_responses() -> None:
    challenger = Challenger(METADATA)
    first = challenger.response(InvalidToken("the token has expired"))
    second = challenger.response(InvalidToken("the token has expired"))
    assert first == second


def test_parse_challenges_reads_several_challenges_and_token_values() -> None:
    value = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse_challenges(value) == [
        ("Newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        ("Basic", {"realm": "simple"}),
    ]


@pytest.mark.parametrize("value", ['="x"', "Bearer error=", 'Bearer error="x", @'])
def test_parse_challenges_refuses_what_is_not_a_challenge(value: str) -> None:
    with pytest.raises(ValueError):
        parse_challenges(value)
