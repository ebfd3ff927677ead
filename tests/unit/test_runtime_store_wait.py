"""Start-up waits, bounded, for a store that is not reachable yet (PostgreSQL starting beside kschema),
instead of exiting at once and crash-looping; errors that waiting cannot fix stop it at once."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from kschema.runtime import serve
from kschema.store.base import InvalidInputError, RegistryStore, StoreUnavailableError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_postgres_is_retried_until_the_bound_then_refused() -> None:
    url = f"postgresql://kschema@127.0.0.1:{_closed_port()}/registry"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await serve.open_store_waiting(url, asyncio.Event(), wait_seconds=1.2)
    waited = time.monotonic() - started
    assert waited >= 0.5  # retried (0.5 s, then 1 s would pass the bound)


async def test_a_store_that_comes_up_later_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []
    opened = object()

    async def open_store(url: str) -> object:
        attempts.append(url)
        if len(attempts) < 3:
            raise StoreUnavailableError("PostgreSQL is unavailable: connection refused")
        return opened

    monkeypatch.setattr(serve, "open_store", open_store)
    store: RegistryStore = await serve.open_store_waiting("postgresql://db/registry", asyncio.Event())
    assert store is opened
    assert len(attempts) == 3


async def test_a_bad_url_is_not_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInputError):
        await serve.open_store_waiting("mysql://db/registry", asyncio.Event())
    assert time.monotonic() - started < 5  # refused at once, not after the wait


async def test_stopping_ends_the_wait() -> None:
    stop = asyncio.Event()
    url = f"postgresql://kschema@127.0.0.1:{_closed_port()}/registry"
    waiting = asyncio.create_task(serve.open_store_waiting(url, stop, wait_seconds=60))
    await asyncio.sleep(0.2)
    stop.set()
    with pytest.raises(StoreUnavailableError):
        await asyncio.wait_for(waiting, 10)
