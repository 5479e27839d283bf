"""``inspect``'s less common answers, run in-process (``main``) against an issuer served
over loopback: the DPoP settings, a shared-secret algorithm, an issuer that cannot be had
from the token."""

from __future__ import annotations

import json

import pytest
from conftest import RESOURCE

from oauthguard._cli import main
from oauthguard.testing import DPoPKey, TestIssuer, sign_jws

Capture = pytest.CaptureFixture[str]


def inspected(capsys: Capture, issuer: TestIssuer, token: str, *options: str) -> dict[str, dict]:
    args = ["inspect", token, "--issuer", issuer.issuer, "--resource", RESOURCE, "--json"]
    code = main([*args, *options])
    report = json.loads(capsys.readouterr().out)
    assert code == report["exit_code"]
    return {"report": report, **{check["name"]: check for check in report["checks"]}}


def test_an_unbound_token_where_dpop_is_required(capsys: Capture, issuer: TestIssuer) -> None:
    found = inspected(capsys, issuer, issuer.token(audience=RESOURCE), "--dpop", "required")
    assert found["binding"]["status"] == "fail" and "RFC 9449 §5" in found["binding"]["fix"]
    assert found["report"]["exit_code"] == 1


def test_dpop_where_it_is_disabled(capsys: Capture, issuer: TestIssuer) -> None:
    token = issuer.token(audience=RESOURCE, jkt=DPoPKey().thumbprint)
    found = inspected(capsys, issuer, token, "--dpop", "disabled", "--scheme", "DPoP")
    assert "does not take DPoP" in found["binding"]["fix"]
    assert found["report"]["exit_code"] == 1


def test_an_hmac_token_is_refused_with_the_reason(capsys: Capture, issuer: TestIssuer) -> None:
    claims = {"iss": issuer.issuer, "aud": RESOURCE, "exp": 4102444800}
    token = sign_jws({"alg": "HS256", "typ": "at+jwt"}, claims, b"k" * 32, "HS256")
    found = inspected(capsys, issuer, token)
    assert found["alg"]["status"] == "fail" and "shared secret" in found["alg"]["fix"]
    assert found["signature"]["status"] == "skip"
    assert found["report"]["verdict"].startswith("refused: the guard answers 401")


def test_the_token_issuer_must_be_a_url_to_be_used(capsys: Capture, issuer: TestIssuer) -> None:
    for iss in ({"iss": None}, {"iss": "http://attacker.example"}):
        token = issuer.token(audience=RESOURCE, claims=iss)
        assert main(["inspect", token, "--use-token-issuer"]) == 2
        assert "oauthguard inspect:" in capsys.readouterr().err


def test_a_forged_signature_is_refused(capsys: Capture, issuer: TestIssuer) -> None:
    head, body, _ = issuer.token(audience=RESOURCE).split(".")
    stranger = TestIssuer(issuer.issuer)
    forged = f"{head}.{body}.{stranger.token(audience=RESOURCE).split('.')[2]}"
    found = inspected(capsys, issuer, forged)
    assert found["signature"]["status"] == "fail"
    assert "changed or cut short" in found["signature"]["fix"]
    assert found["report"]["verdict"].endswith("the token's signature does not verify")


def test_an_id_token_of_a_plain_issuer_is_named(capsys: Capture, issuer: TestIssuer) -> None:
    claims = {"aud": "web-app", "azp": "web-app", "nonce": "n-0S6_WzA2Mj", "client_id": None}
    found = inspected(capsys, issuer, issuer.token(claims=claims))
    assert found["aud"]["status"] == "fail"
    assert "OpenID Connect ID token (it carries nonce)" in found["aud"]["fix"]
