"""The audit hash chain: canonical encoding, chaining and verification (pure functions)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.model import AuditEvent, Decision

__all__ = [
    "GENESIS_HASH",
    "PURGED",
    "SEALED_KEYS",
    "AuditReport",
    "canonical_json",
    "decision_digest",
    "event_hash",
    "purge_payload",
    "purged_comment",
    "purged_digest",
    "sha256_of",
    "verify_chain",
    "verify_decisions",
]

GENESIS_HASH = "0" * 64

SEALED_KEYS = frozenset({"diff", "comment", "values", "question", "answer", "data", "inputs", "detail"})
"""Payload keys that may hold people's data: a sealed event's hash covers their digests, not
their values, so a retention purge can remove the values and the chain still verifies."""
PURGED = "__purged__"
"""The key of a purge marker: ``{"__purged__": "<sha256 of the removed value>"}``."""


def purged_digest(value: Any) -> str | None:
    """The digest a purge marker stands for, or None when ``value`` is not one."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(PURGED), str):
        return str(value[PURGED])
    return None


def _seal(value: Any) -> dict[str, str]:
    return {"sealed": purged_digest(value) or sha256_of(value)}


def purge_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A sealed event's payload with its data keys replaced by purge markers."""
    return {
        k: ({PURGED: purged_digest(v) or sha256_of(v)} if k in SEALED_KEYS else v) for k, v in payload.items()
    }


def _sealed_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: (_seal(v) if k in SEALED_KEYS else v) for k, v in payload.items()}


def canonical_json(value: Any) -> str:
    """A stable JSON encoding (sorted keys, no spaces, ISO datetimes) used for every hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_of(value: Any) -> str:
    """SHA-256 hex digest of a value's canonical JSON (strings are hashed as they are)."""
    raw = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    channel: str,
    kind: str,
    run_id: str | None,
    checkpoint_id: str | None,
    payload: dict[str, Any],
    prev_hash: str,
    sealed: bool = False,
) -> str:
    """The hash of one event, covering every field and the previous event's hash.

    A sealed event (every event written since retention purges exist) covers the keys of
    ``SEALED_KEYS`` by their digests, so their values can be purged and the chain still holds.
    """
    body = {
        "seq": seq,
        "at": _iso(at),
        "actor": actor,
        "channel": channel,
        "kind": kind,
        "run_id": run_id,
        "checkpoint_id": checkpoint_id,
        "payload": _sealed_payload(payload) if sealed else payload,
        "prev_hash": prev_hash,
    }
    if sealed:
        body["sealed"] = True
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class AuditReport(BaseModel):
    """Result of ``verify_chain``: ok, or the first bad event and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(events: Iterable[AuditEvent], head: tuple[int, str]) -> AuditReport:
    """Check sequence numbers, each event's own hash, the links and the recorded head.

    Detects a modified event (its hash no longer matches), an inserted or deleted event (a gap
    or a broken link), reordering (sequence or link out of order) and truncation at the end
    (the head names a later event than the last one found).
    """
    prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for ev in events:
        count += 1
        if ev.seq != expected_seq:
            kind = "missing (deleted)" if ev.seq > expected_seq else "out of order or inserted"
            return AuditReport(
                ok=False,
                checked=count,
                first_bad_seq=expected_seq if ev.seq > expected_seq else ev.seq,
                problem=f"expected event {expected_seq}, found {ev.seq}: event {kind}",
            )
        recomputed = event_hash(
            seq=ev.seq,
            at=ev.at,
            actor=ev.actor,
            channel=ev.channel,
            kind=ev.kind,
            run_id=ev.run_id,
            checkpoint_id=ev.checkpoint_id,
            payload=ev.payload,
            prev_hash=ev.prev_hash,
            sealed=ev.sealed,
        )
        if ev.prev_hash != prev:
            return AuditReport(
                ok=False,
                checked=count,
                first_bad_seq=ev.seq,
                problem=f"event {ev.seq} does not link to event {ev.seq - 1}: inserted, deleted or reordered",
            )
        if recomputed != ev.hash:
            return AuditReport(
                ok=False,
                checked=count,
                first_bad_seq=ev.seq,
                problem=f"event {ev.seq} was modified: its content no longer matches its hash",
            )
        prev = ev.hash
        expected_seq += 1
    head_seq, head_hash = head
    if head_seq != expected_seq - 1 or (head_seq and head_hash != prev):
        return AuditReport(
            ok=False,
            checked=count,
            first_bad_seq=expected_seq,
            problem=f"the chain ends at event {expected_seq - 1} but the recorded head is event {head_seq}: "
            "events were deleted from the end or appended outside the store",
        )
    return AuditReport(ok=True, checked=count)


def decision_digest(decision: Decision) -> str:
    """The hash a decision's audit event records, so that a changed decision row is caught.

    Free-text and payload fields enter as their own digests (``data``, ``comment``, ``diff``), so
    a retention purge can drop them and keep the digests, and the chain still verifies.
    """
    return sha256_of(
        {
            "id": decision.id,
            "checkpoint_id": decision.checkpoint_id,
            "run_id": decision.run_id,
            "action": decision.action,
            "actor": decision.actor,
            "channel": decision.channel,
            "resolved_by": decision.resolved_by.value,
            "rule": decision.rule,
            "shown_hash": decision.shown_hash,
            "output_hash": decision.output_hash,
            "created_at": _iso(decision.created_at),
            "data": purged_digest(decision.data) or sha256_of(decision.data),
            "comment": _comment_digest(decision.comment),
            "diff": purged_digest(decision.diff) or sha256_of(decision.diff),
        }
    )


def _comment_digest(comment: str | None) -> str:
    if comment is not None and comment.startswith(PURGED + ":"):
        return comment.removeprefix(PURGED + ":")
    return sha256_of(comment or "")


def purged_comment(comment: str | None) -> str:
    """The stored form of a purged decision comment (its digest, marked)."""
    return f"{PURGED}:{_comment_digest(comment)}"


def verify_decisions(events: Iterable[AuditEvent], decisions: Iterable[Decision]) -> AuditReport:
    """Check every stored decision against the hash its ``decision.recorded`` event holds.

    Finds a decision row that was changed (its digest no longer matches), deleted (an event
    names it, no row has it) or inserted outside the engine (a row no event names). Events
    written before decisions were hashed into the chain carry no digest and are skipped.
    """
    events = list(events)
    recorded: dict[str, tuple[int, str]] = {}
    count = 0
    for ev in events:
        ref = ev.payload.get("decision") if ev.kind == "decision.recorded" else None
        if isinstance(ref, dict) and isinstance(ref.get("id"), str):
            recorded[ref["id"]] = (ev.seq, str(ref.get("hash", "")))
    rows = {d.id: d for d in decisions}
    for decision_id, (seq, digest) in recorded.items():
        count += 1
        row = rows.pop(decision_id, None)
        if row is None:
            return AuditReport(
                ok=False,
                checked=count,
                first_bad_seq=seq,
                problem=f"decision {decision_id} (audit event {seq}) is missing: it was deleted",
            )
        if decision_digest(row) != digest:
            return AuditReport(
                ok=False,
                checked=count,
                first_bad_seq=seq,
                problem=f"decision {decision_id} was modified after audit event {seq} recorded it "
                "(actor, action, data or time no longer match)",
            )
    unexplained = sorted(rows.values(), key=lambda d: d.created_at)
    legacy = {ev.checkpoint_id for ev in _legacy_decision_events(events)}
    for row in unexplained:
        if row.checkpoint_id in legacy:
            continue
        return AuditReport(
            ok=False,
            checked=count,
            problem=f"decision {row.id} has no audit event: it was inserted outside Signoff",
        )
    return AuditReport(ok=True, checked=count)


def _legacy_decision_events(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.kind == "decision.recorded" and "decision" not in e.payload]
