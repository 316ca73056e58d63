"""The content origin: where the player and course content are served when the operator sets one.

`content_origin` (docs/configuration.md, docs/security.md "Course content and the player") is either
one origin, `http://127.0.0.2:8080` or `https://content.example.org`, shared by every tenant's courses
but apart from the API; or a wildcard, `https://*.content.example.org`, where the operator has a
wildcard DNS name (and certificate): then each tenant's player and courses get their own origin,
`https://<label>.content.example.org`, with the label derived from the tenant id (`tenant_label`).

Per tenant rather than per session: the tenant is the party whose code a course is (it uploaded every
course it runs, and it can already read all of its sessions through the API), so the tenant is the
boundary the browser must keep; a label per session would also give every launch a new origin, with its
own DNS lookup, connection and browser storage that no later launch of the same learner ever finds.

This module is pure (parsing, labels, URLs, classifying a `Host`); the host routing that uses it is
`appliance.faces.api.hosts`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from appliance.ids import base32

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://(?P<wild>\*\.)?(?P<host>\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:(?P<port>\d{1,5}))?$"
)
_TENANT_ID = re.compile(r"^ten_[a-z2-7]{24}$")  # appliance.ids.new_id("ten")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ContentOrigin:
    """A parsed `content_origin` setting.

    `host` is the content host name (an IP literal keeps its brackets), or for a wildcard the name
    below the `*.`; `port` is None when the URL names none (the scheme's default).
    """

    scheme: str
    host: str
    port: int | None
    wildcard: bool

    @property
    def netloc(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def url_for(self, tenant_id: str) -> str:
        """The origin (no trailing `/`) that serves `tenant_id`'s player and courses."""
        if not self.wildcard:
            return f"{self.scheme}://{self.netloc}"
        return f"{self.scheme}://{tenant_label(tenant_id)}.{self.netloc}"

    def classify(self, host: str) -> tuple[bool, str | None]:
        """(whether `host` — a request's Host name, lower case, port removed — is a content host, its label).

        With a wildcard every name under the base (and the base itself) is a content host, so the API
        is unreachable on all of them; the label is the one DNS label before the base, else None (no
        tenant is served there). Without one, only the configured name is, with no label.
        """
        if not self.wildcard:
            return host == self.host, None
        if host == self.host:
            return True, None
        if not host.endswith("." + self.host):
            return False, None
        label = host[: -len(self.host) - 1]
        return True, (label if "." not in label else None)


@lru_cache(maxsize=16)
def parse_content_origin(raw: str) -> ContentOrigin:
    """`content_origin` as the settings give it, or ValueError naming what is wrong (stops the start).

    Cached: launch URLs are built from the setting's text on every session answer."""
    text = raw.strip().lower().rstrip("/")
    match = _ORIGIN.fullmatch(text)
    if match is None:
        raise ValueError(
            f"content_origin: {raw!r} is not an origin like http://127.0.0.2:8080 or https://*.content.example.org"
            " (scheme, host name and optional port; no path)"
        )
    host, wildcard = match["host"], match["wild"] is not None
    if not _is_ip(host) and (_DNS_NAME.fullmatch(host) is None or len(host) > 253):
        raise ValueError(f"content_origin: {host!r} is not a valid host name")
    if wildcard and _is_ip(host):
        raise ValueError("content_origin: a wildcard needs a DNS name (https://*.content.example.org), not an address")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"content_origin: port {port} is out of range")
    if port == DEFAULT_PORTS[match["scheme"]]:
        port = None  # the browser's origin has no port then, and neither do the launch URLs
    return ContentOrigin(match["scheme"], host, port, wildcard)


def normalise(raw: str) -> str:
    """The setting's canonical text (lower case, no trailing `/`, no default port), after checking it."""
    parsed = parse_content_origin(raw)
    return f"{parsed.scheme}://{'*.' if parsed.wildcard else ''}{parsed.netloc}"


@lru_cache(maxsize=1024)
def tenant_label(tenant_id: str) -> str:
    """The DNS label of a tenant's content origin: `ten-<its 24 base32 characters>` for the appliance's
    ids (lower case letters and digits already, so only the `_` changes), a hash of anything else
    (`h-…`, never equal to the first form). Stable, so a tenant keeps its origin and its learners'
    browser storage there across restarts."""
    if _TENANT_ID.fullmatch(tenant_id):
        return tenant_id.replace("_", "-")
    return "h-" + base32(hashlib.sha256(tenant_id.encode()).digest()[:15])


def host_name(host_header: str) -> str:
    """A `Host` header's name: lower case, without the port (an IPv6 literal keeps its brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name = host.rsplit(":", 1)[0] if ":" in host else host
    return name.rstrip(".")  # `example.org.` is the same name


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
