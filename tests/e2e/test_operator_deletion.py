"""A Subject deleted while its resync timer is running goes as soon as the timer returns: kopf holds the
finalizer until the timer exits, and must look again within a second or so, not after its default
minute (an Argo CD prune or `kubectl delete` would wait that long)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.operator_harness import (
    EXAMPLES_DIR,
    InProcessOperator,
    apply_crds,
    operator_in_namespace,
    wait_ready,
)
from tests.harness.cluster import Cluster
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.cluster

LOCK_SECONDS = 4.0
GONE_WITHIN_SECONDS = 10.0  # after the store answers again (about 1 s here); kopf's default took 60 s


@pytest.fixture
def operator(cluster: Cluster, namespace: str, postgres_dsn: str) -> Iterator[InProcessOperator]:
    apply_crds(cluster)
    with operator_in_namespace(cluster, namespace, postgres_dsn, resync_interval=0.5) as running:
        yield running


def _hold_versions_table(server: PostgresServer, dsn: str, seconds: float) -> subprocess.Popen[bytes]:
    """Locks the versions table against every read for `seconds`: store reads wait meanwhile (well
    within the store's command timeout), as they would behind a slow failover."""
    return subprocess.Popen(
        [
            str(server.bin_dir / "psql"),
            dsn,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "BEGIN; LOCK TABLE subject_versions IN ACCESS EXCLUSIVE MODE; "
            f"SELECT pg_sleep({seconds}); COMMIT;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_subject_deleted_during_its_resync_goes_once_the_resync_returns(
    cluster: Cluster,
    namespace: str,
    postgres_server: PostgresServer,
    postgres_dsn: str,
    operator: InProcessOperator,
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "avro"))
    wait_ready(cluster, namespace)

    holder = _hold_versions_table(postgres_server, postgres_dsn, LOCK_SECONDS)
    try:
        time.sleep(1.5)  # the resync (every 0.5 s) is now waiting for the versions table
        cluster.kubectl("delete", "-n", namespace, "subject", "orders-value", "--wait=false")
        _, stderr = holder.communicate(timeout=LOCK_SECONDS + 30)
        assert holder.returncode == 0, stderr.decode()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    released = time.monotonic()
    cluster.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=delete",
        f"--timeout={GONE_WITHIN_SECONDS:.0f}s",
        "subject/orders-value",
    )
    assert time.monotonic() - released < GONE_WITHIN_SECONDS
