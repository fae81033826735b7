"""Retrying any Target, once, in one place.

Only `TransientError` is retried. The schedule is urllib3's `Retry`: its counters, its backoff
formula and its Retry-After cap; a server's Retry-After (carried as seconds in
`TransientError.retry_after`) wins over a shorter backoff. A total time budget bounds the whole
call, so a sweep over many months cannot hang on one unreachable target.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util import Retry

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets.base import Package, Receipt, Target, TransientError

log = logging.getLogger(__name__)

DEFAULT_MAX_TIME = 600.0  # seconds for one call, sleeps included


def default_retry() -> Retry:
    # 5 attempts; sleeps 0, 4, 8, 16 s (urllib3 does not wait before the first retry)
    return Retry(total=4, connect=None, read=None, status=None, other=None,
                 backoff_factor=2, backoff_max=60, respect_retry_after_header=True,
                 retry_after_max=300)


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header (seconds or HTTP date) as seconds, None when absent or invalid."""
    if not value:
        return None
    try:
        return float(default_retry().parse_retry_after(value))
    except InvalidHeader:
        return None


class Retrying(Target):
    """Wraps a target; retries its TransientErrors and lets every other error through at once."""

    def __init__(self, target: Target, retry: Retry | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 max_time: float = DEFAULT_MAX_TIME):
        if isinstance(target, Retrying):
            target = target.target  # wrap once
        self.target = target
        self.kind = target.kind
        self.batch_query = target.batch_query
        self.retry = retry if retry is not None else default_retry()
        self.sleep = sleep
        self.clock = clock
        self.max_time = max_time
        self.attempts = 0  # of the last call, for logs and tests

    def _call(self, name: str, key: MonthKey | str, fn: Callable):
        retry = self.retry.new()  # fresh counters for every call
        started = self.clock()
        attempts = 0  # per call: months run in parallel through one wrapper
        while True:
            attempts += 1
            self.attempts = attempts
            try:
                return fn()
            except TransientError as exc:
                last = exc
            try:
                retry = retry.increment(method=name, url=str(key), error=last)
            except MaxRetryError:
                break
            wait = retry.get_backoff_time()
            if last.retry_after is not None and retry.respect_retry_after_header:
                wait = max(wait, min(float(last.retry_after), retry.retry_after_max))
            if self.clock() - started + wait > self.max_time:
                break
            log.warning("%s %s: deneme %d başarısız (%s); %.1f s sonra yeniden denenecek.",
                        name, key, attempts, last.message, wait)
            if wait > 0:
                self.sleep(wait)
        raise type(last)(
            f"{attempts} denemeden sonra başarısız oldu. Son hata: {last.message}",
            retry_after=last.retry_after, status=last.status,
        ) from last

    def send(self, package: Package, description: str) -> Receipt:
        return self._call("send", package.key, lambda: self.target.send(package, description))

    def query(self, key: MonthKey) -> Receipt:
        return self._call("query", key, lambda: self.target.query(key))

    def query_many(self, keys: list[MonthKey], wait: float = 0.0) -> dict[MonthKey, Receipt]:
        if not self.batch_query:  # one by one, each question retried on its own
            return super().query_many(keys, wait)
        return self._call("query", f"{len(keys)} ay", lambda: self.target.query_many(keys, wait))

    def fetch(self, key: MonthKey, dest: Path) -> Path:
        return self._call("fetch", key, lambda: self.target.fetch(key, dest))

    def fetch_stored(self, key: MonthKey, dest: Path) -> Receipt:
        return self._call("fetch", key, lambda: self.target.fetch_stored(key, dest))

    def cancel(self, key: MonthKey) -> Receipt:
        return self._call("cancel", key, lambda: self.target.cancel(key))

    def months(self, vkn: str) -> list[MonthKey] | None:
        return self._call("list", vkn, lambda: self.target.months(vkn))

    def close(self) -> None:
        self.target.close()
