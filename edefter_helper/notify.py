"""Notifications: tell people what happened, never fail silently.

One concept: an event (a month backed up, a month that could not be, a target nobody answers at,
local files changed, the dead-man alarm, the daily digest) becomes one message per state change,
is written to a queue (SQLite, WAL) for every channel that wants it, and is delivered now; what
cannot be delivered stays queued, is retried with backoff and is listed in the next digest.

Channels (the ``Bildirimler`` sheet: Kanal, Adres, Olaylar, Firmalar, Kullanıcı Adı, Gönderen)
------------------------------------------------------------------------------------------------
Kanal ``e-posta`` — Adres: ``SUNUCU[:PORT] ALICI[, ALICI ...]``::

    smtp.firma.com.tr:587 muhasebe@firma.com.tr, mali.musavir@ornek.com.tr

    Önce posta sunucusu (port yazılmazsa 587), bir boşluk, sonra alıcılar (virgül, noktalı virgül
    ya da boşlukla ayrılır). Bağlantı STARTTLS ile şifrelenir; sunucu STARTTLS sunmazsa ileti
    gönderilmez (şifre hiçbir zaman açık bağlantıdan gitmez). Port 465 yazılırsa bağlantı baştan
    TLS'tir (SMTPS). Kullanıcı Adı sütunu SMTP kullanıcısıdır; şifresi Excel'de değil işletim
    sisteminin anahtar zincirinde durur:
        edefter credentials set --target bildirim:smtp.firma.com.tr --user KULLANICI
    Kullanıcı Adı boşsa oturum açılmadan gönderilir (yalnızca IP ile izin veren iç sunucular).
    Gönderen boşsa ve Kullanıcı Adı bir e-posta adresiyse gönderen odur.

Kanal ``teams`` — Adres: Teams'teki Workflows'un verdiği adres, olduğu gibi::

    https://prod-12.westeurope.logic.azure.com:443/workflows/3f2a.../triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=...

    Teams'te kanalın ⋯ menüsü → Workflows → "Post to a channel when a webhook request is received"
    şablonu (Türkçe arayüzde benzer adla); oluşan adres kopyalanır (Power Automate'in
    ``.../powerautomate/automations/direct/workflows/...`` adresi de olur). Apprise'ın kısa biçimi
    ``workflows://SUNUCU/KİMLİK/İMZA``
    da kabul edilir. Eski "Gelen Web Kancası" (Office 365 connector, ``webhook.office.com``)
    adresleri Microsoft tarafından kapatıldı; bunlar açık bir hata ile reddedilir.

Kanal ``webhook`` — Adres: JSON alacak herhangi bir ``https://`` (ya da iç ağda ``http://``) adres::

    https://otomasyon.firma.com.tr/hooks/edefter?token=...

    Her olay bir POST'tur: apprise'ın JSON alanları (version, title, message, type: success /
    failure / warning / info) ve olayın kendisi: event, firm, vkn, branch, period, target,
    files [{file, label}], id (yeniden denemede aynı kalır; alan taraf tekrarı bununla ayıklar).

Olaylar boşsa hepsi; Firmalar (VKN'ler) boşsa bütün firmalar. Bir firmaya ait olmayan olaylar
(hedefe ulaşılamıyor, ölü adam alarmı, özet) firma süzgecinden bağımsız herkese gider.

One message per state change: a month's (VKN, branch, period) state is the last event kind told
about it; the same kind again is not told, whatever its words. An event about no month is keyed by
(kind, target, VKN, branch): "hedefe-ulasilamiyor" is told once, and again only after the target
answered — a "yedeklendi" there (or anywhere, when either names no target) or ``target_ok(target)``.
The dead-man alarm fires once per silence (see ``Notifier.dead_man``). Several processes may share
one queue file: the state check is one transaction, and a delivery is claimed before it is sent.

Secrets: the SMTP password is read from the keyring at the moment of sending and exists nowhere
else; a Teams/webhook URL (its signature, tokens) is kept only in the in-memory Channel. The queue
stores a channel by a hash and a label with its host only; errors are classified into Turkish
reasons and scrubbed of every secret the channel knows; apprise's own log (whose debug lines name
URLs, whose trace lines name passwords) does not propagate to the application's handlers, and
urllib3's request lines (which carry a Workflows signature) are masked by a logging filter.

Libraries: apprise delivers Teams Workflows (``workflows://``) and JSON webhooks (``json://``,
``jsons://``). E-mail uses the standard library's smtplib, because apprise's e-mail plugin cannot
(a) log in with a non-ASCII password — smtplib encodes AUTH as ASCII, and the UnicodeEncodeError
escapes apprise carrying the password in its repr; a Turkish password (ş, ğ, ı) is ordinary here —,
(b) trust an extra CA file for one server (it builds ``ssl.create_default_context()`` with no
option), nor (c) say why a send failed (it returns a bool), and it sends one copy per recipient,
so a retry after one refused recipient would send the others a second copy. Here one message
goes to all recipients in one SMTP transaction, AUTH PLAIN/LOGIN is UTF-8 (RFC 4616).

HTTPS channels trust certifi's list (requests), or the file named by ``REQUESTS_CA_BUNDLE``;
the e-mail server is checked against the operating system's store plus ``ca_file`` when given.
Certificate verification is never turned off.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
import smtplib
import socket
import sqlite3
import ssl
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.charset import QP, Charset
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit

from edefter_helper import status as S
from edefter_helper.engine.names import KINDS, NO_BRANCH, parse_name, valid_period

log = logging.getLogger(__name__)

EVENTS = {"yedeklendi", "yedeklenemedi", "hedefe-ulasilamiyor", "yerel-dosya", "olu-adam", "ozet"}

# the event as a short Turkish phrase (digest lines, webhook readers)
EVENT_WORDS_TR = {
    "yedeklendi": "Yedeklendi",
    "yedeklenemedi": "Yedeklenemedi",
    "hedefe-ulasilamiyor": "Hedefe ulaşılamıyor",
    "yerel-dosya": "Yerel dosyalar değişti",
    "olu-adam": "Otomatik yedekleme durmuş olabilir",
    "ozet": "Günlük özet",
}

# the names the seed's information screen gives the files sent (engine.names.KIND_NAMES_TR words
# some of them differently: "Büyük Defter (Kebir)", "GİB onaylı Yevmiye Beratı")
FILE_NAMES_TR = {
    "Y": "Yevmiye Defteri",
    "K": "Kebir Defteri",
    "YB": "Yevmiye Beratı",
    "KB": "Kebir Beratı",
    "GIB-YB": "Yevmiye Beratı (GİB onaylı)",
    "GIB-KB": "Kebir Beratı (GİB onaylı)",
    "DR": "Defter Raporu",
}

CHANNEL_KINDS = ("e-posta", "teams", "webhook")
_KIND_ALIASES = {"e-posta": "e-posta", "eposta": "e-posta", "e-mail": "e-posta", "email": "e-posta",
                 "mail": "e-posta", "teams": "teams", "ms teams": "teams", "microsoft teams": "teams",
                 "webhook": "webhook", "json": "webhook", "web kancası": "webhook"}

# what the Adres column takes, per channel (for the sheet's help and error messages)
ADDRESS_FORMS_TR = {
    "e-posta": "SUNUCU[:PORT] ALICI[, ALICI ...] — örn. 'smtp.firma.com.tr:587 muhasebe@firma.com.tr'",
    "teams": "Teams Workflows'un verdiği https://… adresi (…/workflows/…/triggers/manual/paths/invoke?…&sig=…)",
    "webhook": "JSON alacak https:// adresi — örn. 'https://otomasyon.firma.com.tr/hooks/edefter'",
}

SMTP_DEFAULT_PORT = 587
SMTPS_PORT = 465
DEAD_MAN_DEFAULT_S = 26 * 3600
BACKOFF_FIRST_S = 60.0
BACKOFF_MAX_S = 3600.0
CLAIM_S = 600.0                    # a delivery claimed by a process that died is retried after this
FORGET_UNKNOWN_CHANNEL_S = 7 * 86400  # rows of a channel no longer configured are dropped after this
_DIGEST_MAX_LINES = 40


@dataclass
class Channel:
    """One row of the Bildirimler sheet. See the module docstring for the address forms."""

    kind: str            # "e-posta" | "teams" | "webhook"
    address: str
    events: set[str] = field(default_factory=set)  # subset of EVENTS; empty = all
    firms: set[str] = field(default_factory=set)   # VKNs; empty = all
    user: str = ""       # SMTP user (password in the keyring under target "bildirim:<host>")
    sender: str = ""     # From address for e-mail


@dataclass
class Event:
    kind: str            # one of EVENTS
    firm: str
    vkn: str
    branch: str
    period: str          # "" when not about one month (olu-adam, ozet, hedefe-ulasilamiyor)
    message: str         # Turkish sentence
    files: Sequence[str] = ()  # file names sent, for "yedeklendi"
    target: str = ""     # the Hedef concerned (hedefe-ulasilamiyor; a yedeklendi there clears it)


@dataclass(frozen=True)
class DueSoon:
    """A month whose GİB berat deadline is near and that GİB has not closed (radar.due_soon makes
    these from the scan, the journal and the deadline data), for the digest's per-Sorumlu list."""

    owner: str           # Sorumlu on Firmalar ("" = nobody named)
    firm: str
    vkn: str
    branch: str
    period: str
    due: str             # ISO date
    days: int            # days left (0 = today)
    detail: str          # the Takvim's detail: the due date with its reason, what is missing


class ChannelError(ValueError):
    """A channel whose settings cannot work; the Turkish message names no secret."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Failed(Exception):
    """One delivery attempt failed; `reason` is Turkish and secret-free."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Undelivered:
    channel: str         # label: kind and host, no secret
    title: str
    created: float
    attempts: int
    next_try: float
    last_error: str


# ---- addresses --------------------------------------------------------------------------------

def normalize_kind(kind: str) -> str:
    k = _KIND_ALIASES.get((kind or "").strip().lower())
    if not k:
        raise ChannelError(f"Bilinmeyen bildirim kanalı '{kind}': e-posta, teams ya da webhook olmalı.")
    return k


_EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


@dataclass(frozen=True)
class SmtpAddress:
    host: str
    port: int
    recipients: tuple[str, ...]

    @property
    def implicit_tls(self) -> bool:
        return self.port == SMTPS_PORT


def parse_email_address(address: str) -> SmtpAddress:
    """'smtp.firma.com.tr:587 a@firma.com.tr, b@firma.com.tr' -> SmtpAddress."""
    text = (address or "").strip()
    if text.lower().startswith(("smtp://", "mailto:")):
        raise ChannelError("E-posta adresi 'SUNUCU[:PORT] ALICI[, ALICI ...]' biçiminde yazılır, "
                           f"örn. {ADDRESS_FORMS_TR['e-posta'].split('örn. ')[1]}")
    server, _, rest = text.partition(" ")
    recipients = tuple(r for r in re.split(r"[\s,;]+", rest.strip()) if r)
    if not server or not recipients:
        raise ChannelError("E-posta kanalının adresinde sunucu ve en az bir alıcı olmalı: "
                           + ADDRESS_FORMS_TR["e-posta"])
    if "@" in server:
        raise ChannelError(f"E-posta kanalının adresi posta sunucusuyla başlamalı, '{server}' bir e-posta "
                           "adresi: " + ADDRESS_FORMS_TR["e-posta"])
    m = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::(?P<p6>\d+))?|(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d+))?",
                     server)
    if not m:
        raise ChannelError(f"Posta sunucusu adı '{server}' geçerli değil: " + ADDRESS_FORMS_TR["e-posta"])
    host = m["v6"] or m["host"]
    port = int(m["p6"] or m["port"] or SMTP_DEFAULT_PORT)
    if not 0 < port < 65536:
        raise ChannelError(f"Posta sunucusunun portu {port} geçerli değil.")
    bad = [r for r in recipients if not _EMAIL_RE.match(r)]
    if bad:
        raise ChannelError("Geçerli olmayan alıcı adresi: " + ", ".join(bad))
    return SmtpAddress(host, port, recipients)


_WORKFLOW_PATH = re.compile(
    r"^(?P<pa>/powerautomate/automations/direct(?:/cu/(?P<route>[0-9]+))?)?"
    r"/workflows/(?P<workflow>[A-Za-z0-9_-]+)/triggers/manual/paths/invoke/?$")


def teams_apprise_url(address: str) -> str:
    """The Workflows URL Teams gives (any host; apprise's own parser accepts only Microsoft's host names,
    so the local tests could not use the same form) as apprise's workflows:// URL."""
    text = (address or "").strip()
    low = text.lower()
    if low.startswith(("workflows://", "workflow://")):
        return text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if host.endswith("webhook.office.com") or "/webhookb2/" in parts.path or (
            host == "outlook.office.com" and parts.path.startswith("/webhook")):
        raise ChannelError("Bu adres Teams'in eski 'Gelen Web Kancası' (Office 365 connector) adresi; Microsoft "
                           "bu adresleri kapattı. Teams'te kanalın ⋯ menüsünden Workflows → 'Bir webhook isteği "
                           "alındığında kanala gönder' ile yeni bir adres oluşturup onu yazın.")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ChannelError("Teams kanalının adresi Workflows'un verdiği https:// adresi olmalı: "
                           + ADDRESS_FORMS_TR["teams"])
    m = _WORKFLOW_PATH.match(parts.path)
    query = dict(parse_qsl(parts.query))
    if not m or not query.get("sig"):
        raise ChannelError("Bu adres bir Teams Workflows adresine benzemiyor (…/workflows/…/triggers/manual/paths/"
                           "invoke?…&sig=… bekleniyor). Adresi Teams'teki Workflows'tan olduğu gibi kopyalayın.")
    if parts.scheme != "https":
        raise ChannelError("Teams Workflows adresi https:// ile başlamalı.")
    params = {"image": "no"}
    if m["pa"]:
        params["pa"] = "yes"
    if m["route"]:
        params["route"] = m["route"]
    if query.get("api-version"):
        params["ver"] = query["api-version"]
    port = f":{parts.port}" if parts.port else ""
    return (f"workflows://{parts.hostname}{port}/{m['workflow']}/{quote(query['sig'], safe='')}/?"
            + urlencode(params))


def webhook_apprise_url(address: str) -> str:
    """https://host/path?k=v -> jsons://host/path?-k=v (apprise sends '-' parameters as the query)."""
    text = (address or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelError("Webhook kanalının adresi http:// ya da https:// ile başlayan bir adres olmalı: "
                           + ADDRESS_FORMS_TR["webhook"])
    auth = ""
    if parts.username:
        auth = quote(parts.username, safe="")
        if parts.password:
            auth += ":" + quote(parts.password, safe="")
        auth += "@"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    query = urlencode([("-" + k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
                      + [("method", "POST")])
    schema = "jsons" if parts.scheme == "https" else "json"
    return f"{schema}://{auth}{host}{port}{parts.path or '/'}?{query}"


def _host_of(channel: Channel) -> str:
    """The one part of an address safe to show anywhere."""
    try:
        if normalize_kind(channel.kind) == "e-posta":
            return channel.address.strip().partition(" ")[0].rsplit(":", 1)[0] or "?"
        return urlsplit(channel.address.strip()).hostname or "?"
    except (ChannelError, ValueError):
        return "?"


def channel_label(channel: Channel) -> str:
    """How a channel is named in logs, the queue and the digest: its kind and host, never a secret."""
    try:
        kind = normalize_kind(channel.kind)
    except ChannelError:
        kind = (channel.kind or "?").strip()
    if kind == "e-posta":
        try:
            smtp = parse_email_address(channel.address)
            return f"e-posta {smtp.host} → {', '.join(smtp.recipients)}"
        except ChannelError:
            pass
    return f"{kind} ({_host_of(channel)})"


def channel_key(channel: Channel) -> str:
    raw = "\n".join((normalize_kind(channel.kind), channel.address.strip(), channel.user, channel.sender))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]


def check_channel(channel: Channel) -> str | None:
    """A Turkish sentence saying what is wrong with this channel's settings, or None."""
    try:
        _make_route(channel, ca_file=None, smtp_timeout=1)
    except ChannelError as exc:
        return exc.message
    return None


# ---- secrets and failure reasons --------------------------------------------------------------

def _scrub(text: str, secrets: Iterable[str]) -> str:
    text = re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", "<adres>", text or "")
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def _with_quoted(found: Iterable[str]) -> list[str]:
    found = [f for f in found if f]
    found += [quote(f, safe="") for f in found] + [quote(f) for f in found] + [quote_plus(f) for f in found]
    return list(dict.fromkeys(found))


def _looks_like_token(segment: str) -> bool:
    return len(segment) >= 16 or (len(segment) >= 8 and bool(re.search(r"\d", segment))
                                  and bool(re.search(r"[A-Za-z]", segment)))


def _url_secrets(address: str) -> list[str]:
    """What may authorize in a webhook URL: the whole URL, userinfo, query values, token-like path parts."""
    parts = urlsplit((address or "").strip())
    found = [address.strip(), parts.password or ""]
    found += [seg for seg in parts.path.split("/") if _looks_like_token(seg)]
    found += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
    return _with_quoted(found)


def _workflow_secrets(address: str, apprise_url: str) -> list[str]:
    """A Workflows URL authorizes by its signature; its workflow id is private too (apprise says so)."""
    found = [address.strip(), apprise_url]
    parts = urlsplit(apprise_url)
    found += [seg for seg in parts.path.split("/") if seg]  # workflows://host/WORKFLOW/SIGNATURE/
    return _with_quoted(found)


def _smtp_text(resp) -> str:
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return " ".join(str(resp or "").split())[:200]


def _smtp_reason(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"posta sunucusunun ({host}) TLS sertifikası doğrulanamadı ({exc.verify_message}); "
                "sunucu adı ya da sertifika yanlış olabilir")
    if isinstance(exc, ssl.SSLError):
        return f"posta sunucusuyla ({host}) TLS bağlantısı kurulamadı ({exc.reason or type(exc).__name__})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (f"posta sunucusu kullanıcı adını ya da şifreyi kabul etmedi ({exc.smtp_code} "
                f"{_smtp_text(exc.smtp_error)})")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "posta sunucusu alıcıların hepsini reddetti: " + ", ".join(
            f"{addr} ({code} {_smtp_text(text)})" for addr, (code, text) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"posta sunucusu gönderen adresini ({exc.sender}) reddetti ({exc.smtp_code} {_smtp_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"posta sunucusu hata verdi ({exc.smtp_code} {_smtp_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"posta sunucusu ({host}) bağlantıyı kapattı"
    if isinstance(exc, ConnectionRefusedError):
        return f"posta sunucusu {host}:{port} bağlantıyı reddetti (sunucu çalışmıyor ya da port yanlış olabilir)"
    if isinstance(exc, socket.gaierror):
        return f"posta sunucusunun adı ({host}) çözülemedi"
    if isinstance(exc, TimeoutError):
        return f"posta sunucusu {host}:{port} zamanında yanıt vermedi"
    if isinstance(exc, OSError):
        return f"posta sunucusuna {host}:{port} bağlanılamadı ({exc.strerror or type(exc).__name__})"
    # never str(exc): a UnicodeEncodeError from smtplib carries the whole AUTH string in its repr
    return f"beklenmeyen hata ({type(exc).__name__})"


def _http_reason(lines: list[tuple[int, str]], host: str) -> str:
    text = "\n".join(msg for _, msg in lines)
    if re.search(r"certificate verify failed|CERTIFICATE_VERIFY_FAILED|SSLCertVerification", text, re.IGNORECASE):
        return f"{host} adresinin TLS sertifikası doğrulanamadı"
    if re.search(r"SSLError|wrong version number|EOF occurred in violation", text):
        return f"{host} ile TLS bağlantısı kurulamadı (adres https:// ama sunucu TLS konuşmuyor olabilir)"
    if re.search(r"Connection refused|Errno 111|10061|actively refused", text):
        return f"{host} bağlantıyı reddetti (sunucu çalışmıyor olabilir)"
    if re.search(r"NameResolution|Name or service not known|getaddrinfo|nodename nor servname", text):
        return f"{host} adı çözülemedi"
    if re.search(r"timed out|Timeout", text):
        return f"{host} zamanında yanıt vermedi"
    m = re.search(r"error=(\d{3})", text)
    if m:
        return f"{host} HTTP {m[1]} yanıtı verdi"
    warnings = [msg for level, msg in lines if level >= logging.WARNING]
    return f"{host} adresine gönderilemedi" + (f" ({warnings[-1][:200]})" if warnings else "")


# ---- channels ---------------------------------------------------------------------------------

@dataclass
class _Msg:
    id: int
    uid: str
    created: float
    kind: str
    firm: str
    vkn: str
    branch: str
    period: str
    target: str
    title: str
    body: str
    files: list[str]


class _Route:
    kind = ""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.key = channel_key(channel)
        self.label = channel_label(channel)

    def wants(self, kind: str, vkn: str) -> bool:
        ch = self.channel
        if ch.events and kind not in ch.events:
            return False
        return not (vkn and ch.firms and vkn not in ch.firms)

    def secrets(self) -> list[str]:
        return []

    def deliver(self, msg: _Msg) -> str:
        """Send; returns a note ("" when clean) or raises _Failed."""
        raise NotImplementedError


def _ehlo_name() -> str:
    """smtplib says EHLO with socket.getfqdn(): a DNS lookup, and on a PC named 'MUHASEBE-İŞ' a
    UnicodeEncodeError (commands go out as ASCII). Use the host name only when it is a valid name."""
    name = socket.gethostname()
    return name if re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", name or "") else "edefter-yedekleme"


def _smtp_login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN (else LOGIN) in UTF-8: smtplib.login encodes ASCII and fails on 'ş'."""
    if not smtp.has_extn("auth"):
        raise _Failed("posta sunucusu oturum açmayı (AUTH) sunmuyor; sunucu oturum istemiyorsa "
                      "Kullanıcı Adı boş bırakılmalı")
    mechanisms = smtp.esmtp_features["auth"].upper().split()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    u, p = user.encode("utf-8"), password.encode("utf-8")
    if "PLAIN" in mechanisms:
        code, resp = smtp.docmd("AUTH", "PLAIN " + b64(b"\0" + u + b"\0" + p))
    elif "LOGIN" in mechanisms:
        code, resp = smtp.docmd("AUTH", "LOGIN " + b64(u))
        if code == 334:
            code, resp = smtp.docmd(b64(p))
    else:
        raise _Failed("posta sunucusu desteklenen bir oturum açma yöntemi (PLAIN, LOGIN) sunmuyor "
                      f"({', '.join(mechanisms) or '-'})")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, resp)


class _EmailRoute(_Route):
    kind = "e-posta"

    def __init__(self, channel: Channel, ca_file: str | None, timeout: float):
        super().__init__(channel)
        self.smtp = parse_email_address(channel.address)
        self.user = channel.user.strip()
        self.sender = channel.sender.strip() or (self.user if _EMAIL_RE.match(self.user) else "")
        if not self.sender:
            raise ChannelError("E-posta kanalında Gönderen adresi yazılmalı (Kullanıcı Adı bir e-posta "
                               "adresi değil).")
        if not _EMAIL_RE.match(self.sender):
            raise ChannelError(f"Gönderen adresi '{self.sender}' geçerli bir e-posta adresi değil.")
        self.ca_file = ca_file
        self.timeout = timeout
        self.keyring_target = f"bildirim:{self.smtp.host}"
        self._secrets: list[str] = []

    def secrets(self) -> list[str]:
        return self._secrets

    def _password(self) -> str | None:
        if not self.user:
            return None
        from edefter_helper import credentials
        from edefter_helper.targets.base import CredentialsError

        try:
            password = credentials.get_password(target=self.keyring_target, user=self.user)
        except CredentialsError as exc:
            raise _Failed(f"{exc.message} (edefter credentials set --target {self.keyring_target} "
                          f"--user {self.user})") from None
        pair = b"\0" + self.user.encode() + b"\0" + password.encode()
        self._secrets = [password, base64.b64encode(password.encode()).decode(), base64.b64encode(pair).decode()]
        return password

    def message(self, msg: _Msg) -> MIMEText:
        # compat32 + Header: email.policy's folder drops the space between two encoded words
        # ("İnşaat Gıda" arrived as "İnşaatGıda"); Header encodes the spaces inside the words
        charset = Charset("utf-8")
        charset.body_encoding = QP  # 7-bit safe through any relay, still readable raw
        em = MIMEText(msg.body, "plain", charset)
        em["Subject"] = Header(msg.title, "utf-8")
        em["From"] = self.sender
        em["To"] = ", ".join(self.smtp.recipients)
        em["Date"] = formatdate(msg.created, localtime=True)
        # stable: a copy sent again after a crash mid-send carries the same id (clients can fold it)
        em["Message-ID"] = f"<{msg.uid}.{self.key[:8]}@{self.sender.rsplit('@', 1)[1]}>"
        em["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to this
        em["X-Mailer"] = "e-Defter Yedekleme"
        return em

    def deliver(self, msg: _Msg) -> str:
        password = self._password()
        body = _scrub_plain(msg.body, self._secrets)
        em = self.message(_replace(msg, body=body))
        host, port = self.smtp.host, self.smtp.port
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=str(self.ca_file))
        try:
            if self.smtp.implicit_tls:
                smtp = smtplib.SMTP_SSL(host, port, local_hostname=_ehlo_name(), timeout=self.timeout,
                                        context=context)
            else:
                smtp = smtplib.SMTP(host, port, local_hostname=_ehlo_name(), timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if not self.smtp.implicit_tls:
                    if not smtp.has_extn("starttls"):
                        raise _Failed(f"posta sunucusu ({host}:{port}) STARTTLS sunmuyor; ileti ve şifre "
                                      "şifrelenmemiş bağlantıdan gönderilmez")
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if password is not None:
                    _smtp_login(smtp, self.user, password)
                refused = smtp.send_message(em, from_addr=self.sender, to_addrs=list(self.smtp.recipients))
        except _Failed:
            raise
        except Exception as exc:  # noqa: BLE001 - classified; str(exc) may hold the AUTH string
            raise _Failed(_scrub(_smtp_reason(exc, host, port), self._secrets)) from None
        if refused:  # the others have it: sending again would give them a second copy
            return _scrub("şu alıcılar reddedildi: " + ", ".join(
                f"{addr} ({code} {_smtp_text(text)})" for addr, (code, text) in refused.items()), self._secrets)
        return ""


def _replace(msg: _Msg, **changes) -> _Msg:
    from dataclasses import replace
    return replace(msg, **changes)


def _scrub_plain(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "****")
    return text


_APPRISE_LOCK = threading.Lock()
_APPRISE_LOG = logging.getLogger("apprise")
# apprise's debug lines name URLs (a webhook path may be its secret) and its trace lines name
# passwords: they never reach the application's handlers; what matters is re-told, scrubbed, here.
_APPRISE_LOG.propagate = False
if not any(isinstance(h, logging.NullHandler) for h in _APPRISE_LOG.handlers):
    _APPRISE_LOG.addHandler(logging.NullHandler())


class _RedactSecrets(logging.Filter):
    """urllib3 logs every request line at DEBUG ("POST /workflows/ID/...&sig=SIGNATURE"), and that
    logger propagates to the application's handlers: the secrets of our channels are masked there."""

    def __init__(self):
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            with contextlib.suppress(Exception):
                text = record.getMessage()
                masked = _scrub_plain(text, sorted(self.secrets, key=len, reverse=True))
                if masked != text:
                    record.msg, record.args = masked, None
        return True


_REDACT = _RedactSecrets()
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "urllib3.poolmanager",
              "requests_oauthlib.oauth2_session"):
    logging.getLogger(_name).addFilter(_REDACT)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append((record.levelno, record.getMessage()))


def _apprise():
    with warnings.catch_warnings():  # apprise imports the deprecated imghdr for PGPy: not ours to see
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
        import apprise.plugins.custom_json
    return apprise


def _asset():
    apprise = _apprise()
    return apprise.AppriseAsset(storage_mode="memory", app_id="e-Defter Yedekleme",
                                app_desc="e-Defter Yedekleme", secure_logging=True)


# apprise's message type: the JSON webhook's "type" field
_NOTIFY_TYPES = {"yedeklendi": "success", "yedeklenemedi": "failure", "hedefe-ulasilamiyor": "failure",
                 "olu-adam": "failure", "yerel-dosya": "warning", "ozet": "info"}


class _AppriseRoute(_Route):
    """Teams Workflows and JSON webhooks through apprise; one attempt, no apprise retries."""

    body_format = "text"

    def __init__(self, channel: Channel, url: str, secrets: list[str]):
        super().__init__(channel)
        self.url = url
        self.host = urlsplit(url).hostname or "?"
        self._secrets = secrets
        _REDACT.secrets.update(s for s in secrets if len(s) >= 6)
        with _APPRISE_LOCK:
            plugin = self._plugin(None)  # refuse a bad address now, not at the first event
        if plugin is None:
            raise ChannelError(f"{self.kind} kanalının adresi kullanılamıyor: " + ADDRESS_FORMS_TR[self.kind])

    def secrets(self) -> list[str]:
        return self._secrets

    def _plugin(self, msg: _Msg | None):
        apprise = _apprise()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # plugins load here (imghdr)
                return apprise.Apprise.instantiate(self.url, asset=_asset(), suppress_exceptions=False)
        except Exception:  # noqa: BLE001 - apprise says why in its log, which names the URL
            return None

    def render(self, msg: _Msg) -> str:
        return msg.body

    def deliver(self, msg: _Msg) -> str:
        capture = _Capture()
        with _APPRISE_LOCK:
            old_level = _APPRISE_LOG.level
            _APPRISE_LOG.setLevel(logging.DEBUG)
            _APPRISE_LOG.addHandler(capture)
            try:
                plugin = self._plugin(msg)
                if plugin is None:
                    raise _Failed(f"{self.kind} adresi kullanılamıyor")
                ok = plugin.notify(body=self.render(msg), title=msg.title, body_format=self.body_format,
                                   notify_type=_apprise().NotifyType(_NOTIFY_TYPES.get(msg.kind, "info")))
            except _Failed:
                raise
            except Exception as exc:  # noqa: BLE001 - never str(exc): it may name the URL
                raise _Failed(f"{self.host} adresine gönderilemedi ({type(exc).__name__})") from None
            finally:
                _APPRISE_LOG.removeHandler(capture)
                _APPRISE_LOG.setLevel(old_level)
        if not ok:
            raise _Failed(_scrub(_http_reason(capture.lines, self.host), self._secrets))
        return ""


class _TeamsRoute(_AppriseRoute):
    kind = "teams"
    body_format = "markdown"

    def __init__(self, channel: Channel):
        url = teams_apprise_url(channel.address)
        super().__init__(channel, url, _workflow_secrets(channel.address, url))

    def render(self, msg: _Msg) -> str:
        # Adaptive Card TextBlock: a paragraph per line, so each file is its own bullet
        return "\n\n".join(line for line in msg.body.splitlines() if line.strip())


class _WebhookRoute(_AppriseRoute):
    kind = "webhook"

    def __init__(self, channel: Channel):
        url = webhook_apprise_url(channel.address)
        super().__init__(channel, url, _url_secrets(channel.address) + _url_secrets(url))

    def _plugin(self, msg: _Msg | None):
        apprise = _apprise()
        NotifyJSON = apprise.plugins.custom_json.NotifyJSON
        try:
            results = NotifyJSON.parse_url(self.url)
            if not results:
                return None
            if msg is not None:  # apprise's payload extras: the event itself, beside title and message
                results["payload"] = dict(results.get("payload") or {}, **_webhook_fields(msg))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return apprise.Apprise.instantiate(results, asset=_asset(), suppress_exceptions=False)
        except Exception:  # noqa: BLE001
            return None


def _webhook_fields(msg: _Msg) -> dict:
    return {"event": msg.kind, "firm": msg.firm, "vkn": msg.vkn, "branch": msg.branch, "period": msg.period,
            "target": msg.target, "files": [{"file": f, "label": _file_label(f)} for f in msg.files],
            "id": msg.uid}


def _make_route(channel: Channel, ca_file, smtp_timeout: float) -> _Route:
    kind = normalize_kind(channel.kind)
    unknown = set(channel.events) - EVENTS
    if unknown:
        raise ChannelError("Bilinmeyen olay: " + ", ".join(sorted(unknown)) + " (olaylar: "
                           + ", ".join(sorted(EVENTS)) + ")")
    if kind == "e-posta":
        return _EmailRoute(channel, ca_file, smtp_timeout)
    if kind == "teams":
        return _TeamsRoute(channel)
    return _WebhookRoute(channel)


# ---- rendering --------------------------------------------------------------------------------

def _file_label(filename: str) -> str:
    name = parse_name(Path(filename).name)
    return FILE_NAMES_TR.get(name.kind, name.kind) if name else "Diğer dosya"


def files_sent_lines(files: Iterable[str]) -> list[str]:
    """'- Yevmiye Defteri: 4810525635-202401-Y-000001.xml', in the seed's order (parts numbered)."""
    parsed = []
    for f in files:
        base = Path(f).name
        name = parse_name(base)
        order = KINDS.index(name.kind) if name and name.kind in KINDS else len(KINDS)
        parsed.append((order, name.part if name else 0, base, name))
    multi = {n.kind for _, _, _, n in parsed if n and n.part > 1}
    lines = []
    for _, part, base, name in sorted(parsed, key=lambda p: p[:3]):
        label = _file_label(base)
        if name and name.kind in multi:
            label += f" ({part}. parça)"
        lines.append(f"- {label}: {base}")
    return lines


def _month(period: str) -> str:
    return S.month_label(period) if valid_period(period) else period


def _firm_label(firm: str, vkn: str, branch: str) -> str:
    who = firm or vkn
    extra = []
    if vkn and firm:
        extra.append(f"VKN {vkn}")
    if branch and branch != NO_BRANCH:
        extra.append(f"Şube {branch}")
    return who + (f" ({', '.join(extra)})" if extra else "")


def _when(ts: float, with_year: bool = True) -> str:
    return time.strftime("%d.%m.%Y %H:%M" if with_year else "%d.%m %H:%M", time.localtime(ts))


def _due_soon_lines(items: Sequence[DueSoon]) -> list[str]:
    """The digest's section: months due at GİB within days and not closed, under each Sorumlu (by
    name; a firm without one last), soonest first."""
    if not items:
        return ["GİB'e berat yükleme son günü 7 gün içinde olan, kapanmamış ay yok."]
    out = [f"GİB'e berat yükleme son günü 7 gün içinde olan, kapanmamış aylar ({len(items)}), Sorumlu'ya göre:"]
    groups: dict[str, list[DueSoon]] = {}
    for d in items:
        groups.setdefault(d.owner.strip(), []).append(d)
    for owner in sorted(groups, key=lambda o: (not o, o.casefold())):
        mine = sorted(groups[owner], key=lambda d: (d.due, d.firm.casefold(), d.vkn, d.branch, d.period))
        out.append(f"{owner or 'Sorumlu belirtilmemiş'} ({len(mine)}):")
        for d in mine:
            when = "son gün bugün" if d.days == 0 else f"son güne {d.days} gün var"
            out.append(f"- {_firm_label(d.firm, d.vkn, d.branch)} — {_month(d.period)}: {when}."
                       + (f" {d.detail}" if d.detail else ""))
    return out


def render(event: Event) -> tuple[str, str]:
    """The Turkish subject and plain-text body of an event."""
    firm = _firm_label(event.firm, event.vkn, event.branch)
    month = _month(event.period)
    about = " — ".join(p for p in (event.firm or event.vkn, month) if p)
    titles = {
        "yedeklendi": f"e-Defter yedeklendi: {about}",
        "yedeklenemedi": f"e-Defter YEDEKLENEMEDİ: {about}",
        "hedefe-ulasilamiyor": "e-Defter: yedekleme hedefine ulaşılamıyor"
                               + (f" ({event.target})" if event.target else "") + (f" — {about}" if about else ""),
        "yerel-dosya": f"e-Defter: yerel dosyalar değişti — {about}",
        "olu-adam": "e-Defter: otomatik yedekleme durmuş olabilir",
        "ozet": "e-Defter günlük özet",
    }
    lines = []
    if firm:
        lines.append(f"Firma: {firm}")
    if month:
        lines.append(f"Dönem: {month}")
    if event.target:
        lines.append(f"Hedef: {event.target}")
    if lines:
        lines.append("")
    message = event.message or (S.backed_up_message(event.period)
                                if event.kind == "yedeklendi" and valid_period(event.period) else "")
    if message:
        lines.append(message)
    if event.files:
        lines += ["", "Gönderilen dosyalar:" if event.kind == "yedeklendi" else "Dosyalar:"]
        lines += files_sent_lines(event.files)
    lines += ["", f"— e-Defter Yedekleme, {socket.gethostname()}"]
    return titles[event.kind].rstrip(": —"), "\n".join(lines)


# ---- the queue --------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_messages (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    firm TEXT NOT NULL DEFAULT '', vkn TEXT NOT NULL DEFAULT '', branch TEXT NOT NULL DEFAULT '',
    period TEXT NOT NULL DEFAULT '', target TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    files TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS notify_messages_created ON notify_messages(created);
CREATE TABLE IF NOT EXISTS notify_deliveries (      -- one row per (message, channel)
    message_id INTEGER NOT NULL REFERENCES notify_messages(id),
    channel TEXT NOT NULL,                           -- hash of the channel's settings
    label TEXT NOT NULL,                             -- kind and host: no secret
    status TEXT NOT NULL DEFAULT 'pending',          -- pending | sent | dropped
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',             -- Turkish, scrubbed of secrets
    sent_at REAL,
    claimed_until REAL,
    PRIMARY KEY (message_id, channel)
);
CREATE INDEX IF NOT EXISTS notify_deliveries_due ON notify_deliveries(status, next_try);
CREATE TABLE IF NOT EXISTS notify_states (          -- the last state told, for one message per change
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    firm TEXT NOT NULL DEFAULT '', vkn TEXT NOT NULL DEFAULT '', branch TEXT NOT NULL DEFAULT '',
    period TEXT NOT NULL DEFAULT '', target TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_PROBLEM_KINDS = ("yedeklenemedi", "hedefe-ulasilamiyor", "yerel-dosya", "olu-adam")


def _state_key(event: Event) -> str | None:
    if event.kind == "ozet":
        return None
    branch = event.branch or NO_BRANCH
    if event.period:
        return f"ay|{event.vkn}|{branch}|{event.period}"
    return f"{event.kind}|{event.target}|{event.vkn}|{branch}"


class Notifier:
    """Queue and deliver notifications. Safe to share one queue file between processes (the agent
    and a button): a state change is told once, and a delivery is claimed before it is sent."""

    def __init__(self, channels: list[Channel], queue_path: Path, *, clock: Callable[[], float] = time.time,
                 ca_file: str | Path | None = None, smtp_timeout: float = 15.0):
        self.clock = clock
        self.routes: dict[str, _Route] = {}
        self.problems: list[str] = []  # Turkish, one per unusable channel (for Günlük / the sheet)
        for channel in channels:
            try:
                route = _make_route(channel, str(ca_file) if ca_file else None, smtp_timeout)
            except ChannelError as exc:
                problem = f"Bildirim kanalı {channel_label(channel)} kullanılamıyor: {exc.message}"
                self.problems.append(problem)
                log.warning(problem)
                continue
            self.routes.setdefault(route.key, route)
        self.queue_path = Path(queue_path)
        self.queue_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.queue_path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    # -- plumbing

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _meta(self, db, key: str) -> str | None:
        row = db.execute("SELECT value FROM notify_meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, db, key: str, value: str | None) -> None:
        if value is None:
            db.execute("DELETE FROM notify_meta WHERE key=?", (key,))
        else:
            db.execute("INSERT INTO notify_meta(key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def _enqueue(self, db, event: Event, title: str, body: str, routes: Iterable[_Route], now: float) -> int:
        cur = db.execute(
            "INSERT INTO notify_messages(uid, created, kind, firm, vkn, branch, period, target, title, body, files) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (uuid.uuid4().hex, now, event.kind, event.firm, event.vkn, event.branch, event.period, event.target,
             title, body, json.dumps([Path(f).name for f in event.files], ensure_ascii=False)))
        msg_id = cur.lastrowid
        db.executemany("INSERT INTO notify_deliveries(message_id, channel, label, next_try) VALUES (?,?,?,?)",
                       [(msg_id, r.key, r.label, now) for r in routes])
        return msg_id

    # -- events

    def notify(self, event: Event) -> None:
        """Tell this event to every channel that wants it, once per firm-month state change
        (the same kind for the same month twice is told once); queued, then delivered now."""
        if event.kind not in EVENTS:
            raise ValueError(f"Bilinmeyen bildirim olayı: {event.kind!r} (olaylar: {', '.join(sorted(EVENTS))})")
        now = self.clock()
        title, body = render(event)
        with self._tx() as db:
            if not self._changed(db, event, now):
                log.debug("Bildirim zaten gönderildi, tekrarlanmadı: %s", title)
                return
            routes = [r for r in self.routes.values() if r.wants(event.kind, event.vkn)]
            msg_id = self._enqueue(db, event, title, body, routes, now)
        if not routes:
            log.info("Bildirim için kanal yok: %s", title)
            return
        self._deliver(also=(msg_id,))

    def _changed(self, db, event: Event, now: float) -> bool:
        key = _state_key(event)
        if key is None:
            return True
        row = db.execute("SELECT kind FROM notify_states WHERE key=?", (key,)).fetchone()
        if row and row[0] == event.kind:
            return False
        db.execute(
            "INSERT INTO notify_states(key, kind, firm, vkn, branch, period, target, message, since) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET kind=excluded.kind, firm=excluded.firm, "
            "message=excluded.message, since=excluded.since",
            (key, event.kind, event.firm, event.vkn, event.branch, event.period, event.target, event.message, now))
        if event.kind == "yedeklendi":  # a success there: the target answers again
            self._clear_target(db, event.target, event.vkn)
        return True

    def _clear_target(self, db, target: str, vkn: str = "") -> None:
        db.execute("DELETE FROM notify_states WHERE period='' AND kind='hedefe-ulasilamiyor' "
                   "AND (?='' OR target='' OR target=?) AND (?='' OR vkn='' OR vkn=?)", (target, target, vkn, vkn))

    def target_ok(self, target: str = "") -> None:
        """The target answered (a query or a send went through): its next unreachability is a new
        state and is told again. A 'yedeklendi' event does this by itself; "" = every target."""
        with self._tx() as db:
            self._clear_target(db, target)

    def dead_man(self, last_success: float | None, threshold_s: float = DEAD_MAN_DEFAULT_S) -> None:
        """Fire 'olu-adam' once when no successful cycle happened for threshold_s; again only after a
        new success (a different last_success) and a new silence. None = never succeeded: counted from
        the first call that saw None."""
        now = self.clock()
        with self._tx() as db:
            if last_success is None:
                since = self._meta(db, "dead_man_none_since")
                if since is None:
                    self._set_meta(db, "dead_man_none_since", repr(now))
                    since = repr(now)
                base, ref = float(since), "none"
            else:
                self._set_meta(db, "dead_man_none_since", None)
                base, ref = float(last_success), repr(float(last_success))
            if now - base < threshold_s or self._meta(db, "dead_man_fired_for") == ref:
                return
            self._set_meta(db, "dead_man_fired_for", ref)
            hours = int((now - base) // 3600)
            if last_success is None:
                text = (f"Bu bilgisayarda {hours} saattir hiç başarılı yedekleme döngüsü olmadı. ")
            else:
                text = (f"Son başarılı yedekleme döngüsü {_when(last_success)} tarihinde, {hours} saat önceydi. ")
            text += ("Otomatik yedekleme çalışmıyor olabilir: bilgisayarın açık olduğunu, yedekleme ajanının "
                     "çalıştığını (edefter agent status) ve hedefe ulaşılabildiğini kontrol edin.")
            event = Event("olu-adam", "", "", "", "", text)
            title, body = render(event)
            routes = [r for r in self.routes.values() if r.wants("olu-adam", "")]
            msg_id = self._enqueue(db, event, title, body, routes, now)
        log.warning("Ölü adam alarmı: %s", text)
        if routes:
            self._deliver(also=(msg_id,))

    def digest_due(self, every_s: float = 86400.0) -> bool:
        """True when a channel asks for the digest and none went out for `every_s` (the first one a full
        period after the first look, so a restart does not send one at once)."""
        if not any(r.channel.events and "ozet" in r.channel.events for r in self.routes.values()):
            return False
        now = self.clock()
        with self._tx() as db:
            last = self._meta(db, "digest_at")
            if last is None:
                self._set_meta(db, "digest_at", repr(now))
                return False
        return now - float(last) >= every_s

    def digest(self, due_soon: Sequence[DueSoon] | None = None) -> None:
        """The daily digest: events since the last digest, problems still open, the months due at GİB
        soon grouped by Sorumlu (`due_soon`, from radar.due_soon; None = not computed, no section) and
        the notifications that could not be delivered — to every channel that takes 'ozet' (each sees its own firms)."""
        now = self.clock()
        ids = []
        with self._tx() as db:
            since = float(self._meta(db, "digest_at") or (now - 86400))
            self._set_meta(db, "digest_at", repr(now))
            events = db.execute("SELECT id, created, kind, firm, vkn, branch, period, target, title, body "
                                "FROM notify_messages WHERE created > ? AND created <= ? AND kind != 'ozet' "
                                "ORDER BY created, id", (since, now)).fetchall()
            problems = db.execute("SELECT kind, firm, vkn, branch, period, target, message, since FROM "
                                  "notify_states WHERE kind IN (%s) ORDER BY since" %
                                  ",".join("?" * len(_PROBLEM_KINDS)), _PROBLEM_KINDS).fetchall()
            undelivered = db.execute(
                "SELECT d.label, m.title, m.vkn, d.attempts, d.last_error, m.created FROM notify_deliveries d "
                "JOIN notify_messages m ON m.id = d.message_id WHERE d.status='pending' ORDER BY m.created").fetchall()
            groups: dict[str, list[_Route]] = {}
            for route in self.routes.values():
                if not (route.channel.events and "ozet" in route.channel.events):
                    continue  # the digest is asked for by name: an empty Olaylar cell is every event, one by one
                body = self._digest_body(route, since, now, events, problems, undelivered, due_soon)
                groups.setdefault(body, []).append(route)
            for body, routes in groups.items():
                event = Event("ozet", "", "", "", "", "")
                title = f"e-Defter günlük özet — {time.strftime('%d.%m.%Y', time.localtime(now))}"
                ids.append(self._enqueue(db, event, title, body, routes, now))
        if ids:
            self._deliver(also=ids)

    @staticmethod
    def _digest_body(route: _Route, since, now, events, problems, undelivered,
                     due_soon: Sequence[DueSoon] | None = None) -> str:
        firms = route.channel.firms

        def mine(vkn: str) -> bool:
            return not (vkn and firms and vkn not in firms)

        def capped(lines: list[str]) -> list[str]:
            if len(lines) > _DIGEST_MAX_LINES:
                return lines[:_DIGEST_MAX_LINES] + [f"- … ve {len(lines) - _DIGEST_MAX_LINES} tane daha"]
            return lines

        out = [f"{_when(since)} – {_when(now)} arası", ""]
        lines = []
        for _id, created, kind, firm, vkn, branch, period, target, _title, body in events:
            if not mine(vkn):
                continue
            subject = " — ".join(p for p in (_firm_label(firm, vkn, branch), _month(period), target) if p)
            first = next((ln for ln in body.splitlines()
                          if ln and not ln.startswith(("Firma:", "Dönem:", "Hedef:"))), "")
            lines.append(f"- {_when(created, False)} {EVENT_WORDS_TR[kind]}"
                         + (f": {subject}" if subject else "") + (f". {first}" if first else ""))
        out.append(f"Olaylar ({len(lines)}):" if lines else "Son özetten bu yana yeni olay yok.")
        out += capped(lines)
        open_lines = []
        for kind, firm, vkn, branch, period, target, message, since_ in problems:
            if not mine(vkn):
                continue
            subject = " — ".join(p for p in (_firm_label(firm, vkn, branch), _month(period), target) if p)
            open_lines.append(f"- {EVENT_WORDS_TR[kind]}" + (f": {subject}" if subject else "")
                              + f" ({_when(since_, False)} itibarıyla)" + (f". {message}" if message else ""))
        if open_lines:
            out += ["", f"Açık sorunlar ({len(open_lines)}):"] + capped(open_lines)
        failed = [f"- {label}: {title} — " + (f"{attempts} deneme" if attempts else "henüz denenmedi")
                  + (f", son hata: {error}" if error else "")
                  for label, title, vkn, attempts, error, _created in undelivered if mine(vkn)]
        if failed:
            out += ["", f"Teslim edilemeyen bildirimler ({len(failed)}):"] + capped(failed)
        if due_soon is not None:
            out += [""] + _due_soon_lines([d for d in due_soon if mine(d.vkn)])
        out += ["", f"— e-Defter Yedekleme, {socket.gethostname()}"]
        return "\n".join(out)

    # -- delivery

    def deliver_pending(self) -> int:
        """Retry what is due (backoff: 1 min, doubling, at most 1 h); returns how many deliveries are
        still undelivered."""
        return self._deliver()

    def _deliver(self, also: Sequence[int] = ()) -> int:
        now = self.clock()
        failed: dict[str, str] = {}   # channel -> why it failed in this pass: its other rows wait
        succeeded: set[str] = set()
        done: set[tuple[int, str]] = set()
        marks = ",".join("?" * len(also)) or "NULL"
        rows = self._claim(f"(next_try <= ? OR message_id IN ({marks}))", (now, *also), now)
        for _ in range(2):  # a channel that worked gets its not-yet-due rows too: it is back
            for msg_id, channel in rows:
                done.add((msg_id, channel))
                if channel in failed:
                    self._release(msg_id, channel, failed[channel])
                    continue
                result, reason = self._attempt(msg_id, channel, now)
                if result is True:
                    succeeded.add(channel)
                elif result is False:
                    failed[channel] = reason
            back = sorted(succeeded - set(failed))
            if not back:
                break
            rows = [r for r in self._claim("channel IN (%s)" % ",".join("?" * len(back)), tuple(back), now)
                    if r not in done]
            if not rows:
                break
        return self.pending_count()

    def _claim(self, where: str, params: tuple, now: float) -> list[tuple[int, str]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT message_id, channel FROM notify_deliveries WHERE status='pending' "
                f"AND (claimed_until IS NULL OR claimed_until < ?) AND {where} ORDER BY message_id",
                (now, *params)).fetchall()
            db.executemany("UPDATE notify_deliveries SET claimed_until=? WHERE message_id=? AND channel=?",
                           [(now + CLAIM_S, m, c) for m, c in rows])
        return [(m, c) for m, c in rows]

    def _release(self, msg_id: int, channel: str, reason: str) -> None:
        """Not tried: its channel just failed. Keeps the channel's reason (no attempt counted)."""
        with self._tx() as db:
            db.execute("UPDATE notify_deliveries SET claimed_until=NULL, last_error=? WHERE message_id=? "
                       "AND channel=?", (reason, msg_id, channel))

    def _load(self, msg_id: int) -> _Msg:
        with self._lock:
            row = self._db.execute("SELECT id, uid, created, kind, firm, vkn, branch, period, target, title, body, "
                                   "files FROM notify_messages WHERE id=?", (msg_id,)).fetchone()
        return _Msg(*row[:11], files=json.loads(row[11]))

    def _attempt(self, msg_id: int, channel: str, now: float) -> tuple[bool | None, str]:
        """(True, "") sent, (False, reason) failed and queued with backoff, (None, "") not this
        Notifier's channel (another process's, or one removed from the sheet)."""
        route = self.routes.get(channel)
        msg = self._load(msg_id)
        if route is None:  # another process's channel, or one removed from the sheet
            with self._tx() as db:
                if msg.created < now - FORGET_UNKNOWN_CHANNEL_S:
                    db.execute("UPDATE notify_deliveries SET status='dropped', claimed_until=NULL, last_error=? "
                               "WHERE message_id=? AND channel=?",
                               ("kanal artık Bildirimler sayfasında yok", msg_id, channel))
                else:
                    db.execute("UPDATE notify_deliveries SET claimed_until=NULL WHERE message_id=? AND channel=?",
                               (msg_id, channel))
            return None, ""
        try:
            try:
                note = route.deliver(msg)
            except _Failed:
                raise
            except Exception as exc:  # noqa: BLE001 - a keyring backend, a library: still queued, still told
                raise _Failed(f"beklenmeyen hata ({type(exc).__name__})") from None
        except _Failed as exc:
            reason = _scrub(exc.reason, route.secrets())
            with self._tx() as db:
                attempts = db.execute("SELECT attempts FROM notify_deliveries WHERE message_id=? AND channel=?",
                                      (msg_id, channel)).fetchone()[0] + 1
                delay = min(BACKOFF_FIRST_S * 2 ** (attempts - 1), BACKOFF_MAX_S)
                db.execute("UPDATE notify_deliveries SET attempts=?, next_try=?, last_error=?, claimed_until=NULL "
                           "WHERE message_id=? AND channel=?", (attempts, now + delay, reason, msg_id, channel))
            log.warning("Bildirim gönderilemedi (%s): %s — %s. %d. deneme; %s tekrar denenecek.",
                        route.label, msg.title, reason, attempts, _when(now + delay))
            return False, reason
        with self._tx() as db:
            db.execute("UPDATE notify_deliveries SET status='sent', attempts=attempts+1, sent_at=?, last_error=?, "
                       "claimed_until=NULL WHERE message_id=? AND channel=?", (now, note, msg_id, channel))
        if note:
            log.warning("Bildirim gönderildi ama (%s): %s — %s", route.label, msg.title, note)
        else:
            log.info("Bildirim gönderildi (%s): %s", route.label, msg.title)
        return True, ""

    # -- what is left

    def pending_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM notify_deliveries WHERE status='pending'").fetchone()[0]

    def undelivered(self) -> list[Undelivered]:
        """Deliveries still waiting (for `agent status`, Günlük)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.label, m.title, m.created, d.attempts, d.next_try, d.last_error FROM notify_deliveries d "
                "JOIN notify_messages m ON m.id = d.message_id WHERE d.status='pending' ORDER BY m.created").fetchall()
        return [Undelivered(*row) for row in rows]
