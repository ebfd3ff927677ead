"""A local-path volume provisioner for the one-node development cluster: the `local-path` StorageClass
(the cluster's default) gets a hostPath PersistentVolume under the node's volume folder for every claim, and
a released volume is deleted with its folder. Runs on the host beside the kubelet, as
`python -m kschema.devcluster.provisioner`, started and stopped by the node harness.

The folders are world-writable, as in rancher's local-path-provisioner: a hostPath volume gets no fsGroup
ownership change, and the pods run as non-root users."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger("kschema.devcluster.provisioner")

PROVISIONER = "kschema.dev/local-path"
STORAGE_CLASS = "local-path"
_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
_TIMEOUT = 10.0


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


class Api:
    """The few API calls the provisioner makes, over the admin kubeconfig's client certificate."""

    def __init__(self, kubeconfig: Path, pki: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        self.server: str = config["clusters"][0]["cluster"]["server"]
        self._context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self._context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=_TIMEOUT, context=self._context) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result


class Provisioner:
    def __init__(self, api: Api, root: Path, node_name: str) -> None:
        self._api = api
        self._root = root
        self._node = node_name

    def sync(self) -> None:
        volumes = self._api.call("GET", "/api/v1/persistentvolumes")["items"]
        names = {v["metadata"]["name"] for v in volumes}
        for claim in self._api.call("GET", "/api/v1/persistentvolumeclaims")["items"]:
            if claim["spec"].get("storageClassName") != STORAGE_CLASS:
                continue
            if claim.get("status", {}).get("phase") != "Pending" or claim["spec"].get("volumeName"):
                continue
            if f"pvc-{claim['metadata']['uid']}" not in names:
                self._provision(claim)
        for volume in volumes:
            ours = volume["metadata"].get("annotations", {}).get(_PROVISIONED_BY) == PROVISIONER
            if ours and volume.get("status", {}).get("phase") in ("Released", "Failed"):
                self._delete(volume)

    def _provision(self, claim: dict[str, Any]) -> None:
        meta = claim["metadata"]
        folder = self._root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": f"pvc-{meta['uid']}",
                "annotations": {_PROVISIONED_BY: PROVISIONER},
            },
            "spec": {
                "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                "accessModes": claim["spec"]["accessModes"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": STORAGE_CLASS,
                "volumeMode": claim["spec"].get("volumeMode", "Filesystem"),
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                "hostPath": {"path": str(folder), "type": "Directory"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [self._node],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }
        try:
            self._api.call("POST", "/api/v1/persistentvolumes", volume)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
        logger.info("Provisioned %s for %s/%s", folder, meta["namespace"], meta["name"])

    def _delete(self, volume: dict[str, Any]) -> None:
        path = Path(volume["spec"]["hostPath"]["path"])
        if path.parent == self._root:  # never remove anything outside the volume folder
            shutil.rmtree(path, ignore_errors=True)
        try:
            self._api.call("DELETE", f"/api/v1/persistentvolumes/{volume['metadata']['name']}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        logger.info("Deleted %s", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--pki", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder holding the volumes")
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    args.root.mkdir(parents=True, exist_ok=True)
    provisioner = Provisioner(Api(args.kubeconfig, args.pki), args.root, args.node_name)
    while not stop.is_set():
        try:
            provisioner.sync()
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            logger.warning("Sync failed: %s", exc)
        stop.wait(args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
