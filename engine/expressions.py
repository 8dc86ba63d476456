"""``when`` conditions: CEL (Common Expression Language) through cel-python, compiled once at load.

CEL has exactly the operators workflow authors use (``&&``, ``||``, ``!``, ``==``, ``!=``, ``<``,
``>=``, ``null``, ``in``, field access) and cannot execute code or reach Python internals.

One departure from cel-python 0.5: it refuses to compare an int with a double (``3 > 2.5``),
which the current CEL specification allows. Workflow inputs arrive as JSON, where ``120`` and
``120.0`` are the same number, so comparisons promote ints to doubles when the types differ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, base_functions

# cel-python logs every variable of every evaluation at DEBUG level: run data (and values a
# workflow marks sensitive) would reach the logs of a process run with DEBUG on
logging.getLogger("celpy").setLevel(logging.WARNING)

__all__ = ["Condition", "ExpressionError", "compared_strings", "compile_condition"]


class ExpressionError(ValueError):
    """A condition that does not parse, or that cannot be evaluated on the given data."""


def _promote(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def compare(left: Any, right: Any) -> Any:
        ints = (celtypes.IntType, celtypes.UintType)
        if isinstance(left, ints) and isinstance(right, celtypes.DoubleType):
            left = celtypes.DoubleType(float(left))
        elif isinstance(right, ints) and isinstance(left, celtypes.DoubleType):
            right = celtypes.DoubleType(float(right))
        return func(left, right)

    compare.__name__ = func.__name__
    return compare


_FUNCTIONS = {op: _promote(base_functions[op]) for op in ("_<_", "_<=_", "_>_", "_>=_", "_==_", "_!=_")}
_ENV = celpy.Environment()


class Condition:
    """A compiled ``when`` condition."""

    __slots__ = ("_program", "roots", "source")

    def __init__(self, source: str, program: Any, roots: frozenset[str]) -> None:
        self.source = source
        self._program = program
        self.roots = roots

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        """Evaluate on ``scope`` (plain JSON-like values).

        Raises:
            ExpressionError: a missing field, a type mismatch, or a non-boolean result.
        """
        activation = {name: json_to_cel(scope[name]) for name in self.roots if name in scope}
        try:
            result = self._program.evaluate(activation)
        except CELEvalError as exc:
            raise ExpressionError(_eval_message(self.source, exc)) from exc
        if isinstance(result, CELEvalError):
            raise ExpressionError(_eval_message(self.source, result))
        if not isinstance(result, celtypes.BoolType):
            raise ExpressionError(f"condition {self.source!r} gave {result!r}, not true or false")
        return bool(result)


def _eval_message(source: str, exc: Exception) -> str:
    detail = exc.args[0] if exc.args else str(exc)
    return f"condition {source!r} could not be evaluated: {detail}"


def compile_condition(source: str, allowed_roots: frozenset[str]) -> Condition:
    """Parse and check a condition once, at load time.

    Args:
        source: the CEL text.
        allowed_roots: names the condition may start from (``inputs``, ``nodes``, ...).

    Raises:
        ExpressionError: bad syntax, or a name that is not one of ``allowed_roots``.
    """
    try:
        tree = _ENV.compile(source)
    except CELParseError as exc:
        column = getattr(exc, "column", None)
        where = f" at column {column}" if column else ""
        raise ExpressionError(f"bad expression {source!r}: syntax error{where}") from exc
    calls = sorted(set(_calls(tree)) - _FUNCTIONS_ALLOWED)
    if calls:
        raise ExpressionError(f"bad expression {source!r}: unknown function '{calls[0]}'")
    roots = frozenset(_identifiers(tree)) - _bound_variables(tree)
    unknown = sorted(roots - allowed_roots)
    if unknown:
        allowed = ", ".join(sorted(allowed_roots))
        raise ExpressionError(
            f"bad expression {source!r}: unknown name '{unknown[0]}' (use one of: {allowed})"
        )
    program = _ENV.program(tree, functions=_FUNCTIONS)
    return Condition(source, program, roots)


_BUILTINS = frozenset({"size", "has", "int", "double", "string", "bool", "matches", "type", "dyn"})
_FUNCTIONS_ALLOWED = frozenset({"size", "has", "int", "double", "string", "bool", "matches"})
_MACROS = frozenset({"exists", "all", "exists_one", "map", "filter"})


def _calls(tree: Any) -> list[str]:
    return [str(sub.children[0]) for sub in tree.iter_subtrees() if sub.data == "ident_arg"]


def _bound_variables(tree: Any) -> frozenset[str]:
    bound: set[str] = set()
    for sub in tree.iter_subtrees():
        if sub.data != "member_dot_arg" or len(sub.children) < 3 or str(sub.children[1]) not in _MACROS:
            continue
        exprlist = sub.children[2]
        first = exprlist.children[0] if exprlist.children else None
        if first is not None:
            bound.update(_identifiers(first)[:1])
    return frozenset(bound)


def _identifiers(tree: Any) -> list[str]:
    names: list[str] = []
    for sub in tree.iter_subtrees():
        if sub.data == "ident":
            token = sub.children[0]
            names.append(str(token))
    return [n for n in names if n not in _BUILTINS]


# nodes that only wrap their one child in the parse tree (``a`` alone is an expr of a relation ...)
_WRAPPERS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary", "member"}
)


def _unwrapped(tree: Any) -> Any:
    while getattr(tree, "data", None) in _WRAPPERS and len(tree.children) == 1:
        tree = tree.children[0]
    return tree


def _path(tree: Any) -> tuple[str, ...] | None:
    """``('response', 'action')`` for the expression ``response.action``; None for anything else."""
    tree = _unwrapped(tree)
    data = getattr(tree, "data", None)
    if data == "member_dot" and len(tree.children) == 2:
        base = _path(tree.children[0])
        return None if base is None else (*base, str(tree.children[1]))
    if data == "primary" and getattr(tree.children[0], "data", None) == "ident":
        return (str(tree.children[0].children[0]),)
    return None


def _strings(tree: Any) -> list[str] | None:
    """The value of a string literal, or of a list of string literals; None for anything else."""
    tree = _unwrapped(tree)
    if getattr(tree, "data", None) != "primary":
        return None
    child = tree.children[0]
    if getattr(child, "data", None) == "literal":
        token = str(child.children[0])
        if token[:1] in {"'", '"'} and token[-1:] == token[:1] and "\\" not in token:
            return [token[1:-1].removeprefix(token[0] * 2).removesuffix(token[0] * 2)]
        return None
    if getattr(child, "data", None) == "list_lit":
        found: list[str] = []
        for exprlist in child.children:
            for item in getattr(exprlist, "children", []):
                value = _strings(item)
                if value is None:
                    return None
                found += value
        return found
    return None


def compared_strings(source: str, path: tuple[str, ...]) -> list[str]:
    """The string constants a condition compares ``path`` with (``==``, ``!=``, ``in [...]``),
    e.g. ``['approve', 'edit']`` for ``response.action == 'approve' || response.action == 'edit'``.

    Raises:
        ExpressionError: the condition does not parse.
    """
    try:
        tree = _ENV.compile(source)
    except CELParseError as exc:
        raise ExpressionError(f"bad expression {source!r}: syntax error") from exc
    found: list[str] = []
    for relation in tree.iter_subtrees():
        # a comparison is a relation node holding [relation_eq(left), right]
        if relation.data != "relation" or len(relation.children) != 2:
            continue
        operator, right = relation.children
        if getattr(operator, "data", None) not in {"relation_eq", "relation_ne", "relation_in"}:
            continue
        left = operator.children[0]
        for a, b in ((left, right), (right, left)):
            if _path(a) == path and (values := _strings(b)) is not None:
                found += values
    return found
