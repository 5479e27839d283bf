"""A circuit breaker for a remote service: closed, open, half-open; pure, clock passed in.

Closed, every call is made. Failures of the service open it: at once for one that no
request can cause (the service cannot be reached, refuses our credentials, asks us to slow
down), or after consecutive failures on ``distinct`` different keys for one that an odd
request could cause by itself (a 5xx, a timeout after the request was sent), so a single
odd request, however often repeated, never opens it. Open, calls are refused for a pause
that starts at ``first_pause`` and doubles with each consecutive opening up to
``max_pause``. Then half-open: one call at a time, the probe, is let through while the
others are refused at once; a success closes the breaker and resets the schedule, a failure
opens it again for the next, longer pause.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Hashable

from oauthguard._telemetry import TELEMETRY


class Ticket:
    """Leave for one call; the probe's ticket holds the half-open breaker's one slot."""

    __slots__ = ()


class CircuitBreaker:
    """Whether to call a service now, from what its recent calls did (see the module)."""

    def __init__(
        self,
        *,
        first_pause: float = 0.5,
        max_pause: float = 30.0,
        distinct: int = 3,
        name: str = "breaker",
    ) -> None:
        #: What telemetry calls this breaker (its state changes are counted).
        self.name = name
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.distinct = distinct
        self._open_until: float | None = None  # None: closed
        self._pause = 0.0  # the last pause; 0 once a call succeeded
        self._failed_keys: set[Hashable] = set()  # of the failures since the last success
        self._probe: Ticket | None = None

    def state(self, now: float) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        if self._open_until is None:
            return "closed"
        return "open" if now < self._open_until else "half-open"

    def admit(self, now: float) -> Ticket | float:
        """A ticket for a call now, or the seconds to wait before asking again.

        Every ticket must be settled: ``succeeded``, ``failed`` or ``released``.
        """
        if self._open_until is None:
            return Ticket()
        if now < self._open_until:
            return self._open_until - now
        if self._probe is not None:
            return min(1.0, self.max_pause)  # the probe's answer comes within the timeout
        self._probe = Ticket()
        self._changed("half-open")
        return self._probe

    def succeeded(self, ticket: Ticket) -> None:
        """The service answered: closed, the schedule reset."""
        self.released(ticket)
        if self._open_until is not None:
            self._changed("closed")
        self._open_until = None
        self._pause = 0.0
        self._failed_keys.clear()

    def failed(
        self, ticket: Ticket, now: float, *, key: Hashable | None = None, wait: float = 0.0
    ) -> bool:
        """A failure of the service; whether the breaker opened on it.

        ``key`` (the request's, e.g. a digest) counts the failure once per distinct key;
        without one it opens the breaker at once. ``wait`` is what the service asked for
        (``Retry-After``): the pause is at least that, up to ``max_pause``. A call admitted
        before the breaker opened changes nothing (the opening already counted).
        """
        is_probe = ticket is self._probe
        self.released(ticket)
        if self._open_until is not None and not is_probe:
            return False
        if self._open_until is None and key is not None:
            self._failed_keys.add(key)  # never more than ``distinct``: then it opens
            if len(self._failed_keys) < self.distinct:
                return False
        self._pause = min(self.max_pause, max(self.first_pause, 2 * self._pause))
        self._open_until = now + max(self._pause, min(wait, self.max_pause))
        self._failed_keys.clear()
        self._changed("open")
        return True

    def _changed(self, state: str) -> None:
        if TELEMETRY.metrics is not None:
            TELEMETRY.metrics.breaker(self.name, state)

    def wait(self, now: float) -> float:
        """Seconds until the open breaker lets a probe through; 0 when it would now."""
        return 0.0 if self._open_until is None else max(0.0, self._open_until - now)

    def released(self, ticket: Ticket) -> None:
        """The call ended with no word on the service (cancelled, or it never asked)."""
        if ticket is self._probe:
            self._probe = None


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` for a wait of ``seconds``: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


def parse_retry_after(value: str | None, now: float) -> float:
    """RFC 9110 §10.2.3: the seconds a ``Retry-After`` asks for (delay-seconds or an
    HTTP-date, against ``now`` in seconds since the epoch); 0 for none or an unreadable one."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= 12 else math.inf  # beyond any pause honoured
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:  # RFC 9110 §5.6.7: HTTP-dates are in GMT
        return 0.0
    return max(0.0, when.timestamp() - now)
