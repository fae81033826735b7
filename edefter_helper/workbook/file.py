"""The headless face: a control workbook file. Its row sheets are read and rewritten straight from the
file's XML (`sheetxml`: an office's 36 000-row Dönemler in about a second, without a cell object per
cell); everything else, and any file that path does not recognise, through openpyxl as before.

Saves are atomic and keep the ribbon and VBA intact (the fast path copies every other part unchanged;
openpyxl's through `xlsm.save`). Cells are addressed by the header row, so a user may reorder
columns; missing headers are added at the end.
"""

from __future__ import annotations

import io
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
from edefter_helper.workbook import sheetxml, xlsm


class WorkbookError(Exception):
    """Turkish message: the file cannot be used."""


CONTROL_SUFFIX = ".xlsm"
# what a killed save leaves beside the workbook: xlsm.write_atomic's and the upgrade's temporaries
# (tempfile.mkstemp: 8 characters from [a-z0-9_]); never the user's files, nor Excel's ~$ or
# LibreOffice's .~lock.…# lock files
_TEMP_NAMES = (re.compile(r"\.~[a-z0-9_]{8}(?i:\.xlsm)"), re.compile(r"\.~yukselt-[a-z0-9_]{8}(?i:\.xlsm)"))
_TEMP_MIN_AGE = 60.0  # seconds: a save in progress elsewhere is never this old
# the parts' declared sizes unpacked (zipfile never reads past them): an office's 36 000-row Dönemler
# is ~27 MB; far over this is a zip bomb, which either reader would spend minutes and gigabytes on
MAX_UNPACKED = 1 << 30


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


class _SheetState:
    """A row sheet as the fast path holds it: where its columns are, what a full pass over the file's
    rows saw, and what this run changed (not yet saved)."""

    def __init__(self, sheet: L.Sheet, part: str):
        self.sheet = sheet
        self.part = part
        self.scan: sheetxml.SheetScan | None = None  # after a full pass over the rows
        self.cols: dict[str, int] = {}
        self.header_cells: list[tuple[int, str]] = []  # headers to add, as openpyxl's _columns does
        self.keep_below: int | None = None  # None: the rows as in the file
        self.first = 2
        self.rows: list[tuple] = []


def _column_out(styles: sheetxml.Styles, col: L.Column, index: int, position: int,
                prefer: int | None) -> sheetxml.ColumnOut:
    """How FileBook._append styles the column's cells: '@' for every value of a text column, the
    column's date format for a datetime, openpyxl's default date format for a datetime elsewhere."""
    from openpyxl.styles.numbers import is_date_format
    from openpyxl.utils.cell import get_column_letter

    def attr(s: int | None) -> str | None:
        return None if s is None else (f' s="{s}"' if s else "")

    fmt = col.number_format
    letters = get_column_letter(index)
    if fmt == "@":
        text = attr(styles.find("@", prefer))
        if text is None:
            raise sheetxml.Unsupported("no text style in styles.xml")
        return sheetxml.ColumnOut(index, letters, position, text, text, text, True)
    date = attr(styles.find(fmt or "yyyy-mm-dd h:mm:ss", prefer))
    # a number in a date column: openpyxl keeps the style of the cell it overwrites (maybe a date)
    numbers_ok = not (fmt and is_date_format(fmt))
    return sheetxml.ColumnOut(index, letters, position, "", "", date, numbers_ok)


def _nothing_in(row: dict) -> bool:
    """A row read_rows leaves out: no value, or only blank text (both readers)."""
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row.values())


def _blank(values) -> bool:
    return all(v is None or v == "" for v in values)


class FileBook:
    """The Book protocol over a workbook file. The row sheets are read from, and written back into, the
    file's XML directly (`sheetxml`); anything else — `wb`, a sheet to create, `write_grid`, a file
    the fast path does not recognise — loads the whole workbook into openpyxl, replays what this run
    already changed, and continues there, as this face always did."""

    def __init__(self, path: str | Path, progress_stream=None):
        self.path = Path(path)
        self._opened = time.time()
        self._wb = None
        self._pkg: sheetxml.Package | None = None
        self._states: dict[str, _SheetState] = {}
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
        self._read(stamp)

    def _read(self, stamp) -> None:
        self._wb, self._pkg, self._states = None, None, {}
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise WorkbookError(f"Çalışma kitabı açılamadı ({self.path.name}): {exc.strerror or exc}") from None
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                unpacked = sum(info.file_size for info in zf.infolist())
        except Exception:  # noqa: BLE001 - a damaged package: openpyxl below says why
            unpacked = 0
        if unpacked > MAX_UNPACKED:
            raise WorkbookError(f"Çalışma kitabı açılamadı ({self.path.name}): açılınca {unpacked >> 20} MB, "
                                f"{MAX_UNPACKED >> 20} MB sınırından büyük (zip bombası olabilir). Dosyaya dokunulmadı.")
        try:
            self._pkg = sheetxml.Package(data)
        except Exception:  # noqa: BLE001 - an unusual package: openpyxl reads it, or says why not
            self._load_openpyxl(data)
        self._stamp = stamp

    def _load_openpyxl(self, data: bytes) -> None:
        try:
            self._wb = xlsm.load(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
            raise WorkbookError(f"Çalışma kitabı açılamadı ({self.path.name}): {exc}") from None
        self._pkg = None

    @property
    def wb(self):
        """The openpyxl workbook (loaded on first use, with this run's changes so far)."""
        if self._wb is None:
            self._materialize()
        return self._wb

    def _materialize(self) -> None:
        """Leave the fast path: the workbook as read, in openpyxl, with this run's changes replayed."""
        pkg, states = self._pkg, self._states
        self._load_openpyxl(pkg.data)
        self._states = {}
        for state in states.values():
            ws = self._wb[state.sheet.name]
            self._columns(ws, state.sheet)  # the headers a read added
            if state.keep_below is None:
                continue
            keys = [c.key for c in state.sheet.columns]
            rows = [dict(zip(keys, values)) for values in state.rows]
            if state.keep_below == 2:
                self._write_openpyxl(state.sheet, rows)
            else:
                self._append_openpyxl(state.sheet, rows)

    # -- the fast path -----------------------------------------------------------------------

    def _state(self, sheet: L.Sheet, full: bool = False) -> _SheetState | None:
        """The sheet's state, None when the file has no such sheet; raises sheetxml.Unsupported."""
        state = self._states.get(sheet.name)
        if state is None:
            part = self._pkg.sheets.get(sheet.name)
            if part is None:
                return None
            state = _SheetState(sheet, part)
            scan = sheetxml.SheetScan()
            for r, _ in sheetxml.rows_of(self._pkg, part, scan):
                break  # row 1, the headers (a full pass only when needed)
            if not scan.header:
                raise sheetxml.Unsupported("no header row")
            headers = {}
            for c, v in sorted(scan.header.items()):
                headers[str(v).strip()] = c
            missing = []
            for col in sheet.columns:
                found = next((headers[h] for h in (col.header, *col.old_headers) if h in headers), None)
                if found is None:
                    missing.append(col)
                else:
                    state.cols[col.key] = found
            if missing:
                state.scan = sheetxml.scan_sheet(self._pkg, part)
                next_col = state.scan.max_col + 1
                for col in missing:
                    state.cols[col.key] = next_col
                    state.header_cells.append((next_col, col.header))
                    next_col += 1
            self._states[sheet.name] = state
        if full and state.scan is None:
            state.scan = sheetxml.scan_sheet(self._pkg, state.part)
        return state

    def _fast_read(self, sheet: L.Sheet) -> list[dict]:
        state = self._state(sheet)
        if state is None:
            return []
        cols = list(state.cols.items())
        rows = []
        keep_below = state.keep_below if state.keep_below is not None else 1 << 30
        if keep_below > 2:
            scan = sheetxml.SheetScan()
            complete = True
            for r, cells in sheetxml.rows_of(self._pkg, state.part, scan):
                if r >= keep_below:
                    complete = False
                    break
                if r == 1:
                    continue
                row = {key: cells.get(c) for key, c in cols}
                if _nothing_in(row):
                    continue
                rows.append(row)
            if complete and state.scan is None:
                state.scan = scan
        keys = [c.key for c in sheet.columns]
        for values in state.rows:
            row = {k: (None if v is None or v == "" else v[:sheetxml.MAX_TEXT] if type(v) is str else v)
                   for k, v in zip(keys, values)}
            if _nothing_in(row):
                continue
            rows.append(row)
        return rows

    def _snapshot(self, sheet: L.Sheet, rows: list[dict]) -> list[tuple]:
        if isinstance(rows, L.SheetRows) and rows.sheet == sheet:
            return list(rows.tuples)  # already these tuples: no second copy of an office's rows
        keys = [c.key for c in sheet.columns]
        return [tuple(map(row.get, keys)) for row in rows]

    def _fast_write(self, sheet: L.Sheet, rows: list[dict]) -> None:
        state = self._state(sheet, full=True)
        if state is None:
            raise sheetxml.Unsupported("a sheet to create")
        if state.keep_below != 2 and state.scan.data_cols - set(state.cols.values()):
            # values in columns of the user's own: openpyxl keeps them beside the rewritten rows
            raise sheetxml.Unsupported("values outside the table's columns")
        state.keep_below, state.first, state.rows = 2, 2, self._snapshot(sheet, rows)

    def _fast_append(self, sheet: L.Sheet, rows: list[dict]) -> None:
        state = self._state(sheet)
        if state is None:
            raise sheetxml.Unsupported("a sheet to create")
        new = self._snapshot(sheet, rows)
        if state.keep_below is None:
            self._state(sheet, full=True)
            state.keep_below = state.first = max(state.scan.last_filled, 1) + 1
            state.rows = new
            return
        k = len(state.rows)  # after the last row holding a value, as openpyxl's append_rows
        while k and _blank(state.rows[k - 1]):
            k -= 1
        state.rows = state.rows[:k] + new

    def _plans(self) -> dict[str, sheetxml.SheetPlan]:
        styles = self._pkg.styles
        plans = {}
        for state in self._states.values():
            if state.keep_below is None and not state.header_cells:
                continue
            if state.scan is None:
                state.scan = sheetxml.scan_sheet(self._pkg, state.part)
            col_styles = sheetxml.column_styles(self._pkg, state.part, state.cols.values())
            columns = []
            for pos, col in enumerate(state.sheet.columns):
                index = state.cols[col.key]
                columns.append(_column_out(styles, col, index, pos, col_styles.get(index)))
            columns.sort(key=lambda c: c.index)
            keep_below = state.keep_below if state.keep_below is not None else 1 << 30
            kept_max = min(state.scan.max_row, keep_below - 1)
            max_col = max([state.scan.max_col, *state.cols.values()])
            plans[state.part] = sheetxml.SheetPlan(keep_below, kept_max, state.header_cells,
                                                   state.rows if state.keep_below is not None else [],
                                                   state.first, columns, max_col)
        return plans

    # -- openpyxl (the workbook loaded whole) ---------------------------------------------------

    def _sheet(self, sheet: L.Sheet, create: bool = False):
        if sheet.name in self._wb.sheetnames:
            return self._wb[sheet.name]
        if not create:
            return None
        ws = self._wb.create_sheet(sheet.name)
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

    def _read_openpyxl(self, sheet: L.Sheet) -> list[dict]:
        ws = self._sheet(sheet)
        if ws is None:
            return []
        cols = self._columns(ws, sheet)
        rows = []
        for values in ws.iter_rows(min_row=2, values_only=True):
            row = {key: (values[c - 1] if c - 1 < len(values) else None) for key, c in cols.items()}
            if _nothing_in(row):
                continue
            rows.append(row)
        return rows

    def _write_openpyxl(self, sheet: L.Sheet, rows: list[dict]) -> None:
        ws = self._sheet(sheet, create=True)
        cols = self._columns(ws, sheet)
        old_last = ws.max_row
        # overwrite in place and drop only the surplus rows: deleting 10 000 rows first makes
        # openpyxl shift every cell
        self._append(ws, sheet, cols, rows, start=2, overwrite=True)
        if old_last > len(rows) + 1:
            ws.delete_rows(len(rows) + 2, old_last - len(rows) - 1)

    def _append_openpyxl(self, sheet: L.Sheet, rows: list[dict]) -> None:
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

    # -- Book protocol ------------------------------------------------------------------------

    def _either(self, fast, slow, *args):
        """`fast(*args)` while the fast path holds the workbook; else, or when it cannot, `slow(*args)`."""
        if self._wb is None:
            try:
                return fast(*args)
            except Exception:  # noqa: BLE001 - sheetxml.Unsupported, or a part it could not read
                self._materialize()
        return slow(*args)

    def read_rows(self, sheet: L.Sheet) -> list[dict]:
        return self._either(self._fast_read, self._read_openpyxl, sheet)

    def write_rows(self, sheet: L.Sheet, rows: list[dict]) -> None:
        self._either(self._fast_write, self._write_openpyxl, sheet, rows)

    def append_rows(self, sheet: L.Sheet, rows: list[dict]) -> None:
        self._either(self._fast_append, self._append_openpyxl, sheet, rows)

    def write_grid(self, name: str, rows: list[list]) -> None:
        """A whole free-form sheet (header row first), through `calendar_format.write_sheet`: values, a
        `Link` as its text with an internal hyperlink, the colour rules and a filter."""
        from edefter_helper.workbook.calendar_format import write_sheet

        wb = self.wb
        if name in wb.sheetnames:
            ws = wb[name]
            if ws.max_row:
                ws.delete_rows(1, ws.max_row)
        else:
            ws = wb.create_sheet(name)
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
            if self._wb is None:
                try:
                    self._fast_save()
                    return
                except (OSError, WorkbookError):  # the latter: reading back what was saved
                    raise
                except Exception:  # noqa: BLE001 - sheetxml.Unsupported, or a part it could not read:
                    self._materialize()  # the temporary is gone; openpyxl saves as it always did
            xlsm.save(self._wb, self.path)
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


    def _fast_save(self) -> None:
        plans = self._plans()
        with xlsm.atomic_file(self.path) as fh:
            sheetxml.save(self._pkg, plans, fh)
        del plans
        # what was saved is now the file: read it back (cheap) so later calls see one state
        st = self.path.stat()
        self._read((st.st_size, st.st_mtime_ns, getattr(st, "st_ino", 0)))


def _no_permission(folder: Path) -> str:
    return (f"Çalışma kitabı kaydedilemez: {folder} klasörüne yazma izni yok (kaydetmek için kitabın "
            f"yanına geçici bir dosya yazılır).")
