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
from edefter_helper.workbook.calendar_format import Link
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


# ---------------------------------------------------------------- one click to the month's Dönemler row

FIRMS = [("Zeytin Gıda", "1234567890", "Mehmet"), ("ege Tekstil", VKN, "Ayşe"), ("Marmara İnşaat", "3880412757", "Ayşe")]


def _linked_office(tmp_path, edefter):
    """Three firms whose names sort otherwise than their VKNs, one with a branch, months in mixed
    states, one backed-up month whose folder is gone (Dönemler keeps it from the journal)."""
    ledgers, nas = tmp_path / "defter", tmp_path / "NAS"
    nas.mkdir()
    for i, (_, vkn, _) in enumerate(FIRMS):
        for m in range(3, 7 + i):
            write_month(ledgers / vkn / f"2026-{m:02d}", vkn, f"2026-{m:02d}")
    write_month(ledgers / "sube" / "2026-05", VKN, "2026-05", branch="0001", branch_in_name=True)
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": n, "vkn": v, "folder": str(ledgers), "target": "NAS", "taxpayer": "Tüzel",
                               "owner": o} for n, v, o in FIRMS])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    journal = tmp_path / "j.sqlite3"
    assert actions.backup(FileBook(wb), options=actions.Options(journal=journal)).failed == 0
    import shutil

    shutil.rmtree(ledgers / FIRMS[0][1] / "2026-04")  # backed up, then its folder removed
    write_month(ledgers / VKN / "2026-08", VKN, "2026-08", gib=False)  # waiting for GİB, not backed up
    return wb, journal


def _dönemler_keys(wb) -> dict[tuple[str, str, str], int]:
    ws = wb[L.PERIODS.name]
    col = {c.value: c.column - 1 for c in ws[1]}
    return {(r[col["VKN/TCKN"]], r[col["Şube No"]], r[col["Dönem"]]): i
            for i, r in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2) if r[col["Dönem"]]}


def test_every_month_cell_links_to_its_dönemler_row(tmp_path, edefter):
    wb_path, journal = _linked_office(tmp_path, edefter)
    summary = actions.radar(FileBook(wb_path), options=actions.Options(journal=journal), today=TODAY, months=12)
    periods = summary.extra["periods"]
    wb = FileBook(wb_path).wb  # the saved file, read back
    listed = _dönemler_keys(wb)
    dn, tk = wb[L.PERIODS.name], wb[L.CALENDAR_SHEET]
    assert ("1234567890", "0000", "2026-04") in listed and ("7420300220", "0001", "2026-05") in listed
    linked = set()
    for row in tk.iter_rows(min_row=2):
        vkn, branch = row[1].value, row[2].value
        for cell, period in zip(row[4:4 + len(periods)], periods):
            key = (vkn, branch, period)
            if cell.hyperlink is None:
                assert key not in listed, key  # only a month Dönemler does not list has no link
                continue
            sheet, _, ref = cell.hyperlink.location.rpartition("!")
            assert sheet == "'Dönemler'" and ref == f"A{listed[key]}", (key, cell.hyperlink.location)
            target = dn[ref[1:]]  # that row, read: the firm, the branch, the month of the cell
            assert (target[1].value, target[2].value, target[3].value) == key
            assert target[0].value == row[0].value
            assert cell.value == cell.hyperlink.display  # the cell still shows (and filters on) its word
            linked.add(key)
    assert linked == {k for k in listed if k[2] in periods}
    assert len(linked) == 4 + 6 + 6 + 1  # every month on disk or in the journal, all in the window
    assert tk.auto_filter.ref == f"A1:{tk.cell(1, tk.max_column).column_letter}{tk.max_row}"


def test_a_second_radar_leaves_no_stale_link(tmp_path, edefter):
    wb_path, journal = _linked_office(tmp_path, edefter)
    opts = actions.Options(journal=journal)
    actions.radar(FileBook(wb_path), options=opts, today=TODAY, months=12)
    book = FileBook(wb_path)
    book.write_rows(L.FIRMS, [r for r in book.read_rows(L.FIRMS) if r["vkn"] != VKN])  # a firm leaves
    book.save()
    actions.radar(FileBook(wb_path), options=opts, today=TODAY, months=6)
    wb = FileBook(wb_path).wb
    listed = _dönemler_keys(wb)
    tk = wb[L.CALENDAR_SHEET]
    links = [c for row in tk.iter_rows() for c in row if c.hyperlink is not None]
    assert links and tk.max_row == 3 and tk.max_column == 4 + 6 + 1
    for c in links:
        vkn, branch = tk.cell(c.row, 2).value, tk.cell(c.row, 3).value
        period = next(p for p in listed if p[0] == vkn and p[1] == branch and month_label(p[2]) ==
                      tk.cell(1, c.column).value)
        assert c.hyperlink.location == f"'Dönemler'!A{listed[period]}"


def _radar_bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "radar_bench.py"
    spec = importlib.util.spec_from_file_location("radar_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_live_face_writes_the_same_links_as_hyperlink_formulas(tmp_path, edefter, monkeypatch):
    from edefter_helper import excel

    wb_path, journal = _linked_office(tmp_path, edefter)
    written = []
    plain = FileBook.write_grid
    monkeypatch.setattr(FileBook, "write_grid", lambda self, name, rows: (written.append(rows), plain(self, name, rows)))
    actions.radar(FileBook(wb_path), options=actions.Options(journal=journal), today=TODAY, months=12)
    fake = _radar_bench().RecordingBook()
    excel.XlwingsBook(fake).write_grid(L.CALENDAR_SHEET, written[0])
    live = fake.sheets[L.CALENDAR_SHEET].grid
    assert fake.sheets[L.CALENDAR_SHEET].log.count("write") == 1
    saved = FileBook(wb_path).wb[L.CALENDAR_SHEET]
    formulas = 0
    for row in saved.iter_rows():
        for c in row:
            value = live.get((c.row, c.column))
            if c.hyperlink is None:
                assert value == c.value  # text as text: "0000" stays "0000" (the apostrophe is Excel's prefix)
                continue
            assert value == f'=HYPERLINK("#{c.hyperlink.location}","{c.value}")'
            formulas += 1
    assert formulas == 17
    assert Link('Eksik: "GIB-KB"', "Dönemler", 7).formula() == '=HYPERLINK("#\'Dönemler\'!A7","Eksik: ""GIB-KB""")'
    assert str(Link("Yedeklendi", "Dönemler", 2)) == "Yedeklendi"


def test_live_face_range_calls_do_not_grow_with_firms():
    bench = _radar_bench()
    counts = {}
    for n in (10, 300):
        rows = bench.takvim_rows(*bench.office(n), months=15)
        counts[n], log, fake = bench.xlwings_calls(rows)
        assert log.count("write") == 1
        assert fake.sheets[L.CALENDAR_SHEET].grid[(2, 5)].startswith("=HYPERLINK(\"#'Dönemler'!A")
    assert counts[10] == counts[300], counts
