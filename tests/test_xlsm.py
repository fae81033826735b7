"""Saving the control workbook through openpyxl keeps its ribbon and VBA project."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from edefter_helper.workbook import layout, xlsm

TEMPLATE = Path(__file__).resolve().parents[1] / "workbook_template.xlsm"


def _ribbon(path) -> tuple[set, dict]:
    with zipfile.ZipFile(path) as z:
        rels = {(t, target) for _, t, target in xlsm.ribbon_relationships(z.read("_rels/.rels"))}
        parts = {n: z.read(n) for n in z.namelist() if xlsm.is_macro_part(n)}
    return rels, parts


def test_openpyxl_alone_loses_the_2009_ribbon(tmp_path):
    """Why xlsm.save exists: a plain openpyxl save drops the customUI14 relationship."""
    import openpyxl

    wb = openpyxl.load_workbook(TEMPLATE, keep_vba=True)
    wb.save(tmp_path / "plain.xlsm")
    wb.vba_archive.close()  # closed now, not at garbage collection (it would write to a freed buffer)
    rels, _ = _ribbon(tmp_path / "plain.xlsm")
    assert (xlsm.RIBBON_2009, "customUI/customUI14.xml") not in rels


def test_save_keeps_ribbon_parts_relationships_and_vba(tmp_path):
    before_rels, before_parts = _ribbon(TEMPLATE)
    assert before_rels == {(xlsm.RIBBON_2009, "customUI/customUI14.xml"),
                           (xlsm.RIBBON_2006, "customUI/customUI.xml")}
    path = tmp_path / "k.xlsm"
    wb = xlsm.load(TEMPLATE)
    ws = wb[layout.PERIODS.name]
    ws.append(["Örnek A.Ş.", "0123456789", "0000", "2024-01", None, None, "Yedeklendi"])
    xlsm.save(wb, path)
    for _ in range(2):  # and again, from the saved file
        wb = xlsm.load(path)
        wb[layout.LOG.name].append(["x"])
        xlsm.save(wb, path)
    rels, parts = _ribbon(path)
    assert rels == before_rels
    assert parts == before_parts  # vbaProject.bin and both customUI parts byte-identical
    with zipfile.ZipFile(path) as z:
        types = z.read("[Content_Types].xml").decode()
    assert "macroEnabled.main+xml" in types and "vbaProject" in types
    wb = xlsm.load(path)
    assert wb[layout.PERIODS.name]["B2"].value == "0123456789"


def test_save_refuses_workbook_without_vba(tmp_path):
    import openpyxl

    wb = openpyxl.load_workbook(TEMPLATE)  # keep_vba=False
    with pytest.raises(ValueError, match="keep_vba"):
        xlsm.save(wb, tmp_path / "x.xlsm")
    assert not (tmp_path / "x.xlsm").exists()


def test_failed_save_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "k.xlsm"
    path.write_bytes(TEMPLATE.read_bytes())
    wb = xlsm.load(path)

    def boom(*a, **k):
        raise OSError("disk dolu")

    monkeypatch.setattr(xlsm, "repair", boom)
    with pytest.raises(OSError):
        xlsm.save(wb, path)
    assert path.read_bytes() == TEMPLATE.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["k.xlsm"]
