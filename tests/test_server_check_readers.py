"""The storage server's check of a big month reads its big files with one worker process at most
(issue 12 §2): the server process and a worker per core measured 172 MB for a 1 GB month, over the
150 MB goal; `edefter verify` keeps a reader per core. Files are made "big" for the engine by
lowering its threshold, so a small real month takes the big-file path."""

from __future__ import annotations

import pytest

from edefter_helper.engine import verify
from edefter_helper.engine.model import MonthKey
from edefter_helper.engine.trust import TrustList
from edefter_helper.samples import write_month
from edefter_helper.server import checks

VKN = "4810525635"


@pytest.fixture
def workers(monkeypatch):
    monkeypatch.setattr(verify, "PARALLEL_BYTES", 1)  # every file is read as a big one
    monkeypatch.setattr(verify.os, "cpu_count", lambda: 3)
    seen = []

    class Counted(verify._Shared):
        def __init__(self, args, n):
            seen.append(n)
            super().__init__(args, n)

    monkeypatch.setattr(verify, "_Shared", Counted)
    return seen


def test_the_servers_check_uses_one_worker_and_gives_the_same_verdict(tmp_path, workers):
    month = tmp_path / "ay"
    write_month(month, VKN, "2024-01")
    assert checks.engine_verify(month, MonthKey(VKN, "0000", "2024-01")) == []
    assert workers == [checks.SERVER_READERS - 1] == [1]
    workers.clear()
    (ms,) = verify.verify_roots([month], trust=TrustList()).sets  # as edefter verify: a reader per core
    assert ms.valid and workers and workers[0] >= 2
