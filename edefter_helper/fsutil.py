"""Small file-system helpers every layer needs: durable atomic writes and file hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Iterator

CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    """Make a rename durable on POSIX; Windows cannot open folders and does not need it."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(dest: Path, prefix: str = ".tmp-", suffix: str = ".part") -> Iterator[BinaryIO]:
    """A file in dest's folder that becomes `dest` only when the block ends without error
    (flushed, fsynced, renamed); otherwise it is removed and `dest` is untouched."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
