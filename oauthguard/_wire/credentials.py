"""Reading the request's credentials, strictly (RFC 6750 §2, RFC 9449 §7.1)."""

from __future__ import annotations

import re
import string
from collections import OrderedDict
from collections.abc import Container, Iterable
from typing import NamedTuple, NoReturn
from urllib.parse import parse_qsl

from oauthguard._wire.errors import (
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
)

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_CHARS = (string.ascii_letters + string.digits + "-._~+/").encode("ascii")
_SCHEMES = {b"bearer": "Bearer", b"dpop": "DPoP"}
# RFC 9110 §11.4: credentials = auth-scheme [ 1*SP token68 ]; the scheme is a token.
_SCHEME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")


class Credentials(NamedTuple):
    """The token, the scheme it came with, and the raw ``DPoP`` header values.

    Immutable; a named tuple because it is built on every request (a frozen dataclass
    costs several times as much to construct).
    """

    scheme: str
    token: str
    dpop_proofs: tuple[bytes, ...] = ()


# The named tuple's own __new__ is a Python function; tuple.__new__ builds the same in C.
_new_credentials = tuple.__new__


#: How many of a header's last bytes find it among the known ones: a token's signature ends
#: it, so they differ from one token to the next; the whole header is compared after.
_TAIL = 24


class KnownHeaders:
    """The ``Bearer <token>`` header values sent again for tokens in ``verified`` (the keys
    of the cache of verified tokens), each with its token.

    A request sending one exactly so (as clients most often do) is read with one lookup of
    the header's last bytes and one comparison of the whole: never scanned, decoded, or
    hashed whole, as a token string made anew for each request would be. A header is kept
    when it is sent again (a token used once costs one lookup here), as the bytes the
    request came with. Bounded, oldest out first. An entry that outlives its token's entry
    in the cache only names a token that is then verified anew.
    """

    __slots__ = ("_by_tail", "_max_size", "get", "verified")

    def __init__(self, max_size: int, verified: Container[object] = ()) -> None:
        self._by_tail: OrderedDict[bytes, tuple[bytes, str]] = OrderedDict()
        self._max_size = max_size
        self.verified = verified
        #: ``get(tail)``: the ``(header value, token)`` whose value ends with ``tail``, or
        #: None; one C call, for the hot path.
        self.get = self._by_tail.get

    def add(self, header: bytes, token: str) -> None:
        """Know ``header``, the value ``Bearer <token>`` of a request with a verified token."""
        # Kept by reference, so only an immutable bytes object: never a buffer to reuse.
        if self._max_size <= 0 or type(header) is not bytes:
            return
        tail = header[-_TAIL:]
        by_tail = self._by_tail
        if tail not in by_tail and len(by_tail) >= self._max_size:
            by_tail.popitem(last=False)
        by_tail[tail] = (header, token)

    def __len__(self) -> int:
        return len(self._by_tail)


#: No header known: for reading credentials without a cache.
NO_KNOWN_HEADERS = KnownHeaders(0)


def extract(
    headers: Iterable[tuple[bytes, bytes]],
    query_string: bytes,
    max_token_bytes: int,
    known: KnownHeaders = NO_KNOWN_HEADERS,
    dpop: bool = False,
) -> Credentials:
    """The credentials of one request: ``read_credentials`` with its settings last."""
    return read_credentials(max_token_bytes, known, dpop, headers, query_string)


def read_credentials(
    max_token_bytes: int,
    known: KnownHeaders,
    dpop: bool,
    headers: Iterable[tuple[bytes, bytes]],
    query_string: bytes,
) -> Credentials:
    """The credentials of one request, or a ``GuardError`` saying what is wrong with them.
    The settings come first, so a ``functools.partial`` of them takes positional arguments
    only (a partial with keywords builds a dict on every call).

    Raises ``MissingCredentials`` when there are none (or another scheme is used).
    ``known`` holds the headers of tokens verified before (the resource server's), read
    without the checks they passed then. ``dpop=True`` (a resource that accepts DPoP) reads
    the ``DPoP`` header too. The headers are read in one pass, with constant work for each,
    that ends at the second ``Authorization`` or ``DPoP`` header: that is the answer
    already, however many follow.
    """
    authorization: bytes | None = None
    proofs: tuple[bytes, ...] = ()
    for name, value in headers:
        if name == b"authorization":
            if authorization is not None:
                # RFC 6750 §3.1: more than one method (here, header) is a malformed request.
                # RFC 9449 §7.2: which scheme was meant is unknown, so both challenges say so.
                raise InvalidRequest(
                    "the request has more than one Authorization header", scheme="both"
                )
            authorization = value
        elif name == b"dpop" and dpop:
            if proofs:  # RFC 9449 §4.3 check 1: not more than one DPoP header field
                raise InvalidDPoPProof("the request has more than one DPoP header")
            proofs = (value,)
    if authorization is None:
        raise MissingCredentials()
    if query_string and _query_token(query_string):
        # RFC 6750 §2.3 and §3.1: we never take query tokens, and two methods is an error.
        raise InvalidRequest("the token was sent in the query string as well as in a header")
    if type(authorization) is not bytes:  # ASGI says bytes; a bytearray is read as them
        authorization = bytes(authorization)
    # Reaching the comparison takes a header's exact last bytes (a lookup by a hash with a
    # secret key), so its timing tells nothing to a client without them.
    seen = known.get(authorization[-_TAIL:])
    if seen is not None and seen[0] == authorization:
        return _new_credentials(Credentials, ("Bearer", seen[1], proofs))
    if authorization.startswith(b"Bearer "):
        # The common case, a token sent as it most often is. A b64token holds no SP or HTAB
        # the reading below would take away, so it reads the same, with two checks.
        raw = authorization[7:]
        if len(raw) <= max_token_bytes and is_b64token(raw):
            text = raw.decode("latin-1")
            if text in known.verified:  # sent again (its hash serves the cache lookup next)
                known.add(authorization, text)
            return _new_credentials(Credentials, ("Bearer", text, proofs))
    return _read_authorization(authorization, max_token_bytes, proofs)


def _read_authorization(
    authorization: bytes, max_token_bytes: int, proofs: tuple[bytes, ...]
) -> Credentials:
    """Any other ``Authorization`` value: the scheme in any case, spaces around it."""
    value = authorization.strip(b" \t")
    scheme_raw, _, token = value.partition(b" ")
    scheme = _SCHEMES.get(scheme_raw.lower())
    if scheme is None:
        _refuse_scheme(value)
    token = token.strip(b" ")
    if not token:
        raise InvalidRequest(f"the {scheme} scheme needs a token after it", scheme=scheme)
    if len(token) > max_token_bytes:
        raise InvalidToken(f"the token is longer than {max_token_bytes} bytes", scheme=scheme)
    if not is_b64token(token):
        raise InvalidRequest(
            f"the Authorization header is not '{scheme} <token>' (RFC 6750 2.1)", scheme=scheme
        )
    return _new_credentials(Credentials, (scheme, token.decode("latin-1"), proofs))


def check_token(token: object, max_token_bytes: int) -> None:
    """A token handed over as a string (``ResourceServer.verify``, a token an SDK read from
    a header, one from a WebSocket message) gets the checks a header's gets: a string, a
    ``b64token`` (RFC 6750 §2.1), at most ``max_token_bytes`` long; ``InvalidToken`` if not."""
    if not isinstance(token, str):
        raise InvalidToken(f"the token is not a string but {type(token).__name__}")
    if len(token) > max_token_bytes:
        raise InvalidToken(f"the token is longer than {max_token_bytes} bytes")
    if not token.isascii() or not is_b64token(token.encode("ascii")):
        raise InvalidToken("the token is not a b64token (RFC 6750 2.1)")


def _refuse_scheme(value: bytes) -> NoReturn:
    """No scheme of ours before the first space: another scheme, or ours run into the token."""
    # RFC 9110 §11.4: the scheme is a token, ended by the first character that is not one.
    scheme_raw = _SCHEME.match(value).group()  # type: ignore[union-attr]  # matches ""
    scheme = _SCHEMES.get(scheme_raw.lower())
    if scheme is None:
        raise MissingCredentials()
    raise InvalidRequest(f"the {scheme} scheme must be followed by a space and the token")


def is_b64token(value: bytes) -> bool:
    """RFC 6750 §2.1 ``b64token``: allowed characters, then only trailing ``=``."""
    body = value.rstrip(b"=")
    # translate() deletes every allowed byte in one C pass; nothing may be left over.
    return bool(body) and not body.translate(None, _B64TOKEN_CHARS)


def _query_token(query_string: bytes) -> bool:
    # Only a query that names it, possibly percent-encoded, is parsed.
    if b"access_token" not in query_string and b"%" not in query_string:
        return False
    return any(key == "access_token" for key, _ in parse_qsl(query_string.decode("latin-1")))
