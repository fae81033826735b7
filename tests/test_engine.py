"""The engine through the real `edefter` command line, on generated trees."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from edefter_helper.samples import broken, write_month
from edefter_helper.samples.tree import write_tree

VKN = "4810525635"
TCKN = "12345678950"


def _json(proc):
    assert proc.stderr == "" or "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def _only_set(data, vkn=VKN, period=None, branch=None):
    sets = [s for s in data["sets"] if s["vkn"] == vkn and (period is None or s["period"] == period)
            and (branch is None or s["branch"] == branch)]
    assert len(sets) == 1, [(s["vkn"], s["branch"], s["period"]) for s in data["sets"]]
    return sets[0]


def _codes(s) -> set[str]:
    return {p["code"] for p in s["problems"]}


def _verify(edefter, root, *extra):
    proc = edefter("verify", root, "--json", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


# -- recognising and scanning -------------------------------------------------------------------

def test_scan_mixed_layouts_groups_months_and_lists_ignored(tmp_path, edefter):
    info = write_tree(tmp_path / "defterler", layout="mixed", seed=3)
    proc = edefter("scan", tmp_path / "defterler", "--json")
    assert proc.returncode == 0, proc.stderr
    data = _json(proc)
    keys = {(s["vkn"], s["branch"], s["period"]) for s in data["sets"]}
    assert keys == {(k.vkn, k.branch, k.period) for k in info.months}
    for key, sample in info.months.items():
        s = _only_set(data, key.vkn, key.period, key.branch)
        assert s["complete"] is sample.complete, (key, s["problems"])
        for f in s["files"]:
            assert {"path", "kind", "part", "size"} <= f.keys()
            assert Path(f["path"]).stat().st_size == f["size"]
    reasons = {Path(i["path"]).name: i["reason"] for i in data["ignored"]}
    assert any("e-Envanter" in r for r in reasons.values())
    assert any("XSLT" in r for r in reasons.values())
    assert all(".silinenler" not in f["path"] for s in data["sets"] for f in s["files"])
    assert any(".silinenler" in i["path"] for i in data["ignored"])
    # the same month present in several layouts with identical bytes counts once
    for s in data["sets"]:
        names = [Path(f["path"]).name.lower() for f in s["files"]]
        assert len(names) == len(set(names))


def test_scan_table_is_turkish_and_exit_zero(tmp_path, edefter):
    write_month(tmp_path, VKN, "2024-01")
    proc = edefter("scan", tmp_path)
    assert proc.returncode == 0
    assert "Onaylı Berat İndirildi" in proc.stdout
    assert "1 dönem bulundu, 0 dönem eksik." in proc.stdout


def test_stages(tmp_path, edefter):
    write_month(tmp_path / "a", VKN, "2024-01", gib=False)
    m = write_month(tmp_path / "b", VKN, "2024-02")
    for kind in ("YB", "KB", "GIB-YB", "GIB-KB"):
        m.find(kind, 0).unlink()
    write_month(tmp_path / "c", VKN, "2024-03")
    data = _json(edefter("scan", tmp_path, "--json"))
    assert _only_set(data, period="2024-01")["stage"] == "berat-signed"
    assert _only_set(data, period="2024-02")["stage"] == "ledger-only"
    assert _only_set(data, period="2024-03")["stage"] == "gib-approved"


def test_tckn_branch_and_split_parts(tmp_path, edefter):
    write_month(tmp_path / "t", TCKN, "2022-05", parts=3)
    write_month(tmp_path / "b", VKN, "2022-05", branch="0007")
    write_month(tmp_path / "n", VKN, "2022-06", branch="0042", branch_in_name=True)
    code, data = _verify(edefter, tmp_path)
    assert code == 0, data
    t = _only_set(data, TCKN)
    assert t["valid"] and sorted(f["part"] for f in t["files"] if f["kind"] == "Y") == [1, 2, 3]
    assert _only_set(data, VKN, "2022-05")["branch"] == "0007"  # from the XML header
    assert _only_set(data, VKN, "2022-06")["branch"] == "0042"  # from the name


def test_gib_berat_saved_as_zip_counts_as_berat(tmp_path, edefter):
    write_month(tmp_path, VKN, "2023-04", gib_zip=True)
    assert any(p.suffix == ".zip" for p in tmp_path.iterdir())
    code, data = _verify(edefter, tmp_path)
    assert code == 0, data
    s = _only_set(data)
    assert s["stage"] == "gib-approved" and s["valid"]


# -- completeness rules ------------------------------------------------------------------------

def test_missing_gib_berat(tmp_path, edefter):
    m = write_month(tmp_path, VKN, "2024-01")
    broken.remove_gib_berat(m, "GIB-KB")
    code, data = _verify(edefter, tmp_path)
    s = _only_set(data)
    assert code == 1 and not s["complete"] and not s["valid"]
    assert "missing-berat" in _codes(s)
    assert any("GIB-KB-000000" in p["message"] for p in s["problems"])


def test_missing_dr_from_2019_but_not_before(tmp_path, edefter):
    m = write_month(tmp_path / "new", VKN, "2019-01")
    broken.remove_dr(m)
    write_month(tmp_path / "old", VKN, "2018-12")
    code, data = _verify(edefter, tmp_path)
    assert code == 1
    assert _codes(_only_set(data, period="2019-01")) == {"missing-dr"}
    old = _only_set(data, period="2018-12")
    assert old["valid"] and not any(f["kind"] == "DR" for f in old["files"])


def test_part_gap(tmp_path, edefter):
    m = write_month(tmp_path, VKN, "2024-02", parts=3)
    broken.part_gap(m, 2)
    code, data = _verify(edefter, tmp_path)
    s = _only_set(data)
    assert code == 1 and "part-gap" in _codes(s)
    assert any("000002" in p["message"] for p in s["problems"] if p["code"] == "part-gap")


def test_whole_and_split_numbering_together(tmp_path, edefter):
    m = write_month(tmp_path, VKN, "2024-02")
    broken.whole_and_part(m)
    code, data = _verify(edefter, tmp_path)
    assert code == 1 and "part-mixed" in _codes(_only_set(data))


def test_two_branches_in_one_month_are_two_sets(tmp_path, edefter):
    write_month(tmp_path / "s1", VKN, "2024-03", branch="0001")
    write_month(tmp_path / "s2", VKN, "2024-03", branch="0002")
    code, data = _verify(edefter, tmp_path)
    assert code == 0
    assert sorted(s["branch"] for s in data["sets"]) == ["0001", "0002"]


def test_identical_duplicate_is_one_file_conflicting_copy_is_a_problem(tmp_path, edefter):
    m = write_month(tmp_path / "a", VKN, "2024-04")
    broken.duplicate_copy(m, tmp_path / "yedek")
    code, data = _verify(edefter, tmp_path)
    s = _only_set(data)
    assert code == 0 and s["valid"]
    assert len([f for f in s["files"] if f["kind"] == "Y"]) == 1

    broken.conflicting_copy(m, tmp_path / "baska", kind="K")
    code, data = _verify(edefter, tmp_path)
    s = _only_set(data)
    assert code == 1 and "conflicting-copies" in _codes(s)


def test_silinenler_and_inventory_are_never_current(tmp_path, edefter):
    m = write_month(tmp_path / "ay", VKN, "2024-05")
    deleted = tmp_path / "ay" / ".silinenler"
    deleted.mkdir()
    shutil.copy(m.find("Y", 0), deleted / "4810525635-202406-Y-000000.xml")
    (tmp_path / "ay" / "4810525635-202405-E-000000.xml").write_bytes(b"<x/>")
    data = _json(edefter("scan", tmp_path, "--json"))
    assert [s["period"] for s in data["sets"]] == ["2024-05"]
    reasons = {Path(i["path"]).name: i["reason"] for i in data["ignored"]}
    assert ".silinenler" in reasons["4810525635-202406-Y-000000.xml"]
    assert "e-Envanter" in reasons["4810525635-202405-E-000000.xml"]


# -- content checks ----------------------------------------------------------------------------

def test_identifier_and_period_inside_must_equal_name(tmp_path, edefter):
    m1 = write_month(tmp_path / "v", VKN, "2024-06")
    broken.vkn_mismatch(m1, "1111111111")
    m2 = write_month(tmp_path / "p", VKN, "2024-07")
    broken.period_mismatch(m2, "2024-08")
    code, data = _verify(edefter, tmp_path)
    assert code == 1
    assert "identifier-mismatch" in _codes(_only_set(data, "1111111111"))
    assert "period-mismatch" in _codes(_only_set(data, VKN, "2024-08"))


def test_ledger_edited_after_signing(tmp_path, edefter):
    m = write_month(tmp_path, VKN, "2024-01", parts=2)
    (edited,) = broken.edit_after_signing(m, "Y", 2)
    code, data = _verify(edefter, tmp_path)
    s = _only_set(data)
    assert code == 1
    bad = [p for p in s["problems"] if p["code"] == "signature-invalid"]
    assert [Path(p["path"]).name for p in bad] == [edited.name]
    assert "değiştirilmiş" in bad[0]["message"]


@pytest.mark.parametrize("damage,code", [(broken.truncate, "malformed-xml"), (broken.empty, "empty-file")])
def test_truncated_and_empty(tmp_path, edefter, damage, code):
    m = write_month(tmp_path, VKN, "2024-01")
    damage(m, "K")
    rc, data = _verify(edefter, tmp_path)
    s = _only_set(data)
    assert rc == 1 and code in _codes(s)


def test_xxe_canary_never_read(tmp_path, edefter):
    canary = tmp_path / "canary.txt"
    secret = "KANARYA-7f3a9c-GIZLI"
    canary.write_text(secret)
    m = write_month(tmp_path / "ay", VKN, "2024-01")
    broken.xxe(m, canary, "Y")
    for cmd in ("scan", "verify"):
        for extra in ((), ("--json",)):
            proc = edefter(cmd, tmp_path / "ay", *extra)
            assert secret not in proc.stdout and secret not in proc.stderr
    code, data = _verify(edefter, tmp_path / "ay")
    assert code == 1 and "unsafe-xml" in _codes(_only_set(data))


def test_entity_bomb_is_refused_unexpanded(tmp_path, edefter):
    # refused as unsafe before any expansion (an expanding parser would run out of memory or hit
    # run_edefter's time-out, which fails the test; nothing here is timed)
    m = write_month(tmp_path, VKN, "2024-01")
    broken.entity_bomb(m, "Y")
    code, data = _verify(edefter, tmp_path, "--no-cache")
    assert code == 1 and "unsafe-xml" in _codes(_only_set(data))


def test_berat_of_another_ledger_wrong_size_and_missing_countersignature(tmp_path, edefter):
    m1 = write_month(tmp_path / "a", VKN, "2024-01")
    broken.berat_signature_mismatch(m1, "YB")
    m2 = write_month(tmp_path / "b", VKN, "2024-02")
    broken.wrong_measurable_quantity(m2, "KB")
    m3 = write_month(tmp_path / "c", VKN, "2024-03")
    broken.gib_without_countersignature(m3, "GIB-YB")
    code, data = _verify(edefter, tmp_path)
    assert code == 1
    assert "berat-mismatch" in _codes(_only_set(data, period="2024-01"))
    assert "size-mismatch" in _codes(_only_set(data, period="2024-02"))
    assert "countersignature-missing" in _codes(_only_set(data, period="2024-03"))


def test_schemas_option(tmp_path, edefter, shared_dir):
    write_month(tmp_path / "ay", VKN, "2024-01", branch="0003")
    code, data = _verify(edefter, tmp_path / "ay", "--schemas", shared_dir / "schemas" / "edefter")
    assert code == 0, data
    proc = edefter("verify", tmp_path / "ay", "--schemas", tmp_path / "yok")
    assert proc.returncode == 2 and "edefter.xsd" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_errors_exit_2_without_traceback(tmp_path, edefter):
    for args in (("scan", tmp_path / "yok"), ("verify", tmp_path / "yok"),
                 ("pack", tmp_path, "--vkn", "12", "--period", "2024-01", "--out", tmp_path),
                 ("pack", tmp_path, "--vkn", VKN, "--period", "2024-13", "--out", tmp_path),
                 ("bilinmeyen-komut",)):
        proc = edefter(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_cache_makes_a_second_look_free_and_notices_changes(tmp_path):
    from edefter_helper import cli
    from edefter_helper.engine import reader

    m = write_month(tmp_path, VKN, "2024-01")
    calls = []
    real = reader.read_full

    def counting(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    reader.read_full = counting
    try:
        assert cli.main(["verify", str(tmp_path)]) == 0
        first = len(calls)
        assert first == 7
        assert cli.main(["verify", str(tmp_path)]) == 0
        assert len(calls) == first  # nothing read again
        broken.edit_after_signing(m, "K")
        assert cli.main(["verify", str(tmp_path)]) == 1
        assert len(calls) == first + 1  # only the changed file
    finally:
        reader.read_full = real


# -- pack --------------------------------------------------------------------------------------

def test_pack_is_exact_and_deterministic(tmp_path, edefter):
    m = write_month(tmp_path / "ay", VKN, "2024-01", branch="0001", gib_zip=True)
    outs = []
    for n in (1, 2):
        proc = edefter("pack", tmp_path / "ay", "--vkn", VKN, "--period", "2024-01", "--branch", "0001",
                       "--out", tmp_path / f"out{n}", "--json", "--no-cache")
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout))
    a, b = (Path(o["path"]) for o in outs)
    assert a.name == f"{VKN}-202401-0001.zip"
    assert a.read_bytes() == b.read_bytes()
    assert outs[0]["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    with zipfile.ZipFile(a) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert sorted(names) == sorted([p.name for p in m] + ["manifest.json"])
        for p in m:
            assert zf.read(p.name) == p.read_bytes()  # exact bytes, original name
        manifest = json.loads(zf.read("manifest.json"))
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in m}
    assert (manifest["vkn"], manifest["branch"], manifest["period"]) == (VKN, "0001", "2024-01")


def test_pack_without_branch_is_0000_and_plain_output(tmp_path, edefter):
    write_month(tmp_path / "ay", VKN, "2024-02")
    proc = edefter("pack", tmp_path / "ay", "--vkn", VKN, "--period", "2024-02", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.splitlines()[0])
    assert path.name == f"{VKN}-202402-0000.zip" and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() in proc.stdout


def test_pack_refuses_invalid_set_with_reasons(tmp_path, edefter):
    m = write_month(tmp_path / "ay", VKN, "2024-01")
    broken.edit_after_signing(m, "Y")
    before = sorted(p.read_bytes() for p in (tmp_path / "ay").rglob("*"))
    proc = edefter("pack", tmp_path / "ay", "--vkn", VKN, "--period", "2024-01", "--out", tmp_path / "o")
    assert proc.returncode == 1
    assert "değiştirilmiş" in proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    # nothing was written into the ledger folder
    assert sorted(p.read_bytes() for p in (tmp_path / "ay").rglob("*")) == before


def test_pack_unknown_month(tmp_path, edefter):
    write_month(tmp_path / "ay", VKN, "2024-01", branch="0005")
    proc = edefter("pack", tmp_path / "ay", "--vkn", VKN, "--period", "2024-01", "--out", tmp_path / "o")
    assert proc.returncode == 1 and "0005" in proc.stderr  # tells which branches exist


def test_concurrent_scans_leave_the_gc_threshold_as_they_found_it(tmp_path):
    """Threads scanning at once (the server's verifiers) must find the process-wide collection
    threshold as it was (the scan once raised it; tests/test_engine_scale.py checks it is never set)."""
    import gc
    import threading

    from edefter_helper.engine.scan import scan
    from edefter_helper.samples import write_month as wm

    for i in range(3):
        wm(tmp_path / f"a{i}", "4810525635", f"2024-0{i + 1}")
    before = gc.get_threshold()
    barrier = threading.Barrier(4)

    def one():
        barrier.wait()
        for _ in range(5):
            scan([tmp_path])

    errors = []

    def guarded():
        try:
            one()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and gc.get_threshold() == before
