"""The office's radar (Takvim): every firm's months at a glance — what is backed up, what GİB closed but
is not backed up, what is missing, what is due soon or late, whose desk it is on.

Every cell is derived, never typed: the scan (stages, missing pieces), the journal (statuses, local
damage, drills) and the deadline data (edefter_helper.deadlines, with the extensions typed on Takvim
Ayarları). The same cells are written to the Takvim sheet and printed by `edefter radar`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from edefter_helper import status as S
from edefter_helper.deadlines import berat_deadline
from edefter_helper.engine.model import MonthKey, MonthSet
from edefter_helper.engine.names import NO_BRANCH
from edefter_helper.settings import Firm

# the words a cell starts with, and their colour on the sheet (fill, font)
BACKED_UP = "Yedeklendi"
CLOSED = "GİB'de kapandı, yedek yok"
MISSING = "Eksik"
DUE = "Son gün"
LATE = "Süresi geçti"
LOCAL = "Yerel dosya değişti"
DAMAGED = "Hedefteki kopya bozuk"
NONE = "—"
COLORS = {
    BACKED_UP: ("C6EFCE", "006100"), CLOSED: ("FFEB9C", "9C5700"), MISSING: ("FFC7CE", "9C0006"),
    LATE: ("C00000", "FFFFFF"), LOCAL: ("FFC7CE", "9C0006"), DAMAGED: ("C00000", "FFFFFF"),
}
SOON_DAYS = 7


@dataclass
class Cell:
    firm: str
    vkn: str
    branch: str
    period: str
    owner: str
    state: str  # one of the words above
    text: str  # what the cell shows
    detail: str  # the side column / comment: due date with reason, missing pieces, copies
    due: date | None = None
    urgent: bool = False

    def as_json(self) -> dict:
        return {"firm": self.firm, "vkn": self.vkn, "branch": self.branch, "period": self.period,
                "owner": self.owner, "state": self.state, "text": self.text, "detail": self.detail,
                "due": self.due.isoformat() if self.due else None, "urgent": self.urgent}


@dataclass
class Radar:
    periods: list[str]
    rows: list[tuple[Firm, str, list[Cell]]] = field(default_factory=list)  # firm, branch, cells by period

    def cells(self):
        for _, _, cells in self.rows:
            yield from cells


def period_row_numbers(keys, firms: list[Firm], first_row: int = 2) -> dict[MonthKey, int]:
    """The row each month has on Dönemler once this run's write-back has written it: the months on
    disk and those the journal knows of for a listed firm, in sheetview.period_rows' order (the
    firm's name as Firmalar gives it, VKN, branch, period) — the target of a Takvim cell's link."""
    by_branch: dict[tuple[str, str], Firm] = {}
    by_vkn: dict[str, Firm] = {}
    for f in firms:  # settings.firm_for, as a lookup: a branch row first, else the firm's row without one
        if f.branch:
            by_branch.setdefault((f.vkn, f.branch), f)
        else:
            by_vkn.setdefault(f.vkn, f)
    named = []
    for k in set(keys):
        firm = by_branch.get((k.vkn, k.branch)) or by_vkn.get(k.vkn)
        if firm is not None:
            named.append(((firm.name.casefold(), k.vkn, k.branch, k.period), k))
    named.sort(key=lambda item: item[0])
    return {k: first_row + i for i, (_, k) in enumerate(named)}


def sheet_rows(radar: Radar, rows_at: dict[MonthKey, int]) -> list[list]:
    """The Takvim sheet, header first: Firma, VKN/TCKN, Şube, Sorumlu, one cell per month — a link to
    its Dönemler row (`rows_at`, from period_row_numbers) when it has one — and Dikkat, the detail of
    every month that needs attention."""
    from edefter_helper.workbook.calendar_format import Link
    from edefter_helper.workbook.layout import PERIODS

    rows = [["Firma", "VKN/TCKN", "Şube", "Sorumlu"] + [S.month_label(p) for p in radar.periods] + ["Dikkat"]]
    for firm, branch, cells in radar.rows:
        urgent = "; ".join(f"{S.month_label(c.period)}: {c.detail}" for c in cells if c.urgent)
        shown = [Link(c.text, PERIODS.name, at) if (at := rows_at.get(MonthKey(c.vkn, c.branch, c.period)))
                 else c.text for c in cells]
        rows.append([firm.name, firm.vkn, branch, firm.owner] + shown + [urgent])
    return rows


def window(today: date, months: int = 15) -> list[str]:
    """The last `months` closed-or-current periods, oldest first (the current month excluded: its
    ledgers are written after it ends)."""
    y, m = today.year, today.month
    out = []
    for _ in range(months):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        out.append(f"{y:04d}-{m:02d}")
    return out[::-1]


def build(firms: list[Firm], sets: dict[MonthKey, MonthSet], statuses: dict[MonthKey, tuple[str, str]],
          *, today: date, periods: list[str], overrides=()) -> Radar:
    """`statuses`: month -> (status word, message) for the firm's current target (sheetview.month_state)."""
    radar = Radar(periods)
    branches_of: dict[str, set[str]] = {}  # one pass over the months, not one per firm (36 000 × 300)
    for k in sets:
        branches_of.setdefault(k.vkn, set()).add(k.branch)
    first_of: dict[tuple[str, str], str] = {}  # a firm row's first month on disk or in the journal
    for k in (*sets, *statuses):
        if k.period < first_of.get((k.vkn, k.branch), "9999"):
            first_of[(k.vkn, k.branch)] = k.period
    rows: dict[tuple[str, str], Firm] = {}
    for firm in firms:
        branches = {firm.branch} if firm.branch else branches_of.get(firm.vkn) or {NO_BRANCH}
        for branch in sorted(branches):
            rows.setdefault((firm.vkn, branch), firm)
    for (vkn, branch), firm in sorted(rows.items(), key=lambda kv: (kv[1].name.casefold(), kv[0])):
        first = first_of.get((vkn, branch))
        cells = [_cell(firm, MonthKey(vkn, branch, p), sets.get(MonthKey(vkn, branch, p)),
                       statuses.get(MonthKey(vkn, branch, p)), first, today, overrides) for p in periods]
        radar.rows.append((firm, branch, cells))
    return radar


def _cell(firm: Firm, key: MonthKey, ms: MonthSet | None, status, first: str | None, today: date,
          overrides) -> Cell:
    def make(state, text, detail, due=None, urgent=False):
        return Cell(firm.name, key.vkn, key.branch, key.period, firm.owner, state, text, detail, due, urgent)

    word, message = status or ("", "")
    if word == S.BACKED_UP:
        return make(BACKED_UP, BACKED_UP, message)
    if word == S.CHANGED:
        return make(LOCAL, LOCAL, message, urgent=True)
    if word == S.DAMAGED:
        return make(DAMAGED, DAMAGED, message, urgent=True)
    if ms is not None and ms.stage == "gib-approved":
        detail = message if word == S.FAILED else "GİB onaylı beratlar indirildi; yedek hedefte yok."
        return make(CLOSED, CLOSED, detail, urgent=True)
    if first is None or key.period < first:
        return make(NONE, NONE, "Bu dönem için dosya yok ve firmanın ilk dönemi daha sonra.")
    deadline = berat_deadline(key.period, firm.taxpayer, firm.cadence, overrides)
    days = (deadline.due - today).days
    due_text = f"Son gün {deadline.due:%d.%m.%Y}" + (f" ({deadline.reason})" if deadline.reason else "")
    missing = _missing(ms)
    partly_approved = ms is not None and any(f.kind.startswith("GIB-") for f in ms.files)
    detail = due_text + (f". Eksik: {', '.join(missing)}." if missing else ".")
    if missing and partly_approved:  # GİB answered; a piece of its answer is not on disk
        return make(MISSING, f"{MISSING}: {', '.join(missing)}", detail, deadline.due, True)
    if days < 0:
        return make(LATE, LATE, f"{due_text} geçti; ay GİB'de kapanmamış görünüyor.", deadline.due, True)
    if missing and days <= SOON_DAYS:
        # half of GİB's answer downloaded, or the deadline close: someone must act now
        return make(MISSING, f"{MISSING}: {', '.join(missing)}", detail, deadline.due, True)
    if days <= SOON_DAYS:
        return make(DUE, f"{DUE} {days} gün sonra" if days else f"{DUE} bugün", detail, deadline.due, True)
    return make(DUE, f"{DUE} {deadline.due:%d.%m.%Y}", detail, deadline.due)


def _missing(ms: MonthSet | None) -> list[str]:
    """The pieces a month still lacks (GİB's approved berats most often), from the scan."""
    need = ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB"]
    if ms is None:
        return need
    have = {f.kind for f in ms.files}
    return [k for k in need if k not in have]


def due_soon(cells, today: date, within: int = SOON_DAYS) -> list:
    """The months whose GİB berat deadline is `within` days away or less (today included) and that GİB
    has not closed — a cell still waiting ("Son gün …") or missing a piece ("Eksik: …") — as
    notify.DueSoon for the digest's per-Sorumlu list. `cells`: Cell objects or their as_json()."""
    from edefter_helper.notify import DueSoon

    out = []
    for c in cells:
        c = c.as_json() if isinstance(c, Cell) else c
        if c["state"] not in (DUE, MISSING) or not c["due"]:
            continue
        days = (date.fromisoformat(c["due"]) - today).days
        if 0 <= days <= within:
            out.append(DueSoon(c["owner"], c["firm"], c["vkn"], c["branch"], c["period"], c["due"], days,
                               c["detail"]))
    return out


def due_soon_for(book, journal=None, *, today: date | None = None, within: int = SOON_DAYS,
                 lock_wait: float = 5.0) -> list:
    """due_soon over a radar run on `book` used as a settings source only (nothing is written to it;
    the background agent passes its read-only SettingsBook): the scan, the journal, the deadline data
    with the Takvim Ayarları extensions. Raises what the run raises (actions.RunBusy: another run
    holds the journal)."""
    from edefter_helper import actions

    today = today or date.today()
    options = actions.Options(journal=journal, write_back=False, lock_wait=lock_wait)
    summary = actions.radar(book, options=options, today=today, months=15)
    return due_soon(summary.extra["cells"], today, within)
