"""Backup, workbook, server and credential commands (registered into `edefter` by cli.py).

Each handler reads its input, calls the action/layer below and renders the result; nothing here
decides anything a ribbon button would not decide the same way.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from edefter_helper.cli import EXIT_OK, EXIT_PROBLEMS, UsageError, _print_json


def _book(args):
    from edefter_helper.workbook.file import FileBook, WorkbookError

    try:
        return FileBook(args.workbook)
    except WorkbookError as exc:
        raise UsageError(str(exc)) from None


def _options(args):
    from edefter_helper.actions import Options

    opts = Options(journal=Path(args.journal) if getattr(args, "journal", None) else None)
    if getattr(args, "parallel", None) is not None:
        if args.parallel < 1:
            raise UsageError("--parallel en az 1 olmalı.")
        opts.parallel = args.parallel
    if getattr(args, "wait", None) is not None:
        if args.wait < 0:
            raise UsageError("--wait negatif olamaz.")
        opts.wait = args.wait
    return opts


def _where(args):
    from edefter_helper.engine.names import valid_identifier, valid_period

    firms = getattr(args, "firm", None) or []
    periods = getattr(args, "period", None) or []
    for f in firms:
        if not valid_identifier(f):
            raise UsageError(f"Geçersiz VKN/TCKN: {f}")
    for p in periods:
        if not valid_period(p):
            raise UsageError(f"Geçersiz dönem: {p} (YYYY-AA biçiminde olmalı, ör. 2024-01).")
    if not firms and not periods:
        return None
    return lambda key: (not firms or key.vkn in firms) and (not periods or key.period in periods)


def fit(text: str, width: int) -> str:
    """`text` in a column of `width`: padded, or cut at a word boundary with '…' (never mid-word)."""
    text = str(text or "")
    if len(text) <= width:
        return text.ljust(width)
    cut = text[:width - 1]
    if " " in cut and not text[width - 1].isspace():
        cut = cut[:cut.rindex(" ")]
    return (cut.rstrip(" ,.;:—-") + "…").ljust(width)


def _firm_width(names) -> int:
    return max([len("Firma")] + [min(len(str(n or "")), 40) for n in names])


def render_summary(summary, as_json: bool = False, notes: list[str] | None = None) -> int:
    notes = list(summary.notes) + list(notes or [])
    if as_json:
        _print_json({"action": summary.action, "message": summary.message, "notes": notes,
                     "results": [{"vkn": r.key.vkn, "branch": r.key.branch, "period": r.key.period,
                                  "firm": r.firm, "status": r.status, "message": r.message,
                                  **({"target": r.target} if r.target else {})}
                                 for r in summary.results], **summary.extra})
    else:
        for note in notes:
            print(f"Uyarı: {note}")
        if summary.results:
            width = _firm_width(r.firm for r in summary.results)
            print(f"{fit('Firma', width)} {'Şube':<5} {'Dönem':<8} {'Durum':<26} Açıklama")
            for r in sorted(summary.results, key=lambda r: (r.firm, r.key.branch, r.key.period)):
                print(f"{fit(r.firm, width)} {r.key.branch:<5} {r.key.period:<8} {r.status:<26} {r.message}")
        print(summary.message)
    return EXIT_PROBLEMS if summary.blocked or summary.failed else EXIT_OK


# another run holds the journal or the workbook (refresh/send/query/backup)
EXIT_BUSY = 3


def _run(action, args, book=None, **kw) -> int:
    """Run one action on the workbook and print its summary; the errors every action shares."""
    from edefter_helper.actions import RunBusy
    from edefter_helper.restore import RestoreError
    from edefter_helper.workbook.file import WorkbookError

    book = book if book is not None else _book(args)
    journal = _check_journal(args)
    try:
        book.check_writable()  # before any work: its results could not be written
        summary = action(book, options=_options(args), **kw)
    except RestoreError as exc:
        raise UsageError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise _journal_error(journal, exc) from None
    except WorkbookError as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except RunBusy as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_BUSY
    return render_summary(summary, getattr(args, "json", False), notes=_nothing_for(args, summary))


def _check_journal(args) -> Path:
    """The journal this command uses; a --journal that is a folder or not a journal is a usage error
    (said before any work), one that does not exist yet is made, and that is said."""
    from edefter_helper import paths

    path = paths.journal_path(getattr(args, "journal", None))
    if path.is_dir():
        raise UsageError(f"Günlük veritabanı açılamadı / bozuk: {path} bir klasör; --journal bir dosya olmalı "
                         f"(ör. {path / 'gunluk.sqlite3'}).")
    if path.exists():
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise _journal_error(path, exc) from None
    elif getattr(args, "journal", None):
        print(f"edefter: günlük {path} yoktu; yeni bir günlük olarak oluşturuluyor.", file=sys.stderr)
    return path


def _journal_error(path: Path, exc: Exception) -> UsageError:
    text = str(exc)
    why = {"file is not a database": "bir günlük (SQLite) dosyası değil",
           "unable to open database file": "dosya açılamadı (yol ya da izin)",
           "database disk image is malformed": "dosya bozuk"}.get(text, text)
    return UsageError(f"Günlük veritabanı açılamadı / bozuk: {path}: {why}.")


def _nothing_for(args, summary) -> list[str]:
    """Say why nothing happened for a --firm or --period that was asked for."""
    notes = []
    firms = getattr(args, "firm", None)
    periods = getattr(args, "period", None)
    if isinstance(firms, str):
        firms = [firms]
    done_firms = {r.key.vkn for r in summary.results}
    done_periods = {r.key.period for r in summary.results}
    for vkn in firms or []:
        if vkn not in done_firms:
            notes.append(f"{vkn} için" + (f" {', '.join(periods)} döneminde" if periods else "")
                         + " e-Defter ayı bulunamadı (klasörde dosya yok ya da ay seçime uymuyor).")
    for period in periods or []:
        if period not in done_periods and not (firms and not done_firms):
            notes.append(f"{period} döneminde" + (f" {', '.join(firms)} için" if firms else "")
                         + " e-Defter dosyası bulunamadı.")
    return notes


def _firms_known(args, book) -> None:
    """--firm must name a firm of the Firmalar sheet: otherwise nothing could happen."""
    from edefter_helper.settings import read_settings

    if not getattr(args, "firm", None):
        return
    firms, _, _ = read_settings(book)
    known = {f.vkn for f in firms}
    unknown = [v for v in args.firm if v not in known]
    if unknown:
        raise UsageError(f"{', '.join(unknown)} Firmalar sayfasında yok; önce Firmalar'a bir satır ekleyin "
                         f"(VKN/TCKN, e-Defter Klasörü, Hedef).")


def cmd_refresh(args) -> int:
    from edefter_helper import actions

    return _run(actions.refresh, args)


def cmd_send(args) -> int:
    from edefter_helper import actions

    where = _where(args)
    book = _book(args)
    _firms_known(args, book)
    return _run(actions.send, args, book, where=where)


def cmd_restore(args) -> int:
    from datetime import date

    from edefter_helper import restore
    from edefter_helper.engine.model import MonthKey
    from edefter_helper.engine.names import valid_branch, valid_identifier, valid_period

    if args.firm and not valid_identifier(args.firm):
        raise UsageError(f"Geçersiz VKN/TCKN: {args.firm}")
    if args.branch and (not args.firm or not valid_branch(args.branch)):
        raise UsageError("--branch 4 haneli bir şube kodu olmalı ve --firm ile birlikte verilmeli.")
    for value in (args.start, args.end):
        if value and not valid_period(value):
            raise UsageError(f"Geçersiz dönem: {value} (YYYY-AA biçiminde olmalı, ör. 2024-01).")
    end = args.end or date.today().strftime("%Y-%m")
    if args.start and args.start > end:
        raise UsageError(f"--from ({args.start}) --to'dan ({end}) sonra olamaz.")

    def where(key: MonthKey) -> bool:
        return ((not args.firm or key.vkn == args.firm) and (not args.branch or key.branch == args.branch)
                and (not args.start or key.period >= args.start) and (not args.end or key.period <= args.end))

    book = _book(args)
    discover = None
    if args.start:  # after a loss neither the disk nor this journal may know the months: ask the target
        from edefter_helper.actions import read_settings

        firms, _, _ = read_settings(book)
        discover = restore.months_to_ask(firms, args.start, end, vkn=None if args.all else args.firm,
                                         branch=args.branch)
    return _run(restore.restore, args, book, out=Path(args.out), source=args.source,
                into_existing=args.into_existing, discover=discover, where=where)


def cmd_worker(args) -> int:
    """The ribbon's background Toplu Yedekle: settings from a snapshot, results to the journal only."""
    from edefter_helper import actions
    from edefter_helper.workbook.snapshot import SnapshotBook, SnapshotError

    try:
        book = SnapshotBook(args.settings)
    except SnapshotError as exc:
        raise UsageError(str(exc)) from None
    opts = _options(args)
    opts.write_back = False
    opts.lock_wait = 600.0  # queued behind the agent or another run, not refused
    try:
        summary = actions.backup(book, all_months=args.all, options=opts)
    except actions.RunBusy as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_BUSY
    return render_summary(summary, args.json)


def cmd_target_check(args) -> int:
    from edefter_helper.engine.model import MonthKey
    from edefter_helper.settings import read_settings
    from edefter_helper.targets.base import MISSING, STORED, TargetError
    from edefter_helper.targets.factory import open_target

    firms, targets, notes = read_settings(_book(args))
    cfg = targets.get(args.name)
    if cfg is None:
        raise UsageError(f"'{args.name}' hedefi Hedefler sayfasında tanımlı değil.")
    user = args.user or next((c.user for f in firms for c in f.per_target() if c.target == args.name and c.user), "")
    try:
        target = open_target(cfg.kind, cfg.address, cfg.name, user)
        with target:
            receipt = target.query(MonthKey("1111111111", "0000", "1999-01"))  # a month nobody stores
            ok = receipt.state in (MISSING, STORED)
            print(f"Bağlantı ve kimlik: {'tamam' if ok else receipt.state} ({cfg.kind} {cfg.address})")
            if cfg.kind == "s3":
                from edefter_helper.targets.s3 import probe

                worm, detail = probe(target)
                print(("Silinemezlik (WORM): tamam — " if worm else "Silinemezlik (WORM): YOK — ") + detail)
                _record_probe(args, cfg, user, worm, detail)
                return EXIT_OK if worm and ok else EXIT_PROBLEMS
    except TargetError as exc:
        print(f"edefter: {exc.message}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK if ok else EXIT_PROBLEMS


def _record_probe(args, cfg, user: str, worm: bool, detail: str) -> None:
    """The answer is kept in the journal: copies on that target are shown as immutable only while its
    latest probe said so (the agent probes again weekly)."""
    from types import SimpleNamespace

    from edefter_helper import paths
    from edefter_helper.journal import Journal
    from edefter_helper.settings import target_identity

    journal = Journal(paths.journal_path(getattr(args, "journal", None)))
    try:
        journal.record_probe(target_identity(cfg, SimpleNamespace(user=user, target=cfg.name)), worm, detail)
    finally:
        journal.close()


def cmd_radar(args) -> int:
    from datetime import date

    from edefter_helper import actions
    from edefter_helper.status import month_label
    from edefter_helper.workbook.file import WorkbookError

    if args.months < 1 or args.months > 120:
        raise UsageError("--months 1 ile 120 arasında olmalı.")
    if args.within is not None and args.within < 0:
        raise UsageError("--within negatif olamaz.")
    book = _book(args)
    journal = _check_journal(args)
    try:
        book.check_writable()
        summary = actions.radar(book, options=_options(args), months=args.months)
    except sqlite3.DatabaseError as exc:
        raise _journal_error(journal, exc) from None
    except WorkbookError as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except actions.RunBusy as exc:
        print(f"edefter: {exc}", file=sys.stderr)
        return EXIT_BUSY
    today = date.today()
    cells = summary.extra["cells"]
    if args.sorumlu:
        cells = [c for c in cells if c["owner"].casefold() == args.sorumlu.casefold()]
    if args.within is not None:
        cells = [c for c in cells if c["due"] and (date.fromisoformat(c["due"]) - today).days <= args.within
                 and c["state"] not in ("Yedeklendi",)]
    if args.json:
        _print_json({"periods": summary.extra["periods"], "cells": cells, "notes": summary.notes})
    else:
        for note in summary.notes:
            print(f"Uyarı: {note}")
        shown = [c for c in cells if c["state"] not in ("—",)]
        width = _firm_width(c["firm"] for c in shown)
        owner = max([len("Sorumlu")] + [min(len(c["owner"] or ""), 20) for c in shown])
        print(f"{fit('Firma', width)} {'Şube':<5} {'Dönem':<14} {fit('Sorumlu', owner)} Durum")
        for c in shown:
            print(f"{fit(c['firm'], width)} {c['branch']:<5} {month_label(c['period']):<14} {fit(c['owner'], owner)} "
                  f"{c['text']}")
        print(summary.message)
    return EXIT_OK


def cmd_check_local(args) -> int:
    from edefter_helper import actions

    return _run(actions.check_local, args, full=args.full)


def cmd_drill(args) -> int:
    from edefter_helper import drill

    if not 0 < args.sample <= 100:
        raise UsageError("--sample 0'dan büyük ve en çok 100 olmalı.")
    if args.recent < 0:
        raise UsageError("--recent negatif olamaz.")
    import random

    rng = random.Random(args.seed) if args.seed is not None else None
    return _run(drill.drill, args, sample_pct=args.sample, recent_days=args.recent, rng=rng)


def cmd_query(args) -> int:
    from edefter_helper import actions

    where = _where(args)
    book = _book(args)
    _firms_known(args, book)
    return _run(actions.query, args, book, where=where)


def cmd_backup(args) -> int:
    from edefter_helper import actions

    return _run(actions.backup, args, all_months=args.all)


def cmd_status(args) -> int:
    from edefter_helper import paths
    from edefter_helper.journal import Journal
    from edefter_helper.settings import describe_target

    path = paths.journal_path(args.journal)
    if not path.exists():
        if args.journal:
            raise UsageError(f"Günlük dosyası bulunamadı: {path}. Bu yolda hiç çalışma yapılmamış; --journal "
                             f"yolunu denetleyin.")
        statuses = []
    else:
        if path.is_dir():
            raise UsageError(f"Günlük veritabanı açılamadı / bozuk: {path} bir klasör.")
        try:
            journal = Journal(path)
            try:
                statuses = journal.statuses()
            finally:
                journal.close()
        except sqlite3.DatabaseError as exc:
            raise _journal_error(path, exc) from None
    copies = _status_copies(args, path) if getattr(args, "workbook", None) else None
    if args.json:
        out = {"journal": str(path), "months": [s.as_json() for s in statuses]}
        if copies is not None:  # the Kopyalar sheet and Dönemler's two columns, from this journal
            out["periods"], out["copies"] = copies
        _print_json(out)
        return EXIT_OK
    if copies is not None:
        periods, rows = copies
        width = max([len("Hedef")] + [len(c["target"]) for c in rows])
        print(f"{'VKN/TCKN':<11} {'Şube':<5} {'Dönem':<8} {'Hedef':<{width}} {'Durum':<26} Kopyalar / Açıklama")
        summary = {(p["vkn"], p["branch"], p["period"]): p["copies"] for p in periods}
        for c in rows:
            print(f"{c['vkn']:<11} {c['branch']:<5} {c['period']:<8} {c['target']:<{width}} {c['status']:<26} "
                  f"{summary[(c['vkn'], c['branch'], c['period'])]} — {c['message']}")
        return EXIT_OK
    if not statuses:
        print(f"Günlükte kayıt yok ({path}): " + ("bu günlükle henüz hiç yedekleme yapılmamış." if path.exists()
                                                  else "bu bilgisayarda henüz hiç yedekleme çalıştırılmamış."))
        return EXIT_OK
    targets = {s.target: describe_target(s.target) for s in statuses}
    width = max([len("Hedef")] + [len(t) for t in targets.values()])
    print(f"{'VKN/TCKN':<11} {'Şube':<5} {'Dönem':<8} {'Durum':<26} {'Hedef':<{width}} Açıklama")
    for s in statuses:
        print(f"{s.key.vkn:<11} {s.key.branch:<5} {s.key.period:<8} {s.status:<26} {targets[s.target]:<{width}} "
              f"{s.message}")
    return EXIT_OK


def _status_copies(args, path: Path) -> tuple[list[dict], list[dict]]:
    """(Dönemler's month rows, Kopyalar's rows) from the journal and the workbook's firms and Hedefs, as
    'Durumu Yenile' computes them (no folder scan); nothing is written."""
    from edefter_helper import status
    from edefter_helper.copies import json_row
    from edefter_helper.journal import Journal
    from edefter_helper.settings import read_settings
    from edefter_helper.sheetview import journal_rows
    from edefter_helper.workbook import layout

    book = _book(args)
    firms, targets, _ = read_settings(book)
    journal = Journal(path if path.exists() else Path(":memory:"))  # a status never creates a journal
    try:
        rows, copies = journal_rows(journal, firms, targets, book.read_rows(layout.PERIODS),
                                    book.read_rows(layout.COPIES))
    finally:
        journal.close()
    periods = [{"name": r["name"], "vkn": r["vkn"], "branch": r["branch"], "period": r["period"],
                "status": r["status"], "state": status.code(r["status"]), "copies": r["copies"]} for r in rows]
    return periods, [json_row(c) for c in copies]


# -- workbook -------------------------------------------------------------------------------

def cmd_workbook_new(args) -> int:
    from edefter_helper.addin.check import new_workbook

    try:
        path = new_workbook(args.path, args.interpreter or sys.executable)
    except (FileExistsError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(f"Kontrol çalışma kitabı oluşturuldu: {path}")
    return EXIT_OK


def cmd_workbook_upgrade(args) -> int:
    from edefter_helper.addin.check import upgrade_workbook
    from edefter_helper.workbook.file import WorkbookError

    from edefter_helper.workbook.file import read_only

    if not Path(args.path).is_file():
        raise UsageError(f"Çalışma kitabı bulunamadı: {args.path}")
    if read_only(Path(args.path)):
        raise UsageError(f"Çalışma kitabı salt okunur: {args.path}; yükseltilmedi. Salt okunur özelliğini "
                         f"kaldırıp yeniden deneyin.")
    before = Path(args.path).stat()
    try:
        path, backup = upgrade_workbook(args.path, args.interpreter)
    except WorkbookError as exc:
        raise UsageError(str(exc)) from None
    except PermissionError:
        raise UsageError(f"{args.path} yazılamadı: Excel'de açık olabilir ya da yazma izniniz yok.") from None
    _keep_mode(path, before)
    print(f"Çalışma kitabı güncel şablona yükseltildi: {path}\nEski hâli: {backup}")
    return EXIT_OK


def _keep_mode(path: Path, before) -> None:
    """The upgraded file replaces the old one: it keeps the old one's mode, owner and group."""
    import os
    import stat

    if os.name == "nt":
        return
    try:
        if (before.st_uid, before.st_gid) != (os.geteuid(), os.getegid()):
            os.chown(path, before.st_uid, before.st_gid)
    except OSError:
        pass
    try:
        os.chmod(path, stat.S_IMODE(before.st_mode))
    except OSError:
        pass


def cmd_workbook_check(args) -> int:
    from edefter_helper.addin.check import check_workbook

    if not Path(args.path).is_file():
        raise UsageError(f"Çalışma kitabı bulunamadı: {args.path}")
    findings = check_workbook(args.path)
    for f in findings:
        print(f"- {f}")
    if not findings:
        print("Kurulum tamam: şerit, makrolar, xlwings sürümü ve Python yolu uygun.")
    return EXIT_PROBLEMS if findings else EXIT_OK


def cmd_workbook_build(args) -> int:
    from edefter_helper.addin import build

    sources = Path(build.ADDIN_DIR)
    missing = [name for name in ("callbacks.bas", "customUI.xml", "customUI14.xml") if not (sources / name).is_file()]
    if missing:  # a normal (non-editable) pip install ships the built template, not its sources
        raise UsageError(f"'workbook build-template' şablonu kaynaklarından üretir ve bir kaynak kopyası ister "
                         f"(git clone; {sources} içinde {', '.join(missing)} bulunamadı). Kurulu paketin şablonu "
                         f"hazırdır: yeni bir kontrol çalışma kitabı için 'edefter workbook new DOSYA.xlsm'.")
    out = build.build_template(args.out or build.TEMPLATE, addin_dir=sources)
    print(out)
    return EXIT_OK


# -- server ---------------------------------------------------------------------------------

def _read_password(args, prompt: str) -> str:
    from edefter_helper import credentials

    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not line:
            raise UsageError("Şifre boş olamaz: standart girdi boş geldi (ör. echo ŞİFRE | edefter ... "
                             "--password-stdin).")
        if not password.strip():
            raise UsageError("Şifre boş olamaz.")
        return password
    if not sys.stdin.isatty():
        raise UsageError("Şifre sorulamıyor (etkileşimsiz oturum); --password-stdin kullanın.")
    return credentials.prompt_password(prompt)


# `edefter serve` and `edefter server ...` live beside the server: edefter_helper/server/cli.py


# -- credentials ----------------------------------------------------------------------------

def cmd_credentials(args) -> int:
    from edefter_helper import credentials
    from edefter_helper.targets.base import CredentialsError

    try:
        if args.op == "set":
            credentials.set_password(args.target, args.user, _read_password(args, "Şifre: "))
            print(f"Şifre anahtar zincirine kaydedildi: {args.target} / {args.user}")
        elif args.op == "delete":
            gone = credentials.delete_password(args.target, args.user)
            print("Şifre silindi." if gone else "Kayıtlı şifre yoktu.")
        else:
            if not credentials.keyring_available():
                print("edefter: Bu bilgisayarda kullanılabilir bir anahtar zinciri (keyring) yok; şifreler "
                      f"saklanamaz ve okunamaz. {credentials.NO_KEYRING_HINT}", file=sys.stderr)
                return EXIT_PROBLEMS
            ok = credentials.check(args.target, args.user)
            print(f"Şifre kayıtlı: {args.target} / {args.user}" if ok
                  else f"Şifre kayıtlı değil: {args.target} / {args.user}")
            return EXIT_OK if ok else EXIT_PROBLEMS
    except CredentialsError as exc:
        print(f"edefter: {exc.message}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def cmd_demo(args) -> int:
    from edefter_helper.demo import run_demo

    return run_demo(Path(args.dir) if args.dir else None, force=args.force)


# -- registration ---------------------------------------------------------------------------

def _workbook_arg(p) -> None:
    p.add_argument("--workbook", required=True, metavar="DOSYA", help="kontrol çalışma kitabı (.xlsm)")
    p.add_argument("--journal", metavar="DOSYA", help="günlük veritabanı (varsayılan: kullanıcı veri klasörü; "
                   "EDEFTER_JOURNAL)")
    p.add_argument("--json", action="store_true")


def register(sub) -> None:
    p = sub.add_parser("refresh", help="firmaların klasörlerini tarar, Dönemler sayfasını yeniler (Tara)")
    _workbook_arg(p)
    p.set_defaults(func=cmd_refresh)

    for name, func, text in (("send", cmd_send, "seçilen ayları gönderir (Gönder)"),
                             ("query", cmd_query, "gönderilen ayların durumunu sorar (Durum Sorgula)")):
        p = sub.add_parser(name, help=text)
        _workbook_arg(p)
        p.add_argument("--firm", action="append", metavar="VKN")
        p.add_argument("--period", nargs="+", metavar="YYYY-AA")
        p.add_argument("--parallel", type=int, metavar="N")
        p.set_defaults(func=func)

    p = sub.add_parser("backup", help="yedeklenmemiş tüm ayları gönderir ve onay bekler (Toplu Yedekle)")
    _workbook_arg(p)
    p.add_argument("--all", action="store_true", help="Otomatik Yedekleme = Hayır olan firmalar da")
    p.add_argument("--parallel", type=int, metavar="N", help="aynı anda yükleme sayısı (4)")
    p.add_argument("--wait", type=float, metavar="SANİYE", help="onay için en çok bekleme (120)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="dönemleri hedeften geri yükler, doğrular, İbraz Raporu yazar (Geri Yükle)")
    _workbook_arg(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--firm", metavar="VKN", help="bu VKN/TCKN'nin dönemleri")
    who.add_argument("--all", action="store_true", help="bütün firmaların dönemleri")
    p.add_argument("--branch", metavar="ŞŞŞŞ", help="yalnız bu şube (--firm ile)")
    p.add_argument("--from", dest="start", metavar="YYYY-AA", help="bu dönemden başlayarak (hedefe de sorulur)")
    p.add_argument("--to", dest="end", metavar="YYYY-AA", help="bu döneme kadar")
    p.add_argument("--source", metavar="HEDEF", help="firmanın hedefi yerine bu Hedef'ten")
    p.add_argument("--out", required=True, metavar="KLASÖR", help="dosyaların yazılacağı klasör (boş olmalı)")
    p.add_argument("--into-existing", action="store_true",
                   help="dolu klasöre ekle (var olan, içeriği farklı dosyaya asla yazılmaz)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("drill", help="hedeflerdeki kopyalardan örnek alır, geri indirip doğrular (Yedek Doğrulama)")
    _workbook_arg(p)
    p.add_argument("--sample", type=float, default=2.0, metavar="YÜZDE", help="her hedeften örnek oranı (2)")
    p.add_argument("--recent", type=float, default=7.0, metavar="GÜN",
                   help="son bu kadar günde saklanan her ay da doğrulanır (7)")
    p.add_argument("--seed", type=int, metavar="SAYI",
                   help="örneği bu sayıyla seçer: aynı sayı aynı ayları seçer (denetimde tekrar için)")
    p.set_defaults(func=cmd_drill)

    p = sub.add_parser("target", help="bir hedefi denetler: bağlantı, şifre ve (S3) silinemezlik (WORM)")
    tsub = p.add_subparsers(dest="target_command", metavar="İŞLEM", parser_class=sub._parser_class)
    tsub.required = True
    t = tsub.add_parser("check", help="hedefe bağlanır; S3 hedefinde kilitli bir deneme nesnesiyle WORM'u sınar")
    _workbook_arg(t)
    t.add_argument("name", metavar="HEDEF", help="Hedefler sayfasındaki Hedef adı")
    t.add_argument("--user", metavar="KULLANICI", help="Kullanıcı Adı (varsayılan: bu hedefi kullanan ilk firmanınki)")
    t.set_defaults(func=cmd_target_check)

    p = sub.add_parser("radar", help="firmaların aylarını tek tabloda gösterir: son gün, eksik, yedek (Takvim)")
    _workbook_arg(p)
    p.add_argument("--sorumlu", metavar="AD", help="yalnız bu Sorumlu'nun firmaları")
    p.add_argument("--within", type=int, metavar="GÜN", help="yalnız son günü bu kadar gün içinde olan ya da geçmiş aylar")
    p.add_argument("--months", type=int, default=15, metavar="N", help="kaç ay geriye (15)")
    p.set_defaults(func=cmd_radar)

    p = sub.add_parser("check-local", help="diskteki dosyaları yedeklenenlerle karşılaştırır (Yerel Dosya Kontrolü)")
    _workbook_arg(p)
    p.add_argument("--full", action="store_true", help="değişmemiş görünen dosyaları da yeniden özetler")
    p.set_defaults(func=cmd_check_local)

    p = sub.add_parser("worker", help="(şerit için) Toplu Yedekle'yi bir ayar dosyasıyla arka planda çalıştırır")
    p.add_argument("--settings", required=True, metavar="DOSYA", help="şeridin yazdığı ayar dosyası (JSON)")
    p.add_argument("--journal", metavar="DOSYA")
    p.add_argument("--all", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("status", help="günlükteki yedekleme durumları")
    p.add_argument("--json", action="store_true")
    p.add_argument("--journal", metavar="DOSYA")
    p.add_argument("--workbook", metavar="DOSYA", help="kontrol çalışma kitabı: her dönemin her hedefteki kopyası "
                   "(Kopyalar sayfasındaki gibi)")
    p.set_defaults(func=cmd_status)

    wb = sub.add_parser("workbook", help="kontrol çalışma kitabı")
    wsub = wb.add_subparsers(dest="wb_command", metavar="İŞLEM", parser_class=sub._parser_class)
    wsub.required = True
    p = wsub.add_parser("new", help="şablondan yeni kontrol çalışma kitabı")
    p.add_argument("path", metavar="DOSYA")
    p.add_argument("--interpreter", metavar="PYTHON", help="xlwings'in kullanacağı Python (varsayılan: bu)")
    p.set_defaults(func=cmd_workbook_new)
    p = wsub.add_parser("upgrade", help="eski bir kontrol çalışma kitabını satırlarını koruyarak güncel şablona taşır")
    p.add_argument("path", metavar="DOSYA")
    p.add_argument("--interpreter", metavar="PYTHON", help="xlwings'in kullanacağı Python (varsayılan: kitaptaki)")
    p.set_defaults(func=cmd_workbook_upgrade)
    p = wsub.add_parser("check", help="düğmeleri durduracak sorunları bildirir (Kurulum Kontrolü)")
    p.add_argument("path", metavar="DOSYA")
    p.set_defaults(func=cmd_workbook_check)
    p = wsub.add_parser("build-template", help="workbook_template.xlsm'i addin/ kaynaklarından üretir")
    p.add_argument("out", nargs="?", metavar="DOSYA")
    p.set_defaults(func=cmd_workbook_build)

    from edefter_helper.server.cli import register as register_server

    register_server(sub)  # serve, server user-add | reindex | delete

    from edefter_helper.agent import register as register_agent

    register_agent(sub)  # agent run | install | uninstall | status

    p = sub.add_parser("credentials", help="entegratör şifresini işletim sisteminin anahtar zincirinde tutar")
    p.add_argument("op", choices=("set", "delete", "check"))
    p.add_argument("--target", required=True, metavar="HEDEF")
    p.add_argument("--user", required=True, metavar="KULLANICI")
    p.add_argument("--password-stdin", action="store_true", help="şifreyi standart girdiden oku (betikler)")
    p.set_defaults(func=cmd_credentials)

    p = sub.add_parser("demo", help="örnek aylarla uçtan uca gösterim")
    p.add_argument("dir", nargs="?", metavar="KLASÖR")
    p.add_argument("--force", action="store_true",
                   help="klasörde önceki bir demo varsa onu silip yeniden oluşturur (yalnız demonun kendi dosyaları)")
    p.set_defaults(func=cmd_demo)


REGISTER = [register]
