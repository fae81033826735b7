"""The fast path of the whole-document digest: a file already written in canonical form.

Many signers write the ledger exactly as Canonical XML renders it (that is what they hash). For
such a file the signed octets are the raw bytes between the root's start and end tags, minus the
enveloped ds:Signature, so they can be hashed as they stream by instead of being canonicalised
entry by entry.

Why this is the standard computation, not an approximation (reader.py takes it only then):
- Line ends are normalised here (CRLF and CR to LF) exactly as an XML parser does before anything
  else, so a CRLF file hashes as the parser sees it.
- The reader takes this path only when the parsed tree holds exactly one ds:Signature outside the
  countersignatures inside it, as the root's last child, followed by whitespace only, and nothing
  before or after the root but the declaration, comments and whitespace.
- The bytes cut out are checked to be exactly that element: they must parse, in the root's
  namespace context, as a single element whose canonical form (comments included) equals the
  parsed signature's. So the cut is the one the enveloped-signature transform makes; every other
  byte (the signature's whitespace tail included) is hashed.
- A canonical document re-canonicalises to itself (no DTD is ever accepted). So if these bytes
  hash to the signed digest, they *are* the signed canonical octets, and the standard verifier's
  digest is the same. When they do not match, the reader recomputes the exact way before any
  verdict: a non-canonical file costs time, never a wrong verdict.
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
        self.root_start = b""  # the root's start tag as written (its namespace context)
        self.cr = False  # the last chunk ended in CR: its LF may start the next one

    def disable(self) -> None:
        self.state = "off"
        self.buf = bytearray()
        self.body.clear()

    def feed(self, data: bytes) -> None:
        if self.state == "off":
            return
        if self.cr:
            data = b"\r" + data
            self.cr = False
        if b"\r" in data:
            if data.endswith(b"\r"):
                data, self.cr = data[:-1], True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
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
            self.root_start = m.group(0)
            del self.buf[: m.end()]
            self.state = "body"
            return

    def _need_more_or_off(self, head: bytes) -> None:
        if len(head) >= HEAD_LIMIT:
            self.disable()

    def holds(self, canonical: bytes) -> bool:
        """Is this canonical rendering (of the first entry) present verbatim in the raw bytes so far?"""
        return self.state == "body" and bytes(canonical) in b"".join(self.body)

    def finish(self, signature) -> bytes | None:
        """The digest of the raw body without `signature` (the parsed enveloped ds:Signature, which
        the caller has checked is the root's last child), or None when the bytes do not provably
        hold it where expected (then the caller canonicalises the exact way)."""
        if self.state != "body":
            return None
        if self.cr:
            self.feed(b"\n")
        tail = b"".join(self.body)
        end = tail.rfind(b"</" + self.root_qname)
        if end < 0 or not re.fullmatch(rb"</" + re.escape(self.root_qname) + rb"\s*>\s*", tail[end:]):
            return None
        name = (f"{signature.prefix}:Signature" if signature.prefix else "Signature").encode()
        close = re.search(rb"</" + re.escape(name) + rb"\s*>(\s*)\Z", tail[:end])
        start = re.search(rb"<" + re.escape(name) + rb"[\s/>]", tail)
        if close is None or start is None or start.start() >= close.start():
            return None
        stop = close.end() - len(close.group(1))
        if not self._is_the_signature(tail[start.start():stop], signature):
            return None
        self.sha.update(tail[: start.start()])
        self.sha.update(tail[stop:end])
        self.sha.update(b"</" + self.root_qname + b">")
        return self.sha.digest()

    def _is_the_signature(self, cut: bytes, signature) -> bool:
        """Are the bytes to be cut exactly one element, equal to the parsed signature?"""
        try:
            wrapper = etree.fromstring(self.root_start + cut + b"</" + self.root_qname + b">", safe_parser())
        except etree.XMLSyntaxError:
            return False
        if len(wrapper) != 1 or wrapper.text or wrapper[0].tail:
            return False
        return (etree.tostring(wrapper[0], method="c14n", with_comments=True)
                == etree.tostring(signature, method="c14n", with_comments=True))
