"""JOSE primitives: strict base64url (RFC 4648 §5) and signatures per algorithm."""
