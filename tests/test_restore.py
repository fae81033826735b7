"""Geri Yükle / İbraz Paketi end to end: months backed up, local files deleted, fetched back from each
target kind into GİB's layout, byte-identical, verified, with the İbraz Raporu — through the CLI and
the actions the ribbon calls. Real storage server on loopback, real folders, the İzibiz fake."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path


from edefter_helper import actions, credentials, restore, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN, VKN_B = "4810525636", "7420300220"
PERIODS = ("2024-01", "2024-02")


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.xml")
            if p.is_file()} | {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.zip")}


def _setup(tmp_path, edefter, kind, address, user="ali", branch=True):
    ledgers = tmp_path / "defter"
    for p in PERIODS:
        write_month(ledgers / p, VKN, p)
    if branch:
        write_month(ledgers / "sube", VKN, "2024-01", branch="0003", branch_in_name=True)
    else:  # İzibiz addresses a month by VKN and period only: another period instead of a branch
        write_month(ledgers / "2023-12", VKN, "2023-12")
    original = _digests(ledgers)
    wb = tmp_path / "kontrol.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu Gıda", "vkn": VKN, "folder": str(ledgers), "target": "Yedek",
                               "user": user}])
    book.write_rows(L.TARGETS, [{"name": "Yedek", "kind": kind, "address": address}])
    book.save()
    return ledgers, original, wb


def _opts(journal):
    return actions.Options(journal=journal, retry_backoff=0.01, wait=20, poll=0.1)


def _check_restored(out: Path, original: dict[str, str], edefter, branch=True) -> None:
    assert _digests(out) == original  # every file back, byte for byte
    assert (out / VKN / "01.01.2024-31.12.2024" / "01").is_dir()
    if branch:
        assert (out / VKN / "0003" / "01.01.2024-31.12.2024" / "01").is_dir()  # the branch as its own folder
    proc = edefter("verify", out, "--json", "--no-cache")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert all(s["valid"] for s in json.loads(proc.stdout)["sets"])
    report = (out / "ibraz-raporu.html").read_text(encoding="utf-8")
    for name, sha in original.items():
        assert name in report and sha in report


def test_restore_from_the_storage_server_after_the_disk_is_lost(tmp_path, edefter, memory_keyring):
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data) as srv:
        ledgers, original, wb = _setup(tmp_path, edefter, "http", srv.url)
        journal = tmp_path / "j.sqlite3"
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == 3
        shutil.rmtree(ledgers)  # ransomware, a dead disk
        out = tmp_path / "geri"
        summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
        assert summary.count(restore.RESTORED) == 3 and summary.failed == 0, summary.results
        _check_restored(out, original, edefter)
        # Günlük says what was restored; the backup statuses are untouched
        rows = FileBook(wb).read_rows(L.PERIODS)
        assert all(r["status"] == S.BACKED_UP for r in rows)
        assert any(r["status"] == restore.RESTORED for r in FileBook(wb).read_rows(L.LOG))


def test_restore_on_another_pc_asks_the_target_through_the_cli(tmp_path, edefter, memory_keyring):
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data) as srv:
        ledgers, original, wb = _setup(tmp_path, edefter, "http", srv.url)
        assert actions.backup(FileBook(wb), options=_opts(tmp_path / "pc1.sqlite3")).count(S.BACKED_UP) == 3
        shutil.rmtree(ledgers)
        # the CLI has no keyring of this process: run the same action in-process with a fresh journal,
        # the way the CLI does (discovery by --from/--to)
        out = tmp_path / "geri"
        discover = [MonthKey(VKN, b, p) for b in ("0000", "0003") for p in restore.periods_between("2023-11", "2024-04")]
        summary = restore.restore(FileBook(wb), out=out, discover=discover, options=_opts(tmp_path / "pc2.sqlite3"))
        assert summary.count(restore.RESTORED) == 3 and summary.failed == 0, summary.results
        _check_restored(out, original, edefter)


def test_restore_from_a_folder_target_via_cli_and_never_overwrite(tmp_path, edefter):
    nas = tmp_path / "NAS"
    nas.mkdir()
    ledgers, original, wb = _setup(tmp_path, edefter, "klasör", str(nas))
    journal = tmp_path / "j.sqlite3"
    assert edefter("backup", "--workbook", wb, "--journal", journal).returncode == 0
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["report"].endswith("ibraz-raporu.html") and len(data["months"]) == 3
    _check_restored(out, original, edefter)

    # a non-empty destination is refused unless asked; even then other bytes are never replaced
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out)
    assert proc.returncode == 2 and "boş değil" in proc.stderr and "Traceback" not in proc.stderr
    victim = next(out.rglob("*-Y-000000.xml"))
    victim.write_bytes(b"kullanicinin dosyasi")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--firm", VKN, "--out", out,
                   "--into-existing", "--json")
    assert proc.returncode == 1
    assert victim.read_bytes() == b"kullanicinin dosyasi"
    assert "üzerine yazılmadı" in proc.stdout
    assert not list(out.rglob("*.part"))


def test_a_corrupted_or_hostile_stored_package_is_not_restored(tmp_path, edefter):
    nas = tmp_path / "NAS"
    nas.mkdir()
    ledgers, original, wb = _setup(tmp_path, edefter, "klasör", str(nas))
    journal = tmp_path / "j.sqlite3"
    assert edefter("backup", "--workbook", wb, "--journal", journal).returncode == 0
    zips = sorted(nas.rglob("*.zip"))
    # one package: a byte flipped on the NAS
    bad = next(z for z in zips if "202401-0000" in z.name)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    # another: rewritten with a path-traversal member and a manifest that lists it
    hostile = next(z for z in zips if "202402" in z.name)
    with zipfile.ZipFile(hostile) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist()}
    evil = b"<x/>"
    manifest["files"].append({"name": "../../kaçak.xml", "size": len(evil), "sha256": hashlib.sha256(evil).hexdigest()})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, json.dumps(manifest) if n == "manifest.json" else b)
        zf.writestr("../../kaçak.xml", evil)
    hostile.write_bytes(buf.getvalue())
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    by_period = {(r.key.branch, r.key.period): r for r in summary.results}
    assert by_period[("0000", "2024-01")].status == restore.NOT_RESTORED
    assert by_period[("0003", "2024-01")].status == restore.RESTORED
    assert by_period[("0000", "2024-02")].status == restore.NOT_RESTORED  # the package is not the one backed up
    assert not (tmp_path / "kaçak.xml").exists() and not list(tmp_path.rglob("kaçak.xml"))
    report = (out / "ibraz-raporu.html").read_text(encoding="utf-8")
    assert "kaçak" in report  # named, not written


def test_restore_from_the_izibiz_fake(tmp_path, edefter, memory_keyring):
    from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer

    credentials.set_password("Yedek", "ali@firma", "doğru-şifre")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz")) as fake:
        ledgers, original, wb = _setup(tmp_path, edefter, "izibiz", fake.url, user="ali@firma", branch=False)
        journal = tmp_path / "j.sqlite3"
        summary = actions.backup(FileBook(wb), options=_opts(journal))
        assert summary.count(S.BACKED_UP) == 3, summary.results
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
        assert summary.count(restore.RESTORED) == 3, summary.results
        _check_restored(out, original, edefter, branch=False)


def test_bad_restore_input_is_a_usage_error(tmp_path, edefter):
    nas = tmp_path / "NAS"
    nas.mkdir()
    _, _, wb = _setup(tmp_path, edefter, "klasör", str(nas))
    for args, words in ((("--firm", "123"), "Geçersiz VKN"), (("--all", "--from", "2024-13"), "Geçersiz dönem"),
                        (("--all", "--from", "2024-05", "--to", "2024-01"), "sonra olamaz"),
                        (("--all", "--source", "Yok"), "tanımlı değil")):
        proc = edefter("restore", "--workbook", wb, "--journal", tmp_path / "j.sqlite3", *args,
                       "--out", tmp_path / "o")
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
