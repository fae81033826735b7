"""Yerel Dosya Kontrolü: backed-up months' files on disk against what the journal recorded —
changed, truncated, deleted, renamed, re-extended by ransomware — and silence on an unchanged tree."""

from __future__ import annotations

import json
import os
import random

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.conftest import nas_workbook

VKN = "4810525635"


def _backed_up(tmp_path, edefter):
    ledgers = tmp_path / "defter"
    months = {p: write_month(ledgers / p, VKN, p) for p in ("2024-01", "2024-02", "2024-03", "2024-04")}
    wb, _ = nas_workbook(tmp_path, edefter, ledgers, VKN)
    journal = tmp_path / "j.sqlite3"
    assert edefter("backup", "--workbook", wb, "--journal", journal).returncode == 0
    return months, wb, journal


def test_an_unchanged_tree_gives_no_alarm(tmp_path, edefter):
    months, wb, journal = _backed_up(tmp_path, edefter)
    for extra in ((), ("--full",)):
        proc = edefter("check-local", "--workbook", wb, "--journal", journal, "--json", *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["findings"] == []
    assert all(r["status"] == S.BACKED_UP for r in FileBook(wb).read_rows(L.PERIODS))


def test_every_kind_of_local_damage_is_reported_by_month_and_file(tmp_path, edefter):
    months, wb, journal = _backed_up(tmp_path, edefter)
    jan, feb, mar = months["2024-01"], months["2024-02"], months["2024-03"]
    # same size, other bytes
    y = jan.find("Y")
    data = bytearray(y.read_bytes())
    i = data.index(b"<gl-cor:amount")
    i = data.index(b">", i) + 1
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    y.write_bytes(bytes(data))
    # truncated
    k = jan.find("K")
    k.write_bytes(k.read_bytes()[:1000])
    # deleted, and renamed to a name no program recognises
    feb.find("DR").unlink()
    yb = feb.find("YB")
    os.rename(yb, yb.with_name("eski-berat-kopyasi.xml"))
    # ransomware: encrypted content under a new extension, the original gone
    gib = mar.find("GIB-KB")
    gib.with_name(gib.name + ".locked").write_bytes(random.Random(1).randbytes(gib.stat().st_size))
    gib.unlink()

    proc = edefter("check-local", "--workbook", wb, "--journal", journal, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = {(f["period"], f["file"]): f for f in json.loads(proc.stdout)["findings"]}
    assert found[("2024-01", y.name)]["kind"] == "changed"
    assert found[("2024-01", k.name)]["kind"] == "truncated"
    assert found[("2024-02", feb.spec.filename("DR", 0))]["kind"] == "deleted"
    assert found[("2024-02", yb.name)]["kind"] == "renamed" and "eski-berat-kopyasi.xml" in found[("2024-02", yb.name)]["message"]
    assert found[("2024-03", gib.name)]["kind"] == "encrypted" and ".locked" in found[("2024-03", gib.name)]["message"]
    assert not any(p == "2024-04" for p, _ in found)  # the untouched month: nothing
    assert len(found) == 5

    # a refresh shows it in the rows and in Günlük, in Turkish, with the way back
    summary = actions.refresh(FileBook(wb), options=actions.Options(journal=journal))
    assert any("Yerel dosya kontrolü" in n for n in summary.notes)
    rows = {r["period"]: r for r in FileBook(wb).read_rows(L.PERIODS)}
    assert rows["2024-04"]["status"] == S.BACKED_UP
    for p in ("2024-01", "2024-02", "2024-03"):
        assert "Diskteki dosyalar yedeklenenden farklı" in rows[p]["message"] and "Geri Yükle" in rows[p]["message"]
        assert rows[p]["status"] == S.CHANGED
    log = [r for r in FileBook(wb).read_rows(L.LOG) if r["status"] == "Yerel Dosya Uyarısı"]
    assert {r["period"] for r in log} == {"2024-01", "2024-02", "2024-03"}
    assert all(r["message"].startswith("Yerel dosya yedekten farklı: ") for r in log)


def test_a_month_deleted_entirely_keeps_its_backup_status_and_says_so(tmp_path, edefter):
    import shutil

    months, wb, journal = _backed_up(tmp_path, edefter)
    shutil.rmtree(months["2024-02"].folder)
    actions.refresh(FileBook(wb), options=actions.Options(journal=journal))
    row = {r["period"]: r for r in FileBook(wb).read_rows(L.PERIODS)}["2024-02"]
    assert row["status"] == S.BACKED_UP and row["stage"] == "Klasörde bulunamadı"
    assert "silinmiş" in row["message"] and "Geri Yükle" in row["message"]
