"""Which addresses outbound requests made for workflows may reach.

The policy is pure: it classifies an IP address (after DNS resolution, which the HTTP adapter
does) and consults the deployment's allow list (``SIGNOFF_HTTP_ALLOW``). By default it refuses
loopback, link-local (including cloud metadata at 169.254.169.254), private, shared (CGNAT),
reserved, unspecified and multicast addresses, looking through IPv6 forms that embed an IPv4
address (``::ffff:127.0.0.1``, NAT64, 6to4, IPv4-compatible). Unspecified and multicast
addresses are refused even when listed: neither is ever a real HTTP server.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from pydantic import BaseModel, ConfigDict

__all__ = ["AllowEntry", "EgressPolicy", "Refusal", "parse_ip"]

IPAddress = IPv4Address | IPv6Address

_NAT64 = IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = IPv6Network("::/96")
# RFC 1918, shared address space (carrier-grade NAT) and IPv6 unique local addresses
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_THIS_NETWORK = IPv4Network("0.0.0.0/8")
_NEVER_ALLOWED = frozenset({"unspecified", "multicast"})
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")


class Refusal(BaseModel):
    """Why the policy refuses an address; ``str()`` is the sentence shown to people."""

    model_config = ConfigDict(frozen=True)

    host: str
    address: str
    rule: str
    embedded: str | None = None
    literal: bool = False

    @property
    def listable(self) -> bool:
        """False for the rules an allow list cannot lift (unspecified, multicast)."""
        return self.rule not in _NEVER_ALLOWED

    def __str__(self) -> str:
        shown = f"{self.address} ({self.embedded})" if self.embedded else self.address
        what = f"{shown} is" if self.literal else f"host {self.host!r} resolves to {shown},"
        article = "an" if self.rule[0] in "aeiou" else "a"
        if self.listable:
            return f"{what} {article} {self.rule} address (to allow it, list it in SIGNOFF_HTTP_ALLOW)"
        return f"{what} {article} {self.rule} address, which is never allowed"


class AllowEntry(BaseModel):
    """One allow-list entry: a host name (``*.`` for subdomains) or a network, with an optional port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    name: str | None = None
    network: IPv4Network | IPv6Network | None = None
    port: int | None = None

    def matches(self, host: str, addresses: tuple[IPAddress, ...], port: int) -> bool:
        """True when this entry lists ``host`` (as written in the URL) or one of ``addresses``."""
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            host = _normal_host(host)
            if self.name.startswith("*."):
                return host.endswith(self.name[1:])
            return host == self.name
        network = self.network
        return network is not None and any(a.version == network.version and a in network for a in addresses)


class EgressPolicy(BaseModel):
    """The deployment's outbound HTTP policy: refuse internal addresses unless listed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, text: str) -> EgressPolicy:
        """Read ``SIGNOFF_HTTP_ALLOW``: entries separated by commas or spaces.

        An entry is a host (``billing.internal``), a subdomain pattern (``*.corp.example``), an IP
        address, a CIDR network (``10.20.0.0/16``), or a host or address with a port
        (``billing.internal:8443``, ``[fd00::1]:8080``).

        Raises:
            ValueError: naming the entry that is wrong and why.
        """
        entries = [part for part in re.split(r"[\s,]+", text.strip()) if part]
        return cls(allow=tuple(_parse_entry(entry) for entry in entries))

    def check(self, host: str, address: str, port: int) -> Refusal | None:
        """None when ``host`` (as written in the URL), resolved to ``address``, may be reached on ``port``.

        Raises:
            ValueError: ``address`` is not an IP address.
        """
        ip = parse_ip(address)
        found = _classify(ip)
        if found is None:
            return None
        rule, embedded = found
        literal = _literal_ip(host) == ip
        refusal = Refusal(
            host=_normal_host(host), address=str(ip), rule=rule, embedded=embedded, literal=literal
        )
        if not refusal.listable:
            return refusal
        candidates = (ip,) if embedded is None else (ip, IPv4Address(embedded))
        if any(entry.matches(host, candidates, port) for entry in self.allow):
            return None
        return refusal

    def describe(self) -> str:
        """The allow list as written, for logs and error messages."""
        return ", ".join(entry.text for entry in self.allow) or "(nothing listed)"


def parse_ip(text: str) -> IPAddress:
    """An IP address in its canonical form (an IPv6 zone such as ``%eth0`` is dropped).

    Raises:
        ValueError: not an IP address, or a legacy IPv4 form (``127.1``, ``0x7f.1``, ``2130706433``).
    """
    ip = ipaddress.ip_address(text.strip("[]"))
    if isinstance(ip, IPv6Address) and ip.scope_id:
        ip = IPv6Address(str(ip).split("%", 1)[0])
    return ip


def _classify(ip: IPAddress) -> tuple[str, str | None] | None:
    if isinstance(ip, IPv6Address):
        translated = ip.ipv4_mapped or (_from_low_bits(ip) if ip in _NAT64 else None)
        if translated is not None:  # only a spelling of an IPv4 address: judge that address
            rule = _rule(translated)
            return None if rule is None else (rule, str(translated))
        embedded = _embedded_v4(ip)
        rule = None if embedded is None else _rule(embedded)
        if embedded is not None and rule is not None:
            return rule, str(embedded)
    rule = _rule(ip)
    return None if rule is None else (rule, None)


def _embedded_v4(ip: IPv6Address) -> IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return _from_low_bits(ip)
    return None


def _from_low_bits(ip: IPv6Address) -> IPv4Address:
    return IPv4Address(int(ip) & 0xFFFFFFFF)


def _rule(ip: IPAddress) -> str | None:
    if ip.is_unspecified or (isinstance(ip, IPv4Address) and ip in _THIS_NETWORK):
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    site_local = isinstance(ip, IPv6Address) and ip.is_site_local
    if site_local or any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return parse_ip(host)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    return host.strip("[]").lower().rstrip(".")


def _parse_entry(entry: str) -> AllowEntry:
    if "://" in entry:
        raise ValueError(f"{entry!r}: write a host, host:port or network (CIDR), not a URL")
    if "/" in entry:
        try:
            return AllowEntry(text=entry, network=ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a network in CIDR form (e.g. 10.0.0.0/8): {exc}") from None
    host, port = _split_port(entry)
    try:
        ip = parse_ip(host)
    except ValueError:
        return AllowEntry(text=entry, name=_check_name(entry, host), port=port)
    return AllowEntry(text=entry, network=ipaddress.ip_network(ip), port=port)


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r}: write an IPv6 address with a port as [address]:port")
        return host, _port(entry, rest[1:]) if rest else None
    if entry.count(":") == 1:
        host, _, raw = entry.partition(":")
        return host, _port(entry, raw)
    return entry, None


def _port(entry: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(raw)


def _check_name(entry: str, host: str) -> str:
    name = host.lower().rstrip(".")
    if not name.isascii():
        raise ValueError(f"{entry!r}: write an internationalised name in its xn-- (IDNA) form")
    try:
        socket.inet_aton(name)
    except OSError:
        pass
    else:  # 127.1, 0x7f.1, 2130706433: legacy forms that resolvers turn into an address
        raise ValueError(f"{entry!r}: write an IPv4 address as four decimal numbers (a.b.c.d)")
    if not _NAME.match(name):
        raise ValueError(f"{entry!r} is not a host name, IP address or network (CIDR)")
    return name
