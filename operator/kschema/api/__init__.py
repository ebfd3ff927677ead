"""The read API: Confluent Schema Registry REST endpoints served from an in-memory index."""

from kschema.api.app import create_app
from kschema.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
