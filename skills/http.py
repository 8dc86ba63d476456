"""The ``http`` node's client: aiohttp behind the outbound HTTP policy, errors translated to SkillFailed."""

from __future__ import annotations

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from engine.egress import EgressPolicy
from engine.errors import EgressRefused, SkillFailed
from engine.ports import HttpRequest, HttpResponse
from skills.egress import EgressConnector, check_url

__all__ = ["MAX_REDIRECTS", "AiohttpClient"]

_MAX_BODY = 4 * 1024 * 1024
MAX_REDIRECTS = 10

# redirect trouble will not go away by asking again
_FINAL = (
    aiohttp.InvalidUrlClientError,
    aiohttp.NonHttpUrlRedirectClientError,
    aiohttp.InvalidUrlRedirectClientError,
)


class AiohttpClient:
    """Sends requests through one pooled ``EgressConnector``; call ``close`` on shutdown.

    Every request gets its own session and cookie jar, so cookies set for one run never reach
    another (cookies set during one request's redirects are kept for that request). Redirects are
    followed by aiohttp (at most ``MAX_REDIRECTS``; 303, and 301/302 after POST, become GET
    without a body; credentials are dropped across origins), and the connector checks each hop.

    Args:
        policy: what requests may reach; by default no internal address.
        resolver: the DNS resolver (default: the system's, through ``getaddrinfo``).
    """

    def __init__(
        self, policy: EgressPolicy | None = None, *, resolver: AbstractResolver | None = None
    ) -> None:
        self._policy = policy or EgressPolicy()
        self._resolver = resolver
        self._connector: EgressConnector | None = None

    async def request(self, request: HttpRequest) -> HttpResponse:
        """Send the request.

        Raises:
            EgressRefused: the policy refused the URL or a redirect's target (names host and rule).
            SkillFailed: retryable on connection errors and timeouts, final on bad redirects.
        """
        url = _target(self._policy, request)
        if self._connector is None:
            self._connector = EgressConnector(self._policy, resolver=self._resolver)
        kwargs: dict[str, object] = {"headers": request.headers}
        if request.json_body is not None:
            kwargs["json"] = request.json_body
        elif request.body is not None:
            kwargs["data"] = request.body
        try:
            async with (
                aiohttp.ClientSession(
                    connector=self._connector, connector_owner=False, cookie_jar=aiohttp.CookieJar()
                ) as session,
                session.request(
                    request.method,
                    url,
                    timeout=aiohttp.ClientTimeout(total=request.timeout_s),
                    max_redirects=MAX_REDIRECTS,
                    **kwargs,  # type: ignore[arg-type]
                ) as response,
            ):
                raw = await response.content.read(_MAX_BODY)
                return HttpResponse(
                    status=response.status,
                    headers={k: v for k, v in response.headers.items()},
                    text=raw.decode(response.charset or "utf-8", errors="replace"),
                )
        except EgressRefused as exc:
            raise _refused(request, url, exc) from exc
        except TimeoutError as exc:
            raise SkillFailed(
                f"{request.method} {request.url} timed out after {request.timeout_s:g}s", retryable=True
            ) from exc
        except aiohttp.TooManyRedirects as exc:
            raise SkillFailed(f"{request.method} {request.url}: more than {MAX_REDIRECTS} redirects") from exc
        except _FINAL as exc:
            raise SkillFailed(f"{request.method} {request.url}: bad redirect or URL: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise SkillFailed(f"{request.method} {request.url} failed: {exc}", retryable=True) from exc

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._connector is not None:
            await self._connector.close()
            self._connector = None


def _target(policy: EgressPolicy, request: HttpRequest) -> URL:
    try:
        url = URL(request.url)
    except ValueError as exc:
        raise SkillFailed(f"{request.method} {request.url!r} is not a valid URL: {exc}") from exc
    if url.user is not None or url.password is not None:
        message = (
            f"{request.method} to {url.host}: a URL with credentials ('user@host') is refused; "
            "send them in a header"
        )
        raise EgressRefused(message, host=url.host or "", port=url.port)
    try:
        check_url(policy, url)
    except EgressRefused as exc:
        raise _refused(request, url, exc) from exc
    return url


def _refused(request: HttpRequest, url: URL, exc: EgressRefused) -> EgressRefused:
    if exc.host in (url.host, url.raw_host) and exc.port in (None, url.port):
        message = f"{request.method} {request.url} refused by the outbound HTTP policy: {exc}"
    else:
        target = exc.host if exc.port is None else f"{exc.host}:{exc.port}"
        message = (
            f"{request.method} {request.url} was redirected to {target}, "
            f"which the outbound HTTP policy refuses: {exc}"
        )
    return EgressRefused(message, host=exc.host, port=exc.port)
