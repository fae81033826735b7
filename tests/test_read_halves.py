"""read_full as two halves (reader.read_signed + reader.check_bytes, joined by reader.join_halves):
a restore reads a big ledger's halves in two processes at once. The joined facts must be read_full's
on every input — the attacks, random damage, files that are in the lexical form but not well-formed,
and halves that saw different bytes."""

from __future__ import annotations

import hashlib
import random
import zlib
from pathlib import Path

import pytest

from edefter_helper.engine import reader
from edefter_helper.engine.names import parse_name
from edefter_helper.samples import attacks as A
from edefter_helper.samples import write_month
from edefter_helper.samples.producers import write_month_as
from tests.test_lexical_c14n import _resigned

VKN = "4810525635"
PERIOD = "2024-01"


def joined(path: Path, written: dict | None = None) -> dict:
    name = parse_name(path.name)
    return reader.join_halves(path, name, reader.read_signed(path, name),
                              reader.check_bytes(path, sha256=written is None), written)


def whole(path: Path) -> dict:
    return reader.read_full(path, parse_name(path.name))


def as_written(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "crc32": zlib.crc32(data)}


def assert_same(path: Path) -> dict:
    expected = whole(path)
    assert joined(path) == expected, path.name
    assert joined(path, as_written(path)) == expected, path.name
    return expected


@pytest.mark.parametrize("shape", ["canonical", "crlf", "windows"])
def test_every_file_of_a_month_of_every_shape(tmp_path, shape):
    month = write_month_as(tmp_path / shape, shape, VKN, PERIOD, entries=40)
    for path in month:
        facts = assert_same(path)
        assert facts["problems"] == [], (path.name, facts["problems"])
        # every ledger of a producer's month is read in halves (nothing falls back to a whole read)
        assert reader.read_signed(path, parse_name(path.name)) is not None, path.name


ATTACKS = [
    ("raw_digest_trailer", {}), ("second_signature", {}), ("content_before_signature", {}),
    ("nested_decoy", {}), ("unsigned_facts", {}), ("size_hidden_by_unsigned_fact", {}), ("duplicate_ids", {}),
    ("signing_certificate_mismatch", {}), ("doctype_late", {}), ("independent_resign", {}),
    ("edit_amount", {}), ("extra_entries", {}),
]


@pytest.mark.parametrize("attack,kwargs", ATTACKS, ids=[a for a, _ in ATTACKS])
def test_the_attacks_get_read_fulls_verdict(tmp_path, attack, kwargs):
    month = write_month(tmp_path / "ay", VKN, PERIOD, entries=20)
    if attack == "extra_entries":
        path = month.find("Y")
        path.write_bytes(A.extra_entries(month))
        changed = [path]
    else:
        changed = getattr(A, attack)(month, **kwargs)
    assert changed
    for path in month:
        assert_same(path)
    if attack != "independent_resign":  # a second signer's valid signature: the set's check says who signed
        assert any(whole(p)["problems"] for p in changed if p.exists()), attack


def _ledger(tmp_path) -> Path:
    return write_month(tmp_path / "ay", VKN, PERIOD, entries=30).find("Y")


@pytest.mark.parametrize("bad", [b"\x01", b"\xff", b"\x00", b"\xc3("])
def test_signed_text_that_is_not_xml_is_malformed_though_its_digest_holds(tmp_path, bad):
    """The attack the split must not open: bytes that the lexical digest takes and that are signed
    over exactly (so the signature holds) but that libxml2 refuses. read_signed alone calls the file
    signed; joined, it is read_full's malformed file."""
    month = write_month(tmp_path / "ay", VKN, PERIOD, entries=30)
    path = month.find("Y")

    def edit(body: bytes) -> bytes:
        at = body.index(b"</gl-cor:amount>", len(body) // 2)
        return body[:at] + bad + body[at:]

    path.write_bytes(_resigned(month, path, edit, raw=True))
    name = parse_name(path.name)
    alone = reader.read_signed(path, name)
    assert alone is not None and alone.get("signature_ok") is True, alone  # the half is fooled
    expected = whole(path)
    assert expected.get("malformed") is True, expected
    assert joined(path) == expected
    assert joined(path, as_written(path)) == expected


def test_seeded_random_damage_everywhere(tmp_path):
    path = _ledger(tmp_path)
    clean = path.read_bytes()
    rng = random.Random(20261202)
    verdicts = set()
    for _ in range(120):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            how = rng.randrange(4)
            if how == 0:
                data[at] = rng.randrange(256)
            elif how == 1:
                del data[at:at + rng.randint(1, 40)]
            elif how == 2:
                data[at:at] = bytes(rng.choice(b"<>&;/\"= \r\n\x00\x01\xc3\xa7abc") for _ in range(rng.randint(1, 5)))
            else:
                del data[at:]
        path.write_bytes(bytes(data))
        expected = whole(path)
        verdicts.add((bool(expected.get("malformed")), expected.get("signature_ok")))
        assert joined(path) == expected
        assert joined(path, as_written(path)) == expected
    assert len(verdicts) >= 2, verdicts  # the damage reached more than one kind of verdict


def test_halves_that_saw_other_bytes_are_not_joined(tmp_path):
    """A file changed between the two halves (or after it was written): the facts are read_full's of
    the bytes there now, never a mix of two files' halves."""
    path = _ledger(tmp_path)
    name = parse_name(path.name)
    clean = path.read_bytes()
    signed = reader.read_signed(path, name)
    assert signed is not None and signed.get("signature_ok") is True
    at = clean.index(b"</gl-cor:amount>", len(clean) // 2) - 1
    tampered = clean[:at] + (b"7" if clean[at:at + 1] != b"7" else b"6") + clean[at + 1:]
    path.write_bytes(tampered)  # same size: only the CRC-32 tells the halves apart
    checked = reader.check_bytes(path)
    facts = reader.join_halves(path, name, signed, checked)
    assert facts == whole(path) and facts.get("signature_ok") is False

    path.write_bytes(clean)
    written = as_written(path)
    written["crc32"] ^= 1  # what the writer says it wrote is not what the halves read
    facts = reader.join_halves(path, name, signed, reader.check_bytes(path, sha256=False), written)
    assert facts == whole(path) and facts["sha256"] == hashlib.sha256(clean).hexdigest()


def test_the_sha256_is_always_of_the_bytes_read(tmp_path):
    path = _ledger(tmp_path)
    facts = joined(path, as_written(path))
    assert facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "_crc32" not in facts


def test_a_zipped_berat_and_an_unreadable_file_are_read_whole(tmp_path):
    month = write_month(tmp_path / "ay", VKN, PERIOD, entries=5, gib_zip=True)
    zipped = next(p for p in month if p.suffix == ".zip")
    assert reader.read_signed(zipped, parse_name(zipped.name)) is None
    assert joined(zipped) == whole(zipped)
    gone = tmp_path / "ay" / "4810525635-202401-Y-000009.xml"
    assert reader.check_bytes(gone)["well_formed"] is False
    assert reader.join_halves(gone, parse_name(gone.name), None, reader.check_bytes(gone)) == whole(gone)


def test_a_workers_jobs_are_the_halves(tmp_path):
    path = _ledger(tmp_path)
    name = parse_name(path.name)
    where = str(path)
    assert reader.read_part(where, "whole") == whole(path)
    assert reader.read_part(where, "signed") == reader.read_signed(path, name)
    assert reader.read_part(where, "bytes+sha256") == reader.check_bytes(path)
    assert reader.read_part(where, "bytes") == dict(reader.check_bytes(path), sha256="")
