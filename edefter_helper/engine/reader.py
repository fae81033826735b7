"""Reads one e-Defter file in a single streaming pass: raw sha256, header facts, the
canonical digest of the signed content, the signature check and (optionally) the XSD.

Facts are plain JSON-able dicts so they can be cached by file identity (cache.py).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from pathlib import Path

from lxml import etree

from edefter_helper.engine import problems as P
from edefter_helper.engine import xades, xmldsig
from edefter_helper.engine.c14n import StreamingC14N, reduce_start
from edefter_helper.engine.names import LedgerName, parse_name
from edefter_helper.engine.rawdigest import LexicalDigest, RawDigest
from edefter_helper.engine.schema import schema_problem
from edefter_helper.engine.xmlsafe import PROLOG_LIMIT, UnsafeXML, check_prolog, parser_options, prolog_complete

EDEFTER = "http://www.edefter.gov.tr"
XBRLI = "http://www.xbrl.org/2003/instance"
GL_COR = "http://www.xbrl.org/int/gl/cor/2006-10-25"
GL_BUS = "http://www.xbrl.org/int/gl/bus/2006-10-25"
DS = xmldsig.DS

XBRL = f"{{{XBRLI}}}xbrl"
ACCOUNTING_ENTRIES = f"{{{GL_COR}}}accountingEntries"
ENTRY = f"{{{GL_COR}}}entryHeader"
CONTEXT = f"{{{XBRLI}}}context"
DOC_INFO = f"{{{GL_COR}}}documentInfo"
ENTITY_INFO = f"{{{GL_COR}}}entityInformation"
SIGNATURE = f"{{{DS}}}Signature"
SIGNATURE_VALUE = f"{{{DS}}}SignatureValue"

EXPECTED_ROOT = {"Y": "defter", "K": "defter", "DR": "defterraporu",
                 "YB": "berat", "KB": "berat", "GIB-YB": "berat", "GIB-KB": "berat"}
# berats copy their ledger's documentInfo
EXPECTED_ENTRIES = {"Y": "journal", "K": "ledger", "DR": "trialbalance", "YB": "journal",
                    "GIB-YB": "journal", "KB": "ledger", "GIB-KB": "ledger"}

READ_SIZE = 1 << 20
# GİB's .zip download of a berat holds one small XML file; anything far bigger is refused unread
ZIP_MAX_BYTES = 16 << 20
ZIP_MEMBER_MAX = 64 << 20
ZIP_RATIO_MAX = 200
DEFAULT_TRANSFORM = xmldsig.WholeDocumentTransform("sha256", False, False)


class _Stop(Exception):
    pass


class _Source:
    """File-like object for lxml that hashes the raw bytes on the way through (one read)."""

    def __init__(self, raw, head: bytes, sha, tap=None):
        self.raw = raw
        self.pending = head
        self.sha = sha
        self.tap = tap
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
        else:
            data = self.raw.read(READ_SIZE if n is None or n < 0 else max(n, READ_SIZE))
        if self.sha is not None:
            self.sha.update(data)
        if self.tap is not None:
            self.tap(data)
        self.size += len(data)
        return data


def _text(el, path: str) -> str | None:
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _texts(el, path: str) -> list[str]:
    return [(found.text or "").strip() for found in el.iterfind(path)]


def _is_root(el) -> bool:
    return el is not None and el.getparent() is None


def _in_xbrl(el) -> bool:
    """A direct child of the root's xbrli:xbrl: where GİB's schema puts contexts."""
    parent = el.getparent()
    return parent is not None and parent.tag == XBRL and _is_root(parent.getparent())


def _in_entries(el) -> bool:
    """A direct child of root/xbrli:xbrl/gl-cor:accountingEntries."""
    parent = el.getparent()
    return parent is not None and parent.tag == ACCOUNTING_ENTRIES and _in_xbrl(parent)


class _Facts:
    """Facts are read only at their schema position (so never from inside a ds:Signature, where
    nothing is signed but what its references cover); a fact found twice is a problem."""

    def __init__(self, path):
        self.d: dict = {"problems": []}
        self.path = path
        self.seen: set[str] = set()

    def _once(self, what: str, label: str) -> bool:
        if what in self.seen:
            self.d["problems"].append(P.duplicate_fact(label, self.path).as_json())
            return False
        self.seen.add(what)
        return True

    def _one(self, el, path: str, what: str, label: str) -> str | None:
        values = _texts(el, path)
        if len(values) > 1:
            self._once(what, label)
            self._once(what, label)
        return values[0] if values else None

    def on_context(self, el) -> None:
        if not _in_xbrl(el) or not self._once("context", "xbrli:context (mükellef ve dönem bağlamı)"):
            return
        self.d["vkn"] = self._one(el, f"{{{XBRLI}}}entity/{{{XBRLI}}}identifier", "vkn", "xbrli:identifier (VKN/TCKN)")
        segs = el.findall(f"{{{XBRLI}}}entity/{{{XBRLI}}}segment")
        if len(segs) > 1:
            self._once("segment", "xbrli:segment")
            self._once("segment", "xbrli:segment")
        if segs:
            seg = segs[0]
            self.d["berat_uuid"] = self._one(seg, f"{{{GL_COR}}}uniqueID", "uuid", "gl-cor:uniqueID (berat)")
            self.d["entries_count"] = self._one(seg, f"{{{GL_BUS}}}numberOfEntries", "entries",
                                                "gl-bus:numberOfEntries")
            self.d["measurable_quantity"] = self._one(seg, f"{{{GL_BUS}}}measurableQuantity", "size",
                                                      "gl-bus:measurableQuantity (defter boyutu)")

    def on_doc_info(self, el) -> None:
        if not _in_entries(el) or not self._once("docinfo", "gl-cor:documentInfo"):
            return
        self.d["entries_type"] = self._one(el, f"{{{GL_COR}}}entriesType", "etype", "gl-cor:entriesType")
        self.d["unique_id"] = self._one(el, f"{{{GL_COR}}}uniqueID", "uid", "gl-cor:uniqueID")
        start = self._one(el, f"{{{GL_COR}}}periodCoveredStart", "pstart", "gl-cor:periodCoveredStart (dönem)")
        self.d["period"] = start[:7] if start and re.match(r"\d{4}-\d{2}", start) else None

    def on_entity_info(self, el) -> None:
        if not _in_entries(el) or not self._once("entity", "gl-cor:entityInformation"):
            return
        orgs: dict[str, str] = {}
        for org in el.iterfind(f"{{{GL_BUS}}}organizationIdentifiers"):
            desc = _text(org, f"{{{GL_BUS}}}organizationDescription")
            value = _text(org, f"{{{GL_BUS}}}organizationIdentifier")
            if desc and value is not None:
                if desc in orgs and orgs[desc] != value:
                    self._once("org:" + desc, f"'{desc}' bilgisi")
                    self._once("org:" + desc, f"'{desc}' bilgisi")
                orgs.setdefault(desc, value)
        self.d["branch"] = orgs.get("Şube No")
        self.d["branch_name"] = orgs.get("Şube Adı")
        self.d["company"] = orgs.get("Kurum Unvanı") or orgs.get("Adı Soyadı")


def read_header(path: Path, name: LedgerName) -> dict:
    """Cheap facts for scanning: VKN, period, branch, company (stops before the entries)."""
    return _read(path, name, full=False)


def read_full(path: Path, name: LedgerName, schema=None) -> dict:
    """Everything verify needs, file-intrinsic problems included. Never raises for the file's sake:
    whatever goes wrong reading one file is a problem of that file."""
    return _read(path, name, full=True, schema=schema)


# read_full of a big ledger as two halves that can run at once, in two processes: one file's read
# otherwise keeps one core busy while the other has nothing left (a restore's last big file)

def read_signed(path: Path, name: LedgerName) -> dict | None:
    """The first half: read_full's facts less what check_bytes gives (every byte parsed by libxml2,
    the file's sha256), and the CRC-32 of the bytes it read. None when the file is not read the
    lexical way (see _parse_lexical), or would be read a second time (a digest that does not match):
    join_halves then reads it whole. Never a verdict alone: only join_halves makes these read_full's."""
    if name.zipped:
        return None
    facts = _read(path, name, full=True, halves=True)
    return None if facts.get(_NOT_HALVES) else facts


def check_bytes(path: Path, *, sha256: bool = True) -> dict:
    """The second half: every byte through libxml2 as read_full parses it (no tree), and the size,
    CRC-32 and (`sha256`) sha256 of exactly those bytes: {"well_formed", "size", "crc32", "sha256"}.
    An unreadable file is not well-formed here (read_full then says why)."""
    sha = hashlib.sha256() if sha256 else None
    checker = etree.XMLParser(target=_Discard(), **parser_options())
    well_formed, size, crc = True, 0, 0
    try:
        with open(path, "rb") as raw:
            while data := raw.read(LexicalDigest.READ_SIZE):
                size += len(data)
                crc = zlib.crc32(data, crc)
                if sha is not None:
                    sha.update(data)
                if well_formed:
                    try:
                        checker.feed(data)
                    except etree.XMLSyntaxError:
                        well_formed = False
        if well_formed:
            checker.close()
    except etree.XMLSyntaxError:
        well_formed = False
    except OSError:
        return {"well_formed": False, "size": -1, "crc32": -1, "sha256": ""}
    return {"well_formed": well_formed and size > 0, "size": size, "crc32": crc,
            "sha256": sha.hexdigest() if sha is not None else ""}


def join_halves(path: Path, name: LedgerName, signed: dict | None, checked: dict | None,
                written: dict | None = None) -> dict:
    """read_full's facts from its two halves. They are read_full's only when both saw the same bytes
    (size and CRC-32; the caller also compares the file's identity before and after) and those are
    well-formed; otherwise — not well-formed, not read the lexical way, other bytes — read_full itself.
    `written` ({"sha256", "size", "crc32"}): what the caller wrote to the file, hashed as it wrote
    it; the halves must have seen those bytes, and check_bytes then need not hash them again."""
    if signed is None or checked is None or not checked.get("well_formed"):
        return read_full(path, name)
    seen = {(signed.get("size"), signed.get(_CRC)), (checked.get("size"), checked.get("crc32"))}
    if written is not None:
        seen.add((written.get("size"), written.get("crc32")))
    sha = checked.get("sha256") or (written or {}).get("sha256")
    if len(seen) != 1 or not sha:
        return read_full(path, name)
    facts = {k: v for k, v in signed.items() if k != _CRC}
    facts["sha256"] = sha
    return facts


def read_part(location: str, part: str) -> dict | None:
    """One job of a reading worker, by the file's path: "whole" (read_full), "signed" (read_signed),
    "bytes+sha256" or "bytes" (check_bytes with or without the sha256)."""
    path = Path(location)
    if part in ("bytes", "bytes+sha256"):
        return check_bytes(path, sha256=part == "bytes+sha256")
    if part == "signed":
        return read_signed(path, parse_name(path.name))
    return read_full(path, parse_name(path.name))


_NOT_HALVES = "_not_halves"
_CRC = "_crc32"  # of the bytes read_signed read, for join_halves


class _NeedsWhole(Exception):
    """read_signed would read the file a second time, which compares a sha256 it does not take."""


def _needs_whole():
    raise _NeedsWhole


def _read(path: Path, name: LedgerName, *, full: bool, schema=None, halves: bool = False) -> dict:
    facts = _Facts(path)
    d = facts.d
    try:
        with open(path, "rb") as raw:
            if name.zipped:
                member = _read_zip(raw, name, path, d)
                if member is None:
                    return d
                reopen = lambda: io.BytesIO(member)  # noqa: E731  (the bytes already read: one read)
                _parse(io.BytesIO(member), name, path, facts, full=full, schema=schema, sha=None, reopen=reopen)
            else:
                sha = hashlib.sha256() if full else None
                _parse(raw, name, path, facts, full=full, schema=schema, sha=sha,
                       reopen=lambda: open(path, "rb"), halves=halves)
    except OSError as exc:
        d["problems"].append(P.unreadable(exc.strerror or str(exc), path).as_json())
        d["malformed"] = True
    except Exception as exc:  # noqa: BLE001  one odd file must never stop the run
        detail = f"{type(exc).__name__}: {exc}"
        d["problems"].append(P.read_failed(detail[:300], path).as_json())
        d["malformed"] = True
    if full:
        _check_inside(name, path, d)
    return d


def _read_zip(raw, name: LedgerName, path, d) -> bytes | None:
    """GİB's .zip berat, read once with size and ratio limits: the member's bytes, or None."""
    data = raw.read(ZIP_MAX_BYTES + 1)
    if len(data) > ZIP_MAX_BYTES:
        d["problems"].append(P.bad_zip(f"dosya {ZIP_MAX_BYTES >> 20} MB sınırından büyük", path).as_json())
        return None
    d["sha256"], d["size"] = hashlib.sha256(data).hexdigest(), len(data)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = [i for i in zf.infolist() if not i.is_dir()]
        if len(members) != 1:
            d["problems"].append(P.bad_zip(f"{len(members)} dosya var", path).as_json())
            return None
        info = members[0]
        inner = info.filename.rsplit("/", 1)[-1]
        if inner.lower() != name.xml_name.lower():
            d["problems"].append(P.bad_zip(f"içindeki dosya {inner}, beklenen {name.xml_name}", path).as_json())
            return None
        if info.file_size > ZIP_MEMBER_MAX or info.file_size > ZIP_RATIO_MAX * max(info.compress_size, 1024):
            d["problems"].append(P.bad_zip("açılınca boyutu ya da sıkıştırma oranı sınırı aşıyor "
                                           "(zip bombası olabilir)", path).as_json())
            return None
        with zf.open(info) as member:  # never trust the declared size: stop at the limit
            content = member.read(ZIP_MEMBER_MAX + 1)
        if len(content) > ZIP_MEMBER_MAX:
            d["problems"].append(P.bad_zip("açılınca boyutu sınırı aşıyor (zip bombası olabilir)", path).as_json())
            return None
        return content
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
            zlib.error, ValueError) as exc:
        d["problems"].append(P.bad_zip(f"zip dosyası bozuk ({exc})", path).as_json())
        return None


def _read_prolog(raw) -> bytes:
    """At least 64 KiB, and on until the root element starts (a DOCTYPE may hide after padding)."""
    head = raw.read(65536)
    while head and not prolog_complete(head) and len(head) < PROLOG_LIMIT:
        more = raw.read(65536)
        if not more:
            break
        head += more
    return head


class _Enveloped:
    """The enveloped-signature transform removes exactly one element: the root-level ds:Signature
    that is verified (the first one). Any other signature element is digested like content."""

    def __init__(self):
        self.chosen = None

    def __call__(self, el) -> bool:
        if el.tag != SIGNATURE or not _is_root(el.getparent()):
            return False
        if self.chosen is None:
            self.chosen = el
        return el is self.chosen


def _parse(raw, name: LedgerName, path, facts: _Facts, *, full: bool, schema, sha, reopen,
           halves: bool = False) -> None:
    d = facts.d
    head = _read_prolog(raw)
    if not head:
        d["problems"].append(P.empty_file(path).as_json())
        d["size"] = 0
        if sha is not None:
            d["sha256"] = sha.hexdigest()
        return
    try:
        check_prolog(head)
    except UnsafeXML:
        d["problems"].append(P.unsafe_xml(path).as_json())
        d["unsafe"] = True
        return
    if full and schema is None and sha is not None:
        resume = raw.tell()
        if halves:
            try:  # a second pass would compare the sha256 this half does not take: the file is read whole
                if _parse_lexical(raw, head, name, path, facts, _needs_whole, False):  # (positional: spied on)
                    return
            except _NeedsWhole:
                pass
            d[_NOT_HALVES] = True
            return
        if _parse_lexical(raw, head, name, path, facts, reopen):
            return
        raw.seek(resume)  # not in the lexical form: the exact path, from the first byte again
    fast = RawDigest() if full else None
    source = _Source(raw, head, sha, fast.feed if fast else None)
    tags = (ENTRY, CONTEXT, DOC_INFO, ENTITY_INFO, SIGNATURE)
    options = parser_options()
    if schema is not None:
        options["schema"] = schema
        tags += (f"{{{EDEFTER}}}*",)  # to see the root close (see after the loop)
    it = etree.iterparse(source, events=("end",), tag=tags, remove_blank_text=False, **options)
    digest = hashlib.sha256()
    stream = StreamingC14N(digest.update, _Enveloped()) if full else None
    mode = "undecided"  # -> "fast" (raw bytes are canonical) or "slow" (canonicalise each entry)
    entries_parent = None  # root/xbrli:xbrl/gl-cor:accountingEntries, once seen
    top_signatures = stray_signatures = 0
    root_closed = False
    try:
        for _, el in it:
            tag = el.tag
            if tag == ENTRY:
                if not full:
                    raise _Stop
                parent = el.getparent()
                if parent is not entries_parent:
                    if not _in_entries(el):
                        continue  # not a journal entry of this document; stays in the outline
                    entries_parent = parent
                if mode == "undecided":
                    mode = "fast" if fast.holds(_canonical_alone(el)) else "slow"
                    if mode == "slow":
                        fast.disable()
                if mode == "fast":
                    el.clear(keep_tail=True)
                    while el.getprevious() is not None:
                        del parent[0]
                else:
                    stream.chunk_done(el)
            elif tag == SIGNATURE:
                if _is_root(el.getparent()):
                    top_signatures += 1
                elif _stray(el):
                    stray_signatures += 1  # a signature outside the one signature: never ours to trust
            elif tag == CONTEXT:
                facts.on_context(el)
            elif tag == DOC_INFO:
                facts.on_doc_info(el)
            elif tag == ENTITY_INFO:
                facts.on_entity_info(el)
                if not full and EXPECTED_ROOT.get(name.kind) != "berat":
                    raise _Stop
            elif el.getparent() is None:
                root_closed = True
        root = it.root
        if schema is not None and not root_closed and root is not None and etree.QName(root).namespace == EDEFTER:
            # lxml (6.1, libxml2 2.14) with schema= and resolve_entities=False raises nothing for a
            # file cut short: the parse just ends with the root still open
            d["problems"].append(P.malformed_xml(path, "kök öğe kapanmadan dosya bitiyor").as_json())
            d["malformed"] = True
            return
        if full and mode != "fast":
            fast.disable()
            stream.finish(root)
    except _Stop:
        d["root"] = etree.QName(it.root).localname if it.root is not None else None
        return
    except etree.XMLSyntaxError as exc:
        msg = str(exc)
        detail = schema_problem(exc, it.error_log) if schema is not None else None
        if detail is not None:
            d["problems"].append(P.schema_invalid(detail, path).as_json())
        else:
            d["problems"].append(P.malformed_xml(path, msg).as_json())
        d["malformed"] = True
        return
    if root.getroottree().docinfo.doctype:
        d["problems"].append(P.unsafe_xml(path).as_json())
        d["unsafe"] = True
        return
    qn = etree.QName(root)
    d["root"] = qn.localname if qn.namespace == EDEFTER else root.tag
    if not full:
        return
    d.setdefault("size", source.size)  # a .zip berat's size is the .zip's (set when it was read)
    if sha is not None:
        d["sha256"] = sha.hexdigest()  # of exactly the bytes parsed and digested
    signature = root.find(SIGNATURE)
    streamed = b""  # no signature: nothing to digest, _check_signatures reports it
    exact = True
    if signature is not None:
        if mode == "fast":
            # only the first entry was seen to be canonical: a digest of the raw bytes proves nothing
            # about the rest (a producer may have hashed non-canonical bytes, a comment say, which
            # C14N leaves out), so it is never trusted here; ledgers in the lexical form never come
            # this way (_parse_lexical proves its digest)
            streamed, exact = _second_pass(reopen, DEFAULT_TRANSFORM, d, path), True
        else:
            streamed = digest.digest()
    _check_signatures(root, name, path, d, streamed, reopen, top_signatures, stray_signatures, exact)


def _stray(el) -> bool:
    return not any(a.tag == SIGNATURE and _is_root(a.getparent()) for a in el.iterancestors())


class _Discard:
    """A parser target that keeps nothing: libxml2 checks every byte, no tree is built."""

    def close(self) -> None:
        return None


def _parse_lexical(raw, head: bytes, name: LedgerName, path, facts: _Facts, reopen, check: bool = True) -> bool:
    """The whole-document digest without a tree of the entries, for a ledger in the lexical form of
    rawdigest.LexicalDigest (which says why it is the standard digest). Every byte is parsed by
    libxml2 (without a tree); the outline (the document less its entries) is parsed with one and
    walked as _parse walks a whole document. False when the file is not in that form, is not
    well-formed or has another signature shape: the caller then reads it the exact way from the
    start (nothing is kept from here). A digest that does not match the signed one is recomputed the
    exact way before a verdict, so no signature is found invalid on this path's digest alone.
    check=False (read_signed): neither libxml2's pass over every byte nor the sha256; check_bytes
    does both, and join_halves reads the file whole unless it was well-formed."""
    sha = hashlib.sha256() if check else None
    lex = LexicalDigest(GL_COR, "entryHeader")
    checker = etree.XMLParser(target=_Discard(), **parser_options()) if check else None
    size = crc = 0
    data = head
    try:
        while data:
            size += len(data)
            if check:
                sha.update(data)
                checker.feed(data)
            else:
                crc = zlib.crc32(data, crc)
            lex.feed(data)
            if lex.state == "off":
                return False
            data = raw.read(LexicalDigest.READ_SIZE)
        if check:
            checker.close()
    except etree.XMLSyntaxError:
        return False
    outline = lex.outline_document()
    if outline is None:
        return False
    scratch = _Facts(path)
    it = etree.iterparse(io.BytesIO(outline), events=("end",), tag=(ENTRY, CONTEXT, DOC_INFO, ENTITY_INFO, SIGNATURE),
                         remove_blank_text=False, **parser_options())
    top = stray = 0
    try:
        for _, el in it:
            tag = el.tag
            if tag == ENTRY:
                if _in_entries(el):  # an entry left in the outline: free it as the exact path does
                    el.clear(keep_tail=True)
                    parent = el.getparent()
                    while el.getprevious() is not None:
                        del parent[0]
            elif tag == SIGNATURE:
                if _is_root(el.getparent()):
                    top += 1
                elif _stray(el):
                    stray += 1
            elif tag == CONTEXT:
                scratch.on_context(el)
            elif tag == DOC_INFO:
                scratch.on_doc_info(el)
            elif tag == ENTITY_INFO:
                scratch.on_entity_info(el)
    except etree.XMLSyntaxError:
        return False
    root = it.root
    if root.getroottree().docinfo.doctype:
        return False
    signature = root.find(SIGNATURE)
    streamed = b""  # no signature: nothing to digest, _check_signatures reports it
    if signature is not None:
        streamed = _fast_digest(root, signature, lex, top, stray)
        if streamed is None:
            return False  # another shape, or bytes outside the lexical form
    d = facts.d
    d.update(scratch.d)
    facts.seen = scratch.seen
    qn = etree.QName(root)
    d["root"] = qn.localname if qn.namespace == EDEFTER else root.tag
    d.setdefault("size", size)
    if check:
        d["sha256"] = sha.hexdigest()
    else:
        d[_CRC] = crc
    # a digest that does not match is recomputed the exact way before a verdict (exact=False)
    _check_signatures(root, name, path, d, streamed, reopen, top, stray, exact=False)
    return True


def _fast_digest(root, signature, fast: LexicalDigest, top: int, stray: int) -> bytes | None:
    """The streamed digest (rawdigest.LexicalDigest), only for the shape where it is provably the
    standard one: one signature, the root's last child, followed by whitespace only, nothing before
    or after the root."""
    if top != 1 or stray or root[-1] is not signature or (signature.tail or "").strip():
        return None
    if next(root.itersiblings(), None) is not None or next(root.itersiblings(preceding=True), None) is not None:
        return None
    return fast.finish(signature)


def _canonical_alone(el) -> bytes:
    """The entry as Canonical XML renders it inside the whole document."""
    scope = {(b"xmlns:" + p.encode() if p else b"xmlns"): u.encode() for p, u in el.getparent().nsmap.items()}
    start, rest, _ = reduce_start(etree.tostring(el, method="c14n"), scope)
    return start + rest


def _check_signatures(root, name: LedgerName, path, d, streamed: bytes, reopen, top: int, stray: int,
                      exact: bool) -> None:
    problems = d["problems"]
    certified = root.findall(SIGNATURE_VALUE)
    if certified:
        d["certified_value"] = xmldsig.b64_text(certified[0])
        if len(certified) > 1:
            problems.append(P.duplicate_fact("ds:SignatureValue (beratın onayladığı defter imzası)", path).as_json())
    signature = root.find(SIGNATURE)
    if signature is None:
        problems.append(P.signature_missing(path).as_json())
        return
    if top > 1 or stray:
        problems.append(P.unsigned_content("belgede ikinci bir ds:Signature öğesi var", path).as_json())
    own_value = signature.find(SIGNATURE_VALUE)
    d["signature_value"] = xmldsig.b64_text(own_value)
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    if method is not None and str(method.get("Algorithm", "")).endswith("sha1"):
        problems.append(P.sha1_used(path).as_json())
    try:
        transform = xmldsig.whole_document_transform(signature)
        digests = {DEFAULT_TRANSFORM: streamed}
        if transform is not None and transform not in digests:
            digests[transform] = _second_pass(reopen, transform, d, path)
        try:
            verified = xmldsig.verify(signature, digests)
        except xmldsig.DocumentChanged:
            if exact:
                raise
            # the raw bytes were not the canonical ones: canonicalise the exact way before a verdict
            digests[DEFAULT_TRANSFORM] = _second_pass(reopen, DEFAULT_TRANSFORM, d, path)
            verified = xmldsig.verify(signature, digests)
        d["signer"] = verified.subject
        d["signer_id"] = xades.subject_identifier(verified.cert)
        d["signature_ok"] = True
        _check_xades(signature, verified, path, problems, P.signing_certificate_mismatch, P.signing_time_invalid)
        unsigned = xades.unsigned_content(signature, verified)
        if unsigned:
            problems.append(P.unsigned_content("; ".join(unsigned[:5]), path).as_json())
    except xmldsig.DuplicateId as exc:
        d["signature_ok"] = False
        problems.append(P.duplicate_id(str(exc), path).as_json())
    except xmldsig.SignatureInvalid as exc:
        d["signature_ok"] = False
        problems.append(P.signature_invalid(str(exc), path).as_json())
    counters = xades.counter_signatures(signature)
    d["countersigned"] = bool(counters)
    for counter in counters:
        _check_countersignature(counter, own_value, path, d)


def _check_xades(signature, verified, path, problems, cert_problem, time_problem) -> None:
    reason = xades.signing_certificate_problem(signature, verified)
    if reason:
        problems.append(cert_problem(reason, path).as_json())
    reason = xades.signing_time_problem(verified)
    if reason:
        problems.append(time_problem(reason, path).as_json())


def _check_countersignature(counter, own_value, path, d) -> None:
    """GİB's countersignature must sign *this* berat's ds:SignatureValue element."""
    problems = d["problems"]
    ok = d.get("countersignature_ok", True)
    try:
        verified = xmldsig.verify(counter, None)
        if own_value is None or not any(el is own_value for el in verified.covered):
            raise xmldsig.SignatureInvalid("karşı imza bu beratın imza değerini (ds:SignatureValue) imzalamıyor.")
        invalid = lambda reason, where: P.countersignature_invalid(reason, where)  # noqa: E731
        before = len(problems)
        _check_xades(counter, verified, path, problems, invalid, invalid)
        ok = ok and len(problems) == before
        d["countersigner"] = verified.subject
        d["countersigner_cert"] = xades.cert_b64(verified.cert)
    except xmldsig.DuplicateId as exc:
        ok = False
        problems.append(P.duplicate_id(str(exc), path).as_json())
    except xmldsig.SignatureInvalid as exc:
        ok = False
        problems.append(P.countersignature_invalid(str(exc), path).as_json())
    d["countersignature_ok"] = ok


class _HashingReader:
    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        return data


def _second_pass(reopen, transform, d: dict, path) -> bytes:
    """Digest with a canonicalisation other than the one streamed. The bytes read again must be
    the bytes read first (their sha256 is compared), or the verdict would be about other bytes."""
    digest = hashlib.new(transform.digest)
    with reopen() as raw:
        rereads_file = not isinstance(raw, io.BytesIO)
        src = _HashingReader(raw)
        if transform.exclusive:
            # exclusive C14N cannot be split into chunks; such files are small berats in practice
            tree = etree.parse(src, etree.XMLParser(**parser_options()))
            root = tree.getroot()
            sig = root.find(SIGNATURE)
            if sig is not None:
                _remove_keep_tail(sig)
            digest.update(etree.tostring(tree, method="c14n", exclusive=True,
                                         with_comments=transform.with_comments))
        else:
            it = etree.iterparse(src, events=("end",), tag=ENTRY, **parser_options())
            stream = StreamingC14N(digest.update, _Enveloped(), with_comments=transform.with_comments)
            for _, el in it:
                if _in_entries(el):
                    stream.chunk_done(el)
            stream.finish(it.root)
        while src.read(READ_SIZE):
            pass
    if rereads_file and src.sha.hexdigest() != d.get("sha256"):
        d["problems"].append(P.changed_while_checked(path).as_json())
        raise xmldsig.SignatureInvalid("Dosya doğrulanırken değişti.")
    return digest.digest()


def _remove_keep_tail(el) -> None:
    parent = el.getparent()
    tail = el.tail or ""
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(el)


def _check_inside(name: LedgerName, path, d: dict) -> None:
    """What the file says about itself must agree with its name, and with who signed it."""
    if d.get("unsafe") or d.get("malformed") or d.get("size") == 0 or "root" not in d:
        return
    problems = d["problems"]
    expected_root = EXPECTED_ROOT.get(name.kind)
    if expected_root and d["root"] != expected_root:
        problems.append(P.wrong_root(name.kind, str(d["root"]), path).as_json())
        return
    if d.get("vkn") != name.vkn:
        problems.append(P.identifier_mismatch(name.vkn, d.get("vkn"), path).as_json())
    if d.get("period") != name.period:
        problems.append(P.period_mismatch(name.period, d.get("period"), path).as_json())
    if name.branch and d.get("branch") and d["branch"] != name.branch:
        problems.append(P.branch_mismatch(name.branch, d.get("branch"), path).as_json())
    expected_type = EXPECTED_ENTRIES.get(name.kind)
    if expected_type and d.get("entries_type") != expected_type:
        problems.append(P.wrong_entries_type(name.kind, expected_type, d.get("entries_type"), path).as_json())
    if d.get("signature_ok") and d.get("signer_id") != d.get("vkn"):
        problems.append(P.signer_mismatch(d.get("signer", ""), d.get("signer_id"), d.get("vkn"), path).as_json())
