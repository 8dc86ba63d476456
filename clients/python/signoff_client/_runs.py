"""``sg.runs``: start, read, wait for, cancel and list workflow runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from signoff_client._models import Run, RunPage, RunResult
from signoff_client._transport import Transport
from signoff_client._waiting import REPLAYED, Waiting, plain

__all__ = ["Runs"]


class Runs:
    """``sg.runs``: start, get, wait, cancel, list workflow runs."""

    def __init__(self, transport: Transport, waiting: Waiting) -> None:
        self._t = transport
        self._waiting = waiting

    async def start(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | BaseModel | None = None,
        *,
        key: str,
        callback_url: str | None = None,
    ) -> Run:
        """Start a catalog workflow; idempotent by ``key`` (yours, never derived from the inputs)."""
        body: dict[str, Any] = {"workflow": workflow, "inputs": plain(inputs) or {}}
        if callback_url is not None:
            body["callback_url"] = callback_url
        answer = await self._t.request(
            "POST", "/runs", json=body, headers={"Idempotency-Key": key}, safe=True
        )
        return Run.model_validate({**answer.body, "replayed": answer.headers.get(REPLAYED) == "true"})

    async def get(self, run_id: str) -> Run:
        """One run."""
        return Run.model_validate((await self._t.request("GET", f"/runs/{run_id}", safe=True)).body)

    async def wait(self, run_id: str, *, timeout: float | None = None) -> RunResult:
        """The result once the run ends, waiting in long-poll rounds of at most 25 s.

        Raises:
            WaitTimeout: ``timeout`` passed first; the run goes on.
        """
        body = await self._waiting.until_done(f"/runs/{run_id}/result", run_id, timeout)
        return RunResult.model_validate(body)

    async def cancel(self, run_id: str, *, reason: str | None = None) -> Run:
        """Cancel a run (its requester or an admin)."""
        body = {"reason": reason} if reason else {}
        answer = await self._t.request("POST", f"/runs/{run_id}/cancel", json=body, safe=True)
        return Run.model_validate(answer.body)

    async def list(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (``status`` is comma-separated)."""
        params = {"status": status, "workflow": workflow, "limit": limit, "cursor": cursor}
        return RunPage.model_validate((await self._t.request("GET", "/runs", params=params, safe=True)).body)
