"""`Accept` negotiation as Confluent's REST layer does it: Schema Registry's media types, plain JSON and
wildcards are served (always as `application/vnd.schemaregistry.v1+json`); a request that accepts none of
them gets 406 in Confluent's error shape. Health and metrics endpoints are left alone (Prometheus asks
for text formats)."""

from __future__ import annotations

import functools

from aiohttp import web

__all__ = ["NOT_NEGOTIATED", "acceptable", "admits", "refuses"]

SERVED = frozenset(
    {
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/*",
        "*/*",
    }
)
NOT_NEGOTIATED = frozenset({"/metrics", "/healthz", "/readyz"})


def acceptable(header: str) -> bool:
    """Whether an `Accept` header admits a type the API answers with (a `q=0` entry refuses it)."""
    for entry in header.split(","):
        media, *parameters = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and media.lower() in SERVED:
            return True
    return False


# Clients send the same few `Accept` values on every request. The cache is bounded, so headers an
# attacker varies cost the parse, never memory.
@functools.lru_cache(maxsize=64)
def admits(header: str | None) -> bool:
    """Whether a request sending this `Accept` header may be answered (a blank or missing one may)."""
    return not header or not header.strip() or acceptable(header)


def refuses(request: web.Request) -> bool:
    """Whether the request's `Accept` header admits none of the types the API answers with."""
    return not admits(request.headers.get("Accept")) and request.path not in NOT_NEGOTIATED
