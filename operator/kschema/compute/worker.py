"""A worker process: `python -m kschema.compute.worker MEMORY_BYTES`. Reads pickled `(function,
arguments)` frames on stdin (declared Schemas it already holds named by number, see `resident`) and
answers `("ok", result)` or `("error", exception)` frames on stdout, one task at a time, for as long as
its parent keeps the pipe open (see `frames`)."""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import Any

from kschema.compute.frames import frame, read_frame

_NICENESS = 10


def serve(memory_bytes: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    # Checks yield the CPU to the process that serves requests when both want it.
    os.nice(_NICENESS)
    # Frames go to the original stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    tasks_in = sys.stdin.buffer
    # Everything a task may need is imported once, before the first task's time starts.
    import kschema.compat.avro
    import kschema.compat.jsonschema
    import kschema.compat.protobuf
    import kschema.compute.tasks
    import kschema.formats.avro
    import kschema.formats.jsonschema
    import kschema.formats.protobuf
    from kschema.compute.collector import Collector
    from kschema.compute.resident import read_task
    from kschema.formats.budget import LIMITS

    # Collections run between tasks, and never scan the caches during one (see `collector`).
    parsed = kschema.compute.tasks.PARSED.lru
    collector = Collector(
        LIMITS.worker_gc_sweep_evicted_bytes, LIMITS.worker_gc_sweep_tasks, lambda: parsed.evicted_cost
    )
    collector.start()
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    out.write(frame(("ready", None)))  # imports done: task time starts now
    out.flush()
    while True:
        request = read_frame(tasks_in, read_task)
        if request is None:
            return
        fn, args = request
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except MemoryError:
            from kschema.formats.budget import TooComplexError

            answer = ("error", TooComplexError(f"the work needed more than {memory_bytes >> 20} MiB"))
        except Exception as exc:
            answer = ("error", exc)
        try:
            data = frame(answer)
        except Exception as exc:  # an unpicklable result or exception is a bug in the task
            data = frame(("error", RuntimeError(f"the worker could not send its answer: {exc!r}")))
        out.write(data)
        out.flush()
        del request, fn, args, answer, data
        collector.after_task()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
