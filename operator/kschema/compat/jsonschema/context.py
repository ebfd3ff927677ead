"""The comparison's state: the differences found so far under a JSON path, and the memo of node pairs."""

from __future__ import annotations

from collections.abc import Iterable

from kschema.compat.jsonschema.compare import compare_nodes
from kschema.compat.jsonschema.differences import Difference, DifferenceType
from kschema.compat.jsonschema.differences import DifferenceType as D
from kschema.compat.jsonschema.model import Kind, Node
from kschema.compat.shared import current_comparisons
from kschema.formats.budget import LIMITS, spend

__all__ = ["Context", "path_string", "rebased"]


class Context:
    """Collects differences under a JSON path. Comparisons of a node pair are memoised (relative to
    the pair, capped in number) and a pair met again while it is still being compared is a recursive
    cycle, treated as compatible: the rest of the comparison decides. Each new pair spends one step of
    the current work budget, so a DAG of `$ref`s costs (pairs of definitions), never (paths). Pairs are
    keyed by their nodes' contents where contents decide (`Node.content_key`), so fifty properties
    `{"type": "object", ...}` of equal content are compared once, not fifty times; otherwise by node
    identity. (Equal properties of kinds compared by their own keywords are not compared at all:
    `properties.PropertyIndex`.) Paths are strings only for the differences found."""

    __slots__ = ("diffs", "in_progress", "memo", "path", "shared")

    def __init__(self) -> None:
        self.memo: dict[tuple[object, object], list[Difference]] = {}
        self.in_progress: set[tuple[object, object]] = set()
        self.path: list[str] = []
        self.diffs: list[Difference] = []
        # Comparisons kept across checks (`kschema.compat.shared`), for pairs keyed by content.
        self.shared = current_comparisons()

    def _derived(self, path: list[str]) -> Context:
        """A context sharing this one's memo, cycle set and kept comparisons, at `path` (its own list):
        what `sub` and each compared pair need, without looking the kept comparisons up again."""
        derived = Context.__new__(Context)
        derived.memo = self.memo
        derived.in_progress = self.in_progress
        derived.path = path
        derived.diffs = []
        derived.shared = self.shared
        return derived

    def sub(self) -> Context:
        return self._derived(list(self.path))

    @property
    def compatible(self) -> bool:
        return all(d.compatible for d in self.diffs)

    def add(self, type_: DifferenceType, *attribute: str) -> None:
        self.diffs.append(Difference(type_, path_string([*self.path, *attribute])))

    def extend(self, diffs: Iterable[Difference]) -> None:
        self.diffs.extend(diffs)

    def covered(
        self, original: Node, update: Node, covered: DifferenceType, not_covered: DifferenceType
    ) -> None:
        """A property or item on one side only, against the other side's partially open content model
        (`partial`): their differences, then whether that model covers it."""
        sub = self.sub()
        sub.compare(original, update)
        self.diffs.extend(sub.diffs)
        self.add(covered if sub.compatible else not_covered)

    def enter(self, *segment: str) -> PathScope:
        return PathScope(self, list(segment))

    def extend_at(self, segment: str, relative: Iterable[Difference]) -> None:
        """Adds a pair's differences (relative to the pair) found under one more path segment."""
        self.diffs.extend(rebased(path_string([*self.path, segment]), relative))

    def compare_at(self, segment: str, original: Node, update: Node) -> None:
        """`compare` under one more path segment. A pair of plain nodes compared before costs one
        lookup."""
        original_key, update_key = original.content_key, update.content_key
        if original_key is not None and update_key is not None:  # neither is a bare `$ref`
            cached = self.memo.get((original_key, update_key))
            if cached is not None:
                if cached:
                    self.extend_at(segment, cached)
                return
        self.path.append(segment)
        try:
            self.compare(original, update)
        finally:
            self.path.pop()

    def compare(self, original: Node | None, update: Node | None, *, keep: bool = True) -> None:
        """Adds the differences of a pair under the current path. `keep=False` neither looks the pair
        up in nor adds it to the comparisons kept across checks (a pair that is never met again)."""
        if original is None or update is None:
            if original is not None:
                self.add(D.SCHEMA_REMOVED)
            elif update is not None:
                self.add(D.SCHEMA_ADDED)
            return
        if original.kind is Kind.REFERENCE:
            original = original.loader.dereference(original)
        if update.kind is Kind.REFERENCE:
            update = update.loader.dereference(update)
        original_key, update_key = original.content_key, update.content_key
        key: tuple[object, object]
        content: tuple[str, str] | None = None
        if original_key is not None and update_key is not None:
            # Content keys: no `$ref` below either node, so no cycle is cut short inside, and the
            # differences depend on the two contents alone.
            key = content = (original_key, update_key)
        else:
            key = (id(original), id(update))
        shared = self.shared if keep and content is not None else None
        cached = self.memo.get(key)
        if cached is None and shared is not None and content is not None:
            kept = shared.get(content)
            if kept is not None:
                cached = self.memo[key] = list(kept)
        if cached is None:
            if key in self.in_progress:
                return
            spend()
            self.in_progress.add(key)
            try:
                pair = self._derived([])
                compare_nodes(pair, original, update)
                cached = self.memo[key] = _capped(pair.diffs)
            finally:
                self.in_progress.discard(key)
            if shared is not None and content is not None:
                shared.put(content, tuple(cached))
        if cached:
            path = self.path
            self.diffs.extend(rebased(path_string(path), cached) if path else cached)


def _capped(diffs: list[Difference]) -> list[Difference]:
    """A pair's differences, at most `LIMITS.issues_per_pair` compatible and as many incompatible ones.
    A definition reached along many paths (each `$ref`-ing the previous one twice) would otherwise repeat
    its differences once per path, doubling with every level; the verdict needs one incompatible
    difference, a person reads a few."""
    limit = LIMITS.issues_per_pair
    if len(diffs) <= limit:
        return diffs  # the pair's own list, which nothing else holds
    kept: list[Difference] = []
    compatible = incompatible = 0
    for diff in diffs:
        if diff.compatible:
            compatible += 1
            if compatible <= limit:
                kept.append(diff)
        else:
            incompatible += 1
            if incompatible <= limit:
                kept.append(diff)
    return kept


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


def rebased(prefix: str, relative: Iterable[Difference]) -> list[Difference]:
    """Differences relative to a pair (`#/...`), placed under the pair's path `prefix` (`#/a/b`)."""
    return [
        Difference(diff.type, f"{prefix}/{diff.path[2:]}" if len(diff.path) > 2 else prefix)
        for diff in relative
    ]
