"""Yedek Doğrulama: restore drills that prove the stored copies, a sample at a time.

For each target, a sample of its stored months (default 2 %, at least one; those drilled longest ago
first, so weekly drills cover every month within a year) plus every month stored in the last days is
fetched back into a scratch folder under the data directory, checked byte for byte against the
sha256 recorded at backup, unpacked with each file checked against the manifest, and verified by the
engine. A damaged or missing copy becomes "Hedefteki Kopya Bozuk" with the reason — never
Yedeklendi — until a later drill finds it whole. Nothing is written near the ledgers.
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
from edefter_helper.targets.base import STORED, ConfigurationError, IntegrityError, TargetError
from edefter_helper.workbook.book import Book

ACTION_DRILL = "Yedek Doğrulama"
DRILL_OK = "Doğrulandı"
YEAR = timedelta(days=365)


def choose(stored: list[tuple[MonthKey, str]], last: dict, *, sample_pct: float, recent_days: float,
           now: datetime, rng: random.Random) -> list[MonthKey]:
    """Which of a target's stored months (key, stored-at ISO time) to drill: every month stored in the
    last `recent_days`, every month due (never drilled, or not in a year), and then the least recently
    drilled until the sample is full."""
    if not stored:
        return []
    want = max(1, math.ceil(len(stored) * sample_pct / 100.0))
    recent_from = now - timedelta(days=recent_days)
    chosen: list[MonthKey] = []
    never = datetime.min.replace(tzinfo=timezone.utc)

    def when(key):
        seen = last.get(key)
        return _parse(seen) if seen else never

    order = sorted(stored, key=lambda item: (when(item[0]), rng.random()))
    for key, stored_at in stored:
        if _parse(stored_at) >= recent_from:
            chosen.append(key)
    for key, _ in order:
        if key in chosen:
            continue
        due = now - when(key) >= YEAR
        if due or len(chosen) < want:
            chosen.append(key)
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
        last = {(k, t): when for (k, t), (when, _, _) in run.journal.last_drills().items()}
        per_target: dict[str, list] = {}
        firms: dict[tuple[MonthKey, str], actions.Firm] = {}  # (month, identity) -> that Hedef's copy
        for st in run.journal.statuses():
            firm = actions.firm_for(st.key, run.firms)
            if firm is None or st.status not in (S.BACKED_UP, S.DAMAGED):
                continue
            copy = next((c for c in firm.per_target() if run.identity(c) == st.target), None)
            if copy is None or (where is not None and not where(st.key)):
                continue
            per_target.setdefault(st.target, []).append((st.key, st.updated_at))
            firms[(st.key, st.target)] = copy
        now = datetime.now(timezone.utc)
        work = []
        for identity, stored in sorted(per_target.items()):
            seen = {k: last.get((k, identity)) for k, _ in stored}
            for key in choose(stored, seen, sample_pct=sample_pct, recent_days=recent_days, now=now, rng=rng):
                work.append((key, firms[(key, identity)]))
        actions._parallel(run, work, lambda item: drill_month(run, *item))

    return actions._run_action(book, ACTION_DRILL, options, body)


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
        receipt = target.query(key)
        if receipt.state != STORED:
            return _damaged(run, key, firm, identity, known, "Hedefte kopya bulunamadı: hedef bu ay için saklanan "
                                                          "paket bildirmiyor.")
        package = scratch / key.package_name
        target.fetch(key, package)
        digest = hashlib.sha256()
        with open(package, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != known.package_sha256:
            return _damaged(run, key, firm, identity, known,
                            f"Hedefteki kopya bozuk: sha256 farklı (kayıtlı {known.package_sha256[:12]}…, "
                            f"hedefteki {digest.hexdigest()[:12]}…).")
        month = RestoredMonth(key, firm.name, "")
        _unpack(run, key, identity, package, known.package_sha256, known, month, scratch / "dosyalar")
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
            reason = "; ".join(p.message for ms in bad for p in ms.problems[:2]) or "dosya bulunamadı"
            return _damaged(run, key, firm, identity, known, f"Hedefteki kopya doğrulanamadı: {reason}")
    except IntegrityError as exc:
        return _damaged(run, key, firm, identity, known, exc.message)
    except ConfigurationError as exc:
        run.give_up_on(firm, exc)
        run.not_tried(key, firm, known.status)
        return known.status
    except TargetError as exc:  # inconclusive: the copy may be fine; say so, change nothing
        message = f"Yedek doğrulanamadı (hedefe ulaşılamadı): {exc.message}"
        run.journal.record_drill(key, identity, False, message)
        run.log(key, firm.name, known.status, message, target=_t(firm))
        return known.status
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    message = f"Hedefteki kopya geri alındı, baytları ve imzaları doğrulandı ({len(month.files)} dosya)."
    run.journal.record_drill(key, identity, True, message)
    if known.status == S.DAMAGED:  # a copy found whole again (repaired on the target)
        run.journal.record(key, identity, "drill", S.BACKED_UP, message, known.package_sha256)
    run.log(key, firm.name, DRILL_OK, message, target=_t(firm))
    return S.BACKED_UP


def _damaged(run, key, firm, identity, known, message: str) -> str:
    run.journal.record_drill(key, identity, False, message)
    run.journal.record(key, identity, "drill", S.DAMAGED, message, known.package_sha256)
    run.log(key, firm.name, S.DAMAGED, message, target=_t(firm))
    return S.DAMAGED
