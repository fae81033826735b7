"""A fault-injecting HTTP proxy on 127.0.0.1, between a client and the storage server (tests only).

Every client connection carries one request: the proxy reads it whole (head + Content-Length
body), and a seeded RNG picks what happens to it:

    pass            forwarded; the response is relayed whole
    reset_before    the connection is reset (RST) before anything reaches the server
    status_503      "503 Service Unavailable" with Retry-After: 0, nothing forwarded
    status_429      "429 Too Many Requests" with Retry-After: 0, nothing forwarded
    stall           nothing forwarded, no answer for `stall` seconds (longer than the client's
                    timeout), then closed
    truncated       forwarded (the server does the work); half of the response is sent, then closed
    reset_after     forwarded (the server does the work); the client gets a reset, no answer

`latency` slows every forwarded request (half before forwarding, half after the server answered).
Upstream, each request goes on a fresh connection with `Connection: close`, and the response
is read to the end. The client side is closed after every answer too (`Connection: close`).
`upstream` can be changed at any time (a restarted server on a new port); while the upstream
refuses connections the client gets a reset. Threads are bounded (`max_connections`), every
socket has a timeout, `stop()` ends everything within a few seconds.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FAULTS = ("reset_before", "status_503", "status_429", "stall", "truncated", "reset_after")
PASS = "pass"
_MAX_HEAD = 64 << 10


class _Closed(Exception):
    pass


@dataclass
class FaultLog:
    """What the proxy did, for test assertions and failure messages."""

    counts: Counter = field(default_factory=Counter)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (fault, method, path)
    upstream_errors: int = 0


def _rst(sock: socket.socket) -> None:
    """Close so that the peer sees a connection reset, not a clean end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _read_head(sock: socket.socket, buf: bytearray) -> tuple[bytes, bytearray]:
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_HEAD:
            raise _Closed("head too large")
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed("eof in head")
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    return bytes(buf[:end]), bytearray(buf[end:])


def _headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    start, result = lines[0], []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        result.append((name.strip(), value.strip()))
    return start, result


def _content_length(headers: list[tuple[str, str]]) -> int:
    for name, value in headers:
        if name.lower() == "transfer-encoding" and value.lower() != "identity":
            raise _Closed("chunked request bodies are not supported by this proxy")
    for name, value in headers:
        if name.lower() == "content-length":
            return int(value)
    return 0


def _rebuild(start: str, headers: list[tuple[str, str]], drop: tuple[str, ...], extra: list[tuple[str, str]]
             ) -> bytes:
    kept = [(n, v) for n, v in headers if n.lower() not in drop]
    lines = [start] + [f"{n}: {v}" for n, v in kept + extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class FaultProxy:
    def __init__(self, upstream: str, *, fault_rate: float = 0.3, faults=FAULTS, seed: int = 0,
                 stall: float = 5.0, io_timeout: float = 60.0, max_connections: int = 64,
                 only_methods: tuple[str, ...] | None = None, latency: float = 0.0,
                 max_consecutive: int | None = None):
        self.fault_rate = fault_rate
        self.latency = latency  # seconds added to every forwarded request, half before, half after
        self.faults = tuple(faults)
        self.stall = stall
        self.io_timeout = io_timeout
        self.only_methods = only_methods  # None = every request may be hit
        self.log = FaultLog()
        # at most this many faults in a row for one (method, path): a client with more retries than
        # that cannot run out of them by chance, whatever order the threads draw in
        self.max_consecutive = max_consecutive
        self._streak: dict[tuple[str, str], int] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._upstream = self._parse(upstream)
        self._stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._threads: set[threading.Thread] = set()
        self._clients: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.enabled = True  # False = plain relay
        self._accept_thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._accept_thread.start()

    # -- configuration ---------------------------------------------------------------------------

    @staticmethod
    def _parse(url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to loopback")
        return parts.hostname, parts.port or 80

    @property
    def upstream(self) -> tuple[str, int]:
        with self._lock:
            return self._upstream

    def set_upstream(self, url: str) -> None:
        addr = self._parse(url)
        with self._lock:
            self._upstream = addr

    def _choose(self, method: str, path: str = "") -> str:
        with self._lock:
            roll, pick = self._rng.random(), self._rng.choice(self.faults)  # always two draws: reproducible
            if not self.enabled or (self.only_methods is not None and method not in self.only_methods):
                return PASS
            fault = pick if roll < self.fault_rate else PASS
            if self.max_consecutive is not None:
                streak = self._streak.get((method, path), 0)
                if fault != PASS and streak >= self.max_consecutive:
                    fault = PASS
                self._streak[(method, path)] = streak + 1 if fault != PASS else 0
            return fault

    # -- serving ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if not self._slots.acquire(timeout=1.0):
                _rst(client)
                continue
            t = threading.Thread(target=self._serve, args=(client,), name="fault-proxy-conn", daemon=True)
            with self._lock:
                self._threads.add(t)
                self._clients.add(client)
            t.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(self.io_timeout)
            self._one_request(client)
        except (OSError, _Closed, ValueError):
            _rst(client)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
                self._clients.discard(client)
            try:
                client.close()
            except OSError:
                pass
            self._slots.release()

    def _one_request(self, client: socket.socket) -> None:
        head, rest = _read_head(client, bytearray())
        start, headers = _headers(head)
        method, path = (start.split(" ") + ["", ""])[:2]
        length = _content_length(headers)
        body = bytearray(rest)
        while len(body) < length:
            chunk = client.recv(min(1 << 20, length - len(body)))
            if not chunk:
                raise _Closed("eof in body")
            body += chunk
        fault = self._choose(method, path)
        with self._lock:
            self.log.counts[fault] += 1
            self.log.events.append((fault, method, path))
        if fault == "reset_before":
            _rst(client)
            return
        if fault in ("status_503", "status_429"):
            code, reason = (503, "Service Unavailable") if fault == "status_503" else (429, "Too Many Requests")
            text = b'{"error": "injected", "message": "Sunucu me\xc5\x9fgul (test)."}'
            client.sendall(f"HTTP/1.1 {code} {reason}\r\nRetry-After: 0\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode() + text)
            client.shutdown(socket.SHUT_WR)
            return
        if fault == "stall":
            self._stopping.wait(self.stall)
            return
        request = _rebuild(start, headers, ("connection", "keep-alive", "proxy-connection"),
                           [("Connection", "close")]) + bytes(body)
        try:
            if self.latency:
                self._stopping.wait(self.latency / 2)
            response = self._forward(request)
            if self.latency:
                self._stopping.wait(self.latency / 2)
        except OSError:
            with self._lock:
                self.log.upstream_errors += 1
            _rst(client)  # the server is down: the client sees a failed connection
            return
        if fault == "reset_after":
            _rst(client)
            return
        if fault == "truncated":
            client.sendall(response[: max(1, len(response) // 2)])
            client.shutdown(socket.SHUT_WR)
            return
        client.sendall(self._close_marked(response))
        client.shutdown(socket.SHUT_WR)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=self.io_timeout) as up:
            up.sendall(request)
            chunks = []
            deadline = time.monotonic() + self.io_timeout
            while time.monotonic() < deadline:
                chunk = up.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    @staticmethod
    def _close_marked(response: bytes) -> bytes:
        if b"\r\n\r\n" not in response:
            return response  # the server died mid-answer: relay what came
        end = response.index(b"\r\n\r\n") + 4
        start, headers = _headers(response[:end])
        return _rebuild(start, headers, ("connection", "keep-alive"), [("Connection", "close")]) + response[end:]

    # -- stopping --------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self._accept_thread.join(timeout)
        with self._lock:
            clients, threads = list(self._clients), list(self._threads)
        for c in clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
