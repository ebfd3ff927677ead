"""`kubernetes_asyncio`'s `ApiClient`, with failed requests raising typed errors."""

from __future__ import annotations

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


class ApiClient(client.ApiClient):
    """Every generated API (`CoreV1Api(api_client)`, ...) sends its requests through `call_api`; an error
    answer raises a `KubeApiError` subclass from here, the one place requests are made."""

    async def call_api(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().call_api(*args, **kwargs)
        except ApiException as error:
            raise translate(error) from error


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
