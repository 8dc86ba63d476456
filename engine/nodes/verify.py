"""The decision verifier of human nodes: ``verify: {prompt, on_fail: flag | ask_again}``.

A model reads what the person was shown and what they answered, and says whether the answer
satisfies the node's rule. ``flag`` checks a committed decision and marks it
(``verify_decision``); ``ask_again`` checks the answer before it counts (``check_answer``), and a
failed check becomes a question to the person (``questioned``). Neither ever delays Slack's
acknowledgement: callers run them after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import SkillFailed
from engine.model import Checkpoint, Decision, Delivery, ResolvedBy, VerifyConfig, Workflow
from engine.nodes.base import NodeDeps
from engine.ports import AuditDraft, LLMRequest, LLMResponse

__all__ = ["QUESTION", "Verdict", "asks_again", "check_answer", "questioned", "verify_decision"]

QUESTION = "checkpoint_question"
"""Delivery kind: the verifier's question to the person whose answer did not count yet."""

_VERIFY_SYSTEM = (
    "You check a person's decision on an approval request against the rule you are given. "
    "Call the submit tool with ok=true when the decision satisfies the rule, otherwise ok=false "
    "and a one-sentence reason a reviewer can act on."
)
_ASK_SYSTEM = (
    "You check a person's decision on an approval request against the rule you are given, "
    "before it counts. Call the submit tool with ok=true when the decision satisfies the rule, "
    "otherwise ok=false and, as reason, one short question to the person that asks for what is "
    "missing (address them as 'you')."
)
_VERIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 500}},
    "required": ["ok", "reason"],
}


@dataclass(frozen=True)
class Verdict:
    """What the verifier said: ``ok`` and its reason, or ``error`` when the call failed."""

    ok: bool
    reason: str = ""
    response: LLMResponse | None = None
    error: str | None = None

    def usage(self) -> dict[str, Any]:
        """The call's model, tokens and cost, for the audit trail."""
        r = self.response
        if r is None:
            return {}
        return {
            "model": r.model,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "cost_usd": r.cost_usd,
        }


def _verifier(workflow: Workflow, cp: Checkpoint) -> VerifyConfig | None:
    spec = workflow.nodes.get(cp.node_id)
    verify = getattr(spec.config, "verify", None) if spec is not None else None
    return verify if isinstance(verify, VerifyConfig) else None


def asks_again(deps: NodeDeps, workflow: Workflow, cp: Checkpoint) -> bool:
    """True when a person's answer to ``cp`` is checked by the model before it counts."""
    verify = _verifier(workflow, cp)
    return verify is not None and verify.on_fail == "ask_again" and deps.llm is not None


async def _verdict(deps: NodeDeps, verify: VerifyConfig, cp: Checkpoint, answer: dict[str, Any]) -> Verdict:
    assert deps.llm is not None
    shown = {"title": cp.title, "prompt": cp.prompt, "context": cp.context, "proposed": cp.proposed}
    request = LLMRequest(
        model=deps.default_model,
        system=_ASK_SYSTEM if verify.on_fail == "ask_again" else _VERIFY_SYSTEM,
        prompt=f"Rule: {verify.prompt}\n\nRequest shown:\n{_json(shown)}\n\nDecision:\n{_json(answer)}",
        output_schema=_VERIFY_SCHEMA,
        max_tokens=300,
        temperature=0.0,
    )
    try:
        response = await deps.llm.complete(request)
    except SkillFailed as exc:
        return Verdict(ok=True, error=str(exc))
    verdict = response.data or {}
    reason = str(verdict.get("reason") or "the verifier gave no reason")
    return Verdict(ok=verdict.get("ok") is True, reason=reason, response=response)


async def check_answer(
    deps: NodeDeps, workflow: Workflow, cp: Checkpoint, answer: dict[str, Any]
) -> tuple[Verdict, AuditDraft] | None:
    """Check a person's answer before it counts (``on_fail: ask_again``).

    Args:
        deps: the engine's adapters (the LLM, the clock).
        workflow: the run's pinned workflow.
        cp: the open checkpoint.
        answer: ``{"action", "data", "comment"}`` as the person gave them.

    Returns:
        None when the node does not ask again. Otherwise the verdict and the audit event of a
        call that passed (``decision.verified``) or could not run (``decision.verify_failed``);
        in both cases the answer counts. A failed verdict has no event here: see ``questioned``.
    """
    verify = _verifier(workflow, cp)
    if verify is None or not asks_again(deps, workflow, cp):
        return None
    verdict = await _verdict(deps, verify, cp, answer)
    now = deps.clock.now()
    if verdict.error is not None:
        # the check could not run: the person is not blocked, and the trail says so
        return verdict, _verify_audit(now, cp, "decision.verify_failed", {"error": verdict.error})
    return verdict, _verify_audit(now, cp, "decision.verified", {"ok": verdict.ok, **verdict.usage()})


def questioned(
    deps: NodeDeps,
    cp: Checkpoint,
    verdict: Verdict,
    *,
    actor: str,
    channel: str,
    answer: dict[str, Any],
    diff: dict[str, Any],
) -> tuple[Delivery, AuditDraft]:
    """The question to the person (a ``checkpoint_question`` delivery) and its audit event.

    The delivery keeps what the person submitted, so a form can be reopened pre-filled with
    it; a button only ever carries the delivery's id.
    """
    now = deps.clock.now()
    delivery = Delivery(
        id=deps.ids.new("dlv_"),
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        kind=QUESTION,
        target=f"user:{actor}",
        payload={"question": verdict.reason, "channel": channel, **answer},
        next_attempt_at=now,
        created_at=now,
    )
    payload = {
        "node": cp.node_id,
        "action": answer.get("action"),
        "comment": answer.get("comment"),
        "diff": diff,
        "question": verdict.reason,
        "delivery": delivery.id,
        **verdict.usage(),
    }
    audit = AuditDraft(
        at=now,
        actor=actor,
        channel=channel,
        kind="decision.questioned",
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        payload=payload,
    )
    return delivery, audit


async def verify_decision(
    deps: NodeDeps, workflow: Workflow, cp: Checkpoint, decision: Decision
) -> tuple[list[Delivery], list[AuditDraft]] | None:
    """Check a committed human decision with the node's ``verify`` rule (``on_fail: flag``).

    Runs after the decision is committed, so it never delays the person's acknowledgement and
    never changes the outcome: the decision stands either way.

    Returns:
        None when the node has no ``flag`` verifier, the decision was not a person's, or it
        passed; otherwise the ``checkpoint_update`` delivery and the audit event to store.
    """
    verify = _verifier(workflow, cp)
    if verify is None or verify.on_fail != "flag" or decision.resolved_by is not ResolvedBy.human:
        return None
    if deps.llm is None:
        return None
    answer = {"action": decision.action, "data": decision.data, "comment": decision.comment}
    verdict = await _verdict(deps, verify, cp, answer)
    now = deps.clock.now()
    if verdict.error is not None:
        # the check could not run; say so in the audit trail rather than pass silently
        return [], [_verify_audit(now, cp, "decision.verify_failed", {"error": verdict.error})]
    if verdict.ok:
        return None
    payload = {"decision": decision.id, "reason": verdict.reason, **verdict.usage()}
    update = Delivery(
        id=deps.ids.new("dlv_"),
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        kind="checkpoint_update",
        target=f"checkpoint:{cp.id}",
        payload={"flagged": verdict.reason},
        next_attempt_at=now,
        created_at=now,
    )
    return [update], [_verify_audit(now, cp, "decision.flagged", payload)]


def _verify_audit(now: datetime, cp: Checkpoint, kind: str, payload: dict[str, Any]) -> AuditDraft:
    return AuditDraft(
        at=now,
        actor="verifier",
        channel="engine",
        kind=kind,
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        payload={"node": cp.node_id, **payload},
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
