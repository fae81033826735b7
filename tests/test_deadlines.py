"""Berat upload deadlines: golden cases worked out by hand from the data file's rule texts.

The rules (edefter_helper/data/berat_deadlines.json, from shared/domain/regulation.md):
  aylık   gerçek: the 10th of the 4th month after the month;  December: 10 April of the next year
  aylık   tüzel : the 14th of the 4th month after the month;  December: 14 May of the next year
  3 aylık gerçek: the 10th of the 3rd month after the quarter's last month; Ekim–Aralık: 10 April next year
  3 aylık tüzel : the 14th of the 3rd month after the quarter's last month; Ekim–Aralık: 14 May next year
  a Saturday, Sunday or public holiday moves to the next working day; half-day eves are working days.

Weekdays below are from the printed calendar; holidays are Türkiye's official ones:
  Ramazan Bayramı 2027: 09–11.03.2027 (Tue–Thu); Kurban Bayramı 2026: 27–30.05.2026 (Wed–Sat), its eve
  26.05.2026 (Tue, from 13:00); 1 Mayıs 2026 is a Friday; 29 Ekim 2026 a Thursday (eve 28.10, Wednesday).
Each expected date was worked out by hand, not produced by running the code.
"""

from __future__ import annotations

import copy
import tomllib
from datetime import date, datetime
from fnmatch import fnmatch
from pathlib import Path

import pytest

from edefter_helper import deadlines as dl
from edefter_helper.deadlines import Deadline, DeadlineDataError, Override, berat_deadline, load_rules

D = date

# (period, taxpayer, cadence, nominal, due, reason, rule)
GOLDEN = [
    # -- aylık, gerçek: 10th of the 4th month after ---------------------------------------------------
    # Sep 2025 + 4 = Jan 2026; 10.01.2026 is a Saturday, 11.01 Sunday -> Monday 12.01.2026
    ("2025-09", "gerçek", "aylık", D(2026, 1, 10), D(2026, 1, 12), "Hafta sonu nedeniyle 12.01.2026", "aylik-gercek"),
    ("2025-10", "gerçek", "aylık", D(2026, 2, 10), D(2026, 2, 10), "", "aylik-gercek"),          # Tuesday
    ("2025-11", "gerçek", "aylık", D(2026, 3, 10), D(2026, 3, 10), "", "aylik-gercek"),          # Tuesday
    # December: 10 April of the next year -> 10.04.2026, a Friday
    ("2025-12", "gerçek", "aylık", D(2026, 4, 10), D(2026, 4, 10), "", "aylik-gercek-aralik"),
    # the 2026 sources: January 2026 -> 10.05.2026 is a Sunday -> Monday 11.05.2026
    ("2026-01", "gerçek", "aylık", D(2026, 5, 10), D(2026, 5, 11), "Pazar nedeniyle 11.05.2026", "aylik-gercek"),
    ("2026-02", "gerçek", "aylık", D(2026, 6, 10), D(2026, 6, 10), "", "aylik-gercek"),          # Wednesday
    ("2026-03", "gerçek", "aylık", D(2026, 7, 10), D(2026, 7, 10), "", "aylik-gercek"),          # Friday
    ("2026-04", "gerçek", "aylık", D(2026, 8, 10), D(2026, 8, 10), "", "aylik-gercek"),          # Monday
    ("2026-05", "gerçek", "aylık", D(2026, 9, 10), D(2026, 9, 10), "", "aylik-gercek"),          # Thursday
    # Jun + 4 = Oct; 10.10.2026 Saturday -> Monday 12.10.2026
    ("2026-06", "gerçek", "aylık", D(2026, 10, 10), D(2026, 10, 12), "Hafta sonu nedeniyle 12.10.2026", "aylik-gercek"),
    ("2026-07", "gerçek", "aylık", D(2026, 11, 10), D(2026, 11, 10), "", "aylik-gercek"),        # Tuesday
    ("2026-08", "gerçek", "aylık", D(2026, 12, 10), D(2026, 12, 10), "", "aylik-gercek"),        # Thursday
    # Sep 2026 + 4 = Jan 2027; 10.01.2027 Sunday -> 11.01.2027
    ("2026-09", "gerçek", "aylık", D(2027, 1, 10), D(2027, 1, 11), "Pazar nedeniyle 11.01.2027", "aylik-gercek"),
    ("2026-10", "gerçek", "aylık", D(2027, 2, 10), D(2027, 2, 10), "", "aylik-gercek"),          # Wednesday
    # Nov 2026 + 4 = Mar 2027; 10.03.2027 (Wed) and 11.03 (Thu) are Ramazan Bayramı -> Friday 12.03.2027
    ("2026-11", "gerçek", "aylık", D(2027, 3, 10), D(2027, 3, 12), "Ramazan Bayramı nedeniyle 12.03.2027", "aylik-gercek"),
    # December 2026: 10.04.2027 is a Saturday -> Monday 12.04.2027
    ("2026-12", "gerçek", "aylık", D(2027, 4, 10), D(2027, 4, 12), "Hafta sonu nedeniyle 12.04.2027", "aylik-gercek-aralik"),

    # -- aylık, tüzel: 14th of the 4th month after; December: 14 May ------------------------------------
    ("2025-09", "tüzel", "aylık", D(2026, 1, 14), D(2026, 1, 14), "", "aylik-tuzel"),            # Wednesday
    # Oct 2025 + 4 = Feb 2026; 14.02.2026 Saturday -> Monday 16.02.2026
    ("2025-10", "tüzel", "aylık", D(2026, 2, 14), D(2026, 2, 16), "Hafta sonu nedeniyle 16.02.2026", "aylik-tuzel"),
    # 14.03.2026 Saturday -> Monday 16.03.2026 (Ramazan Bayramı 2026 is 20–22.03, later)
    ("2025-11", "tüzel", "aylık", D(2026, 3, 14), D(2026, 3, 16), "Hafta sonu nedeniyle 16.03.2026", "aylik-tuzel"),
    # December 2025: 14 May 2026 (a Thursday) — not 14 April as the general rule would give
    ("2025-12", "tüzel", "aylık", D(2026, 5, 14), D(2026, 5, 14), "", "aylik-tuzel-aralik"),
    # the 2026 sources: January 2026, tüzel -> 14.05.2026
    ("2026-01", "tüzel", "aylık", D(2026, 5, 14), D(2026, 5, 14), "", "aylik-tuzel"),
    # 14.06.2026 Sunday -> Monday 15.06.2026
    ("2026-02", "tüzel", "aylık", D(2026, 6, 14), D(2026, 6, 15), "Pazar nedeniyle 15.06.2026", "aylik-tuzel"),
    # 14.07.2026 is a Tuesday; the holiday of 15 July is the day after and moves nothing
    ("2026-03", "tüzel", "aylık", D(2026, 7, 14), D(2026, 7, 14), "", "aylik-tuzel"),
    ("2026-04", "tüzel", "aylık", D(2026, 8, 14), D(2026, 8, 14), "", "aylik-tuzel"),            # Friday
    ("2026-05", "tüzel", "aylık", D(2026, 9, 14), D(2026, 9, 14), "", "aylik-tuzel"),            # Monday
    ("2026-06", "tüzel", "aylık", D(2026, 10, 14), D(2026, 10, 14), "", "aylik-tuzel"),          # Wednesday
    # 14.11.2026 Saturday -> Monday 16.11.2026
    ("2026-07", "tüzel", "aylık", D(2026, 11, 14), D(2026, 11, 16), "Hafta sonu nedeniyle 16.11.2026", "aylik-tuzel"),
    ("2026-08", "tüzel", "aylık", D(2026, 12, 14), D(2026, 12, 14), "", "aylik-tuzel"),          # Monday
    ("2026-09", "tüzel", "aylık", D(2027, 1, 14), D(2027, 1, 14), "", "aylik-tuzel"),            # Thursday
    # 14.02.2027 Sunday -> 15.02.2027
    ("2026-10", "tüzel", "aylık", D(2027, 2, 14), D(2027, 2, 15), "Pazar nedeniyle 15.02.2027", "aylik-tuzel"),
    # 14.03.2027 Sunday -> 15.03.2027 (Ramazan Bayramı 2027 ended on the 11th)
    ("2026-11", "tüzel", "aylık", D(2027, 3, 14), D(2027, 3, 15), "Pazar nedeniyle 15.03.2027", "aylik-tuzel"),
    # December 2026: 14.05.2027 is a Friday (Kurban Bayramı 2027 starts on the 16th, its eve the 15th)
    ("2026-12", "tüzel", "aylık", D(2027, 5, 14), D(2027, 5, 14), "", "aylik-tuzel-aralik"),

    # -- 3 aylık, gerçek: 10th of the 3rd month after the quarter; Ekim–Aralık: 10 April ----------------
    # Ocak–Mart 2026 ends in March; March + 3 = June -> 10.06.2026, a Wednesday; any month of it asks the same
    ("2026-01", "gerçek", "3 aylık", D(2026, 6, 10), D(2026, 6, 10), "", "uc-aylik-gercek"),
    ("2026-03", "gerçek", "3 aylık", D(2026, 6, 10), D(2026, 6, 10), "", "uc-aylik-gercek"),
    # Nisan–Haziran ends June; + 3 = September -> 10.09.2026 Thursday
    ("2026-05", "gerçek", "3 aylık", D(2026, 9, 10), D(2026, 9, 10), "", "uc-aylik-gercek"),
    # Temmuz–Eylül ends September; + 3 = December -> 10.12.2026 Thursday
    ("2026-08", "gerçek", "3 aylık", D(2026, 12, 10), D(2026, 12, 10), "", "uc-aylik-gercek"),
    # Ekim–Aralık 2026: 10.04.2027 Saturday -> Monday 12.04.2027
    ("2026-11", "gerçek", "3 aylık", D(2027, 4, 10), D(2027, 4, 12), "Hafta sonu nedeniyle 12.04.2027", "uc-aylik-gercek-son-ceyrek"),
    # Ekim–Aralık 2025: 10.04.2026 Friday
    ("2025-10", "gerçek", "3 aylık", D(2026, 4, 10), D(2026, 4, 10), "", "uc-aylik-gercek-son-ceyrek"),
    ("2025-07", "gerçek", "3 aylık", D(2025, 12, 10), D(2025, 12, 10), "", "uc-aylik-gercek"),   # Wednesday
    ("2025-04", "gerçek", "3 aylık", D(2025, 9, 10), D(2025, 9, 10), "", "uc-aylik-gercek"),     # Wednesday
    # Ocak–Mart 2028: 10.06.2028 Saturday -> Monday 12.06.2028 (Kurban Bayramı 2028 is in early May)
    ("2028-02", "gerçek", "3 aylık", D(2028, 6, 10), D(2028, 6, 12), "Hafta sonu nedeniyle 12.06.2028", "uc-aylik-gercek"),
    # Temmuz–Eylül 2028: 10.12.2028 Sunday -> 11.12.2028
    ("2028-09", "gerçek", "3 aylık", D(2028, 12, 10), D(2028, 12, 11), "Pazar nedeniyle 11.12.2028", "uc-aylik-gercek"),

    # -- 3 aylık, tüzel: 14th of the 3rd month after the quarter; Ekim–Aralık: 14 May -------------------
    # Ocak–Mart 2026: 14.06.2026 Sunday -> 15.06.2026
    ("2026-02", "tüzel", "3 aylık", D(2026, 6, 14), D(2026, 6, 15), "Pazar nedeniyle 15.06.2026", "uc-aylik-tuzel"),
    ("2026-06", "tüzel", "3 aylık", D(2026, 9, 14), D(2026, 9, 14), "", "uc-aylik-tuzel"),       # Monday
    ("2026-09", "tüzel", "3 aylık", D(2026, 12, 14), D(2026, 12, 14), "", "uc-aylik-tuzel"),     # Monday
    # Ekim–Aralık 2026 -> 14.05.2027 Friday
    ("2026-12", "tüzel", "3 aylık", D(2027, 5, 14), D(2027, 5, 14), "", "uc-aylik-tuzel-son-ceyrek"),
    # Ekim–Aralık 2025 -> 14.05.2026 Thursday
    ("2025-12", "tüzel", "3 aylık", D(2026, 5, 14), D(2026, 5, 14), "", "uc-aylik-tuzel-son-ceyrek"),
    # Temmuz–Eylül 2025: 14.12.2025 Sunday -> 15.12.2025
    ("2025-08", "tüzel", "3 aylık", D(2025, 12, 14), D(2025, 12, 15), "Pazar nedeniyle 15.12.2025", "uc-aylik-tuzel"),
    # Nisan–Haziran 2025: 14.09.2025 Sunday -> 15.09.2025
    ("2025-05", "tüzel", "3 aylık", D(2025, 9, 14), D(2025, 9, 15), "Pazar nedeniyle 15.09.2025", "uc-aylik-tuzel"),
    ("2027-01", "tüzel", "3 aylık", D(2027, 6, 14), D(2027, 6, 14), "", "uc-aylik-tuzel"),       # Monday
    # Ekim–Aralık 2027: 14.05.2028 Sunday -> Monday 15.05.2028 (Kurban Bayramı 2028: 5–8 May)
    ("2027-10", "tüzel", "3 aylık", D(2028, 5, 14), D(2028, 5, 15), "Pazar nedeniyle 15.05.2028", "uc-aylik-tuzel-son-ceyrek"),
]


@pytest.mark.parametrize("period, taxpayer, cadence, nominal, due, reason, rule", GOLDEN,
                         ids=[f"{g[0]}-{g[1]}-{g[2].replace(' ', '')}" for g in GOLDEN])
def test_golden(period, taxpayer, cadence, nominal, due, reason, rule):
    assert berat_deadline(period, taxpayer, cadence) == Deadline(due=due, nominal=nominal, reason=reason, rule=rule)


def test_golden_set_covers_the_matrix():
    kinds = {(g[1], g[2]) for g in GOLDEN}
    assert kinds == {("gerçek", "aylık"), ("tüzel", "aylık"), ("gerçek", "3 aylık"), ("tüzel", "3 aylık")}
    assert len(GOLDEN) >= 40
    for taxpayer, cadence in kinds:
        rows = [g for g in GOLDEN if g[1:3] == (taxpayer, cadence)]
        assert any(g[6].endswith(("-aralik", "-son-ceyrek")) for g in rows)  # December / Ekim–Aralık
        assert any(g[3] != g[4] for g in rows)  # a shifted one
    assert any("Bayramı" in g[5] for g in GOLDEN)


def test_the_sources_examples_in_the_data_file():
    for ex in load_rules()["source_examples"]:
        got = berat_deadline(ex["period"], ex["taxpayer"], ex["cadence"])
        assert (got.nominal.isoformat(), got.due.isoformat(), got.reason) == (ex["nominal"], ex["due"], ex["reason"])


# -- half-day eves and the calendar ----------------------------------------------------------------

def test_calendar_the_golden_cases_rely_on():
    # the holidays package's Türkiye calendar, religious holidays included
    for d in (D(2026, 5, 27), D(2026, 5, 30), D(2027, 3, 10), D(2027, 3, 11), D(2026, 5, 1), D(2026, 10, 29)):
        assert not dl.is_working_day(d), d
    # eves (from 13:00) are working days as the data file says; so are ordinary weekdays
    for d in (D(2026, 5, 26), D(2026, 3, 19), D(2026, 10, 28), D(2027, 3, 12), D(2026, 5, 14)):
        assert dl.is_working_day(d), d
    assert dl.next_working_day(D(2026, 5, 27)) == D(2026, 6, 1)
    assert load_rules()["shifting"]["half_day_eves"] == "working_day"


# -- extensions --------------------------------------------------------------------------------------

def test_extension_moves_the_date():
    ext = Override("2026-01", "Tüzel", D(2026, 5, 18), "test duyurusu")
    # nominal 14.05.2026 (Thursday); extended to Monday 18.05.2026, a working day
    assert berat_deadline("2026-01", "tüzel", "aylık", [ext]) == Deadline(
        due=D(2026, 5, 18), nominal=D(2026, 5, 14), reason="GİB süre uzatımı (test duyurusu)", rule="aylik-tuzel")
    # the same extension is for tüzel only: gerçek keeps its Sunday shift
    assert berat_deadline("2026-01", "gerçek", "aylık", [ext]) == Deadline(
        due=D(2026, 5, 11), nominal=D(2026, 5, 10), reason="Pazar nedeniyle 11.05.2026", rule="aylik-gercek")


def test_extension_over_a_range_of_months():
    ext = Override("2026-01..2026-03", "", "30.06.2026", "X")  # empty = both kinds
    # February 2026, gerçek: nominal 10.06.2026 -> 30.06.2026 (Tuesday)
    got = berat_deadline("2026-02", "gerçek", "aylık", [ext])
    assert (got.due, got.nominal, got.reason) == (D(2026, 6, 30), D(2026, 6, 10), "GİB süre uzatımı (X)")
    # April is outside the range: 10.08.2026, untouched
    assert berat_deadline("2026-04", "gerçek", "aylık", [ext]).due == D(2026, 8, 10)


def test_extension_to_a_saturday_is_shifted_too():
    # 16.05.2026 Saturday, 17 Sunday -> Monday 18.05.2026
    got = berat_deadline("2026-01", "tüzel", "aylık", [Override("2026-01", "Tüzel", D(2026, 5, 16), "X")])
    assert (got.due, got.reason) == (D(2026, 5, 18), "GİB süre uzatımı (X); hafta sonu nedeniyle 18.05.2026")


def test_extension_into_a_religious_holiday():
    # 27–30.05.2026 Kurban Bayramı (30th a Saturday, named by the holiday), 31.05 Sunday -> Monday 01.06.2026
    got = berat_deadline("2026-01", "tüzel", "aylık", [Override("2026-01", "Tüzel", D(2026, 5, 27), "X")])
    assert (got.due, got.nominal) == (D(2026, 6, 1), D(2026, 5, 14))
    assert got.reason == "GİB süre uzatımı (X); Kurban Bayramı ve Pazar nedeniyle 01.06.2026"


def test_extension_onto_a_friday_holiday_before_a_weekend():
    # December 2025, gerçek: 10.04.2026. Extended to 01.05.2026 (Friday, Emek ve Dayanışma Günü),
    # 02 Saturday, 03 Sunday -> Monday 04.05.2026
    got = berat_deadline("2025-12", "gerçek", "aylık", [Override("2025-12", "Gerçek", D(2026, 5, 1), "X")])
    assert (got.due, got.nominal, got.rule) == (D(2026, 5, 4), D(2026, 4, 10), "aylik-gercek-aralik")
    assert got.reason == "GİB süre uzatımı (X); Emek ve Dayanışma Günü ve hafta sonu nedeniyle 04.05.2026"


def test_half_day_eve_is_a_working_day_unless_the_data_file_says_otherwise():
    ext = [Override("2026-01", "Tüzel", D(2026, 5, 26), "X")]  # Kurban Bayramı arifesi, a Tuesday
    got = berat_deadline("2026-01", "tüzel", "aylık", ext)
    assert (got.due, got.reason) == (D(2026, 5, 26), "GİB süre uzatımı (X)")
    rules = load_rules()
    rules["shifting"]["half_day_eves"] = "holiday"
    # 26 eve, 27–30 Kurban Bayramı, 31 Sunday -> Monday 01.06.2026
    got = berat_deadline("2026-01", "tüzel", "aylık", ext, rules=rules)
    assert got.due == D(2026, 6, 1)
    assert got.reason == "GİB süre uzatımı (X); Kurban Bayramı arifesi, Kurban Bayramı ve Pazar nedeniyle 01.06.2026"


def test_cumhuriyet_bayrami_and_its_eve():
    # June 2026, gerçek: 10.10.2026 Saturday -> 12.10.2026; extended to the eve 28.10 (Wednesday): stays
    eve = berat_deadline("2026-06", "gerçek", "aylık", [Override("2026-06", "Gerçek", D(2026, 10, 28), "X")])
    assert (eve.due, eve.reason) == (D(2026, 10, 28), "GİB süre uzatımı (X)")
    # to 29.10 (Thursday, Cumhuriyet Bayramı) -> Friday 30.10.2026
    day = berat_deadline("2026-06", "gerçek", "aylık", [Override("2026-06", "Gerçek", D(2026, 10, 29), "X")])
    assert (day.due, day.reason) == (D(2026, 10, 30), "GİB süre uzatımı (X); Cumhuriyet Bayramı nedeniyle 30.10.2026")


def test_an_extension_never_shortens_and_the_latest_wins():
    early = Override("2026-01", "Tüzel", D(2026, 5, 12), "erken")
    assert berat_deadline("2026-01", "tüzel", "aylık", [early]) == Deadline(
        due=D(2026, 5, 14), nominal=D(2026, 5, 14), reason="", rule="aylik-tuzel")
    a = Override("2026-01", "Tüzel", D(2026, 5, 18), "birinci")
    b = Override("2026-01", "", D(2026, 5, 25), "ikinci")  # 25.05.2026 Monday (the eve is the 26th)
    for order in ([a, b, early], [b, early, a]):
        got = berat_deadline("2026-01", "tüzel", "aylık", order)
        assert (got.due, got.reason) == (D(2026, 5, 25), "GİB süre uzatımı (ikinci)")


def test_extension_for_a_quarter():
    # Ocak–Mart 2026, gerçek: 10.06.2026. An extension naming March covers the quarter -> 15.06.2026 Monday
    ext = Override("2026-03", "Gerçek", D(2026, 6, 15), "X")
    got = berat_deadline("2026-02", "gerçek", "3 aylık", [ext])
    assert (got.due, got.nominal, got.rule) == (D(2026, 6, 15), D(2026, 6, 10), "uc-aylik-gercek")
    # one for monthly filers only leaves the quarter alone
    monthly = Override("2026-03", "Gerçek", D(2026, 6, 15), "X", cadences="Aylık")
    assert berat_deadline("2026-02", "gerçek", "3 aylık", [monthly]).due == D(2026, 6, 10)


def test_extension_shipped_in_the_data_file():
    rules = load_rules()
    rules["overrides"] = [{"periods": "2025-12", "taxpayers": ["tüzel"], "cadences": ["aylık", "3 aylık"],
                           "due": "2026-06-15", "source": "GİB duyurusu (deneme)", "source_date": "2026-05-01"}]
    # December 2025, tüzel: 14.05.2026 -> 15.06.2026 (Monday)
    got = berat_deadline("2025-12", "tüzel", "aylık", rules=rules)
    assert (got.due, got.nominal) == (D(2026, 6, 15), D(2026, 5, 14))
    assert got.reason == "GİB süre uzatımı (GİB duyurusu (deneme), 2026-05-01)"
    assert berat_deadline("2025-12", "gerçek", "aylık", rules=rules).due == D(2026, 4, 10)


def test_override_from_workbook_cells():
    # Excel turns a typed '2026-01' into a date; dates come as datetimes
    cells = Override(datetime(2026, 1, 1), "TÜZEL", datetime(2026, 5, 18), " Takvim Ayarları ")
    assert cells == Override("2026-01", ("tüzel",), D(2026, 5, 18), "Takvim Ayarları")
    assert cells.taxpayers == ("tüzel",) and cells.cadences == ("aylık", "3 aylık")
    both = Override("2026-01 - 2026-03", "Gerçek, Tüzel", "2026-05-18", "X", "3 Aylık")
    assert (both.periods, both.taxpayers, both.cadences) == ("2026-01..2026-03", ("gerçek", "tüzel"), ("3 aylık",))
    assert Override("2026-01–2026-02", "Hepsi", "18.05.2026").taxpayers == ("gerçek", "tüzel")


# -- spellings and bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("taxpayer, cadence", [("Gerçek", "Aylık"), ("GERÇEK", "AYLIK"), (" gerçek ", "aylık"),
                                               ("Gerçek Kişi", None)])
def test_workbook_spellings(taxpayer, cadence):
    assert berat_deadline("2026-01", taxpayer, cadence).due == D(2026, 5, 11)


@pytest.mark.parametrize("taxpayer, cadence", [("Tüzel", "3 Aylık"), ("TÜZEL", "3 AYLIK"), ("tüzel", "3  aylık")])
def test_workbook_spellings_quarterly(taxpayer, cadence):
    assert berat_deadline("2026-02", taxpayer, cadence).due == D(2026, 6, 15)


def test_defaults_are_tuzel_and_aylik():
    assert berat_deadline("2026-01").rule == "aylik-tuzel"
    assert berat_deadline("2026-01", None, None).rule == "aylik-tuzel"


@pytest.mark.parametrize("kwargs, words", [
    ({"taxpayer": "şahıs"}, "Geçersiz mükellef türü"),
    ({"taxpayer": ""}, "Geçersiz mükellef türü"),
    ({"taxpayer": "gercek"}, "Gerçek ya da Tüzel olmalı"),
    ({"taxpayer": 1}, "Geçersiz mükellef türü"),
    ({"cadence": "yıllık"}, "Geçersiz berat dönemi"),
    ({"cadence": "Üç Aylık"}, "Aylık ya da 3 Aylık olmalı"),
])
def test_bad_kinds_are_refused_in_turkish(kwargs, words):
    with pytest.raises(ValueError, match=words):
        berat_deadline("2026-01", **kwargs)


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "2026/01", "Ocak 2026", "202601", "2026-1", "", 202601])
def test_bad_periods_are_refused_in_turkish(period):
    with pytest.raises(ValueError, match=r"Geçersiz dönem: .*YYYY-AA biçiminde olmalı"):
        berat_deadline(period)


@pytest.mark.parametrize("args, words", [
    (("2026-13", "Tüzel", "18.05.2026"), "Geçersiz dönem"),
    (("2026-03..2026-01", "Tüzel", "18.05.2026"), "Dönem aralığı ters"),
    (("2026-01", "Kamu", "18.05.2026"), "Geçersiz mükellef türü"),
    (("2026-01", "Tüzel", "31.02.2026"), "Geçersiz uzatma tarihi"),
    (("2026-01", "Tüzel", None), "Geçersiz uzatma tarihi"),
    (("2026-01", [], "18.05.2026"), "Mükellef türü boş olamaz"),
])
def test_bad_overrides_are_refused_in_turkish(args, words):
    with pytest.raises(ValueError, match=words):
        Override(*args)


def test_overrides_must_be_override_objects():
    with pytest.raises(ValueError, match="Geçersiz süre uzatımı"):
        berat_deadline("2026-01", overrides=[("2026-01", "tüzel", D(2026, 5, 18))])


# -- the data file -------------------------------------------------------------------------------------------

def test_data_file_validates_and_names_its_sources():
    rules = load_rules()
    assert rules["format"] == 1 and rules["version"]
    sources = {s["id"] for s in rules["sources"]}
    assert {r["id"] for r in rules["rules"]} == {
        "aylik-gercek", "aylik-gercek-aralik", "aylik-tuzel", "aylik-tuzel-aralik",
        "uc-aylik-gercek", "uc-aylik-gercek-son-ceyrek", "uc-aylik-tuzel", "uc-aylik-tuzel-son-ceyrek"}
    for r in rules["rules"] + rules["superseded"]:
        assert r["source"] in sources and r["source_date"]
    assert rules["open_questions"]
    assert rules["overrides"] == []  # no extension whose scope a source gives


def test_load_rules_returns_a_copy():
    rules = load_rules()
    rules["rules"].clear()
    assert load_rules()["rules"]


def test_every_month_has_a_deadline_on_a_working_day():
    for year in (2025, 2026, 2027):
        for month in range(1, 13):
            for taxpayer in dl.TAXPAYERS:
                for cadence in dl.CADENCES:
                    d = berat_deadline(f"{year}-{month:02d}", taxpayer, cadence)
                    assert dl.is_working_day(d.due) and d.due >= d.nominal > D(year, month, 28)
                    assert (d.reason == "") == (d.due == d.nominal)


def _broken(change):
    rules = load_rules()
    change(rules)
    return rules


@pytest.mark.parametrize("change, words", [
    (lambda r: r["rules"].append(copy.deepcopy(r["rules"][0])), "iki kez"),
    (lambda r: r["rules"].append(dict(copy.deepcopy(r["rules"][0]), id="ikinci")), "aynı dönemlere"),
    (lambda r: r["rules"][0].update(taxpayer="kamu"), "taxpayer"),
    (lambda r: r["rules"][0].update(source="bilinmeyen"), "source"),
    (lambda r: r["rules"][0].pop("source_date"), "source_date"),
    (lambda r: r["rules"][4].update(period_end_months=[2]), "period_end_months"),
    (lambda r: r["rules"][0]["due"].update(day=31), "due.day"),
    (lambda r: r["rules"][0].update(effective_from="2026-05", effective_to="2026-01"), "effective_from"),
    (lambda r: r["shifting"].update(half_day_eves="bazen"), "half_day_eves"),
    (lambda r: r["overrides"].append({"periods": "2026-13", "due": "2026-05-18", "source": "X"}), "uzatma 1"),
    (lambda r: r.update(format=2), "format"),
])
def test_broken_data_is_refused_in_turkish(change, words):
    with pytest.raises(DeadlineDataError, match=f"Berat süresi veri dosyası hatalı: .*{words}"):
        dl.validate_rules(_broken(change))


def test_rules_change_by_period():
    # a rule that ends and one that starts: the period picks its rule (as a future change of the rules would)
    rules = load_rules()
    old = next(r for r in rules["rules"] if r["id"] == "aylik-tuzel")
    old["effective_to"] = "2026-05"
    new = dict(copy.deepcopy(old), id="aylik-tuzel-yeni", effective_from="2026-06", effective_to=None)
    new["due"] = {"kind": "months_after", "months": 3, "day": "last"}
    rules["rules"].append(new)
    assert berat_deadline("2026-05", "tüzel", rules=rules).due == D(2026, 9, 14)
    # June 2026 + 3 = September, its last day 30.09.2026 (Wednesday)
    got = berat_deadline("2026-06", "tüzel", rules=rules)
    assert (got.due, got.rule) == (D(2026, 9, 30), "aylik-tuzel-yeni")
    old["effective_from"] = "2026-01"
    with pytest.raises(ValueError, match="dönemi için berat süresi kuralı yok"):
        berat_deadline("2025-11", "tüzel", rules=rules)


def test_load_rules_from_a_file(tmp_path):
    import json

    path = tmp_path / "kurallar.json"
    path.write_text(json.dumps(load_rules(), ensure_ascii=False), encoding="utf-8")
    assert load_rules(path)["version"] == load_rules()["version"]
    path.write_text("{", encoding="utf-8")
    with pytest.raises(DeadlineDataError, match="JSON okunamadı"):
        load_rules(path)


def test_the_data_file_is_package_data():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["edefter_helper"]
    assert any(fnmatch(dl.DATA_FILE, g) or fnmatch(dl.DATA_FILE, g.replace("**/", "")) for g in globs), \
        f"pyproject.toml [tool.setuptools.package-data] needs '**/*.json' to ship {dl.DATA_FILE}"
