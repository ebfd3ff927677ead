"""`kubernetes_asyncio`'s `ApiClient`, with failed requests raising typed errors."""

from __future__ import annotations

from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.client.rest import RESTResponse

from kschema.kubeapi.errors import translate

# Pass as `**UNPARSED` to a generated API call whose answer is not used (a status patch, an apply): it
# returns the answer's bytes instead of building the generated model objects from them, which costs more
# than the request itself for a large object. Errors are raised as for any other call.
UNPARSED: dict[str, Any] = {"_preload_content": False}


class ApiClient(client.ApiClient):
    """Every generated API (`CoreV1Api(api_client)`, ...) sends its requests through `call_api`; an error
    answer raises a `KubeApiError` subclass from here, the one place requests are made."""

    async def call_api(self, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = await super().call_api(*args, **kwargs)
        except ApiException as error:
            raise translate(error) from error
        if kwargs.get("_preload_content", True) is not False:
            return answer
        # Unparsed: `kubernetes_asyncio` hands back the response as it came, neither read nor checked.
        response: aiohttp.ClientResponse = answer
        data = await response.read()  # reading it whole releases the connection
        if not 200 <= response.status <= 299:
            failed = ApiException(http_resp=RESTResponse(response, data))  # type: ignore[arg-type]  # as its own rest layer does
            raise translate(failed) from failed
        return data
