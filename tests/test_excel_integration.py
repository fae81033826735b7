"""The ribbon's Python side with the real actions: the recording xlwings stand-in (Excel cannot run
here) holds the sheets; the months, journal and folder target are real."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edefter_helper import excel
from edefter_helper import status as S
from edefter_helper.journal import Journal
from edefter_helper import paths
from edefter_helper.samples import broken, write_month
from edefter_helper.workbook import layout
from tests.test_excel_adapter import FakeBook

VKN = "4810525635"


def _put(book: FakeBook, sheet: layout.Sheet, rows: list[dict]) -> None:
    grid = book.sheets[sheet.name].grid
    for c, col in enumerate(sheet.columns, start=1):
        grid[(1, c)] = col.header
        for r, row in enumerate(rows, start=2):
            if row.get(col.key) is not None:
                grid[(r, c)] = row[col.key]


def _rows(book: FakeBook, sheet: layout.Sheet) -> list[dict]:
    grid = book.sheets[sheet.name].grid
    out = []
    r = 2
    while any(grid.get((r, c)) not in (None, "") for c in range(1, len(sheet.columns) + 1)):
        out.append({col.key: grid.get((r, c)) for c, col in enumerate(sheet.columns, start=1)})
        r += 1
    return out


def _wait_for_worker(periods: set[str], guard: float = 300) -> None:
    """The background worker's results appear in the journal (a hang guard, not a speed check)."""
    import time

    end = time.monotonic() + guard
    while time.monotonic() < end:
        path = paths.journal_path()
        if path.exists():
            j = Journal(path)
            try:
                done = {s.key.period for s in j.statuses()}
                busy = j.open_attempts()
            finally:
                j.close()
            if periods <= done and not busy:
                lock = Path(str(path) + ".lock")
                from filelock import FileLock

                with FileLock(str(lock)):  # the worker has finished its run
                    return
        time.sleep(0.2)
    raise AssertionError("the background worker did not finish")


def test_ribbon_buttons_back_up_through_the_real_actions(tmp_path, monkeypatch):
    write_month(tmp_path / "defter" / "a", VKN, "2024-01")
    bad = write_month(tmp_path / "defter" / "b", VKN, "2024-02")
    broken.berat_signature_mismatch(bad, "KB")
    nas = tmp_path / "nas"
    nas.mkdir()
    book = FakeBook()
    _put(book, layout.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(tmp_path / "defter"),
                                "target": "NAS", "auto": "Evet"}])
    _put(book, layout.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    _put(book, layout.PERIODS, [])
    _put(book, layout.LOG, [])
    monkeypatch.setattr(excel, "_caller", lambda: book)

    message = excel.refresh()
    assert message == "2 dönem bulundu."
    rows = {r["period"]: r for r in _rows(book, layout.PERIODS)}
    assert rows["2024-01"]["status"] == S.NOT_SENT and rows["2024-02"]["validation"] == layout.INVALID

    message = excel.backup()  # handed to a background worker: returns at once
    assert message.startswith("2 dönem kuyruğa alındı")  # the invalid one too: it ends Yedeklenemedi, with why
    _wait_for_worker({"2024-01", "2024-02"})
    message = excel.show_status()
    assert "durumu günlükten yenilendi" in message
    assert book.app.status[-1].startswith("e-Defter: durumlar")  # the last reading stays in the status bar
    rows = {r["period"]: r for r in _rows(book, layout.PERIODS)}
    assert rows["2024-01"]["status"] == S.BACKED_UP
    assert rows["2024-02"]["status"] == S.FAILED and "Çapraz Doğrulama" in rows["2024-02"]["message"]
    (stored,) = list(nas.rglob("*.zip"))
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == rows["2024-01"]["sha256"]

    excel.query()
    journal = Journal(paths.journal_path())
    assert {s.key.period: s.status for s in journal.statuses()} == {"2024-01": S.BACKED_UP,
                                                                     "2024-02": S.FAILED}
    log = _rows(book, layout.LOG)
    assert {"Tara", "Durum Sorgula"} <= {r["action"] for r in log}  # the background run's record is the journal


def _backed_up_to_a_nas(tmp_path, monkeypatch) -> tuple[FakeBook, dict[str, bytes]]:
    """One month backed up through the ribbon (Toplu Yedekle in the background) to a klasör Hedef."""
    month = write_month(tmp_path / "defter" / "a", VKN, "2024-01")
    original = {p.name: p.read_bytes() for p in month}
    nas = tmp_path / "nas"
    nas.mkdir()
    book = FakeBook()
    _put(book, layout.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(tmp_path / "defter"),
                                "target": "NAS", "auto": "Evet"}])
    _put(book, layout.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    _put(book, layout.PERIODS, [])
    _put(book, layout.LOG, [])
    monkeypatch.setattr(excel, "_caller", lambda: book)
    excel.refresh()
    assert excel.backup().startswith("1 dönem kuyruğa alındı")
    _wait_for_worker({"2024-01"})
    return book, original


def test_ribbon_restore_button_brings_the_months_back(tmp_path, monkeypatch):
    """Geri Yükle / İbraz Paketi through the ribbon's Python path: the folder is asked for, the
    selected months (here: all) come back verified with the report."""
    import shutil

    book, original = _backed_up_to_a_nas(tmp_path, monkeypatch)
    shutil.rmtree(tmp_path / "defter")

    monkeypatch.setattr(excel, "_ask_folder", lambda prompt: None)  # cancelled: nothing happens
    assert "hiçbir şey geri yüklenmedi" in excel.restore()
    out = tmp_path / "ibraz"
    monkeypatch.setattr(excel, "_ask_folder", lambda prompt: str(out))
    message = excel.restore()
    assert message.startswith("1 dönem geri yüklendi") and "ibraz-raporu.html" in message
    back = {p.name: p.read_bytes() for p in out.rglob("*.xml")}
    assert back == original
    assert (out / "ibraz-raporu.html").is_file()
    # a second click into the same, now full, folder asks first; no: nothing is touched
    asked = []
    monkeypatch.setattr(excel, "_ask_yes_no", lambda prompt: asked.append(prompt) or False)
    message = excel.restore()
    assert "boş değil" in message and len(asked) == 1 and str(out) in asked[0]
    assert book.app.alerts[-1][2] != "critical"  # the user's own choice
    assert sorted(p.name for p in out.glob("ibraz-raporu*")) == ["ibraz-raporu.html"]
    # yes (a restore cut short is completed this way): the files already there are the same bytes, a
    # missing one comes back, and the new report stands beside the first
    gone = next(out.rglob("*-K-*.xml"))
    gone.unlink()
    monkeypatch.setattr(excel, "_ask_yes_no", lambda prompt: True)
    message = excel.restore()
    assert message.startswith("1 dönem geri yüklendi"), message
    assert {p.name: p.read_bytes() for p in out.rglob("*.xml")} == original
    assert sorted(p.name for p in out.glob("ibraz-raporu*")) == ["ibraz-raporu-2.html", "ibraz-raporu.html"]


def test_ribbon_restore_on_another_computer_asks_the_target_from_a_month(tmp_path, monkeypatch):
    """After a loss, on a computer whose journal and Dönemler know no month: the button asks from which
    month to ask the target, and every Firmalar firm's months come back from it."""
    import shutil

    book, original = _backed_up_to_a_nas(tmp_path, monkeypatch)
    shutil.rmtree(tmp_path / "defter")  # the disk is lost; the NAS and the workbook are left
    monkeypatch.setenv("EDEFTER_JOURNAL", str(tmp_path / "yeni-pc.sqlite3"))  # another computer
    grid = book.sheets[layout.PERIODS.name].grid
    for cell in [cell for cell in grid if cell[0] >= 2]:  # a workbook that lists no month either
        del grid[cell]

    out = tmp_path / "ibraz"
    monkeypatch.setattr(excel, "_ask_folder", lambda prompt: str(out))
    asked = []
    monkeypatch.setattr(excel, "_ask_text", lambda prompt: asked.append(prompt) or None)  # cancelled
    # rows picked on Dönemler, of a firm no longer in Firmalar: said, and nothing else is asked
    from edefter_helper.engine.model import MonthKey

    with monkeypatch.context() as mp:
        mp.setattr(excel.XlwingsBook, "selected_keys", lambda self: [MonthKey("1111111111", "0000", "2024-01")])
        assert "Geri yüklenecek dönem bulunamadı" in excel.restore() and asked == []
    assert "hiçbir şey geri yüklenmedi" in excel.restore() and len(asked) == 1
    monkeypatch.setattr(excel, "_ask_text", lambda prompt: "2024-13")
    message = excel.restore()
    assert "Geçersiz ay" in message and book.app.alerts[-1][2] == "critical"
    assert not out.exists() or not any(out.iterdir())
    monkeypatch.setattr(excel, "_ask_text", lambda prompt: " 2023-11 ")
    message = excel.restore()
    assert message.startswith("1 dönem geri yüklendi"), message
    assert {p.name: p.read_bytes() for p in out.rglob("*.xml")} == original
    assert (out / "ibraz-raporu.html").is_file()
