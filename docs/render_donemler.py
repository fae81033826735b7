"""Render what `edefter demo` leaves for the README: its workbook's Dönemler sheet to
docs/img/donemler.png and its help sheet (Nasıl Kullanılır) to docs/img/yardim.png, headless. The demo
runs into a temporary folder exactly as a user runs it (sample months, its own storage server, Toplu
Yedekle, Durum Sorgula); then each sheet is copied alone into an .xlsx, LibreOffice converts it to PDF
and pdftoppm makes the PNG, cut to the used area (as docs/render_takvim.py does).

    python docs/render_donemler.py      (needs soffice and pdftoppm on PATH; pngquant/optipng shrink the PNGs)

The workbook's font is Calibri: without a font of Calibri's metrics LibreOffice falls back to a wider one
(DejaVu Sans) and the picture is not what Excel shows: the help sheet wraps elsewhere, Dönemler's dates
run into the next column. On Debian: apt-get install fonts-crosextra-carlito (Carlito has Calibri's
metrics); the script warns when no such font is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_takvim import _table_box

from edefter_helper.workbook import layout as L

IMG = Path(__file__).resolve().parent / "img"
SHA_WIDTH = 68  # the template's 20 shows a third of the hash: widened so the picture cuts no text


def _calibri_ok() -> bool:
    """Whether fontconfig has a font with Calibri's metrics (Calibri itself or Carlito)."""
    try:
        found = subprocess.run(["fc-match", "-f", "%{family}", "Calibri"], check=False, capture_output=True,
                               text=True, timeout=30).stdout
    except OSError:
        return True  # no fontconfig to ask (not Linux): LibreOffice finds fonts its own way
    return "calibri" in found.lower() or "carlito" in found.lower()


def _only_sheet(src: Path, name: str, dst: Path, *, landscape: bool) -> None:
    """Copy of the workbook holding only sheet `name`, its used area printed on one page wide."""
    wb = openpyxl.load_workbook(src)
    for other in list(wb.sheetnames):
        if other != name:
            del wb[other]
    ws = wb[name]
    ws.sheet_state = "visible"
    if name == L.PERIODS.name:
        sha = get_column_letter(L.PERIODS.index("sha256") + 1)
        ws.column_dimensions[sha].width = SHA_WIDTH
    ws.print_area = f"A1:{get_column_letter(ws.max_column)}{ws.max_row}"
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 1  # one page: one picture
    wb.save(dst)


def _render(xlsx: Path, out: Path, dpi: int) -> tuple[int, int]:
    """LibreOffice → PDF → PNG of the page's inked box; returns the PNG's size."""
    work = xlsx.parent
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(work), str(xlsx)],
                   check=True, capture_output=True, timeout=180)
    pdf = xlsx.with_suffix(".pdf")
    page = work / f"{xlsx.stem}-page"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", str(pdf), str(page)],
                   check=True, timeout=60)
    x, y, w, h = _table_box(page.with_suffix(".ppm"))
    png = work / f"{xlsx.stem}-crop"
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-x", str(x), "-y", str(y),
                    "-W", str(w), "-H", str(h), "-singlefile", str(pdf), str(png)], check=True, timeout=60)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png.with_suffix(".png"), out)
    if shutil.which("pngquant"):  # as docs/render_report.py: smaller, same text
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality=70-95", "--strip",
                        "--output", str(out), str(out)], check=False)
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", str(out)], check=False)
    return w, h


def main() -> int:
    if not _calibri_ok():
        print("Uyarı: Calibri ölçülerinde bir yazı tipi yok (Debian: apt-get install fonts-crosextra-carlito); "
              "LibreOffice daha geniş bir yazı tipi kullanır, resimler Excel'de görünenden farklı olur.",
              file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="donemler-"))
    env = dict(os.environ, EDEFTER_DATA_DIR=str(work / "data"))
    demo = work / "demo"
    subprocess.run([sys.executable, "-m", "edefter_helper", "demo", str(demo)], check=True, env=env,
                   cwd=work, stdout=subprocess.DEVNULL, timeout=600)
    book = demo / "kontrol.xlsm"
    # (sheet, file, landscape, dpi): Dönemler is wide (13 columns), the help sheet one tall column
    for name, stem, landscape, dpi in ((L.PERIODS.name, "donemler", True, 300),
                                       (L.HELP_SHEET, "yardim", False, 220)):
        xlsx = work / f"{stem}.xlsx"
        _only_sheet(book, name, xlsx, landscape=landscape)
        w, h = _render(xlsx, IMG / f"{stem}.png", dpi)
        print(f"{IMG / f'{stem}.png'} ({w}×{h} px)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
