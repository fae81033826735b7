"""Results per file, keyed by the file's identity, so looking again at unchanged months is free.

Lives in the user's data directory (never beside the ledgers). Any change of size, mtime,
ctime or inode makes an entry stale. Bump VERSION whenever what a read produces changes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

VERSION = "3"


def identity(st: os.stat_result) -> str:
    # Windows' directory listing reports st_ino as 0 while os.stat fills it: leave it out there,
    # or scan and verify would each see the other's entries as stale
    ino = 0 if os.name == "nt" else st.st_ino
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{ino}"


class FileCache:
    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._rows: dict[str, tuple] | None = None
        self._pending: list[tuple] = []
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
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, ident TEXT NOT NULL,"
                    " sha256 TEXT, header TEXT, full TEXT, full_schema TEXT)")
                self._db.commit()
            except sqlite3.Error:
                self._db = None  # a broken cache must never stop a backup: work uncached

    def _load(self) -> dict[str, tuple]:
        if self._rows is None:
            self._rows = {}
            if self._db is not None:
                for row in self._db.execute("SELECT path, ident, sha256, header, full, full_schema FROM files"):
                    self._rows[row[0]] = row[1:]
        return self._rows

    def get(self, path: Path | str, ident: str, field: str, schema_id: str = ""):
        row = self._load().get(str(path))
        if row is None or row[0] != ident:
            return None
        if field == "sha256":
            return row[1]
        if field == "header":
            return json.loads(row[2]) if row[2] else None
        if field == "full":
            return json.loads(row[3]) if row[3] and row[4] == schema_id else None
        raise KeyError(field)

    def put(self, path: Path | str, ident: str, *, sha256=None, header=None, full=None, schema_id: str = "") -> None:
        with self._lock:
            rows = self._load()
            old = rows.get(str(path))
            if old is None or old[0] != ident:
                old = (ident, None, None, None, None)
            row = (ident,
                   sha256 if sha256 is not None else old[1],
                   json.dumps(header, ensure_ascii=False) if header is not None else old[2],
                   json.dumps(full, ensure_ascii=False) if full is not None else old[3],
                   schema_id if full is not None else old[4])
            rows[str(path)] = row
            self._pending.append((str(path), *row))

    def forget(self, paths) -> None:
        """Drop what is known of these files (their bytes were found to differ from a verdict)."""
        with self._lock:
            rows = self._load()
            gone = [str(p) for p in paths]
            for p in gone:
                rows.pop(p, None)
            self._pending = [r for r in self._pending if r[0] not in gone]
            if self._db is not None:
                try:
                    self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
                    self._db.commit()
                except sqlite3.Error:
                    pass

    def flush(self) -> None:
        with self._lock:
            if self._db is None or not self._pending:
                self._pending.clear()
                return
            try:
                self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", self._pending)
                self._db.commit()
            except sqlite3.Error:
                pass
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None
