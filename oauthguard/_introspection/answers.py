"""What an introspection call's outcome says: about the token, or about the service.

Every outcome is one of three (RFC 7662 §2.2-2.3): the members of a well-formed 200 answer;
an answer about this one token that cannot be used (``AboutThisToken``: a 4xx other than
401 and 429, a body that is not a JSON object with a boolean ``active``, one we cannot
read): 503 for that token only, the service being up; or a failure of the service itself
(``ServiceFailure``: no connection, a timeout, a 5xx, 401 for our credentials, 429), which
the circuit breaker counts. Neither failure is ever a pass, nor a 401: the server did not
say the token is invalid, and a 401 would send clients to throw away good tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from oauthguard._http.breaker import parse_retry_after
from oauthguard._http.fetch import Fetched
from oauthguard._jose.jsonobj import loads as loads_json
from oauthguard._wire.errors import InvalidToken, TemporarilyUnavailable

CREDENTIAL_SETTINGS = "Introspection(client_id=, client_secret=/private_key=, auth_method=)"
ENDPOINT_SETTING = "Introspection(endpoint=)"

# The request never reached the server (or our own pool is exhausted): no token caused it.
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


class IntrospectionFailure(TemporarilyUnavailable):
    """No usable answer: 503 saying ``summary``; ``reason`` and ``setting`` are for the log."""

    def __init__(self, summary: str, reason: str, setting: str = ENDPOINT_SETTING) -> None:
        super().__init__(
            f"the token could not be introspected: the introspection endpoint {summary}"
        )
        self.reason = reason
        self.setting = setting


class ServiceFailure(IntrospectionFailure):
    """A failure of the service. ``per_token``: one odd token could cause it (the server
    hangs or fails on it), so it counts once per distinct token; ``wait``: the seconds its
    ``Retry-After`` asked for."""

    per_token = False
    wait = 0.0


class AboutThisToken(IntrospectionFailure):
    """An answer about this token that is no answer we can use: 503 for it alone."""


def transport_failure(exc: httpx.HTTPError, timeout: float) -> ServiceFailure:
    """No answer: the server unreachable (at once), or silent or gone after the token was
    sent (counted per token)."""
    if isinstance(exc, _UNREACHABLE):
        return ServiceFailure("is unreachable", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        failure = ServiceFailure(
            "timed out",
            f"no answer within {timeout:g}s",
            "Introspection(timeout=) or the endpoint's health",
        )
    else:
        failure = ServiceFailure("is unreachable", f"{type(exc).__name__}: {exc}")
    failure.per_token = True
    return failure


def status_failure(response: Fetched, now: float) -> IntrospectionFailure:
    """What a status other than 200 means (``unsupported_token_type`` is read before)."""
    status = response.status_code
    if status == 401:
        # RFC 7662 §2.1: the server refuses our client authentication, whatever the token.
        return ServiceFailure(
            "refused the resource server's credentials",
            "HTTP 401: our client credentials were refused",
            CREDENTIAL_SETTINGS,
        )
    if status == 429 or status >= 500:
        # RFC 6585 §4, RFC 9110 §15.6: overloaded or failing. A 5xx may be one odd token
        # crashing the server, so only 5xx on different tokens count.
        failure = ServiceFailure(f"answered HTTP {status}", f"HTTP {status}")
        failure.per_token = status != 429
        # RFC 9110 §10.2.3: how long it asks us to wait (the breaker bounds it).
        failure.wait = parse_retry_after(response.headers.get("retry-after"), now)
        return failure
    # RFC 7662 §2.3 leaves other errors to the server: a 400, a 403 (a token this client
    # may not introspect), a redirect we never follow.
    setting = CREDENTIAL_SETTINGS if status == 403 else ENDPOINT_SETTING
    return AboutThisToken(f"answered HTTP {status}", f"HTTP {status}", setting)


def json_members(body: bytes) -> dict[str, Any]:
    """The members of a JSON answer; ``AboutThisToken`` for anything but an object."""
    members = json_or_none(body)
    if not isinstance(members, dict):
        raise AboutThisToken("did not answer JSON", "the response is not a JSON object")
    return members


def check_active(members: dict[str, Any]) -> dict[str, Any]:
    """RFC 7662 §2.2: ``active`` is REQUIRED and a boolean."""
    if not isinstance(members.get("active"), bool):
        raise AboutThisToken(
            "answered without 'active'", "the response has no boolean 'active' member"
        )
    return members


def json_or_none(body: bytes) -> Any:
    """The JSON value of a UTF-8 body (RFC 8259 §8.1; a BOM is let pass), without lone
    surrogates (§8.2: no string made of them can be encoded again); None for anything else."""
    try:
        return loads_json(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
        return None


def error_code(body: bytes) -> str | None:
    """The RFC 6749 §5.2 ``error`` of an error response, if it is JSON with one."""
    document = json_or_none(body)
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, str) else None


# What token_type (RFC 7662 §2.2) or token_use (Cognito's, Ory's) says of a token that is no
# access token: an authorization server may introspect refresh and ID tokens as well, and
# need not heed our token_type_hint (RFC 7662 §2.1).
_OTHER_KINDS = frozenset({"refresh_token", "refresh", "id_token", "id"})


def check_token_kind(members: Mapping[str, Any]) -> None:
    """The answer does not describe a refresh or ID token: those are never access tokens."""
    for name in ("token_type", "token_use"):
        value = members.get(name)
        if isinstance(value, str) and value.lower() in _OTHER_KINDS:
            raise InvalidToken(
                f"the authorization server describes this token as {value[:40]!r} ({name}), "
                "not an access token"
            )
