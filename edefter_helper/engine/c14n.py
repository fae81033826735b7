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
