"""kschema: a Kubernetes-native schema registry."""

from importlib import metadata

try:
    # The installed distribution's version, so the read API and `--version` report what is deployed.
    __version__ = metadata.version("kschema")
except metadata.PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0.0.0+unknown"
