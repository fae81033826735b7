"""Builds `workbook_template.xlsm` from the sources in `addin/` and `workbook/layout.py`.

    python -m edefter_helper.addin.build [OUT]

The VBA project is the `vbaProject.bin` of the installed (pinned) xlwings' standalone quickstart
with the `xlwings` module's source replaced by xlwings.bas + addin/callbacks.bas and an empty
document module added for every sheet's codeName (xlwings' file has two sheets; Excel would add the
rest on first open and ask to save). The build is byte-deterministic: same sources, same xlwings,
same openpyxl -> same file.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

from edefter_helper.addin import vba
from edefter_helper.workbook import layout, xlsm

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDIN_DIR = REPO_ROOT / "addin"
TEMPLATE = REPO_ROOT / "workbook_template.xlsm"
BUILD_TIME = dt.datetime(2024, 1, 1)  # fixed: the committed template must be reproducible
VBA_MODULE = "xlwings"
RIBBON_PARTS = {  # part name in the package -> relationship type from _rels/.rels
    "customUI/customUI14.xml": xlsm.RIBBON_2009,
    "customUI/customUI.xml": xlsm.RIBBON_2006,
}
LAST_ROW = 1048576

CONF_KEYS = (  # xlwings reads column A (key) / B (value) down to the first empty key
    ("INTERPRETER_WIN", ""),
    ("INTERPRETER_MAC", ""),
    ("PYTHONPATH", ""),
    ("SHOW_ERROR_POPUPS", "False"),  # text, not a boolean: the VBA compares with "False"
    ("ADD_WORKBOOK_TO_PYTHONPATH", "False"),  # no stray .py beside the workbook gets imported
)

STATUS_COLORS = {  # Yedekleme Durumu -> (fill, font)
    "Yedeklendi": ("C6EFCE", "006100"),
    "Entegratör'e İşlendi": ("FFEB9C", "9C5700"),
    "Yedeklenemedi": ("FFC7CE", "9C0006"),
    "Entegratör'e Gönderilmedi": ("E7E6E6", "595959"),
    "Yedek Güncel Değil": ("F8CBAD", "833C0B"),
    "Hedefteki Kopya Bozuk": ("C00000", "FFFFFF"),
}

HELP_LINES = (
    "e-Defter Yedekleme — Nasıl Kullanılır",
    "",
    "ÖNEMLİ: Bu dosyayı yalnız Microsoft Excel ile kaydedin. LibreOffice gibi başka bir programla "
    "kaydedilirse içindeki makro projesi bozulur ve e-Defter şeridindeki düğmeler çalışmaz.",
    "",
    "1. Hedefler sayfasına yedeklerin gideceği yerleri yazın: Hedef (kısa bir ad), Tür ve Adres "
    "(aşağıdaki listeye bakın).",
    "   Paket Açıklaması: o hedefe gönderilen her pakete eklenir ve hedef paketle birlikte "
    "saklar (İzibiz'e gönderilmez, bu bilgisayardaki kayıtta kalır). Boş bırakılırsa "
    f"'{layout.DEFAULT_DESCRIPTION}' yazılır.",
    "2. Firmalar sayfasına her firma için e-Defter klasörünü, Hedef'i (Hedefler'deki adlar listeden "
    "seçilir; birden çok hedef ';' ile ayrılır, aşağıya bakın) ve Kullanıcı Adı'nı yazın.",
    "   Otomatik Yedekleme: Evet olan firmanın GİB onaylı beratı inen ayları, arka plan aracısı (edefter "
    "agent) çalışıyorsa dosyalar klasöre gelince kendiliğinden gönderilir; 'Toplu Yedekle' de yalnız bu "
    "firmaların aylarını gönderir. Hayır olan firmanın dönemleri yalnız Dönemler'de seçilip 'Gönder' ile "
    "gönderilir.",
    "3. Şifreyi Firmalar'da satırı seçip e-Defter şeridindeki 'Kimlik Bilgisi' düğmesiyle girin. "
    "Şifre çalışma kitabına yazılmaz; bilgisayarın anahtar zincirinde saklanır.",
    "4. 'Dönemleri Tara / Yenile' klasörleri tarar ve Dönemler sayfasını doldurur.",
    "5. 'Gönder' seçili dönemleri gönderir (seçim yoksa filtrede görünen tüm dönemleri).",
    "6. 'Durum Sorgula' entegratörün dosyaları sakladığını doğrular; doğrulanan dönem 'Yedeklendi' olur.",
    "7. 'Toplu Yedekle' Otomatik Yedekleme = Evet olan firmaların GİB onaylı beratı indirilmiş ve henüz "
    "yedeklenmemiş bütün dönemlerini gönderir, saklandıkları doğrulanana kadar bekler.",
    "",
    "Yedekleme Durumu renkleri:",
    "   Yeşil: Yedeklendi — entegratör dosyaları sakladığını doğruladı.",
    "   Sarı: Entegratör'e İşlendi — gönderildi, henüz doğrulanmadı; 'Durum Sorgula' ile kontrol edin.",
    "   Kırmızı: Yedeklenemedi — Mesaj sütunundaki nedeni giderip yeniden gönderin.",
    "   Gri: Entegratör'e Gönderilmedi — henüz gönderilmedi.",
    "   Turuncu: Yedek Güncel Değil — dönem yedeklenmişti ama diskteki dosyalar artık yedeklenenlerden "
    "farklı (ör. GİB'de iptal ve yeniden gönderim); dönemi yeniden gönderin.",
    "   Koyu kırmızı: Hedefteki Kopya Bozuk — Yedek Doğrulama hedefteki kopyayı indirip bozuk ya da eksik "
    "buldu; Mesaj sütunu nedenini yazar. Hedefin yöneticisine haber verin ve başka bir kopyadan geri yükleyin.",
    "",
    "Birden çok kopya (ör. İzibiz, kendi S3 deponuz ve bir NAS klasörü): Firmalar'ın Hedef hücresine adları ';' "
    "ile ayırarak yazın: İzibiz; Arşiv S3; NAS. Kullanıcı Adı ya tek bir addır (her hedef için) ya da hedeflerle "
    "aynı sırada ';' ile ayrılmış adlardır (klasör hedefi kullanıcı istemez: atlanabilir ya da '-' yazılır). "
    "Sayılar uyuşmazsa ya da bir ad Hedefler'de yoksa Günlük'te uyarı çıkar.",
    "   Her dönem bir kez paketlenir ve aynı paket her hedefe gönderilir; her hedefin durumu ayrı tutulur. "
    "Dönemler'deki Yedekleme Durumu firmanın bütün hedeflerinin en gerisindekidir: 'Yedeklendi' yalnız her "
    "kopya doğrulandığında görünür. Kopyalar sütunu özetler (ör. '3/3 kopya · 1 WORM · TR'; yurt dışındaki "
    "bir kopya '1 yurt dışı ⚠' diye işaretlenir); Kopyalar sayfası her dönem × hedef için durumu, paket "
    "özetini, referansı, saklama sonunu, silinemezliği (WORM), konumu ve son doğrulamayı gösterir.",
    "   Bu kopyalar şirketin kendi ek kopyalarıdır. Yasal ikincil kopya GİB'in sistemlerine "
    "gönderilir; GİB bu iş için hiçbir özel entegratöre izin verdiğini duyurmadı. Buradaki hiçbir kopya yasal "
    "ikincil kopya yerine geçmez.",
    "",
    "Durum, hedefin türü, adresi ve kullanıcısına bağlıdır: Hedefler'de adres değişirse dönemler yeni hedefe "
    "yeniden gönderilir. Başka bir bilgisayarda açılan çalışma kitabında 'Durum Sorgula' her dönemi hedefe "
    "sorar ve durumu hedefin sakladığına göre yeniden kurar.",
    "",
    "Kurulum: bu dosya Python'daki 'edefter-yedekleme' paketine xlwings ile bağlanır. xlwings.conf "
    "sayfasındaki INTERPRETER_WIN (Windows) veya INTERPRETER_MAC (macOS) paketin kurulu olduğu "
    "Python'u göstermelidir. 'edefter workbook new DOSYA.xlsm' komutu bunu sizin için yazar.",
    "Düğmeler çalışmıyorsa 'Kurulum Kontrolü' düğmesine basın. İnternetten indirilen dosyalarda "
    "Office makroları engeller: dosyaya sağ tıklayıp Özellikler > 'Engellemeyi kaldır' seçin "
    "veya dosyayı Güvenilen Konum'a koyun.",
    "xlwings.conf sayfası gizlidir (Python yolunu tutar); değiştirmeniz gerekmez. Sayfaya sağ tıklayıp "
    "'Göster' ile açılabilir.",
    "Günlük sayfası yapılan her işlemi listeler. Asıl kayıt bilgisayardaki günlük veritabanındadır: "
    "sayfa silinse de durumlar kaybolmaz, 'Dönemleri Tara / Yenile' Dönemler sayfasını yeniden yazar.",
)


def help_lines() -> tuple[str, ...]:
    """The help sheet, with one line per registered target kind (the registry is the one list)."""
    from edefter_helper.targets import registry

    kinds = ["", "Hedef türleri (Hedefler > Tür):"] + [
        f"   {k.kind}: {k.label}. Adres: {k.address_help}."
        + (" Şifre gerekir (Kimlik Bilgisi)." if k.needs_password else "") for k in registry.kinds()]
    at = next(i for i, line in enumerate(HELP_LINES) if line.startswith("1. "))
    steps_end = HELP_LINES.index("", at)  # after the numbered steps
    return HELP_LINES[:steps_end] + tuple(kinds) + HELP_LINES[steps_end:]


def xlwings_dir() -> Path:
    """The installed xlwings package folder, found without importing xlwings (slow to import)."""
    spec = importlib.util.find_spec("xlwings")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("xlwings kurulu değil: pip install xlwings==0.37.8")
    return Path(list(spec.submodule_search_locations)[0])


def xlwings_bas() -> str:
    return (xlwings_dir() / "xlwings.bas").read_bytes().decode("cp1252")


def callbacks_bas(addin_dir: Path = ADDIN_DIR) -> str:
    text = (addin_dir / "callbacks.bas").read_text(encoding="ascii")
    return text.replace("\r\n", "\n")


def vba_source(addin_dir: Path = ADDIN_DIR) -> str:
    """Source of the `xlwings` module in our workbook: xlwings' own module, then our Subs."""
    base = xlwings_bas().replace("\r\n", "\n")
    return base.rstrip("\n") + "\n\n" + callbacks_bas(addin_dir)


def base_vba_project() -> bytes:
    with zipfile.ZipFile(xlwings_dir() / "quickstart_standalone.xlsm") as z:
        return z.read(xlsm.VBA_PART)


def build_vba_project(addin_dir: Path = ADDIN_DIR, code_names: tuple[str, ...] = ()) -> bytes:
    """xlwings' project with our `xlwings` module source and a document module for every sheet
    codeName in `code_names` (xlwings' file has Sheet1 and Sheet2 only)."""
    project = vba.replace_module_source(base_vba_project(), VBA_MODULE, vba_source(addin_dir))
    return vba.add_document_modules(project, list(code_names))


def sheet_code_names(wb) -> tuple[str, ...]:
    return tuple(ws.sheet_properties.codeName for ws in wb.worksheets if ws.sheet_properties.codeName)


def _header_style():
    from openpyxl.styles import Alignment, Font, PatternFill

    # named like the body (Calibri 11): other programs otherwise draw headers in a serif fallback
    return (Font(name="Calibri", size=11, bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F4E78"),
            Alignment(vertical="center", wrap_text=True))


def _add_data_sheet(wb, sheet: layout.Sheet, code_name: str) -> None:
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    ws = wb.create_sheet(sheet.name)
    ws.sheet_properties.codeName = code_name
    font, fill, align = _header_style()
    for i, col in enumerate(sheet.columns, start=1):
        letter = get_column_letter(i)
        cell = ws.cell(row=1, column=i, value=col.header)
        cell.font, cell.fill, cell.alignment = font, fill, align
        dim = ws.column_dimensions[letter]
        dim.width = col.width
        if col.number_format:
            dim.number_format = col.number_format  # whole column, so rows added later inherit it
        body = f"{letter}2:{letter}{LAST_ROW}"
        choices = col.choices
        # one validation per cell (Excel repairs a file with two): a hint goes into the list's own
        prompt = dict(showInputMessage=True, promptTitle=col.hint[0], prompt=col.hint[1]) if col.hint else {}
        if col.choices_from == "target-kinds":
            from edefter_helper.targets import registry

            choices = registry.kind_names()
        if choices:
            dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"',
                                allow_blank=True, showErrorMessage=True,
                                errorTitle="Geçersiz değer", error="Listeden bir değer seçin.", **prompt)
            dv.add(body)
            ws.add_data_validation(dv)
        elif col.choices_from == "target-names":
            # a warning, not a stop: a firm may be typed in before its target, or name several
            dv = DataValidation(type="list", formula1=layout.TARGET_LIST, allow_blank=True,
                                showErrorMessage=True, errorStyle="warning", errorTitle="Hedef bulunamadı",
                                error="Bu ad Hedefler sayfasında yok. Hedefi Hedefler sayfasına ekleyin "
                                      "ya da listeden seçin. Birden çok hedef (ör. İzibiz; NAS) yazdıysanız "
                                      "Evet ile devam edin.", **prompt)
            dv.add(body)
            ws.add_data_validation(dv)
        elif col.hint:  # an input message only: any value is accepted
            title, text = col.hint
            dv = DataValidation(allow_blank=True, showInputMessage=True, promptTitle=title, prompt=text)
            dv.add(body)
            ws.add_data_validation(dv)
        if col.key == "status" and sheet.name in (layout.PERIODS.name, layout.COPIES.name):
            for word, (bg, fg) in STATUS_COLORS.items():
                ws.conditional_formatting.add(body, CellIsRule(
                    operator="equal", formula=[f'"{word}"'], stopIfTrue=True,
                    fill=PatternFill("solid", fgColor=bg, bgColor=bg), font=Font(color=fg)))
    last = get_column_letter(len(sheet.columns))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{last}{LAST_ROW}"  # whole columns: rows Python adds are filtered too
    ws.row_dimensions[1].height = 30


def build_workbook():
    """The template's sheets as an openpyxl Workbook (no VBA attached yet)."""
    import openpyxl
    from openpyxl.styles import Alignment, Font

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    wb.code_name = "ThisWorkbook"  # the document module names inside vbaProject.bin
    n = 0
    for sheet in layout.DATA_SHEETS:
        n += 1
        _add_data_sheet(wb, sheet, f"Sheet{n}")

    ws = wb.create_sheet(layout.CALENDAR_SHEET)
    n += 1
    ws.sheet_properties.codeName = f"Sheet{n}"
    from edefter_helper.workbook.calendar_format import format_calendar

    format_calendar(ws)
    ws.append(["Firma", "VKN/TCKN", "Şube", "Sorumlu", "(Takvim / Radar düğmesi doldurur)"])

    ws = wb.create_sheet(layout.HELP_SHEET)
    n += 1
    ws.sheet_properties.codeName = f"Sheet{n}"
    ws.column_dimensions["A"].width = 120
    for r, line in enumerate(help_lines(), start=1):
        cell = ws.cell(row=r, column=1, value=line or None)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        warning = line.startswith("ÖNEMLİ")
        if warning:
            cell.font = Font(name="Calibri", bold=True, color="C00000")
        # Excel and LibreOffice do not grow rows for wrapped text in a file they did not lay out: a
        # line of the 120-wide column at 11 pt holds ~135 characters in Calibri, ~130 in the wider
        # DejaVu Sans LibreOffice draws without Calibri; less a word lost at each wrap, fewer in bold
        lines = max(1, -(-len(line) // (100 if warning else 120)))
        ws.row_dimensions[r].height = 15 * lines + 2
    ws["A1"].font = Font(name="Calibri", bold=True, size=14)
    ws.row_dimensions[1].height = 22

    ws = wb.create_sheet(layout.CONF_SHEET)
    n += 1
    ws.sheet_properties.codeName = f"Sheet{n}"
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 70
    for r, (key, value) in enumerate(CONF_KEYS, start=1):
        ws.cell(row=r, column=1, value=key)
        ws.cell(row=r, column=2, value=value or None).number_format = "@"
    ws.sheet_state = "hidden"  # not "veryHidden": xlwings must still read it

    from openpyxl.workbook.defined_name import DefinedName

    wb.defined_names[layout.TARGET_LIST] = DefinedName(layout.TARGET_LIST, attr_text=layout.TARGET_LIST_FORMULA)
    wb.active = 0
    wb.properties.creator = "e-Defter Yedekleme"
    wb.properties.lastModifiedBy = "e-Defter Yedekleme"
    wb.properties.title = "e-Defter Yedekleme"
    return wb


def _skeleton(vba_bin: bytes, addin_dir: Path) -> zipfile.ZipFile:
    """A package holding only the macro and ribbon parts; openpyxl merges it into its output."""
    rels = "".join(
        f'<Relationship Id="rIdUI{i}" Type="{rel}" Target="{part}"/>'
        for i, (part, rel) in enumerate(RIBBON_PARTS.items(), start=1))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(xlsm.CONTENT_TYPES,
                   f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                   f'<Types xmlns="{xlsm.CT_NS}"><Override PartName="/{xlsm.VBA_PART}" '
                   f'ContentType="{xlsm.VBA_CONTENT_TYPE}"/></Types>')
        z.writestr(xlsm.ROOT_RELS,
                   f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                   f'<Relationships xmlns="{xlsm.RELS_NS}">{rels}</Relationships>')
        for part in RIBBON_PARTS:
            z.writestr(part, (addin_dir / Path(part).name).read_bytes())
        z.writestr(xlsm.VBA_PART, vba_bin)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def build_template(out_path: str | Path = TEMPLATE, *, addin_dir: Path = ADDIN_DIR) -> Path:
    """Build the control workbook template from its sources; returns the path written."""
    out_path = Path(out_path)
    wb = build_workbook()
    wb.vba_archive = _skeleton(build_vba_project(addin_dir, sheet_code_names(wb)), addin_dir)
    xlsm.save(wb, out_path, timestamp=BUILD_TIME)
    return out_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = build_template(args[0] if args else TEMPLATE)
    print(f"Şablon oluşturuldu: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
