"""Token verification: JWT access tokens (RFC 9068, RFC 8725), key sets, discovery."""
