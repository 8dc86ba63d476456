"""Local-mode delivery: no Slack, so checkpoint and notify messages go to the log and the console."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine.model import Delivery
from engine.ports import SendResult

if TYPE_CHECKING:
    from engine.service import Engine

__all__ = ["LocalSender"]

log = logging.getLogger("signoff.local")


class LocalSender:
    """Marks deliveries as sent after logging where the person can act (the web console)."""

    def __init__(self, base_url: str = "http://127.0.0.1:3000") -> None:
        self.base_url = base_url.rstrip("/")
        self.sent: list[Delivery] = []
        self._engine: Engine | None = None

    def masked_by(self, engine: Engine) -> None:
        """Mask each run's sensitive values (``engine.sensitive``) in the messages it logs."""
        self._engine = engine

    async def _masked(self, delivery: Delivery, text: str) -> str:
        if self._engine is None or delivery.run_id is None:
            return text
        run = await self._engine.store.get_run(delivery.run_id)
        return (await self._engine.redactor(run)).text(text)

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
            text = await self._masked(delivery, str(delivery.payload.get("text") or ""))
            log.info("message to %s: %s", delivery.target, text)
        return SendResult(ok=True, channel_ref="local")
