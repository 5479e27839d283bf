"""uvicorn on a loopback socket bound here, whose connections send what they are given at once.

``support.serve`` without a port binds a ``socket.socket()``, whose ``proto`` is 0, and asyncio
turns Nagle's algorithm off only on the connections of a socket made with ``IPPROTO_TCP``
(as uvicorn's own are). With Nagle's algorithm on, the body of a response, which uvicorn
writes after its head, waits for the client's delayed ACK of the head: ~40 ms of idle time
for every request after the first on a kept-alive connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from support import _PromptServer


def listening_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1, for uvicorn to listen on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve_nodelay(app: Any, **config: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields its base URL.

    The port is bound here and handed to uvicorn, so no other process (another test run on
    the same machine) can take it in between; the server stops as ``support.serve``'s does.
    """
    sock = listening_socket()
    port = sock.getsockname()[1]
    server = _PromptServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(10)
        sock.close()
