"""Test support: real servers on loopback, and the checks every refusal must pass."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from proofs import stored_rsa_keys

from oauthguard._wire.challenge import parse_challenges
from oauthguard.testing import KeyPool, TestIssuer

#: The tests' CA bundle: one certificate whose private key was thrown away, so it trusts no
#: server. The tests speak plain HTTP on loopback and never check a public certificate, and
#: loading it costs a millisecond where certifi's bundle costs ~25 ms of CPU per HTTP client.
TRUSTS_NOTHING = Path(__file__).with_name("trusts_nothing.pem")
#: Where ``trust_nothing`` keeps the SSL_CERT_FILE the run started with (also in workers).
_STARTING_SSL_CERT_FILE = "OAUTHGUARD_TESTS_STARTING_SSL_CERT_FILE"


def trust_nothing() -> None:
    """Make every HTTP client of this process and its children load ``TRUSTS_NOTHING`` as
    its CA bundle (httpx and OpenSSL read SSL_CERT_FILE) instead of a public one."""
    os.environ.setdefault(_STARTING_SSL_CERT_FILE, os.environ.get("SSL_CERT_FILE", ""))
    os.environ["SSL_CERT_FILE"] = str(TRUSTS_NOTHING)


def network_environment() -> dict[str, str]:
    """The environment for a program that reaches the internet (npm): the CA bundle the run
    started with, not ``TRUSTS_NOTHING``."""
    env = dict(os.environ)
    starting = env.pop(_STARTING_SSL_CERT_FILE, None)
    if starting is not None:
        env.pop("SSL_CERT_FILE", None)
        if starting:
            env["SSL_CERT_FILE"] = starting
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PromptServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as ``stop`` is called.

    uvicorn looks at ``should_exit`` every 0.1 s, then gives connections 0.1 s to close: 0.2 s
    of idle time for every server a test starts. This one wakes at once and waits for the
    connections only as long as some remain (at most that 0.1 s), then stops as uvicorn does:
    in-flight requests finished, the app's lifespan shut down.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def stop(self) -> None:
        """Tell the server to stop, from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # on_tick reads should_exit
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or ():
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for _ in range(20):  # uvicorn sleeps 0.1 s here, whether connections remain or not
            if not self.server_state.connections:
                break
            await asyncio.sleep(0.005)
        async with asyncio.timeout(self.config.timeout_graceful_shutdown):
            await self._wait_tasks_to_complete()
        if not self.force_exit:
            await self.lifespan.shutdown()


@contextlib.contextmanager
def serve(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a thread; yields its base URL.

    Without ``port``, the listening socket is bound here and handed to uvicorn, so no other
    process (another test run on the same machine) can take the port in between.
    """
    sockets = None
    if port is None:
        # IPPROTO_TCP, as uvicorn makes its own: asyncio turns Nagle's algorithm off only on
        # the connections of such a socket. With proto 0 a response's body waits for the
        # client's delayed ACK of its head, ~40 ms for each request after a connection's first.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sockets, port = [sock], sock.getsockname()[1]
    server = _PromptServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(10)
        for sock in sockets or ():
            sock.close()


def require_service(command: str) -> None:
    """Skip loudly when a real service's program is missing; fail instead in CI."""
    if shutil.which(command):
        return
    message = f"{command} is not installed: these tests need the real service"
    if os.environ.get("OAUTHGUARD_REQUIRE_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


def npm_installed(folder: Path, package: str) -> None:
    """Make sure ``folder``'s locked npm packages are installed (``npm ci`` once if not), so
    the README's test command works on a fresh checkout; skip loudly without node/npm."""
    require_service("node")
    if (folder / "node_modules" / package).is_dir():
        return
    require_service("npm")
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=network_environment(),
    )
    if result.returncode != 0:
        pytest.fail(f"`npm ci` in {folder} failed:\n{result.stderr[-2000:]}")


def challenge(response: httpx.Response) -> dict[str, dict[str, str]]:
    """The response's WWW-Authenticate challenges by scheme."""
    return dict(parse_challenges(response.headers["www-authenticate"]))


def assert_refused(
    response: httpx.Response, status: int, error: str | None, scheme: str = "Bearer"
) -> dict[str, str]:
    """A refusal: the status, the error in the challenge of ``scheme``, a JSON body with
    the same error, ``Cache-Control: no-store``; returns that challenge's parameters."""
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    params = challenge(response)[scheme]
    assert params.get("error") == error
    body = response.json()
    if error is not None:
        assert body["error"] == error
        assert body["error_description"] == params["error_description"]
    assert "Traceback" not in response.text
    return params


class Recording:
    """An ASGI app that records the path and ``Host`` of each HTTP request to ``app``, and
    answers 404 for the paths in ``missing``."""

    def __init__(self, app: Any, missing: tuple[str, ...] = ()) -> None:
        self.app = app
        self.missing = missing
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode()
            self.seen.append((host, scope["path"]))
            if scope["path"] in self.missing:
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"not here"})
                return
        await self.app(scope, receive, send)

    @property
    def paths(self) -> list[str]:
        return [path for _, path in self.seen]


class NameMap(httpx.AsyncBaseTransport):
    """Real HTTP to loopback for host names that do not resolve here, the way a container
    network's DNS gives ``keycloak:8080`` to another container: each request to a host in
    ``names`` (``"keycloak:8080" -> "127.0.0.1:41234"``) goes to that address, with its
    ``Host`` header unchanged."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        # no pooled connection: a TestClient runs each request in an event loop of its own
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        self.asked: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(str(request.url))
        netloc = request.url.netloc.decode()
        if netloc in self.names:
            host, _, port = self.names[netloc].partition(":")
            request.url = request.url.copy_with(host=host, port=int(port))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class StoredKeyPool(KeyPool):
    """A ``KeyPool`` whose RS256 and PS256 keys are the test-only keys of
    ``tests/keys/rsa-2048-pool.pem`` (four each, handed out in turn as ``KeyPool`` does):
    making them cost ~0.3 s of CPU in every worker. Other algorithms' keys are made."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__(size=4)
        keys = stored_rsa_keys("rsa-2048-pool")
        self._stored = {"RS256": keys[:4], "PS256": keys[4:8]}
        self._stored_turn = dict.fromkeys(self._stored, 0)

    def key(self, alg: str) -> Any:
        """The next key for ``alg``: a stored one for RS256 and PS256."""
        stored = self._stored.get(alg)
        if stored is None:
            return super().key(alg)
        turn = self._stored_turn[alg]
        self._stored_turn[alg] = turn + 1
        return stored[turn % len(stored)]


class Switchable(httpx.AsyncBaseTransport):
    """The issuer in-process, or down (connection refused) when the test says so."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.inner, self.down = issuer.transport(), False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)
