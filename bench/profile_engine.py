#!/usr/bin/env python
"""cProfile of the engine's in-process paths, to see where benchmark time goes.

    python bench/profile_engine.py [--part-mb 40] [--top 25] [--what read,pack,scan] [--shape crlf] [--exact]

read: reader.read_full of one journal part (what each verify worker does per big file); --shape
      crlf / windows writes that part as samples.producers does (bench/run.py's verify-crlf / -windows);
      --exact: the exact path (libxml2's C14N per entry) instead of the lexical one (issue 7)
pack: engine.package.pack of the whole month
scan: a warm scan of a scan tree built by run.py (bench/_work/<mode>/scan-*), if one exists
Data goes to bench/_work/profile/ (generation is not profiled).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def show(prof: cProfile.Profile, top: int, title: str, wall: float) -> None:
    s = io.StringIO()
    st = pstats.Stats(prof, stream=s)
    st.sort_stats("tottime").print_stats(top)
    print(f"==== {title}: {wall:.2f} s under the profiler ====")
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:12000])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part-mb", type=float, default=40)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--what", default="read,pack,scan")
    ap.add_argument("--shape", default="canonical", help="canonical, crlf or windows (samples.producers)")
    ap.add_argument("--exact", action="store_true", help="read: the exact path, not the lexical one")
    args = ap.parse_args()
    what = set(args.what.split(","))

    from edefter_helper.engine import reader
    from edefter_helper.engine.cache import FileCache
    from edefter_helper.engine.package import pack
    from edefter_helper.engine.scan import scan
    from edefter_helper.samples.big import write_big_month

    suffix = "" if args.shape == "canonical" else f"-{args.shape}"
    folder = HERE / "_work" / "profile" / f"month-1x{args.part_mb:g}MB{suffix}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        if args.shape == "canonical":
            write_big_month(folder, "1234567890", "2024-01", parts=1, part_mb=args.part_mb)
        else:
            from edefter_helper.samples.producers import write_big_month_as

            write_big_month_as(folder, args.shape, "1234567890", "2024-01", parts=1, part_mb=args.part_mb)
        (folder / ".complete").write_text("ok\n")
    ms = scan([folder]).sets[0]
    journal = next(f for f in ms.files if f.kind == "Y")

    if "read" in what:
        if args.exact:
            reader._parse_lexical = lambda *a: False  # what a ledger outside the lexical form costs
        for _ in range(2):  # page cache
            journal.path.read_bytes()
        t0 = time.perf_counter()
        facts = reader.read_full(journal.path, journal.name)
        plain = time.perf_counter() - t0
        assert facts.get("signature_ok"), facts.get("problems")
        print(f"read_full without profiler: {plain:.2f} s, {journal.size / plain / 1e6:.0f} MB/s")
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(reader.read_full, journal.path, journal.name)
        show(prof, args.top, f"reader.read_full({journal.name.filename}, {journal.size / 2**20:.0f} MiB)",
             time.perf_counter() - t0)

    if "pack" in what:
        with tempfile.TemporaryDirectory() as out:
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.runcall(pack, ms, Path(out))
            show(prof, args.top, "package.pack(month)", time.perf_counter() - t0)

    if "scan" in what:
        trees = sorted((HERE / "_work").glob("*/scan-*x*"), key=lambda p: p.stat().st_mtime)
        if trees:
            root = trees[-1]
            with tempfile.TemporaryDirectory() as d:
                cache = FileCache(Path(d) / "c.sqlite3")
                scan([root], cache)  # fill the cache
                cache.close()
                cache = FileCache(Path(d) / "c.sqlite3")
                prof = cProfile.Profile()
                t0 = time.perf_counter()
                prof.runcall(scan, [root], cache)
                show(prof, args.top, f"scan({root.name}) warm", time.perf_counter() - t0)
                cache.close()
        else:
            print("no scan tree yet: run bench/run.py first")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
