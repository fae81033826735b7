"""Where the helper keeps its own state: never next to the ledgers (the accounting program owns them)."""

from __future__ import annotations

import os
from pathlib import Path

from edefter_helper import APP_NAME


def data_dir() -> Path:
    """User data directory; EDEFTER_DATA_DIR overrides it (tests, portable installs)."""
    override = os.environ.get("EDEFTER_DATA_DIR")
    if override:
        path = Path(override)
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def journal_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("EDEFTER_JOURNAL")
    return Path(env) if env else data_dir() / "journal.sqlite3"


def cache_path() -> Path:
    env = os.environ.get("EDEFTER_CACHE")
    return Path(env) if env else data_dir() / "verify-cache.sqlite3"
