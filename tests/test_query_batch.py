"""Durum Sorgula asks the own storage server about many months in one request (issue 12): the answers of
POST /v1/months/query are used as the per-month question's would be — real workbook, real server on
loopback; the single-month question is counted and must not be asked."""

from __future__ import annotations

import contextlib
import sqlite3

from edefter_helper import actions, credentials, server
from edefter_helper import status as S
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.targets.http import HttpTarget
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN = "4810525635"
PERIODS = ("2024-01", "2024-02", "2024-03")


@contextlib.contextmanager
def backed_up(tmp_path, edefter):
    """A workbook whose three months Toplu Yedekle backed up to the own server (still running inside the
    block): (workbook, the options of that run)."""
    ledgers = tmp_path / "defter"
    for p in PERIODS:
        write_month(ledgers / p, VKN, p)
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Merkez", "ali", "pw-1")
    with server.start_in_thread(data) as storage:
        wb = tmp_path / "k.xlsm"
        assert edefter("workbook", "new", wb).returncode == 0
        book = FileBook(wb)
        book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "Merkez",
                                   "user": "ali"}])
        book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": "http", "address": storage.url}])
        book.save()
        opts = actions.Options(journal=tmp_path / "j.sqlite3", retry_backoff=0.01, wait=20, poll=0.1)
        assert actions.backup(FileBook(wb), options=opts).count(S.BACKED_UP) == len(PERIODS)
        yield wb, opts


def test_durum_sorgula_asks_once_for_all_months(tmp_path, edefter, memory_keyring, monkeypatch):
    with backed_up(tmp_path, edefter) as (wb, opts):
        single, batch = [], []
        real_query, real_many = HttpTarget.query, HttpTarget.query_many
        monkeypatch.setattr(HttpTarget, "query", lambda self, key: single.append(key) or real_query(self, key))
        monkeypatch.setattr(HttpTarget, "query_many",
                            lambda self, keys, wait=0.0: batch.append(list(keys)) or real_many(self, keys, wait))
        db = sqlite3.connect(tmp_path / "j.sqlite3")
        before = db.execute("SELECT max(id) FROM attempts").fetchone()[0]
        db.close()
        transactions = []
        real_batch = Journal.batch
        monkeypatch.setattr(Journal, "batch", lambda self: transactions.append(1) or real_batch(self))
        summary = actions.query(FileBook(wb), options=opts)
    assert summary.count(S.BACKED_UP) == len(PERIODS), summary.results
    assert single == [] and len(batch) == 1 and sorted(k.period for k in batch[0]) == list(PERIODS)
    # the answered months are recorded together: one journal transaction, each month's question in it
    assert len(transactions) == 1
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    asked = db.execute("SELECT period, outcome FROM attempts WHERE action='query' AND id > ? ORDER BY period",
                       (before,)).fetchall()
    db.close()
    assert asked == [(p, S.code(S.BACKED_UP)) for p in PERIODS]
    rows = {r["period"]: r for r in FileBook(wb).read_rows(L.PERIODS)}
    assert all(rows[p]["status"] == S.BACKED_UP and rows[p]["reference"] for p in PERIODS)
    # months found as they were get no Günlük row each (the journal has the question): the summary row says it
    asked_rows = [r for r in FileBook(wb).read_rows(L.LOG) if r["action"] == actions.ACTION_QUERY]
    assert [(r["status"], r["message"]) for r in asked_rows] == [("Özet", summary.message)]
    assert summary.message.startswith(f"{len(PERIODS)} dönem yedeklendi")


def test_a_month_whose_status_changes_gets_its_günlük_row(tmp_path, edefter, memory_keyring):
    """Another computer's journal (empty) learns each month from the server: a change, so a row each."""
    with backed_up(tmp_path, edefter) as (wb, opts):
        other_pc = actions.Options(journal=tmp_path / "other.sqlite3", retry_backoff=0.01, wait=20, poll=0.1)
        summary = actions.query(FileBook(wb), options=other_pc)
    assert summary.count(S.BACKED_UP) == len(PERIODS), summary.results
    asked_rows = [r for r in FileBook(wb).read_rows(L.LOG) if r["action"] == actions.ACTION_QUERY]
    assert sorted(r["period"] for r in asked_rows if r["status"] == S.BACKED_UP) == list(PERIODS)
