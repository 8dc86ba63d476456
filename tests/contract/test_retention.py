"""RunStore contract: a retention purge removes payloads, keeps digests, and the chain still verifies."""

from __future__ import annotations

import json

from engine.audit import PURGED, decision_digest, verify_chain, verify_decisions
from engine.model import RunStatus
from engine.ports import CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at
from tests.contract.conftest import Backend
from tests.contract.test_audit import _raw

SECRET = "DE89-SECRET-IBAN"


async def _finished(store: RunStore, run_id: str = "run_1", end: float = 100) -> None:
    """A run with a secret in its inputs, a step, a decided checkpoint and an outbox row, then ended."""
    await store.create_run(d.run(run_id, inputs={"iban": SECRET}), [d.draft("run.created", run_id=run_id)])
    lease = await store.claim_run(run_id, "w1", at(0), d.TTL)
    assert lease is not None
    cp_id, dl_id = f"cp_{run_id}", f"dl_{run_id}"
    await store.commit(
        lease,
        RunChange(
            at=at(1),
            steps=[d.step(f"st_{run_id}", run_id, input={"iban": SECRET}, error=f"bad {SECRET}")],
            checkpoints=[d.checkpoint(cp_id, run_id, context={"iban": SECRET}, proposed={"z": SECRET})],
            deliveries=[d.delivery(dl_id, run_id=run_id, checkpoint_id=cp_id, payload={"text": SECRET})],
            audit=[d.draft("checkpoint.opened", when=at(1), run_id=run_id, checkpoint_id=cp_id)],
        ),
    )
    decision = d.decision(
        f"dec_{run_id}",
        checkpoint_id=cp_id,
        run_id=run_id,
        data={"z": SECRET},
        comment=f"pay {SECRET}",
        diff={"z": {"before": "x", "after": SECRET}},
    )
    await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id=cp_id,
            expected_version=0,
            at=at(2),
            resolve=True,
            decision=decision,
            audit=[
                d.draft(
                    "decision.recorded",
                    when=at(2),
                    run_id=run_id,
                    checkpoint_id=cp_id,
                    payload={
                        "comment": f"pay {SECRET}",
                        "diff": decision.diff,
                        "action": "approve",
                        "decision": {"id": decision.id, "hash": decision_digest(decision)},
                    },
                )
            ],
        )
    )
    await store.commit(
        lease,
        RunChange(
            at=at(end),
            status=RunStatus.succeeded,
            finished=True,
            release=True,
            audit=[d.draft(when=at(end), run_id=run_id)],
        ),
    )


async def _everything(store: RunStore, run_id: str) -> str:
    parts = [
        (await store.get_run(run_id)).model_dump(mode="json"),
        [s.model_dump(mode="json") for s in await store.list_steps(run_id)],
        [c.model_dump(mode="json") for c in await store.list_checkpoints(run_id=run_id)],
        [x.model_dump(mode="json") for x in await store.list_decisions(run_id=run_id)],
        [x.model_dump(mode="json") for x in await store.list_deliveries(run_id=run_id)],
        [e.model_dump(mode="json") for e in await store.audit_events(run_id=run_id)],
    ]
    return json.dumps(parts)


async def _verified(store: RunStore) -> None:
    events = await store.audit_events()
    chain = verify_chain(events, await store.audit_head())
    assert chain.ok, chain.problem


async def test_purge_removes_payloads_and_the_chain_still_verifies(store: RunStore) -> None:
    await _finished(store, "run_old", end=100)
    await _finished(store, "run_new", end=10_000)
    dry = await store.purge_runs(finished_before=at(1000), at=at(20_000), dry_run=True, audit=[])
    assert (dry.run_ids, dry.runs) == (["run_old"], 0)
    assert SECRET in await _everything(store, "run_old")
    report = await store.purge_runs(
        finished_before=at(1000),
        at=at(20_000),
        dry_run=False,
        audit=[d.draft("retention.purged", run_id=None)],
    )
    assert (report.run_ids, report.runs, report.steps, report.checkpoints, report.decisions) == (
        ["run_old"],
        1,
        1,
        1,
        1,
    )
    assert report.deliveries == 1
    assert report.events >= 1
    assert SECRET not in await _everything(store, "run_old")
    assert SECRET in await _everything(store, "run_new")  # ended after the cutoff: kept
    purged = await store.get_run("run_old")
    assert purged.purged_at == at(20_000)
    assert set(purged.inputs) == {PURGED}
    [decision] = await store.list_decisions(run_id="run_old")
    assert (decision.actor, decision.action) == ("U1", "approve")  # who and what stay
    await _verified(store)
    checked = verify_decisions(await store.audit_events(), await store.list_decisions())
    assert (checked.ok, checked.checked) == (True, 2)
    again = await store.purge_runs(finished_before=at(1000), at=at(20_001), dry_run=False, audit=[])
    assert again.run_ids == []


async def test_tampering_after_a_purge_is_still_found(sql_backend: Backend) -> None:
    store = sql_backend.store
    await _finished(store, "run_old", end=100)
    await store.purge_runs(finished_before=at(1000), at=at(2000), dry_run=False, audit=[])
    sql = _raw(sql_backend)
    sql("UPDATE decisions SET actor = ? WHERE run_id = ?", ("mallory", "run_old"))
    report = verify_decisions(await store.audit_events(), await store.list_decisions())
    assert not report.ok
    assert "was modified" in str(report.problem)
    sql("UPDATE decisions SET actor = ? WHERE run_id = ?", ("U1", "run_old"))
    [event] = [e for e in await store.audit_events() if e.kind == "decision.recorded"]
    forged = {**event.payload, "comment": {PURGED: "0" * 64}}
    sql("UPDATE audit_events SET payload = ? WHERE seq = ?", (json.dumps(forged), event.seq))
    chain = verify_chain(await store.audit_events(), await store.audit_head())
    assert (chain.ok, chain.first_bad_seq) == (False, event.seq)
