"""The read API served in tests as `kschema api` serves it: aiohttp's test server, with the runner of
`kschema.api.server` (Confluent-shaped parse errors, the serializers' lookups answered before routing)
in place of a plain `AppRunner`."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from kschema.api.server import app_runner


class ApiTestServer(TestServer):
    """`TestServer` for an app made by `kschema.api.create_app`."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return app_runner(self.app, **kwargs)
