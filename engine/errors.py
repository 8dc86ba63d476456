"""One error hierarchy for everything Signoff raises on purpose.

Adapters translate library errors into these (``raise ... from e``) so that
SlackApiError, SQLAlchemyError, anthropic.APIError or docker errors never cross a layer.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "Conflict",
    "EgressRefused",
    "EngineError",
    "InvalidInput",
    "InvalidWorkflow",
    "LeaseLost",
    "NeedsDetail",
    "NotAllowed",
    "NotFound",
    "SkillFailed",
    "StaleVersion",
    "WorkflowIssue",
]


class EngineError(Exception):
    """Base for every error we raise on purpose."""


class InvalidInput(EngineError):
    """Input that does not fit a schema.

    Attributes:
        errors: field name (dotted path, "" for the whole object) -> message.
    """

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors: dict[str, str] = dict(errors or {})


class WorkflowIssue:
    """One problem in a workflow file, located by file, line, node and field."""

    __slots__ = ("field", "file", "line", "message", "node")

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        line: int | None = None,
        node: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.node = node
        self.field = field

    def __str__(self) -> str:
        where = self.file or "<workflow>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        parts = [where]
        if self.node is not None:
            parts.append(f"node '{self.node}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ": ".join([*parts, self.message])

    def __repr__(self) -> str:
        return f"WorkflowIssue({self!s})"


class InvalidWorkflow(EngineError):
    """A workflow file that cannot be loaded; ``issues`` lists every problem found."""

    def __init__(self, issues: list[WorkflowIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class NotFound(EngineError):
    """A run, checkpoint, workflow or skill that does not exist."""


class NotAllowed(EngineError):
    """The actor may not do this (not an assignee, self-approval, wrong confirm word...).

    Attributes:
        rule: a stable code of the rule that refused (``not_assignee``, ``self_approval``,
            ``confirm_word``...), for channels that word their own message and for the audit.
    """

    def __init__(self, message: str, *, rule: str = "not_allowed") -> None:
        super().__init__(message)
        self.rule = rule


class Conflict(EngineError):
    """The checkpoint was already resolved; names who won and when."""

    def __init__(
        self,
        message: str,
        *,
        winner: str | None = None,
        at: datetime | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.winner = winner
        self.at = at
        self.action = action


class StaleVersion(Conflict):
    """A decision made on a copy of the checkpoint older than its current proposal.

    Attributes:
        version: the checkpoint's current version (decide again on that one).
    """

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


class NeedsDetail(EngineError):
    """A model checked the answer (``verify: {on_fail: ask_again}``) and asks for more.

    Nothing was decided: the checkpoint stays open, and the person's next answer is checked
    again. The engine has already queued the question to the person; ``question`` is there
    for channels that answer synchronously (the web console, the CLI).
    """

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.question = question


class LeaseLost(EngineError):
    """This process no longer holds the run's lease; its work is refused."""


class SkillFailed(EngineError):
    """A node's work failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class EgressRefused(SkillFailed):
    """The outbound HTTP policy refused a destination (``engine.egress``); never retryable.

    Attributes:
        host: the host that was refused, as the request named it.
        port: its port.
    """

    def __init__(self, message: str, *, host: str, port: int | None) -> None:
        super().__init__(message, retryable=False)
        self.host = host
        self.port = port
