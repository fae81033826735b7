"""Big months for benchmarks: journal parts of ~part_mb MB each, streamed in constant memory.

The journal is written in canonical form and hashed as it goes (see xmlsig), so the enveloped
signature costs nothing extra. Kebir parts stay small (a handful of entries each): benchmarks
care about the big files, and the month is still complete and consistent.
"""

from __future__ import annotations

import random
from pathlib import Path

from edefter_helper.samples import content as c
from edefter_helper.samples.month import (
    CONTEXTS, MonthFiles, berat_bytes, gib_approve, make_spec, write_ledger_doc, write_spec,
)

_BATCH = 2000  # entries formatted per write: big enough for speed, small enough for memory


def _journal_body(spec, rng: random.Random, target_bytes: int, first_entry: int, first_line: int, state: dict):
    """Yield journal entries until about `target_bytes` are out; counters go into `state`."""
    ctx = CONTEXTS["Y"]
    written = 0
    number, line = first_entry, first_line
    count = 0
    sums = state["sums"]
    per_entry = 4096  # first guess; refined from what is written, so parts land near target_bytes
    while written < target_bytes:
        want = max(1, min(_BATCH, (target_bytes - written) // per_entry + 1))
        batch = c.make_entries(rng, spec.period, want, first=number)
        out = []
        for e in batch:
            out.append(c.journal_entry(ctx, e, line))
            line += len(e.lines)
        c.add_sums(sums, batch)
        number += len(batch)
        count += len(batch)
        chunk = "".join(out)
        written += len(chunk.encode())
        per_entry = max(1, written // count)
        yield chunk
    state.update(next_entry=number, next_line=line, entries=count)


def write_big_month(folder, vkn: str, period: str, *, parts: int = 5, part_mb: float = 200,
                    seed: int = 0, company: str | None = None, gib: bool = True) -> MonthFiles:
    """Write a split month whose journal parts are ~part_mb MB each (Y, YB, GIB-YB per part,
    small K/KB/GIB-KB parts, DR from 2019). Returns the written paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = make_spec(vkn, period, parts=parts, entries=parts * 3, company=company, gib=gib, seed=seed)
    # the small kebir side first, from the ordinary generator
    small = write_spec(folder, spec, only={"K", "KB", "GIB-KB", "DR"})
    written = list(small)
    rng = random.Random(f"big|{seed}|{vkn}|{period}")
    next_entry, next_line = 1, 1
    for part in spec.part_numbers:
        state = {"sums": {}}
        path = folder / spec.filename("Y", part)
        body = _journal_body(spec, rng, int(part_mb * 1024 * 1024), next_entry, next_line, state)
        with open(path, "wb", buffering=1024 * 1024) as f:
            value, size = write_ledger_doc(f, spec, "Y", part, body, state["sums"])
        next_entry, next_line = state["next_entry"], state["next_line"]
        written.append(path)
        berat, sig_id, bvalue = berat_bytes(spec, "YB", part, ledger_value=value, ledger_size=size,
                                            entries=state["entries"], sums=state["sums"])
        (folder / spec.filename("YB", part)).write_bytes(berat)
        written.append(folder / spec.filename("YB", part))
        if gib:
            gib_path = folder / spec.filename("GIB-YB", part)
            gib_path.write_bytes(gib_approve(spec, "YB", part, berat, sig_id, bvalue))
            written.append(gib_path)
    return MonthFiles(written, spec, folder)


__all__ = ["write_big_month"]
