"""HTTP primitives: bounded fetches, single-flight, expiring caches, URL rules."""
