import hashlib
from pathlib import Path

import pytest
from urllib3.util import Retry

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets.base import (
    CredentialsError, Package, RejectedError, STORED, Target, TransientError,
)
from edefter_helper.targets.folder import FolderTarget
from edefter_helper.targets.retry import Retrying, parse_retry_after

KEY = MonthKey("4840847211", "0000", "2024-01")


class Flaky(Target):
    """A real FolderTarget behind a fault injector: the next N calls fail with the given error."""

    kind = "folder"

    def __init__(self, inner, failures):
        self.inner = inner
        self.failures = list(failures)
        self.calls = 0

    def _maybe_fail(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def send(self, package, description):
        self._maybe_fail()
        return self.inner.send(package, description)

    def query(self, key):
        self._maybe_fail()
        return self.inner.query(key)

    def fetch(self, key, dest):
        self._maybe_fail()
        return self.inner.fetch(key, dest)


@pytest.fixture
def package(tmp_path):
    path = tmp_path / KEY.package_name
    data = b"PK\x03\x04 e-defter ay paketi " * 1000
    path.write_bytes(data)
    return Package(path=path, key=KEY, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "nas"
    root.mkdir()
    return FolderTarget(root)


def test_retries_transient_then_succeeds(folder, package):
    flaky = Flaky(folder, [TransientError("bağlantı koptu"), TransientError("zaman aşımı"),
                           TransientError("503", status=503)])
    sleeps = []
    target = Retrying(flaky, retry=Retry(total=5, backoff_factor=1, backoff_max=60), sleep=sleeps.append)
    receipt = target.send(package, "Tiger sisteminden aktarılmıştır")
    assert receipt.state == STORED and receipt.sha256 == package.sha256
    assert flaky.calls == 4 and target.attempts == 4
    # urllib3's schedule: no wait before the first retry, then factor * 2**(n-1)
    assert sleeps == [2.0, 4.0]


def test_retry_after_wins_over_shorter_backoff(folder, package):
    flaky = Flaky(folder, [TransientError("429", retry_after=7, status=429)])
    sleeps = []
    target = Retrying(flaky, retry=Retry(total=3, backoff_factor=1), sleep=sleeps.append)
    assert target.query(KEY).state == "missing"
    assert sleeps == [7.0] and flaky.calls == 2


def test_gives_up_with_count_and_last_reason(folder, package):
    flaky = Flaky(folder, [TransientError(f"hata {i}") for i in range(10)])
    sleeps = []
    target = Retrying(flaky, retry=Retry(total=2, backoff_factor=0.5), sleep=sleeps.append)
    with pytest.raises(TransientError) as err:
        target.send(package, "")
    assert flaky.calls == 3
    assert err.value.message == "3 denemeden sonra başarısız oldu. Son hata: hata 2"
    assert sleeps == [1.0]
    assert not (folder.root / KEY.vkn / KEY.package_name).exists()


@pytest.mark.parametrize("error", [RejectedError("ret"), CredentialsError("şifre yanlış")])
def test_never_retries_rejection_or_credentials(folder, package, error):
    flaky = Flaky(folder, [error, TransientError("x")])
    sleeps = []
    target = Retrying(flaky, sleep=sleeps.append)
    with pytest.raises(type(error)) as err:
        target.send(package, "")
    assert err.value is error and flaky.calls == 1 and sleeps == []


def test_total_time_budget_bounds_the_call(folder, package):
    now = [0.0]

    def sleep(s):
        now[0] += s

    flaky = Flaky(folder, [TransientError("503", retry_after=100, status=503)] * 10)
    target = Retrying(flaky, retry=Retry(total=10), sleep=sleep, clock=lambda: now[0], max_time=250)
    with pytest.raises(TransientError) as err:
        target.query(KEY)
    # 0 -> 100 -> 200; a third wait would pass 250 s
    assert flaky.calls == 3 and now[0] == 200
    assert err.value.message.startswith("3 denemeden sonra")


def test_wraps_once_and_fetch_works(folder, package, tmp_path):
    folder.send(package, "")
    inner = Retrying(Flaky(folder, [TransientError("x")]), sleep=lambda s: None)
    outer = Retrying(inner, sleep=lambda s: None)
    assert not isinstance(outer.target, Retrying)
    out = outer.fetch(KEY, tmp_path / "geri.zip")
    assert Path(out).read_bytes() == package.path.read_bytes()


def test_parse_retry_after():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("yarın") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
