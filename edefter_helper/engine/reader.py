"""Reads one e-Defter file in a single streaming pass: raw sha256, header facts, the
canonical digest of the signed content, the signature check and (optionally) the XSD.

Facts are plain JSON-able dicts so they can be cached by file identity (cache.py).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

from lxml import etree

from edefter_helper.engine import problems as P
from edefter_helper.engine import xmldsig
from edefter_helper.engine.c14n import StreamingC14N, reduce_start
from edefter_helper.engine.names import LedgerName
from edefter_helper.engine.rawdigest import RawDigest
from edefter_helper.engine.xmlsafe import UnsafeXML, check_prolog, parser_options

EDEFTER = "http://www.edefter.gov.tr"
XBRLI = "http://www.xbrl.org/2003/instance"
GL_COR = "http://www.xbrl.org/int/gl/cor/2006-10-25"
GL_BUS = "http://www.xbrl.org/int/gl/bus/2006-10-25"
DS = xmldsig.DS

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


def _org_identifiers(entity_info) -> dict[str, str]:
    out = {}
    for org in entity_info.iterfind(f"{{{GL_BUS}}}organizationIdentifiers"):
        desc = _text(org, f"{{{GL_BUS}}}organizationDescription")
        value = _text(org, f"{{{GL_BUS}}}organizationIdentifier")
        if desc and value is not None:
            out[desc] = value
    return out


class _Facts:
    def __init__(self):
        self.d: dict = {"problems": []}

    def on_context(self, el) -> None:
        if "vkn" not in self.d:
            self.d["vkn"] = _text(el, f"{{{XBRLI}}}entity/{{{XBRLI}}}identifier")
        seg = el.find(f"{{{XBRLI}}}entity/{{{XBRLI}}}segment")
        if seg is not None:
            self.d["berat_uuid"] = _text(seg, f"{{{GL_COR}}}uniqueID")
            self.d["entries_count"] = _text(seg, f"{{{GL_BUS}}}numberOfEntries")
            self.d["measurable_quantity"] = _text(seg, f"{{{GL_BUS}}}measurableQuantity")

    def on_doc_info(self, el) -> None:
        self.d["entries_type"] = _text(el, f"{{{GL_COR}}}entriesType")
        self.d["unique_id"] = _text(el, f"{{{GL_COR}}}uniqueID")
        start = _text(el, f"{{{GL_COR}}}periodCoveredStart")
        self.d["period"] = start[:7] if start and re.match(r"\d{4}-\d{2}", start) else None

    def on_entity_info(self, el) -> None:
        orgs = _org_identifiers(el)
        self.d["branch"] = orgs.get("Şube No")
        self.d["branch_name"] = orgs.get("Şube Adı")
        self.d["company"] = orgs.get("Kurum Unvanı") or orgs.get("Adı Soyadı")


def read_header(path: Path, name: LedgerName) -> dict:
    """Cheap facts for scanning: VKN, period, branch, company (stops before the entries)."""
    return _read(path, name, full=False)


def read_full(path: Path, name: LedgerName, schema=None) -> dict:
    """Everything verify needs, file-intrinsic problems included."""
    return _read(path, name, full=True, schema=schema)


def _read(path: Path, name: LedgerName, *, full: bool, schema=None) -> dict:
    facts = _Facts()
    d = facts.d
    sha = hashlib.sha256() if full else None
    try:
        with open(path, "rb") as raw:
            if name.zipped:
                if full:
                    d["sha256"], d["size"] = _hash_file(raw)
                    raw.seek(0)
                member = _open_zip_member(raw, name, path, d)
                if member is None:
                    return d
                with member:
                    _parse(member, name, path, facts, full=full, schema=schema, sha=None)
            else:
                _parse(raw, name, path, facts, full=full, schema=schema, sha=sha)
                if sha is not None and "size" not in d:
                    d["sha256"] = sha.hexdigest()
    except OSError as exc:
        d["problems"].append(P.unreadable(exc.strerror or str(exc), path).as_json())
    if full:
        _check_inside(name, path, d)
    return d


def _hash_file(raw) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    while chunk := raw.read(READ_SIZE):
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size


def _open_zip_member(raw, name: LedgerName, path, d):
    try:
        zf = zipfile.ZipFile(raw)
        members = [i for i in zf.infolist() if not i.is_dir()]
    except zipfile.BadZipFile:
        d["problems"].append(P.bad_zip("zip dosyası bozuk", path).as_json())
        return None
    if len(members) != 1:
        d["problems"].append(P.bad_zip(f"{len(members)} dosya var", path).as_json())
        return None
    inner = members[0].filename.rsplit("/", 1)[-1]
    if inner.lower() != name.xml_name.lower():
        d["problems"].append(P.bad_zip(f"içindeki dosya {inner}, beklenen {name.xml_name}", path).as_json())
        return None
    return zf.open(members[0])


def _parse(raw, name: LedgerName, path, facts: _Facts, *, full: bool, schema, sha) -> None:
    d = facts.d
    head = raw.read(65536)
    if not head:
        d["problems"].append(P.empty_file(path).as_json())
        d["size"] = 0
        return
    try:
        check_prolog(head)
    except UnsafeXML:
        d["problems"].append(P.unsafe_xml(path).as_json())
        d["unsafe"] = True
        return
    fast = RawDigest() if full else None
    source = _Source(raw, head, sha, fast.feed if fast else None)
    tags = (ENTRY, CONTEXT, DOC_INFO, ENTITY_INFO)
    options = parser_options()
    if schema is not None:
        options["schema"] = schema
    it = etree.iterparse(source, events=("end",), tag=tags, remove_blank_text=False, **options)
    # the enveloped signature: ds:Signature directly under the root
    excluded = lambda el: el.tag == SIGNATURE and el.getparent() is not None and el.getparent().getparent() is None  # noqa: E731
    digest = hashlib.sha256()
    stream = StreamingC14N(digest.update, excluded) if full else None
    mode = "undecided"  # -> "fast" (raw bytes are canonical) or "slow" (canonicalise each entry)
    try:
        for _, el in it:
            tag = el.tag
            if tag == ENTRY:
                if not full:
                    raise _Stop
                if mode == "undecided":
                    mode = "fast" if fast.holds(_canonical_alone(el)) else "slow"
                    if mode == "slow":
                        fast.disable()
                if mode == "fast":
                    el.clear(keep_tail=True)
                    parent = el.getparent()
                    while el.getprevious() is not None:
                        del parent[0]
                else:
                    stream.chunk_done(el)
            elif tag == CONTEXT:
                facts.on_context(el)
            elif tag == DOC_INFO:
                facts.on_doc_info(el)
            elif tag == ENTITY_INFO:
                facts.on_entity_info(el)
                if not full and EXPECTED_ROOT.get(name.kind) != "berat":
                    raise _Stop
        root = it.root
        if full and mode != "fast":
            fast.disable()
            stream.finish(root)
    except _Stop:
        d["root"] = etree.QName(it.root).localname if it.root is not None else None
        return
    except etree.XMLSyntaxError as exc:
        msg = str(exc)
        if schema is not None and ("Schemas validity" in msg or "validity error" in msg):
            d["problems"].append(P.schema_invalid(msg, path).as_json())
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
    if sha is not None:
        d["size"] = source.size
    if mode == "fast":
        signature = root.find(SIGNATURE)
        streamed = b""  # no signature: nothing to digest, _check_signatures reports it
        if signature is not None:
            streamed = fast.finish(f"{signature.prefix}:Signature" if signature.prefix else "Signature")
            if streamed is None:
                streamed = _second_pass(path, name, DEFAULT_TRANSFORM)
    else:
        streamed = digest.digest()
    _check_signatures(root, name, path, d, streamed, exact=(mode != "fast"))


def _canonical_alone(el) -> bytes:
    """The entry as Canonical XML renders it inside the whole document."""
    scope = {(b"xmlns:" + p.encode() if p else b"xmlns"): u.encode() for p, u in el.getparent().nsmap.items()}
    start, rest, _ = reduce_start(etree.tostring(el, method="c14n"), scope)
    return start + rest


def _check_signatures(root, name: LedgerName, path, d, streamed: bytes, exact: bool = True) -> None:
    top_value = root.find(SIGNATURE_VALUE)
    if top_value is not None:
        d["certified_value"] = xmldsig.b64_text(top_value)
    signature = root.find(SIGNATURE)
    if signature is None:
        d["problems"].append(P.signature_missing(path).as_json())
        return
    own_value = signature.find(SIGNATURE_VALUE)
    d["signature_value"] = xmldsig.b64_text(own_value)
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    if method is not None and str(method.get("Algorithm", "")).endswith("sha1"):
        d["problems"].append(P.sha1_used(path).as_json())
    try:
        transform = xmldsig.whole_document_transform(signature)
        digests = {DEFAULT_TRANSFORM: streamed}
        if transform is not None and transform not in digests:
            digests[transform] = _second_pass(path, name, transform)
        try:
            d["signer"] = xmldsig.verify(signature, digests)
        except xmldsig.DocumentChanged:
            if exact:
                raise
            # the raw-bytes shortcut missed: canonicalise the exact way before saying anything
            digests[DEFAULT_TRANSFORM] = _second_pass(path, name, DEFAULT_TRANSFORM)
            d["signer"] = xmldsig.verify(signature, digests)
        d["signature_ok"] = True
    except xmldsig.SignatureInvalid as exc:
        d["signature_ok"] = False
        d["problems"].append(P.signature_invalid(str(exc), path).as_json())
    counter = xmldsig.counter_signature(signature)
    d["countersigned"] = counter is not None
    if counter is not None:
        try:
            d["countersigner"] = xmldsig.verify(counter, None)
            d["countersignature_ok"] = True
        except xmldsig.SignatureInvalid as exc:
            d["countersignature_ok"] = False
            d["problems"].append(P.countersignature_invalid(str(exc), path).as_json())


def _second_pass(path: Path, name: LedgerName, transform) -> bytes:
    """Digest with a canonicalisation other than the default streamed one."""
    digest = hashlib.new(transform.digest)
    with open(path, "rb") as raw:
        src = _open_zip_member(raw, name, path, {"problems": []}) if name.zipped else raw
        if transform.exclusive:
            # exclusive C14N cannot be split into chunks; such files are small berats in practice
            tree = etree.parse(src, etree.XMLParser(**parser_options()))
            root = tree.getroot()
            sig = root.find(SIGNATURE)
            if sig is not None:
                _remove_keep_tail(sig)
            digest.update(etree.tostring(tree, method="c14n", exclusive=True,
                                         with_comments=transform.with_comments))
            return digest.digest()
        it = etree.iterparse(src, events=("end",), tag=ENTRY, **parser_options())
        excluded = lambda el: el.tag == SIGNATURE and el.getparent() is not None and el.getparent().getparent() is None  # noqa: E731
        stream = StreamingC14N(digest.update, excluded, with_comments=transform.with_comments)
        for _, el in it:
            stream.chunk_done(el)
        stream.finish(it.root)
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
    """What the file says about itself must agree with its name."""
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
