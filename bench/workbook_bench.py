#!/usr/bin/env python
"""Workbook benchmark (issue 4): writing many month rows headless into Dönemler; and (issue 12 §3) an
office's whole action on its workbook.

    python bench/workbook_bench.py             # 10 000 rows, 3 repeats (best kept); office 36 000 rows
    python bench/workbook_bench.py --quick     # 2 000 rows, 1 repeat; office 600 rows; well under a minute
    python bench/workbook_bench.py --rows 50000 --profile
    python bench/workbook_bench.py --only office --firms 300

Timed, in this process, on a control workbook made from the template (`addin.check.new_workbook`):
  write:   FileBook(path) + write_rows(layout.PERIODS, rows) + save()   (target < 5 s for 10 000 rows)
  load:    FileBook(path) of the resulting file, and read_rows(PERIODS) of it
  rewrite: the same on the file that already holds the rows (what every action's write-back does)
Baseline in the same run: plain openpyxl, a new Workbook, ws.append of the same values, save
(no template, no VBA, no header lookup, no atomic save). Prints RATIO / TARGET lines like
bench/run.py and writes workbook-results.md / .txt into the work folder.

office: a control workbook holding Dönemler with FIRMS × 120 rows, Kopyalar with as many and a Günlük
of 3 000 rows (generated once, untimed). Timed, each in a fresh process on a fresh copy of it, the
workbook work of one action (what actions._Run does around its scan): FileBook(path), read the
settings sheets, read Dönemler and Kopyalar, write both back (the last FIRMS rows changed), append
300 Günlük rows, save. Once through FileBook as it is (the fast path), once forced onto openpyxl
(`book.wb` first: FileBook as it was before, the baseline). Memory: the child's VmHWM, its RSS after
the imports, and the deep size of the rows the action holds (the caller's data, not the workbook's).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import pstats
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from run import BenchError, Report, busy_seconds, mb, run_all, start  # noqa: E402  (bench/run.py's helpers)

DEFAULT_WORK = HERE / "_work"


def make_rows(n: int) -> list[dict]:
    from edefter_helper import status as S
    from edefter_helper.workbook import layout as L

    rows = []
    t = datetime(2025, 1, 1, 9, 0, 0)
    firms = max(1, n // 120)
    for i in range(n):
        f, m = divmod(i, 120) if n >= 120 else (0, i)
        year, month = 2015 + m // 12, m % 12 + 1
        sha = hashlib.sha256(f"{f}-{m}".encode()).hexdigest()
        rows.append({"name": f"Deneme Firma {f % firms:03d} Ticaret A.Ş.", "vkn": f"{5000000000 + f * 7919:010d}",
                     "branch": "", "period": f"{year:04d}-{month:02d}", "stage": "Onaylı Berat İndirildi",
                     "validation": L.VALID, "status": S.BACKED_UP,
                     "message": f"{year:04d}-{month:02d} dönemi hedefte saklanıyor.",
                     "updated": t + timedelta(minutes=i), "sha256": sha, "reference": f"EDY-{sha[:20].upper()}"})
    return rows


def _best(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def bench_workbook(rep: Report, work: Path, rows_n: int, repeats: int, profile: bool) -> None:
    from edefter_helper.addin.check import new_workbook
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    rows = make_rows(rows_n)
    folder = work / "workbook"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    template_copy = folder / "template.xlsm"
    new_workbook(template_copy)
    path = folder / "kontrol.xlsm"
    base_path = folder / "baseline.xlsx"
    rep.say(f"== workbook: {rows_n} rows into {L.PERIODS.name} of a control workbook from the template ==")

    def write_fresh():
        shutil.copyfile(template_copy, path)  # untimed-ish: a file copy, well under a millisecond
        book = FileBook(path)
        book.write_rows(L.PERIODS, rows)
        book.save()

    def baseline():
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = L.PERIODS.name
        keys = [c.key for c in L.PERIODS.columns]
        ws.append([c.header for c in L.PERIODS.columns])
        for r in rows:
            ws.append([r.get(k) for k in keys])
        wb.save(base_path)

    def load():
        return FileBook(path)

    def load_read():
        return FileBook(path).read_rows(L.PERIODS)

    def rewrite():
        book = FileBook(path)
        book.write_rows(L.PERIODS, rows)
        book.save()

    base, base_all, _ = _best(baseline, repeats)
    write, write_all, _ = _best(write_fresh, repeats)
    size = path.stat().st_size
    load_t, load_all, _ = _best(load, repeats)
    read_t, _, got = _best(load_read, repeats)
    if len(got) != rows_n or got[-1]["period"] != rows[-1]["period"]:
        raise BenchError(f"read back {len(got)} rows, expected {rows_n}")
    rewrite_t, rewrite_all, _ = _best(rewrite, repeats)
    if len(FileBook(path).read_rows(L.PERIODS)) != rows_n:
        raise BenchError("rewrite left the wrong number of rows")
    # the template alone, for scale
    tload, _, _ = _best(lambda: FileBook(template_copy), repeats)

    # where the write goes: load / write_rows / save, once
    shutil.copyfile(template_copy, path)
    t0 = time.perf_counter()
    book = FileBook(path)
    t1 = time.perf_counter()
    book.write_rows(L.PERIODS, rows)
    t2 = time.perf_counter()
    book.save()
    t3 = time.perf_counter()

    rep.say(f"plain openpyxl Workbook + append + save: best {base:.2f} s of {[round(x, 2) for x in base_all]}, "
            f"{mb(base_path.stat().st_size)}")
    rep.say(f"FileBook write_rows + save (from template): best {write:.2f} s of "
            f"{[round(x, 2) for x in write_all]}, {mb(size)}")
    rep.say(f"   split: open template {t1 - t0:.2f} s, write_rows {t2 - t1:.2f} s, save {t3 - t2:.2f} s")
    rep.say(f"FileBook rewrite over the existing {rows_n} rows: best {rewrite_t:.2f} s of "
            f"{[round(x, 2) for x in rewrite_all]}")
    rep.say(f"load of the result: FileBook(path) best {load_t:.2f} s of {[round(x, 2) for x in load_all]}; "
            f"+ read_rows {read_t:.2f} s; the empty template loads in {tload:.2f} s")
    r_write = rep.ratio("workbook write/plain openpyxl", write, base, "plain openpyxl")
    r_rewrite = rep.ratio("workbook rewrite/plain openpyxl", rewrite_t, base, "plain openpyxl")
    budget = 5 * max(1.0, rows_n / 10_000)  # 5 s for 10 000 rows (also asked of --quick's 2 000); scaled above
    rep.target(f"write {rows_n} rows < {budget:g} s", write < budget, f"{write:.2f} s")
    rep.row("workbook", f"write {rows_n} rows (open template + write_rows + save)", f"{write:.2f} s",
            f"plain openpyxl {base:.2f} s", f"{r_write:.2f}×", f"< {budget:g} s", write < budget)
    rep.row("workbook", "split open / write_rows / save", f"{t1 - t0:.2f} / {t2 - t1:.2f} / {t3 - t2:.2f} s", "",
            "", "(info)", None)
    rep.row("workbook", f"rewrite over existing {rows_n} rows", f"{rewrite_t:.2f} s", f"{base:.2f} s",
            f"{r_rewrite:.2f}×", "(info)", None)
    rep.row("workbook", "load of the result (FileBook) / + read_rows", f"{load_t:.2f} s / {read_t:.2f} s",
            f"template {tload:.2f} s", "", "(info)", None)
    rep.row("workbook", "file size", mb(size), mb(base_path.stat().st_size), "", "(info)", None)
    if profile or write >= budget:
        prof = cProfile.Profile()
        prof.enable()
        write_fresh()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
        text = out.getvalue()
        rep.say("cProfile of one write, by tottime:")
        for line in text[text.find("   ncalls"):].rstrip().splitlines():
            rep.say("   " + line)


# -- office: the whole action's workbook work (issue 12 §3) --------------------------------------

OFFICE_LOG_ROWS = 3_000


def office_copies(rows: list[dict]) -> list[dict]:
    return [{"name": r["name"], "vkn": r["vkn"], "branch": r["branch"], "period": r["period"], "target": "Sunucu",
             "status": r["status"], "message": r["message"], "sha256": r["sha256"], "reference": r["reference"],
             "retain": datetime(int(r["period"][:4]) + 11, 12, 31), "worm": "Evet (COMPLIANCE)",
             "location": "uzak", "drill": None, "updated": r["updated"]} for r in rows]


def ensure_office(work: Path, firms: int) -> Path:
    """The office's control workbook (generated once through FileBook; reused)."""
    from edefter_helper.addin.check import new_workbook
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    folder = work / "office-workbook"
    path = folder / f"office-{firms}.xlsm"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"tmp-{firms}.xlsm"
    tmp.unlink(missing_ok=True)
    new_workbook(tmp)
    rows = make_rows(firms * 120)
    book = FileBook(tmp)
    book.write_rows(L.FIRMS, [{"name": f"Deneme Firma {f:03d} Ticaret A.Ş.", "vkn": f"{5000000000 + f * 7919:010d}",
                               "folder": f"D:\\Defter\\{f:03d}", "target": "Sunucu", "auto": "Evet"}
                              for f in range(firms)])
    book.write_rows(L.TARGETS, [{"name": "Sunucu", "kind": "http", "address": "https://yedek.example:8765"}])
    book.write_rows(L.PERIODS, rows)
    book.write_rows(L.COPIES, office_copies(rows))
    log_n = min(OFFICE_LOG_ROWS, len(rows))
    book.append_rows(L.LOG, [{"time": r["updated"], "action": "Toplu Yedekle", "name": r["name"], "vkn": r["vkn"],
                              "period": r["period"], "status": r["status"], "message": r["message"]}
                             for r in rows[:log_n]])
    book.save()
    tmp.replace(path)
    return path


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _deep_size(objs) -> int:
    """Bytes of the rows: each dict and every distinct value in it (a shared string counted once)."""
    seen, total = set(), 0
    for d in objs:
        total += sys.getsizeof(d)
        for v in d.values():
            if id(v) not in seen:
                seen.add(id(v))
                total += sys.getsizeof(v)
    return total


def office_child(mode: str, path: str, firms: int) -> None:
    """One action's workbook work in this (fresh) process; prints a JSON line."""
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    import openpyxl  # noqa: F401 - imported before the baseline RSS either way
    import lxml.etree  # noqa: F401

    gc.collect()
    rss0 = _status_kb("VmRSS")
    cpu0 = time.process_time()
    t = [time.perf_counter()]
    book = FileBook(path, progress_stream=None)
    if mode == "openpyxl":
        book.wb  # noqa: B018 - FileBook as it was: the whole workbook in openpyxl
    t.append(time.perf_counter())
    for sheet in (L.FIRMS, L.TARGETS, L.CALENDAR_SETTINGS, L.NOTIFY):
        book.read_rows(sheet)
    periods = book.read_rows(L.PERIODS)
    copies = book.read_rows(L.COPIES)
    t.append(time.perf_counter())
    rss_rows = _status_kb("VmRSS")
    now = datetime(2026, 12, 2, 5, 0)
    for r in periods[-firms:]:  # this run's months
        r.update(status="Yedeklendi", message="Bu ay yedeklendi.", updated=now)
    for r in copies[-firms:]:
        r.update(status="Yedeklendi", updated=now)
    book.write_rows(L.PERIODS, periods)
    book.write_rows(L.COPIES, copies)
    book.append_rows(L.LOG, [{"time": now, "action": "Toplu Yedekle", "name": r["name"], "vkn": r["vkn"],
                              "period": r["period"], "status": "Yedeklendi", "message": "Bu ay yedeklendi."}
                             for r in periods[-300:]])
    t.append(time.perf_counter())
    book.save()
    t.append(time.perf_counter())
    cpu = time.process_time() - cpu0
    hwm = _status_kb("VmHWM")
    fast = book._wb is None
    rows_size = _deep_size(periods) + _deep_size(copies)
    print(json.dumps({"mode": mode, "fast": fast, "wall": t[-1] - t[0], "cpu": cpu,
                      "open": t[1] - t[0], "read": t[2] - t[1], "write": t[3] - t[2], "save": t[4] - t[3],
                      "rss0_kb": rss0, "rss_rows_kb": rss_rows, "hwm_kb": hwm, "rows_bytes": rows_size,
                      "periods": len(periods), "copies": len(copies)}), flush=True)


def _office_run(mode: str, data: Path, scratch: Path, firms: int) -> dict:
    shutil.copyfile(data, scratch)  # untimed: every run starts from the same file
    busy0, t0 = busy_seconds(), time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--office-child", mode, str(scratch), str(firms)],
                          capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"office child ({mode}) failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # cores the rest of the machine kept busy meanwhile (the child's own CPU taken out)
    out["other_cores"] = max(0.0, (busy_seconds() - busy0 - out["cpu"]) / wall) if wall else 0.0
    return out


def bench_office(rep: Report, work: Path, firms: int, repeats: int) -> None:
    data = ensure_office(work, firms)
    n = firms * 120
    scratch = data.with_name("run.xlsm")
    rep.say(f"== office: one action's workbook work, Dönemler {n} rows + Kopyalar {n} rows + Günlük "
            f"{min(OFFICE_LOG_ROWS, n)} rows ({mb(data.stat().st_size)} file), each run a fresh process ==")
    runs = {"fast": [], "openpyxl": []}
    base_repeats = min(repeats, 2)
    for i in range(repeats):  # interleaved, so both sides see the same machine
        runs["fast"].append(_office_run("fast", data, scratch, firms))
        if i < base_repeats:
            runs["openpyxl"].append(_office_run("openpyxl", data, scratch, firms))
    for mode, rs in runs.items():
        for r in rs:
            if r["periods"] != n or r["copies"] != n:
                raise BenchError(f"{mode}: read {r['periods']} / {r['copies']} rows, expected {n}")
        if mode == "fast" and not all(r["fast"] for r in rs):
            raise BenchError("the fast path fell back to openpyxl")
    fast = min(runs["fast"], key=lambda r: r["wall"])
    base = min(runs["openpyxl"], key=lambda r: r["wall"])
    for mode, rs in runs.items():
        for r in rs:
            rep.say(f"{mode:8s}: {r['wall']:.2f} s (cpu {r['cpu']:.2f} s; open {r['open']:.2f}, read {r['read']:.2f}, "
                    f"write_rows {r['write']:.2f}, save {r['save']:.2f}); VmHWM {r['hwm_kb'] / 1024:.1f} MB, "
                    f"after imports {r['rss0_kb'] / 1024:.1f} MB, rows held {r['rows_bytes'] / 2**20:.1f} MB; "
                    f"other work on the machine {r['other_cores']:.1f} cores")
    r_office = rep.ratio("office action workbook/openpyxl path", fast["wall"], base["wall"], "openpyxl path")
    own = [max(0.0, r["hwm_kb"] / 1024 - r["rss0_kb"] / 1024 - r["rows_bytes"] / 2**20) for r in runs["fast"]]
    own_base = [max(0.0, r["hwm_kb"] / 1024 - r["rss0_kb"] / 1024 - r["rows_bytes"] / 2**20) for r in runs["openpyxl"]]
    hwm = max(r["hwm_kb"] for r in runs["fast"]) / 1024
    hwm_base = max(r["hwm_kb"] for r in runs["openpyxl"]) / 1024
    budget = 5.0
    rep.target(f"office action's workbook work, {n} Dönemler rows, < {budget:g} s", fast["wall"] < budget,
               f"{fast['wall']:.2f} s")
    rep.target("office action's workbook part of memory < 50 MB (VmHWM - imports - rows held)", max(own) < 50,
               f"{max(own):.1f} MB")
    rep.row("workbook office", f"one action's workbook work, Dönemler + Kopyalar {n} rows each, Günlük "
            f"{min(OFFICE_LOG_ROWS, n)} + 300 (best of {len(runs['fast'])} / {len(runs['openpyxl'])})",
            f"{fast['wall']:.2f} s", f"openpyxl path {base['wall']:.2f} s", f"{r_office:.2f}×", f"< {budget:g} s",
            fast["wall"] < budget)
    rep.row("workbook office", "split open / read / write_rows / save",
            f"{fast['open']:.2f} / {fast['read']:.2f} / {fast['write']:.2f} / {fast['save']:.2f} s",
            f"{base['open']:.2f} / {base['read']:.2f} / {base['write']:.2f} / {base['save']:.2f} s", "", "(info)", None)
    rep.row("workbook office", "process peak (VmHWM) / after imports / rows held (caller's data)",
            f"{hwm:.1f} / {fast['rss0_kb'] / 1024:.1f} / {fast['rows_bytes'] / 2**20:.1f} MB",
            f"{hwm_base:.1f} / {base['rss0_kb'] / 1024:.1f} / {base['rows_bytes'] / 2**20:.1f} MB", "", "(info)", None)
    rep.row("workbook office", "workbook part of memory (VmHWM - imports - rows held)", f"{max(own):.1f} MB",
            f"{max(own_base):.1f} MB", "", "< 50 MB", max(own) < 50)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 000 rows, one repeat (< 1 min)")
    ap.add_argument("--rows", type=int, help="rows to write (default 10 000, 2 000 with --quick)")
    ap.add_argument("--repeats", type=int, help="timed runs per figure (best kept); default 3, 1 with --quick")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work folder (default bench/_work)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of one write")
    ap.add_argument("--firms", type=int, help="office: firms × 120 months (default 300, 5 with --quick)")
    ap.add_argument("--only", default="", help="workbook, office (comma list; default both)")
    ap.add_argument("--office-child", nargs=3, metavar=("MODE", "PATH", "FIRMS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.office_child:
        mode, path, firms = args.office_child
        office_child(mode, path, int(firms))
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    rows = args.rows or (2_000 if args.quick else 10_000)
    firms = args.firms or (5 if args.quick else 300)
    only = {n.strip() for n in args.only.split(",") if n.strip()} or {"workbook", "office"}
    work, info, rep = start("workbook benchmark", args.quick, args.work)
    benches = []
    if "workbook" in only:
        benches.append(("workbook", lambda: bench_workbook(rep, work, rows, repeats, args.profile)))
    if "office" in only:
        benches.append(("office", lambda: bench_office(rep, work, firms, repeats)))
    return run_all(rep, benches, info, argv, work, "workbook-results", "python bench/workbook_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
