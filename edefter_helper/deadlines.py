"""Berat upload deadlines at GİB: rules as data, weekend/holiday shifting, GİB's ad hoc extensions.

The rules live in ``edefter_helper/data/berat_deadlines.json`` (versioned, every rule with its source and
the source's date); this module only reads, validates and applies them. What the data file encodes comes
from ``shared/domain/regulation.md`` ("Deadlines (berat upload to GİB)": two independent 2026 secondary
sources, no GİB text read):

- aylık: the 10th (gerçek kişi, gelir vergisi) / 14th (tüzel kişi, kurumlar vergisi) of the 4th month
  after the month — January 2026: 10.05.2026 / 14.05.2026;
- 3 aylık: the same days of the 3rd month after the quarter, counted from the quarter's last month
  (Ocak–Mart → 10/14 Haziran);
- December (aylık) and Ekim–Aralık (3 aylık): "the month of the annual return", given as April 10 (gerçek)
  / May 14 (tüzel) of the following year;
- a nominal date on a Saturday, a Sunday or a public holiday (religious ones included, from the
  ``holidays`` package's Türkiye calendar, never a typed list) moves to the next working day;
- GİB's ad hoc extensions ("süre uzatımı") are :class:`Override` rows: those shipped in the data file plus
  those the caller passes (the workbook's ``Takvim Ayarları`` sheet).

Half-day eves (arife, 28 Ekim — holidays from 13:00 only) count as working days: the data file's
``shifting.half_day_eves`` is ``"working_day"``. The sources name only weekends and public holidays; the
eve's morning is a working day and the upload is electronic; and it is the cautious reading (an office
told the earlier day loses nothing, one told a day too late may miss the deadline). ``"holiday"`` in the
data file shifts over eves instead.

Extensions: an override applies when its taxpayer kinds and period choices include the firm's and its
period range holds the month (for 3 aylık: any month of the quarter). Its date is shifted like any other
(a typed Saturday becomes Monday). An extension never shortens a deadline: an override earlier than the
rule's (shifted) due date is ignored; of several that apply, the latest date wins. ``Deadline.nominal`` is
always the rule's date before shifting; ``rule`` the rule that gave it.

Left open by the sources (also in the data file's ``open_questions``):

- from which period the current rules apply, and until when the older "end of the 3rd month" rule did
  (recorded under ``superseded``, never applied): every period gets today's rules;
- special accounting periods (özel hesap dönemi): only "December" is named; another year-end month gets the
  ordinary monthly rule;
- the "11 May 2026" extension regulation.md mentions: its scope is not given (it may be the Sunday shift of
  January 2026, gerçek), so no override ships for it;
- half-day eves (the rule chosen above);
- administrative leave (idari izin) is not a public holiday and moves nothing; GİB's extensions for it are
  overrides.
"""

from __future__ import annotations

import calendar
import copy
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable

TAXPAYERS = ("gerçek", "tüzel")
CADENCES = ("aylık", "3 aylık")
WEEKDAYS_TR = ("Pazartesi", "Salı", "Çarşamba", "Perşembe", "Cuma", "Cumartesi", "Pazar")
HALF_DAY_POLICIES = ("working_day", "holiday")
DATA_FILE = "data/berat_deadlines.json"

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2})\s*(?:\.\.|–|—|\s-\s)\s*(\d{4}-\d{2})$")
_SOURCE_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class DeadlineDataError(ValueError):
    """The deadline data file (or a rules dict given instead) is not valid."""


# -- words ---------------------------------------------------------------------------------------

def _tr_lower(text: str) -> str:
    """Lower case the Turkish way (I → ı, İ → i), whitespace collapsed."""
    return " ".join(text.replace("I", "ı").replace("İ", "i").lower().split())


_TAXPAYER_WORDS = {"gerçek": "gerçek", "gerçek kişi": "gerçek", "tüzel": "tüzel", "tüzel kişi": "tüzel"}
_CADENCE_WORDS = {"aylık": "aylık", "3 aylık": "3 aylık"}


def normalize_taxpayer(value, default: str = "tüzel") -> str:
    """'Gerçek' / 'TÜZEL' / 'tüzel kişi' → 'gerçek' / 'tüzel'; None → default; anything else is refused."""
    if value is None:
        return default
    word = _TAXPAYER_WORDS.get(_tr_lower(value)) if isinstance(value, str) else None
    if word is None:
        raise ValueError(f"Geçersiz mükellef türü: {value!r} (Gerçek ya da Tüzel olmalı).")
    return word


def normalize_cadence(value, default: str = "aylık") -> str:
    """'Aylık' / '3 AYLIK' → 'aylık' / '3 aylık'; None → default; anything else is refused."""
    if value is None:
        return default
    word = _CADENCE_WORDS.get(_tr_lower(value)) if isinstance(value, str) else None
    if word is None:
        raise ValueError(f"Geçersiz berat dönemi: {value!r} (Aylık ya da 3 Aylık olmalı).")
    return word


def _period(value) -> tuple[int, int]:
    """'2026-01' → (2026, 1); a date or datetime (an Excel cell) gives its month."""
    if isinstance(value, (date, datetime)):
        return value.year, value.month
    m = _PERIOD.match(value.strip()) if isinstance(value, str) else None
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        raise ValueError(f"Geçersiz dönem: {value!r} (YYYY-AA biçiminde olmalı, ör. 2026-01).")
    return int(m.group(1)), int(m.group(2))


def _fmt(d: date) -> str:
    return f"{d:%d.%m.%Y}"


def _as_date(value, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                pass
    raise ValueError(f"Geçersiz {what}: {value!r} (GG.AA.YYYY ya da YYYY-AA-GG olmalı, ör. 18.05.2026).")


def _words(values, normalize, every: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A cell ('Gerçek, Tüzel', 'Hepsi', '') or an iterable → the canonical words, in canonical order."""
    if values is None:
        return every
    if isinstance(values, str):
        text = _tr_lower(values)
        if text in ("", "hepsi", "tümü", "tamamı", "her ikisi"):
            return every
        parts = [p for p in re.split(r"\s*[,;/]\s*|\s+ve\s+", text) if p]
    else:
        parts = list(values)
        if not parts:
            raise ValueError(f"{what} boş olamaz.")
    found = {normalize(p) for p in parts}
    return tuple(w for w in every if w in found)


# -- extensions ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Override:
    """One GİB extension (süre uzatımı): the months it covers, for whom, the new date, where it was said.

    Built from a ``Takvim Ayarları`` row as typed: ``periods`` '2026-01' or '2026-01..2026-03' (also
    '2026-01 - 2026-03', an Excel date gives its month); ``taxpayers`` 'Gerçek', 'Tüzel', 'Gerçek, Tüzel',
    'Hepsi' or empty (= both), or an iterable; ``due`` a date, datetime, 'GG.AA.YYYY' or 'YYYY-AA-GG';
    ``cadences`` like taxpayers ('Aylık', '3 Aylık', empty = both). Normalized on construction; a bad
    value raises ValueError with a Turkish message."""

    periods: str
    taxpayers: tuple[str, ...] | str | None
    due: date
    source: str = ""
    cadences: tuple[str, ...] | str | None = field(default=CADENCES)

    def __post_init__(self):
        raw = self.periods
        if isinstance(raw, (date, datetime)):
            start = end = _period(raw)
        elif isinstance(raw, str):
            text = raw.strip()
            m = _RANGE.match(text)
            start, end = (_period(m.group(1)), _period(m.group(2))) if m else (_period(text),) * 2
        else:
            raise ValueError(f"Geçersiz dönem: {raw!r} (YYYY-AA ya da YYYY-AA..YYYY-AA olmalı).")
        if start > end:
            raise ValueError(f"Dönem aralığı ters: {raw!r} (önce başlangıç, sonra bitiş dönemi).")
        text = f"{start[0]:04d}-{start[1]:02d}"
        if end != start:
            text += f"..{end[0]:04d}-{end[1]:02d}"
        object.__setattr__(self, "periods", text)
        object.__setattr__(self, "taxpayers", _words(self.taxpayers, normalize_taxpayer, TAXPAYERS, "Mükellef türü"))
        object.__setattr__(self, "cadences", _words(self.cadences, normalize_cadence, CADENCES, "Berat dönemi"))
        object.__setattr__(self, "due", _as_date(self.due, "uzatma tarihi"))
        object.__setattr__(self, "source", str(self.source or "").strip())

    @property
    def start(self) -> tuple[int, int]:
        return _period(self.periods.split("..")[0])

    @property
    def end(self) -> tuple[int, int]:
        return _period(self.periods.split("..")[-1])

    def covers(self, months: Iterable[tuple[int, int]], taxpayer: str, cadence: str) -> bool:
        return (taxpayer in self.taxpayers and cadence in self.cadences
                and any(self.start <= m <= self.end for m in months))

    @classmethod
    def from_dict(cls, row: dict) -> "Override":
        """A data-file row: periods, taxpayers, cadences, due (YYYY-MM-DD), source[, source_date]."""
        source = str(row.get("source") or "")
        if row.get("source_date"):
            source = f"{source}, {row['source_date']}" if source else str(row["source_date"])
        return cls(row.get("periods"), row.get("taxpayers"), row.get("due"), source, row.get("cadences"))


# -- the result ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deadline:
    due: date          # after shifting (and after an extension)
    nominal: date      # the rule's date before shifting
    reason: str        # Turkish: "Pazar nedeniyle 11.05.2026", "GİB süre uzatımı (…)", "" when none
    rule: str          # rule id from the data file


# -- the data file ---------------------------------------------------------------------------------

def _bad(msg: str):
    raise DeadlineDataError(f"Berat süresi veri dosyası hatalı: {msg}")


def _check_due(due, where: str) -> None:
    if not isinstance(due, dict):
        _bad(f"{where}: 'due' bir nesne olmalı.")
    day = due.get("day")
    if not (day == "last" or (isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 28)):
        _bad(f"{where}: 'due.day' 1–28 arası bir sayı ya da \"last\" olmalı.")
    kind = due.get("kind")
    if kind == "months_after":
        n = due.get("months")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 24:
            _bad(f"{where}: 'due.months' 1–24 arası bir sayı olmalı.")
    elif kind == "date_in_year":
        y, mo = due.get("years_after"), due.get("month")
        if not isinstance(y, int) or isinstance(y, bool) or not 0 <= y <= 2:
            _bad(f"{where}: 'due.years_after' 0–2 arası bir sayı olmalı.")
        if not isinstance(mo, int) or isinstance(mo, bool) or not 1 <= mo <= 12:
            _bad(f"{where}: 'due.month' 1–12 arası bir sayı olmalı.")
    else:
        _bad(f"{where}: 'due.kind' months_after ya da date_in_year olmalı.")


def _check_source(item: dict, where: str, source_ids: set[str]) -> None:
    if item.get("source") not in source_ids:
        _bad(f"{where}: 'source' kaynaklardan birini göstermeli ({', '.join(sorted(source_ids))}).")
    if not isinstance(item.get("source_date"), str) or not _SOURCE_DATE.match(item["source_date"]):
        _bad(f"{where}: 'source_date' YYYY, YYYY-AA ya da YYYY-AA-GG olmalı.")


def _effective(value, where: str, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return _period(value)
    except ValueError:
        pass
    _bad(f"{where}: '{name}' YYYY-AA ya da null olmalı.")


def validate_rules(data) -> dict:
    """Check a rules dict (the data file's shape); return it. Raises DeadlineDataError (Turkish)."""
    if not isinstance(data, dict):
        _bad("kök bir nesne olmalı.")
    if data.get("format") != 1:
        _bad("'format' 1 olmalı.")
    if not isinstance(data.get("version"), str) or not data["version"].strip():
        _bad("'version' eksik.")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        _bad("'sources' boş olamaz.")
    source_ids = set()
    for i, s in enumerate(sources):
        if not isinstance(s, dict) or not all(isinstance(s.get(k), str) and s[k].strip() for k in ("id", "name", "date")):
            _bad(f"kaynak {i + 1}: 'id', 'name' ve 'date' gerekli.")
        if s["id"] in source_ids:
            _bad(f"kaynak kimliği iki kez var: {s['id']}")
        source_ids.add(s["id"])
    shifting = data.get("shifting")
    if not isinstance(shifting, dict):
        _bad("'shifting' eksik.")
    weekend = shifting.get("weekend")
    if not isinstance(weekend, list) or any(w not in WEEKDAYS_TR for w in weekend) or len(set(weekend)) > 2:
        _bad(f"'shifting.weekend' gün adlarından en çok ikisi olmalı ({', '.join(WEEKDAYS_TR)}).")
    if shifting.get("half_day_eves") not in HALF_DAY_POLICIES:
        _bad("'shifting.half_day_eves' working_day ya da holiday olmalı.")
    cal = shifting.get("public_holidays")
    if not isinstance(cal, dict) or cal.get("library") != "holidays" or cal.get("country") != "TR":
        _bad("'shifting.public_holidays' holidays kütüphanesinin TR takvimi olmalı.")

    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        _bad("'rules' boş olamaz.")
    ids: set[str] = set()
    spans: dict[tuple[str, str, int], list[tuple[str, tuple | None, tuple | None]]] = {}
    for i, r in enumerate(rules):
        where = f"kural {i + 1}"
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not _RULE_ID.match(r["id"]):
            _bad(f"{where}: 'id' küçük harf, rakam ve tireden oluşmalı.")
        where = f"kural {r['id']}"
        if r["id"] in ids:
            _bad(f"kural kimliği iki kez var: {r['id']}")
        ids.add(r["id"])
        if r.get("taxpayer") not in TAXPAYERS:
            _bad(f"{where}: 'taxpayer' gerçek ya da tüzel olmalı.")
        if r.get("cadence") not in CADENCES:
            _bad(f"{where}: 'cadence' aylık ya da 3 aylık olmalı.")
        months = r.get("period_end_months")
        allowed = range(1, 13) if r["cadence"] == "aylık" else (3, 6, 9, 12)
        if (not isinstance(months, list) or not months or len(set(months)) != len(months)
                or any(not isinstance(m, int) or isinstance(m, bool) or m not in allowed for m in months)):
            _bad(f"{where}: 'period_end_months' {'1–12' if r['cadence'] == 'aylık' else '3, 6, 9, 12'} "
                 "arası, tekrarsız ay numaraları olmalı.")
        _check_due(r.get("due"), where)
        if not isinstance(r.get("text"), str) or not r["text"].strip():
            _bad(f"{where}: 'text' (kuralın Türkçe anlatımı) eksik.")
        _check_source(r, where, source_ids)
        start = _effective(r.get("effective_from"), where, "effective_from")
        end = _effective(r.get("effective_to"), where, "effective_to")
        if start and end and start > end:
            _bad(f"{where}: 'effective_from' 'effective_to'dan sonra olamaz.")
        for m in months:
            key = (r["taxpayer"], r["cadence"], m)
            for other, o_start, o_end in spans.get(key, []):
                if (start is None or o_end is None or start <= o_end) and (end is None or o_start is None or o_start <= end):
                    _bad(f"{where} ile {other} aynı dönemlere uygulanıyor ({r['taxpayer']}, {r['cadence']}, ay {m}).")
            spans.setdefault(key, []).append((r["id"], start, end))

    for i, r in enumerate(data.get("superseded") or []):
        where = f"eski kural {i + 1}"
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r.get("text"):
            _bad(f"{where}: 'id' ve 'text' gerekli.")
        _check_due(r.get("due"), where)
        _check_source(r, where, source_ids)

    overrides = data.get("overrides", [])
    if not isinstance(overrides, list):
        _bad("'overrides' bir liste olmalı.")
    for i, row in enumerate(overrides):
        if not isinstance(row, dict) or not isinstance(row.get("due"), str) or not row.get("source"):
            _bad(f"uzatma {i + 1}: 'periods', 'due' (YYYY-AA-GG) ve 'source' gerekli.")
        try:
            Override.from_dict(row)
        except ValueError as e:
            _bad(f"uzatma {i + 1}: {e}")
    return data


def _read(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        _bad(f"JSON okunamadı ({e.msg}, satır {e.lineno}).")
    return validate_rules(data)


@lru_cache(maxsize=1)
def _load(path: None = None) -> dict:
    """The package's own data file, read and validated once."""
    return _read(resources.files("edefter_helper").joinpath(DATA_FILE).read_text(encoding="utf-8"))


def load_rules(path: str | Path | None = None) -> dict:
    """The data file (the package's own, or the file at ``path``, read anew), validated; a copy the caller
    may change and pass back as ``rules=``."""
    if path is None:
        return copy.deepcopy(_load())
    return _read(Path(path).read_text(encoding="utf-8"))


# -- the calendar ----------------------------------------------------------------------------------

_calendar_lock = threading.Lock()


@lru_cache(maxsize=256)
def _holidays_of(year: int, category: str) -> dict[date, tuple[str, ...]]:
    import holidays  # only when a deadline is asked for

    with _calendar_lock:
        cal = holidays.country_holidays("TR", years=year, language="tr", categories=(category,))
        return {d: tuple(n.strip() for n in cal.get_list(d)) for d in cal}


def _eve_name(name: str) -> str:
    return re.sub(r"\s*\(saat 13[.:]00'ten\)", " arifesi", name)


def _closed(d: date, weekend: frozenset[int], eves: bool) -> list[str]:
    """Why ``d`` is not a working day (['Pazar'], ['Kurban Bayramı'], …); [] when it is one."""
    names = _holidays_of(d.year, "public").get(d)
    if names:
        return list(dict.fromkeys(names))
    if d.weekday() in weekend:
        return [WEEKDAYS_TR[d.weekday()]]
    if eves:
        return list(dict.fromkeys(_eve_name(n) for n in _holidays_of(d.year, "half_day").get(d, ())))
    return []


def _causes_text(causes: list[str]) -> str:
    """['Cumartesi', 'Pazar'] → 'hafta sonu'; ['Kurban Bayramı', 'Pazar'] → 'Kurban Bayramı ve Pazar'."""
    merged: list[str] = []
    for c in causes:
        if merged and merged[-1] == c:
            continue
        if c == "Pazar" and merged and merged[-1] == "Cumartesi":
            merged[-1] = "hafta sonu"
            continue
        merged.append(c)
    merged = list(dict.fromkeys(merged))
    return merged[0] if len(merged) == 1 else ", ".join(merged[:-1]) + " ve " + merged[-1]


def _shift(d: date, rules: dict) -> tuple[date, str]:
    """The first working day from ``d`` on, and the Turkish cause phrase ('' when ``d`` is one)."""
    shifting = rules["shifting"]
    weekend = frozenset(WEEKDAYS_TR.index(w) for w in shifting["weekend"])
    eves = shifting["half_day_eves"] == "holiday"
    causes = []
    for _ in range(60):  # the longest run of closed days in Türkiye is far shorter
        closed = _closed(d, weekend, eves)
        if not closed:
            return d, (_causes_text(causes) if causes else "")
        causes.extend(closed)
        d += timedelta(days=1)
    raise DeadlineDataError("Berat süresi: 60 günde bir iş günü bulunamadı (hafta sonu ayarı hatalı olabilir).")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def is_working_day(d: date, rules: dict | None = None) -> bool:
    """True when ``d`` is neither a weekend day nor a public holiday (half-day eves as the data file says)."""
    rules = _load(None) if rules is None else rules
    return _shift(d, rules)[0] == d


def next_working_day(d: date, rules: dict | None = None) -> date:
    """``d`` itself when it is a working day, else the first one after it."""
    return _shift(d, _load(None) if rules is None else rules)[0]


# -- the deadline ----------------------------------------------------------------------------------

def _months(year: int, month: int, cadence: str) -> list[tuple[int, int]]:
    """The months one berat period covers: the month, or its quarter."""
    if cadence == "aylık":
        return [(year, month)]
    first = (month - 1) // 3 * 3 + 1
    return [(year, first), (year, first + 1), (year, first + 2)]


def _nominal(due: dict, year: int, month: int) -> date:
    if due["kind"] == "months_after":
        index = year * 12 + (month - 1) + due["months"]
        y, m = divmod(index, 12)
        m += 1
    else:
        y, m = year + due["years_after"], due["month"]
    day = calendar.monthrange(y, m)[1] if due["day"] == "last" else due["day"]
    return date(y, m, day)


def _rule_for(rules: dict, taxpayer: str, cadence: str, end: tuple[int, int]) -> dict:
    for r in rules["rules"]:
        if r["taxpayer"] != taxpayer or r["cadence"] != cadence or end[1] not in r["period_end_months"]:
            continue
        start_ok = r.get("effective_from") is None or _period(r["effective_from"]) <= end
        end_ok = r.get("effective_to") is None or end <= _period(r["effective_to"])
        if start_ok and end_ok:
            return r
    raise ValueError(f"{end[0]:04d}-{end[1]:02d} dönemi için berat süresi kuralı yok "
                     f"({taxpayer}, {cadence}); veri dosyası: {rules.get('version', '?')}.")


def berat_deadline(period: str, taxpayer: str = "tüzel", cadence: str = "aylık",
                   overrides: Iterable[Override] = (), *, rules: dict | None = None) -> Deadline:
    """The last day to upload the berat of ``period`` ('YYYY-AA') to GİB.

    ``taxpayer`` gerçek / tüzel, ``cadence`` aylık / 3 aylık (the workbook's 'Gerçek', 'Tüzel', 'Aylık',
    '3 Aylık' in any case; None = the default). For 3 aylık any month of the quarter gives the quarter's
    deadline. ``overrides``: extensions besides the data file's own. ``rules``: a rules dict instead of
    the package's data file (validated here). Bad input → ValueError with a Turkish message."""
    year, month = _period(period)
    taxpayer = normalize_taxpayer(taxpayer)
    cadence = normalize_cadence(cadence)
    rules = _load(None) if rules is None else validate_rules(rules)
    months = _months(year, month, cadence)
    rule = _rule_for(rules, taxpayer, cadence, months[-1])
    nominal = _nominal(rule["due"], *months[-1])
    due, causes = _shift(nominal, rules)
    reason = f"{_capital(causes)} nedeniyle {_fmt(due)}" if causes else ""

    extensions = [Override.from_dict(row) for row in rules.get("overrides", [])]
    for o in overrides or ():
        if not isinstance(o, Override):
            raise ValueError(f"Geçersiz süre uzatımı: {o!r} (Override olmalı).")
        extensions.append(o)
    best = None
    for o in extensions:
        if not o.covers(months, taxpayer, cadence):
            continue
        moved, o_causes = _shift(o.due, rules)
        if moved >= due and (best is None or moved > best[0]):
            best = (moved, o_causes, o)
    if best is not None:
        moved, o_causes, o = best
        reason = f"GİB süre uzatımı ({o.source})" if o.source else "GİB süre uzatımı"
        if o_causes:
            reason += f"; {o_causes} nedeniyle {_fmt(moved)}"
        due = moved
    return Deadline(due=due, nominal=nominal, reason=reason, rule=rule["id"])
