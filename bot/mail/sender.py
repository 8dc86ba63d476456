"""``ChannelSender``: reaches each person on Slack or by email, through the outbox.

It sits in front of the process's sender (Slack, or the local log) and implements the same
``engine.ports.Sender``. Checkpoint messages and reminders for a role or user group become one
row per person, ``email:`` members included; each person's row goes to the channel chosen by
``choose``; a checkpoint that ends queues a "decided" notice to everyone it was mailed to.
Every other row passes through unchanged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.login_config import SmtpSettings
from bot.mail._choice import Reach, choose
from bot.mail._fanout import per_person
from bot.mail._links import DecisionLinks
from bot.mail._render import Mail, checkpoint_mail, decided_mail, notice_mail
from bot.mail._smtp import MailFailed, MailRefused, deliver
from engine.errors import Conflict, EngineError
from engine.model import Checkpoint, CheckpointStatus, Delivery, HumanConfig, Priority
from engine.ports import AuditDraft, Sender, SendResult
from engine.roles import Preference, parse_principal

if TYPE_CHECKING:
    from bot.wiring import Container

__all__ = ["DECIDED", "ChannelSender", "MailDeps"]

log = logging.getLogger("signoff.mail")

DECIDED = "mail.decided"
"""Outbox kind: tell a person who was mailed a checkpoint that it no longer waits for them."""
_PERSONAL = {"checkpoint", "reminder"}
_NOTICES = {"requester_notice", "notify"}


@dataclass
class MailDeps:
    """What the email channel needs (built by ``bot.mail.install``)."""

    container: Container
    smtp: SmtpSettings
    links: DecisionLinks
    prefs: dict[str, Preference]
    wake: Callable[[], None]
    code_for: frozenset[Priority] = frozenset()  # priorities whose mail carries a one-time code


class ChannelSender:
    """Implements ``engine.ports.Sender``: Slack (or the local log) and email, per person."""

    def __init__(self, primary: Sender, deps: MailDeps) -> None:
        self.primary = primary
        self.deps = deps

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Send one row on the channel its person is reached on."""
        if delivery.kind == DECIDED:
            return await self._decided(delivery)
        if delivery.kind == "checkpoint_update" and delivery.checkpoint_id:
            await self._queue_notices(delivery, related)
        elif delivery.kind in _NOTICES:
            return await self._notice(delivery, related)
        elif delivery.kind in _PERSONAL and delivery.checkpoint_id:
            try:
                kind, name = parse_principal(delivery.target)
            except ValueError:
                kind, name = "", ""
            if kind in {"role", "group"}:
                return await self._fan_out(delivery, related)
            if kind in {"user", "email"}:
                return await self._person(delivery, related, kind, name)
        return await self.primary.send(delivery, related)

    # ------------------------------------------------------------------ one person

    async def _person(self, delivery: Delivery, related: list[Delivery], kind: str, name: str) -> SendResult:
        c = self.deps.container
        cp = await c.store.get_checkpoint(str(delivery.checkpoint_id))
        reach = await self.reach(f"{kind}:{name}")
        order, forced = choose(kind, reach, await self._channels(cp))
        if forced:
            await self._audit(delivery, "delivery.channel_fallback", {"to": order[0], "why": "node channels"})
        return await self._on(
            order, delivery, related, reach, lambda address: self._mail(delivery, cp, address)
        )

    async def _notice(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """A notice to one person (a requester's, a ``notify`` node's) on their channel."""
        # a requester known by email only is named ``user:email:...`` by the engine's notices
        principal = (
            delivery.target.removeprefix("user:")
            if delivery.target.startswith("user:email:")
            else delivery.target
        )
        try:
            kind, name = parse_principal(principal)
        except ValueError:
            return await self.primary.send(delivery, related)
        if kind not in {"user", "email"}:
            return await self.primary.send(delivery, related)
        reach = await self.reach(f"{kind}:{name}")
        order, _ = choose(kind, reach, [])
        return await self._on(
            order, delivery, related, reach, lambda address: self._mail_notice(delivery, address)
        )

    async def _on(
        self,
        order: list[str],
        delivery: Delivery,
        related: list[Delivery],
        reach: Reach,
        mail: Callable[[str], Awaitable[SendResult]],
    ) -> SendResult:
        """Try each channel of ``order``; the next one only after a refusal for good."""
        if not order:
            return SendResult(ok=False, error=f"{delivery.target} has no Slack id and no email address")
        for n, channel in enumerate(order):
            last = n == len(order) - 1
            if channel == "email":
                try:
                    return await mail(str(reach.email))
                except MailFailed as exc:
                    return SendResult(ok=False, retryable=True, error=str(exc))
                except MailRefused as exc:
                    if last:
                        return SendResult(ok=False, error=str(exc))
                    await self._fallback(delivery, "email", order[n + 1], str(exc))
                    continue
            as_slack = delivery.model_copy(update={"target": str(reach.slack)})
            result = await self.primary.send(as_slack, related)
            if result.ok or result.retryable or last:
                return result
            await self._fallback(delivery, "slack", order[n + 1], result.error or "refused")
        return SendResult(ok=False, error="no channel reached this person")  # pragma: no cover

    async def reach(self, principal: str) -> Reach:
        """Every way to reach the person ``principal`` names (linked identities, ``people:``)."""
        people = self.deps.container.people
        person = await people.find_person(principal) if people is not None else None
        identities = [principal, *(person.identities if person is not None else [])]
        slack = next((i for i in identities if i.startswith("user:")), None)
        email = next((i.removeprefix("email:") for i in identities if i.startswith("email:")), None)
        prefers = person.prefers if person is not None else None  # the people record first
        for identity in identities:
            pref = self.deps.prefs.get(identity)
            if pref is not None:
                prefers = prefers or pref.prefers
                email = email or pref.email
        return Reach(slack=slack, email=email, prefers=prefers)

    async def _channels(self, cp: Checkpoint) -> list[str]:
        """The human node's ``channels`` (empty: every channel)."""
        c = self.deps.container
        try:
            run = await c.store.get_run(cp.run_id)
            workflow = await c.catalog.pinned(run.workflow_hash, c.store)
        except EngineError:
            return []
        node = workflow.nodes.get(cp.node_id)
        config = node.config if node is not None else None
        return list(config.channels) if isinstance(config, HumanConfig) else []

    async def _mail(self, delivery: Delivery, cp: Checkpoint, address: str) -> SendResult:
        if cp.status is not CheckpointStatus.open:
            return SendResult(ok=True)  # decided before it was sent: no link to a closed request
        c = self.deps.container
        p = delivery.payload
        reason = "reminder" if delivery.kind == "reminder" else "escalated" if p.get("escalation") else "new"
        note = _escalation_note(p) if reason == "escalated" else None
        # a watcher is told, and cannot decide: their mail carries no decision link
        watcher = p.get("role") == "watcher"
        code = cp.priority in self.deps.code_for
        minted = (
            None if watcher else await self.deps.links.mint(cp, delivery.target, c.clock.now(), code=code)
        )
        mail = checkpoint_mail(
            cp,
            link=minted.url if minted else None,
            code=minted.code if minted else None,
            console_url=self._console(cp),
            reason=reason,
            note=note,
        )
        await deliver(self.deps.smtp, address, mail, delivery.id)
        return SendResult(ok=True, channel_ref=f"email:{address}")

    async def _mail_notice(self, delivery: Delivery, address: str) -> SendResult:
        text = str(delivery.payload.get("text") or "")
        detail = delivery.payload.get("detail")
        run = f"{self.deps.links.base_url}/runs/{delivery.run_id}" if delivery.run_id else None
        mail = notice_mail(text, str(detail) if detail else None, run)
        await deliver(self.deps.smtp, address, mail, delivery.id)
        return SendResult(ok=True, channel_ref=f"email:{address}")

    def _console(self, cp: Checkpoint) -> str:
        return f"{self.deps.links.base_url}/checkpoints/{cp.id}"

    # ------------------------------------------------------------------ roles and groups

    async def _fan_out(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """One row per person behind a role or group, ``email:`` members included."""
        c = self.deps.container
        # split before the Slack sender picks the workspace: read the groups in the checkpoint's
        cp = await c.store.get_checkpoint(str(delivery.checkpoint_id))
        rows = await per_person(c, delivery, related, cp.team)
        if rows:
            await self.deps.container.store.add_deliveries(rows, [])
            self.deps.wake()
        return SendResult(ok=True, channel_ref=f"fanout:{len(rows)}")

    # ------------------------------------------------------------------ decided notices

    async def _queue_notices(self, update: Delivery, related: list[Delivery]) -> None:
        """Once a checkpoint is closed, one notice per address it was mailed to (queued once)."""
        c = self.deps.container
        cp = await c.store.get_checkpoint(str(update.checkpoint_id))
        if cp.status is CheckpointStatus.open:
            return
        now = c.clock.now()
        mailed = {
            d.channel_ref.removeprefix("email:")
            for d in related
            if d.kind in _PERSONAL and d.channel_ref and d.channel_ref.startswith("email:")
        }
        for address in sorted(mailed):
            digest = hashlib.sha256(address.encode()).hexdigest()[:16]
            row = Delivery(
                id=f"mdn_{cp.id}_{digest}",
                run_id=cp.run_id,
                checkpoint_id=cp.id,
                kind=DECIDED,
                target=f"email:{address}",
                next_attempt_at=now,
                created_at=now,
            )
            try:
                await c.store.add_deliveries([row], [])
            except Conflict:
                continue  # queued by an earlier attempt of this update
        if mailed:
            self.deps.wake()

    async def _decided(self, delivery: Delivery) -> SendResult:
        c = self.deps.container
        cp = await c.store.get_checkpoint(str(delivery.checkpoint_id))
        decisions = await c.store.list_decisions(checkpoint_id=cp.id)
        mail: Mail = decided_mail(cp, decisions, self._console(cp))
        try:
            await deliver(self.deps.smtp, delivery.target.removeprefix("email:"), mail, delivery.id)
        except MailFailed as exc:
            return SendResult(ok=False, retryable=True, error=str(exc))
        except MailRefused as exc:
            return SendResult(ok=False, error=str(exc))
        return SendResult(ok=True, channel_ref=delivery.target)

    # ------------------------------------------------------------------ audit

    async def _fallback(self, delivery: Delivery, failed: str, then: str, error: str) -> None:
        log.warning("delivery %s: %s refused (%s); trying %s", delivery.id, failed, error, then)
        await self._audit(delivery, "delivery.fallback", {"from": failed, "to": then, "error": error})

    async def _audit(self, delivery: Delivery, kind: str, payload: dict[str, str]) -> None:
        c = self.deps.container
        audit = AuditDraft(
            at=c.clock.now(),
            actor="engine",
            channel="outbox",
            kind=kind,
            run_id=delivery.run_id,
            checkpoint_id=delivery.checkpoint_id,
            payload={"delivery": delivery.id, "target": delivery.target, **payload},
        )
        await c.store.add_deliveries([], [audit])


def _escalation_note(payload: dict[str, object]) -> str:
    waited = payload.get("waited_s")
    minutes = round(float(waited) / 60) if isinstance(waited, int | float) else None
    after = f" after waiting {minutes} minutes" if minutes else ""
    return f"This request was escalated to you{after} (level {payload.get('level', 1)})."
