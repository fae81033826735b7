"""Check month sets as GİB and integrators would: every file on its own (safe XML, root,
identity inside = name, signature, XSD) and the files against each other (each berat
certifies its ledger part's signature value and size; GİB's countersignature)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from edefter_helper.engine import problems as P
from edefter_helper.engine import reader
from edefter_helper.engine.cache import FileCache, identity
from edefter_helper.engine.model import LedgerFile, MonthSet, Problem
from edefter_helper.engine.names import BERAT_OF
from edefter_helper.engine.scan import ScanResult, scan
from edefter_helper.engine.schema import SchemaError, load_schema, schema_id  # noqa: F401 (cli imports SchemaError from here)
from edefter_helper.engine.trust import TrustList

# files this large are read in worker processes, one per core
PARALLEL_BYTES = 32 * 1024 * 1024


_worker_schema = None


def _worker_read(args) -> dict:
    path, name, schema_dir = args
    global _worker_schema
    schema = None
    if schema_dir is not None:
        if _worker_schema is None:
            _worker_schema = load_schema(Path(schema_dir))
        schema = _worker_schema
    try:
        return reader.read_full(Path(path), name, schema=schema)
    except Exception as exc:  # noqa: BLE001  a fault in one file is that file's problem
        return {"problems": [P.read_failed(f"{type(exc).__name__}: {exc}"[:300], path).as_json()],
                "malformed": True}


class _Reading:
    """Facts of files for one verification: kept ones from the cache (identity and schema matching),
    small files read in this process, files of PARALLEL_BYTES or more by worker processes and this
    one together (biggest first) while this process reads the small ones."""

    def __init__(self, cache: FileCache, schema_dir: Path | None, progress: Callable[[str], None] | None,
                 readers: int | None = None):
        self.cache, self.schema_dir, self.progress = cache, schema_dir, progress
        self.max_readers = readers  # processes reading big files at most, this one included (None: by cores)
        self.sid = schema_id(schema_dir)
        self.big_facts: dict[str, dict] = {}  # location -> facts of the big files read (or kept)
        self.big_todo: list[tuple[LedgerFile, str]] = []
        self.pool = None
        self.schema = None
        self.read = 0

    @staticmethod
    def identities(files: list[LedgerFile], facts: dict[str, dict]) -> list[str | None]:
        """Each file's identity now; a file that cannot be looked at gets its problem in `facts`."""
        out = []
        for f in files:
            try:
                out.append(identity(os.stat(f.location)))
            except OSError as exc:
                facts[f.location] = {"problems": [P.unreadable(exc.strerror or str(exc), f.path).as_json()]}
                out.append(None)
        return out

    def kept(self, f: LedgerFile, ident: str) -> dict | None:
        """The file's kept facts when they are for this identity and schema and well formed (a
        damaged row is no answer: the file is read again)."""
        kept = self.cache.get(f.location, ident, "full", self.sid)
        return kept if kept is not None and _facts_ok(kept) else None

    def small(self, f: LedgerFile) -> bool:
        return f.size < PARALLEL_BYTES

    def start_big(self, files: list[tuple[LedgerFile, str]]) -> None:
        """Start reading the big files that are not kept (workers take the biggest first at once)."""
        todo = []
        for f, ident in files:
            if self.small(f) or f.location in self.big_facts:
                continue
            kept = self.kept(f, ident)
            if kept is not None:
                self.big_facts[f.location] = kept
            else:
                todo.append((f, ident))
        self.big_todo = sorted(todo, key=lambda t: -t[0].size)
        readers = _readers([f.size for f, _ in self.big_todo], os.cpu_count() or 1)
        if self.max_readers:
            readers = min(readers, self.max_readers)
        self.args = [(f.location, f.name, str(self.schema_dir) if self.schema_dir else None) for f, _ in self.big_todo]
        if readers > 1:
            self.pool = _Shared(self.args, readers - 1)  # the workers start on the biggest files at once

    def facts_of(self, f: LedgerFile, ident: str) -> dict:
        """A small file's facts (kept or read now), or a big file's once finish_big() has run."""
        if not self.small(f):
            return self.big_facts[f.location]
        kept = self.kept(f, ident)
        if kept is not None:
            return kept
        if self.schema is None and self.schema_dir is not None:
            self.schema = load_schema(self.schema_dir)
        d = reader.read_full(f.path, f.name, schema=self.schema)
        self.cache.put(f.location, ident, full=d, schema_id=self.sid,
                       sha256=d.get("sha256") if not f.name.zipped else None)
        self.read += 1
        if self.progress and self.read % 200 == 0:
            self.progress(f"{self.read} dosya doğrulandı")
        return d

    def finish_big(self) -> None:
        """Read the big files not read yet (with the workers when there are any); keeps their facts."""
        if not self.big_todo:
            return
        if self.pool is not None:
            results = self.pool.run()  # this process takes big files in turn with the workers
        else:
            results = {i: _worker_read(a) for i, a in enumerate(self.args)}
        for i, (f, ident) in enumerate(self.big_todo):
            self.big_facts[f.location] = results[i]
            self.cache.put(f.location, ident, full=results[i], schema_id=self.sid)
            if self.progress:
                self.progress(f"{f.name.filename} doğrulandı")
        self.big_todo, self.pool = [], None


def _makespan(sizes: list[int], readers: int, cores: int) -> float:
    """Time to read files of these sizes (biggest first, each by the next free reader) when `readers`
    readers share `cores` cores evenly; in units of one file byte per core."""
    queue = list(sizes)
    active: list[float] = []
    t = 0.0
    while queue or active:
        while queue and len(active) < readers:
            active.append(float(queue.pop(0)))
        rate = min(1.0, cores / len(active))
        step = min(active) / rate
        t += step
        active = [a - step * rate for a in active]
        active = [a for a in active if a > 1e-6 * max(sizes)]
    return t


def _readers(sizes: list[int], cores: int) -> int:
    """How many processes read the big files (this one included): one per core, or one more when
    that finishes sooner (5 equal parts on 2 cores: 2.5 parts' time instead of 3). Never more: each
    reader costs memory (the < 150 MB target holds three)."""
    if not sizes:
        return 0
    if cores <= 1 or len(sizes) == 1:
        return 1
    best = min(cores, len(sizes))
    more = min(cores + 1, len(sizes))
    if more > best and _makespan(sizes, more, cores) < 0.97 * _makespan(sizes, best, cores):
        return more
    return best


class _Shared:
    """Big files read by `workers` worker processes and by this one, each taking the next file
    (biggest first) when it is free."""

    def __init__(self, args: list, workers: int):
        self.args = args
        self.results: dict[int, dict] = {}
        self.pending = list(range(len(args)))
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        self.pool = ProcessPoolExecutor(workers)
        for _ in range(workers):
            self._submit_next()

    def _take(self) -> int | None:
        with self.lock:
            return self.pending.pop(0) if self.pending else None

    def _submit_next(self) -> None:
        i = self._take()
        if i is None:
            return
        try:
            future = self.pool.submit(_worker_read, self.args[i])
        except RuntimeError:  # the pool is broken or shut down: this process reads the file
            with self.lock:
                self.pending.insert(0, i)
            return
        future.add_done_callback(lambda fut, i=i: self._finished(i, fut))

    def _finished(self, i: int, future) -> None:
        try:
            res = future.result()
        except Exception as exc:  # noqa: BLE001  a worker lost (killed, out of memory): that file's problem
            res = {"problems": [P.read_failed(f"{type(exc).__name__}: {exc}"[:300], self.args[i][0]).as_json()],
                   "malformed": True}
        self._record(i, res)
        self._submit_next()

    def _record(self, i: int, res: dict) -> None:
        with self.lock:
            self.results[i] = res
            if len(self.results) == len(self.args):
                self.all_done.set()

    def run(self) -> dict[int, dict]:
        try:
            while not self.all_done.is_set():
                i = self._take()
                if i is None:
                    self.all_done.wait(0.05)
                else:
                    self._record(i, _worker_read(self.args[i]))
        finally:
            self.pool.shutdown(wait=True)
        return self.results


def _size_matches(quantity: str | None, size: int) -> bool:
    """measurableQuantity is the ledger size in MB as GİB's viewer shows it (MiB, 2 decimals).
    Be liberal: accept MiB or MB, within the rounding step."""
    if quantity is None:
        return True  # before 2019 berats carried no size
    try:
        value = float(quantity.replace(",", "."))
    except ValueError:
        return False
    return abs(value - size / 1048576) <= 0.0051 or abs(value - size / 1e6) <= 0.0051


def check_set(ms: MonthSet, facts: dict[str, dict], trust: TrustList | None = None) -> None:
    """Add file and cross-file problems to a scanned set; sets ms.valid."""
    apply_verdict(ms, judge(ms, facts, trust))


def judge(ms: MonthSet, facts: dict[str, dict], trust: TrustList | None = None) -> dict:
    """What check_set adds to a scanned set, as plain data (kept in the cache as a month's verdict):
    problems, warnings, signers, countersigners, the first company named and each file's sha256."""
    found: list[dict] = []
    warnings: list[dict] = []
    signers: set[str] = set()
    countersigners: set[str] = set()
    company = None
    sha256 = []
    by_part = {(f.kind, f.part): f for f in ms.files}
    for f in ms.files:
        d = facts.get(f.location, {})
        for prob in d.get("problems", []):
            found.append({"code": prob["code"], "message": prob["message"], "path": prob.get("path")})
        if company is None and d.get("company"):
            company = d["company"]
        sha256.append(d.get("sha256"))
        if d.get("signer") and d.get("signature_ok"):
            signers.add(d["signer"])
        if d.get("countersigner") and d.get("countersignature_ok"):
            countersigners.add(d["countersigner"])
        if d.get("size") is not None and d["size"] != f.size:
            found.append(_plain(P.changed_while_checked(_shown(f))))  # the bytes read are not those listed
        if d.get("countersigner") and d.get("countersignature_ok") and \
                not (trust or TrustList()).trusts(d.get("countersigner_cert")):
            warnings.append(_plain(P.countersigner_untrusted(d["countersigner"], _shown(f))))
    for f in ms.files:
        ledger_kind = BERAT_OF.get(f.kind)
        if ledger_kind is None:
            continue
        ledger = by_part.get((ledger_kind, f.part))
        d = facts.get(f.location, {})
        if d.get("malformed") or d.get("unsafe") or "root" not in d:
            continue
        if f.kind.startswith("GIB-") and not d.get("countersigned") and d.get("signature_value"):
            found.append(_plain(P.countersignature_missing(_shown(f))))
        if ledger is None:
            continue
        ld = facts.get(ledger.location, {})
        certified = d.get("certified_value")
        ledger_value = ld.get("signature_value")
        if ledger_value and certified != ledger_value:
            found.append(_plain(P.berat_mismatch(f.name.filename, ledger.name.filename, _shown(f))))
        if ledger_value and not _size_matches(d.get("measurable_quantity"), ld.get("size", ledger.size)):
            found.append(_plain(P.size_mismatch(f.name.filename, d.get("measurable_quantity"),
                                                ledger.name.filename, ledger.size, _shown(f))))
    return {"problems": found, "warnings": warnings, "signers": sorted(signers),
            "countersigners": sorted(countersigners), "company": company, "sha256": sha256}


def _plain(problem: Problem) -> dict:
    return {"code": problem.code, "message": problem.message, "path": problem.path}


def _shown(f: LedgerFile) -> str:
    """The path as problems name it (the Path's text), the file's own string when that is the same."""
    text = str(f.path)
    return f.location if text == f.location else text


class _Strings(dict):
    """One string object for equal texts across months (a message, a signer, a firm's name repeat
    month after month; decoded from a kept verdict each would be a copy of its own)."""

    def __call__(self, text):
        return self.setdefault(text, text) if isinstance(text, str) else text


def apply_verdict(ms: MonthSet, verdict: dict, strings: _Strings | None = None) -> None:
    """Add a verdict made by judge() for this very set (same files in the same order) to it."""
    one = strings if strings is not None else _Strings()
    located = {f.location: f.location for f in ms.files}  # a problem's path is the file's own string

    def problem(d: dict) -> Problem:
        path = d.get("path")
        return Problem(one(d["code"]), one(d["message"]), located.get(path, path))

    if not ms.company and verdict["company"]:
        ms.company = one(verdict["company"])
    for f, sha in zip(ms.files, verdict["sha256"]):
        f.sha256 = sha
    ms.signers.update(one(x) for x in verdict["signers"])
    ms.countersigners.update(one(x) for x in verdict["countersigners"])
    ms.warnings.extend(problem(w) for w in verdict["warnings"])
    ms.problems.extend(problem(p) for p in verdict["problems"])
    ms.valid = ms.complete and not ms.problems


# -- whole months' verdicts, kept ------------------------------------------------------------------

_engine_id: str | None = None


def engine_id() -> str:
    """The engine's code: a digest of every source file of edefter_helper/engine (facts, checks,
    trust and problem texts all live there), the cache's VERSION and the program's version. A month's
    verdict kept by other code is never taken for this code's."""
    global _engine_id
    if _engine_id is None:
        import hashlib

        from edefter_helper import __version__
        from edefter_helper.engine import cache as C

        h = hashlib.sha256(f"engine:{C.VERSION}:{__version__}".encode())
        here = Path(__file__).resolve().parent
        try:
            for p in sorted(here.glob("*.py")):
                h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
        except OSError:
            h.update(b"unreadable")
        _engine_id = h.hexdigest()
    return _engine_id


def trust_id(trust) -> str | None:
    """The trust list as the certificates it holds (None: not a TrustList, months are not kept)."""
    fingerprints = getattr(trust, "_fingerprints", None)
    if not isinstance(fingerprints, (set, frozenset)):
        return None
    return ",".join(sorted(fp.hex() for fp in fingerprints))


def month_slot(ms: MonthSet) -> str:
    """Where a month set's verdict is kept: its key and its first file (one verdict per place)."""
    return f"{ms.key}\0{ms.files[0].location}"


def month_digest(ms: MonthSet, idents: list[str], context: str) -> str:
    """Everything a month's verdict depends on: `context` (engine, schema, trust list), the month's
    key and, for each file in order, its path, name, kind, part, listed size and identity now."""
    import hashlib

    parts = [context, str(ms.key)]
    for f, ident in zip(ms.files, idents):
        name = f.name
        parts.append(f"{f.location}\0{name.filename}\0{name.kind}\0{name.part}\0{f.size}\0{ident}")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def verify_sets(result: ScanResult, cache: FileCache | None = None, schema_dir: Path | None = None,
                progress: Callable[[str], None] | None = None, trust: TrustList | None = None,
                readers: int | None = None) -> ScanResult:
    """`trust`: GİB's countersigning certificates (default: TrustList.default(), which raises
    TrustError with a Turkish message when a configured list cannot be read). `readers`: at most this
    many processes read the big files, this one included (default: by the cores; each worker is ~50 MB).

    A month whose verdict is kept for exactly its files as they are now (month_digest) takes it
    without decoding any file's facts; the others are checked month by month from their files'
    facts (kept per file, or read), and their verdicts kept. Memory stays that of one month's facts
    (and the big files'), not the whole tree's."""
    cache = cache or FileCache(None)
    trust = trust if trust is not None else TrustList.default()
    reading = _Reading(cache, schema_dir, progress, readers)
    tid = trust_id(trust)
    keeps = tid is not None and hasattr(cache, "month_get") and hasattr(cache, "month_put")
    context = "\0".join((engine_id(), reading.sid, tid or ""))
    strings = _Strings()
    waiting = []  # months without a kept verdict (only the month: an office's cold run has 36 000)
    for ms in result.sets:
        if keeps and ms.files:
            idents = reading.identities(ms.files, {})
            if None not in idents:
                verdict = cache.month_get(month_slot(ms), month_digest(ms, idents, context))
                if verdict is not None and _well_formed(verdict, len(ms.files)):
                    apply_verdict(ms, verdict, strings)
                    continue
        waiting.append(ms)
    check = _Check(reading, cache, trust, strings, context if keeps else None)
    # months with big files wait for them (read by worker processes meanwhile); their identities are
    # those the big files are read under
    later = []
    for ms in waiting:
        if any(not reading.small(f) for f in ms.files):
            later.append((ms, check.identities(ms)))
    reading.start_big([(f, i) for ms, idents in later for f, i in zip(ms.files, idents) if i is not None])
    for ms in waiting:
        if all(reading.small(f) for f in ms.files):
            check(ms, check.identities(ms))
    reading.finish_big()
    for ms, idents in later:
        check(ms, idents)
    cache.flush()
    return result


def _problems_ok(items) -> bool:
    return isinstance(items, list) and all(
        isinstance(d, dict) and isinstance(d.get("code"), str) and isinstance(d.get("message"), str)
        and isinstance(d.get("path"), (str, type(None))) for d in items)


# the facts judge() takes as text (or None); "size" is a number
_TEXT_FACTS = ("company", "sha256", "signer", "countersigner", "countersigner_cert", "measurable_quantity")


def _facts_ok(d) -> bool:
    """A file's kept facts with the types judge() relies on (read_full makes them so)."""
    return (isinstance(d, dict) and _problems_ok(d.get("problems", []))
            and all(isinstance(d.get(k), (str, type(None))) for k in _TEXT_FACTS)
            and isinstance(d.get("size"), (int, type(None))) and not isinstance(d.get("size"), bool))


def _well_formed(verdict: dict, files: int) -> bool:
    """A kept verdict as judge() makes it for a month of `files` files (a damaged row is no answer:
    the month is judged again)."""
    sha256, company = verdict.get("sha256"), verdict.get("company")
    return (isinstance(sha256, list) and len(sha256) == files
            and all(isinstance(x, (str, type(None))) for x in sha256)
            and isinstance(company, (str, type(None)))
            and all(isinstance(verdict.get(k), list) and all(isinstance(x, str) for x in verdict[k])
                    for k in ("signers", "countersigners"))
            and _problems_ok(verdict.get("problems")) and _problems_ok(verdict.get("warnings")))


class _Check:
    """Judge one month from its files' facts (kept or read now, under the identities given), apply
    the verdict and keep it under the digest of exactly those identities."""

    def __init__(self, reading: _Reading, cache, trust, strings: _Strings, context: str | None):
        self.reading, self.cache, self.trust, self.strings, self.context = reading, cache, trust, strings, context
        self.unreadable: dict[str, dict] = {}

    def identities(self, ms: MonthSet) -> list[str | None]:
        return self.reading.identities(ms.files, self.unreadable)

    def __call__(self, ms: MonthSet, idents: list[str | None]) -> None:
        facts = {}  # this month's only: let go when it is judged
        for f, ident in zip(ms.files, idents):
            if ident is None:
                facts[f.location] = self.unreadable.pop(f.location)
            else:
                facts[f.location] = self.reading.facts_of(f, ident)
        verdict = judge(ms, facts, self.trust)
        apply_verdict(ms, verdict, self.strings)
        if self.context is not None and ms.files and None not in idents:
            self.cache.month_put(month_slot(ms), month_digest(ms, idents, self.context), verdict)


def verify_roots(roots: Iterable[Path], cache: FileCache | None = None, schema_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None, trust: TrustList | None = None,
                 readers: int | None = None) -> ScanResult:
    """Scan and verify: the engine's whole check, as the CLI, the server and backups use it."""
    cache = cache or FileCache(None)
    trust = trust if trust is not None else TrustList.default()
    return verify_sets(scan(roots, cache, progress), cache, schema_dir, progress, trust, readers)
