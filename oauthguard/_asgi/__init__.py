"""The ASGI adapter: OAuthGuard, its request context, paths, metadata endpoint."""
