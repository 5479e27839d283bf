"""DPoP state: replay protection (RFC 9449 §11.1), server nonces (§8, §9), and the htu of
requests behind trusted proxies."""

from __future__ import annotations

import math
import random

import pytest
from dpop_setup import Clock, Setup
from proofs import b64
from support import assert_refused

from oauthguard import DPoPNonces, ReplayStore, TemporarilyUnavailable
from oauthguard._dpop.replay import MemoryReplayStore
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.anyio
SECRET = "a shared secret of thirty-two bytes"


async def test_a_replayed_proof_is_refused_on_the_same_worker() -> None:
    setup = Setup()
    token = setup.token()
    proof = setup.proof(token)
    assert (await setup.call(token, proof)).status_code == 200
    params = assert_refused(
        await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "already used" in params["error_description"]
    assert (await setup.call(token, setup.proof(token))).status_code == 200


async def test_a_proof_is_recorded_only_after_every_other_check_passed() -> None:
    setup = Setup()
    token = setup.token()
    proof = setup.proof(token)  # for GET
    assert_refused(
        await setup.call(token, proof, method="POST"), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    other = setup.token()  # same key, another token: the ath check fails
    assert_refused(await setup.call(other, proof), 401, "invalid_dpop_proof", scheme="DPoP")
    assert (await setup.call(token, proof)).status_code == 200
    assert_refused(await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP")


async def test_a_proof_stays_recorded_for_its_whole_acceptance_window() -> None:
    setup = Setup()
    token = setup.issuer.token(
        audience="https://api.test/mcp",
        alg="ES256",
        now=setup.clock.now,
        expires_in=3600,
        jkt=setup.key.thumbprint,
    )
    proof = setup.proof(token, claims={"iat": setup.clock.now + 30})  # from a clock ahead
    assert (await setup.call(token, proof)).status_code == 200
    setup.clock.now += 89  # iat + max_age - 1: still acceptable, so still remembered
    assert_refused(await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP")
    setup.clock.now += 2
    params = assert_refused(
        await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "too old" in params["error_description"]


async def test_the_memory_store_refuses_rather_than_evicts_when_full() -> None:
    clock = Clock()
    store = MemoryReplayStore(max_entries=2, clock=clock)
    assert isinstance(store, ReplayStore)
    assert await store.first_use("a", 10) and await store.first_use("b", 20)
    with pytest.raises(TemporarilyUnavailable, match="too many DPoP proofs") as refused:
        await store.first_use("c", 10)
    assert refused.value.retry_after == 10
    assert not await store.first_use("a", 10)  # still remembered: nothing was evicted
    clock.now += 10
    assert await store.first_use("c", 10)  # "a" expired and made room
    with pytest.raises(TemporarilyUnavailable, match="too many DPoP proofs"):
        await store.first_use("a", 5)  # "b" and "c" live until +20
    clock.now += 10
    assert await store.first_use("a", 5)
    assert len(store) == 1  # "b" and "c" expired together and were swept
    assert not await store.first_use("a", 5)


async def test_the_memory_store_answers_as_one_that_forgets_nothing_live() -> None:
    # Seeded random traffic: keys, ttls and clock steps of every size, checked against a
    # reference that keeps every key until its ttl runs out.
    rng, clock = random.Random(9449), Clock()
    store, reference = MemoryReplayStore(clock=clock), {}
    for _ in range(20_000):
        clock.now += rng.choice((0, 0, 0.5, 1, 3, 30, 200))
        key, ttl = f"k{rng.randrange(300)}", rng.choice((1, 5, 61, 91, 120))
        expected = reference.get(key, -math.inf) <= clock.now
        if expected:
            reference[key] = clock.now + ttl
        assert await store.first_use(key, ttl) is expected


async def test_the_memory_store_holds_only_recent_proofs() -> None:
    # Memory follows the rate: keys older than two generations (two of the longest ttl)
    # are dropped without any sweep of the whole store.
    clock = Clock()
    store = MemoryReplayStore(clock=clock)
    for second in range(1000):
        clock.now += 1
        for n in range(10):
            assert await store.first_use(f"{second}-{n}", 91)
        assert len(store) <= 10 * (2 * 91 + 1)


async def test_a_full_replay_store_gives_503_with_retry_after() -> None:
    clock = Clock()
    setup = Setup(clock=clock, replay_store=MemoryReplayStore(max_entries=1, clock=clock))
    token = setup.token()
    assert (await setup.call(token, setup.proof(token))).status_code == 200
    response = await setup.call(token, setup.proof(token))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"
    assert "www-authenticate" not in response.headers


def nonce_setup(**options: object) -> Setup:
    return Setup(dpop_nonce=DPoPNonces(secret=SECRET, lifetime=300), **options)


async def test_a_proof_without_nonce_gets_use_dpop_nonce_with_one_fresh_nonce() -> None:
    setup = nonce_setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token))
    params = assert_refused(response, 401, "use_dpop_nonce", scheme="DPoP")
    assert "missing" in params["error_description"]
    assert len(response.headers.get_list("dpop-nonce")) == 1
    assert "DPoP-Nonce" in response.headers["access-control-expose-headers"]
    nonce = response.headers["dpop-nonce"]
    ok = await setup.call(token, setup.proof(token, nonce=nonce))
    assert ok.status_code == 200, ok.text
    assert "dpop-nonce" not in ok.headers  # the nonce is current: nothing to refresh
    assert ok.headers["cache-control"] == "public, max-age=60"


async def test_a_nonce_nearing_expiry_is_refreshed_on_success_then_goes_stale() -> None:
    setup = nonce_setup()
    token = setup.issuer.token(
        audience="https://api.test/mcp",
        alg="ES256",
        now=setup.clock.now,
        expires_in=3600,
        jkt=setup.key.thumbprint,
    )
    nonce = DPoPNonces(secret=SECRET, lifetime=300).issue(setup.clock.now)
    setup.clock.now += 300  # the next window: the nonce still works, but nears its end
    ok = await setup.call(token, setup.proof(token, nonce=nonce))
    assert ok.status_code == 200, ok.text
    assert len(ok.headers.get_list("dpop-nonce")) == 1
    fresh = ok.headers["dpop-nonce"]
    assert fresh != nonce
    assert ok.headers.get_list("cache-control") == ["no-store"]
    assert "DPoP-Nonce" in ok.headers["access-control-expose-headers"]
    setup.clock.now += 300
    stale = await setup.call(token, setup.proof(token, nonce=nonce))
    params = assert_refused(stale, 401, "use_dpop_nonce", scheme="DPoP")
    assert "stale or invalid" in params["error_description"]
    assert stale.headers["dpop-nonce"] not in (nonce, fresh)
    assert (await setup.call(token, setup.proof(token, nonce=fresh))).status_code == 200


@pytest.mark.parametrize(
    "forged",
    [
        "x" * 32,
        b64(b"\0" * 24),
        DPoPNonces(secret="another secret, same length!!", lifetime=300).issue(1_800_000_000.0),
        12345,
        "",
    ],
)
async def test_a_forged_nonce_gets_use_dpop_nonce(forged: object) -> None:
    setup = nonce_setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token, claims={"nonce": forged}))
    assert_refused(response, 401, "use_dpop_nonce", scheme="DPoP")
    assert len(response.headers.get_list("dpop-nonce")) == 1


async def test_workers_sharing_the_secret_accept_each_others_nonces() -> None:
    issuer, clock = TestIssuer(algorithms=("ES256",)), Clock()
    first = nonce_setup(issuer=issuer, clock=clock)
    second = nonce_setup(issuer=issuer, clock=clock)
    second.key = first.key
    token = first.token()
    nonce = (await first.call(token, first.proof(token))).headers["dpop-nonce"]
    assert (await second.call(token, second.proof(token, nonce=nonce))).status_code == 200


async def test_nonces_need_a_real_secret() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        DPoPNonces(secret="short")
    with pytest.raises(ValueError, match="lifetime"):
        DPoPNonces(secret=SECRET, lifetime=0)


PROXIED = "http://10.0.0.5:8000"


async def test_forwarded_headers_from_a_trusted_proxy_make_the_htu() -> None:
    setup = Setup(trusted_proxies=["10.0.0.0/8"])
    token = setup.token()
    proof = setup.proof(token)  # for https://api.test/mcp
    async with setup.client(PROXIED, peer=("10.1.2.3", 4000)) as client:
        response = await setup.call(
            token,
            proof,
            client=client,
            headers=[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.test")],
        )
        assert response.status_code == 200, response.text
        response = await setup.call(
            token,
            setup.proof(token),
            client=client,
            headers=[("forwarded", 'for=198.51.100.7;proto=https;host="api.test"')],
        )
        assert response.status_code == 200, response.text
        without = await setup.call(token, setup.proof(token), client=client)
        assert_refused(without, 401, "invalid_dpop_proof", scheme="DPoP")


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    setup = Setup(trusted_proxies=["10.0.0.0/8"])
    token = setup.token()
    async with setup.client(PROXIED, peer=("192.0.2.9", 4000)) as client:
        for headers in (
            [("x-forwarded-proto", "https"), ("x-forwarded-host", "api.test")],
            [("forwarded", "proto=https;host=api.test")],
        ):
            response = await setup.call(token, setup.proof(token), client=client, headers=headers)
            params = assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
            assert "htu does not match" in params["error_description"]
        # Its own URI is what the proof must name.
        own = setup.proof(token, url="http://10.0.0.5:8000/mcp")
        assert (await setup.call(token, own, client=client)).status_code == 200


async def test_forwarded_elements_added_before_the_trusted_proxies_are_ignored() -> None:
    setup = Setup(trusted_proxies=["10.0.0.0/8"])
    token = setup.token()
    spoofed = (
        "for=203.0.113.1;proto=https;host=evil.test, for=198.51.100.7;proto=https;host=api.test"
    )
    async with setup.client(PROXIED, peer=("10.1.2.3", 4000)) as client:
        response = await setup.call(
            token, setup.proof(token), client=client, headers=[("forwarded", spoofed)]
        )
        assert response.status_code == 200, response.text
        evil = setup.proof(token, url="https://evil.test/mcp")
        response = await setup.call(token, evil, client=client, headers=[("forwarded", spoofed)])
        assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
        # A chain of trusted proxies: the element the first of them added is used.
        chain = "for=198.51.100.7;proto=https;host=api.test, for=10.9.9.9;proto=http;host=lb"
        response = await setup.call(
            token, setup.proof(token), client=client, headers=[("forwarded", chain)]
        )
        assert response.status_code == 200, response.text


async def test_replay_is_keyed_by_jti_with_method_and_uri() -> None:
    setup = Setup()
    token = setup.token()
    same_jti = {"jti": "the-same-jti"}
    get = setup.proof(token, claims=same_jti)
    post = setup.proof(token, method="POST", claims=same_jti)
    other_path = setup.proof(token, url="https://api.test/a/b", claims=same_jti)
    assert (await setup.call(token, get)).status_code == 200
    assert (await setup.call(token, post, method="POST")).status_code == 200
    assert (await setup.call(token, other_path, path="/a/b")).status_code == 200
    setup.clock.now += 1  # a new proof (other iat, other signature) reusing the jti
    again = setup.proof(token, claims=same_jti)
    params = assert_refused(
        await setup.call(token, again), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "already used" in params["error_description"]
