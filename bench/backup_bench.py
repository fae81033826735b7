#!/usr/bin/env python
"""Backup benchmarks (issue 3): bulk Toplu Yedekle of many small months over loopback, and the
memory of one 1 GB month uploaded.

    python bench/backup_bench.py                 # 30 firms × 40 months = 1 200 months, 1 GiB upload
    python bench/backup_bench.py --quick         # 5 × 8 = 40 months, 64 MiB upload, well under a minute
    python bench/backup_bench.py --only bulk --profile     # + cProfile of every thread (client and server)
    python bench/backup_bench.py --firms 10 --periods 40   # other sizes

bulk:   `actions.backup(...)` of every month from scratch (empty journal, empty server store) with
        the storage server running in this process on 127.0.0.1 (as `edefter demo` does), against
        the baseline measured in the same run on the same months: scan+verify from the warm verify
        cache, then `engine.package.pack` of each month into a temp dir, one after the other.
        Timed once with a cold verify cache (info) and `--repeats` times with a warm one (best kept).
        The time is split into phases from the action's own progress messages.
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
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from run import MB, BenchError, Report, chosen, common_args, mb, run_all, start  # noqa: E402  (bench/run.py's helpers)

TARGET = "Yerel Sunucu"
LIFTED = 10_000  # waitress connection_limit for the "limit lifted" runs (as shipped: 100)


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


def _periods(n: int) -> list[str]:
    out, year, month = [], 2024, 12
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return sorted(out)


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
    periods = _periods(sizes.periods)
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
    """scan (until the first 'n/N dönem'), send (until the last one), confirm (until write-back),
    write-back (rows + save)."""
    first_n = next((t for t, s in marks if s.endswith(" dönem") and "/" in s), None)
    last_n = max((t for t, s in marks if s.endswith(" dönem") and "/" in s), default=None)
    write = next((t for t, s in marks if "yazılıyor" in s), t_end)
    scan_end = first_n if first_n is not None else write
    out = {"scan+verify": scan_end - t0}
    if first_n is not None:
        out["pack+query+send"] = last_n - scan_end
        out["wait for confirmation"] = write - last_n
    out["write workbook"] = t_end - write
    return out


def run_backup(work: Path, root: Path, sizes: Sizes, cache_dir: Path, label: str,
               profile: bool = False, connection_limit: int | None = None
               ) -> tuple[float, dict, object, pstats.Stats | None]:
    """One Toplu Yedekle from scratch: fresh server store, fresh journal, fresh workbook.

    connection_limit: raise waitress' limit of open connections (default 100) on the running
    server, to measure what the backup costs without the connection-limit stall (see RESULTS.md)."""
    from edefter_helper import actions, credentials, server
    from edefter_helper import status as S
    from edefter_helper.workbook import layout as L

    base = work / f"backup-run-{label}"
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

    if profile:
        threading.setprofile(thread_profiler)
    handle = server.start_in_thread(store)
    if connection_limit:
        handle._server.adj.connection_limit = connection_limit  # read on every loop turn by waitress
    try:
        workbook = base / "kontrol.xlsm"
        make_workbook(workbook, root, sizes, handle.url, users)
        book = _timed_book_class()(workbook)
        options = actions.Options(journal=base / "gunluk.sqlite3", wait=1800)
        main_prof = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if main_prof:
            main_prof.enable()
        summary = actions.backup(book, options=options)
        if main_prof:
            main_prof.disable()
        wall = time.perf_counter() - t0
    finally:
        threading.setprofile(None)
        handle.stop()
    stats = None
    if profile:
        for p in profiles:
            p.disable()
        stats = pstats.Stats(main_prof)
        for p in profiles:
            try:
                stats.add(p)
            except (TypeError, ValueError):  # a thread's profiler that never saw an event
                pass
    total = sizes.firms * sizes.periods
    done = summary.count(S.BACKED_UP)
    if done != total:
        raise BenchError(f"backup ({label}) backed up {done}/{total} months: {summary.message} "
                         f"{[r.message for r in summary.results if r.status != S.BACKED_UP][:3]}")
    rows = book.read_rows(L.PERIODS)
    if len(rows) != total:
        raise BenchError(f"Dönemler has {len(rows)} rows, expected {total}")
    shutil.rmtree(base, ignore_errors=True)
    return wall, phases(book.marks, t0, t0 + wall), summary, stats


def baseline_pack(root: Path, cache_dir: Path, sizes: Sizes) -> tuple[float, float, int]:
    """scan+verify from the warm cache, then pack each month into a temp dir, sequentially."""
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.package import pack
    from edefter_helper.engine.verify import verify_roots

    t0 = time.perf_counter()
    cache = FileCache(cache_dir / "verify-cache.sqlite3")
    try:
        result = verify_roots([root], cache)
    finally:
        cache.close()
    t_verify = time.perf_counter() - t0
    sets = [ms for ms in result.sets if ms.valid]
    if len(sets) != sizes.firms * sizes.periods:
        raise BenchError(f"verify found {len(sets)} valid months, expected {sizes.firms * sizes.periods}")
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        for ms in sets:
            pack(ms, Path(tmp) / f"{ms.key.vkn}-{ms.key.branch}-{ms.key.period}")
    return time.perf_counter() - t0, t_verify, len(sets)


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


def bench_bulk(rep: Report, work: Path, sizes: Sizes, profile: bool) -> None:
    import logging

    logging.getLogger("waitress").setLevel(logging.ERROR)
    total = sizes.firms * sizes.periods
    root = ensure_months(work, sizes)
    nfiles = sum(1 for p in root.rglob("*") if p.is_file())
    nbytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    rep.say(f"== bulk backup: {sizes.firms} firms × {sizes.periods} months = {total} months, "
            f"{nfiles} files, {mb(nbytes)}; storage server in this process on 127.0.0.1 ==")
    cache_dir = work / "backup-data"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True)

    # cold verify cache, server's connection limit lifted (fills the verify cache too)
    cold, cold_ph, _, _ = run_backup(work, root, sizes, cache_dir, "cold", connection_limit=LIFTED)
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True)
    t_warmup = warm_cache(root, cache_dir)  # as the brief asks: verify_roots once before, untimed
    warm_runs, lifted_runs, base_runs = [], [], []
    warm_ph = lifted_ph = None
    for _ in range(sizes.repeats):  # interleaved, so drifting machine load hits all sides alike
        base_runs.append(baseline_pack(root, cache_dir, sizes))
        w, ph, _, _ = run_backup(work, root, sizes, cache_dir, "warm")
        if not warm_runs or w < min(warm_runs):
            warm_ph = ph
        warm_runs.append(w)
        w, ph, _, _ = run_backup(work, root, sizes, cache_dir, "warm-lifted", connection_limit=LIFTED)
        if not lifted_runs or w < min(lifted_runs):
            lifted_ph = ph
        lifted_runs.append(w)
    warm, lifted = min(warm_runs), min(lifted_runs)
    base, base_verify, _ = min(base_runs)
    rep.say(f"(verify cache warm-up: verify_roots once, cold, {t_warmup:.2f} s, not timed)")
    rep.say(f"baseline scan+verify (warm cache) + pack each month: best {base:.2f} s of "
            f"{[round(b[0], 2) for b in base_runs]} (scan+verify {base_verify:.2f} s, "
            f"{(base - base_verify) / total * 1000:.1f} ms/month packing)")
    rep.say(f"actions.backup, warm verify cache, server as shipped: best {warm:.2f} s of "
            f"{[round(w, 2) for w in warm_runs]} ({warm / total * 1000:.1f} ms/month)")
    rep.say("   phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in warm_ph.items()))
    rep.say(f"actions.backup, warm verify cache, server connection_limit={LIFTED}: best {lifted:.2f} s of "
            f"{[round(w, 2) for w in lifted_runs]} ({lifted / total * 1000:.1f} ms/month)")
    rep.say("   phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in lifted_ph.items()))
    rep.say(f"actions.backup, cold verify cache, connection_limit={LIFTED}: {cold:.2f} s "
            f"({cold / total * 1000:.1f} ms/month)")
    rep.say("   phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in cold_ph.items()))
    r_warm = rep.ratio("backup warm/pack alone", warm, base, "pack alone")
    r_lifted = rep.ratio("backup warm, connection limit lifted/pack alone", lifted, base, "pack alone")
    r_cold = rep.ratio("backup cold, connection limit lifted/pack alone", cold, base, "pack alone")
    if warm - lifted > 60:
        rep.say(f"STALL: the backup as shipped took {warm - lifted:.0f} s longer than with the server's "
                f"connection limit lifted: one HTTP session per firm keeps its keep-alive connections open, "
                f"waitress stops accepting at 100 open connections and closes idle ones only after "
                f"channel_timeout (300 s)")
    rep.target(f"backup of {total} months (warm cache) <= 1.5x packing alone", r_warm <= 1.5, f"{r_warm:.2f}x")
    rep.row("backup", f"{total} months, warm verify cache, server as shipped", f"{warm:.2f} s",
            f"pack alone {base:.2f} s", f"{r_warm:.2f}×", "≤ 1.5×", r_warm <= 1.5)
    rep.row("backup", f"{total} months, warm, server connection limit lifted", f"{lifted:.2f} s",
            f"{base:.2f} s", f"{r_lifted:.2f}×", "(info)", None)
    rep.row("backup", f"{total} months, cold verify cache, limit lifted", f"{cold:.2f} s", f"{base:.2f} s",
            f"{r_cold:.2f}×", "(info)", None)
    rep.row("backup", "phases, warm as shipped", "; ".join(f"{k} {v:.1f} s" for k, v in warm_ph.items()), "", "",
            "(info)", None)
    rep.row("backup", "phases, warm limit lifted", "; ".join(f"{k} {v:.1f} s" for k, v in lifted_ph.items()), "",
            "", "(info)", None)
    if profile:
        _, _, _, stats = run_backup(work, root, sizes, cache_dir, "profile", profile=True,
                                    connection_limit=LIFTED)
        rep.say("cProfile of a warm backup, every thread (client pool, server, verifier) merged, by tottime:")
        for line in _profile_text(stats).rstrip().splitlines():
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


BENCHES = {"bulk": bench_bulk, "upload": bench_upload}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "timed warm backups (best is kept)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of a warm backup")
    ap.add_argument("--firms", type=int, help="firms (default 30, 5 with --quick)")
    ap.add_argument("--periods", type=int, help="months per firm (default 40, 8 with --quick)")
    ap.add_argument("--upload-mb", type=int, help="size of the uploaded package (default 1024, 64 with --quick)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sizes = Sizes(args.firms or sizes.firms, args.periods or sizes.periods, args.repeats or sizes.repeats,
                  args.upload_mb or sizes.upload_mb)
    work, info, rep = start("backup benchmarks", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    benches = [(n, lambda n=n: BENCHES[n](rep, work, sizes, args.profile)) for n in names]
    return run_all(rep, benches, info, argv, work, "backup-results", "python bench/backup_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
