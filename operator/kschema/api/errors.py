"""Confluent-style errors of the read API, and the one function that turns every failure (domain errors,
unknown routes, wrong methods, bugs) into `{"error_code": int, "message": str}` (applied to every route by
`handling.py`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from kschema.formats import InvalidSchemaError
from kschema.formats.budget import TooComplexError
from kschema.store import StoreUnavailableError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A failure with Confluent's HTTP status and error code. Raised by handlers and the index;
    `error_to_response` is the only place that turns it into a response."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message
        super().__init__(message)


def subject_not_found(subject: str) -> ApiError:
    return ApiError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version: int | str) -> ApiError:
    return ApiError(404, 40402, f"Version {version} not found for subject '{subject}'.")


def schema_not_found(detail: str = "Schema not found") -> ApiError:
    return ApiError(404, 40403, detail)


def subject_config_not_found(subject: str) -> ApiError:
    return ApiError(404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured")


def subject_mode_not_found(subject: str) -> ApiError:
    return ApiError(404, 40409, f"Subject '{subject}' does not have subject-level mode configured")


def not_acceptable(accept: str) -> ApiError:
    return ApiError(
        406,
        406,
        f"HTTP 406 Not Acceptable: cannot answer with any type of '{accept}'; accepted are "
        "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json and application/json",
    )


def invalid_schema(reason: str) -> ApiError:
    return ApiError(422, 42201, f"Invalid schema: {reason}")


def invalid_version(raw: str) -> ApiError:
    return ApiError(
        422,
        42202,
        f"The specified version '{raw}' is not a valid version id. "
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    )


def read_only(what: str) -> ApiError:
    return ApiError(
        422,
        42205,
        f"{what} is in read-only mode: kschema registers schemas from Subject and Schema resources "
        "(kubectl apply or GitOps), not through this API",
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, 400, message)


def not_ready() -> ApiError:
    return ApiError(503, 50003, "The registry index has not finished its first load from the store")


def error_response(status: int, error_code: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"error_code": error_code, "message": message}).encode(),
        content_type=CONTENT_TYPE,
    )


def error_to_response(request: web.Request, error: Exception) -> web.StreamResponse:
    """The one place a failure becomes a response: domain errors, aiohttp's own HTTP errors (unknown
    path, wrong method, body too large) and bugs (logged, answered 500 without details)."""
    if isinstance(error, ApiError):
        return error_response(error.status, error.error_code, error.message)
    if isinstance(error, InvalidSchemaError):
        return error_response(422, 42201, f"Invalid schema: {error}")
    if isinstance(error, TooComplexError):
        return error_response(422, 42201, str(error))
    if isinstance(error, StoreUnavailableError):
        return error_response(503, 50002, f"Error in the backend data store: {error}")
    if isinstance(error, web.HTTPException):
        # Raised by aiohttp's router itself (unknown path, wrong method, body too large), never by our
        # handlers; clients still expect Confluent's JSON error shape here.
        if error.status < 400:
            raise error
        response = error_response(error.status, error.status, f"HTTP {error.status} {error.reason}")
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    log.exception("Failed to handle request method=%s path=%s", request.method, request.path, exc_info=error)
    return error_response(500, 50001, "Internal server error")
