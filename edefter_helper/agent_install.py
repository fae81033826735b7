"""`edefter agent install|uninstall`: start the background agent when this user logs on.

The agent must run as **the same OS user** who stored the passwords: a task or service under another
account cannot read this user's Credential Manager / Keychain / Secret Service, nor see the drives
mapped in this user's session. So:

- Windows: a Task Scheduler task with a logon trigger for this user, running with this user's
  interactive token (no stored password), `pythonw.exe -m edefter_helper agent run --workbook F`
  (no console window), restarted on failure; registered with `schtasks /Create /XML`.
- macOS: a LaunchAgent plist in ~/Library/LaunchAgents (RunAtLoad, KeepAlive on failure), loaded into
  this user's GUI session with `launchctl bootstrap gui/UID`.
- Linux: a systemd user unit in ~/.config/systemd/user, `systemctl --user enable --now`.

The interpreter is the one running this command (`sys.executable`; on Windows its `pythonw.exe`).
`--print` writes nothing and shows the task/plist/unit (for any system with `--system`).
"""

from __future__ import annotations

import getpass
import ntpath
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from edefter_helper.agent import log_file, workbook_key, workbook_path

TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
TASK_FOLDER = "e-Defter Yedekleme"
LABEL_PREFIX = "com.edefter-yedekleme.agent"
UNIT_PREFIX = "edefter-agent"


def current_system() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _digest(workbook: str) -> str:
    return workbook_key(workbook).rsplit("-", 1)[1]


def run_arguments(workbook: str, *, journal: str | None = None, interval: float | None = None,
                  settle: float | None = None) -> list[str]:
    """What follows the interpreter: `-m edefter_helper agent run --workbook F [...]`."""
    args = ["-m", "edefter_helper", "agent", "run", "--workbook", workbook]
    if journal:
        args += ["--journal", journal]
    if interval is not None:
        args += ["--interval", f"{interval:g}"]
    if settle is not None:
        args += ["--settle", f"{settle:g}"]
    return args


def _passed_environment() -> dict[str, str]:
    """Our own settings that the user's shell has and a logon session may not."""
    return {k: os.environ[k] for k in ("EDEFTER_DATA_DIR", "EDEFTER_JOURNAL", "EDEFTER_CACHE", "EDEFTER_GIB_TRUST")
            if os.environ.get(k)}


# -- Windows: Task Scheduler ----------------------------------------------------------------------

def task_name(workbook: str) -> str:
    return f"{TASK_FOLDER}\\Arka Plan Araci {_digest(workbook)}"


def windows_user() -> str:
    """DOMAIN\\user of whoever runs this (the account whose Credential Manager holds the passwords)."""
    name = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{name}" if domain else name


def windowless(python: str) -> str:
    """pythonw.exe beside python.exe: a logon task must not open a console window."""
    folder, name = ntpath.split(python)
    if name.lower() == "python.exe":
        return ntpath.join(folder, "pythonw.exe")
    return python


def task_xml(workbook: str, *, python: str | None = None, user: str | None = None, journal: str | None = None,
             interval: float | None = None, settle: float | None = None) -> bytes:
    """The Task Scheduler definition (UTF-16 with BOM, as schtasks /XML reads and Windows exports)."""
    from lxml import etree
    from lxml.builder import ElementMaker

    python = windowless(python or sys.executable)
    user = user or windows_user()
    E = ElementMaker(namespace=TASK_NS, nsmap={None: TASK_NS})
    args = subprocess.list2cmdline(run_arguments(workbook, journal=journal, interval=interval, settle=settle))
    task = E.Task(
        E.RegistrationInfo(
            E.Author(user),
            E.Description(f"e-Defter Yedekleme arka plan aracısı (otomatik yedekleme): {workbook}"),
            E.URI("\\" + task_name(workbook)),
        ),
        E.Triggers(
            E.LogonTrigger(E.Enabled("true"), E.UserId(user), E.Delay("PT30S")),
        ),
        E.Principals(
            # the user's own interactive token: the same keyring and mapped drives, no stored password
            E.Principal(E.UserId(user), E.LogonType("InteractiveToken"), E.RunLevel("LeastPrivilege"), id="Author"),
        ),
        E.Settings(
            E.MultipleInstancesPolicy("IgnoreNew"),
            E.DisallowStartIfOnBatteries("false"),
            E.StopIfGoingOnBatteries("false"),
            E.AllowHardTerminate("true"),
            E.StartWhenAvailable("true"),
            E.RunOnlyIfNetworkAvailable("false"),
            E.IdleSettings(E.StopOnIdleEnd("false"), E.RestartOnIdle("false")),
            E.AllowStartOnDemand("true"),
            E.Enabled("true"),
            E.Hidden("false"),
            E.RunOnlyIfIdle("false"),
            E.WakeToRun("false"),
            E.ExecutionTimeLimit("PT0S"),  # runs for the whole session
            E.Priority("7"),
            E.RestartOnFailure(E.Interval("PT5M"), E.Count("999")),
        ),
        E.Actions(
            E.Exec(E.Command(python), E.Arguments(args), E.WorkingDirectory(ntpath.dirname(python) or "C:\\")),
            Context="Author",
        ),
        version="1.2",
    )
    text = etree.tostring(task, encoding="unicode", pretty_print=True)
    return ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16")


# -- macOS: LaunchAgent ---------------------------------------------------------------------------

def launchd_label(workbook: str) -> str:
    return f"{LABEL_PREFIX}.{_digest(workbook)}"


def launchd_plist(workbook: str, *, python: str | None = None, journal: str | None = None,
                  interval: float | None = None, settle: float | None = None) -> bytes:
    python = python or sys.executable
    out = str(log_file(workbook).with_suffix(".launchd.log"))
    data = {
        "Label": launchd_label(workbook),
        "ProgramArguments": [python, *run_arguments(workbook, journal=journal, interval=interval, settle=settle)],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # back after a crash; a clean stop (launchctl, SIGTERM) stays stopped
        "ThrottleInterval": 30,
        "ProcessType": "Background",
        "LimitLoadToSessionType": "Aqua",  # the user's GUI session: their Keychain is unlocked there
        "StandardOutPath": out,
        "StandardErrorPath": out,
    }
    env = _passed_environment()
    if env:
        data["EnvironmentVariables"] = env
    return plistlib.dumps(data)


# -- Linux: systemd user unit ---------------------------------------------------------------------

def unit_name(workbook: str) -> str:
    return f"{UNIT_PREFIX}-{_digest(workbook)}.service"


def _unit_quote(arg: str) -> str:
    """One ExecStart/Environment word: double-quoted, C escapes for \\ and ", %-specifiers and $-variables off."""
    text = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{text}"'


def _unit_text(text: str) -> str:
    """A free-text value (Description): one line, % specifiers off."""
    return " ".join(text.split()).replace("%", "%%")


def systemd_unit(workbook: str, *, python: str | None = None, journal: str | None = None,
                 interval: float | None = None, settle: float | None = None) -> str:
    python = python or sys.executable
    cmd = " ".join(_unit_quote(a) for a in [python, *run_arguments(workbook, journal=journal, interval=interval,
                                                                    settle=settle)])
    lines = [
        "[Unit]",
        f"Description={_unit_text('e-Defter Yedekleme arka plan aracısı: ' + workbook)}",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={cmd}",
        "Restart=on-failure",
        "RestartSec=30",
        "TimeoutStopSec=150",  # a backup under way finishes its month before the agent stops
    ]
    for key, value in _passed_environment().items():
        lines.append(f"Environment={_unit_quote(f'{key}={value}')}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def unit_dir(home: Path | None = None) -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") if home is None else None
    base = Path(config) if config else (home or Path.home()) / ".config"
    return base / "systemd" / "user"


def launch_agents_dir(home: Path | None = None) -> Path:
    return (home or Path.home()) / "Library" / "LaunchAgents"


# -- install / uninstall ----------------------------------------------------------------------------

class InstallError(Exception):
    """Turkish message: what failed and what the user can do."""


Runner = Callable[..., subprocess.CompletedProcess]


def _run(runner: Runner, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = runner(cmd, capture_output=True, text=True)
    except OSError as exc:
        if not check:
            return subprocess.CompletedProcess(cmd, 127, "", str(exc))
        raise InstallError(f"{cmd[0]} çalıştırılamadı: {exc.strerror or exc}") from None
    if check and proc.returncode != 0:
        why = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise InstallError(f"{' '.join(cmd[:3])} başarısız (çıkış {proc.returncode}): {why[-1] if why else ''}")
    return proc


def definition(system: str, workbook: str, **kw) -> tuple[str, bytes]:
    """(file name, content) of the task/plist/unit for `system`."""
    if system == "windows":
        return f"{task_name(workbook).split(chr(92))[-1]}.xml", task_xml(workbook, **kw)
    if system == "macos":
        return f"{launchd_label(workbook)}.plist", launchd_plist(workbook, **kw)
    return unit_name(workbook), systemd_unit(workbook, **kw).encode("utf-8")


def install(workbook, *, system: str | None = None, journal: str | None = None, interval: float | None = None,
            settle: float | None = None, python: str | None = None, home: Path | None = None,
            runner: Runner = subprocess.run) -> list[str]:
    """Install and start the agent for this user; returns what was done, one Turkish line each."""
    from edefter_helper.agent import agent_dir

    system = system or current_system()
    workbook = workbook_path(workbook)
    journal = os.path.abspath(journal) if journal else None
    kw = dict(journal=journal, interval=interval, settle=settle, python=python)
    done = []
    if system == "windows":
        name = task_name(workbook)
        xml = agent_dir() / f"{workbook_key(workbook)}.task.xml"
        xml.write_bytes(task_xml(workbook, **kw))
        _run(runner, ["schtasks", "/Create", "/XML", str(xml), "/TN", name, "/F"])
        done.append(f"Görev Zamanlayıcı'ya eklendi: {name} (oturum açılınca, {windows_user()} kullanıcısıyla)")
        if _run(runner, ["schtasks", "/Run", "/TN", name], check=False).returncode == 0:
            done.append("Aracı şimdi başlatıldı.")
        return done
    if system == "macos":
        label = launchd_label(workbook)
        target = launch_agents_dir(home) / f"{label}.plist"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(launchd_plist(workbook, **kw))
        done.append(f"LaunchAgent yazıldı: {target}")
        domain = f"gui/{os.getuid()}"
        _run(runner, ["launchctl", "bootout", f"{domain}/{label}"], check=False)  # an older copy
        _run(runner, ["launchctl", "bootstrap", domain, str(target)])
        done.append(f"launchctl ile başlatıldı ({label}).")
        return done
    target = unit_dir(home) / unit_name(workbook)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(systemd_unit(workbook, **kw), encoding="utf-8")
    done.append(f"systemd kullanıcı birimi yazıldı: {target}")
    if not shutil.which("systemctl") and runner is subprocess.run:
        raise InstallError(f"systemctl bulunamadı; birim dosyası yazıldı ama etkinleştirilemedi. systemd olan bir "
                           f"oturumda: systemctl --user enable --now {target.name}")
    try:
        _run(runner, ["systemctl", "--user", "daemon-reload"])
        _run(runner, ["systemctl", "--user", "enable", "--now", target.name])
    except InstallError as exc:
        raise InstallError(f"{exc} Birim dosyası yazıldı ({target}); systemd kullanıcı oturumu olan bir yerde: "
                           f"systemctl --user enable --now {target.name}") from None
    done.append(f"Etkinleştirildi ve başlatıldı: systemctl --user status {target.name}")
    return done


def uninstall(workbook, *, system: str | None = None, home: Path | None = None,
              runner: Runner = subprocess.run) -> list[str]:
    from edefter_helper.agent import agent_dir

    system = system or current_system()
    workbook = workbook_path(workbook)
    done = []
    if system == "windows":
        name = task_name(workbook)
        _run(runner, ["schtasks", "/End", "/TN", name], check=False)
        proc = _run(runner, ["schtasks", "/Delete", "/TN", name, "/F"], check=False)
        (agent_dir() / f"{workbook_key(workbook)}.task.xml").unlink(missing_ok=True)
        done.append(f"Görev kaldırıldı: {name}" if proc.returncode == 0 else f"Kurulu görev yoktu: {name}")
        return done
    if system == "macos":
        label = launchd_label(workbook)
        target = launch_agents_dir(home) / f"{label}.plist"
        _run(runner, ["launchctl", "bootout", f"gui/{os.getuid()}/{label}"], check=False)
        existed = target.exists()
        target.unlink(missing_ok=True)
        done.append(f"LaunchAgent kaldırıldı: {target}" if existed else f"Kurulu LaunchAgent yoktu: {target}")
        return done
    target = unit_dir(home) / unit_name(workbook)
    if shutil.which("systemctl") or runner is not subprocess.run:
        _run(runner, ["systemctl", "--user", "disable", "--now", target.name], check=False)
    existed = target.exists()
    target.unlink(missing_ok=True)
    if shutil.which("systemctl") or runner is not subprocess.run:
        _run(runner, ["systemctl", "--user", "daemon-reload"], check=False)
    done.append(f"Birim kaldırıldı: {target}" if existed else f"Kurulu birim yoktu: {target}")
    return done


# -- command line -----------------------------------------------------------------------------------

def cmd_install(args) -> int:
    from edefter_helper.cli import EXIT_OK, EXIT_PROBLEMS, UsageError

    if not Path(args.workbook).is_file():
        raise UsageError(f"Çalışma kitabı bulunamadı: {args.workbook}")
    for name in ("interval", "settle"):
        value = getattr(args, name, None)
        if value is not None and (value < 0 or (name == "interval" and value == 0)):
            raise UsageError(f"--{name} geçersiz: {value:g}")
    system = args.system or current_system()
    workbook = workbook_path(args.workbook)
    journal = os.path.abspath(args.journal) if args.journal else None
    if args.print_only:
        _, content = definition(system, workbook, journal=journal, interval=args.interval, settle=args.settle)
        text = content.decode("utf-16") if system == "windows" else content.decode("utf-8")
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    try:
        for line in install(workbook, system=system, journal=journal, interval=args.interval, settle=args.settle):
            print(line)
    except InstallError as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"Durumu görmek için: edefter agent status --workbook \"{workbook}\"")
    return EXIT_OK


def cmd_uninstall(args) -> int:
    from edefter_helper.cli import EXIT_OK, EXIT_PROBLEMS

    try:
        for line in uninstall(args.workbook, system=args.system or current_system()):
            print(line)
    except InstallError as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK
