"""Shared fixtures: every test gets its own data directory (journal, cache) under tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    data = tmp_path_factory.mktemp("edefter-data")
    monkeypatch.setenv("EDEFTER_DATA_DIR", str(data))
    monkeypatch.delenv("EDEFTER_JOURNAL", raising=False)
    monkeypatch.delenv("EDEFTER_CACHE", raising=False)
    return data


def run_edefter(*args, env_extra: dict | None = None, timeout: float = 120, input: str | None = None):
    """The real command line, as a user runs it."""
    env = dict(os.environ)
    env.update(env_extra or {})
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "edefter_helper", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", env=env, timeout=timeout, input=input)


@pytest.fixture
def edefter():
    return run_edefter


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared/ bulunamadı ({SHARED}); GİB şemaları olmadan bu test çalışamaz")
    return SHARED


@pytest.fixture
def memory_keyring():
    """An in-memory keyring for this process (the demo's): passwords set in a test stay in it."""
    import keyring

    from edefter_helper.demo import MemoryKeyring

    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def copy_server_data(src, dst):
    """A storage server's data folder copied for one test: a SQLite WAL checkpointed away while it is
    being copied (its content is in the database by then) is not an error."""
    import gc
    import shutil

    gc.collect()  # close lingering connections first, so their WAL is checkpointed

    def copy(s, d):
        try:
            return shutil.copy2(s, d)
        except FileNotFoundError:
            if str(s).endswith(("-wal", "-shm")):
                return d
            raise

    return shutil.copytree(src, dst, copy_function=copy)


def nas_workbook(tmp_path: Path, edefter, ledgers: Path, vkn: str = "4810525635", *, firm: dict | None = None,
                 sheets: dict | None = None) -> tuple[Path, Path]:
    """The common office of a test: a new control workbook (tmp_path/k.xlsm) with one firm, "Anadolu",
    whose ledgers are under `ledgers`, backed up to one klasör Hedef "NAS" (the new folder tmp_path/NAS).
    `firm`: fields over that Firmalar row; `sheets`: {layout sheet: rows} written too. (workbook, NAS)."""
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    nas = tmp_path / "NAS"
    nas.mkdir()
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": vkn, "folder": str(ledgers), "target": "NAS", **(firm or {})}])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    for sheet, rows in (sheets or {}).items():
        book.write_rows(sheet, rows)
    book.save()
    return wb, nas
