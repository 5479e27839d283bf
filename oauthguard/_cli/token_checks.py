"""``oauthguard inspect``'s checks: the guard's own, run one at a time so that each can be
shown passed or failed with its fix. Every check here is a call into the verifier's code
(``_verify``, ``_dpop``); the verdict is the guard's ``check_request`` itself."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import oauthguard._cli.hints as hints
from oauthguard._cli.common import Exchanges, KeptLogs
from oauthguard._cli.report import Report
from oauthguard._core.server import ResourceServer
from oauthguard._dpop.proof import check_bearer, check_binding
from oauthguard._verify.diagnostics import annotate
from oauthguard._verify.jwt import (
    JWTVerifier,
    build_token,
    check_aud_claim,
    check_header,
    check_token_signature,
    check_token_typ,
    check_window,
    signature_segment,
)
from oauthguard._verify.keys import Key
from oauthguard._verify.trust import TokenRules, TrustedIssuer
from oauthguard._wire.credentials import Credentials
from oauthguard._wire.errors import GuardError, InvalidToken, TemporarilyUnavailable
from oauthguard._wire.tokens import AccessToken


@dataclass
class Inspection:
    """One token, the guard it is judged by, and what the checks found so far."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    server: ResourceServer
    report: Report
    exchanges: Exchanges
    logs: KeptLogs
    #: The issuers the user named (empty: none, only the checks that need no issuer run).
    named: tuple[str, ...]
    resource: str | None
    scheme: str
    #: False when the issuer named is the token's own ``iss`` (``--use-token-issuer``).
    named_by_user: bool = True
    #: Whether an issuer could not be reached (the guard would answer 503, not 401).
    unavailable: bool = False
    keys: list[Key] = field(default_factory=list)

    @property
    def trusted(self) -> TrustedIssuer | None:
        """The token's issuer when it is one of those named."""
        iss = self.claims.get("iss")
        return self.server.trusted.get(iss) if self.named and isinstance(iss, str) else None

    @property
    def judge(self) -> TrustedIssuer | None:
        """Whose keys the signature is tried with: the token's issuer, or the only one named."""
        exact = list(self.server.trusted.exact.values())
        return self.trusted or (exact[0] if self.named and len(exact) == 1 else None)

    @property
    def rules(self) -> TokenRules:
        judge = self.judge
        return self.server.default_rules if judge is None else judge.rules

    def refuse(self, name: str, refusal: InvalidToken, fallback: str | None) -> None:
        """A failed check, with the fix the issuer's preset gives (its ``explain``, or what
        its ``TokenKind`` checks say the token is) and otherwise ``fallback``."""
        said = refusal.description
        annotate(refusal, self.header, self.claims, self.server.trusted, self.trusted)
        fix = refusal.detail.partition("; fix: ")[2]
        if not fix and refusal.description != said:
            fix = refusal.description  # "this is a Keycloak ID token ..."
        self.report.add(name, "fail", said, fix or fallback)


async def run_checks(inspection: Inspection) -> None:
    """Every check in the guard's order, each run even when an earlier one failed."""
    check_issuer(inspection)
    alg = check_algorithm(inspection)
    if await check_discovery(inspection) and await check_keys(inspection) and alg:
        check_signature(inspection, alg)
    else:
        inspection.report.add("signature", "skip", "not checked: no key to check it with")
    check_typ(inspection)
    check_lifetime(inspection)
    audience = check_audience(inspection)
    check_issuer_rules(inspection)
    access_token = read_token_claims(inspection, audience)
    if access_token is not None:
        check_binding_of(inspection, access_token)


def check_issuer(inspection: Inspection) -> None:
    """RFC 9068 §4: ``iss`` is exactly one of the trusted issuers."""
    iss = inspection.claims.get("iss")
    if not inspection.named:
        inspection.report.add(
            "iss",
            "skip",
            f"{str(iss)[:100]!r} not checked: no issuer named",
            "name the issuer you trust with --issuer URL (the token's own iss is never "
            "trusted; --use-token-issuer fetches its keys to check the signature only)",
        )
    elif not inspection.named_by_user:
        inspection.report.add(
            "iss",
            "warn",
            f"{str(iss)[:100]!r} taken from the token, not named by you: its keys check the "
            "signature, but the token is not trusted",
            "if you trust this issuer, name it with --issuer",
        )
    elif inspection.trusted is not None:
        inspection.report.add("iss", "pass", f"{iss!r}, an issuer you named")
    else:
        refusal = InvalidToken("the token's issuer is not trusted")
        inspection.refuse("iss", refusal, hints.issuer_fix(iss, inspection.named))


def check_algorithm(inspection: Inspection) -> str | None:
    """RFC 8725 §3.1: the header's ``alg`` on the allow-list, no ``crit``; its ``alg``."""
    verifier = inspection.server.verifier
    allowed = verifier.algorithms if isinstance(verifier, JWTVerifier) else frozenset()
    without_typ = {name: value for name, value in inspection.header.items() if name != "typ"}
    try:
        alg = check_header(without_typ, allowed, False)
    except InvalidToken as refusal:
        named = inspection.header.get("alg")
        fix = hints.algorithm_fix(named) if "(alg)" in refusal.description else None
        inspection.refuse("alg", refusal, fix)
        return None
    inspection.report.add("alg", "pass", f"{alg}, one the guard accepts")
    return alg


async def check_discovery(inspection: Inspection) -> bool:
    """The issuer's metadata, found as the guard finds it (RFC 8414, then OpenID)."""
    judge = inspection.judge
    if judge is None:
        why = "the token's issuer is none of those named" if inspection.named else "no issuer"
        inspection.report.add("discovery", "skip", f"not checked: {why}")
        return False
    setting = next((i for i in inspection.server.issuers if i.url == judge.url), None)
    if setting is not None and setting.jwks_uri is not None:
        inspection.report.add("discovery", "skip", f"not needed: jwks_uri {setting.jwks_uri}")
        return True
    start = len(inspection.logs.lines)
    try:
        document = await inspection.server.servers.get(judge.keys.source)
    except TemporarilyUnavailable as exc:
        inspection.unavailable = True
        why = "; ".join(inspection.logs.since(start)) or exc.description
        inspection.report.add(
            "discovery",
            "fail",
            why,
            f"run 'oauthguard check {judge.url}' for the details of each metadata URL",
        )
        return False
    found = [line for line in inspection.logs.since(start) if line.startswith("discovered")]
    where = found[-1].rpartition(" at ")[2] if found else "the cache"
    detail = f"metadata at {where}, its issuer {judge.url!r}; jwks_uri {document.get('jwks_uri')}"
    inspection.report.add("discovery", "pass", detail)
    return True


async def check_keys(inspection: Inspection) -> bool:
    """The issuer's JWKS fetched, and a key for the token's ``kid`` in it."""
    judge = inspection.judge
    assert judge is not None  # check_discovery passed
    kid = inspection.header.get("kid")
    try:
        inspection.keys = await judge.keys.get(kid if isinstance(kid, str) else None)
    except TemporarilyUnavailable as exc:
        inspection.unavailable = True
        why = "; ".join(inspection.logs.since(0, "JWKS")) or exc.description
        inspection.report.add("keys", "fail", why, "check that the issuer's jwks_uri answers")
        return False
    every = judge.keys.cached(None) or []
    if not inspection.keys:
        kids = ", ".join(repr(key.kid) for key in every)
        refusal = InvalidToken("no signing key of the issuer matches the token's kid")
        inspection.refuse("keys", refusal, hints.keys_fix(kid))
        inspection.report.steps[-1].detail += f" (its keys: {kids})"
        return False
    inspection.report.add("keys", "pass", f"{len(every)} in the JWKS; kid {kid!r} among them")
    return True


def check_signature(inspection: Inspection, alg: str) -> None:
    """RFC 7515 §5.2: one of the issuer's keys for ``kid`` verifies the signature."""
    head, body, signature = inspection.token.split(".")
    try:
        raw = signature_segment(signature)
        check_token_signature(alg, inspection.keys, f"{head}.{body}".encode("ascii"), raw)
    except InvalidToken as refusal:
        inspection.refuse("signature", refusal, hints.signature_fix())
        return
    inspection.report.add("signature", "pass", f"verified with the issuer's {alg} key")


def check_typ(inspection: Inspection) -> None:
    """RFC 9068 §2.1 / RFC 8725 §3.11: no ID token, logout token or DPoP proof."""
    typ = inspection.header.get("typ")
    try:
        check_token_typ(typ, inspection.server.jwt.strict_typ)
    except InvalidToken as refusal:
        inspection.refuse("typ", refusal, hints.typ_fix(inspection.header, inspection.claims))
        return
    inspection.report.add("typ", "pass", f"{typ!r}" if typ is not None else "none (allowed)")


def check_lifetime(inspection: Inspection) -> None:
    """RFC 7519 §4.1.4-4.1.6 with the guard's leeway: exp required, nbf and iat not ahead."""
    leeway = inspection.server.jwt.leeway
    try:
        exp = check_window(inspection.claims, inspection.server.clock(), leeway, require_exp=True)
    except InvalidToken as refusal:
        offset = inspection.exchanges.clock_offset()
        fix = hints.time_fix(inspection.claims, leeway, offset, refusal.description)
        inspection.refuse("exp/nbf", refusal, fix)
        inspection.report.steps[-1].detail += f" ({times_of(inspection.claims)})"
        return
    left = exp - time.time()
    inspection.report.add("exp/nbf", "pass", f"expires in {hints.ago(left)} ({when(exp)})")


def check_audience(inspection: Inspection) -> tuple[str, ...]:
    """RFC 9068 §4 / RFC 8707: ``aud`` names this resource (or an audience it accepts)."""
    if inspection.resource is None:
        inspection.report.add(
            "aud",
            "skip",
            f"{inspection.claims.get('aud')!r} not checked: no resource named",
            "pass --resource URL, the API's identifier (OAuthGuard(resource=...))",
        )
        return ()
    rules = inspection.rules
    try:
        audience = check_aud_claim(inspection.claims, rules.audiences, rules.audience_required)
    except InvalidToken as refusal:
        fix = hints.audience_fix(inspection.claims, inspection.resource)
        inspection.refuse("aud", refusal, fix)
        return ()
    inspection.report.add("aud", "pass", f"{list(audience)!r} names this resource")
    return audience


def check_issuer_rules(inspection: Inspection) -> None:
    """The issuer's client list and its preset's own checks (``Issuer(clients, checks)``)."""
    rules = inspection.rules
    if not (rules.clients or rules.checks):
        return
    try:
        rules.check_client(inspection.claims)
        rules.run_checks(inspection.header, inspection.claims)
    except InvalidToken as refusal:
        inspection.refuse("issuer rules", refusal, None)
        return
    inspection.report.add("issuer rules", "pass", "its client and its preset's checks pass")


def read_token_claims(inspection: Inspection, audience: tuple[str, ...]) -> AccessToken | None:
    """The token as the app would see it: scopes, roles and binding read where its issuer
    puts them (a claim that cannot be read with certainty refuses the token)."""
    exp = inspection.claims.get("exp")
    expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    try:
        token = build_token(inspection.claims, audience, expires, inspection.rules)
    except InvalidToken as refusal:
        inspection.refuse("claims", refusal, None)
        return None
    roles = f"; roles {' '.join(sorted(token.roles))}" if token.roles else ""
    scopes = " ".join(sorted(token.scopes)) or "none"
    inspection.report.add("claims", "pass", f"scopes {scopes}{roles}; client {token.client_id}")
    return token


def check_binding_of(inspection: Inspection, token: AccessToken) -> None:
    """RFC 9449 §7: a DPoP-bound token only with the DPoP scheme, an unbound one only as
    Bearer, and either only where the guard's DPoP setting allows the scheme."""
    scheme = inspection.scheme
    proofs = (b"not-checked",) if scheme == "DPoP" else ()
    try:
        inspection.server.dpop_checker.proof_of(Credentials(scheme, inspection.token, proofs))
        if scheme == "Bearer":
            check_bearer(token)
        else:
            check_binding(token, token.jkt or "")
    except GuardError as refusal:
        fix = hints.binding_fix(scheme, token.jkt is not None, inspection.server.dpop.mode)
        inspection.report.add("binding", "fail", refusal.description, fix)
        return
    how = f"bound to the DPoP key {token.jkt}" if token.jkt else "not DPoP-bound"
    proof = "; each request needs a proof of that key" if token.jkt else ""
    inspection.report.add("binding", "pass", f"{how}, sent as {scheme}{proof}")


def when(timestamp: float) -> str:
    """A NumericDate as a UTC date, or as the number when no calendar holds it."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{timestamp:.0f}"


def times_of(claims: Mapping[str, Any]) -> str:
    """The token's NumericDate claims as dates, for a failed lifetime check."""
    shown = []
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e11:
            shown.append(f"{name} {when(value)}")
    return ", ".join(shown) + f"; now {when(time.time())}" if shown else "no dates"
