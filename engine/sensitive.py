"""Sensitive values: marked in a schema, masked on every surface, given only to the steps that use them.

A workflow marks an input or a response field as sensitive in its JSON Schema, with
``"x-signoff-sensitive": true`` or ``"writeOnly": true`` (at any depth of ``properties``). Steps
receive the real values (a template that reads ``inputs.card`` gets the card number); every
surface that shows a run — the console, Slack, the CLI, the API, audit exports, logs — masks
them. Masking is by value: the run's sensitive values are collected from its inputs and its
decisions, and every occurrence of one of them in anything shown (step inputs and outputs,
context, proposals, messages, audit payloads) is replaced, so a value copied into a context
field or a command's output by a template is masked too. Values shorter than
``MIN_MASKED`` characters are masked where their field is marked, but not searched for
elsewhere (a sensitive "1" would mask every 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from engine.model import AuditEvent, Checkpoint, Decision, Run, Step

__all__ = [
    "MASK",
    "MIN_MASKED",
    "RedactionSource",
    "Redactor",
    "is_sensitive",
    "mask_marked",
    "may_mark_sensitive",
    "redact_checkpoint",
    "redact_decision",
    "redact_event",
    "redact_run",
    "redact_step",
    "run_redactor",
    "sensitive_paths",
    "stored_inputs_schema",
]

MASK = "••••••"
MIN_MASKED = 4


class RedactionSource(Protocol):
    """What ``run_redactor`` reads: the store, or the CLI's light reader."""

    async def list_checkpoints(self, *, run_id: str | None = ..., limit: int = ...) -> list[Checkpoint]:
        """A run's checkpoints, newest first."""
        ...

    async def list_decisions(self, *, run_id: str | None = ...) -> list[Decision]:
        """A run's decisions in decision order."""
        ...

    async def audit_events(self, *, run_id: str | None = ...) -> list[AuditEvent]:
        """A run's audit events in sequence order (``checkpoint.edited`` ones at least)."""
        ...


def is_sensitive(schema: Any) -> bool:
    """True when a property schema is marked sensitive."""
    return isinstance(schema, dict) and (
        schema.get("x-signoff-sensitive") is True or schema.get("writeOnly") is True
    )


def sensitive_paths(schema: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The property paths a JSON Schema marks sensitive (``("card",)``, ``("payer", "iban")``)."""
    if not isinstance(schema, dict):
        return []
    out: list[tuple[str, ...]] = []
    for name, prop in (schema.get("properties") or {}).items():
        path = (*prefix, str(name))
        if is_sensitive(prop):
            out.append(path)
        else:
            out += sensitive_paths(prop, path)
    return out


def _values_at(data: Any, path: tuple[str, ...]) -> list[Any]:
    if not path:
        return [data]
    if isinstance(data, dict) and path[0] in data:
        return _values_at(data[path[0]], path[1:])
    return []


def _mask_at(data: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(data, dict) or not path or path[0] not in data:
        return data
    if len(path) == 1:
        return {**data, path[0]: MASK}
    return {**data, path[0]: _mask_at(data[path[0]], path[1:])}


def mask_marked(data: dict[str, Any], schema: Any) -> dict[str, Any]:
    """``data`` with the fields ``schema`` marks sensitive replaced by the mask."""
    for path in sensitive_paths(schema):
        data = _mask_at(data, path)
    return data


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


class Redactor:
    """Masks a run's sensitive values wherever they appear in what is shown."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        found = {v for v in values if len(v) >= MIN_MASKED}
        # longest first, so a value that contains another is replaced whole
        self.values = sorted(found, key=len, reverse=True)

    @classmethod
    def collect(cls, pairs: Iterable[tuple[Any, Any]]) -> Redactor:
        """From ``(data, schema)`` pairs: a run's inputs and its inputs schema, each decision's
        data and its checkpoint's response schema."""
        values: list[str] = []
        for data, schema in pairs:
            for path in sensitive_paths(schema):
                for found in _values_at(data, path):
                    values += list(_leaves(found))
        return cls(values)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """``text`` with every sensitive value replaced."""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value with every sensitive value replaced (in strings, numbers too)."""
        if not self.values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in self.values:
            return MASK
        return value


def redact_run(r: Redactor, run: Run) -> Run:
    """``run`` as it may be shown: inputs and reason masked."""
    if not r:
        return run
    return run.model_copy(update={"inputs": r.value(run.inputs), "reason": r.value(run.reason)})


def redact_step(r: Redactor, step: Step) -> Step:
    """``step`` as it may be shown: input, output and error masked."""
    if not r:
        return step
    output = (
        step.output.model_copy(update={"text": r.text(step.output.text), "data": r.value(step.output.data)})
        if step.output
        else None
    )
    return step.model_copy(
        update={"input": r.value(step.input), "output": output, "error": r.value(step.error)}
    )


def redact_decision(r: Redactor, decision: Decision) -> Decision:
    """``decision`` as it may be shown: data, comment and diff masked."""
    if not r:
        return decision
    return decision.model_copy(
        update={
            "data": r.value(decision.data),
            "comment": r.value(decision.comment),
            "diff": r.value(decision.diff),
        }
    )


def redact_event(r: Redactor, event: AuditEvent) -> AuditEvent:
    """An audit event as it may be shown or exported: payload masked (its hash stays the stored one)."""
    if not r:
        return event
    return event.model_copy(update={"payload": r.value(event.payload)})


def redact_checkpoint(r: Redactor, cp: Checkpoint) -> Checkpoint:
    """A checkpoint as it may be shown as raw data: context, proposal and prompt masked."""
    if not r:
        return cp
    return cp.model_copy(
        update={"context": r.value(cp.context), "proposed": r.value(cp.proposed), "prompt": r.text(cp.prompt)}
    )


async def run_redactor(store: RedactionSource, run: Run, inputs_schema: Any) -> Redactor:
    """What every surface masks when it shows ``run``: the values its workflow's inputs schema
    and its checkpoints' response schemas mark sensitive, in its inputs and its decisions."""
    pairs: list[tuple[Any, Any]] = [(run.inputs, inputs_schema)]
    checkpoints = {cp.id: cp for cp in await store.list_checkpoints(run_id=run.id, limit=10_000)}
    pairs += [(cp.proposed, cp.response_schema) for cp in checkpoints.values()]
    for decision in await store.list_decisions(run_id=run.id):
        decided = checkpoints.get(decision.checkpoint_id)
        if decided is not None:
            pairs.append((decision.data, decided.response_schema))
            pairs += _diff_sides(decision.diff, decided.response_schema)
    # a quorum edit replaces the proposal: the value it replaced lives on in its audit event's diff
    # (and upstream outputs), and must stay masked there. Only runs with such an edit (its
    # editors are on the checkpoint) pay for reading their audit trail.
    if not any(cp.editors for cp in checkpoints.values()):
        return Redactor.collect(pairs)
    for event in await store.audit_events(run_id=run.id):
        edited = checkpoints.get(event.checkpoint_id or "")
        if event.kind == "checkpoint.edited" and edited is not None:
            pairs += _diff_sides(event.payload.get("diff"), edited.response_schema)
    return Redactor.collect(pairs)


def _diff_sides(diff: Any, schema: Any) -> list[tuple[Any, Any]]:
    """The two sides of a ``{field: {"before", "after"}}`` diff, each as an object of ``schema``."""
    if not isinstance(diff, dict):
        return []
    changed = {k: v for k, v in diff.items() if isinstance(v, dict)}
    return [
        ({k: v.get("before") for k, v in changed.items()}, schema),
        ({k: v.get("after") for k, v in changed.items()}, schema),
    ]


def may_mark_sensitive(source: str) -> bool:
    """False when no schema in a workflow's source can mark a value sensitive, so its inputs
    schema need not be parsed to mask its runs. A key is spelled out in YAML or JSON unless
    escaped (a backslash); a folded multi-line key reads with a space. Without a backslash,
    "sensitive" (``x-signoff-sensitive``) or "writeOnly" in the text, no key is a marker."""
    return "\\" in source or "sensitive" in source or "writeOnly" in source


def stored_inputs_schema(source: str) -> Any:
    """The ``inputs`` schema of a published workflow version's source, read without compiling the
    workflow (it was validated when published; the loader keeps ``inputs`` as written)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw = yaml.load(source, Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return {}
    return raw.get("inputs", {}) if isinstance(raw, dict) else {}
