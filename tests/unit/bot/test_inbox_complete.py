"""App Home's "Waiting for you" is complete at any count: it asks the assignee index, not a scan."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.slack.inbox import waiting_for
from bot.wiring import build
from engine.ports import RunChange
from engine.testing import StaticDirectory
from tests.contract import _data as d
from tests.contract._data import at


async def test_the_oldest_ten_of_twelve_hundred_are_found(tmp_path: Path) -> None:
    (tmp_path / "roles.yml").write_text("ops:\n  members: [user:UOPS, group:SOPS]\n")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        workflows_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        skills_dir=tmp_path / "none",
    )
    container = await build(settings, with_sandbox=False)
    try:
        directory = StaticDirectory(groups={"SOPS": ["UGRP"]}, channels={"CQ": ["UCHAN"]})
        container.engine.deps.directory = directory
        store = container.store
        lease = await d.started(store)
        mine = [d.checkpoint(f"cp_m{n}", assignees=["user:UMIA"], created_at=at(n)) for n in range(10)]
        others = [
            d.checkpoint(f"cp_o{n:04d}", assignees=["role:ops"], created_at=at(100 + n)) for n in range(1200)
        ]
        queue = [
            d.checkpoint("cp_q", assignees=["channel:CQ"], created_at=at(50)),
            d.checkpoint("cp_own", assignees=["user:U_REQ"], created_at=at(51)),
        ]
        for start in range(0, 1212, 200):
            batch = [*mine, *queue, *others][start : start + 200]
            await store.commit(lease, RunChange(at=at(0), checkpoints=batch))
        found = await waiting_for(container, directory, "UMIA")
        assert sorted(cp.id for cp in found) == sorted(cp.id for cp in mine)
        assert [cp.id for cp in await waiting_for(container, directory, "UCHAN")] == ["cp_q"]
        assert len(await waiting_for(container, directory, "UGRP")) == 200  # through the group in the role
        # the requester of an approval is not asked to decide it
        assert await waiting_for(container, directory, "U_REQ") == []
    finally:
        await container.close()
