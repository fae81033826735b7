"""İbraz Raporu: the restored months, their files and hashes, where and when each copy was confirmed and
what the verification found, as one self-contained HTML file an accountant can print and hand over.

The file carries no script and loads nothing (inline CSS; a Content-Security-Policy forbids the rest).
Every value is HTML-escaped, characters that would reorder text on screen (bidi controls) are shown as
visible codes, and the same input always gives the same bytes (no clocks, no random ids)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edefter_helper.engine.names import parse_name
from edefter_helper.fsutil import atomic_write
from edefter_helper.status import MONTHS_TR, month_label

REPORT_NAME = "ibraz-raporu.html"
NO_BRANCH = "0000"


@dataclass
class CopyRecord:
    target: str          # display, e.g. "http https://yedek.firma.com.tr (ali)" or "klasör D:\\Yedek"
    confirmed_at: str    # ISO 8601 with offset, when the target confirmed it held the package
    receipt: str         # the target's receipt/reference ("" if none)
    package_sha256: str


@dataclass
class ReportFile:
    name: str
    size: int
    sha256: str
    folder: str          # relative to the report's folder, where the file was written
    matches_backup: bool  # its sha256 equals the one recorded at backup time (manifest + journal)


@dataclass
class ReportMonth:
    vkn: str
    branch: str          # "0000" = none
    period: str          # "YYYY-MM"
    firm: str
    source: str          # the target it was restored from (display)
    files: list[ReportFile]
    copies: list[CopyRecord]
    valid: bool | None   # the engine's verdict on the restored files (None = not verified)
    problems: list[str]  # Turkish sentences from verification, empty when valid
    warnings: list[str]  # e.g. countersigner not on the GİB trust list
    signers: list[str]   # certificate subjects that signed the ledgers/berats
    countersigners: list[str]
    missing: list[str]   # what could not be restored, each a Turkish sentence with the reason
    package_sha256: str = ""  # the package the files were restored from ("" = none fetched)


# --- text helpers ------------------------------------------------------------------------------------

# C0/C1 controls (but tab/newline) cannot be shown; bidi controls would let a name like
# "fatura\u202Elmx.exe" display as something else — both are shown as visible codes instead.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _e(value: object) -> str:
    """Any value as HTML text: escaped (quotes too), invisible/reordering characters made visible,
    lone surrogates (undecodable file names) written as escapes instead of failing the report."""
    text = str(value)
    text = _INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def _num(n: int) -> str:
    """1234567 -> '1.234.567' (Turkish thousands separator)."""
    return f"{int(n):,}".replace(",", ".")


def _offset(off: timedelta) -> str:
    minutes = int(off.total_seconds()) // 60
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h:02d}:{m:02d}"


def _tr_datetime(dt: datetime, long: bool = False) -> str:
    """'1 Aralık 2025, 23:44:05 (UTC+03:00)' (long) or '01.12.2025 23:44:05 (UTC+03:00)'."""
    text = (f"{dt.day} {MONTHS_TR[dt.month - 1]} {dt.year}, {dt:%H:%M:%S}" if long
            else f"{dt:%d.%m.%Y %H:%M:%S}")
    off = dt.utcoffset()
    return text if off is None else f"{text} ({_offset(off)})"


def _tr_iso(value: str) -> str:
    """An ISO 8601 time from a target or the journal in Turkish form; anything else as given."""
    if not value:
        return "—"
    try:
        return _tr_datetime(datetime.fromisoformat(value))
    except ValueError:
        return value


def _period(period: str) -> str:
    """'2024-01' -> 'Ocak 2024'; a malformed period is shown as given rather than failing the report."""
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period or ""):
        return month_label(period)
    return period


def _branch(branch: str) -> str:
    return "—" if branch in ("", NO_BRANCH) else branch


def _path(value: str) -> str:
    """A folder path, escaped, that may wrap after each separator (<wbr> adds no characters)."""
    return re.sub(r"([/\\])", r"\1<wbr>", _e(value)) if value else "—"


# Yevmiye with its berats, then Kebir with its berats, then Defter Raporu; unknown names last
_KIND_ORDER = {kind: i for i, kind in enumerate(("Y", "YB", "GIB-YB", "K", "KB", "GIB-KB", "DR"))}


def _file_key(f: ReportFile) -> tuple:
    parsed = parse_name(f.name)
    if parsed is None:
        return (f.folder, 1, 0, 0, f.name)
    return (f.folder, 0, _KIND_ORDER.get(parsed.kind, len(_KIND_ORDER)), parsed.part, f.name)


def _subjects(subjects: list[str]) -> list[str]:
    """Certificate subjects as RFC 4514 gives them, with the serialNumber attribute (where the VKN/TCKN
    sits) named instead of shown as its bare OID 2.5.4.5."""
    return [re.sub(r"(?:^|(?<=[^\\][,+]))2\.5\.4\.5=", "serialNumber=", s) for s in subjects]


def _cls(name: str) -> str:
    return f' class="{name}"' if name else ""


def _dash(value: str) -> str:
    return _e(value) if value else "—"


# --- verdicts ----------------------------------------------------------------------------------------

def _mismatched(m: ReportMonth) -> list[ReportFile]:
    return [f for f in m.files if not f.matches_backup]


def _verdict(m: ReportMonth) -> tuple[str, str]:
    """(css class, words) of the engine's verdict alone."""
    if m.valid is True:
        return "ok", "✓ Geçerli"
    if m.valid is False:
        return "bad", "✗ Geçersiz"
    return "none", "Doğrulanmadı"


def _flags(m: ReportMonth) -> list[tuple[str, str]]:
    """What else a reader must see beside the verdict: missing items, changed files, warnings."""
    flags = []
    if m.missing:
        flags.append(("bad", f"{len(m.missing)} eksik"))
    if mismatched := _mismatched(m):
        flags.append(("bad", f"{len(mismatched)} dosya yedekten farklı"))
    if m.warnings:
        flags.append(("warn", f"{len(m.warnings)} uyarı"))
    return flags


def _row_class(m: ReportMonth) -> str:
    if m.valid is False or m.missing or _mismatched(m):
        return "bad"
    if m.valid is None or m.warnings:
        return "warn"
    return "ok"


def _result_html(m: ReportMonth) -> str:
    cls, words = _verdict(m)
    parts = [f'<span class="verdict {cls}">{_e(words)}</span>']
    parts += [f'<span class="flag {c}">{_e(t)}</span>' for c, t in _flags(m)]
    return " ".join(parts)


# --- the document ------------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 12mm 10mm 12mm 10mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt;
  line-height: 1.4; color: #1b1b1b; background: #fff; margin: 0 auto; max-width: 1140px; padding: 20px 24px; }
h1 { font-size: 18pt; margin: 0 0 2px; }
h2 { font-size: 14pt; margin: 18px 0 6px; }
h3 { font-size: 11pt; margin: 14px 0 4px; }
p { margin: 4px 0; }
ul { margin: 4px 0; padding-left: 20px; }
.meta { color: #444; margin: 0 0 10px; }
.meta span + span::before { content: " · "; }
.mono { font-family: Consolas, "DejaVu Sans Mono", "Liberation Mono", "Courier New", monospace; font-size: 8.5pt;
  word-break: break-all; overflow-wrap: anywhere; }
.wrap { overflow-wrap: anywhere; }
.path { overflow-wrap: break-word; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.c { text-align: center; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 4px 0 10px; }
th, td { border: 1px solid #b9bec7; padding: 3px 6px; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; }
th { background: #e9edf3; font-weight: 600; overflow-wrap: break-word; }
table.kv th { width: 24%; }
.about { display: flex; gap: 12px; margin: 8px 0; }
.about > div { flex: 1; border: 1px solid #b9bec7; border-radius: 4px; padding: 6px 10px; }
.about h2 { font-size: 11pt; margin: 2px 0 4px; }
.about li { margin: 2px 0; }
.legal { border-left: 4px solid #1f5fa8; background: #eef4fb; padding: 6px 10px; margin: 8px 0; }
.howto { font-size: 9pt; color: #333; }
.verdict, .flag { display: inline-block; padding: 0 5px; border-radius: 3px; font-weight: 600;
  white-space: nowrap; border: 1px solid transparent; }
.verdict.ok { color: #0b5d1e; background: #e3f4e7; border-color: #8cc79a; }
.verdict.bad, .flag.bad { color: #fff; background: #b3261e; border-color: #b3261e; }
.verdict.none { color: #5c4300; background: #fff4cc; border-color: #d9b84a; }
.flag.warn { color: #5c4300; background: #fff4cc; border-color: #d9b84a; }
.flag.ok-copy { color: #0b5d1e; background: #e3f4e7; border-color: #8cc79a; font-family: inherit; }
tr.bad td { background: #fdecea; }
tr.warn td { background: #fffaeb; }
td.same { color: #0b5d1e; font-weight: 700; }
td.diff { color: #fff; background: #b3261e !important; font-weight: 700; }
.box { border: 1px solid; border-left-width: 6px; border-radius: 4px; padding: 6px 10px; margin: 8px 0; }
.box h3 { margin: 0 0 4px; }
.box.bad { border-color: #b3261e; background: #fdecea; }
.box.warn { border-color: #d9b84a; background: #fffaeb; }
.box.none { border-color: #b9bec7; background: #f5f6f8; }
.firm { border-top: 3px solid #1f5fa8; margin-top: 28px; padding-top: 4px; }
.firm > h2 { margin-top: 4px; }
.month { border-top: 1px dashed #8a929e; margin-top: 16px; padding-top: 2px; }
.firm > .month:first-of-type { border-top: none; margin-top: 0; }
.month-head { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
.month-head h3 { font-size: 13pt; margin: 10px 0 2px; }
.sub { color: #444; }
.none-text { color: #555; font-style: italic; }
footer { margin-top: 24px; color: #555; font-size: 8.5pt; border-top: 1px solid #b9bec7; padding-top: 4px; }
a { color: inherit; }
@media print {
  body { max-width: none; padding: 0; font-size: 8.5pt; line-height: 1.3; }
  th, td { padding: 2px 4px; }
  .mono { font-size: 7.5pt; }
  .firm { break-before: page; border-top: none; margin-top: 0; }
  .month { break-before: page; border-top: none; margin-top: 0; }
  .firm > .month:first-of-type { break-before: avoid; }
  thead { display: table-header-group; }
  tr, .box, .about > div, .legal { break-inside: avoid; }
  h1, h2, h3, .month-head { break-after: avoid; }
  a { text-decoration: none; }
}
"""


def _table(head: list[tuple[str, str]], rows: list[str], cls: str = "") -> str:
    """head: (column title, width); rows: ready <tr> strings."""
    cols = "".join(f'<col style="width:{w}">' for _, w in head)
    ths = "".join(f"<th>{_e(t)}</th>" for t, _ in head)
    klass = f' class="{cls}"' if cls else ""
    return (f"<table{klass}><colgroup>{cols}</colgroup><thead><tr>{ths}</tr></thead>"
            f"<tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _list(items: list[str], empty: str = "—") -> str:
    if not items:
        return f'<span class="none-text">{_e(empty)}</span>'
    return "<ul>" + "".join(f'<li class="wrap">{_e(i)}</li>' for i in items) + "</ul>"


def _header(months: list[ReportMonth], title: str, generated_at: datetime, tool_version: str) -> str:
    return f"""<header>
<h1>{_e(title)}</h1>
<p class="meta"><span>Oluşturulma: {_e(_tr_datetime(generated_at, long=True))}</span>\
<span>Program: e-Defter Yedekleme, sürüm {_e(tool_version)}</span>\
<span>{len(months)} dönem</span></p>
<div class="about">
<div><h2>Bu rapor neyi gösterir</h2><ul>
<li>“Yedekle aynı” sütununda ✓ olan her dosyanın SHA-256 özeti, yedekleme sırasında kaydedilen özetle
(paket manifestosu ve yedekleme günlüğü) aynıdır: dosya, yedeklenen dosyayla bayt bayt aynıdır.</li>
<li>Kopyalar tablosundaki her hedef, belirtilen zamanda, SHA-256 özeti verilen paketi tuttuğunu onaylamıştır;
makbuz, hedefin verdiği referanstır.</li>
<li>Doğrulanan dönemlerde mali mühür imzaları ve GİB karşı imzaları, dosyaların içinde taşıdıkları sertifikalara
göre kriptografik olarak doğrulanmıştır; imzadan sonra değiştirilmiş bir dosya “Geçersiz” görünür. Beratların
kendi defterlerine ait olduğu, VKN ve dönem bilgileri ve ayın eksiksizliği de denetlenmiştir.</li>
</ul></div>
<div><h2>Neyi göstermez</h2><ul>
<li>Sertifika zincirleri (Kamu SM / TÜBİTAK köküne kadar) ve sertifika iptal durumu (CRL/OCSP) denetlenmemiştir.</li>
<li>Doğru VKN'yi taşıyan bir sertifikanın gerçekten o mükellefe ait olduğu denetlenmemiştir. Karşı imzanın
GİB'e ait olduğu yalnızca GİB sertifika güven listesi tanımlıysa doğrulanır; tanımlı değilse dönem uyarıyla
gösterilir.</li>
<li>Bu rapor olguları bildirir; hukuki görüş ya da mevzuata uygunluk beyanı değildir.</li>
</ul></div>
</div>
<p class="legal"><strong>Bu kopyalar firmanın kendi ek kopyalarıdır; yasal ikincil kopya GİB sistemlerindedir.</strong></p>
<p class="howto">Bir dosyanın özetini kendiniz hesaplayabilirsiniz — Windows: <span class="mono">certutil -hashfile
"DOSYA" SHA256</span>; macOS: <span class="mono">shasum -a 256 DOSYA</span>; Linux: <span class="mono">sha256sum
DOSYA</span>. Çıkan değer tablodaki SHA-256 ile aynı olmalıdır. Klasörler bu raporun bulunduğu klasöre göredir.</p>
</header>"""


def _summary(months: list[ReportMonth], ids: dict[int, str]) -> str:
    rows = []
    for m in months:
        rows.append(
            f'<tr class="{_row_class(m)}"><td class="wrap">{_e(m.firm)}</td><td>{_e(m.vkn)}</td>'
            f"<td>{_e(_branch(m.branch))}</td>"
            f'<td><a href="#{ids[id(m)]}">{_e(_period(m.period))}</a></td>'
            f'<td class="num">{_num(len(m.files))}</td><td>{_result_html(m)}</td>'
            f'<td class="wrap">{_dash(m.source)}</td></tr>')
    if not rows:
        return '<section class="summary"><h2>Özet</h2><p class="none-text">Raporda dönem yok.</p></section>'
    ok = sum(m.valid is True for m in months)
    bad = sum(m.valid is False for m in months)
    unverified = sum(m.valid is None for m in months)
    with_missing = sum(bool(m.missing) for m in months)
    with_diff = sum(bool(_mismatched(m)) for m in months)
    files = sum(len(m.files) for m in months)
    size = sum(f.size for m in months for f in m.files)
    totals = (f"Toplam {_num(len(months))} dönem, {_num(files)} dosya ({_num(size)} bayt). "
              f"Geçerli: {_num(ok)} · Geçersiz: {_num(bad)} · Doğrulanmadı: {_num(unverified)} · "
              f"Eksiği olan: {_num(with_missing)} · Yedekten farklı dosyası olan: {_num(with_diff)}")
    head = [("Firma", "20%"), ("VKN/TCKN", "13%"), ("Şube", "7%"), ("Dönem", "11%"), ("Dosya sayısı", "7%"),
            ("Doğrulama sonucu", "19%"), ("Kaynak", "23%")]
    return f'<section class="summary"><h2>Özet</h2>\n{_table(head, rows)}\n<p>{_e(totals)}</p></section>'


def _files(m: ReportMonth) -> str:
    if not m.files:
        return '<p class="none-text">Bu dönemden geri yüklenen dosya yok.</p>'
    rows = []
    for f in sorted(m.files, key=_file_key):
        same = ('<td class="c same" title="yedekle aynı">✓</td>' if f.matches_backup
                else '<td class="c diff" title="yedekten farklı">✗ farklı</td>')
        rows.append(f'<tr><td class="wrap">{_e(f.name)}</td><td class="num">{_num(f.size)}</td>'
                    f'<td class="mono">{_e(f.sha256)}</td><td class="path">{_path(f.folder)}</td>{same}</tr>')
    head = [("Dosya adı", "26%"), ("Boyut (bayt)", "11%"), ("SHA-256", "30%"), ("Klasör", "24%"),
            ("Yedekle aynı", "9%")]
    return _table(head, rows)


def _copies(m: ReportMonth) -> str:
    if not m.copies:
        return ('<p class="none-text">Bu bilgisayarın yedekleme günlüğünde bu dönem için onaylanmış kopya kaydı yok '
                '(yedek başka bir bilgisayardan alınmış olabilir); dosyalar yukarıdaki kaynaktan geri yüklendi.</p>')
    rows = []
    for c in sorted(m.copies, key=lambda c: (c.confirmed_at, c.target, c.receipt, c.package_sha256)):
        this = (' <span class="flag ok-copy">geri yüklenen paket</span>'
                if m.package_sha256 and c.package_sha256 == m.package_sha256 else "")
        rows.append(f'<tr><td class="wrap">{_e(c.target)}</td><td>{_e(_tr_iso(c.confirmed_at))}</td>'
                    f'<td class="wrap">{_dash(c.receipt)}</td><td class="mono">{_e(c.package_sha256)}{this}</td></tr>')
    head = [("Hedef", "28%"), ("Onay zamanı", "19%"), ("Makbuz", "18%"), ("Paket SHA-256", "35%")]
    return _table(head, rows)


def _verification(m: ReportMonth) -> str:
    cls, words = _verdict(m)
    explain = {
        "ok": "Geri yüklenen dosyalar imza, berat–defter bağı ve karşı imza denetimlerinden geçti.",
        "bad": "Geri yüklenen dosyalar doğrulamadan geçmedi; sorunlar aşağıdadır.",
        "none": "Geri yüklenen dosyalar doğrulanmadı.",
    }[cls]
    if m.warnings:
        explain += " Uyarılara bakınız."
    problems = _list(m.problems, "Yok")
    warnings = _list(m.warnings, "Yok")
    missing = (f"{_num(len(m.missing))} öğe; nedenleriyle birlikte bu dönemin başında listelendi." if m.missing
               else '<span class="none-text">Yok</span>')
    return (f'<table class="kv"><tbody>\n'
            f'<tr><th>Sonuç</th><td><span class="verdict {cls}">{_e(words)}</span> {_e(explain)}</td></tr>\n'
            f"<tr><th>İmzalayanlar (mali mühür)</th><td>{_list(_subjects(m.signers))}</td></tr>\n"
            f"<tr><th>Karşı imzalayanlar</th><td>{_list(_subjects(m.countersigners))}</td></tr>\n"
            f'<tr{_cls("bad" if m.problems else "")}><th>Sorunlar</th><td>{problems}</td></tr>\n'
            f'<tr{_cls("warn" if m.warnings else "")}><th>Uyarılar</th><td>{warnings}</td></tr>\n'
            f'<tr{_cls("bad" if m.missing else "")}><th>Geri yüklenemeyenler</th>'
            f"<td>{missing}</td></tr>\n"
            f"</tbody></table>")


def _sub(m: ReportMonth) -> str:
    """The month's identity line: VKN, branch, period, the source and the package restored from it."""
    package = (f' · <span>Geri yüklenen paketin SHA-256 özeti: <span class="mono">{_e(m.package_sha256)}</span></span>'
               if m.package_sha256 else "")
    return (f'<p class="sub"><span>VKN/TCKN: {_e(m.vkn)}</span> · <span>Şube: {_e(_branch(m.branch))}</span> · '
            f'<span>Dönem: {_e(m.period)}</span> · <span>Geri yüklendiği kaynak: {_dash(m.source)}</span>'
            f"{package}</p>")


def _month(m: ReportMonth, anchor: str) -> str:
    parts = [f'<section class="month" id="{anchor}">',
             f'<div class="month-head"><h3>{_e(_period(m.period))} · {_e(m.firm)}</h3>'
             f"<div>{_result_html(m)}</div></div>",
             _sub(m)]
    if m.missing:
        parts.append(f'<div class="box bad missing"><h3>Geri yüklenemeyenler ({_num(len(m.missing))})</h3>'
                     f"{_list(m.missing)}</div>")
    if mismatched := _mismatched(m):
        parts.append(f'<div class="box bad"><h3>Yedekten farklı dosyalar ({_num(len(mismatched))})</h3>'
                     + _list([f"{f.name}: SHA-256 özeti yedekleme sırasında kaydedilenle aynı değil."
                              for f in sorted(mismatched, key=_file_key)]) + "</div>")
    if m.valid is False:
        parts.append(f'<div class="box bad"><h3>Doğrulama başarısız ({_num(len(m.problems))} sorun)</h3>'
                     "<p>Ayrıntılar aşağıda, Doğrulama bölümündedir.</p></div>")
    parts += ["<h3>Dosyalar</h3>", _files(m),
              "<h3>Kopyalar (hedeflerin onayları)</h3>", _copies(m),
              "<h3>Doğrulama</h3>", _verification(m), "</section>"]
    return "\n".join(parts)


def _notes(notes) -> str:
    """What the run could not say month by month (a target nobody answered: months not asked)."""
    return (f'<div class="box warn run-notes"><h3>Bu geri yüklemede sorulamayanlar ({_num(len(notes))})</h3>'
            f"{_list(list(notes))}</div>")


def render(months: list[ReportMonth], *, generated_at: datetime, tool_version: str,
           title: str = "e-Defter İbraz Raporu", notes: tuple[str, ...] | list[str] = ()) -> str:
    """The report as HTML text. Months are ordered by VKN, branch and period and grouped by firm."""
    ordered = sorted(months, key=lambda m: (m.vkn, m.branch, m.period))
    ids = {id(m): f"ay-{i}" for i, m in enumerate(ordered, 1)}
    body = [_header(ordered, title, generated_at, tool_version), *([_notes(notes)] if notes else []),
            _summary(ordered, ids)]
    firms: dict[tuple[str, str], list[ReportMonth]] = {}
    for m in ordered:
        firms.setdefault((m.vkn, m.branch), []).append(m)
    for (vkn, branch), group in firms.items():
        body.append(f'<section class="firm"><h2>{_e(group[0].firm)}</h2>'
                    f'<p class="sub">VKN/TCKN: {_e(vkn)} · Şube: {_e(_branch(branch))} · {_num(len(group))} dönem</p>')
        body += [_month(m, ids[id(m)]) for m in group]
        body.append("</section>")
    body.append(f"<footer>{_e(title)} · {_e(_tr_datetime(generated_at, long=True))} · "
                f"e-Defter Yedekleme {_e(tool_version)}</footer>")
    return ("<!DOCTYPE html>\n"
            '<html lang="tr">\n<head>\n<meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(months: list[ReportMonth], out_dir: Path, *, generated_at: datetime, tool_version: str,
                 title: str = "e-Defter İbraz Raporu") -> Path:
    """Write `out_dir/ibraz-raporu.html` atomically (an existing report is replaced whole) and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / REPORT_NAME
    data = render(months, generated_at=generated_at, tool_version=tool_version, title=title).encode("utf-8")
    with atomic_write(dest, prefix=".ibraz-raporu-") as f:
        f.write(data)
    return dest
