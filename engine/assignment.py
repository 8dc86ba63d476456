"""Assignment strategies for pools: round robin and least busy.

Both derive their state from the checkpoints in the store, so it survives restarts and is shared
by every replica: round robin continues after the pool member who got this node's last
checkpoint; least busy picks the member with the fewest open checkpoints (ties: pool order).
"""

from __future__ import annotations

from typing import Any

from engine.ports import RunStore

__all__ = ["pick_from_pool"]

_RECENT = 500


async def pick_from_pool(
    spec: dict[str, Any], *, store: RunStore | None, node_id: str, skip: set[str] | None = None
) -> list[str]:
    """The principal a ``{strategy, pool}`` assignee resolves to now.

    Members in ``skip`` (people on delegation) are passed over, so their share goes to the rest
    of the pool rather than to their delegate; when every member is skipped, the usual pick stands.
    """
    pool = [str(p) for p in spec.get("pool", [])]
    if not pool or store is None:
        return pool
    away = {f"user:{u}" for u in (skip or set())}
    present = [p for p in pool if p not in away] or pool
    if spec.get("strategy") == "least_busy":
        open_cps = await store.list_checkpoints(open_only=True, limit=1_000_000)
        load = {p: 0 for p in pool}
        for cp in open_cps:
            for principal in cp.assignees:
                if principal in load:
                    load[principal] += 1
        return [min(present, key=lambda p: (load[p], pool.index(p)))]
    recent = await store.list_checkpoints(limit=_RECENT)
    last = next(
        (cp for cp in recent if cp.node_id == node_id and len(cp.assignees) == 1 and cp.assignees[0] in pool),
        None,
    )
    start = 0 if last is None else pool.index(last.assignees[0]) + 1
    for offset in range(len(pool)):
        candidate = pool[(start + offset) % len(pool)]
        if candidate in present:
            return [candidate]
    return [pool[start % len(pool)]]
