"""The fast paths of the whole-document digest: bytes hashed (and canonicalised) as they stream by.

`LexicalDigest` (issue 7) is the one whose digest the reader trusts for a verdict: every byte it
hashes is proven to be the canonical form (c14n.LexicalC14N, for the lexical form every known
producer writes, canonical or not), so a match and a miss both mean what the standard verifier's
digest means (a miss is still recomputed the exact way before a verdict).

`RawDigest` only watches the raw bytes: the root's start tag and namespace context (`head`,
`root_prefixes`, which LexicalDigest starts from) and the last bytes read, so that the exact path can
ask (`holds`) whether the first entry is written canonically and choose how to read the file. It
hashes nothing: a producer may well have hashed non-canonical bytes (a comment between entries,
which C14N leaves out), so a digest of raw bytes that looked canonical at the first entry would
prove nothing (the reader recomputes such a file's digest the exact way).

Why LexicalDigest's cut and line-end handling are right:
- Line ends are normalised (CRLF and CR to LF) exactly as an XML parser does before anything
  else, so a CRLF file hashes as the parser sees it.
- The reader takes the digest only when the parsed tree holds exactly one ds:Signature outside the
  countersignatures inside it, as the root's last child, followed by whitespace only, and nothing
  before or after the root but the declaration, comments and whitespace.
- The bytes cut out are checked to be exactly that element: they must parse, in the root's
  namespace context, as a single element whose canonical form (comments included) equals the
  parsed signature's. So the cut is the one the enveloped-signature transform makes; every other
  byte (the signature's whitespace tail included) is hashed.
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
        self.body: deque[bytes] = deque()  # the last WINDOW-odd bytes read
        self.held = 0
        self.state = "head"  # head -> body, or off
        self.root_qname = b""
        self.root_start = b""  # the root's start tag as written (its namespace context)
        self.cr = False  # the last chunk ended in CR: its LF may start the next one
        self.head = b""  # everything up to the end of the root's start tag (line ends normalised)
        self.root_prefixes: dict[bytes, bytes] = {}  # prefix -> URI declared on the root

    def disable(self) -> None:
        self.state = "off"
        self.buf = bytearray()
        self.body.clear()

    def _normalise(self, data: bytes) -> bytes:
        """XML's line-end normalisation (CRLF and lone CR to LF), across chunk boundaries."""
        if self.cr:
            data = b"\r" + data
            self.cr = False
        if b"\r" in data:
            if data.endswith(b"\r"):
                data, self.cr = data[:-1], True
            data = data.replace(b"\r\n", b"\n")
            if b"\r" in data:
                data = data.replace(b"\r", b"\n")
        return data

    def feed(self, data: bytes) -> None:
        if self.state == "off":
            return
        data = self._normalise(data)
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
            self.held -= len(self.body.popleft())

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
            self.head = bytes(self.buf[: m.end()])
            self.root_prefixes = {p.encode(): u.encode() for p, u in lone.nsmap.items() if p}
            del self.buf[: m.end()]
            self.state = "body"
            return

    def _need_more_or_off(self, head: bytes) -> None:
        if len(head) >= HEAD_LIMIT:
            self.disable()

    def holds(self, canonical: bytes) -> bool:
        """Is this canonical rendering (of the first entry) present verbatim in the raw bytes so far?"""
        return self.state == "body" and bytes(canonical) in b"".join(self.body)

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


class LexicalDigest(RawDigest):
    """The whole-document digest of a ledger in c14n.LexicalC14N's lexical form L, computed on the
    bytes as they stream by, and the ledger's *outline*: the document less its journal entries.

    The reader parses every byte with libxml2 without building a tree (well-formedness), and the
    outline with a tree (facts, the signature); the entries are never built into a tree nor
    canonicalised one by one. This is the standard digest because:
    - Every byte after the root's start tag up to the enveloped signature, and from its end to the
      root's end tag, is checked to be in L and canonicalised by LexicalC14N (exact there, see its
      proof); the root's start tag is canonicalised by libxml2; the signature is cut as the
      module's docstring says (checked to be exactly the parsed element). Outside L: None, and the reader
      canonicalises the exact way.
    - The outline leaves out byte ranges from a tag `<P:entryHeader>` to the first `</P:entryHeader>`
      after it (P the one prefix the root binds to gl-cor), found only in bytes where every `<`
      starts a tag and no prefix is rebound (in L, or before any `<!`, `<?` and `xmlns` of the
      tail). Such a range holds as many start as end tags only when it is exactly that element
      (the element's depth stays above zero until its own end tag, which is an end tag of that
      name); otherwise the outline has more end than start tags and is not well-formed, and the
      reader, which parses it, takes the exact path. So the outline is the document less whole
      entry elements (and less whitespace between them, which nothing reads). Facts are read
      only at their schema positions and the enveloped signature is a child of the root, so no
      fact and no signature the reader looks at lies inside an entry; an entry holding the bytes
      `Signature` is refused (a signature inside an entry must be counted, as the exact path
      does) when a tag of its run holds them: an element named Signature has such a tag, in L
      and in the tail alike (LexicalC14N watches the tags it has split already, so the common
      run is not searched again). Entries written otherwise simply stay in the outline.
    """

    WINDOW = 1 << 20  # the enveloped signature must lie in the last WINDOW bytes (tests shrink it)
    PART = 128 << 10  # canonicalise about this much at a time (memory: ~10 bytes per byte of a part)
    READ_SIZE = 128 << 10
    HOLD_LIMIT = 16 << 20
    OUTLINE_LIMIT = 32 << 20

    def __init__(self, entry_ns: str, entry_local: str):
        super().__init__()
        self.entry_ns = entry_ns.encode()
        self.entry_local = entry_local.encode()
        self.lex = None
        self.carry = b""  # bytes after the last '>' of what was canonicalised, not canonicalised yet
        self.outline: list[bytes] = []
        self.outline_size = 0
        self.inside = False
        self.start_tag = b""  # `<P:entryHeader>`, or b"": entries all stay in the outline
        self.end_tag = b""
        self.tail = b""

    def _start_body(self) -> None:
        from edefter_helper.engine.c14n import LexicalC14N

        prefixes = {p: u for p, u in self.root_prefixes.items() if p != b"xml"}
        self.lex = LexicalC14N(prefixes, watch=b"Signature")
        bound = [p for p, u in prefixes.items() if u == self.entry_ns]
        if len(bound) == 1:
            self.start_tag = b"<" + bound[0] + b":" + self.entry_local + b">"
            self.end_tag = b"</" + bound[0] + b":" + self.entry_local + b">"
        self._keep(self.head)

    def feed(self, data: bytes) -> None:
        if self.state == "off":
            return
        if self.state == "head":
            self.buf += self._normalise(data)
            self._find_root()
            if self.state != "body":
                return
            self._start_body()
            data, self.buf = bytes(self.buf), bytearray()
        elif self.cr:  # a CR held back by the last normalised chunk of the head
            data = b"\r" + data
            self.cr = False
        # from here on the bytes are kept as read: LexicalC14N normalises line ends itself
        window = self.body
        window.append(data)
        self.held += len(data)
        if self.held - len(window[0]) < self.WINDOW:
            return
        taken = [self.carry]
        while window and self.held - len(window[0]) >= self.WINDOW:
            chunk = window.popleft()
            self.held -= len(chunk)
            taken.append(chunk)
        block = b"".join(taken)
        cut = block.rfind(b">") + 1
        if not cut:
            self.carry = block
            if len(block) > self.HOLD_LIMIT:
                self.disable()
            return
        self.carry = block[cut:]
        self._take(block if cut == len(block) else block[:cut])

    def disable(self) -> None:
        super().disable()
        self.carry = b""
        self.outline = []
        self.tail = b""

    def _take(self, part: bytes) -> None:
        lex = self.lex
        canonical = lex.canonical(part)
        if canonical is None:
            return self.disable()
        self.sha.update(canonical)
        self._outline_of_pieces(part, lex.pieces, lex.watched)

    def _outline_of_pieces(self, part: bytes, pieces: list[bytes], watched: bool) -> None:
        """Add `part` less its entries to the outline; `pieces`: the part in L as LexicalC14N split it
        (text, tag, text, ..., tag, text), `watched`: whether one of its tags holds `Signature`."""
        if not self.start_tag:
            self._keep(part)
            return
        start, end = self.start_tag[1:-1], self.end_tag[1:-1]
        n = len(pieces)
        k = 1  # the next tag to look at (tags at odd indices; the text before tag k is pieces[k - 1])
        while True:
            if self.inside:
                j = _tag_index(pieces, end, k)
                # an element named Signature inside an entry: counted by the exact path, not here
                if watched and any(b"Signature" in p for p in pieces[k - 1:j + 1]):
                    return self.disable()
                if j == n:
                    return
                k = j + 2
                self.inside = False
            else:
                j = _tag_index(pieces, start, k)
                if k == 1 and j == n:
                    self._keep(part)  # no entry here: the part as it is
                    return
                if j == k:
                    if not pieces[k - 1].isspace():
                        self._keep(pieces[k - 1])
                else:
                    seg = [pieces[k - 1]]
                    for m in range(k, j, 2):
                        seg += (b"<", pieces[m], b">", pieces[m + 1])
                    self._keep(b"".join(seg))
                if self.state == "off" or j == n:
                    return
                k = j + 2
                self.inside = True

    def _keep(self, seg: bytes) -> None:
        self.outline.append(seg)
        self.outline_size += len(seg)
        if self.outline_size > self.OUTLINE_LIMIT:
            self.disable()

    def _outline_of(self, part: bytes, n: int) -> None:
        """Add part[:n] less its entries to the outline (every `<` there starts a tag, no `xmlns`)."""
        if not self.start_tag:
            self._keep(part[:n])
            return
        start, end = self.start_tag, self.end_tag
        find = part.find
        sig = find(b"Signature", 0, n)
        pos = 0
        while pos < n:
            if self.inside:
                e = find(end, pos, n)
                stop = n if e < 0 else e + len(end)
                if 0 <= sig < stop and find(b"Signature", pos, stop) >= 0:
                    return self.disable()
                if e < 0:
                    return
                pos = stop
                self.inside = False
            else:
                s = find(start, pos, n)
                stop = n if s < 0 else s
                if stop > pos:
                    seg = part[pos:stop]
                    if not seg.isspace():
                        self._keep(seg)
                        if self.state == "off":
                            return
                if s < 0:
                    return
                pos = s + len(start)
                self.inside = True

    def outline_document(self) -> bytes | None:
        """The outline, once every byte has been fed; None when the bytes are not in the form
        this digest handles (the reader then takes the exact path)."""
        if self.state != "body":
            return None
        tail = self.carry + b"".join(self.body) + (b"\r" if self.cr else b"")
        self.carry, self.cr = b"", False
        self.body.clear()
        # the tail (it holds the signature) is checked to be in L later: take entries out of its
        # first bytes, where `<` starts a tag and no prefix is rebound
        q = len(tail)
        for mark in (b"<!", b"<?", b"xmlns"):
            at = tail.find(mark, 0, q)
            if at >= 0:
                q = at
        if q < len(tail):
            q = max(tail.rfind(b"<", 0, q + 1), 0)
        self._outline_of(tail, q)
        if self.state == "off" or self.inside:
            self.disable()
            return None
        self.tail = tail
        return b"".join(self.outline) + tail[q:]

    def finish(self, signature) -> bytes | None:
        """The digest, given the enveloped signature parsed from the outline (the caller has checked
        it is the root's last child), or None (then the caller canonicalises the exact way)."""
        if self.state != "body":
            return None
        tail = self.tail
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
        for run in (tail[: start.start()], tail[stop:end]):
            canonical = self.lex.canonical(run)
            if canonical is None:
                return None
            self.sha.update(canonical)
        self.sha.update(b"</" + self.root_qname + b">")
        return self.sha.digest()


def _tag_index(pieces: list[bytes], tag: bytes, k: int) -> int:
    """Index of the first tag equal to `tag` at or after index k (tags are at odd indices; a text
    may hold the same bytes), or len(pieces)."""
    while True:
        try:
            j = pieces.index(tag, k)
        except ValueError:
            return len(pieces)
        if j % 2:
            return j
        k = j + 1
