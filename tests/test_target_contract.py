"""One contract every registered target kind must pass, opened through the registry as the factory opens
it (the password handed over directly, no keyring):

- send -> query says STORED with the package's sha256 -> fetch gives the same bytes;
- the same package again -> the same receipt (state, sha256 and, where the target keeps one, reference);
- other bytes for a month already stored are refused (RejectedError) and the stored copy stays;
- a month never sent -> MISSING.

Each kind runs against a real server of its own: klasör a tmp folder, http the project's storage server
(edefter_helper.server.start_in_thread), izibiz the fake İzibiz that validates every request against
İzibiz's real XSDs, s3 Ceph's RADOS Gateway (tests/s3_server.py). A new kind is refused here until it has
a harness below."""

from __future__ import annotations

from tests.conftest import copy_server_data

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets import registry
from edefter_helper.targets.base import ACCEPTED, MISSING, STORED, Package, RejectedError, Target

pytest_plugins = ("tests.s3_server",)

VKN = "1234567890"
KEY = MonthKey(VKN, "0000", "2024-01")
NEVER_SENT = MonthKey(VKN, "0000", "2024-02")
HTTP_USER, HTTP_PASSWORD = "firma", "Gizli-Şifre-ğ42"
IZIBIZ_USER, IZIBIZ_PASSWORD = "ali@firma", "doğru-şifre"


@dataclass
class Harness:
    kind: str
    target: Target
    settle: Callable[[], None] = field(default=lambda: None)  # wait until an ACCEPTED package is processed
    stable_reference: bool = True  # İzibiz answers every call with a new transaction id
    checks: list[Callable[[], None]] = field(default_factory=list)  # run after the test


def _open(kind: str, address: str, user: str = "", password: str | None = None) -> Target:
    spec = registry.get(kind)
    assert spec is not None, f"{kind} kayıtlı değil"
    return spec.open(address, user, password, None)


def _folder(request, tmp_path):
    root = tmp_path / "nas"
    root.mkdir()
    yield Harness("klasör", _open("klasör", str(root)))


def _http(request, tmp_path):
    from edefter_helper.server import start_in_thread

    data = Path(copy_server_data(request.getfixturevalue("http_users"), tmp_path / "server"))
    with start_in_thread(data, max_size=8 << 20) as handle:
        def settle():
            assert handle.wait_idle(30)
        yield Harness("http", _open("http", handle.url, HTTP_USER, HTTP_PASSWORD), settle=settle)


def _izibiz(request, tmp_path):
    from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

    contract = require_contract(request.getfixturevalue("shared_dir") / "integrators" / "izibiz")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz-disk", contract_dir=contract)) as srv:
        def valid():
            assert srv.app.invalid_requests == [] and srv.app.response_errors == []
        yield Harness("izibiz", _open("izibiz", srv.url, IZIBIZ_USER, IZIBIZ_PASSWORD), stable_reference=False,
                      checks=[valid])


def _s3(request, tmp_path):
    if registry.get("s3") is None:
        pytest.skip("s3 hedefi kayıtlı değil (boto3 kurulu değil)")
    ceph = request.getfixturevalue("ceph_s3")
    address = ceph.address(ceph.bucket(), "sozlesme", location="TR")
    yield Harness("s3", _open("s3", address, ceph.access_key, ceph.secret_key))


HARNESSES = {"klasör": _folder, "http": _http, "izibiz": _izibiz, "s3": _s3}


@pytest.fixture(scope="module")
def http_users(tmp_path_factory) -> Path:
    from edefter_helper.server import add_user

    d = tmp_path_factory.mktemp("users") / "server"  # password hashing is slow on purpose: once per module
    add_user(d, HTTP_USER, HTTP_PASSWORD, [VKN])
    return d


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[int, Package]:
    """Two real months (different bytes) for the same key, packed as the server expects them."""
    from edefter_helper.samples import write_month
    from edefter_helper.server.testing import build_package

    out = {}
    for seed in (1, 2):
        root = tmp_path_factory.mktemp(f"ay-{seed}")
        files = write_month(root / "src", KEY.vkn, KEY.period, seed=seed)
        path, sha = build_package(files, KEY, root / KEY.package_name)
        out[seed] = Package(path, KEY, sha, path.stat().st_size)
    assert out[1].sha256 != out[2].sha256
    return out


@pytest.fixture(params=sorted(HARNESSES))
def harness(request, tmp_path):
    gen = HARNESSES[request.param](request, tmp_path)
    h = next(gen)
    try:
        with h.target:
            yield h
        for check in h.checks:
            check()
    finally:
        gen.close()


def _send_and_settle(h: Harness, pkg: Package):
    receipt = h.target.send(pkg, "Sözleşme testi")
    assert receipt.state in (ACCEPTED, STORED), receipt.message
    assert receipt.sha256 in ("", pkg.sha256)
    h.settle()
    return receipt


def test_every_registered_kind_has_a_harness():
    assert set(registry.kind_names()) <= set(HARNESSES), "yeni hedef türü sözleşme testine eklenmeli"


def test_send_query_fetch_round_trip(harness, packages, tmp_path):
    pkg = packages[1]
    assert harness.target.query(KEY).state == MISSING
    _send_and_settle(harness, pkg)
    status = harness.target.query(KEY)
    assert status.state == STORED, status.message
    assert status.sha256 == pkg.sha256
    dest = harness.target.fetch(KEY, tmp_path / "geri" / KEY.package_name)
    assert Path(dest).read_bytes() == pkg.path.read_bytes()


def test_the_same_package_again_gives_the_same_receipt(harness, packages):
    pkg = packages[1]
    _send_and_settle(harness, pkg)
    stored = harness.target.query(KEY)
    again = harness.target.send(pkg, "tekrar")
    assert (again.state, again.sha256) == (STORED, pkg.sha256), again.message
    if harness.stable_reference:
        assert again.reference and again.reference == stored.reference
    after = harness.target.query(KEY)
    assert (after.state, after.sha256) == (STORED, pkg.sha256)


def test_other_bytes_for_a_stored_month_are_refused(harness, packages, tmp_path):
    first, other = packages[1], packages[2]
    _send_and_settle(harness, first)
    with pytest.raises(RejectedError) as err:
        harness.target.send(other, "")
    assert err.value.message
    status = harness.target.query(KEY)
    assert (status.state, status.sha256) == (STORED, first.sha256)
    dest = harness.target.fetch(KEY, tmp_path / "geri.zip")
    assert Path(dest).read_bytes() == first.path.read_bytes()


def test_a_month_never_sent_is_missing(harness, packages):
    _send_and_settle(harness, packages[1])  # a neighbour is stored; this one is not
    assert harness.target.query(NEVER_SENT).state == MISSING


def test_a_target_that_lists_months_lists_the_stored_one(harness, packages):
    """months(vkn) is optional (None: the target cannot list, e.g. İzibiz); a target that lists names the
    month it stores and no other taxpayer's — a restore on another computer finds branches by it."""
    assert harness.target.months(KEY.vkn) in (None, [])
    _send_and_settle(harness, packages[1])
    listed = harness.target.months(KEY.vkn)
    assert listed is None or listed == [KEY], listed
    assert harness.target.months("1111111111") in (None, [])


def test_fetch_stored_is_query_and_fetch(harness, packages, tmp_path):
    """fetch_stored (what a restore asks): query's answer, and the package in dest only when STORED."""
    dest = tmp_path / "geri" / KEY.package_name
    assert harness.target.fetch_stored(KEY, dest).state == MISSING
    assert not dest.exists()
    pkg = packages[1]
    _send_and_settle(harness, pkg)
    receipt = harness.target.fetch_stored(KEY, dest)
    assert (receipt.state, receipt.sha256) == (STORED, pkg.sha256), receipt.message
    assert dest.read_bytes() == pkg.path.read_bytes()
