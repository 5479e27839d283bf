"""The ``oauthguard`` command's tests: issuers served by uvicorn over loopback, and the
command run as a subprocess against them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import free_port, serve

from oauthguard.testing import TestIssuer

RESOURCE = "https://api.example.com"


@dataclass
class Ran:
    """One run of the command: its exit status and what it printed."""

    code: int
    out: str
    err: str


def run_command(*args: str, stdin: str | None = None, script: bool = False) -> Ran:
    """``python -m oauthguard ARGS`` (``script``: the installed ``oauthguard`` script)."""
    program = [str(Path(sys.executable).with_name("oauthguard"))] if script else [
        sys.executable, "-m", "oauthguard"
    ]  # fmt: skip
    done = subprocess.run(
        [*program, *args], input=stdin, capture_output=True, text=True, timeout=60
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


@pytest.fixture(scope="module")
def keycloak() -> Iterator[TestIssuer]:
    """A Keycloak stand-in on loopback (realm ``test``, API client ``orders-api``)."""
    yield from served("keycloak")


@pytest.fixture(scope="module")
def entra() -> Iterator[TestIssuer]:
    """An Entra ID stand-in on loopback."""
    yield from served("entra")
