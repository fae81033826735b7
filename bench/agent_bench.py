#!/usr/bin/env python
"""Background agent benchmark (issue 10): CPU and memory of `edefter agent run` when nothing happens.

    python bench/agent_bench.py              # 300 firms × 120 months (252 000 files), ~5 min
    python bench/agent_bench.py --quick      # 10 firms × 24 months, a 10 s window, ~20 s
    python bench/agent_bench.py --firms 100 --months 60 --window 120 --interval 30

idle:   the agent (`python -m edefter_helper.agent run`, a process of its own, watchdog on) over a
        tree of F firms × M months, every firm Otomatik Yedekleme = Evet with its own e-Defter folder.
        One real month is hardlinked under every firm's every period (as bench/run.py's scan tree):
        the months need not be valid, since idle means nothing to send — every month is already
        Yedeklendi in the journal (written straight into it, not timed), except the last month of W
        firms, which waits for GİB's berats (those W folders are watched for file events, as in an
        office where some months are always under way). Once the agent has listed the tree, settled
        every month and found nothing to do, its CPU time (utime + stime of all its threads, /proc) is
        read over whole rescan periods (from just after one rescan to just after the last: at least a
        minute with the defaults) and its RSS sampled meanwhile. Targets: CPU < 1 % averaged over a
        minute, memory < 100 MB. Baselines in the same run: `find ROOT -type d | wc -l` (the cheapest
        walk of the folders) and a warm `edefter scan ROOT` (what rescanning with the engine every
        interval would cost).

Prints `RATIO` and `TARGET ... MET` / `NOT MET` lines like bench/run.py; writes agent-results.md /
agent-results.txt into the work folder. Needs Linux (/proc). The tree is built once and reused
(delete bench/_work/*/agent-* to start over). Exit status 1 when the benchmark failed (the agent did
not reach idle, sent something, or did not stop cleanly); targets may still be missed with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from run import (BenchError, Report, best, chosen, common_args, edefter_cmd, fresh_env, mb, periods_back, repeat,  # noqa: E402
                 run_all, run_measured, start)

TEMPLATE_VKN = "4810525635"
TEMPLATE_PERIOD = "2024-12"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    firms: int
    months: int
    window: float  # seconds of idle measured
    interval: float  # the agent's rescan interval
    settle: float
    waiting: int  # firms whose last month waits for GİB's berats: their folders are watched for events


FULL = Sizes(firms=300, months=120, window=60.0, interval=60.0, settle=10.0, waiting=30)
QUICK = Sizes(firms=10, months=24, window=10.0, interval=2.0, settle=1.0, waiting=2)


def _vkn(i: int) -> str:
    return f"{6000000000 + i * 7919:010d}"


# -- test data (not timed) -----------------------------------------------------------------------

def ensure_tree(work: Path, sizes: Sizes) -> tuple[Path, int]:
    """ROOT/VKN/YYYY/MM/ with one real month's files hardlinked under every firm and period, names
    rewritten to that firm and period (contents stay the template's: nothing is sent when idle). The
    first `waiting` firms' last month has no GİB berats yet (a month in progress, as every office has)."""
    from edefter_helper.samples.month import write_month

    name = f"{sizes.firms}x{sizes.months}-{sizes.waiting}"
    root = work / f"agent-tree-{name}"
    marker = work / f".agent-tree-{name}.complete"
    copies = work / f"agent-tree-{name}-sablon"  # the template's copies the tree links to
    if marker.exists():
        return root, int(marker.read_text())
    for old_tree in (root, copies):
        if old_tree.exists():
            shutil.rmtree(old_tree)
    template = work / "agent-template"
    if not (template / ".complete").exists():
        if template.exists():
            shutil.rmtree(template)
        write_month(template, TEMPLATE_VKN, TEMPLATE_PERIOD, entries=20)
        (template / ".complete").write_text("ok\n")
    old = f"{TEMPLATE_VKN}-{TEMPLATE_PERIOD.replace('-', '')}-"
    t0 = time.perf_counter()
    count = 0
    periods = periods_back(sizes.months)
    # a file takes at most 65 000 links (ext4): every 20 000 months link a fresh copy of the template
    files = []
    for i in range(sizes.firms):
        vkn = _vkn(i)
        for j, period in enumerate(periods):
            if (i * len(periods) + j) % 20_000 == 0:
                copy = copies / str(len(list(copies.glob("*"))) if copies.exists() else 0)
                copy.mkdir(parents=True)
                files = []
                for p in sorted(template.iterdir()):
                    if p.is_file() and not p.name.startswith("."):
                        shutil.copy2(p, copy / p.name)
                        files.append(copy / p.name)
            dest = root / vkn / period[:4] / period[5:]
            dest.mkdir(parents=True)
            new = f"{vkn}-{period.replace('-', '')}-"
            for p in files:
                if i < sizes.waiting and period == periods[-1] and p.name.startswith("GIB-"):
                    continue
                os.link(p, dest / p.name.replace(old, new))
                count += 1
    marker.write_text(str(count))
    print(f"(built {root.name}: {count} files in {time.perf_counter() - t0:.1f} s, not timed)", flush=True)
    return root, count


def make_workbook(work: Path, root: Path, sizes: Sizes, env: dict) -> Path:
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    wb = work / f"agent-kontrol-{sizes.firms}.xlsm"
    if wb.exists():
        wb.unlink()
    proc = subprocess.run(edefter_cmd() + ["workbook", "new", str(wb)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise BenchError(f"edefter workbook new: {proc.stderr}")
    nas = work / "agent-nas"
    if nas.exists():
        shutil.rmtree(nas)
    nas.mkdir()
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": f"Deneme Firma {i} A.Ş.", "vkn": _vkn(i), "folder": str(root / _vkn(i)),
                               "target": "NAS", "auto": "Evet"} for i in range(sizes.firms)])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    return wb


def backed_up_journal(path: Path, wb: Path, sizes: Sizes) -> int:
    """Every month Yedeklendi for its firm's target: written straight into the journal's months table
    (36 000 attempts one by one would take minutes and are not what is measured)."""
    from edefter_helper import status as S
    from edefter_helper.agent import SettingsBook
    from edefter_helper.journal import Journal, now
    from edefter_helper.settings import read_settings, target_identity

    if path.exists():
        path.unlink()
    Journal(path).close()  # the schema
    firms, targets, _ = read_settings(SettingsBook(wb))
    stamp = now()
    periods = periods_back(sizes.months)
    rows = [(f.vkn, "0000", p, target_identity(targets.get(f.target), f), S.code(S.BACKED_UP),
             S.backed_up_message(p), "0" * 64, "", stamp) for i, f in enumerate(firms) for p in periods
            if not (i < sizes.waiting and p == periods[-1])]
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO months (vkn, branch, period, target, status, message, package_sha256, receipt,"
                       " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    return len(rows)


# -- measuring ------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, every thread


def memory(pid: int) -> tuple[int, int]:
    """(RSS, VmHWM) in bytes."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith(b"VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def state(data_dir: Path) -> dict:
    for p in (data_dir / "agent").glob("*.json"):
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    return {}


def _next_scan(data: Path, proc, after: int, sizes: Sizes) -> tuple[int, int]:
    """Wait until the agent has done a rescan after number `after`: (the new count, the largest RSS
    sampled meanwhile)."""
    limit = sizes.interval * 3 + 60
    deadline = time.monotonic() + limit
    peak = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the agent exited {proc.returncode}")
        scans = state(data).get("scans", 0)
        if scans > after:
            return scans, peak
        peak = max(peak, memory(proc.pid)[0])
        time.sleep(0.1)
    raise BenchError(f"no rescan within {limit:g} s")


def bench_idle(rep: Report, work: Path, sizes: Sizes) -> None:
    months = sizes.firms * sizes.months
    rep.say(f"== idle agent: {sizes.firms} firms × {sizes.months} months ({sizes.waiting} with a month waiting for "
            f"GİB), rescan every {sizes.interval:g} s, window {sizes.window:g} s ==")
    root, count = ensure_tree(work, sizes)
    data = work / "agent-data"
    env = fresh_env(data)
    wb = make_workbook(work, root, sizes, env)
    journal = data / "journal.sqlite3"
    rows = backed_up_journal(journal, wb, sizes)
    if rows != months - sizes.waiting:
        raise BenchError(f"journal has {rows} months, expected {months}")
    dirs = int(subprocess.run(["sh", "-c", f"find '{root}' -type d | wc -l"], capture_output=True,
                              text=True).stdout.strip() or 0)
    cmd = [sys.executable, "-m", "edefter_helper.agent", "run", "--workbook", str(wb), "--journal", str(journal),
           "--interval", f"{sizes.interval:g}", "--settle", f"{sizes.settle:g}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        # idle: the whole tree listed, every month settled and found backed up, a rescan done since
        deadline = time.monotonic() + max(600.0, months / 20)
        st = {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"the agent exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            st = state(data)
            if st.get("months") == months and st.get("pending") == 0 and st.get("scans", 0) >= 2:
                break
            time.sleep(0.2)
        else:
            raise BenchError(f"the agent did not reach idle: {st}")
        startup = time.perf_counter() - t0
        startup_cpu = cpu_seconds(proc.pid)
        _, startup_hwm = memory(proc.pid)
        # the window is whole rescan periods: from just after one rescan to just after the last one, so
        # the average holds every rescan it should (the agent writes its state at the end of each cycle)
        periods = max(1, round(sizes.window / sizes.interval))
        scans0, _ = _next_scan(data, proc, st["scans"], sizes)
        c0, w0 = cpu_seconds(proc.pid), time.perf_counter()
        peak = 0
        seen = scans0
        while seen < scans0 + periods:
            seen, sampled = _next_scan(data, proc, seen, sizes)
            peak = max(peak, sampled)
        c1, w1 = cpu_seconds(proc.pid), time.perf_counter()
        rss, hwm = memory(proc.pid)
        peak = max(peak, rss)
        st = state(data)
        scans = seen - scans0
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise BenchError("the agent did not stop on SIGTERM within 120 s") from None
        err = proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0 or "Traceback" in err:
        raise BenchError(f"the agent exited {rc}: {err[-2000:]}")
    sent = list((work / "agent-nas").rglob("*.zip"))
    db = sqlite3.connect(journal)
    tried = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    db.close()
    if sent or tried:
        raise BenchError(f"an idle agent sent something: {len(sent)} packages, {tried} attempts")
    cpu = (c1 - c0) / (w1 - w0) * 100
    per_interval = (c1 - c0) / (w1 - w0) * sizes.interval
    rep.say(f"tree: {count} files, {dirs} folders, {sizes.waiting} firms with a month waiting for GİB; startup to "
            f"idle {startup:.1f} s ({startup_cpu:.1f} s CPU, peak RSS {mb(startup_hwm)}); firm folders watched for "
            f"file events: {st.get('watching')} (the rest: rescan only)")
    if st.get("watching") != sizes.waiting:
        raise BenchError(f"expected the {sizes.waiting} firms with a month in progress to be watched, "
                         f"not {st.get('watching')}")
    rep.say(f"idle: {c1 - c0:.3f} s CPU in {w1 - w0:.1f} s ({scans} rescans) = {cpu:.3f} % of one core; "
            f"RSS {mb(rss)} (peak in window {mb(peak)}, high-water since start {mb(hwm)})")

    find = best(repeat(["sh", "-c", f"find '{root}' -type d | wc -l"], 3))
    senv = fresh_env(work / "agent-data-scan")
    cold = run_measured(edefter_cmd() + ["scan", str(root), "--json"], senv, sample=False)
    warm = best(repeat(edefter_cmd() + ["scan", str(root), "--json"], 1, senv, check=False) + [cold])
    rep.say(f"baselines: find -type d {find.wall:.3f} s; edefter scan cold {cold.wall:.2f} s, warm {warm.wall:.2f} s")
    rep.ratio("idle CPU per rescan interval/find -type d", per_interval, find.wall, "find -type d")
    rep.ratio("idle CPU per rescan interval/edefter scan warm", per_interval, warm.wall, "scan warm")
    rep.row("agent idle", f"{sizes.firms} firms × {sizes.months} months ({count} files, {dirs} folders): CPU",
            f"{cpu:.3f} %", f"scan warm {warm.wall:.2f} s / {sizes.interval:g} s "
            f"= {warm.wall / sizes.interval * 100:.1f} %", f"{per_interval / warm.wall:.3f}×", "< 1 %", cpu < 1)
    rep.row("agent idle", "memory (RSS at the end / peak in window)", f"{mb(rss)} / {mb(peak)}", "", "",
            "< 100 MB", peak < 100 * 1024 * 1024)
    rep.row("agent", "startup to idle (list tree, settle, journal check)", f"{startup:.1f} s, {mb(startup_hwm)} peak",
            "", "", "(info)", None)
    rep.target(f"idle CPU < 1 % averaged over {w1 - w0:.0f} s ({sizes.firms} firms × {sizes.months} months)",
               cpu < 1, f"{cpu:.3f} %")
    rep.target("idle memory < 100 MB", peak < 100 * 1024 * 1024, f"RSS peak {mb(peak)}")


BENCHES = {"idle": bench_idle}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "(unused: one window is measured)")
    ap.add_argument("--firms", type=int, help="firms (default 300, 10 with --quick)")
    ap.add_argument("--months", type=int, help="months per firm (default 120, 24 with --quick)")
    ap.add_argument("--window", type=float, help="seconds of idle measured (default 60, 10 with --quick)")
    ap.add_argument("--interval", type=float, help="the agent's rescan interval (default 60, 2 with --quick)")
    ap.add_argument("--waiting", type=int, help="firms with a month waiting for GİB (default 30, 2 with --quick)")
    args = ap.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("agent_bench.py reads /proc: Linux only")
        return 1
    s = QUICK if args.quick else FULL
    sizes = Sizes(args.firms or s.firms, args.months or s.months, args.window or s.window,
                  args.interval or s.interval, s.settle, s.waiting if args.waiting is None else args.waiting)
    work, info, rep = start("background agent benchmark", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    benches = [(n, lambda n=n: BENCHES[n](rep, work, sizes)) for n in names]
    return run_all(rep, benches, info, argv, work, "agent-results", "python bench/agent_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
