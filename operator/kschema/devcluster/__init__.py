"""A real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) run as processes,
for the test suite, the demo and developers without Docker."""

from kschema.devcluster.controlplane import ControlPlane, ControlPlaneError, build_binaries

__all__ = ["ControlPlane", "ControlPlaneError", "build_binaries"]
