"""The headless face: a control workbook file read and written with openpyxl.

Saves go through `xlsm.save` (atomic, ribbon and VBA kept intact). Cells are addressed by the
header row, so a user may reorder columns; missing headers are added at the end.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.workbook import layout as L
from edefter_helper.workbook import xlsm


class WorkbookError(Exception):
    """Turkish message: the file cannot be used."""


CONTROL_SUFFIX = ".xlsm"
# what a killed save leaves beside the workbook: xlsm.write_atomic's and the upgrade's temporaries
# (tempfile.mkstemp: 8 characters from [a-z0-9_]); never the user's files, nor Excel's ~$ or
# LibreOffice's .~lock.…# lock files
_TEMP_NAMES = (re.compile(r"\.~[a-z0-9_]{8}(?i:\.xlsm)"), re.compile(r"\.~yukselt-[a-z0-9_]{8}(?i:\.xlsm)"))
_TEMP_MIN_AGE = 60.0  # seconds: a save in progress elsewhere is never this old


def not_a_control_workbook(path: Path) -> str | None:
    """Why `path` is not an e-Defter control workbook (Turkish), or None when it is one: a .xlsm with
    a VBA project and the ribbon (customUI). Only read, never written."""
    if path.suffix.lower() != CONTROL_SUFFIX:
        return f"uzantısı {path.suffix or '(yok)'}, kontrol çalışma kitabı .xlsm olur"
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            rels = zf.read(xlsm.ROOT_RELS) if xlsm.ROOT_RELS in names else b""
    except (zipfile.BadZipFile, EOFError, KeyError, ValueError):
        return "dosya bozuk ya da bir Excel çalışma kitabı değil"
    except OSError as exc:
        return f"dosya okunamadı ({exc.strerror or exc})"
    if xlsm.VBA_PART not in names:
        return "içinde makro projesi (VBA) yok"
    try:
        ribbon = [r for r in xlsm.ribbon_relationships(rels) if r[2] in names] if rels else []
    except Exception:  # noqa: BLE001 - lxml raises several kinds for a damaged part
        ribbon = []
    if not ribbon:
        return "içinde e-Defter şeridi (customUI) yok"
    return None


def _refusal(path: Path, why: str) -> str:
    return (f"Çalışma kitabı açılamadı: {path.name} bir e-Defter kontrol çalışma kitabı değil ({why}). Dosyaya "
            f"dokunulmadı. Yeni bir kontrol çalışma kitabı için: edefter workbook new DOSYA.xlsm")


def read_only(path: Path) -> bool:
    """The file's read-only flag (POSIX: no owner write bit; Windows: the read-only attribute) — the
    user's own decision, honoured even by a user (root, an administrator) who could write anyway."""
    try:
        return not (path.stat().st_mode & stat.S_IWUSR)
    except OSError:
        return False


class FileBook:
    def __init__(self, path: str | Path, progress_stream=None):
        self.path = Path(path)
        self._opened = time.time()
        self.reload()
        self.progress_stream = progress_stream if progress_stream is not None else sys.stderr

    def reload(self) -> None:
        """Read the file again (a run that waited for another one must not write back a stale copy);
        a file unchanged since it was read is not read twice."""
        if not self.path.is_file():
            raise WorkbookError(f"Çalışma kitabı bulunamadı: {self.path}")
        st = self.path.stat()
        stamp = (st.st_size, st.st_mtime_ns, getattr(st, "st_ino", 0))
        if getattr(self, "_stamp", None) == stamp:
            return
        why = not_a_control_workbook(self.path)
        if why:
            raise WorkbookError(_refusal(self.path, why))
        try:
            self.wb = xlsm.load(self.path)
            self._stamp = stamp
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
            raise WorkbookError(f"Çalışma kitabı açılamadı ({self.path.name}): {exc}") from None

    # -- helpers ----------------------------------------------------------------------------

    def _sheet(self, sheet: L.Sheet, create: bool = False):
        if sheet.name in self.wb.sheetnames:
            return self.wb[sheet.name]
        if not create:
            return None
        ws = self.wb.create_sheet(sheet.name)
        ws.append(sheet.headers)
        return ws

    def _columns(self, ws, sheet: L.Sheet) -> dict[str, int]:
        """Column key -> 1-based column, by header text."""
        headers = {}
        for cell in ws[1]:
            if cell.value is not None:
                headers[str(cell.value).strip()] = cell.column
        cols = {}
        next_col = ws.max_column + 1 if headers else 1
        for col in sheet.columns:
            found = next((headers[h] for h in (col.header, *col.old_headers) if h in headers), None)
            if found is not None:
                cols[col.key] = found
            else:
                ws.cell(row=1, column=next_col, value=col.header)
                cols[col.key] = next_col
                next_col += 1
        return cols

    # -- Book protocol ------------------------------------------------------------------------

    def read_rows(self, sheet: L.Sheet) -> list[dict]:
        ws = self._sheet(sheet)
        if ws is None:
            return []
        cols = self._columns(ws, sheet)
        rows = []
        for values in ws.iter_rows(min_row=2, values_only=True):
            row = {key: (values[c - 1] if c - 1 < len(values) else None) for key, c in cols.items()}
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in row.values()):
                continue
            rows.append(row)
        return rows

    def write_rows(self, sheet: L.Sheet, rows: list[dict]) -> None:
        ws = self._sheet(sheet, create=True)
        cols = self._columns(ws, sheet)
        old_last = ws.max_row
        # overwrite in place and drop only the surplus rows: deleting 10 000 rows first makes
        # openpyxl shift every cell
        self._append(ws, sheet, cols, rows, start=2, overwrite=True)
        if old_last > len(rows) + 1:
            ws.delete_rows(len(rows) + 2, old_last - len(rows) - 1)

    def append_rows(self, sheet: L.Sheet, rows: list[dict]) -> None:
        ws = self._sheet(sheet, create=True)
        cols = self._columns(ws, sheet)
        last = ws.max_row
        while last > 1 and all(c.value is None for c in ws[last]):
            last -= 1
        self._append(ws, sheet, cols, rows, start=last + 1)

    def _append(self, ws, sheet: L.Sheet, cols: dict[str, int], rows: list[dict], start: int,
                overwrite: bool = False) -> None:
        formats = {c.key: c.number_format for c in sheet.columns if c.number_format}
        for r, row in enumerate(rows, start=start):
            for key, c in cols.items():
                value = row.get(key)
                if value is None or value == "":
                    if overwrite and ws.cell(row=r, column=c).value is not None:
                        ws.cell(row=r, column=c).value = None
                    continue
                cell = ws.cell(row=r, column=c, value=value)
                fmt = formats.get(key)
                if fmt and (fmt == "@" or isinstance(value, datetime)):
                    cell.number_format = fmt

    def write_grid(self, name: str, rows: list[list]) -> None:
        """A whole free-form sheet (header row first), through `calendar_format.write_sheet`: values, a
        `Link` as its text with an internal hyperlink, the colour rules and a filter."""
        from edefter_helper.workbook.calendar_format import write_sheet

        if name in self.wb.sheetnames:
            ws = self.wb[name]
            if ws.max_row:
                ws.delete_rows(1, ws.max_row)
        else:
            ws = self.wb.create_sheet(name)
        write_sheet(ws, rows)

    def selected_keys(self) -> list[MonthKey] | None:
        return None

    def progress(self, text: str) -> None:
        stream = self.progress_stream
        if stream is None or not getattr(stream, "isatty", lambda: False)():
            return
        stream.write(f"\r{text[:100]:<100}" if text else "\r" + " " * 100 + "\r")
        stream.flush()

    def check_writable(self) -> None:
        """Refuse before any work when the results could not be written: a read-only workbook (the
        user's decision), a folder without write permission (the save writes a file beside it)."""
        if read_only(self.path):
            raise WorkbookError(f"Çalışma kitabı salt okunur: {self.path.name}; içine yazılmadı. Sonuçların "
                                f"yazılması için dosyanın salt okunur özelliğini kaldırın.")
        folder = self.path.resolve().parent
        if os.name != "nt" and not os.access(folder, os.W_OK):
            raise WorkbookError(_no_permission(folder))

    def clean_stale_temporaries(self) -> list[Path]:
        """Remove what a save killed midway (power cut, kill -9) left beside the workbook: our own
        temporary names only, older than this run and than a minute."""
        removed = []
        folder = self.path.resolve().parent
        limit = min(self._opened, time.time() - _TEMP_MIN_AGE)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return removed
        for entry in entries:
            if not any(p.fullmatch(entry.name) for p in _TEMP_NAMES):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
        return removed

    def save(self) -> None:
        if read_only(self.path):
            raise WorkbookError(f"Çalışma kitabı salt okunur: {self.path.name}; içine yazılmadı. Sonuçlar "
                                f"günlükte saklı: salt okunur özelliğini kaldırıp 'edefter refresh' ile yazın.")
        self.clean_stale_temporaries()
        try:
            xlsm.save(self.wb, self.path)
            self._stamp = None  # our own save: the next reload reads it back
        except PermissionError as exc:
            if os.name == "nt" and getattr(exc, "filename2", None):  # the rename onto a file held open
                raise WorkbookError(f"Çalışma kitabı kaydedilemedi: {self.path.name} başka bir programda (Excel?) "
                                    f"açık olabilir. Kapatıp yeniden deneyin; sonuçlar günlükte saklı, "
                                    f"'edefter refresh' ile yeniden yazılabilir.") from None
            raise WorkbookError(_no_permission(self.path.resolve().parent)
                                + " Sonuçlar günlükte saklı, 'edefter refresh' ile yeniden yazılabilir.") from None
        except OSError as exc:
            raise WorkbookError(f"Çalışma kitabı kaydedilemedi: {exc.strerror or exc}") from None


def _no_permission(folder: Path) -> str:
    return (f"Çalışma kitabı kaydedilemez: {folder} klasörüne yazma izni yok (kaydetmek için kitabın "
            f"yanına geçici bir dosya yazılır).")
