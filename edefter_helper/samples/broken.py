"""Named ways to damage a month written by write_month; each returns the paths it touched.

Unless the damage *is* a bad signature, damaged files are re-signed properly, so a checker must
find the problem the name says and nothing else.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from edefter_helper.samples import month as m
from edefter_helper.samples.keys import taxpayer_signer
from edefter_helper.samples.xmlsig import XML_DECL, b64sha256, signature


def remove_gib_berat(month: m.MonthFiles, kind: str = "GIB-YB", part: int | None = None) -> list[Path]:
    """Delete one GİB-approved berat (the month then waits for GİB)."""
    path = month.find(kind, part)
    path.unlink()
    return [path]


def remove_dr(month: m.MonthFiles) -> list[Path]:
    """Delete the Defter Raporu of a month from 2019 on."""
    path = month.find("DR", 0)
    path.unlink()
    return [path]


def part_gap(month: m.MonthFiles, missing: int = 2) -> list[Path]:
    """Delete every file of part `missing` (month needs parts >= 3): 000001, 000003 remain."""
    if month.spec.parts < 3:
        raise ValueError("part_gap needs a month written with parts >= 3")
    gone = [p for p in month if f"-{missing:06d}" in p.name]
    for p in gone:
        p.unlink()
    return gone


def whole_and_part(month: m.MonthFiles) -> list[Path]:
    """Copy the 000000 Y with its berats as 000001 too: both numbering schemes in one month."""
    if month.spec.parts:
        raise ValueError("whole_and_part needs a month written with parts=0")
    out = []
    for kind in ("Y", "YB", "GIB-YB"):
        try:
            src = month.find(kind, 0)
        except KeyError:
            continue
        dst = src.with_name(src.name.replace("-000000", "-000001"))
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def _rename_all(month: m.MonthFiles, old: str, new: str) -> list[Path]:
    out = []
    for p in month:
        if p.exists():
            q = p.with_name(p.name.replace(old, new, 1))
            p.rename(q)
            out.append(q)
    return out


def vkn_mismatch(month: m.MonthFiles, name_vkn: str = "1111111111") -> list[Path]:
    """Rename the month's files to another VKN: the identifier inside differs from the name."""
    return _rename_all(month, f"{month.spec.vkn}-", f"{name_vkn}-")


def period_mismatch(month: m.MonthFiles, name_period: str = "2001-01") -> list[Path]:
    """Rename the month's files to another period: documentInfo differs from the name."""
    return _rename_all(month, f"-{month.spec.period.replace('-', '')}-", f"-{name_period.replace('-', '')}-")


def edit_after_signing(month: m.MonthFiles, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Change one digit of one amount (same length): the ledger's signature no longer verifies."""
    path = month.find(kind, part)
    data = path.read_bytes()
    match = re.search(rb'unitRef="try">(\d+)\.(\d\d)</gl-cor:amount>', data)
    pos = match.start(2)
    digit = data[pos] - 48
    data = data[:pos] + bytes([48 + (digit + 1) % 10]) + data[pos + 1:]
    path.write_bytes(data)
    return [path]


def truncate(month: m.MonthFiles, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Cut the file in the middle (an interrupted copy)."""
    path = month.find(kind, part)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return [path]


def empty(month: m.MonthFiles, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Make the file 0 bytes long."""
    path = month.find(kind, part)
    path.write_bytes(b"")
    return [path]


def _with_doctype(data: bytes, doctype: str, ref: str) -> bytes:
    body = data[len(XML_DECL):] if data.startswith(XML_DECL) else data
    # the entity reference replaces the company name, where a careless reader would show it
    body = re.sub(rb"(<gl-bus:organizationIdentifier [^>]*>)[^<]*", lambda mm: mm.group(1) + ref.encode(), body, count=1)
    return XML_DECL + doctype.encode() + b"\n" + body


def xxe(month: m.MonthFiles, canary: Path, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Declare an external entity pointing at `canary` and use it: a safe parser must not read it."""
    path = month.find(kind, part)
    root = "edefter:berat" if kind.endswith("B") else "edefter:defter"
    doctype = f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "{Path(canary).resolve().as_uri()}">]>'
    path.write_bytes(_with_doctype(path.read_bytes(), doctype, "&xxe;"))
    return [path]


def entity_bomb(month: m.MonthFiles, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Billion laughs: nested internal entities that expand to gigabytes."""
    path = month.find(kind, part)
    root = "edefter:berat" if kind.endswith("B") else "edefter:defter"
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{"".join(f"&lol{i - 1};" for _ in range(10))}">' for i in range(1, 10)]
    doctype = f"<!DOCTYPE {root} [{''.join(ents)}]>"
    path.write_bytes(_with_doctype(path.read_bytes(), doctype, "&lol9;"))
    return [path]


def duplicate_copy(month: m.MonthFiles, other_folder, kind: str = "Y", part: int | None = None) -> list[Path]:
    """An identical copy of one file in another folder (harmless; must not count twice)."""
    src = month.find(kind, part)
    dst = Path(other_folder) / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return [dst]


def conflicting_copy(month: m.MonthFiles, other_folder, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Same name, different bytes in another folder: a validly signed ledger of another run."""
    src = month.find(kind, part)
    spec = replace(month.spec, seed=month.spec.seed + 7919)
    with tempfile.TemporaryDirectory() as tmp:
        other = m.write_spec(Path(tmp), spec, only={kind})
        dst = Path(other_folder) / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other.find(kind, part), dst)
    return [dst]


def _resign_berat(month: m.MonthFiles, kind: str, part: int | None, edit) -> list[Path]:
    """Apply `edit` to the taxpayer berat body, sign it again, and rebuild GİB's berat over it."""
    spec = month.spec
    part = spec.part_numbers[0] if part is None else part
    path = month.find(kind, part)
    data = path.read_bytes()
    sig_id = m._sig_id(spec, kind, part)
    body = edit(data[: data.rindex(f'<ds:Signature Id="{sig_id}"'.encode())])
    end = f"</{m.BERAT_ROOT}>".encode()
    xml, value = signature(sig_id=sig_id, signer=taxpayer_signer(spec.vkn, spec.company),
                           signing_time=m._signing_time(spec, f"{kind}{part}"), target_uri="",
                           target_digest_b64=b64sha256(body[len(XML_DECL):] + end))
    berat = body + xml.encode() + end
    path.write_bytes(berat)
    out = [path]
    if spec.gib:
        gib_path = month.find("GIB-" + kind, part)
        gib = m.gib_approve(spec, kind, part, berat, sig_id, value)
        if gib_path.suffix.lower() == ".zip":
            gib = m.zip_one(spec.filename("GIB-" + kind, part), gib, spec.period)
        gib_path.write_bytes(gib)
        out.append(gib_path)
    return out


def berat_signature_mismatch(month: m.MonthFiles, kind: str = "YB", part: int | None = None) -> list[Path]:
    """The berat (and GİB's) carries a SignatureValue that is not its ledger's."""
    def edit(body: bytes) -> bytes:
        def flip(mm):
            v = mm.group(1)
            return b"<ds:SignatureValue>" + (b"B" if v[:1] != b"B" else b"C") + v[1:] + b"</ds:SignatureValue>"
        return re.sub(rb"<ds:SignatureValue>([^<]*)</ds:SignatureValue>", flip, body, count=1)
    return _resign_berat(month, kind, part, edit)


def wrong_measurable_quantity(month: m.MonthFiles, kind: str = "YB", part: int | None = None) -> list[Path]:
    """The berat states a ledger size 3 MiB bigger than the file."""
    def edit(body: bytes) -> bytes:
        def bump(mm):
            return mm.group(1) + f"{float(mm.group(2)) + 3:.2f}".encode() + b"</gl-bus:measurableQuantity>"
        return re.sub(rb'(<gl-bus:measurableQuantity [^>]*>)([^<]*)</gl-bus:measurableQuantity>', bump, body, count=1)
    return _resign_berat(month, kind, part, edit)


def gib_without_countersignature(month: m.MonthFiles, kind: str = "GIB-YB", part: int | None = None) -> list[Path]:
    """The GİB berat is only the taxpayer's berat: no GİB countersignature."""
    path = month.find(kind, part)
    plain = month.find(kind[4:], part).read_bytes()
    if path.suffix.lower() == ".zip":
        plain = m.zip_one(path.with_suffix(".xml").name, plain, month.spec.period)
    path.write_bytes(plain)
    return [path]


def two_branches(month: m.MonthFiles, other_branch: str = "0002") -> list[Path]:
    """Rewrite the kebir side (K, KB, GIB-KB) with another branch in its headers, same names."""
    spec = month.spec
    if not spec.branch:
        raise ValueError("two_branches needs a month written with a branch")
    other = replace(spec, branch=other_branch, branch_name=f"{other_branch} Nolu Şube - Kadıköy")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        written = m.write_spec(Path(tmp), other, only={"K", "KB", "GIB-KB"})
        for p in written:
            target = next(q for q in month if _same_slot(q.name, p.name))
            shutil.copyfile(p, target)
            out.append(target)
    return out


def _same_slot(a: str, b: str) -> bool:
    # same kind and part, whatever branch suffix the names carry
    pat = re.compile(r"^((?:GIB-)?\d+-\d{6}-[A-Z]+-\d{6})")
    return pat.match(a.upper()).group(1) == pat.match(b.upper()).group(1)


__all__ = [
    "remove_gib_berat", "remove_dr", "part_gap", "whole_and_part", "vkn_mismatch", "period_mismatch",
    "edit_after_signing", "truncate", "empty", "xxe", "entity_bomb", "duplicate_copy", "conflicting_copy",
    "berat_signature_mismatch", "wrong_measurable_quantity", "gib_without_countersignature", "two_branches",
]
