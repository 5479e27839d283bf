"""GET of an issuer's JSON documents (metadata, JWKS), read with a cap on their size.

A broken or hostile issuer must not make the guard hold an unbounded body in memory: the
body is streamed and the read stops as soon as it passes the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import httpx

#: The largest metadata document or JWKS read (real ones are a few KiB).
MAX_DOCUMENT_BYTES = 1024 * 1024


class DocumentTooLarge(Exception):
    """The response body is larger than the cap; nothing past the cap was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the response is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response whose body was read whole (empty unless the status is 200)."""

    status_code: int
    headers: httpx.Headers
    body: bytes


async def fetch_document(http: httpx.AsyncClient, url: str, *, timeout: float,
                         limit: int = MAX_DOCUMENT_BYTES) -> Fetched:
    """GET ``url`` as JSON; ``DocumentTooLarge`` past ``limit`` bytes, ``httpx.HTTPError``
    when the issuer does not answer. Only a 200 response's body is read.

    ``timeout`` bounds the whole exchange too, not only each read: an issuer dripping its
    body byte by byte must not hold the fetch (and every request waiting on it) for long.
    """
    with anyio.move_on_after(timeout):
        return await _read(http, url, timeout, limit)
    raise httpx.ReadTimeout(f"no whole response within {timeout:g} s")


async def _read(http: httpx.AsyncClient, url: str, timeout: float, limit: int) -> Fetched:
    async with http.stream("GET", url, timeout=timeout,
                           headers={"accept": "application/json"}) as response:
        if response.status_code != 200:
            return Fetched(response.status_code, response.headers, b"")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise DocumentTooLarge(limit)  # refused before reading any of it
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise DocumentTooLarge(limit)
        return Fetched(response.status_code, response.headers, bytes(body))
