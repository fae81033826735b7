"""Geri Yükle / İbraz Paketi end to end: months backed up, local files deleted, fetched back from each
target kind into GİB's layout, byte-identical, verified, with the İbraz Raporu — through the CLI and
the actions the ribbon calls. Real storage server on loopback, real folders, the İzibiz fake."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path


from edefter_helper import actions, credentials, restore, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN, VKN_B = "4810525635", "7420300220"
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


def _ali_on_a_server(tmp_path) -> Path:
    """A storage server's data folder where user ali holds VKN, and ali's password in the keyring."""
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    return data


def test_restore_from_the_storage_server_after_the_disk_is_lost(tmp_path, edefter, memory_keyring):
    data = _ali_on_a_server(tmp_path)
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


def test_a_restore_the_target_cannot_answer_is_an_attempt_in_the_journal(tmp_path, edefter, memory_keyring):
    """The month says why in Günlük, its backup status stays, and the journal records the attempt."""
    data = _ali_on_a_server(tmp_path)
    journal = tmp_path / "j.sqlite3"
    with server.start_in_thread(data) as srv:
        ledgers, _, wb = _setup(tmp_path, edefter, "http", srv.url)
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == 3
    shutil.rmtree(ledgers)  # and the server is gone too
    summary = restore.restore(FileBook(wb), out=tmp_path / "geri", options=_opts(journal))
    assert summary.count(restore.NOT_RESTORED) == 3, summary.results
    assert all("Hedeften alınamadı" in r.message or "denenmedi" in r.message for r in summary.results)
    j = Journal(journal)
    try:
        tried = [a for a in j.attempts() if a["action"] == "restore"]
        assert tried and all(a["outcome"] is not None and a["message"] for a in tried)
        assert any("Hedeften alınamadı" in a["message"] for a in tried)
        assert all(s.status == S.BACKED_UP for s in j.statuses())
        assert not j.open_attempts()
    finally:
        j.close()


def test_a_fault_nobody_foresaw_before_the_download_is_an_attempt_too(tmp_path, edefter, memory_keyring,
                                                                      monkeypatch):
    """A target that fails in an unexpected way while asked (a bug, a hostile answer): the month says
    'Paket işlenemedi' in Turkish, the traceback goes to hata.log, and the journal records the attempt
    as finished, as for a target that cannot be reached."""
    from edefter_helper.targets.http import HttpTarget

    data = _ali_on_a_server(tmp_path)
    journal = tmp_path / "j.sqlite3"
    with server.start_in_thread(data) as srv:
        ledgers, _, wb = _setup(tmp_path, edefter, "http", srv.url)
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == 3
        shutil.rmtree(ledgers)

        def broken(self, key, dest):
            raise ValueError("beklenmeyen yanıt")

        monkeypatch.setattr(HttpTarget, "fetch_stored", broken)
        summary = restore.restore(FileBook(wb), out=tmp_path / "geri", options=_opts(journal))
    assert summary.count(restore.NOT_RESTORED) == 3, summary.results
    assert all("Paket işlenemedi (ValueError" in r.message for r in summary.results), summary.results
    j = Journal(journal)
    try:
        tried = [a for a in j.attempts() if a["action"] == "restore"]
        assert len(tried) == 3 and all("Paket işlenemedi" in (a["message"] or "") for a in tried)
        assert not j.open_attempts() and all(s.status == S.BACKED_UP for s in j.statuses())
    finally:
        j.close()


def test_restore_on_another_pc_asks_the_target_through_the_cli(tmp_path, edefter, memory_keyring):
    data = _ali_on_a_server(tmp_path)
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

    READ_BACK = "GetGenericArchiveByPeriodRequest"

    credentials.set_password("Yedek", "ali@firma", "doğru-şifre")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz")) as fake:
        ledgers, original, wb = _setup(tmp_path, edefter, "izibiz", fake.url, user="ali@firma", branch=False)
        journal = tmp_path / "j.sqlite3"
        summary = actions.backup(FileBook(wb), options=_opts(journal))
        assert summary.count(S.BACKED_UP) == 3, summary.results
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        reads = fake.app.ops().count(READ_BACK)
        summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
        assert summary.count(restore.RESTORED) == 3, summary.results
        _check_restored(out, original, edefter, branch=False)
        # each package came over once: asking İzibiz what it holds reads the package back, and that
        # download is the one restored (it was read twice, once to ask and once to fetch)
        assert fake.app.ops().count(READ_BACK) - reads == 3


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


# -- verification while unpacking (issue 9's restore time): worker processes read each file as soon as
# it is written; the verdict still covers every file as it is at the end ---------------------------

def _folder_backup(tmp_path, edefter):
    nas = tmp_path / "NAS"
    nas.mkdir()
    ledgers, original, wb = _setup(tmp_path, edefter, "klasör", str(nas))
    journal = tmp_path / "j.sqlite3"
    assert edefter("backup", "--workbook", wb, "--journal", journal).returncode == 0
    shutil.rmtree(ledgers)
    return nas, original, wb, journal


def _pipelined(monkeypatch, workers=1, worker_first=False):
    """Every month goes through the workers (their months are small); the verifiers used are kept.
    `worker_first`: this process takes over queued files only once a worker has read one, so a worker
    process slow to start (a loaded machine) cannot leave every file to this process by chance."""
    monkeypatch.setattr(restore, "PIPELINE_BYTES", 1)
    monkeypatch.setattr(restore, "VERIFY_WORKERS", workers)
    made = []

    class Kept(restore._Verifier):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

        def _drain(self) -> None:
            import time

            # until a worker has answered, or no worker is left to answer (then this process reads and
            # the test's own assertions say so); a hang guard of 10 min, not a speed check
            deadline = time.monotonic() + 600
            while (worker_first and len(self._results) <= self.here and any(t.is_alive() for t in self._threads)
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            super()._drain()

    monkeypatch.setattr(restore, "_Verifier", Kept)
    return made


def test_the_threshold_is_the_engines():
    from edefter_helper.engine.verify import PARALLEL_BYTES

    assert restore.PIPELINE_BYTES == PARALLEL_BYTES


def test_restore_verifies_in_worker_processes_while_unpacking(tmp_path, edefter, monkeypatch):
    _, original, wb, journal = _folder_backup(tmp_path, edefter)
    made = _pipelined(monkeypatch, workers=2, worker_first=True)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    assert summary.count(restore.RESTORED) == 3 and summary.failed == 0, summary.results
    _check_restored(out, original, edefter)
    (verifier,) = made
    assert not verifier.active  # closed: no worker left behind
    assert verifier.reread == 0  # every file was read once, as written
    assert verifier.here < len(original)  # the workers read files (this process may take the last ones)
    assert set(verifier._results) == {str(p) for p in out.rglob("*.xml")}


def test_the_verdict_covers_a_file_changed_after_it_was_read(tmp_path, edefter, monkeypatch):
    """A file read by a worker and changed before the verdict is read again: the verdict is about the
    bytes on disk, and those are not the bytes checked against the manifest."""
    _, _, wb, journal = _folder_backup(tmp_path, edefter)
    made = _pipelined(monkeypatch)
    facts = restore._Verifier.facts

    def tampered(self, files):
        self._drain()
        victim = next(f for f in files if f.name.kind == "YB" and "0003" not in f.location)
        data = bytearray(victim.path.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.path.write_bytes(bytes(data))
        return facts(self, files)

    monkeypatch.setattr(restore._Verifier, "facts", tampered)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    (verifier,) = made
    assert verifier.reread == 1
    bad = [r for r in summary.results if r.status == restore.NOT_RESTORED]
    assert len(bad) == 1 and "yazıldıktan sonra değişti" in bad[0].message, summary.results
    assert summary.count(restore.RESTORED) == 2


def _halves(monkeypatch, **kw):
    """As _pipelined, and every ledger is read as the engine's two halves (reader.read_signed and
    reader.check_bytes), which the restore's big parts get; the joins are counted."""
    from edefter_helper.engine import reader

    made = _pipelined(monkeypatch, **kw)
    monkeypatch.setattr(restore, "HALVES_BYTES", 1)
    joins = []
    real = reader.join_halves

    def join(path, name, signed, checked, written=None):
        facts = real(path, name, signed, checked, written)
        joins.append((path.name, signed is not None and checked.get("well_formed"), written is not None,
                      written is not None and written["crc32"] == checked["crc32"]))
        return facts

    monkeypatch.setattr(reader, "join_halves", join)
    return made, joins


def test_big_ledgers_are_verified_as_two_halves_with_the_same_verdict(tmp_path, edefter, monkeypatch):
    _, original, wb, journal = _folder_backup(tmp_path, edefter)
    made, joins = _halves(monkeypatch, workers=2, worker_first=True)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    assert summary.count(restore.RESTORED) == 3 and summary.failed == 0, summary.results
    _check_restored(out, original, edefter)
    ledgers = {n for n in original if n.endswith(".xml")}
    assert {n for n, *_ in joins} == ledgers
    assert all(ok and written and same for _, ok, written, same in joins)  # halves of the bytes written and hashed
    assert made[0].reread == 0


def test_a_ledger_changed_between_its_halves_is_read_again_and_caught(tmp_path, edefter, monkeypatch):
    """Halves that saw other bytes than the restore wrote (same size: only the CRC-32 tells) are not
    joined: the file is read whole, and its sha256 is not the backed-up one."""
    from edefter_helper.engine.cache import identity
    from edefter_helper.samples.attacks import _flip_amount
    from tests.test_lexical_c14n import _resigned

    _, _, wb, journal = _folder_backup(tmp_path, edefter)
    like = write_month(tmp_path / "ayni", VKN, PERIODS[0])  # the same month's signer
    made, joins = _halves(monkeypatch)
    facts = restore._Verifier.facts

    def tampered(self, files):
        self._drain()
        victim = next(f for f in files if f.name.kind == "Y" and "0003" not in f.location)
        size = victim.path.stat().st_size
        # another amount, signed again with the taxpayer's key: a valid ledger of the same size
        victim.path.write_bytes(_resigned(like, victim.path, lambda body: _flip_amount(body)))
        assert victim.path.stat().st_size == size
        # as if the file had changed without a trace in its identity (a ctime cannot be set back) and
        # both halves had read the changed bytes: only the CRC-32 of what was written tells
        now = identity(os.stat(victim.path))
        kept = self._results[victim.location]
        assert set(kept) == {"written", "signed", "bytes"}
        for part in kept:
            kept[part] = (now, kept[part][1] if part == "written" else restore._read_here(victim.location, part))
        return facts(self, files)

    monkeypatch.setattr(restore._Verifier, "facts", tampered)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    bad = [r for r in summary.results if r.status == restore.NOT_RESTORED]
    assert len(bad) == 1 and "yazıldıktan sonra değişti" in bad[0].message, summary.results
    assert summary.count(restore.RESTORED) == 2


def _flip_ledger_crcs(package: Path) -> None:
    """A wrong CRC-32 for every ledger of a zip, in its local and its central header."""
    data = bytearray(package.read_bytes())
    with zipfile.ZipFile(package) as zf:
        ledgers = [i for i in zf.infolist() if i.filename.endswith(".xml")]
        at = zf.start_dir
    for info in ledgers:
        assert data[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
        data[info.header_offset + 14] ^= 0xFF
    while data[at:at + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<3H", data[at + 28:at + 34])
        if data[at + 46:at + 46 + name_len].endswith(b".xml"):
            data[at + 16] ^= 0xFF
        at += 46 + name_len + extra_len + comment_len
    package.write_bytes(bytes(data))


def test_a_package_with_a_wrong_zip_crc_is_still_verified_whole(tmp_path, edefter, monkeypatch):
    """The restore checks each file's sha256, not the zip's CRC-32; the halves compare what they read
    with that CRC, so a wrong one only means each ledger is read whole, with the same verdict."""
    nas, original, wb, _ = _folder_backup(tmp_path, edefter)
    for package in nas.rglob("*.zip"):
        _flip_ledger_crcs(package)
        with zipfile.ZipFile(package) as zf:
            assert zf.testzip() is not None  # unzip would call these packages damaged
    made, joins = _halves(monkeypatch)
    out = tmp_path / "geri"
    keys = [MonthKey(VKN, "0000", p) for p in PERIODS] + [MonthKey(VKN, "0003", "2024-01")]
    summary = restore.restore(FileBook(wb), keys, out=out, options=_opts(tmp_path / "pc2.sqlite3"), discover=keys)
    assert summary.count(restore.RESTORED) == 3, summary.results
    _check_restored(out, original, edefter)
    assert joins and all(ok and written and not same for _, ok, written, same in joins)


def test_a_worker_that_dies_is_replaced_by_a_read_here(tmp_path, edefter, monkeypatch):
    _, original, wb, journal = _folder_backup(tmp_path, edefter)
    made = _pipelined(monkeypatch)
    monkeypatch.setattr(restore, "_WORKER", "import sys; sys.stdin.readline(); sys.exit(3)")
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    assert summary.count(restore.RESTORED) == 3, summary.results
    (verifier,) = made
    assert verifier.here == len(original)  # every file read in this process instead
    _check_restored(out, original, edefter)


def test_a_file_the_workers_find_invalid_fails_the_month(tmp_path, edefter, monkeypatch):
    """Bytes that match the package's manifest but not their signature (the package was rebuilt with a
    changed ledger): written, said to differ from the journal, and refused by the workers' verdict."""
    nas, _, wb, journal = _folder_backup(tmp_path, edefter)
    package = next(z for z in nas.rglob("*.zip") if "202402" in z.name)
    with zipfile.ZipFile(package) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist()}
    ledger = next(n for n in members if n.endswith("-Y-000000.xml"))
    amount = b'unitRef="try">'
    at = members[ledger].index(amount) + len(amount)
    members[ledger] = members[ledger][:at] + b"9" + members[ledger][at + 1:]  # an amount changed: same size
    for f in manifest["files"]:
        if f["name"] == ledger:
            f["size"], f["sha256"] = len(members[ledger]), hashlib.sha256(members[ledger]).hexdigest()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in members.items():
            zf.writestr(n, json.dumps(manifest) if n == "manifest.json" else b)
    package.write_bytes(buf.getvalue())
    # the journal knows the old package: ask as another computer would, from the target alone
    made = _pipelined(monkeypatch, worker_first=True)
    out = tmp_path / "geri"
    keys = [MonthKey(VKN, "0000", "2024-02")]
    summary = restore.restore(FileBook(wb), keys, out=out, options=_opts(tmp_path / "pc2.sqlite3"),
                              discover=keys)
    (result,) = summary.results
    assert result.status == restore.NOT_RESTORED, result
    assert "doğrulamadan geçmedi" in result.message
    assert made[0].here < 7  # the workers read the month
    report = (out / "ibraz-raporu.html").read_text(encoding="utf-8")
    assert ledger in report


def test_member_bytes_are_zipfiles_bytes_and_a_truncated_member_is_refused(tmp_path):
    import random

    blobs = {"bos": b"", "rastgele": random.Random(0).randbytes(300_000), "tekrar": b"defter " * 2_000_000, "ç.xml": b"<a/>" * 999}
    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, (n, b) in enumerate(blobs.items()):
            zf.writestr(n, b, compress_type=zipfile.ZIP_DEFLATED if i % 2 == 0 else zipfile.ZIP_STORED)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            chunks = list(restore._member_chunks(zf, info))
            assert b"".join(chunks) == blobs[info.filename]
            assert all(len(c) <= restore.CHUNK for c in chunks)  # never more at once, whatever the ratio
    whole = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("tekrar")
    cut = tmp_path / "kesik.zip"
    cut.write_bytes(whole[:info.header_offset + 60] + whole[info.header_offset + 60 + 100:])
    with zipfile.ZipFile(io.BytesIO(whole)) as good:
        cd = good.getinfo("tekrar")
    import pytest

    with zipfile.ZipFile(path) as zf:
        zf.filename = str(cut)  # the same directory over damaged member bytes
        with pytest.raises((zipfile.BadZipFile, EOFError, Exception)):
            data = b"".join(restore._member_chunks(zf, cd))
            assert data == blobs["tekrar"]


def test_publish_never_replaces_a_file(tmp_path):
    dest = tmp_path / "1234567890-202401-Y-000001.xml"
    dest.write_bytes(b"kullanicinin")
    tmp = tmp_path / ".geri-x.part"
    tmp.write_bytes(b"geri yuklenen")
    import pytest

    with pytest.raises(FileExistsError):
        restore._publish(str(tmp), dest)
    assert dest.read_bytes() == b"kullanicinin"
    other = tmp_path / "1234567890-202401-Y-000002.xml"
    restore._publish(str(tmp), other)
    assert other.read_bytes() == b"geri yuklenen" and not tmp.exists()


def test_a_file_that_cannot_be_made_durable_is_not_restored_and_leaves_no_part(tmp_path, edefter, monkeypatch):
    """fsync and publishing run beside the unpacking: a failure there still fails the month, and the
    temporary file goes."""
    import os

    import pytest

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name a file by its descriptor")
    _, _, wb, journal = _folder_backup(tmp_path, edefter)
    real = os.fsync

    def failing(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if ".geri-" in target and "/02/" in target:
            raise OSError(5, "Input/output error")
        return real(fd)

    monkeypatch.setattr(os, "fsync", failing)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    by_period = {(r.key.branch, r.key.period): r for r in summary.results}
    assert by_period[("0000", "2024-02")].status == restore.NOT_RESTORED
    assert "Dosya yazılamadı" in by_period[("0000", "2024-02")].message
    assert summary.count(restore.RESTORED) == 2
    assert not list(out.rglob("*.part"))
