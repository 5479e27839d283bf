"""What a refused JWT's log line says: what the token carried beside what was expected.

Never the token: only its ``iss``, ``aud``, client and ``kid``, each bounded in length and
shown as ``%r`` so that a value cannot forge a log line. The token itself is logged as its
SHA-256 prefix where the refusal is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from oauthguard._verify.trust import IssuerDirectory, TokenRules, TrustedIssuer
from oauthguard._wire.errors import InvalidToken

logger = logging.getLogger("oauthguard")

MAX_SHOWN = 80
MAX_ITEMS = 5


def shown(value: object) -> str:
    """A claim's value for the log: a truncated string's repr, a few items of a list."""
    if isinstance(value, str):
        return repr(value[:MAX_SHOWN]) + ("..." if len(value) > MAX_SHOWN else "")
    if isinstance(value, list):
        items = ", ".join(shown(item) for item in value[:MAX_ITEMS])
        return f"[{items}{', ...' if len(value) > MAX_ITEMS else ''}]"
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
) -> str | None:
    """The first fix an issuer's ``explain`` gives for this refusal. Every issuer is asked
    when the token's own is not one of ours (a token of the provider's other issuer)."""
    for rules in candidates:
        if rules.explain is None:
            continue
        try:
            fix = rules.explain(header, claims, refusal.description)
        except Exception:  # an explanation never changes the answer
            logger.exception("Issuer(explain=...) failed")
            continue
        if isinstance(fix, str) and fix:  # its own line: it may quote the token's values
            return "".join(c if c.isprintable() else "?" for c in fix[:500])
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
    fix = explained(refusal, header, claims, candidates)
    refusal.detail = detail if fix is None else f"{detail}; fix: {fix}"
