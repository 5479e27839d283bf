"""What the adapters share: the ``ResourceServer`` they were given, or one built of the
settings they were given instead."""

from __future__ import annotations

from typing import Any

from oauthguard._core.server import ResourceServer
from oauthguard._wire.errors import ConfigurationError


def given_or_built(what: str, server: object, **settings: Any) -> ResourceServer:
    """``server`` when one is given, else a ``ResourceServer`` of ``settings`` (``None``:
    not given); ``ConfigurationError`` for both, or for neither."""
    given = sorted(name for name, value in settings.items() if value is not None)
    if server is None:
        if settings.get("resource") is None or settings.get("authorization_servers") is None:
            raise ConfigurationError(
                f"{what} needs server=ResourceServer(...), or resource= and "
                "authorization_servers= to build one"
            )
        return ResourceServer(**{name: settings[name] for name in given})
    if not isinstance(server, ResourceServer):
        raise ConfigurationError(
            f"server must be an oauthguard.ResourceServer, got {type(server).__name__}"
        )
    if given:
        raise ConfigurationError(
            f"give either server= or {'/'.join(name + '=' for name in given)}, not both: "
            "they are settings of the ResourceServer"
        )
    return server
