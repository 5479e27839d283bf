"""The form of one exchange request: RFC 8693 §2.1, or Entra's on-behalf-of flow.

Entra does not speak RFC 8693: it exchanges a token with the JWT bearer grant (RFC 7523
§2.1) and ``requested_token_use=on_behalf_of``, the target API named by its scopes
(``{resource}/{scope}``, or ``{resource}/.default`` for every permission granted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from oauthguard._exchange.answers import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE
from oauthguard._wire.errors import ConfigurationError
from oauthguard._wire.tokens import is_scope_token, split_scope

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The short names the settings take for RFC 8693 §3 token types.
TOKEN_TYPES = {"access_token": ACCESS_TOKEN_TYPE, "jwt": JWT_TOKEN_TYPE}


def token_type(argument: str, value: object) -> str:
    """An RFC 8693 §3 token type: its short name (``access_token``, ``jwt``) or its URN."""
    if isinstance(value, str) and value in TOKEN_TYPES:
        return TOKEN_TYPES[value]
    if isinstance(value, str) and value.startswith("urn:") and value.isprintable():
        return value
    raise ConfigurationError(
        f"TokenExchange({argument}=...) must be 'access_token', 'jwt' or a token type URN "
        f"(RFC 8693 §3); got {value!r}"
    )


def _targets(argument: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    items = () if value is None else (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item or not item.isprintable() or " " in item:
            raise ConfigurationError(
                f"token_for({argument}=...) must be a URI or a list of them; got {item!r}"
            )
    return tuple(dict.fromkeys(items))


def _scope(value: str | Iterable[str] | None) -> str | None:
    if value is None:
        return None
    items = split_scope(value) if isinstance(value, str) else list(value)
    if not items or not all(is_scope_token(item) for item in items):
        raise ConfigurationError(
            f"token_for(scope=...) must be RFC 6749 §3.3 scope-tokens; got {value!r}"
        )
    return " ".join(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)
class Target:
    """What one exchange asks for: RFC 8707 ``resource``s, RFC 8693 ``audience``s, a scope."""

    resources: tuple[str, ...]
    audiences: tuple[str, ...]
    scope: str | None

    @classmethod
    def of(
        cls,
        resource: str | Iterable[str] | None,
        audience: str | Iterable[str] | None,
        scope: str | Iterable[str] | None,
    ) -> Target:
        target = cls(_targets("resource", resource), _targets("audience", audience), _scope(scope))
        if not (target.resources or target.audiences):
            raise ConfigurationError(
                "token_for() needs resource= (the downstream API's RFC 8707 identifier) or "
                "audience= (its name at the authorization server)"
            )
        return target

    @property
    def named(self) -> str:
        """The target as messages name it."""
        return ", ".join(self.resources + self.audiences)

    def cache_key(self, subject: str, *parts: str) -> str:
        """SHA-256 over the subject token and everything that changes the answer: the raw
        token is never a key itself."""
        material = [subject, *parts, list(self.resources), list(self.audiences), self.scope]
        encoded = json.dumps(material, separators=(",", ":"), ensure_ascii=True).encode()
        return hashlib.sha256(encoded).hexdigest()


def rfc8693_form(
    subject: str,
    subject_type: str,
    target: Target,
    requested_type: str,
    actor: tuple[str, str] | None,
) -> list[tuple[str, str]]:
    """RFC 8693 §2.1: the grant, the subject token and its type, what is asked for."""
    form = [
        ("grant_type", TOKEN_EXCHANGE_GRANT),
        ("subject_token", subject),
        ("subject_token_type", subject_type),
        ("requested_token_type", requested_type),
    ]
    form += [("resource", value) for value in target.resources]  # RFC 8707 §2.1
    form += [("audience", value) for value in target.audiences]
    if target.scope is not None:
        form.append(("scope", target.scope))
    if actor is not None:  # §2.1 / §4.1: delegation, the actor named by its own token
        form += [("actor_token", actor[0]), ("actor_token_type", actor[1])]
    return form


def entra_scope(target: Target) -> str:
    """Entra names the API in each scope: ``{resource}/{scope}``, ``{resource}/.default``."""
    names = target.resources + target.audiences
    if len(names) != 1:
        raise ConfigurationError(
            "token_for() with an Entra issuer takes one resource= (the downstream API's App ID "
            f"URI or client ID): Entra's on-behalf-of flow exchanges for one API; got {names}"
        )
    base = names[0].rstrip("/")
    if target.scope is None:
        return f"{base}/.default"
    return " ".join(
        item if "://" in item or item.startswith("api:") else f"{base}/{item}"
        for item in target.scope.split(" ")
    )


def entra_form(subject: str, target: Target) -> list[tuple[str, str]]:
    """Entra's on-behalf-of request: RFC 7523 §2.1 with ``requested_token_use``."""
    return [
        ("grant_type", JWT_BEARER_GRANT),
        ("assertion", subject),
        ("requested_token_use", "on_behalf_of"),
        ("scope", entra_scope(target)),
    ]
