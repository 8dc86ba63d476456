"""Conditions cannot run code; templates cannot reach Python internals."""

from __future__ import annotations

import pytest

from engine.expressions import ExpressionError, compile_condition
from engine.templates import TemplateFailure, compile_template, render_value

ROOTS = frozenset({"inputs", "nodes", "response", "run"})
SCOPE = {
    "inputs": {"amount": 120, "tags": ["vip"], "note": None},
    "nodes": {"draft": {"data": {"confidence": 0.75}}},
    "response": {"action": "edit", "approved": True, "corrections": None},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("inputs.amount > 100 || nodes.draft.data.confidence < 0.8", True),
        ("inputs.amount <= 100 && nodes.draft.data.confidence >= 0.8", False),
        ("response.action == 'approve' || response.action == 'edit'", True),
        ("response.approved == true && response.corrections != null", False),
        ("response.corrections == null", True),
        ("!(inputs.amount < 100)", True),
        ("'vip' in inputs.tags", True),
        ("inputs.amount >= 120.0", True),
        ("inputs.note == null", True),
    ],
)
def test_conditions(source: str, expected: bool) -> None:
    assert compile_condition(source, ROOTS).evaluate(SCOPE) is expected


@pytest.mark.parametrize(
    "source",
    ["__import__('os').system('id')", "inputs.amount >", "open('/etc/passwd')", "secrets.key == 1"],
)
def test_bad_conditions_refused_at_compile(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_condition(source, ROOTS)


def test_missing_field_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="no such member"):
        compile_condition("inputs.missing > 1", ROOTS).evaluate(SCOPE)


def test_single_expression_keeps_type() -> None:
    assert compile_template("{{ inputs.amount }}").render(SCOPE) == 120
    assert compile_template("{{ inputs.tags }}").render(SCOPE) == ["vip"]
    assert compile_template("n={{ inputs.amount }}").render(SCOPE) == "n=120"
    assert render_value({"a": ["{{ inputs.amount > 100 }}"]}, SCOPE) == {"a": [True]}


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ inputs.__class__.__init__.__globals__ }}",
        "{{ ().__class__.__bases__[0].__subclasses__() }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ 'a' * 10**9 }}",
        "{{ [0] * 100000000 }}",
        "{{ 10 ** 100000000 }}",
        "{{ 99999999 * 'x' }}",
    ],
)
def test_template_injection_is_refused(source: str) -> None:
    with pytest.raises(TemplateFailure):
        compile_template(source).render(SCOPE)


def test_undefined_is_strict() -> None:
    with pytest.raises(TemplateFailure, match="has no attribute 'nope'"):
        compile_template("{{ inputs.nope }}").render(SCOPE)
