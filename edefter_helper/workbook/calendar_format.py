"""The Takvim sheet's look: frozen headers, a filter, and colours by the word a cell starts with
(conditional formatting, so a face that writes values in one call still gets the colours)."""

from __future__ import annotations

LAST_ROW = 5000
LAST_COL = "AZ"


def format_calendar(ws) -> None:
    from openpyxl.formatting.rule import Rule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.styles.differential import DifferentialStyle

    from edefter_helper import radar

    ws.freeze_panes = "E2"
    ws.column_dimensions["A"].width = 30
    for col in "BCD":
        ws.column_dimensions[col].width = 12
    area = f"E2:{LAST_COL}{LAST_ROW}"
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
