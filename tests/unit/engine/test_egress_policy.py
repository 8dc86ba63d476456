"""The outbound HTTP policy: which addresses are refused, and how the allow list lifts them."""

from __future__ import annotations

import pytest

from engine import egress
from engine.egress import EgressPolicy

DEFAULT = EgressPolicy()


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "private"),  # shared address space (carrier-grade NAT)
        ("fec0::1", "private"),  # deprecated site-local
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not a bind
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation
        ("198.18.0.1", "reserved"),  # benchmarking
        # IPv6 spellings of internal IPv4 addresses
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("2002:c0a8:101::1", "private"),
        ("::7f00:1", "loopback"),  # IPv4-compatible
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo
    ],
)
def test_internal_addresses_are_refused_by_default(address: str, rule: str) -> None:
    refusal = DEFAULT.check(address, address, 80)
    assert refusal is not None
    assert refusal.rule == rule
    assert f"a {rule} address" in str(refusal) or f"an {rule} address" in str(refusal)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.check("api.example.com", address, 443) is None


def test_a_refusal_names_the_host_the_address_and_the_rule() -> None:
    refusal = DEFAULT.check("metadata.internal", "169.254.169.254", 80)
    assert str(refusal) == (
        "host 'metadata.internal' resolves to 169.254.169.254, a link-local address "
        "(to allow it, list it in SIGNOFF_HTTP_ALLOW)"
    )
    mapped = DEFAULT.check("::ffff:127.0.0.1", "::ffff:127.0.0.1", 80)
    assert str(mapped) == (
        "::ffff:7f00:1 (127.0.0.1) is a loopback address (to allow it, list it in SIGNOFF_HTTP_ALLOW)"
    )


def test_listed_hosts_networks_and_ports_are_allowed() -> None:
    policy = EgressPolicy.parse("billing.internal, 10.20.0.0/16 127.0.0.1:8080\n*.corp.example [::1]:9000")
    assert policy.check("billing.internal", "10.0.0.5", 443) is None
    assert policy.check("BILLING.internal.", "10.0.0.5", 443) is None
    assert policy.check("other.internal", "10.20.3.4", 443) is None
    assert policy.check("other.internal", "::ffff:10.20.3.4", 443) is None
    assert policy.check("127.0.0.1", "127.0.0.1", 8080) is None
    assert policy.check("a.b.corp.example", "192.168.1.1", 80) is None
    assert policy.check("::1", "::1", 9000) is None
    # what the entries do not cover stays refused
    assert policy.check("billing.internal.evil.test", "10.0.0.5", 443) is not None
    assert policy.check("other.internal", "10.21.0.1", 443) is not None
    assert policy.check("127.0.0.1", "127.0.0.1", 8081) is not None
    assert policy.check("corp.example", "192.168.1.1", 80) is not None
    assert policy.check("::1", "::1", 9001) is not None


def test_unspecified_and_multicast_are_refused_even_when_listed() -> None:
    policy = EgressPolicy.parse("0.0.0.0/0 ::/0 anything.test")
    assert policy.check("anything.test", "0.0.0.0", 80) is not None  # noqa: S104
    assert policy.check("x.test", "::", 80) is not None
    assert policy.check("x.test", "224.0.0.1", 80) is not None
    refusal = policy.check("x.test", "0.0.0.0", 80)  # noqa: S104
    assert refusal is not None
    assert "never allowed" in str(refusal)
    assert policy.check("x.test", "10.0.0.1", 80) is None


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("http://billing.internal", "not a URL"),
        ("10.0.0.1/8", "has host bits set"),
        ("10.0.0.0/33", "CIDR"),
        ("127.1", "four decimal numbers"),
        ("0x7f.1", "four decimal numbers"),
        ("2130706433", "four decimal numbers"),
        ("billing.internal:http", "port must be a number"),
        ("billing.internal:70000", "port must be a number"),
        ("[::1", "[address]:port"),
        ("under_score.test", "not a host name"),
        ("bücher.example", "xn--"),
    ],
)
def test_a_bad_allow_list_entry_is_named(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"^'") as caught:
        EgressPolicy.parse(f"ok.example, {entry}")
    assert entry in str(caught.value)
    assert says in str(caught.value)


def test_an_empty_allow_list_allows_nothing_internal() -> None:
    assert EgressPolicy.parse("  , ,") == DEFAULT
    assert DEFAULT.describe() == "(nothing listed)"
    assert EgressPolicy.parse("a.test,10.0.0.0/8").describe() == "a.test, 10.0.0.0/8"


def test_public_api() -> None:
    assert egress.__all__ == ["AllowEntry", "EgressPolicy", "Refusal", "parse_ip"]
    with pytest.raises(ValueError, match="does not appear to be"):
        egress.parse_ip("127.1")
