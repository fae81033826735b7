"""What a verified XAdES signature binds, beyond its digests: the certificate it names, the time it
claims, who it names as signer, and that nothing rides along inside it unsigned.

"See what is signed": a ds:Signature element is only partly covered by its own signature value
(SignedInfo, and whatever its references point at). Everything else inside it — KeyInfo that no
reference covers, unsigned XAdES properties — is accepted only in the shapes the standards
define, so no fact and no decoy can hide there.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

from edefter_helper.engine.xmldsig import DIGESTS, DS, XADES, Verified, b64_text, q

XADES141 = "http://uri.etsi.org/01903/v1.4.1#"

QUALIFYING = q(XADES, "QualifyingProperties")
SIGNED_PROPS = q(XADES, "SignedProperties")
UNSIGNED_PROPS = q(XADES, "UnsignedProperties")
UNSIGNED_SIG_PROPS = q(XADES, "UnsignedSignatureProperties")
COUNTER = q(XADES, "CounterSignature")
SIGNATURE = q(DS, "Signature")

# ETSI TS 101 903 unsigned signature properties (timestamps, validation data): signed by their own
# time-stamp tokens, never read for facts here
_UNSIGNED_ALLOWED = {q(XADES, n) for n in (
    "CounterSignature", "SignatureTimeStamp", "CompleteCertificateRefs", "CompleteRevocationRefs",
    "AttributeCertificateRefs", "AttributeRevocationRefs", "SigAndRefsTimeStamp", "RefsOnlyTimeStamp",
    "CertificateValues", "RevocationValues", "AttrAuthoritiesCertValues", "AttributeRevocationValues",
    "ArchiveTimeStamp")} | {q(XADES141, n) for n in ("TimeStampValidationData", "ArchiveTimeStamp")}
_KEYINFO_ALLOWED = {q(DS, n) for n in ("X509Data", "KeyValue", "KeyName")}
_X509_ALLOWED = {q(DS, n) for n in ("X509Certificate", "X509IssuerSerial", "X509SubjectName", "X509SKI")}


def _name(el) -> str:
    tag = el.tag if isinstance(el.tag, str) else "?"
    prefix = el.prefix
    local = tag.rsplit("}", 1)[-1]
    return f"{prefix}:{local}" if prefix else local


def _has_text(el) -> bool:
    return bool((el.text or "").strip())


def _elements(el):
    """Child elements; comments and PIs count as content too (they are not signed either)."""
    return list(el)


def unsigned_content(signature, verified: Verified) -> list[str]:
    """Elements inside `signature` that its signature value does not cover and that are not one of
    the standard unsigned shapes; each as a short Turkish description."""
    covered = {id(el) for el in verified.covered}
    found: list[str] = []

    def is_covered(el) -> bool:
        return any(id(a) in covered for a in (el, *el.iterancestors()))

    def bad(el, where: str) -> None:
        found.append(f"{where} içinde {_name(el) if isinstance(el.tag, str) else 'yorum/işlem talimatı'}")

    def only(parent, allowed: set, where: str) -> list:
        kept = []
        if _has_text(parent):
            found.append(f"{where} içinde metin")
        for child in _elements(parent):
            if not isinstance(child.tag, str) or child.tag not in allowed:
                bad(child, where)
            else:
                kept.append(child)
            if (child.tail or "").strip():
                found.append(f"{where} içinde metin")
        return kept

    top = {q(DS, "SignedInfo"), q(DS, "SignatureValue"), q(DS, "KeyInfo"), q(DS, "Object")}
    for child in only(signature, top, "ds:Signature"):
        if is_covered(child) or child.tag in (q(DS, "SignedInfo"), q(DS, "SignatureValue")):
            continue
        if child.tag == q(DS, "KeyInfo"):
            for x509data in only(child, _KEYINFO_ALLOWED, "ds:KeyInfo"):
                if x509data.tag == q(DS, "X509Data"):
                    only(x509data, _X509_ALLOWED, "ds:X509Data")
            continue
        # an unreferenced ds:Object may carry only XAdES' QualifyingProperties
        for qp in only(child, {QUALIFYING}, "ds:Object"):
            for part in only(qp, {SIGNED_PROPS, UNSIGNED_PROPS}, "xades:QualifyingProperties"):
                if part.tag == SIGNED_PROPS:
                    if not is_covered(part):
                        found.append("imzalanmamış xades:SignedProperties")
                    continue
                for usp in only(part, {UNSIGNED_SIG_PROPS}, "xades:UnsignedProperties"):
                    for prop in only(usp, _UNSIGNED_ALLOWED, "xades:UnsignedSignatureProperties"):
                        if prop.tag == COUNTER:
                            only(prop, {SIGNATURE}, "xades:CounterSignature")
    return found


def counter_signatures(signature) -> list:
    """The ds:Signature of every xades:CounterSignature in the signature's unsigned properties."""
    return signature.findall(
        f"{q(DS, 'Object')}/{QUALIFYING}/{UNSIGNED_PROPS}/{UNSIGNED_SIG_PROPS}/{COUNTER}/{SIGNATURE}")


def _signed_props(verified: Verified):
    for el in verified.covered:
        if el.tag == SIGNED_PROPS:
            return el
    return None


def has_qualifying_properties(signature) -> bool:
    return signature.find(f"{q(DS, 'Object')}/{QUALIFYING}") is not None


def signing_certificate_problem(signature, verified: Verified) -> str | None:
    """XAdES: the signed SigningCertificate must name the certificate that verified the signature."""
    if not has_qualifying_properties(signature):
        return None  # plain XML-DSig: nothing claims a certificate
    props = _signed_props(verified)
    if props is None:
        return "XAdES imzalı özellikleri (xades:SignedProperties) imzaya dahil değil."
    # SigningCertificateV2 (ETSI EN 319 132) lives in the 1.3.2 namespace; some writers use 1.4.1's
    certs = [cert for holder in ("SigningCertificate", "SigningCertificateV2")
             for ns in (XADES, XADES141)
             for cert in props.findall(f".//{q(ns, holder)}/{q(XADES, 'Cert')}")]
    if not certs:
        return "XAdES xades:SigningCertificate bulunamadı."
    from cryptography.hazmat.primitives import serialization

    der = verified.cert.public_bytes(serialization.Encoding.DER)
    for cert in certs:
        method = cert.find(f"{q(XADES, 'CertDigest')}/{q(DS, 'DigestMethod')}")
        value = cert.find(f"{q(XADES, 'CertDigest')}/{q(DS, 'DigestValue')}")
        algorithm = DIGESTS.get(method.get("Algorithm") if method is not None else "")
        if algorithm is None or value is None:
            continue
        try:
            expected = base64.b64decode(b64_text(value), validate=True)
        except ValueError:
            continue
        if hashlib.new(algorithm, der).digest() == expected:
            return None
    return "İmzalı xades:SigningCertificate, imzayı doğrulayan sertifikayı göstermiyor (sertifika özeti tutmuyor)."


def signing_time(verified: Verified) -> dt.datetime | None:
    props = _signed_props(verified)
    el = props.find(f".//{q(XADES, 'SigningTime')}") if props is not None else None
    if el is None or not (el.text or "").strip():
        return None
    text = el.text.strip().replace("Z", "+00:00")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def signing_time_problem(verified: Verified) -> str | None:
    props = _signed_props(verified)
    if props is None or props.find(f".//{q(XADES, 'SigningTime')}") is None:
        return None
    when = signing_time(verified)
    if when is None:
        return "xades:SigningTime okunamadı."
    cert = verified.cert
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not start <= when <= end:
        return (f"İmza zamanı ({when.isoformat()}) sertifikanın geçerlilik süresi dışında "
                f"({start.date().isoformat()} – {end.date().isoformat()}).")
    return None


_DIGITS = re.compile(r"(\d{10,11})$")


def subject_identifier(cert) -> str | None:
    """The VKN/TCKN a mali mühür (VKN) or NES (TCKN) certificate names in its subject serialNumber
    (ETSI forms such as "TINTR-1234567890" or "IDCTR-12345678901" included)."""
    from cryptography.x509.oid import NameOID

    for attr in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        m = _DIGITS.search(str(attr.value).strip())
        if m:
            return m.group(1)
    return None


def cert_b64(cert) -> str:
    from cryptography.hazmat.primitives import serialization

    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
