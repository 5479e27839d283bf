"""The capped reads of metadata, JWKS and introspection answers: no content coding asked
for, and a compressed body decompressed no further than the cap."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
import zlib

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support import serve

from oauthguard._http.fetch import (
    MAX_DOCUMENT_BYTES,
    DocumentTooLarge,
    UnreadableBody,
    fetch_document,
)
from oauthguard._verify.discovery import AuthorizationServers
from oauthguard._verify.keys import KeySet
from oauthguard._wire.errors import TemporarilyUnavailable
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio
SIGNER = TestIssuer(algorithms=("ES256",))
KID = SIGNER.default_kid["ES256"]


def gzip_bomb(expanded: int) -> bytes:
    """``expanded`` bytes of JSON-ish spaces, gzipped into a few tens of KiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(b'{"keys": [], "padding": "')]
    parts += [compressor.compress(block) for _ in range(expanded // len(block))]
    return b"".join(parts) + compressor.compress(b'"}') + compressor.flush()


def mock_client(
    body: bytes, headers: dict[str, str], seen: list[httpx.Request]
) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # A stream, as from the network: read only when the guard reads it.
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_gets_and_posts_ask_for_no_content_coding() -> None:
    seen: list[httpx.Request] = []
    async with mock_client(b"{}", {}, seen) as http:
        await fetch_document(http, "https://issuer.test/jwks", timeout=5)
        await fetch_document(
            http,
            "https://issuer.test/introspect",
            timeout=5,
            form={"token": "t"},
            headers={"accept": "application/jwt"},
        )
    assert [r.headers["accept-encoding"] for r in seen] == ["identity", "identity"]
    assert [r.method for r in seen] == ["GET", "POST"]
    assert seen[1].headers["accept"] == "application/jwt"


async def test_a_gzip_bomb_is_decompressed_no_further_than_the_cap() -> None:
    bomb = gzip_bomb(64 * MAX_DOCUMENT_BYTES)  # 64 MiB in one network chunk of ~64 KiB
    assert len(bomb) < MAX_DOCUMENT_BYTES // 8
    async with mock_client(bomb, {"content-encoding": "gzip"}, []) as http:
        tracemalloc.start()
        try:
            with pytest.raises(DocumentTooLarge):
                await fetch_document(http, "https://issuer.test/jwks", timeout=5)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # What was held is the cap and the compressed body, never the 64 MiB it expands to.
    assert peak < 8 * MAX_DOCUMENT_BYTES


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_body_compressed_though_not_asked_for_is_read(coding: str) -> None:
    document = json.dumps(SIGNER.jwks()).encode()
    body = gzip.compress(document) if coding == "gzip" else zlib.compress(document)
    async with mock_client(body, {"content-encoding": coding}, []) as http:
        fetched = await fetch_document(http, "https://issuer.test/jwks", timeout=5)
    assert json.loads(fetched.body) == SIGNER.jwks()


@pytest.mark.parametrize(
    ("coding", "body", "says"),
    [
        ("br", b"\x8b\x03\x80{}\x03", "a content coding we did not ask for: 'br'"),
        ("gzip", b"\x1f\x8b not gzip at all", "the gzip response does not decompress"),
    ],
)
async def test_a_body_we_cannot_decode_is_unreadable(coding: str, body: bytes, says: str) -> None:
    async with mock_client(body, {"content-encoding": coding}, []) as http:
        with pytest.raises(UnreadableBody, match=says):
            await fetch_document(http, "https://issuer.test/jwks", timeout=5)


async def test_a_gzip_bomb_jwks_over_loopback_is_a_failed_fetch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bomb = gzip_bomb(16 * MAX_DOCUMENT_BYTES)
    good = gzip.compress(json.dumps(SIGNER.jwks()).encode())

    async def jwks(request: Request) -> Response:
        body = bomb if request.path_params["kind"] == "bomb" else good
        return Response(body, media_type="application/json", headers={"content-encoding": "gzip"})

    app = Starlette(routes=[Route("/{kind}", jwks)])
    with serve(app) as base:
        async with httpx.AsyncClient() as http:

            def key_set(kind: str) -> KeySet:
                servers = AuthorizationServers(http, time.time)
                return KeySet(SIGNER.issuer, http, time.time, servers, jwks_uri=f"{base}/{kind}")

            assert [key.kid for key in await key_set("good").get(KID)] == [KID]
            with (
                caplog.at_level("WARNING", logger="oauthguard"),
                pytest.raises(TemporarilyUnavailable) as refused,
            ):
                await key_set("bomb").get(KID)
    assert refused.value.status == 503
    assert (
        f"{base}/bomb: the response is larger than the limit of {MAX_DOCUMENT_BYTES} "
        "bytes" in caplog.text
    )
