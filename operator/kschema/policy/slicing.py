"""The part of a `Catalog` one review reads.

A review runs in a worker process, and its inputs cross a pipe: with thousands of declared Schemas,
copying the whole catalog costs more than the review itself. `schema_review_slice` and
`subject_review_slice` keep exactly what `review_schema` and `review_subject` look up (the reviewed
resource's Subject, every Subject with the same registry name, its declared versions, the closure of
their references, the holders of a pinned ID, the referrers of a deleted version), so a review of the
slice decides as a review of the whole catalog does. Every lookup of the policy answers the same on
both; `tests/unit/test_policy_slicing.py` checks the decisions themselves.
"""

from __future__ import annotations

from kschema.formats import Reference
from kschema.model import SchemaSpec, SubjectSpec
from kschema.policy.inputs import Catalog

__all__ = ["schema_review_slice", "subject_review_slice"]


def schema_review_slice(new: SchemaSpec | None, old: SchemaSpec | None, catalog: Catalog) -> Catalog:
    """What `review_schema(new, old, catalog, ...)` reads of `catalog`."""
    spec = new or old
    if spec is None:
        raise ValueError("a Schema review needs the new or the old Schema")
    picked = _Picked(catalog)
    picked.resource(spec.namespace, spec.subject)
    for schema in (new, old):
        if schema is not None:
            picked.schema(schema)
    if new is not None and new.pinned_id is not None:
        # `_pinned_in_cluster` parses every other holder of the pinned ID.
        for other in catalog.schemas:
            if other.pinned_id == new.pinned_id:
                picked.schema(other)
                picked.resource(other.namespace, other.subject)
    if new is None:
        # A deletion warns about the Schemas that still refer to the deleted version.
        subject = catalog.subject_resource(spec.namespace, spec.subject)
        if subject is not None:
            for other in catalog.schemas:
                if any(r.subject == subject.name for r in other.references):
                    picked.schema(other)
    return picked.catalog()


def subject_review_slice(new: SubjectSpec | None, old: SubjectSpec | None, catalog: Catalog) -> Catalog:
    """What `review_subject(new, old, catalog, ...)` reads of `catalog`."""
    picked = _Picked(catalog)
    for subject in (new, old):
        if subject is not None:
            picked.named(subject.name)
            picked.resource(subject.namespace, subject.resource_name, subject)
    return picked.catalog()


class _Picked:
    """Subjects and Schemas chosen from a catalog, with the closure of their references, kept in the
    catalog's own order (lookups that return the first match must return the same one). Specs that are
    not in the catalog (the one under review) are never added, but their references are followed."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._subjects: set[int] = set()
        self._schemas: set[int] = set()
        self._followed: set[tuple[str, int]] = set()
        self._pending: list[Reference] = []

    def subject(self, subject: SubjectSpec) -> None:
        self._subjects.add(id(subject))

    def schema(self, schema: SchemaSpec) -> None:
        if id(schema) not in self._schemas:
            self._schemas.add(id(schema))
            self._pending.extend(schema.references)

    def named(self, registry_subject: str) -> None:
        """Every Subject declaring a registry subject string (ownership checks read them all)."""
        for subject in self._catalog.subjects_named(registry_subject):
            self.subject(subject)

    def resource(self, namespace: str, resource_name: str, spec: SubjectSpec | None = None) -> None:
        """A Subject resource, every Subject with its registry name, and its declared versions (also
        when the Subject itself is not declared yet: `spec` is then the one under review)."""
        subject = self._catalog.subject_resource(namespace, resource_name) or spec
        if subject is None:
            return
        self.subject(subject)
        self.named(subject.name)
        for schema in self._catalog.schemas_of(subject):
            self.schema(schema)

    def _follow(self) -> None:
        while self._pending:
            ref = self._pending.pop()
            key = (ref.subject, ref.version)
            if key in self._followed:
                continue
            self._followed.add(key)
            for subject in self._catalog.subjects_named(ref.subject):
                self.subject(subject)
                for schema in self._catalog.schemas_of(subject):
                    if schema.version == ref.version:
                        self.schema(schema)

    def catalog(self) -> Catalog:
        self._follow()
        return Catalog(
            (s for s in self._catalog.subjects if id(s) in self._subjects),
            (s for s in self._catalog.schemas if id(s) in self._schemas),
        )
