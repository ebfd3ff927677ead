"""The read API's HTTP server: aiohttp's runner, with requests that aiohttp's own parser refuses (a request
line or header past the configured limits, bytes that are not HTTP) answered in Confluent's error shape.

Those requests never reach the app, so its error middleware cannot answer them: aiohttp answers with
`handle_error` of its per-connection protocol, in plain text that quotes the offending input, and logs it
with a traceback at ERROR. aiohttp offers no public hook for this (aio-libs/aiohttp#3287); the runner
builds its server with a protocol whose `handle_error` answers `{"error_code", "message"}` without
echoing anything the client sent."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from kschema.api.app import create_app
from kschema.api.auth import TokenReviewer
from kschema.api.errors import error_response
from kschema.api.hotpath import serve_hot_paths
from kschema.api.settings import ApiSettings
from kschema.api.state import SETTINGS
from kschema.compute import WorkerPool
from kschema.store import RegistryStore

log = logging.getLogger(__name__)


def create_runner(
    settings: ApiSettings,
    store: RegistryStore,
    pool: WorkerPool | None = None,
    *,
    reviewer: TokenReviewer | None = None,
) -> web.AppRunner:
    """A runner for the read API app, with the request line and header limits of `settings`."""
    return app_runner(create_app(settings, store, pool, reviewer=reviewer))


def app_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner `kschema api` serves an app made by `create_app` with (`kwargs` go to aiohttp's)."""
    settings = app[SETTINGS]
    return _ConfluentErrorsRunner(
        app,
        access_log=None,
        max_line_size=settings.max_request_line_bytes,
        max_field_size=settings.max_header_bytes,
        **kwargs,
    )


def parse_error_message(exc: BaseException | None) -> str:
    """What the client is told about a request aiohttp could not parse: the kind of fault and the limit,
    never the input (which may be megabytes, or bytes meant for a terminal or a log viewer)."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "the configured"
        return f"Request line or header too long: the limit is {limit} bytes"
    if isinstance(exc, BadHttpMethod):
        return "Bad request: unknown HTTP method"
    if isinstance(exc, BadHttpMessage):
        return "Bad request: the HTTP request could not be parsed"
    return "Bad request"


class _ConfluentErrorsProtocol(RequestHandler):
    # aiohttp's protocol keeps its attributes in slots; without these, every instance would carry a
    # `__dict__` as well, and every method looked up on it (tens per request) would search that first.
    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # As aiohttp's own: once part of a response went out, the connection is beyond repair.
            raise ConnectionError("Response is sent already, cannot send another response")
        if status >= 500:
            log.error("Failed to handle request remote=%s status=%s", request.remote, status, exc_info=exc)
            text = f"HTTP {status} {HTTPStatus(status).phrase}"
        else:
            text = parse_error_message(exc)
            log.debug("Refused an unparsable request remote=%s reason=%s", request.remote, type(exc).__name__)
        response = error_response(status, 50001 if status == 500 else status, text)
        response.force_close()
        return response


class _ConfluentErrorsServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ConfluentErrorsProtocol(self, loop=self._loop, **self._kwargs)


class _ConfluentErrorsRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        # The same server that AppRunner builds, with the protocol class above, and the serializers'
        # lookups answered before routing (`hotpath.py`).
        built = await super()._make_server()
        return _ConfluentErrorsServer(
            serve_hot_paths(self.app, built.request_handler),
            request_factory=built.request_factory,
            loop=asyncio.get_running_loop(),
            **self._kwargs,  # as `built` was given them, `handler_cancellation` included
        )
