"""RFC 9449 §4.3: a proof passes only if every check does, so the guard runs the cheap ones
(claims, binding) before the signature, and records the jti (§11.1) only after it."""

from __future__ import annotations

from typing import Any

import pytest
from dpop_setup import URL, Setup
from proofs import REMOVE, ClientKey, tamper
from support import assert_refused

from oauthguard._dpop.replay import MemoryReplayStore

pytestmark = pytest.mark.anyio


class CountingStore(MemoryReplayStore):
    """The default store, counting what it is asked to record."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[str] = []

    async def first_use(self, key: str, ttl: float) -> bool:
        self.recorded.append(key)
        return await super().first_use(key, ttl)


# Proof options (for a GET of URL with the setup's token) that fail one cheap check.
CHEAP_CHECKS: dict[str, tuple[dict[str, Any], str, str]] = {
    "htm": ({"method": "POST"}, "invalid_dpop_proof", "htm does not match"),
    "htu": ({"url": URL + "/other"}, "invalid_dpop_proof", "htu does not match"),
    "iat": ({"claims": {"iat": 1}}, "invalid_dpop_proof", "too old"),
    "ath": ({"claims": {"ath": "x" * 43}}, "invalid_dpop_proof", "ath does not match"),
    "jti": ({"claims": {"jti": REMOVE}}, "invalid_dpop_proof", "needs a jti"),
}


@pytest.mark.parametrize("check", CHEAP_CHECKS)
async def test_a_failed_cheap_check_refuses_before_the_signature(check: str) -> None:
    options, error, reason = CHEAP_CHECKS[check]
    setup = Setup()
    token = setup.token()
    forged = tamper(setup.proof(token, **options))  # a bad signature as well
    params = assert_refused(await setup.call(token, forged), 401, error, scheme="DPoP")
    assert reason in params["error_description"]


async def test_a_key_the_token_is_not_bound_to_refuses_before_the_signature() -> None:
    setup = Setup()
    token = setup.token()
    forged = tamper(ClientKey().proof("GET", URL, now=setup.clock.now, token=token))
    params = assert_refused(await setup.call(token, forged), 401, "invalid_token", scheme="DPoP")
    assert params["error_description"] == "invalid DPoP key binding"


async def test_a_forged_proof_does_not_use_up_the_jti_of_the_genuine_one() -> None:
    store = CountingStore()
    setup = Setup(replay_store=store)
    token = setup.token()
    genuine = setup.proof(token)
    assert_refused(await setup.call(token, tamper(genuine)), 401, "invalid_dpop_proof", "DPoP")
    assert store.recorded == []
    assert (await setup.call(token, genuine)).status_code == 200
    assert len(store.recorded) == 1
