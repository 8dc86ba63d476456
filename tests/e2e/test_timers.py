"""Deadlines through the real APScheduler and database: firing, restarts, replicas racing."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

from bot.config import Settings
from bot.scheduler import Timers
from bot.wiring import Container, build
from engine.model import ResolvedBy, RunStatus
from engine.timeouts import Timeouts
from tests.e2e._until import until

WORKFLOW = """\
id: t
inputs: {type: object, properties: {}}
nodes:
  - id: gate
    type: human
    prompt: "ok?"
    assignee: user:mia
    timeout: TIMEOUT
    escalation: {action: escalate, to: user:sam, timeout: TIMEOUT, final_action: auto_reject}
  - id: done
    type: set
    data: {ok: true}
edges:
  - {from: gate, to: done, when: "response.action == 'approve'"}
"""


async def _container(url: str, tmp_path: Path, timeout: str = "1s") -> Container:
    workflows = tmp_path / "workflows"
    workflows.mkdir(exist_ok=True)
    (workflows / "t.yml").write_text(WORKFLOW.replace("TIMEOUT", timeout), encoding="utf-8")
    settings = Settings(
        database_url=url, workflows_dir=workflows, skills_dir=tmp_path / "none", roles_file=tmp_path / "r.yml"
    )
    return await build(settings, with_sandbox=False)


async def test_escalation_then_final_action_through_the_scheduler(database_url: str, tmp_path: Path) -> None:
    c = await _container(database_url, tmp_path)
    timers = Timers(Timeouts(c.engine), database_url, scope="t1", reconcile_s=5)
    c.engine.on_change = timers.changed
    await timers.start()
    try:
        run = await c.engine.start("t", {}, requester="alice")
        await c.engine.drive(run.id)
        [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)

        async def finished() -> bool:
            return (await c.store.get_run(run.id)).status.final

        await until(finished)
        final = await c.store.get_run(run.id)
        assert final.status is RunStatus.rejected
        [decision] = await c.store.list_decisions(run_id=run.id)
        assert decision.resolved_by is ResolvedBy.timeout
        assert decision.rule == "auto_reject"
        escalations = [
            d for d in await c.store.list_deliveries(checkpoint_id=cp.id) if d.payload.get("escalation")
        ]
        assert [d.target for d in escalations] == ["user:sam"]
        assert escalations[0].payload["from"] == ["user:mia"]
    finally:
        await timers.stop()
        await c.close()


async def test_a_checkpoint_opened_by_another_process_gets_its_timers_at_once(
    database_url: str, tmp_path: Path
) -> None:
    """A CLI run (its own engine and store, no timers) opens a checkpoint with a 2 s deadline:
    the server plans it through LISTEN/NOTIFY (PostgreSQL) or its audit tail (SQLite), not at its
    next reconciliation (an hour away here; 30 s by default)."""
    server = await _container(database_url, tmp_path, timeout="2s")
    cli = await _container(database_url, tmp_path, timeout="2s")
    timers = Timers(Timeouts(server.engine), database_url, scope="t5", reconcile_s=3600, feed=server.feed)
    server.engine.on_change = timers.changed
    await timers.start()
    try:
        run = await cli.engine.start("t", {}, requester="alice")
        await cli.engine.drive(run.id)
        [cp] = await cli.store.list_checkpoints(run_id=run.id, open_only=True)
        assert cp.due_at is not None

        async def escalated() -> bool:
            return (await server.store.get_checkpoint(cp.id)).escalation_level >= 1

        await until(escalated, timeout=8.0)  # the 2 s deadline, plus room for a loaded machine
        [fired] = [
            e for e in await server.store.audit_events(run_id=run.id) if e.kind == "checkpoint.escalated"
        ]
        assert fired.at >= cp.due_at
    finally:
        await timers.stop()
        await cli.close()
        await server.close()


async def test_deadline_that_passed_while_down_fires_on_start(database_url: str, tmp_path: Path) -> None:
    c = await _container(database_url, tmp_path, timeout="1s")
    try:
        run = await c.engine.start("t", {}, requester="alice")
        await c.engine.drive(run.id)
        await asyncio.sleep(1.2)  # nothing is scheduled: no process was running
        timers = Timers(Timeouts(c.engine), database_url, scope="t2", reconcile_s=5)
        await timers.start()
        try:
            [cp] = await c.store.list_checkpoints(run_id=run.id)

            async def escalated() -> bool:
                return (await c.store.get_checkpoint(cp.id)).escalation_level >= 1

            await until(escalated)
        finally:
            await timers.stop()
    finally:
        await c.close()


async def test_two_replicas_fire_the_same_deadline_once(database_url: str, tmp_path: Path) -> None:
    replicas = [await _container(database_url, tmp_path, timeout="1s") for _ in range(2)]
    try:
        first = replicas[0]
        runs = []
        for _ in range(5):
            run = await first.engine.start("t", {}, requester="alice")
            await first.engine.drive(run.id)
            runs.append(run.id)
        await asyncio.sleep(1.1)
        cps = [cp for r in runs for cp in await first.store.list_checkpoints(run_id=r)]
        outcomes = await asyncio.gather(
            *(Timeouts(c.engine).fire_deadline(cp.id, 0) for cp in cps for c in replicas)
        )
        counts = collections.Counter(outcomes)
        assert counts["escalate"] == len(cps), counts
        for cp in cps:
            current = await first.store.get_checkpoint(cp.id)
            assert current.escalation_level == 1
            dms = [
                d
                for d in await first.store.list_deliveries(checkpoint_id=cp.id)
                if d.payload.get("escalation")
            ]
            assert len(dms) == 1
        await asyncio.sleep(1.1)
        outcomes = await asyncio.gather(
            *(Timeouts(c.engine).fire_deadline(cp.id, 1) for cp in cps for c in replicas)
        )
        assert collections.Counter(outcomes)["auto_reject"] == len(cps), outcomes
        for run_id in runs:
            assert len(await first.store.list_decisions(run_id=run_id)) == 1
            assert (await first.store.get_run(run_id)).status is RunStatus.rejected
    finally:
        for c in replicas:
            await c.close()


async def test_stopping_as_a_change_arrives_ends_the_planning_loop(database_url: str, tmp_path: Path) -> None:
    """A change that wakes the loop in the same step as ``stop()`` cancels it: on Python 3.11
    ``asyncio.wait_for`` then swallowed the cancellation (CPython gh-86296), and ``stop()``
    waited for the loop forever (a test teardown hung until its timeout)."""
    c = await _container(database_url, tmp_path)
    try:
        for attempt in range(5):
            scope = f"stop-{attempt}"
            timers = Timers(Timeouts(c.engine), database_url, scope=scope, poll_s=30, reconcile_s=60)
            await timers.start()
            await asyncio.sleep(0.3)  # the loop is asleep on its wake-up event
            timers.changed("run_x")  # no await between: the wake-up and the cancellation meet
            stopping = asyncio.create_task(timers.stop())
            done, _ = await asyncio.wait({stopping}, timeout=20)
            assert done, f"stop() did not end the planning loop (attempt {attempt})"
            stopping.result()
    finally:
        await c.close()


async def test_cancelling_whoever_stops_the_timers_is_not_swallowed(
    database_url: str, tmp_path: Path
) -> None:
    """A teardown cancelled while it stops the timers is cancelled (before, ``stop()`` swallowed
    it and went on, which turned a hang into a confusing error further down)."""
    c = await _container(database_url, tmp_path)
    try:
        timers = Timers(Timeouts(c.engine), database_url, scope="stop-cancelled", poll_s=30, reconcile_s=60)
        await timers.start()
        await asyncio.sleep(0.3)
        stopping = asyncio.create_task(timers.stop())
        await asyncio.sleep(0)  # stop() is now waiting for the loop to end
        stopping.cancel()
        done, _ = await asyncio.wait({stopping}, timeout=20)
        assert done
        assert stopping.cancelled(), "stop() swallowed the cancellation of its caller"
        await timers.stop()
    finally:
        await c.close()
