"""The catalog slice a review is sent to its worker with decides exactly as the whole catalog does: for
every create, update and delete of every Subject and Schema of a catalog with references, pinned IDs,
a registry subject claimed by two namespaces, Schemas waiting for their Subject and unrelated noise."""

from __future__ import annotations

import dataclasses

import pytest

from kschema.compat import CompatibilityLevel
from kschema.formats import Reference, SchemaFormat
from kschema.model import SchemaSpec, SchemaState, SubjectSpec
from kschema.policy import Catalog, review_schema, review_subject
from kschema.policy.slicing import schema_review_slice, subject_review_slice
from tests.unit.test_policy import ADDRESS, NEEDS_CURRENCY, SHIPPED, V1, V2, avro, sch, subj

ADDRESS_REF = Reference("com.acme.Address", "address-value", 1)


def _catalog() -> Catalog:
    subjects = [
        subj(CompatibilityLevel.FULL_TRANSITIVE),
        subj(name="address-value", resource="address"),
        subj(name="orders-value", namespace="team-b"),  # the same registry subject, claimed elsewhere
        subj(name="shipments-value", resource="shipments"),
        *(subj(name=f"noise-{i}", resource=f"noise-{i}") for i in range(20)),
    ]
    schemas = [
        sch(1, V1, pinned_id=7),
        sch(2, V2),
        sch(3, NEEDS_CURRENCY),
        sch(1, ADDRESS, subject="address"),
        sch(
            2,
            avro(("city", "string"), ("zip", "string", ""), name="Address", namespace="com.acme"),
            subject="address",
        ),
        sch(1, SHIPPED, subject="shipments", references=(ADDRESS_REF,)),
        sch(2, SHIPPED, subject="shipments", references=(ADDRESS_REF,), pinned_id=7),
        sch(1, V1, subject="orders", namespace="team-b"),
        sch(1, V1, subject="waiting"),  # its Subject is not declared yet
        sch(4, V2, state=SchemaState.DEPRECATED),
        *(sch(1, avro(("n", "long")), subject=f"noise-{i}") for i in range(20)),
    ]
    return Catalog(subjects, schemas)


def _schema_cases(catalog: Catalog) -> list[tuple[SchemaSpec | None, SchemaSpec | None]]:
    cases: list[tuple[SchemaSpec | None, SchemaSpec | None]] = []
    for schema in catalog.schemas:
        archived = dataclasses.replace(schema, state=SchemaState.ARCHIVED)
        cases += [(schema, None), (None, schema), (archived, schema)]
    cases += [
        (sch(5, SHIPPED, references=(ADDRESS_REF,)), None),
        (sch(5, V2, pinned_id=7), None),
        (sch(3, SHIPPED, subject="shipments", references=(Reference("x", "address-value", 9),)), None),
        (sch(2, V1, subject="waiting"), None),
    ]
    return cases


def _subject_cases(catalog: Catalog) -> list[tuple[SubjectSpec | None, SubjectSpec | None]]:
    cases: list[tuple[SubjectSpec | None, SubjectSpec | None]] = []
    for subject in catalog.subjects:
        looser = dataclasses.replace(subject, compatibility=CompatibilityLevel.NONE)
        stricter = dataclasses.replace(subject, compatibility=CompatibilityLevel.FULL_TRANSITIVE)
        cases += [(subject, None), (None, subject), (looser, subject), (stricter, subject)]
    waiting = SubjectSpec("waiting", "team-a", "waiting-value", SchemaFormat.AVRO, CompatibilityLevel.FULL)
    cases += [(waiting, None), (subj(name="orders-value", namespace="team-c"), None)]
    return cases


@pytest.mark.parametrize("with_reviewed", [True, False], ids=["catalog-holds-it", "catalog-lacks-it"])
def test_a_schema_review_of_the_slice_decides_as_one_of_the_whole_catalog(with_reviewed: bool) -> None:
    catalog = _catalog()
    for new, old in _schema_cases(catalog):
        spec = new or old
        assert spec is not None
        view = catalog if with_reviewed else catalog.without_schema(spec)
        part = schema_review_slice(new, old, view)
        assert len(part.schemas) < len(view.schemas)
        assert review_schema(new, old, part) == review_schema(new, old, view), (new, old)


def test_a_subject_review_of_the_slice_decides_as_one_of_the_whole_catalog() -> None:
    catalog = _catalog()
    for new, old in _subject_cases(catalog):
        part = subject_review_slice(new, old, catalog)
        assert len(part.schemas) < len(catalog.schemas)
        assert review_subject(new, old, part) == review_subject(new, old, catalog), (new, old)


def test_the_slice_of_a_version_holds_its_siblings_and_the_closure_of_their_references() -> None:
    catalog = _catalog()
    part = schema_review_slice(sch(3, SHIPPED, subject="shipments", references=(ADDRESS_REF,)), None, catalog)
    assert {(s.namespace, s.subject, s.version) for s in part.schemas} == {
        ("team-a", "shipments", 1),
        ("team-a", "shipments", 2),
        ("team-a", "address", 1),
    }
    assert {(s.namespace, s.resource_name) for s in part.subjects} == {
        ("team-a", "shipments"),
        ("team-a", "address"),
    }
