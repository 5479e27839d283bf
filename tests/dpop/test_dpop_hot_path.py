"""DPoP proof headers remembered per client (RFC 9449 §4.3 checks 4, 5, 7 and the RFC 7638
thumbprint computed once per header): remembering must never skip a check."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from dpop_setup import RESOURCE, URL, Setup
from proofs import REMOVE, ClientKey, b64, tamper
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
        assert len(guard_of(setup).server.dpop_checker._headers) == 0
        typed_wrong = setup.proof(token, header={"typ": "jwt"})
        assert_refused(
            await setup.call(token, typed_wrong, client=client),
            401,
            "invalid_dpop_proof",
            scheme="DPoP",
        )
        assert len(guard_of(setup).server.dpop_checker._headers) == 0
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        assert len(guard_of(setup).server.dpop_checker._headers) == 1


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
        # A header remembered for the token bound to its key is still a binding failure with
        # a token bound to another key.
        stranger = ClientKey()
        own_token = setup.issuer.token(
            audience=RESOURCE, alg="ES256", now=setup.clock.now, jkt=stranger.thumbprint
        )
        own = stranger.proof("GET", URL, now=setup.clock.now, token=own_token)
        assert (await setup.call(own_token, own, client=client)).status_code == 200
        assert (
            len(guard_of(setup).server.dpop_checker._headers) == 2
        )  # our key's header and the stranger's
        foreign = stranger.proof("GET", URL, now=setup.clock.now, token=token)
        assert_refused(
            await setup.call(token, foreign, client=client), 401, "invalid_token", scheme="DPoP"
        )
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200


async def test_every_request_gets_the_dpop_form_of_its_verified_token() -> None:
    setup = Setup()
    token = setup.token()
    expected = {"scheme": "DPoP", "jkt": setup.key.thumbprint, "sub": "user-1"}
    async with setup.client() as client:
        for _ in range(3):
            response = await setup.call(token, setup.proof(token), client=client)
            assert response.json() == expected
        # One cache entry per token: the token in its DPoP form, its user and its ath hash.
        tokens = guard_of(setup).server.tokens
        remembered = tokens.get(token, setup.clock.now)
        assert remembered is not None and remembered.token.scheme == "DPoP"
        assert remembered.user.token is remembered.token and remembered.ath is not None
        tokens.clear()  # verified again: a new entry, with a new DPoP form and user
        response = await setup.call(token, setup.proof(token), client=client)
        assert response.json() == expected
        renewed = tokens.get(token, setup.clock.now)
        assert renewed is not None and renewed is not remembered
        assert renewed.token is not remembered.token and renewed.token.scheme == "DPoP"


def with_signature(proof: str, signature: bytes) -> str:
    head, body, _ = proof.split(".")
    return f"{head}.{body}.{b64(signature)}"


async def test_ecdsa_proof_signatures_of_any_other_shape_are_refused() -> None:
    setup = Setup()
    token = setup.token()
    async with setup.client() as client:
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        good = setup.proof(token)
        raw = base64.urlsafe_b64decode(good.split(".")[2] + "==")
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        shapes = {
            "DER instead of R || S": encode_dss_signature(r, s),
            "one byte short": raw[:-1],
            "one byte long": raw + b"\0",
            "R and S swapped": raw[32:] + raw[:32],
            "all zero": bytes(64),
            "empty": b"",
        }
        for reason, signature in shapes.items():
            response = await setup.call(token, with_signature(good, signature), client=client)
            assert response.status_code == 401, reason
            assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
            assert "signature" in response.json()["error_description"], reason
        assert (await setup.call(token, good, client=client)).status_code == 200


@pytest.mark.parametrize("alg", ["ES384", "EdDSA", "PS256"])
async def test_other_proof_algorithms_verify_and_refuse_a_bad_signature(alg: str) -> None:
    setup = Setup(dpop_algorithms=(alg,))
    setup.key = ClientKey(alg)
    token = setup.token()
    async with setup.client() as client:
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        forged = await setup.call(token, tamper(setup.proof(token)), client=client)
        assert_refused(forged, 401, "invalid_dpop_proof", scheme="DPoP")
