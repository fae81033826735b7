"""Attacks on the verifier (issue 7), each through the real command line.

Every attack in `edefter_helper.samples.attacks` must end `valid: false` with at least one of the
problem codes it names; clean months stay valid. Where the attack is on a signature, signxml is an
independent oracle: it must ACCEPT the clean file (so its verdict means something) and REJECT the
attacked bytes – or, where signxml cannot express the rule (who signed, which element a
countersignature must cover, which facts an application reads), the test says so and shows that
signxml accepts, i.e. that only the new rule catches the attack.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from edefter_helper.samples import attacks as A
from edefter_helper.samples import write_month
from edefter_helper.samples.keys import gib_signer
from tests.conftest import run_edefter

VKN = "4810525635"
OTHER_VKN = "12345678950"  # a second firm (TCKN)
PERIOD = "2024-01"
ENTRIES = 20

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
DOCUMENT_SIG = "./"
COUNTER_SIG = (f"./{{{DS}}}Signature/{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}UnsignedProperties/"
               f"{{{XADES}}}UnsignedSignatureProperties/{{{XADES}}}CounterSignature/")

UNSIGNED = {"unsigned-content", "signature-invalid"}
FACTS = {"unsigned-content", "duplicate-fact", "size-mismatch"}
DECOY = {"countersignature-invalid", "unsigned-content", "duplicate-id"}


# -- helpers ------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_trust_list(monkeypatch):
    monkeypatch.delenv("EDEFTER_GIB_TRUST", raising=False)


@pytest.fixture
def month(tmp_path):
    return write_month(tmp_path / "ay", VKN, PERIOD, entries=ENTRIES)


def verify(*folders, env: dict | None = None, timeout: float = 120) -> tuple[int, dict, str]:
    res = run_edefter("verify", *folders, "--json", env_extra=env, timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr
    try:
        report = json.loads(res.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"verify --json did not print JSON (exit {res.returncode}): {res.stdout!r} {res.stderr!r}")
    return res.returncode, report, res.stderr


def the_set(report: dict, vkn: str = VKN, period: str = PERIOD) -> dict:
    found = [s for s in report["sets"] if s["vkn"] == vkn and s["period"] == period]
    assert len(found) == 1, report
    return found[0]


def codes(items) -> set[str]:
    return {i["code"] if isinstance(i, dict) else str(i) for i in items}


def assert_caught(folder, expected: set[str], *, vkn: str = VKN, period: str = PERIOD, env=None) -> dict:
    rc, report, _ = verify(folder, env=env)
    s = the_set(report, vkn, period)
    found = codes(s["problems"])
    assert s["valid"] is False, f"attack verified as valid: {s}"
    assert found & expected, f"expected one of {sorted(expected)}, got {sorted(found)}: {s['problems']}"
    assert rc == 1
    return s


def xml_of(path: Path) -> bytes:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            (name,) = zf.namelist()
            return zf.read(name)
    return path.read_bytes()


def well_formed(paths) -> None:
    """An attack must keep every file it touched well-formed XML (and return what it touched)."""
    assert paths
    for p in paths:
        etree.fromstring(xml_of(p), etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True))


def signxml_verdict(data: bytes, where: str = DOCUMENT_SIG) -> str | None:
    """None when signxml's XAdES verifier accepts the signature at `where`, else why it refused.

    The certificate is the one the signature carries (signxml checks no chain here, as we do not);
    validity is judged at the signature's own xades:SigningTime.
    """
    signxml = pytest.importorskip("signxml", reason="signxml (dev extra) is the independent oracle")
    from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True))
        sig = root.find(where + f"{{{DS}}}Signature")
        if sig is None:
            return "no signature there"
        cert_el = sig.find(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
        if cert_el is None:
            return "no certificate"
        cert = x509.load_der_x509_certificate(base64.b64decode(cert_el.text))
        when = sig.find(f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}SignedProperties/"
                        f"{{{XADES}}}SignedSignatureProperties/{{{XADES}}}SigningTime")
        config = XAdESSignatureConfiguration(
            location=where, expect_references=True,
            verification_time=dt.datetime.fromisoformat(when.text) if when is not None else None)
        XAdESVerifier().verify(data, x509_cert=cert, expect_config=config)
    except (signxml.exceptions.SignXMLException, etree.XMLSyntaxError, etree.DocumentInvalid) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def oracle_accepts(data: bytes, where: str = DOCUMENT_SIG) -> None:
    verdict = signxml_verdict(data, where)
    assert verdict is None, verdict


def oracle_rejects(data: bytes, where: str = DOCUMENT_SIG) -> None:
    assert signxml_verdict(data, where) is not None, "signxml accepted the attacked bytes"


# -- clean months and the trust list -------------------------------------------------------------

def _warning_codes(s: dict) -> set[str]:
    return codes(s.get("warnings", []))


def test_clean_month_is_valid_and_names_the_untrusted_countersigner(month):
    rc, report, _ = verify(month.folder)
    s = the_set(report)
    assert s["valid"] is True and s["problems"] == [] and rc == 0
    assert "countersigner-untrusted" in _warning_codes(s), s


@pytest.mark.parametrize("as_folder", [False, True], ids=["pem-file", "pem-folder"])
def test_clean_month_with_gib_on_the_trust_list_has_no_warning(month, tmp_path, as_folder):
    trust = tmp_path / "guven"
    trust.mkdir()
    pem = trust / "gib.pem"
    pem.write_bytes(gib_signer().cert_pem)
    rc, report, _ = verify(month.folder, env={"EDEFTER_GIB_TRUST": str(trust if as_folder else pem)})
    s = the_set(report)
    assert s["valid"] is True and s["problems"] == [] and rc == 0
    assert "countersigner-untrusted" not in _warning_codes(s), s


def test_clean_zipped_month_is_valid(tmp_path):
    month = write_month(tmp_path / "ay", VKN, PERIOD, entries=ENTRIES, gib_zip=True)
    rc, report, _ = verify(month.folder)
    s = the_set(report)
    assert s["valid"] is True and s["problems"] == [] and rc == 0


def test_fake_gib_countersigner_is_never_silently_accepted(month, tmp_path):
    """Beyond the list: a countersignature over the right SignatureValue, by a self-made key whose
    certificate carries GİB's name. With GİB's real certificate on the trust list it must be named."""
    path = month.find("GIB-YB")
    oracle_accepts(xml_of(path), COUNTER_SIG)
    well_formed(A.fake_gib_countersigner(month))
    # signxml cannot express "who countersigned" (no trust list): it accepts the fake countersignature
    oracle_accepts(xml_of(path), COUNTER_SIG)
    pem = tmp_path / "gib.pem"
    pem.write_bytes(gib_signer().cert_pem)
    _, report, _ = verify(month.folder, env={"EDEFTER_GIB_TRUST": str(pem)})
    s = the_set(report)
    assert "countersigner-untrusted" in _warning_codes(s) | codes(s["problems"]), s


# -- 1. raw-digest trailer ----------------------------------------------------------------------

@pytest.mark.parametrize("entries,wrap,closing_decoy", [
    (1, "none", True), (200, "none", True), (1, "accountingEntries", True), (200, "accountingEntries", True),
    (1, "xbrl", True), (1, "none", False), (1, "accountingEntries", False),
], ids=["1-bare", "200-bare", "1-in-accountingEntries", "200-in-accountingEntries", "1-in-xbrl",
        "1-bare-no-closing-decoy", "1-in-accountingEntries-no-closing-decoy"])
def test_raw_digest_trailer(month, entries, wrap, closing_decoy):
    path = month.find("Y")
    oracle_accepts(path.read_bytes())
    well_formed(A.raw_digest_trailer(month, entries=entries, wrap=wrap, closing_decoy=closing_decoy))
    data = path.read_bytes()
    assert data.count(b"999999.00") >= 2 * entries
    oracle_rejects(data)
    assert_caught(month.folder, UNSIGNED)


# -- 2. a second root-level signature -----------------------------------------------------------

@pytest.mark.parametrize("mode", ["copy-before", "copy-after", "exact-copy-after", "wrapper-after",
                                  "wrapper-before", "default-prefix-after"])
def test_second_signature(month, mode):
    path = month.find("Y")
    oracle_accepts(path.read_bytes())
    well_formed(A.second_signature(month, mode=mode))
    oracle_rejects(path.read_bytes())
    # a byte-identical copy also duplicates every Id
    assert_caught(month.folder, UNSIGNED | ({"duplicate-id"} if mode == "exact-copy-after" else set()))


# -- 3. content before the signature ------------------------------------------------------------

@pytest.mark.parametrize("entries", [1, 200])
def test_content_before_signature(month, entries):
    path = month.find("Y")
    oracle_accepts(path.read_bytes())
    well_formed(A.content_before_signature(month, entries=entries))
    oracle_rejects(path.read_bytes())
    assert_caught(month.folder, {"signature-invalid", "unsigned-content"})


# -- 4. facts from unsigned or duplicated content -----------------------------------------------

@pytest.mark.parametrize("variant", ["wrong-size", "second-vkn", "wrong-size-trailer"])
def test_unsigned_facts(month, variant):
    path = month.find("GIB-YB")
    oracle_accepts(path.read_bytes())
    if variant == "wrong-size":
        well_formed(A.unsigned_facts(month))
    elif variant == "second-vkn":
        well_formed(A.unsigned_facts(month, quantity=None, vkn="1111111111"))
    else:
        well_formed(A.unsigned_facts(month, place="trailer"))
    # trailer: the digest no longer matches. In the unsigned properties no reference covers the context
    # (signxml has no notion of "facts only from signed content"), but signxml validates ds:Signature
    # against the XAdES schema, whose strict wildcard refuses an xbrli:context there
    oracle_rejects(path.read_bytes())
    if variant == "wrong-size":
        # the SIGNED size is right: "size-mismatch" here would mean the size was read from unsigned
        # content, so only the unsigned/duplicated fact itself may be reported
        s = assert_caught(month.folder, {"unsigned-content", "duplicate-fact"})
        assert "size-mismatch" not in codes(s["problems"]), s["problems"]
    else:
        assert_caught(month.folder, FACTS)


def test_size_hidden_by_unsigned_fact(month):
    """The signed size is wrong and the right one sits in the unsigned properties of both berats."""
    for kind in ("YB", "GIB-YB"):
        oracle_accepts(month.find(kind).read_bytes())
    well_formed(A.size_hidden_by_unsigned_fact(month))
    for kind in ("YB", "GIB-YB"):
        oracle_rejects(month.find(kind).read_bytes())  # schema, see test_unsigned_facts
    assert_caught(month.folder, FACTS)


@pytest.mark.parametrize("what", ["documentInfo", "context"])
def test_signed_duplicate_fact(month, what):
    oracle_accepts(month.find("YB").read_bytes())
    well_formed(A.signed_duplicate_fact(month, what=what))
    # properly re-signed: signxml accepts; a second value for a fact is an application rule
    oracle_accepts(month.find("YB").read_bytes())
    oracle_accepts(month.find("GIB-YB").read_bytes())
    assert_caught(month.folder, FACTS)


# -- 5. decoy countersignature ------------------------------------------------------------------

@pytest.mark.parametrize("real_id,place", [("removed", "unsigned"), ("renamed", "object"), ("kept", "unsigned")])
def test_decoy_countersignature(month, real_id, place):
    gib = month.find("GIB-YB")
    oracle_accepts(gib.read_bytes())
    oracle_accepts(gib.read_bytes(), COUNTER_SIG)
    well_formed(A.decoy_countersignature(month, real_id=real_id, decoy_place=place))
    data = gib.read_bytes()
    # ledger and berat signatures are valid (self-made key, certificate names the right VKN):
    # signxml cannot express who signed, so it accepts them
    oracle_accepts(month.find("Y").read_bytes())
    oracle_accepts(month.find("YB").read_bytes())
    if real_id == "kept":
        # two elements carry the Id: the XAdES schema (xs:ID) and the reference lookup both refuse
        oracle_rejects(data)
        oracle_rejects(data, COUNTER_SIG)
    else:
        oracle_accepts(data)
        # signxml cannot express "the countersignature must cover THIS berat's ds:SignatureValue":
        # the decoy holds exactly the bytes GİB signed, so it accepts
        oracle_accepts(data, COUNTER_SIG)
    assert_caught(month.folder, DECOY)


# -- 6. countersignature taken from another month -----------------------------------------------

@pytest.mark.parametrize("target", ["as-is", "renamed", "decoy"])
def test_countersignature_from_other_month(month, tmp_path, target):
    other = write_month(tmp_path / "baska-ay", VKN, "2024-02", entries=ENTRIES)
    path = month.find("GIB-YB")
    oracle_accepts(path.read_bytes(), COUNTER_SIG)
    oracle_accepts(other.find("GIB-YB").read_bytes(), COUNTER_SIG)
    well_formed(A.countersignature_from_other_month(month, other, target=target))
    data = path.read_bytes()
    oracle_accepts(data)  # the taxpayer's berat signature itself is untouched
    if target == "decoy":
        # as in test_decoy_countersignature: the decoy carries the bytes GİB signed; signxml accepts
        oracle_accepts(data, COUNTER_SIG)
        expected = {"countersignature-invalid"} | DECOY
    else:
        oracle_rejects(data, COUNTER_SIG)
        expected = {"countersignature-invalid"}
    assert_caught(month.folder, expected)


# -- 7. duplicate Ids ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind,place", [("Y", "unsigned"), ("Y", "object-before"), ("GIB-YB", "unsigned")])
def test_duplicate_ids(month, kind, place):
    path = month.find(kind)
    oracle_accepts(path.read_bytes())
    well_formed(A.duplicate_ids(month, kind, place=place))
    oracle_rejects(path.read_bytes())  # ambiguous reference
    assert_caught(month.folder, {"duplicate-id", "unsigned-content"})


# -- 8. signed by a certificate of another VKN --------------------------------------------------

def test_signer_not_taxpayer(month):
    for p in month:
        oracle_accepts(xml_of(p))
    well_formed(A.signer_not_taxpayer(month))
    # every signature is valid; the certificate names another VKN in its subject serialNumber, which
    # signxml cannot check (it can only compare a subject common name, which is the same here)
    for p in month:
        oracle_accepts(xml_of(p))
    assert_caught(month.folder, {"signer-mismatch"})


# -- 9. XAdES signing certificate and signing time ----------------------------------------------

@pytest.mark.parametrize("kind", ["Y", "YB"])
def test_signing_certificate_digest_wrong(month, kind):
    path = month.find(kind)
    oracle_accepts(path.read_bytes())
    well_formed(A.signing_certificate_mismatch(month, kind))
    oracle_rejects(path.read_bytes())  # XAdES CertDigest
    assert_caught(month.folder, {"signing-certificate-mismatch"})


@pytest.mark.parametrize("mode", ["expired", "not-yet-valid"])
def test_signing_time_outside_certificate_validity(month, mode):
    path = month.find("Y")
    oracle_accepts(path.read_bytes())
    well_formed(A.signing_time_outside_validity(month, mode=mode))
    oracle_rejects(path.read_bytes())  # certificate not valid at the xades:SigningTime
    assert_caught(month.folder, {"signing-time-invalid"})


# -- 10. nested decoys --------------------------------------------------------------------------

@pytest.mark.parametrize("where,decoy", [("xbrl", "empty"), ("xbrl-start", "empty"), ("entry", "empty"),
                                         ("xbrl", "copy"), ("entry", "copy")])
def test_nested_decoy(month, where, decoy):
    path = month.find("Y")
    oracle_accepts(path.read_bytes())
    well_formed(A.nested_decoy(month, where=where, decoy=decoy))
    oracle_rejects(path.read_bytes())
    assert_caught(month.folder, UNSIGNED)


# -- 11. a late DOCTYPE in one firm's file does not stop the run ---------------------------------

@pytest.mark.parametrize("filler", ["whitespace", "comments"])
def test_doctype_late_is_a_problem_of_that_month_only(tmp_path, filler):
    bad = write_month(tmp_path / "firma-a", VKN, PERIOD, entries=ENTRIES)
    good = write_month(tmp_path / "firma-b", OTHER_VKN, PERIOD, entries=ENTRIES)
    A.doctype_late(bad, filler=filler)
    data = bad.find("Y").read_bytes()
    assert data.index(b"<!DOCTYPE") > 65536
    etree.fromstring(data, etree.XMLParser(resolve_entities=False, load_dtd=False))  # well-formed
    rc, report, stderr = verify(bad.folder, good.folder)
    assert rc == 1
    s = the_set(report)
    assert s["valid"] is False
    assert codes(s["problems"]) & {"unsafe-xml", "unreadable", "malformed-xml"}, s["problems"]
    other = the_set(report, OTHER_VKN)
    assert other["valid"] is True and other["problems"] == [], other


# -- 12. zip bomb as GİB's berat ----------------------------------------------------------------

_MEASURED = """
import json, resource, subprocess, sys, time
start = time.monotonic()
try:
    res = subprocess.run(sys.argv[2:], capture_output=True, text=True, encoding="utf-8", timeout=float(sys.argv[1]))
    out = {"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr}
except subprocess.TimeoutExpired:
    out = {"rc": None, "stdout": "", "stderr": "timeout"}
out["seconds"] = time.monotonic() - start
out["max_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(out))
"""


@pytest.mark.parametrize("declared_size", [None, 20_000], ids=["2GiB", "2GiB-header-says-20000"])
def test_gib_zip_bomb(tmp_path, declared_size):
    pytest.importorskip("resource", reason="peak memory is measured with resource (POSIX)")
    month = write_month(tmp_path / "firma-a", VKN, PERIOD, entries=ENTRIES, gib_zip=True)
    good = write_month(tmp_path / "firma-b", OTHER_VKN, PERIOD, entries=ENTRIES, gib_zip=True)
    (path,) = A.gib_zip_bomb(month, declared_size=declared_size)
    assert path.stat().st_size < 8 << 20
    with zipfile.ZipFile(path) as zf:
        (info,) = zf.infolist()
        assert info.filename == path.with_suffix(".xml").name
        assert info.file_size == (declared_size or 2 << 30)
    # the CLI runs under a small wrapper so that its own peak memory is measured
    res = subprocess.run([sys.executable, "-c", _MEASURED, "60", sys.executable, "-m", "edefter_helper",
                          "verify", str(month.folder), str(good.folder), "--json"],
                         capture_output=True, text=True, timeout=90,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    out = json.loads(res.stdout)
    assert out["rc"] is not None, f"verify did not finish in 60 s ({out['seconds']:.0f} s)"
    assert "Traceback" not in out["stderr"], out["stderr"]
    assert out["max_rss_kib"] < 512 * 1024, f"peak memory {out['max_rss_kib'] // 1024} MiB"
    try:
        report = json.loads(out["stdout"])
    except json.JSONDecodeError:
        pytest.fail(f"verify --json did not print JSON (exit {out['rc']}): {out['stderr']!r}")
    s = the_set(report)
    assert s["valid"] is False and out["rc"] == 1
    expected = {"bad-zip"} if declared_size is None else {"bad-zip", "unreadable"}
    assert codes(s["problems"]) & expected, s["problems"]
    other = the_set(report, OTHER_VKN)
    assert other["valid"] is True and other["problems"] == [], other


# -- 13. non-canonical but genuinely signed: stays valid; one edit: invalid ----------------------

@pytest.mark.parametrize("signing_certificate", ["v1", "v2"])
@pytest.mark.parametrize("bom", [False, True], ids=["crlf", "crlf-bom"])
def test_independent_non_canonical_ledger_stays_valid(month, bom, signing_certificate):
    """signxml re-signs the ledger as another producer would write it. "v1": XAdES 1.3.2
    SigningCertificate (the e-Defter form); "v2": signxml's default SigningCertificateV2."""
    pytest.importorskip("signxml", reason="signxml (dev extra) is the independent signer")
    well_formed(A.independent_resign(month, crlf=True, bom=bom, signing_certificate=signing_certificate))
    data = month.find("Y").read_bytes()
    assert b"\r\n" in data and b"/>" in data  # CRLF, self-closing tags
    oracle_accepts(data)
    rc, report, _ = verify(month.folder)
    s = the_set(report)
    assert s["valid"] is True and s["problems"] == [], s
    assert rc == 0

    well_formed(A.edit_amount(month))
    oracle_rejects(month.find("Y").read_bytes())
    assert_caught(month.folder, {"signature-invalid"})
