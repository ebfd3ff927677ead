"""Running the operator against the test control plane: in a thread of the test process (through
`run_operator`) or as a `kschema operator` subprocess that a test can SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kschema.operator import OperatorSettings, run_operator
from kschema.store import RegistryStore
from kschema.store.factory import open_store
from tests.harness.cluster import REPO_ROOT, Cluster

CRD_DIR = REPO_ROOT / "crds"
EXAMPLES_DIR = REPO_ROOT / "examples"
# The folders of examples that must become Ready (others show refusals, e.g. `incompatible/`).
READY_EXAMPLES = ("avro", "contracts", "json", "protobuf")
CRDS = ("subjects.kschema.io", "schemas.kschema.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
T = TypeVar("T")


def apply_crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(CRD_DIR))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS))


def read_store(url: str, query: Callable[[RegistryStore], Awaitable[T]]) -> T:
    """Runs one query against the store file the operator writes (a second connection)."""

    async def run() -> T:
        store = await open_store(url)
        try:
            return await query(store)
        finally:
            await store.close()

    return asyncio.run(run())


def get_json(cluster: Cluster, namespace: str, *what: str) -> Any:
    return json.loads(cluster.kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def wait_ready(cluster: Cluster, namespace: str, what: str = "subjects,schemas", timeout: int = 90) -> None:
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", f"--timeout={timeout}s", what, "--all")


class InProcessOperator:
    """`run_operator` on its own event loop in a thread, so tests can call kubectl synchronously."""

    def __init__(self, settings: OperatorSettings, store_url: str) -> None:
        self.settings = settings
        self.store_url = store_url
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 60) -> InProcessOperator:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError(f"the operator did not start within {timeout}s: {self.error!r}")
        if self.error is not None:
            raise AssertionError(f"the operator failed to start: {self.error!r}")
        return self

    def stop(self, timeout: float = 60) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the operator did not stop in time")
        if self.error is not None:
            raise AssertionError(f"the operator failed: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the test thread
            self.error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        store = await open_store(self.store_url)
        try:
            task = asyncio.create_task(run_operator(self.settings, store, stop=self._stop, ready=ready))
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            self._ready.set()
            await task
        finally:
            await store.close()


class OperatorProcess:
    """`kschema operator` as a child process, logging to a file. Without `extra` it runs standalone
    (no leader election)."""

    def __init__(self, cluster: Cluster, namespace: str, store_url: str, log: Path, *extra: str) -> None:
        self.argv = [
            str(Path(sys.executable).parent / "kschema"),
            "operator",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--namespaces",
            namespace,
            "--store-url",
            store_url,
            "--health-port",
            "0",
            *(extra or ("--peering", "")),
        ]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup handler, no final patch, exactly like a node failure."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextlib.contextmanager
def operator_in_namespace(
    cluster: Cluster, namespace: str, store_url: str, **settings: Any
) -> Iterator[InProcessOperator]:
    """An in-process operator serving `namespace` alone (standalone, quick retries; `settings` override);
    the CRDs must be applied. On exit every Subject and Schema of the namespace is deleted while the
    operator still runs, so it releases their finalizers and the namespace can go."""
    configured = OperatorSettings(
        **{
            "namespaces": (namespace,),
            "kubeconfig": cluster.kubeconfig,
            "peering": None,
            "retry_delay": 0.5,
            "retry_max_delay": 5,
            **settings,
        }
    )
    running = InProcessOperator(configured, store_url).start()
    try:
        yield running
    finally:
        cluster.kubectl("delete", "-n", namespace, "schemas,subjects", "--all", "--timeout=90s", check=False)
        running.stop()
