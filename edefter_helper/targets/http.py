"""Target for the project's own storage server (docs/storage-api.md).

No retries here: targets.retry wraps any target. TLS certificates are always verified;
plain http:// is allowed only to loopback (the embedded demo server).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from edefter_helper.engine.model import MonthKey
from edefter_helper.netutil import is_loopback
from edefter_helper.engine.names import valid_branch, valid_period
from edefter_helper.targets.base import (
    ACCEPTED, MISSING, REJECTED, STORED, ConfigurationError, CredentialsError, IntegrityError, Package, Receipt,
    RejectedError, Target, TargetError, TransientError, UnreachableError,
)
from edefter_helper.targets.retry import parse_retry_after

_CHUNK = 1 << 20
_STATES = {ACCEPTED, STORED, REJECTED, MISSING}




BATCH = 500  # months per POST /v1/months/query


class HttpTarget(Target):
    kind = "http"
    batch_query = True

    def __init__(self, base_url: str, user: str, password: str, timeout: float | tuple = (10, 300),
                 ca_file: str | os.PathLike | None = None):
        parts = urlsplit(base_url)
        # settings problems (ConfigurationError): said once per run, never a crash of the run
        if parts.scheme not in ("http", "https") or not parts.hostname:
            typed = re.sub(r"^([^/]*//)?[^/@]*@", r"\1", base_url)  # never echo a password typed into it
            host = re.sub(r"^(?:https?|ftp)?:?/+", "", typed).split("/")[0] or "yedek.firma.com.tr"
            raise ConfigurationError(f"Depolama sunucusu adresi geçersiz: '{typed}'; https:// ile başlamalı "
                                     f"(ör. https://{host}).")
        if parts.username or parts.password:
            # credentials in a URL end up in logs and error texts
            raise ConfigurationError("Kullanıcı adı ve şifre adrese yazılmamalı; ayrı alanlarda verin.")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigurationError(
                f"Şifrelenmemiş http:// yalnızca bu bilgisayardaki sunucu için kullanılabilir; "
                f"{parts.hostname} için https:// kullanın.")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        # UTF-8, as the server decodes it (requests would send str as latin-1 and fail on ş, ğ)
        self._session.auth = (user.encode("utf-8"), password.encode("utf-8"))
        self._session.trust_env = False  # no netrc or CA-bundle variables; TLS verification stays on
        # the office's proxy as a browser uses it: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, else the system's
        # settings (Windows registry, macOS) through urllib; this computer's own server always directly
        self._session.proxies = {} if is_loopback(parts.hostname) else {
            k: v for k, v in requests.utils.get_environ_proxies(self.base_url).items() if k in ("http", "https", "all")}
        self._session.verify = str(ca_file) if ca_file else True
        self._session.headers["User-Agent"] = "edefter-yedekleme"
        self._max_size: int | None = None
        self._no_batch = False  # the server has no POST /v1/months/query

    # ---- plumbing ----------------------------------------------------------------------------

    def _url(self, key: MonthKey, suffix: str = "") -> str:
        return f"{self.base_url}/v1/months/{key.vkn}/{key.branch}/{key.period}{suffix}"

    def _request(self, method: str, url: str, allow: tuple[int, ...] = (), **kw) -> requests.Response:
        try:
            resp = self._session.request(method, url, timeout=self.timeout, **kw)
        except requests.exceptions.SSLError as exc:
            # permanent: retrying cannot make a certificate valid or an http server speak TLS
            raise TargetError(_tls_reason(exc, self.base_url)) from None
        except requests.exceptions.Timeout:
            raise TransientError("Depolama sunucusu zamanında yanıt vermedi.") from None
        except requests.exceptions.ConnectionError as exc:
            if _nobody_there(exc):
                raise UnreachableError(f"Depolama sunucusuna ulaşılamıyor ({self.base_url}): "
                                       f"{_why_unreachable(exc)}.") from None
            raise TransientError("Depolama sunucusuyla bağlantı koptu.") from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"Depolama sunucusuyla iletişim hatası ({type(exc).__name__}).") from None
        if resp.status_code >= 400 and resp.status_code not in allow:
            self._raise_for(resp)
        return resp

    @staticmethod
    def _message(resp: requests.Response) -> str:
        try:
            body = resp.json()
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                return body["message"]
        except ValueError:
            pass
        return ""

    def _raise_for(self, resp: requests.Response) -> None:
        status = resp.status_code
        msg = self._message(resp)
        resp.close()
        if status in (401, 403):
            raise CredentialsError(msg or (
                "Depolama sunucusu kullanıcı adını ya da şifreyi kabul etmedi." if status == 401
                else "Bu kullanıcının bu VKN için yetkisi yok."))
        if status == 413:
            raise RejectedError(msg or "Paket depolama sunucusunun boyut sınırını aşıyor.")
        if status == 429 or status >= 500:
            raise TransientError(msg or f"Depolama sunucusu geçici olarak yanıt veremiyor (HTTP {status}).",
                                 retry_after=parse_retry_after(resp.headers.get("Retry-After")), status=status)
        raise RejectedError(msg or f"Depolama sunucusu isteği reddetti (HTTP {status}).")

    @staticmethod
    def _receipt(body: dict) -> Receipt:
        state = body.get("state")
        if state not in _STATES:
            raise TransientError("Depolama sunucusunun yanıtı anlaşılamadı.")
        return Receipt(state=state, reference=body.get("receipt") or "", sha256=body.get("sha256") or "",
                       message=body.get("message") or "",
                       extra={k: body[k] for k in ("stored_at", "received_at", "size") if body.get(k)})

    def _json(self, resp: requests.Response) -> dict:
        try:
            body = resp.json()
        except ValueError:
            raise TransientError("Depolama sunucusunun yanıtı anlaşılamadı.") from None
        if not isinstance(body, dict):
            raise TransientError("Depolama sunucusunun yanıtı anlaşılamadı.")
        return body

    def max_size(self) -> int | None:
        """The server's size limit (from /v1/health), asked once."""
        if self._max_size is None:
            body = self._json(self._request("GET", f"{self.base_url}/v1/health"))
            self._max_size = body.get("max_size") if isinstance(body.get("max_size"), int) else 0
        return self._max_size or None

    # ---- Target ------------------------------------------------------------------------------

    def send(self, package: Package, description: str) -> Receipt:
        size = package.path.stat().st_size
        limit = self.max_size()
        # a server may close the connection on 413 before we read its answer: check first
        if limit is not None and size > limit:
            raise RejectedError(f"Paket ({size} bayt) depolama sunucusunun sınırını ({limit} bayt) aşıyor.")
        headers = {
            "X-Content-SHA256": package.sha256.lower(),
            "Content-Type": "application/zip",
            "Content-Length": str(size),
            "X-Description": quote(description or "", safe=""),
        }
        with open(package.path, "rb") as body:  # a file object: requests streams it in blocks
            resp = self._request("PUT", self._url(package.key), data=body, headers=headers)
        receipt = self._receipt(self._json(resp))
        if receipt.sha256 and receipt.sha256 != package.sha256.lower():
            raise RejectedError("Depolama sunucusunun bildirdiği SHA-256 gönderilen paketle uyuşmuyor.")
        return receipt

    def query(self, key: MonthKey) -> Receipt:
        return self._receipt(self._json(self._request("GET", self._url(key))))

    def months(self, vkn: str) -> list[MonthKey] | None:
        body = self._json(self._request("GET", f"{self.base_url}/v1/months", params={"vkn": vkn}))
        listed = body.get("months") if isinstance(body, dict) else None
        found = set()
        for m in listed if isinstance(listed, list) else ():
            if not isinstance(m, dict) or m.get("vkn") != vkn or m.get("state") == MISSING:
                continue
            branch, period = m.get("branch"), m.get("period")
            # a month key becomes folder names in a restore: only well-formed ASCII ones are taken
            if (isinstance(branch, str) and branch.isascii() and valid_branch(branch)
                    and isinstance(period, str) and period.isascii() and valid_period(period)):
                found.add(MonthKey(vkn, branch, period))
        return sorted(found)

    def query_many(self, keys: list[MonthKey], wait: float = 0.0) -> dict[MonthKey, Receipt]:
        """POST /v1/months/query, BATCH months a request; `wait` is passed on (kept under half the
        read timeout). A server without it (404) is asked month by month."""
        out: dict[MonthKey, Receipt] = {}
        read = self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout
        wait = max(0.0, min(wait, (read or 0) / 2, 30.0))
        for i in range(0, len(keys), BATCH):
            chunk = keys[i:i + BATCH]
            if self._no_batch:
                out.update(super().query_many(chunk))
                continue
            body = {"months": [{"vkn": k.vkn, "branch": k.branch, "period": k.period} for k in chunk]}
            if wait:
                body["wait"] = round(wait, 1)
            resp = self._request("POST", f"{self.base_url}/v1/months/query", allow=(404, 405), json=body)
            if resp.status_code in (404, 405):  # an older server
                resp.close()
                self._no_batch = True
                out.update(super().query_many(chunk))
                continue
            months = self._json(resp).get("months")
            if not isinstance(months, list) or len(months) != len(chunk):
                raise TransientError("Depolama sunucusunun yanıtı anlaşılamadı.")
            for key, m in zip(chunk, months):
                if not isinstance(m, dict) or (m.get("vkn"), m.get("branch"), m.get("period")) != (
                        key.vkn, key.branch, key.period):
                    raise TransientError("Depolama sunucusunun yanıtı anlaşılamadı.")
                out[key] = self._receipt(m)
        return out

    def fetch(self, key: MonthKey, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        resp = self._request("GET", self._url(key, "/package"), stream=True)
        want = (resp.headers.get("X-Content-SHA256") or "").lower()
        digest = hashlib.sha256()
        try:
            with resp, open(part, "wb") as out:
                for block in resp.iter_content(_CHUNK):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        except requests.exceptions.RequestException:
            part.unlink(missing_ok=True)
            raise TransientError("Paket indirilirken bağlantı koptu.") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        if want and digest.hexdigest() != want:
            part.unlink(missing_ok=True)
            raise IntegrityError("Hedefteki kopya bozuk: indirilen paketin sha256 özeti sunucunun kayıtlı "
                                 "özetinden farklı.")
        os.replace(part, dest)
        return dest

    def close(self) -> None:
        self._session.close()


def _reason(exc) -> object:
    inner = exc.args[0] if exc.args else None
    return getattr(inner, "reason", inner)


def _nobody_there(exc: requests.exceptions.ConnectionError) -> bool:
    from urllib3.exceptions import NewConnectionError  # NameResolutionError is one of these

    return isinstance(_reason(exc), NewConnectionError)


def _why_unreachable(exc) -> str:
    from urllib3.exceptions import NameResolutionError

    return "sunucu adı çözümlenemedi" if isinstance(_reason(exc), NameResolutionError) else "bağlantı reddedildi"


def _tls_reason(exc, base_url: str) -> str:
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return (f"Depolama sunucusu adresi https ile başlıyor ama sunucu TLS konuşmuyor ({base_url}); adres "
                f"http mi olmalı, ya da önünde TLS sağlayan bir ters vekil (reverse proxy) mi eksik?")
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (f"Depolama sunucusunun TLS sertifikası doğrulanamadı ({base_url}); bağlantı kurulmadı. "
                f"Sertifika süresi dolmuş, başka bir ada verilmiş ya da güvenilmeyen bir kuruluşça imzalanmış olabilir.")
    return f"Depolama sunucusuyla TLS bağlantısı kurulamadı ({base_url}); bağlantı kurulmadı."


def _open(address: str, user: str, password: str | None, timeout=None) -> HttpTarget:
    return HttpTarget(address, user, password, **({"timeout": timeout} if timeout else {}))


from edefter_helper.targets.registry import TargetKind, register  # noqa: E402  (registers this kind)

register(TargetKind("http", "Kendi depolama sunucumuz (edefter serve)", needs_password=True,
                    address_help="sunucunun adresi, ör. https://yedek.firma.com.tr", open=_open))
