"""The core without ASGI: ResourceServer and its settings."""
