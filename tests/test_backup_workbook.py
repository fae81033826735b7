"""Backups driven from a control workbook file, end to end: the template copied by
`edefter workbook new`, firms filled in, Tara → Toplu Yedekle → Durum Sorgula against the real
storage server on loopback (and a folder target through the real CLI). Everything is read back
from the saved workbook, the journal and what the server holds."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from edefter_helper import actions, credentials, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import broken, write_month
from edefter_helper.targets.http import HttpTarget
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN_A, VKN_B = "4810525635", "7420300220"


@pytest.fixture
def storage(tmp_path):
    handle = server.start_in_thread(tmp_path / "sunucu")
    yield handle
    handle.stop()


def _new_workbook(edefter, path: Path) -> Path:
    proc = edefter("workbook", "new", path)
    assert proc.returncode == 0, proc.stderr
    return path


def _sheet_rows(path: Path, sheet: L.Sheet) -> list[dict]:
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb[sheet.name]
    rows = list(ws.iter_rows(values_only=True))
    header = list(rows[0])
    out = []
    for values in rows[1:]:
        if not any(v not in (None, "") for v in values):
            continue
        out.append({c.key: values[header.index(c.header)] for c in sheet.columns})
    wb.close()
    return out


def _fill(path: Path, firms: list[dict], targets: list[dict]) -> None:
    book = FileBook(path)
    book.write_rows(L.FIRMS, firms)
    book.write_rows(L.TARGETS, targets)
    book.save()


def _options(tmp_path, **kw) -> actions.Options:
    return actions.Options(journal=tmp_path / "gunluk.sqlite3", retry_backoff=0.01, wait=30, poll=0.1, **kw)


def test_workbook_end_to_end_against_storage_server(tmp_path, edefter, storage, memory_keyring):
    ledgers = tmp_path / "Müşteri Defterleri"
    write_month(ledgers / "Anadolu Gıda" / "2024", VKN_A, "2024-01")
    write_month(ledgers / "Anadolu Gıda" / "2024", VKN_A, "2024-02", parts=2)
    write_month(ledgers / "Ege Tekstil Şube", VKN_B, "2024-01", branch="0001")
    pending = write_month(ledgers / "Anadolu Gıda" / "2024-03", VKN_A, "2024-03")
    broken.remove_gib_berat(pending, "GIB-YB")
    for vkn in (VKN_A, VKN_B):
        server.add_user(tmp_path / "sunucu", f"u{vkn}", "s3cret-ğ", [vkn])
        credentials.set_password("Merkez", f"u{vkn}", "s3cret-ğ")
    wb = _new_workbook(edefter, tmp_path / "kontrol.xlsm")
    _fill(wb, [
        {"name": "Anadolu Gıda A.Ş.", "vkn": VKN_A, "folder": str(ledgers), "target": "Merkez",
         "user": f"u{VKN_A}", "auto": "Evet"},
        {"name": "Ege Tekstil İzmir", "vkn": VKN_B, "branch": "0001", "folder": str(ledgers), "target": "Merkez",
         "user": f"u{VKN_B}", "auto": "Evet"},
    ], [{"name": "Merkez", "kind": "http", "address": storage.url}])
    opts = _options(tmp_path)

    summary = actions.refresh(FileBook(wb), options=opts)
    assert summary.found == 4
    rows = {(r["vkn"], r["branch"], r["period"]): r for r in _sheet_rows(wb, L.PERIODS)}
    assert set(rows) == {(VKN_A, "0000", "2024-01"), (VKN_A, "0000", "2024-02"), (VKN_A, "0000", "2024-03"),
                         (VKN_B, "0001", "2024-01")}
    assert all(r["status"] == S.NOT_SENT for r in rows.values())
    assert rows[(VKN_A, "0000", "2024-01")]["stage"] == "Onaylı Berat İndirildi"
    assert rows[(VKN_A, "0000", "2024-03")]["validation"] == L.INCOMPLETE
    assert "GIB-YB" in rows[(VKN_A, "0000", "2024-03")]["message"]

    summary = actions.backup(FileBook(wb), options=opts)
    assert summary.failed == 0 and summary.count(S.BACKED_UP) == 3, summary.results
    summary = actions.query(FileBook(wb), options=opts)
    assert summary.count(S.BACKED_UP) == 3

    rows = {(r["vkn"], r["branch"], r["period"]): r for r in _sheet_rows(wb, L.PERIODS)}
    journal = Journal(tmp_path / "gunluk.sqlite3")
    for key in ((VKN_A, "0000", "2024-01"), (VKN_A, "0000", "2024-02"), (VKN_B, "0001", "2024-01")):
        row = rows[key]
        assert row["status"] == S.BACKED_UP
        month = "Ocak" if key[2] == "2024-01" else "Şubat"
        assert row["message"] == f"{month} 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi."
        assert row["reference"] and len(row["sha256"]) == 64
        st = journal.status(MonthKey(*key))
        assert st.package_sha256 == row["sha256"]
    # the month still waiting for GİB was not sent
    assert rows[(VKN_A, "0000", "2024-03")]["status"] == S.NOT_SENT

    # what the server holds: exactly the packages the journal says were sent
    target = HttpTarget(storage.url, f"u{VKN_A}", "s3cret-ğ")
    for period in ("2024-01", "2024-02"):
        key = MonthKey(VKN_A, "0000", period)
        held = target.query(key)
        assert held.state == "stored" and held.sha256 == rows[(VKN_A, "0000", period)]["sha256"]
        back = target.fetch(key, tmp_path / f"geri-{period}.zip")
        assert hashlib.sha256(back.read_bytes()).hexdigest() == held.sha256
        with zipfile.ZipFile(back) as zf:
            for name in zf.namelist():
                if name != "manifest.json":
                    original = next(ledgers.rglob(name))
                    assert zf.read(name) == original.read_bytes()
    assert target.query(MonthKey(VKN_A, "0000", "2024-03")).state == "missing"
    target.close()

    log = _sheet_rows(wb, L.LOG)
    actions_seen = {r["action"] for r in log}
    assert {"Tara", "Toplu Yedekle", "Durum Sorgula"} <= actions_seen
    assert any(r["status"] == "Özet" and "3 dönem yedeklendi" in r["message"] for r in log)
    # ribbon and macros survived every save
    with zipfile.ZipFile(wb) as zf:
        names = set(zf.namelist())
        rels = zf.read("_rels/.rels").decode()
    assert {"customUI/customUI14.xml", "customUI/customUI.xml", "xl/vbaProject.bin"} <= names
    assert "2009" in rels or "2007/relationships/ui/extensibility" in rels


def test_invalid_month_is_never_sent_and_says_why(tmp_path, edefter, storage, memory_keyring):
    ledgers = tmp_path / "defter"
    bad = write_month(ledgers / "a", VKN_A, "2024-05")
    broken.edit_after_signing(bad, "Y")
    write_month(ledgers / "b", VKN_A, "2024-06")
    server.add_user(tmp_path / "sunucu", "ali", "pw-1", [VKN_A])
    credentials.set_password("S", "ali", "pw-1")
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    _fill(wb, [{"name": "Anadolu", "vkn": VKN_A, "folder": str(ledgers), "target": "S", "user": "ali"}],
          [{"name": "S", "kind": "http", "address": storage.url}])
    summary = actions.backup(FileBook(wb), options=_options(tmp_path))
    assert summary.failed == 1 and summary.count(S.BACKED_UP) == 1
    rows = {r["period"]: r for r in _sheet_rows(wb, L.PERIODS)}
    assert rows["2024-05"]["status"] == S.FAILED
    assert "değiştirilmiş" in rows["2024-05"]["message"]
    assert rows["2024-05"]["validation"] == L.INVALID
    with HttpTarget(storage.url, "ali", "pw-1") as target:
        assert target.query(MonthKey(VKN_A, "0000", "2024-05")).state == "missing"


def test_missing_password_is_said_once_not_stamped_on_every_month(tmp_path, edefter, storage, memory_keyring):
    for period in ("2024-01", "2024-02", "2024-03"):
        write_month(tmp_path / "defter" / period, VKN_A, period)
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    _fill(wb, [{"name": "Anadolu", "vkn": VKN_A, "folder": str(tmp_path / "defter"), "target": "S",
                "user": "veli"}], [{"name": "S", "kind": "http", "address": storage.url}])
    summary = actions.backup(FileBook(wb), options=_options(tmp_path))
    assert summary.blocked == 3 and summary.failed == 0
    assert len(summary.notes) == 1 and "veli" in summary.notes[0] and "'S'" in summary.notes[0]
    assert "3 dönem hedef ayarları yüzünden denenmedi" in summary.message
    rows = _sheet_rows(wb, L.PERIODS)
    assert [r["status"] for r in rows] == [S.NOT_SENT] * 3
    assert not any("veli" in (r["message"] or "") for r in rows)
    log = [r for r in _sheet_rows(wb, L.LOG) if "veli" in (r["message"] or "")]
    assert len(log) == 1  # once in Günlük
    proc = edefter("backup", "--workbook", wb, "--journal", tmp_path / "gunluk.sqlite3")
    # the CLI has no keyring here (the test's in-memory one lives in this process): said once too
    assert proc.returncode == 1 and proc.stdout.count("'veli' kullanıcısının") == 1, proc.stdout


def test_cli_backup_to_folder_target(tmp_path, edefter):
    ledgers = tmp_path / "defter"
    write_month(ledgers / "x", VKN_A, "2023-11")
    write_month(ledgers / "y", VKN_A, "2023-12", gib_zip=True)
    write_month(ledgers / "z", VKN_B, "2023-12", branch="0002", branch_in_name=True)
    nas = tmp_path / "NAS yedek"
    nas.mkdir()
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    _fill(wb, [{"name": "Anadolu", "vkn": VKN_A, "folder": str(ledgers), "target": "NAS"},
               {"name": "Ege", "vkn": VKN_B, "folder": str(ledgers), "target": "NAS", "auto": "Hayır"}],
          [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    journal = tmp_path / "j.sqlite3"
    before = {p: p.read_bytes() for p in ledgers.rglob("*") if p.is_file()}

    proc = edefter("refresh", "--workbook", wb, "--journal", journal)
    assert proc.returncode == 0, proc.stderr
    assert "3 dönem bulundu" in proc.stdout

    proc = edefter("backup", "--workbook", wb, "--journal", journal, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {(r["vkn"], r["period"]) for r in data["results"]} == {(VKN_A, "2023-11"), (VKN_A, "2023-12")}
    assert all(r["status"] == S.BACKED_UP for r in data["results"])  # Ege is Otomatik Yedekleme = Hayır

    proc = edefter("backup", "--workbook", wb, "--journal", journal, "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [(r["vkn"], r["status"]) for r in json.loads(proc.stdout)["results"]] == [(VKN_B, S.BACKED_UP)]

    status = json.loads(edefter("status", "--journal", journal, "--json").stdout)
    held = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in nas.rglob("*.zip")}
    assert len(status["months"]) == 3
    for m in status["months"]:
        assert m["status"] == S.BACKED_UP
        name = f"{m['vkn']}-{m['period'].replace('-', '')}-{m['branch']}.zip"
        assert held[name] == m["package_sha256"]

    proc = edefter("query", "--workbook", wb, "--journal", journal)
    assert proc.returncode == 0 and "3 dönem yedeklendi" in proc.stdout
    # the ledger folders are untouched: same files, same bytes, nothing added
    assert {p: p.read_bytes() for p in ledgers.rglob("*") if p.is_file()} == before


def test_months_whose_files_vanish_stay_visible(tmp_path, edefter):
    ledgers = tmp_path / "defter"
    write_month(ledgers / "ocak", VKN_A, "2024-01")
    nas = tmp_path / "nas"
    nas.mkdir()
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    _fill(wb, [{"name": "Anadolu", "vkn": VKN_A, "folder": str(ledgers), "target": "NAS"}],
          [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    journal = tmp_path / "j.sqlite3"
    assert edefter("backup", "--workbook", wb, "--journal", journal).returncode == 0
    shutil.rmtree(ledgers / "ocak")  # ransomware, a careless delete...
    assert edefter("refresh", "--workbook", wb, "--journal", journal).returncode == 0
    (row,) = _sheet_rows(wb, L.PERIODS)
    assert row["status"] == S.BACKED_UP and row["stage"] == "Klasörde bulunamadı"


def test_bad_settings_and_bad_input(tmp_path, edefter):
    proc = edefter("backup", "--workbook", tmp_path / "yok.xlsm")
    assert proc.returncode == 2 and "bulunamadı" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "bozuk.xlsm").write_bytes(b"not a zip")
    proc = edefter("refresh", "--workbook", tmp_path / "bozuk.xlsm")
    assert proc.returncode == 2 and "açılamadı" in proc.stderr and "Traceback" not in proc.stderr

    write_month(tmp_path / "defter", VKN_A, "2024-01")
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    proc = edefter("workbook", "new", wb)
    assert proc.returncode == 2 and "zaten var" in proc.stderr
    _fill(wb, [{"name": "Yanlış", "vkn": "12345", "folder": str(tmp_path / "defter"), "target": "X"},
               {"name": "Anadolu", "vkn": VKN_A, "folder": str(tmp_path / "defter"), "target": "Yok"}],
          [{"name": "Z", "kind": "ftp", "address": "x"}])
    proc = edefter("backup", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "geçersiz" in proc.stdout  # the bad rows are reported
    assert "'Yok' hedefi Hedefler sayfasında tanımlı değil" in proc.stdout  # said once, as a warning
    (row,) = _sheet_rows(wb, L.PERIODS)
    assert row["status"] == S.NOT_SENT and "Yok" not in (row["message"] or "")
    log = _sheet_rows(wb, L.LOG)
    assert any(r["status"] == "Uyarı" and "12345" in r["message"] for r in log)
    assert any(r["status"] == "Uyarı" and "ftp" in r["message"] for r in log)


def test_workbook_backup_to_izibiz_through_the_documented_soap_api(tmp_path, edefter, memory_keyring, shared_dir):
    """Tür = izibiz on the Hedefler sheet: the same actions, against the local server held to İzibiz's
    real WSDL/XSD (every request schema-validated; no live account here). The Adres cell carries the
    authentication and the archive endpoint, separated by a space."""
    from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

    contract = require_contract(shared_dir / "integrators" / "izibiz")
    write_month(tmp_path / "defter" / "a", VKN_A, "2024-01")
    write_month(tmp_path / "defter" / "b", VKN_A, "2024-02")
    credentials.set_password("İzibiz", "ali@firma", "doğru-şifre")
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz", contract_dir=contract)) as fake:
        _fill(wb, [{"name": "Anadolu", "vkn": VKN_A, "folder": str(tmp_path / "defter"), "target": "İzibiz",
                    "user": "ali@firma"}],
              [{"name": "İzibiz", "kind": "izibiz", "address": f"{fake.auth_url} {fake.archive_url}"}])
        summary = actions.backup(FileBook(wb), options=_options(tmp_path))
        assert summary.count(S.BACKED_UP) == 2 and summary.failed == 0, summary.results
        rows = {r["period"]: r for r in _sheet_rows(wb, L.PERIODS)}
        stored = fake.app.store
        assert len(stored) == 2
        for (vkn, donem), item in stored.items():
            period = f"{donem[:4]}-{donem[4:]}"
            assert item.sha256 == hashlib.sha256(Path(item.path).read_bytes()).hexdigest()
            assert item.sha256 == rows[period]["sha256"] and rows[period]["status"] == S.BACKED_UP

        # the 8-hour session ends during Durum Sorgula (İzibiz answers 10004 in ERROR_SHORT_DES): the
        # client logs in again and still finds both months stored
        logins = fake.app.logins
        fake.app.expire_in = 2
        summary = actions.query(FileBook(wb), options=_options(tmp_path))
        assert summary.count(S.BACKED_UP) == 2 and summary.failed == 0, summary.results
        assert fake.app.logins >= logins + 2 and fake.app.expire_in is None
        assert {r["status"] for r in _sheet_rows(wb, L.PERIODS)} == {S.BACKED_UP}

        # every request went to its own service, schema-valid, with SOAPAction ""
        assert fake.app.invalid_requests == [] and fake.app.response_errors == []
        paths = {op: info["path"] for op, info in fake.app.calls}
        assert paths["LoginRequest"] == "/AuthenticationWS"
        assert paths["ArchiveELedgerRequest"] == paths["GetGenericArchiveByPeriodRequest"] == "/EIArchiveWS/EFaturaArchive"
        assert {info["soapaction"] for _, info in fake.app.calls} == {'""'}