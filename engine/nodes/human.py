"""``human``: pause the run at a checkpoint that a person resolves (approval, input or review)."""

from __future__ import annotations

from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel

from engine.assignment import pick_from_pool
from engine.model import Checkpoint, Delegation, Deliverable, Delivery, HumanConfig, NodeSpec, parse_duration
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult, Paused
from engine.policy import assignee_principals, card_targets, check_assignee_spec, expand_principals
from engine.ports import AuditDraft
from engine.sensitive import Redactor
from engine.shown import shown_hash
from engine.templates import render_markup, render_value

__all__ = ["RESERVED_RESPONSE_FIELDS", "HumanNode", "possible_actions"]

RESERVED_RESPONSE_FIELDS = frozenset({"action", "resolved_by", "actor", "comment", "rule"})
_ESCALATION_WORDS = {"auto_approve", "auto_reject", "escalate", "retry", "queue"}


def possible_actions(config: HumanConfig) -> list[str]:
    """Every ``response.action`` a checkpoint of this node can end with: its options (an input
    asks for ``answer`` and may be rejected), and what policy records: ``approve`` for a ``when``
    that does not hold, ``approve``/``reject`` for an escalation that decides at the deadline."""
    found = ["answer", "reject"] if config.kind == "input" else list(config.options)
    if config.when is not None:
        found.append("approve")
    for level in config.levels():
        for word in (level.get("action"), level.get("final_action")):
            if word in {"auto_approve", "auto_reject"}:
                found.append("approve" if word == "auto_approve" else "reject")
    return list(dict.fromkeys(found))


class HumanNode:
    """Opens a checkpoint; the run resumes when it is resolved."""

    type_name: ClassVar[str] = "human"
    config_model: ClassVar[type[BaseModel]] = HumanConfig
    template_fields: ClassVar[tuple[str, ...]] = ("title", "prompt", "context", "proposed")
    side_effects: ClassVar[bool] = False
    instant: ClassVar[bool] = True  # no I/O: runs without a lease heartbeat

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """Assignees, roles, response schema, durations and escalation."""
        config = node.config
        assert isinstance(config, HumanConfig)
        problems: list[tuple[str | None, str]] = []
        problems += [("assignee", p) for p in check_assignee_spec(config.assignee, ctx.roles)]
        if config.assignee is None and config.kind != "input":
            problems.append(
                ("assignee", "an approval needs an assignee (user:, group:, role:, channel: or a pool)")
            )
        for target in config.notify:
            problems += [
                ("notify", p.replace("assignee", "recipient")) for p in check_assignee_spec(target, ctx.roles)
            ]
        problems += _check_schema(config.response_schema)
        problems += _check_durations(config)
        problems += _check_escalation(config, ctx)
        if config.kind == "input" and not config.response_schema.get("properties"):
            problems.append(
                ("response_schema", "an input checkpoint needs response_schema properties to ask for")
            )
        return problems

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Pass by policy when ``when`` does not hold; otherwise open the checkpoint."""
        config = ctx.node.config
        assert isinstance(config, HumanConfig)
        condition = ctx.workflow.compiled.node_conditions.get(ctx.node.id)
        if condition is not None and not condition.evaluate(ctx.scope):
            return _passed_by_policy(ctx, condition.source, {r: ctx.scope.get(r) for r in condition.roots})
        return await _open(ctx, config)


async def _assignees(ctx: NodeContext, config: HumanConfig, delegating: set[str]) -> list[str]:
    items = config.assignee if isinstance(config.assignee, list) else [config.assignee]
    if any(isinstance(item, dict) for item in items):
        out: list[str] = []
        for item in items:
            if isinstance(item, dict):
                out += await pick_from_pool(item, store=ctx.deps.store, node_id=ctx.node.id, skip=delegating)
            elif item is not None:
                out += assignee_principals(item, ctx.run.requester)
        return list(dict.fromkeys(out))
    return assignee_principals(config.assignee, ctx.run.requester)


async def _delegations(ctx: NodeContext, assignees: list[str], active: list[Delegation]) -> dict[str, str]:
    """Delegate -> delegator for the people reached by ``assignees`` who are on delegation now.

    The assignees stay as they are: who may decide is resolved at decision time, where a
    delegate's vote counts as the delegator's. This map only says who else gets the card.
    """
    if not active:
        return {}
    people, _ = await expand_principals(assignees, ctx.deps.roles, ctx.deps.directory, ctx.run.team)
    return {d.delegate: d.delegator for d in active if d.delegator in people and d.delegate != d.delegator}


async def _open(ctx: NodeContext, config: HumanConfig) -> Paused:
    compiled = ctx.compiled
    now = ctx.deps.clock.now()
    # the context is only shown, never executed: it is stored with sensitive values masked
    context = _run_redactor(ctx).value(render_value(compiled.get("context", {}), ctx.scope))
    if not isinstance(context, dict):
        context = {"context": context}
    proposed_raw = compiled.get("proposed")
    properties = config.response_schema.get("properties", {})
    if proposed_raw is not None:
        proposed = render_value(proposed_raw, ctx.scope)
    else:
        proposed = {k: context[k] for k in properties if k in context}
    if not isinstance(proposed, dict):
        proposed = {}
    for name, prop in properties.items():
        if name not in proposed and isinstance(prop, dict) and "default" in prop:
            proposed[name] = prop["default"]
    active = await ctx.deps.store.list_delegations(active_at=now) if ctx.deps.store is not None else []
    assignees = await _assignees(ctx, config, {d.delegator for d in active})
    if not assignees:
        assignees = [f"user:{ctx.run.requester}"]
    delegations = await _delegations(ctx, assignees, active)
    title = str(render_value(compiled.get("title") or "", ctx.scope)) or ctx.node.title or ctx.node.id
    cp = Checkpoint(
        id=ctx.deps.ids.new("cp_"),
        run_id=ctx.run.id,
        node_id=ctx.node.id,
        kind=config.kind,
        title=title,
        # the prompt is the author's Slack markup; the data it interpolates is made inert
        prompt=render_markup(compiled.get("prompt", ""), ctx.scope),
        context=context,
        options=config.options if config.kind != "input" else ["answer"],
        response_schema=config.response_schema,
        proposed=proposed,
        assignees=assignees,
        notify=list(config.notify),
        quorum=config.quorum,
        priority=config.priority,
        requester=ctx.run.requester,
        team=ctx.run.team,
        allow_self_approval=config.allow_self_approval or _asks_requester(config),
        confirm=config.confirm,
        highlight=[str(h) for h in config.display.get("highlight", [])],
        due_at=now + parse_duration(config.timeout) if config.timeout else None,
        created_at=now,
        delegations=delegations,
    )
    cp = cp.model_copy(update={"shown_hash": shown_hash(cp)})
    watchers = set(config.notify) - set(assignees)
    deliveries = [
        Delivery(
            id=ctx.deps.ids.new("dlv_"),
            run_id=ctx.run.id,
            checkpoint_id=cp.id,
            kind="checkpoint",
            target=target,
            payload={"role": "watcher" if target in watchers else "assignee"},
            next_attempt_at=now,
            created_at=now,
        )
        for target in dict.fromkeys([*card_targets(assignees, delegations), *config.notify])
    ]
    return Paused(checkpoint=cp, input={"context": cp.context, "proposed": proposed}, deliveries=deliveries)


def _run_redactor(ctx: NodeContext) -> Redactor:
    """The run's sensitive values so far: its inputs, and the answers of earlier human nodes."""
    pairs: list[tuple[Any, Any]] = [(ctx.run.inputs, ctx.workflow.inputs)]
    for node_id, done in (ctx.scope.get("nodes") or {}).items():
        node = ctx.workflow.nodes.get(node_id)
        if node is not None and isinstance(node.config, HumanConfig) and isinstance(done, dict):
            pairs.append((done.get("data"), node.config.response_schema))
    return Redactor.collect(pairs)


def _asks_requester(config: HumanConfig) -> bool:
    # an input checkpoint without an assignee asks the requester for the missing facts
    return config.kind == "input" and config.assignee is None


def _passed_by_policy(ctx: NodeContext, expression: str, seen: dict[str, Any]) -> Completed:
    now = ctx.deps.clock.now()
    response = {
        "action": "approve",
        "resolved_by": "policy",
        "rule": "when",
        "actor": "policy:when",
        "comment": None,
    }
    audit = AuditDraft(
        at=now,
        actor="policy:when",
        channel="engine",
        kind="checkpoint.passed",
        run_id=ctx.run.id,
        payload={"node": ctx.node.id, "expression": expression, "values": seen},
    )
    text = f"Passed by policy: condition {expression!r} did not hold"
    return Completed(output=Deliverable(text=text, data=response), audit=[audit], response=response)


def _check_schema(schema: dict[str, Any]) -> list[tuple[str | None, str]]:
    if not schema:
        return []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [("response_schema", f"not a valid JSON Schema: {exc.message}")]
    clash = sorted(RESERVED_RESPONSE_FIELDS & set(schema.get("properties", {})))
    if clash:
        return [("response_schema", f"field '{clash[0]}' clashes with a decision field; rename it")]
    return []


def _check_durations(config: HumanConfig) -> list[tuple[str | None, str]]:
    problems: list[tuple[str | None, str]] = []
    timeout = None
    if config.timeout is not None:
        try:
            timeout = parse_duration(config.timeout)
        except ValueError as exc:
            problems.append(("timeout", str(exc)))
    for reminder in config.reminders:
        try:
            at = parse_duration(reminder)
        except ValueError as exc:
            problems.append(("reminders", str(exc)))
            continue
        if timeout is not None and at >= timeout:
            problems.append(("reminders", f"reminder {reminder} comes after the timeout {config.timeout}"))
    if config.reminders and config.timeout is None:
        problems.append(("reminders", "reminders need a timeout"))
    return problems


def _check_escalation(config: HumanConfig, ctx: LoadContext) -> list[tuple[str | None, str]]:
    levels = config.levels()
    if levels and config.timeout is None:
        return [("escalation", "escalation needs a timeout on the node")]
    problems: list[tuple[str | None, str]] = []
    for index, level in enumerate(levels):
        action = level.get("action")
        last = index == len(levels) - 1
        if action not in _ESCALATION_WORDS:
            problems.append(
                ("escalation", f"unknown escalation action {action!r} (use {sorted(_ESCALATION_WORDS)})")
            )
            continue
        extra = set(level) - {"action", "to", "timeout", "max_retries", "final_action"}
        if extra:
            problems.append(("escalation", f"unknown escalation keys {sorted(extra)}"))
        if action == "escalate":
            problems += _check_escalate_level(level, config, ctx, last)
        final = level.get("final_action")
        if final is not None and final not in {"auto_approve", "auto_reject", "queue"}:
            problems.append(
                ("escalation", f"final_action {final!r} must be auto_approve, auto_reject or queue")
            )
    return problems


def _check_escalate_level(
    level: dict[str, Any], config: HumanConfig, ctx: LoadContext, last: bool
) -> list[tuple[str | None, str]]:
    problems: list[tuple[str | None, str]] = []
    to = level.get("to")
    if to is None:
        role = str(config.assignee).removeprefix("role:") if isinstance(config.assignee, str) else None
        if not (role and role in ctx.roles and ctx.roles[role].escalates_to):
            problems.append(("escalation", "escalate needs 'to' (or an assignee role with escalates_to)"))
    else:
        problems += [("escalation", p) for p in check_assignee_spec(to, ctx.roles)]
    if "timeout" in level:
        try:
            parse_duration(level["timeout"])
        except ValueError as exc:
            problems.append(("escalation", str(exc)))
    elif last and level.get("final_action") is None:
        pass  # escalated with no further deadline: the new assignee keeps it until decided
    if last and "timeout" in level and level.get("final_action") is None:
        problems.append(
            (
                "escalation",
                "the last escalation level has a timeout but no final_action: the chain never ends",
            )
        )
    return problems
