"""Sends webhooks: fans an event out to its receivers, then POSTs each one, signed.

An event row (queued by the engine in the transaction of the change) becomes one ``webhook`` row
per receiver: every endpoint subscribed to its type, and the ``callback_url`` of its run. Their
ids are derived from the event's, so fanning out twice (a crash in between) adds nothing. The
body is built once, from the stored rows, and kept on the row: every attempt sends the same
bytes, with the attempt's own timestamp and signature.

POSTs go through the ``HttpClient`` port, i.e. whatever outbound policy the deployment wires
(loopback and private addresses refused unless allowed).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from bot.api._models import CheckpointOut, DecisionOut, RunOut
from bot.api._views import checkpoint_out, decision_of, run_view
from engine.clients import ClientStore, valid_secrets
from engine.errors import Conflict, NotFound, SkillFailed
from engine.events import EVENT_KIND, WEBHOOK_KIND, EventType, sign
from engine.model import Delivery
from engine.ports import Clock, HttpClient, HttpRequest, RunStore, SendResult

__all__ = ["CALLBACK_TARGET", "ENDPOINT_TARGET", "WEBHOOK_DELAYS", "WebhookSender"]

log = logging.getLogger("signoff.api.webhooks")
ENDPOINT_TARGET = "endpoint:"
CALLBACK_TARGET = "callback:"
# waits after each failed attempt: the last attempt comes more than 24 hours after the first
WEBHOOK_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
_CHECKPOINT_EVENTS = {e.value for e in EventType} - {EventType.run_finished.value}


class WebhookSender:
    """Implements ``engine.ports.Sender`` for ``webhook_event`` and ``webhook`` rows."""

    def __init__(
        self,
        store: RunStore,
        clients: ClientStore,
        http: HttpClient | None,
        clock: Clock,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.store = store
        self.clients = clients
        self.http = http
        self.clock = clock
        self.timeout_s = timeout_s

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Fan an event out, or POST one webhook."""
        if delivery.kind == EVENT_KIND:
            return await self._fan_out(delivery)
        if delivery.kind == WEBHOOK_KIND:
            return await self._post(delivery)
        return SendResult(ok=False, error=f"no webhook sender for {delivery.kind!r}")

    # ------------------------------------------------------------------ fan-out

    async def _fan_out(self, event: Delivery) -> SendResult:
        kind = str(event.payload.get("type", ""))
        body = await self._body(event, kind)
        rows: list[Delivery] = []
        revoked = {k.id for k in await self.clients.list_api_keys() if k.revoked_at is not None}
        for endpoint in await self.clients.list_endpoints():
            if kind in endpoint.events and endpoint.client_id not in revoked:
                target = f"{ENDPOINT_TARGET}{endpoint.id}"
                rows.append(
                    self._row(
                        event,
                        f"{event.id}.{endpoint.id}",
                        target,
                        endpoint.url,
                        endpoint.client_id,
                        kind,
                        body,
                    )
                )
        callback = await self._callback(event)
        if callback is not None:
            url, client = callback
            rows.append(
                self._row(
                    event, f"{event.id}.callback", f"{CALLBACK_TARGET}{client}", url, client, kind, body
                )
            )
        if rows:
            try:
                await self.store.add_deliveries(rows, [])
            except Conflict:
                log.info("event %s was already fanned out", event.id)
        return SendResult(ok=True, channel_ref=f"webhooks:{len(rows)}")

    async def _callback(self, event: Delivery) -> tuple[str, str] | None:
        if event.run_id is None:
            return None
        try:
            run = await self.store.get_run(event.run_id)
        except NotFound:
            return None
        url, client = run.origin.get("callback_url"), run.origin.get("client")
        return (str(url), str(client)) if url and client else None

    def _row(
        self, event: Delivery, row_id: str, target: str, url: str, client: str, kind: str, body: str
    ) -> Delivery:
        now = self.clock.now()
        return Delivery(
            id=row_id,
            run_id=event.run_id,
            checkpoint_id=event.checkpoint_id,
            kind=WEBHOOK_KIND,
            target=target,
            payload={"url": url, "client": client, "type": kind, "body": body},
            next_attempt_at=now,
            created_at=now,
        )

    async def _body(self, event: Delivery, kind: str) -> str:
        data: dict[str, Any] = {}
        if kind in _CHECKPOINT_EVENTS and event.checkpoint_id is not None:
            cp = await self.store.get_checkpoint(event.checkpoint_id)
            decision: DecisionOut | None = await decision_of(self.store, cp)
            view: CheckpointOut = checkpoint_out(cp, decision)
            data = {
                "checkpoint": view.model_dump(mode="json"),
                "decision": view.model_dump(mode="json")["decision"],
            }
        elif event.run_id is not None:
            run: RunOut = await run_view(self.store, await self.store.get_run(event.run_id))
            data = {"run": run.model_dump(mode="json")}
        envelope = {"type": kind, "timestamp": _iso(event.created_at), "data": data}
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))

    # ------------------------------------------------------------------ one POST

    async def _secrets(self, delivery: Delivery) -> list[str] | str:
        """The secrets that sign this row now, or why it can no longer be sent."""
        now = self.clock.now()
        if delivery.target.startswith(ENDPOINT_TARGET):
            endpoint = await self.clients.get_endpoint(delivery.target.removeprefix(ENDPOINT_TARGET))
            if endpoint.deleted_at is not None:
                return "the webhook endpoint was deleted"
            return valid_secrets(endpoint.secrets, now)
        key = await self.clients.get_api_key(str(delivery.payload.get("client")))
        if key.revoked_at is not None:
            return "the API key that named this callback_url was revoked"
        return valid_secrets(key.signing_secrets, now)

    async def _post(self, delivery: Delivery) -> SendResult:
        if self.http is None:
            return SendResult(ok=False, error="no HTTP client is configured")
        try:
            secrets = await self._secrets(delivery)
        except NotFound as exc:
            return SendResult(ok=False, error=str(exc))
        if isinstance(secrets, str) or not secrets:
            return SendResult(ok=False, error=secrets or "no valid signing secret")
        body = str(delivery.payload.get("body", ""))
        stamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Signoff-Webhooks/1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secrets, delivery.id, stamp, body.encode()),
        }
        request = HttpRequest(
            method="POST",
            url=str(delivery.payload.get("url")),
            headers=headers,
            body=body,
            timeout_s=self.timeout_s,
        )
        try:
            response = await self.http.request(request)
        except SkillFailed as exc:
            return SendResult(ok=False, retryable=exc.retryable, error=str(exc))
        if 200 <= response.status < 300:
            return SendResult(ok=True, channel_ref=f"http:{response.status}")
        # any other answer is retried on the schedule (the receiver may be down or redeploying)
        return SendResult(ok=False, retryable=True, error=f"the receiver answered HTTP {response.status}")


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
