"""The verifier against signatures made by an independent signer (signxml), with the algorithms a
producer program might choose, not only those of our own sample generator."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from edefter_helper.engine import reader
from edefter_helper.engine.names import parse_name
from edefter_helper.samples import write_month

signxml = pytest.importorskip("signxml", reason="signxml (dev extra) signs the documents under test")

DS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N11 = "http://www.w3.org/2006/12/xml-c14n11"


def _cert(key):
    # a mali mühür names its holder's VKN in the subject serialNumber
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Deneme Mali Mühür"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "4810525635")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2035, 1, 1)).sign(key, hashes.SHA256()))


def _resign(src: Path, dest: Path, key, algorithm: str, c14n: str, digest: str = "sha256") -> Path:
    root = etree.fromstring(src.read_bytes())
    root.remove(root.find(f"{{{DS}}}Signature"))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    signed = signxml.XMLSigner(method=signxml.methods.enveloped, signature_algorithm=algorithm,
                               digest_algorithm=digest, c14n_algorithm=c14n).sign(
        root, key=pem, cert=_cert(key).public_bytes(serialization.Encoding.PEM))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))
    return dest


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    month = write_month(tmp_path_factory.mktemp("ay"), "4810525635", "2024-01", parts=2)
    return month.find("Y", 1)


@pytest.mark.parametrize("label,key,algorithm,c14n,digest", [
    ("rsa-inclusive", "rsa", "rsa-sha256", C14N, "sha256"),
    ("rsa-exclusive", "rsa", "rsa-sha256", EXC, "sha256"),
    ("rsa-c14n11-sha512", "rsa", "rsa-sha512", C14N11, "sha512"),
    ("ecdsa-p256", "ec", "ecdsa-sha256", C14N, "sha384"),
])
def test_independent_signatures_verify_and_edits_are_caught(tmp_path, ledger, label, key, algorithm, c14n, digest):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048) if key == "rsa" \
        else ec.generate_private_key(ec.SECP256R1())
    path = _resign(ledger, tmp_path / label / ledger.name, private, algorithm, c14n, digest)
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is True, facts["problems"]
    assert facts["problems"] == []

    data = path.read_bytes()
    at = data.index(b"<gl-cor:amount")
    at = data.index(b">", at) + 1
    digit = data[at:at + 1]
    edited = data[:at] + (b"9" if digit != b"9" else b"8") + data[at + 1:]
    path.write_bytes(edited)
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is False
    assert [p["code"] for p in facts["problems"]] == ["signature-invalid"]


def test_crlf_line_endings_verify(tmp_path, ledger):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = _resign(ledger, tmp_path / "crlf" / ledger.name, private, "rsa-sha256", C14N)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # what a Windows copy may do
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is True, facts["problems"]


# -- the raw-bytes shortcut: fast when the file is canonical, never wrong when it is not -------

def _entries_as_written(path: Path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    spans, at = [], 0
    while (start := data.find(b"<gl-cor:entryHeader>", at)) >= 0:
        end = data.index(b"</gl-cor:entryHeader>", start)
        spans.append((start, end))
        at = end
    return spans


def _requote_one_attribute(data: bytes, start: int) -> bytes:
    """contextRef="x" -> contextRef='x': the same XML, no longer in canonical form."""
    at = data.index(b'contextRef="', start)
    close = data.index(b'"', at + len(b'contextRef="'))
    return data[:at] + b"contextRef='" + data[at + len(b'contextRef="'):close] + b"'" + data[close + 1:]


@pytest.mark.parametrize("which", ["first", "last"])
def test_non_canonical_but_unchanged_ledger_still_verifies(tmp_path, which, monkeypatch):
    month = write_month(tmp_path / "ay", "4810525635", "2024-01", entries=40)
    path = month.find("Y", 0)
    spans = _entries_as_written(path)
    assert len(spans) >= 2
    start = spans[0][0] if which == "first" else spans[-1][0]
    path.write_bytes(_requote_one_attribute(path.read_bytes(), start))
    passes = []
    real = reader._second_pass
    monkeypatch.setattr(reader, "_second_pass", lambda *a: passes.append(a) or real(*a))
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is True, facts["problems"]
    # a non-canonical first entry is noticed at once; a later one only when the shortcut misses
    assert len(passes) == (0 if which == "first" else 1)


def test_canonical_ledger_takes_the_shortcut_and_edits_are_still_caught(tmp_path, monkeypatch):
    month = write_month(tmp_path / "ay", "4810525635", "2024-01", entries=40)
    path = month.find("Y", 0)
    passes = []
    real = reader._second_pass
    monkeypatch.setattr(reader, "_second_pass", lambda *a: passes.append(a) or real(*a))
    assert reader.read_full(path, parse_name(path.name)).get("signature_ok") is True
    assert passes == []  # one pass over the bytes
    data = path.read_bytes()
    at = data.index(b">", data.index(b"<gl-cor:amount", _entries_as_written(path)[-1][0])) + 1
    path.write_bytes(data[:at] + (b"7" if data[at:at + 1] != b"7" else b"6") + data[at + 1:])
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is False and len(passes) == 1
    assert [p["code"] for p in facts["problems"]] == ["signature-invalid"]
