"""A local or network folder (NAS share, USB disk) as a storage target.

Layout: `<root>/<VKN>/<VKN-YYYYMM-ŞŞŞŞ>.zip` plus a sidecar `<...>.zip.json` holding the
description and the receipt. A month is stored once, like at İzibiz: the same package again gets
the same receipt, a different one is refused until the month is cancelled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.names import valid_period
from edefter_helper.fsutil import atomic_write, sha256_file
from edefter_helper.targets.base import (
    MISSING, STORED, Package, Receipt, RejectedError, Target, TargetError,
)

CHUNK = 1024 * 1024


log = logging.getLogger(__name__)
_PACKAGE = re.compile(r"(\d{10,11})-(\d{4})(\d{2})-(\d{4})\.zip", re.ASCII)  # MonthKey.package_name


def _atomic_write(dest: Path, write) -> None:
    with atomic_write(dest) as f:
        write(f)


class FolderTarget(Target):
    kind = "folder"

    def __init__(self, path: str | os.PathLike):
        self.root = Path(path)

    # paths
    def _zip(self, key: MonthKey) -> Path:
        return self.root / key.vkn / key.package_name

    def _sidecar(self, key: MonthKey) -> Path:
        return self._zip(key).with_name(key.package_name + ".json")

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise TargetError(f"Yedek klasörü bulunamadı veya erişilemiyor: {self.root}")

    def _os_error(self, action: str, exc: OSError) -> TargetError:
        return TargetError(f"Yedek klasörüne {action} ({self.root}): {exc.strerror or exc}")

    def _read_sidecar(self, key: MonthKey) -> dict:
        try:
            meta = json.loads(self._sidecar(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}  # a sidecar someone else wrote: nothing to go by

    def _receipt(self, key: MonthKey, sha: str, meta: dict, message: str) -> Receipt:
        return Receipt(state=STORED, reference=meta.get("reference", ""), sha256=sha, message=message,
                       extra={"path": str(self._zip(key)), "stored_at": meta.get("stored_at", ""),
                              "description": meta.get("description", "")})

    # Target
    def send(self, package: Package, description: str) -> Receipt:
        self._check_root()
        key = package.key
        dest = self._zip(key)
        try:
            dest.parent.mkdir(exist_ok=True)
            kept: dict = {}
            if dest.exists():
                held = sha256_file(dest)
                if held == package.sha256:
                    return self._receipt(key, held, self._read_sidecar(key),
                                         "Bu paket klasörde zaten saklanıyor.")
                kept = self._read_sidecar(key)
                if kept.get("sha256") != package.sha256:
                    raise RejectedError(
                        f"{key.package_name} için klasörde farklı bir paket saklanıyor. Aynı dönem bir kez "
                        "saklanır; yeniden göndermek için önce iptal edilmeli."
                    )
                # the sidecar vouches that this very package was stored: the bytes at rest were damaged
                # (a drill says so); putting the same package back is a repair, not a second package
                log.warning("Bozuk paket aynı paketle yeniden yazılıyor: %s", dest)

            h = hashlib.sha256()

            def copy(out):
                with open(package.path, "rb") as src:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                if h.hexdigest() != package.sha256:
                    # the package changed after it was built: nothing is published (atomic_write drops it)
                    raise RejectedError(
                        f"{key.package_name} paketi oluşturulduktan sonra değişmiş; paket yeniden oluşturulmalı."
                    )

            _atomic_write(dest, copy)
            held = sha256_file(dest)  # read back what the disk really holds
            if held != package.sha256:
                if not kept:  # a new copy: keep nothing half-trusted (a repaired one stays for the drill to see)
                    dest.unlink()
                raise TargetError(f"{key.package_name} klasöre yazıldı ama geri okunan içerik farklı; "
                                  "disk veya ağ bağlantısı kontrol edilmeli.")
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if kept:
                meta = {**kept, "repaired_at": stamp}
            else:
                meta = {"package": key.package_name, "sha256": held, "size": package.size,
                        "description": description, "reference": uuid.uuid4().hex, "stored_at": stamp}
            body = json.dumps(meta, ensure_ascii=False, indent=2).encode("utf-8")
            _atomic_write(self._sidecar(key), lambda f: f.write(body))
        except OSError as exc:
            raise self._os_error("yazılamadı", exc) from None
        return self._receipt(key, held, meta, "Klasördeki bozuk kopya aynı paketle yeniden yazıldı ve geri okunarak "
                             "doğrulandı." if kept else "Paket klasöre kopyalandı ve geri okunarak doğrulandı.")

    def months(self, vkn: str) -> list[MonthKey] | None:
        self._check_root()
        found = []
        try:
            names = os.listdir(self.root / vkn)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._os_error("okunamadı", exc) from None
        for name in names:
            m = _PACKAGE.fullmatch(name)
            if m and m.group(1) == vkn and valid_period(period := f"{m.group(2)}-{m.group(3)}"):
                found.append(MonthKey(vkn, m.group(4), period))
        return sorted(found)

    def query(self, key: MonthKey) -> Receipt:
        self._check_root()
        dest = self._zip(key)
        if not dest.is_file():
            return Receipt(state=MISSING, message="Klasörde bu aya ait paket yok.")
        try:
            held = sha256_file(dest)
        except OSError as exc:
            raise self._os_error("erişilemedi", exc) from None
        meta = self._read_sidecar(key)
        message = "Paket klasörde saklanıyor."
        if meta.get("sha256") and meta["sha256"] != held:
            message = "Klasördeki paket gönderilenden farklı: dosya sonradan değişmiş olabilir."
        return self._receipt(key, held, meta, message)

    def fetch(self, key: MonthKey, dest: Path) -> Path:
        self._check_root()
        src = self._zip(key)
        if not src.is_file():
            raise TargetError(f"{key.package_name} klasörde bulunamadı.")
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)

            def copy(out):
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, CHUNK)

            _atomic_write(dest, copy)
        except OSError as exc:
            raise self._os_error("erişilemedi", exc) from None
        return dest

    def cancel(self, key: MonthKey) -> Receipt:
        self._check_root()
        try:
            for path in (self._zip(key), self._sidecar(key)):
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._os_error("erişilemedi", exc) from None
        return Receipt(state=MISSING, message=f"{key.package_name} klasörden silindi (iptal edildi).")


def _open(address: str, user: str, password: str | None, timeout=None) -> FolderTarget:
    return FolderTarget(address)


from edefter_helper.targets.registry import TargetKind, register  # noqa: E402  (registers this kind)

register(TargetKind("klasör", "Klasör (NAS, ağ paylaşımı, USB disk)", needs_password=False,
                    address_help="klasörün yolu, ör. \\\\NAS\\Yedek ya da D:\\e-Defter Yedek",
                    open=_open, aliases=("klasor", "folder")))
