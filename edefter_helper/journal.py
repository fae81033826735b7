"""The journal: an SQLite record of every backup attempt, and the source of truth for statuses.

Workbooks and reports are views of it. Every attempt is written before the network is
touched (outcome NULL = under way) and closed in one transaction with the month's status, so
a run killed at any point leaves either the old status or the new one, never half of each;
an attempt left open is resolved by asking the target on the next run. WAL mode and a busy
timeout let two runs overlap. No secret is ever stored here.

Statuses are stored as stable English codes (status.CODES) and given back as the words users know;
journals written before codes (schema version 0) are migrated when opened.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vkn TEXT NOT NULL, branch TEXT NOT NULL, period TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,            -- verify | send | query
    package_sha256 TEXT,
    files TEXT,                      -- JSON [[name, size, sha256], ...]
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,                    -- a status code (status.CODES) or 'interrupted'; NULL while under way
    message TEXT,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS attempts_month ON attempts (vkn, branch, period, target);
CREATE TABLE IF NOT EXISTS months (
    vkn TEXT NOT NULL, branch TEXT NOT NULL, period TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,            -- a status code (status.CODES)
    message TEXT,
    package_sha256 TEXT,             -- the package last sent (or confirmed) for this month
    receipt TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (vkn, branch, period, target)
);
CREATE TABLE IF NOT EXISTS drills (  -- restore drills: a stored copy fetched back and verified
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vkn TEXT NOT NULL, branch TEXT NOT NULL, period TEXT NOT NULL,
    target TEXT NOT NULL,
    drilled_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    message TEXT
);
CREATE INDEX IF NOT EXISTS drills_month ON drills (vkn, branch, period, target);
CREATE TABLE IF NOT EXISTS local_findings (  -- the local check's findings Günlük has already listed
    vkn TEXT NOT NULL, branch TEXT NOT NULL, period TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (vkn, branch, period, name)
);
CREATE TABLE IF NOT EXISTS worm_probes (  -- does the target really keep a locked version? (targets.s3.probe)
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,            -- target identity (settings.target_identity)
    probed_at TEXT NOT NULL,
    worm INTEGER NOT NULL,
    detail TEXT
);
"""


def now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class MonthStatus:
    key: MonthKey
    target: str
    status: str
    message: str
    package_sha256: str
    receipt: str
    updated_at: str

    def as_json(self) -> dict:
        return {"vkn": self.key.vkn, "branch": self.key.branch, "period": self.key.period,
                "target": self.target, "status": self.status, "state": S.code(self.status), "message": self.message,
                "package_sha256": self.package_sha256, "receipt": self.receipt, "updated_at": self.updated_at}


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        _while_locked(lambda: self._db().executescript(SCHEMA))
        self._migrate()

    def _migrate(self) -> None:
        with self._conn() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version < 1:  # display words were stored: store codes
                for word, code in S.CODES.items():
                    db.execute("UPDATE months SET status=? WHERE status=?", (code, word))
                    db.execute("UPDATE attempts SET outcome=? WHERE outcome=?", (code, word))
                db.execute("PRAGMA user_version = 1")

    def _conn(self) -> "_Tx":
        return _Tx(self._db(), nested=getattr(self._local, "batch", False))

    def _read(self) -> "_Tx":
        """A read: one consistent snapshot (WAL) that never waits for a writer's lock, so Durumu Yenile
        answers while a background run writes."""
        return _Tx(self._db(), nested=getattr(self._local, "batch", False), mode="DEFERRED")

    @contextlib.contextmanager
    def batch(self):
        """Every write of this thread inside the block in one transaction (one fsync for a round of
        answers instead of two per month): all of them land, or none. No network inside the block."""
        if getattr(self._local, "batch", False):
            yield
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        self._local.batch = True
        try:
            yield
        except BaseException:
            self._local.batch = False
            db.execute("ROLLBACK")
            raise
        self._local.batch = False
        db.execute("COMMIT")

    def _db(self) -> sqlite3.Connection:
        # one connection per thread: bulk backup sends from a small thread pool
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            _while_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- writing ------------------------------------------------------------------------------

    def begin(self, key: MonthKey, target: str, action: str, package_sha256: str | None = None,
              files=()) -> int:
        with self._conn() as db:
            cur = db.execute(
                "INSERT INTO attempts (vkn, branch, period, target, action, package_sha256, files, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key.vkn, key.branch, key.period, target, action, package_sha256,
                 json.dumps([list(f) for f in files], ensure_ascii=False), now()))
            return cur.lastrowid

    def finish(self, attempt: int, key: MonthKey, target: str, status: str, message: str,
               receipt: str = "", package_sha256: str | None = None, set_status: bool = True) -> None:
        """Close an attempt and (unless set_status is False) set the month's status, atomically."""
        stamp = now()
        with self._conn() as db:
            db.execute("UPDATE attempts SET finished_at=?, outcome=?, message=?, receipt=? WHERE id=?",
                       (stamp, S.code(status), message, receipt, attempt))
            if not set_status:
                return
            if package_sha256 is None:
                row = db.execute("SELECT package_sha256 FROM attempts WHERE id=?", (attempt,)).fetchone()
                package_sha256 = row[0] if row else None
            if package_sha256 is None:
                old = db.execute("SELECT package_sha256 FROM months WHERE vkn=? AND branch=? AND period=?"
                                 " AND target=?", (key.vkn, key.branch, key.period, target)).fetchone()
                package_sha256 = old[0] if old else None
            db.execute(
                "INSERT INTO months (vkn, branch, period, target, status, message, package_sha256, receipt,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (vkn, branch, period, target) DO UPDATE SET status=excluded.status,"
                " message=excluded.message, package_sha256=excluded.package_sha256,"
                " receipt=CASE WHEN excluded.receipt != '' THEN excluded.receipt ELSE months.receipt END,"
                " updated_at=excluded.updated_at",
                (key.vkn, key.branch, key.period, target, S.code(status), message, package_sha256, receipt, stamp))

    def record(self, key: MonthKey, target: str, action: str, status: str, message: str,
               package_sha256: str | None = None, files=(), receipt: str = "", set_status: bool = True) -> None:
        """An attempt that needed no network (a month refused before sending); `set_status` as finish's."""
        attempt = self.begin(key, target, action, package_sha256, files)
        self.finish(attempt, key, target, status, message, receipt, package_sha256, set_status=set_status)

    def last_drill(self, key: MonthKey, target: str) -> tuple[str, bool, str] | None:
        """(when, ok, message) of the month's latest drill on that target, or None."""
        with self._read() as db:
            row = db.execute("SELECT drilled_at, ok, message FROM drills WHERE vkn=? AND branch=? AND period=?"
                             " AND target=? ORDER BY id DESC LIMIT 1",
                             (key.vkn, key.branch, key.period, target)).fetchone()
        return (row[0], bool(row[1]), row[2] or "") if row else None

    # -- reading ------------------------------------------------------------------------------

    def status(self, key: MonthKey, target: str | None = None) -> MonthStatus | None:
        with self._read() as db:
            if target is None:
                row = db.execute("SELECT * FROM months WHERE vkn=? AND branch=? AND period=?"
                                 " ORDER BY updated_at DESC LIMIT 1", (key.vkn, key.branch, key.period)).fetchone()
            else:
                row = db.execute("SELECT * FROM months WHERE vkn=? AND branch=? AND period=? AND target=?",
                                 (key.vkn, key.branch, key.period, target)).fetchone()
        return _status(row) if row else None

    def files_backed_up(self, key: MonthKey, target: str, package_sha256: str) -> list[tuple[str, str]] | None:
        """(name, sha256) of each file in the package `package_sha256` sent for this month, or None
        when no attempt recorded them."""
        with self._read() as db:
            row = db.execute("SELECT files FROM attempts WHERE vkn=? AND branch=? AND period=? AND target=?"
                             " AND package_sha256=? AND files IS NOT NULL AND files != '[]' ORDER BY id DESC"
                             " LIMIT 1", (key.vkn, key.branch, key.period, target, package_sha256)).fetchone()
        if not row:
            return None
        return sorted((f[0], f[2]) for f in json.loads(row[0]))

    def recorded_files(self, vkns: set[str] | None = None) -> dict[tuple[MonthKey, str], list[tuple[str, int, str]]]:
        """(month, target) -> [(name, size, sha256)] of the package each month's status names, in one
        query (a refresh of 36 000 months must not ask 36 000 times); `vkns`: only those taxpayers'
        months (a grouped run holds one group's)."""
        out = {}
        where, args = _among(vkns, "a.vkn")
        with self._read() as db:
            # row by row, not fetchall(): an office's 36 000 months' file lists at once are ~40 MB of JSON
            for v, b, p, t, files in db.execute(
                    "SELECT a.vkn, a.branch, a.period, a.target, a.files FROM attempts a JOIN months m"
                    " ON a.vkn = m.vkn AND a.branch = m.branch AND a.period = m.period AND a.target = m.target"
                    " AND a.package_sha256 = m.package_sha256"
                    f" WHERE a.files IS NOT NULL AND a.files != '[]'{where} ORDER BY a.id", args):
                if vkns is None or v in vkns:
                    out[(MonthKey(v, b, p), t)] = [(f[0], int(f[1]), f[2]) for f in json.loads(files)]
        return out

    def recorded_files_of(self, key: MonthKey, target: str) -> list[tuple[str, int, str]]:
        """recorded_files() of one month and target ([] when none)."""
        with self._read() as db:
            row = db.execute(
                "SELECT a.files FROM attempts a JOIN months m"
                " ON a.vkn = m.vkn AND a.branch = m.branch AND a.period = m.period AND a.target = m.target"
                " AND a.package_sha256 = m.package_sha256"
                " WHERE a.vkn=? AND a.branch=? AND a.period=? AND a.target=?"
                " AND a.files IS NOT NULL AND a.files != '[]' ORDER BY a.id DESC LIMIT 1",
                (key.vkn, key.branch, key.period, target)).fetchone()
        return [(f[0], int(f[1]), f[2]) for f in json.loads(row[0])] if row else []

    def retarget(self, key: MonthKey, old: str, new: str) -> bool:
        """Move a month's records from an old target key to a new one (an older journal keyed by the
        Hedef's name); nothing moves when the new key already has a status."""
        with self._conn() as db:
            if db.execute("SELECT 1 FROM months WHERE vkn=? AND branch=? AND period=? AND target=?",
                          (key.vkn, key.branch, key.period, new)).fetchone():
                return False
            where = " WHERE vkn=? AND branch=? AND period=? AND target=?"
            args = (new, key.vkn, key.branch, key.period, old)
            db.execute("UPDATE months SET target=?" + where, args)
            db.execute("UPDATE attempts SET target=?" + where, args)
            return True

    def record_drill(self, key: MonthKey, target: str, ok: bool, message: str) -> None:
        with self._conn() as db:
            db.execute("INSERT INTO drills (vkn, branch, period, target, drilled_at, ok, message)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (key.vkn, key.branch, key.period, target, now(), int(ok), message))

    def last_drills(self, vkns: set[str] | None = None) -> dict[tuple[MonthKey, str], tuple[str, bool, str]]:
        """(month, target) -> (when, ok, message) of the latest drill; `vkns`: only those taxpayers'."""
        where, args = _among(vkns, "vkn")
        with self._read() as db:
            rows = db.execute("SELECT vkn, branch, period, target, drilled_at, ok, message FROM drills"
                              " WHERE id IN (SELECT MAX(id) FROM drills"
                              f" WHERE 1{where} GROUP BY vkn, branch, period, target)", args)
            return {(MonthKey(v, b, p), t): (when, bool(ok), msg or "") for v, b, p, t, when, ok, msg in rows
                    if vkns is None or v in vkns}

    def last_conclusive_drills(self, inconclusive_prefix: str) -> dict[tuple[MonthKey, str], str]:
        """(month, target) -> when a drill last found the copy whole or damaged; drills whose message starts
        with `inconclusive_prefix` (the target could not be reached) proved nothing and are left out."""
        with self._read() as db:
            rows = db.execute("SELECT vkn, branch, period, target, MAX(drilled_at) FROM drills"
                              " WHERE ok = 1 OR message IS NULL OR message NOT LIKE ?"
                              " GROUP BY vkn, branch, period, target", (inconclusive_prefix + "%",)).fetchall()
        return {(MonthKey(v, b, p), t): when for v, b, p, t, when in rows}

    def first_stored(self) -> dict[tuple[MonthKey, str], str]:
        """(month, target) -> when the package the month's status names was first confirmed stored (not the
        status row's updated_at, which every later question writes again)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT a.vkn, a.branch, a.period, a.target, MIN(a.finished_at) FROM attempts a JOIN months m"
                " ON a.vkn = m.vkn AND a.branch = m.branch AND a.period = m.period AND a.target = m.target"
                " AND a.package_sha256 = m.package_sha256"
                " WHERE a.outcome = ? AND a.finished_at IS NOT NULL GROUP BY a.vkn, a.branch, a.period, a.target",
                (S.code(S.BACKED_UP),)).fetchall()
        return {(MonthKey(v, b, p), t): when for v, b, p, t, when in rows}

    def record_probe(self, target: str, worm: bool, detail: str) -> None:
        with self._conn() as db:
            db.execute("INSERT INTO worm_probes (target, probed_at, worm, detail) VALUES (?, ?, ?, ?)",
                       (target, now(), int(worm), detail))

    def new_findings(self, findings: list[tuple[MonthKey, str, str, str]], vkns: set[str] | None = None) -> set:
        """The local check's findings (month, file name, kind, detail) of this run, for the months of
        `vkns` (every month when None): returns the (month, name) of those not listed before as they are
        now, and remembers this run's as the listed ones (a finding gone is forgotten, so it is listed
        again if it comes back). Tara after ransomware on an office must not add 250 000 rows each time."""
        where, args = _among(vkns, "vkn")
        with self._conn() as db:
            before = {(MonthKey(v, b, p), n): (k, d) for v, b, p, n, k, d in db.execute(
                f"SELECT vkn, branch, period, name, kind, detail FROM local_findings WHERE 1{where}", args)
                if vkns is None or v in vkns}
            now_ = {(key, name): (kind, detail) for key, name, kind, detail in findings}
            gone = [k for k in before if k not in now_]
            db.executemany("DELETE FROM local_findings WHERE vkn=? AND branch=? AND period=? AND name=?",
                           [(k.vkn, k.branch, k.period, n) for k, n in gone])
            fresh = {k for k, v in now_.items() if before.get(k) != v}
            stamp = now()
            db.executemany("INSERT OR REPLACE INTO local_findings (vkn, branch, period, name, kind, detail, seen_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(k.vkn, k.branch, k.period, n, *now_[(k, n)], stamp) for k, n in fresh])
        return fresh

    def last_probes(self) -> dict[str, tuple[str, bool, str]]:
        """target identity -> (when, worm, detail) of its latest WORM probe."""
        with self._read() as db:
            rows = db.execute("SELECT target, probed_at, worm, detail FROM worm_probes"
                              " WHERE id IN (SELECT MAX(id) FROM worm_probes GROUP BY target)").fetchall()
        return {t: (when, bool(worm), detail or "") for t, when, worm, detail in rows}

    def statuses(self, vkns: set[str] | None = None) -> list[MonthStatus]:
        """Every month's status per target; `vkns`: only those taxpayers' (a grouped run's group)."""
        where, args = _among(vkns, "vkn")
        with self._read() as db:
            rows = db.execute(f"SELECT * FROM months WHERE 1{where} ORDER BY vkn, branch, period, target", args)
            if vkns is None:
                return [_status(r) for r in rows]
            return [_status(r) for r in rows if r[0] in vkns]

    def open_attempts(self) -> list[dict]:
        """Attempts a killed run left under way."""
        with self._read() as db:
            rows = db.execute("SELECT id, vkn, branch, period, target, action, package_sha256 FROM attempts"
                              " WHERE outcome IS NULL").fetchall()
        return [dict(zip(("id", "vkn", "branch", "period", "target", "action", "package_sha256"), r))
                for r in rows]

    def close_stale(self, message: str) -> int:
        """Mark attempts left under way by a killed run; the month's status is untouched."""
        with self._conn() as db:
            cur = db.execute("UPDATE attempts SET outcome='interrupted', finished_at=?, message=?"
                             " WHERE outcome IS NULL", (now(), message))
            return cur.rowcount

    def attempts(self, key: MonthKey | None = None) -> list[dict]:
        cols = ("id", "vkn", "branch", "period", "target", "action", "package_sha256", "files", "started_at",
                "finished_at", "outcome", "message", "receipt")
        with self._read() as db:
            if key is None:
                rows = db.execute(f"SELECT {', '.join(cols)} FROM attempts ORDER BY id").fetchall()
            else:
                rows = db.execute(f"SELECT {', '.join(cols)} FROM attempts WHERE vkn=? AND branch=? AND period=?"
                                  " ORDER BY id", (key.vkn, key.branch, key.period)).fetchall()
        out = [dict(zip(cols, r)) for r in rows]
        for a in out:
            if a["outcome"] in S.WORDS:
                a["outcome"] = S.word(a["outcome"])
        return out


def _while_locked(step, limit: float = 60.0):
    """Run `step` again while SQLite answers 'database is locked' at once: setting WAL mode, or the schema
    on a journal another process is creating, can be refused without the busy timeout's wait (the agent and
    a button opening one journal at the same moment). Up to `limit` seconds, then the error stands."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _among(vkns: set[str] | None, column: str) -> tuple[str, tuple]:
    """An SQL condition keeping `vkns` (a grouped run's taxpayers: the index, not a pass over every
    month for each group); none for every VKN, or for more than SQLite's variables allow (the caller
    filters those rows itself)."""
    if vkns is None or len(vkns) > 500:
        return "", ()
    if not vkns:
        return " AND 0", ()
    return f" AND {column} IN ({','.join('?' * len(vkns))})", tuple(sorted(vkns))


def _status(row) -> MonthStatus:
    vkn, branch, period, target, status, message, sha, receipt, updated = row
    return MonthStatus(MonthKey(vkn, branch, period), target, S.word(status), message or "", sha or "",
                       receipt or "", updated)


class _Tx:
    """`with` block = one transaction (autocommit connection): IMMEDIATE for a write, DEFERRED for a
    read; inside Journal.batch, part of the batch's."""

    def __init__(self, db: sqlite3.Connection, nested: bool = False, mode: str = "IMMEDIATE"):
        self.db = db
        self.nested = nested
        self.mode = mode

    def __enter__(self) -> sqlite3.Connection:
        if not self.nested:
            self.db.execute(f"BEGIN {self.mode}")
        return self.db

    def __exit__(self, exc_type, *_):
        if not self.nested:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
