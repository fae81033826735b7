"""A fault nobody foresaw in one month (a bug of this program) is that month's: the other months are
done and written to the sheets, the month says so in Turkish and keeps its status, the traceback goes
to hata.log and never to the screen, and the run ends as a problem. A broken journal still stops the run
(nothing after it could be recorded)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from edefter_helper import actions, paths
from edefter_helper import status as S
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.conftest import nas_workbook

VKN = "4810525635"
PERIODS = ("2024-01", "2024-02", "2024-03")
FAULTY = "2024-02"


def _office(tmp_path, edefter):
    ledgers = tmp_path / "defter"
    for p in PERIODS:
        write_month(ledgers / p, VKN, p)
    return nas_workbook(tmp_path, edefter, ledgers, VKN)[0]


def _faulty_send(error: type[Exception]):
    real = actions.send_copies

    def send_copies(run, ms, firm, copies=None):
        if ms.key.period == FAULTY:
            raise error("bir hata: None'un özniteliği yok")
        return real(run, ms, firm, copies)

    return send_copies


def test_one_months_fault_does_not_stop_the_others(tmp_path, edefter, monkeypatch):
    wb = _office(tmp_path, edefter)
    monkeypatch.setattr(actions, "send_copies", _faulty_send(AttributeError))
    journal = tmp_path / "j.sqlite3"
    summary = actions.backup(FileBook(wb), options=actions.Options(journal=journal, wait=20, poll=0.1))
    assert summary.count(S.BACKED_UP) == 2 and summary.errors == 1 and summary.failed >= 1, summary.results
    (fault,) = [r for r in summary.results if r.key.period == FAULTY]
    assert "beklenmeyen hata (AttributeError)" in fault.message and "hata.log" in fault.message
    assert "1 dönem beklenmeyen bir hata yüzünden işlenemedi" in summary.message
    rows = {r["period"]: r for r in FileBook(wb).read_rows(L.PERIODS)}
    assert {p: rows[p]["status"] for p in PERIODS if p != FAULTY} == {"2024-01": S.BACKED_UP, "2024-03": S.BACKED_UP}
    assert rows[FAULTY]["status"] != S.BACKED_UP
    log = (paths.data_dir() / "hata.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "AttributeError" in log and f"{VKN}/0000/{FAULTY}" in log
    assert any(FAULTY == r["period"] and "beklenmeyen hata" in r["message"] for r in FileBook(wb).read_rows(L.LOG))


def test_a_broken_journal_still_stops_the_run(tmp_path, edefter, monkeypatch):
    wb = _office(tmp_path, edefter)
    monkeypatch.setattr(actions, "send_copies", _faulty_send(sqlite3.OperationalError))
    with pytest.raises(sqlite3.OperationalError):
        actions.backup(FileBook(wb), options=actions.Options(journal=tmp_path / "j.sqlite3", wait=20, poll=0.1))


def test_the_command_line_shows_no_traceback_and_ends_as_a_problem(tmp_path, edefter):
    wb = _office(tmp_path, edefter)
    journal = tmp_path / "j.sqlite3"
    script = (
        "import sys\n"
        "from edefter_helper import actions\n"
        "real = actions.send_copies\n"
        "def send_copies(run, ms, firm, copies=None):\n"
        f"    if ms.key.period == {FAULTY!r}:\n"
        "        raise KeyError('yok')\n"
        "    return real(run, ms, firm, copies)\n"
        "actions.send_copies = send_copies\n"
        "from edefter_helper.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-c", script, "backup", "--workbook", str(wb), "--journal", str(journal),
                           "--wait", "20", "--json"], capture_output=True, text=True, encoding="utf-8", env=env,
                          timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    results = {r["period"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["2024-01"]["status"] == S.BACKED_UP and results["2024-03"]["status"] == S.BACKED_UP
    assert "beklenmeyen hata (KeyError)" in results[FAULTY]["message"]


def test_a_data_folder_that_cannot_take_the_log_is_said_not_raised(tmp_path, monkeypatch):
    """hata.log cannot be written (the data folder is a file, a full or read-only disk): the fault is
    still said, with '(günlük yazılamadı)' where the path would be, and nothing raises."""
    from edefter_helper import crashlog

    blocked = tmp_path / "veri"
    blocked.write_text("bir dosya, klasör değil")
    monkeypatch.setattr(paths, "data_dir", lambda: blocked)
    try:
        raise RuntimeError("deneme")
    except RuntimeError as exc:
        assert crashlog.record(exc, "test") == crashlog.UNWRITTEN
    assert blocked.read_text() == "bir dosya, klasör değil"
