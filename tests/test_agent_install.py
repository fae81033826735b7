"""`edefter agent install`: the Windows task, the macOS LaunchAgent and the Linux systemd user unit name the
right user, interpreter and arguments, and validate (lxml, plistlib, systemd-analyze where available).
Paths with spaces, Turkish letters and characters that mean something to XML, Windows' command line or
systemd (& " % $) come through intact."""

from __future__ import annotations

import getpass
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from edefter_helper import agent_install as I

NS = {"t": I.TASK_NS}
WIN_PYTHON = r"C:\Users\Ayşe Yılmaz\AppData\Local\Programs\Python\Python311\python.exe"
WIN_WORKBOOK = r"D:\Muhasebe Şubesi\e-Defter Kontrol & Yedek \"2024\".xlsm"
WIN_JOURNAL = r"\\NAS\Paylaşım %USERNAME%\günlük.sqlite3"


def windows_argv(cmdline: str) -> list[str]:
    """How the Microsoft C runtime (CommandLineToArgvW) splits a command line into arguments."""
    args, cur, i, quoted, have = [], [], 0, False, False
    while i < len(cmdline):
        c = cmdline[i]
        if c == "\\":
            n = 0
            while i < len(cmdline) and cmdline[i] == "\\":
                n, i = n + 1, i + 1
            if i < len(cmdline) and cmdline[i] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += 1
                have = True
            else:
                cur.append("\\" * n)
                have = True
            continue
        if c == '"':
            if quoted and i + 1 < len(cmdline) and cmdline[i + 1] == '"':
                cur.append('"')
                i += 2
                continue
            quoted, have = not quoted, True
            i += 1
            continue
        if c in " \t" and not quoted:
            if have or cur:
                args.append("".join(cur))
            cur, have = [], False
            i += 1
            continue
        cur.append(c)
        have = True
        i += 1
    if have or cur:
        args.append("".join(cur))
    return args


def test_windows_task_runs_pythonw_at_this_users_logon(tmp_path):
    data = I.task_xml(WIN_WORKBOOK, python=WIN_PYTHON, user=r"MUHASEBE\ayşe.yılmaz", journal=WIN_JOURNAL,
                      interval=30, settle=90)
    assert data.startswith(b"\xff\xfe")  # UTF-16 with BOM, as Windows exports tasks and schtasks reads them
    root = etree.fromstring(data)
    assert root.tag == f"{{{I.TASK_NS}}}Task" and root.get("version") == "1.2"
    (trigger,) = root.findall("t:Triggers/t:LogonTrigger", NS)
    assert trigger.findtext("t:UserId", namespaces=NS) == r"MUHASEBE\ayşe.yılmaz"
    (principal,) = root.findall("t:Principals/t:Principal", NS)
    # the same user, with their own logon token: their Credential Manager and mapped drives, no stored password
    assert principal.findtext("t:UserId", namespaces=NS) == r"MUHASEBE\ayşe.yılmaz"
    assert principal.findtext("t:LogonType", namespaces=NS) == "InteractiveToken"
    assert principal.findtext("t:RunLevel", namespaces=NS) == "LeastPrivilege"
    (action,) = root.findall("t:Actions", NS)
    assert action.get("Context") == principal.get("id")
    command = root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS)
    assert command == r"C:\Users\Ayşe Yılmaz\AppData\Local\Programs\Python\Python311\pythonw.exe"
    arguments = root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS)
    assert windows_argv(arguments) == ["-m", "edefter_helper", "agent", "run", "--workbook", WIN_WORKBOOK,
                                       "--journal", WIN_JOURNAL, "--interval", "30", "--settle", "90"]
    settings = root.find("t:Settings", NS)
    assert settings.findtext("t:ExecutionTimeLimit", namespaces=NS) == "PT0S"  # not stopped after 72 h
    assert settings.findtext("t:MultipleInstancesPolicy", namespaces=NS) == "IgnoreNew"
    assert settings.findtext("t:DisallowStartIfOnBatteries", namespaces=NS) == "false"
    assert settings.find("t:RestartOnFailure", NS) is not None
    assert root.findtext("t:RegistrationInfo/t:URI", namespaces=NS) == "\\" + I.task_name(WIN_WORKBOOK)
    # every element in the Task Scheduler namespace, no stray text
    assert {etree.QName(e).namespace for e in root.iter()} == {I.TASK_NS}


def test_windows_task_defaults_to_this_interpreter_and_user(monkeypatch):
    monkeypatch.setenv("USERNAME", "veli")
    monkeypatch.setenv("USERDOMAIN", "OFIS")
    root = etree.fromstring(I.task_xml(r"C:\k.xlsm"))
    assert root.findtext("t:Principals/t:Principal/t:UserId", namespaces=NS) == r"OFIS\veli"
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == I.windowless(sys.executable)
    assert I.windowless(r"C:\venv\Scripts\PYTHON.EXE") == r"C:\venv\Scripts\pythonw.exe"
    assert I.windowless("/usr/bin/python3") == "/usr/bin/python3"


def test_windows_install_registers_with_schtasks(tmp_path):
    calls = []

    def runner(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "BAŞARILI", "")

    wb = tmp_path / "kontrol.xlsm"
    done = I.install(wb, system="windows", runner=runner)
    name = I.task_name(str(wb))
    create, run = calls
    assert create[:3] == ["schtasks", "/Create", "/XML"] and create[4:] == ["/TN", name, "/F"]
    xml = Path(create[3]).read_bytes()
    assert etree.fromstring(xml).findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS).endswith(str(wb))
    assert run == ["schtasks", "/Run", "/TN", name]
    assert "Görev Zamanlayıcı" in done[0]
    calls.clear()
    I.uninstall(wb, system="windows", runner=runner)
    assert ["schtasks", "/Delete", "/TN", name, "/F"] in calls and not Path(create[3]).exists()

    def refused(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "HATA: Erişim engellendi.")

    with pytest.raises(I.InstallError, match="Erişim engellendi"):
        I.install(wb, system="windows", runner=refused)


def test_macos_launch_agent_plist(tmp_path, monkeypatch):
    monkeypatch.setenv("EDEFTER_JOURNAL", "/Users/ayşe/Belgeler/günlük.sqlite3")
    wb = "/Users/ayşe/Belgeler/e-Defter Kontrol & \"Yedek\" %50.xlsm"
    data = plistlib.loads(I.launchd_plist(wb, python="/Users/ayşe/edefter/bin/python3"))
    assert data["Label"] == I.launchd_label(wb)
    assert data["ProgramArguments"] == ["/Users/ayşe/edefter/bin/python3", "-m", "edefter_helper", "agent", "run",
                                        "--workbook", wb]
    assert data["RunAtLoad"] is True and data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["LimitLoadToSessionType"] == "Aqua"  # the user's own session: their Keychain
    assert data["EnvironmentVariables"]["EDEFTER_JOURNAL"] == "/Users/ayşe/Belgeler/günlük.sqlite3"
    if shutil.which("plutil"):
        path = tmp_path / "a.plist"
        path.write_bytes(I.launchd_plist(wb))
        assert subprocess.run(["plutil", "-lint", str(path)], capture_output=True).returncode == 0

    calls = []

    def runner(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    done = I.install(wb, system="macos", home=tmp_path, runner=runner)
    plist = tmp_path / "Library" / "LaunchAgents" / f"{I.launchd_label(wb)}.plist"
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"][0] == sys.executable
    assert calls[-1] == ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)] and "LaunchAgent" in done[0]
    I.uninstall(wb, system="macos", home=tmp_path, runner=runner)
    assert not plist.exists() and calls[-1] == ["launchctl", "bootout", f"gui/{os.getuid()}/{I.launchd_label(wb)}"]


def _exec_start(unit: str) -> list[str]:
    """ExecStart's words as systemd reads them (its quoting is the shell's double quotes with C escapes
    for \\ and \", then %% -> % and $$ -> $)."""
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line[len("ExecStart="):])]


UNIX_WORKBOOK = "/home/ayşe/Belgeler/e-Defter Kontrol & \"Yedek\" %h $HOME.xlsm"


def test_systemd_user_unit_text(tmp_path, monkeypatch):
    monkeypatch.setenv("EDEFTER_DATA_DIR", "/home/ayşe/.edefter veri")
    unit = I.systemd_unit(UNIX_WORKBOOK, python="/opt/edefter env/bin/python", journal="/srv/günlük %.sqlite3")
    assert _exec_start(unit) == ["/opt/edefter env/bin/python", "-m", "edefter_helper", "agent", "run",
                                 "--workbook", UNIX_WORKBOOK, "--journal", "/srv/günlük %.sqlite3"]
    assert "Restart=on-failure" in unit and "WantedBy=default.target" in unit
    assert 'Environment="EDEFTER_DATA_DIR=/home/ayşe/.edefter veri"' in unit
    description = next(x for x in unit.splitlines() if x.startswith("Description="))
    assert "%h" not in description.replace("%%", "")  # no specifier left to expand


def _systemd_analyze_works(tmp_path) -> str | None:
    if not shutil.which("systemd-analyze"):
        return "systemd-analyze is not installed"
    probe = tmp_path / "edefter-probe.service"
    probe.write_text(f"[Service]\nExecStart={sys.executable} -c pass\n")
    proc = subprocess.run(["systemd-analyze", "verify", str(probe)], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"systemd-analyze verify does not work here: {proc.stderr.strip()[:200]}"
    return None


def test_systemd_unit_verifies(tmp_path):
    why = _systemd_analyze_works(tmp_path)
    if why:
        pytest.skip(why)
    path = tmp_path / I.unit_name(UNIX_WORKBOOK)
    path.write_text(I.systemd_unit(UNIX_WORKBOOK), encoding="utf-8")
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    assert _exec_start(path.read_text(encoding="utf-8"))[0] == sys.executable
    # and a broken one is caught (the check is not a formality)
    path.write_text(I.systemd_unit(UNIX_WORKBOOK, python="/yok/python"), encoding="utf-8")
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "/yok/python" in proc.stderr


def test_linux_install_writes_the_unit_and_enables_it(tmp_path):
    calls = []

    def runner(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    wb = tmp_path / "kontrol ş.xlsm"
    done = I.install(wb, system="linux", home=tmp_path, runner=runner)
    unit = tmp_path / ".config" / "systemd" / "user" / I.unit_name(str(wb))
    assert _exec_start(unit.read_text(encoding="utf-8"))[-1] == str(wb)
    assert calls == [["systemctl", "--user", "daemon-reload"],
                     ["systemctl", "--user", "enable", "--now", unit.name]]
    assert "systemctl --user status" in done[-1]

    def no_manager(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "Failed to connect to bus: No medium found")

    with pytest.raises(I.InstallError, match="systemctl --user enable --now") as caught:
        I.install(wb, system="linux", home=tmp_path, runner=no_manager)
    assert "No medium found" in str(caught.value) and unit.exists()  # the unit is kept for a later enable
    I.uninstall(wb, system="linux", home=tmp_path, runner=runner)
    assert not unit.exists() and ["systemctl", "--user", "disable", "--now", unit.name] in calls


def _user_systemd() -> str | None:
    if not shutil.which("systemctl"):
        return "systemctl is not installed"
    proc = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True, text=True)
    if proc.stdout.strip() not in ("running", "degraded"):
        return f"no systemd user manager here ({(proc.stdout + proc.stderr).strip()[:120]})"
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux") or _user_systemd() is not None,
                    reason=f"installing a systemd user unit needs a running user manager: {_user_systemd()}")
def test_linux_install_for_real(tmp_path, edefter):
    wb = tmp_path / "kontrol.xlsm"
    assert edefter("workbook", "new", wb).returncode == 0
    name = I.unit_name(str(wb))
    try:
        I.install(wb, system="linux", interval=5, settle=1)
        proc = subprocess.run(["systemctl", "--user", "is-enabled", name], capture_output=True, text=True)
        assert proc.stdout.strip() == "enabled"
    finally:
        I.uninstall(wb, system="linux")
    assert not (I.unit_dir() / name).exists()


def test_install_print_and_bad_input(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")

    def agent(*args):
        return subprocess.run([sys.executable, "-m", "edefter_helper.agent", *map(str, args)], capture_output=True,
                              text=True, encoding="utf-8", env=env, timeout=60)

    wb = tmp_path / "kontrol ğ.xlsm"
    proc = agent("install", "--workbook", wb, "--print")
    assert proc.returncode == 2 and "bulunamadı" in proc.stderr and "Traceback" not in proc.stderr
    wb.write_bytes(b"x")
    proc = agent("install", "--workbook", wb, "--print", "--system", "windows")
    assert proc.returncode == 0, proc.stderr
    root = etree.fromstring(proc.stdout.split("\n", 1)[1].encode("utf-8"))
    assert windows_argv(root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS))[-1] == str(wb)
    assert root.findtext("t:Principals/t:Principal/t:UserId", namespaces=NS).endswith(
        os.environ.get("USERNAME") or getpass.getuser())
    proc = agent("install", "--workbook", wb, "--print", "--system", "macos")
    assert plistlib.loads(proc.stdout.encode("utf-8"))["ProgramArguments"][-1] == str(wb)
    proc = agent("install", "--workbook", wb, "--print", "--system", "linux", "--interval", "0")
    assert proc.returncode == 2 and "--interval" in proc.stderr
