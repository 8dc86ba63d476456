"""One identity per person: a Slack id and an email address linked to one person decide as one.

A role member listed as ``email:ann@corp.example`` decides from the console (as her email) and
from Slack (as ``U024BE7LH``) once the two are linked, and counts once toward a quorum whichever
channel each attempt comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from engine.catalog import WorkflowCatalog
from engine.commands import Cancel, Decide
from engine.errors import Conflict, NotAllowed
from engine.loader import load_workflow_text
from engine.model import CheckpointStatus
from engine.nodes.base import NodeDeps
from engine.people import Person, as_principal, email_identity
from engine.policy import expand_principals
from engine.roles import Role, parse_principal
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds

ANN_SLACK, ANN_EMAIL = "U024BE7LH", "email:ann@corp.example"
ROLES = {
    "finance": Role(members=["email:Ann@Corp.example", "user:felix", "user:fred"]),
    "admin": Role(members=["email:olga@corp.example"], admin=True),
}
RELEASE = """\
id: pay
nodes:
  - id: release
    type: human
    prompt: "Release the payment?"
    assignee: role:finance
    quorum: 2
  - {id: paid, type: set, data: {ok: true}}
edges: [{from: release, to: paid, when: "response.action == 'approve'"}]
"""
DIRECT = """\
id: direct
nodes:
  - {id: ok, type: human, prompt: "ok?", assignee: "email:ann@corp.example"}
"""


@dataclass
class World:
    engine: Engine
    store: InMemoryRunStore


@pytest.fixture
def world() -> World:
    workflows = {}
    for text in (RELEASE, DIRECT):
        wf = load_workflow_text(text, file="test.yml", roles=ROLES)
        workflows[wf.id] = wf
    store = InMemoryRunStore()
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), roles=ROLES, people=store)
    engine = Engine(store=store, catalog=WorkflowCatalog(workflows, roles=ROLES), deps=deps, owner="t")
    return World(engine, store)


async def _link_ann(w: World) -> None:
    ann = Person(id="per_ann", name="Ann", identities=[ANN_EMAIL, f"user:{ANN_SLACK}"], created_at=_NOW)
    await w.store.link_person(ann, [])


_NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _open(w: World, workflow: str = "pay", requester: str = "rita") -> str:
    run = await w.engine.start(workflow, {}, requester=requester)
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    return cp.id


def _approve(cp_id: str, actor: str, channel: str) -> Decide:
    return Decide(checkpoint_id=cp_id, action="approve", actor=actor, channel=channel)


def test_email_principals_are_accepted_in_lower_case() -> None:
    assert parse_principal("email:Ann@Corp.Example") == ("email", "ann@corp.example")
    assert as_principal("email:Ann@Corp.Example") == "email:ann@corp.example"
    assert as_principal("U024BE7LH") == "user:U024BE7LH"
    assert email_identity(" Ann@Corp.Example ") == "email:ann@corp.example"
    with pytest.raises(ValueError, match="unknown assignee"):
        parse_principal("user:ann@corp.example")
    with pytest.raises(ValueError, match="not an email address"):
        email_identity("ann@")


async def test_the_same_person_deciding_from_two_channels_counts_once(world: World) -> None:
    await _link_ann(world)
    cp_id = await _open(world)
    assert await world.engine.decide(_approve(cp_id, ANN_SLACK, "slack")) is None  # one vote of two
    before = await world.store.get_checkpoint(cp_id)
    with pytest.raises(NotAllowed, match="already approved") as refused:
        await world.engine.decide(_approve(cp_id, ANN_EMAIL, "web"))
    assert refused.value.rule == "already_voted"
    after = await world.store.get_checkpoint(cp_id)
    assert after == before
    assert after.status is CheckpointStatus.open
    events = await world.store.audit_events()
    assert events[-1].kind == "decision.refused"
    assert events[-1].actor == ANN_EMAIL
    # another person completes the quorum
    decision = await world.engine.decide(_approve(cp_id, "felix", "slack"))
    assert decision is not None
    assert (await world.store.get_checkpoint(cp_id)).status is CheckpointStatus.resolved


async def test_the_other_order_is_refused_too(world: World) -> None:
    await _link_ann(world)
    cp_id = await _open(world)
    assert await world.engine.decide(_approve(cp_id, ANN_EMAIL, "web")) is None
    with pytest.raises(NotAllowed, match="already approved"):
        await world.engine.decide(_approve(cp_id, ANN_SLACK, "slack"))


async def test_an_unlinked_slack_id_is_not_the_email_member(world: World) -> None:
    cp_id = await _open(world)
    with pytest.raises(NotAllowed, match="only the assignees") as refused:
        await world.engine.decide(_approve(cp_id, ANN_SLACK, "slack"))
    assert refused.value.rule == "not_assignee"
    await _link_ann(world)
    assert await world.engine.decide(_approve(cp_id, ANN_SLACK, "slack")) is None


async def test_the_requester_is_the_same_person_under_any_identity(world: World) -> None:
    await _link_ann(world)
    cp_id = await _open(world, "direct", requester=ANN_EMAIL)
    with pytest.raises(NotAllowed, match="you started this run") as refused:
        await world.engine.decide(_approve(cp_id, ANN_SLACK, "slack"))
    assert refused.value.rule == "self_approval"


async def test_waiting_for_finds_an_email_members_checkpoints_from_slack(world: World) -> None:
    cp_id = await _open(world)
    assert [cp.id for cp in (await world.engine.waiting_for(ANN_SLACK)).items] == []
    assert [cp.id for cp in (await world.engine.waiting_for(ANN_EMAIL)).items] == [cp_id]
    await _link_ann(world)
    assert [cp.id for cp in (await world.engine.waiting_for(ANN_SLACK)).items] == [cp_id]
    direct = await _open(world, "direct")
    assert [cp.id for cp in (await world.engine.waiting_for(ANN_SLACK)).items] == [direct, cp_id]


async def test_an_admin_listed_by_email_may_cancel_from_slack(world: World) -> None:
    cp_id = await _open(world)
    run_id = (await world.store.get_checkpoint(cp_id)).run_id
    with pytest.raises(NotAllowed, match="only the person who started"):
        await world.engine.cancel(Cancel(run_id=run_id, actor="U0OLGA", channel="slack"))
    olga = Person(id="per_olga", identities=["email:olga@corp.example", "user:U0OLGA"], created_at=_NOW)
    await world.store.link_person(olga, [])
    assert (await world.engine.cancel(Cancel(run_id=run_id, actor="U0OLGA", channel="slack"))).status.final


async def test_an_identity_belongs_to_one_person(world: World) -> None:
    await _link_ann(world)
    other = Person(id="per_other", identities=[f"user:{ANN_SLACK}"], created_at=_NOW)
    with pytest.raises(Conflict, match="already belongs to person per_ann"):
        await world.store.link_person(other, [])


async def test_slack_fan_out_leaves_email_members_to_the_email_channel() -> None:
    users, _ = await expand_principals(["role:finance"], ROLES, None)
    assert users == {"felix", "fred"}


class CountingPeople(InMemoryRunStore):
    """The in-memory store, counting how often a person is looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []

    async def find_person(self, identity: str) -> Person | None:
        self.lookups.append(identity)
        return await super().find_person(identity)


async def test_a_page_of_what_waits_reads_each_person_once() -> None:
    wf = load_workflow_text(DIRECT, file="test.yml", roles=ROLES)
    store = CountingPeople()
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), roles=ROLES, people=store)
    engine = Engine(store=store, catalog=WorkflowCatalog({wf.id: wf}, roles=ROLES), deps=deps, owner="t")
    w = World(engine, store)
    await _link_ann(w)
    opened = [await _open(w, "direct") for _ in range(20)]
    store.lookups.clear()
    page = await engine.waiting_for(ANN_SLACK)
    assert sorted(cp.id for cp in page.items) == sorted(opened)
    # Ann (the actor) and Rita (every item's requester), not both again for each of 20 items
    assert sorted(store.lookups) == sorted([f"user:{ANN_SLACK}", "user:rita"])
    # the page says which principals it read by (the console shows them)
    assert page.principals == await engine.principals_of(ANN_SLACK)
    assert {f"user:{ANN_SLACK}", ANN_EMAIL} <= set(page.principals)
