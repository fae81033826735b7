"""A copy the drill found damaged keeps the drill's own sentence through any number of Durum Sorgula
and Toplu Yedekle runs: quoted once (from the drill's record), never nested into itself."""

from __future__ import annotations

import random

from edefter_helper import actions, drill
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.workbook.file import FileBook

from test_spoiled_backed_up_month import VKN, _office


def test_the_drills_reason_is_quoted_once_however_often_the_month_is_asked(tmp_path, edefter):
    ledgers = tmp_path / "defterler"
    write_month(ledgers, VKN, "2024-01")
    store, wb, opts = _office(tmp_path, edefter, ledgers)
    assert actions.backup(FileBook(wb), options=opts).count(S.BACKED_UP) == 1
    key = MonthKey(VKN, "0000", "2024-01")
    package = store / VKN / key.package_name
    blob = bytearray(package.read_bytes())
    blob[len(blob) // 2] ^= 1
    package.write_bytes(bytes(blob))
    summary = drill.drill(FileBook(wb), options=opts, sample_pct=100, rng=random.Random(1))
    assert [r.status for r in summary.results] == [S.DAMAGED]
    journal = Journal(opts.journal)
    reason = journal.last_drill(key, journal.statuses()[0].target)[2]
    assert reason.startswith("Hedefteki kopya bozuk")
    messages = []
    for _ in range(3):
        actions.query(FileBook(wb), options=opts)
        st = journal.status(key)
        assert st.status == S.DAMAGED
        messages.append(st.message)
    assert messages[0] == messages[1] == messages[2], messages
    assert messages[0].count(reason) == 1 and messages[0].count("Hedefteki kopya bozuk") == 1, messages[0]
    journal.close()
