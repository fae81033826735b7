"""Damage the developers had not staged: an adversarial review of Yedek Doğrulama (drill) and Yerel
Dosya Kontrolü (check-local).

Every scenario runs on real parts: real ledger files in GİB's folder layout, the real SQLite journal,
the real storage server on loopback (its disk damaged behind its back) and a real klasör target. No
wall clock is asserted and randomness is seeded."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edefter_helper import actions, credentials, drill, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.journal import Journal
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN = "4810525635"
PERIODS = ("2024-01", "2024-02", "2024-03")
VICTIM = "2024-02"


def _gib_folder(root: Path, period: str) -> Path:
    year, month = period.split("-")
    return root / VKN / f"01.01.{year}-31.12.{year}" / month


def _opts(journal):
    return actions.Options(journal=journal, retry_backoff=0.01, wait=20, poll=0.1)


def _rows(wb):
    return {r["period"]: r for r in FileBook(wb).read_rows(L.PERIODS)}


def _tree(root: Path) -> dict:
    """Every entry under root: name -> (kind, bytes, mtime_ns) — what 'nothing was written' means."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            out[str(p.relative_to(root))] = ("link", os.readlink(p), st.st_mtime_ns)
        elif p.is_dir():
            out[str(p.relative_to(root))] = ("dir", b"", st.st_mtime_ns)
        else:
            out[str(p.relative_to(root))] = ("file", p.read_bytes(), st.st_mtime_ns)
    return out


def _nas_workbook(tmp_path: Path, edefter, firms: list[dict]) -> tuple[Path, Path, Path]:
    """(workbook, NAS folder, journal): a new control workbook whose firms all back up to one klasör Hedef."""
    nas = tmp_path / "NAS"
    nas.mkdir()
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{**f, "target": "NAS"} for f in firms])
    book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
    book.save()
    return wb, nas, tmp_path / "j.sqlite3"


@dataclass
class Office:
    tmp: Path
    wb: Path
    journal: Path
    ledgers: Path
    months: dict
    kind: str
    store: Path  # the server's data folder, or the klasör target's folder

    def package(self, period: str) -> Path:
        if self.kind == "http":
            return next((self.store / "packages" / VKN / "0000" / period).glob("*.zip"))
        return self.store / VKN / MonthKey(VKN, "0000", period).package_name

    def drill(self, seed=1, **kw):
        kw.setdefault("sample_pct", 100)
        return drill.drill(FileBook(self.wb), options=_opts(self.journal), rng=random.Random(seed), **kw)


@contextlib.contextmanager
def office(tmp_path: Path, edefter, kind: str, periods=PERIODS):
    ledgers = tmp_path / "defter"
    months = {p: write_month(_gib_folder(ledgers, p), VKN, p) for p in periods}
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    journal = tmp_path / "j.sqlite3"
    book = FileBook(wb)
    if kind == "http":
        data = tmp_path / "sunucu"
        server.add_user(data, "ali", "pw-1", [VKN])
        credentials.set_password("Merkez", "ali", "pw-1")
        with server.start_in_thread(data) as srv:
            book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "Merkez",
                                       "user": "ali"}])
            book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": "http", "address": srv.url}])
            book.save()
            assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == len(periods)
            yield Office(tmp_path, wb, journal, ledgers, months, kind, data)
    else:
        nas = tmp_path / "NAS"
        nas.mkdir()
        book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "NAS"}])
        book.write_rows(L.TARGETS, [{"name": "NAS", "kind": "klasör", "address": str(nas)}])
        book.save()
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == len(periods)
        yield Office(tmp_path, wb, journal, ledgers, months, kind, nas)


# ---------------------------------------------------------------------------------------------------
# Yedek Doğrulama: the stored copy damaged on the target's disk
# ---------------------------------------------------------------------------------------------------

def _flip(o: Office):
    p = o.package(VICTIM)
    blob = bytearray(p.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    p.write_bytes(bytes(blob))


def _truncate(o: Office):
    p = o.package(VICTIM)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _other_month(o: Office):
    o.package(VICTIM).write_bytes(o.package("2024-01").read_bytes())


def _zero(o: Office):
    o.package(VICTIM).write_bytes(b"")


def _delete(o: Office):
    o.package(VICTIM).unlink()


def _rmdir(o: Office):
    # the server's packages/<vkn>/<branch>/<period>/; the klasör target's firm folder (every month)
    shutil.rmtree(o.package(VICTIM).parent)


def _index_lost(o: Office):
    if o.kind == "http":
        db = _unguarded(o.store)
        with db:
            assert db.execute("DELETE FROM packages WHERE period=?", (VICTIM,)).rowcount == 1
        db.close()
    else:
        o.package(VICTIM).with_name(o.package(VICTIM).name + ".json").unlink()


def _unguarded(data: Path) -> sqlite3.Connection:
    """The server's index opened as someone with the disk would: its keep-rows triggers dropped."""
    db = sqlite3.connect(data / "store.sqlite3")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    return db


def _dir_instead(o: Office):
    p = o.package(VICTIM)
    p.unlink()
    p.mkdir()
    (p / "x").write_bytes(b"not a package")


BYTE_DAMAGE = {"flip": _flip, "truncate": _truncate, "other-month": _other_month, "zero": _zero}
GONE = {"delete": _delete, "rmdir": _rmdir, "dir-instead": _dir_instead}


def _assert_caught(o: Office, summary, sha_words: bool, victims=(VICTIM,)):
    by = {r.key.period: r for r in summary.results}
    assert set(by) == set(PERIODS), summary.results
    for victim in victims:
        bad = by[victim]
        assert bad.status == S.DAMAGED, summary.results
        if sha_words:
            assert "Hedefteki kopya bozuk: sha256 farklı" in bad.message, bad.message
        else:
            assert bad.message.startswith("Hedefteki kopya") and ("bozuk" in bad.message or "bulunamadı" in bad.message)
    others = [p for p in by if p not in victims]
    assert all(by[p].status == drill.DRILL_OK for p in others), summary.results
    # in Dönemler: its own state, the reason, and Son Doğrulama
    rows = _rows(o.wb)
    for victim in victims:
        assert rows[victim]["status"] == S.DAMAGED
        assert "Hedefteki kopya" in rows[victim]["message"]
        assert rows[victim]["drill"].endswith("Bozuk"), rows[victim]["drill"]
    assert all(rows[p]["status"] == S.BACKED_UP and rows[p]["drill"].endswith("Tamam") for p in others)
    # the journal has the drill
    j = Journal(o.journal)
    try:
        drills = {k.period: v for (k, _t), v in j.last_drills().items()}
    finally:
        j.close()
    assert all(drills[v][1] is False for v in victims) and all(drills[p][1] is True for p in others)
    # the Günlük row, in Turkish
    for victim in victims:
        log = [r for r in FileBook(o.wb).read_rows(L.LOG) if r["period"] == victim and r["status"] == S.DAMAGED]
        assert log and "Hedefteki kopya" in log[-1]["message"]


@pytest.mark.parametrize("damage", sorted(BYTE_DAMAGE) + sorted(GONE) + ["index-lost"])
@pytest.mark.parametrize("kind", ["http", "klasör"])
def test_a_damaged_stored_copy_is_caught_and_never_shown_backed_up(tmp_path, edefter, memory_keyring, kind, damage):
    with office(tmp_path, edefter, kind) as o:
        before = _tree(o.ledgers)
        if damage == "index-lost" and kind == "klasör":
            # the sidecar is only the receipt; the package's bytes are whole: no false alarm
            _index_lost(o)
            summary = o.drill()
            assert summary.count(drill.DRILL_OK) == 3 and summary.failed == 0, summary.results
            return
        (BYTE_DAMAGE.get(damage) or GONE.get(damage) or _index_lost)(o)
        summary = o.drill()
        victims = PERIODS if (kind, damage) == ("klasör", "rmdir") else (VICTIM,)
        _assert_caught(o, summary, sha_words=damage in BYTE_DAMAGE, victims=victims)
        assert _tree(o.ledgers) == before  # a drill never writes near the ledgers
        # asking the target again cannot turn it green on the target's word alone
        actions.query(FileBook(o.wb), options=_opts(o.journal))
        assert all(_rows(o.wb)[v]["status"] != S.BACKED_UP for v in victims)
        # a second drill says the same
        again = {r.key.period: r for r in o.drill(seed=9).results}
        assert all(v not in again or again[v].status != drill.DRILL_OK for v in victims)
        assert all(_rows(o.wb)[v]["status"] != S.BACKED_UP for v in victims)


def test_a_healthy_store_gives_no_false_alarm_and_writes_nothing(tmp_path, edefter, memory_keyring):
    for kind in ("http", "klasör"):
        with office(tmp_path / kind, edefter, kind) as o:
            ledgers, store = _tree(o.ledgers), _tree(o.store) if kind == "klasör" else None
            for seed in (1, 2, 3):
                summary = o.drill(seed=seed)
                assert summary.count(drill.DRILL_OK) == 3 and summary.failed == 0, summary.results
            assert _tree(o.ledgers) == ledgers
            if store is not None:
                assert _tree(o.store) == store
            rows = _rows(o.wb)
            assert all(r["status"] == S.BACKED_UP and r["drill"].endswith("Tamam") for r in rows.values())
            # nothing left behind in the scratch folder either
            scratch = Path(os.environ["EDEFTER_DATA_DIR"])
            assert not [p for p in scratch.rglob("dogrulama/*")]


def test_a_copy_repaired_on_the_target_comes_back_whole(tmp_path, edefter, memory_keyring):
    with office(tmp_path, edefter, "http") as o:
        good = o.package(VICTIM).read_bytes()
        _flip(o)
        assert {r.key.period: r.status for r in o.drill().results}[VICTIM] == S.DAMAGED
        o.package(VICTIM).write_bytes(good)
        assert {r.key.period: r.status for r in o.drill().results}[VICTIM] == drill.DRILL_OK
        assert _rows(o.wb)[VICTIM]["status"] == S.BACKED_UP


def test_the_drill_command_line_says_it_in_turkish_and_exits_one(tmp_path, edefter, memory_keyring):
    with office(tmp_path, edefter, "klasör") as o:
        _flip(o)
        proc = edefter("drill", "--workbook", o.wb, "--journal", o.journal, "--sample", "100")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert "Hedefteki kopya bozuk: sha256 farklı" in proc.stdout


def test_the_server_replaced_by_an_attacker_cannot_vouch_for_other_bytes(tmp_path, edefter, memory_keyring):
    """Package bytes and the server's own index both rewritten to another month's package: the server's
    X-Content-SHA256 agrees with what it sends, but the journal remembers what was backed up."""
    with office(tmp_path, edefter, "http") as o:
        victim, other = o.package(VICTIM), o.package("2024-01")
        other_sha = other.stem
        db = _unguarded(o.store)
        with db:
            db.execute("UPDATE packages SET sha256=?, path=replace(path, ?, ?) WHERE period=?",
                       (other_sha, victim.stem, other_sha, VICTIM))
        db.close()
        victim.write_bytes(other.read_bytes())
        os.rename(victim, victim.with_name(other_sha + ".zip"))
        summary = o.drill()
        bad = {r.key.period: r for r in summary.results}[VICTIM]
        assert bad.status == S.DAMAGED and bad.message.startswith("Hedefteki kopya"), bad.message


# ---------------------------------------------------------------------------------------------------
# Yedek Doğrulama: which months are drilled
# ---------------------------------------------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _stored(n, at):
    return [(MonthKey(VKN, "0000", f"{2000 + i // 12}-{i % 12 + 1:02d}"), at) for i in range(n)]


def test_choose_is_deterministic_with_a_seed_and_random_between_seeds():
    stored = _stored(200, (NOW - timedelta(days=40)).isoformat())
    last = {k: (NOW - timedelta(days=30)).isoformat() for k, _ in stored}
    picks = [drill.choose(stored, last, sample_pct=2, recent_days=7, now=NOW, rng=random.Random(s)) for s in (4, 4, 5)]
    assert picks[0] == picks[1] and len(picks[0]) == 4
    assert picks[0] != picks[2]


@pytest.mark.parametrize("n,want", [(1, 1), (10, 1), (50, 1), (100, 2), (250, 5)])
def test_the_default_sample_is_two_percent_and_at_least_one(n, want):
    # stored and drilled recently enough that nothing is due: only the sample
    stored = _stored(n, (NOW - timedelta(days=40)).isoformat())
    last = {k: (NOW - timedelta(days=30)).isoformat() for k, _ in stored}
    chosen = drill.choose(stored, last, sample_pct=2, recent_days=7, now=NOW, rng=random.Random(0))
    assert len(chosen) == want


def test_never_drilled_months_come_first_but_within_the_sample():
    """A month never drilled is due first: it is taken before any drilled one — but a store of never
    drilled months is spread over the weeks, not fetched whole in one drill."""
    stored = _stored(100, (NOW - timedelta(days=40)).isoformat())
    last = {k: (NOW - timedelta(days=30)).isoformat() for k, _ in stored[:90]}
    chosen = drill.choose(stored, last, sample_pct=2, recent_days=7, now=NOW, rng=random.Random(0))
    assert len(chosen) == 2 and set(chosen) <= {k for k, _ in stored[90:]}
    fresh = drill.choose(stored, {}, sample_pct=2, recent_days=7, now=NOW, rng=random.Random(0))
    assert len(fresh) == 2


def test_recent_months_and_months_not_drilled_in_a_year_are_always_taken():
    stored = _stored(100, (NOW - timedelta(days=400)).isoformat())
    last = {k: (NOW - timedelta(days=30)).isoformat() for k, _ in stored}
    overdue = [k for k, _ in stored[10:15]]
    for k in overdue:
        last[k] = (NOW - timedelta(days=366)).isoformat()
    recent = MonthKey(VKN, "0000", "2026-05")
    stored.append((recent, (NOW - timedelta(days=2)).isoformat()))
    chosen = drill.choose(stored, last, sample_pct=2, recent_days=7, now=NOW, rng=random.Random(3))
    assert recent in chosen and set(overdue) <= set(chosen)
    # the sample is on top of the recent month
    assert len(chosen) == 1 + max(5, 3)


def test_over_a_year_of_weekly_drills_every_month_is_drilled_even_as_the_store_grows():
    stored = _stored(300, (NOW - timedelta(days=900)).isoformat())
    last: dict = {}
    seen_at: dict = {}
    rng = random.Random(11)
    for week in range(104):
        when = NOW + timedelta(weeks=week)
        if week % 4 == 0:  # a new month each four weeks
            stored.append((MonthKey(VKN, "0000", f"2030-{week // 4 % 12 + 1:02d}" if week < 48 else
                                    f"2031-{week // 4 % 12 + 1:02d}"), when.isoformat()))
        for key in drill.choose(stored, last, sample_pct=2, recent_days=7, now=when, rng=rng):
            last[key] = when.isoformat()
            seen_at.setdefault(key, []).append(when)
    end = NOW + timedelta(weeks=103)
    for key, at in stored:
        times = [max(datetime.fromisoformat(at), NOW)] + seen_at.get(key, [])
        times.append(end)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= timedelta(days=365), key


def _age_journal(journal: Path, days: int):
    """Every record in the journal moved `days` into the past (a store backed up long ago)."""
    db = sqlite3.connect(journal)
    with db:
        for table, cols in (("attempts", ("started_at", "finished_at")), ("months", ("updated_at",)),
                            ("drills", ("drilled_at",))):
            for col in cols:
                rows = db.execute(f"SELECT rowid, {col} FROM {table} WHERE {col} IS NOT NULL").fetchall()
                for rowid, text in rows:
                    old = datetime.fromisoformat(text) - timedelta(days=days)
                    db.execute(f"UPDATE {table} SET {col}=? WHERE rowid=?", (old.isoformat(timespec="seconds"), rowid))
    db.close()


@pytest.mark.parametrize("kind", ["klasör", "http"])
def test_a_durum_sorgula_does_not_make_old_months_look_freshly_stored(tmp_path, edefter, memory_keyring, kind):
    """'Stored in the last 7 days' is when the copy was stored, not when its status was last written:
    a weekly Durum Sorgula must not turn every drill into a full one."""
    periods = ("2024-01", "2024-02", "2024-03", "2024-04", "2024-05")
    with office(tmp_path, edefter, kind, periods=periods) as o:
        first = o.drill(sample_pct=2, seed=1)  # every month recent: all drilled
        assert first.count(drill.DRILL_OK) == 5
        _age_journal(o.journal, 60)
        actions.query(FileBook(o.wb), options=_opts(o.journal))  # rewrites every status row now
        summary = o.drill(sample_pct=2, seed=1)
        assert summary.count(drill.DRILL_OK) == 1, summary.results


def test_the_drill_samples_with_a_seed_end_to_end(tmp_path, edefter, memory_keyring):
    periods = ("2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06")
    with office(tmp_path, edefter, "klasör", periods=periods) as o:
        _age_journal(o.journal, 60)
        picks = []
        for _ in range(2):
            j = Journal(o.journal)
            with sqlite3.connect(o.journal) as db:
                db.execute("DELETE FROM drills")
            j.close()
            picks.append(sorted(r.key.period for r in o.drill(sample_pct=2, seed=42, recent_days=7).results))
        assert picks[0] == picks[1] and len(picks[0]) == 1
        # --recent 0 and a sample: only the sample, the least recently drilled first
        third = [r.key.period for r in o.drill(sample_pct=2, seed=42, recent_days=0).results]
        assert len(third) == 1 and third != picks[0]


def test_a_drill_with_nothing_stored_is_quiet(tmp_path, edefter):
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    proc = edefter("drill", "--workbook", wb, "--journal", tmp_path / "j.sqlite3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------------
# Yerel Dosya Kontrolü: the files on this computer's disk damaged after their backup
# ---------------------------------------------------------------------------------------------------

LOCAL = ("2024-01", "2024-02", "2024-03")


@pytest.fixture
def backed(tmp_path, edefter):
    with office(tmp_path, edefter, "klasör", periods=LOCAL) as o:
        yield o


def _findings(o: Office, full=False) -> dict:
    summary = actions.check_local(FileBook(o.wb), full=full, options=actions.Options(journal=o.journal))
    return {(f["period"], f["file"]): f for f in summary.extra["findings"]}


def _cli(o: Office, edefter, *extra):
    proc = edefter("check-local", "--workbook", o.wb, "--journal", o.journal, "--json", *extra)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc, json.loads(proc.stdout)


def _assert_reported(o: Office, found: dict, period: str, name: str, kind: str):
    f = found.get((period, name))
    assert f is not None, (period, name, found)
    assert f["kind"] == kind, f
    assert f["vkn"] == VKN and f["firm"] == "Anadolu" and f["branch"] == "0000"
    assert f["message"].startswith(f"Yerel dosya yedekten farklı: {name} (")


def _same_size_other_bytes(path: Path):
    st = path.stat()
    data = bytearray(path.read_bytes())
    i = data.index(b"<gl-cor:amount")
    i = data.index(b">", i) + 1
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def test_an_unchanged_tree_gives_zero_findings_quick_and_full(backed, edefter):
    before = _tree(backed.ledgers)
    for extra in ((), ("--full",)):
        proc, out = _cli(backed, edefter, *extra)
        assert proc.returncode == 0 and out["findings"] == [], proc.stdout
    assert _tree(backed.ledgers) == before  # only reads
    # unrelated extra files in a month's folder are no alarm either
    folder = backed.months["2024-01"].folder
    (folder / "notlar.txt").write_text("muhasebe notu", encoding="utf-8")
    (folder / "Thumbs.db").write_bytes(b"\0" * 64)
    (folder / "desktop.ini").write_text("[.ShellClassInfo]", encoding="utf-8")
    assert _findings(backed) == {} and _findings(backed, full=True) == {}


def test_same_size_and_mtime_other_bytes(backed, edefter):
    y = backed.months["2024-01"].find("Y")
    _same_size_other_bytes(y)
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    _assert_reported(backed, found, "2024-01", y.name, "changed")
    assert len(found) == 1


@pytest.mark.parametrize("how", ["truncated", "grown", "emptied"])
def test_size_changes(backed, how):
    k = backed.months["2024-02"].find("K")
    data = k.read_bytes()
    k.write_bytes({"truncated": data[:1000], "grown": data + b"\n<!-- -->\n", "emptied": b""}[how])
    found = _findings(backed)
    _assert_reported(backed, found, "2024-02", k.name, {"grown": "grown"}.get(how, "truncated"))
    assert "boyut değişti" in found[("2024-02", k.name)]["message"]
    assert len(found) == 1


def test_deleted_and_moved_out_of_the_firm_folder(backed, tmp_path):
    m = backed.months["2024-03"]
    m.find("DR").unlink()
    kb = m.find("KB")
    os.rename(kb, tmp_path / kb.name)  # outside the firm folder: as good as gone
    found = _findings(backed)
    _assert_reported(backed, found, "2024-03", m.spec.filename("DR", 0), "deleted")
    _assert_reported(backed, found, "2024-03", kb.name, "deleted")
    assert len(found) == 2


def test_renamed_and_moved_inside_the_firm_folder(backed):
    m = backed.months["2024-01"]
    yb = m.find("YB")
    os.rename(yb, yb.with_name("berat-eski.xml"))
    k = m.find("K")
    elsewhere = backed.ledgers / VKN / "arsiv" / "eski"
    elsewhere.mkdir(parents=True)
    os.rename(k, elsewhere / "kebir.xml")
    found = _findings(backed)
    _assert_reported(backed, found, "2024-01", yb.name, "renamed")
    assert "berat-eski.xml" in found[("2024-01", yb.name)]["message"]
    _assert_reported(backed, found, "2024-01", k.name, "renamed")
    assert "kebir.xml" in found[("2024-01", k.name)]["message"]
    assert len(found) == 2


def test_moved_to_another_folder_under_its_own_name(backed):
    """The file still exists, with its bytes, in another folder of the firm: the month's folder lacks it."""
    m = backed.months["2024-02"]
    gib = m.find("GIB-YB")
    other = backed.ledgers / VKN / "baska-klasor"
    other.mkdir()
    os.rename(gib, other / gib.name)
    found = _findings(backed)
    # either it is not damage at all (the scan still finds the whole month), or it is named as moved
    f = found.get(("2024-02", gib.name))
    assert f is None or (f["kind"] == "renamed" and "baska-klasor" in f["message"])
    assert not [k for k in found if k != ("2024-02", gib.name)]


@pytest.mark.parametrize("ext", [".locked", ".encrypted", ".id-8A3F.[restore@mail.cc].lockbit", ".LOCKED"])
def test_ransomware_appends_an_extension(backed, edefter, ext):
    m = backed.months["2024-03"]
    rng = random.Random(ext)
    for kind in ("Y", "GIB-KB"):
        f = m.find(kind)
        f.with_name(f.name + ext).write_bytes(rng.randbytes(f.stat().st_size + 16))
        f.unlink()
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    for kind in ("Y", "GIB-KB"):
        name = m.spec.filename(kind, 0)
        _assert_reported(backed, found, "2024-03", name, "encrypted")
        assert ext in found[("2024-03", name)]["message"]
    assert len(found) == 2


def test_ransomware_replaces_the_extension(backed):
    m = backed.months["2024-01"]
    y = m.find("Y")
    stem = y.name[: -len(".xml")]
    (y.parent / f"{stem}.crypt").write_bytes(random.Random(1).randbytes(y.stat().st_size))
    y.unlink()
    found = _findings(backed)
    _assert_reported(backed, found, "2024-01", y.name, "encrypted")
    assert len(found) == 1


def test_every_file_of_a_month_encrypted(backed, edefter):
    m = backed.months["2024-02"]
    rng = random.Random(7)
    names = [f.name for f in m]
    for f in list(m):
        f.with_name(f.name + ".locked").write_bytes(rng.randbytes(f.stat().st_size))  # same size: no shortcut
        f.unlink()
    (m.folder / "HOW_TO_DECRYPT.txt").write_text("pay", encoding="utf-8")
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    assert {n for p, n in found if p == "2024-02"} == set(names)
    assert all(f["kind"] == "encrypted" for f in found.values())
    assert {p for p, _ in found} == {"2024-02"}
    # refresh: the row names it, with the way back; Günlük file by file
    summary = actions.refresh(FileBook(backed.wb), options=actions.Options(journal=backed.journal))
    row = _rows(backed.wb)["2024-02"]
    assert row["status"] != S.BACKED_UP or row["stage"] == "Klasörde bulunamadı"
    assert "Geri Yükle" in row["message"] and "fidye" in row["message"]
    # Günlük file by file, each finding once while it lasts: check-local listed them, Tara adds none
    log = [r for r in FileBook(backed.wb).read_rows(L.LOG) if r["status"] == "Yerel Dosya Uyarısı"]
    assert {r["period"] for r in log} == {"2024-02"} and len(log) == len(names)
    assert not [r for r in log if r["action"] == summary.action]


def test_a_file_replaced_by_a_directory(backed, edefter):
    m = backed.months["2024-01"]
    k = m.find("K")
    k.unlink()
    k.mkdir()
    (k / "icerik").write_bytes(b"x")
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    assert found[("2024-01", k.name)]["kind"] in ("deleted", "replaced")
    assert len(found) == 1


@pytest.mark.parametrize("to", ["other-bytes", "same-bytes", "dangling", "device", "loop", "fifo"])
def test_a_file_replaced_by_a_symlink(backed, edefter, tmp_path, to):
    m = backed.months["2024-02"]
    y = m.find("Y")
    outside = tmp_path / "baska"
    outside.mkdir()
    if to == "other-bytes":
        target = backed.months["2024-01"].find("Y")
    elif to == "same-bytes":
        target = outside / y.name
        shutil.copy2(y, target)
    elif to == "dangling":
        target = outside / "yok.xml"
    elif to == "loop":
        target = y
    else:
        target = Path("/dev/zero")
    y.unlink()
    if to == "fifo":  # not a link: a named pipe under the file's name (reading it would wait for ever)
        os.mkfifo(y)
    else:
        y.symlink_to(target)
    # the quick check (every Tara) catches every link but one to the very bytes backed up; --full all
    for extra in (("--full",),) if to == "same-bytes" else ((), ("--full",)):
        proc, out = _cli(backed, edefter, *extra)
        assert proc.returncode == 1, proc.stdout
        found = {(f["period"], f["file"]): f for f in out["findings"]}
        assert ("2024-02", y.name) in found, found
        assert found[("2024-02", y.name)]["message"].startswith(f"Yerel dosya yedekten farklı: {y.name} (")
        assert {p for p, _ in found} == {"2024-02"}


def test_an_unreadable_file(backed, edefter):
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file anyway; an unreadable file cannot be staged as root")
    m = backed.months["2024-01"]
    y = m.find("Y")
    y.chmod(0)
    try:
        for extra in ((), ("--full",)):
            proc, out = _cli(backed, edefter, *extra)
            assert proc.returncode == 1
            found = {(f["period"], f["file"]): f for f in out["findings"]}
            assert ("2024-01", y.name) in found
            assert "okunamadı" in found[("2024-01", y.name)]["message"]
    finally:
        y.chmod(0o644)


def test_an_extra_ledger_file_in_a_backed_up_month(backed):
    """A second Yevmiye part that was not in the backup: the month on disk is no longer what was backed up."""
    m = backed.months["2024-03"]
    extra = m.folder / m.spec.filename("Y", 0).replace("000000", "000001")
    shutil.copy2(m.find("Y"), extra)
    found = _findings(backed)
    assert ("2024-03", extra.name) in found, found
    assert found[("2024-03", extra.name)]["message"].startswith(f"Yerel dosya yedekten farklı: {extra.name} (")
    assert {p for p, _ in found} == {"2024-03"}


def test_full_rehashing_catches_what_the_file_identity_misses(backed, edefter):
    """Where a changed file keeps its identity (a Windows or network drive: no ctime change, no inode),
    only --full sees it. Staged here by writing the file's new identity into the verify cache beside
    its old answers — what such a file system gives."""
    from edefter_helper import paths
    from edefter_helper.engine.cache import identity

    assert _findings(backed) == {}  # the cache now knows every file
    y = backed.months["2024-01"].find("Y")
    _same_size_other_bytes(y)
    db = sqlite3.connect(paths.cache_path())
    with db:
        assert db.execute("UPDATE files SET ident=? WHERE path=?", (identity(y.stat()), str(y))).rowcount == 1
        db.execute("DELETE FROM months")
    db.close()
    assert _findings(backed) == {}  # the identity was fooled
    proc, out = _cli(backed, edefter, "--full")
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    _assert_reported(backed, found, "2024-01", y.name, "changed")


def test_the_whole_firm_folder_gone(backed, edefter):
    shutil.rmtree(backed.ledgers)
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    assert {p for p, _ in found} == set(LOCAL)
    assert all(f["kind"] == "deleted" for f in found.values())


def test_findings_reach_the_rows_and_gunluk_in_turkish_with_the_way_back(backed):
    y = backed.months["2024-01"].find("Y")
    y.write_bytes(y.read_bytes()[:500])
    summary = actions.refresh(FileBook(backed.wb), options=actions.Options(journal=backed.journal))
    assert any("Yerel dosya kontrolü" in n for n in summary.notes)
    row = _rows(backed.wb)["2024-01"]
    assert row["status"] != S.BACKED_UP
    assert y.name in row["message"] and "Geri Yükle" in row["message"]
    log = [r for r in FileBook(backed.wb).read_rows(L.LOG) if r["status"] == "Yerel Dosya Uyarısı"]
    assert [r["period"] for r in log] == ["2024-01"]
    assert log[0]["message"].startswith(f"Yerel dosya yedekten farklı: {y.name} (") and "Geri Yükle" in log[0]["message"]


@pytest.mark.parametrize("layout,opts", [("gib", {}), ("luca", {}), ("zirve", {}), ("flat", {}), ("mixed", {}),
                                         ("gib", {"gib_zip": True}), ("gib", {"branch_in_name": True})])
def test_no_false_alarm_on_any_producers_tree(tmp_path, edefter, layout, opts):
    """Every producer's layout (Luca's .silinenler, e-Envanter files, the same month in four folders,
    GİB berats as .zip, branches): backed up and untouched, the check finds nothing, quick or full."""
    from edefter_helper.samples import write_tree
    from edefter_helper.samples.tree import FIRMS

    root = tmp_path / "defter"
    write_tree(root, layout=layout, **opts)
    wb, nas, journal = _nas_workbook(tmp_path, edefter, [{"name": company, "vkn": vkn, "folder": str(root)}
                                                         for vkn, company, _b, _m in FIRMS])
    assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) >= 5
    for full in (False, True):
        summary = actions.check_local(FileBook(wb), full=full, options=actions.Options(journal=journal))
        assert summary.extra["findings"] == [], summary.extra["findings"]
    summary = actions.refresh(FileBook(wb), options=actions.Options(journal=journal))
    assert not any("Yerel dosya kontrolü" in n for n in summary.notes)


def test_a_month_with_two_hedefs_one_copy_damaged(tmp_path, edefter, memory_keyring):
    """3-2-1: the NAS copy damaged, the server's whole — the drill names the NAS copy, the month's row
    is not Yedeklendi, the server's copy stays Doğrulandı."""
    ledgers = tmp_path / "defter"
    for p in PERIODS:
        write_month(_gib_folder(ledgers, p), VKN, p)
    data, nas = tmp_path / "sunucu", tmp_path / "NAS"
    nas.mkdir()
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Merkez", "ali", "pw-1")
    wb = tmp_path / "k.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    journal = tmp_path / "j.sqlite3"
    with server.start_in_thread(data) as srv:
        book = FileBook(wb)
        book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers), "target": "Merkez; NAS",
                                   "user": "ali; -"}])
        book.write_rows(L.TARGETS, [{"name": "Merkez", "kind": "http", "address": srv.url},
                                    {"name": "NAS", "kind": "klasör", "address": str(nas)}])
        book.save()
        assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == 2 * len(PERIODS)
        bad = nas / VKN / MonthKey(VKN, "0000", VICTIM).package_name
        bad.write_bytes(bad.read_bytes()[:-10])
        summary = drill.drill(FileBook(wb), sample_pct=100, options=_opts(journal), rng=random.Random(1))
        results = [(r.key.period, r.target, r.status) for r in summary.results]
        assert (VICTIM, "NAS", S.DAMAGED) in results and (VICTIM, "Merkez", drill.DRILL_OK) in results, results
        assert sum(1 for r in results if r[2] == drill.DRILL_OK) == 2 * len(PERIODS) - 1
        assert _rows(wb)[VICTIM]["status"] == S.DAMAGED
        copies = [c for c in FileBook(wb).read_rows(L.COPIES) if c["period"] == VICTIM]
        by_target = {c["target"]: c for c in copies}
        assert by_target["NAS"]["status"] == S.DAMAGED and "sha256 farklı" in by_target["NAS"]["message"]
        assert by_target["Merkez"]["status"] == S.BACKED_UP


def test_a_target_out_of_reach_is_said_and_changes_nothing(tmp_path, edefter, memory_keyring):
    """The NAS unplugged: not proof of damage — the statuses stay, the drill says it could not look,
    and Son Doğrulama does not claim Tamam (nor Bozuk)."""
    with office(tmp_path, edefter, "klasör") as o:
        os.rename(o.store, o.tmp / "NAS-sokuldu")
        summary = o.drill()
        assert summary.count(drill.DRILL_OK) == 0
        assert all(r.status == S.BACKED_UP and "doğrulanamadı" in r.message for r in summary.results), summary.results
        rows = _rows(o.wb)
        assert all(r["status"] == S.BACKED_UP for r in rows.values())
        assert all(r["drill"].endswith("Yapılamadı") for r in rows.values()), [r["drill"] for r in rows.values()]
        proc = edefter("drill", "--workbook", o.wb, "--journal", o.journal)
        assert "Traceback" not in proc.stderr and proc.returncode in (0, 1)


@pytest.mark.parametrize("kind", ["http", "klasör"])
def test_a_damaged_copy_is_put_right_by_sending_again(tmp_path, edefter, memory_keyring, kind):
    """After the drill finds the stored copy damaged, Toplu Yedekle must be able to put it back from
    the good local files; then the next drill finds it whole."""
    with office(tmp_path, edefter, kind) as o:
        _flip(o)
        assert {r.key.period: r.status for r in o.drill().results}[VICTIM] == S.DAMAGED
        actions.backup(FileBook(o.wb), options=_opts(o.journal))
        assert {r.key.period: r.status for r in o.drill().results}[VICTIM] == drill.DRILL_OK
        assert _rows(o.wb)[VICTIM]["status"] == S.BACKED_UP


def test_the_drill_needs_no_local_files(tmp_path, edefter, memory_keyring):
    """After the disk is lost the drill still proves the copies (it reads only the target)."""
    with office(tmp_path, edefter, "http") as o:
        shutil.rmtree(o.ledgers)
        summary = o.drill()
        assert summary.count(drill.DRILL_OK) == 3 and summary.failed == 0, summary.results
        assert not o.ledgers.exists()  # nor is anything put where the ledgers were


def test_ransomware_file_names_that_are_not_text_still_give_json(backed, edefter):
    """Encrypted copies under names with bytes that are no valid UTF-8 (Linux keeps them): the JSON
    stays valid and the file is still named, never a traceback."""
    m = backed.months["2024-01"]
    y = m.find("Y")
    odd = os.fsencode(y.parent) + b"/" + os.fsencode(y.name) + b".\xff\xfe\xe7ifre"
    with open(odd, "wb") as f:
        f.write(random.Random(3).randbytes(y.stat().st_size))
    y.unlink()
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    found = {(f["period"], f["file"]): f for f in out["findings"]}
    assert found[("2024-01", y.name)]["kind"] == "encrypted"
    text = edefter("check-local", "--workbook", backed.wb, "--journal", backed.journal)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert "Anadolu" in text.stdout and "2024-01" in text.stdout and y.name in text.stdout


def test_a_renamed_file_with_turkish_letters_in_json(backed, edefter):
    m = backed.months["2024-02"]
    kb = m.find("KB")
    os.rename(kb, kb.with_name("eski berat ğüşiöçİ.xml"))
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    f = {(f["period"], f["file"]): f for f in out["findings"]}[("2024-02", kb.name)]
    assert f["kind"] == "renamed" and "eski berat ğüşiöçİ.xml" in f["message"]


def test_a_name_that_is_not_text_does_not_stop_tara(backed):
    """The alarm must not be the thing that breaks: Tara runs the local check every time."""
    m = backed.months["2024-03"]
    k = m.find("K")
    with open(os.fsencode(k.parent) + b"/" + os.fsencode(k.name) + b".\xff\xfe", "wb") as f:
        f.write(b"\0" * 100)
    k.unlink()
    summary = actions.refresh(FileBook(backed.wb), options=actions.Options(journal=backed.journal))
    assert any("Yerel dosya kontrolü" in n for n in summary.notes)
    row = _rows(backed.wb)["2024-03"]
    assert k.name in row["message"] and "\ufffd" in row["message"] and "Geri Yükle" in row["message"]


def test_a_drill_that_could_not_reach_the_target_does_not_count_as_drilled(tmp_path, edefter, memory_keyring):
    periods = ("2024-01", "2024-02", "2024-03", "2024-04", "2024-05")
    with office(tmp_path, edefter, "klasör", periods=periods) as o:
        assert o.drill().count(drill.DRILL_OK) == 5
        _age_journal(o.journal, 60)
        proven = {"2024-01", "2024-02", "2024-03"}
        assert o.drill(where=lambda k: k.period in proven).count(drill.DRILL_OK) == 3
        os.rename(o.store, o.tmp / "NAS-sokuldu")
        unreached = o.drill(where=lambda k: k.period not in proven)
        assert {r.key.period for r in unreached.results} == {"2024-04", "2024-05"}
        assert unreached.count(drill.DRILL_OK) == 0
        os.rename(o.tmp / "NAS-sokuldu", o.store)
        for seed in range(6):  # whatever the seed: the months not proven for 60 days come first
            picked = [r.key.period for r in o.drill(sample_pct=2, recent_days=7, seed=seed).results]
            assert len(picked) == 1 and picked[0] in ("2024-04", "2024-05"), (seed, picked)
            # put the journal back: drop the drill just made
            with contextlib.closing(sqlite3.connect(o.journal)) as db, db:
                db.execute("DELETE FROM drills WHERE id = (SELECT MAX(id) FROM drills)")


def test_a_damaged_copy_is_looked_at_again_every_drill(tmp_path, edefter, memory_keyring):
    """Until a drill finds it whole: a copy put right on the target turns green at the next drill, not
    whenever the sample happens to reach it again."""
    with office(tmp_path, edefter, "klasör") as o:
        good = o.package(VICTIM).read_bytes()
        for seed in range(4):
            _flip(o)
            assert {r.key.period: r.status for r in o.drill().results}[VICTIM] == S.DAMAGED
            o.package(VICTIM).write_bytes(good)  # put right on the NAS by hand
            results = {r.key.period: r.status for r in o.drill(sample_pct=2, recent_days=0, seed=seed).results}
            assert results.get(VICTIM) == drill.DRILL_OK, (seed, results)
            assert _rows(o.wb)[VICTIM]["status"] == S.BACKED_UP


def test_a_firm_folder_out_of_reach_says_so(backed, edefter):
    """A ledger folder on a network drive that is not connected: every file is missing, and the message
    says the folder itself cannot be reached (not only 'silinmiş', file after file)."""
    os.rename(backed.ledgers, backed.tmp / "ag-surucusu-bagli-degil")
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    assert out["findings"] and all(f["kind"] == "deleted" for f in out["findings"])
    assert all("klasörü de bulunamadı" in f["message"] for f in out["findings"])


def test_a_damaged_target_copy_and_a_changed_local_file_both_show(tmp_path, edefter, memory_keyring):
    with office(tmp_path, edefter, "klasör") as o:
        _flip(o)
        o.drill()
        y = o.months[VICTIM].find("Y")
        y.write_bytes(y.read_bytes()[:700])
        actions.refresh(FileBook(o.wb), options=actions.Options(journal=o.journal))
        row = _rows(o.wb)[VICTIM]
        assert row["status"] == S.DAMAGED
        assert "Yerel dosya" in row["message"] or "Diskteki dosyalar" in row["message"]
        assert "Hedefteki kopya" in row["message"], row["message"]


@pytest.mark.parametrize("where", ["main", "copy"])
def test_a_month_kept_twice_one_copy_encrypted_in_place(backed, where):
    """An office keeps a second copy of the month's folder beside it; ransomware overwrites one of the two
    in place (same names). Whichever copy the scan takes, the damaged one is named."""
    m = backed.months["2024-01"]
    spare = backed.ledgers / VKN / "yedek-kopya" / "01"
    shutil.copytree(m.folder, spare)
    victim = (m.folder if where == "main" else spare) / m.spec.filename("Y", 0)
    size = victim.stat().st_size
    victim.write_bytes(random.Random(5).randbytes(size))
    found = _findings(backed)
    assert ("2024-01", victim.name) in found, found
    assert str(victim) in (found[("2024-01", victim.name)]["path"] or "") or str(victim) in \
        found[("2024-01", victim.name)]["message"], found


def test_a_lost_index_row_rebuilt_by_reindex_turns_green_at_the_next_drill(tmp_path, edefter, memory_keyring):
    with office(tmp_path, edefter, "http") as o:
        _index_lost(o)
        assert {r.key.period: r.status for r in o.drill().results}[VICTIM] == S.DAMAGED
        proc = edefter("server", "reindex", "--data", o.store)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = {r.key.period: r.status for r in o.drill(sample_pct=2, recent_days=0).results}
        assert results[VICTIM] == drill.DRILL_OK, results
        assert _rows(o.wb)[VICTIM]["status"] == S.BACKED_UP


def test_a_branch_month_damaged_on_the_target_and_on_disk(tmp_path, edefter):
    """A şube's months (VKN/ŞŞŞŞ): the drill and the local check name the branch's month."""
    ledgers = tmp_path / "defter"
    months = {p: write_month(ledgers / VKN / "0001" / p, VKN, p, branch="0001", branch_name="İzmir Şube",
                             branch_in_name=True) for p in PERIODS}
    wb, nas, journal = _nas_workbook(tmp_path, edefter, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers)}])
    assert actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP) == len(PERIODS)
    pkg = nas / VKN / MonthKey(VKN, "0001", VICTIM).package_name
    pkg.write_bytes(pkg.read_bytes()[:-1])
    summary = drill.drill(FileBook(wb), sample_pct=100, options=_opts(journal), rng=random.Random(1))
    by = {(r.key.branch, r.key.period): r for r in summary.results}
    assert by[("0001", VICTIM)].status == S.DAMAGED and "sha256 farklı" in by[("0001", VICTIM)].message
    assert sum(1 for r in summary.results if r.status == drill.DRILL_OK) == len(PERIODS) - 1
    k = months["2024-03"].find("K")
    k.with_name(k.name + ".locked").write_bytes(b"\0" * 10)
    k.unlink()
    local = actions.check_local(FileBook(wb), options=actions.Options(journal=journal))
    found = local.extra["findings"]
    assert [(f["branch"], f["period"], f["file"], f["kind"]) for f in found] == [("0001", "2024-03", k.name, "encrypted")]


def test_a_whole_firm_encrypted_at_one_size_hashes_each_file_once(tmp_path, edefter):
    """Ransomware that keeps sizes (a stream cipher, no footer): every backed-up file is missing and many
    files share a size. Looking for moved copies must read each file of the firm folder once, not once
    per missing file (hours on an office's 250 000 files)."""
    from edefter_helper import localcheck

    periods = tuple(f"2024-{m:02d}" for m in range(1, 7))
    with office(tmp_path, edefter, "klasör", periods=periods) as o:
        rng = random.Random(2)
        for m in o.months.values():
            for f in list(m):
                f.with_name(f.name + ".locked").write_bytes(rng.randbytes(f.stat().st_size))
                f.unlink()
        j = Journal(o.journal)
        try:
            backed = [(k, "Anadolu", files) for (k, _t), files in sorted(j.recorded_files().items())]
        finally:
            j.close()
        calls: dict[str, int] = {}

        def counting(path):
            calls[str(path)] = calls.get(str(path), 0) + 1
            from edefter_helper.fsutil import sha256_file
            return sha256_file(path)

        findings = localcheck.check(backed, {}, lambda key: str(o.ledgers), hasher=counting)
        assert len(findings) == sum(len(files) for _k, _f, files in backed)
        assert all(f.kind == "encrypted" for f in findings)
        assert calls and max(calls.values()) == 1, max(calls.values())


@pytest.mark.parametrize("opts", [{"layout": "mixed"}, {"layout": "gib", "gib_zip": True, "branch_in_name": True}])
def test_a_healthy_store_of_every_shape_of_month_drills_clean(tmp_path, edefter, opts):
    """Parts, branches, upper-case extensions, GİB berats as .zip, the same month in four folders:
    stored whole, every drill says Doğrulandı."""
    from edefter_helper.samples import write_tree
    from edefter_helper.samples.tree import FIRMS

    root = tmp_path / "defter"
    write_tree(root, **opts)
    wb, nas, journal = _nas_workbook(tmp_path, edefter, [{"name": company, "vkn": vkn, "folder": str(root)}
                                                         for vkn, company, _b, _m in FIRMS])
    stored = actions.backup(FileBook(wb), options=_opts(journal)).count(S.BACKED_UP)
    assert stored >= 5
    before = _tree(root)
    summary = drill.drill(FileBook(wb), sample_pct=100, options=_opts(journal), rng=random.Random(1))
    assert summary.count(drill.DRILL_OK) == stored and summary.failed == 0, summary.results
    assert _tree(root) == before


def test_a_firm_folder_replaced_by_a_file(backed, edefter):
    shutil.rmtree(backed.ledgers)
    backed.ledgers.write_bytes(b"fidye notu")
    proc, out = _cli(backed, edefter)
    assert proc.returncode == 1
    assert {f["period"] for f in out["findings"]} == set(LOCAL)
    assert all(f["kind"] == "deleted" for f in out["findings"])
    text = edefter("check-local", "--workbook", backed.wb, "--journal", backed.journal)
    assert text.returncode == 1 and "Traceback" not in text.stderr + text.stdout
    assert "Yerel dosya yedekten farklı" in text.stdout


def test_an_unreadable_file_is_named_so_even_where_root_reads_everything(backed):
    """The chmod 000 case, staged where the tests run as root: the engine could not read the file
    (no sha256), and reading it again fails with EACCES — 'okunamadı', never 'içeriği değişti', never
    an exception, in the quick check and in --full."""
    from edefter_helper import localcheck
    from edefter_helper.engine.verify import verify_roots
    from edefter_helper.fsutil import sha256_file

    sets = {ms.key: ms for ms in verify_roots([backed.ledgers]).sets}
    key = MonthKey(VKN, "0000", "2024-01")
    victim = next(f for f in sets[key].files if f.kind == "Y")
    victim.sha256 = None

    def hasher(path):
        if str(path) == victim.location:
            raise PermissionError(13, "Permission denied", str(path))
        return sha256_file(path)

    j = Journal(backed.journal)
    try:
        backed_up = [(k, "Anadolu", files) for (k, _t), files in sorted(j.recorded_files().items())]
    finally:
        j.close()
    for full in (False, True):
        findings = localcheck.check(backed_up, sets, lambda k: str(backed.ledgers), full=full, hasher=hasher)
        assert [(f.key.period, f.name, f.kind) for f in findings] == [("2024-01", victim.name.filename, "unreadable")]
        assert "okunamadı" in findings[0].message and "Geri Yükle" in findings[0].message


def test_durum_sorgula_keeps_the_damage_reason_when_the_target_reports_other_bytes(tmp_path, edefter, memory_keyring):
    with office(tmp_path, edefter, "klasör") as o:
        _flip(o)
        o.drill()
        actions.query(FileBook(o.wb), options=_opts(o.journal))
        row = _rows(o.wb)[VICTIM]
        assert row["status"] == S.DAMAGED and "bozuk" in row["message"].lower(), row


def test_a_copy_byte_identical_to_the_backup_is_not_called_damaged_when_todays_check_changes(
        tmp_path, edefter, memory_keyring, monkeypatch):
    """GİB's countersigner list changes after the backup (staged at the engine's verdict: every month's
    countersigner now untrusted): the copies are the very bytes backed up. The drill says what the check
    found, and no copy turns Hedefteki Kopya Bozuk — while a copy with other bytes still does."""
    from edefter_helper.engine import problems as P
    from edefter_helper.engine import verify as V

    real = V.verify_roots

    def todays_check(*args, **kw):
        result = real(*args, **kw)
        for ms in result.sets:
            ms.valid = False
            ms.problems.append(P.countersigner_untrusted("CN=Eski GİB Mali Mühür", ms.files[0].path))
        return result

    with office(tmp_path, edefter, "klasör") as o:
        monkeypatch.setattr(V, "verify_roots", todays_check)
        _flip(o)
        summary = o.drill()
        by = {r.key.period: r for r in summary.results}
        assert by[VICTIM].status == S.DAMAGED and "sha256 farklı" in by[VICTIM].message
        for p in ("2024-01", "2024-03"):
            assert by[p].status == S.BACKED_UP and "yedeklenen baytların aynısı" in by[p].message, by[p]
        rows = _rows(o.wb)
        assert rows[VICTIM]["status"] == S.DAMAGED
        for p in ("2024-01", "2024-03"):
            assert rows[p]["status"] == S.BACKED_UP and rows[p]["drill"].endswith("Yapılamadı"), rows[p]


def test_a_package_the_server_is_checking_again_is_no_damage(tmp_path, edefter, memory_keyring):
    """The server's index says 'accepted' for a stored month (it re-checks after a rebuild): the drill has
    no verdict yet — it says so and leaves the month Yedeklendi."""
    with office(tmp_path, edefter, "http") as o:
        db = _unguarded(o.store)
        with db:
            assert db.execute("UPDATE packages SET state='accepted' WHERE period=?", (VICTIM,)).rowcount == 1
        db.close()
        by = {r.key.period: r for r in o.drill().results}
        assert by[VICTIM].status == S.BACKED_UP and by[VICTIM].message.startswith(drill.INCONCLUSIVE), by[VICTIM]
        assert _rows(o.wb)[VICTIM]["status"] == S.BACKED_UP
        assert _rows(o.wb)[VICTIM]["drill"].endswith("Yapılamadı")


@pytest.mark.parametrize("ext", [".locked", ".encrypted"])
def test_a_file_only_renamed_to_a_ransomware_extension(backed, ext):
    """X.xml -> X.xml.locked by a plain rename (the bytes not yet encrypted): still what ransomware
    leaves, and said so — not just 'adı değişmiş'."""
    m = backed.months["2024-02"]
    y = m.find("Y")
    os.rename(y, y.with_name(y.name + ext))
    found = _findings(backed)
    _assert_reported(backed, found, "2024-02", y.name, "encrypted")
    assert y.name + ext in found[("2024-02", y.name)]["message"]
    assert "fidye" in found[("2024-02", y.name)]["message"]
    assert len(found) == 1


def test_drill_seed_on_the_command_line_picks_the_same_months(tmp_path, edefter, memory_keyring):
    """`edefter drill --seed N`: an auditor can ask for the very sample again (the API's rng)."""
    periods = tuple(f"2023-{m:02d}" for m in range(1, 13))
    with office(tmp_path, edefter, "klasör", periods=periods) as o:
        picked = []
        for _ in range(2):
            proc = edefter("drill", "--workbook", o.wb, "--journal", o.journal, "--sample", "10", "--recent", "0",
                           "--seed", "42", "--json")
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
            out = json.loads(proc.stdout)
            picked.append(sorted(r["period"] for r in out["results"]))
            with contextlib.closing(sqlite3.connect(o.journal)) as db, db:  # the journal as before the drill
                db.execute("DELETE FROM drills")
        assert picked[0] == picked[1] and len(picked[0]) == 2, picked  # 10 % of 12 months, rounded up
