"""The checks of a requirement a new token or a new authentication can meet: the audience
the route serves (RFC 8707) and RFC 9470 step-up (``acr``, ``auth_time``)."""

from __future__ import annotations

import math

from oauthguard._wire.errors import InsufficientUserAuthentication, InvalidToken
from oauthguard._wire.tokens import AccessToken


def check_required_audience(token: AccessToken, audience: str | None) -> None:
    """RFC 8707 §2 / RFC 9068 §4: this route serves ``audience``; the token must name it."""
    if audience is not None and audience not in token.audience:
        raise InvalidToken(f"the token is not meant for {audience} (aud)")


def check_acr(token: AccessToken, acr_values: tuple[str, ...], params: dict[str, str]) -> None:
    """RFC 9470 §3: the ``acr`` of the authentication must be one of ``acr_values``."""
    if not acr_values:
        return
    acr = token.claims.get("acr")
    if not isinstance(acr, str) or acr not in acr_values:
        raise InsufficientUserAuthentication(
            "a stronger authentication is required (acr)", **params
        )


#: How far ahead of the clock an ``auth_time`` may be (clock skew): one further ahead (a
#: timestamp in milliseconds, say) would meet every ``max_age`` for as long as the token lives.
AUTH_TIME_SKEW = 300


def check_max_age(
    token: AccessToken, max_age: int | None, now: float, params: dict[str, str]
) -> None:
    """RFC 9470 §3: the user authenticated (``auth_time``) at most ``max_age`` seconds ago."""
    if max_age is None:
        return
    auth_time = token.claims.get("auth_time")
    # An int is compared as it is: math.isfinite() cannot convert one beyond float range.
    if (
        isinstance(auth_time, bool)
        or not isinstance(auth_time, (int, float))
        or (isinstance(auth_time, float) and not math.isfinite(auth_time))
        or auth_time < now - max_age
    ):
        raise InsufficientUserAuthentication(
            "a more recent authentication is required (auth_time)", **params
        )
    if auth_time > now + AUTH_TIME_SKEW:  # milliseconds, or no time at all: never recent
        raise InsufficientUserAuthentication(
            "the token's auth_time is in the future: a new authentication is required",
            **params,
        )
