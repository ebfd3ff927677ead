"""The TokenReview client behind the read API's authentication (`authentication.k8s.io/v1`)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException

from kschema.api.auth import Identity, ReviewUnavailableError
from kschema.kubeapi import ApiClient, KubeApiError


class KubeTokenReviewer:
    """Asks the API server whose token it is. Needs `create` on `tokenreviews` (the chart's ClusterRole
    grants it when authentication is on)."""

    def __init__(self, api_client: ApiClient) -> None:
        self._api_client = api_client
        self._api = client.AuthenticationV1Api(api_client)

    @classmethod
    async def connect(cls, kubeconfig: Path | None) -> KubeTokenReviewer:
        configuration = client.Configuration()
        if kubeconfig is not None:
            await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        else:
            try:
                # kubernetes_asyncio leaves this function unannotated.
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except ConfigException:
                await config.load_kube_config(client_configuration=configuration)
        return cls(ApiClient(configuration))

    async def review(self, token: str, audience: str) -> Identity | None:
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=[audience]))
        try:
            answer = await self._api.create_token_review(body)
        except KubeApiError as exc:
            raise ReviewUnavailableError(f"the API server answered {exc.status} {exc.reason}") from None
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise ReviewUnavailableError(f"the API server could not be reached: {exc}") from None
        status = answer.status
        if status is None or not status.authenticated or status.user is None or not status.user.username:
            return None
        # The API server only authenticates a token for an audience it was minted for, and then lists
        # the audiences it matched; checking it here too costs nothing.
        if audience not in (status.audiences or ()):
            return None
        return Identity(username=str(status.user.username))

    async def close(self) -> None:
        await self._api_client.close()
