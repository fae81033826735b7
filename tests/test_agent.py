"""The background agent (`edefter agent`), on this machine: real workbook files, the real storage server on
loopback, real folders watched with watchdog, the agent started by the test (a thread, or a process for the
command line and signals). Deterministic: where time matters the agent runs on a clock the test moves
(cycles driven one by one); threads and processes are only waited for, with generous hang guards, and
assertions are on outcomes (journal, server, workbook bytes, counters), never on how long things took."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edefter_helper import actions, agent as A, credentials, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples.month import make_spec, write_spec
from edefter_helper.targets.http import HttpTarget
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN = "4810525635"
LEDGER_KINDS = {"Y", "K", "YB", "KB", "DR"}
GIB_KINDS = {"GIB-YB", "GIB-KB"}
HANG = 90  # seconds: a hang guard, never an expectation


# -- helpers ------------------------------------------------------------------------------------

@pytest.fixture
def storage(tmp_path):
    server.add_user(tmp_path / "sunucu", "ali", "pw-ğ1", [VKN])
    handle = server.start_in_thread(tmp_path / "sunucu")
    yield handle
    handle.stop()


class Clock:
    """The agent's clocks, moved by the test."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_780_000_000.0 + self.t


def wait_for(cond, what: str, timeout: float = HANG):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"hang guard ({timeout:g} s): {what}")


def workbook(tmp_path, edefter, folder: Path, address: str, kind: str = "http", auto: str = "Evet",
             name: str = "kontrol.xlsm") -> Path:
    wb = tmp_path / name
    if not wb.exists():
        proc = edefter("workbook", "new", wb)
        assert proc.returncode == 0, proc.stderr
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu Gıda A.Ş.", "vkn": VKN, "folder": str(folder), "target": "Merkez",
                               "user": "ali", "auto": auto}])
    book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": kind, "address": address}])
    book.save()
    return wb


def month_folder(root: Path, period: str) -> Path:
    return root / f"01.01.{period[:4]}-31.12.{period[:4]}" / period[5:]


def write_ledgers(root: Path, period: str, **kw) -> Path:
    folder = month_folder(root, period)
    write_spec(folder, make_spec(VKN, period, **kw), only=LEDGER_KINDS)
    return folder


def drop_gib_berats(root: Path, period: str, staging: Path, **kw) -> None:
    """GİB's approved berats arrive (downloaded elsewhere, moved in: each appears whole)."""
    tmp = staging / f"indir-{period}"
    write_spec(tmp, make_spec(VKN, period, **kw), only=GIB_KINDS)
    for f in sorted(tmp.iterdir()):
        os.replace(f, month_folder(root, period) / f.name)


def write_month(root: Path, period: str) -> None:
    write_spec(month_folder(root, period), make_spec(VKN, period))


def status_of(journal: Path, period: str):
    if not journal.exists():
        return None
    j = Journal(journal)
    try:
        st = j.status(MonthKey(VKN, "0000", period))
        return st.status if st else None
    finally:
        j.close()


def attempts(journal: Path, period: str | None = None) -> list[dict]:
    """The packages sent (or tried) for a month: the journal's send attempts."""
    if not journal.exists():
        return []
    j = Journal(journal)
    try:
        return [a for a in j.attempts(MonthKey(VKN, "0000", period) if period else None) if a["action"] == "send"]
    finally:
        j.close()


def fast_options(**kw) -> actions.Options:
    return actions.Options(retry_backoff=0.01, wait=20, poll=0.1, **kw)


def dead_address() -> str:
    with socket.socket() as s:  # an address where nobody listens
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class Running:
    """An agent started in this process (its lock taken here), looping in a thread."""

    def __init__(self, agent: A.Agent):
        self.agent = agent
        self.thread = threading.Thread(target=agent.loop, name="ajan", daemon=True)

    def __enter__(self) -> A.Agent:
        self.agent.start()
        self.thread.start()
        wait_for(lambda: self.agent.cycles >= 1, "the agent's first cycle")
        return self.agent

    def __exit__(self, *exc) -> None:
        self.agent.stop()
        self.thread.join(HANG)
        assert not self.thread.is_alive(), "the agent did not stop"


def run_module(*args, timeout: float = HANG) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "edefter_helper.agent", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", env=env, timeout=timeout)


# -- end to end, the agent in a thread ------------------------------------------------------------

def test_gib_berats_dropped_into_a_watched_folder_are_backed_up(tmp_path, edefter, storage, memory_keyring):
    root = tmp_path / "Müşteri Defterleri" / "Anadolu Gıda"
    write_ledgers(root, "2024-01")  # the accounting program wrote the month; GİB has not approved it yet
    credentials.set_password("Merkez", "ali", "pw-ğ1")
    wb = workbook(tmp_path, edefter, root, storage.url)
    before, before_stat = wb.read_bytes(), wb.stat()
    journal = tmp_path / "günlük.sqlite3"
    results, cycles = [], []
    agent = A.Agent(wb, interval=1, settle=1, journal=journal, options=fast_options(),
                    on_results=lambda s: results.append(s), on_cycle=cycles.append)
    with Running(agent):
        wait_for(lambda: agent.scans >= 3, "three rescans")
        assert results == [] and status_of(journal, "2024-01") is None  # waiting for GİB: nothing to send
        assert agent.index.groups and not agent.index.pending  # seen, and known to need nothing yet

        drop_gib_berats(root, "2024-01", tmp_path)
        wait_for(lambda: status_of(journal, "2024-01") == S.BACKED_UP, "the month to be Yedeklendi")
        (summary,) = wait_for(lambda: results, "the results hook")
        assert [(r.key.period, r.status) for r in summary.results] == [("2024-01", S.BACKED_UP)]
        assert summary.results[0].message == "Ocak 2024 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi."
        with HttpTarget(storage.url, "ali", "pw-ğ1") as target:
            held = target.query(MonthKey(VKN, "0000", "2024-01"))
        (attempt,) = attempts(journal, "2024-01")
        assert held.state == "stored" and held.sha256 == attempt["package_sha256"]

        # one agent per user and workbook: a second start says so and exits non-zero
        proc = run_module("run", "--workbook", wb, "--interval", "1", "--journal", journal)
        assert proc.returncode == A.EXIT_BUSY, proc.stderr
        assert A.ALREADY_RUNNING in proc.stderr and "Traceback" not in proc.stderr

        # status: running, since when, the last cycle and the last successful one
        seen = agent.cycles
        wait_for(lambda: agent.cycles > seen + 1, "two more cycles")
        proc = run_module("status", "--workbook", wb, "--json")
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["running"] is True and data["pid"] == os.getpid()
        assert data["started_at"] and data["last_cycle_at"] and data["last_success_at"]
        assert data["cycles"] >= seen and data["last_error"] is None
        assert data["last_backup"] == "1 dönem yedeklendi." and data["watching"] == 1
        assert agent.events > 0  # the berats were announced by the file system, not only found by a rescan
        proc = run_module("status", "--workbook", wb)
        assert proc.returncode == 0 and "Arka plan aracısı çalışıyor" in proc.stdout
        assert "son başarılı tur" in proc.stdout and "Son hata: yok" in proc.stdout
    assert all(cycles)  # every cycle went well

    proc = run_module("status", "--workbook", wb, "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["running"] is False and data["stopped_at"]
    # the workbook was only read: same bytes, same time, nothing written beside it
    assert wb.read_bytes() == before and wb.stat().st_mtime_ns == before_stat.st_mtime_ns
    assert sorted(p.name for p in wb.parent.iterdir() if p.name.startswith(".~")) == []


def test_a_target_down_for_the_whole_run_fails_each_month_once(tmp_path, edefter, memory_keyring):
    root = tmp_path / "defter"
    for period in ("2024-01", "2024-02", "2024-03"):
        write_month(root, period)
    credentials.set_password("Merkez", "ali", "pw-1")
    wb = workbook(tmp_path, edefter, root, dead_address())
    journal = tmp_path / "j.sqlite3"
    results, cycles = [], []
    agent = A.Agent(wb, interval=1, settle=1, journal=journal, options=fast_options(parallel=1),
                    on_results=results.append, on_cycle=cycles.append)  # back-off: the default 300 s
    with Running(agent):
        wait_for(lambda: results, "the first backup")
        first = agent.scans
        wait_for(lambda: agent.scans >= first + 6, "six more rescans")
        tried_before = len(attempts(journal))
        wait_for(lambda: agent.scans >= first + 8, "two more rescans")
        assert len(attempts(journal)) == tried_before  # nothing more was tried while backing off
    assert len(results) == 1  # one backup, not one per cycle
    failures: dict[str, int] = {}
    for summary in results:
        for r in summary.results:
            if r.status == S.FAILED:
                failures[r.key.period] = failures.get(r.key.period, 0) + 1
    assert failures and set(failures.values()) == {1}
    assert len(attempts(journal)) == len(failures)
    # the target's trouble: cycles are not "ok" while it fails, and status says why
    assert cycles[-1] is False
    data = A.status(wb)
    (backing_off,) = data["targets_failing"].values()
    assert "ulaşılamıyor" in backing_off["message"] and backing_off["n"] == 1
    assert "ulaşılamıyor" in data["last_error"] and data["running"] is False


# -- deterministic cycles: the agent's clock moved by the test -----------------------------------

def _agent(wb, journal, clock, **kw) -> A.Agent:
    kw.setdefault("options", fast_options())
    return A.Agent(wb, interval=60, settle=30, journal=journal, watch=False, clock=clock, wallclock=clock.wall, **kw)


def test_a_month_is_taken_by_the_second_rescan_without_file_events(tmp_path, edefter, storage, memory_keyring):
    """Network shares drop events: with no watcher at all, berats that arrive are backed up by the second
    periodic rescan after they appeared (settle ≤ interval), on the real server."""
    root = tmp_path / "defter"
    write_ledgers(root, "2024-05")
    credentials.set_password("Merkez", "ali", "pw-ğ1")
    wb = workbook(tmp_path, edefter, root, storage.url)
    journal = tmp_path / "j.sqlite3"
    clock = Clock()
    agent = _agent(wb, journal, clock)
    agent.start()
    try:
        for _ in range(3):
            assert agent.cycle(scan=True)
            clock.t += 60
        assert agent.backups == 0
        drop_gib_berats(root, "2024-05", tmp_path)
        clock.t += 10
        agent.cycle(scan=True)  # first rescan after the drop: seen, not yet settled
        assert agent.backups == 0 and status_of(journal, "2024-05") is None
        clock.t += 60
        agent.cycle(scan=True)  # second rescan: unchanged for longer than settle -> taken
        assert agent.backups == 1 and status_of(journal, "2024-05") == S.BACKED_UP
    finally:
        agent.close()


def test_files_still_being_written_are_not_taken_until_they_settle(tmp_path, edefter, storage, memory_keyring):
    root = tmp_path / "defter"
    folder = write_ledgers(root, "2024-06")
    staging = tmp_path / "indir"
    write_spec(staging, make_spec(VKN, "2024-06"), only=GIB_KINDS)
    gib = sorted(staging.iterdir())
    os.replace(gib[0], folder / gib[0].name)
    data = gib[1].read_bytes()
    growing = folder / gib[1].name
    growing.write_bytes(data[: len(data) // 2])  # the download is half-way
    credentials.set_password("Merkez", "ali", "pw-ğ1")
    wb = workbook(tmp_path, edefter, root, storage.url)
    journal = tmp_path / "j.sqlite3"
    clock = Clock()
    calls = []

    def backup(*args, **kw):
        calls.append(clock.t)
        return actions.backup(*args, **kw)

    agent = _agent(wb, journal, clock, backup=backup)
    agent.start()
    try:
        agent.cycle(scan=True)
        clock.t += 29
        agent.cycle(scan=False)
        with open(growing, "ab") as f:  # the rest arrives: same name, new size
            f.write(data[len(data) // 2:])
        clock.t += 2  # 31 s after the month was first seen, but only 2 s after its last change
        agent.cycle(scan=True)
        assert calls == []
        clock.t += 29
        agent.cycle(scan=False)
        assert calls == []
        clock.t += 2
        agent.cycle(scan=False)
        assert len(calls) == 1
    finally:
        agent.close()
    assert len(attempts(journal, "2024-06")) == 1  # one package sent, of the whole file
    assert status_of(journal, "2024-06") == S.BACKED_UP


def test_backoff_per_target_and_catch_up_when_it_returns(tmp_path, edefter, memory_keyring):
    root = tmp_path / "defter"
    for period in ("2024-01", "2024-02"):
        write_month(root, period)
    credentials.set_password("Merkez", "ali", "pw-1")
    address = dead_address()
    wb = workbook(tmp_path, edefter, root, address)
    journal = tmp_path / "j.sqlite3"
    clock = Clock()
    calls = []

    def backup(*args, **kw):
        calls.append(clock.t)
        return actions.backup(*args, **kw)

    agent = _agent(wb, journal, clock, backup=backup, backoff=300, max_backoff=1200,
                   options=fast_options(parallel=1))
    agent.start()
    try:
        start = clock.t
        for _ in range(60):  # an hour of cycles, one a minute
            agent.cycle(scan=True)
            clock.t += 60
        # tried when settled, then after 5, 10 and 20 minutes (doubling), then every 20 minutes (the cap)
        assert [round(t - start) for t in calls] == [60, 360, 960, 2160, 3360]
        assert len(attempts(journal)) == len(calls)  # one month tried each time; the other not tried
        # the server comes up at that address, hours later (sleep/resume: a long gap between cycles)
        port = int(address.rsplit(":", 1)[1])
        data = tmp_path / "sunucu"
        server.add_user(data, "ali", "pw-1", [VKN])
        with server.start_in_thread(data, port=port):
            clock.t += 5 * 3600
            full = agent.full_scans
            assert agent.cycle(scan=True)
            assert agent.full_scans == full + 1  # after the gap every file was looked at again
            assert status_of(journal, "2024-01") == status_of(journal, "2024-02") == S.BACKED_UP
            assert agent.target_backoff == {}
    finally:
        agent.close()


def test_restart_catches_up_and_a_vanished_folder_is_waited_for(tmp_path, edefter, storage, memory_keyring):
    root = tmp_path / "Ağ Sürücüsü" / "defter"
    write_month(root, "2024-01")
    credentials.set_password("Merkez", "ali", "pw-ğ1")
    wb = workbook(tmp_path, edefter, root, storage.url)
    journal = tmp_path / "j.sqlite3"
    clock = Clock()
    agent = _agent(wb, journal, clock)
    agent.start()
    try:
        agent.cycle()
        clock.t += 60
        agent.cycle()
        assert status_of(journal, "2024-01") == S.BACKED_UP
    finally:
        agent.close()
    write_month(root, "2024-02")  # arrives while no agent runs (the PC was off)
    clock.t += 3600
    agent = _agent(wb, journal, clock)
    agent.start()
    try:
        agent.cycle()
        clock.t += 60
        assert agent.cycle()
        assert status_of(journal, "2024-02") == S.BACKED_UP
        assert len(attempts(journal, "2024-01")) == 1  # the month already backed up was not sent again
        months = len(agent.index.groups)

        hidden = root.with_name("defter-bağlı-değil")
        root.rename(hidden)  # the network drive drops
        clock.t += 60
        assert agent.cycle() is False
        state = A.status(wb)
        assert "klasörü bulunamadı" in state["last_error"] and state["missing_folders"]
        assert len(agent.index.groups) == months  # what was known is kept
        hidden.rename(root)
        clock.t += 60
        assert agent.cycle() is True
        clock.t += 60
        assert agent.cycle() is True
        assert A.status(wb)["missing_folders"] == []
        assert [len(attempts(journal, p)) for p in ("2024-01", "2024-02")] == [1, 1]  # nothing sent again
    finally:
        agent.close()


def test_settings_are_re_read_when_the_workbook_changes(tmp_path, edefter, storage, memory_keyring):
    root = tmp_path / "defter"
    write_month(root, "2024-03")
    credentials.set_password("Merkez", "ali", "pw-ğ1")
    wb = workbook(tmp_path, edefter, root, storage.url, auto="Hayır")
    journal = tmp_path / "j.sqlite3"
    clock = Clock()
    agent = _agent(wb, journal, clock)
    agent.start()
    try:
        for _ in range(3):
            agent.cycle()
            clock.t += 60
        assert agent.backups == 0 and agent.index.roots == set()  # Otomatik Yedekleme = Hayır: not watched
        workbook(tmp_path, edefter, root, storage.url, auto="Evet")  # the user turns it on and saves
        agent.cycle()
        clock.t += 60
        agent.cycle()
        assert status_of(journal, "2024-03") == S.BACKED_UP
    finally:
        agent.close()


def test_the_rescan_stats_folders_and_the_sweep_finds_files_rewritten_in_place(tmp_path):
    """A file rewritten in place changes no folder time: the periodic stat of each folder cannot see it,
    the round-robin sweep does (no file-system events here)."""
    root = tmp_path / "defter"
    write_month(root, "2024-04")
    folder = month_folder(root, "2024-04")
    old = time.time() - 3600
    for d in (folder, folder.parent, root):
        os.utime(d, (old, old))  # folders untouched for an hour
    clock = Clock()
    index = A.FolderIndex(clock)
    index.add_root(os.path.normcase(str(root)))
    (gk,) = index.groups
    assert A.ready_by_names(index.groups[gk].inv, "2024-04")
    index.pending.clear()
    assert index.stat_pass() == 0  # nothing listed: one stat per folder
    dr = next(folder.glob("*-DR-*"))
    with open(dr, "ab") as f:
        f.write(b"\n")
    os.utime(folder, (old, old))
    assert index.stat_pass() == 0 and not index.pending
    listed = 0
    while not index.pending:
        listed += index.sweep(0.5)
        assert listed <= len(index.dirs)  # within one round
    assert index.pending == {gk}


def test_a_second_agent_in_the_same_process_is_refused_too(tmp_path, edefter):
    root = tmp_path / "defter"
    root.mkdir()
    wb = workbook(tmp_path, edefter, root, str(tmp_path / "nas"), kind="klasör")
    first = A.Agent(wb, watch=False)
    first.start()
    try:
        with pytest.raises(A.AgentBusy, match=A.ALREADY_RUNNING):
            A.Agent(wb, watch=False).start()
        assert A.is_running(wb)
    finally:
        first.close()
    assert not A.is_running(wb)


# -- the command line, its log and signals ---------------------------------------------------------

def test_command_line_agent_backs_up_and_stops_cleanly_on_sigterm(tmp_path, edefter):
    root = tmp_path / "Defterler ş"
    write_ledgers(root, "2024-02")
    nas = tmp_path / "NAS yedek"
    nas.mkdir()
    wb = workbook(tmp_path, edefter, root, str(nas), kind="klasör", name="kontrol ğ.xlsm")
    before = wb.read_bytes()
    journal = tmp_path / "j.sqlite3"
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "edefter_helper.agent", "run", "--workbook", str(wb),
                             "--interval", "1", "--settle", "1", "--journal", str(journal)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env)
    try:
        wait_for(lambda: (A.read_state(wb) or {}).get("scans", 0) >= 2, "the agent process's rescans")
        drop_gib_berats(root, "2024-02", tmp_path)
        wait_for(lambda: status_of(journal, "2024-02") == S.BACKED_UP, "the month to be Yedeklendi")
        assert len(list(nas.rglob("*.zip"))) == 1
        again = run_module("run", "--workbook", wb)
        assert again.returncode == A.EXIT_BUSY and A.ALREADY_RUNNING in again.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Arka plan aracısı çalışıyor" in out
    state = A.status(wb)
    assert state["running"] is False and state["stopped_at"] and state["last_backup"] == "1 dönem yedeklendi."
    text = A.log_file(wb).read_text(encoding="utf-8")
    assert "Arka plan aracısı başladı" in text and "Yedekleme: 1 dönem yedeklendi." in text
    assert "Durdurma isteği" in text and "Arka plan aracısı durdu" in text
    assert wb.read_bytes() == before


def test_status_of_a_workbook_without_an_agent(tmp_path):
    proc = run_module("status", "--workbook", tmp_path / "yok.xlsm")
    assert proc.returncode == 1 and "hiç çalışmamış" in proc.stdout and "Traceback" not in proc.stderr
    proc = run_module("run", "--workbook", tmp_path / "k.xlsm", "--interval", "0")
    assert proc.returncode == 2 and "--interval" in proc.stderr


def test_settings_are_read_as_the_workbook_file_face_reads_them(tmp_path, edefter):
    """The agent reads Firmalar and Hedefler without openpyxl; it must see what FileBook (the buttons'
    headless face) sees: columns found by their header wherever the user moved them, numbers typed into
    VKN and Şube No, rich text, blank rows, an unknown column."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    from edefter_helper.settings import read_settings
    from edefter_helper.workbook import xlsm

    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = xlsm.load(wb)
    book.remove(book[L.FIRMS.name])
    ws = book.create_sheet(L.FIRMS.name, 0)
    ws.append(["Otomatik Yedekleme", "Not", "VKN/TCKN", "Firma Adı", "e-Defter Klasörü", "Hedef", "Şube No"])
    ws.append(["Evet", "x", 4810525635, CellRichText(["Anadolu ", TextBlock(InlineFont(b=True), "Gıda"), " A.Ş."]),
               "D:\\Defter & Yedek", "Merkez", 1])
    ws.append([None] * 7)
    ws.append(["Hayır", None, "0742030022", "Ege \"Tekstil\" <İzmir>", "/srv/ege", "NAS", None])
    book[L.TARGETS.name].append(["Merkez", "http", "https://depo.example/ a", None])
    xlsm.save(book, wb)
    mine, theirs = A.SettingsBook(wb), FileBook(wb)
    for sheet in (L.FIRMS, L.TARGETS):
        assert mine.read_rows(sheet) == theirs.read_rows(sheet)
    assert read_settings(mine)[:2] == read_settings(theirs)[:2]
    firms = read_settings(mine)[0]
    assert [(f.vkn, f.branch, f.name, f.auto) for f in firms] == [
        ("4810525635", "0001", "Anadolu Gıda A.Ş.", True), ("0742030022", "", 'Ege "Tekstil" <İzmir>', False)]


def test_secrets_never_reach_the_log_or_the_state(tmp_path):
    assert A.redact("http://ali:gizli-ş@depo.example:8765/x") == "http://***@depo.example:8765/x"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmark reads /proc")
def test_agent_benchmark_runs_quick(tmp_path):
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(repo / "bench" / "agent_bench.py"), "--quick", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=repo)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(re.findall(r"^RATIO .+ = [\d.]+x$", proc.stdout, re.M)) == 2, proc.stdout[-2000:]
    assert len(re.findall(r"^TARGET .+ -> (MET|NOT MET)$", proc.stdout, re.M)) == 2
    assert "FAILED" not in proc.stdout


def _registered() -> bool:
    from edefter_helper.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return "agent" in sub.choices


@pytest.mark.skipif(not _registered(), reason="needs 'edefter agent' registered in commands.py "
                                              "(REGISTER gets agent.register; the lead wires it)")
def test_edefter_agent_is_a_command(tmp_path, edefter):
    proc = edefter("agent", "status", "--workbook", tmp_path / "k.xlsm")
    assert proc.returncode == 1 and "hiç çalışmamış" in proc.stdout
    proc = edefter("agent", "install", "--workbook", tmp_path / "k.xlsm", "--print")
    assert proc.returncode == 2 and "bulunamadı" in proc.stderr
