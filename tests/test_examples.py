"""The examples run end to end, as a newcomer would run them."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_a_ctrl_c_while_the_examples_start_starts_no_further_server() -> None:
    """The first server's start-up gets the Ctrl-C: the second never starts, the ready
    message is never printed, and ``serve`` returns."""
    import asyncio
    import signal

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from _demo import free_port, serve
    finally:
        sys.path.remove(str(ROOT / "examples"))
    called: list[str] = []

    async def interrupted(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        message = await receive()
        if message["type"] == "lifespan.startup":
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, while this server starts
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def never(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["type"])

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        apps = [(interrupted, free_port()), (never, free_port())]
        asyncio.run(asyncio.wait_for(serve(apps, lambda: called.append("ready") or ""), 10))
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert called == []
