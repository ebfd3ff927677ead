"""The local node itself: a Ready node with cluster DNS, the `kubernetes` Service reachable from pods with
their ServiceAccount token, and a default StorageClass whose claims bind to a provisioned volume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.node.images import CLIENT
from tests.node.kube import Kube, eventually

# The first test of a session also waits for the images, the node and cert-manager (cold: minutes).
pytestmark = [pytest.mark.node, pytest.mark.timeout(1800)]


NS = "node-check"

PROBE = """
import json, socket, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(sa + "/token").read()
context = ssl.create_default_context(cafile=sa + "/ca.crt")
url = "https://kubernetes.default.svc/version"
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
with urllib.request.urlopen(request, context=context, timeout=10) as response:
    version = json.load(response)["gitVersion"]
print(json.dumps({"dns": socket.gethostbyname("kubernetes.default.svc.cluster.local"), "version": version}))
"""


def test_a_pod_resolves_and_reaches_the_api_server_and_writes_a_provisioned_volume(kube: Kube) -> None:
    nodes = kube.json("get", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["kschema-node"]
    classes = kube.json("get", "storageclass")["items"]
    assert [c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] for c in classes] == [
        "true"
    ]
    kube("create", "namespace", NS)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe", "namespace": NS},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "probe",
                        "image": CLIENT,
                        "imagePullPolicy": "Never",
                        "command": ["python", "-c", PROBE + "open('/data/written', 'w').write('ok')"],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )

    phase = eventually(
        lambda: (
            (p := kube.json("-n", NS, "get", "pod", "probe")["status"].get("phase"))
            in ("Succeeded", "Failed")
            and p
        ),
        timeout=120,
        what="the probe pod to finish",
    )
    logs = kube("-n", NS, "logs", "probe")
    assert phase == "Succeeded", logs
    result = json.loads(logs.strip().splitlines()[-1])
    assert result == {"dns": "10.96.0.1", "version": "v1.33.13"}
    [volume] = ours(kube)
    assert (Path(volume["spec"]["hostPath"]["path"]) / "written").read_text() == "ok"

    kube("delete", "namespace", NS, "--wait=true", "--timeout=120s")
    eventually(lambda: not ours(kube), timeout=60, what="the released volume to be deleted")
    assert not Path(volume["spec"]["hostPath"]["path"]).exists()


def ours(kube: Kube) -> list[dict[str, Any]]:
    return [v for v in kube.json("get", "pv")["items"] if v["spec"]["claimRef"]["namespace"] == NS]
