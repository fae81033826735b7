"""Streaming Canonical XML (engine/c14n.py) gives exactly what libxml2 gives for the whole document
minus the enveloped signature, whichever elements are cut into chunks."""

from __future__ import annotations

import io

import pytest
from lxml import etree

from edefter_helper.engine.c14n import StreamingC14N

DS = "http://www.w3.org/2000/09/xmldsig#"

DOCS = [
    b"""<?xml version="1.0" encoding="UTF-8"?>
<?producer before-root?>
<e:defter xmlns:e="urn:e" xmlns:x="urn:x" xmlns:g="urn:g" z="1" a="2"><x:xbrl>
 <x:context id="c"><x:identifier>123</x:identifier></x:context>
 <g:entries xmlns:h="urn:h">
   <g:info>i &amp; &lt; &gt; "q" &#x41;</g:info>
   <g:entry n="1" h:z="&quot;x" a='single'><g:line>1</g:line><g:e/></g:entry>
   <!-- a comment between entries -->
   <g:entry n="2" xmlns:g="urn:g"><g:line xmlns="urn:d"><k/></g:line></g:entry>
   <g:entry n="3"><g:line>3\r\n<![CDATA[<raw> & text]]></g:line></g:entry>
 tail text</g:entries>
</x:xbrl>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>abc</ds:SignatureValue></ds:Signature>
</e:defter>
<?after root?>""",
    b"""<root xmlns="urn:d"><a><entry/><entry x="1">t</entry></a><b xmlns=""><entry xmlns="urn:d"/></b></root>""",
    # two root-level signatures and nested ones: only the first root-level one (the verified one,
    # as the enveloped-signature transform removes) may be left out; every other is content
    b"""<e:defter xmlns:e="urn:e" xmlns:g="urn:g" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<ds:Signature Id="decoy-before"><ds:SignatureValue>first</ds:SignatureValue></ds:Signature>
<g:entries><g:entry n="1"><ds:Signature><ds:SignatureValue>in entry</ds:SignatureValue></ds:Signature></g:entry>
<ds:Signature><ds:SignatureValue>in outline</ds:SignatureValue></ds:Signature>
<g:entry n="2">999999.00</g:entry></g:entries>
<ds:Signature Id="real"><ds:SignatureValue>second</ds:SignatureValue></ds:Signature>
<g:entry n="3">after</g:entry><ds:Signature></ds:Signature>
</e:defter>""",
]
CHUNK_TAGS = ["{urn:g}entry", "{urn:d}entry", "{urn:none}nothing"]


def test_reference_keeps_every_other_signature():
    """The oracle itself: the later signatures of the third document stay in what is digested."""
    ref = _reference(DOCS[2])
    assert b"first" not in ref and b"second" in ref and b"in entry" in ref and b"in outline" in ref


def _reference(data: bytes) -> bytes:
    """libxml2's C14N of the whole document without exactly one element: the first ds:Signature
    child of the root (the one a verifier checks). Written here from the XML-DSig rule, not from
    the engine's predicate."""
    root = etree.fromstring(data)
    sig = root.find(f"{{{DS}}}Signature")
    if sig is not None:
        prev, tail = sig.getprevious(), sig.tail or ""
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            root.text = (root.text or "") + tail
        root.remove(sig)
    return etree.tostring(root.getroottree(), method="c14n", with_comments=False)


def _streamed(data: bytes, tag: str) -> bytes:
    from edefter_helper.engine.reader import _Enveloped

    out: list[bytes] = []
    stream = StreamingC14N(out.append, _Enveloped())
    it = etree.iterparse(io.BytesIO(data), events=("end",), tag=tag, resolve_entities=False)
    for _, el in it:
        stream.chunk_done(el)
    stream.finish(it.root)
    return b"".join(out)


@pytest.mark.parametrize("doc", range(len(DOCS)))
@pytest.mark.parametrize("tag", CHUNK_TAGS)
def test_streamed_equals_libxml2(doc, tag):
    assert _streamed(DOCS[doc], tag) == _reference(DOCS[doc])
