"""``JWTVerifier``: JWT access tokens by RFC 9068 §4, with the RFC 8725 best practices."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, overload

from oauthguard._jose.b64 import b64url_decode
from oauthguard._jose.jsonobj import loads as loads_json
from oauthguard._jose.signatures import verify_signature
from oauthguard._verify.claims import read_actor, read_roles, read_scopes
from oauthguard._verify.diagnostics import annotate, annotate_encrypted
from oauthguard._verify.keys import KEY_TYPES, Key
from oauthguard._verify.trust import (
    NO_ROLES,
    IssuerDirectory,
    TokenRules,
    client_id_of,
)
from oauthguard._wire.errors import InvalidToken
from oauthguard._wire.tokens import AccessToken

logger = logging.getLogger("oauthguard")

ASYMMETRIC_ALGORITHMS = frozenset(KEY_TYPES)
# RFC 9068 §2.1 / RFC 8725 §3.11: explicit typing; compared case-insensitively (RFC 7515 §4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEGACY_TYPES = frozenset({"jwt", "application/jwt"})
HEADER_CACHE_SIZE = 32


def jws_segments(token: str) -> list[str]:
    """The header, payload and signature segments of a compact JWS (RFC 7515 §7.1)."""
    parts = token.split(".")
    if len(parts) == 5:
        raise InvalidToken("encrypted (JWE) tokens are not accepted")
    if len(parts) != 3:
        raise InvalidToken("the token is not a JWT (three dot-separated parts)")
    return parts


def json_segment(segment: str) -> dict[str, Any]:
    """A base64url segment holding a JSON object (RFC 7519 §7.2: UTF-8 JSON)."""
    try:
        # Decoding the UTF-8 first spares json.loads its encoding sniffing.
        value = loads_json(b64url_decode(segment).decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeError and JSONDecodeError are ValueErrors
        raise InvalidToken("the token is not a well-formed JWT") from None
    if not isinstance(value, dict):
        raise InvalidToken("the token's header and payload must be JSON objects")
    return value


def signature_segment(segment: str) -> bytes:
    """The signature bytes of a compact JWS."""
    try:
        return b64url_decode(segment)
    except ValueError:
        raise InvalidToken("the token is not a well-formed JWT") from None


def split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS (RFC 7515 §7.1)."""
    head, body, signature = jws_segments(token)
    return (
        json_segment(head),
        json_segment(body),
        f"{head}.{body}".encode("ascii"),
        signature_segment(signature),
    )


def check_header(header: Mapping[str, Any], algorithms: frozenset[str], strict_typ: bool) -> str:
    """The ``alg`` to verify with, after the header checks."""
    alg = header.get("alg")
    # RFC 8725 §3.1-3.2: the allow-list decides; 'none' and HMAC are never in it.
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken(
            "the token's signing algorithm (alg) is not accepted; allowed: "
            + ", ".join(sorted(algorithms))
        )
    # RFC 7515 §4.1.11: we understand no extension, so any 'crit' is fatal.
    if "crit" in header:
        raise InvalidToken("the token has critical header parameters we do not understand")
    check_token_typ(header.get("typ"), strict_typ)
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("the token's kid is not a string")
    # RFC 8725 §3.10: jku, x5u, jwk and x5c in the token are never used, so never fetched.
    return alg


def check_token_typ(typ: Any, strict: bool) -> None:
    """RFC 9068 §4 and RFC 8725 §3.11: DPoP proofs, ID and logout tokens never pass."""
    if typ is None:
        if strict:
            raise InvalidToken("the token has no typ; at+jwt is required")
        return
    value = typ.lower() if isinstance(typ, str) else None
    if value in ACCESS_TOKEN_TYPES or (not strict and value in LEGACY_TYPES):
        return
    raise InvalidToken("the token's typ is not an access token type (at+jwt)")


def numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """An RFC 7519 §2 NumericDate claim, or None when absent."""
    value = claims.get(name)
    return None if value is None else date_value(value, name)


def date_value(value: object, name: str) -> float:
    """The value of the NumericDate claim ``name`` (RFC 7519 §2), present."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidToken(f"the {name} claim is not a number")
    try:
        date = float(value)
    except OverflowError:  # an int beyond float range (JSON allows it) is no usable date
        date = math.nan
    if not math.isfinite(date):
        raise InvalidToken(f"the {name} claim is not a number")
    return date


@overload
def check_window(
    claims: Mapping[str, Any], now: float, leeway: float, require_exp: Literal[True]
) -> float: ...
@overload
def check_window(
    claims: Mapping[str, Any], now: float, leeway: float, require_exp: bool = False
) -> float | None: ...


def check_window(
    claims: Mapping[str, Any], now: float, leeway: float, require_exp: bool = False
) -> float | None:
    """RFC 7519 §4.1.4-4.1.6 with leeway, for whichever of exp/nbf/iat is present; the exp.
    RFC 9068 §2.2: an access token's ``exp`` is required (``require_exp``)."""
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if exp is not None:
        exp = date_value(exp, "exp")
        if exp <= now - leeway:
            raise InvalidToken("the token has expired")
    if nbf is not None and date_value(nbf, "nbf") > now + leeway:
        raise InvalidToken("the token is not valid yet (nbf)")
    if iat is not None and date_value(iat, "iat") > now + leeway:
        raise InvalidToken("the token was issued in the future (iat)")
    if exp is None and require_exp:
        raise InvalidToken("the token has no exp claim")
    return exp


def check_aud_claim(
    claims: Mapping[str, Any], audiences: frozenset[str], required: bool = True
) -> tuple[str, ...]:
    """RFC 9068 §4 / RFC 8707: ``aud`` (string or array) names one of our resources.

    With ``required=False`` (RFC 7662 §2.2, where ``aud`` is optional) an absent ``aud``
    passes and gives ``()``.
    """
    aud = claims.get("aud")
    if aud is None and not required:
        return ()
    if isinstance(aud, str):
        values: Any = (aud,)
    elif isinstance(aud, list | tuple) and all(isinstance(v, str) for v in aud):
        values = aud
    else:
        raise InvalidToken("the token has no valid aud claim")
    if audiences.isdisjoint(values):
        raise InvalidToken("the token is not meant for this resource (aud)")
    return tuple(values)


_ABSENT = object()

# RFC 8705 §3.1 / RFC 7800 §3.2-3.4: what each confirmation method binds the token to.
_CONFIRMATIONS = {
    "x5t#S256": "a client certificate",
    "jwk": "a key (jwk)",
    "jwe": "an encrypted key (jwe)",
    "kid": "a key id (kid)",
    "jku": "a key set URL (jku)",
}


def bound_key(cnf: object) -> str | None:
    """The DPoP key thumbprint the token is bound to (RFC 9449 §6.1: ``cnf.jkt``), if any.

    RFC 7800 §3.1 / RFC 9449 §6.1: a confirmation we cannot read must not make the token
    look unbound (and so usable as a plain Bearer token). RFC 7800 §3 / RFC 8705 §3: nor
    may one by a method we cannot check (a certificate, a key we are not shown), so only
    ``jkt``, alone or with other members, binds a token we accept.
    """
    if not isinstance(cnf, dict):
        raise InvalidToken("the token's cnf claim is malformed")
    jkt = cnf.get("jkt")
    if not isinstance(jkt, str | None):
        raise InvalidToken("the token's cnf claim is malformed")
    if jkt is None and cnf:
        method = sorted(cnf)[0] if "x5t#S256" not in cnf else "x5t#S256"
        what = _CONFIRMATIONS.get(method, "a confirmation method")
        # The name is the token's: quoted (repr), it forges no log line nor terminal escape.
        named = method if method in _CONFIRMATIONS else repr(str(method)[:40])
        raise InvalidToken(
            f"the access token is bound to {what} ({named}), which "
            "this resource server cannot check"
        )
    return jkt


def build_token(
    claims: Mapping[str, Any],
    audience: tuple[str, ...],
    expires_at: float | None,
    rules: TokenRules,
    raw: str = "",
) -> AccessToken:
    """The ``AccessToken`` for validated claims (shared with introspection), its scopes and
    roles read where its issuer's ``rules`` say; ``raw`` is the token string itself."""
    # a "cnf" or "act" of null is malformed, never absent
    cnf, act = claims.get("cnf", _ABSENT), claims.get("act", _ABSENT)
    jkt = None if cnf is _ABSENT else bound_key(cnf)
    sub, iss = claims.get("sub"), claims.get("iss")
    if sub is not None and not isinstance(sub, str):  # RFC 7519 §4.1.2: a StringOrURI
        raise InvalidToken("the token's sub claim is not a string")
    # Positional: a frozen dataclass takes keywords at twice the cost, on every fresh token.
    return AccessToken(
        sub,  # subject
        client_id_of(claims),  # client_id
        read_scopes(claims, rules.scope_paths),  # scopes
        audience,
        iss if isinstance(iss, str) else None,  # issuer
        expires_at,
        claims,
        "Bearer",  # scheme
        jkt,
        read_roles(claims, rules.role_paths) if rules.role_paths else NO_ROLES,  # roles
        None if act is _ABSENT else read_actor(act),  # actor, RFC 8693 §4.1
        raw,
    )


class JWTVerifier:
    """Verifies JWT access tokens against the keys and rules of the issuer named in ``iss``.

    Segments are parsed here (strict base64url in C) and signatures checked directly with
    ``cryptography``, so a fresh token costs little more than the signature itself. A
    refusal carries in its ``detail`` what the token carried beside what was expected.
    """

    def __init__(
        self,
        issuers: IssuerDirectory,
        *,
        algorithms: Iterable[str],
        leeway: float = 30,
        strict_typ: bool = False,
        clock: Callable[[], float],
    ) -> None:
        self.issuers = issuers
        self.algorithms = frozenset(algorithms) & ASYMMETRIC_ALGORITHMS
        self.leeway = leeway
        self.strict_typ = strict_typ
        self.clock = clock
        # Header segment -> (header, alg) of tokens whose signature verified: an issuer signs
        # with a few headers, so each is parsed and checked once. Bounded, oldest out first.
        self._headers: dict[str, tuple[dict[str, Any], str]] = {}

    def issuer_of(self, token: str) -> str | None:
        """The unverified ``iss`` if the token looks like a JWT from one of our issuers."""
        try:
            _, payload, _, _ = split_jws(token)
        except InvalidToken:
            return None
        iss = payload.get("iss")
        return iss if isinstance(iss, str) and self.issuers.claims(iss) else None

    async def verify(self, token: str) -> AccessToken:
        """The validated token; ``InvalidToken`` or ``TemporarilyUnavailable`` otherwise."""
        try:
            head, body, signature = jws_segments(token)
        except InvalidToken as refusal:
            annotate_encrypted(refusal, token, self.issuers)
            raise
        known = self._headers.get(head)
        header = json_segment(head) if known is None else known[0]
        claims = json_segment(body)
        iss = claims.get("iss")
        # RFC 9068 §4: iss exactly one of ours; RFC 8725 §3.8: the key comes from that issuer.
        trusted = self.issuers.get(iss) if isinstance(iss, str) else None
        try:
            if known is None:
                alg = check_header(header, self.algorithms, self.strict_typ)
            else:
                alg = known[1]
            if trusted is None:
                raise InvalidToken("the token's issuer is not trusted")
            kid = header.get("kid")
            keys = trusted.keys.cached(kid) or await trusted.keys.get(kid)
            check_token_signature(
                alg, keys, f"{head}.{body}".encode("ascii"), signature_segment(signature)
            )
            if known is None:
                self._remember_header(head, header, alg)
            return self._checked(token, header, claims, trusted.rules)
        except InvalidToken as refusal:
            annotate(refusal, header, claims, self.issuers, trusted)
            raise

    def _checked(
        self, token: str, header: dict[str, Any], claims: dict[str, Any], rules: TokenRules
    ) -> AccessToken:
        """The checks of a signed token's claims: times, aud, client, the issuer's own."""
        exp = check_window(claims, self.clock(), self.leeway, require_exp=True)
        audience = check_aud_claim(claims, rules.audiences, rules.audience_required)
        if rules.clients:
            rules.check_client(claims)
        if rules.checks:
            rules.run_checks(header, claims)  # the provider's own, after the standard checks
        return build_token(claims, audience, exp, rules, token)

    def reuse_until(self, token: str, verified: AccessToken, now: float) -> float:
        """Until when a verified token may be reused: while its issuer's keys are fresh.
        Then it is verified again, so a token whose key left the issuer's JWKS (rotated
        out, revoked) is refused as a new token of that key is, and with the keys past
        ``JWT(keys_max_stale=)`` it is a 503 as a new token is."""
        trusted = self.issuers.get(verified.issuer) if verified.issuer is not None else None
        return math.inf if trusted is None else trusted.keys.fresh_until

    def _remember_header(self, head: str, header: dict[str, Any], alg: str) -> None:
        if len(self._headers) >= HEADER_CACHE_SIZE:
            del self._headers[next(iter(self._headers))]
        self._headers[head] = (header, alg)


def check_token_signature(
    alg: str, keys: list[Key], signing_input: bytes, signature: bytes
) -> None:
    """RFC 7515 §5.2: one of the issuer's keys that fits ``alg`` verifies the signature."""
    if not keys:
        raise InvalidToken("no signing key of the issuer matches the token's kid")
    fitting = False
    for key in keys:
        if alg in key.algorithms:
            if verify_signature(alg, key.public_key, signing_input, signature):
                return
            fitting = True
    if not fitting:
        raise InvalidToken(f"the issuer's key for this kid cannot verify {alg}")
    raise InvalidToken("the token's signature does not verify")
