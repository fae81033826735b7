"""Open and save a macro-enabled control workbook with openpyxl without losing its ribbon or VBA.

openpyxl (`keep_vba=True`) keeps `xl/vbaProject.bin` and both customUI parts, but writes back only
the 2006 ribbon relationship; Excel 2010+ prefers the 2009 part and would lose the ribbon when only
that part's relationship is missing. `save` therefore repairs the package after openpyxl wrote it:
every macro/ribbon part is copied byte for byte from the file that was opened, and every ribbon
relationship it had is put back. The file is replaced atomically, so a failed save never leaves a
half-written control workbook.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

RIBBON_2006 = "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"
RIBBON_2009 = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
RIBBON_TYPES = (RIBBON_2006, RIBBON_2009)
VBA_REL = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
VBA_PART = "xl/vbaProject.bin"
VBA_CONTENT_TYPE = "application/vnd.ms-office.vbaProject"
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
ROOT_RELS = "_rels/.rels"
CONTENT_TYPES = "[Content_Types].xml"


def is_macro_part(name: str) -> bool:
    """Parts that openpyxl cannot understand and must come through a save unchanged."""
    return (name == VBA_PART or name.startswith(("customUI/", "xl/vba", "xl/activeX/",
                                                 "xl/ctrlProps/")))


def load(path: str | os.PathLike, **kwargs):
    """The workbook through openpyxl, keeping its VBA project and ribbon for `save`."""
    import openpyxl

    wb = openpyxl.load_workbook(path, keep_vba=True, **kwargs)
    archive = wb.vba_archive
    if archive is not None and archive.mode != "r":
        # openpyxl keeps the macro parts in an append-mode zip over a BytesIO; finish it and read it
        # back read-only, so its late close at garbage collection never writes to a freed buffer
        buffer = archive.fp
        archive.close()
        buffer.seek(0)
        wb.vba_archive = zipfile.ZipFile(buffer, "r")
    return wb


def save(wb, path: str | os.PathLike, *, timestamp: dt.datetime | None = None) -> None:
    """Save an openpyxl workbook loaded by `load` (or given a `vba_archive`) as .xlsm.

    `timestamp` fixes the document dates and zip entry times (deterministic builds)."""
    from openpyxl.writer.excel import ExcelWriter

    if wb.vba_archive is None:
        raise ValueError("Çalışma kitabı makrolarıyla açılmamış (keep_vba=True gerekli); "
                         "kaydedilirse şerit ve makrolar kaybolur.")
    buf = io.BytesIO()
    archive = zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    if timestamp is not None:
        wb.properties.created = wb.properties.modified = timestamp
    else:
        wb.properties.modified = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    ExcelWriter(wb, archive).save()
    data = repair(buf.getvalue(), wb.vba_archive, timestamp=timestamp)
    write_atomic(Path(path), data)


def atomic_file(path: Path):
    """A temporary beside `path` (.~XXXXXXXX.xlsm, a name FileBook.clean_stale_temporaries knows) that
    replaces it, keeping its mode and owner, only when the block ends without error."""
    from edefter_helper.fsutil import atomic_write

    return atomic_write(path, prefix=".~", suffix=path.suffix)


def write_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def _parse(data: bytes):
    from lxml import etree

    return etree.fromstring(data)


def _tostring(root) -> bytes:
    from lxml import etree

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def ribbon_relationships(rels_xml: bytes) -> list[tuple[str, str, str]]:
    """(Id, Type, Target) of every ribbon relationship in a `_rels/.rels` document."""
    root = _parse(rels_xml)
    return [(r.get("Id"), r.get("Type"), r.get("Target").lstrip("/"))
            for r in root.iter(f"{{{RELS_NS}}}Relationship") if r.get("Type") in RIBBON_TYPES]


def repair(written: bytes, source: zipfile.ZipFile, *, timestamp: dt.datetime | None = None) -> bytes:
    """The package openpyxl `written`, with the macro parts and ribbon relationships of `source`."""
    with zipfile.ZipFile(io.BytesIO(written)) as zin:
        parts = {name: zin.read(name) for name in zin.namelist()}
    src_names = set(source.namelist())
    for name in src_names:
        if is_macro_part(name):
            parts[name] = source.read(name)

    if ROOT_RELS in src_names:
        wanted = [r for r in ribbon_relationships(source.read(ROOT_RELS)) if r[2] in parts]
        root = _parse(parts[ROOT_RELS])
        have = {(r.get("Type"), r.get("Target").lstrip("/"))
                for r in root.iter(f"{{{RELS_NS}}}Relationship")}
        ids = {r.get("Id") for r in root.iter(f"{{{RELS_NS}}}Relationship")}
        for rel_id, rel_type, target in wanted:
            if (rel_type, target) in have:
                continue
            n = 1
            while rel_id in ids or rel_id is None:
                rel_id, n = f"rIdUI{n}", n + 1
            ids.add(rel_id)
            el = root.makeelement(f"{{{RELS_NS}}}Relationship",
                                  {"Id": rel_id, "Type": rel_type, "Target": target})
            root.append(el)
        parts[ROOT_RELS] = _tostring(root)

    if VBA_PART in parts:
        root = _parse(parts[CONTENT_TYPES])
        overrides = {o.get("PartName") for o in root.iter(f"{{{CT_NS}}}Override")}
        if "/" + VBA_PART not in overrides:
            root.append(root.makeelement(f"{{{CT_NS}}}Override",
                                         {"PartName": "/" + VBA_PART,
                                          "ContentType": VBA_CONTENT_TYPE}))
            parts[CONTENT_TYPES] = _tostring(root)

    # content types first (some readers expect it), then a stable order: deterministic bytes
    order = sorted(parts, key=lambda n: (n != CONTENT_TYPES, n != ROOT_RELS, n))
    when = (timestamp or dt.datetime.now()).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zout:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zout.writestr(info, parts[name])
    return out.getvalue()
