"""The Takvim sheet's look: frozen headers, a filter, and colours by the word a cell starts with
(conditional formatting, so a face that writes values in one call still gets the colours); and
`Link`, a cell that opens the month's row on Dönemler with one click."""

from __future__ import annotations

from dataclasses import dataclass

FIRST_MONTH_COL = 5  # A Firma, B VKN/TCKN, C Şube, D Sorumlu, then one column per month
LAST_ROW = 5000
LAST_COL = "DU"  # the template's rules: 120 months (radar --months maximum) and the Dikkat column


@dataclass(frozen=True)
class Link:
    """A cell showing `text` that jumps to column A of `row` on `sheet` (the month's Dönemler row).

    The file face (openpyxl) writes the text with an internal hyperlink (Excel and LibreOffice both
    follow it; the value stays the plain text). The live face writes `formula()` with the values
    array — one range write for the whole sheet, where a hyperlink object would be a COM call per
    cell. Formulas through COM's Range.Value are in Excel's English syntax (HYPERLINK, commas),
    whatever the user's language: a Turkish Excel shows it as KÖPRÜ(…; …)."""

    text: str
    sheet: str
    row: int

    @property
    def location(self) -> str:
        return "'" + self.sheet.replace("'", "''") + f"'!A{self.row}"

    def formula(self) -> str:
        def quoted(s: str) -> str:
            return '"' + s.replace('"', '""') + '"'

        return f"=HYPERLINK({quoted('#' + self.location)},{quoted(self.text)})"

    def __str__(self) -> str:
        return self.text


def format_calendar(ws, last_col: str = LAST_COL, filter_ref: str | None = None) -> None:
    """Freeze panes, widths and the colour rules over E2:`last_col`5000 (set again, not added twice,
    on a sheet formatted before); `filter_ref`: a filter over the header row (Sorumlu, a month's
    state). The template is built with the defaults."""
    from openpyxl.formatting.formatting import ConditionalFormattingList
    from openpyxl.formatting.rule import Rule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.styles.differential import DifferentialStyle

    from edefter_helper import radar

    ws.freeze_panes = "E2"
    ws.column_dimensions["A"].width = 30
    for col in "BCD":
        ws.column_dimensions[col].width = 12
    if filter_ref:
        ws.auto_filter.ref = filter_ref
    ws.conditional_formatting = ConditionalFormattingList()
    area = f"E2:{last_col}{LAST_ROW}"
    for word, (bg, fg) in radar.COLORS.items():
        style = DifferentialStyle(fill=PatternFill("solid", fgColor=bg, bgColor=bg), font=Font(color=fg))
        rule = Rule(type="beginsWith", operator="beginsWith", text=word, dxf=style, stopIfTrue=True)
        rule.formula = [f'LEFT(E2,{len(word)})="{word}"']
        ws.conditional_formatting.add(area, rule)
    # "Son gün N gün sonra" is urgent (red); "Son gün GG.AA.YYYY" is not
    style = DifferentialStyle(fill=PatternFill("solid", fgColor="FFC7CE", bgColor="FFC7CE"), font=Font(color="9C0006"))
    rule = Rule(type="containsText", operator="containsText", text="gün sonra", dxf=style, stopIfTrue=True)
    rule.formula = ['NOT(ISERROR(SEARCH("gün sonra",E2)))']
    ws.conditional_formatting.add(area, rule)


def write_sheet(ws, rows: list[list]) -> None:
    """openpyxl, on an emptied sheet: the grid's values (a `Link` as its text, with an internal
    hyperlink), the colour rules over every month column written (the template's stop at 47) and a
    filter over exactly what is written."""
    from openpyxl.utils import column_index_from_string, get_column_letter
    from openpyxl.worksheet.hyperlink import Hyperlink

    width = max((len(r) for r in rows), default=1)
    last = get_column_letter(max(width, column_index_from_string(LAST_COL)))
    format_calendar(ws, last, f"A1:{get_column_letter(width)}{max(len(rows), 2)}")
    for r in rows:
        ws.append([v.text if isinstance(v, Link) else v for v in r])
        row_no = ws._current_row  # the row append just wrote
        for j, v in enumerate(r, start=1):
            if isinstance(v, Link):
                cell = ws.cell(row=row_no, column=j)
                cell.hyperlink = Hyperlink(ref=cell.coordinate, location=v.location, display=v.text)
