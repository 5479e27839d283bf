"""What a refused JWT's log line says: what the token carried beside what was expected.

Never the token: only its ``iss``, ``aud``, client and ``kid``, each bounded in length and
shown as ``%r`` so that a value cannot forge a log line. The token itself is logged as its
SHA-256 prefix where the refusal is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from oauthguard._jose.b64 import b64url_decode
from oauthguard._verify.trust import IssuerDirectory, TokenCheck, TokenRules, TrustedIssuer
from oauthguard._wire.errors import InvalidToken

logger = logging.getLogger("oauthguard")

MAX_SHOWN = 80
MAX_ITEMS = 5


def shown(value: object) -> str:
    """A claim's value for the log: a truncated string's repr, a few items of a list (an
    item that is a list itself shown as ``<list>``: one level only, so a deeply nested
    claim costs no recursion)."""
    if isinstance(value, list):
        items = ", ".join(scalar_shown(item) for item in value[:MAX_ITEMS])
        return f"[{items}{', ...' if len(value) > MAX_ITEMS else ''}]"
    return scalar_shown(value)


def scalar_shown(value: object) -> str:
    """A string's truncated repr, a number or boolean as is, the type of anything else."""
    if isinstance(value, str):
        return repr(value[:MAX_SHOWN]) + ("..." if len(value) > MAX_SHOWN else "")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"<{type(value).__name__}>"


def listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(repr(value) for value in sorted(values)) + "]"


def client_claim(claims: Mapping[str, Any]) -> str:
    for name in ("client_id", "azp", "cid", "appid"):
        if name in claims:
            return f"{name}={shown(claims[name])}"
    return "client_id=None"


def token_detail(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    directory: IssuerDirectory,
    trusted: TrustedIssuer | None,
) -> str:
    """The token's ``iss``, ``aud``, client and ``kid``, and what its issuer expects."""
    carried = (
        f"iss={shown(claims.get('iss'))} aud={shown(claims.get('aud'))} "
        f"{client_claim(claims)} kid={shown(header.get('kid'))}"
    )
    if trusted is None:
        return f"{carried}; expected iss one of {listed(directory.expected)}"
    expected = f"aud one of {listed(trusted.rules.audiences)}"
    if trusted.rules.clients:
        expected += f", client one of {listed(trusted.rules.clients)}"
    return f"{carried}; expected {expected}"


def explained(
    refusal: InvalidToken,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    candidates: Iterable[TokenRules],
) -> tuple[str, TokenRules] | None:
    """The first fix an issuer's ``explain`` gives for this refusal, and that issuer's rules.
    Every issuer is asked when the token's own is not one of ours (a token of the provider's
    other issuer)."""
    for rules in candidates:
        if rules.explain is None:
            continue
        try:
            fix = rules.explain(header, claims, refusal.description)
        except Exception:  # an explanation never changes the answer
            logger.exception("Issuer(explain=...) failed")
            continue
        if isinstance(fix, str) and fix:  # its own line: it may quote the token's values
            return "".join(c if c.isprintable() else "?" for c in fix[:500]), rules
    return None


def annotate(
    refusal: InvalidToken,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    directory: IssuerDirectory,
    trusted: TrustedIssuer | None,
) -> None:
    """Give ``refusal`` its log detail: what the token carried, and the fix if known."""
    detail = token_detail(header, claims, directory, trusted)
    if trusted is not None:
        candidates: Iterable[TokenRules] = (trusted.rules,)
    else:
        candidates = directory.all_rules()
    found = explained(refusal, header, claims, candidates)
    # A token of no issuer of ours is judged by a provider's checks only if that provider
    # recognized it (explained it), so a stranger's token stays "not trusted".
    judged = candidates if trusted is not None else () if found is None else (found[1],)
    kind = kind_refusal(header, claims, judged)
    if kind is not None and kind.description != refusal.description:
        detail = f"{detail}; also: {refusal.description}"
        refusal.description = kind.description
    refusal.detail = detail if found is None else f"{detail}; fix: {found[0]}"


class TokenKind:
    """An ``Issuer(checks=...)`` entry that says what kind of token this is not (an ID token,
    a token for another API of the provider). It runs after the standard checks like any
    other; a token a standard check refused is shown to it too, and if it refuses, the
    refusal says what the token is rather than which check it failed first (RFC 8725 §3.11:
    a token of another kind is told apart before what it says is judged). Shown only tokens
    refused anyway, it can never let one pass."""

    __slots__ = ("check",)

    def __init__(self, check: TokenCheck) -> None:
        self.check = check

    def __call__(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        self.check(header, claims)


def kind_refusal(
    header: Mapping[str, Any], claims: Mapping[str, Any], candidates: Iterable[TokenRules]
) -> InvalidToken | None:
    """What the issuers' ``TokenKind`` checks say of a refused token, if they refuse it."""
    for rules in candidates:
        for check in rules.checks:
            if not isinstance(check, TokenKind):
                continue
            try:
                check(header, claims)
            except InvalidToken as refusal:
                return refusal
            except Exception:  # a provider check never changes the answer
                logger.exception("Issuer(checks=...) failed on a refused token")
    return None


def annotate_encrypted(refusal: InvalidToken, token: str, directory: IssuerDirectory) -> None:
    """Give the refusal of an encrypted token (JWE) its log detail from the protected header
    (RFC 7516 §7.1: readable, its first segment): an issuer that sends one where a signed
    JWT belongs (Auth0, asked for a token without an audience) may explain the fix."""
    parts = token.split(".")
    if len(parts) != 5:
        return
    try:
        header = json.loads(b64url_decode(parts[0]).decode("utf-8"))
    except (ValueError, RecursionError):
        return
    if not isinstance(header, dict):
        return
    iss = header.get("iss")
    claims = {"iss": iss} if isinstance(iss, str) else {}
    trusted = directory.get(iss) if isinstance(iss, str) else None
    detail = token_detail(header, claims, directory, trusted)
    found = explained(
        refusal, header, claims, directory.all_rules() if trusted is None else (trusted.rules,)
    )
    refusal.detail = detail if found is None else f"{detail}; fix: {found[0]}"
