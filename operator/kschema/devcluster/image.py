"""Builds the project's image with a private dockerd (Debian's docker.io) that is started for the build and
stopped after it, on a machine where no registry is reachable: the Dockerfile's base comes from
`debootstrap`, and a CA the host trusts for its TLS-intercepting proxy is passed to the builder stage only.
The image is saved as an archive the local node's containerd imports.

    python -m kschema.devcluster.image [--tag kschema:dev] [--load-into .kschema/node]   (`make image`)
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from kschema.devcluster import hoststate
from kschema.devcluster.cachedir import cache_dir
from kschema.devcluster.controlplane import REPO_ROOT

logger = logging.getLogger(__name__)

CACHE = cache_dir()
# The Dockerfile's public base, made locally: Debian's python3.11 with the official image's links.
BASE_IMAGE = "kschema.local/python:3.11-slim"
DEBIAN_IMAGE = "kschema.local/debian:bookworm-slim"
BASE_DOCKERFILE = REPO_ROOT / "dev" / "image" / "python-base.Dockerfile"
DEFAULT_TAG = "kschema:dev"
SUITE = "bookworm"
# Trimmed like the official slim images: no docs, man pages or locales.
_SLIM_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*",
    "./var/cache/apt/*.bin",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
    "./usr/share/doc/*",
    "./var/log/*",
    "./proc/*",
    "./sys/*",
)
_HOST_PATHS = ("/run/containerd", "/var/run/docker.sock", "/run/docker")


class ImageError(RuntimeError):
    pass


def debian_mirror() -> str:
    """The host's own Debian mirror (deb822 sources), unless KSCHEMA_DEBIAN_MIRROR says otherwise."""
    if os.environ.get("KSCHEMA_DEBIAN_MIRROR"):
        return os.environ["KSCHEMA_DEBIAN_MIRROR"]
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def extra_ca() -> str:
    """PEM of the CAs added to this host's trust store (KSCHEMA_EXTRA_CA_FILE overrides): a TLS-intercepting
    proxy's CA that the builder stage needs to reach PyPI. Empty when there is none."""
    override = os.environ.get("KSCHEMA_EXTRA_CA_FILE")
    paths = (
        [Path(override)] if override else sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
    )
    return "".join(p.read_text() for p in paths if p.is_file())


class Docker:
    """A dockerd of our own: its socket and run state in a temporary folder, its images in the user cache
    (so later builds reuse the layers), no iptables rules and no bridge (builds use the host network)."""

    def __init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="kschema-docker-", dir="/var/tmp"))
        self.data_root = CACHE / "docker"
        self.socket = self.run_dir / "docker.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._existing = [p for p in _HOST_PATHS if os.path.lexists(p)]
        self._lock: IO[str] | None = None
        self._cgroups = set(Path("/sys/fs/cgroup").glob("*/docker"))

    def start(self, timeout: float = 60) -> Docker:
        if shutil.which("dockerd") is None:
            raise ImageError("dockerd is missing: install Debian's docker.io (dev/system-deps.sh)")
        self.data_root.mkdir(parents=True, exist_ok=True)
        # One dockerd per data root: a second build waits for the first one's daemon to stop.
        self._lock = (self.data_root.parent / "docker.lock").open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        log = (self.run_dir / "dockerd.log").open("ab")
        self._proc = subprocess.Popen(
            [
                "dockerd",
                f"--host=unix://{self.socket}",
                f"--data-root={self.data_root}",
                f"--exec-root={self.run_dir / 'exec'}",
                f"--pidfile={self.run_dir / 'dockerd.pid'}",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=overlay2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False).returncode != 0:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ImageError(f"dockerd did not start:\n{self._tail()}")
            time.sleep(0.3)
        return self

    def _tail(self) -> str:
        path = self.run_dir / "dockerd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def docker(
        self, *args: str, check: bool = True, stdin: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", f"--host=unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=stdin,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if check and done.returncode != 0:
            raise ImageError(
                f"docker {' '.join(args[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def has_image(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False).returncode == 0

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        # dockerd unmounts its layers on a clean stop; whatever is left under our folders goes now.
        for root in (self.run_dir, self.data_root):
            points = [
                line.split()[1]
                for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[1].startswith(str(root) + "/")
            ]
            for point in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        for path in _HOST_PATHS:
            if path not in self._existing and os.path.lexists(path):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
        for group in set(Path("/sys/fs/cgroup").glob("*/docker")) - self._cgroups:
            for sub in sorted(group.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                try:
                    sub.rmdir()
                except OSError as exc:
                    logger.warning("Could not remove cgroup %s: %s", sub, exc)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


@contextmanager
def docker() -> Iterator[Docker]:
    daemon = Docker().start()
    try:
        yield daemon
    finally:
        daemon.stop()


def build_base(daemon: Docker) -> None:
    """The Dockerfile's base (python:3.11-slim's layout) when it is not there yet: a Debian root from
    debootstrap, imported, then Debian's python3.11 installed on it by dev/image/python-base.Dockerfile."""
    if daemon.has_image(BASE_IMAGE):
        return
    started = time.monotonic()
    if not daemon.has_image(DEBIAN_IMAGE):
        _import_debootstrap(daemon)
    daemon.docker(
        "build", "--network=host", "--build-arg", f"DEBIAN={DEBIAN_IMAGE}", "-t", BASE_IMAGE,
        "-f", str(BASE_DOCKERFILE), str(BASE_DOCKERFILE.parent),
    )  # fmt: skip
    logger.info("Built the base image %s seconds=%.0f", BASE_IMAGE, time.monotonic() - started)


def _import_debootstrap(daemon: Docker) -> None:
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is missing: install it (dev/system-deps.sh)")
    rootfs = Path(tempfile.mkdtemp(prefix="kschema-rootfs-", dir="/var/tmp"))
    mirror = debian_mirror()
    try:
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            log = rootfs / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-3000:] if log.exists() else done.stdout[-3000:]
            raise ImageError(f"debootstrap failed:\n{detail}\n{done.stderr[-2000:]}")
        security = mirror.rstrip("/").rsplit("/", 1)[0] + "/debian-security"
        (rootfs / "etc" / "apt" / "sources.list").write_text(
            f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\n"
            f"deb {security} {SUITE}-security main\n"
        )
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "-c", *(f"--exclude={e}" for e in _SLIM_EXCLUDES), "."],
            stdout=subprocess.PIPE,
        )
        assert tar.stdout is not None
        imported = daemon.docker(
            "import", "--change", 'CMD ["bash"]', "-", DEBIAN_IMAGE, stdin=tar.stdout.fileno(), check=False
        )
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"importing the debootstrap root failed:\n{imported.stderr}")
    finally:
        # debootstrap mounts /proc and /sys in the tree while it works; a failed run leaves them mounted.
        hoststate.unmount_under(rootfs)
        shutil.rmtree(rootfs, ignore_errors=True)


def build(
    daemon: Docker,
    tag: str = DEFAULT_TAG,
    *,
    context: Path = REPO_ROOT,
    dockerfile: Path | None = None,
) -> None:
    started = time.monotonic()
    build_base(daemon)
    args = ["build", "--network=host", "--build-arg", f"BASE={BASE_IMAGE}", "-t", tag]
    ca = extra_ca()
    if ca:
        args += ["--build-arg", f"EXTRA_CA={ca}"]
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    daemon.docker(*args, str(context))
    logger.info("Built %s seconds=%.0f", tag, time.monotonic() - started)


def save(daemon: Docker, tag: str, *more: str) -> Path:
    """`docker save` of one or more tags (sharing their layers) into the image cache."""
    out = CACHE / "images" / (tag.replace("/", "_").replace(":", "-") + ".tar")
    out.parent.mkdir(parents=True, exist_ok=True)
    daemon.docker("save", "-o", str(out), tag, *more)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the kschema image and load it into the local node")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument(
        "--load-into", type=Path, default=REPO_ROOT / ".kschema" / "node",
        help="a running node's folder, whose containerd gets the image (skipped when no node runs there)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with docker() as daemon:
        build(daemon, args.tag)
        archive = save(daemon, args.tag)
    sys.stdout.write(f"{args.tag} saved to {archive}\n")
    from kschema.devcluster.node import NODE_STATE, load_into  # the node is optional here

    if (args.load_into / NODE_STATE).exists():
        load_into(args.load_into, archive)
        sys.stdout.write(f"{args.tag} loaded into the node at {args.load_into}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
