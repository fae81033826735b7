"""Yerel Dosya Kontrolü: the files on disk against what was backed up, to notice tampering,
ransomware and decay early (while the 15 days of TTK 82/7 still run).

The journal holds, for every backed-up month, each file's name, size and sha256. The month's current
files come from the scan and verify that every refresh runs anyway; their sha256 is known by file
identity (size, mtime, ctime, inode) from the verify cache, so an unchanged tree costs no hashing.
`full=True` hashes every file again. Only reads: nothing near the ledgers is written or moved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from edefter_helper.engine.model import MonthKey, MonthSet

KINDS_TR = {
    "changed": "içeriği değişti",
    "truncated": "kısaldı",
    "grown": "boyutu değişti",
    "deleted": "silinmiş",
    "renamed": "adı değişmiş",
    "encrypted": "uzantısı değişmiş (fidye yazılımı belirtisi)",
}
ADVICE = ("Değişiklik bilerek yapılmadıysa (fidye yazılımı, disk bozulması) yedekteki iyi kopyayı "
          "'Geri Yükle' ile alın; GİB'de iptal ve yeniden gönderim yapıldıysa dönemi yeniden gönderin.")


@dataclass(frozen=True)
class Finding:
    key: MonthKey
    firm: str
    name: str  # the backed-up file's name
    kind: str  # a key of KINDS_TR
    detail: str  # Turkish, for the user
    path: str | None = None  # where the changed/renamed/encrypted file is now

    @property
    def message(self) -> str:
        return f"Yerel dosya yedekten farklı: {self.name} ({self.detail})."

    def as_json(self) -> dict:
        return {"vkn": self.key.vkn, "branch": self.key.branch, "period": self.key.period, "firm": self.firm,
                "file": self.name, "kind": self.kind, "message": self.message, "path": self.path}


def check(backed_up: Iterable[tuple[MonthKey, str, list[tuple[str, int, str]]]],
          sets: dict[MonthKey, MonthSet], folder_of: Callable[[MonthKey], str | None],
          *, full: bool = False, hasher: Callable[[Path], str] | None = None) -> list[Finding]:
    """Compare each backed-up month (key, firm name, [(name, size, sha256)]) with the files on disk.

    `sets` are the verified month sets of this refresh (their files carry sha256); `folder_of` names
    the firm folder to search for renamed or re-extended copies; `full` re-hashes with `hasher`."""
    from edefter_helper.fsutil import sha256_file

    hasher = hasher or sha256_file
    findings: list[Finding] = []
    listings: dict[str, dict[str, list[str]]] = {}
    for key, firm, recorded in backed_up:
        ms = sets.get(key)
        now: dict[str, tuple[int, str | None, str]] = {}
        if ms is not None:
            for f in ms.files:
                sha = hasher(f.path) if full else f.sha256
                now[os.path.basename(f.location)] = (f.size, sha, f.location)
        by_sha = {sha: (name, loc) for name, (_, sha, loc) in now.items() if sha}
        for name, size, sha in recorded:
            here = now.get(name)
            if here is not None:
                cur_size, cur_sha, loc = here
                if cur_sha == sha and cur_size == size:
                    continue
                if cur_size < size:
                    findings.append(Finding(key, firm, name, "truncated", f"kısaldı: {size} → {cur_size} bayt", loc))
                elif cur_size != size:
                    findings.append(Finding(key, firm, name, "grown", f"boyut değişti: {size} → {cur_size} bayt", loc))
                else:
                    findings.append(Finding(key, firm, name, "changed", "aynı boyutta, içeriği değişti", loc))
                continue
            moved = by_sha.get(sha)
            if moved is not None and moved[0] not in {n for n, _, _ in recorded}:
                findings.append(Finding(key, firm, name, "renamed", f"adı değişmiş: şimdi {moved[0]}", moved[1]))
                continue
            root = folder_of(key)
            elsewhere = _same_bytes_elsewhere(size, sha, root, listings, hasher) if root else None
            if elsewhere:
                findings.append(Finding(key, firm, name, "renamed", f"adı ya da yeri değişmiş: şimdi {elsewhere}",
                                        elsewhere))
                continue
            other = _re_extended(name, root, listings) if root else None
            if other:
                findings.append(Finding(key, firm, name, "encrypted",
                                        f"uzantısı değişmiş: {Path(other).name} (fidye yazılımı belirtisi)", other))
            else:
                findings.append(Finding(key, firm, name, "deleted", "silinmiş", None))
    return findings


def _listing(root: str, listings: dict) -> dict:
    """The firm folder's files by name stem and by size, listed once per check (only when a
    backed-up file is missing)."""
    listing = listings.get(root)
    if listing is None:
        listing = {"stem": {}, "size": {}}
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                path = os.path.join(dirpath, f)
                low = f.lower()
                stem = low.split(".xml", 1)[0] if ".xml" in low else low.split(".zip", 1)[0]
                listing["stem"].setdefault(stem, []).append(path)
                try:
                    listing["size"].setdefault(os.stat(path).st_size, []).append(path)
                except OSError:
                    continue
        listings[root] = listing
    return listing


def _same_bytes_elsewhere(size: int, sha: str, root: str, listings: dict, hasher) -> str | None:
    """A file of the same size and sha256 anywhere in the firm folder (moved or renamed)."""
    for path in _listing(root, listings)["size"].get(size, []):
        try:
            if hasher(Path(path)) == sha:
                return path
        except OSError:
            continue
    return None


def _re_extended(name: str, root: str, listings: dict) -> str | None:
    """A file in the firm folder named like `name` plus more (`X.xml.locked`, `X.xml.encrypted`):
    what ransomware leaves."""
    listing = _listing(root, listings)["stem"]
    base = name.lower()
    stem = base.rsplit(".", 1)[0]
    for path in listing.get(stem, []):
        fname = os.path.basename(path).lower()
        if fname != base and fname.startswith(base + "."):
            return path
    return None


def month_message(findings: list[Finding]) -> str:
    names = ", ".join(f"{f.name} ({f.detail})" for f in findings[:3])
    more = f" ve {len(findings) - 3} dosya daha" if len(findings) > 3 else ""
    return f"Diskteki dosyalar yedeklenenden farklı: {names}{more}. {ADVICE}"

