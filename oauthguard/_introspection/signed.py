"""RFC 9701: introspection responses signed by the authorization server as a JWT."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oauthguard._verify.jwt import check_aud_claim, check_token_signature, numeric_date, split_jws
from oauthguard._verify.keys import KeySet
from oauthguard._wire.errors import InvalidToken

MEDIA_TYPE = "application/token-introspection+jwt"
# RFC 9701 §5: typ is token-introspection+jwt (RFC 7515 §4.1.9: the application/ prefix
# may be present; compared case-insensitively).
_TYPES = frozenset({"token-introspection+jwt", MEDIA_TYPE})


class BadSignedResponse(Exception):
    """The signed introspection response cannot be trusted; the message says why."""


async def read_signed_response(
    text: str,
    *,
    key_sets: Mapping[str, KeySet],
    algorithms: frozenset[str],
    audiences: frozenset[str],
    leeway: float,
    now: float,
) -> dict[str, Any]:
    """The introspection members inside a verified RFC 9701 response.

    Raises ``BadSignedResponse``, or ``TemporarilyUnavailable`` when the issuer's keys
    cannot be fetched.
    """
    try:
        header, claims, signing_input, signature = split_jws(text.strip())
    except InvalidToken:
        raise BadSignedResponse("the response is not a signed JWT") from None
    alg = _check_header(header, algorithms)
    iss = claims.get("iss")
    # RFC 9701 §5 / RFC 8725 §3.8: iss is one of our issuers, and its keys sign the response.
    key_set = key_sets.get(iss) if isinstance(iss, str) else None
    if key_set is None:
        raise BadSignedResponse(
            f"the response's iss {str(iss)[:80]!r} is not a configured authorization server"
        )
    kid = header.get("kid")
    keys = key_set.cached(kid) or await key_set.get(kid)
    try:
        check_token_signature(alg, keys, signing_input, signature)
    except InvalidToken:
        raise BadSignedResponse(
            f"the response's signature does not verify with the keys of {iss}"
        ) from None
    try:
        # RFC 9701 §5: aud identifies this resource server (its client_id or resource).
        check_aud_claim(claims, audiences)
    except InvalidToken:
        raise BadSignedResponse(
            "the response's aud does not name this resource server (its client_id or resource)"
        ) from None
    _check_iat(claims, now, leeway)
    return _members(claims)


def _check_header(header: Mapping[str, Any], algorithms: frozenset[str]) -> str:
    alg = header.get("alg")
    # RFC 8725 §3.1: the algorithm comes from our allow-list, never from the response alone.
    if not isinstance(alg, str) or alg not in algorithms:
        raise BadSignedResponse(f"the response's alg {str(alg)[:20]!r} is not accepted")
    # RFC 7515 §4.1.11: no extension is understood, so any crit is fatal.
    if "crit" in header:
        raise BadSignedResponse("the response has critical header parameters")
    # RFC 9701 §5 / RFC 8725 §3.11: explicit typing keeps other JWTs from passing.
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYPES:
        raise BadSignedResponse(
            f"the response's typ {str(typ)[:40]!r} is not token-introspection+jwt"
        )
    return alg


def _check_iat(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """RFC 9701 §5: iat is required; a fresh response was issued just now (within leeway)."""
    try:
        iat = numeric_date(claims, "iat")
    except InvalidToken:
        iat = None
    if iat is None:
        raise BadSignedResponse("the response has no numeric iat")
    if abs(now - iat) > leeway:
        raise BadSignedResponse("the response's iat is not within the leeway of now")


def _members(claims: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 9701 §5: the introspection members are the token_introspection claim."""
    members = claims.get("token_introspection")
    if not isinstance(members, dict):
        raise BadSignedResponse("the response has no token_introspection object")
    return members
