"""e-Defter file names: `[GIB-]VKN-YYYYMM-KIND-NNNNNN[-ŞŞŞŞ].xml` (GİB berats also as .zip)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

LEDGER_KINDS = ("Y", "K")
BERAT_KINDS = ("YB", "KB", "GIB-YB", "GIB-KB")
KINDS = ("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR")
INVENTORY_KINDS = ("E", "EB", "GIB-EB")  # e-Envanter: same scheme, not ledgers
NO_BRANCH = "0000"
DR_FROM_PERIOD = "2019-01"

# berat kind -> the ledger kind it certifies
BERAT_OF = {"YB": "Y", "KB": "K", "GIB-YB": "Y", "GIB-KB": "K"}

KIND_NAMES_TR = {
    "Y": "Yevmiye Defteri",
    "K": "Büyük Defter (Kebir)",
    "YB": "Yevmiye Beratı",
    "KB": "Kebir Beratı",
    "GIB-YB": "GİB onaylı Yevmiye Beratı",
    "GIB-KB": "GİB onaylı Kebir Beratı",
    "DR": "Defter Raporu",
}

_NAME = re.compile(
    r"^(?P<gib>GIB-)?(?P<vkn>\d{10,11})-(?P<year>\d{4})(?P<month>\d{2})-"
    r"(?P<kind>Y|K|YB|KB|DR|E|EB)-(?P<part>\d{6})(?:-(?P<branch>\d{4}))?\.(?P<ext>xml|zip)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)  # an office's scan holds ~240 000 of them
class LedgerName:
    """What a file name says about an e-Defter file."""

    filename: str
    vkn: str
    period: str  # "YYYY-MM"
    kind: str  # one of KINDS or INVENTORY_KINDS
    part: int
    branch: str | None  # only when the name carries it
    zipped: bool

    @property
    def is_inventory(self) -> bool:
        return self.kind in INVENTORY_KINDS

    @property
    def is_berat(self) -> bool:
        return self.kind in BERAT_KINDS

    @property
    def is_gib(self) -> bool:
        return self.kind.startswith("GIB-")

    @property
    def yyyymm(self) -> str:
        return self.period.replace("-", "")

    @property
    def xml_name(self) -> str:
        """The name the berat has inside a GİB .zip download."""
        return self.filename[: -len(".zip")] + ".xml" if self.zipped else self.filename


# (GİB-approved, kind in the name, upper case) -> the kind; one string object each
_KIND = {(False, k): k for k in ("Y", "K", "YB", "KB", "DR", "E", "EB")}
_KIND.update({(True, k): "GIB-" + k for k in ("YB", "KB", "EB")})  # GİB only approves berats


def parse_name(filename: str) -> LedgerName | None:
    """Return what the name says, or None when it is not an e-Defter name."""
    m = _NAME.match(filename)
    if not m:
        return None
    gib, vkn, year, month, kind, part, branch, ext = m.groups()
    if not (year + month).isascii():  # other scripts' digits (\d): as numbers, written in ASCII
        year, month = f"{int(year):04d}", f"{int(month):02d}"
    if not ("01" <= month <= "12" and "2000" <= year <= "2099"):  # fixed-width digits: as numbers
        return None
    kind = _KIND.get((gib is not None, kind.upper()))
    if kind is None:
        return None  # GİB only approves berats
    zipped = ext.lower() == "zip"
    if zipped and not kind.startswith("GIB-"):
        return None  # only GİB's portal download comes zipped
    # VKN, period and branch: one string per firm and month, not one per file
    return LedgerName(filename, sys.intern(vkn), sys.intern(f"{year}-{month}"), kind, int(part),
                      sys.intern(branch) if branch else None, zipped)


_TAXPAYER = re.compile(r"(?:GIB-)?(\d{10,11})-", re.IGNORECASE)


def taxpayer_of(filename: str) -> str | None:
    """The VKN/TCKN an e-Defter name starts with, read as parse_name reads it but without its other
    checks: every name parse_name accepts gives its VKN here (and some it refuses give one too)."""
    m = _TAXPAYER.match(filename)
    return m.group(1) if m else None


def valid_period(text: str) -> bool:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text or "")
    return bool(m) and 1 <= int(m[2]) <= 12 and 2000 <= int(m[1]) <= 2099


def valid_identifier(text: str) -> bool:
    """VKN (10 digits) or TCKN (11 digits)."""
    return bool(re.fullmatch(r"\d{10}|\d{11}", text or ""))


def valid_branch(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}", text or ""))
