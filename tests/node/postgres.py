"""PostgreSQL as a pod of the test node (Debian's package in an image of its own), for the chart's postgres
topology."""

from __future__ import annotations

import base64
from typing import Any

IMAGE = "kschema.local/test-postgres:15"
PASSWORD = "kschema-node-test"

START = """set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\\n' "$PASSWORD" > /tmp/pw
  initdb --username=kschema --pwfile=/tmp/pw --auth-local=trust --auth-host=scram-sha-256 \\
    -D "$PGDATA" >/dev/null
  rm /tmp/pw
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c fsync=off
"""


def manifests(namespace: str, secret_namespace: str) -> list[dict[str, Any]]:
    labels = {"app": "postgres"}
    # initdb makes the `postgres` database only; the registry migrates its own tables into it.
    url = f"postgresql://kschema:{PASSWORD}@postgres.{namespace}.svc:5432/postgres"
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "postgres", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 5,
                        "securityContext": {"fsGroup": 105},
                        "containers": [
                            {
                                "name": "postgres",
                                "image": IMAGE,
                                "imagePullPolicy": "Never",
                                "command": ["sh", "-c", START],
                                "env": [
                                    {"name": "PGDATA", "value": "/var/lib/postgresql/data/pg"},
                                    {"name": "PASSWORD", "value": PASSWORD},
                                ],
                                "ports": [{"containerPort": 5432, "name": "pg"}],
                                # A TCP check, not `pg_isready` in an exec probe: an exec probe on a busy
                                # node misses its one-second timeout, and the Service loses its endpoint.
                                "readinessProbe": {
                                    "tcpSocket": {"port": "pg"},
                                    "periodSeconds": 2,
                                    "timeoutSeconds": 5,
                                },
                                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                            }
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "postgres", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 5432, "targetPort": "pg"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kschema-postgres", "namespace": secret_namespace},
            "data": {"url": base64.b64encode(url.encode()).decode()},
        },
    ]
