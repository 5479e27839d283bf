from collections.abc import Iterator

import pytest
from introspection_server import IntrospectionServer, running_server
from support import trust_nothing

from oauthguard.testing import KeyPool, TestIssuer

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
