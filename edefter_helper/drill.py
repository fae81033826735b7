"""Yedek Doğrulama: restore drills that prove the stored copies, a sample at a time.

For each target, a sample of its stored months (default 2 %, at least one; never drilled first, then
those drilled longest ago, so weekly drills cover every month within a year), every month not proven
for a year, every month first stored in the last days and every copy found damaged before is fetched
back into a scratch folder under the data directory, checked byte for byte against the sha256
recorded at backup, unpacked with each file checked against the manifest, and verified by the engine.
A damaged or missing copy becomes "Hedefteki Kopya Bozuk" with the reason ("Hedefteki kopya bozuk:
sha256 farklı …", "Hedefteki kopya bulunamadı …") — never Yedeklendi — until a later drill finds it
whole. A target out of reach proves nothing either way: said, the status kept, and the month not
counted as drilled. Nothing is written near the ledgers.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
from datetime import datetime, timedelta, timezone
from typing import Callable

from edefter_helper import actions
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.actions import _t
from edefter_helper.restore import RestoredMonth, _unpack
from edefter_helper.targets.base import (ACCEPTED, REJECTED, STORED, ConfigurationError, IntegrityError,
                                         TargetError)
from edefter_helper.workbook.book import Book

ACTION_DRILL = "Yedek Doğrulama"
DRILL_OK = "Doğrulandı"
INCONCLUSIVE = "Yedek doğrulanamadı"  # how a drill that could not look at the copy begins its message
YEAR = timedelta(days=365)


def choose(stored: list[tuple[MonthKey, str]], last: dict, *, sample_pct: float, recent_days: float,
           now: datetime, rng: random.Random) -> list[MonthKey]:
    """Which of a target's stored months (key, stored-at ISO time) to drill.

    - every month stored in the last `recent_days`;
    - every month overdue: not proven whole for a year (its last drill, or — never drilled — its
      storing, more than a year ago);
    - the sample, `sample_pct` % of the stored months and at least one: the months never drilled
      first, then those drilled longest ago; ties are broken by `rng` (seeded: the same choice again).
    A store never drilled is spread over the weeks (2 % a week covers it within the year), not fetched
    whole in one drill."""
    if not stored:
        return []
    want = max(1, math.ceil(len(stored) * sample_pct / 100.0))
    recent_from = now - timedelta(days=recent_days)
    chosen: set[MonthKey] = set()

    def proven(key, stored_at) -> datetime:  # the last time the copy was known whole
        seen = last.get(key)
        return _parse(seen) if seen else _parse(stored_at)

    for key, stored_at in stored:  # stored lately, or overdue
        recent = recent_days > 0 and _parse(stored_at) >= recent_from
        if recent or now - proven(key, stored_at) >= YEAR:
            chosen.add(key)
    order = sorted(stored, key=lambda item: (bool(last.get(item[0])), proven(*item), rng.random()))
    # recent months come on top of the sample; overdue ones are the least recently proven, and fill it
    sample = [key for key, at in order if key not in chosen or now - proven(key, at) >= YEAR][:want]
    chosen.update(sample)
    return sorted(chosen)


def _parse(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def drill(book: Book, *, sample_pct: float = 2.0, recent_days: float = 7.0, options: actions.Options | None = None,
          rng: random.Random | None = None, where: Callable[[MonthKey], bool] | None = None) -> actions.Summary:
    rng = rng or random.Random()

    def body(run: actions._Run) -> None:
        last = _last_conclusive(run.journal)
        stored_at = _stored_at(run.journal)
        damaged: list[tuple[MonthKey, str]] = []
        per_target: dict[str, list] = {}
        firms: dict[tuple[MonthKey, str], actions.Firm] = {}  # (month, identity) -> that Hedef's copy
        for st in run.journal.statuses():
            firm = actions.firm_for(st.key, run.firms)
            if firm is None or st.status not in (S.BACKED_UP, S.DAMAGED):
                continue
            copy = next((c for c in firm.per_target() if run.identity(c) == st.target), None)
            if copy is None or (where is not None and not where(st.key)):
                continue
            per_target.setdefault(st.target, []).append((st.key, stored_at.get((st.key, st.target), st.updated_at)))
            firms[(st.key, st.target)] = copy
            if st.status == S.DAMAGED:
                damaged.append((st.key, st.target))
        now = datetime.now(timezone.utc)
        work = []
        for identity, stored in sorted(per_target.items()):
            seen = {k: last.get((k, identity)) for k, _ in stored}
            chosen = set(choose(stored, seen, sample_pct=sample_pct, recent_days=recent_days, now=now, rng=rng))
            # a copy found damaged is looked at again every drill: a repair on the target is noticed
            chosen.update(k for k, t in damaged if t == identity)
            for key in sorted(chosen):
                work.append((key, firms[(key, identity)]))
        actions._parallel(run, work, lambda item: drill_month(run, *item))

    return actions._run_action(book, ACTION_DRILL, options, body)


def _last_conclusive(journal) -> dict[tuple[MonthKey, str], str]:
    """(month, target) -> when a drill last looked at the copy: found it whole or damaged. A drill that
    could not reach the target proved nothing and does not send the month to the back of the queue."""
    return journal.last_conclusive_drills(INCONCLUSIVE)


def _stored_at(journal) -> dict[tuple[MonthKey, str], str]:
    """(month, target) -> when the package the month's status names was first confirmed stored.

    Not the status row's updated_at: every Durum Sorgula and Toplu Yedekle writes that again, and a
    weekly question would make every month look "stored in the last 7 days" — each drill a full one."""
    return journal.first_stored()


def drill_month(run, key: MonthKey, firm: actions.Firm) -> str:
    identity = run.identity(firm)
    known = run.journal.status(key, identity)
    if run.not_tried(key, firm, known.status):
        return known.status
    # a folder per copy: the copies of one month (one per Hedef) are drilled in parallel
    copy = hashlib.sha256(identity.encode()).hexdigest()[:8]
    scratch = run.workdir / "dogrulama" / f"{key.vkn}-{key.branch}-{key.period}-{copy}"
    try:
        target = run.target_for(firm)
        package = scratch / key.package_name
        receipt = target.fetch_stored(key, package)  # one download where asking reads the package back
        if receipt.state == ACCEPTED:  # the target holds it and is checking it again: no verdict yet
            return _inconclusive(run, key, firm, identity, known, "hedef paketi yeniden denetliyor; saklandığını "
                                                                  "henüz bildirmedi")
        if receipt.state == REJECTED:
            return _damaged(run, key, firm, identity, known, "Hedefteki kopya bozuk: hedef saklanan paketi geçersiz "
                            f"buldu ({(receipt.message or 'neden belirtilmedi').rstrip('.')}).")
        if receipt.state != STORED:
            return _damaged(run, key, firm, identity, known, "Hedefteki kopya bulunamadı: hedef bu ay için saklanan "
                                                          "paket bildirmiyor (silinmiş ya da kaybolmuş olabilir).")
        # what this computer backed up; a status without it (never expected) trusts the target's word
        recorded = known.package_sha256 or receipt.sha256 or ""
        month = RestoredMonth(key, firm.name, "")
        # _unpack hashes the package once (month.package_sha256) and unpacks nothing when it is not `recorded`
        _unpack(run, key, identity, package, recorded, known, month, scratch / "dosyalar")
        if recorded and month.package_sha256 != recorded:
            return _damaged(run, key, firm, identity, known,
                            f"Hedefteki kopya bozuk: sha256 farklı (kayıtlı {recorded[:12]}…, "
                            f"hedefteki {month.package_sha256[:12]}…, {package.stat().st_size} bayt).")
        if month.missing:
            return _damaged(run, key, firm, identity, known, "Hedefteki kopya bozuk: "
                            + "; ".join(m.rstrip(".") for m in month.missing[:3]) + ".")
        from edefter_helper.engine.trust import TrustError, TrustList
        from edefter_helper.engine.verify import verify_roots

        try:
            trust = TrustList.default()
        except TrustError:
            trust = TrustList()
        sets = verify_roots([month.folder], trust=trust).sets
        bad = [ms for ms in sets if not ms.valid]
        if not sets or bad:
            reason = "; ".join(p.message for ms in bad for p in ms.problems[:2]) or "pakette defter dosyası bulunamadı"
            if known.package_sha256 and month.package_sha256 == known.package_sha256:
                # byte for byte what was verified and backed up: the copy is whole; what changed is the
                # check (a GİB certificate list, a stricter release) — said, never called a damaged copy
                return _unverified(run, key, firm, identity, known, reason)
            return _damaged(run, key, firm, identity, known,
                            f"Hedefteki kopya bozuk: geri alınan dosyalar doğrulanamadı: {reason}")
    except IntegrityError as exc:
        # the target itself saw the bytes differ from what it recorded (http, s3)
        why = exc.message.removeprefix("Hedefteki kopya bozuk:").strip()
        return _damaged(run, key, firm, identity, known, f"Hedefteki kopya bozuk: sha256 farklı ({why.rstrip('.')}).")
    except ConfigurationError as exc:
        run.give_up_on(firm, exc)
        run.not_tried(key, firm, known.status)
        return known.status
    except TargetError as exc:  # inconclusive: the copy may be fine; say so, change nothing
        return _inconclusive(run, key, firm, identity, known, f"hedefe ulaşılamadı: {exc.message}")
    except OSError as exc:  # this computer's scratch folder (disk full, no permission): not the copy's fault
        return _inconclusive(run, key, firm, identity, known,
                             f"geçici klasöre yazılamadı ({exc.strerror or exc}): {run.workdir}")
    except Exception as exc:  # noqa: BLE001 - one month's surprise must not stop the others' drills
        return _inconclusive(run, key, firm, identity, known, f"beklenmeyen hata ({type(exc).__name__}: {exc})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    message = f"Hedefteki kopya geri alındı, baytları ve imzaları doğrulandı ({len(month.files)} dosya)."
    run.journal.record_drill(key, identity, True, message)
    if known.status == S.DAMAGED:  # a copy found whole again (repaired on the target)
        run.journal.record(key, identity, "drill", S.BACKED_UP, message, recorded)
    run.log(key, firm.name, DRILL_OK, message, target=_t(firm))
    return S.BACKED_UP


def _unverified(run, key, firm, identity, known, reason: str) -> str:
    """The copy is the very bytes backed up, but today's verification finds a problem in them."""
    message = (f"Hedefteki kopya yedeklenen baytların aynısı (sha256 tutuyor), ancak bugünkü doğrulama sorun "
               f"buldu: {reason.rstrip('.')}. Kopya hedefte değişmemiş; sorun yedeklenen dosyaların kendisinde ya da "
               f"doğrulama kurallarındaki (GİB sertifika listesi, yeni sürüm) bir değişiklikte.")
    run.journal.record_drill(key, identity, False, message)
    run.log(key, firm.name, known.status, message, target=_t(firm))
    return known.status


def _inconclusive(run, key, firm, identity, known, why: str) -> str:
    """The drill could not look at the copy: said in Günlük and Son Doğrulama, the status unchanged."""
    message = f"{INCONCLUSIVE} ({why})"
    # Son Doğrulama says Bozuk only for sheetview.DAMAGE_PREFIXES: a target's own "klasör bulunamadı" is no damage
    run.journal.record_drill(key, identity, False, message)
    run.log(key, firm.name, known.status, message, target=_t(firm))
    return known.status


def _damaged(run, key, firm, identity, known, message: str) -> str:
    run.journal.record_drill(key, identity, False, message)
    run.journal.record(key, identity, "drill", S.DAMAGED, message, known.package_sha256)
    run.log(key, firm.name, S.DAMAGED, message, target=_t(firm))
    return S.DAMAGED
