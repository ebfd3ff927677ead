"""The comparison's state: the differences found so far under a JSON path, and the memo of node pairs."""

from __future__ import annotations

from collections.abc import Iterable

from kschema.compat.jsonschema.compare import compare_nodes
from kschema.compat.jsonschema.differences import Difference, DifferenceType
from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.model import Node

__all__ = ["Context", "path_string"]


class Context:
    """Collects differences under a JSON path. Comparisons of a node pair are memoised (relative to
    the pair) and a pair met again while it is still being compared is a recursive cycle, treated as
    compatible: the rest of the comparison decides."""

    def __init__(
        self,
        memo: dict[tuple[int, int], list[Difference]] | None = None,
        in_progress: set[tuple[int, int]] | None = None,
        path: list[str] | None = None,
    ) -> None:
        self.memo = memo if memo is not None else {}
        self.in_progress = in_progress if in_progress is not None else set()
        self.path: list[str] = list(path or [])
        self.diffs: list[Difference] = []

    def sub(self) -> Context:
        return Context(self.memo, self.in_progress, self.path)

    @property
    def compatible(self) -> bool:
        return all(d.compatible for d in self.diffs)

    def add(self, type_: DifferenceType, *attribute: str) -> None:
        self.diffs.append(Difference(type_, path_string([*self.path, *attribute])))

    def extend(self, diffs: Iterable[Difference]) -> None:
        self.diffs.extend(diffs)

    def enter(self, *segment: str) -> PathScope:
        return PathScope(self, list(segment))

    def compare(self, original: Node | None, update: Node | None) -> None:
        if original is None and update is None:
            return
        if original is None:
            self.add(D.SCHEMA_ADDED)
            return
        if update is None:
            self.add(D.SCHEMA_REMOVED)
            return
        original = original.loader.dereference(original)
        update = update.loader.dereference(update)
        key = (id(original), id(update))
        cached = self.memo.get(key)
        if cached is None:
            if key in self.in_progress:
                return
            self.in_progress.add(key)
            try:
                pair = Context(self.memo, self.in_progress)
                compare_nodes(pair, original, update)
                cached = self.memo[key] = list(pair.diffs)
            finally:
                self.in_progress.discard(key)
        prefix = list(self.path)
        for diff in cached:
            self.diffs.append(Difference(diff.type, rebase(prefix, diff.path)))


class PathScope:
    def __init__(self, ctx: Context, segment: list[str]) -> None:
        self.ctx = ctx
        self.segment = segment

    def __enter__(self) -> None:
        self.ctx.path.extend(self.segment)

    def __exit__(self, *exc: object) -> None:
        del self.ctx.path[len(self.ctx.path) - len(self.segment) :]


def path_string(path: list[str]) -> str:
    return "#/" + "/".join(path)


def rebase(prefix: list[str], relative: str) -> str:
    rest = relative[2:]
    if not prefix:
        return relative
    return path_string(prefix) + (f"/{rest}" if rest else "")
