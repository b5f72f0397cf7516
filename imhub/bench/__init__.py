"""``imhub bench``: fast user seeding, a lean WebSocket load generator and delivery
verification (docs/benchmarks.md)."""
