"""Writing XML directly in Canonical XML 1.0 form, and enveloped XAdES signatures over it.

Every sample document is written already canonical (all namespace declarations on the root,
attributes in C14N order, no empty-element tags, C14N escaping, no whitespace around the
signature). Then the enveloped-signature digest is simply sha256 of the bytes from the root's
start tag up to the ds:Signature plus the root's end tag: no parse is needed, and a 200 MB
ledger can be hashed while it is being written. Tests check this against lxml's C14N.
"""

from __future__ import annotations

import base64
import hashlib
import re

from edefter_helper.samples.keys import Signer

NS = {
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "edefter": "http://www.edefter.gov.tr",
    "gl-bus": "http://www.xbrl.org/int/gl/bus/2006-10-25",
    "gl-cor": "http://www.xbrl.org/int/gl/cor/2006-10-25",
    "gl-muc": "http://www.xbrl.org/int/gl/muc/2006-10-25",
    "iso4217": "http://www.xbrl.org/2003/iso4217",
    "link": "http://www.xbrl.org/2003/linkbase",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
    "xbrli": "http://www.xbrl.org/2003/instance",
    "xlink": "http://www.w3.org/1999/xlink",
}
# C14N orders namespace declarations by prefix; NS above is already sorted
NS_DECL = "".join(f' xmlns:{p}="{u}"' for p, u in sorted(NS.items()))

XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNED_PROPS_TYPE = "http://uri.etsi.org/01903#SignedProperties"
COUNTERSIGNED_TYPE = "http://uri.etsi.org/01903#CountersignedSignature"

_TEXT_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
_ATTR_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", '"': "&quot;", "\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"})


def esc(text: str) -> str:
    """Text content escaped as C14N writes it."""
    return text.translate(_TEXT_ESC)


def attr(text: str) -> str:
    """Attribute value escaped as C14N writes it."""
    return text.translate(_ATTR_ESC)


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


_START_TAG_NAME = re.compile(r"<[^\s>]+")


def _canonical_subtree(xml: str) -> bytes:
    """C14N of an element written without namespace declarations, inside our root.

    Inclusive C14N of a subtree renders every namespace in scope on its top element, before its
    attributes; all of ours are declared on the root, so that is NS_DECL.
    """
    end = _START_TAG_NAME.match(xml).end()
    return (xml[:end] + NS_DECL + xml[end:]).encode()


def _signed_properties(sig_id: str, signer: Signer, signing_time: str) -> str:
    return (
        f'<xades:SignedProperties Id="{sig_id}-SignedProperties"><xades:SignedSignatureProperties>'
        f"<xades:SigningTime>{signing_time}</xades:SigningTime>"
        "<xades:SigningCertificate><xades:Cert><xades:CertDigest>"
        f'<ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod>'
        f"<ds:DigestValue>{signer.cert_digest_b64}</ds:DigestValue></xades:CertDigest>"
        f"<xades:IssuerSerial><ds:X509IssuerName>{esc(signer.issuer_name)}</ds:X509IssuerName>"
        f"<ds:X509SerialNumber>{signer.serial}</ds:X509SerialNumber></xades:IssuerSerial>"
        "</xades:Cert></xades:SigningCertificate></xades:SignedSignatureProperties>"
        "</xades:SignedProperties>"
    )


def _reference(uri: str, transforms: list[str], digest_b64: str, type_: str | None = None) -> str:
    type_attr = f' Type="{type_}"' if type_ else ""  # C14N order: Type before URI
    tr = "".join(f'<ds:Transform Algorithm="{t}"></ds:Transform>' for t in transforms)
    return (
        f'<ds:Reference{type_attr} URI="{attr(uri)}"><ds:Transforms>{tr}</ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod>'
        f"<ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference>"
    )


def signature(
    *, sig_id: str, signer: Signer, signing_time: str, target_uri: str, target_digest_b64: str,
    countersign: bool = False, unsigned: str = "",
) -> tuple[str, str]:
    """Build a XAdES-BES ds:Signature; returns (xml, SignatureValue text).

    Enveloped (`target_uri=""`, the document) or, with `countersign`, a countersignature over the
    element `target_uri` points at. `unsigned` goes into xades:UnsignedProperties.
    """
    props = _signed_properties(sig_id, signer, signing_time)
    if countersign:
        first = _reference(target_uri, [C14N], target_digest_b64, COUNTERSIGNED_TYPE)
    else:
        first = _reference(target_uri, [ENVELOPED], target_digest_b64)
    second = _reference(f"#{sig_id}-SignedProperties", [C14N], b64sha256(_canonical_subtree(props)),
                        SIGNED_PROPS_TYPE)
    signed_info = (
        f'<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{C14N}"></ds:CanonicalizationMethod>'
        f'<ds:SignatureMethod Algorithm="{RSA_SHA256}"></ds:SignatureMethod>{first}{second}</ds:SignedInfo>'
    )
    value = signer.sign(_canonical_subtree(signed_info))
    unsigned_xml = (
        f"<xades:UnsignedProperties><xades:UnsignedSignatureProperties>{unsigned}"
        "</xades:UnsignedSignatureProperties></xades:UnsignedProperties>" if unsigned else ""
    )
    xml = (
        f'<ds:Signature Id="{sig_id}">{signed_info}'
        f'<ds:SignatureValue Id="{sig_id}-SignatureValue">{value}</ds:SignatureValue>'
        f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{signer.cert_b64}</ds:X509Certificate>"
        f"</ds:X509Data></ds:KeyInfo>"
        f'<ds:Object><xades:QualifyingProperties Target="#{sig_id}">{props}{unsigned_xml}'
        "</xades:QualifyingProperties></ds:Object></ds:Signature>"
    )
    return xml, value


def countersignature(*, sig_id: str, signer: Signer, signing_time: str, signed_sig_id: str,
                     signed_value: str) -> str:
    """GİB's countersignature over the berat signature's ds:SignatureValue, as CounterSignature."""
    target = _canonical_subtree(
        f'<ds:SignatureValue Id="{signed_sig_id}-SignatureValue">{signed_value}</ds:SignatureValue>'
    )
    xml, _ = signature(sig_id=sig_id, signer=signer, signing_time=signing_time,
                       target_uri=f"#{signed_sig_id}-SignatureValue",
                       target_digest_b64=b64sha256(target), countersign=True)
    return f"<xades:CounterSignature>{xml}</xades:CounterSignature>"


class DigestSink:
    """Writes a canonical document to a file or buffer while hashing it for the enveloped reference."""

    def __init__(self, out, root_qname: str):
        self.out = out
        self.root_qname = root_qname
        self.hash = hashlib.sha256()
        self.size = 0
        out.write(XML_DECL)
        self.size += len(XML_DECL)

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.hash.update(data)
        self.size += len(data)

    def finish(self, make_signature) -> str:
        """Close the document: `make_signature(digest_b64) -> (xml, value)`; returns the value."""
        end = f"</{self.root_qname}>".encode()
        h = self.hash.copy()
        h.update(end)
        xml, value = make_signature(base64.b64encode(h.digest()).decode())
        tail = xml.encode() + end
        self.out.write(tail)
        self.size += len(tail)
        return value
