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


def _read_all(files: list[LedgerFile], cache: FileCache, schema_dir: Path | None,
              progress: Callable[[str], None] | None) -> dict[str, dict]:
    sid = schema_id(schema_dir)
    facts: dict[str, dict] = {}
    todo = []
    for f in files:
        try:
            ident = identity(f.path.stat())
        except OSError as exc:
            facts[f.location] = {"problems": [P.unreadable(exc.strerror or str(exc), f.path).as_json()]}
            continue
        cached = cache.get(f.location, ident, "full", sid)
        if cached is not None:
            facts[f.location] = cached
        else:
            todo.append((f, ident))
    big = sorted((t for t in todo if t[0].size >= PARALLEL_BYTES), key=lambda t: -t[0].size)
    small = [t for t in todo if t[0].size < PARALLEL_BYTES]
    readers = _readers([f.size for f, _ in big], os.cpu_count() or 1)
    schema = load_schema(schema_dir) if (schema_dir is not None and small) else None
    args = [(str(f.path), f.name, str(schema_dir) if schema_dir else None) for f, _ in big]
    results: dict[int, dict] = {}
    if readers > 1:
        pool = _Shared(args, readers - 1)  # the workers start on the biggest files at once
    done = 0
    for f, ident in small:  # meanwhile this process reads the small files
        facts[f.location] = reader.read_full(f.path, f.name, schema=schema)
        cache.put(f.location, ident, full=facts[f.location], schema_id=sid,
                  sha256=facts[f.location].get("sha256") if not f.name.zipped else None)
        done += 1
        if progress and done % 200 == 0:
            progress(f"{done}/{len(todo)} dosya doğrulandı")
    if readers > 1:
        results = pool.run()  # and then big files too, taken in turn with the workers
    else:
        results = {i: _worker_read(a) for i, a in enumerate(args)}
    for i, (f, ident) in enumerate(big):
        facts[f.location] = results[i]
        cache.put(f.location, ident, full=results[i], schema_id=sid)
        if progress:
            progress(f"{f.name.filename} doğrulandı")
    cache.flush()
    return facts


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
    found: list[Problem] = []
    by_part = {(f.kind, f.part): f for f in ms.files}
    for f in ms.files:
        d = facts.get(f.location, {})
        for prob in d.get("problems", []):
            found.append(Problem(prob["code"], prob["message"], prob.get("path")))
        if not ms.company and d.get("company"):
            ms.company = d["company"]
        f.sha256 = d.get("sha256")
        if d.get("signer") and d.get("signature_ok"):
            ms.signers.add(d["signer"])
        if d.get("countersigner") and d.get("countersignature_ok"):
            ms.countersigners.add(d["countersigner"])
        if d.get("size") is not None and d["size"] != f.size:
            found.append(P.changed_while_checked(f.path))  # the bytes read are not those listed
        if d.get("countersigner") and d.get("countersignature_ok") and \
                not (trust or TrustList()).trusts(d.get("countersigner_cert")):
            ms.warnings.append(P.countersigner_untrusted(d["countersigner"], f.path))
    for f in ms.files:
        ledger_kind = BERAT_OF.get(f.kind)
        if ledger_kind is None:
            continue
        ledger = by_part.get((ledger_kind, f.part))
        d = facts.get(f.location, {})
        if d.get("malformed") or d.get("unsafe") or "root" not in d:
            continue
        if f.kind.startswith("GIB-") and not d.get("countersigned") and d.get("signature_value"):
            found.append(P.countersignature_missing(f.path))
        if ledger is None:
            continue
        ld = facts.get(ledger.location, {})
        certified = d.get("certified_value")
        ledger_value = ld.get("signature_value")
        if ledger_value and certified != ledger_value:
            found.append(P.berat_mismatch(f.name.filename, ledger.name.filename, f.path))
        if ledger_value and not _size_matches(d.get("measurable_quantity"), ld.get("size", ledger.size)):
            found.append(P.size_mismatch(f.name.filename, d.get("measurable_quantity"),
                                         ledger.name.filename, ledger.size, f.path))
    ms.problems.extend(found)
    ms.valid = ms.complete and not ms.problems


def verify_sets(result: ScanResult, cache: FileCache | None = None, schema_dir: Path | None = None,
                progress: Callable[[str], None] | None = None, trust: TrustList | None = None) -> ScanResult:
    """`trust`: GİB's countersigning certificates (default: TrustList.default(), which raises
    TrustError with a Turkish message when a configured list cannot be read)."""
    cache = cache or FileCache(None)
    trust = trust if trust is not None else TrustList.default()
    files = [f for ms in result.sets for f in ms.files]
    facts = _read_all(files, cache, schema_dir, progress)
    for ms in result.sets:
        check_set(ms, facts, trust)
    return result


def verify_roots(roots: Iterable[Path], cache: FileCache | None = None, schema_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None, trust: TrustList | None = None) -> ScanResult:
    """Scan and verify: the engine's whole check, as the CLI, the server and backups use it."""
    cache = cache or FileCache(None)
    trust = trust if trust is not None else TrustList.default()
    return verify_sets(scan(roots, cache, progress), cache, schema_dir, progress, trust)
