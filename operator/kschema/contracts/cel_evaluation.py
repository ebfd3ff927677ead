"""Bounded evaluation of CEL CONDITION rules for the validate endpoint, with celpy's interpreter: a step
budget per payload and a deadline per request, on parse trees without the grammar's pass-through
wrappers, with each payload converted to CEL values once for every rule of its version."""

from __future__ import annotations

import time
from typing import Any

import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import Activation, CELEvalError, Evaluator

from kschema.contracts.cel import ENVIRONMENT, parse, split_guard

__all__ = ["MAX_STEPS", "CelBudgetExceeded", "CelMessage", "CelProgram", "bind_message", "compile_condition"]

# Evaluation bounds: a condition visits at most this many parse-tree nodes per payload, so a macro nested
# over a large list fails fast instead of holding the worker.
MAX_STEPS = 100_000


class CelBudgetExceeded(Exception):
    """An evaluation ran past its step budget or its deadline."""


class _BudgetedEvaluator(Evaluator):
    """celpy's evaluator, counting visited nodes against a budget shared with its sub-evaluators (macros)
    and checking a deadline."""

    def __init__(self, ast: lark.Tree[Any], activation: Any, budget: _Budget) -> None:
        super().__init__(ast, activation=activation)
        self._budget = budget

    def _visit_tree(self, tree: lark.Tree[Any]) -> Any:
        # lark's Interpreter routes every child visit through here, not through `visit`.
        self._budget.step()
        return super()._visit_tree(tree)

    def sub_evaluator(self, ast: lark.Tree[Any]) -> Evaluator:
        return _BudgetedEvaluator(ast, self.activation, self._budget)

    def relation(self, tree: lark.Tree[Any]) -> Any:
        """celpy 0.5's `Evaluator.relation` for a comparison, step for step, without its runtime `typing`
        casts: `cast(Tuple[List[Result], Result], ...)` hashes celpy's large `Result` union on every
        call, a quarter of a simple rule's evaluation. Other shapes go to celpy's own."""
        if len(tree.children) != 2:
            return super().relation(tree)
        left_op, _ = tree.children
        op_name = _RELATION_FUNCTIONS[left_op.data]
        func = self.activation.resolve_function(op_name)
        values: list[Any] = self.visit_children(tree)
        (left, *_), right = values
        try:
            return func(left, right)
        except TypeError as ex:
            err = (
                f"found no matching overload for {left_op.data!r} applied to '({type(left)}, {type(right)})'"
            )
            value = CELEvalError(err, ex.__class__, ex.args, tree=tree)
            value.__cause__ = ex
            return value


_RELATION_FUNCTIONS = {
    "relation_lt": "_<_",
    "relation_le": "_<=_",
    "relation_ge": "_>=_",
    "relation_gt": "_>_",
    "relation_eq": "_==_",
    "relation_ne": "_!=_",
    "relation_in": "_in_",
}


class _Budget:
    def __init__(self, steps: int, deadline: float) -> None:
        self.steps = steps
        self.deadline = deadline

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise CelBudgetExceeded(f"the rule visited more than {MAX_STEPS} expression nodes")
        if self.steps % 64 == 0 and time.monotonic() > self.deadline:
            raise CelBudgetExceeded("the rule ran past its deadline")


# The grammar's wrappers that, with a single child, only hand its value up (`expr`, `conditionalor`, ...
# around every operand): celpy's evaluator returns the child's value unchanged for each of them. `member`
# and `primary` stay, since some of celpy's rules look at them.
_PASS_THROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary"}
)


def _without_wrappers(tree: lark.Tree[Any]) -> lark.Tree[Any]:
    """A copy of a parse tree for evaluation, without the single-child pass-through wrappers: the same
    values, errors and short-circuits, in about a third of the node visits (each visit is one dispatch
    through lark and celpy, the bulk of an evaluation's cost)."""
    while tree.data in _PASS_THROUGH and len(tree.children) == 1 and isinstance(tree.children[0], lark.Tree):
        tree = tree.children[0]
    children = [_without_wrappers(c) if isinstance(c, lark.Tree) else c for c in tree.children]
    return lark.Tree(tree.data, children, tree.meta)


# What every program is evaluated in: celpy's standard functions and type annotations (read only; each
# payload gets a copy with its `message`).
_BASE_ACTIVATION = ENVIRONMENT.program(ENVIRONMENT.compile("true")).new_activation()


class CelMessage:
    """A payload bound as CEL's `message`: converted to CEL values once, then shared by every rule of
    the version (evaluation only reads it)."""

    __slots__ = ("activation",)

    def __init__(self, payload: Any) -> None:
        # As celpy's own evaluator binds variables (a copy of the base with the values loaded), once per
        # payload instead of once per rule.
        self.activation: Activation = _BASE_ACTIVATION.clone()
        self.activation.identifiers.load_values({"message": json_to_cel(payload)})


def bind_message(payload: Any) -> CelMessage:
    return CelMessage(payload)


class CelProgram:
    """A compiled CONDITION rule: `evaluate` says whether a payload satisfies it."""

    def __init__(self, expr: str) -> None:
        guard, body = split_guard(expr)
        self._guard = _without_wrappers(parse(guard)) if guard is not None else None
        self._body = _without_wrappers(parse(body))

    def evaluate(self, message: Any, deadline: float) -> bool:
        """True when the condition holds (or its guard is false). Raises `CelBudgetExceeded`, or
        `ValueError` when the expression fails on this payload (a missing field, a wrong type)."""
        return self.evaluate_bound(bind_message(message), deadline)

    def evaluate_bound(self, message: CelMessage, deadline: float) -> bool:
        """`evaluate` for a payload already bound with `bind_message`."""
        if time.monotonic() > deadline:
            raise CelBudgetExceeded("the request ran past its deadline")
        budget = _Budget(MAX_STEPS, deadline)
        for tree, skip_when_false in ((self._guard, True), (self._body, False)):
            if tree is None:
                continue
            evaluator = _BudgetedEvaluator(tree, message.activation, budget)
            try:
                value = evaluator.evaluate()
            except CELEvalError as exc:
                raise ValueError(_eval_message(exc)) from None
            except RecursionError:
                raise ValueError("the payload nests too deeply to evaluate") from None
            if not isinstance(value, celtypes.BoolType):
                raise ValueError(f"the expression gave {type(value).__name__}, not a boolean")
            if skip_when_false and not value:
                return True
            if not skip_when_false:
                return bool(value)
        return True


def _eval_message(exc: CELEvalError) -> str:
    args = [a for a in exc.args if isinstance(a, str | type)]
    text = " ".join(a.__name__ if isinstance(a, type) else a for a in args)
    return f"evaluation failed: {text or exc}"


def compile_condition(expr: str) -> CelProgram:
    return CelProgram(expr)
