"""The journal's reads never wait for a writer: Durumu Yenile must answer while a background run holds
the journal's write lock (the agent's round of answers is one transaction)."""

from __future__ import annotations

import sqlite3

from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal

KEY = MonthKey("4810525635", "0000", "2024-01")


def test_reads_go_on_while_another_process_holds_the_write_lock(tmp_path):
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    journal.record(KEY, "NAS", "send", S.BACKED_UP, "saklandı", "a" * 64, files=[("x.xml", 1, "b" * 64)])
    writer = sqlite3.connect(str(path), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process's run, in the middle of a write
    writer.execute("UPDATE months SET message = 'yazılıyor' WHERE period = '2024-01'")
    try:
        # a read that waited for the writer would fail here with "database is locked" (busy_timeout)
        assert [(s.key, s.status, s.message) for s in journal.statuses()] == [(KEY, S.BACKED_UP, "saklandı")]
        assert journal.status(KEY, "NAS").status == S.BACKED_UP  # the last committed state
        assert len(journal.attempts(KEY)) == 1
        assert journal.recorded_files() == {(KEY, "NAS"): [("x.xml", 1, "b" * 64)]}
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # and writes still take the lock: one waits for the other instead of interleaving
    journal.record(KEY, "NAS", "query", S.BACKED_UP, "yine saklandı", "a" * 64)
    assert journal.status(KEY, "NAS").message == "yine saklandı"
