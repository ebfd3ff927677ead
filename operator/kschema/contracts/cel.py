"""CEL for data contracts, with cel-python (celpy): parsing and a check of the fields an expression names
against the schema (the bounded evaluation for the validate endpoint is in `cel_evaluation`).

celpy has no type checker, so the check walks celpy's parse tree itself: every `message.a.b` must name
fields that exist, and where such a field meets a literal, an operator or `size()`, its type must fit
(`message.tokens >= 0` needs a number, `size(message.model)` a string, bytes, list or map). Fields whose
type a rule cannot know (unions, logical types, references) are not checked.

Confluent's executors accept `guard; expression`: when the guard is false the rule is skipped. Both parts
are checked here and evaluated the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy.celparser import CELParseError

from kschema.contracts.fields import FieldKind, FieldNode

__all__ = ["ENVIRONMENT", "check_expression", "iter_chains", "parse", "split_guard"]


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


def split_guard(expr: str) -> tuple[str | None, str]:
    """Confluent's `guard; expression` form, split at the first ';'."""
    guard, sep, body = expr.partition(";")
    if not sep:
        return None, expr
    return (guard if guard.strip() else None), body


ENVIRONMENT = celpy.Environment()


def parse(expr: str) -> lark.Tree[Any]:
    try:
        return ENVIRONMENT.compile(expr)
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
            tree = parse(part)
        except ValueError as exc:
            problems.append(f"{label} {exc}" if guard is not None else str(exc))
            continue
        checker = _Checker(variables)
        checker.visit(tree)
        problems += checker.errors
    return problems


def iter_chains(expr: str) -> Iterator[str]:
    """The `message.…` chains an expression names (for messages and tests)."""
    for node in parse(split_guard(expr)[1]).iter_subtrees():
        chain = _chain(node) if node.data == "member_dot" else None
        if chain is not None:
            yield ".".join([chain[0], *chain[1]])
