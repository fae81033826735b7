"""The Hedefler sheet's Adres cell for an İzibiz target: the accepted forms (module docstring of
edefter_helper/targets/izibiz.py) and the Turkish messages that list them."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets import base
from edefter_helper.targets.base import STORED, Package, TargetError
from edefter_helper.targets.izibiz import Endpoints, IzibizTarget, parse_address
from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

AUTH, ARCHIVE = "/AuthenticationWS", "/EIArchiveWS/EFaturaArchive"
H = "https://sunucu.ornek.com.tr"


@pytest.mark.parametrize("address, auth, archive", [
    (H, H + AUTH, H + ARCHIVE),
    (f"  {H}/  ", H + AUTH, H + ARCHIVE),
    (f"{H}{AUTH} {H}{ARCHIVE}", H + AUTH, H + ARCHIVE),
    (f"{H}{AUTH};{H}{ARCHIVE}", H + AUTH, H + ARCHIVE),
    (f"{H}{ARCHIVE}\n{H}{AUTH}", H + AUTH, H + ARCHIVE),  # both named by their paths: order is clear
    (f"https://a.example{AUTH} https://b.example/arsiv", f"https://a.example{AUTH}", "https://b.example/arsiv"),
    (f"{H}{AUTH}?wsdl", H + AUTH, H + ARCHIVE),  # copied from the documentation's WSDL link
    (f"{H}/izibiz{ARCHIVE}", f"{H}/izibiz{AUTH}", f"{H}/izibiz{ARCHIVE}"),
    (f"{H}/EIWSProxy/EDefterProxy", f"{H}/EIWSProxy/EDefterProxy", f"{H}/EIWSProxy/EDefterProxy"),
    ("test", "https://efaturatest.izibiz.com.tr" + AUTH, "https://efaturatest.izibiz.com.tr" + ARCHIVE),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080" + AUTH, "http://127.0.0.1:8080" + ARCHIVE),
])
def test_accepted_forms(address, auth, archive):
    assert parse_address(address) == Endpoints(auth, archive)


@pytest.mark.parametrize("address, says", [
    ("", "boş"),
    ("http://izibiz.example.com", "https://"),
    (f"{H} {H} {H}", "en çok iki adres"),
    (f"{H}{AUTH} http://uzak.example{ARCHIVE}", "https://"),
    ("https://ali:sifre@izibiz.example.com/", "şifre anahtar zincirinde"),
])
def test_refused_forms_say_why_in_turkish(address, says):
    with pytest.raises(TargetError) as err:
        parse_address(address)
    assert says in err.value.message
    # a settings problem, the same for every month (reported once per run where base has the kind)
    assert isinstance(err.value, getattr(base, "ConfigurationError", TargetError))
    if "şifre anahtar" not in says:
        assert "Adres için kabul edilen biçimler" in err.value.message
        assert "boşlukla ayrılmış iki adres" in err.value.message


def test_target_shows_both_endpoints_and_never_the_password():
    t = IzibizTarget(H, "ali@firma", "gizli-şifre")
    assert t.url == f"{H}{AUTH} {H}{ARCHIVE}"
    assert "gizli-şifre" not in repr(t) and AUTH in repr(t) and ARCHIVE in repr(t)


def test_wrong_archive_address_is_reported_with_the_forms(tmp_path, shared_dir):
    contract = require_contract(shared_dir / "integrators" / "izibiz")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "d", contract_dir=contract)) as srv:
        with IzibizTarget(f"{srv.auth_url} {srv.url}/yanlis/yol", "ali@firma", "doğru-şifre") as t:
            with pytest.raises(TargetError) as err:
                t.query(MonthKey("4840847211", "0000", "2024-01"))
    assert "HTTP 404" in err.value.message and "arşiv servisi" in err.value.message
    assert "Adres için kabul edilen biçimler" in err.value.message


@pytest.mark.parametrize("form", ["server", "two", "auth-only", "archive-only"])
def test_each_form_reaches_both_services(tmp_path, shared_dir, form):
    contract = require_contract(shared_dir / "integrators" / "izibiz")
    key = MonthKey("4840847211", "0000", "2024-03")
    path = tmp_path / key.package_name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("4840847211-202403-Y-000001.xml", "<defter/>" * 100)
    pkg = Package(path=path, key=key, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size)
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "d", contract_dir=contract)) as srv:
        address = {"server": srv.url, "two": f"{srv.auth_url}  {srv.archive_url}", "auth-only": srv.auth_url + "?wsdl",
                   "archive-only": srv.archive_url}[form]
        with IzibizTarget(address, "ali@firma", "doğru-şifre") as t:
            t.send(pkg, "")
            assert t.query(key).state == STORED
        assert {info["path"] for _, info in srv.app.calls} == {AUTH, ARCHIVE}
        assert srv.app.invalid_requests == [] and srv.app.response_errors == []
