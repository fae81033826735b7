"""Geri Yükle / İbraz Paketi: months fetched back from a target into GİB's folder layout, every byte
checked against what was backed up, verified by the engine, with an İbraz Raporu beside them.

The target is the source: a month whose local files are gone, or that this computer's journal does
not know (another PC made the backup), comes back the same way. Nothing is ever overwritten: a
non-empty destination needs `into_existing`, and even then a file with other bytes is left alone and
reported (an earlier ibraz-raporu.html too: the new one is ibraz-raporu-2.html). Files are written
atomically from the package as it is read, so an interrupted restore leaves no half-written file and
can be run again (its leftover temporary files are removed then). Nothing is written into a firm's
ledger folder or a klasör Hedef's folder, nor through a link inside the destination.

A package is trusted only as the month asked: its manifest names that VKN, branch and period, lists
each file once with a size and sha256, and the zip holds each listed file once under a plain e-Defter
name of that month; anything else fails the month (named in the report), never the run.

Verification overlaps the unpacking: once a month holds a file the engine would read in a worker
process (a big ledger part), every restored file is handed to worker processes as soon as it is
written, the largest first, while the next one is inflated. The workers are started fresh (not forked
from this process, whose workbook and HTTP libraries each forked worker would count again) and import
only the engine's reader; they run the engine's own per-file read (`reader.read_full`, or for a big
ledger its two halves, `reader.read_signed` and `reader.check_bytes`, which two processes run at once
and `reader.join_halves` joins), and the verdict is the engine's `check_set` over facts for every file
of the restored tree, each read after its last change.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import zipfile
import zlib
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import NO_BRANCH, parse_name
from edefter_helper.engine.package import MANIFEST
from edefter_helper.fsutil import _take_mode, fsync_dir, sha256_file
from edefter_helper.targets.base import (
    ACCEPTED,
    MISSING,
    REJECTED,
    STORED,
    ConfigurationError,
    TargetError,
    UnreachableError,
)
from edefter_helper.workbook.book import Book

try:
    import fcntl  # advisory locks on temporary files (_hold, _clean_leftovers); Windows has none
except ImportError:
    fcntl = None

log = logging.getLogger(__name__)

ACTION_RESTORE = "Geri Yükle"
RESTORED, NOT_RESTORED = "Geri Yüklendi", "Geri Yüklenemedi"
CHUNK = 1 << 20
# a file this large is read in a worker process (the engine's verify.PARALLEL_BYTES); a month with one
# has all its files verified by the workers while it is being unpacked
PIPELINE_BYTES = 32 * 1024 * 1024
# a ledger this large is read as the engine's two halves, in two jobs (see _Verifier)
HALVES_BYTES = PIPELINE_BYTES
# files written but not yet fsynced and published, at most (see _write_member)
FILES_IN_FLIGHT = 4
# at most this many worker processes (None: one per core but this process's own, see _Verifier)
VERIFY_WORKERS: int | None = None


class RestoreError(Exception):
    """The restore cannot start (destination, selection); Turkish message."""


class NothingToRestore(RestoreError):
    """No month fits the choice: neither the disk nor this computer's journal knows one. After a loss
    the months are found by asking the target (`months_to_ask`)."""


@dataclass
class RestoredMonth:
    key: MonthKey
    firm: str
    source: str
    folder: Path | None = None
    files: list[tuple[str, int, str, bool]] = field(default_factory=list)  # name, size, sha256, matches backup
    missing: list[str] = field(default_factory=list)
    ok: bool = False
    # what the source said it holds when asked in this restore: (reference, sha256, stored_at)
    receipt: tuple[str, str, str] | None = None
    passed_over: list[RestoredMonth] = field(default_factory=list)  # earlier copies that could not be used
    package_sha256: str = ""  # of the package fetched from the source


def month_folder(out: Path, key: MonthKey) -> Path:
    """GİB's layout: VKN/01.01.YYYY-31.12.YYYY/MM/, with the branch as a folder under the VKN."""
    year, month = key.period.split("-")
    base = out / key.vkn
    if key.branch != NO_BRANCH:
        base = base / key.branch
    return base / f"01.01.{year}-31.12.{year}" / month


def periods_between(start: str, end: str) -> list[str]:
    y, m = (int(x) for x in start.split("-"))
    ey, em = (int(x) for x in end.split("-"))
    out = []
    while (y, m) <= (ey, em):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def months_to_ask(firms, start: str, end: str, *, vkn: str | None = None,
                  branch: str | None = None) -> list[MonthKey]:
    """The months from `start` to `end` (YYYY-AA) of every firm in Firmalar (or of `vkn`, or only its
    `branch`) to ask the target about: what `restore(discover=…)` takes when this computer knows none."""
    if branch:
        if not vkn:
            raise ValueError("a branch is one firm's: give its vkn")
        pairs = {(vkn, branch)}
    else:
        pairs = {(f.vkn, f.branch or NO_BRANCH) for f in firms if vkn is None or f.vkn == vkn}
    return [MonthKey(v, b, p) for v, b in sorted(pairs) for p in periods_between(start, end)]


def holds_files(out: Path) -> bool:
    """True when `out` is a folder with something in it (a restore there needs into_existing)."""
    try:
        return _filled(out)
    except OSError:
        return False  # restore() says why it cannot look


def _filled(out: Path) -> bool:
    return out.is_dir() and any(out.iterdir())


def _check_destination(out: Path, into_existing: bool) -> None:
    """Refuse a destination that is a file, lies below one, is a link to nowhere, or is not empty
    (unless `into_existing`); Turkish RestoreError."""
    if out.is_symlink() and not out.exists():
        raise RestoreError(f"Hedef klasör, var olmayan bir yeri gösteren bir bağlantı (kısayol): {out}. "
                           f"Var olan ya da yeni bir klasör seçin.")
    if out.exists() and not out.is_dir():
        raise RestoreError(f"Hedef klasör bir dosya: {out}. Bir klasör seçin.")
    for parent in out.absolute().parents:  # the first folder above it that exists must be a folder
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise RestoreError(f"Hedef klasör oluşturulamaz: {parent} bir dosya (ya da ulaşılamayan bir "
                                   f"bağlantı). Başka bir klasör seçin.")
            break
    try:
        filled = _filled(out)
    except OSError as exc:
        raise RestoreError(f"Hedef klasör okunamadı: {out}: {_os_text(exc)}") from None
    if filled and not into_existing:
        raise RestoreError(f"Hedef klasör boş değil: {out}. Boş bir klasör seçin ya da var olan dosyalara "
                           f"dokunmadan eklemek için --into-existing kullanın.")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolved(folder: str) -> Path | None:
    """Where a configured folder really is (links followed); None when that cannot be said."""
    try:
        return Path(folder).resolve()
    except (OSError, RuntimeError):
        return None


def _check_not_ledgers(out: Path, firms) -> None:
    """Nothing is ever written into a ledger folder: restored copies there would be the firm's files to
    the next Tara (each month twice). Links are followed: the place the files would land counts."""
    where = out.resolve()
    for f in firms:
        ledgers = _resolved(f.folder) if f.folder else None
        if ledgers is None:
            continue
        if _inside(where, ledgers):
            raise RestoreError(f"Hedef klasör {f.name} firmasının e-Defter klasörünün içinde ({f.folder}). "
                               f"Geri yüklenen dosyalar e-Defter klasörlerine yazılmaz; başka bir klasör seçin.")
        if _inside(ledgers, where):
            raise RestoreError(f"Hedef klasör {f.name} firmasının e-Defter klasörünü ({f.folder}) içeriyor. "
                               f"Geri yüklenen dosyalar e-Defter klasörlerine yazılmaz; başka bir klasör seçin.")


def _check_not_backups(out: Path, targets) -> None:
    """Nor into a klasör Hedef's folder: the backups stay as they were sent (a restored tree beside the
    packages would be taken for part of the store, and the copy is no longer apart from the work)."""
    where = out.resolve()
    for name, cfg in (targets or {}).items():
        if getattr(cfg, "kind", "") != "klasör" or not getattr(cfg, "address", ""):
            continue
        store = _resolved(cfg.address)
        if store is None:
            continue
        if _inside(where, store) or _inside(store, where):
            raise RestoreError(f"Hedef klasör '{name}' yedek hedefinin klasörüyle ({cfg.address}) iç içe. Geri "
                               f"yüklenen dosyalar yedeklerin yanına yazılmaz; başka bir klasör seçin.")


def restore(book: Book, keys: list[MonthKey] | None = None, *, out: Path, source: str | None = None,
            into_existing: bool = False, discover: list[MonthKey] | None = None,
            options: actions.Options | None = None,
            where: Callable[[MonthKey], bool] | None = None) -> actions.Summary:
    """Restore the given months (every listed month when None) into `out`.

    `discover`: months to ask the target about even if neither the disk nor the journal lists them
    (another PC's backups after a loss). `source`: a Hedef name to restore from instead of each firm's.
    """
    out = Path(out)
    try:
        _check_destination(out, into_existing)
    except OSError as exc:  # a folder above it the user may not enter, a drive that went away
        raise RestoreError(f"Hedef klasöre bakılamadı: {out}: {_os_text(exc)}") from None
    restored: list[RestoredMonth] = []

    def body(run: actions._Run) -> None:
        if source is not None and source not in run.targets:
            raise RestoreError(f"'{source}' hedefi Hedefler sayfasında tanımlı değil.")
        _check_not_ledgers(out, run.firms)
        _check_not_backups(out, run.targets)
        listed = set(run.sets)
        for st in run.journal.statuses():
            if actions.firm_for(st.key, run.firms) is not None:
                listed.add(st.key)
        # a firm's months over a range (no months picked one by one): its branches the target lists too
        discover_all = set(discover or ()) | (_branches_held(run, discover or (), source) if keys is None else set())
        chosen = sorted(k for k in (listed if keys is None else set(keys)) | discover_all
                        if actions.firm_for(k, run.firms) is not None and (where is None or where(k)))
        if not chosen:
            raise NothingToRestore("Geri yüklenecek dönem bulunamadı: seçime uyan ay ne e-Defter klasörlerinde ne "
                                   "bu bilgisayarın günlüğünde var. Başka bir bilgisayarın yedeklediği ya da "
                                   "dosyaları tamamen silinmiş aylar hedefe sorularak geri yüklenir: komut satırında "
                                   "'edefter restore … --from YYYY-AA'. Firmanın Firmalar sayfasında olduğundan "
                                   "emin olun.")
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RestoreError(f"Hedef klasör oluşturulamadı: {out}: {_os_text(exc)}") from None
        optional = discover_all - listed  # asked about, not known to exist
        work = [(k, actions.firm_for(k, run.firms)) for k in chosen]
        state = _Restoring(_Verifier(VERIFY_WORKERS or (os.cpu_count() or 2) - 1))
        verifier = state.verifier
        try:
            _parallel_restore(run, work, out, source, restored, optional, state)
            if not restored and not state.unasked:  # every month was only asked about, and no target has one
                if created:
                    with suppress(OSError):
                        out.rmdir()
                raise RestoreError(f"Seçilen dönemlerin hiçbiri hedefte bulunamadı ({len(chosen)} dönem soruldu); "
                                   f"hiçbir şey geri yüklenmedi. Firmanın Hedef'ini ve --from/--to aralığını "
                                   f"kontrol edin.")
            report = _verify_and_report(run, out, restored, state)
        finally:
            verifier.close()
        run.summary.extra = {"out": str(out), "report": str(report) if report else None,
                             "months": [_month_json(m) for m in restored]}

    return actions._run_action(book, ACTION_RESTORE, options, body)


def _branches_held(run, discover, source: str | None) -> set[MonthKey]:
    """The months of other branches a target lists for a firm whose Firmalar row names no branch (the
    row covers them all), in the periods asked about: after a loss the journal may know none of them.
    A target that cannot list (İzibiz) or does not answer adds nothing; its months are still asked."""
    periods: dict[str, set[str]] = {}
    for k in discover:
        if k.branch == NO_BRANCH:
            periods.setdefault(k.vkn, set()).add(k.period)
    found: set[MonthKey] = set()
    for vkn, wanted in periods.items():
        firm = actions.firm_for(MonthKey(vkn, NO_BRANCH, min(wanted)), run.firms)
        if firm is None or firm.branch:
            continue
        for name in ([c.target for c in firm.per_target()] if source is None else [source]):
            copy = _firm_for_source(run, firm, name)
            try:
                listed = run.target_for(copy).months(vkn)
            except (TargetError, OSError):
                continue
            found.update(k for k in listed or () if k.vkn == vkn and k.period in wanted and k.branch != NO_BRANCH
                         and actions.firm_for(k, run.firms) is firm)
    return found


@dataclass
class _Restoring:
    """What one restore run keeps beside the action's run: its verifier, the months it could not ask
    (month -> Hedef names given up on before they could be asked, for months asked about only because
    of --from), and the notes its report repeats."""
    verifier: _Verifier | None = None
    unasked: dict[MonthKey, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _parallel_restore(run, work, out, source, restored, optional, state: _Restoring) -> None:
    def one(item):
        key, firm = item
        # without --source, a firm with several Hedefs is restored from the first copy that holds the
        # month whole. A copy that is not the package this computer backed up is passed over unwritten
        # while a later copy remains; one that failed part-way is completed from the next copy into the
        # same folder, where a file already written counts only if it is byte for byte the next copy's
        # (the same package goes to every Hedef), so no file of two different packages is ever mixed in
        names = [c.target for c in firm.per_target()] if source is None and firm is not None else [source]
        month = None
        passed: list[RestoredMonth] = []
        for i, name in enumerate(names):
            last = i == len(names) - 1
            got = restore_month(run, key, firm, out, name, state, optional=True if not last else key in optional,
                                strict=not last)
            if got is not None and (got.ok or last):
                month = got
                break
            if got is not None:
                month = got  # kept if no later copy holds it: its reason is said
                passed.append(got)
        if month is not None:
            month.passed_over = [p for p in passed if p is not month]
            with run._lock:
                restored.append(month)
                state.unasked.pop(key, None)

    actions._parallel(run, work, one)
    # months that might be on a target nobody could ask: said once per Hedef, and the run is not a success
    per_target = Counter(name for names in state.unasked.values() for name in names)
    for name, n in sorted(per_target.items()):
        exc = run.given_up(name)
        why = f" {_reason(exc)}" if exc is not None else ""
        note = (f"{name}:{why} {n} dönem bu hedefe sorulamadı; hedefe ulaşılabildiğinde geri yüklemeyi yeniden "
                f"çalıştırın (--into-existing).")
        run.summary.notes.append(note)
        state.notes.append(note)  # the report says it too: an inspector must see what was not asked
        run.summary.blocked += n
    restored.sort(key=lambda m: (m.key.vkn, m.key.branch, m.key.period))


_ERRNO_TR = {
    "ENOSPC": "diskte yer kalmadı", "EDQUOT": "disk kotası doldu", "EACCES": "erişim izni yok",
    "EPERM": "izin verilmedi", "EROFS": "disk salt okunur", "EEXIST": "aynı adla bir dosya var",
    "ENOTDIR": "yolda klasör yerine bir dosya var", "EISDIR": "aynı adla bir klasör var",
    "ENAMETOOLONG": "yol çok uzun", "EIO": "disk okuma/yazma hatası", "ENOENT": "yol bulunamadı",
    "EMFILE": "açık dosya sınırı aşıldı", "ELOOP": "bağlantılar (kısayollar) döngü oluşturuyor",
}


def _os_text(exc: OSError) -> str:
    """An OS error in Turkish where it is a common one, with the path; the system's own words otherwise."""
    name = errno.errorcode.get(exc.errno or -1, "")
    words = _ERRNO_TR.get(name) or exc.strerror or str(exc)
    where = exc.filename if isinstance(exc.filename, str) else ""
    return f"{words} ({where})" if where else words


def _reason(exc: TargetError) -> str:
    """What went wrong last: the retry wrapper's "n denemeden sonra…" names its last error as its cause."""
    last = exc.__cause__
    return last.message if isinstance(last, TargetError) else exc.message


def _firm_for_source(run, firm: actions.Firm, source: str | None) -> actions.Firm:
    if source is None or source == firm.target:
        return firm
    return firm.for_target(source)  # that Hedef's own Kullanıcı Adı when the firm names several


def restore_month(run, key: MonthKey, firm: actions.Firm, out: Path, source: str | None, state: _Restoring,
                  optional: bool = False, strict: bool = False) -> RestoredMonth | None:
    """One month from its target into `out`; None for an `optional` month the target does not hold.
    `strict`: nothing is written from a package other than the one the journal says was backed up there."""
    firm = _firm_for_source(run, firm, source)
    identity = run.identity(firm)
    month = RestoredMonth(key, firm.name, actions._describe(identity))
    known = run.journal.status(key, identity)
    unusable = run.given_up(firm.target, firm.user)
    if unusable is not None:  # given up on earlier in this run: nobody answers, or its settings
        if optional:
            with run._lock:
                state.unasked.setdefault(key, set()).add(firm.target)
            return None
        month.missing.append(f"Hedef bu çalışmada kullanılamıyor, denenmedi: {_reason(unusable)}")
        return month
    attempt = None

    def done(message: str) -> RestoredMonth:
        # a restore never changes the month's backup status; it is logged after verification
        if attempt is not None:
            run.journal.finish(attempt, key, identity, known.status if known else S.NOT_SENT, message,
                               set_status=False)
        return month

    def failed(message: str) -> RestoredMonth:
        nonlocal attempt
        month.missing.append(message)
        attempt = attempt or run.journal.begin(key, identity, "restore", None)  # asked, and it failed
        return done(message)

    # a folder per month: months are fetched in parallel and each removes its own
    package = run.workdir / "geri" / f"{key.vkn}-{key.branch}-{key.period}" / key.package_name
    try:
        target = run.target_for(firm)
        receipt = target.fetch_stored(key, package)  # one download where asking reads the package back
        if receipt.state != STORED:
            if optional and receipt.state == MISSING:  # only asked about, and not there: not a month of it
                return None
            why = {ACCEPTED: "paket hedefte işleniyor, saklandığı henüz onaylanmadı",
                   REJECTED: "hedef paketi reddetmiş"}.get(receipt.state, "hedef bu aya ait bir paket tutmuyor")
            told = f" Hedefin yanıtı: {receipt.message}" if receipt.message else ""
            month.missing.append(f"Hedefte bu ay için saklanmış paket yok ({why}).{told}")
            return done(month.missing[-1])
        month.receipt = (receipt.reference or "", receipt.sha256 or "",
                         str(receipt.extra.get("stored_at") or receipt.extra.get("received_at") or ""))
        attempt = run.journal.begin(key, identity, "restore", receipt.sha256 or None)
        _unpack(run, key, identity, package, receipt.sha256, known, month, out, state.verifier, strict=strict)
    except ConfigurationError as exc:
        run.give_up_on(firm, exc)
        month.missing.append(exc.message)
        return done(exc.message)
    except TargetError as exc:
        if isinstance(exc, UnreachableError):  # its other months are not tried (each would retry again)
            run.give_up_on(firm, exc)
        return failed(f"Hedeften alınamadı: {exc.message}")
    except OSError as exc:
        return failed(f"Dosya yazılamadı: {_os_text(exc)}")
    except Exception as exc:  # a hostile package fails its month, never the whole restore
        from edefter_helper import crashlog

        where = crashlog.record(exc, f"geri yükleme {key.package_name}")  # the traceback there, not on screen
        log.error("%s geri yüklenirken beklenmeyen hata (%s); ayrıntılar: %s", key.package_name,
                  type(exc).__name__, where)
        return failed(f"Paket işlenemedi ({type(exc).__name__}: {str(exc)[:200]}).")
    except BaseException:  # Ctrl+C: the attempt is not left 'under way' in the journal
        if attempt is not None:
            with suppress(Exception):
                done("Geri yükleme yarıda kesildi.")
        raise
    finally:
        shutil.rmtree(package.parent, ignore_errors=True)
    month.ok = not month.missing
    return done(f"{len(month.files)} dosya {month.folder} klasörüne geri yüklendi." if month.ok
                else "; ".join(month.missing))


def _unpack(run, key, identity, package: Path, stored_sha: str, known, month: RestoredMonth, out: Path,
            verifier: _Verifier | None = None, *, strict: bool = False) -> None:
    sha = month.package_sha256 = sha256_file(package)
    if stored_sha and sha != stored_sha:
        month.missing.append(f"İndirilen paket hedefin bildirdiğinden farklı (sha256 {sha[:12]}…).")
        return
    if known and known.package_sha256 and known.package_sha256 != sha:
        month.missing.append(f"Hedefteki paket bu bilgisayarın yedeklediği paket değil (günlükte "
                             f"{known.package_sha256[:12]}…, hedefte {sha[:12]}…)."
                             + (" Bu kopyadan dosya yazılmadı." if strict else ""))
        if strict:
            return
    # what this computer recorded at backup: the files of this package, or else of the package the
    # journal says it backed up (a different package on the target is then compared file by file)
    recorded = {n: h for n, h in (run.journal.files_backed_up(key, identity, sha) or [])}
    if not recorded and known and known.package_sha256 and known.package_sha256 != sha:
        recorded = {n: h for n, h in (run.journal.files_backed_up(key, identity, known.package_sha256) or [])}
    try:
        zf = zipfile.ZipFile(package)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        month.missing.append("Hedeften gelen paket bozuk (zip okunamadı).")
        return
    with zf:
        expected, problem = _read_manifest(zf, key)
        if problem:
            month.missing.append(problem)
            return
        counts = Counter(i.filename for i in zf.infolist() if not i.is_dir())
        names = set(counts)
        twice = sorted(n for n, c in counts.items() if c > 1)
        if MANIFEST in twice:
            month.missing.append("Pakette birden çok içerik listesi (manifest.json) var; hangisinin yedek olduğu "
                                 "belli değil, paketten hiçbir dosya yazılmadı.")
            return
        for name in sorted(set(recorded) - set(expected)):
            month.missing.append(f"{name} yedeklendiği günlükte kayıtlı, ama hedefteki pakette yok.")
        folder = month_folder(out, key)
        linked = _linked(out, folder)
        if linked:
            month.missing.append(linked)
            return
        month.folder = folder
        if any(_safe_name(n, key) and n in names for n in expected):  # a month folder only for its files
            folder.mkdir(parents=True, exist_ok=True)
            _clean_leftovers(folder)
        members = {i.filename: i for i in zf.infolist() if not i.is_dir() and i.filename != MANIFEST}
        for name in twice:  # which of two same-named members is the backup is up to the unzip tool: neither
            members.pop(name, None)
        # the largest first: their verification, the longest part of a restore, starts soonest
        order = sorted(expected.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if verifier is not None and any(size >= PIPELINE_BYTES for _, (size, _) in order):
            verifier.start(sum(1 for _, (size, _) in order if size >= PIPELINE_BYTES))
        said: list[tuple[str, str]] = []  # (name, sentence): told in name order, whatever the work order
        files = []
        then = verifier.submit if verifier is not None and verifier.active else None
        written = []  # (name, size, sha256, as backed up, problem or its Future)
        # each file's fsync and publishing happen in another thread while the next member is inflated
        with ThreadPoolExecutor(1, thread_name_prefix="geri-yaz") as finisher:
            for name, (size, file_sha) in order:
                if not _safe_name(name, key):
                    said.append((name, f"Paketteki dosya adı kabul edilmedi: {name!r}"))
                    continue
                if name in twice:
                    said.append((name, (f"{name} pakette birden çok kez var; hangisinin yedek olduğu belli "
                                        f"değil, yazılmadı.")))
                    continue
                info = members.pop(name, None)
                if info is None:
                    said.append((name, f"{name} pakette yok."))
                    continue
                if info.file_size != size:  # the zip's own record already says these are other bytes
                    said.append((name, (f"{name}: paketteki boyut ({info.file_size} bayt) içerik "
                                        f"listesindekinden ({size} bayt) farklı; yazılmadı.")))
                    continue
                if recorded and recorded.get(name) not in (None, file_sha):
                    said.append((name, f"{name}: paketteki sha256 günlükte kayıtlı olandan farklı."))
                written.append((name, size, file_sha, not recorded or recorded.get(name) == file_sha,
                                _write_member(zf, info, folder / name, size, file_sha, finisher, then)))
                waiting = [w[-1] for w in written if isinstance(w[-1], Future) and not w[-1].done()]
                if len(waiting) > FILES_IN_FLIGHT:  # open files and unsynced bytes stay bounded
                    wait(waiting, return_when=FIRST_COMPLETED)
            for name, size, file_sha, same, result in written:
                problem = result.result() if isinstance(result, Future) else result
                if problem:
                    said.append((name, problem))
                else:
                    files.append((name, size, file_sha, same))
        month.files.extend(sorted(files))
        month.missing.extend(text for _, text in sorted(said, key=lambda x: x[0]))
        for extra in sorted(set(members) | (set(twice) - set(expected))):
            month.missing.append(f"Pakette içerik listesinde olmayan dosya yok sayıldı: {extra!r}")
        if folder.is_dir():  # --into-existing: a ledger file already there that is not of this package
            with suppress(OSError):
                for p in sorted(folder.iterdir()):
                    if p.name not in expected and parse_name(p.name) is not None and not p.is_dir():
                        month.missing.append(f"{p.name} klasörde zaten vardı ve bu yedeğe ait değil; ayın klasörü "
                                             f"yedekteki hâliyle aynı değil (boş bir klasöre geri yükleyin).")
            fsync_dir(folder)  # every name written above is durable before the month is called restored


def _linked(out: Path, folder: Path) -> str | None:
    """A Turkish sentence when a folder between `out` and the month's `folder` that exists already is a
    link (symlink, junction) to somewhere else: files are never written where a link points."""
    base = out.resolve()
    cur, rel = out, base
    for part in folder.relative_to(out).parts:
        cur, rel = cur / part, rel / part
        if not os.path.lexists(cur):
            return None
        if cur.is_symlink() or cur.resolve() != rel:
            return (f"Hedef klasördeki {cur} bir bağlantı (kısayol) ya da bağlama noktası; geri yüklenen dosyalar "
                    f"bağlantıların gösterdiği yere yazılmaz. Bu ay yazılmadı.")
    return None


def _safe_name(name: str, key: MonthKey) -> bool:
    """Only a plain e-Defter file name of this month and branch (no folders, no '..')."""
    if not isinstance(name, str) or "/" in name or "\\" in name or name in (".", "..") or ":" in name \
            or "\x00" in name:
        return False
    parsed = parse_name(name)
    return (parsed is not None and parsed.vkn == key.vkn and parsed.period == key.period
            and parsed.branch in (None, key.branch))


MANIFEST_LIMIT = 16 * 1024 * 1024  # a month's list of files is a few kB; more is not a manifest
_SHA = frozenset("0123456789abcdef")


def _read_manifest(zf: zipfile.ZipFile, key: MonthKey) -> tuple[dict[str, tuple[int, str]], str | None]:
    """The package's list of files {name: (size, sha256)}, or a Turkish sentence saying why it cannot be
    trusted: unreadable, malformed, a name listed twice, or a package of another month, branch or firm."""
    unreadable = "Paketin içerik listesi (manifest.json) okunamadı."
    try:
        info = zf.getinfo(MANIFEST)
        if info.file_size > MANIFEST_LIMIT:
            return {}, unreadable
        with zf.open(info) as f:
            raw = f.read(MANIFEST_LIMIT + 1)
        if len(raw) > MANIFEST_LIMIT:
            return {}, unreadable
        manifest = json.loads(raw)
    except KeyError:
        return {}, "Pakette içerik listesi (manifest.json) yok."
    except Exception:  # noqa: BLE001  damaged, encrypted, another method, not JSON, nested too deep
        return {}, unreadable
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return {}, unreadable
    said = {f: manifest.get(f) for f in ("vkn", "branch", "period") if manifest.get(f) not in (None, "")}
    wanted = {"vkn": key.vkn, "branch": key.branch, "period": key.period}
    if any(str(v) != wanted[f] for f, v in said.items()):
        other = " ".join(str(said.get(f, "?")) for f in ("vkn", "branch", "period"))
        return {}, (f"Hedef bu ay yerine başka bir ayın paketini verdi (içerik listesine göre {other}; istenen "
                    f"{key.vkn} {key.branch} {key.period}); paketten hiçbir dosya yazılmadı.")
    expected: dict[str, tuple[int, str]] = {}
    for f in manifest["files"]:
        if not isinstance(f, dict):
            return {}, unreadable
        name, size, sha = f.get("name"), f.get("size"), f.get("sha256")
        if (not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0
                or not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _SHA):
            return {}, f"Paketin içerik listesinde geçersiz bir kayıt var: {str(f)[:200]!r}"
        if name in expected:
            return {}, (f"Paketin içerik listesi {name} dosyasını iki kez sayıyor; hangisinin yedek olduğu belli "
                        f"değil, paketten hiçbir dosya yazılmadı.")
        expected[name] = (size, sha)
    if not expected:
        return {}, "Paketin içerik listesinde dosya yok."
    return expected, None


class _Mismatch(Exception):
    pass


PART_PREFIX, PART_SUFFIX = ".geri-", ".part"


def _hold(fd: int) -> None:
    """Mark a temporary file as in use while it is written (an advisory lock where the OS has them;
    on Windows an open file cannot be removed anyway)."""
    if fcntl is None:
        return
    with suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _clean_leftovers(folder: Path, prefix: str = PART_PREFIX) -> None:
    """Remove the temporary files a restore killed outright (power cut, kill -9) left in `folder`: only
    ours (prefix + .part) and only those no running restore is writing."""
    try:
        names = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(PART_SUFFIX)]
    except OSError:
        return
    for p in names:
        try:
            if not p.is_file() or p.is_symlink():
                continue
            if fcntl is None:
                os.unlink(p)  # fails while another process has it open
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a writer: not a leftover
                os.unlink(p)
            finally:
                os.close(fd)
        except OSError:
            continue


def _write_member(zf, info, dest: Path, size: int, file_sha: str, finisher=None,
                  then: Callable[..., None] | None = None):
    """Write one file atomically while hashing; never replace a file with other bytes. None when
    `dest` holds the member's bytes afterwards, else what went wrong (Turkish); `then(dest, written)`
    is called once it does, `written` saying what was written (its sha256, size and the zip's CRC-32
    of it; None for a file found there already). With `finisher` (an executor) the file's fsync and
    publishing run there and a Future of that answer is returned, so the caller can inflate the next
    member meanwhile."""
    written = None

    def done(problem: str | None) -> str | None:
        if problem is None and then is not None:
            then(dest, written)
        return problem

    if os.path.lexists(dest):  # a file, or a link (never written through): _already_there says which
        return done(_already_there(dest, size, file_sha))
    fd, tmp = tempfile.mkstemp(prefix=PART_PREFIX, suffix=PART_SUFFIX, dir=dest.parent)
    _hold(fd)  # a rerun beside this one leaves it alone (_clean_leftovers)
    fh = os.fdopen(fd, "wb")
    problem = None
    try:
        _take_mode(fh.fileno(), dest)
        sha = hashlib.sha256()
        total = 0
        for chunk in _member_chunks(zf, info):
            total += len(chunk)
            if total > size:
                raise _Mismatch
            sha.update(chunk)
            fh.write(chunk)
        if total != size or sha.hexdigest() != file_sha:
            raise _Mismatch
        # the zip's CRC-32 is not checked here (the sha256 is): a wrong one only makes the verifier
        # read the file whole (reader.join_halves)
        written = {"sha256": file_sha, "size": size, "crc32": info.CRC}
        fh.flush()
    except _Mismatch:
        problem = f"{dest.name}: paketteki bayt içerik listesindeki sha256 ile uyuşmuyor; yazılmadı."
    except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError) as exc:
        problem = f"{dest.name}: paketten okunamadı ({_zip_text(exc)})."
    except BaseException:
        fh.close()
        with suppress(OSError):
            os.unlink(tmp)
        raise
    if problem is not None:
        fh.close()
        with suppress(OSError):
            os.unlink(tmp)
        return problem

    def finish() -> str | None:
        published = False
        try:
            try:
                os.fsync(fh.fileno())
            finally:
                fh.close()
            try:
                _publish(tmp, dest)
            except FileExistsError:  # written there meanwhile, by someone else
                return done(_already_there(dest, size, file_sha))
            published = True
            return done(None)
        finally:
            if not published:
                with suppress(OSError):
                    os.unlink(tmp)

    return finisher.submit(finish) if finisher is not None else finish()


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader


def _member_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """The member's bytes, inflated straight from the package. zipfile's reader would also compute
    each member's CRC-32: a second checksum over every byte, which the caller's sha256 against the
    manifest makes redundant (0.1 s a 200 MB part). The local header is checked as zipfile checks it;
    an encrypted member or another method goes through zipfile."""
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        with zf.open(info) as src:
            while chunk := src.read(CHUNK):
                yield chunk
        return
    with open(zf.filename, "rb") as raw:
        raw.seek(info.header_offset)
        head = raw.read(_LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"{info.filename}: yerel başlık yok")
        fields = _LOCAL_HEADER.unpack(head)
        name = raw.read(fields[10])
        name = name.decode("utf-8" if fields[3] & 0x800 else "cp437", errors="replace")
        if name != info.orig_filename:
            raise zipfile.BadZipFile(f"{info.filename}: yerel başlıktaki ad farklı ({name!r})")
        raw.seek(fields[11], os.SEEK_CUR)
        left = info.compress_size
        inflate = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
        while left > 0:
            data = raw.read(min(CHUNK, left))
            if not data:
                raise EOFError(f"{info.filename}: paket kesik")
            left -= len(data)
            if inflate is None:
                yield data
                continue
            while data:  # at most CHUNK out per call, whatever the ratio
                out = inflate.decompress(data, CHUNK)
                data = inflate.unconsumed_tail
                if out:
                    yield out
        if inflate is not None:
            while out := inflate.decompress(b"", CHUNK):
                yield out
            if not inflate.eof:
                raise zipfile.BadZipFile(f"{info.filename}: sıkıştırılmış veri eksik")


def _zip_text(exc: BaseException) -> str:
    """Why a member could not be read, in Turkish (zipfile and zlib say it in English)."""
    if isinstance(exc, zlib.error):
        return "sıkıştırılmış veri bozuk"
    if isinstance(exc, EOFError):
        return "paket kesik"
    if isinstance(exc, NotImplementedError):
        return "desteklenmeyen sıkıştırma yöntemi"
    if isinstance(exc, RuntimeError):
        return "dosya şifreli ya da okunamıyor"
    text = str(exc)
    if "CRC" in text:
        return "CRC denetimi tutmadı (bayt bozuk)"
    return text if any(c in text for c in "ıİşŞğĞçÇöÖüÜ") else f"zip hatası: {text}"


def _already_there(dest: Path, size: int, file_sha: str) -> str | None:
    try:
        if dest.is_symlink():
            return (f"{dest.name} hedef klasörde bir bağlantı (kısayol) olarak var; bağlantının gösterdiği yere "
                    f"yazılmadı.")
        if dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == file_sha:
            return None  # already there, same bytes (a rerun)
    except OSError as exc:
        return f"{dest.name} hedef klasörde var ama okunamadı ({_os_text(exc)}); üzerine yazılmadı."
    return f"{dest.name} hedef klasörde başka içerikle zaten var; üzerine yazılmadı."


def _publish(tmp: str, dest: Path) -> None:
    """`tmp` becomes `dest` at once, and never in place of a file that is there already
    (FileExistsError): a hard link cannot replace a name, nor can a rename on Windows."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (FAT, some shares)
        if os.name != "nt" and os.path.lexists(dest):
            raise FileExistsError(dest) from None
        os.rename(tmp, dest)
        return
    os.unlink(tmp)


# what a worker process runs: the engine's read of each file or half it is given (reader.read_part), one
# JSON line back per job. Only the reader is imported, so a worker holds the engine and nothing else.
_WORKER = """
import json, sys
from edefter_helper.engine.reader import read_part
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    location, part = json.loads(line)
    out.write(json.dumps(read_part(location, part)).encode() + b"\\n")
    out.flush()
"""


class _Verifier:
    """Reads restored files with the engine while the restore goes on writing the next ones: worker
    processes take each file as soon as it is written, and once every month is unpacked this process
    reads what is still queued too (`facts`). One per restore run; no process is started unless a month
    holds a file big enough for the engine to read it in a worker (`start`). A worker that cannot be
    started or stops answering is replaced by a read in this process: every file gets its facts.

    A big ledger (HALVES_BYTES and over) is read as the engine's two halves (reader.read_signed and
    reader.check_bytes), two jobs that two processes can run at once: with a few equal parts and two
    readers, the last part would otherwise keep one core busy while the other waits.

    `limit` workers at most: one per core less this process's own, which unpacks meanwhile (a worker
    holding the engine after a big file is ~55 MB; two of them beside this process would be over the
    150 MB the restore is allowed on a 2-core machine, and not faster, since unpacking fills a core)."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        # location -> {part: (identity seen, answer)}; part: "whole"; or the halves "signed" and "bytes"
        # ("bytes+sha256" for a file this restore did not write), with "written" (what it wrote)
        self._results: dict[str, dict[str, tuple[str, object]]] = {}
        self._read_here: set[str] = set()
        self.reread = 0  # files read again at the end: changed since, or never read

    @property
    def here(self) -> int:
        """Files read in this process, whole or a half (after unpacking, or for a failed worker)."""
        return len(self._read_here)

    @property
    def active(self) -> bool:
        return bool(self._threads)

    def start(self, wanted: int) -> None:
        with self._lock:
            while len(self._threads) < min(wanted, self.limit):
                self._add_worker()

    def _add_worker(self) -> None:
        thread = threading.Thread(target=self._serve, name="geri-dogrulama", daemon=True)
        self._threads.append(thread)
        thread.start()

    def submit(self, path: Path, written: dict | None = None, *, whole: bool = False) -> None:
        """Read `path` as it is now (its identity is kept with the facts). `written`: its sha256, size
        and CRC-32 as the restore wrote it; a big ledger's halves then need not hash it again."""
        from edefter_helper.engine.cache import identity

        try:
            st = os.stat(path)
            ident = identity(st)
        except OSError:
            st, ident = None, ""
        parts = ["whole"]
        if not whole and st is not None and _in_halves(path.name, st.st_size):
            parts = ["signed", "bytes" if written else "bytes+sha256"]
            if written:
                with self._lock:
                    self._results.setdefault(str(path), {})["written"] = (ident, written)
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.limit:
                self._add_worker()
        for part in parts:
            self._jobs.put((str(path), ident, part))

    def facts(self, files) -> dict[str, dict]:
        """Facts of every file as it is now: those read since their last change are kept, the others
        read now. Reads queued files in this process too, then waits for the workers."""
        from edefter_helper.engine import problems as P
        from edefter_helper.engine.cache import identity

        self._drain()
        out, again = {}, []
        for f in files:
            try:
                ident = identity(os.stat(f.location))
            except OSError as exc:
                out[f.location] = {"problems": [P.unreadable(exc.strerror or str(exc), f.path).as_json()]}
                continue
            kept = {part: facts for part, (seen, facts) in self._results.get(f.location, {}).items()
                    if seen == ident}
            if "whole" in kept:
                out[f.location] = kept["whole"]
            elif "signed" in kept and ("bytes" in kept or "bytes+sha256" in kept):
                # the two halves saw this identity; anything they cannot settle is read whole here
                checked = kept.get("bytes") or kept.get("bytes+sha256")
                out[f.location] = _joined(f.path, f.name, kept["signed"], checked, kept.get("written"))
            else:
                again.append(f)
        self.reread += len(again)
        if again:
            for f in again:
                self.submit(f.path, whole=True)
            self._drain()
            for f in again:
                out[f.location] = self._results[f.location]["whole"][1]
        return out

    def _drain(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            self._do(job, None)
        self._jobs.join()

    def _do(self, job: tuple[str, str, str], proc) -> object:
        """Read one file or half, in worker `proc` if there is one; returns the worker still usable, or None."""
        location, ident, part = job
        try:
            facts, answered = None, False
            if proc is not None:
                try:
                    facts, answered = self._ask(proc, location, part), True
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("Doğrulama süreci yanıt vermedi (%s); dosya bu süreçte okunuyor.", exc)
                    _stop(proc)
                    proc = None
            if not answered:
                with self._lock:
                    self._read_here.add(location)
                facts = _read_here(location, part)
            with self._lock:
                self._results.setdefault(location, {})[part] = (ident, facts)
        finally:
            self._jobs.task_done()
        return proc

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _serve(self) -> None:
        proc = self._spawn()
        try:
            while True:
                with self._lock:
                    self._idle += 1
                job = self._jobs.get()
                with self._lock:
                    self._idle -= 1
                if job is None:
                    self._jobs.task_done()
                    return
                proc = self._do(job, proc)
        finally:
            if proc is not None:
                _stop(proc)

    @staticmethod
    def _spawn():
        import edefter_helper

        env = dict(os.environ)
        root = str(Path(edefter_helper.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            return subprocess.Popen(
                [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0)
        except OSError as exc:
            log.warning("Doğrulama süreci başlatılamadı (%s); dosyalar bu süreçte okunuyor.", exc)
            return None

    @staticmethod
    def _ask(proc, location: str, part: str) -> dict | None:
        proc.stdin.write(json.dumps([location, part]).encode() + b"\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise ValueError("süreç kapandı")
        facts = json.loads(line)
        if not isinstance(facts, dict) and not (facts is None and part == "signed"):
            raise TypeError("beklenmeyen yanıt")
        return facts


def _in_halves(name: str, size: int) -> bool:
    """A ledger read as the engine's two halves (HALVES_BYTES and over, not a .zip berat)."""
    parsed = parse_name(name)
    return size >= HALVES_BYTES and parsed is not None and not parsed.zipped


def _stop(proc) -> None:
    with suppress(OSError):
        proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with suppress(OSError):
        proc.stdout.close()


def _failed_read(exc: BaseException, location: str) -> dict:
    from edefter_helper.engine import problems as P

    return {"problems": [P.read_failed(f"{type(exc).__name__}: {exc}"[:300], location).as_json()],
            "malformed": True}


def _read_here(location: str, part: str = "whole") -> dict | None:
    from edefter_helper.engine.reader import read_part

    try:
        return read_part(location, part)
    except Exception as exc:  # noqa: BLE001  as the engine's workers: a fault in one file is that file's problem
        if part != "whole":
            return None  # a half that failed settles nothing: join_halves reads the file whole
        return _failed_read(exc, location)


def _joined(path: Path, name, signed, checked, written) -> dict:
    """reader.join_halves, whose whole read (when the halves do not settle it) may fail as _read_here's."""
    from edefter_helper.engine.reader import join_halves

    try:
        return join_halves(path, name, signed, checked, written)
    except Exception as exc:  # noqa: BLE001  (as _read_here)
        return _failed_read(exc, str(path))


def _verify_and_report(run, out: Path, restored: list[RestoredMonth], state: _Restoring) -> Path | None:
    from edefter_helper import __version__, report
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.scan import scan
    from edefter_helper.engine.trust import TrustError, TrustList
    from edefter_helper.engine.verify import check_set, verify_sets

    verifier = state.verifier
    done = [m for m in restored if m.folder is not None and m.folder.is_dir()]
    sets = {}
    if done:
        try:
            trust = TrustList.default()
        except TrustError:
            trust = TrustList()
        cache = FileCache(None)
        result = scan([m.folder for m in done], cache)
        if verifier is not None and verifier.active:
            # the facts read while unpacking, for the files unchanged since; every other file now
            read = verifier.facts([f for ms in result.sets for f in ms.files])
            for ms in result.sets:
                check_set(ms, read, trust)
        else:
            verify_sets(result, cache, trust=trust)  # the engine's whole check, as verify_roots
        sets = {ms.key: ms for ms in result.sets}
    months = []
    for m in restored:
        ms = sets.get(m.key)
        if ms is not None and m.folder is not None:  # the verdict is about the bytes checked against the manifest
            verified = {f.location: f.sha256 for f in ms.files}
            for name, _size, sha, _same in m.files:
                got = verified.get(str(m.folder / name))
                if got is None:  # a file the engine could not read whole has no digest from it
                    try:
                        got = sha256_file(m.folder / name)
                    except OSError:
                        got = ""
                if got != sha:
                    m.ok = False
                    m.missing.append(f"{name} yazıldıktan sonra değişti; doğrulanan bayt geri yüklenen bayt değil.")
        # one row per copy (target, package): a copy confirmed again later (Durum Sorgula, a resend of
        # the same package) keeps its first confirmation and the receipt the target gave
        merged: dict[tuple[str, str], list[str]] = {}
        for a in run.journal.attempts(m.key):
            if a["outcome"] == S.BACKED_UP and a["package_sha256"]:
                row = merged.setdefault((actions._describe(a["target"]), a["package_sha256"]), ["", ""])
                at = a["finished_at"] or ""
                if at and (not row[0] or at < row[0]):
                    row[0] = at
                if not row[1] and a["receipt"]:
                    row[1] = a["receipt"]
        copies = [report.CopyRecord(t, at, receipt, sha) for (t, sha), (at, receipt) in merged.items()]
        if m.receipt is not None and m.receipt[1] and not any(
                c.target == m.source and c.package_sha256 == m.receipt[1] for c in copies):
            # this journal never saw the copy confirmed (another PC made it): the source's own answer,
            # asked in this restore, says where it is, since when, and under which receipt
            copies.append(report.CopyRecord(m.source, m.receipt[2], m.receipt[0], m.receipt[1]))
        months.append(report.ReportMonth(
            vkn=m.key.vkn, branch=m.key.branch, period=m.key.period, firm=m.firm, source=m.source,
            files=[report.ReportFile(n, s, h, str((m.folder or out).relative_to(out)), same)
                   for n, s, h, same in m.files],
            copies=copies,
            valid=ms.valid if ms is not None else None,
            problems=[_named(p) for p in ms.problems] if ms is not None else [],
            warnings=[f"{p.source} kopyası kullanılamadı: {'; '.join(p.missing[:3]) or 'bilinmeyen neden'}"
                      for p in m.passed_over]
            + ([_named(w) for w in ms.warnings] if ms is not None else []),
            signers=sorted(ms.signers) if ms is not None else [],
            countersigners=sorted(ms.countersigners) if ms is not None else [],
            missing=list(m.missing),
            package_sha256=m.package_sha256))
        if ms is not None and not ms.valid:
            m.ok = False
            m.missing.append("Geri yüklenen dosyalar doğrulamadan geçmedi: "
                             + "; ".join(p.message for p in ms.problems[:3]))
        if m.ok:
            text = f"{len(m.files)} dosya geri yüklendi ve doğrulandı: {m.folder}"
        else:
            text = "; ".join(m.missing) or "Geri yüklenemedi."
        run.log(m.key, m.firm, RESTORED if m.ok else NOT_RESTORED, text)
    text = report.render(months, generated_at=datetime.now().astimezone(), tool_version=__version__,
                         notes=state.notes)
    try:
        return _write_report(out, text.encode("utf-8"))
    except OSError as exc:  # the months are restored and said; the run is not a success without its report
        run.summary.notes.append(f"İbraz Raporu yazılamadı: {_os_text(exc)}. Geri yüklenen dosyalar yerinde; "
                                 f"raporu almak için geri yüklemeyi --into-existing ile yeniden çalıştırın.")
        run.summary.blocked += 1
        return None


REPORT_NAME = "ibraz-raporu.html"


def _write_report(out: Path, data: bytes) -> Path:
    """The report beside the files, written whole (fsynced, then published under its name), never in
    place of a file that is there: a destination filled with --into-existing may hold an earlier report
    (or the user's own file of that name), which stays; this one is ibraz-raporu-2.html, -3, …"""
    _clean_leftovers(out, ".ibraz-raporu-")
    fd, tmp = tempfile.mkstemp(prefix=".ibraz-raporu-", suffix=PART_SUFFIX, dir=out)
    _hold(fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        stem, suffix = REPORT_NAME.rsplit(".", 1)
        for n in range(1, 10_000):
            dest = out / (REPORT_NAME if n == 1 else f"{stem}-{n}.{suffix}")
            if os.path.lexists(dest):
                continue
            try:
                _publish(tmp, dest)
            except FileExistsError:
                continue
            fsync_dir(out)
            return dest
        raise RestoreError(f"İbraz Raporu için {out} içinde boş bir ad bulunamadı.")
    finally:
        with suppress(OSError):
            os.unlink(tmp)


def _named(problem) -> str:
    """An inspector needs to know which file a sentence is about."""
    return f"{Path(problem.path).name}: {problem.message}" if problem.path else problem.message


def _month_json(m: RestoredMonth) -> dict:
    return {"vkn": m.key.vkn, "branch": m.key.branch, "period": m.key.period, "firm": m.firm, "source": m.source,
            "ok": m.ok, "folder": str(m.folder) if m.folder else None,
            "passed_over": [{"source": p.source, "missing": p.missing} for p in m.passed_over],
            "files": [{"name": n, "size": s, "sha256": h, "matches_backup": same} for n, s, h, same in m.files],
            "missing": m.missing, "package_sha256": m.package_sha256}
