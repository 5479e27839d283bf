"""What oauthguard.mcp builds on: the tools a request calls, the SDK verifier."""
