"""The outbound-request guard: which addresses are refused, allow-list syntax, and pinned connections.

The connection tests use real listeners on 127.0.0.1 (plain HTTP, and TLS with a certificate made
here) and an injected resolver, which stands for DNS: it counts its calls, and the names it answers
for (`hooks.test`) do not exist, so a request that reaches the listener was connected to the address
the guard checked, not to one the HTTP client looked up itself.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.config import load_config
from appliance.services.delivery import outbound
from appliance.services.delivery.outbound import OutboundError, OutboundRefused, Policy

LOOPBACK = Policy.parse(["127.0.0.1/32"])

# -- a listener that records every connection ------------------------------------------------------------


@dataclass
class Listener:
    """An HTTP (or, with `tls`, HTTPS) server on 127.0.0.1 recording connections, requests and SNI names."""

    tls: ssl.SSLContext | None = None
    body: bytes = b"internal secret"
    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def start(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                listener.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.send_header("content-length", str(len(listener.body)))
                self.end_headers()
                self.wfile.write(listener.body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = super().get_request()
                listener.connections += 1
                if listener.tls is not None:
                    sock = listener.tls.wrap_socket(sock, server_side=True)
                return sock, addr

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that refused our certificate

        if self.tls is not None:
            self.tls.sni_callback = lambda sock, name, ctx: self.server_names.append(name)  # type: ignore[assignment]
        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener().start()
    yield server
    server.stop()


class FakeDns:
    """A resolver answering from a table (a list per name: one answer per call, the last one repeated)."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {k.replace("_", "."): v for k, v in answers.items()}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        found = self.answers.get(host)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found[min(len(self.calls) - 1, len(found) - 1)]


# -- address classes (no traffic) ------------------------------------------------------------------------


INTERNAL = [
    "169.254.169.254",  # cloud metadata (link-local)
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:8.8.8.8",  # mapped, even of a public address
    "100.64.0.1",  # CGNAT
    "fc00::1",  # ULA
    "fd12:3456::1",
    "fe80::1",  # link-local
    "224.0.0.1",  # multicast
    "ff02::1",
    "0.0.0.0",
    "::",
    "255.255.255.255",
    "240.0.0.1",  # reserved
    "198.18.0.1",  # benchmarking
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not outbound.public_address(ip)
    assert not Policy().admits("x.example", ip, 443)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(OutboundRefused):
        outbound.check_url(f"http://{host}:8080/hook", Policy())


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_are_admitted(address: str) -> None:
    assert outbound.public_address(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert outbound.check_url(f"https://{host}/hook", Policy()).literal == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://0x7f000001/",  # hex
        "http://0177.0.0.1/",  # octal
        "http://2130706433/",  # one decimal number
        "http://127.1/",  # short form
        "http://0x08080808/",  # even a public one in hex: only dotted decimal is accepted
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]:8080/",  # a zone does not make a link-local address another host
        "http://localhost:8080/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "ftp://example.org/",
        "file:///etc/passwd",
        "gopher://example.org/",
        "example.org/hook",
        "http:///path",
        "https://example.org:22/",  # ports below 1024 other than 80 and 443
        "https://example.org:25/",
        "http://example.org:0/",
    ],
)
def test_urls_refused_when_stored(url: str) -> None:
    with pytest.raises(OutboundRefused):
        outbound.check_url(url, Policy())


def test_urls_admitted_when_stored() -> None:
    for url in (
        "https://example.org/hooks",
        "http://example.org:8080/x",
        "https://bücher.example/",
        "http://h.lan:80/",
    ):
        assert outbound.check_url(url, Policy()).url.scheme in ("http", "https")
    assert outbound.check_url("https://example.org/", Policy()).port == 443


def test_allow_list_syntax_and_meaning() -> None:
    policy = Policy.parse(
        ["127.0.0.1/32", "10.0.0.0/8:25", "[fd00::/8]:8443", "::1", "hooks.lan:8443", "*.corp.example"]
    )
    ip = ipaddress.ip_address
    assert policy.admits("any", ip("127.0.0.1"), 8080)
    assert not policy.admits("any", ip("127.0.0.2"), 8080)
    assert not policy.admits("any", ip("127.0.0.1"), 22)  # the entry gives no port: default ports only
    assert policy.admits("any", ip("10.1.2.3"), 25)  # that entry's one port...
    assert not policy.admits("any", ip("10.1.2.3"), 8080)  # ...and only that one
    assert policy.admits("any", ip("fd00::5"), 8443)
    assert policy.admits("any", ip("::1"), 443)
    assert not policy.admits("any", ip("::ffff:127.0.0.1"), 8080)  # mapped: an IPv6 address, not in 127.0.0.1/32
    assert policy.admits("hooks.lan", ip("192.168.1.9"), 8443)  # a host entry admits whatever the name resolves to
    assert not policy.admits("hooks.lan", ip("192.168.1.9"), 443)
    assert not policy.admits("other.lan", ip("192.168.1.9"), 8443)
    assert policy.admits("a.corp.example", ip("10.9.9.9"), 443)
    assert not policy.admits("corp.example.evil", ip("10.9.9.9"), 443)
    assert outbound.check_url("http://127.0.0.1:9000/x", policy).literal == ip("127.0.0.1")
    assert outbound.check_url("http://hooks.lan:8443/", policy).port == 8443
    assert outbound.check_url("http://10.0.0.7:25/", policy).port == 25
    for bad in ("10.0.0.0/33", "host:0", "host:99999", "[::1", "[::1]x", "a b", "0x7f000001", ":80", "*.", ""):
        with pytest.raises(ValueError, match="outbound_allow"):
            outbound.parse_entry(bad)


# -- real connections ----------------------------------------------------------------------------------------


def test_a_loopback_listener_is_not_reached_without_the_allow_list(listener: Listener) -> None:
    for url in (
        f"http://127.0.0.1:{listener.port}/x",
        f"http://localhost:{listener.port}/x",  # resolved by the system: loopback
        f"http://[::ffff:127.0.0.1]:{listener.port}/x",
    ):
        with pytest.raises(OutboundRefused) as caught:
            outbound.send("GET", url, policy=Policy(), timeout=2, max_body=100)
        assert caught.value.message == outbound.NOT_PERMITTED
    with pytest.raises(OutboundRefused) as hex_form:
        outbound.send("GET", f"http://0x7f000001:{listener.port}/x", policy=LOOPBACK, timeout=2, max_body=100)
    assert "dotted-decimal" in hex_form.value.message
    assert listener.connections == 0


def test_a_loopback_listener_is_reached_with_the_allow_list(listener: Listener) -> None:
    reply = outbound.send("GET", f"http://127.0.0.1:{listener.port}/x?y=1", policy=LOOPBACK, timeout=2, max_body=100)
    assert (reply.status_code, reply.body, reply.truncated) == (200, b"internal secret", False)
    assert listener.requests[0]["path"] == "/x?y=1"
    assert listener.requests[0]["host"] == f"127.0.0.1:{listener.port}"
    short = outbound.send("GET", f"http://127.0.0.1:{listener.port}/", policy=LOOPBACK, timeout=2, max_body=5)
    assert (short.body, short.truncated) == (b"inter", True)


def test_the_connection_goes_to_the_checked_address_and_dns_is_asked_once_per_attempt(listener: Listener) -> None:
    # First answer: loopback (admitted); the second: a refused address, as a rebinding attacker would.
    dns = FakeDns(hooks_test=[["127.0.0.1"], ["10.0.0.1"]])
    url = f"http://hooks.test:{listener.port}/hook"
    reply = outbound.send("POST", url, policy=LOOPBACK, timeout=2, max_body=100, content=b"{}", resolver=dns)
    assert reply.status_code == 200 and reply.address == "127.0.0.1"
    assert dns.calls == ["hooks.test"]  # once: the HTTP client did not look the name up again
    assert listener.requests[0]["host"] == f"hooks.test:{listener.port}"  # the Host header kept
    with pytest.raises(OutboundRefused):
        outbound.send("POST", url, policy=LOOPBACK, timeout=2, max_body=100, content=b"{}", resolver=dns)
    assert dns.calls == ["hooks.test", "hooks.test"]  # checked again on the next attempt
    assert listener.connections == 1


def test_a_name_with_any_refused_address_is_refused(listener: Listener) -> None:
    dns = FakeDns(hooks_test=[["127.0.0.1", "169.254.169.254"]])
    with pytest.raises(OutboundRefused):
        outbound.send(
            "GET", f"http://hooks.test:{listener.port}/", policy=LOOPBACK, timeout=2, max_body=9, resolver=dns
        )
    assert listener.connections == 0


def test_errors_do_not_tell_refused_from_unresolvable_or_closed(listener: Listener) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    messages = set()
    for url, policy in (
        (f"http://127.0.0.1:{port}/", LOOPBACK),  # admitted, closed port
        (f"http://127.0.0.1:{listener.port}/", Policy()),  # open port, not admitted
        ("http://nowhere.test:8080/", LOOPBACK),  # does not resolve
    ):
        with pytest.raises(OutboundError) as caught:
            outbound.send("GET", url, policy=policy, timeout=1, max_body=9, resolver=FakeDns(localhost=[["127.0.0.1"]]))
        messages.add(caught.value.message)
        assert str(port) not in caught.value.message and "refused" not in caught.value.message.lower()
    assert messages == {outbound.CONNECT_FAILED, outbound.NOT_PERMITTED}


def test_redirects_are_not_followed(listener: Listener) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("location", f"http://127.0.0.1:{listener.port}/secret")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        policy = Policy.parse([f"127.0.0.1:{server.server_address[1]}"])  # the redirector's port only
        reply = outbound.send(
            "GET", f"http://127.0.0.1:{server.server_address[1]}/", policy=policy, timeout=2, max_body=9
        )
        assert reply.status_code == 302
        assert listener.connections == 0
    finally:
        server.shutdown()
        server.server_close()


def test_the_excerpt_is_bounded_and_sanitised() -> None:
    assert outbound.sanitised_excerpt(b"a" * 5000) == "a" * 1024
    assert outbound.sanitised_excerpt(b"ok\x1b[31m\x00\r\nnext\t\xff") == "ok\ufffd[31m\ufffd\ufffd\nnext\t\ufffd"
    assert outbound.sanitised_excerpt(b"") is None


# -- TLS: the server name stays the host name -----------------------------------------------------------------


@dataclass
class Pki:
    """A CA and a server certificate for one name, made here."""

    client: ssl.SSLContext
    server: ssl.SSLContext


def make_pki(tmp_path: Path, name: str) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return Pki(client, server)


def test_https_keeps_the_server_name_and_verifies_the_certificate_for_it(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "hooks.test")
    server = Listener(tls=pki.server).start()
    try:
        url = f"https://hooks.test:{server.port}/hook"
        dns = FakeDns(hooks_test=[["127.0.0.1"]], other_test=[["127.0.0.1"]])
        reply = outbound.send("GET", url, policy=LOOPBACK, timeout=3, max_body=99, resolver=dns, verify=pki.client)
        assert reply.status_code == 200 and reply.body == b"internal secret"
        assert server.server_names == ["hooks.test"]  # SNI: the host name, not 127.0.0.1
        assert server.requests[0]["host"] == f"hooks.test:{server.port}"
        # The certificate is checked against the URL's host name: another name's URL fails.
        with pytest.raises(OutboundError) as caught:
            outbound.send(
                "GET",
                f"https://other.test:{server.port}/",
                policy=LOOPBACK,
                timeout=3,
                max_body=9,
                resolver=dns,
                verify=pki.client,
            )
        assert caught.value.message == outbound.CONNECT_FAILED
        assert "certificate" in caught.value.reason.lower() or "hostname" in caught.value.reason.lower()
        assert len(server.requests) == 1
    finally:
        server.stop()


# -- the setting ---------------------------------------------------------------------------------------------


def test_the_allow_list_setting_from_the_file_and_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert load_config({"data_dir": str(data)}, {}).outbound_allow == ()
    (data / "settings.toml").write_text('outbound_allow = ["10.0.0.0/8", "hooks.lan:8443"]\n')
    assert load_config({"data_dir": str(data)}, {}).outbound_allow == ("10.0.0.0/8", "hooks.lan:8443")
    env = {"SCORM_APPLIANCE_OUTBOUND_ALLOW": "127.0.0.1/32, [::1]:9000"}
    config = load_config({"data_dir": str(data)}, env)
    assert config.outbound_allow == ("127.0.0.1/32", "[::1]:9000")
    assert outbound.policy_for(config.outbound_allow).admits("x", ipaddress.ip_address("::1"), 9000)
    with pytest.raises(ValueError, match="'10.0.0.0/40'"):
        load_config({"data_dir": str(data)}, {"SCORM_APPLIANCE_OUTBOUND_ALLOW": "10.0.0.0/40"})
