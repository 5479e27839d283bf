"""Authorization server metadata: RFC 8414 with OpenID Connect Discovery as fallback."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from oauthguard._http.fetch import FetchFailed, fetch_json
from oauthguard._http.singleflight import SingleFlight
from oauthguard._http.urls import https_or_loopback
from oauthguard._telemetry import TELEMETRY
from oauthguard._wire.errors import TemporarilyUnavailable

logger = logging.getLogger("oauthguard")

RFC8414 = "/.well-known/oauth-authorization-server"
OIDC = "/.well-known/openid-configuration"


#: Documents (and failures) kept at most, oldest out: one per issuer, tenants included.
MAX_ISSUERS = 4096


def metadata_urls(issuer: str, discovery: str = "auto") -> list[str]:
    """Where an issuer's metadata may live, in the order we try them.

    RFC 8414 §3.1 inserts the well-known segment between host and path; OIDC Discovery §4
    appends it to the issuer; the path-inserted OIDC form is what several servers use too.
    A terminating ``/`` is removed first. ``discovery="oauth"`` gives the RFC 8414 URL only,
    ``"oidc"`` the OpenID Connect ones only.
    """
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{origin}{RFC8414}{path}", f"{origin}{OIDC}{path}"]
    if path:
        urls.append(f"{origin}{path}{OIDC}")
    if discovery == "oauth":
        return urls[:1]
    if discovery == "oidc":
        return urls[1:]
    return urls


def under(url: str, base: str) -> str | None:
    """The rest of ``url`` after ``base`` when ``url`` is ``base`` or below it (whole path
    segments only), else None."""
    root = base.rstrip("/")
    if url == root or url.startswith(root + "/"):
        return url[len(root) :]
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """Where one issuer's metadata is fetched from, and which URLs in it are used.

    ``issuer`` is the public identifier the document must name (RFC 8414 §3.3);
    ``internal`` the base the server reaches it at instead (URLs under ``issuer`` are
    fetched under it); ``allow_http`` permits plain http on hosts other than loopback.
    """

    issuer: str
    internal: str | None = None
    discovery: str = "auto"
    allow_http: bool = False

    def fetched_at(self, url: str) -> str:
        """``url`` as the server fetches it: under the internal base when under the public."""
        if self.internal is None:
            return url
        rest = under(url, self.issuer)
        return url if rest is None else self.internal.rstrip("/") + rest

    def public_of(self, url: str) -> str:
        """``url`` as the issuer names it: under the public base when under the internal one
        (what a client assertion's ``aud`` and a DPoP proof's ``htu`` must say)."""
        if self.internal is None:
            return url
        rest = under(url, self.internal)
        return url if rest is None else self.issuer.rstrip("/") + rest

    def usable(self, url: object) -> bool:
        """A URL the server is willing to fetch: https, http on loopback, or any http with
        ``allow_http``."""
        if not isinstance(url, str):
            return False
        if https_or_loopback(url):
            return True
        parts = urlsplit(url)
        return self.allow_http and parts.scheme == "http" and bool(parts.hostname)

    def metadata_urls(self) -> list[str]:
        return metadata_urls(self.internal or self.issuer, self.discovery)

    def rewritten(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document with its URLs under the public base moved under the internal one;
        its ``issuer`` stays the public identifier."""
        if self.internal is None:
            return document
        return {
            name: self.fetched_at(value) if isinstance(value, str) and name != "issuer" else value
            for name, value in document.items()
        }


class MetadataError(Exception):
    """The metadata could not be had from this URL (and why)."""


class Unreachable(MetadataError):
    """The issuer did not answer at all: trying its other URLs would only wait longer."""


class AuthorizationServers:
    """The metadata of each configured issuer, fetched once and shared (single-flight).

    A document is used for ``max_age`` seconds, then discovered again when next needed
    (off the hot path: only a JWKS fetch asks for it); the last good one is kept while the
    issuer fails.
    """

    def __init__(
        self,
        http_client: httpx.AsyncClient,
        clock: Callable[[], float],
        *,
        timeout: float = 5.0,
        retry_after: float = 30.0,
        max_age: float = 86400.0,
    ) -> None:
        self._http = http_client
        self._clock = clock
        self._timeout = timeout
        self._retry_after = retry_after
        self._max_age = max_age
        self._documents: dict[Source, tuple[dict[str, Any], float]] = {}
        self._failed_at: dict[Source, tuple[float, str]] = {}
        self._flight: SingleFlight[dict[str, Any]] = SingleFlight()

    def cached(self, issuer: str | Source) -> dict[str, Any] | None:
        """The last document fetched for ``issuer``, however old, without any I/O."""
        entry = self._documents.get(issuer if isinstance(issuer, Source) else Source(issuer))
        return entry[0] if entry is not None else None

    async def get(self, issuer: str | Source) -> dict[str, Any]:
        """The issuer's metadata (its URLs as the server fetches them, see ``Source``);
        ``TemporarilyUnavailable`` when it cannot be had."""
        source = issuer if isinstance(issuer, Source) else Source(issuer)
        entry = self._documents.get(source)
        now = self._clock()
        if entry is not None and now < entry[1] + self._max_age:
            return entry[0]
        failed = self._failed_at.get(source)
        if failed is not None:
            wait = failed[0] + self._retry_after - now
            if wait > 0:  # a failing issuer is asked at most once per pause
                if entry is not None:
                    return entry[0]
                raise TemporarilyUnavailable(failed[1], retry_after=math.ceil(wait))
        try:
            return await self._flight.run(source, lambda: self._discover(source))
        except TemporarilyUnavailable:
            if entry is not None:  # metadata rarely changes: the last good one will do
                return entry[0]
            raise

    async def _discover(self, source: Source) -> dict[str, Any]:
        issuer = source.issuer
        metrics = TELEMETRY.refresh()
        reasons = []
        for url in source.metadata_urls():
            try:
                document = source.rewritten(await self._fetch(url, issuer))
                check_fetched_urls(document, source)
            except MetadataError as exc:
                reasons.append(f"{url}: {exc}")
                if isinstance(exc, Unreachable):
                    break
                continue
            remember(self._documents, source, (document, self._clock()))
            self._failed_at.pop(source, None)
            logger.info("discovered metadata of %s at %s", issuer, url)
            if metrics is not None:
                metrics.metadata_fetch("ok", issuer)
            return document
        message = f"the metadata of {issuer} could not be fetched"
        logger.warning("%s (%s)", message, "; ".join(reasons))
        if metrics is not None:  # ``get`` serves the last good document, if there is one
            metrics.metadata_fetch("stale" if source in self._documents else "failed", issuer)
        remember(self._failed_at, source, (self._clock(), message))
        raise TemporarilyUnavailable(message, retry_after=math.ceil(self._retry_after))

    async def _fetch(self, url: str, issuer: str) -> dict[str, Any]:
        try:
            document, _ = await fetch_json(
                self._http, url, timeout=self._timeout, span="oauthguard metadata", issuer=issuer
            )
        except FetchFailed as exc:
            raise (MetadataError if exc.answered else Unreachable)(str(exc)) from None
        if not isinstance(document, dict):
            raise MetadataError("the response is not a JSON object")
        # RFC 8414 §3.3: the issuer in the document is identical to the one we asked for
        # (the public identifier, wherever the document was fetched from).
        if document.get("issuer") != issuer:
            raise MetadataError(f"its issuer {document.get('issuer')!r} is not {issuer!r}")
        return document


def check_fetched_urls(document: dict[str, Any], source: Source) -> None:
    """The keys' URL is https, or http where allowed (the introspection endpoint is checked
    where it is used, the others are the client's business)."""
    url = document.get("jwks_uri")
    if url is not None and not source.usable(url):
        raise MetadataError(f"jwks_uri {str(url)[:200]!r} is not an https URL")


def remember(entries: dict[Source, Any], source: Source, value: Any) -> None:
    """Keep ``value`` for ``source``, the oldest entry out when ``MAX_ISSUERS`` are kept."""
    entries.pop(source, None)
    if len(entries) >= MAX_ISSUERS:
        del entries[next(iter(entries))]
    entries[source] = value
