"""A per-replica, watch-fed cache of the declared Subjects and Schemas of every namespace.

Each replica lists and watches on its own; nothing is shared, so any number of replicas can serve. The
cache can lag the API server by the watch latency; a decision that would refuse because something is
*absent* asks for `fresh_catalog()` (direct LIST calls) first, so a just-created Subject or reference is
never reported missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kubernetes_asyncio import client, watch

from kschema.compat import CompatibilityLevel
from kschema.kubeapi import Gone, KubeApiError, translated
from kschema.model import (
    GROUP,
    SCHEMA_PLURAL,
    SUBJECT_PLURAL,
    VERSION,
    SchemaSpec,
    SpecError,
    SubjectSpec,
    schema_from_body,
    subject_from_body,
)
from kschema.policy import Catalog

log = logging.getLogger(__name__)

_Key = tuple[str, str]
T = TypeVar("T")


def _key(body: Mapping[str, Any]) -> _Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _subject(body: Mapping[str, Any], default_compatibility: CompatibilityLevel) -> SubjectSpec | None:
    try:
        return subject_from_body(body, default_compatibility)
    except SpecError as exc:
        log.warning("Ignored a Subject that does not parse: resource=%s/%s error=%s", *_key(body), exc)
        return None


def _schema(body: Mapping[str, Any]) -> SchemaSpec | None:
    try:
        return schema_from_body(body)
    except SpecError as exc:
        log.warning("Ignored a Schema that does not parse: resource=%s/%s error=%s", *_key(body), exc)
        return None


class _Collection:
    """List-then-watch of one plural, resuming from the last resourceVersion and re-listing on 410."""

    def __init__(
        self, api: client.CustomObjectsApi, plural: str, timeout_seconds: int, on_change: Any
    ) -> None:
        self._api = api
        self._plural = plural
        self._timeout = timeout_seconds
        self._on_change = on_change
        self.items: dict[_Key, Mapping[str, Any]] = {}
        self.synced = asyncio.Event()

    async def list(self) -> tuple[dict[_Key, Mapping[str, Any]], str]:
        listing = await self._api.list_cluster_custom_object(GROUP, VERSION, self._plural)
        items = {_key(item): item for item in listing.get("items", [])}
        return items, str(listing.get("metadata", {}).get("resourceVersion", ""))

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                self.items, resource_version = await self.list()
                self._on_change()
                self.synced.set()
                backoff = 0.5
                while True:
                    resource_version = await self._watch(resource_version)
            except Gone:
                log.info("Re-listed after the watch expired: plural=%s", self._plural)
                continue
            except KubeApiError as exc:
                log.warning(
                    "Watch failed: plural=%s status=%s reason=%s", self._plural, exc.status, exc.reason
                )
            except (TimeoutError, OSError, ValueError) as exc:
                # aiohttp's client errors derive from OSError; ValueError covers a malformed line.
                log.warning("Watch failed: plural=%s error=%s", self._plural, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _watch(self, resource_version: str) -> str:
        stream = watch.Watch()
        # The client raises an ERROR event of the stream (410 Expired) itself, outside any request.
        with translated():
            return await self._follow(stream, resource_version)

    async def _follow(self, stream: watch.Watch, resource_version: str) -> str:
        try:
            async for event in stream.stream(
                self._api.list_cluster_custom_object,
                GROUP,
                VERSION,
                self._plural,
                resource_version=resource_version,
                timeout_seconds=self._timeout,
                allow_watch_bookmarks=True,
            ):
                kind, body = event["type"], event["raw_object"]
                resource_version = str(body.get("metadata", {}).get("resourceVersion") or resource_version)
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self.items.pop(_key(body), None)
                else:
                    self.items[_key(body)] = body
                self._on_change()
        finally:
            await stream.close()
        return resource_version


def _specs(
    items: Mapping[_Key, Mapping[str, Any]],
    known: Mapping[_Key, tuple[Mapping[str, Any], T | None]],
    read: Callable[[Mapping[str, Any]], T | None],
) -> tuple[dict[_Key, tuple[Mapping[str, Any], T | None]], list[T]]:
    """The specs of `items`, in their order, reading only the bodies `known` has not read; and what is
    known now (no more entries than `items`)."""
    now: dict[_Key, tuple[Mapping[str, Any], T | None]] = {}
    specs: list[T] = []
    for key, body in items.items():
        found = known.get(key)
        spec = found[1] if found is not None and found[0] is body else read(body)
        now[key] = (body, spec)
        if spec is not None:
            specs.append(spec)
    return now, specs


class DeclaredCache:
    """The declared Subjects and Schemas of the cluster, as a `Catalog` snapshot rebuilt on change."""

    def __init__(
        self,
        api_client: client.ApiClient,
        watch_timeout_seconds: int = 300,
        default_compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD,
    ) -> None:
        self._api = client.CustomObjectsApi(api_client)
        self._default_compatibility = default_compatibility
        self._generation = 0
        self._catalog: tuple[int, Catalog] | None = None
        # Each object's spec as last read, with the body it was read from (the watch replaces a changed
        # object's body, so an unchanged body is the same object).
        self._parsed_subjects: dict[_Key, tuple[Mapping[str, Any], SubjectSpec | None]] = {}
        self._parsed_schemas: dict[_Key, tuple[Mapping[str, Any], SchemaSpec | None]] = {}
        self._subjects = _Collection(self._api, SUBJECT_PLURAL, watch_timeout_seconds, self._changed)
        self._schemas = _Collection(self._api, SCHEMA_PLURAL, watch_timeout_seconds, self._changed)

    def _changed(self) -> None:
        self._generation += 1

    @property
    def synced(self) -> bool:
        return self._subjects.synced.is_set() and self._schemas.synced.is_set()

    async def wait_synced(self, limit_seconds: float) -> bool:
        try:
            async with asyncio.timeout(limit_seconds):
                await self._subjects.synced.wait()
                await self._schemas.synced.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Lists and watches both kinds until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._subjects.run())
            group.create_task(self._schemas.run())

    def catalog(self) -> Catalog:
        generation = self._generation
        if self._catalog is None or self._catalog[0] != generation:
            # Only the objects that changed since the last snapshot are read again: with thousands of
            # Schemas, reading them all after each watch event (a status patch) stalled the event loop
            # for tens of milliseconds, in the review that asked.
            self._parsed_subjects, subjects = _specs(
                self._subjects.items,
                self._parsed_subjects,
                lambda b: _subject(b, self._default_compatibility),
            )
            self._parsed_schemas, schemas = _specs(self._schemas.items, self._parsed_schemas, _schema)
            self._catalog = (generation, Catalog(subjects, schemas))
        return self._catalog[1]

    async def fresh_catalog(self) -> Catalog:
        """A catalog read directly from the API server (consistent reads), bypassing the watch lag."""
        subjects, _ = await self._subjects.list()
        schemas, _ = await self._schemas.list()
        return Catalog(
            [
                s
                for s in (_subject(b, self._default_compatibility) for b in subjects.values())
                if s is not None
            ],
            [s for s in map(_schema, schemas.values()) if s is not None],
        )
