"""DPoP proof headers remembered per client (RFC 9449 §4.3 checks 4, 5, 7 and the RFC 7638
thumbprint computed once per header): remembering must never skip a check."""

from __future__ import annotations

from typing import Any

import pytest
from dpop_setup import URL, Setup
from proofs import REMOVE, ClientKey, tamper
from support import assert_refused

from oauthguard import OAuthGuard

pytestmark = pytest.mark.anyio


def guard_of(setup: Setup) -> OAuthGuard:
    app: Any = setup.app.middleware_stack
    while not isinstance(app, OAuthGuard):
        app = app.app
    return app


async def test_a_proof_header_is_remembered_only_after_its_signature_verified() -> None:
    setup = Setup()
    token = setup.token()
    async with setup.client() as client:
        forged = await setup.call(token, tamper(setup.proof(token)), client=client)
        assert_refused(forged, 401, "invalid_dpop_proof", scheme="DPoP")
        assert len(guard_of(setup).dpop._headers) == 0
        typed_wrong = setup.proof(token, header={"typ": "jwt"})
        assert_refused(await setup.call(token, typed_wrong, client=client), 401,
                       "invalid_dpop_proof", scheme="DPoP")
        assert len(guard_of(setup).dpop._headers) == 0
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        assert len(guard_of(setup).dpop._headers) == 1


async def test_a_remembered_proof_header_skips_no_other_check() -> None:
    setup = Setup()
    token = setup.token()
    async with setup.client() as client:
        first = setup.proof(token)
        assert (await setup.call(token, first, client=client)).status_code == 200
        other_token = setup.token(jti="another")
        refused = {
            "replayed": first,
            "forged": tamper(setup.proof(token)),
            "wrong method": setup.proof(token, method="POST"),
            "wrong url": setup.proof(token, url=URL + "/other"),
            "other token's ath": setup.proof(other_token),
            "no ath": setup.proof(token, claims={"ath": REMOVE}),
            "too old": setup.key.proof("GET", URL, now=setup.clock.now - 3600, token=token),
            "no jti": setup.proof(token, claims={"jti": REMOVE}),
        }
        for reason, proof in refused.items():
            response = await setup.call(token, proof, client=client)
            assert response.status_code == 401, reason
            assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
        # The same header with a key bound to another token is still a binding failure.
        stranger = ClientKey()
        foreign = stranger.proof("GET", URL, now=setup.clock.now, token=token)
        assert_refused(await setup.call(token, foreign, client=client), 401, "invalid_token",
                       scheme="DPoP")
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        assert len(guard_of(setup).dpop._headers) == 2  # our key's header and the stranger's


async def test_every_request_gets_the_dpop_form_of_its_verified_token() -> None:
    setup = Setup()
    token = setup.token()
    expected = {"scheme": "DPoP", "jkt": setup.key.thumbprint, "sub": "user-1"}
    async with setup.client() as client:
        for _ in range(3):
            response = await setup.call(token, setup.proof(token), client=client)
            assert response.json() == expected
        guard = guard_of(setup)
        remembered = guard.dpop._tokens.get(token, setup.clock.now)
        assert remembered is not None and remembered[1] is guard.tokens.get(token, 0)
        guard.tokens.clear()  # verified again: a new token object, so a new DPoP form
        response = await setup.call(token, setup.proof(token), client=client)
        assert response.json() == expected
        renewed = guard.dpop._tokens.get(token, setup.clock.now)
        assert renewed is not None and renewed[1] is not remembered[1]
        assert renewed[1] is guard.tokens.get(token, 0)
