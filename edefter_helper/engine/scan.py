"""Find e-Defter files in any folder layout and group them into month sets.

Files are recognised by name wherever they stand (GİB guide, Luca, Zirve, flat folders);
Luca's `.silinenler` folders hold deleted copies and are never current. Nothing is written
next to the ledgers.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from edefter_helper.engine import problems as P
from edefter_helper.engine import reader
from edefter_helper.engine.cache import FileCache, identity
from edefter_helper.engine.model import LedgerFile, MonthKey, MonthSet
from edefter_helper.engine.names import (BERAT_OF, DR_FROM_PERIOD, LEDGER_KINDS, NO_BRANCH, LedgerName,
                                         parse_name)

DELETED_DIR = ".silinenler"

IGNORED_DELETED = "Luca'nın .silinenler klasöründe: silinmiş eski kopya, güncel dosya sayılmaz."
IGNORED_INVENTORY = "e-Envanter dosyası: defter değil, yedeklenmez."
IGNORED_STYLESHEET = "Görüntüleme stil dosyası (XSLT): defter değil."
IGNORED_XML = "e-Defter adlandırmasına uymayan XML dosyası."
IGNORED_ARCHIVE = "e-Defter adlandırmasına uymayan arşiv dosyası."


class ScanError(Exception):
    """Bad input (a folder that does not exist...), with a Turkish message."""


@dataclass
class Candidate:
    path: Path
    name: LedgerName
    stat: os.stat_result

    @property
    def ident(self) -> str:
        return identity(self.stat)


@dataclass
class ScanResult:
    sets: list[MonthSet] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"sets": [s.as_json() for s in self.sets], "ignored": self.ignored}


def _walk(root: Path, in_deleted: bool = False) -> Iterable[tuple[Path, os.stat_result, bool]]:
    try:
        entries = list(os.scandir(root))
    except (PermissionError, FileNotFoundError, NotADirectoryError):
        return
    entries.sort(key=lambda e: e.name)
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                deleted = in_deleted or entry.name.lower() == DELETED_DIR
                yield from _walk(Path(entry.path), deleted)
            elif entry.is_file():
                yield Path(entry.path), entry.stat(), in_deleted
        except OSError:
            continue


def discover(roots: Iterable[Path]) -> tuple[list[Candidate], list[dict]]:
    """Every e-Defter ledger file under the roots, and what was passed over with a reason."""
    candidates: list[Candidate] = []
    ignored: list[dict] = []
    seen: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise ScanError(f"Klasör bulunamadı: {root}")
        if root.is_file():
            items = [(root, root.stat(), False)]
        else:
            items = _walk(root, root.name.lower() == DELETED_DIR)
        for path, st, deleted in items:
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            name = parse_name(path.name)
            suffix = path.suffix.lower()
            if deleted:
                if name or suffix in (".xml", ".zip"):
                    ignored.append({"path": str(path), "reason": IGNORED_DELETED})
                continue
            if name is None:
                if suffix in (".xslt", ".xsl"):
                    ignored.append({"path": str(path), "reason": IGNORED_STYLESHEET})
                elif suffix == ".xml":
                    ignored.append({"path": str(path), "reason": IGNORED_XML})
                elif suffix == ".zip":
                    ignored.append({"path": str(path), "reason": IGNORED_ARCHIVE})
                continue
            if name.is_inventory:
                ignored.append({"path": str(path), "reason": IGNORED_INVENTORY})
                continue
            candidates.append(Candidate(path, name, st))
    return candidates, ignored


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _header(c: Candidate, cache: FileCache) -> dict:
    facts = cache.get(c.path, c.ident, "header")
    if facts is None:
        facts = reader.read_header(c.path, c.name)
        cache.put(c.path, c.ident, header=facts)
    return facts


def _sha256(c: Candidate, cache: FileCache) -> str:
    digest = cache.get(c.path, c.ident, "sha256")
    if digest is None:
        digest = file_sha256(c.path)
        cache.put(c.path, c.ident, sha256=digest)
    return digest


def assess(ms: MonthSet) -> None:
    """Completeness and stage of a month set (names only; contents are verify's job)."""
    parts: dict[str, set[int]] = defaultdict(set)
    for f in ms.files:
        parts[f.kind].add(f.part)
    problems = ms.problems
    for ledger in LEDGER_KINDS:
        have = parts.get(ledger, set())
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
        for part in sorted(parts.get(ledger, ())):
            if part not in parts.get(berat, ()):
                problems.append(P.missing_berat(berat, ledger, part))
        for f in ms.files:
            if f.kind == berat and f.part not in parts.get(ledger, ()):
                problems.append(P.orphan_berat(berat, ledger, f.part, f.path))
    if ms.key.period >= DR_FROM_PERIOD and "DR" not in parts:
        problems.append(P.missing_dr(ms.key.period))
    for f in ms.files:
        if f.kind == "DR" and f.part != 0:
            problems.append(P.dr_part(f.part, f.path))

    def covered(prefix: str) -> bool:
        ledgers = [(lk, x) for lk in LEDGER_KINDS for x in parts.get(lk, ())]
        return bool(ledgers) and all(x in parts.get(prefix + lk + "B", ()) for lk, x in ledgers)

    ms.stage = "gib-approved" if covered("GIB-") else "berat-signed" if covered("") else "ledger-only"
    ms.complete = not problems


def _merge_copies(key: MonthKey, copies: list[Candidate], cache: FileCache) -> tuple[list[LedgerFile], list]:
    """One logical file found more than once: identical bytes are one file, different bytes a problem."""
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
        lf = LedgerFile(first.path, first.name, first.stat.st_size, key.branch,
                        also_at=[c.path for c in group[1:]] + [c.path for c in spare])
        files.append(lf)
    problems = []
    if len(files) > 1:
        problems.append(P.conflicting_copies(files[0].name.filename, [f.path for f in files]))
    return files, problems


def scan(roots: Iterable[Path], cache: FileCache | None = None,
         progress: Callable[[str], None] | None = None) -> ScanResult:
    cache = cache or FileCache(None)
    candidates, ignored = discover(roots)
    groups: dict[MonthKey, dict[tuple[str, int], list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    companies: dict[MonthKey, str] = {}
    for i, c in enumerate(candidates):
        branch = c.name.branch
        facts = None
        if branch is None:
            facts = _header(c, cache)
            branch = facts.get("branch") if facts.get("branch") and len(facts["branch"]) == 4 else NO_BRANCH
        key = MonthKey(c.name.vkn, branch, c.name.period)
        groups[key][(c.name.kind, c.name.part)].append(c)
        if facts and facts.get("company") and key not in companies:
            companies[key] = facts["company"]
        if progress and i % 2000 == 1999:
            progress(f"{i + 1}/{len(candidates)} dosya tarandı")
    result = ScanResult(ignored=sorted(ignored, key=lambda x: x["path"]))
    for key in sorted(groups):
        ms = MonthSet(key, company=companies.get(key))
        for (kind, part), copies in sorted(groups[key].items(), key=lambda kv: (_kind_order(kv[0][0]), kv[0][1])):
            copies.sort(key=lambda c: str(c.path))
            files, problems = _merge_copies(key, copies, cache)
            ms.files.extend(files)
            ms.problems.extend(problems)
        assess(ms)
        result.sets.append(ms)
    cache.flush()
    return result


_ORDER = {k: i for i, k in enumerate(("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"))}


def _kind_order(kind: str) -> int:
    return _ORDER.get(kind, 99)
