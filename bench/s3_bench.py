#!/usr/bin/env python
"""S3 target benchmark (issue 11): a 1 GB month package to Ceph's RGW on loopback.

    python bench/s3_bench.py              # 1 GiB package, 2 repeats (best kept)
    python bench/s3_bench.py --quick      # 64 MiB, 1 repeat

Needs Ceph's RADOS Gateway from Debian (`apt-get install radosgw ceph-mon ceph-osd`) and
../shared/scripts/ceph-s3.sh; the server is started here on free loopback ports, as the tests start it,
and stopped at the end (its store is in memory: each repeat keeps ~2 packages there until then).

  product:  `S3Target.send()` through the registry (a process of its own): one PUT with Object Lock
            COMPLIANCE + retain-until, Content-MD5 and the sha256 in metadata, then the verify-after-write
            (HEAD of the version, retention read back) — what Toplu Yedekle does per month;
  baseline: the `aws s3api put-object`-equivalent raw boto3 `put_object` of the same file (a process of
            its own, no lock, no checksum headers of ours, no read-back);
alternately, each repeat to a new key. Target: product <= 1.5x baseline. Client memory: the product
process's own high-water mark (VmHWM from /proc, an upper bound no sample can miss), target < 150 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from run import MB, BenchError, run_all, start  # noqa: E402  (bench/run.py's helpers)

DEFAULT_WORK = HERE / "_work"
RATIO_TARGET = 1.5
MEMORY_TARGET_MB = 150

# each side runs in a fresh interpreter: argv = url, access key, secret, bucket, file, key/period, sha256
PRODUCT = r"""
import sys, time
from pathlib import Path
url, access, secret, bucket, path, period, sha = sys.argv[1:8]
from edefter_helper.engine.model import MonthKey
from edefter_helper.targets import registry
from edefter_helper.targets.base import Package
key = MonthKey("4840847211", "0000", period)
p = Path(path)
t0 = time.perf_counter()
with registry.get("s3").open(f"s3://{bucket}/bench?endpoint={url}&location=TR", access, secret, None) as t:
    r = t.send(Package(path=p, key=key, sha256=sha, size=p.stat().st_size), "bench")
took = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
assert r.state == "stored" and r.sha256 == sha, (r.state, r.message)
print(took, int(hwm) * 1024, r.extra.get("mode"), r.extra.get("retain_until"))
"""

BASELINE = r"""
import sys, time
url, access, secret, bucket, path, period, sha = sys.argv[1:8]
import boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=url, aws_access_key_id=access, aws_secret_access_key=secret,
                 region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
t0 = time.perf_counter()
with open(path, "rb") as f:
    c.put_object(Bucket=bucket, Key=f"raw/{period}.zip", Body=f)
took = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(took, int(hwm) * 1024, "-", "-")
"""


def make_package(work: Path, size: int) -> tuple[Path, str]:
    path = work / f"s3-bench-{size // MB}MB.zip"
    if not path.exists() or path.stat().st_size != size:
        with open(path, "wb") as f:  # incompressible, as a zip of ledgers is
            left = size
            while left:
                chunk = os.urandom(min(left, 8 * MB))
                f.write(chunk)
                left -= len(chunk)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MB):
            h.update(chunk)
    return path, h.hexdigest()


def side(script: str, server, bucket: str, path: Path, period: str, sha: str) -> tuple[float, float, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(REPO)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, server.url, server.access_key, server.secret_key, bucket,
                           str(path), period, sha], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(proc.stderr[-2000:])
    took, hwm, mode, until = proc.stdout.split()
    return wall, float(took), int(hwm) / MB, f"{mode} {until}"


def bench_s3(rep, work: Path, size: int, repeats: int) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from s3_server import missing_reason
    from s3_server import start as start_rgw

    reason = missing_reason()
    if reason:
        raise BenchError(reason)
    path, sha = make_package(work, size)
    server = start_rgw()
    try:
        rep.say(f"Ceph RGW up in {server.start_seconds:.1f} s at {server.url}")
        bucket = server.bucket()
        product, baseline = [], []
        for i in range(repeats):
            baseline.append(side(BASELINE, server, bucket, path, f"2020-{i + 1:02d}", sha))
            product.append(side(PRODUCT, server, bucket, path, f"2021-{i + 1:02d}", sha))
            rep.say(f"repeat {i + 1}: product {product[-1][0]:.2f} s (send {product[-1][1]:.2f} s, "
                    f"{product[-1][2]:.1f} MB, {product[-1][3]}); raw put_object {baseline[-1][0]:.2f} s "
                    f"(put {baseline[-1][1]:.2f} s, {baseline[-1][2]:.1f} MB)")
    finally:
        server.stop()
    best_p, best_b = min(product), min(baseline)
    ratio = rep.ratio(f"S3 send {size / MB:.0f} MB", best_p[0], best_b[0], "raw boto3 put_object")
    hwm = max(p[2] for p in product)
    rep.target("S3 send <= 1.5x raw PUT", ratio <= RATIO_TARGET, f"{ratio:.2f}x")
    rep.target("S3 send client memory", hwm < MEMORY_TARGET_MB, f"VmHWM {hwm:.1f} MB < {MEMORY_TARGET_MB} MB")
    rep.row("S3 send (Object Lock)", f"{size / MB:.0f} MB package to RGW on loopback, process wall time",
            f"{best_p[0]:.2f} s", f"raw boto3 put_object {best_b[0]:.2f} s", f"{ratio:.2f}x", "<= 1.5x",
            ratio <= RATIO_TARGET)
    rep.row("S3 send (Object Lock)", "client peak memory (VmHWM of the sending process)", f"{hwm:.1f} MB",
            f"raw put_object {max(b[2] for b in baseline):.1f} MB", "", f"< {MEMORY_TARGET_MB} MB",
            hwm < MEMORY_TARGET_MB)
    rep.say(json.dumps({"product": product, "baseline": baseline}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size-mb", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = ap.parse_args(argv)
    size = (args.size_mb or (64 if args.quick else 1024)) * MB
    repeats = args.repeats or (1 if args.quick else 2)
    work, info, rep = start("S3 target benchmark", args.quick, args.work)
    return run_all(rep, [("s3", lambda: bench_s3(rep, work, size, repeats))], info, sys.argv[1:], work,
                   "s3-results", command="python bench/s3_bench.py")


if __name__ == "__main__":
    sys.exit(main())
