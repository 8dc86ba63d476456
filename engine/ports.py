"""Ports: the interfaces the engine needs from the outside world.

Storage, skills and bot implement these; ``engine.testing`` ships in-memory fakes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from engine.model import (
    AuditEvent,
    Checkpoint,
    CheckpointOutcome,
    Decision,
    Delegation,
    Delivery,
    DeliveryStatus,
    Priority,
    Run,
    RunStatus,
    Step,
    WorkflowPublication,
    WorkflowVersion,
)

__all__ = [
    "LLM",
    "AuditDraft",
    "CheckpointTimes",
    "CheckpointUpdate",
    "Claimed",
    "Clock",
    "Directory",
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
    "IdFactory",
    "LLMRequest",
    "LLMResponse",
    "Lease",
    "PurgeReport",
    "RunChange",
    "RunStore",
    "Sandbox",
    "SandboxLimits",
    "SandboxRequest",
    "SandboxResult",
    "SendResult",
    "Sender",
    "TimerQuery",
    "conflict_message",
    "merge_pending",
]


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- time and ids


class Clock(Protocol):
    """Time, injected so that hour-long timeouts can be tested in milliseconds."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class IdFactory(Protocol):
    """Unique ids, injected so tests are deterministic."""

    def new(self, prefix: str) -> str:
        """A new unique id starting with ``prefix`` (e.g. ``run_``)."""
        ...


# --------------------------------------------------------------------------- storage


class AuditDraft(_Msg):
    """An audit event before the store chains it (assigns seq, prev_hash and hash)."""

    at: datetime
    actor: str
    channel: str
    kind: str
    run_id: str | None = None
    checkpoint_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class Lease(_Msg):
    """Proof that this process executes a run; ``epoch`` fences every commit."""

    run_id: str
    owner: str
    epoch: int
    expires_at: datetime


class Claimed(_Msg):
    """A taken lease, with the run and its steps as they were when the lease was taken."""

    lease: Lease
    run: Run
    steps: list[Step]


class RunChange(_Msg):
    """Everything one step commit changes, applied in one transaction under a lease."""

    at: datetime
    steps: list[Step] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    pending_remove: list[str] = Field(default_factory=list)
    pending_add: list[str] = Field(default_factory=list)
    status: RunStatus | None = None
    reason: str | None = None
    rejected: bool = False
    finished: bool = False
    release: bool = False
    deliveries: list[Delivery] = Field(default_factory=list)
    audit: list[AuditDraft] = Field(default_factory=list)


class CheckpointUpdate(_Msg):
    """A compare-and-set on a checkpoint's version: a decision, a quorum vote, or an escalation.

    With ``resolve=True`` the checkpoint closes with ``outcome`` and ``decision``; the run gets
    ``pending_add`` and leaves ``waiting`` (becomes ``queued``) so that a driver resumes it.
    """

    checkpoint_id: str
    expected_version: int
    at: datetime
    resolve: bool = False
    outcome: CheckpointOutcome | None = None
    decision: Decision | None = None
    step: Step | None = None
    pending_add: list[str] = Field(default_factory=list)
    rejected: bool = False
    approvals: list[str] | None = None
    assignees: list[str] | None = None
    due_at: datetime | None = None
    clear_due: bool = False
    escalation_level: int | None = None
    priority: Priority | None = None
    proposed: dict[str, Any] | None = None
    editors: list[str] | None = None
    shown_hash: str | None = None
    content_version: int | None = None
    deliveries: list[Delivery] = Field(default_factory=list)
    audit: list[AuditDraft] = Field(default_factory=list)


class CheckpointTimes(_Msg):
    """What a timer service needs of an open checkpoint to plan its deadline and reminders."""

    checkpoint_id: str
    run_id: str
    node_id: str
    workflow_hash: str
    due_at: datetime
    escalation_level: int
    created_at: datetime


class TimerQuery(_Msg):
    """Which open checkpoints with a deadline ``RunStore.checkpoint_times`` returns, one page.

    ``due_before``: those whose deadline is at or before it. ``opened_between``: those at
    escalation level 0 opened in ``(start, end]`` (their reminders count from then).
    ``ids``: those among these checkpoints (ordered by id, one page). Without any: every open
    checkpoint with a deadline. A page is ordered by ``(due_at, id)`` (``opened_between``:
    ``(created_at, id)``); ``after`` is that key of the previous page's last row.
    """

    due_before: datetime | None = None
    opened_between: tuple[datetime, datetime] | None = None
    ids: list[str] | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 1000


class PurgeReport(_Msg):
    """What a retention purge removed (or, with ``dry_run``, would remove)."""

    run_ids: list[str] = Field(default_factory=list)
    dry_run: bool = False
    runs: int = 0
    steps: int = 0
    checkpoints: int = 0
    decisions: int = 0
    deliveries: int = 0
    events: int = 0


def merge_pending(pending: list[str], remove: list[str], add: list[str]) -> list[str]:
    """How every store applies a change to a run's pending nodes: remove, then add, in order,
    never repeating one."""
    gone = set(remove)
    out = [p for p in pending if p not in gone]
    for node in add:
        if node not in out:
            out.append(node)
    return out


def conflict_message(
    checkpoint_id: str,
    outcome: CheckpointOutcome | None,
    actor: str | None,
    at: datetime | None,
    action: str | None,
) -> str:
    """The words of a lost compare-and-set, the same from every store:
    ``checkpoint X already approved by U123 at 2026-01-01 09:00:00 UTC``."""
    if outcome is None or outcome is CheckpointOutcome.option:
        what = f"resolved ({action})" if action else "resolved"
    else:
        what = outcome.value.replace("_", " ")
    text = f"checkpoint {checkpoint_id} already {what}"
    if actor is not None:
        text += f" by {actor}"
    if at is not None:
        text += f" at {at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC"
    return text


class RunStore(Protocol):
    """Durable state of workflows, runs, steps, checkpoints, decisions, outbox and audit.

    Every method is one transaction. Every state change carries its audit drafts, which the
    store chains and writes in the same transaction.
    """

    async def publish_workflow(self, version: WorkflowVersion) -> None:
        """Store a workflow version; publishing the same hash again is a no-op."""
        ...

    async def get_workflow_version(self, content_hash: str) -> WorkflowVersion:
        """The pinned source of a workflow version. Raises NotFound."""
        ...

    async def publish_version(
        self, version: WorkflowVersion, *, label: str, note: str, actor: str, channel: str | None = None
    ) -> tuple[WorkflowPublication, bool]:
        """Store the source (as ``publish_workflow``) and make it the workflow's newest
        publication under the next number, unless the newest already serves that hash.

        Returns the newest publication and whether this call created it. Two processes
        publishing the same source at once create one number. With ``channel``, a new number
        also appends its audit event (``engine.versions.published_event``) in the same
        transaction.
        """
        ...

    async def list_publications(self, workflow_id: str | None = None) -> list[WorkflowPublication]:
        """Publications oldest first: of one workflow, or of every workflow (by id, then number)."""
        ...

    async def create_run(self, run: Run, audit: list[AuditDraft], steps: list[Step] | None = None) -> None:
        """Insert a new run (status queued, pending = [entry]), with ``steps`` it starts with (a
        rerun's reused steps) in the same transaction. Raises Conflict when the id exists."""
        ...

    async def reopen_run(self, run_id: str, at: datetime, steps: list[Step], audit: list[AuditDraft]) -> Run:
        """Retry a failed run in place: ``steps`` (its failed steps, marked ``running`` for their
        next attempt) are written and their nodes become pending; the run is queued again, with no
        reason and no end, its lease free. Raises ``Conflict`` unless the run is ``failed``."""
        ...

    async def reruns_of(self, run_id: str) -> list[Run]:
        """The runs that rerun ``run_id`` (``Run.rerun_of``), oldest first."""
        ...

    async def claim_run(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
        """Take the run's lease when it is free or expired and the run is not final.

        Returns None when another owner holds a live lease or the run is final.
        """
        ...

    async def claim(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Claimed | None:
        """``claim_run``, also returning the run and its steps (in start order), in one transaction.

        Returns None when another owner holds a live lease or the run is final. Raises NotFound.
        """
        ...

    async def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        """Extend a held lease. Raises LeaseLost when it was taken over or fenced."""
        ...

    async def commit(self, lease: Lease, change: RunChange) -> Run:
        """Apply a step's results atomically; refused with LeaseLost under a stale lease."""
        ...

    async def update_checkpoint(self, update: CheckpointUpdate) -> Checkpoint:
        """Compare-and-set on the checkpoint version.

        Raises:
            Conflict: the checkpoint is resolved or its version moved; names the winner.
            NotFound: no such checkpoint.
        """
        ...

    async def resolve_and_claim(
        self, update: CheckpointUpdate, owner: str, ttl: timedelta
    ) -> tuple[Checkpoint, Claimed | None]:
        """``update_checkpoint``, then ``claim`` of the checkpoint's run for ``owner`` at
        ``update.at``, in one transaction: a decision that resumes its run takes the run's lease
        with it, so the driver needs no claim of its own.

        The claim is None when another owner holds a live lease (the run goes on there), or the
        run is paused. Raises as ``update_checkpoint``; nothing is claimed when it raises.
        """
        ...

    async def cancel_run(
        self,
        run_id: str,
        at: datetime,
        reason: str,
        audit: list[AuditDraft],
        deliveries: list[Delivery] | None = None,
    ) -> Run:
        """Cancel a non-final run, close its open checkpoints, fence any lease holder, and queue
        ``deliveries`` (the updates of its checkpoint messages) in the same transaction."""
        ...

    async def pause_run(
        self, run_id: str, at: datetime, paused_by: str | None, audit: list[AuditDraft]
    ) -> Run:
        """Pause a non-final run (``paused_by``: who) or resume it (None), with its audit, in one
        transaction. A paused run is neither claimed nor offered to recovery; the process that
        holds its lease keeps it until its current node commits, then releases it. Raises
        ``Conflict`` (ended, or already in that state) or ``NotFound``."""
        ...

    async def get_run(self, run_id: str) -> Run:
        """Raises NotFound."""
        ...

    async def list_runs(
        self,
        *,
        status: list[RunStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        search: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Newest first. ``search``: a case-insensitive part of the run's id, workflow id or
        requester; ``before``: the ``(created_at, id)`` of the last run of the previous page."""
        ...

    async def list_steps(self, run_id: str) -> list[Step]:
        """In start order."""
        ...

    async def steps_of_runs(
        self, *, created_since: datetime, created_until: datetime, workflow_id: str | None = None
    ) -> list[Step]:
        """In one read, the steps of the runs created in ``[created_since, created_until]`` (of
        one workflow when given), in start order: what the console's charts sum up."""
        ...

    async def checkpoint_outcomes(self, run_ids: list[str]) -> dict[str, set[CheckpointOutcome]]:
        """In one read, run id -> the outcomes of its resolved checkpoints (a run without any is
        absent): what a page of runs needs for its outcomes (``engine.outcome``)."""
        ...

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """Raises NotFound."""
        ...

    async def load_checkpoint(self, checkpoint_id: str) -> tuple[Checkpoint, Run, list[Step]]:
        """A checkpoint, its run and the run's steps (in start order), read in one transaction.

        Raises NotFound.
        """
        ...

    async def list_checkpoints(
        self, *, run_id: str | None = None, open_only: bool = False, limit: int = 500
    ) -> list[Checkpoint]:
        """Newest first."""
        ...

    async def timer_nodes(self) -> list[tuple[str, str]]:
        """The distinct ``(workflow_hash, node_id)`` of open checkpoints with a deadline."""
        ...

    async def checkpoint_times(self, query: TimerQuery) -> list[CheckpointTimes]:
        """One page of open checkpoints with a deadline, read through an index (see ``TimerQuery``)."""
        ...

    async def open_checkpoints_for(
        self, principals: list[str], *, limit: int = 100, before: tuple[datetime, str] | None = None
    ) -> list[Checkpoint]:
        """Open checkpoints assigned to any of ``principals`` (through an index), newest first.

        ``before`` is the ``(created_at, id)`` of the last checkpoint of the previous page.
        """
        ...

    async def open_principals(
        self, kinds: tuple[str, ...] = ("group", "channel")
    ) -> list[tuple[str, str | None]]:
        """The distinct principals of those ``kinds`` that open checkpoints are assigned to, each
        with the Slack workspace (``team``) of such a checkpoint: ``("group:S1", "T1")``, one pair
        per workspace (None: a checkpoint of a run started outside Slack), so a user group is read
        in the workspace it belongs to (through the assignee index)."""
        ...

    async def list_decisions(
        self, *, run_id: str | None = None, checkpoint_id: str | None = None
    ) -> list[Decision]:
        """In decision order."""
        ...

    async def runnable_runs(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of non-final runs with pending work whose lease is free or expired."""
        ...

    async def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Pending outbox rows whose next attempt is due, oldest first."""
        ...

    async def claim_delivery(
        self, delivery_id: str, *, attempts: int, now: datetime, until: datetime
    ) -> Delivery | None:
        """Take a due row for one send attempt, so that no other process sends it meanwhile.

        A compare-and-set on ``attempts`` (the value the caller read): the row's ``attempts``
        goes up by one and ``next_attempt_at`` moves to ``until``, so a process that dies while
        sending leaves the row due again at ``until``. Returns the claimed row, or None when it
        is no longer pending and due with that ``attempts`` (another process took it).
        """
        ...

    async def list_deliveries(
        self, *, checkpoint_id: str | None = None, run_id: str | None = None
    ) -> list[Delivery]:
        """Outbox rows in creation order."""
        ...

    async def add_deliveries(self, deliveries: list[Delivery], audit: list[AuditDraft]) -> None:
        """Queue outbox rows outside a run commit (e.g. App Home refreshes)."""
        ...

    async def mark_delivery(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        attempts: int,
        next_attempt_at: datetime,
        error: str | None = None,
        channel_ref: str | None = None,
        message_ts: str | None = None,
        audit: list[AuditDraft] | None = None,
    ) -> None:
        """Record the result of a send attempt."""
        ...

    async def audit_events(
        self, *, run_id: str | None = None, since: datetime | None = None, after_seq: int = 0
    ) -> list[AuditEvent]:
        """Audit events in sequence order."""
        ...

    async def search_audit(
        self,
        *,
        search: str | None = None,
        kind: str | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """Audit events, newest first. ``search``: a case-insensitive part of the actor, kind,
        channel, run id or checkpoint id (never of the payload, which may hold people's data);
        ``kind``: a prefix of the kind (``decision.``); ``before_seq``: the last seq of the
        previous page."""
        ...

    async def add_delegation(self, delegation: Delegation, audit: list[AuditDraft]) -> None:
        """Store a delegation (with its audit events)."""
        ...

    async def list_delegations(
        self, *, active_at: datetime | None = None, delegator: str | None = None
    ) -> list[Delegation]:
        """Delegations, oldest first; only those active at ``active_at`` when given."""
        ...

    async def end_delegation(self, delegation_id: str, at: datetime, audit: list[AuditDraft]) -> Delegation:
        """End a delegation early: its ``until`` becomes ``at`` (when that is sooner).

        Raises NotFound.
        """
        ...

    async def audit_head(self) -> tuple[int, str]:
        """The last sequence number and hash the store recorded (0 and the genesis hash when empty)."""
        ...

    async def purge_runs(
        self,
        *,
        finished_before: datetime,
        at: datetime,
        dry_run: bool,
        audit: list[AuditDraft],
        limit: int = 500,
    ) -> PurgeReport:
        """Remove the payloads of up to ``limit`` runs that ended before ``finished_before``.

        Run inputs, step inputs, outputs and errors, checkpoint prompts, context and proposals,
        decision data, comments and diffs, outbox payloads and the data keys of their sealed
        audit events are replaced by the digests of what they held; ids, who, when, actions,
        outcomes and hashes stay, so ``audit verify`` still passes. Marks the runs purged. With
        ``dry_run`` nothing changes and only ``run_ids`` is filled.
        """
        ...


# --------------------------------------------------------------------------- outbound adapters


class SendResult(_Msg):
    """What a sender learned: where the message landed, or why it failed."""

    ok: bool
    channel_ref: str | None = None
    message_ts: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    method: str | None = None  # the API method that failed (``chat.postMessage``), for metrics


class Sender(Protocol):
    """Sends outbox deliveries (Slack, the local console, ...)."""

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Send one delivery; ``related`` are earlier deliveries of the same checkpoint."""
        ...


class Directory(Protocol):
    """Resolves Slack user groups and channels to their members (checked at decision time)."""

    async def group_members(self, group_id: str, team: str | None = None) -> list[str]:
        """User ids in the group (``S...``) of workspace ``team`` (a checkpoint's, in
        multi-workspace mode; None: the workspace of the request at hand); nobody when it
        cannot be read."""
        ...

    async def channel_members(self, channel_id: str) -> list[str]:
        """User ids in the channel (``C...``/``G...``) in the workspace of the request at hand;
        nobody when it cannot be read.

        There is no ``team`` here on purpose: a channel shared through Slack Connect lists
        members of other organisations too. Read in a checkpoint's workspace for a decision made
        outside Slack, it would let a member of another installed workspace who signs into the
        console with Slack count as an assignee (a click from Slack is refused by the team
        check). Outside Slack, with several workspaces installed, a channel has no members.
        """
        ...


class HttpRequest(_Msg):
    """One outbound HTTP call of an ``http`` node."""

    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = None
    body: str | None = None
    timeout_s: float = 30.0


class HttpResponse(_Msg):
    """The answer to an HttpRequest."""

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    text: str = ""


@runtime_checkable
class HttpClient(Protocol):
    """Outbound HTTP. Raises SkillFailed(retryable=True) on connection errors and timeouts."""

    async def request(self, request: HttpRequest) -> HttpResponse:
        """Send the request and read the whole response."""
        ...


class SandboxLimits(_Msg):
    """Resource limits of one sandboxed command.

    ``max_workspace_bytes`` bounds everything in the step's workspace together (each file or
    directory counts at least one 4 KiB block); ``max_file_bytes`` bounds each file.
    """

    cpu_seconds: float = 10.0
    memory_bytes: int = 256 * 1024 * 1024
    wall_seconds: float = 30.0
    max_processes: int = 64
    max_file_bytes: int = 16 * 1024 * 1024
    max_output_bytes: int = 1024 * 1024
    max_workspace_bytes: int = 256 * 1024 * 1024


class SandboxRequest(_Msg):
    """A command to run in an isolated workspace.

    ``command`` is a shell command line (run with ``/bin/sh -c``) or an argv list. ``files``
    are written into the workspace before it starts. ``readonly_dir`` (a skill's folder) is
    visible read-only at ``/skill`` and is the working directory when ``cwd_skill`` is set.
    """

    command: str | list[str]
    stdin: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    readonly_dir: str | None = None
    cwd_skill: bool = False
    limits: SandboxLimits = Field(default_factory=SandboxLimits)


class SandboxResult(_Msg):
    """How a sandboxed command ended."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    killed: Literal["wall_time", "cpu_time", "memory", "output", "workspace", None] = None
    output_truncated: bool = False
    files: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0


class Sandbox(Protocol):
    """Runs a command in isolation; ``workspace`` is the per-step directory on the host."""

    name: str

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        """Run to completion or until a limit stops it."""
        ...


class LLMRequest(_Msg):
    """One model call. With ``output_schema`` the answer is forced through a tool call."""

    model: str
    system: str | None = None
    prompt: str
    output_schema: dict[str, Any] | None = None
    max_tokens: int = 1024
    temperature: float | None = None


class LLMResponse(_Msg):
    """A model answer with usage and cost."""

    text: str = ""
    data: dict[str, Any] | None = None
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 1


class LLM(Protocol):
    """A language model. Raises SkillFailed (retryable when the API said so)."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer the request; with ``output_schema`` return validated ``data``."""
        ...
