"""The storage server never deletes on its own (issue 8): a lost index is rebuilt from the packages,
unknown files go to quarantine, and deletion is only the logged administrator's command.

Real server on 127.0.0.1 (in this process and in a fresh child process), real files, real SQLite."""

from __future__ import annotations

from tests.conftest import copy_server_data

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from edefter_helper.engine.model import MonthKey
from edefter_helper.server import add_user, start_in_subprocess, start_in_thread
from edefter_helper.server.testing import build_package
from tests.test_server import ALI, ALI_PW, VKN_A, zip_bytes

JAN, FEB, BRANCH = (MonthKey(VKN_A, "0000", "2024-01"), MonthKey(VKN_A, "0000", "2024-02"),
                    MonthKey(VKN_A, "0001", "2024-01"))
MONTHS = (JAN, FEB, BRANCH)


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[MonthKey, tuple[Path, str]]:
    """Three engine-valid month packages (two periods, one branch), built once."""
    from edefter_helper.samples import write_month

    d = tmp_path_factory.mktemp("months")
    out = {}
    for seed, key in enumerate(MONTHS, start=1):
        files = write_month(d / f"src{seed}", key.vkn, key.period, seed=seed,
                            branch=None if key.branch == "0000" else key.branch)
        out[key] = build_package(files, key, d / f"{seed}-{key.package_name}")
    return out


@pytest.fixture(scope="module")
def users_template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("users") / "server"
    add_user(d, "ali", ALI_PW, [VKN_A])
    return d


@pytest.fixture
def data(tmp_path, users_template) -> Path:
    return Path(copy_server_data(users_template, tmp_path / "server"))


def url(srv, key: MonthKey, suffix="") -> str:
    return f"{srv.url}/v1/months/{key.vkn}/{key.branch}/{key.period}{suffix}"


def send(srv, key: MonthKey, path: Path, sha: str) -> requests.Response:
    return requests.put(url(srv, key), data=path.read_bytes(), auth=ALI, timeout=60,
                        headers={"X-Content-SHA256": sha})


def status(srv, key: MonthKey) -> dict:
    return requests.get(url(srv, key), auth=ALI, timeout=30).json()


def wait_settled(srv, key: MonthKey, timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while (st := status(srv, key))["state"] == "accepted":
        assert time.monotonic() < deadline, st
        time.sleep(0.1)
    return st


def store_all(data: Path, packages) -> dict[MonthKey, str]:
    """Send every month to a fresh server; returns the receipts."""
    receipts = {}
    with start_in_thread(data) as srv:
        for key, (path, sha) in packages.items():
            assert send(srv, key, path, sha).status_code == 202
        assert srv.wait_idle(60)
        for key, (_, sha) in packages.items():
            st = status(srv, key)
            assert st["state"] == "stored", st
            receipts[key] = st["receipt"]
    return receipts


def drop_index(data: Path) -> None:
    for f in data.glob("store.sqlite3*"):
        f.unlink()


def contents(data: Path, *trees: str) -> Counter:
    """Multiset of the sha256s of every file under the given trees: moving keeps it, deleting does not."""
    out = Counter()
    for tree in trees:
        for p in (data / tree).rglob("*"):
            if p.is_file():
                out[hashlib.sha256(p.read_bytes()).hexdigest()] += 1
    return out


def admin_log(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "admin.log").read_text(encoding="utf-8").splitlines()]


def quarantined(data: Path) -> dict[str, Path]:
    """original relative path -> where it is now, from admin.log."""
    return {e["path"]: data / e["to"] for e in admin_log(data) if e["event"] == "quarantine"}


# ---- a lost index ----------------------------------------------------------------------------------

def test_database_deleted_restart_keeps_and_serves_every_package(data, packages):
    receipts = store_all(data, packages)
    # things that are not packages of ours, left among them
    (data / "packages" / "notlar.txt").write_text("kişisel not", encoding="utf-8")
    half = data / "packages" / VKN_A / "0000" / "2024-03" / "yarim.zip"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"PK\x03\x04 yarim kalmis")
    foreign = data / "packages" / VKN_A / "0000" / "2024-04" / "baska.zip"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(zip_bytes({"notlar.txt": b"x"}))  # a zip, but its members are no e-Defter month
    (data / "records" / "cop.json").write_text("{}", encoding="utf-8")
    before = contents(data, "packages", "records")

    drop_index(data)
    with start_in_subprocess(data) as srv:  # a fresh process, as after a restore or a lost disk
        for key, (path, sha) in packages.items():
            st = status(srv, key)
            assert st["state"] == "stored" and st["sha256"] == sha, st
            assert st["receipt"] == receipts[key]  # the receipt the client holds still names it
            back = requests.get(url(srv, key, "/package"), auth=ALI, timeout=60)
            assert back.status_code == 200 and back.content == path.read_bytes()
            assert back.headers["X-Receipt"] == receipts[key]
        listed = requests.get(f"{srv.url}/v1/months", auth=ALI, timeout=30).json()["months"]
        assert {(m["vkn"], m["branch"], m["period"], m["state"]) for m in listed} == {
            (k.vkn, k.branch, k.period, "stored") for k in MONTHS}
        # a stored month is still stored once: a different package for it is refused
        other = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})
        resp = requests.put(url(srv, JAN), data=other, auth=ALI, timeout=30,
                            headers={"X-Content-SHA256": hashlib.sha256(other).hexdigest()})
        assert resp.status_code == 409

    # nothing was deleted: every byte is in packages/, records/ or quarantine/
    assert contents(data, "packages", "records", "quarantine") == before
    moved = quarantined(data)
    for rel in ("packages/notlar.txt", f"packages/{VKN_A}/0000/2024-03/yarim.zip",
                f"packages/{VKN_A}/0000/2024-04/baska.zip", "records/cop.json"):
        assert rel in moved and moved[rel].is_file(), rel
        assert not (data / rel).exists()


def test_old_archive_without_records_is_reindexed_from_each_manifest(data, packages):
    store_all(data, packages)
    drop_index(data)
    shutil.rmtree(data / "records")  # an archive from before records/, or copied without them
    # and one package left in a wrong folder (say, restored by hand): its manifest says where it belongs
    feb_sha = packages[FEB][1]
    stray = data / "packages" / "geri-yukleme" / "subat.zip"
    stray.parent.mkdir(parents=True)
    os.replace(data / "packages" / VKN_A / "0000" / "2024-02" / f"{feb_sha}.zip", stray)

    with start_in_thread(data) as srv:
        for key, (path, sha) in packages.items():
            st = status(srv, key)
            # stored packages are read-only on disk: that is the evidence without a record
            assert st["state"] == "stored" and st["sha256"] == sha, st
            assert requests.get(url(srv, key, "/package"), auth=ALI, timeout=60).content == path.read_bytes()
    assert (data / "packages" / VKN_A / "0000" / "2024-02" / f"{feb_sha}.zip").is_file()
    assert not stray.exists()
    assert any(e["event"] == "move" for e in admin_log(data))
    # the rebuilt index wrote the records, so the next rebuild keeps these receipts
    assert len(list((data / "records").rglob("*.json"))) == 3


def test_unchecked_package_is_checked_after_the_rebuild(data, packages):
    path, sha = packages[JAN]
    with start_in_thread(data, autoverify=False) as srv:  # stopped before its check ran
        assert send(srv, JAN, path, sha).status_code == 202
        receipt = status(srv, JAN)["receipt"]
    drop_index(data)
    with start_in_thread(data) as srv:
        st = wait_settled(srv, JAN)
        assert st["state"] == "stored" and st["receipt"] == receipt


def test_rebuilt_package_that_fails_its_check_is_quarantined_not_deleted(data, tmp_path):
    from edefter_helper.samples import write_month

    a, b = tmp_path / "a", tmp_path / "b"
    key = MonthKey(VKN_A, "0000", "2024-05")
    files_a, files_b = write_month(a, VKN_A, key.period, seed=1), write_month(b, VKN_A, key.period, seed=2)
    mixed = [f for f in files_a if "-Y-" in f.name] + [f for f in files_b if "-Y-" not in f.name]
    path, sha = build_package(mixed, key, tmp_path / "mixed.zip")  # well-formed, but berats do not match
    dest = data / "packages" / VKN_A / "0000" / key.period / f"{sha}.zip"
    dest.parent.mkdir(parents=True)
    shutil.copyfile(path, dest)
    with start_in_thread(data) as srv:
        st = wait_settled(srv, key)
        assert st["state"] == "rejected" and st["message"]
    assert not dest.exists()
    where = quarantined(data)[dest.relative_to(data).as_posix()]
    assert where.read_bytes() == path.read_bytes()


def test_file_changed_at_rest_is_not_served_after_a_rebuild(data, packages):
    store_all(data, packages)
    path, sha = packages[JAN]
    kept = data / "packages" / VKN_A / "0000" / "2024-01" / f"{sha}.zip"
    os.chmod(kept, stat.S_IREAD | stat.S_IWRITE)
    raw = bytearray(kept.read_bytes())
    raw[-30] ^= 0x01  # one bit, in the zip's trailer
    kept.write_bytes(bytes(raw))
    drop_index(data)
    with start_in_thread(data) as srv:
        assert status(srv, JAN)["state"] == "missing"
        assert status(srv, FEB)["state"] == "stored"
    assert quarantined(data)[kept.relative_to(data).as_posix()].read_bytes() == bytes(raw)


def test_stale_wal_of_a_deleted_database_is_set_aside(data, packages):
    store_all(data, {JAN: packages[JAN]})
    (data / "store.sqlite3").unlink()  # the database only: its -wal/-shm stay behind
    leftovers = [p.name for p in data.glob("store.sqlite3-*")]
    with start_in_thread(data) as srv:
        assert status(srv, JAN)["state"] == "stored"
    moved = quarantined(data)
    assert all(name in moved and moved[name].exists() for name in leftovers)


def test_users_and_rows_of_a_first_version_database_carry_over(tmp_path, packages):
    """store.sqlite3 as the first version wrote it (users inside, a trigger refusing every deletion)."""
    data = tmp_path / "server"
    (data / "packages").mkdir(parents=True)
    from werkzeug.security import generate_password_hash

    path, sha = packages[JAN]
    rel = f"packages/{VKN_A}/0000/2024-01/{sha}.zip"
    (data / rel).parent.mkdir(parents=True)
    shutil.copyfile(path, data / rel)
    os.chmod(data / rel, stat.S_IREAD)
    with sqlite3.connect(data / "store.sqlite3") as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO users VALUES ('ali', ?, '2024-01-01T00:00:00+00:00')",
                   (generate_password_hash(ALI_PW),))
        db.execute("INSERT INTO user_vkns VALUES ('ali', ?)", (VKN_A,))
        db.execute("INSERT INTO packages(receipt, vkn, branch, period, sha256, size, state, user, path, received_at,"
                   " stored_at) VALUES ('EDY-ESKI', ?, '0000', '2024-01', ?, ?, 'stored', 'ali', ?, 'x', 'y')",
                   (VKN_A, sha, path.stat().st_size, rel))
    db.close()
    with start_in_thread(data) as srv:
        st = status(srv, JAN)
        assert st["state"] == "stored" and st["receipt"] == "EDY-ESKI"
    with sqlite3.connect(data / "store.sqlite3") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "users" not in tables  # moved to users.sqlite3
    # and the administrator's deletion works on the migrated database
    from edefter_helper.server.store import Store

    Store(data).admin_delete(JAN, reason="deneme", operator="test")
    assert not (data / rel).exists()


OLD_SCHEMA = """
CREATE TABLE users (name TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE user_vkns (name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, vkn TEXT NOT NULL,
    PRIMARY KEY (name, vkn));
CREATE TABLE packages (id INTEGER PRIMARY KEY, receipt TEXT NOT NULL UNIQUE, vkn TEXT NOT NULL,
    branch TEXT NOT NULL, period TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('accepted', 'stored', 'rejected')), message TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '', user TEXT NOT NULL, path TEXT NOT NULL, received_at TEXT NOT NULL,
    stored_at TEXT);
CREATE UNIQUE INDEX one_live_package ON packages (vkn, branch, period) WHERE state IN ('accepted', 'stored');
CREATE TRIGGER keep_stored_rows BEFORE DELETE ON packages WHEN OLD.state = 'stored'
    BEGIN SELECT RAISE(ABORT, 'stored packages are never deleted'); END;
CREATE TRIGGER keep_stored_state BEFORE UPDATE OF state, sha256, path ON packages WHEN OLD.state = 'stored'
    BEGIN SELECT RAISE(ABORT, 'stored packages are never changed'); END;
"""


# ---- the commands ----------------------------------------------------------------------------------

def test_reindex_command_rebuilds_the_index_without_a_server(data, packages, edefter):
    receipts = store_all(data, packages)
    drop_index(data)
    (data / "packages" / "cop.bin").write_bytes(b"\0" * 10)
    proc = edefter("server", "reindex", "--data", data)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 1: something was set aside
    assert "Traceback" not in proc.stderr
    assert "3 paket dizine alındı, 1 dosya karantinaya alındı" in proc.stdout
    assert "Hiçbir dosya silinmedi" in proc.stdout
    with sqlite3.connect(data / "store.sqlite3") as db:
        rows = {(r[0], r[1], r[2]): (r[3], r[4]) for r in db.execute(
            "SELECT vkn, branch, period, state, receipt FROM packages")}
    db.close()
    assert rows == {(k.vkn, k.branch, k.period): ("stored", receipts[k]) for k in MONTHS}
    again = edefter("server", "reindex", "--data", data, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["indexed"] == []  # nothing left to do


def test_delete_is_an_explicit_logged_admin_command(data, packages, edefter):
    receipts = store_all(data, packages)
    path, sha = packages[JAN]
    kept = data / "packages" / VKN_A / "0000" / "2024-01" / f"{sha}.zip"
    record = data / "records" / VKN_A / "0000" / "2024-01" / f"{sha}.json"
    saved = data.parent / "saved"
    saved.mkdir()
    shutil.copy2(kept, saved / kept.name)  # for the crash below: the same file, its own time
    shutil.copy2(record, saved / record.name)

    proc = edefter("server", "delete", "--data", data, VKN_A, "2024-01")  # no confirmation: shows, keeps
    assert proc.returncode == 2 and "--yes" in proc.stderr and receipts[JAN] in proc.stderr
    assert kept.is_file()
    proc = edefter("server", "delete", "--data", data, VKN_A, "2024-13", "--yes")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = edefter("server", "delete", "--data", data, VKN_A, "2024-01", "--yes", "--reason", "GİB iptali")
    assert proc.returncode == 0, proc.stderr
    assert not kept.exists() and not record.exists()
    entry = [e for e in admin_log(data) if e["event"] == "delete"][-1]
    assert entry["receipt"] == receipts[JAN] and entry["reason"] == "GİB iptali" and entry["sha256"] == sha
    assert entry["operator"]
    with sqlite3.connect(data / "store.sqlite3") as db:
        assert db.execute("SELECT receipt, reason FROM deletions").fetchall() == [(receipts[JAN], "GİB iptali")]
        with pytest.raises(sqlite3.IntegrityError):  # the deletion log itself cannot be edited away
            db.execute("DELETE FROM deletions")
    db.close()
    proc = edefter("server", "delete", "--data", data, VKN_A, "2024-01", "--yes")
    assert proc.returncode == 1 and "hiçbir şey silinmedi" in proc.stderr

    with start_in_thread(data) as srv:
        assert status(srv, JAN)["state"] == "missing"
        assert status(srv, FEB)["state"] == "stored"
        assert requests.delete(url(srv, FEB), auth=ALI, timeout=10).status_code == 405  # not over HTTP

    # a crash between the logged deletion and the unlink leaves the file; even with the index lost
    # too, the next start does not serve it again (admin.log remembers) and does not delete it either
    for item, dest in ((saved / kept.name, kept), (saved / record.name, record)):
        shutil.copy2(item, dest)
    drop_index(data)
    with start_in_thread(data) as srv:
        assert status(srv, JAN)["state"] == "missing"
        assert status(srv, FEB)["state"] == "stored"
    assert quarantined(data)[kept.relative_to(data).as_posix()].read_bytes() == path.read_bytes()
    # the same without its record (an older archive): the file is older than the deletion
    os.remove(quarantined(data)[kept.relative_to(data).as_posix()])
    shutil.copy2(saved / kept.name, kept)
    drop_index(data)
    with start_in_thread(data) as srv:
        assert status(srv, JAN)["state"] == "missing"
    assert not kept.exists()


def test_start_up_never_deletes_a_package_file(data, packages):
    """The first version unlinked every package file its database did not list, at every start."""
    store_all(data, {JAN: packages[JAN]})
    before = contents(data, "packages")
    for _ in range(2):
        drop_index(data)
        with start_in_thread(data) as srv:
            assert status(srv, JAN)["state"] == "stored"
    assert contents(data, "packages") == before


def test_a_package_file_lost_behind_the_servers_back_is_not_reported_stored(data, packages, caplog):
    receipts = store_all(data, packages)
    path, sha = packages[JAN]
    kept = data / "packages" / VKN_A / "0000" / "2024-01" / f"{sha}.zip"
    kept.unlink()
    with start_in_thread(data) as srv:
        st = status(srv, JAN)
        assert st["state"] == "missing" and receipts[JAN] in st["message"]  # not a false "stored"
        listed = {m["period"] + m["branch"]: m["state"]
                  for m in requests.get(f"{srv.url}/v1/months", auth=ALI, timeout=30).json()["months"]}
        assert listed == {"2024-010000": "missing", "2024-020000": "stored", "2024-010001": "stored"}
        gone = requests.get(url(srv, JAN, "/package"), auth=ALI, timeout=30)
        assert gone.status_code == 404 and gone.json()["error"] == "not_stored"
        other = zip_bytes({f"{VKN_A}-202401-Y-000000.xml": b"<x/>"})  # still one package per month
        assert requests.put(url(srv, JAN), data=other, auth=ALI, timeout=30,
                            headers={"X-Content-SHA256": hashlib.sha256(other).hexdigest()}).status_code == 409
        again = send(srv, JAN, path, sha)  # the same bytes put the lost copy back, under its receipt
        assert again.status_code == 200 and again.json()["receipt"] == receipts[JAN]
        assert status(srv, JAN)["state"] == "stored"
        assert requests.get(url(srv, JAN, "/package"), auth=ALI, timeout=30).content == path.read_bytes()
    assert kept.read_bytes() == path.read_bytes() and not kept.stat().st_mode & stat.S_IWUSR
    assert [e["receipt"] for e in admin_log(data) if e["event"] == "restore-file"] == [receipts[JAN]]
    assert "Traceback" not in caplog.text
