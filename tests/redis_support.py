"""A real redis-server on a free loopback port, and uvicorn processes started for a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from support import free_port, require_service

ROOT = Path(__file__).resolve().parent.parent


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def start_redis(port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of its own (no persistence) and its URL; skips without one."""
    require_service("redis-server")
    port = port or free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process, f"redis://127.0.0.1:{port}/0"


def running_redis() -> Iterator[str]:
    """``start_redis`` for a fixture: its URL, the server stopped afterwards."""
    process, url = start_redis()
    try:
        yield url
    finally:
        stop(process)


def start_uvicorn(
    factory: str, port: int, env: dict[str, str], stderr: IO[bytes] | None = None, *args: str
) -> subprocess.Popen[bytes]:
    """``uvicorn --factory tests/<factory>`` on 127.0.0.1:``port`` with ``env`` added."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--app-dir",
            str(ROOT / "tests"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-proxy-headers",
            "--log-level",
            "warning",
            *args,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        stderr=stderr,
    )
