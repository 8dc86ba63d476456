"""ClientStore contract: API keys, idempotency records, webhook endpoints and the paged listings,
on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, cast

import pytest

from engine.clients import ApiKey, ClientStore, Idempotency, Secret, WebhookEndpoint, valid_secrets
from engine.errors import Conflict, NotFound
from engine.model import CheckpointStatus, RunStatus
from engine.ports import RunStore
from tests.contract._data import T0, at, checkpoint, delivery, draft, run


def clients(store: RunStore) -> ClientStore:
    """Every store under test implements both ports."""
    return cast(ClientStore, store)


def key(key_id: str = "key_1", **changes: Any) -> ApiKey:
    """An agent's key."""
    base = ApiKey(
        id=key_id,
        name="deploy-bot",
        secret_hash="ab" * 32,
        scopes=["checkpoints:create", "checkpoints:read"],
        signing_secrets=[Secret(value="whsec_AAAA")],
        created_by="alice",
        created_at=T0,
    )
    return base.model_copy(update=changes)


def endpoint(endpoint_id: str = "whe_1", **changes: Any) -> WebhookEndpoint:
    """An endpoint subscribed to decisions."""
    base = WebhookEndpoint(
        id=endpoint_id,
        client_id="key_1",
        url="https://hooks.example.com/signoff",
        events=["checkpoint.decided"],
        secrets=[Secret(value="whsec_BBBB")],
        created_at=T0,
    )
    return base.model_copy(update=changes)


async def test_keys_round_trip_revoke_and_audit(store: RunStore) -> None:
    c = clients(store)
    await c.add_api_key(key(as_user="U1"), [draft("api_key.created")])
    await c.add_api_key(key("key_2", name="other"), [draft("api_key.created")])
    assert await c.get_api_key("key_1") == key(as_user="U1")
    assert [k.id for k in await c.list_api_keys()] == ["key_1", "key_2"]
    with pytest.raises(Conflict):
        await c.add_api_key(key(), [draft("api_key.created")])
    revoked = await c.revoke_api_key("key_1", at(5), [draft("api_key.revoked")])
    assert revoked.revoked_at == at(5)
    again = await c.revoke_api_key("key_1", at(9), [draft("api_key.revoked")])
    assert again.revoked_at == at(5), "the first revocation time stays"
    with pytest.raises(NotFound):
        await c.get_api_key("key_9")
    with pytest.raises(NotFound):
        await c.revoke_api_key("key_9", at(1), [draft("api_key.revoked")])
    kinds = [e.kind for e in await store.audit_events()]
    assert kinds == ["api_key.created", "api_key.created", "api_key.revoked", "api_key.revoked"]


async def test_rotated_secrets_stay_valid_until_they_expire(store: RunStore) -> None:
    c = clients(store)
    await c.add_api_key(key(), [])
    rotated = [Secret(value="whsec_NEW"), Secret(value="whsec_AAAA", expires_at=at(60))]
    got = await c.set_key_secrets("key_1", rotated, [draft("api_key.secret_rotated")])
    assert got.signing_secrets == rotated
    assert valid_secrets(got.signing_secrets, at(59)) == ["whsec_NEW", "whsec_AAAA"]
    assert valid_secrets(got.signing_secrets, at(60)) == ["whsec_NEW"]
    with pytest.raises(NotFound):
        await c.set_key_secrets("key_9", rotated, [])


async def test_an_idempotency_key_keeps_its_first_request(store: RunStore) -> None:
    c = clients(store)
    first = Idempotency(
        client_id="key_1",
        key="k-1",
        request_hash="h1",
        resource="checkpoint",
        resource_id="run_1",
        created_at=T0,
    )
    assert await c.claim_idempotency(first) == first
    second = first.model_copy(update={"request_hash": "h2", "resource_id": "run_2", "created_at": at(3)})
    assert await c.claim_idempotency(second) == first, "same client, same key: the first record wins"
    other = second.model_copy(update={"client_id": "key_2"})
    assert await c.claim_idempotency(other) == other, "keys are scoped per client"


async def test_endpoints_list_rotate_and_delete(store: RunStore) -> None:
    c = clients(store)
    await c.add_endpoint(endpoint(), [draft("webhook_endpoint.created")])
    await c.add_endpoint(endpoint("whe_2", client_id="key_2"), [draft("webhook_endpoint.created")])
    with pytest.raises(Conflict):
        await c.add_endpoint(endpoint(), [])
    assert [e.id for e in await c.list_endpoints()] == ["whe_1", "whe_2"]
    assert [e.id for e in await c.list_endpoints(client_id="key_2")] == ["whe_2"]
    rotated = await c.set_endpoint_secrets("whe_1", [Secret(value="whsec_C")], [])
    assert rotated.secrets == [Secret(value="whsec_C")]
    gone = await c.delete_endpoint("whe_1", at(7), [draft("webhook_endpoint.deleted")])
    assert gone.deleted_at == at(7)
    assert [e.id for e in await c.list_endpoints()] == ["whe_2"]
    assert (await c.get_endpoint("whe_1")).deleted_at == at(7), "a deleted endpoint can still be read"
    for missing in (c.get_endpoint("whe_9"), c.delete_endpoint("whe_9", at(1), [])):
        with pytest.raises(NotFound):
            await missing


async def test_runs_page_newest_first_with_a_cursor(store: RunStore) -> None:
    c = clients(store)
    for i in range(5):
        status = RunStatus.waiting if i % 2 else RunStatus.succeeded
        await store.create_run(run(f"run_{i}", status=status, workflow_id="refund" if i < 4 else "ask"), [])
    first = await c.page_runs(status=None, workflow_id=None, after=None, limit=2)
    assert [r.id for r in first.runs] == ["run_4", "run_3"]
    assert first.after is not None
    second = await c.page_runs(status=None, workflow_id=None, after=first.after, limit=2)
    assert [r.id for r in second.runs] == ["run_2", "run_1"]
    last = await c.page_runs(status=None, workflow_id=None, after=second.after, limit=2)
    assert [r.id for r in last.runs] == ["run_0"]
    assert last.after is None
    waiting = await c.page_runs(status=[RunStatus.waiting], workflow_id="refund", after=None, limit=10)
    assert [r.id for r in waiting.runs] == ["run_3", "run_1"]
    assert (await c.page_runs(status=[], workflow_id=None, after=None, limit=10)).runs == []


async def test_checkpoints_page_by_status_and_exact_assignee(store: RunStore) -> None:
    c = clients(store)
    await store.create_run(run(), [])
    rows = [
        checkpoint("cp_1", assignees=["user:U1", "role:manager"]),
        checkpoint("cp_2", assignees=["user:U10"]),
        checkpoint("cp_3", assignees=["user:U1"], status=CheckpointStatus.resolved),
        checkpoint("cp_4", assignees=["user:U_1%"]),
    ]
    for cp in rows:
        await _insert_checkpoint(store, cp)
    mine = await c.page_checkpoints(open_only=True, assignee="user:U1", after=None, limit=10)
    assert [cp.id for cp in mine.checkpoints] == ["cp_1"], "U10 and the LIKE wildcards do not match U1"
    everything = await c.page_checkpoints(open_only=None, assignee="user:U1", after=None, limit=10)
    assert [cp.id for cp in everything.checkpoints] == ["cp_3", "cp_1"]
    literal = await c.page_checkpoints(open_only=None, assignee="user:U_1%", after=None, limit=10)
    assert [cp.id for cp in literal.checkpoints] == ["cp_4"]
    first = await c.page_checkpoints(open_only=None, assignee=None, after=None, limit=3)
    rest = await c.page_checkpoints(open_only=None, assignee=None, after=first.after, limit=3)
    assert [cp.id for cp in [*first.checkpoints, *rest.checkpoints]] == ["cp_4", "cp_3", "cp_2", "cp_1"]
    assert rest.after is None


async def test_deliveries_to_one_target_newest_first(store: RunStore) -> None:
    c = clients(store)
    rows = [delivery(f"dl_{i}", target="endpoint:whe_1" if i != 2 else "user:U1") for i in range(4)]
    await store.add_deliveries(rows, [])
    got = await c.deliveries_to("endpoint:whe_1", limit=2)
    assert [d.id for d in got] == ["dl_3", "dl_1"]
    assert (await c.get_delivery("dl_2")).target == "user:U1"
    with pytest.raises(NotFound):
        await c.get_delivery("dl_9")


async def _insert_checkpoint(store: RunStore, cp: Any) -> None:
    """Open a checkpoint the way a step commit does (under the run's lease)."""
    from datetime import timedelta

    from engine.ports import RunChange

    lease = await store.claim_run(cp.run_id, "owner", at(0), timedelta(seconds=30))
    assert lease is not None
    await store.commit(lease, RunChange(at=at(0), checkpoints=[cp], release=True))


async def test_other_processes_hear_of_a_resolution_only_once_it_commits(sql_backend: Any) -> None:
    """PostgreSQL: ``pg_notify`` runs in the resolving transaction, so a refused (rolled back)
    resolution wakes nobody; SQLite has no feed (``subscribe`` says so with None)."""
    import asyncio
    import uuid

    from engine.model import CheckpointOutcome
    from engine.ports import CheckpointUpdate
    from storage import SqlStore
    from tests.contract._data import decision

    store = sql_backend.store
    assert isinstance(store, SqlStore)
    heard: list[str | None] = []
    stop = await store.subscribe(heard.append)
    if sql_backend.name == "sqlite":
        assert stop is None
        return
    assert stop is not None
    # the channel is shared by every schema of the database: a unique run id tells ours apart
    run_id = f"run_{uuid.uuid4().hex}"
    try:
        await store.create_run(run(run_id, status=RunStatus.waiting), [])
        await _insert_checkpoint(store, checkpoint("cp_1", run_id=run_id))
        # opening a checkpoint is heard too (timers plan it at once): count from after that one
        for _ in range(500):
            if run_id in heard:
                break
            await asyncio.sleep(0.01)
        assert run_id in heard, "the opening of a checkpoint wakes the other processes"
        await asyncio.sleep(0.1)
        heard.clear()
        resolve = CheckpointUpdate(
            checkpoint_id="cp_1",
            expected_version=0,
            at=at(60),
            resolve=True,
            outcome=CheckpointOutcome.approved,
            decision=decision(run_id=run_id),
        )
        stale = resolve.model_copy(
            update={"expected_version": 7, "decision": decision("dec_2", run_id=run_id)}
        )
        with pytest.raises(Conflict):
            await store.update_checkpoint(stale)
        await store.update_checkpoint(resolve)
        for _ in range(500):
            if run_id in heard:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        ours = [h for h in heard if h == run_id]
        assert ours == [run_id], "one notification: the commit's, none for the refused attempt"
    finally:
        await stop()
