"""TokenExchange against TestIssuer's RFC 8693 grant: the request, the token, the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import anyio
import pytest
from exchange_setup import (
    CLIENT_ID,
    DOWNSTREAM,
    MCP,
    Setup,
    exchange_setup,
)
from oidc_provider import jose_part

from oauthguard import ResourceServer
from oauthguard.exchange import (
    ACCESS_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    ExchangeRefused,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    async with exchange_setup() as made:
        yield made


async def test_the_request_is_rfc_8693_and_the_token_is_for_the_downstream_api(
    setup: Setup,
) -> None:
    caller = await setup.caller()
    exchange = setup.exchange()
    token = await exchange.token_for(caller, resource=DOWNSTREAM, scope="orders:read")
    [form] = setup.exchange_requests()
    assert form == {  # RFC 8693 §2.1; the client authenticates with Basic (not in the form)
        "grant_type": [TOKEN_EXCHANGE_GRANT],
        "subject_token": [caller.raw],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
        "requested_token_type": [ACCESS_TOKEN_TYPE],
        "resource": [DOWNSTREAM],
        "scope": ["orders:read"],
    }
    assert (token.token_type, token.scope, token.issued_token_type) == (
        "Bearer",
        "orders:read",
        ACCESS_TOKEN_TYPE,
    )
    assert token.expires_at == setup.clock.now + 300
    claims = jose_part(token.access_token, 1)
    assert (claims["aud"], claims["sub"]) == (DOWNSTREAM, "alice")
    assert claims["act"] == {"sub": CLIENT_ID}
    assert token.access_token != caller.raw
    assert caller.raw not in repr(token) and token.access_token not in repr(token)


async def test_the_downstream_api_accepts_it_and_sees_who_acts_for_whom(setup: Setup) -> None:
    caller = await setup.caller()
    token = await setup.exchange().token_for(caller, resource=DOWNSTREAM)
    downstream = ResourceServer(
        resource=DOWNSTREAM,
        authorization_servers=setup.issuer.issuer,
        http_client=setup.http,
        clock=setup.clock,
    )
    seen = await downstream.verify(token.access_token)
    assert (seen.subject, seen.audience, seen.client_id) == ("alice", (DOWNSTREAM,), CLIENT_ID)
    assert seen.actor is not None and seen.actor.subject == CLIENT_ID
    # No scope asked: those of the caller's that the policy allows.
    assert seen.scopes == {"orders:read"}


async def test_audience_and_jwt_subject_type_are_sent_as_asked(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(subject_token_type="jwt")
    await exchange.token_for(caller, audience=DOWNSTREAM)
    [form] = setup.exchange_requests()
    assert form["audience"] == [DOWNSTREAM] and "resource" not in form
    assert form["subject_token_type"] == [JWT_TOKEN_TYPE]


async def test_an_actor_token_makes_its_subject_the_actor_and_the_chain_nests(
    setup: Setup,
) -> None:
    actor = setup.issuer.token(subject="agent-7", audience=MCP)
    caller = await setup.caller(act={"sub": "gateway"})
    exchange = setup.exchange(actor_token=lambda: actor)
    token = await exchange.token_for(caller, resource=DOWNSTREAM)
    [form] = setup.exchange_requests()
    assert (form["actor_token"], form["actor_token_type"]) == ([actor], [ACCESS_TOKEN_TYPE])
    # RFC 8693 §4.1: the current actor outermost, the earlier one nested.
    assert jose_part(token.access_token, 1)["act"] == {"sub": "agent-7", "act": {"sub": "gateway"}}


async def test_the_subject_can_be_anything_with_a_token_string_or_the_string_itself(
    setup: Setup,
) -> None:
    caller = await setup.caller()
    exchange = setup.exchange()
    # As the MCP SDK's AccessToken has it (the real one is used in test_mcp_exchange.py).
    sdk_like = SimpleNamespace(token=caller.raw, claims={}, expires_at=caller.expires_at)
    first = await exchange.token_for(sdk_like, resource=DOWNSTREAM)
    again = await exchange.token_for(caller.raw, resource=DOWNSTREAM)
    assert first is again and exchange.calls == 1  # the same subject token: one exchange


# -- the cache ----------------------------------------------------------------------------
async def test_n_calls_make_one_exchange(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange()
    tokens = {
        (await exchange.token_for(caller, resource=DOWNSTREAM, scope="orders:read")).access_token
        for _ in range(10)
    }
    assert len(tokens) == 1 and exchange.calls == 1


async def test_another_scope_target_or_subject_is_another_exchange(setup: Setup) -> None:
    first, second = await setup.caller(), await setup.caller(jti="other")
    exchange = setup.exchange()
    await exchange.token_for(first, resource=DOWNSTREAM, scope="orders:read")
    await exchange.token_for(first, resource=DOWNSTREAM, scope="orders:write")
    await exchange.token_for(first, audience=DOWNSTREAM, scope="orders:read")
    await exchange.token_for(second, resource=DOWNSTREAM, scope="orders:read")
    assert exchange.calls == 4


async def test_the_cache_keeps_it_until_expiry_minus_the_margin(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(cache_margin=30)
    first = await exchange.token_for(caller, resource=DOWNSTREAM)
    setup.clock.now += 300 - 31  # the token lives 300 s
    assert await exchange.token_for(caller, resource=DOWNSTREAM) is first
    setup.clock.now += 1  # within the margin of its expiry: exchanged again
    renewed = await exchange.token_for(caller, resource=DOWNSTREAM)
    assert renewed is not first and exchange.calls == 2


async def test_cache_ttl_bounds_a_long_lived_token(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange(cache_ttl=10)
    await exchange.token_for(caller, resource=DOWNSTREAM)
    setup.clock.now += 10
    await exchange.token_for(caller, resource=DOWNSTREAM)
    assert exchange.calls == 2


async def test_fifty_concurrent_calls_share_one_exchange(setup: Setup) -> None:
    caller = await setup.caller()
    exchange = setup.exchange()
    tokens: list[str] = []

    async def call() -> None:
        tokens.append((await exchange.token_for(caller, resource=DOWNSTREAM)).access_token)

    async with anyio.create_task_group() as tasks:
        for _ in range(50):
            tasks.start_soon(call)
    assert len(tokens) == 50 and len(set(tokens)) == 1
    assert exchange.calls == 1 and len(setup.exchange_requests()) == 1


async def test_the_cache_is_bounded_and_keyed_by_a_hash_never_the_token(setup: Setup) -> None:
    exchange = setup.exchange(cache_size=3)
    callers = [await setup.caller(jti=f"t{n}") for n in range(5)]
    for caller in callers:
        await exchange.token_for(caller, resource=DOWNSTREAM)
    keys = list(exchange.exchanger.cache_keys())
    assert len(keys) == 3
    assert all(len(key) == 64 and all(c in "0123456789abcdef" for c in key) for key in keys)
    assert not any(caller.raw in key or key in caller.raw for caller in callers for key in keys)


async def test_the_log_names_the_tokens_digest_never_the_token(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="oauthguard")
    caller = await setup.caller()
    token = await setup.exchange().token_for(caller, resource=DOWNSTREAM)
    with pytest.raises(ExchangeRefused):
        await setup.exchange().token_for(caller, resource="https://nowhere.test/api")
    text = caplog.text
    assert "exchanged token sha256:" in text
    for secret in (caller.raw, token.access_token, *caller.raw.split(".")):
        assert secret not in text
