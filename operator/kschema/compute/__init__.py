"""Bounded CPU work: parsing, compatibility checks, payload validation and admission reviews run in
worker processes (`WorkerPool`), so that no input can starve the event loop of the read API, the webhook
or the operator. `tasks` holds the functions the workers run."""

from kschema.compute.pool import WorkerPool

__all__ = ["WorkerPool"]
