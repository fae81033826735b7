"""A backed-up month whose files are then spoiled on disk (ransomware, a bad edit) before the next
Toplu Yedekle — the background agent runs one on its own. The month must not turn into
"Yedeklenemedi" and lose its alarm: the target still holds the earlier, verified files, the journal
keeps that copy, Dönemler says the backup is not the files on disk, and every later run (and
`edefter check-local`) keeps reporting the changed files with the way back (Geri Yükle)."""

from __future__ import annotations

import json

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

from test_backup_workbook import _fill, _new_workbook, _sheet_rows

VKN = "4810525635"


def _office(tmp_path, edefter, ledgers):
    """(klasör Hedef, workbook, options): one firm backing up to a folder."""
    store = tmp_path / "arsiv"
    store.mkdir()
    wb = _new_workbook(edefter, tmp_path / "kontrol.xlsm")
    _fill(wb, [{"name": "Anadolu Gıda A.Ş.", "vkn": VKN, "folder": str(ledgers), "target": "Arşiv",
                "auto": "Evet"}], [{"name": "Arşiv", "kind": "klasör", "address": str(store)}])
    return store, wb, actions.Options(journal=tmp_path / "gunluk.sqlite3", retry_backoff=0.01, wait=30, poll=0.1)


def test_spoiled_files_keep_the_backed_up_copy_and_the_alarm(tmp_path, edefter):
    ledgers = tmp_path / "defterler"
    month = write_month(ledgers, VKN, "2024-01")
    write_month(ledgers, VKN, "2024-02", seed=2)
    store, wb, opts = _office(tmp_path, edefter, ledgers)
    first = actions.backup(FileBook(wb), options=opts)
    assert first.count(S.BACKED_UP) == 2, first.results
    stored = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())

    # one byte more in the Kebir: still a ledger, still "Onaylı Berat İndirildi", no longer verifiable;
    # then the Yevmiye encrypted outright
    ledger = month.find("K")
    ledger.write_bytes(ledger.read_bytes().replace(b"</", b" </", 1))
    journal_file = month.find("Y")
    for run in range(3):  # the alarm stays: a later run is not quieter than the first
        if run == 2:
            journal_file.write_bytes(b"\x8f\x13 encrypted by ransomware " + journal_file.read_bytes()[:200])
        summary = actions.backup(FileBook(wb), options=opts)
        assert summary.failed == 0, summary.results
        if run < 2:
            result = {r.key.period: r for r in summary.results}
            assert result["2024-01"].status == S.CHANGED and "Geri Yükle" in result["2024-01"].message
        rows = {r["period"]: r for r in _sheet_rows(wb, L.PERIODS)}
        spoiled = rows["2024-01"]
        assert spoiled["status"] == S.CHANGED, spoiled
        assert ledger.name in spoiled["message"] and "Geri Yükle" in spoiled["message"]
        assert rows["2024-02"]["status"] == S.BACKED_UP
        log = _sheet_rows(wb, L.LOG)
        assert any(r["status"] == "Yerel Dosya Uyarısı" and r["message"] and ledger.name in r["message"]
                   for r in log)
        st = Journal(tmp_path / "gunluk.sqlite3").status(MonthKey(VKN, "0000", "2024-01"))
        assert st.status == S.BACKED_UP and st.package_sha256 == rows["2024-01"]["sha256"]
        # nothing was sent: the target still holds exactly the first packages
        assert sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file()) == stored

    proc = edefter("check-local", "--workbook", wb, "--json",
                   env_extra={"EDEFTER_JOURNAL": str(tmp_path / "gunluk.sqlite3")})
    assert "Traceback" not in proc.stderr, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert sorted((f["period"], f["file"]) for f in findings) == sorted(
        [("2024-01", ledger.name), ("2024-01", journal_file.name)]), findings


def test_gunluk_lists_a_local_finding_once_while_it_lasts(tmp_path, edefter):
    """Tara runs the local check every time: after ransomware on an office (~250 000 files) each Tara
    must not add every finding to Günlük again (Excel's 1 048 576 rows in four clicks). Dönemler shows
    them on every run; Günlük lists each when first seen, and again if it comes back after a fix."""
    ledgers = tmp_path / "defterler"
    month = write_month(ledgers, VKN, "2024-01")
    store, wb, opts = _office(tmp_path, edefter, ledgers)
    assert actions.backup(FileBook(wb), options=opts).count(S.BACKED_UP) == 1
    y, k = month.find("Y"), month.find("K")
    y_bytes, k_bytes = y.read_bytes(), k.read_bytes()

    def tara() -> list[str]:
        before = len(_sheet_rows(wb, L.LOG))
        actions.refresh(FileBook(wb), options=opts)
        assert _sheet_rows(wb, L.PERIODS)[0]["status"] in (S.CHANGED, S.BACKED_UP)
        return sorted(r["message"].split(":")[1].split("(")[0].strip()
                      for r in _sheet_rows(wb, L.LOG)[before:] if r["status"] == "Yerel Dosya Uyarısı")

    y.write_bytes(y_bytes[:500])
    assert tara() == [y.name]
    assert tara() == []  # still there: Dönemler says so, Günlük already did
    assert _sheet_rows(wb, L.PERIODS)[0]["status"] == S.CHANGED
    k.write_bytes(k_bytes + b" ")
    assert tara() == [k.name]  # only the new one
    y.write_bytes(y_bytes)
    assert tara() == []  # Y is whole again: forgotten
    y.write_bytes(y_bytes[:400])
    assert tara() == [y.name]  # it came back: listed again
    proc = edefter("check-local", "--workbook", wb, env_extra={"EDEFTER_JOURNAL": str(tmp_path / "gunluk.sqlite3")})
    assert proc.returncode == 1 and y.name in proc.stdout and k.name in proc.stdout  # the explicit check lists all
