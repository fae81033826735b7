"""The engine at office scale (issue 12 §2–3): the verify cache looks rows up one by one instead of
loading them all, keeps whole months' verdicts under a digest of everything they depend on, and the
scan leaves process-wide state (the garbage collector's threshold) alone.

Every test here is about what is decided, never about time: a kept verdict must be the verdict a full
verification gives, and any change of a file, the engine, the schema or the trust list must make the
month be checked again."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from edefter_helper.engine import cache as C
from edefter_helper.engine import reader
from edefter_helper.engine import verify as V
from edefter_helper.engine.cache import FileCache
from edefter_helper.engine.scan import scan
from edefter_helper.engine.trust import TrustList
from edefter_helper.samples import broken, write_month
from edefter_helper.samples.keys import gib_signer

VKN = "4810525635"


def _months(root: Path, n: int = 3):
    return [write_month(root / f"ay{i}", VKN, f"2024-{i + 1:02d}", entries=3, seed=i) for i in range(n)]


def _view(result) -> list:
    """Everything verify decides about each set, in a comparable form."""
    return [json.dumps({**ms.as_json(), "signers": sorted(ms.signers), "countersigners": sorted(ms.countersigners),
                        "sha256": [f.sha256 for f in ms.files]}, sort_keys=True, ensure_ascii=False)
            for ms in result.sets]


class _Reads:
    """Counts the files verify reads and the file facts it takes from the cache."""

    def __init__(self, monkeypatch):
        self.read: list[str] = []
        self.facts: list[str] = []
        real_read, real_get = reader.read_full, FileCache.get

        def read_full(path, name, schema=None):
            self.read.append(Path(path).name)
            return real_read(path, name, schema=schema)

        def get(cache, path, ident, field, schema_id=""):
            if field == "full":
                self.facts.append(Path(path).name)
            return real_get(cache, path, ident, field, schema_id)

        monkeypatch.setattr(reader, "read_full", read_full)
        monkeypatch.setattr(FileCache, "get", get)

    def clear(self):
        self.read.clear()
        self.facts.clear()


def _verify(root, cache_path, trust=None):
    cache = FileCache(cache_path)
    try:
        return V.verify_roots([root], cache, trust=trust if trust is not None else TrustList())
    finally:
        cache.close()


# -- §2: no process-wide state ------------------------------------------------------------------------

def test_concurrent_scans_never_touch_the_gc_threshold(tmp_path, monkeypatch):
    """Threads scanning at once (the server's verifiers) must find the collector as they left it:
    the scan never sets a threshold, disables or freezes the collector, and leaves it unchanged."""
    _months(tmp_path, 3)
    before = gc.get_threshold()
    touched = []
    for name in ("set_threshold", "disable", "freeze"):
        monkeypatch.setattr(gc, name, lambda *a, name=name: touched.append(name))
    barrier = threading.Barrier(4)
    errors, seen = [], []

    def one(i):
        try:
            barrier.wait()
            for _ in range(3):
                result = scan([tmp_path], FileCache(tmp_path / f"c{i}.sqlite3"))
                seen.append((len(result.sets), gc.get_threshold()))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert touched == []
    assert gc.get_threshold() == before
    assert seen == [(3, before)] * 12


# -- the cache, row by row ------------------------------------------------------------------------------

def test_the_cache_answers_per_path_and_never_mixes_identities(tmp_path):
    path = tmp_path / "c.sqlite3"
    a = FileCache(path)
    a.put("/x/a.xml", "1:1:1:1", header={"branch": "0001"})
    a.put("/x/a.xml", "1:1:1:1", sha256="aa")  # same file: what was given before stays
    assert a.get("/x/a.xml", "1:1:1:1", "header") == {"branch": "0001"}  # read back before it is written
    assert a.get("/x/a.xml", "1:1:1:1", "sha256") == "aa"
    a.close()
    b = FileCache(path)  # another process's view: from SQLite
    assert b.get("/x/a.xml", "1:1:1:1", "header") == {"branch": "0001"}
    assert b.get("/x/a.xml", "1:1:1:1", "sha256") == "aa"
    assert b.get("/x/a.xml", "2:1:1:1", "sha256") is None  # another identity: nothing
    assert b.get("/x/b.xml", "1:1:1:1", "sha256") is None
    b.put("/x/a.xml", "1:1:1:1", full={"root": "defter"}, schema_id="")
    b.flush()  # written merged with the stored row (same identity)
    assert b.get("/x/a.xml", "1:1:1:1", "header") == {"branch": "0001"}
    assert b.get("/x/a.xml", "1:1:1:1", "full") == {"root": "defter"}
    assert b.get("/x/a.xml", "1:1:1:1", "full", "other-schema") is None
    b.put("/x/a.xml", "3:1:1:1", sha256="cc")  # the file changed: the old row goes whole
    b.close()
    c = FileCache(path)
    assert c.get("/x/a.xml", "3:1:1:1", "sha256") == "cc"
    assert c.get("/x/a.xml", "3:1:1:1", "header") is None
    assert c.get("/x/a.xml", "3:1:1:1", "full") is None
    assert c.get("/x/a.xml", "1:1:1:1", "header") is None
    c.close()


def test_buffered_writes_are_bounded_and_all_arrive(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "FLUSH_EVERY", 3)
    a = FileCache(tmp_path / "c.sqlite3")
    for i in range(10):
        a.put(f"/x/{i}.xml", f"{i}:0:0:0", sha256=f"{i:02x}")
        assert len(a._pending) < 3
    a.close()
    b = FileCache(tmp_path / "c.sqlite3")
    assert [b.get(f"/x/{i}.xml", f"{i}:0:0:0", "sha256") for i in range(10)] == [f"{i:02x}" for i in range(10)]
    b.close()


def test_an_older_cache_is_dropped_whole(tmp_path):
    """A cache of the previous format (its own forget() does not know month verdicts) is not trusted."""
    path = tmp_path / "c.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('version', '3')")
    db.execute("CREATE TABLE files (path TEXT PRIMARY KEY, ident TEXT NOT NULL, sha256 TEXT, header TEXT,"
               " full TEXT, full_schema TEXT)")
    db.execute("INSERT INTO files VALUES ('/x/a.xml', '1:1:1:1', 'aa', NULL, NULL, NULL)")
    db.commit()
    db.close()
    cache = FileCache(path)
    assert cache.get("/x/a.xml", "1:1:1:1", "sha256") is None
    cache.close()


# -- whole months' verdicts -------------------------------------------------------------------------------

def test_a_warm_verification_takes_each_months_verdict_without_any_files_facts(tmp_path, monkeypatch):
    _months(tmp_path / "t", 3)
    reads = _Reads(monkeypatch)
    cache_path = tmp_path / "c.sqlite3"
    cold = _view(_verify(tmp_path / "t", cache_path))
    assert len(reads.read) == 21
    reads.clear()
    warm = _view(_verify(tmp_path / "t", cache_path))
    assert reads.read == [] and reads.facts == []  # neither read nor decoded: the months' verdicts
    assert warm == cold
    uncached = _view(V.verify_roots([tmp_path / "t"], FileCache(None), trust=TrustList()))
    assert warm == uncached


def _bad_months(root: Path):
    """Months with problems of every layer: a file, a cross-file check, completeness, a warning."""
    ms = _months(root, 5)
    broken.edit_after_signing(ms[0], "K")
    broken.berat_signature_mismatch(ms[1], "YB")
    broken.remove_gib_berat(ms[2], "GIB-KB")
    broken.wrong_measurable_quantity(ms[3], "KB")
    return ms


def test_kept_verdicts_equal_full_verification_on_broken_months(tmp_path, monkeypatch):
    _bad_months(tmp_path / "t")
    reads = _Reads(monkeypatch)
    cache_path = tmp_path / "c.sqlite3"
    uncached = _view(V.verify_roots([tmp_path / "t"], FileCache(None), trust=TrustList()))
    cold = _view(_verify(tmp_path / "t", cache_path))
    reads.clear()
    warm = _view(_verify(tmp_path / "t", cache_path))
    assert reads.read == [] and reads.facts == []
    assert cold == warm == uncached
    valid = [json.loads(v)["valid"] for v in warm]
    assert valid == [False, False, False, False, True]
    # and from the files' kept facts, when the months' verdicts are not there (another engine)
    monkeypatch.setattr(V, "_engine_id", "another engine")
    from_facts = _view(_verify(tmp_path / "t", cache_path))
    assert reads.read == [] and len(reads.facts) > 0
    assert from_facts == uncached


def test_a_changed_file_makes_its_month_checked_again(tmp_path, monkeypatch):
    months = _months(tmp_path / "t", 3)
    cache_path = tmp_path / "c.sqlite3"
    assert all(ms.valid for ms in _verify(tmp_path / "t", cache_path).sets)
    reads = _Reads(monkeypatch)
    changed = broken.edit_after_signing(months[1], "K")[0]
    result = _verify(tmp_path / "t", cache_path)
    assert reads.read == [changed.name]  # only that file is read; the other months keep their verdicts
    assert sorted(reads.facts) == sorted(f.name for f in months[1].folder.iterdir() if f.is_file())
    assert [ms.valid for ms in result.sets] == [True, False, True]
    reads.clear()
    again = _verify(tmp_path / "t", cache_path)
    assert reads.read == [] and reads.facts == []
    assert [ms.valid for ms in again.sets] == [True, False, True]


def test_an_edit_that_keeps_size_and_mtime_is_still_noticed(tmp_path, monkeypatch):
    """Only ctime (and the bytes) change: the identity differs, the kept verdict is not used."""
    months = _months(tmp_path / "t", 2)
    cache_path = tmp_path / "c.sqlite3"
    assert all(ms.valid for ms in _verify(tmp_path / "t", cache_path).sets)
    ledger = months[0].find("Y", None)
    st = ledger.stat()
    broken.edit_after_signing(months[0], "Y")
    os.utime(ledger, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ledger.stat().st_size == st.st_size and ledger.stat().st_mtime_ns == st.st_mtime_ns
    reads = _Reads(monkeypatch)
    result = _verify(tmp_path / "t", cache_path)
    assert reads.read == [ledger.name]
    assert [ms.valid for ms in result.sets] == [False, True]


def test_a_file_added_or_taken_away_is_a_different_month(tmp_path, monkeypatch):
    months = _months(tmp_path / "t", 2)
    cache_path = tmp_path / "c.sqlite3"
    assert all(ms.valid for ms in _verify(tmp_path / "t", cache_path).sets)
    gone = broken.remove_gib_berat(months[0], "GIB-YB")
    reads = _Reads(monkeypatch)
    result = _verify(tmp_path / "t", cache_path)
    assert reads.read == []  # the remaining files' facts are kept ...
    assert [ms.valid for ms in result.sets] == [False, True]  # ... but the month is judged again
    assert not result.sets[0].complete and gone[0].name not in {f.name.filename for f in result.sets[0].files}


def test_forget_drops_the_months_that_counted_on_the_file(tmp_path, monkeypatch):
    """pack found other bytes than were verified under an unchanged identity: forget() must take the
    month's verdict with the file's facts, or the next run would trust it again."""
    months = _months(tmp_path / "t", 2)
    cache_path = tmp_path / "c.sqlite3"
    _verify(tmp_path / "t", cache_path)
    ledger = months[1].find("K", None)
    cache = FileCache(cache_path)
    cache.forget([ledger])
    cache.close()
    reads = _Reads(monkeypatch)
    _verify(tmp_path / "t", cache_path)
    assert reads.read == [ledger.name]


def test_a_new_trust_list_or_schema_is_never_answered_from_old_verdicts(tmp_path, monkeypatch):
    _months(tmp_path / "t", 2)
    cache_path = tmp_path / "c.sqlite3"
    untrusted = _verify(tmp_path / "t", cache_path)
    assert all(any(w.code == "countersigner-untrusted" for w in ms.warnings) for ms in untrusted.sets)
    pem = tmp_path / "gib.pem"
    pem.write_bytes(gib_signer().cert_pem)
    reads = _Reads(monkeypatch)
    trusted = _verify(tmp_path / "t", cache_path, trust=TrustList.load([pem]))
    assert reads.read == [] and len(reads.facts) == 14  # judged again from the files' facts
    assert all(not ms.warnings and ms.valid for ms in trusted.sets)
    reads.clear()
    again = _verify(tmp_path / "t", cache_path)  # the empty list again: its own verdicts, or judged anew
    assert _view(again) == _view(untrusted)
    # a different context (schema, engine) gives a different digest for the same files
    ms = untrusted.sets[0]
    idents = [C.identity(os.stat(f.location)) for f in ms.files]
    digests = {V.month_digest(ms, idents, ctx) for ctx in ("a\0\0", "a\0s\0", "b\0\0", "a\0\0t")}
    assert len(digests) == 4


def test_every_input_of_a_verdict_is_in_its_digest(tmp_path):
    (ms,) = scan([write_month(tmp_path / "ay", VKN, "2024-01", entries=3).folder]).sets
    idents = [C.identity(os.stat(f.location)) for f in ms.files]
    base = V.month_digest(ms, idents, "ctx")
    other_ident = list(idents)
    other_ident[3] = other_ident[3] + "0"
    assert V.month_digest(ms, other_ident, "ctx") != base
    ms.files[2].size += 1
    assert V.month_digest(ms, idents, "ctx") != base
    ms.files[2].size -= 1
    ms.files[2].location += ".moved"
    assert V.month_digest(ms, idents, "ctx") != base
    ms.files[2].location = ms.files[2].location[:-len(".moved")]
    assert V.month_digest(ms, idents, "ctx") == base
    assert V.month_digest(ms, idents[:-1], "ctx") != base  # a partial key is another key
    ms.files.pop()
    assert V.month_digest(ms, idents, "ctx") != base


def test_a_damaged_month_row_or_cache_never_stops_work(tmp_path):
    months = _months(tmp_path / "t", 2)
    cache_path = tmp_path / "c.sqlite3"
    want = _view(_verify(tmp_path / "t", cache_path))
    db = sqlite3.connect(cache_path)
    db.execute("UPDATE months SET verdict = '{not json'")
    db.commit()
    db.close()
    assert _view(_verify(tmp_path / "t", cache_path)) == want
    for damaged in ('{"problems": [], "warnings": []}', '{"problems": 3, "warnings": [], "signers": [], '
                    '"countersigners": [], "company": null, "sha256": [null, null, null, null, null, null, null]}'):
        db = sqlite3.connect(cache_path)
        db.execute("UPDATE months SET verdict = ?", (damaged,))
        db.commit()
        db.close()
        assert _view(_verify(tmp_path / "t", cache_path)) == want
    db = sqlite3.connect(cache_path)
    db.execute("UPDATE months SET verdict = '[1, 2]'")
    db.execute("UPDATE files SET full = 'garbage'")
    db.commit()
    db.close()
    assert _view(_verify(tmp_path / "t", cache_path)) == want
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    assert _view(_verify(tmp_path / "t", junk)) == want
    assert months


@pytest.mark.parametrize("column,value", [
    ("full", 42), ("full", "[1]"), ("full", '"x"'), ("full", '{"problems": 3}'),
    ("full", '{"problems": [{"code": 1}]}'), ("full", '{"size": "12"}'), ("full", '{"company": ["x"]}'),
    ("full", b"\xff"), ("header", 7), ("header", "[1]"), ("header", '{"branch": 1234}'),
    ("header", '{"company": {"a": 1}}'), ("sha256", 42), ("sha256", b"ab"), ("ident", 5), ("full_schema", 3)])
def test_a_damaged_file_row_is_no_answer(tmp_path, column, value):
    """A kept file row with the wrong types (a damaged or hostile cache; the file's identity still
    matches) gives the verdict an uncached verification gives: the file is read again, never a crash."""
    _bad_months(tmp_path / "t")
    want = _view(V.verify_roots([tmp_path / "t"], FileCache(None), trust=TrustList()))
    cache_path = tmp_path / "c.sqlite3"
    assert _view(_verify(tmp_path / "t", cache_path)) == want
    db = sqlite3.connect(cache_path)
    db.execute("DELETE FROM months")  # the months are judged from their files' kept facts
    db.execute(f"UPDATE files SET {column} = ?", (value,))
    db.commit()
    db.close()
    assert _view(_verify(tmp_path / "t", cache_path)) == want
    assert _view(_verify(tmp_path / "t", cache_path)) == want  # and what is kept now is sound


def test_a_countersigner_certificate_that_is_not_base64_is_not_trusted():
    """(a kept file's facts carry the certificate as base64 text; damaged, it is no certificate)"""
    assert TrustList([gib_signer().cert]).trusts("not base64!") is False


def test_the_servers_one_check_cache_still_works(tmp_path):
    """server.checks._OneCheck stands in for FileCache (get/put/flush only): verify works with it."""
    from edefter_helper.server.checks import _OneCheck

    _bad_months(tmp_path / "t")
    want = _view(V.verify_roots([tmp_path / "t"], FileCache(None), trust=TrustList()))
    assert _view(V.verify_roots([tmp_path / "t"], _OneCheck(), trust=TrustList())) == want


@pytest.mark.parametrize("big", [False, True])
def test_months_with_big_files_are_judged_after_their_files_are_read(tmp_path, monkeypatch, big):
    if big:
        monkeypatch.setattr(V, "PARALLEL_BYTES", 1)  # every file goes the workers' way
    _bad_months(tmp_path / "t")
    want = _view(V.verify_roots([tmp_path / "t"], FileCache(None), trust=TrustList()))
    cache_path = tmp_path / "c.sqlite3"
    assert _view(_verify(tmp_path / "t", cache_path)) == want
    assert _view(_verify(tmp_path / "t", cache_path)) == want
