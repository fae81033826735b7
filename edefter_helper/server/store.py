"""The storage server's state: SQLite (WAL) for records, a plain folder tree for package bytes.

Layout of the data directory:
    users.sqlite3                                  users and the VKN/TCKNs each may use (back it up)
    store.sqlite3                                  the package index: rebuildable from the two trees below
    packages/<vkn>/<branch>/<period>/<sha256>.zip  package bytes (read-only once stored)
    records/<vkn>/<branch>/<period>/<sha256>.json  each package's receipt, user, times and state
    quarantine/<time>/...                          files the server did not recognise: moved, never deleted
    admin.log                                      JSON lines: re-indexing, quarantine, deletions
    tmp/                                           uploads in progress, verification work dirs

A package file only ever appears under packages/ by an atomic rename of a complete, fsynced
upload, and a month only becomes "stored" after the background check re-read that file.

The server never deletes a package on its own. A package file the index does not know (a lost,
damaged or older store.sqlite3) is indexed again from the zip's own manifest.json and its record;
anything that is not a package of ours is moved to quarantine/. The only deletion is
`Store.admin_delete` (the `edefter server delete` command), logged before it happens.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from werkzeug.security import generate_password_hash

from edefter_helper.engine.model import MonthKey
from edefter_helper.fsutil import atomic_write
from edefter_helper.fsutil import fsync_dir as _fsync_dir
from edefter_helper.server.keys import month_key, valid_sha256, valid_vkn

log = logging.getLogger("edefter_helper.server")

ACCEPTED, STORED, REJECTED, MISSING = "accepted", "stored", "rejected", "missing"
UPLOAD, REINDEX = "upload", "reindex"  # where a package row came from
RECORD_FORMAT = "edefter-yedekleme-kayit/1"

_USERS_SCHEMA = """
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
"""

_INDEX_SCHEMA = """
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
    stored_at TEXT,
    source TEXT NOT NULL DEFAULT 'upload'
);
-- a month's rows, for the status queries (the partial index below serves live rows only)
CREATE INDEX IF NOT EXISTS packages_month ON packages (vkn, branch, period);
-- a period is stored once: at most one live (accepted or stored) package per month
CREATE UNIQUE INDEX IF NOT EXISTS one_live_package
    ON packages (vkn, branch, period) WHERE state IN ('accepted', 'stored');
-- the administrator's deletions; a stored row can only go once its deletion is written here
CREATE TABLE IF NOT EXISTS deletions (
    id INTEGER PRIMARY KEY,
    receipt TEXT NOT NULL,
    vkn TEXT NOT NULL,
    branch TEXT NOT NULL,
    period TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL,
    path TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS keep_deletion_log BEFORE DELETE ON deletions
    BEGIN SELECT RAISE(ABORT, 'the deletion log is kept'); END;
CREATE TRIGGER IF NOT EXISTS keep_deletion_log_rows BEFORE UPDATE ON deletions
    BEGIN SELECT RAISE(ABORT, 'the deletion log is kept'); END;
-- stored packages are never deleted (but by the logged admin command) nor changed back
CREATE TRIGGER IF NOT EXISTS keep_stored_packages BEFORE DELETE ON packages
    WHEN OLD.state = 'stored' AND NOT EXISTS (SELECT 1 FROM deletions WHERE receipt = OLD.receipt)
    BEGIN SELECT RAISE(ABORT, 'stored packages are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS keep_stored_state BEFORE UPDATE OF state, sha256, path ON packages
    WHEN OLD.state = 'stored'
    BEGIN SELECT RAISE(ABORT, 'stored packages are never changed'); END;
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _epoch(text) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _whole(rec) -> bool:
    """The stored file still hashes to the package's sha256 (read whole: only when a client sends the
    same package again, i.e. it has just uploaded as many bytes)."""
    from edefter_helper.fsutil import sha256_file

    try:
        return rec.path.stat().st_size == rec.size and sha256_file(rec.path) == rec.sha256
    except OSError:
        return False


def new_receipt() -> str:
    return "EDY-" + uuid.uuid4().hex[:20].upper()


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
    source: str = UPLOAD

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


class _Unusable(Exception):
    """A file under packages/ that cannot be indexed; the Turkish reason goes to the log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ReindexReport:
    """What a re-indexing pass did; every entry names a path relative to the data directory."""

    indexed: list[dict] = field(default_factory=list)  # {path, vkn, branch, period, state, receipt}
    moved: list[dict] = field(default_factory=list)  # {path, to}
    quarantined: list[dict] = field(default_factory=list)  # {path, to, reason}
    missing: list[dict] = field(default_factory=list)  # live rows whose file is gone {path, receipt}

    def counts(self) -> dict:
        return {"indexed": len(self.indexed), "moved": len(self.moved),
                "quarantined": len(self.quarantined), "missing": len(self.missing)}

    def as_json(self) -> dict:
        return {"indexed": self.indexed, "moved": self.moved, "quarantined": self.quarantined,
                "missing": self.missing}


@dataclass
class _Found:
    path: Path
    key: MonthKey
    sha256: str
    record: dict | None
    stored: bool  # evidence that the package had passed the checks before
    mtime: float


class Store:
    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.packages_dir = self.data_dir / "packages"
        self.records_dir = self.data_dir / "records"
        self.quarantine_dir = self.data_dir / "quarantine"
        self.tmp_dir = self.data_dir / "tmp"
        for folder in (self.data_dir, self.packages_dir, self.records_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "store.sqlite3"
        self.users_path = self.data_dir / "users.sqlite3"
        self.log_path = self.data_dir / "admin.log"
        self._lock = threading.RLock()  # serialises the check-then-insert of an upload, reindex, deletion
        self._log_lock = threading.Lock()
        self._local = threading.local()
        self._open_index()
        with self._users() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_USERS_SCHEMA)
        self._move_users_out_of_the_index()

    # ---- connections -------------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")  # a 'stored' answer must survive a power cut
        return db

    @contextlib.contextmanager
    def _conn(self, attr: str, path: Path):
        # one connection per thread (waitress' and the checker's pools are fixed): opening one per
        # request cost more than the request
        db = getattr(self._local, attr, None)
        if db is None:
            db = self._open(path)
            setattr(self._local, attr, db)
        try:
            yield db
        finally:
            if db.in_transaction:  # a failed block must not leave its transaction to the next one
                db.execute("ROLLBACK")

    def _connect(self):
        return self._conn("db", self.db_path)

    def _users(self):
        return self._conn("udb", self.users_path)

    def _open_index(self) -> None:
        """Open store.sqlite3, migrating an older one; an unreadable one is set aside, not lost."""
        if not self.db_path.exists():
            # a WAL or shared-memory file without its database belongs to a database that is gone:
            # SQLite would replay it into the new, empty one
            for extra in ("-wal", "-shm", "-journal"):
                stale = Path(str(self.db_path) + extra)
                if stale.exists():
                    self._quarantine(stale, "veritabanı olmadan kalmış SQLite yan dosyası")
        for attempt in (1, 2):
            try:
                with self._connect() as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    self._migrate(db)
                    db.executescript(_INDEX_SCHEMA)
                return
            except sqlite3.DatabaseError as exc:
                db = getattr(self._local, "db", None)
                if db is not None:
                    db.close()
                    self._local.db = None
                if attempt == 2 or isinstance(exc, sqlite3.OperationalError):
                    raise
                for extra in ("", "-wal", "-shm", "-journal"):
                    damaged = Path(str(self.db_path) + extra)
                    if damaged.exists():
                        self._quarantine(damaged, f"okunamayan dizin veritabanı ({exc}); yeniden kuruluyor")

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        tables = {r["name"] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "packages" in tables:
            columns = {r["name"] for r in db.execute("PRAGMA table_info(packages)")}
            if "source" not in columns:
                db.execute("ALTER TABLE packages ADD COLUMN source TEXT NOT NULL DEFAULT 'upload'")
        # the first version's trigger allowed no deletion at all, not even the logged one
        db.execute("DROP TRIGGER IF EXISTS keep_stored_rows")

    def _move_users_out_of_the_index(self) -> None:
        """Users lived in store.sqlite3 before it became a rebuildable index: move them once."""
        with self._connect() as db:
            tables = {r["name"] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "users" not in tables:
                return
            users = [tuple(r) for r in db.execute("SELECT name, pw_hash, created_at FROM users")]
            vkns = [tuple(r) for r in db.execute("SELECT name, vkn FROM user_vkns")] if "user_vkns" in tables else []
        with self._users() as udb:
            udb.execute("BEGIN IMMEDIATE")
            udb.executemany("INSERT OR IGNORE INTO users(name, pw_hash, created_at) VALUES (?, ?, ?)", users)
            udb.executemany("INSERT OR IGNORE INTO user_vkns(name, vkn) VALUES (?, ?)", vkns)
            udb.execute("COMMIT")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DROP TABLE IF EXISTS user_vkns")
            db.execute("DROP TABLE IF EXISTS users")
            db.execute("COMMIT")
        log.info("Kullanıcılar users.sqlite3'e taşındı (%d kullanıcı).", len(users))

    # ---- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, vkns) -> None:
        """Create or replace a user; vkns replaces the list of VKN/TCKNs the user may use."""
        vkns = sorted(set(vkns))
        if not name or not password:
            raise ValueError("Kullanıcı adı ve şifre boş olamaz.")
        bad = [v for v in vkns if not valid_vkn(v)]
        if bad:
            raise ValueError(f"Geçersiz VKN/TCKN: {', '.join(bad)} (10 ya da 11 rakam, 0-9).")
        pw_hash = generate_password_hash(password)
        with self._users() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO users(name, pw_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET pw_hash = excluded.pw_hash",
                (name, pw_hash, _now()),
            )
            db.execute("DELETE FROM user_vkns WHERE name = ?", (name,))
            db.executemany("INSERT INTO user_vkns(name, vkn) VALUES (?, ?)", [(name, v) for v in vkns])
            db.execute("COMMIT")

    def user_record(self, name: str) -> tuple[str | None, set[str]]:
        """(password hash or None, allowed VKNs). The same two queries whether or not the user exists."""
        with self._users() as db:
            row = db.execute("SELECT pw_hash FROM users WHERE name = ?", (name,)).fetchone()
            vkns = {r["vkn"] for r in db.execute("SELECT vkn FROM user_vkns WHERE name = ?", (name,))}
        return (row["pw_hash"] if row else None), vkns

    def get_user(self, name: str) -> tuple[str, set[str]] | None:
        """(password hash, allowed VKNs) or None."""
        pw_hash, vkns = self.user_record(name)
        return None if pw_hash is None else (pw_hash, vkns)

    def list_users(self) -> list[dict]:
        with self._users() as db:
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
            source=row["source"],
        )

    def month(self, key: MonthKey) -> PackageRecord | None:
        """The live package of the month, else the latest rejected one, else None."""
        with self._connect() as db:
            row = db.execute(self._MONTH_SQL, (key.vkn, key.branch, key.period)).fetchone()
        return self._record(row) if row else None

    _MONTH_SQL = ("SELECT * FROM packages WHERE vkn = ? AND branch = ? AND period = ? "
                  "ORDER BY state IN ('accepted', 'stored') DESC, id DESC LIMIT 1")

    def months_many(self, keys: list[MonthKey]) -> dict[MonthKey, PackageRecord | None]:
        """month() of each key, on one connection in one read (packages_month index)."""
        out: dict[MonthKey, PackageRecord | None] = {}
        with self._connect() as db:
            db.execute("BEGIN")
            for key in keys:
                row = db.execute(self._MONTH_SQL, (key.vkn, key.branch, key.period)).fetchone()
                out[key] = self._record(row) if row else None
            db.execute("COMMIT")
        return out

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

    def _live_records(self) -> list[PackageRecord]:
        with self._connect() as db:
            return [self._record(r) for r in db.execute(
                "SELECT * FROM packages WHERE state IN ('accepted', 'stored') ORDER BY id")]

    def new_upload_file(self) -> Path:
        return self.tmp_dir / f"upload-{uuid.uuid4().hex}.part"

    @staticmethod
    def package_rel(key: MonthKey, sha256: str) -> Path:
        return Path("packages", key.vkn, key.branch, key.period, f"{sha256}.zip")

    def record_path(self, key: MonthKey, sha256: str) -> Path:
        return self.records_dir / key.vkn / key.branch / key.period / f"{sha256}.json"

    def _write_record(self, rec: PackageRecord) -> None:
        """The package's receipt and history beside the index, so a lost index can be rebuilt."""
        dest = self.record_path(rec.key, rec.sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        body = {"format": RECORD_FORMAT, "receipt": rec.receipt, "vkn": rec.key.vkn, "branch": rec.key.branch,
                "period": rec.key.period, "sha256": rec.sha256, "size": rec.size, "state": rec.state,
                "user": rec.user, "description": rec.description, "received_at": rec.received_at,
                "stored_at": rec.stored_at}
        with atomic_write(dest) as out:
            out.write(json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"))

    def _read_record(self, key: MonthKey, sha256: str) -> dict | None:
        path = self.record_path(key, sha256)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("format") != RECORD_FORMAT:
            return None
        if (body.get("vkn"), body.get("branch"), body.get("period"), body.get("sha256")) != (
                key.vkn, key.branch, key.period, sha256):
            return None
        receipt = body.get("receipt")
        if not (isinstance(receipt, str) and receipt.startswith("EDY-") and receipt[4:].isalnum()
                and receipt.isascii() and len(receipt) <= 64):
            return None
        return body

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
            rel = self.package_rel(key, sha256)
            final = self.data_dir / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # left by a crash between rename and insert: same name = same bytes
                with contextlib.suppress(OSError):
                    os.chmod(final, stat.S_IWRITE | stat.S_IREAD)
            os.replace(part, final)
            _fsync_dir(final.parent)
            rec = PackageRecord(new_receipt(), key, sha256, size, ACCEPTED, "", description, user, final,
                                _now(), None, UPLOAD)
            try:
                with self._connect() as db:
                    db.execute(
                        "INSERT INTO packages(receipt, vkn, branch, period, sha256, size, state, description,"
                        " user, path, received_at, source) VALUES (?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?, ?, ?)",
                        (rec.receipt, key.vkn, key.branch, key.period, sha256, size, description, user,
                         rel.as_posix(), rec.received_at, UPLOAD),
                    )
            except sqlite3.IntegrityError:
                # `edefter server reindex`, run beside this server, indexed the file first
                existing = self.live(key)
                if existing is None:
                    raise
                self._write_record(existing)
                if existing.sha256 == sha256:
                    return existing, False
                raise ConflictError(existing) from None
        # the record (for rebuilding a lost index) after the lock, still before the answer: uploads
        # of other months no longer queue behind its two fsyncs (they run side by side). A crash
        # before it leaves an 'accepted' row, checked again at start, whose stored record comes then.
        # The row is in: a failed record write (disk full) must not fail the upload, whose check
        # would then wait for a restart; the check's 'stored' writes the record again.
        try:
            self._write_record(rec)
        except OSError as exc:
            log.warning("Paket kaydı yazılamadı (%s %s): %s; doğrulamadan sonra yeniden denenecek.",
                        rec.receipt, key, exc)
        return self.by_receipt(rec.receipt), True

    @staticmethod
    def lost(rec: PackageRecord | None) -> bool:
        """A stored package whose file is no longer on disk (deleted or lost behind the server's back)."""
        return rec is not None and rec.state == STORED and not rec.path.is_file()

    def restore_damaged(self, rec: PackageRecord, part: Path, user: str) -> PackageRecord:
        """Put back the bytes of a stored package whose file was lost or damaged at rest (its bytes no
        longer hash to its sha256), from a complete upload whose sha256 the caller checked equals the
        stored one. A whole file is left as it is. Logged; nothing else changes."""
        # read the stored file (up to the size limit) before taking the store's lock, which every upload
        # and check needs: a file at rest is only ever replaced here, by the same checked bytes
        whole = rec.path.is_file() and _whole(rec)
        with self._lock:
            current = self.by_receipt(rec.receipt)
            if current is None or current.state != STORED or (whole and current.path.is_file()):
                part.unlink(missing_ok=True)
                return current or rec
            current.path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, current.path)
            _fsync_dir(current.path.parent)
            with contextlib.suppress(OSError):
                os.chmod(current.path, stat.S_IREAD | stat.S_IRGRP)
            if not self.record_path(current.key, current.sha256).exists():
                self._write_record(current)
            self.admin_log("restore-file", receipt=current.receipt, path=self._rel(current.path),
                           sha256=current.sha256, user=user)
            log.warning("Kayıp ya da bozuk paket dosyası aynı baytlarla geri kondu: %s %s", current.key,
                        current.receipt)
            return current

    def mark_stored(self, receipt: str) -> None:
        with self._lock:
            rec = self.by_receipt(receipt)
            if rec is None or rec.state != ACCEPTED:
                return
            rec.state, rec.stored_at = STORED, _now()
            with contextlib.suppress(OSError):
                os.chmod(rec.path, stat.S_IREAD | stat.S_IRGRP)  # guard against accidental overwrite
            with self._connect() as db:
                cur = db.execute(
                    "UPDATE packages SET state = 'stored', message = '', stored_at = ? "
                    "WHERE receipt = ? AND state = 'accepted'",
                    (rec.stored_at, receipt),
                )
        # the durable row says stored (the answer clients get); the record follows, outside the lock so
        # uploads do not wait for its fsyncs. A crash in between leaves an 'accepted' record: only a
        # rebuild of a lost index reads it, and it then checks the package again.
        if cur.rowcount:
            self._write_record(rec)

    def mark_rejected(self, receipt: str, message: str) -> None:
        rec = self.by_receipt(receipt)
        if rec is None or rec.state != ACCEPTED:
            return
        with self._lock:  # so a re-upload of the same bytes cannot land on the file we drop
            record = self.record_path(rec.key, rec.sha256)
            if rec.source == REINDEX:
                # found on disk, not sent to us: it may have been stored once. Keep the bytes.
                stamp = self._stamp()
                for item in (rec.path, record):
                    if item.exists():
                        self._quarantine(item, f"yeniden dizinlenen paket denetimi geçemedi: {message}", stamp)
            else:
                # a refused upload is not kept: it never was a stored copy. Dropped before the
                # update: a crash in between leaves an 'accepted' row whose re-check finds no file.
                rec.path.unlink(missing_ok=True)
                record.unlink(missing_ok=True)
            with self._connect() as db:
                db.execute(
                    "UPDATE packages SET state = 'rejected', message = ? WHERE receipt = ? AND state = 'accepted'",
                    (message, receipt),
                )

    def pending(self) -> list[str]:
        with self._connect() as db:
            return [r["receipt"] for r in db.execute(
                "SELECT receipt FROM packages WHERE state = 'accepted' ORDER BY id")]

    # ---- the administrator's log, quarantine and deletion ------------------------------------

    def admin_log(self, event: str, **fields) -> None:
        """One JSON line in DATA/admin.log, fsynced before the act it announces."""
        line = json.dumps({"at": _now(), "event": event, **fields}, ensure_ascii=False)
        with self._log_lock, open(self.log_path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    @staticmethod
    def _stamp() -> str:
        return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)

    def _rel(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.data_dir).as_posix()
        except ValueError:
            return str(path)

    def _quarantine(self, path: Path, reason: str, stamp: str | None = None) -> dict:
        """Move a file (or link) under DATA/quarantine/<stamp>/, keeping its relative path. Never deletes."""
        rel = self._rel(path)
        dest = self.quarantine_dir / (stamp or self._stamp()) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        while dest.exists() or dest.is_symlink():
            n += 1
            dest = dest.with_name(f"{Path(rel).name}.{n}")
        os.replace(path, dest)
        entry = {"path": rel, "to": self._rel(dest), "reason": reason}
        self.admin_log("quarantine", **entry)
        log.warning("Karantinaya alındı: %s -> %s (%s)", rel, entry["to"], reason)
        return entry

    def deletions(self) -> list[dict]:
        with self._connect() as db:
            return [dict(r) for r in db.execute("SELECT * FROM deletions ORDER BY id")]

    def admin_delete(self, key: MonthKey, reason: str = "", operator: str | None = None) -> PackageRecord:
        """The one way a package leaves the store: written to admin.log and the deletions table first.

        Raises LookupError when the month holds no live package.
        """
        if operator is None:
            try:
                operator = getpass.getuser()
            except Exception:  # noqa: BLE001 - no login name on this system
                operator = "?"
        with self._lock:
            rec = self.live(key)
            if rec is None:
                raise LookupError(str(key))
            rel = self._rel(rec.path)
            when = datetime.now(timezone.utc)
            fields = {"receipt": rec.receipt, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                      "sha256": rec.sha256, "size": rec.size, "state": rec.state, "path": rel,
                      "operator": operator, "reason": reason, "deleted_at": when.isoformat()}
            self.admin_log("delete", **fields)
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "INSERT INTO deletions(receipt, vkn, branch, period, sha256, size, state, path, deleted_at,"
                    " operator, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rec.receipt, key.vkn, key.branch, key.period, rec.sha256, rec.size, rec.state, rel,
                     when.isoformat(), operator, reason))
                db.execute("DELETE FROM packages WHERE receipt = ?", (rec.receipt,))
                db.execute("COMMIT")
            # after the commit: a crash here leaves the file, which the next re-indexing recognises
            # from the log as deleted and moves to quarantine/ rather than serving it again
            for item in (rec.path, self.record_path(key, rec.sha256)):
                with contextlib.suppress(OSError):
                    os.chmod(item, stat.S_IWRITE | stat.S_IREAD)  # stored packages are read-only
                item.unlink(missing_ok=True)
            log.warning("Yönetici sildi: %s %s (%s): %s", key, rec.receipt, operator, reason)
            return rec

    def _deleted(self) -> dict[str, list[tuple[str, float]]]:
        """Package paths the administrator deleted -> [(receipt, when)], from the table and admin.log."""
        out: dict[str, list[tuple[str, float]]] = {}
        for row in self.deletions():
            out.setdefault(row["path"], []).append((row["receipt"], _epoch(row["deleted_at"])))
        with contextlib.suppress(OSError):
            with open(self.log_path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and entry.get("event") == "delete" and isinstance(
                            entry.get("path"), str):
                        when = _epoch(entry.get("deleted_at")) or _epoch(entry.get("at"))
                        out.setdefault(entry["path"], []).append((str(entry.get("receipt")), when))
        return out

    # ---- recovery and re-indexing -------------------------------------------------------------

    def recover(self, limits=None) -> dict:
        """After a (possibly unclean) stop: drop half-written uploads, index what the index lacks.

        DATA/tmp/ holds only this server's scratch (uploads never acknowledged, check folders) and
        is emptied. Package files are never removed: see reindex().
        """
        removed_tmp = 0
        for item in self.tmp_dir.iterdir():
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed_tmp += 1
        report = self.reindex(limits)
        return {"tmp": removed_tmp, **report.counts(), "pending": len(self.pending()), "report": report}

    def _walk(self, root: Path, report: ReindexReport, stamp: str):
        """Every file under root; links and special files go to quarantine (never followed)."""
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in list(dirs):
                path = Path(folder, name)
                if path.is_symlink():
                    dirs.remove(name)
                    report.quarantined.append(self._quarantine(path, "bağlantı (symlink); paket değil", stamp))
            for name in sorted(files):
                path = Path(folder, name)
                if path.is_symlink() or not path.is_file():
                    report.quarantined.append(self._quarantine(path, "bağlantı ya da özel dosya; paket değil", stamp))
                    continue
                yield path

    def _inspect(self, path: Path, limits) -> tuple[MonthKey, str]:
        """(month, sha256) of a package file, from its own manifest.json; raises _Unusable."""
        from edefter_helper.server.checks import MANIFEST, PackageRejected, check_structure

        try:
            with zipfile.ZipFile(path) as zf:
                try:
                    info = zf.getinfo(MANIFEST)
                except KeyError:
                    raise _Unusable("zip içinde manifest.json yok") from None
                if info.file_size > limits.max_manifest:
                    raise _Unusable("manifest.json çok büyük")
                manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
                key = month_key(manifest.get("vkn"), manifest.get("branch"), manifest.get("period")) \
                    if isinstance(manifest, dict) else None
                if key is None:
                    raise _Unusable("manifest.json geçerli bir ay (VKN, şube, dönem) bildirmiyor")
                check_structure(zf, key, limits)
        except PackageRejected as exc:
            raise _Unusable(exc.message) from None
        except _Unusable:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, RuntimeError, EOFError) as exc:
            raise _Unusable(f"paket olarak okunamadı ({type(exc).__name__}: {exc})") from None
        return key, sha256_file(path)

    def reindex(self, limits=None) -> ReindexReport:
        """Index every package file the index does not know, from the zip's own manifest.json.

        A file that is a package of ours (a zip whose manifest.json names a month its members
        belong to) gets its row back, with the receipt and history from records/ when present;
        it counts as stored when its record says so (or, for a package without a record, when it
        is read-only as stored packages are), otherwise it is checked again. Everything else under
        packages/ and records/ is moved to quarantine/, with the reason in admin.log. Nothing is
        deleted. Live rows whose file is gone are reported, not changed.
        """
        from edefter_helper.server.checks import Limits

        limits = limits or Limits()
        report = ReindexReport()
        stamp = self._stamp()
        with self._lock:
            live = {rec.path: rec for rec in self._live_records()}
            deleted = self._deleted()
            found: dict[MonthKey, list[_Found]] = {}
            for path in self._walk(self.packages_dir, report, stamp):
                if path in live:
                    continue
                try:
                    key, sha = self._inspect(path, limits)
                except _Unusable as exc:
                    report.quarantined.append(self._quarantine(path, exc.reason, stamp))
                    continue
                if valid_sha256(path.stem) and path.stem != sha:
                    report.quarantined.append(self._quarantine(
                        path, "içeriği adındaki SHA-256 özetiyle uyuşmuyor (dosya sonradan değişmiş)", stamp))
                    continue
                record = self._read_record(key, sha)
                if self._was_deleted(deleted.get(self.package_rel(key, sha).as_posix()), record, path):
                    report.quarantined.append(self._quarantine(
                        path, "yönetici bu paketi silmişti (admin.log); yeniden sunulmuyor", stamp))
                    continue
                st = path.stat()
                stored = (record["state"] == STORED) if record and record.get("state") in (ACCEPTED, STORED) \
                    else not (st.st_mode & stat.S_IWUSR)
                found.setdefault(key, []).append(_Found(path, key, sha, record, stored, st.st_mtime))
            for key, items in sorted(found.items(), key=lambda kv: str(kv[0])):
                self._index_month(key, items, report, stamp)
            self._sweep_records(report, stamp)
            report.missing = [{"path": self._rel(rec.path), "receipt": rec.receipt}
                              for rec in live.values() if not rec.path.is_file()]
        for item in report.missing:
            log.error("Dizindeki paketin dosyası yok: %s (makbuz %s)", item["path"], item["receipt"])
        if report.indexed or report.quarantined or report.moved:
            self.admin_log("reindex", **report.counts())
        return report

    @staticmethod
    def _was_deleted(deletions, record: dict | None, path: Path) -> bool:
        if not deletions:
            return False
        receipts = {r for r, _ in deletions}
        if record is not None:
            return record["receipt"] in receipts  # a later upload of the same bytes has its own receipt
        return path.stat().st_mtime <= max(t for _, t in deletions)

    def _index_month(self, key: MonthKey, items: list[_Found], report: ReindexReport, stamp: str) -> None:
        # the same bytes at several places: keep the copy at its proper place, or the first
        by_sha: dict[str, list[_Found]] = {}
        for item in items:
            by_sha.setdefault(item.sha256, []).append(item)
        unique = []
        for sha, copies in by_sha.items():
            proper = self.data_dir / self.package_rel(key, sha)
            copies.sort(key=lambda f: (f.path != proper, f.mtime))
            unique.append(copies[0])
            for extra in copies[1:]:
                report.quarantined.append(self._quarantine(extra.path, "aynı paketin ikinci kopyası", stamp))
        current = self.live(key)
        if current is not None:
            for item in unique:
                why = ("aynı paket bu ay için zaten kayıtlı (ikinci kopya)" if item.sha256 == current.sha256
                       else f"bu ay için başka bir paket kayıtlı (makbuz {current.receipt})")
                report.quarantined.append(self._quarantine(item.path, why, stamp))
            return
        # one live package per month: the one that had been stored, with a record, the oldest
        unique.sort(key=lambda f: (not f.stored, f.record is None, f.mtime))
        chosen, others = unique[0], unique[1:]
        canonical = self.data_dir / self.package_rel(key, chosen.sha256)
        if chosen.path != canonical:
            if canonical.exists():
                report.quarantined.append(self._quarantine(chosen.path, "yerinde aynı adlı başka bir dosya var", stamp))
                return
            canonical.parent.mkdir(parents=True, exist_ok=True)
            os.replace(chosen.path, canonical)
            _fsync_dir(canonical.parent)
            report.moved.append({"path": self._rel(chosen.path), "to": self._rel(canonical)})
            self.admin_log("move", path=self._rel(chosen.path), to=self._rel(canonical))
        rec_body = chosen.record or {}
        receipt = rec_body.get("receipt") or new_receipt()
        if self.by_receipt(receipt) is not None:
            receipt = new_receipt()
        state = STORED if chosen.stored else ACCEPTED
        received = rec_body.get("received_at") if isinstance(rec_body.get("received_at"), str) else _iso(chosen.mtime)
        stored_at = None
        if state == STORED:
            stored_at = rec_body.get("stored_at") if isinstance(rec_body.get("stored_at"), str) else _iso(chosen.mtime)
        rec = PackageRecord(receipt, key, chosen.sha256, canonical.stat().st_size, state, "",
                            str(rec_body.get("description") or "")[:500], str(rec_body.get("user") or ""),
                            canonical, received, stored_at, REINDEX)
        with self._connect() as db:
            db.execute(
                "INSERT INTO packages(receipt, vkn, branch, period, sha256, size, state, description, user, path,"
                " received_at, stored_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rec.receipt, key.vkn, key.branch, key.period, rec.sha256, rec.size, state, rec.description,
                 rec.user, self.package_rel(key, rec.sha256).as_posix(), rec.received_at, stored_at, REINDEX))
        if chosen.record is None or chosen.record.get("receipt") != receipt:
            self._write_record(rec)
        report.indexed.append({"path": self._rel(canonical), "vkn": key.vkn, "branch": key.branch,
                               "period": key.period, "state": state, "receipt": receipt})
        log.info("Yeniden dizinlendi: %s %s (%s)", key, receipt, state)
        for item in others:
            report.quarantined.append(self._quarantine(
                item.path, f"bu ay için başka bir paket dizine alındı (makbuz {receipt})", stamp))

    def _sweep_records(self, report: ReindexReport, stamp: str) -> None:
        """Records whose package is not in the store, and anything else under records/, to quarantine."""
        with self._connect() as db:
            live = {r["path"] for r in db.execute("SELECT path FROM packages WHERE state IN ('accepted', 'stored')")}
        for path in self._walk(self.records_dir, report, stamp):
            parts = path.relative_to(self.records_dir).parts
            ok = (len(parts) == 4 and parts[3].endswith(".json")
                  and month_key(*parts[:3]) is not None and valid_sha256(parts[3][:-5]))
            if not ok:
                report.quarantined.append(self._quarantine(path, "tanınmayan dosya (kayıt değil)", stamp))
            elif f"packages/{parts[0]}/{parts[1]}/{parts[2]}/{parts[3][:-5]}.zip" not in live:
                report.quarantined.append(self._quarantine(path, "paketi saklanmayan kayıt", stamp))


from edefter_helper.fsutil import sha256_file  # noqa: E402,F401 - re-exported for the server's callers
