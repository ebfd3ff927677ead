"""Composes the operator, the webhook and the read API into processes: `kschema run` (all in one,
SQLite) and `kschema operator|webhook|api` (apart, PostgreSQL)."""
