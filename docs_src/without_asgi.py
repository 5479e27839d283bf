from collections.abc import Mapping

from oauthguard import AccessToken, ResourceServer


async def who_sent(url: str, headers: Mapping[str, str]) -> AccessToken:
    """The checks of the middleware, for code that is no ASGI app (a queue consumer, ...)."""
    async with ResourceServer(
        resource="https://api.example.com/orders",
        authorization_servers="https://as.example.com",
    ) as server:
        return await server.authenticate("GET", url, headers)  # raises GuardError
