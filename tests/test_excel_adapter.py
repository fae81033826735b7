"""The xlwings face, against a recording stand-in for xlwings' Book/Sheet/Range (no Excel here)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import types
from pathlib import Path

import pytest
from openpyxl.utils import get_column_letter

import edefter_helper
from edefter_helper import excel
from edefter_helper.engine.model import MonthKey
from edefter_helper.workbook import layout

ROOT = Path(__file__).resolve().parents[1]


def _address(spans) -> str:
    return ",".join(f"$A${a}:$K${b}" if a != b else f"$A${a}" for a, b in spans)


class FakeRange:
    def __init__(self, sheet, first, last=None):
        self.sheet = sheet
        self.r1, self.c1 = first
        self.r2, self.c2 = last or first

    def options(self, **kwargs):
        return self

    @property
    def row(self):
        return self.r1

    @property
    def address(self):
        return f"${get_column_letter(self.c1)}${self.r1}:${get_column_letter(self.c2)}${self.r2}"

    @property
    def value(self):
        self.sheet.log.append("read")
        return [[self.sheet.grid.get((r, c)) for c in range(self.c1, self.c2 + 1)]
                for r in range(self.r1, self.r2 + 1)]

    @value.setter
    def value(self, matrix):
        self.sheet.log.append("write")
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                self.sheet.grid[(self.r1 + i, self.c1 + j)] = v

    def clear_contents(self):
        self.sheet.log.append("clear")
        for r in range(self.r1, self.r2 + 1):
            for c in range(self.c1, self.c2 + 1):
                self.sheet.grid.pop((r, c), None)

    @property
    def number_format(self):
        raise AssertionError("not read")

    @number_format.setter
    def number_format(self, fmt):
        self.sheet.log.append("format")
        self.sheet.formats[(self.c1, self.r1, self.r2)] = fmt

    def end(self, direction):
        assert direction == "up"
        self.sheet.log.append("end")
        rows = [r for (r, c), v in self.sheet.grid.items() if c == self.c1 and v not in (None, "")]
        return FakeRange(self.sheet, (max(rows, default=1), self.c1))

    @property
    def api(self):
        sheet, r1, r2 = self.sheet, self.r1, self.r2

        class Api:
            def SpecialCells(self, kind):
                assert kind == 12
                sheet.log.append("visible")
                rows = [r for r in range(r1, r2 + 1) if r not in sheet.hidden]
                spans, start, prev = [], None, None
                for r in rows:
                    if start is None or r != prev + 1:
                        if start is not None:
                            spans.append((start, prev))
                        start = r
                    prev = r
                if start is not None:
                    spans.append((start, prev))
                return types.SimpleNamespace(Address=_address(spans))

        return Api()


class FakeSheet:
    def __init__(self, name):
        self.name = name
        self.grid: dict = {}
        self.formats: dict = {}
        self.hidden: set = set()
        self.log: list = []

    def range(self, first, last=None):
        return FakeRange(self, first, last)


class FakeApp:
    def __init__(self):
        self.status: list = []
        self.alerts: list = []
        self.selection = None

    @property
    def status_bar(self):
        return self.status[-1] if self.status else None

    @status_bar.setter
    def status_bar(self, value):
        self.status.append(value)

    def alert(self, prompt, title=None, buttons="ok", mode=None, callback=None):
        self.alerts.append((prompt, title, mode))


class FakeBook:
    def __init__(self):
        self.app = FakeApp()
        self.sheets = {s.name: FakeSheet(s.name) for s in layout.DATA_SHEETS}
        self.fullname = "/yok/kontrol.xlsm"

    def select(self, sheet, first_row, last_row):
        self.app.selection = FakeRange(self.sheets[sheet.name], (first_row, 1), (last_row, 3))


def fill_periods(book: FakeBook, n: int) -> None:
    sheet = book.sheets[layout.PERIODS.name]
    for c, h in enumerate(layout.PERIODS.headers, start=1):
        sheet.grid[(1, c)] = h
    for i in range(n):
        row = 2 + i
        sheet.grid[(row, 1)] = f"Firma {i}"
        sheet.grid[(row, 2)] = 1234567890.0 if i == 0 else f"{1000000000 + i}"  # a typed-in number
        sheet.grid[(row, 3)] = "0000"
        sheet.grid[(row, 4)] = f"2024-{i % 12 + 1:02d}"
        sheet.grid[(row, 7)] = "Entegratör'e Gönderilmedi"
        sheet.grid[(row, 9)] = dt.datetime(2024, 2, 1, 10, 0)
    sheet.log.clear()


# ---------------------------------------------------------------- reading / writing in bulk

@pytest.mark.parametrize("op", ["read", "write", "append", "selected"])
def test_range_calls_do_not_grow_with_rows(op):
    counts = []
    for n in (10, 5000):
        fake = FakeBook()
        fill_periods(fake, n)
        book = excel.XlwingsBook(fake)
        sheet = fake.sheets[layout.PERIODS.name]
        rows = book.read_rows(layout.PERIODS)
        assert len(rows) == n
        sheet.log.clear()
        if op == "read":
            book.read_rows(layout.PERIODS)
        elif op == "write":
            book.write_rows(layout.PERIODS, rows)
        elif op == "append":
            book.append_rows(layout.PERIODS, rows[:n // 2])
        else:
            fake.select(layout.PERIODS, 3, n)
            assert len(book.selected_keys()) == n - 2
        counts.append(len(sheet.log))
        assert sheet.log.count("read") <= 1 + (op == "selected")
        assert sheet.log.count("write") <= 1
    assert counts[0] == counts[1], counts


def test_read_rows_converts_values_and_skips_blank_rows():
    fake = FakeBook()
    fill_periods(fake, 3)
    sheet = fake.sheets[layout.PERIODS.name]
    for c in range(1, 12):  # a blank row in the middle
        sheet.grid.pop((3, c), None)
    sheet.grid[(2, 8)] = "   "
    rows = excel.XlwingsBook(fake).read_rows(layout.PERIODS)
    assert len(rows) == 2
    assert rows[0]["vkn"] == "1234567890"  # not '1234567890.0'
    assert rows[0]["branch"] == "0000" and rows[0]["message"] is None
    assert rows[0]["updated"] == dt.datetime(2024, 2, 1, 10, 0)
    assert set(rows[0]) == {c.key for c in layout.PERIODS.columns}


def test_write_rows_replaces_old_rows_and_keeps_text_columns_text():
    fake = FakeBook()
    fill_periods(fake, 20)
    book = excel.XlwingsBook(fake)
    new = [{"name": "Yeni", "vkn": "0012345678", "branch": "0001", "period": "2023-12",
            "status": "Yedeklendi", "message": "=HYPERLINK(\"x\")"}]
    book.write_rows(layout.PERIODS, new)
    sheet = fake.sheets[layout.PERIODS.name]
    assert book.read_rows(layout.PERIODS) == [
        {**{c.key: None for c in layout.PERIODS.columns}, **new[0], "message": "'=HYPERLINK(\"x\")"}]
    assert sheet.grid[(1, 1)] == "Firma Adı"  # header untouched
    vkn_col = layout.PERIODS.index("vkn") + 1
    assert sheet.formats[(vkn_col, 2, 2)] == "@"
    book.append_rows(layout.PERIODS, new)
    assert len(book.read_rows(layout.PERIODS)) == 2 and sheet.grid[(3, 1)] == "Yeni"


def test_selected_keys_selection_filter_and_nothing():
    fake = FakeBook()
    fill_periods(fake, 6)
    book = excel.XlwingsBook(fake)
    assert book.selected_keys() is None  # nothing selected, nothing hidden: every month
    fake.select(layout.PERIODS, 3, 4)
    assert book.selected_keys() == [MonthKey("1000000001", "0000", "2024-02"),
                                    MonthKey("1000000002", "0000", "2024-03")]
    fake.sheets[layout.PERIODS.name].hidden = {4}  # a filter hides row 4
    assert book.selected_keys() == [MonthKey("1000000001", "0000", "2024-02")]
    fake.app.selection = FakeRange(fake.sheets[layout.FIRMS.name], (2, 1))  # elsewhere
    assert [k.period for k in book.selected_keys()] == ["2024-01", "2024-02", "2024-04", "2024-05", "2024-06"]
    fake.select(layout.PERIODS, 1, 1)  # only the header: same as nothing selected
    assert len(book.selected_keys()) == 5


def test_row_spans_parses_excel_addresses():
    assert excel._row_spans("$A$2:$C$5,$A$8,$3:$4") == [(2, 5), (8, 8), (3, 4)]
    assert excel._row_spans("$B:$B") == [(1, excel.LAST_ROW)]
    assert excel._row_spans("'Dönemler'!$A$7") == [(7, 7)]


# ---------------------------------------------------------------- buttons

class Summary:
    def __init__(self, message, failed=0):
        self.message, self.failed = message, failed


@pytest.fixture
def fake_actions(monkeypatch):
    calls = []
    mod = types.ModuleType("edefter_helper.actions")

    def record(name, result=None):
        def fn(book, **kw):
            calls.append((name, kw))
            book.progress(f"{name} 1/1")
            if isinstance(result, BaseException):
                raise result
            return result or Summary("12 dönem yedeklendi, 1 dönem yedeklenemedi", failed=1)
        return fn

    for name in ("refresh", "send", "query", "backup"):
        setattr(mod, name, record(name))
    mod.record = record
    mod.calls = calls
    monkeypatch.setitem(sys.modules, "edefter_helper.actions", mod)
    monkeypatch.setattr(edefter_helper, "actions", mod, raising=False)
    return mod


@pytest.fixture
def fake(monkeypatch):
    book = FakeBook()
    fill_periods(book, 5)
    monkeypatch.setattr(excel, "_caller", lambda: book)
    return book


def test_buttons_call_actions_and_show_summary(fake, fake_actions):
    fake.select(layout.PERIODS, 2, 3)
    excel.send()
    assert fake_actions.calls[-1] == ("send", {"keys": [MonthKey("1234567890", "0000", "2024-01"),
                                                        MonthKey("1000000001", "0000", "2024-02")]})
    assert fake.app.alerts[-1] == ("12 dönem yedeklendi, 1 dönem yedeklenemedi", excel.TITLE, "critical")
    assert "send 1/1" in fake.app.status and fake.app.status[-1] is False  # status bar given back
    fake_actions.refresh = fake_actions.record("refresh", Summary("3 dönem bulundu"))
    excel.refresh()
    assert fake.app.alerts[-1] == ("3 dönem bulundu", excel.TITLE, "info")
    excel.query()
    assert [c[0] for c in fake_actions.calls] == ["send", "refresh", "query"]


@pytest.mark.parametrize("exc,words", [
    (FileNotFoundError(2, "No such file", "C:/e-Defter/2024"), "bulunamadı: C:/e-Defter/2024"),
    (PermissionError(13, "denied", "k.xlsm"), "Erişim izni yok"),
    (ModuleNotFoundError("No module named 'lxml'", name="lxml"), "Python paketi eksik: lxml"),
    (TimeoutError("timed out"), "zaman aşımı"),
    (RuntimeError("boom"), "Beklenmeyen hata (RuntimeError): boom"),
])
def test_errors_become_turkish_messages(fake, fake_actions, exc, words, _isolated_data_dir):
    fake_actions.send = fake_actions.record("send", exc)
    shown = excel.send()
    message, _, mode = fake.app.alerts[-1]
    assert shown == message and words in message and mode == "critical"
    assert "Traceback" not in message
    assert fake.app.status[-1] is False
    assert "Traceback" in (_isolated_data_dir / "excel-errors.log").read_text(encoding="utf-8")


def test_project_errors_keep_their_turkish_text(fake, fake_actions):
    from edefter_helper.targets.base import TransientError

    fake_actions.query = fake_actions.record("query", TransientError("İzibiz'e bağlanılamadı."))
    assert excel.query() == "İzibiz'e bağlanılamadı."


def test_missing_sheet_is_explained(fake, fake_actions):
    del fake.sheets[layout.PERIODS.name]
    fake_actions.send = lambda book, keys=None: None
    assert "'Dönemler' sayfası yok" in excel.send()


def test_store_password_never_writes_secret(fake, monkeypatch):
    firms = fake.sheets[layout.FIRMS.name]
    firms.grid.update({(2, 1): "Örnek A.Ş.", (2, 2): "0123456789", (2, 5): "izibiz", (2, 6): "ali"})
    stored = []
    creds = types.ModuleType("edefter_helper.credentials")
    creds.set_password = lambda t, u, p: stored.append((t, u, p))
    monkeypatch.setitem(sys.modules, "edefter_helper.credentials", creds)
    monkeypatch.setattr(edefter_helper, "credentials", creds, raising=False)
    prompts = []
    monkeypatch.setattr(excel, "_ask_password", lambda prompt: prompts.append(prompt) or "gizli-123")

    fake.app.selection = FakeRange(firms, (2, 3))
    excel.store_password()
    assert stored == [("izibiz", "ali", "gizli-123")]
    assert "izibiz" in prompts[0] and "ali" in prompts[0]
    assert "gizli-123" not in repr([s.grid for s in fake.sheets.values()])
    assert "gizli-123" not in repr(fake.app.alerts) + repr(fake.app.status)
    assert fake.app.alerts[-1][2] == "info"

    monkeypatch.setattr(excel, "_ask_password", lambda prompt: None)  # cancelled
    excel.store_password()
    assert len(stored) == 1 and "kaydedilmedi" in fake.app.alerts[-1][0]

    fake.app.selection = FakeRange(fake.sheets[layout.PERIODS.name], (2, 1))  # wrong sheet
    excel.store_password()
    assert len(stored) == 1 and "Firmalar sayfasında" in fake.app.alerts[-1][0]


def test_setup_check_reports_findings(fake, tmp_path):
    from edefter_helper.addin import check

    path = check.new_workbook(tmp_path / "k.xlsm", "/yok/python", template=ROOT / "workbook_template.xlsm")
    fake.fullname = str(path)
    message = excel.setup_check()
    assert "Kurulumda sorun bulundu" in message and "/yok/python" in message
    assert fake.app.alerts[-1][2] == "critical"


def test_not_started_from_excel_is_explained(monkeypatch, capsys):
    def no_excel():
        raise RuntimeError("Book.caller() must not be called directly")

    monkeypatch.setattr(excel, "_caller", no_excel)
    assert "Beklenmeyen hata" in excel.refresh()
    assert "Beklenmeyen hata" in capsys.readouterr().err


def test_import_is_light():
    code = ("import sys, edefter_helper.excel; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('lxml', 'requests', 'openpyxl', 'xlwings', 'keyring', 'urllib3', 'cryptography', 'tkinter')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_failure_before_the_workbook_is_reached_is_still_shown(monkeypatch):
    """Book.caller() failing (Python started outside Excel, Excel busy): the OS dialog shows the
    Turkish sentence instead of xlwings showing nothing."""
    shown = []

    def no_caller():
        raise ModuleNotFoundError("No module named 'xlwings'", name="xlwings")

    monkeypatch.setattr(excel, "_caller", no_caller)
    monkeypatch.setattr(excel, "_fallback_alert", shown.append)
    message = excel.refresh()
    assert shown == [message] and "Python paketi eksik: xlwings" in message


def test_rows_held_as_sheet_rows_write_as_the_dicts_do():
    """A grouped run hands the faces its rows as layout.SheetRows (tuples read as dicts): Excel gets the
    same cells, in the same one range write, as from a list of dicts."""
    rows = [{"name": f"Firma {i}", "vkn": f"{1000000000 + i}", "branch": "0000", "period": "2024-01",
             "status": "Yedeklendi", "message": "Ocak 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi.",
             "updated": dt.datetime(2024, 2, 1, 10, 0)} for i in range(30)]
    grids = []
    for given in (rows, layout.SheetRows(layout.PERIODS, rows)):
        fake = FakeBook()
        fill_periods(fake, 5)
        book = excel.XlwingsBook(fake)
        book.write_rows(layout.PERIODS, given)
        book.append_rows(layout.PERIODS, given)
        sheet = fake.sheets[layout.PERIODS.name]
        grids.append((dict(sheet.grid), len(sheet.log)))
    assert grids[0] == grids[1]


def test_without_tkinter_the_dialogs_say_what_to_do_instead(monkeypatch):
    """A Python without tkinter (some Linux and embedded installs): no dialog can open, so each
    question is a Turkish message naming the command line way, and a Yes/No question is a No."""
    import builtins

    real = builtins.__import__

    def no_tk(name, *args, **kwargs):
        if name == "tkinter" or name.startswith("tkinter."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tk)
    assert excel._ask_yes_no("Devam?") is False
    for ask, words in ((excel._ask_text, "restore --all --from"), (excel._ask_folder, "edefter restore"),
                       (excel._ask_password, "credentials set")):
        with pytest.raises(excel.UserMessage) as err:
            ask("?")
        assert "tkinter yok" in str(err.value) and words in str(err.value)
