"""Yerel Dosya Kontrolü: the files on disk against what was backed up, to notice tampering,
ransomware and decay early (while the 15 days of TTK 82/7 still run).

The journal holds, for every backed-up month, each file's name, size and sha256. The month's current
files come from the scan and verify that every refresh runs anyway; their sha256 is known by file
identity (size, mtime, ctime, inode) from the verify cache, so an unchanged tree costs no hashing.
`full=True` hashes every file again (what identity cannot see: a file changed in place with its
times put back on a file system without ctime or file ids). Only reads: nothing near the ledgers is
written or moved.

Each backed-up file is found whole, or named with what happened (KINDS_TR): changed, truncated, grown,
unreadable, replaced (a link, a folder, a pipe or a device in its place — never opened), renamed or
moved (its bytes found elsewhere in the firm folder, each file hashed at most once a check), encrypted
(its name with another or a further extension: what ransomware leaves), deleted; a ledger file of the
month the backup lacks is "added". Every copy of a file found twice under one name is compared.
"""

from __future__ import annotations

import os
import stat
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
    "replaced": "yerinde dosya değil, bağlantı ya da klasör var",
    "unreadable": "okunamadı",
    "added": "yedekte yok, sonradan eklenmiş",
}
ADVICE = ("Değişiklik bilerek yapılmadıysa (fidye yazılımı, disk bozulması) yedekteki iyi kopyayı "
          "'Geri Yükle' ile alın; GİB'de iptal ve yeniden gönderim yapıldıysa dönemi yeniden gönderin.")
WAY_BACK = "Yedekteki iyi kopya 'Geri Yükle' ile alınır."


def shown(text: str | None) -> str | None:
    """A path or name as it can be written anywhere (Excel's XML, JSON, a cp1254 console): bytes that
    are no UTF-8 (Linux keeps them in names; ransomware makes such names) become U+FFFD instead of
    stopping the run that should raise the alarm."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class Finding:
    key: MonthKey
    firm: str
    name: str  # the backed-up file's name (for "added": the new file's)
    kind: str  # a key of KINDS_TR
    detail: str  # Turkish, for the user
    path: str | None = None  # where the changed/renamed/encrypted file is now

    def __post_init__(self):  # every text of a finding can be written to the workbook and to JSON
        for name in ("name", "detail", "path"):
            object.__setattr__(self, name, shown(getattr(self, name)))

    @property
    def message(self) -> str:
        return f"Yerel dosya yedekten farklı: {self.name} ({self.detail}). {WAY_BACK}"

    def as_json(self) -> dict:
        return {"vkn": self.key.vkn, "branch": self.key.branch, "period": self.key.period, "firm": self.firm,
                "file": self.name, "kind": self.kind, "message": self.message, "path": self.path}


def check(backed_up: Iterable[tuple[MonthKey, str, list[tuple[str, int, str]]]],
          sets: dict[MonthKey, MonthSet], folder_of: Callable[[MonthKey], str | None],
          *, full: bool = False, hasher: Callable[[Path], str] | None = None) -> list[Finding]:
    """Compare each backed-up month (key, firm name, [(name, size, sha256)]) with the files on disk.

    `sets` are the verified month sets of this refresh (their files carry sha256); `folder_of` names
    the firm folder to search for renamed or re-extended copies; `full` re-hashes with `hasher`.
    Only reads; a file that cannot be read is a finding of its own, never an exception."""
    from edefter_helper.fsutil import sha256_file

    hasher = hasher or sha256_file
    findings: list[Finding] = []
    listings: dict[str, dict[str, list[str]]] = {}
    for key, firm, recorded in backed_up:
        findings.extend(_check_month(key, firm, recorded, sets.get(key), folder_of, full, hasher, listings))
    return findings


def _check_month(key, firm, recorded, ms, folder_of, full, hasher, listings) -> list[Finding]:
    out: list[Finding] = []
    now: dict[str, list[tuple[int, str | None, str, str]]] = {}  # name -> [(size, sha256, where, why unreadable)]
    folders: list[str] = []
    if ms is not None:
        for f in ms.files:
            name = os.path.basename(f.location)
            sha, why = f.sha256, ""
            if full or not sha:
                try:
                    sha = hasher(f.path)
                except OSError as exc:
                    sha, why = None, exc.strerror or str(exc)
            # the same name twice with other bytes (a second copy of the folder): every copy is looked at
            now.setdefault(name, []).append((f.size, sha, f.location, why))
            folder = os.path.dirname(f.location)
            if folder not in folders:
                folders.append(folder)
    names = {n for n, _, _ in recorded}
    by_sha = {sha: (name, loc) for name, copies in now.items() for _, sha, loc, _ in copies if sha}
    explained: set[str] = set()  # files on disk already named as where a backed-up file went
    for name, size, sha in recorded:
        here = now.get(name)
        if here is not None:
            many = len(here) > 1
            for cur_size, cur_sha, loc, why in here:
                problem = _differs(size, sha, cur_size, cur_sha, loc, why, full)
                if problem is not None:
                    kind, detail = problem
                    out.append(Finding(key, firm, name, kind, f"{detail}; bu kopya: {loc}" if many else detail, loc))
            continue
        # not a file of the month's set any more: a link, a folder or something else in its place?
        odd = next((r for r in (_not_a_file(os.path.join(d, name)) for d in folders) if r), None)
        if odd is not None:
            out.append(Finding(key, firm, name, "replaced", odd[0], odd[1]))
            continue
        moved = by_sha.get(sha)
        if moved is not None and moved[0] not in names:
            explained.add(moved[0])
            out.append(Finding(key, firm, name, "renamed", f"adı değişmiş: şimdi {moved[0]}", moved[1]))
            continue
        root = folder_of(key)
        elsewhere = _same_bytes_elsewhere(size, sha, root, listings, hasher) if root else None
        if elsewhere and _ransom_name(name, os.path.basename(elsewhere)):
            # the bytes are whole but the name is what ransomware leaves (renamed before or instead of encrypting)
            out.append(Finding(key, firm, name, "encrypted",
                               f"uzantısı değişmiş: {os.path.basename(elsewhere)} (fidye yazılımı belirtisi; içerik "
                               f"henüz yedektekiyle aynı)", elsewhere))
            continue
        if elsewhere:
            explained.add(os.path.basename(elsewhere))
            out.append(Finding(key, firm, name, "renamed", f"adı ya da yeri değişmiş: şimdi {elsewhere}", elsewhere))
            continue
        other = _re_extended(name, root, listings) if root else None
        if other:
            out.append(Finding(key, firm, name, "encrypted",
                               f"uzantısı değişmiş: {Path(other).name} (fidye yazılımı belirtisi)", other))
        elif ms is None and root is None:  # not one file of the month, and no firm folder to look in
            out.append(Finding(key, firm, name, "deleted",
                               "silinmiş; firmanın klasörü de bulunamadı ya da erişilemiyor (ağ sürücüsü bağlı mı?)",
                               None))
        else:
            out.append(Finding(key, firm, name, "deleted", "silinmiş", None))
    # ledger files of the month the backup does not hold (a part added, a file put back under a new name)
    for name, copies in sorted(now.items()):
        if name not in names and name not in explained:
            out.append(Finding(key, firm, name, "added", "yedekte yok: yedeklemeden sonra eklenmiş", copies[0][2]))
    return out


def _differs(size: int, sha: str, cur_size: int, cur_sha: str | None, loc: str, why: str,
             full: bool) -> tuple[str, str] | None:
    """(kind, Turkish detail) when the file at `loc` is not the backed-up bytes; None when it is.

    A link with the backed-up bytes behind it is named only by `full` (an lstat per file is a round trip
    per file on a network drive, too dear for every Tara); a link to other bytes is caught by them."""
    if (full or cur_sha != sha or cur_size != size) and os.path.islink(loc):
        same = " (içeriği aynı)" if cur_sha == sha and cur_size == size else ""
        return "replaced", f"yerinde dosya değil, başka bir dosyaya bağlantı (sembolik bağlantı) var: → {_link_target(loc)}{same}"
    if cur_sha == sha and cur_size == size:
        return None
    if cur_sha is None:
        return "unreadable", f"okunamadı: {why or 'erişim yok'}"
    if cur_size == 0 and size:
        return "truncated", f"boyut değişti, boşaltılmış: {size} → 0 bayt"
    if cur_size < size:
        return "truncated", f"boyut değişti, kısaldı: {size} → {cur_size} bayt"
    if cur_size != size:
        return "grown", f"boyut değişti, büyüdü: {size} → {cur_size} bayt"
    return "changed", "aynı boyutta, içeriği değişti"


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _not_a_file(path: str) -> tuple[str, str] | None:
    """What stands where a backed-up file was, when it is not a regular file: (Turkish detail, path)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        detail = (f"yerinde dosya değil, sembolik bağlantı var: → {_link_target(path)} (gösterdiği dosya yok ya da "
                  f"normal bir dosya değil)")
        return detail, path
    if stat.S_ISDIR(st.st_mode):
        return "yerinde dosya değil, aynı adlı bir klasör var", path
    if not stat.S_ISREG(st.st_mode):
        return "yerinde normal bir dosya değil (aygıt, kanal ya da soket)", path
    return None


def _stem(low: str) -> str:
    """A file name's stem for matching what ransomware leaves: up to `.xml` / `.zip` when the name
    has one (`x.xml.locked` -> `x`), else without its last extension (`x.crypt` -> `x`)."""
    for ext in (".xml", ".zip"):
        if ext in low:
            return low.split(ext, 1)[0]
    return low.rsplit(".", 1)[0] if "." in low else low


def _listing(root: str, listings: dict) -> dict:
    """The firm folder's files by name stem and (regular files) by size, listed once per check (only
    when a backed-up file is missing)."""
    listing = listings.get(root)
    if listing is None:
        listing = {"stem": {}, "size": {}, "sha": {}}  # sha: path -> sha256 (None: unreadable), each read once
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                path = os.path.join(dirpath, f)
                listing["stem"].setdefault(_stem(f.lower()), []).append(path)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):  # never a device or a pipe: hashing one could block
                    listing["size"].setdefault(st.st_size, []).append(path)
        listings[root] = listing
    return listing


def _same_bytes_elsewhere(size: int, sha: str, root: str, listings: dict, hasher) -> str | None:
    """A file of the same size and sha256 anywhere in the firm folder (moved or renamed). Each file is
    hashed at most once a check: after ransomware, thousands of missing berats of one size would
    otherwise each hash every other file of that size again."""
    listing = _listing(root, listings)
    known = listing["sha"]
    for path in listing["size"].get(size, []):
        if path not in known:
            try:
                known[path] = hasher(Path(path))
            except OSError:
                known[path] = None
        if known[path] == sha:
            return path
    return None


def _re_extended(name: str, root: str, listings: dict) -> str | None:
    """A file in the firm folder named like `name` with another or a further extension
    (`X.xml.locked`, `X.xml.encrypted`, `X.crypt`): what ransomware leaves. Another e-Defter name
    (`X.zip` beside a missing `X.xml`) is not taken for one."""
    base = name.lower()
    for path in _listing(root, listings)["stem"].get(_stem(base), []):
        if _ransom_name(name, os.path.basename(path)):
            return path
    return None


def _ransom_name(name: str, other: str) -> bool:
    """`other` is `name` with another or a further extension, and no e-Defter name itself."""
    from edefter_helper.engine.names import parse_name

    base, low = name.lower(), other.lower()
    return low != base and _stem(low) == _stem(base) and parse_name(other) is None


def month_message(findings: list[Finding]) -> str:
    names = ", ".join(f"{f.name} ({f.detail})" for f in findings[:3])
    more = f" ve {len(findings) - 3} dosya daha" if len(findings) > 3 else ""
    return f"Diskteki dosyalar yedeklenenden farklı: {names}{more}. {ADVICE}"

