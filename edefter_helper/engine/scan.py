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
                                         parse_name)
from edefter_helper.fsutil import sha256_file

DELETED_DIR = ".silinenler"

IGNORED_DELETED = "Luca'nın .silinenler klasöründe: silinmiş eski kopya, güncel dosya sayılmaz."
IGNORED_INVENTORY = "e-Envanter dosyası: defter değil, yedeklenmez."
IGNORED_STYLESHEET = "Görüntüleme stil dosyası (XSLT): defter değil."
IGNORED_XML = "e-Defter adlandırmasına uymayan XML dosyası."
IGNORED_ARCHIVE = "e-Defter adlandırmasına uymayan arşiv dosyası."


class ScanError(Exception):
    """Bad input (a folder that does not exist...), with a Turkish message."""


class Candidate:
    """One file found: its path as text (84 000 pathlib objects cost seconds on a warm scan), the
    folder it stands in (one string shared by the folder's files), its name and its identity."""

    __slots__ = ("path", "folder", "name", "size", "ident")

    def __init__(self, path: str, name: LedgerName, st: os.stat_result, folder: str | None = None):
        self.path = path
        self.folder = folder if folder is not None else os.path.dirname(path)
        self.name = name
        self.size = st.st_size
        self.ident = identity(st)


@dataclass
class ScanResult:
    sets: list[MonthSet] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"sets": [s.as_json() for s in self.sets], "ignored": self.ignored}


def _walk(root: str, in_deleted: bool = False) -> Iterable[tuple[str, str, os.stat_result, bool, str]]:
    """(path, file name, stat, inside .silinenler, folder) for every regular file; symlinked folders
    are not followed (loops)."""
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                deleted = in_deleted or entry.name.lower() == DELETED_DIR
                yield from _walk(entry.path, deleted)
            elif entry.is_file():
                yield entry.path, entry.name, entry.stat(), in_deleted, root
        except OSError:
            continue


_IGNORED_BY_SUFFIX = {".xslt": IGNORED_STYLESHEET, ".xsl": IGNORED_STYLESHEET, ".xml": IGNORED_XML,
                      ".zip": IGNORED_ARCHIVE}


def discover(roots: Iterable[Path]) -> tuple[list[Candidate], list[dict]]:
    """Every e-Defter ledger file under the roots, and what was passed over with a reason."""
    candidates: list[Candidate] = []
    ignored: list[dict] = []
    seen: set[tuple] = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise ScanError(f"Klasör bulunamadı: {root}")
        if root.is_file():
            items = [(str(root), root.name, root.stat(), False, str(root.parent))]
        else:
            items = _walk(str(root), root.name.lower() == DELETED_DIR)
        for path, filename, st, deleted, folder in items:
            # the same file reached through two roots (or a link) counts once; hard links under
            # other names stay separate files
            ident = (st.st_dev, st.st_ino, filename) if st.st_ino else (path,)
            if ident in seen:
                continue
            seen.add(ident)
            name = parse_name(filename)
            suffix = os.path.splitext(filename)[1].lower()
            if deleted:
                if name or suffix in (".xml", ".zip"):
                    ignored.append({"path": path, "reason": IGNORED_DELETED})
                continue
            if name is None:
                reason = _IGNORED_BY_SUFFIX.get(suffix)
                if reason:
                    ignored.append({"path": path, "reason": reason})
                continue
            if name.is_inventory:
                ignored.append({"path": path, "reason": IGNORED_INVENTORY})
                continue
            candidates.append(Candidate(path, name, st, folder))
    return candidates, ignored


def _header(c: Candidate, cache: FileCache) -> dict:
    facts = cache.get(c.path, c.ident, "header")
    if facts is None:
        facts = reader.read_header(Path(c.path), c.name)
        cache.put(c.path, c.ident, header=facts)
    return facts


def _sha256(c: Candidate, cache: FileCache) -> str:
    digest = cache.get(c.path, c.ident, "sha256")
    if digest is None:
        digest = sha256_file(Path(c.path))
        cache.put(c.path, c.ident, sha256=digest)
    return digest


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

    def covered(prefix: str) -> bool:
        ledgers = [(lk, x) for lk in LEDGER_KINDS for x in parts.get(lk, ())]
        return bool(ledgers) and all(x in parts.get(prefix + lk + "B", ()) for lk, x in ledgers)

    ms.stage = "gib-approved" if covered("GIB-") else "berat-signed" if covered("") else "ledger-only"
    ms.complete = not problems


def _merge_copies(key: MonthKey, copies: list[Candidate], cache: FileCache) -> tuple[list[LedgerFile], list]:
    """One logical file found more than once: identical bytes are one file, different bytes a problem."""
    if len(copies) == 1:  # the usual case, kept cheap
        c = copies[0]
        return [LedgerFile(c.path, c.name, c.size, key.branch)], []
    # a GİB berat both as .xml and as GİB's .zip download: the .xml is the berat
    xml = [c for c in copies if not c.name.zipped]
    zips = [c for c in copies if c.name.zipped]
    primary = xml or zips
    spare = zips if xml else []
    by_digest: dict[str, list[Candidate]] = {}
    if len(primary) == 1:
        by_digest["only"] = primary
    else:
        for c in primary:
            by_digest.setdefault(_sha256(c, cache), []).append(c)
    files = []
    for group in by_digest.values():
        first = group[0]
        lf = LedgerFile(first.path, first.name, first.size, key.branch,
                        also_at=[c.path for c in group[1:]] + [c.path for c in spare])
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
    candidates, ignored = discover(roots)
    # files by month, keyed (vkn, branch, period) as MonthKey orders them: one MonthKey per month
    groups: dict[tuple[str, str, str], list[Candidate]] = {}
    companies: dict[tuple[str, str, str], str] = {}
    # a berat (and the DR) takes the branch of its ledger in the same folder, so a cold scan reads
    # two headers a month, not seven; with no such ledger it reads its own
    ledger_branch: dict[tuple, str] = {}
    candidates.sort(key=lambda c: c.name.kind not in LEDGER_KINDS)
    total = len(candidates)
    for i, c in enumerate(candidates):
        name = c.name
        branch = name.branch
        facts = None
        if branch is None:
            if name.kind in BERAT_OF:
                branch = ledger_branch.get((c.folder, name.vkn, name.period, BERAT_OF[name.kind], name.part))
            elif name.kind == "DR":
                where = (c.folder, name.vkn, name.period)
                branch = ledger_branch.get((*where, "Y", 0)) or ledger_branch.get((*where, "Y", 1))
        if branch is None:
            facts = _header(c, cache)
            branch = facts.get("branch") if facts.get("branch") and len(facts["branch"]) == 4 else NO_BRANCH
        if name.kind in LEDGER_KINDS:
            ledger_branch[(c.folder, name.vkn, name.period, name.kind, name.part)] = branch
        key = (name.vkn, branch, name.period)
        month = groups.get(key)
        if month is None:
            groups[key] = [c]
        else:
            month.append(c)
        if facts and facts.get("company") and key not in companies:
            companies[key] = facts["company"]
        if progress and i % 2000 == 1999:
            progress(f"{i + 1}/{total} dosya tarandı")
    del candidates, ledger_branch
    result = ScanResult(ignored=sorted(ignored, key=lambda x: x["path"]))
    for key in sorted(groups):
        month = groups.pop(key)  # what is grouped is let go month by month
        mkey = MonthKey(*key)
        ms = MonthSet(mkey, company=companies.get(key))
        if len(month) > 1:
            month.sort(key=_file_order)
        start = 0
        while start < len(month):
            name = month[start].name
            end = start + 1
            while end < len(month) and month[end].name.kind == name.kind and month[end].name.part == name.part:
                end += 1
            files, problems = _merge_copies(mkey, month[start:end], cache)
            ms.files.extend(files)
            ms.problems.extend(problems)
            start = end
        assess(ms)
        result.sets.append(ms)
    cache.flush()
    return result


def _file_order(c: Candidate) -> tuple:
    return _ORDER.get(c.name.kind, 99), c.name.part, c.path


_ORDER = {k: i for i, k in enumerate(("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"))}


def _kind_order(kind: str) -> int:
    return _ORDER.get(kind, 99)
