"""What policy decides over and what it answers: the declared `Catalog`, the registry store's
`RegistryFacts`, and the `Decision`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kschema.formats import ParsedSchema, Reference, ResolvedReference, SchemaFormat
from kschema.model import SchemaSpec, SubjectSpec

__all__ = [
    "Catalog",
    "Decision",
    "Parser",
    "RegisteredSchema",
    "RegisteredSubject",
    "RegisteredVersion",
    "RegistryFacts",
]

Parser = Callable[[SchemaFormat, str, tuple[ResolvedReference, ...]], ParsedSchema]


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one admission: `reasons` explain a refusal, `warnings` accompany an allowed change
    (they are shown by kubectl and Argo CD)."""

    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def message(self) -> str:
        return "\n".join(self.reasons)


@dataclass(frozen=True, slots=True)
class RegisteredSubject:
    """A subject as the registry store records it (possibly tombstoned)."""

    subject: str
    namespace: str
    format: SchemaFormat
    deleted: bool = False
    transfer_to: str | None = None  # the namespace its owner hands it over to, once deleted

    def may_be_claimed_by(self, namespace: str) -> bool:
        """The store's ownership rule: the owning namespace keeps the subject, deleted or not, until it
        declares a transfer and deletes its Subject."""
        return self.namespace == namespace or (self.deleted and self.transfer_to == namespace)


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A version of a subject as the registry store records it, with its content."""

    subject: str
    version: int
    schema_id: int
    format: SchemaFormat
    schema: str
    fingerprint: str
    references: tuple[Reference, ...] = ()
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """A global schema ID and the content that holds it."""

    schema_id: int
    format: SchemaFormat
    fingerprint: str
    holders: tuple[tuple[str, int], ...] = ()  # (subject, version) pairs that use it


@dataclass(slots=True)
class RegistryFacts:
    """What the registry store says about the names one decision touches. `configured` is False when
    there is no store; `unavailable` holds the reason when it could not be read (store checks are then
    skipped with a warning, and absences cannot be confirmed)."""

    configured: bool = False
    unavailable: str = ""
    subjects: dict[str, RegisteredSubject] = field(default_factory=dict)
    versions: dict[tuple[str, int], RegisteredVersion] = field(default_factory=dict)
    schemas: dict[int, RegisteredSchema] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.configured and not self.unavailable


class Catalog:
    """The declared Subjects and Schemas (all namespaces), indexed for the lookups policy needs."""

    def __init__(self, subjects: Iterable[SubjectSpec] = (), schemas: Iterable[SchemaSpec] = ()) -> None:
        self.subjects: tuple[SubjectSpec, ...] = tuple(subjects)
        self.schemas: tuple[SchemaSpec, ...] = tuple(schemas)
        self._subject_by_resource = {(s.namespace, s.resource_name): s for s in self.subjects}
        self._subjects_by_name: dict[str, list[SubjectSpec]] = {}
        for s in self.subjects:
            self._subjects_by_name.setdefault(s.name, []).append(s)
        self._schemas_by_subject: dict[tuple[str, str], list[SchemaSpec]] = {}
        for sc in self.schemas:
            self._schemas_by_subject.setdefault((sc.namespace, sc.subject), []).append(sc)
        for group in self._schemas_by_subject.values():
            group.sort(key=lambda sc: (sc.version, sc.resource_name))

    def __reduce__(self) -> tuple[type[Catalog], tuple[tuple[SubjectSpec, ...], tuple[SchemaSpec, ...]]]:
        # Crosses into worker processes as its specs alone; the indexes are rebuilt there.
        return Catalog, (self.subjects, self.schemas)

    def subject_resource(self, namespace: str, resource_name: str) -> SubjectSpec | None:
        return self._subject_by_resource.get((namespace, resource_name))

    def subjects_named(self, registry_subject: str) -> list[SubjectSpec]:
        """Every Subject resource that declares this registry subject string."""
        return list(self._subjects_by_name.get(registry_subject, ()))

    def schemas_of(self, subject: SubjectSpec) -> list[SchemaSpec]:
        """The Schemas of a Subject resource, ordered by version number."""
        return list(self._schemas_by_subject.get((subject.namespace, subject.resource_name), ()))

    def declared_version(self, registry_subject: str, version: int) -> tuple[SubjectSpec, SchemaSpec] | None:
        """The Schema declaring `version` of a registry subject, in the namespace that declares it."""
        for subject in self.subjects_named(registry_subject):
            for schema in self.schemas_of(subject):
                if schema.version == version:
                    return subject, schema
        return None

    def without_schema(self, schema: SchemaSpec) -> Catalog:
        return Catalog(
            self.subjects,
            (
                s
                for s in self.schemas
                if (s.namespace, s.resource_name) != (schema.namespace, schema.resource_name)
            ),
        )

    def without_subject(self, subject: SubjectSpec) -> Catalog:
        return Catalog(
            (
                s
                for s in self.subjects
                if (s.namespace, s.resource_name) != (subject.namespace, subject.resource_name)
            ),
            self.schemas,
        )
