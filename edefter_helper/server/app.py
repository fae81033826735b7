"""The storage protocol (docs/storage-api.md) as a Flask application."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from flask import Flask, Response, g, jsonify, request, send_file

from edefter_helper import __version__
from edefter_helper.engine.model import MonthKey
from edefter_helper.server.auth import AuthLimits, PasswordGate
from edefter_helper.server.checks import Limits, PackageRejected, check_package
from edefter_helper.server.keys import month_key as strict_month_key
from edefter_helper.server.store import ACCEPTED, MISSING, STORED, ConflictError, Store, sha256_file

log = logging.getLogger("edefter_helper.server")

DEFAULT_MAX_SIZE = 4 * 1024**3
MAX_QUERY_MONTHS = 1000  # months in one POST /v1/months/query
MAX_QUERY_BODY = 256 * 1024
MAX_QUERY_WAIT = 30.0  # seconds a batch query may be held for checks to end
_CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


class Verifier:
    """Background checks: a small pool, so uploads are answered at once."""

    def __init__(self, store: Store, limits: Limits, workers: int = 2, autostart: bool = True):
        self.store = store
        self.limits = limits
        self.autostart = autostart  # False: leave 'accepted' for a later start (crash tests)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify")
        self._idle = threading.Condition()  # also told whenever a check ends (batch queries wait on it)
        self._running = 0
        self._queued: set[str] = set()  # receipts submitted and not yet checked
        self._waiters = 0
        self._closing = False

    def submit(self, receipt: str) -> None:
        if not self.autostart:
            return
        with self._idle:
            self._running += 1
            self._queued.add(receipt)
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
                self._queued.discard(receipt)
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

    def wait_checked(self, receipts: set[str], timeout: float, max_waiters: int) -> bool:
        """Block until none of these receipts waits for its check, or timeout; True when it waited.
        False at once when `max_waiters` requests already wait: waiting never takes every worker thread."""
        with self._idle:
            if self._waiters >= max_waiters or self._closing:
                return False
            self._waiters += 1
            try:
                self._idle.wait_for(lambda: self._closing or not (receipts & self._queued), timeout)
                return True
            finally:
                self._waiters -= 1

    def stop_waiting(self) -> None:
        """Answer every waiting batch query now (the server is stopping)."""
        with self._idle:
            self._closing = True
            self._idle.notify_all()

    def shutdown(self) -> None:
        self.stop_waiting()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _error(status: int, code: str, message: str, retry_after: int | None = None, **extra) -> Response:
    resp = jsonify({"error": code, "message": message, **extra})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="edefter-yedekleme", charset="UTF-8"'
    if retry_after is not None:
        resp.headers["Retry-After"] = str(int(retry_after))
    return resp


def create_app(store: Store, verifier: Verifier, max_size: int = DEFAULT_MAX_SIZE,
               auth_limits: AuthLimits | None = None, threads: int = 8) -> Flask:
    app = Flask("edefter_helper.server")
    app.config["MAX_CONTENT_LENGTH"] = max_size
    app.json.ensure_ascii = False
    gate = PasswordGate(store, auth_limits, threads=threads)
    app.extensions["edefter_password_gate"] = gate

    def authenticate() -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
            return _error(401, "unauthorized", "Kullanıcı adı ve şifre gerekli.")
        # REMOTE_ADDR: the peer, or the client named by a trusted reverse proxy (waitress sets it)
        result = gate.login(auth.username, auth.password, request.remote_addr or "")
        if result.status == 429:
            if result.reason == "busy":
                return _error(429, "busy", "Sunucu şu anda çok sayıda giriş denemesini işliyor; "
                              f"{result.retry_after} saniye sonra yeniden deneyin.", retry_after=result.retry_after)
            return _error(429, "too_many_attempts", "Çok sayıda hatalı giriş denemesi yapıldı; "
                          f"{result.retry_after} saniye sonra yeniden deneyin.", retry_after=result.retry_after)
        if result.status != 200:
            return _error(401, "unauthorized", "Kullanıcı adı ya da şifre hatalı.")
        g.user = auth.username
        g.vkns = result.vkns
        return None

    def month_key(vkn: str, branch: str, period: str) -> MonthKey | Response:
        # ASCII digits only: Arabic-Indic or full-width digits would otherwise become rows and folders
        key = strict_month_key(vkn, branch, period)
        if key is None:
            return _error(400, "bad_month", "Ay adresi hatalı: /v1/months/<VKN>/<ŞŞŞŞ>/<YYYY-AA> bekleniyor "
                          "(yalnızca 0-9 rakamları).")
        if vkn not in g.vkns:
            return _error(403, "forbidden", f"Bu kullanıcının {vkn} VKN/TCKN'si için yetkisi yok.")
        return key

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
        # ?vkn=: one taxpayer's (a restore on another computer asks firm by firm; every listed month's
        # file is looked at, so an office's whole listing per firm would be read 300 times over)
        wanted = request.args.get("vkn")
        vkns = sorted(g.vkns) if wanted is None else [wanted] if wanted in g.vkns else []
        return jsonify({"months": [_status(r.key, r) for r in store.months_of(vkns)]})

    def _status(key: MonthKey, rec) -> dict:
        if rec is None or store.lost(rec):
            # a stored row whose file is gone is not a stored copy: say so (the row itself is kept)
            return {"vkn": key.vkn, "branch": key.branch, "period": key.period, "state": MISSING,
                    "receipt": "", "sha256": "", "message": _lost_message(rec) if rec else "", "stored_at": None}
        return rec.as_json()

    def _lost_message(rec) -> str:
        log.error("Saklanan paketin dosyası yok: %s (makbuz %s, %s)", rec.key, rec.receipt, rec.path)
        return (f"Bu ayın saklanan paketi (makbuz {rec.receipt}) sunucuda bulunamadı; aynı paketi yeniden "
                "gönderin ya da sunucu yöneticisine bildirin.")

    @app.get("/v1/months/<vkn>/<branch>/<period>")
    @month_route
    def month_status(key: MonthKey):
        return jsonify(_status(key, store.month(key)))

    @app.post("/v1/months/query")
    def month_statuses():
        """The status of many months in one request (a bulk backup's "do you hold these" and its
        confirmation rounds); with `wait`, answered once none of them is still being checked."""
        if (denied := authenticate()) is not None:
            return denied
        if (request.content_length or 0) > MAX_QUERY_BODY:
            return _error(413, "too_large", f"Sorgu çok büyük (en çok {MAX_QUERY_MONTHS} ay).")
        body = request.get_json(silent=True)
        months = body.get("months") if isinstance(body, dict) else None
        if not isinstance(months, list) or not all(isinstance(m, dict) for m in months):
            return _error(400, "bad_query", 'Gövde {"months": [{"vkn", "branch", "period"}, …]} olmalı.')
        if len(months) > MAX_QUERY_MONTHS:
            return _error(413, "too_large", f"Sorgu çok büyük (en çok {MAX_QUERY_MONTHS} ay).")
        wait = body.get("wait", 0)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait:
            return _error(400, "bad_query", "'wait' saniye olarak 0 ya da pozitif bir sayı olmalı.")
        keys = []
        for m in months:
            key = month_key(*(m.get(f) if isinstance(m.get(f), str) else "" for f in ("vkn", "branch", "period")))
            if isinstance(key, Response):
                return key
            keys.append(key)
        records = store.months_many(keys)
        checking = {r.receipt for r in records.values() if r is not None and r.state == ACCEPTED}
        if checking and wait > 0 and verifier.wait_checked(checking, min(float(wait), MAX_QUERY_WAIT),
                                                           max_waiters=max(1, threads // 4)):
            records = store.months_many(keys)
        return jsonify({"months": [_status(k, records[k]) for k in keys]})

    @app.get("/v1/months/<vkn>/<branch>/<period>/package")
    @month_route
    def download(key: MonthKey):
        rec = store.live(key)
        if rec is None or store.lost(rec):
            return _error(404, "not_stored", _lost_message(rec) if rec else "Bu ay için saklanmış paket yok.")
        if rec.state != STORED:
            return _error(409, "not_stored", "Paket henüz doğrulanmadı; daha sonra tekrar deneyin.")
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
            if live.sha256 != declared:
                return _conflict(live)
            if live.state != STORED:
                return _receipt(live, created=False)
            # the same bytes as a stored package: read them, then look at the stored file — lost, or
            # damaged at rest (a drill says so and the client sends the month again), it is put back
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
            if live is not None:
                return _receipt(store.restore_damaged(live, part, g.user), created=False)
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
