"""Small file-system helpers every layer needs: durable atomic writes and file hashes."""

from __future__ import annotations

import hashlib
import os
import stat
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


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows (another thread may be
    creating a file at that moment); once, at import, otherwise."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask() if os.name != "nt" else 0


def _take_mode(fd: int, dest: Path) -> None:
    """The new file gets what a normal save gives: the replaced file's mode, owner and group, or for a
    new file 0666 minus the umask (mkstemp makes every file 0600)."""
    if os.name == "nt":
        return
    try:
        st = os.stat(dest)
    except OSError:
        os.fchmod(fd, 0o666 & ~_UMASK)
        return
    with suppress(OSError):  # only root or the owner may give a file away
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))


@contextmanager
def atomic_write(dest: Path, prefix: str = ".tmp-", suffix: str = ".part") -> Iterator[BinaryIO]:
    """A file in dest's folder that becomes `dest` only when the block ends without error
    (flushed, fsynced, renamed); otherwise it is removed and `dest` is untouched. The result keeps
    the replaced file's mode and owner; a new file follows the umask."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _take_mode(f.fileno(), dest)
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
