"""50 concurrent decisions on one checkpoint: one wins, the run resumes once, later steps run once.

The deciders are spread over five engines, each with its own store (own connections and
threads), as five processes would be, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

from bot.config import Settings
from bot.wiring import Container, build
from engine.commands import Decide
from engine.errors import Conflict
from engine.model import RunStatus

WORKFLOW = """\
id: race
inputs: {type: object, properties: {n: {type: integer}}}
nodes:
  - id: before
    type: set
    data: {n: "{{ inputs.n }}"}
  - id: gate
    type: human
    prompt: "Go?"
    assignee: {strategy: round_robin, pool: [user:a0, user:a1, user:a2, user:a3, user:a4]}
    options: [approve, reject]
  - id: after
    type: set
    data: {ok: true}
  - id: tell
    type: notify
    text: "done"
edges:
  - {from: before, to: gate}
  - {from: gate, to: after, when: "response.action == 'approve'"}
  - {from: after, to: tell}
"""

# anyone in the pool may decide; the pool is spelled out so that the test does not depend on
# how a strategy picks one person
WORKFLOW = WORKFLOW.replace(
    "{strategy: round_robin, pool: [user:a0, user:a1, user:a2, user:a3, user:a4]}",
    "[user:a0, user:a1, user:a2, user:a3, user:a4]",
)


async def _containers(url: str, tmp_path: Path, count: int) -> list[Container]:
    workflows = tmp_path / "workflows"
    workflows.mkdir(exist_ok=True)
    (workflows / "race.yml").write_text(WORKFLOW, encoding="utf-8")
    settings = Settings(
        database_url=url,
        workflows_dir=workflows,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
    )
    return [await build(settings, with_sandbox=False) for _ in range(count)]


async def test_fifty_way_race(database_url: str, tmp_path: Path) -> None:
    containers = await _containers(database_url, tmp_path, 5)
    try:
        first = containers[0]
        run = await first.engine.start("race", {"n": 1}, requester="requester")
        await first.engine.drive(run.id)
        [cp] = await first.store.list_checkpoints(run_id=run.id, open_only=True)

        async def decide(i: int) -> str:
            c = containers[i % len(containers)]
            action = "approve" if i % 3 else "reject"
            try:
                await c.engine.decide(
                    Decide(checkpoint_id=cp.id, action=action, actor=f"a{i % 5}", channel="race")
                )
            except Conflict as exc:
                # every loser is told who won
                return "conflict" if exc.winner and "already" in str(exc) else f"bad conflict: {exc}"
            return action

        results = await asyncio.gather(*(decide(i) for i in range(50)))
        counts = collections.Counter(results)
        assert counts["conflict"] == 49, counts
        decisions = await first.store.list_decisions(checkpoint_id=cp.id)
        assert len(decisions) == 1
        for c in containers:  # any leftover work is picked up, as the recovery loop would
            await c.engine.recover()
        final = await first.store.get_run(run.id)
        expected = RunStatus.succeeded if decisions[0].action == "approve" else RunStatus.rejected
        assert final.status is expected
        steps = collections.Counter(s.node_id for s in await first.store.list_steps(run.id))
        if expected is RunStatus.succeeded:
            assert steps == {"before": 1, "gate": 1, "after": 1, "tell": 1}
        else:
            assert steps == {"before": 1, "gate": 1}
        events = collections.Counter(e.kind for e in await first.store.audit_events(run_id=run.id))
        assert events["decision.recorded"] == 1
        assert events[f"run.{expected.value}"] == 1
    finally:
        for c in containers:
            await c.close()
