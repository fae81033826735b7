"""Login guessing (issue 8): throttled with 429 + Retry-After, bounded password work, and the same
answer and the same work for a user name that does not exist.

Real server on 127.0.0.1. The flood test runs the server in its own process (as deployed), the
code-path tests in this process so the password check can be observed."""

from __future__ import annotations

from tests.conftest import copy_server_data

import socket
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from edefter_helper.server import add_user, auth, start_in_subprocess, start_in_thread
from edefter_helper.server.auth import AuthLimits
from tests.test_server import ALI, ALI_PW, AYSE, AYSE_PW, VKN_A, VKN_B

A_MONTH = f"/v1/months/{VKN_A}/0000/2024-01"
B_MONTH = f"/v1/months/{VKN_B}/0000/2024-01"


@pytest.fixture(scope="module")
def users_template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("users") / "server"
    add_user(d, "ali", ALI_PW, [VKN_A])
    add_user(d, "ayse", AYSE_PW, [VKN_B])
    return d


@pytest.fixture
def data(tmp_path, users_template) -> Path:
    return Path(copy_server_data(users_template, tmp_path / "server"))


class _From(HTTPAdapter):
    """Connect from a given local address (127.0.0.2 is loopback too on Linux)."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


def _session_from(address: str) -> requests.Session:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
    except OSError:
        pytest.skip(f"cannot send from {address} on this system")
    session = requests.Session()
    session.mount("http://", _From(address))
    return session


def test_16_guessing_clients_get_429_while_a_real_user_is_answered(data):
    limits = AuthLimits(address_burst=10, address_per_minute=6, user_burst=20, user_per_minute=6)
    with start_in_subprocess(data, threads=8, auth_limits=limits) as srv:
        assert requests.get(srv.url + B_MONTH, auth=AYSE, timeout=30).status_code == 200  # ayşe is logged in
        stop = threading.Event()
        answers: list[tuple[int, str | None, str]] = []

        def guess(i: int) -> None:
            name = b"ali" if i % 2 else f"kimse{i}".encode()  # a real account and names that do not exist
            with requests.Session() as s:
                n = 0
                while not stop.is_set():
                    n += 1
                    r = s.get(srv.url + A_MONTH, auth=(name, f"tahmin-{i}-{n}".encode()), timeout=60)
                    answers.append((r.status_code, r.headers.get("Retry-After"), r.json().get("error", "")))

        guessers = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
        started = time.monotonic()
        for t in guessers:
            t.start()
        latencies = {"ayse": [], "health": []}
        try:
            # until the guessing is past its allowance: refused before any password work
            while sum(1 for a in answers if a[2] == "too_many_attempts") < 100:
                assert time.monotonic() - started < 120, Counter(a[2] for a in answers)
                time.sleep(0.05)
            with requests.Session() as ayse:
                for _ in range(20):
                    t0 = time.perf_counter()
                    assert ayse.get(srv.url + B_MONTH, auth=AYSE, timeout=60).status_code == 200
                    latencies["ayse"].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    assert requests.get(srv.url + "/v1/health", timeout=60).status_code == 200
                    latencies["health"].append(time.perf_counter() - t0)
            # a first login from another address, while the guessing goes on (as the real client does,
            # it waits Retry-After when the password checks are busy)
            with _session_from("127.0.0.2") as other:
                for _ in range(10):
                    first = other.get(srv.url + A_MONTH, auth=ALI, timeout=60)
                    if first.status_code != 429:
                        break
                    time.sleep(int(first.headers["Retry-After"]))
                assert first.status_code == 200, (first.text, first.headers)
        finally:
            stop.set()
            for t in guessers:
                t.join(60)
        elapsed = time.monotonic() - started
        # ali's password, verified from the other address, now works from the guessers' address too
        assert requests.get(srv.url + A_MONTH, auth=ALI, timeout=30).status_code == 200

    counts = Counter(status for status, _, _ in answers)
    print(f"\n16 guessers: {dict(counts)} in {elapsed:.1f} s; ayşe median "
          f"{statistics.median(latencies['ayse']) * 1000:.1f} ms max {max(latencies['ayse']) * 1000:.1f} ms; "
          f"health median {statistics.median(latencies['health']) * 1000:.1f} ms "
          f"max {max(latencies['health']) * 1000:.1f} ms")
    assert set(counts) <= {401, 429} and counts[429] > 0
    for status, retry_after, error in answers:
        if status == 429:
            assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1
            assert error in ("too_many_attempts", "busy")
    # every 401 cost one password check; past the burst only the leak lets one through
    allowed = limits.address_burst + int(elapsed * limits.address_per_minute / 60) + 1
    assert counts[401] <= allowed, (counts, elapsed)
    assert statistics.median(latencies["ayse"]) < 2.0 and statistics.median(latencies["health"]) < 2.0


def test_retry_after_is_honest(data):
    limits = AuthLimits(address_burst=3, address_per_minute=6)
    now = [1000.0]  # the gate's clock, moved by hand: no sleeping, no timing
    with start_in_thread(data, auth_limits=limits) as srv:
        srv.app.extensions["edefter_password_gate"].clock = lambda: now[0]
        for _ in range(3):
            assert requests.get(srv.url + A_MONTH, auth=(b"ali", b"yanlis"), timeout=30).status_code == 401
        refused = requests.get(srv.url + A_MONTH, auth=(b"ali", b"yanlis"), timeout=30)
        assert refused.status_code == 429 and refused.json()["error"] == "too_many_attempts"
        wait = int(refused.headers["Retry-After"])
        assert wait == 10 and f"{wait} saniye sonra" in refused.json()["message"]  # 6 a minute
        # the right password is refused too while the address is throttled (no password check at all)
        assert requests.get(srv.url + A_MONTH, auth=ALI, timeout=30).status_code == 429
        now[0] += wait - 1
        assert requests.get(srv.url + A_MONTH, auth=ALI, timeout=30).status_code == 429
        now[0] += 1
        assert requests.get(srv.url + A_MONTH, auth=ALI, timeout=30).status_code == 200


def test_throttling_is_the_same_for_known_and_unknown_names(data):
    limits = AuthLimits(address_burst=1000, user_burst=2, user_per_minute=1)
    with start_in_thread(data, auth_limits=limits) as srv:
        srv.app.extensions["edefter_password_gate"].clock = lambda: 1000.0  # time stands still
        seen = {}
        for name in (b"ali", b"hic-olmayan"):
            seen[name] = [requests.get(srv.url + A_MONTH, auth=(name, b"yanlis"), timeout=30)
                          for _ in range(3)]
        for name, answers in seen.items():
            assert [r.status_code for r in answers] == [401, 401, 429], name
        assert [r.json() for r in seen[b"ali"]] == [r.json() for r in seen[b"hic-olmayan"]]
        assert seen[b"ali"][2].headers["Retry-After"] == seen[b"hic-olmayan"][2].headers["Retry-After"]


def test_unknown_user_costs_a_full_password_check(data, monkeypatch):
    """Asserted on the code path, not on timing: the same scrypt (method and cost) runs either way."""
    checked: list[str] = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: (checked.append(h), real(h, p))[1])
    lookups: list[str] = []
    with start_in_thread(data) as srv:
        ali_hash = srv.store.get_user("ali")[0]
        real_lookup = srv.store.user_record
        monkeypatch.setattr(srv.store, "user_record", lambda name: (lookups.append(name), real_lookup(name))[1])
        unknown = requests.get(srv.url + A_MONTH, auth=(b"kimse", b"bir-parola"), timeout=30)
        known = requests.get(srv.url + A_MONTH, auth=(b"ali", b"bir-parola"), timeout=30)
    assert unknown.status_code == known.status_code == 401
    assert unknown.json() == known.json()
    assert unknown.headers["WWW-Authenticate"] == known.headers["WWW-Authenticate"]
    assert lookups == ["kimse", "ali"]
    assert len(checked) == 2
    dummy, real_hash = checked
    assert real_hash == ali_hash and dummy != ali_hash
    method = lambda h: h.split("$", 1)[0]  # noqa: E731 - e.g. "scrypt:32768:8:1": algorithm and cost
    assert method(dummy) == method(ali_hash) and method(dummy).startswith("scrypt:")


def test_a_verified_user_costs_no_second_check(data, monkeypatch):
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: (checked.append(h), real(h, p))[1])
    with start_in_thread(data) as srv:
        for _ in range(5):
            assert requests.get(srv.url + A_MONTH, auth=ALI, timeout=30).status_code == 200
        # parallel first requests of another user share one check
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            requests.get(srv.url + B_MONTH, auth=AYSE, timeout=30).status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert results == [200] * 4
    assert len(checked) <= 1 + 4 and checked.count(checked[0]) == 1  # ali: once


def test_password_work_is_bounded_and_health_stays_quick(data, monkeypatch):
    """With one check at a time and nobody allowed to wait, parallel guesses are turned away (429 busy)
    instead of holding worker threads; /v1/health is answered meanwhile."""
    real = auth.check_password_hash

    def slow(h, p):
        time.sleep(1.0)
        return real(h, p)

    monkeypatch.setattr(auth, "check_password_hash", slow)
    limits = AuthLimits(address_burst=1000, user_burst=1000, checks=1, waiters=0)
    with start_in_thread(data, threads=4, auth_limits=limits) as srv:
        answers = []
        threads = [threading.Thread(target=lambda i=i: answers.append(requests.get(
            srv.url + A_MONTH, auth=(f"u{i}".encode(), b"x"), timeout=30))) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        t0 = time.perf_counter()
        assert requests.get(srv.url + "/v1/health", timeout=30).status_code == 200
        health = time.perf_counter() - t0
        for t in threads:
            t.join(60)
    busy = [r for r in answers if r.status_code == 429]
    assert busy and all(r.json()["error"] == "busy" and r.headers["Retry-After"] == "1" for r in busy)
    assert {r.status_code for r in answers} <= {401, 429}
    assert health < 2.0
