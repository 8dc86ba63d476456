"""Hostile input for the engine (issue 6 §4): generated workflow files give only ``InvalidWorkflow``;
template injection is refused by the sandbox, never rendered.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import InvalidWorkflow
from engine.loader import load_workflow_text
from engine.templates import TemplateFailure, compile_template

VALID: dict[str, Any] = yaml.safe_load(
    """\
id: pay
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - {id: prepare, type: set, data: {amount: "{{ inputs.amount }}"}}
  - id: approve
    type: human
    prompt: "Pay {{ inputs.amount }}?"
    assignee: user:bob
    options: [approve, reject]
  - {id: tell, type: notify, text: "paid"}
edges:
  - {from: prepare, to: approve}
  - {from: approve, to: tell, when: "response.action == 'approve'"}
"""
)
KEYS = [
    "id",
    "type",
    "nodes",
    "edges",
    "inputs",
    "from",
    "to",
    "when",
    "data",
    "prompt",
    "assignee",
    "options",
    "timeout",
    "escalation",
    "text",
    "request",
    "quorum",
    "response_schema",
    "entry",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "{{ inputs.amount }}",
            "{{",
            "}}",
            "{% for %}",
            "human",
            "set",
            "http",
            "1s",
            "-5m",
            "response.action ==",
            "role:nobody",
            "user:",
            "approve",
        ]
    ),
)
trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def _load(text: str) -> None:
    """Loads, or raises InvalidWorkflow that says what is wrong; any other exception fails."""
    message = "loaded"
    try:
        load_workflow_text(text, file="fuzz.yml", roles={})
    except InvalidWorkflow as exc:
        message = str(exc)
    assert message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_is_a_workflow_or_an_invalid_workflow(text: str) -> None:
    _load(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_any_yaml_tree_is_a_workflow_or_an_invalid_workflow(tree: Any) -> None:
    _load(yaml.safe_dump(tree, allow_unicode=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_valid_workflow_with_one_part_replaced_is_valid_or_invalid(data: st.DataObject) -> None:
    doc: Any = yaml.safe_load(yaml.safe_dump(VALID))
    target = doc
    path = data.draw(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=3))
    for step in path[:-1]:
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not keys or not isinstance(target, dict | list):
            break
        nxt = target[keys[step % len(keys)]]
        if not isinstance(nxt, dict | list):
            break
        target = nxt
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    if keys:
        target[keys[path[-1] % len(keys)]] = data.draw(trees)
    _load(yaml.safe_dump(doc, allow_unicode=True))


INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ inputs.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ inputs|attr('__class__') }}",
    "{{ (inputs|attr('__class__')).__mro__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ 'a'.format.__globals__ }}",
    "{{ inputs.amount.__class__.__subclasses__() }}",
    "{% set x = ''.__class__ %}{{ x.__mro__ }}",
    "{{ range(10**12)|list }}",
]


@pytest.mark.parametrize("source", INJECTIONS)
def test_template_injection_is_refused(source: str) -> None:
    scope = {"inputs": {"amount": 5}, "nodes": {}, "run": {"id": "run_1"}}
    with pytest.raises(TemplateFailure):
        compile_template(source).render(scope)


@pytest.mark.parametrize("source", INJECTIONS)
def test_template_injection_in_a_workflow_file_is_a_typed_error_at_most(source: str) -> None:
    nodes = [{"id": "prepare", "type": "set", "data": {"x": source}}]
    _load(yaml.safe_dump({**VALID, "nodes": nodes, "edges": []}))
