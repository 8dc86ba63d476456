"""The shipped example workflows, end to end on SQLite with the shipped roles file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.wiring import Container, build
from engine.commands import Decide
from engine.errors import NotAllowed
from engine.model import Checkpoint, RunStatus

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def c(tmp_path: Path) -> AsyncIterator[Container]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'examples.db'}",
        workflows_dir=REPO / "workflows",
        skills_dir=tmp_path / "no-skills",
        roles_file=REPO / "roles.yml",
    )
    container = await build(settings, with_sandbox=False)
    yield container
    await container.close()


async def _run(c: Container, workflow: str, inputs: dict[str, object], requester: str = "alice") -> str:
    run = await c.engine.start(workflow, inputs, requester=requester, origin={"channel": "test"})
    await c.engine.drive(run.id)
    return run.id


async def _open(c: Container, run_id: str) -> Checkpoint:
    [cp] = await c.store.list_checkpoints(run_id=run_id, open_only=True)
    return cp


async def _outputs(c: Container, run_id: str) -> dict[str, dict[str, object]]:
    return {s.node_id: s.output.data for s in await c.store.list_steps(run_id) if s.output is not None}


async def test_refund_small_amount_needs_no_approval(c: Container) -> None:
    run_id = await _run(c, "refund", {"customer": "ACME", "amount": 50})
    assert (await c.store.get_run(run_id)).status is RunStatus.succeeded
    out = await _outputs(c, run_id)
    assert "manager_approval" not in out
    assert out["send"]["note"] == "We refunded 50 USD to ACME (Customer request)."


async def test_refund_large_amount_is_edited_by_a_manager(c: Container) -> None:
    run_id = await _run(c, "refund", {"customer": "ACME", "amount": 2500})
    cp = await _open(c, run_id)
    assert cp.assignees == ["role:manager"]
    assert cp.context["risk"] == "high"
    assert cp.due_at is not None
    with pytest.raises(NotAllowed):
        await c.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="alice"))
    await c.engine.decide(
        Decide(
            checkpoint_id=cp.id, action="edit", actor="mia", data={"message": "Refunded, with our apologies."}
        )
    )
    assert (await c.store.get_run(run_id)).status is RunStatus.succeeded
    assert (await _outputs(c, run_id))["send"]["note"] == "Refunded, with our apologies."
    notices = [d for d in await c.store.list_deliveries(run_id=run_id) if d.kind == "notify"]
    assert "Refund of 2500 USD to ACME sent" in str(notices[0].payload["text"])


async def test_refund_rejected_tells_the_requester(c: Container) -> None:
    run_id = await _run(c, "refund", {"customer": "ACME", "amount": 250})
    cp = await _open(c, run_id)
    await c.engine.decide(
        Decide(checkpoint_id=cp.id, action="reject", actor="manny", comment="duplicate claim")
    )
    run = await c.store.get_run(run_id)
    assert run.status is RunStatus.succeeded  # the reject edge handled it
    declined = [d for d in await c.store.list_deliveries(run_id=run_id) if d.kind == "notify"]
    assert "declined: duplicate claim" in str(declined[0].payload["text"])


async def test_ship_order_asks_the_requester_for_a_missing_address(c: Container) -> None:
    with_address = await _run(c, "ship-order", {"order_id": "o-1", "address": "1 Main St"})
    assert (await c.store.get_run(with_address)).status is RunStatus.succeeded
    run_id = await _run(c, "ship-order", {"order_id": "o-2"}, requester="bob")
    cp = await _open(c, run_id)
    assert (cp.kind, cp.assignees) == ("input", ["user:bob"])
    await c.engine.decide(
        Decide(
            checkpoint_id=cp.id,
            action="answer",
            actor="bob",
            data={"address": "9 Harbour Road", "express": True},
        )
    )
    out = await _outputs(c, run_id)
    assert out["ship"] == {"address": "9 Harbour Road", "express": True}


async def test_vendor_payment_two_levels_with_a_quorum_and_a_confirmation(c: Container) -> None:
    run_id = await _run(c, "vendor-payment", {"vendor": "Initech", "amount": 12000, "invoice": "INV-7"})
    manager = await _open(c, run_id)
    await c.engine.decide(Decide(checkpoint_id=manager.id, action="approve", actor="mia"))
    finance = await _open(c, run_id)
    assert (finance.assignees, finance.quorum, finance.confirm) == (["role:finance"], 2, "PAY")
    with pytest.raises(NotAllowed, match="type PAY"):
        await c.engine.decide(Decide(checkpoint_id=finance.id, action="approve", actor="fiona"))
    assert (
        await c.engine.decide(
            Decide(checkpoint_id=finance.id, action="approve", actor="fiona", confirm="PAY")
        )
        is None
    )
    assert (await c.store.get_run(run_id)).status is RunStatus.waiting
    await c.engine.decide(Decide(checkpoint_id=finance.id, action="approve", actor="felix", confirm="PAY"))
    assert (await c.store.get_run(run_id)).status is RunStatus.succeeded
    assert (await _outputs(c, run_id))["paid"] == {"paid": True, "manager": "mia", "released_by": "felix"}


async def test_vendor_payment_rejected_by_the_manager_ends_rejected(c: Container) -> None:
    run_id = await _run(c, "vendor-payment", {"vendor": "Initech", "amount": 10, "invoice": "INV-8"})
    manager = await _open(c, run_id)
    await c.engine.decide(
        Decide(checkpoint_id=manager.id, action="reject", actor="manny", comment="unknown vendor")
    )
    run = await c.store.get_run(run_id)
    assert run.status is RunStatus.rejected
