"""İzibiz e-Defter storage as a target, spoken as İzibiz's real WSDL/XSD contract says.

Sources, strongest first:
1. İzibiz's real interface files (WSDL + XSD of `AuthenticationWS` and `EIArchiveWS/EFaturaArchive`,
   as captured by İzibiz's own client repositories; a copy lives in `../shared/integrators/izibiz/`).
2. İzibiz's prose documentation (github.com/izibiz/api-documentation: "E-Dönüşüm Proxy" e-Defter
   methods, the common error-code table).
Where they differ, the WSDL/XSD wins.

Two services, two endpoints, two namespaces (from the WSDLs):
- authentication: `Login`, `Logout`; elements `LoginRequest` / `LogoutRequest` in
  `http://schemas.i2i.com/ei/wsdl`; documented path `/AuthenticationWS`.
- archive: `GetELedgerStatus`, `CancelEDefter`, `GetGenericArchiveByPeriod` (and `ArchiveELedger`,
  see below); elements in `http://schemas.i2i.com/ei/wsdl/archive`; documented path
  `/EIArchiveWS/EFaturaArchive`.
Every operation is document/literal SOAP 1.1 with `soapAction=""`, so every request carries the HTTP
header `SOAPAction: ""`. Children of the operation element are unqualified.

The Hedefler sheet's Adres cell (one cell; the workbook layout is unchanged) accepts:
1. a server address, e.g. `https://sunucu.ornek.com.tr`: the documented paths are added
   (`…/AuthenticationWS` and `…/EIArchiveWS/EFaturaArchive`);
2. two addresses separated by spaces (or `;`): first the authentication service, then the archive
   service, each used as written;
3. the full address of one service (path ending in `/AuthenticationWS` or
   `/EIArchiveWS/EFaturaArchive`, a trailing `?wsdl` is dropped): the other is taken from the same
   server and prefix;
4. one address with any other path: every operation is posted there (İzibiz's "E-Dönüşüm Proxy",
   which the prose documentation describes as one service holding Login and the e-Defter methods);
5. `test`: İzibiz's documented test endpoints (`https://efaturatest.izibiz.com.tr/…`, as recorded in
   the WSDLs' `soap:address`). No production address is published (the service is enabled per
   customer), so there is no production default: İzibiz gives it.
Addresses must be https (plain http only to this computer) and carry no user name or password.

Messages, per the XSDs:
- `REQUEST_HEADER` is an ordered sequence; this client sends SESSION_ID, CLIENT_TXN_ID (fresh for
  every call, for İzibiz support), APPLICATION_NAME, CHANNEL_NAME, in that (the XSD's) order.
  Login sends SESSION_ID `-1` (prose documentation).
- `GetELedgerStatusRequest`: PERIOD (YYYYMM), IDENTIFIER (VKN/TCKN); PART_NO left out. Answer:
  ELEDGER entries (PART_NO, IDENTIFIER, PERIOD, GIB_ARCHIVE_STATUS, GIB_ARCHIVE_STATUS_DESC, …).
- `CancelEDefterRequest`: CancelEDefterContent (VKN, DONEM, SUBE_NO). SUBE_NO is optional in the XSD
  and is sent for a branch (Şube No other than `0000`), left out for a firm without branches.
- `GetGenericArchiveByPeriodRequest`: DONEM, VKN -> GEN_ARCHIVE_DOC (base64 zip). The XSD has no
  SUBE_NO here, so a VKN keeping e-Defter per branch cannot name the branch when reading back: what
  comes back is compared by sha256 with what was sent, so another branch's package can never be
  taken for this one (it shows as a different package, never as `Yedeklendi`). `GenericRead` does
  take SUBE_NO but reads single documents by DOC_NAME, not the package; it is not used.
- Errors: `ERROR_TYPE` inside a response, or a SOAP Fault whose detail holds `RequestFault`
  (REQUEST_ERRORType: INTL_TXN_ID, ERROR_CODE, ERROR_SHORT_DES, ERROR_LONG_DES?). Both spellings are
  read: `ERROR_SHORT_DES` / `ERROR_LONG_DES` (XSD, what the service sends) and `ERROR_SHORT_DESC` /
  `ERROR_LONG_DESC` (prose documentation). `RETURN_CODE` below 0 is a failure; above 0 is success
  with warnings (XSD annotation).

Where the real contract is silent (assumptions, none tried against the live service):
- `ArchiveELedger` (upload; FILENAME = `VKN-YYYYMM-ŞŞŞŞ.zip`, CONTENT = base64 zip) is documented in
  prose only, as a method of the "E-Dönüşüm Proxy"; no public WSDL or XSD declares it. Assumed:
  element `ArchiveELedgerRequest` (REQUEST_HEADER, FILENAME, CONTENT), answered by
  `ArchiveELedgerResponse` (REQUEST_RETURN / ERROR_TYPE), in the archive namespace, posted to the
  archive endpoint. The real `ArchiveGenericDocument` is not used: its required ARCHIVE_TYPE,
  FILE_TYPE, PARSE_FLAG and OVERRIDE have no documented values for e-Defter.
- `GetELedger` and `CancelELedger` of the prose are not used: the WSDL declares
  `GetGenericArchiveByPeriod` (the same DONEM, VKN -> GEN_ARCHIVE_DOC) and `CancelEDefter` (the same
  VKN, DONEM, plus SUBE_NO) on the archive service, and the real contract wins.
- An expired session: the XSD only says ERROR_CODE is an int. The prose's common error table lists
  `10004 Geçersiz oturum. Lütfen tekrar oturum oluşturunuz ve tekrar deneyiniz`. So an error with
  ERROR_CODE 10004, or whose ERROR_SHORT_DES / ERROR_LONG_DES / faultstring speaks of an
  "oturum"/"session", is taken as an expired session: log in again once and repeat the call; a
  second refusal is a credentials error. (Sessions last 8 hours per the prose.)
- "Nothing stored": GetGenericArchiveByPeriod answering ERROR_CODE 10008 (`Belirtilen kriterlere
  uygun kayıt bulunamamıştır`, the prose table) or an error text saying "bulunam…". Any other error
  while reading back is reported as such (the month's state is unknown), never as "no package".
- A period is stored once; a second ArchiveELedger is refused. The refusal is explained by reading
  back what is stored: the same bytes give the stored receipt, other bytes ask to cancel first.
- No hash is published: `query` reads the stored package back and hashes it. That proves the bytes
  only if İzibiz returns the zip exactly as sent (assumed). GetELedgerStatus is used only when
  nothing can be read back, to tell "still being processed" (ACCEPTED) from "not there".
- The package description has no field in any message: it stays in the receipt only.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import requests
from lxml import etree
from urllib3.exceptions import NameResolutionError, NewConnectionError

from edefter_helper.engine.model import MonthKey
from edefter_helper.fsutil import atomic_write
from edefter_helper.status import month_label
from edefter_helper.targets.base import (
    ACCEPTED, MISSING, STORED, CredentialsError, Package, Receipt, RejectedError, Target,
    TargetError, TransientError,
)
from edefter_helper.targets import base as _base
from edefter_helper.targets.retry import parse_retry_after

# Being added to targets.base in parallel (a settings problem reported once per run; nobody answering
# at the address): used when present, the plain kinds otherwise.
ConfigurationError = getattr(_base, "ConfigurationError", TargetError)
UnreachableError = getattr(_base, "UnreachableError", TransientError)

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_AUTH = "http://schemas.i2i.com/ei/wsdl"  # AuthenticationService.wsdl targetNamespace
NS_ARCHIVE = "http://schemas.i2i.com/ei/wsdl/archive"  # EFaturaArchive.wsdl targetNamespace

AUTH_PATH = "/AuthenticationWS"
ARCHIVE_PATH = "/EIArchiveWS/EFaturaArchive"
TEST_SERVER = "https://efaturatest.izibiz.com.tr"  # the WSDLs' soap:address and the docs' URL table

# REQUEST_HEADERType's xs:sequence (archive/EFaturaArchive3.xsd; auth/AuthenticationWS1.xsd is the
# same without API_KEY). Header children are always written in this order.
HEADER_ORDER = ("SESSION_ID", "CLIENT_TXN_ID", "INTL_TXN_ID", "INTL_PARENT_TXN_ID", "ACTION_DATE",
                "CHANGE_INFO", "REASON", "APPLICATION_NAME", "HOSTNAME", "CHANNEL_NAME",
                "SIMULATION_FLAG", "COMPRESSED", "ATTRIBUTES", "API_KEY")

SESSION_EXPIRED_CODES = {"10004"}  # "Geçersiz oturum. Lütfen tekrar oturum oluşturunuz…" (prose table)
NOT_FOUND_CODES = {"10008"}  # "Belirtilen kriterlere uygun kayıt bulunamamıştır" (prose table)
SESSION_WORDS = ("oturum", "session")
NOT_FOUND_WORDS = ("bulunam",)  # bulunamadı / bulunamamıştır

CHUNK = 3 * 256 * 1024  # a multiple of 3: chunked base64 then equals base64 of the whole
READ_CHUNK = 64 * 1024
MAX_SMALL_TEXT = 64 * 1024  # any other element's text is capped: a hostile answer cannot fill memory
PACKAGE_NAME = re.compile(r"^\d{10,11}-\d{6}-\d{4}\.zip$")

ADDRESS_FORMS = (
    "Adres için kabul edilen biçimler: (1) sunucu adresi, ör. https://sunucu.ornek.com.tr "
    f"(kimlik doğrulama {AUTH_PATH}, arşiv {ARCHIVE_PATH} yolundan çağrılır); "
    "(2) boşlukla ayrılmış iki adres: önce kimlik doğrulama, sonra arşiv servisi; "
    f"(3) servislerden birinin tam adresi (…{AUTH_PATH} veya …{ARCHIVE_PATH}), diğeri aynı sunucudan "
    "alınır; (4) başka yollu tek adres: tüm işlemler o adrese (İzibiz E-Dönüşüm Proxy) gönderilir; "
    "(5) test: İzibiz'in test adresleri.")


@dataclass(frozen=True)
class Operation:
    """One SOAP operation: where it is posted and which element carries it."""

    name: str  # WSDL operation name
    element: str  # the request element, in `namespace`
    service: str  # "auth" or "archive"
    prose_only: bool = False  # in no public WSDL: shape taken from the prose documentation

    @property
    def namespace(self) -> str:
        return NS_AUTH if self.service == "auth" else NS_ARCHIVE


LOGIN = Operation("Login", "LoginRequest", "auth")
LOGOUT = Operation("Logout", "LogoutRequest", "auth")
GET_STATUS = Operation("GetELedgerStatus", "GetELedgerStatusRequest", "archive")
CANCEL = Operation("CancelEDefter", "CancelEDefterRequest", "archive")
READ_BACK = Operation("GetGenericArchiveByPeriod", "GetGenericArchiveByPeriodRequest", "archive")
ARCHIVE = Operation("ArchiveELedger", "ArchiveELedgerRequest", "archive", prose_only=True)


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
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - an impossible port raises here, not later in requests
    except ValueError:
        shown = "" if "@" in url else f": {url}"  # a mistyped user:password@ stays out of messages
        raise ConfigurationError(f"İzibiz adresi okunamadı{shown}. {ADDRESS_FORMS}") from None
    if parts.username or parts.password:
        raise ConfigurationError("İzibiz adresine kullanıcı adı veya şifre yazılmamalı; "
                                 "şifre anahtar zincirinde tutulur.")
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url  # tests and local proxies only
    raise ConfigurationError(f"İzibiz adresi https:// ile başlamalı (şifresiz http yalnızca bu bilgisayar için kabul "
                      f"edilir): {url}. {ADDRESS_FORMS}")


@dataclass(frozen=True)
class Endpoints:
    auth: str
    archive: str


def _service_path(path: str) -> str | None:
    low = path.rstrip("/").casefold()
    for known in (AUTH_PATH, ARCHIVE_PATH):
        if low.endswith(known.casefold()):
            return known
    return None


def _clean_url(url: str) -> str:
    """check_url, then drop a trailing `?wsdl` (copied from the documentation) and any fragment."""
    parts = urlsplit(check_url(url))
    query = "" if parts.query.casefold() == "wsdl" else parts.query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def parse_address(address: str) -> Endpoints:
    """The Hedefler sheet's Adres cell -> the authentication and archive endpoints (module docstring)."""
    text = (address or "").strip()
    if not text:
        raise ConfigurationError(f"İzibiz hedefinin Adres alanı boş. {ADDRESS_FORMS}")
    if text.casefold() == "test":
        return Endpoints(TEST_SERVER + AUTH_PATH, TEST_SERVER + ARCHIVE_PATH)
    words = text.replace(";", " ").split()
    if len(words) > 2:
        raise ConfigurationError(f"İzibiz Adres alanında en çok iki adres olabilir ({len(words)} bulundu). "
                                 f"{ADDRESS_FORMS}")
    if len(words) == 2:
        first, second = (_clean_url(w) for w in words)
        if (_service_path(urlsplit(first).path), _service_path(urlsplit(second).path)) == (ARCHIVE_PATH, AUTH_PATH):
            first, second = second, first  # both named by their documented paths: the order is clear
        return Endpoints(first, second)
    url = _clean_url(words[0])
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path:
        root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return Endpoints(root + AUTH_PATH, root + ARCHIVE_PATH)
    known = _service_path(path)
    if known is None:
        return Endpoints(url, url)  # one proxy endpoint for every operation
    prefix = urlunsplit((parts.scheme, parts.netloc, path[: len(path) - len(known)], "", ""))
    return Endpoints(url if known == AUTH_PATH else prefix + AUTH_PATH,
                     url if known == ARCHIVE_PATH else prefix + ARCHIVE_PATH)


@dataclass(frozen=True)
class IzibizError:
    """An error answer, read from the real (…_DES) or the documented (…_DESC) field names."""

    code: str
    short: str
    long: str = ""
    fault: str = ""  # faultstring of a SOAP Fault

    @property
    def text(self) -> str:
        parts = [p for p in (self.short, self.long) if p]
        if len(parts) == 2 and (parts[1] in parts[0]):
            parts = parts[:1]
        if not parts and self.fault:
            parts = [self.fault]
        text = " — ".join(parts) or "ayrıntı verilmedi"
        return f"{text} (hata kodu {self.code})" if self.code else text

    def _words(self) -> str:
        return " ".join((self.short, self.long, self.fault)).casefold()

    @property
    def session_expired(self) -> bool:
        return self.code in SESSION_EXPIRED_CODES or any(w in self._words() for w in SESSION_WORDS)

    @property
    def not_found(self) -> bool:
        return self.code in NOT_FOUND_CODES or any(w in self._words() for w in NOT_FOUND_WORDS)


class IzibizTarget(Target):
    kind = "izibiz"

    def __init__(self, address: str, user: str, password: str, app_name: str = "edefter-yedekleme",
                 timeout: float | tuple = (15, 300), session: requests.Session | None = None):
        """`address` is the Hedefler sheet's Adres cell; the accepted forms are in the module docstring."""
        self.endpoints = parse_address(address)
        self.user = user
        self._password = password
        self.app_name = app_name
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.verify = True  # never turned off: the package and the password travel here
        self.session_id: str | None = None
        self.logins = 0

    @property
    def url(self) -> str:
        """Both endpoints, as form (2) of the Adres cell would write them."""
        return f"{self.endpoints.auth} {self.endpoints.archive}"

    def __repr__(self) -> str:  # keeps the password out of tracebacks and logs
        return f"IzibizTarget(auth={self.endpoints.auth!r}, archive={self.endpoints.archive!r}, user={self.user!r})"

    # ---- messages -------------------------------------------------------------------------

    def _header(self, session_id: str) -> dict[str, str]:
        return {"SESSION_ID": session_id, "CLIENT_TXN_ID": str(uuid.uuid4()),
                "APPLICATION_NAME": self.app_name, "CHANNEL_NAME": self.app_name}

    def _envelope(self, op: Operation, session_id: str, fields: list):
        """fields: (name, text) pairs in XSD order; a list as the value makes a nested element."""
        env = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap={"soapenv": NS_SOAP, "ns": op.namespace})
        etree.SubElement(env, f"{{{NS_SOAP}}}Header")
        body = etree.SubElement(env, f"{{{NS_SOAP}}}Body")
        element = etree.SubElement(body, f"{{{op.namespace}}}{op.element}")
        header = etree.SubElement(element, "REQUEST_HEADER")
        values = self._header(session_id)
        for name in HEADER_ORDER:  # the XSD's sequence, whatever order _header lists them in
            if values.get(name):
                etree.SubElement(header, name).text = values[name]
        self._fields(element, fields)
        return env

    def _fields(self, parent, fields: list) -> None:
        for name, value in fields:
            child = etree.SubElement(parent, name)
            if isinstance(value, list):
                self._fields(child, value)
            else:
                child.text = value

    def _serialize(self, env) -> bytes:
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")

    def _clean(self, text: str) -> str:
        """Server text for a message: short, and never the password even if a server echoes it."""
        text = " ".join((text or "").split())[:300]
        if self._password:
            text = text.replace(self._password, "***")
        return text

    # ---- transport ------------------------------------------------------------------------

    def _post(self, op: Operation, body, stream_element: str | None = None,
              sink: Base64Sink | None = None) -> SoapReader:
        url = self.endpoints.auth if op.service == "auth" else self.endpoints.archive
        service = "kimlik doğrulama" if op.service == "auth" else "arşiv"
        # every operation of both WSDLs declares soapAction="": the header is two quote marks
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
        try:
            resp = self.http.post(url, data=body, headers=headers, timeout=self.timeout,
                                  stream=True, verify=True, allow_redirects=False)
        except requests.exceptions.SSLError as exc:  # permanent: retrying cannot fix a certificate
            text = str(exc)
            if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
                raise TargetError(f"İzibiz adresi https ile başlıyor ama sunucu TLS konuşmuyor ({url}).") from None
            raise TargetError(f"İzibiz sunucusunun TLS sertifikası doğrulanamadı ({url}); "
                              "bağlantı kurulmadı.") from None
        except requests.exceptions.Timeout as exc:
            raise TransientError(f"İzibiz {service} servisi zamanında yanıt vermedi ({type(exc).__name__}).") from None
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else None
            reason = getattr(reason, "reason", reason)
            if isinstance(reason, NewConnectionError):  # refused, or the name does not resolve
                why = "sunucu adı çözümlenemedi" if isinstance(reason, NameResolutionError) else "bağlantı reddedildi"
                raise UnreachableError(f"İzibiz {service} servisine ulaşılamıyor ({url}): {why}.") from None
            raise TransientError(f"İzibiz {service} servisiyle bağlantı koptu ({type(exc).__name__}).") from None
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
                raise TargetError(f"İzibiz {service} servisi ({url}) {op.name} isteğini kabul etmedi "
                                  f"(HTTP {status}); Hedefler sayfasındaki Adres yanlış olabilir. {ADDRESS_FORMS}")
            try:
                reader = read_soap(resp.iter_content(READ_CHUNK), stream_element, sink)
            except SoapReadError:
                if status == 500:
                    raise TransientError("İzibiz sunucu hatası (HTTP 500).", status=500) from None
                raise TargetError(f"İzibiz {service} servisinden ({url}) anlaşılamayan bir yanıt geldi; "
                                  f"Adres yanlış olabilir. {ADDRESS_FORMS}") from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                raise TransientError(f"İzibiz yanıtı yarıda kesildi ({type(exc).__name__}).") from None
        return reader

    @staticmethod
    def _error(reader: SoapReader) -> IzibizError | None:
        """The error an answer carries (ERROR_TYPE, a SOAP Fault, a negative RETURN_CODE), else None."""
        v = reader.values
        short = v.get("ERROR_SHORT_DES") or v.get("ERROR_SHORT_DESC") or ""  # XSD, then prose spelling
        long = v.get("ERROR_LONG_DES") or v.get("ERROR_LONG_DESC") or ""
        if reader.fault or "ERROR_TYPE" in reader.seen or short or long or "ERROR_CODE" in v:
            return IzibizError(code=v.get("ERROR_CODE", "") or "", short=short, long=long,
                               fault=v.get("faultstring", "") if reader.fault else "")
        code = v.get("RETURN_CODE")
        if code is not None:
            try:
                failed = int(code) < 0  # XSD: 0 success, negative failure, positive success with warnings
            except ValueError:
                failed = True
            if failed:
                return IzibizError(code=code, short=f"dönüş kodu {code}")
        return None

    # ---- session --------------------------------------------------------------------------

    def login(self) -> str:
        env = self._envelope(LOGIN, "-1", [("USER_NAME", self.user), ("PASSWORD", self._password)])
        reader = self._post(LOGIN, self._serialize(env))
        err = self._error(reader)
        if err:
            raise CredentialsError(
                f"İzibiz girişi başarısız ('{self.user}'): {self._clean(err.text)}. "
                "Kullanıcı adı ve şifre kontrol edilmeli.")
        sid = reader.values.get("SESSION_ID")
        if not sid or sid == "-1":
            raise CredentialsError(f"İzibiz girişi başarısız ('{self.user}'): oturum numarası dönmedi.")
        self.session_id = sid
        self.logins += 1
        return sid

    def _call(self, op: Operation, make_body: Callable[[str], object],
              stream_element: str | None = None, make_sink: Callable[[], Base64Sink] | None = None
              ) -> tuple[SoapReader, IzibizError | None]:
        """Call with the session; on an expired session log in again once and repeat."""
        for attempt in (1, 2):
            if self.session_id is None:
                self.login()
            sink = make_sink() if make_sink else None
            reader = self._post(op, make_body(self.session_id), stream_element, sink)
            err = self._error(reader)
            if err is None or not err.session_expired:
                return reader, err
            self.session_id = None
            if attempt == 2:
                raise CredentialsError(f"İzibiz oturumu yeniden açıldı ama {op.name} için kabul edilmedi: "
                                       f"{self._clean(err.text)}")
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.session_id is not None:
            sid, self.session_id = self.session_id, None
            try:
                self._post(LOGOUT, self._serialize(self._envelope(LOGOUT, sid, [])))
            except TargetError:
                pass  # the session ends by itself after 8 hours
        self.http.close()

    # ---- Target ---------------------------------------------------------------------------

    @staticmethod
    def _donem(key: MonthKey) -> str:
        return key.period.replace("-", "")

    def _rejected(self, key: MonthKey, err: IzibizError) -> RejectedError:
        return RejectedError(f"İzibiz {month_label(key.period)} paketini reddetti: {self._clean(err.text)}")

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
            env = self._envelope(ARCHIVE, sid, [("FILENAME", name), ("CONTENT", marker)])
            prefix, suffix = self._serialize(env).split(marker.encode(), 1)
            bodies.append(StreamBody(prefix, package.path, suffix))
            return bodies[-1]

        reader, err = self._call(ARCHIVE, make_body)
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
        try:
            held = self.query(key)
        except CredentialsError:
            raise
        except TargetError:
            raise self._rejected(key, err) from None
        if held.state == STORED and held.sha256 == package.sha256:
            held.message = "Bu paket İzibiz'de zaten saklanıyor."
            return held
        if held.state in (STORED, ACCEPTED):
            raise RejectedError(
                f"{month_label(key.period)} dönemi İzibiz'de farklı bir paketle zaten saklanıyor; bir dönem "
                f"bir kez saklanır, yeni paket gönderilmeden önce iptal edilmeli. (İzibiz: {self._clean(err.text)})")
        raise self._rejected(key, err)

    def _read_back(self, key: MonthKey, write: Callable[[bytes], None]):
        def body(sid):
            return self._serialize(self._envelope(READ_BACK, sid, [("DONEM", self._donem(key)), ("VKN", key.vkn)]))
        return self._call(READ_BACK, body, "GEN_ARCHIVE_DOC", lambda: Base64Sink(write))

    def _status(self, key: MonthKey) -> tuple[list[dict], IzibizError | None]:
        def body(sid):
            return self._serialize(self._envelope(GET_STATUS, sid,
                                                  [("PERIOD", self._donem(key)), ("IDENTIFIER", key.vkn)]))
        reader, err = self._call(GET_STATUS, body)
        if err:
            return [], err
        return [e for e in reader.ledgers
                if e.get("PERIOD", self._donem(key)).replace("-", "") == self._donem(key)
                and e.get("IDENTIFIER", key.vkn) == key.vkn], None

    def query(self, key: MonthKey) -> Receipt:
        hasher = hashlib.sha256()
        total = [0]

        def write(data: bytes):
            hasher.update(data)
            total[0] += len(data)

        reader, err = self._read_back(key, write)
        if err is None and reader.streamed and total[0] > 0:
            return self._stored(reader, hasher, total[0])
        return self._not_read_back(key, err)

    def fetch_stored(self, key: MonthKey, dest: Path) -> Receipt:
        """query and fetch with one download: the package read back is hashed on its way into dest."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        total = [0]
        try:
            with atomic_write(dest) as out:
                def write(data: bytes):
                    hasher.update(data)
                    total[0] += len(data)
                    out.write(data)

                reader, err = self._read_back(key, write)
                if not (err is None and reader.streamed and total[0] > 0):
                    raise _NotReadBack(err)  # dest is left as it was
        except _NotReadBack as nothing:
            return self._not_read_back(key, nothing.err)
        return self._stored(reader, hasher, total[0])

    @staticmethod
    def _stored(reader, hasher, size: int) -> Receipt:
        return Receipt(state=STORED, reference=reader.values.get("INTL_TXN_ID", ""), sha256=hasher.hexdigest(),
                       message="İzibiz'de saklanan paket geri alınıp doğrulandı.", extra={"size": size})

    def _not_read_back(self, key: MonthKey, err: IzibizError | None) -> Receipt:
        """The month's state when its package could not be read back: ACCEPTED or MISSING, or raises."""
        label = month_label(key.period)
        if err is not None and not err.not_found:
            # not "nothing there": the month's state is unknown, and saying "no package" could send twice
            raise TargetError(f"İzibiz {label} paketini geri veremedi, ayın durumu bilinmiyor: "
                              f"{self._clean(err.text)}")
        ledgers, status_err = self._status(key)
        if ledgers:
            desc = ledgers[0].get("GIB_ARCHIVE_STATUS_DESC", "")
            return Receipt(state=ACCEPTED, message="İzibiz paketi işliyor; henüz geri alınamıyor."
                           + (f" (İzibiz: {self._clean(desc)})" if desc else ""),
                           extra={"status": ledgers[0]})
        note = f" (İzibiz: {self._clean(err.text)})" if err else ""
        if status_err is not None:
            note += f" (Durum sorgusu yanıtı: {self._clean(status_err.text)})"
        return Receipt(state=MISSING, message=f"İzibiz'de bu aya ait paket yok.{note}")

    def fetch(self, key: MonthKey, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as out:
            reader, err = self._read_back(key, out.write)
            if err is not None or not reader.streamed or out.tell() == 0:
                text = self._clean(err.text) if err else "paket boş döndü"
                raise TargetError(f"{key.package_name} İzibiz'den alınamadı: {text}")
        return dest

    def cancel(self, key: MonthKey) -> Receipt:
        content = [("VKN", key.vkn), ("DONEM", self._donem(key))]
        if key.branch and key.branch != "0000":
            content.append(("SUBE_NO", key.branch))  # optional in the XSD; 0000 = no branch

        def body(sid):
            return self._serialize(self._envelope(CANCEL, sid, [("CancelEDefterContent", content)]))
        reader, err = self._call(CANCEL, body)
        if err:
            raise RejectedError(f"İzibiz {month_label(key.period)} iptalini kabul etmedi: {self._clean(err.text)}")
        return Receipt(state=MISSING, reference=reader.values.get("INTL_TXN_ID", ""),
                       message=f"{month_label(key.period)} paketi İzibiz'de iptal edildi.")


class _NotReadBack(Exception):
    def __init__(self, err):
        super().__init__()
        self.err = err


def _open(address: str, user: str, password: str | None, timeout=None) -> "IzibizTarget":
    return IzibizTarget(address, user, password, **({"timeout": timeout} if timeout else {}))


from edefter_helper.targets.registry import TargetKind, register  # noqa: E402  (registers this kind)

register(TargetKind("izibiz", "İzibiz e-Defter Saklama", needs_password=True,
                    address_help="İzibiz'in adresi (yetkilendirme ve arşiv servisleri; 'test' = İzibiz test ortamı)",
                    open=_open))
