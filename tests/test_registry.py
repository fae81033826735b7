"""Target kinds as a registry: factory, drop-down, settings and help read one list; an old workbook is
upgraded to the current template without losing a row."""

from __future__ import annotations

import zipfile

import pytest

from edefter_helper.addin import build
from edefter_helper.settings import read_settings
from edefter_helper.targets import registry
from edefter_helper.targets.factory import open_target
from edefter_helper.targets.base import ConfigurationError
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook


def test_every_module_registers_its_kind_and_one_list_feeds_everything(tmp_path):
    names = registry.kind_names()
    assert {"klasör", "http", "izibiz"} <= set(names)
    assert registry.get("KLASOR").kind == registry.get("folder").kind == "klasör"
    assert all(k.label and k.address_help for k in registry.kinds())
    help_text = "\n".join(build.help_lines())
    assert all(f"   {k}:" in help_text for k in names)
    with pytest.raises(ConfigurationError, match="Bilinmeyen hedef türü: ftp"):
        open_target("ftp", "x", "Z", "u")
    target = open_target("Klasor", str(tmp_path), "NAS", "")
    assert target.kind == "folder"


def test_template_drop_down_lists_the_registry(tmp_path):
    import html
    from pathlib import Path

    template = Path(__file__).resolve().parents[1] / "workbook_template.xlsm"
    with zipfile.ZipFile(template) as z:
        sheets = {n: html.unescape(z.read(n).decode()) for n in z.namelist() if n.startswith("xl/worksheets/sheet")}
    assert any(f'"{",".join(registry.kind_names())}"' in text for text in sheets.values())


def test_upgrade_keeps_every_row_and_refreshes_the_template(tmp_path, edefter):
    wb = tmp_path / "eski.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    firms = [{"name": "Anadolu Gıda", "vkn": "4810525635", "branch": "0001", "folder": "D:\\Defter", "target": "NAS",
              "user": "ali", "auto": "Evet"}]
    targets = [{"name": "NAS", "kind": "klasör", "address": "\\\\nas\\yedek", "description": "x"}]
    book.write_rows(L.FIRMS, firms)
    book.write_rows(L.TARGETS, targets)
    book.wb.create_sheet("Notlarım")["B2"] = "kendi notum"
    # an old workbook: the Hedefler drop-down lost, as before the registry
    book.wb[L.TARGETS.name].data_validations.dataValidation = []
    book.save()
    proc = edefter("workbook", "upgrade", wb)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.glob("eski.yedek-*.xlsm"))
    new = FileBook(wb)
    assert new.read_rows(L.FIRMS)[0]["vkn"] == "4810525635" and new.read_rows(L.FIRMS)[0]["branch"] == "0001"
    assert new.read_rows(L.TARGETS)[0]["address"] == "\\\\nas\\yedek"
    assert new.wb["Notlarım"]["B2"].value == "kendi notum"
    assert new.wb[L.TARGETS.name].data_validations.dataValidation  # the drop-down is back
    settings = read_settings(new)
    assert settings[1]["NAS"].kind == "klasör"
    assert edefter("workbook", "check", wb).returncode == 0


def test_target_check_command(tmp_path, edefter):
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(tmp_path)}])
    book.save()
    proc = edefter("target", "check", "--workbook", wb, "NAS")
    assert proc.returncode == 0 and "Bağlantı ve kimlik: tamam" in proc.stdout, proc.stdout + proc.stderr
    proc = edefter("target", "check", "--workbook", wb, "Yok")
    assert proc.returncode == 2 and "tanımlı değil" in proc.stderr
