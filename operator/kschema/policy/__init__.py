"""Admission policy for `Subject` and `Schema` resources: pure decisions over declared specs.

The validating webhook and the offline `kschema check` share these functions, so a manifest refused in CI
is refused by the cluster with the same sentence. Nothing here does I/O: the caller hands in what is
declared (`Catalog`, the Subjects and Schemas in the cluster or in the manifests) and, optionally, what the
registry store knows (`RegistryFacts`, fetched beforehand).

Decisions made here, and why:

* A new version is compared with its *neighbours by version number*, never by arrival order, because Git
  decides version numbers and Argo CD applies files in any order. For non-transitive levels the nearest
  lower declared version is its predecessor, and the nearest higher one (if any) must accept the new
  version as its own predecessor. For transitive levels every lower version is checked, and every higher
  version must be compatible with the new one.
* Every declared version counts as history, whatever its state: a DRAFT becomes ACTIVE later, and ARCHIVED
  or DEPRECATED versions may still have data in topics. A new DRAFT is checked like any other version.
* A Schema whose Subject does not exist yet is allowed with a warning (GitOps tools apply in any order);
  when the Subject arrives, its review checks the waiting Schemas and warns about what they break, because
  refusing the Subject then would leave the whole application unsyncable.
* Deletions are never refused (Argo CD pruning must always succeed); risky ones get warnings.
* A refusal caused by something *missing* in the cluster is only as good as the caller's view; the
  webhook confirms absences with a direct read before it calls these functions.
"""

from __future__ import annotations

from kschema.formats import parse_schema
from kschema.policy.common import MAX_MESSAGES_PER_CHECK, missing_registry_references, who_schema, who_subject
from kschema.policy.inputs import (
    Catalog,
    Decision,
    Parser,
    RegisteredSchema,
    RegisteredSubject,
    RegisteredVersion,
    RegistryFacts,
)
from kschema.policy.schemas import ALLOWED_TRANSITIONS, review_schema
from kschema.policy.subjects import review_subject

__all__ = [
    "ALLOWED_TRANSITIONS",
    "MAX_MESSAGES_PER_CHECK",
    "Catalog",
    "Decision",
    "Parser",
    "RegisteredSchema",
    "RegisteredSubject",
    "RegisteredVersion",
    "RegistryFacts",
    "missing_registry_references",
    "review_catalog",
    "review_schema",
    "review_subject",
]


def review_catalog(
    catalog: Catalog, registry: RegistryFacts | None = None, *, parse: Parser = parse_schema
) -> dict[str, Decision]:
    """Reviews every declared Subject and Schema as if it were created last, against all the others, as
    `kschema check PATH...` does for a directory of manifests. Keys are `Subject ns/name` and
    `Schema ns/name`; each pair of neighbouring versions is reported from both sides."""
    decisions: dict[str, Decision] = {}
    for subject in catalog.subjects:
        decisions[who_subject(subject)] = review_subject(subject, None, catalog, registry, parse=parse)
    for schema in catalog.schemas:
        decisions[who_schema(schema)] = review_schema(schema, None, catalog, registry, parse=parse)
    return decisions
