"""A version's CONDITION rules as the validate endpoint applies them: the enabled CEL conditions of its
domain rules, compiled once, evaluated per payload with a step budget and a deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kschema.contracts.cel_evaluation import CelBudgetExceeded, CelProgram, bind_message
from kschema.contracts.model import Contract, Rule, RuleKind

__all__ = ["ConditionSet", "RuleFailure"]


@dataclass(frozen=True, slots=True)
class RuleFailure:
    rule: str
    message: str


class ConditionSet:
    """`checked` are the rules applied here; `skipped` names the rules only the clients run (transforms,
    field-level conditions, other executors)."""

    def __init__(self, contract: Contract) -> None:
        self.checked: list[tuple[Rule, CelProgram]] = []
        self.skipped: list[str] = []
        rule_set = contract.rule_set
        for rule in rule_set.domain_rules if rule_set else ():
            if rule.disabled:
                continue
            if rule.kind is RuleKind.CONDITION and rule.type == "CEL" and rule.expr:
                try:
                    self.checked.append((rule, CelProgram(rule.expr)))
                except ValueError:
                    # Admission refuses such a rule; one registered before that check is reported unchecked.
                    self.skipped.append(rule.name)
            else:
                self.skipped.append(rule.name)

    def __bool__(self) -> bool:
        return bool(self.checked)

    def evaluate(self, payload: Any, deadline: float) -> list[RuleFailure]:
        """The rules `payload` breaks, in declaration order. Raises `CelBudgetExceeded` when a rule runs
        past its budget or `deadline` (a `time.monotonic()` value)."""
        failures = []
        message = bind_message(payload) if self.checked else None
        for rule, program in self.checked:
            assert message is not None
            try:
                if not program.evaluate_bound(message, deadline):
                    failures.append(RuleFailure(rule.name, f"rule '{rule.name}' failed: {rule.expr}"))
            except ValueError as exc:
                failures.append(RuleFailure(rule.name, f"rule '{rule.name}' could not be evaluated: {exc}"))
        return failures


def budget_message(exc: CelBudgetExceeded) -> str:
    return f"the data-contract rules were not all evaluated: {exc}"
