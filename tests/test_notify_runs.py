"""Notifications from real runs: a Toplu Yedekle that backs up a month sends one webhook call listing
the files; asking again sends nothing more (e-mail delivery itself: tests/test_notify.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.conftest import nas_workbook

VKN = "4810525635"


class _Hook(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hook.calls.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.calls = []
    httpd = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_port}/bildirim"
    httpd.shutdown()
    httpd.server_close()


def test_a_backup_run_notifies_once_per_state_change(tmp_path, edefter, hook):
    ledgers = tmp_path / "defter"
    write_month(ledgers / "a", VKN, "2024-01")
    wb, _ = nas_workbook(tmp_path, edefter, ledgers, VKN, firm={"name": "Anadolu Gıda"},
                         sheets={L.NOTIFY: [{"kind": "webhook", "address": hook, "events": "yedeklendi, yedeklenemedi"}]})
    opts = actions.Options(journal=tmp_path / "j.sqlite3")
    assert actions.backup(FileBook(wb), options=opts).count(S.BACKED_UP) == 1
    assert len(_Hook.calls) == 1
    call = _Hook.calls[0]
    assert call["event"] == "yedeklendi" and call["vkn"] == VKN
    assert any(f["file"].endswith("-Y-000000.xml") for f in call["files"])
    assert "Ocak 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi." in call["message"]
    actions.query(FileBook(wb), options=opts)  # Yedeklendi again: not a new state, no new message
    assert len(_Hook.calls) == 1


def test_a_firm_with_several_copies_is_told_once_when_the_last_copy_is_confirmed(tmp_path, edefter, hook):
    ledgers = tmp_path / "defter"
    write_month(ledgers / "a", VKN, "2024-01")
    nas, usb = tmp_path / "NAS", tmp_path / "USB"
    nas.mkdir()
    usb.mkdir()
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu Gıda", "vkn": VKN, "folder": str(ledgers), "target": "NAS; USB"}])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)},
                                {"name": "USB", "kind": "klasör", "address": str(usb)}])
    book.write_rows(L.NOTIFY, [{"kind": "webhook", "address": hook, "events": "yedeklendi, yedeklenemedi"}])
    book.save()
    opts = actions.Options(journal=tmp_path / "j.sqlite3")
    actions.backup(FileBook(wb), options=opts)
    assert len(list(nas.rglob("*.zip"))) == len(list(usb.rglob("*.zip"))) == 1
    (call,) = _Hook.calls  # one message for the month, not one per Hedef
    assert call["event"] == "yedeklendi" and call["target"] == "NAS; USB"
    assert "Kopyalar (2/2): NAS, USB." in call["message"]
    actions.query(FileBook(wb), options=opts)
    assert len(_Hook.calls) == 1
