"""Outbound HTTP requests: the one guard between a tenant-chosen URL and the appliance's network.

Webhook deliveries and JWKS fetches (and any later outbound call) go through `send`. Without it, a
tenant could point a webhook at `http://127.0.0.1:PORT/` or `http://169.254.169.254/` and read the
internal service's answer in the delivery log, or use connection errors as a port scanner.

Every request is checked twice: `check_url` when the URL is stored (a literal internal address, a bad
scheme or port is refused at once), and `send` on every attempt, because DNS may change between the
two. `send` resolves the host itself, refuses it unless every address it resolves to is admitted, and
then connects to the checked address: the URL's host is replaced by that address, while the `Host`
header and the TLS server name (SNI, and certificate verification) stay the original host name. The
HTTP client never resolves the name again, so a second DNS answer (rebinding) cannot redirect the
connection. Redirects are never followed, and proxies from the environment are not used.

Admitted are public unicast addresses (`ipaddress`'s `is_global`, minus multicast and the IPv6 ranges
that embed IPv4 addresses) on ports 80, 443 and 1024-65535. An administrator's allow-list
(`outbound_allow`) admits more: CIDRs or addresses (`10.0.0.0/8`, `[fd00::/8]:8443`) and host names
(`hooks.lan`, `*.corp.example`), each optionally limited to one port, which it then also admits.

Errors are deliberately generic (`OutboundError.message`): a refused address, a name that does not
resolve, a refused connection, an unreachable network and a connect timeout read the same, so the
error text a tenant sees tells nothing about the appliance's network.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = (80, 443)
MIN_FREE_PORT = 1024  # ports from here up are open to any admitted address
MAX_CONNECT_ADDRESSES = 3  # a name with many addresses: try at most this many of them
EXCERPT_BYTES = 1024

# Global unicast by `is_global`, yet a way to reach another network's addresses: refused unless allowed.
_EMBEDDING_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: the last 32 bits are an IPv4 address
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2002::/16"),  # 6to4: bits 16-48 are an IPv4 address
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated)
)
_LOCALHOST_NAMES = re.compile(r"(^|\.)localhost$")  # RFC 6761: always loopback, never asked of DNS

# The messages a tenant may see: one per phase, never the underlying reason.
NOT_PERMITTED = "the endpoint's host does not resolve to a permitted address"
CONNECT_FAILED = "could not connect to the endpoint"
BAD_ANSWER = "the endpoint's answer was not valid HTTP"


class OutboundError(Exception):
    """A request that was refused or failed; `message` is safe to show the tenant, `reason` is for logs."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or message


class OutboundRefused(OutboundError):
    """The target is not admitted: nothing was sent, no connection was made."""


class OutboundConnectFailed(OutboundError):
    """No connection (refused, unreachable, timed out, TLS failed): the generic `CONNECT_FAILED`."""


class OutboundTimeout(OutboundError):
    """Connected, but no (complete) answer came within the timeout."""


# -- the policy ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a network or a host name (`*.suffix` for its subdomains), maybe one port."""

    network: IPNetwork | None = None
    host: str | None = None
    port: int | None = None

    def matches(self, host: str, address: IPAddress | None) -> bool:
        """Whether this entry covers the URL's `host` or the `address` it resolved to."""
        if self.host is not None:
            if self.host.startswith("*."):
                return host.endswith(self.host[1:])
            return host == self.host
        return address is not None and self.network is not None and address in self.network

    def admits_port(self, port: int) -> bool:
        """An entry with a port admits that port only; one without, the default ports."""
        return port == self.port if self.port is not None else default_port(port)


def default_port(port: int) -> bool:
    """Ports open to every admitted target: 80, 443 and the unprivileged ones."""
    return port in DEFAULT_PORTS or MIN_FREE_PORT <= port <= 65535


def parse_entry(text: str) -> AllowEntry:
    """Parse one `outbound_allow` entry; ValueError says what is wrong with it."""
    raw = text.strip()
    port: int | None = None
    body = raw
    if raw.startswith("["):  # [v6] or [v6/len], optionally :port
        close = raw.find("]")
        if close < 0:
            raise ValueError(f"outbound_allow entry {text!r}: unclosed '['")
        body, rest = raw[1:close], raw[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"outbound_allow entry {text!r}: expected ':port' after ']'")
            port = _parse_port(text, rest[1:])
    elif raw.count(":") == 1:  # v4, v4/len or a host name, with a port
        body, port_text = raw.split(":")
        port = _parse_port(text, port_text)
    if not body:
        raise ValueError(f"outbound_allow entry {text!r} is empty")
    try:
        return AllowEntry(network=ipaddress.ip_network(body, strict=False), port=port)
    except ValueError:
        pass
    host = body.lower().rstrip(".")
    name = host.removeprefix("*.")
    if not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", name) or ".." in name or _numeric_ipv4(name):
        raise ValueError(f"outbound_allow entry {text!r} is neither an address, a CIDR nor a host name")
    return AllowEntry(host=host, port=port)


def _parse_port(text: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"outbound_allow entry {text!r}: the port must be 1-65535")
    return int(value)


def public_address(address: IPAddress) -> bool:
    """A global unicast address that does not stand for another network's address."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address.teredo is not None:
            return False
        return not any(address in net for net in _EMBEDDING_NETWORKS)
    return True


@dataclass(frozen=True)
class Policy:
    """What outbound requests may reach: public addresses, and whatever the allow-list admits."""

    allow: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Policy:
        """A policy from the `outbound_allow` setting's entries."""
        return cls(tuple(parse_entry(e) for e in entries if e.strip()))

    def admits(self, host: str, address: IPAddress, port: int) -> bool:
        """Whether a connection to `address`:`port`, for the URL host `host`, is permitted."""
        for entry in self.allow:
            if entry.matches(host, address) and entry.admits_port(port):
                return True
        return public_address(address) and default_port(port)

    def admits_port_somewhere(self, host: str, port: int) -> bool:
        """Whether `port` could be admitted for `host` (before its addresses are known)."""
        return default_port(port) or any(
            e.port == port and (e.host is None or e.matches(host, None)) for e in self.allow
        )


@functools.lru_cache(maxsize=16)
def policy_for(entries: tuple[str, ...]) -> Policy:
    """The policy of a configured allow-list, parsed once per distinct setting."""
    return Policy.parse(entries)


# -- targets -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A parsed outbound URL: where it goes, before any DNS."""

    url: httpx.URL
    host: str  # lower case, without brackets or a trailing dot; IDNA-encoded
    port: int  # the effective port (the scheme's default when the URL has none)
    literal: IPAddress | None  # the host, when it is an IP address


def _numeric_ipv4(host: str) -> bool:
    """A host that C's `inet_aton` reads as an IPv4 address (`0x7f000001`, `0177.0.0.1`, `127.1`)."""
    if not re.fullmatch(r"[0-9a-fx.]+", host):
        return False
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def parse_target(url: str) -> Target:
    """Parse an http(s) URL; OutboundRefused (with the specific reason) when it cannot be a target."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused("the URL is not valid", str(exc)) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise OutboundRefused("the URL must be an absolute http or https URL with a host")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise OutboundRefused(f"port {port} is not a valid port")
    literal: IPAddress | None = None
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (`%25eth0`) names no other host
    except ValueError:
        if ":" in host:
            raise OutboundRefused("the URL's host is not a valid IPv6 address") from None
        if _numeric_ipv4(host):
            raise OutboundRefused("write an IPv4 address in dotted-decimal form (such as 192.0.2.10)") from None
    return Target(parsed, host, port, literal)


def check_url(url: str, policy: Policy) -> Target:
    """The checks that need no DNS, for when a URL is stored: scheme, port, literal and `localhost` hosts.

    Raises OutboundRefused with a specific message (the tenant typed the URL; nothing is revealed).
    """
    target = parse_target(url)
    if not policy.admits_port_somewhere(target.host, target.port):
        raise OutboundRefused(f"port {target.port} is not allowed (80, 443 and {MIN_FREE_PORT}-65535 are)")
    standing_for = target.literal
    if standing_for is None and _LOCALHOST_NAMES.search(target.host):
        standing_for = ipaddress.ip_address("127.0.0.1")
    if standing_for is not None and not policy.admits(target.host, standing_for, target.port):
        raise OutboundRefused(
            "the URL's host is a loopback, private, link-local or otherwise internal address; "
            "an administrator can allow it with the outbound_allow setting"
        )
    return target


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host` from the operating system's resolver, in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve(target: Target, policy: Policy, resolver: Resolver = system_resolver) -> list[IPAddress]:
    """The checked addresses to connect to: every address the host resolves to must be admitted.

    One refused address refuses the whole name: a name that answers with both a public and an
    internal address is not one to trust with either.
    """
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(target.host, target.port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise OutboundRefused(NOT_PERMITTED, f"{target.host} did not resolve: {exc}") from exc
    if not addresses:
        raise OutboundRefused(NOT_PERMITTED, f"{target.host} resolved to no address")
    refused = [a for a in addresses if not policy.admits(target.host, a, target.port)]
    if refused:
        raise OutboundRefused(NOT_PERMITTED, f"{target.host}:{target.port} resolves to refused {refused[0]}")
    return addresses


# -- sending ---------------------------------------------------------------------------------------------------


@functools.cache
def default_tls() -> ssl.SSLContext:
    """httpx's default TLS settings (certificates verified), built once: loading the CA bundle is slow."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Reply:
    """An answer: its status, and at most `max_body` bytes of its body (`truncated` if there was more)."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    address: str = field(default="")  # the address connected to

    def excerpt(self) -> str | None:
        """The body as text for a log: at most `EXCERPT_BYTES`, control characters replaced."""
        return sanitised_excerpt(self.body)


def sanitised_excerpt(body: bytes, limit: int = EXCERPT_BYTES) -> str | None:
    """At most `limit` bytes of a body as text, with control characters (but newline and tab) as U+FFFD."""
    text = body[:limit].decode("utf-8", "replace")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", "\ufffd", text)
    return text or None


def send(
    method: str,
    url: str,
    *,
    policy: Policy,
    timeout: float,
    max_body: int,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | None = None,
) -> Reply:
    """One checked request: resolve once, refuse unless admitted, connect to the checked address only.

    The answer's body is read up to `max_body` bytes, without content decoding (`accept-encoding:
    identity` is asked for), so a small answer cannot expand in memory. Raises OutboundError.
    """
    target = parse_target(url)
    if not policy.admits_port_somewhere(target.host, target.port):
        raise OutboundRefused(NOT_PERMITTED, f"port {target.port} is not allowed")
    addresses = resolve(target, policy, resolver)
    last: OutboundConnectFailed | None = None
    for address in addresses[:MAX_CONNECT_ADDRESSES]:
        try:
            return _send_to(method, target, address, timeout, max_body, headers, content, verify or default_tls())
        except OutboundConnectFailed as exc:  # another address of the name may work
            last = exc
    assert last is not None
    raise last


def _send_to(
    method: str,
    target: Target,
    address: IPAddress,
    timeout: float,
    max_body: int,
    headers: dict[str, str] | None,
    content: bytes | None,
    tls: ssl.SSLContext,
) -> Reply:
    """The request to one checked address, with the original host name as `Host` and TLS server name."""
    pinned = target.url.copy_with(host=str(address))
    sent = {"accept-encoding": "identity", **(headers or {}), "host": target.url.netloc.decode("ascii")}
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" and target.literal is None else {}
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, verify=tls, trust_env=False) as client,
            client.stream(method, pinned, headers=sent, content=content, extensions=extensions) as response,
        ):
            body = b""
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > max_body:
                    break
            return Reply(response.status_code, response.headers, body[:max_body], len(body) > max_body, str(address))
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise OutboundConnectFailed(CONNECT_FAILED, f"{address}: {type(exc).__name__}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise OutboundTimeout(f"no answer within {timeout:g} s", f"{address}: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise OutboundError(BAD_ANSWER, f"{address}: {type(exc).__name__}: {exc}") from exc
