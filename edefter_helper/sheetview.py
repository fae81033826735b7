"""The Dönemler sheet as a view of the journal and the files on disk: what each month's status is
for its firm's target right now, files changed since the backup and local damage included."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Callable

from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey, MonthSet
from edefter_helper.journal import Journal
from edefter_helper.localcheck import month_message
from edefter_helper.settings import Firm, _s, describe_target as _describe, firm_for, target_identity
from edefter_helper.workbook import layout as L


def changed_files(journal: Journal, key: MonthKey, identity: str, package_sha256: str,
                  ms: MonthSet | None, recorded: dict | None = None) -> list[str] | None:
    """Names of files whose bytes on disk differ from the package backed up (added or gone
    included); None when it cannot be told (nothing recorded, or the month not verified).
    `recorded`: journal.recorded_files(), when the caller looks at many months (one query, not N)."""
    if ms is None or not package_sha256 or not all(f.sha256 for f in ms.files):
        return None
    if recorded is not None:
        files = recorded.get((key, identity))
        backed = sorted((n, h) for n, _, h in files) if files is not None else None
    else:
        backed = journal.files_backed_up(key, identity, package_sha256)
    if backed is None:
        return None
    now = sorted((os.path.basename(f.location), f.sha256) for f in ms.files)
    return sorted({n for n, _ in set(now) ^ set(backed)})


def month_state(journal: Journal, key: MonthKey, identity: str, ms: MonthSet | None, st=None,
                recorded: dict | None = None):
    """(status, message, journal status) of a month for one target, files on disk considered."""
    st = st if st is not None else journal.status(key, identity)
    if st is None:
        return S.NOT_SENT, "", None
    if st.status in (S.BACKED_UP, S.ACCEPTED):
        changed = changed_files(journal, key, identity, st.package_sha256, ms, recorded)
        if changed:
            shown = ", ".join(changed[:4]) + (f" ve {len(changed) - 4} dosya daha" if len(changed) > 4 else "")
            return (S.CHANGED, f"Diskteki dosyalar yedeklenenden farklı ({shown}); yedek bu dosyaları içermiyor, "
                    f"ay yeniden gönderilmeli.", st)
    return st.status, st.message, st


# how the drill's messages for a damaged or missing target copy begin (drill._damaged): Son Doğrulama "Bozuk"
DAMAGE_PREFIXES = ("Hedefteki kopya bozuk", "Hedefteki kopya bulunamadı")

NO_LOCAL_RECORD = ("Bu bilgisayarın günlüğünde kaydı yok; durum çalışma kitabından korunuyor. Durum Sorgula "
                   "hedefe sorup doğrular.")


def period_rows(sets: dict[MonthKey, MonthSet], firms: list[Firm], journal: Journal,
                identity_of: Callable[[Firm], str], previous: list[dict] | None = None,
                local: dict[MonthKey, list] | None = None, *, targets: dict | None = None,
                copies: list[dict] | None = None, previous_copies: list[dict] | None = None,
                recorded: dict | None = None, kept: "KeptRows | None" = None) -> list[dict]:
    """The Dönemler sheet: every month on disk, and every month the journal knows of (a month whose
    files disappeared after a backup stays visible). A confirmed status the sheet shows but this
    computer's journal does not know (another PC, a fresh journal) is kept, never downgraded.

    Each of a firm's Hedefs is a copy with its own status; the month's row shows the worst of them
    (copies.month_row) and `copies`, when given, receives the Kopyalar rows (one per month × Hedef;
    `targets`: the Hedefler settings, for location, lock and WORM).

    `kept`: what the sheets' previous rows hold for this (KeptRows.of(previous, previous_copies)), when
    the caller has it (a grouped run gives one group's firms and month sets at a time). Only the firms'
    taxpayers' journal rows are read."""
    from edefter_helper import copies as C

    rows = {}
    known: dict[tuple, object] = {}
    by_key: dict[MonthKey, list] = {}
    vkns = {f.vkn for f in firms}  # the journal's other months have no row here
    drills = journal.last_drills(vkns)
    probes = journal.last_probes()
    if recorded is None:
        recorded = journal.recorded_files(vkns)  # every month's backed-up files in one query
    for st in journal.statuses(vkns):
        known[(st.key, st.target)] = st
        by_key.setdefault(st.key, []).append(st)
    if kept is None:
        kept = KeptRows.of(previous, previous_copies)
    previous = previous_copies = None  # the caller's lists go once compacted
    keys = set(sets) | {k for k in by_key if firm_for(k, firms) is not None}
    out_copies: dict[MonthKey, list[dict]] = {}
    for key in keys:
        firm = firm_for(key, firms)
        if firm is None:
            continue
        ms = sets.get(key)
        if ms is None:
            stage, validation = "Klasörde bulunamadı", ""
        else:
            stage = S.STAGE_TR.get(ms.stage, ms.stage)
            validation = L.VALID if ms.valid else (L.INCOMPLETE if not ms.complete else L.INVALID)
        parts = firm.per_target()
        identities = [identity_of(c) for c in parts]
        month_copies = []
        for c, identity in zip(parts, identities):
            st = known.get((key, identity))
            status, message, st = (month_state(journal, key, identity, ms, st, recorded) if st
                                   else (S.NOT_SENT, "", None))
            sha, reference, updated = (st.package_sha256, st.receipt, _stamp(st.updated_at)) if st else ("", "", None)
            if st is None:
                others = [o for o in by_key.get(key, []) if o.target not in identities]
                # a sheet row kept from another computer: Kopyalar's own row, or (one Hedef) Dönemler's
                old = kept.confirmed(key, c.target, len(parts) == 1)
                if others:
                    message = (f"Hedef değişti: bu ay yeni hedefte henüz yedeklenmedi ya da sorgulanmadı (önceki "
                               f"hedef {_describe(others[0].target)}: {others[0].status}).")
                elif old:
                    status, message = old[0], NO_LOCAL_RECORD
                    sha, reference, updated = old[1], old[2], old[3]
            if ms is not None and not ms.valid and status not in (S.BACKED_UP, S.CHANGED, S.DAMAGED):
                message = problems_sentence(ms)  # (a damaged target copy keeps the drill's reason)
            if local and local.get(key):
                if ms is not None and status in (S.BACKED_UP, S.ACCEPTED):
                    status = S.CHANGED
                # a damaged target copy keeps the drill's reason beside the files on disk
                message = (f"{message} {month_message(local[key])}" if status == S.DAMAGED and message
                           else month_message(local[key]))
            drilled = drills.get((key, identity))
            drill = ""
            if drilled:
                when, ok, why = drilled
                word = 'Tamam' if ok else 'Bozuk' if why.startswith(DAMAGE_PREFIXES) else 'Yapılamadı'
                drill = f"{when[:10]} {word}"
            cfg = (targets or {}).get(c.target)
            _, until = C.lock(cfg, key.period)
            worm, is_worm = C.worm_text(cfg, status, probes.get(identity)) if cfg is not None else ("", False)
            where = C.location(cfg)
            month_copies.append({
                "name": firm.name, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                "target": c.target or "(Hedef boş)", "status": status, "message": message, "sha256": sha,
                "reference": reference, "retain": until if until and status in C.HOLDS else None,
                "worm": worm, "location": C.LOCATION_TEXT[where] if cfg is not None else "", "drill": drill,
                "updated": updated, "_worm": is_worm, "_location": where, "_identity": identity})
        base = {"name": firm.name, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                "stage": stage, "validation": validation}
        row = rows[key] = C.month_row(base, month_copies, key.period)
        if len(parts) > 1 and local and local.get(key):
            row["message"] = month_message(local[key])  # the files on disk: one sentence, not one per copy
        elif len(parts) > 1 and ms is not None and not ms.valid and row["status"] not in (S.BACKED_UP, S.CHANGED):
            row["message"] = problems_sentence(ms)
        out_copies[key] = month_copies
    order = sorted(rows, key=lambda k: (rows[k]["name"].casefold(), k.vkn, k.branch, k.period))
    if copies is not None:
        copies.extend(c for k in order for c in out_copies[k])
    return [rows[k] for k in order]


def journal_rows(journal: Journal, firms: list[Firm], targets: dict, previous: list[dict],
                 previous_copies: list[dict]) -> tuple[list[dict], list[dict]]:
    """(Dönemler rows, Kopyalar rows) from the journal alone, without a folder scan: Durumu Yenile and
    `edefter status --workbook`."""
    copies: list[dict] = []
    rows = period_rows({}, firms, journal, lambda f: target_identity(targets.get(f.target), f), previous,
                       targets=targets, copies=copies, previous_copies=previous_copies)
    return rows, copies


def problems_sentence(ms: MonthSet) -> str:
    """A month's verification problems as one sentence (never ".;")."""
    return "; ".join(p.message.rstrip(".") for p in ms.problems) + "."


def _kept(row: dict) -> tuple | None:
    """(status, sha256, reference, updated) of a sheet row showing a confirmed copy, else None."""
    status, sha = row.get("status"), _s(row.get("sha256"))
    if status in (S.BACKED_UP, S.ACCEPTED) and sha:
        return status, sha, _s(row.get("reference")), row.get("updated")
    return None


class KeptRows:
    """What the Dönemler and Kopyalar rows written before hold for period_rows: a confirmed copy shown
    there that this computer's journal does not know (another PC, a fresh journal) is kept. Only those
    rows are held (an office's two sheets of 36 000 rows each held as dicts cost ~100 MB)."""

    def __init__(self):
        self.months: dict[tuple, tuple] = {}  # (vkn, branch, period) -> Dönemler's _kept
        self.copies: dict[tuple, tuple] = {}  # (vkn, branch, period, Hedef) -> Kopyalar's _kept
        self.blocked: set[tuple] = set()  # Kopyalar rows, not confirmed, of a month Dönemler shows confirmed

    @classmethod
    def of(cls, previous: list[dict] | None, previous_copies: list[dict] | None) -> "KeptRows":
        kept = cls()
        for r in previous or []:
            k = _kept(r)
            if k is not None:
                kept.months[(_s(r.get("vkn")), _s(r.get("branch")), _s(r.get("period")))] = k
        for r in previous_copies or []:
            key = (_s(r.get("vkn")), _s(r.get("branch")), _s(r.get("period")), _s(r.get("target")))
            k = _kept(r)
            if k is not None:
                kept.copies[key] = k
            elif key[:3] in kept.months:
                kept.blocked.add(key)  # its own row speaks for the copy: Dönemler's is not consulted
        return kept

    def confirmed(self, key: MonthKey, target: str, only_copy: bool) -> tuple | None:
        """(status, sha256, reference, updated) of a confirmed copy the sheets show, else None: Kopyalar's
        own row, or, for a firm with one Hedef and no Kopyalar row, Dönemler's."""
        k4 = (key.vkn, key.branch, key.period, target)
        found = self.copies.get(k4)
        if found is None and only_copy and k4 not in self.blocked:
            found = self.months.get(k4[:3])
        return found


def _stamp(text: str | None):
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None
