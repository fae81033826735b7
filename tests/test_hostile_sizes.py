"""Hostile sizes: a ledger built to make the per-file read hold memory in proportion to its size.
Such a file may be read the slow exact way or refused, never held whole (verification of a 1 GB
month stays under 150 MB)."""

from __future__ import annotations

import re
import tracemalloc

import pytest
from lxml import etree

from edefter_helper.engine import reader
from edefter_helper.engine.c14n import LexicalC14N
from edefter_helper.engine.names import parse_name
from edefter_helper.samples import write_month
from edefter_helper.samples.keys import taxpayer_signer
from edefter_helper.samples.xmlsig import b64sha256, signature

PREFIXES = {b"g": b"urn:g", b"b": b"urn:b"}
PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False}


def _oracle(body: bytes) -> bytes:
    """libxml2's C14N of `body` inside a root that declares PREFIXES."""
    root = b'<r xmlns:g="urn:g" xmlns:b="urn:b">'
    whole = etree.tostring(etree.fromstring(root + body + b"</r>", etree.XMLParser(**PARSER)), method="c14n")
    return whole[len(root): -len(b"</r>")]


def test_long_distinct_tags_are_not_all_remembered():
    """The canonicaliser remembers the tags it has rendered; a few thousand distinct tags of 50 KB
    each (a value that differs) must not be kept: by count alone that held ~a file's size."""
    pad = b"v" * (50 << 10)
    runs = [b"".join(b'<g:e b:n="%d%s" g:k="1">t</g:e>' % (i, pad) for i in range(r * 20, (r + 1) * 20))
            for r in range(40)]  # 40 MB in 800 distinct tags, the first ones canonical as written
    lex = LexicalC14N(PREFIXES)
    tracemalloc.start()
    try:
        answers = [len(lex.canonical(run) or b"") for run in runs]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # ~40 MB (the whole input) when every tag is remembered
    assert answers == [len(run) for run in runs]  # written canonically: copied as they are
    assert lex.canonical(runs[0]) == _oracle(runs[0]) and lex.canonical(runs[-1]) == _oracle(runs[-1])


@pytest.fixture
def taken(monkeypatch) -> list[bool]:
    """Which way each file was read: True (lexical), False (it fell back to the exact path)."""
    seen: list[bool] = []
    real = reader._parse_lexical
    monkeypatch.setattr(reader, "_parse_lexical", lambda *a: seen.append(real(*a)) or seen[-1])
    return seen


def _resigned_with(tmp_path, insert: bytes):
    """A ledger with `insert` at the end of its first entry, signed again over the standard digest."""
    month = write_month(tmp_path / "ay", "4810525635", "2024-01", entries=3)
    path = month.find("Y")
    data = path.read_bytes()
    sig_at = data.index(b'<ds:Signature Id="', data.rindex(b"</xbrli:xbrl>"))
    end_at = data.rindex(b"</edefter:")
    body, sig, end = data[:sig_at], data[sig_at:end_at], data[end_at:]
    at = body.index(b"</gl-cor:entryHeader>")
    body = body[:at] + insert + body[at:]
    unsigned = etree.fromstring(body + end, etree.XMLParser(**PARSER, huge_tree=True))  # signs any size
    digest = b64sha256(etree.tostring(unsigned, method="c14n"))
    sig_id = re.match(rb'<ds:Signature Id="([^"]+)"', sig).group(1).decode()
    signing_time = re.search(rb"<xades:SigningTime>([^<]+)<", sig).group(1).decode()
    xml, _ = signature(sig_id=sig_id, signer=taxpayer_signer(month.spec.vkn, month.spec.company),
                       signing_time=signing_time, target_uri="", target_digest_b64=digest)
    path.write_bytes(body + xml.encode() + end)
    return path


def test_a_ledger_of_long_distinct_tags_is_read_in_bounded_memory(tmp_path, taken):
    pad = b"x" * (100 << 10)
    insert = b"".join(b'<gl-cor:entryComment contextRef="%d%s">t</gl-cor:entryComment>' % (k, pad)
                      for k in range(300))  # 30 MB
    path = _resigned_with(tmp_path, insert)
    del insert
    tracemalloc.start()
    try:
        facts = reader.read_full(path, parse_name(path.name))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert taken == [True]  # the lexical path, as for any ledger in its form
    assert facts.get("signature_ok") is True and facts["problems"] == [], facts["problems"]
    assert peak < 20 << 20, peak  # 35 MB when every tag was remembered (30 MB of them)


def test_a_text_node_over_libxml2s_limit_is_malformed_on_both_paths(tmp_path, taken, monkeypatch):
    """libxml2 (huge_tree off) builds no text node over 10 MB: the exact path finds such a ledger
    malformed. The lexical path parses every byte without a tree, which does not see that limit, so
    it must hand the file to the exact path rather than verify it."""
    path = _resigned_with(tmp_path, b"<gl-cor:entryComment>" + b"a" * 10_500_000 + b"</gl-cor:entryComment>")
    facts = reader.read_full(path, parse_name(path.name))
    assert taken == [False]
    assert facts.get("malformed") is True and "signature_ok" not in facts, facts
    monkeypatch.setattr(reader, "_parse_lexical", lambda *a: False)
    assert reader.read_full(path, parse_name(path.name)) == facts
    assert reader.read_signed(path, parse_name(path.name)) is None  # the halves read it whole too


def test_a_text_node_just_under_the_limit_is_read_the_lexical_way(tmp_path, taken):
    path = _resigned_with(tmp_path, b"<gl-cor:entryComment>" + b"a" * 9_990_000 + b"</gl-cor:entryComment>")
    facts = reader.read_full(path, parse_name(path.name))
    assert taken == [True]
    assert facts.get("signature_ok") is True and facts["problems"] == [], facts["problems"]
