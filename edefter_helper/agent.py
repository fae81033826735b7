"""The background agent: automatic backup with nobody at Excel (`edefter agent run|install|uninstall|status`).

One agent per OS user and control workbook (a file lock in the data directory). Every cycle it reads
the settings from the workbook file — read-only: one short read of the bytes, never a save and never
a lock beside it, since the user may have it open in Excel — and watches the e-Defter folders of the
firms with Otomatik Yedekleme = Evet. A month is taken when its file names say it reached "Onaylı
Berat İndirildi" and is complete, and its files (names, sizes, modification times) were seen unchanged
for `settle` seconds; then `actions.backup(..., Options(write_back=False), where=...)` runs over those
months: the same verify, pack, send and confirm as the Toplu Yedekle button, results to the journal.

Watching costs little when nothing happens: the folder tree is remembered as folders with their
modification times, so the periodic rescan (every `interval` seconds, for network shares that drop
events) is one `stat` per folder; only folders whose time changed are listed again, plus a slice of
all folders in turn so that every file is looked at again within `full_rescan` seconds (a file
rewritten in place on a share changes no folder time). `watchdog` wakes the agent as soon as an
e-Defter file appears or changes in the folders of firms with a month under way (waiting for GİB's
berats, changed, failing); quiet folders are left to the rescan, since inotify keeps a watch per
folder. A long gap between cycles (sleep/resume) makes the next cycle look at every file.

Failures back off: a month that failed waits `backoff` seconds before it is tried again, doubling up
to `month_max_backoff`; a target that could not be used (nobody answers, a password refused) is left
alone for `backoff` doubling up to `max_backoff`, while its months wait. Back-off survives a restart
(the state file). A folder that disappears (a network drive) keeps what was known about it until it
comes back.

State: `<data dir>/agent/<workbook>-<hash>.json` (whether it runs, since when, the last cycle, the last
successful cycle, the last error), `.lock` (the one-agent lock) and `.log` (rotating log, no secrets).

Hooks for notifications: `on_results(summary)` after each backup the agent ran, `on_cycle(ok)` after
every cycle (ok: the settings were read, every watched folder was there and no target is failing;
a single month that failed is reported through on_results, not as a failed cycle).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from edefter_helper import paths
from edefter_helper.engine.names import DR_FROM_PERIOD, NO_BRANCH, parse_name

log = logging.getLogger(__name__)

ALREADY_RUNNING = "Bu çalışma kitabı için bir arka plan aracısı zaten çalışıyor"
EXIT_BUSY = 3  # as the other commands say "another run holds it"
DELETED_DIR = ".silinenler"
WORM_PROBE_EVERY = 7 * 86400.0  # issue 11: at set-up (target check) and weekly
MTIME_GRANULARITY = 2.0  # FAT and some shares keep folder times in 2 s steps: a folder this fresh is listed again
STATE_FORMAT = "edefter-ajan/1"


class AgentBusy(Exception):
    """Another agent holds this workbook; Turkish message."""


# -- where the agent keeps its state ------------------------------------------------------------

def workbook_path(workbook) -> str:
    """The workbook as the agent names it: absolute, not resolved through links or mapped drives."""
    return os.path.abspath(os.fspath(workbook))


def workbook_key(workbook) -> str:
    """File-name-safe key of a workbook path: its name for people, a digest of the full path for uniqueness."""
    full = os.path.normcase(workbook_path(workbook))
    digest = hashlib.sha256(full.encode("utf-8")).hexdigest()[:12]
    stem = re.sub(r"[^\w-]+", "_", Path(full).stem).strip("_")[:40] or "kitap"
    return f"{stem}-{digest}"


def agent_dir() -> Path:
    folder = paths.data_dir() / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def state_file(workbook) -> Path:
    return agent_dir() / f"{workbook_key(workbook)}.json"


def lock_file(workbook) -> Path:
    return agent_dir() / f"{workbook_key(workbook)}.lock"


def log_file(workbook) -> Path:
    return agent_dir() / f"{workbook_key(workbook)}.log"


def _stamp(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """No secrets in logs or the state file: user:password@ in an address is hidden."""
    return _USERINFO.sub("***@", text)


# -- the workbook as a read-only settings source -------------------------------------------------

class SettingsBook:
    """The control workbook's settings sheets (Firmalar, Hedefler and the others), for reading only.

    The file is read in one go (a few milliseconds; Excel may hold it open and replaces it when it
    saves) and parsed from memory with the standard library, all sheets but the results (Dönemler, tens
    of thousands of rows, and Günlük): openpyxl (10 MB once imported) stays out of a process that runs
    all day. Cells give what Excel shows (the cached value of a formula), rows are keyed by the header
    text of row 1 as `FileBook` keys them. Writes are dropped: the agent's results go to the journal."""

    def __init__(self, path):
        from edefter_helper.workbook import layout as L

        self.path = Path(path)
        data = self.path.read_bytes()
        self.sheets = read_xlsx_sheets(data, skip={L.PERIODS.name, L.LOG.name})

    def read_rows(self, sheet) -> list[dict]:
        return _keyed_rows(self.sheets.get(sheet.name, {}), sheet)

    def write_rows(self, sheet, rows) -> None:
        pass

    def append_rows(self, sheet, rows) -> None:
        pass

    def selected_keys(self):
        return None

    def progress(self, text: str) -> None:
        pass

    def save(self) -> None:
        pass


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _column(ref: str) -> int:
    """'C7' -> 2 (0-based column)."""
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1


def _text(el) -> str:
    """A string item (<si> or <is>): its <t>, or its rich-text runs' <t> (phonetic guides left out)."""
    out = []
    for child in el:
        if child.tag == _MAIN + "t":
            out.append(child.text or "")
        elif child.tag == _MAIN + "r":
            out.extend(t.text or "" for t in child.iter(_MAIN + "t"))
    return "".join(out)


def read_xlsx_sheets(data: bytes, names: set[str] | None = None,
                     skip: set[str] = frozenset()) -> dict[str, dict[int, dict[int, object]]]:
    """{sheet name: {row number: {column: value}}} of an .xlsx/.xlsm's sheets (the named ones, or all
    but `skip`)."""
    import xml.etree.ElementTree as ET
    import zipfile

    out: dict[str, dict[int, dict[int, object]]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        rels = {r.get("Id"): r.get("Target", "") for r in ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))}
        wanted = {}
        for sheet in ET.fromstring(z.read("xl/workbook.xml")).iter(_MAIN + "sheet"):
            if (names is None or sheet.get("name") in names) and sheet.get("name") not in skip:
                target = rels.get(sheet.get(_REL_ID), "")
                wanted[sheet.get("name")] = target.lstrip("/") if target.startswith("/") else "xl/" + target
        shared: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            with z.open("xl/sharedStrings.xml") as fh:
                for _, el in ET.iterparse(fh):
                    if el.tag == _MAIN + "si":
                        shared.append(_text(el))
                        el.clear()
        for name, part in wanted.items():
            rows: dict[int, dict[int, object]] = {}
            with z.open(part) as fh:
                for _, el in ET.iterparse(fh):
                    if el.tag != _MAIN + "row":
                        continue
                    number = int(el.get("r") or len(rows) + 1)
                    cells = {}
                    for i, c in enumerate(el.iter(_MAIN + "c")):
                        kind, v = c.get("t", "n"), c.find(_MAIN + "v")
                        col = _column(c.get("r")) if c.get("r") else i
                        if kind == "inlineStr":
                            inline = c.find(_MAIN + "is")
                            value = _text(inline) if inline is not None else None
                        elif v is None or v.text is None:
                            value = None
                        elif kind == "s":
                            value = shared[int(v.text)]
                        elif kind in ("str", "e"):
                            value = v.text
                        elif kind == "b":
                            value = v.text == "1"
                        else:
                            text = v.text
                            value = int(text) if text.lstrip("-").isdigit() else float(text)
                        cells[col] = value
                    rows[number] = cells
                    el.clear()
            out[name] = rows
    return out


def _keyed_rows(rows: dict[int, dict[int, object]], sheet) -> list[dict]:
    """Rows below the header keyed by column key, blank rows skipped (as FileBook.read_rows)."""
    header = rows.get(1, {})
    where = {str(v).strip(): i for i, v in header.items() if v is not None}
    cols = {}
    for c in sheet.columns:
        found = next((where[h] for h in (c.header, *c.old_headers) if h in where), None)
        if found is not None:
            cols[c.key] = found
    out = []
    for number in sorted(rows):
        if number < 2:
            continue
        values = rows[number]
        row = {c.key: values.get(cols[c.key]) if c.key in cols else None for c in sheet.columns}
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row.values()):
            continue
        out.append(row)
    return out


# -- the folder index ---------------------------------------------------------------------------
#
# 300 firms × 120 months are 36 000 month folders: every byte kept per folder and per month counts
# (the idle agent stays under 100 MB). A folder is (mtime, subfolder names, its months' entries), an
# entry is the flat triple (group key, signature, inventory); a month found in one folder (nearly
# all) shares its path string, key string and signature with that folder's entry.

class _Dir:
    __slots__ = ("path", "mtime", "subdirs", "groups")

    def __init__(self, path: str, mtime: int, subdirs: tuple, groups: tuple):
        self.path = path  # the very string that keys it in FolderIndex.dirs (its months share it)
        self.mtime = mtime  # st_mtime_ns when it was listed
        self.subdirs = subdirs  # names
        self.groups = groups  # (key, signature, inventory, key, signature, inventory, ...): its e-Defter files

    def entries(self):
        g = self.groups
        return [(g[i], g[i + 1], g[i + 2]) for i in range(0, len(g), 3)]

    def entry(self, gk: str):
        g = self.groups
        for i in range(0, len(g), 3):
            if g[i] == gk:
                return g[i], g[i + 1], g[i + 2]
        return None


class _Group:
    """The files of one month as their names tell it: VKN, period and (when the name says it) branch."""

    __slots__ = ("key", "dirs", "sig", "inv", "changed", "settled", "done")

    def __init__(self, key: str, changed: float):
        self.key = key
        self.dirs: str | tuple = ()  # the folder holding its files, or a tuple of folders
        self.sig = None
        self.inv = ""
        self.changed = changed  # agent clock when the signature last changed (or was first seen)
        self.settled = False  # seen unchanged for `settle` seconds
        self.done = None  # the signature at which nothing more is to be done (backed up, or not to be sent)

    @property
    def folders(self) -> tuple:
        return (self.dirs,) if isinstance(self.dirs, str) else self.dirs


def group_key(vkn: str, period: str, branch: str | None) -> str:
    return f"{vkn}|{period}|{branch or ''}"


def split_key(gk: str) -> tuple[str, str, str]:
    vkn, period, branch = gk.split("|")
    return vkn, period, branch


class FolderIndex:
    """What the e-Defter folders hold, cheaply kept up to date: folders with their modification times,
    and per month (by file name) a signature of its files' names, sizes and modification times."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.dirs: dict[str, _Dir] = {}
        self.groups: dict[str, _Group] = {}
        self.pending: set[str] = set()  # groups whose signature is not `done`
        self.recheck: set[str] = set()  # folders listed within the file system's time granularity
        self.roots: set[str] = set()
        self.errors: list[str] = []
        self.listed = 0  # folders listed (for tests and the benchmark)
        self._now = None  # one clock reading per pass: the months it finds share it
        self._sweep: list[str] = []  # folders still to be listed in this round of sweep()

    # -- roots ----------------------------------------------------------------------------------

    def add_root(self, root: str) -> None:
        self.roots.add(root)
        self.relist(root)

    def drop_root(self, root: str) -> None:
        self.roots.discard(root)
        self._remove(root)

    @staticmethod
    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def root_of(self, path: str) -> str | None:
        return next((r for r in self.roots if self.under(path, r)), None)

    # -- passes ---------------------------------------------------------------------------------

    def _skipped(self, path: str, skip: set[str]) -> bool:
        return bool(skip) and any(self.under(path, r) for r in skip)

    def stat_pass(self, skip: set[str] = frozenset()) -> int:
        """The periodic rescan: one stat per known folder (but those under the roots in `skip`: not
        there now); folders whose time changed (a file added, removed or renamed) are listed again.
        Returns how many were listed."""
        before = self.listed
        self._now = self.clock()
        for path in list(self.dirs):
            d = self.dirs.get(path)
            if d is None or self._skipped(path, skip):
                continue
            try:
                mtime = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                self.relist(path)  # gone: its parent's listing removes it
                continue
            except OSError:
                continue
            if mtime != d.mtime or path in self.recheck:
                self.relist(path)
        self._now = None
        self.compact()
        return self.listed - before

    def full_pass(self, skip: set[str] = frozenset()) -> None:
        """Every folder listed again, every file looked at (a file rewritten in place changes no folder time)."""
        self._now = self.clock()
        for path in list(self.dirs):
            if path in self.dirs and not self._skipped(path, skip):
                self._list_one(path)
        for root in self.roots - skip:
            if root not in self.dirs:
                self.relist(root)
        self._now = None
        self.compact()

    def sweep(self, share: float, skip: set[str] = frozenset()) -> int:
        """List again the next `share` (0..1] of all folders, round-robin: every file is looked at once per
        round without a spike (a file rewritten in place on a share changes no folder time, and a network
        share may have dropped its event). Returns how many were listed."""
        if not self._sweep:
            self._sweep = list(self.dirs)
        n = max(1, int(len(self.dirs) * share + 0.999))
        done = 0
        self._now = self.clock()
        while self._sweep and done < n:
            path = self._sweep.pop()
            if path in self.dirs and not self._skipped(path, skip):
                self._list_one(path)
                done += 1
        self._now = None
        return done

    def relist(self, path: str) -> None:
        """List a folder again; new subfolders are listed through."""
        stack = [path]
        while stack:
            stack.extend(self._list_one(stack.pop()))

    def relist_folders(self, folders) -> None:
        """Known folders listed again (not their subfolders): the months still settling."""
        self._now = self.clock()
        for path in folders:
            if path in self.dirs:
                self._list_one(path)
        self._now = None

    def touch(self, path: str) -> None:
        """A watched path changed (a file-system event): list the folder, or its nearest known ancestor."""
        root = self.root_of(path)
        if root is None:
            return
        p = path
        while p not in self.dirs and p != root:
            parent = os.path.dirname(p)
            if parent == p:
                return
            p = parent
        self.relist(p)

    def compact(self) -> None:
        """Sets keep the table of their largest size: after the first pass put every month in `pending`
        and it emptied, give that memory back."""
        if not self.pending:
            self.pending = set()
        if not self.recheck:
            self.recheck = set()

    # -- one folder -----------------------------------------------------------------------------

    def _list_one(self, path: str) -> list[str]:
        self.listed += 1
        try:
            st = os.stat(path)
            with os.scandir(path) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            if path in self.roots:
                return []  # a root that vanished is kept as it was known (a network drive may come back)
            self._remove(path)
            return []
        except OSError as exc:
            self.errors.append(f"{path}: {exc.strerror or exc}")
            return []
        subdirs = []
        found: dict[str, list] = {}
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.name.lower() != DELETED_DIR:  # Luca's deleted copies are never current
                        subdirs.append(e.name)
                    continue
                name = parse_name(e.name)
                if name is None or name.is_inventory or not e.is_file():
                    continue
                s = e.stat()
            except OSError:
                continue
            found.setdefault(group_key(name.vkn, name.period, name.branch), []).append(
                (e.name, s.st_size, s.st_mtime_ns, name.kind, name.part))
        groups = []
        for gk, files in sorted(found.items()):
            g = self.groups.get(gk)
            groups += (g.key if g is not None else gk, hash(tuple(sorted(f[:3] for f in files))), _inventory(files))
        old = self.dirs.get(path)
        subdirs_t = tuple(sorted(subdirs)) if subdirs else ()
        if old is not None and old.subdirs == subdirs_t:
            subdirs_t = old.subdirs
        self.dirs[path] = _Dir(old.path if old is not None else path, st.st_mtime_ns, subdirs_t, tuple(groups))
        if time.time() - st.st_mtime_ns / 1e9 < MTIME_GRANULARITY:
            self.recheck.add(path)
        else:
            self.recheck.discard(path)
        if old is not None:
            for name in set(old.subdirs) - set(subdirs_t):
                self._remove(os.path.join(path, name))
        before = {e[0]: e for e in old.entries()} if old is not None else {}
        now = {e[0]: e for e in self.dirs[path].entries()}
        for gk in before.keys() | now.keys():
            if before.get(gk) != now.get(gk):
                self._regroup(gk, path)
        if not subdirs_t:
            return []
        return [p for p in (os.path.join(path, n) for n in subdirs_t) if p not in self.dirs]

    def _remove(self, path: str) -> None:
        stack = [path]
        while stack:
            p = stack.pop()
            d = self.dirs.pop(p, None)
            self.recheck.discard(p)
            if d is None:
                continue
            stack.extend(os.path.join(p, n) for n in d.subdirs)
            for gk, _, _ in d.entries():
                self._regroup(gk, p)

    def _regroup(self, gk: str, path: str) -> None:
        g = self.groups.get(gk)
        dirs = set(g.folders) if g is not None else set()
        d = self.dirs.get(path)
        if d is not None and d.entry(gk) is not None:
            dirs.add(path)
        else:
            dirs.discard(path)
        parts = []
        for p in sorted(dirs):
            entry = self.dirs[p].entry(gk) if p in self.dirs else None
            if entry is not None:
                parts.append((p, entry))
        if not parts:
            if g is not None:
                del self.groups[gk]
                self.pending.discard(gk)
            return
        if g is None:
            g = self.groups[gk] = _Group(parts[0][1][0], self._now if self._now is not None else self.clock())
        if len(parts) == 1:
            # one folder (nearly every month): share its path string and its signature
            g.dirs = self.dirs[parts[0][0]].path
            sig, inv = parts[0][1][1], parts[0][1][2]
        else:
            g.dirs = tuple(self.dirs[p].path for p, _ in parts)
            sig = hash(tuple((p, e[1]) for p, e in parts))
            inv = _merge_inventories(e[2] for _, e in parts)
        if sig != g.sig:
            g.sig = sig
            g.inv = inv
            g.changed = self._now if self._now is not None else self.clock()
            g.settled = False
            self.pending.add(g.key)


def _inventory(files) -> str:
    """The (kind, part) pairs of a month's files as one short interned string: every month of a firm
    usually has the same, so tens of thousands of months share a handful of strings."""
    return sys.intern(" ".join(sorted({f"{kind}:{part}" for _, _, _, kind, part in files})))


def _merge_inventories(invs) -> str:
    items = set()
    for inv in invs:
        items.update(inv.split())
    return sys.intern(" ".join(sorted(items)))


_READY: dict[tuple[str, bool], bool] = {}


def ready_by_names(inv: str, period: str) -> bool:
    """Complete and at "Onaylı Berat İndirildi", as the file names tell it (the engine's own rule)."""
    key = (inv, period >= DR_FROM_PERIOD)
    if key not in _READY:
        from edefter_helper.engine.model import LedgerFile, MonthKey, MonthSet
        from edefter_helper.engine.names import LedgerName
        from edefter_helper.engine.scan import assess

        ms = MonthSet(MonthKey("0000000000", NO_BRANCH, period if key[1] else "2018-12"))
        for item in inv.split():
            kind, part = item.rsplit(":", 1)
            name = LedgerName("", "0000000000", ms.key.period, kind, int(part), None, False)
            ms.files.append(LedgerFile("", name, 0, NO_BRANCH))
        assess(ms)
        _READY[key] = ms.complete and ms.stage == "gib-approved"
    return _READY[key]


# -- watching -----------------------------------------------------------------------------------

class _Watcher:
    """watchdog's observer over the roots; only wakes the agent (the index decides what changed)."""

    def __init__(self, sink: Callable[[list[str]], None]):
        self.sink = sink
        self.watches: dict[str, tuple] = {}  # root -> (watch, (st_dev, st_ino))
        self.observer = None
        self.problem = ""
        try:
            from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileClosedEvent,
                                         FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
                                         FileSystemEventHandler)
            from watchdog.observers import Observer
        except ImportError:
            self.problem = "watchdog kurulu değil; klasörler yalnızca periyodik taramayla izleniyor."
            return
        # what can change a month; not "opened"/"closed without writing": the agent's own listings
        # would wake it (and overflow inotify's queue on a full pass)
        self.kinds = [FileCreatedEvent, FileDeletedEvent, FileMovedEvent, FileModifiedEvent, FileClosedEvent,
                      DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                watcher._event(event)

        self.handler = Handler()
        self.observer = Observer()
        self.observer.daemon = True
        self.observer.start()

    def _event(self, event) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        out = []
        for p in (event.src_path, getattr(event, "dest_path", "") or ""):
            if not p:
                continue
            p = os.fsdecode(p)
            if event.is_directory:
                if kind in ("modified", "attrib", "closed"):
                    continue  # a file inside changed: its own event names it
                out.extend((p, os.path.dirname(p)))
            elif parse_name(os.path.basename(p)) is not None:
                out.append(os.path.dirname(p))
        if out:
            self.sink(out)

    def ensure(self, root: str) -> str:
        """Watch `root` (again, when it was replaced or its watch died); returns a problem or ''."""
        if self.observer is None:
            return self.problem
        if not self.observer.is_alive():  # it died: every watch is scheduled again on a new one
            from watchdog.observers import Observer

            log.warning("Dosya olayı gözlemcisi durmuştu; yeniden başlatılıyor.")
            self.watches.clear()
            self.observer = Observer()
            self.observer.daemon = True
            self.observer.start()
        try:
            st = os.stat(root)
        except OSError:
            self.drop(root)
            return ""
        ident = (st.st_dev, st.st_ino)
        have = self.watches.get(root)
        if have is not None and have[1] == ident:
            return ""
        self.drop(root)  # the folder was replaced (a drive mounted again): its old watch sees nothing
        try:
            watch = self.observer.schedule(self.handler, root, recursive=True, event_filter=self.kinds)
        except (OSError, RuntimeError) as exc:  # e.g. Linux's inotify watch limit
            return (f"{root} için dosya olayları izlenemiyor ({getattr(exc, 'strerror', None) or exc}); "
                    f"periyodik tarama sürüyor.")
        self.watches[root] = (watch, ident)
        return ""

    def drop(self, root: str) -> None:
        have = self.watches.pop(root, None)
        if have is not None and self.observer is not None:
            try:
                self.observer.unschedule(have[0])
            except Exception:  # noqa: BLE001 - an emitter that already died
                pass

    def stop(self) -> None:
        if self.observer is not None:
            try:
                self.observer.stop()
                self.observer.join(5)
            except Exception:  # noqa: BLE001 - stopping must never hide the agent's own exit
                pass


# -- the agent ----------------------------------------------------------------------------------

@dataclasses.dataclass
class _Backoff:
    n: int
    retry_at: float  # wall clock (time.time): sleep and restarts count
    message: str = ""
    sig: object = None  # months: the signature that failed (files changed -> tried again)

    def as_json(self) -> dict:
        return {"n": self.n, "retry_at": self.retry_at, "message": redact(self.message)}


class Agent:
    def __init__(self, workbook, *, interval: float = 60.0, settle: float = 60.0, journal=None, options=None,
                 backoff: float = 300.0, max_backoff: float = 3600.0, month_max_backoff: float = 6 * 3600.0,
                 full_rescan: float = 3600.0, watch: bool = True,
                 on_results: Callable | None = None, on_cycle: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], float] = time.time,
                 backup: Callable | None = None):
        self.workbook = Path(workbook_path(workbook))
        self.interval = float(interval)
        self.settle = float(settle)
        self.journal_path = paths.journal_path(journal)
        self.options = options
        self.backoff, self.max_backoff, self.month_max_backoff = backoff, max_backoff, month_max_backoff
        self.full_rescan = full_rescan
        self.watch = watch
        self.on_results, self.on_cycle = on_results, on_cycle
        self.clock, self.wallclock = clock, wallclock
        self._backup = backup
        self.index = FolderIndex(clock)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._lock = None
        self._watcher: _Watcher | None = None
        # settings
        self._book = None
        self._book_stat = None
        self._fingerprint = None
        self.firms: list = []
        self.targets: dict = {}
        self._roots: set[str] = set()
        self._firms_by_vkn: dict[str, list] = {}
        self._identity: dict[int, str] = {}
        self._missing: set[str] = set()
        # back-off
        self.failing: dict[str, _Backoff] = {}  # month (group key) -> back-off
        self.target_backoff: dict[str, _Backoff] = {}  # target identity -> back-off
        self.recheck_at: dict[str, float] = {}  # months the integrator still processes: ask again then
        self._waiting: set[str] = set()  # months of automatic firms not yet complete and GİB-approved
        self._active_until: dict[str, float] = {}  # watched roots and until when
        self._baseline = None
        # counters and state
        self.cycles = 0
        self.scans = 0  # periodic rescans (and full ones)
        self.full_scans = 0
        self.events = 0  # paths named by file-system events
        self._real_roots: dict[str, str] = {}
        self.backups = 0
        self.worm_probes = 0
        self._probe_due: dict[str, float] = {}  # S3 target identity -> when its WORM probe is due again
        self.started_at = None
        self.last_cycle_at = None
        self.last_success_at = None
        self.last_error = None
        self.last_error_at = None
        self.last_backup_at = None
        self.last_backup = None
        self.notes: list[str] = []
        self._last_scan = None
        self._last_cycle_wall = None
        self._said: set[str] = set()

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the one-agent lock (AgentBusy when another agent holds it) and load the kept state."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(lock_file(self.workbook)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            pid = (self._read_state() or {}).get("pid")
            raise AgentBusy(f"{ALREADY_RUNNING}" + (f" (PID {pid})." if pid else ".")) from None
        self._lock = lock
        previous = self._read_state() or {}
        now = self.wallclock()
        for gk, b in (previous.get("failing") or {}).items():
            self.failing[gk] = _Backoff(int(b.get("n", 1)), float(b.get("retry_at", now)), b.get("message", ""))
        for ident, b in (previous.get("targets_failing") or {}).items():
            self.target_backoff[ident] = _Backoff(int(b.get("n", 1)), float(b.get("retry_at", now)),
                                                  b.get("message", ""))
        self.last_success_at = previous.get("last_success_epoch")
        self.last_error, self.last_error_at = previous.get("last_error"), previous.get("last_error_epoch")
        self.started_at = now
        if self.watch:
            self._watcher = _Watcher(self._on_paths)
            if self._watcher.problem:
                log.warning(self._watcher.problem)
        log.info("Arka plan aracısı başladı: %s (tarama %g sn, bekleme %g sn, PID %d)", self.workbook,
                 self.interval, self.settle, os.getpid())
        self._write_state(None)

    def stop(self) -> None:
        """Ask the loop to end (signal handlers call this); the cycle under way finishes first."""
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._lock is not None:
            self._write_state(None, stopped=True)
            log.info("Arka plan aracısı durdu: %s", self.workbook)
            self._lock.release()
            self._lock = None

    def run(self) -> None:
        """start(), then loop() until stop()."""
        self.start()
        self.loop()

    def loop(self) -> None:
        """A first full cycle, then one on events, settle times, back-off ends and every `interval`
        seconds, until stop(); closes the agent (lock released, state says stopped) however it ends."""
        try:
            self.cycle(scan=True)
            while not self._stop.is_set():
                scan = self._wait()
                if self._stop.is_set():
                    break
                self.cycle(scan=scan)
        finally:
            self.close()

    def _on_paths(self, paths_: list[str]) -> None:
        with self._dirty_lock:
            self._dirty.update(paths_)
        self._wake.set()

    def _wait(self) -> bool:
        """Sleep until something is due; True when the periodic rescan is due."""
        now = self.clock()
        due = [self._last_scan + self.interval if self._last_scan is not None else now]
        for gk in self.index.pending:
            g = self.index.groups.get(gk)
            if g is not None and not g.settled:
                due.append(g.changed + self.settle + 0.01)
        wall = self.wallclock()
        for b in list(self.failing.values()) + list(self.target_backoff.values()):
            if b.retry_at > wall:
                due.append(now + (b.retry_at - wall) + 0.01)
        due.extend(now + (t - wall) + 0.01 for t in self.recheck_at.values() if t > wall)
        timeout = max(0.0, min(due) - now)
        if self._wake.wait(timeout) and not self._stop.is_set():
            self._stop.wait(min(0.25, self.settle / 4 if self.settle else 0.25))  # let a burst of events land
        self._wake.clear()
        return self._last_scan is None or self.clock() - self._last_scan >= self.interval - 0.01

    # -- one cycle ------------------------------------------------------------------------------

    def cycle(self, scan: bool = True) -> bool:
        """One pass: settings, folders, settled months, backup. Never raises; returns ok (see module doc)."""
        self.cycles += 1
        problems: list[str] = []
        wall = self.wallclock()
        full = False
        listed = self.index.listed
        if scan:
            self._last_scan = self.clock()
        try:
            if self._last_cycle_wall is not None and wall - self._last_cycle_wall > max(3 * self.interval,
                                                                                      self.interval + 120):
                log.info("Son turdan bu yana %d sn geçti (uyku ya da askı?); bütün dosyalara yeniden bakılıyor.",
                         wall - self._last_cycle_wall)
                full = True
            self._load_settings(problems)
            if self._book is not None:
                self._probe_worm()
                roots = self._sync_roots(problems)
                self._look(roots, scan, full)
                self._settle()
                work = self._decide()
                if work:
                    self._run_backup(work, problems)
                if self._baseline is None:
                    self._baseline = self.clock()  # what the first listing found is not "activity"
                self._watch_active(roots)
                if work or self.index.listed - listed > 1000:
                    release_memory()
            problems.extend(f"Klasör okunamadı: {e}" for e in self.index.errors)
            self.index.errors.clear()
        except Exception as exc:  # noqa: BLE001 - the agent outlives any one cycle
            log.exception("Tur başarısız")
            problems.append(f"Beklenmeyen hata ({type(exc).__name__}): {exc}")
        now = self.wallclock()
        for ident, b in list(self.target_backoff.items()):
            problems.append(b.message)  # a target that failed stays a problem until it works again
        ok = not problems
        self.last_cycle_at = now
        self._last_cycle_wall = now
        if ok:
            self.last_success_at = now
        else:
            text = redact(problems[-1])
            if text != self.last_error:  # the same trouble seen again keeps the time it started
                self.last_error, self.last_error_at = text, now
        self._write_state(ok)
        if self.on_cycle is not None:
            try:
                self.on_cycle(ok)
            except Exception:  # noqa: BLE001 - a notifier must not stop the backups
                log.exception("on_cycle bildirimi başarısız")
        return ok

    def _say_once(self, key: str, message: str, level=logging.WARNING) -> None:
        if key not in self._said:
            self._said.add(key)
            log.log(level, "%s", redact(message))

    def _load_settings(self, problems: list[str]) -> None:
        from edefter_helper.settings import read_settings, target_identity

        try:
            st = os.stat(self.workbook)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError as exc:
            problems.append(f"Çalışma kitabı bulunamadı: {self.workbook} ({exc.strerror or exc})")
            self._say_once("wb-missing", problems[-1])
            return
        self._said.discard("wb-missing")
        if stamp == self._book_stat and self._book is not None:
            return
        try:
            book = SettingsBook(self.workbook)
            firms, targets, notes = read_settings(book)
        except Exception as exc:  # noqa: BLE001 - a half-saved file, a locked file: the last good settings stay
            problems.append(f"Çalışma kitabı okunamadı ({self.workbook.name}): {exc}")
            log.warning("%s", problems[-1])
            return
        first = self._book is None
        self._book, self._book_stat = book, stamp
        fingerprint = (tuple((f.vkn, f.branch, f.folder, f.target, f.user, f.auto, f.copies) for f in firms),
                       tuple(sorted((t.name, t.kind, t.address) for t in targets.values())))
        if fingerprint == self._fingerprint:
            return  # saved by a button (Dönemler, Günlük): the settings are the same
        self._fingerprint = fingerprint
        self.firms, self.targets, self.notes = firms, targets, notes
        self._roots = self._wanted_roots()
        self._firms_by_vkn = {}
        for f in firms:
            self._firms_by_vkn.setdefault(f.vkn, []).append(f)
        self._identity = {id(f): target_identity(targets.get(f.target), f) for f in firms}
        # a firm with several Hedefs: one identity per copy (Firm.per_target)
        self._identities = {id(f): [target_identity(targets.get(c.target), c) for c in f.per_target()] for f in firms}
        for f in firms:
            if f.auto and not f.folder:
                notes.append(f"{f.name}: e-Defter Klasörü boş; bu firma otomatik yedeklenemez.")
        for n in notes:
            log.warning("Ayar: %s", redact(n))
        if not first:
            log.info("Ayarlar değişti (%d firma, %d hedef); bütün dönemlere yeniden bakılacak.", len(firms),
                     len(targets))
            # a fixed Hedef is tried at once; a month's verdict (backed up there, not to be sent) depended
            # on the firm, its Otomatik Yedekleme and its target
            self.target_backoff.clear()
            for g in self.index.groups.values():
                g.done = None
            self.index.pending.update(self.index.groups)

    def identity(self, firm) -> str:
        return self._identity[id(firm)]

    def identities(self, firm) -> list[str]:
        return self._identities[id(firm)]

    def _copy_identity(self, firm, target: str) -> str:
        """The identity of the firm's copy at Hedef `target` (a result's MonthResult.target)."""
        for c, ident in zip(firm.per_target(), self.identities(firm)):
            if c.target == target:
                return ident
        return self.identity(firm)

    def _probe_worm(self) -> None:
        """Weekly, every S3 target in use is asked again whether it really keeps locked versions
        (targets.s3.probe: stores exist that accept COMPLIANCE locks and still delete); the answer goes to
        the journal, where the copy views read it. A probe that cannot run is tried again after `backoff`."""
        wall = self.wallclock()
        due = {}
        for f in self.firms:
            for c, ident in zip(f.per_target(), self.identities(f)):
                cfg = self.targets.get(c.target)
                if (cfg is not None and cfg.kind == "s3" and ident not in due
                        and wall >= self._probe_due.get(ident, 0.0)):
                    due[ident] = (cfg, c.user)
        if not due:
            return
        from edefter_helper.journal import Journal
        from edefter_helper.targets.base import TargetError
        from edefter_helper.targets.factory import open_target
        from edefter_helper.targets.s3 import probe

        journal = Journal(self.journal_path)
        try:
            last = journal.last_probes()
            for ident, (cfg, user) in due.items():
                if ident in last and ident not in self._probe_due:  # probed before this start (target check)
                    at = datetime.fromisoformat(last[ident][0]).timestamp()
                    if wall - at < WORM_PROBE_EVERY:
                        self._probe_due[ident] = at + WORM_PROBE_EVERY
                        continue
                try:
                    with open_target(cfg.kind, cfg.address, cfg.name, user) as target:
                        worm, detail = probe(target)
                except TargetError as exc:
                    self._probe_due[ident] = wall + self.backoff
                    log.warning("WORM denetimi yapılamadı (%s): %s", redact(cfg.name), redact(exc.message))
                    continue
                journal.record_probe(ident, worm, detail)
                self._probe_due[ident] = wall + WORM_PROBE_EVERY
                self.worm_probes += 1
                log.log(logging.INFO if worm else logging.WARNING, "WORM denetimi (%s): %s", redact(cfg.name),
                        detail)
        finally:
            journal.close()

    def _wanted_roots(self) -> set[str]:
        """The e-Defter folders of the Otomatik Yedekleme = Evet firms (one inside another counts once)."""
        wanted = {os.path.normcase(os.path.abspath(f.folder)) for f in self.firms if f.auto and f.folder}
        return {r for r in wanted if not any(o != r and FolderIndex.under(r, o) for o in wanted)}

    def _sync_roots(self, problems: list[str]) -> set[str]:
        roots = self._roots
        for r in list(self.index.roots - roots):
            self.index.drop_root(r)
            if self._watcher:
                self._watcher.drop(r)
        present = set()
        for r in sorted(roots):
            if not os.path.isdir(r):
                problems.append(f"e-Defter klasörü bulunamadı: {r}")
                if r not in self._missing:
                    self._missing.add(r)
                    log.warning("e-Defter klasörü bulunamadı (ağ sürücüsü bağlı değil mi?): %s; bilinenler "
                                "korunuyor, her turda yeniden bakılacak.", r)
                if self._watcher:
                    self._watcher.drop(r)
                continue
            if r in self._missing:
                self._missing.discard(r)
                log.info("e-Defter klasörü yeniden erişilebilir: %s", r)
            if r not in self.index.roots:
                self.index.add_root(r)
            present.add(r)
        return present

    def _watch_active(self, present: set[str]) -> None:
        """File-system events for the folders where a month is under way: a month waiting for GİB's
        berats, one that changed since the agent started, one failing or awaiting confirmation. Quiet
        folders (every month backed up) are left to the rescan: inotify keeps a watch per folder, and
        300 firms × 120 months would cost the idle agent 30 MB for events that do not come."""
        if self._watcher is None:
            return
        now = self.clock()
        self._waiting = {gk for gk in self._waiting if gk in self.index.groups}
        busy = set(self._waiting) | set(self.failing) | set(self.recheck_at)
        busy.update(gk for gk in self.index.pending
                    if gk in self.index.groups and self.index.groups[gk].changed > self._baseline)
        for gk in busy:
            g = self.index.groups.get(gk)
            root = self.index.root_of(g.folders[0]) if g is not None else None
            if root is not None:
                self._active_until[root] = now + max(600.0, 10 * self.interval)
        for root in list(self._active_until):
            if self._active_until[root] <= now or root not in present:
                del self._active_until[root]
        for root in list(self._watcher.watches):
            if root not in self._active_until:
                self._watcher.drop(root)
        for root in sorted(self._active_until):
            problem = self._watcher.ensure(root)
            if problem:
                self._say_once("watch:" + root, problem)

    def _look(self, roots: set[str], scan: bool, full: bool) -> None:
        skip = self.index.roots - roots  # folders not there now: what was known is kept
        if full:
            self.index.full_pass(skip)
            self.full_scans += 1
        elif scan:
            self.index.stat_pass(skip)
            # every file looked at again once per full_rescan, a slice at every rescan
            self.index.sweep(min(1.0, self.interval / self.full_rescan), skip)
        if full or scan:
            self.scans += 1
            self._last_scan = self.clock()
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        self.events += len(dirty)
        for p in dirty:
            p = self._index_path(p)
            if p is not None and any(self.index.under(p, r) for r in roots):
                self.index.touch(p)

    def _index_path(self, p: str) -> str | None:
        p = os.path.normcase(p)
        for r in self.index.roots:
            if self.index.under(p, r):
                return p
        for r in self.index.roots:  # macOS FSEvents names real paths (/private/var/... for /var/...)
            real = self._real_roots.get(r)
            if real is None:
                real = self._real_roots[r] = os.path.normcase(os.path.realpath(r))
            if real != r and self.index.under(p, real):
                return r + p[len(real):]
        return None

    def _settle(self) -> None:
        """Months seen changing are looked at again; those unchanged for `settle` seconds are settled."""
        hot = [self.index.groups[gk] for gk in self.index.pending
               if gk in self.index.groups and not self.index.groups[gk].settled]
        if not hot:
            return
        self.index.relist_folders({d for g in hot for d in g.folders})
        now = self.clock()
        for gk in list(self.index.pending):
            g = self.index.groups.get(gk)
            if g is not None and not g.settled and now - g.changed >= self.settle:
                g.settled = True

    def _firms_of(self, gk: str) -> list:
        """The Otomatik Yedekleme = Evet firms a month (by its file names) may belong to."""
        from edefter_helper.engine.model import MonthKey
        from edefter_helper.settings import firm_for

        vkn, period, branch = split_key(gk)
        firms = self._firms_by_vkn.get(vkn)
        if not firms:
            return []
        if branch:
            f = firm_for(MonthKey(vkn, branch, period), firms)
            return [f] if f is not None and f.auto else []
        return [f for f in firms if f.auto]  # the branch is in the file's header: backup decides

    def _decide(self) -> list[str]:
        """Settled months to send now: ready by name, of an automatic firm, not done, not backing off."""
        wall = self.wallclock()
        work = []
        for gk in list(self.index.pending):
            g = self.index.groups.get(gk)
            if g is None:
                self.index.pending.discard(gk)
                continue
            if not g.settled:
                continue
            if g.done is not None and g.done == g.sig:
                self.index.pending.discard(gk)
                continue
            failing = self.failing.get(gk)
            if failing is not None:
                if failing.sig is None:
                    failing.sig = g.sig  # kept over a restart: the files as they are now
                elif failing.sig != g.sig:
                    log.info("%s: dosyalar değişti; yeniden denenecek.", _month_text(gk))
                    del self.failing[gk]
                    failing = None
            firms = self._firms_of(gk)
            ready = bool(firms) and ready_by_names(g.inv, split_key(gk)[1])
            if firms and not ready:
                self._waiting.add(gk)  # e.g. waiting for GİB's approved berats: its folder is watched
            else:
                self._waiting.discard(gk)
            if not ready:
                g.done = g.sig
                self.index.pending.discard(gk)
                continue
            if failing is not None and failing.retry_at > wall:
                continue
            if gk in self.recheck_at and self.recheck_at[gk] > wall:
                continue
            idents = {i for f in firms for i in self.identities(f)}
            if all(i in self.target_backoff and self.target_backoff[i].retry_at > wall for i in idents):
                continue
            work.append(gk)
        wanted = {i for gk in work for f in self._firms_of(gk) for i in self.identities(f)}
        for ident in [i for i, b in self.target_backoff.items() if b.retry_at <= wall and i not in wanted]:
            del self.target_backoff[ident]  # nothing left to try it with (its months went away or were done)
        if not work:
            return []
        backed = self._backed_up(work)
        for gk in backed:
            g = self.index.groups[gk]
            g.done = g.sig
            self.index.pending.discard(gk)
            self.failing.pop(gk, None)
            self.recheck_at.pop(gk, None)
        return [gk for gk in work if gk not in backed]

    def _backed_up(self, gks: list[str]) -> set[str]:
        """The months the journal already has as Yedeklendi for their firm's target. One indexed question
        per month (36 000 take under a second): reading every status at once would hold them all in
        memory, and an idle agent must stay small."""
        from edefter_helper import status as S
        from edefter_helper.engine.model import MonthKey
        from edefter_helper.journal import Journal

        if not gks or not self.journal_path.exists():
            return set()
        out = set()
        journal = Journal(self.journal_path)
        try:
            for gk in gks:
                vkn, period, branch = split_key(gk)
                for f in self._firms_of(gk):
                    key = MonthKey(vkn, branch or f.branch or NO_BRANCH, period)
                    sts = [journal.status(key, ident) for ident in self.identities(f)]  # every copy of it
                    if all(st is not None and st.status == S.BACKED_UP for st in sts):
                        out.add(gk)
                        break
        finally:
            journal.close()
        return out

    def _options(self):
        from edefter_helper.actions import Options

        base = self.options if self.options is not None else Options(wait=30.0)
        return dataclasses.replace(base, write_back=False, journal=self.journal_path)

    def _run_backup(self, work: list[str], problems: list[str]) -> None:
        from edefter_helper import actions
        from edefter_helper import status as S
        from edefter_helper.settings import firm_for

        by_month: dict[tuple[str, str], list[str]] = {}
        for gk in work:
            vkn, period, _ = split_key(gk)
            by_month.setdefault((vkn, period), []).append(gk)
        wall = self.wallclock()

        def match(key) -> str | None:
            for gk in by_month.get((key.vkn, key.period), ()):
                branch = split_key(gk)[2]
                if not branch or branch == key.branch:
                    return gk
            return None

        def where(key) -> bool:
            if match(key) is None:
                return False
            firm = firm_for(key, self.firms)
            if firm is None:
                return False
            # tried while any of its Hedefs may be tried (backup skips those already done)
            return any(b is None or b.retry_at <= wall
                       for b in (self.target_backoff.get(i) for i in self.identities(firm)))

        log.info("%d dönem yedekleniyor: %s", len(work), ", ".join(_month_text(gk) for gk in work[:10])
                 + (f" ve {len(work) - 10} dönem daha" if len(work) > 10 else ""))
        backup = self._backup or actions.backup
        try:
            summary = backup(self._book, options=self._options(), where=where)
        except actions.RunBusy as exc:
            problems.append(f"{exc} Bir sonraki turda yeniden denenecek.")
            log.info("%s", problems[-1])
            return
        self.backups += 1
        self.last_backup_at = self.wallclock()
        self.last_backup = summary.message
        log.info("Yedekleme: %s", redact(summary.message))
        for note in summary.notes:
            log.warning("Uyarı: %s", redact(note))
        outcome: dict[str, tuple] = {}
        seen_targets_ok: set[str] = set()
        failed_targets: dict[str, list[str]] = {}  # identity -> why (its Hedef's notes, or the month's message)
        for r in summary.results:
            gk = match(r.key)
            firm = firm_for(r.key, self.firms)
            ident = self._copy_identity(firm, r.target) if firm is not None else None
            hedef = r.target or (firm.target if firm is not None else "")
            if r.blocked:  # not tried: the target's settings are unusable, or nobody answered there
                if ident is not None:
                    why = [n for n in summary.notes if hedef and n.startswith(hedef)]
                    failed_targets.setdefault(ident, why or [r.message])
                continue
            log.log(logging.WARNING if r.status == S.FAILED else logging.INFO, "%s %s: %s — %s", r.firm,
                    r.key.period, r.status, redact(r.message))
            if gk is None:
                continue
            if r.status == S.FAILED and r.unreachable and ident is not None:
                # nobody answers at the address: the target's trouble, not the month's
                failed_targets[ident] = [r.message]
                outcome[gk] = (4, "target", r.message)
                continue
            if r.status in (S.BACKED_UP, S.ACCEPTED) and ident is not None:
                seen_targets_ok.add(ident)
            rank = {S.FAILED: 3, S.DAMAGED: 3, S.CHANGED: 3, S.ACCEPTED: 2, S.BACKED_UP: 1}.get(r.status, 2)
            prev = outcome.get(gk)
            if prev is None or rank > prev[0]:
                outcome[gk] = (rank, r.status, r.message)
        for ident in seen_targets_ok:
            if self.target_backoff.pop(ident, None) is not None:
                log.info("Hedef yeniden kullanılabilir: %s", redact(ident))
        for ident, reasons in failed_targets.items():
            if ident in seen_targets_ok:
                continue
            b = self.target_backoff.get(ident)
            n = (b.n if b is not None else 0) + 1
            delay = min(self.backoff * 2 ** (n - 1), self.max_backoff)
            text = f"Hedef kullanılamadı ({_describe(ident)}): {' '.join(reasons)}"
            self.target_backoff[ident] = _Backoff(n, self.wallclock() + delay, text)
            log.warning("%s %d sn sonra yeniden denenecek.", redact(text), delay)
        leftover = []
        for gk in work:
            g = self.index.groups.get(gk)
            if g is None:
                continue
            got = outcome.get(gk)
            if got is None:
                leftover.append(gk)
                continue
            _, status, message = got
            if status == "target":
                continue  # waits for its target's back-off
            if status == S.BACKED_UP:
                g.done = g.sig
                self.index.pending.discard(gk)
                self.failing.pop(gk, None)
                self.recheck_at.pop(gk, None)
            elif status == S.ACCEPTED:
                self.failing.pop(gk, None)
                self.recheck_at[gk] = self.wallclock() + min(self.backoff, 600.0)
            else:
                b = self.failing.get(gk)
                n = (b.n if b is not None else 0) + 1
                delay = min(self.backoff * 2 ** (n - 1), self.month_max_backoff)
                self.failing[gk] = _Backoff(n, self.wallclock() + delay, f"{_month_text(gk)}: {message}", g.sig)
                log.info("%s %d sn sonra yeniden denenecek.", _month_text(gk), delay)
        if leftover:
            backed = self._backed_up(leftover)
            for gk in leftover:
                g = self.index.groups[gk]
                if gk in backed:
                    g.done = g.sig
                    self.index.pending.discard(gk)
                    continue
                if any(self.identity(f) in failed_targets for f in self._firms_of(gk)):
                    continue  # not tried: its target is backing off
                # the backup did not take it (the files' contents say it is not ready, or it belongs to a
                # firm without Otomatik Yedekleme): nothing to do until its files change
                g.done = g.sig
                self.index.pending.discard(gk)
                log.info("%s: yedeklemeye alınmadı (GİB onaylı ve eksiksiz değil ya da otomatik yedeklenmiyor).",
                         _month_text(gk))
        failed = [f"{_month_text(gk)}: {o[2]}" for gk, o in outcome.items() if o[1] in (S.FAILED, S.DAMAGED, S.CHANGED)]
        if failed:
            self.last_error, self.last_error_at = redact(failed[-1]), self.wallclock()
        if self.on_results is not None:
            try:
                self.on_results(summary)
            except Exception:  # noqa: BLE001 - a notifier must not stop the backups
                log.exception("on_results bildirimi başarısız")

    # -- state ----------------------------------------------------------------------------------

    def _read_state(self) -> dict | None:
        return read_state(self.workbook)

    def _write_state(self, ok: bool | None, stopped: bool = False) -> None:
        data = {
            "format": STATE_FORMAT,
            "workbook": str(self.workbook),
            "journal": str(self.journal_path),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "running": not stopped,
            "started_at": _stamp(self.started_at),
            "stopped_at": _stamp(self.wallclock()) if stopped else None,
            "interval": self.interval,
            "settle": self.settle,
            "cycles": self.cycles,
            "scans": self.scans,
            "events": self.events,
            "backups": self.backups,
            "last_cycle_at": _stamp(self.last_cycle_at),
            "last_cycle_ok": ok,
            "last_success_at": _stamp(self.last_success_at),
            "last_success_epoch": self.last_success_at,
            "last_error": self.last_error,
            "last_error_at": _stamp(self.last_error_at),
            "last_error_epoch": self.last_error_at,
            "last_backup_at": _stamp(self.last_backup_at),
            "last_backup": self.last_backup,
            "folders": sorted(self.index.roots),
            "missing_folders": sorted(self._missing),
            "watching": len(self._watcher.watches) if self._watcher else 0,
            "months": len(self.index.groups),
            "pending": len(self.index.pending),
            "settings_notes": [redact(n) for n in self.notes],
            "failing": {gk: b.as_json() for gk, b in self.failing.items()},
            "targets_failing": {i: b.as_json() for i, b in self.target_backoff.items()},
        }
        try:
            from edefter_helper.fsutil import atomic_write

            with atomic_write(state_file(self.workbook), prefix=".durum-", suffix=".tmp") as fh:
                fh.write(json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))
        except OSError as exc:  # a status reader holding the file on Windows: the next cycle writes it
            log.debug("Durum dosyası yazılamadı: %s", exc)


def release_memory() -> None:
    """glibc keeps freed heap for reuse: after walking 36 000 folders or a backup, give it back to the
    system (an agent runs all day)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _month_text(gk: str) -> str:
    vkn, period, branch = split_key(gk)
    return f"{vkn}{'/' + branch if branch else ''} {period}"


def _describe(identity: str) -> str:
    from edefter_helper.settings import describe_target

    return redact(describe_target(identity))


def read_state(workbook) -> dict | None:
    try:
        return json.loads(state_file(workbook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_running(workbook) -> bool:
    """Whether an agent holds this workbook's lock now (the OS lock: a killed agent holds nothing)."""
    from filelock import FileLock, Timeout

    path = lock_file(workbook)
    if not path.exists():
        return False
    probe = FileLock(str(path))
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


def status(workbook) -> dict:
    """What `edefter agent status` shows: the state file, with `running` from the lock itself."""
    data = read_state(workbook) or {}
    data["workbook"] = workbook_path(workbook)
    data["running"] = is_running(workbook)
    data["state_file"] = str(state_file(workbook))
    data["log_file"] = str(log_file(workbook))
    for key in ("last_success_epoch", "last_error_epoch", "failing", "targets_failing"):
        data.setdefault(key, None if key.endswith("epoch") else {})
    return data


# -- logging ------------------------------------------------------------------------------------

class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


class _OneLine(logging.Formatter):
    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return ""  # tracebacks go to the log file only

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None
        saved, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = saved


def setup_logging(workbook, stderr: bool = True) -> list[logging.Handler]:
    """The agent's rotating log file in the data directory (and one-line warnings on stderr when
    there is one: a terminal, systemd's journal). Returns the handlers (tests remove them)."""
    from logging.handlers import RotatingFileHandler

    handlers: list[logging.Handler] = []
    fh = RotatingFileHandler(log_file(workbook), maxBytes=1_000_000, backupCount=3, encoding="utf-8", delay=True)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers.append(fh)
    if stderr and sys.stderr is not None:
        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(logging.WARNING)
        sh.setFormatter(_OneLine("edefter agent: %(message)s"))
        handlers.append(sh)
    root = logging.getLogger("edefter_helper")
    root.setLevel(logging.INFO)
    for h in handlers:
        h.addFilter(_Redact())
        root.addHandler(h)
    return handlers


# -- command line -------------------------------------------------------------------------------

class Alarms:
    """What the agent tells the Bildirimler channels besides the per-month events (those come from the
    runs): the dead-man alarm when no cycle succeeded for `threshold_s`, the daily digest for channels
    that ask for 'ozet', and retries of what could not be delivered.

    `check()` runs after every cycle (as the agent's on_cycle hook) and, once `start()`ed, from a thread
    of its own every `every_s` seconds: a cycle that hangs (a network share that stops answering
    blocks in the kernel) must still raise the alarm. A dead agent process cannot warn about itself:
    the service manager restarts it (see agent_install), and `edefter agent status` exits 1."""

    def __init__(self, agent: Agent, threshold_s: float | None = None, every_s: float = 300.0,
                 digest_every_s: float = 86400.0):
        from edefter_helper.notify import DEAD_MAN_DEFAULT_S

        self.agent = agent
        self.threshold_s = DEAD_MAN_DEFAULT_S if threshold_s is None else float(threshold_s)
        self.every_s = every_s
        self.digest_every_s = digest_every_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.checks = 0

    def __call__(self, ok: bool) -> None:
        self.check(after_cycle=True)

    def check(self, after_cycle: bool = False) -> None:
        """Never raises: an alarm must never stop the agent."""
        if not self._lock.acquire(blocking=after_cycle):
            return  # the other caller is at it
        try:
            from edefter_helper.notify import Notifier
            from edefter_helper.settings import read_channels

            channels, _ = read_channels(self._settings())
            if not channels:
                return
            with Notifier(channels, self.agent.journal_path, clock=self.agent.wallclock) as notifier:
                notifier.dead_man(self.agent.last_success_at, threshold_s=self.threshold_s)
                if notifier.digest_due(self.digest_every_s) and (after_cycle or self._cycles_stopped()):
                    # after a cycle, with the months due at GİB within 7 days per Sorumlu; from the thread
                    # only when cycles stopped, and then without them (a radar run would wait on the cycle)
                    notifier.digest(due_soon=self._due_soon() if after_cycle else None)
                if after_cycle:
                    notifier.deliver_pending()
        except Exception:  # noqa: BLE001 - an alarm must never stop the agent
            log.exception("Bildirim denetimi başarısız")
        finally:
            self.checks += 1
            self._lock.release()

    def _settings(self):
        """The settings the agent read last (re-read by its cycle when the file changes), not another read
        of the workbook every cycle; the file itself only before the first cycle read it."""
        book = getattr(self.agent, "_book", None)
        return book if book is not None else SettingsBook(self.agent.workbook)

    def _cycles_stopped(self) -> bool:
        last = self.agent.last_cycle_at
        return last is None or self.agent.wallclock() - last > 2 * max(self.agent.interval, self.every_s)

    def _due_soon(self):
        """radar.due_soon_for over every firm of the workbook (not only Otomatik Yedekleme ones): the
        scan, the journal, the deadline data; None when it cannot be made now (said in the log)."""
        from datetime import date

        from edefter_helper import radar

        try:
            return radar.due_soon_for(self._settings(), self.agent.journal_path,
                                      today=date.fromtimestamp(self.agent.wallclock()))
        except Exception as exc:  # noqa: BLE001 - the digest goes without the list
            log.warning("Son günü yaklaşan aylar özete eklenemedi: %s", redact(str(exc)))
            return None

    def start(self) -> None:
        def watch():
            while not self.agent._stop.wait(self.every_s):
                self.check()

        self._thread = threading.Thread(target=watch, name="ajan-alarm", daemon=True)
        self._thread.start()


def cmd_run(args) -> int:
    from edefter_helper.cli import EXIT_OK, UsageError

    if args.interval <= 0:
        raise UsageError("--interval 0'dan büyük olmalı.")
    if args.settle < 0:
        raise UsageError("--settle negatif olamaz.")
    if not args.alarm_hours > 0:
        raise UsageError("--alarm-hours 0'dan büyük olmalı.")
    agent = Agent(args.workbook, interval=args.interval, settle=args.settle,
                  journal=Path(args.journal) if args.journal else None)
    alarms = Alarms(agent, threshold_s=args.alarm_hours * 3600)
    agent.on_cycle = alarms
    handlers = setup_logging(args.workbook)
    previous = {}

    def on_signal(signum, frame):
        log.info("Durdurma isteği (sinyal %s).", signum)
        agent.stop()

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGINT", "SIGBREAK", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    previous[sig] = signal.signal(sig, on_signal)
                except (OSError, ValueError):
                    pass
    try:
        try:
            agent.start()
        except AgentBusy as exc:
            print(f"edefter: {exc}", file=sys.stderr)
            return EXIT_BUSY
        alarms.start()
        if sys.stdout is not None:
            print(f"Arka plan aracısı çalışıyor: {agent.workbook} (her {args.interval:g} sn tarama; "
                  f"günlük: {log_file(args.workbook)}). Durdurmak için Ctrl+C.", flush=True)
        agent.loop()
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError):
                pass
        for h in handlers:
            logging.getLogger("edefter_helper").removeHandler(h)
            h.close()


def _when(text: str | None) -> str:
    if not text:
        return "-"
    try:
        return datetime.fromisoformat(text).strftime("%d.%m.%Y %H:%M:%S")
    except ValueError:
        return text


def cmd_status(args) -> int:
    from edefter_helper.cli import EXIT_OK, EXIT_PROBLEMS, _print_json

    data = status(args.workbook)
    if args.json:
        _print_json(data)
        return EXIT_OK if data["running"] else EXIT_PROBLEMS
    if data["running"]:
        print(f"Arka plan aracısı çalışıyor (PID {data.get('pid', '?')}, {_when(data.get('started_at'))} tarihinden "
              f"beri): {data['workbook']}")
    elif data.get("started_at"):
        print(f"Arka plan aracısı çalışmıyor (son çalışma: {_when(data.get('started_at'))} – "
              f"{_when(data.get('stopped_at') or data.get('last_cycle_at'))}): {data['workbook']}")
    else:
        print(f"Bu çalışma kitabı için arka plan aracısı hiç çalışmamış: {data['workbook']}")
    if data.get("started_at"):
        print(f"Son tur: {_when(data.get('last_cycle_at'))} ({data.get('cycles', 0)} tur); "
              f"son başarılı tur: {_when(data.get('last_success_at'))}")
        if data.get("folders"):
            print(f"İzlenen klasör: {len(data['folders'])}, dönem: {data.get('months', 0)}, "
                  f"bekleyen: {data.get('pending', 0)}")
        if data.get("last_backup"):
            print(f"Son yedekleme: {_when(data.get('last_backup_at'))}: {data['last_backup']}")
        for path in data.get("missing_folders") or []:
            print(f"Bulunamayan klasör: {path}")
        for ident, b in (data.get("targets_failing") or {}).items():
            print(f"Hedef beklemede ({b.get('n', 1)}. hata, {_when(_stamp(b.get('retry_at')))} sonrası yeniden "
                  f"denenecek): {b.get('message', '')}")
        for gk, b in (data.get("failing") or {}).items():
            print(f"Dönem beklemede ({_when(_stamp(b.get('retry_at')))} sonrası yeniden denenecek): "
                  f"{b.get('message', '')}")
        print(f"Son hata: {_when(data.get('last_error_at'))}: {data['last_error']}" if data.get("last_error")
              else "Son hata: yok")
    print(f"Günlük dosyası: {data['log_file']}")
    return EXIT_OK if data["running"] else EXIT_PROBLEMS


def cmd_install(args) -> int:
    from edefter_helper import agent_install

    return agent_install.cmd_install(args)


def cmd_uninstall(args) -> int:
    from edefter_helper import agent_install

    return agent_install.cmd_uninstall(args)


def register(sub) -> None:
    """`edefter agent run|install|uninstall|status` (commands.py calls this)."""
    p = sub.add_parser("agent", help="otomatik yedekleme: arka plan aracısı (run, install, uninstall, status)")
    asub = p.add_subparsers(dest="agent_command", metavar="İŞLEM", parser_class=sub._parser_class)
    asub.required = True

    def workbook(q):
        q.add_argument("--workbook", required=True, metavar="DOSYA", help="kontrol çalışma kitabı (.xlsm)")

    def timing(q, defaults: bool):
        q.add_argument("--interval", type=float, default=60.0 if defaults else None, metavar="SANİYE",
                       help="klasörlerin periyodik taranma aralığı (60)")
        q.add_argument("--settle", type=float, default=60.0 if defaults else None, metavar="SANİYE",
                       help="bir ayın dosyaları bu kadar süre değişmeden kalınca alınır (60)")
        q.add_argument("--journal", metavar="DOSYA", help="günlük veritabanı (varsayılan: kullanıcı veri klasörü)")

    q = asub.add_parser("run", help="aracıyı ön planda çalıştırır (Ctrl+C ile durur)")
    workbook(q)
    timing(q, True)
    q.add_argument("--alarm-hours", type=float, default=26.0, metavar="SAAT",
                   help="bu kadar saat başarılı tur olmazsa Bildirimler'e 'otomatik yedekleme durmuş olabilir' "
                        "uyarısı gider (26)")
    q.set_defaults(func=cmd_run)

    q = asub.add_parser("install", help="aracıyı bu kullanıcı oturum açınca başlayacak biçimde kurar "
                                        "(Windows Görev Zamanlayıcı, macOS LaunchAgent, Linux systemd --user)")
    workbook(q)
    timing(q, False)
    q.add_argument("--print", dest="print_only", action="store_true",
                   help="kurmaz; görev/plist/birim dosyasını yazdırır")
    q.add_argument("--system", choices=("windows", "macos", "linux"), help=argparse_suppress())
    q.set_defaults(func=cmd_install)

    q = asub.add_parser("uninstall", help="kurulu aracıyı kaldırır")
    workbook(q)
    q.add_argument("--system", choices=("windows", "macos", "linux"), help=argparse_suppress())
    q.set_defaults(func=cmd_uninstall)

    q = asub.add_parser("status", help="aracı çalışıyor mu, ne zamandan beri, son tur ve son hata")
    workbook(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_status)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def main(argv: list[str] | None = None) -> int:
    """`python -m edefter_helper.agent ...` = `edefter agent ...` (usable before commands.py registers it)."""
    from edefter_helper.cli import EXIT_USAGE, UsageError, _Parser

    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    parser = _Parser(prog="edefter")
    sub = parser.add_subparsers(dest="command", metavar="KOMUT", parser_class=_Parser)
    sub.required = True
    register(sub)
    args = parser.parse_args(["agent", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, the details in hata.log (as cli.main)
        from edefter_helper.cli import EXIT_PROBLEMS, _log_unexpected

        print(f"edefter: beklenmeyen hata ({type(exc).__name__}): {exc}. Ayrıntılar: {_log_unexpected()}",
              file=sys.stderr)
        return EXIT_PROBLEMS


if __name__ == "__main__":
    from edefter_helper.agent import main as _main  # the one module object, whatever runs it

    sys.exit(_main())
