"""Notifications against real local servers: aiosmtpd (STARTTLS, AUTH) and http.server receivers
(a JSON webhook; a Teams Workflows-shaped endpoint over HTTPS). The clock is injected: backoff and
the dead-man alarm are exercised without waiting."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import keyring
import pytest
from aiosmtpd import controller as aiosmtpd_controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from edefter_helper import notify as N
from edefter_helper.demo import MemoryKeyring
from edefter_helper.status import backed_up_message

VKN = "4810525635"
FIRM = "Özgür Çağlayan İnşaat Gıda A.Ş."
PERIOD = "2024-02"
FILES = [
    f"{VKN}-202402-Y-000001.xml", f"{VKN}-202402-K-000001.xml",
    f"{VKN}-202402-YB-000001.xml", f"{VKN}-202402-KB-000001.xml",
    f"GIB-{VKN}-202402-YB-000001.zip", f"GIB-{VKN}-202402-KB-000001.zip",
    f"{VKN}-202402-DR-000001.xml",
]
SEED_LABELS = ["Yevmiye Defteri", "Kebir Defteri", "Yevmiye Beratı", "Kebir Beratı",
               "Yevmiye Beratı (GİB onaylı)", "Kebir Beratı (GİB onaylı)", "Defter Raporu"]
SMTP_USER = "yedek@firma.com.tr"
PASSWORD = "Gizli-Şifre-ğüİı:7/@#"   # Turkish letters: smtplib.login could not send this
WEBHOOK_TOKEN = "tok3n-Webhook-Sırrı-9f8e7d"
TEAMS_SIG = "S1gnatureOfTheWorkflowXyz_-42"
TEAMS_WORKFLOW = "643e69f83c8944438d68119179a10a64"
TURKISH = "ğüşıöçĞÜŞİÖÇ"


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- certificates: a CA and a server certificate for 127.0.0.1 ------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bildirim Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": d / "ca.pem", "cert": d / "cert.pem", "key": d / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def server_context(pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    return ctx


# ---- servers ----------------------------------------------------------------------------------

class SmtpServer:
    """aiosmtpd on 127.0.0.1: STARTTLS required before AUTH, AUTH required before mail."""

    def __init__(self, pki, port: int | None = None, *, tls: bool = True, users: dict[str, str] | None = None,
                 exclude: tuple[str, ...] = (), refuse: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.messages: list = []
        self.auth_attempts: list[tuple[str, bytes, bytes]] = []
        self.refuse = refuse
        server = self
        users = {SMTP_USER: PASSWORD} if users is None else users

        class Handler:
            async def handle_RCPT(self, srv, session, envelope, address, rcpt_options):
                if address in server.refuse:
                    return "550 5.1.1 Böyle bir kullanıcı yok"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, srv, session, envelope):
                server.messages.append(envelope)
                return "250 OK kabul edildi"

        def authenticator(srv, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword)
            if ok:
                server.auth_attempts.append((mechanism, data.login, data.password))
                login = data.login.decode("utf-8")
                ok = login in users and data.password == users[login].encode("utf-8")
            return AuthResult(success=ok, handled=False)  # handled=True would leave the client hanging

        kwargs = {"auth_exclude_mechanism": list(exclude)}
        if tls:
            kwargs.update(tls_context=server_context(pki), require_starttls=True, authenticator=authenticator,
                          auth_require_tls=True, auth_required=True)
        self.controller = aiosmtpd_controller.Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def parsed(self, i: int = -1):
        return email.message_from_bytes(self.messages[i].original_content, policy=email.policy.default)


class Receiver:
    """A local HTTP(S) receiver that records every POST and answers with `status`."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None, status: int = 200):
        self.hits: list[dict] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits.append({"path": self.path, "headers": dict(self.headers), "raw": body,
                                   "json": json.loads(body), "status": outer.status})
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.handle_error = lambda request, address: None
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    @property
    def calls(self) -> list[dict]:
        return [h for h in self.hits if 200 <= h["status"] < 300]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def ring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def smtp(pki, ring):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    server = SmtpServer(pki)
    yield server
    server.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def email_channel(port: int, recipients: str = "muhasebe@firma.com.tr, mudur@firma.com.tr", **kw) -> N.Channel:
    return N.Channel("e-posta", f"127.0.0.1:{port} {recipients}", kw.pop("events", set()), kw.pop("firms", set()),
                     user=kw.pop("user", SMTP_USER), sender=kw.pop("sender", "e-defter@firma.com.tr"))


def webhook_channel(port: int, **kw) -> N.Channel:
    return N.Channel("webhook", f"http://127.0.0.1:{port}/hooks/edefter?token={WEBHOOK_TOKEN}",
                     kw.pop("events", set()), kw.pop("firms", set()))


def teams_url(port: int) -> str:
    return (f"https://127.0.0.1:{port}/workflows/{TEAMS_WORKFLOW}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}")


def backed_up(vkn: str = VKN, period: str = PERIOD, firm: str = FIRM, **kw) -> N.Event:
    return N.Event("yedeklendi", firm, vkn, "", period, backed_up_message(period), kw.pop("files", FILES), **kw)


def failed(vkn: str = VKN, period: str = PERIOD, reason: str = "Sunucu paketi reddetti: imza hatalı.") -> N.Event:
    return N.Event("yedeklenemedi", FIRM, vkn, "", period, reason)


def unreachable(message: str = "Sunucuya ulaşılamıyor; 3 dönem denenmedi.", target: str = "Entegratör") -> N.Event:
    return N.Event("hedefe-ulasilamiyor", "", "", "", "", message, target=target)


def rows(path: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT d.label, d.status, d.attempts, d.last_error, m.kind, m.title "
                          "FROM notify_deliveries d JOIN notify_messages m ON m.id=d.message_id "
                          "ORDER BY d.message_id, d.label").fetchall()


# ---- one message per state change, listing the files ------------------------------------------

def test_backed_up_month_gives_one_email_and_one_webhook_call_listing_the_files(smtp, receiver, clock, pki,
                                                                                  tmp_path):
    channels = [email_channel(smtp.port), webhook_channel(receiver.port)]
    with N.Notifier(channels, tmp_path / "kuyruk.db", clock=clock, ca_file=pki["ca"]) as notifier:
        assert notifier.problems == []
        notifier.notify(backed_up())
        assert notifier.pending_count() == 0

    assert len(smtp.messages) == 1 and len(receiver.hits) == 1
    envelope = smtp.messages[0]
    assert envelope.mail_from == "e-defter@firma.com.tr"
    assert sorted(envelope.rcpt_tos) == ["mudur@firma.com.tr", "muhasebe@firma.com.tr"]  # one message, both
    assert smtp.auth_attempts[0][0] == "PLAIN"

    msg = smtp.parsed()
    assert msg["Subject"] == f"e-Defter yedeklendi: {FIRM} — Şubat 2024"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert "Şubat 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi." in body
    assert FIRM in body and f"VKN {VKN}" in body
    listed = [line for line in body.splitlines() if line.startswith("- ")]
    assert listed == [f"- {label}: {name}" for label, name in zip(SEED_LABELS, FILES)]

    call = receiver.calls[0]
    assert unquote(call["path"]) == f"/hooks/edefter?token={WEBHOOK_TOKEN}"
    payload = call["json"]
    assert payload["event"] == "yedeklendi" and payload["vkn"] == VKN and payload["period"] == PERIOD
    assert payload["firm"] == FIRM and payload["title"] == msg["Subject"] and payload["type"] == "success"
    assert [f["file"] for f in payload["files"]] == FILES
    assert [f["label"] for f in payload["files"]] == SEED_LABELS
    assert "Şubat 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi." in payload["message"]


def test_turkish_characters_survive_subject_and_body(smtp, receiver, clock, pki, tmp_path):
    reason = f"Berat ile defter birbirine ait değil: {TURKISH}."
    with N.Notifier([email_channel(smtp.port), webhook_channel(receiver.port)], tmp_path / "k.db", clock=clock,
                    ca_file=pki["ca"]) as notifier:
        notifier.notify(failed(reason=reason))
    msg = smtp.parsed()
    assert msg["Subject"] == f"e-Defter YEDEKLENEMEDİ: {FIRM} — Şubat 2024"
    assert reason in msg.get_content()
    raw = smtp.messages[0].original_content
    assert raw.isascii()  # RFC 2047 subject, quoted-printable body: survives any relay
    assert receiver.calls[0]["json"]["message"].count(TURKISH) == 1
    assert receiver.calls[0]["json"]["type"] == "failure"


def test_a_repeated_event_is_not_sent_twice_but_a_state_change_is(smtp, receiver, clock, pki, tmp_path):
    channels = [email_channel(smtp.port), webhook_channel(receiver.port)]
    queue = tmp_path / "k.db"
    with N.Notifier(channels, queue, clock=clock, ca_file=pki["ca"]) as notifier:
        notifier.notify(backed_up())
        notifier.notify(backed_up())
        clock.advance(3600)
        notifier.notify(backed_up())
    with N.Notifier(channels, queue, clock=clock, ca_file=pki["ca"]) as other:  # another process, same queue
        other.notify(backed_up())
        assert len(smtp.messages) == 1 and len(receiver.calls) == 1
        other.notify(failed())                  # Yedeklendi -> Yedeklenemedi: told
        other.notify(failed(reason="Başka bir neden."))  # same state, other words: not told again
        other.notify(backed_up())               # back to Yedeklendi: told
        other.notify(backed_up(period="2024-03", files=[f.replace("202402", "202403") for f in FILES]))
    assert [m["Subject"].split(":")[0] for m in map(smtp.parsed, range(4))] == [
        "e-Defter yedeklendi", "e-Defter YEDEKLENEMEDİ", "e-Defter yedeklendi", "e-Defter yedeklendi"]
    assert [c["json"]["event"] for c in receiver.calls] == ["yedeklendi", "yedeklenemedi", "yedeklendi",
                                                            "yedeklendi"]


def test_a_branch_is_its_own_month(receiver, clock, tmp_path):
    with N.Notifier([webhook_channel(receiver.port)], tmp_path / "k.db", clock=clock) as notifier:
        notifier.notify(backed_up())
        notifier.notify(N.Event("yedeklendi", FIRM, VKN, "0001", PERIOD, backed_up_message(PERIOD), FILES))
        notifier.notify(N.Event("yedeklendi", FIRM, VKN, "0000", PERIOD, backed_up_message(PERIOD), FILES))
    assert [c["json"]["branch"] for c in receiver.calls] == ["", "0001"]  # "" and "0000": no branch, same month
    assert "Şube 0001" in receiver.calls[1]["json"]["message"]


# ---- failures: queued, retried, sent exactly once -----------------------------------------------

def test_webhook_receiver_down_keeps_the_message_and_a_later_retry_sends_it_once(clock, tmp_path):
    port = free_port()  # nobody listens: connection refused
    queue = tmp_path / "k.db"
    with N.Notifier([webhook_channel(port)], queue, clock=clock) as notifier:
        notifier.notify(backed_up())
        assert notifier.pending_count() == 1
        (label, status, attempts, error, _, _), = rows(queue)
        assert status == "pending" and attempts == 1 and "bağlantıyı reddetti" in error
        assert label == "webhook (127.0.0.1)"

        assert notifier.deliver_pending() == 1          # not due yet (backoff): not even tried
        assert rows(queue)[0][2] == 1

        receiver = Receiver(port=port)
        try:
            clock.advance(61)
            assert notifier.deliver_pending() == 0
            assert notifier.deliver_pending() == 0
            clock.advance(7200)
            assert notifier.deliver_pending() == 0
            notifier.notify(backed_up())                 # and the event itself is not told again
        finally:
            receiver.stop()
    assert len(receiver.hits) == 1 and receiver.calls[0]["json"]["event"] == "yedeklendi"
    assert rows(queue)[0][1:3] == ("sent", 2)


def test_smtp_server_down_keeps_the_message_and_a_later_retry_sends_it_once(pki, ring, clock, tmp_path):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    port = free_port()
    with N.Notifier([email_channel(port)], tmp_path / "k.db", clock=clock, ca_file=pki["ca"]) as notifier:
        notifier.notify(backed_up())
        (pending,) = notifier.undelivered()
        assert "bağlantıyı reddetti" in pending.last_error and pending.attempts == 1
        assert pending.next_try == clock() + 60
        server = SmtpServer(pki, port=port)
        try:
            clock.advance(60)
            assert notifier.deliver_pending() == 0
            clock.advance(3600)
            assert notifier.deliver_pending() == 0
        finally:
            server.stop()
    assert len(server.messages) == 1


def test_webhook_500_is_retried_with_backoff_until_it_answers(receiver, clock, tmp_path):
    receiver.status = 500
    with N.Notifier([webhook_channel(receiver.port)], tmp_path / "k.db", clock=clock) as notifier:
        notifier.notify(backed_up())
        assert "HTTP 500" in notifier.undelivered()[0].last_error
        waits = []
        for _ in range(4):
            waits.append(notifier.undelivered()[0].next_try - clock())
            clock.advance(waits[-1])
            assert notifier.deliver_pending() == 1
        assert waits == [60, 120, 240, 480]
        receiver.status = 200
        clock.advance(notifier.undelivered()[0].next_try - clock())
        assert notifier.deliver_pending() == 0
    assert len(receiver.hits) == 6 and len(receiver.calls) == 1


def test_a_channel_that_comes_back_gets_its_older_messages_at_once(receiver, clock, tmp_path):
    receiver.status = 503
    with N.Notifier([webhook_channel(receiver.port)], tmp_path / "k.db", clock=clock) as notifier:
        notifier.notify(backed_up(period="2024-01", files=()))
        notifier.notify(backed_up(period="2024-02", files=()))
        assert notifier.pending_count() == 2
        receiver.status = 200
        clock.advance(5)  # not due yet, but a new message goes through: the channel is back
        notifier.notify(backed_up(period="2024-03", files=()))
        assert notifier.pending_count() == 0
    assert [c["json"]["period"] for c in receiver.calls] == ["2024-03", "2024-01", "2024-02"]


def test_target_unreachable_is_told_once_however_many_retries(receiver, clock, tmp_path):
    with N.Notifier([webhook_channel(receiver.port)], tmp_path / "k.db", clock=clock) as notifier:
        for n in range(6):  # every agent cycle, every retry says it again, with other counts
            notifier.notify(unreachable(f"Sunucuya ulaşılamıyor; {n + 3} dönem denenmedi."))
            clock.advance(300)
            notifier.deliver_pending()
        assert [c["json"]["event"] for c in receiver.calls] == ["hedefe-ulasilamiyor"]
        assert receiver.calls[0]["json"]["target"] == "Entegratör"

        notifier.notify(backed_up())          # the target took a month: it answers again
        notifier.notify(unreachable())        # a new outage is a new state
        notifier.notify(unreachable())
        notifier.target_ok("Entegratör")      # it answered a query
        notifier.notify(unreachable())
        notifier.notify(unreachable(target="Yedek Sunucu"))  # another target: its own state
        notifier.notify(unreachable(target="Yedek Sunucu"))
    assert [(c["json"]["event"], c["json"]["target"]) for c in receiver.calls] == [
        ("hedefe-ulasilamiyor", "Entegratör"), ("yedeklendi", ""), ("hedefe-ulasilamiyor", "Entegratör"),
        ("hedefe-ulasilamiyor", "Entegratör"), ("hedefe-ulasilamiyor", "Yedek Sunucu")]


def test_target_unreachable_while_the_channel_is_down_is_sent_once_later(clock, tmp_path):
    port = free_port()
    with N.Notifier([webhook_channel(port)], tmp_path / "k.db", clock=clock) as notifier:
        for _ in range(5):
            notifier.notify(unreachable())
            clock.advance(120)
            notifier.deliver_pending()
        assert notifier.pending_count() == 1
        receiver = Receiver(port=port)
        try:
            clock.advance(3600)
            notifier.deliver_pending()
            notifier.notify(unreachable())
            notifier.deliver_pending()
        finally:
            receiver.stop()
    assert len(receiver.calls) == 1


# ---- dead-man alarm ---------------------------------------------------------------------------

def test_dead_man_fires_once_per_silence(receiver, clock, tmp_path):
    hour = 3600
    with N.Notifier([webhook_channel(receiver.port, firms={"1111111111"})], tmp_path / "k.db",
                    clock=clock) as notifier:
        t0 = clock()
        notifier.dead_man(t0)
        clock.advance(25 * hour)
        notifier.dead_man(t0)
        assert receiver.calls == []
        clock.advance(1 * hour + 1)                 # 26 h without a successful cycle
        notifier.dead_man(t0)
        for _ in range(5):                           # still silent: not again
            clock.advance(hour)
            notifier.dead_man(t0)
        assert [c["json"]["event"] for c in receiver.calls] == ["olu-adam"]  # past the firm filter too
        assert "26 saat" in receiver.calls[0]["json"]["message"]

        t1 = clock()                                 # a new success
        notifier.dead_man(t1)
        clock.advance(20 * hour)
        notifier.dead_man(t1)
        assert len(receiver.calls) == 1
        clock.advance(6 * hour)                      # a new silence of 26 h
        notifier.dead_man(t1)
        notifier.dead_man(t1)
        assert len(receiver.calls) == 2

        notifier.dead_man(t1, threshold_s=hour)      # a shorter setting does not repeat the same silence
        assert len(receiver.calls) == 2


def test_dead_man_when_nothing_ever_succeeded(receiver, clock, tmp_path):
    with N.Notifier([webhook_channel(receiver.port)], tmp_path / "k.db", clock=clock) as notifier:
        notifier.dead_man(None, threshold_s=600)
        clock.advance(599)
        notifier.dead_man(None, threshold_s=600)
        assert receiver.calls == []
        clock.advance(1)
        notifier.dead_man(None, threshold_s=600)
        clock.advance(6000)
        notifier.dead_man(None, threshold_s=600)
    assert len(receiver.calls) == 1
    assert "hiç başarılı yedekleme döngüsü olmadı" in receiver.calls[0]["json"]["message"]


# ---- digest -----------------------------------------------------------------------------------

def test_digest_lists_what_happened_and_what_could_not_be_delivered(receiver, pki, ring, clock, tmp_path):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    down = free_port()
    only_digest = N.Channel("webhook", f"http://127.0.0.1:{receiver.port}/ozet", {"ozet"}, set())
    channels = [only_digest, email_channel(down, events={"yedeklendi", "yedeklenemedi"})]
    with N.Notifier(channels, tmp_path / "k.db", clock=clock, ca_file=pki["ca"]) as notifier:
        notifier.notify(backed_up())
        clock.advance(60)
        notifier.notify(failed(period="2024-03"))
        notifier.notify(unreachable())
        assert receiver.calls == []                  # this channel takes only the digest
        clock.advance(3600)
        notifier.digest()
        assert len(receiver.calls) == 1
        text = receiver.calls[0]["json"]["message"]
        assert receiver.calls[0]["json"]["event"] == "ozet"
        assert "Olaylar (3):" in text
        assert f"Yedeklendi: {FIRM} (VKN {VKN}) — Şubat 2024" in text
        assert f"Yedeklenemedi: {FIRM} (VKN {VKN}) — Mart 2024" in text
        assert "Açık sorunlar (2):" in text and "Hedefe ulaşılamıyor: Entegratör" in text
        assert "Teslim edilemeyen bildirimler (2):" in text
        assert f"e-posta 127.0.0.1 → muhasebe@firma.com.tr, mudur@firma.com.tr: e-Defter yedeklendi: {FIRM}" in text
        assert "bağlantıyı reddetti" in text and "şifre" not in text.lower().replace("şifrelen", "")

        clock.advance(86400)
        notifier.digest()                            # nothing new: says so, still lists the backlog
        text = receiver.calls[1]["json"]["message"]
        assert "Son özetten bu yana yeni olay yok." in text and "Teslim edilemeyen bildirimler (2):" in text


def test_firm_and_event_filters(receiver, clock, tmp_path):
    other = Receiver()
    try:
        channels = [N.Channel("webhook", f"http://127.0.0.1:{receiver.port}/a", set(), {VKN}),
                    N.Channel("webhook", f"http://127.0.0.1:{other.port}/b", {"yedeklenemedi"}, set())]
        with N.Notifier(channels, tmp_path / "k.db", clock=clock) as notifier:
            notifier.notify(backed_up())
            notifier.notify(backed_up(vkn="7420300220"))
            notifier.notify(failed(vkn="7420300220"))
            notifier.notify(unreachable())
    finally:
        other.stop()
    assert [(c["json"]["event"], c["json"]["vkn"]) for c in receiver.calls] == [
        ("yedeklendi", VKN), ("hedefe-ulasilamiyor", "")]
    assert [(c["json"]["event"], c["json"]["vkn"]) for c in other.calls] == [("yedeklenemedi", "7420300220")]


# ---- Microsoft Teams through Workflows --------------------------------------------------------

def test_teams_workflows_url_gets_an_adaptive_card_over_verified_https(pki, clock, tmp_path, monkeypatch):
    receiver = Receiver(tls=server_context(pki))
    try:
        channel = N.Channel("teams", teams_url(receiver.port), set(), set())
        with N.Notifier([channel], tmp_path / "k.db", clock=clock) as notifier:
            notifier.notify(backed_up())             # certifi does not know the test CA: refused, kept
            (pending,) = notifier.undelivered()
            assert "sertifika" in pending.last_error and receiver.hits == []

            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))  # requests' own CA-file setting
            clock.advance(60)
            assert notifier.deliver_pending() == 0
    finally:
        receiver.stop()
    (call,) = receiver.calls
    assert call["path"].startswith(f"/workflows/{TEAMS_WORKFLOW}/triggers/manual/paths/invoke?")
    assert f"sig={TEAMS_SIG}" in call["path"] and "api-version=2016-06-01" in call["path"]
    card = call["json"]
    assert card["type"] == "message"
    (attachment,) = card["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    blocks = attachment["content"]["body"]
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert [b["type"] for b in blocks] == ["TextBlock", "TextBlock"]  # no external image
    assert blocks[0]["text"] == f"e-Defter yedeklendi: {FIRM} — Şubat 2024"
    text = blocks[1]["text"]
    assert "Şubat 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi." in text
    for label, name in zip(SEED_LABELS, FILES):
        assert f"\n\n- {label}: {name}" in text   # each file its own bullet
    assert "\\" not in text  # no markdown escaping shown to the reader


@pytest.mark.parametrize("url, power_automate", [
    ("https://prod-161.westeurope.logic.azure.com:443/workflows/643e69f83c8944438d68119179a10a64/triggers/manual/"
     "paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=KODuebWbDGYFr0z0eu-6Rj8aUKz7108W3w",
     False),
    ("https://default4a2b.6c.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/"
     "9e1f0c2d3b4a/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zk3-aQ_9",
     True),
])
def test_teams_address_reads_as_apprise_reads_microsofts_own_url(url, power_automate):
    import apprise

    ours = apprise.Apprise.instantiate(N.teams_apprise_url(url))
    theirs = apprise.Apprise.instantiate(url)  # apprise's native parser: Microsoft host names only
    assert type(ours).__name__ == type(theirs).__name__ == "NotifyWorkflows"
    for attr in ("host", "port", "workflow", "signature", "api_version", "power_automate"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.power_automate is power_automate and ours.include_image is False


@pytest.mark.parametrize("address, words", [
    ("https://firma.webhook.office.com/webhookb2/aa@bb/IncomingWebhook/cc/dd", "eski"),
    ("https://outlook.office.com/webhook/aa@bb/IncomingWebhook/cc/dd", "eski"),
    ("https://prod-1.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1", "benzemiyor"),
    ("https://example.com/hook", "benzemiyor"),
    ("teams kanalı", "https://"),
])
def test_unusable_teams_addresses_are_refused_with_a_reason(address, words):
    problem = N.check_channel(N.Channel("teams", address, set(), set()))
    assert problem and words in problem


def test_unusable_channels_are_named_without_secrets_and_the_others_still_work(receiver, clock, tmp_path):
    secret_path = "aa1b2c3d4e5f@bb/IncomingWebhook/cc9d8e7f6/dd5e4f3a2b"
    channels = [
        N.Channel("teams", f"https://firma.webhook.office.com/webhookb2/{secret_path}", set(), set()),
        N.Channel("e-posta", "smtp.firma.com.tr", set(), set()),
        N.Channel("e-posta", "smtp.firma.com.tr:587 muhasebe@firma", set(), set(), sender="a@firma.com.tr"),
        N.Channel("faks", "0212 000 00 00", set(), set()),
        N.Channel("webhook", f"http://127.0.0.1:{receiver.port}/x", {"yedeklendi", "her-sey"}, set()),
        webhook_channel(receiver.port),
    ]
    with N.Notifier(channels, tmp_path / "k.db", clock=clock) as notifier:
        assert len(notifier.problems) == 5 and len(notifier.routes) == 1
        notifier.notify(backed_up())
    joined = "\n".join(notifier.problems)
    assert "teams (firma.webhook.office.com)" in joined and "kapattı" in joined
    assert "en az bir alıcı" in joined and "muhasebe@firma" in joined and "faks" in joined
    assert "her-sey" in joined
    assert "IncomingWebhook" not in joined and "cc9d8e7f6" not in joined
    assert len(receiver.calls) == 1


# ---- e-mail: STARTTLS, certificates, passwords ------------------------------------------------

def test_no_starttls_no_send(pki, ring, clock, tmp_path):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    server = SmtpServer(pki, tls=False)
    try:
        with N.Notifier([email_channel(server.port)], tmp_path / "k.db", clock=clock) as notifier:
            notifier.notify(backed_up())
            (pending,) = notifier.undelivered()
    finally:
        server.stop()
    assert "STARTTLS sunmuyor" in pending.last_error
    assert server.messages == [] and server.auth_attempts == []


def test_server_certificate_is_verified_by_default(smtp, clock, tmp_path):
    with N.Notifier([email_channel(smtp.port)], tmp_path / "k.db", clock=clock) as notifier:  # no ca_file
        notifier.notify(backed_up())
        (pending,) = notifier.undelivered()
    assert "sertifikası doğrulanamadı" in pending.last_error
    assert smtp.messages == [] and smtp.auth_attempts == []  # the password never left


@pytest.mark.parametrize("exclude, mechanism", [((), "PLAIN"), (("PLAIN",), "LOGIN")])
def test_a_turkish_password_logs_in(pki, ring, clock, tmp_path, exclude, mechanism):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    server = SmtpServer(pki, exclude=exclude)
    try:
        with N.Notifier([email_channel(server.port)], tmp_path / "k.db", clock=clock,
                        ca_file=pki["ca"]) as notifier:
            notifier.notify(backed_up())
    finally:
        server.stop()
    assert [(m, login) for m, login, _ in server.auth_attempts] == [(mechanism, SMTP_USER.encode())]
    assert len(server.messages) == 1


def test_port_465_is_tls_from_the_first_byte(pki, ring, clock, tmp_path, monkeypatch):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    received = []

    class Handler:
        async def handle_DATA(self, srv, session, envelope):
            received.append((srv.transport.get_extra_info("ssl_object") is not None, envelope))
            return "250 OK"

    port = free_port()
    monkeypatch.setattr(N, "SMTPS_PORT", port)  # 465 itself needs no test of its own: the rule is the port
    server = aiosmtpd_controller.Controller(
        Handler(), hostname="127.0.0.1", port=port, ssl_context=server_context(pki),
        auth_require_tls=False,  # aiosmtpd does not count implicit TLS as TLS for AUTH; it is TLS all along
        authenticator=lambda *a: AuthResult(success=a[4].password == PASSWORD.encode(), handled=False))
    server.start()
    try:
        with N.Notifier([email_channel(port)], tmp_path / "k.db", clock=clock, ca_file=pki["ca"]) as notifier:
            notifier.notify(backed_up())
            assert notifier.pending_count() == 0
    finally:
        server.stop()
    assert [tls for tls, _ in received] == [True]


def test_missing_password_says_how_to_set_it(smtp, ring, clock, pki, tmp_path):
    channel = email_channel(smtp.port, user="baska@firma.com.tr")
    with N.Notifier([channel], tmp_path / "k.db", clock=clock, ca_file=pki["ca"]) as notifier:
        notifier.notify(backed_up())
        (pending,) = notifier.undelivered()
    assert "kayıtlı değil" in pending.last_error
    assert "edefter credentials set --target bildirim:127.0.0.1 --user baska@firma.com.tr" in pending.last_error
    assert smtp.messages == []


def test_one_refused_recipient_does_not_resend_to_the_others(pki, ring, clock, tmp_path):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    server = SmtpServer(pki, refuse=("yok@firma.com.tr",))
    queue = tmp_path / "k.db"
    try:
        with N.Notifier([email_channel(server.port, "muhasebe@firma.com.tr; yok@firma.com.tr")], queue,
                        clock=clock, ca_file=pki["ca"]) as notifier:
            notifier.notify(backed_up())
            clock.advance(7200)
            assert notifier.deliver_pending() == 0
    finally:
        server.stop()
    assert len(server.messages) == 1 and server.messages[0].rcpt_tos == ["muhasebe@firma.com.tr"]
    (_label, status, _attempts, note, _, _), = rows(queue)
    assert status == "sent" and "yok@firma.com.tr" in note and "550" in note


def test_a_pc_name_with_turkish_letters_does_not_break_ehlo(smtp, clock, pki, tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "MUHASEBE-İŞ")
    assert N._ehlo_name() == "edefter-yedekleme"
    with N.Notifier([email_channel(smtp.port)], tmp_path / "k.db", clock=clock, ca_file=pki["ca"]) as notifier:
        notifier.notify(backed_up())
    assert len(smtp.messages) == 1 and "MUHASEBE-İŞ" in smtp.parsed().get_content()


@pytest.mark.parametrize("address, expected", [
    ("smtp.firma.com.tr muhasebe@firma.com.tr", ("smtp.firma.com.tr", 587, ("muhasebe@firma.com.tr",))),
    ("smtp.firma.com.tr:465  a@firma.com.tr,b@firma.com.tr ; c@ornek.com.tr",
     ("smtp.firma.com.tr", 465, ("a@firma.com.tr", "b@firma.com.tr", "c@ornek.com.tr"))),
    ("[::1]:2525 a@firma.com.tr", ("::1", 2525, ("a@firma.com.tr",))),
])
def test_email_address_form(address, expected):
    parsed = N.parse_email_address(address)
    assert (parsed.host, parsed.port, parsed.recipients) == expected
    assert parsed.implicit_tls is (expected[1] == 465)


# ---- secrets ----------------------------------------------------------------------------------

class RootLog(logging.Handler):
    """What the application's own handlers (hata.log, the console) would see: the root logger's."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        self.records.append(record)


@pytest.fixture
def app_log():
    root = logging.getLogger()
    handler, level = RootLog(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_secrets_appear_in_no_body_queue_row_log_or_exception(pki, ring, clock, tmp_path, monkeypatch, app_log):
    from edefter_helper import credentials

    credentials.set_password("bildirim:127.0.0.1", SMTP_USER, PASSWORD)
    pair = b"\0" + SMTP_USER.encode() + b"\0" + PASSWORD.encode()
    secrets = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), base64.b64encode(pair).decode(),
               WEBHOOK_TOKEN, TEAMS_SIG, TEAMS_WORKFLOW]

    good = SmtpServer(pki)
    wrong = SmtpServer(pki, users={SMTP_USER: "başka-bir-şifre"})  # refuses our password
    webhook = Receiver(status=500)
    teams = Receiver(tls=server_context(pki))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki["ca"]))
    queue = tmp_path / "k.db"
    every = set(N.EVENTS)  # the digest included: it is asked for by name
    channels = [email_channel(good.port, events=every), email_channel(wrong.port, events=every),
                webhook_channel(webhook.port, events=every), webhook_channel(free_port(), events=every),
                N.Channel("teams", teams_url(teams.port), every, set()),
                N.Channel("teams", teams_url(free_port()), every, set())]
    try:
        with N.Notifier(channels, queue, clock=clock, ca_file=pki["ca"]) as notifier:
            assert notifier.problems == []
            notifier.notify(backed_up())
            notifier.notify(failed(period="2024-03"))
            clock.advance(3600)
            notifier.deliver_pending()
            notifier.dead_man(clock() - 30 * 3600)
            notifier.digest()
            left = notifier.undelivered()
    finally:
        for server in (good, wrong, webhook, teams):
            server.stop()

    assert len(good.messages) == 4 and len(teams.calls) == 4 and wrong.messages == []
    assert wrong.auth_attempts and all(a[2] == PASSWORD.encode() for a in wrong.auth_attempts)
    errors = {u.channel.split(" ")[0] + " " + u.last_error for u in left}
    assert any("kullanıcı adını ya da şifreyi kabul etmedi (535" in e for e in errors)
    assert any("HTTP 500" in e for e in errors) and any("bağlantıyı reddetti" in e for e in errors)

    bodies = [m.original_content.decode("ascii") for m in good.messages]
    bodies += [good.parsed(i).get_content() for i in range(len(good.messages))]
    bodies += [h["raw"].decode("utf-8") for h in webhook.hits + teams.hits]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("k.db*"))
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in app_log.records
                       if not r.name.startswith("mail.log"))  # the test SMTP server's own log
    told = "\n".join(notifier.problems + [repr(u) for u in left])
    assert not [r for r in app_log.records if r.name.startswith("apprise")]  # its debug lines name URLs
    for secret in secrets:
        for text in bodies + [logged, told]:
            assert secret not in text
        assert secret.encode("utf-8") not in stored
    assert "Bildirim gönderilemedi" in logged  # the failures were told, in words


# ---- digest: the months due at GİB within 7 days, per Sorumlu ---------------------------------------

def _office_with_deadlines(tmp_path, edefter):
    """Four firms, three Sorumlu cells (one empty); after a backup: August 2026 waiting for GİB at three
    of them (due 14.12 tüzel, 10.12 gerçek), closed at GİB but not sent at the fourth, September waiting
    (due in January: not soon)."""
    from edefter_helper import actions
    from edefter_helper.samples import write_month
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    firms = [("Ege Tekstil", "7420300220", "Tüzel", "Ayşe"), ("Anadolu Gıda", "1234567890", "Gerçek", "Mehmet"),
             ("Marmara İnşaat", "3880412757", "Tüzel", ""), (FIRM, VKN, "Tüzel", "Ayşe")]
    ledgers, nas = tmp_path / "defter", tmp_path / "NAS"
    nas.mkdir()
    for _, vkn, _, _ in firms:
        write_month(ledgers / vkn / "2026-05", vkn, "2026-05", entries=4)
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": n, "vkn": v, "folder": str(ledgers), "target": "NAS", "taxpayer": t,
                               "owner": o} for n, v, t, o in firms])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    journal = tmp_path / "j.sqlite3"
    assert actions.backup(FileBook(wb), options=actions.Options(journal=journal)).failed == 0
    for _, vkn, _, _ in firms[:3]:
        write_month(ledgers / vkn / "2026-08", vkn, "2026-08", entries=4, gib=False)
    write_month(ledgers / VKN / "2026-08", VKN, "2026-08", entries=4)  # GİB closed it: not due
    write_month(ledgers / "7420300220" / "2026-09", "7420300220", "2026-09", entries=4, gib=False)
    return wb, journal


def test_digest_lists_the_months_due_in_7_days_per_sorumlu_from_scan_and_journal(smtp, receiver, pki, clock,
                                                                                  tmp_path, edefter):
    from datetime import date

    from edefter_helper import radar
    from edefter_helper.agent import SettingsBook

    wb, journal = _office_with_deadlines(tmp_path, edefter)
    before = wb.read_bytes()
    due = radar.due_soon_for(SettingsBook(wb), journal, today=date(2026, 12, 8))  # as the agent reads it
    assert wb.read_bytes() == before  # a settings source only: nothing typed, nothing written
    assert sorted((d.vkn, d.period, d.due, d.days) for d in due) == [
        ("1234567890", "2026-08", "2026-12-10", 2), ("3880412757", "2026-08", "2026-12-14", 6),
        ("7420300220", "2026-08", "2026-12-14", 6)]

    mehmet_only = N.Channel("webhook", f"http://127.0.0.1:{receiver.port}/mehmet", {"ozet"}, {"1234567890"})
    channels = [email_channel(smtp.port, events={"ozet"}), webhook_channel(receiver.port, events={"ozet"}),
                mehmet_only]
    with N.Notifier(channels, tmp_path / "k.db", clock=clock, ca_file=pki["ca"]) as notifier:
        notifier.digest(due_soon=due)
        assert notifier.pending_count() == 0
    mail = smtp.parsed().get_content()
    hook = next(c["json"]["message"] for c in receiver.calls if c["path"].startswith("/hooks/"))
    missing = "Eksik: GIB-YB, GIB-KB."
    expected = [
        "GİB'e berat yükleme son günü 7 gün içinde olan, kapanmamış aylar (3), Sorumlu'ya göre:",
        "Ayşe (1):",
        f"- Ege Tekstil (VKN 7420300220) — Ağustos 2026: son güne 6 gün var. Son gün 14.12.2026. {missing}",
        "Mehmet (1):",
        f"- Anadolu Gıda (VKN 1234567890) — Ağustos 2026: son güne 2 gün var. Son gün 10.12.2026. {missing}",
        "Sorumlu belirtilmemiş (1):",
        f"- Marmara İnşaat (VKN 3880412757) — Ağustos 2026: son güne 6 gün var. Son gün 14.12.2026. {missing}",
    ]
    for text in (mail, hook):
        lines = text.splitlines()
        start = lines.index(expected[0])
        assert lines[start:start + len(expected)] == expected, text
        assert FIRM not in text and "Eylül 2026" not in text  # closed at GİB; due in January
    mehmet = next(c["json"]["message"] for c in receiver.calls if c["path"] == "/mehmet")
    assert "aylar (1), Sorumlu'ya göre:" in mehmet and "Mehmet (1):" in mehmet and "Ayşe" not in mehmet


def test_digest_says_when_nothing_is_due_and_leaves_the_section_out_when_not_computed(receiver, clock, tmp_path):
    channels = [webhook_channel(receiver.port, events={"ozet"})]
    with N.Notifier(channels, tmp_path / "k.db", clock=clock) as notifier:
        notifier.digest(due_soon=[])
        clock.advance(86400)
        notifier.digest()
    first, second = (c["json"]["message"] for c in receiver.calls)
    assert "GİB'e berat yükleme son günü 7 gün içinde olan, kapanmamış ay yok." in first
    assert "GİB'e berat" not in second


def test_the_agents_daily_digest_carries_the_due_list(receiver, tmp_path, edefter):
    """The background agent's Alarms: the digest, once a day after a cycle, with the months due within
    7 days per Sorumlu computed then (from the thread, while cycles run, it waits for the next cycle)."""
    import types
    from datetime import datetime

    from edefter_helper import agent as A
    from edefter_helper.workbook import layout as L
    from edefter_helper.workbook.file import FileBook

    wb, journal = _office_with_deadlines(tmp_path, edefter)
    book = FileBook(wb)
    book.write_rows(L.NOTIFY, [{"kind": "webhook", "address": f"http://127.0.0.1:{receiver.port}/ozet",
                                "events": "ozet"}])
    book.save()
    now = [datetime(2026, 12, 7, 9, 0).timestamp()]
    stand_in = types.SimpleNamespace(workbook=wb, journal_path=journal, wallclock=lambda: now[0], interval=60.0,
                                     last_success_at=now[0], last_cycle_at=now[0])
    alarms = A.Alarms(stand_in)
    alarms.check(after_cycle=True)  # the first look starts the day
    now[0] += 86400
    stand_in.last_success_at = stand_in.last_cycle_at = now[0]
    alarms.check()  # the thread, while cycles run: not now
    assert receiver.calls == []
    alarms.check(after_cycle=True)
    assert [c["json"]["event"] for c in receiver.calls] == ["ozet"]
    text = receiver.calls[0]["json"]["message"]
    assert "kapanmamış aylar (3), Sorumlu'ya göre:" in text
    assert "- Anadolu Gıda (VKN 1234567890) — Ağustos 2026: son güne 2 gün var." in text
