"""``AccessToken``'s own constructor behaves as the dataclass one it replaces would."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from oauthguard import AccessToken, Actor


def minimal() -> AccessToken:
    return AccessToken("alice", "app", frozenset({"read"}), ("https://api.test",), None, 1.0)


def test_the_defaults_are_the_documented_ones() -> None:
    token = minimal()
    assert (token.claims, token.scheme, token.jkt, token.roles, token.actor, token.raw) == (
        {},
        "Bearer",
        None,
        frozenset(),
        None,
        "",
    )
    assert token.claims is not minimal().claims  # no shared mutable default
    assert AccessToken("a", None, frozenset(), (), None, None, claims=None).claims == {}


def test_every_field_is_set_from_its_own_argument_by_position_and_by_keyword() -> None:
    names = [field.name for field in dataclasses.fields(AccessToken)]
    assert list(inspect.signature(AccessToken).parameters) == names
    actor = Actor("agent")
    values = [f"v{i}" for i in range(len(names))]
    values[10] = actor  # type: ignore[call-overload]
    by_position = AccessToken(*values)  # type: ignore[arg-type]
    by_keyword = AccessToken(**dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
    for token in (by_position, by_keyword):
        assert [getattr(token, name) for name in names] == values


def test_it_stays_frozen_comparable_and_replaceable() -> None:
    token = minimal()
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.subject = "mallory"  # type: ignore[misc]
    assert token == minimal()
    assert dataclasses.replace(token, raw="t").raw == "t"
    assert dataclasses.replace(token, raw="t") == token  # raw is not compared
    assert "raw" not in repr(dataclasses.replace(token, raw="secret-token"))
    assert "secret-token" not in repr(dataclasses.replace(token, raw="secret-token"))
