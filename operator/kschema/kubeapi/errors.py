"""Typed Kubernetes API errors, translated once from `kubernetes_asyncio`'s `ApiException`.

Callers catch what they mean (`except NotFound:`) instead of comparing status codes; every class keeps
the status, the reason and the API server's own message (from its `Status` body) for logs and conditions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException


class KubeApiError(Exception):
    """The API server answered a request with an error status."""

    def __init__(self, status: int, reason: str, message: str = "", body: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body
        super().__init__(f"{status} {reason}" + (f": {message}" if message else ""))


class KubeClientError(KubeApiError):
    """4xx: the request itself was refused; repeating it unchanged will not help, except where a subclass
    says otherwise (a conflict, throttling)."""


class BadRequest(KubeClientError):
    """400."""


class Unauthorized(KubeClientError):
    """401: the credentials were not accepted."""


class Forbidden(KubeClientError):
    """403: RBAC (or an admission policy) refused the request."""


class NotFound(KubeClientError):
    """404: the object (or its namespace, or the resource type) does not exist."""


class Conflict(KubeClientError):
    """409: the object exists already, or changed since the resourceVersion the request named."""


class Gone(KubeClientError):
    """410: the resourceVersion a watch resumed from is too old ("Expired"); list again."""


class Unprocessable(KubeClientError):
    """422: the object is invalid (validation, immutable fields)."""


class TooManyRequests(KubeClientError):
    """429: throttled by API priority and fairness; retry later."""


class KubeServerError(KubeApiError):
    """5xx: the API server (or etcd, or a webhook it called) failed; retry later."""


_BY_STATUS: dict[int, type[KubeApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Unprocessable,
    429: TooManyRequests,
}


def _message(body: Any) -> str:
    """The `message` of a `Status` body; "" when the body is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return message if isinstance(message, str) else ""


def translate(error: ApiException) -> KubeApiError:
    """The typed error for an `ApiException` (status 0 or missing: a `KubeApiError` of status 0)."""
    status = error.status if isinstance(error.status, int) else 0
    reason = str(error.reason or "")
    body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else error.body
    kind = _BY_STATUS.get(status)
    if kind is None:
        if 500 <= status < 600:
            kind = KubeServerError
        elif 400 <= status < 500:
            kind = KubeClientError
        else:
            kind = KubeApiError
    return kind(status, reason, _message(body), body if isinstance(body, str) else None)


@contextmanager
def translated() -> Iterator[None]:
    """Translates `ApiException`s raised inside the block: for the few places where `kubernetes_asyncio`
    raises one outside a request (an ERROR event in a watch stream)."""
    try:
        yield
    except ApiException as error:
        raise translate(error) from error
