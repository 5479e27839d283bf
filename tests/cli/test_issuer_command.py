"""``oauthguard issuer``: the development issuer as a process of its own, used by a client
and by ``inspect``, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
from conftest import RESOURCE, run_command
from support import free_port


def test_the_issuer_serves_tokens_to_its_client_and_stops_on_ctrl_c() -> None:
    port = free_port()
    command = [sys.executable, "-m", "oauthguard", "issuer", "--json", "--port", str(port)]
    command += ["--scope", "orders:read", "--swagger-ui", "http://127.0.0.1:8000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        facts = json.loads(process.stdout.readline())
        assert facts["issuer"] == f"http://127.0.0.1:{port}"
        assert facts["swagger_ui_client_ids"] == ["swagger-ui"]
        answer = httpx.post(
            facts["token_endpoint"],
            data={"grant_type": "client_credentials", "resource": RESOURCE, "scope": "orders:read"},
            auth=(facts["client_id"], facts["client_secret"]),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        ran = run_command("inspect", token, "--issuer", facts["issuer"], "--resource", RESOURCE)
        assert ran.code == 0, ran.out
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0 and "Traceback" not in err and "stopped" in err
