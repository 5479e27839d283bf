"""``oauthguard issuer`` answers only requests that name it at its loopback address: a page
that points its own host name at 127.0.0.1 (DNS rebinding) gets a 421, never a token."""

from __future__ import annotations

import base64

import httpx
import pytest
from conftest import RESOURCE
from support import free_port, serve

from oauthguard._cli.issuer import LoopbackHostOnly
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio


def served(host: str = "127.0.0.1") -> tuple[TestIssuer, LoopbackHostOnly]:
    issuer = TestIssuer("http://127.0.0.1:8111", allowed_scopes=["orders:read"])
    issuer.register_client(client_id="app", client_secret="s3cret")
    return issuer, LoopbackHostOnly(issuer.app, 8111, host)


def token_request(host: str) -> httpx.Request:
    return httpx.Request(
        "POST",
        "http://127.0.0.1:8111/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE},
        headers={
            "Host": host,
            "Authorization": "Basic " + base64.b64encode(b"app:s3cret").decode(),
        },
    )


@pytest.mark.parametrize("host", ["127.0.0.1:8111", "localhost:8111", "LOCALHOST:8111"])
async def test_the_issuer_answers_at_its_own_address(host: str) -> None:
    _, app = served()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        answer = await http.send(token_request(host))
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:8111",  # a rebound name, with the right port
        "127.0.0.1.attacker.example:8111",
        "127.0.0.1",  # no port: not the address the issuer printed
        "127.0.0.1:80",
        "127.0.0.1:8111 ",
        "",
    ],
)
async def test_a_request_naming_another_host_is_a_421(host: str) -> None:
    _, app = served()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        answer = await http.send(token_request(host))
    assert answer.status_code == 421
    assert "access_token" not in answer.text


async def test_several_host_headers_are_a_421() -> None:
    _, app = served()
    request = token_request("127.0.0.1:8111")
    request.headers = httpx.Headers(
        [*request.headers.multi_items(), ("Host", "attacker.example:8111")]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        answer = await http.send(request)
    assert answer.status_code == 421


def test_over_loopback_a_rebound_name_gets_no_metadata() -> None:
    issuer, port = TestIssuer(), free_port()
    with serve(LoopbackHostOnly(issuer.app, port, "127.0.0.1"), port=port) as base:
        own = httpx.get(base + issuer.metadata_path, timeout=10)
        rebound = httpx.get(
            base + issuer.metadata_path, headers={"Host": f"rebound.example:{port}"}, timeout=10
        )
    assert own.status_code == 200 and rebound.status_code == 421


def test_an_ipv6_listener_answers_at_its_bracketed_address() -> None:
    app = LoopbackHostOnly(TestIssuer().app, 8111, "::1")
    assert app.hosts == {"[::1]:8111", "localhost:8111"}
