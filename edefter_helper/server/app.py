"""The storage protocol (docs/storage-api.md) as a Flask application."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from flask import Flask, Response, g, jsonify, request, send_file
from werkzeug.security import check_password_hash

from edefter_helper import __version__
from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import valid_branch, valid_identifier, valid_period
from edefter_helper.server.checks import Limits, PackageRejected, check_package
from edefter_helper.server.store import ACCEPTED, MISSING, STORED, ConflictError, Store, sha256_file

log = logging.getLogger("edefter_helper.server")

DEFAULT_MAX_SIZE = 4 * 1024**3
_CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


class Verifier:
    """Background checks: a small pool, so uploads are answered at once."""

    def __init__(self, store: Store, limits: Limits, workers: int = 2, autostart: bool = True):
        self.store = store
        self.limits = limits
        self.autostart = autostart  # False: leave 'accepted' for a later start (crash tests)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify")
        self._idle = threading.Condition()
        self._running = 0

    def submit(self, receipt: str) -> None:
        if not self.autostart:
            return
        with self._idle:
            self._running += 1
        self._pool.submit(self._run, receipt)

    def _run(self, receipt: str) -> None:
        try:
            self.verify(receipt)
        except Exception:  # noqa: BLE001 - a worker must never die silently
            log.exception("Doğrulama hatası: %s", receipt)
            self.store.mark_rejected(receipt, "Sunucu paketi doğrularken beklenmeyen bir hata oluştu; yeniden gönderin.")
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def verify(self, receipt: str) -> None:
        rec = self.store.by_receipt(receipt)
        if rec is None or rec.state != ACCEPTED:
            return
        if not rec.path.is_file():
            self.store.mark_rejected(receipt, "Paket dosyası sunucuda bulunamadı (yarım kalmış yükleme); yeniden gönderin.")
            return
        # re-read the bytes at rest: this is what 'stored' will promise
        if sha256_file(rec.path) != rec.sha256:
            self.store.mark_rejected(receipt, "Saklanan paketin SHA-256 özeti gönderilenle uyuşmuyor; yeniden gönderin.")
            return
        try:
            check_package(rec.path, rec.key, self.store.tmp_dir, self.limits)
        except PackageRejected as exc:
            log.info("Reddedildi %s %s: %s", receipt, rec.key, exc.message)
            self.store.mark_rejected(receipt, exc.message)
            return
        self.store.mark_stored(receipt)
        log.info("Saklandı %s %s", receipt, rec.key)

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _error(status: int, code: str, message: str, **extra) -> Response:
    resp = jsonify({"error": code, "message": message, **extra})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="edefter-yedekleme", charset="UTF-8"'
    return resp


class _AuthCache:
    """Remembers recent successful logins so every request does not pay for scrypt.

    Keys are an HMAC of user+password under a per-process random key: no password is kept.
    """

    def __init__(self, size: int = 256):
        self._key = secrets.token_bytes(32)
        self._size = size
        self._hits: set[bytes] = set()
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}

    def _digest(self, user: str, password: str, pw_hash: str) -> bytes:
        return hmac.new(self._key, f"{user}\0{password}\0{pw_hash}".encode(), hashlib.sha256).digest()

    def user_lock(self, user: str) -> threading.Lock:
        with self._lock:
            if len(self._user_locks) > 4096:
                self._user_locks.clear()
            return self._user_locks.setdefault(user, threading.Lock())

    def get(self, user: str, password: str, pw_hash: str) -> bool:
        with self._lock:
            return self._digest(user, password, pw_hash) in self._hits

    def put(self, user: str, password: str, pw_hash: str) -> None:
        with self._lock:
            if len(self._hits) >= self._size:
                self._hits.clear()
            self._hits.add(self._digest(user, password, pw_hash))


def create_app(store: Store, verifier: Verifier, max_size: int = DEFAULT_MAX_SIZE) -> Flask:
    app = Flask("edefter_helper.server")
    app.config["MAX_CONTENT_LENGTH"] = max_size
    app.json.ensure_ascii = False
    auth_cache = _AuthCache()

    def authenticate() -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
            return _error(401, "unauthorized", "Kullanıcı adı ve parola gerekli.")
        user = store.get_user(auth.username)
        if user is None:
            return _error(401, "unauthorized", "Kullanıcı adı ya da parola hatalı.")
        # the stored hash is part of the cache key: a changed password invalidates at once.
        # One scrypt at a time per user: parallel first requests wait for it instead of each paying it.
        with auth_cache.user_lock(auth.username):
            ok = auth_cache.get(auth.username, auth.password, user[0]) or check_password_hash(user[0], auth.password)
            if not ok:
                return _error(401, "unauthorized", "Kullanıcı adı ya da parola hatalı.")
            auth_cache.put(auth.username, auth.password, user[0])
        g.user = auth.username
        g.vkns = user[1]
        return None

    def month_key(vkn: str, branch: str, period: str) -> MonthKey | Response:
        if not valid_identifier(vkn) or not valid_branch(branch) or not valid_period(period):
            return _error(400, "bad_month", "Ay adresi hatalı: /v1/months/<VKN>/<ŞŞŞŞ>/<YYYY-AA> bekleniyor.")
        if vkn not in g.vkns:
            return _error(403, "forbidden", f"Bu kullanıcının {vkn} VKN/TCKN'si için yetkisi yok.")
        return MonthKey(vkn, branch, period)

    def month_route(view):
        """Authenticate, parse /<vkn>/<branch>/<period> and check the user may see that VKN."""
        @functools.wraps(view)
        def wrapper(vkn, branch, period):
            if (denied := authenticate()) is not None:
                return denied
            key = month_key(vkn, branch, period)
            if isinstance(key, Response):
                return key
            return view(key)

        return wrapper

    @app.get("/v1/health")
    def health():
        return jsonify({"status": "ok", "version": __version__, "max_size": max_size})

    @app.get("/v1/months")
    def list_months():
        if (denied := authenticate()) is not None:
            return denied
        return jsonify({"months": [r.as_json() for r in store.months_of(sorted(g.vkns))]})

    @app.get("/v1/months/<vkn>/<branch>/<period>")
    @month_route
    def month_status(key: MonthKey):
        rec = store.month(key)
        if rec is None:
            return jsonify({"vkn": key.vkn, "branch": key.branch, "period": key.period, "state": MISSING,
                            "receipt": "", "sha256": "", "message": "", "stored_at": None})
        return jsonify(rec.as_json())

    @app.get("/v1/months/<vkn>/<branch>/<period>/package")
    @month_route
    def download(key: MonthKey):
        rec = store.live(key)
        if rec is None or rec.state != STORED:
            msg = ("Bu ay için saklanmış paket yok." if rec is None
                   else "Paket henüz doğrulanmadı; daha sonra tekrar deneyin.")
            return _error(404 if rec is None else 409, "not_stored", msg)
        # send_file streams through the server's file wrapper: never whole in memory
        resp = send_file(rec.path, mimetype="application/zip", as_attachment=True,
                         download_name=key.package_name, conditional=False, etag=False)
        resp.headers["X-Content-SHA256"] = rec.sha256
        resp.headers["X-Receipt"] = rec.receipt
        return resp

    @app.put("/v1/months/<vkn>/<branch>/<period>")
    @month_route
    def upload(key: MonthKey):
        declared = (request.headers.get("X-Content-SHA256") or "").strip().lower()
        if not _SHA.match(declared):
            return _error(400, "bad_sha256", "X-Content-SHA256 başlığı eksik ya da hatalı (64 onaltılık karakter).")
        length = request.content_length
        if length is None:
            return _error(411, "length_required", "Content-Length başlığı gerekli.")
        if length > max_size:
            return _error(413, "too_large", f"Paket boyutu sınırı aşıyor (en çok {max_size} bayt).")
        description = unquote(request.headers.get("X-Description", ""), errors="replace")[:500]
        # known answers before reading the body
        live = store.live(key)
        if live is not None:
            if live.sha256 == declared:
                return _receipt(live, created=False)
            return _conflict(live)
        part = store.new_upload_file()
        try:
            digest = hashlib.sha256()
            received = 0
            with open(part, "xb") as out:
                stream = request.stream
                while block := stream.read(_CHUNK):
                    received += len(block)
                    if received > max_size:
                        return _error(413, "too_large", f"Paket boyutu sınırı aşıyor (en çok {max_size} bayt).")
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if received != length:
                return _error(400, "incomplete", "Paket eksik alındı; yeniden gönderin.")
            if digest.hexdigest() != declared:
                return _error(422, "sha256_mismatch",
                              "Alınan paketin SHA-256 özeti bildirilen değerle uyuşmuyor; paket saklanmadı.")
            try:
                rec, created = store.commit_upload(key, part, declared, received, g.user, description)
            except ConflictError as exc:
                return _conflict(exc.existing)
        finally:
            part.unlink(missing_ok=True)
        if created:
            verifier.submit(rec.receipt)
        return _receipt(rec, created)

    def _receipt(rec, created: bool) -> Response:
        body = rec.as_json()
        body["message"] = rec.message or (
            "Paket alındı (Entegratör'e İşlendi); doğrulama sürüyor." if rec.state == ACCEPTED
            else "Paket daha önce saklandı; aynı makbuz döndü.")
        resp = jsonify(body)
        resp.status_code = 202 if rec.state == ACCEPTED else 200
        return resp

    def _conflict(live) -> Response:
        return _error(409, "period_taken",
                      f"{live.key.period} dönemi için farklı bir paket zaten "
                      f"{'saklanmış' if live.state == STORED else 'alınmış'} (makbuz {live.receipt}). "
                      "Bir dönem yalnızca bir kez saklanır.",
                      receipt=live.receipt, sha256=live.sha256, state=live.state)

    @app.errorhandler(413)
    def too_large(_exc):
        return _error(413, "too_large", f"Paket boyutu sınırı aşıyor (en çok {max_size} bayt).")

    @app.errorhandler(404)
    def not_found(_exc):
        return _error(404, "not_found", "Böyle bir adres yok.")

    @app.errorhandler(405)
    def not_allowed(_exc):
        # DELETE lands here: stored packages are never deleted
        return _error(405, "method_not_allowed", "Bu işlem desteklenmiyor (saklanan paketler silinemez).")

    @app.errorhandler(500)
    def server_error(_exc):
        return _error(500, "server_error", "Sunucuda beklenmeyen bir hata oluştu.")

    return app
