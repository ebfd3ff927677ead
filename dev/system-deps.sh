#!/usr/bin/env bash
# Installs the Debian packages the test harness and the demo need, when they are missing:
# PostgreSQL (server binaries for the throwaway test cluster) and kubectl's fallback, Go (to build the
# control plane, helm and Argo CD), a C compiler and Node.js (the third-party client programs), wrk (HTTP load
# in bench/), redis, git and gpg (the GitOps tests' Argo CD), Maven (Apicurio Registry for the import tests),
# and for the local node: containerd, runc, the CNI plugins, conntrack, iptables, and docker.io +
# debootstrap to build the image with no registry. Runs as root (CI and the dev machines) or through sudo.
# Debian's docker.io and containerd packages start no daemon here (no systemd); the harness starts its own.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v go >/dev/null || need+=(golang-go)
command -v openssl >/dev/null || need+=(openssl)
command -v wrk >/dev/null || need+=(wrk)  # HTTP load for the benchmarks
# The third-party client programs (dev/clients/build.sh): cgo for confluent-kafka-go, npm for the Node one.
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v npm >/dev/null || need+=(nodejs npm)
command -v mvn >/dev/null || need+=(maven)  # downloads Apicurio Registry (dev/apicurio/setup.sh)
# The GitOps tests' Argo CD: its cache, and git (with gpg for its commit verification) for the repo server.
command -v redis-server >/dev/null || need+=(redis-server)
command -v git >/dev/null || need+=(git)
command -v gpg >/dev/null || need+=(gpg)
# The local node and the image build.
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v conntrack >/dev/null || need+=(conntrack)
command -v iptables >/dev/null || need+=(iptables)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "system-deps: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's postgresql package starts a cluster of its own; the harness runs throwaway ones instead.
  if command -v pg_lsclusters >/dev/null; then $SUDO service postgresql stop >/dev/null 2>&1 || true; fi
  # Likewise redis: the GitOps tests start their own on a free port and stop it by pid.
  if [[ " ${need[*]} " == *" redis-server "* ]]; then
    $SUDO service redis-server stop >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
  fi
fi
