"""What one request to a ``ResourceServer`` is made of: its headers and target, the entry
the cache of verified tokens holds for its token, and what authenticating it gives."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from oauthguard._dpop.htu import is_authority
from oauthguard._dpop.proof import check_bearer
from oauthguard._http.paths import path_problem
from oauthguard._wire.errors import InvalidRequest, InvalidToken
from oauthguard._wire.tokens import AccessToken, AuthenticatedUser

#: Builds ``request.user`` (or any per-token object) from a validated token and its string.
UserFactory = Callable[[AccessToken, str], Any]
#: Request headers: a mapping, or (name, value) pairs where a name may repeat.
Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


class Verified:
    """What the cache of verified tokens holds for one token: the token in the one form it
    can be used in (DPoP-bound, or Bearer), the user built for it, and, for a DPoP-bound
    token, its hash for the proofs' ``ath`` (RFC 9449 §4.2). ``bearer``: whether the token
    passed ``check_bearer``, which reads only the token, so a cached one is checked once."""

    __slots__ = ("ath", "bearer", "token", "user")

    def __init__(self, token: AccessToken, user: Any, ath: str | None) -> None:
        self.token = token
        self.user = user
        self.ath = ath
        claims = token.claims
        if token.jkt is None and "cnf" not in claims and "token_type" not in claims:
            self.bearer = True  # what check_bearer reads is absent: it would pass
            return
        try:
            check_bearer(token)
        except InvalidToken:
            self.bearer = False
        else:
            self.bearer = True


class Authenticated(NamedTuple):
    """One authenticated request: its token, the user built for it, and the ``DPoP-Nonce``
    to send with the response (RFC 9449 §8), if any."""

    token: AccessToken
    user: Any
    dpop_nonce: str | None


def default_user(token: AccessToken, raw: str) -> AuthenticatedUser:
    """The user of a token unless ``user_factory`` says otherwise (Starlette-compatible)."""
    return AuthenticatedUser(token)


def header_pairs(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI has them: lowercase byte names, byte values, repeats kept."""
    multi = getattr(headers, "multi_items", None)  # httpx and Starlette Headers
    items: Iterable[tuple[Any, Any]] = (
        multi() if callable(multi) else headers.items() if isinstance(headers, Mapping) else headers
    )
    pairs = []
    try:
        for name, value in items:
            pairs.append((_octets(name).lower(), _octets(value)))
    except UnicodeEncodeError:  # RFC 9110 §5.5: a field value is octets, never wider
        raise InvalidRequest("a request header holds characters outside ISO-8859-1") from None
    except (TypeError, ValueError):  # None, or items that are not (name, value) pairs
        raise InvalidRequest("the request headers are not (name, value) pairs") from None
    return pairs


def _octets(value: object) -> bytes:
    """A header name or value as bytes: bytes-like as they are, anything else as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("latin-1")


# The http(s) scheme of each scheme a request URL may have (a WebSocket's too).
_HTTP_OF = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def request_target(url: str, public_origin: str | None) -> tuple[str, bytes, str]:
    """The path, query and DPoP ``htu`` (RFC 9449 §4.3: no query or fragment) of a request
    to ``url``; ``InvalidRequest`` for a URL that is no URL, or whose path is not in normal
    form (the path picks the resource, as in ``OAuthGuard``)."""
    try:
        parts = urlsplit(url)
        raw_path = parts.path or "/"
        path, raw, query = unquote(raw_path), raw_path.encode("ascii"), parts.query.encode("ascii")
    except (ValueError, TypeError, AttributeError):  # UnicodeEncodeError is a ValueError
        raise InvalidRequest("the request URL is not an absolute URI (RFC 3986 §4.3)") from None
    # An absolute http(s) URI of a host and port (RFC 9110 §7.2), and never a fragment: a
    # path, userinfo or '#' in what names the host would move the path a token is judged by.
    scheme = parts.scheme.lower()
    unreadable = not url.isprintable() or " " in url  # urlsplit drops tabs and newlines
    if unreadable or scheme not in _HTTP_OF or not is_authority(parts.netloc):
        raise InvalidRequest("the request URL is not an absolute URI (RFC 3986 §4.3)")
    if "#" in url:
        raise InvalidRequest("the request URL has a fragment, which no request sends")
    problem = path_problem(path, raw)
    if problem is not None:
        raise InvalidRequest(problem)
    # RFC 9449 §4.3 / RFC 6455 §4.1: a WebSocket handshake's htu is its http(s) URI.
    htu = _HTTP_OF[scheme] + url.partition("?")[0][len(parts.scheme) :]
    return path, query, htu if public_origin is None else public_origin + raw_path
