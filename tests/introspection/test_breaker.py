"""The circuit breaker on its own: states, what opens it, the pause schedule, one probe."""

from __future__ import annotations

import email.utils

import pytest

from oauthguard._http.breaker import CircuitBreaker, Ticket, parse_retry_after, retry_after


def ticket(breaker: CircuitBreaker, now: float) -> Ticket:
    admitted = breaker.admit(now)
    assert isinstance(admitted, Ticket), f"refused for {admitted}s"
    return admitted


def open_at_once(breaker: CircuitBreaker, now: float) -> None:
    assert breaker.failed(ticket(breaker, now), now)


def test_a_closed_breaker_admits_every_call() -> None:
    breaker = CircuitBreaker()
    tickets = [ticket(breaker, 0) for _ in range(100)]
    assert len({id(t) for t in tickets}) == 100 and breaker.state(0) == "closed"


def test_a_failure_no_request_can_cause_opens_it_at_once_for_half_a_second() -> None:
    breaker = CircuitBreaker()
    open_at_once(breaker, 10)
    assert breaker.state(10) == "open"
    assert breaker.admit(10.2) == pytest.approx(0.3)
    assert breaker.wait(10.2) == pytest.approx(0.3)
    assert breaker.state(10.5) == "half-open"


def test_failures_on_one_key_never_open_it_however_many() -> None:
    breaker = CircuitBreaker()
    for n in range(1000):
        assert not breaker.failed(ticket(breaker, n), n, key="odd")
    assert breaker.state(1000) == "closed"


def test_consecutive_failures_on_three_different_keys_open_it() -> None:
    breaker = CircuitBreaker()
    assert not breaker.failed(ticket(breaker, 0), 0, key="a")
    assert not breaker.failed(ticket(breaker, 0), 0, key="a")
    assert not breaker.failed(ticket(breaker, 0), 0, key="b")
    assert breaker.failed(ticket(breaker, 0), 0, key="c")
    assert breaker.state(0) == "open"


def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker = CircuitBreaker()
    for key in ("a", "b"):
        breaker.failed(ticket(breaker, 0), 0, key=key)
    breaker.succeeded(ticket(breaker, 0))
    assert not breaker.failed(ticket(breaker, 0), 0, key="c")
    assert not breaker.failed(ticket(breaker, 0), 0, key="d")
    assert breaker.failed(ticket(breaker, 0), 0, key="e")


def test_half_open_lets_one_probe_through_at_a_time() -> None:
    breaker = CircuitBreaker()
    open_at_once(breaker, 0)
    probe = ticket(breaker, 0.5)
    assert [breaker.admit(0.6) for _ in range(50)] == [1.0] * 50  # refused, not queued
    breaker.succeeded(probe)
    assert breaker.state(0.7) == "closed"
    assert isinstance(breaker.admit(0.7), Ticket)


def test_the_pause_doubles_with_each_failed_probe_up_to_thirty_seconds() -> None:
    breaker = CircuitBreaker()
    now = 0.0
    open_at_once(breaker, now)
    pauses = [breaker.wait(now)]
    for _ in range(9):
        now += breaker.wait(now)
        assert breaker.failed(ticket(breaker, now), now, key="any")  # a probe's failure
        pauses.append(breaker.wait(now))
    assert pauses == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]


def test_a_success_resets_the_schedule() -> None:
    breaker = CircuitBreaker()
    open_at_once(breaker, 0)
    breaker.failed(ticket(breaker, 0.5), 0.5)  # the probe fails: 1 s
    assert breaker.wait(0.5) == 1
    breaker.succeeded(ticket(breaker, 1.5))
    open_at_once(breaker, 2)
    assert breaker.wait(2) == 0.5


def test_a_released_probe_frees_the_slot_for_the_next() -> None:
    breaker = CircuitBreaker()
    open_at_once(breaker, 0)
    probe = ticket(breaker, 0.5)
    assert breaker.admit(0.5) == 1.0
    breaker.released(probe)  # cancelled: no word on the service
    assert breaker.state(0.5) == "half-open"
    next_probe = ticket(breaker, 0.5)
    breaker.released(probe)  # settling twice, or late, never frees another's slot
    assert breaker.admit(0.5) == 1.0
    breaker.succeeded(next_probe)


def test_calls_admitted_before_it_opened_do_not_lengthen_the_pause() -> None:
    breaker = CircuitBreaker()
    in_flight = [ticket(breaker, 0) for _ in range(10)]
    open_at_once(breaker, 0)
    for earlier in in_flight:
        assert not breaker.failed(earlier, 0.1)
    assert breaker.wait(0.1) == pytest.approx(0.4)
    breaker.succeeded(ticket(breaker, 0.5))


def test_a_late_success_closes_it() -> None:
    breaker = CircuitBreaker()
    earlier = ticket(breaker, 0)
    open_at_once(breaker, 0)
    breaker.succeeded(earlier)  # the service answered after all
    assert breaker.state(0.1) == "closed"


def test_the_wait_a_service_asks_for_is_honoured_up_to_the_cap() -> None:
    breaker = CircuitBreaker()
    assert breaker.failed(ticket(breaker, 0), 0, wait=7)
    assert breaker.wait(0) == 7
    breaker.succeeded(ticket(breaker, 7))
    assert breaker.failed(ticket(breaker, 8), 8, wait=86400)
    assert breaker.wait(8) == 30


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 0),
        ("", 0),
        ("120", 120),
        (" 7 ", 7),
        ("1" * 40, float("inf")),
        ("-5", 0),
        ("1.5", 0),
        ("\u00b2", 0),  # a Unicode digit is no delay-seconds
        ("soon", 0),
        ("Wed, 21 Oct 2015 07:28:00", 0),  # no zone: not an HTTP-date
    ],
)
def test_retry_after_values(value: str | None, seconds: float) -> None:
    assert parse_retry_after(value, 1_700_000_000) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now) == 90
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now) == 0


@pytest.mark.parametrize(("seconds", "header"), [(0, 1), (0.2, 1), (1, 1), (1.01, 2), (30, 30)])
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, header: int) -> None:
    assert retry_after(seconds) == header
