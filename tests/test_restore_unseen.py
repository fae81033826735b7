"""Geri Yükle under attack and bad luck: the restore and damage scenarios issue 9 is checked with.

Every scenario uses real parts: sample months on disk, a real SQLite journal, the real storage server on
loopback, real folder targets, the İzibiz fake (the fake the existing restore tests use). The command line
runs in this process (cli.main) where the test needs the in-memory keyring, otherwise as a subprocess.
"""

from __future__ import annotations

import hashlib
import html.parser
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from edefter_helper import actions, cli, credentials, restore, server
from edefter_helper import status as S
from edefter_helper.engine.model import MonthKey
from edefter_helper.samples import write_month
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook

VKN, VKN_B = "4810525635", "7420300220"

pytest_plugins = ("tests.s3_server",)  # the real S3 (Ceph RGW) for the s3 Hedef's restore; skipped without it


# --- helpers ---------------------------------------------------------------------------------------

def _digests(folder: Path) -> dict[str, str]:
    """name -> sha256 of every ledger file under `folder` (xml and GİB's zips)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in (".xml", ".zip")}


def _office(tmp_path, kind, address, *, user="ali", firms=None, branch_row=False, periods=("2024-01", "2024-02"),
            branch_month=True, name="Anadolu Gıda"):
    """Ledgers on disk for VKN (and its branch 0003), a workbook naming them; returns (ledgers, digests, wb)."""
    ledgers = tmp_path / "defter"
    for p in periods:
        write_month(ledgers / VKN / p, VKN, p)
    if branch_month:
        write_month(ledgers / VKN / "sube", VKN, "2024-01", branch="0003", branch_in_name=True)
    rows = [{"name": name, "vkn": VKN, "folder": str(ledgers / VKN), "target": "Yedek", "user": user}]
    if branch_row:
        rows.append({"name": name + " Şube", "vkn": VKN, "branch": "0003", "folder": str(ledgers / VKN),
                     "target": "Yedek", "user": user})
    for extra in firms or []:
        write_month(ledgers / extra["vkn"] / "2024-01", extra["vkn"], "2024-01")
        rows.append({"folder": str(ledgers / extra["vkn"]), "target": "Yedek", "user": user, **extra})
    original = _digests(ledgers)
    wb = tmp_path / "kontrol.xlsm"
    assert cli.main(["workbook", "new", str(wb)]) == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, rows)
    book.write_rows(L.TARGETS, [{"name": "Yedek", "kind": kind, "address": address}])
    book.save()
    return ledgers, original, wb


def _opts(journal):
    return actions.Options(journal=journal, retry_backoff=0.01, wait=20, poll=0.1)


def _backup(wb, journal, expected):
    summary = actions.backup(FileBook(wb), options=_opts(journal))
    assert summary.count(S.BACKED_UP) == expected, summary.results
    return summary


def _cli(capsys, *args):
    """The real command line in this process (it sees the test's in-memory keyring)."""
    capsys.readouterr()  # what came before is not this command's output
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "beklenmeyen hata" not in err, err
    return code, out, err


def _verify_ok(out: Path, edefter):
    proc = edefter("verify", out, "--json", "--no-cache")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    sets = json.loads(proc.stdout)["sets"]
    assert sets and all(s["valid"] for s in sets)
    return sets


def _restored(out: Path) -> dict[str, str]:
    return _digests(out)


def _month_dir(out: Path, vkn: str, period: str, branch: str | None = None) -> Path:
    year, month = period.split("-")
    base = out / vkn / branch if branch else out / vkn
    return base / f"01.01.{year}-31.12.{year}" / month


def _by_key(summary):
    return {(r.key.vkn, r.key.branch, r.key.period): r for r in summary.results}


def _rewrite(package: Path, *, members=None, manifest=None, extra=()):
    """Rewrite a stored package: members (name -> bytes), the manifest (a dict) and extra raw members
    [(name, bytes)] added as they are (duplicate names, '../', absolute, backslashes)."""
    with zipfile.ZipFile(package) as zf:
        old_manifest = json.loads(zf.read("manifest.json"))
        old = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    members = old if members is None else members
    manifest = old_manifest if manifest is None else manifest
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in members.items():
            zf.writestr(n, b)
        for n, b in extra:
            zi = zipfile.ZipInfo("x")
            zi.filename = n  # as given: ZipInfo would turn a backslash into a slash on Windows only
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, b)
        zf.writestr("manifest.json", json.dumps(manifest))
    package.write_bytes(buf.getvalue())
    return old_manifest, old


def _folder_office(tmp_path, edefter=None, **kw):
    nas = tmp_path / "NAS"
    nas.mkdir()
    ledgers, original, wb = _office(tmp_path, "klasör", str(nas), **kw)
    journal = tmp_path / "j.sqlite3"
    _backup(wb, journal, sum(1 for _ in set(_month_keys(ledgers))))
    return nas, ledgers, original, wb, journal


def _month_keys(ledgers: Path):
    from edefter_helper.engine.names import parse_name

    for p in ledgers.rglob("*.xml"):
        n = parse_name(p.name)
        if n is not None:
            yield (n.vkn, n.period, n.branch or ("0003" if "sube" in str(p) else "0000"))


class _Html(html.parser.HTMLParser):
    """Collects the text and tags of the report: a well-formed, script-free HTML document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _report(out: Path) -> tuple[str, str, list[str]]:
    raw = (out / "ibraz-raporu.html").read_text(encoding="utf-8")
    p = _Html()
    p.feed(raw)
    p.close()
    return raw, " ".join(" ".join(p.text).split()), p.tags


# --- the month's local files are gone; the journal does not know the months ------------------------


def _lost_then_restored(tmp_path, wb, ledgers):
    """The ledgers gone, January restored on another PC (a fresh journal, the target as the source)."""
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    return out, restore.restore(FileBook(wb), out=out, options=_opts(tmp_path / "pc2.sqlite3"),
                                discover=[MonthKey(VKN, "0000", "2024-01")])

def test_fresh_journal_from_range_restores_only_the_range_from_a_folder_target(tmp_path, edefter):
    """Another PC made the backup (this journal is empty) and the disk is gone: --from/--to asks the
    target; months outside the range are not fetched, the ones inside come back verified."""
    _nas, ledgers, original, wb, _ = _folder_office(tmp_path, branch_row=True,
                                                   periods=("2023-12", "2024-01", "2024-02"))
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3", "--firm", VKN,
                   "--from", "2024-01", "--to", "2024-01", "--out", out, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    got = {(m["branch"], m["period"]) for m in data["months"]}
    assert got == {("0000", "2024-01"), ("0003", "2024-01")}, got
    assert all(m["ok"] for m in data["months"])
    assert not _month_dir(out, VKN, "2023-12").exists() and not _month_dir(out, VKN, "2024-02").exists()
    restored = _restored(out)
    assert restored and all(original[n] == h for n, h in restored.items())
    assert all("202401" in n for n in restored)
    assert (_month_dir(out, VKN, "2024-01", "0003")).is_dir()
    _verify_ok(out, edefter)
    _, text, _ = _report(out)
    assert "Ocak 2024" in text and "Aralık 2023" not in text


def test_fresh_journal_finds_a_branch_month_firmalar_does_not_name(tmp_path, edefter):
    _nas, ledgers, original, wb, _ = _folder_office(tmp_path, periods=("2024-01",))
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3", "--firm", VKN,
                   "--from", "2024-01", "--to", "2024-01", "--out", out, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _restored(out) == original  # the branch 0003 month too


def test_fresh_journal_finds_a_branch_month_on_the_storage_server(tmp_path, memory_keyring, capsys):
    """The same on the real storage server (its month listing): the Firmalar row without a Şube No covers
    the branch, whose month comes back into VKN/0003/ although this computer's journal knows nothing."""
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data) as srv:
        ledgers, original, wb = _office(tmp_path, "http", srv.url, periods=("2024-01",))
        _backup(wb, tmp_path / "pc1.sqlite3", 2)
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3",
                                 "--firm", VKN, "--from", "2024-01", "--to", "2024-01", "--out", out, "--json")
    assert code == 0, stdout + err
    assert _restored(out) == original
    assert (out / VKN / "0003").is_dir()


def test_all_firms_from_the_storage_server_fresh_journal_via_cli(tmp_path, edefter, memory_keyring, capsys):
    """Two firms on the real storage server, disk and journal gone: `restore --all --from` brings every
    month back byte for byte, `edefter verify OUT` exits 0, --json is valid JSON, the report lists
    the target's receipt for each month although this journal knows none."""
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN, VKN_B])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data) as srv:
        ledgers, original, wb = _office(tmp_path, "http", srv.url, branch_row=True,
                                        firms=[{"name": "Ege & <b>Kimya</b>", "vkn": VKN_B}])
        _backup(wb, tmp_path / "pc1.sqlite3", 4)
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3",
                                 "--all", "--from", "2023-11", "--to", "2024-03", "--out", out, "--json")
    assert code == 0, stdout + err
    doc = json.loads(stdout)
    assert len(doc["months"]) == 4 and all(m["ok"] for m in doc["months"])
    assert _restored(out) == original
    assert _month_dir(out, VKN_B, "2024-01").is_dir()
    _verify_ok(out, edefter)
    raw, _text, tags = _report(out)
    assert "script" not in tags and "<b>Kimya" not in raw and "Ege &amp; &lt;b&gt;Kimya&lt;/b&gt;" in raw
    # where and when the copy was confirmed, and the receipt: from the target itself on a fresh journal
    receipts = _server_receipts(data)
    assert receipts and all(r in raw for r in receipts), receipts


def _server_receipts(data: Path) -> list[str]:
    """The receipts the storage server gave, read from its own index."""
    import sqlite3

    found = []
    for db in data.rglob("*.sqlite3"):
        con = sqlite3.connect(db)
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for t in tables:
                cols = [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
                if "receipt" in cols:
                    found += [r[0] for r in con.execute(f"SELECT receipt FROM {t}") if r[0]]
        finally:
            con.close()
    return found


def test_izibiz_fresh_journal_from_range(tmp_path, edefter, memory_keyring, capsys):
    from tests.fakes.izibiz_server import FakeIzibiz, FakeIzibizServer

    credentials.set_password("Yedek", "ali@firma", "doğru-şifre")
    with FakeIzibizServer(FakeIzibiz(root=tmp_path / "izibiz")) as fake:
        ledgers, original, wb = _office(tmp_path, "izibiz", fake.url, user="ali@firma", branch_month=False)
        _backup(wb, tmp_path / "pc1.sqlite3", 2)
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3",
                                 "--firm", VKN, "--from", "2024-02", "--out", out, "--json")
    assert code == 0, stdout + err
    doc = json.loads(stdout)
    assert [m["period"] for m in doc["months"]] == ["2024-02"] and doc["months"][0]["ok"]
    assert _restored(out) == {n: h for n, h in original.items() if "202402" in n}
    _verify_ok(out, edefter)


# --- the destination -------------------------------------------------------------------------------

def _refused(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "beklenmeyen" not in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_a_destination_that_is_a_file_or_below_a_file_is_refused(tmp_path, edefter):
    _nas, _ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    a_file = tmp_path / "rapor.txt"
    a_file.write_text("kullanıcının dosyası", encoding="utf-8")
    for out in (a_file, a_file / "alt"):
        proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out)
        _refused(proc, str(a_file))
    assert a_file.read_text(encoding="utf-8") == "kullanıcının dosyası"


def test_a_destination_inside_a_ledger_folder_is_refused(tmp_path, edefter):
    """Nothing is ever written into a ledger folder: restored copies there would be taken for the
    firm's own files by the next Tara (a month twice)."""
    _nas, ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    before = sorted(p.relative_to(ledgers) for p in ledgers.rglob("*"))
    for out in (ledgers / VKN / "geri", ledgers / VKN, ledgers):
        for extra in ((), ("--into-existing",)):
            proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, *extra)
            # a non-empty ledger folder may be refused for that first; an empty one only as a ledger folder
            _refused(proc, *(() if out.exists() and not extra else ("e-Defter klasör",)))
            assert "e-Defter klasör" in proc.stderr or "boş değil" in proc.stderr
    assert sorted(p.relative_to(ledgers) for p in ledgers.rglob("*")) == before


def test_a_destination_that_is_a_symlink(tmp_path, edefter):
    """A link to an empty folder is that folder; a link into a ledger folder is refused like the folder;
    a dangling link is a clear Turkish error, never a traceback."""
    if not hasattr(os, "symlink"):
        pytest.skip("no symlinks")
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    real = tmp_path / "gercek"
    real.mkdir()
    link = tmp_path / "baglanti"
    try:
        link.symlink_to(real, target_is_directory=True)
    except OSError:
        pytest.skip("symlinks not allowed here")
    into_ledgers = tmp_path / "defter-baglanti"
    into_ledgers.symlink_to(ledgers / VKN, target_is_directory=True)
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", into_ledgers,
                   "--into-existing")
    _refused(proc, "e-Defter klasör")
    dangling = tmp_path / "kopuk"
    dangling.symlink_to(tmp_path / "yok-boyle-bir-yer", target_is_directory=True)
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", dangling)
    _refused(proc, str(dangling))
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", link, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _restored(real) == {n: h for n, h in original.items() if "202401" in n}
    assert link.is_symlink()  # the link itself is left as it was


def test_into_existing_never_replaces_other_bytes_nor_the_users_own_report(tmp_path, edefter):
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    folder = _month_dir(out, VKN, "2024-01")
    folder.mkdir(parents=True)
    victim_name = next(n for n in original if n.endswith("-Y-000000.xml"))
    (folder / victim_name).write_bytes(b"kullanicinin kendi dosyasi")
    (out / "ibraz-raporu.html").write_text("<p>geçen yılın müfettiş raporu</p>", encoding="utf-8")
    (out / "notlar.txt").write_text("notlar", encoding="utf-8")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out)
    _refused(proc, "boş değil", "--into-existing")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out,
                   "--into-existing", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert (folder / victim_name).read_bytes() == b"kullanicinin kendi dosyasi"
    assert (out / "ibraz-raporu.html").read_text(encoding="utf-8") == "<p>geçen yılın müfettiş raporu</p>"
    assert (out / "notlar.txt").read_text(encoding="utf-8") == "notlar"
    (month,) = doc["months"]
    assert not month["ok"] and any(victim_name in t and "üzerine yazılmadı" in t for t in month["missing"])
    # every other file came back
    assert {n for n in _restored(out)} == set(original)
    report = Path(doc["report"])
    assert report.parent == out and report.name != "ibraz-raporu.html" and report.is_file()
    _raw, text, _ = _report_at(report)
    assert victim_name in text and "üzerine yazılmadı" in text
    assert not list(out.rglob("*.part"))


def _report_at(path: Path):
    raw = path.read_text(encoding="utf-8")
    p = _Html()
    p.feed(raw)
    p.close()
    return raw, " ".join(" ".join(p.text).split()), p.tags


# --- hostile or wrong packages on the target -------------------------------------------------------

def _zip_of(nas: Path, vkn: str, period: str, branch: str = "0000") -> Path:
    return nas / vkn / f"{vkn}-{period.replace('-', '')}-{branch}.zip"


def _serve_instead(nas: Path, asked: Path, served: Path) -> None:
    """The target holds `served`'s package (and its sidecar) under the name of `asked`."""
    shutil.copyfile(served, asked)
    sidecar = Path(str(served) + ".json")
    if sidecar.exists():
        shutil.copyfile(sidecar, Path(str(asked) + ".json"))


@pytest.mark.parametrize("served", ["another month", "the branch", "another firm"])
def test_a_package_of_another_month_branch_or_firm_served_in_place_is_refused(tmp_path, served):
    """A fresh journal has no sha256 to compare with: the package's own manifest must say it is the month
    asked, and nothing of it is written."""
    nas, ledgers, _original, wb, _ = _folder_office(tmp_path, periods=("2024-01", "2024-02"),
                                                   firms=[{"name": "Ege Kimya", "vkn": VKN_B}])
    asked = _zip_of(nas, VKN, "2024-01")
    source = {"another month": _zip_of(nas, VKN, "2024-02"), "the branch": _zip_of(nas, VKN, "2024-01", "0003"),
              "another firm": _zip_of(nas, VKN_B, "2024-01")}[served]
    _serve_instead(nas, asked, source)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    key = MonthKey(VKN, "0000", "2024-01")
    summary = restore.restore(FileBook(wb), [key], out=out, discover=[key], options=_opts(tmp_path / "pc2.sqlite3"))
    (result,) = summary.results
    assert result.status == restore.NOT_RESTORED, result
    assert "başka" in result.message and "paket" in result.message, result.message
    assert not _month_dir(out, VKN, "2024-01").exists() or not any(_month_dir(out, VKN, "2024-01").iterdir())
    assert _restored(out) == {}
    _, text, _ = _report(out)
    assert "Geri yüklenemeyenler" in text


def test_manifest_and_zip_that_disagree_are_named_and_nothing_unlisted_is_written(tmp_path, edefter):
    nas, ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01", "2024-02"))
    # 2024-01: the manifest lists a file the zip does not hold; the zip holds one the manifest does not
    p1 = _zip_of(nas, VKN, "2024-01")
    with zipfile.ZipFile(p1) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    gone = next(n for n in members if n.endswith("-K-000000.xml"))
    stowaway = f"{VKN}-202401-Y-000009.xml"
    members_1 = {n: b for n, b in members.items() if n != gone} | {stowaway: b"<kacak/>"}
    _rewrite(p1, members=members_1)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    key = MonthKey(VKN, "0000", "2024-01")
    summary = restore.restore(FileBook(wb), [key], out=out, options=_opts(journal))
    (result,) = summary.results
    assert result.status == restore.NOT_RESTORED
    assert gone in result.message and stowaway in result.message
    folder = _month_dir(out, VKN, "2024-01")
    assert not (folder / stowaway).exists() and not (folder / gone).exists()
    _, text, _ = _report(out)
    assert gone in text and stowaway in text
    assert summary.failed == 1


@pytest.mark.parametrize("evil", ["../../kacak.xml", "/tmp/kacak-mutlak.xml", "..\\..\\kacak.xml",
                                  f"{VKN}/../../kacak.xml", f"C:\\Windows\\{VKN}-202401-Y-000000.xml",
                                  f"sub/{VKN}-202401-Y-000000.xml"])
def test_member_names_that_climb_out_are_never_written(tmp_path, evil):
    """The name in the zip and in the manifest alike: nothing lands outside the month's folder, the
    month is not restored and the name is in the report."""
    nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    with zipfile.ZipFile(p1) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    body = b"<kacak/>"
    manifest["files"].append({"name": evil, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
    _rewrite(p1, manifest=manifest, extra=[(evil, body)])
    shutil.rmtree(ledgers)
    out = tmp_path / "a" / "b" / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    (result,) = summary.results
    assert result.status == restore.NOT_RESTORED
    assert not [p for p in tmp_path.rglob("*kacak*")] and not Path("/tmp/kacak-mutlak.xml").exists()
    written = [p for p in out.rglob("*") if p.is_file() and p.name != "ibraz-raporu.html"]
    assert all(p.parent == _month_dir(out, VKN, "2024-01") for p in written)
    assert {p.name for p in written} == set(original)  # the month's own files, as backed up
    _, text, _ = _report(out)
    assert evil.replace("\\", "\\\\") in text or evil in text


@pytest.mark.parametrize("good_first", [True, False])
def test_duplicate_member_names_fail_the_month(tmp_path, good_first):
    """Two members of one name: which one an unzip tool takes is up to the tool. The month is not called
    restored, whichever of the two matches the manifest."""
    nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    with zipfile.ZipFile(p1) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    twin = next(n for n in members if n.endswith("-Y-000000.xml"))
    rest = {n: b for n, b in members.items() if n != twin}
    pair = [(twin, members[twin]), (twin, b"<sahte/>")]
    if not good_first:
        pair.reverse()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is told to write
        _rewrite(p1, members=rest, extra=pair)
    out, summary = _lost_then_restored(tmp_path, wb, ledgers)
    (result,) = summary.results
    assert result.status == restore.NOT_RESTORED, result
    assert twin in result.message


@pytest.mark.parametrize("bogus_first", [True, False])
def test_a_manifest_naming_a_file_twice_fails_the_month(tmp_path, bogus_first):
    nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    with zipfile.ZipFile(p1) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    first = manifest["files"][0]
    bogus = {**first, "sha256": "0" * 64}
    manifest["files"] = ([bogus] if bogus_first else []) + manifest["files"] + ([] if bogus_first else [bogus])
    _rewrite(p1, manifest=manifest)
    out, summary = _lost_then_restored(tmp_path, wb, ledgers)
    (result,) = summary.results
    assert result.status == restore.NOT_RESTORED and first["name"] in result.message, result


def _january_package(tmp_path):
    """A folder office with January backed up: (ledgers, workbook, journal, the package, its manifest,
    its members other than the manifest), to rebuild the package with _rewrite."""
    nas, ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    with zipfile.ZipFile(p1) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    return ledgers, wb, journal, p1, manifest, members


def test_a_package_other_than_the_journals_names_the_files_that_differ_from_the_backup(tmp_path, edefter):
    """The target holds a package this computer did not back up (rebuilt: one ledger re-signed, the
    manifest made to fit). The month is not restored, and the report's 'Yedekle aynı' column compares
    each file with what the journal recorded at backup — ✗ for the changed one, ✓ for the others."""
    ledgers, wb, journal, p1, manifest, members = _january_package(tmp_path)
    changed = next(n for n in members if n.endswith("-Y-000000.xml"))
    members[changed] = members[changed].replace(b"</", b" </", 1)
    for f in manifest["files"]:
        if f["name"] == changed:
            f["size"], f["sha256"] = len(members[changed]), hashlib.sha256(members[changed]).hexdigest()
    _rewrite(p1, members=members, manifest=manifest)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (month,) = json.loads(proc.stdout)["months"]
    assert not month["ok"]
    same = {f["name"]: f["matches_backup"] for f in month["files"]}
    assert same[changed] is False, same
    assert all(v for n, v in same.items() if n != changed), same
    assert any("yedeklediği paket değil" in t for t in month["missing"])
    _raw, text, _ = _report(out)
    assert "✗ farklı" in text and changed in text



def _with_raw_manifest(package: Path, manifest: bytes) -> None:
    """Rewrite a stored package with these bytes as its manifest.json (not JSON-encoded here: as given)."""
    with zipfile.ZipFile(package) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in members.items():
            zf.writestr(n, b)
        zf.writestr("manifest.json", manifest)
    package.write_bytes(buf.getvalue())

def _manifest_bytes(p: Path) -> bytes:
    with zipfile.ZipFile(p) as zf:
        return zf.read("manifest.json")


HOSTILE_MANIFESTS = {
    "size 1e400": lambda m: m.replace(b'"size": ', b'"size": 1e400, "x": ', 1),
    "size negative": lambda m: m.replace(b'"size": ', b'"size": -1, "x": ', 1),
    "size text": lambda m: m.replace(b'"size": ', b'"size": "12", "x": ', 1),
    "sha not hex": lambda m: m.replace(b'"sha256": "', b'"sha256": "zz', 1),
    "files a dict": lambda m: b'{"files": {"a": 1}}',
    "files entries numbers": lambda m: b'{"files": [1, 2]}',
    "not an object": lambda m: b'[1, 2, 3]',
    "nested deep": lambda m: b"[" * 100_000 + b"]" * 100_000,
    "not json": lambda m: b"\xff\xfe<html>",
    "empty list": lambda m: b'{"files": []}',
    "name not text": lambda m: m.replace(b'"name": ', b'"name": 5, "x": ', 1),
}


@pytest.mark.parametrize("damage", sorted(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_fails_its_month_only(tmp_path, damage):
    nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01", "2024-02"),
                                                         branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    _with_raw_manifest(p1, HOSTILE_MANIFESTS[damage](_manifest_bytes(p1)))
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    keys = [MonthKey(VKN, "0000", p) for p in ("2024-01", "2024-02")]
    summary = restore.restore(FileBook(wb), out=out, options=_opts(tmp_path / "pc2.sqlite3"), discover=keys)
    by = _by_key(summary)
    bad = by[(VKN, "0000", "2024-01")]
    assert bad.status == restore.NOT_RESTORED and "içerik listesi" in bad.message, bad
    assert by[(VKN, "0000", "2024-02")].status == restore.RESTORED
    assert not any("202401" in n for n in _restored(out))


def test_two_manifests_or_a_manifest_bomb_are_refused(tmp_path):
    nas, ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01", "2024-02"),
                                                         branch_month=False)
    p1, p2 = _zip_of(nas, VKN, "2024-01"), _zip_of(nas, VKN, "2024-02")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _rewrite(p1, extra=[("manifest.json", _manifest_bytes(p1))])
    _with_raw_manifest(p2, b" " * (64 * 1024 * 1024) + _manifest_bytes(p2))  # 64 MB of blanks
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    assert summary.count(restore.NOT_RESTORED) == 2 and summary.count(restore.RESTORED) == 0, summary.results
    assert all("manifest.json" in r.message for r in summary.results), summary.results
    assert _restored(out) == {}


# --- interrupted, rerun ----------------------------------------------------------------------------

def test_an_interrupted_restore_leaves_no_half_file_and_a_rerun_completes_it(tmp_path, edefter, monkeypatch):
    """Ctrl+C (or a crash) in the middle of a month: every file in the destination is whole and the
    backed-up bytes, nothing temporary is left; the same command with --into-existing finishes the job,
    and `edefter verify OUT` exits 0."""
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01", "2024-02"))
    shutil.rmtree(ledgers)
    real = restore._member_chunks
    seen = []

    def interrupted(zf, info):
        seen.append(info.filename)
        for i, chunk in enumerate(real(zf, info)):
            if len(seen) == 10 and i == 0:  # the tenth file, after its first bytes are written
                yield chunk[: len(chunk) // 2]
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(restore, "_member_chunks", interrupted)
    out = tmp_path / "geri"
    with pytest.raises(KeyboardInterrupt):
        restore.restore(FileBook(wb), out=out, options=actions.Options(journal=journal, parallel=1))
    monkeypatch.setattr(restore, "_member_chunks", real)
    from edefter_helper.journal import Journal

    j = Journal(journal)
    try:
        assert j.open_attempts() == []  # nothing left 'under way' for Durumu Yenile to count
    finally:
        j.close()
    leftovers = [p for p in out.rglob("*") if p.is_file()]
    assert leftovers and not [p for p in leftovers if p.name.endswith(".part") or p.name.startswith(".")]
    for p in leftovers:  # whatever is there is whole
        assert original[p.name] == hashlib.sha256(p.read_bytes()).hexdigest(), p
    assert len(leftovers) < len(original)
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out)
    _refused(proc, "boş değil")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--into-existing",
                   "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(m["ok"] for m in json.loads(proc.stdout)["months"])
    assert _restored(out) == original
    _verify_ok(out, edefter)


def test_a_rerun_over_a_killed_restores_temporary_files(tmp_path, edefter):
    """A restore killed outright (power cut) leaves its temporary files: a rerun removes its own
    leftovers ('.geri-*.part') from the months it restores, and the destination verifies clean."""
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    folder = _month_dir(out, VKN, "2024-01")
    folder.mkdir(parents=True)
    name = min(original)
    (folder / ".geri-abc123.part").write_bytes(b"<yar")  # what a killed run leaves
    (folder / "kullanici.part").write_bytes(b"kullanicinin")  # not ours: stays
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--into-existing",
                   "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (folder / ".geri-abc123.part").exists()
    assert (folder / "kullanici.part").read_bytes() == b"kullanicinin"
    assert _restored(out) == original and name in _restored(out)
    _verify_ok(out, edefter)


def test_a_part_file_a_running_restore_holds_is_not_a_leftover(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    busy, stale = tmp_path / ".geri-busy.part", tmp_path / ".geri-stale.part"
    busy.write_bytes(b"yaziliyor")
    stale.write_bytes(b"yarim")
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        restore._clean_leftovers(tmp_path)
        assert busy.exists() and not stale.exists()


# --- the target goes away --------------------------------------------------------------------------

def test_the_storage_server_unreachable_mid_way(tmp_path, edefter, memory_keyring, capsys, monkeypatch):
    """The server answers for the first month, then is gone: that month is restored and verified, the
    others are named with the reason, the report is written, the exit is 1 — no traceback."""
    from edefter_helper.targets.http import HttpTarget

    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    srv = server.start_in_thread(data)
    try:
        ledgers, original, wb = _office(tmp_path, "http", srv.url, branch_row=True)
        journal = tmp_path / "j.sqlite3"
        _backup(wb, journal, 3)
        shutil.rmtree(ledgers)
        real = HttpTarget.fetch

        def fetch_then_gone(self, key, dest):
            got = real(self, key, dest)
            srv.stop()  # the server goes down after the first package is out
            return got

        monkeypatch.setattr(HttpTarget, "fetch", fetch_then_gone)
        out = tmp_path / "geri"
        summary = restore.restore(FileBook(wb), out=out, options=actions.Options(journal=journal, parallel=1,
                                                                                 retry_backoff=0.01))
        from edefter_helper import commands

        capsys.readouterr()
        code = commands.render_summary(summary, as_json=True)  # what the CLI prints and returns
        stdout, err = capsys.readouterr()
    finally:
        srv.stop()
    assert code == 1, stdout + err
    doc = json.loads(stdout)
    ok = [m for m in doc["months"] if m["ok"]]
    assert len(ok) == 1 and len(doc["months"]) == 3, doc["months"]
    failed = [m for m in doc["months"] if not m["ok"]]
    assert all("ulaşılamıyor" in " ".join(m["missing"]) for m in failed), failed
    # the first month nobody answered for was retried; the next is not tried again and again
    assert sum("denenmedi" in " ".join(m["missing"]) for m in failed) == 1, failed
    assert len({(r["vkn"], r["branch"], r["period"]) for r in doc["results"]}) == len(doc["results"]) == 3
    first = ok[0]
    restored = _restored(out)
    assert restored and all(original[n] == h for n, h in restored.items())
    assert len(restored) == len(first["files"])
    _, text, _ = _report(out)
    assert text.count("Geri yüklenemeyenler") >= 2


def test_a_folder_target_that_vanishes_and_a_server_nobody_answers(tmp_path, edefter, monkeypatch):
    """Two firms: one's NAS is unplugged after its first month, the other's server address answers
    nobody. Each month says why; the CLI exits 1 with a report and no traceback."""
    import socket

    from edefter_helper.targets.folder import FolderTarget

    nas = tmp_path / "NAS"
    nas.mkdir()
    journal = tmp_path / "j.sqlite3"
    ledgers, _original, wb = _office(tmp_path, "klasör", str(nas), periods=("2024-01", "2024-02"),
                                     branch_month=False)
    _backup(wb, journal, 2)
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    book = FileBook(wb)
    rows = book.read_rows(L.FIRMS)
    rows.append({"name": "Ege Kimya", "vkn": VKN_B, "folder": str(tmp_path / "yok"), "target": "Kapalı",
                 "user": "ali"})
    book.write_rows(L.FIRMS, rows)
    book.write_rows(L.TARGETS, [{"name": "Yedek", "kind": "klasör", "address": str(nas)},
                                {"name": "Kapalı", "kind": "http", "address": dead}])
    book.save()
    shutil.rmtree(ledgers)
    real = FolderTarget.fetch

    def fetch_then_unplugged(self, key, dest):
        got = real(self, key, dest)
        shutil.rmtree(nas)
        return got

    monkeypatch.setattr(FolderTarget, "fetch", fetch_then_unplugged)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=actions.Options(journal=journal, parallel=1,
                                                                             retry_backoff=0.01),
                              discover=[MonthKey(VKN_B, "0000", "2024-01")])
    by = _by_key(summary)
    assert by[(VKN, "0000", "2024-01")].status == restore.RESTORED, summary.results
    assert by[(VKN, "0000", "2024-02")].status == restore.NOT_RESTORED
    assert "klasör" in by[(VKN, "0000", "2024-02")].message.lower()
    assert by[(VKN_B, "0000", "2024-01")].status == restore.NOT_RESTORED, summary.results
    assert (out / "ibraz-raporu.html").is_file()


def test_nobody_answers_for_a_fresh_journal_is_not_a_success(tmp_path, memory_keyring, capsys):
    """After a loss, with --from, the months are only asked about: a server nobody answers must not give
    '0 dönem geri yüklendi' and exit 0 — it says how many months could not be asked, and exits 1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    credentials.set_password("Yedek", "ali", "pw-1")
    ledgers, _original, wb = _office(tmp_path, "http", dead, branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    keys = [MonthKey(VKN, "0000", p) for p in restore.periods_between("2023-10", "2024-03")]
    summary = restore.restore(FileBook(wb), out=out, discover=keys,
                              options=actions.Options(journal=tmp_path / "j.sqlite3", parallel=1, retry_backoff=0.01))
    from edefter_helper import commands

    capsys.readouterr()
    code = commands.render_summary(summary, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert len(doc["results"]) == 1 and doc["results"][0]["status"] == restore.NOT_RESTORED  # the one asked
    assert any("5 dönem bu hedefe sorulamadı" in n and "ulaşılamıyor" in n for n in doc["notes"]), doc["notes"]
    _, text, _ = _report(out)
    assert "5 dönem bu hedefe sorulamadı" in text  # the report an inspector gets says it too


def test_a_missing_password_is_said_once_and_every_month_is_named_once(tmp_path, memory_keyring, capsys):
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data) as srv:
        ledgers, _original, wb = _office(tmp_path, "http", srv.url)
        journal = tmp_path / "j.sqlite3"
        _backup(wb, journal, 3)
        shutil.rmtree(ledgers)
        credentials.delete_password("Yedek", "ali")
        out = tmp_path / "geri"
        code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", journal, "--all", "--out", out,
                                 "--json")
    assert code == 1, stdout + err
    doc = json.loads(stdout)
    assert [r["status"] for r in doc["results"]] == [restore.NOT_RESTORED] * 3, doc["results"]
    assert all(not m["ok"] and m["missing"] for m in doc["months"])
    assert _restored(out) == {}


# --- the İbraz Raporu ------------------------------------------------------------------------------

EVIL_NAME = "<script>alert('x')</script> & Oğulları \u202eLTD"


def test_the_report_tells_an_inspector_everything_and_escapes_the_firm_name(tmp_path, edefter):
    nas = tmp_path / "NAS"
    nas.mkdir()
    ledgers, original, wb = _office(tmp_path, "klasör", str(nas), name=EVIL_NAME, branch_row=True)
    journal = tmp_path / "j.sqlite3"
    _backup(wb, journal, 3)
    sizes = {p.name: p.stat().st_size for p in ledgers.rglob("*.xml")}
    # the target lost one month: named in the report with the reason, in Turkish
    lost = _zip_of(nas, VKN, "2024-02")
    lost.unlink()
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    raw, text, tags = _report(out)
    assert "script" not in tags and "<script>" not in raw
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Oğulları [U+202E]LTD" in raw
    assert raw.startswith("<!DOCTYPE html>") and '<html lang="tr">' in raw and 'charset="utf-8"' in raw
    # per month: files, sizes, sha256
    for name, sha in original.items():
        if "202402" in name:
            continue
        assert name in text and sha in text
        assert f"{sizes[name]:,}".replace(",", ".") in text
    # where and when confirmed, with the receipt the folder target gave
    receipts = [json.loads(Path(str(p) + ".json").read_text("utf-8"))["reference"] for p in nas.rglob("*.zip")]
    assert len(receipts) == 2 and all(r in text for r in receipts)
    assert str(nas) in text
    assert "✓ Geçerli" in text and "Ocak 2024" in text and "Şubat 2024" in text
    # one row per copy, marked as the package restored; that package's sha256 is the one on the target
    jan = next(m for m in doc["months"] if (m["branch"], m["period"]) == ("0000", "2024-01"))
    held = hashlib.sha256(_zip_of(nas, VKN, "2024-01").read_bytes()).hexdigest()
    assert jan["package_sha256"] == held
    assert text.count(held) == 2 and "geri yüklenen paket" in text, text.count(held)  # header + one copy row
    # the lost month: said, in Turkish, with no English state word
    (lost_month,) = [m for m in doc["months"] if m["period"] == "2024-02"]
    sentence = " ".join(lost_month["missing"])
    assert "Hedefte" in sentence and "missing" not in sentence, sentence
    assert sentence.split("(")[0].strip() in text
    results = {(r["branch"], r["period"]): r for r in doc["results"]}
    assert results[("0000", "2024-02")]["status"] == restore.NOT_RESTORED
    assert "missing" not in results[("0000", "2024-02")]["message"]


def test_json_is_valid_and_complete_and_text_output_is_turkish(tmp_path, edefter):
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert doc["action"] == "Geri Yükle" and Path(doc["report"]).is_file() and Path(doc["out"]) == out
    (m,) = doc["months"]
    assert m["ok"] and m["folder"] == str(_month_dir(out, VKN, "2024-01"))
    assert {f["name"]: f["sha256"] for f in m["files"]} == original
    assert all(f["matches_backup"] for f in m["files"])
    assert all(f["size"] == (_month_dir(out, VKN, "2024-01") / f["name"]).stat().st_size for f in m["files"])
    out2 = tmp_path / "geri2"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out2)
    assert proc.returncode == 0 and "1 dönem geri yüklendi" in proc.stdout and "İbraz Raporu" in proc.stdout


@pytest.mark.parametrize("args,words", [
    (("--firm", "1111111111"), "Firmalar"),
    (("--firm", VKN, "--branch", "12"), "şube"),
    (("--all", "--to", "2024-01", "--from", "2024-02"), "sonra olamaz"),
    (("--all", "--from", "1999-01"), "Geçersiz dönem"),
])
def test_bad_input_is_a_turkish_usage_error(tmp_path, edefter, args, words):
    _nas, _ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    proc = edefter("restore", "--workbook", wb, "--journal", journal, *args, "--out", tmp_path / "o")
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_range_the_target_holds_nothing_of_is_said_not_reported_as_success(tmp_path, edefter):
    _nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3", "--firm", VKN,
                   "--from", "2020-01", "--to", "2020-06", "--out", out)
    _refused(proc, "hedefte bulunamadı", "6 dönem")
    assert not out.exists()


# --- links inside the destination, branches -----------------------------------------------------

def test_links_inside_the_destination_are_never_written_through(tmp_path, edefter):
    """--into-existing over a folder where the firm's folder is a link to somewhere else, and where a
    file's name is a link (dangling, or to a file elsewhere): nothing is written where they point."""
    if not hasattr(os, "symlink"):
        pytest.skip("no symlinks")
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01", "2024-02"),
                                                         branch_month=False)
    shutil.rmtree(ledgers)
    elsewhere = tmp_path / "baska-yer"
    elsewhere.mkdir()
    out = tmp_path / "geri"
    out.mkdir()
    try:
        (out / VKN).symlink_to(elsewhere, target_is_directory=True)
    except OSError:
        pytest.skip("symlinks not allowed here")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--into-existing",
                   "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert list(elsewhere.rglob("*")) == []
    doc = json.loads(proc.stdout)
    assert all(not m["ok"] and "bağlantı" in " ".join(m["missing"]) for m in doc["months"]), doc["months"]

    # a file name that is a link, dangling or to a file outside
    out2 = tmp_path / "geri2"
    folder = _month_dir(out2, VKN, "2024-01")
    folder.mkdir(parents=True)
    names = sorted(n for n in original if "202401" in n)
    outside = tmp_path / "disarida.xml"
    outside.write_bytes(b"disaridaki dosya")
    (folder / names[0]).symlink_to(tmp_path / "yok.xml")
    (folder / names[1]).symlink_to(outside)
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out2, "--into-existing",
                   "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert not (tmp_path / "yok.xml").exists() and outside.read_bytes() == b"disaridaki dosya"
    doc = json.loads(proc.stdout)
    jan = next(m for m in doc["months"] if m["period"] == "2024-01")
    said = " ".join(jan["missing"])
    assert names[0] in said and names[1] in said and "bağlantı" in said, said
    # the month's other files are still restored, and the other month entirely
    assert {f["name"] for f in jan["files"]} == set(names[2:])
    assert next(m for m in doc["months"] if m["period"] == "2024-02")["ok"]


def test_only_the_asked_branch_comes_back_into_its_branch_folder(tmp_path, edefter):
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_row=True)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--firm", VKN, "--branch", "0003",
                   "--out", out, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (m,) = json.loads(proc.stdout)["months"]
    assert m["branch"] == "0003" and m["folder"] == str(_month_dir(out, VKN, "2024-01", "0003"))
    assert set(_restored(out)) == {n for n in original if "0003" in n}
    assert not _month_dir(out, VKN, "2024-01").exists()
    _verify_ok(out, edefter)


def test_months_as_programs_write_them_come_back_whole(tmp_path, edefter):
    """Upper-case extensions, GİB's zipped approved berats, a ledger in several parts, a TCKN firm:
    every name and byte as backed up, and the tree verifies."""
    nas = tmp_path / "NAS"
    nas.mkdir()
    ledgers = tmp_path / "defter"
    tckn = "12345678901"
    write_month(ledgers / VKN / "a", VKN, "2024-03", upper_ext=True)
    write_month(ledgers / VKN / "b", VKN, "2024-04", gib_zip=True)
    write_month(ledgers / VKN / "c", VKN, "2024-05", parts=2)
    write_month(ledgers / tckn / "a", tckn, "2024-03")
    original = _digests(ledgers)
    wb = tmp_path / "kontrol.xlsm"
    assert cli.main(["workbook", "new", str(wb)]) == 0
    book = FileBook(wb)
    book.write_rows(L.FIRMS, [{"name": "Anadolu", "vkn": VKN, "folder": str(ledgers / VKN), "target": "Yedek"},
                              {"name": "Ayşe Yılmaz", "vkn": tckn, "folder": str(ledgers / tckn), "target": "Yedek"}])
    book.write_rows(L.TARGETS, [{"name": "Yedek", "kind": "klasör", "address": str(nas)}])
    book.save()
    journal = tmp_path / "j.sqlite3"
    _backup(wb, journal, 4)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _restored(out) == original
    assert any(n.endswith(".XML") for n in original) and any(n.endswith(".zip") for n in original)
    _verify_ok(out, edefter)


def test_a_file_where_the_firm_folder_should_be_is_named_in_turkish(tmp_path, edefter):
    _nas, ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    out.mkdir()
    (out / VKN).write_text("bir dosya", encoding="utf-8")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--into-existing",
                   "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    (m,) = json.loads(proc.stdout)["months"]
    said = " ".join(m["missing"])
    assert "yolda klasör yerine bir dosya var" in said and "Not a directory" not in said, said
    assert (out / VKN).read_text(encoding="utf-8") == "bir dosya"


def test_a_member_whose_size_is_not_the_manifests_is_not_written(tmp_path):
    nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    with zipfile.ZipFile(p1) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    victim = manifest["files"][0]
    victim["size"] += 1_000_000_000  # a bomb's promise: the manifest may not make room for it
    _rewrite(p1, manifest=manifest)
    out, summary = _lost_then_restored(tmp_path, wb, ledgers)
    (r,) = summary.results
    assert r.status == restore.NOT_RESTORED and victim["name"] in r.message and "boyut" in r.message
    assert not (_month_dir(out, VKN, "2024-01") / victim["name"]).exists()


def test_several_hedefs_a_damaged_first_copy_is_passed_over_and_source_picks_one(tmp_path, edefter):
    """3-2-1: a firm backed up to two folders. The first copy's package is damaged: the month comes back
    from the second, whole; --source names the copy to restore from."""
    nas1, nas2 = tmp_path / "NAS1", tmp_path / "NAS2"
    nas1.mkdir()
    nas2.mkdir()
    ledgers, original, wb = _office(tmp_path, "klasör", str(nas1), periods=("2024-01",), branch_month=False)
    book = FileBook(wb)
    rows = book.read_rows(L.FIRMS)
    rows[0]["target"], rows[0]["user"] = "Yedek; İkinci", ""
    book.write_rows(L.FIRMS, rows)
    book.write_rows(L.TARGETS, [{"name": "Yedek", "kind": "klasör", "address": str(nas1)},
                                {"name": "İkinci", "kind": "klasör", "address": str(nas2)}])
    book.save()
    journal = tmp_path / "j.sqlite3"
    summary = actions.backup(FileBook(wb), options=_opts(journal))
    assert summary.count(S.BACKED_UP) >= 1 and summary.failed == 0, summary.results
    assert _zip_of(nas1, VKN, "2024-01").is_file() and _zip_of(nas2, VKN, "2024-01").is_file()
    damaged = _zip_of(nas1, VKN, "2024-01")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 3] ^= 0x55
    damaged.write_bytes(bytes(data))
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (m,) = json.loads(proc.stdout)["months"]
    assert m["ok"] and str(nas2) in m["source"], m
    assert [p["source"] for p in m["passed_over"]] == [f"klasör {nas1}"]
    assert _restored(out) == original
    _verify_ok(out, edefter)
    _, text, _ = _report(out)
    assert "kopyası kullanılamadı" in text  # the inspector sees the first copy was not usable
    # another computer (no journal): one member of the first copy has other bytes than its manifest says.
    # Its other files are written, the month is completed from the second copy, byte for byte
    shutil.copyfile(_zip_of(nas2, VKN, "2024-01"), damaged)
    with zipfile.ZipFile(damaged) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    bad = next(n for n in members if n.endswith("-K-000000.xml"))
    members[bad] = members[bad].replace(b"<", b" <", 1)
    _rewrite(damaged, members=members)
    out3 = tmp_path / "geri3"
    key = MonthKey(VKN, "0000", "2024-01")
    summary = restore.restore(FileBook(wb), [key], out=out3, discover=[key], options=_opts(tmp_path / "pc2.sqlite3"))
    (r,) = summary.results
    assert r.status == restore.RESTORED, r
    assert _restored(out3) == original
    out2 = tmp_path / "geri2"
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--source", "Yedek", "--out", out2,
                   "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (m,) = json.loads(proc.stdout)["months"]
    assert not m["ok"] and str(nas1) in m["source"]


def test_a_report_that_cannot_be_written_is_said_and_fails_the_run(tmp_path, monkeypatch, capsys):
    import os as _os

    if not _os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name a file by its descriptor")
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    real = _os.fsync

    def failing(fd):
        if ".ibraz-raporu-" in _os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(_os, "fsync", failing)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    from edefter_helper import commands

    capsys.readouterr()
    code = commands.render_summary(summary, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["report"] is None
    assert any("İbraz Raporu yazılamadı: diskte yer kalmadı" in n for n in doc["notes"]), doc["notes"]
    assert _restored(out) == original and not list(out.glob(".ibraz-raporu-*"))


def test_a_destination_inside_a_folder_hedef_is_refused(tmp_path, edefter):
    nas, _ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    before = {p: p.read_bytes() for p in nas.rglob("*") if p.is_file()}
    for out in (nas / "geri", nas):
        proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--into-existing")
        _refused(proc, "yedek hedefinin klasörü")
    assert {p: p.read_bytes() for p in nas.rglob("*") if p.is_file()} == before


def test_a_foreign_ledger_file_in_the_month_folder_is_named(tmp_path, edefter):
    """--into-existing over a month folder holding a ledger part the backup never had: the folder is
    not the backed-up month, and the restore says which file is not from the backup."""
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    folder = _month_dir(out, VKN, "2024-01")
    folder.mkdir(parents=True)
    stranger = f"{VKN}-202401-Y-000001.xml"
    (folder / stranger).write_bytes(b"<eski/>")
    proc = edefter("restore", "--workbook", wb, "--journal", journal, "--all", "--out", out, "--into-existing",
                   "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (m,) = json.loads(proc.stdout)["months"]
    assert any(stranger in t and "bu yedeğe ait değil" in t for t in m["missing"]), m["missing"]
    assert (folder / stranger).read_bytes() == b"<eski/>"
    assert {f["name"] for f in m["files"]} == set(original)


def test_a_relative_destination_with_turkish_letters_and_spaces(tmp_path, edefter, monkeypatch, capsys):
    _nas, ledgers, original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    work = tmp_path / "çalışma"
    work.mkdir()
    monkeypatch.chdir(work)
    code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", journal, "--all",
                             "--out", "İbraz Paketi 2024", "--json")
    assert code == 0, stdout + err
    doc = json.loads(stdout)
    out = work / "İbraz Paketi 2024"
    assert _restored(out) == original
    assert (out / "ibraz-raporu.html").is_file() and Path(doc["report"]).resolve() == out / "ibraz-raporu.html"
    _verify_ok(out, edefter)


def test_a_fresh_journal_without_from_says_how_to_ask_the_target(tmp_path, edefter):
    _nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    proc = edefter("restore", "--workbook", wb, "--journal", tmp_path / "yeni.sqlite3", "--all", "--out", out)
    _refused(proc, "Geri yüklenecek dönem bulunamadı", "--from")
    assert not out.exists()


def test_a_rebuilt_package_without_a_backed_up_file_names_it(tmp_path):
    """The target's package is consistent in itself (manifest and zip agree) but lacks a file this
    computer backed up: the month is not restored and the missing file is named."""
    ledgers, wb, journal, p1, manifest, members = _january_package(tmp_path)
    dropped = next(n for n in members if n.endswith("-DR-000000.xml"))
    del members[dropped]
    manifest["files"] = [f for f in manifest["files"] if f["name"] != dropped]
    _rewrite(p1, members=members, manifest=manifest)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    (r,) = summary.results
    assert r.status == restore.NOT_RESTORED
    assert dropped in r.message and "günlükte kayıtlı" in r.message, r.message


@pytest.mark.parametrize("damage", ["deflate stream", "encrypted flag", "unknown method"])
def test_a_member_that_cannot_be_inflated_is_named_in_turkish(tmp_path, damage):
    nas, ledgers, _original, wb, _journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    p1 = _zip_of(nas, VKN, "2024-01")
    raw = bytearray(p1.read_bytes())
    with zipfile.ZipFile(p1) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("-K-000000.xml"))
    head = info.header_offset
    name_len, extra_len = int.from_bytes(raw[head + 26:head + 28], "little"), int.from_bytes(raw[head + 28:head + 30],
                                                                                             "little")
    data = head + 30 + name_len + extra_len
    if damage == "deflate stream":
        raw[data:data + 16] = b"\xff" * 16
    else:
        # the same change in the local header and in the central directory entry
        cd = raw.find(b"PK\x01\x02")
        while cd != -1:
            n = int.from_bytes(raw[cd + 28:cd + 30], "little")
            if raw[cd + 46:cd + 46 + n].decode() == info.filename:
                break
            cd = raw.find(b"PK\x01\x02", cd + 4)
        if damage == "encrypted flag":
            for at in (head + 6, cd + 8):
                raw[at] |= 0x01
        else:
            for at in (head + 8, cd + 10):
                raw[at:at + 2] = (99).to_bytes(2, "little")
    p1.write_bytes(bytes(raw))
    out, summary = _lost_then_restored(tmp_path, wb, ledgers)
    (r,) = summary.results
    assert r.status == restore.NOT_RESTORED and info.filename in r.message, r
    words = {"deflate stream": "sıkıştırılmış veri bozuk", "encrypted flag": "şifreli",
             "unknown method": "desteklenmeyen sıkıştırma"}[damage]
    assert words in r.message, r.message
    assert not (_month_dir(out, VKN, "2024-01") / info.filename).exists()


@pytest.mark.parametrize("damage", ["flipped", "deleted"])
def test_a_package_damaged_or_gone_on_the_servers_disk(tmp_path, memory_keyring, damage):
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data) as srv:
        ledgers, original, wb = _office(tmp_path, "http", srv.url, branch_month=False)
        journal = tmp_path / "j.sqlite3"
        _backup(wb, journal, 2)
        stored = [p for p in data.rglob("*") if p.is_file() and p.stat().st_size > 10_000
                  and zipfile.is_zipfile(p)]
        victim = next(p for p in stored if "202401" in p.name or _zip_period(p) == "2024-01")
        if damage == "flipped":
            raw = bytearray(victim.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            victim.write_bytes(bytes(raw))
        else:
            victim.unlink()
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        summary = restore.restore(FileBook(wb), out=out, options=_opts(journal))
    by = _by_key(summary)
    bad, good = by[(VKN, "0000", "2024-01")], by[(VKN, "0000", "2024-02")]
    assert bad.status == restore.NOT_RESTORED and bad.message, bad
    assert good.status == restore.RESTORED, good
    assert not _month_dir(out, VKN, "2024-01").exists() or not any(_month_dir(out, VKN, "2024-01").iterdir())
    assert _restored(out) == {n: h for n, h in original.items() if "202402" in n}


def _zip_period(p: Path) -> str:
    with zipfile.ZipFile(p) as zf:
        try:
            return json.loads(zf.read("manifest.json")).get("period", "")
        except KeyError:
            return ""


def test_a_month_the_target_still_processes_is_named_not_dropped(tmp_path, memory_keyring, capsys):
    """Another PC sent the month and the storage server has not confirmed it yet (accepted, not stored):
    a --from restore on this computer says so for that month, instead of 'nothing found'."""
    data = tmp_path / "sunucu"
    server.add_user(data, "ali", "pw-1", [VKN])
    credentials.set_password("Yedek", "ali", "pw-1")
    with server.start_in_thread(data, autoverify=False) as srv:
        ledgers, _original, wb = _office(tmp_path, "http", srv.url, periods=("2024-01",), branch_month=False)
        actions.backup(FileBook(wb), options=actions.Options(journal=tmp_path / "pc1.sqlite3", wait=0, poll=0.01,
                                                             retry_backoff=0.01))
        shutil.rmtree(ledgers)
        out = tmp_path / "geri"
        code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3",
                                 "--firm", VKN, "--from", "2024-01", "--to", "2024-02", "--out", out, "--json")
    assert code == 1, stdout + err
    doc = json.loads(stdout)
    (m,) = doc["months"]
    assert m["period"] == "2024-01" and not m["ok"]
    assert "onaylanmadı" in " ".join(m["missing"]), m["missing"]


def test_restore_from_an_s3_hedef_on_another_pc(tmp_path, edefter, memory_keyring, ceph_s3, capsys):
    """The fourth target kind: a real S3 server with Object Lock. Another PC backed up; this one has
    neither the files nor the journal: --from brings every month back, verified."""
    pytest.importorskip("boto3")
    bucket = ceph_s3.bucket()
    address = ceph_s3.address(bucket, "yedek", location="TR")
    credentials.set_password("Yedek", "TESTKEY", "TESTSECRET")
    ledgers, original, wb = _office(tmp_path, "s3", address, user="TESTKEY", branch_row=True)
    _backup(wb, tmp_path / "pc1.sqlite3", 3)
    shutil.rmtree(ledgers)
    out = tmp_path / "geri"
    code, stdout, err = _cli(capsys, "restore", "--workbook", wb, "--journal", tmp_path / "pc2.sqlite3", "--all",
                             "--from", "2024-01", "--to", "2024-02", "--out", out, "--json")
    assert code == 0, stdout + err
    doc = json.loads(stdout)
    assert len(doc["months"]) == 3 and all(m["ok"] for m in doc["months"])
    assert _restored(out) == original
    _verify_ok(out, edefter)


def test_report_notes_are_escaped():
    from datetime import datetime, timezone

    from edefter_helper import report

    text = report.render([], generated_at=datetime(2026, 1, 2, tzinfo=timezone.utc), tool_version="t",
                         notes=["<script>x</script> & 'Yedek' \u202e"])
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt; &amp; &#x27;Yedek&#x27; [U+202E]" in text
    assert "sorulamayanlar (1)" in text
    assert "sorulamayanlar" not in report.render([], generated_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
                                                 tool_version="t")


def test_a_destination_that_cannot_be_looked_at_is_a_turkish_error(tmp_path, monkeypatch):
    """A folder above --out the user may not enter (EACCES; tests run as root, so the refusal is staged at
    the one call that asks): a RestoreError in Turkish, nothing restored, never an OSError."""
    import errno
    import pathlib

    nas, ledgers, _original, wb, journal = _folder_office(tmp_path, periods=("2024-01",), branch_month=False)
    out = tmp_path / "kilitli" / "geri"
    real = pathlib.Path.exists

    def exists(self, *a, **kw):
        if self == out:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "exists", exists)
    with pytest.raises(restore.RestoreError) as err:
        restore.restore(FileBook(wb), out=out, options=_opts(journal))
    assert "Hedef klasöre bakılamadı" in str(err.value) and "erişim izni yok" in str(err.value)
