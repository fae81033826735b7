"""The command-line wiring of the server, user, credential and workbook commands, as a user types
them; and two backup runs at once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.targets.http import HttpTarget
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

ROOT = Path(__file__).resolve().parents[1]
VKN = "4810525635"
KEYRING_ENV = {"PYTHON_KEYRING_BACKEND": "tests.fakes.file_keyring.FileKeyring"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def keyring_file(tmp_path, monkeypatch):
    path = tmp_path / "anahtarlik.json"
    monkeypatch.setenv("EDEFTER_TEST_KEYRING", str(path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return path


def _wait_for(url: str, timeout: float = 20) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/v1/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("storage server did not start")


def test_serve_user_add_credentials_and_backup_via_cli(tmp_path, edefter, keyring_file):
    data = tmp_path / "sunucu"
    proc = edefter("server", "user-add", "--data", data, "muhasebe", "--vkn", VKN, "--password-stdin",
                   input="Gizli-Şifre-42\n")
    assert proc.returncode == 0, proc.stderr
    assert "Gizli-Şifre-42" not in proc.stdout + proc.stderr
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "edefter_helper", "serve", "--data", str(data),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url)
        proc = edefter("credentials", "check", "--target", "Merkez", "--user", "muhasebe", env_extra=KEYRING_ENV)
        assert proc.returncode == 1 and "kayıtlı değil" in proc.stdout
        proc = edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                       env_extra=KEYRING_ENV, input="Gizli-Şifre-42\n")
        assert proc.returncode == 0, proc.stderr
        assert edefter("credentials", "check", "--target", "Merkez", "--user", "muhasebe",
                       env_extra=KEYRING_ENV).returncode == 0

        write_month(tmp_path / "defter", VKN, "2024-01")
        wb = tmp_path / "k.xlsm"
        assert edefter("workbook", "new", wb).returncode == 0
        book = FileBook(wb)
        book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(tmp_path / "defter"),
                                   "target": "Merkez", "user": "muhasebe"}])
        book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": "http", "address": url}])
        book.save()
        proc = edefter("backup", "--workbook", wb, "--wait", "30", env_extra=KEYRING_ENV)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1 dönem yedeklendi" in proc.stdout
        with HttpTarget(url, "muhasebe", "Gizli-Şifre-42") as target:
            assert target.query(MonthKey(VKN, "0000", "2024-01")).state == "stored"

        # a wrong password is a clear reason, not a traceback
        assert edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                       env_extra=KEYRING_ENV, input="yanlis\n").returncode == 0
        write_month(tmp_path / "defter2", VKN, "2024-02")
        book = FileBook(wb)
        book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(tmp_path), "target": "Merkez",
                                   "user": "muhasebe"}])
        book.save()
        proc = edefter("send", "--workbook", wb, "--period", "2024-02", "--json", env_extra=KEYRING_ENV)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        out = json.loads(proc.stdout)
        (result,) = out["results"]
        # a refused password is the same for every month: one warning, the month left as it was
        assert result["status"] == S.NOT_SENT and any("şifre" in n for n in out["notes"])

        assert edefter("credentials", "delete", "--target", "Merkez", "--user", "muhasebe",
                       env_extra=KEYRING_ENV).returncode == 0
        assert "yanlis" not in keyring_file.read_text()
    finally:
        server.terminate()
        server.wait(10)


def test_workbook_check_finds_a_good_setup_and_a_damaged_one(tmp_path, edefter):
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    proc = edefter("workbook", "check", wb)
    assert proc.returncode == 0, proc.stdout
    import zipfile

    damaged = tmp_path / "bozuk.xlsm"
    with zipfile.ZipFile(wb) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            if item.filename != "customUI/customUI14.xml":
                dst.writestr(item, src.read(item.filename))
    proc = edefter("workbook", "check", damaged)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stdout.strip()


def test_two_backup_runs_at_once_store_each_month_once(tmp_path, edefter):
    for i, period in enumerate(("2023-01", "2023-02", "2023-03", "2023-04", "2023-05", "2023-06")):
        write_month(tmp_path / "defter" / period, VKN, period, seed=i)
    nas = tmp_path / "nas"
    nas.mkdir()
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(tmp_path / "defter"), "target": "NAS"}])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    journal = tmp_path / "j.sqlite3"
    copies = [tmp_path / "k1.xlsm", tmp_path / "k2.xlsm"]
    for c in copies:
        c.write_bytes(wb.read_bytes())
    results = []

    def run(path):
        results.append(actions.backup(FileBook(path), options=actions.Options(journal=journal, parallel=3)))

    threads = [threading.Thread(target=run, args=(c,)) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and all(r.failed == 0 for r in results), [r.results for r in results]
    stored = sorted(p.name for p in nas.rglob("*.zip"))
    assert len(stored) == 6 and len(set(stored)) == 6
    j = Journal(journal)
    assert [s.status for s in j.statuses()] == [S.BACKED_UP] * 6
    assert j.open_attempts() == []


def test_cli_speaks_turkish_and_blames_the_subcommand(edefter):
    proc = edefter("verify", "--bogus", "x")
    assert proc.returncode == 2
    assert proc.stderr.startswith("kullanım: edefter verify")  # the subcommand's usage, not the top level's
    assert "tanınmayan argümanlar: --bogus" in proc.stderr
    proc = edefter("pack")
    assert proc.returncode == 2 and "şu argümanlar gerekli" in proc.stderr
    help_text = edefter("pack", "--help").stdout
    for english in ("positional arguments", "options:", "show this help message"):
        assert english not in help_text
    assert "--vkn VKN         VKN (10 hane) ya da TCKN (11 hane)" in help_text
