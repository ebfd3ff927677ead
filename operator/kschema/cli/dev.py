"""`kschema dev up|down|env`: a local control plane (etcd, kube-apiserver, kube-controller-manager) for
development and the fast tests, or with `--node` a one-node cluster that runs pods (needs root), left running
between commands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kschema.devcluster.controlplane import DEFAULT_STATE_DIR, STATE_FILE, start_detached, stop_detached
from kschema.devcluster.node import DEFAULT_NODE_DIR, NODE_STATE, stop_node
from kschema.devcluster.node import start_detached as start_node

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dev", help="run a local Kubernetes control plane for development")
    parser.add_argument(
        "--dir", type=Path, default=None,
        help=f"state folder (default: {DEFAULT_STATE_DIR}, or {DEFAULT_NODE_DIR} with --node)",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser(
        "up", help="build (first time only) and start etcd, kube-apiserver, kube-controller-manager"
    )
    up.add_argument(
        "--node", action="store_true",
        help="a node that runs pods (root): containerd, kubelet, kube-proxy, scheduler, CoreDNS, storage",
    )  # fmt: skip
    actions.add_parser("down", help="stop the control plane (and the node) and remove its state")
    actions.add_parser("env", help="print the KUBECONFIG export line for the running control plane")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "up":
        if getattr(args, "node", False):
            node = start_node(args.dir or DEFAULT_NODE_DIR)
            sys.stdout.write(f"Node ready at {node.plane.server}\nexport KUBECONFIG={node.kubeconfig}\n")
            return 0
        plane = start_detached(args.dir or DEFAULT_STATE_DIR)
        sys.stdout.write(f"Control plane ready at {plane.server}\nexport KUBECONFIG={plane.kubeconfig}\n")
        return 0
    if args.action == "down":
        stopped = stop_node(args.dir or DEFAULT_NODE_DIR)
        stopped = stop_detached(args.dir or DEFAULT_STATE_DIR) or stopped
        sys.stdout.write("Stopped\n" if stopped else "Nothing was running\n")
        return 0
    for directory, kubeconfig in (
        (args.dir or DEFAULT_STATE_DIR, "admin.kubeconfig"),
        (args.dir or DEFAULT_NODE_DIR, "controlplane/admin.kubeconfig"),
    ):
        if (directory / STATE_FILE).exists() or (directory / NODE_STATE).exists():
            sys.stdout.write(f"export KUBECONFIG={directory / kubeconfig}\n")
            return 0
    sys.stderr.write("No control plane is running; start one with `kschema dev up`\n")
    return 1
