"""`edefter demo`: the whole job end to end on sample months, with nothing to set up.

Writes sample months for three firms (one keeps e-Defter per branch), starts the storage server
on loopback in this process, creates a control workbook from the template, runs Toplu Yedekle
(send, then query until confirmed) and Durum Sorgula, prints the months and leaves the
workbook to open. The demo's passwords live in a keyring that exists only inside this process:
they are random, and the server they open is gone when the demo ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import sys
from datetime import datetime
from pathlib import Path

import keyring.backend

from edefter_helper import status as S
from edefter_helper.workbook import layout as L

FIRMS = (
    # name, vkn, branch, periods, layout folder
    ("Anadolu Gıda Sanayi ve Ticaret A.Ş.", "4810525635", "", ("2018-12", "2019-01", "2024-01", "2024-02")),
    ("Ayşe Gülşen Öztürk", "12345678950", "", ("2023-06", "2023-07")),
    ("Ege Tekstil Ltd. Şti. — İzmir Şubesi", "7420300220", "0001", ("2024-03", "2024-04")),
)
TARGET = "Yerel Sunucu"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """Holds the demo's throw-away passwords in memory; never written anywhere."""

    priority = 1

    def __init__(self):
        super().__init__()
        self._items: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self._items.get((service, username))

    def set_password(self, service, username, password):
        self._items[(service, username)] = password

    def delete_password(self, service, username):
        self._items.pop((service, username), None)


def _write_months(root: Path) -> None:
    from edefter_helper.samples import write_month

    for seed, (name, vkn, branch, periods) in enumerate(FIRMS):
        for period in periods:
            year, month = period.split("-")
            folder = root / name / vkn / f"01.01.{year}-31.12.{year}" / month
            write_month(folder, vkn, period, branch=branch or None, company=name.split(" — ")[0],
                        parts=2 if period == "2024-02" else 0, seed=seed)


DEMO_ITEMS = ("defterler", "sunucu", "kontrol.xlsm", "gunluk.sqlite3", "gunluk.sqlite3-wal", "gunluk.sqlite3-shm",
              "gunluk.sqlite3.lock", ".~kontrol.xlsm.edefter-lock")


def _clear(base: Path) -> None:
    """--force: remove what an earlier demo wrote in `base` (its own names only; nothing else)."""
    import shutil

    def writable_again(func, path, _exc):  # the demo server stores packages read-only
        os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
        func(path)

    for name in DEMO_ITEMS:
        item = base / name
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, onerror=writable_again)
        elif item.exists() or item.is_symlink():
            item.unlink()


def _choose_folder(base: Path | None, force: bool) -> Path | None:
    """The folder to write: a given one must be free (or --force); the default one moves on to
    edefter-demo-2, -3 … when an earlier demo is there, and says so."""
    if base is not None:
        base = Path(base).resolve()
        if (base / "kontrol.xlsm").exists():
            if not force:
                print(f"edefter: {base / 'kontrol.xlsm'} zaten var: bu klasörde daha önce demo çalışmış. Silip "
                      f"yeniden oluşturmak için 'edefter demo {base} --force', ya da başka bir klasör verin.",
                      file=sys.stderr)
                return None
            _clear(base)
        return base
    first = Path("edefter-demo").resolve()
    if not (first / "kontrol.xlsm").exists():
        return first
    if force:
        _clear(first)
        print(f"Önceki demo silindi: {first}")
        return first
    n = 2
    while (first.with_name(f"{first.name}-{n}") / "kontrol.xlsm").exists():
        n += 1
    chosen = first.with_name(f"{first.name}-{n}")
    print(f"{first} önceki bir demodan kalmış; bu demo {chosen} klasörüne yazılıyor "
          f"(öncekinin üzerine yazmak için: edefter demo --force).")
    return chosen


def run_demo(base: Path | None = None, force: bool = False) -> int:
    from edefter_helper import actions, credentials, server
    from edefter_helper.addin.check import new_workbook
    from edefter_helper.workbook.file import FileBook

    base = _choose_folder(base, force)
    if base is None:
        return 2
    ledgers, store = base / "defterler", base / "sunucu"
    workbook = base / "kontrol.xlsm"
    journal = base / "gunluk.sqlite3"
    base.mkdir(parents=True, exist_ok=True)
    print(f"1) Örnek e-Defter ayları yazılıyor: {ledgers}")
    _write_months(ledgers)

    keyring.set_keyring(MemoryKeyring())
    logging.getLogger("waitress").setLevel(logging.ERROR)  # its queue notices are not for users
    print("2) Yedek depolama sunucusu başlatılıyor (yalnızca bu bilgisayar, 127.0.0.1)")
    # its own process, as an office runs `edefter serve`: in this one it would share one interpreter lock
    # with the packing (bench/RESULTS.md, "Bulk backup (issue 12)")
    handle = server.start_in_subprocess(store, log_level=logging.WARNING)
    try:
        firms_rows = []
        for name, vkn, branch, _ in FIRMS:
            user = f"demo-{vkn}"
            password = secrets.token_urlsafe(18)
            server.add_user(store, user, password, [vkn])
            credentials.set_password(TARGET, user, password)
            firms_rows.append({"name": name, "vkn": vkn, "branch": branch, "folder": str(ledgers),
                               "target": TARGET, "user": user, "auto": L.YES})
        print(f"3) Kontrol çalışma kitabı oluşturuluyor: {workbook}")
        new_workbook(workbook)
        book = FileBook(workbook)
        book.write_rows(L.FIRMS, firms_rows)
        book.write_rows(L.TARGETS, [{"name": TARGET, "kind": "http", "address": handle.url,
                                     "description": L.DEFAULT_DESCRIPTION}])
        book.append_rows(L.LOG, [{"time": datetime.now().replace(microsecond=0), "action": "Demo", "status": "Bilgi",
                                  "message": _journal_note(journal)}])
        book.save()
        options = actions.Options(journal=journal, wait=60)
        print("4) Toplu Yedekle: doğrula → paketle → gönder → saklandığını sorgula")
        summary = actions.backup(FileBook(workbook), options=options)
        print(f"   {summary.message}")
        print("5) Durum Sorgula")
        summary = actions.query(FileBook(workbook), options=options)
        print(f"   {summary.message}")
        rows = FileBook(workbook).read_rows(L.PERIODS)
    finally:
        handle.stop()
    print()
    print(f"{'Firma':<36} {'Şube':<5} {'Dönem':<8} {'Doğrulama':<10} Yedekleme Durumu")
    for r in rows:
        print(f"{str(r['name'])[:36]:<36} {r['branch'] or '':<5} {r['period']:<8} {r['validation'] or '':<10} "
              f"{r['status']}")
    done = sum(1 for r in rows if r["status"] == S.BACKED_UP)
    print()
    print(f"{done}/{len(rows)} dönem yedeklendi. Çalışma kitabı: {workbook}")
    print(_journal_note(journal))
    print("Demo sunucusu durdu ve şifreleri yalnızca bu çalışmanın belleğindeydi: Tara, Takvim / Radar ve Yerel "
          "Dosya Kontrolü çalışmaya devam eder; Gönder, Durum Sorgula ve Geri Yükle bu kitapla artık çalışmaz "
          "(sunucu yok, şifreler silindi). Yeniden denemek için: edefter demo (yeni bir klasöre yazar).")
    return 0 if rows and done == len(rows) else 1


def _journal_note(journal: Path) -> str:
    return (f"Bu demo çalışma kitabının günlüğü: {journal}. Excel düğmeleri ve --journal verilmeyen komutlar "
            f"kullanıcının varsayılan günlüğünü kullanır; bu kitabın durumları için komutlara "
            f"--journal {journal} verin.")
