"""The token-exchange grant of ``TestIssuer`` (RFC 8693), with a policy per client.

A client may exchange only tokens this issuer signed (or issued opaque), for the targets
(RFC 8707 ``resource`` or RFC 8693 ``audience``) and scopes its policy names; the issued
token keeps the subject's ``sub`` and, for a delegating client, names the actor in ``act``
(RFC 8693 §4.1: the actor token's subject, or the client itself), the subject token's own
``act`` nested inside. Errors are RFC 8693 §2.2.2's and RFC 6749 §5.2's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from oauthguard._jose.signatures import verify_signature
from oauthguard._verify.jwt import split_jws
from oauthguard._wire.errors import InvalidToken
from oauthguard._wire.tokens import split_scope
from oauthguard.testing._authserver import Client, Grant
from oauthguard.testing._checks import OAuthError, check_resources

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_TYPES = "urn:ietf:params:oauth:token-type:"
#: The subject and actor token types accepted, and the token types issued (RFC 8693 §3).
ACCEPTED_TYPES = frozenset({_TYPES + "access_token", _TYPES + "jwt"})


@dataclass(frozen=True)
class ExchangePolicy:
    """What one client may exchange tokens for: ``targets`` (resources or audiences),
    ``scopes`` (None: any), and whether it acts for the subject (``delegation``: the issued
    token's ``act`` names it)."""

    targets: tuple[str, ...]
    scopes: tuple[str, ...] | None
    delegation: bool = True


class ExchangeGrant:
    """Checks one token-exchange request and gives the grant it stands for."""

    def __init__(
        self,
        issuer: str,
        keys: Mapping[str, tuple[str, Any]],
        issued: Mapping[str, dict[str, Any]],
        clock: Callable[[], float],
    ) -> None:
        self.issuer, self.keys, self.issued, self.clock = issuer, keys, issued, clock
        #: Each client's policy; a client without one may not exchange (unauthorized_client).
        self.policies: dict[str, ExchangePolicy] = {}

    def allow(
        self,
        client_id: str,
        targets: Iterable[str],
        scopes: Iterable[str] | None = None,
        delegation: bool = True,
    ) -> None:
        self.policies[client_id] = ExchangePolicy(
            tuple(targets), None if scopes is None else tuple(scopes), delegation
        )

    def grant(self, client: Client, form: FormData) -> Grant:
        """RFC 8693 §2.1-2.2: the grant for an exchange request, or the RFC's error."""
        policy = self.policies.get(client.client_id)
        if policy is None:
            raise OAuthError("unauthorized_client", "this client may not exchange tokens")
        subject = self._claims_of(form, "subject_token", required=True) or {}
        requested = str(form.get("requested_token_type") or _TYPES + "access_token")
        if requested not in ACCEPTED_TYPES:
            raise OAuthError("invalid_request", f"requested_token_type {requested!r}")
        targets = check_resources(
            [str(v) for v in form.getlist("resource")] + [str(v) for v in form.getlist("audience")]
        )
        if not targets or not set(targets) <= set(policy.targets):
            raise OAuthError("invalid_target", "this client may not exchange for that target")
        scopes = self._scopes(form.get("scope"), subject, policy)
        claims: dict[str, Any] = {}
        actor = self._claims_of(form, "actor_token", required=False)
        if actor is not None or policy.delegation:
            # RFC 8693 §4.1: the current actor, earlier actors nested inside.
            act: dict[str, Any] = {"sub": actor["sub"] if actor else client.client_id}
            if isinstance(subject.get("act"), dict):
                act["act"] = subject["act"]
            claims["act"] = act
        return Grant(client.client_id, str(subject.get("sub")), scopes, targets, claims=claims)

    def _scopes(
        self, scope: object, subject: Mapping[str, Any], policy: ExchangePolicy
    ) -> tuple[str, ...]:
        """The scopes asked for, each allowed by the policy (RFC 8693 §2.2.2 invalid_scope);
        none asked: the subject's that the policy allows."""
        if scope is None:
            had = (
                split_scope(subject.get("scope") or "")
                if isinstance(subject.get("scope"), str)
                else []
            )
            return tuple(s for s in had if policy.scopes is None or s in policy.scopes)
        asked = tuple(dict.fromkeys(split_scope(str(scope))))
        if policy.scopes is not None and not set(asked) <= set(policy.scopes):
            raise OAuthError("invalid_scope", "this client may not exchange for that scope")
        return asked

    def _claims_of(self, form: FormData, name: str, *, required: bool) -> dict[str, Any] | None:
        """The claims of the ``subject_token`` or ``actor_token``: a live token of ours."""
        token = form.get(name)
        kind = form.get(f"{name}_type")
        if not token:
            if required:
                raise OAuthError("invalid_request", f"{name} is required")
            return None
        if kind not in ACCEPTED_TYPES:
            raise OAuthError("invalid_request", f"{name}_type must be an access token or JWT")
        claims = self.issued.get(str(token)) or self._verified(str(token))
        exp = claims.get("exp") if claims else None
        if claims is None or not isinstance(exp, int | float) or exp <= self.clock():
            raise OAuthError("invalid_grant", f"the {name} is invalid or expired")
        if not isinstance(claims.get("sub"), str):
            raise OAuthError("invalid_grant", f"the {name} names no subject")
        return claims

    def _verified(self, token: str) -> dict[str, Any] | None:
        """The claims of a JWT one of our keys signed, issued by us; None for any other."""
        try:
            header, claims, signing_input, signature = split_jws(token)
        except InvalidToken:
            return None
        entry = self.keys.get(str(header.get("kid")))
        if entry is None or header.get("alg") != entry[0] or claims.get("iss") != self.issuer:
            return None
        public = entry[1].public_key()
        return claims if verify_signature(entry[0], public, signing_input, signature) else None
