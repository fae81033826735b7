"""Errors that name the cause, through the real command line (issue 14): a query that could not ask
(wrong password) does not claim months were backed up; serve on a used port; --data that is a file; a
Hedef address without a scheme; an empty password; --parallel 0 and a negative --wait."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edefter_helper import status as S
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

ROOT = Path(__file__).resolve().parents[1]
VKN = "7420300220"
KEYRING_ENV = {"PYTHON_KEYRING_BACKEND": "tests.fakes.file_keyring.FileKeyring"}


@pytest.fixture
def keyring_file(tmp_path, monkeypatch):
    path = tmp_path / "anahtarlik.json"
    monkeypatch.setenv("EDEFTER_TEST_KEYRING", str(path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workbook(tmp_path, edefter, address: str) -> Path:
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Ege", "vkn": VKN, "folder": str(tmp_path / "defter"), "target": "Merkez",
                               "user": "muhasebe"}])
    book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": "http", "address": address}])
    book.save()
    return wb


def test_a_query_that_could_not_ask_does_not_say_backed_up(tmp_path, edefter, keyring_file):
    from edefter_helper import server

    write_month(tmp_path / "defter" / "2024-01", VKN, "2024-01")
    handle = server.start_in_thread(tmp_path / "sunucu")
    try:
        server.add_user(tmp_path / "sunucu", "muhasebe", "Doğru-Şifre-1", [VKN])
        wb = _workbook(tmp_path, edefter, handle.url)
        journal = tmp_path / "j.sqlite3"
        assert edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                       input="Doğru-Şifre-1\n", env_extra=KEYRING_ENV).returncode == 0
        proc = edefter("backup", "--workbook", wb, "--journal", journal, "--wait", "30", env_extra=KEYRING_ENV)
        assert proc.returncode == 0 and "1 dönem yedeklendi" in proc.stdout, proc.stdout + proc.stderr
        # the password changes on the server's side: Durum Sorgula cannot ask any more
        assert edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                       input="Yanlış-Şifre-2\n", env_extra=KEYRING_ENV).returncode == 0
        proc = edefter("query", "--workbook", wb, "--journal", journal, env_extra=KEYRING_ENV)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        summary = proc.stdout.splitlines()[-1]
        assert "yedeklendi" not in summary and "denenmedi" in summary, summary
        assert "Traceback" not in proc.stderr
    finally:
        handle.stop()
    rows = FileBook(wb).read_rows(L.PERIODS)
    assert [r["status"] for r in rows] == [S.BACKED_UP]  # what was known stays; nothing was confirmed anew


def test_serve_on_a_used_port_says_port_kullanimda_and_announces_nothing(tmp_path, edefter):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = edefter("serve", "--data", tmp_path / "sunucu", "--port", port, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "port kullanımda" in proc.stderr and "dinliyor:" not in proc.stderr, proc.stderr


def test_serve_announces_only_once_it_listens(tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "edefter_helper", "serve", "--data", str(tmp_path / "s"),
                               "--port", str(port)], stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        line = ""
        deadline = time.monotonic() + 30
        while "dinliyor" not in line and time.monotonic() < deadline:
            line = server.stderr.readline()
        assert "dinliyor" in line
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it was listening when it said so
    finally:
        server.terminate()
        server.wait(10)
        server.stderr.close()


def test_data_that_is_a_file(tmp_path, edefter):
    f = tmp_path / "veri.txt"
    f.write_text("x")
    for args in (("serve", "--data", f, "--port", _free_port()), ("server", "reindex", "--data", f)):
        proc = edefter(*args, timeout=60)
        assert proc.returncode == 2 and "--data bir klasör olmalı" in proc.stderr, proc.stderr
    assert f.read_text() == "x"


def test_a_hedef_address_without_a_scheme_shows_what_was_typed(tmp_path, edefter, keyring_file):
    write_month(tmp_path / "defter" / "2024-01", VKN, "2024-01")
    wb = _workbook(tmp_path, edefter, "yedek.firma.com.tr")
    assert edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                   input="Şifre-1\n", env_extra=KEYRING_ENV).returncode == 0
    proc = edefter("backup", "--workbook", wb, "--journal", tmp_path / "j.sqlite3", env_extra=KEYRING_ENV)
    assert "adresi geçersiz: 'yedek.firma.com.tr'" in proc.stdout and "beklenmeyen" not in proc.stderr, proc.stdout + proc.stderr
    assert "https://yedek.firma.com.tr" in proc.stdout


@pytest.mark.parametrize("given", ["\n", "", "   \n"])
def test_an_empty_password_is_refused(tmp_path, edefter, keyring_file, given):
    proc = edefter("credentials", "set", "--target", "Merkez", "--user", "muhasebe", "--password-stdin",
                   input=given, env_extra=KEYRING_ENV)
    assert proc.returncode == 2 and "Şifre boş olamaz" in proc.stderr, proc.stderr
    proc = edefter("server", "user-add", "--data", tmp_path / "s", "muhasebe", "--vkn", VKN, "--password-stdin",
                   input=given)
    assert proc.returncode == 2 and "Şifre boş olamaz" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args,said", [
    (("backup", "--parallel", "0"), "--parallel en az 1"),
    (("send", "--parallel", "-2"), "--parallel en az 1"),
    (("backup", "--wait", "-1"), "--wait negatif olamaz"),
])
def test_numbers_out_of_range_are_usage_errors(tmp_path, edefter, args, said):
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    proc = edefter(*args, "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr


def test_build_template_outside_a_source_checkout_says_it_needs_one(tmp_path, monkeypatch, capsys):
    from edefter_helper.addin import build
    from edefter_helper.cli import main

    monkeypatch.setattr(build, "ADDIN_DIR", tmp_path / "site-packages" / "addin")  # what a pip install has
    out = tmp_path / "sablon.xlsm"
    assert main(["workbook", "build-template", str(out)]) == 2
    err = capsys.readouterr().err
    assert "kaynak kopyası" in err and "callbacks.bas" in err and "edefter workbook new" in err
    assert "FileNotFoundError" not in err and not out.exists()
