"""Load-time validation: every rule names the file, the line, the node and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidWorkflow
from engine.loader import load_directory, load_workflow_text
from engine.roles import Role

ROLES = {
    "manager": Role(members=["user:mia"], escalates_to="role:senior"),
    "senior": Role(members=["user:sam"]),
}

GOOD = """\
id: refund
inputs:
  type: object
  properties:
    amount: {type: number}
  required: [amount]
nodes:
  - id: draft
    type: set
    data: {note: "{{ inputs.amount }}"}
  - id: approval
    type: human
    prompt: "Approve {{ nodes.draft.data.note }}?"
    assignee: role:manager
    timeout: 4h
  - id: done
    type: notify
    text: "ok"
edges:
  - {from: draft, to: approval, when: "inputs.amount > 100"}
  - {from: draft, to: done, when: "inputs.amount <= 100"}
  - {from: approval, to: done, when: "response.action == 'approve'"}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(InvalidWorkflow) as info:
        load_workflow_text(text, file="workflows/refund.yml", roles=ROLES)
    return [str(i) for i in info.value.issues]


def test_good_workflow_loads() -> None:
    wf = load_workflow_text(GOOD, file="workflows/refund.yml", roles=ROLES)
    assert wf.entry == "draft"
    assert set(wf.nodes) == {"draft", "approval", "done"}
    assert len(wf.content_hash) == 64


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "assignee: role:manager",
            "assignee: rol:manager",
            "workflows/refund.yml:14: node 'approval': field 'assignee': unknown assignee 'rol:manager'",
        ),
        (
            "assignee: role:manager",
            "assignee: role:boss",
            "workflows/refund.yml:14: node 'approval': field 'assignee': unknown role 'boss'",
        ),
        (
            "    type: notify",
            "    type: notfy",
            "workflows/refund.yml:17: node 'done': field 'type': unknown node type 'notfy'",
        ),
        (
            "  - id: done",
            "  - id: draft",
            "workflows/refund.yml:16: node 'draft': duplicate node id (first defined on line 8)",
        ),
        (
            "{from: approval, to: done,",
            "{from: approval, to: gone,",
            "workflows/refund.yml:22: edge approval→gone: unknown node 'gone'",
        ),
        (
            "timeout: 4h",
            "timeout: 4 hours",
            "workflows/refund.yml:15: node 'approval': field 'timeout': bad duration '4 hours'",
        ),
        (
            'when: "inputs.amount > 100"',
            'when: "inputs.amount >"',
            "workflows/refund.yml:20: field 'when': edge draft→approval: bad expression",
        ),
        ('when: "inputs.amount > 100"', 'when: "amount > 100"', "unknown name 'amount'"),
        (
            "{{ inputs.amount }}",
            "{{ input.amount }}",
            "workflows/refund.yml:10: node 'draft': field 'data': unknown template variable 'input'",
        ),
        (
            "{{ nodes.draft.data.note }}",
            "{{ nodes.done.text }}",
            "'nodes.done' is not a node that runs before 'approval'",
        ),
        (
            "    data: {note:",
            "    dta: {note:",
            "workflows/refund.yml:10: node 'draft': field 'dta': unknown field",
        ),
    ],
)
def test_each_rule_is_located(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    messages = _errors(GOOD.replace(old, new, 1))
    assert any(expected in m for m in messages), messages


def test_cycle_is_refused() -> None:
    text = GOOD + "  - {from: done, to: draft}\n"
    messages = _errors(text)
    assert any("a workflow needs exactly one entry node" in m for m in messages), messages


def test_cycle_below_entry_is_named() -> None:
    text = GOOD + "  - {from: done, to: approval}\n"
    messages = _errors(text)
    assert any("cycle approval → done → approval" in m for m in messages), messages


def test_unreachable_node() -> None:
    text = GOOD.replace("edges:\n", "  - {id: orphan, type: set}\nedges:\n").replace(
        "  - {from: draft, to: done", "  - {from: orphan, to: done", 1
    )
    messages = _errors(text)
    assert any("a workflow needs exactly one entry node" in m and "orphan" in m for m in messages), messages


def test_unreachable_island_is_reported() -> None:
    text = GOOD.replace("edges:\n", "  - {id: a, type: set}\n  - {id: b, type: set}\nedges:\n") + (
        "  - {from: a, to: b}\n  - {from: b, to: a}\n"
    )
    messages = _errors(text)
    assert any("cycle" in m for m in messages), messages


def test_yaml_syntax_error_has_line() -> None:
    messages = _errors("id: x\nnodes: [\n  - {id: a\n")
    assert messages[0].startswith("workflows/refund.yml:"), messages
    assert "not valid YAML" in messages[0]


def test_escalation_rules() -> None:
    base = GOOD.replace("    timeout: 4h\n", "    timeout: 4h\n    escalation: {action: explode}\n")
    assert any("unknown escalation action 'explode'" in m for m in _errors(base))
    no_to = GOOD.replace("assignee: role:manager", "assignee: user:U1").replace(
        "    timeout: 4h\n", "    timeout: 4h\n    escalation: escalate\n"
    )
    assert any("escalate needs 'to'" in m for m in _errors(no_to))
    late = GOOD.replace("    timeout: 4h\n", "    timeout: 4h\n    reminders: [5h]\n")
    assert any("reminder 5h comes after the timeout 4h" in m for m in _errors(late))
    endless = GOOD.replace(
        "    timeout: 4h\n", "    timeout: 4h\n    escalation: {action: escalate, to: user:U2, timeout: 1h}\n"
    )
    assert any("never ends" in m for m in _errors(endless))


def test_escalate_without_to_uses_role_escalates_to() -> None:
    text = GOOD.replace("    timeout: 4h\n", "    timeout: 4h\n    escalation: escalate\n")
    assert load_workflow_text(text, roles=ROLES).id == "refund"


def test_response_field_clash() -> None:
    text = GOOD.replace(
        "    timeout: 4h\n",
        "    timeout: 4h\n    response_schema: {type: object, properties: {action: {type: string}}}\n",
    )
    assert any("clashes with a decision field" in m for m in _errors(text))


def test_json_workflow(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        '{"id": "a", "nodes": [{"id": "s", "type": "set", "data": {"x": 1}}], "edges": []}', encoding="utf-8"
    )
    (tmp_path / "b.yml").write_text("id: b\nnodes:\n  - {id: s, type: sett}\n", encoding="utf-8")
    good, bad = load_directory(tmp_path)
    assert list(good) == ["a"]
    assert "b.yml:3: node 's': field 'type': unknown node type 'sett'" in str(bad[0])


def test_shipped_examples_validate() -> None:
    from engine.roles import load_roles
    from tests.unit.engine.test_nodes_skill import library_runner

    roles = load_roles(Path("roles.yml"))
    good, bad = load_directory(Path("workflows"), roles=roles, skills=library_runner())
    assert not bad, [str(b) for b in bad]
    assert {"refund", "ship-order", "vendor-payment"} <= set(good)


@pytest.mark.parametrize(
    ("when", "value"),
    [
        ("response.action == 'aprove'", "aprove"),
        ("'edit' == response.action", "edit"),  # not among this node's options
        ("response.action != 'rejected'", "rejected"),
        ("response.action in ['approve', 'modify']", "modify"),
        ("response.action == 'approve' || response.action == 'answer'", "answer"),
    ],
)
def test_an_edge_testing_an_option_the_node_does_not_offer_is_refused(when: str, value: str) -> None:
    text = GOOD.replace("    timeout: 4h\n", "    timeout: 4h\n    options: [approve, reject]\n").replace(
        "when: \"response.action == 'approve'\"", f'when: "{when}"'
    )
    messages = _errors(text)
    assert any(
        f"workflows/refund.yml:23: field 'when': edge approval→done: response.action is never '{value}' "
        "(node 'approval' ends with one of: approve, reject)" in m
        for m in messages
    ), messages


@pytest.mark.parametrize(
    ("node_extra", "when"),
    [
        ("    options: [approve, reject, ship_it]\n", "response.action == 'ship_it'"),
        ("    escalation: auto_reject\n    options: [approve]\n", "response.action == 'reject'"),
        ("    when: inputs.amount > 1000\n    options: [reject]\n", "response.action == 'approve'"),
        ("", "response.action == 'edit' || response.comment == 'aprove'"),  # default options
    ],
)
def test_actions_a_node_can_end_with_are_accepted(node_extra: str, when: str) -> None:
    text = GOOD.replace("    timeout: 4h\n", "    timeout: 4h\n" + node_extra).replace(
        "when: \"response.action == 'approve'\"", f'when: "{when}"'
    )
    wf = load_workflow_text(text, file="workflows/refund.yml", roles=ROLES)
    assert wf.edges[-1].when == when


def test_an_input_checkpoint_ends_with_answer_or_reject() -> None:
    text = GOOD.replace(
        "    assignee: role:manager\n",
        "    assignee: role:manager\n    kind: input\n"
        "    response_schema: {type: object, properties: {note: {type: string}}}\n",
    )
    refused = text.replace("when: \"response.action == 'approve'\"", "when: \"response.action == 'approve'\"")
    assert any("response.action is never 'approve'" in m for m in _errors(refused))
    accepted = text.replace("'approve'\"}", "'answer' || response.action == 'reject'\"}")
    assert load_workflow_text(accepted, file="w.yml", roles=ROLES).id == "refund"
