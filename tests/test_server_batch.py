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


def ask(server, months, auth=ALI, **extra):
    body = {"months": [{"vkn": k.vkn, "branch": k.branch, "period": k.period} if isinstance(k, MonthKey) else k
                       for k in months], **extra}
    return requests.post(f"{server.url}/v1/months/query", json=body, auth=auth, timeout=60)


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


def test_wait_holds_the_answer_until_the_checks_end(data, tmp_path):
    with start_in_thread(data, autoverify=False) as handle:
        path, sha = good_month(tmp_path)
        assert put(handle, path.read_bytes(), sha=sha).status_code == 202
        # nothing checks it: the wait runs out and the answer still says accepted
        t0 = time.monotonic()
        assert ask(handle, [KEY], wait=0.5).json()["months"][0]["state"] == "accepted"
        assert time.monotonic() - t0 < 5
        # a (slow) check under way: the question is answered once it ended, long before the wait is over
        verify = handle.verifier.verify
        handle.verifier.verify = lambda receipt: time.sleep(1.0) or verify(receipt)
        handle.verifier.autostart = True
        handle.verifier.submit(handle.store.month(KEY).receipt)
        t0 = time.monotonic()
        answer = ask(handle, [KEY], wait=25).json()["months"][0]
        assert answer["state"] == "stored" and answer["sha256"] == sha
        assert 0.5 < time.monotonic() - t0 < 20


def test_stopping_answers_a_waiting_question(data, tmp_path):
    handle = start_in_thread(data, autoverify=False)
    path, sha = good_month(tmp_path)
    assert put(handle, path.read_bytes(), sha=sha).status_code == 202
    handle.verifier.autostart = True
    handle.verifier._queued.add(handle.store.month(KEY).receipt)  # as if its check were queued
    answers = []
    asking = threading.Thread(target=lambda: answers.append(ask(handle, [KEY], wait=30)))
    asking.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    handle.stop()
    asking.join(15)
    assert time.monotonic() - t0 < 10
    assert not asking.is_alive()


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
