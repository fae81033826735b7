"""Render the Takvim (radar) sheet of a generated office to docs/img/takvim.png, headless:
sample months in mixed states, a real backup to a folder target, `actions.radar`, then LibreOffice
converts the sheet (only it) to PNG. Run: python docs/render_takvim.py (needs soffice on PATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import openpyxl

from edefter_helper import actions
from edefter_helper.addin.check import new_workbook
from edefter_helper.samples import broken, write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

OUT = Path(__file__).resolve().parent / "img" / "takvim.png"
TODAY = date(2026, 12, 8)
FIRMS = [("Ege Tekstil A.Ş.", "7420300220", "Tüzel", "Ayşe"), ("Anadolu Gıda Ltd.", "1234567890", "Tüzel", "Mehmet"),
         ("Marmara İnşaat", "3880412757", "Tüzel", "Ayşe")]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="takvim-"))
    os.environ["EDEFTER_DATA_DIR"] = str(work / "data")
    ledgers, nas = work / "defter", work / "NAS"
    nas.mkdir(parents=True)
    for i, (_, vkn, _, _) in enumerate(FIRMS):
        for m in range(1, 6 + i):
            write_month(ledgers / vkn / f"2026-{m:02d}", vkn, f"2026-{m:02d}", entries=4)
    wb_path = new_workbook(work / "kontrol.xlsm")
    book = FileBook(wb_path)
    book.write_rows(L.FIRMS, [{"name": n, "vkn": v, "folder": str(ledgers), "target": "NAS", "taxpayer": t,
                               "owner": o} for n, v, t, o in FIRMS])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    opts = actions.Options(journal=work / "j.sqlite3")
    actions.backup(FileBook(wb_path), options=opts)
    # after the backup: months GİB closed but not yet sent, months waiting for GİB, a half download
    for i, (_, vkn, _, _) in enumerate(FIRMS):
        write_month(ledgers / vkn / "2026-08", vkn, "2026-08", entries=4)
        for m in (9, 10):
            write_month(ledgers / vkn / f"2026-{m:02d}", vkn, f"2026-{m:02d}", entries=4, gib=False)
    half = write_month(ledgers / FIRMS[1][1] / "2026-07", FIRMS[1][1], "2026-07", entries=4)
    broken.remove_gib_berat(half, "GIB-KB")
    actions.radar(FileBook(wb_path), options=opts, today=TODAY, months=12)

    wb = openpyxl.load_workbook(wb_path)
    for name in list(wb.sheetnames):
        if name != L.CALENDAR_SHEET:
            del wb[name]
    ws = wb[L.CALENDAR_SHEET]
    for cell in ws[1]:
        cell.font = openpyxl.styles.Font(name="Calibri", bold=True)
    for col in "EFGHIJKLMNOP":
        ws.column_dimensions[col].width = 22
    last = openpyxl.utils.get_column_letter(ws.max_column - 1)  # the months; the Dikkat column is long text
    ws.print_area = f"A1:{last}{ws.max_row}"
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    xlsx = work / "takvim.xlsx"
    wb.save(xlsx)
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(work), str(xlsx)],
                   check=True, capture_output=True, timeout=180)
    # the page at 130 dpi, cut to the table (landscape A4: 1520 px wide)
    subprocess.run(["pdftoppm", "-png", "-r", "130", "-f", "1", "-l", "1", "-x", "40", "-y", "118", "-W", "1440",
                    "-H", "70", "-singlefile", str(work / "takvim.pdf"), str(work / "takvim")], check=True, timeout=60)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "takvim.png", OUT)
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
