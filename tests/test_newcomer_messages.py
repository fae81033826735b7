"""Say why nothing happened, and say it readably (issue 14, "What they read"): Firmalar rows that look
wrong are warned about (check digits, duplicates, Evet/Hayır), a firm with no months, firms skipped for
Otomatik Yedekleme = Hayır, a --firm not in Firmalar, a period with no files, a journal that is not
there or not a journal; text output has a header row and cuts no word. Through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edefter_helper.commands import fit
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

GOOD_A, GOOD_B = "7420300220", "4840847211"  # check digits add up (python-stdnum)
LONG = "Anadolu Gıda Sanayi ve Ticaret Anonim Şirketi İstanbul Şubesi"


def _office(tmp_path, edefter, firms: list[dict]) -> Path:
    nas = tmp_path / "nas"
    nas.mkdir(exist_ok=True)
    wb = tmp_path / "kontrol.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"target": "NAS", **f} for f in firms])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    return wb


def _months(folder: Path, vkn: str, *periods: str) -> Path:
    for p in periods:
        write_month(folder / p, vkn, p, company="Deneme")
    return folder


def _warnings(stdout: str) -> list[str]:
    return [line[len("Uyarı: "):] for line in stdout.splitlines() if line.startswith("Uyarı: ")]


def test_firmalar_rows_that_look_wrong_are_warned_about_and_the_run_goes_on(tmp_path, edefter):
    a = _months(tmp_path / "A", GOOD_A, "2024-01")
    empty = tmp_path / "bos"
    empty.mkdir()
    wb = _office(tmp_path, edefter, [
        {"name": "A", "vkn": GOOD_A, "folder": str(a), "auto": "Evet"},
        {"name": "A ikinci satır", "vkn": GOOD_A, "folder": str(a), "auto": "Evet"},
        {"name": "Yanlış hane", "vkn": "4810525637", "folder": str(empty), "auto": "belki"},
        {"name": "Dokuz hane", "vkn": "481052563", "folder": str(empty)},
        {"name": "TCKN", "vkn": "12345678951", "folder": str(empty), "auto": "Hayır"},
    ])
    proc = edefter("refresh", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0, proc.stderr
    warnings = _warnings(proc.stdout)
    assert any("satır 3 (A ikinci satır)" in w and f"{GOOD_A} satır 2'de de var" in w for w in warnings)
    assert any("satır 4 (Yanlış hane)" in w and "'belki' anlaşılamadı" in w and "Evet sayıldı" in w
               for w in warnings)
    assert any("satır 4 (Yanlış hane)" in w and "VKN 4810525637 kontrol hanesi tutmuyor" in w for w in warnings)
    assert any("Yanlış hane" in w and "bulunamadı" in w for w in warnings)
    assert any("satır 5 (Dokuz hane)" in w and "'481052563' 9 haneli" in w and "0481052563" in w for w in warnings)
    assert any("satır 6 (TCKN)" in w and "TCKN 12345678951 kontrol haneleri tutmuyor" in w for w in warnings)
    assert not any("(A)" in w for w in warnings), warnings
    assert "1 dönem bulundu" in proc.stdout
    # the same words in Günlük, where the ribbon's user reads them
    log = [r["message"] for r in FileBook(wb).read_rows(L.LOG) if r["status"] == "Uyarı"]
    assert any("kontrol hanesi tutmuyor" in m for m in log)


def test_check_digits_are_said_per_row_and_a_valid_number_says_nothing(tmp_path, edefter):
    folder = _months(tmp_path / "A", "4810525635", "2024-01")  # the samples' VKN: check digits add up
    wb = _office(tmp_path, edefter, [{"name": "Anadolu", "vkn": "4810525635", "folder": str(folder)}])
    proc = edefter("refresh", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0 and _warnings(proc.stdout) == [], proc.stdout

    other = _months(tmp_path / "B", "4810525637", "2024-01")  # a typo'd number, even with months under it
    (tmp_path / "ikinci").mkdir()
    wb = _office(tmp_path / "ikinci", edefter, [{"name": "Yazım hatası", "vkn": "4810525637", "folder": str(other)}])
    proc = edefter("refresh", "--workbook", wb, "--journal", tmp_path / "j2.sqlite3")
    assert proc.returncode == 0 and "1 dönem bulundu" in proc.stdout  # said, never refused
    assert _warnings(proc.stdout) == ["Firmalar satır 2 (Yazım hatası): VKN 4810525637 kontrol hanesi tutmuyor: "
                                      "yanlış yazılmış olabilir."], proc.stdout


def test_firms_skipped_for_otomatik_yedekleme_hayir_are_named(tmp_path, edefter):
    a = _months(tmp_path / "A", GOOD_A, "2024-01")
    b = _months(tmp_path / "B", GOOD_B, "2024-01", "2024-02")
    wb = _office(tmp_path, edefter, [{"name": "Otomatik", "vkn": GOOD_A, "folder": str(a), "auto": "Evet"},
                                     {"name": "Elle", "vkn": GOOD_B, "folder": str(b), "auto": "Hayır"}])
    proc = edefter("backup", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("Otomatik Yedekleme = Hayır" in w and "Elle (2 dönem)" in w and "--all" in w
               for w in _warnings(proc.stdout)), proc.stdout
    assert "1 dönem yedeklendi" in proc.stdout
    proc = edefter("backup", "--workbook", wb, "--journal", tmp_path / "j.sqlite3", "--all")
    assert proc.returncode == 0 and "Hayır" not in proc.stdout and "2 dönem yedeklendi" in proc.stdout


def test_send_says_why_nothing_was_sent(tmp_path, edefter):
    a = _months(tmp_path / "A", GOOD_A, "2024-01")
    wb = _office(tmp_path, edefter, [{"name": "A", "vkn": GOOD_A, "folder": str(a)}])
    journal = tmp_path / "j.sqlite3"
    proc = edefter("send", "--workbook", wb, "--journal", journal, "--firm", GOOD_B)
    assert proc.returncode == 2 and f"{GOOD_B} Firmalar sayfasında yok" in proc.stderr, proc.stderr
    proc = edefter("send", "--workbook", wb, "--journal", journal, "--period", "2020-01")
    assert proc.returncode == 0
    assert "2020-01 döneminde e-Defter dosyası bulunamadı" in proc.stdout, proc.stdout
    proc = edefter("send", "--workbook", wb, "--journal", journal, "--firm", GOOD_A, "--period", "2020-01",
                   "2024-01", "--json")
    out = json.loads(proc.stdout)
    assert [r["period"] for r in out["results"]] == ["2024-01"]
    assert any("2020-01" in n and GOOD_A in n for n in out["notes"])


def test_the_journal_is_named_when_it_is_missing_or_not_a_journal(tmp_path, edefter):
    a = _months(tmp_path / "A", GOOD_A, "2024-01")
    wb = _office(tmp_path, edefter, [{"name": "A", "vkn": GOOD_A, "folder": str(a)}])
    missing = tmp_path / "yok.sqlite3"
    proc = edefter("status", "--journal", missing)
    assert proc.returncode == 2 and "Günlük dosyası bulunamadı" in proc.stderr and str(missing) in proc.stderr
    assert not missing.exists()
    proc = edefter("status")  # the default journal of a computer that never ran a backup
    assert proc.returncode == 0 and "henüz hiç yedekleme çalıştırılmamış" in proc.stdout
    bad = tmp_path / "bozuk.sqlite3"
    bad.write_text("bu bir günlük değil\n" * 100, encoding="utf-8")
    for args in (("status", "--journal", bad), ("refresh", "--workbook", wb, "--journal", bad),
                 ("backup", "--workbook", wb, "--journal", bad), ("refresh", "--workbook", wb, "--journal", tmp_path)):
        proc = edefter(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Günlük veritabanı açılamadı / bozuk" in proc.stderr and "beklenmeyen" not in proc.stderr, proc.stderr
    assert bad.read_text(encoding="utf-8").startswith("bu bir günlük değil")
    proc = edefter("refresh", "--workbook", wb, "--journal", tmp_path / "yeni.sqlite3")
    assert proc.returncode == 0 and "yoktu; yeni bir günlük olarak oluşturuluyor" in proc.stderr


def test_text_output_has_a_header_row_and_cuts_no_word(tmp_path, edefter):
    a = _months(tmp_path / "A", GOOD_A, "2024-01", "2024-02")
    wb = _office(tmp_path, edefter, [{"name": LONG, "vkn": GOOD_A, "folder": str(a)}])
    journal = tmp_path / "j.sqlite3"
    for command in ("backup", "query", "send"):
        proc = edefter(command, "--workbook", wb, "--journal", journal)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = [line for line in proc.stdout.splitlines() if not line.startswith("Uyarı: ")]
        assert re.match(r"Firma\s+Şube\s+Dönem\s+Durum\s+Açıklama$", lines[0]), lines
        for line in lines[1:-1]:
            shown = line.split("  ")[0].rstrip("…").strip()
            assert LONG.startswith(shown) and (shown == LONG or LONG[len(shown)] == " "), line
    proc = edefter("status", "--journal", journal)
    lines = proc.stdout.splitlines()
    assert re.match(r"VKN/TCKN\s+Şube\s+Dönem\s+Durum\s+Hedef\s+Açıklama$", lines[0]), lines
    nas = str(tmp_path / "nas")
    assert all(nas in line for line in lines[1:]), "the target is shown whole, not cut at 12 characters"


@pytest.mark.parametrize("text,width,expected", [
    ("Kısa", 8, "Kısa    "),
    ("Anadolu Gıda Sanayi", 12, "Anadolu…    "),
    ("Anadolu Gıda Sanayi", 13, "Anadolu Gıda…"),
    ("Çokuzunbirkelimeyalnız", 8, "Çokuzun…"),
])
def test_fit_cuts_at_a_word_boundary(text, width, expected):
    assert fit(text, width) == expected


def test_problems_joined_read_as_one_sentence(tmp_path, edefter):
    from edefter_helper.samples import broken

    month = write_month(tmp_path / "A" / "2024-01", GOOD_A, "2024-01", company="Deneme")
    broken.remove_gib_berat(month, "GIB-YB")
    broken.remove_gib_berat(month, "GIB-KB")
    broken.remove_dr(month)
    wb = _office(tmp_path, edefter, [{"name": "A", "vkn": GOOD_A, "folder": str(tmp_path / "A")}])
    proc = edefter("refresh", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0, proc.stderr
    (row,) = FileBook(wb).read_rows(L.PERIODS)
    assert "; " in row["message"] and ".;" not in row["message"] and row["message"].endswith("."), row["message"]
    proc = edefter("send", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert ".;" not in proc.stdout, proc.stdout


# s3.py only recognises the word in a typed address; bench.py is a benchmark's own password
_PAROLA_LEFT = {"server/bench.py", "targets/s3.py"}


def test_one_word_for_password_in_what_users_read():
    root = Path(__file__).resolve().parents[1] / "edefter_helper"
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "parola" in line.lower() and rel not in _PAROLA_LEFT:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == [], "use 'şifre':\n" + "\n".join(found)
