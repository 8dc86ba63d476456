"""A 2-second timeout through the real scheduler, the real server and FakeSlack: the reminder,
the escalation DM to the right person, and the final action recorded as the policy's."""

from __future__ import annotations

from pathlib import Path

from bot.scheduler import Timers
from bot.wiring import database_url
from engine.model import ResolvedBy, RunStatus
from engine.timeouts import Timeouts
from tests.scenario._harness import GROUP, GROUP_MEMBER, MANAGER, REQUESTER, slack_env

TIMED = f"""\
id: timed
title: Timed wire
inputs: {{type: object, properties: {{}}}}
nodes:
  - id: gate
    type: human
    title: "Wire to ACME"
    prompt: "Release the wire?"
    assignee: user:{MANAGER}
    options: [approve, reject]
    timeout: 2s
    reminders: [1s]
    escalation: {{action: escalate, to: user:{GROUP_MEMBER}, timeout: 2s, final_action: auto_reject}}
"""


async def test_reminder_escalation_dm_and_final_action(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "timed.yml").write_text(TIMED, encoding="utf-8")
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as env:
        c = env.container
        timers = Timers(Timeouts(c.engine), database_url(c.settings.database_url), scope="slack-timers")
        wake = c.engine.on_change
        assert wake is not None

        def both(run_id: str) -> None:
            wake(run_id)
            timers.changed(run_id)

        c.engine.on_change = both
        await timers.start()
        try:
            status, _ = await env.send("command", env.command("run timed", REQUESTER))
            assert status == 200
            [run] = await env.until(lambda: c.store.list_runs(workflow_id="timed"))

            async def finished() -> bool:
                return (await c.store.get_run(run.id)).status.final

            await env.until(finished, timeout=20)
        finally:
            await timers.stop()
        assert (await c.store.get_run(run.id)).status is RunStatus.rejected
        [decision] = await c.store.list_decisions(run_id=run.id)
        assert (decision.resolved_by, decision.rule, decision.actor) == (
            ResolvedBy.timeout,
            "auto_reject",
            "policy:auto_reject",
        )
        dm_manager = env.fake.api.dm_channel(MANAGER)
        dm_member = env.fake.api.dm_channel(GROUP_MEMBER)
        posts = env.fake.calls_to("chat.postMessage")
        reminder = [p for p in posts if "Reminder" in str(p.params.get("text"))]
        assert reminder
        assert reminder[0].params["channel"] == dm_manager
        assert reminder[0].params.get("thread_ts")  # in the thread of the manager's message
        escalation = [p for p in posts if "Escalated to you" in str(p.params.get("text"))]
        assert [p.params["channel"] for p in escalation] == [dm_member]
        assert f"<@{MANAGER}> had this for 2s" in str(escalation[0].params["text"])

        def final_cards() -> dict[str, str]:
            # the run ends before the outbox has sent its cards' last update: wait for it
            updates = env.fake.calls_to("chat.update")
            final = {u.params["channel"]: str(u.params["text"]) for u in updates}
            done = set(final) >= {dm_manager, dm_member} and all(
                "policy" in t.lower() for t in final.values()
            )
            return final if done else {}

        assert await env.until(final_cards, timeout=20)
        kinds = [e.kind for e in await c.store.audit_events(run_id=run.id)]
        assert "checkpoint.reminded" in kinds
        assert "checkpoint.escalated" in kinds


ROLE_REMINDERS = f"""\
id: role_reminders
inputs: {{type: object, properties: {{}}}}
nodes:
  - id: gate
    type: human
    prompt: "Release the wire?"
    assignee: group:{GROUP}
    options: [approve, reject]
    timeout: 1h
    reminders: [10m, 30m]
"""


async def test_every_reminder_to_a_group_reaches_each_member(tmp_path: Path) -> None:
    # the group's card and each reminder are fanned out to its members: the second reminder is
    # a new message, not one "already sent" because the first reached the same person
    (tmp_path / "workflows").mkdir()
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", workflow=ROLE_REMINDERS) as env:
        c = env.container
        run = await c.engine.start("role_reminders", {}, requester=REQUESTER)
        await c.engine.drive(run.id)
        [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
        dm_member = env.fake.api.dm_channel(GROUP_MEMBER)

        def reminders() -> list[object]:
            posts = env.fake.calls_to("chat.postMessage")
            return [p for p in posts if "Reminder" in str(p.params.get("text"))]

        def card_posted() -> bool:
            return any(p.params["channel"] == dm_member for p in env.fake.calls_to("chat.postMessage"))

        assert await env.until(card_posted, timeout=20)
        timeouts = Timeouts(c.engine)
        assert await timeouts.send_reminder(cp.id, 0)
        assert await env.until(lambda: len(reminders()) >= 1, timeout=20)
        assert await timeouts.send_reminder(cp.id, 1)
        assert await env.until(lambda: len(reminders()) >= 2, timeout=20)
        assert [p.params["channel"] for p in reminders()] == [dm_member, dm_member]  # type: ignore[attr-defined]
