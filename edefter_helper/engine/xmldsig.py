"""Cryptographic check of XML-DSig / XAdES signatures as e-Defter files carry them.

The whole-document reference (URI="", enveloped) is digested while the file streams
(see c14n.py); this module checks the rest: same-document references by Id, SignedInfo
and the signature value against the certificate the signature carries. The certificate's
chain of trust is not checked (no trust store for mali mühür certificates here).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
ENVELOPED = DS + "enveloped-signature"

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_COMMENTS = C14N_10 + "#WithComments"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_11_COMMENTS = C14N_11 + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"

# algorithm -> (exclusive, with_comments); C14N 1.1 equals 1.0 for documents without xml:id/base
C14N_METHODS = {
    C14N_10: (False, False), C14N_10_COMMENTS: (False, True),
    C14N_11: (False, False), C14N_11_COMMENTS: (False, True),
    EXC_C14N: (True, False), EXC_C14N_COMMENTS: (True, True),
}

DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}

SIGNATURES = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", "sha1"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", "sha256"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", "sha384"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", "sha512"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ecdsa", "sha256"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ecdsa", "sha384"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ecdsa", "sha512"),
}


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


class SignatureInvalid(Exception):
    """Carries a Turkish reason."""


class DocumentChanged(SignatureInvalid):
    """The whole-document (URI="") digest does not match."""


class DuplicateId(SignatureInvalid):
    """Two elements carry the Id a reference points at."""

    def __init__(self, ident: str):
        super().__init__(f"Belgede aynı Id ({ident}) birden çok öğede var; imzanın neyi gösterdiği belirsiz.")
        self.ident = ident


@dataclass
class Verified:
    """What a verified signature proved: its certificate and the elements its references covered."""

    cert: object  # cryptography x509.Certificate
    subject: str
    covered: list  # elements signed through a same-document "#Id" reference


@dataclass(frozen=True)
class WholeDocumentTransform:
    """How the URI="" reference wants the document canonicalised and digested."""

    digest: str  # hashlib name
    exclusive: bool
    with_comments: bool


def b64_text(el) -> str:
    return re.sub(r"\s+", "", el.text or "") if el is not None else ""


def whole_document_transform(signature) -> WholeDocumentTransform | None:
    """The URI="" reference's canonicalisation and digest, or None when the signature has none."""
    for ref in signature.iterfind(f"{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}"):
        if ref.get("URI") != "":
            continue
        return _ref_transform(ref)
    return None


def _ref_transform(ref) -> WholeDocumentTransform:
    method = ref.find(f"{q(DS, 'DigestMethod')}")
    digest = DIGESTS.get(method.get("Algorithm") if method is not None else "")
    if digest is None:
        raise SignatureInvalid("Desteklenmeyen özet (digest) algoritması.")
    exclusive, comments = False, False
    for t in ref.iterfind(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}"):
        alg = t.get("Algorithm")
        if alg == ENVELOPED:
            continue
        if alg not in C14N_METHODS:
            raise SignatureInvalid(f"Desteklenmeyen imza dönüşümü: {alg}")
        exclusive, comments = C14N_METHODS[alg]
    return WholeDocumentTransform(digest, exclusive, comments)


def find_by_id(root, ident: str):
    """The one element carrying Id `ident`; a duplicate Id is refused (a standard verifier might
    resolve it to the other one)."""
    found = [el for el in root.iter() if isinstance(el.tag, str)
             and ident in (el.get("Id"), el.get("ID"), el.get("id"))]
    if len(found) > 1:
        raise DuplicateId(ident)
    return found[0] if found else None


def _c14n(el, exclusive: bool, with_comments: bool) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=exclusive, with_comments=with_comments)


def verify(signature, whole_document_digest: dict[WholeDocumentTransform, bytes] | None = None) -> Verified:
    """Check every reference and the signature value; returns the certificate and what was covered.

    `whole_document_digest` maps a transform to the digest the stream computed for URI="".
    Raises SignatureInvalid with a Turkish reason.
    """
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    signed_info = signature.find(q(DS, "SignedInfo"))
    if signed_info is None:
        raise SignatureInvalid("İmzada ds:SignedInfo yok.")
    root = signature.getroottree().getroot()
    refs = signed_info.findall(q(DS, "Reference"))
    if not refs:
        raise SignatureInvalid("İmzada ds:Reference yok.")
    covered = []
    for ref in refs:
        uri = ref.get("URI")
        transform = _ref_transform(ref)
        expected = base64.b64decode(b64_text(ref.find(q(DS, "DigestValue"))))
        if uri == "":
            if whole_document_digest is None or transform not in whole_document_digest:
                raise SignatureInvalid("Belgenin tamamına ait imza özeti hesaplanamadı.")
            actual = whole_document_digest[transform]
            if actual != expected:
                raise DocumentChanged(
                    "Belgenin içeriği imzalandıktan sonra değiştirilmiş (imza özeti tutmuyor).")
        elif uri and uri.startswith("#"):
            target = find_by_id(root, uri[1:])
            if target is None:
                raise SignatureInvalid(f"İmzanın gösterdiği {uri} öğesi belgede yok.")
            actual = hashlib.new(transform.digest,
                                 _c14n(target, transform.exclusive, transform.with_comments)).digest()
            if actual != expected:
                raise SignatureInvalid(f"İmzalı {uri} öğesi değiştirilmiş (özet tutmuyor).")
            covered.append(target)
        else:
            raise SignatureInvalid("Belge dışını gösteren imza referansı desteklenmiyor.")

    method = signed_info.find(q(DS, "CanonicalizationMethod"))
    c14n_alg = method.get("Algorithm") if method is not None else None
    if c14n_alg not in C14N_METHODS:
        raise SignatureInvalid("Desteklenmeyen kanonikleştirme algoritması.")
    signed_bytes = _c14n(signed_info, *C14N_METHODS[c14n_alg])
    sig_method = signed_info.find(q(DS, "SignatureMethod"))
    algorithm = SIGNATURES.get(sig_method.get("Algorithm") if sig_method is not None else "")
    if algorithm is None:
        raise SignatureInvalid("Desteklenmeyen imza algoritması.")
    cert_el = signature.find(f"{q(DS, 'KeyInfo')}/{q(DS, 'X509Data')}/{q(DS, 'X509Certificate')}")
    if cert_el is None:
        raise SignatureInvalid("ds:KeyInfo elemanı içerisindeki ds:X509Data elemanı zorunlu bir elemandır.")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(b64_text(cert_el)))
    except ValueError:
        raise SignatureInvalid("İmzadaki sertifika okunamadı.") from None
    value = base64.b64decode(b64_text(signature.find(q(DS, "SignatureValue"))))
    hash_alg = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
                "sha512": hashes.SHA512}[algorithm[1]]()
    key = cert.public_key()
    try:
        if algorithm[0] == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, signed_bytes, padding.PKCS1v15(), hash_alg)
        elif algorithm[0] == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(value) // 2
            der = encode_dss_signature(int.from_bytes(value[:half], "big"),
                                       int.from_bytes(value[half:], "big"))
            key.verify(der, signed_bytes, ec.ECDSA(hash_alg))
        else:
            raise SignatureInvalid("İmza algoritması sertifikanın anahtarına uymuyor.")
    except InvalidSignature:
        raise SignatureInvalid("İmza değeri sertifikayla doğrulanamadı.") from None
    return Verified(cert, cert.subject.rfc4514_string(), covered)


def counter_signature(signature):
    """GİB's countersignature inside a berat's signature, or None."""
    return signature.find(
        f"{q(DS, 'Object')}/{q(XADES, 'QualifyingProperties')}/{q(XADES, 'UnsignedProperties')}/"
        f"{q(XADES, 'UnsignedSignatureProperties')}/{q(XADES, 'CounterSignature')}/{q(DS, 'Signature')}")
