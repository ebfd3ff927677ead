"""Comparisons of parts of two schemas that depend on those parts' contents alone, kept across checks by
a caller that compares the same contents again and again: the admission webhook's workers, where every
new version of a record is compared with a hundred versions sharing most of its fields.

A format's checker looks a pair up (by the content keys of both parts) before comparing it and keeps
what it computed, when a `ComparisonMemo` is current (`remembered_comparisons`). Only pairs whose result
cannot depend on where they sit are kept, so a check gives the same answer with or without one. This
module imports no format library: the webhook process imports it without loading them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["ComparisonMemo", "SharedTuples", "current_comparisons", "remembered_comparisons"]

T = TypeVar("T", bound=tuple[Any, ...])


class ComparisonMemo(Protocol):
    """Findings of part pairs by both parts' content keys; `get` answers None for a pair it does not know.
    What is kept is never changed by the checker."""

    def get(self, key: tuple[str, str]) -> Sequence[Any] | None: ...

    def put(self, key: tuple[str, str], found: Sequence[Any]) -> None: ...


_MEMO: contextvars.ContextVar[ComparisonMemo | None] = contextvars.ContextVar(
    "kschema_comparisons", default=None
)


@contextlib.contextmanager
def remembered_comparisons(memo: ComparisonMemo) -> Iterator[None]:
    """Makes `memo` the place part comparisons are looked up and kept, for the code inside."""
    token = _MEMO.set(memo)
    try:
        yield
    finally:
        _MEMO.reset(token)


def current_comparisons() -> ComparisonMemo | None:
    return _MEMO.get()


class SharedTuples(Generic[T]):
    """One tuple for equal tuples, whichever schema they come from: the versions of a record share most of
    their fields, and sets of the same tuples are compared by identity, several times faster than equal
    tuples element by element. Dropped whole past `limit` entries (sharing only saves time)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: dict[T, T] = {}

    def __call__(self, value: T) -> T:
        if len(self._known) >= self._limit:
            self._known.clear()
        return self._known.setdefault(value, value)
