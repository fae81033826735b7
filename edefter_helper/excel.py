"""What the ribbon buttons call, and the live-Excel face of the Book protocol (xlwings).

Every click starts a fresh Python that imports this module, so it imports nothing heavy at module
level: xlwings, the actions and everything they need are imported inside the button functions.
`XlwingsBook` reads and writes whole 2-D ranges (COM calls are slow; a call per cell would make a
few thousand rows take minutes), shows progress in Excel's status bar, and every failure reaches
the user as a Turkish message instead of a Python traceback.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from edefter_helper.workbook import layout

TITLE = "e-Defter Yedekleme"
LAST_ROW = 1048576
XL_CELL_TYPE_VISIBLE = 12  # Excel's xlCellTypeVisible
# sheets a workbook made before them may lack: read as empty, added at the first write
ADDED_LATER = {layout.COPIES.name}


class UserMessage(Exception):
    """A problem the user can fix, already worded in Turkish."""


# --------------------------------------------------------------------------- values


def _cell_in(value: Any) -> Any:
    """Excel value -> Book value: text or None, dates as datetime."""
    if value is None:
        return None
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value
    if isinstance(value, bool):
        return layout.YES if value else layout.NO
    if isinstance(value, float):
        # a VKN or branch typed into a cell that was not text-formatted comes back as 1234.0
        value = str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    return text or None


def _cell_out(value: Any) -> Any:
    if value is None or isinstance(value, (_dt.datetime, _dt.date, int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(("=", "+", "@")) else text  # never a formula


# --------------------------------------------------------------------------- addresses


def _row_spans(address: str) -> list[tuple[int, int]]:
    """Row intervals of an A1 address like '$A$2:$C$5,$A$8,$3:$4,$B:$B' (whole columns: all)."""
    spans = []
    for area in address.replace("'", "").split(","):
        area = area.split("!")[-1]
        ends = []
        for ref in area.split(":"):
            m = re.fullmatch(r"\$?[A-Za-z]*\$?(\d*)", ref.strip())
            ends.append(int(m.group(1)) if m and m.group(1) else None)
        first, last = ends[0], ends[-1]
        if first is None or last is None:
            spans.append((1, LAST_ROW))
        else:
            spans.append((min(first, last), max(first, last)))
    return spans


def _in_spans(row: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= row <= b for a, b in spans)


# --------------------------------------------------------------------------- the Book


class XlwingsBook:
    """The Book protocol over an xlwings Book (the workbook whose button was clicked)."""

    def __init__(self, book: Any):
        self.book = book
        self.app = book.app

    def _sheet(self, sheet: layout.Sheet, create: bool = False) -> Any:
        try:
            return self.book.sheets[sheet.name]
        except Exception:
            if sheet.name in ADDED_LATER:
                if not create:
                    return None
                # a workbook from before the sheet existed ('edefter workbook upgrade' also adds it, styled)
                ws = self.book.sheets.add(sheet.name, after=self.book.sheets[-1])
                ws.range((1, 1)).value = [sheet.headers]
                return ws
            raise UserMessage(f"Çalışma kitabında '{sheet.name}' sayfası yok. Şablondan yeni bir "
                              "çalışma kitabı oluşturun veya sayfayı geri ekleyin.") from None

    def _last_row(self, ws: Any, ncols: int) -> int:
        """Last row holding data in the table's columns: Ctrl+Up from the bottom of each column
        (a constant number of calls; UsedRange can be inflated by formatting)."""
        return max(ws.range((LAST_ROW, c)).end("up").row for c in range(1, ncols + 1))

    def _table(self, sheet: layout.Sheet) -> tuple[Any, list[tuple[int, list[Any]]]]:
        """(sheet object, [(row number, values)]) of every data row, read in one call."""
        ws = self._sheet(sheet)
        if ws is None:
            return None, []
        n = len(sheet.columns)
        last = self._last_row(ws, n)
        if last < 2:
            return ws, []
        matrix = ws.range((2, 1), (last, n)).options(ndim=2).value or []
        return ws, [(2 + i, list(r) + [None] * (n - len(r))) for i, r in enumerate(matrix)]

    @staticmethod
    def _row_dict(sheet: layout.Sheet, values: list[Any]) -> dict[str, Any]:
        return {c.key: _cell_in(v) for c, v in zip(sheet.columns, values)}

    def read_rows(self, sheet: layout.Sheet) -> list[dict[str, Any]]:
        _, table = self._table(sheet)
        rows = [self._row_dict(sheet, values) for _, values in table]
        return [r for r in rows if any(v is not None for v in r.values())]

    def _matrix(self, sheet: layout.Sheet, rows: list[dict[str, Any]]) -> list[list[Any]]:
        return [[_cell_out(r.get(c.key)) for c in sheet.columns] for r in rows]

    def _write_at(self, ws: Any, sheet: layout.Sheet, first: int, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        last = first + len(rows) - 1
        for i, col in enumerate(sheet.columns, start=1):
            if col.number_format == "@":  # keep leading zeros of VKN / Şube No / Dönem
                ws.range((first, i), (last, i)).number_format = "@"
        ws.range((first, 1), (last, len(sheet.columns))).value = self._matrix(sheet, rows)

    def write_rows(self, sheet: layout.Sheet, rows: list[dict[str, Any]]) -> None:
        ws = self._sheet(sheet, create=True)
        n = len(sheet.columns)
        last = self._last_row(ws, n)
        if last >= 2:
            ws.range((2, 1), (last, n)).clear_contents()  # keeps formats and validation
        self._write_at(ws, sheet, 2, rows)

    def write_grid(self, name: str, rows: list[list[Any]]) -> None:
        """A whole free-form sheet (header row first) in one range write; colours come from the
        template's conditional formatting, a `calendar_format.Link` is a HYPERLINK formula in the
        same values array: the number of calls does not grow with rows."""
        from edefter_helper.workbook.calendar_format import Link

        def out(v: Any) -> Any:
            if isinstance(v, Link):
                return v.formula()
            if isinstance(v, str):
                # Range.Value parses text as if typed ("0000" -> 0, "Mart 2026" -> a date, "=…" -> a
                # formula): the apostrophe keeps every text as it is; "" stays a blank cell
                return "'" + v if v else None
            return v

        try:
            ws = self.book.sheets[name]
        except Exception:
            ws = self.book.sheets.add(name, after=self.book.sheets[-1])
        used = ws.used_range
        used.clear_contents()
        try:
            used.api.Hyperlinks.Delete()  # a headless write's hyperlinks outlive ClearContents
        except Exception:  # noqa: BLE001 - none there (or not Windows Excel): nothing to remove
            pass
        if rows:
            width = max(len(r) for r in rows)
            ws.range((1, 1)).value = [[out(v) for v in r] + [None] * (width - len(r)) for r in rows]

    def append_rows(self, sheet: layout.Sheet, rows: list[dict[str, Any]]) -> None:
        ws = self._sheet(sheet)
        self._write_at(ws, sheet, max(self._last_row(ws, len(sheet.columns)), 1) + 1, rows)

    def _visible(self, ws: Any, last: int) -> list[tuple[int, int]] | None:
        """Row spans not hidden by a filter; None when Excel cannot tell (all rows count)."""
        try:
            area = ws.range((2, 1), (last, 1)).api.SpecialCells(XL_CELL_TYPE_VISIBLE)
            return _row_spans(area.Address)
        except Exception:
            return None

    def _selection(self) -> tuple[str, str] | None:
        """(sheet name, address) of Excel's selection, or None."""
        try:
            sel = self.app.selection
            if sel is None:
                return None
            return sel.sheet.name, sel.address
        except Exception:
            return None

    def selected_keys(self) -> list[Any] | None:
        """Months on the selected Dönemler rows; with nothing selected there, the rows a filter
        leaves visible; None (all months) when no filter hides anything."""
        from edefter_helper.engine.model import MonthKey

        sheet = layout.PERIODS
        ws, table = self._table(sheet)
        if not table:
            return None
        selection = self._selection()
        spans = None
        if selection and selection[0] == sheet.name:
            spans = [(max(a, 2), b) for a, b in _row_spans(selection[1]) if b >= 2]
            if spans == [(2, LAST_ROW)]:
                spans = None  # whole columns selected: same as nothing selected
        visible = self._visible(ws, table[-1][0])
        if spans is None and visible is None:
            return None
        keys = []
        for row, values in table:
            if spans and not _in_spans(row, spans):
                continue
            if visible is not None and not _in_spans(row, visible):
                continue
            r = self._row_dict(sheet, values)
            if r.get("vkn") and r.get("period"):
                keys.append(MonthKey(r["vkn"], r.get("branch") or "0000", r["period"]))
        if spans is None and len(keys) == sum(1 for _, v in table if any(x is not None for x in v)):
            return None  # nothing hidden, nothing selected: every month
        return keys

    def selected_row(self, sheet: layout.Sheet) -> dict[str, Any] | None:
        """The first selected data row of `sheet` (one read), or None."""
        selection = self._selection()
        if not selection or selection[0] != sheet.name:
            return None
        rows = [a for a, b in _row_spans(selection[1]) if b >= 2]
        if not rows:
            return None
        row = max(rows[0], 2)
        values = self._sheet(sheet).range((row, 1), (row, len(sheet.columns))).options(ndim=2).value
        return self._row_dict(sheet, list(values[0]) if values else [])

    def progress(self, text: str) -> None:
        try:
            self.app.status_bar = text
        except Exception:
            pass  # progress is a courtesy; never fail the work for it

    def clear_progress(self) -> None:
        try:
            self.app.status_bar = False  # gives the status bar back to Excel
        except Exception:
            pass

    def save(self) -> None:
        """The live workbook is the user's: they save it."""

    def alert(self, message: str, *, critical: bool = False) -> None:
        try:
            self.app.alert(message, title=TITLE, buttons="ok", mode="critical" if critical else "info")
        except Exception:
            print(message, file=sys.stderr)


# --------------------------------------------------------------------------- errors


def error_message(exc: BaseException) -> str:
    """A Turkish sentence for any exception (the traceback goes to the log file)."""
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    text = str(getattr(exc, "message", "") or exc).strip()
    if isinstance(exc, UserMessage) or module.startswith("edefter_helper"):
        return text or name  # our own exceptions already carry a Turkish message
    if isinstance(exc, FileNotFoundError):
        return f"Dosya veya klasör bulunamadı: {exc.filename or text}"
    if isinstance(exc, PermissionError):
        return (f"Erişim izni yok: {exc.filename or text}. Dosya başka bir programda açık "
                "olabilir veya bu klasöre yazma izniniz yoktur.")
    if isinstance(exc, ModuleNotFoundError):
        return (f"Python paketi eksik: {exc.name}. Bu çalışma kitabının gösterdiği Python'a "
                "'edefter-yedekleme' paketini kurun; 'Kurulum Kontrolü' düğmesi yardımcı olur.")
    if isinstance(exc, (TimeoutError, ConnectionError)) or module.split(".")[0] in ("requests",
                                                                                   "urllib3"):
        return f"Bağlantı kurulamadı veya zaman aşımı: {text}. İnternet bağlantısını ve hedef adresini kontrol edin."
    if module.split(".")[0] == "pywintypes" or "rejected by callee" in text.lower():
        return "Excel meşgul (bir hücre düzenleniyor veya bir pencere açık olabilir). Biraz bekleyip yeniden deneyin."
    if isinstance(exc, MemoryError):
        return "Bellek yetersiz: işlemi daha az dönemle yeniden deneyin."
    if isinstance(exc, OSError):
        return f"Dosya işlemi başarısız: {text}"
    return f"Beklenmeyen hata ({name}): {text}. Ayrıntılar günlük dosyasına yazıldı: {_log_name()}"


def _log_name() -> str:
    try:
        from edefter_helper import paths

        return str(paths.data_dir() / "excel-errors.log")
    except Exception:
        return "excel-errors.log"


def _log(exc: BaseException) -> None:
    try:
        with open(_log_name(), "a", encoding="utf-8") as fh:
            fh.write(f"--- {_dt.datetime.now():%Y-%m-%d %H:%M:%S}\n")
            fh.write("".join(traceback.format_exception(exc)))
    except Exception:
        pass


# --------------------------------------------------------------------------- buttons


def _caller() -> Any:
    """The workbook whose ribbon button ran us (tests replace this)."""
    import xlwings as xw

    return xw.Book.caller()


@contextmanager
def _dialog(without_tk: str | None, *, focus: bool = False):
    """A hidden Tk root above Excel (which called us) to parent one dialog. Without tkinter:
    UserMessage(`without_tk`), or None is yielded when `without_tk` is None."""
    try:
        import tkinter as tk
    except ImportError:
        if without_tk is None:
            yield None
            return
        raise UserMessage(without_tk) from None
    root = tk.Tk()
    root.withdraw()
    root.attributes("-topmost", True)
    root.lift()
    if focus:
        root.focus_force()  # typed characters go to the dialog, not to Excel's cell
    try:
        yield root
    finally:
        root.destroy()


def _ask_password(prompt: str) -> str | None:
    """Ask for a secret without showing it; None when cancelled (tests replace this)."""
    with _dialog("Şifre penceresi açılamadı (Python'da tkinter yok). Şifreyi komut satırından girin: "
                 "edefter credentials set", focus=True) as root:
        from tkinter import simpledialog

        return simpledialog.askstring(TITLE, prompt, show="*", parent=root)


def _ask_yes_no(prompt: str) -> bool:
    """A Yes/No question; False when it cannot be asked (tests replace this)."""
    with _dialog(None) as root:
        if root is None:
            return False
        from tkinter import messagebox

        return bool(messagebox.askyesno(TITLE, prompt, parent=root))


def _ask_text(prompt: str) -> str | None:
    """A line of text; None when cancelled (tests replace this)."""
    with _dialog("Soru penceresi açılamadı (Python'da tkinter yok). Geri yüklemeyi komut satırından yapın: "
                 "edefter restore --all --from YYYY-AA", focus=True) as root:
        from tkinter import simpledialog

        return simpledialog.askstring(TITLE, prompt, parent=root)


def _ask_folder(prompt: str) -> str | None:
    """Ask for a destination folder; None when cancelled (tests replace this)."""
    with _dialog("Klasör penceresi açılamadı (Python'da tkinter yok). Geri yüklemeyi komut satırından "
                 "yapın: edefter restore") as root:
        from tkinter import filedialog

        return filedialog.askdirectory(title=prompt, mustexist=False, parent=root) or None


def _fallback_alert(message: str) -> None:
    """A message box without Excel (a click must never 'do nothing'): the OS's own dialog."""
    import os

    try:
        if os.name == "nt":
            import ctypes

            # MB_OK | MB_ICONERROR | MB_TOPMOST | MB_SETFOREGROUND
            ctypes.windll.user32.MessageBoxW(0, message, TITLE, 0x0 | 0x10 | 0x40000 | 0x10000)
        elif sys.platform == "darwin":
            import subprocess

            script = f'display dialog {json_quote(message)} with title {json_quote(TITLE)} buttons {{"Tamam"}}'
            subprocess.run(["osascript", "-e", script], timeout=300, check=False)
    except Exception:  # noqa: BLE001 - stderr already has it
        pass


def json_quote(text: str) -> str:
    """An AppleScript string literal (same escaping as JSON for quotes and backslashes)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _run(task: Callable[[XlwingsBook], tuple[str, bool]], start: str, after: str | None = None) -> str | None:
    """Run one button's work against the calling workbook; returns the message shown."""
    try:
        book = XlwingsBook(_caller())
    except Exception as exc:  # not started from Excel, or Excel unreachable: xlwings would show nothing
        _log(exc)
        message = error_message(exc)
        print(message, file=sys.stderr)
        _fallback_alert(message)
        return message
    try:
        book.progress(start)
        message, failed = task(book)
    except Exception as exc:
        _log(exc)
        message, failed = error_message(exc), True
    finally:
        book.clear_progress()
        if after:
            book.progress(after)  # stays after the click (e.g. when the statuses were last read)
    book.alert(message, critical=failed)
    return message


def _summary(summary: Any) -> tuple[str, bool]:
    return summary.message, bool(getattr(summary, "failed", 0))


def refresh() -> str | None:
    """Dönemleri Tara / Yenile."""
    def task(book):
        from edefter_helper import actions

        return _summary(actions.refresh(book))

    return _run(task, "e-Defter: klasörler taranıyor…")


def send() -> str | None:
    """Gönder: the selected months (all visible ones when nothing is selected)."""
    def task(book):
        from edefter_helper import actions

        return _summary(actions.send(book, keys=book.selected_keys()))

    return _run(task, "e-Defter: dönemler gönderiliyor…")


def query() -> str | None:
    """Durum Sorgula."""
    def task(book):
        from edefter_helper import actions

        return _summary(actions.query(book, keys=book.selected_keys()))

    return _run(task, "e-Defter: durum sorgulanıyor…")


def backup() -> str | None:
    """Toplu Yedekle: every month not yet backed up — handed to a detached worker so Excel never
    freezes; returns at once with how many months were queued. 'Durumu Yenile' shows the results."""
    def task(book):
        queued = _queued_for_backup(book)
        if not queued:
            return ("Gönderilecek dönem görünmüyor (GİB onaylı beratı indirilmiş, yedeklenmemiş dönem yok). "
                    "Önce 'Dönemleri Tara / Yenile'.", False)
        _start_worker(book)
        return (f"{queued} dönem kuyruğa alındı; arka planda gönderiliyor. Excel'i kullanmaya devam "
                f"edebilirsiniz; ilerlemeyi ve sonuçları 'Durumu Yenile' gösterir.", False)

    return _run(task, "e-Defter: toplu yedekleme başlatılıyor…")


def _queued_for_backup(book) -> int:
    """Months the last scan showed as GİB-approved and not backed up (from the sheet: cheap)."""
    from edefter_helper import status as S

    return sum(1 for r in book.read_rows(layout.PERIODS)
               if r.get("stage") == S.STAGE_TR["gib-approved"] and r.get("status") != S.BACKED_UP)


def _start_worker(book) -> None:
    """A detached `edefter worker` with a settings snapshot; it outlives this RunPython call."""
    import hashlib
    import os
    import subprocess

    from edefter_helper import paths
    from edefter_helper.workbook.snapshot import write_snapshot

    name = str(getattr(book.book, "fullname", "") or "kitap")
    snapshot = paths.data_dir() / f"ayarlar-{hashlib.sha256(name.encode()).hexdigest()[:12]}.json"
    write_snapshot(book, snapshot)
    cmd = [_background_python(), "-m", "edefter_helper", "worker", "--settings", str(snapshot), "--all"]
    log = open(paths.data_dir() / "arka-plan.log", "ab")
    kwargs: dict = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log, "close_fds": True}
    if os.name == "nt":
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    try:
        subprocess.Popen(cmd, **kwargs)
    finally:
        log.close()


def _background_python() -> str:
    """pythonw.exe beside python.exe on Windows (no console window); this interpreter elsewhere."""
    import os

    exe = sys.executable
    if os.name == "nt" and exe.lower().endswith("python.exe"):
        candidate = exe[:-len("python.exe")] + "pythonw.exe"
        if os.path.exists(candidate):
            return candidate
    return exe


def radar() -> str | None:
    """Takvim / Radar: every firm's months at a glance on the Takvim sheet."""
    def task(book):
        from edefter_helper import actions

        return _summary(actions.radar(book))

    return _run(task, "e-Defter: takvim hazırlanıyor…")


def show_status() -> str | None:
    """Durumu Yenile: statuses from the journal, at once (no scan), progress of a background run."""
    def task(book):
        from edefter_helper import actions

        summary = actions.show_status(book)
        return summary.message, False

    return _run(task, "e-Defter: durum günlükten okunuyor…",
                after=f"e-Defter: durumlar {_dt.datetime.now():%d.%m.%Y %H:%M} itibarıyla günlükten okundu")


def restore() -> str | None:
    """Geri Yükle / İbraz Paketi: the selected months (all visible ones when nothing is selected) into a
    folder the user picks, verified, with the İbraz Raporu. A folder with files in it is completed
    (never overwritten) once the user agrees; when this computer knows no month (another computer made
    the backups, the disk was lost) the target is asked from a month the user gives."""
    def task(book):
        folder = _ask_folder("Geri yüklenecek dosyalar için boş bir klasör seçin")
        if not folder:
            return "Klasör seçilmedi; hiçbir şey geri yüklenmedi.", False
        from edefter_helper import restore as r

        out = Path(folder)
        into_existing = r.holds_files(out)
        if into_existing and not _ask_yes_no(
                f"Seçilen klasör boş değil:\n{out}\n\nİçindeki dosyalara dokunulmadan yalnızca eksik dosyalar "
                f"eklensin mi? (Aynı adla başka içerikte bir dosya varsa üzerine yazılmaz, raporda belirtilir; "
                f"yarıda kalmış bir geri yükleme böyle tamamlanır.)"):
            return "Klasör boş değil; hiçbir şey geri yüklenmedi.", False
        keys = book.selected_keys()
        try:
            try:
                summary = r.restore(book, keys=keys, out=out, into_existing=into_existing)
            except r.NothingToRestore:
                if keys:  # rows were picked (of firms no longer in Firmalar): not a lost computer's case
                    raise
                discover = _months_from_user(book, r)
                if discover is None:
                    return "Dönem girilmedi; hiçbir şey geri yüklenmedi.", False
                summary = r.restore(book, out=out, into_existing=into_existing, discover=discover)
        except r.RestoreError as exc:
            raise UserMessage(str(exc)) from None
        return _summary(summary)

    return _run(task, "e-Defter: geri yükleniyor…")


def _months_from_user(book, r) -> list | None:
    """After a loss: every Firmalar firm's months from the month the user gives up to this one, to ask
    the targets about (the CLI's `restore --all --from`); None when the user gives none."""
    from edefter_helper.engine.names import valid_period
    from edefter_helper.settings import read_settings

    answer = _ask_text("Bu bilgisayar geri yüklenecek bir ay bilmiyor (yedekler başka bir bilgisayarda "
                       "alınmış ya da dosyalar ve günlük kaybolmuş olabilir). Firmalar sayfasındaki firmaların "
                       "hangi aydan bu yana yedekleri hedefe sorulsun? (YYYY-AA, ör. 2024-01)")
    if not answer or not answer.strip():
        return None
    start = answer.strip()
    end = _dt.date.today().strftime("%Y-%m")
    if not valid_period(start) or start > end:
        raise UserMessage(f"Geçersiz ay: {start}. YYYY-AA biçiminde, bu aydan önce bir ay girin (ör. 2024-01).")
    firms, _, _ = read_settings(book)
    return r.months_to_ask(firms, start, end)


def store_password() -> str | None:
    """Kimlik Bilgisi: the selected Firmalar row's integrator password into the OS keyring."""
    def task(book):
        row = book.selected_row(layout.FIRMS)
        if not row or not row.get("target") or not row.get("user"):
            raise UserMessage("Firmalar sayfasında Hedef ve Kullanıcı Adı dolu bir satır seçin, "
                              "sonra 'Kimlik Bilgisi' düğmesine yeniden basın.")
        from edefter_helper import credentials
        from edefter_helper.settings import TARGET_SEPARATOR, read_settings, split_targets

        pairs = [(row["target"], row["user"])]
        if TARGET_SEPARATOR in row["target"] or "\n" in row["target"]:  # several Hedefs: a password for each
            from edefter_helper.targets import registry

            _, targets, _ = read_settings(book)
            pairs = [(t, u) for t, u in split_targets(row["target"], row["user"], targets)[0]
                     if u and (t not in targets or getattr(registry.get(targets[t].kind), "needs_password", True))]
        saved = []
        for target, user in pairs:
            password = _ask_password(f"'{target}' hedefindeki '{user}' kullanıcısının şifresi:")
            if not password:
                break
            credentials.set_password(target, user, password)
            saved.append(f"'{target}' hedefindeki '{user}' kullanıcısının")
        if not saved:
            return "Şifre girilmedi; hiçbir şey kaydedilmedi.", False
        return ", ".join(saved) + (" şifresi" if len(saved) == 1 else " şifreleri") + " kaydedildi.", False

    return _run(task, "e-Defter: kimlik bilgisi…")


def setup_check() -> str | None:
    """Kurulum Kontrolü: what check_workbook finds in the saved workbook file."""
    def task(book):
        from edefter_helper.addin.check import check_workbook

        path = book.book.fullname
        findings = check_workbook(path)
        if not findings:
            return (f"Kurulum sorunsuz. Python: {sys.executable}", False)
        return ("Kurulumda sorun bulundu:\n\n" + "\n".join(f"• {f}" for f in findings), True)

    return _run(task, "e-Defter: kurulum denetleniyor…")
