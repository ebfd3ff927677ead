"""The edge where kschema meets the Kubernetes API through `kubernetes_asyncio`: an `ApiClient` whose
failed requests raise typed errors (`NotFound`, `Conflict`, `Gone`, ...) instead of an `ApiException` to
be told apart by its status code wherever it is caught (as kopf does for its own calls)."""

from kschema.kubeapi.client import UNPARSED, ApiClient, JsonBody, answer_bytes, environment_proxy
from kschema.kubeapi.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    KubeApiError,
    KubeClientError,
    KubeServerError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    translate,
    translated,
)

__all__ = [
    "UNPARSED",
    "ApiClient",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "JsonBody",
    "KubeApiError",
    "KubeClientError",
    "KubeServerError",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "answer_bytes",
    "environment_proxy",
    "translate",
    "translated",
]
