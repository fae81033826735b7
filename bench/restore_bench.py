#!/usr/bin/env python
"""Restore benchmark (issue 9, section 1): `edefter restore` of a 1 GB month from the own storage
server over loopback, against `curl` download + `unzip` of the same package, measured in the same run.

    python bench/restore_bench.py                 # the 1 GB month of bench/run.py (5 × 200 MiB parts)
    python bench/restore_bench.py --quick         # 2 × 40 MiB parts, well under a minute
    python bench/restore_bench.py --profile       # + cProfile of an in-process restore (main thread)
    python bench/restore_bench.py --also /tmp/old  # + the restore of another checkout, in the same loop

Set-up (not timed): the big month of bench/run.py (edefter_helper.samples.big, generated once under
bench/_work/), a fresh storage server store with one user, started with
`edefter_helper.server.start_in_subprocess` on 127.0.0.1 (so the client's figures hold the client
only), a control workbook naming the month's folder and the server, the password in a file keyring
(tests/fakes/file_keyring.py through PYTHON_KEYRING_BACKEND, as the tests give the CLI a keyring),
then one `edefter backup` of the month (it also fills the verify cache of the local folder, as a
user's would be). Nothing is deleted afterwards: the local files stay where they are.

Timed, interleaved, `--repeats` times each, every repeat into a fresh empty folder:
  restore:  `edefter restore --workbook F --firm VKN --out DIR --json`, the real CLI in a subprocess
            (it scans the workbook's folders from the warm cache, asks the server, downloads the
            package, checks every file's sha256 against the manifest and the journal while writing
            it atomically, verifies the restored tree with the engine — each file in a worker
            process as soon as it is written, the rest after the last one — writes the İbraz
            Raporu and the workbook's Günlük);
  baseline: `curl -sSf -u USER:PASS -o PKG URL/v1/months/VKN/0000/PERIOD/package && unzip -q PKG -d DIR`
            (the target's baseline); then, as information, `edefter verify DIR --no-cache` of what unzip
            wrote, so restore is also compared with the same work done by hand (download, unpack, verify).
The page cache is flushed to disk (`sync`, not timed) after every run, so no run pays for the
previous one's dirty pages; the time `sync` took after the baseline is reported (restore fsyncs
every file it writes, unzip does not). CPU: user + system seconds of each side's whole process
tree (getrusage of the reaped children), so the work is seen apart from the machine's load; the
floor of a restore on this machine is its CPU seconds over the cores. Memory: the client's whole
process tree (the CLI and its verify workers) sampled through /proc as in bench/run.py; the target
is judged on the sum of every process's own high-water mark. Where the restore's time goes: one
more restore run in-process with timers around its phases (scan, query+download, unpack with the
workers verifying alongside, the verification left after the last file, report, workbook).

The judged ratio is the issue's: `edefter restore` against `curl` download + `unzip` of the same
package. Other baselines are information: + `sync` (restore makes every file durable, unzip does
not), and + `edefter verify` of what unzip wrote (the same work done by hand).

Prints `RATIO` and `TARGET ... MET` / `NOT MET` lines; writes restore-results.{md,txt} into the
work folder. Exit status 1 when a benchmark failed or restored wrong bytes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

import run as R  # noqa: E402  (bench/run.py's helpers)
from run import MB, BenchError, Report, best, chosen, common_args, mb, run_all, run_measured, start  # noqa: E402

TARGET = "Yerel Sunucu"
USER = "geri-yukle-bench"
KEYRING_BACKEND = "tests.fakes.file_keyring.FileKeyring"


@dataclass(frozen=True)
class Sizes:
    parts: int
    part_mb: float
    repeats: int


FULL = Sizes(parts=5, part_mb=200, repeats=3)  # the month of bench/run.py's verify and pack benchmarks
QUICK = Sizes(parts=2, part_mb=40, repeats=1)  # bench/run.py --quick's month


def _month(work: Path, sizes: Sizes) -> tuple[Path, list[Path]]:
    return R.ensure_big_month(work, R.Sizes(sizes.parts, sizes.part_mb, sizes.repeats, (), 0))


# -- set-up (not timed) ------------------------------------------------------------------------

class Setup:
    """A storage server holding the month, a workbook, a journal and a keyring the CLI can read."""

    def __init__(self, work: Path, folder: Path):
        from edefter_helper import server

        self.base = work / "restore-run"
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        self.folder = folder
        self.data = self.base / "data"  # EDEFTER_DATA_DIR: journal, verify cache, packing temp dirs
        self.store = self.base / "sunucu"
        self.keyring = self.base / "keyring" / "test-keyring.json"
        self.workbook = self.base / "kontrol.xlsm"
        self.password = secrets.token_urlsafe(18)
        server.add_user(self.store, USER, self.password, [R.VKN])
        self.server = server.start_in_subprocess(self.store)
        self.url = self.server.url.rstrip("/")
        self.env = dict(os.environ)
        for name in ("EDEFTER_CACHE", "EDEFTER_JOURNAL"):
            self.env.pop(name, None)
        self.env.update({
            "EDEFTER_DATA_DIR": str(self.data),
            "PYTHON_KEYRING_BACKEND": KEYRING_BACKEND,
            "EDEFTER_TEST_KEYRING": str(self.keyring),
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
            "PYTHONIOENCODING": "utf-8",
        })
        self._in_process_env()
        from edefter_helper import credentials

        credentials.set_password(TARGET, USER, self.password)
        self._workbook()

    def _in_process_env(self) -> None:
        """The same data folder and keyring for restores run in this process (the phase split)."""
        import keyring

        from tests.fakes.file_keyring import FileKeyring

        for name in ("EDEFTER_DATA_DIR", "EDEFTER_TEST_KEYRING"):
            os.environ[name] = self.env[name]
        for name in ("EDEFTER_CACHE", "EDEFTER_JOURNAL"):
            os.environ.pop(name, None)
        keyring.set_keyring(FileKeyring())

    def _workbook(self) -> None:
        from edefter_helper.addin.check import new_workbook
        from edefter_helper.workbook import layout as L
        from edefter_helper.workbook.file import FileBook

        new_workbook(self.workbook)
        book = FileBook(self.workbook)
        book.write_rows(L.FIRMS, [{"name": "Büyük Defter Ticaret A.Ş.", "vkn": R.VKN, "branch": "",
                                   "folder": str(self.folder), "target": TARGET, "user": USER, "auto": L.YES}])
        book.write_rows(L.TARGETS, [{"name": TARGET, "kind": "http", "address": self.url,
                                     "description": L.DEFAULT_DESCRIPTION}])
        book.save()

    def backup(self) -> float:
        """One `edefter backup` of the month, until the server has checked and stored it."""
        t0 = time.perf_counter()
        proc = subprocess.run(R.edefter_cmd() + ["backup", "--workbook", str(self.workbook), "--wait", "1800",
                                                 "--json"], env=self.env, capture_output=True, cwd=REPO)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchError(f"edefter backup exited {proc.returncode}: {proc.stdout[-1500:]!r} "
                             f"{proc.stderr[-1500:]!r}")
        results = json.loads(proc.stdout)["results"]
        if [r["status"] for r in results] != ["Yedeklendi"]:
            raise BenchError(f"the month was not backed up: {results}")
        return wall

    def stored(self) -> dict:
        import requests

        r = requests.get(f"{self.url}/v1/months/{R.VKN}/0000/{R.PERIOD}", auth=(USER, self.password), timeout=60)
        r.raise_for_status()
        info = r.json()
        if info.get("state") != "stored":
            raise BenchError(f"the server does not hold the month as stored: {info}")
        return info

    def close(self) -> None:
        self.server.stop()


# -- the two sides ------------------------------------------------------------------------------

def _expect(folder: Path, originals: dict[str, int], what: str) -> None:
    """Every original file is there with its size (restore itself checks each sha256)."""
    got = {p.name: p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".xml", ".zip")}
    if got != originals:
        missing = sorted(set(originals) - set(got))[:5]
        odd = sorted(n for n in set(got) & set(originals) if got[n] != originals[n])[:5]
        raise BenchError(f"{what}: restored files differ from the originals (missing {missing}, other size {odd}, "
                         f"{len(got)} files against {len(originals)})")


def measured(cmd: list[str], env: dict) -> tuple[R.Run, float]:
    """run_measured, and the CPU seconds (user + system) of the command's whole reaped tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = run_measured(cmd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return run, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _sync() -> float:
    t0 = time.perf_counter()
    os.sync()
    return time.perf_counter() - t0


def curl_unzip(setup: Setup, out: Path, package_name: str) -> tuple[list[str], dict]:
    out.mkdir(parents=True)
    url = f"{setup.url}/v1/months/{R.VKN}/0000/{R.PERIOD}/package"
    script = (f'curl -sSf -u "$BENCH_AUTH" -o "$1/{package_name}" "{url}" '
              f'&& unzip -q "$1/{package_name}" -d "$1/files"')
    env = dict(setup.env, BENCH_AUTH=f"{USER}:{setup.password}")
    return ["sh", "-c", script, "curl+unzip", str(out)], env


def restore_cmd(setup: Setup, out: Path) -> list[str]:
    return R.edefter_cmd() + ["restore", "--workbook", str(setup.workbook), "--firm", R.VKN, "--out", str(out),
                              "--json"]


def _check_restore(run: R.Run, out: Path, originals: dict[str, int]) -> None:
    if run.rc != 0:
        raise BenchError(f"edefter restore exited {run.rc}: {run.stdout[-2000:]!r} {run.stderr[-2000:]!r}")
    data = json.loads(run.stdout)
    months = data.get("months") or []
    if len(months) != 1 or not months[0]["ok"] or not all(f["matches_backup"] for f in months[0]["files"]):
        raise BenchError(f"edefter restore did not restore the month cleanly: {json.dumps(months)[:2000]}")
    if not (out / "ibraz-raporu.html").is_file():
        raise BenchError("edefter restore wrote no İbraz Raporu")
    _expect(out, originals, "edefter restore")


# -- where the restore's time goes (in-process, one run) ---------------------------------------

UNPACK = "unpack (package sha256, per-file sha256, atomic writes + fsync; the workers verifying alongside)"
AFTER = "engine verification left after the last file was written (this process reads too), and scan + check_set"

def restore_in_process(setup: Setup, out: Path, profile: bool) -> tuple[float, dict[str, float], str, str]:
    from edefter_helper import actions, report, restore
    from edefter_helper.targets import http
    from edefter_helper.workbook.file import FileBook

    timer = R.PhaseTimer()
    timer.wrap(actions._Run, "scan", "scan of the workbook's folders (warm cache)")
    timer.wrap(http.HttpTarget, "query", "status query")
    timer.wrap(http.HttpTarget, "fetch", "download (HTTP, sha256, fsync)")
    timer.wrap(restore, "_unpack", UNPACK)
    timer.wrap(restore, "_verify_and_report", "verify + report")
    timer.wrap(report, "write_report", "İbraz Raporu")
    timer.wrap(actions._Run, "write_back", "workbook write-back")
    made = []
    original = getattr(restore, "_Verifier", None)  # (absent before issue 9's overlap: the bench runs on it too)
    if original is not None:
        class Kept(original):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                made.append(self)

        restore._Verifier = Kept
    prof = cProfile.Profile() if profile else None
    try:
        book = FileBook(setup.workbook)
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        summary = restore.restore(book, out=out, options=actions.Options(), where=lambda k: k.vkn == R.VKN)
        if prof:
            prof.disable()
        wall = time.perf_counter() - t0
    finally:
        timer.restore()
        if original is not None:
            restore._Verifier = original
    if summary.count(restore.RESTORED) != 1:
        raise BenchError(f"in-process restore: {[(r.status, r.message) for r in summary.results]}")
    phases = dict(timer.spent)
    both = phases.pop("verify + report", 0.0)
    phases[AFTER] = both - phases.get("İbraz Raporu", 0.0)
    v = made[0] if made else None
    how = (f"worker processes at most {v.limit}; files read by the restoring process itself {v.here}, "
           f"read again at the end {v.reread}" if v else "")
    text = ""
    if prof:
        s = io.StringIO()
        stats = pstats.Stats(prof, stream=s)
        stats.sort_stats("cumulative").print_stats(22)
        stats.sort_stats("tottime").print_stats(18)
        text = s.getvalue()
    return wall, phases, text, how


# -- the benchmark ---------------------------------------------------------------------------------

def bench_restore(rep: Report, work: Path, sizes: Sizes, profile: bool, also: Path | None = None) -> None:
    folder, files = _month(work, sizes)
    total = sum(p.stat().st_size for p in files)
    originals = {p.name: p.stat().st_size for p in files}
    rep.say(f"== restore: one month, {len(files)} files, {mb(total)} ({sizes.parts} journal parts of "
            f"~{sizes.part_mb:g} MiB), from the storage server on 127.0.0.1 (its own process) ==")
    setup = Setup(work, folder)
    try:
        t_backup = setup.backup()
        info = setup.stored()
        pkg_size = int(info.get("size") or 0)
        rep.say(f"(set-up, not timed: edefter backup of the month {t_backup:.1f} s; stored package "
                f"{mb(pkg_size)}, receipt {info.get('receipt')})")
        package_name = f"{R.VKN}-{R.PERIOD.replace('-', '')}-0000.zip"
        R.warm_page_cache(files)
        load0 = os.getloadavg()
        restores, bases, syncs, verifies, others = [], [], [], [], []
        cpu: dict[int, float] = {}  # id(run) -> CPU seconds of its tree
        for i in range(sizes.repeats):  # interleaved, so drifting machine load hits both sides alike
            out = setup.base / f"curl-{i}"
            cmd, env = curl_unzip(setup, out, package_name)
            b, cpu_b = measured(cmd, env)
            if b.rc != 0:
                raise BenchError(f"curl+unzip exited {b.rc}: {b.stderr[-2000:]!r}")
            _expect(out / "files", originals, "curl+unzip")
            syncs.append(_sync())
            bases.append(b)
            cpu[id(b)] = cpu_b
            # the same work as the restore: the unzipped month verified by the engine (info)
            v, cpu_v = measured(R.edefter_cmd() + ["verify", str(out / "files"), "--no-cache", "--json"], setup.env)
            sets = json.loads(v.stdout or b"{}").get("sets") or [{}]
            if v.rc != 0 or len(sets) != 1 or not sets[0].get("valid"):
                raise BenchError(f"edefter verify of the unzipped month exited {v.rc}: {v.stdout[-1500:]!r}")
            verifies.append(v)
            cpu[id(v)] = cpu_v
            shutil.rmtree(out)
            _sync()

            def restore_once(out: Path, env: dict):
                r, cpu_r = measured(restore_cmd(setup, out), env)
                _check_restore(r, out, originals)
                _sync()
                cpu[id(r)] = cpu_r
                shutil.rmtree(out)
                _sync()
                return r

            restores.append(restore_once(setup.base / f"geri-{i}", setup.env))
            if also is not None:  # the same restore by another checkout's code (a before/after in one run)
                others.append(restore_once(setup.base / f"geri-also-{i}", dict(setup.env, PYTHONPATH=str(also))))
        load1 = os.getloadavg()
        # one more, in-process, for the split (and the profile); not part of the timed figures
        out = setup.base / "geri-split"
        split_wall, phases, _, how = restore_in_process(setup, out, False)
        _expect(out, originals, "in-process restore")
        shutil.rmtree(out)
        _sync()
        prof_text = ""
        if profile:  # a run of its own: the profiler's overhead stays out of the split
            out = setup.base / "geri-profile"
            _, _, prof_text, _ = restore_in_process(setup, out, True)
            shutil.rmtree(out)
        server_peak = setup.server.peak_rss()
    finally:
        setup.close()
    shutil.rmtree(setup.base, ignore_errors=True)

    r, b = best(restores), best(bases)
    v = best(verifies)
    cores = os.cpu_count() or 1
    low = max(max(x.tree_rss for x in restores), max(x.max_rss for x in restores))
    high = max(x.hwm_sum for x in restores)
    pss = max(x.tree_pss for x in restores)
    single = max(x.max_rss for x in restores)
    sync_after = syncs[bases.index(b)]
    cpu_r, cpu_b, cpu_v = min(cpu[id(x)] for x in restores), min(cpu[id(x)] for x in bases), min(
        cpu[id(x)] for x in verifies)
    rep.say(f"edefter restore:  best {r.wall:.2f} s of {[round(x.wall, 2) for x in restores]}, "
            f"{total / MB / r.wall:.0f} MB/s restored; CPU {[round(cpu[id(x)], 2) for x in restores]} s")
    rep.say(f"curl + unzip:     best {b.wall:.2f} s of {[round(x.wall, 2) for x in bases]}, "
            f"{total / MB / b.wall:.0f} MB/s; CPU {[round(cpu[id(x)], 2) for x in bases]} s; the sync after it took "
            f"{sync_after:.2f} s (not timed: unzip does not fsync, restore does)")
    rep.say(f"memory, restore: largest single process {mb(single)} (VmHWM); tree, sampled every 50 ms: RSS sum "
            f"{mb(max(x.tree_rss for x in restores))}, PSS sum {mb(pss)}; sum of per-process high-water marks "
            f"{mb(high)} (up to {max(x.procs for x in restores)} processes); curl+unzip {mb(b.hwm_sum)}")
    if server_peak:
        rep.say(f"(server process peak RSS over the whole run, backup included: {mb(server_peak)})")
    rep.say("load average (1/5/15 min) before / after: " + " / ".join(
        " ".join(f"{x:.2f}" for x in la) for la in (load0, load1)))
    rep.say(R.other_load([("restore", restores), ("curl+unzip", bases), ("verify", verifies)]
                         + ([(f"restore of {also}", others)] if others else [])))
    if others:
        a = best(others)
        rep.say(f"edefter restore, code of {also}: best {a.wall:.2f} s of {[round(x.wall, 2) for x in others]}; CPU "
                f"{[round(cpu[id(x)], 2) for x in others]} s; memory: Σ VmHWM {mb(max(x.hwm_sum for x in others))}, "
                f"sampled RSS sum {mb(max(x.tree_rss for x in others))}, PSS sum {mb(max(x.tree_pss for x in others))}")
        r_also = rep.ratio(f"restore of {also.name}/curl+unzip", a.wall, b.wall, "curl+unzip")
        also_rows = [
            ("restore", f"the same, code of {also} (interleaved in the same loop)", f"{a.wall:.2f} s",
             f"curl + unzip {b.wall:.2f} s", f"{r_also:.2f}×", "(info)", None),
            ("restore", f"code of {also}: CPU seconds (least); memory Σ VmHWM",
             f"{min(cpu[id(x)] for x in others):.2f} s; {mb(max(x.hwm_sum for x in others))}", "", "", "(info)", None)]
    rep.say(f"in-process restore for the split: {split_wall:.2f} s ({how})")
    for name, secs in sorted(phases.items(), key=lambda kv: -kv[1]):
        rep.say(f"   {name}: {secs:.2f} s")
    accounted = sum(phases.values())
    rep.say(f"   rest (journal, run lock, settings, worker start-up): {split_wall - accounted:.2f} s")
    rep.say(f"   subprocess best minus the in-process run (start-up, exit, run-to-run spread): {r.wall - split_wall:.2f} s")
    rep.say(f"edefter verify --no-cache of the unzipped month: best {v.wall:.2f} s of "
            f"{[round(x.wall, 2) for x in verifies]}, CPU {cpu_v:.2f} s (curl + unzip + verify {b.wall + v.wall:.2f} s)")
    # curl + unzip is one process at a time: its CPU seconds are its time on a quiet machine (less I/O waits)
    rep.say(f"floor on this machine: the restore's least CPU {cpu_r:.2f} s over {cores} cores = {cpu_r / cores:.2f} s, "
            f"{cpu_r / cores / cpu_b:.2f}x curl+unzip's CPU {cpu_b:.2f} s; the engine's verification alone (verify's "
            f"CPU {cpu_v:.2f} s) over {cores} cores = {cpu_v / cores:.2f} s, {cpu_v / cores / cpu_b:.2f}x")
    ratio = rep.ratio("restore/curl+unzip", r.wall, b.wall, "curl+unzip")
    r_sync = rep.ratio("restore/curl+unzip+sync", r.wall, b.wall + sync_after, "curl+unzip+sync")
    r_same = rep.ratio("restore/curl+unzip+edefter verify", r.wall, b.wall + v.wall, "curl+unzip+verify")
    r_cpu = rep.ratio("restore CPU/curl+unzip CPU", cpu_r, cpu_b, "curl+unzip CPU")
    rep.target("restore time <= 1.5x curl+unzip", ratio <= 1.5, f"{ratio:.2f}x")
    mem_ok = high < 150 * MB
    rep.target("restore client peak memory < 150 MB (process tree, upper bound)", mem_ok,
               f"between {mb(low)} and {mb(high)}")
    after = phases.get(AFTER, 0.0)
    rep.row("restore", f"wall time, `edefter restore` of a {mb(total)} month", f"{r.wall:.2f} s",
            f"curl + unzip {b.wall:.2f} s", f"{ratio:.2f}×", "≤ 1.5×", ratio <= 1.5)
    rep.row("restore", "against curl + unzip + sync (restore fsyncs, unzip does not)", f"{r.wall:.2f} s",
            f"{b.wall + sync_after:.2f} s", f"{r_sync:.2f}×", "(info)", None)
    rep.row("restore", "against curl + unzip + `edefter verify --no-cache` of the unzipped month (the same work)",
            f"{r.wall:.2f} s", f"{b.wall:.2f} + {v.wall:.2f} s", f"{r_same:.2f}×", "(info)", None)
    rep.row("restore", "CPU seconds, whole process tree (least of the runs)", f"{cpu_r:.2f} s",
            f"curl + unzip {cpu_b:.2f} s; verify {cpu_v:.2f} s", f"{r_cpu:.2f}×", "(info)", None)
    rep.row("restore", f"floor on {cores} cores: restore CPU / cores; the engine's verification alone (verify CPU / cores)",
            f"{cpu_r / cores:.2f} s; {cpu_v / cores:.2f} s", f"curl + unzip CPU {cpu_b:.2f} s",
            f"{cpu_r / cores / cpu_b:.2f}×; {cpu_v / cores / cpu_b:.2f}×", "(info)", None)
    rep.row("restore", f"split (in-process run; {how}): " + "; ".join(
        f"{k} {x:.2f} s" for k, x in sorted(phases.items(), key=lambda kv: -kv[1])), f"{split_wall:.2f} s", "", "",
        "(info)", None)
    rep.row("restore", "verification left after the last file was written (in-process split)", f"{after:.2f} s",
            "", "", "(info)", None)
    rep.row("restore", "peak memory, client process tree: upper bound (Σ per-process VmHWM)", mb(high),
            f"curl+unzip {mb(b.hwm_sum)}", "", "< 150 MB", mem_ok)
    rep.row("restore", "peak memory: sampled RSS sum / PSS sum / largest single process",
            f"{mb(max(x.tree_rss for x in restores))} / {mb(pss)} / {mb(single)}", "", "", "(info)", None)
    for row in also_rows if others else []:
        rep.row(*row)
    if prof_text:
        rep.say("cProfile of the in-process restore (main thread; the verify workers are other processes):")
        for line in prof_text.rstrip().splitlines():
            rep.say("   " + line)


BENCHES = {"restore": bench_restore}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "timed runs per side (best is kept)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of an in-process restore")
    ap.add_argument("--also", type=Path, help="another checkout (e.g. a `git archive` of an older commit) whose "
                    "restore is timed in the same loop, for a before/after under the same load")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = Sizes(sizes.parts, sizes.part_mb, args.repeats)
    work, info, rep = start("restore benchmark", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    also = args.also.resolve() if args.also else None
    benches = [(n, lambda n=n: BENCHES[n](rep, work, sizes, args.profile, also)) for n in names]
    return run_all(rep, benches, info, argv, work, "restore-results", "python bench/restore_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
