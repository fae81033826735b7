"""Find e-Defter files in any folder layout and group them into month sets.

Files are recognised by name wherever they stand (GİB guide, Luca, Zirve, flat folders);
Luca's `.silinenler` folders hold deleted copies and are never current. Nothing is written
next to the ledgers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from edefter_helper.engine import problems as P
from edefter_helper.engine import reader
from edefter_helper.engine.cache import FileCache, identity
from edefter_helper.engine.model import LedgerFile, MonthKey, MonthSet
from edefter_helper.engine.names import (BERAT_OF, DR_FROM_PERIOD, LEDGER_KINDS, NO_BRANCH, LedgerName,
                                         parse_name, taxpayer_of)
from edefter_helper.fsutil import sha256_file

DELETED_DIR = ".silinenler"

IGNORED_DELETED = "Luca'nın .silinenler klasöründe: silinmiş eski kopya, güncel dosya sayılmaz."
IGNORED_INVENTORY = "e-Envanter dosyası: defter değil, yedeklenmez."
IGNORED_STYLESHEET = "Görüntüleme stil dosyası (XSLT): defter değil."
IGNORED_XML = "e-Defter adlandırmasına uymayan XML dosyası."
IGNORED_ARCHIVE = "e-Defter adlandırmasına uymayan arşiv dosyası."


class ScanError(Exception):
    """Bad input (a folder that does not exist...), with a Turkish message."""


@dataclass
class ScanResult:
    sets: list[MonthSet] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"sets": [s.as_json() for s in self.sets], "ignored": self.ignored}


_IGNORED_BY_SUFFIX = {".xslt": IGNORED_STYLESHEET, ".xsl": IGNORED_STYLESHEET, ".xml": IGNORED_XML,
                      ".zip": IGNORED_ARCHIVE}


def _by_name(entry: os.DirEntry) -> str:
    return entry.name


def _files_under(folder: str, deleted: bool):
    """(entry, in a deleted-copies folder, the folder as one string) of every file under `folder`, folders
    and files in name order; symlinked folders are not followed (loops)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=_by_name)
    except OSError:
        return
    here = None
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _files_under(entry.path, deleted or entry.name.lower() == DELETED_DIR)
            elif entry.is_file():
                if here is None:
                    here = os.path.dirname(entry.path)  # one string for the folder's files
                yield entry, deleted, here
        except OSError:
            continue


class _Found:
    """Walks the roots once (folders and files in name order, symlinked folders not followed:
    loops). Keeps per ledger file only what the scan needs, in parallel lists: its LedgerFile (the
    branch is set when its month is known) and its folder (one string per folder) —
    no stat result, tuple or other object per file that the garbage collector would walk again and
    again (tens of thousands of files)."""

    def __init__(self):
        self.files: list[LedgerFile] = []
        self.folders: list[str] = []
        self.ignored: list[dict] = []
        # the same file reached through two roots (or a link) counts once; hard links under other
        # names stay separate files: (device, inode) -> the first name seen, or the set of names
        self.seen: dict[int, str | set] = {}
        self.seen_paths: set[str] = set()  # where there are no inode numbers

    def walk(self, folder: str, deleted: bool) -> None:
        for entry, deleted_here, here in _files_under(folder, deleted):
            try:
                self.file(entry.path, entry.name, entry.stat(), deleted_here, here)
            except OSError:
                continue

    def file(self, path: str, filename: str, st: os.stat_result, deleted: bool, folder: str) -> None:
        if st.st_ino:
            key = (st.st_dev << 64) | st.st_ino
            first = self.seen.get(key)
            if first is None:
                self.seen[key] = filename
            elif isinstance(first, set):
                if filename in first:
                    return
                first.add(filename)
            elif first == filename:
                return
            else:
                self.seen[key] = {first, filename}
        else:
            if path in self.seen_paths:
                return
            self.seen_paths.add(path)
        name = parse_name(filename)
        if deleted:
            if name or os.path.splitext(filename)[1].lower() in (".xml", ".zip"):
                self.ignored.append({"path": path, "reason": IGNORED_DELETED})
            return
        if name is None:
            reason = _IGNORED_BY_SUFFIX.get(os.path.splitext(filename)[1].lower())
            if reason:
                self.ignored.append({"path": path, "reason": reason})
            return
        if name.is_inventory:
            self.ignored.append({"path": path, "reason": IGNORED_INVENTORY})
            return
        self.files.append(LedgerFile(path, name, st.st_size, NO_BRANCH))
        self.folders.append(folder)


def taxpayers_under(root: Path) -> set[str]:
    """The VKN/TCKN of every current e-Defter file under `root`, by name, walked as `discover` walks
    (symlinked folders not followed, Luca's `.silinenler` left out); nothing is read or kept per file.
    A run that works a few firms at a time groups firms whose files share folders by it, so a superset
    is safe (names.taxpayer_of: e-Envanter and misnamed files count too; only fewer, larger groups)."""
    root = Path(root)
    if root.is_file():
        files = [root.name]
    else:
        files = (entry.name for entry, deleted, _ in _files_under(str(root), root.name.lower() == DELETED_DIR)
                 if not deleted)
    found = set()
    for filename in files:  # one name at a time: an office's root holds 237 600 files
        vkn = taxpayer_of(filename)
        if vkn is not None:
            found.add(vkn)
    return found


def discover(roots: Iterable[Path]) -> _Found:
    """Every e-Defter ledger file under the roots, and what was passed over with a reason."""
    finder = _Found()
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise ScanError(f"Klasör bulunamadı: {root}")
        if root.is_file():
            text = str(root)
            finder.file(text, root.name, root.stat(), False, os.path.dirname(text))
        else:
            finder.walk(str(root), root.name.lower() == DELETED_DIR)
    return finder


def _now(path: str) -> str | None:
    """The file's identity as it is now, taken just before its bytes are read (None: it cannot be
    looked at; reading it will say why)."""
    try:
        return identity(os.stat(path))
    except OSError:
        return None


def _header(path: str, name: LedgerName, cache: FileCache) -> dict:
    ident = _now(path)
    facts = cache.get(path, ident, "header") if ident is not None else None
    if facts is not None and not all(isinstance(facts.get(k), (str, type(None))) for k in ("branch", "company")):
        facts = None  # a damaged row is no answer: the header is read again
    if facts is None:
        facts = reader.read_header(Path(path), name)
        if ident is not None:
            cache.put(path, ident, header=facts)
    return facts


def _sha256(path: str, cache: FileCache) -> str:
    ident = _now(path)
    digest = cache.get(path, ident, "sha256") if ident is not None else None
    if digest is None:
        digest = sha256_file(Path(path))
        if ident is not None:
            cache.put(path, ident, sha256=digest)
    return digest


_WHOLE = frozenset({0})


def assess(ms: MonthSet) -> None:
    """Completeness and stage of a month set (names only; contents are verify's job)."""
    parts: dict[str, set[int]] = {}
    for f in ms.files:
        name = f.name
        have = parts.get(name.kind)
        if have is None:
            parts[name.kind] = {name.part}
        else:
            have.add(name.part)
    problems = ms.problems
    empty: set[int] = set()
    for ledger in LEDGER_KINDS:
        have = parts.get(ledger, empty)
        if not have:
            problems.append(P.missing_kind(ledger))
            continue
        if have == _WHOLE:  # one file, no parts: the usual month
            continue
        numbered = sorted(x for x in have if x >= 1)
        if 0 in have and numbered:
            problems.append(P.part_mixed(ledger))
        if numbered:
            gap = sorted(set(range(1, numbered[-1] + 1)) - set(numbered))
            if gap:
                problems.append(P.part_gap(ledger, gap))
    for berat, ledger in BERAT_OF.items():
        ledger_parts, berat_parts = parts.get(ledger, empty), parts.get(berat, empty)
        if not ledger_parts <= berat_parts:
            for part in sorted(ledger_parts):
                if part not in berat_parts:
                    problems.append(P.missing_berat(berat, ledger, part))
        if not berat_parts <= ledger_parts:  # in file order, as found
            for f in ms.files:
                if f.name.kind == berat and f.name.part not in ledger_parts:
                    problems.append(P.orphan_berat(berat, ledger, f.part, f.path))
    if ms.key.period >= DR_FROM_PERIOD and "DR" not in parts:
        problems.append(P.missing_dr(ms.key.period))
    if parts.get("DR", empty) - {0}:
        for f in ms.files:
            if f.name.kind == "DR" and f.name.part != 0:
                problems.append(P.dr_part(f.part, f.path))

    # a stage is reached when some ledger part exists and every ledger part has that berat
    y, k = parts.get("Y", empty), parts.get("K", empty)
    if not (y or k):
        ms.stage = "ledger-only"
    elif y <= parts.get("GIB-YB", empty) and k <= parts.get("GIB-KB", empty):
        ms.stage = "gib-approved"
    elif y <= parts.get("YB", empty) and k <= parts.get("KB", empty):
        ms.stage = "berat-signed"
    else:
        ms.stage = "ledger-only"
    ms.complete = not problems


def _merge_copies(key: MonthKey, copies: list[int], found: _Found, cache: FileCache) -> tuple[list[LedgerFile], list]:
    """One logical file found more than once: identical bytes are one file, different bytes a problem.
    `copies`: indices into `found`, in path order."""
    all_files = found.files
    if len(copies) == 1:  # the usual case, kept cheap
        lf = all_files[copies[0]]
        lf.branch = key.branch
        return [lf], []
    # a GİB berat both as .xml and as GİB's .zip download: the .xml is the berat
    xml = [i for i in copies if not all_files[i].name.zipped]
    zips = [i for i in copies if all_files[i].name.zipped]
    primary = xml or zips
    spare = zips if xml else []
    by_digest: dict[str, list[int]] = {}
    if len(primary) == 1:
        by_digest["only"] = primary
    else:
        for i in primary:
            by_digest.setdefault(_sha256(all_files[i].location, cache), []).append(i)
    files = []
    for group in by_digest.values():
        lf = all_files[group[0]]
        lf.branch = key.branch
        lf.also_at = [all_files[i].location for i in group[1:]] + [all_files[i].location for i in spare]
        files.append(lf)
    problems = []
    if len(files) > 1:
        problems.append(P.conflicting_copies(files[0].name.filename, [f.path for f in files]))
    return files, problems


def scan(roots: Iterable[Path], cache: FileCache | None = None,
         progress: Callable[[str], None] | None = None) -> ScanResult:
    # no process-wide state is touched here (the garbage collector's threshold once was: threads
    # scanning at once left it raised); speed comes from holding few objects per file instead
    return _scan(roots, cache, progress)


def _scan(roots: Iterable[Path], cache: FileCache | None,
          progress: Callable[[str], None] | None) -> ScanResult:
    cache = cache or FileCache(None)
    found = discover(roots)
    files, folders = found.files, found.folders
    # files by month (indices into `found`), keyed (vkn, branch, period) as MonthKey orders them
    groups: dict[tuple[str, str, str], list[int]] = {}
    companies: dict[tuple[str, str, str], str] = {}
    # a berat (and the DR) takes the branch of its ledger in the same folder, so a cold scan reads
    # two headers a month, not seven; with no such ledger it reads its own. Ledgers first, then
    # the others, each in the order found.
    ledger_branch: dict[tuple, str] = {}
    total = len(files)
    done = 0
    for ledgers in (True, False):
        for i, lf in enumerate(files):
            name = lf.name
            if (name.kind in LEDGER_KINDS) is not ledgers:
                continue
            branch = name.branch
            facts = None
            if branch is None:
                if name.kind in BERAT_OF:
                    branch = ledger_branch.get((folders[i], name.vkn, name.period, BERAT_OF[name.kind], name.part))
                elif name.kind == "DR":
                    where = (folders[i], name.vkn, name.period)
                    branch = ledger_branch.get((*where, "Y", 0)) or ledger_branch.get((*where, "Y", 1))
            if branch is None:
                facts = _header(lf.location, name, cache)
                branch = facts.get("branch") if facts.get("branch") and len(facts["branch"]) == 4 else NO_BRANCH
            if ledgers:
                ledger_branch[(folders[i], name.vkn, name.period, name.kind, name.part)] = branch
            key = (name.vkn, branch, name.period)
            month = groups.get(key)
            if month is None:
                groups[key] = [i]
            else:
                month.append(i)
            if facts and facts.get("company") and key not in companies:
                companies[key] = facts["company"]
            done += 1
            if progress and done % 2000 == 0:
                progress(f"{done}/{total} dosya tarandı")
    del ledger_branch
    result = ScanResult(ignored=sorted(found.ignored, key=lambda x: x["path"]))

    def order(i: int) -> tuple:
        name = files[i].name
        return _ORDER.get(name.kind, 99), name.part, files[i].location

    for key in sorted(groups):
        month = groups.pop(key)  # what is grouped is let go month by month
        mkey = MonthKey(*key)
        ms = MonthSet(mkey, company=companies.get(key))
        if len(month) > 1:
            month.sort(key=order)
        start = 0
        while start < len(month):
            name = files[month[start]].name
            end = start + 1
            while end < len(month) and files[month[end]].name.kind == name.kind and \
                    files[month[end]].name.part == name.part:
                end += 1
            merged, problems = _merge_copies(mkey, month[start:end], found, cache)
            ms.files.extend(merged)
            ms.problems.extend(problems)
            start = end
        assess(ms)
        result.sets.append(ms)
    cache.flush()
    return result


_ORDER = {k: i for i, k in enumerate(("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"))}


def _kind_order(kind: str) -> int:
    return _ORDER.get(kind, 99)
