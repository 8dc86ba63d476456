"""RunStore contract: delegations, and quorum edits that change what is proposed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.audit import verify_chain
from engine.errors import NotFound
from engine.model import CheckpointStatus, Delegation, RunStatus
from engine.ports import AuditDraft, CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import T0, at


def _delegation(i: int, delegator: str, starts: float, hours: float) -> Delegation:
    return Delegation(
        id=f"dlg_{i}",
        delegator=delegator,
        delegate="U_BOB",
        starts_at=at(starts),
        until=at(starts) + timedelta(hours=hours),
        created_by=delegator,
        created_at=T0,
    )


async def test_delegations_are_listed_by_period_and_person(store: RunStore) -> None:
    audit = AuditDraft(at=T0, actor="U_ALICE", channel="cli", kind="delegation.created")
    await store.add_delegation(_delegation(1, "U_ALICE", 0, 24), [audit])
    await store.add_delegation(_delegation(2, "U_CAROL", 3600 * 48, 24), [])
    assert [x.id for x in await store.list_delegations()] == ["dlg_1", "dlg_2"]
    assert [x.id for x in await store.list_delegations(active_at=at(60))] == ["dlg_1"]
    assert [x.id for x in await store.list_delegations(active_at=at(3600 * 50))] == ["dlg_2"]
    assert await store.list_delegations(active_at=at(3600 * 24)) == []  # `until` is exclusive
    assert [x.id for x in await store.list_delegations(delegator="U_CAROL")] == ["dlg_2"]
    [stored] = await store.list_delegations(delegator="U_ALICE")
    assert stored == _delegation(1, "U_ALICE", 0, 24)
    assert stored.until.tzinfo is not None
    assert [e.kind for e in await store.audit_events()] == ["delegation.created"]
    assert verify_chain(await store.audit_events(), await store.audit_head()).ok


async def test_a_quorum_edit_replaces_the_proposal_and_keeps_it_open(store: RunStore) -> None:
    lease = await d.started(store)
    cp = d.checkpoint().model_copy(update={"quorum": 2, "delegations": {"U_BOB": "U_ALICE"}})
    await store.commit(
        lease,
        RunChange(
            at=at(1), checkpoints=[cp], pending_remove=["draft"], status=RunStatus.waiting, release=True
        ),
    )
    updated = await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id="cp_1",
            expected_version=0,
            at=at(5),
            proposed={"message": "edited"},
            editors=["U_ED"],
            approvals=[],
            shown_hash="f" * 64,
        )
    )
    assert updated.status is CheckpointStatus.open
    assert (updated.version, updated.proposed, updated.editors, updated.shown_hash) == (
        1,
        {"message": "edited"},
        ["U_ED"],
        "f" * 64,
    )
    again = await store.get_checkpoint("cp_1")
    assert again.editors == ["U_ED"]
    assert again.delegations == {"U_BOB": "U_ALICE"}


async def test_a_delegation_ends_early_and_stays_ended(store: RunStore) -> None:
    await store.add_delegation(_delegation(1, "U_ALICE", 0, 24), [])
    ended_at = at(3600)
    audit = AuditDraft(at=ended_at, actor="U_ALICE", channel="cli", kind="delegation.ended")
    ended = await store.end_delegation("dlg_1", ended_at, [audit])
    assert ended.until == ended_at
    assert await store.list_delegations(active_at=at(3601)) == []
    assert [x.id for x in await store.list_delegations(active_at=at(60))] == ["dlg_1"]
    # ending it again never moves the end later
    again = await store.end_delegation("dlg_1", at(7200), [])
    assert again.until == ended_at
    assert [e.kind for e in await store.audit_events()] == ["delegation.ended"]
    with pytest.raises(NotFound):
        await store.end_delegation("dlg_missing", at(1), [])
