"""Folder trees as producer programs leave them: GİB guide, Luca, Zirve, flat, or all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import NO_BRANCH
from edefter_helper.samples.month import MonthFiles, make_spec, write_spec

LAYOUTS = ("gib", "luca", "zirve", "flat", "mixed")

# (vkn, company, branch, months: (period, options))
FIRMS = [
    ("4810525635", "Anadolu Gıda Sanayi ve Ticaret A.Ş.", None,
     [("2018-12", {}), ("2019-01", {}), ("2024-03", {"upper_ext": True})]),
    ("7420300220", "Çukurova Tekstil İhracat Ltd. Şti.", "0001",
     [("2023-11", {}), ("2023-12", {"gib": False})]),  # December: GİB has not approved yet
    ("12345678950", "Ayşe Gülşen Öztürk", None, [("2020-06", {})]),
    ("3880417702", "Boğaziçi Lojistik ve Dış Ticaret A.Ş.", None,
     [("2018-07", {"parts": 3, "entries": 12}), ("2025-01", {"parts": 2, "entries": 8})]),
]


@dataclass
class MonthSample:
    key: MonthKey
    company: str
    files: list[Path]
    complete: bool  # every kind and part present (GİB berats included)
    parts: int
    folder: Path


@dataclass
class TreeInfo:
    root: Path
    layout: str
    months: dict[MonthKey, MonthSample] = field(default_factory=dict)
    stale: list[Path] = field(default_factory=list)  # Luca's .silinenler copies: not current
    inventory: list[Path] = field(default_factory=list)  # e-Envanter E/EB files: not ledgers
    unrelated: list[Path] = field(default_factory=list)  # other files a scan must ignore

    @property
    def ledger_files(self) -> list[Path]:
        return [p for m in self.months.values() for p in m.files]


def _year_folder(year: str) -> str:
    return f"01.01.{year}-31.12.{year}"


def _month_folder(root: Path, layout: str, vkn: str, company: str, period: str) -> Path:
    year, month = period[:4], period[5:7]
    if layout == "gib":
        return root / vkn / _year_folder(year) / month
    if layout == "luca":
        return root / vkn / _year_folder(year) / month
    if layout == "zirve":
        return root / company / vkn / _year_folder(year) / month
    return root / f"{company} e-Defter"  # flat: one folder per firm, Turkish name with spaces


_XSLT = '<?xml version="1.0" encoding="UTF-8"?>\n<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><html><body>{}</body></html></xsl:template></xsl:stylesheet>\n'
_UNRELATED_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<Fatura><No>ABC2024000000123</No><Unvan>Şahin Ambalaj</Unvan></Fatura>\n'


def _inventory(folder: Path, vkn: str, period: str) -> list[Path]:
    ym = period.replace("-", "")
    out = []
    for name in (f"{vkn}-{ym}-E-000000.xml", f"{vkn}-{ym}-EB-000000.xml"):
        p = folder / name
        p.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<envanter:defter xmlns:envanter="http://www.edefter.gov.tr/envanter"><Donem>'
                     f"{period}</Donem></envanter:defter>\n", encoding="utf-8")
        out.append(p)
    return out


def _write_layout(info: TreeInfo, root: Path, layout: str, seed: int, branch_in_name: bool, gib_zip: bool) -> None:
    for fi, (vkn, company, branch, months) in enumerate(FIRMS):
        for mi, (period, opts) in enumerate(months):
            folder = _month_folder(root, layout, vkn, company, period)
            spec = make_spec(vkn, period, company=company, branch=branch,
                             branch_in_name=branch_in_name and branch is not None,
                             gib_zip=gib_zip and mi % 2 == 0, seed=seed, **opts)
            files: MonthFiles = write_spec(folder, spec)
            key = MonthKey(vkn, branch or NO_BRANCH, period)
            info.months[key] = MonthSample(key, company, list(files), spec.gib, spec.parts, folder)
            if layout == "gib" and not any(folder.glob("*.xslt")):
                for name in ("yevmiye.xslt", "kebir.xslt", "berat.xslt"):
                    p = folder / name
                    p.write_text(_XSLT.format(name), encoding="utf-8")
                    info.unrelated.append(p)
            if layout == "luca" and mi == 0:
                # a deleted older version of two files, as Luca keeps them
                trash = folder / ".silinenler"
                trash.mkdir(exist_ok=True)
                for src in (files.find("Y"), files.find("YB")):
                    dst = trash / src.name
                    data = bytearray(src.read_bytes())
                    data[-200] = ord("A") if data[-200] != ord("A") else ord("B")
                    dst.write_bytes(bytes(data))
                    info.stale.append(dst)
            if fi == 0 and mi == len(months) - 1:
                info.inventory += _inventory(folder, vkn, period)
        if layout == "zirve":
            company_root = root / company
            (company_root / "paketler").mkdir(parents=True, exist_ok=True)
            p = company_root / "paketler" / f"{vkn}-paket-bilgisi.txt"
            p.write_text("Paket gönderim günlüğü\n", encoding="utf-8")
            info.unrelated.append(p)
    if layout == "zirve":
        for tool in ("xsd", "xslt", "Sonuc", "ELedgerSigner"):
            (root / tool).mkdir(parents=True, exist_ok=True)
        for rel, text in (("xsd/edefter.xsd", "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"/>\n"),
                          ("xslt/yevmiye.xslt", _XSLT.format("yevmiye")),
                          ("Sonuc/sonuc.xml", _UNRELATED_XML),
                          ("Sonuc/Kontrol Sonucu Şubat.txt", "Hata yok.\n")):
            p = root / rel
            p.write_text(text, encoding="utf-8")
            info.unrelated.append(p)
    p = root / "Fatura Örneği ÇĞİÖŞÜ.xml"
    p.write_text(_UNRELATED_XML, encoding="utf-8")
    info.unrelated.append(p)


def write_tree(root, *, layout: str = "gib", seed: int = 0, branch_in_name: bool = False,
               gib_zip: bool = False) -> TreeInfo:
    """Write the sample firms' months under `root` in a producer's layout.

    "mixed" puts each layout in its own subfolder (GİB Düzeni, Luca, Zirve Yedek, Düz Klasör) with
    the same seed, so every month then exists as identical copies in four folders.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"bilinmeyen klasör düzeni: {layout}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    info = TreeInfo(root, layout)
    if layout == "mixed":
        for sub, lay in (("GİB Düzeni", "gib"), ("Luca", "luca"), ("Zirve Yedek", "zirve"),
                         ("Düz Klasör", "flat")):
            part = TreeInfo(root / sub, lay)
            _write_layout(part, root / sub, lay, seed, branch_in_name, gib_zip)
            info.stale += part.stale
            info.inventory += part.inventory
            info.unrelated += part.unrelated
            for key, m in part.months.items():
                if key in info.months:
                    # the same month in several folders: keep every copy listed under the key
                    info.months[key].files.extend(m.files)
                else:
                    info.months[key] = m
        return info
    _write_layout(info, root, layout, seed, branch_in_name, gib_zip)
    return info


__all__ = ["write_tree", "TreeInfo", "MonthSample", "LAYOUTS", "FIRMS"]
