"""The lexical canonicaliser (engine/c14n.LexicalC14N) and the reader's path built on it
(rawdigest.LexicalDigest, reader._parse_lexical): for any well-formed input they give exactly what
libxml2's Canonical XML gives, or no answer (and the reader then takes the exact path). Never a
third thing.

The oracle is lxml/libxml2's C14N of the whole document, computed here independently of the engine.
"""

from __future__ import annotations

import random
import re

import pytest
from lxml import etree

from edefter_helper.engine import reader
from edefter_helper.engine.c14n import LexicalC14N
from edefter_helper.engine.names import parse_name
from edefter_helper.engine.rawdigest import LexicalDigest
from edefter_helper.samples import write_month
from edefter_helper.samples.keys import taxpayer_signer
from edefter_helper.samples.producers import write_month_as
from edefter_helper.samples.xmlsig import b64sha256, signature

# prefix order is not namespace-URI order: a:k sorts after b:k (urn:z > urn:b)
ROOT = b'<r:root xmlns:r="urn:r" xmlns:b="urn:b" xmlns:a="urn:z" xmlns:g="urn:g" xmlns="urn:d">'
PREFIXES = {b"r": b"urn:r", b"b": b"urn:b", b"a": b"urn:z", b"g": b"urn:g"}
END = b"</r:root>"
PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False}


class NoC14N(Exception):
    """libxml2 parses the document but refuses to canonicalise it (a relative namespace URI)."""


def oracle(body: bytes) -> bytes | None:
    """libxml2's C14N of what `body` renders inside the root; None when the document is not
    well-formed (namespaces included), as lxml parses it."""
    try:
        root = etree.fromstring(ROOT + body + END, etree.XMLParser(**PARSER))
    except etree.XMLSyntaxError:
        return None
    try:
        whole = etree.tostring(root, method="c14n", with_comments=False)
    except etree.C14NError as exc:
        raise NoC14N from exc
    start = etree.tostring(etree.fromstring(ROOT + END), method="c14n")[: -len(END)]
    assert whole.startswith(start) and whole.endswith(END)
    return whole[len(start): -len(END)]


def lexical(body: bytes) -> bytes | None:
    return LexicalC14N(PREFIXES).canonical(body)


IN_L = [
    b"",
    b"text only \xc5\x9f\xc4\x9f\xc3\xbc 'apostrophe' \"quotes\"",
    b"<g:e>1</g:e>",
    b'<g:e contextRef="c">1</g:e>',
    b'<g:e unitRef="try" decimals="INF" contextRef="c">12.50</g:e>',  # reversed: sorted
    b'<g:e b:k="1" a:k="2" k="3" g:k="4"/>',  # unprefixed first, then by URI: b, g, z(a)
    b'<g:e z="1"\ty="2"\n  x="3"   >t</g:e>',  # whitespace in the tag
    b"<g:e/><g:f />\n<g:h k=\"v\" />",
    b"<e><f>nested</f><f/></e>",  # the default namespace, unprefixed names
    b"a &amp; b &lt; c &gt; d &#xD; e",
    b'<g:e k="&amp;&lt;&quot;&#x9;&#xA;&#xD;" j="it\'s &gt"/>'.replace(b"&gt", b"ok"),
    b"<g:e>line 1\r\nline 2\rline 3\n</g:e>\r\n<g:f\r\n k=\"1\"/>",
    b"<g:entry>\n<g:a c=\"x\" b=\"y\">1</g:a>\n</g:entry>\n<g:entry>\n<g:a b=\"y\" c=\"x\"/>\n</g:entry>",
]

NOT_IN_L = [
    b"<!-- a comment --><g:e/>",
    b"<?pi data?><g:e/>",
    b"<g:e><![CDATA[<x> & y]]></g:e>",
    b"<g:e>&quot;</g:e>",
    b"<g:e>&apos;</g:e>",
    b"<g:e>&#65;</g:e>",
    b"<g:e>a > b</g:e>",
    b'<g:e k="a > b"/>',
    b"<g:e k='single'/>",
    b'<g:e k = "spaced"/>',
    b'<g:e k="tab\there"/>',
    b'<g:e k="nl\nhere"/>',
    b'<g:e k="&gt;"/>',
    b'<g:e xmlns:g="urn:other"><g:f/></g:e>',  # a namespace rebound inside
    b'<g:e xmlns="">undeclared default</g:e>',
    b'<g:e xmlns:n="urn:n"><n:f/></g:e>',
    b'<g:e xml:lang="tr">t</g:e>',
    b"<g:e\xc3\xa7>non-ASCII name</g:e\xc3\xa7>",
    b"<g:e>&#xd;</g:e>",
]


@pytest.mark.parametrize("body", IN_L, ids=range(len(IN_L)))
def test_in_the_lexical_form_it_is_libxml2s_c14n(body):
    expected = oracle(body)
    assert expected is not None
    assert lexical(body) == expected


@pytest.mark.parametrize("body", NOT_IN_L, ids=range(len(NOT_IN_L)))
def test_outside_the_lexical_form_no_answer(body):
    assert oracle(body) is not None  # well-formed: the exact path has an answer, this one does not
    assert lexical(body) is None


def test_undeclared_prefixes_and_duplicates_are_refused():
    # not namespace-well-formed: the tree-less check does not see these, so the form must not admit them
    for body in (b"<q:e/>", b'<g:e q:k="1"/>', b'<g:e b:k="1" b:k="2"/>', b'<g:e k="1" k="2"/>'):
        assert oracle(body) is None
        assert lexical(body) is None


# -- random documents: exact or no answer ------------------------------------------------------

_NAMES = [b"e", b"g:item", b"a:x", b"b:y", b"r:z", b"g:entryHeader", b"q:bad"]
_ATTRS = [b"k", b"id", b"z", b"a:k", b"b:k", b"g:k", b"xml:lang", b"xmlns", b"xmlns:n", b"q:k"]
_VALUE = [b"v", b"1", b" ", b"&amp;", b"&lt;", b"&quot;", b"&#x9;", b"&#xA;", b"&#xD;", "ş".encode(),
          b"'", b">", b"&gt;", b"\t", b"\n", b"&apos;", b"\r\n"]
_TEXT = [b"t", b" ", b"\n", b"\r\n", b"\r", b"&amp;", b"&lt;", b"&gt;", b"&#xD;", b"&quot;", b'"', b"'",
         b">", "ğ".encode(), b"&#65;", b"\t", b"]"]
_ODD = [b"<!-- c -->", b"<?p d?>", b"<![CDATA[ x<y ]]>"]


def _random_body(rng: random.Random, depth: int = 0, odd: float = 0.3) -> bytes:
    out = []
    for _ in range(rng.randint(0, 4)):
        r = rng.random()
        if r < 0.35:
            out.append(b"".join(rng.choice(_TEXT) for _ in range(rng.randint(1, 5))))
        elif r < 0.35 + 0.05 * odd:
            out.append(rng.choice(_ODD))
        else:
            name = rng.choice(_NAMES[:-1] if rng.random() > odd / 3 else _NAMES)
            attrs = []
            for _ in range(rng.randint(0, 4)):
                attr = rng.choice(_ATTRS[:6] if rng.random() > odd else _ATTRS)
                value = b"".join(rng.choice(_VALUE[:10] if rng.random() > odd else _VALUE)
                                 for _ in range(rng.randint(0, 3)))
                sep = rng.choice([b" ", b" ", b" ", b"  ", b"\t", b"\n", b"\r\n"])
                quote = b"'" if rng.random() < odd / 5 else b'"'
                if quote == b"'":
                    value = value.replace(b"'", b"")
                else:
                    value = value.replace(b'"', b"")
                attrs.append(sep + attr + b"=" + quote + value + quote)
            head = b"<" + name + b"".join(attrs) + rng.choice([b"", b"", b" ", b"\n"])
            if depth < 3 and rng.random() < 0.6:
                out.append(head + b">" + _random_body(rng, depth + 1, odd) + b"</" + name + b">")
            else:
                out.append(head + b"/>")
    return b"".join(out)


def test_random_documents_get_the_exact_answer_or_none():
    rng = random.Random(7)
    answered = refused = 0
    for i in range(4000):
        body = _random_body(rng, odd=0.0 if i % 2 else 0.4)
        try:
            expected = oracle(body)
        except NoC14N:
            assert lexical(body) is None  # the standard computation fails: so must this one
            refused += 1
            continue
        if expected is None:
            continue  # not well-formed: the reader never uses an answer for such a file
        got = lexical(body)
        if got is None:
            refused += 1
        else:
            answered += 1
            assert got == expected, body
    assert answered > 1000 and refused > 100, (answered, refused)


def test_runs_cut_after_any_tag_give_the_same_bytes():
    """The reader canonicalises a ledger in runs cut right after a '>'; cuts change nothing."""
    rng = random.Random(11)
    checked = 0
    for _ in range(800):
        body = _random_body(rng, odd=0.0)
        expected = oracle(body)
        if expected is None or lexical(body) is None:
            continue
        cuts = sorted(rng.sample([m.end() for m in re.finditer(rb">", body)], k=min(3, body.count(b">"))))
        lex = LexicalC14N(PREFIXES)
        pieces, at = [], 0
        for cut in cuts + [len(body)]:
            pieces.append(lex.canonical(body[at:cut]))
            at = cut
        assert None not in pieces and b"".join(pieces) == expected
        checked += 1
    assert checked > 250


def test_a_document_whose_tags_all_differ_is_canonicalised_in_bounded_memory():
    """A ledger repeats ~150 tags, and each is rendered once; one whose tags all differ (an attribute
    value that counts up) must neither grow the canonicaliser with its size (a 44 MB one held 266 MB)
    nor get another answer once the remembered tags are full."""
    import tracemalloc

    lex = LexicalC14N(PREFIXES)
    runs = [b"".join(b'<a:x b:n="%d" a:k="%d">t</a:x><g:y b:n="%d"/>' % (i, i % 7, i)
                     for i in range(r * 1000, (r + 1) * 1000)) for r in range(60)]
    tracemalloc.start()
    try:
        answers = [lex.canonical(run) for run in runs]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 << 20, peak  # 120 000 distinct tags: ~25 MB if every one were remembered
    for i in (0, 5, 59):  # before and after the remembered tags are full
        assert answers[i] == oracle(runs[i])


# -- the reader's lexical path, with a small window so that ledgers are read in many runs ------

@pytest.fixture
def small_window(monkeypatch):
    monkeypatch.setattr(LexicalDigest, "WINDOW", 16 << 10)
    monkeypatch.setattr(LexicalDigest, "PART", 8 << 10)


@pytest.fixture
def spy(monkeypatch):
    """Which way each file was read: True (lexical), False (it fell back to the exact path)."""
    taken: list[bool] = []
    real = reader._parse_lexical
    monkeypatch.setattr(reader, "_parse_lexical", lambda *a: taken.append(real(*a)) or taken[-1])
    return taken


def exact_facts(path, monkeypatch) -> dict:
    with monkeypatch.context() as mp:
        mp.setattr(reader, "_parse_lexical", lambda *a: False)
        return reader.read_full(path, parse_name(path.name))


@pytest.mark.parametrize("shape", ["canonical", "crlf", "windows"])
def test_ledgers_of_every_shape_take_the_lexical_path_and_agree_with_the_exact_one(
        tmp_path, shape, small_window, spy, monkeypatch):
    month = write_month_as(tmp_path / shape, shape, "4810525635", "2024-01", entries=60)
    for path in month:
        facts = reader.read_full(path, parse_name(path.name))
        assert spy[-1] is True, path.name
        assert facts.get("signature_ok") is True and facts["problems"] == [], facts["problems"]
        assert facts == exact_facts(path, monkeypatch)


@pytest.mark.parametrize("shape", ["canonical", "crlf", "windows"])
def test_the_outline_leaves_every_entry_out_whatever_the_shape(tmp_path, shape, small_window, monkeypatch):
    """The outline is what is parsed into a tree: the entries must not be in it (a ledger part's
    entries are ~200 MB; over OUTLINE_LIMIT the file would be read the slow exact way)."""
    outlines = []
    real = LexicalDigest.outline_document
    monkeypatch.setattr(LexicalDigest, "outline_document", lambda self: outlines.append(real(self)) or outlines[-1])
    month = write_month_as(tmp_path / shape, shape, "4810525635", "2024-01", entries=60)
    path = month.find("Y")
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is True
    assert len(outlines) == 1 and outlines[0] is not None
    assert b"entryHeader" not in outlines[0] and b"gl-cor:amount" not in outlines[0]
    assert b"documentInfo" in outlines[0] and b"Signature" in outlines[0]


def _ledger(tmp_path, entries: int = 60):
    month = write_month(tmp_path / "ay", "4810525635", "2024-01", entries=entries)
    return month, month.find("Y")


def _resigned(month, path, edit, *, raw: bool = False) -> bytes:
    """The ledger with `edit` applied to its bytes before the signature, signed again with the
    taxpayer's key over the standard digest of the edited document: C14N 1.0 without comments (what
    a URI="" reference digests), computed by lxml here. raw=True: over the bytes as written instead,
    as a faulty producer might sign (a standard verifier rejects that signature)."""
    data = path.read_bytes()
    sig_at = data.index(b'<ds:Signature Id="', data.rindex(b"</xbrli:xbrl>"))
    end_at = data.rindex(b"</edefter:")
    body, sig, end = edit(data[:sig_at]), data[sig_at:end_at], data[end_at:]
    if raw:
        digest = b64sha256(body[body.index(b"<edefter:"):] + end)
    else:
        unsigned = etree.fromstring(body + end, etree.XMLParser(**PARSER))
        digest = b64sha256(etree.tostring(unsigned, method="c14n", with_comments=False))
    sig_id = re.match(rb'<ds:Signature Id="([^"]+)"', sig).group(1).decode()
    signing_time = re.search(rb"<xades:SigningTime>([^<]+)<", sig).group(1).decode()
    xml, _ = signature(sig_id=sig_id, signer=taxpayer_signer(month.spec.vkn, month.spec.company),
                       signing_time=signing_time, target_uri="", target_digest_b64=digest)
    return body + xml.encode() + end


def _in_middle_entry(body: bytes, make) -> bytes:
    """Apply `make(entry_bytes) -> bytes` to the entry in the middle of the ledger."""
    starts = [m.start() for m in re.finditer(rb"<gl-cor:entryHeader>", body)]
    s = starts[len(starts) // 2]
    e = body.index(b"</gl-cor:entryHeader>", s) + len(b"</gl-cor:entryHeader>")
    return body[:s] + make(body[s:e]) + body[e:]


GL_COR = b"http://www.xbrl.org/int/gl/cor/2006-10-25"

EDITS = {
    # (edit of the middle entry, the lexical path answers?)
    "attributes-reordered": (lambda e: re.sub(rb'contextRef="([^"]*)"', rb'zz="1" contextRef="\1" aa="2"', e), True),
    "self-closing": (lambda e: e.replace(b"</gl-cor:entryHeader>", b"<gl-cor:memo/></gl-cor:entryHeader>"), True),
    "crlf-in-entry": (lambda e: e.replace(b"><", b">\r\n<"), True),
    "own-xmlns-rebinds-prefix": (lambda e: e.replace(b"<gl-cor:entryHeader>",
                                                     b'<gl-cor:entryHeader xmlns:gl-bus="urn:other">', 1), False),
    "own-xmlns-same-uri": (lambda e: e.replace(b"<gl-cor:entryHeader>",
                                               b'<gl-cor:entryHeader xmlns:gl-cor="' + GL_COR + b'">', 1), False),
    "default-namespace-declared-and-undeclared": (
        lambda e: e.replace(b"</gl-cor:entryHeader>",
                            b'<note xmlns="urn:n"><inner xmlns="">x</inner></note></gl-cor:entryHeader>'), False),
    "comment-between-entries": (lambda e: e + b"<!-- yorum -->", False),
    "pi-between-entries": (lambda e: e + b"<?uretici veri?>", False),
    "cdata-in-entry": (lambda e: e.replace(b"</gl-cor:entryHeader>",
                                          b"<gl-cor:memo><![CDATA[a<b]]></gl-cor:memo></gl-cor:entryHeader>"), False),
    # the outline would lose the inner entry's end tag instead of the outer's: not well-formed, so exact
    "nested-entry": (lambda e: e[: -len(b"</gl-cor:entryHeader>")] + e + b"</gl-cor:entryHeader>", False),
    "entry-with-attribute": (lambda e: e.replace(b"<gl-cor:entryHeader>", b'<gl-cor:entryHeader n="1">', 1), True),
    # texts spelling the entry's tags: the outline looks for tags only (odd pieces), never a text
    "texts-naming-the-entry-tags": (lambda e: e.replace(
        b"</gl-cor:entryHeader>", b"<gl-cor:memo>/gl-cor:entryHeader</gl-cor:memo><gl-cor:memo>gl-cor:entryHeader"
                                  b"</gl-cor:memo></gl-cor:entryHeader>gl-cor:entryHeader"), True),
    "second-prefix-for-gl-cor": (
        lambda e: e.replace(b"gl-cor:", b"g2:").replace(b"<g2:entryHeader>",
                                                       b'<g2:entryHeader xmlns:g2="' + GL_COR + b'">', 1), False),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_and_resigned_ledgers_verify_exactly(tmp_path, edit, small_window, spy, monkeypatch):
    """A genuinely signed ledger whose middle entry is written some other way verifies valid, with
    the facts the exact path finds, whichever path reads it; one changed byte there is caught."""
    month, path = _ledger(tmp_path)
    make, answers = EDITS[edit]
    path.write_bytes(_resigned(month, path, lambda body: _in_middle_entry(body, make)))
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is answers
    assert facts.get("signature_ok") is True and facts["problems"] == [], facts["problems"]
    assert facts == exact_facts(path, monkeypatch)

    data = path.read_bytes()
    at = data.index(b"</gl-cor:amount>", len(data) // 2) - 1  # a digit of an amount in the middle
    path.write_bytes(data[:at] + (b"7" if data[at:at + 1] != b"7" else b"6") + data[at + 1:])
    facts = reader.read_full(path, parse_name(path.name))
    assert facts.get("signature_ok") is False
    assert [p["code"] for p in facts["problems"]] == ["signature-invalid"]


@pytest.mark.parametrize("edit", ["comment-between-entries", "attributes-reordered", "self-closing"])
def test_a_signature_over_the_raw_bytes_of_a_non_canonical_ledger_is_invalid(tmp_path, edit, small_window, spy,
                                                                           monkeypatch):
    """A producer that hashes what it wrote instead of its canonical form makes a signature every
    standard verifier rejects; so must this one, on either path (the raw bytes of such a ledger are
    never trusted to be the canonical ones: before issue 7's fix the exact path's raw-bytes
    shortcut accepted the comment case)."""
    month, path = _ledger(tmp_path)
    make, answers = EDITS[edit]
    path.write_bytes(_resigned(month, path, lambda body: _in_middle_entry(body, make), raw=True))
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is answers
    assert facts.get("signature_ok") is False
    assert [p["code"] for p in facts["problems"]] == ["signature-invalid"]
    assert exact_facts(path, monkeypatch) == facts


def test_a_signature_inside_an_entry_is_counted_as_the_exact_path_counts_it(tmp_path, small_window, spy,
                                                                            monkeypatch):
    month, path = _ledger(tmp_path)
    decoy = b"<ds:Signature><ds:SignatureValue>c2FodGU=</ds:SignatureValue></ds:Signature>"
    path.write_bytes(_resigned(month, path, lambda body: _in_middle_entry(
        body, lambda e: e.replace(b"</gl-cor:entryHeader>", decoy + b"</gl-cor:entryHeader>"))))
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is False
    assert "unsigned-content" in {p["code"] for p in facts["problems"]}
    assert facts == exact_facts(path, monkeypatch)


DECOYS = {
    "prefixed": b"<ds:Signature><ds:SignatureValue>c2FodGU=</ds:SignatureValue></ds:Signature>",
    "with-attribute": b'<ds:Signature Id="x"></ds:Signature>',
    "empty-element": b"<ds:Signature/>",
}


@pytest.mark.parametrize("decoy", list(DECOYS))
def test_signatures_outside_and_then_inside_an_entry_are_counted(tmp_path, decoy, small_window, spy,
                                                                  monkeypatch):
    """Decoy signatures, one among the outline's elements and one inside an entry further on (another
    run, whose tags the lexical path has all seen before): both counted, as on the exact path."""
    month, path = _ledger(tmp_path, entries=120)
    tag = DECOYS[decoy]

    def edit(body: bytes) -> bytes:
        first = body.index(b"<gl-cor:entryHeader>")
        body = body[:first] + tag + body[first:]
        return _in_middle_entry(body, lambda e: e.replace(b"</gl-cor:entryHeader>", tag + b"</gl-cor:entryHeader>"))

    path.write_bytes(_resigned(month, path, edit))
    facts = reader.read_full(path, parse_name(path.name))
    assert "unsigned-content" in {p["code"] for p in facts["problems"]}
    assert facts == exact_facts(path, monkeypatch)
    assert spy[-1] is False


def test_the_word_signature_in_an_entrys_text_is_read_the_lexical_way(tmp_path, small_window, spy, monkeypatch):
    """Only an element can be a signature: text that says so leaves the entry out of the outline."""
    month, path = _ledger(tmp_path)
    path.write_bytes(_resigned(month, path, lambda body: _in_middle_entry(
        body, lambda e: e.replace(b"</gl-cor:entryHeader>",
                                  b"<gl-cor:memo>Signature imza</gl-cor:memo></gl-cor:entryHeader>"))))
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is True
    assert facts.get("signature_ok") is True and facts["problems"] == [], facts["problems"]
    assert facts == exact_facts(path, monkeypatch)


def test_tampered_entry_inside_a_run_fails_and_so_does_a_cut_file(tmp_path, small_window, spy):
    _, path = _ledger(tmp_path)
    data = path.read_bytes()
    at = data.index(b"</gl-cor:amount>", len(data) // 3) - 1
    path.write_bytes(data[:at] + (b"7" if data[at:at + 1] != b"7" else b"6") + data[at + 1:])
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is True  # read the lexical way; the miss is then recomputed the exact way
    assert facts.get("signature_ok") is False
    assert [p["code"] for p in facts["problems"]] == ["signature-invalid"]

    path.write_bytes(data[: len(data) // 2])
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is False and facts.get("malformed") is True
    assert [p["code"] for p in facts["problems"]][:1] == ["malformed-xml"]


def test_an_undeclared_prefix_inside_an_entry_is_malformed_as_on_the_exact_path(tmp_path, small_window, spy,
                                                                                monkeypatch):
    # the tree-less check alone would accept it (libxml2 reports namespace errors only as warnings)
    _, path = _ledger(tmp_path)
    data = path.read_bytes()
    at = data.index(b"<gl-cor:entryHeader>", len(data) // 2)
    path.write_bytes(data[:at] + b"<q:x>1</q:x>" + data[at:])
    facts = reader.read_full(path, parse_name(path.name))
    assert spy[-1] is False
    assert facts.get("malformed") is True
    assert facts == exact_facts(path, monkeypatch)


# -- verify's readers: the big files on every core, this process included ---------------------

def test_readers_per_number_of_big_files():
    from edefter_helper.engine.verify import _readers

    mib = 1 << 20
    assert _readers([], 2) == 0
    assert _readers([200 * mib], 2) == 1
    assert _readers([200 * mib] * 2, 2) == 2  # this process and one worker
    assert _readers([200 * mib] * 3, 2) == 3  # one more than the cores: 1.5 files' time, not 2
    assert _readers([200 * mib] * 4, 2) == 2
    assert _readers([200 * mib] * 5, 2) == 3  # 2.5 files' time, not 3
    assert _readers([200 * mib] * 5, 1) == 1
    assert _readers([200 * mib] * 5, 8) == 5


@pytest.fixture
def all_big(monkeypatch):
    from edefter_helper.engine import verify

    monkeypatch.setattr(verify, "PARALLEL_BYTES", 1)  # every file of a sample month is a "big" one
    return verify


def test_big_files_read_by_workers_and_this_process_give_the_sequential_verdicts(tmp_path, all_big, monkeypatch):
    month = write_month_as(tmp_path / "ay", "windows", "4810525635", "2024-01", parts=2, entries=20)
    from edefter_helper.engine.verify import verify_roots

    shared = verify_roots([month.folder]).sets
    monkeypatch.setattr(all_big.os, "cpu_count", lambda: 1)
    alone = verify_roots([month.folder]).sets
    assert [(s.valid, [p.code for p in s.problems]) for s in shared] == [(True, [])]
    assert [(s.valid, [p.code for p in s.problems]) for s in alone] == [(True, [])]
    assert [f.sha256 for s in shared for f in s.files] == [f.sha256 for s in alone for f in s.files]


def test_a_lost_worker_is_that_files_problem_and_verify_still_ends(tmp_path, all_big, monkeypatch):
    import os

    month = write_month(tmp_path / "ay", "4810525635", "2024-01", entries=5)
    parent = os.getpid()
    real = all_big._worker_read

    def dies_in_a_worker(args):
        if os.getpid() != parent:
            os._exit(3)
        return real(args)

    monkeypatch.setattr(all_big, "_worker_read", dies_in_a_worker)
    monkeypatch.setattr(all_big.os, "cpu_count", lambda: 2)
    sets = all_big.verify_roots([month.folder]).sets
    assert len(sets) == 1 and sets[0].valid is False
    assert "unreadable" in {p.code for p in sets[0].problems}  # P.read_failed
