"""The engine benchmarks run end to end at small sizes (bench/run.py --quick)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures process trees through /proc")
def test_quick_benchmarks_run_and_report_ratios(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    ratios = re.findall(r"^RATIO (.+?): .* = ([\d.]+)x$", out, re.M)
    names = {name for name, _ in ratios}
    assert {"verify/sha256sum", "verify-crlf/sha256sum", "verify-windows/sha256sum", "pack warm/zip",
            "pack cold/zip", "pure pack/zip", "pack size/zip size"} <= names
    assert any(n.startswith("scan warm/find") for n in names)
    assert all(float(v) > 0 for _, v in ratios)
    targets = re.findall(r"^TARGET .+ -> (MET|NOT MET)$", out, re.M)
    assert len(targets) == 10  # verify, verify-crlf, verify-windows: time + memory each; pack 2; scan 2
    assert "FAILED" not in out
    assert (tmp_path / "quick" / "results.md").read_text().count("|") > 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures process trees through /proc")
@pytest.mark.parametrize("script,expected,all_met", [
    ("backup_bench.py", "backup process/pack+check alone", False),
    ("workbook_bench.py", None, False),
    ("restore_bench.py", "restore/curl+unzip", False),
    # its targets are correctness, not speed: 0 findings on the unchanged tree, the control's changes found
    ("localcheck_bench.py", "check-local warm/find|wc (8 firms)", True),
    # runs end to end: the click returns, the background worker backs every month up, Durumu Yenile shows it
    ("button_bench.py", None, False),
    ("radar_bench.py", None, False),
    # issue 12 §3: scan cold / warm and verify_roots warm, each a fresh process, against find | wc -l
    ("office_scan_bench.py", "verify_roots warm/find|wc (8 firms)", False),
    # issue 12 §3: a backfill killed and resumed (every month stored once), Durum Sorgula, Tara — each the CLI
    ("office_bench.py", "Durum Sorgula 48 months / raw HTTP questions", True),
])
def test_quick_standalone_benchmarks(tmp_path, script, expected, all_met):
    if script == "restore_bench.py" and not (shutil.which("curl") and shutil.which("unzip")):
        pytest.skip("the restore baseline needs curl and unzip")
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), "--quick", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    targets = re.findall(r"^TARGET .+ -> (MET|NOT MET)$", out, re.M)
    assert targets, out[-2000:]
    if all_met:
        assert set(targets) == {"MET"}, out[-3000:]
    if expected:
        assert re.search(rf"^RATIO {re.escape(expected)}: .* = [\d.]+x$", out, re.M), out[-2000:]
