"""Safe XML parsing: no DTDs, no entities, no network. Used everywhere, servers included."""

from __future__ import annotations

import codecs
import re

from lxml import etree

# Each file is refused before parsing when its prolog declares a DOCTYPE: that is where
# external entities (XXE) and entity bombs live, and no e-Defter file has one.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")


# a prolog (declaration, comments, whitespace) longer than this is not an e-Defter file
PROLOG_LIMIT = 1 << 20


class UnsafeXML(ValueError):
    """The document declares a DTD or entities."""


def parser_options() -> dict:
    return dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                huge_tree=False)


def safe_parser(**extra) -> etree.XMLParser:
    return etree.XMLParser(**parser_options(), **extra)


def _to_utf8(head: bytes) -> bytes:
    """Best effort view of the first bytes as UTF-8, so a UTF-16 DOCTYPE is seen too."""
    for bom, enc in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(enc, "ignore").encode()
    if len(head) > 1 and (head[0] == 0 or head[1] == 0):
        enc = "utf-16-be" if head[0] == 0 else "utf-16-le"
        return head.decode(enc, "ignore").encode()
    return head


def prolog_complete(head: bytes) -> bool:
    """Does `head` reach the root element's start (so check_prolog sees the whole prolog)?"""
    return _FIRST_ELEMENT.search(_to_utf8(head)) is not None


def check_prolog(head: bytes) -> None:
    """Raise UnsafeXML when the prolog (bytes before the root element) holds a DOCTYPE, or when
    no root element starts within PROLOG_LIMIT bytes."""
    text = _to_utf8(head)
    first = _FIRST_ELEMENT.search(text)
    prolog = text[: first.start()] if first else text
    if _DOCTYPE.search(prolog):
        raise UnsafeXML("DOCTYPE")
    if first is None and len(head) >= PROLOG_LIMIT:
        raise UnsafeXML("prolog")


def parse_bytes(data: bytes) -> etree._Element:
    """Parse a small document safely (signatures, SOAP messages, manifests)."""
    check_prolog(data[:65536])
    root = etree.fromstring(data, safe_parser())
    if root.getroottree().docinfo.doctype:
        raise UnsafeXML("DOCTYPE")
    return root
