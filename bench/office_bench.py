#!/usr/bin/env python
"""Office-scale benchmark (issue 12 §3): an accounting office's backfill, Durum Sorgula and Tara.

    python bench/office_bench.py                # 300 firms × 120 months = 36 000 months (~1 h the first time)
    python bench/office_bench.py --firms 30     # a tenth of the office
    python bench/office_bench.py --quick        # 4 firms × 12 months, about a minute

The office: the first N firms of the local-check tree (`localcheck_bench.ensure_tree`: real signed,
GİB-approved months, 7 files each, in GİB's VKN/01.01.YYYY-31.12.YYYY/MM/ layout), one control
workbook listing them, one storage server (`edefter serve`'s code in its own process, on loopback)
with one user for all the office's VKNs, as an office runs it. Every step is the real `edefter`
command in a fresh process, its whole process tree's memory sampled (VmHWM per process, summed):

 1. first Tara (`edefter refresh`), cold verify cache: not a target, but it fills the cache (kept
    under the work folder between runs, `EDEFTER_CACHE`) so that the steps below run warm.
 2. backfill: `edefter backup --all` of every month from an empty server and an empty journal,
    killed with SIGKILL once a third of the months are stored (a power cut, a closed laptop), then
    run again until it returns. Checked afterwards: the server holds every month exactly once (one
    package per month: the second run sent only what the server did not already hold) and every
    Dönemler row reads Yedeklendi. Target: client memory < 150 MB throughout (both runs).
 3. Durum Sorgula over every month (`edefter query`), target < 60 s; baseline in the same run: the
    same batch questions as raw HTTP (`POST /v1/months/query`, 500 months a request, requests).
 4. Tara again, warm (`edefter refresh`); baseline `find DIRS -type f | wc -l`.

Baselines also in the same run: packing every month alone (`engine.package.pack` in this process,
from the warm cache) — what the backfill must do on the client. Prints RATIO / TARGET lines like
bench/run.py and writes office-results.md / .txt into the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

import localcheck_bench as LC  # noqa: E402
import run as R  # noqa: E402
from backup_bench import ChildServer  # noqa: E402
from run import BenchError, Report, chosen, common_args, mb, run_all, run_measured, start  # noqa: E402

TARGET = "Ofis Sunucusu"
USER = "ofis"


@dataclass(frozen=True)
class Sizes:
    firms: int
    months: int


FULL = Sizes(firms=300, months=120)
QUICK = Sizes(firms=4, months=12)


class Office:
    """The office's folders, workbook, data folder (journal), keyring file and server."""

    def __init__(self, work: Path, sizes: Sizes):
        self.sizes = sizes
        self.root, self.lists = LC.ensure_tree(work, sizes.firms, sizes.months)
        self.folders = [self.root / LC._vkn(i) for i in range(sizes.firms)]
        self.vkns = [LC._vkn(i) for i in range(sizes.firms)]
        self.months = sizes.firms * sizes.months
        self.nfiles = sum(len(rows) for i in range(sizes.firms)
                          for rows in json.loads((self.lists / f"{LC._vkn(i)}.json").read_text())["periods"].values())
        self.base = work / f"office-run-{sizes.firms}x{sizes.months}"
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        self.data = self.base / "data"
        self.data.mkdir()
        self.store = self.base / "sunucu"
        self.workbook = self.base / "ofis.xlsm"
        self.cache = work / f"office-verify-cache-{sizes.firms}x{sizes.months}.sqlite3"  # kept: warm next time
        keyring_file = self.base / "anahtarlik.json"
        self.env = dict(os.environ)
        for name in ("EDEFTER_JOURNAL",):
            self.env.pop(name, None)
        self.env.update({"EDEFTER_DATA_DIR": str(self.data), "EDEFTER_CACHE": str(self.cache),
                         "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(REPO),
                         # the test suite's file keyring: a CLI subprocess reads the password planted here
                         "PYTHON_KEYRING_BACKEND": "tests.fakes.file_keyring.FileKeyring",
                         "EDEFTER_TEST_KEYRING": str(keyring_file)})
        self.password = secrets.token_urlsafe(18)
        self.server: ChildServer | None = None

    def start_server(self) -> None:
        from edefter_helper import server

        server.add_user(self.store, USER, self.password, self.vkns)
        self.server = ChildServer(self.store)
        self._workbook(self.server.url)
        self._plant_password()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _plant_password(self) -> None:
        import subprocess

        code = ("from edefter_helper import credentials; import sys; "
                "credentials.set_password(sys.argv[1], sys.argv[2], sys.stdin.read())")
        subprocess.run([sys.executable, "-c", code, TARGET, USER], input=self.password, text=True,
                       env=self.env, check=True, cwd=str(REPO))

    def _workbook(self, url: str) -> None:
        from edefter_helper.addin.check import new_workbook
        from edefter_helper.workbook import layout as L
        from edefter_helper.workbook.file import FileBook

        new_workbook(self.workbook)
        book = FileBook(self.workbook)
        book.write_rows(L.FIRMS, [{"name": LC._firm_name(i), "vkn": LC._vkn(i), "branch": "",
                                   "folder": str(self.folders[i]), "target": TARGET, "user": USER, "auto": L.YES}
                                  for i in range(self.sizes.firms)])
        book.write_rows(L.TARGETS, [{"name": TARGET, "kind": "http", "address": url,
                                     "description": L.DEFAULT_DESCRIPTION}])
        book.save()

    def cmd(self, *args: str) -> list[str]:
        return R.edefter_cmd() + [args[0], "--workbook", str(self.workbook), *args[1:]]

    def stored(self) -> tuple[int, int, int]:
        """(packages, distinct months, months stored) in the server's index, read-only."""
        try:
            db = sqlite3.connect(f"file:{self.store / 'store.sqlite3'}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return 0, 0, 0
        try:
            n = db.execute("SELECT count(*) FROM packages").fetchone()[0]
            months = db.execute("SELECT count(*) FROM (SELECT DISTINCT vkn, branch, period FROM packages)").fetchone()[0]
            done = db.execute("SELECT count(*) FROM packages WHERE state='stored'").fetchone()[0]
            return n, months, done
        except sqlite3.Error:
            return 0, 0, 0
        finally:
            db.close()

    def rows(self) -> list[tuple]:
        """Dönemler's (VKN, period, status) as the workbook file holds them."""
        from edefter_helper.workbook import layout as L
        from edefter_helper.workbook.file import FileBook

        return [(r["vkn"], r["period"], r["status"]) for r in FileBook(self.workbook).read_rows(L.PERIODS)]


def _ok(run: R.Run, what: str, codes=(0,)) -> None:
    if run.rc not in codes:
        raise BenchError(f"{what} exited {run.rc}: {run.stderr.decode(errors='replace')[-1500:]}"
                         f"{run.stdout.decode(errors='replace')[-800:]}")


def _raw_query_seconds(office: Office, keys: list[tuple[str, str, str]]) -> float:
    import requests

    from edefter_helper.actions import BATCH

    with requests.Session() as s:
        s.auth = (USER, office.password)
        t0 = time.perf_counter()
        for i in range(0, len(keys), BATCH):
            body = {"months": [{"vkn": v, "branch": b, "period": p} for v, b, p in keys[i:i + BATCH]]}
            r = s.post(f"{office.server.url}/v1/months/query", json=body, timeout=300)
            r.raise_for_status()
            if len(r.json()["months"]) != len(body["months"]):
                raise BenchError("raw query: the server answered another number of months")
        return time.perf_counter() - t0


def _pack_alone(office: Office) -> tuple[float, int]:
    """Every month packed alone from the warm cache, in this process (each package deleted once
    written). (seconds, months)."""
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.package import pack
    from edefter_helper.engine.verify import verify_roots

    cache = FileCache(office.cache)
    try:
        result = verify_roots(office.folders, cache)
    finally:
        cache.close()
    sets = [ms for ms in result.sets if ms.valid]
    tmp = Path(tempfile.mkdtemp(prefix="office-pack-", dir=office.base))
    try:
        t0 = time.perf_counter()
        for ms in sets:
            p = pack(ms, tmp / f"{ms.key.vkn}-{ms.key.period}")
            os.unlink(p.path)
        return time.perf_counter() - t0, len(sets)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_office(rep: Report, work: Path, sizes: Sizes) -> None:
    from edefter_helper import status as S

    office = Office(work, sizes)
    n = office.months
    rep.say(f"== office: {sizes.firms} firms × {sizes.months} months = {n} months, {office.nfiles} files, "
            f"one storage server in its own process on loopback ==")
    load0 = os.getloadavg()
    try:
        office.start_server()
        first = run_measured(office.cmd("refresh"), office.env)
        _ok(first, "first refresh", (0, 1))
        rep.say(f"1. first Tara (the verify cache {office.cache.name} is kept between runs: cold only the first "
                f"time): {first.wall:.1f} s, peak memory {mb(first.hwm_sum)}")

        # 2. backfill, killed once a third is stored, then resumed
        third = max(1, n // 3)
        killed = run_measured(office.cmd("backup", "--all", "--json"), office.env,
                              kill_when=lambda: office.stored()[2] >= third)
        at_kill = office.stored()
        if killed.rc == 0:
            rep.say("   (the first backfill run finished before it could be killed)")
        elif killed.rc != -9:
            _ok(killed, "backfill (first run)")
        resumed = run_measured(office.cmd("backup", "--all", "--json", "--wait", "1800"), office.env)
        _ok(resumed, "backfill (resumed)")
        packages, distinct, done = office.stored()
        if (packages, distinct, done) != (n, n, n):
            raise BenchError(f"after the backfill the server holds {packages} packages for {distinct} months, "
                             f"{done} stored; expected {n} each (a month sent twice, or one missing)")
        rows = office.rows()
        bad = [r for r in rows if r[2] != S.BACKED_UP]
        if len(rows) != n or bad:
            raise BenchError(f"Dönemler: {len(rows)} rows, {len(bad)} not Yedeklendi (e.g. {bad[:2]})")
        backfill = killed.wall + resumed.wall
        peak = max(killed.hwm_sum, resumed.hwm_sum)
        rep.say(f"2. backfill: first run killed after {killed.wall:.1f} s with {at_kill[2]} of {n} months stored "
                f"(peak memory {mb(killed.hwm_sum)}); resumed run {resumed.wall:.1f} s (peak {mb(resumed.hwm_sum)}); "
                f"server afterwards: {packages} packages, {distinct} months, all stored; Dönemler {len(rows)} rows "
                f"Yedeklendi")
        t_pack, packed = _pack_alone(office)
        rep.say(f"   baseline: packing all {packed} months alone {t_pack:.1f} s ({t_pack / packed * 1000:.2f} ms/month); "
                f"backfill {backfill:.1f} s ({backfill / n * 1000:.2f} ms/month)")
        rep.ratio(f"backfill {n} months (both runs) / packing alone", backfill, t_pack, "pack alone")
        rep.target(f"backfill of {n} months: client memory < 150 MB throughout (both runs)", peak < 150 * R.MB,
                   f"peak {mb(peak)} (upper bound: Σ VmHWM of the process tree)")
        rep.target(f"backfill of {n} months resumable: every month stored once after a SIGKILL", True,
                   f"{packages} packages for {n} months")
        rep.row("office backfill", f"{n} months, killed at {at_kill[2]} stored, then resumed: wall (both runs)",
                f"{backfill:.1f} s", f"pack alone {t_pack:.1f} s", f"{backfill / t_pack:.2f}×", "(info)", None)
        rep.row("office backfill", "client peak memory, killed run / resumed run", f"{mb(killed.hwm_sum)} / "
                f"{mb(resumed.hwm_sum)}", "", "", "< 150 MB", peak < 150 * R.MB)
        rep.row("office backfill", "every month stored exactly once after the kill", f"{packages} packages / {n}",
                "", "", "once", True)

        # 3. Durum Sorgula over every month
        query = run_measured(office.cmd("query", "--json"), office.env)
        _ok(query, "query")
        answered = json.loads(query.stdout.decode() or "{}")
        keys = [(v, "0000", p) for v in office.vkns for p in R.periods_back(sizes.months)]
        raw = _raw_query_seconds(office, keys)
        rep.say(f"3. Durum Sorgula over {n} months: {query.wall:.1f} s, peak memory {mb(query.hwm_sum)}; raw HTTP of "
                f"the same batch questions {raw:.2f} s")
        rep.ratio(f"Durum Sorgula {n} months / raw HTTP questions", query.wall, raw, "raw HTTP")
        rep.target(f"Durum Sorgula over {n} months < 60 s", query.wall < 60, f"{query.wall:.1f} s")
        rep.row("office Durum Sorgula", f"{n} months against the own server (batched)", f"{query.wall:.1f} s",
                f"raw HTTP {raw:.2f} s", f"{query.wall / raw:.1f}×", "< 60 s", query.wall < 60)
        rep.row("office Durum Sorgula", "peak memory", mb(query.hwm_sum), "", "", "(info)", None)
        rep.say(f"   its summary: {answered.get('message', '')}")
        for note in answered.get("notes", [])[:5]:
            rep.say(f"   its note: {note[:300]}")

        # 4. Tara, warm
        find = run_measured(["sh", "-c", f"find {office.root} -mindepth 1 -maxdepth 1 >/dev/null; find "
                             + " ".join(f"'{d}'" for d in office.folders) + " -type f | wc -l"], office.env)
        warm = run_measured(office.cmd("refresh"), office.env)
        _ok(warm, "warm refresh", (0, 1))
        counted = int(find.stdout.strip().splitlines()[-1] or 0)
        if counted != office.nfiles:
            raise BenchError(f"find counted {counted} files, expected {office.nfiles}")
        rep.say(f"4. Tara warm: {warm.wall:.1f} s, peak memory {mb(warm.hwm_sum)}; find|wc {find.wall:.2f} s")
        rep.ratio(f"Tara warm ({n} months) / find", warm.wall, find.wall, "find|wc")
        rep.row("office Tara", f"warm, {n} months, {office.nfiles} files (scan, verdicts, journal, Dönemler write)",
                f"{warm.wall:.1f} s", f"find\\|wc {find.wall:.2f} s", f"{warm.wall / find.wall:.0f}×", "(info)", None)
        rep.row("office Tara", "peak memory warm / first (cold cache)", f"{mb(warm.hwm_sum)} / {mb(first.hwm_sum)}",
                "", "", "(info)", None)
        rep.say("   load average (1/5/15 min) before / after: " + " / ".join(
            " ".join(f"{x:.2f}" for x in la) for la in (load0, os.getloadavg())))
        rep.say("   " + R.other_load([("first Tara", [first]), ("backfill", [killed, resumed]), ("query", [query]),
                                      ("Tara", [warm])]))
    finally:
        office.stop()
    shutil.rmtree(office.base, ignore_errors=True)


BENCHES = {"office": bench_office}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(ap, BENCHES, "(one run of each step: a backfill cannot be repeated on the same server)")
    ap.add_argument("--firms", type=int, help="firms (default 300; 4 with --quick)")
    ap.add_argument("--months", type=int, help="months per firm (default 120; 12 with --quick)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sizes = Sizes(args.firms or sizes.firms, args.months or sizes.months)
    work, info, rep = start("office benchmark", args.quick, args.work)
    names = chosen(ap, args.only, BENCHES)
    benches = [(n, lambda n=n: BENCHES[n](rep, work, sizes)) for n in names]
    return run_all(rep, benches, info, argv, work, "office-results", "python bench/office_bench.py")


if __name__ == "__main__":
    raise SystemExit(main())
