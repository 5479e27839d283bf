"""The examples run end to end, as a newcomer would run them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Run as the demo extra installs it: without python-multipart, which the test extra pulls in
# through the MCP SDK but the demo's own dependencies do not.
WITHOUT_MULTIPART = """
import runpy, sys
sys.modules["multipart"] = sys.modules["python_multipart"] = None
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def run_example(name: str) -> str:
    # This checkout's oauthguard, whatever else the interpreter has installed.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MULTIPART, str(ROOT / "examples" / name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_quickstart_shows_challenge_discovery_success_and_refusals() -> None:
    out = run_example("quickstart.py")
    assert '-> 401\n  WWW-Authenticate: Bearer resource_metadata="http://127.0.0.1:' in out
    assert "/.well-known/oauth-protected-resource/api -> 200" in out
    assert "/.well-known/oauth-authorization-server -> 200" in out
    assert "/token -> 200\n  access_token: " in out
    assert out.count('/api -> 200\n  {\n    "subject": ') == 2  # Bearer, then DPoP
    assert "token_type: DPoP" in out
    assert 'DPoP error="invalid_dpop_proof", error_description="the DPoP proof was already' in out
    assert "the access token is DPoP-bound; send it with the DPoP scheme" in out
    assert 'error_description="the token has expired"' in out
    assert 'error_description="the token is not meant for this resource (aud)"' in out
    assert 'error_description="the token\'s signature does not verify"' in out
    assert 'error="insufficient_user_authentication"' in out
    assert 'acr_values="urn:example:mfa", max_age="300"' in out
    assert "/api/transfer -> 200" in out
    assert 'error="insufficient_scope"' in out and 'scope="payments:write"' in out
