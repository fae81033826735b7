"""The control workbook: its layout (defined once) and the headless openpyxl face."""
