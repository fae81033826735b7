"""Make a user's control workbook from the template, and check one for the usual set-up faults.

The faults xlwings users hit most: the workbook points at a Python that does not exist or lacks the
package, the VBA module's xlwings version differs from the installed package (the DLL is named by
version), the ribbon's parts or relationships got lost in a save, or a callback went missing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from edefter_helper.addin import vba
from edefter_helper.workbook import layout, xlsm

RIBBON_PARTS = {
    "customUI/customUI14.xml": xlsm.RIBBON_2009,
    "customUI/customUI.xml": xlsm.RIBBON_2006,
}
OFFICE_LIB_GUID = "2DF8D04C-5BFA-101B-BDE5-00AA0044DE52"  # defines IRibbonControl
_SUB = re.compile(r"^[ \t]*(?:Public[ \t]+|Private[ \t]+)?Sub[ \t]+(\w+)[ \t]*\([ \t]*"
                  r"(?:ByVal[ \t]+|ByRef[ \t]+)?\w+[ \t]+As[ \t]+IRibbonControl[ \t]*\)",
                  re.IGNORECASE | re.MULTILINE)
_RUNPYTHON = re.compile(r'RunPython[ \t]+"([^"]*)"', re.IGNORECASE)
_CALL = re.compile(r"^\s*import\s+([\w.]+)(?:\s+as\s+(\w+))?\s*;\s*([\w.]+)\.(\w+)\(\)\s*$")
_VERSION = re.compile(r'XLWINGS_VERSION\s+As\s+String\s*=\s*"([^"]+)"', re.IGNORECASE)


def template_path() -> Path:
    """The checkout's template, else the copy `pip install .` puts under <prefix>/share."""
    from edefter_helper.addin.build import TEMPLATE

    if TEMPLATE.is_file():
        return TEMPLATE
    installed = Path(sys.prefix) / "share" / "edefter-yedekleme" / TEMPLATE.name
    return installed if installed.is_file() else TEMPLATE


def interpreter_keys(platform: str = sys.platform) -> tuple[str, ...]:
    if platform.startswith("win"):
        return ("INTERPRETER_WIN",)
    if platform == "darwin":
        return ("INTERPRETER_MAC",)
    return ("INTERPRETER_WIN", "INTERPRETER_MAC")  # no Excel here: write both, for tests/copies


def _windowless(interpreter: str) -> str:
    """pythonw.exe beside python.exe on Windows: no console window flashes on every click."""
    p = Path(interpreter)
    if p.name.lower() == "python.exe" and (p.parent / "pythonw.exe").exists():
        return str(p.parent / "pythonw.exe")
    return interpreter


def new_workbook(path: str | os.PathLike, interpreter: str = sys.executable, *,
                 template: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Copy the template to `path` and point its xlwings.conf sheet at `interpreter`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"'{path}' zaten var; üzerine yazılmadı (kontrol çalışma kitabınız "
                              "olabilir). Başka bir ad verin.")
    src = Path(template) if template else template_path()
    if not src.exists():
        raise FileNotFoundError(f"Şablon bulunamadı: {src}. 'python -m edefter_helper.addin.build' "
                                "ile oluşturun.")
    wb = xlsm.load(src)
    set_conf(wb, {k: _windowless(str(interpreter)) for k in interpreter_keys()})
    xlsm.save(wb, path)
    return path


def upgrade_workbook(path: str | os.PathLike, interpreter: str | None = None) -> tuple[Path, Path]:
    """Bring a control workbook up to the current template (sheets, drop-downs, ribbon, VBA) keeping
    every row typed into its sheets and its xlwings.conf settings; the old file is kept beside it as
    NAME.yedek-YYYYMMDD-HHMMSS.xlsm. Returns (upgraded, backup)."""
    import datetime as dt
    import shutil
    import tempfile

    from edefter_helper.workbook.file import FileBook

    path = Path(path)
    old = FileBook(path)
    rows = {sheet.name: old.read_rows(sheet) for sheet in layout.DATA_SHEETS}
    conf = read_conf(path) or {}
    extra = [name for name in old.wb.sheetnames
             if name not in {s.name for s in layout.DATA_SHEETS} | {layout.HELP_SHEET, layout.CONF_SHEET}]
    fd, tmp = tempfile.mkstemp(prefix=".~yukselt-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        new_workbook(tmp, interpreter or conf.get("INTERPRETER_WIN") or sys.executable, overwrite=True)
        fresh = xlsm.load(tmp)
        keep = {k: v for k, v in conf.items() if v and not k.startswith("INTERPRETER")}
        if keep:
            set_conf(fresh, keep)
        for name in extra:  # a user's own sheets (and the radar's Takvim) come along, values only
            if name in fresh.sheetnames:  # Takvim: the template's sheet, with its colours, refilled
                ws_new = fresh[name]
                if ws_new.max_row:
                    ws_new.delete_rows(1, ws_new.max_row)
            else:
                ws_new = fresh.create_sheet(name)
            ws_old = old.wb[name]
            for row in ws_old.iter_rows():
                for cell in row:
                    if cell.value is not None:
                        ws_new.cell(row=cell.row, column=cell.column, value=cell.value)
        add_sheet_modules(fresh)
        xlsm.save(fresh, tmp)
        book = FileBook(tmp)
        for sheet in layout.DATA_SHEETS:
            book.write_rows(sheet, rows[sheet.name])
        book.save()
        backup = path.with_name(f"{path.stem}.yedek-{dt.datetime.now():%Y%m%d-%H%M%S}{path.suffix}")
        shutil.copy2(path, backup)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path, backup


def add_sheet_modules(wb) -> None:
    """Give every sheet of an openpyxl workbook (loaded by xlsm.load) without a codeName a free
    `SheetN` one, and the VBA project a document module for every sheet's codeName, as Excel would
    on opening the file (and then ask to save it)."""
    import io

    used = {ws.sheet_properties.codeName for ws in wb.worksheets if ws.sheet_properties.codeName}
    n = 1
    for ws in wb.worksheets:
        if not ws.sheet_properties.codeName:
            while f"Sheet{n}" in used:
                n += 1
            ws.sheet_properties.codeName = f"Sheet{n}"
            used.add(f"Sheet{n}")
    archive = wb.vba_archive
    if archive is None or xlsm.VBA_PART not in archive.namelist():
        return
    old_bin = archive.read(xlsm.VBA_PART)
    new_bin = vba.add_document_modules(old_bin, [ws.sheet_properties.codeName for ws in wb.worksheets])
    if new_bin == old_bin:
        return
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            out.writestr(info, new_bin if info.filename == xlsm.VBA_PART else archive.read(info.filename))
    buf.seek(0)
    wb.vba_archive = zipfile.ZipFile(buf, "r")


def set_conf(wb, values: dict[str, str]) -> None:
    """Write keys into an openpyxl workbook's xlwings.conf sheet (added after the last key)."""
    ws = wb[layout.CONF_SHEET]
    rows = {}
    r = 1
    while ws.cell(row=r, column=1).value not in (None, ""):  # xlwings stops at the first gap
        rows[str(ws.cell(row=r, column=1).value).strip().upper()] = r
        r += 1
    for key, value in values.items():
        row = rows.get(key.upper())
        if row is None:
            row = rows[key.upper()] = r
            ws.cell(row=r, column=1, value=key)
            r += 1
        cell = ws.cell(row=row, column=2, value=value)
        cell.number_format = "@"


def read_conf(path: str | os.PathLike) -> dict[str, str] | None:
    """Keys/values of the xlwings.conf sheet as xlwings reads them; None when there is no sheet."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        if layout.CONF_SHEET not in wb.sheetnames:
            return None
        out = {}
        for key, value, *_ in wb[layout.CONF_SHEET].iter_rows(min_col=1, max_col=2, values_only=True):
            if key in (None, ""):
                break
            out[str(key).strip().upper()] = "" if value is None else str(value).strip()
        return out
    finally:
        wb.close()


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_DOC_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _sheet_code_name(zf: zipfile.ZipFile, part: str) -> str | None:
    """The codeName of a sheet part's <sheetPr> (its first child), read without the whole sheet."""
    with zf.open(part) as fh:
        for _, el in ET.iterparse(fh, events=("start",)):
            if el.tag == f"{{{_MAIN_NS}}}sheetPr":
                return el.get("codeName")
            if el.tag in (f"{{{_MAIN_NS}}}dimension", f"{{{_MAIN_NS}}}sheetViews", f"{{{_MAIN_NS}}}sheetData"):
                return None
    return None


def code_names(zf: zipfile.ZipFile) -> tuple[str | None, list[tuple[str, str | None]]]:
    """(the workbook's codeName, [(sheet name, its codeName)]) as Excel maps them to document
    modules of the VBA project; None where the file names none."""
    workbook = ET.fromstring(zf.read("xl/workbook.xml"))
    pr = workbook.find(f"{{{_MAIN_NS}}}workbookPr")
    book_code = pr.get("codeName") if pr is not None else None
    rels = {}
    if "xl/_rels/workbook.xml.rels" in zf.namelist():
        for r in ET.fromstring(zf.read("xl/_rels/workbook.xml.rels")).iter(f"{{{xlsm.RELS_NS}}}Relationship"):
            target = r.get("Target", "")
            rels[r.get("Id")] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    sheets = []
    names = set(zf.namelist())
    for sh in workbook.iter(f"{{{_MAIN_NS}}}sheet"):
        part = rels.get(sh.get(f"{{{_DOC_REL_NS}}}id"))
        sheets.append((sh.get("name"), _sheet_code_name(zf, part) if part in names else None))
    return book_code, sheets


def missing_document_modules(book_code: str | None, sheets: list[tuple[str, str | None]],
                             documents: set[str]) -> list[str]:
    """Turkish findings for each codeName (workbook or sheet) without a document module of that name:
    Excel adds it on opening the file and then asks to save, and the sheet has no module until then."""
    have = {d.lower() for d in documents}
    lacking = [f"çalışma kitabı ({book_code})"] if book_code and book_code.lower() not in have else []
    lacking += [f"'{name}' ({code})" for name, code in sheets if code and code.lower() not in have]
    if not lacking:
        return []
    return [(f"Makro projesinde şu sayfaların belge modülü yok: {', '.join(lacking)}. Excel dosyayı açarken "
             "bunları ekler ve kapatırken kaydetmek ister; 'edefter workbook upgrade' ile çalışma kitabını "
             "yenileyin.")]


def ribbon_actions(xml: bytes) -> list[str]:
    """Every onAction of a customUI part."""
    root = ET.fromstring(xml)
    return [el.get("onAction") for el in root.iter() if el.get("onAction")]


def ribbon_subs(source: str) -> set[str]:
    """Names of `Sub X(control As IRibbonControl)` in VBA source."""
    return {m.group(1).lower() for m in _SUB.finditer(source)}


def runpython_calls(source: str) -> list[str]:
    """The Python text of every literal RunPython call in VBA source."""
    return _RUNPYTHON.findall(source)


def python_call_problem(code: str) -> str | None:
    """Why a RunPython text such as 'import edefter_helper.excel as e; e.send()' would fail."""
    m = _CALL.match(code)
    if not m:
        return f"RunPython metni anlaşılamadı: {code}"
    module, alias, obj, func = m.groups()
    if obj != (alias or module):
        return f"RunPython metni içe aktarmadığı bir adı kullanıyor: {code}"
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        return f"RunPython modülü içe aktarılamadı ({module}): {type(exc).__name__}: {exc}"
    if not callable(getattr(mod, func, None)):
        return f"RunPython'un çağırdığı işlev yok: {module}.{func}"
    return None


def _installed_xlwings() -> str | None:
    try:
        return importlib.metadata.version("xlwings")
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe(interpreter: str) -> tuple[str | None, str | None]:
    """(xlwings version, error) as seen by the workbook's interpreter."""
    code = "import edefter_helper.excel, importlib.metadata as m; print(m.version('xlwings'))"
    try:
        out = subprocess.run([interpreter, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return None, last
    return out.stdout.strip(), None


def check_workbook(path: str | os.PathLike, *, probe_interpreter: bool = True) -> list[str]:
    """Turkish findings about a control workbook; an empty list means the set-up looks right."""
    path = Path(path)
    findings: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"Çalışma kitabı açılamadı ({path}): {exc}"]
    with zf:
        names = set(zf.namelist())
        rels = xlsm.ribbon_relationships(zf.read(xlsm.ROOT_RELS)) if xlsm.ROOT_RELS in names else []
        actions: list[str] = []
        for part, rel_type in RIBBON_PARTS.items():
            if part not in names:
                findings.append(f"Şerit bölümü eksik: {part}. e-Defter sekmesi görünmeyebilir; "
                                "çalışma kitabını şablondan yeniden oluşturun.")
                continue
            if not any(t == rel_type and target == part for _, t, target in rels):
                findings.append(f"Şerit ilişkisi eksik (_rels/.rels → {part}). e-Defter sekmesi "
                                "görünmeyebilir; çalışma kitabını şablondan yeniden oluşturun.")
            try:
                actions += ribbon_actions(zf.read(part))
            except ET.ParseError as exc:
                findings.append(f"Şerit tanımı bozuk ({part}): {exc}")
        vba_bin = zf.read(xlsm.VBA_PART) if xlsm.VBA_PART in names else None
        try:
            book_code, sheet_codes = code_names(zf)
        except (KeyError, ET.ParseError, OSError, zipfile.BadZipFile) as exc:
            book_code, sheet_codes = None, []
            findings.append(f"Çalışma kitabının sayfa listesi okunamadı: {type(exc).__name__}: {exc}")

    present = {name for name, _ in sheet_codes}
    missing = [sheet.name for sheet in layout.DATA_SHEETS if sheet.name not in present]
    if sheet_codes and missing:  # an older workbook: the template's sheets came later
        findings.append(f"Çalışma kitabında {', '.join(repr(m) for m in missing)} sayfası yok (eski bir şablondan). "
                        f"'edefter workbook upgrade {path.name}' bu sayfaları ekler; yazılmış her satır korunur.")

    wb_version = None
    if vba_bin is None:
        findings.append("Çalışma kitabında makro projesi (xl/vbaProject.bin) yok: düğmeler çalışmaz. "
                        ".xlsm olarak şablondan yeniden oluşturun.")
    else:
        try:
            modules = vba.read_modules(vba_bin)
            from edefter_helper.addin import cfb, ovba

            dir_raw = cfb.CompoundFile(vba_bin).stream("VBA/dir")
            dir_text = ovba.decompress(dir_raw)
            documents = {m.name for m in vba.parse_dir(dir_raw).modules if m.document}
        except Exception as exc:
            modules, dir_text, documents = {}, b"", set()
            findings.append(f"Makro projesi okunamadı: {type(exc).__name__}: {exc}")
        if modules:
            findings += missing_document_modules(book_code, sheet_codes, documents)
        source = "\n".join(modules.values())
        m = _VERSION.search(source)
        wb_version = m.group(1) if m else None
        installed = _installed_xlwings()
        if modules and wb_version is None:
            findings.append("Makro projesinde xlwings modülü bulunamadı: RunPython çalışmaz.")
        elif modules and installed is None:
            findings.append(f"Bu Python'da xlwings kurulu değil; çalışma kitabı xlwings {wb_version} "
                            f"bekliyor: pip install xlwings=={wb_version}")
        elif modules and installed != wb_version:
            findings.append(f"xlwings sürümü uyuşmuyor: çalışma kitabındaki VBA {wb_version}, kurulu "
                            f"paket {installed}. Aynı sürümü kurun (pip install xlwings=={wb_version}) "
                            "veya çalışma kitabını yeni şablondan oluşturun.")
        if modules and "Dictionary" not in modules:
            findings.append("Makro projesi başka bir program tarafından yeniden yazılmış (xlwings'in macOS için "
                            "gereken 'Dictionary' sınıfı yok; LibreOffice'te kaydedilen dosyalarda olur). Çalışma "
                            "kitabını 'edefter workbook new' ile yeniden oluşturun ve satırları kopyalayın.")
        if modules and OFFICE_LIB_GUID.encode() not in dir_text.upper():
            findings.append("Makro projesinde 'Microsoft Office Object Library' başvurusu yok: "
                            "şerit düğmeleri derlenmez.")
        if modules:
            subs = ribbon_subs(source)
            for action in dict.fromkeys(actions):
                if action.lower() not in subs:
                    findings.append(f"Şerit düğmesinin makrosu eksik: Sub {action}(control As "
                                    "IRibbonControl)")
            for code in dict.fromkeys(runpython_calls(source)):
                if "edefter_helper" in code:
                    problem = python_call_problem(code)
                    if problem:
                        findings.append(problem)

    try:
        conf = read_conf(path)
    except Exception as exc:
        conf = {}
        findings.append(f"xlwings.conf sayfası okunamadı: {type(exc).__name__}: {exc}")
    if conf is None:
        findings.append("xlwings.conf sayfası yok: xlwings hangi Python'u kullanacağını bilemez.")
    else:
        keys = interpreter_keys()
        set_keys = [k for k in keys if conf.get(k)]
        if not set_keys:
            findings.append(f"xlwings.conf sayfasında {' / '.join(keys)} boş: Python yolunu yazın "
                            "('edefter workbook new' bunu yapar).")
        for key in set_keys:
            interp = conf[key]
            if not (Path(interp).exists() or shutil.which(interp)):
                findings.append(f"{key} olarak yazılan Python bulunamadı: {interp}")
            elif probe_interpreter:
                version, error = _probe(interp)
                if error:
                    findings.append(f"{key} ({interp}) e-Defter yardımcısını çalıştıramadı: {error}. "
                                    "Bu Python'a 'edefter-yedekleme' paketini kurun.")
                elif wb_version and version != wb_version:
                    findings.append(f"{key} ({interp}) xlwings {version} kullanıyor; çalışma kitabı "
                                    f"{wb_version} bekliyor.")
    return findings


def main(argv: list[str] | None = None) -> int:
    """python -m edefter_helper.addin.check new PATH [PYTHON] | check PATH"""
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "new":
        out = new_workbook(args[1], *(args[2:3] or [sys.executable]))
        print(f"Çalışma kitabı oluşturuldu: {out}")
        return 0
    if len(args) == 2 and args[0] == "check":
        findings = check_workbook(args[1])
        for f in findings:
            print(f"- {f}")
        print("Kurulum sorunsuz." if not findings else f"{len(findings)} sorun bulundu.")
        return 1 if findings else 0
    print("Kullanım: python -m edefter_helper.addin.check new DOSYA.xlsm [PYTHON] | check DOSYA.xlsm",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
