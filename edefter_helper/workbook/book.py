"""What the actions need from a control workbook, whichever face holds it.

Two implementations: `workbook.file.FileBook` (a workbook file through openpyxl, headless)
and `excel.XlwingsBook` (the live workbook that called a ribbon button). Both read and
write whole tables at once; rows are dicts keyed by `layout.Column.key`.
"""

from __future__ import annotations

from typing import Any, Protocol

from edefter_helper.engine.model import MonthKey
from edefter_helper.workbook.layout import Sheet

Row = dict[str, Any]


class Book(Protocol):
    def read_rows(self, sheet: Sheet) -> list[Row]:
        """Data rows below the header; blank rows skipped; values as str/None (dates as datetime)."""

    def write_rows(self, sheet: Sheet, rows: list[Row]) -> None:
        """Replace every data row of the sheet with these rows, in one write."""

    def append_rows(self, sheet: Sheet, rows: list[Row]) -> None:
        """Add rows after the last data row, in one write."""

    def selected_keys(self) -> list[MonthKey] | None:
        """Months selected on Dönemler (Excel); None when nothing is selected or headless."""

    def progress(self, text: str) -> None:
        """Show progress (Excel's status bar, or a line on stderr)."""

    def save(self) -> None:
        """Persist (file face); the live workbook needs nothing."""
