"""Local-mode delivery: no Slack, so checkpoint and notify messages go to the log and the console."""

from __future__ import annotations

import logging

from engine.model import Delivery
from engine.ports import SendResult

__all__ = ["LocalSender"]

log = logging.getLogger("signoff.local")


class LocalSender:
    """Marks deliveries as sent after logging where the person can act (the web console)."""

    def __init__(self, base_url: str = "http://127.0.0.1:3000") -> None:
        self.base_url = base_url.rstrip("/")
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Log the delivery with a link."""
        self.sent.append(delivery)
        if delivery.checkpoint_id and delivery.kind == "checkpoint":
            log.info(
                "checkpoint %s waits for %s: %s/checkpoints/%s",
                delivery.checkpoint_id,
                delivery.target,
                self.base_url,
                delivery.checkpoint_id,
            )
        elif delivery.kind in {"notify", "requester_notice"}:
            log.info("message to %s: %s", delivery.target, delivery.payload.get("text", ""))
        return SendResult(ok=True, channel_ref="local")
