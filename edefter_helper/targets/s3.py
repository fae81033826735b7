"""S3-compatible object storage with Object Lock (AWS S3, Ceph RADOS Gateway, MinIO, …) as a target.

A copy ransomware cannot delete: every month package is written once with an Object Lock retention
(COMPLIANCE by default) that keeps that version undeletable, even for the account that wrote it, until
31 December of the period's year + N years. An e-Defter month never changes, so the final date is set at
upload and no renewal job is needed.

Address (Hedefler > Adres; the access key id goes in Firmalar > Kullanıcı Adı, the secret key in the
keyring, never in the address)::

    s3://KOVA[/ÖNEK]?endpoint=https://s3.firma.com.tr&region=eu-central-1&retention=10&mode=COMPLIANCE&location=TR

- `KOVA` (bucket): must have been created with Object Lock enabled (S3 naming: 3-63 characters, a-z,
  0-9, '.', '-').
- `ÖNEK` (key prefix, optional): segments of A-Z a-z 0-9 . _ - separated by '/'.
- `endpoint`: the server's URL; empty or absent = AWS S3. Plain http:// only to this computer (loopback),
  as for the http target: the ledgers carry personal data.
- `region`: the signing region (default us-east-1; most non-AWS servers accept any).
- `retention`: years of lock, counted from 31 December of the period's year (default 10; 1-30): a month
  of 2024 with 10 years is locked until 31.12.2034 23:59:59 UTC (the whole day in Türkiye too).
- `mode`: COMPLIANCE (default; nobody can shorten or delete) or GOVERNANCE (an account with the
  s3:BypassGovernanceRetention permission can).
- `location`: where the data lives, for KVKK (storage abroad is a transfer abroad and the primary copy
  must stay in Türkiye): `TR`, `yurtdisi` or `bilinmiyor`; default `yurtdisi` for AWS (no endpoint; AWS has
  no region in Türkiye), `bilinmiyor` otherwise. A copy not in Türkiye is named so in every receipt.

Layout: one object per month package at `ÖNEK/VKN/YYYY/VKN-YYYYMM-ŞŞŞŞ.zip`, with the package's sha256 in
user metadata (`x-amz-meta-sha256`).

- send: one PutObject (never multipart below 5 GiB: some servers, Ceph RGW among them, ignore lock headers
  on multipart uploads) streamed from the file, with ObjectLockMode + ObjectLockRetainUntilDate,
  Content-MD5 (validated by every S3 server) and x-amz-checksum-sha256. Above the single-PUT limit:
  multipart (Content-MD5 on each part), then put_object_retention on the completed version. Then the
  version written is read back (HEAD + GetObjectRetention): the lock mode, the exact retain-until date,
  the stored sha256 and size must be what was intended (a missing or shorter lock is set with
  put_object_retention once and read again); anything less is a REJECTED receipt, never STORED.
- The month's copy is the OLDEST version of its key: Object Lock cannot stop a new version or a delete
  marker being put over a key, but it keeps the first version; so a stored month with other bytes is
  refused (RejectedError) rather than written as a new version, and query/fetch find the locked version
  behind a delete marker or a later version someone else wrote.
- query: STORED with the sha256 from metadata (REJECTED when that version's lock is missing or shorter
  than the settings ask: a send of the same package then extends it), MISSING when the key has no version.
- fetch: GET of that version streamed to the destination, sha256 checked (IntegrityError when it differs).
- cancel: not possible while locked (NotSupported, said so).
- `probe(target)`: the WORM test (see there).

Receipt.extra: retain_until (ISO, UTC), mode, location, version_id, worm (the probe's answer when it ran
on this target object or was given to it, else None), bucket, key, size, stored_at.

No retries here (targets.retry wraps any target): botocore's own retries are off. Errors: connection
refused / name not resolved -> UnreachableError; 5xx, throttling, timeouts -> TransientError; 403
signature / access -> CredentialsError; a bucket without Object Lock, a missing bucket, a wrong clock or
region -> ConfigurationError; anything else the server refuses -> RejectedError. Messages are Turkish
and never carry the secret.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError  # boto3's core; without it the kind stays unregistered

from edefter_helper.engine.model import MonthKey
from edefter_helper.netutil import is_loopback  # noqa: F401
from edefter_helper.fsutil import atomic_write
from edefter_helper.targets.base import (
    MISSING, REJECTED, STORED, ConfigurationError, CredentialsError, IntegrityError, NotSupported, Package,
    Receipt, RejectedError, Target, TargetError, TransientError, UnreachableError,
)

CHUNK = 1 << 20
SINGLE_PUT_LIMIT = 5 * 1024 ** 3  # S3's largest single PutObject
MIN_PART = 64 * CHUNK
MAX_PARTS = 10_000
DEFAULT_RETENTION = 10
MAX_RETENTION = 30  # a COMPLIANCE lock cannot be undone: a typo of 100 years would be paid for a century
MODES = ("COMPLIANCE", "GOVERNANCE")
LOCATIONS = {"TR": "Türkiye", "yurtdisi": "yurt dışı", "bilinmiyor": "bilinmiyor"}
_LOCATION_ALIASES = {
    "tr": "TR", "türkiye": "TR", "turkiye": "TR", "turkey": "TR",
    "yurtdisi": "yurtdisi", "yurtdışı": "yurtdisi", "yurt-disi": "yurtdisi", "abroad": "yurtdisi",
    "bilinmiyor": "bilinmiyor", "unknown": "bilinmiyor",
}
PARAMS = ("endpoint", "region", "retention", "mode", "location")
PROBE_DIR = ".edefter-worm-probe"
EXAMPLE = "s3://kova/onek?endpoint=https://s3.firma.com.tr&retention=10&mode=COMPLIANCE&location=TR"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
_REGION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SECRETISH = re.compile(r"(secret|sifre|şifre|parola|password|pass|token|key)", re.I)
_NOT_FOUND = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}
_NO_RETENTION = {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"}
_AUTH = {"403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
         "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidSecurity", "Forbidden"}
_BUSY = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable",
         "InternalError", "RequestLimitExceeded", "TooManyRequests", "OperationAborted"}


# ---- the address -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint: str = ""  # empty = AWS
    region: str = ""
    retention_years: int = DEFAULT_RETENTION
    mode: str = "COMPLIANCE"
    location: str = "bilinmiyor"  # TR / yurtdisi / bilinmiyor

    @property
    def location_label(self) -> str:
        return LOCATIONS[self.location]

    def key_for(self, key: MonthKey) -> str:
        year = key.period[:4]
        return "/".join(p for p in (self.prefix, key.vkn, year, key.package_name) if p)

    def retain_until(self, period: str) -> datetime:
        """31 December of the period's year + retention years, 23:59:59 UTC."""
        return datetime(int(period[:4]) + self.retention_years, 12, 31, 23, 59, 59, tzinfo=timezone.utc)

    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def shown(address: str) -> str:
    """The address as typed, for messages, with anything that looks like a secret masked."""
    text = (address or "").strip()
    text = re.sub(r"//[^/@?&]*@", "//***@", text)  # user:secret@host

    def mask(m):
        return f"{m.group(1)}=***" if _SECRETISH.search(m.group(1)) and m.group(1).lower() != "endpoint" else m.group(0)

    return re.sub(r"([^?&=\s]+)=([^&]*)", mask, text)


def _bad(address: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"S3 adresi geçersiz: \"{shown(address)}\". {why} Doğru biçim: {EXAMPLE}")




def parse_address(address: str) -> S3Settings:
    """Hedefler's Adres for an s3 target -> settings; every mistake is a ConfigurationError in Turkish
    that shows what was typed (secrets masked)."""
    text = (address or "").strip()
    if not text:
        raise ConfigurationError(f"S3 hedefinin Adres alanı boş. Doğru biçim: {EXAMPLE}")
    if not text.lower().startswith("s3://"):
        raise _bad(text, "Adres s3:// ile başlamalı (sunucunun adresi endpoint= ile verilir).")
    rest = text[5:]
    path, _, query = rest.partition("?")
    if "#" in query or "#" in path:
        raise _bad(text, "Adreste # olmamalı.")
    bucket, _, prefix = path.partition("/")
    if "@" in bucket or ":" in bucket:
        raise _bad(text, "Erişim anahtarı ve gizli anahtar adrese yazılmamalı: erişim anahtarı Firmalar'daki "
                         "Kullanıcı Adı'na, gizli anahtar Kimlik Bilgisi'ne (anahtarlık) girilir.")
    if not bucket:
        raise _bad(text, "Kova (bucket) adı eksik: s3:// ardından kova adı gelmeli.")
    if not _BUCKET.match(bucket) or ".." in bucket or re.match(r"^\d+\.\d+\.\d+\.\d+$", bucket):
        raise _bad(text, f"Kova adı \"{bucket}\" S3 kurallarına uymuyor (3-63 karakter; küçük harf a-z, rakam, "
                         "nokta ve tire; harf ya da rakamla başlayıp biter).")
    prefix = prefix.strip("/")
    if prefix:
        for seg in prefix.split("/"):
            if not seg or seg in (".", "..") or not _SEGMENT.match(seg):
                raise _bad(text, f"Önek \"{prefix}\" geçersiz: yalnızca harf (A-Z, a-z; Türkçe karakter "
                                 "olmadan), rakam, nokta, tire, alt çizgi ve aralarında / olabilir; boşluk, "
                                 "'..' ya da art arda // olamaz.")
    values: dict[str, str] = {}
    for item in (query.split("&") if query else []):
        if not item.strip():
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not eq:
            raise _bad(text, f"\"{name}\" ayarının değeri yok (ad=değer biçiminde yazılmalı).")
        if name not in PARAMS:
            if _SECRETISH.search(name):
                raise _bad(text, "Gizli anahtar ya da şifre adrese yazılmamalı; Kimlik Bilgisi (anahtarlık) "
                                 "olarak girilir.")
            raise _bad(text, f"Bilinmeyen ayar \"{name}\" (kullanılabilenler: {', '.join(PARAMS)}).")
        if name in values:
            raise _bad(text, f"\"{name}\" ayarı birden fazla yazılmış.")
        values[name] = unquote(value.strip())

    endpoint = values.get("endpoint", "").strip().rstrip("/")
    if endpoint:
        try:
            parts = urlsplit(endpoint)
            host = parts.hostname
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise _bad(text, f"endpoint \"{shown(endpoint)}\" bir adres değil.") from None
        if parts.scheme not in ("http", "https") or not host:
            raise _bad(text, f"endpoint \"{shown(endpoint)}\" https:// ile başlayan bir sunucu adresi olmalı.")
        if parts.username or parts.password:
            raise _bad(text, "endpoint içinde kullanıcı adı ya da şifre olmamalı: erişim anahtarı Firmalar'daki "
                             "Kullanıcı Adı'na, gizli anahtar Kimlik Bilgisi'ne girilir.")
        if parts.query or parts.fragment:
            raise _bad(text, "endpoint içinde ? ya da # olmamalı.")
        if parts.scheme == "http" and not is_loopback(host):
            raise _bad(text, f"Şifrelenmemiş http:// yalnızca bu bilgisayardaki sunucu için kullanılabilir; "
                             f"{host} için https:// kullanın.")

    region = values.get("region", "").strip()
    if region and not _REGION.match(region):
        raise _bad(text, f"region \"{region}\" geçersiz (ör. eu-central-1).")

    retention = DEFAULT_RETENTION
    if "retention" in values:
        raw = values["retention"].strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_RETENTION:
            raise _bad(text, f"retention \"{raw}\" geçersiz: kilit süresi yıl olarak 1 ile {MAX_RETENTION} arasında "
                             f"bir tam sayı olmalı (varsayılan {DEFAULT_RETENTION}; dönem yılının 31 Aralık'ından "
                             "sayılır).")
        retention = int(raw)

    mode = values.get("mode", "COMPLIANCE").strip().upper() or "COMPLIANCE"
    if mode not in MODES:
        raise _bad(text, f"mode \"{values.get('mode')}\" geçersiz: COMPLIANCE (varsayılan) ya da GOVERNANCE olmalı.")

    if "location" in values:
        loc = _LOCATION_ALIASES.get(values["location"].strip().lower().replace(" ", "-"))
        if loc is None:
            raise _bad(text, f"location \"{values['location']}\" geçersiz: TR, yurtdisi ya da bilinmiyor olmalı.")
    else:
        loc = "bilinmiyor" if endpoint else "yurtdisi"
    return S3Settings(bucket=bucket, prefix=prefix, endpoint=endpoint, region=region, retention_years=retention,
                      mode=mode, location=loc)


# ---- small helpers -----------------------------------------------------------------------------

def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _utc(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        from botocore.utils import parse_timestamp

        value = parse_timestamp(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(microsecond=0)


def _day(value: datetime | None) -> str:
    return value.strftime("%d.%m.%Y") if value else "yok"


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _month_label(period: str) -> str:
    from edefter_helper.status import month_label

    return month_label(period)


@dataclass
class _Hashes:
    md5: bytes
    sha256: str
    size: int
    part_md5: list[bytes] = field(default_factory=list)


def _hash_file(path: Path, part_size: int | None = None) -> _Hashes:
    """md5 + sha256 of the whole file (and md5 per part) in one streaming pass."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    parts: list[bytes] = []
    part = hashlib.md5() if part_size else None
    in_part = size = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            md5.update(block)
            sha.update(block)
            size += len(block)
            if part is not None:
                view = memoryview(block)
                while view:
                    take = min(len(view), part_size - in_part)
                    part.update(view[:take])
                    in_part += take
                    view = view[take:]
                    if in_part == part_size:
                        parts.append(part.digest())
                        part, in_part = hashlib.md5(), 0
    if part is not None and in_part:
        parts.append(part.digest())
    return _Hashes(md5.digest(), sha.hexdigest(), size, parts)


class _FileSlice:
    """A seekable, read-only window of a file, so a multipart upload streams each part from disk."""

    def __init__(self, path: Path, start: int, length: int):
        self._f = open(path, "rb")
        self._start, self._len, self._pos = start, length, 0
        self._f.seek(start)

    def read(self, n: int = -1) -> bytes:
        left = self._len - self._pos
        if left <= 0:
            return b""
        n = left if n is None or n < 0 else min(n, left)
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._len}[whence]
        self._pos = max(0, min(self._len, base + offset))
        self._f.seek(self._start + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return self._len

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class _Held:
    """One stored version of a month's key, as the server describes it."""

    version_id: str
    sha256: str
    size: int
    etag: str
    mode: str | None
    retain_until: datetime | None
    stored_at: str
    description: str
    newer: int = 0  # later versions of the same key (another tool, an attacker, a race)
    hidden: bool = False  # the latest entry is a delete marker


# ---- the target --------------------------------------------------------------------------------

class S3Target(Target):
    kind = "s3"
    single_put_limit = SINGLE_PUT_LIMIT  # tests lower these to exercise the multipart path
    min_part = MIN_PART

    def __init__(self, settings: S3Settings | str, access_key: str, secret_key: str,
                 timeout: float | tuple | None = None, worm: bool | None = None, ca_file: str | None = None):
        if isinstance(settings, str):
            settings = parse_address(settings)
        if not access_key:
            raise CredentialsError("S3 hedefi için erişim anahtarı (Firmalar > Kullanıcı Adı) boş.")
        if not secret_key:
            raise CredentialsError(f"S3 erişim anahtarı {access_key} için gizli anahtar (Kimlik Bilgisi) yok.")
        self.settings = settings
        self.access_key = access_key
        self.worm = worm  # the WORM probe's answer, when known
        self.worm_detail = ""
        connect, read = (timeout if isinstance(timeout, tuple) else (min(timeout, 10.0), timeout)) \
            if timeout else (10.0, 300.0)
        import botocore.session  # here, not at import: the registry loads every kind for the drop-down and help
        from botocore.config import Config

        session = botocore.session.Session()
        # the user's ~/.aws files and AWS_* endpoint variables must not redirect or re-key this target
        session.set_config_variable("config_file", os.devnull)
        session.set_config_variable("credentials_file", os.devnull)
        session.set_config_variable("ignore_configured_endpoint_urls", True)
        config = Config(
            region_name=settings.region or "us-east-1",
            signature_version="s3v4",
            s3={"addressing_style": "path" if settings.endpoint else "auto"},
            retries={"total_max_attempts": 1},  # targets.retry retries, once, for every target
            connect_timeout=connect, read_timeout=read,
            # only the checksums we send ourselves (Content-MD5, x-amz-checksum-sha256): botocore's default
            # CRC32 trailers (aws-chunked) are not understood by every S3-compatible server
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
            user_agent_extra="edefter-yedekleme",
        )
        self.client = session.create_client(
            "s3", endpoint_url=settings.endpoint or None, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, config=config,
            **({"verify": str(ca_file)} if ca_file else {}))
        self._lock_checked = False

    def __repr__(self) -> str:
        return f"S3Target({self.settings.where()!r}, access_key={self.access_key!r})"

    # ---- errors ----------------------------------------------------------------------------------

    def _where(self) -> str:
        return self.settings.endpoint or "AWS S3"

    def _error(self, exc: Exception, action: str) -> TargetError:
        """A botocore error as one of the target errors, in Turkish, without secrets."""
        from botocore import exceptions as be

        where = self._where()
        if isinstance(exc, be.SSLError):
            return TargetError(f"S3 sunucusuyla TLS bağlantısı kurulamadı ({where}); sertifika geçersiz olabilir "
                               "ya da sunucu https konuşmuyor. Bağlantı kurulmadı.")
        if isinstance(exc, be.EndpointConnectionError):
            inner = exc.kwargs.get("error")
            from urllib3.exceptions import NameResolutionError

            why = "sunucu adı çözümlenemedi" if isinstance(inner, NameResolutionError) or \
                "resolution" in str(inner).lower() or "Name or service" in str(inner) else "bağlantı reddedildi"
            return UnreachableError(f"S3 sunucusuna ulaşılamıyor ({where}): {why}.")
        if isinstance(exc, (be.ConnectTimeoutError, be.ReadTimeoutError)):
            return TransientError(f"S3 sunucusu zamanında yanıt vermedi ({where}).")
        if isinstance(exc, (be.ConnectionClosedError, be.HTTPClientError, be.ResponseStreamingError,
                            be.IncompleteReadError)):
            return TransientError(f"S3 sunucusuyla bağlantı koptu ({where}).")
        if isinstance(exc, be.NoCredentialsError):
            return CredentialsError("S3 erişim anahtarı ya da gizli anahtar eksik.")
        if isinstance(exc, BotoCoreError):
            return TransientError(f"S3 sunucusuyla iletişim hatası ({type(exc).__name__}).")
        if not isinstance(exc, ClientError):
            return TargetError(f"S3 {action}: beklenmeyen hata ({type(exc).__name__}).")
        err = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        code = str(err.get("Code") or "")
        status = int(meta.get("HTTPStatusCode") or 0)
        said = str(err.get("Message") or "").strip()
        said = f" (sunucu: {code}{': ' + said if said else ''})" if code else ""
        bucket = self.settings.bucket
        if code == "NoSuchBucket":
            return ConfigurationError(f"S3 kovası \"{bucket}\" bulunamadı ({where}). Kova adı ya da endpoint "
                                      "yanlış olabilir.")
        if code == "RequestTimeTooSkewed":
            return ConfigurationError("S3 sunucusu isteği reddetti: bu bilgisayarın saati sunucununkinden çok farklı. "
                                      "Saat ve saat dilimi ayarını düzeltin.")
        if code in ("AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException") \
                or status == 301:
            return ConfigurationError(f"S3 kovası \"{bucket}\" başka bir bölgede ya da başka bir endpoint'te; "
                                      f"adresteki region/endpoint ayarını kontrol edin{said}.")
        if code in _AUTH or status == 403:
            if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken") \
                    or (status == 403 and code in ("403", "Forbidden", "")):
                return CredentialsError(
                    f"S3 sunucusu ({where}) erişim anahtarını ({self.access_key}) ya da gizli anahtarı kabul etmedi "
                    f"veya bu anahtarın \"{bucket}\" kovasında yetkisi yok{said}.")
            return CredentialsError(f"S3 erişim anahtarının ({self.access_key}) \"{bucket}\" kovasında bu işlem için "
                                    f"yetkisi yok: {action}{said}.")
        if code in _BUSY or status == 429 or status >= 500:
            from edefter_helper.targets.retry import parse_retry_after

            headers = meta.get("HTTPHeaders", {}) or {}
            return TransientError(f"S3 sunucusu geçici olarak yanıt veremiyor ({where}, HTTP {status}){said}.",
                                  retry_after=parse_retry_after(headers.get("retry-after")), status=status)
        if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "IncompleteBody"):
            return TransientError(f"Paket S3 sunucusuna aktarılırken bozuldu; sunucu kabul etmedi{said}.",
                                  status=status)
        if code == "EntityTooLarge":
            return RejectedError(f"Paket S3 sunucusunun boyut sınırını aşıyor{said}.")
        return RejectedError(f"S3 sunucusu isteği reddetti: {action} (HTTP {status}){said}.")

    def _call(self, action: str, fn, **kw):
        try:
            return fn(**kw)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, action) from None

    def _no_lock_text(self) -> str:
        return (f"S3 kovası \"{self.settings.bucket}\" Object Lock (nesne kilidi) açık olmadan oluşturulmuş: "
                "bu kovadaki kopyalar silinebilir ve değiştirilebilir (WORM değil). Object Lock yalnızca kova "
                "oluşturulurken açılabilir; Object Lock açık yeni bir kova oluşturup adresi ona çevirin.")

    # ---- reading what is stored --------------------------------------------------------------------

    def check_bucket(self) -> None:
        """The bucket exists and has Object Lock enabled (asked once per target object)."""
        if self._lock_checked:
            return
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.settings.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code") or "")
            if code == "AccessDenied":  # a key without s3:GetBucketObjectLockConfiguration: each version is checked
                self._lock_checked = True
                return
            if code == "ObjectLockConfigurationNotFoundError":
                raise ConfigurationError(self._no_lock_text()) from None
            raise self._error(exc, "kova ayarları okunamadı") from None
        except BotoCoreError as exc:
            raise self._error(exc, "kova ayarları okunamadı") from None
        if (conf.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
            raise ConfigurationError(self._no_lock_text())
        self._lock_checked = True

    def _versions(self, object_key: str) -> tuple[list[str], bool] | None:
        """The key's version ids, newest first, and whether a delete marker is the latest entry;
        None when the key may not be listed (then only the latest version is seen)."""
        versions: list[tuple[str, bool]] = []
        hidden = False
        kw = {"Bucket": self.settings.bucket, "Prefix": object_key}
        for _ in range(100):
            try:
                page = self.client.list_object_versions(**kw)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("AccessDenied", "NotImplemented"):
                    return None
                raise self._error(exc, "sürümler listelenemedi") from None
            except BotoCoreError as exc:
                raise self._error(exc, "sürümler listelenemedi") from None
            for v in page.get("Versions") or []:
                if v.get("Key") == object_key:
                    versions.append((v.get("VersionId") or "null", bool(v.get("IsLatest"))))
            for m in page.get("DeleteMarkers") or []:
                if m.get("Key") == object_key and m.get("IsLatest"):
                    hidden = True
            if not page.get("IsTruncated"):
                break
            kw.update(KeyMarker=page.get("NextKeyMarker", ""), VersionIdMarker=page.get("NextVersionIdMarker", ""))
        return [v for v, _ in versions], hidden

    def _head(self, object_key: str, version_id: str | None) -> dict | None:
        kw = {"Bucket": self.settings.bucket, "Key": object_key}
        if version_id:
            kw["VersionId"] = version_id
        try:
            return self.client.head_object(**kw)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                return None
            raise self._error(exc, "paket bilgisi okunamadı") from None
        except BotoCoreError as exc:
            raise self._error(exc, "paket bilgisi okunamadı") from None

    def _retention(self, object_key: str, version_id: str | None, head: dict) -> tuple[str | None, datetime | None]:
        """The version's lock as GetObjectRetention reports it (HEAD's lock headers when that is not allowed)."""
        kw = {"Bucket": self.settings.bucket, "Key": object_key}
        if version_id and version_id != "null":
            kw["VersionId"] = version_id
        try:
            ret = self.client.get_object_retention(**kw).get("Retention") or {}
            return ret.get("Mode"), _utc(ret.get("RetainUntilDate"))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _NO_RETENTION:
                return None, None
            if code == "AccessDenied":
                return head.get("ObjectLockMode"), _utc(head.get("ObjectLockRetainUntilDate"))
            raise self._error(exc, "kilit bilgisi okunamadı") from None
        except BotoCoreError as exc:
            raise self._error(exc, "kilit bilgisi okunamadı") from None

    def _describe(self, object_key: str, version_id: str | None, head: dict) -> _Held:
        meta = head.get("Metadata") or {}
        mode, until = self._retention(object_key, version_id or head.get("VersionId"), head)
        modified = head.get("LastModified")
        return _Held(version_id=version_id or head.get("VersionId") or "", sha256=(meta.get("sha256") or "").lower(),
                     size=int(head.get("ContentLength") or 0), etag=(head.get("ETag") or "").strip('"'),
                     mode=mode, retain_until=until, stored_at=_iso(_utc(modified)) if modified else "",
                     description=unquote(meta.get("description") or ""))

    def _held(self, key: MonthKey) -> _Held | None:
        """The month's copy: the oldest version of its key (see the module docstring)."""
        object_key = self.settings.key_for(key)
        listed = self._versions(object_key)
        if listed is None:
            head = self._head(object_key, None)
            return None if head is None else self._describe(object_key, head.get("VersionId"), head)
        versions, hidden = listed
        for i, vid in enumerate(reversed(versions)):  # oldest first; a version deleted meanwhile is skipped
            head = self._head(object_key, vid)
            if head is not None:
                held = self._describe(object_key, vid, head)
                held.newer, held.hidden = len(versions) - 1 - i, hidden
                return held
        return None

    # ---- judging a lock ---------------------------------------------------------------------------

    def _lock_ok(self, held: _Held, until: datetime, exact: bool) -> bool:
        if held.retain_until is None or held.mode not in MODES:
            return False
        if self.settings.mode == "COMPLIANCE" and held.mode != "COMPLIANCE":
            return False
        if exact:
            return held.mode == self.settings.mode and held.retain_until == until
        return held.retain_until >= until

    def _lock_text(self, held: _Held) -> str:
        if held.retain_until is None or not held.mode:
            return "kilit yok"
        return f"{held.mode} kilidi {_day(held.retain_until)} tarihine kadar"

    def _receipt(self, key: MonthKey, held: _Held, state: str, message: str) -> Receipt:
        s = self.settings
        if s.location != "TR":
            message += (f" Konum: {s.location_label} — KVKK'ya göre yurt dışında saklama yurt dışına aktarımdır; "
                        "birincil e-Defter kopyası Türkiye'de kalmalıdır." if s.location == "yurtdisi" else
                        f" Konum: {s.location_label} — verinin Türkiye'de olup olmadığı belirtilmemiş (KVKK).")
        if held.newer:
            message += (f" Not: bu anahtara sonradan {held.newer} başka sürüm yazılmış; esas alınan, ilk yazılan "
                        "(kilitli) sürümdür.")
        if held.hidden:
            message += " Not: paket bir silme işaretiyle gizlenmiş; kilitli sürüm yerinde duruyor."
        return Receipt(state=state, reference=held.version_id, sha256=held.sha256, message=message,
                       extra={"retain_until": _iso(held.retain_until), "mode": held.mode or "",
                              "location": s.location, "version_id": held.version_id, "worm": self.worm,
                              "bucket": s.bucket, "key": s.key_for(key), "size": held.size,
                              "stored_at": held.stored_at, "description": held.description})

    def _stored(self, key: MonthKey, held: _Held, how: str) -> Receipt:
        strength = "silinemez" if held.mode == "COMPLIANCE" else "kilidi atlatma yetkisi olan bir hesap silebilir"
        return self._receipt(key, held, STORED,
                             f"{how} {_day(held.retain_until)} tarihine kadar {held.mode} kilitli ({strength}).")

    def _not_locked(self, key: MonthKey, held: _Held, until: datetime) -> Receipt:
        return self._receipt(key, held, REJECTED, (
            f"{key.package_name} S3'e yazıldı ama kilidi istenen gibi değil: {self.settings.mode} kilidi "
            f"{_day(until)} tarihine kadar istendi, sunucudan okunan: {self._lock_text(held)}. Bu kopya "
            "değiştirilebilir ya da silinebilir olduğundan Yedeklendi sayılmadı; aynı paket yeniden gönderilince "
            "kilit yeniden kurulmaya çalışılır."))

    def _ensure_lock(self, key: MonthKey, held: _Held, until: datetime) -> Receipt:
        """Set a missing or shorter lock on the version (never shortens: S3 refuses that), read it back."""
        object_key = self.settings.key_for(key)
        if not self._lock_ok(held, until, exact=False):
            try:
                kw = {"Bucket": self.settings.bucket, "Key": object_key,
                      "Retention": {"Mode": self.settings.mode, "RetainUntilDate": until}}
                if held.version_id and held.version_id != "null":
                    kw["VersionId"] = held.version_id
                self.client.put_object_retention(**kw)
            except (ClientError, BotoCoreError) as exc:
                err = self._error(exc, "kilit kurulamadı")
                if isinstance(err, TransientError):
                    raise err from None
                receipt = self._not_locked(key, held, until)
                receipt.message += f" Kilit kurma denemesi: {err.message}"
                return receipt
            head = self._head(object_key, held.version_id)
            if head is None:
                raise TargetError(f"{key.package_name} S3'e yazıldı ama hemen ardından bulunamadı.")
            newer, hidden = held.newer, held.hidden
            held = self._describe(object_key, held.version_id, head)
            held.newer, held.hidden = newer, hidden
            if not self._lock_ok(held, until, exact=True):
                return self._not_locked(key, held, until)
            return self._stored(key, held, "Paket S3'e yazıldı, kilidi ayrıca kuruldu; sha256 ve kilit geri "
                                           "okunarak doğrulandı:")
        return self._stored(key, held, "Paket S3'te saklanıyor:")

    # ---- Target ------------------------------------------------------------------------------------

    def send(self, package: Package, description: str) -> Receipt:
        key = package.key
        until = self.settings.retain_until(key.period)
        now = datetime.now(timezone.utc)
        if until <= now + timedelta(days=1):
            raise RejectedError(
                f"{_month_label(key.period)} döneminin saklama süresi ({self.settings.retention_years} yıl, "
                f"{_day(until)}) dolmuş ya da dolmak üzere; geçmiş bir tarihe kilit konamaz. Bu dönem bu hedefe "
                "kilitli olarak gönderilemez.")
        path = Path(package.path)
        if not path.is_file():
            raise TargetError(f"Gönderilecek paket bulunamadı: {path}")
        self.check_bucket()
        object_key = self.settings.key_for(key)
        held = self._held(key)
        if held is not None:
            if held.sha256 != package.sha256.lower():
                raise RejectedError(
                    f"{_month_label(key.period)} için S3'te farklı bir paket saklanıyor ({object_key}, sha256 "
                    f"{held.sha256[:12] or 'bilinmiyor'}…, gönderilen {package.sha256[:12]}…); üzerine yazılmadı. "
                    "Bir dönem bir kez saklanır. Kilitli sürüm silinemez; yeni bir sürüm yazmak da eskisini gizlemez, "
                    "iki farklı paket yan yana kalırdı. Yeni paket için başka bir önek ya da kova kullanılmalı.")
            return self._ensure_lock(key, held, until)

        size = path.stat().st_size
        multipart = size > self.single_put_limit
        part_size = max(self.min_part, math.ceil(size / MAX_PARTS / CHUNK) * CHUNK) if multipart else None
        hashes = _hash_file(path, part_size)
        if hashes.sha256 != package.sha256.lower() or hashes.size != package.size:
            raise RejectedError(f"{key.package_name} paketi oluşturulduktan sonra değişmiş; paket yeniden "
                                "oluşturulmalı.")
        meta = {"sha256": hashes.sha256, "size": str(size), "package": key.package_name,
                "description": quote((description or "")[:200], safe="")}
        lock = {"ObjectLockMode": self.settings.mode, "ObjectLockRetainUntilDate": until}
        if multipart:
            version_id, etag = self._multipart(path, object_key, hashes, part_size, meta, lock)
        else:
            with open(path, "rb") as body:  # a file object: streamed in blocks, never read whole
                out = self._call(f"{key.package_name} yazılamadı", self.client.put_object,
                                 Bucket=self.settings.bucket, Key=object_key, Body=body, ContentLength=size,
                                 ContentMD5=_b64(hashes.md5), ChecksumSHA256=_b64(bytes.fromhex(hashes.sha256)),
                                 ContentType="application/zip", Metadata=meta, **lock)
            version_id, etag = out.get("VersionId"), hashes.md5.hex()
        if not version_id:
            raise ConfigurationError(self._no_lock_text()
                                     + " (Sunucu sürüm numarası vermedi: kovada sürümleme kapalı.)")
        return self._verify_written(key, object_key, version_id, hashes, etag, until)

    def _multipart(self, path: Path, object_key: str, hashes: _Hashes, part_size: int, meta: dict,
                   lock: dict) -> tuple[str | None, str]:
        bucket = self.settings.bucket
        up = self._call("çok parçalı yükleme başlatılamadı", self.client.create_multipart_upload,
                        Bucket=bucket, Key=object_key, ContentType="application/zip", Metadata=meta, **lock)
        upload_id = up["UploadId"]
        try:
            parts = []
            for number, md5 in enumerate(hashes.part_md5, start=1):
                start = (number - 1) * part_size
                length = min(part_size, hashes.size - start)
                with _FileSlice(path, start, length) as body:
                    out = self._call(f"parça {number} yazılamadı", self.client.upload_part, Bucket=bucket,
                                     Key=object_key, UploadId=upload_id, PartNumber=number, Body=body,
                                     ContentLength=length, ContentMD5=_b64(md5))
                parts.append({"PartNumber": number, "ETag": out["ETag"]})
            done = self._call("çok parçalı yükleme tamamlanamadı", self.client.complete_multipart_upload,
                              Bucket=bucket, Key=object_key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=bucket, Key=object_key, UploadId=upload_id)
            except Exception:  # noqa: BLE001  (the first error is the one to tell)
                pass
            raise
        composite = hashlib.md5(b"".join(hashes.part_md5)).hexdigest() + f"-{len(hashes.part_md5)}"
        return done.get("VersionId"), composite

    def _verify_written(self, key: MonthKey, object_key: str, version_id: str, hashes: _Hashes, etag: str,
                        until: datetime) -> Receipt:
        head = self._head(object_key, version_id)
        if head is None:
            raise TargetError(f"{key.package_name} S3'e yazıldı ama hemen ardından bulunamadı; depolama "
                              "kontrol edilmeli.")
        held = self._describe(object_key, version_id, head)
        bad = []
        if held.sha256 != hashes.sha256:
            bad.append("saklanan sha256 gönderilenle aynı değil")
        if held.size != hashes.size:
            bad.append(f"boyut {held.size} bayt, gönderilen {hashes.size} bayt")
        # a multipart ETag is the md5 of the parts' md5s (not under KMS or customer keys): the assembly check
        if "-" in etag and re.fullmatch(r"[0-9a-f]{32}-\d+", held.etag) and held.etag.endswith(etag[32:]) \
                and head.get("ServerSideEncryption") in (None, "AES256") and not head.get("SSECustomerAlgorithm") \
                and held.etag != etag:
            bad.append("sunucunun parça özetleri (ETag) gönderilen parçalarla aynı değil")
        if bad:
            raise IntegrityError(f"{key.package_name} S3'e yazıldı ama geri okunan bilgiler farklı: "
                                 f"{'; '.join(bad)}. Yedeklendi sayılmadı.")
        # the month's copy is the oldest version: another writer may have been faster
        first = self._held(key)
        if first is not None and first.version_id != version_id and first.sha256 != hashes.sha256:
            raise RejectedError(f"{_month_label(key.period)} için aynı anda S3'e başka bir paket yazılmış "
                                f"(sha256 {first.sha256[:12]}…); esas alınan o. Gönderilen paket yeni bir sürüm "
                                "olarak kaldı.")
        if first is not None:
            held.newer, held.hidden = first.newer, first.hidden
            if first.version_id != version_id:  # an identical, older copy: that one is the month's copy
                return self._ensure_lock(key, first, until)
        if self._lock_ok(held, until, exact=True):
            return self._stored(key, held, "Paket S3'e yazıldı; sha256 ve kilit geri okunarak doğrulandı:")
        return self._ensure_lock(key, held, until)

    def query(self, key: MonthKey) -> Receipt:
        self.check_bucket()
        held = self._held(key)
        if held is None:
            return Receipt(state=MISSING, message="S3 kovasında bu aya ait paket yok.",
                           extra={"location": self.settings.location, "worm": self.worm})
        until = self.settings.retain_until(key.period)
        if not held.sha256:
            return self._receipt(key, held, REJECTED, "S3'teki nesnede paketin sha256 özeti yok: bu araçla "
                                                      "yazılmamış; Yedeklendi sayılmadı.")
        if not self._lock_ok(held, until, exact=False):
            return self._receipt(key, held, REJECTED, (
                f"Paket S3'te var ama kilidi yetersiz: {self.settings.mode} kilidi {_day(until)} tarihine kadar "
                f"istenir, okunan: {self._lock_text(held)}. Aynı paket yeniden gönderilince kilit uzatılır."))
        return self._stored(key, held, "Paket S3'te saklanıyor:")

    def fetch(self, key: MonthKey, dest: Path) -> Path:
        held = self._held(key)
        if held is None:
            raise RejectedError(f"{key.package_name} S3 kovasında bulunamadı.")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        kw = {"Bucket": self.settings.bucket, "Key": self.settings.key_for(key)}
        if held.version_id and held.version_id != "null":
            kw["VersionId"] = held.version_id
        resp = self._call(f"{key.package_name} indirilemedi", self.client.get_object, **kw)
        want = ((resp.get("Metadata") or {}).get("sha256") or held.sha256).lower()
        digest = hashlib.sha256()
        size = 0
        body = resp["Body"]
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            with atomic_write(dest) as out:
                for block in body.iter_chunks(CHUNK):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
                if (want and digest.hexdigest() != want) or (held.size and size != held.size):
                    raise IntegrityError("Hedefteki kopya bozuk: S3'ten indirilen paketin sha256 özeti kayıtlı "
                                         "özetten farklı.")
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"{key.package_name} indirilemedi") from None
        except Urllib3Error:
            raise TransientError("Paket S3'ten indirilirken bağlantı koptu.") from None
        finally:
            body.close()
        return dest

    def cancel(self, key: MonthKey) -> Receipt:
        raise NotSupported(f"S3 Object Lock ile kilitli paket kilit süresi dolmadan silinemez ({key.package_name}); "
                           "iptal edilemez.")

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            close()


# ---- the WORM probe ------------------------------------------------------------------------------

def probe(target) -> tuple[bool, str]:
    """Does this store really keep a locked version? Writes a small object with a 1-day COMPLIANCE lock
    under ÖNEK/.edefter-worm-probe/ and tries, with the target's own credentials, to delete that version
    (plainly and with the governance bypass), to shorten its retention and to turn it into GOVERNANCE. A
    store that allows any of these is "değiştirilebilir (WORM değil)". For a GOVERNANCE target the same
    is tried on a GOVERNANCE-locked object with the bypass, and the answer is False either way: its copies
    can be removed by an account allowed to bypass governance. Probe objects stay until their lock ends
    (a day; a lifecycle rule may remove them later). The answer is kept on the target (`worm`) and given
    in every later receipt. Unreachable servers and refused credentials raise as usual."""
    inner = getattr(target, "target", target)  # through the retry wrapper
    if not isinstance(inner, S3Target):
        return False, "Bu hedef türü için WORM denetimi yok: kopyaları değiştirilebilir sayılır."
    worm, detail = _probe(inner)
    inner.worm, inner.worm_detail = worm, detail
    return worm, detail


def _refused(t: S3Target, action, *, what: str) -> bool:
    """True when the server refused `action`; transient and credential failures raise."""
    try:
        action()
    except ClientError as exc:
        err = t._error(exc, what)
        if isinstance(err, TransientError):
            raise err from None
        return True
    except BotoCoreError as exc:
        raise t._error(exc, what) from None
    return False


def _probe(t: S3Target) -> tuple[bool, str]:
    bad = "değiştirilebilir (WORM değil)"
    try:
        t.check_bucket()
    except CredentialsError:
        raise
    except ConfigurationError as exc:
        if "Object Lock" in exc.message:
            return False, f"Kovada Object Lock açık değil: {bad}."
        raise
    s, bucket = t.settings, t.settings.bucket
    name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.txt"
    key = "/".join(p for p in (s.prefix, PROBE_DIR, name) if p)
    body = b"e-Defter Yedekleme WORM denetimi\n"

    def put(mode: str, until: datetime) -> str | None:
        try:
            out = t.client.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=_b64(hashlib.md5(body).digest()),
                                      ContentType="text/plain", ObjectLockMode=mode, ObjectLockRetainUntilDate=until)
        except (ClientError, BotoCoreError) as exc:
            err = t._error(exc, "WORM denetim nesnesi yazılamadı")
            if isinstance(err, (TransientError, CredentialsError)):
                raise err from None
            return None
        return out.get("VersionId")

    def gone(vid: str) -> bool:
        return t._head(key, vid) is None

    until = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    vid = put("COMPLIANCE", until)
    if not vid:
        return False, f"Depo COMPLIANCE kilitli bir nesneyi kabul etmedi ya da sürüm numarası vermedi: {bad}."
    head = t._head(key, vid) or {}
    mode, got = t._retention(key, vid, head)
    if mode != "COMPLIANCE" or got is None or got < until:
        return False, (f"Depo kilit başlıklarını kabul etti ama uygulamadı (okunan: {mode or 'kilit yok'} "
                       f"{_day(got)}): {bad}.")
    found = []
    for bypass in (False, True):
        kw = {"Bucket": bucket, "Key": key, "VersionId": vid}
        if bypass:
            kw["BypassGovernanceRetention"] = True
        deleted = not _refused(t, lambda kw=kw: t.client.delete_object(**kw), what="WORM denetimi: silme")
        if deleted and gone(vid):
            found.append("kilitli sürüm silinebildi" + (" (governance atlatmasıyla)" if bypass else ""))
            break
    if not found:
        shorter = until - timedelta(hours=12)
        done = not _refused(t, lambda: t.client.put_object_retention(
            Bucket=bucket, Key=key, VersionId=vid, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter}),
            what="WORM denetimi: süre kısaltma")
        if done and (t._retention(key, vid, {})[1] or until) < until:
            found.append("saklama süresi kısaltılabildi")
        done = not _refused(t, lambda: t.client.put_object_retention(
            Bucket=bucket, Key=key, VersionId=vid, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until}),
            what="WORM denetimi: kip değiştirme")
        if done and t._retention(key, vid, {})[0] != "COMPLIANCE":
            found.append("kilit GOVERNANCE kipine indirilebildi")
    if found:
        return False, f"COMPLIANCE kilidine rağmen {', '.join(found)}: {bad}."
    detail = "Kilitli sürüm silinemedi ve saklama süresi kısaltılamadı: değiştirilemez (WORM)."
    if s.mode == "GOVERNANCE":  # the store can keep a copy, but this target's copies are not immutable
        key = key.replace(".txt", "-governance.txt")
        gvid = put("GOVERNANCE", until)
        own = bool(gvid) and not _refused(t, lambda: t.client.delete_object(
            Bucket=bucket, Key=key, VersionId=gvid, BypassGovernanceRetention=True),
            what="WORM denetimi: governance silme") and gone(gvid)
        who = "bu erişim anahtarı bile kilidi atlatıp silebiliyor" if own else \
            "kilidi atlatma yetkisi olan bir hesap silebilir"
        return False, (f"Depo COMPLIANCE kilidini koruyor, ancak bu hedef GOVERNANCE kipinde: {who}; {bad}. "
                       "Kopyaların değiştirilemez olması için adreste mode=COMPLIANCE kullanın.")
    return True, detail


def _open(address: str, user: str, password: str | None, timeout=None) -> S3Target:
    return S3Target(parse_address(address), user, password or "", timeout=timeout)


from edefter_helper.targets.registry import TargetKind, register  # noqa: E402  (registers this kind)

register(TargetKind(
    "s3", "S3 uyumlu nesne depolama (Object Lock)", needs_password=True,
    address_help=(
        "s3://KOVA/ÖNEK?endpoint=https://s3.firma.com.tr&region=eu-central-1&retention=10&mode=COMPLIANCE"
        "&location=TR — kova Object Lock açık oluşturulmuş olmalı; ÖNEK isteğe bağlı (a-z, 0-9, . _ - ve /); "
        "endpoint boşsa AWS S3; retention: kilit süresi, yıl (varsayılan 10, dönem yılının 31 Aralık'ından "
        "sayılır); mode: COMPLIANCE (varsayılan) ya da GOVERNANCE; location: TR, yurtdisi ya da bilinmiyor "
        "(KVKK: birincil kopya Türkiye'de kalmalı). Kullanıcı Adı: erişim anahtarı (access key id); şifre: gizli "
        "anahtar (secret key)"),
    open=_open, aliases=("s3-object-lock",)))
