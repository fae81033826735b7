"""The Excel template: ribbon XML, VBA callbacks, MS-OVBA/compound-file round trips, reproducible build."""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import pytest

from edefter_helper import excel
from edefter_helper.addin import build, cfb, check, ovba, vba
from edefter_helper.workbook import layout, xlsm

olefile = pytest.importorskip("olefile", reason="olefile (with oletools) reads compound files back")
olevba = pytest.importorskip("oletools.olevba", reason="oletools reads the VBA back")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCHEMAS = SHARED / "schemas" / "customui"
ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "workbook_template.xlsm"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    return build.build_template(tmp_path_factory.mktemp("build") / "t.xlsm")


def macros(path) -> dict[str, str]:
    parser = olevba.VBA_Parser(str(path))
    try:
        return {name: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


# ---------------------------------------------------------------- MS-OVBA compression

def _inputs():
    rnd = random.Random(4)
    text = build.xlwings_bas().encode("cp1252")
    yield b""
    yield b"x"
    yield b"abc"
    yield b" " * 9000  # one long run crossing chunk borders
    yield b"ab" * 4000
    yield text  # the real module, 11 chunks
    yield text[:4096]  # exactly one chunk
    yield text[:4097]
    yield bytes(rnd.randrange(256) for _ in range(8192))  # incompressible: raw chunks
    yield bytes(rnd.choice(b"ab \r\n") for _ in range(10000))
    words = [b"Sub ", b"End Sub\r\n", b"RunPython ", b"Dim x As String\r\n", b"    "]
    yield b"".join(rnd.choice(words) for _ in range(3000))


@pytest.mark.parametrize("data", list(_inputs()), ids=lambda d: f"{len(d)}B")
def test_ovba_round_trips_through_oletools(data):
    packed = ovba.compress(data)
    assert bytes(olevba.decompress_stream(bytearray(packed))) == data
    assert ovba.decompress(packed) == data


def test_ovba_compresses_text():
    text = build.xlwings_bas().encode("cp1252")
    assert len(ovba.compress(text)) < len(text) // 2


# ---------------------------------------------------------------- compound file

def test_cfb_rewrite_changes_one_stream_only():
    base = build.base_vba_project()
    new_stream = bytes(range(256)) * 30  # > 4096: moves from the mini stream to big sectors
    out = cfb.rewrite(base, {"VBA/Module1": new_stream})
    before, after = olefile.OleFileIO(base), olefile.OleFileIO(out)
    assert sorted(before.listdir()) == sorted(after.listdir())
    for entry in before.listdir():
        name = "/".join(entry)
        expected = new_stream if name == "VBA/Module1" else before.openstream(name).read()
        assert after.openstream(name).read() == expected, name
    assert cfb.rewrite(out, {}) == cfb.rewrite(cfb.rewrite(out, {}), {})  # stable layout


# ---------------------------------------------------------------- ribbon

@pytest.mark.parametrize("part,xsd", [("customUI14.xml", "customui14.xsd"), ("customUI.xml", "customUI.xsd")])
def test_ribbon_valid_against_microsoft_schema(part, xsd):
    if not (SCHEMAS / xsd).exists():
        pytest.skip(f"Microsoft's ribbon schemas not found at {SCHEMAS} (../shared missing)")
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(SCHEMAS / xsd))
    schema.validate(str(build.ADDIN_DIR / part))
    broken = (build.ADDIN_DIR / part).read_text(encoding="utf-8").replace('size="large"', 'size="huge"', 1)
    assert not schema.is_valid(broken)  # the validation can fail


def test_ribbon_parts_have_same_buttons():
    def buttons(name):
        from xml.etree import ElementTree as ET

        root = ET.parse(build.ADDIN_DIR / name).getroot()
        return [(b.get("id"), b.get("label"), b.get("imageMso"), b.get("onAction"))
                for b in root.iter() if b.tag.endswith("}button")]

    got = buttons("customUI14.xml")
    assert got == buttons("customUI.xml")
    assert [b[1] for b in got] == ["Dönemleri Tara / Yenile", "Gönder", "Durum Sorgula",
                                   "Toplu Yedekle", "Durumu Yenile", "Takvim / Radar", "Geri Yükle / İbraz Paketi",
                                   "Kimlik Bilgisi",
                                   "Kurulum Kontrolü"]
    assert all(b[2] for b in got)  # built-in icons


# ---------------------------------------------------------------- VBA callbacks

def test_every_ribbon_action_has_its_sub_and_runpython_names_real_function(fresh):
    code = macros(fresh)["xlwings.bas"]
    subs = check.ribbon_subs(code)
    with zipfile.ZipFile(fresh) as z:
        actions = check.ribbon_actions(z.read("customUI/customUI14.xml"))
        assert actions == check.ribbon_actions(z.read("customUI/customUI.xml"))
    assert len(actions) == 9
    assert {a.lower() for a in actions} <= subs
    calls = [c for c in check.runpython_calls(code) if "edefter_helper" in c]
    assert len(calls) == 9
    for call in calls:
        assert check.python_call_problem(call) is None, call
        func = call.rsplit(".", 1)[1].rstrip("()")
        assert callable(getattr(excel, func))
    assert check.python_call_problem("import edefter_helper.excel as e; e.nope()")
    assert check.python_call_problem("import edefter_helper.nomodule as e; e.send()")


def test_vba_is_xlwings_module_plus_callbacks_and_other_streams_untouched(fresh):
    got = macros(fresh)
    base_zip = build.xlwings_dir() / "quickstart_standalone.xlsm"
    base = macros(base_zip)
    added = {f"Sheet{n}.cls" for n in range(3, len(build.sheet_code_names(build.build_workbook())) + 1)}
    assert got.keys() == base.keys() | added  # a document module for every sheet (tests/test_vba_modules.py)
    assert got["xlwings.bas"].replace("\r\n", "\n").rstrip("\n") == build.vba_source().rstrip("\n")
    with zipfile.ZipFile(fresh) as z:
        assert vba.read_modules(z.read("xl/vbaProject.bin"))["xlwings"] == build.vba_source()
    assert got["xlwings.bas"].startswith(base["xlwings.bas"].rstrip("\n"))
    with zipfile.ZipFile(fresh) as z:
        ours = olefile.OleFileIO(z.read("xl/vbaProject.bin"))
    theirs = olefile.OleFileIO(build.base_vba_project())
    for entry in theirs.listdir():
        name = "/".join(entry)
        if name not in ("VBA/xlwings", "VBA/dir", "PROJECT", "PROJECTwm"):  # the last three list modules
            assert ours.openstream(name).read() == theirs.openstream(name).read(), name
    # the bytes before the source offset (none for xlwings' module) are kept
    project = vba.parse_dir(theirs.openstream("VBA/dir").read())
    mod = next(m for m in project.modules if m.name == "xlwings")
    assert ours.openstream("VBA/xlwings").read()[:mod.offset] == theirs.openstream("VBA/xlwings").read()[:mod.offset]


def test_dir_parser_agrees_with_oletools():
    base = build.base_vba_project()
    ours = vba.read_modules(base)
    theirs = macros(build.xlwings_dir() / "quickstart_standalone.xlsm")
    assert {f"{k}": v.replace("\r\n", "\n") for k, v in ours.items()} == \
        {k.rsplit(".", 1)[0]: v.replace("\r\n", "\n") for k, v in theirs.items()}


# ---------------------------------------------------------------- sheets and reproducibility

def test_sheets_follow_layout(fresh):
    import openpyxl

    wb = openpyxl.load_workbook(fresh)
    assert wb.sheetnames == [s.name for s in layout.DATA_SHEETS] + [layout.CALENDAR_SHEET, layout.HELP_SHEET,
                                                                    layout.CONF_SHEET]
    assert wb[layout.CONF_SHEET].sheet_state == "hidden"  # not veryHidden: xlwings reads it
    assert wb[layout.CALENDAR_SHEET].conditional_formatting  # colours by the cell's word
    for sheet in layout.DATA_SHEETS:
        ws = wb[sheet.name]
        assert [c.value for c in ws[1]] == sheet.headers
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref.startswith("A1:")
        for i, col in enumerate(sheet.columns, start=1):
            letter = openpyxl.utils.get_column_letter(i)
            assert ws.column_dimensions[letter].width == col.width
            if col.number_format:
                assert ws.column_dimensions[letter].number_format == col.number_format
        lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
        for i, col in enumerate(sheet.columns, start=1):
            letter = openpyxl.utils.get_column_letter(i)
            if col.choices:
                assert lists[f"{letter}2:{letter}1048576"] == '"' + ",".join(col.choices) + '"'
            if col.choices_from == "target-names":
                assert lists[f"{letter}2:{letter}1048576"] == layout.TARGET_LIST
            if col.hint:  # Excel's limits for an input message: title 32, text 255 characters
                prompt = next(dv for dv in ws.data_validations.dataValidation
                              if str(dv.sqref) == f"{letter}2:{letter}1048576" and dv.prompt)
                # on a list column the list's own validation carries it (Excel repairs two on one cell)
                assert (prompt.promptTitle, prompt.prompt) == col.hint
                assert prompt.type == ("list" if col.choices or col.choices_from else None)
                assert len(col.hint[0]) <= 32 and len(col.hint[1]) <= 255 and prompt.showInputMessage
        ranges = [str(dv.sqref) for dv in ws.data_validations.dataValidation]
        assert len(ranges) == len(set(ranges)), f"{sheet.name}: two validations on one range"
    periods = wb[layout.PERIODS.name]
    letter = openpyxl.utils.get_column_letter(layout.PERIODS.index("status") + 1)
    rules = periods.conditional_formatting
    ranges = [str(cf.sqref) for cf in rules]
    assert ranges == [f"{letter}2:{letter}1048576"]
    formulas = [r.formula[0] for cf in rules for r in cf.rules]
    assert formulas == [f'"{w}"' for w in build.STATUS_COLORS]
    conf = {r[0]: r[1] for r in wb[layout.CONF_SHEET].iter_rows(values_only=True)}
    assert conf["SHOW_ERROR_POPUPS"] == "False" and "INTERPRETER_WIN" in conf and "INTERPRETER_MAC" in conf


def test_build_is_byte_deterministic(fresh, tmp_path):
    again = build.build_template(tmp_path / "again.xlsm")
    assert again.read_bytes() == fresh.read_bytes()


def test_committed_template_matches_sources(fresh):
    assert TEMPLATE.exists(), "workbook_template.xlsm missing: python -m edefter_helper.addin.build"
    with zipfile.ZipFile(TEMPLATE) as a, zipfile.ZipFile(fresh) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():
            assert a.read(name) == b.read(name), f"{name} differs: rebuild with python -m edefter_helper.addin.build"
    assert macros(TEMPLATE) == macros(fresh)


# ---------------------------------------------------------------- new_workbook / check_workbook

def test_new_workbook_writes_interpreter_and_checks_clean(tmp_path, monkeypatch):
    out = check.new_workbook(tmp_path / "kontrol.xlsm", template=TEMPLATE)
    conf = check.read_conf(out)
    for key in check.interpreter_keys():
        assert conf[key] == check._windowless(os.sys.executable)
    assert check.check_workbook(out) == []
    with pytest.raises(FileExistsError):
        check.new_workbook(out, template=TEMPLATE)


def test_check_finds_missing_interpreter_and_version_mismatch(tmp_path, monkeypatch):
    out = check.new_workbook(tmp_path / "k.xlsm", "/yok/python", template=TEMPLATE)
    findings = check.check_workbook(out, probe_interpreter=False)
    assert any("/yok/python" in f and "bulunamadı" in f for f in findings)
    monkeypatch.setattr(check, "_installed_xlwings", lambda: "0.99.0")
    assert any("sürümü uyuşmuyor" in f and "0.99.0" in f for f in check.check_workbook(out, probe_interpreter=False))


def _rewrite_zip(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = edit(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)


def test_check_finds_damaged_ribbon_and_callbacks(tmp_path):
    good = check.new_workbook(tmp_path / "good.xlsm", template=TEMPLATE)
    no14 = tmp_path / "no14.xlsm"
    _rewrite_zip(good, no14, lambda n, d: d.replace(xlsm.RIBBON_2009.encode(), b"http://x/none")
                 if n == "_rels/.rels" else d)
    assert any("Şerit ilişkisi eksik" in f and "customUI14" in f for f in check.check_workbook(no14, probe_interpreter=False))
    gone = tmp_path / "gone.xlsm"
    _rewrite_zip(good, gone, lambda n, d: None if n == "customUI/customUI.xml" else d)
    assert any("Şerit bölümü eksik: customUI/customUI.xml" in f for f in check.check_workbook(gone, probe_interpreter=False))

    # a callback Sub renamed, a RunPython pointing at a function that does not exist
    source = build.vba_source().replace("Sub EDefterQuery(", "Sub EDefterQueryX(").replace("e.backup()", "e.yedekle()")
    damaged_bin = vba.replace_module_source(build.base_vba_project(), "xlwings", source)
    bad = tmp_path / "bad.xlsm"
    _rewrite_zip(good, bad, lambda n, d: damaged_bin if n == "xl/vbaProject.bin" else d)
    findings = check.check_workbook(bad, probe_interpreter=False)
    assert any("EDefterQuery(" in f for f in findings)
    assert any("edefter_helper.excel.yedekle" in f for f in findings)


def test_vba_project_keeps_forcing_excel_to_compile_from_source():
    """The build reuses the old module's p-code offset: only safe while _VBA_PROJECT's version is
    0xFFFF (Excel then ignores the p-code and compiles the source), as in xlwings' shipped file."""
    from edefter_helper.addin import cfb

    with zipfile.ZipFile(TEMPLATE) as z:
        stream = cfb.CompoundFile(z.read("xl/vbaProject.bin")).stream("VBA/_VBA_PROJECT")
    assert stream[:2] == b"\xcc\x61" and stream[2:4] == b"\xff\xff"


def test_check_notices_a_vba_project_rewritten_without_the_dictionary_class(tmp_path, monkeypatch):
    from edefter_helper.addin import vba as vba_mod

    real = vba_mod.read_modules
    monkeypatch.setattr(vba_mod, "read_modules",
                        lambda data: {k: v for k, v in real(data).items() if k != "Dictionary"})
    findings = check.check_workbook(TEMPLATE, probe_interpreter=False)
    assert any("Dictionary" in f and "yeniden oluşturun" in f for f in findings)


# ---------------------------------------------------------------- Firmalar.Hedef drop-down (issue 14)

def _target_drop_down(path):
    import openpyxl

    wb = openpyxl.load_workbook(path)
    letter = openpyxl.utils.get_column_letter(layout.FIRMS.index("target") + 1)
    found = [dv for dv in wb[layout.FIRMS.name].data_validations.dataValidation
             if str(dv.sqref) == f"{letter}2:{letter}1048576" and dv.formula1 == layout.TARGET_LIST]
    name = wb.defined_names.get(layout.TARGET_LIST)
    return found, (name.attr_text if name is not None else None)


def test_firm_target_column_lists_the_hedefler_names_through_a_defined_name(fresh):
    found, refers_to = _target_drop_down(fresh)
    assert len(found) == 1 and found[0].type == "list" and found[0].allow_blank
    assert found[0].errorStyle == "warning"  # a firm may be typed in before its target
    # the list follows Hedefler's first column (its name column) down to the last filled row
    assert layout.TARGETS.columns[0].key == "name"
    assert refers_to == layout.TARGET_LIST_FORMULA and "Hedefler!$A$2" in refers_to and "COUNTA(Hedefler!$A:$A)" in refers_to


def test_upgrade_adds_the_target_drop_down_and_keeps_every_row(tmp_path):
    """A workbook made from the template before issue 14 (no drop-down, no defined name)."""
    import openpyxl

    from edefter_helper.workbook.file import FileBook

    old = check.new_workbook(tmp_path / "eski.xlsm", template=TEMPLATE)
    wb = xlsm.load(old)
    letter = openpyxl.utils.get_column_letter(layout.FIRMS.index("target") + 1)
    ws = wb[layout.FIRMS.name]
    ws.data_validations.dataValidation = [dv for dv in ws.data_validations.dataValidation
                                          if dv.formula1 != layout.TARGET_LIST]
    wb.defined_names.pop(layout.TARGET_LIST, None)
    xlsm.save(wb, old)
    assert _target_drop_down(old) == ([], None)
    book = FileBook(old)
    rows = {
        layout.FIRMS: [{"name": "Anadolu Gıda", "vkn": "0481052563", "branch": "0001", "folder": "D:\\Defter",
                        "target": "NAS", "user": "ali", "auto": "Evet", "owner": "Ayşe"},
                       {"name": "Bir Hedefi Olmayan", "vkn": "12345678901", "target": "Yok"}],
        layout.TARGETS: [{"name": "NAS", "kind": "klasör", "address": "\\\\nas\\yedek", "description": "Aylık"},
                         {"name": "Bulut", "kind": "klasör", "address": "E:\\"}],
    }
    for sheet, r in rows.items():
        book.write_rows(sheet, r)
    book.save()
    before = {s.name: FileBook(old).read_rows(s) for s in layout.DATA_SHEETS}

    upgraded, backup = check.upgrade_workbook(old)
    after = FileBook(upgraded)
    assert {s.name: after.read_rows(s) for s in layout.DATA_SHEETS} == before
    found, refers_to = _target_drop_down(upgraded)
    assert len(found) == 1 and refers_to == layout.TARGET_LIST_FORMULA
    assert _target_drop_down(backup) == ([], None)  # the kept copy is the old file
    assert after.wb[layout.FIRMS.name][f"{letter}2"].value == "NAS"


def test_help_sheet_warns_about_other_programs_and_explains_the_columns(fresh):
    """issue 14: the save warning up front, what Otomatik Yedekleme does, what the Açıklama is for."""
    import openpyxl

    ws = openpyxl.load_workbook(fresh)[layout.HELP_SHEET]
    lines = [c.value or "" for c in ws["A"]]
    assert lines == [line or "" for line in build.help_lines()]
    text = "\n".join(lines)
    warning = next(i for i, line in enumerate(lines) if "başka bir programla" in line)
    assert warning < next(i for i, line in enumerate(lines) if line.startswith("1. "))  # before the steps
    assert "yalnız Microsoft Excel ile kaydedin" in lines[warning] and ws.cell(row=warning + 1, column=1).font.b
    auto = next(line for line in lines if line.strip().startswith("Otomatik Yedekleme:"))
    assert "Evet" in auto and "Hayır" in auto and "edefter agent" in auto and "Toplu Yedekle" in auto
    description = next(line for line in lines if line.strip().startswith("Paket Açıklaması"))
    assert "her pakete" in description and layout.DEFAULT_DESCRIPTION in description
    assert "Python'u" in text and "python'u" not in text
    # the target kinds come right after the numbered steps
    seven = next(i for i, line in enumerate(lines) if line.startswith("7. "))
    assert lines[seven + 1] == "" and lines[seven + 2].startswith("Hedef türleri")


def test_the_old_acıklama_header_is_read_and_upgrade_renames_it(tmp_path):
    """issue 14: Hedefler's 'Açıklama' is 'Paket Açıklaması' now; a workbook with the old header keeps
    working (the file face and the agent's read-only reader both find it) until upgrade renames it."""
    from edefter_helper.agent import SettingsBook
    from edefter_helper.settings import read_settings
    from edefter_helper.workbook.file import FileBook

    old = check.new_workbook(tmp_path / "eski.xlsm", template=TEMPLATE)
    wb = xlsm.load(old)
    ws = wb[layout.TARGETS.name]
    col = layout.TARGETS.index("description") + 1
    assert ws.cell(row=1, column=col).value == "Paket Açıklaması"
    ws.cell(row=1, column=col).value = "Açıklama"  # as workbooks made before the rename have it
    for c, value in enumerate(("NAS", "klasör", "\\\\nas\\yedek", "Luca'dan aktarıldı"), start=1):
        ws.cell(row=2, column=c).value = value
    xlsm.save(wb, old)

    assert FileBook(old).read_rows(layout.TARGETS)[0]["description"] == "Luca'dan aktarıldı"
    _, targets, _ = read_settings(SettingsBook(old))
    assert targets["NAS"].description == "Luca'dan aktarıldı"
    headers = [c.value for c in FileBook(old).wb[layout.TARGETS.name][1] if c.value]
    assert headers.count("Paket Açıklaması") == 0  # reading adds no second column

    upgraded, _ = check.upgrade_workbook(old)
    ws = FileBook(upgraded).wb[layout.TARGETS.name]
    assert ws.cell(row=1, column=col).value == "Paket Açıklaması"
    assert ws.cell(row=2, column=col).value == "Luca'dan aktarıldı"
