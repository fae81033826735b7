"""İzibiz errors as the real contract spells them (REQUEST_ERRORType: ERROR_CODE, ERROR_SHORT_DES,
ERROR_LONG_DES; in ERROR_TYPE or in a SOAP Fault's RequestFault), an expired session, and the month's
true state: never "no package" when İzibiz only failed to answer."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets.base import (
    ACCEPTED, MISSING, STORED, CredentialsError, Package, RejectedError, TargetError,
)
from edefter_helper.targets.izibiz import IzibizTarget, read_soap
from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

USER, PASSWORD = "ali@firma", "doğru-şifre"
KEY = MonthKey("4840847211", "0000", "2024-01")
NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_ARCHIVE = "http://schemas.i2i.com/ei/wsdl/archive"


@pytest.fixture
def server(tmp_path, shared_dir):
    contract = require_contract(shared_dir / "integrators" / "izibiz")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz-disk", contract_dir=contract)) as srv:
        yield srv
    assert srv.app.invalid_requests == [] and srv.app.response_errors == []


def make_package(tmp_path, text="ocak") -> Package:
    path = tmp_path / text / KEY.package_name
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("4840847211-202401-Y-000001.xml", f"<defter>{text}</defter>" * 100)
    data = path.read_bytes()
    return Package(path=path, key=KEY, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def target(server) -> IzibizTarget:
    return IzibizTarget(server.url, USER, PASSWORD)


# -- expired session -----------------------------------------------------------------------------

@pytest.mark.parametrize("session_error", [
    ("10004", "Geçersiz oturum. Lütfen tekrar oturum oluşturunuz ve tekrar deneyiniz", None),
    ("-1", "İşlem yapılamadı", "Oturum süresi dolmuş"),  # only ERROR_LONG_DES says it
    ("10004", "İşlem yapılamadı", None),  # only the documented code says it
], ids=["code-and-short", "long-text", "code-only"])
def test_expired_session_is_recognised_in_the_real_fields_and_the_stored_month_reported(
        tmp_path, server, session_error):
    server.app.session_error = session_error
    server.app.generic_faultstring = True  # the faultstring says nothing: only RequestFault's fields do
    pkg = make_package(tmp_path)
    with target(server) as t:
        t.send(pkg, "")
        server.app.expire_sessions()
        q = t.query(KEY)
    assert q.state == STORED and q.sha256 == pkg.sha256  # not "İzibiz'de bu aya ait paket yok"
    assert server.app.logins == 2
    ops = server.app.ops()
    # the refused read-back, a new Login, the same read-back again
    assert ops[-4:-1] == ["GetGenericArchiveByPeriodRequest", "LoginRequest", "GetGenericArchiveByPeriodRequest"]


def test_expired_session_while_processing_is_accepted_not_missing(tmp_path, server):
    server.app.hold_processing = True
    with target(server) as t:
        t.send(make_package(tmp_path), "")
        server.app.expire_in = 2  # the read-back works, then the status query meets an expired session
        q = t.query(KEY)
    assert q.state == ACCEPTED and "İşleniyor" in q.message
    assert server.app.logins == 2


def test_expired_session_in_error_type_of_a_normal_answer(tmp_path, server):
    server.app.session_error_style = "error_type"  # CancelEDefterResponse carries ERROR_TYPE, HTTP 200
    with target(server) as t:
        t.send(make_package(tmp_path), "")
        server.app.expire_sessions()
        assert t.cancel(KEY).state == MISSING
    assert server.app.logins == 2 and not server.app.store


def test_session_refused_again_after_login_is_a_credentials_error(server):
    server.app.forget_sessions = True
    with target(server) as t:
        with pytest.raises(CredentialsError) as err:
            t.query(KEY)
    assert "yeniden açıldı" in err.value.message and "Geçersiz oturum" in err.value.message
    assert server.app.logins == 2  # once more, not forever


# -- the month's true state ----------------------------------------------------------------------

def test_read_back_failure_is_unknown_state_not_no_package(server):
    server.app.errors["GetGenericArchiveByPeriodRequest"] = (
        "10001", "Sistemde Beklenmedik Bir Hata Oluştu", "arşiv deposuna ulaşılamadı")
    with target(server) as t:
        with pytest.raises(TargetError) as err:
            t.query(KEY)
    message = err.value.message
    assert "Ocak 2024" in message and "bilinmiyor" in message and "paket yok" not in message
    assert "Sistemde Beklenmedik Bir Hata Oluştu" in message and "arşiv deposuna ulaşılamadı" in message
    assert "hata kodu 10001" in message


def test_status_refusal_is_noted_when_nothing_is_stored(server):
    server.app.errors["GetELedgerStatusRequest"] = ("10006", "Yetkiniz bulunmamaktadır")
    with target(server) as t:
        q = t.query(KEY)
    assert q.state == MISSING and "Yetkiniz bulunmamaktadır" in q.message


# -- error texts reach the user, in Turkish --------------------------------------------------------

def test_refusal_texts_surface_in_turkish(tmp_path, server):
    server.app.reject_content = ("3001", "Çapraz Doğrulama Kontrolü Hatalıdır", "Yevmiye beratı bu deftere ait değil")
    with target(server) as t:
        with pytest.raises(RejectedError) as err:
            t.send(make_package(tmp_path), "")
    message = err.value.message
    assert message.startswith("İzibiz Ocak 2024 paketini reddetti: Çapraz Doğrulama Kontrolü Hatalıdır")
    assert "Yevmiye beratı bu deftere ait değil" in message and "hata kodu 3001" in message


def test_second_upload_of_a_period_is_explained(tmp_path, server):
    with target(server) as t:
        t.send(make_package(tmp_path), "")
        with pytest.raises(RejectedError) as err:
            t.send(make_package(tmp_path, "başka"), "")
    assert "önce iptal edilmeli" in err.value.message
    assert "Tekrarlanan işlem: kayıt sistemde mevcuttur" in err.value.message


def test_cancel_and_fetch_errors_carry_izibiz_text(tmp_path, server):
    server.app.errors["CancelEDefterRequest"] = ("10006", "Yetkiniz bulunmamaktadır")
    with target(server) as t:
        with pytest.raises(RejectedError) as err:
            t.cancel(KEY)
        assert "Ocak 2024 iptalini kabul etmedi: Yetkiniz bulunmamaktadır" in err.value.message
        with pytest.raises(TargetError) as err:
            t.fetch(KEY, tmp_path / "geri.zip")
        assert "Belirtilen kriterlere uygun kayıt bulunamamıştır" in err.value.message
    assert not (tmp_path / "geri.zip").exists()


def test_wrong_password_text_comes_from_the_real_fields(server):
    with IzibizTarget(server.url, USER, "yanlış") as t:
        with pytest.raises(CredentialsError) as err:
            t.login()
    assert "Oturum oluşturulamadı — Kullanıcı adı veya şifre hatalı (hata kodu 10002)" in err.value.message


# -- both spellings, read from raw answers -----------------------------------------------------------

def _answer(inner: str) -> bytes:
    return (f'<S:Envelope xmlns:S="{NS_SOAP}"><S:Body>{inner}</S:Body></S:Envelope>').encode()


@pytest.mark.parametrize("fields", [
    "<ERROR_SHORT_DES>Kısa</ERROR_SHORT_DES><ERROR_LONG_DES>Uzun açıklama</ERROR_LONG_DES>",  # the XSD
    "<ERROR_SHORT_DESC>Kısa</ERROR_SHORT_DESC><ERROR_LONG_DESC>Uzun açıklama</ERROR_LONG_DESC>",  # the prose
], ids=["xsd-spelling", "docs-spelling"])
def test_both_error_spellings_are_read(fields):
    reader = read_soap([_answer(f'<a:CancelEDefterResponse xmlns:a="{NS_ARCHIVE}"><ERROR_TYPE>'
                                f"<INTL_TXN_ID>1</INTL_TXN_ID><ERROR_CODE>77</ERROR_CODE>{fields}"
                                "</ERROR_TYPE></a:CancelEDefterResponse>")])
    err = IzibizTarget._error(reader)
    assert err.text == "Kısa — Uzun açıklama (hata kodu 77)" and not err.session_expired


def test_fault_detail_wins_over_faultstring_and_session_code_is_seen():
    reader = read_soap([_answer(
        "<S:Fault><faultcode>S:Server</faultcode><faultstring>RequestFault</faultstring><detail>"
        f'<a:RequestFault xmlns:a="{NS_ARCHIVE}"><RequestFaultResponse><INTL_TXN_ID>5</INTL_TXN_ID>'
        "<ERROR_CODE>10004</ERROR_CODE><ERROR_SHORT_DES>Geçersiz oturum</ERROR_SHORT_DES>"
        "</RequestFaultResponse></a:RequestFault></detail></S:Fault>")])
    err = IzibizTarget._error(reader)
    assert err.code == "10004" and err.short == "Geçersiz oturum" and err.session_expired


@pytest.mark.parametrize("code, is_error", [("0", False), ("3", False), ("-2", True)])
def test_return_code_below_zero_is_a_failure_above_zero_a_warning(code, is_error):
    reader = read_soap([_answer(f'<a:CancelEDefterResponse xmlns:a="{NS_ARCHIVE}"><REQUEST_RETURN>'
                                f"<INTL_TXN_ID>1</INTL_TXN_ID><RETURN_CODE>{code}</RETURN_CODE>"
                                "</REQUEST_RETURN></a:CancelEDefterResponse>")])
    assert (IzibizTarget._error(reader) is not None) == is_error
