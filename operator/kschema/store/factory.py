"""Opens the store named by a URL: `sqlite:///relative.db`, `sqlite:////absolute/path.db` (SQLAlchemy's
convention: the path is everything after `sqlite:///`) or `postgresql://user@host:port/db` (any libpq-style
URL asyncpg accepts, `postgres://` too)."""

from __future__ import annotations

from urllib.parse import urlsplit

from kschema.store.base import InvalidInputError, RegistryStore
from kschema.store.postgres import PostgresStore
from kschema.store.sqlite import SqliteStore

SQLITE_PREFIX = "sqlite:///"


def store_from_url(url: str) -> RegistryStore:
    """The store for `url`, not yet opened."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
            raise InvalidInputError(
                "a SQLite store URL is sqlite:///relative/path.db or sqlite:////absolute/path.db, "
                f"got {url!r}",
                "url",
            )
        path = url[len(SQLITE_PREFIX) :]
        if "?" in path:
            raise InvalidInputError(f"a SQLite store URL takes no query options, got {url!r}", "url")
        return SqliteStore(path)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise InvalidInputError(
        f"unsupported store URL scheme {scheme!r} in {url!r}: use sqlite:/// or postgresql://", "url"
    )


async def open_store(url: str) -> RegistryStore:
    """Opens the store for `url` and applies pending migrations; the caller closes it."""
    store = store_from_url(url)
    await store.open()
    return store
