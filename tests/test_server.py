"""The storage server over real HTTP on 127.0.0.1: waitress, SQLite and files in tmp_path."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from edefter_helper.engine.model import MonthKey
from edefter_helper.server import add_user, start_in_subprocess, start_in_thread
from edefter_helper.server.checks import FORMAT, Limits
from edefter_helper.server.testing import build_package, sha256_of

VKN_A, VKN_B = "1234567890", "9876543210"
KEY = MonthKey(VKN_A, "0000", "2024-01")
ALI_PW, AYSE_PW = "Ali-parola-1", "Ayşe-parola-ğ2"
# Basic auth as UTF-8 bytes (requests would encode str as latin-1): Turkish passwords must work
ALI = (b"ali", ALI_PW.encode())
AYSE = (b"ayse", AYSE_PW.encode())

try:  # the engine's month checks; packages that pass them need it
    import edefter_helper.engine.verify  # noqa: F401
    HAVE_ENGINE = True
except ImportError:
    HAVE_ENGINE = False
needs_engine = pytest.mark.skipif(not HAVE_ENGINE, reason="engine.verify henüz yok")


@pytest.fixture(scope="module")
def users_template(tmp_path_factory) -> Path:
    # password hashing is slow on purpose: hash once, copy the data folder per test
    d = tmp_path_factory.mktemp("users") / "server"
    add_user(d, "ali", ALI_PW, [VKN_A])
    add_user(d, "ayse", AYSE_PW, [VKN_B])
    import gc

    gc.collect()  # close lingering SQLite connections: their WAL is checkpointed and removed now
    return d


@pytest.fixture
def data(tmp_path, users_template) -> Path:
    import shutil

    def copy(src, dst):
        try:
            return shutil.copy2(src, dst)
        except FileNotFoundError:
            if src.endswith(("-wal", "-shm")):
                return dst  # a WAL checkpointed away while copying: its content is in the database now
            raise

    return Path(shutil.copytree(users_template, tmp_path / "server", copy_function=copy))


@pytest.fixture
def server(data):
    with start_in_thread(data, max_size=8 << 20, limits=Limits(max_total_uncompressed=64 << 20)) as handle:
        yield handle


def month_url(server, key=KEY, suffix=""):
    return f"{server.url}/v1/months/{key.vkn}/{key.branch}/{key.period}{suffix}"


def put(server, body: bytes, key=KEY, auth=ALI, sha=None):
    return requests.put(month_url(server, key), data=body, auth=auth, timeout=30,
                        headers={"X-Content-SHA256": sha or hashlib.sha256(body).hexdigest()})


def state_after_checks(server, key=KEY, auth=ALI) -> dict:
    assert server.wait_idle(30)
    return requests.get(month_url(server, key), auth=auth, timeout=10).json()


def stored_files(data: Path) -> list[Path]:
    return [p for p in (data / "packages").rglob("*") if p.is_file()]


def records(data: Path) -> list[Path]:
    return [p for p in (data / "records").rglob("*") if p.is_file()]


def zip_bytes(members: dict[str, bytes], key=KEY, manifest=True, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        if manifest:
            zf.writestr("manifest.json", json.dumps({
                "format": FORMAT, "vkn": key.vkn, "branch": key.branch, "period": key.period,
                "files": [{"name": n, "size": len(c), "sha256": hashlib.sha256(c).hexdigest()}
                          for n, c in members.items()]}))
    return buf.getvalue()


def good_month(folder: Path, key=KEY, **kw) -> tuple[Path, str]:
    from edefter_helper.samples import write_month

    src = folder / "src"
    src.mkdir(parents=True, exist_ok=True)
    files = write_month(src, key.vkn, key.period, **kw)
    return build_package(files, key, folder / key.package_name)


# ---- credentials and VKN ownership --------------------------------------------------------------

def test_health_needs_no_login_and_tells_the_size_limit(server):
    body = requests.get(f"{server.url}/v1/health", timeout=10).json()
    assert body["status"] == "ok" and body["max_size"] == 8 << 20


@pytest.mark.parametrize("auth", [None, (b"ali", "yanlış".encode()), (b"kimse", b"Ali-parola-1"), (b"ali", b"")])
def test_missing_or_wrong_credentials_are_refused(server, data, auth):
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
    for resp in (requests.get(month_url(server), auth=auth, timeout=10),
                 requests.get(month_url(server, suffix="/package"), auth=auth, timeout=10),
                 put(server, body, auth=auth)):
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
        assert "Ali-parola-1" not in resp.text
    assert stored_files(data) == []


def test_user_cannot_touch_another_users_vkn(server, data):
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
    assert put(server, body).status_code == 202  # ali's own month
    # ayşe may not read, fetch or write ali's VKN
    assert requests.get(month_url(server), auth=AYSE, timeout=10).status_code == 403
    assert requests.get(month_url(server, suffix="/package"), auth=AYSE, timeout=10).status_code == 403
    assert put(server, body, auth=AYSE).status_code == 403
    listed = requests.get(f"{server.url}/v1/months", auth=AYSE, timeout=10).json()["months"]
    assert listed == []
    assert [m["vkn"] for m in requests.get(f"{server.url}/v1/months", auth=ALI, timeout=10).json()["months"]] == [VKN_A]


def test_password_is_stored_hashed(data):
    import sqlite3

    raw = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert ALI_PW.encode() not in raw and AYSE_PW.encode() not in raw
    # users live apart from the package index (store.sqlite3 can be rebuilt; users cannot)
    with sqlite3.connect(data / "users.sqlite3") as db:
        (pw_hash,) = db.execute("SELECT pw_hash FROM users WHERE name='ali'").fetchone()
    assert pw_hash.startswith(("scrypt:", "pbkdf2:"))


# ---- strict month addresses ---------------------------------------------------------------------

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _index_rows(data: Path) -> int:
    import sqlite3

    with sqlite3.connect(data / "store.sqlite3") as db:
        (n,) = db.execute("SELECT COUNT(*) FROM packages").fetchone()
    db.close()
    return n


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULL_WIDTH], ids=["arabic-indic", "full-width"])
@pytest.mark.parametrize("part", ["vkn", "branch", "period"])
def test_month_address_takes_ascii_digits_only(server, data, digits, part):
    from urllib.parse import quote

    address = {"vkn": VKN_A, "branch": "0000", "period": "2024-01"}
    address[part] = address[part].translate(digits)  # looks the same, and int() would even read it
    path = "/v1/months/" + "/".join(quote(address[k]) for k in ("vkn", "branch", "period"))
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
    answers = [
        requests.put(server.url + path, data=body, auth=ALI, timeout=30,
                     headers={"X-Content-SHA256": hashlib.sha256(body).hexdigest()}),
        requests.get(server.url + path, auth=ALI, timeout=30),
        requests.get(server.url + path + "/package", auth=ALI, timeout=30),
    ]
    for resp in answers:
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "bad_month" and "0-9" in resp.json()["message"]
    assert server.wait_idle(30)
    assert _index_rows(data) == 0 and stored_files(data) == [] and records(data) == []
    assert [p for p in (data / "packages").rglob("*")] == [] and list((data / "tmp").iterdir()) == []


def test_users_cannot_be_given_lookalike_digits(data):
    from edefter_helper.server.store import Store

    with pytest.raises(ValueError):
        Store(data).add_user("veli", "parola", [VKN_A.translate(ARABIC_INDIC)])


# ---- size limit --------------------------------------------------------------------------------

def _raw_request(url: str, head: bytes, body_parts=(), close_early=False) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body_parts:
            sock.sendall(chunk)
        if close_early:
            return b""
        sock.shutdown(socket.SHUT_WR) if not body_parts else None
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_oversize_is_refused_from_content_length_before_the_body(server, data):
    too_big = (8 << 20) + 1
    head = (f"PUT /v1/months/{VKN_A}/0000/2024-01 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {__import__('base64').b64encode(b'ali:Ali-parola-1').decode()}\r\n"
            f"X-Content-SHA256: {'0' * 64}\r\nContent-Length: {too_big}\r\nConnection: close\r\n\r\n").encode()
    answer = _raw_request(server.url, head)  # no body sent at all: refused from the header alone
    assert answer.startswith(b"HTTP/1.1 413")
    assert stored_files(data) == [] and list((data / "tmp").iterdir()) == []


def test_oversize_streamed_without_length_is_refused(server, data):
    def chunks():
        block = b"\0" * (1 << 20)
        for _ in range(10):  # 10 MiB > 8 MiB limit, chunked: no Content-Length to check first
            yield block

    try:
        resp = requests.put(month_url(server), data=chunks(), auth=ALI, timeout=30,
                            headers={"X-Content-SHA256": "0" * 64})
        assert resp.status_code == 413
    except requests.exceptions.ConnectionError:
        pass  # the server may close the connection before the client finished sending
    assert state_after_checks(server)["state"] == "missing"
    assert stored_files(data) == []


# ---- hostile zips ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, reason", [
    (f"../{VKN_A}-202401-Y-000000.xml", "../"),
    (f"/etc/{VKN_A}-202401-Y-000000.xml", "mutlak"),
    (f"C:/{VKN_A}-202401-Y-000000.xml", "mutlak"),
    (f"alt/{VKN_A}-202401-Y-000000.xml", "alt klasör"),
    ("notlar.txt", "e-Defter dosya adı değil"),
    (f"{VKN_B}-202401-Y-000000.xml", "başka bir VKN"),
    (f"{VKN_A}-202402-Y-000000.xml", "başka bir VKN ya da dönem"),
])
def test_unsafe_or_foreign_names_are_rejected(server, data, name, reason):
    resp = put(server, zip_bytes({name: b"<x/>"}))
    assert resp.status_code == 202 and resp.json()["state"] == "accepted"
    status = state_after_checks(server)
    assert status["state"] == "rejected" and reason in status["message"]
    assert stored_files(data) == []  # a rejected package is not kept
    assert not (data.parent / f"{VKN_A}-202401-Y-000000.xml").exists()


def test_decompression_bomb_is_rejected_before_extraction(server, data):
    bomb = b"\0" * (40 << 20)  # 40 MiB of zeros deflates to ~40 KiB: ratio ~1000
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": bomb})
    assert len(body) < (1 << 20)
    assert put(server, body).status_code == 202
    status = state_after_checks(server)
    assert status["state"] == "rejected" and "sıkıştırma bombası" in status["message"]
    assert list((data / "tmp").iterdir()) == []


def test_total_uncompressed_limit(server):
    # each member compresses only ~2x, but together they exceed the 64 MiB limit of this server
    import os

    # 64 KiB random per MiB: deflate's 32 KiB window cannot shrink it much, ratio ~16
    block = os.urandom(64 << 10) + b"\0" * ((1 << 20) - (64 << 10))
    members = {f"{VKN_A}-202401-Y-{i:06d}.xml": block * 18 for i in range(1, 5)}  # 4 x 18 MiB
    body = zip_bytes(members)
    assert len(body) < 8 << 20
    assert put(server, body).status_code == 202
    status = state_after_checks(server)
    assert status["state"] == "rejected" and "açılmış boyutu" in status["message"]


def test_manifest_must_match_members(server):
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"}, manifest=False)
    assert put(server, body).status_code == 202
    assert "manifest.json yok" in state_after_checks(server)["message"]
    buf = io.BytesIO(zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"}))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(f"{VKN_A}-202401-K-000000.xml", b"<y/>")  # not in the manifest
    assert put(server, buf.getvalue()).status_code == 202
    assert "manifest.json'da olmayan" in state_after_checks(server)["message"]


def test_corrupt_zip_is_rejected(server):
    body = bytearray(zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>" * 1000}, compression=zipfile.ZIP_STORED))
    pos = body.find(b"<x/><x/>")
    body[pos + 100] ^= 0xFF  # flip a byte inside the member: CRC must catch it
    assert put(server, bytes(body)).status_code == 202
    status = state_after_checks(server)
    assert status["state"] == "rejected" and "bozuk" in status["message"]


def test_not_a_zip_is_rejected(server):
    assert put(server, b"bu bir zip degil").status_code == 202
    assert "zip" in state_after_checks(server)["message"]


# ---- sha256, idempotency, conflicts ------------------------------------------------------------

def test_declared_sha256_must_match_the_bytes(server, data):
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
    resp = put(server, body, sha="a" * 64)
    assert resp.status_code == 422 and "SHA-256" in resp.json()["message"]
    assert put(server, body, sha="kisa").status_code == 400
    assert state_after_checks(server)["state"] == "missing"
    assert stored_files(data) == [] and list((data / "tmp").iterdir()) == []


def test_rejected_package_does_not_block_a_new_one(server):
    first = zip_bytes({"x.txt": b"1"})
    assert put(server, first).status_code == 202
    assert state_after_checks(server)["state"] == "rejected"
    second = zip_bytes({"y.txt": b"2"})
    resp = put(server, second)
    assert resp.status_code == 202 and resp.json()["sha256"] == hashlib.sha256(second).hexdigest()


def test_same_sha_same_receipt_different_sha_conflict(data):
    # verification held back so the month stays 'accepted' while we resend
    with start_in_thread(data, autoverify=False) as srv:
        body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
        first = put(srv, body)
        again = put(srv, body)
        assert first.status_code == again.status_code == 202
        assert again.json()["receipt"] == first.json()["receipt"]
        other = put(srv, zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<z/>"}))
        assert other.status_code == 409
        assert other.json()["receipt"] == first.json()["receipt"]
        assert "yalnızca bir kez" in other.json()["message"]
        assert len(stored_files(data)) == 1


def test_cut_upload_leaves_nothing(server, data):
    body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>" * 50000})
    head = (f"PUT /v1/months/{VKN_A}/0000/2024-01 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {__import__('base64').b64encode(b'ali:Ali-parola-1').decode()}\r\n"
            f"X-Content-SHA256: {hashlib.sha256(body).hexdigest()}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    _raw_request(server.url, head, [body[: len(body) // 2]], close_early=True)
    time.sleep(0.3)
    assert state_after_checks(server)["state"] == "missing"
    assert stored_files(data) == [] and list((data / "tmp").iterdir()) == []
    # and the whole package afterwards is taken normally
    assert put(server, body).status_code == 202


def test_no_deletion(server):
    assert requests.delete(month_url(server), auth=ALI, timeout=10).status_code == 405
    assert requests.delete(month_url(server, suffix="/package"), auth=ALI, timeout=10).status_code == 405


def test_stored_rows_cannot_be_deleted_even_in_sqlite(data):
    import sqlite3

    from edefter_helper.server.store import Store

    store = Store(data)
    part = store.new_upload_file()
    part.write_bytes(b"abc")
    rec, _ = store.commit_upload(KEY, part, hashlib.sha256(b"abc").hexdigest(), 3, "ali", "")
    store.mark_stored(rec.receipt)
    with sqlite3.connect(data / "store.sqlite3") as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM packages WHERE receipt = ?", (rec.receipt,))
    store.mark_rejected(rec.receipt, "x")  # no effect on a stored package
    assert store.month(KEY).state == "stored" and rec.path.read_bytes() == b"abc"


# ---- the real thing: an engine-valid month ----------------------------------------------------

@needs_engine
def test_valid_month_is_stored_and_comes_back_byte_for_byte(server, data, tmp_path):
    package, sha = good_month(tmp_path)
    resp = requests.put(month_url(server), data=package.read_bytes(), auth=ALI, timeout=30,
                        headers={"X-Content-SHA256": sha, "X-Description": "Tiger%20sisteminden%20aktar%C4%B1lm%C4%B1%C5%9Ft%C4%B1r"})
    assert resp.status_code == 202
    status = state_after_checks(server)
    assert status["state"] == "stored", status["message"]
    assert status["sha256"] == sha and status["receipt"] == resp.json()["receipt"]
    # same bytes again: same receipt, 200, no second copy
    again = requests.put(month_url(server), data=package.read_bytes(), auth=ALI, timeout=30,
                         headers={"X-Content-SHA256": sha})
    assert again.status_code == 200 and again.json()["receipt"] == status["receipt"]
    assert len(stored_files(data)) == 1
    back = requests.get(month_url(server, suffix="/package"), auth=ALI, timeout=30)
    assert back.status_code == 200 and back.content == package.read_bytes()
    assert back.headers["X-Content-SHA256"] == sha


@needs_engine
def test_mismatched_berat_is_rejected_with_the_engine_reason(server, tmp_path):
    from edefter_helper.samples import write_month

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    files_a = write_month(a, VKN_A, "2024-01", seed=1)
    files_b = write_month(b, VKN_A, "2024-01", seed=2)
    # ledger from one run, berats from another: names fine, signatures do not tie together
    mixed = [f for f in files_a if "-Y-" in f.name] + [f for f in files_b if "-Y-" not in f.name]
    package, sha = build_package(mixed, KEY, tmp_path / "mixed.zip")
    assert requests.put(month_url(server), data=package.read_bytes(), auth=ALI, timeout=30,
                        headers={"X-Content-SHA256": sha}).status_code == 202
    status = state_after_checks(server)
    assert status["state"] == "rejected" and status["message"]


# ---- crash and restart -------------------------------------------------------------------------

def test_restart_recovers_after_a_hard_kill(data, tmp_path):
    if HAVE_ENGINE:
        package, sha = good_month(tmp_path)
        body = package.read_bytes()
    else:
        body = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
        sha = hashlib.sha256(body).hexdigest()
    with start_in_subprocess(data, autoverify=False) as srv:
        resp = requests.put(f"{srv.url}/v1/months/{VKN_A}/0000/2024-01", data=body, auth=ALI, timeout=30,
                            headers={"X-Content-SHA256": sha})
        assert resp.status_code == 202
        # what a crash mid-way leaves: a half upload and a renamed-but-unrecorded package
        (data / "tmp" / "upload-deadbeef.part").write_bytes(body[:100])
        orphan = data / "packages" / VKN_A / "0000" / "2024-02" / f"{'b' * 64}.zip"
        orphan.parent.mkdir(parents=True)
        orphan.write_bytes(body)
        srv.kill()
    with start_in_subprocess(data) as srv:
        url = f"{srv.url}/v1/months/{VKN_A}/0000/2024-01"
        deadline = time.monotonic() + 30
        while (status := requests.get(url, auth=ALI, timeout=10).json())["state"] == "accepted":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["receipt"] == resp.json()["receipt"]
        assert status["state"] == ("stored" if HAVE_ENGINE else "rejected")
        assert requests.get(f"{srv.url}/v1/months/{VKN_A}/0000/2024-02", auth=ALI,
                            timeout=10).json()["state"] == "missing"
    # never deleted: a file the index does not know is re-indexed or, as here (its bytes are not
    # what its name says), moved to quarantine/
    assert not orphan.exists() and list((data / "tmp").iterdir()) == []
    assert [p.read_bytes() for p in (data / "quarantine").rglob("*.zip")] == [body]
    if HAVE_ENGINE:
        assert sha256_of(data / "packages" / VKN_A / "0000" / "2024-01" / f"{sha}.zip") == sha


def test_openapi_documents_every_route(server):
    import re

    doc = (Path(__file__).parent.parent / "docs" / "openapi.yaml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^  (/v1/\S+):$", doc, re.M))
    app = server.app
    routes = {re.sub(r"<(\w+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/v1/")}
    assert documented == routes


@needs_engine
def test_an_upload_whose_record_cannot_be_written_is_still_checked_and_stored(server, data, tmp_path, monkeypatch):
    """The record beside the index (for rebuilding a lost one) is written after the row: when that
    write fails (disk full), the upload is in the index all the same, so it is answered and checked
    (not a 500 with a month left 'accepted', never checked until the server restarts); the record
    comes with the check's 'stored'."""
    from edefter_helper.server.store import Store

    real = Store._write_record
    failed = []

    def full_disk_once(self, rec):
        if not failed:
            failed.append(rec.receipt)
            raise OSError(28, "No space left on device")
        return real(self, rec)

    monkeypatch.setattr(Store, "_write_record", full_disk_once)
    package, sha = good_month(tmp_path)
    resp = put(server, package.read_bytes())
    assert resp.status_code == 202, resp.text
    assert failed == [resp.json()["receipt"]]
    status = state_after_checks(server)
    assert status["state"] == "stored" and status["receipt"] == resp.json()["receipt"]
    record = json.loads(server.store.record_path(KEY, sha).read_text(encoding="utf-8"))
    assert record["state"] == "stored" and record["receipt"] == resp.json()["receipt"]
