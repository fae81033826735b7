"""What the buttons and commands do: Tara, Gönder, Durum Sorgula, Toplu Yedekle.

Every face (CLI on a workbook file, the ribbon in Excel) calls these with a `Book`; the
journal holds the truth and the Dönemler sheet is rewritten from it after each action.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
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
from edefter_helper.engine.package import PackError
from edefter_helper.journal import Journal
from edefter_helper.targets.base import (ACCEPTED, MISSING, REJECTED, STORED, ConfigurationError, Package, Target,
                                         TargetError, UnreachableError)
from edefter_helper.settings import (Firm, Firms, SettingsError, TargetConfig, describe_target,  # noqa: F401
                                     firm_for, read_settings, target_identity)
from edefter_helper.sheetview import (NO_LOCAL_RECORD, KeptRows, changed_files, journal_rows,  # noqa: F401
                                      month_state, period_rows, problems_sentence)
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.book import Book

log = logging.getLogger(__name__)

_describe = describe_target

ACTION_SCAN, ACTION_SEND, ACTION_QUERY, ACTION_BACKUP = "Tara", "Gönder", "Durum Sorgula", "Toplu Yedekle"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass
class Options:
    parallel: int = 4  # uploads at once
    wait: float = 120.0  # seconds Toplu Yedekle waits for confirmations
    poll: float = 0.5  # first pause between status queries
    retry_backoff: float = field(default_factory=lambda: _env_float("EDEFTER_RETRY_BACKOFF", 2.0))
    journal: Path | None = None
    lock_wait: float = 5.0  # seconds to wait for another run on the same journal or workbook
    # False: the workbook is only a settings source (the background agent; the user may have it open in
    # Excel) and results go to the journal alone; the sheets show them at the next button or Yenile
    write_back: bool = True
    # Tara, Gönder, Durum Sorgula and Toplu Yedekle over more firms than this work a group of firms at a
    # time (scan, send or ask, rows), so that an office's run holds one group's files, not 300 firms'
    # (issue 12; 10 firms × 10 years are ~8 000 files)
    group_firms: int = field(default_factory=lambda: _env_int("EDEFTER_GROUP_FIRMS", 10))


@dataclass(slots=True)
class MonthResult:
    key: MonthKey
    firm: str
    status: str
    message: str
    blocked: bool = False  # not tried: its target's settings are unusable
    unreachable: bool = False  # failed because nobody answered at the target: the target's trouble
    target: str = ""  # the Hedef this copy went to, for a firm with several (else "")


@dataclass
class Summary:
    action: str
    results: list[MonthResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # settings problems etc.
    found: int = 0
    blocked: int = 0  # months not tried because their target's settings are unusable
    errors: int = 0  # months an unexpected fault stopped (details in hata.log)
    extra: dict = field(default_factory=dict)  # what an action adds for its caller (restore: folder, report)

    @property
    def failed(self) -> int:
        return self.errors + sum(1 for r in self.results
                                 if r.status in (S.FAILED, S.DAMAGED, "Geri Yüklenemedi", "Yerel Dosya Uyarısı"))

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def message(self) -> str:
        if self.action == ACTION_SCAN:
            text = f"{self.found} dönem bulundu"
        elif self.action == "Takvim / Radar":
            cells = self.extra.get("cells", [])
            urgent = sum(1 for c in cells if c["urgent"])
            text = f"{self.found} firma satırı, {urgent} dikkat isteyen ay"
        elif self.action == "Durumu Yenile":
            running = self.extra.get("running", 0)
            counts = self.extra.get("counts", {})
            shown = ", ".join(f"{n} {w}" for w, n in sorted(counts.items(), key=lambda kv: -kv[1]) if w)
            text = ((f"{running} dönem şu an işleniyor; " if running else "")
                    + f"{self.found} dönemin durumu günlükten yenilendi" + (f" ({shown})" if shown else ""))
        elif self.action == "Yerel Dosya Kontrolü":
            n = len(self.results)
            text = (f"{n} dosya yedekten farklı" if n else "Yerel dosyalar yedeklerle aynı; sorun bulunmadı")
        elif self.action == "Geri Yükle":
            ok = self.count("Geri Yüklendi")
            text = f"{ok} dönem geri yüklendi"
            if len(self.results) - ok:
                text += f", {len(self.results) - ok} dönem geri yüklenemedi"
            if self.extra.get("report"):
                text += f"; İbraz Raporu: {self.extra['report']}"
        elif not self.results:
            text = "İşlenecek dönem yok"
        else:
            parts = []
            month = _per_month(self.results)
            for st, word in ((S.BACKED_UP, "yedeklendi"), (S.ACCEPTED, "entegratöre işlendi (onay bekliyor)"),
                             (S.FAILED, "yedeklenemedi"), (S.CHANGED, "yedeği güncel değil"),
                             ("Doğrulandı", "hedefteki kopyası doğrulandı"),
                             (S.DAMAGED, "hedefteki kopyası bozuk"), (S.NOT_SENT, "gönderilmedi")):
                n = sum(1 for r in month.values() if r.status == st and not r.blocked)
                if n:
                    parts.append(f"{n} dönem {word}")
            if self.blocked:
                several = any(r.target for r in self.results if r.blocked)
                parts.append(f"{self.blocked} {'kopya' if several else 'dönem'} hedef ayarları yüzünden denenmedi")
            text = ", ".join(parts)
        if self.errors:
            text += f"; {self.errors} dönem beklenmeyen bir hata yüzünden işlenemedi (ayrıntılar hata.log'da)"
        if self.notes:
            text += f" ({len(self.notes)} uyarı: Günlük sayfasına bakın)"
        return text + "."


def _per_month(results: list[MonthResult]) -> dict[MonthKey, MonthResult]:
    """A month's result for counting: its worst copy (one result per month when it has one Hedef)."""
    from edefter_helper.copies import worst

    out: dict[MonthKey, MonthResult] = {}
    for r in results:
        seen = out.get(r.key)
        if seen is None or (seen.blocked and not r.blocked):
            out[r.key] = r
        elif not r.blocked and worst([seen.status, r.status]) != seen.status:
            out[r.key] = r
    return out


class RunBusy(Exception):
    """Another run holds the journal or the workbook; Turkish message."""


class _RunLock:
    """One run at a time per journal and per workbook file: two at once would send every package
    twice and lose one run's Günlük rows. OS file locks (filelock), released even if killed."""

    def __init__(self, journal: Path, workbook: Path | None, wait: float):
        from filelock import FileLock, Timeout

        self.locks = []
        paths_ = [Path(str(journal) + ".lock")]
        if workbook is not None:
            paths_.append(workbook.with_name(f".~{workbook.name}.edefter-lock"))
        try:
            for p in paths_:
                lock = FileLock(str(p))
                lock.acquire(timeout=wait)
                self.locks.append(lock)
        except Timeout:
            self.release()
            raise RunBusy("Başka bir yedekleme sürüyor (aynı günlük ya da çalışma kitabı kullanılıyor); o bitince "
                          "yeniden deneyin.") from None
        except OSError as exc:
            self.release()
            raise RunBusy(f"Çalışma kilidi alınamadı ({exc.strerror or exc}).") from None

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks = []


# -- the context of one action ------------------------------------------------------------------

class _Run:
    def __init__(self, book: Book, action: str, options: Options | None):
        self.book = book
        self.action = action
        self.options = options or Options()
        journal_path = paths.journal_path(self.options.journal)
        journal_path.parent.mkdir(parents=True, exist_ok=True)
        book_path = getattr(book, "path", None) if self.options.write_back else None
        self._run_lock = _RunLock(journal_path, Path(book_path) if book_path else None, self.options.lock_wait)
        try:
            if hasattr(book, "reload") and self.options.write_back:
                book.reload()  # another run may have written it while this one waited
            self.firms, self.targets, notes = read_settings(book)
        except BaseException:
            self._run_lock.release()
            raise
        self.summary = Summary(action, notes=notes)
        self.journal = Journal(journal_path)
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
        self._config_reported: set[tuple] = set()
        self._unusable: dict[tuple[str, str], TargetError] = {}  # for the rest of this run
        self._not_tried: dict[tuple[str, str], int] = {}
        self.findings: list | None = None  # Yerel Dosya Kontrolü of this run, when already made
        self.answers: dict[tuple[str, MonthKey], object] = {}  # a batch question's answers, each used once
        self._recorded: dict | None = None  # recorded_files(), once the run's sending is over
        self._group: list[Firm] | None = None  # the firms of the group at work (a grouped run), else all
        self._group_ids: set[int] | None = None
        self.poll_budget = self.options.wait  # seconds left for month-by-month confirmation questions
        # what the finished groups leave for the write-back, compactly (SheetRows), and the sheets' old rows
        self._kept = None
        self._periods = L.SheetRows(L.PERIODS)
        self._copies = L.SheetRows(L.COPIES)
        self._log_done = L.SheetRows(L.LOG)
        self._adopt_legacy_rows()

    def identity(self, firm: Firm) -> str:
        return target_identity(self.targets.get(firm.target), firm)

    def _adopt_legacy_rows(self) -> None:
        """Journals from before target identities keyed a month by the Hedef's name: move those rows
        to the identity that name has now (the address is assumed unchanged since)."""
        for st in self.journal.statuses():
            if "|" in st.target:
                continue
            firm = firm_for(st.key, self.firms)
            if firm is not None and (firm.target or "-") == st.target and firm.target in self.targets:
                self.journal.retarget(st.key, st.target, self.identity(firm))

    def config_problem(self, firm: Firm, exc: TargetError) -> None:
        """A target that cannot be used: said once per run (Günlük), not on every month."""
        key = (firm.target, firm.user, exc.message)
        with self._lock:
            if key in self._config_reported:
                return
            self._config_reported.add(key)
            self.summary.notes.append(f"{firm.target or '(Hedef boş)'} / {firm.user or '-'}: {exc.message}")

    def give_up_on(self, firm: Firm, exc: TargetError) -> None:
        """This target cannot be used for the rest of the run (settings, or nobody answers)."""
        with self._lock:
            self._unusable.setdefault((firm.target, firm.user), exc)
        if isinstance(exc, ConfigurationError):
            self.config_problem(firm, exc)

    def given_up(self, target: str, user: str | None = None) -> TargetError | None:
        """Why this run gave up on a target (the target and user, or any user of it), or None."""
        with self._lock:
            if user is not None:
                return self._unusable.get((target, user))
            return next((e for (t, _u), e in self._unusable.items() if t == target), None)

    def not_tried(self, key: MonthKey, firm: Firm, status: str) -> bool:
        """Skip a month whose target was given up on earlier in this run; True when skipped."""
        exc = self._unusable.get((firm.target, firm.user))
        if exc is None:
            return False
        if isinstance(exc, UnreachableError):
            with self._lock:
                self._not_tried[(firm.target, firm.user)] = self._not_tried.get((firm.target, firm.user), 0) + 1
            self.skip(key, firm, status, "Denenmedi: sunucuya ulaşılamıyor (uyarılara bakın).")
        else:
            self.skip(key, firm, status, f"Gönderilmedi: '{firm.target}' hedefi kullanılamıyor (nedeni uyarılarda).")
        return True

    def unreachable_notes(self) -> None:
        for (target, user), n in sorted(self._not_tried.items()):
            exc = self._unusable[(target, user)]
            self.summary.notes.append(f"{target}: {exc.message.split('Son hata: ')[-1]} Sunucuya ulaşılamıyor; "
                                      f"{n} dönem denenmedi.")

    def skip(self, key: MonthKey, firm: Firm, status: str, message: str) -> None:
        """A month left as it was (not logged one by one: the reason is in the notes once)."""
        with self._lock:
            self.summary.results.append(MonthResult(key, firm.name, status, _named(firm, message), blocked=True,
                                                    target=firm.target if firm.several else ""))
            self.summary.blocked += 1

    def close(self) -> None:
        for t in self._open_targets.values():
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing must never hide the result
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.journal.close()
        self._run_lock.release()

    def progress(self, text: str) -> None:
        self.book.progress(text)

    def groups(self) -> list[list[Firm]]:
        """The firms in groups of about Options.group_firms, one group when there are not more. Firms
        whose months may share a folder stay together, so that a group's scan finds exactly the months
        a scan of every folder gives its firms: the same folder, nested folders, the same VKN, and a
        folder holding another group's VKN (found by name, engine.scan.taxpayers_under)."""
        firms = list(self.firms)
        size = self.options.group_firms
        if len(firms) <= size:
            return [self.firms]
        from edefter_helper.engine.scan import taxpayers_under

        parent = list(range(len(firms)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        def join(i: int, j: int) -> None:
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)

        by_vkn: dict[str, int] = {}
        by_folder: dict[str, int] = {}
        for i, f in enumerate(firms):
            join(i, by_vkn.setdefault(f.vkn, i))
            if f.folder and Path(f.folder).is_dir():
                join(i, by_folder.setdefault(os.path.normcase(os.path.abspath(f.folder)), i))
        folders = sorted(by_folder)
        for i, folder in enumerate(folders):  # a folder inside another (sorted, it follows its ancestors)
            for above in folders[:i]:
                if folder.startswith(above.rstrip(os.sep) + os.sep):
                    join(by_folder[above], by_folder[folder])
        for folder, i in by_folder.items():
            for vkn in taxpayers_under(Path(folder)):
                if vkn in by_vkn:
                    join(i, by_vkn[vkn])
        components: dict[int, list[Firm]] = {}
        for i, f in enumerate(firms):
            components.setdefault(find(i), []).append(f)
        groups: list[list[Firm]] = []
        for part in components.values():  # in sheet order of each part's first firm
            if groups and len(groups[-1]) + len(part) <= size:
                groups[-1].extend(part)
            else:
                groups.append(Firms(part))  # indexed: a shared root folder makes one group of every firm
        return groups

    def scan(self, firms: list[Firm] | None = None) -> None:
        """Scan and verify the folders of `firms` (every firm when None); run.sets holds their months."""
        from edefter_helper.engine.cache import FileCache
        from edefter_helper.engine.verify import verify_roots

        firms = self.firms if firms is None else firms
        self.sets = {}
        folders = []
        for f in firms:
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
            note = f"{exc} GİB karşı imzaları bu çalışmada doğrulanamayacak."
            if note not in self.summary.notes:  # once, not once per group of firms
                self.summary.notes.append(note)
            trust = TrustList()
        cache = FileCache(paths.cache_path())
        has_months: set[int] = set()
        mine = {id(f) for f in firms}
        try:
            if folders:
                result = verify_roots([Path(x) for x in folders], cache, progress=self.progress, trust=trust)
                for ms in result.sets:
                    firm = firm_for(ms.key, self.firms)
                    if firm is not None and id(firm) in mine:
                        self.sets[ms.key] = ms
                        has_months.add(id(firm))
                del result
        finally:
            cache.close()
        self.summary.found += len(self.sets)
        covered = {(f.vkn, f.branch) for f in firms if id(f) in has_months}
        for f in firms:  # say why a firm shows nothing (a mistyped VKN, the wrong folder)
            if f.folder in folders and (f.vkn, f.branch) not in covered:
                self.summary.notes.append(f"Firmalar satır {f.row} ({f.name}): e-Defter Klasöründe {f.vkn} için "
                                          f"e-Defter ayı bulunamadı ({f.folder}).")

    def target_for(self, firm: Firm) -> Target:
        from edefter_helper.targets.factory import open_target

        cfg = self.targets.get(firm.target)
        if cfg is None:
            raise ConfigurationError(f"'{firm.target or '(boş)'}' hedefi Hedefler sayfasında tanımlı değil.")
        with self._lock:
            key = (firm.target, firm.user)
            if key not in self._open_targets:
                self._open_targets[key] = open_target(cfg.kind, cfg.address, cfg.name, firm.user,
                                                      backoff=self.options.retry_backoff)
            return self._open_targets[key]

    def expect(self, firms: list[Firm]) -> None:
        with self._lock:
            for firm in firms:
                for c in firm.per_target():
                    self._uses[(c.target, c.user)] = self._uses.get((c.target, c.user), 0) + 1

    def release(self, firm: Firm) -> None:
        """A firm's last month is done: close its connection now, not at the end of the run (an
        accounting office's dozens of logins would otherwise hold connections open)."""
        for c in firm.per_target():
            key = (c.target, c.user)
            with self._lock:
                self._uses[key] = self._uses.get(key, 1) - 1
                target = self._open_targets.pop(key, None) if self._uses[key] <= 0 else None
            if target is not None:
                try:
                    target.close()
                except Exception:  # noqa: BLE001 - closing must never hide the result
                    pass

    def identities(self, firm: Firm) -> list[str]:
        """The identity of each of the firm's Hedefs (one for the usual firm)."""
        return [self.identity(c) for c in firm.per_target()]

    def copies_to_send(self, key: MonthKey, firm: Firm, ms: MonthSet | None) -> list[Firm]:
        """The firm's Hedefs (Firm.per_target) that do not hold the month's current files yet."""
        return [c for c in firm.per_target()
                if month_state(self.journal, key, self.identity(c), ms)[0] != S.BACKED_UP]

    def log(self, key: MonthKey, firm: str, status: str, message: str, unreachable: bool = False,
            target: str = "", unchanged: bool = False) -> None:
        """`target`: the Hedef, for a copy of a firm with several (named in the message). `unchanged`: the
        month kept the status it had (a Durum Sorgula that found it as it was): counted in the summary,
        recorded in the journal, but no Günlük row — an office's 36 000 months would add 36 000 rows a
        question and fill Excel's 1 048 576 within months."""
        if target:
            message = f"{target}: {message}"
        with self._lock:
            if not unchanged:
                self.log_rows.append({"time": datetime.now().replace(microsecond=0), "action": self.action,
                                      "name": firm, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                                      "status": status, "message": message, "_target": target})
            self.summary.results.append(MonthResult(key, firm, status, message, unreachable=unreachable,
                                                    target=target))

    def set_group(self, firms: list[Firm] | None) -> None:
        """The firms a grouped run works on now (None: every firm)."""
        self._group = firms
        self._group_ids = None if firms is None else {id(f) for f in firms}

    def in_group(self, key: MonthKey) -> bool:
        """The month belongs to a firm of the workbook, of the group at work in a grouped run."""
        firm = firm_for(key, self.firms)
        return firm is not None and (self._group_ids is None or id(firm) in self._group_ids)

    def _vkns(self) -> set[str] | None:
        """The taxpayers of the group at work; None: every firm's."""
        return None if self._group is None else {f.vkn for f in self._group}

    def recorded_files(self) -> dict:
        """journal.recorded_files() once for the end of the run (or of the group at work): the local
        check and the Dönemler rows both need it; at 36 000 months it is ~250 000 files. Call only after
        the sending."""
        if self._recorded is None:
            self._recorded = self.journal.recorded_files(self._vkns())
        return self._recorded

    def local_findings(self, full: bool = False) -> list:
        """Yerel Dosya Kontrolü: backed-up months whose files on disk are no longer those bytes."""
        from edefter_helper import localcheck

        recorded = self.recorded_files()
        backed, seen = [], set()
        for st in self.journal.statuses(self._vkns()):
            firm = firm_for(st.key, self.firms)
            if firm is None or st.key in seen or st.target not in self.identities(firm):
                continue
            if st.status not in (S.BACKED_UP, S.ACCEPTED, S.DAMAGED) or (st.key, st.target) not in recorded:
                continue
            seen.add(st.key)  # the copies of a month hold the one package: its files are checked once
            backed.append((st.key, firm.name, recorded[(st.key, st.target)]))

        def folder_of(key):
            firm = firm_for(key, self.firms)
            return firm.folder if firm and firm.folder and Path(firm.folder).is_dir() else None

        return localcheck.check(backed, self.sets, folder_of, full=full)

    def end_group(self, firms: list[Firm], grouped: bool) -> None:
        """The group's month sets are done with: its local findings, and (written back at the end) its
        Dönemler, Kopyalar and Günlük rows, kept as SheetRows; then its month sets go."""
        from edefter_helper.copies import sheet_row

        found = self.local_findings() if self.findings is None or grouped else self.findings
        if grouped:
            self.findings = (self.findings or []) + found
        else:
            self.findings = found
        if self.options.write_back:
            by_month: dict[MonthKey, list] = {}
            # Günlük lists a finding once, while it lasts (Dönemler shows it on every run); an explicit
            # Yerel Dosya Kontrolü lists them all
            fresh = self.journal.new_findings([(f.key, f.name, f.kind, f.detail) for f in found], self._vkns())
            for f in found:
                by_month.setdefault(f.key, []).append(f)
                if self.action == ACTION_LOCAL or (f.key, f.name) in fresh:
                    self.log_rows.append({"time": datetime.now().replace(microsecond=0), "action": self.action,
                                          "name": f.firm, "vkn": f.key.vkn, "branch": f.key.branch,
                                          "period": f.key.period, "status": "Yerel Dosya Uyarısı",
                                          "message": f.message})
            if self._kept is None:
                self._kept = KeptRows.of(self.book.read_rows(L.PERIODS), self.book.read_rows(L.COPIES))
            copies: list[dict] = []
            self._periods.extend(period_rows(self.sets, firms, self.journal, self.identity, None, by_month,
                                             targets=self.targets, copies=copies, recorded=self.recorded_files(),
                                             kept=self._kept))
            self._copies.extend(map(sheet_row, copies))
            del copies
        if self.options.write_back:
            self._log_done.extend(self.log_rows)
        self.log_rows = []
        self._recorded = None
        if grouped:
            self.sets = {}
            self.answers = {}

    def write_back(self) -> None:
        self.unreachable_notes()
        findings = self.findings or []
        if findings:
            months = len({f.key for f in findings})
            self.summary.notes.append(f"Yerel dosya kontrolü: {months} dönemde {len(findings)} dosya yedekten "
                                      f"farklı (Günlük'te dosya dosya, her biri ilk görüldüğünde; Dönemler'de ayında).")
        # the groups' rows in the order one pass over every firm gives them (period_rows' order)
        name, vkn, branch, period = (L.PERIODS.index(k) for k in ("name", "vkn", "branch", "period"))
        order = (lambda t: (t[name].casefold(), t[vkn], t[branch], t[period]))
        self._periods.sort(order)
        self._copies.sort(order)  # stable: a month's copies keep their order
        self.book.write_rows(L.PERIODS, self._periods)
        self.book.write_rows(L.COPIES, self._copies)
        self._periods = self._copies = None
        log = L.SheetRows(L.LOG, ({"time": datetime.now().replace(microsecond=0), "action": self.action,
                                   "status": "Uyarı", "message": n} for n in self.summary.notes))
        log.append_rows(self._log_done)
        log.extend([{"time": datetime.now().replace(microsecond=0), "action": self.action, "status": "Özet",
                     "message": self.summary.message}])
        self.book.append_rows(L.LOG, log)
        self.book.save()


WORKDIR_PREFIX = "paketler-"


def _named(firm: Firm, message: str) -> str:
    return f"{firm.target}: {message}" if firm.several else message


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


# -- one month ----------------------------------------------------------------------------------

def _problems_text(ms: MonthSet) -> str:
    return "Doğrulama başarısız, gönderilmedi: " + problems_sentence(ms)


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


def _confirmed(run: _Run, key: MonthKey, firm: Firm, attempt: int, sha: str, receipt, sent_here: bool = True) -> str:
    """Finish an attempt from what the target says; returns the month's new status."""
    identity = run.identity(firm)
    before = run.journal.status(key, identity)
    damaged = before is not None and before.status == S.DAMAGED and before.package_sha256 == sha
    # the drill's own sentence, from its record (the status message may already quote it)
    drilled = run.journal.last_drill(key, identity) if damaged else None
    reason = drilled[2] if drilled and not drilled[1] else (before.message if damaged else "")
    if receipt.state == STORED and receipt.sha256 == sha and damaged:
        # the target's index says stored, but the last drill found the bytes damaged: the drill decides
        status = S.DAMAGED
        message = ("Hedef paketi sakladığını bildiriyor, ancak son Yedek Doğrulama kopyayı bozuk buldu: "
                   f"{reason} Yedek Doğrulama'yı yeniden çalıştırın.")
    elif receipt.state == STORED and damaged:
        # the target now names other bytes for the package a drill found damaged: still that damage,
        # not "another package" to cancel first
        status = S.DAMAGED
        message = (f"{reason} Hedef bu ay için başka baytlar bildiriyor (sha256 "
                   f"{receipt.sha256[:12]}…, gönderilen {sha[:12]}…). Toplu Yedekle doğru paketi yeniden gönderir; "
                   f"sonra Yedek Doğrulama'yı çalıştırın.")
    elif receipt.state == STORED and receipt.sha256 == sha:
        status, message = S.BACKED_UP, S.backed_up_message(key.period)
    elif receipt.state == STORED and not sent_here:
        status = S.CHANGED
        message = (f"Hedefte bu ay için saklanan paket (sha256 {receipt.sha256[:12]}…) diskteki dosyalardan "
                   f"farklı (diskteki paket {sha[:12]}…). Diskteki dosyalar yedeklenenden farklı.")
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
    run.journal.finish(attempt, key, identity, status, message, receipt.reference,
                       receipt.sha256 if status == S.CHANGED else sha)
    unchanged = run.action == ACTION_QUERY and before is not None and (
        before.status, before.message, before.package_sha256) == (status, message, sha)
    run.log(key, firm.name, status, message, target=_t(firm), unchanged=unchanged)
    return status


def _t(firm: Firm) -> str:
    """The Hedef to name in a copy's messages: only for a firm with several."""
    return firm.target if firm.several else ""


class _MonthPackage:
    """A month packed once for all the Hedefs it goes to (the same bytes to each); removed when the
    last of them is done. A packing failure is given to each copy."""

    def __init__(self, run: _Run, ms: MonthSet):
        self.run, self.ms = run, ms
        self.package: Package | None = None
        self.error: Exception | None = None

    def get(self) -> Package:
        if self.package is None and self.error is None:
            try:
                self.package = _pack(self.run, self.ms)
            except (OSError, PackError) as exc:
                self.error = exc
        if self.error is not None:
            raise self.error
        return self.package

    def close(self) -> None:
        if self.package is not None:
            shutil.rmtree(self.package.path.parent, ignore_errors=True)
            self.package = None


def send_copies(run: _Run, ms: MonthSet, firm: Firm, copies: list[Firm] | None = None) -> list[tuple[Firm, str]]:
    """Send a month to each of the firm's Hedefs (`copies`: those still to do), packed once.
    Returns (copy, new status) for each."""
    packed = _MonthPackage(run, ms)
    try:
        return [(c, send_month(run, ms, c, packed)) for c in (copies if copies is not None else firm.per_target())]
    finally:
        packed.close()


def send_month(run: _Run, ms: MonthSet, firm: Firm, packed: _MonthPackage | None = None) -> str:
    """Verify (already done), pack, ask the target, send if needed. Returns the new status.
    `firm`: one Hedef's copy of the firm (Firm.per_target); `packed`: the month's shared package."""
    own = packed is None
    packed = packed if packed is not None else _MonthPackage(run, ms)
    try:
        return _send_month(run, ms, firm, packed)
    finally:
        if own:
            packed.close()


def _send_month(run: _Run, ms: MonthSet, firm: Firm, packed: _MonthPackage) -> str:
    key, identity = ms.key, run.identity(firm)
    if not ms.valid:
        message = _problems_text(ms)
        held = run.journal.status(key, identity)
        if held is not None and held.status in (S.BACKED_UP, S.ACCEPTED) and held.package_sha256:
            # the target still holds the earlier, verified files: that copy stays on record (not
            # "Yedeklenemedi"), and the local check keeps reporting what changed on disk — ransomware
            # that spoils a backed-up month must not turn its alarm off by making it fail to send
            run.journal.record(key, identity, "verify", S.FAILED, message, set_status=False)
            current = month_state(run.journal, key, identity, ms, held)[0]
            run.log(key, firm.name, current, f"{message} Hedefteki yedek değişmeden önceki dosyaları tutuyor; "
                    f"onları Geri Yükle ile alın.", target=_t(firm))
            return current
        run.journal.record(key, identity, "verify", S.FAILED, message)
        run.log(key, firm.name, S.FAILED, message, target=_t(firm))
        return S.FAILED
    current = month_state(run.journal, key, identity, ms)[0]
    if run.not_tried(key, firm, current):
        return current
    try:
        target = run.target_for(firm)
    except ConfigurationError as exc:
        run.give_up_on(firm, exc)
        run.not_tried(key, firm, current)
        return current
    try:
        package = packed.get()
    except (OSError, PackError) as exc:
        message = getattr(exc, "message", None) or (
            f"Paket hazırlanamadı: {getattr(exc, 'filename', '') or ''} okunamadı ({exc.strerror or exc}).")
        run.journal.record(key, identity, "send", S.FAILED, message)
        run.log(key, firm.name, S.FAILED, message, target=_t(firm))
        return S.FAILED
    # one attempt, opened before the network is touched and closed with the month's status
    attempt = run.journal.begin(key, identity, "send", package.sha256, package.files)
    try:
        # the target may already hold it (a run killed after sending): never send twice
        receipt = run.answers.pop((identity, key), None) or target.query(key)
        # a copy the last drill found damaged is sent again even though the target names the same
        # package: a target that can (the own server, a folder) puts the bytes at rest right
        if current == S.DAMAGED or not (receipt.state in (STORED, ACCEPTED) and receipt.sha256 == package.sha256):
            receipt = target.send(package, run.targets[firm.target].description)
            if receipt.state == ACCEPTED and not receipt.sha256:
                receipt.sha256 = package.sha256
    except ConfigurationError as exc:  # e.g. the password was refused: the same for every month
        run.journal.finish(attempt, key, identity, current, exc.message, "", package.sha256, set_status=False)
        run.give_up_on(firm, exc)
        run.not_tried(key, firm, current)
        return current
    except TargetError as exc:
        unreachable = isinstance(exc, UnreachableError)
        if unreachable:
            run.give_up_on(firm, exc)
        run.journal.finish(attempt, key, identity, S.FAILED, exc.message, "", package.sha256)
        run.log(key, firm.name, S.FAILED, exc.message, unreachable=unreachable, target=_t(firm))
        return S.FAILED
    return _confirmed(run, key, firm, attempt, package.sha256, receipt)


def query_copies(run: _Run, key: MonthKey, firm: Firm) -> list[tuple[Firm, str]]:
    """Durum Sorgula for each of the firm's Hedefs (a month never sent from here packed once)."""
    ms = run.sets.get(key)
    packed = _MonthPackage(run, ms) if ms is not None else None
    try:
        return [(c, query_month(run, key, c, packed)) for c in firm.per_target()]
    finally:
        if packed is not None:
            packed.close()


def query_month(run: _Run, key: MonthKey, firm: Firm, packed: _MonthPackage | None = None) -> str:
    """Ask the target about one month, whether or not this computer's journal knows it; a status
    is rebuilt from what the target holds. A failed question changes nothing and says so."""
    identity = run.identity(firm)
    known = run.journal.status(key, identity)
    ms = run.sets.get(key)
    current = month_state(run.journal, key, identity, ms, known)[0] if known else S.NOT_SENT
    sha = known.package_sha256 if known else ""
    if not sha and ms is not None and ms.valid:
        # never sent from here: the target may still hold exactly our files
        own = packed is None
        packed = packed if packed is not None else _MonthPackage(run, ms)
        try:
            sha = packed.get().sha256
        except (OSError, PackError):
            sha = ""
        finally:
            if own:
                packed.close()
    if not sha:
        why = _problems_text(ms) if ms is not None and not ms.valid else "Diskte doğrulanmış dosya yok."
        run.log(key, firm.name, current, f"Hedefle karşılaştırılamadı: {why}", target=_t(firm))
        return current
    if run.not_tried(key, firm, current):
        return current
    try:
        target = run.target_for(firm)
    except ConfigurationError as exc:
        run.give_up_on(firm, exc)
        run.not_tried(key, firm, current)
        return current
    attempt = run.journal.begin(key, identity, "query", sha)
    try:
        receipt = run.answers.pop((identity, key), None) or target.query(key)
    except ConfigurationError as exc:
        run.journal.finish(attempt, key, identity, current, exc.message, "", sha, set_status=False)
        run.give_up_on(firm, exc)
        run.not_tried(key, firm, current)
        return current
    except TargetError as exc:
        if isinstance(exc, UnreachableError):
            run.give_up_on(firm, exc)
        message = f"Durum sorgulanamadı: {exc.message}"
        run.journal.finish(attempt, key, identity, current, message, "", sha, set_status=False)
        run.log(key, firm.name, current, message, target=_t(firm))
        return current
    if receipt.state == MISSING and not known:
        # never sent from here and not there: nothing to record but the question
        run.journal.finish(attempt, key, identity, current, "Hedefte bu ay için paket yok.", "", sha,
                           set_status=False)
        run.log(key, firm.name, current, "Hedefte bu ay için paket yok.", target=_t(firm))
        return current
    if known is None and receipt.state == ACCEPTED and receipt.sha256 != sha:
        run.journal.finish(attempt, key, identity, current, "Hedefte bu ay için işlenmekte olan başka bir paket var.",
                           "", sha, set_status=False)
        run.log(key, firm.name, current, "Hedefte bu ay için işlenmekte olan başka bir paket var.", target=_t(firm))
        return current
    return _confirmed(run, key, firm, attempt, sha, receipt, sent_here=known is not None)


# -- actions ------------------------------------------------------------------------------------

def _run_action(book: Book, action: str, options: Options | None, body: Callable[[_Run], None],
                grouped: bool = False) -> Summary:
    """Scan, the action's body, the local check, notifications, the write-back. `grouped`: over more
    firms than Options.group_firms, the scan, the body and the rows run a group of firms at a time
    (the body must only look at run.sets), so memory holds one group's files and the rows compactly."""
    run = _Run(book, action, options)
    try:
        groups = run.groups() if grouped else [run.firms]
        several = len(groups) > 1
        for i, firms in enumerate(groups, 1):
            run.progress(f"{action}: klasörler taranıyor…" + (f" ({i}/{len(groups)}. firma grubu)" if several else ""))
            run.set_group(firms if several else None)
            run.scan(firms)
            body(run)
            run.end_group(firms, several)
        run.set_group(None)
        _notify(run)
        if run.options.write_back:
            run.progress(f"{action}: çalışma kitabına yazılıyor…")
            run.write_back()
        else:
            run.unreachable_notes()
        return run.summary
    finally:
        run.close()
        book.progress("")


def _notify(run: _Run) -> None:
    """Tell the Bildirimler channels what this run changed: one message per firm-month state change
    (the notifier remembers what it told), a target unreachable once, local files changed. A channel
    that cannot be used is a note, never a failure of the run."""
    try:
        from edefter_helper.settings import read_channels

        channels, notes = read_channels(run.book)
    except Exception as exc:  # noqa: BLE001 - notifications must never break a backup
        run.summary.notes.append(f"Bildirim ayarları okunamadı: {exc}")
        return
    run.summary.notes.extend(notes)
    if not channels:
        return
    from edefter_helper.notify import Event, Notifier

    notifier = Notifier(channels, Path(run.journal.path))
    run.summary.notes.extend(notifier.problems)
    told: set[MonthKey] = set()
    for r in run.summary.results:
        firm = firm_for(r.key, run.firms)
        if r.status == S.BACKED_UP and firm is not None:
            if r.key in told:
                continue
            copies = firm.per_target()
            # one message per firm-month: when its last copy is confirmed, not once per Hedef
            held = [run.journal.status(r.key, run.identity(c)) for c in copies]
            if any(h is None or h.status != S.BACKED_UP for h in held):
                continue
            told.add(r.key)
            # month by month: an office's backfill confirms 36 000 months, their file lists at once ~70 MB
            files = [name for name, _, _ in run.journal.recorded_files_of(r.key, run.identity(copies[0]))]
            message = r.message if len(copies) == 1 else (
                f"{S.backed_up_message(r.key.period)} Kopyalar ({len(copies)}/{len(copies)}): "
                f"{', '.join(c.target for c in copies)}.")
            notifier.notify(Event("yedeklendi", r.firm, r.key.vkn, r.key.branch, r.key.period, message, files,
                                  "; ".join(c.target for c in copies)))
        elif r.status == S.FAILED and not r.unreachable:  # nobody answered: told once per target below
            notifier.notify(Event("yedeklenemedi", r.firm, r.key.vkn, r.key.branch, r.key.period, r.message,
                                  target=r.target or (firm.target if firm else "")))
    for (target, _user), exc in run._unusable.items():
        if isinstance(exc, UnreachableError):
            notifier.notify(Event("hedefe-ulasilamiyor", "", "", "", "", exc.message, target=target))
    for f in run.findings or []:
        notifier.notify(Event("yerel-dosya", f.firm, f.key.vkn, f.key.branch, f.key.period, f.message))
    notifier.deliver_pending()


def _selected(run: _Run, keys: list[MonthKey] | None, where=None) -> list[MonthKey]:
    base = sorted(run.sets) if keys is None else [k for k in keys if run.in_group(k)]
    return [k for k in base if where is None or where(k)]


def _unexpected(run: _Run, item, exc: Exception) -> None:
    """A month that failed in a way nobody foresaw (a fault of this program): its traceback goes to
    hata.log, its row says so in Turkish and keeps the status it had, and the run counts it as a
    problem; the other months go on and the sheets are written."""
    from edefter_helper import crashlog

    key, firm = getattr(item[0], "key", item[0]), item[1]
    where = crashlog.record(exc, f"{run.action} {key.vkn}/{key.branch}/{key.period}")
    log.error("%s: %s/%s/%s beklenmeyen hata (%s); ayrıntılar: %s", run.action, key.vkn, key.branch, key.period,
              type(exc).__name__, where)
    try:
        status = run.journal.status(key, run.identity(firm))
        current = status.status if status is not None else S.NOT_SENT
    except Exception:  # noqa: BLE001  what it was cannot be read either: said as not sent
        current = S.NOT_SENT
    with run._lock:
        run.summary.errors += 1
    run.log(key, firm.name, current, f"Bu ay bu çalışmada işlenemedi: beklenmeyen hata ({type(exc).__name__}). "
                                     f"Ayrıntılar: {where}. Durumu değişmedi; işlemi yeniden çalıştırın, hata "
                                     f"sürerse bu dosyayı destek ekibine iletin.")


def _parallel(run: _Run, work: list, fn) -> None:
    """Run fn over (month, firm) items, at most options.parallel at once."""
    done = [0]
    run.expect([item[1] for item in work])

    def one(item):
        try:
            fn(item)
        except sqlite3.Error:
            raise  # the journal itself: nothing after this could be recorded (the faces say so)
        except Exception as exc:  # noqa: BLE001  one month's fault is that month's, never the whole run's
            _unexpected(run, item, exc)
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


ACTION_STATUS = "Durumu Yenile"


def show_status(book: Book, options: Options | None = None) -> Summary:
    """Durumu Yenile: the Dönemler rows' statuses from the journal, without scanning and without the
    run lock (it only reads), so it answers at once even while a background run works."""
    options = options or Options()
    firms, targets, notes = read_settings(book)
    summary = Summary(ACTION_STATUS, notes=notes)
    journal = Journal(paths.journal_path(options.journal))
    try:
        previous = book.read_rows(L.PERIODS)
        previous_copies = book.read_rows(L.COPIES)
        rows, copies = journal_rows(journal, firms, targets, previous, previous_copies)
        fresh = {(r["vkn"], r["branch"], r["period"]): r for r in rows}
        rows = []
        for old in previous:
            key = (str(old.get("vkn") or ""), str(old.get("branch") or ""), str(old.get("period") or ""))
            new = fresh.pop(key, None)
            if new is None:
                rows.append(old)
                continue
            merged = dict(old)
            for col in ("status", "message", "updated", "sha256", "reference", "drill", "copies"):
                merged[col] = new[col]
            if not (old.get("validation") and new["stage"] == "Klasörde bulunamadı"):
                merged["stage"] = old.get("stage") or new["stage"]
            rows.append(merged)
        rows.extend(fresh.values())
        book.write_rows(L.PERIODS, rows)
        from edefter_helper.copies import sheet_row

        new_copies = {(c["vkn"], c["branch"], c["period"], c["target"]): sheet_row(c) for c in copies}
        kept = []
        for old in previous_copies:  # a row the journal has nothing for stays, as Dönemler's do
            key = tuple(str(old.get(k) or "") for k in ("vkn", "branch", "period", "target"))
            kept.append(new_copies.pop(key, old))
        book.write_rows(L.COPIES, kept + list(new_copies.values()))
        book.save()
        running = len(journal.open_attempts())
        summary.found = len(rows)
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        summary.extra = {"running": running, "counts": counts}
    finally:
        journal.close()
    return summary


ACTION_RADAR = "Takvim / Radar"


def radar(book: Book, options: Options | None = None, *, today=None, months: int = 15) -> Summary:
    """Takvim / Radar: a scan, then every firm's last `months` months as one cell each (the Takvim
    sheet, and summary.extra['radar'] for `edefter radar`)."""
    from datetime import date

    from edefter_helper import radar as R
    from edefter_helper.settings import read_overrides

    today = today or date.today()

    def body(run: _Run) -> None:
        overrides, notes = read_overrides(run.book)
        run.summary.notes.extend(notes)
        periods = R.window(today, months)
        from edefter_helper.copies import worst

        statuses, copies = {}, {}
        listed = set(run.sets)  # the months Dönemler lists after this run (sheetview.period_rows)
        recorded = run.recorded_files()  # the same read the local check and the rows use
        for st in run.journal.statuses():
            firm = firm_for(st.key, run.firms)
            if firm is not None:
                listed.add(st.key)
            if firm is not None and st.target in run.identities(firm):
                word, message, _ = month_state(run.journal, st.key, st.target, run.sets.get(st.key), st, recorded)
                copies.setdefault(st.key, {})[st.target] = (word, message)
        for key, seen in copies.items():  # the month's worst copy; a copy never sent counts as such
            firm = firm_for(key, run.firms)
            words = [seen.get(i, (S.NOT_SENT, ""))[0] for i in run.identities(firm)]
            word = worst(words)
            statuses[key] = next((v for v in seen.values() if v[0] == word), (word, ""))
        run.findings = run.local_findings()  # kept for the write-back: the local check runs once
        for f in run.findings:
            statuses[f.key] = (S.CHANGED, f.message)
        grid = R.build(run.firms, run.sets, statuses, today=today, periods=periods, overrides=overrides)
        rows = R.sheet_rows(grid, R.period_row_numbers(listed, run.firms))
        if run.options.write_back:
            run.book.write_grid(L.CALENDAR_SHEET, rows)
        run.summary.extra = {"periods": periods, "cells": [c.as_json() for c in grid.cells()]}
        run.summary.found = len(grid.rows)

    return _run_action(book, ACTION_RADAR, options, body)


ACTION_LOCAL = "Yerel Dosya Kontrolü"


def check_local(book: Book, full: bool = False, options: Options | None = None) -> Summary:
    """Yerel Dosya Kontrolü: the files on disk against every backed-up month's recorded files
    (`full`: hash every file again instead of trusting unchanged file identities)."""

    def body(run: _Run) -> None:
        run.findings = run.local_findings(full=full)
        run.summary.extra = {"findings": [f.as_json() for f in run.findings]}
        for f in run.findings:
            run.summary.results.append(MonthResult(f.key, f.firm, "Yerel Dosya Uyarısı", f.message))

    return _run_action(book, ACTION_LOCAL, options, body)


def refresh(book: Book, options: Options | None = None) -> Summary:
    """Tara / Yenile: scan every firm's folder and rewrite Dönemler from the files and the journal (a
    group of firms at a time over many firms, as Toplu Yedekle)."""
    return _run_action(book, ACTION_SCAN, options, lambda run: None, grouped=True)


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
            todo = run.copies_to_send(key, firm, ms)
            if not todo:
                run.log(key, firm.name, S.BACKED_UP, "Zaten yedeklendi; yeniden gönderilmedi.")
                continue
            work.append((ms, firm, todo))
        _prefetch(run, work)
        _parallel(run, work, lambda item: send_copies(run, *item))

    return _run_action(book, ACTION_SEND, options, body, grouped=True)


def query(book: Book, keys: list[MonthKey] | None = None, options: Options | None = None,
          where: Callable[[MonthKey], bool] | None = None) -> Summary:
    """Durum Sorgula: ask the target about the given months (every listed month when None)."""

    def body(run: _Run) -> None:
        if keys is None:
            # every listed month: on disk, or known to this journal for its firm's current target
            listed = set(run.sets)
            for st in run.journal.statuses(run._vkns()):
                firm = firm_for(st.key, run.firms)
                if firm is not None and st.target in run.identities(firm) and run.in_group(st.key):
                    listed.add(st.key)
            work = [(k, firm_for(k, run.firms)) for k in sorted(listed)
                    if firm_for(k, run.firms) is not None and (where is None or where(k))]
        else:
            work = [(k, firm_for(k, run.firms)) for k in _selected(run, keys, where)]
        _ask_batches(run, [(k, c) for k, f in work for c in f.per_target()])  # a question per BATCH months
        # months the batch answers settle with nothing left to ask or pack: written BATCH months a
        # transaction (two fsynced ones a month made an office's 36 000 months take minutes)
        settled = [item for item in work if _answered(run, *item)]
        for i in range(0, len(settled), BATCH):
            with run.journal.batch():
                for item in settled[i:i + BATCH]:
                    query_copies(run, *item)
            run.progress(f"{run.action}: {min(i + BATCH, len(settled))}/{len(work)} dönem")
        answered = {key for key, _ in settled}
        _parallel(run, [item for item in work if item[0] not in answered], lambda item: query_copies(run, *item))

    return _run_action(book, ACTION_QUERY, options, body, grouped=True)


def _answered(run: _Run, key: MonthKey, firm: Firm) -> bool:
    """Every copy of the month has its batch answer waiting and a package this journal knows: the
    question needs no network and no packing (so it may run inside a journal transaction)."""
    for c in firm.per_target():
        identity = run.identity(c)
        if (identity, key) not in run.answers:
            return False
        known = run.journal.status(key, identity)
        if known is None or not known.package_sha256:
            return False
    return True


def backup(book: Book, all_months: bool = False, options: Options | None = None,
           where: Callable[[MonthKey], bool] | None = None) -> Summary:
    """Toplu Yedekle: every month at "Onaylı Berat İndirildi" not yet Yedeklendi is sent, then queried
    until confirmed or the time limit. Firms set to Otomatik Yedekleme = Hayır only with all_months;
    `where` narrows the months further (the agent: only months whose files have settled)."""

    def body(run: _Run) -> None:
        work = []
        waiting = 0
        manual: dict[str, int] = {}
        for key in sorted(run.sets):
            ms, firm = run.sets[key], firm_for(key, run.firms)
            if not (firm.auto or all_months):
                if (where is None and ms.stage == "gib-approved"
                        and run.copies_to_send(key, firm, ms)):
                    manual[firm.name] = manual.get(firm.name, 0) + 1
                continue
            if where is not None and not where(key):
                continue
            if ms.stage != "gib-approved":
                waiting += 1
                continue
            todo = run.copies_to_send(key, firm, ms)
            if not todo:
                continue
            work.append((ms, firm, todo))
        if waiting:
            run.summary.notes.append(f"{waiting} dönem henüz GİB onaylı beratı indirilmediği için beklemede.")
        if manual:
            run.summary.notes.append("Otomatik Yedekleme = Hayır olduğu için atlandı: "
                                     + ", ".join(f"{name} ({n} dönem)" for name, n in sorted(manual.items()))
                                     + ". Bu aylar Gönder ile (komut satırında --all ile de) yedeklenir.")
        pending = []

        def one(item):
            done = send_copies(run, *item)
            with run._lock:  # each copy still only accepted is asked again below
                pending.extend((item[0].key, c) for c, status in done if status == S.ACCEPTED)

        _prefetch(run, work)
        _parallel(run, work, one)
        deadline = time.monotonic() + run.options.wait
        pending = _confirm_batched(run, pending, deadline)
        # asked month by month (a target without batch questions, e.g. İzibiz while it processes): the
        # groups of a grouped run share one Options.wait, so 30 groups never wait 30 times as long; a
        # month still processing stays "Entegratör'e İşlendi" until the next Durum Sorgula
        polling = time.monotonic()
        deadline = min(deadline, polling + run.poll_budget)
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
        run.poll_budget = max(0.0, run.poll_budget - (time.monotonic() - polling))
        # a month (each of its copies) is reported once, with its last status
        last: dict[tuple, MonthResult] = {}
        for r in run.summary.results:
            last[(r.key, r.target)] = r
        run.summary.results = list(last.values())
        last_log = {}
        for row in run.log_rows:
            last_log[(row["vkn"], row["branch"], row["period"], row.get("_target", ""))] = row
        run.log_rows = list(last_log.values())

    return _run_action(book, ACTION_BACKUP, options, body, grouped=True)



# -- many months in one question (targets with batch_query) ------------------------------------

BATCH = 500  # months per question


def _batching(run: _Run, copy: Firm) -> Target | None:
    """The copy's target when it answers many months at once and is usable in this run, else None."""
    if (copy.target, copy.user) in run._unusable:
        return None
    try:
        target = run.target_for(copy)
    except ConfigurationError:
        return None  # said once, by the month's own path
    return target if getattr(target, "batch_query", False) else None


def _prefetch(run: _Run, work: list) -> None:
    """Before sending: ask each batching target which of the months it already holds, BATCH months a
    request instead of one question a month; send_month uses each answer once (and asks itself when
    there is none: a failed batch question changes nothing)."""
    pairs = []
    for item in work:  # (month, firm) or (month, firm, the firm's copies still to send)
        ms = item[0]
        if ms.valid:
            pairs.extend((ms.key, copy) for copy in (item[2] if len(item) > 2 else [item[1]]))
    _ask_batches(run, pairs)


def _ask_batches(run: _Run, pairs: list) -> None:
    """(month, copy) pairs: each batching target is asked about its months BATCH at a time; the answers
    wait in run.answers, each used once by send_month / query_month."""
    groups: dict[tuple[str, str], tuple[Target, list]] = {}
    for key, copy in pairs:
        target = _batching(run, copy)
        if target is not None:
            groups.setdefault((copy.target, copy.user), (target, []))[1].append((run.identity(copy), key))
    if not groups:
        return
    run.progress(f"{run.action}: hedefte olanlar soruluyor…")

    def ask(group) -> None:
        target, items = group
        for i in range(0, len(items), BATCH):
            chunk = items[i:i + BATCH]
            try:
                answers = target.query_many([key for _, key in chunk])
            except TargetError:
                continue
            with run._lock:
                run.answers.update(((identity, key), answers[key]) for identity, key in chunk if key in answers)

    # each user's first login costs the server a password hash: two at once (a server of 4 threads
    # hashes one and queues one; more would be told 'busy' and retried)
    with ThreadPoolExecutor(max_workers=max(1, min(2, run.options.parallel))) as pool:
        list(pool.map(ask, groups.values()))


def _confirm_batched(run: _Run, pending: list, deadline: float) -> list:
    """Confirmation rounds for the (month, copy) items of batching targets: one request per BATCH
    months a round, which the target may hold until their checks end; the months whose state changed
    are written in one journal transaction per round, those still waiting not at all. A batch that
    cannot be asked is asked month by month that round (query_month, as before). Returns the items
    of other targets."""
    groups: dict[tuple[str, str], tuple[Target, list]] = {}
    rest = []
    for key, copy in pending:
        target = _batching(run, copy)
        if target is None:
            rest.append((key, copy))
            continue
        known = run.journal.status(key, run.identity(copy))
        groups.setdefault((copy.target, copy.user), (target, []))[1].append(
            (key, copy, known.package_sha256 if known else ""))
    pause = run.options.poll
    while groups and time.monotonic() < deadline:
        started = time.monotonic()
        changed = []
        for name, (target, items) in list(groups.items()):
            still = []
            for i in range(0, len(items), BATCH):
                chunk = items[i:i + BATCH]
                try:
                    answers = target.query_many([key for key, _, _ in chunk],
                                                wait=max(0.0, min(20.0, deadline - time.monotonic())))
                except TargetError:
                    still.extend(x for x in chunk if time.monotonic() >= deadline
                                 or query_month(run, x[0], x[1]) == S.ACCEPTED)
                    continue
                for key, copy, sha in chunk:
                    receipt = answers.get(key)
                    if receipt is None or (receipt.state == ACCEPTED and receipt.sha256 in ("", sha)):
                        still.append((key, copy, sha))
                    else:
                        changed.append((key, copy, sha, receipt))
            if still and name not in run._unusable:
                groups[name] = (target, still)
            else:
                groups.pop(name)
        if changed:
            with run.journal.batch():
                for key, copy, sha, receipt in changed:
                    attempt = run.journal.begin(key, run.identity(copy), "query", sha)
                    _confirmed(run, key, copy, attempt, sha, receipt)
        left = sum(len(items) for _, items in groups.values())
        if left:
            run.progress(f"{run.action}: {left} dönemin saklama onayı bekleniyor")
            spent = time.monotonic() - started
            if spent < pause:  # a target that held its answer has waited already
                time.sleep(max(0.0, min(pause - spent, deadline - time.monotonic())))
            pause = min(pause * 1.5, 5.0)
    return rest
