"""The outbound HTTP policy applied to aiohttp: a resolver and a connector.

``EgressConnector`` checks every connection a session opens, on the first request and on every
redirect hop: an IP-literal host is checked as written; a name is resolved by the system resolver
(``aiohttp.ThreadedResolver``, i.e. ``getaddrinfo``) and each address it returns is checked.
Refused addresses are dropped and aiohttp connects only to the addresses that passed, so a DNS
answer that changes between the check and the connection (rebinding) cannot swap them. Any
aiohttp session built on this connector gets the policy; proxies are refused, because the proxy,
not this process, would resolve the target.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import ClientRequest, ClientTimeout, TCPConnector, ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import Connection
from yarl import URL

from engine.egress import EgressPolicy, parse_ip
from engine.errors import EgressRefused

__all__ = ["EgressConnector", "GuardedResolver", "check_url"]

_SCHEMES = frozenset({"http", "https"})


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` (the system resolver by default) and keeps only allowed addresses."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host`` the policy allows.

        Raises:
            EgressRefused: every address was refused; names the host, the address and the rule.
        """
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refusals: list[str] = []
        for result in results:
            refusal = self._policy.check(host, result["host"], port)
            if refusal is None:
                allowed.append(result)
            else:
                refusals.append(str(refusal))
        if not allowed:
            reason = refusals[0] if refusals else f"host {host!r} has no address"
            raise EgressRefused(reason, host=host, port=port)
        return allowed

    async def close(self) -> None:
        """Close the inner resolver."""
        if self._inner is not None:
            await self._inner.close()


class EgressConnector(TCPConnector):
    """A ``TCPConnector`` that opens connections only to destinations ``policy`` allows."""

    def __init__(
        self, policy: EgressPolicy, *, resolver: AbstractResolver | None = None, **kwargs: Any
    ) -> None:
        self._guard = GuardedResolver(policy, resolver)
        self._policy = policy
        super().__init__(resolver=self._guard, **kwargs)

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Any],
        timeout: ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> Connection:
        """Check the request's destination, then connect (names are checked as they resolve)."""
        if req.proxy is not None:
            raise EgressRefused("requests through a proxy are refused", host=req.url.host or "", port=None)
        check_url(self._policy, req.url)
        return await super().connect(req, traces, timeout)

    async def close(self, *, abort_ssl: bool = False) -> None:
        """Close the pooled connections and the resolver."""
        await super().close(abort_ssl=abort_ssl)
        await self._guard.close()


def check_url(policy: EgressPolicy, url: URL) -> None:
    """Refuse a URL whose scheme is not http(s) or whose IP-literal host the policy refuses.

    A host name passes here; ``GuardedResolver`` checks what it resolves to.

    Raises:
        EgressRefused: naming the host and the rule.
    """
    host = url.host or ""
    port = url.port
    if url.scheme not in _SCHEMES:
        raise EgressRefused(f"scheme {url.scheme!r} is refused (only http and https)", host=host, port=port)
    if not host:
        raise EgressRefused("the URL has no host", host=host, port=port)
    if ":" not in host and not host.replace(".", "").isdigit():
        return  # a name: checked after DNS resolution
    try:
        address = parse_ip(host)
    except ValueError:
        message = f"host {host!r} is not an IP address in canonical form (write it as a.b.c.d)"
        raise EgressRefused(message, host=host, port=port) from None
    refusal = policy.check(host, str(address), port or 0)
    if refusal is not None:
        raise EgressRefused(str(refusal), host=host, port=port)
