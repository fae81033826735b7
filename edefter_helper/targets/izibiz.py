"""İzibiz "E-Defter Saklama Servisi" (SOAP) as a storage target.

What the public documentation (github.com/izibiz/api-documentation, e-Defter and Proxy sections)
says, and what this module assumes where it is silent:

- One endpoint URL, given per customer (none is published). Login and Logout live in the same
  "Proxy" service as the e-Defter methods, so every operation is posted to `url`.
- Messages are document/literal SOAP 1.1. The operation element is in a target namespace; its
  children (REQUEST_HEADER, USER_NAME, FILENAME, ...) are unqualified. Assumed namespace:
  `http://schemas.i2i.com/ei/wsdl` (İzibiz's authentication and e-Fatura services use it; the
  archive service uses `.../wsdl/archive`). Both are constructor arguments.
- Assumed element names: `LoginRequest`, `LogoutRequest`, `ArchiveELedgerRequest`
  (FILENAME, CONTENT), `GetELedgerRequest` (DONEM, VKN -> GEN_ARCHIVE_DOC),
  `GetELedgerStatusRequest` (PERIOD, IDENTIFIER; PART_NO left out -> ELEDGER entries with
  GIB_ARCHIVE_STATUS / GIB_ARCHIVE_STATUS_DESC), `CancelELedgerRequest` (DONEM, VKN).
  REQUEST_HEADER carries SESSION_ID, APPLICATION_NAME, CHANNEL_NAME (documented as required)
  and a fresh CLIENT_TXN_ID for support calls. The package description has no field: it stays in
  the receipt only.
- Answers are read liberally: elements are matched by local name in any namespace; errors arrive
  either as ERROR_TYPE (ERROR_CODE, ERROR_SHORT_DESC) inside the response or as a SOAP Fault
  (HTTP 500) whose detail may hold the same fields. An error mentioning "oturum"/"session" is taken
  as an expired session: log in again once and repeat the call.
- No hash is published: `query` fetches the stored package back and hashes it. That proves the
  bytes only if İzibiz returns the zip exactly as sent (assumed). GetELedger and CancelELedger take
  VKN and DONEM only, so a firm keeping e-Defter per branch can hold one package per month here
  (assumed; the branch is only in FILENAME).
- A period is stored once; the server refuses a second ArchiveELedger. The refusal is explained by
  fetching what is stored: the same bytes give back the stored receipt, other bytes are a
  RejectedError asking to cancel first.

Bodies stream both ways: CONTENT is base64-encoded from the file in chunks while the request is
sent (with an exact Content-Length), and GEN_ARCHIVE_DOC is decoded chunk by chunk as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import uuid
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests
from lxml import etree

from edefter_helper.engine.model import MonthKey
from edefter_helper.fsutil import atomic_write
from edefter_helper.status import month_label
from edefter_helper.targets.base import (
    ACCEPTED, MISSING, STORED, CredentialsError, Package, Receipt, RejectedError, Target,
    TargetError, TransientError,
)
from edefter_helper.targets.retry import parse_retry_after

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_DEFAULT = "http://schemas.i2i.com/ei/wsdl"

CHUNK = 3 * 256 * 1024  # a multiple of 3: chunked base64 then equals base64 of the whole
READ_CHUNK = 64 * 1024
MAX_SMALL_TEXT = 64 * 1024  # any other element's text is capped: a hostile answer cannot fill memory
PACKAGE_NAME = re.compile(r"^\d{10,11}-\d{6}-\d{4}\.zip$")
SESSION_WORDS = ("oturum", "session")


class SoapReadError(ValueError):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class Base64Sink:
    """Decodes base64 text arriving in pieces of any size; passes bytes on to `write`."""

    def __init__(self, write: Callable[[bytes], None]):
        self.write = write
        self.pending = ""
        self.size = 0

    def feed(self, text: str) -> None:
        text = self.pending + "".join(text.split())  # liberal: line breaks and spaces are allowed
        cut = len(text) - len(text) % 4
        self.pending = text[cut:]
        if cut:
            try:
                data = base64.b64decode(text[:cut], validate=True)
            except binascii.Error:
                raise SoapReadError("base64") from None
            self.size += len(data)
            self.write(data)

    def close(self) -> None:
        if self.pending:
            raise SoapReadError("base64")


class SoapReader:
    """lxml parser target: small values by local name, one big base64 element streamed to a sink.

    No tree is built, so a 200 MB answer costs no more memory than a small one.
    """

    def __init__(self, stream_element: str | None = None, sink: Base64Sink | None = None):
        self.stream_element = stream_element
        self.sink = sink
        self.stack: list[str] = []
        self.values: dict[str, str] = {}
        self.ledgers: list[dict] = []
        self.operation = ""  # first child of Body
        self.fault = False
        self.streamed = False
        self.seen: set[str] = set()
        self._text: list[str] = []
        self._text_len = 0

    # lxml target interface
    def doctype(self, *args):
        raise SoapReadError("DOCTYPE")

    def start(self, tag, attrib, nsmap=None):
        name = _local(tag)
        if len(self.stack) >= 2 and self.stack[-1] == "Body" and not self.operation:
            self.operation = name
        if name == "Fault":
            self.fault = True
        if name == "ELEDGER":
            self.ledgers.append({})
        if name == self.stream_element:
            self.streamed = True
        self.stack.append(name)
        self.seen.add(name)
        self._text, self._text_len = [], 0

    def data(self, text):
        if self.stack and self.stack[-1] == self.stream_element and self.sink is not None:
            self.sink.feed(text)
        elif self._text_len < MAX_SMALL_TEXT:
            self._text.append(text)
            self._text_len += len(text)

    def end(self, tag):
        name = self.stack.pop()
        if name != self.stream_element:
            text = "".join(self._text).strip()[:MAX_SMALL_TEXT]
            if text:
                self.values.setdefault(name, text)
                if "ELEDGER" in self.stack and self.ledgers:
                    self.ledgers[-1].setdefault(name, text)
        self._text, self._text_len = [], 0

    def comment(self, text):
        pass

    def pi(self, target, data=None):
        pass

    def close(self):
        if self.sink is not None:
            self.sink.close()
        return self


def read_soap(chunks, stream_element: str | None = None, sink: Base64Sink | None = None) -> SoapReader:
    """Parse an answer from an iterable of bytes, safely: no DTD, no entities, no network."""
    reader = SoapReader(stream_element, sink)
    parser = etree.XMLParser(target=reader, resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=True)  # huge text is fine: no DTD, no tree
    try:
        for chunk in chunks:
            if chunk:
                parser.feed(chunk)
        parser.close()
    except (etree.XMLSyntaxError, SoapReadError) as exc:
        raise SoapReadError(str(exc)) from None
    if reader.operation == "" and not reader.fault:
        raise SoapReadError("no SOAP body")
    return reader


class StreamBody:
    """A request body made of a prefix, a file's base64 and a suffix; iterable with a known length.

    requests sends an iterable with __len__ with that Content-Length instead of chunking it.
    """

    def __init__(self, prefix: bytes, path: Path, suffix: bytes):
        self.prefix, self.path, self.suffix = prefix, Path(path), suffix
        self.size = self.path.stat().st_size
        self.sha256 = hashlib.sha256()

    def __len__(self) -> int:
        return len(self.prefix) + 4 * ((self.size + 2) // 3) + len(self.suffix)

    def __iter__(self) -> Iterator[bytes]:
        self.sha256 = hashlib.sha256()
        yield self.prefix
        with open(self.path, "rb") as f:
            while chunk := f.read(CHUNK):
                self.sha256.update(chunk)
                yield base64.b64encode(chunk)
        yield self.suffix


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise TargetError("İzibiz adresine kullanıcı adı veya şifre yazılmamalı; şifre anahtar zincirinde tutulur.")
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url  # tests and local proxies only
    raise TargetError("İzibiz adresi https:// ile başlamalı (şifresiz http yalnızca bu bilgisayar için kabul edilir).")


class IzibizTarget(Target):
    kind = "izibiz"

    def __init__(self, url: str, user: str, password: str, app_name: str = "edefter-yedekleme",
                 timeout: float | tuple = (15, 300), namespace: str = NS_DEFAULT,
                 login_namespace: str | None = None, session: requests.Session | None = None):
        self.url = check_url(url)
        self.user = user
        self._password = password
        self.app_name = app_name
        self.timeout = timeout
        self.ns = namespace
        self.login_ns = login_namespace or namespace
        self.http = session or requests.Session()
        self.http.verify = True  # never turned off: the package and the password travel here
        self.session_id: str | None = None
        self.logins = 0

    def __repr__(self) -> str:  # keeps the password out of tracebacks and logs
        return f"IzibizTarget(url={self.url!r}, user={self.user!r})"

    # ---- messages -------------------------------------------------------------------------

    def _envelope(self, ns: str, operation: str, session_id: str, fields: list[tuple[str, str]]):
        env = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap={"soapenv": NS_SOAP, "ns": ns})
        etree.SubElement(env, f"{{{NS_SOAP}}}Header")
        body = etree.SubElement(env, f"{{{NS_SOAP}}}Body")
        op = etree.SubElement(body, f"{{{ns}}}{operation}")
        header = etree.SubElement(op, "REQUEST_HEADER")
        for name, value in (("SESSION_ID", session_id), ("APPLICATION_NAME", self.app_name),
                            ("CHANNEL_NAME", self.app_name), ("CLIENT_TXN_ID", str(uuid.uuid4()))):
            etree.SubElement(header, name).text = value
        for name, value in fields:
            etree.SubElement(op, name).text = value
        return env

    def _serialize(self, env) -> bytes:
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    def _clean(self, text: str) -> str:
        """Server text for a message: short, and never the password even if a server echoes it."""
        text = " ".join((text or "").split())[:300]
        if self._password:
            text = text.replace(self._password, "***")
        return text

    # ---- transport ------------------------------------------------------------------------

    def _post(self, operation: str, body, stream_element: str | None = None,
              sink: Base64Sink | None = None) -> SoapReader:
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'}
        try:
            resp = self.http.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                  stream=True, verify=True, allow_redirects=False)
        except requests.exceptions.SSLError:
            raise TargetError("İzibiz sunucusunun TLS sertifikası doğrulanamadı.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TransientError(f"İzibiz'e bağlanılamadı ({type(exc).__name__}).") from None
        with resp:
            status = resp.status_code
            if status in (401, 403):
                raise CredentialsError(f"İzibiz '{self.user}' kullanıcısını yetkilendirmedi (HTTP {status}).")
            if status == 429 or status in (502, 503, 504):
                raise TransientError(f"İzibiz şu an yanıt veremiyor (HTTP {status}).",
                                     retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                                     status=status)
            if status not in (200, 500):
                if status >= 500:
                    raise TransientError(f"İzibiz sunucu hatası (HTTP {status}).", status=status)
                raise TargetError(f"İzibiz adresi bu isteği kabul etmedi (HTTP {status}); adres yanlış olabilir.")
            try:
                reader = read_soap(resp.iter_content(READ_CHUNK), stream_element, sink)
            except SoapReadError:
                if status == 500:
                    raise TransientError("İzibiz sunucu hatası (HTTP 500).", status=500) from None
                raise TargetError("İzibiz'den anlaşılamayan bir yanıt geldi.") from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                raise TransientError(f"İzibiz yanıtı yarıda kesildi ({type(exc).__name__}).") from None
        return reader

    @staticmethod
    def _error(reader: SoapReader) -> tuple[str, str] | None:
        """(code, text) when the answer is an error, else None."""
        v = reader.values
        if reader.fault or "ERROR_TYPE" in reader.seen or "ERROR_SHORT_DESC" in v or "ERROR_CODE" in v:
            text = v.get("ERROR_SHORT_DESC") or v.get("faultstring") or v.get("ERROR_LONG_DESC") or ""
            return v.get("ERROR_CODE", v.get("faultcode", "")), text or "ayrıntı verilmedi"
        code = v.get("RETURN_CODE")
        if code is not None and code != "0":
            return code, f"dönüş kodu {code}"
        return None

    @staticmethod
    def _is_session_error(text: str) -> bool:
        low = text.casefold()
        return any(w in low for w in SESSION_WORDS)

    # ---- session --------------------------------------------------------------------------

    def login(self) -> str:
        env = self._envelope(self.login_ns, "LoginRequest", "-1",
                             [("USER_NAME", self.user), ("PASSWORD", self._password)])
        reader = self._post("Login", self._serialize(env))
        err = self._error(reader)
        if err:
            raise CredentialsError(
                f"İzibiz girişi başarısız ('{self.user}'): {self._clean(err[1])}. "
                "Kullanıcı adı ve şifre kontrol edilmeli.")
        sid = reader.values.get("SESSION_ID")
        if not sid or sid == "-1":
            raise CredentialsError(f"İzibiz girişi başarısız ('{self.user}'): oturum numarası dönmedi.")
        self.session_id = sid
        self.logins += 1
        return sid

    def _call(self, operation: str, make_body: Callable[[str], object],
              stream_element: str | None = None, make_sink: Callable[[], Base64Sink] | None = None):
        """Call with the session; on an expired session log in again once. Returns (reader, error)."""
        for attempt in (1, 2):
            if self.session_id is None:
                self.login()
            sink = make_sink() if make_sink else None
            reader = self._post(operation, make_body(self.session_id), stream_element, sink)
            err = self._error(reader)
            if err and attempt == 1 and self._is_session_error(err[1]):
                self.session_id = None
                continue
            if err and self._is_session_error(err[1]):
                raise CredentialsError(f"İzibiz oturumu yeniden açıldı ama kabul edilmedi: {self._clean(err[1])}")
            return reader, err
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.session_id is not None:
            sid, self.session_id = self.session_id, None
            try:
                self._post("Logout", self._serialize(self._envelope(self.login_ns, "LogoutRequest", sid, [])))
            except TargetError:
                pass  # the session ends by itself after 8 hours
        self.http.close()

    # ---- Target ---------------------------------------------------------------------------

    @staticmethod
    def _donem(key: MonthKey) -> str:
        return key.period.replace("-", "")

    def _rejected(self, key: MonthKey, text: str) -> RejectedError:
        return RejectedError(f"İzibiz {month_label(key.period)} paketini reddetti: {self._clean(text)}")

    def send(self, package: Package, description: str) -> Receipt:
        key = package.key
        name = key.package_name
        if not PACKAGE_NAME.match(name):
            raise RejectedError(f"Paket adı İzibiz'in beklediği biçimde değil (VKN-YYYYAA-ŞŞŞŞ.zip): {name}")
        if not Path(package.path).is_file():
            raise TargetError(f"Gönderilecek paket bulunamadı: {package.path}")
        marker = f"@@CONTENT-{uuid.uuid4().hex}@@"
        bodies: list[StreamBody] = []

        def make_body(sid: str) -> StreamBody:
            env = self._envelope(self.ns, "ArchiveELedgerRequest", sid, [("FILENAME", name), ("CONTENT", marker)])
            prefix, suffix = self._serialize(env).split(marker.encode(), 1)
            bodies.append(StreamBody(prefix, package.path, suffix))
            return bodies[-1]

        reader, err = self._call("ArchiveELedger", make_body)
        if err is None:
            sent = bodies[-1].sha256.hexdigest()
            if sent != package.sha256:
                raise TargetError(f"{name} gönderilirken dosya değişmiş; paket yeniden oluşturulup "
                                  "gönderilmeden önce İzibiz'deki kopya iptal edilmeli.")
            v = reader.values
            return Receipt(state=ACCEPTED, reference=v.get("INTL_TXN_ID", ""),
                           message="İzibiz paketi aldı; saklandığı Durum Sorgula ile doğrulanacak.",
                           extra={"description": description, "client_txn_id": v.get("CLIENT_TXN_ID", ""),
                                  "filename": name})
        # a refusal may mean "this period is already stored": look at what is there
        held = self.query(key)
        if held.state == STORED and held.sha256 == package.sha256:
            held.message = "Bu paket İzibiz'de zaten saklanıyor."
            return held
        if held.state in (STORED, ACCEPTED):
            raise RejectedError(
                f"{month_label(key.period)} dönemi İzibiz'de farklı bir paketle zaten saklanıyor; bir dönem "
                f"bir kez saklanır, yeni paket gönderilmeden önce iptal edilmeli. (İzibiz: {self._clean(err[1])})")
        raise self._rejected(key, err[1])

    def _get(self, key: MonthKey, write: Callable[[bytes], None]):
        def body(sid):
            return self._serialize(self._envelope(self.ns, "GetELedgerRequest", sid,
                                                  [("DONEM", self._donem(key)), ("VKN", key.vkn)]))
        return self._call("GetELedger", body, "GEN_ARCHIVE_DOC", lambda: Base64Sink(write))

    def _status(self, key: MonthKey) -> list[dict]:
        def body(sid):
            return self._serialize(self._envelope(self.ns, "GetELedgerStatusRequest", sid,
                                                  [("PERIOD", self._donem(key)), ("IDENTIFIER", key.vkn)]))
        reader, err = self._call("GetELedgerStatus", body)
        if err:
            return []
        return [e for e in reader.ledgers
                if e.get("PERIOD", self._donem(key)).replace("-", "") == self._donem(key)
                and e.get("IDENTIFIER", key.vkn) == key.vkn]

    def query(self, key: MonthKey) -> Receipt:
        hasher = hashlib.sha256()
        total = [0]

        def write(data: bytes):
            hasher.update(data)
            total[0] += len(data)

        reader, err = self._get(key, write)
        if err is None and reader.streamed and total[0] > 0:
            return Receipt(state=STORED, reference=reader.values.get("INTL_TXN_ID", ""), sha256=hasher.hexdigest(),
                           message="İzibiz'de saklanan paket geri alınıp doğrulandı.",
                           extra={"size": total[0]})
        ledgers = self._status(key)
        if ledgers:
            desc = ledgers[0].get("GIB_ARCHIVE_STATUS_DESC", "")
            return Receipt(state=ACCEPTED, message="İzibiz paketi işliyor; henüz geri alınamıyor."
                           + (f" (İzibiz: {self._clean(desc)})" if desc else ""),
                           extra={"status": ledgers[0]})
        note = f" (İzibiz: {self._clean(err[1])})" if err else ""
        return Receipt(state=MISSING, message=f"İzibiz'de bu aya ait paket yok.{note}")

    def fetch(self, key: MonthKey, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as out:
            reader, err = self._get(key, out.write)
            if err is not None or not reader.streamed or out.tell() == 0:
                text = self._clean(err[1]) if err else "paket boş döndü"
                raise TargetError(f"{key.package_name} İzibiz'den alınamadı: {text}")
        return dest

    def cancel(self, key: MonthKey) -> Receipt:
        def body(sid):
            return self._serialize(self._envelope(self.ns, "CancelELedgerRequest", sid,
                                                  [("DONEM", self._donem(key)), ("VKN", key.vkn)]))
        reader, err = self._call("CancelELedger", body)
        if err:
            raise RejectedError(f"İzibiz {month_label(key.period)} iptalini kabul etmedi: {self._clean(err[1])}")
        return Receipt(state=MISSING, reference=reader.values.get("INTL_TXN_ID", ""),
                       message=f"{month_label(key.period)} paketi İzibiz'de iptal edildi.")
