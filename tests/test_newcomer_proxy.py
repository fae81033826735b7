"""The http target goes through the office's proxy as a browser does (issue 14): HTTPS_PROXY is used
(a CONNECT tunnel; TLS is still verified end to end), NO_PROXY is honoured, and this computer's own
server is always reached directly. Real sockets: a tiny CONNECT/forward proxy that counts what it
was asked, a TLS server under a name only the proxy can resolve, and a plain loopback server."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets.base import MISSING, TargetError
from edefter_helper.targets.http import HttpTarget

NAME = "yedek.ofis.test"  # .test never resolves: only the proxy knows where it is
KEY = MonthKey("7420300220", "0000", "2024-01")


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps({"state": "missing"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "sunucu.pem", tmp_path / "sunucu.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Proxy:
    """CONNECT host:port → a tunnel to 127.0.0.1:<where[host]>; counts every request line."""

    def __init__(self, where: dict[str, int]):
        self.where = where
        self.seen: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.seen.append(line)
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            if host not in self.where:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection(("127.0.0.1", self.where[host])) as up:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
                if rest:
                    up.sendall(rest)
                done = threading.Event()

                def pipe(a, b):
                    try:
                        while data := a.recv(65536):
                            b.sendall(data)
                    except OSError:
                        pass
                    finally:
                        done.set()

                threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
                pipe(conn, up)
                done.wait(5)

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture
def tls_server(tmp_path):
    cert, key = _certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


@pytest.fixture
def plain_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    _serve(server)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def clean_proxy_env(monkeypatch):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_https_proxy_is_used_and_tls_is_verified_through_it(tls_server, clean_proxy_env):
    port, cert = tls_server
    proxy = Proxy({NAME: port})
    try:
        clean_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        with HttpTarget(f"https://{NAME}:{port}", "muhasebe", "şifre", ca_file=cert) as target:
            assert target.query(KEY).state == MISSING
            assert target.query(KEY).state == MISSING
        assert proxy.seen and all(line.startswith(f"CONNECT {NAME}:{port} HTTP/") for line in proxy.seen), proxy.seen
        # the tunnel does not weaken TLS: a certificate the client does not trust is still refused
        with HttpTarget(f"https://{NAME}:{port}", "muhasebe", "şifre") as target:
            with pytest.raises(TargetError, match="sertifikası doğrulanamadı"):
                target.query(KEY)
    finally:
        proxy.close()


def test_lower_case_and_no_proxy_are_honoured(tls_server, clean_proxy_env):
    port, cert = tls_server
    proxy = Proxy({NAME: port})
    try:
        clean_proxy_env.setenv("https_proxy", proxy.url)
        clean_proxy_env.setenv("NO_PROXY", ".ofis.test")
        with HttpTarget(f"https://{NAME}:{port}", "muhasebe", "şifre", ca_file=cert) as target:
            with pytest.raises(TargetError):  # asked directly: the name does not resolve
                target.query(KEY)
        assert proxy.seen == []
    finally:
        proxy.close()


def test_this_computers_server_is_reached_directly(plain_server, clean_proxy_env):
    proxy = Proxy({})
    try:
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        clean_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        clean_proxy_env.setenv("ALL_PROXY", proxy.url)
        for host in ("127.0.0.1", "localhost"):
            with HttpTarget(f"http://{host}:{plain_server}", "muhasebe", "şifre") as target:
                assert target.query(KEY).state == MISSING
        assert proxy.seen == []
    finally:
        proxy.close()


def test_no_proxy_setting_means_no_proxy(tls_server, clean_proxy_env):
    port, cert = tls_server
    with HttpTarget(f"https://{NAME}:{port}", "muhasebe", "şifre", ca_file=cert) as target:
        assert target._session.proxies == {}
