"""The command's parts that need no process of their own: reading the token, URLs, the
provider a URL is of, the fixes, the clock offset and the two output formats."""

from __future__ import annotations

import io
import json
import logging
import time
from email.utils import formatdate

import pytest

from oauthguard._cli import main
from oauthguard._cli.common import Answer, Exchanges, checked_url, kept_logs, read_token
from oauthguard._cli.hints import ago, id_token_fix, issuer_fix, time_fix
from oauthguard._cli.presets import detected, issuer_setting
from oauthguard._cli.report import Report, UsageError, render_json, render_text
from oauthguard._jose.b64 import b64url_encode


def test_a_pasted_authorization_value_is_read_as_its_token() -> None:
    assert read_token("DPoP a.b.c", io.StringIO()) == "a.b.c"
    assert read_token("-", io.StringIO("  Bearer a.b.c\n")) == "a.b.c"
    for bad in ("", "a.b c.d", "a.b.\u00e9"):
        with pytest.raises(UsageError):
            read_token(bad, io.StringIO())


def test_urls_are_https_or_loopback_unless_opted_in() -> None:
    assert checked_url("--issuer", "http://127.0.0.1:8080/realms/x", False)
    assert checked_url("--issuer", "http://keycloak:8080", True)
    for bad in ("http://keycloak:8080", "ftp://a.example", "https://a.example/?q", "https://"):
        with pytest.raises(UsageError):
            checked_url("--issuer", bad, False)


def test_the_provider_is_told_by_the_issuer_url() -> None:
    assert detected("https://example.us.auth0.com/") == "auth0"
    assert detected("https://login.microsoftonline.com/t/v2.0") == "entra"
    assert detected("https://sts.windows.net/t/") == "entra"
    assert detected("https://example.okta.com/oauth2/default") == "okta"
    assert detected("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab1") == "cognito"
    assert detected("https://kc.example.com/realms/demo") == "keycloak"
    assert detected("https://as.example.com") == "none"
    (keycloak,) = issuer_setting(
        "https://kc.example.com/realms/demo", "auto", audience="api", clients=(), allow_http=False
    )
    assert keycloak.audiences == ("api",) and keycloak.explain is not None
    with pytest.raises(UsageError, match="--audience"):  # Entra's preset needs the client ID
        issuer_setting(
            "https://login.microsoftonline.com/t/v2.0", "auto", audience=None, clients=(),
            allow_http=False,
        )  # fmt: skip
    with pytest.raises(UsageError, match="--provider none"):
        issuer_setting("https://a.example/x", "okta", audience=None, clients=(), allow_http=False)


def test_the_fixes_name_the_usual_mistakes() -> None:
    assert "ID token" in str(id_token_fix({"nonce": "n", "aud": "web"}))
    assert id_token_fix({"aud": "api", "azp": "web"}) is None
    assert "trailing slash" in issuer_fix("https://a.example/", ("https://a.example",))
    now = time.time()
    assert "clock is 120 s behind" in time_fix({"exp": now - 60}, 30, 120)
    assert "clock is 90 s ahead of" in time_fix({"nbf": now + 60, "exp": now + 600}, 30, -90)
    assert "expired 2 h ago" in time_fix({"exp": now - 7200}, 30, 0)
    assert "NumericDates" in time_fix({"exp": "soon"}, 30, None, "the exp claim is not a number")
    assert (ago(42), ago(300), ago(3 * 86400)) == ("42 s", "5 min", "3 days")


def test_the_clock_offset_comes_from_the_last_date_header() -> None:
    exchanges = Exchanges()
    now = time.time()
    exchanges.answers.append(Answer("u", 200, formatdate(now + 75, usegmt=True), None, now))
    exchanges.answers.append(Answer("v", 200, "not a date", None, now))
    offset = exchanges.clock_offset()
    assert offset is not None and 74 <= offset <= 75
    assert Exchanges().clock_offset() is None


def test_text_escapes_what_a_token_could_forge_and_json_is_stable() -> None:
    report = Report("inspect", "token", sections={"claims": {"sub": "\x1b[2Jx"}})
    report.add("aud", "fail", "for \x1b]0;title\x07", "fix it")
    report.verdict = "refused"
    text = io.StringIO()
    render_text(report, text)
    assert "\x1b" not in text.getvalue() and "\\x1b" in text.getvalue()
    assert "✗ aud  for" in text.getvalue() and "fix: fix it" in text.getvalue()
    out = io.StringIO()
    render_json(report, out)
    shape = json.loads(out.getvalue())
    assert list(shape) == [
        "version", "command", "subject", "ok", "exit_code", "verdict", "claims", "checks"
    ]  # fmt: skip
    assert shape["checks"][0]["status"] == "fail"


def test_the_verdict_and_the_echoed_logs_escape_what_a_token_could_forge() -> None:
    # The verdict quotes the guard's refusal, -v the library's log lines: both may hold
    # what a token or an issuer's answer carries.
    report = Report("inspect", "token", verdict="refused: \x1b]0;title\x07\x9b2J")
    text = io.StringIO()
    render_text(report, text)
    assert text.getvalue() == "\nrefused: \\x1b]0;title\\x07\\x9b2J\n"
    echoed = io.StringIO()
    with kept_logs(echoed) as logs:
        logging.getLogger("oauthguard").warning("refused: %s", "\x1b[2J\nforged")
    assert echoed.getvalue() == "warning: refused: \\x1b[2J\\nforged\n"
    assert logs.lines == ["refused: \x1b[2J\nforged"]  # kept as logged, for the checks


def test_json_holds_no_lone_surrogate_a_token_can_carry() -> None:
    # RFC 8259 §8.2 leaves a lone surrogate's reading to each parser (strict ones refuse
    # the document, RFC 7493 §2.1 forbids it): it is shown as the text output shows it.
    report = Report("inspect", "token", sections={"claims": {"sub": "\ud800x", "n": "\udfff"}})
    report.sections["header"] = {"kid": "\U0001f600", "x5u": "\\ud800", "alg": "caf\u00e9"}
    out = io.StringIO()
    render_json(report, out)
    shape = json.loads(out.getvalue())
    assert out.getvalue().isascii()
    assert shape["claims"] == {"sub": "\\ud800x", "n": "\\udfff"}
    assert shape["header"] == {"kid": "\U0001f600", "x5u": "\\ud800", "alg": "caf\u00e9"}


@pytest.mark.parametrize("output", [[], ["--json"]])
def test_deeply_nested_claims_print_in_size_linear_in_the_token(output: list[str]) -> None:
    # Indented, each level of nesting repeats on every line below it: 900 levels in 2 KB
    # of token made 1.6 MB of output (a megabyte of such token, gigabytes of memory).
    nested = "[" * 900 + "]" * 900
    claims = json.dumps({"iss": "https://as.example.com"})[:-1] + f', "deep": {nested}}}'
    token = ".".join(
        b64url_encode(part.encode()) for part in ('{"alg":"RS256"}', claims, "signature")
    )
    out = io.StringIO()
    assert main(["inspect", token, *output], stdin=io.StringIO(), stdout=out) == 1
    assert len(out.getvalue()) < 10 * len(token) + 5_000  # the checks' lines, the verdict
    assert nested in out.getvalue().replace(", ", ",").replace("\n", "").replace(" ", "")
    if output:
        assert json.loads(out.getvalue())["claims"]["iss"] == "https://as.example.com"


def test_shallow_sections_stay_indented() -> None:
    report = Report("inspect", "token", sections={"claims": {"realm_access": {"roles": ["a"]}}})
    text = io.StringIO()
    render_text(report, text)
    assert '      "roles": [\n        "a"\n' in text.getvalue()


@pytest.mark.parametrize("given", ["argument", "stdin"])
def test_bytes_that_are_not_utf8_are_a_usage_error(given: str) -> None:
    # Python reads such bytes (in argv, or on stdin in the C locale) as lone surrogates
    # (PEP 383): the message's fingerprint of them must not fail in its turn.
    token = "\udcff\udcfe.e30.c2ln"
    err = io.StringIO()
    argv = ["inspect", token] if given == "argument" else ["inspect", "-"]
    assert main(argv, stdin=io.StringIO(token), stdout=io.StringIO(), stderr=err) == 2
    assert "outside ASCII: not one token (fingerprint " in err.getvalue()


def test_usage_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "http://as.example.com"]) == 2
    assert "--allow-http" in capsys.readouterr().err
    assert main(["inspect", "--scheme", "MAC"]) == 2  # argparse's own errors
    assert "invalid choice: 'MAC'" in capsys.readouterr().err
    assert main(["issuer", "--host", "0.0.0.0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
