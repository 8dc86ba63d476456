"""Rerun and replay (issue 14): a new run linked to an ended one reuses the recorded outputs and
decisions of the steps before the node it reruns from, and asks nobody again unless told to."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.catalog import WorkflowCatalog
from engine.commands import Cancel, Decide, Rerun, Retry
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.loader import load_workflow_text
from engine.model import RunStatus
from engine.nodes.base import NodeDeps
from engine.ports import HttpResponse
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds
from tests.unit.engine.conftest import ROLES, RecordingHttp, World

REFUND = """\
id: refund
inputs:
  type: object
  properties: {amount: {type: number}}
  required: [amount]
nodes:
  - id: draft
    type: set
    data: {note: "Refund {{ inputs.amount }}"}
  - id: approval
    type: human
    prompt: "Refund {{ inputs.amount }}?"
    assignee: user:mia
    options: [approve, reject, edit]
    response_schema: {type: object, properties: {note: {type: string}}}
    proposed: {note: "{{ nodes.draft.data.note }}"}
  - id: send
    type: http
    request:
      method: POST
      url: "https://billing.test/refunds"
      json: {note: "{{ nodes.approval.data.note }}"}
  - id: receipt
    type: set
    data: {done: "{{ nodes.send.data.id }}"}
edges:
  - {from: draft, to: approval}
  - {from: approval, to: send, when: "response.action != 'reject'"}
  - {from: send, to: receipt}
"""


async def _failed_after_approval(w: World) -> str:
    """A refund approved (with an edit) whose HTTP call then failed."""
    run = await w.engine.start("refund", {"amount": 120}, requester="alice")
    await w.engine.drive(run.id)
    (cp,) = await w.store.list_checkpoints(run_id=run.id)
    w.http.responses = [HttpResponse(status=400, text="bad gateway config")]
    await w.engine.decide(
        Decide(checkpoint_id=cp.id, action="edit", actor="mia", data={"note": "Refund 120 USD"})
    )
    failed = await w.store.get_run(run.id)
    assert failed.status is RunStatus.failed
    return run.id


async def test_rerun_from_a_node_reuses_earlier_outputs_and_asks_nobody_again(
    make_world: Callable[..., World],
) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)
    assert len(w.http.requests) == 1
    new = await w.engine.rerun(Rerun(run_id=original, actor="alice", from_node="send"))
    assert new.rerun_of == original
    assert new.pending == ["send"]
    done = await w.engine.drive(new.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    assert await w.store.list_checkpoints(run_id=new.id) == [], "nobody was asked again"
    steps = {s.node_id: s for s in await w.store.list_steps(new.id)}
    assert list(steps) == ["draft", "approval", "send", "receipt"]
    assert steps["approval"].output is not None
    assert steps["approval"].output.data["note"] == "Refund 120 USD", "the recorded decision is reused"
    assert w.http.requests[-1].json_body == {"note": "Refund 120 USD"}
    assert len(w.http.requests) == 2, "draft and approval did not run again; send ran once"
    assert [r.id for r in await w.store.reruns_of(original)] == [new.id]

    started = [e for e in await w.store.audit_events(run_id=new.id) if e.kind == "run.started"]
    assert started[0].payload["rerun_of"] == original
    assert started[0].payload["reused"] == ["draft", "approval"]
    (decision,) = await w.store.list_decisions(run_id=original)
    assert started[0].payload["reused_decisions"] == [decision.id]
    linked = [e for e in await w.store.audit_events(run_id=original) if e.kind == "run.rerun"]
    assert linked[0].payload["rerun"] == new.id


async def test_a_failed_run_reruns_from_its_failed_node_by_default(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)
    new = await w.engine.rerun(Rerun(run_id=original, actor="alice"))
    assert new.origin["from"] == "send"
    assert new.pending == ["send"]


async def test_reask_asks_the_people_again(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)
    new = await w.engine.rerun(Rerun(run_id=original, actor="olga", from_node="send", reask=True))
    assert new.pending == ["approval"]
    waiting = await w.engine.drive(new.id)
    assert waiting is not None
    assert waiting.status is RunStatus.waiting
    (cp,) = await w.store.list_checkpoints(run_id=new.id)
    assert cp.node_id == "approval"
    assert cp.requester == "alice", "the same request: the requester rule still applies"
    assert [s.node_id for s in await w.store.list_steps(new.id)] == ["draft", "approval"]


async def test_rerun_refusals_are_specific(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)
    with pytest.raises(InvalidInput) as unknown:
        await w.engine.rerun(Rerun(run_id=original, actor="alice", from_node="shipit"))
    assert "node 'shipit' is not in workflow 'refund'" in str(unknown.value)
    assert unknown.value.errors == {"from": "use one of: draft, approval, send, receipt"}
    with pytest.raises(InvalidInput) as unreached:
        await w.engine.rerun(Rerun(run_id=original, actor="alice", from_node="receipt"))
    assert unreached.value.errors == {"from": "use a node it reached: draft, approval, send"}
    with pytest.raises(NotAllowed, match="can rerun it"):
        await w.engine.rerun(Rerun(run_id=original, actor="mallory"))
    running = await w.engine.start("refund", {"amount": 5}, requester="alice")
    with pytest.raises(Conflict, match="has not ended"):
        await w.engine.rerun(Rerun(run_id=running.id, actor="alice"))


async def test_rerun_from_the_entry_runs_everything_again(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)
    new = await w.engine.rerun(Rerun(run_id=original, actor="alice", from_node="draft"))
    assert new.pending == ["draft"]
    waiting = await w.engine.drive(new.id)
    assert waiting is not None
    assert waiting.status is RunStatus.waiting


async def test_a_retryable_failure_is_retried_in_place_with_the_same_idempotency_key(
    make_world: Callable[..., World],
) -> None:
    w = make_world(REFUND)
    run = await w.engine.start("refund", {"amount": 120}, requester="alice")
    await w.engine.drive(run.id)
    (cp,) = await w.store.list_checkpoints(run_id=run.id)
    w.http.responses = [HttpResponse(status=503, text="try later")]
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    failed = await w.store.get_run(run.id)
    assert failed.status is RunStatus.failed
    (send,) = [s for s in await w.store.list_steps(run.id) if s.node_id == "send"]
    assert send.retryable

    with pytest.raises(NotAllowed, match="can retry it"):
        await w.engine.retry(Retry(run_id=run.id, actor="mallory"))
    reopened = await w.engine.retry(Retry(run_id=run.id, actor="alice"))
    assert reopened.id == run.id
    assert reopened.status is RunStatus.queued
    assert reopened.pending == ["send"]
    done = await w.engine.drive(run.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    assert done.reason is None
    first, second = w.http.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    (again,) = [s for s in await w.store.list_steps(run.id) if s.node_id == "send"]
    assert (again.id, again.attempt, again.status.value) == (send.id, 2, "succeeded")
    assert len(await w.store.list_checkpoints(run_id=run.id)) == 1, "nobody was asked again"
    retried = [e for e in await w.store.audit_events(run_id=run.id) if e.kind == "run.retried"]
    assert retried[0].payload == {"nodes": ["send"], "attempts": [2]}
    with pytest.raises(Conflict, match="is succeeded, not failed"):
        await w.engine.retry(Retry(run_id=run.id, actor="alice"))


async def test_a_failure_a_retry_cannot_fix_points_to_rerun(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)  # 400: the request itself is wrong
    with pytest.raises(Conflict) as refused:
        await w.engine.retry(Retry(run_id=original, actor="alice"))
    assert "node 'send' failed in a way a retry cannot fix" in str(refused.value)
    assert f"signoff rerun {original}" in str(refused.value)
    assert (await w.store.get_run(original)).status is RunStatus.failed


BRANCHES = """\
id: fan
nodes:
  - {id: a, type: set, data: {x: 1}}
  - {id: b, type: set, data: {y: 2}}
  - {id: c, type: set, data: {z: 3}}
  - {id: d, type: set, data: {sum: "{{ nodes.b.data.y + nodes.c.data.z }}"}}
edges:
  - {from: a, to: b}
  - {from: a, to: c}
  - {from: b, to: d}
  - {from: c, to: d}
"""


async def test_a_rerun_keeps_the_other_branch_and_reaches_the_join_once(
    make_world: Callable[..., World],
) -> None:
    w = make_world(BRANCHES)
    run = await w.engine.start("fan", {}, requester="alice")
    first = await w.engine.drive(run.id)
    assert first is not None
    assert first.status is RunStatus.succeeded
    new = await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="b"))
    assert new.pending == ["b", "d"]
    done = await w.engine.drive(new.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    steps = await w.store.list_steps(new.id)
    assert sorted(s.node_id for s in steps) == ["a", "b", "c", "d"], "each node once; a and c reused"
    (d,) = [s for s in steps if s.node_id == "d"]
    assert d.output is not None
    assert d.output.data == {"sum": 5}


async def test_a_purged_run_is_not_rerun(make_world: Callable[..., World]) -> None:
    w = make_world(REFUND)
    original = await _failed_after_approval(w)
    w.clock.advance(3600)
    await w.store.purge_runs(finished_before=w.clock.now(), at=w.clock.now(), dry_run=False, audit=[])
    with pytest.raises(Conflict, match="recorded data was purged"):
        await w.engine.rerun(Rerun(run_id=original, actor="alice"))


SIDE = """\
id: side
nodes:
  - {id: start, type: set, data: {x: 1}}
  - {id: approval, type: human, prompt: "Go?", assignee: user:mia, options: [approve, reject]}
  - {id: log, type: set, data: {logged: true}}
  - {id: ship, type: set, data: {shipped: true}}
edges:
  - {from: start, to: approval}
  - {from: start, to: log}
  - {from: approval, to: ship, when: "response.action == 'approve'"}
"""


async def test_a_reused_reject_still_ends_the_rerun_rejected(make_world: Callable[..., World]) -> None:
    w = make_world(SIDE)
    run = await w.engine.start("side", {}, requester="alice")
    await w.engine.drive(run.id)
    (cp,) = await w.store.list_checkpoints(run_id=run.id)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="reject", actor="mia"))
    assert (await w.store.get_run(run.id)).status is RunStatus.rejected
    again = await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="log"))
    assert again.pending == ["log"]
    done = await w.engine.drive(again.id)
    assert done is not None
    assert done.status is RunStatus.rejected, "the reused reject still ends its branch"
    assert await w.store.list_checkpoints(run_id=again.id) == []
    fresh = await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="approval"))
    assert fresh.rejected is False, "asked again, the person decides anew"


def _engine_on(store: InMemoryRunStore, text: str, http: RecordingHttp, ids: SeqIds) -> Engine:
    """An engine (a process started with ``text`` as the workflow file) on a shared store."""
    wf = load_workflow_text(text, file="refund.yml", roles=ROLES)
    deps = NodeDeps(clock=FixedClock(), ids=ids, http=http, roles=ROLES)
    return Engine(store=store, catalog=WorkflowCatalog({wf.id: wf}, roles=ROLES), deps=deps, owner="p")


async def test_latest_reuses_a_decision_only_if_its_checkpoint_is_unchanged() -> None:
    store, http, ids = InMemoryRunStore(), RecordingHttp(), SeqIds()
    before = _engine_on(store, REFUND, http, ids)
    run = await before.start("refund", {"amount": 120}, requester="alice")
    await before.drive(run.id)
    (cp,) = await store.list_checkpoints(run_id=run.id)
    http.responses = [HttpResponse(status=400, text="no")]
    await before.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))

    reworded = REFUND.replace('"Refund {{ inputs.amount }}?"', '"Refund {{ inputs.amount }} now?"')
    after = _engine_on(store, reworded, http, ids)
    with pytest.raises(InvalidInput) as refused:
        await after.rerun(Rerun(run_id=run.id, actor="alice", from_node="send", latest=True))
    assert "checkpoint 'approval' changed in the current version of 'refund'" in str(refused.value)
    assert refused.value.errors == {"reask": "add --reask to ask again, or rerun without --latest"}
    asked = await after.rerun(Rerun(run_id=run.id, actor="alice", from_node="send", latest=True, reask=True))
    assert asked.workflow_hash != run.workflow_hash
    assert asked.pending == ["approval"]
    pinned = await after.rerun(Rerun(run_id=run.id, actor="alice", from_node="send"))
    assert pinned.workflow_hash == run.workflow_hash, "without --latest: the original version"
    assert pinned.pending == ["send"]
    # one approval, one execution: while that rerun may still carry it out, no other may
    with pytest.raises(Conflict, match="one approval, one execution"):
        await after.rerun(Rerun(run_id=run.id, actor="alice", from_node="send"))
    await after.cancel(Cancel(run_id=pinned.id, actor="alice", reason="rerun again on the fixed version"))

    send_only = REFUND.replace("https://billing.test/refunds", "https://billing.test/v2/refunds")
    fixed = _engine_on(store, send_only, http, ids)
    reused = await fixed.rerun(Rerun(run_id=run.id, actor="alice", from_node="send", latest=True))
    assert reused.pending == ["send"], "the checkpoint is unchanged: its decision is reused"


async def test_one_approval_carries_out_one_execution() -> None:
    # a failed send may be finished once with the approval it had; a run that carried the
    # approval out, or a second rerun while one may still do so, would send the refund again
    store, http, ids = InMemoryRunStore(), RecordingHttp(), SeqIds()
    engine = _engine_on(store, REFUND, http, ids)
    run = await engine.start("refund", {"amount": 120}, requester="alice", origin={"team": "T0ACME001"})
    await engine.drive(run.id)
    (cp,) = await store.list_checkpoints(run_id=run.id)
    http.responses = [HttpResponse(status=400, text="no")]
    await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    assert (await store.get_run(run.id)).status is RunStatus.failed
    first = await engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="send"))
    assert (first.team, first.origin["reused_decisions"]) == ("T0ACME001", ["approval"])
    done = await engine.drive(first.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    sent = len(http.requests)
    with pytest.raises(Conflict, match="one approval, one execution"):
        await engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="send"))
    with pytest.raises(Conflict, match="reusing it would carry it out again"):
        await engine.rerun(Rerun(run_id=first.id, actor="alice", from_node="send"))
    assert len(http.requests) == sent, "nothing was sent again"
    asked = await engine.rerun(Rerun(run_id=first.id, actor="alice", from_node="send", reask=True))
    assert asked.pending == ["approval"], "asked again, the person decides anew"


async def test_an_agents_run_never_reuses_a_persons_decision() -> None:
    store, http, ids = InMemoryRunStore(), RecordingHttp(), SeqIds()
    engine = _engine_on(store, REFUND, http, ids)
    run = await engine.start("refund", {"amount": 120}, requester="api:key_agent1")
    await engine.drive(run.id)
    (cp,) = await store.list_checkpoints(run_id=run.id)
    http.responses = [HttpResponse(status=400, text="no")]
    await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    with pytest.raises(Conflict, match="started by an agent"):
        await engine.rerun(Rerun(run_id=run.id, actor="api:key_agent1", from_node="send"))
    again = await engine.rerun(Rerun(run_id=run.id, actor="api:key_agent1", from_node="send", reask=True))
    assert again.pending == ["approval"]


async def test_a_run_rerun_with_its_approval_is_not_retried_as_well(make_world: Callable[..., World]) -> None:
    # one approval, one execution: once a rerun carries the approval out, a retry of the
    # original would send the refund a second time (another run id, so another idempotency key)
    w = make_world(REFUND)
    run = await w.engine.start("refund", {"amount": 120}, requester="alice")
    await w.engine.drive(run.id)
    (cp,) = await w.store.list_checkpoints(run_id=run.id)
    w.http.responses = [HttpResponse(status=503, text="try later")]
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    assert (await w.store.get_run(run.id)).status is RunStatus.failed
    rerun = await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="send"))
    assert rerun.origin["reused_decisions"] == ["approval"]
    with pytest.raises(Conflict, match="one approval, one execution") as refused:
        await w.engine.retry(Retry(run_id=run.id, actor="alice"))
    assert rerun.id in str(refused.value)
    assert (await w.store.get_run(run.id)).status is RunStatus.failed
    done = await w.engine.drive(rerun.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    assert len(w.http.requests) == 2, "the failed attempt, then the rerun's: sent once"
    with pytest.raises(Conflict, match="one approval, one execution"):
        await w.engine.retry(Retry(run_id=run.id, actor="alice"))
    assert len(w.http.requests) == 2


SENT_THEN_ASKED = REFUND.replace(
    """  - id: receipt
    type: set
    data: {done: "{{ nodes.send.data.id }}"}
""",
    """  - id: receipt
    type: human
    prompt: "Refund {{ nodes.send.data.id }} sent: tell the customer?"
    assignee: user:mia
    options: [approve, reject]
""",
)


async def test_a_rerun_never_carries_out_again_what_the_approval_already_did(
    make_world: Callable[..., World],
) -> None:
    # the refund was sent, then the run was cancelled at a later question: a rerun from `send`
    # reusing the approval would send the refund a second time on one approval
    w = make_world(SENT_THEN_ASKED)
    run = await w.engine.start("refund", {"amount": 120}, requester="alice")
    await w.engine.drive(run.id)
    (cp,) = await w.store.list_checkpoints(run_id=run.id)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    assert len(w.http.requests) == 1
    await w.engine.cancel(Cancel(run_id=run.id, actor="alice", reason="not now"))
    assert (await w.store.get_run(run.id)).status is RunStatus.cancelled
    with pytest.raises(Conflict, match="already carried out") as refused:
        await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="send"))
    assert "'send'" in str(refused.value)
    # what comes after the executed action may run again on the recorded result
    later = await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="receipt"))
    assert later.pending == ["receipt"]
    await w.engine.drive(later.id)
    assert len(w.http.requests) == 1, "the refund was sent once"
    await w.engine.cancel(Cancel(run_id=later.id, actor="alice", reason="done with it"))
    asked = await w.engine.rerun(Rerun(run_id=run.id, actor="alice", from_node="send", reask=True))
    assert asked.pending == ["approval"], "asked again, the person decides anew"
