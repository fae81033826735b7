"""Months written the way other producer programs write them: same content, valid signatures, other bytes.

Shapes (`SHAPES`):

- ``"canonical"``: byte for byte what `month.write_month` / `big.write_big_month` write (C14N form).
- ``"crlf"``: that canonical document with every LF written as CRLF. The canonical form, which is
  what is signed, keeps LF; XML parsing turns CRLF into LF, so the signature still holds.
- ``"windows"``: what Windows programs often write: a UTF-8 BOM, CRLF line ends, one tag per line,
  attributes out of C14N order (each start tag with two or more attributes has them reversed, so
  `contextRef` comes after `decimals`/`unitRef`, `URI` before `Type`, ...), namespace declarations on
  the root reversed (not sorted), and empty elements as ``<x/>`` (C14N renders ``<x></x>``).
  The newlines between tags are text nodes, so they ARE part of the signed canonical form: the
  canonical text is made with LF between tags and hashed, and only then written in the shape (BOM,
  CRLF, `<x/>`, attribute and namespace order), which parsing + C14N undo. The ds:Signature element
  itself stays on one line (its SignedInfo is signed as the generator builds it), but gets `<x/>`
  and reversed attributes too.

Every file of the month (Y, K, YB, KB, DR) is written in the shape; a GİB berat is the shaped
taxpayer berat with GİB's countersignature inserted, as GİB does. Berats certify the ledger's
SignatureValue and its size as written (measurableQuantity, MiB).

Writing streams: a ledger is shaped and hashed piece by piece (at most `_PIECE` characters at a time,
cut only where no tag, no `<x></x>` pair and no pair of adjacent tags spans the cut), so a 200 MiB
part is never held in memory.

    write_month_as(folder, shape, vkn, period, **write_month_kwargs) -> MonthFiles
    write_spec_as(folder, spec, shape, *, only=None) -> MonthFiles
    write_big_month_as(folder, shape, vkn, period, *, parts=5, part_mb=200, seed=0, ...) -> MonthFiles
    write_ledger_doc_as(out, spec, kind, part, body_chunks, shape) -> (SignatureValue, size)
    ShapedSink(out, root_qname, shape)   # like xmlsig.DigestSink, for any canonical document
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
import uuid
from pathlib import Path

from edefter_helper.samples import content as c
from edefter_helper.samples.big import _journal_body
from edefter_helper.samples.keys import taxpayer_signer
from edefter_helper.samples.month import (
    BERAT_ROOT, CONTEXTS, ENTRIES_TYPE, LEDGER_ROOT, REPORT_ROOT, MonthFiles, MonthSpec, _rng, _sig_id,
    _signing_time, _split, gib_approve, make_spec, size_mib, zip_one,
)
from edefter_helper.samples.xmlsig import NS_DECL, XML_DECL, signature

SHAPES = ("canonical", "crlf", "windows")

BOM = "\ufeff"
_PIECE = 1 << 20  # characters shaped at a time (windows)

# -- text transforms --------------------------------------------------------------------------
# Canonical text has raw '<' and '>' only in markup ('<' and '>' in text are &lt; &gt;; no
# attribute value of ours holds '>' or '"'), so plain regular expressions see every tag.

# a newline between two adjacent tags, except inside an empty element's <x></x>
_BETWEEN_TAGS = re.compile(r"</[^>]*>(?=<)|<[^/][^>]*>(?=<[^/])")
# a start tag right before an end tag: in well-formed XML the end tag is that element's
_EMPTY = re.compile(r"<([^/>][^>]*)></[^>]*>")
_MULTI_ATTR = re.compile(r'(<[^\s/>]+)((?: [^\s="/>]+="[^"]*"){2,})')


def _check(shape: str) -> str:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    return shape


def tag_lines(canonical: str) -> str:
    """Canonical text with a newline between any two adjacent tags (still canonical)."""
    return _BETWEEN_TAGS.sub("\\g<0>\n", canonical)


def _reverse_attrs(m: re.Match) -> str:
    attrs = m[2][1:-1].split('" ')  # ' a="1" b="2"' -> ['a="1', 'b="2']
    return m[1] + ' ' + '" '.join(reversed(attrs)) + '"'


def dress(shape: str, canonical: str) -> str:
    """What `shape` writes for canonical text (no BOM, no XML declaration): parsing + C14N undo it."""
    if shape == "canonical":
        return canonical
    if shape == "windows":
        canonical = _MULTI_ATTR.sub(_reverse_attrs, _EMPTY.sub(r"<\1/>", canonical))
    return canonical.replace("\n", "\r\n")


def xml_declaration(shape: str) -> bytes:
    if shape == "canonical":
        return XML_DECL
    decl = XML_DECL.decode().replace("\n", "\r\n")
    return ((BOM if shape == "windows" else "") + decl).encode()


def _safe_cut(buf: str, lo: int, hi: int) -> int:
    """An index in (lo, len(buf)] right after a '>' that is followed by text (not by '<'),
    preferably at or before hi; lo when there is none. No transform looks across such a cut."""
    i = buf.rfind(">", lo, hi)
    while i >= 0:
        if i + 1 < len(buf) and buf[i + 1] != "<":
            return i + 1
        i = buf.rfind(">", lo, i)
    i = buf.find(">", hi)
    while i >= 0:
        if i + 1 < len(buf) and buf[i + 1] != "<":
            return i + 1
        i = buf.find(">", i + 1)
    return lo


class ShapedSink:
    """Writes a canonical document (root start tag first, ds:Signature last) in `shape` to the
    binary stream `out`, hashing its canonical form for the enveloped reference.

    Same use as xmlsig.DigestSink: `write(text)` any number of times, then
    `finish(make_signature)`; `size` is the number of bytes written.
    """

    def __init__(self, out, root_qname: str, shape: str):
        self.out = out
        self.root_qname = root_qname
        self.shape = _check(shape)
        self.hash = hashlib.sha256()
        self.size = 0
        self._carry = ""
        self._emit_bytes(xml_declaration(shape))

    def _emit_bytes(self, data: bytes) -> None:
        self.out.write(data)
        self.size += len(data)

    def _put(self, canonical: str) -> None:
        self.hash.update(canonical.encode())
        self._emit_bytes(dress(self.shape, canonical).encode())

    def write(self, data: str | bytes) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        if self.shape != "windows":
            self._put(text)
            return
        buf = self._carry + text
        start = 0
        while start < len(buf):
            end = _safe_cut(buf, start, min(len(buf), start + _PIECE))
            if end <= start:
                break
            self._put(tag_lines(buf[start:end]))
            start = end
        self._carry = buf[start:]

    def finish(self, make_signature) -> str:
        """Close the document: `make_signature(digest_b64) -> (xml, value)`; returns the value."""
        if self._carry:  # as if the signature's start tag followed
            self._put(tag_lines(self._carry + "<x")[:-2] if self.shape == "windows" else self._carry)
            self._carry = ""
        end = f"</{self.root_qname}>"
        h = self.hash.copy()
        h.update(end.encode())
        xml, value = make_signature(base64.b64encode(h.digest()).decode())
        tail = dress(self.shape, xml + end) + ("\r\n" if self.shape == "windows" else "")
        self._emit_bytes(tail.encode())
        return value


# -- documents ----------------------------------------------------------------------------------

def write_ledger_doc_as(out, spec: MonthSpec, kind: str, part: int, body_chunks, shape: str) -> tuple[str, int]:
    """month.write_ledger_doc in `shape`: one signed Y/K/DR document to the binary stream `out`;
    returns (its SignatureValue, bytes written)."""
    ctx = CONTEXTS[kind]
    root = REPORT_ROOT if kind == "DR" else LEDGER_ROOT
    _, end, _, _ = c.period_bounds(spec.period)
    sink = ShapedSink(out, root, shape)
    uid = c.unique_id(ENTRIES_TYPE[kind], spec.period, max(part, 1))
    sink.write(
        f"<{root}{NS_DECL}>\n" + c.xbrl_head(ctx, spec.vkn, end)
        + "<gl-cor:accountingEntries>\n" + c.document_info(ctx, ENTRIES_TYPE[kind], spec.period, uid)
        + c.entity_information(ctx, spec.firm, spec.period)
    )
    for chunk in body_chunks:
        sink.write(chunk)
    sink.write("</gl-cor:accountingEntries></xbrli:xbrl>\n")
    signer = taxpayer_signer(spec.vkn, spec.company)
    value = sink.finish(lambda digest: signature(
        sig_id=_sig_id(spec, kind, part), signer=signer, signing_time=_signing_time(spec, f"{kind}{part}"),
        target_uri="", target_digest_b64=digest))
    return value, sink.size


def berat_bytes_as(spec: MonthSpec, kind: str, part: int, shape: str, *, ledger_value: str, ledger_size: int,
                   entries: int, sums: dict) -> tuple[bytes, str, str]:
    """month.berat_bytes in `shape`: (bytes, sig_id, its SignatureValue). `ledger_size` is the
    ledger's size as written, so measurableQuantity matches the file on disk."""
    ledger_kind = kind[:-1]
    ctx = CONTEXTS[ledger_kind]
    _, end, _, _ = c.period_bounds(spec.period)
    rng = _rng(spec, f"berat:{kind}{part}")
    segment = c.item("gl-cor:uniqueID", ctx, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    if ledger_kind == "Y":
        segment += c.num("gl-bus:numberOfEntries", ctx, str(entries), "countable")
    segment += c.num("gl-bus:measurableQuantity", ctx, size_mib(ledger_size), "countable")
    uid = c.unique_id(ENTRIES_TYPE[ledger_kind], spec.period, max(part, 1))
    sink = ShapedSink(buf := io.BytesIO(), BERAT_ROOT, shape)
    sink.write(
        f"<{BERAT_ROOT}{NS_DECL}>\n" + c.xbrl_head(ctx, spec.vkn, end, segment)
        + "<gl-cor:accountingEntries>\n" + c.document_info(ctx, ENTRIES_TYPE[ledger_kind], spec.period, uid)
        + c.entity_information(ctx, spec.firm, spec.period) + c.tax_detail(ctx, sums)
        + "</gl-cor:accountingEntries></xbrli:xbrl>\n"
        + f"<ds:SignatureValue>{ledger_value}</ds:SignatureValue>\n"
    )
    sig_id = _sig_id(spec, kind, part)
    value = sink.finish(lambda digest: signature(
        sig_id=sig_id, signer=taxpayer_signer(spec.vkn, spec.company),
        signing_time=_signing_time(spec, f"{kind}{part}"), target_uri="", target_digest_b64=digest))
    return buf.getvalue(), sig_id, value


def gib_approve_as(spec: MonthSpec, kind: str, part: int, berat: bytes, sig_id: str, value: str) -> bytes:
    """GİB's berat: the (shaped) taxpayer berat with GİB's countersignature inserted unchanged."""
    out = gib_approve(spec, kind, part, berat, sig_id, value)
    if len(out) <= len(berat):  # gib_approve found no place for the countersignature
        raise AssertionError(f"no </xades:QualifyingProperties> end in the {kind} berat")
    return out


def write_spec_as(folder, spec: MonthSpec, shape: str, *, only: set[str] | None = None) -> MonthFiles:
    """month.write_spec in `shape`: the month `spec` describes; `only` limits the kinds written."""
    _check(shape)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    want = (lambda k: only is None or k in only)
    all_entries = c.make_entries(_rng(spec, "entries"), spec.period, max(spec.entries, len(spec.part_numbers)))
    chunks = _split(all_entries, len(spec.part_numbers))
    written: list[Path] = []
    next_line = 1
    for part, entries in zip(spec.part_numbers, chunks):
        sums = c.add_sums({}, entries)
        for kind in ("Y", "K"):
            ctx = CONTEXTS[kind]
            if kind == "Y":
                body = []
                for e in entries:
                    body.append(c.journal_entry(ctx, e, next_line))
                    next_line += len(e.lines)
            else:
                body = [c.ledger_entries(ctx, entries)]
            buf = io.BytesIO()
            value, size = write_ledger_doc_as(buf, spec, kind, part, body, shape)
            if want(kind):
                path = folder / spec.filename(kind, part)
                path.write_bytes(buf.getvalue())
                written.append(path)
            berat_kind = kind + "B"
            if not (want(berat_kind) or want("GIB-" + berat_kind)):
                continue
            berat, sig_id, bvalue = berat_bytes_as(spec, berat_kind, part, shape, ledger_value=value,
                                                   ledger_size=size, entries=len(entries), sums=sums)
            if want(berat_kind):
                path = folder / spec.filename(berat_kind, part)
                path.write_bytes(berat)
                written.append(path)
            if spec.gib and want("GIB-" + berat_kind):
                gib = gib_approve_as(spec, berat_kind, part, berat, sig_id, bvalue)
                if spec.gib_zip:
                    path = folder / spec.filename("GIB-" + berat_kind, part, zipped=True)
                    path.write_bytes(zip_one(spec.filename("GIB-" + berat_kind, part), gib, spec.period))
                else:
                    path = folder / spec.filename("GIB-" + berat_kind, part)
                    path.write_bytes(gib)
                written.append(path)
    if spec.dr and want("DR"):
        sums = c.add_sums({}, all_entries)
        path = folder / spec.filename("DR", 0)
        with open(path, "wb") as f:
            write_ledger_doc_as(f, spec, "DR", 0, [c.trial_balance(CONTEXTS["DR"], sums)], shape)
        written.append(path)
    return MonthFiles(written, spec, folder)


def write_month_as(folder, shape: str, vkn: str, period: str, **kwargs) -> MonthFiles:
    """write_month(folder, vkn, period, **kwargs) with every file written in `shape` (see SHAPES)."""
    return write_spec_as(Path(folder), make_spec(vkn, period, **kwargs), shape)


def _growth(shape: str, period: str) -> float:
    """Bytes written per canonical byte of journal body in `shape` (so big parts land near part_mb)."""
    if shape == "canonical":
        return 1.0
    rng = random.Random(0)
    sample = "".join(c.journal_entry(CONTEXTS["Y"], e, 1) for e in c.make_entries(rng, period, 50))
    canonical = tag_lines(sample) if shape == "windows" else sample
    return len(dress(shape, canonical).encode()) / len(sample.encode())


def write_big_month_as(folder, shape: str, vkn: str, period: str, *, parts: int = 5, part_mb: float = 200,
                       seed: int = 0, company: str | None = None, gib: bool = True) -> MonthFiles:
    """big.write_big_month in `shape`: journal parts of ~part_mb MiB *as written*, streamed in
    constant memory; the kebir side small, every file in the shape."""
    _check(shape)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = make_spec(vkn, period, parts=parts, entries=parts * 3, company=company, gib=gib, seed=seed)
    written = list(write_spec_as(folder, spec, shape, only={"K", "KB", "GIB-KB", "DR"}))
    rng = random.Random(f"big|{seed}|{vkn}|{period}")
    target = int(part_mb * 1024 * 1024 / _growth(shape, period))
    next_entry, next_line = 1, 1
    for part in spec.part_numbers:
        state = {"sums": {}}
        path = folder / spec.filename("Y", part)
        body = _journal_body(spec, rng, target, next_entry, next_line, state)
        with open(path, "wb", buffering=1024 * 1024) as f:
            value, size = write_ledger_doc_as(f, spec, "Y", part, body, shape)
        next_entry, next_line = state["next_entry"], state["next_line"]
        written.append(path)
        berat, sig_id, bvalue = berat_bytes_as(spec, "YB", part, shape, ledger_value=value, ledger_size=size,
                                               entries=state["entries"], sums=state["sums"])
        (folder / spec.filename("YB", part)).write_bytes(berat)
        written.append(folder / spec.filename("YB", part))
        if gib:
            gib_path = folder / spec.filename("GIB-YB", part)
            gib_path.write_bytes(gib_approve_as(spec, "YB", part, berat, sig_id, bvalue))
            written.append(gib_path)
    return MonthFiles(written, spec, folder)


__all__ = ["SHAPES", "ShapedSink", "berat_bytes_as", "dress", "tag_lines", "write_big_month_as",
           "write_ledger_doc_as", "write_month_as", "write_spec_as", "xml_declaration"]
