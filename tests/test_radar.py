"""The office's radar: every cell derived from the scan, the journal and the deadline data, the Takvim
sheet and `radar --json` agreeing cell for cell, and an extension typed on Takvim Ayarları moving a
due date without a code change."""

from __future__ import annotations

import json
from datetime import date, datetime

from edefter_helper import actions, radar
from edefter_helper.samples import broken, write_month
from edefter_helper.status import month_label
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN = "7420300220"  # tüzel, aylık
TODAY = date(2026, 12, 8)


def _office(tmp_path, edefter):
    ledgers = tmp_path / "defter"
    nas = tmp_path / "NAS"
    nas.mkdir()
    for p in ("2026-03", "2026-05"):
        write_month(ledgers / p, VKN, p)
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Ege Tekstil", "vkn": VKN, "folder": str(ledgers), "target": "NAS",
                               "taxpayer": "Tüzel", "cadence": "Aylık", "owner": "Ayşe"}])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    journal = tmp_path / "j.sqlite3"
    assert actions.backup(FileBook(wb), options=actions.Options(journal=journal)).failed == 0
    write_month(ledgers / "2026-06", VKN, "2026-06")  # closed at GİB, not backed up
    for p in ("2026-07", "2026-08", "2026-09"):
        write_month(ledgers / p, VKN, p, gib=False)  # waiting for GİB
    half = write_month(ledgers / "2026-04", VKN, "2026-04")
    broken.remove_gib_berat(half, "GIB-KB")  # GİB's answer half downloaded
    changed = next((ledgers / "2026-03").glob("*-Y-000000.xml"))
    changed.write_bytes(changed.read_bytes()[:-10])  # damaged after its backup
    return wb, journal


def test_every_state_from_the_facts_and_the_sheet_agrees(tmp_path, edefter):
    wb, journal = _office(tmp_path, edefter)
    summary = actions.radar(FileBook(wb), options=actions.Options(journal=journal), today=TODAY, months=12)
    cells = {c["period"]: c for c in summary.extra["cells"]}
    assert cells["2026-05"]["state"] == radar.BACKED_UP
    assert cells["2026-06"]["state"] == radar.CLOSED and cells["2026-06"]["urgent"]
    assert cells["2026-07"]["state"] == radar.LATE and cells["2026-07"]["due"] == "2026-11-16"  # 14.11 a Saturday
    assert cells["2026-08"]["state"] == radar.MISSING and cells["2026-08"]["due"] == "2026-12-14"
    assert cells["2026-09"]["text"] == "Son gün 14.01.2027" and not cells["2026-09"]["urgent"]
    assert cells["2026-04"]["text"] == "Eksik: GIB-KB"
    assert cells["2026-03"]["state"] == radar.LOCAL
    assert cells["2026-01"]["state"] == radar.NONE  # before the firm's first month
    assert all(c["owner"] == "Ayşe" for c in cells.values())
    # the sheet says the same, cell for cell
    grid = list(FileBook(wb).wb[L.CALENDAR_SHEET].iter_rows(values_only=True))
    header, (row,) = grid[0], grid[1:]
    assert header[4:-1] == tuple(month_label(p) for p in summary.extra["periods"])
    assert row[:4] == ("Ege Tekstil", VKN, "0000", "Ayşe")
    assert list(row[4:-1]) == [cells[p]["text"] for p in summary.extra["periods"]]
    assert "Ağustos 2026" in row[-1] and "Eksik" in row[-1]  # the side column: what needs attention


def test_an_extension_typed_on_the_sheet_moves_the_due_date(tmp_path, edefter):
    wb, journal = _office(tmp_path, edefter)
    book = FileBook(wb)
    book.write_rows(L.CALENDAR_SETTINGS, [{"periods": "2026-07", "taxpayers": "Tüzel",
                                           "due": datetime(2026, 12, 15), "source": "GİB duyurusu (deneme)"}])
    book.save()
    summary = actions.radar(FileBook(wb), options=actions.Options(journal=journal), today=TODAY, months=12)
    july = {c["period"]: c for c in summary.extra["cells"]}["2026-07"]
    assert july["state"] != radar.LATE and july["due"] == "2026-12-15"
    assert "GİB süre uzatımı" in july["detail"]


def test_radar_cli_filters_and_json(tmp_path, edefter):
    wb, journal = _office(tmp_path, edefter)
    proc = edefter("radar", "--workbook", wb, "--journal", journal, "--json", "--sorumlu", "ayşe")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["cells"] and all(c["owner"] == "Ayşe" for c in data["cells"])
    proc = edefter("radar", "--workbook", wb, "--journal", journal, "--json", "--sorumlu", "Mehmet")
    assert json.loads(proc.stdout)["cells"] == []
    proc = edefter("radar", "--workbook", wb, "--journal", journal, "--months", "0")
    assert proc.returncode == 2 and "--months" in proc.stderr
