"""The ``oauthguard`` command's tests: issuers served by uvicorn over loopback, and the
command run against them in-process through its entry function ``main`` (a few tests, of
what only a process of its own shows, run it as one)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from support import free_port, serve

from oauthguard._cli import main
from oauthguard.testing import TestIssuer

RESOURCE = "https://api.example.com"


@dataclass
class Ran:
    """One run of the command: its exit status and what it printed."""

    code: int
    out: str
    err: str


def run_command(*args: str, stdin: str = "") -> Ran:
    """``oauthguard ARGS`` in this process: ``main`` with its own streams. An exception
    escaping ``main`` (a traceback, in a process) fails the test."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    assert "Traceback" not in err.getvalue(), err.getvalue()
    return Ran(code, out.getvalue(), err.getvalue())


def run_process(
    *args: str, stdin: str | None = None, script: bool = False, env: dict[str, str] | None = None
) -> Ran:
    """``python -m oauthguard ARGS`` as a process (``script``: the installed ``oauthguard``
    script), with ``env`` added to this process's environment."""
    program = [str(Path(sys.executable).with_name("oauthguard"))] if script else [
        sys.executable, "-m", "oauthguard"
    ]  # fmt: skip
    done = subprocess.run(
        [*program, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)


def served(profile: str | None = None) -> Iterator[TestIssuer]:
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}", profile=profile, algorithms=("RS256",))
    with serve(issuer.app, port=port):
        yield issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """A plain RFC 8414 issuer on loopback."""
    yield from served()


class SkewedDate:
    """Answers with a ``Date`` header ``skew`` seconds ahead of this machine's clock."""

    def __init__(self, app: Any, skew: float) -> None:
        self.app, self.skew = app, skew

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                date = formatdate(time.time() + self.skew, usegmt=True).encode()
                message["headers"] = [*message.get("headers", []), (b"date", date)]
            await send(message)

        await self.app(scope, receive, dated)


@pytest.fixture(scope="module")
def skewed() -> Iterator[TestIssuer]:
    """An issuer whose clock is two minutes ahead of this machine's (its tokens' iat and its
    Date header alike)."""
    port = free_port()
    ahead = 120.0
    issuer = TestIssuer(f"http://127.0.0.1:{port}", clock=lambda: time.time() + ahead)
    with serve(SkewedDate(issuer.app, ahead), port=port, date_header=False):
        yield issuer


@pytest.fixture(scope="module")
def keycloak() -> Iterator[TestIssuer]:
    """A Keycloak stand-in on loopback (realm ``test``, API client ``orders-api``)."""
    yield from served("keycloak")


@pytest.fixture(scope="module")
def entra() -> Iterator[TestIssuer]:
    """An Entra ID stand-in on loopback."""
    yield from served("entra")
