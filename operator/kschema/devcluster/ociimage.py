"""Single-layer OCI image archives written without a daemon or a registry, for the local node's own small
images (the pod sandbox, CoreDNS). `ctr images import` reads them; the image name comes from the index's
`io.containerd.image.name` annotation."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImageFile:
    source: Path
    dest: str
    mode: int = 0o755


@dataclass(frozen=True)
class ImageSpec:
    name: str  # e.g. `kschema.local/pause:1`
    files: tuple[ImageFile, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    user: str = ""
    directories: tuple[str, ...] = field(default=("tmp", "etc", "proc", "sys", "dev", "var/run"))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(spec: ImageSpec) -> bytes:
    raw = io.BytesIO()
    made: set[str] = set()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def mkdirs(path: str) -> None:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder and folder not in made:
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o1777 if folder == "tmp" else 0o755
                    tar.addfile(info)

        for folder in spec.directories:
            mkdirs(folder)
        for item in spec.files:
            mkdirs(item.dest.rsplit("/", 1)[0])
            data = item.source.read_bytes()
            info = tarfile.TarInfo(item.dest.lstrip("/"))
            info.size = len(data)
            info.mode = item.mode
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def write_archive(spec: ImageSpec, out: Path) -> Path:
    layer = _layer(spec)
    compressed = gzip.compress(layer, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {
                "Entrypoint": list(spec.entrypoint),
                "Cmd": list(spec.cmd) or None,
                "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"],
                "WorkingDir": "/",
                "User": spec.user,
            },
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(compressed),
                    "size": len(compressed),
                }
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": spec.name,
                        "org.opencontainers.image.ref.name": spec.name.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
    ).encode()
    with tarfile.open(out, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in (config, manifest, compressed):
            add("blobs/sha256/" + _digest(blob)[7:], blob)
    return out
