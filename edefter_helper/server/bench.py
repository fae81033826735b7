"""Memory benchmark: one big upload from a client process to a server process, peak RSS of each.

    python -m edefter_helper.server.bench --size-mb 1024 --work /var/tmp/bench

Both sides run in their own fresh process so their peaks are not mixed with a test runner's.
Figures are VmHWM from /proc (Linux); elsewhere the client falls back to ru_maxrss and the
server figure is None.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.server.checks import FORMAT, MANIFEST
from edefter_helper.server.testing import sha256_of

BENCH_KEY = MonthKey("1234567890", "0000", "2024-01")
_USER, _PASSWORD = "bench", "bench-parola"

_CLIENT = r"""
import json, resource, sys, time
from pathlib import Path
from edefter_helper.engine.model import MonthKey
from edefter_helper.targets.base import Package
from edefter_helper.targets.http import HttpTarget
url, user, password, path, sha, vkn, branch, period = sys.argv[1:9]
key = MonthKey(vkn, branch, period)
t = time.monotonic()
with HttpTarget(url, user, password, timeout=(10, 900)) as target:
    receipt = target.send(Package(Path(path), key, sha, Path(path).stat().st_size), "bench")
# VmHWM belongs to this process image only; ru_maxrss can carry the spawning parent's
# peak across exec (vfork), which would blame the parent's memory on the client
try:
    peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"state": receipt.state, "receipt": receipt.reference, "seconds": time.monotonic() - t,
                  "client_peak_rss": peak}))
"""


def write_big_package(dest: Path, size: int, key: MonthKey = BENCH_KEY) -> tuple[Path, str]:
    """A package with one incompressible ledger member of `size` bytes, written in blocks."""
    member = f"{key.vkn}-{key.period.replace('-', '')}-Y-000000.xml"
    import hashlib

    digest = hashlib.sha256()
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        info = zipfile.ZipInfo(member, date_time=(2024, 2, 1, 0, 0, 0))
        with zf.open(info, "w", force_zip64=True) as out:
            left = size
            while left:
                block = os.urandom(min(left, 1 << 20))
                digest.update(block)
                out.write(block)
                left -= len(block)
        manifest = {"format": FORMAT, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                    "files": [{"name": member, "size": size, "sha256": digest.hexdigest()}]}
        zf.writestr(MANIFEST, json.dumps(manifest))
    return dest, sha256_of(dest)


def run_benchmark(size: int, work: Path, timeout: float = 1800) -> dict:
    """Upload a `size`-byte package; return peaks (bytes) and timings. Waits for verification."""
    from edefter_helper.server.run import add_user, peak_rss_of, start_in_subprocess

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "server-data"
    add_user(data, _USER, _PASSWORD, [BENCH_KEY.vkn])
    package, sha = write_big_package(work / BENCH_KEY.package_name, size)
    with start_in_subprocess(data, max_size=max(size * 2, 1 << 20)) as server:
        out = subprocess.run(
            [sys.executable, "-c", _CLIENT, server.url, _USER, _PASSWORD, str(package), sha,
             BENCH_KEY.vkn, BENCH_KEY.branch, BENCH_KEY.period],
            capture_output=True, text=True, timeout=timeout, check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["server_peak_rss_after_upload"] = peak_rss_of(server.pid)
        # then let the background check read and extract the whole package
        import requests

        deadline = time.monotonic() + timeout
        state = "accepted"
        while state == "accepted" and time.monotonic() < deadline:
            time.sleep(0.5)
            state = requests.get(f"{server.url}/v1/months/{BENCH_KEY.vkn}/{BENCH_KEY.branch}/{BENCH_KEY.period}",
                                 auth=(_USER, _PASSWORD), timeout=30).json()["state"]
        result["final_state"] = state  # 'rejected' is expected: random bytes are no ledger
        result["server_peak_rss"] = peak_rss_of(server.pid)
    result["size"] = size
    package.unlink(missing_ok=True)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edefter_helper.server.bench")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    result = run_benchmark(args.size_mb * 1024 * 1024, Path(args.work))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
