"""`kubernetes_asyncio`'s `ApiClient`, with failed requests raising typed errors."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from kschema.kubeapi.errors import translate


class ApiClient(client.ApiClient):
    """Every generated API (`CoreV1Api(api_client)`, ...) sends its requests through `call_api`; an error
    answer raises a `KubeApiError` subclass from here, the one place requests are made."""

    async def call_api(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().call_api(*args, **kwargs)
        except ApiException as error:
            raise translate(error) from error
