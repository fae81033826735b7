import hashlib
import os
import tracemalloc
import zipfile

import pytest
import requests

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets import izibiz as izibiz_mod
from edefter_helper.targets.base import (
    ACCEPTED, MISSING, STORED, CredentialsError, Package, RejectedError, TargetError, TransientError,
)
from edefter_helper.targets.izibiz import IzibizTarget, StreamBody, check_url, read_soap
from edefter_helper.targets.retry import Retrying
from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

KEY = MonthKey("4840847211", "0000", "2024-01")
USER, PASSWORD = "ali@firma", "doğru-şifre"


def make_package(tmp_path, key=KEY, text="ocak", name="a") -> Package:
    folder = tmp_path / "paket" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key.package_name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{key.vkn}-{key.period.replace('-', '')}-Y-000001.xml", f"<defter>{text}</defter>" * 500)
    data = path.read_bytes()
    return Package(path=path, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


@pytest.fixture
def server(tmp_path, shared_dir):
    """The fake İzibiz, validating every request against the real XSDs (skips without them)."""
    contract = require_contract(shared_dir / "integrators" / "izibiz")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz-disk", contract_dir=contract)) as srv:
        yield srv
    # every request the client made was schema-valid, and every answer followed the real XSDs
    assert srv.app.invalid_requests == []
    assert srv.app.response_errors == []


def target(server, password=PASSWORD, **kw):
    return IzibizTarget(server.url, USER, password, **kw)


def test_full_cycle_send_query_fetch_cancel(tmp_path, server):
    pkg = make_package(tmp_path)
    with target(server) as t:
        assert t.query(KEY).state == MISSING
        receipt = t.send(pkg, "Tiger sisteminden aktarılmıştır")
        assert receipt.state == ACCEPTED and receipt.reference
        assert receipt.extra["description"] == "Tiger sisteminden aktarılmıştır"
        stored = server.app.store[("4840847211", "202401")]
        assert stored.filename == "4840847211-202401-0000.zip" and stored.sha256 == pkg.sha256

        q = t.query(KEY)
        assert q.state == STORED and q.sha256 == pkg.sha256

        out = t.fetch(KEY, tmp_path / "geri" / "x.zip")
        assert out.read_bytes() == pkg.path.read_bytes()
        assert [p.name for p in out.parent.iterdir()] == ["x.zip"]  # no temp file left

        assert t.cancel(KEY).state == MISSING
        assert t.query(KEY).state == MISSING
        with pytest.raises(RejectedError) as err:
            t.cancel(KEY)
        assert "bulunamadı" in err.value.message
    # one login for the whole object, logout on close
    assert server.app.logins == 1 and server.app.logouts == 1
    login = [c for c in server.app.calls if c[0] == "LoginRequest"][0][1]
    assert login["SESSION_ID"] == "-1" and login["APPLICATION_NAME"] == "edefter-yedekleme"


def test_store_once(tmp_path, server):
    pkg = make_package(tmp_path)
    other = make_package(tmp_path, text="başka", name="b")
    with target(server) as t:
        t.send(pkg, "")
        again = t.send(pkg, "")  # same bytes: the stored receipt, not an error
        assert again.state == STORED and again.sha256 == pkg.sha256
        with pytest.raises(RejectedError) as err:
            t.send(other, "")
        assert "önce iptal edilmeli" in err.value.message and "Ocak 2024" in err.value.message
        assert server.app.store[("4840847211", "202401")].sha256 == pkg.sha256
        t.cancel(KEY)
        t.send(other, "")
        assert t.query(KEY).sha256 == other.sha256


def test_processing_is_accepted_until_stored(tmp_path, server):
    server.app.hold_processing = True
    pkg = make_package(tmp_path)
    with target(server) as t:
        t.send(pkg, "")
        q = t.query(KEY)
        assert q.state == ACCEPTED and "İşleniyor" in q.message
        server.app.finish_processing()
        assert t.query(KEY).state == STORED


def test_expired_session_logs_in_again_once(tmp_path, server):
    pkg = make_package(tmp_path)
    with target(server) as t:
        assert t.query(KEY).state == MISSING
        server.app.expire_sessions()
        assert t.send(pkg, "").state == ACCEPTED
        assert server.app.logins == 2
        # the refused ArchiveELedger left nothing behind; the retried one stored the package
        assert server.app.store[("4840847211", "202401")].sha256 == pkg.sha256
        assert len(list((tmp_path / "izibiz-disk").iterdir())) == 1


def test_wrong_password_is_credentials_error_without_secret(server):
    wrong = "yanlış-şifre-123"
    with target(server, password=wrong) as t:
        with pytest.raises(CredentialsError) as err:
            t.query(KEY)
    assert "ali@firma" in err.value.message and "hatalı" in err.value.message
    assert wrong not in err.value.message and wrong not in repr(t)
    assert server.app.logins == 0


def test_error_type_is_rejected_with_its_text(tmp_path, server):
    server.app.reject_content = ("3001", "Çapraz Doğrulama Kontrolü Hatalıdır")
    with target(server) as t:
        with pytest.raises(RejectedError) as err:
            t.send(make_package(tmp_path), "")
    assert "Çapraz Doğrulama Kontrolü Hatalıdır" in err.value.message
    assert not server.app.store


def test_503_and_429_are_transient_and_retrying_recovers(tmp_path, server):
    server.app.unavailable = 1
    server.app.retry_after = "5"
    with target(server) as t:
        with pytest.raises(TransientError) as err:
            t.query(KEY)
        assert err.value.status == 503 and err.value.retry_after == 5.0
        server.app.unavailable, server.app.too_many = 2, 1
        sleeps = []
        r = Retrying(t, sleep=sleeps.append)
        assert r.send(make_package(tmp_path), "").state == ACCEPTED
        assert r.attempts == 4 and sleeps == [5.0, 5.0, 8.0]  # Retry-After 5, 5; then backoff 8 > Retry-After 3


def test_connection_refused_is_transient():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t = IzibizTarget(f"http://127.0.0.1:{port}/x", USER, PASSWORD, timeout=2)
    with pytest.raises(TransientError) as err:
        t.query(KEY)
    assert "ulaşılamıyor" in err.value.message and "bağlantı reddedildi" in err.value.message


def test_url_rules():
    with pytest.raises(TargetError):
        check_url("http://izibiz.example.com/EDefter")
    with pytest.raises(TargetError):
        check_url("https://ali:sifre@izibiz.example.com/")
    assert check_url("https://efatura.izibiz.com.tr/EDefter")
    assert check_url("http://127.0.0.1:8080/x") and check_url("http://[::1]:8080/x")


def test_doctype_in_answer_is_refused():
    evil = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a>&e;</a></S:Body></S:Envelope>')
    with pytest.raises(izibiz_mod.SoapReadError):
        read_soap([evil])


def test_fake_refuses_doctype(server):
    body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<s:Body/></s:Envelope>")
    resp = requests.post(server.auth_url, data=body, headers={"SOAPAction": '""'}, timeout=5)
    assert resp.status_code == 500 and b"DOCTYPE" in resp.content
    assert [r[2] for r in server.app.invalid_requests] == ["DOCTYPE refused"]
    server.app.invalid_requests.clear()


def test_streaming_50mb_package_stays_small_in_memory(tmp_path, server):
    path = tmp_path / KEY.package_name
    with open(path, "wb") as f:  # incompressible, like a real zip
        for _ in range(50):
            f.write(os.urandom(1024 * 1024))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while c := f.read(1 << 20):
            h.update(c)
    pkg = Package(path=path, key=KEY, sha256=h.hexdigest(), size=path.stat().st_size)

    posted = []
    with target(server) as t:
        t.login()
        orig = t.http.post

        def spy(url, data=None, **kw):
            posted.append(data)
            return orig(url, data=data, **kw)

        t.http.post = spy
        tracemalloc.start()
        try:
            assert t.send(pkg, "").state == ACCEPTED
            q = t.query(KEY)
            t.fetch(KEY, tmp_path / "geri.zip")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(posted[0], StreamBody)  # an iterable, never the whole base64 in memory
    call = [c for c in server.app.calls if c[0] == "ArchiveELedgerRequest"][0][1]
    assert int(call["content_length"]) == len(posted[0]) and not call["chunked"]
    assert q.state == STORED and q.sha256 == pkg.sha256
    assert hashlib.sha256((tmp_path / "geri.zip").read_bytes()).hexdigest() == pkg.sha256
    # client and fake server together, in this process; anything holding the whole body needs
    # more than the 67 MB of base64 (measured about 14 MB, mostly waitress's output buffers)
    assert peak < 32 * 1024 * 1024, peak


def test_server_echoing_the_password_does_not_leak_it(server):
    server.app.errors["LoginRequest"] = ("1", f"Kullanıcı {USER} şifresi {PASSWORD} kilitli")
    with target(server) as t:
        with pytest.raises(CredentialsError) as err:
            t.query(KEY)
    assert "kilitli" in err.value.message and PASSWORD not in err.value.message
    assert PASSWORD not in server.url
