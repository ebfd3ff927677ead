"""`kschema dev up|down|env`: a local control plane (etcd, kube-apiserver, kube-controller-manager) for
development and the demo, left running between commands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kschema.devcluster.controlplane import DEFAULT_STATE_DIR, STATE_FILE, start_detached, stop_detached

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dev", help="run a local Kubernetes control plane for development")
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_STATE_DIR, help="state folder (default: %(default)s)"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "up", help="build (first time only) and start etcd, kube-apiserver, kube-controller-manager"
    )
    actions.add_parser("down", help="stop the control plane and remove its state")
    actions.add_parser("env", help="print the KUBECONFIG export line for the running control plane")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    if args.action == "up":
        plane = start_detached(directory)
        sys.stdout.write(f"Control plane ready at {plane.server}\nexport KUBECONFIG={plane.kubeconfig}\n")
        return 0
    if args.action == "down":
        stopped = stop_detached(directory)
        sys.stdout.write("Control plane stopped\n" if stopped else "No control plane was running\n")
        return 0
    if not (directory / STATE_FILE).exists():
        sys.stderr.write("No control plane is running; start one with `kschema dev up`\n")
        return 1
    sys.stdout.write(f"export KUBECONFIG={directory / 'admin.kubeconfig'}\n")
    return 0
