"""A ConfigurationError names the argument, the reason and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from oauthguard import ConfigurationError, ResourceServer, require

ISSUER = "https://as.example.com"
RESOURCE = "https://api.example.com/orders"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: require(audience=1), r"require\(audience=\.\.\.\) .* like 'https://"),
        (lambda: require(max_age=-1), r"require\(max_age=\.\.\.\) .* like 300\), got -1"),
        (
            lambda: ResourceServer(resource=RESOURCE, authorization_servers=[ISSUER, ISSUER]),
            r"authorization_servers: an issuer is given twice; list each issuer once",
        ),
        (
            lambda: ResourceServer(resource=RESOURCE, authorization_servers=ISSUER, user_factory=1),
            r"ResourceServer\(user_factory=\.\.\.\) must be a callable",
        ),
    ],
)
def test_the_message_names_argument_reason_and_fix(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()
