"""Which user groups "waiting for me" reads, and where: never the history of role assignments,
a role's groups in each installed workspace outside Slack, the request's workspace in Slack."""

from __future__ import annotations

from datetime import UTC, datetime

from engine._memory_store import InMemoryRunStore
from engine.catalog import WorkflowCatalog
from engine.installations import SlackInstallation
from engine.nodes.base import NodeDeps
from engine.roles import Role
from engine.service import Engine
from engine.testing import FixedClock, SeqIds
from tests.unit.engine.conftest import RecordingHttp

ROLES = {"payers": Role(members=["group:SPAY"])}
AT = datetime(2026, 1, 1, tzinfo=UTC)


class AskingStore(InMemoryRunStore):
    """The in-memory store, remembering which principal kinds the assignee index was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, ...]] = []
        self.installations_read = 0

    async def open_principals(
        self, kinds: tuple[str, ...] = ("group", "channel")
    ) -> list[tuple[str, str | None]]:
        self.asked.append(kinds)
        return await super().open_principals(kinds)

    async def list_installations(self) -> list[SlackInstallation]:
        self.installations_read += 1
        return await super().list_installations()


class TeamGroups:
    """A ``Directory`` whose user groups differ per workspace, every read recorded."""

    def __init__(self, groups: dict[str | None, dict[str, list[str]]]) -> None:
        self.groups = groups
        self.reads: list[tuple[str, str | None]] = []

    async def group_members(self, group_id: str, team: str | None = None) -> list[str]:
        self.reads.append((group_id, team))
        return list(self.groups.get(team, {}).get(group_id, []))

    async def channel_members(self, channel_id: str) -> list[str]:
        return []


async def _engine(
    directory: TeamGroups, teams: list[str], roles: dict[str, Role] = ROLES
) -> tuple[Engine, AskingStore]:
    store = AskingStore()
    for team in teams:
        await store.save_installation(SlackInstallation(team_id=team, installed_at=AT, updated_at=AT), [])
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), http=RecordingHttp(), roles=roles, directory=directory)
    engine = Engine(store=store, catalog=WorkflowCatalog({}, roles=roles), deps=deps, owner="test-1")
    return engine, store


async def test_the_inbox_never_reads_the_role_range_of_the_assignee_index() -> None:
    # the index keeps a row for every checkpoint ever assigned to a role: reading the role range
    # on every inbox would cost the whole history of role assignments
    engine, store = await _engine(TeamGroups({}), ["TA", "TB"])
    await engine.principals_of("user:UB1")
    await engine.waiting_for("user:UB1")
    assert store.asked
    assert all("role" not in kinds for kinds in store.asked), store.asked


async def test_outside_slack_a_roles_group_is_read_in_each_installed_workspace() -> None:
    directory = TeamGroups({"TB": {"SPAY": ["UB1"]}, "TA": {"SPAY": ["UA1"]}})
    engine, _ = await _engine(directory, ["TA", "TB"])
    assert "role:payers" in await engine.principals_of("UB1")
    assert "role:payers" in await engine.principals_of("UA1")
    assert "role:payers" not in await engine.principals_of("UC1")
    assert {team for _, team in directory.reads} == {None, "TA", "TB"}


async def test_a_slack_request_reads_a_roles_group_in_its_own_workspace_only() -> None:
    directory = TeamGroups({"TB": {"SPAY": ["UB1"]}, "TA": {"SPAY": ["UA1"]}})
    engine, _ = await _engine(directory, ["TA", "TB"])
    assert "role:payers" not in await engine.principals_of("UB1", team="TA")
    assert "role:payers" in await engine.principals_of("UA1", team="TA")
    assert {team for _, team in directory.reads} == {"TA"}


async def test_with_one_workspace_a_roles_group_is_read_in_the_workspace_at_hand() -> None:
    directory = TeamGroups({None: {"SPAY": ["U1"]}})
    engine, _ = await _engine(directory, ["TA"])
    assert "role:payers" in await engine.principals_of("U1")
    assert {team for _, team in directory.reads} == {None}


async def test_without_a_role_that_holds_a_group_the_installations_are_not_read() -> None:
    roles = {"payers": Role(members=["user:U1"])}
    engine, store = await _engine(TeamGroups({}), ["TA", "TB"], roles)
    assert "role:payers" in await engine.principals_of("U1")
    await engine.waiting_for("U1")
    assert store.installations_read == 0
