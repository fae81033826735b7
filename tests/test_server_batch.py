"""POST /v1/months/query (issue 12): many months in one request, held until their checks end."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from edefter_helper.engine.model import MonthKey
from edefter_helper.server import start_in_thread
from edefter_helper.server.checks import Limits
from edefter_helper.targets.base import (
    ACCEPTED,
    MISSING,
    REJECTED,
    STORED,
    Receipt,
    Target,
)
from edefter_helper.targets.http import HttpTarget
from edefter_helper.targets.retry import Retrying
from tests import test_server as base
from tests.test_server import (
    ALI,
    ALI_PW,
    KEY,
    VKN_A,
    VKN_B,
    good_month,
    put,
    state_after_checks,
    zip_bytes,
)

users_template, data = base.users_template, base.data  # the server tests' fixtures

OTHER = MonthKey(VKN_A, "0000", "2024-02")


@pytest.fixture
def server(data):
    with start_in_thread(data, max_size=8 << 20, limits=Limits(max_total_uncompressed=64 << 20)) as handle:
        yield handle


def ask(server, months, auth=ALI, timeout=60, **extra):
    body = {"months": [{"vkn": k.vkn, "branch": k.branch, "period": k.period} if isinstance(k, MonthKey) else k
                       for k in months], **extra}
    return requests.post(f"{server.url}/v1/months/query", json=body, auth=auth, timeout=timeout)


HOUR = 3600.0


def _asking(handle, answers: list) -> threading.Thread:
    """A question held for up to an hour (the server's cap raised to that), asked from a thread; returns
    once the server holds it. An answer before the hour is up can only come from the event under test."""
    asking = threading.Thread(target=lambda: answers.append(ask(handle, [KEY], wait=HOUR, timeout=2 * HOUR)),
                              daemon=True)
    asking.start()
    while handle.verifier._waiters < 1:  # counted by the server once the question waits
        assert asking.is_alive(), "the question was answered without waiting"
        time.sleep(0.01)
    return asking


def test_many_months_in_one_answer_in_the_order_asked(server, tmp_path):
    path, sha = good_month(tmp_path)
    assert put(server, path.read_bytes(), sha=sha).status_code == 202
    bad = zip_bytes({f"{VKN_A}-202402-Y-000000.xml": b"<x/>"}, key=OTHER)
    assert put(server, bad, key=OTHER).status_code == 202
    state_after_checks(server)
    third = MonthKey(VKN_A, "0000", "2024-03")
    resp = ask(server, [third, KEY, OTHER])
    assert resp.status_code == 200
    months = resp.json()["months"]
    assert [(m["period"], m["state"]) for m in months] == [("2024-03", "missing"), ("2024-01", "stored"),
                                                          ("2024-02", "rejected")]
    assert months[1]["sha256"] == sha and months[1]["receipt"].startswith("EDY-")
    assert months[1] == requests.get(f"{server.url}/v1/months/{VKN_A}/0000/2024-01", auth=ALI, timeout=10).json()


def test_wait_holds_the_answer_until_the_checks_end(data, tmp_path, monkeypatch):
    from edefter_helper.server import app as server_app

    with start_in_thread(data, autoverify=False) as handle:
        path, sha = good_month(tmp_path)
        assert put(handle, path.read_bytes(), sha=sha).status_code == 202
        # nothing checks it: the wait runs out and the answer still says accepted
        assert ask(handle, [KEY], wait=0.5).json()["months"][0]["state"] == "accepted"
        # a check under way, held by the test: the question waits for it and is answered when it ends,
        # not when its hour is over (the join below would run out first)
        monkeypatch.setattr(server_app, "MAX_QUERY_WAIT", HOUR)
        release = threading.Event()
        verify = handle.verifier.verify
        handle.verifier.verify = lambda receipt: release.wait() and verify(receipt)
        handle.verifier.autostart = True
        handle.verifier.submit(handle.store.month(KEY).receipt)
        answers = []
        try:
            asking = _asking(handle, answers)
            assert not answers  # held while the check is
        finally:
            release.set()  # never leave the check (and the server's shutdown) blocked
        asking.join(300)
        assert not asking.is_alive()
        answer = answers[0].json()["months"][0]
        assert answer["state"] == "stored" and answer["sha256"] == sha


def test_stopping_answers_a_waiting_question(data, tmp_path, monkeypatch):
    from edefter_helper.server import app as server_app

    monkeypatch.setattr(server_app, "MAX_QUERY_WAIT", HOUR)
    handle = start_in_thread(data, autoverify=False)
    path, sha = good_month(tmp_path)
    assert put(handle, path.read_bytes(), sha=sha).status_code == 202
    handle.verifier.autostart = True
    handle.verifier._queued.add(handle.store.month(KEY).receipt)  # as if its check were queued
    answers = []
    asking = _asking(handle, answers)
    handle.stop()  # answered now, not after the hour
    asking.join(300)
    assert not asking.is_alive()
    assert answers and answers[0].json()["months"][0]["state"] == "accepted"


def test_foreign_vkn_bad_month_and_bad_body_are_refused(server):
    assert ask(server, [KEY, MonthKey(VKN_B, "0000", "2024-01")]).status_code == 403
    assert ask(server, [{"vkn": "12345", "branch": "0000", "period": "2024-01"}]).json()["error"] == "bad_month"
    assert ask(server, [{"vkn": "١٢٣٤٥٦٧٨٩٠", "branch": "0000", "period": "2024-01"}]).status_code == 400
    assert ask(server, [{"vkn": 1234567890, "branch": "0000", "period": "2024-01"}]).status_code == 400
    resp = requests.post(f"{server.url}/v1/months/query", data=b"not json", auth=ALI, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"] == "bad_query"
    assert ask(server, [KEY], wait=-1).status_code == 400
    assert ask(server, [KEY] * 1001).status_code == 413
    assert ask(server, [KEY], auth=(b"ali", b"yanlis")).status_code == 401


# ---- the http target ---------------------------------------------------------------------------

def test_http_target_asks_500_months_a_request(server, tmp_path, monkeypatch):
    path, sha = good_month(tmp_path)
    assert put(server, path.read_bytes(), sha=sha).status_code == 202
    state_after_checks(server)
    keys = [MonthKey(VKN_A, "0001", f"{2000 + i // 12}-{i % 12 + 1:02d}") for i in range(1100)] + [KEY]
    target = HttpTarget(server.url, "ali", ALI_PW)
    sent = []
    original = target._session.request
    monkeypatch.setattr(target._session, "request", lambda method, url, **kw: sent.append(method) or original(
        method, url, **kw))
    answers = target.query_many(keys)
    assert sent == ["POST", "POST", "POST"]
    assert list(answers) == keys
    assert answers[KEY].state == STORED and answers[KEY].sha256 == sha
    assert all(answers[k].state == MISSING for k in keys[:-1])
    # through the retry wrapper, as actions use it: still batched
    assert Retrying(target).batch_query and Retrying(target).query_many([KEY])[KEY].state == STORED


def test_http_target_falls_back_to_one_question_a_month_on_an_older_server(server, monkeypatch):
    target = HttpTarget(server.url, "ali", ALI_PW)
    original = target._session.request

    def old_server(method, url, **kw):
        if method == "POST":
            url = url.replace("/v1/months/query", "/v1/nothing-here")
        return original(method, url, **kw)

    monkeypatch.setattr(target._session, "request", old_server)
    answers = target.query_many([KEY, OTHER])
    assert [r.state for r in answers.values()] == [MISSING, MISSING]
    assert target._no_batch


class _OneByOne(Target):
    kind = "test"

    def __init__(self):
        self.asked = []

    def send(self, package, description):
        raise NotImplementedError

    def query(self, key):
        self.asked.append(key)
        return Receipt(state={0: ACCEPTED, 1: REJECTED}.get(len(self.asked) % 3, MISSING))

    def fetch(self, key, dest):
        raise NotImplementedError


def test_every_other_target_answers_query_many_one_by_one():
    target = _OneByOne()
    assert not target.batch_query and not Retrying(target).batch_query
    answers = Retrying(target).query_many([KEY, OTHER], wait=10)
    assert target.asked == [KEY, OTHER] and [r.state for r in answers.values()] == [REJECTED, MISSING]


def test_a_month_listing_can_ask_for_one_taxpayer(data, tmp_path, monkeypatch):
    """GET /v1/months?vkn=: an office user holding many taxpayers asks for one firm's months (a restore
    on another computer asks firm by firm); the server then reads only that taxpayer's rows and files.
    A VKN the user does not hold lists nothing; without the parameter every held VKN is listed."""
    from edefter_helper.server import add_user

    add_user(data, "ofis", "Ofis-parola-3", [VKN_A, VKN_B])
    key_b = MonthKey(VKN_B, "0002", "2024-03")
    with start_in_thread(data, max_size=8 << 20) as server:
        for key, auth in ((KEY, ALI), (key_b, base.AYSE)):
            path, sha = good_month(tmp_path / key.vkn, key, **({"branch": key.branch} if key.branch != "0000" else {}))
            assert put(server, path.read_bytes(), key=key, auth=auth, sha=sha).status_code == 202
            assert state_after_checks(server, key, auth)["state"] == STORED
        asked = []
        months_of = server.store.months_of
        monkeypatch.setattr(server.store, "months_of", lambda vkns: asked.append(list(vkns)) or months_of(vkns))
        office = (b"ofis", b"Ofis-parola-3")

        def listed(**params):
            r = requests.get(f"{server.url}/v1/months", params=params, auth=office, timeout=30)
            assert r.status_code == 200, r.text
            return sorted((m["vkn"], m["branch"], m["period"]) for m in r.json()["months"])

        assert listed() == [(VKN_A, "0000", "2024-01"), (VKN_B, "0002", "2024-03")]
        assert listed(vkn=VKN_B) == [(VKN_B, "0002", "2024-03")]
        assert listed(vkn="1111111111") == []
        assert asked == [[VKN_A, VKN_B], [VKN_B], []]
        # the client asks this way
        assert HttpTarget(server.url, "ofis", "Ofis-parola-3").months(VKN_A) == [KEY]
        assert asked[-1] == [VKN_A]
