#!/usr/bin/env python
"""Backup benchmarks (issues 3 and 12): bulk Toplu Yedekle of many small months over loopback, and
the memory of one 1 GB month uploaded.

    python bench/backup_bench.py                 # 30 firms × 40 months = 1 200 months, 1 GiB upload
    python bench/backup_bench.py --quick         # 5 × 8 = 40 months, 64 MiB upload, well under a minute
    python bench/backup_bench.py --only bulk --profile     # + cProfile of both sides, every thread
    python bench/backup_bench.py --only bulk --server process   # one placement of the server only
    python bench/backup_bench.py --firms 10 --periods 40   # other sizes

bulk:   `actions.backup(...)` of every month from scratch (empty journal, empty server store) over
        127.0.0.1, with the storage server placed two ways: in its own process (`server.run.serve`
        with `edefter serve`'s defaults, as an office runs it) and in the client's process (as
        `edefter demo` runs it). The baseline is the work the backup must do, measured in the same
        run on the same months, each part alone and one after the other: scan+verify from the warm
        verify cache, `engine.package.pack` of each month into a temp dir, then the server's check of
        each of those packages (sha256 at rest + `server.checks.check_package`). Baseline and
        placements alternate `--repeats` times (best kept), each backup in a fresh process. The
        time is split into phases from the action's own progress messages (sending ends when every
        month was handed over; the confirmation rounds count as waiting); the client's HTTP requests
        are counted, and the server's memory (its process; in-process: the whole process) and CPU
        reported. `--also DIR` runs another checkout's backups in the same loop (before/after).
upload: `edefter_helper.server.bench.run_benchmark`: client and server each in a fresh process,
        peak RSS of both (client: ru_maxrss; server: VmHWM, after the upload and after the server's
        own check of the package).

Generating the months is not timed and is reused between runs (delete bench/_work/backup-* to
start over). Prints `RATIO` and `TARGET ... MET` / `NOT MET` lines like bench/run.py; writes
results.md / results.txt into the work folder. Exit status 1 when a benchmark failed or a backup
did not back every month up (targets may still be missed with status 0).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("EDEFTER_BENCH_REPO") or HERE.parent)  # --also runs this file on another checkout
sys.path[:0] = [str(HERE), str(REPO)]

from run import (MB, BenchError, Report, busy_seconds, chosen, common_args, mb, periods_back,  # noqa: E402
                 run_all, start)  # bench/run.py's helpers

TARGET = "Yerel Sunucu"


@dataclass(frozen=True)
class Sizes:
    firms: int
    periods: int
    repeats: int
    upload_mb: int


FULL = Sizes(firms=30, periods=40, repeats=2, upload_mb=1024)
QUICK = Sizes(firms=5, periods=8, repeats=1, upload_mb=64)


# -- test data (not timed) -----------------------------------------------------------------------

def _vkn(i: int) -> str:
    return f"{5000000000 + i * 7919:010d}"


def _firm_name(i: int) -> str:
    return f"Deneme Firma {i:02d} Ticaret A.Ş."


def _write_firm(args) -> int:
    from edefter_helper.samples import write_month

    root, i, periods = args
    vkn = _vkn(i)
    for period in periods:
        folder = Path(root) / _firm_name(i) / vkn / f"01.01.{period[:4]}-31.12.{period[:4]}" / period[5:]
        write_month(folder, vkn, period, company=_firm_name(i), seed=i)
    return len(periods)


def ensure_months(work: Path, sizes: Sizes) -> Path:
    """ROOT/<firm name>/<VKN>/01.01.YYYY-31.12.YYYY/MM/: real signed, GİB-approved sample months."""
    root = work / f"backup-months-{sizes.firms}x{sizes.periods}"
    marker = work / f".backup-months-{sizes.firms}x{sizes.periods}.complete"
    if marker.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    periods = periods_back(sizes.periods)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        n = sum(pool.map(_write_firm, [(str(root), i, periods) for i in range(sizes.firms)]))
    marker.write_text(str(n))
    print(f"(generated {n} months in {root.name} in {time.perf_counter() - t0:.1f} s, not timed)", flush=True)
    return root


# -- the environment of one backup ---------------------------------------------------------------

def _use_memory_keyring() -> None:
    import keyring

    from edefter_helper.demo import MemoryKeyring

    if not isinstance(keyring.get_keyring(), MemoryKeyring):
        keyring.set_keyring(MemoryKeyring())


def make_workbook(path: Path, root: Path, sizes: Sizes, url: str, users: dict[str, str]) -> None:
    from edefter_helper.addin.check import new_workbook
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    path.unlink(missing_ok=True)
    new_workbook(path)
    book = FileBook(path)
    book.write_rows(L.FIRMS, [{"name": _firm_name(i), "vkn": _vkn(i), "branch": "", "folder": str(root),
                               "target": TARGET, "user": users[_vkn(i)], "auto": L.YES}
                              for i in range(sizes.firms)])
    book.write_rows(L.TARGETS, [{"name": TARGET, "kind": "http", "address": url,
                                 "description": L.DEFAULT_DESCRIPTION}])
    book.save()


def _timed_book_class():
    from edefter_helper.workbook.file import FileBook

    class TimedBook(FileBook):
        """A FileBook that notes when each progress message arrives (the phases of an action)."""

        def __init__(self, path):
            super().__init__(path, progress_stream=io.StringIO())
            self.marks: list[tuple[float, str]] = []

        def progress(self, text: str) -> None:
            self.marks.append((time.perf_counter(), text))

        def save(self) -> None:
            self.marks.append((time.perf_counter(), "save"))
            super().save()

    return TimedBook


def phases(marks: list[tuple[float, str]], t0: float, t_end: float) -> dict[str, float]:
    """scan (until the first 'n/N dönem' or the batch question before sending), send (until the first 'N/N dönem': every month packed and
    handed over), confirm (from there until write-back: the status rounds, whatever progress they
    show), write-back (rows + save)."""
    counted = [(t, s.rsplit(" ", 2)[-2]) for t, s in marks if s.endswith(" dönem") and "/" in s]
    first_n = counted[0][0] if counted else None
    sent = next((t for t, n in counted if n.split("/")[0] == n.split("/")[1]), None)
    write = next((t for t, s in marks if "yazılıyor" in s), t_end)
    asking = next((t for t, s in marks if "hedefte olanlar soruluyor" in s), None)
    scan_end = asking or (first_n if first_n is not None else write)
    out = {"scan+verify": scan_end - t0}
    if asking is not None:
        out["ask what the server holds"] = (first_n if first_n is not None else write) - asking
        scan_end = first_n if first_n is not None else write
    if first_n is not None:
        sent = sent if sent is not None else write
        out["pack+query+send"] = sent - scan_end
        out["wait for confirmation"] = write - sent
    out["write workbook"] = t_end - write
    return out


class _CountRequests:
    """Counts the client's HTTP requests (requests.Session.request) by method, while installed."""

    def __init__(self):
        import requests

        self.counts: dict[str, int] = {}
        self._original = requests.Session.request
        counts, original, lock = self.counts, self._original, threading.Lock()

        def counted(session, method, url, *a, **kw):
            with lock:
                counts[method.upper()] = counts.get(method.upper(), 0) + 1
            return original(session, method, url, *a, **kw)

        requests.Session.request = counted

    def remove(self) -> None:
        import requests

        requests.Session.request = self._original


def _proc_mem(pid: int | str = "self") -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


# -- the storage server in its own process, as `edefter serve` runs it ---------------------------

def serve_child(config: str) -> int:
    """`--serve-child JSON`: server.run.serve() with `edefter serve`'s defaults (8 threads, 2 checkers,
    INFO log to stderr); prints LISTENING url; on SIGTERM stops and (with "profile") writes a pstats
    file of every thread merged."""
    import json
    import logging
    import marshal
    import signal

    from edefter_helper.server.run import serve

    conf = json.loads(config)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("waitress").setLevel(logging.ERROR)
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    if conf.get("profile"):
        def thread_profiler(*_):
            p = cProfile.Profile()
            with lock:
                profiles.append(p)
            p.enable()

        threading.setprofile(thread_profiler)
        main = cProfile.Profile()
        profiles.append(main)
        main.enable()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(conf["data"], port=0, on_ready=lambda url: print(f"LISTENING {url}", flush=True))
    finally:
        if conf.get("profile"):
            stats = None
            for p in profiles:
                try:
                    p.create_stats()
                    stats = pstats.Stats(p) if stats is None else stats.add(p)
                except (TypeError, ValueError):
                    pass
            if stats is not None:
                with open(conf["profile"], "wb") as out:
                    marshal.dump(stats.stats, out)
    return 0


class ChildServer:
    def __init__(self, store: Path, profile_to: Path | None = None):
        import json
        import subprocess

        conf = {"data": str(store), "profile": str(profile_to) if profile_to else ""}
        self.log = open(store.parent / "sunucu.log", "w")  # noqa: SIM115 - the child writes it until stop()
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-child",
                                         json.dumps(conf)], stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.process.kill()
            raise BenchError("the storage server did not start: see " + str(store.parent / "sunucu.log"))
        self.url = line.split(" ", 1)[1].strip()

    def memory(self) -> tuple[int, int]:
        return _proc_mem(self.process.pid)

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self) -> None:
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class Run:
    wall: float
    phases: dict
    requests: dict
    server_rss: int = 0  # after the run (the process placement)
    server_hwm: int = 0  # peak (process placement: the server's; in-process: the whole process's)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cores: float = 0.0  # cores the rest of the machine kept busy meanwhile (a shared machine)
    stats: pstats.Stats | None = None
    server_stats: pstats.Stats | None = None


def run_backup(work: Path, root: Path, sizes: Sizes, cache_dir: Path, placement: str,
               profile: bool = False) -> Run:
    """One Toplu Yedekle from scratch: fresh server store, fresh journal, fresh workbook.
    placement: "process" (the server in its own process, as an office runs `edefter serve`) or
    "thread" (in this process, as `edefter demo` runs it)."""
    import marshal

    from edefter_helper import actions, credentials, server
    from edefter_helper import status as S
    from edefter_helper.workbook import layout as L

    base = work / f"backup-run-{placement}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    os.environ["EDEFTER_DATA_DIR"] = str(cache_dir)  # the verify cache and the packing temp dirs
    os.environ.pop("EDEFTER_CACHE", None)
    _use_memory_keyring()
    store = base / "sunucu"
    users = {}
    for i in range(sizes.firms):
        vkn, user = _vkn(i), f"bench-{_vkn(i)}"
        password = secrets.token_urlsafe(18)
        server.add_user(store, user, password, [vkn])
        credentials.set_password(TARGET, user, password)
        users[vkn] = user

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def thread_profiler(*_):  # first event of a new thread: give it its own profiler
        p = cProfile.Profile()
        with lock:
            profiles.append(p)
        p.enable()

    server_profile = base / "server.pstats" if profile and placement == "process" else None
    if placement == "process":
        handle = ChildServer(store, server_profile)
    else:
        handle = server.start_in_thread(store, threads=8)  # as `edefter demo`, with serve's thread count
    counter = _CountRequests()
    if profile:
        threading.setprofile(thread_profiler)
    try:
        workbook = base / "kontrol.xlsm"
        make_workbook(workbook, root, sizes, handle.url, users)
        book = _timed_book_class()(workbook)
        options = actions.Options(journal=base / "gunluk.sqlite3", wait=1800)
        main_prof = cProfile.Profile() if profile else None
        cpu0, scpu0 = time.process_time(), handle.cpu_seconds() if placement == "process" else 0.0
        busy0 = busy_seconds()
        t0 = time.perf_counter()
        if main_prof:
            main_prof.enable()
        summary = actions.backup(book, options=options)
        if main_prof:
            main_prof.disable()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        busy = busy_seconds() - busy0
        if placement == "process":
            rss, hwm = handle.memory()
            scpu = handle.cpu_seconds() - scpu0
        else:
            rss, hwm = _proc_mem()
            scpu = 0.0
    finally:
        threading.setprofile(None)
        counter.remove()
        handle.stop()
    run = Run(wall, phases(book.marks, t0, t0 + wall), dict(counter.counts), rss, hwm, scpu, cpu,
              max(0.0, busy - cpu - scpu) / wall if wall else 0.0)
    if profile:
        for p in profiles:
            p.disable()
        run.stats = pstats.Stats(main_prof)
        for p in profiles:
            try:
                run.stats.add(p)
            except (TypeError, ValueError):  # a thread's profiler that never saw an event
                pass
        if server_profile is not None and server_profile.exists():
            run.server_stats = pstats.Stats(main_prof)  # a container; its own entries replaced below
            with open(server_profile, "rb") as f:
                run.server_stats.stats = marshal.load(f)
            run.server_stats.get_top_level_stats()
    total = sizes.firms * sizes.periods
    done = summary.count(S.BACKED_UP)
    if done != total:
        raise BenchError(f"backup ({placement}) backed up {done}/{total} months: {summary.message} "
                         f"{[r.message for r in summary.results if r.status != S.BACKED_UP][:3]}")
    rows = book.read_rows(L.PERIODS)
    if len(rows) != total:
        raise BenchError(f"Dönemler has {len(rows)} rows, expected {total}")
    shutil.rmtree(base, ignore_errors=True)
    return run


def baseline(root: Path, cache_dir: Path, sizes: Sizes, work: Path) -> tuple[float, float, float, float, float]:
    """The work a backup must do, each part alone and one after the other, in this process:
    scan+verify from the warm cache, then pack each month into a temp dir (the client's side); then the
    server's check of each of those packages as its checker runs it (re-read the sha256 at rest, then
    server.checks.check_package). Returns (pack incl. scan+verify, of which scan+verify, check, CPU seconds
    of all of it, cores the rest of the machine kept busy meanwhile)."""
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.package import pack
    from edefter_helper.engine.verify import verify_roots
    from edefter_helper.fsutil import sha256_file
    from edefter_helper.server.checks import Limits, PackageRejected, check_package

    t0, cpu0, busy0 = time.perf_counter(), time.process_time(), busy_seconds()
    cache = FileCache(cache_dir / "verify-cache.sqlite3")
    try:
        result = verify_roots([root], cache)
    finally:
        cache.close()
    t_verify = time.perf_counter() - t0
    sets = [ms for ms in result.sets if ms.valid]
    if len(sets) != sizes.firms * sizes.periods:
        raise BenchError(f"verify found {len(sets)} valid months, expected {sizes.firms * sizes.periods}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pack-", dir=work))
    try:
        packed = [(pack(ms, tmp / f"{ms.key.vkn}-{ms.key.branch}-{ms.key.period}"), ms.key) for ms in sets]
        t_pack = time.perf_counter() - t0
        scratch = tmp / "check"
        scratch.mkdir()
        limits = Limits()
        t1 = time.perf_counter()
        for p, key in packed:
            if sha256_file(p.path) != p.sha256:
                raise BenchError(f"{p.path}: sha256 changed")
            try:
                check_package(p.path, key, scratch, limits)
            except PackageRejected as exc:
                raise BenchError(f"the server's check refused {key}: {exc.message}") from None
        t_check = time.perf_counter() - t1
        cpu = time.process_time() - cpu0
        other = max(0.0, busy_seconds() - busy0 - cpu) / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t_pack, t_verify, t_check, cpu, other


def warm_cache(root: Path, cache_dir: Path) -> float:
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.verify import verify_roots

    t0 = time.perf_counter()
    cache = FileCache(cache_dir / "verify-cache.sqlite3")
    try:
        verify_roots([root], cache)
    finally:
        cache.close()
    return time.perf_counter() - t0


def _profile_text(stats: pstats.Stats, n: int = 25) -> str:
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats("tottime").print_stats(n)
    text = out.getvalue()
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


PLACEMENTS = {"process": "server in its own process (edefter serve)",
              "thread": "server in the client's process (edefter demo)"}
GOALS = {"process": 1.5, "thread": 2.0}


def one_run(config: str) -> int:
    """`--one-run JSON`: one backup (and, first, the warm-up of its own verify cache) by this checkout's
    code, for another checkout's --also; prints the figures as one JSON line."""
    import dataclasses
    import json

    conf = json.loads(config)
    work, sizes = Path(conf["work"]), Sizes(*conf["sizes"])
    root, cache_dir = Path(conf["root"]), Path(conf["cache"])
    if not (cache_dir / ".warm").exists():
        shutil.rmtree(cache_dir, ignore_errors=True)
        cache_dir.mkdir(parents=True)
        warm_cache(root, cache_dir)
        (cache_dir / ".warm").write_text("1")
    run = run_backup(work, root, sizes, cache_dir, conf["placement"])
    print("RUN " + json.dumps({k: v for k, v in dataclasses.asdict(run).items() if "stats" not in k}), flush=True)
    return 0


def also_run(checkout: Path, work: Path, root: Path, sizes: Sizes, placement: str, label: str = "also") -> Run:
    """One backup by a checkout's code in a fresh process (its own verify cache), same months: this
    process holds the baseline's results, whose garbage collection an in-process server would pay."""
    import json
    import subprocess

    conf = {"work": str(work / label), "sizes": [sizes.firms, sizes.periods, sizes.repeats, sizes.upload_mb],
            "root": str(root), "cache": str(work / f"backup-data-{label}"), "placement": placement}
    (work / label).mkdir(parents=True, exist_ok=True)
    bench = Path(__file__).resolve()
    done = subprocess.run([sys.executable, str(bench), "--one-run", json.dumps(conf)], capture_output=True, text=True,
                          check=False,
                          env={**os.environ, "PYTHONPATH": str(checkout), "EDEFTER_BENCH_REPO": str(checkout)})
    line = next((x for x in done.stdout.splitlines() if x.startswith("RUN ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"--also {checkout} ({placement}) failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    return Run(**json.loads(line[4:]))


def bench_bulk(rep: Report, work: Path, sizes: Sizes, profile: bool, placements: list[str] | None = None,
               also: Path | None = None) -> None:
    import logging

    logging.getLogger("waitress").setLevel(logging.ERROR)
    placements = placements or list(PLACEMENTS)
    total = sizes.firms * sizes.periods
    root = ensure_months(work, sizes)
    nfiles = sum(1 for p in root.rglob("*") if p.is_file())
    nbytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    rep.say(f"== bulk backup: {sizes.firms} firms × {sizes.periods} months = {total} months, "
            f"{nfiles} files, {mb(nbytes)}; storage server on 127.0.0.1: "
            + "; ".join(PLACEMENTS[p] for p in placements) + " ==")
    cache_dir = work / "backup-data"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True)
    t_warmup = warm_cache(root, cache_dir)  # verify_roots once before, untimed
    runs: dict[str, list[Run]] = {p: [] for p in placements}
    others: dict[str, list[Run]] = {p: [] for p in placements}
    base_runs = []
    for _ in range(sizes.repeats):  # interleaved, so drifting machine load hits all sides alike
        base_runs.append(baseline(root, cache_dir, sizes, work))
        for p in placements:
            runs[p].append(also_run(REPO, work, root, sizes, p, label="this"))
            if also is not None:
                others[p].append(also_run(also, work, root, sizes, p))
    t_pack, t_verify, t_check, base_cpu, base_other = min(base_runs, key=lambda b: b[0] + b[2])
    base = t_pack + t_check
    rep.say(f"(verify cache warm-up: verify_roots once, cold, {t_warmup:.2f} s, not timed)")
    rep.say(f"baseline, best of {[round(b[0] + b[2], 2) for b in base_runs]}: {base:.2f} s = packing alone "
            f"{t_pack:.2f} s (scan+verify warm {t_verify:.2f} s, {(t_pack - t_verify) / total * 1000:.2f} ms/month "
            f"packing) + the server's check alone {t_check:.2f} s ({t_check / total * 1000:.2f} ms/month); "
            f"CPU {base_cpu:.1f} s; other work on the machine meanwhile: {base_other:.1f} cores busy")
    rep.row("backup", f"baseline: packing alone + the server's check alone ({total} months)", f"{base:.2f} s",
            f"pack {t_pack:.2f} s + check {t_check:.2f} s", "", "(info)", None)
    for p in placements:
        best = min(runs[p], key=lambda r: r.wall)
        per = {m: n / total for m, n in best.requests.items()}
        mem = (f"server RSS after {mb(best.server_rss)}, peak {mb(best.server_hwm)}" if p == "process"
               else f"process (client + server) RSS after {mb(best.server_rss)}, peak {mb(best.server_hwm)}")
        cpu_all = best.client_cpu + best.server_cpu
        cpu = (f"CPU: client {best.client_cpu:.1f} s + server {best.server_cpu:.1f} s = {cpu_all:.1f} s "
               f"({cpu_all / base_cpu:.2f}× the baseline's {base_cpu:.1f} s)" if p == "process"
               else f"CPU: {cpu_all:.1f} s ({cpu_all / base_cpu:.2f}× the baseline's {base_cpu:.1f} s)")
        rep.say(f"actions.backup, warm verify cache, {PLACEMENTS[p]}: best {best.wall:.2f} s of "
                f"{[round(r.wall, 2) for r in runs[p]]} ({best.wall / total * 1000:.1f} ms/month)")
        rep.say("   phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in best.phases.items()))
        rep.say("   client HTTP requests: " + ", ".join(f"{m} {n} ({per[m]:.2f}/month)"
                                                       for m, n in sorted(best.requests.items())))
        rep.say(f"   {mem}; {cpu}; other work on the machine meanwhile: {best.other_cores:.1f} cores busy")
        r = rep.ratio(f"backup {p}/pack+check alone", best.wall, base, "pack+check alone")
        goal = GOALS[p]
        rep.target(f"backup of {total} months, {PLACEMENTS[p]}, <= {goal}x (packing + server check alone)",
                   r <= goal, f"{r:.2f}x")
        rep.row("backup", f"{total} months, warm verify cache, {PLACEMENTS[p]}", f"{best.wall:.2f} s",
                f"{base:.2f} s", f"{r:.2f}×", f"≤ {goal}×", r <= goal)
        rep.row("backup", f"phases, {p}", "; ".join(f"{k} {v:.1f} s" for k, v in best.phases.items()), "", "",
                "(info)", None)
        if others[p]:
            old = min(others[p], key=lambda r: r.wall)
            rep.say(f"   the same by {also} (in the same loop): best {old.wall:.2f} s of "
                    f"{[round(r.wall, 2) for r in others[p]]} = {old.wall / base:.2f}× the baseline; phases: "
                    + ", ".join(f"{k} {v:.2f} s" for k, v in old.phases.items()) + "; requests: "
                    + ", ".join(f"{m} {n}" for m, n in sorted(old.requests.items()))
                    + f"; server memory after {mb(old.server_rss)}, peak {mb(old.server_hwm)}; CPU "
                    f"{old.client_cpu + old.server_cpu:.1f} s")
            rep.row("backup", f"{total} months, {PLACEMENTS[p]}, by {also.name}", f"{old.wall:.2f} s",
                    f"{base:.2f} s", f"{old.wall / base:.2f}×", "(info)", None)
        rep.row("backup", f"requests and memory, {p}",
                ", ".join(f"{m} {n}" for m, n in sorted(best.requests.items())) + f"; {mem}", "", "",
                "(info)", None)
    if profile:
        for p in placements:
            run = run_backup(work, root, sizes, cache_dir, p, profile=True)
            side = "client (every thread merged)" if p == "process" else "client and server (every thread merged)"
            rep.say(f"cProfile of a warm backup, {PLACEMENTS[p]}: {side}, by tottime:")
            for line in _profile_text(run.stats).rstrip().splitlines():
                rep.say("   " + line)
            if run.server_stats is not None:
                rep.say("cProfile of the same backup, the server process (every thread merged), by tottime:")
                for line in _profile_text(run.server_stats).rstrip().splitlines():
                    rep.say("   " + line)
    rep.say(f"(memory of this process after the runs: peak RSS {mb(_self_hwm())})")


def _self_hwm() -> int:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- 2. one big month uploaded -----------------------------------------------------------------

def bench_upload(rep: Report, work: Path, sizes: Sizes, profile: bool) -> None:
    from edefter_helper.server.bench import run_benchmark

    size = sizes.upload_mb * MB
    rep.say(f"== upload: one {mb(size)} package, client and server each in a fresh process ==")
    folder = work / "upload"
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    res = run_benchmark(size, folder)
    shutil.rmtree(folder, ignore_errors=True)
    client, srv_up, srv = res["client_peak_rss"], res["server_peak_rss_after_upload"], res["server_peak_rss"]
    rep.say(f"upload {res['seconds']:.2f} s ({size / MB / res['seconds']:.0f} MB/s), state {res['state']}, "
            f"then the server's check: {res['final_state']} (random bytes are no ledger); total "
            f"{time.perf_counter() - t0:.1f} s")
    rep.say(f"client peak RSS {mb(client)}; server peak RSS {mb(srv_up)} after the upload, {mb(srv)} after "
            f"its check of the package")
    rep.target(f"upload of {mb(size)}: client peak < 150 MB", client < 150 * MB, mb(client))
    rep.target(f"upload of {mb(size)}: server peak < 150 MB", srv < 150 * MB, mb(srv))
    rep.row("upload", f"{mb(size)} package: client peak RSS", mb(client), "", "", "< 150 MB", client < 150 * MB)
    rep.row("upload", f"{mb(size)} package: server peak RSS (after upload / after check)",
            f"{mb(srv_up)} / {mb(srv)}", "", "", "< 150 MB", srv < 150 * MB)
    rep.row("upload", "upload time", f"{res['seconds']:.2f} s", "", "", "(info)", None)


def bench_upload_month(rep: Report, work: Path, sizes: Sizes, profile: bool) -> None:
    """A real month of ~1 GB (bench/run.py's big month: five signed 200 MB Yevmiye parts and their
    berats), packed and uploaded to `edefter serve`'s code in its own process; the server's whole
    process tree (its verify workers included, as verify's memory is counted) sampled until its check
    has stored the month (issue 12 §2: was 173–180 MB)."""
    import requests

    import run as RUN
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.package import pack
    from edefter_helper.engine.verify import verify_roots
    from edefter_helper.server.run import add_user, start_in_subprocess
    from edefter_helper.targets.base import Package
    from edefter_helper.targets.http import HttpTarget

    big = RUN.QUICK if sizes == QUICK else RUN.FULL
    folder, files = RUN.ensure_big_month(work, big)
    total = sum(f.stat().st_size for f in files)
    rep.say(f"== upload of a real month: {len(files)} files, {mb(total)}; the server's process tree sampled ==")
    base = work / "upload-month"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    try:
        cache = FileCache(None)
        ms = next(m for m in verify_roots([folder], cache).sets)
        if not ms.valid:
            raise BenchError(f"the big month does not verify: {[p.message for p in ms.problems][:3]}")
        packed = pack(ms, base / "paket")
        package = Package(packed.path, ms.key, packed.sha256, packed.size, packed.files)
        user, password = "bench", secrets.token_urlsafe(12)
        add_user(base / "sunucu", user, password, [ms.key.vkn])
        hwm: dict[int, int] = {}
        with start_in_subprocess(base / "sunucu", max_size=package.size * 2 + (1 << 20)) as server:
            done = threading.Event()

            def sampler():
                pids, listed = [server.pid], 0.0
                while not done.is_set():
                    now = time.perf_counter()
                    if now - listed > 0.25:
                        pids, listed = RUN._tree(server.pid), now
                    for pid in pids:
                        h = RUN._mem(pid)[2]
                        if h:
                            hwm[pid] = max(hwm.get(pid, 0), h)
                    done.wait(0.05)

            thread = threading.Thread(target=sampler, daemon=True)
            thread.start()
            t0 = time.perf_counter()
            with HttpTarget(server.url, user, password, timeout=(10, 900)) as target:
                receipt = target.send(package, "bench")
            t_up = time.perf_counter() - t0
            state = receipt.state
            url = f"{server.url}/v1/months/{ms.key.vkn}/{ms.key.branch}/{ms.key.period}"
            while state == "accepted" and time.perf_counter() - t0 < 1800:
                time.sleep(0.2)
                state = requests.get(url, auth=(user, password), timeout=30).json()["state"]
            t_all = time.perf_counter() - t0
            done.set()
            thread.join()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if state != "stored":
        raise BenchError(f"the server did not store the month: {state}")
    upper, largest = sum(hwm.values()), max(hwm.values(), default=0)
    rep.say(f"upload {t_up:.1f} s, stored after its check {t_all:.1f} s; server process tree: "
            f"{len(hwm)} processes seen, Σ VmHWM {mb(upper)} (upper bound), largest {mb(largest)} "
            f"({', '.join(mb(h) for h in sorted(hwm.values(), reverse=True))})")
    rep.target(f"server process tree while checking a real {mb(total)} month < 150 MB", upper < 150 * MB, mb(upper))
    rep.row("upload, real month", f"{mb(total)}, {len(files)} files: server process tree peak (Σ VmHWM, "
            f"{len(hwm)} processes)", mb(upper), "", "", "< 150 MB", upper < 150 * MB)
    rep.row("upload, real month", "upload / stored after the server's check", f"{t_up:.1f} / {t_all:.1f} s",
            "", "", "(info)", None)


BENCHES = {"bulk": bench_bulk, "upload": bench_upload, "upload-month": bench_upload_month}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "timed warm backups (best is kept)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of a warm backup")
    ap.add_argument("--firms", type=int, help="firms (default 30, 5 with --quick)")
    ap.add_argument("--periods", type=int, help="months per firm (default 40, 8 with --quick)")
    ap.add_argument("--upload-mb", type=int, help="size of the uploaded package (default 1024, 64 with --quick)")
    ap.add_argument("--server", default="process,thread",
                    help="where the storage server runs: process (own process, as an office runs it), "
                         "thread (in the client's process, as the demo does), or both (default)")
    ap.add_argument("--also", type=Path, help="another checkout whose backup runs in the same loop (before/after)")
    ap.add_argument("--serve-child", help=argparse.SUPPRESS)
    ap.add_argument("--one-run", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_child:
        return serve_child(args.serve_child)
    if args.one_run:
        return one_run(args.one_run)
    placements = [p.strip() for p in args.server.split(",") if p.strip()]
    if not placements or any(p not in PLACEMENTS for p in placements):
        ap.error("--server: process, thread or both (comma list)")
    sizes = QUICK if args.quick else FULL
    sizes = Sizes(args.firms or sizes.firms, args.periods or sizes.periods, args.repeats or sizes.repeats,
                  args.upload_mb or sizes.upload_mb)
    work, info, rep = start("backup benchmarks", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    benches = [(n, lambda n=n: (bench_bulk(rep, work, sizes, args.profile, placements, args.also) if n == "bulk"
                                else BENCHES[n](rep, work, sizes, args.profile))) for n in names]
    return run_all(rep, benches, info, argv, work, "backup-results", "python bench/backup_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
