"""The CLI shows what a decision executes: ``tasks``, ``show`` and ``respond`` print every proposed
field in full, labelled, name the checkpoint's version, and ``respond --version`` refuses a
stale one. Data is printed as text: no Rich markup, no terminal control sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.e2e._cli import empty_cli, invoke

PAY = """\
id: pay
title: Supplier payment
inputs:
  type: object
  properties:
    customer: {type: string}
    account: {type: string}
    note: {type: string}
  required: [customer, account, note]
nodes:
  - id: approve
    type: human
    title: "Pay {{ inputs.customer }}"
    prompt: "Pay *{{ inputs.customer }}*?"
    context: {customer: "{{ inputs.customer }}", note: "{{ inputs.note }}"}
    proposed:
      account: "{{ inputs.account }}"
      amount: 120
      lines: [{sku: A, qty: 2}]
    options: [approve, reject, edit]
    quorum: QUORUM
    response_schema:
      type: object
      properties:
        account: {type: string, title: Account}
        amount: {type: number, title: Amount (USD)}
        lines: {type: array, title: Invoice lines}
    assignee: [user:bob, user:carol, user:dave]
"""
ATTACKER = "DE00-ATTACKER-9999"
DECOY = "Invoice 42.\n*Account*\nDE89-REAL-PAYROLL"
# what every human-readable output must show, each as "Label (field): value" on its own line
FIELDS = {
    "account": f"Account (account): {ATTACKER}",
    "amount": "Amount (USD) (amount): 120",
    "lines": 'Invoice lines (lines): [{"sku": "A", "qty": 2}]',
}


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI on a fresh database (SQLite, and PostgreSQL when configured)."""
    return empty_cli(monkeypatch, tmp_path, database_url, roles="{}\n")


def _start(cli: CliRunner, quorum: int = 1, customer: str = "ACME") -> dict[str, Any]:
    workflow = PAY.replace("QUORUM", str(quorum))
    (Path.cwd() / "workflows" / "pay.yml").write_text(workflow)
    inputs = ["-i", f"customer={customer}", "-i", f"account={ATTACKER}", "-i", f"note={DECOY}"]
    run = json.loads(invoke(cli, "run", "pay", *inputs, "--as", "alice", "--json").output)
    [task] = json.loads(invoke(cli, "tasks", "--json").output)
    assert task["run_id"] == run["id"]
    return dict(task)


def _shows_every_field(output: str) -> None:
    lines = [line.strip() for line in output.splitlines()]
    for field, line in FIELDS.items():
        assert line in lines, f"{field} is not shown in full: {output}"


def test_tasks_shows_each_proposal_in_full_with_its_version(cli: CliRunner) -> None:
    task = _start(cli)
    assert task["version"] == 0
    assert task["proposed"] == {"account": ATTACKER, "amount": 120, "lines": [{"sku": "A", "qty": 2}]}
    assert [(p["field"], p["label"]) for p in task["proposal"]] == [
        ("account", "Account"),
        ("amount", "Amount (USD)"),
        ("lines", "Invoice lines"),
    ]
    out = invoke(cli, "tasks").output
    _shows_every_field(out)
    assert f"checkpoint {task['id']} (version 0): Pay ACME" in out
    # the decoy note is context, indented under its own label, never a line of the proposal
    assert "Note: Invoice 42." in out
    assert "Account (account): DE89-REAL-PAYROLL" not in out


def test_show_prints_the_open_checkpoints_of_a_run(cli: CliRunner) -> None:
    task = _start(cli)
    _shows_every_field(invoke(cli, "show", task["run_id"]).output)
    shown = json.loads(invoke(cli, "show", task["run_id"], "--json").output)
    [cp] = shown["checkpoints"]
    assert (cp["id"], cp["version"], cp["status"]) == (task["id"], 0, "open")
    assert cp["proposed"]["account"] == ATTACKER


def test_respond_prints_the_proposal_and_refuses_a_stale_version(cli: CliRunner) -> None:
    task = _start(cli)
    stale = invoke(cli, "respond", task["id"], "approve", "--as", "bob", "--version", "3", code=2)
    _shows_every_field(stale.output)
    assert "version 3 of this request never existed" in stale.output
    assert json.loads(invoke(cli, "tasks", "--json").output), "nothing was decided"
    done = invoke(cli, "respond", task["id"], "approve", "--as", "bob", "--version", "0")
    _shows_every_field(done.output)
    assert done.output.index(FIELDS["account"]) < done.output.index("approve recorded")
    [decision] = json.loads(invoke(cli, "show", task["run_id"], "--json").output)["decisions"]
    assert decision["data"]["account"] == ATTACKER


def test_a_quorum_edit_says_what_happened_and_versions_the_proposal(cli: CliRunner) -> None:
    task = _start(cli, quorum=2)
    edit = json.dumps({"account": "DE89-REAL-PAYROLL"})
    out = invoke(cli, "respond", task["id"], "edit", "--as", "bob", "--data", edit, "--version", "0").output
    assert "edit recorded; 2 approvals of the edited proposal needed" in out
    [edited] = json.loads(invoke(cli, "tasks", "--json").output)
    assert edited["version"] > 0
    assert edited["proposed"]["account"] == "DE89-REAL-PAYROLL"
    # an approval made on the copy shown before the edit is refused
    refused = invoke(cli, "respond", task["id"], "approve", "--as", "carol", "--version", "0", code=2)
    assert "version" in refused.output
    vote = invoke(cli, "respond", task["id"], "approve", "--as", "carol", "--version", str(edited["version"]))
    assert "Account (account): DE89-REAL-PAYROLL" in vote.output
    assert "approval recorded; 1 of 2 approvals, 1 more needed" in vote.output
    invoke(cli, "respond", task["id"], "approve", "--as", "dave")
    [decision] = json.loads(invoke(cli, "show", task["run_id"], "--json").output)["decisions"]
    assert decision["data"]["account"] == "DE89-REAL-PAYROLL"
    # the decision binds to the edited version the approvers were shown, not the first one
    assert decision["shown_hash"] == edited["shown_hash"] != task["shown_hash"]


def test_data_is_never_rich_markup_nor_a_terminal_control_sequence(cli: CliRunner) -> None:
    task = _start(cli, customer="[bold red]ACME[/bold red] \x1b[2K\x1b[1A<!channel>")
    out = invoke(cli, "tasks").output
    assert "[bold red]ACME[/bold red]" in out
    assert "\x1b" not in out
    assert "\\x1b[2K\\x1b[1A<!channel>" in out
    assert task["title"].startswith("Pay [bold red]")
