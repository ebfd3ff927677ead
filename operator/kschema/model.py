"""The resource model: typed views of `Subject` and `Schema` objects, parsed from their bodies with
errors that name the field. Shared by the operator, the webhook and `kschema check`."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kschema import limits
from kschema.compat import CompatibilityLevel
from kschema.contracts import (
    Contract,
    ContractError,
    SubjectContract,
    metadata_from_json,
    rule_set_from_json,
)
from kschema.formats import Reference, SchemaFormat
from kschema.formats.base import pickled_by_fields

GROUP = "kschema.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SUBJECT_KIND, SUBJECT_PLURAL = "Subject", "subjects"
SCHEMA_KIND, SCHEMA_PLURAL = "Schema", "schemas"
FINALIZER = f"{GROUP}/registry"
LABEL_SUBJECT = f"{GROUP}/subject"  # on ConfigMaps: the Subject resource they project
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
# On a Subject: the namespace its owner hands the registry subject over to. Once the owner's Subject is
# deleted, a Subject in that namespace may claim the subject (its versions and IDs come with it).
TRANSFER_ANNOTATION = f"{GROUP}/transfer-to"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class SchemaState(enum.StrEnum):
    DRAFT = "DRAFT"  # checked and stored, never served as latest
    ACTIVE = "ACTIVE"
    DEPRECATED = "DEPRECATED"  # served, with Deprecation/Sunset headers on the read API
    ARCHIVED = "ARCHIVED"  # hidden from listings, still resolvable by ID


class SpecError(ValueError):
    """A resource field that is missing or wrong; `field` is its path, e.g. `spec.version`."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ProjectionSpec:
    """Where the Subject's versions are projected for workloads to mount."""

    enabled: bool = True
    config_map_name: str | None = None  # defaults to `<subject resource name>-schemas`


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SubjectSpec:
    resource_name: str
    namespace: str
    name: str  # the registry subject string
    format: SchemaFormat
    # The level checked: `spec.compatibility`, or the cluster-wide default when the Subject sets none.
    compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD
    projection: ProjectionSpec = field(default_factory=ProjectionSpec)
    description: str = ""
    owners: tuple[str, ...] = ()
    # Whether `spec.compatibility` is set (Confluent's subject-level config) or inherited.
    compatibility_declared: bool = True
    # Confluent's compatibilityGroup and default/override metadata and rule sets.
    contract: SubjectContract = field(default_factory=SubjectContract)
    transfer_to: str | None = None  # from the TRANSFER_ANNOTATION
    # Versions numbered up to this one are accepted as they are (`spec.acceptedHistory.throughVersion`):
    # history imported from another registry, never checked for compatibility among themselves.
    accepted_through: int | None = None

    def accepts_as_history(self, version: int) -> bool:
        """True when `version` is accepted history: it is not checked against the versions below it."""
        return self.accepted_through is not None and version <= self.accepted_through

    @property
    def config_map_name(self) -> str:
        return self.projection.config_map_name or f"{self.resource_name}-schemas"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SchemaSpec:
    resource_name: str
    namespace: str
    subject: str  # the name of a Subject resource in the same namespace
    version: int
    schema: str
    references: tuple[Reference, ...] = ()
    state: SchemaState = SchemaState.ACTIVE
    pinned_id: int | None = None
    sunset: str | None = None
    contract: Contract = field(default_factory=Contract)  # as declared, before the Subject's merge


def _spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "is required and must be an object")
    return spec


def _meta(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        raise SpecError("metadata.name", "is required")
    return str(name), str(meta.get("namespace") or "default")


def _string(spec: Mapping[str, Any], key: str, *, required: bool = False, default: str = "") -> str:
    value = spec.get(key)
    if value is None or value == "":
        if required:
            raise SpecError(f"spec.{key}", "is required")
        return default
    if not isinstance(value, str):
        raise SpecError(f"spec.{key}", f"must be a string, got {type(value).__name__}")
    return value


E = TypeVar("E", bound=enum.StrEnum)


def _enum(spec: Mapping[str, Any], key: str, kind: type[E], default: E | None) -> E:
    raw = spec.get(key)
    if raw is None:
        if default is None:
            raise SpecError(f"spec.{key}", f"is required; one of {', '.join(kind)}")
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SpecError(f"spec.{key}", f"must be one of {', '.join(kind)}, got {raw!r}") from None


def _limited_int(value: Any, field_path: str, limit: limits.IntegerLimit) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            field_path, f"must be an integer from {limit.minimum} to {limit.maximum}, got {value!r}"
        )
    try:
        limit.check(value)
    except limits.LimitError as error:
        raise SpecError(field_path, str(error)) from None
    return value


def _limited_text(value: str, field_path: str, limit: limits.TextLimit) -> str:
    try:
        limit.check(value)
    except limits.LimitError as error:
        raise SpecError(field_path, str(error)) from None
    return value


def _transfer_to(meta: Mapping[str, Any], namespace: str) -> str | None:
    annotations = meta.get("annotations") or {}
    value = annotations.get(TRANSFER_ANNOTATION) if isinstance(annotations, Mapping) else None
    if value is None or value == "":
        return None
    where = f"metadata.annotations[{TRANSFER_ANNOTATION}]"
    if (
        not isinstance(value, str)
        or len(value) > limits.NAMESPACE_NAME.max_length
        or not _DNS_LABEL.fullmatch(value)
    ):
        raise SpecError(where, f"must name a namespace (a DNS label of at most 63 characters), got {value!r}")
    if value == namespace:
        raise SpecError(
            where, f"names this Subject's own namespace {namespace}; name the receiving namespace"
        )
    return value


def subject_from_body(
    body: Mapping[str, Any], default_compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD
) -> SubjectSpec:
    """The Subject's spec; a Subject without `spec.compatibility` inherits `default_compatibility`, the
    cluster-wide level (`--default-compatibility`), as Confluent's subjects inherit the global config."""
    name, namespace = _meta(body)
    spec = _spec(body)
    projection = spec.get("projection") or {}
    if not isinstance(projection, Mapping):
        raise SpecError("spec.projection", "must be an object")
    owners = spec.get("owners") or []
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        raise SpecError("spec.owners", "must be a list of strings")
    history = spec.get("acceptedHistory")
    if history is not None and not isinstance(history, Mapping):
        raise SpecError("spec.acceptedHistory", "must be an object with throughVersion")
    through = (history or {}).get("throughVersion")
    return SubjectSpec(
        resource_name=name,
        namespace=namespace,
        name=_limited_text(_string(spec, "name", default=name), "spec.name", limits.SUBJECT_NAME),
        format=_enum(spec, "format", SchemaFormat, None),
        compatibility=_enum(spec, "compatibility", CompatibilityLevel, default_compatibility),
        compatibility_declared=spec.get("compatibility") is not None,
        projection=ProjectionSpec(
            enabled=bool(projection.get("enabled", True)),
            config_map_name=projection.get("configMapName") or None,
        ),
        description=_limited_text(_string(spec, "description"), "spec.description", limits.DESCRIPTION),
        owners=tuple(owners),
        accepted_through=(
            None
            if through is None
            else _limited_int(through, "spec.acceptedHistory.throughVersion", limits.VERSION)
        ),
        contract=subject_contract_from_spec(spec),
        transfer_to=_transfer_to(body.get("metadata") or {}, namespace),
    )


def subject_contract_from_spec(spec: Mapping[str, Any]) -> SubjectContract:
    group = spec.get("compatibilityGroup")
    if group is not None and (not isinstance(group, str) or not group or len(group) > 255):
        raise SpecError("spec.compatibilityGroup", "must be a metadata property name of 1 to 255 characters")
    try:
        return SubjectContract(
            compatibility_group=group or None,
            default_metadata=metadata_from_json(spec.get("defaultMetadata"), "spec.defaultMetadata"),
            override_metadata=metadata_from_json(spec.get("overrideMetadata"), "spec.overrideMetadata"),
            default_rule_set=rule_set_from_json(spec.get("defaultRuleSet"), "spec.defaultRuleSet"),
            override_rule_set=rule_set_from_json(spec.get("overrideRuleSet"), "spec.overrideRuleSet"),
        )
    except ContractError as exc:
        raise SpecError(exc.field, exc.reason) from None


def contract_from_spec(spec: Mapping[str, Any]) -> Contract:
    try:
        return Contract(
            metadata_from_json(spec.get("metadata"), "spec.metadata"),
            rule_set_from_json(spec.get("ruleSet"), "spec.ruleSet"),
        )
    except ContractError as exc:
        raise SpecError(exc.field, exc.reason) from None


def references_from_spec(raw: Any, field_path: str = "spec.references") -> tuple[Reference, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(field_path, "must be a list of {name, subject, version}")
    refs = []
    for i, item in enumerate(raw):
        where = f"{field_path}[{i}]"
        if not isinstance(item, Mapping):
            raise SpecError(where, "must be an object with name, subject and version")
        for key in ("name", "subject"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise SpecError(f"{where}.{key}", "is required and must be a non-empty string")
        refs.append(
            Reference(
                _limited_text(item["name"], f"{where}.name", limits.REFERENCE_NAME),
                _limited_text(item["subject"], f"{where}.subject", limits.SUBJECT_NAME),
                _limited_int(item.get("version"), f"{where}.version", limits.VERSION),
            )
        )
    return tuple(refs)


def schema_from_body(body: Mapping[str, Any]) -> SchemaSpec:
    name, namespace = _meta(body)
    spec = _spec(body)
    pinned = spec.get("id")
    sunset = _string(spec, "sunset") or None
    if sunset is not None and not limits.valid_sunset(sunset):
        raise SpecError("spec.sunset", f"must be an RFC 3339 date or date-time, got {sunset!r}")
    return SchemaSpec(
        resource_name=name,
        namespace=namespace,
        subject=_string(spec, "subject", required=True),
        version=_limited_int(spec.get("version"), "spec.version", limits.VERSION),
        schema=_limited_text(_string(spec, "schema", required=True), "spec.schema", limits.SCHEMA_TEXT),
        references=references_from_spec(spec.get("references")),
        state=_enum(spec, "state", SchemaState, SchemaState.ACTIVE),
        pinned_id=None if pinned is None else _limited_int(pinned, "spec.id", limits.SCHEMA_ID),
        sunset=sunset,
        contract=contract_from_spec(spec),
    )
