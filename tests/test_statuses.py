"""A month is Yedeklendi only while the target it names holds exactly the bytes of the current files:
statuses belong to (month, target identity), are rebuilt from the target on any PC, notice files
changed after a backup, and one run at a time. Real storage servers on loopback, real workbook files."""

from __future__ import annotations

import shutil
import socket
import threading

import pytest

from edefter_helper import actions, credentials, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN = "4810525635"
PERIODS = ("2024-01", "2024-02", "2024-03")


def _server(tmp_path, name):
    data = tmp_path / name
    server.add_user(data, "ali", "pw-1", [VKN])
    return server.start_in_thread(data)


def _workbook(tmp_path, edefter, ledgers, address, kind="http"):
    wb = tmp_path / "kontrol.xlsm"
    if not wb.exists():
        assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "Merkez",
                               "user": "ali"}])
    book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": kind, "address": address}])
    book.save()
    return wb


def _rows(wb):
    return {r["period"]: r for r in FileBook(wb).read_rows(L.PERIODS)}


def _opts(journal, **kw):
    return actions.Options(journal=journal, retry_backoff=0.01, wait=20, poll=0.1, **kw)


def _ledgers(tmp_path):
    ledgers = tmp_path / "defter"
    for p in PERIODS:
        write_month(ledgers / p, VKN, p)
    return ledgers


def test_changing_the_target_address_is_not_backed_up_on_the_new_one(tmp_path, edefter, memory_keyring):
    ledgers = _ledgers(tmp_path)
    credentials.set_password("Merkez", "ali", "pw-1")
    journal = tmp_path / "j.sqlite3"
    with _server(tmp_path, "eski") as old:
        wb = _workbook(tmp_path, edefter, ledgers, old.url)
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == 3
    with _server(tmp_path, "yeni") as new:
        _workbook(tmp_path, edefter, ledgers, new.url)  # the Hedef now points at an empty server
        actions.refresh(FileBook(wb), options=_opts(journal))
        rows = _rows(wb)
        assert all(r["status"] == S.NOT_SENT for r in rows.values())
        assert all("Hedef değişti" in r["message"] for r in rows.values())
        summary = actions.backup(FileBook(wb), options=_opts(journal))
        assert summary.count(S.BACKED_UP) == 3, summary.results
        assert {len(list((tmp_path / "yeni").rglob("*.zip")))} == {3}
    # the old target's history is kept
    identities = {st.target for st in Journal(journal).statuses()}
    assert len(identities) == 2 and all(i.startswith("http|http://127.0.0.1:") for i in identities)


def test_another_pc_rebuilds_statuses_from_the_target(tmp_path, edefter, memory_keyring):
    ledgers = _ledgers(tmp_path)
    credentials.set_password("Merkez", "ali", "pw-1")
    with _server(tmp_path, "sunucu") as srv:
        wb = _workbook(tmp_path, edefter, ledgers, srv.url)
        assert actions.backup(FileBook(wb), options=_opts(tmp_path / "pc1.sqlite3")).count(S.BACKED_UP) == 3
        first = _rows(wb)
        # the same workbook on another PC: an empty journal
        pc2 = tmp_path / "pc2.sqlite3"
        actions.refresh(FileBook(wb), options=_opts(pc2))
        rows = _rows(wb)
        assert all(r["status"] == S.BACKED_UP for r in rows.values())  # never downgraded for lack of records
        assert all("günlüğünde kaydı yok" in r["message"] for r in rows.values())
        summary = actions.query(FileBook(wb), options=_opts(pc2))  # asks about every listed month
        assert summary.count(S.BACKED_UP) == 3, summary.results
        rows = _rows(wb)
        for p in PERIODS:
            assert rows[p]["status"] == S.BACKED_UP and rows[p]["sha256"] == first[p]["sha256"]
            assert rows[p]["reference"] and "yedeklendi" in rows[p]["message"]
            st = Journal(pc2).status(MonthKey(VKN, "0000", p))
            assert st.status == S.BACKED_UP and st.package_sha256 == first[p]["sha256"]


def test_files_changed_after_backup_are_their_own_state(tmp_path, edefter, memory_keyring):
    ledgers = _ledgers(tmp_path)
    credentials.set_password("Merkez", "ali", "pw-1")
    journal = tmp_path / "j.sqlite3"
    with _server(tmp_path, "sunucu") as srv:
        wb = _workbook(tmp_path, edefter, ledgers, srv.url)
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == 3
        # GİB cancel and re-submission: February's files are replaced by another valid month
        shutil.rmtree(ledgers / "2024-02")
        write_month(ledgers / "2024-02", VKN, "2024-02", seed=7)
        actions.refresh(FileBook(wb), options=_opts(journal))
        rows = _rows(wb)
        assert rows["2024-02"]["status"] == S.CHANGED
        assert "Diskteki dosyalar yedeklenenden farklı" in rows["2024-02"]["message"]
        assert rows["2024-01"]["status"] == rows["2024-03"]["status"] == S.BACKED_UP
        # offered for sending again, never "Zaten yedeklendi"; the store-once server refuses a second package
        summary = actions.send(FileBook(wb), options=_opts(journal))
        by_period = {r.key.period: r for r in summary.results}
        assert "Zaten yedeklendi" not in by_period["2024-02"].message
        assert by_period["2024-02"].status == S.FAILED and "farklı bir paket" in by_period["2024-02"].message
        assert _rows(wb)["2024-02"]["status"] != S.BACKED_UP


def test_a_month_already_on_the_target_with_other_bytes_is_not_backed_up(tmp_path, edefter, memory_keyring):
    """Durum Sorgula on a fresh journal: the target holds a package for the month, but not these files."""
    ledgers = _ledgers(tmp_path)
    credentials.set_password("Merkez", "ali", "pw-1")
    with _server(tmp_path, "sunucu") as srv:
        wb = _workbook(tmp_path, edefter, ledgers, srv.url)
        assert actions.backup(FileBook(wb), options=_opts(tmp_path / "a.sqlite3")).count(S.BACKED_UP) == 3
        shutil.rmtree(ledgers / "2024-01")
        write_month(ledgers / "2024-01", VKN, "2024-01", seed=3)
        summary = actions.query(FileBook(wb), options=_opts(tmp_path / "b.sqlite3"))
        by_period = {r.key.period: r.status for r in summary.results}
        assert by_period == {"2024-01": S.CHANGED, "2024-02": S.BACKED_UP, "2024-03": S.BACKED_UP}


def test_two_runs_at_once_one_waits_or_says_so(tmp_path, edefter, memory_keyring):
    """A second run on the same journal and workbook does not start while the first holds them."""
    ledgers = _ledgers(tmp_path)
    nas = tmp_path / "NAS"
    nas.mkdir()
    wb = _workbook(tmp_path, edefter, ledgers, str(nas), kind="klasör")
    journal = tmp_path / "j.sqlite3"
    from filelock import FileLock

    held = FileLock(str(journal) + ".lock")
    held.acquire()
    try:
        with pytest.raises(actions.RunBusy, match="Başka bir yedekleme sürüyor"):
            actions.backup(FileBook(wb), options=_opts(journal, lock_wait=0.2))
        proc = edefter("backup", "--workbook", wb, "--journal", journal)
        assert proc.returncode == 3 and "Başka bir yedekleme sürüyor" in proc.stderr
        assert list(nas.rglob("*.zip")) == []
    finally:
        held.release()
    # a run waiting for another reads the workbook again: nobody's Günlük rows are lost
    release = threading.Event()
    lock = FileLock(str(journal) + ".lock")
    lock.acquire()
    results = []

    def second():
        results.append(actions.backup(FileBook(wb), options=_opts(journal, lock_wait=60)))

    t = threading.Thread(target=second)
    t.start()
    book = FileBook(wb)  # meanwhile the first run writes the workbook
    book.append_rows(L.LOG, [{"action": "Önceki", "message": "ilk çalışmanın satırı"}])
    book.save()
    lock.release()
    release.set()
    t.join(120)
    assert results and results[0].count(S.BACKED_UP) == 3
    messages = [r["message"] for r in FileBook(wb).read_rows(L.LOG)]
    assert "ilk çalışmanın satırı" in messages
    assert len(list(nas.rglob("*.zip"))) == 3


def test_an_unreachable_target_is_given_up_once(tmp_path, edefter, memory_keyring):
    ledgers = tmp_path / "defter"
    periods = [f"2023-{m:02d}" for m in range(1, 13)]
    for p in periods:
        write_month(ledgers / p, VKN, p, entries=4)
    credentials.set_password("Merkez", "ali", "pw-1")
    with socket.socket() as s:  # an address where nobody listens
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    wb = _workbook(tmp_path, edefter, ledgers, dead)
    summary = actions.backup(FileBook(wb), options=_opts(tmp_path / "j.sqlite3", parallel=1))
    tried = [r for r in summary.results if not r.blocked]
    assert len(tried) == 1 and tried[0].status == S.FAILED and "ulaşılamıyor" in tried[0].message
    assert summary.blocked == 11
    assert any("11 dönem denenmedi" in n for n in summary.notes)
    rows = _rows(wb)
    assert sum(1 for r in rows.values() if r["status"] == S.FAILED) == 1
