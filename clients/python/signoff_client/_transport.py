"""One HTTP exchange with retries: jittered exponential back-off on 5xx, 429 and connection
errors, ``Retry-After`` honoured, never a retry on any other 4xx.

A request that may have reached the server is repeated only when repeating it is safe: reads,
creates that carry an idempotency key, and cancels. Anything else (a decision) is repeated
only when the connection was never made.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from signoff_client._errors import TransportError, problem_error

__all__ = ["Backoff", "Response", "Transport"]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True)
class Backoff:
    """Retry policy: ``retries`` more attempts, waiting ``uniform(0, min(cap, base * 2**n))``."""

    retries: int = 4
    base_s: float = 0.25
    cap_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        jitter = random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # noqa: S311 - jitter
        if retry_after is not None:
            return min(retry_after, _MAX_RETRY_AFTER_S) + jitter / 10
        return jitter


@dataclass(frozen=True)
class Response:
    """A successful answer: status, parsed JSON body and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """Sends requests to the API with a bearer key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        backoff: Backoff,
        timeout_s: float,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required (signoff keys create)")
        self.backoff = backoff
        self.timeout_s = timeout_s
        self._own = http is None
        self.http = http or httpx.AsyncClient()
        self.base = base_url.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    async def close(self) -> None:
        """Close the connection pool (when the client created it)."""
        if self._own:
            await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        safe: bool,
        timeout_s: float | None = None,
    ) -> Response:
        """Send, retrying as the policy allows; raise the problem's typed error otherwise.

        Args:
            safe: Whether repeating the request after it may have reached the server is harmless.
            timeout_s: The read timeout of this request (a long poll needs more than its wait).
        """
        sent = {**self.headers, **(headers or {})}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = httpx.Timeout(timeout_s or self.timeout_s, connect=min(10.0, self.timeout_s))
        attempt = 0
        while True:
            try:
                answer = await self.http.request(
                    method, self.base + path, json=json, params=query, headers=sent, timeout=timeout
                )
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt >= self.backoff.retries or not (safe or never_sent):
                    raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(self.backoff.delay(attempt, None))
                attempt += 1
                continue
            if answer.status_code < 400:
                return Response(answer.status_code, _json(answer), answer.headers)
            if answer.status_code in _RETRY_STATUSES and attempt < self.backoff.retries and safe:
                await asyncio.sleep(
                    self.backoff.delay(attempt, retry_after(answer.headers.get("Retry-After")))
                )
                attempt += 1
                continue
            raise problem_error(answer.status_code, _json(answer))


def _json(answer: httpx.Response) -> Any:
    if not answer.content:
        return {}
    try:
        return answer.json()
    except ValueError:
        return answer.text
