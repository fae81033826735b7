"""Every sheet of the template has its document module in the VBA project, checked with readers that
are not ours (olefile for the compound file, oletools' strict dir-stream parser for the modules)."""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import pytest

from edefter_helper.addin import build, check, vba
from edefter_helper.workbook import xlsm

olefile = pytest.importorskip("olefile", reason="olefile (with oletools) reads compound files back")
olevba = pytest.importorskip("oletools.olevba", reason="oletools reads the VBA back")

TEMPLATE = Path(__file__).resolve().parents[1] / "workbook_template.xlsm"
SHEET_BASE = "0{00020820-0000-0000-C000-000000000046}"  # Excel's Worksheet object
MODULETYPE_DOCUMENT = 0x0022
_ATTRIBUTE = re.compile(r'Attribute (VB_\w+) = ("[^"\r\n]*"|True|False)')


def _vba_bin(path: Path = TEMPLATE) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(xlsm.VBA_PART)


def _code_names(path: Path = TEMPLATE) -> tuple[str, dict[str, str]]:
    """The workbook's codeName and sheet -> codeName, as openpyxl reads them."""
    import openpyxl

    wb = openpyxl.load_workbook(path, keep_vba=True)
    return wb.code_name, {ws.title: ws.sheet_properties.codeName for ws in wb.worksheets}


def _strict_project(vba_bin: bytes):
    """oletools' parser with relaxed=False: any record out of [MS-OVBA] order raises."""
    ole = olefile.OleFileIO(vba_bin)
    project = olevba.VBA_Project(ole, "", "PROJECT", "VBA/dir", relaxed=False)
    project.parse_project_stream()
    list(project.parse_modules())
    return ole, project


def _attributes(source: str) -> dict[str, str]:
    """The module's source, parsed: it must be attribute lines only, each as VBA writes it."""
    lines = source.split("\r\n")
    assert lines[-1] == "", "source must end with CRLF"
    out = {}
    for line in lines[:-1]:
        m = _ATTRIBUTE.fullmatch(line)
        assert m, f"not an attribute line: {line!r}"
        out[m.group(1)] = m.group(2)
    return out


def test_every_sheet_code_name_has_a_document_module_oletools_reads():
    book_code, sheets = _code_names()
    assert book_code == "ThisWorkbook"
    assert len(sheets) == 10 and all(sheets.values())
    assert len(set(sheets.values())) == len(sheets)
    ole, project = _strict_project(_vba_bin())
    modules = {m.name: m for m in project.modules}
    assert len(modules) == project.modules_count
    for name in [book_code, *sheets.values()]:
        m = modules.get(name)
        assert m is not None, f"no module for codeName {name}"
        assert m.type == MODULETYPE_DOCUMENT, name
        assert m.streamname == name and not m.readonly and not m.private
        assert project.module_ext[name.lower()] == "cls"  # listed as Document= in the PROJECT stream
        raw = ole.openstream(f"VBA/{name}").read()
        assert raw[m.textoffset] == 0x01, "MODULEOFFSET must point at the compressed container"
        attrs = _attributes(m.code)
        assert attrs["VB_Name"] == f'"{name}"'
        assert attrs["VB_PredeclaredId"] == "True" and attrs["VB_Exposed"] == "True"
        assert attrs["VB_GlobalNameSpace"] == "False" and attrs["VB_Creatable"] == "False"
        if name != book_code:
            assert attrs["VB_Base"] == f'"{SHEET_BASE}"'
    # the dir stream ends right after the modules: its terminator, nothing else
    assert project.dir_stream.read() == b"\x10\x00\x00\x00\x00\x00"
    # every module stream below VBA/ is named by a MODULE record, and no record names a missing one
    streams = {e[1] for e in ole.listdir() if len(e) == 2 and e[0] == "VBA"} - {"dir", "_VBA_PROJECT"}
    assert streams == {m.streamname for m in project.modules}


def test_new_modules_sit_in_project_and_projectwm_streams_as_excel_lists_them():
    _, sheets = _code_names()
    ole = olefile.OleFileIO(_vba_bin())
    project_text = ole.openstream("PROJECT").read().decode("cp1252")
    lines = project_text.split("\r\n")
    workspace = lines[lines.index("[Workspace]") + 1:]
    wm = ole.openstream("PROJECTwm").read()
    assert wm.endswith(b"\0\0")
    for name in sheets.values():
        assert f"Document={name}/&H00000000" in lines
        assert any(line.startswith(f"{name}=") for line in workspace)
        assert name.encode() + b"\0" + name.encode("utf-16-le") + b"\0\0" in wm
    # the module list comes before the project's properties ([MS-OVBA] §2.3.1.1)
    last_module = max(i for i, line in enumerate(lines) if line.startswith(("Document=", "Module=", "Class=")))
    assert last_module < next(i for i, line in enumerate(lines) if line.startswith("Name="))


def test_vba_project_still_forces_excel_to_compile_from_source():
    ole = olefile.OleFileIO(_vba_bin())
    head = ole.openstream("VBA/_VBA_PROJECT").read()
    assert head[:2] == b"\xcc\x61" and struct.unpack("<H", head[2:4])[0] == 0xFFFF


def test_compound_file_sibling_trees_are_ordered_as_ms_cfb_says():
    """olefile walks the tree; here each storage's siblings are also checked to be a binary search
    tree in [MS-CFB] order (name length, then upper-cased name), which Excel relies on to find them."""
    ole = olefile.OleFileIO(_vba_bin())

    def key(entry):
        return len(entry.name), entry.name.upper()

    def in_order(sid):
        if sid == olefile.NOSTREAM:
            return []
        e = ole.direntries[sid] or ole._load_direntry(sid)
        return in_order(e.sid_left) + [e] + in_order(e.sid_right)

    for storage in [ole.root] + [e for e in ole.direntries if e is not None and e.entry_type == olefile.STGTY_STORAGE]:
        kids = in_order(storage.sid_child)
        assert [key(k) for k in kids] == sorted(key(k) for k in kids), storage.name
        assert len({key(k) for k in kids}) == len(kids)


def test_adding_modules_is_idempotent_and_keeps_other_streams():
    base = build.base_vba_project()
    once = vba.add_document_modules(base, ["Sheet1", "Sheet3", "Sayfa_10"])
    assert vba.add_document_modules(once, ["Sheet3", "sayfa_10", "Sheet2"]) == once
    before, after = olefile.OleFileIO(base), olefile.OleFileIO(once)
    for entry in before.listdir():
        name = "/".join(entry)
        if name not in ("VBA/dir", "PROJECT", "PROJECTwm"):
            assert after.openstream(name).read() == before.openstream(name).read(), name
    _, project = _strict_project(once)
    names = [m.name for m in project.modules]
    assert names.count("Sheet1") == 1 and names[-2:] == ["Sheet3", "Sayfa_10"]
    assert vba.read_modules(once)["Sayfa_10"] == vba.document_source("Sayfa_10")
    with pytest.raises(ValueError):
        vba.add_document_modules(base, ["Sayfa 2"])  # not a VBA identifier


def test_document_source_matches_the_sheet_modules_excel_wrote():
    """xlwings' file was saved by Excel: its Sheet1 module is the model for the ones we add."""
    theirs = vba.read_modules(build.base_vba_project())["Sheet1"]
    assert vba.document_source("Sheet1") == theirs


def _with_vba(src: Path, dst: Path, vba_bin: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, vba_bin if info.filename == xlsm.VBA_PART else zin.read(info.filename))
    return dst


def test_check_reports_a_sheet_whose_code_name_has_no_document_module(tmp_path):
    good = check.new_workbook(tmp_path / "good.xlsm", template=TEMPLATE)
    assert not [f for f in check.check_workbook(good, probe_interpreter=False) if "belge modülü" in f]
    # the VBA project as xlwings ships it: modules for Sheet1 and Sheet2 only
    old = _with_vba(good, tmp_path / "old.xlsm", vba.replace_module_source(
        build.base_vba_project(), "xlwings", build.vba_source()))
    found = [f for f in check.check_workbook(old, probe_interpreter=False) if "belge modülü" in f]
    assert len(found) == 1
    assert "'Dönemler' (Sheet3)" in found[0] and "'xlwings.conf' (Sheet10)" in found[0]
    assert "(Sheet1)" not in found[0] and "(Sheet2)" not in found[0]
    assert "workbook upgrade" in found[0]


def test_upgrade_gives_every_sheet_its_module_and_keeps_takvim_one_sheet(tmp_path):
    import openpyxl

    path = check.new_workbook(tmp_path / "k.xlsm", template=TEMPLATE)
    old = _with_vba(path, tmp_path / "old.xlsm", vba.replace_module_source(
        build.base_vba_project(), "xlwings", build.vba_source()))
    wb = xlsm.load(old)
    wb.create_sheet("Notlarım")["A1"] = "kendi notum"
    wb["Takvim"]["A3"] = "Anadolu Gıda"
    xlsm.save(wb, old)
    upgraded, _ = check.upgrade_workbook(old)
    assert not [f for f in check.check_workbook(upgraded, probe_interpreter=False) if "belge modülü" in f]
    wb = openpyxl.load_workbook(upgraded, keep_vba=True)
    assert wb.sheetnames.count("Takvim") == 1 and "Takvim1" not in wb.sheetnames
    assert wb["Takvim"]["A3"].value == "Anadolu Gıda"
    assert wb["Notlarım"]["A1"].value == "kendi notum"
    code = wb["Notlarım"].sheet_properties.codeName
    assert code == "Sheet11"
    _, project = _strict_project(_vba_bin(upgraded))
    assert any(m.name == code and m.type == MODULETYPE_DOCUMENT for m in project.modules)


def test_libreoffice_vba_import_finds_every_sheet_module(tmp_path):
    """A second reader of the dir stream that is not ours: LibreOffice's VBA import. It keeps the document
    modules it finds in the project (and only those) when it writes the file out again."""
    import shutil
    import subprocess

    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) not installed")
    src = tmp_path / "t.xlsm"
    src.write_bytes(TEMPLATE.read_bytes())
    out = tmp_path / "out"
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'profile'}", "--headless",
                    "--convert-to", "xlsm:Calc MS Excel 2007 VBA XML", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=300)
    parser = olevba.VBA_Parser(str(out / "t.xlsm"))
    try:
        found = {name.rsplit(".", 1)[0]: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()
    _, sheets = _code_names()
    for code in sheets.values():
        assert code in found, code
        assert f'Attribute VB_Name = "{code}"' in found[code] and SHEET_BASE in found[code]
