"""Named attacks on a month written by write_month; each rewrites files in place and returns the
paths it touched.

Unlike `broken` (honest damage), these are tamperings a careful attacker would try against the
verifier itself (issue 7): content smuggled past the enveloped-signature digest, facts hidden in
unsigned properties, signatures by the wrong key or certificate, GİB's countersignature carried
over through a decoy element, files that try to stop the whole run. Every result is well-formed
XML (or, for the zip bomb, a well-formed zip), so only a sound verifier tells them apart.

Files written by the sample generator are canonical (see xmlsig), so a file is edited as bytes
and, where the attack needs a valid signature, signed again with xmlsig.signature over the new
canonical bytes. The self-made keys here are derived from fixed labels like the sample keys:
same arguments, same bytes (except `independent_resign`, which signs with signxml and a fixed
token/time, so its bytes are stable too).

Attack (function)                  what it does                                       expected code(s)
raw_digest_trailer                 entries + empty ds:Signature after the real one    unsigned-content, signature-invalid
second_signature                   a second root-level ds:Signature                   unsigned-content, signature-invalid
content_before_signature           an entry between xbrli:xbrl and ds:Signature       signature-invalid, unsigned-content
nested_decoy                       ds:Signature inside xbrli:xbrl or an entry         unsigned-content, signature-invalid
unsigned_facts                     xbrli:context in UnsignedSignatureProperties       unsigned-content, duplicate-fact, size-mismatch
size_hidden_by_unsigned_fact       signed size wrong, right size in unsigned props    (same)
signed_duplicate_fact              second documentInfo / context, properly signed     duplicate-fact (same set)
decoy_countersignature             month re-signed, GİB's old countersig via a decoy  countersignature-invalid, unsigned-content, duplicate-id
countersignature_from_other_month  GİB berat with another month's countersignature    countersignature-invalid
duplicate_ids                      SignedProperties Id twice, the copy altered        duplicate-id, unsigned-content
signer_not_taxpayer                month re-signed by a certificate of another VKN    signer-mismatch
signing_certificate_mismatch       CertDigest of another certificate                  signing-certificate-mismatch
signing_time_outside_validity      certificate not valid at the SigningTime           signing-time-invalid
doctype_late                       DOCTYPE after > 64 KiB of prolog                   unsafe-xml, unreadable, malformed-xml
gib_zip_bomb                       GİB .zip whose member inflates to 2 GiB            bad-zip (lying header: or unreadable)
fake_gib_countersigner             countersigned by a look-alike "GİB" key            warning countersigner-untrusted
independent_resign, edit_amount    not attacks: a non-canonical ledger signed by signxml must stay valid; one edit must not
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import re
import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from edefter_helper.samples import content as c
from edefter_helper.samples import month as m
from edefter_helper.samples.broken import _resign_berat
from edefter_helper.samples.keys import Signer, derived_key, gib_signer, taxpayer_signer
from edefter_helper.samples.xmlsig import XML_DECL, b64sha256, countersignature, signature

_SIG_OPEN = re.compile(rb'<ds:Signature Id="([^"]+)">')
_SIGNING_TIME = re.compile(rb"<xades:SigningTime>([^<]+)</xades:SigningTime>")
_UNSIGNED = re.compile(rb"<xades:UnsignedProperties>.*?</xades:UnsignedProperties>", re.S)
_QP_END = b"</xades:QualifyingProperties></ds:Object></ds:Signature>"


# -- reading and writing the files of a month --------------------------------------------------

def _xml_of(path: Path) -> bytes:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            return zf.read(name)
    return path.read_bytes()


def _write_back(path: Path, data: bytes, month: m.MonthFiles) -> None:
    """Write `data` as the file's XML; a .zip GİB berat stays a .zip with the same member name."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
        data = m.zip_one(name, data, month.spec.period)
    path.write_bytes(data)


def _parts(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(body up to the root-level ds:Signature, the signature, the root's end tag) of a sample file."""
    sig_at = data.index(b'<ds:Signature Id="', data.rindex(b"</xbrli:xbrl>"))
    end_at = data.rindex(b"</edefter:")
    return data[:sig_at], data[sig_at:end_at], data[end_at:]


def _sig_id(sig: bytes) -> str:
    return _SIG_OPEN.match(sig).group(1).decode()


def _signing_time(sig: bytes) -> str:
    return _SIGNING_TIME.search(sig).group(1).decode()


def _signature_value(sig: bytes, sig_id: str) -> str:
    mm = re.search(rb'<ds:SignatureValue Id="' + re.escape(sig_id.encode()) + rb'-SignatureValue">([^<]*)<', sig)
    return mm.group(1).decode()


def _sign(body: bytes, end: bytes, *, sig_id: str, signer: Signer, signing_time: str,
          unsigned: str = "") -> tuple[bytes, str]:
    """Sign canonical `body` (XML declaration + root start + content) enveloped; (file bytes, value)."""
    xml, value = signature(sig_id=sig_id, signer=signer, signing_time=signing_time, target_uri="",
                           target_digest_b64=b64sha256(body[len(XML_DECL):] + end), unsigned=unsigned)
    return body + xml.encode() + end, value


def _resign_bytes(data: bytes, signer: Signer, *, edit=None, signing_time: str | None = None) -> tuple[bytes, str]:
    """Sign a sample file again (unsigned properties dropped), optionally editing its body first."""
    body, sig, end = _parts(data)
    if edit is not None:
        body = edit(body)
    return _sign(body, end, sig_id=_sig_id(sig), signer=signer, signing_time=signing_time or _signing_time(sig))


def _insert_unsigned(sig: bytes, fragment: bytes) -> bytes:
    """Put `fragment` into the signature's xades:UnsignedSignatureProperties (made when missing)."""
    close = b"</xades:UnsignedSignatureProperties>"
    if close in sig:
        at = sig.index(close)
        return sig[:at] + fragment + sig[at:]
    at = sig.rindex(_QP_END)
    return (sig[:at] + b"<xades:UnsignedProperties><xades:UnsignedSignatureProperties>" + fragment
            + close + b"</xades:UnsignedProperties>" + sig[at:])


def _flip_amount(body: bytes, which: int = -1) -> bytes:
    """One digit of one gl-cor:amount changed, same length (so the file size does not change)."""
    ends = [mm.start() for mm in re.finditer(rb"</gl-cor:amount>", body)]
    pos = ends[which] - 1  # the last cent digit
    digit = body[pos] - 48
    return body[:pos] + bytes([48 + (digit + 3) % 10]) + body[pos + 1:]


def extra_entries(month: m.MonthFiles, count: int = 1, amount: str = "999999.00", kind: str = "Y") -> bytes:
    """`count` balanced journal entries of `amount` TL each, canonical, as bytes."""
    ctx = m.CONTEXTS["Y" if kind.startswith("Y") else "K"]
    kurus = int(amount.replace(".", ""))
    day = f"{month.spec.period}-28"
    out = []
    for i in range(count):
        number = 900000 + i
        e = c.Entry(number, day, "Kasa açığı kapatma (sonradan eklendi)", "other", f"BLG{number}",
                    [c.Line("100", kurus, "D"), c.Line("102", kurus, "C")])
        out.append(c.journal_entry(ctx, e, 800000 + 2 * i))
    return "".join(out).encode()


# -- self-made signers ---------------------------------------------------------------------------

def lookalike_signer(template: Signer, label: str = "attacker", *, not_before: dt.datetime | None = None,
                     not_after: dt.datetime | None = None, serial_number: str | None = None) -> Signer:
    """A self-signed certificate with the template's subject (serialNumber replaced when given) on a
    key of its own (`label`, derived like the sample keys): a name anyone can put in a certificate."""
    key = derived_key(label)
    name = template.cert.subject
    if serial_number is not None:
        name = x509.Name([x509.NameAttribute(a.oid, serial_number) if a.oid == NameOID.SERIAL_NUMBER else a
                          for a in name])
    serial = int.from_bytes(hashlib.sha256(f"{label}|{name.rfc4514_string()}".encode()).digest()[:8], "big") | 1
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or template.cert.not_valid_before_utc)
        .not_valid_after(not_after or template.cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return Signer(key=key, cert=cert, cert_b64=base64.b64encode(der).decode(),
                  cert_digest_b64=base64.b64encode(hashlib.sha256(der).digest()).decode(),
                  issuer_name=cert.issuer.rfc4514_string(), serial=serial)


def _own_signer(month: m.MonthFiles) -> Signer:
    return taxpayer_signer(month.spec.vkn, month.spec.company)


# -- re-signing a chain: ledger -> its berat -> GİB's berat ---------------------------------------

def _resign_ledger(month: m.MonthFiles, kind: str, part: int | None, signer: Signer, *, edit=None,
                   signing_time: str | None = None) -> tuple[Path, str, int]:
    path = month.find(kind, part)
    data, value = _resign_bytes(path.read_bytes(), signer, edit=edit, signing_time=signing_time)
    path.write_bytes(data)
    return path, value, len(data)


def _recertify(month: m.MonthFiles, berat_kind: str, part: int | None, signer: Signer, *,
               ledger_value: str | None, ledger_size: int | None, signing_time: str | None = None,
               gib: str = "approve") -> list[Path]:
    """Point the taxpayer berat at a ledger's new signature value/size and sign it with `signer`.

    gib="approve": GİB countersigns the new berat (as if GİB approved it again); "keep": the GİB
    berat is left alone (the caller builds it).
    """
    spec = month.spec
    part = spec.part_numbers[0] if part is None else part
    path = month.find(berat_kind, part)

    def edit(body: bytes) -> bytes:
        if ledger_value is not None:
            body = re.sub(rb"<ds:SignatureValue>[^<]*</ds:SignatureValue>",
                          b"<ds:SignatureValue>" + ledger_value.encode() + b"</ds:SignatureValue>", body, count=1)
        if ledger_size is not None:
            body = re.sub(rb"(<gl-bus:measurableQuantity [^>]*>)[^<]*(</gl-bus:measurableQuantity>)",
                          lambda mm: mm.group(1) + m.size_mib(ledger_size).encode() + mm.group(2), body, count=1)
        return body

    berat, value = _resign_bytes(path.read_bytes(), signer, edit=edit, signing_time=signing_time)
    path.write_bytes(berat)
    out = [path]
    if spec.gib and gib == "approve":
        try:
            gib_path = month.find("GIB-" + berat_kind, part)
        except KeyError:
            return out
        sig_id = _sig_id(_parts(berat)[1])
        _write_back(gib_path, m.gib_approve(spec, berat_kind, part, berat, sig_id, value), month)
        out.append(gib_path)
    return out


def _resign_month(month: m.MonthFiles, signer: Signer, *, kinds=("Y", "K", "YB", "KB", "DR"),
                  berat_signer: Signer | None = None, signing_time: str | None = None) -> list[Path]:
    """Sign the month's files again: `kinds` with `signer`, other berats with the taxpayer's own key;
    berats always certify the new ledger values and GİB countersigns the new berats."""
    own = _own_signer(month)
    berat_signer = berat_signer or own
    out: list[Path] = []
    for part in month.spec.part_numbers:
        for kind in ("Y", "K"):
            try:
                month.find(kind, part)
            except KeyError:
                continue
            ledger_signer = signer if kind in kinds else own
            path, value, size = _resign_ledger(month, kind, part, ledger_signer, signing_time=signing_time)
            out.append(path)
            bsigner = signer if kind + "B" in kinds else berat_signer
            out += _recertify(month, kind + "B", part, bsigner, ledger_value=value, ledger_size=size,
                              signing_time=signing_time)
    if "DR" in kinds:
        try:
            dr = month.find("DR", 0)
        except KeyError:
            dr = None
        if dr is not None:
            data, _ = _resign_bytes(dr.read_bytes(), signer, signing_time=signing_time)
            dr.write_bytes(data)
            out.append(dr)
    return out


# -- 1..3, 10: content the enveloped digest does not see ----------------------------------------

def raw_digest_trailer(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *, entries: int = 1,
                       amount: str = "999999.00", closing_decoy: bool = True, wrap: str = "none") -> list[Path]:
    """After the real root-level ds:Signature: unsigned entries, then an empty ds:Signature.

    A digest that skips "from the first <ds:Signature to the last </ds:Signature>" never sees them.
    wrap: "none" (bare gl-cor:entryHeader children of the root), "accountingEntries" (inside a
    gl-cor:accountingEntries) or "xbrl" (inside xbrli:xbrl/gl-cor:accountingEntries, a second
    instance). `closing_decoy=False` leaves the entries plainly after the signature.
    """
    path = month.find(kind, part)
    body, sig, end = _parts(path.read_bytes())
    trailer = extra_entries(month, entries, amount, kind)
    if wrap in ("accountingEntries", "xbrl"):
        trailer = b"<gl-cor:accountingEntries>" + trailer + b"</gl-cor:accountingEntries>"
    if wrap == "xbrl":
        trailer = b"<xbrli:xbrl>" + trailer + b"</xbrli:xbrl>"
    elif wrap not in ("none", "accountingEntries"):
        raise ValueError(wrap)
    if closing_decoy:
        trailer += b"<ds:Signature></ds:Signature>"
    path.write_bytes(body + sig + trailer + end)
    return [path]


def second_signature(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *,
                     mode: str = "wrapper-after", entries: int = 1) -> list[Path]:
    """A second root-level signature element.

    mode: "copy-before" / "copy-after" – a copy of the real signature with its Ids renamed;
    "exact-copy-after" – byte-identical copy (duplicate Ids); "wrapper-after" / "wrapper-before" –
    a ds:Signature wrapping unsigned journal entries; "default-prefix-after" – the wrapper written
    as <Signature xmlns="…xmldsig#"> (same element, another spelling).
    """
    path = month.find(kind, part)
    body, sig, end = _parts(path.read_bytes())
    sid = _sig_id(sig)
    renamed = sig.replace(f'Id="{sid}'.encode(), f'Id="{sid}-kopya'.encode())
    wrapper = b"<ds:Signature>" + extra_entries(month, entries, kind=kind) + b"</ds:Signature>"
    if mode == "copy-before":
        new = body + renamed + sig
    elif mode == "copy-after":
        new = body + sig + renamed
    elif mode == "exact-copy-after":
        new = body + sig + sig
    elif mode == "wrapper-after":
        new = body + sig + wrapper
    elif mode == "wrapper-before":
        new = body + wrapper + sig
    elif mode == "default-prefix-after":
        new = (body + sig + b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">'
               + extra_entries(month, entries, kind=kind) + b"</Signature>")
    else:
        raise ValueError(mode)
    path.write_bytes(new + end)
    return [path]


def content_before_signature(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *,
                             entries: int = 1) -> list[Path]:
    """Unsigned entries inside the root, after xbrli:xbrl, just before the signature."""
    path = month.find(kind, part)
    body, sig, end = _parts(path.read_bytes())
    path.write_bytes(body + extra_entries(month, entries, kind=kind) + sig + end)
    return [path]


def nested_decoy(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *, where: str = "xbrl",
                 decoy: str = "empty") -> list[Path]:
    """A ds:Signature nested inside the signed content, added after signing.

    where: "xbrl" (last child of xbrli:xbrl), "xbrl-start" (first child), "entry" (inside the last
    entryHeader); decoy: "empty" or "copy" (the real signature with its Ids renamed).
    """
    path = month.find(kind, part)
    body, sig, end = _parts(path.read_bytes())
    sid = _sig_id(sig)
    element = (b"<ds:Signature></ds:Signature>" if decoy == "empty"
               else sig.replace(f'Id="{sid}'.encode(), f'Id="{sid}-ic'.encode()))
    if where == "xbrl":
        at = body.rindex(b"</xbrli:xbrl>")
    elif where == "xbrl-start":
        at = body.index(b"<xbrli:xbrl>") + len(b"<xbrli:xbrl>")
    elif where == "entry":
        at = body.rindex(b"</gl-cor:entryHeader>")
    else:
        raise ValueError(where)
    path.write_bytes(body[:at] + element + body[at:] + sig + end)
    return [path]


# -- 4: facts from unsigned or duplicated content -----------------------------------------------

def _context_with(body: bytes, *, quantity: str | None = None, vkn: str | None = None,
                  ctx_id: str | None = None) -> bytes:
    ctx = re.search(rb"<xbrli:context .*?</xbrli:context>", body, re.S).group(0)
    if quantity is not None:
        ctx = re.sub(rb"(<gl-bus:measurableQuantity [^>]*>)[^<]*", lambda mm: mm.group(1) + quantity.encode(), ctx)
    if vkn is not None:
        ctx = re.sub(rb"(<xbrli:identifier [^>]*>)[^<]*", lambda mm: mm.group(1) + vkn.encode(), ctx)
    if ctx_id is not None:
        ctx = re.sub(rb'^<xbrli:context id="[^"]*"', f'<xbrli:context id="{ctx_id}"'.encode(), ctx)
    return ctx


def _measurable(body: bytes) -> str:
    return re.search(rb"<gl-bus:measurableQuantity [^>]*>([^<]*)<", body).group(1).decode()


def unsigned_facts(month: m.MonthFiles, kind: str = "GIB-YB", part: int | None = None, *,
                   quantity: str | None = "wrong", vkn: str | None = None, place: str = "unsigned") -> list[Path]:
    """An xbrli:context copied from the berat, changed, and put where no signature covers it.

    quantity: "wrong" (+3 MiB), a literal value, or None (unchanged); vkn: a second identifier;
    place: "unsigned" (xades:UnsignedSignatureProperties) or "trailer" (after the signature,
    followed by an empty ds:Signature, see raw_digest_trailer).
    """
    path = month.find(kind, part)
    data = _xml_of(path)
    body, sig, end = _parts(data)
    if quantity == "wrong":
        quantity = f"{float(_measurable(body)) + 3:.2f}"
    ctx = _context_with(body, quantity=quantity, vkn=vkn)
    if place == "unsigned":
        new = body + _insert_unsigned(sig, ctx) + end
    elif place == "trailer":
        new = body + sig + ctx + b"<ds:Signature></ds:Signature>" + end
    else:
        raise ValueError(place)
    _write_back(path, new, month)
    return [path]


def size_hidden_by_unsigned_fact(month: m.MonthFiles, kind: str = "YB", part: int | None = None) -> list[Path]:
    """The signed measurableQuantity is wrong (berats properly re-signed, GİB approved), and the
    right size is written into the unsigned properties of both berats: a reader that lets later
    values win sees a consistent month."""
    from edefter_helper.samples.broken import wrong_measurable_quantity

    touched = wrong_measurable_quantity(month, kind, part)
    ledger = month.find(kind[:-1], part)
    right = m.size_mib(ledger.stat().st_size)
    for k in (kind, "GIB-" + kind):
        try:
            month.find(k, part)
        except KeyError:
            continue
        unsigned_facts(month, k, part, quantity=right)
    return touched


def signed_duplicate_fact(month: m.MonthFiles, kind: str = "YB", part: int | None = None, *,
                          what: str = "documentInfo") -> list[Path]:
    """A fact twice in the *signed* berat, berat and GİB berat properly signed again.

    what: "documentInfo" (a second gl-cor:documentInfo with another uniqueID and creationDate, after
    the real one) or "context" (a second xbrli:context before the real one, measurableQuantity +3).
    """
    def edit(body: bytes) -> bytes:
        if what == "documentInfo":
            info = re.search(rb"<gl-cor:documentInfo>.*?</gl-cor:documentInfo>\n", body, re.S).group(0)
            dup = re.sub(rb"(<gl-cor:uniqueID [^>]*>)[^<]*", lambda mm: mm.group(1) + b"YEV000000999999", info)
            dup = re.sub(rb"(<gl-cor:creationDate [^>]*>)[^<]*", lambda mm: mm.group(1) + b"2000-01-01", dup)
            at = body.index(info) + len(info)
            return body[:at] + dup + body[at:]
        if what == "context":
            real = re.search(rb"<xbrli:context .*?</xbrli:context>", body, re.S)
            dup = _context_with(body, quantity=f"{float(_measurable(body)) + 3:.2f}", ctx_id="context_0")
            return body[:real.start()] + dup + b"\n" + body[real.start():]
        raise ValueError(what)
    return _resign_berat(month, kind, part, edit)


# -- 5, 6: GİB's countersignature ---------------------------------------------------------------

def decoy_countersignature(month: m.MonthFiles, kind: str = "YB", part: int | None = None, *,
                           real_id: str = "removed", decoy_place: str = "unsigned",
                           signer: Signer | None = None) -> list[Path]:
    """Edit the ledger after GİB's approval, sign ledger and berat again with a self-made key whose
    certificate names the right VKN, keep GİB's original countersignature and let its Reference
    (#…-SignatureValue) resolve to a decoy holding the ORIGINAL berat SignatureValue.

    real_id: "removed" / "renamed" / "kept" (then the Id is duplicated); decoy_place: "unsigned"
    (next to the CounterSignature) or "object" (a ds:Object of its own, after the real one).
    """
    spec = month.spec
    part = spec.part_numbers[0] if part is None else part
    signer = signer or lookalike_signer(_own_signer(month))
    gib_path = month.find("GIB-" + kind, part)
    old_gib = _xml_of(gib_path)
    _, old_sig, _ = _parts(old_gib)
    sid = _sig_id(old_sig)
    old_value = _signature_value(old_sig, sid)
    old_unsigned = _UNSIGNED.search(old_sig).group(0)

    ledger, value, size = _resign_ledger(month, kind[:-1], part, signer, edit=_flip_amount)
    (berat_path,) = _recertify(month, kind, part, signer, ledger_value=value, ledger_size=size, gib="keep")
    body, sig, end = _parts(berat_path.read_bytes())
    real = f'<ds:SignatureValue Id="{sid}-SignatureValue">'.encode()
    if real_id == "removed":
        sig = sig.replace(real, b"<ds:SignatureValue>")
    elif real_id == "renamed":
        sig = sig.replace(real, f'<ds:SignatureValue Id="{sid}-SignatureValue-yeni">'.encode())
    elif real_id != "kept":
        raise ValueError(real_id)
    decoy = f'<ds:SignatureValue Id="{sid}-SignatureValue">{old_value}</ds:SignatureValue>'.encode()
    at = sig.rindex(_QP_END)
    if decoy_place == "unsigned":
        unsigned = old_unsigned.replace(b"</xades:UnsignedSignatureProperties>",
                                        decoy + b"</xades:UnsignedSignatureProperties>")
        sig = sig[:at] + unsigned + sig[at:]
    elif decoy_place == "object":
        sig = sig[:at] + old_unsigned + _QP_END[:-len(b"</ds:Signature>")] + b"<ds:Object>" + decoy \
            + b"</ds:Object></ds:Signature>"
    else:
        raise ValueError(decoy_place)
    _write_back(gib_path, body + sig + end, month)
    return [ledger, berat_path, gib_path]


def countersignature_from_other_month(month: m.MonthFiles, other: m.MonthFiles, kind: str = "GIB-YB",
                                      part: int | None = None, *, target: str = "as-is") -> list[Path]:
    """GİB's berat whose countersignature is copied from another month's GİB berat.

    target: "as-is" (its Reference names the other berat's SignatureValue Id, absent here);
    "renamed" (this berat's SignatureValue takes that Id; the digest then covers other bytes);
    "decoy" (the other berat's SignatureValue element is put next to the countersignature).
    """
    path = month.find(kind, part)
    body, sig, end = _parts(_xml_of(path))
    _, other_sig, _ = _parts(_xml_of(other.find(kind, part)))
    other_sid = _sig_id(other_sig)
    sid = _sig_id(sig)
    sig = _UNSIGNED.sub(lambda _: _UNSIGNED.search(other_sig).group(0), sig, count=1)
    if target == "renamed":
        sig = sig.replace(f'Id="{sid}-SignatureValue"'.encode(), f'Id="{other_sid}-SignatureValue"'.encode())
    elif target == "decoy":
        decoy = (f'<ds:SignatureValue Id="{other_sid}-SignatureValue">{_signature_value(other_sig, other_sid)}'
                 "</ds:SignatureValue>").encode()
        sig = _insert_unsigned(sig, decoy)
    elif target != "as-is":
        raise ValueError(target)
    _write_back(path, body + sig + end, month)
    return [path]


def fake_gib_countersigner(month: m.MonthFiles, kind: str = "GIB-YB", part: int | None = None) -> list[Path]:
    """GİB's berat countersigned (correctly, over the right SignatureValue) by a self-made key whose
    certificate carries GİB's name: only a trust list can tell it from GİB."""
    spec = month.spec
    part = spec.part_numbers[0] if part is None else part
    path = month.find(kind, part)
    body, sig, end = _parts(_xml_of(path))
    sid = _sig_id(sig)
    fake = lookalike_signer(gib_signer(), "sahte-gib")
    cs = countersignature(sig_id=f"Signature-{kind}-{part:06d}-sahte", signer=fake,
                          signing_time=_signing_time(_UNSIGNED.search(sig).group(0)),
                          signed_sig_id=sid, signed_value=_signature_value(sig, sid))
    unsigned = (f"<xades:UnsignedProperties><xades:UnsignedSignatureProperties>{cs}"
                "</xades:UnsignedSignatureProperties></xades:UnsignedProperties>").encode()
    sig = _UNSIGNED.sub(lambda _: unsigned, sig, count=1)
    _write_back(path, body + sig + end, month)
    return [path]


# -- 7: duplicate Ids ---------------------------------------------------------------------------

def duplicate_ids(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *,
                  place: str = "unsigned", signing_time: str = "2099-01-01T00:00:00+03:00") -> list[Path]:
    """A second xades:SignedProperties with the real one's Id and an altered SigningTime.

    place: "unsigned" (inside xades:UnsignedSignatureProperties, after the real one) or
    "object-before" (in a ds:Object of its own placed before the real QualifyingProperties, so a
    first-match lookup finds the altered copy).
    """
    path = month.find(kind, part)
    body, sig, end = _parts(_xml_of(path))
    props = re.search(rb"<xades:SignedProperties .*?</xades:SignedProperties>", sig, re.S).group(0)
    altered = _SIGNING_TIME.sub(f"<xades:SigningTime>{signing_time}</xades:SigningTime>".encode(), props, count=1)
    if place == "unsigned":
        sig = _insert_unsigned(sig, altered)
    elif place == "object-before":
        at = sig.index(b"<ds:Object>")
        sig = sig[:at] + b"<ds:Object>" + altered + b"</ds:Object>" + sig[at:]
    else:
        raise ValueError(place)
    _write_back(path, body + sig + end, month)
    return [path]


# -- 8, 9: who signed, with which certificate, when ---------------------------------------------

def signer_not_taxpayer(month: m.MonthFiles, other_vkn: str = "1111111111") -> list[Path]:
    """Every file signed again, validly and consistently, with a certificate whose subject
    serialNumber is another VKN/TCKN (same key, same company name: only the number differs)."""
    spec = month.spec
    return _resign_month(month, taxpayer_signer(other_vkn, spec.company))


def signing_certificate_mismatch(month: m.MonthFiles, kind: str = "Y", part: int | None = None) -> list[Path]:
    """xades:SigningCertificate names another certificate (its CertDigest is GİB's certificate's)
    while KeyInfo carries the taxpayer's; the signature itself is valid (chain re-signed)."""
    bad = replace(_own_signer(month), cert_digest_b64=gib_signer().cert_digest_b64)
    return _resign_one(month, kind, part, bad)


def signing_time_outside_validity(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *,
                                  mode: str = "expired") -> list[Path]:
    """Signed with a certificate (right VKN, own key) that is not valid at the xades:SigningTime:
    "expired" (valid 2015–2020) or "not-yet-valid" (valid 2090–2095); signing time unchanged."""
    if mode == "expired":
        window = (dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2020, 12, 31, tzinfo=dt.timezone.utc))
    elif mode == "not-yet-valid":
        window = (dt.datetime(2090, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2095, 12, 31, tzinfo=dt.timezone.utc))
    else:
        raise ValueError(mode)
    signer = lookalike_signer(_own_signer(month), f"sure-{mode}", not_before=window[0], not_after=window[1])
    return _resign_one(month, kind, part, signer)


def _resign_one(month: m.MonthFiles, kind: str, part: int | None, signer: Signer) -> list[Path]:
    """Sign one file of the month with `signer`, keeping everything else consistent."""
    own = _own_signer(month)
    if kind in ("Y", "K"):
        path, value, size = _resign_ledger(month, kind, part, signer)
        return [path] + _recertify(month, kind + "B", part, own, ledger_value=value, ledger_size=size)
    if kind in ("YB", "KB"):
        return _recertify(month, kind, part, signer, ledger_value=None, ledger_size=None)
    if kind == "DR":
        path = month.find("DR", 0)
        data, _ = _resign_bytes(path.read_bytes(), signer)
        path.write_bytes(data)
        return [path]
    raise ValueError(kind)


# -- 11, 12: files that try to stop the run -----------------------------------------------------

def doctype_late(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *, pad: int = 70_000,
                 filler: str = "whitespace", use_entity: bool = True) -> list[Path]:
    """A DOCTYPE with an internal entity placed after `pad` bytes of whitespace or comments in the
    prolog: past the 64 KiB a header check looks at."""
    path = month.find(kind, part)
    data = path.read_bytes()
    body = data[len(XML_DECL):]
    root = "edefter:berat" if kind.endswith("B") else "edefter:defter"
    if filler == "whitespace":
        pre = b"\n" * pad
    elif filler == "comments":
        line = b"<!-- e-Defter Yedekleme: bu yorum satiri yalnizca dolgu icindir. -->\n"
        pre = line * (pad // len(line) + 1)
    else:
        raise ValueError(filler)
    doctype = f'<!DOCTYPE {root} [<!ENTITY unvan "Sahte Unvan A.Ş.">]>\n'.encode()
    if use_entity:
        body = re.sub(rb"(<gl-bus:organizationIdentifier [^>]*>)[^<]*", lambda mm: mm.group(1) + b"&unvan;",
                      body, count=1)
    path.write_bytes(XML_DECL + pre + doctype + body)
    return [path]


def _deflate_bomb(out, size: int, fill: bytes) -> tuple[int, int]:
    """Raw deflate of `size` bytes of `fill`, written without compressing them all: one 1 MiB
    block compressed after a full flush is byte-identical every time, so it is repeated."""
    block = 1 << 20
    chunk = fill * block
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    if again != piece:
        raise RuntimeError("deflate blocks differ; cannot repeat them")
    whole, rest = divmod(size, block)
    written = 0
    crc = 0
    big = chunk * 16
    for _ in range(whole // 16):
        crc = zlib.crc32(big, crc)
    for _ in range(whole % 16):
        crc = zlib.crc32(chunk, crc)
    for _ in range(whole):
        out.write(piece)
        written += len(piece)
    tail = comp.compress(fill * rest) + comp.flush()
    crc = zlib.crc32(fill * rest, crc)
    out.write(tail)
    written += len(tail)
    return written, crc & 0xFFFFFFFF


def gib_zip_bomb(month: m.MonthFiles, kind: str = "GIB-YB", part: int | None = None, *,
                 size: int = 2 << 30, fill: bytes = b" ", declared_size: int | None = None) -> list[Path]:
    """Replace a GİB .zip (month written with gib_zip=True) by a zip whose one, correctly named
    member inflates to `size` bytes of `fill` (default 2 GiB of spaces, ~2 MB on disk).

    `declared_size` makes the headers lie about the inflated size (e.g. a berat-like 20 000 bytes),
    so a reader that trusts ZipInfo.file_size is fooled and the CRC check fails mid-read."""
    path = month.find(kind, part)
    if path.suffix.lower() != ".zip":
        raise ValueError("gib_zip_bomb needs a month written with gib_zip=True")
    if size >= 0xFFFFFFFF:
        raise ValueError("size must stay below 4 GiB (no zip64 here)")
    with zipfile.ZipFile(path) as zf:
        (name,) = zf.namelist()
    fname = name.encode()
    stamp = (12 << 11, ((int(month.spec.period[:4]) - 1980) << 9) | (int(month.spec.period[5:7]) << 5) | 20)
    buf = io.BytesIO()
    compressed, crc = _deflate_bomb(buf, size, fill)
    data = buf.getvalue()
    said = size if declared_size is None else declared_size
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, stamp[0], stamp[1], crc, compressed, said,
                        len(fname), 0) + fname
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, stamp[0], stamp[1], crc,
                          compressed, said, len(fname), 0, 0, 0, 0, 0o644 << 16, 0) + fname
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    with open(path, "wb") as f:
        f.write(local)
        f.write(data)
        f.write(central)
        f.write(eocd)
    return [path]


# -- 13: not an attack: an independent, non-canonical producer ----------------------------------

_SIGNXML_TIME = "2024-02-14T10:11:12+03:00"


def independent_resign(month: m.MonthFiles, kind: str = "Y", part: int | None = None, *, crlf: bool = True,
                       bom: bool = False, reorder: bool = True, signing_certificate: str = "v1") -> list[Path]:
    """Rewrite a ledger the way another program might (lxml serialisation: `<x/>` for empty
    elements, attributes in reverse order, optionally CRLF line ends and a BOM) and sign it with
    signxml's XAdES signer and the taxpayer's own key and certificate – a genuinely valid, non-canonical
    file. The berat (and GİB's) are made to certify it. Needs signxml (dev extra).

    signing_certificate: "v1" – xades:SigningCertificate (SHA-256 CertDigest + IssuerSerial, the
    XAdES 1.3.2 form e-Defter files carry); "v2" – signxml's default xades:SigningCertificateV2
    (EN 319 132-1), no IssuerSerial.
    """
    import signxml
    from lxml import etree
    from signxml.xades import XAdESSigner

    spec = month.spec
    part = spec.part_numbers[0] if part is None else part
    path = month.find(kind, part)
    own = _own_signer(month)
    xades_ns, ds_ns = "http://uri.etsi.org/01903/v1.3.2#", "http://www.w3.org/2000/09/xmldsig#"

    class _StableSigner(XAdESSigner):
        # signxml draws Ids from `secrets` and stamps the current time; fixed here for stable bytes
        def _get_token(self, length=4):
            self._count = getattr(self, "_count", 0) + 1
            return f"{self._count:0{2 * length}X}"

        def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
            el = etree.SubElement(signed_signature_properties, f"{{{xades_ns}}}SigningTime", nsmap=self.namespaces)
            el.text = _SIGNXML_TIME

        def add_signing_certificate(self, signed_signature_properties, sig_root, signing_settings):
            if signing_certificate == "v2":
                return super().add_signing_certificate(signed_signature_properties, sig_root, signing_settings)
            sub = lambda parent, ns, tag, **kw: etree.SubElement(parent, f"{{{ns}}}{tag}", nsmap=self.namespaces, **kw)  # noqa: E731
            cert = sub(sub(signed_signature_properties, xades_ns, "SigningCertificate"), xades_ns, "Cert")
            digest = sub(cert, xades_ns, "CertDigest")
            sub(digest, ds_ns, "DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
            sub(digest, ds_ns, "DigestValue").text = own.cert_digest_b64
            issuer = sub(cert, xades_ns, "IssuerSerial")
            sub(issuer, ds_ns, "X509IssuerName").text = own.issuer_name
            sub(issuer, ds_ns, "X509SerialNumber").text = str(own.serial)

    if signing_certificate not in ("v1", "v2"):
        raise ValueError(signing_certificate)
    root = etree.fromstring(path.read_bytes())
    root.remove(root.find(f"{{{ds_ns}}}Signature"))
    if reorder:
        for el in root.iter():
            if isinstance(el.tag, str) and len(el.attrib) > 1:
                items = list(el.attrib.items())
                el.attrib.clear()
                for k, v in reversed(items):
                    el.set(k, v)
    key_pem = own.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    signer = _StableSigner(method=signxml.methods.enveloped, signature_algorithm="rsa-sha256",
                           digest_algorithm="sha256", c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    signed = signer.sign(root, key=key_pem, cert=own.cert_pem)
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    value = re.sub(r"\s+", "", signed.find(f".//{{{ds_ns}}}SignatureValue").text)
    out = [path]
    if kind in ("Y", "K"):
        out += _recertify(month, kind + "B", part, own, ledger_value=value, ledger_size=len(data))
    return out


def edit_amount(month: m.MonthFiles, kind: str = "Y", part: int | None = None) -> list[Path]:
    """Change one digit of the last gl-cor:amount of any ledger (canonical or not), same length."""
    path = month.find(kind, part)
    path.write_bytes(_flip_amount(path.read_bytes()))
    return [path]


__all__ = [
    "raw_digest_trailer", "second_signature", "content_before_signature", "nested_decoy",
    "unsigned_facts", "size_hidden_by_unsigned_fact", "signed_duplicate_fact",
    "decoy_countersignature", "countersignature_from_other_month", "fake_gib_countersigner",
    "duplicate_ids", "signer_not_taxpayer", "signing_certificate_mismatch", "signing_time_outside_validity",
    "doctype_late", "gib_zip_bomb", "independent_resign", "edit_amount", "extra_entries", "lookalike_signer",
]
