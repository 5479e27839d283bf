"""``public_origin``: the origin a DPoP proof's htu must name is pinned (RFC 9449 §4.3 check
9), so a proof made for another name of the server, or for a Host a proxy passed through,
is refused; ``oauthguard.mcp.protect`` pins the origin of its ``resource``."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from dpop_setup import RESOURCE, Setup
from guards import build_guard
from proofs import ClientKey
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from support import assert_refused, free_port, serve

from oauthguard import ConfigurationError, DPoP, OAuthGuard
from oauthguard.mcp import protect
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio
EVIL = "https://evil.test"


def refused_for_htu(response: httpx.Response) -> None:
    params = assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
    assert params["error_description"] == "the DPoP proof's htu does not match the request URI"
    assert params["algs"] == "ES256 EdDSA RS256 PS256"


async def test_by_default_the_htu_follows_the_host_header() -> None:
    setup = Setup()
    token = setup.token()
    async with setup.client(EVIL) as client:
        response = await setup.call(token, setup.proof(token, url=EVIL + "/mcp"), client=client)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("host", ["api.test/mcp#", "api.test/mcp?", "api.test/mcp"])
async def test_a_host_header_with_a_path_cannot_move_the_path_a_proof_names(host: str) -> None:
    """Host: api.test/mcp# on GET /a/other would have made the URI https://api.test/mcp#/a/other,
    so a proof for /mcp would have passed on every path; it is a 400 instead."""
    setup = Setup()
    token = setup.token()
    for url in ("https://api.test/mcp", "https://api.test/mcp/a/other"):
        response = await setup.call(
            token, setup.proof(token, url=url), path="/a/other", headers=[("host", host)]
        )
        params = assert_refused(response, 400, "invalid_request", scheme="DPoP")
        assert "host" in params["error_description"]


async def test_a_proof_for_another_host_is_refused_though_the_host_header_matches_it() -> None:
    setup = Setup(public_origin="https://api.test")
    token = setup.token()
    async with setup.client(EVIL) as client:  # Host: evil.test
        refused_for_htu(
            await setup.call(token, setup.proof(token, url=EVIL + "/mcp"), client=client)
        )
        for url in ("http://api.test/mcp", "https://api.test:8443/mcp", "https://api.test/"):
            refused_for_htu(await setup.call(token, setup.proof(token, url=url), client=client))
        # The pinned origin is what counts, whatever the Host header says.
        response = await setup.call(token, setup.proof(token), client=client)
        assert response.status_code == 200, response.text


async def test_the_pinned_origin_is_normalized_and_compared_after_normalization() -> None:
    setup = Setup(public_origin="HTTPS://API.Test:443/")
    token = setup.token()
    async with setup.client(EVIL) as client:
        for url in ("https://api.test/mcp", "https://API.TEST:443/mcp", "HTTPS://api.test/mc%70"):
            response = await setup.call(token, setup.proof(token, url=url), client=client)
            assert response.status_code == 200, (url, response.text)


async def test_a_pinned_port_is_part_of_the_origin() -> None:
    setup = Setup(public_origin="https://api.test:8443")
    token = setup.token()
    async with setup.client("https://api.test:8443") as client:
        refused_for_htu(await setup.call(token, setup.proof(token), client=client))
        proof = setup.proof(token, url="https://api.test:8443/mcp")
        assert (await setup.call(token, proof, client=client)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        [("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.test")],
        [("forwarded", "for=198.51.100.7;proto=https;host=evil.test")],
    ],
)
async def test_behind_trusted_proxies_the_pinned_origin_wins(
    headers: list[tuple[str, str]],
) -> None:
    setup = Setup(trusted_proxies=["10.0.0.0/8"], public_origin="https://api.test")
    token = setup.token()
    async with setup.client("http://10.0.0.5:8000", peer=("10.1.2.3", 4000)) as client:
        refused_for_htu(
            await setup.call(
                token, setup.proof(token, url=EVIL + "/mcp"), client=client, headers=headers
            )
        )
        response = await setup.call(token, setup.proof(token), client=client, headers=headers)
        assert response.status_code == 200, response.text
    unpinned = Setup(trusted_proxies=["10.0.0.0/8"])  # the same request, without the pin
    async with unpinned.client("http://10.0.0.5:8000", peer=("10.1.2.3", 4000)) as client:
        token = unpinned.token()
        proof = unpinned.proof(token, url=EVIL + "/mcp")
        response = await unpinned.call(token, proof, client=client, headers=headers)
        assert response.status_code == 200, response.text


async def test_the_path_still_comes_from_the_request_with_its_root_path() -> None:
    setup = Setup(public_origin="https://api.test")
    token = setup.token()
    transport = httpx.ASGITransport(app=setup.app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url=EVIL) as client:
        refused_for_htu(await setup.call(token, setup.proof(token), client=client, path="/api/mcp"))
        proof = setup.proof(token, url="https://api.test/api/mcp")
        response = await setup.call(token, proof, client=client, path="/api/mcp")
        assert response.status_code == 200, response.text


def test_a_websocket_handshake_is_checked_against_the_pinned_origin() -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"scheme": websocket.scope["auth"].scheme})
        await websocket.close()

    setup = Setup(public_origin="https://api.test")
    setup.app.router.routes.append(WebSocketRoute("/ws", echo))
    token = setup.token()
    client = TestClient(setup.app, base_url=EVIL)

    def connect(htu: str) -> Any:
        headers = {"authorization": f"DPoP {token}", "dpop": setup.proof(token, url=htu)}
        return client.websocket_connect("wss://evil.test/ws", headers=headers)

    with pytest.raises(WebSocketDenialResponse) as denied:
        connect("https://evil.test/ws").__enter__()
    refused_for_htu(denied.value)
    with connect("https://api.test/ws") as websocket:
        assert websocket.receive_json() == {"scheme": "DPoP"}


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("reached")(scope, receive, send)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "https://api.example.com/mcp",
            "DPoP(public_origin='https://api.example.com/mcp') has a path ('/mcp'); the path "
            "comes from "
            "each request: give only the scheme, host and port clients reach the server at, like "
            "'https://api.example.com' or 'https://api.example.com:8443'",
        ),
        ("https://api.example.com?x=1", "has a query or fragment"),
        ("https://api.example.com#x", "has a query or fragment"),
        ("https://me@api.example.com", "has user information"),
        ("ftp://api.example.com", "is not an absolute https:// or http:// URL"),
        ("api.example.com", "is not an absolute https:// or http:// URL"),
        ("https://api.example.com:99999", "port"),
        ("https://api_example.com\t", "whitespace"),
        ("https://*.example.com", "not a DNS name"),
        (b"https://api.example.com", "must be a string like 'https://api.example.com'"),
        (True, "must be a string"),
    ],
)
def test_a_bad_public_origin_is_a_configuration_error(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build_guard(
            _app,
            resource=RESOURCE,
            authorization_servers="https://issuer.test",
            public_origin=value,
        )  # type: ignore[arg-type]
    assert message in str(raised.value)
    with pytest.raises(ConfigurationError, match="public_origin"):
        DPoP(public_origin=value)  # type: ignore[arg-type]


def test_the_default_is_unpinned_and_protect_pins_its_resource_origin() -> None:
    def guard(**options: Any) -> OAuthGuard:
        return build_guard(
            _app, resource=RESOURCE, authorization_servers="https://i.test", **options
        )

    assert guard().server.dpop.public_origin is None
    assert (
        guard(public_origin="https://API.test:443").server.dpop.public_origin == "https://api.test"
    )
    mcp = protect(
        _app, resource="https://MCP.example.com:443/v1/mcp", authorization_servers="https://i.test"
    )
    assert mcp.server.dpop.public_origin == "https://mcp.example.com"
    explicit = protect(
        _app,
        resource=RESOURCE,
        authorization_servers="https://i.test",
        dpop=DPoP(public_origin="https://edge.example.com:8443"),
    )
    assert explicit.server.dpop.public_origin == "https://edge.example.com:8443"
    opted_out = protect(
        _app, resource=RESOURCE, authorization_servers="https://i.test", dpop=DPoP()
    )
    assert opted_out.server.dpop.public_origin is None
    same_origin = protect(
        _app,
        resource="https://api.test/mcp",
        resources="https://API.test/v2",
        authorization_servers="https://i.test",
    )
    assert same_origin.server.dpop.public_origin == "https://api.test"


def test_protect_pins_no_default_origin_for_resources_on_several_origins() -> None:
    # DPoP for the resource on another origin could never pass: say so at construction.
    with pytest.raises(
        ConfigurationError,
        match=r"'https://other\.test/v2' is not on "
        r"https://api\.test.*public_origin=None",
    ):
        protect(
            _app,
            resource="https://api.test/mcp",
            resources=["https://other.test/v2"],
            authorization_servers="https://i.test",
        )
    chosen = protect(
        _app,
        resource="https://api.test/mcp",
        resources=["https://other.test/v2"],
        authorization_servers="https://i.test",
        dpop=DPoP(public_origin=None),
    )
    assert chosen.server.dpop.public_origin is None


async def test_protect_refuses_a_proof_for_another_name_of_the_server_over_http() -> None:
    """The server answers at 127.0.0.1 and at localhost; its resource (what clients are
    told to use) is the 127.0.0.1 URL, so a proof made for localhost is not for it."""
    issuer = TestIssuer("https://issuer.test", algorithms=("ES256",))
    key = ClientKey()
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    other_name = f"http://localhost:{port}/mcp"
    token = issuer.token(audience=resource, alg="ES256", jkt=key.thumbprint)

    async def post(guard: OAuthGuard, htu: str) -> httpx.Response:
        with serve(guard, port=port):
            async with httpx.AsyncClient() as http:
                return await http.post(
                    resource,
                    headers={
                        "host": f"localhost:{port}",
                        "authorization": f"DPoP {token}",
                        "dpop": key.proof("POST", htu, now=time.time(), token=token),
                    },
                )

    def guarded(**options: Any) -> OAuthGuard:
        return protect(
            _app,
            resource=resource,
            authorization_servers=issuer.issuer,
            http_client=issuer.http_client(),
            **options,
        )

    refused_for_htu(await post(guarded(), other_name))
    reached = await post(guarded(), resource)
    assert reached.status_code == 200 and reached.text == "reached"
    # public_origin=None opts out: the Host header names the origin again.
    assert (await post(guarded(dpop=DPoP()), other_name)).status_code == 200
