"""The s3 target against a REAL S3 server: Ceph's RADOS Gateway, started once per session by
tests/s3_server.py (no test double: moto accepts retention shortening). What the server refuses is
proved with a plain boto3 client acting for an attacker holding the same access key."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import tracemalloc
import zipfile
from datetime import datetime, timezone

import pytest

from edefter_helper.engine.model import MonthKey
from edefter_helper.targets import registry
from edefter_helper.targets.base import (
    MISSING, REJECTED, STORED, ConfigurationError, CredentialsError, IntegrityError, NotSupported, Package,
    RejectedError, TransientError, UnreachableError,
)
from edefter_helper.targets.retry import Retrying

pytest.importorskip("boto3", reason="boto3 kurulu değil; S3 hedefi kullanılamaz")

from botocore.exceptions import ClientError  # noqa: E402

from edefter_helper.targets.s3 import S3Target, parse_address, probe  # noqa: E402

pytest_plugins = ("tests.s3_server",)

VKN = "4840847211"
KEY = MonthKey(VKN, "0000", "2024-01")
UNTIL_2034 = datetime(2034, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def make_package(tmp_path, key=KEY, text="ocak", size=0) -> Package:
    folder = tmp_path / "paket" / f"{key.branch}-{key.period}-{text}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key.package_name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{key.vkn}-{key.period.replace('-', '')}-Y-000001.xml", f"<defter>{text}</defter>" * 300)
        if size:
            z.writestr("dolgu.bin", os.urandom(size))
    data = path.read_bytes()
    return Package(path=path, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def open_s3(address: str, secret: str | None = None, user: str = "TESTKEY") -> S3Target:
    """Through the registry, as the factory opens it (password from the keyring there)."""
    spec = registry.get("s3")
    return spec.open(address, user, secret or "TESTSECRET", None)


@pytest.fixture
def bucket(ceph_s3):
    return ceph_s3.bucket()


@pytest.fixture
def target(ceph_s3, bucket):
    with open_s3(ceph_s3.address(bucket, "yedek", location="TR")) as t:
        yield t


def object_key(key=KEY, prefix="yedek") -> str:
    return f"{prefix}/{key.vkn}/{key.period[:4]}/{key.package_name}"


def versions(client, bucket, key) -> list[dict]:
    return [v for v in client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []) if v["Key"] == key]


def refused(fn, **kw) -> str:
    with pytest.raises(ClientError) as err:
        fn(**kw)
    return err.value.response["Error"]["Code"]


# ---- the round trip and the lock ------------------------------------------------------------------

def test_send_query_fetch_round_trip_byte_identical(target, tmp_path):
    pkg = make_package(tmp_path)
    assert target.query(KEY).state == MISSING
    first = target.send(pkg, "Tiger sisteminden aktarılmıştır")
    assert first.state == STORED, first.message
    assert first.sha256 == pkg.sha256 and first.reference == first.extra["version_id"]
    assert first.extra["mode"] == "COMPLIANCE" and first.extra["retain_until"] == "2034-12-31T23:59:59Z"
    assert first.extra["location"] == "TR" and first.extra["key"] == object_key()
    assert "31.12.2034" in first.message and "doğrulandı" in first.message and "KVKK" not in first.message

    status = target.query(KEY)
    assert status.state == STORED and status.sha256 == pkg.sha256 and status.reference == first.reference
    assert status.extra["description"] == "Tiger sisteminden aktarılmıştır"

    dest = target.fetch(KEY, tmp_path / "geri" / KEY.package_name)
    assert dest.read_bytes() == pkg.path.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [KEY.package_name]  # no temp file left

    again = target.send(pkg, "tekrar")  # the same package again: the same receipt, nothing written
    assert (again.state, again.reference, again.sha256) == (STORED, first.reference, pkg.sha256)
    assert len(versions(target.client, target.settings.bucket, object_key())) == 1


def test_retention_read_back_is_31_december_of_year_plus_10_utc(ceph_s3, target, bucket, tmp_path):
    pkg = make_package(tmp_path)
    receipt = target.send(pkg, "")
    raw = ceph_s3.client()  # an independent client reads what the server holds
    ret = raw.get_object_retention(Bucket=bucket, Key=object_key(), VersionId=receipt.reference)["Retention"]
    assert ret["Mode"] == "COMPLIANCE"
    assert ret["RetainUntilDate"].astimezone(timezone.utc) == UNTIL_2034
    head = raw.head_object(Bucket=bucket, Key=object_key(), VersionId=receipt.reference)
    assert head["Metadata"]["sha256"] == pkg.sha256 and head["ContentLength"] == pkg.size
    assert head["ETag"].strip('"') == hashlib.md5(pkg.path.read_bytes()).hexdigest()


def test_retention_years_and_governance_from_the_address(ceph_s3, bucket, tmp_path):
    key = MonthKey(VKN, "0002", "2023-11")
    with open_s3(ceph_s3.address(bucket, retention=12, mode="GOVERNANCE", location="yurtdisi")) as t:
        receipt = t.send(make_package(tmp_path, key), "")
    assert receipt.state == STORED and receipt.extra["mode"] == "GOVERNANCE"
    assert receipt.extra["retain_until"] == "2035-12-31T23:59:59Z" and receipt.extra["location"] == "yurtdisi"
    assert "KVKK" in receipt.message and "yurt dışı" in receipt.message
    assert receipt.extra["key"] == f"{VKN}/2023/{VKN}-202311-0002.zip"  # no prefix


def test_the_lock_is_real_delete_and_shortening_refused_by_the_server(ceph_s3, target, bucket, tmp_path):
    pkg = make_package(tmp_path)
    vid = target.send(pkg, "").reference
    raw = ceph_s3.client()  # the same access key the product uses: as an attacker with its credentials
    k = object_key()
    assert refused(raw.delete_object, Bucket=bucket, Key=k, VersionId=vid) == "AccessDenied"
    assert refused(raw.delete_object, Bucket=bucket, Key=k, VersionId=vid, BypassGovernanceRetention=True) \
        == "AccessDenied"
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": datetime(2030, 1, 1, tzinfo=timezone.utc)}
    assert refused(raw.put_object_retention, Bucket=bucket, Key=k, VersionId=vid, Retention=shorter) == "AccessDenied"
    weaker = {"Mode": "GOVERNANCE", "RetainUntilDate": UNTIL_2034}
    assert refused(raw.put_object_retention, Bucket=bucket, Key=k, VersionId=vid, Retention=weaker) == "AccessDenied"
    assert target.query(KEY).state == STORED
    assert target.fetch(KEY, tmp_path / "x.zip").read_bytes() == pkg.path.read_bytes()


def test_a_delete_marker_or_a_later_version_does_not_hide_the_locked_copy(ceph_s3, target, bucket, tmp_path):
    pkg = make_package(tmp_path)
    vid = target.send(pkg, "").reference
    raw = ceph_s3.client()
    raw.delete_object(Bucket=bucket, Key=object_key())  # allowed by S3: only a delete marker
    hidden = target.query(KEY)
    assert hidden.state == STORED and hidden.reference == vid and "silme işaretiyle" in hidden.message
    assert target.fetch(KEY, tmp_path / "a.zip").read_bytes() == pkg.path.read_bytes()
    # ransomware with the key writes garbage over it, with a sha256 of its own choosing
    raw.put_object(Bucket=bucket, Key=object_key(), Body=b"sifreli", Metadata={"sha256": "0" * 64})
    status = target.query(KEY)
    assert status.state == STORED and status.reference == vid and status.sha256 == pkg.sha256
    assert "1 başka sürüm" in status.message
    assert target.fetch(KEY, tmp_path / "b.zip").read_bytes() == pkg.path.read_bytes()
    assert target.send(pkg, "").reference == vid


def test_a_stored_month_with_other_bytes_is_refused_not_overwritten(target, tmp_path):
    first = make_package(tmp_path)
    target.send(first, "")
    with pytest.raises(RejectedError) as err:
        target.send(make_package(tmp_path, text="başka"), "")
    text = err.value.message
    assert "farklı bir paket" in text and "üzerine yazılmadı" in text and "yeni bir sürüm" in text
    assert "Ocak 2024" in text
    assert len(versions(target.client, target.settings.bucket, object_key())) == 1
    assert target.query(KEY).sha256 == first.sha256


def test_above_the_single_put_limit_multipart_then_retention_then_read_back(ceph_s3, target, bucket, tmp_path):
    target.single_put_limit, target.min_part = 1 << 20, 5 << 20  # RGW ignores lock headers on multipart
    pkg = make_package(tmp_path, size=11 << 20)
    receipt = target.send(pkg, "")
    assert receipt.state == STORED and "kilidi ayrıca kuruldu" in receipt.message, receipt.message
    raw = ceph_s3.client()
    ret = raw.get_object_retention(Bucket=bucket, Key=object_key(), VersionId=receipt.reference)["Retention"]
    assert ret["Mode"] == "COMPLIANCE" and ret["RetainUntilDate"].astimezone(timezone.utc) == UNTIL_2034
    assert raw.head_object(Bucket=bucket, Key=object_key(), VersionId=receipt.reference)["ETag"].endswith('-3"')
    assert refused(raw.delete_object, Bucket=bucket, Key=object_key(), VersionId=receipt.reference) == "AccessDenied"
    assert target.fetch(KEY, tmp_path / "m.zip").read_bytes() == pkg.path.read_bytes()


def test_an_unlocked_copy_is_not_stored_until_its_lock_is_set(ceph_s3, target, bucket, tmp_path):
    pkg = make_package(tmp_path)
    raw = ceph_s3.client()  # e.g. a multipart upload whose retention call never happened
    raw.put_object(Bucket=bucket, Key=object_key(), Body=pkg.path.read_bytes(), Metadata={"sha256": pkg.sha256})
    status = target.query(KEY)
    assert status.state == REJECTED and status.sha256 == pkg.sha256 and "kilidi yetersiz" in status.message
    fixed = target.send(pkg, "")
    assert fixed.state == STORED and fixed.extra["retain_until"] == "2034-12-31T23:59:59Z"
    assert target.query(KEY).state == STORED


class _IgnoresLocks:
    """A store that takes lock headers and put_object_retention and keeps no lock (simulated over RGW)."""

    def __init__(self, client):
        self._c = client

    def __getattr__(self, name):
        return getattr(self._c, name)

    def put_object(self, **kw):
        kw.pop("ObjectLockMode", None), kw.pop("ObjectLockRetainUntilDate", None)
        return self._c.put_object(**kw)

    def put_object_retention(self, **kw):
        return {}


def test_a_store_that_ignores_the_lock_never_gives_stored(target, tmp_path):
    target.client = _IgnoresLocks(target.client)
    receipt = target.send(make_package(tmp_path), "")
    assert receipt.state == REJECTED and receipt.extra["retain_until"] == ""
    assert "Yedeklendi sayılmadı" in receipt.message and "kilit yok" in receipt.message
    assert target.query(KEY).state == REJECTED


def test_a_period_whose_retention_has_ended_is_refused(target, tmp_path):
    old = MonthKey(VKN, "0000", "2010-05")
    with pytest.raises(RejectedError) as err:
        target.send(make_package(tmp_path, old), "")
    assert "31.12.2020" in err.value.message and "dolmuş" in err.value.message


def test_cancel_is_not_possible_while_locked(target):
    with pytest.raises(NotSupported) as err:
        target.cancel(KEY)
    assert "silinemez" in err.value.message


# ---- configuration and credentials ------------------------------------------------------------------

def test_a_bucket_without_object_lock_is_a_configuration_error(ceph_s3, tmp_path):
    plain = ceph_s3.bucket(lock=False)
    with open_s3(ceph_s3.address(plain)) as t:
        with pytest.raises(ConfigurationError) as err:
            t.send(make_package(tmp_path), "")
        assert "Object Lock" in err.value.message and plain in err.value.message
        assert "WORM değil" in err.value.message
        with pytest.raises(ConfigurationError):
            t.query(KEY)
        worm, detail = probe(t)
    assert worm is False and "WORM değil" in detail
    assert not ceph_s3.client().list_objects_v2(Bucket=plain).get("Contents")  # nothing written


def test_a_missing_bucket_is_a_configuration_error(ceph_s3):
    with open_s3(ceph_s3.address("yok-boyle-bir-kova")) as t, pytest.raises(ConfigurationError) as err:
        t.query(KEY)
    assert "yok-boyle-bir-kova" in err.value.message and "bulunamadı" in err.value.message


def test_wrong_secret_is_a_credentials_error_without_the_secret(ceph_s3, bucket, tmp_path):
    wrong = "yanlis-gizli-anahtar-42"
    with open_s3(ceph_s3.address(bucket), secret=wrong) as t:
        for call in (lambda: t.query(KEY), lambda: t.send(make_package(tmp_path), ""),
                     lambda: t.fetch(KEY, tmp_path / "x.zip")):
            with pytest.raises(CredentialsError) as err:
                call()
            assert wrong not in err.value.message and wrong not in repr(t)
            assert "TESTKEY" in err.value.message
    with open_s3(ceph_s3.address(bucket), user="BASKAKEY") as t, pytest.raises(CredentialsError):
        t.query(KEY)
    assert not (tmp_path / "x.zip").exists()


def test_unreachable_server_and_unresolvable_name(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open_s3(f"s3://kova?endpoint=http://127.0.0.1:{port}") as t, pytest.raises(UnreachableError) as err:
        t.query(KEY)
    assert "bağlantı reddedildi" in err.value.message
    with open_s3("s3://kova?endpoint=https://s3.yok.invalid") as t, pytest.raises(UnreachableError) as err:
        t.query(KEY)
    assert "çözümlenemedi" in err.value.message


class _Canned(http.server.BaseHTTPRequestHandler):
    status, headers_out, body = 503, {}, b""

    def _answer(self):
        self.send_response(self.status)
        for k, v in self.headers_out.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.body)

    do_GET = do_HEAD = do_PUT = _answer  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, code, headers, exc, retry_after", [
    (503, "SlowDown", {"Retry-After": "7"}, TransientError, 7.0),
    (500, "InternalError", {}, TransientError, None),
    (403, "SignatureDoesNotMatch", {}, CredentialsError, None),
    (403, "AccessDenied", {}, CredentialsError, None),
    (403, "RequestTimeTooSkewed", {}, ConfigurationError, None),
    (400, "InvalidArgument", {}, RejectedError, None),
])
def test_error_mapping(status, code, headers, exc, retry_after):
    _Canned.status, _Canned.headers_out = status, headers
    _Canned.body = f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode()
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with open_s3(f"s3://kova?endpoint=http://127.0.0.1:{httpd.server_port}") as t:
            with pytest.raises(exc) as err:
                t.query(KEY)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert type(err.value) is exc
    if exc is TransientError:
        assert err.value.retry_after == retry_after and err.value.status == status
    assert "TESTSECRET" not in err.value.message


# ---- the WORM probe ----------------------------------------------------------------------------------

def test_the_probe_says_worm_on_rgw_and_receipts_carry_it(target, tmp_path):
    wrapped = Retrying(target, sleep=lambda s: None)  # as the factory hands it out
    worm, detail = probe(wrapped)
    assert worm is True and "WORM" in detail and "değiştirilemez" in detail
    assert target.send(make_package(tmp_path), "").extra["worm"] is True
    probes = [o["Key"] for o in target.client.list_objects_v2(Bucket=target.settings.bucket,
                                                               Prefix="yedek/.edefter-worm-probe/")["Contents"]]
    assert len(probes) == 1


class _Deletes:
    """A store that accepts COMPLIANCE locks and still deletes the version (simulated over RGW)."""

    def __init__(self, client):
        self._c, self.gone = client, set()

    def __getattr__(self, name):
        return getattr(self._c, name)

    def delete_object(self, **kw):
        self.gone.add(kw.get("VersionId"))
        return {}

    def head_object(self, **kw):
        if kw.get("VersionId") in self.gone:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"},
                               "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadObject")
        return self._c.head_object(**kw)


def test_the_probe_fails_on_a_store_that_deletes_locked_versions(target):
    target.client = _Deletes(target.client)
    worm, detail = probe(target)
    assert worm is False and "silinebildi" in detail and "değiştirilebilir (WORM değil)" in detail
    assert target.worm is False


def test_the_probe_fails_for_governance_the_key_can_bypass(ceph_s3, bucket):
    with open_s3(ceph_s3.address(bucket, mode="GOVERNANCE")) as t:
        worm, detail = probe(t)
    assert worm is False and "GOVERNANCE" in detail and "WORM değil" in detail
    assert "bu erişim anahtarı bile" in detail  # RGW lets the bucket owner bypass governance


# ---- memory --------------------------------------------------------------------------------------------

def test_send_and_fetch_stream_the_package(target, tmp_path):
    pkg = make_package(tmp_path, size=48 << 20)
    tracemalloc.start()
    try:
        assert target.send(pkg, "").state == STORED
        _, peak_send = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target.fetch(KEY, tmp_path / "geri.zip")
        _, peak_fetch = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_send < 12 << 20 and peak_fetch < 12 << 20, (peak_send, peak_fetch)
    assert hashlib.sha256((tmp_path / "geri.zip").read_bytes()).hexdigest() == pkg.sha256


def test_fetch_of_damaged_copy_is_an_integrity_error(ceph_s3, target, bucket, tmp_path):
    pkg = make_package(tmp_path)
    raw = ceph_s3.client()  # a copy whose recorded sha256 does not match its bytes
    raw.put_object(Bucket=bucket, Key=object_key(), Body=b"bozuk", Metadata={"sha256": pkg.sha256},
                   ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=UNTIL_2034)
    with pytest.raises(IntegrityError) as err:
        target.fetch(KEY, tmp_path / "geri" / "x.zip")
    assert "bozuk" in err.value.message
    assert not list((tmp_path / "geri").iterdir())
    with pytest.raises(RejectedError):
        target.fetch(MonthKey(VKN, "0000", "2024-02"), tmp_path / "geri" / "y.zip")


# ---- the address ---------------------------------------------------------------------------------------

def test_registered_kind():
    spec = registry.get("S3")
    assert spec.kind == "s3" and spec.label == "S3 uyumlu nesne depolama (Object Lock)" and spec.needs_password
    assert "s3://" in spec.address_help and "retention" in spec.address_help and "location" in spec.address_help


def test_address_defaults_and_full_form():
    aws = parse_address("s3://e-defter-yedek")
    assert (aws.bucket, aws.prefix, aws.endpoint, aws.region) == ("e-defter-yedek", "", "", "")
    assert (aws.retention_years, aws.mode, aws.location) == (10, "COMPLIANCE", "yurtdisi")  # AWS: abroad
    full = parse_address(" S3://kova.tr/Muhasebe/e-Defter/?endpoint=https://s3.firma.com.tr:8443/&region=tr-ist-1"
                         "&retention=12&mode=governance&location=Türkiye ")
    assert (full.bucket, full.prefix, full.endpoint) == ("kova.tr", "Muhasebe/e-Defter", "https://s3.firma.com.tr:8443")
    assert (full.region, full.retention_years, full.mode, full.location) == ("tr-ist-1", 12, "GOVERNANCE", "TR")
    assert parse_address("s3://kova?endpoint=https://s3.firma.com.tr").location == "bilinmiyor"
    assert parse_address("s3://kova?endpoint=http://localhost:9000").endpoint == "http://localhost:9000"
    assert full.key_for(KEY) == "Muhasebe/e-Defter/4840847211/2024/4840847211-202401-0000.zip"
    assert full.retain_until("2024-01") == datetime(2036, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize("address, says", [
    ("", "Adres alanı boş"),
    ("https://s3.firma.com.tr/kova", "s3:// ile başlamalı"),
    ("s3://", "Kova (bucket) adı eksik"),
    ("s3://Kova_Buyuk", "S3 kurallarına uymuyor"),
    ("s3://ab", "S3 kurallarına uymuyor"),
    ("s3://kova/önek", "Önek"),
    ("s3://kova/a//b", "Önek"),
    ("s3://kova/../x", "Önek"),
    ("s3://kova?endpoint=ftp://s3.firma.com.tr", "https://"),
    ("s3://kova?endpoint=http://s3.firma.com.tr", "Şifrelenmemiş http://"),
    ("s3://kova?endpoint=https://s3.firma.com.tr:99999", "bir adres değil"),
    ("s3://kova?region=eu central", "region"),
    ("s3://kova?retention=0", "retention \"0\" geçersiz"),
    ("s3://kova?retention=100", "1 ile 30"),
    ("s3://kova?retention=on", "retention"),
    ("s3://kova?mode=LEGALHOLD", "COMPLIANCE (varsayılan) ya da GOVERNANCE"),
    ("s3://kova?location=Almanya", "TR, yurtdisi ya da bilinmiyor"),
    ("s3://kova?bolge=tr", "Bilinmeyen ayar \"bolge\""),
    ("s3://kova?mode=COMPLIANCE&mode=GOVERNANCE", "birden fazla"),
    ("s3://kova?retention", "değeri yok"),
])
def test_bad_addresses_are_turkish_configuration_errors_showing_what_was_typed(address, says):
    with pytest.raises(ConfigurationError) as err:
        S3Target(address, "TESTKEY", "TESTSECRET")
    assert says in err.value.message
    if address:
        assert f"\"{address.strip()}\"" in err.value.message and "Doğru biçim: s3://" in err.value.message


@pytest.mark.parametrize("address", [
    "s3://AKIAXXX:cok-gizli-anahtar@kova",
    "s3://kova?secret=cok-gizli-anahtar",
    "s3://kova?endpoint=https://ali:cok-gizli-anahtar@s3.firma.com.tr",
    "s3://kova?endpoint=https://s3.firma.com.tr&secret_key=cok-gizli-anahtar",
])
def test_a_secret_typed_into_the_address_is_refused_and_never_shown(address):
    with pytest.raises(ConfigurationError) as err:
        parse_address(address)
    assert "cok-gizli-anahtar" not in err.value.message and "***" in err.value.message
    assert "Kimlik Bilgisi" in err.value.message or "olmamalı" in err.value.message


def test_empty_secret_or_access_key_is_a_credentials_error():
    with pytest.raises(CredentialsError):
        registry.get("s3").open("s3://kova", "TESTKEY", None, None)
    with pytest.raises(CredentialsError):
        S3Target("s3://kova", "", "x")


def test_no_retries_inside_the_target_and_no_secret_in_repr():
    with S3Target("s3://kova?endpoint=http://127.0.0.1:1", "TESTKEY", "cok-gizli") as t:
        assert t.client.meta.config.retries["total_max_attempts"] == 1  # targets.retry retries, once
        assert "cok-gizli" not in repr(t) and "TESTKEY" in repr(t)
