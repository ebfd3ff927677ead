"""A worker pool closed while its workers are still starting leaves no process behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kschema.compute import WorkerPool


def _worker_children() -> set[int]:
    """Live (not zombie) worker processes whose parent is this process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and b"kschema.compute.worker" in cmdline:
            found.add(int(entry.name))
    return found


async def test_closing_while_workers_start_kills_them() -> None:
    before = _worker_children()
    pool = WorkerPool(processes=2, warm=True)
    await pool.start()
    # Until both processes exist: closing then cancels starts that are waiting for "ready".
    for _ in range(200):
        if len(_worker_children() - before) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(_worker_children() - before) == 2
    await pool.close()
    assert _worker_children() - before == set()


async def test_a_cancelled_first_use_kills_the_worker_it_was_starting() -> None:
    before = _worker_children()
    async with WorkerPool(processes=1) as pool:
        run = asyncio.create_task(pool.run(os.getpid))
        for _ in range(200):
            if _worker_children() - before:
                break
            await asyncio.sleep(0.01)
        assert _worker_children() - before
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        assert _worker_children() - before == set()
