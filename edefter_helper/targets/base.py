"""The one interface every storage target implements.

A target never retries by itself: `targets.retry.Retrying` wraps any target once.
Errors carry a Turkish message fit for the Mesaj column; they never carry secrets.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

from edefter_helper.engine.model import MonthKey

# what a target says about a month
ACCEPTED = "accepted"  # taken in, not yet confirmed (-> Entegratör'e İşlendi)
STORED = "stored"  # confirmed stored (-> Yedeklendi when sha256 matches what was sent)
REJECTED = "rejected"  # refused for a reason (-> Yedeklenemedi)
MISSING = "missing"  # the target holds nothing for this month


@dataclass(frozen=True)
class Package:
    """A month's zip as built by engine.package."""

    path: Path
    key: MonthKey
    sha256: str
    size: int
    files: tuple = ()  # ((name, size, sha256), ...)


@dataclass
class Receipt:
    state: str
    reference: str = ""  # the target's receipt / transaction id
    sha256: str = ""  # sha256 of the package the target holds, when it says
    message: str = ""  # Turkish
    extra: dict = field(default_factory=dict)


class TargetError(Exception):
    """A failure with a Turkish message for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransientError(TargetError):
    """Worth retrying: connection errors, timeouts, 5xx, 429."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class UnreachableError(TransientError):
    """Nobody answers at the address (connection refused, name not resolved): after its retries the
    run stops trying that target's other months."""


class IntegrityError(TargetError):
    """The bytes the target gave back are not the bytes it says it holds (a damaged stored copy)."""


class RejectedError(TargetError):
    """The target refused this package; retrying will not help."""


class ConfigurationError(TargetError):
    """The settings do not describe a usable target (unknown Hedef, empty address, no keyring…):
    the same for every month of that target, so reported once per run, not stamped on each month."""


class CredentialsError(ConfigurationError):
    """Missing or wrong user name / password."""


class NotSupported(TargetError):
    pass


class Target(abc.ABC):
    kind: str = ""
    # True: query_many asks many months in one request (a bulk backup then asks in batches)
    batch_query: bool = False

    @abc.abstractmethod
    def send(self, package: Package, description: str) -> Receipt:
        """Store the package; returns ACCEPTED or STORED, raises on failure."""

    @abc.abstractmethod
    def query(self, key: MonthKey) -> Receipt:
        """What the target holds for the month (STORED with its sha256, ACCEPTED, REJECTED or MISSING)."""

    def query_many(self, keys: list[MonthKey], wait: float = 0.0) -> dict[MonthKey, Receipt]:
        """query() of each month. A target with batch_query asks many in one request and, given `wait`
        seconds, may hold its answer until none of them is still ACCEPTED. Raises as query does."""
        return {key: self.query(key) for key in keys}

    @abc.abstractmethod
    def fetch(self, key: MonthKey, dest: Path) -> Path:
        """Download the stored package into dest (a file path); returns it."""

    def fetch_stored(self, key: MonthKey, dest: Path) -> Receipt:
        """What the target holds for the month (query's answer) and, when that is STORED, its package
        in dest (fetch). A target whose query reads the whole package back anyway (İzibiz) does both
        with one download; a restore asks this way."""
        receipt = self.query(key)
        if receipt.state == STORED:
            self.fetch(key, dest)
        return receipt

    def months(self, vkn: str) -> list[MonthKey] | None:
        """The months (every branch) the target holds something for, for a VKN; None when it cannot
        list them. A restore on another computer asks it for the branches Firmalar does not name."""
        return None

    def cancel(self, key: MonthKey) -> Receipt:
        raise NotSupported("Bu hedef gönderilen paketin iptalini desteklemiyor.")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
