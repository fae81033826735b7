"""Streaming Canonical XML 1.0 (inclusive) of a whole document, minus one excluded element.

An enveloped XML signature signs the C14N form of the whole document without its own
ds:Signature element. Ledger parts reach 200 MB, so the tree is never held whole: lxml parses
incrementally, "chunk" elements (journal entries) are canonicalised by libxml2 as soon as
they are complete and then freed, and the few elements around them (the outline) are
rendered here. Inside a chunk inclusive C14N renders exactly what it renders in the whole
document, except for the namespace declarations on the chunk's own start tag, which are
reduced to those its output ancestors have not already rendered.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Callable

from lxml import etree

_NS_DECL = re.compile(rb' (xmlns(?::[^=]+)?)="([^"]*)"')
_TEXT_ESC = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord("\r"): "&#xD;"}


def escape_text(text: str) -> bytes:
    return text.translate(_TEXT_ESC).encode("utf-8")


class StreamingC14N:
    """Feeds the canonical bytes of a document to `write` while it is being parsed.

    Call `chunk_done(el)` for each complete chunk element (in document order) and
    `finish(root)` once parsing has ended. `excluded(el)` marks the element to leave out
    (the enveloped signature); it must not lie inside a chunk.
    """

    def __init__(self, write: Callable[[bytes], object], excluded: Callable[[etree._Element], bool],
                 with_comments: bool = False):
        self.write = write
        self.excluded = excluded
        self.with_comments = with_comments
        # open outline elements: [element, rendered namespace scope, last completed child]
        self.stack: list[list] = []
        self.root_opened = False

    # -- rendering -------------------------------------------------------------------------

    def _emit_node(self, node, scope: dict) -> None:
        """A complete child node (element, comment or PI), without its tail."""
        if isinstance(node.tag, str):
            if self.excluded(node):
                return
            rendered = etree.tostring(node, method="c14n", with_comments=self.with_comments)
            start, rest, _ = reduce_start(rendered, scope)
            self.write(start)
            self.write(rest)
        elif node.tag is etree.Comment:
            if self.with_comments:
                self.write(b"<!--" + (node.text or "").encode("utf-8") + b"-->")
        elif node.tag is etree.PI:
            data = (" " + node.text) if node.text else ""
            self.write(f"<?{node.target}{data}?>".encode("utf-8"))

    def _emit_tail(self, node) -> None:
        if node.tail:
            self.write(escape_text(node.tail))

    def _open(self, el, scope: dict) -> None:
        lone = etree.Element(el.tag, attrib=dict(el.attrib), nsmap=el.nsmap)
        rendered = etree.tostring(lone, method="c14n")
        start, _, new_scope = reduce_start(rendered, scope)
        self.write(start)
        if el.text:
            self.write(escape_text(el.text))
        self.stack.append([el, new_scope, None])

    def _close_top(self) -> None:
        """Emit the rest of the innermost open element (all complete now) and its end tag."""
        el, scope, last = self.stack.pop()
        child = el[0] if last is None and len(el) else (last.getnext() if last is not None else None)
        if last is not None:
            self._emit_tail(last)
        while child is not None:
            self._emit_node(child, scope)
            self._emit_tail(child)
            child = child.getnext()
        prefix = el.prefix
        qname = f"{prefix}:{etree.QName(el).localname}" if prefix else etree.QName(el).localname
        self.write(b"</" + qname.encode("utf-8") + b">")
        if self.stack:
            self.stack[-1][2] = el

    def _advance_to(self, target) -> None:
        """Emit every complete node before `target` inside the innermost open element."""
        el, scope, last = self.stack[-1]
        if last is not None:
            self._emit_tail(last)
            child = last.getnext()
            el.remove(last)  # already written: free it
        else:
            child = el[0] if len(el) else None
        while child is not None and child is not target:
            nxt = child.getnext()
            self._emit_node(child, scope)
            self._emit_tail(child)
            el.remove(child)
            child = nxt
        self.stack[-1][2] = None

    # -- driving ---------------------------------------------------------------------------

    def _open_root(self, root) -> None:
        for sib in reversed(list(root.itersiblings(preceding=True))):
            if sib.tag is etree.PI or (sib.tag is etree.Comment and self.with_comments):
                self._emit_node(sib, {})
                self.write(b"\n")
        self._open(root, {})
        self.root_opened = True

    def chunk_done(self, chunk) -> None:
        path = list(chunk.iterancestors())[::-1]
        if not self.root_opened:
            self._open_root(path[0])
        # close open elements that are not ancestors of this chunk
        while self.stack and (len(self.stack) > len(path) or self.stack[len(self.stack) - 1][0] is not path[len(self.stack) - 1]):
            self._close_top()
        for anc in path[len(self.stack):]:
            self._advance_to(anc)
            self._open(anc, self.stack[-1][1])
        self._advance_to(chunk)
        self._emit_node(chunk, self.stack[-1][1])
        self.stack[-1][2] = chunk
        chunk.clear(keep_tail=True)

    def finish(self, root) -> None:
        if not self.root_opened:
            self._open_root(root)
        while self.stack:
            self._close_top()
        for sib in root.itersiblings():
            if sib.tag is etree.PI or (sib.tag is etree.Comment and self.with_comments):
                self.write(b"\n")
                self._emit_node(sib, {})


_START_TAG = re.compile(rb'<[^\s>]+(?: [^\s=]+="[^"]*")*>')


def reduce_start(rendered: bytes, scope: dict) -> tuple[bytes, bytes, dict]:
    """Split libxml2's C14N of an element into (start tag reduced to this scope, rest, new scope)."""
    end = _start_tag_end(rendered)
    start, rest = rendered[:end], rendered[end:]
    name_end = start.find(b" ")
    if name_end < 0:
        name_end = len(start) - 1
    attrs_at = _attrs_start(start, name_end)
    decls = dict(_NS_DECL.findall(start[name_end:attrs_at]))
    new_scope = decls
    kept = [(k, v) for k, v in decls.items() if scope.get(k) != v]
    if b"xmlns" not in decls and scope.get(b"xmlns"):
        # the output parent rendered a default namespace this element does not have
        kept.insert(0, (b"xmlns", b""))
        new_scope = {**decls, b"xmlns": b""}
    ns_part = b"".join(b' %s="%s"' % kv for kv in kept)
    return start[:name_end] + ns_part + start[attrs_at:], rest, new_scope


def _start_tag_end(rendered: bytes) -> int:
    """Index just past the first start tag (C14N never leaves a raw '"' in a value)."""
    return _START_TAG.match(rendered).end()


_ATTR = re.compile(rb' (?!xmlns[:=])[^\s=]+="')


def _attrs_start(start: bytes, pos: int) -> int:
    """Namespace declarations come first in C14N; the first other attribute (or '>') ends them."""
    m = _ATTR.search(start, pos)
    return m.start() if m else len(start) - 1


# -- Canonical XML of a restricted lexical form, computed on the bytes ---------------------------

_GT_AS_LT = bytes.maketrans(b">", b"<")
_TEXT_REFS = (b"&amp;", b"&lt;", b"&gt;", b"&#xD;")
_LONE_CR = re.compile(rb"\r(?!\n)")


class LexicalC14N:
    """Canonical XML 1.0 of a run of a document's content, computed on its bytes, for one lexical
    form ("L") that every ledger producer we know writes. Outside L it answers None and the caller
    canonicalises the exact way (libxml2); it never guesses.

    Input: bytes of a document that libxml2 parses as well-formed (the caller checks that before
    it uses any answer from here): a run of complete tokens inside the root element; UTF-8;
    `prefixes`: prefix -> namespace URI as the root declares them. Line ends are normalised here
    first, as XML does (CRLF and CR to LF). The run is in L when:

    (1) no attribute is named `xmlns` or `xmlns:*` (no element inside declares or undeclares a
        namespace; `xmlns` is never a declared prefix);
    (2) there are as many `>` as `<`;
    (3) every tag (the bytes between a `<` and the next `>`) is an end tag `</QN>` or a start or
        empty-element tag `<QN( QN="V")*>` / `<.../>`, attributes after whitespace (space, tab,
        LF), optional whitespace before `>` / `/>`; QN is NAME or PREFIX:NAME (ASCII names) with
        a PREFIX the root declares; V is any bytes but `"` `<` `>` `&` tab LF, and the references
        `&amp;` `&lt;` `&quot;` `&#x9;` `&#xA;` `&#xD;`; no attribute twice;
    (4) `&` occurs in text only as `&amp;` `&lt;` `&gt;` `&#xD;`.

    Why the answer is exactly what C14N 1.0 (inclusive, without comments) renders for these nodes
    of the parsed document:
    - In a well-formed document `<` occurs only where markup starts (text and attribute values
      cannot hold it); `>` ends markup, and may also occur in text and values. With (2) it occurs
      nowhere else, so `<` and `>` alternate and split the bytes into text and markup exactly as
      the parser does. By (3) all markup is tags: no comment, processing instruction, CDATA
      section or DOCTYPE (they would have to be a tag of (3), and cannot).
    - Text: the parser reads (4)'s references as `&`, `<`, `>`, CR and every other byte as itself
      (no raw CR is left after normalisation; `<` `>` cannot be there); C14N writes `&`, `<`, `>`,
      CR back as exactly those references. So text is copied.
    - Attribute values: no literal whitespace but space, so attribute-value normalisation changes
      nothing; the parser reads (3)'s references as `&`, `<`, `"`, tab, LF, CR, which C14N writes
      back as the same references. So values are copied; single-quoted values are not in L.
    - Namespace axis: by (1) only the root declares namespaces, and every ancestor of these nodes
      is in the output (the excluded ds:Signature is never an ancestor of them), so C14N renders
      no namespace declaration on any element here (the root rendered them all). (3)'s prefixes
      make every name namespace-well-formed, which libxml2's check without a tree does not see.
    - Attributes: C14N orders them by namespace URI (none first), then local name, in byte order
      of their UTF-8 (= code point order), and writes `name="value"` after one space each, `>`
      right after the last; an empty-element tag is rendered `<x></x>`; names are copied.
    So each tag is rendered by `_render`, once per distinct tag (ledgers repeat the same few),
    and the text between them is copied.
    """

    _NAME = rb"[A-Za-z_][\w.\-]*+"
    _VALUE = rb'"(?:[^"<>&\t\n]++|&(?:amp|lt|quot|#x9|#xA|#xD);)*+"'
    _WS = rb"[ \t\n]"
    CACHE_LIMIT = 4096  # distinct tags remembered (their C14N)
    CACHE_BYTES = 4 << 20  # and their bytes: a few long tags (100 KB values) must not fill memory either
    TEXT_MAX = 10_000_000  # libxml2's XML_MAX_TEXT_LENGTH: a longer text node is malformed in a tree

    def __init__(self, prefixes: dict[bytes, bytes], watch: bytes = b""):
        self.prefixes = dict(prefixes)
        # after each answer: does a tag of the run hold `watch` (the caller's element name)?
        self.watch = watch
        self.watched = False
        names = sorted((re.escape(p) for p in self.prefixes), key=len, reverse=True)
        qn = (rb"(?:(?:" + b"|".join(names) + rb"):)?+" if names else b"") + self._NAME
        self._tag = re.compile(rb"/" + qn + rb"|" + qn + rb"(?:" + self._WS + rb"++" + qn + rb"=" + self._VALUE
                               + rb")*+" + self._WS + rb"*+/?")
        self._attr = re.compile(self._WS + rb"++(" + qn + rb")=(" + self._VALUE + rb")")
        # tag (between `<` and `>`) -> b"" when already canonical, its C14N, or None when not in L
        self._rendered: dict[bytes, bytes | None] = {}
        self._as_written: set[bytes] = set()  # the tags whose C14N is themselves, less watched ones
        self._cached = 0  # bytes of the remembered tags and their renderings
        # after an answer: text, tag, text, ..., tag, text (texts at even indices, line ends normalised)
        self.pieces: list[bytes] = []

    def canonical(self, data: bytes) -> bytes | None:
        """The canonical form of `data` (complete tokens; line ends CRLF, CR or LF: they are
        normalised here), or None when `data` is not in L."""
        crs = b"\r" in data
        if crs and _LONE_CR.search(data):
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            crs = False
        lts = data.count(b"<")
        # text, tag, text, ..., tag, text (line ends normalised: every CR left is before an LF)
        pieces = data.translate(_GT_AS_LT, b"\r" if crs else b"").split(b"<")
        if len(pieces) != 2 * lts + 1:
            return None
        if len(data) > self.TEXT_MAX and max(map(len, pieces[0::2])) > self.TEXT_MAX:
            return None  # libxml2 builds no text node this long (huge_tree off): the exact path says so
        # the common case, a run written canonically: every tag one already seen as written and not
        # watched (a lookup each; no set of them built)
        rewrite = watched = not self._as_written.issuperset(islice(pieces, 1, None, 2))
        if rewrite:
            tags = pieces[1::2]
            rendered = self._rendered
            outs = {}
            rewrite = watched = False
            watch = self.watch
            for tag in set(tags):
                out = rendered.get(tag, False)
                if out is False:
                    out = self._render(tag)
                    # a ledger repeats ~150 tags; one whose tags all differ (an attribute value that
                    # counts, or long values) must not grow the cache with its size: the first ones
                    # seen are kept
                    cost = len(tag) + len(out or b"")
                    if len(rendered) < self.CACHE_LIMIT and self._cached + cost <= self.CACHE_BYTES:
                        rendered[tag] = out
                        self._cached += cost
                        if out == b"" and not (watch and watch in tag):
                            self._as_written.add(tag)
                if out is None:
                    return None
                if out:
                    rewrite = True
                if watch and watch in tag:
                    watched = True
                outs[tag] = out
        if b"&" in data:
            texts = b"".join(pieces[0::2])
            if texts.count(b"&") != sum(texts.count(ref) for ref in _TEXT_REFS):
                return None
        self.pieces, self.watched = pieces, watched
        if not rewrite:
            return data.translate(None, b"\r") if crs else data
        full = {tag: out or b"<" + tag + b">" for tag, out in outs.items()}
        out = pieces.copy()  # self.pieces keeps the tags as written, for the caller's outline
        out[1::2] = map(full.__getitem__, tags)
        return b"".join(out)

    def _render(self, tag: bytes) -> bytes | None:
        """b"" when `<tag>` is already canonical, else its canonical form; None when not in L."""
        if not self._tag.fullmatch(tag):
            return None
        if tag.startswith(b"/"):
            return b""  # `</QN>`: canonical as written
        empty = tag.endswith(b"/")
        inner = tag[:-1] if empty else tag
        inner = inner.rstrip(b" \t\n")
        m = re.search(rb"[ \t\n]", inner)
        name = inner[: m.start()] if m else inner
        keyed = []
        for qname, value in self._attr.findall(inner, len(name)):
            if qname == b"xmlns":
                return None  # a default namespace declared or undeclared inside: not in L
            prefix, colon, local = qname.rpartition(b":")
            keyed.append(((self.prefixes[prefix] if colon else b"", local), qname, value))
        if len({k for k, _, _ in keyed}) != len(keyed):
            return None  # the same attribute twice: never well-formed; the exact path reports it
        keyed.sort(key=lambda kqv: kqv[0])
        out = b"<" + name + b"".join(b" " + q + b"=" + v for _, q, v in keyed) + b">"
        if empty:
            out += b"</" + name + b">"
        return b"" if out == b"<" + tag + b">" else out
