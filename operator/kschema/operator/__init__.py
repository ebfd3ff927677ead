"""The kopf operator: reconciles `Subject` and `Schema` resources into the registry store and projects
each Subject's served versions into a ConfigMap. Entry point: `run_operator(settings, store)`."""

from kschema.operator.main import run_operator
from kschema.operator.settings import OperatorSettings

__all__ = ["OperatorSettings", "run_operator"]
