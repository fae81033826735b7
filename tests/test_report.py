"""İbraz Raporu (issue 9): one self-contained, printable Turkish HTML file per restore. Structure read
back with lxml.html; hostile strings stay text; missing and invalid months are visibly marked; the
file is written atomically; the same input gives the same bytes."""

from __future__ import annotations

import importlib.util
import os
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lxml.html
import pytest

from edefter_helper import report as R
from edefter_helper.report import CopyRecord, ReportFile, ReportMonth, write_report

TR = timezone(timedelta(hours=3))
AT = datetime(2025, 3, 12, 14, 5, 31, tzinfo=TR)
ROOT = Path(__file__).resolve().parents[1]


def sha(n: int) -> str:
    return f"{n:064x}"


def month(vkn="4810525635", branch="0000", period="2024-01", firm="Anadolu Tekstil A.Ş.", **kw) -> ReportMonth:
    yyyymm = period.replace("-", "")
    folder = f"{vkn}/01.01.{period[:4]}-31.12.{period[:4]}/{period[5:]}"
    base = int(yyyymm) * 100 + int(vkn[-3:])
    files = [ReportFile(f"{vkn}-{yyyymm}-Y-000000.xml", 18_734_512, sha(base + 1), folder, True),
             ReportFile(f"{vkn}-{yyyymm}-YB-000000.xml", 8_214, sha(base + 2), folder, True),
             ReportFile(f"GIB-{vkn}-{yyyymm}-YB-000000.xml", 12_907, sha(base + 3), folder, True),
             ReportFile(f"{vkn}-{yyyymm}-DR-000000.xml", 41_263, sha(base + 4), folder, True)]
    values = dict(vkn=vkn, branch=branch, period=period, firm=firm, source="http https://yedek.example.com.tr (ali)",
                  files=files,
                  copies=[CopyRecord("http https://yedek.example.com.tr (ali)", "2024-04-11T09:42:17+03:00",
                                     f"EDY-{yyyymm}", sha(base + 99))],
                  valid=True, problems=[], warnings=[], signers=[f"2.5.4.5={vkn},CN={firm},C=TR"],
                  countersigners=["CN=Gelir İdaresi Başkanlığı,C=TR"], missing=[])
    values.update(kw)
    return ReportMonth(**values)


def render(months, **kw) -> str:
    return R.render(months, generated_at=kw.pop("generated_at", AT), tool_version=kw.pop("tool_version", "0.1.0"),
                    **kw)


def parse(text: str):
    return lxml.html.document_fromstring(text)


def text_of(el) -> str:
    return " ".join(el.text_content().split())


def section(doc, m: ReportMonth):
    """The month's section, found by its heading."""
    found = [s for s in doc.xpath('//section[contains(@class,"month")]')
             if text_of(s.xpath(".//h3")[0]).startswith(R._period(m.period)) and f"VKN/TCKN: {m.vkn}" in text_of(s)]
    assert len(found) == 1, [text_of(s)[:80] for s in found]
    return found[0]


@pytest.fixture
def months():
    return [month(),
            month(period="2024-02", warnings=["Karşı imza GİB'e ait olarak doğrulanamadı: imzalayan sertifika "
                                              "(CN=GİB) GİB sertifikaları listesinde yok."]),
            month(vkn="3880412757", branch="0001", period="2024-03", firm="Ege Gıda Ltd. Şti.", valid=False,
                  problems=["2019/01 ve sonraki dönemler için Defter Raporu (DR) zorunludur; 2024-03 dönemi için "
                            "bulunamadı."],
                  missing=["3880412757-202403-DR-000000-0001.xml: hedefteki pakette yok; dosya yazılmadı."])]


# --- structure -------------------------------------------------------------------------------------

def test_written_file_parses_and_is_self_contained(tmp_path, months):
    path = write_report(months, tmp_path, generated_at=AT, tool_version="0.1.0")
    assert path == tmp_path / "ibraz-raporu.html"
    raw = path.read_bytes()
    raw.decode("utf-8")  # strict
    assert raw.startswith(b"<!DOCTYPE html>")
    doc = parse(raw.decode("utf-8"))
    assert doc.get("lang") == "tr"
    assert doc.xpath("//meta[@charset]")[0].get("charset").lower() == "utf-8"
    assert text_of(doc.xpath("//title")[0]) == "e-Defter İbraz Raporu"
    assert text_of(doc.xpath("//h1")[0]) == "e-Defter İbraz Raporu"
    # no scripts, no external resources: every link stays in the document, every style is inline
    assert not doc.xpath("//script | //link | //img | //iframe | //object | //embed | //form | //base")
    assert all(h.startswith("#") for h in doc.xpath("//@href"))
    assert not doc.xpath("//@src")
    assert len(doc.xpath("//style")) == 1 and "@import" not in doc.xpath("//style")[0].text
    assert "url(" not in doc.xpath("//style")[0].text
    csp = doc.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')[0]
    assert "default-src 'none'" in csp
    # every in-document link points at an existing month section
    ids = set(doc.xpath("//@id"))
    assert {h[1:] for h in doc.xpath("//@href")} <= ids
    assert len(ids) == len(doc.xpath("//@id"))  # ids unique


def test_header_says_what_it_proves_and_what_not(months):
    doc = parse(render(months, tool_version="9.8.7"))
    header = text_of(doc.xpath("//header")[0])
    assert "Oluşturulma: 12 Mart 2025, 14:05:31 (UTC+03:00)" in header
    assert "9.8.7" in header
    assert "kriptografik olarak doğrulanmıştır" in header
    assert "Sertifika zincirleri" in header and "CRL/OCSP" in header and "denetlenmemiştir" in header
    assert "Bu kopyalar firmanın kendi ek kopyalarıdır; yasal ikincil kopya GİB sistemlerindedir." in header
    assert "certutil -hashfile" in header and "sha256sum" in header


def test_summary_has_one_row_per_month(months):
    doc = parse(render(months))
    table = doc.xpath('//section[@class="summary"]//table')[0]
    heads = [text_of(th) for th in table.xpath(".//thead//th")]
    assert heads == ["Firma", "VKN/TCKN", "Şube", "Dönem", "Dosya sayısı", "Doğrulama sonucu", "Kaynak"]
    rows = [[text_of(td) for td in tr.xpath("./td")] for tr in table.xpath(".//tbody/tr")]
    # ordered by VKN, branch, period
    assert [r[:5] for r in rows] == [["Ege Gıda Ltd. Şti.", "3880412757", "0001", "Mart 2024", "4"],
                                     ["Anadolu Tekstil A.Ş.", "4810525635", "—", "Ocak 2024", "4"],
                                     ["Anadolu Tekstil A.Ş.", "4810525635", "—", "Şubat 2024", "4"]]
    assert all(r[6] == "http https://yedek.example.com.tr (ali)" for r in rows)
    assert "Geçersiz" in rows[0][5] and "1 eksik" in rows[0][5]
    assert rows[1][5] == "✓ Geçerli"
    assert rows[2][5] == "✓ Geçerli 1 uyarı"
    totals = text_of(doc.xpath('//section[@class="summary"]/p')[0])
    assert "Toplam 3 dönem, 12 dosya" in totals and "Geçersiz: 1" in totals and "Eksiği olan: 1" in totals


def test_every_month_file_and_hash_appears(months):
    text = render(months)
    doc = parse(text)
    sections = doc.xpath('//section[contains(@class,"month")]')
    assert len(sections) == 3
    for m in months:
        sec = section(doc, m)
        body = text_of(sec)
        assert m.firm in body and m.source in body
        rows = sec.xpath('.//h3[.="Dosyalar"]/following-sibling::table[1]/tbody/tr')
        assert len(rows) == len(m.files)
        cells = {text_of(tr.xpath("./td")[0]): [text_of(td) for td in tr.xpath("./td")] for tr in rows}
        for f in m.files:
            assert f.name in text and f.sha256 in text  # also verbatim in the HTML source
            name, size, digest, folder, same = cells[f.name]
            assert size == f"{f.size:,}".replace(",", ".")
            assert digest == f.sha256 and folder == f.folder and same == "✓"
            td = [tr for tr in rows if text_of(tr.xpath("./td")[0]) == f.name][0].xpath("./td")[2]
            assert "mono" in td.get("class")
        for c in m.copies:
            assert c.package_sha256 in text and c.receipt in body and c.target in body
        assert "11.04.2024 09:42:17 (UTC+03:00)" in body
        for s in m.signers:
            assert s.replace("2.5.4.5=", "serialNumber=") in body
        for s in m.countersigners:
            assert s in body
    assert "18.734.512" in text


def test_files_are_listed_in_ledger_order():
    m = month()
    m.files.reverse()
    sec = section(parse(render([m])), m)
    names = [text_of(tr.xpath("./td")[0]) for tr in sec.xpath(".//table[1]/tbody/tr")]
    assert [n.split("-")[-2] if not n.startswith("GIB") else "GIB-" + n.split("-")[-2] for n in names] == \
        ["Y", "YB", "GIB-YB", "DR"]


# --- escaping --------------------------------------------------------------------------------------

HOSTILE = ['<script>alert(1)</script>', '"onload="alert(2)', "'><img src=x onerror=alert(3)>", "&amp;&lt;",
           "</td></tr></table><h1>sahte</h1>", "<!--", "]]>"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_strings_are_text_everywhere(tmp_path, bad):
    m = ReportMonth(vkn=f"48{bad}", branch=f"00{bad}", period=f"2024-01{bad}", firm=f"Firma {bad}",
                    source=f"kaynak {bad}",
                    files=[ReportFile(f"dosya{bad}.xml", 1, f"sha{bad}", f"klasör/{bad}", False)],
                    copies=[CopyRecord(f"hedef {bad}", f"zaman {bad}", f"makbuz {bad}", f"paket {bad}")],
                    valid=False, problems=[f"sorun {bad}"], warnings=[f"uyarı {bad}"], signers=[f"CN={bad}"],
                    countersigners=[f"CN=GİB {bad}"], missing=[f"eksik {bad}"])
    path = write_report([m], tmp_path, generated_at=AT, tool_version=f"v{bad}", title=f"Başlık {bad}")
    text = path.read_text("utf-8")
    doc = parse(text)
    # nothing the strings carry became markup
    assert not doc.xpath("//script | //img | //iframe | //body//h1[not(normalize-space(.)=$t)]",
                         t=f"Başlık {bad}")
    assert len(doc.xpath("//h1")) == 1
    assert not [a for a in doc.xpath("//@*") if a.attrname.lower().startswith("on")]
    assert len(doc.xpath('//section[contains(@class,"month")]')) == 1
    assert len(doc.xpath("//table")) == 4  # summary, files, copies, verification: none broken open
    # ... and every one is shown as the text it is
    body = doc.xpath("//body")[0].text_content()
    for value in (f"Firma {bad}", f"kaynak {bad}", f"dosya{bad}.xml", f"sha{bad}", f"klasör/{bad}", f"hedef {bad}",
                  f"zaman {bad}", f"makbuz {bad}", f"paket {bad}", f"sorun {bad}", f"uyarı {bad}", f"CN={bad}",
                  f"CN=GİB {bad}", f"eksik {bad}", f"48{bad}", f"00{bad}", f"2024-01{bad}", f"v{bad}",
                  f"Başlık {bad}"):
        assert value in body, value
    assert text_of(doc.xpath("//title")[0]) == f"Başlık {bad}"
    assert "<script>" not in text and "<img" not in text and '"onload=' not in text


def test_reordering_and_control_characters_are_shown_not_obeyed():
    # U+202E would show "fatura\u202Elmx.exe" as "faturaexe.xml"; a NUL or ESC cannot be shown at all
    m = month(firm="Firma\u202eŞ.A", missing=["dosya\x00adı\x1b[31m: yazılamadı"])
    m.files[0] = replace(m.files[0], name="fatura\u202elmx.exe")
    text = render([m])
    assert "\u202e" not in text and "\x00" not in text and "\x1b" not in text
    body = parse(text).text_content()
    assert "fatura[U+202E]lmx.exe" in body and "Firma[U+202E]Ş.A" in body
    assert "dosya[U+0000]adı[U+001B][31m: yazılamadı" in body


def test_undecodable_file_name_does_not_break_the_report(tmp_path):
    m = month()
    m.files[0] = replace(m.files[0], name="bozuk-\udcff.xml")  # os.fsdecode of a non-UTF-8 name
    text = write_report([m], tmp_path, generated_at=AT, tool_version="0.1.0").read_text("utf-8")
    assert "bozuk-\\udcff.xml" in text


# --- what must stand out ---------------------------------------------------------------------------

def test_missing_items_and_invalid_months_are_marked(months):
    doc = parse(render(months))
    bad = section(doc, months[2])
    boxes = bad.xpath('.//div[contains(@class,"box") and contains(@class,"bad")]')
    assert any("Geri yüklenemeyenler (1)" in text_of(b) and months[2].missing[0] in text_of(b) for b in boxes)
    assert any("Doğrulama başarısız (1 sorun)" in text_of(b) for b in boxes)
    head = text_of(bad.xpath('.//div[@class="month-head"]')[0])
    assert "✗ Geçersiz" in head and "1 eksik" in head
    assert bad.xpath('.//span[contains(@class,"verdict") and contains(@class,"bad")]')
    assert months[2].problems[0] in text_of(bad.xpath('.//table[@class="kv"]//tr[@class="bad"]')[0])
    summary_rows = doc.xpath('//section[@class="summary"]//tbody/tr')
    assert [tr.get("class") for tr in summary_rows] == ["bad", "ok", "warn"]

    good = section(doc, months[0])
    assert not good.xpath('.//div[contains(@class,"box")]')
    assert "✓ Geçerli" in text_of(good.xpath('.//div[@class="month-head"]')[0])
    warned = section(doc, months[1])
    assert warned.xpath('.//span[contains(@class,"flag") and contains(@class,"warn")]')
    assert months[1].warnings[0] in text_of(warned.xpath('.//table[@class="kv"]//tr[@class="warn"]')[0])
    # the CSS really paints those classes
    css = doc.xpath("//style")[0].text
    assert ".box.bad" in css and "tr.bad td" in css and ".verdict.bad" in css


def test_file_differing_from_backup_and_unverified_month_are_marked():
    m = month(valid=None, copies=[], signers=[], countersigners=[])
    m.files[1] = replace(m.files[1], matches_backup=False)
    doc = parse(render([m]))
    sec = section(doc, m)
    head = text_of(sec.xpath('.//div[@class="month-head"]')[0])
    assert "Doğrulanmadı" in head and "1 dosya yedekten farklı" in head
    diff = sec.xpath('.//td[contains(@class,"diff")]')
    assert len(diff) == 1 and text_of(diff[0]) == "✗ farklı"
    assert m.files[1].name in text_of(diff[0].getparent())
    assert any("Yedekten farklı dosyalar (1)" in text_of(b) for b in sec.xpath('.//div[contains(@class,"box")]'))
    assert "onaylanmış kopya kaydı yok" in text_of(sec)
    assert doc.xpath('//section[@class="summary"]//tbody/tr')[0].get("class") == "bad"


def test_no_months():
    doc = parse(render([]))
    assert "Raporda dönem yok." in text_of(doc.xpath('//section[@class="summary"]')[0])
    assert not doc.xpath('//section[contains(@class,"month")]')


# --- Turkish ---------------------------------------------------------------------------------------

def test_turkish_characters_survive(tmp_path):
    firm = "Çağrı Şişecam Gıda Ürünleri İç ve Dış Ticaret A.Ş. — ığüşöç İĞÜŞÖÇ"
    months = [month(firm=firm, period=f"2024-{mm:02d}") for mm in range(1, 13)]
    months[0].missing.append("Defter Raporu geri yüklenemedi: hedefte bulunamadı.")
    path = write_report(months, tmp_path / "yeni klasör", generated_at=AT, tool_version="0.1.0")
    raw = path.read_bytes()
    assert firm.encode("utf-8") in raw
    assert "&#" not in raw.decode("utf-8")  # written as characters, not as entities
    body = parse(raw.decode("utf-8")).text_content()
    for name in ("Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz", "Ağustos", "Eylül", "Ekim",
                 "Kasım", "Aralık"):
        assert f"{name} 2024" in body
    assert "Defter Raporu geri yüklenemedi: hedefte bulunamadı." in body


def test_times_in_turkish_form():
    m = month(copies=[CopyRecord("klasör D:\\Yedek", "2024-04-11T06:42:17Z", "", sha(1)),
                      CopyRecord("izibiz x", "2024-04-11T09:42:17+03:00", "R", sha(2)),
                      CopyRecord("eski", "dün akşam", "R2", sha(3))])
    body = " ".join(parse(render([m], generated_at=datetime(2024, 12, 31, 23, 59, 0))).text_content().split())
    assert "Oluşturulma: 31 Aralık 2024, 23:59:00" in body  # naive time: no zone claimed
    assert "11.04.2024 06:42:17 (UTC)" in body and "11.04.2024 09:42:17 (UTC+03:00)" in body
    assert "dün akşam" in body  # not ISO: shown as given
    assert "klasör D:\\Yedek" in body


# --- printing --------------------------------------------------------------------------------------

def test_print_css_for_a4():
    css = parse(render([month()])).xpath("//style")[0].text
    assert "@page" in css and "size: A4" in css and "@media print" in css
    assert "break-before: page" in css and "break-inside: avoid" in css
    assert "table-header-group" in css  # long tables repeat their header on each page
    assert "overflow: hidden" not in css and "overflow:hidden" not in css and "text-overflow" not in css


# --- the file --------------------------------------------------------------------------------------

def test_written_atomically_and_replaces_whole(tmp_path, months):
    out = tmp_path / "ibraz"
    out.mkdir()
    (out / "4810525635").mkdir()  # the restored months sit beside it
    old = out / "ibraz-raporu.html"
    old.write_bytes(b"x" * 5_000_000)  # longer than the new report: a truncating rewrite would leave a tail
    old_inode = old.stat().st_ino
    path = write_report(months, out, generated_at=AT, tool_version="0.1.0")
    assert path.read_bytes() == render(months).encode("utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["4810525635", "ibraz-raporu.html"]
    if os.name != "nt":
        assert path.stat().st_ino != old_inode  # a new file renamed over the old one, not rewritten in place


def test_failed_write_leaves_old_report_and_no_temp_file(tmp_path, months, monkeypatch):
    old = tmp_path / "ibraz-raporu.html"
    old.write_text("eski rapor", "utf-8")

    def boom(src, dst):
        raise OSError("disk dolu")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk dolu"):
        write_report(months, tmp_path, generated_at=AT, tool_version="0.1.0")
    assert old.read_text("utf-8") == "eski rapor"
    assert [p.name for p in tmp_path.iterdir()] == ["ibraz-raporu.html"]


def test_deterministic_bytes(tmp_path, months):
    a = write_report(months, tmp_path / "a", generated_at=AT, tool_version="0.1.0").read_bytes()
    shuffled = list(months)
    random.Random(7).shuffle(shuffled)
    for m in shuffled:
        m.files.reverse()
        m.copies.reverse()
    b = write_report(shuffled, tmp_path / "b", generated_at=AT, tool_version="0.1.0").read_bytes()
    assert a == b
    assert render(months) == render(months)


def test_sample_for_the_readme_renders():
    spec = importlib.util.spec_from_file_location("render_report", ROOT / "docs" / "render_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    months = mod.sample_months()
    assert len(months) == 3 and len({m.vkn for m in months}) == 2
    assert sum(bool(m.warnings) for m in months) == 1 and sum(bool(m.missing) for m in months) == 1
    doc = parse(render(months))
    assert len(doc.xpath('//section[contains(@class,"month")]')) == 3
