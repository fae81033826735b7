"""FileBook's fast path (workbook/sheetxml.py): the row sheets read from and written into the file's XML
without openpyxl. Every case is done twice — through the fast path and through openpyxl (the
workbook loaded whole first, as FileBook did before) — and the two files must read back alike."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from edefter_helper.addin.check import new_workbook
from edefter_helper.workbook import layout as L
from edefter_helper.workbook import sheetxml, xlsm
from edefter_helper.workbook.file import FileBook, WorkbookError

TRICKY = [
    "Anadolu Gıda Şİ ÇÖÜĞ ışğüçö",
    'a <b> & "c" \'d\'',
    "  iki yanda boşluk  ",
    "satır\nsonu\r\nCRLF\ttab",
    "&amp; zaten kaçışlı &#305;",
    "x" * 40000,  # over Excel's 32 767 characters: cut as openpyxl cuts
    "emoji 😀 ve ]]> ve <![CDATA[",
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "kontrol.xlsm"
    new_workbook(path)
    return path


def _copy(template: Path, folder: Path, name: str) -> Path:
    dest = folder / name
    shutil.copyfile(template, dest)
    return dest


def _both(template: Path, tmp_path: Path, steps) -> tuple[Path, Path, FileBook]:
    """Run `steps(book)` on a fast FileBook and on one forced onto openpyxl; both saved."""
    fast_path, slow_path = _copy(template, tmp_path, "hizli.xlsm"), _copy(template, tmp_path, "yavas.xlsm")
    fast, slow = FileBook(fast_path), FileBook(slow_path)
    slow.wb  # noqa: B018 - loads openpyxl: every later call goes the old way
    steps(fast)
    steps(slow)
    fast.save()
    slow.save()
    return fast_path, slow_path, fast


def _grid(path: Path, name: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path, keep_vba=True)
    ws = wb[name]
    rows = [tuple(c.value for c in row) for row in ws.iter_rows()]
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    width = max((max((i + 1 for i, v in enumerate(r) if v is not None), default=0) for r in rows), default=0)
    return [tuple(r[:width]) + (None,) * (width - len(r)) for r in rows]


def _formats(path: Path, name: str) -> list[tuple]:
    """The number format of every value that shows through one; of a text only whether it is '@' (a
    text cell that overwrote a date keeps the date's format through openpyxl: it shows the same)."""
    ws = openpyxl.load_workbook(path)[name]
    return [tuple(None if c.value is None else (c.number_format == "@") if isinstance(c.value, str)
                  else c.number_format for c in row) for row in ws.iter_rows(min_row=2)]


def _assert_same(fast: Path, slow: Path, *names: str, fast_reader: bool | None = True) -> None:
    for name in names:
        assert _grid(fast, name) == _grid(slow, name), name
        assert _formats(fast, name) == _formats(slow, name), name
        # and the fast reader reads both files as openpyxl does
        sheet = next(s for s in L.DATA_SHEETS if s.name == name)
        a, b = FileBook(fast), FileBook(slow)
        fast_rows = a.read_rows(sheet)
        if fast_reader is not None:  # None: either (a formula in some sheets only)
            assert (a._wb is None) == fast_reader, "the fast reader fell back"
        assert fast_rows == b.read_rows(sheet) == _openpyxl_rows(slow, sheet) == _openpyxl_rows(fast, sheet)


def _openpyxl_rows(path: Path, sheet: L.Sheet) -> list[dict]:
    book = FileBook(path)
    book.wb  # noqa: B018
    return book.read_rows(sheet)


def _period(i: int, **kw) -> dict:
    row = {"name": f"Firma {i}", "vkn": f"{1000000000 + i}", "branch": "0000", "period": f"2024-{i % 12 + 1:02d}",
           "stage": "Onaylı Berat İndirildi", "validation": L.VALID, "status": "Yedeklendi",
           "message": f"Mesaj {i}", "updated": datetime(2024, 3, 1, 10, 30, i % 60), "sha256": f"{i:064x}",
           "reference": f"REF-{i}", "drill": None, "copies": "NAS: Yedeklendi"}
    row.update(kw)
    return row


def test_values_read_back_as_openpyxl_writes_them(template, tmp_path):
    rows = [_period(i, name=t, message=t) for i, t in enumerate(TRICKY)]
    rows += [_period(20, vkn="0000000001", branch="0001", message=None, drill=""),  # None / '' leave it blank
             _period(21, message=12345, drill=3.25),  # numbers
             _period(22, sha256=1234, updated=None),  # a number in a text column
             {"vkn": "1"},  # a row with one value
             {},  # a blank row in the middle stays a blank row
             _period(23, updated=datetime(1900, 1, 1, 0, 0))]

    def steps(book):
        book.write_rows(L.PERIODS, rows)
        book.write_rows(L.COPIES, [{"vkn": "0042", "period": "2024-01", "target": "NAS",
                                    "retain": datetime(2034, 12, 31), "updated": datetime(2024, 1, 2, 3, 4, 5)}])
        book.append_rows(L.LOG, [{"time": datetime(2024, 5, 6, 7, 8, 9), "action": "Gönder", "vkn": "0123",
                                  "message": TRICKY[1]}])

    fast, slow, book = _both(template, tmp_path, steps)
    assert book._wb is None, "the fast path fell back"
    _assert_same(fast, slow, L.PERIODS.name, L.COPIES.name, L.LOG.name)
    got = FileBook(fast).read_rows(L.PERIODS)
    assert got[0]["name"] == TRICKY[0] and got[1]["message"] == TRICKY[1] and got[2]["name"] == TRICKY[2]
    assert got[3]["name"] == "satır\nsonu\r\nCRLF\ttab"
    assert len(got[5]["name"]) == 32767
    assert got[7]["vkn"] == "0000000001" and got[7]["branch"] == "0001" and got[7]["message"] is None


def test_rewrites_with_fewer_more_rows_and_appends(template, tmp_path):
    many = [_period(i) for i in range(50)]
    few = [_period(i, status="Yedeklenemedi", message=None) for i in range(7)]

    def steps(book):
        book.write_rows(L.PERIODS, many)
        book.append_rows(L.LOG, [{"action": "a", "message": str(i)} for i in range(30)])

    fast, slow, _ = _both(template, tmp_path, steps)
    _assert_same(fast, slow, L.PERIODS.name, L.LOG.name)
    for path in (fast, slow):  # the next run: fewer rows, then more, appends after appends
        book = FileBook(path)
        if path == slow:
            book.wb  # noqa: B018
        book.write_rows(L.PERIODS, few)
        book.append_rows(L.LOG, [{"action": "b", "message": "x"}])
        book.append_rows(L.LOG, [{"action": "c", "message": "y"}])
        assert [r["action"] for r in book.read_rows(L.LOG)][-3:] == ["a", "b", "c"]
        assert book.read_rows(L.PERIODS) == FileBook(path).read_rows(L.PERIODS)[:0] + [
            {k: (v if v not in ("", None) else None) for k, v in {c.key: r.get(c.key) for c in L.PERIODS.columns}.items()}
            for r in few]
        book.save()
        assert (book._wb is None) == (path == fast)
    _assert_same(fast, slow, L.PERIODS.name, L.LOG.name)
    for path in (fast, slow):
        book = FileBook(path)
        if path == slow:
            book.wb  # noqa: B018
        book.write_rows(L.PERIODS, many + [_period(99)])
        book.write_rows(L.PERIODS, few + [_period(98)])  # the last write wins
        book.append_rows(L.PERIODS, [_period(97)])
        book.save()
    _assert_same(fast, slow, L.PERIODS.name)
    assert len(FileBook(fast).read_rows(L.PERIODS)) == 9


def _reorder(path: Path, sheet: str, order: list[int], rename: dict[str, str] | None = None) -> None:
    """A user moved columns (header and cells) and perhaps kept an older header."""
    book = FileBook(path)
    ws = book.wb[sheet]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    ws.delete_rows(1, ws.max_row)
    for r, values in enumerate(rows, start=1):
        for new_c, old_c in enumerate(order, start=1):
            v = values[old_c - 1] if old_c - 1 < len(values) else None
            if r == 1 and rename and v in rename:
                v = rename[v]
            ws.cell(row=r, column=new_c, value=v)
    book.save()


def test_reordered_columns_and_old_headers(template, tmp_path):
    base = _copy(template, tmp_path, "base.xlsm")
    n = len(L.PERIODS.columns)
    _reorder(base, L.PERIODS.name, [4, 1, 3, 2] + list(range(5, n + 1))[::-1])
    _reorder(base, L.TARGETS.name, [4, 3, 2, 1], {"Paket Açıklaması": "Açıklama"})
    # an old Dönemler without its last column (Kopyalar): the header is added at the end, as openpyxl adds it
    book = FileBook(base)
    ws = book.wb[L.COPIES.name]
    ws.delete_cols(len(L.COPIES.columns))
    book.save()

    def steps(book):
        book.write_rows(L.PERIODS, [_period(i) for i in range(5)])
        book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": "\\\\nas\\e", "description": "açık"}])
        book.write_rows(L.COPIES, [{"vkn": "0042", "updated": datetime(2024, 1, 2, 3, 4)}])

    fast, slow, book = _both(base, tmp_path, steps)
    assert book._wb is None
    _assert_same(fast, slow, L.PERIODS.name, L.TARGETS.name, L.COPIES.name)
    assert FileBook(fast).read_rows(L.TARGETS)[0]["description"] == "açık"
    assert _grid(fast, L.TARGETS.name)[0] == ("Açıklama", "Adres", "Tür", "Hedef")
    assert _grid(fast, L.COPIES.name)[0][-1] == L.COPIES.columns[-1].header


def test_a_read_alone_adds_a_missing_header_as_before(template, tmp_path):
    base = _copy(template, tmp_path, "base.xlsm")
    book = FileBook(base)
    book.wb[L.LOG.name].delete_cols(len(L.LOG.columns))
    book.append_rows(L.LOG, [{"action": "eski", "message": "m"}])
    book.save()

    def steps(book):
        assert book.read_rows(L.LOG)[0]["action"] == "eski"

    fast, slow, book = _both(base, tmp_path, steps)
    assert book._wb is None
    _assert_same(fast, slow, L.LOG.name)


@pytest.mark.parametrize("case", ["formula", "error-code", "own-column", "naive-date", "hyperlink"])
def test_what_the_fast_path_does_not_handle_goes_through_openpyxl(template, tmp_path, case):
    base = _copy(template, tmp_path, "base.xlsm")
    if case in ("own-column", "hyperlink"):
        book = FileBook(base)
        ws = book.wb[L.PERIODS.name]
        book.write_rows(L.PERIODS, [_period(i) for i in range(4)])
        if case == "own-column":
            ws.cell(row=1, column=20, value="Notum")
            ws.cell(row=3, column=20, value="bu satıra not")
        else:
            ws.cell(row=2, column=1).hyperlink = "#Firmalar!A1"
        book.save()
    value = {"formula": "=1+1", "error-code": "#N/A", "naive-date": datetime(2024, 1, 1).date()}.get(case, "x")

    def steps(book):
        book.write_rows(L.PERIODS, [_period(i, message=value) for i in range(2)])

    fast, slow, book = _both(base, tmp_path, steps)
    assert book._wb is not None, "expected the openpyxl path"
    _assert_same(fast, slow, L.PERIODS.name, fast_reader=case != "formula")


def test_an_illegal_character_fails_as_before(template, tmp_path):
    from openpyxl.utils.exceptions import IllegalCharacterError

    for force in (False, True):
        path = _copy(template, tmp_path, f"k{force}.xlsm")
        before = path.read_bytes()
        book = FileBook(path)
        if force:
            book.wb  # noqa: B018
        with pytest.raises(IllegalCharacterError):
            book.write_rows(L.PERIODS, [_period(1, message="zil \x07")])
            book.save()
        assert path.read_bytes() == before
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".~")]


def test_macros_ribbon_and_other_parts_are_kept_byte_for_byte(template, tmp_path):
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    book.write_rows(L.PERIODS, [_period(i) for i in range(10)])
    book.append_rows(L.LOG, [{"action": "x"}])
    book.save()
    assert book._wb is None
    with zipfile.ZipFile(template) as a, zipfile.ZipFile(path) as b:
        assert a.namelist() == b.namelist()
        changed = {b.getinfo(n).filename for n in b.namelist() if a.read(n) != b.read(n)}
        assert changed == {FileBook(template)._pkg.sheets[L.PERIODS.name], FileBook(template)._pkg.sheets[L.LOG.name],
                           "docProps/core.xml"}
        for name in a.namelist():
            if xlsm.is_macro_part(name):
                assert a.read(name) == b.read(name)
    assert xlsm.VBA_PART in zipfile.ZipFile(path).namelist()
    from edefter_helper.workbook.file import not_a_control_workbook

    assert not_a_control_workbook(path) is None
    # Excel's settings around the rows are those of the template: only <dimension> follows the rows
    part = FileBook(template)._pkg.sheets[L.PERIODS.name]
    old = zipfile.ZipFile(template).read(part)
    new = zipfile.ZipFile(path).read(part)
    assert new.startswith(old[:old.index(b"<dimension")])
    assert new[new.index(b"</sheetData>"):] == old[old.index(b"</sheetData>"):]
    assert b'<dimension ref="A1:M11"/>' in new


def test_mode_is_kept(template, tmp_path):
    if os.name == "nt":
        pytest.skip("POSIX modes")
    path = _copy(template, tmp_path, "k.xlsm")
    os.chmod(path, 0o640)
    book = FileBook(path)
    book.write_rows(L.PERIODS, [_period(1)])
    book.save()
    assert book._wb is None and (path.stat().st_mode & 0o777) == 0o640


def test_a_killed_save_leaves_the_workbook_as_it_was(template, tmp_path):
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    book.write_rows(L.PERIODS, [_period(i) for i in range(3)])
    book.save()
    before = path.read_bytes()
    script = f"""
import os, sys
from edefter_helper.workbook import sheetxml, layout as L
from edefter_helper.workbook.file import FileBook
real = sheetxml.row_xml
calls = []
def dying(*a, **kw):
    calls.append(1)
    if len(calls) == 500:
        os._exit(9)  # as kill -9 in the middle of writing the rows
    return real(*a, **kw)
sheetxml.row_xml = dying
book = FileBook({str(path)!r})
book.write_rows(L.PERIODS, [{{"name": f"F{{i}}", "vkn": "1"}} for i in range(2000)])
book.save()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".~")]
    assert len(left) == 1  # the temporary: the next run's clean_stale_temporaries removes it
    assert len(FileBook(path).read_rows(L.PERIODS)) == 3


def test_reload_sees_another_save_and_not_its_own_stale_copy(template, tmp_path):
    path = _copy(template, tmp_path, "k.xlsm")
    a = FileBook(path)
    b = FileBook(path)
    b.write_rows(L.FIRMS, [{"name": "Yeni", "vkn": "0012345678"}])
    b.save()
    assert a.read_rows(L.FIRMS) == []  # a still holds what it read
    a.reload()
    assert a.read_rows(L.FIRMS)[0]["vkn"] == "0012345678"
    a.write_rows(L.PERIODS, [_period(1)])
    a.save()
    a.append_rows(L.LOG, [{"action": "sonra"}])  # after a save the book goes on from what it saved
    a.save()
    c = FileBook(path)
    assert c.read_rows(L.FIRMS)[0]["name"] == "Yeni" and len(c.read_rows(L.PERIODS)) == 1
    assert c.read_rows(L.LOG)[-1]["action"] == "sonra"


def test_a_workbook_saved_by_excel_style_shared_strings_is_read(template, tmp_path):
    """Excel keeps text in sharedStrings.xml (t="s"), numbers without t, and spans on rows."""
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    book.write_rows(L.PERIODS, [_period(1, message="paylaşılan & metin")])
    book.save()
    part = book._pkg.sheets[L.PERIODS.name]
    with zipfile.ZipFile(path) as zin:
        parts = {n: zin.read(n) for n in zin.namelist()}
    xml = parts[part].decode()
    strings = []

    def shared(m):
        text = m.group(2)
        strings.append(text)
        return f'{m.group(1)} t="s"><v>{len(strings) - 1}</v></c>'

    import re

    xml = re.sub(r'(<c r="[A-Z]+\d+"(?: s="\d+")?) t="inlineStr"><is><t(?: xml:space="preserve")?>([^<]*)</t></is></c>',
                 shared, xml)
    xml = xml.replace('<row r="2">', '<row r="2" spans="1:13" x14ac:dyDescent="0.25">').replace(' t="n"', "")
    xml = xml.replace("<worksheet ", '<worksheet xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" ', 1)
    parts[part] = xml.encode()
    sst = "".join(f"<si><t>{s}</t></si>" if i % 2 or s.startswith("&")  # a few as rich text runs
                  else f"<si><r><t>{s[:1]}</t></r><r><t>{s[1:]}</t></r></si>" for i, s in enumerate(strings))
    parts["xl/sharedStrings.xml"] = (f'<sst xmlns="{sheetxml.MAIN_NS}" count="{len(strings)}" '
                                     f'uniqueCount="{len(strings)}">{sst}</sst>').encode()
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdSST" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for n, data in parts.items():
            zout.writestr(n, data)
    fast = FileBook(path)
    rows = fast.read_rows(L.PERIODS)
    assert fast._wb is None
    assert rows == _openpyxl_rows(path, L.PERIODS)
    assert rows[0]["message"] == "paylaşılan & metin" and rows[0]["updated"] == datetime(2024, 3, 1, 10, 30, 1)
    # and a rewrite of it keeps the shared strings the other sheets may use
    fast.write_rows(L.PERIODS, rows + [_period(2)])
    fast.save()
    assert fast._wb is None
    assert FileBook(path).read_rows(L.PERIODS) == _openpyxl_rows(path, L.PERIODS)
    assert zipfile.ZipFile(path).read("xl/sharedStrings.xml") == parts["xl/sharedStrings.xml"]


def test_libreoffice_reads_what_the_fast_path_wrote_as_it_reads_openpyxl_s(template, tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        pytest.skip("LibreOffice (soffice) is not installed")
    rows = [_period(i, name=TRICKY[i % 5]) for i in range(30)]
    fast, slow, book = _both(template, tmp_path, lambda b: b.write_rows(L.PERIODS, rows))
    assert book._wb is None
    import csv

    tables = []
    for path in (fast, slow):
        out = tmp_path / f"csv-{path.stem}"
        # every sheet to its own CSV (LibreOffice 7.2+: the 12th token -1), UTF-8 (76)
        proc = subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
                               "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,"
                               "false,-1", "--outdir", str(out), str(path)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        sheet_csv = next(p for p in out.glob("*.csv") if L.PERIODS.name in p.name)
        tables.append(list(csv.reader(sheet_csv.open(encoding="utf-8", newline=""))))
    table = tables[0]
    assert table == tables[1]
    assert table[0] == L.PERIODS.headers and len(table) == 31
    for got, row in zip(table[1:], rows):
        assert got[1] == row["vkn"] and got[2] == "0000" and got[3] == row["period"] and got[9] == row["sha256"]
    assert table[2][0] == TRICKY[1] and table[3][0] == TRICKY[2]


@pytest.mark.parametrize("sheet", [L.PERIODS, L.COPIES, L.LOG], ids=lambda s: s.name)
def test_through_xlwings_range_calls_do_not_grow_with_rows(sheet):
    """The live face (excel.XlwingsBook) on test_excel_adapter's recording stand-in: a write, an append
    and a read of the office's row sheets cost the same number of range calls for 10 rows as for 5 000."""
    from test_excel_adapter import FakeBook

    from edefter_helper import excel

    counts = []
    for n in (10, 5000):
        fake = FakeBook()
        ws = fake.sheets[sheet.name]
        for c, h in enumerate(sheet.headers, start=1):
            ws.grid[(1, c)] = h
        book = excel.XlwingsBook(fake)
        rows = [{c.key: (datetime(2024, 1, 1, 9, 0) if c.number_format and c.number_format != "@" else f"{c.key}{i}")
                 for c in sheet.columns} for i in range(n)]
        seen = []
        for op in ("write", "append", "read"):
            ws.log.clear()
            if op == "write":
                book.write_rows(sheet, rows)
            elif op == "append":
                book.append_rows(sheet, rows[: n // 2])
            else:
                assert len(book.read_rows(sheet)) == n + n // 2
            assert ws.log.count("write") <= 1 and ws.log.count("read") <= 1
            seen.append(len(ws.log))
        counts.append(seen)
    assert counts[0] == counts[1], counts


def test_a_sheet_libreoffice_saved_is_read_as_openpyxl_reads_it(template, tmp_path):
    """LibreOffice's own xlsx (shared strings, every row and column attribute spelled out)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        pytest.skip("LibreOffice (soffice) is not installed")
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    book.write_rows(L.PERIODS, [_period(i, name=TRICKY[i % 5], drill=i * 1.5) for i in range(40)])
    book.save()
    proc = subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
                           "--convert-to", "xlsx", "--outdir", str(tmp_path / "lo"), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    saved = tmp_path / "lo" / "k.xlsx"
    pkg = sheetxml.Package(saved.read_bytes())
    assert pkg.strings_part  # LibreOffice keeps text in sharedStrings.xml
    got = [(r, cells) for r, cells in sheetxml.rows_of(pkg, pkg.sheets[L.PERIODS.name], sheetxml.SheetScan())]
    ws = openpyxl.load_workbook(saved)[L.PERIODS.name]
    want = [(row[0].row, {c.column: c.value for c in row if c.value is not None}) for row in ws.iter_rows()]
    assert got == [w for w in want if w[1]]
    assert len(got) == 41 and got[2][1][1] == TRICKY[1]


def test_own_column_values_survive_an_append_then_a_write_as_before(template, tmp_path):
    base = _copy(template, tmp_path, "base.xlsm")
    book = FileBook(base)
    book.write_rows(L.PERIODS, [_period(i) for i in range(4)])
    ws = book.wb[L.PERIODS.name]
    ws.cell(row=1, column=20, value="Notum")
    ws.cell(row=4, column=20, value="bu satıra not")
    book.save()

    def steps(book):
        book.append_rows(L.PERIODS, [_period(9)])  # keeps the file's rows as they are: fast
        book.write_rows(L.PERIODS, [_period(i, status="Yedeklenemedi") for i in range(3)])

    fast, slow, book = _both(base, tmp_path, steps)
    assert book._wb is not None
    _assert_same(fast, slow, L.PERIODS.name)
    assert _grid(fast, L.PERIODS.name)[3][19] == "bu satıra not"


@pytest.mark.parametrize("chunk", [61, 4096])
def test_chunk_boundaries_do_not_matter(template, tmp_path, monkeypatch, chunk):
    """The sheet part is streamed in pieces: any piece size reads and writes the same."""
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    rows = [_period(i, name=TRICKY[i % len(TRICKY)][:500]) for i in range(60)]
    book.write_rows(L.PERIODS, rows)
    book.append_rows(L.LOG, [{"action": f"a{i}", "message": TRICKY[i % 4]} for i in range(40)])
    book.save()
    want_rows = FileBook(path).read_rows(L.PERIODS)
    want_log = FileBook(path).read_rows(L.LOG)
    small = _copy(path, tmp_path, "small.xlsm")
    monkeypatch.setattr(sheetxml, "CHUNK", chunk)
    book = FileBook(small)
    assert book.read_rows(L.PERIODS) == want_rows
    assert book.read_rows(L.LOG) == want_log
    book.write_rows(L.PERIODS, rows[:30])
    book.append_rows(L.LOG, [{"action": "son"}])
    book.save()
    assert book._wb is None
    monkeypatch.setattr(sheetxml, "CHUNK", 1 << 20)
    assert FileBook(small).read_rows(L.PERIODS) == want_rows[:30]
    assert FileBook(small).read_rows(L.LOG) == want_log + [{c.key: ("son" if c.key == "action" else None)
                                                            for c in L.LOG.columns}]
    assert _grid(small, L.LOG.name)[1:-1] == _grid(path, L.LOG.name)[1:]


def test_a_backup_to_a_folder_writes_the_workbook_through_the_fast_path(template, tmp_path):
    """The actions' whole write-back (Dönemler, Kopyalar, Günlük) never needs openpyxl; the result
    reads the same through openpyxl."""
    from edefter_helper import actions
    from edefter_helper import status as S
    from edefter_helper.samples import write_month

    vkn = "4810525635"
    ledgers = tmp_path / "Defterler"
    write_month(ledgers / "Anadolu", vkn, "2024-01")
    write_month(ledgers / "Anadolu", vkn, "2024-02")
    nas = tmp_path / "nas"
    nas.mkdir()
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    book.write_rows(L.FIRMS, [{"name": "Anadolu Gıda", "vkn": vkn, "folder": str(ledgers), "target": "NAS",
                               "auto": "Evet"}])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    options = actions.Options(journal=tmp_path / "j.sqlite3", retry_backoff=0.01, wait=30, poll=0.1)
    for run in (actions.refresh, actions.backup):
        book = FileBook(path)
        run(book, options=options)
        assert book._wb is None, run.__name__
    rows = FileBook(path).read_rows(L.PERIODS)
    assert [(r["period"], r["status"]) for r in rows] == [("2024-01", S.BACKED_UP), ("2024-02", S.BACKED_UP)]
    for sheet in (L.PERIODS, L.COPIES, L.LOG):
        assert FileBook(path).read_rows(sheet) == _openpyxl_rows(path, sheet)
    assert len(FileBook(path).read_rows(L.COPIES)) == 2


@pytest.mark.parametrize("seed", list(range(8)) + [f"fallback-{i}" for i in range(4)])
def test_random_runs_read_back_as_through_openpyxl(template, tmp_path, seed):
    """Random sequences of writes, appends and reads over two runs, with values of every kind the
    actions write (fixed seeds: the same cases every time); the fallback seeds add values the fast path
    leaves to openpyxl, so a save replays the run's earlier changes there."""
    import random

    rnd = random.Random(seed)
    pool = TRICKY[:5] + ["", " ", None, None, "0000", "0123456789", "Yedeklendi", 0, 42, -7, 3.5, 1e-9,
                         datetime(2024, 2, 29, 23, 59, 59), datetime(2030, 1, 1)]
    fallback = str(seed).startswith("fallback")
    if fallback:
        pool += ["=1+1", "#N/A"]

    def value(col):
        v = rnd.choice(pool)
        if isinstance(v, (int, float)) and col.number_format and col.number_format != "@":
            return None  # a number in a date column is left to openpyxl (tested above)
        if isinstance(v, datetime) and not col.number_format:
            return str(v)
        return v

    def rows(sheet, n):
        return [{c.key: value(c) for c in sheet.columns if rnd.random() < 0.8} for _ in range(n)]

    runs = []
    for _ in range(2):
        ops = []
        for _ in range(rnd.randint(1, 4)):
            sheet = rnd.choice([L.PERIODS, L.LOG, L.COPIES])
            ops.append((rnd.choice(["write", "append", "read"]), sheet, rows(sheet, rnd.randint(0, 25))))
        runs.append(ops)
    fast_path, slow_path = _copy(template, tmp_path, "hizli.xlsm"), _copy(template, tmp_path, "yavas.xlsm")
    for ops in runs:
        seen = []
        for path in (fast_path, slow_path):
            book = FileBook(path)
            if path == slow_path:
                book.wb  # noqa: B018
            got = []
            for op, sheet, data in ops:
                if op == "write":
                    book.write_rows(sheet, data)
                elif op == "append":
                    book.append_rows(sheet, data)
                else:
                    got.append(book.read_rows(sheet))
            book.save()
            if path == fast_path and not fallback:
                assert book._wb is None
            seen.append(got)
        assert seen[0] == seen[1]
    _assert_same(fast_path, slow_path, L.PERIODS.name, L.LOG.name, L.COPIES.name, fast_reader=None if fallback else True)


def test_a_hedefler_sheet_with_both_the_new_and_the_old_description_header(template, tmp_path):
    """'Paket Açıklaması' is read where both it and an older 'Açıklama' column exist (the old one stays the
    user's own column); both paths read and write alike."""
    base = _copy(template, tmp_path, "base.xlsm")
    book = FileBook(base)
    ws = book.wb[L.TARGETS.name]
    extra = len(L.TARGETS.columns) + 1
    ws.cell(row=1, column=extra, value="Açıklama")
    for c, value in enumerate(("NAS", "klasör", "\\\\nas\\e", "yeni"), start=1):
        ws.cell(row=2, column=c, value=value)
    ws.cell(row=2, column=extra, value="eski")
    book.save()
    fast_read, slow_read = FileBook(base), FileBook(base)
    slow_read.wb  # noqa: B018 - forced onto openpyxl
    assert fast_read.read_rows(L.TARGETS) == slow_read.read_rows(L.TARGETS)
    assert fast_read.read_rows(L.TARGETS)[0]["description"] == "yeni"

    def steps(book):
        book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": "\\\\nas\\e", "description": "açık"}])

    fast, slow, _ = _both(base, tmp_path, steps)
    _assert_same(fast, slow, L.TARGETS.name)
    assert FileBook(fast).read_rows(L.TARGETS)[0]["description"] == "açık"
    assert _grid(fast, L.TARGETS.name)[1][extra - 1] == "eski"  # the user's own column is left as it was


# -- crafted files: each reads as openpyxl reads it (falling back to it where the fast path cannot be
# sure), or fails as openpyxl fails (a WorkbookError) ------------------------------------------------

def _crafted(template: Path, tmp_path: Path, edit) -> Path:
    """A workbook with two Dönemler rows whose sheet part went through `edit(xml bytes) -> bytes`."""
    path = _copy(template, tmp_path, "k.xlsm")
    book = FileBook(path)
    book.write_rows(L.PERIODS, [_period(1, message="MESAJ-BIR"), _period(2, message="MESAJ-IKI")])
    book.save()
    part = book._pkg.sheets[L.PERIODS.name]
    with zipfile.ZipFile(path) as zin:
        parts = {n: zin.read(n) for n in zin.namelist()}
    parts[part] = edit(parts[part])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for n, data in parts.items():
            zout.writestr(n, data)
    return path


def _fast_rows(path: Path) -> tuple[list[dict], bool]:
    book = FileBook(path)
    return book.read_rows(L.PERIODS), book._wb is None


_FAKE = (b'<!--<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Sahte</t></is></c></row>'
         b'<row r="2"><c r="A2" t="inlineStr"><is><t>Sahte</t></is></c></row></sheetData>-->')
_CRAFTED = {
    # a <sheetData> in a comment, a processing instruction or a DOCTYPE ahead of the real one
    "comment": lambda x: x.replace(b"<sheetData>", _FAKE + b"<sheetData>", 1),
    "processing-instruction": lambda x: x.replace(b"<sheetData>", b"<?pi <sheetData></sheetData>?><sheetData>", 1),
    # an entity a DTD defines: only an XML parser expands it
    "doctype-entity": lambda x: (b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE worksheet [<!ENTITY f "Gizli">]>'
                                 + x.replace(b"MESAJ-BIR", b"&f;")),
    # bytes in another encoding that happen to be valid UTF-8 ('Ã¼' in ISO-8859-9 reads as 'ü' in UTF-8)
    "latin-encoding": lambda x: (b'<?xml version="1.0" encoding="ISO-8859-9"?>'
                                 + x.replace(b"MESAJ-BIR", "Ã¼ Ş".encode("iso-8859-9"))),
    # a row's cells twice (the last one holds, as in openpyxl) and out of column order
    "duplicated-cells": lambda x: re.sub(rb'(<row r="2">)(.*?)(</row>)', lambda m: m.group(1) + m.group(2).replace(
        b"MESAJ-BIR", b"ilk") + m.group(2) + m.group(3), x, count=1, flags=re.S),
    "cells-out-of-order": lambda x: re.sub(rb'(<row r="3">)(<c .*?</c>)(.*?)(</row>)',
                                           lambda m: m.group(1) + m.group(3) + m.group(2) + m.group(4), x,
                                           count=1, flags=re.S),
    # rows out of order: openpyxl's reading, in row order
    "rows-out-of-order": lambda x: re.sub(rb'(<row r="2">.*?</row>)(<row r="3">.*?</row>)',
                                          lambda m: m.group(2) + m.group(1), x, count=1, flags=re.S),
}


@pytest.mark.parametrize("case", sorted(_CRAFTED))
def test_a_crafted_sheet_reads_as_openpyxl_reads_it(template, tmp_path, case):
    path = _crafted(template, tmp_path, _CRAFTED[case])
    rows, stayed_fast = _fast_rows(path)
    assert rows == _openpyxl_rows(path, L.PERIODS)
    assert [r["name"] for r in rows][:2] == ["Firma 1", "Firma 2"] or case == "rows-out-of-order"
    expect_fast = case in ("duplicated-cells", "cells-out-of-order")
    assert stayed_fast == expect_fast
    message = {"doctype-entity": "Gizli", "latin-encoding": "Ã¼ Ş", "duplicated-cells": "MESAJ-BIR"}
    if case in message:
        assert rows[0]["message"] == message[case]


@pytest.mark.parametrize("text", [b"&tanimsiz;", b"&#0;", b"bir & iki", b"&#x110000;"])
def test_a_reference_no_xml_parser_accepts_fails_in_turkish(template, tmp_path, text):
    path = _crafted(template, tmp_path, lambda x: x.replace(b"MESAJ-BIR", text))
    with pytest.raises(WorkbookError, match="Çalışma kitabı açılamadı"):
        FileBook(path).read_rows(L.PERIODS)


def test_a_row_longer_than_the_fast_path_holds_goes_through_openpyxl(template, tmp_path, monkeypatch):
    path = _crafted(template, tmp_path, lambda x: x.replace(b"MESAJ-BIR", b"u" * 5000))
    monkeypatch.setattr(sheetxml, "CHUNK", 512)
    monkeypatch.setattr(sheetxml, "MAX_ROW", 2048)
    rows, stayed_fast = _fast_rows(path)
    assert not stayed_fast
    assert rows == _openpyxl_rows(path, L.PERIODS) and rows[0]["message"] == "u" * 5000


def test_a_package_that_unpacks_past_the_limit_is_refused_in_turkish(template, tmp_path, monkeypatch):
    """A zip bomb (here a limit lowered under a real sheet of zeros): refused before either reader
    unpacks it, the file untouched."""
    from edefter_helper.workbook import file as file_face

    path = _crafted(template, tmp_path, lambda x: x.replace(b"MESAJ-BIR", b"0" * (4 << 20)))
    before = path.read_bytes()
    assert len(before) < (1 << 20)
    monkeypatch.setattr(file_face, "MAX_UNPACKED", 2 << 20)
    with pytest.raises(WorkbookError, match="zip bombası"):
        FileBook(path)
    assert path.read_bytes() == before
