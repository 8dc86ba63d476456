"""The engine tells its observers what it committed, with the ids of the work bound in context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from engine.commands import Cancel, Decide
from engine.observers import (
    CheckpointDecided,
    CheckpointOpened,
    DeliveryFailed,
    EngineEvent,
    LeaseTakenOver,
    RunFinished,
    RunStarted,
    StepFinished,
    current_ids,
)
from engine.outbox import Outbox
from engine.timeouts import Timeouts
from tests.unit.engine.conftest import RecordingSender, World
from tests.unit.engine.test_service import REFUND, _open_cp, _start


class Recorder:
    """An observer that keeps every event and the ids bound when it heard of it."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.ids: list[dict[str, str]] = []

    def on_event(self, event: EngineEvent) -> None:
        self.events.append(event)
        self.ids.append(current_ids())

    def of(self, kind: type[EngineEvent]) -> list[EngineEvent]:
        return [e for e in self.events if isinstance(e, kind)]


class Broken:
    def on_event(self, event: EngineEvent) -> None:
        raise RuntimeError("observer bug")


def _world(make_world: Callable[..., World]) -> tuple[World, Recorder]:
    w = make_world(REFUND)
    seen = Recorder()
    w.engine.observers += [Broken(), seen]
    return w, seen


async def test_a_run_through_a_checkpoint_is_told_in_commit_order(make_world: Callable[..., World]) -> None:
    w, seen = _world(make_world)
    run_id = await _start(w)
    cp_id = await _open_cp(w, run_id)
    w.clock.advance(300)
    await w.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="mia", channel="cli"))
    kinds = [(e.kind, getattr(e, "node_id", None)) for e in seen.events]
    assert kinds == [
        ("run.started", None),
        ("step.finished", "draft"),
        ("checkpoint.opened", "approval"),
        ("checkpoint.decided", "approval"),
        ("step.finished", "approval"),
        ("step.finished", "send"),
        ("step.finished", "tell"),
        ("run.finished", None),
    ], "a broken observer does not keep the others from hearing"
    started, finished = seen.of(RunStarted)[0], seen.of(RunFinished)[0]
    assert isinstance(started, RunStarted)
    assert isinstance(finished, RunFinished)
    assert (started.workflow, finished.outcome, finished.run_id) == ("refund", "succeeded", run_id)
    decided = seen.of(CheckpointDecided)[0]
    assert isinstance(decided, CheckpointDecided)
    assert (decided.action, decided.resolved_by) == ("approve", "human")
    assert decided.at - decided.opened_at == timedelta(minutes=5)
    steps = {e.node_id: e for e in seen.of(StepFinished) if isinstance(e, StepFinished)}
    assert {n: (s.node_type, s.status) for n, s in steps.items()} == {
        "draft": ("set", "succeeded"),
        "approval": ("human", "succeeded"),
        "send": ("http", "succeeded"),
        "tell": ("notify", "succeeded"),
    }
    assert steps["approval"].at - steps["approval"].started_at == timedelta(minutes=5)
    opened = seen.of(CheckpointOpened)[0]
    assert isinstance(opened, CheckpointOpened)
    assert opened.checkpoint_id == cp_id
    # the ids of the work in hand are bound while observers hear of it
    by_kind = dict(zip([(e.kind, getattr(e, "node_id", None)) for e in seen.events], seen.ids, strict=True))
    assert by_kind[("step.finished", "draft")] == {"run_id": run_id, "node_id": "draft"}
    assert by_kind[("checkpoint.decided", "approval")] == {"run_id": run_id, "checkpoint_id": cp_id}
    assert by_kind[("step.finished", "send")] == {"run_id": run_id, "node_id": "send"}, (
        "no stale checkpoint id"
    )
    assert current_ids() == {}, "nothing stays bound after the engine returns"


async def test_failed_steps_and_cancelled_runs(make_world: Callable[..., World]) -> None:
    w, seen = _world(make_world)
    from engine.ports import HttpResponse

    w.http.responses.append(HttpResponse(status=500, text="down"))
    await _start(w, amount=50)
    failed = [e for e in seen.of(StepFinished) if isinstance(e, StepFinished) and e.status == "failed"]
    assert [(e.node_id, e.node_type) for e in failed] == [("send", "http")]
    assert failed[0].error
    run_id = await _start(w)
    await w.engine.cancel(Cancel(run_id=run_id, actor="alice", channel="cli"))
    outcomes = [(e.outcome) for e in seen.of(RunFinished) if isinstance(e, RunFinished)]
    assert outcomes == ["failed", "cancelled"]


async def test_deadline_lateness_and_lease_takeover(make_world: Callable[..., World]) -> None:
    w, seen = _world(make_world)
    run = await w.engine.start("refund", {"customer": "ACME", "amount": 250}, requester="alice")
    # this process "dies" holding the lease; another one takes the run over once it expired
    other = type(w.engine)(store=w.store, catalog=w.catalog, deps=w.engine.deps, owner="test-2")
    other.observers.append(seen)
    assert await other.recover() == 0, "the lease is still live"
    w.clock.advance(60)
    assert await other.recover() == 1
    [takeover] = seen.of(LeaseTakenOver)
    assert isinstance(takeover, LeaseTakenOver)
    assert (takeover.run_id, takeover.previous_owner) == (run.id, "test-1")
    assert await other.recover() == 0
    assert len(seen.of(LeaseTakenOver)) == 1


async def test_a_failed_send_is_told_with_its_method(make_world: Callable[..., World]) -> None:
    w, seen = _world(make_world)
    await _start(w)
    outbox = Outbox(w.store, RecordingSender(fail_first=1), w.clock, max_attempts=1, observers=[seen])
    await outbox.dispatch_due()
    [failed] = seen.of(DeliveryFailed)
    assert isinstance(failed, DeliveryFailed)
    assert (failed.method, failed.retryable, failed.final) == ("checkpoint", True, True)


async def test_a_deadline_is_told_with_how_late_it_fired(make_world: Callable[..., World]) -> None:
    text = REFUND.replace("    assignee: role:manager\n", "    assignee: role:manager\n    timeout: 1h\n")
    w = make_world(text)
    seen = Recorder()
    w.engine.observers.append(seen)
    run_id = await _start(w)
    cp_id = await _open_cp(w, run_id)
    w.clock.advance(3607)
    await Timeouts(w.engine).fire_deadline(cp_id)
    [fired] = [e for e in seen.events if e.kind == "timer.fired"]
    assert fired.at - fired.due_at == timedelta(seconds=7)
