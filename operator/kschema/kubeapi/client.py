"""`kubernetes_asyncio`'s `ApiClient`, with failed requests raising typed errors."""

from __future__ import annotations

import urllib.request
from collections.abc import Awaitable
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.client.rest import RESTResponse

from kschema.kubeapi.errors import translate

# Pass as `**UNPARSED` to a generated API call whose answer is not used (a status patch, an apply), and
# await the call through `answer_bytes`: the answer's bytes instead of the generated model objects built
# from them, which cost more than the request itself for a large object.
UNPARSED: dict[str, Any] = {"_preload_content": False}


# kubernetes_asyncio's own read buffer for its session: watch events of large objects exceed aiohttp's.
READ_BUFFER_BYTES = 2**21


class JsonBody(dict[str, Any]):
    """A request body built of JSON types only (dicts, lists, strings, numbers): sent as it is, without
    the walk through every value that `sanitize_for_serialization` makes for generated model objects."""


class ApiClient(client.ApiClient):
    """Every generated API (`CoreV1Api(api_client)`, ...) sends its requests through `call_api`; an error
    answer raises a `KubeApiError` subclass from here, the one place requests are made.

    The proxy for the API server is taken from the environment (`HTTPS_PROXY`, `NO_PROXY`, as client-go
    does) once, here. kubernetes_asyncio's session trusts the environment on every request instead: aiohttp
    then looks the proxy variables up and reads `~/.netrc`, in a thread, for each request, which cost the
    operator more than the request itself in a burst of status writes."""

    def __init__(self, configuration: client.Configuration | None = None) -> None:
        super().__init__(configuration)
        rest = self.rest_client
        proxy = environment_proxy(self.configuration.host or "")
        if not rest.proxy and proxy is not None:
            rest.proxy = proxy
        trusting: aiohttp.ClientSession = rest.pool_manager
        connector = trusting.connector
        trusting.detach()  # the connector (and its TLS settings) goes on in the new session
        rest.pool_manager = aiohttp.ClientSession(
            connector=connector, trust_env=False, read_bufsize=READ_BUFFER_BYTES
        )

    def sanitize_for_serialization(self, obj: Any) -> Any:
        if isinstance(obj, JsonBody):
            return obj
        return super().sanitize_for_serialization(obj)

    async def call_api(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().call_api(*args, **kwargs)
        except ApiException as error:
            raise translate(error) from error


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY` or `HTTP_PROXY` by its scheme), unless
    `NO_PROXY` exempts its host; None when there is none."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    proxy = urllib.request.getproxies().get(scheme.lower())
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


async def answer_bytes(call: Awaitable[Any]) -> bytes:
    """The answer of a call made with `**UNPARSED`, read whole; an error answer raises its typed error,
    as for a parsed call. (`kubernetes_asyncio` hands an unparsed answer back as it came, neither read nor
    checked: its watches read theirs as a stream.)"""
    response: aiohttp.ClientResponse = await call
    data = await response.read()  # reading it whole releases the connection
    if not 200 <= response.status <= 299:
        failed = ApiException(http_resp=RESTResponse(response, data))  # type: ignore[arg-type]  # as its own rest layer does
        raise translate(failed) from failed
    return data
