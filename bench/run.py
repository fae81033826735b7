#!/usr/bin/env python
"""Engine benchmarks (issue 2): verify and pack of a big month, scan of many firms × months.

    python bench/run.py            # full sizes (1 GB month, 100 firms × 120 months), several minutes
    python bench/run.py --quick    # small sizes, well under a minute (run by tests/test_bench_quick.py)
    python bench/run.py --only verify,pack --work /tmp/w
    python bench/run.py --only verify-crlf,verify-windows   # the month as other producers write it

verify-crlf / verify-windows (issue 7) verify the same kind of month written in the shapes of
edefter_helper.samples.producers (CRLF line ends; BOM + CRLF + one tag per line + attribute order +
<x/>), generated once next to the canonical one, by the same method.

The real `edefter` command runs as a subprocess for every timed engine figure; baselines
(sha256sum, zip, find) are measured in the same run, on the same files, with the page cache
warm for both sides. Generating the test data is not timed and is reused between runs
(delete bench/_work/ to start over). Every benchmark prints its figures, a `RATIO` line
against its baseline and `TARGET ... MET` / `NOT MET` lines. Exit status: 0 when every
benchmark ran and the engine gave the expected answers (targets may still be missed),
1 when a command failed or answered wrongly.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_WORK = HERE / "_work"

VKN = "1234567890"
PERIOD = "2024-01"
MB = 1024 * 1024


# -- sizes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    parts: int
    part_mb: float
    repeats: int
    firms: tuple[int, ...]
    months: int


FULL = Sizes(parts=5, part_mb=200, repeats=2, firms=(25, 50, 100), months=120)
# 40 MiB parts are above verify's PARALLEL_BYTES (32 MiB), so the worker pool is exercised too
QUICK = Sizes(parts=2, part_mb=40, repeats=1, firms=(2, 4, 8), months=12)


# -- measuring a process tree ----------------------------------------------------------------

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ..." - comm may contain spaces/parens: split after the last ')'
        ppid = int(data[data.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _tree(pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def _mem(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, high-water RSS) in bytes; zeros when the process is gone."""
    rss = pss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
                elif line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    return rss, pss, hwm


@dataclass
class Run:
    cmd: list[str]
    wall: float
    rc: int
    max_rss: int  # largest single process in the tree: the highest VmHWM seen. (wait4's ru_maxrss is not
    #             used: after fork+exec it still holds the forking bench process's own RSS.)
    tree_rss: int  # peak of the sum of RSS over the tree (sampled; shared pages counted per process)
    tree_pss: int  # peak of the sum of PSS over the tree (sampled; shared pages split)
    hwm_sum: int  # sum over every process seen of its own high-water RSS (VmHWM): an upper bound of the
    #             tree's peak that short spikes between samples cannot escape
    procs: int  # most processes seen at once in the tree
    stdout: bytes = b""
    stderr: bytes = b""
    other_cpu: float = 0.0  # CPU seconds the rest of the machine used meanwhile (see busy_seconds)
    hwm_each: tuple[int, ...] = ()  # every process's own VmHWM, largest first (hwm_sum is their sum)
    cpu: float = 0.0  # CPU seconds of the command and the children it waited for (wait4's rusage)

    @property
    def other_cores(self) -> float:
        """Cores the rest of the machine kept busy on average while this ran (a shared machine)."""
        return self.other_cpu / self.wall if self.wall else 0.0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    return (sum(vals) - vals[3] - vals[4]) / CLK_TCK


def run_measured(cmd: list[str], env: dict | None = None, sample: bool = True,
                 kill_when: "Callable[[], bool] | None" = None) -> Run:
    """Run cmd, timing wall clock; sample the tree's memory from /proc (see sampler). `kill_when`:
    asked about every half second; when it answers True the command is killed (SIGKILL, as a power
    cut or a killed task would stop it) and its exit code is -9."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        peak = {"rss": 0, "pss": 0, "procs": 0}
        hwm: dict[int, int] = {}
        done = threading.Event()
        busy0 = busy_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)

        def sampler():
            # the process list is re-read every 0.25 s (a /proc walk costs CPU this 2-core box
            # needs for the measured command); memory of the known pids every 50 ms. Peaks that
            # fall between samples are still caught per process by VmHWM.
            pids, listed, asked = [proc.pid], 0.0, 0.0
            while not done.is_set():
                now = time.perf_counter()
                if now - listed > 0.25:
                    pids, listed = _tree(proc.pid), now
                if kill_when is not None and now - asked > 0.5:
                    asked = now
                    if kill_when():
                        for p in reversed(pids):  # children first: none is left behind
                            try:
                                os.kill(p, 9)
                            except OSError:
                                pass
                rss = pss = 0
                for p in pids:
                    r, s, h = _mem(p)
                    rss += r
                    pss += s
                    if h:
                        hwm[p] = max(hwm.get(p, 0), h)
                peak["rss"] = max(peak["rss"], rss)
                peak["pss"] = max(peak["pss"], pss)
                peak["procs"] = max(peak["procs"], len(pids))
                done.wait(0.05)

        thread = threading.Thread(target=sampler, daemon=True) if sample or kill_when else None
        if thread:
            thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        # everything the machine did meanwhile, less the command's own CPU (its reaped children
        # included) and this process's sampler: what other people's work took from the command
        other = busy_seconds() - busy0 - usage.ru_utime - usage.ru_stime
        done.set()
        if thread:
            thread.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(cmd, wall, proc.returncode, max(hwm.values(), default=0), peak["rss"], peak["pss"],
                   sum(hwm.values()), peak["procs"], out.read(), err.read(), max(other, 0.0),
                   tuple(sorted(hwm.values(), reverse=True)), usage.ru_utime + usage.ru_stime)


def other_load(sides: list[tuple[str, list[Run]]]) -> str:
    """One line: the cores other processes kept busy during each timed run (sampler included, ~0.05)."""
    return "other processes during each run (cores busy on average): " + "; ".join(
        f"{name} " + " ".join(f"{r.other_cores:.2f}" for r in runs) for name, runs in sides)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def repeat(cmd, n: int, env=None, check=True) -> list[Run]:
    runs = []
    for _ in range(n):
        r = run_measured(cmd, env)
        if check and r.rc != 0:
            raise BenchError(f"{' '.join(map(str, cmd))} exited {r.rc}: {r.stderr.decode(errors='replace')[-2000:]}")
        runs.append(r)
    return runs


class BenchError(Exception):
    pass


class PhaseTimer:
    """Wall time spent inside named functions while an action runs in this process (where the
    time goes, without a profiler's overhead): wrap(module_or_class, "attr", "name"), then restore().
    Also the RSS each call leaves behind (read from /proc/self/statm: cheap). `first_only` times
    only the first call (a lazy loader called on every lookup)."""

    def __init__(self):
        self.spent: dict[str, float] = {}
        self.grew: dict[str, int] = {}  # this process's RSS after the call minus before (memory kept)
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner, attr: str, name: str, first_only: bool = False) -> None:
        original = getattr(owner, attr)
        spent, grew = self.spent, self.grew
        seen = []

        def timed(*args, **kw):
            if first_only and seen:
                return original(*args, **kw)
            seen.append(1)
            rss0 = _self_rss()
            t0 = time.perf_counter()
            try:
                return original(*args, **kw)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
                grew[name] = grew.get(name, 0) + _self_rss() - rss0

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo = []


def _self_rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


# -- helpers ----------------------------------------------------------------------------------

def edefter_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "edefter"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edefter_helper"]


def fresh_env(data_dir: Path) -> dict:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    env = dict(os.environ)
    env["EDEFTER_DATA_DIR"] = str(data_dir)
    env.pop("EDEFTER_CACHE", None)
    return env


def mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)  # (benchmark, figure, value, baseline, ratio, target, met)
    targets: list[tuple[str, bool]] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def ratio(self, name: str, value: float, base: float, base_name: str, unit: str = "s") -> float:
        r = value / base if base else float("inf")
        self.say(f"RATIO {name}: {value:.3f} {unit} / {base_name} {base:.3f} {unit} = {r:.2f}x")
        return r

    def target(self, name: str, met: bool, detail: str) -> None:
        self.say(f"TARGET {name}: {detail} -> {'MET' if met else 'NOT MET'}")
        self.targets.append((name, met))

    def row(self, *cells) -> None:
        self.rows.append(cells)


def ensure_big_month(work: Path, sizes: Sizes, shape: str = "canonical") -> tuple[Path, list[Path]]:
    """The big month, written in `shape` (see edefter_helper.samples.producers); generated once."""
    from edefter_helper.samples.big import write_big_month
    from edefter_helper.samples.producers import write_big_month_as

    suffix = "" if shape == "canonical" else f"-{shape}"
    folder = work / f"month-{sizes.parts}x{sizes.part_mb:g}MB{suffix}"
    marker = folder / ".complete"
    made_by = _generator_id()
    if not marker.exists() or marker.read_text().strip() != made_by:
        if folder.exists():
            shutil.rmtree(folder)
        t0 = time.perf_counter()
        if shape == "canonical":
            write_big_month(folder, VKN, PERIOD, parts=sizes.parts, part_mb=sizes.part_mb)
        else:
            write_big_month_as(folder, shape, VKN, PERIOD, parts=sizes.parts, part_mb=sizes.part_mb)
        print(f"(generated {folder.name} in {time.perf_counter() - t0:.1f} s, not timed)", flush=True)
        marker.write_text(made_by + "\n")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return folder, files


def _generator_id() -> str:
    """A fingerprint of the sample generator's source: a month it wrote is regenerated when it changes."""
    import hashlib

    h = hashlib.sha256()
    for name in ("big", "content", "keys", "month", "producers", "xmlsig"):
        h.update(name.encode() + b"\0" + (REPO / "edefter_helper" / "samples" / f"{name}.py").read_bytes() + b"\0")
    return h.hexdigest()[:16]


def warm_page_cache(files: list[Path]) -> None:
    for p in files:
        with open(p, "rb") as f:
            while f.read(8 * MB):
                pass


# -- 1. verify --------------------------------------------------------------------------------

# the same month written as other producer programs write it (samples.producers): ledgers that
# are not in canonical form, still validly signed. name -> (shape, what the rows call it)
SHAPED_VERIFY = {
    "verify-crlf": ("crlf", "canonical but CRLF line ends"),
    "verify-windows": ("windows", "Windows producer: BOM, CRLF, one tag per line, attribute order, <x/>"),
}


def bench_verify(rep: Report, work: Path, sizes: Sizes, shape: str = "canonical") -> None:
    name = "verify" if shape == "canonical" else f"verify-{shape}"
    folder, files = ensure_big_month(work, sizes, shape)
    total = sum(p.stat().st_size for p in files)
    rep.say(f"== {name}: {len(files)} files, {mb(total)} ({sizes.parts} journal parts of ~{sizes.part_mb:g} MiB"
            + ("" if shape == "canonical" else f", {SHAPED_VERIFY[name][1]}") + ") ==")
    warm_page_cache(files)
    env = fresh_env(work / f"data-{name}")
    load0 = os.getloadavg()
    cmd = edefter_cmd() + ["verify", str(folder), "--no-cache", "--json"]
    base_cmd = ["sha256sum"] + [str(p) for p in files]
    verify_runs, sha_runs = [], []
    for _ in range(sizes.repeats):  # interleaved, so drifting machine load hits both sides alike
        sha_runs += repeat(base_cmd, 1, env)
        verify_runs += repeat(cmd, 1, env, check=False)
    for r in verify_runs:
        if r.rc != 0:
            raise BenchError(f"edefter verify exited {r.rc}: {r.stderr.decode(errors='replace')[-2000:]}")
        sets = json.loads(r.stdout)["sets"]
        if len(sets) != 1 or not sets[0]["valid"]:
            raise BenchError(f"edefter verify did not find one valid month: {r.stdout[:2000]!r}")
    v, s = best(verify_runs), best(sha_runs)
    peak_tree = max(r.tree_rss for r in verify_runs)
    peak_pss = max(r.tree_pss for r in verify_runs)
    peak_single = max(r.max_rss for r in verify_runs)
    # the tree's true peak lies between what was seen at once (or the largest single process)
    # and the sum of every process's own high-water mark
    low = max(peak_tree, peak_single)
    high = max(r.hwm_sum for r in verify_runs)
    rep.say(f"edefter verify --no-cache: best {v.wall:.2f} s of {[round(r.wall, 2) for r in verify_runs]}, "
            f"{total / MB / v.wall:.0f} MB/s")
    rep.say(f"sha256sum:                 best {s.wall:.2f} s of {[round(r.wall, 2) for r in sha_runs]}, "
            f"{total / MB / s.wall:.0f} MB/s")
    # CPU time depends far less on other people's work than wall time does (info, not the target)
    rep.say(f"CPU seconds (user + sys, children included): verify {[round(r.cpu, 2) for r in verify_runs]}, "
            f"sha256sum {[round(r.cpu, 2) for r in sha_runs]}")
    rep.say(f"memory: largest single process {mb(peak_single)} (VmHWM); tree, sampled every 50 ms: "
            f"RSS sum {mb(peak_tree)}, PSS sum {mb(peak_pss)}; sum of per-process high-water marks {mb(high)} "
            f"(up to {v.procs} processes)")
    top = max(verify_runs, key=lambda r: r.hwm_sum)
    rep.say("per-process high-water marks of the run with the highest sum: "
            + " + ".join(mb(h) for h in top.hwm_each))
    rep.say("load average (1/5/15 min) before / after: " + " / ".join(
        " ".join(f"{x:.2f}" for x in la) for la in (load0, os.getloadavg())))
    rep.say(other_load([("verify", verify_runs), ("sha256sum", sha_runs)]))
    ratio = rep.ratio(f"{name}/sha256sum", v.wall, s.wall, "sha256sum")
    rep.target(f"{name} time <= 3x sha256sum", ratio <= 3, f"{ratio:.2f}x")
    mem_ok = high < 150 * MB  # judged on the upper bound: no spike can hide in it
    rep.target(f"{name} peak memory < 150 MB (process tree, upper bound)", mem_ok,
               f"between {mb(low)} and {mb(high)}")
    label = name
    rep.row(label, "wall time", f"{v.wall:.2f} s", f"sha256sum {s.wall:.2f} s", f"{ratio:.2f}x", "≤ 3×", ratio <= 3)
    rep.row(label, "peak memory, process tree: upper bound (Σ per-process VmHWM)", mb(high),
            f"sha256sum {mb(s.max_rss)}", "", "< 150 MB", mem_ok)
    rep.row(label, "peak memory, process tree: sampled RSS sum / PSS sum", f"{mb(peak_tree)} / {mb(peak_pss)}",
            "", "", "(info)", None)
    rep.row(label, "peak memory, largest single process", mb(peak_single), "", "", "(info)", None)


# -- 2. pack ----------------------------------------------------------------------------------

def _zip_baseline(files: list[Path], out: Path) -> tuple[list[str], str]:
    if shutil.which("zip"):
        return ["zip", "-q", "-6", "-j", str(out)] + [str(p) for p in files], "zip -q -6 -j"
    code = ("import sys, zipfile\n"
            "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=6) as z:\n"
            "    [z.write(p, p.rsplit('/', 1)[-1]) for p in sys.argv[2:]]\n")
    return [sys.executable, "-c", code, str(out)] + [str(p) for p in files], "python zipfile level 6 (zip missing)"


def _verified_set(folder: Path):
    """The month as the engine verified it (pack() takes only a verified set); not timed."""
    from edefter_helper.engine.verify import verify_roots

    ms = verify_roots([folder]).sets[0]
    if not ms.valid:
        raise BenchError(f"{folder.name} did not verify: {[p.message for p in ms.problems]}")
    return ms


def _pure_pack(ms, out: Path) -> tuple[float, int]:
    from edefter_helper.engine.package import pack

    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    packed = pack(ms, out)
    return time.perf_counter() - t0, packed.size


def bench_pack(rep: Report, work: Path, sizes: Sizes) -> None:
    folder, files = ensure_big_month(work, sizes)
    total = sum(p.stat().st_size for p in files)
    rep.say(f"== pack: same month, {len(files)} files, {mb(total)} ==")
    warm_page_cache(files)
    out = work / "pack-out"
    zip_out = work / "zip-out" / "baseline.zip"
    zip_out.parent.mkdir(parents=True, exist_ok=True)
    zcmd, zname = _zip_baseline(files, zip_out)
    base = edefter_cmd() + ["pack", str(folder), "--vkn", VKN, "--period", PERIOD, "--out", str(out), "--json"]

    def clean():
        shutil.rmtree(out, ignore_errors=True)
        zip_out.unlink(missing_ok=True)

    cold_env = fresh_env(work / "data-pack-cold")
    warm_env = fresh_env(work / "data-pack-warm")
    # warm the verify cache once, untimed, exactly as a user would have by verifying first
    r = run_measured(edefter_cmd() + ["verify", str(folder)], warm_env, sample=False)
    if r.rc != 0:
        raise BenchError(f"edefter verify (cache warm-up) exited {r.rc}")
    verified = _verified_set(folder)
    cold, warm, zips, pure = [], [], [], []
    for _ in range(sizes.repeats):
        clean()
        zips += repeat(zcmd, 1)
        clean()
        cold += repeat(base + ["--no-cache"], 1, cold_env)
        clean()
        warm += repeat(base, 1, warm_env)
        pure.append(_pure_pack(verified, out))
    packed = json.loads(warm[-1].stdout)
    if not packed.get("packed"):
        raise BenchError(f"edefter pack did not pack: {warm[-1].stdout[:2000]!r}")
    clean()
    z = best(zips)
    repeat(zcmd, 1)
    zips_size = zip_out.stat().st_size
    c, w = best(cold), best(warm)
    p_wall, p_size = min(pure)
    size_ratio = packed["size"] / zips_size
    rep.say(f"{zname}: best {z.wall:.2f} s, {mb(zips_size)}")
    rep.say(f"edefter pack --no-cache (verifies first, cold): best {c.wall:.2f} s")
    rep.say(f"edefter pack (warm verify cache):                best {w.wall:.2f} s, {mb(packed['size'])}")
    rep.say(f"engine.package.pack in-process (pure packing):   best {p_wall:.2f} s")
    rep.say(f"memory: pack warm peak tree RSS {mb(w.tree_rss)} (upper bound {mb(w.hwm_sum)}), "
            f"cold {mb(c.tree_rss)} (upper bound {mb(c.hwm_sum)})")
    r_warm = rep.ratio("pack warm/zip", w.wall, z.wall, "zip")
    r_cold = rep.ratio("pack cold/zip", c.wall, z.wall, "zip")
    r_pure = rep.ratio("pure pack/zip", p_wall, z.wall, "zip")
    rep.ratio("pack size/zip size", packed["size"] / MB, zips_size / MB, "zip", unit="MB")
    rep.target("pack (warm cache) time <= 1x zip", r_warm <= 1, f"{r_warm:.2f}x")
    rep.target("pack output <= 1.1x zip size", size_ratio <= 1.1, f"{size_ratio:.3f}x")
    rep.row("pack", "wall time, warm verify cache", f"{w.wall:.2f} s", f"{zname} {z.wall:.2f} s",
            f"{r_warm:.2f}×", "≤ 1×", r_warm <= 1)
    rep.row("pack", "wall time, cold (--no-cache, full verify)", f"{c.wall:.2f} s", f"{z.wall:.2f} s",
            f"{r_cold:.2f}×", "(info)", None)
    rep.row("pack", "pure packing, in-process pack()", f"{p_wall:.2f} s", f"{z.wall:.2f} s", f"{r_pure:.2f}×",
            "(info)", None)
    rep.row("pack", "output size", mb(packed["size"]), mb(zips_size), f"{size_ratio:.3f}×", "≤ 1.1×",
            size_ratio <= 1.1)
    rep.row("pack", "peak memory, tree upper bound (warm / cold)", f"{mb(w.hwm_sum)} / {mb(c.hwm_sum)}", "", "",
            "(info)",
            None)


# -- 3. scan ----------------------------------------------------------------------------------

def _vkn(i: int) -> str:
    return f"{4000000000 + i * 7919:010d}"


def periods_back(n: int) -> list[str]:
    """The n months up to December 2024, oldest first (the benchmarks' office trees)."""
    out = []
    year, month = 2024, 12
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return sorted(out)


def ensure_scan_tree(work: Path, firms: int, months: int) -> tuple[Path, int]:
    """ROOT/VKN/YYYY/MM/ files: one real signed month per firm, hardlinked under every other
    period's names (scan reads names and, for files without a branch in the name, the header)."""
    from edefter_helper.samples.month import write_month

    templates = work / "scan-templates"
    root = work / f"scan-{firms}x{months}"
    marker = work / f".scan-{firms}x{months}.complete"
    if marker.exists():
        return root, int(marker.read_text())
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    count = 0
    periods = periods_back(months)
    for i in range(firms):
        vkn = _vkn(i)
        tdir = templates / vkn
        if not (tdir / ".complete").exists():
            if tdir.exists():
                shutil.rmtree(tdir)
            write_month(tdir, vkn, "2024-12", entries=20, seed=i, company=f"Deneme Firma {i} Ticaret A.Ş.")
            (tdir / ".complete").write_text("ok\n")
        tfiles = [p for p in tdir.iterdir() if p.is_file() and not p.name.startswith(".")]
        for period in periods:
            dest = root / vkn / period[:4] / period[5:]
            dest.mkdir(parents=True)
            yyyymm = period.replace("-", "")
            for p in tfiles:
                os.link(p, dest / p.name.replace("-202412-", f"-{yyyymm}-"))
                count += 1
    marker.write_text(str(count))
    print(f"(built scan tree {root.name}: {count} files in {time.perf_counter() - t0:.1f} s, not timed)", flush=True)
    return root, count


def bench_scan(rep: Report, work: Path, sizes: Sizes) -> None:
    rep.say(f"== scan: {sizes.firms} firms × {sizes.months} months (hardlinked copies of one real month per firm) ==")
    results = []
    for firms in sizes.firms:
        root, count = ensure_scan_tree(work, firms, sizes.months)
        env = fresh_env(work / f"data-scan-{firms}")
        find = best(repeat(["sh", "-c", f"find '{root}' -type f | wc -l"], max(sizes.repeats, 2)))
        cold = run_measured(edefter_cmd() + ["scan", str(root), "--json"], env)
        warm = best(repeat(edefter_cmd() + ["scan", str(root), "--json"], max(sizes.repeats, 2), env, check=False))
        for r in (cold, warm):
            if r.rc != 0:
                raise BenchError(f"edefter scan exited {r.rc}: {r.stderr.decode(errors='replace')[-2000:]}")
            data = json.loads(r.stdout)
            if len(data["sets"]) != firms * sizes.months or not all(s["complete"] for s in data["sets"]):
                raise BenchError(f"edefter scan found {len(data['sets'])} sets, expected {firms * sizes.months}")
        if int(find.stdout.strip() or 0) != count:
            raise BenchError(f"find counted {find.stdout!r}, expected {count}")
        results.append((firms, count, cold, warm, find))
        rep.say(f"{firms:>4} firms, {count:>6} files: cold {cold.wall:.2f} s ({cold.wall / count * 1000:.3f} s/1000), "
                f"warm {warm.wall:.2f} s ({warm.wall / count * 1000:.3f} s/1000), find|wc {find.wall:.3f} s, "
                f"warm peak RSS {mb(warm.tree_rss)}")
        rep.ratio(f"scan warm/find ({firms} firms)", warm.wall, find.wall, "find|wc")
        rep.ratio(f"scan cold/find ({firms} firms)", cold.wall, find.wall, "find|wc")
        rep.row("scan", f"{firms} firms, {count} files: cold / warm", f"{cold.wall:.2f} s / {warm.wall:.2f} s",
                f"find|wc {find.wall:.3f} s", f"{cold.wall / find.wall:.0f}× / {warm.wall / find.wall:.0f}×",
                "< 3 s warm" if firms == sizes.firms[-1] else "(info)",
                warm.wall < 3 if firms == sizes.firms[-1] else None)
        rep.row("scan", f"{firms} firms: s per 1 000 files cold / warm",
                f"{cold.wall / count * 1000:.3f} / {warm.wall / count * 1000:.3f}", "", "", "linear", None)
    first, last = results[0], results[-1]
    growth_files = last[1] / first[1]
    growth_warm = last[3].wall / first[3].wall
    growth_cold = last[2].wall / first[2].wall
    rep.say(f"growth {first[0]}→{last[0]} firms: files ×{growth_files:.1f}, cold time ×{growth_cold:.2f}, "
            f"warm time ×{growth_warm:.2f}")
    rep.target(f"scan warm < 3 s at {last[0]} firms × {sizes.months} months", last[3].wall < 3, f"{last[3].wall:.2f} s")
    # linear: per-file cost at the largest size within 1.5x of the smallest (fixed start-up cost only helps)
    per_first = first[3].wall / first[1]
    per_last = last[3].wall / last[1]
    rep.target("scan grows linearly (warm s/file at largest ≤ 1.5× smallest)", per_last <= 1.5 * per_first,
               f"{per_first * 1000:.3f} → {per_last * 1000:.3f} s/1000")


# -- main -------------------------------------------------------------------------------------

def machine() -> dict:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    zipv = "missing"
    if shutil.which("zip"):
        zipv = subprocess.run(["zip", "-v"], capture_output=True, text=True).stdout.splitlines()[1].strip()
    return {"nproc": os.cpu_count(), "cpu": model, "memory": mem, "python": platform.python_version(),
            "platform": platform.platform(), "zip": zipv,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


BENCHES = {"verify": bench_verify,
           **{name: (lambda rep, work, sizes, shape=shape: bench_verify(rep, work, sizes, shape))
              for name, (shape, _) in SHAPED_VERIFY.items()},
           "pack": bench_pack, "scan": bench_scan}


def markdown(rep: Report, info: dict, argv: list[str]) -> str:
    out = [f"Date: {info['date']}  ", f"Machine: {info['nproc']} cores, {info['cpu']}, {info['memory']} RAM, "
           f"Python {info['python']}, {info['platform']}, {info['zip']}  ",
           f"Command: `python bench/run.py {' '.join(argv)}`".rstrip(), "",
           "| Benchmark | Figure | Engine | Baseline | Ratio | Target | Met |", "|---|---|---|---|---|---|---|"]
    for b, fig, val, base, ratio, target, met in rep.rows:
        m = "" if met is None else ("yes" if met else "**no**")
        out.append(f"| {b} | {fig} | {val} | {base} | {ratio} | {target} | {m} |")
    out.append("")
    return "\n".join(out)


def common_args(ap: argparse.ArgumentParser, benches: dict, repeats_help: str) -> None:
    """--quick, --only, --work and --repeats, the same in every benchmark script."""
    ap.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    ap.add_argument("--only", default=",".join(benches), help="comma list of: " + ", ".join(benches))
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work folder (default bench/_work)")
    ap.add_argument("--repeats", type=int, help=repeats_help)


def start(title: str, quick: bool, work_root: Path, extra: str = "") -> tuple[Path, dict, Report]:
    """The work folder, the machine and a report opened with the run's header."""
    work = work_root.resolve() / ("quick" if quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    info = machine()
    rep = Report()
    rep.say(f"e-Defter {title} ({'quick' if quick else 'full'} sizes) - {info['date']}")
    rep.say(f"machine: {info['nproc']} cores, {info['cpu']}, {info['memory']}, Python {info['python']}{extra}")
    return work, info, rep


def chosen(ap: argparse.ArgumentParser, only: str, benches: dict) -> list[str]:
    names = [n.strip() for n in only.split(",") if n.strip()]
    for name in names:
        if name not in benches:
            ap.error(f"unknown benchmark {name!r}")
    return names


def run_all(rep: Report, benches: list, info: dict, argv: list[str], work: Path, stem: str,
            command: str = "python bench/run.py") -> int:
    """Run (name, callable) benchmarks, report failures and the targets, write STEM.md / STEM.txt."""
    failed = False
    t0 = time.perf_counter()
    for name, bench in benches:
        try:
            bench()
        except BenchError as exc:
            rep.say(f"FAILED {name}: {exc}")
            failed = True
        except Exception:  # noqa: BLE001 - report, go on with the other benchmarks
            import traceback

            rep.say(f"FAILED {name}:\n{traceback.format_exc()}")
            failed = True
        rep.say()
    met = sum(1 for _, m in rep.targets if m)
    rep.say(f"targets met: {met}/{len(rep.targets)}" + "".join(f"\n  NOT MET: {n}" for n, m in rep.targets if not m))
    rep.say(f"total {time.perf_counter() - t0:.1f} s")
    md = markdown(rep, info, argv).replace("python bench/run.py", command)
    (work / f"{stem}.md").write_text(md)
    (work / f"{stem}.txt").write_text("\n".join(rep.lines) + "\n")
    print(f"(table written to {work / (stem + '.md')})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "timed runs per figure (best is kept)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = Sizes(sizes.parts, sizes.part_mb, args.repeats, sizes.firms, sizes.months)
    work, info, rep = start("engine benchmarks", args.quick, args.work, f", {machine()['zip']}")
    names = chosen(ap, args.only, BENCHES)
    return run_all(rep, [(n, lambda n=n: BENCHES[n](rep, work, sizes)) for n in names], info, argv, work, "results")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
