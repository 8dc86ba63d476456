"""Long polls: rounds of at most 25 s until a total timeout; and helpers shared by the resources."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from signoff_client._errors import WaitTimeout
from signoff_client._transport import Transport

__all__ = ["MAX_ROUND_S", "REPLAYED", "Waiting", "plain"]

MAX_ROUND_S = 25
"""The longest one long-poll request is held (gateways cut longer ones)."""
REPLAYED = "Idempotent-Replayed"


def plain(value: BaseModel | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A model or mapping as a JSON-ready dict (None stays None)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return dict(value) if value is not None else None


class Waiting:
    """Long-poll rounds of at most 25 s until a total timeout (None: until it ends)."""

    def __init__(self, transport: Transport, round_s: int) -> None:
        self.transport = transport
        self.round_s = max(1, min(round_s, MAX_ROUND_S))  # 0 would poll without waiting

    async def until_done(self, path: str, resource_id: str, timeout_s: float | None) -> Any:
        """GET ``path?wait=..`` until it answers 200; ``WaitTimeout`` once ``timeout_s`` passed."""
        started = time.monotonic()
        while True:
            wait = self.round_s
            if timeout_s is not None:
                left = timeout_s - (time.monotonic() - started)
                wait = max(0, min(wait, math.ceil(left)))
            answer = await self.transport.request(
                "GET", path, params={"wait": wait}, safe=True, timeout_s=wait + 30.0
            )
            if answer.status == 200:
                return answer.body
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                raise WaitTimeout(resource_id, timeout_s)
