"""One deterministic zip per month: every file under its original name with its exact bytes,
plus manifest.json (name, size, sha256 of each). The same files give the same zip bytes.

Only the bytes that were verified are packed: each file is hashed while it is zipped, and a file
whose sha256 or size differs from what verify read makes the whole package refused (nothing is
left behind), so a file changed between check and use is never sent."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edefter_helper.engine.model import MonthSet
from edefter_helper.fsutil import atomic_write

MANIFEST = "manifest.json"
FORMAT = "edefter-yedekleme/1"


class PackError(Exception):
    """The month cannot be packed as verified; `message` is Turkish, `paths` the files at fault."""

    def __init__(self, message: str, paths: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.paths = paths or []


@dataclass(frozen=True)
class PackedMonth:
    path: Path
    sha256: str
    size: int
    files: tuple  # ((name, size, sha256), ...)


class _HashingSink:
    """Write-only, non-seekable: zipfile then streams (data descriptors) and we hash as it goes."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def tell(self) -> int:  # zipfile asks for offsets; it never seeks a non-seekable sink
        return self.size

    def seekable(self) -> bool:
        return False


def _zipinfo(name: str, period: str, compress: bool) -> zipfile.ZipInfo:
    year, month = (int(x) for x in period.split("-"))
    zi = zipfile.ZipInfo(name, date_time=(year, month, 1, 0, 0, 0))
    # zlib's default level (6), like `zip -6`; GİB's own .zip downloads are stored as they are
    zi.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    zi.create_system = 0  # same bytes on every OS
    zi.external_attr = 0o644 << 16
    return zi


_hasher: ThreadPoolExecutor | None = None
_hasher_lock = threading.Lock()


def _hashing_pool() -> ThreadPoolExecutor:
    """One pool for every pack of the process (a bulk backup packs a month after another, several at
    once): a new thread per month cost more than hashing a small month."""
    global _hasher
    with _hasher_lock:
        if _hasher is None:
            _hasher = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="pack-sha256")
        return _hasher


def pack(ms: MonthSet, out_dir: Path) -> PackedMonth:
    """Write `VKN-YYYYMM-ŞŞŞŞ.zip` into out_dir atomically, from a verified set (every file carries
    the sha256 verify read). Raises PackError when any file's bytes are not the verified ones."""
    unverified = [f.location for f in ms.files if not f.sha256]
    if unverified or not ms.valid:
        raise PackError("Dönem doğrulanmadan paketlenemez: " + ", ".join(Path(x).name for x in unverified),
                        unverified)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / ms.key.package_name
    entries = []
    hasher = _hashing_pool()
    with atomic_write(target, prefix=".paket-", suffix=".tmp") as raw:
        sink = _HashingSink(raw)
        with zipfile.ZipFile(sink, "w", allowZip64=True) as zf:
            for f in ms.files:
                name = f.path.name  # the original name, byte for byte
                zi = _zipinfo(name, ms.key.period, compress=not name.lower().endswith(".zip"))
                sha = hashlib.sha256()
                size = 0
                with open(f.path, "rb") as src, zf.open(zi, "w", force_zip64=f.size > 0x7FFFFFFF) as dst:
                    while chunk := src.read(1 << 20):
                        # hash on a second core while zlib compresses (both release the GIL)
                        hashed = hasher.submit(sha.update, chunk)
                        size += len(chunk)
                        dst.write(chunk)
                        hashed.result()
                if sha.hexdigest() != f.sha256 or size != f.size:
                    # raised inside atomic_write: the half-written package is removed, never renamed
                    raise PackError(f"{name} doğrulandıktan sonra değişti (okunan baytlar doğrulananlarla aynı "
                                    f"değil); paket hazırlanmadı, hiçbir şey gönderilmedi. Dosyayı yazan "
                                    f"program işini bitirdikten sonra yeniden deneyin.", [f.location])
                entries.append((name, size, sha.hexdigest()))
            manifest = {
                "format": FORMAT, "vkn": ms.key.vkn, "branch": ms.key.branch, "period": ms.key.period,
                "files": [{"name": n, "size": s, "sha256": h} for n, s, h in entries],
            }
            data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
            zf.writestr(_zipinfo(MANIFEST, ms.key.period, compress=True), data)
    return PackedMonth(target, sink.sha.hexdigest(), sink.size, tuple(entries))
