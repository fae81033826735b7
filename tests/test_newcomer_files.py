"""The user's files are theirs (issue 14, "Their files"): a workbook that is not a control workbook is
refused and never written; a read-only workbook is respected; a replaced workbook keeps its mode,
owner and group; new files follow the umask; a folder without write permission is named as such;
what a killed save left beside the workbook is cleaned on the next run. Through the real CLI and the
workbook file."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook import xlsm
from edefter_helper.workbook.file import FileBook, WorkbookError

VKN = "7420300220"
NOT_OURS = "bir e-Defter kontrol çalışma kitabı değil"


def _new(edefter, path: Path, **kw) -> Path:
    proc = edefter("workbook", "new", path, **kw)
    assert proc.returncode == 0, proc.stderr
    return path


def _office(tmp_path, edefter) -> tuple[Path, Path]:
    ledgers, nas = tmp_path / "defterler", tmp_path / "nas"
    nas.mkdir()
    write_month(ledgers / "2024-01", VKN, "2024-01", company="Ege Tekstil")
    wb = _new(edefter, tmp_path / "kontrol.xlsm")
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Ege Tekstil", "vkn": VKN, "folder": str(ledgers), "target": "NAS",
                               "auto": "Evet"}])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    return wb, nas


def _plain_xlsx(path: Path) -> Path:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Müşteri listesi"
    wb.save(path)
    return path


def _without(template: Path, out: Path, drop) -> Path:
    """The control workbook with some parts taken out (their relationships left dangling)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(template) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if not drop(info.filename):
                zout.writestr(info, zin.read(info))
    out.write_bytes(buf.getvalue())
    return out


@pytest.mark.parametrize("kind", ["xlsx", "renamed-xlsx", "text", "no-vba", "no-ribbon"])
def test_a_file_that_is_not_a_control_workbook_is_refused_and_never_written(tmp_path, edefter, kind):
    good = _new(edefter, tmp_path / "iyi.xlsm")
    if kind == "xlsx":
        path = _plain_xlsx(tmp_path / "liste.xlsx")
    elif kind == "renamed-xlsx":
        path = _plain_xlsx(tmp_path / "liste.xlsx").rename(tmp_path / "liste.xlsm")
    elif kind == "text":
        path = tmp_path / "not.xlsm"
        path.write_text("bu bir çalışma kitabı değil\n", encoding="utf-8")
    elif kind == "no-vba":
        path = _without(good, tmp_path / "makrosuz.xlsm", lambda n: n == xlsm.VBA_PART)
    else:
        path = _without(good, tmp_path / "seritsiz.xlsm", lambda n: n.startswith("customUI/"))
    before = path.read_bytes()
    names_before = sorted(p.name for p in tmp_path.iterdir())
    for args in (("refresh",), ("backup",), ("send",), ("query",), ("radar",)):
        proc = edefter(*args, "--workbook", path, "--journal", tmp_path / "j.sqlite3")
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert NOT_OURS in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert path.name in proc.stderr
    assert path.read_bytes() == before
    # nothing new beside it either (no lock file, no temporary)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "j.sqlite3"
                  and not p.name.startswith("j.sqlite3")) == names_before
    with pytest.raises(WorkbookError, match=NOT_OURS):
        FileBook(path)


def test_the_reason_is_said(tmp_path, edefter):
    path = _plain_xlsx(tmp_path / "liste.xlsx")
    proc = edefter("refresh", "--workbook", path)
    assert "uzantısı .xlsx" in proc.stderr and "edefter workbook new" in proc.stderr
    text = tmp_path / "bozuk.xlsm"
    text.write_bytes(b"PK\x03\x04 yarim")
    proc = edefter("refresh", "--workbook", text)
    assert "dosya bozuk ya da bir Excel çalışma kitabı değil" in proc.stderr
    assert "File is not a zip file" not in proc.stderr


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_read_only_workbook_is_respected(tmp_path, edefter):
    wb, _ = _office(tmp_path, edefter)
    os.chmod(wb, 0o444)
    before = wb.read_bytes()
    for args in (("refresh",), ("backup",), ("radar",)):
        proc = edefter(*args, "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "salt okunur" in proc.stderr, proc.stderr
    assert wb.read_bytes() == before and stat.S_IMODE(wb.stat().st_mode) == 0o444
    assert not list((tmp_path / "nas").rglob("*.zip")), "nothing is done when its results cannot be written"
    proc = edefter("workbook", "upgrade", wb)
    assert proc.returncode == 2 and "salt okunur" in proc.stderr
    assert wb.read_bytes() == before
    # the file face refuses as well
    book = FileBook(wb)
    with pytest.raises(WorkbookError, match="salt okunur"):
        book.save()


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes and owners")
def test_a_replaced_workbook_keeps_its_mode_owner_and_group(tmp_path, edefter):
    wb, _ = _office(tmp_path, edefter)
    os.chmod(wb, 0o640)
    root = os.geteuid() == 0
    if root:
        os.chown(wb, 1234, 2345)
    before = wb.stat()
    proc = edefter("backup", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = wb.stat()
    assert after.st_ino != before.st_ino, "the workbook was replaced (atomic save)"
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    proc = edefter("workbook", "upgrade", wb)
    assert proc.returncode == 0, proc.stderr
    after = wb.stat()
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


@pytest.mark.skipif(os.name == "nt", reason="POSIX umask")
def test_new_files_follow_the_umask(tmp_path, edefter):
    import subprocess
    import sys

    def run(*args):
        code = ("import os, sys; os.umask(0o027); from edefter_helper.cli import main; "
                f"sys.exit(main({[str(a) for a in args]!r}))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    wb, nas = _office(tmp_path, edefter)
    fresh = tmp_path / "yeni.xlsm"
    run("workbook", "new", fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    run("backup", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    stored = [p for p in nas.rglob("*") if p.is_file()]
    assert stored and all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in stored), \
        [(p.name, oct(p.stat().st_mode)) for p in stored]
    out = tmp_path / "paket"
    run("pack", tmp_path / "defterler", "--vkn", VKN, "--period", "2024-01", "--out", out)
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in out.iterdir()] == [oct(0o640)]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_folder_without_write_permission_says_so(tmp_path, edefter, monkeypatch):
    wb, _ = _office(tmp_path, edefter)
    book = FileBook(wb)
    if os.geteuid() == 0:  # root writes anywhere: make the save's temporary file fail as it would
        import tempfile

        def refuse(*args, dir=None, **kw):
            raise PermissionError(13, "Permission denied", os.path.join(dir or ".", ".~xxxxxxxx.xlsm"))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    else:
        os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(WorkbookError) as info:
            book.save()
    finally:
        os.chmod(tmp_path, 0o755)
    assert "yazma izni yok" in str(info.value) and "Excel" not in str(info.value)


def test_a_killed_save_leaves_nothing_for_good(tmp_path, edefter):
    wb, _ = _office(tmp_path, edefter)
    old = time.time() - 3600
    stale = [tmp_path / ".~a1b2c3d4.xlsm", tmp_path / ".~yukselt-zz_9y8x7.xlsm"]
    theirs = [tmp_path / ".~lock.kontrol.xlsm#", tmp_path / "~$kontrol.xlsm", tmp_path / ".~notes.xlsm",
              tmp_path / ".~a1b2c3d4.xlsx", tmp_path / "a1b2c3d4.xlsm"]
    fresh = tmp_path / ".~q9w8e7r6.xlsm"  # another save in progress right now
    for p in stale + theirs + [fresh]:
        p.write_bytes(b"x")
    for p in stale + theirs:
        os.utime(p, (old, old))
    proc = edefter("refresh", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in theirs) and fresh.exists()


def test_workbook_new_on_an_existing_file_quotes_its_name(tmp_path, edefter):
    wb = _new(edefter, tmp_path / "kontrol.xlsm")
    before = wb.read_bytes()
    proc = edefter("workbook", "new", wb)
    assert proc.returncode == 2
    assert f"'{wb}' zaten var" in proc.stderr, proc.stderr
    assert wb.read_bytes() == before
