"""The steps the GitOps tests share: create the Application, wait for a revision to be synced, read the
live objects and the Events as `kubectl describe` and Argo CD's resource view list them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from tests.gitops.conftest import APP, NAMESPACE
from tests.harness.argocd import ArgoCD, GitRepo

KSCHEMA_KINDS = ("Subject", "Schema")


def declared(repo: GitRepo) -> set[tuple[str, str]]:
    """(kind, name) of every Subject and Schema in the repository's working copy."""
    found = set()
    for path in (repo.work / "contracts").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in KSCHEMA_KINDS:
                found.add((str(doc["kind"]), str(doc["metadata"]["name"])))
    return found


def status(app: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = app.get("status") or {}
    return found


def synced(revision: str, *, healthy: bool = True) -> Any:
    """The Application compared `revision` and found it in sync (and Healthy), and no operation runs."""

    def check(app: Mapping[str, Any]) -> bool:
        st = status(app)
        sync = st.get("sync") or {}
        operation = st.get("operationState") or {}
        return bool(
            sync.get("status") == "Synced"
            and sync.get("revision") == revision
            and (not healthy or (st.get("health") or {}).get("status") == "Healthy")
            and operation.get("phase") in (None, "Succeeded")
            and "operation" not in app
        )

    return check


def create(
    argocd: ArgoCD,
    repo: GitRepo,
    *,
    sync_options: tuple[str, ...] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Creates the Application and waits until the repository's HEAD is Synced and Healthy."""
    head = repo.commit("Nothing new")  # a known revision to wait for
    argocd.apply(
        argocd.application(
            APP, repo, "contracts", NAMESPACE, sync_options=sync_options, annotations=annotations
        )
    )
    return argocd.wait(APP, f"Synced and Healthy at {head}", synced(head))


def push(argocd: ArgoCD, repo: GitRepo, message: str) -> str:
    """Commits, pushes and asks Argo CD to look at git now instead of at its next resync."""
    head = repo.commit(message)
    argocd.refresh(APP)
    return head


def live(argocd: ArgoCD, what: str = "subjects,schemas") -> dict[tuple[str, str], dict[str, Any]]:
    items = json.loads(argocd.cluster.kubectl("get", "-n", NAMESPACE, what, "-o", "json").stdout)["items"]
    return {(o["kind"], o["metadata"]["name"]): o for o in items}


def ready_message(obj: Mapping[str, Any]) -> str:
    return next(str(c["message"]) for c in obj["status"]["conditions"] if c["type"] == "Ready")


def resource_events(argocd: ArgoCD, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Events of one object, listed as Argo CD's resource view lists them (argocd-server's
    ListResourceEvents: a field selector on the involved object's name, namespace and uid)."""
    meta = obj["metadata"]
    selector = (
        f"involvedObject.name={meta['name']},involvedObject.namespace={meta['namespace']},"
        f"involvedObject.uid={meta['uid']}"
    )
    listed = argocd.cluster.kubectl(
        "get", "events", "-n", meta["namespace"], "--field-selector", selector, "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def events_named(argocd: ArgoCD, name: str) -> list[dict[str, Any]]:
    """Events about an object of this name, also after the object is gone."""
    listed = argocd.cluster.kubectl(
        "get", "events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def wait_for_event(
    listed: Callable[[], list[dict[str, Any]]], wanted: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> list[dict[str, Any]]:
    """The Events `listed` returns once one of them is `wanted`. The operator posts its Events from a
    rate-limited queue after the change they describe, so an Event can trail the registry and the status."""
    deadline = time.monotonic() + timeout
    while True:
        events = listed()
        if any(wanted(e) for e in events):
            return events
        assert time.monotonic() < deadline, events
        time.sleep(0.5)


def describe(argocd: ArgoCD, kind: str, name: str) -> str:
    return argocd.cluster.kubectl("describe", "-n", NAMESPACE, kind, name).stdout


def remove_document(repo: GitRepo, path: str, name: str) -> str:
    """Removes the document of `metadata.name: name` from a multi-document YAML file; returns it."""
    file = repo.work / path
    docs = file.read_text().split("\n---\n")
    keep = [d for d in docs if f"metadata:\n  name: {name}\n" not in f"{d}\n"]
    if len(keep) != len(docs) - 1:
        raise AssertionError(f"{path} has no single document named {name}")
    file.write_text("\n---\n".join(keep))
    return next(d for d in docs if d not in keep)
