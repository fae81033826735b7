"""Running the storage server: blocking (CLI), in a thread (demo, tests), in a child process
(crash/restart tests, memory benchmark)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edefter_helper.server.app import DEFAULT_MAX_SIZE, Verifier, create_app
from edefter_helper.server.auth import AuthLimits
from edefter_helper.server.checks import Limits
from edefter_helper.server.net import ConnectionLimits, make_server
from edefter_helper.server.store import Store

log = logging.getLogger("edefter_helper.server")


def add_user(data_dir, name: str, password: str, vkns) -> None:
    """Create a user (or replace its password and VKN list). The password is only hashed."""
    Store(data_dir).add_user(name, password, list(vkns))


def list_users(data_dir) -> list[dict]:
    return Store(data_dir).list_users()


def validate_port(port) -> int:
    """0 (any free port, for tests and the demo) or 1-65535; anything else is refused, never wrapped."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"Geçersiz port: {port!r} (1-65535 olmalı).")
    return port


def _build(data_dir, host, port, max_size, threads, workers, limits, autoverify, loop_timeout=1.0,
           auth_limits: AuthLimits | None = None, connections: ConnectionLimits | None = None,
           trusted_proxy: str | None = None):
    validate_port(port)
    limits = limits or Limits()
    store = Store(data_dir)
    counts = store.recover(limits)
    report = counts.pop("report")
    verifier = Verifier(store, limits, workers=workers, autostart=autoverify)
    for receipt in store.pending():  # verifications a previous run did not finish, re-indexed packages
        verifier.submit(receipt)
    app = create_app(store, verifier, max_size=max_size, auth_limits=auth_limits, threads=threads)
    try:
        server = make_server(app, host, port, threads=threads, max_request_body_size=max_size + 1,
                             limits=connections, trusted_proxy=trusted_proxy, loop_timeout=loop_timeout)
    except BaseException:
        verifier.shutdown()
        raise
    log.info("Kurtarma: %s", counts)
    if report.quarantined:
        log.warning("%d tanınmayan dosya karantinaya alındı (%s); ayrıntılar: %s",
                    len(report.quarantined), store.quarantine_dir, store.log_path)
    server.flask_app = app  # keep the Flask object reachable beside the WSGI wrapper
    server.recovery = counts
    return store, verifier, server


def serve(data_dir, host: str = "127.0.0.1", port: int = 8765, max_size: int = DEFAULT_MAX_SIZE,
          threads: int = 8, workers: int = 2, limits: Limits | None = None, autoverify: bool = True,
          on_ready=None, auth_limits: AuthLimits | None = None, connections: ConnectionLimits | None = None,
          trusted_proxy: str | None = None) -> None:
    """Run the server until interrupted (blocking). `on_ready(url)` is called once the socket is bound."""
    store, verifier, server = _build(data_dir, host, port, max_size, threads, workers, limits, autoverify,
                                     auth_limits=auth_limits, connections=connections,
                                     trusted_proxy=trusted_proxy)
    url = f"http://{_url_host(server.effective_host)}:{server.effective_port}"
    if on_ready:
        on_ready(url)
    try:
        server.run()
    finally:
        server.close()
        verifier.shutdown()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass
class ServerHandle:
    url: str
    store: Store
    verifier: Verifier
    _server: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _stopping: threading.Event = field(repr=False, default_factory=threading.Event)

    @property
    def app(self):
        """The Flask application (routes, config)."""
        return self._server.flask_app

    def wait_idle(self, timeout: float = 30) -> bool:
        """Wait until background verifications are done (tests)."""
        return self.verifier.wait_idle(timeout)

    def stop(self) -> None:
        from waitress import wasyncore

        self._stopping.set()
        self.verifier.stop_waiting()  # a held batch query answers now rather than delay the stop
        # tasks in flight finish first: closing the map first closed waitress' trigger under them
        # (EBADF tracebacks at shutdown)
        self._server.task_dispatcher.shutdown()
        self._server.close()
        wasyncore.close_all(self._server._map)  # open keep-alive connections would keep run() alive
        self._thread.join(timeout=10)
        self.verifier.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_in_thread(data_dir, host: str = "127.0.0.1", port: int = 0, max_size: int = DEFAULT_MAX_SIZE,
                    threads: int = 4, workers: int = 2, limits: Limits | None = None,
                    autoverify: bool = True, auth_limits: AuthLimits | None = None,
                    connections: ConnectionLimits | None = None, trusted_proxy: str | None = None) -> ServerHandle:
    """A real waitress server in a background thread of this process; port 0 picks a free one."""
    store, verifier, server = _build(data_dir, host, port, max_size, threads, workers, limits, autoverify,
                                     loop_timeout=0.1, auth_limits=auth_limits, connections=connections,
                                     trusted_proxy=trusted_proxy)
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            # closing sockets under a running select() from stop() ends the loop this way
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, name="edefter-serve", daemon=True)
    thread.start()
    return ServerHandle(f"http://{_url_host(server.effective_host)}:{server.effective_port}", store, verifier,
                        server, thread, stopping)


@dataclass
class ProcessHandle:
    url: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def peak_rss(self) -> int | None:
        """Peak resident memory of the server process in bytes (Linux /proc), else None."""
        return peak_rss_of(self.process.pid)

    def kill(self) -> None:
        """Hard stop, as a crash or power cut would."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.stop()


def peak_rss_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def start_in_subprocess(data_dir, host: str = "127.0.0.1", port: int = 0, max_size: int = DEFAULT_MAX_SIZE,
                        threads: int = 4, workers: int = 2, autoverify: bool = True,
                        limits: Limits | None = None, timeout: float = 30,
                        auth_limits: AuthLimits | None = None,
                        connections: ConnectionLimits | None = None, log_level: int = logging.INFO) -> ProcessHandle:
    """Start `python -m edefter_helper.server` in a child process and wait until it listens.
    `log_level`: of its log on this process's stderr (the demo: warnings only)."""
    config = {"data_dir": str(data_dir), "host": host, "port": port, "max_size": max_size,
              "threads": threads, "workers": workers, "autoverify": autoverify, "log_level": log_level,
              "limits": (limits or Limits()).__dict__,
              "auth_limits": (auth_limits or AuthLimits()).__dict__,
              "connections": (connections or ConnectionLimits()).__dict__}
    process = subprocess.Popen(
        [sys.executable, "-m", "edefter_helper.server", "--json-config", json.dumps(config)],
        stdout=subprocess.PIPE, stderr=None, text=True, encoding="utf-8",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("LISTENING "):
            return ProcessHandle(line.split(" ", 1)[1].strip(), process)
    process.kill()
    raise RuntimeError("Depolama sunucusu başlatılamadı.")
