"""The fast path of the whole-document digest: a file already written in canonical form.

Many signers write the ledger exactly as Canonical XML renders it (that is what they hash). For
such a file the signed octets are the raw bytes between the root's start and end tags, minus the
enveloped ds:Signature, so they can be hashed as they stream by instead of being canonicalised
entry by entry. This is only ever a shortcut to a *match*: a digest computed here that does not
match the signature is recomputed the slow, exact way before anything is reported (reader.py),
so a non-canonical file can cost time but never a wrong verdict.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections import deque

from lxml import etree

from edefter_helper.engine.xmlsafe import safe_parser

WINDOW = 2 << 20  # the enveloped signature must lie in the last WINDOW bytes
HEAD_LIMIT = 1 << 20

_ROOT_START = re.compile(
    rb"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)"
    rb"((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>")
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([^\"']+)[\"']")


class RawDigest:
    def __init__(self):
        self.sha = hashlib.sha256()
        self.buf = bytearray()  # the head, until the root's start tag is found
        self.body: deque[bytes] = deque()  # the last WINDOW-odd bytes, not hashed yet
        self.held = 0
        self.state = "head"  # head -> body, or off
        self.root_qname = b""

    def disable(self) -> None:
        self.state = "off"
        self.buf = bytearray()
        self.body.clear()

    def feed(self, data: bytes) -> None:
        if self.state == "off":
            return
        if self.state == "head":
            self.buf += data
            self._find_root()
            if self.state != "body":
                return
            data, self.buf = bytes(self.buf), bytearray()
        self.body.append(data)
        self.held += len(data)
        # chunks, not one growing buffer: nothing is copied and at most WINDOW + a chunk is held
        while self.held - len(self.body[0]) >= WINDOW:
            old = self.body.popleft()
            self.held -= len(old)
            self.sha.update(old)

    def _find_root(self) -> None:
        head = bytes(self.buf[:HEAD_LIMIT])
        pos = 3 if head.startswith(codecs.BOM_UTF8) else 0
        first = pos
        while True:
            lt = head.find(b"<", pos)
            if lt < 0:
                return self._need_more_or_off(head)
            if head[pos:lt].strip():
                return self.disable()
            if head.startswith(b"<?", lt):
                end = head.find(b"?>", lt)
                if end < 0:
                    return self._need_more_or_off(head)
                decl = head[lt:end + 2]
                # only the XML declaration may precede the root (C14N keeps other PIs); UTF-8 only
                if lt != first or not decl.startswith(b"<?xml"):
                    return self.disable()
                enc = _ENCODING.search(decl)
                if enc and enc.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
                    return self.disable()
                pos = end + 2
                continue
            if head.startswith(b"<!--", lt):
                end = head.find(b"-->", lt)
                if end < 0:
                    return self._need_more_or_off(head)
                pos = end + 3
                continue
            if head.startswith(b"<!", lt):
                return self.disable()
            m = _ROOT_START.match(head, lt)
            if not m:
                return self._need_more_or_off(head)
            if m.group(3):
                return self.disable()
            qname = m.group(1)
            try:
                lone = etree.fromstring(m.group(0) + b"</" + qname + b">", safe_parser())
            except etree.XMLSyntaxError:
                return self.disable()
            rendered = etree.tostring(lone, method="c14n")
            self.sha.update(rendered[: -len(b"</" + qname + b">")])
            self.root_qname = qname
            del self.buf[: m.end()]
            self.state = "body"
            return

    def _need_more_or_off(self, head: bytes) -> None:
        if len(head) >= HEAD_LIMIT:
            self.disable()

    def holds(self, canonical: bytes) -> bool:
        """Is this canonical rendering (of the first entry) present verbatim in the raw bytes so far?"""
        return self.state == "body" and bytes(canonical) in b"".join(self.body)

    def finish(self, signature_qname: str) -> bytes | None:
        """The digest of the raw body without the enveloped signature, or None when the bytes do not
        have the expected shape (then the caller canonicalises the slow way)."""
        if self.state != "body":
            return None
        tail = b"".join(self.body)
        end = tail.rfind(b"</" + self.root_qname)
        if end < 0 or b"<?" in tail[end:]:
            return None
        name = signature_qname.encode()
        start = re.search(rb"<" + re.escape(name) + rb"[\s>]", tail)
        close = b"</" + name + b">"
        stop = tail.rfind(close, 0, end)
        if start is None or stop < start.start():
            return None
        self.sha.update(tail[: start.start()])
        self.sha.update(tail[stop + len(close): end])
        self.sha.update(b"</" + self.root_qname + b">")
        return self.sha.digest()
