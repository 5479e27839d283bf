"""HTTP exchanges with an authorization server (metadata, JWKS, introspection), their
responses read with a cap on their size.

A broken or hostile server must not make the guard hold an unbounded body in memory: the
body is streamed and the read stops as soon as it passes the cap. We ask for no content
coding, and a server that compresses anyway is decompressed no further than the cap, so a
small gzip body cannot expand into a large one.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from oauthguard._telemetry import TELEMETRY, traced_status

#: The largest metadata document, JWKS or introspection response read (real ones are a few
#: KiB).
MAX_DOCUMENT_BYTES = 1024 * 1024
# RFC 9110 §8.4.1: the codings zlib decompresses (wbits 47: a gzip or zlib header).
_ZLIB_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})


class UnreadableBody(Exception):
    """The response body cannot be read within our limits."""


class DocumentTooLarge(UnreadableBody):
    """The response body is larger than the cap; nothing past the cap was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the response is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response whose body was read whole (empty unless its status is one to read)."""

    status_code: int
    headers: httpx.Headers
    body: bytes


async def fetch_document(
    http: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    limit: int = MAX_DOCUMENT_BYTES,
    form: Mapping[str, str | Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    read_statuses: Container[int] = (200,),
    span: str = "oauthguard fetch",
    issuer: str | None = None,
) -> Fetched:
    """GET ``url`` as JSON, or POST ``form`` to it; ``DocumentTooLarge`` past ``limit``
    bytes, ``httpx.HTTPError`` when the server does not answer. Only the bodies of
    ``read_statuses`` responses are read. A POST never follows a redirect: it would send
    the form (a token, our credentials) elsewhere.

    ``timeout`` bounds the whole exchange too, not only each read: a server dripping its
    body byte by byte must not hold the fetch (and every request waiting on it) for long.
    The exchange is a client span named ``span`` when a tracer is bound (``_telemetry``).
    """
    sent = {"accept": "application/json", **(headers or {}), "accept-encoding": "identity"}
    options: dict[str, Any] = {"headers": sent, "timeout": timeout}
    method = "GET"
    if form is not None:
        method = "POST"
        options.update(data=form, follow_redirects=False)
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:  # a URL from a document (jwks_uri): no request to make
        raise httpx.UnsupportedProtocol(f"the URL cannot be requested: {exc}") from None
    with TELEMETRY.http_span(span, method, url, issuer) as traced:
        with anyio.move_on_after(timeout):
            async with http.stream(method, url, **options) as response:
                if traced is not None:
                    traced_status(traced, response.status_code)
                if response.status_code not in read_statuses:
                    return Fetched(response.status_code, response.headers, b"")
                body = await _read_capped(response, limit)
                return Fetched(response.status_code, response.headers, body)
        raise httpx.ReadTimeout(f"no whole response within {timeout:g} s")


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise DocumentTooLarge(limit)  # refused before reading any of it
    # A response built in memory (a test transport) was read, and decoded, when made.
    in_memory = response.is_stream_consumed
    coding = (
        "identity"
        if in_memory
        else response.headers.get("content-encoding", "identity").strip().lower()
    )
    if coding not in _ZLIB_CODINGS | {"identity", ""}:
        raise UnreadableBody(
            f"the response has a content coding we did not ask for: {coding[:40]!r}"
        )
    inflate = zlib.decompressobj(47) if coding in _ZLIB_CODINGS else None
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes() if in_memory else response.aiter_raw():
            # At most one byte past the cap is decompressed: a bomb stops there.
            body += inflate.decompress(chunk, limit + 1 - len(body)) if inflate else chunk
            if len(body) > limit:
                raise DocumentTooLarge(limit)
    except zlib.error as exc:
        raise UnreadableBody(f"the {coding} response does not decompress: {exc}") from None
    return bytes(body)


class FetchFailed(Exception):
    """No usable JSON document from a URL: why, and whether the server answered at all."""

    def __init__(self, reason: str, *, answered: bool = True) -> None:
        super().__init__(reason)
        self.answered = answered


async def fetch_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    span: str = "oauthguard fetch",
    issuer: str | None = None,
) -> tuple[Any, httpx.Headers]:
    """The JSON document at ``url`` (a 200 response) and its headers; ``FetchFailed``."""
    try:
        response = await fetch_document(http, url, timeout=timeout, span=span, issuer=issuer)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}", answered=False) from None
    except UnreadableBody as exc:
        raise FetchFailed(str(exc)) from None
    if response.status_code != 200:
        raise FetchFailed(f"HTTP {response.status_code}")
    try:
        return json.loads(response.body), response.headers
    except (ValueError, RecursionError):
        raise FetchFailed("the response is not JSON") from None
