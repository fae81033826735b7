"""Months in the shapes other producer programs write (samples.producers) are validly signed, really
have their shape, and `edefter verify` finds them valid.

Each shaped document is checked three independent ways: lxml's own C14N of the document without its
ds:Signature against the URI="" reference's DigestValue, signxml's verification of the signature,
and the real `edefter verify --json`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import tracemalloc
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from edefter_helper.engine.names import parse_name
from edefter_helper.samples import make_spec, size_mib, write_big_month, write_month
from edefter_helper.samples.producers import (
    SHAPES, write_big_month_as, write_ledger_doc_as, write_month_as,
)

NS = {
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "gl-bus": "http://www.xbrl.org/int/gl/bus/2006-10-25",
}
VKN = "4810525635"
PERIOD = "2024-02"
SHAPED = [s for s in SHAPES if s != "canonical"]
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def months(tmp_path_factory) -> dict:
    """Per shape: a split month with a branch, a single-file month of a person (TCKN), a small big month."""
    root = tmp_path_factory.mktemp("producers")
    out = {}
    for shape in SHAPES:
        out[shape] = {
            "split": write_month_as(root / shape / "split", shape, VKN, PERIOD, parts=2, entries=14,
                                    branch="0003", seed=5),
            "person": write_month_as(root / shape / "person", shape, "12345678950", "2023-11", entries=6),
            "big": write_big_month_as(root / shape / "big", shape, VKN, PERIOD, parts=2, part_mb=0.4, seed=2),
        }
    return out


def _files(months: dict, shape: str) -> list[Path]:
    return [p for m in months[shape].values() for p in m]


def _enveloped_digest_matches(data: bytes) -> bool:
    ref = etree.fromstring(data).find("ds:Signature/ds:SignedInfo/ds:Reference[@URI='']", NS)
    assert [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature"]
    digest = base64.b64encode(hashlib.sha256(_unsigned_c14n(data)).digest()).decode()
    return digest == ref.findtext("ds:DigestValue", namespaces=NS)


def _unsigned_c14n(data: bytes) -> bytes:
    root = etree.fromstring(data)
    root.remove(root.find("ds:Signature", NS))
    return etree.tostring(root, method="c14n")


# -- the canonical shape is today's generator, byte for byte --------------------------------

def test_canonical_shape_is_the_sample_generator_byte_for_byte(tmp_path):
    pairs = [
        (write_month(tmp_path / "a", VKN, PERIOD, parts=2, entries=9, gib_zip=True),
         write_month_as(tmp_path / "b", "canonical", VKN, PERIOD, parts=2, entries=9, gib_zip=True)),
        (write_big_month(tmp_path / "c", VKN, PERIOD, parts=2, part_mb=0.3),
         write_big_month_as(tmp_path / "d", "canonical", VKN, PERIOD, parts=2, part_mb=0.3)),
    ]
    for ours, theirs in pairs:
        assert sorted(p.name for p in ours) == sorted(p.name for p in theirs)
        for p in theirs:
            assert (ours.folder / p.name).read_bytes() == p.read_bytes(), p.name


# -- (i) lxml's C14N, (ii) signxml ------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPED)
def test_lxml_c14n_without_the_signature_gives_the_signed_digest(months, shape):
    files = _files(months, shape)
    assert {parse_name(p.name).kind for p in files} == {"Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"}
    for path in files:
        assert _enveloped_digest_matches(path.read_bytes()), path


@pytest.mark.parametrize("shape", SHAPED)
def test_signxml_verifies_every_signature(months, shape):
    signxml = pytest.importorskip("signxml", reason="signxml (dev extra) is the independent verifier")
    for path in _files(months, shape):
        data = path.read_bytes()
        b64 = etree.fromstring(data).findtext("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate",
                                              namespaces=NS)
        cert = x509.load_der_x509_certificate(base64.b64decode(b64))
        results = signxml.XMLVerifier().verify(
            data, x509_cert=cert, expect_config=signxml.SignatureConfiguration(expect_references=2))
        assert len(results) == 2, path


# -- (iii) the real command -------------------------------------------------------------------

@pytest.mark.parametrize("which", ["split", "person", "big"])
@pytest.mark.parametrize("shape", SHAPED)
def test_edefter_verify_reports_the_month_valid(months, shape, which, edefter):
    folder = months[shape][which].folder
    proc = edefter("verify", folder, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sets = json.loads(proc.stdout)["sets"]
    assert len(sets) == 1, proc.stdout[-3000:]
    assert sets[0]["valid"] is True and sets[0]["complete"] is True, json.dumps(sets[0], ensure_ascii=False)[-3000:]


# -- (iv) the files really have the shape -----------------------------------------------------

def test_crlf_files_are_the_canonical_files_with_crlf(months):
    for which in ("split", "person", "big"):
        canonical, crlf = months["canonical"][which], months["crlf"][which]
        for path in crlf:
            data = path.read_bytes()
            assert not data.startswith(BOM)
            assert data.count(b"\n") == data.count(b"\r\n") > 0, path
            assert b"/>" not in data
            if parse_name(path.name).kind in ("Y", "K", "DR"):  # berats certify the size, which differs
                assert data.replace(b"\r\n", b"\n") == (canonical.folder / path.name).read_bytes(), path


def test_windows_files_have_bom_crlf_one_tag_per_line_reordered_attributes_and_empty_tags(months):
    for which, month in months["windows"].items():
        for path in month:
            data = path.read_bytes()
            kind = parse_name(path.name).kind
            assert data.startswith(BOM + b'<?xml version="1.0" encoding="UTF-8"?>\r\n'), path
            assert data.count(b"\n") == data.count(b"\r\n") and data.endswith(b"\r\n"), path
            start = data.index(b"<edefter:")
            prefixes = re.findall(rb' xmlns:([\w-]+)=', data[start:data.index(b">", start)])
            assert len(prefixes) == 10 and prefixes != sorted(prefixes), path
            body = data[:data.index(b"<ds:Signature ")]  # the signature stays on one line, as it was signed
            assert b"><" not in body, path  # one tag per line
            assert b"/>" in body, path  # <link:schemaRef .../>
            assert re.search(rb'<gl-cor:amount unitRef="try" decimals="INF" contextRef="\w+">', data), path
            assert not re.search(rb' contextRef="[^"]*" ', data), path  # contextRef after every other attribute
            assert re.search(rb'<ds:Reference URI="#[^"]+" Type="', data), path  # C14N has Type first
            assert re.search(rb'<ds:Transform Algorithm="[^"]+"/>', data), path
            if not kind.startswith("GIB-"):  # GİB's countersignature is inserted as GİB writes it
                assert not re.search(rb"<[^/>](?:[^>]*[^/>])?></", data), path  # no <x></x> left
            # parsing undoes the shape: the canonical month, plus newlines (a big month's journal
            # parts hold fewer entries in this shape, to stay near part_mb as written)
            if kind in ("Y", "K", "DR") and not (which == "big" and kind == "Y"):
                canonical = (months["canonical"][which].folder / path.name).read_bytes()
                assert _unsigned_c14n(data).replace(b"\n", b"") == _unsigned_c14n(canonical).replace(b"\n", b""), path


# -- berats stay consistent -------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_berats_certify_the_ledger_as_written(months, shape):
    checked = 0
    for month in months[shape].values():
        for path in month:
            name = parse_name(path.name)
            if name.kind not in ("YB", "KB", "GIB-YB", "GIB-KB"):
                continue
            ledger = month.find(name.kind.removeprefix("GIB-")[0], name.part)
            berat, led = etree.fromstring(path.read_bytes()), etree.fromstring(ledger.read_bytes())
            assert berat.findtext(".//gl-bus:measurableQuantity", namespaces=NS) == size_mib(ledger.stat().st_size)
            assert berat.findtext("ds:SignatureValue", namespaces=NS) == led.findtext(
                "ds:Signature/ds:SignatureValue", namespaces=NS)
            checked += 1
    assert checked == 4 * 2 + 4 + 4 * 2  # split (2 parts), person, big (2 parts)


def test_big_parts_land_near_the_asked_size_as_written(months):
    for shape in SHAPES:
        for path in months[shape]["big"]:
            if parse_name(path.name).kind == "Y":
                assert 0.38 < path.stat().st_size / 2**20 < 0.45, (shape, path.name, path.stat().st_size)


# -- streaming ----------------------------------------------------------------------------------

class _Null(io.RawIOBase):
    def writable(self):
        return True

    def write(self, b):
        return len(b)


@pytest.mark.parametrize("shape", SHAPED)
def test_a_ledger_is_written_in_constant_memory(shape):
    from edefter_helper.samples import content as c

    spec = make_spec(VKN, PERIOD)
    entry = "".join(c.journal_entry("journal_context", e, 1) for e in c.make_entries(random.Random(1), PERIOD, 40))

    def body(total):
        sent = 0
        while sent < total:
            sent += len(entry)
            yield entry

    peaks = []
    for total in (1 << 20, 6 << 20):
        tracemalloc.start()
        try:
            _, size = write_ledger_doc_as(_Null(), spec, "Y", 1, body(total), shape)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert size > total
    # the peak does not grow with the document (and stays well below it)
    assert peaks[1] < (3 << 20) and peaks[1] < 1.5 * peaks[0], peaks
