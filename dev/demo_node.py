"""The demo on a real one-node cluster (root): the image built and loaded into the node, cert-manager, the
chart installed with the README quickstart's values (the node tests install the same), the examples applied
through the webhook's Service, an incompatible change refused, and a schema looked up from a pod over
in-cluster DNS.

    make demo              # shows everything, then stops the node and restores the host
    make demo KEEP=1       # leaves the node and the release running (make demo-down stops them)
    make demo-fast         # the same story with loose processes beside a control plane (no node, no image)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kschema.devcluster import certmanager, image
from kschema.devcluster.node import DEFAULT_NODE_DIR, Node, missing_prerequisites, start_detached, stop_node

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NAMESPACE = "kschema"
APPS = "shop"
# The values of the README's quickstart; the image is already in the node's containerd, so nothing is pulled.
VALUES = REPO / "charts" / "quickstart-values.yaml"

LOOKUP = """
import json, urllib.request
url = "http://kschema.kschema.svc:8081/subjects/orders-value/versions/latest"
body = json.load(urllib.request.urlopen(url, timeout=10))
print("GET", url)
print("   -> id", body["id"], "version", body["version"], "references", body.get("references"))
"""


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def step(text: str) -> None:
    say(f"\n==> {text}")


def helm() -> str:
    done = subprocess.run(
        ["bash", str(REPO / "dev" / "helm" / "build.sh")], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def run(node: Node, *args: str, check: bool = True) -> str:
    done = node.kubectl(*args, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
    return (done.stdout + done.stderr).strip()


def main() -> int:
    missing = missing_prerequisites()
    if missing:
        say(f"The demo needs {', '.join(missing)}; `make demo-fast` runs without them.")
        return 1
    keep = os.environ.get("KEEP", "") not in ("", "0")
    started = time.monotonic()
    step("Building the kschema image with a private dockerd (base from debootstrap)")
    with image.docker() as daemon:
        image.build(daemon, "kschema:dev")
        archive = image.save(daemon, "kschema:dev")
    say(f"kschema:dev -> {archive}")

    step("Starting a one-node cluster: containerd, control plane, scheduler, kubelet, kube-proxy, CoreDNS")
    node = start_detached(DEFAULT_NODE_DIR)
    try:
        node.load_image(archive)
        say(run(node, "get", "nodes", "-o", "wide"))

        step("cert-manager (controller and cainjector) for the webhook's certificate")
        certmanager.start(node)

        step(
            f"helm install kschema charts/kschema --namespace {NAMESPACE} --create-namespace "
            "--values charts/quickstart-values.yaml"
        )
        done = subprocess.run(
            [helm(), "install", "kschema", str(REPO / "charts" / "kschema"), "--namespace", NAMESPACE,
             "--create-namespace", "--values", str(VALUES), "--wait", "--timeout=300s"],
            capture_output=True, text=True, check=False, env=node.env(),
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(
                f"helm install failed:\n{done.stderr}\n"
                + run(node, "-n", NAMESPACE, "get", "all", check=False)
            )
        say(run(node, "-n", NAMESPACE, "get", "pods,svc,pvc"))

        step(f"Applying examples/ in namespace {APPS} (admitted by the webhook through its Service)")
        run(node, "create", "namespace", APPS)
        say(run(node, "apply", "-n", APPS, "-f", str(EXAMPLES / "avro"), "-f", str(EXAMPLES / "json"),
                "-f", str(EXAMPLES / "protobuf")))  # fmt: skip
        run(node, "-n", APPS, "wait", "--for=condition=Ready", "subjects,schemas", "--all", "--timeout=120s")
        say(run(node, "-n", APPS, "get", "subjects,schemas"))

        step("Applying examples/incompatible/: refused")
        say(run(node, "apply", "-n", APPS, "-f", str(EXAMPLES / "incompatible"), check=False))

        step("A lookup from a pod in another namespace, over in-cluster DNS")
        run(node, "create", "namespace", "lookup")
        run(node, "-n", "lookup", "run", "lookup", "--image=kschema:dev", "--image-pull-policy=Never",
            "--restart=Never", "--command", "--", "python", "-c", LOOKUP)  # fmt: skip
        run(
            node,
            "-n",
            "lookup",
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/lookup",
            "--timeout=120s",
        )
        say(run(node, "-n", "lookup", "logs", "lookup"))
        say(f"\n(demo took {time.monotonic() - started:.0f}s)")
        if keep:
            step("Left running")
            say(f"export KUBECONFIG={node.kubeconfig}")
            say("stop everything and restore the host with: make demo-down")
            return 0
    except BaseException:
        keep = False
        raise
    finally:
        if not keep:
            step("Stopping the node and restoring the host")
            stop_node(DEFAULT_NODE_DIR)
            say("Stopped.")
    return 0


def down() -> int:
    stopped = stop_node(DEFAULT_NODE_DIR)
    say("Stopped the demo." if stopped else "No node demo was running.")
    return 0


if __name__ == "__main__":
    sys.exit(down() if sys.argv[1:] == ["down"] else main())
