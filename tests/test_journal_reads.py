"""The journal's reads never wait for a writer: Durumu Yenile must answer while a background run holds
the journal's write lock (the agent's round of answers is one transaction)."""

from __future__ import annotations

import sqlite3
import threading

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
    answers: dict = {}

    def read():
        answers["statuses"] = [(s.key, s.status, s.message) for s in journal.statuses()]
        answers["status"] = journal.status(KEY, "NAS").status
        answers["attempts"] = len(journal.attempts(KEY))
        answers["files"] = journal.recorded_files()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)  # a hang guard: a read that waited for the lock would wait 60 s (busy_timeout)
    try:
        assert not reader.is_alive(), "a read waited for the writer's lock"
        assert answers["statuses"] == [(KEY, S.BACKED_UP, "saklandı")]  # the last committed state
        assert answers["status"] == S.BACKED_UP and answers["attempts"] == 1
        assert answers["files"] == {(KEY, "NAS"): [("x.xml", 1, "b" * 64)]}
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    reader.join(90)
    # and writes still take the lock: one waits for the other instead of interleaving
    journal.record(KEY, "NAS", "query", S.BACKED_UP, "yine saklandı", "a" * 64)
    assert journal.status(KEY, "NAS").message == "yine saklandı"
