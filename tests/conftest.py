from __future__ import annotations

import gc
import logging
import os
import sys

# The run caches the bytecode of the tests (rewritten by pytest for its assertions) and of
# oauthguard in their __pycache__ folders (ignored by git), even where PYTHONDONTWRITEBYTECODE
# is set: without the cache every worker of every run compiles them again, ~2.9 s of CPU
# each. The examples the tests start read the cached oauthguard too.
sys.dont_write_bytecode = False
# The processes it starts (xdist's workers, the examples) cache theirs too, from their first
# import: a worker imports pytest's plugins (xdist, anyio, pytest-timeout) before this file,
# and pytest rewrites the asserts of every module of a plugin's package, ~0.8 s of CPU in
# every process of every run unless a cached rewrite is there to read.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from collections.abc import Iterator  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import pytest  # noqa: E402

if TYPE_CHECKING:
    from introspection_server import IntrospectionServer


def pytest_configure(config: pytest.Config) -> None:
    # xdist's controller runs no test: it imports no helper and makes no key (~0.5 s of CPU).
    if runs_no_test(config):
        return
    from support import StoredKeyPool, trust_nothing

    from oauthguard.testing import TestIssuer

    # Issuer keys are made once for the run (their RSA keys are stored): an RSA key costs
    # tens of milliseconds, and the suite builds hundreds of issuers. Tests that need keys of
    # their own pass key_pool= or make keys themselves.
    TestIssuer.default_key_pool = StoredKeyPool()

    # Every httpx client (the tests', the library's default one, the MCP SDK's) loads a CA
    # bundle when it is made: ~25 ms of CPU for a public bundle, made ~750 times a run.
    # Nothing here checks a public certificate, so the run (and the examples it starts)
    # loads one that trusts nothing.
    trust_nothing()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # What the collection made (the frameworks, the MCP SDK's pydantic models, the test items)
    # lives until the end of the run: frozen, the garbage collector no longer walks it on each
    # full collection, ~0.1 s of CPU each, a dozen a run per worker and two at its end.
    gc.freeze()


@pytest.fixture(autouse=True)
def _end_the_test_loop() -> Iterator[None]:
    """After each test, end the event loop its ``apps.client`` clients shared, and give the
    root logger back the handlers and level it had: a Litestar app that starts gives it a
    queue handler at INFO, which would take every later test's records and write them onto
    pytest's closed capture at the end of the run."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    if root.handlers != handlers or root.level != level:
        root.handlers[:] = handlers
        root.setLevel(level)
    apps = sys.modules.get("apps")
    if apps is not None:
        apps.close_test_loop()


def runs_no_test(config: pytest.Config) -> bool:
    """Whether this process is the controller of xdist workers (they run the tests)."""
    if hasattr(config, "workerinput"):
        return False
    workers = config.getoption("numprocesses", default=None)
    return bool(workers) and config.getoption("dist", default="no") != "no"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def introspection_endpoint() -> Iterator[IntrospectionServer]:
    """One RFC 7662 test server on loopback for the tests of a module."""
    from introspection_server import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def server(introspection_endpoint: IntrospectionServer) -> IntrospectionServer:
    """The module's introspection server, healthy and knowing no tokens."""
    introspection_endpoint.reset()
    return introspection_endpoint
