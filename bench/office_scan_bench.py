#!/usr/bin/env python
"""Office-scale scan benchmark (issue 12 §3, engine side): what every action runs first —
`engine.verify.verify_roots(firm folders, FileCache(...))` — on an office of 300 firms × 120 months,
against `find DIRS -type f | wc -l` measured in the same run.

    python bench/office_scan_bench.py              # 30, 100, 300 firms × 120 months (36 000 months, 237 600 files)
    python bench/office_scan_bench.py --quick      # 4, 8 firms × 12 months, a few seconds
    python bench/office_scan_bench.py --firms 300 --repeats 1

Test data: bench/localcheck_bench.py's tree (`ensure_tree`: one real signed, GİB-approved month per
firm and period, GİB's folder layout), generated once and only read here. A smaller scale is the first
N firm folders of the same tree.

Every figure is a fresh process (`python bench/office_scan_bench.py --child ...`, only the engine
imported) measured from spawn to exit, with its peak memory (VmHWM, from /proc):
- cold scan: `scan()` with an empty verify cache (reads the ledgers' headers for the branch);
- warm scan: `scan()` with the verify cache warm;
- warm verify_roots: `verify_roots()` with the verify cache warm — scan, then each month's verdict
  from the cache — as `actions._Run.scan` runs it before every action;
- the verify cache is made warm once per run by a `verify_roots()` over the largest scale (the first
  time, with an empty cache, that is the full cold verification of every file: reported, not a target;
  the cache is kept in the work folder between runs, so later runs only check it).
Baseline `find DIRS -type f | wc -l` over the same folders, interleaved with the warm runs.

Targets (issue 12 §3): verify_roots warm < 10 s and scan cold < 2 min at 300 firms × 120 months, both
growing linearly (s per file at the largest scale ≤ 1.5× the smallest), peak memory < 300 MB.

Prints `RATIO` and `TARGET ... MET` / `NOT MET` lines; writes office-scan-results.{md,txt}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]


def _hwm() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def child(what: str, cache_path: str, folders_file: str) -> int:
    """One measured run in this fresh process: prints one JSON line with counts and phase times."""
    t0 = time.perf_counter()
    from edefter_helper.engine import verify as V
    from edefter_helper.engine.cache import FileCache

    folders = [Path(x) for x in Path(folders_file).read_text().splitlines() if x]
    t_import = time.perf_counter() - t0
    spent = {"scan": 0.0}
    real_scan = V.scan

    def timed_scan(*a, **k):
        s0 = time.perf_counter()
        try:
            return real_scan(*a, **k)
        finally:
            spent["scan"] += time.perf_counter() - s0

    V.scan = timed_scan
    cache = FileCache(Path(cache_path))
    t1 = time.perf_counter()
    if what == "scan":
        result = timed_scan(folders, cache)
    else:
        result = V.verify_roots(folders, cache)
    t_work = time.perf_counter() - t1
    cache.close()
    out = {"sets": len(result.sets), "files": sum(len(ms.files) for ms in result.sets),
           "complete": sum(1 for ms in result.sets if ms.complete),
           "valid": sum(1 for ms in result.sets if ms.valid),
           "import": t_import, "work": t_work, "scan": spent["scan"], "verify": t_work - spent["scan"],
           "hwm": _hwm()}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    raise SystemExit(child(*sys.argv[2:5]))

import run as R  # noqa: E402  (bench/run.py's helpers)
from localcheck_bench import FULL, QUICK, Sizes, _vkn, ensure_tree  # noqa: E402  (the same office tree and sizes)
from run import BenchError, Report, best, chosen, common_args, mb, run_all, run_measured, start  # noqa: E402

WARM_LIMIT = 10.0  # s, verify_roots warm at 300 firms × 120 months
COLD_LIMIT = 120.0  # s, scan cold at the same scale
MEMORY_LIMIT = 300 * R.MB


class Office:
    """Folders of the first N firms, the kept warm verify cache and a data folder without GİB
    certificates (the trust list is the same in every run)."""

    def __init__(self, work: Path, root: Path, months: int):
        self.root = root
        self.base = work / f"office-scan-{months}m"
        self.base.mkdir(parents=True, exist_ok=True)
        self.warm_cache = self.base / "verify-cache.sqlite3"
        self.data = self.base / "data"
        self.data.mkdir(exist_ok=True)
        self.env = dict(os.environ)
        for name in ("EDEFTER_CACHE", "EDEFTER_JOURNAL", "EDEFTER_GIB_TRUST"):
            self.env.pop(name, None)
        self.env.update({"EDEFTER_DATA_DIR": str(self.data), "PYTHONIOENCODING": "utf-8"})

    def folders(self, firms: int) -> Path:
        path = self.base / f"folders-{firms}.txt"
        path.write_text("".join(f"{self.root / _vkn(i)}\n" for i in range(firms)))
        return path

    def dirs(self, firms: int) -> str:
        return " ".join(f"'{self.root / _vkn(i)}'" for i in range(firms))

    def run(self, what: str, firms: int, cache: Path) -> tuple[R.Run, dict]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", what, str(cache), str(self.folders(firms))]
        r = run_measured(cmd, self.env)
        try:
            data = json.loads(r.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchError(f"{what} ({firms} firms): exit {r.rc}: {r.stdout[-1500:]!r} {r.stderr[-3000:]!r}") from None
        if r.rc != 0:
            raise BenchError(f"{what} ({firms} firms): exit {r.rc}: {r.stderr[-3000:]!r}")
        return r, data

    def cold_cache(self, firms: int) -> Path:
        path = self.base / f"cold-{firms}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return path


def _expect(data: dict, firms: int, months: int, what: str, verified: bool) -> None:
    want = firms * months
    if data["sets"] != want or data["complete"] != want or (verified and data["valid"] != want):
        raise BenchError(f"{what} ({firms} firms): {data['sets']} months, {data['complete']} complete, "
                         f"{data['valid']} valid; expected {want} of each")


def bench_office(rep: Report, work: Path, sizes: Sizes) -> None:
    root, _lists = ensure_tree(work, max(sizes.firms), sizes.months)
    office = Office(work, root, sizes.months)
    top = max(sizes.firms)
    rep.say(f"== office scan: {sizes.firms} firms × {sizes.months} months, real signed months (7 files each, "
            f"6 before 2019), every run a fresh process ==")
    load = os.getloadavg()
    warmup, wdata = office.run("verify", top, office.warm_cache)
    _expect(wdata, top, sizes.months, "verify cache warm-up", True)
    rep.say(f"verify cache warm-up ({top} firms, kept in {office.warm_cache.name} between runs): {warmup.wall:.1f} s, "
            f"peak {mb(warmup.hwm_sum)}, load average before {load[0]:.2f} — a full cold verification of every "
            f"file when the cache was empty, a warm check otherwise (info, not a target)")
    results = []
    for n in sizes.firms:
        load0 = os.getloadavg()
        finds, warm_scans, warm_verifies, colds = [], [], [], []
        for _ in range(sizes.repeats):  # interleaved: drifting machine load hits every side alike
            finds.append(run_measured(["sh", "-c", f"find {office.dirs(n)} -type f | wc -l"], office.env))
            warm_scans.append(office.run("scan", n, office.warm_cache))
            warm_verifies.append(office.run("verify", n, office.warm_cache))
        for _ in range(1 if n == top and sizes.repeats > 1 else sizes.repeats):
            colds.append(office.run("scan", n, office.cold_cache(n)))
        office.cold_cache(n)  # not kept: 40 MB of headers per 100 firms
        load1 = os.getloadavg()
        files = warm_verifies[0][1]["files"]
        counted = int(best(finds).stdout.strip() or 0)
        if counted != files:
            raise BenchError(f"find counted {counted} files, scan listed {files}")
        for r, d in warm_scans + colds:
            _expect(d, n, sizes.months, "scan", False)
        for r, d in warm_verifies:
            _expect(d, n, sizes.months, "verify_roots", True)
        fd = best(finds)
        ws = min(warm_scans, key=lambda x: x[0].wall)
        wv = min(warm_verifies, key=lambda x: x[0].wall)
        cs = min(colds, key=lambda x: x[0].wall)
        peak = max(x[0].hwm_sum for x in warm_scans + warm_verifies + colds)
        months = n * sizes.months
        results.append((n, files, cs, ws, wv, fd, peak))
        rep.say(f"{n:>4} firms, {months:>6} months, {files:>7} files:")
        rep.say(f"   scan cold (empty cache, headers read): {cs[0].wall:.2f} s "
                f"(in-process {cs[1]['work']:.2f} s + start {cs[1]['import']:.2f} s), peak {mb(cs[0].hwm_sum)}")
        rep.say(f"   scan warm: best {ws[0].wall:.2f} s of {[round(x[0].wall, 2) for x in warm_scans]} "
                f"(in-process {ws[1]['work']:.2f} s), peak {mb(ws[0].hwm_sum)}")
        rep.say(f"   verify_roots warm: best {wv[0].wall:.2f} s of {[round(x[0].wall, 2) for x in warm_verifies]} "
                f"(in-process scan {wv[1]['scan']:.2f} s + verdicts {wv[1]['verify']:.2f} s, start "
                f"{wv[1]['import']:.2f} s; {wv[0].wall / months * 1000:.3f} ms/month), peak {mb(wv[0].hwm_sum)}")
        rep.say(f"   find|wc -l: best {fd.wall:.3f} s of {[round(x.wall, 3) for x in finds]}")
        rep.say("   load average (1/5/15 min) before / after: " + " / ".join(
            " ".join(f"{x:.2f}" for x in la) for la in (load0, load1)))
        rep.say("   " + R.other_load([("scan cold", [x[0] for x in colds]), ("scan warm", [x[0] for x in warm_scans]),
                                      ("verify_roots warm", [x[0] for x in warm_verifies]), ("find", finds)]))
        rep.ratio(f"verify_roots warm/find|wc ({n} firms)", wv[0].wall, fd.wall, "find|wc")
        rep.ratio(f"scan warm/find|wc ({n} firms)", ws[0].wall, fd.wall, "find|wc")
        rep.ratio(f"scan cold/find|wc ({n} firms)", cs[0].wall, fd.wall, "find|wc")
        is_top = n == top
        rep.row("office scan", f"{n} firms × {sizes.months} = {months} months, {files} files: verify_roots warm",
                f"{wv[0].wall:.2f} s", f"find\\|wc {fd.wall:.3f} s", f"{wv[0].wall / fd.wall:.0f}×",
                f"< {WARM_LIMIT:g} s" if is_top else "(info)", wv[0].wall < WARM_LIMIT if is_top else None)
        rep.row("office scan", f"{months} months: scan warm / cold", f"{ws[0].wall:.2f} s / {cs[0].wall:.2f} s",
                f"find\\|wc {fd.wall:.3f} s", f"{ws[0].wall / fd.wall:.0f}× / {cs[0].wall / fd.wall:.0f}×",
                f"cold < {COLD_LIMIT:g} s" if is_top else "(info)", cs[0].wall < COLD_LIMIT if is_top else None)
        rep.row("office scan", f"{months} months: peak memory (VmHWM) verify_roots warm / scan warm / scan cold",
                f"{mb(wv[0].hwm_sum)} / {mb(ws[0].hwm_sum)} / {mb(cs[0].hwm_sum)}", "", "",
                f"< {MEMORY_LIMIT // R.MB} MB", peak < MEMORY_LIMIT)
        rep.target(f"peak memory < {MEMORY_LIMIT // R.MB} MB ({n} firms: verify_roots warm, scans warm and cold)",
                   peak < MEMORY_LIMIT, mb(peak))
    a, z = results[0], results[-1]
    rep.target(f"verify_roots warm < {WARM_LIMIT:g} s at {z[0]} firms × {sizes.months} months", z[4][0].wall < WARM_LIMIT,
               f"{z[4][0].wall:.2f} s")
    rep.target(f"scan cold < {COLD_LIMIT:g} s at {z[0]} firms × {sizes.months} months", z[2][0].wall < COLD_LIMIT,
               f"{z[2][0].wall:.2f} s")
    if len(results) > 1:
        grow = z[1] / a[1]
        per = {k: (a[i][0].wall / a[1], z[i][0].wall / z[1]) for k, i in (("verify_roots warm", 4), ("scan warm", 3),
                                                                          ("scan cold", 2))}
        rep.say(f"growth {a[0]}→{z[0]} firms (files ×{grow:.1f}): " + ", ".join(
            f"{k} ×{z[i][0].wall / a[i][0].wall:.2f}" for k, i in (("verify_roots warm", 4), ("scan warm", 3),
                                                                   ("scan cold", 2))) +
                f", find ×{z[5].wall / a[5].wall:.2f}, peak memory {mb(a[6])} → {mb(z[6])}")
        for k, (p0, p1) in per.items():
            rep.target(f"{k} grows linearly (s per 1 000 files at {z[0]} firms ≤ 1.5× at {a[0]})", p1 <= 1.5 * p0,
                       f"{p0 * 1000:.3f} → {p1 * 1000:.3f} s/1000 files")
        rep.row("office scan", f"growth {a[1]} → {z[1]} files (×{grow:.1f}): verify_roots warm / scan warm / cold",
                " / ".join(f"×{z[i][0].wall / a[i][0].wall:.2f}" for i in (4, 3, 2)),
                f"find ×{z[5].wall / a[5].wall:.2f}", "", "linear",
                all(p1 <= 1.5 * p0 for p0, p1 in per.values()))


BENCHES = {"office": bench_office}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "timed runs per warm figure (best is kept)")
    ap.add_argument("--firms", help="comma list of firm counts (default 30,100,300; 4,8 with --quick)")
    ap.add_argument("--months", type=int, help="months per firm (default 120; 12 with --quick)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sizes = Sizes(tuple(int(x) for x in args.firms.split(",")) if args.firms else sizes.firms,
                  args.months or sizes.months, args.repeats or sizes.repeats)
    work, info, rep = start("office scan benchmark", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    benches = [(n, lambda n=n: BENCHES[n](rep, work, sizes)) for n in names]
    return run_all(rep, benches, info, argv, work, "office-scan-results", "python bench/office_scan_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
