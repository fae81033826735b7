"""The headless face: a control workbook file read and written with openpyxl.

Saves go through `xlsm.save` (atomic, ribbon and VBA kept intact). Cells are addressed by the
header row, so a user may reorder columns; missing headers are added at the end.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.workbook import layout as L
from edefter_helper.workbook import xlsm


class WorkbookError(Exception):
    """Turkish message: the file cannot be used."""


class FileBook:
    def __init__(self, path: str | Path, progress_stream=None):
        self.path = Path(path)
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
            if col.header in headers:
                cols[col.key] = headers[col.header]
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
        """A whole free-form sheet (header row first): values only; a sheet made here gets the same
        colour rules the template's has (calendar_format)."""
        if name in self.wb.sheetnames:
            ws = self.wb[name]
            if ws.max_row:
                ws.delete_rows(1, ws.max_row)
        else:
            ws = self.wb.create_sheet(name)
            from edefter_helper.workbook.calendar_format import format_calendar

            format_calendar(ws)
        for r in rows:
            ws.append(list(r))

    def selected_keys(self) -> list[MonthKey] | None:
        return None

    def progress(self, text: str) -> None:
        stream = self.progress_stream
        if stream is None or not getattr(stream, "isatty", lambda: False)():
            return
        stream.write(f"\r{text[:100]:<100}" if text else "\r" + " " * 100 + "\r")
        stream.flush()

    def save(self) -> None:
        try:
            xlsm.save(self.wb, self.path)
            self._stamp = None  # our own save: the next reload reads it back
        except PermissionError:
            raise WorkbookError(f"Çalışma kitabı kaydedilemedi: {self.path.name} başka bir programda (Excel?) "
                                f"açık olabilir. Kapatıp yeniden deneyin; sonuçlar günlükte saklı, "
                                f"'edefter refresh' ile yeniden yazılabilir.") from None
        except OSError as exc:
            raise WorkbookError(f"Çalışma kitabı kaydedilemedi: {exc.strerror or exc}") from None
