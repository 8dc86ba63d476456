"""InstallationStore contract: Slack installations (multi-workspace mode) and the workspace of a
run and its checkpoint, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, cast

from engine.installations import InstallationStore, SlackInstallation
from engine.ports import RunChange, RunStore
from tests.contract._data import T0, TTL, at, checkpoint, draft, run
from tests.contract.conftest import Backend


def installs(store: RunStore) -> InstallationStore:
    """Every store under test implements both ports."""
    assert isinstance(store, InstallationStore)
    return cast(InstallationStore, store)


def installation(team: str = "T1", **changes: Any) -> SlackInstallation:
    """A workspace's installation with rotating bot tokens (ciphertext as far as the store knows)."""
    base = SlackInstallation(
        team_id=team,
        team_name="Acme",
        app_id="A1",
        bot_id="B1",
        bot_user_id="UBOT1",
        bot_token="gAAAA-bot",
        bot_refresh_token="gAAAA-refresh",
        bot_token_expires_at=at(43200),
        bot_scopes=["chat:write", "commands"],
        user_id="UINSTALLER",
        installed_at=T0,
        updated_at=T0,
    )
    return base.model_copy(update=changes)


async def test_save_get_replace_list_delete(backend: Backend) -> None:
    store = installs(backend.store)
    assert await store.get_installation("T1") is None
    await store.save_installation(installation("T1"), [draft("slack.installed", run_id=None)])
    await store.save_installation(installation("T2", team_name="Globex"), [])
    assert await store.get_installation("T1") == installation("T1")
    rotated = installation("T1", bot_token="gAAAA-new", updated_at=at(60), installed_at=at(60))
    await store.save_installation(rotated, [])
    got = await store.get_installation("T1")
    assert got is not None
    assert (got.bot_token, got.updated_at) == ("gAAAA-new", at(60))
    assert got.installed_at == T0, "installing again keeps the first install time"
    assert [i.team_id for i in await store.list_installations()] == ["T1", "T2"]
    assert await store.delete_installation("T1", [draft("slack.uninstalled", run_id=None)])
    assert not await store.delete_installation("T1", [draft("slack.uninstalled", run_id=None)])
    assert await store.get_installation("T1") is None
    kinds = [e.kind for e in await backend.store.audit_events()]
    assert kinds == ["slack.installed", "slack.uninstalled"], "a delete that found nothing is not audited"


async def test_a_run_and_its_checkpoint_keep_their_workspace(backend: Backend) -> None:
    store = backend.store
    await store.create_run(run("run_1", team="T1"), [])
    await store.create_run(run("run_2"), [])
    assert (await store.get_run("run_1")).team == "T1"
    assert (await store.get_run("run_2")).team is None
    lease = await store.claim_run("run_1", "w1", T0, TTL)
    assert lease is not None
    await store.commit(lease, RunChange(at=at(1), checkpoints=[checkpoint("cp_1", "run_1", team="T1")]))
    assert (await store.get_checkpoint("cp_1")).team == "T1"
    other = await backend.another().get_checkpoint("cp_1")
    assert other.team == "T1", "another process reads the same workspace"
