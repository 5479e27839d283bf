"""Authorization server metadata: RFC 8414 with OpenID Connect Discovery as fallback."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from oauthguard._http.fetch import FetchFailed, fetch_json
from oauthguard._http.singleflight import SingleFlight
from oauthguard._http.urls import https_or_loopback
from oauthguard._wire.errors import TemporarilyUnavailable

logger = logging.getLogger("oauthguard")

RFC8414 = "/.well-known/oauth-authorization-server"
OIDC = "/.well-known/openid-configuration"


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may live, in the order we try them.

    RFC 8414 §3.1 inserts the well-known segment between host and path; OIDC Discovery §4
    appends it to the issuer; the path-inserted OIDC form is what several servers use too.
    A terminating ``/`` is removed first.
    """
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{origin}{RFC8414}{path}", f"{origin}{OIDC}{path}"]
    if path:
        urls.append(f"{origin}{path}{OIDC}")
    return urls


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
        self._documents: dict[str, tuple[dict[str, Any], float]] = {}
        self._failed_at: dict[str, tuple[float, str]] = {}
        self._flight: SingleFlight[dict[str, Any]] = SingleFlight()

    def cached(self, issuer: str) -> dict[str, Any] | None:
        """The last document fetched for ``issuer``, however old, without any I/O."""
        entry = self._documents.get(issuer)
        return entry[0] if entry is not None else None

    async def get(self, issuer: str) -> dict[str, Any]:
        """The issuer's metadata; ``TemporarilyUnavailable`` when it cannot be had."""
        entry = self._documents.get(issuer)
        now = self._clock()
        if entry is not None and now < entry[1] + self._max_age:
            return entry[0]
        failed = self._failed_at.get(issuer)
        if failed is not None:
            wait = failed[0] + self._retry_after - now
            if wait > 0:  # a failing issuer is asked at most once per pause
                if entry is not None:
                    return entry[0]
                raise TemporarilyUnavailable(failed[1], retry_after=math.ceil(wait))
        try:
            return await self._flight.run(issuer, lambda: self._discover(issuer))
        except TemporarilyUnavailable:
            if entry is not None:  # metadata rarely changes: the last good one will do
                return entry[0]
            raise

    async def _discover(self, issuer: str) -> dict[str, Any]:
        reasons = []
        for url in metadata_urls(issuer):
            try:
                document = await self._fetch(url, issuer)
            except MetadataError as exc:
                reasons.append(f"{url}: {exc}")
                if isinstance(exc, Unreachable):
                    break
                continue
            self._documents[issuer] = (document, self._clock())
            self._failed_at.pop(issuer, None)
            logger.info("discovered metadata of %s at %s", issuer, url)
            return document
        message = f"the metadata of {issuer} could not be fetched"
        logger.warning("%s (%s)", message, "; ".join(reasons))
        self._failed_at[issuer] = (self._clock(), message)
        raise TemporarilyUnavailable(message, retry_after=math.ceil(self._retry_after))

    async def _fetch(self, url: str, issuer: str) -> dict[str, Any]:
        try:
            document, _ = await fetch_json(self._http, url, timeout=self._timeout)
        except FetchFailed as exc:
            raise (MetadataError if exc.answered else Unreachable)(str(exc)) from None
        if not isinstance(document, dict):
            raise MetadataError("the response is not a JSON object")
        # RFC 8414 §3.3: the issuer in the document is identical to the one we asked for.
        if document.get("issuer") != issuer:
            raise MetadataError(f"its issuer {document.get('issuer')!r} is not {issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if jwks_uri is not None and not (isinstance(jwks_uri, str) and https_or_loopback(jwks_uri)):
            raise MetadataError(f"jwks_uri {jwks_uri!r} is not an https URL")
        return document
