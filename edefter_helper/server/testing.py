"""A minimal month-package writer in the server's format, for tests and benchmarks.

The engine's own packager is the real producer; this one exists so the server can be
exercised with hand-made (including hostile) packages.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.server.checks import FORMAT, MANIFEST


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def build_package(files, key: MonthKey, dest: Path, *, compression=zipfile.ZIP_DEFLATED,
                  manifest: dict | None = None) -> tuple[Path, str]:
    """Zip `files` (paths) at top level with a manifest; returns (zip path, sha256)."""
    files = [Path(f) for f in files]
    if manifest is None:
        manifest = {
            "format": FORMAT, "vkn": key.vkn, "branch": key.branch, "period": key.period,
            "files": [{"name": f.name, "size": f.stat().st_size, "sha256": sha256_of(f)} for f in files],
        }
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w", compression=compression) as zf:
        for f in files:
            zf.write(f, f.name)
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    return dest, sha256_of(dest)
