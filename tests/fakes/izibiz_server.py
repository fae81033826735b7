"""A fake İzibiz service held to İzibiz's real contract: a real HTTP server (waitress) on 127.0.0.1.

- Two services on their documented paths, as the real WSDLs have them: `/AuthenticationWS` (Login,
  Logout; namespace `http://schemas.i2i.com/ei/wsdl`) and `/EIArchiveWS/EFaturaArchive`
  (GetELedgerStatus, CancelEDefter, GetGenericArchiveByPeriod, and the prose-only ArchiveELedger;
  namespace `…/ei/wsdl/archive`). `/EDefterProxy` answers every operation, like the prose's
  "E-Dönüşüm Proxy".
- **Every request body is validated against the real XSDs** in `../shared/integrators/izibiz/`
  (lxml XMLSchema over the SOAP Body's operation element, with the schema of the service the request
  was posted to). ArchiveELedger is in no public XSD: it is declared here, from the prose, on top of
  the real types (REQUEST_HEADERType, REQUEST_RETURNType, REQUEST_ERRORType), so its header is held to
  the real sequence too. CONTENT is streamed to disk while parsing (its base64 is checked by decoding
  it) and validated as a placeholder, so a 200 MB package costs no memory here. A request that fails
  validation is answered with a SOAP Fault, as a JAX-WS service does, and recorded in
  `invalid_requests`. Every real operation must carry `SOAPAction: ""`.
- Answers use the real element names (ERROR_SHORT_DES / ERROR_LONG_DES, RequestFault in the Fault
  detail, REQUEST_RETURN with INTL_TXN_ID) and are themselves validated against the same XSDs before
  they leave; a fake answer that is not valid is recorded in `response_errors` (tests assert none).
- Error codes from İzibiz's common error table (prose): 10004 invalid session, 10008 nothing found,
  10011 repeated operation (a period is stored once).
- State: sessions, packages by (VKN, DONEM) with their branch; failure injection for tests.

Without `../shared/integrators/izibiz/` the fake cannot check anything, so creating it skips the test
with the reason.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
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
NS_AUTH = "http://schemas.i2i.com/ei/wsdl"
NS_ARCHIVE = "http://schemas.i2i.com/ei/wsdl/archive"
NS_ENTITY = "http://schemas.i2i.com/ei/entity"
NS_XSD = "http://www.w3.org/2001/XMLSchema"

AUTH_PATH = "/AuthenticationWS"
ARCHIVE_PATH = "/EIArchiveWS/EFaturaArchive"
PROXY_PATH = "/EDefterProxy"
SERVICES = {AUTH_PATH: "auth", ARCHIVE_PATH: "archive", PROXY_PATH: "proxy"}

CONTRACT = Path(__file__).resolve().parents[2].parent / "shared" / "integrators" / "izibiz"
PROSE_ONLY = {"ArchiveELedgerRequest"}  # in no public WSDL; SOAPAction not prescribed
# answers whose XSD type cannot carry ERROR_TYPE alone (a required element comes first): faults only
FAULT_ONLY = {"LoginRequest", "GetGenericArchiveByPeriodRequest"}
PLACEHOLDER = "AAAA"  # valid base64 standing in for streamed content during validation
MAX_SMALL_TEXT = 1 << 20

SESSION_EXPIRED = ("10004", "Geçersiz oturum. Lütfen tekrar oturum oluşturunuz ve tekrar deneyiniz", None)
NOT_FOUND = "10008"
REPEATED = "10011"


def require_contract(folder: Path | None = None) -> Path:
    """The folder of İzibiz's real WSDL/XSD files, or skip the calling test with the reason."""
    folder = Path(folder or CONTRACT)
    needed = [folder / "auth" / "AuthenticationWS3.xsd", folder / "archive" / "EFaturaArchive5.xsd"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        import pytest

        pytest.skip(f"İzibiz'in gerçek WSDL/XSD dosyaları bulunamadı ({', '.join(missing)}); sahte İzibiz "
                    "sunucusu istekleri şemaya göre doğrulayamadan çalışmaz")
    return folder


# the prose-only operation, declared on the real types, in the archive namespace (the client's assumption)
_PROSE_XSD = """<xs:schema xmlns:xs="{xsd}" xmlns:e="{entity}" targetNamespace="{archive}">
  <xs:include schemaLocation="{archive_xsd}"/>
  <xs:import namespace="{entity}" schemaLocation="{entity_xsd}"/>
  <xs:element name="ArchiveELedgerRequest">
    <xs:complexType><xs:sequence>
      <xs:element name="REQUEST_HEADER" type="e:REQUEST_HEADERType"/>
      <xs:element name="FILENAME" type="xs:string"/>
      <xs:element name="CONTENT" type="xs:base64Binary"/>
    </xs:sequence></xs:complexType>
  </xs:element>
  <xs:element name="ArchiveELedgerResponse">
    <xs:complexType><xs:sequence>
      <xs:element minOccurs="0" name="REQUEST_RETURN" type="e:REQUEST_RETURNType"/>
      <xs:element minOccurs="0" name="ERROR_TYPE" type="e:REQUEST_ERRORType"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>"""


class Contract:
    """İzibiz's real XSDs, loaded with lxml, one schema per service."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.auth = etree.XMLSchema(etree.parse(str(folder / "auth" / "AuthenticationWS3.xsd")))
        wrapper = _PROSE_XSD.format(xsd=NS_XSD, entity=NS_ENTITY, archive=NS_ARCHIVE,
                                    archive_xsd=(folder / "archive" / "EFaturaArchive5.xsd").as_uri(),
                                    entity_xsd=(folder / "archive" / "EFaturaArchive3.xsd").as_uri())
        self.archive = etree.XMLSchema(etree.fromstring(wrapper.encode()))

    def schema(self, namespace: str):
        return {NS_AUTH: self.auth, NS_ARCHIVE: self.archive}.get(namespace)

    def header_sequence(self, service: str) -> list[str]:
        """REQUEST_HEADERType's xs:sequence as the service's own XSD file declares it."""
        path = self.folder / ("auth/AuthenticationWS1.xsd" if service == "auth" else "archive/EFaturaArchive3.xsd")
        doc = etree.parse(str(path))
        seq = doc.find(f"{{{NS_XSD}}}complexType[@name='REQUEST_HEADERType']/{{{NS_XSD}}}sequence")
        return [e.get("name") for e in seq.findall(f"{{{NS_XSD}}}element")]


@functools.lru_cache(maxsize=4)
def load_contract(folder: str) -> Contract:
    return Contract(Path(folder))


class BadRequest(Exception):
    pass


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag) -> str:
    return tag[1:].split("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


class _Reader:
    """Parser target: builds a small tree of the request; CONTENT's base64 goes to a file instead."""

    def __init__(self, spool_dir: Path):
        self.spool_dir = spool_dir
        self.tree = etree.TreeBuilder()
        self.stack: list[str] = []
        self.content = None  # (path, sha256, size)
        self._file = None
        self._path = None
        self._hash = None
        self._size = 0
        self._pending = ""
        self._small = 0
        self.refused: BadRequest | None = None  # lxml may report a later error instead: keep the first

    def doctype(self, *a):
        self.refused = BadRequest("DOCTYPE refused")
        raise self.refused

    def start(self, tag, attrib, nsmap=None):
        name = _local(tag)
        self.stack.append(name)
        self.tree.start(tag, dict(attrib), nsmap)
        if name == "CONTENT":
            fd, path = tempfile.mkstemp(dir=self.spool_dir, suffix=".zip")
            self._file, self._path = os.fdopen(fd, "wb"), Path(path)
            self._hash, self._size, self._pending = hashlib.sha256(), 0, ""

    def data(self, text):
        if self.stack[-1:] == ["CONTENT"] and self._file is not None:
            text = self._pending + "".join(text.split())  # xs:base64Binary allows white space
            cut = len(text) - len(text) % 4
            self._pending = text[cut:]
            try:
                chunk = base64.b64decode(text[:cut], validate=True)
            except binascii.Error:
                raise BadRequest("CONTENT is not base64") from None
            self._hash.update(chunk)
            self._size += len(chunk)
            self._file.write(chunk)
            return
        self._small += len(text)
        if self._small > MAX_SMALL_TEXT:
            raise BadRequest("too much text")
        self.tree.data(text)

    def end(self, tag):
        name = self.stack.pop()
        if name == "CONTENT" and self._file is not None:
            if self._pending:
                raise BadRequest("CONTENT is not base64")
            self._file.close()
            self._file = None
            self.content = (self._path, self._hash.hexdigest(), self._size)
            if self._size:
                self.tree.data(PLACEHOLDER)
        self.tree.end(tag)

    def comment(self, text):
        pass

    def pi(self, target, data=None):
        pass

    def close(self):
        if self.refused is not None:
            raise self.refused
        return self.tree.close()

    def discard(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        for path in (self._path,):
            if path is not None and path.exists():
                path.unlink()
        self.content = None


@dataclass
class Stored:
    filename: str
    path: Path
    sha256: str
    size: int
    txn: str
    branch: str = "0000"
    processing: bool = False


@dataclass
class FakeIzibiz:
    users: dict = field(default_factory=lambda: {"ali@firma": "doğru-şifre"})
    root: Path = None
    contract_dir: Path = None
    # failure injection
    unavailable: int = 0  # next N requests -> HTTP 503
    retry_after: str | None = None
    too_many: int = 0  # next N requests -> HTTP 429
    hold_processing: bool = False  # new packages stay "processing" until finish_processing()
    errors: dict = field(default_factory=dict)  # request element -> (code, short[, long]) for its next call
    reject_content: tuple | None = None  # (code, short[, long]) for every ArchiveELedger
    session_error: tuple = SESSION_EXPIRED  # (code, short, long) answered to an unknown SESSION_ID
    session_error_style: str = "fault"  # "fault" or "error_type" (where the answer's type allows it)
    generic_faultstring: bool = False  # faultstring says nothing: only the detail's fields carry the error
    expire_in: int | None = None  # the N-th next call (Login aside) finds every session expired (8 hours on)
    forget_sessions: bool = False  # every call but Login finds its session unknown, even a fresh one
    # state and records
    sessions: set = field(default_factory=set)
    store: dict = field(default_factory=dict)  # (vkn, donem) -> Stored
    calls: list = field(default_factory=list)  # (request element, info dict) of every valid request
    invalid_requests: list = field(default_factory=list)  # (path, request element or "", reason)
    response_errors: list = field(default_factory=list)  # fake answers the real XSD would refuse
    logins: int = 0
    logouts: int = 0
    _txn = itertools.count(1000)

    def __post_init__(self):
        self.contract = load_contract(str(require_contract(self.contract_dir)))
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
        path = environ.get("PATH_INFO", "")
        service = SERVICES.get(path)
        if environ["REQUEST_METHOD"] != "POST" or service is None:
            _drain(environ)
            start_response("405 Method Not Allowed" if service else "404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        reader = _Reader(self.root)
        parser = etree.XMLParser(target=reader, resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=True)
        fault_ns = NS_ARCHIVE if service == "archive" else NS_AUTH
        op_name = ""
        try:
            stream = environ["wsgi.input"]
            while chunk := stream.read(64 * 1024):
                parser.feed(chunk)
            env = parser.close()
            op = _operation(env)
            op_name, fault_ns = _local(op.tag), _ns(op.tag) or fault_ns
            schema = self.contract.schema(_ns(op.tag))
            own = {"auth": NS_AUTH, "archive": NS_ARCHIVE}.get(service)  # the proxy path takes both
            if schema is None or (own is not None and own != _ns(op.tag)):
                raise BadRequest(f"{op.tag} bu serviste tanımlı değil ({path})")
            if not schema.validate(copy.deepcopy(op)):
                raise BadRequest(f"şemaya uymuyor: {schema.error_log.last_error.message}")
            if op_name not in PROSE_ONLY and environ.get("HTTP_SOAPACTION") != '""':
                raise BadRequest(f'SOAPAction "" olmalı, gelen: {environ.get("HTTP_SOAPACTION")!r}')
        except (BadRequest, etree.XMLSyntaxError, ValueError) as exc:
            reader.discard()
            with self.lock:
                self.invalid_requests.append((path, op_name, str(exc)))
            return self._fault(start_response, fault_ns, "S:Client", "-1", f"Geçersiz istek: {exc}", None, "")
        header_el = op.find("REQUEST_HEADER")
        header = {_local(c.tag): (c.text or "") for c in header_el}
        info = {"content_length": environ.get("CONTENT_LENGTH"), "chunked": environ.get("HTTP_TRANSFER_ENCODING"),
                "soapaction": environ.get("HTTP_SOAPACTION"), "path": path, "namespace": _ns(op.tag),
                "header_order": [_local(c.tag) for c in header_el], **header}
        with self.lock:
            self.calls.append((op_name, info))
            if self.expire_in is not None and op_name != "LoginRequest":
                self.expire_in -= 1
                if self.expire_in <= 0:
                    self.expire_in = None
                    self.sessions.clear()
            return self._dispatch(op_name, op, header, reader, start_response)

    # ---- operations --------------------------------------------------------------------------

    def _dispatch(self, name, op, header, r, start_response):
        ns = _ns(op.tag)
        txn = header.get("CLIENT_TXN_ID", "")

        def text(tag):
            el = op.find(tag)
            return (el.text or "").strip() if el is not None else ""

        def error(code, short, long=None):
            return self._error(start_response, ns, name, code, short, long, txn)

        if name == "LoginRequest":
            if header["SESSION_ID"] != "-1":
                return error("-1", "Login icin SESSION_ID -1 olmali")
            if name in self.errors:
                return error(*self.errors.pop(name))
            if self.users.get(text("USER_NAME")) != text("PASSWORD"):
                return error("10002", "Oturum oluşturulamadı", "Kullanıcı adı veya şifre hatalı")
            sid = uuid.uuid4().hex
            self.sessions.add(sid)
            self.logins += 1
            return self._ok(start_response, ns, name, [("SESSION_ID", sid)])
        if header["SESSION_ID"] not in self.sessions or self.forget_sessions:
            r.discard()
            code, short, long = self.session_error
            style = "fault" if name in FAULT_ONLY else self.session_error_style
            return self._error(start_response, ns, name, code, short, long, txn, style=style)
        if name == "LogoutRequest":
            self.sessions.discard(header["SESSION_ID"])
            self.logouts += 1
            return self._ok(start_response, ns, name, [self._return(txn)])
        if name in self.errors:
            r.discard()
            return error(*self.errors.pop(name))
        if name == "ArchiveELedgerRequest":
            filename = text("FILENAME")
            if not r.content or not r.content[2]:
                r.discard()
                return error("10007", "İstek ZİP bir dosya içermelidir")
            path, sha, size = r.content
            parts = filename.removesuffix(".zip").split("-")
            if len(parts) != 3 or not filename.endswith(".zip"):
                path.unlink()
                return error("10013", "Gönderilen istek geçersizdir. Hata sebebi: dosya adı")
            if self.reject_content:
                path.unlink()
                return error(*self.reject_content)
            key = (parts[0], parts[1])
            if key in self.store:
                path.unlink()
                return error(REPEATED, "Tekrarlanan işlem: kayıt sistemde mevcuttur")
            number = str(next(self._txn))
            self.store[key] = Stored(filename, path, sha, size, number, branch=parts[2],
                                     processing=self.hold_processing)
            return self._ok(start_response, ns, name, [self._return(txn, number)])
        if name == "CancelEDefterRequest":
            found = []
            for item in op.findall("CancelEDefterContent"):
                key = ((item.findtext("VKN") or "").strip(), (item.findtext("DONEM") or "").strip())
                branch = (item.findtext("SUBE_NO") or "0000").strip()
                stored = self.store.get(key)
                if stored is None or stored.branch != branch:
                    return error(NOT_FOUND, "İptal edilecek kayıt bulunamadı")
                found.append(key)
            for key in found:
                self.store.pop(key).path.unlink()
            return self._ok(start_response, ns, name, [self._return(txn)])
        if name == "GetGenericArchiveByPeriodRequest":
            stored = self.store.get((text("VKN"), text("DONEM")))
            if stored is None or stored.processing:
                return error(NOT_FOUND, "Belirtilen kriterlere uygun kayıt bulunamamıştır")
            return self._stream_doc(start_response, ns, name, stored, txn)
        if name == "GetELedgerStatusRequest":
            period, identifier = text("PERIOD"), text("IDENTIFIER")
            children = []
            for (vkn, donem), stored in self.store.items():
                if donem != period or (identifier and vkn != identifier):
                    continue
                desc = "İşleniyor" if stored.processing else "Arşivlendi"
                children.append(("ELEDGER", [("PART_NO", "1"), ("IDENTIFIER", vkn), ("PERIOD", donem),
                                             ("GIB_ARCHIVE_STATUS", "0" if stored.processing else "1"),
                                             ("GIB_ARCHIVE_STATUS_DESC", desc)]))
            return self._ok(start_response, ns, name, children + [self._return(txn)])
        return error("10015", f"Servis desteklenmemektedir. Servis adı: {name}")

    # ---- answers (a different prefix than the client's, to keep the client liberal) ----------

    def _return(self, client_txn: str, number: str | None = None):
        fields = [("INTL_TXN_ID", number or str(next(self._txn)))]
        if client_txn:
            fields.append(("CLIENT_TXN_ID", client_txn))
        return "REQUEST_RETURN", fields + [("RETURN_CODE", "0")]

    def _error_fields(self, code, short, long, client_txn):
        fields = [("INTL_TXN_ID", str(next(self._txn)))]
        if client_txn:
            fields.append(("CLIENT_TXN_ID", client_txn))
        fields += [("ERROR_CODE", str(code)), ("ERROR_SHORT_DES", short)]
        if long:
            fields.append(("ERROR_LONG_DES", long))
        return fields

    def _envelope(self):
        env = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap={"S": NS_SOAP})
        return env, etree.SubElement(env, f"{{{NS_SOAP}}}Body")

    def _checked(self, ns, element) -> bool:
        schema = self.contract.schema(ns)
        if schema is None or schema.validate(copy.deepcopy(element)):
            return True
        self.response_errors.append((element.tag, schema.error_log.last_error.message))
        return False

    def _send(self, start_response, status, env):
        body = etree.tostring(env, xml_declaration=True, encoding="UTF-8")
        start_response(status, [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    def _ok(self, start_response, ns, request_name, children):
        env, body = self._envelope()
        element = etree.SubElement(body, f"{{{ns}}}{request_name.removesuffix('Request')}Response", nsmap={"ns2": ns})
        _fill(element, children)
        if not self._checked(ns, element):
            return self._fault(start_response, ns, "S:Server", "-1", "sahte sunucu geçersiz yanıt üretti", None, "")
        return self._send(start_response, "200 OK", env)

    def _error(self, start_response, ns, request_name, code, short, long=None, client_txn="", style=None):
        style = style or ("fault" if request_name in FAULT_ONLY else "error_type")
        if style == "fault":
            return self._fault(start_response, ns, "S:Server", code, short, long, client_txn)
        return self._ok(start_response, ns, request_name,
                        [("ERROR_TYPE", self._error_fields(code, short, long, client_txn))])

    def _fault(self, start_response, ns, faultcode, code, short, long, client_txn):
        env, body = self._envelope()
        fault = etree.SubElement(body, f"{{{NS_SOAP}}}Fault")
        etree.SubElement(fault, "faultcode").text = faultcode
        etree.SubElement(fault, "faultstring").text = "RequestFault" if self.generic_faultstring else short
        detail = etree.SubElement(fault, "detail")
        holder = etree.SubElement(detail, f"{{{ns}}}RequestFault", nsmap={"ns2": ns})
        fields = self._error_fields(code, short, long, client_txn)
        if ns == NS_ARCHIVE:  # archive: RequestFaultType wraps REQUEST_ERRORType; auth: the type itself
            _fill(holder, [("RequestFaultResponse", fields)])
        else:
            _fill(holder, fields)
        self._checked(ns, holder)
        return self._send(start_response, "500 Internal Server Error", env)

    def _stream_doc(self, start_response, ns, request_name, stored: Stored, client_txn):
        env, body = self._envelope()
        element = etree.SubElement(body, f"{{{ns}}}GetGenericArchiveByPeriodResponse", nsmap={"ns2": ns})
        _fill(element, [("GEN_ARCHIVE_DOC", PLACEHOLDER), self._return(client_txn)])
        if not self._checked(ns, element):
            return self._fault(start_response, ns, "S:Server", "-1", "sahte sunucu geçersiz yanıt üretti", None, "")
        marker = f"@@{uuid.uuid4().hex}@@"
        element.find("GEN_ARCHIVE_DOC").text = marker
        prefix, suffix = etree.tostring(env, xml_declaration=True, encoding="UTF-8").split(marker.encode())
        length = len(prefix) + 4 * ((stored.size + 2) // 3) + len(suffix)
        path = stored.path

        def stream():
            yield prefix
            with open(path, "rb") as f:
                while chunk := f.read(3 * 128 * 1024):
                    yield base64.b64encode(chunk)
            yield suffix

        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(length))])
        return stream()


def _operation(env):
    if env.tag != f"{{{NS_SOAP}}}Envelope":
        raise BadRequest(f"kök eleman SOAP 1.1 Envelope değil: {env.tag}")
    body = env.find(f"{{{NS_SOAP}}}Body")
    ops = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(ops) != 1:
        raise BadRequest("Body tek bir işlem elemanı taşımalı")
    return ops[0]


def _fill(parent, children):
    for name, value in children:
        child = etree.SubElement(parent, name)
        if isinstance(value, list):
            _fill(child, value)
        else:
            child.text = value


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
        self.url = f"http://127.0.0.1:{self.port}"  # a server address: the client adds the documented paths
        self.auth_url = self.url + AUTH_PATH
        self.archive_url = self.url + ARCHIVE_PATH
        self.proxy_url = self.url + PROXY_PATH
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        # close the listener and open keep-alive channels inside the server's own loop (closing them
        # from this thread races its select() into EBADF); an empty map ends the loop
        from waitress import wasyncore

        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.thread.join(timeout=5)
        self.server.task_dispatcher.shutdown()
