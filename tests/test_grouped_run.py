"""Toplu Yedekle a group of firms at a time (issue 12: an office's backfill holds one group's files,
not 300 firms'). The same workbook, ledgers and a fresh storage server each: a run in groups of one
firm must leave exactly what one pass over every firm leaves — the Dönemler, Kopyalar and Günlük rows,
the summary, what the server holds — including firms whose months share folders (the same folder,
a folder inside another, one VKN in two folders, a month filed in another firm's folder)."""

from __future__ import annotations

import os
from pathlib import Path

from edefter_helper import actions, credentials, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.samples import broken
from edefter_helper.samples import write_month as _write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

from test_backup_workbook import _fill, _new_workbook, _sheet_rows

V = [f"{6000000000 + i * 7919:010d}" for i in range(11)]
PASSWORD = "gizli-ğ"


def write_month(folder, vkn, period, **kw):
    return _write_month(folder, vkn, period, company=f"Firma {V.index(vkn):02d} A.Ş.", **kw)


def _ledgers(root: Path) -> dict[str, Path]:
    """Ledger folders, and which folder each firm row names."""
    f = {name: root / name for name in ("A", "Ortak", "Kök", "Şube", "Merkez", "Yedi", "Boş", "On")}
    (root / "Boş").mkdir(parents=True)
    write_month(f["A"], V[1], "2024-01")
    write_month(f["A"], V[1], "2024-02", seed=1)
    write_month(f["A"] / "yanlış yer", V[7], "2024-02", seed=7)  # firm 7's month filed in firm 1's folder
    write_month(f["Yedi"], V[7], "2024-01", seed=7)
    write_month(f["Ortak"], V[2], "2024-01", seed=2)
    write_month(f["Ortak"], V[3], "2024-01", seed=3)
    write_month(f["Kök"], V[4], "2024-01", seed=4)
    write_month(f["Kök"] / "Alt", V[5], "2024-01", seed=5)  # firm 5's folder lies inside firm 4's
    write_month(f["Şube"], V[6], "2024-01", branch="0001", seed=6)
    write_month(f["Merkez"], V[6], "2024-01", seed=61)
    waiting = write_month(f["On"], V[10], "2024-01", seed=10)
    broken.remove_gib_berat(waiting, "GIB-YB")
    return f


def _firms(f: dict[str, Path], root: Path) -> list[dict]:
    def firm(i, folder, **kw):
        return {"name": f"Firma {i:02d} A.Ş.", "vkn": V[i], "folder": str(folder), "target": "Merkez",
                "user": "ofis", "auto": "Evet", **kw}

    return [firm(1, f["A"]), firm(2, f["Ortak"]), firm(3, f["Ortak"]), firm(4, f["Kök"]),
            firm(5, f["Kök"] / "Alt"), firm(6, f["Şube"], branch="0001"), firm(6, f["Merkez"], name="Firma 06 Merkez"),
            firm(7, f["Yedi"]), firm(8, f["Boş"]), firm(9, root / "yok"), firm(10, f["On"])]


def _setup(base: Path, edefter, ledgers: dict[str, Path], root: Path):
    data = base / "sunucu"
    server.add_user(data, "ofis", PASSWORD, list(V))
    handle = server.start_in_thread(data)
    wb = _new_workbook(edefter, base / "kontrol.xlsm")
    _fill(wb, _firms(ledgers, root), [{"name": "Merkez", "kind": "http", "address": handle.url}])
    return handle, wb


def _seen(path: Path):
    def rows(sheet, drop):
        return sorted((tuple((k, "" if v is None else str(v)) for k, v in r.items() if k not in drop)
                       for r in _sheet_rows(path, sheet)))

    return (rows(L.PERIODS, {"updated", "reference"}), rows(L.COPIES, {"updated", "reference"}),
            rows(L.LOG, {"time"}))


def test_backup_in_groups_of_one_firm_equals_one_pass(tmp_path, edefter, memory_keyring, monkeypatch):
    root = tmp_path / "defterler"
    ledgers = _ledgers(root)
    credentials.set_password("Merkez", "ofis", PASSWORD)
    scans = []
    real_scan = actions._Run.scan

    def counted(run, firms=None):
        scans.append(len(firms) if firms is not None else len(run.firms))
        return real_scan(run, firms)

    monkeypatch.setattr(actions._Run, "scan", counted)
    outcome = {}
    for size in (100, 1):
        base = tmp_path / f"grup-{size}"
        handle, wb = _setup(base, edefter, ledgers, root)
        opts = actions.Options(journal=base / "gunluk.sqlite3", retry_backoff=0.01, wait=30, poll=0.1,
                               group_firms=size)
        try:
            scans.clear()
            first = actions.backup(FileBook(wb), options=opts)
            first_scans = list(scans)
            # then a file changes on disk: the next run finds it (local check) in whichever group
            tampered = next((ledgers["Ortak"]).rglob(f"{V[3]}-202401-K-*.xml"))
            original = tampered.read_bytes()
            tampered.write_bytes(original.replace(b"</", b" </", 1))
            second = actions.backup(FileBook(wb), options=opts)
            tampered.write_bytes(original)
            after_backup = _seen(wb)
            scans.clear()
            tara = actions.refresh(FileBook(wb), options=opts)  # Tara is grouped the same way
            tara_scans = list(scans)
            after_tara = _seen(wb)
            # Durum Sorgula of every month, then Gönder of a selection across groups (one month is gone
            # from the server meanwhile: both find it and send it again)
            gone = next((base / "sunucu" / "packages" / V[5]).rglob("*.zip"))
            gone.unlink()
            asked = actions.query(FileBook(wb), options=opts)
            chosen = [MonthKey(V[5], "0000", "2024-01"), MonthKey(V[1], "0000", "2024-02"),
                      MonthKey(V[9], "0000", "2024-01")]
            sent = actions.send(FileBook(wb), keys=chosen, options=opts)
            held = sorted(str(p.relative_to(base / "sunucu")) for p in (base / "sunucu" / "packages").rglob("*.zip"))
        finally:
            handle.stop()
        outcome[size] = (first.message, sorted(first.notes), first.found,
                         sorted((r.key, r.status, r.message) for r in first.results),
                         second.message, sorted(second.notes), after_backup, held,
                         tara.message, sorted(tara.notes), tara.found, after_tara,
                         asked.message, sorted((r.key, r.status, r.message) for r in asked.results),
                         sent.message, sorted((r.key, r.status, r.message) for r in sent.results), _seen(wb))
        if size == 1:
            # firms sharing folders stayed together: 1+7 (a month of 7 in 1's folder), 2+3, 4+5, both 6s
            assert sorted(first_scans) == sorted(tara_scans) == [1, 1, 1, 2, 2, 2, 2], first_scans
        else:
            assert first_scans == tara_scans == [11]

    assert outcome[1] == outcome[100]
    (message, notes, found, results, second_message, second_notes, (periods, copies, log), held,
     tara_message, _, tara_found, (tara_periods, _, _), asked, _, sent, sent_results, _) = outcome[1]
    assert [(k.vkn, k.period, st) for k, st, _ in sent_results] == [
        (V[1], "2024-02", S.BACKED_UP), (V[5], "2024-01", S.BACKED_UP), (V[9], "2024-01", S.FAILED)], sent_results
    assert "1 dönem" in asked and sent.startswith("2 dönem yedeklendi"), (asked, sent)
    assert tara_found == 11 and "11 dönem bulundu" in tara_message
    tara_status = {(dict(r)["vkn"], dict(r)["period"]): dict(r)["status"] for r in tara_periods}
    assert tara_status[(V[3], "2024-01")] == S.BACKED_UP  # the file is back as it was backed up
    assert found == 11
    statuses = {(dict(r)["vkn"], dict(r)["branch"], dict(r)["period"]): dict(r)["status"] for r in periods}
    assert len(periods) == 11 and len(copies) == 11
    assert statuses[(V[7], "0000", "2024-02")] == S.BACKED_UP  # found in firm 1's folder, sent as firm 7's
    assert statuses[(V[10], "0000", "2024-01")] == S.NOT_SENT
    assert sum(1 for s in statuses.values() if s == S.BACKED_UP) == 9
    assert statuses[(V[3], "0000", "2024-01")] == S.CHANGED  # the second run saw the changed file
    assert "10 dönem yedeklendi" in message
    assert any("Yerel dosya kontrolü" in n for n in second_notes), (second_notes, [r for r in log if V[3] in str(r)])
    assert any(dict(r)["status"] == "Yerel Dosya Uyarısı" and V[3] in (dict(r)["vkn"] or "") for r in log)
    assert any("Boş" in n for n in notes) and any("yok" in n for n in notes)
    assert len(held) == 10


def test_groups_keep_firms_whose_folders_or_taxpayers_meet_together(tmp_path, edefter):
    """Run.groups alone: sizes respected, sheet order kept, linked firms never split."""
    root = tmp_path / "d"
    for i in range(6):
        (root / f"f{i}").mkdir(parents=True)
    write_month(root / "f0", V[5], "2024-01")  # firm 5's month in firm 0's folder
    firms = [{"name": f"F{i}", "vkn": V[i], "folder": str(root / f"f{i}"), "target": "X", "user": "u"}
             for i in range(6)]
    firms.append({"name": "F6", "vkn": V[6], "folder": str(root / "f1" / "iç"), "target": "X", "user": "u"})
    (root / "f1" / "iç").mkdir()
    firms.append({"name": "F7", "vkn": V[2], "branch": "0002", "folder": str(root / "f7"), "target": "X",
                  "user": "u"})
    wb = _new_workbook(edefter, tmp_path / "k.xlsm")
    _fill(wb, firms, [{"name": "X", "kind": "klasör", "address": str(tmp_path / "hedef")}])
    for size, expected in ((2, [["F0", "F5"], ["F1", "F6"], ["F2", "F7"], ["F3", "F4"]]),
                           (3, [["F0", "F5"], ["F1", "F6"], ["F2", "F7", "F3"], ["F4"]]),
                           (100, [["F0", "F1", "F2", "F3", "F4", "F5", "F6", "F7"]])):
        run = actions._Run(FileBook(wb), "test", actions.Options(journal=tmp_path / f"j{size}.sqlite3",
                                                                 group_firms=size))
        try:
            assert [[f.name for f in g] for g in run.groups()] == expected
        finally:
            run.close()
    assert os.listdir(root / "f0")  # nothing written into ledger folders


class _Clock:
    """actions' time: sleeping advances it, nothing waits for real (what is counted is the waiting)."""

    def __init__(self):
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_groups_share_one_wait_for_a_target_that_keeps_processing(tmp_path, edefter, memory_keyring, shared_dir,
                                                                   monkeypatch):
    """İzibiz still processing every package: one pass waits Options.wait for confirmations; a run in
    three groups must not wait three times as long (the months stay Entegratör'e İşlendi, honestly)."""
    from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer, require_contract

    contract = require_contract(shared_dir / "integrators" / "izibiz")
    for i in (1, 2, 3):
        write_month(tmp_path / "defter" / str(i), V[i], "2024-01", seed=i)
    credentials.set_password("İzibiz", "ali@firma", "doğru-şifre")
    waited = {}
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz", contract_dir=contract)) as fake:
        fake.app.hold_processing = True
        for size in (100, 1):
            wb = _new_workbook(edefter, tmp_path / f"k{size}.xlsm")
            _fill(wb, [{"name": f"Firma {i}", "vkn": V[i], "folder": str(tmp_path / "defter" / str(i)),
                        "target": "İzibiz", "user": "ali@firma", "auto": "Evet"} for i in (1, 2, 3)],
                  [{"name": "İzibiz", "kind": "izibiz", "address": f"{fake.auth_url} {fake.archive_url}"}])
            clock = _Clock()
            with monkeypatch.context() as patched:
                patched.setattr(actions, "time", clock)
                summary = actions.backup(FileBook(wb), options=actions.Options(
                    journal=tmp_path / f"j{size}.sqlite3", retry_backoff=0.01, wait=10, poll=0.5, group_firms=size))
            assert summary.count(S.ACCEPTED) == 3 and summary.failed == 0, summary.results
            assert {r["status"] for r in _sheet_rows(wb, L.PERIODS)} == {S.ACCEPTED}
            waited[size] = clock.slept
            fake.app.store.clear()
    assert 9 <= waited[100] <= 10.5, waited
    assert waited[1] <= waited[100] + 0.5, waited  # not 3 × 10 s


def test_taxpayers_under_finds_by_name_as_the_scan_walks(tmp_path):
    from edefter_helper.engine.scan import taxpayers_under

    root = tmp_path / "kök"
    write_month(root / "a", V[1], "2024-01")
    write_month(root / ".silinenler", V[2], "2024-01", seed=2)  # Luca's deleted copies: not current
    write_month(tmp_path / "başka", V[3], "2024-01", seed=3)
    (root / "bağ").symlink_to(tmp_path / "başka", target_is_directory=True)  # not followed, as the scan
    (root / "b").mkdir()
    (root / "b" / "notlar.txt").write_text("x")
    assert taxpayers_under(root) == {V[1]}
    (root / "b" / f"{V[4]}-202401-E-000001.xml").write_text("<envanter/>")  # e-Envanter: counted (a superset
    assert taxpayers_under(root) == {V[1], V[4]}  # only makes groups larger, never splits linked firms)
    assert taxpayers_under(tmp_path / "başka") == {V[3]}
    one = next((root / "a").rglob(f"{V[1]}-202401-Y-*.xml"))
    assert taxpayers_under(one) == {V[1]}
    assert taxpayers_under(root / ".silinenler") == set()


def test_taxpayer_of_gives_every_name_parse_name_accepts_its_vkn(tmp_path):
    import random

    from edefter_helper.engine.names import parse_name, taxpayer_of
    from edefter_helper.samples import write_tree

    names = [p.name for p in write_tree(tmp_path, layout="mixed", branch_in_name=True, gib_zip=True).ledger_files]
    rng = random.Random(12)
    alphabet = "0123456789-GIBgibYKDREZzipxml._٣"
    for _ in range(20000):  # mutated names: whatever parse_name accepts, taxpayer_of reads the same VKN
        base = list(rng.choice(names))
        for _ in range(rng.randint(1, 3)):
            base[rng.randrange(len(base))] = rng.choice(alphabet)
        names.append("".join(base))
    accepted = 0
    for name in names:
        parsed = parse_name(name)
        if parsed is not None:
            accepted += 1
            assert taxpayer_of(name) == parsed.vkn, name
    assert accepted > 100


def test_sheet_rows_share_equal_values_but_keep_their_types():
    from datetime import datetime

    from edefter_helper.workbook import layout as L

    rows = [{"name": "A", "status": True, "message": ["liste"]}, {"name": "A", "status": 1},
            {"name": "A", "status": 1.0, "updated": datetime(2024, 1, 1)}, {"name": "".join("A"), "status": "1"}]
    held = L.SheetRows(L.PERIODS, rows)
    got = [(r["status"], type(r["status"])) for r in held]
    assert got == [(True, bool), (1, int), (1.0, float), ("1", str)]
    assert held[0]["message"] == ["liste"] and held[2]["updated"] == datetime(2024, 1, 1)
    assert held.tuples[0][0] is held.tuples[3][0]  # the name held once
    assert [dict(r) for r in held[1:3]] == [held[1], held[2]] and len(held) == 4
