"""Opaque tokens: RFC 7662 introspection, client authentication, RFC 9701."""
