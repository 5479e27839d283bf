"""``oauthguard inspect TOKEN``: the token's header and claims (unverified), then the
guard's own checks against the live issuer, each with its fix; exit 0 only when the guard
would accept the token."""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from oauthguard._cli.common import (
    Exchanges,
    KeptLogs,
    Streams,
    checked_url,
    http_client,
    kept_logs,
)
from oauthguard._cli.common import read_token as read_token_input
from oauthguard._cli.presets import PROVIDERS, issuer_setting
from oauthguard._cli.report import ACCEPTED, REFUSED, UNAVAILABLE, Report, UsageError
from oauthguard._cli.token_checks import Inspection, run_checks
from oauthguard._core.issuer import Issuer
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import JWT, Limits
from oauthguard._dpop.proof import check_binding
from oauthguard._verify.diagnostics import annotate_encrypted
from oauthguard._verify.jwt import json_segment
from oauthguard._wire.credentials import Credentials
from oauthguard._wire.errors import ConfigurationError, GuardError, InvalidToken
from oauthguard._wire.errors import TemporarilyUnavailable as Unavailable
from oauthguard._wire.redaction import token_digest

#: What the guard is built with for the checks that need no issuer or resource (never
#: fetched: RFC 2606 reserves .invalid).
NO_ISSUER = "https://issuer.invalid"
NO_RESOURCE = "https://resource.invalid"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "inspect",
        help="explain why the guard accepts or refuses a JWT access token",
        description=__doc__,
    )
    parser.add_argument("token", nargs="?", help="the token; '-' or absent: read from stdin")
    parser.add_argument("--resource", help="the API's identifier (OAuthGuard(resource=...))")
    parser.add_argument(
        "--issuer",
        action="append",
        default=[],
        metavar="URL",
        help="an issuer the API trusts (repeatable); without one, no issuer is trusted",
    )
    parser.add_argument(
        "--use-token-issuer",
        action="store_true",
        help="without --issuer: fetch the keys of the token's own (unverified) iss to check "
        "the signature; the token is then never reported accepted",
    )
    parser.add_argument("--provider", choices=PROVIDERS, default="auto")
    parser.add_argument("--audience", help="an audience accepted beside the resource")
    parser.add_argument("--client", action="append", default=[], help="a client allowed")
    parser.add_argument("--scheme", choices=("Bearer", "DPoP"), default="Bearer")
    parser.add_argument("--dpop", choices=("allowed", "required", "disabled"), default="allowed")
    parser.add_argument("--leeway", type=float, default=JWT.leeway, help="clock skew allowed (s)")
    parser.add_argument("--strict-typ", action="store_true", help="require typ at+jwt")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, streams: Streams) -> Report:
    token = read_token_input(args.token, streams.stdin)
    with kept_logs(streams.stderr if args.verbose else None) as logs:
        return anyio.run(inspect_token, token, args, logs)


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims, read but not verified (a JWE: its protected header)."""
    parts = token.split(".")
    if len(parts) not in (3, 5):
        raise UsageError(
            f"the token is not a JWT: it has {len(parts)} dot-separated parts, not 3"
            + (" (was it cut short when it was copied?)" if len(parts) in (2, 4) else "")
            + ". An opaque token is checked by introspection (Introspection(...)), not here; "
            "Auth0 issues one when the authorization request names no audience"
        )
    try:
        header = json_segment(parts[0])
        claims = json_segment(parts[1]) if len(parts) == 3 else {}
    except InvalidToken as exc:
        cut = "well-formed" in exc.description
        raise UsageError(
            exc.description
            + (": a segment is not base64url-encoded JSON (was it cut short when copied?)" * cut)
        ) from None
    return header, claims


async def inspect_token(token: str, args: argparse.Namespace, logs: KeptLogs) -> Report:
    header, claims = unverified_parts(token)
    subject = f"token sha256:{token_digest(token)}"  # never the token itself
    report = Report("inspect", subject, sections={"header": header, "claims": claims})
    report.sections_note = " (unverified)"
    exchanges = Exchanges()
    async with http_client(exchanges, args.timeout) as http:
        server, named = build_server(args, claims, http)
        resource = None if args.resource is None else server.resource
        inspection = Inspection(
            token, header, claims, server, report, exchanges, logs, named, resource, args.scheme
        )
        inspection.named_by_user = bool(args.issuer)
        if len(token.split(".")) == 5:
            refuse_encrypted(inspection)
            return report
        await run_checks(inspection)
        await give_verdict(inspection, args.use_token_issuer and not args.issuer)
    return report


def build_server(
    args: argparse.Namespace, claims: dict[str, Any], http: Any
) -> tuple[ResourceServer, tuple[str, ...]]:
    """The guard the token is judged by, and the issuers named for it."""
    urls: list[str] = list(args.issuer)
    iss = claims.get("iss")
    if not urls and args.use_token_issuer:
        if not isinstance(iss, str):
            raise UsageError("--use-token-issuer: the token has no iss to fetch keys from")
        urls = [iss]
    settings: list[Issuer] = []
    option = "--issuer" if args.issuer else "the token's iss"
    for url in urls:
        checked = checked_url(option, url, args.allow_http)
        settings += issuer_setting(
            checked,
            args.provider,
            audience=args.audience,
            clients=args.client,
            allow_http=args.allow_http,
        )
    resource = args.resource or NO_RESOURCE
    checked_url("--resource", resource, args.allow_http)
    try:
        server = ResourceServer(
            resource=resource,
            authorization_servers=settings or NO_ISSUER,
            jwt=JWT(leeway=args.leeway, strict_typ=args.strict_typ),
            dpop=args.dpop,
            limits=Limits(http_timeout=args.timeout),
            http_client=http,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    return server, tuple(setting.url for setting in settings)


def refuse_encrypted(inspection: Inspection) -> None:
    """RFC 7516: an encrypted token, which the guard refuses; the fix its issuer's preset
    gives (an Auth0 token requested without an audience), from its protected header."""
    refusal = InvalidToken("encrypted (JWE) tokens are not accepted")
    annotate_encrypted(refusal, inspection.token, inspection.server.trusted)
    fix = refusal.detail.partition("; fix: ")[2] or (
        "the issuer encrypted the token for someone else: request a signed JWT access token "
        "for this API (its resource or audience)"
    )
    inspection.report.add("format", "fail", refusal.description, fix)
    inspection.report.verdict = "refused: the guard answers 401 invalid_token"


async def give_verdict(inspection: Inspection, issuer_unnamed: bool) -> None:
    """What the guard itself answers: its ``check_request`` for the token sent as Bearer to
    the resource (``verify`` and the binding check for DPoP, whose proof is not checked)."""
    report = inspection.report
    failed = [step.detail for step in report.steps if step.status == "fail"]
    report.exit_code = REFUSED
    if inspection.unavailable:
        report.exit_code = UNAVAILABLE
        report.verdict = "not judged: the issuer cannot be reached; the guard answers 503 for now"
    elif issuer_unnamed or not inspection.named or inspection.resource is None:
        report.verdict = unjudged(inspection, issuer_unnamed)
        if failed:
            report.verdict += f"; refused anyway: {failed[0][:200]}"
    else:
        await ask_the_guard(inspection, failed)


async def ask_the_guard(inspection: Inspection, failed: list[str]) -> None:
    report, server = inspection.report, inspection.server
    try:
        if inspection.scheme == "Bearer":
            headers = {"authorization": f"Bearer {inspection.token}"}
            await server.check_request("GET", server.resource, headers)
        else:  # the proof itself is not checked: the scheme, the token and its binding are
            credentials = Credentials("DPoP", inspection.token, (b"not-checked",))
            server.dpop_checker.proof_of(credentials)
            token = await server.verify(inspection.token)
            check_binding(token, token.jkt or "")
    except Unavailable as exc:
        report.exit_code = UNAVAILABLE
        report.verdict = f"not judged: {exc.description}; the guard answers 503 for now"
        return
    except GuardError as refusal:
        if not failed:  # a check the steps above do not show one by one
            report.add("guard", "fail", refusal.description, refusal.detail or None)
        # What the client is told: a provider's kind check may name the token for what it is
        said = refusal.description[:200]
        report.verdict = f"refused: the guard answers {refusal.status} {refusal.error}: {said}"
        return
    report.exit_code = ACCEPTED
    report.verdict = (
        f"accepted: the guard accepts this token for {server.resource} as {inspection.scheme}"
    )


def unjudged(inspection: Inspection, issuer_unnamed: bool) -> str:
    """Why the token is not reported accepted although the guard was not asked."""
    if issuer_unnamed:
        iss = inspection.claims.get("iss")
        return (
            f"not trusted: you did not name the issuer; if you trust {iss!r}, run again "
            "with --issuer naming it"
        )
    if not inspection.named:
        return "not judged: name the issuer you trust with --issuer URL"
    return "not judged: name the API with --resource URL to check the audience"
