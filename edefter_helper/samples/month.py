"""One e-Defter month: ledgers, berats, GİB berats, Defter Raporu, all signed and consistent."""

from __future__ import annotations

import io
import random
import uuid
import zipfile
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from edefter_helper.engine.names import DR_FROM_PERIOD
from edefter_helper.samples import content as c
from edefter_helper.samples.keys import gib_signer, taxpayer_signer
from edefter_helper.samples.xmlsig import NS_DECL, DigestSink, countersignature, signature

LEDGER_ROOT = "edefter:defter"
BERAT_ROOT = "edefter:berat"
REPORT_ROOT = "edefter:defterraporu"
CONTEXTS = {"Y": "journal_context", "K": "ledger_context", "DR": "report_context"}
ENTRIES_TYPE = {"Y": "journal", "K": "ledger", "DR": "trialbalance"}


@dataclass(frozen=True)
class MonthSpec:
    """Everything that decides a month's bytes (with the seed)."""

    vkn: str
    period: str  # YYYY-MM
    company: str
    branch: str | None = None
    branch_name: str | None = None
    branch_in_name: bool = False
    parts: int = 0  # 0: one 000000 file per kind; n: parts 000001..n
    entries: int = 20
    gib: bool = True
    dr: bool = True
    gib_zip: bool = False
    upper_ext: bool = False
    seed: int = 0

    @property
    def firm(self) -> c.Firm:
        return c.Firm(self.vkn, self.company, self.branch, self.branch_name)

    @property
    def part_numbers(self) -> list[int]:
        return [0] if self.parts == 0 else list(range(1, self.parts + 1))

    def filename(self, kind: str, part: int, *, zipped: bool = False) -> str:
        gib = kind.startswith("GIB-")
        base = kind[4:] if gib else kind
        branch = f"-{self.branch}" if self.branch_in_name and self.branch else ""
        ext = "zip" if zipped else "xml"
        if self.upper_ext:
            ext = ext.upper()
        return f"{'GIB-' if gib else ''}{self.vkn}-{self.period.replace('-', '')}-{base}-{part:06d}{branch}.{ext}"


class MonthFiles(list):
    """The paths write_month wrote (a list[Path]) plus the spec and folder they came from."""

    def __init__(self, paths, spec: MonthSpec, folder: Path):
        super().__init__(paths)
        self.spec = spec
        self.folder = folder

    def find(self, kind: str, part: int | None = None) -> Path:
        """The written file of `kind` (e.g. "GIB-YB"), first part unless `part` is given."""
        parts = self.spec.part_numbers if part is None else [part]
        for p in parts:
            for zipped in (False, True):
                path = self.folder / self.spec.filename(kind, p, zipped=zipped)
                if path in self:
                    return path
        raise KeyError(f"{kind} {part}")


def size_mib(size: int) -> str:
    """Ledger size as GİB's viewer shows it: MiB, 2 decimals (66 097 bytes -> 0.06)."""
    return str((Decimal(size) / Decimal(1048576)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _rng(spec: MonthSpec, what: str) -> random.Random:
    return random.Random(f"{spec.seed}|{spec.vkn}|{spec.period}|{spec.branch}|{what}")


def _signing_time(spec: MonthSpec, what: str, day_offset: int = 0) -> str:
    rng = _rng(spec, "time:" + what)
    y, m, d = (int(x) for x in c.creation_date(spec.period).split("-"))
    return f"{y:04d}-{m:02d}-{d + day_offset:02d}T{rng.randint(9, 17):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}+03:00"


def _sig_id(spec: MonthSpec, kind: str, part: int) -> str:
    return f"Signature-{kind}-{part:06d}-{_rng(spec, 'id:' + kind + str(part)).getrandbits(32):08x}"


@dataclass
class LedgerResult:
    path: Path
    size: int
    signature_value: str
    entries: int
    sums: dict


def write_ledger_doc(out, spec: MonthSpec, kind: str, part: int, body_chunks, sums: dict) -> tuple[str, int]:
    """Write one signed Y/K/DR document to the binary stream `out`; body_chunks yields str."""
    ctx = CONTEXTS[kind]
    root = REPORT_ROOT if kind == "DR" else LEDGER_ROOT
    _, end, _, _ = c.period_bounds(spec.period)
    sink = DigestSink(out, root)
    uid = c.unique_id(ENTRIES_TYPE[kind], spec.period, max(part, 1))
    sink.write((
        f"<{root}{NS_DECL}>\n" + c.xbrl_head(ctx, spec.vkn, end)
        + "<gl-cor:accountingEntries>\n" + c.document_info(ctx, ENTRIES_TYPE[kind], spec.period, uid)
        + c.entity_information(ctx, spec.firm, spec.period)
    ).encode())
    for chunk in body_chunks:
        sink.write(chunk.encode())
    sink.write(b"</gl-cor:accountingEntries></xbrli:xbrl>\n")
    signer = taxpayer_signer(spec.vkn, spec.company)
    value = sink.finish(lambda digest: signature(
        sig_id=_sig_id(spec, kind, part), signer=signer, signing_time=_signing_time(spec, f"{kind}{part}"),
        target_uri="", target_digest_b64=digest))
    return value, sink.size


def berat_bytes(spec: MonthSpec, kind: str, part: int, *, ledger_value: str, ledger_size: int,
                entries: int, sums: dict, measurable: str | None = None) -> tuple[bytes, str, str]:
    """The taxpayer berat (YB/KB) of a ledger part; returns (bytes, sig_id, its SignatureValue)."""
    ledger_kind = kind[:-1]
    ctx = CONTEXTS[ledger_kind]
    _, end, _, _ = c.period_bounds(spec.period)
    rng = _rng(spec, f"berat:{kind}{part}")
    segment = c.item("gl-cor:uniqueID", ctx, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    if ledger_kind == "Y":
        segment += c.num("gl-bus:numberOfEntries", ctx, str(entries), "countable")
    segment += c.num("gl-bus:measurableQuantity", ctx, measurable or size_mib(ledger_size), "countable")
    uid = c.unique_id(ENTRIES_TYPE[ledger_kind], spec.period, max(part, 1))
    sink = DigestSink(buf := io.BytesIO(), BERAT_ROOT)
    sink.write((
        f"<{BERAT_ROOT}{NS_DECL}>\n" + c.xbrl_head(ctx, spec.vkn, end, segment)
        + "<gl-cor:accountingEntries>\n" + c.document_info(ctx, ENTRIES_TYPE[ledger_kind], spec.period, uid)
        + c.entity_information(ctx, spec.firm, spec.period) + c.tax_detail(ctx, sums)
        + "</gl-cor:accountingEntries></xbrli:xbrl>\n"
        + f"<ds:SignatureValue>{ledger_value}</ds:SignatureValue>\n"
    ).encode())
    sig_id = _sig_id(spec, kind, part)
    value = sink.finish(lambda digest: signature(
        sig_id=sig_id, signer=taxpayer_signer(spec.vkn, spec.company),
        signing_time=_signing_time(spec, f"{kind}{part}"), target_uri="", target_digest_b64=digest))
    return buf.getvalue(), sig_id, value


_QP_END = b"</xades:QualifyingProperties></ds:Object></ds:Signature>"


def gib_approve(spec: MonthSpec, kind: str, part: int, berat: bytes, sig_id: str, value: str) -> bytes:
    """GİB's berat: the taxpayer berat with GİB's countersignature as an unsigned property."""
    cs = countersignature(sig_id=_sig_id(spec, "GIB-" + kind, part), signer=gib_signer(),
                          signing_time=_signing_time(spec, f"GIB-{kind}{part}", day_offset=1),
                          signed_sig_id=sig_id, signed_value=value)
    head, sep, tail = berat.rpartition(_QP_END)
    unsigned = (f"<xades:UnsignedProperties><xades:UnsignedSignatureProperties>{cs}"
                "</xades:UnsignedSignatureProperties></xades:UnsignedProperties>").encode()
    return head + unsigned + sep + tail


def zip_one(name: str, data: bytes, period: str) -> bytes:
    """A .zip holding exactly one file, with fixed metadata so the bytes are reproducible."""
    buf = io.BytesIO()
    info = zipfile.ZipInfo(name, date_time=(int(period[:4]), int(period[5:7]), 20, 12, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(info, data)
    return buf.getvalue()


def _split(items: list, n: int) -> list[list]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def write_spec(folder: Path, spec: MonthSpec, *, only: set[str] | None = None) -> MonthFiles:
    """Write the month `spec` describes into `folder`; `only` limits the kinds written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    want = (lambda k: only is None or k in only)
    all_entries = c.make_entries(_rng(spec, "entries"), spec.period, max(spec.entries, len(spec.part_numbers)))
    chunks = _split(all_entries, len(spec.part_numbers))
    written: list[Path] = []
    next_line = 1  # journal line numbers run on through the parts
    for part, entries in zip(spec.part_numbers, chunks):
        sums = c.add_sums({}, entries)
        for kind in ("Y", "K"):
            ctx = CONTEXTS[kind]
            if kind == "Y":
                body = []
                for e in entries:
                    body.append(c.journal_entry(ctx, e, next_line))
                    next_line += len(e.lines)
            else:
                body = [c.ledger_entries(ctx, entries)]
            buf = io.BytesIO()
            value, size = write_ledger_doc(buf, spec, kind, part, body, sums)
            if want(kind):
                path = folder / spec.filename(kind, part)
                path.write_bytes(buf.getvalue())
                written.append(path)
            berat_kind = kind + "B"
            if not (want(berat_kind) or want("GIB-" + berat_kind)):
                continue
            berat, sig_id, bvalue = berat_bytes(spec, berat_kind, part, ledger_value=value, ledger_size=size,
                                                entries=len(entries), sums=sums)
            if want(berat_kind):
                path = folder / spec.filename(berat_kind, part)
                path.write_bytes(berat)
                written.append(path)
            if spec.gib and want("GIB-" + berat_kind):
                gib = gib_approve(spec, berat_kind, part, berat, sig_id, bvalue)
                if spec.gib_zip:
                    path = folder / spec.filename("GIB-" + berat_kind, part, zipped=True)
                    path.write_bytes(zip_one(spec.filename("GIB-" + berat_kind, part), gib, spec.period))
                else:
                    path = folder / spec.filename("GIB-" + berat_kind, part)
                    path.write_bytes(gib)
                written.append(path)
    if spec.dr and want("DR"):
        sums = c.add_sums({}, all_entries)
        path = folder / spec.filename("DR", 0)
        with open(path, "wb") as f:
            write_ledger_doc(f, spec, "DR", 0, [c.trial_balance(CONTEXTS["DR"], sums)], sums)
        written.append(path)
    return MonthFiles(written, spec, folder)


def make_spec(vkn: str, period: str, *, branch: str | None = None, branch_name: str | None = None,
              branch_in_name: bool = False, parts: int = 0, entries: int = 20, company: str | None = None,
              gib: bool = True, dr: bool | None = None, gib_zip: bool = False, upper_ext: bool = False,
              seed: int = 0) -> MonthSpec:
    if dr is None:
        dr = period >= DR_FROM_PERIOD
    return MonthSpec(
        vkn=vkn, period=period, company=company or c.default_company(vkn), branch=branch,
        branch_name=branch_name or (f"{branch} Nolu Şube - Gaziosmanpaşa" if branch else None),
        branch_in_name=branch_in_name, parts=parts, entries=entries, gib=gib, dr=dr, gib_zip=gib_zip,
        upper_ext=upper_ext, seed=seed,
    )


def write_month(folder, vkn: str, period: str, *, branch: str | None = None, branch_name: str | None = None,
                branch_in_name: bool = False, parts: int = 0, entries: int = 20, company: str | None = None,
                gib: bool = True, dr: bool | None = None, gib_zip: bool = False, upper_ext: bool = False,
                seed: int = 0) -> MonthFiles:
    """Write one month's files into `folder`; see the package docstring."""
    spec = make_spec(vkn, period, branch=branch, branch_name=branch_name, branch_in_name=branch_in_name,
                     parts=parts, entries=entries, company=company, gib=gib, dr=dr, gib_zip=gib_zip,
                     upper_ext=upper_ext, seed=seed)
    return write_spec(Path(folder), spec)


