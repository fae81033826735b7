"""Password checks for the storage server: the same cost for every user name, bounded, throttled.

- **Equal cost.** A user name that does not exist is checked against a dummy hash made at start
  with the same method and parameters as real ones (werkzeug's scrypt), and the database is asked
  the same two questions: an unknown name costs what a known name with a wrong password costs, and
  both get the same 401.
- **Throttling.** Failed logins fill two leaky buckets, one per client address and one per user
  name (existing or not, alike). A full bucket answers 429 with Retry-After *before* any password
  work. Attempts are charged before the check and refunded on success, so parallel guesses cannot
  overshoot. A user whose name and password were already verified (kept as an HMAC under a
  per-process key, never the password) is let through without a bucket or scrypt, so a logged-in
  client keeps working while someone guesses at the same account from the same address.
- **Bounded work.** At most `checks` scrypt computations run at once and at most `waiters` requests
  wait for one; the rest get 429 at once, so guessing can never occupy every worker thread and
  `/v1/health` or a logged-in user's requests are not queued behind it. Identical credentials
  arriving together share one computation.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

log = logging.getLogger("edefter_helper.server")


@dataclass(frozen=True)
class AuthLimits:
    address_burst: int = 10  # wrong logins one client address may make at once…
    address_per_minute: float = 6.0  # …and then this many a minute
    user_burst: int = 20  # the same for one user name, from all addresses together
    user_per_minute: float = 6.0
    checks: int | None = None  # scrypt computations at once (default: a quarter of the threads)
    waiters: int | None = None  # requests that may wait for one (default: a quarter of the threads)
    wait: float = 3.0  # longest wait for a free slot, seconds
    busy_retry_after: int = 1


@dataclass(frozen=True)
class Login:
    """The outcome: status 200 (ok, with the user's VKNs), 401, or 429 with retry_after seconds."""

    status: int
    vkns: frozenset = frozenset()
    retry_after: int = 0
    reason: str = ""  # "throttled" or "busy" for 429


class _Buckets:
    """Leaky buckets of failed attempts per key: `burst` at once, then `per_minute`."""

    def __init__(self, name: str, burst: int, per_minute: float, max_keys: int = 50_000, show_key: bool = False):
        self.name = name
        self.show_key = show_key  # user names are not logged: a mistyped password often lands there
        self.burst = max(1, int(burst))
        self.rate = max(per_minute, 1e-6) / 60.0
        self.max_keys = max_keys
        self._levels: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        level, at = self._levels.get(key, (0.0, now))
        return max(0.0, level - (now - at) * self.rate)

    def take(self, key: str, now: float) -> float:
        """Charge one attempt; 0 when allowed, else the seconds until one is allowed (nothing charged)."""
        with self._lock:
            level = self._level(key, now)
            if level + 1 > self.burst:
                return (level + 1 - self.burst) / self.rate
            self._levels[key] = (level + 1, now)
            if level + 1 >= self.burst:
                log.warning("Hatalı giriş sınırına ulaşıldı (%s%s); sonraki denemeler 429 alacak.", self.name,
                            f" {key}" if self.show_key else "")
            if len(self._levels) > self.max_keys:
                self._prune(now)
            return 0.0

    def refund(self, key: str, now: float) -> None:
        with self._lock:
            level = self._level(key, now)
            self._levels[key] = (max(0.0, level - 1), now)

    def _prune(self, now: float) -> None:
        self._levels = {k: (lvl, at) for k, (lvl, at) in self._levels.items()
                        if lvl - (now - at) * self.rate > 0}
        if len(self._levels) > self.max_keys:  # a flood of distinct keys: forget them, keep serving
            self._levels.clear()


class _Flight:
    def __init__(self):
        self.done = threading.Event()
        self.result = False
        self.busy = False


class _Busy(Exception):
    pass


class PasswordGate:
    def __init__(self, store, limits: AuthLimits | None = None, threads: int = 8, clock=time.monotonic):
        self.store = store
        self.limits = limits or AuthLimits()
        self.clock = clock
        # a hash of a random password with the same method and cost as every real one
        self.dummy_hash = generate_password_hash(secrets.token_urlsafe(24))
        self.addresses = _Buckets("adres", self.limits.address_burst, self.limits.address_per_minute,
                                  show_key=True)
        self.users = _Buckets("kullanıcı adı", self.limits.user_burst, self.limits.user_per_minute)
        checks = self.limits.checks or max(1, threads // 4)
        self.max_waiters = self.limits.waiters if self.limits.waiters is not None else max(1, threads // 4)
        self._slots = threading.BoundedSemaphore(checks)
        self._lock = threading.Lock()
        self._waiting = 0
        self._inflight: dict[bytes, _Flight] = {}
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._verified_max = 1024

    # ---- the one entry point ------------------------------------------------------------------

    def login(self, name: str, password: str, address: str) -> Login:
        pw_hash, vkns = self.store.user_record(name)
        known = pw_hash is not None
        effective = pw_hash if known else self.dummy_hash
        digest = self._digest(name, password, effective)
        verified = self._is_verified(digest)  # asked for unknown names too: the same work either way
        if known and verified:
            return Login(200, frozenset(vkns))
        now = self.clock()
        user_key = name[:256]
        wait = self.addresses.take(address, now)
        if not wait:
            wait = self.users.take(user_key, now)
            if wait:
                self.addresses.refund(address, now)
        if wait:
            return Login(429, retry_after=max(1, math.ceil(wait)), reason="throttled")
        try:
            ok = self._check(digest, effective, password)
        except _Busy:
            self.addresses.refund(address, now)
            self.users.refund(user_key, now)
            return Login(429, retry_after=self.limits.busy_retry_after, reason="busy")
        if ok and known:
            self.addresses.refund(address, now)
            self.users.refund(user_key, now)
            self._remember(digest)
            return Login(200, frozenset(vkns))
        return Login(401)

    # ---- verified credentials (HMAC only) ------------------------------------------------------

    def _digest(self, name: str, password: str, pw_hash: str) -> bytes:
        # the stored hash is part of the key: a changed password invalidates at once
        return hmac.new(self._key, "\0".join((name, password, pw_hash)).encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    def _is_verified(self, digest: bytes) -> bool:
        with self._lock:
            return digest in self._verified

    def _remember(self, digest: bytes) -> None:
        with self._lock:
            if len(self._verified) >= self._verified_max:
                self._verified.clear()
            self._verified.add(digest)

    # ---- scrypt, shared and bounded ------------------------------------------------------------

    def _check(self, digest: bytes, pw_hash: str, password: str) -> bool:
        with self._lock:
            flight = self._inflight.get(digest)
            owner = flight is None
            if owner:
                flight = self._inflight[digest] = _Flight()
        if not owner:  # the same credentials are being checked right now: share the answer
            if not flight.done.wait(self.limits.wait + 30) or flight.busy:
                raise _Busy
            return flight.result
        try:
            self._acquire()
            try:
                flight.result = check_password_hash(pw_hash, password)
            finally:
                self._slots.release()
            return flight.result
        except _Busy:
            flight.busy = True
            raise
        finally:
            flight.done.set()
            with self._lock:
                self._inflight.pop(digest, None)

    def _acquire(self) -> None:
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.max_waiters:
                raise _Busy
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=self.limits.wait):
                raise _Busy
        finally:
            with self._lock:
                self._waiting -= 1
