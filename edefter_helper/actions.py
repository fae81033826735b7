"""What the buttons and commands do: Tara, Gönder, Durum Sorgula, Toplu Yedekle.

Every face (CLI on a workbook file, the ribbon in Excel) calls these with a `Book`; the
journal holds the truth and the Dönemler sheet is rewritten from it after each action.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from edefter_helper import paths
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey, MonthSet
from edefter_helper.engine.names import NO_BRANCH, valid_branch, valid_identifier
from edefter_helper.engine.package import PackError
from edefter_helper.journal import Journal
from edefter_helper.targets.base import (ACCEPTED, MISSING, REJECTED, STORED, Package, Target, TargetError)
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.book import Book

ACTION_SCAN, ACTION_SEND, ACTION_QUERY, ACTION_BACKUP = "Tara", "Gönder", "Durum Sorgula", "Toplu Yedekle"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class Options:
    parallel: int = 4  # uploads at once
    wait: float = 120.0  # seconds Toplu Yedekle waits for confirmations
    poll: float = 0.5  # first pause between status queries
    retry_backoff: float = field(default_factory=lambda: _env_float("EDEFTER_RETRY_BACKOFF", 2.0))
    journal: Path | None = None


@dataclass
class Firm:
    name: str
    vkn: str
    branch: str  # "" = every branch of this VKN without a row of its own
    folder: str
    target: str
    user: str
    auto: bool


@dataclass
class TargetConfig:
    name: str
    kind: str
    address: str
    description: str


@dataclass
class MonthResult:
    key: MonthKey
    firm: str
    status: str
    message: str


@dataclass
class Summary:
    action: str
    results: list[MonthResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # settings problems etc.
    found: int = 0

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.status == S.FAILED)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def message(self) -> str:
        if self.action == ACTION_SCAN:
            text = f"{self.found} dönem bulundu"
        elif not self.results:
            text = "İşlenecek dönem yok"
        else:
            parts = []
            for st, word in ((S.BACKED_UP, "yedeklendi"), (S.ACCEPTED, "entegratöre işlendi (onay bekliyor)"),
                             (S.FAILED, "yedeklenemedi"), (S.NOT_SENT, "gönderilmedi")):
                n = self.count(st)
                if n:
                    parts.append(f"{n} dönem {word}")
            text = ", ".join(parts)
        if self.notes:
            text += f" ({len(self.notes)} uyarı: Günlük sayfasına bakın)"
        return text + "."


class SettingsError(Exception):
    """The workbook cannot be used as it is; Turkish message."""


# -- reading the workbook -----------------------------------------------------------------------

def _s(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read_settings(book: Book) -> tuple[list[Firm], dict[str, TargetConfig], list[str]]:
    notes: list[str] = []
    targets: dict[str, TargetConfig] = {}
    for i, row in enumerate(book.read_rows(L.TARGETS), start=2):
        name, kind = _s(row.get("name")), _s(row.get("kind")).lower()
        if not name:
            continue
        if kind in ("klasor", "folder"):
            kind = "klasör"
        if kind not in L.TARGET_KINDS:
            notes.append(f"Hedefler satır {i}: '{name}' için Tür '{row.get('kind')}' geçersiz "
                         f"({', '.join(L.TARGET_KINDS)} olmalı).")
            continue
        targets[name] = TargetConfig(name, kind, _s(row.get("address")),
                                     _s(row.get("description")) or L.DEFAULT_DESCRIPTION)
    firms: list[Firm] = []
    for i, row in enumerate(book.read_rows(L.FIRMS), start=2):
        vkn = _s(row.get("vkn"))
        name = _s(row.get("name")) or vkn
        if not vkn and not _s(row.get("folder")):
            continue
        branch = _s(row.get("branch"))
        if branch.isdigit() and len(branch) < 4:
            branch = branch.zfill(4)  # Excel drops leading zeros of numbers
        if vkn.isdigit() and len(vkn) in (9, 10) and not valid_identifier(vkn):
            vkn = vkn.zfill(10)
        if not valid_identifier(vkn):
            notes.append(f"Firmalar satır {i} ({name}): VKN/TCKN '{vkn}' geçersiz (VKN 10, TCKN 11 hane).")
            continue
        if branch and not valid_branch(branch):
            notes.append(f"Firmalar satır {i} ({name}): Şube No '{branch}' 4 haneli olmalı.")
            continue
        if branch == NO_BRANCH:
            branch = ""
        auto = _s(row.get("auto")).lower() not in ("hayır", "hayir", "h", "no", "0", "false")
        firms.append(Firm(name, vkn, branch, _s(row.get("folder")), _s(row.get("target")), _s(row.get("user")),
                          auto))
    return firms, targets, notes


def firm_for(key: MonthKey, firms: list[Firm]) -> Firm | None:
    for f in firms:
        if f.vkn == key.vkn and f.branch and f.branch == key.branch:
            return f
    for f in firms:
        if f.vkn == key.vkn and not f.branch:
            return f
    return None


# -- the context of one action ------------------------------------------------------------------

class _Run:
    def __init__(self, book: Book, action: str, options: Options | None):
        self.book = book
        self.action = action
        self.options = options or Options()
        self.firms, self.targets, notes = read_settings(book)
        self.summary = Summary(action, notes=notes)
        self.journal = Journal(paths.journal_path(self.options.journal))
        self.sets: dict[MonthKey, MonthSet] = {}
        self.log_rows: list[dict] = []
        self._open_targets: dict[tuple[str, str], Target] = {}
        self._uses: dict[tuple[str, str], int] = {}  # months still to do per (target, user)
        self._lock = threading.Lock()
        _remove_abandoned_workdirs(paths.data_dir())
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=paths.data_dir()))
        (self.workdir / "pid").write_text(str(os.getpid()))
        # a killed earlier run: its open attempts are closed; the target is asked again below
        self.journal.close_stale("Önceki çalışma yarıda kesildi; durum hedefe yeniden sorulacak.")

    def close(self) -> None:
        for t in self._open_targets.values():
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing must never hide the result
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.journal.close()

    def progress(self, text: str) -> None:
        self.book.progress(text)

    def scan(self) -> None:
        from edefter_helper.engine.cache import FileCache
        from edefter_helper.engine.verify import verify_roots

        folders = []
        for f in self.firms:
            if not f.folder:
                self.summary.notes.append(f"{f.name}: e-Defter Klasörü boş.")
            elif not Path(f.folder).is_dir():
                self.summary.notes.append(f"{f.name}: e-Defter Klasörü bulunamadı: {f.folder}")
            elif f.folder not in folders:
                folders.append(f.folder)
        from edefter_helper.engine.trust import TrustError, TrustList

        try:
            trust = TrustList.default()
        except TrustError as exc:
            self.summary.notes.append(f"{exc} GİB karşı imzaları bu çalışmada doğrulanamayacak.")
            trust = TrustList()
        cache = FileCache(paths.cache_path())
        try:
            if folders:
                result = verify_roots([Path(x) for x in folders], cache, progress=self.progress, trust=trust)
                for ms in result.sets:
                    if firm_for(ms.key, self.firms) is not None:
                        self.sets[ms.key] = ms
        finally:
            cache.close()
        self.summary.found = len(self.sets)

    def target_for(self, firm: Firm) -> Target:
        from edefter_helper.targets.factory import open_target

        cfg = self.targets.get(firm.target)
        if cfg is None:
            raise TargetError(f"'{firm.target or '(boş)'}' hedefi Hedefler sayfasında tanımlı değil.")
        with self._lock:
            key = (firm.target, firm.user)
            if key not in self._open_targets:
                self._open_targets[key] = open_target(cfg.kind, cfg.address, cfg.name, firm.user,
                                                      backoff=self.options.retry_backoff)
            return self._open_targets[key]

    def expect(self, firms: list[Firm]) -> None:
        with self._lock:
            for firm in firms:
                self._uses[(firm.target, firm.user)] = self._uses.get((firm.target, firm.user), 0) + 1

    def release(self, firm: Firm) -> None:
        """A firm's last month is done: close its connection now, not at the end of the run (an
        accounting office's dozens of logins would otherwise hold connections open)."""
        key = (firm.target, firm.user)
        with self._lock:
            self._uses[key] = self._uses.get(key, 1) - 1
            target = self._open_targets.pop(key, None) if self._uses[key] <= 0 else None
        if target is not None:
            try:
                target.close()
            except Exception:  # noqa: BLE001 - closing must never hide the result
                pass

    def log(self, key: MonthKey, firm: str, status: str, message: str) -> None:
        with self._lock:
            self.log_rows.append({"time": datetime.now().replace(microsecond=0), "action": self.action,
                                  "name": firm, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                                  "status": status, "message": message})
            self.summary.results.append(MonthResult(key, firm, status, message))

    def write_back(self) -> None:
        rows = period_rows(self.sets, self.firms, self.journal)
        self.book.write_rows(L.PERIODS, rows)
        notes = [{"time": datetime.now().replace(microsecond=0), "action": self.action, "status": "Uyarı",
                  "message": n} for n in self.summary.notes]
        end = {"time": datetime.now().replace(microsecond=0), "action": self.action, "status": "Özet",
               "message": self.summary.message}
        self.book.append_rows(L.LOG, notes + self.log_rows + [end])
        self.book.save()


WORKDIR_PREFIX = "paketler-"


def _remove_abandoned_workdirs(data_dir: Path) -> None:
    """Packages a killed run left behind are copies of ledgers: remove them once their run is gone."""
    for folder in data_dir.glob(WORKDIR_PREFIX + "*"):
        try:
            pid = int((folder / "pid").read_text())
        except (OSError, ValueError):
            pid = None
        if pid is not None and _process_alive(pid):
            continue
        if pid is None and time.time() - folder.stat().st_mtime < 3600:
            continue  # a run that is just starting has not written its pid yet
        shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _target_name(firm: Firm) -> str:
    return firm.target or "-"


def period_rows(sets: dict[MonthKey, MonthSet], firms: list[Firm], journal: Journal) -> list[dict]:
    """The Dönemler sheet: every month on disk, and every month the journal knows of (a month whose
    files disappeared after a backup stays visible)."""
    rows = {}
    known = {(st.key, st.target): st for st in journal.statuses()}
    keys = set(sets)
    for (key, _target) in known:
        if firm_for(key, firms) is not None:
            keys.add(key)
    for key in keys:
        firm = firm_for(key, firms)
        ms = sets.get(key)
        st = known.get((key, _target_name(firm)))
        if ms is None:
            stage, validation = "Klasörde bulunamadı", ""
        else:
            stage = S.STAGE_TR.get(ms.stage, ms.stage)
            validation = L.VALID if ms.valid else (L.INCOMPLETE if not ms.complete else L.INVALID)
        status = st.status if st else S.NOT_SENT
        message = st.message if st else ""
        if ms is not None and not ms.valid and status != S.BACKED_UP:
            message = "; ".join(p.message for p in ms.problems)
        updated = None
        if st and st.updated_at:
            try:
                updated = datetime.fromisoformat(st.updated_at).replace(tzinfo=None)
            except ValueError:
                updated = None
        rows[key] = {"name": firm.name, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                     "stage": stage, "validation": validation, "status": status, "message": message,
                     "updated": updated, "sha256": st.package_sha256 if st else "",
                     "reference": st.receipt if st else ""}
    return [rows[k] for k in sorted(rows, key=lambda k: (rows[k]["name"].casefold(), k.vkn, k.branch, k.period))]


# -- one month ----------------------------------------------------------------------------------

def _problems_text(ms: MonthSet) -> str:
    return "Doğrulama başarısız, gönderilmedi: " + "; ".join(p.message for p in ms.problems)


def _pack(run: _Run, ms: MonthSet) -> Package:
    """Raises PackError (Turkish message) when a file is no longer the verified bytes; the cached
    verdicts of those files are dropped so the next run reads them again."""
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.package import PackError, pack

    try:
        packed = pack(ms, run.workdir / f"{ms.key.vkn}-{ms.key.branch}-{ms.key.period}")
    except PackError as exc:
        cache = FileCache(paths.cache_path())
        try:
            cache.forget(exc.paths)
        finally:
            cache.close()
        raise
    return Package(packed.path, ms.key, packed.sha256, packed.size, packed.files)


def _confirmed(run: _Run, key: MonthKey, firm: Firm, attempt: int, sha: str, receipt) -> str:
    """Finish an attempt from what the target says; returns the month's new status."""
    target_name = _target_name(firm)
    if receipt.state == STORED and receipt.sha256 == sha:
        status, message = S.BACKED_UP, S.backed_up_message(key.period)
    elif receipt.state == STORED:
        status = S.FAILED
        message = (f"Hedefte bu ay için başka bir paket saklanıyor (sha256 {receipt.sha256[:12]}…, gönderilen "
                   f"{sha[:12]}…). Dönem bir kez saklanır; yenisi için önce hedefteki paket iptal edilmeli.")
    elif receipt.state == ACCEPTED and (not receipt.sha256 or receipt.sha256 == sha):
        status, message = S.ACCEPTED, receipt.message or "Paket entegratöre iletildi; saklama onayı bekleniyor."
    elif receipt.state == REJECTED:
        status, message = S.FAILED, f"Entegratör paketi reddetti: {receipt.message or 'neden belirtilmedi'}"
    elif receipt.state == MISSING:
        status, message = S.FAILED, "Gönderilen paket hedefte bulunamadı; yeniden gönderilmeli."
    else:
        status, message = S.FAILED, f"Hedef beklenmeyen bir durum bildirdi: {receipt.state}"
    run.journal.finish(attempt, key, target_name, status, message, receipt.reference, sha)
    run.log(key, firm.name, status, message)
    return status


def send_month(run: _Run, ms: MonthSet, firm: Firm) -> str:
    """Verify (already done), pack, ask the target, send if needed. Returns the new status."""
    key, target_name = ms.key, _target_name(firm)
    if not ms.valid:
        message = _problems_text(ms)
        run.journal.record(key, target_name, "verify", S.FAILED, message)
        run.log(key, firm.name, S.FAILED, message)
        return S.FAILED
    try:
        target = run.target_for(firm)
        package = _pack(run, ms)
    except (TargetError, OSError, PackError) as exc:
        message = getattr(exc, "message", None) or (
            f"Paket hazırlanamadı: {getattr(exc, 'filename', '') or ''} okunamadı ({exc.strerror or exc}).")
        run.journal.record(key, target_name, "send", S.FAILED, message)
        run.log(key, firm.name, S.FAILED, message)
        return S.FAILED
    # one attempt, opened before the network is touched and closed with the month's status
    attempt = run.journal.begin(key, target_name, "send", package.sha256, package.files)
    try:
        # the target may already hold it (a run killed after sending): never send twice
        receipt = target.query(key)
        if not (receipt.state in (STORED, ACCEPTED) and receipt.sha256 == package.sha256):
            receipt = target.send(package, run.targets[firm.target].description)
            if receipt.state == ACCEPTED and not receipt.sha256:
                receipt.sha256 = package.sha256
    except TargetError as exc:
        run.journal.finish(attempt, key, target_name, S.FAILED, exc.message, "", package.sha256)
        run.log(key, firm.name, S.FAILED, exc.message)
        return S.FAILED
    finally:
        shutil.rmtree(package.path.parent, ignore_errors=True)
    return _confirmed(run, key, firm, attempt, package.sha256, receipt)


def query_month(run: _Run, key: MonthKey, firm: Firm) -> str:
    target_name = _target_name(firm)
    known = run.journal.status(key, target_name)
    sha = known.package_sha256 if known else ""
    ms = run.sets.get(key)
    if not sha and ms is not None and ms.valid:
        # never sent from here: the target may still hold exactly our files
        try:
            package = _pack(run, ms)
            sha = package.sha256
            shutil.rmtree(package.path.parent, ignore_errors=True)
        except (OSError, PackError):
            sha = ""
    attempt = run.journal.begin(key, target_name, "query", sha or None)
    try:
        target = run.target_for(firm)
        receipt = target.query(key)
    except TargetError as exc:
        run.journal.finish(attempt, key, target_name, known.status if known else S.NOT_SENT,
                           f"Durum sorgulanamadı: {exc.message}", "", sha or None)
        run.log(key, firm.name, known.status if known else S.NOT_SENT, f"Durum sorgulanamadı: {exc.message}")
        return known.status if known else S.NOT_SENT
    if receipt.state == MISSING and not (known and known.package_sha256):
        # never sent from here and not there: keep what we know (e.g. why verification failed)
        current = known.status if known else S.NOT_SENT
        shown = known.message if known and known.message else "Hedefte bu ay için paket yok."
        run.journal.finish(attempt, key, target_name, current, "Hedefte bu ay için paket yok.", "", sha or None,
                           set_status=False)
        run.log(key, firm.name, current, shown)
        return current
    return _confirmed(run, key, firm, attempt, sha, receipt)


# -- actions ------------------------------------------------------------------------------------

def _run_action(book: Book, action: str, options: Options | None, body: Callable[[_Run], None]) -> Summary:
    run = _Run(book, action, options)
    try:
        run.progress(f"{action}: klasörler taranıyor…")
        run.scan()
        body(run)
        run.progress(f"{action}: çalışma kitabına yazılıyor…")
        run.write_back()
        return run.summary
    finally:
        run.close()
        book.progress("")


def _selected(run: _Run, keys: list[MonthKey] | None, where=None) -> list[MonthKey]:
    base = sorted(run.sets) if keys is None else [k for k in keys if firm_for(k, run.firms) is not None]
    return [k for k in base if where is None or where(k)]


def _parallel(run: _Run, work: list, fn) -> None:
    """Run fn over (month, firm) items, at most options.parallel at once."""
    done = [0]
    run.expect([item[1] for item in work])

    def one(item):
        try:
            fn(item)
        finally:
            run.release(item[1])
            with run._lock:
                done[0] += 1
                run.progress(f"{run.action}: {done[0]}/{len(work)} dönem")

    if run.options.parallel <= 1 or len(work) <= 1:
        for item in work:
            one(item)
        return
    with ThreadPoolExecutor(max_workers=run.options.parallel) as pool:
        list(pool.map(one, work))


def refresh(book: Book, options: Options | None = None) -> Summary:
    """Tara / Yenile: scan every firm's folder and rewrite Dönemler from the files and the journal."""
    return _run_action(book, ACTION_SCAN, options, lambda run: None)


def send(book: Book, keys: list[MonthKey] | None = None, options: Options | None = None,
         where: Callable[[MonthKey], bool] | None = None) -> Summary:
    """Gönder: send the given months (all listed months when None) that are not yet Yedeklendi."""

    def body(run: _Run) -> None:
        work = []
        for key in _selected(run, keys, where):
            firm = firm_for(key, run.firms)
            ms = run.sets.get(key)
            if ms is None:
                run.log(key, firm.name, S.FAILED, "Bu ayın dosyaları klasörde bulunamadı.")
                continue
            known = run.journal.status(key, _target_name(firm))
            if known and known.status == S.BACKED_UP:
                run.log(key, firm.name, S.BACKED_UP, "Zaten yedeklendi; yeniden gönderilmedi.")
                continue
            work.append((ms, firm))
        _parallel(run, work, lambda item: send_month(run, *item))

    return _run_action(book, ACTION_SEND, options, body)


def query(book: Book, keys: list[MonthKey] | None = None, options: Options | None = None,
          where: Callable[[MonthKey], bool] | None = None) -> Summary:
    """Durum Sorgula: ask the target about the given months (all sent months when None)."""

    def body(run: _Run) -> None:
        if keys is None:
            work = [(st.key, firm_for(st.key, run.firms)) for st in run.journal.statuses()
                    if firm_for(st.key, run.firms) is not None and (where is None or where(st.key))
                    and st.target == _target_name(firm_for(st.key, run.firms))]
        else:
            work = [(k, firm_for(k, run.firms)) for k in _selected(run, keys, where)]
        _parallel(run, work, lambda item: query_month(run, *item))

    return _run_action(book, ACTION_QUERY, options, body)


def backup(book: Book, all_months: bool = False, options: Options | None = None) -> Summary:
    """Toplu Yedekle: every month at "Onaylı Berat İndirildi" not yet Yedeklendi is sent, then queried
    until confirmed or the time limit. Firms set to Otomatik Yedekleme = Hayır only with all_months."""

    def body(run: _Run) -> None:
        work = []
        waiting = 0
        for key in sorted(run.sets):
            ms, firm = run.sets[key], firm_for(key, run.firms)
            if not (firm.auto or all_months):
                continue
            if ms.stage != "gib-approved":
                waiting += 1
                continue
            known = run.journal.status(key, _target_name(firm))
            if known and known.status == S.BACKED_UP:
                continue
            work.append((ms, firm))
        if waiting:
            run.summary.notes.append(f"{waiting} dönem henüz GİB onaylı beratı indirilmediği için beklemede.")
        results: dict[MonthKey, str] = {}

        def one(item):
            results[item[0].key] = send_month(run, *item)

        _parallel(run, work, one)
        pending = [(ms.key, firm) for ms, firm in work if results.get(ms.key) == S.ACCEPTED]
        deadline = time.monotonic() + run.options.wait
        pause = run.options.poll
        while pending and time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 5.0)
            still = []

            def poll(item):
                # the time limit is checked before every question, not only between rounds
                if time.monotonic() >= deadline or query_month(run, *item) == S.ACCEPTED:
                    with run._lock:
                        still.append(item)

            _parallel(run, pending, poll)
            pending = still
        # a month is reported once, with its last status
        last: dict[MonthKey, MonthResult] = {}
        for r in run.summary.results:
            last[r.key] = r
        run.summary.results = list(last.values())
        last_log = {}
        for row in run.log_rows:
            last_log[(row["vkn"], row["branch"], row["period"])] = row
        run.log_rows = list(last_log.values())

    return _run_action(book, ACTION_BACKUP, options, body)
