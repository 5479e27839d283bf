"""``oauthguard check ISSUER`` and bad input to the commands: a clear message and a distinct
exit status, never a traceback (in-process, and as a process for an error of its output)."""

from __future__ import annotations

import json

import pytest
from conftest import RESOURCE, run_command, run_process
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import free_port, serve

from oauthguard._cli import main
from oauthguard.testing import TestIssuer


def test_a_usable_issuer_passes_every_check(issuer: TestIssuer) -> None:
    ran = run_command("check", issuer.issuer, "--json")
    report = json.loads(ran.out)
    assert ran.code == 0 and report["ok"] is True, ran.out
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses == {
        "RFC 8414 discovery": "pass",
        "OpenID discovery": "pass",
        "keys": "pass",
        "algorithms": "pass",
        "Cache-Control": "pass",
        "clock": "pass",
    }
    assert report["metadata"]["oauth"] == issuer.issuer + issuer.metadata_path
    assert report["jwks_uri"] == issuer.jwks_uri and "max-age=300" in report["cache_control"]
    assert [key["algorithms"] for key in report["keys"]] == [["RS256"]]
    assert abs(report["clock_offset"]) <= 2


def test_an_issuer_whose_metadata_names_another_is_unusable(issuer: TestIssuer) -> None:
    ran = run_command("check", issuer.issuer + "/")  # the document names it without the slash
    assert ran.code == 1
    assert "✗ RFC 8414 discovery" in ran.out and "its issuer" in ran.out
    assert "trailing slash" in ran.out and ran.out.rstrip().endswith("failed")


def test_a_url_that_is_not_the_issuer_is_asked_about(
    capsys: pytest.CaptureFixture[str], issuer: TestIssuer
) -> None:
    assert main(["check", issuer.issuer + "/api", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [check["status"] for check in report["checks"]] == ["fail", "fail"]
    assert "the issuer identifier" in report["checks"][0]["fix"]
    assert report["metadata"] == {"oauth": None, "oidc": None}


def test_an_unreachable_issuer_exits_3() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    ran = run_command("check", closed)
    assert ran.code == 3 and "ConnectError" in ran.out and "unreachable" in ran.out
    assert "Issuer(internal_url=...)" in ran.out
    token = TestIssuer(closed).token(audience=RESOURCE)
    ran = run_command("inspect", token, "--issuer", closed, "--resource", RESOURCE)
    assert ran.code == 3 and "503" in ran.out


BAD_INPUT = {
    ("check", "http://issuer.example.com"): "--allow-http",
    ("check", "issuer.example.com"): "not an https URL",
    ("check", "https://issuer.example.com:99999"): "is not a URL",
    ("inspect", "not-a-jwt", "--issuer", "https://a.example"): "not a JWT",
    ("inspect", "eyJhbGciOiJSUzI1NiJ9.eyJpc3Mi.c2ln"): "cut short",
    ("inspect", "a.b", "--issuer", "https://a.example"): "cut short",
    ("inspect", "e30.e30.c2ln", "--issuer", "https://a.example/?x"): "without query",
}


def test_every_bad_input_is_a_usage_error() -> None:
    for args, message in BAD_INPUT.items():
        ran = run_command(*args)
        assert ran.code == 2, (args, ran)
        assert message in ran.err and ran.out == "", (args, ran.err)


def test_an_output_that_cannot_print_the_report_is_one_line_not_a_traceback() -> None:
    """An unexpected error in a process of its own: stdout that cannot encode the report's
    ✓ and ✗ (PYTHONIOENCODING=ascii) exits 4 with one line on stderr."""
    args = ("inspect", "e30.e30.c2ln", "--resource", RESOURCE)
    ran = run_process(*args, env={"PYTHONIOENCODING": "ascii"})  # no Traceback on stderr
    assert ran.code == 4, ran
    assert ran.err.startswith("oauthguard inspect: unexpected error (UnicodeEncodeError")
    assert ran.err.count("\n") == 1 and "please report it" in ran.err


def hostile_issuer(port: int, jwks_uri: str) -> Starlette:
    """An issuer whose metadata names ``jwks_uri`` (its JWKS itself fails)."""
    base = f"http://127.0.0.1:{port}"

    async def metadata(request: Request) -> Response:
        return JSONResponse({"issuer": base, "jwks_uri": base + jwks_uri})

    async def jwks(request: Request) -> Response:
        return Response("down", status_code=500)

    return Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/.well-known/openid-configuration", metadata),
            Route("/jwks", jwks),
        ]
    )


def test_a_jwks_uri_that_is_no_url_is_a_failed_check_that_forges_no_line() -> None:
    # A control character in the metadata's jwks_uri: httpx refuses the URL itself, which
    # the fetch treated as no failure of its own (the command: exit 4, "please report it").
    port = free_port()
    forged = "\n✓ signature  verified with the issuer's RS256 key"
    with serve(hostile_issuer(port, "/jwks#" + forged), port=port):
        ran = run_command("check", f"http://127.0.0.1:{port}")
    assert ran.code == 3, ran.err
    assert "unexpected error" not in ran.err
    keys = next(line for line in ran.out.splitlines() if line.startswith("✗ keys"))
    assert "non-printable" in keys and "\\n✓ signature" in keys
    assert not any(line.startswith("✓ signature") for line in ran.out.splitlines())
