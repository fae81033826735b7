"""Reliability of Toplu Yedekle end to end: real sample months, a real control workbook, the real
storage server (in a child process, SIGKILLed and restarted), a fault-injecting proxy, a client
SIGKILLed at random points, and secrets that must never be written anywhere.

Everything runs on 127.0.0.1. The CLI runs as users run it (`python -m edefter_helper`), reading its
password from a test-only file keyring (tests/fakes/file_keyring.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
import requests

from edefter_helper import status as S
from edefter_helper.cli import EXIT_OK, EXIT_PROBLEMS
from edefter_helper.server import add_user, start_in_subprocess, start_in_thread
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook
from tests.fakes.fault_proxy import FAULTS, FaultProxy

REPO = Path(__file__).resolve().parents[1]
TARGET = "Yedek Sunucu"
USER = "yedekci"
KEYRING_BACKEND = "tests.fakes.file_keyring.FileKeyring"


# -- helpers ---------------------------------------------------------------------------------------

def vkns(n: int) -> list[str]:
    return [f"{4810525600 + 7 * i:010d}" for i in range(n)]


def periods(n: int, start_year: int = 2022) -> list[str]:
    return [f"{start_year + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def write_months(root: Path, firm_vkns: list[str], firm_periods: list[str]) -> set[tuple[str, str, str]]:
    from edefter_helper.samples import write_month

    keys = set()
    for i, vkn in enumerate(firm_vkns):
        for j, period in enumerate(firm_periods):
            year, month = period.split("-")
            write_month(root / f"Firma {i}" / vkn / f"01.01.{year}-31.12.{year}" / month, vkn, period,
                        company=f"Firma {i} A.Ş.", entries=5, seed=i * 100 + j)
            keys.add((vkn, "0000", period))
    return keys


def cli_env(tmp_path: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update({
        "PYTHON_KEYRING_BACKEND": KEYRING_BACKEND,
        "EDEFTER_TEST_KEYRING": str(tmp_path / "keyring" / "test-keyring.json"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        "PYTHONIOENCODING": "utf-8",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cli(env: dict, *args, input: str | None = None, timeout: float = 170) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edefter_helper", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, encoding="utf-8", input=input, timeout=timeout)


def cli_popen(env: dict, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edefter_helper", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def make_workbook(env: dict, path: Path, folder: Path, firm_vkns: list[str], address: str,
                  user: str = USER) -> None:
    done = cli(env, "workbook", "new", path, timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    book = FileBook(path)
    book.write_rows(L.FIRMS, [{"name": f"Firma {i} A.Ş.", "vkn": vkn, "branch": "", "folder": str(folder),
                               "target": TARGET, "user": user, "auto": L.YES} for i, vkn in enumerate(firm_vkns)])
    book.write_rows(L.TARGETS, [{"name": TARGET, "kind": "http", "address": address,
                                 "description": L.DEFAULT_DESCRIPTION}])
    book.save()


def plant_password(env: dict, password: str, user: str = USER) -> None:
    done = cli(env, "credentials", "set", "--target", TARGET, "--user", user, "--password-stdin",
               input=password + "\n", timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    assert password not in done.stdout + done.stderr


def journal_months(journal: Path) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(vkn, branch, period) -> (status, package_sha256), read without the application's code."""
    if not journal.exists():
        return {}
    rows = read_only_query(journal, "SELECT vkn, branch, period, status, package_sha256 FROM months")
    return {(v, b, p): (S.word(st), sha or "") for v, b, p, st, sha in rows}


def read_only_query(path: Path, sql: str, row_factory=None) -> list:
    """A query on a database another process is writing; a few tries while it is being created."""
    for attempt in range(20):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        db.row_factory = row_factory
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # e.g. the writer is still switching it to WAL
            if attempt == 19:
                raise
            time.sleep(0.1)
        finally:
            db.close()
    raise AssertionError("unreachable")


def server_rows(server_dir: Path) -> list[dict]:
    """Every package row the server holds (read-only, straight from its database)."""
    return [dict(r) for r in read_only_query(server_dir / "store.sqlite3", "SELECT * FROM packages ORDER BY id",
                                             sqlite3.Row)]


def server_stored(server_dir: Path) -> dict[tuple[str, str, str], list[str]]:
    """(vkn, branch, period) -> sha256s of the live (accepted/stored) packages and their state."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for r in server_rows(server_dir):
        if r["state"] in ("accepted", "stored"):
            out.setdefault((r["vkn"], r["branch"], r["period"]), []).append(f"{r['state']}:{r['sha256']}")
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_backed_up_is_true(journal: Path, server_dir: Path, when: str) -> int:
    """No month is Yedeklendi in the journal unless the server stores it with that sha256."""
    months = journal_months(journal)  # read first: the server only gains stored packages after
    held = server_stored(server_dir)
    done = 0
    for key, (status, sha) in months.items():
        if status == S.BACKED_UP:
            done += 1
            assert sha, f"{when}: {key} Yedeklendi without a package sha256"
            assert held.get(key) == [f"stored:{sha}"], f"{when}: {key} Yedeklendi but the server holds {held.get(key)}"
    return done


def workbook_periods(path: Path) -> dict[tuple[str, str, str], dict]:
    wb = openpyxl.load_workbook(path, keep_vba=True)  # a valid xlsx/xlsm file
    wb.vba_archive.close()  # openpyxl leaves this append-mode zip open; closed late it writes to a freed buffer
    wb.close()
    rows = FileBook(path).read_rows(L.PERIODS)
    out = {}
    for r in rows:
        key = (str(r["vkn"]), str(r["branch"] or "0000"), str(r["period"]))
        assert key not in out, f"{key} listed twice in Dönemler"
        out[key] = r
    return out


def assert_workbook_backed_up_is_true(path: Path, server_dir: Path, when: str) -> dict:
    rows = workbook_periods(path)
    held = server_stored(server_dir)
    for key, r in rows.items():
        if r["status"] == S.BACKED_UP:
            assert held.get(key) == [f"stored:{r['sha256']}"], (
                f"{when}: Dönemler shows {key} Yedeklendi but the server holds {held.get(key)}")
    return rows


def assert_everything_stored_once(keys: set, journal: Path, workbook: Path, server_dir: Path) -> None:
    months = journal_months(journal)
    assert set(months) == keys
    not_done = {k: v for k, v in months.items() if v[0] != S.BACKED_UP}
    assert not not_done, f"not Yedeklendi in the journal: {sorted(not_done.items())[:10]}"
    rows = workbook_periods(workbook)
    assert set(rows) == keys
    for key, r in rows.items():
        assert r["status"] == S.BACKED_UP, (key, r["status"], r["message"])
        assert r["sha256"] == months[key][1], key
    # the server: each month exactly once, stored, with the bytes the journal says were sent
    live: dict[tuple, list[dict]] = {}
    for r in server_rows(server_dir):
        assert r["state"] != "rejected", f"server rejected a package: {r}"
        live.setdefault((r["vkn"], r["branch"], r["period"]), []).append(r)
    assert set(live) == keys
    for key, recs in live.items():
        assert len(recs) == 1, f"{key} held {len(recs)} times: {recs}"
        assert recs[0]["state"] == "stored" and recs[0]["sha256"] == months[key][1], (key, recs[0])
        assert file_sha256(server_dir / recs[0]["path"]) == months[key][1], key
    files = [p for p in (server_dir / "packages").rglob("*") if p.is_file()]
    assert len(files) == len(keys), "package files on the server that no record names"


def server_list(url: str, password: str) -> dict[tuple[str, str, str], dict]:
    resp = requests.get(f"{url}/v1/months", auth=(USER.encode(), password.encode("utf-8")), timeout=30)
    resp.raise_for_status()
    return {(m["vkn"], m["branch"], m["period"]): m for m in resp.json()["months"]}


def wait_process(proc: subprocess.Popen, deadline: float, tick=None) -> tuple[int, str, str]:
    """Wait for a child until `deadline` (monotonic), calling tick() about every 0.3 s."""
    out: dict[str, str] = {}

    def drain(name, stream):
        out[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True)
               for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in readers:
        t.start()
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail("edefter backup did not finish in time")
            if tick is not None:
                tick()
            time.sleep(0.3)
    finally:
        if proc.poll() is None:  # a failed check or the time limit: never leave the client running
            proc.kill()
            proc.wait(10)
    for t in readers:
        t.join(10)
    return proc.returncode, out.get("out", ""), out.get("err", "")


def check_exit_code(rc: int, err: str, journal: Path, keys: set) -> None:
    assert "beklenmeyen hata" not in err, err
    assert rc in (EXIT_OK, EXIT_PROBLEMS), (rc, err)
    months = journal_months(journal)
    failed = sorted(k for k in keys if months.get(k, ("", ""))[0] == S.FAILED)
    assert (rc == EXIT_PROBLEMS) == bool(failed), f"exit code {rc}, Yedeklenemedi months: {failed[:5]}"


# -- 200 months through faults and a server crash ---------------------------------------------------

@pytest.mark.slow
def test_200_months_survive_faults_and_a_server_crash(tmp_path):
    started = time.monotonic()
    firm_vkns, firm_periods = vkns(10), periods(20)
    ledgers = tmp_path / "defterler"
    keys = write_months(ledgers, firm_vkns, firm_periods)
    assert len(keys) == 200
    print(f"months written t={time.monotonic() - started:.0f}s")

    password = "Sunucu-Parola-ğüş-1"
    server_dir = tmp_path / "sunucu"
    add_user(server_dir, USER, password, firm_vkns)
    server = start_in_subprocess(server_dir, threads=8)
    # seeded, and never more than 2 faults in a row for one request: the client's 5 attempts cannot run
    # out by chance, whatever order its threads draw in (only the crash window may fail a month in run 1)
    proxy = FaultProxy(server.url, fault_rate=0.3, seed=20240601, stall=5.0, max_consecutive=2)
    env = cli_env(tmp_path, EDEFTER_RETRY_BACKOFF=0.05, EDEFTER_HTTP_TIMEOUT=3)
    workbook, journal = tmp_path / "kontrol.xlsm", tmp_path / "gunluk.sqlite3"
    try:
        make_workbook(env, workbook, ledgers, firm_vkns, proxy.url)
        plant_password(env, password)
        backup = ("backup", "--workbook", workbook, "--all", "--parallel", 6, "--wait", 60, "--journal", journal)

        # run 1: the server is SIGKILLed once a third of the months reached it, then restarted
        crash = {"done": False, "rows_at_kill": 0, "checks": 0}

        def tick():
            nonlocal server
            assert_backed_up_is_true(journal, server_dir, "during run 1")
            crash["checks"] += 1
            if not crash["done"]:
                n = len(server_rows(server_dir))
                if n >= 60:
                    server.kill()
                    crash.update(done=True, rows_at_kill=n)
                    time.sleep(0.5)  # the client meets refused connections for a while
                    server = start_in_subprocess(server_dir, threads=8)  # same data directory
                    proxy.set_upstream(server.url)

        proc = cli_popen(env, *backup)
        rc, out, err = wait_process(proc, time.monotonic() + 900, tick)  # a hang guard, not a speed check
        assert crash["done"] and crash["rows_at_kill"] < 200, crash
        check_exit_code(rc, err, journal, keys)
        first = assert_backed_up_is_true(journal, server_dir, "after run 1")
        assert_workbook_backed_up_is_true(workbook, server_dir, "after run 1")
        assert first > 0
        print(f"run 1: rc={rc} backed up={first} crash={crash} proxy={dict(proxy.log.counts)} "
              f"t={time.monotonic() - started:.0f}s")

        if first < len(keys):  # run 2 (still through the faults) finishes the rest
            done = cli(env, *backup[:-4], "--wait", 600, *backup[-2:], timeout=900)
            check_exit_code(done.returncode, done.stderr, journal, keys)
            rc = done.returncode
            print(f"run 2: rc={rc} t={time.monotonic() - started:.0f}s")
        assert_everything_stored_once(keys, journal, workbook, server_dir)
        assert rc == EXIT_OK

        # the server's own answer agrees (asked directly, not through the proxy)
        listed = server_list(server.url, password)
        months = journal_months(journal)
        assert set(listed) == keys
        assert all(m["state"] == "stored" and m["sha256"] == months[k][1] for k, m in listed.items())
        # the faults really happened, every kind of them
        counts = proxy.log.counts
        assert all(counts[f] > 0 for f in FAULTS), counts
        assert sum(counts[f] for f in FAULTS) >= 0.15 * sum(counts.values()), counts
    finally:
        proxy.stop()
        server.stop()


# -- the client SIGKILLed at random points ----------------------------------------------------------

@pytest.mark.slow
def test_client_killed_at_random_points_never_corrupts_anything(tmp_path):
    rng = random.Random(7)
    firm_vkns, firm_periods = vkns(4), periods(5, start_year=2023)
    ledgers = tmp_path / "defterler"
    keys = write_months(ledgers, firm_vkns, firm_periods)
    password = "Kill-Test-Parola-42"
    server_dir = tmp_path / "sunucu"
    add_user(server_dir, USER, password, firm_vkns)
    env = cli_env(tmp_path, EDEFTER_RETRY_BACKOFF=0.05, EDEFTER_HTTP_TIMEOUT=5)
    workbook, journal = tmp_path / "kontrol.xlsm", tmp_path / "gunluk.sqlite3"
    with start_in_thread(server_dir) as server:
        # a little slowness (no faults) so that kills land while months are on the wire
        proxy = FaultProxy(server.url, fault_rate=0.0, latency=0.25)
        try:
            make_workbook(env, workbook, ledgers, firm_vkns, proxy.url)
            plant_password(env, password)
            backup = ("backup", "--workbook", workbook, "--all", "--parallel", 2, "--wait", 30,
                      "--journal", journal)
            kills = 0
            for _ in range(10):
                proc = cli_popen(env, *backup)
                # killed at a state, not a time: once a month is on the wire (an attempt is open),
                # after a seeded pause shorter than one month's round trips through the slow proxy
                while proc.poll() is None and not attempts_under_way(journal):
                    time.sleep(0.01)
                pause = rng.uniform(0.0, 0.5)
                end = time.monotonic() + pause
                while proc.poll() is None and time.monotonic() < end:
                    time.sleep(0.01)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                proc.wait(30)
                print(f"kill {kills} {pause:.2f}s after a month opened: journal={len(journal_months(journal))} "
                      f"server={len(server_rows(server_dir))} rc={proc.returncode}")
                proc.stdout.close()
                proc.stderr.close()
                # after every kill: the journal is sound, Yedeklendi is never a lie, the workbook opens
                assert_journal_sound(journal)
                assert_backed_up_is_true(journal, server_dir, f"after kill {kills}")
                if workbook.exists():
                    assert_workbook_backed_up_is_true(workbook, server_dir, f"after kill {kills}")
            assert kills >= 5, "the client finished before most kills"

            done = cli(env, *backup, timeout=900)
            check_exit_code(done.returncode, done.stderr, journal, keys)
            assert done.returncode == EXIT_OK, done.stdout + done.stderr
            assert_journal_sound(journal)
            db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
            try:
                open_attempts = db.execute("SELECT COUNT(*) FROM attempts WHERE outcome IS NULL").fetchone()[0]
            finally:
                db.close()
            assert open_attempts == 0
            assert server.wait_idle(30)
            assert_everything_stored_once(keys, journal, workbook, server_dir)
            # the workbook is a whole zip: every part reads back
            with zipfile.ZipFile(workbook) as zf:
                assert zf.testzip() is None
        finally:
            proxy.stop()


def attempts_under_way(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        return read_only_query(journal, "SELECT COUNT(*) FROM attempts WHERE outcome IS NULL")[0][0]
    except sqlite3.Error:
        return 0


def assert_journal_sound(journal: Path) -> None:
    if not journal.exists():
        return
    db = sqlite3.connect(str(journal), timeout=30)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


# -- secrets ---------------------------------------------------------------------------------------

def _needles(user: str, password: str) -> dict[str, bytes]:
    basic = base64.b64encode(f"{user}:{password}".encode("utf-8"))
    return {
        "utf-8": password.encode("utf-8"),
        "utf-16-le": password.encode("utf-16-le"),
        "json-escaped": json.dumps(password).strip('"').encode("ascii"),
        "basic-auth": basic,
        "ascii-core": password.split("-")[2].encode("ascii"),  # the distinctive middle alone
    }


def _files_under(folder: Path):
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            yield p


def _leaks(blob: bytes, needles: dict[str, bytes]) -> list[str]:
    return [name for name, n in needles.items() if n in blob]


def test_secrets_never_leave_the_keyring(tmp_path, _isolated_data_dir):
    password = "Gizli-Şifre-Zx7Qv93KpL-ğüİ"
    wrong = "Yanlis-Sifre-Wq48RtYb02-çö"  # a second firm's password the server refuses
    firm_vkns, firm_periods = vkns(2), periods(2, start_year=2024)
    ledgers = tmp_path / "defterler"
    write_months(ledgers, firm_vkns, firm_periods)
    server_dir = tmp_path / "sunucu"
    add_user(server_dir, USER, password, firm_vkns[:1])
    add_user(server_dir, "ikinci", "sunucudaki-baska-parola", firm_vkns[1:])
    env = cli_env(tmp_path, EDEFTER_RETRY_BACKOFF=0.05, EDEFTER_HTTP_TIMEOUT=5)
    workbook, journal = tmp_path / "kontrol.xlsm", tmp_path / "gunluk.sqlite3"
    outputs = []
    with start_in_thread(server_dir) as server:
        make_workbook(env, workbook, ledgers, firm_vkns, server.url)
        book = FileBook(workbook)
        rows = book.read_rows(L.FIRMS)
        rows[1]["user"] = "ikinci"
        book.write_rows(L.FIRMS, rows)
        book.save()
        plant_password(env, password)
        plant_password(env, wrong, user="ikinci")
        for args in (("refresh",), ("backup", "--all", "--wait", 20), ("query",), ("send",),
                     ("status", "--json")):
            extra = ("--journal", journal) if args[0] == "status" else ("--workbook", workbook, "--journal", journal)
            done = cli(env, *args, *extra, timeout=120)
            assert "beklenmeyen hata" not in done.stderr, done.stderr
            outputs.append((args[0], done))
        # a failing target too: the server is gone, every error path runs
    done = cli(env, "query", "--workbook", workbook, "--journal", journal, timeout=120)
    outputs.append(("query-offline", done))

    # the work happened: firm 1 backed up, firm 2 refused for its credentials (said once, as a warning,
    # and not stamped on its months)
    months = journal_months(journal)
    assert {k: v[0] for k, v in months.items() if k[0] == firm_vkns[0]} == {
        (firm_vkns[0], "0000", p): S.BACKED_UP for p in firm_periods}
    assert not any(v[0] == S.BACKED_UP for k, v in months.items() if k[0] == firm_vkns[1])
    backup_out = dict(outputs)["backup"].stdout
    assert backup_out.count("ikinci") == 1 and backup_out.count("şifre hatalı") == 1, backup_out

    for secret, user in ((password, USER), (wrong, "ikinci")):
        needles = _needles(user, secret)
        for name, done in outputs:
            blob = (done.stdout + done.stderr).encode("utf-8")
            assert not _leaks(blob, needles), f"'{name}' printed the password"
        with zipfile.ZipFile(workbook) as zf:
            for part in zf.namelist():
                assert not _leaks(zf.read(part), needles), f"workbook part {part} holds the password"
        assert not _leaks(workbook.read_bytes(), needles)
        for folder in (_isolated_data_dir, server_dir, tmp_path / "defterler"):
            for f in _files_under(folder):
                assert not _leaks(f.read_bytes(), needles), f"{f} holds the password"
        for f in (journal, Path(str(journal) + "-wal")):
            if f.exists():
                assert not _leaks(f.read_bytes(), needles), f"{f} holds the password"
        for f in _files_under(tmp_path):
            if "keyring" in f.parts:
                continue  # the test keyring itself is where the secret lives
            assert not _leaks(f.read_bytes(), needles), f"{f} holds the password"
