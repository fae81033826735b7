"""The HTTP front: waitress, set up to keep serving under many idle or slow connections.

waitress already does the important part: connections are read by one asynchronous loop and a
request reaches a worker thread only once its headers (and body) are complete, so idle sockets
and slow-loris clients hold no thread. What it needs around that:

- `asyncore_use_poll=True`: select() cannot watch a descriptor numbered 1024 or above ("filedescriptor
  out of range in select()"); poll() has no such limit. (Windows has no poll(): there the connection
  limit stays under select's 512.)
- the process's open-file limit raised towards what the connection limit needs, and the connection
  limit lowered to what the file limit allows, so accept() never fails with EMFILE;
- timeouts by state: headers must arrive within `header_timeout`, an idle keep-alive connection
  is closed after `idle_timeout`, a body or download that stops moving after `stall_timeout`
  (waitress' channel_timeout);
- bounded connections per client address and in all, enforced by closing the *idlest* connections
  (never one with a request in progress) instead of refusing new ones: waitress' own
  connection_limit stops accepting altogether, which lets a thousand idle sockets lock everyone
  out. Connections that never completed a request go first, then idle keep-alive ones, then
  uploads; within each, the longest quiet goes first.
"""

from __future__ import annotations

import heapq
import logging
import socket
import sys
import time
from dataclasses import dataclass

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger("edefter_helper.server")

HAVE_POLL = hasattr(__import__("select"), "poll")
_SELECT_LIMIT = 500  # Windows: CPython's select() takes at most 512 sockets


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 4096  # open client connections in all (lowered to fit the file limit)
    per_address: int = 256  # from one client address, before its idlest connections are closed
    header_timeout: float = 30.0  # a request's headers must be complete within this
    idle_timeout: float = 60.0  # an idle keep-alive connection is closed after this
    stall_timeout: float = 300.0  # a body or download that does not move for this long is dropped
    cleanup_interval: float = 2.0  # how often the timeouts are checked


def raise_file_limit(wanted: int) -> int | None:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (never above the hard limit).

    Returns the soft limit now in force, or None where there is no such limit (Windows).
    """
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    for value in (target, 10240):  # macOS refuses more than OPEN_MAX even under an unlimited hard limit
        if soft >= value:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
            soft = value
            break
        except (ValueError, OSError):
            continue
    return soft


def effective_connection_limit(limits: ConnectionLimits, threads: int) -> int:
    """The connection limit this process can honour, after raising the file limit for it."""
    reserve = 128 + 4 * threads  # databases, spooled request bodies, logs, the loop's own sockets
    wanted = limits.max_connections
    if not HAVE_POLL:
        return max(16, min(wanted, _SELECT_LIMIT - 16))
    soft = raise_file_limit(wanted + reserve)
    if soft is None:
        return wanted
    return max(16, min(wanted, soft - reserve))


def _score(channel) -> tuple[int, float]:
    """Eviction order: lower goes first."""
    req = channel.request
    if (req is not None and req.headers_finished) or channel.total_outbufs_len:
        tier = 2  # a body on its way in, or an answer on its way out
    elif channel.served:
        tier = 1  # a client we have answered, idle between requests
    else:
        tier = 0  # nothing asked yet, or headers trickling in
    return tier, channel.last_activity


class _Registry:
    """Open connections by client address, shared by every listening socket."""

    def __init__(self, limits: ConnectionLimits, max_connections: int):
        self.limits = limits
        self.max_connections = max_connections
        self.by_address: dict[str, set] = {}
        self.count = 0
        self.evicted = 0
        self._noticed = 0.0

    def track(self, channel) -> None:
        self.by_address.setdefault(channel.peer, set()).add(channel)
        self.count += 1

    def untrack(self, channel) -> None:
        group = self.by_address.get(channel.peer)
        if group is not None and channel in group:
            group.discard(channel)
            self.count -= 1
            if not group:
                del self.by_address[channel.peer]

    def make_room(self, newcomer) -> None:
        """After accepting `newcomer`: close the idlest connections over the per-address and total limits."""
        group = self.by_address.get(newcomer.peer, ())
        over = len(group) - self.limits.per_address
        if over > 0:
            self._evict(group, over, newcomer, batch=max(1, self.limits.per_address // 16))
        over = self.count - self.max_connections
        if over > 0:
            every = (c for g in list(self.by_address.values()) for c in g)
            self._evict(every, over, newcomer, batch=max(1, self.max_connections // 16))

    def _evict(self, channels, need: int, newcomer, batch: int) -> None:
        # a batch at a time: one scan pays for many accepts under a flood
        candidates = (c for c in list(channels) if c is not newcomer and not c.requests and not c.will_close)
        victims = heapq.nsmallest(max(need, batch if need else 0), candidates, key=_score)
        for victim in victims:
            victim.close_soon()
        self.evicted += len(victims)
        now = time.monotonic()
        if victims and now - self._noticed > 60:
            self._noticed = now
            log.warning("Bağlantı sınırı: %d açık bağlantı; en uzun süredir boşta olan %d bağlantı kapatıldı "
                        "(toplam %d).", self.count, len(victims), self.evicted)


class _Channel(HTTPChannel):
    served = False  # a request of this connection reached the application
    head_since = 0.0  # when the request now being received began

    def __init__(self, server, sock, addr, adj, map=None):
        self.peer = addr[0] if isinstance(addr, tuple) and addr else str(addr)
        self._head = None
        self._closing = False
        super().__init__(server, sock, addr, adj, map)
        server.registry.track(self)
        server.registry.make_room(self)

    def received(self, data):
        result = super().received(data)
        req = self.request
        if req is None:
            self._head = None
        elif req is not self._head:
            self._head, self.head_since = req, time.time()
        return result

    def service(self):
        self.served = True
        return super().service()

    def close_soon(self) -> None:
        """Close from the loop at its next turn; never now, so no descriptor is reused mid-turn."""
        if self._closing:
            return
        self._closing = True
        self.will_close = True
        self.server.registry.untrack(self)
        try:  # wakes the loop even for a client that stopped reading (no POLLOUT would come)
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def del_channel(self, map=None):
        self.server.registry.untrack(self)
        super().del_channel(map)


class _Listener(TcpWSGIServer):
    channel_class = _Channel
    registry: _Registry = None  # set by make_server before the loop runs

    def maintenance(self, now):
        super().maintenance(now)  # waitress: stall_timeout (channel_timeout) for quiet channels
        limits = self.registry.limits
        for channel in list(self.active_channels.values()):
            if channel.requests or channel.will_close:
                continue
            req = channel.request
            if channel.total_outbufs_len:
                late = False  # an answer (a download) still going out: waitress' stall timeout applies
            elif req is not None and not req.headers_finished:
                late = now - channel.head_since > limits.header_timeout
            elif req is None:
                late = now - channel.last_activity > (limits.idle_timeout if channel.served else limits.header_timeout)
            else:
                late = False  # a body in progress: waitress' stall timeout applies
            if late:
                channel.close_soon()


class Server:
    """One or more listening sockets sharing a loop, a worker pool and the connection registry."""

    def __init__(self, listeners: list[_Listener], adj: Adjustments, dispatcher, socket_map: dict,
                 registry: _Registry):
        self.listeners = listeners
        self.adj = adj
        self.task_dispatcher = dispatcher
        self._map = socket_map
        self.registry = registry
        self.effective_host = listeners[0].effective_host
        self.effective_port = listeners[0].effective_port

    @property
    def max_connections(self) -> int:
        return self.registry.max_connections

    def run(self) -> None:
        try:
            wasyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self._map,
                           use_poll=self.adj.asyncore_use_poll)
        except (SystemExit, KeyboardInterrupt):
            self.task_dispatcher.shutdown()
            raise

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()


def make_server(app, host: str, port: int, threads: int = 8, max_request_body_size: int = 1 << 30,
                limits: ConnectionLimits | None = None, trusted_proxy: str | None = None,
                loop_timeout: float = 1.0) -> Server:
    """Bind (the caller may announce the address once this returns) and return the server, not yet running."""
    limits = limits or ConnectionLimits()
    max_connections = effective_connection_limit(limits, threads)
    settings = dict(
        host=host,
        port=port,
        threads=threads,
        # waitress refuses a too large Content-Length before reading the body (413),
        # and spools bodies over 512 KiB to a temp file instead of memory
        max_request_body_size=max_request_body_size,
        channel_timeout=limits.stall_timeout,
        cleanup_interval=limits.cleanup_interval,
        # our registry closes idle connections to stay under max_connections; waitress' own limit
        # (which stops accepting) is the last resort when every connection has a request running
        connection_limit=max_connections + 64,
        asyncore_use_poll=True,
        asyncore_loop_timeout=loop_timeout,
        clear_untrusted_proxy_headers=True,
        log_socket_errors=False,  # a client resetting its connection is not the server's error
        max_request_header_size=64 * 1024,  # ours are small; a slow client cannot park 256 KiB each
        ident="edefter-yedekleme",
    )
    if trusted_proxy:
        # behind a reverse proxy every client would share the proxy's address; trust its
        # X-Forwarded-For so throttling sees the real client
        settings.update(trusted_proxy=trusted_proxy, trusted_proxy_count=1,
                        trusted_proxy_headers={"x-forwarded-for"})
    adj = Adjustments(**settings)
    socket_map: dict = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    registry = _Registry(limits, max_connections)
    listeners: list[_Listener] = []
    try:
        for sockinfo in adj.listen:
            listener = _Listener(app, socket_map, True, None, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
            listener.registry = registry
            listeners.append(listener)
            if port == 0:  # one free port: do not bind a second address on another random one
                break
    except BaseException:
        for listener in listeners:
            listener.close()
        dispatcher.shutdown()
        raise
    if max_connections < limits.max_connections:
        log.warning("Açık dosya sınırı nedeniyle en çok %d bağlantı tutulacak (istenen %d).",
                    max_connections, limits.max_connections)
    if not HAVE_POLL and sys.platform != "win32":  # pragma: no cover - every POSIX Python has poll()
        log.warning("poll() yok; select() kullanılıyor.")
    return Server(listeners, adj, dispatcher, socket_map, registry)
