"""The journal stores stable English codes, shows the words users know, and migrates old journals."""

from __future__ import annotations

import sqlite3

from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal

KEY = MonthKey("4810525635", "0000", "2024-01")


def test_codes_are_stored_and_words_are_shown(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    j.record(KEY, "NAS", "send", S.BACKED_UP, "tamam", "ab" * 32)
    assert j.status(KEY, "NAS").status == S.BACKED_UP
    assert j.statuses()[0].as_json()["state"] == "backed-up"
    assert j.attempts(KEY)[0]["outcome"] == S.BACKED_UP
    j.close()
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    assert db.execute("SELECT status FROM months").fetchall() == [("backed-up",)]
    assert db.execute("SELECT outcome FROM attempts").fetchall() == [("backed-up",)]


def test_a_journal_with_display_words_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    j = Journal(path)
    j.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.execute("INSERT INTO months VALUES (?, ?, ?, 'NAS', ?, 'eski', 'cd', '', '2024-02-01')",
               (KEY.vkn, KEY.branch, KEY.period, S.ACCEPTED))
    db.execute("INSERT INTO attempts (vkn, branch, period, target, action, started_at, outcome) VALUES"
               " (?, ?, ?, 'NAS', 'send', '2024-02-01', ?)", (KEY.vkn, KEY.branch, KEY.period, S.FAILED))
    db.commit()
    db.close()
    j = Journal(path)
    assert j.status(KEY, "NAS").status == S.ACCEPTED
    j.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT status FROM months").fetchall() == [("accepted",)]
    assert db.execute("SELECT outcome FROM attempts").fetchall() == [("failed",)]
    assert db.execute("PRAGMA user_version").fetchone() == (1,)


def test_a_journal_refused_at_once_as_locked_is_asked_again():
    """SQLite may answer 'database is locked' to setting WAL mode without waiting its busy timeout (the
    agent and a button opening one journal at once): asked again, not a failed run; other errors at once."""
    import sqlite3

    from edefter_helper.journal import _while_locked

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "wal"

    assert _while_locked(flaky) == "wal" and len(calls) == 3

    def broken():
        calls.append(1)
        raise sqlite3.OperationalError("no such table: months")

    calls.clear()
    try:
        _while_locked(broken)
    except sqlite3.OperationalError as exc:
        assert "no such table" in str(exc) and len(calls) == 1
    else:
        raise AssertionError("another error must not be asked again")
