"""Reading `Subject` and `Schema` resources out of manifest files (multi-document YAML or JSON, `List`
kinds), each with the place it was declared, so every finding can point at a file and a document.

Pure: the caller reads the bytes (from disk or from a Git revision) and hands in the text. Documents of
other kinds (ConfigMaps, Deployments, Helm values, CI workflows) are kept aside as `Ignored`, because a
directory of manifests in Git holds much more than kschema resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import yaml

from kschema.model import (
    API_VERSION,
    GROUP,
    SCHEMA_KIND,
    SUBJECT_KIND,
    SchemaSpec,
    SpecError,
    SubjectSpec,
    schema_from_body,
    subject_from_body,
)

__all__ = [
    "Declared",
    "Ignored",
    "Location",
    "ManifestProblem",
    "Manifests",
    "parse_manifests",
]

S = TypeVar("S", SubjectSpec, SchemaSpec)

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestLoader(_BaseLoader):  # type: ignore[valid-type,misc]  # chosen at import: C or pure loader
    """YAML as the API server reads it: an unquoted date such as `sunset: 2030-01-01` stays the string the
    cluster stores, instead of becoming a `datetime.date` that `spec.sunset` would refuse."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Location:
    """Where an object was declared: `document` counts the YAML documents of the file from 1 (0 stands
    for the whole file), `item` is the index in a `List` kind's `items`, `line` (from 1) is where the
    object starts, when known."""

    path: str
    document: int
    line: int | None = None
    item: int | None = None

    def __str__(self) -> str:
        if self.document == 0:
            return self.path
        where = f"{self.path}: document {self.document}"
        return where if self.item is None else f"{where}, items[{self.item}]"


@dataclass(frozen=True, slots=True)
class Declared(Generic[S]):
    """A parsed resource and where it was declared."""

    spec: S
    location: Location

    @property
    def who(self) -> str:
        kind = SUBJECT_KIND if isinstance(self.spec, SubjectSpec) else SCHEMA_KIND
        return f"{kind} {self.spec.namespace}/{self.spec.resource_name}"


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """A document that could not be used. `unusable` is True when the file itself is broken (not YAML,
    not JSON, not UTF-8): its other resources are unknown. Otherwise one kschema resource has a bad field
    (`who` names it) and is refused, as the admission webhook would refuse it."""

    location: Location
    message: str
    unusable: bool
    who: str | None = None
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """A document that is not a kschema resource."""

    location: Location
    api_version: str
    kind: str
    name: str


@dataclass(slots=True)
class Manifests:
    subjects: list[Declared[SubjectSpec]] = field(default_factory=list)
    schemas: list[Declared[SchemaSpec]] = field(default_factory=list)
    problems: list[ManifestProblem] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)

    def extend(self, other: Manifests) -> None:
        self.subjects += other.subjects
        self.schemas += other.schemas
        self.problems += other.problems
        self.ignored += other.ignored


def parse_manifests(text: str, path: str, *, namespace: str, as_json: bool = False) -> Manifests:
    """Reads every document of one file. Objects without `metadata.namespace` land in `namespace`, as
    `kubectl apply -n NAMESPACE -f` puts them. `path` is only used to label locations."""
    found = Manifests()
    try:
        for document, lines, body in _documents(text, path, as_json):
            _classify(body, Location(path, document, lines[0]), namespace, found, lines[1:])
    except _SyntaxProblem as exc:
        found.problems.append(ManifestProblem(exc.location, exc.message, unusable=True))
    return found


class _SyntaxProblem(Exception):
    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def _documents(text: str, path: str, as_json: bool) -> Iterator[tuple[int, list[int], Any]]:
    """Yields (document number, lines, data) for each document: `lines[0]` is where the document starts,
    `lines[1 + i]` where `items[i]` starts when the document is a list kind. A JSON file is one document
    whose lines are not tracked."""
    if as_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _SyntaxProblem(
                Location(path, 1, exc.lineno),
                f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}",
            ) from None
        yield 1, [1], data
        return
    loader = _ManifestLoader(text)
    document = 0
    try:
        # `check_node`/`get_node` are what `yaml.load_all` runs underneath; going one level down keeps
        # the node, and with it the line each document starts on.
        while True:
            document += 1  # a syntax error belongs to the document being read when it is raised
            if not loader.check_node():
                break
            node = loader.get_node()
            if node is None:
                continue
            yield document, _lines(node), loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        reason = f"{problem} ({context})" if context else str(problem)
        raise _SyntaxProblem(
            Location(path, document, mark.line + 1 if mark is not None else None),
            f"{where}invalid YAML: {reason}",
        ) from None
    finally:
        loader.dispose()


def _lines(node: yaml.Node) -> list[int]:
    lines = [node.start_mark.line + 1]
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value == "items"
                and isinstance(value, yaml.SequenceNode)
            ):
                lines += [item.start_mark.line + 1 for item in value.value]
    return lines


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _classify(
    body: Any, location: Location, namespace: str, found: Manifests, item_lines: list[int] | None = None
) -> None:
    if not isinstance(body, Mapping):
        found.ignored.append(Ignored(location, "", "", ""))
        return
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    api_version = api_version if isinstance(api_version, str) else ""
    kind = kind if isinstance(kind, str) else ""
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    name = name if isinstance(name, str) else ""

    items = body.get("items")
    if kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            line = item_lines[index] if item_lines and index < len(item_lines) else None
            _classify(item, Location(location.path, location.document, line, index), namespace, found)
        return
    ours = _group(api_version) == GROUP or (not api_version and kind in (SUBJECT_KIND, SCHEMA_KIND))
    if not ours:
        found.ignored.append(Ignored(location, api_version, kind, name))
        return

    declared_namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
    resource_namespace = (
        declared_namespace if isinstance(declared_namespace, str) and declared_namespace else namespace
    )
    who = f"{kind or 'object'} {resource_namespace}/{name or '<unnamed>'}"
    try:
        if not api_version:
            raise SpecError("apiVersion", f"is required; kschema resources use {API_VERSION}")
        if api_version != API_VERSION:
            raise SpecError("apiVersion", f"must be {API_VERSION}, got {api_version!r}")
        if kind not in (SUBJECT_KIND, SCHEMA_KIND):
            raise SpecError("kind", f"must be {SUBJECT_KIND} or {SCHEMA_KIND}, got {kind!r}")
        if meta is not None and not isinstance(meta, Mapping):
            raise SpecError("metadata", "must be an object")
        with_namespace = {**body, "metadata": {**(meta or {}), "namespace": resource_namespace}}
        if kind == SUBJECT_KIND:
            found.subjects.append(Declared(subject_from_body(with_namespace), location))
        else:
            found.schemas.append(Declared(schema_from_body(with_namespace), location))
    except SpecError as exc:
        found.problems.append(ManifestProblem(location, f"{who}: {exc}", unusable=False, who=who, kind=kind))
