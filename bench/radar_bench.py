#!/usr/bin/env python
"""Takvim benchmark (issue 13 §3): the Takvim sheet of an office of 300 firms × 120 months.

    python bench/radar_bench.py             # 300 firms × 120 months, windows of 15 and 120 months, best of 3
    python bench/radar_bench.py --quick     # 30 firms × 120 months, one repeat, well under a minute

The inputs are made up, not scanned: firms (Tüzel / Gerçek, Aylık / 3 Aylık, four Sorumlu), each
month's status as the journal would give it (Yedeklendi for the old months, the last ones in mixed
states: local files changed, closed at GİB and not sent, nothing yet) and Dönemler's rows for every
month. The scan and the journal reads before it are measured elsewhere (bench/run.py, the local
check); what is timed here is what `actions.radar` does after them:

  build:  radar.build + radar.period_row_numbers + radar.sheet_rows (the cells and their links)
  alone:  FileBook(path) + write_grid(Takvim) + save() on a control workbook from the template: the
          Takvim's own cost; build + alone is the figure held to the target (< 5 s)
  office: the same on a control workbook whose Dönemler already holds the office's rows (120 per
          firm), as at the office; baseline in the same run: FileBook(path) + save() of that workbook
          with no Takvim written — what every action pays to open and save it (issue 4's cost)

xlwings: the same grid through `excel.XlwingsBook.write_grid` on `RecordingBook`, a stand-in that
records every call on a sheet or a range (as tests/test_excel_adapter.py does for Dönemler); the
calls are counted for 10 firms and for the office — target: the same count.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from run import BenchError, mb, run_all, start  # noqa: E402  (bench/run.py's helpers)
from workbook_bench import _best  # noqa: E402  (best of N, collected before each)

DEFAULT_WORK = HERE / "_work"
TODAY = date(2026, 12, 8)
HISTORY = 120  # months each firm has
OWNERS = ("Ayşe", "Mehmet", "Zeynep", "Can")


# --------------------------------------------------------------------------- the xlwings stand-in

class _Api:
    def __init__(self, rng: RecordingRange):
        self.rng = rng

    @property
    def Hyperlinks(self):  # noqa: N802 - COM's name
        rng = self.rng

        class Hyperlinks:
            def Delete(self):  # noqa: N802
                rng.sheet.log.append("hyperlinks.delete")

        return Hyperlinks()


class RecordingRange:
    """An xlwings Range that records each call and keeps the values written, as Excel would hold them
    (a leading apostrophe is Excel's "text as typed" prefix, not part of the value)."""

    def __init__(self, sheet: RecordingSheet, first, last=None):
        self.sheet, (self.r1, self.c1) = sheet, first
        self.r2, self.c2 = last or first

    @property
    def value(self):
        self.sheet.log.append("read")
        return [[self.sheet.grid.get((r, c)) for c in range(self.c1, self.c2 + 1)] for r in range(self.r1, self.r2 + 1)]

    @value.setter
    def value(self, matrix):
        self.sheet.log.append("write")
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                if isinstance(v, str) and v.startswith("'"):
                    v = v[1:]
                if v is None:
                    self.sheet.grid.pop((self.r1 + i, self.c1 + j), None)
                else:
                    self.sheet.grid[(self.r1 + i, self.c1 + j)] = v

    def clear_contents(self):
        self.sheet.log.append("clear")
        self.sheet.grid.clear()

    @property
    def api(self):
        return _Api(self)


class RecordingSheet:
    def __init__(self, name: str):
        self.name = name
        self.grid: dict[tuple[int, int], object] = {}
        self.log: list[str] = []

    def range(self, first, last=None):
        return RecordingRange(self, first, last)

    @property
    def used_range(self):
        self.log.append("used_range")
        rows = max((r for r, _ in self.grid), default=1)
        cols = max((c for _, c in self.grid), default=1)
        return RecordingRange(self, (1, 1), (rows, cols))


class RecordingSheets(dict):
    def add(self, name, after=None):
        self[name] = RecordingSheet(name)
        return self[name]

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.values())[key]
        return dict.__getitem__(self, key)


class RecordingBook:
    def __init__(self):
        from edefter_helper.workbook import layout

        self.app = None
        self.sheets = RecordingSheets({s.name: RecordingSheet(s.name) for s in layout.DATA_SHEETS})
        self.fullname = "/yok/kontrol.xlsm"

    def calls(self, name: str) -> list[str]:
        return self.sheets[name].log


# --------------------------------------------------------------------------- a made-up office

def office(n_firms: int, history: int = HISTORY, today: date = TODAY):
    """(firms, statuses, months Dönemler lists): the journal's word for every month of every firm."""
    from edefter_helper import radar
    from edefter_helper import status as S
    from edefter_helper.engine.model import MonthKey
    from edefter_helper.settings import Firm

    periods = radar.window(today, history)
    firms, statuses, listed = [], {}, set()
    for i in range(n_firms):
        vkn = f"{5000000000 + i * 7919:010d}"
        firms.append(Firm(f"Deneme Firma {i:03d} Ticaret A.Ş.", vkn, "", f"/ofis/{vkn}", "NAS", "", True,
                          "gerçek" if i % 4 == 0 else "tüzel", "3 aylık" if i % 5 == 0 else "aylık",
                          OWNERS[i % len(OWNERS)]))
        for j, p in enumerate(periods):
            key = MonthKey(vkn, "0000", p)
            left = len(periods) - j  # 1 = the last closed month
            if left <= 3 and (i + left) % 3:
                continue  # nothing yet: "Son gün …", "Eksik", "Süresi geçti"
            listed.add(key)
            if left == 4 and i % 7 == 0:
                statuses[key] = (S.CHANGED, "1 dosya yedekten farklı.")
            elif left <= 5 and i % 2:
                statuses[key] = (S.FAILED, "Hedefe ulaşılamadı.")
            else:
                statuses[key] = (S.BACKED_UP, f"{p} dönemi hedefte saklanıyor.")
    return firms, statuses, listed


def takvim_rows(firms, statuses, listed, months: int) -> list[list]:
    from edefter_helper import radar

    grid = radar.build(firms, {}, statuses, today=TODAY, periods=radar.window(TODAY, months))
    return radar.sheet_rows(grid, radar.period_row_numbers(listed, firms))


def periods_sheet_rows(firms, statuses) -> list[dict]:
    """Dönemler as the write-back leaves it for this office (the workbook the Takvim is saved into)."""
    names = {f.vkn: f.name for f in firms}
    rows = [{"name": names[k.vkn], "vkn": k.vkn, "branch": k.branch, "period": k.period,
             "stage": "Onaylı Berat İndirildi", "validation": "Geçerli", "status": word, "message": message}
            for k, (word, message) in statuses.items()]
    rows.sort(key=lambda r: (r["name"].casefold(), r["vkn"], r["branch"], r["period"]))
    return rows


def xlwings_calls(rows: list[list]) -> tuple[int, list[str], RecordingBook]:
    from edefter_helper import excel
    from edefter_helper.workbook import layout as L

    fake = RecordingBook()
    book = excel.XlwingsBook(fake)
    book.write_grid(L.CALENDAR_SHEET, rows)  # the sheet is made
    fake.calls(L.CALENDAR_SHEET).clear()
    book.write_grid(L.CALENDAR_SHEET, rows)  # and written over, as at every click
    log = list(fake.calls(L.CALENDAR_SHEET))
    return len(log), log, fake


# --------------------------------------------------------------------------- the benchmark

def bench_takvim(rep, work: Path, n_firms: int, repeats: int) -> None:
    from edefter_helper.addin.check import new_workbook
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.calendar_format import Link
    from edefter_helper.workbook.file import FileBook

    folder = work / "takvim"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    template = new_workbook(folder / "template.xlsm")
    firms, statuses, listed = office(n_firms)
    rep.say(f"== Takvim: {n_firms} firms × {HISTORY} months ({len(listed)} Dönemler rows) ==")
    office_book = folder / "office-template.xlsm"  # the template with the office's Dönemler, made once
    shutil.copyfile(template, office_book)
    book = FileBook(office_book)
    book.write_rows(L.PERIODS, periods_sheet_rows(firms, statuses))
    book.save()
    rep.say(f"(the office's workbook: {len(listed)} Dönemler rows, {mb(office_book.stat().st_size)}; made untimed)")

    for months in (15, 120):
        build, build_all, rows = _best(lambda m=months: takvim_rows(firms, statuses, listed, m), repeats)
        cells = sum(len(r) - 5 for r in rows[1:])
        links = sum(isinstance(v, Link) for r in rows for v in r)
        path = folder / f"kontrol-{months}.xlsm"

        def write(source, path=path, rows=rows):
            shutil.copyfile(source, path)  # a file copy: milliseconds
            b = FileBook(path)
            b.write_grid(L.CALENDAR_SHEET, rows)
            b.save()

        t_office, all_office, _ = _best(lambda: write(office_book), repeats)
        t_alone, all_alone, _ = _best(lambda: write(template), repeats)

        def open_save(path=path):
            shutil.copyfile(office_book, path)
            FileBook(path).save()

        t_base, all_base, _ = _best(open_save, repeats)
        # where the office write goes
        shutil.copyfile(office_book, path)
        t0 = time.perf_counter()
        b = FileBook(path)
        t1 = time.perf_counter()
        b.write_grid(L.CALENDAR_SHEET, rows)
        t2 = time.perf_counter()
        b.save()
        t3 = time.perf_counter()
        back = FileBook(path).wb[L.CALENDAR_SHEET]
        got = sum(1 for row in back.iter_rows(min_row=2) for c in row if c.hyperlink is not None)
        if back.max_row != len(rows) or got != links:
            raise BenchError(f"read back {back.max_row} rows / {got} links, expected {len(rows)} / {links}")
        total = build + t_alone
        rep.say(f"window {months} months: {len(rows) - 1} rows, {cells} month cells, {links} links")
        rep.say(f"   build (radar.build + links + rows): best {build:.2f} s of {[round(x, 2) for x in build_all]}")
        rep.say(f"   write into a template workbook (open + write_grid + save): best {t_alone:.2f} s of "
                f"{[round(x, 2) for x in all_alone]}")
        rep.say(f"   write into the office's workbook: best {t_office:.2f} s of {[round(x, 2) for x in all_office]}; "
                f"split open {t1 - t0:.2f} / write_grid {t2 - t1:.2f} / save {t3 - t2:.2f} s; {mb(path.stat().st_size)}")
        rep.say(f"   the office's workbook opened and saved, no Takvim: best {t_base:.2f} s of "
                f"{[round(x, 2) for x in all_base]}")
        r = rep.ratio(f"takvim {months} months office write/open+save", t_office, t_base, "open+save")
        rep.target(f"Takvim {n_firms} firms × {months} months written headless < 5 s", total < 5,
                   f"build {build:.2f} s + write {t_alone:.2f} s = {total:.2f} s")
        rep.row("takvim", f"{n_firms} firms, window {months} months: build + write (template workbook)",
                f"{total:.2f} s", f"build {build:.2f} s, write {t_alone:.2f} s", "", "< 5 s", total < 5)
        rep.row("takvim", f"{n_firms} firms, window {months} months: write into the office's workbook "
                f"(open / write_grid / save)", f"{t_office:.2f} s ({t1 - t0:.2f} / {t2 - t1:.2f} / {t3 - t2:.2f})",
                f"open + save, no Takvim {t_base:.2f} s", f"{r:.2f}×", "(info)", None)

        # xlwings: calls on the recording stand-in, a few firms against the office
        small_firms, small_statuses, small_listed = office(10)
        small, _, _ = xlwings_calls(takvim_rows(small_firms, small_statuses, small_listed, months))
        big, log_big, fake = xlwings_calls(rows)
        formulas = sum(1 for v in fake.sheets[L.CALENDAR_SHEET].grid.values()
                       if isinstance(v, str) and v.startswith("=HYPERLINK("))
        if formulas != links:
            raise BenchError(f"xlwings wrote {formulas} HYPERLINK formulas, expected {links}")
        rep.say(f"   xlwings stand-in: {small} calls for 10 firms, {big} for {n_firms} firms ({', '.join(log_big)}); "
                f"{formulas} HYPERLINK formulas in the one values write")
        rep.target(f"xlwings calls for the Takvim, window {months}: 10 firms = {n_firms} firms", small == big,
                   f"{small} / {big}")
        rep.row("takvim", f"xlwings range calls, window {months} months: 10 firms / {n_firms} firms",
                f"{small} / {big}", ", ".join(log_big), "", "equal", small == big)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="30 firms, one repeat (< 1 min)")
    ap.add_argument("--firms", type=int, help="firms (default 300, 30 with --quick)")
    ap.add_argument("--repeats", type=int, help="timed runs per figure (best kept); default 3, 1 with --quick")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work folder (default bench/_work)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    firms = args.firms or (30 if args.quick else 300)
    work, info, rep = start("Takvim benchmark", args.quick, args.work)
    return run_all(rep, [("takvim", lambda: bench_takvim(rep, work, firms, repeats))], info, argv, work,
                   "radar-results", "python bench/radar_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
