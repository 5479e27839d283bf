"""Reading the request's credentials, strictly (RFC 6750 §2, RFC 9449 §7.1)."""

from __future__ import annotations

import re
import string
from collections.abc import Container, Iterable
from typing import Any, NamedTuple, NoReturn
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


def extract(
    headers: Iterable[tuple[bytes, bytes]],
    query_string: bytes,
    max_token_bytes: int,
    well_formed: Container[Any] = (),
    dpop: bool = False,
) -> Credentials:
    """The credentials of one request: ``read_credentials`` with its settings last."""
    return read_credentials(max_token_bytes, well_formed, dpop, headers, query_string)


def read_credentials(
    max_token_bytes: int,
    well_formed: Container[Any],
    dpop: bool,
    headers: Iterable[tuple[bytes, bytes]],
    query_string: bytes,
) -> Credentials:
    """The credentials of one request, or a ``GuardError`` saying what is wrong with them.
    The settings come first, so a ``functools.partial`` of them takes positional arguments
    only (a partial with keywords builds a dict on every call).

    Raises ``MissingCredentials`` when there are none (or another scheme is used).
    ``well_formed`` holds tokens known to pass the b64token check (the guard passes its
    cache of verified tokens), so a repeated token is not scanned again. ``dpop=True`` (a
    resource that accepts DPoP) reads the ``DPoP`` header too. The headers are read in one
    pass, with constant work for each, that ends at the second ``Authorization`` or
    ``DPoP`` header: that is the answer already, however many follow.
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
    if authorization.startswith(b"Bearer "):
        # The common case, a token sent as it most often is. A b64token holds no SP or HTAB
        # the reading below would take away, so it reads the same: a cached token (verified,
        # so a b64token within the size limit) needs no check, a new one the two of them.
        raw = authorization[7:]
        text = raw.decode("latin-1")
        if text in well_formed:
            return _new_credentials(Credentials, ("Bearer", text, proofs))
        if len(raw) <= max_token_bytes and is_b64token(raw):
            return _new_credentials(Credentials, ("Bearer", text, proofs))
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
    text = token.decode("latin-1")
    if text not in well_formed and not is_b64token(token):
        raise InvalidRequest(
            f"the Authorization header is not '{scheme} <token>' (RFC 6750 2.1)", scheme=scheme
        )
    return _new_credentials(Credentials, (scheme, text, proofs))


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
