"""What every node kind implements, and what it receives when it runs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from engine.model import Checkpoint, Deliverable, Delivery, NodeSpec, Run, Workflow
from engine.people import PeopleStore
from engine.ports import LLM, AuditDraft, Clock, Directory, HttpClient, IdFactory, RunStore, Sandbox
from engine.roles import Role

__all__ = [
    "Completed",
    "LoadContext",
    "NodeContext",
    "NodeDeps",
    "NodeKind",
    "NodeResult",
    "Paused",
    "SkillRunner",
]


class SkillRunner(Protocol):
    """Runs a pinned skill (implemented by skills/, wired in bot/wiring.py)."""

    def exists(self, ref: str) -> str | None:
        """None when ``ref`` (``name@version``) names a published skill, else what is wrong."""
        ...

    async def run(
        self, ref: str, inputs: dict[str, Any], *, workspace: Path, key: str, llm: LLM | None = None
    ) -> dict[str, Any]:
        """Run the skill; returns its validated outputs. Raises SkillFailed / InvalidInput.

        ``llm``, when given, answers prompt skills for this call instead of the runner's own
        (the ``skill`` node passes one that counts tokens and cost for the step).
        """
        ...


@dataclass
class NodeDeps:
    """Adapters a node kind may use; absent ones make the node fail with a clear message."""

    clock: Clock
    ids: IdFactory
    http: HttpClient | None = None
    sandbox: Sandbox | None = None
    llm: LLM | None = None
    skills: SkillRunner | None = None
    directory: Directory | None = None
    workspace_root: Path | None = None
    default_model: str = "claude-sonnet-4-6"
    roles: Mapping[str, Role] = field(default_factory=dict)
    store: RunStore | None = None  # read-only use: assignment strategies count checkpoints
    people: PeopleStore | None = None  # which identities name one person (the decision gate)


@dataclass
class NodeContext:
    """Everything one node execution sees."""

    run: Run
    workflow: Workflow
    node: NodeSpec
    scope: dict[str, Any]
    deps: NodeDeps
    attempt: int = 1

    @property
    def idempotency_key(self) -> str:
        """Stable for a run and node, so a retried side effect can be deduplicated downstream."""
        raw = f"{self.run.id}:{self.node.id}".encode()
        return "so-" + hashlib.sha256(raw).hexdigest()[:32]

    @property
    def compiled(self) -> dict[str, Any]:
        """This node's config with its template strings compiled."""
        compiled: dict[str, Any] = self.workflow.compiled.templates[self.node.id]
        return compiled


class Completed(BaseModel):
    """The node finished; its deliverable is committed with the step."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    output: Deliverable
    input: dict[str, Any] = Field(default_factory=dict)
    deliveries: list[Delivery] = Field(default_factory=list)
    audit: list[AuditDraft] = Field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    response: dict[str, Any] | None = None


class Paused(BaseModel):
    """The node waits for a person: a checkpoint is opened in the same commit."""

    model_config = ConfigDict(frozen=True)

    checkpoint: Checkpoint
    input: dict[str, Any] = Field(default_factory=dict)
    deliveries: list[Delivery] = Field(default_factory=list)


NodeResult = Completed | Paused


@dataclass
class LoadContext:
    """What a node kind may consult while the loader validates it."""

    roles: Mapping[str, Role]
    skills: SkillRunner | None
    node_ids: frozenset[str]
    llm_available: bool = True
    extras: dict[str, Any] = field(default_factory=dict)


class NodeKind(Protocol):
    """A node type: its config model, which fields are templates, and how it runs."""

    type_name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    template_fields: ClassVar[tuple[str, ...]]
    side_effects: ClassVar[bool]

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """Kind-specific load-time checks: (field or None, message) pairs."""
        ...

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Run the node."""
        ...
