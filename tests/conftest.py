import sys

# The run caches the bytecode of the tests (rewritten by pytest for its assertions) and of
# oauthguard in their __pycache__ folders (ignored by git), even where PYTHONDONTWRITEBYTECODE
# is set: without the cache every worker of every run compiles them again, ~2.9 s of CPU
# each. The examples the tests start read the cached oauthguard too.
sys.dont_write_bytecode = False

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from introspection_server import IntrospectionServer, running_server  # noqa: E402
from support import trust_nothing  # noqa: E402

from oauthguard.testing import KeyPool, TestIssuer  # noqa: E402

# Issuer keys are made once for the run: an RSA key costs tens of milliseconds, and the
# suite builds hundreds of issuers. Tests that need keys of their own pass key_pool= or
# make keys themselves.
TestIssuer.default_key_pool = KeyPool()

# Every httpx client (the tests', the library's default one, the MCP SDK's) loads a CA bundle
# when it is made: ~25 ms of CPU for a public bundle, made ~750 times a run. Nothing here
# checks a public certificate, so the run (and the examples it starts) loads one that
# trusts nothing.
trust_nothing()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def introspection_endpoint() -> Iterator[IntrospectionServer]:
    """One RFC 7662 test server on loopback for the tests of a module."""
    with running_server() as server:
        yield server


@pytest.fixture
def server(introspection_endpoint: IntrospectionServer) -> IntrospectionServer:
    """The module's introspection server, healthy and knowing no tokens."""
    introspection_endpoint.reset()
    return introspection_endpoint
