"""kschema: a Kubernetes-native schema registry."""

__version__ = "0.1.0"
