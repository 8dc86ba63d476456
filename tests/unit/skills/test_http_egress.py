"""The aiohttp client behind the outbound HTTP policy, against real servers on 127.0.0.1.

Names other than ``localhost`` are answered by a fake DNS resolver (an aiohttp resolver that
maps names to fixed addresses), so no test leaves this machine.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from engine.egress import EgressPolicy
from engine.errors import EgressRefused, SkillFailed
from engine.ports import HttpRequest
from skills import egress as egress_module
from skills import http as http_module
from skills.egress import EgressConnector
from skills.http import AiohttpClient
from tests.fakes.origin import Origin


class FakeDns(AbstractResolver):
    """Answers from a table; a name may get a different answer on each lookup (rebinding)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
async def meta() -> AsyncIterator[Origin]:
    """The server an attacker wants to reach (a stand-in for a cloud metadata service)."""
    async with Origin() as origin:
        origin.reply("/latest/credentials", '{"AccessKeyId": "FAKE-SECRET"}')
        yield origin


@pytest.fixture
async def front() -> AsyncIterator[Origin]:
    """A second server, the one a deployment lists."""
    async with Origin() as origin:
        yield origin


async def _get(client: AiohttpClient, url: str, headers: dict[str, str] | None = None) -> str:
    try:
        response = await client.request(
            HttpRequest(method="GET", url=url, timeout_s=20, headers=headers or {})
        )
    finally:
        await client.close()
    return response.text


async def _refused(client: AiohttpClient, url: str, method: str = "GET") -> EgressRefused:
    try:
        with pytest.raises(EgressRefused) as caught:
            await client.request(HttpRequest(method=method, url=url, timeout_s=20))
    finally:
        await client.close()
    assert caught.value.retryable is False
    return caught.value


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("localhost", "host 'localhost' resolves to"),
        ("LOCALHOST", "host 'localhost' resolves to"),
        ("ⓛocalhost", "host 'localhost' resolves to"),  # IDNA mapping of a look-alike
        ("0x7f.1", "host '0x7f.1' resolves to 127.0.0.1"),  # legacy forms the system resolver accepts
        ("2130706433", "not an IP address in canonical form"),
        ("127.1", "not an IP address in canonical form"),
        ("0177.0.0.1", "not an IP address in canonical form"),
        ("[::ffff:127.0.0.1]", "(127.0.0.1) is a loopback address"),
        ("[::ffff:7f00:1]", "(127.0.0.1) is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address, which is never allowed"),  # noqa: S104
        ("[::]", ":: is an unspecified address"),
    ],
)
async def test_loopback_is_refused_by_default_in_every_spelling(meta: Origin, host: str, says: str) -> None:
    refused = await _refused(AiohttpClient(), f"http://{host}:{meta.port}/latest/credentials")
    assert "refused by the outbound HTTP policy" in str(refused)
    assert says in str(refused)
    assert meta.hits == []


async def test_credentials_in_the_url_are_refused(meta: Origin) -> None:
    listed = EgressPolicy.parse(f"127.0.0.1:{meta.port}")
    refused = await _refused(
        AiohttpClient(listed), f"http://admin:pw@127.0.0.1:{meta.port}/latest/credentials"
    )
    assert "credentials" in str(refused)
    assert "pw" not in str(refused)
    assert meta.hits == []


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "127.0.0.1:{port}", "localhost"])
async def test_a_listed_host_network_or_port_is_reached(meta: Origin, entry: str) -> None:
    policy = EgressPolicy.parse(entry.format(port=meta.port))
    host = "localhost" if entry == "localhost" else "127.0.0.1"
    text = await _get(AiohttpClient(policy), meta.url("/latest/credentials", host=host))
    assert "FAKE-SECRET" in text
    assert [h.path for h in meta.hits] == ["/latest/credentials"]


async def test_a_listed_port_does_not_open_the_other_ports(meta: Origin, front: Origin) -> None:
    policy = EgressPolicy.parse(f"127.0.0.1:{front.port}")
    refused = await _refused(AiohttpClient(policy), meta.url("/latest/credentials"))
    assert "loopback" in str(refused)
    assert meta.hits == []


async def test_a_redirect_from_a_listed_host_to_a_refused_one_is_refused(meta: Origin, front: Origin) -> None:
    front.redirect("/start", meta.url("/latest/credentials"), body="REDIRECT-BODY moved")
    client = AiohttpClient(EgressPolicy.parse(f"127.0.0.1:{front.port}"))
    refused = await _refused(client, front.url("/start"))
    message = str(refused)
    assert message == (
        f"GET {front.url('/start')} was redirected to 127.0.0.1:{meta.port}, which the outbound HTTP "
        "policy refuses: 127.0.0.1 is a loopback address (to allow it, list it in SIGNOFF_HTTP_ALLOW)"
    )
    assert "REDIRECT-BODY" not in message
    assert [h.path for h in front.hits] == ["/start"]
    assert meta.hits == []


async def test_a_redirect_to_a_name_is_checked_after_dns(meta: Origin, front: Origin) -> None:
    front.redirect("/start", f"http://metadata.test:{meta.port}/latest/credentials")
    dns = FakeDns({"metadata.test": [["169.254.169.254"]]})
    client = AiohttpClient(EgressPolicy.parse(f"127.0.0.1:{front.port}"), resolver=dns)
    refused = await _refused(client, front.url("/start"))
    assert "redirected to metadata.test" in str(refused)
    assert "resolves to 169.254.169.254, a link-local address" in str(refused)
    assert dns.lookups == ["metadata.test"]


async def test_the_connection_goes_to_the_address_that_was_checked(meta: Origin) -> None:
    # the first answer is allowed; a second lookup would answer an address that is not listed
    dns = FakeDns({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    client = AiohttpClient(EgressPolicy.parse("127.0.0.1/32"), resolver=dns)
    text = await _get(client, f"http://rebind.test:{meta.port}/latest/credentials")
    assert "FAKE-SECRET" in text
    assert dns.lookups == ["rebind.test"]


async def test_refused_addresses_in_an_answer_are_dropped(meta: Origin) -> None:
    dns = FakeDns({"mixed.test": [["10.0.0.1", "127.0.0.1"]], "internal.test": [["10.0.0.1", "fe80::1"]]})
    client = AiohttpClient(EgressPolicy.parse("127.0.0.1"), resolver=dns)
    assert "FAKE-SECRET" in await _get(client, f"http://mixed.test:{meta.port}/latest/credentials")
    client = AiohttpClient(EgressPolicy.parse("127.0.0.1"), resolver=dns)
    refused = await _refused(client, f"http://internal.test:{meta.port}/")
    assert "host 'internal.test' resolves to 10.0.0.1, a private address" in str(refused)


async def test_redirects_follow_the_method_and_body_rules(front: Origin) -> None:
    front.redirect("/see-other", "/landing", status=303)
    front.redirect("/temporary", "/landing", status=307)
    front.reply("/landing", "ok")
    policy = EgressPolicy.parse(f"127.0.0.1:{front.port}")
    for path in ("/see-other", "/temporary"):
        client = AiohttpClient(policy)
        try:
            await client.request(HttpRequest(method="POST", url=front.url(path), body="amount=5"))
        finally:
            await client.close()
    landed = [(h.method, h.body) for h in front.hits if h.path == "/landing"]
    assert landed == [("GET", ""), ("POST", "amount=5")]


async def test_credentials_do_not_follow_a_redirect_to_another_origin(front: Origin, meta: Origin) -> None:
    front.redirect("/start", meta.url("/latest/credentials"))
    policy = EgressPolicy.parse(f"127.0.0.1:{front.port} 127.0.0.1:{meta.port}")
    await _get(AiohttpClient(policy), front.url("/start"), headers={"Authorization": "Bearer T"})
    assert front.hits[0].headers.get("Authorization") == "Bearer T"
    assert "Authorization" not in meta.hits[0].headers


async def test_a_redirect_loop_stops_at_the_hop_limit(front: Origin) -> None:
    front.redirect("/loop", "/loop")
    client = AiohttpClient(EgressPolicy.parse(f"127.0.0.1:{front.port}"))
    hops = http_module.MAX_REDIRECTS
    with pytest.raises(SkillFailed, match=f"more than {hops} redirects") as caught:
        await _get(client, front.url("/loop"))
    assert caught.value.retryable is False
    assert len(front.hits) == hops


async def test_a_redirect_to_another_scheme_is_refused(front: Origin) -> None:
    front.redirect("/start", "file:///etc/passwd")
    client = AiohttpClient(EgressPolicy.parse(f"127.0.0.1:{front.port}"))
    with pytest.raises(SkillFailed, match="bad redirect") as caught:
        await _get(client, front.url("/start"))
    assert caught.value.retryable is False


async def test_cookies_stay_with_their_request(front: Origin) -> None:
    async def login(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=302, headers={"Location": "/whoami"})
        response.set_cookie("session", "alice")
        return response

    async def whoami(request: web.Request) -> web.StreamResponse:
        return web.Response(text=request.cookies.get("session", "nobody"))

    front.routes.update({"/login": login, "/whoami": whoami})
    client = AiohttpClient(EgressPolicy.parse("localhost"))
    try:
        first = await client.request(HttpRequest(method="GET", url=front.url("/login", host="localhost")))
        second = await client.request(HttpRequest(method="GET", url=front.url("/whoami", host="localhost")))
    finally:
        await client.close()
    assert first.text == "alice"  # kept across the redirects of one request
    assert second.text == "nobody"  # never sent with another request


async def test_a_closed_port_on_a_listed_host_is_a_retryable_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AiohttpClient(EgressPolicy.parse("127.0.0.1"))
    with pytest.raises(SkillFailed) as caught:
        await _get(client, f"http://127.0.0.1:{port}/")
    assert caught.value.retryable is True
    assert not isinstance(caught.value, EgressRefused)


async def test_any_aiohttp_session_on_the_connector_gets_the_policy(meta: Origin) -> None:
    connector = EgressConnector(EgressPolicy())
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(EgressRefused, match="loopback"):
            await session.get(meta.url("/latest/credentials"))
        with pytest.raises(EgressRefused, match="proxy"):
            await session.get("http://api.example.com/", proxy=meta.url("/"))
    assert meta.hits == []


def test_public_api() -> None:
    assert http_module.__all__ == ["MAX_REDIRECTS", "AiohttpClient"]
    assert egress_module.__all__ == ["EgressConnector", "GuardedResolver", "check_url"]
