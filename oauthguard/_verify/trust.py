"""The issuers a resource server trusts, each with the rules its tokens are read by.

``IssuerDirectory.get(iss)`` is one dict lookup for a concrete issuer URL. An issuer URL
holding ``{tenant}`` is a ``TenantTemplate``: an ``iss`` that fills it with an allowed
tenant gets its own ``TrustedIssuer`` (and, unless the tenants share one JWKS, its own
``KeySet``), created when first seen and kept in a bounded cache.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from oauthguard._http.cache import ExpiringCache
from oauthguard._verify.claims import ClaimPath
from oauthguard._verify.keys import KeySet
from oauthguard._wire.errors import GuardError, InvalidToken

logger = logging.getLogger("oauthguard")

TENANT = "{tenant}"
#: Tenants (answers of a tenants function, and their issuers' keys) kept per template.
TENANT_CACHE_SIZE = 1024
TENANT_CACHE_TTL = 3600.0
#: A tenant: one path segment of letters, digits, '.', '_' and '-', not starting with '.',
#: at most 64 characters. No '/', '%', '?', '#', '@' or ':' to leave the template's place
#: with (nor percent-encoding to decode twice), no dot segment ('.', '..') a URL library
#: would resolve when the metadata's URL is built from it, and short enough for logs and
#: cache keys. It holds Entra's tenant ids (GUIDs) and domains, realm names, Okta server ids.
TENANT_SYNTAX = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")

#: The roles of a token of an issuer that names no roles claim: one shared value.
NO_ROLES: frozenset[str] = frozenset()
#: ``(header, claims) -> None``; raises ``InvalidToken(description)`` to refuse the token.
TokenCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], None]
#: ``(header, claims, refusal description) -> the fix to log``, or None.
Explain = Callable[[Mapping[str, Any], Mapping[str, Any], str], str | None]


def client_id_of(claims: Mapping[str, Any]) -> str | None:
    """RFC 9068 ``client_id``; ``azp`` (OIDC), ``cid`` (Okta) and ``appid`` (Entra) too.
    The first present is the client: one that is not a string refuses the token, never
    lets a later claim name the client instead."""
    for name in ("client_id", "azp", "cid", "appid"):
        value = claims.get(name)
        if isinstance(value, str):
            return value
        if value is not None:
            raise InvalidToken(f"the token's {name} claim is not a string")
    return None


@dataclass(frozen=True, slots=True, eq=False)
class TokenRules:
    """How one issuer's tokens are read beyond the standard checks."""

    #: Audiences its tokens may carry (RFC 9068 §4): the resources' and the issuer's own.
    audiences: frozenset[str]
    audience_required: bool = True
    #: Clients its tokens must be issued to (empty: any).
    clients: frozenset[str] = frozenset()
    scope_paths: tuple[ClaimPath, ...] = (("scope",), ("scp",))
    role_paths: tuple[ClaimPath, ...] = ()
    checks: tuple[TokenCheck, ...] = ()
    explain: Explain | None = None

    def check_client(self, claims: Mapping[str, Any]) -> None:
        """The token's client is one this issuer's tokens must be issued to."""
        if not self.clients:
            return
        client = client_id_of(claims)
        if client not in self.clients:
            shown = "no client" if client is None else f"the client {client[:64]!r}"
            raise InvalidToken(f"the token was issued to {shown}, which is not allowed here")

    def run_checks(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        """This issuer's own checks. One that fails unexpectedly refuses the token: fail
        closed, and no "try again later" for an answer that would be the same next time."""
        for check in self.checks:
            try:
                check(header, claims)
            except GuardError:
                raise
            except Exception:
                logger.exception("Issuer(checks=...) failed")
                raise InvalidToken("the token could not be checked by its issuer's rules") from None


class TrustedIssuer:
    """One concrete issuer URL: its keys and its rules."""

    __slots__ = ("keys", "rules", "url")

    def __init__(self, url: str, keys: KeySet, rules: TokenRules) -> None:
        self.url = url
        self.keys = keys
        self.rules = rules


class TenantTemplate:
    """An issuer URL holding ``{tenant}`` and which tenants fill it.

    ``allowed`` is a set of tenants or a function ``tenant -> bool``, whose answers (yes
    and no alike) are cached: it is never asked twice about a tenant while the answer is
    kept. ``keys_for(issuer_url, tenant)`` makes the ``KeySet`` of an allowed tenant.
    """

    def __init__(
        self,
        template: str,
        allowed: frozenset[str] | Callable[[str], bool],
        rules: TokenRules,
        keys_for: Callable[[str, str], KeySet],
        clock: Callable[[], float],
    ) -> None:
        self.template = template
        self.prefix, _, self.suffix = template.partition(TENANT)
        self._allowed = allowed
        self.rules = rules
        self._keys_for = keys_for
        self._clock = clock
        # Allowed tenants and refused ones apart: anyone can send tokens naming made-up
        # tenants, and these must never push an allowed tenant's keys out of the cache.
        self._tenants: ExpiringCache[TrustedIssuer] = ExpiringCache(TENANT_CACHE_SIZE)
        self._refused: ExpiringCache[bool] = ExpiringCache(TENANT_CACHE_SIZE)
        #: How many times ``allowed`` was called.
        self.calls = 0

    def tenant_of(self, iss: str) -> str | None:
        """The tenant ``iss`` fills the template with, if it is one (strictly matched)."""
        prefix, suffix = self.prefix, self.suffix
        if len(iss) <= len(prefix) + len(suffix):
            return None
        if not (iss.startswith(prefix) and iss.endswith(suffix)):
            return None
        tenant = iss[len(prefix) : len(iss) - len(suffix)]
        return tenant if TENANT_SYNTAX.fullmatch(tenant) else None

    def trusted(self, iss: str, tenant: str) -> TrustedIssuer | None:
        """The issuer of an allowed tenant; None (and a log line) for any other."""
        now = self._clock()
        found = self._tenants.get(tenant, now)
        if found is not None:
            return found
        if self._refused.get(tenant, now) is not None:
            return None
        if not self._allows(tenant):
            self._refused.put(tenant, True, now + TENANT_CACHE_TTL, now)
            logger.info("tokens of the tenant %r of %s are not accepted", tenant, self.template)
            return None
        found = TrustedIssuer(iss, self._keys_for(iss, tenant), self.rules)
        self._tenants.put(tenant, found, now + TENANT_CACHE_TTL, now)
        return found

    def _allows(self, tenant: str) -> bool:
        allowed = self._allowed
        if isinstance(allowed, frozenset):
            return tenant in allowed
        self.calls += 1
        try:
            return allowed(tenant) is True
        except Exception:  # fail closed: a tenant the function cannot judge is not allowed
            logger.exception("Issuer(tenants=...) failed for the tenant %r", tenant)
            return False


class IssuerDirectory:
    """Every trusted issuer by the ``iss`` its tokens carry."""

    def __init__(
        self, exact: Iterable[TrustedIssuer], templates: Iterable[TenantTemplate] = ()
    ) -> None:
        #: Concrete issuer URL -> its ``TrustedIssuer``.
        self.exact = {issuer.url: issuer for issuer in exact}
        self.templates = tuple(templates)
        #: What a refusal's log says was expected.
        self.expected = tuple(self.exact) + tuple(t.template for t in self.templates)

    def get(self, iss: str) -> TrustedIssuer | None:
        """The trusted issuer of ``iss``, or None."""
        found = self.exact.get(iss)
        if found is None and self.templates:
            return self.of_tenant(iss)
        return found

    def of_tenant(self, iss: str) -> TrustedIssuer | None:
        """The issuer of a tenant, for an ``iss`` that fills a template with one allowed."""
        for template in self.templates:
            tenant = template.tenant_of(iss)
            if tenant is not None:
                return template.trusted(iss, tenant)
        return None

    def claims(self, iss: object) -> bool:
        """Whether ``iss`` names one of these issuers (a tenant allowed or not)."""
        if not isinstance(iss, str):
            return False
        return iss in self.exact or any(t.tenant_of(iss) is not None for t in self.templates)

    def all_rules(self) -> list[TokenRules]:
        """The rules of every issuer, templates included."""
        return [i.rules for i in self.exact.values()] + [t.rules for t in self.templates]

    def rules_of(self, iss: object, default: TokenRules) -> TokenRules:
        """The rules of ``iss``'s issuer, ``default`` when it is none of ours."""
        found = self.get(iss) if isinstance(iss, str) else None
        return default if found is None else found.rules
