"""A fake İzibiz e-Defter Saklama service: a real HTTP server (waitress) on 127.0.0.1.

It speaks the documented messages, keeps state (sessions, packages by VKN+DONEM), enforces
store-once and cancel, parses requests safely and streams CONTENT to disk, and lets tests inject
failures. It is strict about what a client must send (namespace, REQUEST_HEADER fields).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from waitress.server import create_server

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "http://schemas.i2i.com/ei/wsdl"


class BadRequest(Exception):
    pass


def _local(tag):
    return tag.rsplit("}", 1)[-1]


class _Reader:
    """Parser target: remembers small texts by path, streams CONTENT's base64 into a file."""

    def __init__(self, spool_dir: Path):
        self.spool_dir = spool_dir
        self.stack = []
        self.tags = []
        self.values = {}
        self.operation = None
        self.op_ns = None
        self.content = None  # (path, sha256, size)
        self._file = None
        self._hash = None
        self._size = 0
        self._pending = ""
        self._text = []

    def doctype(self, *a):
        raise BadRequest("DOCTYPE refused")

    def start(self, tag, attrib, nsmap=None):
        name = _local(tag)
        if self.stack[-1:] == ["Body"] and self.operation is None:
            self.operation = name
            self.op_ns = tag[1:].split("}")[0] if tag.startswith("{") else ""
        elif self.operation and len(self.stack) >= 3 and tag.startswith("{"):
            raise BadRequest(f"qualified child {tag}")  # children are unqualified
        self.stack.append(name)
        self.tags.append("/".join(self.stack[2:]))
        self._text = []
        if name == "CONTENT":
            fd, path = tempfile.mkstemp(dir=self.spool_dir, suffix=".zip")
            self._file = os.fdopen(fd, "wb")
            self._path = Path(path)
            self._hash = hashlib.sha256()

    def data(self, text):
        if self.stack[-1:] == ["CONTENT"]:
            text = self._pending + text
            cut = len(text) - len(text) % 4
            self._pending = text[cut:]
            chunk = base64.b64decode(text[:cut], validate=True)
            self._hash.update(chunk)
            self._size += len(chunk)
            self._file.write(chunk)
        else:
            self._text.append(text)

    def end(self, tag):
        path = "/".join(self.stack[2:])
        name = self.stack.pop()
        if name == "CONTENT":
            if self._pending:
                raise BadRequest("bad base64")
            self._file.close()
            self.content = (self._path, self._hash.hexdigest(), self._size)
        else:
            self.values[path] = "".join(self._text)
        self._text = []

    def close(self):
        return self


@dataclass
class Stored:
    filename: str
    path: Path
    sha256: str
    size: int
    txn: str
    processing: bool = False


@dataclass
class FakeIzibiz:
    users: dict = field(default_factory=lambda: {"ali@firma": "doğru-şifre"})
    root: Path = None
    # failure injection
    unavailable: int = 0  # next N requests -> HTTP 503
    retry_after: str | None = None
    too_many: int = 0  # next N requests -> HTTP 429
    hold_processing: bool = False  # new packages stay "processing" until finish_processing()
    errors: dict = field(default_factory=dict)  # operation -> (code, desc) for its next call
    reject_content: tuple | None = None  # (code, desc) for every ArchiveELedger
    # state and records
    sessions: set = field(default_factory=set)
    store: dict = field(default_factory=dict)  # (vkn, donem) -> Stored
    calls: list = field(default_factory=list)  # (operation, headers dict)
    logins: int = 0
    logouts: int = 0
    _txn = itertools.count(1000)

    def __post_init__(self):
        self.root = Path(self.root or tempfile.mkdtemp(prefix="fake-izibiz-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    # test helpers
    def expire_sessions(self):
        self.sessions.clear()

    def finish_processing(self):
        for s in self.store.values():
            s.processing = False

    def ops(self):
        return [c[0] for c in self.calls]

    # WSGI
    def __call__(self, environ, start_response):
        with self.lock:
            if self.unavailable:
                self.unavailable -= 1
                _drain(environ)
                headers = [("Content-Type", "text/plain")]
                if self.retry_after:
                    headers.append(("Retry-After", self.retry_after))
                start_response("503 Service Unavailable", headers)
                return [b"bakimda"]
            if self.too_many:
                self.too_many -= 1
                _drain(environ)
                start_response("429 Too Many Requests", [("Content-Type", "text/plain"), ("Retry-After", "3")])
                return [b"yavas"]
        if environ["REQUEST_METHOD"] != "POST":
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
            return [b""]
        reader = _Reader(self.root)
        parser = etree.XMLParser(target=reader, resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=True)
        stream = environ["wsgi.input"]
        try:
            while chunk := stream.read(64 * 1024):
                parser.feed(chunk)
            parser.close()
            if reader.operation is None:
                raise BadRequest("no operation")
            if reader.op_ns != NS:
                raise BadRequest(f"namespace {reader.op_ns}")
            header = {k.split("/")[-1]: v for k, v in reader.values.items() if k.startswith(f"{reader.operation}/REQUEST_HEADER/")}
            for required in ("SESSION_ID", "APPLICATION_NAME"):
                if not header.get(required):
                    raise BadRequest(f"{required} missing")
        except (BadRequest, etree.XMLSyntaxError, ValueError) as exc:
            return self._fault(start_response, "soapenv:Client", f"Gecersiz istek: {exc}")
        info = {"content_length": environ.get("CONTENT_LENGTH"),
                "chunked": environ.get("HTTP_TRANSFER_ENCODING"), "soapaction": environ.get("HTTP_SOAPACTION"),
                **header}
        op = reader.operation
        with self.lock:
            self.calls.append((op, info))
            return self._dispatch(op, reader, header, start_response)

    def _dispatch(self, op, r, header, start_response):
        v = {k.split("/", 1)[1]: val for k, val in r.values.items() if "/" in k}
        if op == "LoginRequest":
            if header["SESSION_ID"] != "-1":
                return self._fault(start_response, "soapenv:Client", "Login icin SESSION_ID -1 olmali")
            user, pw = v.get("USER_NAME"), v.get("PASSWORD")
            if op in self.errors:
                return self._error(start_response, "LoginResponse", *self.errors.pop(op))
            if self.users.get(user) != pw:
                return self._fault(start_response, "soapenv:Server", "Kullanıcı adı veya şifre hatalı")
            sid = uuid.uuid4().hex
            self.sessions.add(sid)
            self.logins += 1
            return self._ok(start_response, "LoginResponse", f"<SESSION_ID>{sid}</SESSION_ID>")
        if header["SESSION_ID"] not in self.sessions:
            if r.content:
                r.content[0].unlink()
            return self._fault(start_response, "soapenv:Server", "Oturum geçersiz veya süresi dolmuş")
        if op == "LogoutRequest":
            self.sessions.discard(header["SESSION_ID"])
            self.logouts += 1
            return self._ok(start_response, "LogoutResponse", "<REQUEST_RETURN><RETURN_CODE>0</RETURN_CODE></REQUEST_RETURN>")
        name = op.removesuffix("Request")
        if op in self.errors:
            if r.content:
                r.content[0].unlink()
            return self._error(start_response, f"{name}Response", *self.errors.pop(op))
        if op == "ArchiveELedgerRequest":
            filename = v.get("FILENAME", "")
            if not r.content:
                return self._error(start_response, "ArchiveELedgerResponse", "2001", "CONTENT boş")
            path, sha, size = r.content
            parts = filename.removesuffix(".zip").split("-")
            if len(parts) != 3 or not filename.endswith(".zip"):
                path.unlink()
                return self._error(start_response, "ArchiveELedgerResponse", "2002", "Dosya adı hatalı")
            if self.reject_content:
                path.unlink()
                return self._error(start_response, "ArchiveELedgerResponse", *self.reject_content)
            key = (parts[0], parts[1])
            if key in self.store:
                path.unlink()
                return self._error(start_response, "ArchiveELedgerResponse", "2010",
                                   "Bu dönem için daha önce yedekleme yapılmış")
            txn = str(next(self._txn))
            self.store[key] = Stored(filename, path, sha, size, txn, processing=self.hold_processing)
            return self._ok(start_response, "ArchiveELedgerResponse",
                            f"<REQUEST_RETURN><INTL_TXN_ID>{txn}</INTL_TXN_ID><RETURN_CODE>0</RETURN_CODE>"
                            f"<CLIENT_TXN_ID>{header.get('CLIENT_TXN_ID', '')}</CLIENT_TXN_ID></REQUEST_RETURN>")
        if op in ("GetELedgerRequest", "CancelELedgerRequest"):
            key = (v.get("VKN", ""), v.get("DONEM", ""))
            stored = self.store.get(key)
            if op == "CancelELedgerRequest":
                if stored is None:
                    return self._error(start_response, "CancelELedgerResponse", "2020", "İptal edilecek kayıt bulunamadı")
                del self.store[key]
                stored.path.unlink()
                return self._ok(start_response, "CancelELedgerResponse",
                                "<REQUEST_RETURN><RETURN_CODE>0</RETURN_CODE></REQUEST_RETURN>")
            if stored is None or stored.processing:
                return self._error(start_response, "GetELedgerResponse", "2030", "Kayıt bulunamadı")
            return self._stream_doc(start_response, stored)
        if op == "GetELedgerStatusRequest":
            key = (v.get("IDENTIFIER", ""), v.get("PERIOD", ""))
            stored = self.store.get(key)
            body = ""
            if stored:
                desc = "İşleniyor" if stored.processing else "Arşivlendi"
                body = (f"<ELEDGER><PART_NO>1</PART_NO><IDENTIFIER>{key[0]}</IDENTIFIER><PERIOD>{key[1]}</PERIOD>"
                        f"<GIB_ARCHIVE_STATUS>{0 if stored.processing else 1}</GIB_ARCHIVE_STATUS>"
                        f"<GIB_ARCHIVE_STATUS_DESC>{desc}</GIB_ARCHIVE_STATUS_DESC></ELEDGER>")
            return self._ok(start_response, "GetELedgerStatusResponse",
                            body + "<REQUEST_RETURN><RETURN_CODE>0</RETURN_CODE></REQUEST_RETURN>")
        return self._fault(start_response, "soapenv:Client", f"Bilinmeyen metot {op}")

    # answers (the fake uses a different prefix than the client, to keep the client liberal)
    def _wrap(self, inner: str) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{NS_SOAP}"><S:Body>{inner}'
                f"</S:Body></S:Envelope>").encode()

    def _ok(self, start_response, element, inner):
        body = self._wrap(f'<ns2:{element} xmlns:ns2="{NS}">{inner}</ns2:{element}>')
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def _error(self, start_response, element, code, desc):
        inner = (f"<ERROR_TYPE><INTL_TXN_ID>{next(self._txn)}</INTL_TXN_ID><ERROR_CODE>{code}</ERROR_CODE>"
                 f"<ERROR_SHORT_DESC>{desc}</ERROR_SHORT_DESC></ERROR_TYPE>")
        return self._ok(start_response, element, inner)

    def _fault(self, start_response, code, text):
        body = self._wrap(f"<S:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring>"
                          f'<detail><ns2:RequestFault xmlns:ns2="{NS}"><RequestFaultResponse>'
                          f"<ERROR_CODE>-1</ERROR_CODE><ERROR_SHORT_DESC>{text}</ERROR_SHORT_DESC>"
                          f"</RequestFaultResponse></ns2:RequestFault></detail></S:Fault>")
        start_response("500 Internal Server Error",
                       [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def _stream_doc(self, start_response, stored: Stored):
        head = self._wrap(f'<ns2:GetELedgerResponse xmlns:ns2="{NS}"><GEN_ARCHIVE_DOC>@@</GEN_ARCHIVE_DOC>'
                          f"<REQUEST_RETURN><RETURN_CODE>0</RETURN_CODE></REQUEST_RETURN></ns2:GetELedgerResponse>")
        prefix, suffix = head.split(b"@@")
        length = len(prefix) + 4 * ((stored.size + 2) // 3) + len(suffix)
        path = stored.path

        def body():
            yield prefix
            with open(path, "rb") as f:
                while chunk := f.read(3 * 128 * 1024):
                    yield base64.b64encode(chunk)
            yield suffix

        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(length))])
        return body()


def _drain(environ):
    stream = environ["wsgi.input"]
    while stream.read(64 * 1024):
        pass


class FakeIzibizServer:
    """Runs a FakeIzibiz on 127.0.0.1 with a free port in a background thread."""

    def __init__(self, app: FakeIzibiz | None = None):
        self.app = app or FakeIzibiz()
        self.server = create_server(self.app, host="127.0.0.1", port=0, threads=4,
                                    max_request_body_size=1 << 34, channel_timeout=30)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}/EDefterProxy"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        # close open keep-alive channels too, or the loop keeps running until they time out
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(timeout=5)
