"""`edefter demo`: the whole job end to end on sample months, with nothing to set up.

Writes sample months for three firms (one keeps e-Defter per branch), starts the storage server
on loopback in this process, creates a control workbook from the template, runs Toplu Yedekle
(send, then query until confirmed) and Durum Sorgula, prints the months and leaves the
workbook to open. The demo's passwords live in a keyring that exists only inside this process:
they are random, and the server they open is gone when the demo ends.
"""

from __future__ import annotations

import logging
import secrets
import sys
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


def run_demo(base: Path | None = None) -> int:
    from edefter_helper import actions, credentials, server
    from edefter_helper.addin.check import new_workbook
    from edefter_helper.workbook.file import FileBook

    base = Path(base or "edefter-demo").resolve()
    ledgers, store = base / "defterler", base / "sunucu"
    workbook = base / "kontrol.xlsm"
    if workbook.exists():
        print(f"edefter: {workbook} zaten var; demo başka bir klasörde çalıştırılmalı "
              f"(ör. 'edefter demo {base}-2').", file=sys.stderr)
        return 2
    base.mkdir(parents=True, exist_ok=True)
    print(f"1) Örnek e-Defter ayları yazılıyor: {ledgers}")
    _write_months(ledgers)

    keyring.set_keyring(MemoryKeyring())
    logging.getLogger("waitress").setLevel(logging.ERROR)  # its queue notices are not for users
    print("2) Yedek depolama sunucusu başlatılıyor (yalnızca bu bilgisayar, 127.0.0.1)")
    handle = server.start_in_thread(store)
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
        book.save()
        options = actions.Options(journal=base / "gunluk.sqlite3", wait=60)
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
    return 0 if rows and done == len(rows) else 1
