"""Only the next horizon's timers are jobs: the job store stays small with many open checkpoints
far ahead, and the window moving on still fires deadlines and reminders that were beyond it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import bot.scheduler
from bot.config import Settings
from bot.scheduler import Timers
from bot.wiring import Container, build
from engine.commands import Decide
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
    REMINDERS
    escalation: {action: escalate, to: user:sam, timeout: 1h, final_action: auto_reject}
"""


async def _container(url: str, tmp_path: Path, timeout: str, reminders: str = "") -> Container:
    workflows = tmp_path / "workflows"
    workflows.mkdir(exist_ok=True)
    text = WORKFLOW.replace("TIMEOUT", timeout).replace(
        "REMINDERS", f"reminders: [{reminders}]" if reminders else ""
    )
    (workflows / "t.yml").write_text(text, encoding="utf-8")
    settings = Settings(
        database_url=url, workflows_dir=workflows, skills_dir=tmp_path / "none", roles_file=tmp_path / "r.yml"
    )
    return await build(settings, with_sandbox=False)


async def _open(c: Container, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        run = await c.engine.start("t", {}, requester="alice")
        await c.engine.drive(run.id)
        [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
        ids.append(cp.id)
    return ids


async def test_deadlines_beyond_the_horizon_are_not_jobs(database_url: str, tmp_path: Path) -> None:
    c = await _container(database_url, tmp_path, timeout="1h")
    timers = Timers(Timeouts(c.engine), database_url, scope="w1", reconcile_s=3600, horizon_s=60)
    try:
        await _open(c, 12)
        assert await timers.start() == 0
        assert timers.jobstore.job_ids() == []
    finally:
        await timers.stop()
        await c.close()


async def test_start_up_reads_every_open_checkpoint_in_pages(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.scheduler, "_PAGE", 2)
    c = await _container(database_url, tmp_path, timeout="30s")
    timers = Timers(Timeouts(c.engine), database_url, scope="w2", reconcile_s=3600, horizon_s=60)
    try:
        ids = await _open(c, 5)
        assert await timers.start() == 5
        assert sorted(timers.jobstore.job_ids()) == sorted(f"deadline:{i}:0" for i in ids)
    finally:
        await timers.stop()
        await c.close()


async def test_a_deadline_beyond_the_horizon_fires_when_the_window_reaches_it(
    database_url: str, tmp_path: Path
) -> None:
    c = await _container(database_url, tmp_path, timeout="3s")
    timers = Timers(Timeouts(c.engine), database_url, scope="w3", reconcile_s=3600, horizon_s=1)
    try:
        [cp_id] = await _open(c, 1)
        due = (await c.store.get_checkpoint(cp_id)).due_at
        assert due is not None
        await timers.start()
        assert timers.jobstore.job_ids() == []  # due in 3 s, the horizon is 1 s

        async def escalated() -> bool:
            return (await c.store.get_checkpoint(cp_id)).escalation_level >= 1

        await until(escalated)
        cp = await c.store.get_checkpoint(cp_id)
        [fired] = [
            e for e in await c.store.audit_events(run_id=cp.run_id) if e.kind == "checkpoint.escalated"
        ]
        assert fired.at >= due
    finally:
        await timers.stop()
        await c.close()


async def test_a_reminder_beyond_the_horizon_is_sent_when_the_window_reaches_it(
    database_url: str, tmp_path: Path
) -> None:
    c = await _container(database_url, tmp_path, timeout="1h", reminders="3s")
    timers = Timers(Timeouts(c.engine), database_url, scope="w4", reconcile_s=3600, horizon_s=1)
    try:
        await timers.start()
        [cp_id] = await _open(c, 1)  # after start-up: planned as it opens, its reminder too far ahead

        async def reminded() -> bool:
            return any(d.kind == "reminder" for d in await c.store.list_deliveries(checkpoint_id=cp_id))

        await asyncio.sleep(0.5)
        assert not await reminded()
        await until(reminded)
        cp = await c.store.get_checkpoint(cp_id)
        [event] = [e for e in await c.store.audit_events(run_id=cp.run_id) if e.kind == "checkpoint.reminded"]
        assert (event.at - cp.created_at).total_seconds() >= 3
    finally:
        await timers.stop()
        await c.close()


async def test_the_jobs_of_a_closed_checkpoint_are_removed(database_url: str, tmp_path: Path) -> None:
    c = await _container(database_url, tmp_path, timeout="40s")
    timers = Timers(Timeouts(c.engine), database_url, scope="w5", reconcile_s=3600, horizon_s=60)
    try:
        kept, closed = await _open(c, 2)
        await timers.start()
        assert sorted(timers.jobstore.job_ids()) == sorted([f"deadline:{kept}:0", f"deadline:{closed}:0"])
        await c.engine.decide(Decide(checkpoint_id=closed, action="approve", actor="mia", channel="cli"))
        await timers.reconcile()
        assert timers.jobstore.job_ids() == [f"deadline:{kept}:0"]
    finally:
        await timers.stop()
        await c.close()


async def test_a_reminder_that_passed_while_down_is_sent_on_start(database_url: str, tmp_path: Path) -> None:
    c = await _container(database_url, tmp_path, timeout="3h", reminders="1s, 2h")
    timers = Timers(Timeouts(c.engine), database_url, scope="w6", reconcile_s=3600, horizon_s=60)
    try:
        [cp_id] = await _open(c, 1)
        await asyncio.sleep(1.2)  # nothing is scheduled: no process was running
        await timers.start()

        async def reminded() -> bool:
            return any(d.kind == "reminder" for d in await c.store.list_deliveries(checkpoint_id=cp_id))

        await until(reminded)
        assert timers.jobstore.job_ids() == []  # the 2 h reminder and the 3 h deadline: not yet jobs
    finally:
        await timers.stop()
        await c.close()
