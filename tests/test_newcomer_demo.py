"""The demo runs again (issue 14): README's first line twice does not fail with "zaten var"; a folder
given twice is refused unless --force, which removes only the demo's own files; the demo's workbook and
output name the journal its statuses live in."""

from __future__ import annotations

from pathlib import Path

from edefter_helper import demo
from edefter_helper.workbook import layout as L
from edefter_helper.workbook.file import FileBook


def test_the_demo_runs_again(tmp_path, edefter, monkeypatch):
    base = tmp_path / "edefter-demo"
    proc = edefter("demo", base, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    journal = base / "gunluk.sqlite3"
    assert f"--journal {journal}" in proc.stdout
    log = FileBook(base / "kontrol.xlsm").read_rows(L.LOG)
    assert any(str(journal) in (r["message"] or "") for r in log)

    # the same folder again: said, with the way out, and nothing touched
    before = (base / "kontrol.xlsm").read_bytes()
    proc = edefter("demo", base)
    assert proc.returncode == 2 and "zaten var" in proc.stderr and "--force" in proc.stderr
    assert (base / "kontrol.xlsm").read_bytes() == before

    # README's line run twice in the same folder: the second demo goes beside the first
    monkeypatch.chdir(tmp_path)
    chosen = demo._choose_folder(None, force=False)
    assert chosen == tmp_path / "edefter-demo-2"

    # --force removes the demo's own files only
    mine = base / "notlarım.txt"
    mine.write_text("benim")
    assert demo._choose_folder(base, force=True) == base
    assert sorted(p.name for p in base.iterdir()) == ["notlarım.txt"]
    assert demo._choose_folder(None, force=False) == tmp_path / "edefter-demo"


def test_gitignore_ignores_what_the_demo_writes():
    text = (Path(__file__).resolve().parents[1] / ".gitignore").read_text()
    assert "edefter-demo/" in text and "edefter-demo-*/" in text
