"""Wire formats: the GuardError tree and its challenges (RFC 6750, 9449, 9470), AccessToken,
the credentials of a request, and what logs may say of a token."""
