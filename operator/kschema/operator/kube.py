"""One Kubernetes client configuration for the whole operator: kopf logs in with it and the ConfigMap and
status writes use the same credentials through `kubernetes_asyncio`."""

from __future__ import annotations

import contextlib
import inspect
import json
from pathlib import Path
from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio import client, config

from kschema.kubeapi import UNPARSED, ApiClient, Conflict, JsonBody, KubeApiError, NotFound, answer_bytes
from kschema.model import GROUP, SCHEMA_PLURAL, SUBJECT_PLURAL, VERSION
from kschema.operator.events import EventNotPosted

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


async def load_configuration(kubeconfig: Path | None) -> client.Configuration:
    """In-cluster service account when no kubeconfig is given and one is mounted, else the kubeconfig."""
    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # unannotated upstream
            return configuration
        except config.ConfigException:
            pass
        await config.load_kube_config(client_configuration=configuration, persist_config=False)
    else:
        await config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
        )
    return configuration


async def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    header: Any = configuration.get_api_key_with_prefix("BearerToken")
    if inspect.isawaitable(header):  # kubernetes-asyncio refreshes exec/OIDC tokens asynchronously
        header = await header
    scheme, token = (None, None)
    if header:
        parts = str(header).split(" ", 1)
        scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return kopf.ConnectionInfo(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file or None,
        private_key_path=configuration.key_file or None,
    )


class Kube:
    """The API calls the operator makes itself (everything else goes through kopf). Failed requests
    raise the typed errors of `kschema.kubeapi`."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    async def close(self) -> None:
        await self.api.close()

    async def patch_subject_status(self, namespace: str, name: str, status: dict[str, object]) -> None:
        await self._patch_status(SUBJECT_PLURAL, namespace, name, status)

    async def patch_schema_status(self, namespace: str, name: str, status: dict[str, object]) -> None:
        await self._patch_status(SCHEMA_PLURAL, namespace, name, status)

    async def _patch_status(self, plural: str, namespace: str, name: str, status: dict[str, object]) -> None:
        # `_content_type` is accepted at run time but missing from the generated signatures.
        await answer_bytes(
            self.custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                JsonBody({"status": status}),
                _content_type=MERGE_PATCH,
                **UNPARSED,
            )
        )

    async def annotate_schema(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        await answer_bytes(
            self.custom.patch_namespaced_custom_object(  # type: ignore[call-arg]  # as above
                GROUP,
                VERSION,
                namespace,
                SCHEMA_PLURAL,
                name,
                JsonBody({"metadata": {"annotations": annotations}}),
                _content_type=MERGE_PATCH,
                **UNPARSED,
            )
        )

    async def apply_config_map(
        self, namespace: str, name: str, body: dict[str, Any], field_manager: str
    ) -> None:
        """Server-side apply, forced: the fields in `body` become `field_manager`'s."""
        await answer_bytes(
            self.core.patch_namespaced_config_map(  # type: ignore[call-arg]  # as above
                name,
                namespace,
                body,
                field_manager=field_manager,
                force=True,
                _content_type=APPLY_PATCH,
                **UNPARSED,
            )
        )

    async def json_patch_config_map(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> None:
        await answer_bytes(
            self.core.patch_namespaced_config_map(  # type: ignore[call-arg]  # as above
                name, namespace, ops, _content_type=JSON_PATCH, **UNPARSED
            )
        )

    async def create_event(self, namespace: str, body: dict[str, Any]) -> str:
        try:
            created = await answer_bytes(
                self.core.create_namespaced_event(namespace, JsonBody(body), **UNPARSED)  # type: ignore[arg-type]  # a dict is sent as is
            )
            name = json.loads(created)["metadata"]["name"]
        except (KubeApiError, aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as error:
            raise EventNotPosted(str(error)) from error
        return str(name)

    async def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        try:
            await answer_bytes(
                self.core.patch_namespaced_event(  # type: ignore[call-arg]  # as above
                    name, namespace, JsonBody(body), _content_type=MERGE_PATCH, **UNPARSED
                )
            )
        except (KubeApiError, aiohttp.ClientError, TimeoutError) as error:
            raise EventNotPosted(str(error)) from error

    async def ensure_cluster_peering(self, name: str) -> None:
        """Creates the ClusterKopfPeering object replicas elect a leader through, when it is missing."""
        try:
            await self.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
        except NotFound:
            body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
            with contextlib.suppress(Conflict):  # another replica created it first
                await self.custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)

    async def ensure_namespaced_peering(self, namespace: str, name: str) -> None:
        try:
            await self.custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", name)
        except NotFound:
            body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
            with contextlib.suppress(Conflict):  # another replica created it first
                await self.custom.create_namespaced_custom_object(
                    "kopf.dev", "v1", namespace, "kopfpeerings", body
                )
