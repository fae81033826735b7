"""The sample generator writes schema-valid, correctly signed, consistent and reproducible months."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import parse_name
from edefter_helper.samples import broken, size_mib, write_big_month, write_month, write_tree

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NS = {
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
    "xbrli": "http://www.xbrl.org/2003/instance",
    "gl-cor": "http://www.xbrl.org/int/gl/cor/2006-10-25",
    "gl-bus": "http://www.xbrl.org/int/gl/bus/2006-10-25",
}
VKN = "4810525635"


@pytest.fixture(scope="session")
def schema():
    xsd = SHARED / "schemas" / "edefter" / "edefter.xsd"
    if not xsd.exists():
        pytest.skip(f"GİB's schema is not here: {xsd} (the shared/ folder beside the checkout is missing)")
    return etree.XMLSchema(etree.parse(str(xsd)))


def xml_of(path: Path) -> bytes:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            assert name == path.with_suffix(".xml").name
            return zf.read(name)
    return path.read_bytes()


def sig_cert(root) -> x509.Certificate:
    b64 = root.find("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS).text
    return x509.load_der_x509_certificate(base64.b64decode(b64))


def verify_signxml(data: bytes) -> None:
    from signxml import SignatureConfiguration, XMLVerifier

    cert = sig_cert(etree.fromstring(data))
    # XAdES: the document reference plus the SignedProperties reference
    results = XMLVerifier().verify(data, x509_cert=cert, expect_config=SignatureConfiguration(expect_references=2))
    assert len(results) == 2


def enveloped_digest_ok(data: bytes) -> bool:
    root = etree.fromstring(data)
    ref = root.find("ds:Signature/ds:SignedInfo/ds:Reference[@URI='']", NS)
    transforms = [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)]
    assert transforms == ["http://www.w3.org/2000/09/xmldsig#enveloped-signature"]
    root.remove(root.find("ds:Signature", NS))
    digest = base64.b64encode(hashlib.sha256(etree.tostring(root, method="c14n")).digest()).decode()
    return digest == ref.find("ds:DigestValue", NS).text


@pytest.fixture(scope="module")
def branch_month(tmp_path_factory):
    return write_month(tmp_path_factory.mktemp("m"), VKN, "2024-03", branch="0007", entries=12, seed=3)


def test_every_kind_is_schema_valid_and_signed(tmp_path, schema, branch_month):
    split = write_month(tmp_path / "split", "12345678950", "2018-11", parts=2, entries=6, gib_zip=True)
    kinds = set()
    for path in list(branch_month) + list(split):
        data = xml_of(path)
        doc = etree.fromstring(data)
        assert schema.validate(doc), (path.name, schema.error_log.last_error)
        verify_signxml(data)
        assert enveloped_digest_ok(data), path.name
        kinds.add(parse_name(path.name).kind)
    assert kinds == {"Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"}
    assert not any(parse_name(p.name).kind == "DR" for p in split)  # 2018: no Defter Raporu
    assert {parse_name(p.name).part for p in split} == {1, 2}


def test_schema_catches_wrong_element_order(schema, branch_month):
    doc = etree.parse(str(branch_month.find("Y")))
    info = doc.find(".//gl-cor:documentInfo", NS)
    info.append(info[0])  # entriesType last
    assert not schema.validate(doc)


def test_headers_carry_firm_branch_and_period(branch_month, tmp_path):
    for path in branch_month:
        root = etree.fromstring(path.read_bytes())
        assert root.findtext(".//xbrli:identifier", namespaces=NS) == VKN
        orgs = {o.findtext("gl-bus:organizationDescription", namespaces=NS): o.findtext("gl-bus:organizationIdentifier", namespaces=NS)
                for o in root.iterfind(".//gl-bus:organizationIdentifiers", NS)}
        assert orgs["Şube No"] == "0007" and len(orgs["Şube Adı"]) >= 2
        assert len(orgs["Kurum Unvanı"]) >= 2
        info = root.find(".//gl-cor:documentInfo", NS)
        assert info.findtext("gl-cor:periodCoveredStart", namespaces=NS) == "2024-03-01"
        assert info.findtext("gl-cor:periodCoveredEnd", namespaces=NS) == "2024-03-31"
        uid = info.findtext("gl-cor:uniqueID", namespaces=NS)
        assert len(uid) == 15 and "202403" in uid
    person = write_month(tmp_path, "12345678950", "2020-06", entries=3)
    root = etree.fromstring(person.find("Y").read_bytes())
    descs = [d.text for d in root.iterfind(".//gl-bus:organizationDescription", NS)]
    assert descs == ["Adı Soyadı"]


def test_journal_entries_are_balanced(branch_month):
    root = etree.fromstring(branch_month.find("Y").read_bytes())
    headers = root.findall(".//gl-cor:entryHeader", NS)
    assert len(headers) == 12
    lines = []
    for h in headers:
        details = h.findall("gl-cor:entryDetail", NS)
        assert len(details) >= 2
        debit = sum(float(d.findtext("gl-cor:amount", namespaces=NS)) for d in details
                    if d.findtext("gl-cor:debitCreditCode", namespaces=NS) == "D")
        credit = sum(float(d.findtext("gl-cor:amount", namespaces=NS)) for d in details
                     if d.findtext("gl-cor:debitCreditCode", namespaces=NS) == "C")
        assert round(debit, 2) == round(credit, 2) == float(h.findtext("gl-bus:totalDebit", namespaces=NS))
        lines += [int(d.findtext("gl-cor:lineNumber", namespaces=NS)) for d in details]
    assert lines == list(range(1, len(lines) + 1))
    assert any(c in root.findtext(".//gl-cor:accountMainDescription", namespaces=NS) + "".join(
        t.text for t in root.iterfind(".//gl-cor:detailComment", NS)) for c in "çğıİöşü")


def test_berats_point_at_their_ledger(branch_month):
    for ledger, berats in (("Y", ("YB", "GIB-YB")), ("K", ("KB", "GIB-KB"))):
        lpath = branch_month.find(ledger)
        lroot = etree.fromstring(lpath.read_bytes())
        lvalue = lroot.findtext("ds:Signature/ds:SignatureValue", namespaces=NS)
        for kind in berats:
            broot = etree.fromstring(branch_month.find(kind).read_bytes())
            assert broot.findtext("ds:SignatureValue", namespaces=NS) == lvalue
            seg = broot.find(".//xbrli:segment", NS)
            assert seg.findtext("gl-bus:measurableQuantity", namespaces=NS) == size_mib(lpath.stat().st_size)
            assert (seg.find("gl-bus:numberOfEntries", NS) is not None) == (ledger == "Y")
            assert broot.find(".//gl-cor:documentInfo", NS).findtext("gl-cor:uniqueID", namespaces=NS) == \
                lroot.find(".//gl-cor:documentInfo", NS).findtext("gl-cor:uniqueID", namespaces=NS)
    assert size_mib(66_097) == "0.06"


def test_gib_countersignature(branch_month):
    root = etree.fromstring(branch_month.find("GIB-YB").read_bytes())
    outer = root.find("ds:Signature", NS)
    sv = outer.find("ds:SignatureValue", NS)
    cs = outer.find("ds:Object/xades:QualifyingProperties/xades:UnsignedProperties/xades:UnsignedSignatureProperties/"
                    "xades:CounterSignature/ds:Signature", NS)
    ref = cs.find("ds:SignedInfo/ds:Reference[@Type='http://uri.etsi.org/01903#CountersignedSignature']", NS)
    assert ref.get("URI") == "#" + sv.get("Id")
    digest = base64.b64encode(hashlib.sha256(etree.tostring(sv, method="c14n")).digest()).decode()
    assert ref.findtext("ds:DigestValue", namespaces=NS) == digest
    cert = x509.load_der_x509_certificate(base64.b64decode(cs.findtext(".//ds:X509Certificate", namespaces=NS)))
    assert "GİB" in cert.subject.rfc4514_string()
    assert cert.subject != sig_cert(root).subject
    signed_info = etree.tostring(cs.find("ds:SignedInfo", NS), method="c14n")
    cert.public_key().verify(base64.b64decode(cs.findtext("ds:SignatureValue", namespaces=NS)), signed_info,
                             padding.PKCS1v15(), hashes.SHA256())  # raises when wrong
    # the taxpayer's berat is the GİB berat minus the countersignature
    plain = etree.fromstring(branch_month.find("YB").read_bytes())
    assert plain.findtext("ds:Signature/ds:SignatureValue", namespaces=NS) == sv.text


def test_same_seed_same_bytes(tmp_path):
    a = write_month(tmp_path / "a", VKN, "2022-05", parts=2, seed=11)
    b = write_month(tmp_path / "b", VKN, "2022-05", parts=2, seed=11)
    c = write_month(tmp_path / "c", VKN, "2022-05", parts=2, seed=12)
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
    assert a.find("Y").read_bytes() != c.find("Y").read_bytes()


def test_keys_are_derived_once_per_process(tmp_path):
    """Writing a month signs with cached keys and certificates: deriving an RSA key costs seconds, so a
    sample tree of hundreds of months would otherwise take hours (counted, not timed)."""
    from edefter_helper.samples import keys

    write_month(tmp_path / "warm", VKN, "2024-01")
    cached = (keys.derived_key, keys.taxpayer_signer, keys.gib_signer)
    before = [f.cache_info().misses for f in cached]
    for i in range(10):
        write_month(tmp_path / str(i), VKN, "2024-01", seed=i)
    assert [f.cache_info().misses for f in cached] == before
    assert keys.taxpayer_signer.cache_info().hits >= 10  # one a month at least: the cache is what serves them


@pytest.mark.parametrize("layout", ["gib", "luca", "zirve", "flat", "mixed"])
def test_tree_layouts(tmp_path, layout):
    info = write_tree(tmp_path, layout=layout, branch_in_name=True, gib_zip=True)
    assert MonthKey("7420300220", "0001", "2023-11") in info.months
    assert not info.months[MonthKey("7420300220", "0001", "2023-12")].complete  # GİB berats missing
    assert info.months[MonthKey("12345678950", "0000", "2020-06")].complete
    for m in info.months.values():
        for p in m.files:
            name = parse_name(p.name)
            assert p.exists() and name and (name.vkn, name.period) == (m.key.vkn, m.key.period)
            if m.key.branch != "0000":
                assert name.branch == m.key.branch
    assert any(p.suffix == ".XML" for p in info.ledger_files)
    assert any(p.suffix == ".zip" for p in info.ledger_files)
    assert {parse_name(p.name).kind for p in info.inventory} == {"E", "EB"}
    assert all(parse_name(p.name) is None for p in info.unrelated)
    if layout in ("luca", "mixed"):
        assert info.stale and all(p.parent.name == ".silinenler" for p in info.stale)
    if layout == "zirve":
        assert (tmp_path / "Sonuc").is_dir() and any("paketler" in p.parts for p in info.unrelated)
        assert any(" " in part for p in info.ledger_files for part in p.parts)


def _verifies(data: bytes) -> bool:
    try:
        verify_signxml(data)
        return enveloped_digest_ok(data)
    except Exception:
        return False


def test_broken_variants(tmp_path):
    def month(name, **kw):
        return write_month(tmp_path / name, VKN, "2024-02", entries=6, **kw)

    m = month("gib")
    (gone,) = broken.remove_gib_berat(m)
    assert not gone.exists() and parse_name(gone.name).kind == "GIB-YB"
    m = month("dr")
    (gone,) = broken.remove_dr(m)
    assert not gone.exists()
    m = month("gap", parts=3)
    broken.part_gap(m)
    assert sorted({parse_name(p.name).part for p in (tmp_path / "gap").iterdir()} - {0}) == [1, 3]
    m = month("both")
    broken.whole_and_part(m)
    assert {parse_name(p.name).part for p in (tmp_path / "both").glob("*-Y-*")} == {0, 1}
    m = month("vkn")
    new = broken.vkn_mismatch(m)
    root = etree.fromstring(new[0].read_bytes())
    assert parse_name(new[0].name).vkn != root.findtext(".//xbrli:identifier", namespaces=NS)
    m = month("period")
    new = broken.period_mismatch(m)
    assert parse_name(new[0].name).period == "2001-01" and _verifies(new[0].read_bytes())
    m = month("edit")
    before = m.find("Y").read_bytes()
    (p,) = broken.edit_after_signing(m)
    after = p.read_bytes()
    assert len(after) == len(before) and after != before and not _verifies(after)
    assert _verifies(before)
    m = month("trunc")
    (p,) = broken.truncate(m)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(p.read_bytes())
    m = month("empty")
    (p,) = broken.empty(m)
    assert p.stat().st_size == 0


def test_hostile_xml_variants(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("GİZLİ-KANARYA", encoding="utf-8")
    m = write_month(tmp_path / "xxe", VKN, "2024-02", entries=3)
    (p,) = broken.xxe(m, canary)
    data = p.read_bytes()
    assert b"<!ENTITY xxe SYSTEM" in data
    careless = etree.fromstring(data, etree.XMLParser(resolve_entities=True, no_network=True))
    assert "GİZLİ-KANARYA" in careless.findtext(".//gl-bus:organizationIdentifier", namespaces=NS)
    safe = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
    assert "GİZLİ-KANARYA" not in etree.tostring(safe, encoding="unicode")
    m = write_month(tmp_path / "bomb", VKN, "2024-02", entries=3)
    (p,) = broken.entity_bomb(m)
    data = p.read_bytes()
    assert data.count(b"<!ENTITY lol") == 10 and len(data) < 200_000
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data, etree.XMLParser(resolve_entities=True, huge_tree=False))


def test_copies_and_berat_damage(tmp_path):
    m = write_month(tmp_path / "a", VKN, "2024-02", entries=4, gib_zip=True)
    (dup,) = broken.duplicate_copy(m, tmp_path / "yedek klasör")
    assert dup.read_bytes() == m.find("Y").read_bytes() and dup.name == m.find("Y").name
    (conf,) = broken.conflicting_copy(m, tmp_path / "eski kopya")
    assert conf.name == m.find("Y").name and conf.read_bytes() != m.find("Y").read_bytes()
    assert _verifies(conf.read_bytes())

    ledger_value = etree.fromstring(m.find("Y").read_bytes()).findtext("ds:Signature/ds:SignatureValue", namespaces=NS)
    changed = broken.berat_signature_mismatch(m)
    for p in changed:
        data = xml_of(p)
        assert _verifies(data)  # properly signed, only the link to the ledger is wrong
        assert etree.fromstring(data).findtext("ds:SignatureValue", namespaces=NS) != ledger_value

    m = write_month(tmp_path / "b", VKN, "2024-02", entries=4)
    broken.wrong_measurable_quantity(m)
    root = etree.fromstring(m.find("YB").read_bytes())
    assert root.findtext(".//gl-bus:measurableQuantity", namespaces=NS) != size_mib(m.find("Y").stat().st_size)
    assert _verifies(m.find("YB").read_bytes()) and _verifies(m.find("GIB-YB").read_bytes())

    broken.gib_without_countersignature(m)
    assert m.find("GIB-YB").read_bytes() == m.find("YB").read_bytes()
    assert b"CounterSignature" not in m.find("GIB-YB").read_bytes()


def test_two_branches(tmp_path):
    m = write_month(tmp_path, VKN, "2024-02", entries=4, branch="0001")
    broken.two_branches(m)

    def branch_of(p):
        root = etree.fromstring(p.read_bytes())
        for o in root.iterfind(".//gl-bus:organizationIdentifiers", NS):
            if o.findtext("gl-bus:organizationDescription", namespaces=NS) == "Şube No":
                return o.findtext("gl-bus:organizationIdentifier", namespaces=NS)

    assert branch_of(m.find("Y")) == "0001" and branch_of(m.find("K")) == "0002"
    assert _verifies(m.find("K").read_bytes())


def test_streamed_digest_equals_lxml_c14n(tmp_path, schema):
    big = write_big_month(tmp_path, VKN, "2024-04", parts=2, part_mb=1)
    journal = [p for p in big if parse_name(p.name).kind == "Y"]
    assert [parse_name(p.name).part for p in journal] == [1, 2]
    for p in journal:
        data = p.read_bytes()
        assert 1_000_000 < len(data) < 1_300_000
        assert schema.validate(etree.fromstring(data))
        verify_signxml(data)
        assert enveloped_digest_ok(data)
        berat = etree.fromstring(p.with_name(p.name.replace("-Y-", "-YB-")).read_bytes())
        assert berat.findtext(".//gl-bus:measurableQuantity", namespaces=NS) == size_mib(len(data))
        assert berat.findtext("ds:SignatureValue", namespaces=NS) == \
            etree.fromstring(data).findtext("ds:Signature/ds:SignatureValue", namespaces=NS)
    # a document written in canonical form is its own C14N (after the XML declaration)
    data = journal[0].read_bytes()
    assert etree.tostring(etree.fromstring(data), method="c14n") == data.split(b"\n", 1)[1]
