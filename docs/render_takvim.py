"""Render the Takvim (radar) sheet of a generated office to docs/img/takvim.png, headless: sample
months in every state, a real backup to a folder target, `actions.radar` through the file face (the
same sheet a user gets: colour rules, filter, each month's link to its Dönemler row), then LibreOffice
converts the sheet to PDF and pdftoppm makes the PNG, cut to the table.

    python docs/render_takvim.py        (needs soffice and pdftoppm on PATH)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edefter_helper import actions  # noqa: E402
from edefter_helper.addin.check import new_workbook  # noqa: E402
from edefter_helper.samples import broken, write_month  # noqa: E402
from edefter_helper.workbook import layout as L  # noqa: E402
from edefter_helper.workbook.file import FileBook  # noqa: E402

OUT = Path(__file__).resolve().parent / "img" / "takvim.png"
TODAY = date(2026, 12, 8)
MONTHS = 6  # Haziran–Kasım 2026
DPI = 200
# name, VKN, Mükellef Türü, Sorumlu, months on disk before the backup
FIRMS = [("Anadolu Gıda Ltd.", "1234567890", "Gerçek", "Mehmet", range(4, 7)),
         ("Ege Tekstil A.Ş.", "7420300220", "Tüzel", "Ayşe", range(4, 8)),
         ("Karadeniz Lojistik", "4810525635", "Tüzel", "Zeynep", ()),
         ("Marmara İnşaat", "3880412757", "Tüzel", "Ayşe", range(4, 9))]


def _month(ledgers: Path, vkn: str, m: int, **kw):
    return write_month(ledgers / vkn / f"2026-{m:02d}", vkn, f"2026-{m:02d}", entries=4, **kw)


def _table_box(ppm: Path) -> tuple[int, int, int, int]:
    """(x, y, width, height) of what is not white on a binary PPM page (pdftoppm's default output)."""
    data = ppm.read_bytes()
    parts = data.split(b"\n", 3)  # P6, "W H", 255, pixels
    width, height = map(int, parts[1].split())
    pixels, stride = parts[3], width * 3
    left, right, top, bottom = width, 0, None, 0
    for y in range(height):
        row = pixels[y * stride:(y + 1) * stride]
        inked = row.strip(b"\xff")
        if not inked:
            continue
        top = y if top is None else top
        bottom = y
        left = min(left, (len(row) - len(row.lstrip(b"\xff"))) // 3)
        right = max(right, (len(row.rstrip(b"\xff")) - 1) // 3)
    if top is None:
        raise SystemExit("LibreOffice printed an empty page")
    pad = 12
    x, y = max(left - pad, 0), max(top - pad, 0)
    return x, y, min(right + pad, width - 1) - x + 1, min(bottom + pad, height - 1) - y + 1


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="takvim-"))
    os.environ["EDEFTER_DATA_DIR"] = str(work / "data")
    ledgers, nas = work / "defter", work / "NAS"
    nas.mkdir(parents=True)
    for _, vkn, _, _, months in FIRMS:
        for m in months:
            _month(ledgers, vkn, m)
    wb_path = new_workbook(work / "kontrol.xlsm")
    book = FileBook(wb_path)
    book.write_rows(L.FIRMS, [{"name": n, "vkn": v, "folder": str(ledgers), "target": "NAS", "taxpayer": t,
                               "owner": o} for n, v, t, o, _ in FIRMS])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    opts = actions.Options(journal=work / "j.sqlite3")
    actions.backup(FileBook(wb_path), options=opts)
    # after the backup, every state the radar knows:
    anadolu, ege, karadeniz, marmara = (f[1] for f in FIRMS)
    half = _month(ledgers, anadolu, 7)  # GİB's answer half downloaded: Eksik: GIB-KB
    broken.remove_gib_berat(half, "GIB-KB")
    for m in (8, 9, 10):
        _month(ledgers, anadolu, m, gib=False)  # August: gerçek, due 10.12 (in 2 days), not closed
    _month(ledgers, ege, 8)  # closed at GİB, not backed up
    for m in (9, 10):
        _month(ledgers, ege, m, gib=False)  # waiting for GİB, due in January / February
    for m in (7, 8, 9):
        _month(ledgers, karadeniz, m, gib=False)  # a new firm (— before July): July's deadline has passed
    changed = next((ledgers / marmara / "2026-06").glob("*-Y-000000.xml"))
    changed.write_bytes(changed.read_bytes()[:-10])  # damaged after its backup: Yerel dosya değişti
    for m in (9, 10):
        _month(ledgers, marmara, m, gib=False)
    actions.radar(FileBook(wb_path), options=opts, today=TODAY, months=MONTHS)

    wb = openpyxl.load_workbook(wb_path)
    for name in list(wb.sheetnames):
        if name != L.CALENDAR_SHEET:
            del wb[name]
    ws = wb[L.CALENDAR_SHEET]
    for cell in ws[1]:
        cell.font = openpyxl.styles.Font(name="Calibri", bold=True)
    first, last = 5, 4 + MONTHS  # the months; the Dikkat column is long text
    for c in range(first, last + 1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(c)].width = 24
    ws.column_dimensions["A"].width = 20
    ws.print_area = f"A1:{openpyxl.utils.get_column_letter(last)}{ws.max_row}"
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    xlsx = work / "takvim.xlsx"
    wb.save(xlsx)
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(work), str(xlsx)],
                   check=True, capture_output=True, timeout=180)
    pdf = work / "takvim.pdf"
    subprocess.run(["pdftoppm", "-r", str(DPI), "-f", "1", "-l", "1", "-singlefile", str(pdf), str(work / "page")],
                   check=True, timeout=60)
    x, y, w, h = _table_box(work / "page.ppm")
    subprocess.run(["pdftoppm", "-png", "-r", str(DPI), "-f", "1", "-l", "1", "-x", str(x), "-y", str(y),
                    "-W", str(w), "-H", str(h), "-singlefile", str(pdf), str(work / "takvim")], check=True, timeout=60)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "takvim.png", OUT)
    print(f"{OUT} ({w}×{h} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
