"""``oauthguard inspect`` against issuers served over loopback (in-process, and once as the
installed script): the guard's checks one by one with their fixes, and an exit status of 0
only for a token the guard accepts."""

from __future__ import annotations

import base64
import json
import re
import time

from conftest import RESOURCE, run_command, run_process

from oauthguard.testing import DPoPKey, TestIssuer


def inspect(issuer: TestIssuer, token: str, *options: str) -> tuple[int, str]:
    ran = run_command("inspect", token, "--issuer", issuer.issuer, "--resource", RESOURCE, *options)
    return ran.code, ran.out


def line_of(out: str, check: str) -> str:
    """The line of one check and its fix line, if any."""
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if line[2:].startswith(check + " "):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            return line + ("\n" + following if following.strip().startswith("fix:") else "")
    raise AssertionError(f"no {check} line in:\n{out}")


def test_a_good_token_from_stdin_is_accepted_by_the_installed_script(issuer: TestIssuer) -> None:
    token = issuer.token(audience=RESOURCE, scope="orders:read")
    ran = run_process(
        "inspect", "--issuer", issuer.issuer, "--resource", RESOURCE,
        stdin=f"Bearer {token}\n", script=True,
    )  # fmt: skip
    assert ran.code == 0, ran.out
    assert "header (unverified)" in ran.out and "claims (unverified)" in ran.out
    for check in ("iss", "alg", "discovery", "keys", "signature", "typ", "exp/nbf", "aud"):
        assert line_of(ran.out, check).startswith("✓"), check
    assert "scopes orders:read" in line_of(ran.out, "claims")
    assert ran.out.rstrip().splitlines()[-1].startswith("accepted:")
    assert token not in ran.out  # its claims are shown, never the token itself


def test_json_has_the_documented_shape(issuer: TestIssuer) -> None:
    code, out = inspect(issuer, issuer.token(audience="https://other.example"), "--json")
    report = json.loads(out)
    assert code == report["exit_code"] == 1 and report["ok"] is False
    assert report["version"] == 1 and report["command"] == "inspect"
    assert report["subject"].startswith("token sha256:")
    assert report["header"]["alg"] == "RS256" and report["claims"]["iss"] == issuer.issuer
    checks = {check["name"]: check for check in report["checks"]}
    assert set(checks["aud"]) == {"name", "status", "detail", "fix"}
    assert checks["aud"]["status"] == "fail" and "https://other.example" in checks["aud"]["fix"]
    assert checks["signature"]["status"] == "pass"
    assert report["verdict"].startswith("refused: the guard answers 401 invalid_token")


def test_an_expired_token_says_how_long_ago(issuer: TestIssuer) -> None:
    token = issuer.token(audience=RESOURCE, now=time.time() - 7200, expires_in=300)
    code, out = inspect(issuer, token)
    assert code == 1
    line = line_of(out, "exp/nbf")
    assert line.startswith("✗") and "expired" in line and "min ago" in line


def test_a_clock_behind_the_issuers_is_named_by_both_commands(skewed: TestIssuer) -> None:
    """The issuer's tokens look issued in the future; its Date header says by how much."""
    code, out = inspect(skewed, skewed.token(audience=RESOURCE))
    assert code == 1
    line = line_of(out, "exp/nbf")
    # Date has whole seconds: the offset seen is 119 to 121 s
    assert "issued in the future" in line
    assert re.search(r"clock is 1(19|20|21) s behind the issuer's", line), line
    ran = run_command("check", skewed.issuer)
    assert ran.code == 1
    assert re.search(r"✗ clock +offset \+1(19|20|21) s", ran.out), ran.out


def test_a_dpop_bound_token_sent_as_bearer_is_refused_and_accepted_as_dpop(
    issuer: TestIssuer,
) -> None:
    key = DPoPKey()
    token = issuer.token(audience=RESOURCE, jkt=key.thumbprint)
    code, out = inspect(issuer, token)
    assert code == 1
    line = line_of(out, "binding")
    assert line.startswith("✗") and "Authorization: DPoP" in line
    code, out = inspect(issuer, token, "--scheme", "DPoP")
    assert code == 0, out
    assert key.thumbprint in line_of(out, "binding")


def test_a_token_of_another_issuer_is_refused_with_the_fix(issuer: TestIssuer) -> None:
    other = TestIssuer(issuer.issuer + "/", key_pool=issuer.key_pool)  # a trailing slash
    other.keys, other.default_kid = issuer.keys, issuer.default_kid
    code, out = inspect(issuer, other.token(audience=RESOURCE))
    assert code == 1
    assert "trailing slash" in line_of(out, "iss")
    assert line_of(out, "signature").startswith("✓")  # the named issuer's keys verify it


def test_a_token_of_an_unknown_kid_names_the_keys(issuer: TestIssuer) -> None:
    stranger = TestIssuer(issuer.issuer)
    code, out = inspect(issuer, stranger.token(audience=RESOURCE, kid="rs256-elsewhere"))
    assert code == 1 and "no key with kid 'rs256-elsewhere'" in line_of(out, "keys")


def test_without_issuer_nothing_is_accepted(issuer: TestIssuer) -> None:
    token = issuer.token(audience=RESOURCE)
    ran = run_command("inspect", token, "--resource", RESOURCE)
    assert ran.code == 1 and "accepted:" not in ran.out
    assert line_of(ran.out, "iss").startswith("-") and "--issuer" in ran.out
    ran = run_command("inspect", token, "--resource", RESOURCE, "--use-token-issuer")
    assert ran.code == 1, ran.out
    assert line_of(ran.out, "signature").startswith("✓")
    assert ran.out.rstrip().splitlines()[-1].startswith("not trusted: you did not name")
    assert "accepted" not in ran.out


def test_a_keycloak_token_with_aud_account_names_the_audience_mapper(
    keycloak: TestIssuer,
) -> None:
    token = keycloak.access_token(audience="account")
    code, out = inspect(keycloak, token, "--audience", "orders-api")
    assert code == 1
    assert "Audience mapper" in line_of(out, "aud")
    code, out = inspect(keycloak, keycloak.access_token(), "--audience", "orders-api")
    assert code == 0, out


def test_a_keycloak_id_token_is_called_one(keycloak: TestIssuer) -> None:
    code, out = inspect(keycloak, keycloak.id_token(), "--audience", "orders-api")
    assert code == 1
    assert "Keycloak ID token" in line_of(out, "issuer rules")


def test_an_entra_v1_token_names_the_manifest_setting(entra: TestIssuer) -> None:
    profile = entra.profile
    token = entra.access_token(version=1, audience=getattr(profile, "client_id", None))
    options = ("--provider", "entra", "--audience", getattr(profile, "client_id", ""))
    code, out = inspect(entra, token, *options)
    assert code == 1
    assert "accessTokenAcceptedVersion" in line_of(out, "iss")


def test_an_auth0_token_requested_without_audience_names_it() -> None:
    """Auth0 answers an encrypted token for its /userinfo when no audience was asked for."""
    issuer = "http://127.0.0.1:9/"  # never fetched: a JWE is refused from its header
    header = {"alg": "dir", "enc": "A256GCM", "iss": issuer}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    jwe = f"{head}..{'a' * 16}.{'b' * 40}.{'c' * 22}"
    ran = run_command(
        "inspect", jwe, "--issuer", issuer, "--provider", "auth0", "--resource", RESOURCE
    )
    assert ran.code == 1
    assert "encrypted" in line_of(ran.out, "format") and "audience=" in ran.out
