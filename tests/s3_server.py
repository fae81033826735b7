"""A real S3 server with Object Lock for the tests: Ceph's RADOS Gateway (Debian's radosgw, ceph-mon,
ceph-osd), started once per test session with `../shared/scripts/ceph-s3.sh` on free loopback ports in a
temporary folder, and stopped by the PIDs the script leaves in DIR/run/*.pid (SIGKILL: the store is in
memory).

Use it from a test module as a pytest plugin, so every module shares the one server:

    pytest_plugins = ("tests.s3_server",)

    def test_x(ceph_s3):
        bucket = ceph_s3.bucket()            # a new bucket with Object Lock enabled
        address = ceph_s3.address(bucket, "yedek", location="TR")

Without the Debian packages, without `../shared/`, or without boto3 the tests that ask for `ceph_s3`
are skipped with the reason and the command that installs what is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCRIPT = SHARED / "scripts" / "ceph-s3.sh"
PROGRAMS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool", "ceph-authtool")
INSTALL = ("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
           "radosgw ceph-mon ceph-osd")
ACCESS_KEY, SECRET_KEY = "TESTKEY", "TESTSECRET"
START_TIMEOUT = 180  # seconds; the script itself waits up to 60 s for the S3 port


def missing_reason() -> str | None:
    """Why a Ceph S3 server cannot be started here, or None."""
    if not SCRIPT.is_file():
        return f"../shared/scripts/ceph-s3.sh bulunamadı ({SCRIPT}); gerçek S3 (Ceph RGW) testleri çalışamaz"
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        return (f"Ceph paketleri kurulu değil ({', '.join(missing)} yok); S3 testleri için (root olarak): {INSTALL}")
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "boto3 kurulu değil (pip install boto3); S3 testleri çalışamaz"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class CephS3:
    url: str
    dir: Path
    pids: list[int] = field(default_factory=list)
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    start_seconds: float = 0.0

    def client(self, secret: str | None = None):
        """A plain boto3 client (path-style, no retries) acting for the tests, not for the product."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=secret or self.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def bucket(self, lock: bool = True) -> str:
        """A new, empty bucket (Object Lock enabled unless lock=False)."""
        name = f"{'kilitli' if lock else 'kilitsiz'}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
        return name

    def address(self, bucket: str, prefix: str = "", **params) -> str:
        """The target's Hedefler address for this server."""
        query = {"endpoint": self.url, **params}
        path = f"{bucket}/{prefix}" if prefix else bucket
        return f"s3://{path}?" + "&".join(f"{k}={quote(str(v), safe=':/')}" for k, v in query.items())

    def stop(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for pid in self.pids:  # daemons, not our children: wait until they are gone
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.pids = []
        shutil.rmtree(self.dir, ignore_errors=True)


def _pids(folder: Path) -> list[int]:
    pids = []
    for f in sorted((folder / "run").glob("*.pid")):
        try:
            pids.append(int(f.read_text().strip()))
        except (OSError, ValueError):
            pass
    return pids


def _log_tail(folder: Path, lines: int = 15) -> str:
    out = []
    for f in sorted((folder / "log").glob("*.log")):
        try:
            text = f.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"--- {f.name}\n" + "\n".join(text))
    return "\n".join(out)[-4000:]


def start() -> CephS3:
    """Start a throwaway Ceph S3 server; raises RuntimeError (with the logs) when it does not come up."""
    # a short path: Ceph's admin sockets live under it (AF_UNIX paths are limited to 107 bytes)
    folder = Path(tempfile.mkdtemp(prefix="edefter-ceph-"))
    mon_port, rgw_port = free_port(), free_port()
    while rgw_port == mon_port:
        rgw_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEPH_", "AWS_"))}
    started = time.monotonic()
    try:
        proc = subprocess.run(["bash", str(SCRIPT), str(folder / "c"), str(mon_port), str(rgw_port)],
                              capture_output=True, text=True, timeout=START_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        server = CephS3(url="", dir=folder, pids=_pids(folder / "c"))
        logs = _log_tail(folder / "c")
        server.stop()
        raise RuntimeError(f"Ceph S3 sunucusu {START_TIMEOUT} s içinde başlamadı.\n{logs}") from None
    server = CephS3(url=f"http://127.0.0.1:{rgw_port}", dir=folder, pids=_pids(folder / "c"))
    if proc.returncode != 0 or "S3 ready" not in proc.stdout:
        logs = _log_tail(folder / "c")
        server.stop()
        raise RuntimeError(f"ceph-s3.sh başarısız oldu (çıkış {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}\n{logs}")
    server.start_seconds = time.monotonic() - started
    return server


@pytest.fixture(scope="session")
def ceph_s3():
    """One Ceph RGW for the whole session (about 12 s to start), stopped at the end by its PIDs."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = start()
    try:
        yield server
    finally:
        server.stop()
