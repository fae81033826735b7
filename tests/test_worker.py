"""The ribbon's background Toplu Yedekle: settings from a snapshot, results to the journal only, the
workbook (open in Excel) never written; Durumu Yenile then shows the results without scanning."""

from __future__ import annotations

import json

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from edefter_helper.workbook.snapshot import SnapshotBook, write_snapshot
from tests.conftest import nas_workbook

VKN = "4810525635"


def test_worker_backs_up_from_a_snapshot_and_never_touches_the_workbook(tmp_path, edefter):
    ledgers = tmp_path / "defter"
    for p in ("2024-01", "2024-02"):
        write_month(ledgers / p, VKN, p)
    wb, nas = nas_workbook(tmp_path, edefter, ledgers, VKN, firm={"auto": "Hayır"})
    journal = tmp_path / "j.sqlite3"
    assert edefter("refresh", "--workbook", wb, "--journal", journal).returncode == 0
    snapshot = write_snapshot(FileBook(wb), tmp_path / "ayarlar.json")
    assert SnapshotBook(snapshot).read_rows(L.FIRMS)[0]["vkn"] == VKN
    before = wb.read_bytes()

    proc = edefter("worker", "--settings", snapshot, "--journal", journal, "--all", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["status"] for r in json.loads(proc.stdout)["results"]] == [S.BACKED_UP] * 2
    assert wb.read_bytes() == before  # the workbook is only read
    assert len(list(nas.rglob("*.zip"))) == 2

    summary = actions.show_status(FileBook(wb), options=actions.Options(journal=journal))
    assert "2 dönemin durumu günlükten yenilendi" in summary.message
    rows = FileBook(wb).read_rows(L.PERIODS)
    assert [r["status"] for r in rows] == [S.BACKED_UP] * 2
    assert all(r["stage"] == "Onaylı Berat İndirildi" for r in rows)  # kept from the last scan

    bad = tmp_path / "bozuk.json"
    bad.write_text("{")
    proc = edefter("worker", "--settings", bad)
    assert proc.returncode == 2 and "Ayar dosyası okunamadı" in proc.stderr and "Traceback" not in proc.stderr
