"""DPoP (RFC 9449): proofs, nonces, replay stores, the htu of a request."""
