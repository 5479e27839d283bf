"""``oauthguard issuer``: the development issuer as a process of its own, used by a client
and by ``inspect``, stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import RESOURCE, run_command
from support import free_port

from oauthguard._cli.issuer import listening_socket


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


@pytest.mark.anyio
async def test_the_issuers_connections_send_without_waiting_for_acks() -> None:
    """Nagle's algorithm is off on the connections accepted from the issuer's socket, as
    uvicorn has it on its own: with it on, a response's body waits for the client's delayed
    ACK of its head, ~40 ms for every request after the first on a kept-alive connection."""
    nodelay: list[int] = []
    seen = asyncio.Event()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = writer.get_extra_info("socket")
        nodelay.append(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        seen.set()
        writer.close()

    sock = listening_socket("127.0.0.1", 0)
    async with await asyncio.start_server(accepted, sock=sock):
        _, writer = await asyncio.open_connection(*sock.getsockname())
        await asyncio.wait_for(seen.wait(), 10)
        writer.close()
    assert nodelay[0] != 0
