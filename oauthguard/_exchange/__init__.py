"""Token exchange for calling downstream APIs (RFC 8693, and Entra's on-behalf-of flow)."""
