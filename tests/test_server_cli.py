"""`edefter serve` as a user types it (issue 8): the port is checked, the address is announced only
once it is bound, a non-loopback host gets the TLS reverse-proxy warning."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("port", ["99999", "0", "65536", "-1", "http", "٨٠٨٠", "８０８０"])
def test_port_outside_1_65535_is_a_usage_error(tmp_path, edefter, port):
    proc = edefter("serve", "--data", tmp_path / "d", "--port", port, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "1-65535" in proc.stderr and "Traceback" not in proc.stderr
    assert "dinliyor" not in proc.stderr


def test_busy_port_is_reported_and_nothing_is_announced(tmp_path, edefter):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = edefter("serve", "--data", tmp_path / "d", "--port", port, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "dinlenemedi" in proc.stderr
    assert "dinliyor" not in proc.stderr  # never claimed an address it does not hold


def test_non_loopback_host_warns_that_a_tls_reverse_proxy_is_required(tmp_path, edefter):
    # 192.0.2.1 (TEST-NET-1) belongs to no machine: the warning comes first, then the bind fails
    proc = edefter("serve", "--data", tmp_path / "d", "--host", "192.0.2.1", "--port", _free_port(), timeout=60)
    assert "TLS" in proc.stderr and "ters vekil" in proc.stderr and "https://" in proc.stderr
    assert proc.returncode == 2 and "dinlenemedi" in proc.stderr and "Traceback" not in proc.stderr


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "serve.log"
    err = open(log, "w", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "edefter_helper", "serve", "--data", str(tmp_path / "d"), *args],
                            stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    err.close()
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)


def test_address_is_announced_only_once_bound(tmp_path):
    port = _free_port()
    proc, log = _serve(tmp_path, "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while "dinliyor" not in (text := log.read_text(encoding="utf-8")):
            assert proc.poll() is None, text
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # the moment it is announced, the address answers
        assert requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=10).status_code == 200
        assert f"http://127.0.0.1:{port}" in text
        assert "uyarı" not in text  # loopback: no reverse-proxy warning
    finally:
        _stop(proc)


def test_user_add_refuses_digits_that_only_look_like_digits(tmp_path, edefter):
    proc = edefter("server", "user-add", "--data", tmp_path / "d", "ali", "--vkn", "١٢٣٤٥٦٧٨٩٠", "--password-stdin",
                   input="parola\n", timeout=60)
    assert proc.returncode == 2 and "Geçersiz VKN" in proc.stderr and "Traceback" not in proc.stderr
