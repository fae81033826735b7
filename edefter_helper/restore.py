"""Geri Yükle / İbraz Paketi: months fetched back from a target into GİB's folder layout, every byte
checked against what was backed up, verified by the engine, with an İbraz Raporu beside them.

The target is the source: a month whose local files are gone, or that this computer's journal does
not know (another PC made the backup), comes back the same way. Nothing is ever overwritten: a
non-empty destination needs `into_existing`, and even then a file with other bytes is left alone and
reported. Files are written atomically from the package as it is read, so an interrupted restore
leaves no half-written file and can be run again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import NO_BRANCH, parse_name
from edefter_helper.engine.package import MANIFEST
from edefter_helper.fsutil import atomic_write
from edefter_helper.targets.base import STORED, ConfigurationError, TargetError
from edefter_helper.workbook.book import Book

log = logging.getLogger(__name__)

ACTION_RESTORE = "Geri Yükle"
RESTORED, NOT_RESTORED = "Geri Yüklendi", "Geri Yüklenemedi"
CHUNK = 1 << 20


class RestoreError(Exception):
    """The restore cannot start (destination, selection); Turkish message."""


@dataclass
class RestoredMonth:
    key: MonthKey
    firm: str
    source: str
    folder: Path | None = None
    files: list[tuple[str, int, str, bool]] = field(default_factory=list)  # name, size, sha256, matches backup
    missing: list[str] = field(default_factory=list)
    ok: bool = False


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


def _check_destination(out: Path, into_existing: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RestoreError(f"Hedef klasör bir dosya: {out}")
    if out.is_dir() and any(out.iterdir()) and not into_existing:
        raise RestoreError(f"Hedef klasör boş değil: {out}. Boş bir klasör seçin ya da var olan dosyalara "
                           f"dokunmadan eklemek için --into-existing kullanın.")


def restore(book: Book, keys: list[MonthKey] | None = None, *, out: Path, source: str | None = None,
            into_existing: bool = False, discover: list[MonthKey] | None = None,
            options: actions.Options | None = None,
            where: Callable[[MonthKey], bool] | None = None) -> actions.Summary:
    """Restore the given months (every listed month when None) into `out`.

    `discover`: months to ask the target about even if neither the disk nor the journal lists them
    (another PC's backups after a loss). `source`: a Hedef name to restore from instead of each firm's.
    """
    out = Path(out)
    _check_destination(out, into_existing)
    restored: list[RestoredMonth] = []

    def body(run: actions._Run) -> None:
        if source is not None and source not in run.targets:
            raise RestoreError(f"'{source}' hedefi Hedefler sayfasında tanımlı değil.")
        listed = set(run.sets)
        for st in run.journal.statuses():
            if actions.firm_for(st.key, run.firms) is not None:
                listed.add(st.key)
        chosen = sorted(k for k in (listed if keys is None else set(keys)) | set(discover or ())
                        if actions.firm_for(k, run.firms) is not None and (where is None or where(k)))
        out.mkdir(parents=True, exist_ok=True)
        optional = set(discover or ()) - listed  # asked about, not known to exist
        work = [(k, actions.firm_for(k, run.firms)) for k in chosen]
        _parallel_restore(run, work, out, source, restored, optional)
        _verify_and_report(run, out, restored)
        run.summary.extra = {"out": str(out), "report": str(out / "ibraz-raporu.html"),
                             "months": [_month_json(m) for m in restored]}

    return actions._run_action(book, ACTION_RESTORE, options, body)


def _parallel_restore(run, work, out, source, restored, optional) -> None:
    def one(item):
        key, firm = item
        month = restore_month(run, key, firm, out, source, optional=key in optional)
        if month is not None:
            with run._lock:
                restored.append(month)

    actions._parallel(run, work, one)
    restored.sort(key=lambda m: (m.key.vkn, m.key.branch, m.key.period))


def _firm_for_source(run, firm: actions.Firm, source: str | None) -> actions.Firm:
    if source is None or source == firm.target:
        return firm
    return actions.Firm(firm.name, firm.vkn, firm.branch, firm.folder, source, firm.user, firm.auto)


def restore_month(run, key: MonthKey, firm: actions.Firm, out: Path, source: str | None,
                  optional: bool = False) -> RestoredMonth | None:
    """One month from its target into `out`; None for an `optional` month the target does not hold."""
    firm = _firm_for_source(run, firm, source)
    identity = run.identity(firm)
    month = RestoredMonth(key, firm.name, actions._describe(identity))
    known = run.journal.status(key, identity)
    if run.not_tried(key, firm, known.status if known else S.NOT_SENT):
        month.missing.append("Hedef bu çalışmada kullanılamıyor (uyarılara bakın).")
        return None if optional else month
    attempt = None

    def done(message: str) -> RestoredMonth:
        # a restore never changes the month's backup status; it is logged after verification
        if attempt is not None:
            run.journal.finish(attempt, key, identity, known.status if known else S.NOT_SENT, message,
                               set_status=False)
        return month

    try:
        target = run.target_for(firm)
        receipt = target.query(key)
        if receipt.state != STORED:
            if optional:
                return None
            month.missing.append(f"Hedefte bu ay için saklanmış paket yok ({receipt.state}).")
            return done(month.missing[-1])
        attempt = run.journal.begin(key, identity, "restore", receipt.sha256 or None)
        # a folder per month: months are fetched in parallel and each removes its own
        package = run.workdir / "geri" / f"{key.vkn}-{key.branch}-{key.period}" / key.package_name
        target.fetch(key, package)
        try:
            _unpack(run, key, identity, package, receipt.sha256, known, month, out)
        finally:
            shutil.rmtree(package.parent, ignore_errors=True)
    except ConfigurationError as exc:
        run.give_up_on(firm, exc)
        month.missing.append(exc.message)
        return done(exc.message)
    except TargetError as exc:
        month.missing.append(f"Hedeften alınamadı: {exc.message}")
        return done(month.missing[-1])
    except OSError as exc:
        month.missing.append(f"Dosya yazılamadı: {exc.strerror or exc}")
        return done(month.missing[-1])
    month.ok = not month.missing
    return done(f"{len(month.files)} dosya {month.folder} klasörüne geri yüklendi." if month.ok
                else "; ".join(month.missing))


def _unpack(run, key, identity, package: Path, stored_sha: str, known, month: RestoredMonth, out: Path) -> None:
    digest = hashlib.sha256()
    with open(package, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    sha = digest.hexdigest()
    if stored_sha and sha != stored_sha:
        month.missing.append(f"İndirilen paket hedefin bildirdiğinden farklı (sha256 {sha[:12]}…).")
        return
    if known and known.package_sha256 and known.package_sha256 != sha:
        month.missing.append(f"Hedefteki paket bu bilgisayarın yedeklediği paket değil (günlükte "
                             f"{known.package_sha256[:12]}…, hedefte {sha[:12]}…).")
    recorded = {n: h for n, h in (run.journal.files_backed_up(key, identity, sha) or [])}
    try:
        zf = zipfile.ZipFile(package)
    except zipfile.BadZipFile:
        month.missing.append("Hedeften gelen paket bozuk (zip okunamadı).")
        return
    with zf:
        try:
            manifest = json.loads(zf.read(MANIFEST))
            expected = {f["name"]: (int(f["size"]), str(f["sha256"])) for f in manifest["files"]}
        except (KeyError, ValueError, TypeError):
            month.missing.append("Paketin içerik listesi (manifest.json) okunamadı.")
            return
        folder = month_folder(out, key)
        folder.mkdir(parents=True, exist_ok=True)
        month.folder = folder
        members = {i.filename: i for i in zf.infolist() if not i.is_dir() and i.filename != MANIFEST}
        for name, (size, file_sha) in sorted(expected.items()):
            if not _safe_name(name, key):
                month.missing.append(f"Paketteki dosya adı kabul edilmedi: {name!r}")
                continue
            info = members.pop(name, None)
            if info is None:
                month.missing.append(f"{name} pakette yok.")
                continue
            if recorded and recorded.get(name) not in (None, file_sha):
                month.missing.append(f"{name}: paketteki sha256 günlükte kayıtlı olandan farklı.")
            written = _write_member(zf, info, folder / name, size, file_sha, month)
            if written:
                month.files.append((name, size, file_sha, not recorded or recorded.get(name) == file_sha))
        for extra in sorted(members):
            month.missing.append(f"Pakette içerik listesinde olmayan dosya yok sayıldı: {extra!r}")


def _safe_name(name: str, key: MonthKey) -> bool:
    """Only a plain e-Defter file name of this month (no folders, no '..')."""
    if "/" in name or "\\" in name or name in (".", "..") or ":" in name:
        return False
    parsed = parse_name(name)
    return parsed is not None and parsed.vkn == key.vkn and parsed.period == key.period


def _write_member(zf, info, dest: Path, size: int, file_sha: str, month: RestoredMonth) -> bool:
    """Write one file atomically while hashing; never replace a file with other bytes."""
    if dest.exists():
        if dest.stat().st_size == size and _sha_file(dest) == file_sha:
            return True  # already there, same bytes (a rerun)
        month.missing.append(f"{dest.name} hedef klasörde başka içerikle zaten var; üzerine yazılmadı.")
        return False
    sha = hashlib.sha256()
    total = 0

    class Mismatch(Exception):
        pass

    try:
        with atomic_write(dest, prefix=".geri-", suffix=".part") as fh, zf.open(info) as src:
            while chunk := src.read(CHUNK):
                total += len(chunk)
                if total > size:
                    raise Mismatch
                sha.update(chunk)
                fh.write(chunk)
            if total != size or sha.hexdigest() != file_sha:
                raise Mismatch
    except Mismatch:
        month.missing.append(f"{dest.name}: paketteki bayt içerik listesindeki sha256 ile uyuşmuyor; yazılmadı.")
        return False
    except (zipfile.BadZipFile, EOFError) as exc:
        month.missing.append(f"{dest.name}: paketten okunamadı ({exc}).")
        return False
    return True


def _sha_file(path: Path) -> str:
    from edefter_helper.fsutil import sha256_file

    return sha256_file(path)


def _verify_and_report(run, out: Path, restored: list[RestoredMonth]) -> None:
    from edefter_helper import __version__, report
    from edefter_helper.engine.trust import TrustError, TrustList
    from edefter_helper.engine.verify import verify_roots

    done = [m for m in restored if m.folder is not None]
    sets = {}
    if done:
        try:
            trust = TrustList.default()
        except TrustError:
            trust = TrustList()
        result = verify_roots([m.folder for m in done], trust=trust)
        sets = {ms.key: ms for ms in result.sets}
    months = []
    for m in restored:
        ms = sets.get(m.key)
        copies = []
        for a in run.journal.attempts(m.key):
            if a["outcome"] == S.BACKED_UP and a["package_sha256"]:
                copies.append(report.CopyRecord(actions._describe(a["target"]), a["finished_at"] or "",
                                                a["receipt"] or "", a["package_sha256"]))
        months.append(report.ReportMonth(
            vkn=m.key.vkn, branch=m.key.branch, period=m.key.period, firm=m.firm, source=m.source,
            files=[report.ReportFile(n, s, h, str((m.folder or out).relative_to(out)), same)
                   for n, s, h, same in m.files],
            copies=copies,
            valid=ms.valid if ms is not None else None,
            problems=[_named(p) for p in ms.problems] if ms is not None else [],
            warnings=[_named(w) for w in ms.warnings] if ms is not None else [],
            signers=sorted(ms.signers) if ms is not None else [],
            countersigners=sorted(ms.countersigners) if ms is not None else [],
            missing=list(m.missing)))
        if ms is not None and not ms.valid:
            m.ok = False
            m.missing.append("Geri yüklenen dosyalar doğrulamadan geçmedi: "
                             + "; ".join(p.message for p in ms.problems[:3]))
        if m.ok:
            text = f"{len(m.files)} dosya geri yüklendi ve doğrulandı: {m.folder}"
        else:
            text = "; ".join(m.missing) or "Geri yüklenemedi."
        run.log(m.key, m.firm, RESTORED if m.ok else NOT_RESTORED, text)
    report.write_report(months, out, generated_at=datetime.now().astimezone(), tool_version=__version__)


def _named(problem) -> str:
    """An inspector needs to know which file a sentence is about."""
    return f"{Path(problem.path).name}: {problem.message}" if problem.path else problem.message


def _month_json(m: RestoredMonth) -> dict:
    return {"vkn": m.key.vkn, "branch": m.key.branch, "period": m.key.period, "firm": m.firm, "source": m.source,
            "ok": m.ok, "folder": str(m.folder) if m.folder else None,
            "files": [{"name": n, "size": s, "sha256": h, "matches_backup": same} for n, s, h, same in m.files],
            "missing": m.missing}
