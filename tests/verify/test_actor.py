"""Delegated tokens: ``AccessToken.actor`` from the ``act`` claim (RFC 8693 §4.1), read
end to end through the guard, and ``require(actors=...)``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import assert_refused

from oauthguard import ConfigurationError, OAuthGuard, ResourceServer, require
from oauthguard._jose.b64 import b64url_decode
from oauthguard.testing import TestIssuer
from oauthguard.testing._keys import sign_jws

pytestmark = pytest.mark.anyio
RESOURCE = "https://api.test/orders"


async def whoami(request: Request) -> Response:
    actor = request.auth.actor
    return JSONResponse(
        {
            "subject": request.auth.subject,
            "actor": None if actor is None else actor.subject,
            "chain": [] if actor is None else [each.subject for each in actor.chain],
        }
    )


@require(actors=["mcp-server"])
async def by_mcp(request: Request) -> Response:
    return JSONResponse({"ok": True})


@require(actors=())
async def only_the_subject(request: Request) -> Response:
    return JSONResponse({"ok": True})


@pytest.fixture
async def call() -> Any:
    issuer = TestIssuer("https://issuer.test")
    app = Starlette(
        routes=[
            Route("/orders", whoami),
            Route("/orders/by-mcp", by_mcp),
            Route("/orders/mine", only_the_subject),
        ]
    )
    async with issuer.http_client() as http:
        server = ResourceServer(
            resource=RESOURCE, authorization_servers=issuer.issuer, http_client=http
        )
        transport = httpx.ASGITransport(app=OAuthGuard(app, server))
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:

            async def get(path: str, **claims: Any) -> httpx.Response:
                token = issuer.token(subject="alice", audience=RESOURCE, claims=claims)
                if claims.get("act", ...) is None:  # TestIssuer drops a None: sign a null
                    header, payload, _ = token.split(".")
                    members = {**json.loads(b64url_decode(payload)), "act": None}
                    head = json.loads(b64url_decode(header))
                    token = sign_jws(head, members, issuer.private_key(head["alg"]))
                return await client.get(path, headers={"Authorization": f"Bearer {token}"})

            yield get


async def test_the_outermost_act_is_the_current_actor_and_nested_ones_the_chain(
    call: Any,
) -> None:
    act = {"sub": "mcp-server", "act": {"sub": "gateway", "act": {"sub": "edge"}}}
    response = await call("/orders", act=act)
    assert response.json() == {
        "subject": "alice",
        "actor": "mcp-server",
        "chain": ["mcp-server", "gateway", "edge"],
    }


async def test_a_token_without_act_has_no_actor(call: Any) -> None:
    assert (await call("/orders")).json() == {"subject": "alice", "actor": None, "chain": []}


@pytest.mark.parametrize(
    ("act", "description"),
    [
        ("mcp-server", "the token's act claim is not a JSON object"),
        ({"sub": "a", "act": ["b"]}, "the token's act claim is not a JSON object"),
        ({"sub": "a", "act": None}, "the token's act claim is not a JSON object"),
        ({"sub": 7}, "the token's act claim has a sub, iss or client_id not a string"),
        (
            {"sub": "a", "iss": ["x"]},
            "the token's act claim has a sub, iss or client_id not a string",
        ),
    ],
)
async def test_an_act_that_cannot_be_read_with_certainty_is_refused(
    call: Any, act: Any, description: str
) -> None:
    params = assert_refused(await call("/orders", act=act), 401, "invalid_token")
    assert params["error_description"] == description


async def test_an_act_of_null_is_refused_not_read_as_no_actor(call: Any) -> None:
    params = assert_refused(await call("/orders/mine", act=None), 401, "invalid_token")
    assert params["error_description"] == "the token's act claim is not a JSON object"


async def test_a_chain_deeper_than_sixteen_actors_is_refused(call: Any) -> None:
    act: dict[str, Any] = {"sub": "first"}
    for n in range(16):
        act = {"sub": f"a{n}", "act": act}
    params = assert_refused(await call("/orders", act=act), 401, "invalid_token")
    assert params["error_description"] == "the token's act claim nests more than 16 actors"


async def test_require_actors_lets_the_named_actor_and_the_subject_itself_through(
    call: Any,
) -> None:
    assert (await call("/orders/by-mcp", act={"sub": "mcp-server"})).status_code == 200
    assert (await call("/orders/by-mcp")).status_code == 200
    # RFC 8693 §4.1: only the current actor counts, not the earlier ones.
    nested = {"sub": "mcp-server", "act": {"sub": "someone-else"}}
    assert (await call("/orders/by-mcp", act=nested)).status_code == 200


async def test_require_actors_refuses_another_actor_with_a_403(call: Any) -> None:
    response = await call("/orders/by-mcp", act={"sub": "rogue", "act": {"sub": "mcp-server"}})
    params = assert_refused(response, 403, "insufficient_scope")
    assert params["error_description"] == (
        "the token is delegated to the actor 'rogue', not one of 'mcp-server'"
    )
    assert "scope" not in params
    nameless = await call("/orders/by-mcp", act={"iss": "https://issuer.test"})
    assert assert_refused(nameless, 403, "insufficient_scope")["error_description"] == (
        "the token is delegated to an actor without sub, not one of 'mcp-server'"
    )


async def test_an_actor_of_another_issuer_is_not_the_actor_of_that_name(call: Any) -> None:
    # RFC 8693 §4.1: an actor's sub is unique within its iss; "mcp-server" of another issuer
    # is someone else, whatever the name.
    own = await call("/orders/by-mcp", act={"sub": "mcp-server", "iss": "https://issuer.test"})
    assert own.status_code == 200
    response = await call("/orders/by-mcp", act={"sub": "mcp-server", "iss": "https://idp.evil"})
    params = assert_refused(response, 403, "insufficient_scope")
    assert params["error_description"] == (
        "the token is delegated to the actor 'mcp-server' of another issuer, "
        "'https://idp.evil', not one of 'mcp-server'"
    )


def test_an_actor_naming_an_issuer_on_a_token_that_names_none_is_refused() -> None:
    # An introspected token may come without iss: the actor's sub cannot then be known to
    # be in the token's issuer's namespace, so no name in actors= matches it (fail closed).
    from oauthguard import AccessToken, Actor, InsufficientScope

    def token(actor_issuer: str | None) -> AccessToken:
        actor = Actor("mcp-server", issuer=actor_issuer)
        return AccessToken("alice", "c", frozenset(), (), None, None, actor=actor)

    require(actors="mcp-server").check(token(None), now=0)
    with pytest.raises(InsufficientScope) as refused:
        require(actors="mcp-server").check(token("https://issuer.test"), now=0)
    assert "of another issuer, 'https://issuer.test'" in str(refused.value)


async def test_require_no_actors_refuses_every_delegated_token(call: Any) -> None:
    assert (await call("/orders/mine")).status_code == 200
    params = assert_refused(await call("/orders/mine", act={"sub": "x"}), 403, "insufficient_scope")
    assert params["error_description"] == (
        "the token is delegated (act), and this operation is for its subject alone"
    )


def test_actors_are_named_like_clients() -> None:
    assert require(actors="mcp-server").actors == ("mcp-server",)
    assert require(actors=()).actors == ()
    assert require().actors is None
    assert repr(require(actors=["a"])) == "require(actors=('a',))"
    with pytest.raises(ConfigurationError, match="actors"):
        require(actors="a b")
    with pytest.raises(ConfigurationError, match="actors"):
        require(actors=[""])


async def test_the_raw_token_rides_on_the_access_token_but_not_in_its_repr() -> None:
    issuer = TestIssuer("https://issuer.test")
    token = issuer.token(audience=RESOURCE)
    async with issuer.http_client() as http:
        server = ResourceServer(
            resource=RESOURCE, authorization_servers=issuer.issuer, http_client=http
        )
        verified = await server.verify(token)
    assert verified.raw == token
    assert token not in repr(verified)
