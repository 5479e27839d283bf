"""The fix to show for a refused check when no provider's preset gave one: what the token
and the issuer's answers say of the usual mistakes. These only explain a refusal the
guard's own checks made; they never decide anything."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

Claims = Mapping[str, Any]
#: OpenID Connect Core §2 / §3.1.3.6: members only ID tokens carry.
ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash")


def id_token_fix(claims: Claims) -> str | None:
    """The fix when the token looks like an OpenID Connect ID token."""
    found = [name for name in ID_TOKEN_CLAIMS if name in claims]
    aud, azp = claims.get("aud"), claims.get("azp")
    if not found and not (isinstance(aud, str) and aud == azp):
        return None
    why = f"it carries {', '.join(found)}" if found else f"its aud is its own client {aud!r}"
    return (
        f"this looks like an OpenID Connect ID token ({why}): ID tokens tell the client who "
        "signed in and are never credentials for an API; send the access token instead"
    )


def typ_fix(header: Mapping[str, Any], claims: Claims) -> str:
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() == "dpop+jwt":
        return (
            "this is a DPoP proof: send the access token in Authorization and the proof in "
            "the DPoP header"
        )
    return id_token_fix(claims) or (
        f"typ {str(typ)[:40]!r} marks another kind of JWT (RFC 8725 §3.11): send an access "
        "token (typ at+jwt, or JWT)"
    )


def issuer_fix(iss: object, named: tuple[str, ...]) -> str:
    if isinstance(iss, str) and any(iss.rstrip("/") == url.rstrip("/") for url in named):
        return (
            f"the token's iss {iss!r} differs from the issuer named only by a trailing "
            "slash: the issuer is matched exactly (RFC 8414 §3.3), name it as the token does"
        )
    return (
        f"the token was issued by {str(iss)[:100]!r}: if you trust that issuer, name it with "
        "--issuer; else get a token from the issuer you named"
    )


def audience_fix(claims: Claims, resource: str) -> str:
    return id_token_fix(claims) or (
        f"the token is for {claims.get('aud')!r}, not {resource!r}: request it for this API "
        "(resource=... by RFC 8707, or the provider's audience parameter), or accept its "
        "audience with Issuer(audiences=...) (--audience here)"
    )


def time_fix(claims: Claims, leeway: float, clock_offset: float | None, said: str = "") -> str:
    """The fix for a refused ``exp``, ``nbf`` or ``iat``: the clock first, when the issuer's
    ``Date`` says it is off by more than the leeway."""
    if "not a number" in said:
        return (
            "exp, nbf and iat are NumericDates, seconds since 1970 as a JSON number "
            "(RFC 7519 §2): the issuer writes them otherwise"
        )
    now = time.time()
    if clock_offset is not None and abs(clock_offset) > leeway:
        side = "behind" if clock_offset > 0 else "ahead of"
        return (
            f"this machine's clock is {abs(clock_offset):.0f} s {side} the issuer's (its Date "
            f"header), more than the {leeway:g} s of JWT(leeway=...): synchronize it (NTP)"
        )
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool) and exp <= now - leeway:
        return (
            f"the token expired {ago(now - exp)} ago: get a new one (a refresh token, or sign "
            "in again)"
        )
    if "exp" not in claims:
        return "the issuer must give its access tokens an expiry (RFC 9068 §2.2: exp)"
    return (
        "the token is not valid yet: the issuer's clock is ahead of this machine's, by more "
        f"than JWT(leeway={leeway:g}); synchronize the clocks (NTP)"
    )


def binding_fix(scheme: str, bound: bool, mode: str) -> str:
    """RFC 9449 §7: the scheme must match the token's binding and the API's DPoP setting."""
    if mode == "required" and not bound:
        return (
            "this API takes DPoP-bound tokens only (DPoP(mode='required')): the client must "
            "send a DPoP proof when it asks for the token (RFC 9449 §5), then use the DPoP scheme"
        )
    if mode == "disabled":
        return "this API does not take DPoP (DPoP(mode='disabled')): send an unbound Bearer token"
    if bound:
        return (
            "the token is DPoP-bound (cnf.jkt): send it as 'Authorization: DPoP <token>' with "
            "a DPoP proof of its key in the DPoP header (RFC 9449 §7.1); --scheme DPoP checks it so"
        )
    return "the token is not DPoP-bound: send it as 'Authorization: Bearer <token>'"


def signature_fix() -> str:
    return (
        "the signature does not verify with the issuer's key: the token was changed or cut "
        "short (copied whole?), or it comes from another issuer or environment"
    )


def keys_fix(kid: object) -> str:
    return (
        f"the issuer's JWKS has no key with kid {str(kid)[:60]!r}: the token was signed by "
        "another issuer or environment (staging?), or with a key since rotated out"
    )


def algorithm_fix(alg: object) -> str:
    if isinstance(alg, str) and alg.upper().startswith("HS"):
        return (
            f"{alg} is signed with a shared secret, which a resource server never accepts "
            "(RFC 8725 §3.2): make the issuer sign access tokens with RS256 or ES256"
        )
    return "make the issuer sign access tokens with RS256, PS256, ES256 or EdDSA"


def ago(seconds: float) -> str:
    """A duration as a person says it: 42 s, 5 min, 3 h, 2 days."""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
