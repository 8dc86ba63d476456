"""The ``http`` node's client: aiohttp, with library errors translated to SkillFailed."""

from __future__ import annotations

import aiohttp

from engine.errors import SkillFailed
from engine.ports import HttpRequest, HttpResponse

__all__ = ["AiohttpClient"]

_MAX_BODY = 4 * 1024 * 1024


class AiohttpClient:
    """One shared aiohttp session; call ``close`` on shutdown."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def request(self, request: HttpRequest) -> HttpResponse:
        """Send the request; connection errors and timeouts are retryable SkillFailed."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        kwargs: dict[str, object] = {"headers": request.headers}
        if request.json_body is not None:
            kwargs["json"] = request.json_body
        elif request.body is not None:
            kwargs["data"] = request.body
        try:
            async with self._session.request(
                request.method,
                request.url,
                timeout=aiohttp.ClientTimeout(total=request.timeout_s),
                **kwargs,  # type: ignore[arg-type]
            ) as response:
                raw = await response.content.read(_MAX_BODY)
                return HttpResponse(
                    status=response.status,
                    headers={k: v for k, v in response.headers.items()},
                    text=raw.decode(response.charset or "utf-8", errors="replace"),
                )
        except TimeoutError as exc:
            raise SkillFailed(
                f"{request.method} {request.url} timed out after {request.timeout_s:g}s", retryable=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise SkillFailed(f"{request.method} {request.url} failed: {exc}", retryable=True) from exc

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
