"""``oauthguard check ISSUER``: whether the guard could use an issuer, found as the guard
finds it: RFC 8414 and OpenID discovery, the ``issuer`` match, the JWKS and its keys, its
``Cache-Control``, the clock offset from the server's ``Date``."""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import httpx

from oauthguard._cli.common import (
    Exchanges,
    KeptLogs,
    Streams,
    checked_url,
    http_client,
    kept_logs,
)
from oauthguard._cli.report import ACCEPTED, REFUSED, UNAVAILABLE, Report
from oauthguard._core.settings import JWT
from oauthguard._verify.discovery import AuthorizationServers, Source
from oauthguard._verify.keys import KeySet, cache_ttl
from oauthguard._wire.errors import TemporarilyUnavailable

DISCOVERIES = (("RFC 8414", "oauth"), ("OpenID", "oidc"))


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "check", help="check that the guard can use an issuer", description=__doc__
    )
    parser.add_argument("issuer", help="the issuer identifier, as its tokens' iss names it")
    parser.add_argument("--leeway", type=float, default=JWT.leeway, help="clock skew allowed (s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, streams: Streams) -> Report:
    issuer = checked_url("issuer", args.issuer, args.allow_http)
    with kept_logs(streams.stderr if args.verbose else None) as logs:
        return anyio.run(check_issuer, issuer, args, logs)


async def check_issuer(issuer: str, args: argparse.Namespace, logs: KeptLogs) -> Report:
    report = Report("check", issuer)
    exchanges = Exchanges()
    jwt = JWT(leeway=args.leeway)
    async with http_client(exchanges, args.timeout) as http:
        servers = AuthorizationServers(http, time.time, timeout=args.timeout)
        found = []
        for title, mode in DISCOVERIES:
            source = Source(issuer, None, mode, args.allow_http)
            document = await check_discovery(report, servers, logs, source, title)
            if document is not None:
                found.append((source, document))
        settle_discoveries(report)
        if not found:
            report.exit_code = REFUSED if exchanges.answers else UNAVAILABLE
            report.verdict = verdict_of(report, issuer)
            return report
        source, document = found[0]
        keys = KeySet(issuer, http, time.time, servers, source=source, cache_ttl=jwt.keys_ttl)
        await check_keys(report, keys, logs, jwt)
        check_cache_control(report, exchanges, document, jwt)
        check_clock(report, exchanges, jwt.leeway)
    report.exit_code = ACCEPTED if not any(s.status == "fail" for s in report.steps) else REFUSED
    if report.failed("keys") and exchanges.of(str(document.get("jwks_uri"))) is None:
        report.exit_code = UNAVAILABLE  # the JWKS did not answer at all
    report.verdict = verdict_of(report, issuer)
    return report


async def check_discovery(
    report: Report, servers: AuthorizationServers, logs: KeptLogs, source: Source, title: str
) -> dict[str, Any] | None:
    """One kind of discovery, as the guard does it (the metadata's ``issuer`` must be the
    issuer, RFC 8414 §3.3; its ``jwks_uri`` https)."""
    start = len(logs.lines)
    try:
        document = await servers.get(source)
    except TemporarilyUnavailable as exc:
        reasons = [line.partition(" (")[2].rstrip(")") for line in logs.since(start, "could not")]
        detail = "; ".join(reasons) or exc.description
        fix = (
            "the metadata names another issuer identifier: tokens carry that one as iss; "
            "name the issuer exactly as its metadata does (a trailing slash counts)"
            if "its issuer" in detail
            else f"is {source.issuer} the issuer identifier, the iss its tokens carry? "
            "(Keycloak's ends with /realms/<realm>, Auth0's with a slash, Entra's with /v2.0)"
            if "HTTP 404" in detail
            else "it does not answer from here: check the URL, DNS and any proxy; an app that "
            "reaches the issuer at another address sets Issuer(internal_url=...)"
            if "Error" in detail or "Timeout" in detail
            else None
        )
        report.add(f"{title} discovery", "fail", detail, fix)
        report.facts.setdefault("metadata", {})[source.discovery] = None
        return None
    found = [line for line in logs.since(start) if line.startswith("discovered")]
    where = found[-1].rpartition(" at ")[2] if found else "?"
    report.add(f"{title} discovery", "pass", f"{where}: issuer matches")
    report.facts.setdefault("metadata", {})[source.discovery] = where
    return document


def settle_discoveries(report: Report) -> None:
    """The guard needs one kind of discovery: one failing beside one passing is a note."""
    steps = [step for step in report.steps if step.name.endswith("discovery")]
    if any(step.status == "pass" for step in steps):
        for step in steps:
            if step.status == "fail":
                step.status, step.fix = "warn", None


async def check_keys(report: Report, keys: KeySet, logs: KeptLogs, jwt: JWT) -> None:
    """The JWKS fetched and read as the guard reads it; the algorithms its keys verify."""
    start = len(logs.lines)
    try:
        await keys.warm()
    except TemporarilyUnavailable as exc:
        why = "; ".join(logs.since(start, "JWKS")) or exc.description
        report.add("keys", "fail", why, "the jwks_uri must answer a JWKS with signing keys")
        return
    found = keys.cached(None) or []
    skipped = logs.since(start, "skipping JWKS key")
    usable = {alg for key in found for alg in jwt.algorithms if key.fits(alg)}
    listed = ", ".join(
        f"{key.kid!r} ({key.kty}{' ' + key.crv if key.crv else ''})" for key in found
    )
    report.add("keys", "pass", f"{len(found)} signing keys: {listed}")
    if skipped:
        report.add("skipped keys", "warn", "; ".join(skipped))
    if usable:
        report.add("algorithms", "pass", f"the keys verify {', '.join(sorted(usable))}")
    else:
        report.add(
            "algorithms",
            "fail",
            f"no key verifies an algorithm the guard accepts ({', '.join(jwt.algorithms)})",
            "give JWT(algorithms=...) the issuer's algorithm, if it is asymmetric",
        )
    report.facts["keys"] = [
        {"kid": key.kid, "kty": key.kty, "crv": key.crv, "alg": key.alg,
         "algorithms": [alg for alg in jwt.algorithms if key.fits(alg)]}
        for key in found
    ]  # fmt: skip


def check_cache_control(
    report: Report, exchanges: Exchanges, document: dict[str, Any], jwt: JWT
) -> None:
    """How long the guard keeps the keys: the JWKS's ``max-age``, within [60, 86400] s."""
    uri = document.get("jwks_uri")
    answer = exchanges.of(uri) if isinstance(uri, str) else None
    if answer is None:
        return
    value = answer.cache_control
    headers = httpx.Headers({} if value is None else {"cache-control": value})
    ttl = cache_ttl(headers, jwt.keys_ttl)
    report.facts["jwks_uri"], report.facts["cache_control"] = uri, value
    if value is None or "max-age" not in value:
        report.add(
            "Cache-Control",
            "warn",
            f"{value or 'none'}: the guard keeps the keys {ttl:.0f} s (JWT(keys_ttl=...))",
        )
        return
    report.add("Cache-Control", "pass", f"{value!r}: the guard keeps the keys {ttl:.0f} s")


def check_clock(report: Report, exchanges: Exchanges, leeway: float) -> None:
    """The server's clock against ours (RFC 9110 §6.6.1 ``Date``): beyond the leeway, fresh
    tokens look issued in the future (iat, nbf) and are refused."""
    offset = exchanges.clock_offset()
    report.facts["clock_offset"] = offset
    if offset is None:
        report.add("clock", "warn", "the server sent no Date header: the offset is unknown")
    elif abs(offset) <= leeway:
        report.add("clock", "pass", f"offset {offset:+.0f} s, within the {leeway:g} s leeway")
    else:
        report.add(
            "clock",
            "fail",
            f"offset {offset:+.0f} s, more than the {leeway:g} s leeway: tokens would be "
            "refused as not valid yet or expired",
            "synchronize this machine's or the issuer's clock (NTP)",
        )


def verdict_of(report: Report, issuer: str) -> str:
    if report.exit_code == ACCEPTED:
        return f"usable: the guard can verify tokens of {issuer}"
    if report.exit_code == UNAVAILABLE:
        return f"unreachable: {issuer} did not answer; the guard would answer 503"
    failed = [step.name for step in report.steps if step.status == "fail"]
    return f"unusable: {', '.join(failed)} failed"
