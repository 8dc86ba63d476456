"""``{{ ... }}`` templates rendered in Jinja2's sandbox with strict undefined variables.

A value that is one single ``{{ expression }}`` keeps the expression's type (number, boolean,
list, object); anything else renders to a string. Templates are compiled once, at load time.

Texts that people read in Slack (a checkpoint's prompt, a ``notify`` message) are Slack markup
written by the workflow's author, but the values they interpolate are data: ``render_markup``
renders them on a path whose every ``{{ }}`` output goes through ``engine.shown.escape_markup``
(Jinja2's ``finalize`` hook), so the author's ``*bold*`` works and data cannot format, mention
or link.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.shown import escape_markup

__all__ = [
    "Template",
    "TemplateFailure",
    "compile_template",
    "compile_value",
    "has_template",
    "render_markup",
    "render_value",
]

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
MAX_SIZE = 1_000_000  # characters or items one operation may produce
MAX_POWER = 10_000  # the largest exponent


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on operators that can allocate without bound (``'a' * 10**9``)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponent {right} is over the limit of {MAX_POWER}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_SIZE
                ):
                    raise SecurityError(
                        f"repeating a value {times} times is over the limit of {MAX_SIZE} items"
                    )
        return super().call_binop(context, operator, left, right)


_ENV = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _inert(value: Any) -> str:
    # str() of a StrictUndefined raises UndefinedError, naming the variable, as on the plain path
    return escape_markup(value if isinstance(value, str) else str(value))


# The same sandbox for Slack markup: every {{ }} output is data, made inert before it is output.
_MARKUP_ENV = _BoundedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_inert
)


class TemplateFailure(ValueError):
    """A template that does not parse, names an unknown variable, or fails while rendering."""


def has_template(text: str) -> bool:
    """True when ``text`` contains template syntax."""
    return "{{" in text or "{%" in text


class Template:
    """A compiled template string."""

    __slots__ = ("_expr", "_markup", "_template", "node_refs", "roots", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            ast = _ENV.parse(source)
        except TemplateError as exc:
            raise TemplateFailure(f"bad template {source!r}: {exc}") from exc
        self.roots = _roots(ast)
        self.node_refs = _node_refs(ast)
        single = _SINGLE.match(source)
        self._expr: Any = None
        self._template: Any = None
        self._markup: Any = None  # compiled on first use: only prompts and messages need it
        if single and "{{" not in single.group("expr") and "{%" not in source:
            self._expr = _ENV.compile_expression(single.group("expr"), undefined_to_none=False)
        else:
            self._template = _ENV.from_string(source)

    def render(self, scope: Mapping[str, Any]) -> Any:
        """Render with ``scope``; a single expression keeps its type.

        Raises:
            TemplateFailure: an undefined variable, a sandbox violation or any other error.
        """
        with self._failing():
            if self._expr is not None:
                value = self._expr(**scope)
                if isinstance(value, StrictUndefined):
                    str(value)  # raises UndefinedError with the variable's name
                return value
            return self._template.render(**scope)

    def render_markup(self, scope: Mapping[str, Any]) -> str:
        """Render as Slack markup: the template's own text as written, every ``{{ }}`` output
        made inert with ``escape_markup``; always a string.

        Raises:
            TemplateFailure: as ``render``.
        """
        with self._failing():
            if self._markup is None:
                self._markup = _MARKUP_ENV.from_string(self.source)
            return str(self._markup.render(**scope))

    @contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except SecurityError as exc:
            raise TemplateFailure(f"template {self.source!r} was refused by the sandbox: {exc}") from exc
        except TemplateError as exc:
            raise TemplateFailure(f"template {self.source!r} failed: {exc}") from exc
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise TemplateFailure(f"template {self.source!r} failed: {exc}") from exc


def _roots(ast: nodes.Template) -> frozenset[str]:
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(ast))


def _node_refs(ast: nodes.Template) -> frozenset[str]:
    refs: set[str] = set()
    for getattr_node in ast.find_all(nodes.Getattr):
        if isinstance(getattr_node.node, nodes.Name) and getattr_node.node.name == "nodes":
            refs.add(getattr_node.attr)
    for item in ast.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == "nodes"
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            refs.add(item.arg.value)
    return frozenset(refs)


def compile_template(source: str) -> Template:
    """Compile one template string."""
    return Template(source)


def compile_value(value: Any) -> Any:
    """Compile every template string inside a JSON-like value (dicts and lists are walked)."""
    if isinstance(value, str):
        return Template(value) if has_template(value) else value
    if isinstance(value, dict):
        return {k: compile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_value(v) for v in value]
    return value


def render_value(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render a value produced by ``compile_value`` (or a plain value, compiled on the fly)."""
    if isinstance(value, Template):
        return value.render(scope)
    if isinstance(value, str):
        return Template(value).render(scope) if has_template(value) else value
    if isinstance(value, dict):
        return {k: render_value(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, scope) for v in value]
    return value


def render_markup(value: Template | str, scope: Mapping[str, Any]) -> str:
    """Render a Slack-markup text (a prompt, a message): the author's markup is kept, the data
    each ``{{ }}`` interpolates is made inert (``Template.render_markup``)."""
    if isinstance(value, Template):
        return value.render_markup(scope)
    return Template(value).render_markup(scope) if has_template(value) else value


def walk_templates(value: Any) -> list[Template]:
    """Every Template inside a compiled value."""
    if isinstance(value, Template):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in walk_templates(v)]
    if isinstance(value, list):
        return [t for v in value for t in walk_templates(v)]
    return []
