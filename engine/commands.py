"""Commands sent to the engine from any channel (Slack, CLI, web, scheduler)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Cancel", "Command", "Decide", "Pause", "Rerun", "Resume", "Retry"]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Decide(_Command):
    """A person (or a policy) answers a checkpoint.

    ``action`` is approve, reject, edit (``modify`` is accepted), answer or a custom option.
    ``data`` holds edited or answered fields; ``confirm`` the typed confirmation word.
    """

    kind: Literal["decide"] = "decide"
    checkpoint_id: str
    action: str
    actor: str
    channel: str = "cli"
    data: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None
    confirm: str | None = None
    resolved_by: Literal["human", "timeout", "policy"] = "human"
    rule: str | None = None
    seen: str | None = None  # SHA-256 of the rendered message or form the person acted on
    expected_version: int | None = None  # the checkpoint version the person's copy showed
    team: str | None = None  # the Slack workspace of the signed payload (Slack only)


class Cancel(_Command):
    """Stop a run; only its requester or an admin may."""

    kind: Literal["cancel"] = "cancel"
    run_id: str
    actor: str
    channel: str = "cli"
    reason: str = "cancelled"


class Pause(_Command):
    """Stop a run before its next node; it still takes decisions. Its requester or an admin may."""

    kind: Literal["pause"] = "pause"
    run_id: str
    actor: str
    channel: str = "cli"
    reason: str = ""


class Resume(_Command):
    """Let a paused run continue; any process may then drive it. Its requester or an admin may."""

    kind: Literal["resume"] = "resume"
    run_id: str
    actor: str
    channel: str = "cli"


class Rerun(_Command):
    """Start a new run linked to an ended one, reusing its steps before ``from_node``
    (``engine.rerun``). Its requester or an admin may."""

    kind: Literal["rerun"] = "rerun"
    run_id: str
    actor: str
    channel: str = "cli"
    from_node: str | None = None  # default: the failed node of a failed run, else the entry
    reask: bool = False  # ask the people of earlier human nodes again
    latest: bool = False  # the workflow's current version, not the original's


class Retry(_Command):
    """Run a failed run's failed steps again in place (same run, same idempotency keys), when
    their failure is retryable. Its requester or an admin may."""

    kind: Literal["retry"] = "retry"
    run_id: str
    actor: str
    channel: str = "cli"


Command = Annotated[Decide | Cancel | Pause | Resume | Rerun | Retry, Field(discriminator="kind")]
