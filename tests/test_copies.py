"""Several Hedefs per firm (issue 11 §3): each month packed once and sent to every Hedef, each copy's
state kept on its own, Dönemler's Yedekleme Durumu honest about all of them, the per-copy column, the
Kopyalar sheet and `edefter status --json` — through the real CLI on a real workbook file, against a
folder, the storage server on loopback and (when the tests' Ceph RGW can start) S3 with Object Lock."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from edefter_helper import actions, copies, server
from edefter_helper import status as S
from edefter_helper.addin import check
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.settings import TargetConfig, split_targets
from edefter_helper.workbook import layout as L
from edefter_helper.workbook import xlsm
from edefter_helper.workbook.file import FileBook

pytest_plugins = ("tests.s3_server",)

ROOT = Path(__file__).resolve().parents[1]
VKN = "4810525635"
PASSWORD = "Gizli-Şifre-42"
MONTHS = ("2024-01", "2024-02")


def _targets(**kinds) -> dict:
    return {name: TargetConfig(name, kind, "x", "") for name, kind in kinds.items()}


# ------------------------------------------------------------------ the Firmalar cells


def test_one_hedef_row_is_read_exactly_as_before():
    pairs, said = split_targets("Merkez", "ali", _targets(Merkez="http"))
    assert pairs == [("Merkez", "ali")] and said == []
    assert split_targets("", "", {}) == ([("", "")], [])


def test_user_names_one_for_all_positional_or_only_where_needed():
    targets = _targets(İzibiz="izibiz", S3="s3", NAS="klasör")
    assert split_targets("İzibiz; S3; NAS", "ali", targets)[0] == [("İzibiz", "ali"), ("S3", "ali"), ("NAS", "ali")]
    assert split_targets("İzibiz; S3; NAS", "ali; AKIA; -", targets) == (
        [("İzibiz", "ali"), ("S3", "AKIA"), ("NAS", "")], [])
    # the folder needs no user: two names for the two Hedefs that need one, in order
    assert split_targets("İzibiz; NAS; S3", "ali; AKIA", targets) == (
        [("İzibiz", "ali"), ("NAS", ""), ("S3", "AKIA")], [])
    # a comma typed for ';', a line break (Alt+Enter) too
    assert [t for t, _ in split_targets("İzibiz, NAS", "", targets)[0]] == ["İzibiz", "NAS"]
    assert [t for t, _ in split_targets("İzibiz\nNAS", "", targets)[0]] == ["İzibiz", "NAS"]


def test_count_mismatch_unknown_and_repeated_hedef_are_said_in_turkish():
    targets = _targets(İzibiz="izibiz", S3="s3", NAS="klasör")
    pairs, said = split_targets("İzibiz; S3; NAS", "a; b; c; d", targets)
    assert any("Kullanıcı Adı sayısı (4) Hedef sayısıyla (3) uyuşmuyor" in s for s in said)
    pairs, said = split_targets("İzibiz; Bulut; İzibiz", "ali", targets)
    assert [t for t, _ in pairs] == ["İzibiz", "Bulut"]
    assert any("'Bulut' Hedefler sayfasında yok" in s for s in said)
    assert any("birden çok kez" in s for s in said)


def test_read_settings_notes_name_the_row(tmp_path):
    from edefter_helper.settings import read_settings

    wb = check.new_workbook(tmp_path / "k.xlsm")
    book = FileBook(wb)
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(tmp_path)}])
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(tmp_path), "target": "NAS; Yok",
                               "user": "a; b; c"}])
    firms, _, notes = read_settings(book)
    assert [(c.target, c.user) for c in firms[0].per_target()] == [("NAS", "a"), ("Yok", "b")]
    assert firms[0].target == "NAS" and all(c.several for c in firms[0].per_target())
    assert any(n.startswith("Firmalar satır 2 (Anadolu): Hedef 'Yok'") for n in notes)
    assert any("uyuşmuyor" in n for n in notes)


def test_compact_column():
    def c(status, where="TR", worm=False):
        return {"status": status, "_location": where, "_worm": worm}

    assert copies.summary_text([c(S.BACKED_UP), c(S.BACKED_UP, worm=True), c(S.BACKED_UP)]) == "3/3 kopya · 1 WORM · TR"
    assert copies.summary_text([c(S.BACKED_UP), c(S.FAILED, "yurtdisi")]) == "1/2 kopya · 1 yurt dışı ⚠"
    assert copies.worst([S.BACKED_UP, S.ACCEPTED]) == S.ACCEPTED
    assert copies.worst([S.BACKED_UP, S.NOT_SENT, S.FAILED]) == S.FAILED


# ------------------------------------------------------------------ end to end


@pytest.fixture
def keyring_file(tmp_path, monkeypatch):
    path = tmp_path / "anahtarlik.json"
    monkeypatch.setenv("EDEFTER_TEST_KEYRING", str(path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.fakes.file_keyring.FileKeyring")
    monkeypatch.setenv("EDEFTER_RETRY_BACKOFF", "0.01")
    return path


@pytest.fixture
def storage(tmp_path):
    handle = server.start_in_thread(tmp_path / "sunucu")
    server.add_user(tmp_path / "sunucu", "muhasebe", PASSWORD, [VKN])
    yield handle
    handle.stop()


@pytest.fixture
def third(request, tmp_path):
    """The third Hedef: S3 with Object Lock on the tests' real Ceph RGW, or a second folder without it."""
    try:
        ceph = request.getfixturevalue("ceph_s3")
    except pytest.skip.Exception:
        return {"name": "Yedek Disk", "kind": "klasör", "address": str(tmp_path / "disk")}, None
    bucket = ceph.bucket()
    return ({"name": "Arşiv S3", "kind": "s3", "address": ceph.address(bucket, "yedek", location="TR")},
            (ceph.access_key, ceph.secret_key))


def _rows(path: Path, sheet: L.Sheet) -> list[dict]:
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb[sheet.name]
    values = list(ws.iter_rows(values_only=True))
    header = list(values[0])
    out = [{c.key: r[header.index(c.header)] for c in sheet.columns} for r in values[1:]
           if any(v not in (None, "") for v in r)]
    wb.close()
    return out


def _three(tmp_path, edefter, storage, third) -> tuple[Path, Path, dict]:
    ledgers = tmp_path / "Defterler"
    for period in MONTHS:
        write_month(ledgers / "Anadolu", VKN, period)
    third_row, s3_keys = third
    for folder in ("nas", "disk"):
        (tmp_path / folder).mkdir()
    wb = check.new_workbook(tmp_path / "kontrol.xlsm")
    book = FileBook(wb)
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(tmp_path / "nas")},
                                {"name": "Merkez", "kind": "http", "address": storage.url}, third_row])
    # the folder needs no user: one name per Hedef that needs one, in order
    users = "muhasebe; " + s3_keys[0] if s3_keys else "muhasebe"
    book.write_rows(L.FIRMS, [{"name": "Anadolu Gıda", "vkn": VKN, "folder": str(ledgers),
                               "target": f"NAS; Merkez; {third_row['name']}", "user": users, "auto": "Evet"}])
    book.save()
    journal = tmp_path / "gunluk.sqlite3"
    proc = edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                   input=PASSWORD + "\n")
    assert proc.returncode == 0, proc.stderr
    if s3_keys:
        proc = edefter("credentials", "set", "--target", third_row["name"], "--user", s3_keys[0],
                       "--password-stdin", input=s3_keys[1] + "\n")
        assert proc.returncode == 0, proc.stderr
        proc = edefter("target", "check", third_row["name"], "--workbook", wb, "--journal", journal)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return wb, journal, third_row


def test_three_hedefs_three_confirmed_copies_through_the_cli(tmp_path, edefter, keyring_file, storage, third):
    wb, journal, third_row = _three(tmp_path, edefter, storage, third)
    s3 = third_row["kind"] == "s3"

    proc = edefter("backup", "--workbook", wb, "--journal", journal, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["results"]) == 6 and all(r["status"] == S.BACKED_UP for r in out["results"])
    assert out["message"].startswith("2 dönem yedeklendi")

    kopyalar = _rows(wb, L.COPIES)
    assert len(kopyalar) == 6
    assert {(r["period"], r["target"]) for r in kopyalar} == {(p, t) for p in MONTHS
                                                             for t in ("NAS", "Merkez", third_row["name"])}
    for period in MONTHS:
        mine = [r for r in kopyalar if r["period"] == period]
        assert all(r["status"] == S.BACKED_UP and r["name"] == "Anadolu Gıda" and r["vkn"] == VKN for r in mine)
        assert len({r["sha256"] for r in mine}) == 1 and len(mine[0]["sha256"]) == 64  # one package, everywhere
        assert all(r["reference"] for r in mine) and all(r["location"] == "Türkiye" for r in mine)
        by = {r["target"]: r for r in mine}
        assert by["NAS"]["worm"] == "Hayır" and by["NAS"]["retain"] is None
        if s3:
            assert by["Arşiv S3"]["retain"] == datetime(2034, 12, 31, 23, 59, 59)
            assert by["Arşiv S3"]["worm"].startswith("Evet (denetim ")

    donemler = {r["period"]: r for r in _rows(wb, L.PERIODS)}
    for period in MONTHS:
        row = donemler[period]
        assert row["status"] == S.BACKED_UP
        assert row["copies"] == ("3/3 kopya · 1 WORM · TR" if s3 else "3/3 kopya · TR")
        assert row["message"].startswith(S.backed_up_message(period))
        assert f"Kopyalar: NAS, Merkez, {third_row['name']}." in row["message"]

    # the same per-copy data from the command line
    proc = edefter("status", "--journal", journal, "--workbook", wb, "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert len(status["copies"]) == 6 and all(c["state"] == "backed-up" for c in status["copies"])
    assert {p["copies"] for p in status["periods"]} == {donemler["2024-01"]["copies"]}
    assert {c["sha256"] for c in status["copies"]} == {r["sha256"] for r in kopyalar}

    # every copy really is where its row says
    nas = list((tmp_path / "nas").rglob("*.zip"))
    assert len(nas) == 2
    # a second run sends nothing again
    proc = edefter("backup", "--workbook", wb, "--journal", journal, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["results"] == []


def test_one_hedef_down_gives_two_of_three_and_says_so(tmp_path, edefter, keyring_file, storage, third):
    wb, journal, third_row = _three(tmp_path, edefter, storage, third)
    storage.stop()  # the office's server is off

    proc = edefter("backup", "--workbook", wb, "--journal", journal, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    donemler = {r["period"]: r for r in _rows(wb, L.PERIODS)}
    for period in MONTHS:
        row = donemler[period]
        assert row["status"] != S.BACKED_UP and row["status"] in (S.FAILED, S.NOT_SENT)
        assert row["copies"].startswith("2/3 kopya")
        assert "Merkez:" in row["message"] and f"Yedeklenen kopyalar (2/3): NAS, {third_row['name']}." in row["message"]
    kopyalar = [r for r in _rows(wb, L.COPIES) if r["target"] == "Merkez"]
    assert len(kopyalar) == 2 and all(r["status"] != S.BACKED_UP for r in kopyalar)
    others = [r for r in _rows(wb, L.COPIES) if r["target"] != "Merkez"]
    assert len(others) == 4 and all(r["status"] == S.BACKED_UP for r in others)


def test_each_month_is_packed_once_for_all_its_hedefs(tmp_path, storage, memory_keyring, monkeypatch):
    from edefter_helper import credentials

    ledgers = tmp_path / "Defterler"
    for period in MONTHS:
        write_month(ledgers / "Anadolu", VKN, period)
    credentials.set_password("Merkez", "muhasebe", PASSWORD)
    wb = check.new_workbook(tmp_path / "kontrol.xlsm")
    book = FileBook(wb)
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(tmp_path / "nas")},
                                {"name": "Disk", "kind": "klasör", "address": str(tmp_path / "disk")},
                                {"name": "Merkez", "kind": "http", "address": storage.url}])
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "NAS; Merkez; Disk",
                               "user": "-; muhasebe; -", "auto": "Evet"}])
    book.save()
    (tmp_path / "nas").mkdir()
    (tmp_path / "disk").mkdir()
    packed = []
    real = actions._pack

    def counting(run, ms):
        packed.append(ms.key)
        return real(run, ms)

    monkeypatch.setattr(actions, "_pack", counting)
    opts = actions.Options(journal=tmp_path / "j.sqlite3", retry_backoff=0.01, wait=10, poll=0.1)
    summary = actions.backup(FileBook(wb), options=opts)
    assert summary.count(S.BACKED_UP) == 6, summary.results
    assert sorted(packed) == [MonthKey(VKN, "0000", p) for p in MONTHS]  # once per month, not per Hedef
    # Durum Sorgula asks each Hedef
    summary = actions.query(FileBook(wb), options=opts)
    assert summary.count(S.BACKED_UP) == 6 and {r.target for r in summary.results} == {"NAS", "Merkez", "Disk"}

    # restore from the second Hedef (its own user), and a drill over every copy
    from edefter_helper import drill, restore

    out = restore.restore(FileBook(wb), [MonthKey(VKN, "0000", "2024-01")], out=tmp_path / "geri", source="Merkez",
                          options=opts)
    assert out.count(restore.RESTORED) == 1, out.results
    summary = drill.drill(FileBook(wb), sample_pct=100, options=opts)
    assert summary.count(drill.DRILL_OK) == 6, [(r.target, r.status, r.message) for r in summary.results]
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        assert len(journal.last_drills()) == 6
    finally:
        journal.close()
    kopyalar = _rows(wb, L.COPIES)
    assert all(r["drill"] and r["drill"].endswith("Tamam") for r in kopyalar)


def test_upgrade_adds_the_copy_sheet_and_column_and_keeps_every_row(tmp_path):
    """A workbook from before this change: no Kopyalar sheet, no Kopyalar column on Dönemler."""
    old = check.new_workbook(tmp_path / "eski.xlsm")
    wb = xlsm.load(old)
    del wb[L.COPIES.name]
    wb[L.PERIODS.name].delete_cols(L.PERIODS.index("copies") + 1)
    xlsm.save(wb, old)
    book = FileBook(old)
    old_periods = [c for c in L.PERIODS.columns if c.key != "copies"]
    row = {"name": "Anadolu", "vkn": VKN, "branch": "0000", "period": "2024-01", "stage": "Onaylı Berat İndirildi",
           "validation": "Geçerli", "status": S.BACKED_UP, "message": "Ocak 2024 ayına ait …", "sha256": "ab" * 32,
           "reference": "R-1", "drill": ""}
    book.write_rows(L.Sheet(L.PERIODS.name, tuple(old_periods)), [row])
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "target": "NAS; Merkez", "user": "-; ali"}])
    book.save()
    assert L.COPIES.name not in openpyxl.load_workbook(old).sheetnames
    # Kurulum Kontrolü says so and names the command
    said = [f for f in check.check_workbook(old, probe_interpreter=False) if "sayfası yok" in f]
    assert len(said) == 1 and "'Kopyalar'" in said[0] and f"edefter workbook upgrade {old.name}" in said[0]

    upgraded, _ = check.upgrade_workbook(old)
    assert not [f for f in check.check_workbook(upgraded, probe_interpreter=False) if "sayfası yok" in f]
    after = FileBook(upgraded)
    assert L.COPIES.name in after.wb.sheetnames
    assert [c.value for c in after.wb[L.COPIES.name][1]] == L.COPIES.headers
    assert [c.value for c in after.wb[L.PERIODS.name][1]] == L.PERIODS.headers
    periods = after.read_rows(L.PERIODS)
    assert len(periods) == 1 and {k: v for k, v in periods[0].items() if k != "copies"} == {
        **{c.key: None for c in old_periods}, **{k: v for k, v in row.items() if v != ""}}
    assert after.read_rows(L.FIRMS)[0]["target"] == "NAS; Merkez"


def test_live_workbook_without_the_copy_sheet_gets_it_at_the_first_write():
    """The xlwings face on a workbook not yet upgraded: Kopyalar reads as empty and is added once."""
    from edefter_helper import excel
    from tests.test_excel_adapter import FakeBook, FakeSheet

    class Sheets(dict):
        def add(self, name, after=None):
            self[name] = FakeSheet(name)
            return self[name]

        def __getitem__(self, key):
            if isinstance(key, int):
                return list(self.values())[key]
            return dict.__getitem__(self, key)

    fake = FakeBook()
    fake.sheets = Sheets({k: v for k, v in fake.sheets.items() if k != L.COPIES.name})
    book = excel.XlwingsBook(fake)
    assert book.read_rows(L.COPIES) == []
    book.write_rows(L.COPIES, [{"name": "A", "vkn": VKN, "period": "2024-01", "target": "NAS",
                                "status": S.BACKED_UP}])
    ws = fake.sheets[L.COPIES.name]
    assert [ws.grid.get((1, c)) for c in range(1, len(L.COPIES.columns) + 1)] == L.COPIES.headers
    assert book.read_rows(L.COPIES)[0]["target"] == "NAS"


def test_restore_without_source_takes_the_next_copy_when_the_first_lost_the_month(tmp_path, memory_keyring):
    """After a loss the first Hedef may be the one that is gone: Geri Yükle finds the month on the next copy,
    from one copy only, and says which."""
    import hashlib
    import shutil

    from edefter_helper import restore

    ledgers = tmp_path / "Defterler"
    month = write_month(ledgers / "Anadolu", VKN, "2024-01")
    original = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in month}
    wb = check.new_workbook(tmp_path / "kontrol.xlsm")
    book = FileBook(wb)
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(tmp_path / "nas")},
                                {"name": "Disk", "kind": "klasör", "address": str(tmp_path / "disk")}])
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "NAS; Disk"}])
    book.save()
    (tmp_path / "nas").mkdir()
    (tmp_path / "disk").mkdir()
    opts = actions.Options(journal=tmp_path / "j.sqlite3", retry_backoff=0.01, wait=10, poll=0.1)
    assert actions.backup(FileBook(wb), options=opts).count(S.BACKED_UP) == 2
    shutil.rmtree(tmp_path / "nas")  # the NAS died with the office's disks
    (tmp_path / "nas").mkdir()
    shutil.rmtree(ledgers)

    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), [MonthKey(VKN, "0000", "2024-01")], out=out, options=opts)
    assert summary.count(restore.RESTORED) == 1, summary.results
    (restored,) = summary.extra["months"]
    assert str(tmp_path / "disk") in restored["source"] and str(tmp_path / "nas") not in restored["source"]
    back = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.suffix in (".xml", ".zip")
            and p.parent.name == "01"}
    assert back == original
