"""Data contracts: Confluent's `metadata` and `ruleSet` on a version and the default/override variants on
a subject, parsed, merged and checked against the schema; CEL conditions evaluated with a budget."""

from kschema.contracts.check import (
    CHECKED_RULE_TYPES,
    ContractReview,
    review_contract,
    review_subject_contract,
    wildcard_match,
)
from kschema.contracts.merge import (
    group_of,
    merge_metadata,
    merge_rule_sets,
    registered_contract,
    registered_contracts,
)
from kschema.contracts.model import (
    Contract,
    ContractError,
    Metadata,
    Rule,
    RuleKind,
    RuleMode,
    RuleSet,
    SubjectContract,
    contract_fingerprint,
    contract_from_json,
    metadata_from_json,
    rule_set_from_json,
)

__all__ = [
    "CHECKED_RULE_TYPES",
    "Contract",
    "ContractError",
    "ContractReview",
    "Metadata",
    "Rule",
    "RuleKind",
    "RuleMode",
    "RuleSet",
    "SubjectContract",
    "contract_fingerprint",
    "contract_from_json",
    "group_of",
    "merge_metadata",
    "merge_rule_sets",
    "metadata_from_json",
    "registered_contract",
    "registered_contracts",
    "review_contract",
    "review_subject_contract",
    "rule_set_from_json",
    "wildcard_match",
]
