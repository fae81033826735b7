"""The storage server's state: SQLite (WAL) for records, a plain folder tree for package bytes.

Layout of the data directory:
    store.sqlite3                                  users, allowed VKNs, packages
    packages/<vkn>/<branch>/<period>/<sha256>.zip  package bytes (read-only once stored)
    tmp/                                           uploads in progress, verification work dirs

A package file only ever appears under packages/ by an atomic rename of a complete, fsynced
upload, and a month only becomes "stored" after the background check re-read that file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import valid_identifier

ACCEPTED, STORED, REJECTED, MISSING = "accepted", "stored", "rejected", "missing"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    pw_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_vkns (
    name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    vkn TEXT NOT NULL,
    PRIMARY KEY (name, vkn)
);
CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY,
    receipt TEXT NOT NULL UNIQUE,
    vkn TEXT NOT NULL,
    branch TEXT NOT NULL,
    period TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('accepted', 'stored', 'rejected')),
    message TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL,
    path TEXT NOT NULL,
    received_at TEXT NOT NULL,
    stored_at TEXT
);
-- a period is stored once: at most one live (accepted or stored) package per month
CREATE UNIQUE INDEX IF NOT EXISTS one_live_package
    ON packages (vkn, branch, period) WHERE state IN ('accepted', 'stored');
-- stored packages are never deleted nor changed back
CREATE TRIGGER IF NOT EXISTS keep_stored_rows BEFORE DELETE ON packages
    WHEN OLD.state = 'stored'
    BEGIN SELECT RAISE(ABORT, 'stored packages are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS keep_stored_state BEFORE UPDATE OF state, sha256, path ON packages
    WHEN OLD.state = 'stored'
    BEGIN SELECT RAISE(ABORT, 'stored packages are never changed'); END;
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


from edefter_helper.fsutil import fsync_dir as _fsync_dir  # noqa: E402


@dataclass
class PackageRecord:
    receipt: str
    key: MonthKey
    sha256: str
    size: int
    state: str
    message: str
    description: str
    user: str
    path: Path
    received_at: str
    stored_at: str | None

    def as_json(self) -> dict:
        return {
            "vkn": self.key.vkn,
            "branch": self.key.branch,
            "period": self.key.period,
            "state": self.state,
            "receipt": self.receipt,
            "sha256": self.sha256,
            "size": self.size,
            "message": self.message,
            "received_at": self.received_at,
            "stored_at": self.stored_at,
        }


class ConflictError(Exception):
    """A different package is already accepted or stored for the month."""

    def __init__(self, existing: PackageRecord):
        super().__init__(existing.receipt)
        self.existing = existing


class Store:
    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.packages_dir = self.data_dir / "packages"
        self.tmp_dir = self.data_dir / "tmp"
        for folder in (self.data_dir, self.packages_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "store.sqlite3"
        self._lock = threading.Lock()  # serialises the check-then-insert of an upload
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self):
        # one connection per thread (waitress' and the checker's pools are fixed): opening one per
        # request cost more than the request
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=FULL")  # a 'stored' answer must survive a power cut
            self._local.db = db
        try:
            yield db
        finally:
            if db.in_transaction:  # a failed block must not leave its transaction to the next one
                db.execute("ROLLBACK")

    # ---- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, vkns) -> None:
        """Create or replace a user; vkns replaces the list of VKN/TCKNs the user may use."""
        vkns = sorted(set(vkns))
        if not name or not password:
            raise ValueError("Kullanıcı adı ve parola boş olamaz.")
        bad = [v for v in vkns if not valid_identifier(v)]
        if bad:
            raise ValueError(f"Geçersiz VKN/TCKN: {', '.join(bad)}")
        pw_hash = generate_password_hash(password)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO users(name, pw_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET pw_hash = excluded.pw_hash",
                (name, pw_hash, _now()),
            )
            db.execute("DELETE FROM user_vkns WHERE name = ?", (name,))
            db.executemany("INSERT INTO user_vkns(name, vkn) VALUES (?, ?)", [(name, v) for v in vkns])
            db.execute("COMMIT")

    def get_user(self, name: str) -> tuple[str, set[str]] | None:
        """(password hash, allowed VKNs) or None."""
        with self._connect() as db:
            row = db.execute("SELECT pw_hash FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            return row["pw_hash"], {r["vkn"] for r in db.execute(
                "SELECT vkn FROM user_vkns WHERE name = ?", (name,))}

    def check_user(self, name: str, password: str) -> set[str] | None:
        """The user's allowed VKNs when the password is right, else None."""
        user = self.get_user(name)
        if user is None or not check_password_hash(user[0], password):
            return None
        return user[1]

    def list_users(self) -> list[dict]:
        with self._connect() as db:
            users = db.execute("SELECT name, created_at FROM users ORDER BY name").fetchall()
            return [
                {
                    "name": u["name"],
                    "created_at": u["created_at"],
                    "vkns": [r["vkn"] for r in db.execute(
                        "SELECT vkn FROM user_vkns WHERE name = ? ORDER BY vkn", (u["name"],))],
                }
                for u in users
            ]

    # ---- packages ----------------------------------------------------------------------------

    def _record(self, row) -> PackageRecord:
        return PackageRecord(
            receipt=row["receipt"],
            key=MonthKey(row["vkn"], row["branch"], row["period"]),
            sha256=row["sha256"],
            size=row["size"],
            state=row["state"],
            message=row["message"],
            description=row["description"],
            user=row["user"],
            path=self.data_dir / row["path"],
            received_at=row["received_at"],
            stored_at=row["stored_at"],
        )

    def month(self, key: MonthKey) -> PackageRecord | None:
        """The live package of the month, else the latest rejected one, else None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM packages WHERE vkn = ? AND branch = ? AND period = ? "
                "ORDER BY state IN ('accepted', 'stored') DESC, id DESC LIMIT 1",
                (key.vkn, key.branch, key.period),
            ).fetchone()
        return self._record(row) if row else None

    def by_receipt(self, receipt: str) -> PackageRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM packages WHERE receipt = ?", (receipt,)).fetchone()
        return self._record(row) if row else None

    def months_of(self, vkns) -> list[PackageRecord]:
        marks = ",".join("?" * len(vkns))
        if not vkns:
            return []
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM packages WHERE vkn IN ({marks}) ORDER BY vkn, branch, period, id", tuple(vkns)
            ).fetchall()
        latest: dict[tuple, PackageRecord] = {}
        for row in rows:
            rec = self._record(row)
            k = (rec.key.vkn, rec.key.branch, rec.key.period)
            old = latest.get(k)
            if old is None or rec.state != REJECTED or old.state == REJECTED:
                latest[k] = rec
        return list(latest.values())

    def live(self, key: MonthKey) -> PackageRecord | None:
        rec = self.month(key)
        return rec if rec and rec.state in (ACCEPTED, STORED) else None

    def new_upload_file(self) -> Path:
        return self.tmp_dir / f"upload-{uuid.uuid4().hex}.part"

    def commit_upload(self, key: MonthKey, part: Path, sha256: str, size: int, user: str,
                      description: str) -> tuple[PackageRecord, bool]:
        """Move a complete, fsynced upload into the store.

        Returns (record, created). Same sha256 as the live package -> (that record, False) and the
        upload is dropped; a different one -> ConflictError.
        """
        with self._lock:
            existing = self.live(key)
            if existing is not None:
                part.unlink(missing_ok=True)
                if existing.sha256 == sha256:
                    return existing, False
                raise ConflictError(existing)
            rel = Path("packages", key.vkn, key.branch, key.period, f"{sha256}.zip")
            final = self.data_dir / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # left by a crash between rename and insert: same name = same bytes
                with contextlib.suppress(OSError):
                    os.chmod(final, stat.S_IWRITE | stat.S_IREAD)
            os.replace(part, final)
            _fsync_dir(final.parent)
            receipt = "EDY-" + uuid.uuid4().hex[:20].upper()
            with self._connect() as db:
                db.execute(
                    "INSERT INTO packages(receipt, vkn, branch, period, sha256, size, state, description,"
                    " user, path, received_at) VALUES (?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?, ?)",
                    (receipt, key.vkn, key.branch, key.period, sha256, size, description, user,
                     rel.as_posix(), _now()),
                )
            return self.by_receipt(receipt), True

    def mark_stored(self, receipt: str) -> None:
        rec = self.by_receipt(receipt)
        with contextlib.suppress(OSError):
            os.chmod(rec.path, stat.S_IREAD | stat.S_IRGRP)  # guard against accidental overwrite
        with self._connect() as db:
            db.execute(
                "UPDATE packages SET state = 'stored', message = '', stored_at = ? "
                "WHERE receipt = ? AND state = 'accepted'",
                (_now(), receipt),
            )

    def mark_rejected(self, receipt: str, message: str) -> None:
        rec = self.by_receipt(receipt)
        if rec is None or rec.state != ACCEPTED:
            return
        with self._lock:  # so a re-upload of the same bytes cannot land on the file we drop
            # a refused package is not kept: it never was a stored copy. Dropped before the
            # update: a crash in between leaves an 'accepted' row whose re-check finds no file.
            rec.path.unlink(missing_ok=True)
            with self._connect() as db:
                db.execute(
                    "UPDATE packages SET state = 'rejected', message = ? WHERE receipt = ? AND state = 'accepted'",
                    (message, receipt),
                )

    def pending(self) -> list[str]:
        with self._connect() as db:
            return [r["receipt"] for r in db.execute(
                "SELECT receipt FROM packages WHERE state = 'accepted' ORDER BY id")]

    # ---- recovery ----------------------------------------------------------------------------

    def recover(self) -> dict:
        """After a (possibly unclean) stop: drop half-written uploads and orphan package files.

        Returns counts for the log. Files referenced by a live row are never touched.
        """
        removed_tmp = 0
        for item in self.tmp_dir.iterdir():
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed_tmp += 1
        with self._connect() as db:
            live = {r["path"] for r in db.execute(
                "SELECT path FROM packages WHERE state IN ('accepted', 'stored')")}
        removed_orphans = 0
        for file in self.packages_dir.rglob("*"):
            if file.is_file() and file.relative_to(self.data_dir).as_posix() not in live:
                with contextlib.suppress(OSError):
                    os.chmod(file, stat.S_IWRITE | stat.S_IREAD)
                    file.unlink()
                    removed_orphans += 1
        return {"tmp": removed_tmp, "orphans": removed_orphans, "pending": len(self.pending())}


from edefter_helper.fsutil import sha256_file  # noqa: E402,F401 - re-exported for the server's callers
