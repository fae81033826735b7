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

from waitress.server import create_server

from edefter_helper.server.app import DEFAULT_MAX_SIZE, Verifier, create_app
from edefter_helper.server.checks import Limits
from edefter_helper.server.store import Store

log = logging.getLogger("edefter_helper.server")


def add_user(data_dir, name: str, password: str, vkns) -> None:
    """Create a user (or replace its password and VKN list). The password is only hashed."""
    Store(data_dir).add_user(name, password, list(vkns))


def list_users(data_dir) -> list[dict]:
    return Store(data_dir).list_users()


def _build(data_dir, host, port, max_size, threads, workers, limits, autoverify, loop_timeout=1.0):
    store = Store(data_dir)
    counts = store.recover()
    verifier = Verifier(store, limits or Limits(), workers=workers, autostart=autoverify)
    for receipt in store.pending():  # verifications a previous run did not finish
        verifier.submit(receipt)
    app = create_app(store, verifier, max_size=max_size)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        # waitress refuses a too large Content-Length before reading the body (413),
        # and spools bodies over 512 KiB to a temp file instead of memory
        max_request_body_size=max_size + 1,
        channel_timeout=300,
        # an accounting office backs up dozens of firms at once, each with its own login and
        # keep-alive connections: waitress' default of 100 would stall them for channel_timeout
        connection_limit=1000,
        clear_untrusted_proxy_headers=True,
        ident="edefter-yedekleme",
        asyncore_loop_timeout=loop_timeout,  # how long stop() may wait for the loop to notice
    )
    log.info("Kurtarma: %s", counts)
    server.flask_app = app  # waitress wraps the application; keep the Flask object reachable
    return store, verifier, server


def serve(data_dir, host: str = "127.0.0.1", port: int = 8765, max_size: int = DEFAULT_MAX_SIZE,
          threads: int = 8, workers: int = 2, limits: Limits | None = None, autoverify: bool = True,
          on_ready=None) -> None:
    """Run the server until interrupted (blocking)."""
    store, verifier, server = _build(data_dir, host, port, max_size, threads, workers, limits, autoverify)
    url = f"http://{_url_host(host)}:{server.effective_port}"
    if on_ready:
        on_ready(url)
    try:
        server.run()
    finally:
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
        self._server.close()
        wasyncore.close_all(self._server._map)  # open keep-alive connections would keep run() alive
        self._server.task_dispatcher.shutdown()
        self._thread.join(timeout=10)
        self.verifier.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_in_thread(data_dir, host: str = "127.0.0.1", port: int = 0, max_size: int = DEFAULT_MAX_SIZE,
                    threads: int = 4, workers: int = 2, limits: Limits | None = None,
                    autoverify: bool = True) -> ServerHandle:
    """A real waitress server in a background thread of this process; port 0 picks a free one."""
    store, verifier, server = _build(data_dir, host, port, max_size, threads, workers, limits, autoverify,
                                     loop_timeout=0.1)
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
    return ServerHandle(f"http://{_url_host(host)}:{server.effective_port}", store, verifier, server, thread,
                        stopping)


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
                        limits: Limits | None = None, timeout: float = 30) -> ProcessHandle:
    """Start `python -m edefter_helper.server` in a child process and wait until it listens."""
    config = {"data_dir": str(data_dir), "host": host, "port": port, "max_size": max_size,
              "threads": threads, "workers": workers, "autoverify": autoverify,
              "limits": (limits or Limits()).__dict__}
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
