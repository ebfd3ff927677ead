"""CEL for data contracts, with cel-python (celpy): parsing, a check of the fields an expression names
against the schema, and a bounded evaluation for the validate endpoint.

celpy has no type checker, so the check walks celpy's parse tree itself: every `message.a.b` must name
fields that exist, and where such a field meets a literal, an operator or `size()`, its type must fit
(`message.tokens >= 0` needs a number, `size(message.model)` a string, bytes, list or map). Fields whose
type a rule cannot know (unions, logical types, references) are not checked.

Confluent's executors accept `guard; expression`: when the guard is false the rule is skipped. Both parts
are checked here and evaluated the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import Activation, CELEvalError, Evaluator

from kschema.contracts.fields import FieldKind, FieldNode

__all__ = [
    "CelBudgetExceeded",
    "CelMessage",
    "CelProgram",
    "bind_message",
    "check_expression",
    "compile_condition",
    "split_guard",
]

# Evaluation bounds: a condition visits at most this many parse-tree nodes per payload, so a macro nested
# over a large list fails fast instead of holding the worker.
MAX_STEPS = 100_000

_NUMERIC = frozenset({FieldKind.INT, FieldKind.DOUBLE})
_ORDERED = _NUMERIC | {FieldKind.STRING, FieldKind.BYTES}
_SIZED = frozenset({FieldKind.STRING, FieldKind.BYTES, FieldKind.LIST, FieldKind.MAP})
_LITERALS = {
    "INT_LIT": FieldKind.INT,
    "UINT_LIT": FieldKind.INT,
    "FLOAT_LIT": FieldKind.DOUBLE,
    "STRING_LIT": FieldKind.STRING,
    "MLSTRING_LIT": FieldKind.STRING,
    "BYTES_LIT": FieldKind.BYTES,
    "BOOL_LIT": FieldKind.BOOL,
    "NULL_LIT": FieldKind.NULL,
}
_RELATIONS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
}
_ARITHMETIC = {
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}
_STRING_METHODS = frozenset({"startsWith", "endsWith", "contains", "matches"})


class CelBudgetExceeded(Exception):
    """An evaluation ran past its step budget or its deadline."""


def split_guard(expr: str) -> tuple[str | None, str]:
    """Confluent's `guard; expression` form, split at the first ';'."""
    guard, sep, body = expr.partition(";")
    if not sep:
        return None, expr
    return (guard if guard.strip() else None), body


_ENV = celpy.Environment()


def _parse(expr: str) -> lark.Tree[Any]:
    try:
        return _ENV.compile(expr)
    except CELParseError as exc:
        # celpy's message is the expression with a caret under the error; keep it on one line.
        detail = " ".join(str(exc).split())
        raise ValueError(f"is not valid CEL: {detail}") from None
    except RecursionError:
        raise ValueError("is not valid CEL: the expression nests too deeply") from None


@dataclass(frozen=True, slots=True)
class _Operand:
    kind: FieldKind
    label: str  # "message.tokens" or "a string literal"


def _unwrap(node: Any) -> Any:
    """Descends through the grammar's single-child wrappers (expr -> conditionalor -> ... -> primary)."""
    while isinstance(node, lark.Tree) and len(node.children) == 1 and isinstance(node.children[0], lark.Tree):
        node = node.children[0]
    return node


def _chain(node: Any) -> tuple[str, list[str]] | None:
    """`message.a.b` as ("message", ["a", "b"]), or None when the node is not such a chain."""
    names: list[str] = []
    node = _unwrap(node)
    while isinstance(node, lark.Tree) and node.data == "member_dot":
        names.append(str(node.children[1]))
        node = _unwrap(node.children[0])
    if isinstance(node, lark.Tree) and node.data == "ident":
        return str(node.children[0]), list(reversed(names))
    return None


class _Checker:
    def __init__(self, variables: Mapping[str, FieldNode]) -> None:
        self.variables = variables
        self.errors: list[str] = []
        self._reported: set[str] = set()

    def _error(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.errors.append(message)

    def resolve(self, root: str, names: list[str]) -> FieldNode | None:
        """The field a chain names; None (after an error) when it does not exist, an ANY node when the
        schema does not say."""
        node = self.variables.get(root)
        if node is None:
            return None
        path = root
        for name in names:
            if node.kind is FieldKind.MESSAGE:
                child = node.fields.get(name)
                if child is None:
                    if node.open:
                        return FieldNode(FieldKind.ANY)
                    known = ", ".join(sorted(node.fields)[:20]) or "none"
                    self._error(f"{path}.{name}: the schema has no field '{name}' here (its fields: {known})")
                    return None
                node = child
            elif node.kind in (FieldKind.ANY, FieldKind.MAP):
                return FieldNode(FieldKind.ANY)
            else:
                self._error(f"{path}.{name}: {path} is a {node.kind}, which has no field '{name}'")
                return None
            path = f"{path}.{name}"
        return node

    def operand(self, node: Any) -> _Operand | None:
        node = _unwrap(node)
        if isinstance(node, lark.Tree) and node.data == "literal":
            token = node.children[0]
            kind = _LITERALS.get(getattr(token, "type", ""), FieldKind.ANY)
            return _Operand(kind, f"{'an' if kind is FieldKind.INT else 'a'} {kind} literal")
        chain = _chain(node)
        if chain is not None and chain[0] in self.variables and chain[1]:
            found = self.resolve(*chain)
            if found is None:
                return None
            return _Operand(found.kind, ".".join([chain[0], *chain[1]]))
        if isinstance(node, lark.Tree) and node.data in ("ident_arg", "member_dot_arg"):
            name = str(node.children[0] if node.data == "ident_arg" else node.children[1])
            if name == "size":
                return _Operand(FieldKind.INT, "size()")
        return None

    def visit(self, tree: lark.Tree[Any]) -> None:
        for node in tree.iter_subtrees():
            data = str(node.data)  # a lark Token, which does not hash like the plain string
            if data == "member_dot":
                chain = _chain(node)
                if chain is not None and chain[0] in self.variables:
                    self.resolve(*chain)
            elif data in ("relation", "addition", "multiplication") and len(node.children) == 2:
                # Binary operators parse as parent(op(left), right), e.g. relation(relation_ge(a), b).
                op_node, right = node.children
                op = str(getattr(op_node, "data", ""))
                if not isinstance(op_node, lark.Tree) or not op_node.children:
                    continue
                if op in _RELATIONS:
                    self._relation(op_node.children[0], right, _RELATIONS[op])
                elif op in _ARITHMETIC:
                    self._arithmetic(op_node.children[0], right, _ARITHMETIC[op])
            elif data == "ident_arg" and str(node.children[0]) == "size" and len(node.children) > 1:
                args = node.children[1]
                if isinstance(args, lark.Tree) and len(args.children) == 1:
                    self._sized(self.operand(args.children[0]))
            elif data == "member_dot_arg":
                method = str(node.children[1])
                target = self.operand(node.children[0])
                if method == "size":
                    self._sized(target)
                elif (
                    method in _STRING_METHODS
                    and target is not None
                    and target.kind not in (FieldKind.STRING, FieldKind.ANY)
                ):
                    self._error(f"{target.label} is a {target.kind}; {method}() needs a string")

    def _sized(self, op: _Operand | None) -> None:
        if op is not None and op.kind not in _SIZED | {FieldKind.ANY}:
            self._error(f"{op.label} is a {op.kind}; size() needs a string, bytes, a list or a map")

    def _arithmetic(self, left_node: Any, right_node: Any, symbol: str) -> None:
        for child in (left_node, right_node):
            op = self.operand(child)
            if op is not None and op.kind not in _NUMERIC | {FieldKind.ANY}:
                self._error(f"{op.label} is a {op.kind}; '{symbol}' needs a number")

    def _relation(self, left_node: Any, right_node: Any, symbol: str) -> None:
        left = self.operand(left_node)
        right = self.operand(right_node)
        if left is None or right is None:
            return
        kinds = {left.kind, right.kind}
        if FieldKind.ANY in kinds:
            return
        if symbol in ("==", "!="):
            if FieldKind.NULL in kinds or len(kinds) == 1 or kinds <= _NUMERIC:
                return
        else:
            for op in (left, right):
                if op.kind not in _ORDERED:
                    self._error(f"{op.label} is a {op.kind}; '{symbol}' needs numbers, strings or bytes")
                    return
            if len(kinds) == 1 or kinds <= _NUMERIC:
                return
        self._error(f"{left.label} is a {left.kind} but is compared ('{symbol}') with {right.label}")


def check_expression(expr: str, variables: Mapping[str, FieldNode]) -> list[str]:
    """Parses a CEL rule expression (with its optional guard) and checks the fields it names; returns the
    problems as sentences (empty when there are none). Raises nothing."""
    guard, body = split_guard(expr)
    problems: list[str] = []
    for part, label in ((guard, "guard"), (body, "expression")):
        if part is None:
            continue
        try:
            tree = _parse(part)
        except ValueError as exc:
            problems.append(f"{label} {exc}" if guard is not None else str(exc))
            continue
        checker = _Checker(variables)
        checker.visit(tree)
        problems += checker.errors
    return problems


# Evaluation ---------------------------------------------------------------------------------------------


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
_BASE_ACTIVATION = _ENV.program(_ENV.compile("true")).new_activation()


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
        self._guard = _without_wrappers(_parse(guard)) if guard is not None else None
        self._body = _without_wrappers(_parse(body))

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


def iter_chains(expr: str) -> Iterator[str]:
    """The `message.…` chains an expression names (for messages and tests)."""
    for node in _parse(split_guard(expr)[1]).iter_subtrees():
        chain = _chain(node) if node.data == "member_dot" else None
        if chain is not None:
            yield ".".join([chain[0], *chain[1]])
