"""Results per file, keyed by the file's identity, so looking again at unchanged months is free.

Lives in the user's data directory (never beside the ledgers). Any change of size, mtime,
ctime or inode makes an entry stale. Bump VERSION whenever what a read produces changes.

Nothing is loaded whole: each lookup asks SQLite for one path (an office's cache holds ~240 000
files' facts, ~3.6 KB each; loading them all cost ~850 MB and seconds on every run). Writes wait in a
small buffer that is written out every FLUSH_EVERY rows and on flush().

Besides the files, whole months' verdicts (verify's `check_set` over a month's facts) are kept under
a digest of everything the verdict depends on — each file's path, kind, part, size and identity, the
engine's code, the schema and the trust list (verify.month_digest) — so a warm verification neither
decodes the facts nor checks the month again. A digest that does not match is never used.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

VERSION = "5"  # 4, 5: months table (whole months' verdicts)

FLUSH_EVERY = 500  # buffered rows written out at once (bounds memory on a cold verification)

_FIELDS = {"sha256": "sha256", "header": "header", "full": "full, full_schema"}


def identity(st: os.stat_result) -> str:
    # Windows' directory listing reports st_ino as 0 while os.stat fills it: leave it out there,
    # or scan and verify would each see the other's entries as stale
    ino = 0 if os.name == "nt" else st.st_ino
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{ino}"


# one file's row, as buffered: (ident, sha256, header JSON, full JSON, full_schema); None = not given
_Row = tuple


class FileCache:
    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.RLock()
        self._pending: dict[str, _Row] = {}  # path -> row not yet written (read back by get)
        self._pending_months: dict[str, tuple[str, str]] = {}  # slot -> (digest, verdict JSON)
        self._db = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                row = self._db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
                if not row or row[0] != VERSION:
                    self._db.execute("DROP TABLE IF EXISTS files")
                    self._db.execute("DROP TABLE IF EXISTS months")
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, ident TEXT NOT NULL,"
                    " sha256 TEXT, header TEXT, full TEXT, full_schema TEXT)")
                # slot: one month set's place (verify.month_slot)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS months (slot TEXT PRIMARY KEY, digest TEXT NOT NULL,"
                    " verdict TEXT NOT NULL)")
                self._db.commit()
            except sqlite3.Error:
                self._close_db()  # a broken cache must never stop a backup: work uncached

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    # -- files ------------------------------------------------------------------------------

    def get(self, path: Path | str, ident: str, field: str, schema_id: str = ""):
        if field not in _FIELDS:
            raise KeyError(field)
        path = str(path)
        raw = None
        with self._lock:
            row = self._pending.get(path)
            if row is not None and row[0] == ident:
                raw = _pick(row[1], row[2], row[3], row[4], field, schema_id)
            if raw is None and self._db is not None:
                try:
                    found = self._db.execute(f"SELECT ident, {_FIELDS[field]} FROM files WHERE path = ?",
                                             (path,)).fetchone()
                except sqlite3.Error:
                    found = None
                if found is not None and found[0] == ident:
                    raw = _pick(None, None, found[1], found[2], field, schema_id) if field == "full" else found[1]
        if field == "sha256":
            return raw if isinstance(raw, str) else None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None  # a damaged row is no answer: the file is read again
        return value if isinstance(value, dict) else None

    def put(self, path: Path | str, ident: str, *, sha256=None, header=None, full=None, schema_id: str = "") -> None:
        row = (ident, sha256,
               json.dumps(header, ensure_ascii=False, separators=(",", ":")) if header is not None else None,
               json.dumps(full, ensure_ascii=False, separators=(",", ":")) if full is not None else None,
               schema_id if full is not None else None)
        path = str(path)
        with self._lock:
            old = self._pending.get(path)
            if old is not None and old[0] == ident:  # same file: what was given before stays
                row = tuple(new if new is not None else was for new, was in zip(row, old))
            self._pending[path] = row
            if len(self._pending) >= FLUSH_EVERY:
                self._write()

    def forget(self, paths) -> None:
        """Drop what is known of these files (their bytes were found to differ from a verdict under
        the same identity), and every month's verdict: any could have counted on them. (Rare: the
        months are judged again from their files' kept facts, which takes seconds, not a re-read.)"""
        gone = [str(p) for p in paths]
        with self._lock:
            for p in gone:
                self._pending.pop(p, None)
            self._pending_months.clear()
            if self._db is not None:
                try:
                    self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
                    self._db.execute("DELETE FROM months")
                    self._db.commit()
                except sqlite3.Error:
                    pass

    # -- whole months ---------------------------------------------------------------------------

    def month_get(self, slot: str, digest: str) -> dict | None:
        """The verdict kept for this month when it was made from exactly what `digest` names."""
        with self._lock:
            row = self._pending_months.get(slot)
            if row is None and self._db is not None:
                try:
                    row = self._db.execute("SELECT digest, verdict FROM months WHERE slot = ?", (slot,)).fetchone()
                except sqlite3.Error:
                    row = None
        if row is None or row[0] != digest:
            return None
        try:
            verdict = json.loads(row[1])
        except ValueError:
            return None
        return verdict if isinstance(verdict, dict) else None

    def month_put(self, slot: str, digest: str, verdict: dict) -> None:
        row = (digest, json.dumps(verdict, ensure_ascii=False, separators=(",", ":")))
        with self._lock:
            self._pending_months[slot] = row
            if len(self._pending_months) >= FLUSH_EVERY:
                self._write()

    # -- writing ----------------------------------------------------------------------------------

    def _write(self) -> None:
        """Write the buffered rows (the lock is held). A row given for the same identity keeps what
        the stored row knew that this one does not say; another identity replaces it whole."""
        files, months = self._pending, self._pending_months
        self._pending, self._pending_months = {}, {}
        if self._db is None or not (files or months):
            return
        try:
            if files:
                self._db.executemany(
                    "INSERT INTO files (path, ident, sha256, header, full, full_schema) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(path) DO UPDATE SET"
                    " sha256 = CASE WHEN excluded.sha256 IS NOT NULL THEN excluded.sha256"
                    "   WHEN files.ident = excluded.ident THEN files.sha256 END,"
                    " header = CASE WHEN excluded.header IS NOT NULL THEN excluded.header"
                    "   WHEN files.ident = excluded.ident THEN files.header END,"
                    " full_schema = CASE WHEN excluded.full IS NOT NULL THEN excluded.full_schema"
                    "   WHEN files.ident = excluded.ident THEN files.full_schema END,"
                    " full = CASE WHEN excluded.full IS NOT NULL THEN excluded.full"
                    "   WHEN files.ident = excluded.ident THEN files.full END,"
                    " ident = excluded.ident",
                    [(p, *row) for p, row in files.items()])
            if months:
                self._db.executemany("INSERT OR REPLACE INTO months (slot, digest, verdict) VALUES (?, ?, ?)",
                                     [(s, *row) for s, row in months.items()])
            self._db.commit()
        except sqlite3.Error:
            try:
                self._db.rollback()
            except sqlite3.Error:
                pass

    def flush(self) -> None:
        with self._lock:
            self._write()

    def close(self) -> None:
        with self._lock:
            self._write()
            self._close_db()


def _pick(sha256, header, full, full_schema, field: str, schema_id: str):
    """The raw (still JSON) value of one field of a row, or None."""
    if field == "sha256":
        return sha256
    if field == "header":
        return header
    return full if full is not None and full_schema == schema_id else None
