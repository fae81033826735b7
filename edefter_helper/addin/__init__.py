"""Builds and checks the Excel control workbook: ribbon parts, VBA project, sheet layout.

Nothing here needs Excel. The VBA project is xlwings' own standalone `vbaProject.bin` with our
ribbon callbacks appended to its `xlwings` module (see docs/excel.md).
"""
