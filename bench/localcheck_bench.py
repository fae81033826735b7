#!/usr/bin/env python
"""Local file check benchmark (issue 9, section 3): `edefter check-local --workbook F` on an unchanged
tree of many backed-up months, warm (second run) and `--full`, against `find | wc -l` and `sha256sum`
over the same files, measured in the same run.

    python bench/localcheck_bench.py              # 30, 100, 300 firms × 120 months (300 × 120 = 36 000 months)
    python bench/localcheck_bench.py --quick      # 4, 8 firms × 12 months, well under a minute
    python bench/localcheck_bench.py --firms 300 --repeats 1   # one scale only
    python bench/localcheck_bench.py --profile    # + cProfile of an in-process warm check (largest scale)

Test data (generated once under bench/_work/, not timed; ~4 min and ~4.2 GB for 300 firms):
ROOT/VKN/01.01.YYYY-31.12.YYYY/MM/ with one real signed, GİB-approved month per (firm, period)
(`samples.write_month`, 3 entries), so every header matches its file name and every month verifies
(hardlinking one month under every period, as bench/run.py's scan benchmark does, would make every
month invalid: the period inside would not match the name). Each firm's sha256 list is written
beside the tree (not inside it) while generating. A smaller scale uses the first firms of the same tree.

Per scale, from scratch (fresh data folder, so a fresh verify cache and journal; fresh workbook with
those firms, all pointing at one http Hedef that is never contacted): every month is written into
the journal as backed up (`Journal.begin` / `finish` with the files' name, size and sha256, status
Yedeklendi) — as 36 000 real backups would have left it, without making them. Then, timed with the
real CLI in a subprocess: the first `check-local` (cold verify cache; it also writes Dönemler for the
first time), then, interleaved `--repeats` times, a warm `check-local`, `check-local --full` and the
baselines `find DIRS -type f | wc -l` and `find DIRS -type f -print0 | xargs -0 sha256sum`. Every run
must report 0 findings; afterwards every Dönemler row must say Yedeklendi / Geçerli. At the smallest
scale a control follows: one file renamed to `.xml.locked` and one byte changed in place (size and
mtime kept) must each be reported, then are put back. Where a warm check's time goes: one more warm
check in-process with timers around its phases.

Prints `RATIO` and `TARGET ... MET` / `NOT MET` lines; writes localcheck-results.{md,txt}.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

import run as R  # noqa: E402  (bench/run.py's helpers)
from run import (BenchError, Report, best, chosen, common_args, mb, periods_back, run_all,  # noqa: E402
                 run_measured, start)

TARGET = "Yerel Sunucu"
ADDRESS = "http://127.0.0.1:9"  # never contacted: check-local compares files with the journal only
USER = "bench"


@dataclass(frozen=True)
class Sizes:
    firms: tuple[int, ...]
    months: int
    repeats: int


FULL = Sizes(firms=(30, 100, 300), months=120, repeats=2)
QUICK = Sizes(firms=(4, 8), months=12, repeats=1)


# -- test data (not timed) ----------------------------------------------------------------------

def _vkn(i: int) -> str:
    return f"{6000000000 + i * 7919:010d}"


def _firm_name(i: int) -> str:
    return f"Kontrol Firma {i:03d} Ticaret A.Ş."


def _month_dir(root: Path, vkn: str, period: str) -> Path:
    return root / vkn / f"01.01.{period[:4]}-31.12.{period[:4]}" / period[5:]


def _write_firm(args) -> int:
    """All periods of one firm, then its sha256 list (written last: its presence marks the firm done)."""
    from edefter_helper.samples import write_month

    root, lists, i, periods, made_by = args
    root, lists = Path(root), Path(lists)
    vkn = _vkn(i)
    if (root / vkn).exists():
        shutil.rmtree(root / vkn)
    recorded = {}
    for period in periods:
        folder = _month_dir(root, vkn, period)
        written = write_month(folder, vkn, period, entries=3, seed=i, company=_firm_name(i))
        rows = []
        for p in sorted(written):
            data = p.read_bytes()
            rows.append([p.name, len(data), hashlib.sha256(data).hexdigest()])
        recorded[period] = rows
    tmp = lists / f"{vkn}.json.tmp"
    tmp.write_text(json.dumps({"made_by": made_by, "periods": recorded}))
    os.replace(tmp, lists / f"{vkn}.json")
    return len(periods)


def ensure_tree(work: Path, firms: int, months: int) -> tuple[Path, Path]:
    """ROOT/VKN/01.01.YYYY-31.12.YYYY/MM/ for the first `firms` firms; generated once, firm by firm."""
    root = work / f"localcheck-tree-{months}m"
    lists = work / f"localcheck-sha-{months}m"
    lists.mkdir(parents=True, exist_ok=True)
    made_by = R._generator_id()
    todo = []
    for i in range(firms):
        path = lists / f"{_vkn(i)}.json"
        try:
            ok = json.loads(path.read_text())["made_by"] == made_by
        except (OSError, ValueError, KeyError):
            ok = False
        if not ok:
            todo.append(i)
    if todo:
        t0 = time.perf_counter()
        periods = periods_back(months)
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            n = sum(pool.map(_write_firm, [(str(root), str(lists), i, periods, made_by) for i in todo]))
        print(f"(generated {n} months for {len(todo)} firms in {root.name} in {time.perf_counter() - t0:.1f} s, "
              f"not timed)", flush=True)
    return root, lists


# -- one scale's environment ----------------------------------------------------------------------

class Scale:
    def __init__(self, work: Path, root: Path, lists: Path, firms: int, months: int):
        self.firms, self.months = firms, months
        self.root = root
        self.base = work / f"localcheck-run-{firms}"
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        self.data = self.base / "data"
        self.data.mkdir()
        self.workbook = self.base / "kontrol.xlsm"
        self.folders = [root / _vkn(i) for i in range(firms)]
        self.env = dict(os.environ)
        for name in ("EDEFTER_CACHE", "EDEFTER_JOURNAL"):
            self.env.pop(name, None)
        self.env.update({"EDEFTER_DATA_DIR": str(self.data), "PYTHONIOENCODING": "utf-8"})
        self.recorded = {_vkn(i): json.loads((lists / f"{_vkn(i)}.json").read_text())["periods"]
                         for i in range(firms)}
        self.nfiles = sum(len(rows) for per in self.recorded.values() for rows in per.values())
        self.nbytes = sum(r[1] for per in self.recorded.values() for rows in per.values() for r in rows)
        self._workbook()
        self.t_journal = self._journal()

    def _workbook(self) -> None:
        from edefter_helper.addin.check import new_workbook
        from edefter_helper.workbook import layout as L
        from edefter_helper.workbook.file import FileBook

        new_workbook(self.workbook)
        book = FileBook(self.workbook)
        book.write_rows(L.FIRMS, [{"name": _firm_name(i), "vkn": _vkn(i), "branch": "", "folder": str(self.folders[i]),
                                   "target": TARGET, "user": USER, "auto": L.YES} for i in range(self.firms)])
        book.write_rows(L.TARGETS, [{"name": TARGET, "kind": "http", "address": ADDRESS,
                                     "description": L.DEFAULT_DESCRIPTION}])
        book.save()

    def _journal(self) -> float:
        """Every month backed up, as a real backup records it: the attempt with the package's files,
        then the month's status Yedeklendi naming that package."""
        from edefter_helper import actions
        from edefter_helper import status as S
        from edefter_helper.engine.model import MonthKey
        from edefter_helper.journal import Journal
        from edefter_helper.workbook import layout as L

        t0 = time.perf_counter()
        cfg = actions.TargetConfig(TARGET, "http", ADDRESS, L.DEFAULT_DESCRIPTION)
        journal = Journal(self.data / "journal.sqlite3")
        journal._db().execute("PRAGMA synchronous=OFF")  # bench set-up only: 2 transactions a month
        try:
            for i in range(self.firms):
                vkn = _vkn(i)
                firm = actions.Firm(_firm_name(i), vkn, "", str(self.folders[i]), TARGET, USER, True)
                identity = actions.target_identity(cfg, firm)
                for period, files in sorted(self.recorded[vkn].items()):
                    key = MonthKey(vkn, "0000", period)
                    package = hashlib.sha256(json.dumps(files).encode()).hexdigest()  # stands for the zip's
                    attempt = journal.begin(key, identity, "send", package, [tuple(f) for f in files])
                    journal.finish(attempt, key, identity, S.BACKED_UP,
                                   f"{period} ayına ait dosyalar yedeklendi.", f"EDY-BENCH-{vkn}-{period}", package)
        finally:
            journal.close()
        return time.perf_counter() - t0

    def cmd(self, full: bool = False) -> list[str]:
        return R.edefter_cmd() + ["check-local", "--workbook", str(self.workbook), "--json"] + (["--full"] if full else [])

    def baseline_cmds(self) -> tuple[list[str], list[str]]:
        dirs = " ".join(f"'{d}'" for d in self.folders)
        return (["sh", "-c", f"find {dirs} -type f | wc -l"],
                ["sh", "-c", f"find {dirs} -type f -print0 | xargs -0 sha256sum > /dev/null"])


def _findings(run: R.Run, what: str) -> list[dict]:
    try:
        data = json.loads(run.stdout)
    except ValueError:
        raise BenchError(f"{what}: exit {run.rc}, no JSON: {run.stdout[-1500:]!r} {run.stderr[-1500:]!r}") from None
    findings = data.get("findings")
    if findings is None:
        raise BenchError(f"{what}: no findings list in the output: {run.stdout[:1500]!r}")
    return findings


def _no_findings(run: R.Run, what: str) -> None:
    findings = _findings(run, what)
    if findings or run.rc != 0:
        raise BenchError(f"{what}: exit {run.rc}, {len(findings)} findings on an unchanged tree: "
                         f"{json.dumps(findings[:3], ensure_ascii=False)}")


def _check_rows(scale: Scale) -> None:
    """Every month was found, verified and compared: Dönemler says Yedeklendi / Geçerli for each."""
    from edefter_helper import status as S
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    rows = FileBook(scale.workbook).read_rows(L.PERIODS)
    want = scale.firms * scale.months
    bad = [r for r in rows if r.get("status") != S.BACKED_UP or r.get("validation") != L.VALID]
    if len(rows) != want or bad:
        raise BenchError(f"Dönemler has {len(rows)} rows (expected {want}), {len(bad)} not Yedeklendi/Geçerli: "
                         f"{[(r.get('vkn'), r.get('period'), r.get('status'), r.get('message')) for r in bad[:3]]}")


def _control(scale: Scale, rep: Report) -> None:
    """The check is not blind: a ledger "encrypted" by ransomware (other bytes, `.locked` added) and a
    berat edited in place with its size and mtime kept (only ctime tells) are both reported."""
    vkn = _vkn(0)
    period = sorted(scale.recorded[vkn])[0]
    folder = _month_dir(scale.root, vkn, period)
    names = [r[0] for r in scale.recorded[vkn][period]]
    ledger = folder / next(n for n in names if "-Y-" in n)
    berat = folder / next(n for n in names if "-KB-" in n and not n.startswith("GIB-"))
    locked = ledger.with_name(ledger.name + ".locked")
    ledger_bytes, ledger_st = ledger.read_bytes(), ledger.stat()
    berat_bytes, berat_st = berat.read_bytes(), berat.stat()
    middle = len(berat_bytes) // 2
    try:
        locked.write_bytes(bytes(b ^ 0x5A for b in ledger_bytes))
        ledger.unlink()
        edited = bytearray(berat_bytes)
        edited[middle] = ord("0") if edited[middle] != ord("0") else ord("1")
        with open(berat, "r+b") as f:
            f.write(edited)
        os.utime(berat, ns=(berat_st.st_atime_ns, berat_st.st_mtime_ns))
        r = run_measured(scale.cmd(), scale.env)
        kinds = sorted((f["file"], f["kind"]) for f in _findings(r, "control"))
    finally:  # put the tree back as it was generated
        if not ledger.exists():
            tmp = ledger.with_name(ledger.name + ".bench-tmp")
            tmp.write_bytes(ledger_bytes)
            os.replace(tmp, ledger)
            os.utime(ledger, ns=(ledger_st.st_atime_ns, ledger_st.st_mtime_ns))
        locked.unlink(missing_ok=True)
        with open(berat, "r+b") as f:
            f.write(berat_bytes)
        os.utime(berat, ns=(berat_st.st_atime_ns, berat_st.st_mtime_ns))
    want = sorted([(ledger.name, "encrypted"), (berat.name, "changed")])
    rep.say(f"control ({scale.firms} firms): {ledger.name} replaced by other bytes named .locked, one byte of "
            f"{berat.name} changed (size and mtime kept): check-local found {kinds} in {r.wall:.2f} s (exit {r.rc})")
    ok = kinds == want and r.rc == 1
    rep.target(f"check-local reports a ransomware-style file and a same-size, same-mtime edit ({scale.firms} firms)",
               ok, f"found {kinds}")
    if not ok:
        raise BenchError(f"check-local missed a change: found {kinds}, expected {want}")
    after = run_measured(scale.cmd(), scale.env)  # put back: clean again
    _no_findings(after, "check-local after the control was undone")


# -- where a warm check's time goes (in-process) --------------------------------------------------

def _split_here(workbook: str, data: str, months: int, profile: bool):
    """One warm check-local in this (fresh) process, timed phase by phase; see _split."""
    from edefter_helper import actions
    from edefter_helper.engine import verify as V
    from edefter_helper.workbook.file import FileBook

    os.environ["EDEFTER_DATA_DIR"] = data
    os.environ.pop("EDEFTER_CACHE", None)
    os.environ.pop("EDEFTER_JOURNAL", None)
    timer = R.PhaseTimer()
    if not profile:
        timer.wrap(FileBook, "reload", "workbook load")
        timer.wrap(V, "scan", "scan (walk + group, warm)")
        timer.wrap(V, "verify_sets", "verify_sets (warm: cached verdicts)")
        timer.wrap(actions._Run, "local_findings", "local check itself (journal rows + compare)")
        timer.wrap(actions, "period_rows", "Dönemler rows from the journal (period_rows)")
        timer.wrap(FileBook, "read_rows", "read_rows (previous Dönemler)")
        timer.wrap(FileBook, "write_rows", "write_rows (Dönemler)")
        timer.wrap(FileBook, "save", "workbook save")
    prof = cProfile.Profile() if profile else None
    rss0 = R._mem(os.getpid())[0]
    book = FileBook(workbook)
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    summary = actions.check_local(book)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    timer.restore()
    if summary.results or summary.found != months:
        raise BenchError(f"in-process check: {summary.found} months found, {len(summary.results)} findings")
    text = ""
    if prof:
        s = io.StringIO()
        stats = pstats.Stats(prof, stream=s)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(20)
        text = s.getvalue()
    peak = R._mem(os.getpid())[2]
    return wall, dict(timer.spent), dict(timer.grew), text, rss0, peak


def _split(scale: Scale, profile: bool = False):
    """A warm check in a fresh process of its own (spawned: only what the check needs is imported,
    and the memory each phase keeps is that process's own), with timers, or with cProfile."""
    import multiprocessing

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_split_here, str(scale.workbook), str(scale.data), scale.firms * scale.months,
                           profile).result()


# -- the benchmark ----------------------------------------------------------------------------------

def bench_localcheck(rep: Report, work: Path, sizes: Sizes, profile: bool) -> None:
    root, lists = ensure_tree(work, max(sizes.firms), sizes.months)
    rep.say(f"== check-local: {sizes.firms} firms × {sizes.months} months, real signed months (7 files each), "
            f"every month recorded as backed up in the journal ==")
    results = []
    for n in sizes.firms:
        scale = Scale(work, root, lists, n, sizes.months)
        months = n * sizes.months
        load0 = os.getloadavg()
        first = run_measured(scale.cmd(), scale.env)
        _no_findings(first, f"first check-local ({n} firms)")
        find_cmd, sha_cmd = scale.baseline_cmds()
        warm, full, finds, shas = [], [], [], []
        for _ in range(sizes.repeats):  # interleaved, so drifting machine load hits every side alike
            finds.append(run_measured(find_cmd, scale.env))
            w = run_measured(scale.cmd(), scale.env)
            _no_findings(w, f"check-local ({n} firms)")
            warm.append(w)
            shas.append(run_measured(sha_cmd, scale.env))
            f = run_measured(scale.cmd(full=True), scale.env)
            _no_findings(f, f"check-local --full ({n} firms)")
            full.append(f)
        load1 = os.getloadavg()
        for b in finds + shas:
            if b.rc != 0:
                raise BenchError(f"baseline {b.cmd[-1][:200]} exited {b.rc}: {b.stderr[-1000:]!r}")
        counted = int(best(finds).stdout.strip() or 0)
        if counted != scale.nfiles:
            raise BenchError(f"find counted {counted} files, the journal records {scale.nfiles}")
        _check_rows(scale)
        w, f, fd, sh = best(warm), best(full), best(finds), best(shas)
        split = _split(scale)
        prof_text = _split(scale, profile=True)[3] if profile and n == max(sizes.firms) else ""
        results.append((n, months, scale, first, w, f, fd, sh, split))
        rep.say(f"{n:>4} firms, {months:>6} months, {scale.nfiles:>7} files, {mb(scale.nbytes)} "
                f"(journal written in {scale.t_journal:.1f} s, not timed):")
        rep.say(f"   first check-local (cold verify cache, first Dönemler): {first.wall:.2f} s, "
                f"peak RSS {mb(first.hwm_sum)}")
        rep.say(f"   check-local warm:   best {w.wall:.2f} s of {[round(x.wall, 2) for x in warm]} "
                f"({w.wall / months * 1000:.2f} ms/month), peak RSS {mb(w.hwm_sum)} (upper bound, "
                f"{w.procs} process{'es' if w.procs > 1 else ''})")
        rep.say(f"   check-local --full: best {f.wall:.2f} s of {[round(x.wall, 2) for x in full]} "
                f"({f.wall / months * 1000:.2f} ms/month), peak RSS {mb(f.hwm_sum)}")
        rep.say(f"   find|wc -l {fd.wall:.3f} s; find|xargs sha256sum {sh.wall:.2f} s "
                f"({scale.nbytes / R.MB / sh.wall:.0f} MB/s)")
        rep.say("   load average (1/5/15 min) before / after: " + " / ".join(
            " ".join(f"{x:.2f}" for x in la) for la in (load0, load1)))
        rep.say("   " + R.other_load([("first", [first]), ("warm", warm), ("--full", full), ("find", finds),
                                      ("sha256sum", shas)]))
        s_wall, phases, grew, _, rss0, peak = split
        rep.say(f"   in-process warm check for the split: {s_wall:.2f} s; process RSS {mb(rss0)} after imports, "
                f"peak {mb(peak)}; RSS kept by each phase in brackets (nested phases count in both):")
        for k, v in phases.items():
            rep.say(f"      {k}: {v:.2f} s (+{mb(grew.get(k, 0))})")
        rep.ratio(f"check-local warm/find|wc ({n} firms)", w.wall, fd.wall, "find|wc")
        rep.ratio(f"check-local --full/sha256sum ({n} firms)", f.wall, sh.wall, "sha256sum")
        rep.ratio(f"check-local warm/sha256sum ({n} firms)", w.wall, sh.wall, "sha256sum")
        rep.target(f"check-local: 0 findings on the unchanged tree of {months} months (first, warm, --full)", True,
                   f"0 findings in {2 * sizes.repeats + 1} runs")
        rep.row("check-local", f"{n} firms × {sizes.months} = {months} months, {scale.nfiles} files: warm",
                f"{w.wall:.2f} s", f"find\\|wc {fd.wall:.3f} s", f"{w.wall / fd.wall:.0f}×", "(info)", None)
        rep.row("check-local", f"{months} months: `--full`", f"{f.wall:.2f} s", f"sha256sum {sh.wall:.2f} s",
                f"{f.wall / sh.wall:.2f}×", "(info)", None)
        rep.row("check-local", f"{months} months: first run (cold verify cache)", f"{first.wall:.2f} s", "", "",
                "(info)", None)
        rep.row("check-local", f"{months} months: findings on the unchanged tree", "0", "", "", "0", True)
        rep.row("check-local", f"{months} months: peak RSS warm / --full / first", f"{mb(w.hwm_sum)} / "
                f"{mb(f.hwm_sum)} / {mb(first.hwm_sum)}", "", "", "(info)", None)
        if prof_text:
            rep.say(f"   cProfile of the in-process warm check ({n} firms):")
            for line in prof_text.rstrip().splitlines():
                rep.say("      " + line)
        if n == min(sizes.firms):
            _control(scale, rep)
        shutil.rmtree(scale.base, ignore_errors=True)
    if len(results) > 1:
        a, z = results[0], results[-1]
        grow = z[1] / a[1]
        rep.say(f"growth {a[0]}→{z[0]} firms (months ×{grow:.1f}): warm ×{z[4].wall / a[4].wall:.2f}, "
                f"--full ×{z[5].wall / a[5].wall:.2f}, first ×{z[3].wall / a[3].wall:.2f}, "
                f"sha256sum ×{z[7].wall / a[7].wall:.2f}, warm peak RSS {mb(a[4].hwm_sum)} → {mb(z[4].hwm_sum)}")
        rep.row("check-local", f"growth {a[1]} → {z[1]} months (×{grow:.1f}): warm / --full time",
                f"×{z[4].wall / a[4].wall:.2f} / ×{z[5].wall / a[5].wall:.2f}",
                f"sha256sum ×{z[7].wall / a[7].wall:.2f}", "", "(info)", None)


BENCHES = {"localcheck": bench_localcheck}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "timed runs per figure (best is kept)")
    ap.add_argument("--firms", help="comma list of firm counts (default 30,100,300; 4,8 with --quick)")
    ap.add_argument("--months", type=int, help="months per firm (default 120; 12 with --quick)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of a warm in-process check")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sizes = Sizes(tuple(int(x) for x in args.firms.split(",")) if args.firms else sizes.firms,
                  args.months or sizes.months, args.repeats or sizes.repeats)
    work, info, rep = start("local file check benchmark", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    benches = [(n, lambda n=n: BENCHES[n](rep, work, sizes, args.profile)) for n in names]
    return run_all(rep, benches, info, argv, work, "localcheck-results", "python bench/localcheck_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
