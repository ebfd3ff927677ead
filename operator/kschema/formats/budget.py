"""Work budgets: the one place that bounds how much work any single check may do.

Every compatibility check, reference resolution and payload validation spends steps from a `WorkBudget`
and has a deadline. Running out of either is a `TooComplexError` ("too complex to check: ..."), a refusal
that names what was too large, never a hang. The checks themselves also run in worker processes
(`kschema.compute`) that are killed when they pass `LIMITS.worker_timeout_seconds` or
`LIMITS.worker_memory_bytes`, so even work that cannot count its steps (a library call) is bounded.

The numbers, and why:

* `check_steps`: one step is one comparison of a pair of types (an Avro type, a JSON Schema node, a
  Protobuf message or field). Comparisons of the same pair are memoised, so a real schema pair costs about
  (number of types in one) x (number of types in the other) at most; 2 million steps take about 10 s of
  CPU on one core, far beyond the largest real schemas (thousands of fields take a few thousand steps).
* `check_seconds`: below the API server's 10 s webhook timeout, so a refusal reaches `kubectl` as a
  sentence rather than as a timeout.
* `issues_per_pair`: findings kept per compared pair (and per check). A shared type reached along many
  paths would otherwise repeat one finding once per path, which doubles with every level of a DAG.
* `validate_steps` / `validate_seconds`: one step is one keyword applied to one part of the payload.
* `payload_depth`: nesting of a payload to validate; validators recurse with the payload, and real
  payloads nest a few dozen levels at most.
* `reference_count` / `reference_depth`: distinct referenced versions one schema may pull in, and how
  deeply references may nest (a deeper chain is a cycle or a mistake).
* `worker_*`: the hard bounds of the worker processes; the worker timeout is above the cooperative
  deadlines, so it only fires for work that did not stop by itself.
* `worker_parse_cache_*` / `worker_verdict_cache_*` / `worker_comparison_cache_*`: what a worker keeps
  between tasks (parsed schemas, reader/writer verdicts and comparisons of parts by content,
  `kschema.compute.caches`), in entries and estimated bytes; well inside `worker_memory_bytes`, so a
  stream of distinct schemas evicts old entries rather than failing.
* `worker_metaschema_cache_*`: the JSON Schema subschemas a process found valid against their
  metaschema (`kschema.formats.metaschema`), so a parse checks only what is new.
* `worker_resident_*`: the declared Schemas a worker keeps so that later tasks name them by number
  instead of sending them again (`kschema.compute.resident`), in entries and estimated bytes (their
  texts are mostly the ones the parse cache holds anyway).
* `worker_gc_sweep_*`: a worker collects garbage between tasks and freezes what survives
  (`kschema.compute.collector`); it sweeps the frozen objects for cycles once its parse cache has
  evicted this many (estimated) bytes, a quarter of that cache, or after this many tasks. Memory held
  back by frozen garbage stays below the first.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from typing import Final

__all__ = ["LIMITS", "Limits", "TooComplexError", "WorkBudget", "current_budget", "spend", "work_budget"]


@dataclass(frozen=True, slots=True)
class Limits:
    check_steps: int = 2_000_000
    check_seconds: float = 5.0
    issues_per_pair: int = 100
    validate_steps: int = 2_000_000
    validate_seconds: float = 5.0
    payload_depth: int = 256
    reference_count: int = 1000
    reference_depth: int = 32
    worker_processes: int = 2
    worker_timeout_seconds: float = 8.0
    worker_memory_bytes: int = 1024 * 1024 * 1024
    worker_parse_cache_entries: int = 4096
    worker_parse_cache_bytes: int = 128 * 1024 * 1024
    worker_verdict_cache_entries: int = 100_000
    worker_verdict_cache_bytes: int = 32 * 1024 * 1024
    worker_comparison_cache_entries: int = 100_000
    worker_comparison_cache_bytes: int = 32 * 1024 * 1024
    worker_metaschema_cache_entries: int = 8192
    worker_metaschema_cache_bytes: int = 8 * 1024 * 1024
    worker_resident_specs: int = 20_000
    worker_resident_bytes: int = 64 * 1024 * 1024
    worker_gc_sweep_evicted_bytes: int = 32 * 1024 * 1024
    worker_gc_sweep_tasks: int = 10_000


LIMITS: Final = Limits()


class TooComplexError(Exception):
    """A check, resolution or validation that ran out of its budget or deadline. `reason` says which
    limit was reached, in words a schema author can act on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"too complex to check: {reason}")

    def __reduce__(self) -> tuple[type[TooComplexError], tuple[str]]:
        return type(self), (self.reason,)


# Checking the clock costs more than counting; it is read every this many steps.
_CLOCK_EVERY: Final = 1024


class WorkBudget:
    """Steps and a deadline for one piece of work (`what`, e.g. "the compatibility check")."""

    __slots__ = ("_check_at", "_deadline", "_next_clock", "seconds", "steps", "used", "what")

    def __init__(self, what: str, steps: int, seconds: float) -> None:
        self.what = what
        self.steps = steps
        self.seconds = seconds
        self.used = 0
        self._deadline = time.monotonic() + seconds
        self._next_clock = _CLOCK_EVERY
        # The next count at which `_check` has anything to do: past the steps, or time to read the clock.
        # Spending compares with this alone (JSON Schema validation spends once per keyword applied).
        self._check_at = min(_CLOCK_EVERY, steps + 1)

    def spend(self, steps: int = 1) -> None:
        self.used += steps
        if self.used >= self._check_at:
            self._check()

    def _check(self) -> None:
        if self.used > self.steps:
            raise TooComplexError(f"{self.what} needs more than {self.steps} steps")
        if self.used >= self._next_clock:
            self._next_clock = self.used + _CLOCK_EVERY
            if time.monotonic() > self._deadline:
                raise TooComplexError(f"{self.what} did not finish within {self.seconds:g} s")
        self._check_at = min(self._next_clock, self.steps + 1)


_CURRENT: contextvars.ContextVar[WorkBudget | None] = contextvars.ContextVar("kschema_budget", default=None)


class work_budget:
    """Makes a budget current for the code inside. A budget already current (an outer check that
    includes this one) stays in force: the inner work spends from it. (A class rather than a generator
    context manager: payload validation enters one per request, and this costs a fraction as much.)"""

    __slots__ = ("_seconds", "_steps", "_token", "_what")

    def __init__(self, what: str, steps: int, seconds: float) -> None:
        self._what, self._steps, self._seconds = what, steps, seconds
        self._token: contextvars.Token[WorkBudget | None] | None = None

    def __enter__(self) -> WorkBudget:
        outer = _CURRENT.get()
        if outer is not None:
            return outer
        budget = WorkBudget(self._what, self._steps, self._seconds)
        self._token = _CURRENT.set(budget)
        return budget

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None


current_budget: Final = _CURRENT.get
"""The budget current in this context, or None (for per-step callers that skip `spend`'s call)."""


def spend(steps: int = 1) -> None:
    """Spends from the current budget; a no-op outside any (callers that bound their own work)."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.spend(steps)
