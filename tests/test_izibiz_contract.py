"""The İzibiz client against İzibiz's real WSDL/XSD (../shared/integrators/izibiz/): every request is
validated by the fake server with lxml XMLSchema; these tests prove which endpoint, namespace, header
order and SOAPAction each operation uses, and that the validation refuses what the real service would."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
import requests
from lxml import etree

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets import izibiz as izibiz_mod
from edefter_helper.targets.base import ACCEPTED, MISSING, STORED, CredentialsError, Package, RejectedError
from edefter_helper.targets.izibiz import IzibizTarget
from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

USER, PASSWORD = "ali@firma", "doğru-şifre"
KEY = MonthKey("4840847211", "0000", "2024-01")
BRANCH = MonthKey("4840847211", "0003", "2024-02")
NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_AUTH = "http://schemas.i2i.com/ei/wsdl"
NS_ARCHIVE = "http://schemas.i2i.com/ei/wsdl/archive"
AUTH, ARCHIVE = "/AuthenticationWS", "/EIArchiveWS/EFaturaArchive"


@pytest.fixture
def contract(shared_dir):
    return require_contract(shared_dir / "integrators" / "izibiz")


@pytest.fixture
def server(tmp_path, contract):
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz-disk", contract_dir=contract)) as srv:
        yield srv
    assert srv.app.invalid_requests == []  # a test that sends invalid requests on purpose clears them
    assert srv.app.response_errors == []


def make_package(tmp_path, key=KEY, text="ocak") -> Package:
    folder = tmp_path / "paket" / f"{key.branch}-{key.period}-{text}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key.package_name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{key.vkn}-{key.period.replace('-', '')}-Y-000001.xml", f"<defter>{text}</defter>" * 200)
    data = path.read_bytes()
    return Package(path=path, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def envelope(ns: str, operation: str, inner: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{NS_SOAP}" xmlns:ns="{ns}">'
            f"<soapenv:Header/><soapenv:Body><ns:{operation}>{inner}</ns:{operation}></soapenv:Body>"
            "</soapenv:Envelope>").encode()


def post(url: str, body: bytes, action: str = '""') -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": action},
                         timeout=10)


def fault_text(resp: requests.Response) -> str:
    doc = etree.fromstring(resp.content)
    return doc.findtext(".//ERROR_SHORT_DES") or ""


def test_every_operation_goes_to_its_service_in_its_namespace_schema_valid(tmp_path, server):
    pkg, branch_pkg = make_package(tmp_path), make_package(tmp_path, BRANCH, "şube")
    server.app.hold_processing = True
    with IzibizTarget(server.url, USER, PASSWORD) as t:
        assert t.query(KEY).state == MISSING
        assert t.send(pkg, "").state == ACCEPTED
        assert t.query(KEY).state == ACCEPTED  # GetELedgerStatus tells "processing"
        server.app.finish_processing()
        assert t.query(KEY).sha256 == pkg.sha256
        t.send(branch_pkg, "")
        assert t.cancel(BRANCH).state == MISSING
        assert t.cancel(KEY).state == MISSING
    expected = {"LoginRequest": (AUTH, NS_AUTH), "LogoutRequest": (AUTH, NS_AUTH),
                "ArchiveELedgerRequest": (ARCHIVE, NS_ARCHIVE),
                "GetGenericArchiveByPeriodRequest": (ARCHIVE, NS_ARCHIVE),
                "GetELedgerStatusRequest": (ARCHIVE, NS_ARCHIVE), "CancelEDefterRequest": (ARCHIVE, NS_ARCHIVE)}
    seen = {}
    for op, info in server.app.calls:
        seen[op] = (info["path"], info["namespace"])
        assert info["soapaction"] == '""', op  # every WSDL operation declares soapAction=""
    assert seen == expected
    assert server.app.invalid_requests == [] and server.app.response_errors == []


def test_request_header_follows_the_xsd_sequence(tmp_path, server, contract):
    fake_contract = server.app.contract
    archive_seq, auth_seq = fake_contract.header_sequence("archive"), fake_contract.header_sequence("auth")
    # the client's order is the XSD's, read from the real files (auth has no API_KEY)
    assert list(izibiz_mod.HEADER_ORDER) == archive_seq
    assert auth_seq == [n for n in archive_seq if n != "API_KEY"]
    with IzibizTarget(server.url, USER, PASSWORD) as t:
        t.send(make_package(tmp_path), "")
        t.query(KEY)
    for op, info in server.app.calls:
        order = info["header_order"]
        seq = auth_seq if info["path"] == AUTH else archive_seq
        positions = [seq.index(name) for name in order]
        assert positions == sorted(positions), (op, order)
        assert order[:2] == ["SESSION_ID", "CLIENT_TXN_ID"] and "APPLICATION_NAME" in order


def test_the_old_header_order_is_refused_by_the_schema(server, monkeypatch):
    """The previous client's dialect (CLIENT_TXN_ID last) is what the real XSD refuses: the fake's
    validation bites, and the refusal reaches the user in Turkish."""
    monkeypatch.setattr(izibiz_mod, "HEADER_ORDER", ("SESSION_ID", "APPLICATION_NAME", "CHANNEL_NAME",
                                                     "CLIENT_TXN_ID"))
    with IzibizTarget(server.url, USER, PASSWORD) as t:
        with pytest.raises(CredentialsError) as err:
            t.query(KEY)
    assert "İzibiz girişi başarısız" in err.value.message and "şemaya uymuyor" in err.value.message
    assert "CLIENT_TXN_ID" in err.value.message
    (path, op, reason), = server.app.invalid_requests
    assert (path, op) == (AUTH, "LoginRequest") and "CLIENT_TXN_ID" in reason
    assert server.app.logins == 0 and server.app.calls == []
    server.app.invalid_requests.clear()


@pytest.mark.parametrize("path, ns, operation, inner, why", [
    (AUTH, NS_AUTH, "LoginRequest",
     "<REQUEST_HEADER><SESSION_ID>-1</SESSION_ID><APPLICATION_NAME>x</APPLICATION_NAME>"
     "<CLIENT_TXN_ID>1</CLIENT_TXN_ID></REQUEST_HEADER><USER_NAME>ali@firma</USER_NAME><PASSWORD>p</PASSWORD>",
     "header out of XSD order"),
    (AUTH, NS_AUTH, "LoginRequest",
     "<REQUEST_HEADER><SESSION_ID>-1</SESSION_ID></REQUEST_HEADER><PASSWORD>p</PASSWORD><USER_NAME>u</USER_NAME>",
     "USER_NAME after PASSWORD"),
    (ARCHIVE, NS_AUTH, "GetELedgerStatusRequest",
     "<REQUEST_HEADER><SESSION_ID>s</SESSION_ID></REQUEST_HEADER><PERIOD>202401</PERIOD>",
     "GetELedgerStatus in the authentication namespace (the old client)"),
    (AUTH, NS_ARCHIVE, "GetELedgerStatusRequest",
     "<REQUEST_HEADER><SESSION_ID>s</SESSION_ID></REQUEST_HEADER><PERIOD>202401</PERIOD>",
     "an archive operation posted to the authentication service"),
    (ARCHIVE, NS_ARCHIVE, "CancelEDefterRequest",
     "<REQUEST_HEADER><SESSION_ID>s</SESSION_ID></REQUEST_HEADER><CancelEDefterContent><VKN>4840847211</VKN>"
     "<SUBE_NO>0001</SUBE_NO><DONEM>202401</DONEM></CancelEDefterContent>",
     "SUBE_NO before DONEM"),
    (ARCHIVE, NS_ARCHIVE, "GetELedgerStatusRequest",
     "<REQUEST_HEADER><SESSION_ID>s</SESSION_ID></REQUEST_HEADER><ns:PERIOD>202401</ns:PERIOD>",
     "a qualified child (children are unqualified)"),
    (ARCHIVE, NS_ARCHIVE, "GetGenericArchiveByPeriodRequest",
     "<REQUEST_HEADER><SESSION_ID>s</SESSION_ID></REQUEST_HEADER><VKN>4840847211</VKN>",
     "DONEM missing"),
    (ARCHIVE, NS_ARCHIVE, "ArchiveELedgerRequest",
     "<REQUEST_HEADER><SESSION_ID>s</SESSION_ID><CHANNEL_NAME>x</CHANNEL_NAME><APPLICATION_NAME>y</APPLICATION_NAME>"
     "</REQUEST_HEADER><FILENAME>4840847211-202401-0000.zip</FILENAME><CONTENT>AAAA</CONTENT>",
     "the prose-only upload is held to the real REQUEST_HEADERType too"),
])
def test_schema_invalid_requests_get_a_soap_fault(server, path, ns, operation, inner, why):
    resp = post(server.url + path, envelope(ns, operation, inner))
    assert resp.status_code == 500, why
    doc = etree.fromstring(resp.content)
    assert doc.find(f".//{{{NS_SOAP}}}Fault") is not None
    assert fault_text(resp).startswith("Geçersiz istek"), why
    assert len(server.app.invalid_requests) == 1 and server.app.calls == [], why
    server.app.invalid_requests.clear()


def test_a_valid_request_passes_and_soapaction_must_be_empty(server):
    login = envelope(NS_AUTH, "LoginRequest", "<REQUEST_HEADER><SESSION_ID>-1</SESSION_ID>"
                     "<CLIENT_TXN_ID>1</CLIENT_TXN_ID><APPLICATION_NAME>x</APPLICATION_NAME></REQUEST_HEADER>"
                     f"<USER_NAME>{USER}</USER_NAME><PASSWORD>{PASSWORD}</PASSWORD>")
    resp = post(server.auth_url, login, action='"Login"')
    assert resp.status_code == 500 and "SOAPAction" in fault_text(resp)
    server.app.invalid_requests.clear()
    resp = post(server.auth_url, login)
    assert resp.status_code == 200
    doc = etree.fromstring(resp.content)
    assert doc.findtext(f".//{{{NS_AUTH}}}LoginResponse/SESSION_ID")


def test_branch_is_named_by_sube_no_where_the_xsd_allows_it(tmp_path, server):
    bodies = []
    with IzibizTarget(server.url, USER, PASSWORD) as t:
        t.login()
        orig = t.http.post

        def spy(url, data=None, **kw):
            if isinstance(data, bytes) and b"CancelEDefterRequest" in data:
                bodies.append(etree.fromstring(data))
            return orig(url, data=data, **kw)

        t.http.post = spy
        t.send(make_package(tmp_path, BRANCH, "şube"), "")
        # without the branch the stored branch package is not found: SUBE_NO is what names it
        with pytest.raises(RejectedError) as err:
            t.cancel(MonthKey(BRANCH.vkn, "0000", BRANCH.period))
        assert "bulunamadı" in err.value.message and "Şubat 2024" in err.value.message
        assert t.cancel(BRANCH).state == MISSING
        t.send(make_package(tmp_path), "")
        assert t.cancel(KEY).state == MISSING
    contents = [b.find(f".//{{{NS_ARCHIVE}}}CancelEDefterRequest/CancelEDefterContent") for b in bodies]
    assert [c.findtext("SUBE_NO") for c in contents] == [None, "0003", None]  # 0000 = no branch: left out
    assert [[e.tag for e in c] for c in contents][1] == ["VKN", "DONEM", "SUBE_NO"]
    assert not server.app.store


def test_proxy_single_address_carries_every_operation(tmp_path, server):
    pkg = make_package(tmp_path)
    with IzibizTarget(server.proxy_url, USER, PASSWORD) as t:
        t.send(pkg, "")
        assert t.query(KEY).state == STORED
    assert {info["path"] for _, info in server.app.calls} == {"/EDefterProxy"}
    # namespaces stay per service even on one address
    assert {op: info["namespace"] for op, info in server.app.calls}["LoginRequest"] == NS_AUTH
    assert {op: info["namespace"] for op, info in server.app.calls}["ArchiveELedgerRequest"] == NS_ARCHIVE


def test_fake_answers_carry_the_real_field_names(tmp_path, server):
    server.app.reject_content = ("3001", "Çapraz Doğrulama Kontrolü Hatalıdır", "Yevmiye beratı bu deftere ait değil")
    pkg = make_package(tmp_path)
    t = IzibizTarget(server.url, USER, PASSWORD)
    t.login()
    body = t._serialize(t._envelope(izibiz_mod.READ_BACK, t.session_id, [("DONEM", "202401"), ("VKN", KEY.vkn)]))
    resp = post(server.archive_url, body)
    assert resp.status_code == 500  # nothing stored: a Fault with RequestFault in its detail
    doc = etree.fromstring(resp.content)
    error = doc.find(f".//{{{NS_ARCHIVE}}}RequestFault/RequestFaultResponse")
    assert [e.tag for e in error] == ["INTL_TXN_ID", "CLIENT_TXN_ID", "ERROR_CODE", "ERROR_SHORT_DES"]
    assert error.findtext("ERROR_CODE") == "10008"
    with pytest.raises(RejectedError):
        t.send(pkg, "")
    t.close()
    assert b"ERROR_SHORT_DESC" not in resp.content
