"""Shared by the examples: run an app and a TestIssuer on loopback and print how to call it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from oauthguard.testing import TestIssuer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    """A uvicorn server that leaves Ctrl-C to ``serve``: each server's own handler would stop
    the servers one after another (~0.2 s each); ``serve`` stops them all at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(apps: list[tuple[Any, int]], ready: Callable[[], str]) -> None:
    """Serve every ``(app, port)`` on 127.0.0.1 until Ctrl-C (or SIGTERM), each started once
    the one before is up (the issuer first: a guard fetches its keys at startup); then print
    ``ready()``."""
    servers: list[_Server] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True  # no server starts after it
        for server in servers:  # a second Ctrl-C stops without waiting for connections
            server.force_exit = server.should_exit
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    tasks = []
    for app, port in apps:
        if stopping:
            break
        servers.append(
            _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        )
        tasks.append(asyncio.create_task(servers[-1].serve()))
        while not servers[-1].started:
            if tasks[-1].done():
                raise SystemExit(f"could not serve on port {port} (is it taken?)")
            await asyncio.sleep(0.01)
    if not stopping:
        print(ready(), flush=True)
    await asyncio.gather(*tasks)


def curl_lines(
    issuer: TestIssuer, url: str, audience: str, scopes: list[str], method: str = "GET"
) -> str:
    """``curl`` commands with a fresh token for each scope set."""
    lines = [f"  curl -i -X {method} {url}   # no token: 401 and the challenge"]
    for scope in scopes:
        token = issuer.token(audience=audience, scope=scope, subject="alice")
        lines.append(f"  # scope {scope!r}:")
        lines.append(f"  curl -i -X {method} {url} -H 'Authorization: Bearer {token}'")
    return "\n".join(lines)


def run_demo(
    build: Callable[[str, str], Any],
    path: str,
    scopes: list[str],
    prepare: Callable[[TestIssuer, int], str] | None = None,
) -> None:
    """Serve a TestIssuer and ``build(resource, issuer)`` on free loopback ports until
    Ctrl-C, and print curl commands for each scope set. ``prepare(issuer, port)`` may set
    the issuer up further and returns extra lines to print."""
    port, issuer_port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}")
    resource = f"http://127.0.0.1:{port}{path}"
    extra = prepare(issuer, port) if prepare is not None else ""

    def ready() -> str:
        return (
            f"Authorization server (TestIssuer): {issuer.issuer}\n"
            f"Protected API:                    {resource}\n{extra}\n"
            f"{curl_lines(issuer, resource, resource, scopes)}\nReady."
        )

    try:
        asyncio.run(
            serve([(issuer.app, issuer_port), (build(resource, issuer.issuer), port)], ready)
        )
    except KeyboardInterrupt:
        pass
