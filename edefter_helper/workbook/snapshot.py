"""A settings snapshot: the Firmalar and Hedefler rows of a workbook, written next to the journal, so
work can run in the background while the workbook stays open in Excel (a background process cannot
save — and should not read half-saved — the user's .xlsm). It is a `Book` that only reads: results
go to the journal, and the workbook shows them at the next Durumu Yenile or Yenile."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.fsutil import atomic_write
from edefter_helper.workbook import layout as L

SHEETS = (L.FIRMS, L.TARGETS, L.CALENDAR_SETTINGS, L.NOTIFY)


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_snapshot(book, path: Path) -> Path:
    """The settings sheets of `book`, as JSON at `path` (atomically)."""
    data = {"format": "edefter-ayarlar/1",
            "sheets": {s.name: [{k: _plain(v) for k, v in row.items()} for row in book.read_rows(s)]
                       for s in SHEETS}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, prefix=".ayarlar-", suffix=".tmp") as fh:
        fh.write(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return path


class SnapshotError(Exception):
    """The snapshot cannot be read; Turkish message."""


class SnapshotBook:
    """The Book protocol over a settings snapshot: reads the settings, writes nothing."""

    def __init__(self, path: str | Path):
        self.path_of_snapshot = Path(path)
        try:
            data = json.loads(self.path_of_snapshot.read_text(encoding="utf-8"))
            self.sheets = data["sheets"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"Ayar dosyası okunamadı ({self.path_of_snapshot}): {exc}") from None

    def read_rows(self, sheet: L.Sheet) -> list[dict]:
        return [dict(r) for r in self.sheets.get(sheet.name, [])]

    def write_rows(self, sheet: L.Sheet, rows: list[dict]) -> None:
        pass

    def append_rows(self, sheet: L.Sheet, rows: list[dict]) -> None:
        pass

    def write_grid(self, name: str, rows: list[list]) -> None:
        pass

    def selected_keys(self) -> list[MonthKey] | None:
        return None

    def progress(self, text: str) -> None:
        pass

    def save(self) -> None:
        pass
